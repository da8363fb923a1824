/*
 * Landlock (Linux 5.13 on; Documentation/userspace-api/landlock.rst) for a
 * VMM run by an ordinary user: a ruleset that allows the VMM's threads to
 * open, make and remove files only beneath the paths of its own
 * configuration (sandbox_paths.h), each with the access it needs, plus its
 * own /proc/PID (its threads, its descriptors for 9p, its pagemap for
 * snapshots). Everything else the file system holds cannot be opened.
 *
 * By system call (no libc wrappers exist for it). The rights handled
 * follow the running kernel's ABI version: 1 has the basic file rights, 2
 * adds REFER (renames and links across directories, which 9p does), 3
 * TRUNCATE, 5 IOCTL_DEV (ioctls on device files: block devices as disks,
 * /dev/net/tun). Network rules (4) and scopes (6) are not used: user
 * networking needs the host's TCP and UDP.
 *
 * A Landlock domain is per thread and inherited by threads started later;
 * sandbox.c restricts every thread of the process once, in its first
 * confinement pass.
 */
#include "vmm/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/sandbox_paths.h"

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

#define FS_V1 ((1ULL << 13) - 1)   /* EXECUTE .. MAKE_SYM */

/* The rights a rule on a file may hold (the others concern directories). */
#define FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
		     LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
		     LANDLOCK_ACCESS_FS_IOCTL_DEV)

static uint64_t handled_for_abi(int abi)
{
	uint64_t h = FS_V1;
	if (abi >= 2)
		h |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		h |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		h |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return h;
}

/* What a path of the list may do, before masking by the handled rights
 * and by what a file rule may hold. */
static uint64_t rights(bool dir, bool write)
{
	uint64_t r = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_IOCTL_DEV;
	if (dir)
		r |= LANDLOCK_ACCESS_FS_READ_DIR;
	if (write)
		r |= LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
	if (dir && write)
		/* Sockets, snapshot files, a 9p share's files and links;
		 * never device nodes, never executables. */
		r |= LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
		     LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
		     LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
		     LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_REFER;
	return r;
}

static int add_rule(int ruleset, const char *path, bool write, uint64_t handled, char *err, size_t errlen)
{
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "landlock: %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
	struct landlock_path_beneath_attr a = {
		.allowed_access = rights(dir, write) & handled & (dir ? ~0ULL : FILE_RIGHTS),
		.parent_fd = fd,
	};
	int r = (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &a, 0);
	int e = errno;
	close(fd);
	if (r) {
		snprintf(err, errlen, "landlock: cannot allow %s: %s", path, strerror(e));
		return -1;
	}
	return 0;
}

int sandbox_landlock_ruleset(const struct sandbox_paths *paths, char *err, size_t errlen)
{
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0) {
		snprintf(err, errlen, "Landlock is not available here (%s): the VMM's files are not "
			 "confined (seccomp and the other layers still hold)",
			 errno == EOPNOTSUPP ? "disabled at boot" : strerror(errno));
		return -2;
	}
	uint64_t handled = handled_for_abi(abi);
	struct landlock_ruleset_attr attr = { .handled_access_fs = handled };
	int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr.handled_access_fs), 0);
	if (fd < 0) {
		snprintf(err, errlen, "landlock: cannot create a ruleset: %s", strerror(errno));
		return -1;
	}
	char self[32];
	snprintf(self, sizeof(self), "/proc/%d", (int)getpid());
	if (add_rule(fd, self, false, handled, err, errlen))
		goto fail;
	for (size_t i = 0; i < paths->n; i++)
		if (add_rule(fd, paths->v[i].path, paths->v[i].write, handled, err, errlen))
			goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

int sandbox_landlock_restrict(int ruleset)
{
	return syscall(SYS_landlock_restrict_self, ruleset, 0) ? -errno : 0;
}

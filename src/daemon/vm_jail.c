/*
 * How skiffd confines the VMMs it starts (docs/security.md, "skiffd's
 * VMs"). As root, each VMM runs in a jail (`skiff run --jail`, as
 * Firecracker's jailer runs Firecracker): its own namespaces, a root that
 * holds only its files, an unprivileged uid and gid. As an ordinary user,
 * each VMM restricts itself with Landlock to its own files.
 *
 * Either way the VMM may write only in its VM's `run/` directory (its
 * sockets, its metrics, the snapshot it is saving); skiffd's own files
 * (vm.json, config.json, pid, console.log) lie beside it, out of the VMM's
 * reach. This file gives each jailed VM a uid of its own (so that no VM's
 * VMM can signal another's or read its files), makes that directory,
 * hands files to the VM's uid,
 * finds the jailed VMM's process (the child of the `skiff run` that skiffd
 * started), and brings a host file into a running jail for PATCH /drives.
 */
#include "daemon/skiffd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/config_json.h"

char *skiffd_vm_run_path(const struct skiffd_vm *vm, const char *file)
{
	char *p = NULL;
	int r = file ? asprintf(&p, "%s/" SKIFFD_RUN_DIR "/%s", vm->dir, file) :
		asprintf(&p, "%s/" SKIFFD_RUN_DIR, vm->dir);
	return r < 0 ? NULL : p;
}

char *skiffd_vm_sock(const struct skiffd_vm *vm, const char *file)
{
	return vm->old_layout ? skiffd_vm_path(vm, file) : skiffd_vm_run_path(vm, file);
}

static bool uid_in_range(const struct skiffd *d, uid_t uid)
{
	return uid >= d->jail.uid_base && uid - d->jail.uid_base < d->jail.uid_count;
}

static bool uid_taken(const struct skiffd *d, const struct skiffd_vm *vm, uid_t uid)
{
	for (const struct skiffd_vm *o = d->vms; o; o = o->next)
		if (o != vm && o->jail_uid == uid)
			return true;
	return false;
}

int skiffd_jail_assign(const struct skiffd *d, struct skiffd_vm *vm, char *err, size_t errlen)
{
	if (!d->jail.on)
		return 0;
	if (vm->jail_uid && uid_in_range(d, vm->jail_uid) && !uid_taken(d, vm, vm->jail_uid))
		return 0;
	/* The lowest free one: a deleted VM's uid is used again, by a VM
	 * whose run/ is new (nothing of the old one's is left to it). */
	for (uint32_t i = 0; i < d->jail.uid_count; i++) {
		uid_t uid = d->jail.uid_base + i;
		if (!uid_taken(d, vm, uid)) {
			vm->jail_uid = uid;
			return 0;
		}
	}
	vm->jail_uid = 0;
	snprintf(err, errlen, "no jail uid is free: skiffd's range %u-%u (--jail-uid-base, --jail-uid-count) "
		 "has one per VM and every one belongs to a VM; delete a VM or give skiffd a larger range",
		 (unsigned)d->jail.uid_base, (unsigned)(d->jail.uid_base + d->jail.uid_count - 1));
	return -1;
}

int skiffd_hand_over(const struct skiffd *d, const struct skiffd_vm *vm, int fd, char *err, size_t errlen)
{
	if (!d->jail.on)
		return 0;
	if (!vm->jail_uid) {
		snprintf(err, errlen, "vm `%s` has no jail uid", vm->id);
		return -1;
	}
	if (fchown(fd, vm->jail_uid, d->jail.gid) == 0)
		return 0;
	snprintf(err, errlen, "cannot hand a file to the VM's jail uid %u: %s", (unsigned)vm->jail_uid,
		 strerror(errno));
	return -1;
}

int skiffd_hand_over_path(const struct skiffd *d, const struct skiffd_vm *vm, const char *path, char *err,
			  size_t errlen)
{
	if (!d->jail.on)
		return 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	int r = skiffd_hand_over(d, vm, fd, err, errlen);
	close(fd);
	return r;
}

/* Everything below the directory `fd` (open, O_DIRECTORY) goes to uid/gid;
 * symbolic links are not followed, and a file with other names (a
 * snapshot's file linked in for a restore) is left to its owner. Closes fd.
 * 0, or an errno. */
static int hand_over_tree(int fd, uid_t uid, gid_t gid, int depth)
{
	DIR *dir = fdopendir(fd);
	if (!dir) {
		int e = errno;
		close(fd);
		return e;
	}
	int e = 0;
	struct dirent *ent;
	while (!e && (ent = readdir(dir))) {
		if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(dir), ent->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
			e = errno == ENOENT ? 0 : errno;
			continue;
		}
		if (S_ISLNK(st.st_mode) || (!S_ISDIR(st.st_mode) && st.st_nlink > 1))
			continue;
		if ((st.st_uid != uid || st.st_gid != gid) &&
		    fchownat(dirfd(dir), ent->d_name, uid, gid, AT_SYMLINK_NOFOLLOW))
			e = errno;
		else if (S_ISDIR(st.st_mode) && depth < 8) {
			int sub = openat(dirfd(dir), ent->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			e = sub < 0 ? errno : hand_over_tree(sub, uid, gid, depth + 1);
		}
	}
	closedir(dir);
	return e;
}

/* mkdir `path` 0700 (if missing) and hand it to the VM's jail uid; with
 * `tree`, all that is in it too. */
static int own_dir(const struct skiffd *d, const struct skiffd_vm *vm, const char *path, bool tree, char *err,
		   size_t errlen)
{
	if (mkdir(path, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	int r = skiffd_hand_over(d, vm, fd, err, errlen);
	if (r || !tree || !d->jail.on) {
		close(fd);
		return r;
	}
	int e = hand_over_tree(fd, vm->jail_uid, d->jail.gid, 0);
	if (e)
		snprintf(err, errlen, "cannot hand %s to the VM's jail uid %u: %s", path, (unsigned)vm->jail_uid,
			 strerror(e));
	return e ? -1 : 0;
}

int skiffd_vm_run_dir(const struct skiffd *d, const struct skiffd_vm *vm, const char *sub, char *err,
		      size_t errlen)
{
	char *run = skiffd_vm_run_path(vm, NULL), *dir = NULL;
	int r = -1;
	/* Before a start (sub NULL): the VM's directory is skiffd's alone
	 * again (an older skiffd made it 0711 for an image's overlay that lay
	 * in it; that moved into overlay/, vm_image.c). Not while it runs: a
	 * VM started so still reaches run/ through it. */
	if (!sub && chmod(vm->dir, 0700)) {
		snprintf(err, errlen, "%s: %s", vm->dir, strerror(errno));
		free(run);
		return -1;
	}
	if (!run || (sub && asprintf(&dir, "%s/%s", run, sub) < 0))
		snprintf(err, errlen, "out of memory");
	else
		r = own_dir(d, vm, run, !sub, err, errlen) || (dir && own_dir(d, vm, dir, false, err, errlen)) ? -1 : 0;
	free(run);
	free(dir);
	return r;
}

size_t skiffd_sandbox_args(const struct skiffd *d, const struct skiffd_vm *vm, char *root, size_t rootlen,
			   char ids[2][16], const char *out[7])
{
	if (!d->jail.on)
		return 0;   /* an ordinary user's VMM takes Landlock by itself */
	/* The jail is its file confinement: a Landlock domain could not
	 * follow the files skiffd brings into it later (skiffd_bring_in). */
	out[6] = "--landlock=off";
	snprintf(root, rootlen, "%s/" SKIFFD_JAIL_DIR, vm->dir);
	snprintf(ids[0], 16, "%u", (unsigned)vm->jail_uid);
	snprintf(ids[1], 16, "%u", (unsigned)d->jail.gid);
	out[0] = "--jail";
	out[1] = root;
	out[2] = "--jail-uid";
	out[3] = ids[0];
	out[4] = "--jail-gid";
	out[5] = ids[1];
	return 7;
}

pid_t skiffd_find_vmm(pid_t launcher)
{
	/* The jail's outer process has one child, the VMM (jail.h). */
	DIR *proc = opendir("/proc");
	pid_t found = launcher;
	struct dirent *e;
	while (proc && (e = readdir(proc))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		struct skiffd_proc_stat st;
		if (*end || pid <= 0 || skiffd_read_proc_stat((pid_t)pid, &st) || st.ppid != launcher)
			continue;
		found = (pid_t)pid;
		break;
	}
	if (proc)
		closedir(proc);
	return found;
}

/* mkdir -p the parents of `path` (absolute) and make its mount point: an
 * empty file, or a directory when `dir`. In the forked child: no malloc. */
static int mount_point(char *path, bool dir)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		int r = mkdir(path, 0755);
		*p = '/';
		if (r && errno != EEXIST)
			return -1;
	}
	if (dir)
		return mkdir(path, 0755) && errno != EEXIST ? -1 : 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EISDIR ? 0 : -1;
	close(fd);
	return 0;
}

/* The forked child: into the jail's mount namespace, make the point on
 * its (read-only) tmpfs root, attach the clone there. Exit 0, or errno. */
static void bring_child(int nsfd, int tree, char *path, bool dir)
{
	const unsigned long root_fl = MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	if (setns(nsfd, CLONE_NEWNS) || chdir("/") || mount(NULL, "/", NULL, root_fl, NULL))
		_exit(errno);
	int e = 0;
	if (mount_point(path, dir) ||
	    move_mount(tree, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH))
		e = errno;
	if (mount(NULL, "/", NULL, root_fl | MS_RDONLY, NULL) && !e)
		e = errno;
	_exit(e);
}

int skiffd_bring_in(const struct skiffd *d, const struct skiffd_vm *vm, const char *path, bool write,
		    char *err, size_t errlen)
{
	if (!d->jail.on || vm->vmm_pid <= 0)
		return 0;
	struct stat st;
	if (path[0] != '/' || strlen(path) >= PATH_MAX || stat(path, &st)) {
		snprintf(err, errlen, "%s: %s", path, path[0] != '/' ? "not an absolute path" : strerror(errno));
		return -1;
	}
	/* A bind mount of the file, detached, with the jail's mount flags
	 * (jail.c bind_in): read only unless written, no set-user-ID, no
	 * executables, no device files unless it is one. */
	int tree = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	bool dev = S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode);
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | (dev ? 0 : MOUNT_ATTR_NODEV) |
			    (write ? 0 : MOUNT_ATTR_RDONLY),
	};
	char ns[64];
	snprintf(ns, sizeof(ns), "/proc/%d/ns/mnt", (int)vm->vmm_pid);
	int nsfd = open(ns, O_RDONLY | O_CLOEXEC);
	char copy[PATH_MAX];
	snprintf(copy, sizeof(copy), "%s", path);
	int e = tree < 0 || nsfd < 0 ? errno :
		mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) ? errno : 0;
	if (!e) {
		pid_t pid = fork();
		if (pid == 0)
			bring_child(nsfd, tree, copy, S_ISDIR(st.st_mode));
		int status = 0;
		if (pid < 0)
			e = errno;
		else if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
			e = EIO;
		else
			e = WEXITSTATUS(status);
	}
	if (tree >= 0)
		close(tree);
	if (nsfd >= 0)
		close(nsfd);
	if (e)
		snprintf(err, errlen, "cannot bring %s into the VM's jail: %s", path, strerror(e));
	return e ? -1 : 0;
}

struct bring_walk {
	const struct skiffd *d;
	const struct skiffd_vm *vm;
	const char *run;
	char *err;
	size_t errlen;
};

static int bring_one(json_t *obj, const char *key, const char *path, const char *where, void *ctx)
{
	struct bring_walk *w = ctx;
	(void)where;
	/* Sockets, logs and metrics are made in run/, which is there. */
	if (strcmp(key, "kernel_image_path") && strcmp(key, "initrd_path") && strcmp(key, "path_on_host"))
		return 0;
	size_t n = strlen(w->run);
	if (!strncmp(path, w->run, n) && path[n] == '/')
		return 0;
	bool write = !strcmp(key, "path_on_host") && !json_is_true(json_object_get(obj, "is_read_only"));
	return skiffd_bring_in(w->d, w->vm, path, write, w->err, w->errlen);
}

int skiffd_bring_in_config(const struct skiffd *d, const struct skiffd_vm *vm, char *err, size_t errlen)
{
	if (!d->jail.on || vm->vmm_pid <= 0)
		return 0;
	char *run = skiffd_vm_run_path(vm, NULL);
	if (!run) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	struct bring_walk w = { d, vm, run, err, errlen };
	int r = vm_config_json_paths(vm->config, bring_one, &w);
	free(run);
	return r ? -1 : 0;
}

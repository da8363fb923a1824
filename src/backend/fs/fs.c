/*
 * Host filesystem access beneath a share's root; see fs.h for the rules.
 * Path resolution is openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
 * | RESOLVE_NO_MAGICLINKS on single, checked names; reopening an O_PATH
 * descriptor goes through /proc/self/fd/N (proc(5), "O_PATH" in open(2)).
 */
#include "backend/fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct fs_share {
	int root_fd;       /* O_PATH | O_DIRECTORY */
	int proc_fd;       /* O_PATH on /proc/self/fd */
	bool read_only;
	bool nodev;        /* no FIFOs, sockets or symlinks made by the guest */
	bool can_chown;    /* running as root: new files get the guest's owner */
	dev_t root_dev;
	ino_t root_ino;
};

#define RESOLVE_SAFE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

static int openat2_beneath(int dirfd, const char *path, int flags)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_SAFE };
	for (int tries = 0; tries < 8; tries++) {
		long r = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (r >= 0)
			return (int)r;
		/* EAGAIN: a concurrent rename disturbed the lookup; retry. */
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
	return -EAGAIN;
}

static void fd_name(char buf[16], int fd)
{
	snprintf(buf, 16, "%d", fd);
}

/* Reopen the file an O_PATH descriptor names, through /proc/self/fd/N. */
static int reopen(struct fs_share *s, int fd, int flags)
{
	char n[16];
	fd_name(n, fd);
	int r = openat(s->proc_fd, n, flags | O_CLOEXEC | O_NOCTTY);
	return r < 0 ? -errno : r;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static mode_t sanitize_mode(mode_t mode, bool dir)
{
	mode &= 07777;
	mode &= ~(mode_t)S_ISUID;
	if (!dir)
		mode &= ~(mode_t)S_ISGID;
	return mode;
}

/* ------------------------------------------------------------ the share */

struct fs_share *fs_share_open(const char *path, bool read_only, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st)) {
		snprintf(err, errlen, "'%s': %s", path, strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "'%s' is not a directory", path);
		return NULL;
	}
	struct fs_share *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0) {
		snprintf(err, errlen, "'%s': %s", path, strerror(errno));
		free(s);
		return NULL;
	}
	s->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	char n[16], probe[8];
	fd_name(n, s->root_fd);
	if (s->proc_fd < 0 || readlinkat(s->proc_fd, n, probe, sizeof(probe)) < 0) {
		snprintf(err, errlen, "shares need /proc/self/fd (is /proc mounted?): %s",
			 strerror(errno));
		if (s->proc_fd >= 0)
			close(s->proc_fd);
		close(s->root_fd);
		free(s);
		return NULL;
	}
	if (fstat(s->root_fd, &st)) {
		snprintf(err, errlen, "'%s': %s", path, strerror(errno));
		fs_share_close(s);
		return NULL;
	}
	s->root_dev = st.st_dev;
	s->root_ino = st.st_ino;
	s->read_only = read_only;
	s->can_chown = geteuid() == 0;
	return s;
}

void fs_share_close(struct fs_share *s)
{
	if (!s)
		return;
	close(s->proc_fd);
	close(s->root_fd);
	free(s);
}

bool fs_share_read_only(const struct fs_share *s)
{
	return s->read_only;
}

void fs_share_set_nodev(struct fs_share *s, bool nodev)
{
	s->nodev = nodev;
}

void fs_share_root_id(const struct fs_share *s, dev_t *dev, ino_t *ino)
{
	*dev = s->root_dev;
	*ino = s->root_ino;
}

int fs_name_check(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (n > NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int fs_stat(int fd, struct stat *st)
{
	return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

int fs_statfs(int fd, struct statfs *st)
{
	return fstatfs(fd, st) ? -errno : 0;
}

bool fs_is_root(struct fs_share *s, int fd)
{
	struct stat st;
	return fs_stat(fd, &st) == 0 && st.st_dev == s->root_dev && st.st_ino == s->root_ino;
}

int fs_dup(int fd, int *out)
{
	int r = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (r < 0)
		return -errno;
	*out = r;
	return 0;
}

/* ------------------------------------------------------------ locating */

/* The current path of fd as the kernel sees it, NUL-terminated. */
static int fd_path(struct fs_share *s, int fd, char *buf, size_t cap)
{
	char n[16];
	fd_name(n, fd);
	ssize_t r = readlinkat(s->proc_fd, n, buf, cap);
	if (r < 0)
		return -errno;
	if ((size_t)r >= cap)
		return -ENAMETOOLONG;
	buf[r] = 0;
	return 0;
}

/* Where fd is beneath the root, as the kernel names it now: *rel points
 * into *path (PATH_MAX bytes, the caller frees it), "" for the root itself.
 * -ENOENT when the kernel's path is not beneath the root's (on any error
 * *path is NULL). */
static int path_below_root(struct fs_share *s, int fd, char **path, char **rel)
{
	char *root = malloc(PATH_MAX), *p = malloc(PATH_MAX);
	int r = -ENOMEM;
	if (!root || !p)
		goto out;
	if ((r = fd_path(s, s->root_fd, root, PATH_MAX)) || (r = fd_path(s, fd, p, PATH_MAX)))
		goto out;
	r = -ENOENT;
	if (root[0] != '/' || p[0] != '/')
		goto out;
	size_t rn = strlen(root);
	if (rn == 1)
		*rel = p + 1;
	else if (!strncmp(p, root, rn) && (p[rn] == 0 || p[rn] == '/'))
		*rel = p[rn] ? p + rn + 1 : p + rn;
	else
		goto out;
	r = 0;
out:
	free(root);
	if (r) {
		free(p);
		p = NULL;
	}
	*path = p;
	return r;
}

/* Find where the file fd names lives beneath the root: a new O_PATH
 * descriptor on its directory and its name there, checked to still be
 * that very file. -EBUSY for the root itself, -ENOENT when the file is no
 * longer reachable beneath the root (deleted, or moved out by the host). */
static int locate(struct fs_share *s, int fd, int *pfd, char name[NAME_MAX + 1])
{
	char *path, *rel;
	int r = path_below_root(s, fd, &path, &rel);
	if (r)
		return r;
	r = -EBUSY;
	if (!*rel)
		goto out;
	r = -ENOENT;
	char *slash = strrchr(rel, '/');
	const char *base = slash ? slash + 1 : rel;
	if (fs_name_check(base))
		goto out;
	strcpy(name, base);
	int dfd;
	if (slash) {
		*slash = 0;
		dfd = openat2_beneath(s->root_fd, rel, O_PATH | O_DIRECTORY | O_NOFOLLOW);
	} else {
		dfd = fcntl(s->root_fd, F_DUPFD_CLOEXEC, 0);
		if (dfd < 0)
			dfd = -errno;
	}
	if (dfd < 0) {
		r = dfd == -ENOMEM ? dfd : -ENOENT;
		goto out;
	}
	struct stat a, b;
	if (fs_stat(fd, &a) || fstatat(dfd, name, &b, AT_SYMLINK_NOFOLLOW) || !same_file(&a, &b)) {
		close(dfd);
		goto out;
	}
	*pfd = dfd;
	r = 0;
out:
	free(path);
	return r;
}

/* ------------------------------------------------------------ lookups */

int fs_attach(struct fs_share *s, const char *aname, int *fd)
{
	while (*aname == '/')
		aname++;
	int r = *aname ? openat2_beneath(s->root_fd, aname, O_PATH | O_DIRECTORY)
		       : fcntl(s->root_fd, F_DUPFD_CLOEXEC, 0);
	if (r < 0)
		return *aname ? r : -errno;
	*fd = r;
	return 0;
}

int fs_walk(struct fs_share *s, int dirfd, const char *name, int *fd)
{
	if (!strcmp(name, "..")) {
		struct stat st;
		int r = fs_stat(dirfd, &st);
		if (r)
			return r;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
		if (st.st_dev == s->root_dev && st.st_ino == s->root_ino)
			return fs_dup(dirfd, fd);
		char base[NAME_MAX + 1];
		return locate(s, dirfd, fd, base);
	}
	if (strcmp(name, ".")) {
		int r = fs_name_check(name);
		if (r)
			return r;
	}
	int r = openat2_beneath(dirfd, name, O_PATH | O_NOFOLLOW);
	if (r < 0)
		return r;
	*fd = r;
	return 0;
}

int fs_readlink(int fd, char *buf, size_t cap)
{
	if (cap < 2)
		return -ENAMETOOLONG;
	struct stat st;
	int e = fs_stat(fd, &st);
	if (e)
		return e;
	if (!S_ISLNK(st.st_mode))
		return -EINVAL;   /* as readlink(2) on anything else */
	ssize_t r = readlinkat(fd, "", buf, cap - 1);
	if (r < 0)
		return -errno;
	buf[r] = 0;
	return 0;
}

/* ------------------------------------------------------------ opening */

int fs_open(struct fs_share *s, int fd, int flags, int *ofd)
{
	struct stat st, st2;
	int r = fs_stat(fd, &st);
	if (r)
		return r;
	int acc = flags & O_ACCMODE;
	if (acc == O_ACCMODE)
		return -EINVAL;
	/* O_TMPFILE holds O_DIRECTORY's bit: clear only its own, so that
	 * O_DIRECTORY on a file still fails below. */
	flags &= ~(O_CREAT | O_EXCL | (O_TMPFILE & ~O_DIRECTORY) | O_PATH);
	if (s->read_only && (acc != O_RDONLY || (flags & O_TRUNC)))
		return -EROFS;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (S_ISDIR(st.st_mode)) {
		if (acc != O_RDONLY)
			return -EISDIR;
		flags |= O_DIRECTORY;
	} else if (!S_ISREG(st.st_mode)) {
		return -ENXIO;   /* devices, FIFOs and sockets stay on the host */
	} else if (flags & O_DIRECTORY) {
		return -ENOTDIR;
	}
	int nfd = reopen(s, fd, flags);
	if (nfd < 0)
		return nfd;
	if (fstat(nfd, &st2) || !same_file(&st, &st2)) {
		close(nfd);
		return -ESTALE;
	}
	*ofd = nfd;
	return 0;
}

/* Whether an entry `name` may be made or removed in a directory of the
 * share: 0, -EROFS, or fs_name_check's refusal. */
static int may_change(const struct fs_share *s, const char *name)
{
	return s->read_only ? -EROFS : fs_name_check(name);
}

/* After creating `name` in dirfd: set the exact mode (the process umask
 * may have cut it) and, as root, the owner; describe the result. */
static int finish_new(struct fs_share *s, int dirfd, const char *name, mode_t type, mode_t mode,
		      const struct fs_cred *cred, struct stat *st)
{
	int fd = openat2_beneath(dirfd, name, O_PATH | O_NOFOLLOW);
	if (fd < 0)
		return fd;
	int r = fs_stat(fd, st);
	if (!r && (st->st_mode & S_IFMT) == type) {
		/* Best effort, like the owner: the object exists either way. */
		if (type != S_IFLNK) {
			char n[16];
			fd_name(n, fd);
			(void)fchmodat(s->proc_fd, n, mode, 0);
		}
		if (s->can_chown && cred)
			(void)fchownat(fd, "", cred->uid, cred->gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		r = fs_stat(fd, st);
	}
	close(fd);
	return r;
}

int fs_create(struct fs_share *s, int dirfd, const char *name, int flags, mode_t mode,
	      const struct fs_cred *cred, int *ofd)
{
	int r = may_change(s, name);
	if (r)
		return r;
	int acc = flags & O_ACCMODE;
	if (acc == O_ACCMODE)
		return -EINVAL;
	bool excl = flags & O_EXCL;
	flags &= O_ACCMODE | O_TRUNC | O_APPEND | O_DSYNC | O_SYNC;
	flags |= O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
	mode = sanitize_mode(mode, false);
	int fd = openat(dirfd, name, flags | O_CREAT | O_EXCL, mode);
	if (fd < 0 && errno == EEXIST && !excl) {
		/* Open what is there, through the same checks as fs_open (a
		 * symlink or a device node is never opened). */
		int pfd = openat2_beneath(dirfd, name, O_PATH | O_NOFOLLOW);
		if (pfd < 0)
			return pfd;
		struct stat st;
		r = fs_stat(pfd, &st);
		if (!r && !S_ISREG(st.st_mode))
			r = S_ISDIR(st.st_mode) ? -EISDIR : -EEXIST;
		if (!r)
			r = fs_open(s, pfd, flags & ~(O_NOFOLLOW | O_CLOEXEC | O_NOCTTY), ofd);
		close(pfd);
		return r;
	}
	if (fd < 0)
		return -errno;
	/* The exact mode (the process umask may have cut it); best effort, as
	 * on filesystems without modes (vfat) the file is there all the same. */
	(void)fchmod(fd, mode);
	if (s->can_chown && cred)
		(void)fchown(fd, cred->uid, cred->gid);
	*ofd = fd;
	return 0;
}

int fs_mkdir(struct fs_share *s, int dirfd, const char *name, mode_t mode,
	     const struct fs_cred *cred, struct stat *st)
{
	int r = may_change(s, name);
	if (r)
		return r;
	mode = sanitize_mode(mode, true);
	if (mkdirat(dirfd, name, mode))
		return -errno;
	return finish_new(s, dirfd, name, S_IFDIR, mode, cred, st);
}

int fs_mknod(struct fs_share *s, int dirfd, const char *name, mode_t mode,
	     const struct fs_cred *cred, struct stat *st)
{
	int r = may_change(s, name);
	if (r)
		return r;
	mode_t type = mode & S_IFMT;
	if (type == 0)
		type = S_IFREG;
	if (type == S_IFCHR || type == S_IFBLK)
		return -EPERM;   /* no device nodes on the host */
	if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK)
		return -EINVAL;
	if (s->nodev && type != S_IFREG)
		return -EPERM;   /* nodev: special files stay off the host */
	mode_t perm = sanitize_mode(mode, false);
	if (mknodat(dirfd, name, type | perm, 0))
		return -errno;
	return finish_new(s, dirfd, name, type, perm, cred, st);
}

int fs_symlink(struct fs_share *s, int dirfd, const char *name, const char *target,
	       const struct fs_cred *cred, struct stat *st)
{
	int r = may_change(s, name);
	if (r)
		return r;
	if (s->nodev)
		return -EPERM;   /* nodev: no link the host's programs might follow */
	size_t n = strlen(target);
	if (n == 0)
		return -ENOENT;
	if (n >= PATH_MAX)
		return -ENAMETOOLONG;
	if (symlinkat(target, dirfd, name))
		return -errno;
	return finish_new(s, dirfd, name, S_IFLNK, 0, cred, st);
}

/* ------------------------------------------------------------ names */

int fs_link(struct fs_share *s, int fd, int dirfd, const char *name)
{
	int r = may_change(s, name);
	if (r)
		return r;
	struct stat st;
	if ((r = fs_stat(fd, &st)))
		return r;
	if (S_ISDIR(st.st_mode))
		return -EPERM;
	char n[16];
	fd_name(n, fd);
	return linkat(s->proc_fd, n, dirfd, name, AT_SYMLINK_FOLLOW) ? -errno : 0;
}

int fs_renameat(struct fs_share *s, int olddirfd, const char *oldname, int newdirfd,
		const char *newname)
{
	if (s->read_only)
		return -EROFS;
	int r = fs_name_check(oldname);
	if (r || (r = fs_name_check(newname)))
		return r;
	return renameat(olddirfd, oldname, newdirfd, newname) ? -errno : 0;
}

int fs_rename_fd(struct fs_share *s, int fd, int newdirfd, const char *newname)
{
	int r = may_change(s, newname);
	if (r)
		return r;
	int pfd;
	char name[NAME_MAX + 1];
	if ((r = locate(s, fd, &pfd, name)))
		return r;
	r = renameat(pfd, name, newdirfd, newname) ? -errno : 0;
	close(pfd);
	return r;
}

int fs_unlinkat(struct fs_share *s, int dirfd, const char *name, bool rmdir)
{
	int r = may_change(s, name);
	if (r)
		return r;
	return unlinkat(dirfd, name, rmdir ? AT_REMOVEDIR : 0) ? -errno : 0;
}

int fs_remove_fd(struct fs_share *s, int fd)
{
	if (s->read_only)
		return -EROFS;
	struct stat st;
	int r = fs_stat(fd, &st);
	if (r)
		return r;
	int pfd;
	char name[NAME_MAX + 1];
	if ((r = locate(s, fd, &pfd, name)))
		return r;
	r = unlinkat(pfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) ? -errno : 0;
	close(pfd);
	return r;
}

/* ------------------------------------------------------------ attributes */

/* fd's name under /proc/self/fd, by which an *at call changes its file
 * (filling st); -EOPNOTSUPP for a symlink, whose mode and times are not
 * changed. */
static int proc_name_not_link(int fd, char n[16], struct stat *st)
{
	int r = fs_stat(fd, st);
	if (r)
		return r;
	if (S_ISLNK(st->st_mode))
		return -EOPNOTSUPP;
	fd_name(n, fd);
	return 0;
}

int fs_chmod(struct fs_share *s, int fd, mode_t mode)
{
	if (s->read_only)
		return -EROFS;
	struct stat st;
	char n[16];
	int r = proc_name_not_link(fd, n, &st);
	if (r)
		return r;
	return fchmodat(s->proc_fd, n, sanitize_mode(mode, S_ISDIR(st.st_mode)), 0) ? -errno : 0;
}

int fs_chown(struct fs_share *s, int fd, uint32_t uid, uint32_t gid, bool set_uid, bool set_gid)
{
	if (s->read_only)
		return -EROFS;
	if (!set_uid && !set_gid)
		return 0;
	uid_t u = set_uid ? (uid_t)uid : (uid_t)-1;
	gid_t g = set_gid ? (gid_t)gid : (gid_t)-1;
	if (fchownat(fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	/* Not root: the host keeps the owner (see fs.h). */
	if (errno == EPERM && !s->can_chown)
		return 0;
	return -errno;
}

int fs_truncate(struct fs_share *s, int fd, uint64_t size)
{
	if (s->read_only)
		return -EROFS;
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	struct stat st;
	int r = fs_stat(fd, &st);
	if (r)
		return r;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	int wfd = reopen(s, fd, O_WRONLY | O_NONBLOCK);
	if (wfd < 0)
		return wfd;
	r = ftruncate(wfd, (off_t)size) ? -errno : 0;
	close(wfd);
	return r;
}

int fs_utimes(struct fs_share *s, int fd, const struct timespec times[2])
{
	if (s->read_only)
		return -EROFS;
	if (utimensat(fd, "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	/* Kernels before 5.8 have no AT_EMPTY_PATH here. */
	struct stat st;
	char n[16];
	int r = proc_name_not_link(fd, n, &st);
	if (r)
		return r;
	return utimensat(s->proc_fd, n, times, 0) ? -errno : 0;
}

/* ------------------------------------------------------------ I/O */

int64_t fs_pread(int ofd, void *buf, size_t n, uint64_t off)
{
	if (off > (uint64_t)INT64_MAX)
		return -EINVAL;
	for (;;) {
		ssize_t r = pread(ofd, buf, n, (off_t)off);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return -errno;
	}
}

int64_t fs_pwrite(struct fs_share *s, int ofd, const void *buf, size_t n, uint64_t off)
{
	if (s->read_only)
		return -EROFS;
	if (off > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX - off)
		return -EINVAL;
	for (;;) {
		ssize_t r = pwrite(ofd, buf, n, (off_t)off);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return -errno;
	}
}

int fs_fsync(int ofd, bool datasync)
{
	return (datasync ? fdatasync(ofd) : fsync(ofd)) ? -errno : 0;
}

int64_t fs_getdents(int ofd, uint64_t off, void *buf, size_t cap)
{
	if (off > (uint64_t)INT64_MAX)
		return -EINVAL;
	if (lseek(ofd, (off_t)off, SEEK_SET) < 0)
		return -errno;
	long r = syscall(SYS_getdents64, ofd, buf, cap);
	return r < 0 ? -errno : r;
}

/* ------------------------------------------------------------ snapshots */

int fs_path_beneath(struct fs_share *s, int fd, char *buf, size_t cap)
{
	char *path, *rel;
	int r = path_below_root(s, fd, &path, &rel);
	if (r)
		return r;
	r = -ENOENT;
	/* The kernel's name for a deleted file ends in " (deleted)", which
	 * could also be a real name: the lookup below tells them apart. */
	int check = *rel ? openat2_beneath(s->root_fd, rel, O_PATH | O_NOFOLLOW)
			 : fcntl(s->root_fd, F_DUPFD_CLOEXEC, 0);
	if (check < 0) {
		r = check == -ENOMEM ? check : -ENOENT;
		goto out;
	}
	struct stat a, b;
	bool same = !fs_stat(fd, &a) && !fs_stat(check, &b) && same_file(&a, &b);
	close(check);
	if (!same)
		goto out;
	if (strlen(rel) >= cap) {
		r = -ENAMETOOLONG;
		goto out;
	}
	strcpy(buf, rel);
	r = 0;
out:
	free(path);
	return r;
}

int fs_lookup_path(struct fs_share *s, const char *rel, int *fd)
{
	if (rel[0] == '/')
		return -EINVAL;
	int r = *rel ? openat2_beneath(s->root_fd, rel, O_PATH | O_NOFOLLOW)
		     : fcntl(s->root_fd, F_DUPFD_CLOEXEC, 0);
	if (r < 0)
		return *rel ? r : -errno;
	*fd = r;
	return 0;
}

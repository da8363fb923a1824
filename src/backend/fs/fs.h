/*
 * Host filesystem access for a shared directory (the backend of virtio-9p):
 * every operation stays beneath the share's root, whatever the guest names
 * and whatever races a host process runs against us.
 *
 * How. A file is named by an O_PATH file descriptor, never by a path
 * string. Going from a directory to an entry takes exactly one component,
 * checked here (no "/", not empty, not longer than NAME_MAX), and resolved
 * with openat2(dirfd, name, O_PATH | O_NOFOLLOW, RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): a symlink is never followed
 * by the host (the guest reads it with readlink and resolves it itself), so
 * an absolute symlink, a ".." hidden in a link or a link swapped in while a
 * walk runs cannot lead outside. Operations that need a name in a directory
 * take the directory's descriptor and a checked component (mkdirat,
 * renameat, unlinkat, ...). ".." is resolved by finding the directory's
 * current place beneath the root and re-resolving its parent from the root
 * with RESOLVE_BENEATH; at the root it stays at the root.
 *
 * Operations the kernel only offers on an opened file (chmod, truncate,
 * opening for I/O, hard links) reopen the O_PATH descriptor through the
 * share's handle on /proc/self/fd (opened once when the share is opened),
 * which names exactly the inode the descriptor holds; nothing is looked up
 * by name again.
 *
 * A read-only share refuses every change with EROFS here, independently of
 * the protocol layer above. Files the guest creates or chmods never get the
 * set-user-ID bit, nor set-group-ID unless they are directories: a guest
 * must not be able to leave a privileged program on the host. When skiff
 * runs as root, new files get the owner the guest asked for (its attach
 * uid and the gid from the request); otherwise they belong to skiff's user
 * and ownership changes the host refuses are ignored (QEMU's
 * security_model=none behaves the same way).
 *
 * Every function returns 0 (or a count) on success and -errno on failure.
 * Descriptors returned belong to the caller.
 */
#ifndef SKIFF_BACKEND_FS_FS_H
#define SKIFF_BACKEND_FS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <time.h>

struct fs_share;

/* Who a new file should belong to (applied only when skiff runs as root). */
struct fs_cred {
	uint32_t uid, gid;
};

/* Open the directory `path` as a share. NULL with a message in err when it
 * is missing, not a directory, or /proc/self/fd is not available. */
struct fs_share *fs_share_open(const char *path, bool read_only, char *err, size_t errlen);
void fs_share_close(struct fs_share *s);
bool fs_share_read_only(const struct fs_share *s);
/* nodev: the guest may make only regular files and directories here:
 * mknod of a FIFO or socket and symlink fail with EPERM. A guest's FIFO
 * can hang a host program that opens it, and its symlink (to anywhere,
 * say /etc) leads a host program that follows it out of the share. */
void fs_share_set_nodev(struct fs_share *s, bool nodev);
/* The share root's device and inode (for qid numbering). */
void fs_share_root_id(const struct fs_share *s, dev_t *dev, ino_t *ino);

/* 0 if `name` is one usable directory entry name: not empty, not "." or
 * "..", no '/', at most NAME_MAX bytes. Else -EINVAL / -ENAMETOOLONG. */
int fs_name_check(const char *name);

/* A new O_PATH descriptor on the root, or on `aname` beneath it ("" and
 * "/" are the root itself; symlinks in aname are refused). */
int fs_attach(struct fs_share *s, const char *aname, int *fd);
/* One walk step from directory dirfd: "." stays, ".." goes to the parent
 * (the root's parent is the root), anything else must be a plain name.
 * *fd is a new O_PATH descriptor (a symlink is returned as itself). */
int fs_walk(struct fs_share *s, int dirfd, const char *name, int *fd);
/* A second descriptor for the same file (for fid clones). */
int fs_dup(int fd, int *out);

int fs_stat(int fd, struct stat *st);
int fs_statfs(int fd, struct statfs *st);
/* Is fd the share root? */
bool fs_is_root(struct fs_share *s, int fd);

/* Open the file fd names for I/O with host open(2) flags (O_CREAT is
 * ignored). Only regular files and directories can be opened (O_DIRECTORY
 * on anything else is ENOTDIR); write access or O_TRUNC on a read-only
 * share is EROFS. */
int fs_open(struct fs_share *s, int fd, int flags, int *ofd);
/* Create (or, without O_EXCL, open an existing) regular file `name` in
 * dirfd and open it with `flags`. *ofd is the open file. */
int fs_create(struct fs_share *s, int dirfd, const char *name, int flags, mode_t mode,
	      const struct fs_cred *cred, int *ofd);
/* Make a directory / a regular file, FIFO or socket node / a symlink;
 * *st describes what was made. Device nodes are refused with EPERM. */
int fs_mkdir(struct fs_share *s, int dirfd, const char *name, mode_t mode,
	     const struct fs_cred *cred, struct stat *st);
int fs_mknod(struct fs_share *s, int dirfd, const char *name, mode_t mode,
	     const struct fs_cred *cred, struct stat *st);
int fs_symlink(struct fs_share *s, int dirfd, const char *name, const char *target,
	       const struct fs_cred *cred, struct stat *st);
/* A hard link named `name` in dirfd to the file fd names. */
int fs_link(struct fs_share *s, int fd, int dirfd, const char *name);
int fs_renameat(struct fs_share *s, int olddirfd, const char *oldname, int newdirfd,
		const char *newname);
/* Rename the file fd names (wherever it is beneath the root) to
 * newdirfd/newname. The root cannot be renamed (EBUSY). */
int fs_rename_fd(struct fs_share *s, int fd, int newdirfd, const char *newname);
int fs_unlinkat(struct fs_share *s, int dirfd, const char *name, bool rmdir);
/* Remove the file or empty directory fd names. */
int fs_remove_fd(struct fs_share *s, int fd);
/* The target of the symlink fd names, NUL-terminated in buf. */
int fs_readlink(int fd, char *buf, size_t cap);

/* Attribute changes on the file fd names. Times: UTIME_NOW / UTIME_OMIT
 * allowed in tv_nsec. */
int fs_chmod(struct fs_share *s, int fd, mode_t mode);
int fs_chown(struct fs_share *s, int fd, uint32_t uid, uint32_t gid, bool set_uid, bool set_gid);
int fs_truncate(struct fs_share *s, int fd, uint64_t size);
int fs_utimes(struct fs_share *s, int fd, const struct timespec times[2]);

/* Plain I/O on a descriptor from fs_open/fs_create. */
int64_t fs_pread(int ofd, void *buf, size_t n, uint64_t off);
int64_t fs_pwrite(struct fs_share *s, int ofd, const void *buf, size_t n, uint64_t off);
int fs_fsync(int ofd, bool datasync);
/* Raw linux_dirent64 records of directory ofd starting at cookie `off`
 * (0 = the start): bytes filled, 0 at the end. */
int64_t fs_getdents(int ofd, uint64_t off, void *buf, size_t cap);

/* Snapshots of a share's open files. The path of the file fd names,
 * relative to the root ("" for the root itself), checked to name that very
 * file now; -ENOENT when it is no longer reachable beneath the root
 * (deleted, or moved out by the host). */
int fs_path_beneath(struct fs_share *s, int fd, char *buf, size_t cap);
/* A new O_PATH descriptor on `rel` (relative to the root, symlinks never
 * followed: a last component that is one is returned as itself). */
int fs_lookup_path(struct fs_share *s, const char *rel, int *fd);

#endif

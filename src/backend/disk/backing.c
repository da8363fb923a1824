/*
 * Where a backing file may come from. A qcow2 image names its backing file
 * itself, so an image from anywhere (a download, a guest's own disk) could
 * name any host file, by absolute path or by `../`. A chain is therefore
 * followed only when the user turned it on for the drive, and each name is
 * resolved by the kernel beneath one of a few roots: the top image's own
 * directory and the directories the user listed (openat2 with
 * RESOLVE_BENEATH, so neither `..` nor a symlink leads out; magic links in
 * /proc are refused too). A block device is a backing file only when the
 * user listed that device itself.
 *
 * Names are joined the way qcow2.txt says (a relative name is relative to
 * the directory of the image that names it), normalized as strings, then
 * matched by prefix against the roots' canonical paths; the kernel does
 * the real resolution of the rest beneath the root that matched.
 */
#include "backend/disk/disk_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Adds root `path` (a directory or a block device the user named). */
static int add_root(struct disk_roots *r, const char *path, char *err, size_t errlen)
{
	if (r->n >= DISK_MAX_ROOTS) {
		disk_err(err, errlen, path, "too many backing directories (at most %d)",
			 DISK_MAX_BACKING_DIRS);
		return -E2BIG;
	}
	char *canon = realpath(path, NULL);
	if (!canon) {
		int e = errno;
		disk_err(err, errlen, path, "backing directory: %s", strerror(e));
		return -e;
	}
	struct stat st;
	if (stat(canon, &st) < 0 || (!S_ISDIR(st.st_mode) && !S_ISBLK(st.st_mode))) {
		free(canon);
		disk_err(err, errlen, path, "a backing directory must be a directory or a block device");
		return -ENOTDIR;
	}
	int fd = -1;
	if (S_ISDIR(st.st_mode)) {
		fd = open(canon, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			free(canon);
			disk_err(err, errlen, path, "backing directory: %s", strerror(e));
			return -e;
		}
	}
	r->fd[r->n] = fd;
	r->path[r->n] = canon;
	r->n++;
	return 0;
}

int disk_roots_init(struct disk_roots *r, const char *top, const struct disk_open_opts *o,
		    char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	if (o->nbacking_dirs > DISK_MAX_BACKING_DIRS || (o->nbacking_dirs && !o->backing_dirs)) {
		disk_err(err, errlen, top, "at most %d backing directories", DISK_MAX_BACKING_DIRS);
		return -E2BIG;
	}
	r->top = realpath(top, NULL);
	if (!r->top) {
		int e = errno;
		disk_err(err, errlen, top, "cannot open: %s", strerror(e));
		return -e;
	}
	char *dir = strdup(r->top);
	if (!dir) {
		disk_roots_free(r);
		disk_err(err, errlen, top, "out of memory");
		return -ENOMEM;
	}
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = 0;   /* the image lives in "/" */
	else if (slash)
		*slash = 0;
	int ret = add_root(r, dir, err, errlen);
	free(dir);
	for (size_t i = 0; ret == 0 && i < o->nbacking_dirs; i++)
		ret = add_root(r, o->backing_dirs[i], err, errlen);
	if (ret < 0)
		disk_roots_free(r);
	return ret;
}

void disk_roots_free(struct disk_roots *r)
{
	for (unsigned i = 0; i < r->n; i++) {
		if (r->fd[i] >= 0)
			close(r->fd[i]);
		free(r->path[i]);
	}
	free(r->top);
	memset(r, 0, sizeof(*r));
}

/* Collapses "//", "." and ".." in absolute path p, in place, as a string
 * (".." above "/" stays at "/"). Which root a name belongs to is decided on
 * this form; the kernel then resolves the rest beneath that root, so a
 * symlink can still not lead out. */
static void normalize(char *p)
{
	char *out = p;   /* p[0] is '/' */
	const char *in = p;
	while (*in) {
		while (*in == '/')
			in++;
		const char *end = strchrnul(in, '/');
		size_t len = (size_t)(end - in);
		if (len == 0 || (len == 1 && in[0] == '.')) {
			/* nothing */
		} else if (len == 2 && in[0] == '.' && in[1] == '.') {
			while (out > p && *--out != '/')
				;
		} else {
			*out++ = '/';
			memmove(out, in, len);
			out += len;
		}
		in = end;
	}
	if (out == p)
		*out++ = '/';
	*out = 0;
}

/* The part of `full` below root `root`, or NULL when it is not below it. */
static const char *below(const char *root, const char *full)
{
	size_t n = strlen(root);
	if (n == 1 && root[0] == '/')
		return full[0] == '/' ? full + 1 : NULL;
	if (strncmp(full, root, n) || full[n] != '/')
		return NULL;
	return full + n + 1;
}

int disk_roots_open(const struct disk_roots *r, const char *from, const char *name,
		    char *full, size_t fulllen, char *err, size_t errlen)
{
	/* qcow2.txt: a relative name is relative to the directory of the
	 * image that names it; every image of a chain has an absolute path
	 * here (the top one its canonical path). */
	int n;
	if (name[0] == '/') {
		n = snprintf(full, fulllen, "%s", name);
	} else {
		const char *slash = strrchr(from, '/');
		int dirlen = slash ? (int)(slash - from) : 0;
		n = snprintf(full, fulllen, "%.*s/%s", dirlen, from, name);
	}
	if (n < 0 || (size_t)n >= fulllen) {
		disk_err(err, errlen, from, "backing file path too long");
		return -ENAMETOOLONG;
	}
	normalize(full);
	int last = -EXDEV;
	for (unsigned i = 0; i < r->n; i++) {
		if (r->fd[i] < 0) {
			/* A block device the user named: only that exact name. */
			if (strcmp(full, r->path[i]))
				continue;
			int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
			if (fd < 0) {
				int e = errno;
				disk_err(err, errlen, full, "cannot open: %s", strerror(e));
				return -e;
			}
			return fd;
		}
		const char *rest = below(r->path[i], full);
		if (!rest)
			continue;
		struct open_how how = {
			.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
		};
		long fd;
		do
			fd = syscall(SYS_openat2, r->fd[i], *rest ? rest : ".", &how, sizeof(how));
		while (fd < 0 && errno == EINTR);
		if (fd < 0) {
			last = -errno;
			if (last == -EXDEV || last == -ELOOP)
				continue;   /* leads out of this root; another may hold it */
			disk_err(err, errlen, full, "cannot open: %s", strerror(-last));
			return last;
		}
		struct stat st;
		if (fstat((int)fd, &st) == 0 && S_ISBLK(st.st_mode)) {
			close((int)fd);
			disk_err(err, errlen, full, "is a block device, which serves as a backing file "
				 "only when backing= names that device itself");
			return -EPERM;
		}
		return (int)fd;
	}
	char roots[1024];
	size_t at = 0;
	roots[0] = 0;
	for (unsigned i = 0; i < r->n && at < sizeof(roots); i++) {
		int k = snprintf(roots + at, sizeof(roots) - at, "%s%s", i ? ", " : "", r->path[i]);
		if (k > 0)
			at += (size_t)k;
	}
	disk_err(err, errlen, full, "is not beneath the directories backing files may come from "
		 "(%s)%s; allow another with backing=DIR", roots,
		 last == -ELOOP ? ", or it leads there through a symlink" : "");
	return -EPERM;
}

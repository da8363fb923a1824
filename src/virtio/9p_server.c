/*
 * The 9P2000.L server; see 9p_server.h. Message semantics follow the
 * 9P2000 manual (intro(5), walk(5), clunk(5), remove(5), flush(5),
 * version(5)) and the 9P2000.L additions as the Linux client uses them.
 *
 * A fid names a file by an O_PATH descriptor (fid->fd) and, once opened
 * with Tlopen/Tlcreate, also holds the open descriptor (fid->ofd). Path
 * strings are never kept; all resolution is backend/fs's. The fid table is
 * a fixed pool with an open-addressing hash on the 32-bit fid number.
 */
#include "virtio/9p_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/snapfile.h"
#include "virtio/9p_proto.h"

#define HASH_BITS 13                       /* 8192 slots for 4096 fids */
#define HASH_SIZE (1u << HASH_BITS)
#define SLOT_EMPTY 0xffffu
#define DENTS_BUF (64u * 1024)             /* getdents64 scratch */

enum fid_kind { FID_FREE, FID_PATH, FID_XATTR };

struct p9_fid {
	uint32_t id;
	uint8_t kind;
	bool is_dir;
	int fd;            /* names the file (O_PATH, or a dup of ofd) */
	int ofd;           /* open for I/O, or -1 */
	uint32_t uid;      /* the attach's n_uname, for new files' owner */
};

struct p9_server {
	struct fs_share *share;
	dev_t root_dev;
	ino_t root_ino;
	uint32_t msize;
	unsigned nfids;
	struct p9_fid fids[P9_SERVER_MAX_FIDS];
	uint16_t free_list[P9_SERVER_MAX_FIDS];
	unsigned nfree;
	uint16_t slots[HASH_SIZE];
	char *arena;                    /* decoded strings */
	size_t arena_len;
	uint8_t *dents;                 /* DENTS_BUF */
	char link[PATH_MAX];            /* readlink scratch */
};

/* ------------------------------------------------------------ fid table */

static unsigned fid_hash(uint32_t id)
{
	return (id * 2654435761u) >> (32 - HASH_BITS);
}

static struct p9_fid *fid_find(struct p9_server *srv, uint32_t id)
{
	for (unsigned i = fid_hash(id);; i = (i + 1) & (HASH_SIZE - 1)) {
		uint16_t s = srv->slots[i];
		if (s == SLOT_EMPTY)
			return NULL;
		if (srv->fids[s].id == id)
			return &srv->fids[s];
	}
}

/* A new fid (not in the table yet: callers check). NULL when full. */
static struct p9_fid *fid_new(struct p9_server *srv, uint32_t id)
{
	if (!srv->nfree)
		return NULL;
	uint16_t idx = srv->free_list[--srv->nfree];
	struct p9_fid *f = &srv->fids[idx];
	memset(f, 0, sizeof(*f));
	f->id = id;
	f->kind = FID_PATH;
	f->fd = -1;
	f->ofd = -1;
	unsigned i = fid_hash(id);
	while (srv->slots[i] != SLOT_EMPTY)
		i = (i + 1) & (HASH_SIZE - 1);
	srv->slots[i] = idx;
	srv->nfids++;
	return f;
}

static void fid_close_fds(struct p9_fid *f)
{
	if (f->ofd >= 0)
		close(f->ofd);
	if (f->fd >= 0)
		close(f->fd);
	f->ofd = f->fd = -1;
}

static void fid_free(struct p9_server *srv, struct p9_fid *f)
{
	uint16_t idx = (uint16_t)(f - srv->fids);
	unsigned i = fid_hash(f->id);
	while (srv->slots[i] != idx)
		i = (i + 1) & (HASH_SIZE - 1);
	/* Backward-shift deletion keeps every probe chain unbroken. */
	srv->slots[i] = SLOT_EMPTY;
	for (unsigned j = (i + 1) & (HASH_SIZE - 1); srv->slots[j] != SLOT_EMPTY;
	     j = (j + 1) & (HASH_SIZE - 1)) {
		unsigned k = fid_hash(srv->fids[srv->slots[j]].id);
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		srv->slots[i] = srv->slots[j];
		srv->slots[j] = SLOT_EMPTY;
		i = j;
	}
	fid_close_fds(f);
	f->kind = FID_FREE;
	srv->free_list[srv->nfree++] = idx;
	srv->nfids--;
}

static void fids_clear(struct p9_server *srv)
{
	for (unsigned i = 0, left = srv->nfids; i < P9_SERVER_MAX_FIDS && left; i++) {
		if (srv->fids[i].kind != FID_FREE) {
			fid_close_fds(&srv->fids[i]);
			srv->fids[i].kind = FID_FREE;
			left--;
		}
	}
	for (unsigned i = 0; i < HASH_SIZE; i++)
		srv->slots[i] = SLOT_EMPTY;
	srv->nfree = P9_SERVER_MAX_FIDS;
	for (unsigned i = 0; i < P9_SERVER_MAX_FIDS; i++)
		srv->free_list[i] = (uint16_t)(P9_SERVER_MAX_FIDS - 1 - i);
	srv->nfids = 0;
}

/* ------------------------------------------------------------ lifecycle */

struct p9_server *p9_server_create(struct fs_share *share, char *err, size_t errlen)
{
	struct p9_server *srv = calloc(1, sizeof(*srv));
	if (srv) {
		srv->arena_len = P9_ARENA_SIZE(P9_SERVER_MAX_MSIZE);
		srv->arena = malloc(srv->arena_len);
		srv->dents = malloc(DENTS_BUF);
	}
	if (!srv || !srv->arena || !srv->dents) {
		snprintf(err, errlen, "out of memory");
		if (srv) {
			free(srv->arena);
			free(srv->dents);
		}
		free(srv);
		fs_share_close(share);
		return NULL;
	}
	srv->share = share;
	fs_share_root_id(share, &srv->root_dev, &srv->root_ino);
	srv->msize = P9_SERVER_MAX_MSIZE;
	fids_clear(srv);
	/* Each fid may hold two descriptors: raise the process's soft
	 * descriptor limit by a full fid table's worth (each share adds its
	 * own), as far as the hard limit allows. */
	struct rlimit rl;
	rlim_t want = 2 * P9_SERVER_MAX_FIDS;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max - rl.rlim_cur < want ? rl.rlim_max : rl.rlim_cur + want;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	return srv;
}

void p9_server_destroy(struct p9_server *srv)
{
	if (!srv)
		return;
	fids_clear(srv);
	fs_share_close(srv->share);
	free(srv->arena);
	free(srv->dents);
	free(srv);
}

void p9_server_reset(struct p9_server *srv)
{
	fids_clear(srv);
	srv->msize = P9_SERVER_MAX_MSIZE;
}

uint32_t p9_server_msize(const struct p9_server *srv)
{
	return srv->msize;
}

unsigned p9_server_nfids(const struct p9_server *srv)
{
	return srv->nfids;
}

/* ------------------------------------------------------------ helpers */

static uint64_t qid_path(const struct p9_server *srv, dev_t dev, ino_t ino)
{
	if (dev == srv->root_dev)
		return (uint64_t)ino;
	/* Another filesystem mounted beneath the share: keep its inode
	 * numbers apart from the root filesystem's. */
	uint64_t h = (uint64_t)dev * 0x9e3779b97f4a7c15ull;
	return (uint64_t)ino ^ (h & 0xffff000000000000ull);
}

static void stat_qid(const struct p9_server *srv, const struct stat *st, struct p9_qid *q)
{
	q->type = S_ISDIR(st->st_mode) ? P9_QTDIR : S_ISLNK(st->st_mode) ? P9_QTSYMLINK : P9_QTFILE;
	q->version = 0;
	q->path = qid_path(srv, st->st_dev, st->st_ino);
}

static int fd_qid(const struct p9_server *srv, int fd, struct p9_qid *q, bool *is_dir)
{
	struct stat st;
	int r = fs_stat(fd, &st);
	if (r)
		return -r;
	stat_qid(srv, &st, q);
	if (is_dir)
		*is_dir = S_ISDIR(st.st_mode);
	return 0;
}

/* A fid that names a file (not an xattr fid). */
static struct p9_fid *path_fid(struct p9_server *srv, uint32_t id)
{
	struct p9_fid *f = fid_find(srv, id);
	return f && f->kind == FID_PATH ? f : NULL;
}

static bool ro(const struct p9_server *srv)
{
	return fs_share_read_only(srv->share);
}

/* Tlopen/Tlcreate flags to host open(2) flags: access mode, truncate,
 * append, synchronous writes, directory. Everything else (O_DIRECT's
 * alignment rules, O_NOATIME's owner rule, O_ASYNC, O_NONBLOCK, ...) is
 * the guest kernel's concern, not the host file's. */
static int host_open_flags(uint32_t f)
{
	int h = (int)(f & P9_DOTL_ACCMODE);   /* 0, 1, 2, 3 as on Linux */
	if (f & P9_DOTL_TRUNC)
		h |= O_TRUNC;
	if (f & P9_DOTL_APPEND)
		h |= O_APPEND;
	if (f & P9_DOTL_DSYNC)
		h |= O_DSYNC;
	if (f & P9_DOTL_SYNC)
		h |= O_SYNC;
	if (f & P9_DOTL_DIRECTORY)
		h |= O_DIRECTORY;
	if (f & P9_DOTL_EXCL)
		h |= O_EXCL;
	return h;
}

/* ------------------------------------------------------------ handlers */

/* Each handler answers into o (already started with the R type) and
 * returns 0, or a positive errno for Rlerror. */

static int h_version(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	/* version(5): a new session; every fid of the old one is gone. */
	fids_clear(srv);
	uint32_t msize = m->u.version.msize;
	if (msize > P9_SERVER_MAX_MSIZE)
		msize = P9_SERVER_MAX_MSIZE;
	if (msize < P9_SERVER_MIN_MSIZE)
		return EINVAL;
	bool dotl = !strncmp(m->u.version.version, "9P2000.L", 8);
	srv->msize = msize;
	p9_put32(o, msize);
	p9_put_str(o, dotl ? "9P2000.L" : "unknown");
	return 0;
}

static int h_attach(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	if (fid_find(srv, m->u.attach.fid))
		return EBADF;
	int fd, r = fs_attach(srv->share, m->u.attach.aname, &fd);
	if (r)
		return -r;
	struct p9_qid q;
	bool dir;
	if ((r = fd_qid(srv, fd, &q, &dir))) {
		close(fd);
		return r;
	}
	struct p9_fid *f = fid_new(srv, m->u.attach.fid);
	if (!f) {
		close(fd);
		return ENFILE;
	}
	f->fd = fd;
	f->is_dir = dir;
	f->uid = m->u.attach.n_uname == 0xffffffffu ? 65534 : m->u.attach.n_uname;
	p9_put_qid(o, &q);
	return 0;
}

static int h_walk(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	struct p9_fid *f = path_fid(srv, m->u.walk.fid);
	if (!f)
		return EBADF;
	uint32_t newfid = m->u.walk.newfid;
	if (newfid != m->u.walk.fid) {
		if (fid_find(srv, newfid))
			return EBADF;
		if (!srv->nfree)
			return ENFILE;
	}
	struct p9_qid qids[P9_MAXWELEM];
	unsigned n = m->u.walk.nwname, done = 0;
	int cur = f->fd;          /* not ours until the first step */
	bool cur_dir = f->is_dir;
	for (; done < n; done++) {
		int nfd, r = fs_walk(srv->share, cur, m->u.walk.wname[done], &nfd);
		if (!r && (r = -fd_qid(srv, nfd, &qids[done], &cur_dir)))
			close(nfd);
		if (r) {
			if (cur != f->fd)
				close(cur);
			if (done == 0)
				return -r;   /* walk(5): the first name failing is an error */
			goto reply;
		}
		if (cur != f->fd)
			close(cur);
		cur = nfd;
	}
	if (n == 0) {
		int r = fs_dup(f->fd, &cur);
		if (r)
			return -r;
	}
	/* Every name walked: newfid names the result. */
	if (newfid == m->u.walk.fid) {
		fid_close_fds(f);
		f->fd = cur;
		f->is_dir = cur_dir;
	} else {
		struct p9_fid *nf = fid_new(srv, newfid);
		nf->fd = cur;
		nf->is_dir = cur_dir;
		nf->uid = f->uid;
	}
reply:
	p9_put16(o, (uint16_t)done);
	for (unsigned i = 0; i < done; i++)
		p9_put_qid(o, &qids[i]);
	return 0;
}

static int h_lopen(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	struct p9_fid *f = path_fid(srv, m->u.lopen.fid);
	if (!f)
		return EBADF;
	if (f->ofd >= 0)
		return EBADF;   /* already open */
	int flags = host_open_flags(m->u.lopen.flags) & ~O_EXCL;
	int ofd, r = fs_open(srv->share, f->fd, flags, &ofd);
	if (r)
		return -r;
	struct p9_qid q;
	if ((r = fd_qid(srv, ofd, &q, &f->is_dir))) {
		close(ofd);
		return r;
	}
	f->ofd = ofd;
	p9_put_qid(o, &q);
	p9_put32(o, 0);   /* iounit: msize decides */
	return 0;
}

static int h_lcreate(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	struct p9_fid *f = path_fid(srv, m->u.lcreate.fid);
	if (!f)
		return EBADF;
	if (f->ofd >= 0)
		return EBADF;
	if (ro(srv))
		return EROFS;
	struct fs_cred cred = { f->uid, m->u.lcreate.gid };
	int ofd, dupfd, r = fs_create(srv->share, f->fd, m->u.lcreate.name,
				      host_open_flags(m->u.lcreate.flags),
				      (mode_t)m->u.lcreate.mode, &cred, &ofd);
	if (r)
		return -r;
	struct p9_qid q;
	if ((r = fd_qid(srv, ofd, &q, NULL)) || (r = -fs_dup(ofd, &dupfd))) {
		close(ofd);
		return r;
	}
	/* lcreate: the fid now names the new, open file. */
	fid_close_fds(f);
	f->fd = dupfd;
	f->ofd = ofd;
	f->is_dir = false;
	p9_put_qid(o, &q);
	p9_put32(o, 0);
	return 0;
}

static int h_read(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	struct p9_fid *f = fid_find(srv, m->u.io.fid);
	if (!f)
		return EBADF;
	uint32_t count = m->u.io.count;
	size_t room = o->cap - o->len - 4;   /* o->cap >= 11 here */
	if (count > room)
		count = (uint32_t)room;
	if (f->kind == FID_XATTR) {
		p9_put32(o, 0);      /* the (empty) attribute list */
		return 0;
	}
	if (f->ofd < 0)
		return EBADF;
	if (f->is_dir)
		return EISDIR;
	size_t at = o->len;
	p9_put32(o, 0);
	uint8_t *data = p9_reserve(o, count);
	int64_t n = fs_pread(f->ofd, data, count, m->u.io.offset);
	if (n < 0)
		return (int)-n;
	o->len = at + 4 + (size_t)n;
	for (unsigned i = 0; i < 4; i++)
		o->buf[at + i] = (uint8_t)((uint64_t)n >> (8 * i));
	return 0;
}

static int h_write(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	struct p9_fid *f = path_fid(srv, m->u.io.fid);
	if (!f || f->ofd < 0)
		return EBADF;
	if (ro(srv))
		return EROFS;
	if (f->is_dir)
		return EISDIR;
	int64_t n = fs_pwrite(srv->share, f->ofd, m->u.io.data, m->u.io.count, m->u.io.offset);
	if (n < 0)
		return (int)-n;
	p9_put32(o, (uint32_t)n);
	return 0;
}

/* Directory entries from getdents64 (struct linux_dirent64). */
struct dirent64_hdr {
	uint64_t d_ino;
	int64_t d_off;
	uint16_t d_reclen;
	uint8_t d_type;
} __attribute__((packed));

#define DIRENT64_NAME_OFF 19

static int h_readdir(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	struct p9_fid *f = path_fid(srv, m->u.io.fid);
	if (!f || f->ofd < 0)
		return EBADF;
	if (!f->is_dir)
		return ENOTDIR;
	struct stat dst;
	int r = fs_stat(f->ofd, &dst);
	if (r)
		return -r;
	bool at_root = dst.st_dev == srv->root_dev && dst.st_ino == srv->root_ino;
	size_t room = o->cap - o->len - 4;
	if (m->u.io.count < room)
		room = m->u.io.count;
	/* Ask the host for about as much as fits, but at least enough for one
	 * long name. */
	size_t want = room < 1024 ? 1024 : room;
	if (want > DENTS_BUF)
		want = DENTS_BUF;
	int64_t got = fs_getdents(f->ofd, m->u.io.offset, srv->dents, want);
	if (got < 0)
		return (int)-got;
	size_t at = o->len;
	p9_put32(o, 0);
	size_t used = 0, pos = 0;
	bool any = false;
	while (pos + DIRENT64_NAME_OFF < (size_t)got) {
		struct dirent64_hdr h;
		memcpy(&h, srv->dents + pos, sizeof(h));
		if (h.d_reclen < DIRENT64_NAME_OFF + 1 || h.d_reclen > (size_t)got - pos)
			break;
		const char *name = (const char *)srv->dents + pos + DIRENT64_NAME_OFF;
		size_t nlen = strnlen(name, h.d_reclen - DIRENT64_NAME_OFF);
		size_t need = P9_QID_SIZE + 8 + 1 + 2 + nlen;
		if (used + need > room)
			break;
		struct p9_qid q = {
			.type = h.d_type == DT_DIR ? P9_QTDIR :
				h.d_type == DT_LNK ? P9_QTSYMLINK : P9_QTFILE,
		};
		/* The root's ".." would name a host directory outside the
		 * share: show the root itself. */
		if (at_root && nlen == 2 && !memcmp(name, "..", 2))
			q.path = qid_path(srv, srv->root_dev, srv->root_ino);
		else
			q.path = qid_path(srv, dst.st_dev, (ino_t)h.d_ino);
		p9_put_qid(o, &q);
		p9_put64(o, (uint64_t)h.d_off);
		p9_put8(o, h.d_type);
		p9_put_strn(o, name, nlen);
		used += need;
		any = true;
		pos += h.d_reclen;
	}
	if (!any && got > 0)
		return EINVAL;   /* not even one entry fits in count */
	for (unsigned i = 0; i < 4; i++)
		o->buf[at + i] = (uint8_t)(used >> (8 * i));
	return 0;
}

static int h_getattr(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	struct p9_fid *f = path_fid(srv, m->u.getattr.fid);
	if (!f)
		return EBADF;
	struct stat st;
	int r = fs_stat(f->fd, &st);
	if (r)
		return -r;
	struct p9_qid q;
	stat_qid(srv, &st, &q);
	p9_put64(o, P9_GETATTR_BASIC);
	p9_put_qid(o, &q);
	p9_put32(o, st.st_mode);
	p9_put32(o, st.st_uid);
	p9_put32(o, st.st_gid);
	p9_put64(o, st.st_nlink);
	p9_put64(o, st.st_rdev);
	p9_put64(o, (uint64_t)st.st_size);
	p9_put64(o, (uint64_t)st.st_blksize);
	p9_put64(o, (uint64_t)st.st_blocks);
	p9_put64(o, (uint64_t)st.st_atim.tv_sec);
	p9_put64(o, (uint64_t)st.st_atim.tv_nsec);
	p9_put64(o, (uint64_t)st.st_mtim.tv_sec);
	p9_put64(o, (uint64_t)st.st_mtim.tv_nsec);
	p9_put64(o, (uint64_t)st.st_ctim.tv_sec);
	p9_put64(o, (uint64_t)st.st_ctim.tv_nsec);
	p9_put64(o, 0);   /* btime: not asked for (not in BASIC) */
	p9_put64(o, 0);
	p9_put64(o, 0);   /* gen */
	p9_put64(o, 0);   /* data_version */
	return 0;
}

static int set_time(uint32_t valid, uint32_t now_bit, uint32_t set_bit, uint64_t sec,
		    uint64_t nsec, struct timespec *ts)
{
	if (!(valid & now_bit)) {
		ts->tv_sec = 0;
		ts->tv_nsec = UTIME_OMIT;
	} else if (!(valid & set_bit)) {
		ts->tv_sec = 0;
		ts->tv_nsec = UTIME_NOW;
	} else {
		if (nsec >= 1000000000ull || sec > (uint64_t)INT64_MAX)
			return EINVAL;
		ts->tv_sec = (time_t)sec;
		ts->tv_nsec = (long)nsec;
	}
	return 0;
}

static int h_setattr(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	(void)o;
	struct p9_fid *f = path_fid(srv, m->u.setattr.fid);
	if (!f)
		return EBADF;
	uint32_t v = m->u.setattr.valid;
	/* CTIME alone asks for nothing the host does not do by itself. */
	if (!(v & ~P9_SETATTR_CTIME))
		return 0;
	if (ro(srv))
		return EROFS;
	struct timespec ts[2];
	int r;
	if ((r = set_time(v, P9_SETATTR_ATIME, P9_SETATTR_ATIME_SET, m->u.setattr.atime_sec,
			  m->u.setattr.atime_nsec, &ts[0])) ||
	    (r = set_time(v, P9_SETATTR_MTIME, P9_SETATTR_MTIME_SET, m->u.setattr.mtime_sec,
			  m->u.setattr.mtime_nsec, &ts[1])))
		return r;
	/* Owner first (it may clear set-ID bits), then mode, size, times
	 * (truncating moves mtime). */
	if (v & (P9_SETATTR_UID | P9_SETATTR_GID)) {
		r = fs_chown(srv->share, f->fd, m->u.setattr.uid, m->u.setattr.gid,
			     v & P9_SETATTR_UID, v & P9_SETATTR_GID);
		if (r)
			return -r;
	}
	if (v & P9_SETATTR_MODE) {
		if ((r = fs_chmod(srv->share, f->fd, (mode_t)m->u.setattr.mode)))
			return -r;
	}
	if (v & P9_SETATTR_SIZE) {
		if ((r = fs_truncate(srv->share, f->fd, m->u.setattr.size)))
			return -r;
	}
	if (v & (P9_SETATTR_ATIME | P9_SETATTR_MTIME)) {
		if ((r = fs_utimes(srv->share, f->fd, ts)))
			return -r;
	}
	return 0;
}

static int made(struct p9_server *srv, int r, const struct stat *st, struct p9_out *o)
{
	if (r)
		return -r;
	struct p9_qid q;
	stat_qid(srv, st, &q);
	p9_put_qid(o, &q);
	return 0;
}

static int h_mkdir(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	struct p9_fid *d = path_fid(srv, m->u.mkdir.dfid);
	if (!d)
		return EBADF;
	struct fs_cred cred = { d->uid, m->u.mkdir.gid };
	struct stat st;
	return made(srv, fs_mkdir(srv->share, d->fd, m->u.mkdir.name, (mode_t)m->u.mkdir.mode,
				  &cred, &st), &st, o);
}

static int h_mknod(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	struct p9_fid *d = path_fid(srv, m->u.mknod.dfid);
	if (!d)
		return EBADF;
	struct fs_cred cred = { d->uid, m->u.mknod.gid };
	struct stat st;
	return made(srv, fs_mknod(srv->share, d->fd, m->u.mknod.name, (mode_t)m->u.mknod.mode,
				  &cred, &st), &st, o);
}

static int h_symlink(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	struct p9_fid *d = path_fid(srv, m->u.symlink.fid);
	if (!d)
		return EBADF;
	struct fs_cred cred = { d->uid, m->u.symlink.gid };
	struct stat st;
	return made(srv, fs_symlink(srv->share, d->fd, m->u.symlink.name, m->u.symlink.target,
				    &cred, &st), &st, o);
}

static int h_link(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	(void)o;
	struct p9_fid *d = path_fid(srv, m->u.link.dfid), *f = path_fid(srv, m->u.link.fid);
	if (!d || !f)
		return EBADF;
	return -fs_link(srv->share, f->fd, d->fd, m->u.link.name);
}

static int h_readlink(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	struct p9_fid *f = path_fid(srv, m->u.fid.fid);
	if (!f)
		return EBADF;
	int r = fs_readlink(f->fd, srv->link, sizeof(srv->link));
	if (r)
		return -r;
	p9_put_str(o, srv->link);
	return o->overflow ? ERANGE : 0;
}

static int h_rename(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	(void)o;
	struct p9_fid *f = path_fid(srv, m->u.rename.fid), *d = path_fid(srv, m->u.rename.dfid);
	if (!f || !d)
		return EBADF;
	return -fs_rename_fd(srv->share, f->fd, d->fd, m->u.rename.name);
}

static int h_renameat(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	(void)o;
	struct p9_fid *a = path_fid(srv, m->u.renameat.olddirfid);
	struct p9_fid *b = path_fid(srv, m->u.renameat.newdirfid);
	if (!a || !b)
		return EBADF;
	return -fs_renameat(srv->share, a->fd, m->u.renameat.oldname, b->fd, m->u.renameat.newname);
}

static int h_unlinkat(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	(void)o;
	struct p9_fid *d = path_fid(srv, m->u.unlinkat.dirfid);
	if (!d)
		return EBADF;
	if (m->u.unlinkat.flags & ~P9_DOTL_AT_REMOVEDIR)
		return EINVAL;
	return -fs_unlinkat(srv->share, d->fd, m->u.unlinkat.name,
			    m->u.unlinkat.flags & P9_DOTL_AT_REMOVEDIR);
}

static int h_clunk(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	(void)o;
	struct p9_fid *f = fid_find(srv, m->u.fid.fid);
	if (!f)
		return EBADF;
	fid_free(srv, f);
	return 0;
}

static int h_remove(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	(void)o;
	struct p9_fid *f = fid_find(srv, m->u.fid.fid);
	if (!f)
		return EBADF;
	/* remove(5): the fid is clunked even when the remove fails. */
	int r = f->kind == FID_PATH ? fs_remove_fd(srv->share, f->fd) : -EINVAL;
	fid_free(srv, f);
	return -r;
}

static int h_statfs(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	struct p9_fid *f = path_fid(srv, m->u.fid.fid);
	if (!f)
		return EBADF;
	struct statfs st;
	int r = fs_statfs(f->fd, &st);
	if (r)
		return -r;
	uint64_t fsid;
	memcpy(&fsid, &st.f_fsid, sizeof(fsid));
	p9_put32(o, (uint32_t)st.f_type);
	p9_put32(o, (uint32_t)st.f_bsize);
	p9_put64(o, st.f_blocks);
	p9_put64(o, st.f_bfree);
	p9_put64(o, st.f_bavail);
	p9_put64(o, st.f_files);
	p9_put64(o, st.f_ffree);
	p9_put64(o, fsid);
	p9_put32(o, (uint32_t)st.f_namelen);
	return 0;
}

static int h_fsync(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	(void)o;
	struct p9_fid *f = path_fid(srv, m->u.fsync.fid);
	if (!f || f->ofd < 0)
		return EBADF;
	return -fs_fsync(f->ofd, m->u.fsync.datasync != 0);
}

static int h_lock(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	if (!path_fid(srv, m->u.lock.fid))
		return EBADF;
	if (m->u.lock.type > P9_LOCK_TYPE_UNLCK)
		return EINVAL;
	/* The guest kernel already arbitrated the lock among its own
	 * processes; nothing else shares these locks. */
	p9_put8(o, P9_LOCK_SUCCESS);
	return 0;
}

static int h_getlock(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	if (!path_fid(srv, m->u.lock.fid))
		return EBADF;
	if (m->u.lock.type > P9_LOCK_TYPE_UNLCK)
		return EINVAL;
	p9_put8(o, P9_LOCK_TYPE_UNLCK);
	p9_put64(o, m->u.lock.start);
	p9_put64(o, m->u.lock.length);
	p9_put32(o, m->u.lock.proc_id);
	p9_put_str(o, m->u.lock.client_id);
	return 0;
}

static int h_xattrwalk(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	if (!path_fid(srv, m->u.xattrwalk.fid))
		return EBADF;
	if (m->u.xattrwalk.newfid == m->u.xattrwalk.fid || fid_find(srv, m->u.xattrwalk.newfid))
		return EBADF;
	/* No extended attributes are shared: the list is empty and every
	 * name is absent. */
	if (m->u.xattrwalk.name[0])
		return ENODATA;
	struct p9_fid *nf = fid_new(srv, m->u.xattrwalk.newfid);
	if (!nf)
		return ENFILE;
	nf->kind = FID_XATTR;
	p9_put64(o, 0);
	return 0;
}

static int h_xattrcreate(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o)
{
	(void)o;
	if (!path_fid(srv, m->u.xattrcreate.fid))
		return EBADF;
	return ro(srv) ? EROFS : EOPNOTSUPP;
}

typedef int handler_fn(struct p9_server *srv, const struct p9_tmsg *m, struct p9_out *o);

static handler_fn *handler_for(uint8_t type)
{
	switch (type) {
	case P9_TVERSION: return h_version;
	case P9_TATTACH: return h_attach;
	case P9_TWALK: return h_walk;
	case P9_TLOPEN: return h_lopen;
	case P9_TLCREATE: return h_lcreate;
	case P9_TREAD: return h_read;
	case P9_TWRITE: return h_write;
	case P9_TREADDIR: return h_readdir;
	case P9_TGETATTR: return h_getattr;
	case P9_TSETATTR: return h_setattr;
	case P9_TMKDIR: return h_mkdir;
	case P9_TMKNOD: return h_mknod;
	case P9_TSYMLINK: return h_symlink;
	case P9_TLINK: return h_link;
	case P9_TREADLINK: return h_readlink;
	case P9_TRENAME: return h_rename;
	case P9_TRENAMEAT: return h_renameat;
	case P9_TUNLINKAT: return h_unlinkat;
	case P9_TCLUNK: return h_clunk;
	case P9_TREMOVE: return h_remove;
	case P9_TSTATFS: return h_statfs;
	case P9_TFSYNC: return h_fsync;
	case P9_TLOCK: return h_lock;
	case P9_TGETLOCK: return h_getlock;
	case P9_TXATTRWALK: return h_xattrwalk;
	case P9_TXATTRCREATE: return h_xattrcreate;
	default: return NULL;
	}
}

static uint32_t errno_for_guest(int e)
{
	/* Linux errno numbers are the same on the host and the guest
	 * (asm-generic); anything odd becomes EIO. */
	return e > 0 && e < 4096 ? (uint32_t)e : EIO;
}

size_t p9_server_handle(struct p9_server *srv, const uint8_t *req, size_t len,
			uint8_t *out, size_t cap)
{
	uint32_t size;
	uint8_t type;
	uint16_t tag;
	if (cap < P9_READ_OVERHEAD || p9_peek_header(req, len, &size, &type, &tag))
		return 0;
	if (cap > srv->msize)
		cap = srv->msize;
	if (size < P9_HDR_SIZE || size > len || size > srv->msize)
		return p9_build_lerror(out, cap, tag, size > srv->msize ? EMSGSIZE : EPROTO);
	struct p9_tmsg m;
	int e = p9_decode(req, size, srv->arena, srv->arena_len, &m);
	if (e)
		return p9_build_lerror(out, cap, tag, e);
	if (type == P9_TFLUSH) {
		/* flush(5): requests are answered in order, so the old one is
		 * already done. */
		struct p9_out o;
		p9_out_init(&o, out, cap);
		p9_begin(&o, P9_RFLUSH, tag);
		return p9_finish(&o);
	}
	if (type == P9_TAUTH)
		return p9_build_lerror(out, cap, tag, EOPNOTSUPP);   /* no authentication */
	handler_fn *h = handler_for(type);
	if (!h)
		return p9_build_lerror(out, cap, tag, EOPNOTSUPP);
	struct p9_out o;
	p9_out_init(&o, out, cap);
	p9_begin(&o, (uint8_t)(type + 1), tag);
	e = h(srv, &m, &o);
	if (e)
		return p9_build_lerror(out, cap, tag, errno_for_guest(e));
	size_t n = p9_finish(&o);
	return n ? n : p9_build_lerror(out, cap, tag, ERANGE);
}

/* ------------------------------------------------------------ snapshots */

/* Open-file status flags worth carrying over (how it was opened, never
 * O_CREAT / O_TRUNC, which F_GETFL does not report anyway). */
#define KEPT_OPEN_FLAGS (O_ACCMODE | O_APPEND | O_DIRECTORY | O_NOATIME | O_DSYNC | O_SYNC)

int p9_server_save(struct p9_server *srv, struct snap_writer *w, char *err, size_t errlen)
{
	char *path = malloc(PATH_MAX);
	if (!path) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snap_put_u32(w, srv->msize);
	snap_put_u32(w, srv->nfids);
	for (unsigned i = 0, left = srv->nfids; i < P9_SERVER_MAX_FIDS && left; i++) {
		const struct p9_fid *f = &srv->fids[i];
		if (f->kind == FID_FREE)
			continue;
		left--;
		int32_t oflags = -1;
		path[0] = 0;
		if (f->kind == FID_PATH) {
			int r = fs_path_beneath(srv->share, f->fd, path, PATH_MAX);
			if (r) {
				snprintf(err, errlen, "fid %u names a file that is no longer reachable "
					 "beneath the share (deleted while open, or moved away: %s); "
					 "close it in the guest and take the snapshot again",
					 f->id, strerror(-r));
				free(path);
				return -1;
			}
			if (f->ofd >= 0) {
				int fl = fcntl(f->ofd, F_GETFL);
				oflags = fl < 0 ? O_RDONLY : fl & KEPT_OPEN_FLAGS;
			}
		}
		snap_put_u32(w, f->id);
		snap_put_u8(w, f->kind);
		snap_put_u8(w, f->is_dir);
		snap_put_u32(w, f->uid);
		snap_put_u32(w, (uint32_t)oflags);
		snap_put_str(w, path);
	}
	free(path);
	return 0;
}

void p9_server_load(struct p9_server *srv, struct snap_reader *r)
{
	uint32_t msize = snap_get_u32(r), n = snap_get_u32(r);
	if (r->overrun)
		return;
	if (msize < P9_SERVER_MIN_MSIZE || msize > P9_SERVER_MAX_MSIZE || n > P9_SERVER_MAX_FIDS) {
		snap_reader_fail(r, "msize %u or %u fids out of range", msize, n);
		return;
	}
	char *path = malloc(PATH_MAX);
	if (!path) {
		snap_reader_fail(r, "out of memory");
		return;
	}
	fids_clear(srv);
	srv->msize = msize;
	for (uint32_t k = 0; k < n && !r->overrun && !r->invalid; k++) {
		uint32_t id = snap_get_u32(r);
		uint8_t kind = snap_get_u8(r), is_dir = snap_get_u8(r);
		uint32_t uid = snap_get_u32(r);
		int32_t oflags = (int32_t)snap_get_u32(r);
		if (!snap_get_str(r, path, PATH_MAX) || r->overrun)
			break;
		if ((kind != FID_PATH && kind != FID_XATTR) || is_dir > 1 || fid_find(srv, id) ||
		    (oflags != -1 && (oflags & ~KEPT_OPEN_FLAGS))) {
			snap_reader_fail(r, "fid %u: bad kind, flags or a second fid of that number", id);
			break;
		}
		int fd = -1, ofd = -1;
		if (kind == FID_PATH) {
			int e = fs_lookup_path(srv->share, path, &fd);
			if (!e && oflags != -1 && (e = fs_open(srv->share, fd, oflags, &ofd)))
				close(fd);
			if (e) {
				snap_reader_fail(r, "the file \"%.80s\" the guest has open is gone from the "
						 "share (%s)", path, strerror(-e));
				break;
			}
		}
		struct p9_fid *f = fid_new(srv, id);
		f->kind = kind;
		f->is_dir = is_dir;
		f->uid = uid;
		f->fd = fd;
		f->ofd = ofd;
	}
	free(path);
	if (r->overrun || r->invalid)
		fids_clear(srv);
}

/*
 * Unit tests for the 9P2000.L server (src/virtio/9p_server.c), its host
 * filesystem backend (src/backend/fs) and the virtio-9p device
 * (src/virtio/9p.c). A small client in this file encodes T-messages with
 * p9_encode_tmsg, hands them to the server and decodes the answers, against
 * a fresh temporary directory:
 *   - the session: version/msize negotiation, attach, fids and their limit;
 *   - files: walk, lcreate, write, read, readdir (paged), getattr, setattr
 *     (mode, uid/gid, size, atime/mtime set and now), mkdir, mknod,
 *     rename, renameat, unlinkat, remove, symlink, link, readlink, statfs,
 *     fsync, lock/getlock, xattrs, flush, each checked on the host too;
 *   - escapes: ".." at the root and below, names with '/', absolute and
 *     relative symlinks out of the share, aname, a directory the host moved
 *     out, and a host thread swapping a directory and a symlink to "/"
 *     while walks run;
 *   - a read-only share refusing every change with EROFS;
 *   - malformed messages (truncated, lying sizes, too many names, NUL in a
 *     string, unknown types, oversized counts, no room for an answer);
 *   - the virtio device: feature and config space (mount tag), and one
 *     request through a queue.
 * Prints "N passed, N failed".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "backend/fs/fs.h"
#include "virtio/9p.h"
#include "virtio/9p_proto.h"
#include "virtio/9p_server.h"
#include "virtio_guest.h"

#define MSIZE (64u * 1024)
#define ROOT 1u
#define PARTIAL (-20000)   /* t_walk: some names walked, not all */

/* ------------------------------------------------------------ the client */

struct client {
	struct p9_server *srv;
	uint8_t req[P9_SERVER_MAX_MSIZE + 64];
	uint8_t resp[P9_SERVER_MAX_MSIZE];
	size_t rlen;
	size_t cap;            /* room offered for answers */
	uint16_t tag;
	struct p9_in in;       /* body of the last answer */
};

static char tmpdir[] = "/tmp/skiff-test-9p-XXXXXX";
static char share[256], outside[256];

static struct p9_server *server(const char *dir, bool ro)
{
	char err[256];
	struct fs_share *s = fs_share_open(dir, ro, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "fs_share_open: %s\n", err);
		exit(2);
	}
	struct p9_server *srv = p9_server_create(s, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "p9_server_create: %s\n", err);
		exit(2);
	}
	return srv;
}

/* Raw exchange: returns the answer's type (0 if none). */
static uint8_t raw(struct client *c, const uint8_t *msg, size_t len)
{
	c->rlen = p9_server_handle(c->srv, msg, len, c->resp, c->cap);
	if (c->rlen < P9_HDR_SIZE)
		return 0;
	p9_in_init(&c->in, c->resp + P9_HDR_SIZE, c->rlen - P9_HDR_SIZE);
	return c->resp[4];
}

/* 0 when the answer is R(type), -ecode for Rlerror, -10000 otherwise. */
static int rpc(struct client *c, struct p9_tmsg *m)
{
	m->tag = ++c->tag == P9_NOTAG ? ++c->tag : c->tag;
	size_t n = p9_encode_tmsg(m, c->req, sizeof(c->req));
	if (!n)
		return -10001;
	uint8_t t = raw(c, c->req, n);
	uint16_t tag = (uint16_t)(c->resp[5] | c->resp[6] << 8);
	uint32_t size = (uint32_t)c->resp[0] | (uint32_t)c->resp[1] << 8 |
			(uint32_t)c->resp[2] << 16 | (uint32_t)c->resp[3] << 24;
	if (!t || tag != m->tag || size != c->rlen)
		return -10000;
	if (t == P9_RLERROR)
		return -(int)p9_get32(&c->in);
	return t == m->type + 1 ? 0 : -10000;
}

static void client_init(struct client *c, struct p9_server *srv)
{
	memset(c, 0, sizeof(*c));
	c->srv = srv;
	c->cap = sizeof(c->resp);
}

static int t_version(struct client *c, uint32_t msize, const char *v, uint32_t *got, char *vout)
{
	struct p9_tmsg m = { .type = P9_TVERSION };
	m.u.version.msize = msize;
	m.u.version.version = v;
	int r = rpc(c, &m);
	if (r)
		return r;
	*got = p9_get32(&c->in);
	uint16_t n;
	const char *s = p9_get_str(&c->in, &n);
	snprintf(vout, 32, "%.*s", n, s);
	return 0;
}

static int t_attach(struct client *c, uint32_t fid, const char *aname, struct p9_qid *q)
{
	struct p9_tmsg m = { .type = P9_TATTACH };
	m.u.attach.fid = fid;
	m.u.attach.afid = P9_NOFID;
	m.u.attach.uname = "root";
	m.u.attach.aname = aname;
	m.u.attach.n_uname = 0;
	int r = rpc(c, &m);
	if (!r && q)
		p9_get_qid(&c->in, q);
	return r;
}

/* Walk: returns the number of qids (>= 0) or -errno; qids into q. */
static int t_walkv(struct client *c, uint32_t fid, uint32_t newfid, unsigned n,
		   const char *const *names, struct p9_qid *q)
{
	struct p9_tmsg m = { .type = P9_TWALK };
	m.u.walk.fid = fid;
	m.u.walk.newfid = newfid;
	m.u.walk.nwname = (uint16_t)n;
	for (unsigned i = 0; i < n; i++)
		m.u.walk.wname[i] = names[i];
	int r = rpc(c, &m);
	if (r)
		return r;
	unsigned k = p9_get16(&c->in);
	for (unsigned i = 0; i < k; i++) {
		struct p9_qid tmp;
		p9_get_qid(&c->in, q ? &q[i] : &tmp);
	}
	return (int)k;
}

/* Walk a '/'-separated relative path (test convenience). */
static int t_walk(struct client *c, uint32_t fid, uint32_t newfid, const char *path,
		  struct p9_qid *last)
{
	char buf[512];
	const char *names[P9_MAXWELEM];
	unsigned n = 0;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *save, *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save))
		names[n++] = t;
	struct p9_qid q[P9_MAXWELEM];
	int r = t_walkv(c, fid, newfid, n, names, q);
	if (r > 0 && last)
		*last = q[r - 1];
	if (r >= 0 && (unsigned)r != n)
		return PARTIAL;
	return r < 0 ? r : 0;
}

static int t_lopen(struct client *c, uint32_t fid, uint32_t flags)
{
	struct p9_tmsg m = { .type = P9_TLOPEN };
	m.u.lopen.fid = fid;
	m.u.lopen.flags = flags;
	return rpc(c, &m);
}

static int t_lcreate(struct client *c, uint32_t fid, const char *name, uint32_t flags, uint32_t mode)
{
	struct p9_tmsg m = { .type = P9_TLCREATE };
	m.u.lcreate.fid = fid;
	m.u.lcreate.name = name;
	m.u.lcreate.flags = flags;
	m.u.lcreate.mode = mode;
	m.u.lcreate.gid = 0;
	return rpc(c, &m);
}

static int t_write(struct client *c, uint32_t fid, uint64_t off, const void *data, uint32_t n)
{
	struct p9_tmsg m = { .type = P9_TWRITE };
	m.u.io.fid = fid;
	m.u.io.offset = off;
	m.u.io.count = n;
	m.u.io.data = data;
	int r = rpc(c, &m);
	return r ? r : (int)p9_get32(&c->in);
}

static int t_read(struct client *c, uint32_t fid, uint64_t off, uint32_t count, void *buf, size_t cap)
{
	struct p9_tmsg m = { .type = P9_TREAD };
	m.u.io.fid = fid;
	m.u.io.offset = off;
	m.u.io.count = count;
	int r = rpc(c, &m);
	if (r)
		return r;
	uint32_t n = p9_get32(&c->in);
	const uint8_t *d = p9_get_bytes(&c->in, n);
	if (!d || c->in.pos != c->in.len)
		return -10002;
	if (buf)
		memcpy(buf, d, n < cap ? n : cap);
	return (int)n;
}

static int t_simple_fid(struct client *c, uint8_t type, uint32_t fid)
{
	struct p9_tmsg m = { .type = type };
	m.u.fid.fid = fid;
	return rpc(c, &m);
}

static int t_clunk(struct client *c, uint32_t fid) { return t_simple_fid(c, P9_TCLUNK, fid); }

struct attr {
	uint64_t valid;
	struct p9_qid qid;
	uint32_t mode, uid, gid;
	uint64_t nlink, rdev, size, blksize, blocks;
	uint64_t atime_sec, atime_nsec, mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
};

static int t_getattr(struct client *c, uint32_t fid, struct attr *a)
{
	struct p9_tmsg m = { .type = P9_TGETATTR };
	m.u.getattr.fid = fid;
	m.u.getattr.mask = P9_GETATTR_BASIC;
	int r = rpc(c, &m);
	if (r)
		return r;
	a->valid = p9_get64(&c->in);
	p9_get_qid(&c->in, &a->qid);
	a->mode = p9_get32(&c->in);
	a->uid = p9_get32(&c->in);
	a->gid = p9_get32(&c->in);
	a->nlink = p9_get64(&c->in);
	a->rdev = p9_get64(&c->in);
	a->size = p9_get64(&c->in);
	a->blksize = p9_get64(&c->in);
	a->blocks = p9_get64(&c->in);
	a->atime_sec = p9_get64(&c->in);
	a->atime_nsec = p9_get64(&c->in);
	a->mtime_sec = p9_get64(&c->in);
	a->mtime_nsec = p9_get64(&c->in);
	a->ctime_sec = p9_get64(&c->in);
	a->ctime_nsec = p9_get64(&c->in);
	for (int i = 0; i < 4; i++)
		p9_get64(&c->in);
	return c->in.error || c->in.pos != c->in.len ? -10003 : 0;
}

static int t_setattr(struct client *c, uint32_t fid, uint32_t valid, uint32_t mode, uint32_t uid,
		     uint32_t gid, uint64_t size, uint64_t as, uint64_t ans, uint64_t ms, uint64_t mns)
{
	struct p9_tmsg m = { .type = P9_TSETATTR };
	m.u.setattr.fid = fid;
	m.u.setattr.valid = valid;
	m.u.setattr.mode = mode;
	m.u.setattr.uid = uid;
	m.u.setattr.gid = gid;
	m.u.setattr.size = size;
	m.u.setattr.atime_sec = as;
	m.u.setattr.atime_nsec = ans;
	m.u.setattr.mtime_sec = ms;
	m.u.setattr.mtime_nsec = mns;
	return rpc(c, &m);
}

static int t_mkdir(struct client *c, uint32_t dfid, const char *name, uint32_t mode)
{
	struct p9_tmsg m = { .type = P9_TMKDIR };
	m.u.mkdir.dfid = dfid;
	m.u.mkdir.name = name;
	m.u.mkdir.mode = mode;
	return rpc(c, &m);
}

static int t_mknod(struct client *c, uint32_t dfid, const char *name, uint32_t mode)
{
	struct p9_tmsg m = { .type = P9_TMKNOD };
	m.u.mknod.dfid = dfid;
	m.u.mknod.name = name;
	m.u.mknod.mode = mode;
	m.u.mknod.major = 1;
	m.u.mknod.minor = 3;
	return rpc(c, &m);
}

static int t_symlink(struct client *c, uint32_t dfid, const char *name, const char *target)
{
	struct p9_tmsg m = { .type = P9_TSYMLINK };
	m.u.symlink.fid = dfid;
	m.u.symlink.name = name;
	m.u.symlink.target = target;
	return rpc(c, &m);
}

static int t_link(struct client *c, uint32_t dfid, uint32_t fid, const char *name)
{
	struct p9_tmsg m = { .type = P9_TLINK };
	m.u.link.dfid = dfid;
	m.u.link.fid = fid;
	m.u.link.name = name;
	return rpc(c, &m);
}

static int t_readlink(struct client *c, uint32_t fid, char *out, size_t cap)
{
	int r = t_simple_fid(c, P9_TREADLINK, fid);
	if (r)
		return r;
	uint16_t n;
	const char *s = p9_get_str(&c->in, &n);
	snprintf(out, cap, "%.*s", n, s);
	return 0;
}

static int t_rename(struct client *c, uint32_t fid, uint32_t dfid, const char *name)
{
	struct p9_tmsg m = { .type = P9_TRENAME };
	m.u.rename.fid = fid;
	m.u.rename.dfid = dfid;
	m.u.rename.name = name;
	return rpc(c, &m);
}

static int t_renameat(struct client *c, uint32_t a, const char *an, uint32_t b, const char *bn)
{
	struct p9_tmsg m = { .type = P9_TRENAMEAT };
	m.u.renameat.olddirfid = a;
	m.u.renameat.oldname = an;
	m.u.renameat.newdirfid = b;
	m.u.renameat.newname = bn;
	return rpc(c, &m);
}

static int t_unlinkat(struct client *c, uint32_t dfid, const char *name, uint32_t flags)
{
	struct p9_tmsg m = { .type = P9_TUNLINKAT };
	m.u.unlinkat.dirfid = dfid;
	m.u.unlinkat.name = name;
	m.u.unlinkat.flags = flags;
	return rpc(c, &m);
}

/* Read a whole directory with Treaddir of `count` bytes per call; the
 * names joined with ' ' in sorted order into out. Returns the number of
 * entries, or -errno. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int t_readdir_all(struct client *c, uint32_t fid, uint32_t count, char *out, size_t cap,
			 int *calls)
{
	static char names[512][64];
	char *ptrs[512];
	int n = 0;
	uint64_t off = 0;
	*calls = 0;
	for (;;) {
		struct p9_tmsg m = { .type = P9_TREADDIR };
		m.u.io.fid = fid;
		m.u.io.offset = off;
		m.u.io.count = count;
		int r = rpc(c, &m);
		if (r)
			return r;
		(*calls)++;
		uint32_t bytes = p9_get32(&c->in);
		if (bytes == 0)
			break;
		if (bytes > count || bytes != c->in.len - 4)
			return -10004;
		while (c->in.pos < c->in.len) {
			struct p9_qid q;
			p9_get_qid(&c->in, &q);
			off = p9_get64(&c->in);
			p9_get8(&c->in);
			uint16_t len;
			const char *s = p9_get_str(&c->in, &len);
			if (c->in.error || n >= 512)
				return -10005;
			snprintf(names[n], sizeof(names[n]), "%.*s", len, s);
			ptrs[n] = names[n];
			n++;
		}
		if (*calls > 10000)
			return -10006;
	}
	qsort(ptrs, (size_t)n, sizeof(ptrs[0]), cmp_str);
	out[0] = 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(ptrs[i], ".") && strcmp(ptrs[i], "..")) {
			strncat(out, ptrs[i], cap - strlen(out) - 1);
			strncat(out, " ", cap - strlen(out) - 1);
		}
	}
	return n;
}

/* ------------------------------------------------------------ host side */

static void hpath(char *buf, size_t cap, const char *rel)
{
	snprintf(buf, cap, "%s/%s", share, rel);
}

static void host_write(const char *rel, const char *text)
{
	char p[512];
	hpath(p, sizeof(p), rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		fprintf(stderr, "host_write %s: %s\n", p, strerror(errno));
		exit(2);
	}
	close(fd);
}

static bool host_read(const char *rel, char *buf, size_t cap)
{
	char p[512];
	hpath(p, sizeof(p), rel);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = 0;
	return true;
}

static bool host_exists(const char *rel)
{
	char p[512];
	struct stat st;
	hpath(p, sizeof(p), rel);
	return lstat(p, &st) == 0;
}

static int host_lstat(const char *rel, struct stat *st)
{
	char p[512];
	hpath(p, sizeof(p), rel);
	return lstat(p, st);
}

static void host_mkdir(const char *rel)
{
	char p[512];
	hpath(p, sizeof(p), rel);
	if (mkdir(p, 0755) && errno != EEXIST) {
		fprintf(stderr, "mkdir %s: %s\n", p, strerror(errno));
		exit(2);
	}
}

static void host_symlink(const char *target, const char *rel)
{
	char p[512];
	hpath(p, sizeof(p), rel);
	if (symlink(target, p)) {
		fprintf(stderr, "symlink %s: %s\n", p, strerror(errno));
		exit(2);
	}
}

static void rm_tree(const char *path)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", path);
}

/* ------------------------------------------------------------ tests */

static void test_session(void)
{
	struct client *c = malloc(sizeof(*c));
	client_init(c, server(share, false));
	uint32_t msize;
	char v[32];
	CHECK_EQ(t_version(c, 1u << 20, "9P2000.L", &msize, v), 0);
	CHECK_EQ(msize, P9_SERVER_MAX_MSIZE);
	CHECK(!strcmp(v, "9P2000.L"));
	CHECK_EQ(t_version(c, 8192, "9P2000.u", &msize, v), 0);
	CHECK_EQ(msize, 8192);
	CHECK(!strcmp(v, "unknown"));
	CHECK_EQ(t_version(c, 100, "9P2000.L", &msize, v), -EINVAL);
	CHECK_EQ(t_version(c, MSIZE, "9P2000.L", &msize, v), 0);
	CHECK_EQ(msize, MSIZE);
	CHECK_EQ(p9_server_msize(c->srv), MSIZE);

	struct p9_qid q;
	CHECK_EQ(t_attach(c, ROOT, "", &q), 0);
	CHECK_EQ(q.type, P9_QTDIR);
	struct stat st;
	stat(share, &st);
	CHECK_EQ(q.path, st.st_ino);
	CHECK_EQ(t_attach(c, ROOT, "", &q), -EBADF);          /* fid in use */
	CHECK_EQ(t_attach(c, 2, "/", &q), 0);
	CHECK_EQ(t_attach(c, 3, "../..", &q), -EXDEV);        /* aname beneath the root only */
	CHECK_EQ(t_attach(c, 3, "/nonexistent", &q), -ENOENT);
	struct p9_tmsg m = { .type = P9_TAUTH };
	m.u.attach.afid = 9;
	m.u.attach.uname = "root";
	m.u.attach.aname = "";
	CHECK_EQ(rpc(c, &m), -EOPNOTSUPP);
	CHECK_EQ(p9_server_nfids(c->srv), 2);
	/* A new version ends the session: every fid is gone. */
	CHECK_EQ(t_version(c, MSIZE, "9P2000.L", &msize, v), 0);
	CHECK_EQ(p9_server_nfids(c->srv), 0);
	CHECK_EQ(t_clunk(c, ROOT), -EBADF);

	/* The fid table is bounded. */
	CHECK_EQ(t_attach(c, ROOT, "", NULL), 0);
	unsigned made = 1;
	int r = 0;
	for (uint32_t f = 1000; made < P9_SERVER_MAX_FIDS + 5; f += 7919) {
		r = t_walkv(c, ROOT, f, 0, NULL, NULL);
		if (r < 0)
			break;
		made++;
	}
	CHECK_EQ(r, -ENFILE);
	CHECK_EQ(made, P9_SERVER_MAX_FIDS);
	CHECK_EQ(p9_server_nfids(c->srv), P9_SERVER_MAX_FIDS);
	/* Clunk them all again (the hash must find every one). */
	unsigned clunked = 0;
	for (uint32_t f = 1000, k = 1; k < made; f += 7919, k++)
		clunked += t_clunk(c, f) == 0;
	CHECK_EQ(clunked, made - 1);
	CHECK_EQ(p9_server_nfids(c->srv), 1);
	CHECK_EQ(t_walkv(c, ROOT, 5, 0, NULL, NULL), 0);
	/* flush: answered at once. */
	struct p9_tmsg fl = { .type = P9_TFLUSH };
	fl.u.flush.oldtag = 3;
	CHECK_EQ(rpc(c, &fl), 0);
	CHECK_EQ(c->rlen, 7);
	p9_server_reset(c->srv);
	CHECK_EQ(p9_server_nfids(c->srv), 0);
	p9_server_destroy(c->srv);
	free(c);
}

static void test_files(void)
{
	struct client *c = malloc(sizeof(*c));
	client_init(c, server(share, false));
	uint32_t msize;
	char v[32], buf[4096];
	t_version(c, MSIZE, "9P2000.L", &msize, v);
	CHECK_EQ(t_attach(c, ROOT, "", NULL), 0);
	host_write("hello.txt", "hello from the host\n");

	/* walk + getattr + read */
	struct p9_qid q;
	CHECK_EQ(t_walk(c, ROOT, 10, "hello.txt", &q), 0);
	CHECK_EQ(q.type, P9_QTFILE);
	struct attr a;
	struct stat st;
	CHECK_EQ(t_getattr(c, 10, &a), 0);
	host_lstat("hello.txt", &st);
	CHECK_EQ(a.valid, P9_GETATTR_BASIC);
	CHECK_EQ(a.qid.path, st.st_ino);
	CHECK_EQ(a.size, 20);
	CHECK_EQ(a.mode, st.st_mode);
	CHECK_EQ(a.nlink, 1);
	CHECK_EQ(a.mtime_sec, (uint64_t)st.st_mtim.tv_sec);
	CHECK_EQ(t_read(c, 10, 0, 100, buf, sizeof(buf)), -EBADF);   /* not open */
	CHECK_EQ(t_lopen(c, 10, P9_DOTL_RDONLY), 0);
	CHECK_EQ(t_lopen(c, 10, P9_DOTL_RDONLY), -EBADF);            /* already open */
	CHECK_EQ(t_read(c, 10, 0, 100, buf, sizeof(buf)), 20);
	CHECK(!memcmp(buf, "hello from the host\n", 20));
	CHECK_EQ(t_read(c, 10, 6, 4, buf, sizeof(buf)), 4);
	CHECK(!memcmp(buf, "from", 4));
	CHECK_EQ(t_read(c, 10, 1000, 4, buf, sizeof(buf)), 0);
	CHECK_EQ(t_read(c, 10, 1ull << 63, 4, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(t_write(c, 10, 0, "x", 1), -EBADF);                 /* opened read-only */
	CHECK_EQ(t_clunk(c, 10), 0);
	CHECK_EQ(t_walk(c, ROOT, 10, "missing", NULL), -ENOENT);

	/* lcreate + write + read back, checked on the host */
	CHECK_EQ(t_walkv(c, ROOT, 11, 0, NULL, NULL), 0);
	CHECK_EQ(t_lcreate(c, 11, "new.txt", P9_DOTL_RDWR | P9_DOTL_CREATE | P9_DOTL_EXCL, 0640), 0);
	CHECK_EQ(t_write(c, 11, 0, "written by the guest", 20), 20);
	CHECK_EQ(t_write(c, 11, 100, "!", 1), 1);
	CHECK_EQ(t_read(c, 11, 0, 20, buf, sizeof(buf)), 20);
	CHECK(!memcmp(buf, "written by the guest", 20));
	struct p9_tmsg fs = { .type = P9_TFSYNC };
	fs.u.fsync.fid = 11;
	CHECK_EQ(rpc(c, &fs), 0);
	fs.u.fsync.datasync = 1;
	CHECK_EQ(rpc(c, &fs), 0);
	CHECK_EQ(t_clunk(c, 11), 0);
	CHECK(host_read("new.txt", buf, sizeof(buf)) && !strcmp(buf, "written by the guest"));
	host_lstat("new.txt", &st);
	CHECK_EQ(st.st_mode & 07777, 0640);            /* exactly, whatever the umask */
	CHECK_EQ(st.st_size, 101);
	CHECK_EQ(t_walkv(c, ROOT, 11, 0, NULL, NULL), 0);
	CHECK_EQ(t_lcreate(c, 11, "new.txt", P9_DOTL_RDWR | P9_DOTL_CREATE | P9_DOTL_EXCL, 0640), -EEXIST);
	CHECK_EQ(t_lcreate(c, 11, "a/b", P9_DOTL_RDWR | P9_DOTL_CREATE, 0640), -EINVAL);
	CHECK_EQ(t_lcreate(c, 11, "..", P9_DOTL_RDWR | P9_DOTL_CREATE, 0640), -EINVAL);
	CHECK_EQ(t_lcreate(c, 11, "", P9_DOTL_RDWR | P9_DOTL_CREATE, 0640), -EINVAL);
	/* set-user-ID never reaches the host */
	CHECK_EQ(t_lcreate(c, 11, "suid", P9_DOTL_WRONLY | P9_DOTL_CREATE, 04755), 0);
	host_lstat("suid", &st);
	CHECK_EQ(st.st_mode & 07777, 0755);
	CHECK_EQ(t_clunk(c, 11), 0);

	/* mkdir + readdir (paged with a small count) */
	CHECK_EQ(t_mkdir(c, ROOT, "dir", 0750), 0);
	host_lstat("dir", &st);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, 0750);
	CHECK_EQ(t_mkdir(c, ROOT, "dir", 0750), -EEXIST);
	CHECK_EQ(t_walk(c, ROOT, 12, "dir", NULL), 0);
	char names[64];
	for (int i = 0; i < 40; i++) {
		snprintf(names, sizeof(names), "dir/file-%02d-with-a-longer-name", i);
		host_write(names, "x");
	}
	CHECK_EQ(t_walkv(c, 12, 13, 0, NULL, NULL), 0);
	CHECK_EQ(t_lopen(c, 13, P9_DOTL_RDONLY | P9_DOTL_DIRECTORY), 0);
	char list[8192];
	int calls;
	CHECK_EQ(t_readdir_all(c, 13, 200, list, sizeof(list), &calls), 42);
	CHECK(calls > 10);
	CHECK(!strncmp(list, "file-00-with-a-longer-name file-01", 34));
	CHECK(strstr(list, "file-39-with-a-longer-name ") != NULL);
	CHECK_EQ(t_readdir_all(c, 13, MSIZE, list, sizeof(list), &calls), 42);
	CHECK_EQ(calls, 2);
	CHECK_EQ(t_readdir_all(c, 13, 10, list, sizeof(list), &calls), -EINVAL);  /* nothing fits */
	CHECK_EQ(t_read(c, 13, 0, 10, buf, sizeof(buf)), -EISDIR);
	CHECK_EQ(t_clunk(c, 13), 0);
	CHECK_EQ(t_walkv(c, 12, 13, 0, NULL, NULL), 0);
	CHECK_EQ(t_lopen(c, 13, P9_DOTL_WRONLY), -EISDIR);
	struct p9_tmsg rd = { .type = P9_TREADDIR };
	rd.u.io.fid = 13;
	rd.u.io.count = 1000;
	CHECK_EQ(rpc(c, &rd), -EBADF);                 /* readdir needs an open fid */
	CHECK_EQ(t_clunk(c, 13), 0);

	/* setattr: mode, size, times, owner */
	CHECK_EQ(t_walk(c, ROOT, 14, "new.txt", NULL), 0);
	CHECK_EQ(t_setattr(c, 14, P9_SETATTR_MODE, 0604, 0, 0, 0, 0, 0, 0, 0), 0);
	host_lstat("new.txt", &st);
	CHECK_EQ(st.st_mode & 07777, 0604);
	CHECK_EQ(t_setattr(c, 14, P9_SETATTR_MODE, 06755, 0, 0, 0, 0, 0, 0, 0), 0);
	host_lstat("new.txt", &st);
	CHECK_EQ(st.st_mode & 07777, 0755);
	CHECK_EQ(t_setattr(c, 14, P9_SETATTR_SIZE, 0, 0, 0, 5, 0, 0, 0, 0), 0);
	CHECK(host_read("new.txt", buf, sizeof(buf)) && !strcmp(buf, "writt"));
	CHECK_EQ(t_setattr(c, 14, P9_SETATTR_SIZE, 0, 0, 0, 1ull << 63, 0, 0, 0, 0), -EFBIG);
	CHECK_EQ(t_setattr(c, 14, P9_SETATTR_ATIME | P9_SETATTR_ATIME_SET | P9_SETATTR_MTIME |
			   P9_SETATTR_MTIME_SET, 0, 0, 0, 0, 1000000, 123, 2000000, 456), 0);
	host_lstat("new.txt", &st);
	CHECK_EQ(st.st_atim.tv_sec, 1000000);
	CHECK_EQ(st.st_atim.tv_nsec, 123);
	CHECK_EQ(st.st_mtim.tv_sec, 2000000);
	CHECK_EQ(st.st_mtim.tv_nsec, 456);
	CHECK_EQ(t_getattr(c, 14, &a), 0);
	CHECK_EQ(a.mtime_sec, 2000000);
	CHECK_EQ(a.atime_nsec, 123);
	/* MTIME without MTIME_SET: now; atime untouched */
	struct timeval now;
	gettimeofday(&now, NULL);
	CHECK_EQ(t_setattr(c, 14, P9_SETATTR_MTIME, 0, 0, 0, 0, 0, 0, 5, 5), 0);
	host_lstat("new.txt", &st);
	CHECK(st.st_mtim.tv_sec >= now.tv_sec - 1 && st.st_mtim.tv_sec <= now.tv_sec + 5);
	CHECK_EQ(st.st_atim.tv_sec, 1000000);
	CHECK_EQ(t_setattr(c, 14, P9_SETATTR_MTIME | P9_SETATTR_MTIME_SET, 0, 0, 0, 0, 0, 0, 1,
			   1000000000), -EINVAL);
	CHECK_EQ(t_setattr(c, 14, P9_SETATTR_CTIME, 0, 0, 0, 0, 0, 0, 0, 0), 0);
	uid_t me = geteuid();
	CHECK_EQ(t_setattr(c, 14, P9_SETATTR_UID | P9_SETATTR_GID, 0, me, getegid(), 0, 0, 0, 0, 0), 0);
	if (me == 0) {
		CHECK_EQ(t_setattr(c, 14, P9_SETATTR_UID | P9_SETATTR_GID, 0, 4321, 8765, 0, 0, 0, 0, 0), 0);
		host_lstat("new.txt", &st);
		CHECK_EQ(st.st_uid, 4321);
		CHECK_EQ(st.st_gid, 8765);
		CHECK_EQ(t_getattr(c, 14, &a), 0);
		CHECK_EQ(a.uid, 4321);
	} else {
		/* Not root: the host keeps the owner and the guest is not told
		 * otherwise (security_model=none). */
		CHECK_EQ(t_setattr(c, 14, P9_SETATTR_UID, 0, 4321, 0, 0, 0, 0, 0, 0), 0);
		host_lstat("new.txt", &st);
		CHECK_EQ(st.st_uid, me);
	}

	/* statfs */
	struct p9_tmsg sf = { .type = P9_TSTATFS };
	sf.u.fid.fid = ROOT;
	CHECK_EQ(rpc(c, &sf), 0);
	CHECK_EQ(c->rlen, 7 + 4 + 4 + 8 * 6 + 4);
	p9_get32(&c->in);
	CHECK(p9_get32(&c->in) > 0);   /* bsize */
	CHECK(p9_get64(&c->in) > 0);   /* blocks */

	/* symlink + readlink, link */
	CHECK_EQ(t_symlink(c, ROOT, "sl", "hello.txt"), 0);
	char target[256];
	CHECK(readlink(strcat(strcpy(target, share), "/sl"), buf, sizeof(buf)) == 9);
	CHECK_EQ(t_walk(c, ROOT, 15, "sl", &q), 0);
	CHECK_EQ(q.type, P9_QTSYMLINK);
	CHECK_EQ(t_readlink(c, 15, target, sizeof(target)), 0);
	CHECK(!strcmp(target, "hello.txt"));
	CHECK_EQ(t_lopen(c, 15, P9_DOTL_RDONLY), -ELOOP);   /* the host never follows it */
	CHECK_EQ(t_readlink(c, ROOT, target, sizeof(target)), -EINVAL);
	CHECK_EQ(t_clunk(c, 15), 0);
	CHECK_EQ(t_walk(c, ROOT, 15, "hello.txt", NULL), 0);
	CHECK_EQ(t_link(c, ROOT, 15, "hard"), 0);
	CHECK_EQ(t_getattr(c, 15, &a), 0);
	CHECK_EQ(a.nlink, 2);
	CHECK(host_read("hard", buf, sizeof(buf)) && !strcmp(buf, "hello from the host\n"));
	CHECK_EQ(t_link(c, ROOT, 12, "dirlink"), -EPERM);   /* no links to directories */
	CHECK_EQ(t_clunk(c, 15), 0);

	/* mknod: FIFOs yes, devices no; a FIFO is never opened on the host */
	CHECK_EQ(t_mknod(c, ROOT, "fifo", S_IFIFO | 0600), 0);
	host_lstat("fifo", &st);
	CHECK(S_ISFIFO(st.st_mode));
	CHECK_EQ(t_mknod(c, ROOT, "null", S_IFCHR | 0666), -EPERM);
	CHECK_EQ(t_mknod(c, ROOT, "disk", S_IFBLK | 0666), -EPERM);
	CHECK(!host_exists("null") && !host_exists("disk"));
	CHECK_EQ(t_mknod(c, ROOT, "plain", S_IFREG | 0600), 0);
	CHECK_EQ(t_walk(c, ROOT, 16, "fifo", NULL), 0);
	CHECK_EQ(t_lopen(c, 16, P9_DOTL_RDONLY), -ENXIO);
	CHECK_EQ(t_clunk(c, 16), 0);
	/* O_DIRECTORY on a regular file fails as open(2) would. */
	CHECK_EQ(t_walk(c, ROOT, 16, "hello.txt", NULL), 0);
	CHECK_EQ(t_lopen(c, 16, P9_DOTL_RDONLY | P9_DOTL_DIRECTORY), -ENOTDIR);
	CHECK_EQ(t_clunk(c, 16), 0);

	/* rename (by fid), renameat, unlinkat, remove */
	CHECK_EQ(t_walk(c, ROOT, 16, "plain", NULL), 0);
	CHECK_EQ(t_rename(c, 16, 12, "moved"), 0);
	CHECK(!host_exists("plain") && host_exists("dir/moved"));
	CHECK_EQ(t_getattr(c, 16, &a), 0);                  /* the fid follows the file */
	CHECK_EQ(t_rename(c, 16, ROOT, "back"), 0);
	CHECK(host_exists("back"));
	CHECK_EQ(t_rename(c, ROOT, 12, "root"), -EBUSY);     /* the root stays */
	CHECK_EQ(t_renameat(c, ROOT, "back", 12, "again"), 0);
	CHECK(!host_exists("back") && host_exists("dir/again"));
	CHECK_EQ(t_renameat(c, ROOT, "nothing", 12, "x"), -ENOENT);
	CHECK_EQ(t_renameat(c, ROOT, "..", 12, "x"), -EINVAL);
	CHECK_EQ(t_unlinkat(c, 12, "again", 0), 0);
	CHECK(!host_exists("dir/again"));
	CHECK_EQ(t_unlinkat(c, ROOT, "dir", 0), -EISDIR);
	CHECK_EQ(t_unlinkat(c, ROOT, "dir", P9_DOTL_AT_REMOVEDIR), -ENOTEMPTY);
	CHECK_EQ(t_mkdir(c, 12, "empty", 0700), 0);
	CHECK_EQ(t_unlinkat(c, 12, "empty", P9_DOTL_AT_REMOVEDIR), 0);
	CHECK_EQ(t_walk(c, ROOT, 17, "fifo", NULL), 0);
	CHECK_EQ(t_simple_fid(c, P9_TREMOVE, 17), 0);
	CHECK(!host_exists("fifo"));
	CHECK_EQ(t_clunk(c, 17), -EBADF);                  /* remove clunked it */
	CHECK_EQ(t_walkv(c, ROOT, 17, 0, NULL, NULL), 0);
	CHECK_EQ(t_simple_fid(c, P9_TREMOVE, 17), -EBUSY);  /* not the root */
	CHECK_EQ(t_clunk(c, 17), -EBADF);

	/* lock / getlock */
	struct p9_tmsg lk = { .type = P9_TLOCK };
	lk.u.lock.fid = 14;
	lk.u.lock.type = P9_LOCK_TYPE_WRLCK;
	lk.u.lock.length = 10;
	lk.u.lock.client_id = "guest";
	CHECK_EQ(rpc(c, &lk), 0);
	CHECK_EQ(p9_get8(&c->in), P9_LOCK_SUCCESS);
	lk.type = P9_TGETLOCK;
	lk.u.lock.start = 3;
	CHECK_EQ(rpc(c, &lk), 0);
	CHECK_EQ(p9_get8(&c->in), P9_LOCK_TYPE_UNLCK);
	CHECK_EQ(p9_get64(&c->in), 3);
	lk.u.lock.type = 7;
	CHECK_EQ(rpc(c, &lk), -EINVAL);

	/* xattrs: an empty list, no named attribute, no creation */
	struct p9_tmsg xw = { .type = P9_TXATTRWALK };
	xw.u.xattrwalk.fid = 14;
	xw.u.xattrwalk.newfid = 18;
	xw.u.xattrwalk.name = "";
	CHECK_EQ(rpc(c, &xw), 0);
	CHECK_EQ(p9_get64(&c->in), 0);
	CHECK_EQ(t_read(c, 18, 0, 100, buf, sizeof(buf)), 0);
	CHECK_EQ(t_getattr(c, 18, &a), -EBADF);
	CHECK_EQ(t_clunk(c, 18), 0);
	xw.u.xattrwalk.name = "security.capability";
	CHECK_EQ(rpc(c, &xw), -ENODATA);
	struct p9_tmsg xc = { .type = P9_TXATTRCREATE };
	xc.u.xattrcreate.fid = 14;
	xc.u.xattrcreate.name = "user.x";
	CHECK_EQ(rpc(c, &xc), -EOPNOTSUPP);

	p9_server_destroy(c->srv);
	free(c);
}

/* ".." and symlinks never lead out of the share. */
static void test_escapes(void)
{
	struct client *c = malloc(sizeof(*c));
	client_init(c, server(share, false));
	uint32_t msize;
	char v[32], buf[256];
	t_version(c, MSIZE, "9P2000.L", &msize, v);
	struct p9_qid root, q;
	CHECK_EQ(t_attach(c, ROOT, "", &root), 0);

	/* ".." at the root is the root, as often as it is asked */
	CHECK_EQ(t_walk(c, ROOT, 20, "..", &q), 0);
	CHECK_EQ(q.path, root.path);
	CHECK_EQ(t_walk(c, ROOT, 21, "../../../..", &q), 0);
	CHECK_EQ(q.path, root.path);
	CHECK_EQ(t_walk(c, 21, 22, "../etc", &q), PARTIAL);   /* ".." walked, "etc" not there */
	CHECK_EQ(t_clunk(c, 20), 0);
	CHECK_EQ(t_clunk(c, 21), 0);
	/* ".." below the root goes up, and stops at the root */
	host_mkdir("d1");
	host_mkdir("d1/d2");
	struct stat st;
	host_lstat("d1", &st);
	CHECK_EQ(t_walk(c, ROOT, 20, "d1/d2/..", &q), 0);
	CHECK_EQ(q.path, st.st_ino);
	CHECK_EQ(t_walk(c, ROOT, 21, "d1/d2/../../../..", &q), 0);
	CHECK_EQ(q.path, root.path);
	CHECK_EQ(t_clunk(c, 20), 0);
	CHECK_EQ(t_clunk(c, 21), 0);
	/* a name is one component */
	const char *slashy[] = { "d1/d2" };
	CHECK_EQ(t_walkv(c, ROOT, 20, 1, slashy, NULL), -EINVAL);
	const char *up2[] = { "../.." };
	CHECK_EQ(t_walkv(c, ROOT, 20, 1, up2, NULL), -EINVAL);
	const char *empty[] = { "" };
	CHECK_EQ(t_walkv(c, ROOT, 20, 1, empty, NULL), -EINVAL);
	const char *abs[] = { "/etc" };
	CHECK_EQ(t_walkv(c, ROOT, 20, 1, abs, NULL), -EINVAL);
	CHECK_EQ(p9_server_nfids(c->srv), 1);

	/* symlinks are handed to the guest, never followed here */
	host_symlink("/", "esc_abs");
	host_symlink("../../../../../../..", "esc_rel");
	host_symlink("/etc/hostname", "esc_file");
	const char *walk1[] = { "esc_abs", "etc" };
	struct p9_qid qs[P9_MAXWELEM];
	CHECK_EQ(t_walkv(c, ROOT, 20, 2, walk1, qs), 1);   /* stops at the link */
	CHECK_EQ(qs[0].type, P9_QTSYMLINK);
	CHECK_EQ(p9_server_nfids(c->srv), 1);                /* no fid for a partial walk */
	const char *walk2[] = { "esc_rel", "etc" };
	CHECK_EQ(t_walkv(c, ROOT, 20, 2, walk2, qs), 1);
	CHECK_EQ(t_walk(c, ROOT, 20, "esc_abs", NULL), 0);
	CHECK_EQ(t_lopen(c, 20, P9_DOTL_RDONLY | P9_DOTL_DIRECTORY), -ELOOP);
	CHECK_EQ(t_lcreate(c, 20, "x", P9_DOTL_WRONLY | P9_DOTL_CREATE, 0644), -ENOTDIR);
	CHECK_EQ(t_mkdir(c, 20, "x", 0755), -ENOTDIR);
	CHECK_EQ(t_symlink(c, 20, "x", "y"), -ENOTDIR);
	CHECK_EQ(t_mknod(c, 20, "x", S_IFREG | 0644), -ENOTDIR);
	CHECK_EQ(t_unlinkat(c, 20, "tmp", P9_DOTL_AT_REMOVEDIR), -ENOTDIR);
	CHECK_EQ(t_walk(c, 20, 21, "..", NULL), -ENOTDIR);
	struct attr a;
	CHECK_EQ(t_getattr(c, 20, &a), 0);
	CHECK(S_ISLNK(a.mode));                              /* lstat, not stat */
	CHECK_EQ(t_setattr(c, 20, P9_SETATTR_MODE, 0777, 0, 0, 0, 0, 0, 0, 0), -EOPNOTSUPP);
	CHECK_EQ(t_setattr(c, 20, P9_SETATTR_SIZE, 0, 0, 0, 0, 0, 0, 0, 0), -EINVAL);
	struct stat etc_before, etc_after;
	stat("/etc", &etc_before);
	CHECK_EQ(t_setattr(c, 20, P9_SETATTR_MTIME | P9_SETATTR_MTIME_SET, 0, 0, 0, 0, 0, 0, 12345, 0), 0);
	stat("/etc", &etc_after);
	CHECK_EQ(etc_after.st_mtim.tv_sec, etc_before.st_mtim.tv_sec);   /* the link changed, not / */
	CHECK_EQ(t_readlink(c, 20, buf, sizeof(buf)), 0);
	CHECK(!strcmp(buf, "/"));
	CHECK_EQ(t_clunk(c, 20), 0);
	CHECK_EQ(t_walk(c, ROOT, 20, "esc_file", NULL), 0);
	CHECK_EQ(t_lopen(c, 20, P9_DOTL_RDONLY), -ELOOP);
	CHECK_EQ(t_setattr(c, 20, P9_SETATTR_SIZE, 0, 0, 0, 0, 0, 0, 0, 0), -EINVAL);
	CHECK_EQ(t_link(c, ROOT, 20, "esc_hard"), 0);       /* links the link itself */
	struct stat lst;
	CHECK(host_lstat("esc_hard", &lst) == 0 && S_ISLNK(lst.st_mode));
	CHECK_EQ(t_clunk(c, 20), 0);

	/* A directory the host moves out of the share: its fid can no
	 * longer climb with "..", be renamed or removed by name. */
	host_mkdir("leaving");
	CHECK_EQ(t_walk(c, ROOT, 20, "leaving", NULL), 0);
	char from[512], to[512];
	hpath(from, sizeof(from), "leaving");
	snprintf(to, sizeof(to), "%s/left", outside);
	CHECK(rename(from, to) == 0);
	CHECK_EQ(t_walk(c, 20, 21, "..", NULL), -ENOENT);
	CHECK_EQ(t_rename(c, 20, ROOT, "back"), -ENOENT);
	CHECK_EQ(t_simple_fid(c, P9_TREMOVE, 20), -ENOENT);
	CHECK(access(to, F_OK) == 0);
	CHECK_EQ(p9_server_nfids(c->srv), 1);
	p9_server_destroy(c->srv);
	free(c);
}

/* A host thread swaps "x" between a real directory and a symlink to "/"
 * (renameat2 RENAME_EXCHANGE, atomically) while walks run: every walk that
 * gets through must have gone through the real directory. */
struct flipper {
	_Atomic bool stop;
	_Atomic unsigned flips;
};

static void *flip_thread(void *arg)
{
	struct flipper *f = arg;
	char a[512], b[512];
	hpath(a, sizeof(a), "race/x");
	hpath(b, sizeof(b), "race/x_other");
	while (!atomic_load(&f->stop)) {
		if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0)
			atomic_fetch_add(&f->flips, 1);
	}
	return NULL;
}

static void test_race(void)
{
	struct client *c = malloc(sizeof(*c));
	client_init(c, server(share, false));
	uint32_t msize;
	char v[32], buf[256];
	t_version(c, MSIZE, "9P2000.L", &msize, v);
	CHECK_EQ(t_attach(c, ROOT, "", NULL), 0);
	host_mkdir("race");
	host_mkdir("race/x");
	host_mkdir("race/x/etc");
	host_write("race/x/etc/hostname", "inside\n");
	host_symlink("/", "race/x_other");
	struct stat host_etc;
	stat("/etc", &host_etc);

	struct flipper f = { 0 };
	pthread_t th;
	pthread_create(&th, NULL, flip_thread, &f);
	unsigned through = 0, stopped = 0, wrong = 0, dotdot_wrong = 0;
	CHECK_EQ(t_walk(c, ROOT, 2, "race", NULL), 0);
	for (int i = 0; i < 4000; i++) {
		struct p9_qid q;
		int r = t_walk(c, 2, 30, "x/etc/hostname", &q);
		if (r == 0) {
			through++;
			if (t_lopen(c, 30, P9_DOTL_RDONLY) == 0) {
				int n = t_read(c, 30, 0, sizeof(buf) - 1, buf, sizeof(buf));
				if (n != 7 || memcmp(buf, "inside\n", 7))
					wrong++;
			}
			t_clunk(c, 30);
		} else {
			stopped++;
		}
		/* x/etc: never the host's /etc */
		if (t_walk(c, 2, 31, "x/etc", &q) == 0) {
			struct attr a;
			if (t_getattr(c, 31, &a) == 0 && a.qid.path == host_etc.st_ino)
				wrong++;
			/* and ".." from there leads back into the share */
			struct p9_qid up = { 0 };
			if (t_walk(c, 31, 32, "../..", &up) == 0) {
				struct stat race;
				host_lstat("race", &race);
				if (up.path != race.st_ino)
					dotdot_wrong++;
				t_clunk(c, 32);
			}
			t_clunk(c, 31);
		}
	}
	atomic_store(&f.stop, true);
	pthread_join(th, NULL);
	CHECK_EQ(wrong, 0);
	CHECK_EQ(dotdot_wrong, 0);
	CHECK(through > 0);
	CHECK(stopped > 0);
	CHECK(atomic_load(&f.flips) > 100);
	CHECK_EQ(p9_server_nfids(c->srv), 2);
	printf("race: %u walks through the directory, %u stopped at the symlink, %u swaps\n",
	       through, stopped, atomic_load(&f.flips));
	p9_server_destroy(c->srv);
	free(c);
}

/* nodev: regular files and directories only; FIFOs, sockets and
 * symlinks the guest asks for are refused and never reach the host. */
static void test_nodev(void)
{
	struct client *c = malloc(sizeof(*c));
	char err[256];
	struct fs_share *s = fs_share_open(share, false, err, sizeof(err));
	CHECK(s != NULL);
	fs_share_set_nodev(s, true);
	client_init(c, p9_server_create(s, err, sizeof(err)));
	uint32_t msize;
	char v[32];
	t_version(c, MSIZE, "9P2000.L", &msize, v);
	CHECK_EQ(t_attach(c, ROOT, "", NULL), 0);
	CHECK_EQ(t_mknod(c, ROOT, "nd_fifo", S_IFIFO | 0600), -EPERM);
	CHECK_EQ(t_mknod(c, ROOT, "nd_sock", S_IFSOCK | 0600), -EPERM);
	CHECK_EQ(t_mknod(c, ROOT, "nd_null", S_IFCHR | 0666), -EPERM);
	CHECK_EQ(t_symlink(c, ROOT, "nd_link", "/etc"), -EPERM);
	CHECK(!host_exists("nd_fifo") && !host_exists("nd_sock") && !host_exists("nd_null") &&
	      !host_exists("nd_link"));
	CHECK_EQ(t_mknod(c, ROOT, "nd_plain", S_IFREG | 0600), 0);
	CHECK_EQ(t_mkdir(c, ROOT, "nd_dir", 0755), 0);
	CHECK(host_exists("nd_plain") && host_exists("nd_dir"));
	p9_server_destroy(c->srv);
	free(c);
}

static void test_read_only(void)
{
	struct client *c = malloc(sizeof(*c));
	client_init(c, server(share, true));
	uint32_t msize;
	char v[32], buf[256];
	t_version(c, MSIZE, "9P2000.L", &msize, v);
	CHECK_EQ(t_attach(c, ROOT, "", NULL), 0);
	host_write("ro.txt", "keep me\n");
	struct stat before, after;
	host_lstat("ro.txt", &before);

	CHECK_EQ(t_walk(c, ROOT, 2, "ro.txt", NULL), 0);
	CHECK_EQ(t_walk(c, ROOT, 3, "dir", NULL), 0);
	CHECK_EQ(t_lopen(c, 2, P9_DOTL_WRONLY), -EROFS);
	CHECK_EQ(t_lopen(c, 2, P9_DOTL_RDWR), -EROFS);
	CHECK_EQ(t_lopen(c, 2, P9_DOTL_RDONLY | P9_DOTL_TRUNC), -EROFS);
	CHECK_EQ(t_lopen(c, 2, P9_DOTL_RDONLY), 0);
	CHECK_EQ(t_read(c, 2, 0, 100, buf, sizeof(buf)), 8);
	CHECK_EQ(t_write(c, 2, 0, "x", 1), -EROFS);
	CHECK_EQ(t_walkv(c, ROOT, 4, 0, NULL, NULL), 0);
	CHECK_EQ(t_lcreate(c, 4, "new", P9_DOTL_WRONLY | P9_DOTL_CREATE, 0644), -EROFS);
	CHECK_EQ(t_mkdir(c, ROOT, "newdir", 0755), -EROFS);
	CHECK_EQ(t_mknod(c, ROOT, "newnod", S_IFREG | 0644), -EROFS);
	CHECK_EQ(t_symlink(c, ROOT, "newlink", "ro.txt"), -EROFS);
	CHECK_EQ(t_link(c, ROOT, 2, "newhard"), -EROFS);
	CHECK_EQ(t_rename(c, 2, ROOT, "renamed"), -EROFS);
	CHECK_EQ(t_renameat(c, ROOT, "ro.txt", ROOT, "renamed"), -EROFS);
	CHECK_EQ(t_unlinkat(c, ROOT, "ro.txt", 0), -EROFS);
	CHECK_EQ(t_unlinkat(c, ROOT, "dir", P9_DOTL_AT_REMOVEDIR), -EROFS);
	CHECK_EQ(t_setattr(c, 2, P9_SETATTR_MODE, 0777, 0, 0, 0, 0, 0, 0, 0), -EROFS);
	CHECK_EQ(t_setattr(c, 2, P9_SETATTR_SIZE, 0, 0, 0, 0, 0, 0, 0, 0), -EROFS);
	CHECK_EQ(t_setattr(c, 2, P9_SETATTR_UID, 0, 0, 0, 0, 0, 0, 0, 0), -EROFS);
	CHECK_EQ(t_setattr(c, 2, P9_SETATTR_ATIME | P9_SETATTR_MTIME, 0, 0, 0, 0, 0, 0, 0, 0), -EROFS);
	struct p9_tmsg xc = { .type = P9_TXATTRCREATE };
	xc.u.xattrcreate.fid = 2;
	xc.u.xattrcreate.name = "user.x";
	CHECK_EQ(rpc(c, &xc), -EROFS);
	CHECK_EQ(t_simple_fid(c, P9_TREMOVE, 3), -EROFS);
	CHECK(!host_exists("new") && !host_exists("newdir") && !host_exists("newnod") &&
	      !host_exists("newlink") && !host_exists("newhard") && !host_exists("renamed"));
	CHECK(host_exists("dir") && host_read("ro.txt", buf, sizeof(buf)) && !strcmp(buf, "keep me\n"));
	host_lstat("ro.txt", &after);
	CHECK_EQ(after.st_mode, before.st_mode);
	CHECK_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	CHECK_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	/* reading still works: walk, readdir, getattr, statfs, readlink */
	CHECK_EQ(t_walk(c, ROOT, 5, "dir", NULL), 0);
	CHECK_EQ(t_lopen(c, 5, P9_DOTL_RDONLY), 0);
	char list[8192];
	int calls;
	CHECK(t_readdir_all(c, 5, 4000, list, sizeof(list), &calls) > 40);
	struct attr a;
	CHECK_EQ(t_getattr(c, 2, &a), 0);
	/* the backend refuses on its own too */
	char err[256];
	struct fs_share *s = fs_share_open(share, true, err, sizeof(err));
	int dfd, ofd;
	CHECK_EQ(fs_attach(s, "", &dfd), 0);
	CHECK_EQ(fs_create(s, dfd, "x", O_WRONLY, 0644, NULL, &ofd), -EROFS);
	CHECK_EQ(fs_unlinkat(s, dfd, "ro.txt", false), -EROFS);
	CHECK_EQ(fs_chmod(s, dfd, 0777), -EROFS);
	close(dfd);
	fs_share_close(s);
	p9_server_destroy(c->srv);
	free(c);
}

/* Hand-made bad messages. */
static size_t msg(uint8_t *b, uint8_t type, uint16_t tag, const uint8_t *body, size_t n)
{
	uint32_t size = (uint32_t)(7 + n);
	b[0] = (uint8_t)size;
	b[1] = (uint8_t)(size >> 8);
	b[2] = (uint8_t)(size >> 16);
	b[3] = (uint8_t)(size >> 24);
	b[4] = type;
	b[5] = (uint8_t)tag;
	b[6] = (uint8_t)(tag >> 8);
	if (n)
		memcpy(b + 7, body, n);
	return 7 + n;
}

static int lerror_of(struct client *c)
{
	if (c->rlen != 11 || c->resp[4] != P9_RLERROR)
		return -1;
	return (int)(c->resp[7] | c->resp[8] << 8 | c->resp[9] << 16 | (uint32_t)c->resp[10] << 24);
}

static void test_malformed(void)
{
	struct client *c = malloc(sizeof(*c));
	client_init(c, server(share, false));
	uint32_t msize;
	char v[32];
	uint8_t b[256], body[128];
	t_version(c, MSIZE, "9P2000.L", &msize, v);
	CHECK_EQ(t_attach(c, ROOT, "", NULL), 0);

	/* too short to answer */
	CHECK_EQ(raw(c, (const uint8_t *)"\x05\0\0\0", 4), 0);
	CHECK_EQ(c->rlen, 0);
	/* size field shorter than a header, or longer than what arrived */
	size_t n = msg(b, P9_TCLUNK, 7, (const uint8_t *)"\1\0\0\0", 4);
	b[0] = 3;
	CHECK_EQ(raw(c, b, n), P9_RLERROR);
	CHECK_EQ(lerror_of(c), EPROTO);
	CHECK_EQ(c->resp[5], 7);
	b[0] = 200;
	CHECK_EQ(raw(c, b, n), P9_RLERROR);
	CHECK_EQ(lerror_of(c), EPROTO);
	/* longer than msize */
	uint8_t *big = calloc(1, MSIZE + 100);
	n = msg(big, P9_TWRITE, 8, big + 7, MSIZE + 10);
	CHECK_EQ(raw(c, big, n), P9_RLERROR);
	CHECK_EQ(lerror_of(c), EMSGSIZE);
	free(big);
	/* a field missing */
	n = msg(b, P9_TCLUNK, 1, (const uint8_t *)"\1\0", 2);
	CHECK_EQ(raw(c, b, n), P9_RLERROR);
	CHECK_EQ(lerror_of(c), EPROTO);
	/* trailing bytes */
	n = msg(b, P9_TCLUNK, 1, (const uint8_t *)"\1\0\0\0\0", 5);
	CHECK_EQ(raw(c, b, n), P9_RLERROR);
	CHECK_EQ(lerror_of(c), EPROTO);
	CHECK_EQ(p9_server_nfids(c->srv), 1);
	/* a string running past the end */
	memcpy(body, "\1\0\0\0\2\0\0\0\1\0\xff" "\x00" "ab", 14);
	n = msg(b, P9_TWALK, 1, body, 14);
	CHECK_EQ(raw(c, b, n), P9_RLERROR);
	CHECK_EQ(lerror_of(c), EPROTO);
	/* a NUL inside a name */
	memcpy(body, "\1\0\0\0\2\0\0\0\1\0\3\0a\0b", 15);
	n = msg(b, P9_TWALK, 1, body, 15);
	CHECK_EQ(raw(c, b, n), P9_RLERROR);
	CHECK_EQ(lerror_of(c), EINVAL);
	/* 17 names */
	memcpy(body, "\1\0\0\0\2\0\0\0\x11\0", 10);
	for (int i = 0; i < 17; i++)
		memcpy(body + 10 + 3 * i, "\1\0a", 3);
	n = msg(b, P9_TWALK, 1, body, 10 + 51);
	CHECK_EQ(raw(c, b, n), P9_RLERROR);
	CHECK_EQ(lerror_of(c), EPROTO);
	CHECK_EQ(p9_server_nfids(c->srv), 1);
	/* a name longer than NAME_MAX; a string longer than P9_MAX_STR */
	char longname[300];
	memset(longname, 'a', 299);
	longname[299] = 0;
	const char *ln[] = { longname };
	CHECK_EQ(t_walkv(c, ROOT, 2, 1, ln, NULL), -ENAMETOOLONG);
	char *huge = malloc(P9_MAX_STR + 2);
	memset(huge, 'b', P9_MAX_STR + 1);
	huge[P9_MAX_STR + 1] = 0;
	CHECK_EQ(t_symlink(c, ROOT, "toolong", huge), -ENAMETOOLONG);
	free(huge);
	/* unknown and R-message types */
	n = msg(b, 99, 1, NULL, 0);
	CHECK_EQ(raw(c, b, n), P9_RLERROR);
	CHECK_EQ(lerror_of(c), EOPNOTSUPP);
	n = msg(b, P9_RREAD, 1, NULL, 0);
	CHECK_EQ(raw(c, b, n), P9_RLERROR);
	CHECK_EQ(lerror_of(c), EOPNOTSUPP);
	/* Twrite whose count claims more than it carries */
	memcpy(body, "\1\0\0\0" "\0\0\0\0\0\0\0\0" "\x10\0\0\0" "abcd", 20);
	n = msg(b, P9_TWRITE, 1, body, 20);
	CHECK_EQ(raw(c, b, n), P9_RLERROR);
	CHECK_EQ(lerror_of(c), EPROTO);
	/* unknown fids */
	CHECK_EQ(t_walk(c, 77, 78, "x", NULL), -EBADF);
	CHECK_EQ(t_lopen(c, 77, 0), -EBADF);
	CHECK_EQ(t_write(c, 77, 0, "x", 1), -EBADF);
	CHECK_EQ(t_walkv(c, ROOT, ROOT, 0, NULL, NULL), 0);   /* clone onto itself: fine */
	/* a huge read count is cut to what fits in msize and in the room */
	host_write("big", "");
	char p[512];
	hpath(p, sizeof(p), "big");
	truncate(p, 1 << 20);
	CHECK_EQ(t_walk(c, ROOT, 40, "big", NULL), 0);
	CHECK_EQ(t_lopen(c, 40, P9_DOTL_RDONLY), 0);
	CHECK_EQ(t_read(c, 40, 0, 0xffffffffu, NULL, 0), (int)(MSIZE - 11));
	c->cap = 100;
	CHECK_EQ(t_read(c, 40, 0, 0xffffffffu, NULL, 0), 100 - 11);
	c->cap = 10;   /* not even room for Rlerror */
	n = msg(b, P9_TCLUNK, 1, (const uint8_t *)"\x28\0\0\0", 4);
	CHECK_EQ(raw(c, b, n), 0);
	CHECK_EQ(c->rlen, 0);
	c->cap = 11;   /* room for Rlerror only: a getattr answer does not fit */
	struct attr a;
	CHECK_EQ(t_getattr(c, 40, &a), -ERANGE);
	c->cap = sizeof(c->resp);
	CHECK_EQ(t_clunk(c, 40), 0);
	CHECK_EQ(p9_server_nfids(c->srv), 1);
	p9_server_destroy(c->srv);
	free(c);
}

/* The device: mount tag in the config space, a request through the queue. */
static void test_device(void)
{
	struct vguest g;
	vg_init(&g);
	char err[256];
	CHECK(virtio_9p_create(&g.ram, "", share, false, false, err, sizeof(err)) == NULL);
	CHECK(virtio_9p_create(&g.ram, "a/b", share, false, false, err, sizeof(err)) == NULL);
	CHECK(virtio_9p_create(&g.ram, "x", "/nonexistent-dir", false, false, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "/nonexistent-dir") != NULL);
	struct virtio_9p *p = virtio_9p_create(&g.ram, "hostshare", share, false, false, err, sizeof(err));
	CHECK(p != NULL);
	if (!p) {
		fprintf(stderr, "%s\n", err);
		vg_fini(&g);
		return;
	}
	vg_attach(&g, virtio_9p_dev(p));
	CHECK_EQ(vg_r32(&g, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_9P);
	uint64_t f = vg_device_features(&g);
	CHECK(f & (1ull << VIRTIO_9P_MOUNT_TAG));
	CHECK(vg_negotiate(&g, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_9P_MOUNT_TAG)));
	uint64_t val;
	virtio_mmio_ops.read(&g.t, 0x100, 2, &val);
	CHECK_EQ(val, 9);
	char tag[10] = { 0 };
	for (int i = 0; i < 9; i++) {
		virtio_mmio_ops.read(&g.t, 0x102 + (uint64_t)i, 1, &val);
		tag[i] = (char)val;
	}
	CHECK(!strcmp(tag, "hostshare"));
	virtio_mmio_ops.read(&g.t, 0x100 + 11, 1, &val);
	CHECK_EQ(val, 0);
	vg_queue_setup(&g, 0, 64);
	vg_driver_ok(&g);

	/* Tversion in two readable pieces, the answer into two writable ones. */
	uint64_t rq = vg_alloc(&g, 64, 8), rs = vg_alloc(&g, 64, 8);
	struct p9_tmsg m = { .type = P9_TVERSION, .tag = P9_NOTAG };
	m.u.version.msize = 1u << 20;
	m.u.version.version = "9P2000.L";
	size_t n = p9_encode_tmsg(&m, vg_host(&g, rq), 64);
	CHECK_EQ(n, 4 + 1 + 2 + 4 + 2 + 8);
	struct vg_seg segs[4] = {
		{ rq, 5, false }, { rq + 5, (uint32_t)n - 5, false },
		{ rs, 9, true }, { rs + 9, 55, true },
	};
	uint16_t head = vg_submit(&g, 0, segs, 4, false);
	uint32_t id = 0, len = 0;
	CHECK(vg_wait_used(&g, 0, &id, &len));
	CHECK_EQ(id, head);
	CHECK_EQ(len, 7 + 4 + 2 + 8);
	uint8_t *r = vg_host(&g, rs);
	CHECK_EQ(r[4], P9_RVERSION);
	CHECK_EQ(r[7] | r[8] << 8 | r[9] << 16 | (uint32_t)r[10] << 24, P9_SERVER_MAX_MSIZE);
	CHECK(!memcmp(r + 13, "9P2000.L", 8));
	/* a buffer with no room for an answer comes back empty */
	struct vg_seg only_out[1] = { { rq, (uint32_t)n, false } };
	head = vg_submit(&g, 0, only_out, 1, false);
	CHECK(vg_wait_used(&g, 0, &id, &len));
	CHECK_EQ(id, head);
	CHECK_EQ(len, 0);
	CHECK(!vg_needs_reset(&g));
	/* reset drops the session */
	vg_w32(&g, VIRTIO_MMIO_STATUS, 0);
	virtio_9p_destroy(p);
	vg_fini(&g);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(share, sizeof(share), "%s/share", tmpdir);
	snprintf(outside, sizeof(outside), "%s/outside", tmpdir);
	if (mkdir(share, 0755) || mkdir(outside, 0755)) {
		perror("mkdir");
		return 2;
	}
	test_session();
	test_files();
	test_escapes();
	test_race();
	test_nodev();
	test_read_only();
	test_malformed();
	test_device();
	rm_tree(tmpdir);
	return vt_report();
}

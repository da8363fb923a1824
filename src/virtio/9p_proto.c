/*
 * 9P2000.L message decoding and encoding; see 9p_proto.h. Integers are
 * little-endian on the wire (intro(5)); they are assembled byte by byte so
 * the code neither depends on the host's byte order nor on alignment.
 */
#include "virtio/9p_proto.h"

#include <errno.h>
#include <string.h>

/* ---------------------------------------------------------------- reading */

void p9_in_init(struct p9_in *in, const uint8_t *p, size_t len)
{
	in->p = p;
	in->len = len;
	in->pos = 0;
	in->error = false;
}

static const uint8_t *take(struct p9_in *in, size_t n)
{
	if (in->error || n > in->len - in->pos) {
		in->error = true;
		return NULL;
	}
	const uint8_t *p = in->p + in->pos;
	in->pos += n;
	return p;
}

static uint64_t get_le(struct p9_in *in, unsigned n)
{
	const uint8_t *p = take(in, n);
	uint64_t v = 0;
	if (!p)
		return 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint8_t p9_get8(struct p9_in *in) { return (uint8_t)get_le(in, 1); }
uint16_t p9_get16(struct p9_in *in) { return (uint16_t)get_le(in, 2); }
uint32_t p9_get32(struct p9_in *in) { return (uint32_t)get_le(in, 4); }
uint64_t p9_get64(struct p9_in *in) { return get_le(in, 8); }

void p9_get_qid(struct p9_in *in, struct p9_qid *q)
{
	q->type = p9_get8(in);
	q->version = p9_get32(in);
	q->path = p9_get64(in);
}

const char *p9_get_str(struct p9_in *in, uint16_t *n)
{
	uint16_t len = p9_get16(in);
	const uint8_t *p = take(in, len);
	*n = p ? len : 0;
	return p ? (const char *)p : "";
}

const uint8_t *p9_get_bytes(struct p9_in *in, size_t n)
{
	return take(in, n);
}

int p9_peek_header(const uint8_t *buf, size_t len, uint32_t *size, uint8_t *type, uint16_t *tag)
{
	if (len < P9_HDR_SIZE)
		return -1;
	*size = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
		(uint32_t)buf[3] << 24;
	*type = buf[4];
	*tag = (uint16_t)(buf[5] | buf[6] << 8);
	return 0;
}

/* String decoding into the arena: NUL-terminated copies. */
struct decoder {
	struct p9_in in;
	char *arena;
	size_t arena_len, arena_used;
	int err;            /* first string problem (EINVAL, ENAMETOOLONG) */
};

static const char *dstr(struct decoder *d)
{
	uint16_t n;
	const char *s = p9_get_str(&d->in, &n);
	if (d->in.error)
		return "";
	if (n > P9_MAX_STR) {
		if (!d->err)
			d->err = ENAMETOOLONG;
		return "";
	}
	if (memchr(s, 0, n)) {
		if (!d->err)
			d->err = EINVAL;
		return "";
	}
	if ((size_t)n + 1 > d->arena_len - d->arena_used) {
		d->in.error = true;   /* arena too small for this message */
		return "";
	}
	char *dst = d->arena + d->arena_used;
	memcpy(dst, s, n);
	dst[n] = 0;
	d->arena_used += (size_t)n + 1;
	return dst;
}

#define D8()  p9_get8(&d.in)
#define D16() p9_get16(&d.in)
#define D32() p9_get32(&d.in)
#define D64() p9_get64(&d.in)
#define DSTR() dstr(&d)

int p9_decode(const uint8_t *buf, size_t len, char *arena, size_t arena_len, struct p9_tmsg *m)
{
	memset(m, 0, sizeof(*m));
	if (p9_peek_header(buf, len, &m->size, &m->type, &m->tag))
		return EPROTO;
	if (m->size != len)
		return EPROTO;
	struct decoder d = { .arena = arena, .arena_len = arena ? arena_len : 0 };
	p9_in_init(&d.in, buf + P9_HDR_SIZE, len - P9_HDR_SIZE);

	switch (m->type) {
	case P9_TVERSION:
		m->u.version.msize = D32();
		m->u.version.version = DSTR();
		break;
	case P9_TAUTH:
		m->u.attach.afid = D32();
		m->u.attach.uname = DSTR();
		m->u.attach.aname = DSTR();
		m->u.attach.n_uname = D32();
		m->u.attach.fid = m->u.attach.afid;
		break;
	case P9_TATTACH:
		m->u.attach.fid = D32();
		m->u.attach.afid = D32();
		m->u.attach.uname = DSTR();
		m->u.attach.aname = DSTR();
		m->u.attach.n_uname = D32();
		break;
	case P9_TFLUSH:
		m->u.flush.oldtag = D16();
		break;
	case P9_TWALK:
		m->u.walk.fid = D32();
		m->u.walk.newfid = D32();
		m->u.walk.nwname = D16();
		if (m->u.walk.nwname > P9_MAXWELEM)
			return EPROTO;
		for (unsigned i = 0; i < m->u.walk.nwname; i++)
			m->u.walk.wname[i] = DSTR();
		break;
	case P9_TREAD:
	case P9_TREADDIR:
		m->u.io.fid = D32();
		m->u.io.offset = D64();
		m->u.io.count = D32();
		break;
	case P9_TWRITE:
		m->u.io.fid = D32();
		m->u.io.offset = D64();
		m->u.io.count = D32();
		m->u.io.data = p9_get_bytes(&d.in, m->u.io.count);
		break;
	case P9_TCLUNK:
	case P9_TREMOVE:
	case P9_TSTATFS:
	case P9_TREADLINK:
		m->u.fid.fid = D32();
		break;
	case P9_TLOPEN:
		m->u.lopen.fid = D32();
		m->u.lopen.flags = D32();
		break;
	case P9_TLCREATE:
		m->u.lcreate.fid = D32();
		m->u.lcreate.name = DSTR();
		m->u.lcreate.flags = D32();
		m->u.lcreate.mode = D32();
		m->u.lcreate.gid = D32();
		break;
	case P9_TSYMLINK:
		m->u.symlink.fid = D32();
		m->u.symlink.name = DSTR();
		m->u.symlink.target = DSTR();
		m->u.symlink.gid = D32();
		break;
	case P9_TMKNOD:
		m->u.mknod.dfid = D32();
		m->u.mknod.name = DSTR();
		m->u.mknod.mode = D32();
		m->u.mknod.major = D32();
		m->u.mknod.minor = D32();
		m->u.mknod.gid = D32();
		break;
	case P9_TRENAME:
		m->u.rename.fid = D32();
		m->u.rename.dfid = D32();
		m->u.rename.name = DSTR();
		break;
	case P9_TGETATTR:
		m->u.getattr.fid = D32();
		m->u.getattr.mask = D64();
		break;
	case P9_TSETATTR:
		m->u.setattr.fid = D32();
		m->u.setattr.valid = D32();
		m->u.setattr.mode = D32();
		m->u.setattr.uid = D32();
		m->u.setattr.gid = D32();
		m->u.setattr.size = D64();
		m->u.setattr.atime_sec = D64();
		m->u.setattr.atime_nsec = D64();
		m->u.setattr.mtime_sec = D64();
		m->u.setattr.mtime_nsec = D64();
		break;
	case P9_TXATTRWALK:
		m->u.xattrwalk.fid = D32();
		m->u.xattrwalk.newfid = D32();
		m->u.xattrwalk.name = DSTR();
		break;
	case P9_TXATTRCREATE:
		m->u.xattrcreate.fid = D32();
		m->u.xattrcreate.name = DSTR();
		m->u.xattrcreate.size = D64();
		m->u.xattrcreate.flags = D32();
		break;
	case P9_TFSYNC:
		m->u.fsync.fid = D32();
		/* datasync[4] was added later; older clients send fid only. */
		if (d.in.len - d.in.pos >= 4)
			m->u.fsync.datasync = D32();
		break;
	case P9_TLOCK:
		m->u.lock.fid = D32();
		m->u.lock.type = D8();
		m->u.lock.flags = D32();
		m->u.lock.start = D64();
		m->u.lock.length = D64();
		m->u.lock.proc_id = D32();
		m->u.lock.client_id = DSTR();
		break;
	case P9_TGETLOCK:
		m->u.lock.fid = D32();
		m->u.lock.type = D8();
		m->u.lock.start = D64();
		m->u.lock.length = D64();
		m->u.lock.proc_id = D32();
		m->u.lock.client_id = DSTR();
		break;
	case P9_TLINK:
		m->u.link.dfid = D32();
		m->u.link.fid = D32();
		m->u.link.name = DSTR();
		break;
	case P9_TMKDIR:
		m->u.mkdir.dfid = D32();
		m->u.mkdir.name = DSTR();
		m->u.mkdir.mode = D32();
		m->u.mkdir.gid = D32();
		break;
	case P9_TRENAMEAT:
		m->u.renameat.olddirfid = D32();
		m->u.renameat.oldname = DSTR();
		m->u.renameat.newdirfid = D32();
		m->u.renameat.newname = DSTR();
		break;
	case P9_TUNLINKAT:
		m->u.unlinkat.dirfid = D32();
		m->u.unlinkat.name = DSTR();
		m->u.unlinkat.flags = D32();
		break;
	default:
		return EOPNOTSUPP;
	}
	if (d.in.error)
		return EPROTO;
	if (d.err)
		return d.err;
	/* Trailing bytes mean the client and we disagree on the layout. */
	if (d.in.pos != d.in.len)
		return EPROTO;
	return 0;
}

/* ---------------------------------------------------------------- writing */

void p9_out_init(struct p9_out *o, uint8_t *buf, size_t cap)
{
	o->buf = buf;
	o->cap = cap;
	o->len = 0;
	o->overflow = false;
}

uint8_t *p9_reserve(struct p9_out *o, size_t n)
{
	if (o->overflow || n > o->cap - o->len) {
		o->overflow = true;
		return NULL;
	}
	uint8_t *p = o->buf + o->len;
	o->len += n;
	return p;
}

static void put_le(struct p9_out *o, uint64_t v, unsigned n)
{
	uint8_t *p = p9_reserve(o, n);
	if (!p)
		return;
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void p9_put8(struct p9_out *o, uint8_t v) { put_le(o, v, 1); }
void p9_put16(struct p9_out *o, uint16_t v) { put_le(o, v, 2); }
void p9_put32(struct p9_out *o, uint32_t v) { put_le(o, v, 4); }
void p9_put64(struct p9_out *o, uint64_t v) { put_le(o, v, 8); }

void p9_put_bytes(struct p9_out *o, const void *p, size_t n)
{
	uint8_t *dst = p9_reserve(o, n);
	if (dst && n)
		memcpy(dst, p, n);
}

void p9_put_strn(struct p9_out *o, const char *s, size_t n)
{
	if (n > 0xffff) {
		o->overflow = true;
		return;
	}
	p9_put16(o, (uint16_t)n);
	p9_put_bytes(o, s, n);
}

void p9_put_str(struct p9_out *o, const char *s)
{
	if (!s)
		s = "";
	p9_put_strn(o, s, strlen(s));
}

void p9_put_qid(struct p9_out *o, const struct p9_qid *q)
{
	p9_put8(o, q->type);
	p9_put32(o, q->version);
	p9_put64(o, q->path);
}

void p9_begin(struct p9_out *o, uint8_t type, uint16_t tag)
{
	o->len = 0;
	o->overflow = false;
	p9_put32(o, 0);
	p9_put8(o, type);
	p9_put16(o, tag);
}

size_t p9_finish(struct p9_out *o)
{
	if (o->overflow || o->len < P9_HDR_SIZE || o->len > 0xffffffffu)
		return 0;
	uint32_t n = (uint32_t)o->len;
	for (unsigned i = 0; i < 4; i++)
		o->buf[i] = (uint8_t)(n >> (8 * i));
	return o->len;
}

size_t p9_build_lerror(uint8_t *buf, size_t cap, uint16_t tag, uint32_t ecode)
{
	struct p9_out o;
	p9_out_init(&o, buf, cap);
	p9_begin(&o, P9_RLERROR, tag);
	p9_put32(&o, ecode);
	return p9_finish(&o);
}

size_t p9_encode_tmsg(const struct p9_tmsg *m, uint8_t *buf, size_t cap)
{
	struct p9_out o;
	p9_out_init(&o, buf, cap);
	p9_begin(&o, m->type, m->tag);
	switch (m->type) {
	case P9_TVERSION:
		p9_put32(&o, m->u.version.msize);
		p9_put_str(&o, m->u.version.version);
		break;
	case P9_TAUTH:
	case P9_TATTACH:
		if (m->type == P9_TATTACH)
			p9_put32(&o, m->u.attach.fid);
		p9_put32(&o, m->u.attach.afid);
		p9_put_str(&o, m->u.attach.uname);
		p9_put_str(&o, m->u.attach.aname);
		p9_put32(&o, m->u.attach.n_uname);
		break;
	case P9_TFLUSH:
		p9_put16(&o, m->u.flush.oldtag);
		break;
	case P9_TWALK:
		if (m->u.walk.nwname > P9_MAXWELEM)
			return 0;
		p9_put32(&o, m->u.walk.fid);
		p9_put32(&o, m->u.walk.newfid);
		p9_put16(&o, m->u.walk.nwname);
		for (unsigned i = 0; i < m->u.walk.nwname; i++)
			p9_put_str(&o, m->u.walk.wname[i]);
		break;
	case P9_TREAD:
	case P9_TREADDIR:
	case P9_TWRITE:
		p9_put32(&o, m->u.io.fid);
		p9_put64(&o, m->u.io.offset);
		p9_put32(&o, m->u.io.count);
		if (m->type == P9_TWRITE)
			p9_put_bytes(&o, m->u.io.data, m->u.io.count);
		break;
	case P9_TCLUNK:
	case P9_TREMOVE:
	case P9_TSTATFS:
	case P9_TREADLINK:
		p9_put32(&o, m->u.fid.fid);
		break;
	case P9_TLOPEN:
		p9_put32(&o, m->u.lopen.fid);
		p9_put32(&o, m->u.lopen.flags);
		break;
	case P9_TLCREATE:
		p9_put32(&o, m->u.lcreate.fid);
		p9_put_str(&o, m->u.lcreate.name);
		p9_put32(&o, m->u.lcreate.flags);
		p9_put32(&o, m->u.lcreate.mode);
		p9_put32(&o, m->u.lcreate.gid);
		break;
	case P9_TSYMLINK:
		p9_put32(&o, m->u.symlink.fid);
		p9_put_str(&o, m->u.symlink.name);
		p9_put_str(&o, m->u.symlink.target);
		p9_put32(&o, m->u.symlink.gid);
		break;
	case P9_TMKNOD:
		p9_put32(&o, m->u.mknod.dfid);
		p9_put_str(&o, m->u.mknod.name);
		p9_put32(&o, m->u.mknod.mode);
		p9_put32(&o, m->u.mknod.major);
		p9_put32(&o, m->u.mknod.minor);
		p9_put32(&o, m->u.mknod.gid);
		break;
	case P9_TRENAME:
		p9_put32(&o, m->u.rename.fid);
		p9_put32(&o, m->u.rename.dfid);
		p9_put_str(&o, m->u.rename.name);
		break;
	case P9_TGETATTR:
		p9_put32(&o, m->u.getattr.fid);
		p9_put64(&o, m->u.getattr.mask);
		break;
	case P9_TSETATTR:
		p9_put32(&o, m->u.setattr.fid);
		p9_put32(&o, m->u.setattr.valid);
		p9_put32(&o, m->u.setattr.mode);
		p9_put32(&o, m->u.setattr.uid);
		p9_put32(&o, m->u.setattr.gid);
		p9_put64(&o, m->u.setattr.size);
		p9_put64(&o, m->u.setattr.atime_sec);
		p9_put64(&o, m->u.setattr.atime_nsec);
		p9_put64(&o, m->u.setattr.mtime_sec);
		p9_put64(&o, m->u.setattr.mtime_nsec);
		break;
	case P9_TXATTRWALK:
		p9_put32(&o, m->u.xattrwalk.fid);
		p9_put32(&o, m->u.xattrwalk.newfid);
		p9_put_str(&o, m->u.xattrwalk.name);
		break;
	case P9_TXATTRCREATE:
		p9_put32(&o, m->u.xattrcreate.fid);
		p9_put_str(&o, m->u.xattrcreate.name);
		p9_put64(&o, m->u.xattrcreate.size);
		p9_put32(&o, m->u.xattrcreate.flags);
		break;
	case P9_TFSYNC:
		p9_put32(&o, m->u.fsync.fid);
		p9_put32(&o, m->u.fsync.datasync);
		break;
	case P9_TLOCK:
	case P9_TGETLOCK:
		p9_put32(&o, m->u.lock.fid);
		p9_put8(&o, m->u.lock.type);
		if (m->type == P9_TLOCK)
			p9_put32(&o, m->u.lock.flags);
		p9_put64(&o, m->u.lock.start);
		p9_put64(&o, m->u.lock.length);
		p9_put32(&o, m->u.lock.proc_id);
		p9_put_str(&o, m->u.lock.client_id);
		break;
	case P9_TLINK:
		p9_put32(&o, m->u.link.dfid);
		p9_put32(&o, m->u.link.fid);
		p9_put_str(&o, m->u.link.name);
		break;
	case P9_TMKDIR:
		p9_put32(&o, m->u.mkdir.dfid);
		p9_put_str(&o, m->u.mkdir.name);
		p9_put32(&o, m->u.mkdir.mode);
		p9_put32(&o, m->u.mkdir.gid);
		break;
	case P9_TRENAMEAT:
		p9_put32(&o, m->u.renameat.olddirfid);
		p9_put_str(&o, m->u.renameat.oldname);
		p9_put32(&o, m->u.renameat.newdirfid);
		p9_put_str(&o, m->u.renameat.newname);
		break;
	case P9_TUNLINKAT:
		p9_put32(&o, m->u.unlinkat.dirfid);
		p9_put_str(&o, m->u.unlinkat.name);
		p9_put32(&o, m->u.unlinkat.flags);
		break;
	default:
		return 0;
	}
	return p9_finish(&o);
}

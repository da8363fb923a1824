/*
 * The 9P2000.L wire format: decoding the T-messages a client sends into a
 * struct p9_tmsg, and small builders for R-messages (and, for tests, for
 * T-messages). Pure functions over byte buffers, no I/O and no allocation,
 * so the parser can be fuzzed on its own (tests/fuzz/fuzz_9p.c).
 *
 * Sources for the format: the 9P2000 manual pages (intro(5): message
 * header size[4] type[1] tag[2], strings as len[2] bytes, little-endian
 * integers, qid = type[1] version[4] path[8]) and the 9P2000.L additions as
 * Linux's client (net/9p/client.c) and the diod protocol notes describe them.
 *
 * Every count and length is checked against the bytes that are really
 * there: a message whose fields run past its end, whose size field lies,
 * whose strings hold a NUL byte or are longer than P9_MAX_STR, or whose walk
 * has more than P9_MAXWELEM names is refused with an errno for Rlerror.
 */
#ifndef SKIFF_VIRTIO_9P_PROTO_H
#define SKIFF_VIRTIO_9P_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Message types (9P2000 + 9P2000.L). R-message = T-message + 1. */
enum p9_type {
	P9_TLERROR = 6, P9_RLERROR = 7,
	P9_TSTATFS = 8, P9_RSTATFS = 9,
	P9_TLOPEN = 12, P9_RLOPEN = 13,
	P9_TLCREATE = 14, P9_RLCREATE = 15,
	P9_TSYMLINK = 16, P9_RSYMLINK = 17,
	P9_TMKNOD = 18, P9_RMKNOD = 19,
	P9_TRENAME = 20, P9_RRENAME = 21,
	P9_TREADLINK = 22, P9_RREADLINK = 23,
	P9_TGETATTR = 24, P9_RGETATTR = 25,
	P9_TSETATTR = 26, P9_RSETATTR = 27,
	P9_TXATTRWALK = 30, P9_RXATTRWALK = 31,
	P9_TXATTRCREATE = 32, P9_RXATTRCREATE = 33,
	P9_TREADDIR = 40, P9_RREADDIR = 41,
	P9_TFSYNC = 50, P9_RFSYNC = 51,
	P9_TLOCK = 52, P9_RLOCK = 53,
	P9_TGETLOCK = 54, P9_RGETLOCK = 55,
	P9_TLINK = 70, P9_RLINK = 71,
	P9_TMKDIR = 72, P9_RMKDIR = 73,
	P9_TRENAMEAT = 74, P9_RRENAMEAT = 75,
	P9_TUNLINKAT = 76, P9_RUNLINKAT = 77,
	P9_TVERSION = 100, P9_RVERSION = 101,
	P9_TAUTH = 102, P9_RAUTH = 103,
	P9_TATTACH = 104, P9_RATTACH = 105,
	P9_TFLUSH = 108, P9_RFLUSH = 109,
	P9_TWALK = 110, P9_RWALK = 111,
	P9_TREAD = 116, P9_RREAD = 117,
	P9_TWRITE = 118, P9_RWRITE = 119,
	P9_TCLUNK = 120, P9_RCLUNK = 121,
	P9_TREMOVE = 122, P9_RREMOVE = 123,
};

#define P9_HDR_SIZE 7            /* size[4] type[1] tag[2] */
#define P9_QID_SIZE 13
#define P9_NOTAG 0xffffu
#define P9_NOFID 0xffffffffu
#define P9_MAXWELEM 16           /* names in one Twalk (intro(5)) */
#define P9_MAX_STR 4096          /* longest string accepted (a path) */
#define P9_READ_OVERHEAD 11      /* Rread/Rreaddir: header + count[4] */
#define P9_WRITE_OVERHEAD 23     /* Twrite: header + fid offset count */

/* qid.type bits */
#define P9_QTDIR 0x80
#define P9_QTSYMLINK 0x02
#define P9_QTFILE 0x00

/* Tgetattr request_mask / Rgetattr valid */
#define P9_GETATTR_BASIC 0x000007ffull

/* Tsetattr valid bits */
#define P9_SETATTR_MODE      0x001u
#define P9_SETATTR_UID       0x002u
#define P9_SETATTR_GID       0x004u
#define P9_SETATTR_SIZE      0x008u
#define P9_SETATTR_ATIME     0x010u
#define P9_SETATTR_MTIME     0x020u
#define P9_SETATTR_CTIME     0x040u
#define P9_SETATTR_ATIME_SET 0x080u
#define P9_SETATTR_MTIME_SET 0x100u

/* Tlopen/Tlcreate flags (Linux's generic O_* values, as P9_DOTL_*). */
#define P9_DOTL_ACCMODE   00000003u
#define P9_DOTL_RDONLY    00000000u
#define P9_DOTL_WRONLY    00000001u
#define P9_DOTL_RDWR      00000002u
#define P9_DOTL_CREATE    00000100u
#define P9_DOTL_EXCL      00000200u
#define P9_DOTL_NOCTTY    00000400u
#define P9_DOTL_TRUNC     00001000u
#define P9_DOTL_APPEND    00002000u
#define P9_DOTL_NONBLOCK  00004000u
#define P9_DOTL_DSYNC     00010000u
#define P9_DOTL_FASYNC    00020000u
#define P9_DOTL_DIRECT    00040000u
#define P9_DOTL_LARGEFILE 00100000u
#define P9_DOTL_DIRECTORY 00200000u
#define P9_DOTL_NOFOLLOW  00400000u
#define P9_DOTL_NOATIME   01000000u
#define P9_DOTL_CLOEXEC   02000000u
#define P9_DOTL_SYNC      04000000u

/* Tunlinkat flags */
#define P9_DOTL_AT_REMOVEDIR 0x200u

/* Tlock/Tgetlock */
#define P9_LOCK_TYPE_RDLCK 0
#define P9_LOCK_TYPE_WRLCK 1
#define P9_LOCK_TYPE_UNLCK 2
#define P9_LOCK_SUCCESS 0
#define P9_LOCK_BLOCKED 1
#define P9_LOCK_ERROR 2
#define P9_LOCK_GRACE 3

struct p9_qid {
	uint8_t type;
	uint32_t version;
	uint64_t path;
};

/* A decoded T-message. Strings are NUL-terminated copies in the arena
 * passed to p9_decode (valid until the arena is reused); `data` of Twrite
 * points into the message buffer. */
struct p9_tmsg {
	uint32_t size;
	uint8_t type;
	uint16_t tag;
	union {
		struct { uint32_t msize; const char *version; } version;
		struct { uint32_t fid, afid; const char *uname, *aname; uint32_t n_uname; } attach; /* and auth (fid = afid) */
		struct { uint16_t oldtag; } flush;
		struct { uint32_t fid, newfid; uint16_t nwname; const char *wname[P9_MAXWELEM]; } walk;
		struct { uint32_t fid; uint64_t offset; uint32_t count; const uint8_t *data; } io; /* read, write, readdir */
		struct { uint32_t fid; } fid;          /* clunk, remove, statfs, readlink */
		struct { uint32_t fid, flags; } lopen;
		struct { uint32_t fid; const char *name; uint32_t flags, mode, gid; } lcreate;
		struct { uint32_t fid; const char *name, *target; uint32_t gid; } symlink;
		struct { uint32_t dfid; const char *name; uint32_t mode, major, minor, gid; } mknod;
		struct { uint32_t fid, dfid; const char *name; } rename;
		struct { uint32_t fid; uint64_t mask; } getattr;
		struct {
			uint32_t fid, valid, mode, uid, gid;
			uint64_t size, atime_sec, atime_nsec, mtime_sec, mtime_nsec;
		} setattr;
		struct { uint32_t fid, newfid; const char *name; } xattrwalk;
		struct { uint32_t fid; const char *name; uint64_t size; uint32_t flags; } xattrcreate;
		struct { uint32_t fid, datasync; } fsync;
		struct {
			uint32_t fid; uint8_t type; uint32_t flags;   /* flags: Tlock only */
			uint64_t start, length; uint32_t proc_id; const char *client_id;
		} lock;                                          /* lock, getlock */
		struct { uint32_t dfid, fid; const char *name; } link;
		struct { uint32_t dfid; const char *name; uint32_t mode, gid; } mkdir;
		struct { uint32_t olddirfid; const char *oldname; uint32_t newdirfid; const char *newname; } renameat;
		struct { uint32_t dirfid; const char *name; uint32_t flags; } unlinkat;
	} u;
};

/* Arena bytes p9_decode needs for a message of `len` bytes. */
#define P9_ARENA_SIZE(len) ((size_t)(len) + P9_MAXWELEM + 8)

/* Read the header of buf[0..len): 0 with *size, *type, *tag, or -1 if
 * fewer than P9_HDR_SIZE bytes are there. */
int p9_peek_header(const uint8_t *buf, size_t len, uint32_t *size, uint8_t *type, uint16_t *tag);

/* Decode one T-message from buf[0..len). The size field must equal len
 * (callers cut the message to its size field first). Returns 0, or a
 * positive errno for Rlerror: EPROTO (truncated or malformed, size lies),
 * EINVAL (a string with a NUL byte), ENAMETOOLONG (a string longer than
 * P9_MAX_STR), EOPNOTSUPP (not a T-message type this server knows). On an
 * error m->tag and m->type are still set when the header was readable. */
int p9_decode(const uint8_t *buf, size_t len, char *arena, size_t arena_len, struct p9_tmsg *m);

/* ---- building messages ---- */

struct p9_out {
	uint8_t *buf;
	size_t cap, len;
	bool overflow;     /* something did not fit: the message is unusable */
};

void p9_out_init(struct p9_out *o, uint8_t *buf, size_t cap);
/* Start a message: reserves the size field, writes type and tag. */
void p9_begin(struct p9_out *o, uint8_t type, uint16_t tag);
void p9_put8(struct p9_out *o, uint8_t v);
void p9_put16(struct p9_out *o, uint16_t v);
void p9_put32(struct p9_out *o, uint32_t v);
void p9_put64(struct p9_out *o, uint64_t v);
void p9_put_str(struct p9_out *o, const char *s);       /* NULL is "" */
void p9_put_strn(struct p9_out *o, const char *s, size_t n);
void p9_put_qid(struct p9_out *o, const struct p9_qid *q);
void p9_put_bytes(struct p9_out *o, const void *p, size_t n);
/* Room for n bytes the caller fills in place: a pointer, or NULL (and
 * overflow) if they do not fit. */
uint8_t *p9_reserve(struct p9_out *o, size_t n);
/* Finish the message started by p9_begin: writes the size field. Returns
 * the message length, or 0 if anything overflowed. */
size_t p9_finish(struct p9_out *o);

/* An Rlerror message into buf (at least 11 bytes). Returns its length. */
size_t p9_build_lerror(uint8_t *buf, size_t cap, uint16_t tag, uint32_t ecode);

/* Encode a T-message (for tests and the fuzzer's round trip). Returns the
 * length, or 0 if it does not fit in cap or the type is unknown. */
size_t p9_encode_tmsg(const struct p9_tmsg *m, uint8_t *buf, size_t cap);

/* ---- reading (R-messages in tests, directory entries) ---- */

struct p9_in {
	const uint8_t *p;
	size_t len, pos;
	bool error;        /* a read ran past the end */
};

void p9_in_init(struct p9_in *in, const uint8_t *p, size_t len);
uint8_t p9_get8(struct p9_in *in);
uint16_t p9_get16(struct p9_in *in);
uint32_t p9_get32(struct p9_in *in);
uint64_t p9_get64(struct p9_in *in);
void p9_get_qid(struct p9_in *in, struct p9_qid *q);
/* A string: points into the buffer (not NUL-terminated), *n its length. */
const char *p9_get_str(struct p9_in *in, uint16_t *n);
const uint8_t *p9_get_bytes(struct p9_in *in, size_t n);

#endif

/*
 * Unit tests for the disk backends (src/backend/disk): the qcow2 format
 * helpers (refcount entries of every width, L2 entry decoding, header
 * parsing, overlap checks), iovec slicing, the raw backend, and qcow2 images
 * made by disk_create_qcow2 driven through random reads, writes, discards
 * and write-zeroes against an in-memory model (several cluster sizes, with
 * and without a backing file, reopened, two threads at once). Also: locking
 * between two opens in one process, read-only refusals, and a quick
 * mutation pass over a valid image (no crash, errors or exact data), and
 * that opening never probes a format (nor a backing file's) and follows a
 * backing file only where it is allowed to; and opening the image that
 * takes a running drive's place (disk_open_successor).
 * Interop with QEMU's tools is in test_qcow2_interop.py.
 * Prints "N passed, N failed".
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/disk/disk.h"
#include "backend/disk/disk_impl.h"
#include "backend/disk/qcow2_meta.h"

static int passed, failed;

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		if (cond) {                                                           \
			passed++;                                                     \
		} else {                                                              \
			failed++;                                                     \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                 \
			fputc('\n', stderr);                                          \
		}                                                                     \
	} while (0)

static char dir[256];

static const char *tmp(const char *name)
{
	static char buf[4][512];
	static int k;
	char *p = buf[k++ & 3];
	snprintf(p, 512, "%s/%s", dir, name);
	return p;
}

/* xorshift: deterministic randomness for workloads. */
static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static int rw(struct disk *d, bool write, void *buf, uint64_t len, uint64_t off)
{
	/* Split into three iovecs to exercise slicing. */
	size_t a = (size_t)len / 3, b = (size_t)len / 2;
	struct iovec iov[3] = { { buf, a }, { (char *)buf + a, b - a }, { (char *)buf + b, len - b } };
	return write ? disk_pwritev(d, iov, 3, off) : disk_preadv(d, iov, 3, off);
}

/* ---- format helpers ---- */

static void test_refcount_entries(void)
{
	uint8_t blk[512];
	for (unsigned order = 0; order <= 6; order++) {
		unsigned bits = 1u << order;
		uint64_t max = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
		uint64_t n = 512 * 8 / bits;
		uint64_t *model = calloc(n, sizeof(*model));
		memset(blk, 0, sizeof(blk));
		for (int i = 0; i < 2000; i++) {
			uint64_t idx = rnd() % n, v = rnd() & max;
			qcow2_rb_set(blk, idx, order, v);
			model[idx] = v;
		}
		bool ok = true;
		for (uint64_t i = 0; i < n; i++)
			ok &= qcow2_rb_get(blk, i, order) == model[i];
		CHECK(ok, "refcount order %u round trip", order);
		free(model);
	}
	/* Layout: 16-bit big-endian; 1-bit from the least significant bit. */
	memset(blk, 0, sizeof(blk));
	qcow2_rb_set(blk, 1, 4, 0x1234);
	CHECK(blk[2] == 0x12 && blk[3] == 0x34, "16-bit layout %02x %02x", blk[2], blk[3]);
	memset(blk, 0, sizeof(blk));
	qcow2_rb_set(blk, 9, 0, 1);
	CHECK(blk[1] == 0x02, "1-bit layout %02x", blk[1]);
	uint64_t off;
	unsigned nb;
	qcow2_rb_span(9, 0, &off, &nb);
	CHECK(off == 1 && nb == 1, "span 1-bit");
	qcow2_rb_span(3, 6, &off, &nb);
	CHECK(off == 24 && nb == 8, "span 64-bit");
}

static void test_l2_decode(void)
{
	struct qcow2_cluster c;
	CHECK(qcow2_l2_decode(0, 16, 3, &c) == 0 && c.type == QCOW2_C_UNALLOC, "unalloc");
	CHECK(qcow2_l2_decode(1, 16, 3, &c) == 0 && c.type == QCOW2_C_ZERO, "zero");
	CHECK(qcow2_l2_decode(1, 16, 2, &c) == -EIO, "zero flag in v2");
	CHECK(qcow2_l2_decode(0x50000 | QCOW2_OFLAG_COPIED, 16, 3, &c) == 0 &&
	      c.type == QCOW2_C_NORMAL && c.copied && c.host == 0x50000, "normal");
	CHECK(qcow2_l2_decode(0x50001, 16, 3, &c) == 0 && c.type == QCOW2_C_ZERO_ALLOC, "zero alloc");
	CHECK(qcow2_l2_decode(0x50200, 16, 3, &c) == -EIO, "misaligned");
	CHECK(qcow2_l2_decode(0x50000 | (1ull << 58), 16, 3, &c) == -EIO, "reserved");
	CHECK(qcow2_l2_decode(QCOW2_OFLAG_COMPRESSED | QCOW2_OFLAG_COPIED | 0x1000, 16, 3, &c) == -EIO,
	      "compressed+copied");
	/* cluster_bits 16: x = 54; 3 extra sectors; offset 0x12345. */
	uint64_t e = QCOW2_OFLAG_COMPRESSED | (3ull << 54) | 0x12345;
	CHECK(qcow2_l2_decode(e, 16, 3, &c) == 0 && c.type == QCOW2_C_COMPRESSED &&
	      c.host == 0x12345 && c.csize == 4 * 512 - 0x145, "compressed %llx %llu",
	      (unsigned long long)c.host, (unsigned long long)c.csize);
	uint64_t l2;
	bool copied;
	CHECK(qcow2_l1_decode(0x30000 | QCOW2_OFLAG_COPIED, 16, &l2, &copied) == 0 && l2 == 0x30000 && copied,
	      "l1");
	CHECK(qcow2_l1_decode(0x30000 | 1, 16, &l2, &copied) == -EIO, "l1 reserved");
}

static void test_header_parse(void)
{
	uint8_t buf[65536];
	struct qcow2_header h, g;
	char msg[256];
	memset(&h, 0, sizeof(h));
	h.cluster_bits = 16;
	h.size = 1 << 30;
	h.l1_size = 2;
	h.l1_table_offset = 3 * 65536;
	h.refcount_table_offset = 65536;
	h.refcount_table_clusters = 1;
	h.refcount_order = 4;
	strcpy(h.backing_file, "base.img");
	strcpy(h.backing_format, "raw");
	CHECK(qcow2_header_build(&h, buf, sizeof(buf)) == 0, "build");
	int ret = qcow2_header_parse(buf, sizeof(buf), 4 * 65536, &g, msg, sizeof(msg));
	CHECK(ret == 0, "parse: %s", msg);
	CHECK(g.version == 3 && g.size == h.size && !strcmp(g.backing_file, "base.img") &&
	      !strcmp(g.backing_format, "raw") && g.refcount_order == 4, "fields");
	/* Each of these must be refused. */
	struct {
		unsigned off, width;
		uint64_t val;
		const char *msg;
	} bad[] = {
		{ 0, 4, 0, "bad magic" },
		{ 4, 4, 1, "version" },
		{ 20, 4, 30, "cluster_bits" },
		{ 36, 4, 1, "too small" },
		{ 40, 8, 1 << 20, "beyond the end" },
		{ 48, 8, 12345, "aligned" },
		{ 96, 4, 9, "refcount_order" },
		{ 72, 8, 1ull << 40, "incompatible" },
		{ 100, 4, 1 << 20, "header_length" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t copy[65536];
		memcpy(copy, buf, sizeof(copy));
		if (bad[i].width == 4)
			qcow2_put_be32(copy + bad[i].off, (uint32_t)bad[i].val);
		else
			qcow2_put_be64(copy + bad[i].off, bad[i].val);
		msg[0] = 0;
		ret = qcow2_header_parse(copy, sizeof(copy), 4 * 65536, &g, msg, sizeof(msg));
		CHECK(ret < 0 && strstr(msg, bad[i].msg), "case %zu: ret %d msg '%s'", i, ret, msg);
	}
	CHECK(qcow2_header_parse(buf, 50, 50, &g, msg, sizeof(msg)) < 0 && strstr(msg, "too short"),
	      "short: %s", msg);

	struct qcow2_range r[3] = {
		{ 0, 100, "a", UINT64_MAX }, { 200, 10, "b", 1 }, { 150, 60, "c", UINT64_MAX },
	};
	CHECK(qcow2_ranges_check(r, 3, msg, sizeof(msg)) < 0 && strstr(msg, "b 1") && strstr(msg, "c"),
	      "overlap: %s", msg);
	struct qcow2_range r2[2] = { { 0, 100, "a", UINT64_MAX }, { 100, 10, "b", UINT64_MAX } };
	CHECK(qcow2_ranges_check(r2, 2, msg, sizeof(msg)) == 0, "adjacent ranges");
}

static void test_iov_slice(void)
{
	char a[10], b[5], c[7];
	struct iovec iov[3] = { { a, 10 }, { b, 5 }, { c, 7 } };
	struct iovec out[3];
	int n = disk_iov_slice(iov, 3, 8, 6, out, 3);
	CHECK(n == 2 && out[0].iov_base == a + 8 && out[0].iov_len == 2 && out[1].iov_base == b &&
	      out[1].iov_len == 4, "slice");
	CHECK(disk_iov_slice(iov, 3, 20, 5, out, 3) == -1, "past end");
	CHECK(disk_iov_slice(iov, 3, 0, 22, out, 2) == -1, "too many pieces");
	CHECK(disk_iov_len(iov, 3) == 22, "len");
}

/* ---- raw ---- */

static void test_raw(void)
{
	const char *p = tmp("r.raw");
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0, "create raw");
	close(fd);
	struct disk *d, *d2;
	char err[512];
	struct disk_open_opts o = { DISK_FORMAT_RAW, false };
	CHECK(disk_open(p, &o, &d, err, sizeof(err)) == 0, "open: %s", err);
	if (!d)
		return;
	CHECK(disk_format(d) == DISK_FORMAT_RAW && disk_size(d) == 1 << 20, "raw format, size");
	uint8_t buf[9000], back[9000];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	CHECK(rw(d, true, buf, sizeof(buf), 1234) == 0, "write");
	CHECK(rw(d, false, back, sizeof(back), 1234) == 0 && !memcmp(buf, back, sizeof(buf)), "read back");
	CHECK(disk_write_zeroes(d, 2000, 100) == 0, "write zeroes");
	CHECK(rw(d, false, back, sizeof(back), 1234) == 0 && back[765] == buf[765] && back[766] == 0 &&
	      back[865] == 0 && back[866] == buf[866], "zeroed");
	CHECK(disk_discard(d, 0, 1 << 20) == 0 && disk_flush(d) == 0, "discard, flush");
	CHECK(rw(d, false, back, 100, (1 << 20) - 50) == -EINVAL, "beyond the end");
	/* Locks: a second read-write or read-only open fails while held. */
	CHECK(disk_open(p, &o, &d2, err, sizeof(err)) == -EBUSY && strstr(err, "locked"), "lock: %s", err);
	struct disk_open_opts ro = { DISK_FORMAT_RAW, true };
	CHECK(disk_open(p, &ro, &d2, err, sizeof(err)) == -EBUSY, "lock ro");
	disk_close(d);
	CHECK(disk_open(p, &ro, &d, err, sizeof(err)) == 0, "ro open: %s", err);
	CHECK(disk_open(p, &ro, &d2, err, sizeof(err)) == 0, "second ro open: %s", err);
	CHECK(rw(d, true, buf, 10, 0) == -EROFS && disk_write_zeroes(d, 0, 1) == -EROFS &&
	      disk_discard(d, 0, 1) == -EROFS, "read-only");
	disk_close(d);
	disk_close(d2);
	CHECK(disk_open(tmp("missing"), &o, &d, err, sizeof(err)) == -ENOENT && strstr(err, "missing"),
	      "missing file: %s", err);
	CHECK(disk_open(dir, &o, &d, err, sizeof(err)) < 0, "a directory: %s", err);
}

/* ---- qcow2 against a model ---- */

struct model {
	uint8_t *data;
	uint64_t size, cs;
	bool v2_backed;
};

static void fill(uint8_t *p, uint64_t n, uint64_t seed)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)((seed + i * 131) >> 3 ^ seed);
}

/* One random operation on d and the model; returns false on a mismatch. */
static bool random_op(struct disk *d, struct model *m, uint8_t *buf, uint64_t maxlen)
{
	uint64_t off = rnd() % m->size;
	uint64_t len = 1 + rnd() % maxlen;
	if (len > m->size - off)
		len = m->size - off;
	unsigned op = rnd() % 10;
	int ret;
	if (op < 5) {
		fill(buf, len, rnd());
		ret = rw(d, true, buf, len, off);
		if (ret == 0)
			memcpy(m->data + off, buf, len);
	} else if (op < 7) {
		ret = rw(d, false, buf, len, off);
		if (ret == 0 && memcmp(buf, m->data + off, len)) {
			fprintf(stderr, "mismatch reading %llu+%llu\n", (unsigned long long)off,
				(unsigned long long)len);
			return false;
		}
	} else if (op < 8) {
		ret = disk_write_zeroes(d, off, len);
		if (ret == 0)
			memset(m->data + off, 0, len);
	} else if (op < 9) {
		ret = disk_discard(d, off, len);
		if (ret == 0 && !m->v2_backed) {
			uint64_t s = (off + m->cs - 1) / m->cs * m->cs;
			uint64_t e = (off + len) / m->cs * m->cs;
			if (off + len == m->size)
				e = m->size;
			if (e > s)
				memset(m->data + s, 0, e - s);
		}
	} else {
		ret = disk_flush(d);
	}
	if (ret < 0)
		fprintf(stderr, "op %u at %llu+%llu: %s\n", op, (unsigned long long)off,
			(unsigned long long)len, strerror(-ret));
	return ret == 0;
}

static bool verify_all(struct disk *d, struct model *m)
{
	uint8_t *buf = malloc(m->size);
	bool ok = buf && rw(d, false, buf, m->size, 0) == 0 && !memcmp(buf, m->data, m->size);
	free(buf);
	return ok;
}

static void test_qcow2_model(unsigned cluster_bits, bool backing)
{
	char name[64], err[512];
	snprintf(name, sizeof(name), "m%u%s.qcow2", cluster_bits, backing ? "b" : "");
	const char *p = tmp(name);
	struct model m = { 0 };
	m.size = (3u << 20) + 1000;
	m.cs = 1ull << cluster_bits;
	m.data = calloc(1, m.size);
	unlink(p);
	struct disk_create_opts co = { .size = m.size, .cluster_bits = cluster_bits };
	const char *bp = tmp("base.raw");
	if (backing) {
		/* A raw base, shorter than the overlay. */
		int fd = open(bp, O_RDWR | O_CREAT | O_TRUNC, 0644);
		uint64_t bs = 2u << 20;
		uint8_t *b = malloc(bs);
		fill(b, bs, 77);
		CHECK(fd >= 0 && write(fd, b, bs) == (ssize_t)bs, "write base");
		close(fd);
		memcpy(m.data, b, bs);
		free(b);
		co.backing_file = "base.raw";
		co.backing_format = DISK_FORMAT_RAW;
	}
	int ret = disk_create_qcow2(p, &co, err, sizeof(err));
	CHECK(ret == 0, "create %s: %s", name, err);
	CHECK(disk_create_qcow2(p, &co, err, sizeof(err)) == -EEXIST, "no overwrite");
	struct disk *d;
	struct disk_open_opts o = { DISK_FORMAT_QCOW2, false, .backing = true };
	ret = disk_open(p, &o, &d, err, sizeof(err));
	CHECK(ret == 0, "open %s: %s", name, err);
	if (ret < 0)
		goto out;
	CHECK(disk_format(d) == DISK_FORMAT_QCOW2 && disk_size(d) == m.size, "format, size");
	uint8_t *buf = malloc(256 << 10);
	bool ok = true;
	for (int i = 0; i < 400 && ok; i++)
		ok = random_op(d, &m, buf, (i % 10 == 0) ? (200 << 10) : 5000);
	CHECK(ok, "random ops on %s", name);
	CHECK(verify_all(d, &m), "content of %s", name);
	disk_close(d);
	/* Reopen: everything is on disk. */
	ret = disk_open(p, &o, &d, err, sizeof(err));
	CHECK(ret == 0, "reopen: %s", err);
	if (ret == 0) {
		CHECK(verify_all(d, &m), "content after reopen of %s", name);
		for (int i = 0; i < 200 && ok; i++)
			ok = random_op(d, &m, buf, 70000);
		CHECK(ok && verify_all(d, &m), "second session on %s", name);
		char line[1024];
		disk_describe(d, line, sizeof(line));
		CHECK(strstr(line, "qcow2 v3") && (!backing || strstr(line, "base.raw")), "describe: %s", line);
		disk_close(d);
	}
	free(buf);
	if (backing) {
		/* The base is untouched. */
		uint8_t *b = malloc(2u << 20), *want = malloc(2u << 20);
		int fd = open(bp, O_RDONLY);
		fill(want, 2u << 20, 77);
		CHECK(fd >= 0 && read(fd, b, 2u << 20) == 2 << 20 && !memcmp(b, want, 2u << 20),
		      "base unchanged");
		close(fd);
		free(b);
		free(want);
	}
out:
	free(m.data);
}

/* ---- two threads on one disk, and two disks in one process ---- */

struct worker {
	struct disk *d;
	uint64_t base, len, seed;
	int errors;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t *buf = malloc(w->len), *back = malloc(w->len);
	for (int round = 0; round < 20; round++) {
		fill(buf, w->len, w->seed + (uint64_t)round);
		for (uint64_t off = 0; off < w->len; off += 3000) {
			uint64_t n = w->len - off < 3000 ? w->len - off : 3000;
			if (rw(w->d, true, buf + off, n, w->base + off) < 0)
				w->errors++;
		}
		if (rw(w->d, false, back, w->len, w->base) < 0 || memcmp(buf, back, w->len))
			w->errors++;
	}
	free(buf);
	free(back);
	return NULL;
}

static void test_threads(void)
{
	const char *p = tmp("thr.qcow2"), *p2 = tmp("thr2.qcow2");
	char err[512];
	struct disk_create_opts co = { .size = 8u << 20, .cluster_bits = 12 };
	CHECK(disk_create_qcow2(p, &co, err, sizeof(err)) == 0, "create: %s", err);
	CHECK(disk_create_qcow2(p2, &co, err, sizeof(err)) == 0, "create: %s", err);
	struct disk *d, *d2;
	struct disk_open_opts o = { DISK_FORMAT_QCOW2, false };
	if (disk_open(p, &o, &d, err, sizeof(err)) < 0 || disk_open(p2, &o, &d2, err, sizeof(err)) < 0) {
		CHECK(0, "open: %s", err);
		return;
	}
	struct worker w[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ i < 3 ? d : d2, (uint64_t)i * (2u << 20) + 100, 300000, (uint64_t)i * 1000, 0 };
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	int errors = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		errors += w[i].errors;
	}
	CHECK(errors == 0, "%d errors from threads", errors);
	disk_close(d);
	disk_close(d2);
}

/* ---- hostile bytes: mutate a valid image, open, read, write ---- */

static void test_mutations(void)
{
	const char *p = tmp("mut-src.qcow2"), *q = tmp("mut.qcow2");
	char err[512];
	struct disk_create_opts co = { .size = 1u << 20, .cluster_bits = 9 };
	CHECK(disk_create_qcow2(p, &co, err, sizeof(err)) == 0, "create: %s", err);
	struct disk *d;
	struct disk_open_opts o = { DISK_FORMAT_QCOW2, false };
	if (disk_open(p, &o, &d, err, sizeof(err)) == 0) {
		uint8_t buf[20000];
		fill(buf, sizeof(buf), 5);
		rw(d, true, buf, sizeof(buf), 3000);
		disk_close(d);
	}
	int fd = open(p, O_RDONLY);
	struct stat st;
	fstat(fd, &st);
	size_t n = (size_t)st.st_size;
	uint8_t *img = malloc(n), *mut = malloc(n);
	CHECK(read(fd, img, n) == (ssize_t)n, "read image");
	close(fd);
	int opened = 0, refused = 0;
	for (int iter = 0; iter < 300; iter++) {
		memcpy(mut, img, n);
		int flips = 1 + (int)(rnd() % 4);
		for (int k = 0; k < flips; k++) {
			size_t at = (rnd() % 3) ? rnd() % 2048 : rnd() % n;
			mut[at] ^= (uint8_t)(1u << (rnd() % 8));
		}
		unlink(q);
		fd = open(q, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (write(fd, mut, n) != (ssize_t)n)
			break;
		close(fd);
		if (disk_open(q, &o, &d, err, sizeof(err)) < 0) {
			refused++;
			CHECK(err[0] != 0, "refusal without a message");
			continue;
		}
		opened++;
		uint8_t buf[30000];
		uint64_t size = disk_size(d);
		for (int k = 0; k < 6 && size; k++) {
			uint64_t off = rnd() % size, len = 1 + rnd() % sizeof(buf);
			if (len > size - off)
				len = size - off;
			if (k & 1)
				rw(d, true, buf, len, off);
			else
				rw(d, false, buf, len, off);
		}
		disk_write_zeroes(d, 0, size < 5000 ? size : 5000);
		disk_flush(d);
		disk_close(d);
	}
	CHECK(opened > 0 && refused > 0, "mutations: %d opened, %d refused", opened, refused);
	free(img);
	free(mut);
}

/* Whole-disk discard and write-zeroes on a large sparse image only walk
 * the parts that have L2 tables. */
static void test_big_sparse(void)
{
	const char *p = tmp("big.qcow2");
	char err[512];
	struct disk_create_opts co = { .size = 1ull << 40 };
	CHECK(disk_create_qcow2(p, &co, err, sizeof(err)) == 0, "create: %s", err);
	struct disk *d;
	struct disk_open_opts o = { DISK_FORMAT_QCOW2, false };
	if (disk_open(p, &o, &d, err, sizeof(err)) < 0) {
		CHECK(0, "open: %s", err);
		return;
	}
	uint64_t at[3] = { 0, 123456789012ull, (1ull << 40) - 4096 };
	uint8_t buf[4096], back[4096];
	memset(buf, 0x5c, sizeof(buf));
	for (int i = 0; i < 3; i++)
		CHECK(rw(d, true, buf, sizeof(buf), at[i]) == 0, "write %d", i);
	CHECK(rw(d, false, back, sizeof(back), at[1]) == 0 && !memcmp(buf, back, sizeof(buf)), "read");
	CHECK(disk_discard(d, 0, 1ull << 40) == 0, "discard all");
	CHECK(rw(d, false, back, sizeof(back), at[1]) == 0 && back[0] == 0 && back[4095] == 0, "discarded");
	for (int i = 0; i < 3; i++)
		CHECK(rw(d, true, buf, sizeof(buf), at[i]) == 0, "write %d", i);
	CHECK(disk_write_zeroes(d, 0, 1ull << 40) == 0, "zero all");
	CHECK(rw(d, false, back, sizeof(back), at[2]) == 0 && back[0] == 0 && back[4095] == 0, "zeroed");
	disk_close(d);
}

/* 512-byte clusters with 16-bit refcounts: one refcount table cluster
 * covers 8 MiB of file, so writing 20 MiB makes the table grow (twice). */
static void test_reftable_growth(void)
{
	const char *p = tmp("grow.qcow2");
	char err[512];
	struct disk_create_opts co = { .size = 24u << 20, .cluster_bits = 9 };
	CHECK(disk_create_qcow2(p, &co, err, sizeof(err)) == 0, "create: %s", err);
	struct disk *d;
	struct disk_open_opts o = { DISK_FORMAT_QCOW2, false };
	if (disk_open(p, &o, &d, err, sizeof(err)) < 0) {
		CHECK(0, "open: %s", err);
		return;
	}
	size_t n = 20u << 20;
	uint8_t *buf = malloc(n), *back = malloc(n);
	fill(buf, n, 99);
	bool ok = true;
	for (size_t off = 0; off < n && ok; off += 1u << 20)
		ok = rw(d, true, buf + off, 1u << 20, off) == 0;
	CHECK(ok, "writes");
	CHECK(rw(d, false, back, n, 0) == 0 && !memcmp(buf, back, n), "read back");
	disk_close(d);
	int fd = open(p, O_RDONLY);
	uint8_t h[64];
	CHECK(fd >= 0 && pread(fd, h, sizeof(h), 0) == sizeof(h) && qcow2_be32(h + 56) > 1,
	      "refcount table grew to %u clusters", qcow2_be32(h + 56));
	close(fd);
	CHECK(disk_open(p, &o, &d, err, sizeof(err)) == 0, "reopen: %s", err);
	if (d) {
		CHECK(rw(d, false, back, n, 0) == 0 && !memcmp(buf, back, n), "read back after reopen");
		/* Freed space (the old tables) is reused, data stays right. */
		CHECK(disk_discard(d, 0, 4u << 20) == 0 && rw(d, true, buf, 4u << 20, 0) == 0 &&
		      rw(d, false, back, n, 0) == 0 && !memcmp(buf, back, n), "rewrite");
		disk_close(d);
	}
	free(buf);
	free(back);
}

static void test_absolute_backing(void)
{
	char err[512];
	const char *base = tmp("abs-base.raw"), *ov = tmp("abs-ov.qcow2");
	int fd = open(base, O_RDWR | O_CREAT | O_TRUNC, 0644);
	uint8_t b[8192];
	fill(b, sizeof(b), 3);
	CHECK(fd >= 0 && write(fd, b, sizeof(b)) == (ssize_t)sizeof(b), "base");
	close(fd);
	struct disk_create_opts co = { .cluster_bits = 12, .backing_file = base,
				       .backing_format = DISK_FORMAT_RAW };
	CHECK(disk_create_qcow2(ov, &co, err, sizeof(err)) == 0, "create: %s", err);
	struct disk *d;
	struct disk_open_opts o = { DISK_FORMAT_QCOW2, false, .backing = true };
	CHECK(disk_open(ov, &o, &d, err, sizeof(err)) == 0, "open: %s", err);
	if (d) {
		uint8_t back[8192];
		CHECK(disk_size(d) == sizeof(b) && rw(d, false, back, sizeof(back), 0) == 0 &&
		      !memcmp(b, back, sizeof(b)), "reads the base");
		disk_close(d);
	}
}

/* Opening never guesses a format (QEMU's CVE-2008-2004): a raw image whose
 * first bytes are a qcow2 header naming a host file as backing file reads
 * as those bytes; only disk_probe_format, asked for explicitly, says qcow2;
 * and a backing file is never probed either. */
static void test_never_probes(void)
{
	char err[512];
	const char *secret = tmp("secret.raw"), *evil = tmp("evil.img");
	int fd = open(secret, O_RDWR | O_CREAT | O_TRUNC, 0644);
	uint8_t sec[4096];
	memset(sec, 's', sizeof(sec));
	CHECK(fd >= 0 && write(fd, sec, sizeof(sec)) == (ssize_t)sizeof(sec), "secret");
	close(fd);
	struct disk_create_opts co = { .cluster_bits = 12, .backing_file = secret,
				       .backing_format = DISK_FORMAT_RAW };
	CHECK(disk_create_qcow2(evil, &co, err, sizeof(err)) == 0, "create: %s", err);
	struct disk *d = NULL;
	struct disk_open_opts none = { DISK_FORMAT_NONE, true };
	CHECK(disk_open(evil, &none, &d, err, sizeof(err)) == -EINVAL && !d &&
	      strstr(err, "never guessed"), "no format: %s", err);
	CHECK(disk_open(evil, NULL, &d, err, sizeof(err)) == -EINVAL && !d, "no options");
	struct disk_open_opts raw = { DISK_FORMAT_RAW, true };
	CHECK(disk_open(evil, &raw, &d, err, sizeof(err)) == 0, "open as raw: %s", err);
	if (d) {
		uint8_t back[4096];
		CHECK(disk_format(d) == DISK_FORMAT_RAW && rw(d, false, back, sizeof(back), 0) == 0 &&
		      !memcmp(back, "QFI\xfb", 4),
		      "reads its own header, not the backing file");
		disk_close(d);
	}
	struct disk_probe f;
	CHECK(disk_probe_format(evil, &f, err, sizeof(err)) == 0 && f.format == DISK_FORMAT_QCOW2 &&
	      f.names_backing_file, "probe qcow2 with a backing file");
	CHECK(disk_probe_format(secret, &f, err, sizeof(err)) == 0 && f.format == DISK_FORMAT_RAW &&
	      !f.names_backing_file, "probe raw");
	CHECK(disk_probe_format(tmp("nothere"), &f, err, sizeof(err)) == -ENOENT &&
	      strstr(err, "nothere"), "probe missing file: %s", err);

	/* The same image without its backing format extension: refused,
	 * never probed. The extension's magic becomes an unknown one. */
	uint8_t head[4096];
	fd = open(evil, O_RDWR);
	CHECK(fd >= 0 && pread(fd, head, sizeof(head), 0) == (ssize_t)sizeof(head), "read header");
	size_t at = 0;
	for (size_t i = 72; i + 4 <= sizeof(head) && !at; i += 4)
		if (qcow2_be32(head + i) == 0xE2792ACAu)
			at = i;
	CHECK(at != 0, "backing format extension found");
	uint8_t unknown[4] = { 0x0b, 0xad, 0xf0, 0x0d };
	CHECK(at && pwrite(fd, unknown, 4, (off_t)at) == 4, "hide it");
	close(fd);
	struct disk_open_opts q = { DISK_FORMAT_QCOW2, true, .backing = true };
	d = NULL;
	CHECK(disk_open(evil, &q, &d, err, sizeof(err)) == -EINVAL && !d &&
	      strstr(err, "never guessed") && strstr(err, "qemu-img rebase"),
	      "backing file without a format: %s", err);
}

/* Backing files are followed only when allowed, and then only beneath the
 * image's directory or a directory the user listed: never by `..`, an
 * absolute name or a symlink that leads out. */
static void test_backing_policy(void)
{
	char err[1024];
	CHECK(mkdir(tmp("vm"), 0755) == 0 && mkdir(tmp("outside"), 0755) == 0 &&
	      mkdir(tmp("vm/sub"), 0755) == 0, "dirs");
	char secret[512], outside[512];
	snprintf(secret, sizeof(secret), "%s", tmp("outside/secret.raw"));
	snprintf(outside, sizeof(outside), "%s", tmp("outside"));
	int fd = open(secret, O_RDWR | O_CREAT | O_TRUNC, 0644);
	uint8_t sec[4096], back[4096];
	memset(sec, 's', sizeof(sec));
	CHECK(fd >= 0 && write(fd, sec, sizeof(sec)) == (ssize_t)sizeof(sec), "secret");
	close(fd);
	fd = open(tmp("vm/sub/base.raw"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, sec, sizeof(sec)) == (ssize_t)sizeof(sec), "inside");
	close(fd);
	CHECK(symlink(secret, tmp("vm/link.raw")) == 0, "symlink out");

	struct {
		const char *image, *backing;
		bool inside;
	} cases[] = {
		{ "vm/ok.qcow2", "sub/base.raw", true },
		{ "vm/dotdot.qcow2", "../outside/secret.raw", false },
		{ "vm/sub/dotdot2.qcow2", "../../outside/secret.raw", false },
		{ "vm/abs.qcow2", secret, false },
		{ "vm/link.qcow2", "link.raw", false },
		{ "vm/proc.qcow2", "/proc/self/root/etc/hostname", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *img = tmp(cases[i].image);
		/* The header is written without opening the backing file. */
		struct disk_create_opts co = { .size = sizeof(sec), .cluster_bits = 12 };
		CHECK(disk_create_qcow2(img, &co, err, sizeof(err)) == 0, "create %s: %s", img, err);
		struct disk *d = NULL;
		struct disk_open_opts q = { DISK_FORMAT_QCOW2, false };
		CHECK(disk_open(img, &q, &d, err, sizeof(err)) == 0, "open %s: %s", img, err);
		if (!d)
			continue;
		disk_close(d);
		fd = open(img, O_RDWR);
		uint8_t head[4096];
		struct qcow2_header h;
		char msg[256];
		CHECK(fd >= 0 && pread(fd, head, sizeof(head), 0) == (ssize_t)sizeof(head) &&
		      qcow2_header_parse(head, sizeof(head), 1u << 20, &h, msg, sizeof(msg)) == 0, "parse");
		snprintf(h.backing_file, sizeof(h.backing_file), "%s", cases[i].backing);
		snprintf(h.backing_format, sizeof(h.backing_format), "raw");
		CHECK(qcow2_header_build(&h, head, sizeof(head)) == 0 &&
		      pwrite(fd, head, sizeof(head), 0) == (ssize_t)sizeof(head), "name %s", cases[i].backing);
		close(fd);

		/* Not allowed at all: refused whatever the name. */
		d = NULL;
		CHECK(disk_open(img, &q, &d, err, sizeof(err)) == -EPERM && !d &&
		      strstr(err, "followed only when allowed"), "%s without backing: %s", img, err);
		/* Allowed, beneath the image's directory only. */
		q.backing = true;
		int r = disk_open(img, &q, &d, err, sizeof(err));
		if (cases[i].inside) {
			CHECK(r == 0 && d && rw(d, false, back, sizeof(back), 0) == 0 &&
			      !memcmp(back, sec, sizeof(sec)), "%s: reads its backing file: %s", img, err);
		} else {
			CHECK(r < 0 && !d && (strstr(err, "is not beneath") || strstr(err, "symlink")),
			      "%s -> %s: %s", img, cases[i].backing, err);
		}
		disk_close(d);
		d = NULL;
	}
	/* A directory the user lists opens the way to it (also by `..`, an
	 * absolute name and a symlink to it), and nothing else. */
	const char *dirs[] = { outside };
	struct disk_open_opts q = { DISK_FORMAT_QCOW2, false, .backing = true,
				    .backing_dirs = dirs, .nbacking_dirs = 1 };
	const char *now_ok[] = { "vm/dotdot.qcow2", "vm/sub/dotdot2.qcow2", "vm/abs.qcow2" };
	for (size_t i = 0; i < 3; i++) {
		struct disk *d = NULL;
		CHECK(disk_open(tmp(now_ok[i]), &q, &d, err, sizeof(err)) == 0 && d &&
		      rw(d, false, back, sizeof(back), 0) == 0 && !memcmp(back, sec, sizeof(sec)),
		      "%s with backing=outside: %s", now_ok[i], err);
		disk_close(d);
	}
	struct disk *d = NULL;
	CHECK(disk_open(tmp("vm/proc.qcow2"), &q, &d, err, sizeof(err)) < 0 && !d, "proc: %s", err);
	const char *bad[] = { tmp("nothere") };
	q.backing_dirs = bad;
	CHECK(disk_open(tmp("vm/ok.qcow2"), &q, &d, err, sizeof(err)) == -ENOENT && !d &&
	      strstr(err, "nothere"), "missing backing directory: %s", err);
}

/* A drive's image swapped while the VM runs (disk_open_successor): another
 * file opens as usual; the very file open for writing (grown in place, say)
 * shares the open file and its lock, so the old disk can close without
 * letting anyone else in; a writable qcow2 image is not opened twice, nor
 * one file read-only beside writable. */
static void test_successor(void)
{
	const char *p = tmp("s.raw"), *q = tmp("s2.raw"), *c = tmp("s.qcow2");
	for (int i = 0; i < 2; i++) {
		int fd = open(i ? q : p, O_RDWR | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0 && pwrite(fd, i ? "Q" : "P", 1, 0) == 1,
		      "create raw");
		close(fd);
	}
	struct disk_create_opts co = { .size = 1 << 20, .cluster_bits = 16 };
	CHECK(disk_create_qcow2(c, &co, NULL, 0) == 0, "create qcow2");
	char err[512];
	struct disk_open_opts rw_raw = { DISK_FORMAT_RAW, false }, ro_raw = { DISK_FORMAT_RAW, true };
	struct disk_open_opts rw_q = { DISK_FORMAT_QCOW2, false };
	struct disk *cur = NULL, *next = NULL, *other = NULL;
	CHECK(disk_open(p, &rw_raw, &cur, err, sizeof(err)) == 0, "open: %s", err);
	if (!cur)
		return;
	/* Another file. */
	CHECK(disk_open_successor(cur, q, &rw_raw, &next, err, sizeof(err)) == 0, "another file: %s", err);
	uint8_t b = 0;
	CHECK(next && rw(next, false, &b, 1, 0) == 0 && b == 'Q', "another file's data: %c", b);
	disk_close(next);
	/* The same file, grown in place: shares the lock, outlives the old. */
	int fd = open(p, O_RDWR);
	CHECK(fd >= 0 && ftruncate(fd, 2 << 20) == 0, "grow");
	close(fd);
	next = NULL;
	CHECK(disk_open_successor(cur, p, &rw_raw, &next, err, sizeof(err)) == 0, "same file: %s", err);
	if (!next) {
		disk_close(cur);
		return;
	}
	CHECK(disk_size(next) == 2 << 20 && disk_size(cur) == 1 << 20, "new size %llu",
	      (unsigned long long)disk_size(next));
	disk_close(cur);
	CHECK(disk_open(p, &ro_raw, &other, err, sizeof(err)) == -EBUSY, "lock kept after the old closed");
	b = 'x';
	CHECK(rw(next, true, &b, 1, (2 << 20) - 1) == 0 && rw(next, false, &b, 1, 0) == 0 && b == 'P',
	      "the successor serves the file");
	/* Read-only beside writable, of one file: refused, cur untouched. */
	CHECK(disk_open_successor(next, p, &ro_raw, &other, err, sizeof(err)) == -EBUSY &&
	      strstr(err, "read-only") && !other, "ro beside rw: %s", err);
	disk_close(next);
	/* A writable qcow2 image is not opened a second time. */
	CHECK(disk_open(c, &rw_q, &cur, err, sizeof(err)) == 0, "open qcow2: %s", err);
	CHECK(disk_open_successor(cur, c, &rw_q, &other, err, sizeof(err)) == -EBUSY &&
	      strstr(err, "qcow2") && !other, "qcow2 twice: %s", err);
	disk_close(cur);
	/* Two read-only opens of one file are ordinary opens. */
	CHECK(disk_open(p, &ro_raw, &cur, err, sizeof(err)) == 0, "ro: %s", err);
	CHECK(disk_open_successor(cur, p, &ro_raw, &other, err, sizeof(err)) == 0, "ro twice: %s", err);
	disk_close(other);
	disk_close(cur);
}

static void test_create_errors(void)
{
	char err[512];
	struct disk_create_opts co = { .size = 1 << 20, .cluster_bits = 30 };
	CHECK(disk_create_qcow2(tmp("bad.qcow2"), &co, err, sizeof(err)) < 0 && strstr(err, "cluster_bits"),
	      "bad cluster bits: %s", err);
	co.cluster_bits = 16;
	co.backing_file = "does-not-exist.img";
	co.backing_format = DISK_FORMAT_RAW;
	CHECK(disk_create_qcow2(tmp("bad2.qcow2"), &co, err, sizeof(err)) < 0 &&
	      strstr(err, "No such file"), "missing backing: %s", err);
	CHECK(access(tmp("bad2.qcow2"), F_OK) != 0, "nothing left behind");
	co.backing_file = "abs-base.raw";
	co.backing_format = DISK_FORMAT_NONE;
	CHECK(disk_create_qcow2(tmp("bad3.qcow2"), &co, err, sizeof(err)) < 0 &&
	      strstr(err, "format must be given"), "backing format not given: %s", err);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/skiff-test-disk-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_refcount_entries();
	test_l2_decode();
	test_header_parse();
	test_iov_slice();
	test_raw();
	test_qcow2_model(9, false);
	test_qcow2_model(12, true);
	test_qcow2_model(16, false);
	test_qcow2_model(16, true);
	test_qcow2_model(21, true);
	test_threads();
	test_mutations();
	test_big_sparse();
	test_reftable_growth();
	test_absolute_backing();
	test_never_probes();
	test_backing_policy();
	test_successor();
	test_create_errors();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	printf("%d passed, %d failed\n", passed, failed);
	return failed || !passed;
}

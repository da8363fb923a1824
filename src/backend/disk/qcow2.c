/*
 * The qcow2 disk backend (versions 2 and 3): opening and checking an image,
 * then reads and writes through the two-level cluster map (qcow2.txt:
 * "Cluster mapping"): L1 table in memory, L2 tables through a small
 * write-through cache. Handles unallocated clusters (backing file or
 * zeros), zero clusters (v3), compressed clusters (read; a write turns them
 * into normal clusters), clusters and L2 tables shared with internal
 * snapshots (refcount above one: copied on write), and copy-on-write of
 * partial clusters from the backing file. Allocation and refcounts are in
 * qcow2_alloc.c, header parsing in qcow2_meta.c.
 *
 * Write ordering: refcounts are on disk (synced) before a table entry uses a
 * cluster (qcow2_alloc.c); data before the L2 entry that points at it; a new
 * L2 table is synced before the L1 entry that points at it; a reference is
 * dropped only after the entry that held it is rewritten.
 *
 * Hostile images: everything the header says is checked at open (see
 * qcow2_header_parse and check_layout below); problems found later, in an L2
 * entry or a table read, give -EIO. Writes go only to this image's file,
 * never over its metadata clusters, and never to a backing file (those are
 * opened read-only).
 */
#include "backend/disk/qcow2.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QCOW2_HEAD_READ (2u << 20) /* header + extensions lie in one cluster */

static inline uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static int ensure_iovs(struct qcow2 *q, int n)
{
	if (n <= q->iovs_cap)
		return 0;
	struct iovec *v = realloc(q->iovs, (size_t)n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	q->iovs = v;
	q->iovs_cap = n;
	return 0;
}

/* ---- cluster map ---- */

/* The L2 entry of guest cluster gc (0 when it has no L2 table). */
static int l2_entry(struct qcow2 *q, uint64_t gc, uint64_t *e)
{
	uint64_t l1i = gc >> q->l2_bits;
	*e = 0;
	if (l1i >= q->l1_size)
		return -EIO;
	uint64_t off = q->l1[l1i] & QCOW2_OFFSET_MASK;
	if (!off)
		return 0;
	uint8_t *t;
	if (qcow2_cache_get(q, &q->l2c, off, &t) < 0)
		return -EIO;
	*e = qcow2_be64(t + (gc & ((1ull << q->l2_bits) - 1)) * 8);
	return 0;
}

static int lookup(struct qcow2 *q, uint64_t gc, struct qcow2_cluster *c)
{
	uint64_t e;
	int ret = l2_entry(q, gc, &e);
	if (ret < 0)
		return ret;
	if (qcow2_l2_decode(e, q->cluster_bits, q->h.version, c) < 0)
		return -EIO;
	return 0;
}

/* Sets the L2 entry of guest cluster gc; its table must be writable. */
static int l2_set(struct qcow2 *q, uint64_t gc, uint64_t val)
{
	uint64_t l1i = gc >> q->l2_bits;
	uint64_t off = q->l1[l1i] & QCOW2_OFFSET_MASK;
	uint8_t *t;
	if (!off || qcow2_cache_get(q, &q->l2c, off, &t) < 0) {
		q->broken = true;
		return -EIO;
	}
	uint64_t idx = gc & ((1ull << q->l2_bits) - 1);
	qcow2_put_be64(t + idx * 8, val);
	int ret = qcow2_meta_write(q, t + idx * 8, 8, off + idx * 8);
	if (ret < 0)
		qcow2_cache_drop(&q->l2c, off);
	return ret;
}

/* Makes the L2 table of L1 entry l1i one this image alone owns (refcount
 * 1, COPIED set): allocates it if missing, copies it if shared. */
static int l2_writable(struct qcow2 *q, uint64_t l1i)
{
	uint64_t old;
	bool copied;
	if (qcow2_l1_decode(q->l1[l1i], q->cluster_bits, &old, &copied) < 0)
		return -EIO;
	if (old && copied)
		return 0;
	uint64_t nw;
	int ret = qcow2_alloc_cluster(q, &nw);
	if (ret < 0)
		return ret;
	if (old) {
		uint8_t *t;
		if (qcow2_cache_get(q, &q->l2c, old, &t) < 0)
			return -EIO;
		memcpy(q->tbl, t, q->cs);
	} else {
		memset(q->tbl, 0, q->cs);
	}
	ret = qcow2_meta_write(q, q->tbl, q->cs, nw);
	if (ret == 0)
		ret = qcow2_sync(q);
	if (ret < 0)
		return ret;
	uint8_t be[8];
	qcow2_put_be64(be, nw | QCOW2_OFLAG_COPIED);
	ret = qcow2_meta_write(q, be, 8, q->h.l1_table_offset + l1i * 8);
	if (ret < 0)
		return ret;
	q->l1[l1i] = nw | QCOW2_OFLAG_COPIED;
	ret = qcow2_meta_add(q, nw >> q->cluster_bits, 1);
	if (ret < 0)
		return ret;
	qcow2_cache_put(q, &q->l2c, nw, q->tbl);
	if (old)
		ret = qcow2_release(q, old, q->cs, false);
	return ret;
}

/* ---- compressed clusters ---- */

/* Inflates compressed cluster c into q->dbuf (raw deflate, qcow2.txt:
 * "Compressed Clusters Descriptor"; compression type 0 = zlib). */
static int decompress(struct qcow2 *q, const struct qcow2_cluster *c)
{
	if (q->dbuf_valid && q->dbuf_host == c->host && q->dbuf_csize == c->csize)
		return 0;
	q->dbuf_valid = false;
	if (c->host >= q->file_size)
		return -EIO;
	uint64_t n = min64(c->csize, q->file_size - c->host);
	ssize_t r = disk_pread_full(q->fd, q->cbuf, (size_t)n, c->host);
	if (r < 0)
		return -EIO;
	if (!q->zs_ready) {
		memset(&q->zs, 0, sizeof(q->zs));
		if (inflateInit2(&q->zs, -15) != Z_OK)
			return -ENOMEM;
		q->zs_ready = true;
	} else if (inflateReset(&q->zs) != Z_OK) {
		return -EIO;
	}
	q->zs.next_in = q->cbuf;
	q->zs.avail_in = (uInt)r;
	q->zs.next_out = q->dbuf;
	q->zs.avail_out = (uInt)q->cs;
	int z = inflate(&q->zs, Z_FINISH);
	if ((z != Z_STREAM_END && z != Z_BUF_ERROR && z != Z_OK) || q->zs.avail_out != 0)
		return -EIO;
	q->dbuf_valid = true;
	q->dbuf_host = c->host;
	q->dbuf_csize = c->csize;
	return 0;
}

/* ---- reads ---- */

/* Guest bytes [pos, pos + n) that no cluster of this image holds: from the
 * backing file as far as it reaches, zeros beyond. */
static int read_backing(struct qcow2 *q, const struct iovec *iov, int iovcnt,
			uint64_t iov_off, uint64_t pos, uint64_t n)
{
	uint64_t m = 0;
	if (q->backing && pos < q->d->size && pos < disk_size(q->backing))
		m = min64(n, disk_size(q->backing) - pos);
	if (m) {
		int k = disk_iov_slice(iov, iovcnt, iov_off, m, q->iovs, q->iovs_cap);
		if (k < 0)
			return -EIO;
		int ret = disk_preadv(q->backing, q->iovs, k, pos);
		if (ret < 0)
			return ret;
	}
	if (n > m)
		disk_iov_zero(iov, iovcnt, iov_off + m, (size_t)(n - m));
	return 0;
}

/* A run of guest bytes that lie back to back in the image file. */
struct run {
	uint64_t host, iov_off, len;
};

static int run_flush(struct qcow2 *q, const struct iovec *iov, int iovcnt, struct run *r, bool write)
{
	if (!r->len)
		return 0;
	int k = disk_iov_slice(iov, iovcnt, r->iov_off, r->len, q->iovs, q->iovs_cap);
	if (k < 0)
		return -EIO;
	int ret;
	if (write) {
		ret = disk_pwritev_full(q->fd, q->iovs, k, r->host);
		if (ret == 0)
			qcow2_note_extent(q, r->host, r->len);
	} else {
		ret = disk_preadv_full(q->fd, q->iovs, k, r->host);
	}
	r->len = 0;
	return ret;
}

/* Adds n bytes at host (iov offset iov_off) to the run, flushing the run
 * first if they do not continue it. */
static int run_push(struct qcow2 *q, const struct iovec *iov, int iovcnt, struct run *r,
		    uint64_t host, uint64_t iov_off, uint64_t n, bool write)
{
	if (r->len && r->host + r->len == host && r->iov_off + r->len == iov_off) {
		r->len += n;
		return 0;
	}
	int ret = run_flush(q, iov, iovcnt, r, write);
	*r = (struct run){ host, iov_off, n };
	return ret;
}

static int read_locked(struct qcow2 *q, const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len)
{
	struct run run = { 0, 0, 0 };
	uint64_t done = 0;
	int ret = 0;
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t gc = pos >> q->cluster_bits, in = pos & (q->cs - 1);
		uint64_t n = min64(q->cs - in, len - done);
		struct qcow2_cluster c;
		ret = lookup(q, gc, &c);
		if (ret < 0)
			break;
		if (c.type == QCOW2_C_NORMAL) {
			if (c.host >= q->file_size) {
				ret = -EIO;
				break;
			}
			ret = run_push(q, iov, iovcnt, &run, c.host + in, done, n, false);
			if (ret < 0)
				break;
		} else {
			if ((ret = run_flush(q, iov, iovcnt, &run, false)) < 0)
				break;
			switch (c.type) {
			case QCOW2_C_UNALLOC:
				ret = read_backing(q, iov, iovcnt, done, pos, n);
				break;
			case QCOW2_C_COMPRESSED:
				ret = decompress(q, &c);
				if (ret == 0)
					disk_buf_to_iov(iov, iovcnt, done, q->dbuf + in, (size_t)n);
				break;
			default:
				disk_iov_zero(iov, iovcnt, done, (size_t)n);
				break;
			}
			if (ret < 0)
				break;
		}
		done += n;
	}
	if (ret == 0)
		ret = run_flush(q, iov, iovcnt, &run, false);
	return ret < 0 ? -EIO : 0;
}

static int qcow2_preadv(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct qcow2 *q = d->priv;
	int64_t len = disk_iov_len(iov, iovcnt);
	pthread_mutex_lock(&q->lock);
	int ret = ensure_iovs(q, iovcnt);
	if (ret == 0)
		ret = read_locked(q, iov, iovcnt, off, (uint64_t)len);
	pthread_mutex_unlock(&q->lock);
	return ret;
}

/* ---- writes ---- */

/* The whole present content of guest cluster gc, described by c, into buf. */
static int fill_old(struct qcow2 *q, uint64_t gc, const struct qcow2_cluster *c, uint8_t *buf)
{
	int ret;
	switch (c->type) {
	case QCOW2_C_UNALLOC: {
		struct iovec v = { buf, q->cs };
		return read_backing(q, &v, 1, 0, gc << q->cluster_bits, q->cs);
	}
	case QCOW2_C_COMPRESSED:
		ret = decompress(q, c);
		if (ret < 0)
			return ret;
		memcpy(buf, q->dbuf, q->cs);
		return 0;
	case QCOW2_C_NORMAL: {
		if (c->host >= q->file_size)
			return -EIO;
		ssize_t r = disk_pread_full(q->fd, buf, q->cs, c->host);
		if (r < 0)
			return -EIO;
		memset(buf + r, 0, q->cs - (uint64_t)r);
		return 0;
	}
	default:
		memset(buf, 0, q->cs);
		return 0;
	}
}

/* Drops the reference an old L2 entry held, after it was replaced. */
static int release_old(struct qcow2 *q, const struct qcow2_cluster *c, bool punch)
{
	switch (c->type) {
	case QCOW2_C_NORMAL:
	case QCOW2_C_ZERO_ALLOC:
		return qcow2_release(q, c->host, q->cs, punch);
	case QCOW2_C_COMPRESSED:
		return qcow2_release(q, c->host, c->csize, punch);
	default:
		return 0;
	}
}

/* Writes guest bytes [pos, pos + n) of cluster gc (from iov at iov_off)
 * where the cluster cannot be written in place: gives it a fresh cluster
 * holding the old content merged with the new bytes. */
static int write_alloc(struct qcow2 *q, uint64_t gc, const struct qcow2_cluster *c, uint64_t in,
		       uint64_t n, const struct iovec *iov, int iovcnt, uint64_t iov_off)
{
	int ret = l2_writable(q, gc >> q->l2_bits);
	if (ret < 0)
		return ret;
	uint64_t host;
	bool fresh = true;
	if (c->type == QCOW2_C_ZERO_ALLOC && c->copied && c->host < q->file_size &&
	    !qcow2_meta_find(q, c->host >> q->cluster_bits)) {
		/* Ours already: write it whole, then clear the zero flag. */
		host = c->host;
		fresh = false;
	} else {
		ret = qcow2_alloc_cluster(q, &host);
		if (ret < 0)
			return ret;
	}
	/* Old content all zeros and the new cluster past the end of the
	 * file (so it reads as zeros already): write just the new bytes. */
	bool zeros_below = c->type == QCOW2_C_ZERO || c->type == QCOW2_C_ZERO_ALLOC ||
			   (c->type == QCOW2_C_UNALLOC &&
			    !(q->backing && (gc << q->cluster_bits) < disk_size(q->backing)));
	if (n == q->cs || (zeros_below && host >= q->file_size)) {
		int k = disk_iov_slice(iov, iovcnt, iov_off, n, q->iovs, q->iovs_cap);
		if (k < 0)
			return -EIO;
		ret = disk_pwritev_full(q->fd, q->iovs, k, host + in);
		if (ret == 0)
			qcow2_note_extent(q, host + in, n);
	} else {
		if (fresh)
			ret = fill_old(q, gc, c, q->cow);
		else
			memset(q->cow, 0, q->cs);
		if (ret < 0)
			return ret;
		disk_iov_to_buf(iov, iovcnt, iov_off, q->cow + in, (size_t)n);
		ret = disk_pwrite_full(q->fd, q->cow, q->cs, host);
		if (ret == 0)
			qcow2_note_extent(q, host, q->cs);
	}
	if (ret < 0)
		return ret;
	ret = l2_set(q, gc, host | QCOW2_OFLAG_COPIED);
	if (ret < 0 || !fresh)
		return ret;
	return release_old(q, c, false);
}

static int write_locked(struct qcow2 *q, const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len)
{
	struct run run = { 0, 0, 0 };
	uint64_t done = 0;
	int ret = 0;
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t gc = pos >> q->cluster_bits, in = pos & (q->cs - 1);
		uint64_t n = min64(q->cs - in, len - done);
		struct qcow2_cluster c;
		ret = lookup(q, gc, &c);
		if (ret < 0)
			break;
		if (c.type == QCOW2_C_NORMAL && c.copied) {
			/* Ours alone: write in place, but never over metadata
			 * or far past the end of the file. */
			if (c.host >= q->file_size || qcow2_meta_find(q, c.host >> q->cluster_bits)) {
				ret = -EIO;
				break;
			}
			ret = run_push(q, iov, iovcnt, &run, c.host + in, done, n, true);
			if (ret < 0)
				break;
		} else {
			if ((ret = run_flush(q, iov, iovcnt, &run, true)) < 0)
				break;
			ret = write_alloc(q, gc, &c, in, n, iov, iovcnt, done);
			if (ret < 0)
				break;
		}
		done += n;
	}
	if (ret == 0)
		ret = run_flush(q, iov, iovcnt, &run, true);
	return ret;
}

static int qcow2_pwritev(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct qcow2 *q = d->priv;
	int64_t len = disk_iov_len(iov, iovcnt);
	pthread_mutex_lock(&q->lock);
	int ret = q->broken ? -EIO : ensure_iovs(q, iovcnt);
	if (ret == 0)
		ret = write_locked(q, iov, iovcnt, off, (uint64_t)len);
	pthread_mutex_unlock(&q->lock);
	return ret;
}

/* Discard (advisory) and write-zeroes. Whole clusters become unallocated
 * (no backing data below them) or zero clusters (v3), freeing their host
 * clusters, so both read as zeros afterwards; partial clusters get zeros
 * written (write-zeroes) or are left alone (discard). A v2 image over a
 * backing file cannot say "zeros" without data, so there write-zeroes
 * writes zeros and discard does nothing. */
static int zero_locked(struct qcow2 *q, uint64_t off, uint64_t len, bool discard)
{
	uint64_t done = 0;
	int ret = ensure_iovs(q, 1);
	while (ret == 0 && done < len) {
		uint64_t pos = off + done;
		uint64_t gc = pos >> q->cluster_bits, in = pos & (q->cs - 1);
		uint64_t n = min64(q->cs - in, len - done);
		/* No L2 table and nothing below: the whole range L1 entry
		 * covers reads as zeros already. */
		uint64_t l1i = gc >> q->l2_bits;
		if (l1i < q->l1_size && !(q->l1[l1i] & QCOW2_OFFSET_MASK) &&
		    (!q->backing || pos >= disk_size(q->backing))) {
			uint64_t span_end = (l1i + 1) << (q->l2_bits + q->cluster_bits);
			done += min64(span_end - pos, len - done);
			continue;
		}
		done += n;
		bool full = in == 0 && (n == q->cs || pos + n == q->d->size);
		struct iovec z = { q->zeros, (size_t)n };
		if (!full) {
			if (!discard)
				ret = write_locked(q, &z, 1, pos, n);
			continue;
		}
		struct qcow2_cluster c;
		ret = lookup(q, gc, &c);
		if (ret < 0)
			break;
		bool backed = q->backing && pos < disk_size(q->backing);
		bool v3 = q->h.version >= 3;
		uint64_t val;
		/* Already reads as zeros? */
		if (c.type == QCOW2_C_ZERO || c.type == QCOW2_C_ZERO_ALLOC ||
		    (c.type == QCOW2_C_UNALLOC && !backed))
			continue;
		if (!backed)
			val = 0;
		else if (v3)
			val = QCOW2_OFLAG_ZERO;
		else if (discard)
			continue;
		else {
			ret = write_locked(q, &z, 1, pos, n);
			continue;
		}
		ret = l2_writable(q, gc >> q->l2_bits);
		if (ret == 0)
			ret = l2_set(q, gc, val);
		if (ret == 0)
			ret = release_old(q, &c, true);
	}
	return ret;
}

static int qcow2_zero_common(struct disk *d, uint64_t off, uint64_t len, bool discard)
{
	struct qcow2 *q = d->priv;
	pthread_mutex_lock(&q->lock);
	int ret = q->broken ? -EIO : zero_locked(q, off, len, discard);
	pthread_mutex_unlock(&q->lock);
	return ret;
}

static int qcow2_discard(struct disk *d, uint64_t off, uint64_t len)
{
	return qcow2_zero_common(d, off, len, true);
}

static int qcow2_write_zeroes(struct disk *d, uint64_t off, uint64_t len)
{
	return qcow2_zero_common(d, off, len, false);
}

static int qcow2_flush(struct disk *d)
{
	struct qcow2 *q = d->priv;
	pthread_mutex_lock(&q->lock);
	int ret = fdatasync(q->fd) < 0 ? -errno : 0;
	if (ret == 0)
		q->frees_unsynced = false;
	pthread_mutex_unlock(&q->lock);
	return ret;
}

/* ---- open and close ---- */

static void qcow2_free(struct qcow2 *q)
{
	if (!q)
		return;
	if (q->backing)
		disk_close(q->backing);
	qcow2_cache_free(&q->l2c);
	qcow2_cache_free(&q->rbc);
	if (q->zs_ready)
		inflateEnd(&q->zs);
	free(q->l1);
	free(q->rt);
	free(q->meta);
	free(q->pool);
	free(q->cow);
	free(q->tbl);
	free(q->zeros);
	free(q->cbuf);
	free(q->dbuf);
	free(q->iovs);
	free(q);
}

static void qcow2_close(struct disk *d)
{
	struct qcow2 *q = d->priv;
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	if (!d->read_only) {
		qcow2_alloc_finish(q);
		if (fdatasync(q->fd) < 0) {
			/* Nothing to report to: data was flushed by the
			 * caller's last flush if it cared. */
		}
	}
	pthread_mutex_unlock(&q->lock);
	pthread_mutex_destroy(&q->lock);
	qcow2_free(q);
	d->priv = NULL;
}

static void qcow2_describe(struct disk *d, char *buf, size_t len)
{
	struct qcow2 *q = d->priv;
	int n = snprintf(buf, len, "%s: qcow2 v%u, %" PRIu64 " bytes, %" PRIu64 "-byte clusters, "
			 "%u-bit refcounts%s", d->path, q->h.version, d->size, q->cs,
			 1u << q->order, d->read_only ? ", read-only" : "");
	if (q->backing && n >= 0 && (size_t)n < len) {
		char sub[1024];
		disk_describe(q->backing, sub, sizeof(sub));
		snprintf(buf + n, len - (size_t)n, "; backing file %s", sub);
	}
}

static const struct disk_ops qcow2_ops = {
	.preadv = qcow2_preadv,
	.pwritev = qcow2_pwritev,
	.flush = qcow2_flush,
	.discard = qcow2_discard,
	.write_zeroes = qcow2_write_zeroes,
	.close = qcow2_close,
	.describe = qcow2_describe,
};

static int read_table(struct qcow2 *q, uint64_t off, uint64_t entries, uint64_t **out)
{
	uint64_t *t = calloc(entries ? entries : 1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	ssize_t r = entries ? disk_pread_full(q->fd, t, entries * 8, off) : 0;
	if (r < 0 || (uint64_t)r != entries * 8) {
		free(t);
		return -EIO;
	}
	for (uint64_t i = 0; i < entries; i++)
		t[i] = qcow2_be64((const uint8_t *)&t[i]);
	*out = t;
	return 0;
}

struct ranges {
	struct qcow2_range *r;
	size_t n, cap;
};

static int ranges_add(struct ranges *rs, uint64_t start, uint64_t len, const char *what, uint64_t index)
{
	if (rs->n == rs->cap) {
		size_t nc = rs->cap ? rs->cap * 2 : 64;
		struct qcow2_range *r = realloc(rs->r, nc * sizeof(*r));
		if (!r)
			return -ENOMEM;
		rs->r = r;
		rs->cap = nc;
	}
	rs->r[rs->n++] = (struct qcow2_range){ start, len, what, index };
	return 0;
}

static int overlap_check(struct ranges *rs, char *msg, size_t msglen)
{
	const char *pfx = "metadata overlap: ";
	size_t pl = strlen(pfx);
	if (msglen <= pl)
		return qcow2_ranges_check(rs->r, rs->n, NULL, 0);
	int ret = qcow2_ranges_check(rs->r, rs->n, msg + pl, msglen - pl);
	if (ret < 0)
		memcpy(msg, pfx, pl);
	return ret;
}

/* Checks where every table lies: aligned, inside the file, no two pieces
 * of metadata sharing a byte. Builds the metadata map from the result. */
static int check_layout(struct qcow2 *q, char *msg, size_t msglen)
{
	struct ranges rs = { 0 };
	const uint64_t cs = q->cs, fsz = q->file_size;
	int ret = ranges_add(&rs, 0, cs, "header", UINT64_MAX);
	if (ret == 0 && q->l1_size)
		ret = ranges_add(&rs, q->h.l1_table_offset, q->l1_size * 8, "L1 table", UINT64_MAX);
	if (ret == 0)
		ret = ranges_add(&rs, q->h.refcount_table_offset,
				 (uint64_t)q->h.refcount_table_clusters << q->cluster_bits,
				 "refcount table", UINT64_MAX);
	/* The tables the header places, against each other first, so that
	 * e.g. an L1 table over the header is reported as such. */
	if (ret == 0 && (ret = overlap_check(&rs, msg, msglen)) < 0)
		goto out;
	for (uint64_t i = 0; ret == 0 && i < q->rt_entries; i++) {
		uint64_t off = q->rt[i];
		if (!off)
			continue;
		if (off & (cs - 1)) {
			snprintf(msg, msglen, "refcount block %" PRIu64 " offset 0x%" PRIx64
				 " is not cluster-aligned", i, off);
			ret = -EINVAL;
		} else if (off > fsz || cs > fsz - off) {
			snprintf(msg, msglen, "refcount block %" PRIu64 " at 0x%" PRIx64
				 " lies beyond the end of the file", i, off);
			ret = -EINVAL;
		} else {
			ret = ranges_add(&rs, off, cs, "refcount block", i);
		}
	}
	for (uint64_t i = 0; ret == 0 && i < q->l1_size; i++) {
		uint64_t off;
		bool copied;
		if (qcow2_l1_decode(q->l1[i], q->cluster_bits, &off, &copied) < 0) {
			snprintf(msg, msglen, "L1 entry %" PRIu64 " (0x%016" PRIx64 ") is malformed",
				 i, q->l1[i]);
			ret = -EINVAL;
		} else if (off && (off > fsz || cs > fsz - off)) {
			snprintf(msg, msglen, "L2 table of L1 entry %" PRIu64 " at 0x%" PRIx64
				 " lies beyond the end of the file", i, off);
			ret = -EINVAL;
		} else if (off) {
			ret = ranges_add(&rs, off, cs, "L2 table of L1 entry", i);
		}
	}
	/* Snapshot table: its entries are walked only to learn where it ends
	 * and where the snapshots' L1 tables are. */
	uint64_t pos = q->h.snapshots_offset;
	for (uint32_t i = 0; ret == 0 && i < q->h.nb_snapshots; i++) {
		uint8_t fixed[QCOW2_SNAPSHOT_FIXED];
		struct qcow2_snapshot s;
		uint64_t elen;
		if (pos > fsz || QCOW2_SNAPSHOT_FIXED > fsz - pos ||
		    disk_pread_full(q->fd, fixed, sizeof(fixed), pos) != sizeof(fixed)) {
			snprintf(msg, msglen, "snapshot table entry %u lies beyond the end of the file", i);
			ret = -EINVAL;
			break;
		}
		ret = qcow2_snapshot_parse(fixed, &s, &elen, msg, msglen);
		if (ret < 0)
			break;
		/* The last entry's padding may be missing from the file. */
		pos = (pos + 7) & ~7ull;
		pos += elen;
		if (pos - q->h.snapshots_offset > QCOW2_MAX_SNAPSHOT_TABLE || pos > fsz) {
			snprintf(msg, msglen, "snapshot table is too large or runs past the end of the file");
			ret = -EINVAL;
			break;
		}
		if (s.l1_size > QCOW2_MAX_L1_ENTRIES) {
			snprintf(msg, msglen, "snapshot %u: L1 table too large (%u entries)", i, s.l1_size);
			ret = -EINVAL;
		} else if (s.l1_size && (s.l1_table_offset & (cs - 1))) {
			snprintf(msg, msglen, "snapshot %u: L1 table offset 0x%" PRIx64
				 " is not cluster-aligned", i, s.l1_table_offset);
			ret = -EINVAL;
		} else if (s.l1_size && (s.l1_table_offset > fsz ||
					 (uint64_t)s.l1_size * 8 > fsz - s.l1_table_offset)) {
			snprintf(msg, msglen, "snapshot %u: L1 table lies beyond the end of the file", i);
			ret = -EINVAL;
		} else if (s.l1_size) {
			ret = ranges_add(&rs, s.l1_table_offset, (uint64_t)s.l1_size * 8,
					 "L1 table of snapshot", i);
		}
	}
	if (ret == 0 && q->h.nb_snapshots)
		ret = ranges_add(&rs, q->h.snapshots_offset, pos - q->h.snapshots_offset,
				 "snapshot table", UINT64_MAX);
	if (ret == 0)
		ret = overlap_check(&rs, msg, msglen);
	if (ret == 0) {
		/* Sorted and disjoint now; all starts are cluster-aligned,
		 * so rounding ends up keeps them disjoint. */
		q->meta = calloc(rs.n ? rs.n : 1, sizeof(*q->meta));
		if (!q->meta) {
			ret = -ENOMEM;
		} else {
			q->cmeta = rs.n ? rs.n : 1;
			for (size_t i = 0; i < rs.n; i++) {
				if (!rs.r[i].len)
					continue;
				uint64_t s = rs.r[i].start >> q->cluster_bits;
				uint64_t e = (rs.r[i].start + rs.r[i].len + cs - 1) >> q->cluster_bits;
				q->meta[q->nmeta++] = (struct qcow2_mrange){ s, e - s };
			}
		}
	} else if (ret == -ENOMEM) {
		snprintf(msg, msglen, "out of memory");
	}
out:
	free(rs.r);
	return ret;
}

static int open_backing(struct qcow2 *q, const struct disk_chain *chain, char *err, size_t errlen)
{
	struct disk *d = q->d;
	const char *name = q->h.backing_file;
	enum disk_format fmt;
	/* A backing file's format is never probed: a raw backing file
	 * (written by some guest once) could read as qcow2 and name any host
	 * file as its own backing file. The image must say (QEMU requires -F
	 * for the same reason since 6.1). */
	if (!q->h.backing_format[0]) {
		disk_err(err, errlen, d->path, "names the backing file '%s' but not its format "
			 "(no backing format header extension), and a backing file's format is "
			 "never guessed; record it with: qemu-img rebase -u -b '%s' -F raw|qcow2 %s",
			 name, name, d->path);
		return -EINVAL;
	} else if (!strcmp(q->h.backing_format, "raw"))
		fmt = DISK_FORMAT_RAW;
	else if (!strcmp(q->h.backing_format, "qcow2"))
		fmt = DISK_FORMAT_QCOW2;
	else {
		disk_err(err, errlen, d->path, "backing file format '%s' is not supported",
			 q->h.backing_format);
		return -ENOTSUP;
	}
	if (!chain->roots) {
		disk_err(err, errlen, d->path, "names the backing file '%s', and backing files are "
			 "followed only when allowed: backing=on (beneath the image's directory) or "
			 "backing=DIR", name);
		return -EPERM;
	}
	/* The top image is known by its canonical path, the others by the
	 * absolute path they were opened by. */
	const char *from = chain->depth == 0 ? chain->roots->top : d->path;
	char sub[768];
	int fd = disk_roots_open(chain->roots, from, name, q->backing_path,
				 sizeof(q->backing_path), sub, sizeof(sub));
	if (fd < 0) {
		disk_err(err, errlen, d->path, "backing file: %s", sub);
		return fd;
	}
	int ret = disk_open_chain(q->backing_path, fd, fmt, true, chain, &q->backing, sub, sizeof(sub));
	if (ret < 0) {
		/* Name the top image and the image with the problem, not
		 * every image in between. */
		const char *inner = strstr(sub, ": backing file: ");
		disk_err(err, errlen, d->path, "backing file: %s",
			 inner ? inner + strlen(": backing file: ") : sub);
		return ret;
	}
	return 0;
}

static unsigned clamp_u(uint64_t v, unsigned lo, unsigned hi)
{
	return v < lo ? lo : v > hi ? hi : (unsigned)v;
}

int qcow2_open(struct disk *d, const struct stat *st, const struct disk_chain *chain,
	       char *err, size_t errlen)
{
	struct qcow2 *q = calloc(1, sizeof(*q));
	char msg[400];
	uint8_t *head = NULL;
	int ret;
	if (!q) {
		disk_err(err, errlen, d->path, "out of memory");
		return -ENOMEM;
	}
	q->d = d;
	q->fd = d->fd;
	off_t end = lseek(d->fd, 0, SEEK_END);
	if (end < 0) {
		ret = -errno;
		disk_err(err, errlen, d->path, "cannot find the file size: %s", strerror(-ret));
		goto fail;
	}
	q->file_size = (uint64_t)end;
	size_t want = (size_t)min64(q->file_size, QCOW2_HEAD_READ);
	head = malloc(want ? want : 1);
	if (!head) {
		ret = -ENOMEM;
		disk_err(err, errlen, d->path, "out of memory");
		goto fail;
	}
	ssize_t got = disk_pread_full(d->fd, head, want, 0);
	if (got < 0) {
		ret = (int)got;
		disk_err(err, errlen, d->path, "cannot read the header: %s", strerror(-ret));
		goto fail;
	}
	ret = qcow2_header_parse(head, (size_t)got, q->file_size, &q->h, msg, sizeof(msg));
	free(head);
	head = NULL;
	if (ret < 0) {
		disk_err(err, errlen, d->path, "%s", msg);
		goto fail;
	}
	if ((q->h.incompatible_features & QCOW2_INCOMPAT_DIRTY) && !d->read_only) {
		ret = -EINVAL;
		disk_err(err, errlen, d->path, "image was not closed cleanly (dirty bit set); "
			 "repair it with 'qemu-img check -r all' or open it read-only");
		goto fail;
	}
	q->cluster_bits = q->h.cluster_bits;
	q->cs = 1ull << q->cluster_bits;
	q->l2_bits = q->cluster_bits - 3;
	q->order = q->h.refcount_order;
	q->rb_bits = q->cluster_bits + 3 - q->order;
	q->l1_size = q->h.l1_size;
	q->rt_entries = ((uint64_t)q->h.refcount_table_clusters << q->cluster_bits) / 8;

	if (read_table(q, q->h.l1_table_offset, q->l1_size, &q->l1) < 0 ||
	    read_table(q, q->h.refcount_table_offset, q->rt_entries, &q->rt) < 0) {
		ret = -EIO;
		disk_err(err, errlen, d->path, "cannot read the L1 or refcount table");
		goto fail;
	}
	for (uint64_t i = 0; i < q->rt_entries; i++) {
		if (q->rt[i] & 0x1ffull) {
			ret = -EINVAL;
			disk_err(err, errlen, d->path, "refcount table entry %" PRIu64
				 " has reserved bits set", i);
			goto fail;
		}
	}
	ret = check_layout(q, msg, sizeof(msg));
	if (ret < 0) {
		disk_err(err, errlen, d->path, "%s", msg);
		goto fail;
	}
	if (q->h.backing_file[0]) {
		ret = open_backing(q, chain, err, errlen);
		if (ret < 0)
			goto fail;
	}

	unsigned l2n = clamp_u((8u << 20) >> q->cluster_bits, 4, 64);
	unsigned rbn = clamp_u((2u << 20) >> q->cluster_bits, 4, 16);
	q->pool_cap = clamp_u((8u << 20) >> q->cluster_bits, 4, 256);
	q->pool = calloc(q->pool_cap, sizeof(*q->pool));
	q->cow = malloc(q->cs);
	q->tbl = malloc(q->cs);
	q->zeros = calloc(1, q->cs);
	q->cbuf = malloc(2 * q->cs + 512);
	q->dbuf = malloc(q->cs);
	if (!q->pool || !q->cow || !q->tbl || !q->zeros || !q->cbuf || !q->dbuf ||
	    qcow2_cache_init(&q->l2c, l2n, q->cs) < 0 || qcow2_cache_init(&q->rbc, rbn, q->cs) < 0) {
		ret = -ENOMEM;
		disk_err(err, errlen, d->path, "out of memory");
		goto fail;
	}

	if (!d->read_only && q->h.version >= 3 && q->h.autoclear_features) {
		/* qcow2.txt: a writer that does not know the autoclear
		 * features must clear them (it would make the data they
		 * describe, e.g. bitmaps, stale). */
		uint8_t zero[8] = { 0 };
		if (disk_pwrite_full(q->fd, zero, 8, 88) < 0 || fdatasync(q->fd) < 0) {
			ret = -EIO;
			disk_err(err, errlen, d->path, "cannot update the header");
			goto fail;
		}
		q->h.autoclear_features = 0;
	}
	pthread_mutex_init(&q->lock, NULL);
	d->priv = q;
	d->size = q->h.size;
	d->ops = &qcow2_ops;
	(void)st;
	return 0;
fail:
	free(head);
	qcow2_free(q);
	return ret;
}

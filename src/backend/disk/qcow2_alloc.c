/*
 * qcow2 host cluster management (qcow2.txt: "Host cluster management"):
 * refcount lookups and updates, the allocator, creation of refcount blocks
 * and growth of the refcount table; also the write-through table cache and
 * the metadata-cluster map used to keep guest data off metadata.
 *
 * Crash consistency. A cluster's refcount is written and synced before any
 * table entry can point at it: the allocator reserves a batch of free
 * clusters, records refcount 1 for each, fdatasyncs once, then hands them out
 * (so an L2 entry never points at a cluster whose refcount is not on disk;
 * after a crash the unused rest of a batch is merely leaked, which
 * `qemu-img check -r leaks` reclaims). A refcount block is written and synced
 * before the refcount table points at it; a new refcount table is written
 * and synced before the header points at it, and the old one is freed after.
 * A cluster whose refcount drops to zero is not reused before the next
 * fdatasync, so the table update that stopped referencing it is on disk
 * before new data can land in it.
 */
#include "backend/disk/qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- small helpers ---- */

void qcow2_note_extent(struct qcow2 *q, uint64_t off, uint64_t len)
{
	if (off + len > q->file_size)
		q->file_size = off + len;
}

int qcow2_meta_write(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
	int ret = disk_pwrite_full(q->fd, buf, len, off);
	if (ret < 0) {
		q->broken = true;
		return ret;
	}
	qcow2_note_extent(q, off, len);
	return 0;
}

int qcow2_sync(struct qcow2 *q)
{
	if (fdatasync(q->fd) < 0) {
		q->broken = true;
		return -errno;
	}
	return 0;
}

/* ---- table cache ---- */

int qcow2_cache_init(struct qcow2_cache *c, unsigned n, uint64_t cs)
{
	c->n = n;
	c->slots = calloc(n, sizeof(*c->slots));
	if (!c->slots)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		c->slots[i].buf = malloc(cs);
		if (!c->slots[i].buf)
			return -ENOMEM;
	}
	return 0;
}

void qcow2_cache_free(struct qcow2_cache *c)
{
	if (!c->slots)
		return;
	for (unsigned i = 0; i < c->n; i++)
		free(c->slots[i].buf);
	free(c->slots);
	c->slots = NULL;
}

static struct qcow2_cache_slot *cache_slot(struct qcow2 *q, struct qcow2_cache *c, uint64_t off,
					   bool *hit)
{
	struct qcow2_cache_slot *victim = NULL;
	for (unsigned i = 0; i < c->n; i++) {
		struct qcow2_cache_slot *s = &c->slots[i];
		if (s->off == off) {
			*hit = true;
			s->used = ++q->tick;
			return s;
		}
		/* Prefer an empty slot, else the least recently used. */
		if (!victim || (victim->off != 0 && (s->off == 0 || s->used < victim->used)))
			victim = s;
	}
	*hit = false;
	victim->off = 0;
	victim->used = ++q->tick;
	return victim;
}

int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, uint8_t **out)
{
	if (off == 0)
		return -EIO;
	bool hit;
	struct qcow2_cache_slot *s = cache_slot(q, c, off, &hit);
	if (!hit) {
		ssize_t r = disk_pread_full(q->fd, s->buf, q->cs, off);
		if (r < 0)
			return (int)r;
		if ((uint64_t)r != q->cs)
			return -EIO;
		s->off = off;
	}
	*out = s->buf;
	return 0;
}

void qcow2_cache_put(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, const uint8_t *buf)
{
	bool hit;
	struct qcow2_cache_slot *s = cache_slot(q, c, off, &hit);
	memcpy(s->buf, buf, q->cs);
	s->off = off;
}

void qcow2_cache_drop(struct qcow2_cache *c, uint64_t off)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->slots[i].off == off)
			c->slots[i].off = 0;
}

/* ---- metadata map ---- */

/* Index of the last range starting at or before cluster, or -1. */
static ssize_t meta_search(const struct qcow2 *q, uint64_t cluster)
{
	ssize_t lo = 0, hi = (ssize_t)q->nmeta - 1, best = -1;
	while (lo <= hi) {
		ssize_t mid = lo + (hi - lo) / 2;
		if (q->meta[mid].start <= cluster) {
			best = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	return best;
}

bool qcow2_meta_find(const struct qcow2 *q, uint64_t cluster)
{
	ssize_t i = meta_search(q, cluster);
	return i >= 0 && cluster - q->meta[i].start < q->meta[i].n;
}

int qcow2_meta_add(struct qcow2 *q, uint64_t start, uint64_t n)
{
	if (q->nmeta == q->cmeta) {
		size_t nc = q->cmeta ? q->cmeta * 2 : 64;
		struct qcow2_mrange *m = realloc(q->meta, nc * sizeof(*m));
		if (!m)
			return -ENOMEM;
		q->meta = m;
		q->cmeta = nc;
	}
	ssize_t i = meta_search(q, start) + 1;
	memmove(&q->meta[i + 1], &q->meta[i], (q->nmeta - (size_t)i) * sizeof(*q->meta));
	q->meta[i].start = start;
	q->meta[i].n = n;
	q->nmeta++;
	return 0;
}

void qcow2_meta_del(struct qcow2 *q, uint64_t start)
{
	ssize_t i = meta_search(q, start);
	if (i < 0 || q->meta[i].start != start)
		return;
	memmove(&q->meta[i], &q->meta[i + 1], (q->nmeta - (size_t)i - 1) * sizeof(*q->meta));
	q->nmeta--;
}

/* ---- refcounts ---- */

static int rb_block(struct qcow2 *q, uint64_t bi, uint8_t **blk)
{
	if (bi >= q->rt_entries || q->rt[bi] == 0)
		return -ENOENT;
	return qcow2_cache_get(q, &q->rbc, q->rt[bi], blk);
}

int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *v)
{
	uint8_t *blk;
	int ret = rb_block(q, cluster >> q->rb_bits, &blk);
	if (ret == -ENOENT) {
		*v = 0;
		return 0;
	}
	if (ret < 0)
		return ret;
	*v = qcow2_rb_get(blk, cluster & ((1ull << q->rb_bits) - 1), q->order);
	return 0;
}

/* The refcount block covering cluster must exist. */
static int refcount_set(struct qcow2 *q, uint64_t cluster, uint64_t v)
{
	uint64_t bi = cluster >> q->rb_bits;
	uint8_t *blk;
	int ret = rb_block(q, bi, &blk);
	if (ret < 0) {
		q->broken = true;
		return -EIO;
	}
	uint64_t idx = cluster & ((1ull << q->rb_bits) - 1);
	uint64_t boff;
	unsigned nb;
	qcow2_rb_set(blk, idx, q->order, v);
	qcow2_rb_span(idx, q->order, &boff, &nb);
	ret = qcow2_meta_write(q, blk + boff, nb, q->rt[bi] + boff);
	if (ret < 0)
		qcow2_cache_drop(&q->rbc, q->rt[bi]);
	return ret;
}

static uint64_t max_cluster(const struct qcow2 *q)
{
	return QCOW2_MAX_HOST_OFFSET >> q->cluster_bits;
}

int qcow2_release(struct qcow2 *q, uint64_t off, uint64_t len, bool punch)
{
	if (len == 0)
		return 0;
	uint64_t first = off >> q->cluster_bits;
	uint64_t last = (off + len - 1) >> q->cluster_bits;
	for (uint64_t c = first; c <= last; c++) {
		uint64_t v;
		int ret = qcow2_refcount_get(q, c, &v);
		if (ret < 0)
			return ret;
		if (v == 0) {
			/* A reference to a cluster with no refcount. */
			q->broken = true;
			return -EIO;
		}
		ret = refcount_set(q, c, v - 1);
		if (ret < 0)
			return ret;
		if (v == 1) {
			q->frees_unsynced = true;
			if (c < q->free_hint)
				q->free_hint = c;
			uint64_t host = c << q->cluster_bits;
			qcow2_meta_del(q, c);
			qcow2_cache_drop(&q->l2c, host);
			qcow2_cache_drop(&q->rbc, host);
			if (q->dbuf_valid && q->dbuf_host >> q->cluster_bits <= c &&
			    (q->dbuf_host + q->dbuf_csize - 1) >> q->cluster_bits >= c)
				q->dbuf_valid = false;
			if (punch && host < q->file_size)
				fallocate(q->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					  (off_t)host, (off_t)q->cs);
		}
	}
	return 0;
}

/* Creates refcount block bi (its table entry is 0, so every cluster in its
 * range is free): the block goes in the first cluster of its own range that
 * holds no metadata, and counts itself. */
static int create_refblock(struct qcow2 *q, uint64_t bi)
{
	uint64_t ent = 1ull << q->rb_bits;
	uint64_t base = bi << q->rb_bits, p = base;
	while (p < base + ent && qcow2_meta_find(q, p))
		p++;
	if (p == base + ent) {
		q->broken = true;
		return -EIO;
	}
	if (p >= max_cluster(q))
		return -ENOSPC;
	uint8_t *blk = calloc(1, q->cs);
	if (!blk)
		return -ENOMEM;
	qcow2_rb_set(blk, p - base, q->order, 1);
	uint64_t host = p << q->cluster_bits;
	int ret = qcow2_meta_write(q, blk, q->cs, host);
	if (ret == 0)
		ret = qcow2_sync(q);
	uint8_t be[8];
	qcow2_put_be64(be, host);
	if (ret == 0)
		ret = qcow2_meta_write(q, be, 8, q->h.refcount_table_offset + bi * 8);
	if (ret == 0) {
		q->rt[bi] = host;
		ret = qcow2_meta_add(q, p, 1);
		qcow2_cache_put(q, &q->rbc, host, blk);
	}
	free(blk);
	return ret;
}

/* Grows the refcount table so that it has an entry for cluster c, which is
 * beyond everything the current table covers (so all clusters from c on are
 * free). A new area at c holds new refcount blocks (counting the area
 * itself) followed by the new, larger table; the header is switched over
 * once both are on disk, then the old table is freed. */
static int grow_reftable(struct qcow2 *q, uint64_t c)
{
	const uint64_t per_cluster = q->cs / 8;
	uint64_t start = c, nb = 1, tc = 1;
	int ret;
	for (int iter = 0;; iter++) {
		if (iter > 1000)
			return -EIO;
		uint64_t total = nb + tc;
		if (start >= max_cluster(q) || total > max_cluster(q) - start)
			return -ENOSPC;
		uint64_t first_bi = start >> q->rb_bits;
		uint64_t last_bi = (start + total - 1) >> q->rb_bits;
		uint64_t need_nb = last_bi - first_bi + 1;
		uint64_t need_entries = last_bi + 1;
		uint64_t doubled = q->rt_entries * 2;
		if (doubled > need_entries && doubled * 8 <= QCOW2_MAX_REFTABLE_BYTES)
			need_entries = doubled;
		uint64_t need_tc = (need_entries + per_cluster - 1) / per_cluster;
		if (need_tc * q->cs > QCOW2_MAX_REFTABLE_BYTES)
			return -ENOSPC;
		if (need_nb > nb || need_tc > tc) {
			if (need_nb > nb)
				nb = need_nb;
			if (need_tc > tc)
				tc = need_tc;
			continue;
		}
		/* Keep clear of metadata found where it should not be. */
		bool moved = false;
		for (uint64_t x = start; x < start + total; x++) {
			if (qcow2_meta_find(q, x)) {
				start = x + 1;
				moved = true;
				break;
			}
		}
		if (!moved)
			break;
	}
	uint64_t total = nb + tc;
	uint64_t first_bi = start >> q->rb_bits;
	uint64_t entries = tc * per_cluster;
	if (first_bi + nb > entries || first_bi < q->rt_entries)
		return -EIO;

	uint64_t *nrt = calloc(entries, sizeof(*nrt));
	uint8_t *buf = malloc(tc * q->cs > q->cs ? tc * q->cs : q->cs);
	if (!nrt || !buf) {
		free(nrt);
		free(buf);
		return -ENOMEM;
	}
	memcpy(nrt, q->rt, q->rt_entries * sizeof(*nrt));
	ret = 0;
	for (uint64_t j = 0; j < nb && ret == 0; j++) {
		uint64_t bi = first_bi + j;
		memset(buf, 0, q->cs);
		for (uint64_t x = start; x < start + total; x++)
			if (x >> q->rb_bits == bi)
				qcow2_rb_set(buf, x - (bi << q->rb_bits), q->order, 1);
		nrt[bi] = (start + j) << q->cluster_bits;
		ret = qcow2_meta_write(q, buf, q->cs, nrt[bi]);
	}
	uint64_t nrt_off = (start + nb) << q->cluster_bits;
	if (ret == 0) {
		memset(buf, 0, tc * q->cs);
		for (uint64_t i = 0; i < entries; i++)
			qcow2_put_be64(buf + i * 8, nrt[i]);
		ret = qcow2_meta_write(q, buf, tc * q->cs, nrt_off);
	}
	if (ret == 0)
		ret = qcow2_sync(q);
	if (ret == 0) {
		uint8_t hdr[12];
		qcow2_put_be64(hdr, nrt_off);
		qcow2_put_be32(hdr + 8, (uint32_t)tc);
		ret = qcow2_meta_write(q, hdr, sizeof(hdr), 48);
	}
	if (ret == 0)
		ret = qcow2_sync(q);
	free(buf);
	if (ret < 0) {
		free(nrt);
		return ret;
	}
	uint64_t old_off = q->h.refcount_table_offset;
	uint64_t old_clusters = q->h.refcount_table_clusters;
	free(q->rt);
	q->rt = nrt;
	q->rt_entries = entries;
	q->h.refcount_table_offset = nrt_off;
	q->h.refcount_table_clusters = (uint32_t)tc;
	qcow2_meta_del(q, old_off >> q->cluster_bits);
	ret = qcow2_meta_add(q, start, nb);
	if (ret == 0)
		ret = qcow2_meta_add(q, start + nb, tc);
	if (ret == 0)
		ret = qcow2_release(q, old_off, old_clusters << q->cluster_bits, false);
	return ret;
}

/* Makes sure the refcount block for cluster c exists. */
static int ensure_refblock(struct qcow2 *q, uint64_t c)
{
	for (int tries = 0; tries < 4; tries++) {
		uint64_t bi = c >> q->rb_bits;
		int ret;
		if (bi >= q->rt_entries)
			ret = grow_reftable(q, c);
		else if (q->rt[bi] == 0)
			ret = create_refblock(q, bi);
		else
			return 0;
		if (ret < 0)
			return ret;
	}
	q->broken = true;
	return -EIO;
}

/* Reserves the next batch of free clusters (see the top of this file). */
static int refill(struct qcow2 *q)
{
	int ret;
	if (q->frees_unsynced) {
		ret = qcow2_sync(q);
		if (ret < 0)
			return ret;
		q->frees_unsynced = false;
	}
	uint64_t c = q->free_hint, maxc = max_cluster(q);
	unsigned got = 0;
	/* Clusters freed while we scan (an old refcount table) lower the
	 * hint again; see the end. */
	q->free_hint = UINT64_MAX;
	while (got < q->pool_cap) {
		if (c >= maxc) {
			if (got)
				break;
			return -ENOSPC;
		}
		ret = ensure_refblock(q, c);
		if (ret < 0)
			goto out;
		uint8_t *blk;
		ret = rb_block(q, c >> q->rb_bits, &blk);
		if (ret < 0) {
			q->broken = true;
			ret = -EIO;
			goto out;
		}
		/* Scan the rest of this block. */
		uint64_t mask = (1ull << q->rb_bits) - 1;
		uint64_t block_end = (c | mask) + 1;
		for (; c < block_end && c < maxc && got < q->pool_cap; c++) {
			if (qcow2_rb_get(blk, c & mask, q->order) != 0 || qcow2_meta_find(q, c))
				continue;
			ret = refcount_set(q, c, 1);
			if (ret < 0)
				goto out;
			q->pool[got++] = c;
			/* refcount_set may not evict: it uses the same
			 * block, which stays cached. */
		}
	}
	ret = 0;
out:
	if (c < q->free_hint)
		q->free_hint = c;
	q->pool_head = 0;
	q->pool_n = got;
	if (got) {
		int r2 = qcow2_sync(q);
		if (r2 < 0) {
			q->pool_n = 0;
			return r2;
		}
	}
	return ret;
}

int qcow2_alloc_cluster(struct qcow2 *q, uint64_t *host_off)
{
	if (q->broken)
		return -EIO;
	if (q->pool_n == 0) {
		int ret = refill(q);
		if (ret < 0 && q->pool_n == 0)
			return ret;
	}
	*host_off = q->pool[q->pool_head++] << q->cluster_bits;
	q->pool_n--;
	return 0;
}

int qcow2_alloc_finish(struct qcow2 *q)
{
	int ret = 0;
	while (q->pool_n > 0) {
		uint64_t c = q->pool[q->pool_head++];
		q->pool_n--;
		if (q->broken)
			continue;
		int r = refcount_set(q, c, 0);
		if (r < 0 && ret == 0)
			ret = r;
		if (c < q->free_hint)
			q->free_hint = c;
	}
	return ret;
}

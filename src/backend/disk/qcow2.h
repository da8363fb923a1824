/*
 * State of an open qcow2 image, shared by qcow2.c (open, the read and write
 * paths, L1/L2 tables, compressed clusters, backing files) and qcow2_alloc.c
 * (refcounts, cluster allocation, growing the refcount table), plus the
 * small write-through table cache and the map of metadata clusters both use.
 */
#ifndef SKIFF_BACKEND_QCOW2_H
#define SKIFF_BACKEND_QCOW2_H

#include <pthread.h>
#include <zlib.h>

#include "backend/disk/disk_impl.h"
#include "backend/disk/qcow2_meta.h"

/* A cache of whole metadata clusters (L2 tables or refcount blocks),
 * write-through: whoever changes a cached table writes the changed bytes to
 * the file at once, so the cache never holds anything the file lacks. */
struct qcow2_cache_slot {
	uint64_t off;  /* host offset; 0 = empty */
	uint64_t used; /* LRU stamp */
	uint8_t *buf;
};

struct qcow2_cache {
	unsigned n;
	struct qcow2_cache_slot *slots;
};

/* A run of metadata clusters [start, start + n), by cluster index. */
struct qcow2_mrange {
	uint64_t start, n;
};

struct qcow2 {
	struct disk *d;
	int fd;
	pthread_mutex_t lock;
	struct qcow2_header h;

	unsigned cluster_bits;
	uint64_t cs;            /* cluster size */
	unsigned l2_bits;       /* log2 of entries per L2 table */
	unsigned rb_bits;       /* log2 of entries per refcount block */
	unsigned order;         /* refcount_order */

	uint64_t l1_size;
	uint64_t *l1;           /* host byte order */
	uint64_t rt_entries;
	uint64_t *rt;           /* host byte order */
	uint64_t file_size;     /* kept up to date with our own writes */

	struct disk *backing;
	char backing_path[4096];

	uint64_t tick;
	struct qcow2_cache l2c, rbc;

	/* Every cluster holding metadata: header, L1, refcount table and
	 * blocks, active L2 tables, snapshot table and snapshot L1 tables.
	 * Sorted, disjoint. Guest data is never written over them. */
	struct qcow2_mrange *meta;
	size_t nmeta, cmeta;

	/* Allocator: clusters whose refcount is already 1 on disk (synced),
	 * handed out in order. Clusters freed since the last sync are not
	 * reused before the next fdatasync. */
	uint64_t free_hint;     /* no free cluster below this index */
	uint64_t *pool;
	unsigned pool_head, pool_n, pool_cap;
	bool frees_unsynced;
	/* Set when metadata on disk may no longer match what we think (a
	 * failed metadata write, an inconsistency found): writes then fail. */
	bool broken;

	uint8_t *cow;           /* one cluster: copy-on-write assembly */
	uint8_t *tbl;           /* one cluster: new tables */
	uint8_t *zeros;         /* one cluster of zeros */
	uint8_t *cbuf;          /* compressed input, 2 clusters + 512 */
	uint8_t *dbuf;          /* last decompressed cluster */
	uint64_t dbuf_host, dbuf_csize;
	bool dbuf_valid;
	z_stream zs;
	bool zs_ready;
	struct iovec *iovs;     /* scratch for iovec slices */
	int iovs_cap;
};

/* qcow2_alloc.c */
int qcow2_cache_init(struct qcow2_cache *c, unsigned n, uint64_t cs);
void qcow2_cache_free(struct qcow2_cache *c);
/* Returns the cluster at host offset off, loading it from the file when not
 * cached (short read: -EIO). The pointer is valid until the next call on
 * this cache. */
int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, uint8_t **out);
/* Puts a copy of buf (one cluster, already written to the file) in. */
void qcow2_cache_put(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, const uint8_t *buf);
void qcow2_cache_drop(struct qcow2_cache *c, uint64_t off);

bool qcow2_meta_find(const struct qcow2 *q, uint64_t cluster);
int qcow2_meta_add(struct qcow2 *q, uint64_t start, uint64_t n);
void qcow2_meta_del(struct qcow2 *q, uint64_t start);

int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *v);
/* Drops one reference from the clusters covering host bytes
 * [off, off + len); those reaching zero become free (after the next sync)
 * and, if punch, have their space returned to the file system. */
int qcow2_release(struct qcow2 *q, uint64_t off, uint64_t len, bool punch);
/* A fresh cluster whose refcount (1) is on disk already. */
int qcow2_alloc_cluster(struct qcow2 *q, uint64_t *host_off);
/* Gives back clusters reserved but not used (at close). */
int qcow2_alloc_finish(struct qcow2 *q);

/* Write helpers that mark the image broken when a metadata write fails. */
int qcow2_meta_write(struct qcow2 *q, const void *buf, size_t len, uint64_t off);
int qcow2_sync(struct qcow2 *q);
void qcow2_note_extent(struct qcow2 *q, uint64_t off, uint64_t len);

#endif

/*
 * The qcow2 on-disk format: constants, header and header-extension parsing
 * with all the checks that need only the header bytes and the file size,
 * table-entry decoding, refcount-block entry access, snapshot-table entry
 * parsing and a metadata overlap checker. Pure functions over byte buffers
 * (no I/O), so they can be unit-tested and fuzzed on their own.
 *
 * Format reference: the "qcow2 Image File Specification" in QEMU's
 * docs/interop/qcow2.txt (sections cited as "qcow2.txt: <section>").
 * All multi-byte fields are big-endian.
 */
#ifndef SKIFF_BACKEND_QCOW2_META_H
#define SKIFF_BACKEND_QCOW2_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_LEN 104
/* Limits, the same as QEMU's, so images QEMU makes open here. */
#define QCOW2_MAX_L1_ENTRIES (4u << 20)             /* 32 MiB of L1 table */
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_SNAPSHOT_TABLE (64u << 20)
#define QCOW2_MAX_SNAPSHOT_EXTRA 1024
/* Host offsets are bits 9..55 of a table entry: nothing may lie beyond. */
#define QCOW2_MAX_HOST_OFFSET (1ull << 56)
#define QCOW2_MAX_FEATURE_NAMES 64

/* qcow2.txt: header, incompatible_features / compatible / autoclear. */
#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN 0x1full
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

/* qcow2.txt: header extensions. */
#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u

/* qcow2.txt: cluster mapping (L1 and L2 entries). */
#define QCOW2_OFLAG_COPIED (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO (1ull << 0)
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull    /* bits 9..55 */
#define QCOW2_L1_RESERVED 0x7f000000000001ffull    /* bits 0..8, 56..62 */
#define QCOW2_L2_RESERVED 0x3f000000000001feull    /* bits 1..8, 56..61 */

/* Byte order helpers. */
static inline uint16_t qcow2_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t qcow2_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t qcow2_be64(const uint8_t *p)
{
	return ((uint64_t)qcow2_be32(p) << 32) | qcow2_be32(p + 4);
}
static inline void qcow2_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void qcow2_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void qcow2_put_be64(uint8_t *p, uint64_t v)
{
	qcow2_put_be32(p, (uint32_t)(v >> 32));
	qcow2_put_be32(p + 4, (uint32_t)v);
}

struct qcow2_feature_name {
	uint8_t type; /* 0 incompatible, 1 compatible, 2 autoclear */
	uint8_t bit;
	char name[47];
};

struct qcow2_header {
	uint32_t version;
	uint64_t backing_file_offset;
	uint32_t backing_file_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_table_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompatible_features;
	uint64_t compatible_features;
	uint64_t autoclear_features;
	uint32_t refcount_order;
	uint32_t header_length;
	uint8_t compression_type;
	/* From the backing file name field and the extensions. */
	char backing_file[QCOW2_MAX_BACKING_NAME + 1]; /* "" when none */
	char backing_format[32];                        /* "" when none */
	unsigned n_feature_names;
	struct qcow2_feature_name feature_names[QCOW2_MAX_FEATURE_NAMES];
};

/* Parses and checks the header of an image. `buf` holds the first `len`
 * bytes of the file, at least min(file size, 2 MiB) of them (the header,
 * its extensions and the backing file name all lie in the first cluster).
 * Everything checkable from these bytes is checked: magic, version,
 * cluster_bits, header_length, refcount_order, encryption, incompatible
 * features (corrupt refused; dirty left to the caller), virtual size against
 * the L1 size, alignment and file bounds of the L1 table, refcount table and
 * snapshot table, extensions and the backing file name.
 * Returns 0, or -EINVAL/-ENOTSUP with a message (no file name) in msg. */
int qcow2_header_parse(const uint8_t *buf, size_t len, uint64_t file_size,
		       struct qcow2_header *h, char *msg, size_t msglen);

/* Builds a version 3 header, its extensions (backing format, end marker)
 * and the backing file name into buf (cluster_size bytes, zeroed first).
 * Returns 0 or -EINVAL if it does not fit. */
int qcow2_header_build(const struct qcow2_header *h, uint8_t *buf, size_t len);

/* An L2 entry, decoded (qcow2.txt: "Cluster mapping"). */
enum qcow2_ctype {
	QCOW2_C_UNALLOC,    /* read from the backing file, or zeros */
	QCOW2_C_ZERO,       /* reads as zeros, no host cluster */
	QCOW2_C_ZERO_ALLOC, /* reads as zeros, host cluster kept allocated */
	QCOW2_C_NORMAL,     /* data at host */
	QCOW2_C_COMPRESSED, /* deflate stream at host, csize bytes at most */
};

struct qcow2_cluster {
	enum qcow2_ctype type;
	bool copied;      /* refcount is exactly one: may be written in place */
	uint64_t host;    /* host byte offset (cluster-aligned unless compressed) */
	uint64_t csize;   /* compressed: bytes from host that may hold the stream */
};

/* Returns 0, or -EIO for an entry that breaks the format (reserved bits,
 * misaligned offset, flags that do not go together). */
int qcow2_l2_decode(uint64_t e, unsigned cluster_bits, unsigned version,
		    struct qcow2_cluster *c);
/* Offset of the L2 table an L1 entry points to (0: none); -EIO if the
 * entry is malformed. */
int qcow2_l1_decode(uint64_t e, unsigned cluster_bits, uint64_t *l2_off, bool *copied);

/* Refcount block entries of 2^order bits (qcow2.txt: "Host cluster
 * management"): sub-byte widths are packed from the least significant bit,
 * wider ones are big-endian. */
uint64_t qcow2_rb_get(const uint8_t *blk, uint64_t idx, unsigned order);
void qcow2_rb_set(uint8_t *blk, uint64_t idx, unsigned order, uint64_t v);
/* The bytes of a block that hold entry idx. */
void qcow2_rb_span(uint64_t idx, unsigned order, uint64_t *byte_off, unsigned *nbytes);

/* One snapshot table entry: the part this backend needs. */
struct qcow2_snapshot {
	uint64_t l1_table_offset;
	uint32_t l1_size;
};
#define QCOW2_SNAPSHOT_FIXED 40
/* Parses the fixed 40 bytes of an entry; *entry_len is the whole entry's
 * length including the variable part, without the padding to 8 bytes that
 * precedes the next entry. */
int qcow2_snapshot_parse(const uint8_t *fixed, struct qcow2_snapshot *s,
			 uint64_t *entry_len, char *msg, size_t msglen);

/* A byte range of metadata, for overlap checks. */
struct qcow2_range {
	uint64_t start, len;
	const char *what;
	uint64_t index; /* printed after `what` unless UINT64_MAX */
};
/* Sorts r and returns -EINVAL with a message naming the first two ranges
 * that overlap, or 0. */
int qcow2_ranges_check(struct qcow2_range *r, size_t n, char *msg, size_t msglen);

#endif

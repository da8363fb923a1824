/*
 * qcow2 header parsing and checks, header building, table-entry decoding and
 * refcount-entry access; see qcow2_meta.h. No I/O here: everything works on
 * byte buffers so that it can be fuzzed directly.
 */
#include "backend/disk/qcow2_meta.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *msg, size_t msglen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *msg, size_t msglen, int ret, const char *fmt, ...)
{
	if (msg && msglen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* [off, off + len) lies inside a file of file_size bytes (no overflow). */
static bool in_file(uint64_t off, uint64_t len, uint64_t file_size)
{
	return off <= file_size && len <= file_size - off;
}

/* A metadata table (`what`, `len` bytes at off): cluster-aligned and
 * within the file; `detail` follows the offset in the second message. */
static int check_table(const char *what, uint64_t off, uint64_t len, const char *detail, uint64_t cs,
		       uint64_t file_size, char *msg, size_t msglen)
{
	if (off & (cs - 1))
		return fail(msg, msglen, -EINVAL, "%s offset 0x%" PRIx64 " is not cluster-aligned", what, off);
	if (!in_file(off, len, file_size))
		return fail(msg, msglen, -EINVAL, "%s at 0x%" PRIx64 "%s lies beyond the end of the file",
			    what, off, detail);
	return 0;
}

static const char *feature_name(const struct qcow2_header *h, unsigned type, unsigned bit)
{
	for (unsigned i = 0; i < h->n_feature_names; i++)
		if (h->feature_names[i].type == type && h->feature_names[i].bit == bit)
			return h->feature_names[i].name;
	return NULL;
}

/* qcow2.txt: "Header extensions". Extensions start right after the header
 * and end at the end marker, the backing file name, or the first cluster's
 * end, whichever comes first. */
static int parse_extensions(const uint8_t *buf, size_t len, uint64_t cluster_size,
			    struct qcow2_header *h, char *msg, size_t msglen)
{
	uint64_t off = h->version >= 3 ? h->header_length : QCOW2_V2_HEADER_LEN;
	uint64_t limit = cluster_size < len ? cluster_size : len;
	if (h->backing_file_offset > off && h->backing_file_offset < limit)
		limit = h->backing_file_offset;
	while (off + 8 <= limit) {
		uint32_t type = qcow2_be32(buf + off);
		uint32_t elen = qcow2_be32(buf + off + 4);
		off += 8;
		if (type == QCOW2_EXT_END)
			return 0;
		if (elen > limit - off)
			return fail(msg, msglen, -EINVAL,
				    "header extension 0x%08x (%u bytes) runs past the header area",
				    type, elen);
		const uint8_t *data = buf + off;
		switch (type) {
		case QCOW2_EXT_BACKING_FORMAT:
			if (elen >= sizeof(h->backing_format))
				return fail(msg, msglen, -EINVAL,
					    "backing format name too long (%u bytes)", elen);
			memcpy(h->backing_format, data, elen);
			h->backing_format[elen] = 0;
			if (strlen(h->backing_format) != elen)
				return fail(msg, msglen, -EINVAL, "backing format name contains a NUL byte");
			break;
		case QCOW2_EXT_FEATURE_TABLE:
			for (uint32_t i = 0; i + 48 <= elen; i += 48) {
				if (h->n_feature_names >= QCOW2_MAX_FEATURE_NAMES)
					break;
				struct qcow2_feature_name *f = &h->feature_names[h->n_feature_names++];
				f->type = data[i];
				f->bit = data[i + 1];
				memcpy(f->name, data + i + 2, 46);
				f->name[46] = 0;
				for (char *c = f->name; *c; c++)
					if (*c < 0x20 || *c > 0x7e)
						*c = '?';
			}
			break;
		default:
			/* Bitmaps, crypto, data file and anything unknown:
			 * skipped (the features that need them are refused or
			 * cleared through their feature bits). */
			break;
		}
		uint64_t padded = ((uint64_t)elen + 7) & ~7ull;
		if (padded > limit - off)
			padded = limit - off;
		off += padded;
	}
	return 0;
}

static void describe_features(const struct qcow2_header *h, uint64_t bits, unsigned type,
			      char *out, size_t outlen)
{
	size_t n = 0;
	out[0] = 0;
	for (unsigned b = 0; b < 64; b++) {
		if (!(bits & (1ull << b)))
			continue;
		const char *name = feature_name(h, type, b);
		int w = name ? snprintf(out + n, outlen - n, "%sbit %u (%s)", n ? ", " : "", b, name)
			     : snprintf(out + n, outlen - n, "%sbit %u", n ? ", " : "", b);
		if (w < 0 || (size_t)w >= outlen - n)
			break;
		n += (size_t)w;
	}
}

int qcow2_header_parse(const uint8_t *buf, size_t len, uint64_t file_size,
		       struct qcow2_header *h, char *msg, size_t msglen)
{
	memset(h, 0, sizeof(*h));
	if (len > file_size)
		len = (size_t)file_size;
	if (len < QCOW2_V2_HEADER_LEN)
		return fail(msg, msglen, -EINVAL,
			    "file too short for a qcow2 header (%zu bytes)", len);
	if (qcow2_be32(buf) != QCOW2_MAGIC)
		return fail(msg, msglen, -EINVAL, "not a qcow2 image (bad magic)");
	h->version = qcow2_be32(buf + 4);
	h->backing_file_offset = qcow2_be64(buf + 8);
	h->backing_file_size = qcow2_be32(buf + 16);
	h->cluster_bits = qcow2_be32(buf + 20);
	h->size = qcow2_be64(buf + 24);
	h->crypt_method = qcow2_be32(buf + 32);
	h->l1_size = qcow2_be32(buf + 36);
	h->l1_table_offset = qcow2_be64(buf + 40);
	h->refcount_table_offset = qcow2_be64(buf + 48);
	h->refcount_table_clusters = qcow2_be32(buf + 56);
	h->nb_snapshots = qcow2_be32(buf + 60);
	h->snapshots_offset = qcow2_be64(buf + 64);

	if (h->version != 2 && h->version != 3)
		return fail(msg, msglen, -ENOTSUP, "unsupported qcow2 version %u", h->version);
	if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return fail(msg, msglen, -EINVAL, "cluster_bits %u out of range %d..%d",
			    h->cluster_bits, QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS);
	uint64_t cs = 1ull << h->cluster_bits;

	if (h->version == 2) {
		h->refcount_order = 4;
		h->header_length = QCOW2_V2_HEADER_LEN;
	} else {
		if (len < QCOW2_V3_HEADER_LEN)
			return fail(msg, msglen, -EINVAL,
				    "file too short for a version 3 header (%zu bytes)", len);
		h->incompatible_features = qcow2_be64(buf + 72);
		h->compatible_features = qcow2_be64(buf + 80);
		h->autoclear_features = qcow2_be64(buf + 88);
		h->refcount_order = qcow2_be32(buf + 96);
		h->header_length = qcow2_be32(buf + 100);
		if (h->header_length < QCOW2_V3_HEADER_LEN)
			return fail(msg, msglen, -EINVAL, "header_length %u is below %d",
				    h->header_length, QCOW2_V3_HEADER_LEN);
		if (h->header_length % 8)
			return fail(msg, msglen, -EINVAL, "header_length %u is not a multiple of 8",
				    h->header_length);
		if (h->header_length > cs)
			return fail(msg, msglen, -EINVAL, "header_length %u is larger than a cluster",
				    h->header_length);
		if (h->header_length > len)
			return fail(msg, msglen, -EINVAL, "header (%u bytes) is truncated",
				    h->header_length);
		if (h->header_length > QCOW2_V3_HEADER_LEN)
			h->compression_type = buf[104];
	}

	int ret = parse_extensions(buf, len, cs, h, msg, msglen);
	if (ret < 0)
		return ret;

	if (h->crypt_method != 0)
		return fail(msg, msglen, -ENOTSUP, "encrypted images are not supported (crypt_method %u)",
			    h->crypt_method);
	uint64_t unknown = h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN;
	if (unknown) {
		char names[256];
		describe_features(h, unknown, 0, names, sizeof(names));
		return fail(msg, msglen, -ENOTSUP, "unsupported incompatible features: %s", names);
	}
	if (h->incompatible_features & QCOW2_INCOMPAT_CORRUPT)
		return fail(msg, msglen, -EINVAL,
			    "image is marked corrupt; repair it with 'qemu-img check -r all'");
	if (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE)
		return fail(msg, msglen, -ENOTSUP, "external data files are not supported");
	if (h->incompatible_features & QCOW2_INCOMPAT_EXTL2)
		return fail(msg, msglen, -ENOTSUP,
			    "extended L2 entries (subclusters) are not supported");
	if (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) {
		if (h->header_length <= QCOW2_V3_HEADER_LEN)
			return fail(msg, msglen, -EINVAL,
				    "compression type feature set but the header has no compression_type field");
		if (h->compression_type != 0)
			return fail(msg, msglen, -ENOTSUP,
				    "compression type %u (%s) is not supported, only zlib",
				    h->compression_type, h->compression_type == 1 ? "zstd" : "unknown");
	} else if (h->compression_type != 0) {
		return fail(msg, msglen, -EINVAL,
			    "compression_type %u without the compression type feature bit",
			    h->compression_type);
	}
	if (h->refcount_order > 6)
		return fail(msg, msglen, -EINVAL, "refcount_order %u out of range 0..6",
			    h->refcount_order);

	/* The L1 table must map the whole virtual disk (qcow2.txt: "Cluster
	 * mapping"); one L1 entry covers cluster_size * cluster_size / 8. */
	unsigned l1_cover_bits = 2 * h->cluster_bits - 3;
	uint64_t l1_needed = (h->size >> l1_cover_bits) +
			     ((h->size & ((1ull << l1_cover_bits) - 1)) != 0);
	if (h->l1_size > QCOW2_MAX_L1_ENTRIES)
		return fail(msg, msglen, -EINVAL, "L1 table too large (%u entries, at most %u)",
			    h->l1_size, QCOW2_MAX_L1_ENTRIES);
	if (l1_needed > h->l1_size)
		return fail(msg, msglen, -EINVAL,
			    "L1 table (%u entries) too small for the virtual size %" PRIu64,
			    h->l1_size, h->size);
	if (h->l1_size > 0) {
		char entries[32];
		snprintf(entries, sizeof(entries), " (%u entries)", h->l1_size);
		int r = check_table("L1 table", h->l1_table_offset, (uint64_t)h->l1_size * 8, entries, cs,
				    file_size, msg, msglen);
		if (r)
			return r;
	}

	if (h->refcount_table_clusters == 0)
		return fail(msg, msglen, -EINVAL, "refcount table is empty");
	uint64_t rt_bytes = (uint64_t)h->refcount_table_clusters << h->cluster_bits;
	if (rt_bytes > QCOW2_MAX_REFTABLE_BYTES)
		return fail(msg, msglen, -EINVAL, "refcount table too large (%u clusters)",
			    h->refcount_table_clusters);
	int r = check_table("refcount table", h->refcount_table_offset, rt_bytes, "", cs, file_size,
			    msg, msglen);
	if (r)
		return r;

	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return fail(msg, msglen, -EINVAL, "too many snapshots (%u)", h->nb_snapshots);
	if (h->nb_snapshots && (r = check_table("snapshot table", h->snapshots_offset,
						 QCOW2_SNAPSHOT_FIXED, "", cs, file_size, msg, msglen)))
		return r;

	/* qcow2.txt: the backing file name is not NUL-terminated and must
	 * lie in the first cluster; QEMU limits it to 1023 bytes. */
	if (h->backing_file_offset && h->backing_file_size) {
		uint64_t bo = h->backing_file_offset, bl = h->backing_file_size;
		if (bl > QCOW2_MAX_BACKING_NAME)
			return fail(msg, msglen, -EINVAL, "backing file name too long (%" PRIu64 " bytes)", bl);
		if (!in_file(bo, bl, cs))
			return fail(msg, msglen, -EINVAL,
				    "backing file name at 0x%" PRIx64 " is outside the first cluster", bo);
		if (!in_file(bo, bl, len))
			return fail(msg, msglen, -EINVAL,
				    "backing file name lies beyond the end of the file");
		if (bo < h->header_length)
			return fail(msg, msglen, -EINVAL, "backing file name overlaps the header");
		memcpy(h->backing_file, buf + bo, bl);
		h->backing_file[bl] = 0;
		if (strlen(h->backing_file) != bl)
			return fail(msg, msglen, -EINVAL, "backing file name contains a NUL byte");
		if (!strncmp(h->backing_file, "json:", 5))
			return fail(msg, msglen, -ENOTSUP,
				    "backing file given as a json: specification is not supported");
	} else if (h->backing_format[0]) {
		/* A format without a file: harmless, ignored. */
		h->backing_format[0] = 0;
	}
	return 0;
}

int qcow2_header_build(const struct qcow2_header *h, uint8_t *buf, size_t len)
{
	const size_t hlen = 112;
	if (len < hlen + 8)
		return -EINVAL;
	memset(buf, 0, len);
	qcow2_put_be32(buf, QCOW2_MAGIC);
	qcow2_put_be32(buf + 4, 3);
	qcow2_put_be32(buf + 20, h->cluster_bits);
	qcow2_put_be64(buf + 24, h->size);
	qcow2_put_be32(buf + 32, 0);
	qcow2_put_be32(buf + 36, h->l1_size);
	qcow2_put_be64(buf + 40, h->l1_table_offset);
	qcow2_put_be64(buf + 48, h->refcount_table_offset);
	qcow2_put_be32(buf + 56, h->refcount_table_clusters);
	qcow2_put_be32(buf + 60, 0);
	qcow2_put_be64(buf + 64, 0);
	qcow2_put_be64(buf + 72, h->incompatible_features);
	qcow2_put_be64(buf + 80, h->compatible_features);
	qcow2_put_be64(buf + 88, h->autoclear_features);
	qcow2_put_be32(buf + 96, h->refcount_order);
	qcow2_put_be32(buf + 100, (uint32_t)hlen);
	buf[104] = h->compression_type;

	size_t off = hlen;
	size_t flen = strlen(h->backing_format);
	if (flen) {
		size_t padded = (flen + 7) & ~(size_t)7;
		if (off + 8 + padded > len)
			return -EINVAL;
		qcow2_put_be32(buf + off, QCOW2_EXT_BACKING_FORMAT);
		qcow2_put_be32(buf + off + 4, (uint32_t)flen);
		memcpy(buf + off + 8, h->backing_format, flen);
		off += 8 + padded;
	}
	if (off + 8 > len)
		return -EINVAL;
	qcow2_put_be32(buf + off, QCOW2_EXT_END);
	qcow2_put_be32(buf + off + 4, 0);
	off += 8;
	size_t blen = strlen(h->backing_file);
	if (blen) {
		if (blen > QCOW2_MAX_BACKING_NAME || off + blen > len)
			return -EINVAL;
		memcpy(buf + off, h->backing_file, blen);
		qcow2_put_be64(buf + 8, off);
		qcow2_put_be32(buf + 16, (uint32_t)blen);
	}
	return 0;
}

int qcow2_l2_decode(uint64_t e, unsigned cluster_bits, unsigned version,
		    struct qcow2_cluster *c)
{
	memset(c, 0, sizeof(*c));
	if (e & QCOW2_OFLAG_COMPRESSED) {
		/* qcow2.txt: "Compressed Clusters Descriptor": x = 62 -
		 * (cluster_bits - 8); bits 0..x-1 host offset, bits x..61
		 * the number of 512-byte sectors after the first. */
		if (e & QCOW2_OFLAG_COPIED)
			return -EIO;
		unsigned x = 62 - (cluster_bits - 8);
		uint64_t sectors = ((e >> x) & ((1ull << (cluster_bits - 8)) - 1)) + 1;
		c->type = QCOW2_C_COMPRESSED;
		c->host = e & ((1ull << x) - 1);
		c->csize = sectors * 512 - (c->host & 511);
		if (c->host == 0)
			return -EIO;
		return 0;
	}
	if (e & QCOW2_L2_RESERVED)
		return -EIO;
	uint64_t off = e & QCOW2_OFFSET_MASK;
	bool zero = e & QCOW2_OFLAG_ZERO;
	if (zero && version < 3)
		return -EIO;
	if (off & ((1ull << cluster_bits) - 1))
		return -EIO;
	c->host = off;
	c->copied = off && (e & QCOW2_OFLAG_COPIED);
	if (zero)
		c->type = off ? QCOW2_C_ZERO_ALLOC : QCOW2_C_ZERO;
	else
		c->type = off ? QCOW2_C_NORMAL : QCOW2_C_UNALLOC;
	return 0;
}

int qcow2_l1_decode(uint64_t e, unsigned cluster_bits, uint64_t *l2_off, bool *copied)
{
	*l2_off = 0;
	*copied = false;
	if (e & QCOW2_L1_RESERVED)
		return -EIO;
	uint64_t off = e & QCOW2_OFFSET_MASK;
	if (off & ((1ull << cluster_bits) - 1))
		return -EIO;
	*l2_off = off;
	*copied = off && (e & QCOW2_OFLAG_COPIED);
	return 0;
}

void qcow2_rb_span(uint64_t idx, unsigned order, uint64_t *byte_off, unsigned *nbytes)
{
	if (order < 3) {
		*byte_off = idx >> (3 - order);
		*nbytes = 1;
	} else {
		*nbytes = 1u << (order - 3);
		*byte_off = idx * *nbytes;
	}
}

uint64_t qcow2_rb_get(const uint8_t *blk, uint64_t idx, unsigned order)
{
	if (order < 3) {
		unsigned bits = 1u << order;
		unsigned shift = (unsigned)(idx & ((8u >> order) - 1)) * bits;
		return (blk[idx >> (3 - order)] >> shift) & ((1u << bits) - 1);
	}
	unsigned n = 1u << (order - 3);
	const uint8_t *p = blk + idx * n;
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

void qcow2_rb_set(uint8_t *blk, uint64_t idx, unsigned order, uint64_t v)
{
	if (order < 3) {
		unsigned bits = 1u << order;
		unsigned shift = (unsigned)(idx & ((8u >> order) - 1)) * bits;
		uint8_t mask = (uint8_t)(((1u << bits) - 1) << shift);
		uint8_t *p = &blk[idx >> (3 - order)];
		*p = (uint8_t)((*p & ~mask) | ((v << shift) & mask));
		return;
	}
	unsigned n = 1u << (order - 3);
	uint8_t *p = blk + idx * n;
	for (unsigned i = n; i-- > 0;) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

int qcow2_snapshot_parse(const uint8_t *fixed, struct qcow2_snapshot *s,
			 uint64_t *entry_len, char *msg, size_t msglen)
{
	/* qcow2.txt: "Snapshots": l1_table_offset, l1_size, id_str_size,
	 * name_size, date_sec, date_nsec, vm_clock_nsec, vm_state_size,
	 * extra_data_size, then extra data, id, name, padding to 8. */
	s->l1_table_offset = qcow2_be64(fixed);
	s->l1_size = qcow2_be32(fixed + 8);
	uint64_t id_len = qcow2_be16(fixed + 12);
	uint64_t name_len = qcow2_be16(fixed + 14);
	uint64_t extra = qcow2_be32(fixed + 36);
	if (extra > QCOW2_MAX_SNAPSHOT_EXTRA)
		return fail(msg, msglen, -EINVAL, "snapshot extra data too large (%" PRIu64 " bytes)", extra);
	*entry_len = QCOW2_SNAPSHOT_FIXED + extra + id_len + name_len;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct qcow2_range *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return 0;
}

static void range_name(const struct qcow2_range *r, char *out, size_t len)
{
	if (r->index == UINT64_MAX)
		snprintf(out, len, "%s", r->what);
	else
		snprintf(out, len, "%s %" PRIu64, r->what, r->index);
}

int qcow2_ranges_check(struct qcow2_range *r, size_t n, char *msg, size_t msglen)
{
	if (n < 2)
		return 0;
	qsort(r, n, sizeof(*r), range_cmp);
	/* Track the range reaching furthest so far: any later start below
	 * its end is an overlap (zero-length ranges never overlap). */
	size_t far = SIZE_MAX;
	uint64_t far_end = 0;
	for (size_t i = 0; i < n; i++) {
		if (r[i].len == 0)
			continue;
		if (far != SIZE_MAX && r[i].start < far_end) {
			char a[64], b[64];
			range_name(&r[i], a, sizeof(a));
			range_name(&r[far], b, sizeof(b));
			return fail(msg, msglen, -EINVAL, "%s (at 0x%" PRIx64 ") overlaps %s (at 0x%" PRIx64 ")",
				    a, r[i].start, b, r[far].start);
		}
		uint64_t end = r[i].start + r[i].len;
		if (end < r[i].start)
			end = UINT64_MAX;
		if (far == SIZE_MAX || end > far_end) {
			far = i;
			far_end = end;
		}
	}
	return 0;
}

/*
 * The snapshot state file: a versioned container of sections, written and
 * read here, filled and consumed by each piece of state (a hart, a board
 * device, a virtio device) in its own save/load functions.
 *
 * Layout (all integers little-endian):
 *
 *   header   "SKIFFSNP" (8 bytes), u32 format version, u32 header bytes (24),
 *            u64 file bytes (header, sections and trailer together)
 *   section  u32 tag (four ASCII characters, e.g. "HART"), u32 instance,
 *            u32 section version, u32 flags (0), u64 payload bytes, payload
 *   ...
 *   trailer  a section with tag "END " whose payload is the CRC-32 (zlib's)
 *            of every byte before it
 *
 * A reader checks the magic, the format version, the declared length, the
 * CRC and that the sections tile the file exactly before it hands out any
 * section; a section's payload is then read through a cursor that never
 * reads past its end: a short or overlong payload is an error naming the
 * section, not a crash. Each section carries its own version so one device
 * can change its layout without touching the others; its loader says which
 * versions it accepts.
 *
 * The file is hostile input (tests/fuzz/fuzz_snapshot.c).
 */
#ifndef SKIFF_BASE_SNAPFILE_H
#define SKIFF_BASE_SNAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC "SKIFFSNP"
#define SNAP_FORMAT_VERSION 1
#define SNAP_HEADER_BYTES 24
#define SNAP_SECTION_HEADER_BYTES 24
/* The largest state file a reader accepts (the guest's RAM is not in it). */
#define SNAP_MAX_FILE (256u << 20)

/* Section tags: four characters read as a little-endian u32. */
#define SNAP_TAG(a, b, c, d) \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define SNAP_TAG_END SNAP_TAG('E', 'N', 'D', ' ')

/* ---- writing: the whole file is built in memory, then written once ---- */

struct snap_writer {
	uint8_t *data;
	size_t len, cap;
	size_t section;      /* offset of the open section's header, or SIZE_MAX */
	bool oom;            /* an allocation failed: the file is unusable */
};

void snap_writer_init(struct snap_writer *w);
void snap_writer_free(struct snap_writer *w);
/* Open a section (closing the one before, if any). */
void snap_section_begin(struct snap_writer *w, uint32_t tag, uint32_t instance, uint32_t version);
void snap_put_u8(struct snap_writer *w, uint8_t v);
void snap_put_u16(struct snap_writer *w, uint16_t v);
void snap_put_u32(struct snap_writer *w, uint32_t v);
void snap_put_u64(struct snap_writer *w, uint64_t v);
void snap_put_bytes(struct snap_writer *w, const void *p, size_t n);
/* A string as u32 length + bytes (no NUL); NULL is written as length 0. */
void snap_put_str(struct snap_writer *w, const char *s);
/* Close the last section and append the trailer. 0, or -1 when out of
 * memory. The file is then w->data[0 .. w->len). */
int snap_writer_finish(struct snap_writer *w);

/* ---- reading ---- */

struct snap_section {
	uint32_t tag, instance, version;
	const uint8_t *payload;
	uint64_t len;
	bool used;           /* a loader took it (the rest are reported) */
};

struct snap_file {
	uint32_t version;
	struct snap_section *sec;
	size_t nsec;
};

/* Check the whole container (see above). On success the sections point into
 * data, which must outlive the snap_file. 0, or -1 with a message. */
int snap_file_parse(struct snap_file *f, const uint8_t *data, size_t len, char *err, size_t errlen);
void snap_file_free(struct snap_file *f);
/* The section with this tag and instance, marked used; NULL if absent. */
struct snap_section *snap_file_find(struct snap_file *f, uint32_t tag, uint32_t instance);
/* NULL if every section was used, else a message naming one that was not
 * (an unknown section means a newer writer, or a different VM shape). */
const char *snap_file_unused(const struct snap_file *f, char *err, size_t errlen);
/* "HART" for a tag (buf holds at least 5 bytes; unprintable bytes as '?'). */
const char *snap_tag_name(uint32_t tag, char buf[5]);

/* A cursor over one section's payload. Reads past the end return zeros and
 * set `overrun`; snap_reader_end() turns that (or bytes left over) into an
 * error message naming the section. */
struct snap_reader {
	const uint8_t *p;
	uint64_t len, off;
	bool overrun;
	bool invalid;        /* a loader rejected a value (see snap_reader_fail) */
	char why[160];
	uint32_t tag, instance, version;
};

void snap_reader_init(struct snap_reader *r, const struct snap_section *s);
uint8_t snap_get_u8(struct snap_reader *r);
uint16_t snap_get_u16(struct snap_reader *r);
uint32_t snap_get_u32(struct snap_reader *r);
uint64_t snap_get_u64(struct snap_reader *r);
/* Copy n bytes; false (and dst zeroed) when the payload is shorter. */
bool snap_get_bytes(struct snap_reader *r, void *dst, size_t n);
/* A string written by snap_put_str, into buf (NUL-terminated). False when
 * it does not fit in cap - 1 bytes or contains a NUL. */
bool snap_get_str(struct snap_reader *r, char *buf, size_t cap);
/* Bytes left in the payload. */
uint64_t snap_reader_left(const struct snap_reader *r);
/* Record that a value is out of range (the first reason is kept). */
__attribute__((format(printf, 2, 3)))
void snap_reader_fail(struct snap_reader *r, const char *fmt, ...);
/* 0 if the payload was read exactly and every value was valid, else -1
 * with "section HART 1 (version 1): ..." in err. */
int snap_reader_end(struct snap_reader *r, char *err, size_t errlen);

#endif

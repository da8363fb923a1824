/* The snapshot state file's container: writer and checked reader; see
 * snapfile.h for the layout. */
#include "base/snapfile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "snapfile.c writes the host's integers as little-endian"
#endif

/* ---- writer ---- */

void snap_writer_init(struct snap_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->section = SIZE_MAX;
	uint8_t hdr[SNAP_HEADER_BYTES] = { 0 };
	memcpy(hdr, SNAP_MAGIC, 8);
	uint32_t v = SNAP_FORMAT_VERSION, hb = SNAP_HEADER_BYTES;
	memcpy(hdr + 8, &v, 4);
	memcpy(hdr + 12, &hb, 4);
	snap_put_bytes(w, hdr, sizeof(hdr));   /* file length patched at finish */
}

void snap_writer_free(struct snap_writer *w)
{
	free(w->data);
	memset(w, 0, sizeof(*w));
}

void snap_put_bytes(struct snap_writer *w, const void *p, size_t n)
{
	if (w->oom || n == 0)
		return;
	if (n > w->cap - w->len) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap - w->len < n) {
			if (cap > SIZE_MAX / 2) {
				w->oom = true;
				return;
			}
			cap *= 2;
		}
		uint8_t *d = realloc(w->data, cap);
		if (!d) {
			w->oom = true;
			return;
		}
		w->data = d;
		w->cap = cap;
	}
	memcpy(w->data + w->len, p, n);
	w->len += n;
}

void snap_put_u8(struct snap_writer *w, uint8_t v) { snap_put_bytes(w, &v, 1); }
void snap_put_u16(struct snap_writer *w, uint16_t v) { snap_put_bytes(w, &v, 2); }
void snap_put_u32(struct snap_writer *w, uint32_t v) { snap_put_bytes(w, &v, 4); }
void snap_put_u64(struct snap_writer *w, uint64_t v) { snap_put_bytes(w, &v, 8); }

void snap_put_str(struct snap_writer *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	snap_put_u32(w, (uint32_t)n);
	snap_put_bytes(w, s, n);
}

static void section_close(struct snap_writer *w)
{
	if (w->section == SIZE_MAX || w->oom)
		return;
	uint64_t len = w->len - w->section - SNAP_SECTION_HEADER_BYTES;
	memcpy(w->data + w->section + 16, &len, 8);
	w->section = SIZE_MAX;
}

void snap_section_begin(struct snap_writer *w, uint32_t tag, uint32_t instance, uint32_t version)
{
	section_close(w);
	if (w->oom)
		return;
	w->section = w->len;
	snap_put_u32(w, tag);
	snap_put_u32(w, instance);
	snap_put_u32(w, version);
	snap_put_u32(w, 0);
	snap_put_u64(w, 0);
}

int snap_writer_finish(struct snap_writer *w)
{
	snap_section_begin(w, SNAP_TAG_END, 0, 1);
	snap_put_u32(w, 0);            /* the CRC, filled in below */
	section_close(w);
	if (w->oom)
		return -1;
	uint64_t total = w->len;
	memcpy(w->data + 16, &total, 8);
	/* The CRC covers everything before it, the trailer's header included. */
	uint32_t crc = (uint32_t)crc32(0L, w->data, (uInt)(w->len - 4));
	memcpy(w->data + w->len - 4, &crc, 4);
	return 0;
}

/* ---- reader ---- */

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

const char *snap_tag_name(uint32_t tag, char buf[5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)(tag >> (8 * i));
		buf[i] = c >= 0x20 && c < 0x7f ? c : '?';
	}
	buf[4] = 0;
	return buf;
}

int snap_file_parse(struct snap_file *f, const uint8_t *data, size_t len, char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	if (len < SNAP_HEADER_BYTES || memcmp(data, SNAP_MAGIC, 8)) {
		snprintf(err, errlen, "not a skiff snapshot state file (no %s header)", SNAP_MAGIC);
		return -1;
	}
	uint32_t version = rd32(data + 8), hdr = rd32(data + 12);
	uint64_t total = rd64(data + 16);
	if (version != SNAP_FORMAT_VERSION) {
		snprintf(err, errlen, "snapshot format version %u; this skiff reads version %u%s",
			 version, SNAP_FORMAT_VERSION,
			 version > SNAP_FORMAT_VERSION ? " (it was made by a newer skiff)" : "");
		return -1;
	}
	if (hdr != SNAP_HEADER_BYTES) {
		snprintf(err, errlen, "snapshot header of %u bytes (expected %u): corrupt", hdr,
			 SNAP_HEADER_BYTES);
		return -1;
	}
	if (total != len) {
		snprintf(err, errlen, "snapshot state file is %zu bytes but says it has %llu: %s",
			 len, (unsigned long long)total, len < total ? "truncated" : "corrupt");
		return -1;
	}
	if (len > SNAP_MAX_FILE) {
		snprintf(err, errlen, "snapshot state file of %zu bytes is larger than %u MiB",
			 len, SNAP_MAX_FILE >> 20);
		return -1;
	}
	/* The trailer: an END section with a 4-byte CRC, last in the file. */
	size_t trailer = SNAP_SECTION_HEADER_BYTES + 4;
	if (len < SNAP_HEADER_BYTES + trailer || rd32(data + len - trailer) != SNAP_TAG_END ||
	    rd64(data + len - 4 - 8) != 4) {
		snprintf(err, errlen, "snapshot state file has no END section: truncated or corrupt");
		return -1;
	}
	uint32_t want = rd32(data + len - 4);
	uint32_t crc = (uint32_t)crc32(0L, data, (uInt)(len - 4));
	if (crc != want) {
		snprintf(err, errlen, "snapshot state file is corrupt (CRC-32 %08x, expected %08x)",
			 crc, want);
		return -1;
	}
	/* Sections must tile [header, trailer) exactly. */
	size_t cap = 16;
	f->sec = calloc(cap, sizeof(*f->sec));
	if (!f->sec) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t off = SNAP_HEADER_BYTES, end = len - trailer;
	while (off < end) {
		char tn[5];
		if (end - off < SNAP_SECTION_HEADER_BYTES) {
			snprintf(err, errlen, "snapshot section header at byte %zu is cut short", off);
			goto fail;
		}
		uint32_t tag = rd32(data + off);
		uint64_t plen = rd64(data + off + 16);
		if (rd32(data + off + 12) != 0) {
			snprintf(err, errlen, "section %s: unknown flags %#x",
				 snap_tag_name(tag, tn), rd32(data + off + 12));
			goto fail;
		}
		if (tag == SNAP_TAG_END || plen > end - off - SNAP_SECTION_HEADER_BYTES) {
			snprintf(err, errlen, "section %s at byte %zu runs past the end of the file",
				 snap_tag_name(tag, tn), off);
			goto fail;
		}
		if (f->nsec == cap) {
			struct snap_section *s = reallocarray(f->sec, cap * 2, sizeof(*s));
			if (!s) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			f->sec = s;
			cap *= 2;
		}
		struct snap_section *s = &f->sec[f->nsec];
		s->tag = tag;
		s->instance = rd32(data + off + 4);
		s->version = rd32(data + off + 8);
		s->payload = data + off + SNAP_SECTION_HEADER_BYTES;
		s->len = plen;
		s->used = false;
		for (size_t k = 0; k < f->nsec; k++) {
			if (f->sec[k].tag == tag && f->sec[k].instance == s->instance) {
				snprintf(err, errlen, "section %s %u appears twice",
					 snap_tag_name(tag, tn), s->instance);
				goto fail;
			}
		}
		f->nsec++;
		off += SNAP_SECTION_HEADER_BYTES + (size_t)plen;
	}
	f->version = version;
	return 0;
fail:
	snap_file_free(f);
	return -1;
}

void snap_file_free(struct snap_file *f)
{
	free(f->sec);
	memset(f, 0, sizeof(*f));
}

struct snap_section *snap_file_find(struct snap_file *f, uint32_t tag, uint32_t instance)
{
	for (size_t k = 0; k < f->nsec; k++) {
		if (f->sec[k].tag == tag && f->sec[k].instance == instance) {
			f->sec[k].used = true;
			return &f->sec[k];
		}
	}
	return NULL;
}

const char *snap_file_unused(const struct snap_file *f, char *err, size_t errlen)
{
	for (size_t k = 0; k < f->nsec; k++) {
		if (!f->sec[k].used) {
			char tn[5];
			snprintf(err, errlen, "section %s %u (version %u) is not known to this skiff or "
				 "does not fit the VM the snapshot describes",
				 snap_tag_name(f->sec[k].tag, tn), f->sec[k].instance, f->sec[k].version);
			return err;
		}
	}
	return NULL;
}

void snap_reader_init(struct snap_reader *r, const struct snap_section *s)
{
	memset(r, 0, sizeof(*r));
	r->p = s->payload;
	r->len = s->len;
	r->tag = s->tag;
	r->instance = s->instance;
	r->version = s->version;
}

bool snap_get_bytes(struct snap_reader *r, void *dst, size_t n)
{
	if (r->overrun || n > r->len - r->off) {
		r->overrun = true;
		memset(dst, 0, n);
		return false;
	}
	memcpy(dst, r->p + r->off, n);
	r->off += n;
	return true;
}

uint8_t snap_get_u8(struct snap_reader *r)
{
	uint8_t v;
	snap_get_bytes(r, &v, 1);
	return v;
}

uint16_t snap_get_u16(struct snap_reader *r)
{
	uint16_t v;
	snap_get_bytes(r, &v, 2);
	return v;
}

uint32_t snap_get_u32(struct snap_reader *r)
{
	uint32_t v;
	snap_get_bytes(r, &v, 4);
	return v;
}

uint64_t snap_get_u64(struct snap_reader *r)
{
	uint64_t v;
	snap_get_bytes(r, &v, 8);
	return v;
}

bool snap_get_str(struct snap_reader *r, char *buf, size_t cap)
{
	uint32_t n = snap_get_u32(r);
	buf[0] = 0;
	if (r->overrun)
		return false;
	if (n >= cap || n > r->len - r->off) {
		snap_reader_fail(r, "a string of %u bytes does not fit", n);
		return false;
	}
	snap_get_bytes(r, buf, n);
	buf[n] = 0;
	if (strlen(buf) != n) {
		snap_reader_fail(r, "a string holds a NUL byte");
		return false;
	}
	return true;
}

uint64_t snap_reader_left(const struct snap_reader *r)
{
	return r->len - r->off;
}

void snap_reader_fail(struct snap_reader *r, const char *fmt, ...)
{
	if (r->invalid)
		return;
	r->invalid = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

int snap_reader_end(struct snap_reader *r, char *err, size_t errlen)
{
	char tn[5];
	snap_tag_name(r->tag, tn);
	if (r->invalid) {
		snprintf(err, errlen, "section %s %u (version %u): %s", tn, r->instance, r->version, r->why);
		return -1;
	}
	if (r->overrun) {
		snprintf(err, errlen, "section %s %u (version %u): its %llu bytes are too few",
			 tn, r->instance, r->version, (unsigned long long)r->len);
		return -1;
	}
	if (r->off != r->len) {
		snprintf(err, errlen, "section %s %u (version %u): %llu bytes left over",
			 tn, r->instance, r->version, (unsigned long long)(r->len - r->off));
		return -1;
	}
	return 0;
}

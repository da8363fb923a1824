/*
 * libFuzzer target for the host's reader of guest agent replies
 * (src/api/qga_reader.c): what a hostile guest agent sends, cut into
 * chunks the way a channel might deliver it.
 *
 * Input: the first byte picks the chunk size (1..64 bytes, or all at
 * once for 0); the rest is the byte stream. The reader runs with a small
 * limit (512 bytes), so too-large replies are exercised too. The stream is
 * fed twice, once in chunks and once whole, and both must yield the same
 * replies (framing does not depend on how bytes arrive). Checked for every
 * reply: a known kind; a value exactly for results; error class and
 * description without control characters and valid UTF-8 (the reader keeps
 * an agent's UTF-8, e.g. QEMU's quotes, and cuts only between characters).
 * Each stored reply fits the limit. The plain JSON reader the decoder
 * tries first (src/api/json_load.c) must agree with jansson whenever it
 * reads the input at all.
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_load.h"
#include "api/qga_reader.h"

#define LIMIT 512
#define MAX_KEPT 256

struct log {
	size_t n;
	enum qga_reply_kind kind[MAX_KEPT];
	char *text[MAX_KEPT];    /* the result as JSON, for comparison */
};

/* No control character, and well-formed UTF-8 (RFC 3629 section 4):
 * shortest forms only, no surrogates, nothing above U+10FFFF. */
static void printable(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	while (*s) {
		unsigned c = *s++;
		if (c < 0x20 || c == 0x7f)
			abort();
		if (c < 0x80)
			continue;
		size_t more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
		uint32_t cp = c & (0x3f >> more);
		if (c < 0xc2 || c > 0xf4)
			abort();
		for (size_t i = 0; i < more; i++, s++) {
			if ((*s & 0xc0) != 0x80)
				abort();
			cp = cp << 6 | (*s & 0x3f);
		}
		if ((more == 2 && cp < 0x800) || (more == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			abort();
	}
}

static void on_reply(void *ctx, const struct qga_reply *r)
{
	struct log *l = ctx;
	switch (r->kind) {
	case QGA_REPLY_RETURN:
		if (!r->value)
			abort();
		break;
	case QGA_REPLY_ERROR:
		if (r->value)
			abort();
		printable(r->err_class);
		printable(r->err_desc);
		break;
	case QGA_REPLY_GARBAGE:
	case QGA_REPLY_TOO_LARGE:
		if (r->value)
			abort();
		break;
	default:
		abort();
	}
	if (l->n < MAX_KEPT) {
		l->kind[l->n] = r->kind;
		l->text[l->n] = r->value ? json_dumps(r->value, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	}
	l->n++;
}

static void run(const uint8_t *data, size_t size, size_t chunk, struct log *l)
{
	struct qga_reader rd;
	qga_reader_init(&rd, LIMIT, on_reply, l);
	for (size_t off = 0; off < size;) {
		size_t n = chunk && size - off > chunk ? chunk : size - off;
		qga_reader_feed(&rd, data + off, n);
		if (rd.len > LIMIT)
			abort();
		off += n;
	}
	qga_reader_free(&rd);
}

static void free_log(struct log *l)
{
	for (size_t i = 0; i < l->n && i < MAX_KEPT; i++)
		free(l->text[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = data[0] % 65;
	struct log a = { 0 }, b = { 0 };
	run(data + 1, size - 1, chunk, &a);
	run(data + 1, size - 1, 0, &b);
	if (a.n != b.n)
		abort();
	for (size_t i = 0; i < a.n && i < MAX_KEPT; i++) {
		if (a.kind[i] != b.kind[i])
			abort();
		if ((a.text[i] == NULL) != (b.text[i] == NULL) ||
		    (a.text[i] && strcmp(a.text[i], b.text[i])))
			abort();
	}
	free_log(&a);
	free_log(&b);

	/* the decoder alone on the whole input */
	struct qga_reply r;
	qga_reply_decode(data + 1, size - 1, &r);
	json_decref(r.value);

	/* The plain reader the decoder tries first gives jansson's value
	 * and end whenever it gives one, with the end pointer and without. */
	for (int eof_check = 0; eof_check < 2; eof_check++) {
		size_t end = 0;
		json_t *plain = json_load_plain((const char *)data + 1, size - 1, eof_check ? NULL : &end);
		if (!plain)
			continue;
		json_error_t je;
		json_t *want = json_loadb((const char *)data + 1, size - 1,
					  JSON_REJECT_DUPLICATES | (eof_check ? 0 : JSON_DISABLE_EOF_CHECK), &je);
		if (!want || !json_equal(plain, want) || (!eof_check && end != (size_t)je.position))
			abort();
		json_decref(plain);
		json_decref(want);
	}
	return 0;
}

/*
 * QGA reply framing and decoding; see qga_reader.h.
 */
#include "api/qga_reader.h"
#include "api/json_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void qga_reader_init(struct qga_reader *r, size_t limit, qga_reply_fn fn, void *ctx)
{
	memset(r, 0, sizeof(*r));
	r->limit = limit;
	r->on_reply = fn;
	r->ctx = ctx;
}

void qga_reader_free(struct qga_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = r->cap = 0;
}

void qga_reader_set_limit(struct qga_reader *r, size_t limit)
{
	r->limit = limit;
	/* A smaller buffer is enough from now on: give the rest back. */
	if (!r->len && r->cap > 64 * 1024) {
		free(r->buf);
		r->buf = NULL;
		r->cap = 0;
	}
}

void qga_reader_reset(struct qga_reader *r)
{
	r->len = 0;
	r->depth = 0;
	r->in_string = r->escape = r->skipping = false;
}

/* The agent's text for messages and JSON answers: trailing white space
 * (QEMU's agent passes on a child's message with its newline) goes, other
 * control characters become '?'; UTF-8 (jansson has checked it) stays, cut
 * only between characters (QEMU's agent quotes names with U+201C/U+201D). */
static void copy_string(char *dst, size_t cap, const json_t *v)
{
	const unsigned char *s = (const unsigned char *)(json_is_string(v) ? json_string_value(v) : "");
	const unsigned char *end = s + strlen((const char *)s);
	while (end > s && (end[-1] == ' ' || (end[-1] >= '\t' && end[-1] <= '\r')))
		end--;
	size_t n = 0;
	for (; s < end && n + 1 < cap; s++)
		dst[n++] = (*s >= 0x20 && *s != 0x7f) ? (char)*s : '?';
	if (s < end && n && ((unsigned char)dst[n - 1] & 0x80)) {
		/* cut short: drop a character left incomplete */
		size_t k = n;
		while (k && ((unsigned char)dst[k - 1] & 0xc0) == 0x80)
			k--;
		if (k && ((unsigned char)dst[k - 1] & 0xc0) == 0xc0) {
			unsigned char lead = (unsigned char)dst[k - 1];
			size_t len = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
			if (n - (k - 1) < len)
				n = k - 1;
		}
	}
	dst[n] = 0;
}

void qga_reply_decode(const uint8_t *text, size_t n, struct qga_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = QGA_REPLY_GARBAGE;
	json_error_t e;
	size_t end;
	/* a file piece read from the guest: 1.4 MB of base64 (json_load.h) */
	json_t *doc = json_load_plain((const char *)text, n, &end);
	if (!doc)
		doc = json_loadb((const char *)text, n, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &e);
	if (!doc)
		return;
	json_t *ret = json_object_get(doc, "return");
	json_t *err = json_object_get(doc, "error");
	if (json_is_object(doc) && ret && !err) {
		r->kind = QGA_REPLY_RETURN;
		r->value = json_incref(ret);
	} else if (json_is_object(doc) && json_is_object(err) && !ret) {
		json_t *cls = json_object_get(err, "class"), *desc = json_object_get(err, "desc");
		if (json_is_string(cls) && json_is_string(desc)) {
			r->kind = QGA_REPLY_ERROR;
			copy_string(r->err_class, sizeof(r->err_class), cls);
			copy_string(r->err_desc, sizeof(r->err_desc), desc);
		}
	}
	json_decref(doc);
}

static void deliver(struct qga_reader *r, bool too_large)
{
	struct qga_reply rep;
	if (too_large) {
		memset(&rep, 0, sizeof(rep));
		rep.kind = QGA_REPLY_TOO_LARGE;
	} else {
		qga_reply_decode(r->buf, r->len, &rep);
	}
	rep.after_delimiter = r->delimited;
	r->delimited = false;
	if (r->on_reply)
		r->on_reply(r->ctx, &rep);
	json_decref(rep.value);
}

/* Append n bytes of the current object; false once it is over the limit. */
static bool store(struct qga_reader *r, const uint8_t *p, size_t n)
{
	if (r->len + n > r->cap) {
		if (r->len + n > r->limit)
			return false;
		size_t nc = r->cap ? r->cap : 4096;
		while (nc < r->len + n)
			nc *= 2;
		if (nc > r->limit)
			nc = r->limit;
		uint8_t *nb = realloc(r->buf, nc);
		if (!nb)
			return false;
		r->buf = nb;
		r->cap = nc;
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	return true;
}

/* How many of the first n bytes need nothing but storing inside a string
 * (none of '"', '\\', 0xFF): file and exec data arrive as long base64
 * strings. */
static size_t plain_run(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n && p[i] != '"' && p[i] != '\\' && p[i] != 0xff)
		i++;
	return i;
}

void qga_reader_feed(struct qga_reader *r, const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (r->in_string && !r->escape) {
			size_t run = plain_run(buf + i, n - i);
			if (run) {
				if (!r->skipping && !store(r, buf + i, run)) {
					r->skipping = true;
					r->len = 0;
				}
				i += run - 1;
				continue;
			}
		}
		uint8_t c = buf[i];
		if (c == 0xff) {   /* never part of UTF-8 text: always the delimiter */
			qga_reader_reset(r);
			r->delimited = true;
			continue;
		}
		if (r->depth == 0 && c != '{')
			continue;
		if (!r->skipping && !store(r, &c, 1)) {
			r->skipping = true;
			r->len = 0;
		}
		if (r->in_string) {
			if (r->escape)
				r->escape = false;
			else if (c == '\\')
				r->escape = true;
			else if (c == '"')
				r->in_string = false;
			continue;
		}
		if (c == '"') {
			r->in_string = true;
		} else if (c == '{' || c == '[') {
			if (++r->depth > QGA_READER_MAX_DEPTH && !r->skipping) {
				r->skipping = true;
				r->len = 0;
			}
		} else if (c == '}' || c == ']') {
			if (--r->depth == 0) {
				deliver(r, r->skipping);
				qga_reader_reset(r);
			}
		}
	}
}

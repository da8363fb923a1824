/*
 * JSON text with long plain strings copied as they are; see json_dump.h.
 */
#include "api/json_dump.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper values are left to json_dumps (which also refuses cycles). */
#define MAX_DEPTH 32

struct out {
	char *p;
	size_t len, cap;
	bool failed;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->failed)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t nc = o->cap ? o->cap : 256;
		while (nc < o->len + n + 1)
			nc *= 2;
		char *np = realloc(o->p, nc);
		if (!np) {
			o->failed = true;
			return;
		}
		o->p = np;
		o->cap = nc;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = 0;
}

static bool plain_byte(unsigned char c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Whether json_dumps writes these n bytes unchanged inside quotes:
 * printable ASCII but for '"' and '\\' (it escapes those and control
 * characters, and checks anything else as UTF-8). */
static bool plain(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n && ((uintptr_t)(p + i) & 7))
		if (!plain_byte(p[i++]))
			return false;
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, __builtin_assume_aligned(p + i, 8), 8);
		uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
		/* a byte >= 0x80, < 0x20, equal to '"' or to '\\' */
		uint64_t hit = (v & high) | ((v - ones * 0x20) & ~v & high) | ((q - ones) & ~q & high) |
			       ((b - ones) & ~b & high);
		if (hit)
			return false;
	}
	for (; i < n; i++)
		if (!plain_byte(p[i]))
			return false;
	return true;
}

/* json_dumps's text for v, appended. */
static void put_jansson(struct out *o, const json_t *v)
{
	char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!t) {
		o->failed = true;
		return;
	}
	put(o, t, strlen(t));
	free(t);
}

static void put_string(struct out *o, const char *s, size_t n, const json_t *v)
{
	if (!plain(s, n)) {
		if (v) {
			put_jansson(o, v);
		} else {   /* a key */
			json_t *k = json_stringn(s, n);
			if (k)
				put_jansson(o, k);
			else
				o->failed = true;
			json_decref(k);
		}
		return;
	}
	put(o, "\"", 1);
	put(o, s, n);
	put(o, "\"", 1);
}

static void dump(struct out *o, const json_t *v, int depth)
{
	if (depth > MAX_DEPTH) {
		put_jansson(o, v);
		return;
	}
	char num[32];
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *m;
		bool first = true;
		put(o, "{", 1);
		json_object_foreach((json_t *)v, key, m) {
			if (!first)
				put(o, ",", 1);
			first = false;
			put_string(o, key, strlen(key), NULL);
			put(o, ":", 1);
			dump(o, m, depth + 1);
		}
		put(o, "}", 1);
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *m;
		put(o, "[", 1);
		json_array_foreach(v, i, m) {
			if (i)
				put(o, ",", 1);
			dump(o, m, depth + 1);
		}
		put(o, "]", 1);
		break;
	}
	case JSON_STRING:
		put_string(o, json_string_value(v), json_string_length(v), v);
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		put(o, num, strlen(num));
		break;
	case JSON_TRUE:
		put(o, "true", 4);
		break;
	case JSON_FALSE:
		put(o, "false", 5);
		break;
	case JSON_NULL:
		put(o, "null", 4);
		break;
	default:   /* reals: jansson's own formatting */
		put_jansson(o, v);
		break;
	}
}

char *json_dump_text(const json_t *v)
{
	if (!v)
		return NULL;
	struct out o = { 0 };
	dump(&o, v, 0);
	if (o.failed) {
		free(o.p);
		return NULL;
	}
	return o.p;
}

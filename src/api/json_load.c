/*
 * The plain-JSON reader; see json_load.h. Grammar from RFC 8259 (sections
 * 2 to 7), restricted as the header says; anything outside it returns
 * NULL and the caller's jansson call decides.
 */
#include "api/json_load.h"

#include <stdbool.h>
#include <stdint.h>

#define MAX_DEPTH 32
#define MAX_DIGITS 18

struct rd {
	const unsigned char *p, *end;
};

static void skip_ws(struct rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

/* A string's characters up to its closing quote; false unless they are all
 * printable ASCII without a backslash. Written as one pass with no early
 * exit inside a block so that the compiler can vectorise it: the long
 * base64 strings are what this reader is for. */
static bool plain_chars(struct rd *r, const unsigned char **s, size_t *n)
{
	const unsigned char *q = r->p;
	for (;;) {
		size_t left = (size_t)(r->end - q), blk = left < 64 ? left : 64;
		unsigned bad = 0, quote = 0;
		for (size_t i = 0; i < blk; i++) {
			unsigned char c = q[i];
			quote |= c == '"';
			bad |= (c < 0x20) | (c > 0x7e) | (c == '\\');
		}
		if (!quote) {
			if (bad || blk == 0)
				return false;   /* not plain, or no closing quote */
			q += blk;
			continue;
		}
		/* The quote is in this block: look at it byte by byte. */
		for (size_t i = 0; i < blk; i++) {
			unsigned char c = q[i];
			if (c == '"') {
				*s = r->p;
				*n = (size_t)(q + i - r->p);
				r->p = q + i + 1;
				return true;
			}
			if (c < 0x20 || c > 0x7e || c == '\\')
				return false;
		}
	}
}

static bool word(struct rd *r, const char *w, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (r->p[i] != (unsigned char)w[i])
			return false;
	r->p += n;
	return true;
}

static json_t *value(struct rd *r, unsigned depth);

static json_t *object(struct rd *r, unsigned depth)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	r->p++;   /* '{' */
	skip_ws(r);
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		return o;
	}
	for (;;) {
		const unsigned char *k;
		size_t kn;
		skip_ws(r);
		if (r->p >= r->end || *r->p != '"')
			break;
		r->p++;
		if (!plain_chars(r, &k, &kn) || kn > 1024)
			break;
		char key[1025];
		for (size_t i = 0; i < kn; i++)
			key[i] = (char)k[i];
		key[kn] = 0;
		if (json_object_get(o, key))
			break;   /* a key twice: jansson refuses it */
		skip_ws(r);
		if (r->p >= r->end || *r->p != ':')
			break;
		r->p++;
		json_t *v = value(r, depth + 1);
		if (!v || json_object_set_new_nocheck(o, key, v))
			break;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			return o;
		}
		break;
	}
	json_decref(o);
	return NULL;
}

static json_t *array(struct rd *r, unsigned depth)
{
	json_t *a = json_array();
	if (!a)
		return NULL;
	r->p++;   /* '[' */
	skip_ws(r);
	if (r->p < r->end && *r->p == ']') {
		r->p++;
		return a;
	}
	for (;;) {
		json_t *v = value(r, depth + 1);
		if (!v || json_array_append_new(a, v))
			break;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == ']') {
			r->p++;
			return a;
		}
		break;
	}
	json_decref(a);
	return NULL;
}

static json_t *integer(struct rd *r)
{
	const unsigned char *s = r->p;
	int64_t v = 0;
	while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
		if (r->p - s == MAX_DIGITS)
			return NULL;
		v = v * 10 + (*r->p++ - '0');
	}
	/* "01" is not JSON; "1.5", "1e3" are reals: all jansson's */
	if (r->p - s > 1 && *s == '0')
		return NULL;
	if (r->p < r->end && (*r->p == '.' || *r->p == 'e' || *r->p == 'E'))
		return NULL;
	return json_integer((json_int_t)v);
}

static json_t *value(struct rd *r, unsigned depth)
{
	if (depth > MAX_DEPTH)
		return NULL;
	skip_ws(r);
	if (r->p >= r->end)
		return NULL;
	switch (*r->p) {
	case '{':
		return object(r, depth);
	case '[':
		return array(r, depth);
	case '"': {
		const unsigned char *s;
		size_t n;
		r->p++;
		return plain_chars(r, &s, &n) ? json_stringn_nocheck((const char *)s, n) : NULL;
	}
	case 't':
		return word(r, "true", 4) ? json_true() : NULL;
	case 'f':
		return word(r, "false", 5) ? json_false() : NULL;
	case 'n':
		return word(r, "null", 4) ? json_null() : NULL;
	default:
		return *r->p >= '0' && *r->p <= '9' ? integer(r) : NULL;
	}
}

json_t *json_load_plain(const char *text, size_t len, size_t *end)
{
	struct rd r = { (const unsigned char *)text, (const unsigned char *)text + len };
	skip_ws(&r);
	/* jansson (without JSON_DECODE_ANY) takes only an object or an array */
	if (r.p >= r.end || (*r.p != '{' && *r.p != '['))
		return NULL;
	json_t *v = value(&r, 0);
	if (!v)
		return NULL;
	if (end) {
		*end = (size_t)((const char *)r.p - text);
		return v;
	}
	skip_ws(&r);
	if (r.p != r.end) {
		json_decref(v);
		return NULL;
	}
	return v;
}

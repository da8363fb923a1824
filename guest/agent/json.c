/*
 * JSON reader and writer for the guest agent; see json.h. The reader is a
 * recursive descent over RFC 8259's grammar with a depth bound.
 */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

struct parser {
	const char *p, *end;
	char *err;
	size_t errlen;
	bool failed;
};

static void fail(struct parser *ps, const char *what)
{
	if (!ps->failed)
		snprintf(ps->err, ps->errlen, "JSON: %s at offset %zu", what,
			 (size_t)(ps->end - ps->p));
	ps->failed = true;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static bool literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return false;
	ps->p += n;
	return true;
}

static int hex4(const char *s)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static size_t put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static bool plain_byte(unsigned char c)
{
	return c != '"' && c != '\\' && c >= 0x20 && c != 0xff;
}

/* Bit 7 of a byte of the result is set for some byte of v that is zero
 * (and there is none when no byte is): the classic word-at-a-time test. */
static uint64_t zero_bytes(uint64_t v)
{
	return (v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull;
}

size_t json_plain_run(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n && ((uintptr_t)(p + i) & 7)) {
		if (!plain_byte(p[i]))
			return i;
		i++;
	}
	const uint64_t ones = 0x0101010101010101ull;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, __builtin_assume_aligned(p + i, 8), 8);
		/* a quote, a backslash, 0xFF, or a byte below 0x20 (the last
		 * test is exact for bounds up to 0x80) */
		uint64_t hit = zero_bytes(v ^ ones * '"') | zero_bytes(v ^ ones * '\\') | zero_bytes(~v) |
			       ((v - ones * 0x20) & ~v & 0x8080808080808080ull);
		if (hit)
			break;
	}
	while (i < n && plain_byte(p[i]))
		i++;
	return i;
}

/* At the opening quote: decode the string into a new buffer. An escape
 * never yields more bytes than its source, so the source length bounds
 * the result. */
static char *parse_string(struct parser *ps, size_t *len)
{
	const char *start = ++ps->p;
	const char *q = start;
	while (q < ps->end) {
		q += json_plain_run(q, (size_t)(ps->end - q));
		if (q >= ps->end || *q == '"')
			break;
		if (*q == '\\')
			q++;
		q++;   /* a control character is refused below */
	}
	if (q >= ps->end) {
		fail(ps, "unterminated string");
		return NULL;
	}
	char *out = malloc((size_t)(q - start) + 1);
	if (!out) {
		fail(ps, "out of memory");
		return NULL;
	}
	size_t n = 0;
	const char *s = start;
	while (s < q) {
		size_t run = json_plain_run(s, (size_t)(q - s));
		memcpy(out + n, s, run);
		n += run;
		s += run;
		if (s >= q)
			break;
		unsigned char c = (unsigned char)*s;
		if (c < 0x20) {
			fail(ps, "control character in string");
			free(out);
			return NULL;
		}
		if (c != '\\') {
			out[n++] = (char)c;
			s++;
			continue;
		}
		s++;
		char e = *s++;
		switch (e) {
		case '"': out[n++] = '"'; break;
		case '\\': out[n++] = '\\'; break;
		case '/': out[n++] = '/'; break;
		case 'b': out[n++] = '\b'; break;
		case 'f': out[n++] = '\f'; break;
		case 'n': out[n++] = '\n'; break;
		case 'r': out[n++] = '\r'; break;
		case 't': out[n++] = '\t'; break;
		case 'u': {
			int v = q - s >= 4 ? hex4(s) : -1;
			if (v < 0) {
				fail(ps, "bad \\u escape");
				free(out);
				return NULL;
			}
			s += 4;
			uint32_t cp = (uint32_t)v;
			if (cp >= 0xd800 && cp < 0xdc00 && q - s >= 6 && s[0] == '\\' && s[1] == 'u') {
				int lo = hex4(s + 2);
				if (lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
					s += 6;
				}
			}
			if (cp >= 0xd800 && cp < 0xe000)
				cp = 0xfffd;   /* a lone surrogate: U+FFFD, as most readers do */
			/* 6 source bytes (or 12 for a pair) give at most 4 */
			n += put_utf8(out + n, cp);
			break;
		}
		default:
			fail(ps, "bad escape");
			free(out);
			return NULL;
		}
	}
	out[n] = 0;
	*len = n;
	ps->p = q + 1;
	return out;
}

static bool parse_value(struct parser *ps, struct jval *v, int depth);

static bool grow(struct parser *ps, struct jval *v, size_t *cap, bool keys)
{
	if (v->len < *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 4;
	struct jval *ni = realloc(v->items, nc * sizeof(*ni));
	if (!ni) {
		fail(ps, "out of memory");
		return false;
	}
	v->items = ni;
	if (keys) {
		char **nk = realloc(v->keys, nc * sizeof(*nk));
		if (!nk) {
			fail(ps, "out of memory");
			return false;
		}
		v->keys = nk;
	}
	*cap = nc;
	return true;
}

static bool parse_container(struct parser *ps, struct jval *v, int depth, bool object)
{
	v->type = object ? J_OBJECT : J_ARRAY;
	ps->p++;
	size_t cap = 0;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == (object ? '}' : ']')) {
		ps->p++;
		return true;
	}
	for (;;) {
		skip_ws(ps);
		if (!grow(ps, v, &cap, object))
			return false;
		if (object) {
			if (ps->p >= ps->end || *ps->p != '"') {
				fail(ps, "expected a member name");
				return false;
			}
			size_t klen;
			char *k = parse_string(ps, &klen);
			if (!k)
				return false;
			v->keys[v->len] = k;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				free(k);
				fail(ps, "expected ':'");
				return false;
			}
			ps->p++;
		}
		memset(&v->items[v->len], 0, sizeof(v->items[0]));
		if (!parse_value(ps, &v->items[v->len], depth + 1)) {
			if (object)
				free(v->keys[v->len]);
			json_free_members(&v->items[v->len]);
			return false;
		}
		v->len++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == (object ? '}' : ']')) {
			ps->p++;
			return true;
		}
		fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
		return false;
	}
}

static bool parse_number(struct parser *ps, struct jval *v)
{
	const char *s = ps->p;
	const char *q = s;
	if (q < ps->end && *q == '-')
		q++;
	bool integral = true;
	while (q < ps->end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' ||
			       *q == '+' || *q == '-')) {
		if (*q == '.' || *q == 'e' || *q == 'E')
			integral = false;
		q++;
	}
	char tmp[64];
	size_t n = (size_t)(q - s);
	if (n == 0 || n >= sizeof(tmp) || (n == 1 && *s == '-')) {
		fail(ps, "bad number");
		return false;
	}
	memcpy(tmp, s, n);
	tmp[n] = 0;
	char *end;
	errno = 0;
	if (integral) {
		long long x = strtoll(tmp, &end, 10);
		if (*end || errno) {
			fail(ps, "bad or out-of-range integer");
			return false;
		}
		v->type = J_INT;
		v->i = x;
		v->d = (double)x;
	} else {
		double d = strtod(tmp, &end);
		if (*end || !isfinite(d)) {
			fail(ps, "bad number");
			return false;
		}
		v->type = J_REAL;
		v->d = d;
	}
	ps->p = q;
	return true;
}

static bool parse_value(struct parser *ps, struct jval *v, int depth)
{
	if (depth > JSON_MAX_DEPTH) {
		fail(ps, "nested too deeply");
		return false;
	}
	skip_ws(ps);
	if (ps->p >= ps->end) {
		fail(ps, "unexpected end");
		return false;
	}
	char c = *ps->p;
	if (c == '{' || c == '[')
		return parse_container(ps, v, depth, c == '{');
	if (c == '"') {
		v->type = J_STRING;
		v->s = parse_string(ps, &v->len);
		return v->s != NULL;
	}
	if (literal(ps, "true")) {
		v->type = J_BOOL;
		v->b = true;
		return true;
	}
	if (literal(ps, "false")) {
		v->type = J_BOOL;
		return true;
	}
	if (literal(ps, "null")) {
		v->type = J_NULL;
		return true;
	}
	if (c == '-' || (c >= '0' && c <= '9'))
		return parse_number(ps, v);
	fail(ps, "unexpected character");
	return false;
}

void json_free_members(struct jval *v)
{
	if (v->type == J_ARRAY || v->type == J_OBJECT) {
		for (size_t i = 0; i < v->len; i++) {
			json_free_members(&v->items[i]);
			if (v->keys)
				free(v->keys[i]);
		}
		free(v->items);
		free(v->keys);
	}
	free(v->s);
	memset(v, 0, sizeof(*v));
}

struct jval *json_parse(const char *text, size_t n, char *err, size_t errlen)
{
	struct parser ps = { .p = text, .end = text + n, .err = err, .errlen = errlen };
	struct jval *v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (parse_value(&ps, v, 0)) {
		skip_ws(&ps);
		if (ps.p == ps.end)
			return v;
		fail(&ps, "trailing characters");
	}
	json_free(v);
	return NULL;
}

void json_free(struct jval *v)
{
	if (!v)
		return;
	json_free_members(v);
	free(v);
}

const struct jval *json_get(const struct jval *obj, const char *key)
{
	if (!obj || obj->type != J_OBJECT)
		return NULL;
	for (size_t i = obj->len; i-- > 0;)   /* the last of duplicate names wins */
		if (!strcmp(obj->keys[i], key))
			return &obj->items[i];
	return NULL;
}

/* ------------------------------------------------------------ writer */

static bool reserve(struct jbuf *b, size_t n)
{
	if (b->failed)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	size_t nc = b->cap ? b->cap : 256;
	while (nc < b->len + n + 1)
		nc *= 2;
	char *np = realloc(b->p, nc);
	if (!np) {
		b->failed = true;
		return false;
	}
	b->p = np;
	b->cap = nc;
	return true;
}

void jb_raw(struct jbuf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void jb_str(struct jbuf *b, const char *s)
{
	jb_raw(b, s, strlen(s));
}

void jb_printf(struct jbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->failed = true;
		return;
	}
	jb_raw(b, tmp, (size_t)n);
}

/* Length of a valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
		return 0;
	return len;
}

void jb_string(struct jbuf *b, const char *s, size_t n)
{
	if (!reserve(b, n + 2))
		return;
	jb_raw(b, "\"", 1);
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		if (c == '"' || c == '\\') {
			char esc[2] = { '\\', (char)c };
			jb_raw(b, esc, 2);
			i++;
		} else if (c < 0x20) {
			jb_printf(b, "\\u%04x", c);
			i++;
		} else {
			size_t k = utf8_seq(u + i, n - i);
			if (k) {
				jb_raw(b, s + i, k);
				i += k;
			} else {
				jb_str(b, "\\ufffd");   /* not UTF-8: the replacement character */
				i++;
			}
		}
	}
	jb_raw(b, "\"", 1);
}

void jb_cstring(struct jbuf *b, const char *s)
{
	jb_string(b, s, strlen(s));
}

void jb_base64(struct jbuf *b, const uint8_t *data, size_t n)
{
	size_t m = base64_encoded_len(n);
	if (!reserve(b, m + 2))
		return;
	b->p[b->len++] = '"';
	base64_encode(data, n, b->p + b->len);
	b->len += m;
	b->p[b->len++] = '"';
	b->p[b->len] = 0;
}

void jb_free(struct jbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

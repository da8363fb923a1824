/*
 * src/api/json_load.c must give what jansson gives (json_loadb with
 * JSON_REJECT_DUPLICATES) whenever it gives anything, and must give
 * something for the plain JSON the agent routes carry (a long base64
 * string in an object): checked on hand-made texts (every kind of value
 * it leaves to jansson, bad JSON, duplicates, trailing text with and
 * without the end pointer) and on thousands of random texts, valid and
 * cut or mutated, whose strings put odd bytes at every offset around the
 * reader's 64-byte blocks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/json_load.h"

static int failures, checks, plain_seen;

/* Whether the reader agrees with jansson on text[0..n); `want_plain`: 1
 * when it must read it, 0 when it must leave it to jansson, -1 either. */
static void agree(const char *text, size_t n, int want_plain, const char *what)
{
	for (int eof_check = 0; eof_check < 2; eof_check++) {
		checks++;
		size_t end = 0;
		json_t *got = json_load_plain(text, n, eof_check ? NULL : &end);
		json_error_t je;
		json_t *want = json_loadb(text, n, JSON_REJECT_DUPLICATES | (eof_check ? 0 : JSON_DISABLE_EOF_CHECK),
					  &je);
		if (got) {
			plain_seen++;
			if (!want || !json_equal(got, want)) {
				fprintf(stderr, "%s: the plain reader's value differs from jansson's (%s) in %.200s\n",
					what, want ? "another value" : je.text, text);
				failures++;
			} else if (!eof_check && end != (size_t)je.position) {
				fprintf(stderr, "%s: ends at %zu, jansson at %d in %.200s\n", what, end,
					je.position, text);
				failures++;
			}
		}
		if (want_plain == 1 && !got) {
			fprintf(stderr, "%s: plain JSON left to jansson: %.200s\n", what, text);
			failures++;
		}
		if (want_plain == 0 && got) {
			fprintf(stderr, "%s: read what it must leave to jansson: %.200s\n", what, text);
			failures++;
		}
		json_decref(got);
		json_decref(want);
	}
}

static void hand_made(void)
{
	static const struct { const char *text; int plain; } t[] = {
		{ "{}", 1 },
		{ " \t\r\n{ } \n", 1 },
		{ "[]", 1 },
		{ "{\"op\":\"write\",\"data\":\"QUJD\"}", 1 },
		{ "{\"a\": [1, 2, {\"b\": null}], \"c\": true, \"d\": false, \"e\": 0}", 1 },
		{ "{\"n\": 123456789012345678}", 1 },
		{ "{\"\": \"\"}", 1 },
		{ "[\"~ !#$%&'()*+,-./:;<=>?@[]^_`{|}\"]", 1 },
		/* left to jansson: */
		{ "{\"n\": 1234567890123456789}", 0 },        /* 19 digits */
		{ "{\"n\": 99999999999999999999999}", 0 },    /* jansson: too big */
		{ "{\"n\": -1}", 0 },
		{ "{\"n\": 1.5}", 0 },
		{ "{\"n\": 1e3}", 0 },
		{ "{\"n\": 1E3}", 0 },
		{ "{\"n\": 01}", 0 },
		{ "{\"s\": \"a\\nb\"}", 0 },
		{ "{\"s\": \"\\u0041\"}", 0 },
		{ "{\"s\": \"caf\xc3\xa9\"}", 0 },
		{ "{\"s\": \"\x7f\"}", 0 },
		{ "{\"s\": \"a\x01\"}", 0 },
		{ "{\"a\": 1, \"a\": 2}", 0 },
		{ "\"top\"", 0 },
		{ "12", 0 },
		{ "true", 0 },
		{ "", 0 },
		{ "   ", 0 },
		{ "{", 0 },
		{ "{\"a\"", 0 },
		{ "{\"a\":", 0 },
		{ "{\"a\":1", 0 },
		{ "{\"a\":1,}", 0 },
		{ "[1,]", 0 },
		{ "[1 2]", 0 },
		{ "{\"a\" 1}", 0 },
		{ "{a: 1}", 0 },
		{ "{\"s\": \"unterminated}", 0 },
		{ "{\"t\": tru}", 0 },
		{ "{\"t\": truex}", 0 },
		{ "{\"t\": nul}", 0 },
		{ "{\"n\": 12x}", 0 },
		{ "{} x", -1 },          /* plain only with the end pointer */
		{ "{}{}", -1 },
		{ "[1]\n{\"next\": 2}", -1 },
		{ "\xff{}", 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		agree(t[i].text, strlen(t[i].text), t[i].plain, "hand-made");

	/* trailing text: an error without the end pointer, ignored with it */
	size_t end;
	json_t *v = json_load_plain("{} x", 4, NULL);
	checks++;
	if (v) {
		fprintf(stderr, "hand-made: \"{} x\" read although text follows\n");
		failures++;
	}
	json_decref(v);
	v = json_load_plain("{\"a\":1}\n{", 9, &end);
	checks++;
	if (!v || end != 7) {
		fprintf(stderr, "hand-made: the end pointer of \"{\\\"a\\\":1}\\n{\" is %zu\n", v ? end : 0);
		failures++;
	}
	json_decref(v);

	/* nesting: 32 levels below the top are read, 33 left to jansson */
	char deep[200];
	for (int levels = 32; levels <= 33; levels++) {
		size_t k = 0;
		for (int i = 0; i <= levels; i++)
			deep[k++] = '[';
		for (int i = 0; i <= levels; i++)
			deep[k++] = ']';
		deep[k] = 0;
		agree(deep, k, levels == 32 ? 1 : 0, "nesting");
	}
}

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void put(char **b, size_t *n, size_t *cap, const char *s, size_t len)
{
	while (*n + len + 1 > *cap) {
		*cap = *cap ? *cap * 2 : 256;
		*b = realloc(*b, *cap);
		if (!*b)
			abort();
	}
	memcpy(*b + *n, s, len);
	*n += len;
	(*b)[*n] = 0;
}

/* A random value's text; `odd`: whether strings may hold what is not plain. */
static void random_text(unsigned *s, char **b, size_t *n, size_t *cap, int depth, int odd)
{
	static const char *const odd_bytes[] = { "\\\"", "\\\\", "\\n", "\x01", "\x7f", "\xc3\xa9", "\\u00e9" };
	static const char *const ws[] = { "", " ", "\n", "\t", "\r\n " };
	const char *space = ws[rnd(s) % 5];
	put(b, n, cap, space, strlen(space));
	unsigned kind = depth > 4 ? 2 + rnd(s) % 4 : rnd(s) % 6;
	switch (kind) {
	case 0:
	case 1: {
		int obj = kind == 0;
		put(b, n, cap, obj ? "{" : "[", 1);
		unsigned k = rnd(s) % 5;
		for (unsigned i = 0; i < k; i++) {
			if (i)
				put(b, n, cap, ",", 1);
			if (obj) {
				char key[16];
				/* few names, so some objects repeat one */
				int kl = snprintf(key, sizeof(key), "\"k%u\":", rnd(s) % 6);
				put(b, n, cap, key, (size_t)kl);
			}
			random_text(s, b, n, cap, depth + 1, odd);
		}
		put(b, n, cap, obj ? "}" : "]", 1);
		break;
	}
	case 2: {
		/* a string: long ones cross several 64-byte blocks */
		size_t len = rnd(s) % 4 == 0 ? rnd(s) % 700 : rnd(s) % 70;
		size_t odd_at = odd && rnd(s) % 3 == 0 ? rnd(s) % (len + 1) : (size_t)-1;
		put(b, n, cap, "\"", 1);
		for (size_t i = 0; i <= len; i++) {
			if (i == odd_at) {
				const char *o = odd_bytes[rnd(s) % 7];
				put(b, n, cap, o, strlen(o));
			}
			if (i < len)
				put(b, n, cap, &"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="[rnd(s) % 65], 1);
		}
		put(b, n, cap, "\"", 1);
		break;
	}
	case 3: {
		char num[32];
		unsigned f = rnd(s) % 8;
		int l = f == 0 ? snprintf(num, sizeof(num), "-%u", rnd(s) % 100) :
			f == 1 ? snprintf(num, sizeof(num), "%u.5", rnd(s) % 100) :
			f == 2 ? snprintf(num, sizeof(num), "123456789012345678%u", rnd(s) % 10) :
				 snprintf(num, sizeof(num), "%u", rnd(s) % 100000);
		put(b, n, cap, num, (size_t)l);
		break;
	}
	default: {
		static const char *const w[] = { "true", "false", "null" };
		const char *x = w[rnd(s) % 3];
		put(b, n, cap, x, strlen(x));
	}
	}
}

static void random_texts(void)
{
	unsigned s = 2026;
	char *b = NULL;
	size_t cap = 0;
	for (int i = 0; i < 20000; i++) {
		size_t n = 0;
		int odd = i % 2;
		put(&b, &n, &cap, "", 0);
		if (rnd(&s) % 2) {
			put(&b, &n, &cap, "{\"op\":\"write\",\"data\":", 21);
			random_text(&s, &b, &n, &cap, 4, odd);
			put(&b, &n, &cap, "}", 1);
		} else {
			random_text(&s, &b, &n, &cap, 0, odd);
		}
		/* as written; cut short; one byte changed */
		agree(b, n, -1, "random");
		if (n > 1)
			agree(b, rnd(&s) % n, -1, "random, cut");
		if (n) {
			size_t at = rnd(&s) % n;
			char was = b[at];
			b[at] = "\"\\{}[],:0 \x01\xc3"[rnd(&s) % 13];
			agree(b, n, -1, "random, one byte changed");
			b[at] = was;
		}
	}
	free(b);
}

/* What it is for: one agent file piece, 1 MiB as base64 (1.4 MB). */
static void file_piece(void)
{
	size_t len = 1398104;
	char *t = malloc(len + 64);
	if (!t)
		abort();
	size_t n = (size_t)sprintf(t, "{\"op\": \"write\", \"data\": \"");
	for (size_t i = 0; i < len; i++)
		t[n++] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i * 7 + i / 3) % 64];
	n += (size_t)sprintf(t + n, "\"}");
	agree(t, n, 1, "file piece");
	t[n - 1000] = '\\';   /* an escape near the end: jansson's */
	agree(t, n, 0, "file piece with an escape");
	free(t);
}

int main(void)
{
	hand_made();
	random_texts();
	file_piece();
	if (!checks || !plain_seen) {
		fprintf(stderr, "no check ran\n");
		return 1;
	}
	printf("%d checks (%d read by the plain reader), %d failures\n", checks, plain_seen, failures);
	return failures ? 1 : 0;
}

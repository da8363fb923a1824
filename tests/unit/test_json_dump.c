/*
 * src/api/json_dump.c must give exactly json_dumps(v, JSON_COMPACT)'s text:
 * checked on hand-made values (every escape, UTF-8, invalid UTF-8, reals,
 * large integers, deep nesting, odd keys) and on thousands of random
 * nested values whose strings put special bytes at every offset around
 * the eight-byte steps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/json_dump.h"

static int failures, checks;

static void same(const json_t *v, const char *what)
{
	checks++;
	char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	char *got = json_dump_text(v);
	if ((!want) != (!got) || (want && strcmp(want, got))) {
		fprintf(stderr, "%s: json_dump_text differs:\n  want %.300s\n  got  %.300s\n", what,
			want ? want : "(NULL)", got ? got : "(NULL)");
		failures++;
	}
	free(want);
	free(got);
}

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static json_t *random_string(unsigned *s)
{
	static const char *const odd[] = { "\"", "\\", "\n", "\x01", "\x7f", "\xc3\xa9", "/", "\xe2\x80\xa8", "\x1f" };
	char buf[200];
	size_t n = rnd(s) % 60, k = 0;
	for (size_t i = 0; i < n && k + 4 < sizeof(buf); i++) {
		if (rnd(s) % 11 == 0) {
			const char *o = odd[rnd(s) % (sizeof(odd) / sizeof(odd[0]))];
			memcpy(buf + k, o, strlen(o));
			k += strlen(o);
		} else {
			buf[k++] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="[rnd(s) % 65];
		}
	}
	return json_stringn(buf, k);
}

static json_t *random_value(unsigned *s, int depth)
{
	switch (depth > 3 ? rnd(s) % 5 : rnd(s) % 7) {
	case 0: return random_string(s);
	case 1: return json_integer((json_int_t)rnd(s) * (rnd(s) % 2 ? -1 : 1) * 100003);
	case 2: return json_real((double)rnd(s) / 7.0);
	case 3: return rnd(s) % 2 ? json_true() : json_false();
	case 4: return json_null();
	case 5: {
		json_t *a = json_array();
		for (unsigned i = rnd(s) % 5; i; i--)
			json_array_append_new(a, random_value(s, depth + 1));
		return a;
	}
	default: {
		json_t *o = json_object();
		for (unsigned i = rnd(s) % 5; i; i--) {
			json_t *k = random_string(s);
			json_object_set_new(o, json_string_value(k), random_value(s, depth + 1));
			json_decref(k);
		}
		return o;
	}
	}
}

int main(void)
{
	/* hand-made */
	char big[5000];
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64];
	big[sizeof(big) - 1] = 0;
	json_t *v = json_pack("{s:s,s:I,s:b,s:n,s:f,s:[i,s,{s:s}]}", "buf-b64", big, "handle",
			      (json_int_t)9007199254740993LL, "eof", 0, "none", "r", 0.1, "arr", -5,
			      "tab\there \"q\" back\\slash", "k\xc3\xa9y", "\x01\x1f");
	same(v, "an agent message");
	json_decref(v);
	v = json_stringn_nocheck("bad \xff utf-8", 11);   /* json_dumps refuses it: so must we */
	same(v, "invalid UTF-8");
	json_decref(v);
	v = json_pack("{s:s}", "a\"b", "x");
	same(v, "a key with a quote");
	json_decref(v);
	json_t *deep = json_integer(1);
	for (int i = 0; i < 100; i++)
		deep = json_pack("[o]", deep);
	same(deep, "100 arrays deep");
	json_decref(deep);
	for (size_t cut = 0; cut < 24; cut++) {   /* a special byte at each offset */
		for (const char *sp = "\"\\\n\x7f\x80"; *sp; sp++) {
			char s[40];
			memset(s, 'A', sizeof(s));
			s[cut] = *sp;
			v = json_stringn_nocheck(s, 30);
			same(v, "a special byte at an offset");
			json_decref(v);
		}
	}
	/* random */
	unsigned seed = 12345;
	for (int i = 0; i < 3000; i++) {
		v = random_value(&seed, 0);
		same(v, "a random value");
		json_decref(v);
	}
	if (failures) {
		fprintf(stderr, "%d of %d checks failed\n", failures, checks);
		return 1;
	}
	printf("json_dump: %d checks passed\n", checks);
	return 0;
}

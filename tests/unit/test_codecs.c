/*
 * src/base's codecs for the guest agent's data: base64 (RFC 4648's test
 * vectors, every length round-trips, white space and padding rules, bad
 * input refused), XXH64 against xxhsum (an independent implementation:
 * argv[1], Debian's xxhash package) on inputs of every length up to 300
 * bytes and 1 MiB fed in odd pieces, and SHA-256 against FIPS 180-4's
 * examples.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/sha256.h"
#include "base/xxh64.h"

static int failures, checks;
#define CHECK(c) do { checks++; if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

static long decode(const char *s, uint8_t *out)
{
	return base64_decode(s, strlen(s), out);
}

static void test_base64(void)
{
	static const char *const vec[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	char enc[64];
	uint8_t dec[64];
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		size_t n = strlen(vec[i][0]);
		CHECK(base64_encoded_len(n) == strlen(vec[i][1]));
		base64_encode((const uint8_t *)vec[i][0], n, enc);
		CHECK(!memcmp(enc, vec[i][1], strlen(vec[i][1])));
		CHECK(decode(vec[i][1], dec) == (long)n && !memcmp(dec, vec[i][0], n));
	}
	/* every length, every byte value, through the fast groups and the tail */
	uint8_t raw[600], back[600];
	char text[801];
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)(i * 151 + 7);
	size_t bad = 0;
	for (size_t n = 0; n <= sizeof(raw); n++) {
		base64_encode(raw, n, text);
		size_t m = base64_encoded_len(n);
		long r = base64_decode(text, m, back);
		if (r != (long)n || memcmp(raw, back, n)) {
			fprintf(stderr, "  base64 round trip of %zu bytes failed\n", n);
			bad++;
		}
	}
	CHECK(bad == 0);
	/* white space anywhere, also inside a group, and unpadded tails */
	CHECK(decode("Zm9v\nYmFy", dec) == 6 && !memcmp(dec, "foobar", 6));
	CHECK(decode("Zm 9vYm\r\nFy ", dec) == 6 && !memcmp(dec, "foobar", 6));
	CHECK(decode("Zm9vYg", dec) == 4 && !memcmp(dec, "foob", 4));
	CHECK(decode("Zm9vYmE", dec) == 5 && !memcmp(dec, "fooba", 5));
	/* refused: a character outside the alphabet (early, in a fast group,
	 * and late), data after padding, a lone last character, too much
	 * padding */
	CHECK(decode("Zm9v*mFy", dec) == -1);
	CHECK(decode("Zm9vYmFyZm9vYmFyZm9vYmF\x80", dec) == -1);
	CHECK(decode("Zg==Zm9v", dec) == -1);
	CHECK(decode("Zm9vY", dec) == -1);
	CHECK(decode("Zg===", dec) == -1);
	CHECK(decode("Z===", dec) == -1);
}

/* xxhsum's digest of n bytes, through a file. */
static int xxhsum(const char *tool, const uint8_t *data, size_t n, char hex[17])
{
	char path[] = "/tmp/skiff-test-codecs-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, data, n) != (ssize_t)n) {
		perror("temporary file");
		return -1;
	}
	close(fd);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "%s -H64 %s 2>/dev/null", tool, path);
	FILE *p = popen(cmd, "r");
	int ok = p && fscanf(p, "%16s", hex) == 1;
	if (p)
		pclose(p);
	unlink(path);
	return ok ? 0 : -1;
}

static void test_xxh64(const char *tool)
{
	static uint8_t data[1 << 20];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)((i * 2654435761u) >> 13);
	char want[17], got[17];
	struct xxh64 h;
	/* lengths around every branch: short (< 32), stripes, 8/4/1-byte tails */
	for (size_t n = 0; n <= 300; n += (n < 70 ? 1 : 23)) {
		if (xxhsum(tool, data + 1, n, want)) {   /* + 1: an unaligned start */
			CHECK(0);
			return;
		}
		xxh64_init(&h, 0);
		xxh64_update(&h, data + 1, n);
		xxh64_hex(&h, got);
		if (strcmp(got, want))
			fprintf(stderr, "  xxh64 of %zu bytes: %s, xxhsum says %s\n", n, got, want);
		CHECK(!strcmp(got, want));
	}
	/* 1 MiB in pieces of odd sizes (the stripe buffer in between) */
	CHECK(xxhsum(tool, data, sizeof(data), want) == 0);
	xxh64_init(&h, 0);
	for (size_t off = 0, k = 1; off < sizeof(data); k = k * 7 % 1000 + 1) {
		size_t n = sizeof(data) - off < k ? sizeof(data) - off : k;
		xxh64_update(&h, data + off, n);
		off += n;
	}
	xxh64_hex(&h, got);
	CHECK(!strcmp(got, want));
	/* the seed is used */
	xxh64_init(&h, 1);
	xxh64_update(&h, data, sizeof(data));
	xxh64_hex(&h, got);
	CHECK(strcmp(got, want));
}

static void test_sha256(void)
{
	char hex[65];
	struct sha256 s;
	sha256_init(&s);
	sha256_update(&s, "abc", 3);
	sha256_hex(&s, hex);
	CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	sha256_init(&s);
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	for (const char *p = two; *p; p++)
		sha256_update(&s, p, 1);
	sha256_hex(&s, hex);
	CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_codecs XXHSUM\n");
		return 2;
	}
	test_base64();
	test_xxh64(argv[1]);
	test_sha256();
	if (failures) {
		fprintf(stderr, "%d of %d checks failed\n", failures, checks);
		return 1;
	}
	printf("codecs: %d checks passed\n", checks);
	return 0;
}

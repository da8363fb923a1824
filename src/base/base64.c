/*
 * Base64 encoding and decoding (RFC 4648 section 4); see base64.h.
 */
#include "base64.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

void base64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = alphabet[v >> 18];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = alphabet[(v >> 6) & 63];
		*out++ = alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		*out++ = alphabet[v >> 18];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = '=';
		*out++ = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*out++ = alphabet[v >> 18];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = alphabet[(v >> 6) & 63];
		*out++ = '=';
	}
}

/* The value of each character in the alphabet, -1 for every other byte. */
static const int8_t value_of[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
	-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
	-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

/* The careful decoder for what the fast loop leaves: white space anywhere,
 * padding at the end. */
static long decode_rest(const unsigned char *in, size_t n, uint8_t *out)
{
	uint32_t acc = 0;
	unsigned have = 0, pad = 0;
	long len = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = in[i];
		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		int v = value_of[c];
		if (v < 0 || pad)   /* data after padding */
			return -1;
		acc = acc << 6 | (uint32_t)v;
		if (++have == 4) {
			out[len++] = (uint8_t)(acc >> 16);
			out[len++] = (uint8_t)(acc >> 8);
			out[len++] = (uint8_t)acc;
			acc = 0;
			have = 0;
		}
	}
	/* A final group of 2 or 3 characters carries 1 or 2 bytes; padding,
	 * when present, completes it to 4. */
	if (have == 1 || (pad && have + pad != 4) || pad > 2)
		return -1;
	if (have == 2) {
		out[len++] = (uint8_t)(acc >> 4);
	} else if (have == 3) {
		out[len++] = (uint8_t)(acc >> 10);
		out[len++] = (uint8_t)(acc >> 2);
	}
	return len;
}

long base64_decode(const char *in, size_t n, uint8_t *out)
{
	/* Whole groups of four alphabet characters, the bulk of any QGA data
	 * (the guest agent decodes every file piece with this, so it is worth
	 * a table and one test per group); the first group holding anything
	 * else, and what follows it, go to decode_rest. */
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0;
	long len = 0;
	for (; i + 4 < n; i += 4) {   /* not the last group: it may be padded */
		int32_t a = value_of[s[i]], b = value_of[s[i + 1]], c = value_of[s[i + 2]], d = value_of[s[i + 3]];
		if ((a | b | c | d) < 0)
			break;
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		out[len] = (uint8_t)(v >> 16);
		out[len + 1] = (uint8_t)(v >> 8);
		out[len + 2] = (uint8_t)v;
		len += 3;
	}
	long rest = decode_rest(s + i, n - i, out + len);
	return rest < 0 ? -1 : len + rest;
}

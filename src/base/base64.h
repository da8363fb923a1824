/*
 * Base64 (RFC 4648 section 4, with padding) as the QEMU guest agent
 * protocol carries file and process data (buf-b64, input-data, out-data).
 * Shared by the host (the API and the CLI) and the guest agent, which is
 * built from this file too (guest/build-image.sh), so it uses libc alone.
 */
#ifndef SKIFF_BASE_BASE64_H
#define SKIFF_BASE_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters needed to encode n bytes (without a NUL). */
size_t base64_encoded_len(size_t n);
/* Encode n bytes into out (base64_encoded_len(n) bytes, no NUL). */
void base64_encode(const uint8_t *in, size_t n, char *out);
/* Decode n characters into out (room for n / 4 * 3 bytes). Whitespace is
 * skipped; anything else not in the alphabet, or bad padding, fails.
 * Returns the bytes written, or -1. */
long base64_decode(const char *in, size_t n, uint8_t *out);

#endif

/*
 * A fast reader for the JSON the agent routes carry: request bodies and
 * guest agent replies holding a long base64 string (a 1 MiB file piece is
 * 1.4 MB of it). jansson reads such a string about a byte at a time with
 * its UTF-8 and escape checks, which made it most of the API thread's work
 * in `skiff cp`. This reader takes only "plain" JSON and leaves everything
 * else to jansson, so it never has to give an error of its own.
 *
 * Plain JSON: objects and arrays (at most 32 deep), strings of printable
 * ASCII (0x20 to 0x7e) with no backslash, integers of at most 18 digits
 * without a sign, true, false and null; whitespace as RFC 8259 allows
 * (space, tab, CR, LF). Objects with a key twice are not plain (the
 * callers refuse them through jansson's JSON_REJECT_DUPLICATES).
 */
#ifndef SKIFF_API_JSON_LOAD_H
#define SKIFF_API_JSON_LOAD_H

#include <stddef.h>

#include <jansson.h>

/* The value `text[0..len)` holds, as jansson would give it, when the text
 * is one plain JSON value: with end NULL, nothing but whitespace may follow
 * it; otherwise *end is set to where the value ends (what follows is not
 * looked at, as with JSON_DISABLE_EOF_CHECK). NULL when the text is not
 * plain JSON (or not JSON at all, or memory ran out): parse it with
 * jansson then, which also says what is wrong. */
json_t *json_load_plain(const char *text, size_t len, size_t *end);

#endif

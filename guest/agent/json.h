/*
 * A small JSON reader and writer for skiff's guest agent (RFC 8259). The
 * agent is a static program with no libraries beyond libc, and reads only
 * what the host sends, so this covers exactly that: objects, arrays,
 * strings (with \u escapes, surrogate pairs joined), integers, the other
 * numbers kept as doubles, true, false, null. Nesting is bounded; a bad
 * document is refused whole.
 *
 * The writer appends to a growable buffer; strings are escaped so that any
 * bytes (even invalid UTF-8 from a file name) come out as valid JSON.
 */
#ifndef SKIFF_AGENT_JSON_H
#define SKIFF_AGENT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jtype { J_NULL, J_BOOL, J_INT, J_REAL, J_STRING, J_ARRAY, J_OBJECT };

struct jval {
	enum jtype type;
	bool b;
	int64_t i;
	double d;
	char *s;               /* J_STRING: NUL-terminated (may hold NULs: see len) */
	size_t len;            /* J_STRING: bytes; J_ARRAY/J_OBJECT: members */
	struct jval *items;    /* J_ARRAY: len values; J_OBJECT: len values */
	char **keys;           /* J_OBJECT: len keys */
};

#define JSON_MAX_DEPTH 32

/* Parse n bytes holding exactly one JSON value (whitespace around it is
 * allowed). NULL with a message in err on error. */
struct jval *json_parse(const char *text, size_t n, char *err, size_t errlen);
void json_free(struct jval *v);
/* Free what a value holds (not the value itself) and zero it. */
void json_free_members(struct jval *v);

/* How many of the first n bytes of s need nothing but copying inside a
 * JSON string: none of '"', '\\', a control character or 0xFF (the QGA
 * delimiter). Eight bytes a step: file data arrives as long base64
 * strings, and the agent scans each one twice (framing, parsing). */
size_t json_plain_run(const char *s, size_t n);

/* Member `key` of an object, or NULL. */
const struct jval *json_get(const struct jval *obj, const char *key);

/* A growable output buffer. On allocation failure `failed` is set and
 * further appends do nothing. */
struct jbuf {
	char *p;
	size_t len, cap;
	bool failed;
};

void jb_raw(struct jbuf *b, const char *s, size_t n);
void jb_str(struct jbuf *b, const char *s);          /* raw text, no escaping */
void jb_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jb_string(struct jbuf *b, const char *s, size_t n);   /* a quoted, escaped JSON string */
void jb_cstring(struct jbuf *b, const char *s);
void jb_base64(struct jbuf *b, const uint8_t *data, size_t n);   /* a quoted base64 string */
void jb_free(struct jbuf *b);

#endif

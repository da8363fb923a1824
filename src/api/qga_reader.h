/*
 * The host's reader of QEMU guest agent (QGA) replies: turns the bytes a
 * guest agent sends into whole replies, with everything the guest says
 * treated as hostile.
 *
 * Framing (QEMU's qga/qapi-schema.json, guest-sync-delimited): replies are
 * JSON objects, one after another (QEMU's agent ends each with a newline);
 * a 0xFF byte discards whatever partial reply came before it (the agent
 * sends one before its answer to guest-sync-delimited). Bytes outside an
 * object are skipped. An object is counted by its brackets (strings and
 * escapes respected); one longer than the reader's limit, or nested deeper
 * than QGA_READER_MAX_DEPTH, is skipped to its end without being stored
 * and reported as QGA_REPLY_TOO_LARGE, so a reply never costs more memory
 * than the limit, and an endless one only costs time.
 *
 * Decoding: {"return": VALUE} is a result, {"error": {"class": STRING,
 * "desc": STRING}} an error (QMP's reply shapes); anything else is
 * garbage, reported so the caller can resynchronise.
 */
#ifndef SKIFF_API_QGA_READER_H
#define SKIFF_API_QGA_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define QGA_READER_MAX_DEPTH 64

enum qga_reply_kind {
	QGA_REPLY_RETURN,     /* value: the "return" member */
	QGA_REPLY_ERROR,      /* err_class, err_desc */
	QGA_REPLY_GARBAGE,    /* a complete object that is not a reply, or not JSON */
	QGA_REPLY_TOO_LARGE,  /* over the limit or too deep: skipped */
};

struct qga_reply {
	enum qga_reply_kind kind;
	json_t *value;           /* QGA_REPLY_RETURN: a reference the reply owns */
	char err_class[64];
	char err_desc[512];
	bool after_delimiter;    /* a 0xFF came before this reply */
};

/* Called for each complete reply; the reply (and its value) is freed when
 * the callback returns, so it takes a reference to keep the value. */
typedef void (*qga_reply_fn)(void *ctx, const struct qga_reply *r);

struct qga_reader {
	size_t limit;            /* largest reply stored */
	uint8_t *buf;
	size_t len, cap;
	unsigned depth;
	bool in_string, escape;
	bool skipping;           /* this object went over the limit */
	bool delimited;          /* a 0xFF since the last reply */
	qga_reply_fn on_reply;
	void *ctx;
};

void qga_reader_init(struct qga_reader *r, size_t limit, qga_reply_fn fn, void *ctx);
void qga_reader_free(struct qga_reader *r);
/* Set a new limit for replies not yet begun (the one being received keeps
 * the old limit only if it is already over it). */
void qga_reader_set_limit(struct qga_reader *r, size_t limit);
/* Feed n bytes; on_reply runs for each reply they complete. */
void qga_reader_feed(struct qga_reader *r, const uint8_t *buf, size_t n);
/* Forget any partial reply (as a 0xFF does). */
void qga_reader_reset(struct qga_reader *r);

/* Classify one complete JSON text as a reply (also for tests and the fuzz
 * target); r->value, when set, must be released with json_decref. */
void qga_reply_decode(const uint8_t *text, size_t n, struct qga_reply *r);

#endif

/*
 * A client of the QEMU guest agent protocol (QGA) for the host: one
 * command at a time over any byte channel to a guest agent, with the
 * protocol's resynchronisation, a time-out on every call and a size limit
 * on every reply, so an agent that is absent, silent, slow, or that sends
 * garbage or endless replies costs at most the time-out and the limit.
 *
 * Protocol (QEMU's qga/qapi-schema.json): a request is
 * {"execute": NAME, "arguments": {...}}; replies come in order. Before the
 * first call, after a time-out, after a reply that was not one, and after
 * the channel reopened, the client sends a 0xFF byte and
 * guest-sync-delimited with a fresh id, and drops everything until the
 * answer carrying that id. Commands that send no reply on success
 * (guest-shutdown) are sent with qga_send_only(); a later error reply from
 * them is dropped by the next resynchronisation.
 *
 * The channel: the owner gives a send function, and hands every byte
 * the agent sends to qga_client_feed() (from any thread; it never blocks
 * for long and stores nothing while no call waits).
 */
#ifndef SKIFF_API_QGA_H
#define SKIFF_API_QGA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Replies to most commands are small; file and exec data raise it. */
#define QGA_REPLY_SMALL (64u * 1024)
/* guest-sync-delimited gets at most this long of a call's time-out. */
#define QGA_SYNC_TIMEOUT_MS 3000

enum qga_status {
	QGA_OK = 0,
	QGA_E_AGENT = -1,        /* the agent answered with an error (class, desc) */
	QGA_E_TIMEOUT = -2,      /* no answer in time (or no agent listening) */
	QGA_E_PROTOCOL = -3,     /* an answer that is not a reply, or over the limit */
	QGA_E_CHANNEL = -4,      /* the channel is closed or failed */
	QGA_E_NOMEM = -5,
};

struct qga_transport {
	/* Send all n bytes before deadline_ns (CLOCK_MONOTONIC): 0, or
	 * -ETIMEDOUT, or another negative errno when the channel failed. */
	int (*send)(void *ctx, const void *buf, size_t n, uint64_t deadline_ns);
	/* Optional: whether an agent is there to read at all (a virtio port
	 * the guest has open). false makes calls fail at once. */
	bool (*connected)(void *ctx);
	void *ctx;
};

struct qga_client;

struct qga_client *qga_client_new(const struct qga_transport *t);
void qga_client_free(struct qga_client *c);

/* Bytes from the agent. Any thread. */
void qga_client_feed(struct qga_client *c, const uint8_t *buf, size_t n);
/* The channel was closed or reopened: resynchronise before the next call. */
void qga_client_reset(struct qga_client *c);
/* The channel is going away for good (its VM stops): a call waiting for
 * an answer returns QGA_E_CHANNEL now, and every later call at once. The
 * owner also makes its send function give up (it may be blocked on a
 * full channel). Any thread. */
void qga_client_close(struct qga_client *c);

/* Run one command. args: an object or NULL (not consumed). On QGA_OK
 * *ret holds the "return" value (a new reference; json null never). On
 * failure err says what happened, naming the command, and for
 * QGA_E_AGENT the agent's class is in err_class (may be NULL). Replies
 * over max_reply bytes count as QGA_E_PROTOCOL. */
enum qga_status qga_call(struct qga_client *c, const char *cmd, const json_t *args,
			 size_t max_reply, unsigned timeout_ms, json_t **ret,
			 char *err, size_t errlen, char *err_class, size_t classlen);

/* Send a command that gives no reply on success, after resynchronising. */
enum qga_status qga_send_only(struct qga_client *c, const char *cmd, const json_t *args,
			      unsigned timeout_ms, char *err, size_t errlen);

/* Deadlines are on CLOCK_MONOTONIC in nanoseconds (base/clock.h). */

#endif

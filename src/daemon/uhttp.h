/*
 * A small HTTP/1.1 client for skiff's JSON APIs on Unix sockets, built on
 * libcurl (CURLOPT_UNIX_SOCKET_PATH; loaded at run time, see uhttp.c):
 * skiffd uses it to talk to each VM's API socket (probing, proxying,
 * metrics), and `skiff` to talk to skiffd.
 * One request per call, with a bound on the time it may take and on the size
 * of the answer.
 */
#ifndef SKIFF_DAEMON_UHTTP_H
#define SKIFF_DAEMON_UHTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* Answers larger than this are refused. */
#define UHTTP_MAX_REPLY (16u << 20)

struct uhttp_reply {
	long status;          /* HTTP status */
	char *body;           /* malloc'd, NUL-terminated ("" when none) */
	size_t len;
	char *content_type;   /* malloc'd; NULL when the server sent none */
};

/* Once per process, before any thread calls uhttp_call: loads libcurl.
 * 0, or -1 with a message in err. */
int uhttp_global_init(char *err, size_t errlen);

/*
 * `method` `path` on the server at Unix socket `sock`, with `body` (NULL for
 * none) sent as application/json. `path` is percent-encoded here where it
 * needs to be. Returns 0 with `out` filled (free it with uhttp_reply_free),
 * or -1 with a message in err when no answer came (socket missing, refused,
 * timed out, ...).
 */
int uhttp_call(const char *sock, const char *method, const char *path, const char *body,
	       long timeout_ms, struct uhttp_reply *out, char *err, size_t errlen);
/* uhttp_call that also gives up, within about a second, once *cancel is
 * true (skiffd ending: a proxied call must not hold its shutdown for the
 * whole of a long time-out). err then says "cancelled". */
int uhttp_call_cancel(const char *sock, const char *method, const char *path, const char *body,
		      long timeout_ms, const atomic_bool *cancel, struct uhttp_reply *out, char *err,
		      size_t errlen);

void uhttp_reply_free(struct uhttp_reply *r);

#endif

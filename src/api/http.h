/*
 * HTTP/1.1 on a Unix socket for skiff's JSON APIs (the per-VM API and,
 * later, skiffd's). libmicrohttpd does the HTTP; this file owns the socket
 * (created here, mode 0600, handed to libmicrohttpd), bounds request bodies
 * (a body over the limit is refused with 400 without being read whole; one
 * announced by Content-Length is refused before any of it is read), and turns
 * one complete request into one call of the owner's handler.
 *
 * The handler runs on the server's single polling thread, so requests are
 * handled one at a time in arrival order, like Firecracker's API thread;
 * or, with pool_threads, on whichever thread of a fixed pool accepted the
 * connection. A request the owner says may wait long (`waits`) runs on a
 * thread of its own ("api-call") while its connection is suspended, so
 * it holds up nothing else.
 */
#ifndef SKIFF_API_HTTP_H
#define SKIFF_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>

/* Firecracker's default --http-api-max-payload-size. */
#define API_DEFAULT_MAX_BODY (50u * 1024)
/* A connection with no traffic for this long is closed. */
#define API_IDLE_TIMEOUT_S 15

enum api_method { API_GET, API_PUT, API_PATCH, API_OTHER };

struct api_request {
	enum api_method method;
	const char *method_name;  /* as sent */
	const char *path;         /* percent-decoded, query removed */
	const char *body;         /* NUL-terminated; "" when none */
	size_t body_len;          /* 0: no body */
};

struct api_response {
	unsigned status;
	char *body;               /* malloc'd text, or NULL for none */
	const char *content_type; /* NULL: application/json */
};

/* Set a response; any previous body is freed. */
void api_respond_empty(struct api_response *r, unsigned status);
/* {"fault_message": ...} with printf-style formatting. */
void api_respond_fault(struct api_response *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Takes the malloc'd JSON text `body`. */
void api_respond_text(struct api_response *r, unsigned status, char *body);

typedef void (*api_handler_fn)(void *ctx, const struct api_request *req, struct api_response *resp);

struct api_server_config {
	const char *socket_path;
	size_t max_body;          /* 0: API_DEFAULT_MAX_BODY */
	/* Optional: paths starting with large_prefix may carry bodies of up
	 * to large_max_body (the guest agent's file writes); a '*' in it
	 * stands for any one path segment. */
	const char *large_prefix;
	size_t large_max_body;
	unsigned max_connections; /* 0: 32 */
	/* 0 or 1: one thread serves every connection, so handlers never run
	 * at once. N > 1: a pool of N polling threads started once
	 * (libmicrohttpd's MHD-worker), each accepting connections while it
	 * is not in a handler, so a handler that waits long (the VMM's guest
	 * agent calls) holds up only its own thread's connections while
	 * fewer than N wait; handlers then run concurrently and must lock
	 * what they share. A pool rather than a thread per connection: a
	 * new thread for every request cost the VMM 0.1 ms of CPU per request
	 * and, on a busy host, milliseconds waiting for a core
	 * (docs/benchmark-log.md, the structure work's API rows). */
	unsigned pool_threads;
	/* Optional: true for a request whose handler may wait long (the
	 * VMM's guest agent calls, which wait on the guest). It runs on a
	 * thread of its own, started for it, while the polling thread goes
	 * on serving other connections: the cost of a thread falls on these
	 * requests only, not on every request as with a pool whose threads
	 * all wake for each connection. Such handlers run concurrently with
	 * the others and must lock what they share. */
	bool (*waits)(void *ctx, const struct api_request *req);
	api_handler_fn handler;
	void *ctx;
};

struct api_server;

/* Create the socket and start serving. A socket file left behind by a
 * process that is gone is replaced; anything else at the path is an error.
 * NULL on failure with a message in err. */
struct api_server *api_server_start(const struct api_server_config *cfg, char *err, size_t errlen);
/* Wait until no request is in progress (from its first byte until its
 * answer has gone out), at most timeout_ms; false if one still is. A
 * server still takes new requests meanwhile. */
bool api_server_drain(struct api_server *s, unsigned timeout_ms);
/* Stop serving, remove the socket file. Waits for the handlers in
 * progress, those on threads of their own too, and for the answers they
 * made to go out (at most two seconds); any other request still in
 * progress is dropped: api_server_drain first to wait for those. */
void api_server_stop(struct api_server *s);

#endif

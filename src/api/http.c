/*
 * The HTTP side of skiff's APIs: the Unix socket and libmicrohttpd; see
 * http.h. Every request gets a small state record from its first callback
 * to the completion notice, which frees it however the request ends
 * (answered, aborted, timed out), so no path leaks a body.
 */
#include "api/http.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api/json_check.h"
#include "base/thread_start.h"
#include "base/unix_sock.h"

/* How long a stop waits for answers already made to go out. */
#define API_STOP_DRAIN_MS 2000

struct api_server {
	struct MHD_Daemon *mhd;
	char *path;
	struct unix_sock_file file;
	size_t max_body;
	const char *large_prefix;   /* the caller's (a string constant) */
	size_t large_max_body;
	api_handler_fn handler;
	bool (*waits)(void *ctx, const struct api_request *req);
	void *ctx;
	atomic_uint in_flight;      /* requests from first callback to completion */
	pthread_mutex_t lock;       /* the members below, and each pending's done */
	pthread_cond_t idle;        /* own_calls fell to 0 */
	unsigned own_calls;         /* requests on threads of their own */
};

/* Whether url starts with pattern, where a '*' in the pattern stands for
 * one path segment (skiffd's /vms/ * /agent/ holds a VM's name). */
static bool path_has_prefix(const char *url, const char *pattern)
{
	while (*pattern) {
		if (*pattern == '*') {
			const char *end = strchr(url, '/');
			if (!end || end == url)
				return false;
			url = end;
			pattern++;
		} else if (*url++ != *pattern++) {
			return false;
		}
	}
	return true;
}

/* One request in progress. */
struct pending {
	char *body;
	size_t len, cap;
	uint64_t received;   /* bytes seen, stored or not */
	size_t limit;        /* this request's largest body */
	bool too_large;
	/* A request handled on a thread of its own, its connection suspended
	 * meanwhile: what the thread needs, and its answer once done. */
	struct api_server *s;
	struct MHD_Connection *c;
	struct api_request req;
	struct api_response resp;
	bool done;
};

void api_respond_empty(struct api_response *r, unsigned status)
{
	free(r->body);
	r->body = NULL;
	r->status = status;
}

void api_respond_text(struct api_response *r, unsigned status, char *body)
{
	free(r->body);
	r->body = body;
	r->status = status;
	if (!body)
		r->status = 500;
}

void api_respond_fault(struct api_response *r, unsigned status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_respond_text(r, status, api_fault_body(msg));
}

static enum MHD_Result send_response(struct MHD_Connection *c, struct api_response *r)
{
	struct MHD_Response *resp;
	if (r->body) {
		size_t n = strlen(r->body);
		resp = MHD_create_response_from_buffer(n, r->body, MHD_RESPMEM_MUST_FREE);
		if (!resp) {
			free(r->body);
			r->body = NULL;
			return MHD_NO;
		}
		r->body = NULL; /* owned by the response now */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					r->content_type ? r->content_type : "application/json");
	} else {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, "skiff");
	enum MHD_Result ok = MHD_queue_response(c, r->status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result too_large(struct MHD_Connection *c, size_t limit, uint64_t size)
{
	struct api_response r = { 0 };
	/* micro_http (Firecracker) answers an oversized body with 400. */
	api_respond_fault(&r, 400,
			  "Request payload with size %" PRIu64 " is larger than the limit of %zu allowed by server.",
			  size, limit);
	return send_response(c, &r);
}

static enum api_method method_of(const char *m)
{
	if (!strcmp(m, "GET"))
		return API_GET;
	if (!strcmp(m, "PUT"))
		return API_PUT;
	if (!strcmp(m, "PATCH"))
		return API_PATCH;
	return API_OTHER;
}

/* A request that may wait long, on its own thread: it answers into its
 * pending record and resumes the connection; libmicrohttpd then calls
 * on_request again, which sends the answer. */
static void *own_call(void *arg)
{
	struct pending *p = arg;
	struct api_server *s = p->s;
	s->handler(s->ctx, &p->req, &p->resp);
	pthread_mutex_lock(&s->lock);
	p->done = true;
	MHD_resume_connection(p->c);
	if (--s->own_calls == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void start_own_call(struct api_server *s, struct pending *p, struct MHD_Connection *c,
			   const struct api_request *req)
{
	/* The url and method stay valid while the connection is suspended:
	 * its request lasts until it is answered. */
	p->s = s;
	p->c = c;
	p->req = *req;
	p->resp.status = 500;
	pthread_mutex_lock(&s->lock);
	s->own_calls++;
	pthread_mutex_unlock(&s->lock);
	MHD_suspend_connection(c);
	pthread_t t;
	if (thread_start(NULL, &t, "api-call", own_call, p)) {
		api_respond_fault(&p->resp, 503, "cannot start a thread for this request");
		pthread_mutex_lock(&s->lock);
		p->done = true;
		MHD_resume_connection(c);
		if (--s->own_calls == 0)
			pthread_cond_broadcast(&s->idle);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	pthread_detach(t);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **state)
{
	struct api_server *s = cls;
	struct pending *p = *state;
	(void)version;

	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return MHD_NO; /* closes the connection */
		*state = p;
		atomic_fetch_add(&s->in_flight, 1);
		p->limit = s->max_body;
		if (s->large_prefix && url && path_has_prefix(url, s->large_prefix))
			p->limit = s->large_max_body;
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(cl, &end, 10);
			if (!errno && end != cl && n > p->limit) {
				/* Refuse before reading: libmicrohttpd then closes the
				 * connection instead of reading the body. */
				p->too_large = true;
				return too_large(c, p->limit, n);
			}
			/* The whole body at once: an agent file piece (1.4 MB)
			 * would otherwise be copied by every doubling. */
			if (!errno && end != cl && n > 0 && (p->body = malloc((size_t)n + 1)))
				p->cap = (size_t)n + 1;
		}
		return MHD_YES;
	}

	if (*upload_size) {
		size_t n = *upload_size;
		p->received += n;
		*upload_size = 0;
		if (p->too_large)
			return MHD_YES; /* discarding */
		if (p->len + n > p->limit) {
			p->too_large = true;
			free(p->body);
			p->body = NULL;
			p->len = p->cap = 0;
			return MHD_YES;
		}
		if (p->len + n + 1 > p->cap) {
			size_t cap = p->cap ? p->cap : 1024;
			while (cap < p->len + n + 1)
				cap *= 2;
			if (cap > p->limit + 1)
				cap = p->limit + 1;
			char *nb = realloc(p->body, cap);
			if (!nb)
				return MHD_NO;
			p->body = nb;
			p->cap = cap;
		}
		memcpy(p->body + p->len, upload_data, n);
		p->len += n;
		return MHD_YES;
	}

	/* The whole request is here, or its own thread has answered it. */
	if (p->too_large)
		return too_large(c, p->limit, p->received);
	if (p->s) {
		pthread_mutex_lock(&s->lock);
		bool done = p->done;
		pthread_mutex_unlock(&s->lock);
		return done ? send_response(c, &p->resp) : MHD_YES;
	}
	struct api_request req = {
		.method = method_of(method),
		.method_name = method,
		.path = url ? url : "/",
		.body = p->body ? p->body : "",
		.body_len = p->len,
	};
	if (p->body)
		p->body[p->len] = 0;
	if (s->waits && s->waits(s->ctx, &req)) {
		start_own_call(s, p, c, &req);
		return MHD_YES;
	}
	struct api_response resp = { .status = 500 };
	s->handler(s->ctx, &req, &resp);
	return send_response(c, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
			 enum MHD_RequestTerminationCode why)
{
	struct api_server *s = cls;
	(void)c;
	(void)why;
	struct pending *p = *state;
	if (p) {
		free(p->body);
		free(p->resp.body);   /* an own call's answer that was not sent */
		free(p);
		*state = NULL;
		atomic_fetch_sub(&s->in_flight, 1);
	}
}

struct api_server *api_server_start(const struct api_server_config *cfg, char *err, size_t errlen)
{
	if (!cfg->handler || !cfg->socket_path) {
		snprintf(err, errlen, "API server: no handler or socket path");
		return NULL;
	}
	struct api_server *s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(cfg->socket_path))) {
		snprintf(err, errlen, "out of memory");
		free(s);
		return NULL;
	}
	s->max_body = cfg->max_body ? cfg->max_body : API_DEFAULT_MAX_BODY;
	s->large_prefix = cfg->large_prefix;
	s->large_max_body = cfg->large_max_body > s->max_body ? cfg->large_max_body : s->max_body;
	s->handler = cfg->handler;
	s->waits = cfg->waits;
	s->ctx = cfg->ctx;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);

	char why[400];
	int fd = unix_listen(cfg->socket_path, 64, &s->file, why, sizeof(why));
	if (fd < 0) {
		snprintf(err, errlen, "API socket path %s", why);
		free(s->path);
		free(s);
		return NULL;
	}

	unsigned maxc = cfg->max_connections ? cfg->max_connections : 32;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			 (cfg->waits ? MHD_ALLOW_SUSPEND_RESUME : 0);
	unsigned pool = cfg->pool_threads > 1 ? cfg->pool_threads : 0;
	/* Each thread of a pool takes an equal share of the connection limit. */
	if (pool && maxc < pool)
		maxc = pool;
	s->mhd = MHD_start_daemon(flags, 0,
				  NULL, NULL, on_request, s,
				  MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				  MHD_OPTION_THREAD_POOL_SIZE, pool,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)s,
				  MHD_OPTION_CONNECTION_LIMIT, maxc,
				  /* An idle or stalled client gives its slot back soon. */
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_IDLE_TIMEOUT_S,
				  MHD_OPTION_END);
	if (!s->mhd) {
		snprintf(err, errlen, "API socket path '%s': cannot start the HTTP server", cfg->socket_path);
		unlink(cfg->socket_path);
		/* The descriptor is not closed here: libmicrohttpd may already
		 * have closed it, and closing it twice could hit a reused one. */
		free(s->path);
		free(s);
		return NULL;
	}
	return s;
}

bool api_server_drain(struct api_server *s, unsigned timeout_ms)
{
	struct timespec step = { 0, 10 * 1000000L };
	for (unsigned waited = 0; atomic_load(&s->in_flight); waited += 10) {
		if (waited >= timeout_ms)
			return false;
		nanosleep(&step, NULL);
	}
	return true;
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	/* Requests on threads of their own first: each resumes its connection
	 * (libmicrohttpd must have none suspended when it stops). */
	pthread_mutex_lock(&s->lock);
	while (s->own_calls)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
	/* Their answers are queued on connections just resumed: stopping the
	 * daemon now would close those unsent (a guest agent call ended by
	 * the VM's poweroff reached its client as an empty reply). */
	api_server_drain(s, API_STOP_DRAIN_MS);
	MHD_stop_daemon(s->mhd); /* also closes the listening socket */
	/* Remove the socket file only if it is still ours. */
	unix_listen_remove(s->path, &s->file);
	free(s->path);
	free(s);
}

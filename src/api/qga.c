/*
 * The QGA client; see qga.h.
 *
 * Locking: call_lock serialises calls (one command in flight, as the
 * protocol requires). lock guards the reader and the state a call waits
 * on (replies are handed from the feeding thread through `done`).
 */
#include "api/qga.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "api/json_dump.h"
#include "api/qga_reader.h"
#include "base/clock.h"

enum wait_for { WAIT_NOTHING, WAIT_SYNC, WAIT_REPLY };

struct qga_client {
	struct qga_transport t;
	pthread_mutex_t call_lock;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct qga_reader reader;
	bool synced;
	bool closed;               /* qga_client_close: every call fails at once */
	enum wait_for waiting;
	int64_t sync_id;
	bool done;                 /* the awaited reply is in `reply` */
	enum qga_reply_kind kind;
	json_t *value;
	char err_class[64], err_desc[512];
};

/* Reader callback, lock held (qga_client_feed holds it). */
static void on_reply(void *ctx, const struct qga_reply *r)
{
	struct qga_client *c = ctx;
	if (c->waiting == WAIT_NOTHING || c->done) {
		/* Nobody asked: a late or unsolicited reply. The next call
		 * resynchronises so it cannot take this one's place. */
		c->synced = false;
		return;
	}
	if (c->waiting == WAIT_SYNC) {
		/* Everything before the answer with our id is stale. */
		if (r->kind == QGA_REPLY_RETURN && json_is_integer(r->value) &&
		    json_integer_value(r->value) == c->sync_id)
			c->done = true;
	} else {
		c->done = true;
		c->kind = r->kind;
		if (r->kind == QGA_REPLY_RETURN)
			c->value = json_incref(r->value);
		snprintf(c->err_class, sizeof(c->err_class), "%s", r->err_class);
		snprintf(c->err_desc, sizeof(c->err_desc), "%s", r->err_desc);
	}
	if (c->done)
		pthread_cond_broadcast(&c->cond);
}

struct qga_client *qga_client_new(const struct qga_transport *t)
{
	struct qga_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->t = *t;
	pthread_mutex_init(&c->call_lock, NULL);
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	qga_reader_init(&c->reader, QGA_REPLY_SMALL, on_reply, c);
	return c;
}

void qga_client_free(struct qga_client *c)
{
	if (!c)
		return;
	qga_reader_free(&c->reader);
	json_decref(c->value);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->call_lock);
	free(c);
}

void qga_client_feed(struct qga_client *c, const uint8_t *buf, size_t n)
{
	pthread_mutex_lock(&c->lock);
	if (c->waiting == WAIT_NOTHING) {
		/* Nothing is awaited: keep only the framing in step (cheaply:
		 * no reply can be kept anyway, so a tiny limit). */
		if (c->reader.limit != 1)
			qga_reader_set_limit(&c->reader, 1);
	}
	qga_reader_feed(&c->reader, buf, n);
	pthread_mutex_unlock(&c->lock);
}

void qga_client_reset(struct qga_client *c)
{
	pthread_mutex_lock(&c->lock);
	c->synced = false;
	qga_reader_reset(&c->reader);
	pthread_mutex_unlock(&c->lock);
}

void qga_client_close(struct qga_client *c)
{
	pthread_mutex_lock(&c->lock);
	c->closed = true;
	c->synced = false;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Wait (lock held) until done, closed or the deadline. */
static bool wait_done(struct qga_client *c, uint64_t deadline)
{
	while (!c->done && !c->closed) {
		uint64_t now = clock_monotonic_ns();
		if (now >= deadline)
			return false;
		struct timespec ts = clock_timespec(deadline);
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	return c->done;
}

/* The message of a wait that ended without its reply (lock held). */
static enum qga_status not_answered(struct qga_client *c, const char *what, char *err, size_t errlen)
{
	if (c->closed) {
		snprintf(err, errlen, "%s: the guest agent's channel was closed while waiting for the answer", what);
		return QGA_E_CHANNEL;
	}
	return QGA_E_TIMEOUT;
}

/* Start waiting for `w` (lock held): clear the last result. */
static void expect(struct qga_client *c, enum wait_for w, size_t limit)
{
	c->waiting = w;
	c->done = false;
	json_decref(c->value);
	c->value = NULL;
	qga_reader_set_limit(&c->reader, limit);
}

static enum qga_status send_text(struct qga_client *c, const char *text, size_t n, uint64_t deadline,
				 const char *cmd, char *err, size_t errlen)
{
	int r = c->t.send(c->t.ctx, text, n, deadline);
	if (r == 0)
		return QGA_OK;
	if (r == -ETIMEDOUT) {
		snprintf(err, errlen, "%s: the guest agent does not read its channel (timed out)", cmd);
		return QGA_E_TIMEOUT;
	}
	snprintf(err, errlen, "%s: the guest agent's channel failed: %s", cmd, strerror(-r));
	return QGA_E_CHANNEL;
}

/* Resynchronise (call_lock held) unless in step already. */
static enum qga_status sync_channel(struct qga_client *c, uint64_t deadline, const char *cmd,
				    char *err, size_t errlen)
{
	pthread_mutex_lock(&c->lock);
	bool synced = c->synced;
	pthread_mutex_unlock(&c->lock);
	if (synced)
		return QGA_OK;
	uint64_t sync_deadline = clock_monotonic_ns() + QGA_SYNC_TIMEOUT_MS * 1000000ull;
	if (sync_deadline > deadline)
		sync_deadline = deadline;
	int64_t id = 0;
	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id))
		id = (int64_t)clock_monotonic_ns();
	id &= INT64_MAX >> 1;   /* a positive id any JSON reader keeps exactly */
	char req[128];
	int n = snprintf(req, sizeof(req),
			 "\xff{\"execute\": \"guest-sync-delimited\", \"arguments\": {\"id\": %lld}}\n",
			 (long long)id);
	pthread_mutex_lock(&c->lock);
	qga_reader_reset(&c->reader);
	c->sync_id = id;
	expect(c, WAIT_SYNC, QGA_REPLY_SMALL);
	pthread_mutex_unlock(&c->lock);
	enum qga_status st = send_text(c, req, (size_t)n, sync_deadline, cmd, err, errlen);
	pthread_mutex_lock(&c->lock);
	if (st == QGA_OK && !wait_done(c, sync_deadline)) {
		snprintf(err, errlen, "%s: the guest agent does not answer (guest-sync-delimited timed out)", cmd);
		st = not_answered(c, cmd, err, errlen);
	}
	c->synced = st == QGA_OK;
	c->waiting = WAIT_NOTHING;
	pthread_mutex_unlock(&c->lock);
	return st;
}

static char *request_text(const char *cmd, const json_t *args)
{
	json_t *req = json_pack("{s:s}", "execute", cmd);
	if (req && args)
		json_object_set(req, "arguments", (json_t *)args);
	char *s = json_dump_text(req);   /* a file piece: 1.4 MB of base64 */
	json_decref(req);
	return s;
}

static bool connected(struct qga_client *c, const char *cmd, char *err, size_t errlen)
{
	pthread_mutex_lock(&c->lock);
	bool closed = c->closed;
	pthread_mutex_unlock(&c->lock);
	if (closed) {
		snprintf(err, errlen, "%s: the guest agent's channel is closed", cmd);
		return false;
	}
	if (!c->t.connected || c->t.connected(c->t.ctx))
		return true;
	snprintf(err, errlen, "%s: no guest agent is connected (the guest has not opened its agent port)", cmd);
	qga_client_reset(c);
	return false;
}

enum qga_status qga_call(struct qga_client *c, const char *cmd, const json_t *args,
			 size_t max_reply, unsigned timeout_ms, json_t **ret,
			 char *err, size_t errlen, char *err_class, size_t classlen)
{
	*ret = NULL;
	if (err_class && classlen)
		err_class[0] = 0;
	uint64_t deadline = clock_monotonic_ns() + (uint64_t)timeout_ms * 1000000ull;
	pthread_mutex_lock(&c->call_lock);
	if (!connected(c, cmd, err, errlen)) {
		pthread_mutex_unlock(&c->call_lock);
		return QGA_E_CHANNEL;
	}
	enum qga_status st = sync_channel(c, deadline, cmd, err, errlen);
	char *text = st == QGA_OK ? request_text(cmd, args) : NULL;
	if (st == QGA_OK && !text) {
		snprintf(err, errlen, "%s: out of memory", cmd);
		st = QGA_E_NOMEM;
	}
	if (st == QGA_OK) {
		pthread_mutex_lock(&c->lock);
		expect(c, WAIT_REPLY, max_reply);
		pthread_mutex_unlock(&c->lock);
		st = send_text(c, text, strlen(text), deadline, cmd, err, errlen);
		pthread_mutex_lock(&c->lock);
		if (st == QGA_OK && !wait_done(c, deadline)) {
			snprintf(err, errlen, "%s: the guest agent did not answer within %u ms", cmd, timeout_ms);
			st = not_answered(c, cmd, err, errlen);
		} else if (st == QGA_OK && c->kind == QGA_REPLY_RETURN) {
			*ret = c->value;
			c->value = NULL;
		} else if (st == QGA_OK && c->kind == QGA_REPLY_ERROR) {
			snprintf(err, errlen, "%s: %s", cmd, c->err_desc);
			if (err_class && classlen)
				snprintf(err_class, classlen, "%s", c->err_class);
			st = QGA_E_AGENT;
		} else if (st == QGA_OK) {
			snprintf(err, errlen, c->kind == QGA_REPLY_TOO_LARGE ?
				 "%s: the guest agent's reply is over %zu bytes" :
				 "%s: the guest agent's reply is not a QGA reply", cmd, max_reply);
			st = QGA_E_PROTOCOL;
		}
		if (st != QGA_OK && st != QGA_E_AGENT)
			c->synced = false;   /* where the stream stands is unknown now */
		c->waiting = WAIT_NOTHING;
		json_decref(c->value);
		c->value = NULL;
		qga_reader_set_limit(&c->reader, 1);
		pthread_mutex_unlock(&c->lock);
	}
	free(text);
	pthread_mutex_unlock(&c->call_lock);
	return st;
}

enum qga_status qga_send_only(struct qga_client *c, const char *cmd, const json_t *args,
			      unsigned timeout_ms, char *err, size_t errlen)
{
	uint64_t deadline = clock_monotonic_ns() + (uint64_t)timeout_ms * 1000000ull;
	pthread_mutex_lock(&c->call_lock);
	enum qga_status st = connected(c, cmd, err, errlen) ? sync_channel(c, deadline, cmd, err, errlen)
							      : QGA_E_CHANNEL;
	char *text = st == QGA_OK ? request_text(cmd, args) : NULL;
	if (st == QGA_OK && !text) {
		snprintf(err, errlen, "%s: out of memory", cmd);
		st = QGA_E_NOMEM;
	}
	if (st == QGA_OK)
		st = send_text(c, text, strlen(text), deadline, cmd, err, errlen);
	free(text);
	pthread_mutex_lock(&c->lock);
	c->synced = false;   /* an error reply may still come */
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->call_lock);
	return st;
}

/*
 * The MMDS data store and the guest's HTTP requests; see mmds.h. The
 * request parsing follows HTTP/1.1 (RFC 9112): a request line, header
 * lines up to an empty line, a body of Content-Length bytes; every answer
 * closes the connection.
 */
#include "vmm/mmds.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "base/clock.h"

#define MAX_TOKENS 64
#define TOKEN_CHARS 48              /* "mmds-" and 20 random bytes in hex */
#define TTL_MAX_S 21600             /* six hours, as Firecracker */

struct token {
	char text[TOKEN_CHARS + 1];
	uint64_t expires_ns;            /* CLOCK_MONOTONIC; 0: free slot */
};

struct mmds {
	pthread_mutex_t lock;
	json_t *doc;                    /* NULL until the first PUT */
	int version;
	bool imds_compat;
	struct token tokens[MAX_TOKENS];
};

struct mmds *mmds_new(void)
{
	struct mmds *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	m->version = 1;
	return m;
}

void mmds_free(struct mmds *m)
{
	if (!m)
		return;
	json_decref(m->doc);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void mmds_configure(struct mmds *m, int version, bool imds_compat)
{
	pthread_mutex_lock(&m->lock);
	m->version = version;
	m->imds_compat = imds_compat;
	pthread_mutex_unlock(&m->lock);
}

static int check_size(const json_t *doc, char *err, size_t errlen)
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t n = text ? strlen(text) : 0;
	free(text);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (n > MMDS_MAX_BYTES) {
		snprintf(err, errlen, "the MMDS data store would hold %zu bytes, more than its limit of %d",
			 n, MMDS_MAX_BYTES);
		return -1;
	}
	return 0;
}

int mmds_put(struct mmds *m, const json_t *doc, char *err, size_t errlen)
{
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "mmds: the data store must be a JSON object");
		return -1;
	}
	if (check_size(doc, err, errlen))
		return -1;
	json_t *copy = json_deep_copy(doc);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_lock(&m->lock);
	json_decref(m->doc);
	m->doc = copy;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* RFC 7396 section 2, MergePatch(target, patch) for an object patch,
 * applied to the object `target` in place. */
static int merge_patch(json_t *target, const json_t *patch)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)patch, k, v) {
		if (json_is_null(v)) {
			json_object_del(target, k);
		} else if (json_is_object(v)) {
			json_t *cur = json_object_get(target, k);
			if (!json_is_object(cur)) {
				cur = json_object();
				if (!cur || json_object_set_new(target, k, cur))
					return -1;
			}
			if (merge_patch(cur, v))
				return -1;
		} else {
			json_t *copy = json_deep_copy(v);
			if (!copy || json_object_set_new(target, k, copy))
				return -1;
		}
	}
	return 0;
}

int mmds_patch(struct mmds *m, const json_t *patch, char *err, size_t errlen)
{
	if (!json_is_object(patch)) {
		snprintf(err, errlen, "mmds: a patch must be a JSON object");
		return -1;
	}
	pthread_mutex_lock(&m->lock);
	json_t *next = m->doc ? json_deep_copy(m->doc) : json_object();
	int r = !next || merge_patch(next, patch) ? -1 : 0;
	if (r)
		snprintf(err, errlen, "out of memory");
	else if ((r = check_size(next, err, errlen)) == 0) {
		json_decref(m->doc);
		m->doc = next;
		next = NULL;
	}
	pthread_mutex_unlock(&m->lock);
	json_decref(next);
	return r;
}

json_t *mmds_get(struct mmds *m)
{
	pthread_mutex_lock(&m->lock);
	json_t *c = m->doc ? json_deep_copy(m->doc) : NULL;
	pthread_mutex_unlock(&m->lock);
	return c;
}

/* ---- tokens (lock held) ---- */

static const char *new_token(struct mmds *m, uint64_t ttl_s)
{
	uint64_t now = clock_monotonic_ns();
	struct token *slot = &m->tokens[0];
	for (unsigned i = 0; i < MAX_TOKENS; i++) {
		struct token *t = &m->tokens[i];
		if (t->expires_ns <= now) {
			slot = t;
			break;
		}
		if (t->expires_ns < slot->expires_ns)
			slot = t;   /* full: the one that expires first goes */
	}
	uint8_t raw[20];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return NULL;
	int n = snprintf(slot->text, sizeof(slot->text), "mmds-");
	for (size_t i = 0; i < sizeof(raw) && n + 2 < (int)sizeof(slot->text); i++)
		n += snprintf(slot->text + n, sizeof(slot->text) - (size_t)n, "%02x", raw[i]);
	slot->expires_ns = now + ttl_s * CLOCK_NS_PER_S;
	return slot->text;
}

static bool token_valid(struct mmds *m, const char *text)
{
	uint64_t now = clock_monotonic_ns();
	for (unsigned i = 0; text && i < MAX_TOKENS; i++)
		if (m->tokens[i].expires_ns > now && !strcmp(m->tokens[i].text, text))
			return true;
	return false;
}

/* ---- HTTP ---- */

struct request {
	char method[8];
	char path[512];
	char token[TOKEN_CHARS + 8];
	bool has_token, has_ttl, has_forwarded, wants_json;
	long long ttl;
	size_t content_length;
};

static int respond(uint8_t **out, size_t *out_len, int status, const char *reason,
		   const char *type, const char *body, size_t body_len)
{
	char head[256];
	int h = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nServer: skiff MMDS\r\nConnection: close\r\n"
			 "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
			 status, reason, type, body_len);
	*out = malloc((size_t)h + body_len);
	if (!*out) {
		*out_len = 0;
		return 0;
	}
	memcpy(*out, head, (size_t)h);
	memcpy(*out + h, body, body_len);
	*out_len = (size_t)h + body_len;
	return 0;
}

static int respond_text(uint8_t **out, size_t *out_len, int status, const char *reason,
			const char *text)
{
	return respond(out, out_len, status, reason, "text/plain", text, strlen(text));
}

/* One header line "Name: value" into r. */
static void header(struct request *r, const char *line, size_t n)
{
	const char *colon = memchr(line, ':', n);
	if (!colon)
		return;
	size_t klen = (size_t)(colon - line);
	const char *v = colon + 1;
	size_t vlen = n - klen - 1;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	char val[128];
	size_t c = vlen < sizeof(val) - 1 ? vlen : sizeof(val) - 1;
	memcpy(val, v, c);
	val[c] = 0;
#define IS(name) (klen == sizeof(name) - 1 && !strncasecmp(line, name, klen))
	if (IS("X-metadata-token")) {
		/* A longer value is no token of ours: it stays empty. */
		r->has_token = true;
		if (c < sizeof(r->token))
			memcpy(r->token, val, c + 1);
	} else if (IS("X-metadata-token-ttl-seconds")) {
		char *end;
		r->ttl = strtoll(val, &end, 10);
		r->has_ttl = *val && !*end;
	} else if (IS("X-Forwarded-For")) {
		r->has_forwarded = true;
	} else if (IS("Accept")) {
		r->wants_json = strstr(val, "application/json") != NULL;
	} else if (IS("Content-Length")) {
		char *end;
		unsigned long long cl = strtoull(val, &end, 10);
		r->content_length = *val && !*end && cl <= MMDS_MAX_REQUEST ? (size_t)cl : SIZE_MAX;
	}
#undef IS
}

/* Parse what has arrived: 1 incomplete, 0 complete, -1 malformed. */
static int parse(const uint8_t *buf, size_t len, struct request *r)
{
	memset(r, 0, sizeof(*r));
	const char *s = (const char *)buf;
	const char *end = memmem(s, len, "\r\n\r\n", 4);
	if (!end)
		return len >= MMDS_MAX_REQUEST ? -1 : 1;
	const char *eol = memmem(s, (size_t)(end - s) + 2, "\r\n", 2);
	char line[640];
	size_t n = (size_t)(eol - s);
	if (n >= sizeof(line))
		return -1;
	memcpy(line, s, n);
	line[n] = 0;
	char version[16];
	if (sscanf(line, "%7s %511s %15s", r->method, r->path, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) || memchr(line, 0, n))
		return -1;
	for (const char *p = eol + 2; p < end + 2;) {
		const char *q = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
		header(r, p, (size_t)(q - p));
		p = q + 2;
	}
	if (r->content_length == SIZE_MAX)
		return -1;
	size_t total = (size_t)(end - s) + 4 + r->content_length;
	return total > MMDS_MAX_REQUEST ? -1 : len < total ? 1 : 0;
}

/* The value at `path` (segments split by '/'; a query string ignored). */
static const json_t *lookup(const json_t *doc, char *path)
{
	char *q = strchr(path, '?');
	if (q)
		*q = 0;
	const json_t *v = doc;
	for (char *save = NULL, *seg = strtok_r(path, "/", &save); seg && v;
	     seg = strtok_r(NULL, "/", &save))
		v = json_is_object(v) ? json_object_get(v, seg) : NULL;
	return v;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* EC2 IMDS's text form; NULL for a value it has no form for. */
static char *imds_text(const json_t *v)
{
	if (json_is_string(v))
		return strdup(json_string_value(v));
	if (!json_is_object(v))
		return NULL;
	size_t n = json_object_size(v), k = 0, total = 1;
	const char **keys = calloc(n ? n : 1, sizeof(*keys));
	if (!keys)
		return NULL;
	const char *key;
	json_t *e;
	json_object_foreach((json_t *)v, key, e) {
		keys[k++] = key;
		total += strlen(key) + 2;
	}
	qsort(keys, n, sizeof(*keys), cmp_str);
	char *out = malloc(total), *p = out;
	for (size_t i = 0; out && i < n; i++)
		p += sprintf(p, "%s%s%s", i ? "\n" : "", keys[i],
			     json_is_object(json_object_get(v, keys[i])) ? "/" : "");
	if (out)
		*p = 0;
	free(keys);
	return out;
}

int mmds_http(struct mmds *m, const uint8_t *req, size_t len, bool eof, uint8_t **resp,
	      size_t *resp_len)
{
	struct request r;
	int p = parse(req, len, &r);
	if (p == 1 && !eof)
		return 1;
	if (p != 0)
		return respond_text(resp, resp_len, 400, "Bad Request", "The request is not valid HTTP.");
	pthread_mutex_lock(&m->lock);
	int rc;
	if (!strcmp(r.method, "PUT") && !strcmp(r.path, "/latest/api/token")) {
		/* Not through a proxy (Firecracker refuses those too). */
		const char *tok = NULL;
		if (r.has_forwarded)
			rc = respond_text(resp, resp_len, 400, "Bad Request",
					  "Invalid header. Reason: Unsupported header name. Key: X-Forwarded-For");
		else if (!r.has_ttl || r.ttl < 1 || r.ttl > TTL_MAX_S)
			rc = respond_text(resp, resp_len, 400, "Bad Request",
					  "Token time to live value is invalid (X-metadata-token-ttl-seconds: "
					  "1 to 21600).");
		else if (!(tok = new_token(m, (uint64_t)r.ttl)))
			rc = respond_text(resp, resp_len, 500, "Internal Server Error", "no randomness");
		else
			rc = respond_text(resp, resp_len, 200, "OK", tok);
	} else if (strcmp(r.method, "GET")) {
		rc = respond_text(resp, resp_len, 405, "Method Not Allowed", "Not allowed HTTP method.");
	} else if (m->version == 2 && !(r.has_token && token_valid(m, r.token))) {
		rc = respond_text(resp, resp_len, 401, "Unauthorized",
				  r.has_token ? "MMDS token not valid." : "No MMDS token provided. Use "
				  "`X-metadata-token` header to specify the session token.");
	} else {
		const json_t *v = m->doc ? lookup(m->doc, r.path) : NULL;
		char *body = NULL;
		bool as_json = r.wants_json && !m->imds_compat;
		if (!v)
			rc = respond_text(resp, resp_len, 404, "Not Found", "Resource not found.");
		else if (as_json && (body = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)))
			rc = respond(resp, resp_len, 200, "OK", "application/json", body, strlen(body));
		else if (!as_json && (body = imds_text(v)))
			rc = respond(resp, resp_len, 200, "OK", "text/plain", body, strlen(body));
		else
			rc = respond_text(resp, resp_len, 501, "Not Implemented",
					  "Cannot retrieve value. The value has an unsupported type.");
		free(body);
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

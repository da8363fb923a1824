/*
 * HTTP over a Unix socket with libcurl; see uhttp.h.
 *
 * libcurl is loaded when uhttp_global_init() runs, not linked: the `skiff`
 * program is both the client and the VMM (`skiff run`), and linking libcurl
 * would map it and the libraries behind it (OpenSSL, Kerberos, LDAP, ...)
 * into every VMM process: 3.2 MiB of resident memory, measured, for code a
 * VMM never calls.
 */
#include "daemon/uhttp.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <errno.h>

#include <curl/curl.h>

/* The libcurl calls used here; set once by uhttp_global_init(). */
static struct {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *c, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *c);
	CURLcode (*easy_getinfo)(CURL *c, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *c);
	const char *(*easy_strerror)(CURLcode rc);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
} curl;

struct sink {
	char *buf;
	size_t len, cap;
	bool too_big;
	char *content_type;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct sink *s = ctx;
	size_t n = size * nmemb;
	if (s->len + n + 1 > UHTTP_MAX_REPLY) {
		s->too_big = true;
		return 0; /* makes libcurl stop with an error */
	}
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->len + n + 1)
			cap *= 2;
		char *nb = realloc(s->buf, cap);
		if (!nb)
			return 0;
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, n);
	s->len += n;
	s->buf[s->len] = 0;
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct sink *s = ctx;
	size_t n = size * nmemb;
	static const char name[] = "content-type:";
	if (n > sizeof(name) - 1 && !strncasecmp(data, name, sizeof(name) - 1)) {
		const char *v = data + sizeof(name) - 1;
		size_t vl = n - (sizeof(name) - 1);
		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		free(s->content_type);
		s->content_type = strndup(v, vl);
	}
	return n;
}

int uhttp_global_init(char *err, size_t errlen)
{
	if (curl.easy_init)
		return 0;
	/* The soname of libcurl's ABI 4, the one every libcurl since 7.16 has. */
	void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(err, errlen, "cannot load libcurl: %s", dlerror());
		return -1;
	}
	__typeof__(curl) c;
	struct { void **fn; const char *name; } syms[] = {
		{ (void **)&c.global_init, "curl_global_init" },
		{ (void **)&c.easy_init, "curl_easy_init" },
		{ (void **)&c.easy_setopt, "curl_easy_setopt" },
		{ (void **)&c.easy_perform, "curl_easy_perform" },
		{ (void **)&c.easy_getinfo, "curl_easy_getinfo" },
		{ (void **)&c.easy_cleanup, "curl_easy_cleanup" },
		{ (void **)&c.easy_strerror, "curl_easy_strerror" },
		{ (void **)&c.slist_append, "curl_slist_append" },
		{ (void **)&c.slist_free_all, "curl_slist_free_all" },
	};
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		*syms[i].fn = dlsym(lib, syms[i].name);
		if (!*syms[i].fn) {
			snprintf(err, errlen, "libcurl has no %s", syms[i].name);
			dlclose(lib);
			return -1;
		}
	}
	if (c.global_init(CURL_GLOBAL_NOTHING) != CURLE_OK) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return -1;
	}
	curl = c;
	return 0;
}

/* "http://localhost" + path with bytes outside the URL's safe set encoded. */
static char *make_url(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(path);
	char *u = malloc(sizeof("http://localhost") + 3 * n + 2);
	if (!u)
		return NULL;
	char *o = u + sprintf(u, "http://localhost");
	if (path[0] != '/')
		*o++ = '/';
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("/-._~", *p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = 0;
	return u;
}

/* libcurl's progress callback: called at least once a second while a
 * transfer waits; non-zero makes it stop with CURLE_ABORTED_BY_CALLBACK. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load((const atomic_bool *)ctx) ? 1 : 0;
}

int uhttp_call(const char *sock, const char *method, const char *path, const char *body,
	       long timeout_ms, struct uhttp_reply *out, char *err, size_t errlen)
{
	return uhttp_call_cancel(sock, method, path, body, timeout_ms, NULL, out, err, errlen);
}

int uhttp_call_cancel(const char *sock, const char *method, const char *path, const char *body,
		      long timeout_ms, const atomic_bool *cancel, struct uhttp_reply *out, char *err,
		      size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!curl.easy_init) {
		snprintf(err, errlen, "libcurl is not loaded (uhttp_global_init)");
		return -1;
	}
	CURL *c = curl.easy_init();
	char *url = make_url(path);
	struct curl_slist *hdr = NULL;
	if (!c || !url) {
		snprintf(err, errlen, "out of memory");
		curl.easy_cleanup(c);
		free(url);
		return -1;
	}
	struct sink s = { 0 };
	char cerr[CURL_ERROR_SIZE] = "";
	hdr = curl.slist_append(hdr, "Accept: application/json");
	if (body) {
		hdr = curl.slist_append(hdr, "Content-Type: application/json");
		hdr = curl.slist_append(hdr, "Expect:"); /* no 100-continue round trip */
	}
	curl.easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl.easy_setopt(c, CURLOPT_URL, url);
	curl.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl.easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	} else if (!strcmp(method, "GET")) {
		curl.easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	curl.easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl.easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl.easy_setopt(c, CURLOPT_HEADERDATA, &s);
	curl.easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl.easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
	curl.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	if (cancel) {
		curl.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl.easy_setopt(c, CURLOPT_XFERINFODATA, (void *)cancel);
		curl.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	}
	CURLcode rc = curl.easy_perform(c);
	if (rc != CURLE_OK) {
		struct stat st;
		if (rc == CURLE_ABORTED_BY_CALLBACK)
			snprintf(err, errlen, "cancelled");
		else if (rc == CURLE_COULDNT_CONNECT && stat(sock, &st))
			/* libcurl's words name "localhost port 80": say what the
			 * Unix socket is missing. */
			snprintf(err, errlen, "no socket at %s (%s)", sock, strerror(errno));
		else if (rc == CURLE_COULDNT_CONNECT && !S_ISSOCK(st.st_mode))
			snprintf(err, errlen, "%s is not a socket", sock);
		else if (rc == CURLE_COULDNT_CONNECT)
			snprintf(err, errlen, "nothing listens on the socket %s (connection refused)", sock);
		else if (s.too_big)
			snprintf(err, errlen, "the answer is larger than %u MiB", UHTTP_MAX_REPLY >> 20);
		else
			snprintf(err, errlen, "%s", cerr[0] ? cerr : curl.easy_strerror(rc));
		free(s.buf);
		free(s.content_type);
	} else {
		curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
		out->body = s.buf ? s.buf : strdup("");
		out->len = s.len;
		out->content_type = s.content_type;
		if (!out->body) {
			snprintf(err, errlen, "out of memory");
			free(s.content_type);
			rc = CURLE_OUT_OF_MEMORY;
			memset(out, 0, sizeof(*out));
		}
	}
	curl.slist_free_all(hdr);
	curl.easy_cleanup(c);
	free(url);
	return rc == CURLE_OK ? 0 : -1;
}

void uhttp_reply_free(struct uhttp_reply *r)
{
	free(r->body);
	free(r->content_type);
	r->body = NULL;
	r->content_type = NULL;
}

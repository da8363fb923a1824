/*
 * Targets and calls for the agent commands; see agent_call.h.
 */
#include "cli/agent_call.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/json_dump.h"
#include "api/json_load.h"
#include "base/base64.h"
#include "daemon/paths.h"
#include "daemon/uhttp.h"

int target_open(struct target *t, const char *cmd, const char *vm, const char *skiffd_socket)
{
	memset(t, 0, sizeof(*t));
	t->cmd = cmd;
	t->vm = vm;
	char err[256];
	if (uhttp_global_init(err, sizeof(err))) {
		fprintf(stderr, "skiff %s: %s\n", cmd, err);
		return -1;
	}
	if (strchr(vm, '/')) {
		t->sock = strdup(vm);
		t->prefix = strdup("");
	} else {
		const char *env = getenv("SKIFF_SOCKET");
		t->skiffd = true;
		t->sock = skiffd_socket ? strdup(skiffd_socket) : env && *env ? strdup(env) : skiffd_default_socket();
		if (asprintf(&t->prefix, "/vms/%s", vm) < 0)
			t->prefix = NULL;
	}
	if (!t->sock || !t->prefix) {
		fprintf(stderr, "skiff %s: out of memory\n", cmd);
		target_close(t);
		return -1;
	}
	return 0;
}

void target_close(struct target *t)
{
	free(t->sock);
	free(t->prefix);
	t->sock = t->prefix = NULL;
}

int target_call(struct target *t, const char *method, const char *path, json_t *body, long timeout_ms,
		json_t **out, long *status, char *err, size_t errlen)
{
	if (out)
		*out = NULL;
	*status = 0;
	char *text = json_dump_text(body);   /* file and input data: long base64 strings */
	json_decref(body);
	char *full = NULL;
	if ((body && !text) || asprintf(&full, "%s%s", t->prefix, path) < 0) {
		free(text);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	struct uhttp_reply r;
	int rc = uhttp_call(t->sock, method, full, text, timeout_ms, &r, err, errlen);
	free(text);
	free(full);
	if (rc) {
		char why[512];
		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "cannot reach %s at %s: %s", t->skiffd ? "skiffd" : "the VM's API",
			 t->sock, why);
		return -1;
	}
	*status = r.status;
	/* a file piece read: 1.4 MB of base64 (api/json_load.h) */
	json_t *j = r.len ? json_load_plain(r.body, r.len, NULL) : NULL;
	if (r.len && !j)
		j = json_loads(r.body, 0, NULL);
	if (r.status < 200 || r.status >= 300) {
		const char *fm = json_string_value(json_object_get(j, "fault_message"));
		if (fm)
			snprintf(err, errlen, "%s", fm);
		else
			snprintf(err, errlen, "the API answered %ld: %.300s", r.status, r.body);
		json_decref(j);
		uhttp_reply_free(&r);
		return -1;
	}
	if (r.len && !j) {
		snprintf(err, errlen, "the API's answer is not JSON");
		uhttp_reply_free(&r);
		return -1;
	}
	uhttp_reply_free(&r);
	if (out)
		*out = j;
	else
		json_decref(j);
	return 0;
}

json_t *b64_json(const void *data, size_t n)
{
	size_t m = base64_encoded_len(n);
	char *s = malloc(m + 1);
	if (!s)
		return NULL;
	base64_encode(data, n, s);
	s[m] = 0;
	json_t *j = json_stringn_nocheck(s, m);
	free(s);
	return j;
}

long b64_decode_json(const json_t *s, uint8_t **out)
{
	*out = NULL;
	if (!json_is_string(s))
		return -1;
	size_t n = json_string_length(s);
	uint8_t *buf = malloc(n / 4 * 3 + 3);
	if (!buf)
		return -1;
	long r = base64_decode(json_string_value(s), n, buf);
	if (r < 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	return r;
}

int guest_run(struct target *t, const char *const *argv, char **out, size_t *outlen, int *exitcode,
	      char *err, size_t errlen)
{
	json_t *args = json_array();
	for (size_t i = 1; argv[i]; i++)
		json_array_append_new(args, json_string(argv[i]));
	json_t *res = NULL;
	long st;
	if (target_call(t, "PUT", "/agent/exec", json_pack("{s:s,s:o,s:b}", "path", argv[0], "args", args,
							   "capture_output", 1),
			30000, &res, &st, err, errlen))
		return -1;
	json_int_t pid = json_integer_value(json_object_get(res, "pid"));
	json_decref(res);
	char path[64];
	snprintf(path, sizeof(path), "/agent/exec/%lld", (long long)pid);
	for (int tries = 0; tries < 6000; tries++) {
		if (target_call(t, "PUT", path, json_pack("{s:b}", "stream", 0), 30000, &res, &st, err, errlen))
			return -1;
		if (json_is_true(json_object_get(res, "exited"))) {
			uint8_t *data = NULL;
			long n = json_object_get(res, "out_data") ? b64_decode_json(json_object_get(res, "out_data"), &data) : 0;
			json_t *code = json_object_get(res, "exitcode");
			*exitcode = json_is_integer(code) ? (int)json_integer_value(code) : -1;
			json_decref(res);
			if (n < 0) {
				snprintf(err, errlen, "the agent's output of %s is not base64", argv[0]);
				return -1;
			}
			*out = (char *)data;
			*outlen = (size_t)n;
			return 0;
		}
		json_decref(res);
		struct timespec ts = { 0, 50 * 1000000 };
		nanosleep(&ts, NULL);
	}
	snprintf(err, errlen, "%s did not finish in the guest", argv[0]);
	return -1;
}

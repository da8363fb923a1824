/*
 * The /agent routes of the per-VM API; see api_agent.h. Field names here
 * are the API's (snake_case); the QGA names (kebab-case) appear only in
 * what is sent to the agent.
 */
#include "vmm/api_agent.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/json_check.h"
#include "api/json_dump.h"
#include "api/qga.h"
#include "base/clock.h"
#include "vmm/agent.h"
#include "vmm/api_call.h"
#include "vmm/devices.h"
#include "vmm/vmm_core.h"

#define PING_TIMEOUT_MS 2000
#define CALL_TIMEOUT_MS 10000
#define FILE_TIMEOUT_MS 30000
#define HASH_TIMEOUT_MS 600000
#define EXEC_IO_COUNT_MAX (1u << 20)
/* A stock guest-exec-status carries all output at once (QEMU's agent keeps
 * up to 16 MiB a stream); a reply over this is refused. */
#define EXEC_STATUS_REPLY_MAX (24u << 20)
#define FILE_CHUNK_MAX (1u << 20)

struct req {
	struct vm_agent *agent;
	uint64_t closes;           /* v->agent_closes when the call began */
	struct api_response *resp;
	const json_t *body;
	const char *id;            /* the path's {id}, if the route has one */
	bool set;                  /* PUT (time, clipboard): set, not read */
	char err[1024];
};

static void fault(struct req *r, unsigned status, const char *msg)
{
	api_respond_fault(r->resp, status, "%s", msg);
}

static void ok_json(struct req *r, json_t *v)
{
	char *s = json_dump_text(v);   /* file and exec data: long base64 strings */
	json_decref(v);
	if (!s)
		api_respond_fault(r->resp, 500, "out of memory");
	else
		api_respond_text(r->resp, 200, s);
}

/* One QGA call; NULL after answering the request with the failure. Takes
 * `args` (may be NULL). */
static json_t *call(struct req *r, const char *cmd, json_t *args, size_t max_reply, unsigned timeout_ms)
{
	json_t *ret = NULL;
	enum qga_status st = qga_call(vm_agent_client(r->agent), cmd, args, max_reply, timeout_ms,
				      &ret, r->err, sizeof(r->err), NULL, 0);
	json_decref(args);
	if (st == QGA_OK)
		return ret;
	fault(r, st == QGA_E_AGENT ? 400 : 503, r->err);
	return NULL;
}

/* A member of an agent's reply, of the wanted JSON type, or NULL after
 * answering 502: what the guest said is not what QGA defines. */
static json_t *member(struct req *r, json_t *obj, const char *cmd, const char *name, json_type type)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, name) : NULL;
	if (v && json_typeof(v) == type)
		return v;
	snprintf(r->err, sizeof(r->err), "%s: the guest agent's reply has no valid '%s'", cmd, name);
	fault(r, 502, r->err);
	return NULL;
}

static bool check(struct req *r, const struct api_field *fields, const char *where)
{
	if (!api_json_check_object(r->body, fields, where, r->err, sizeof(r->err)))
		return true;
	fault(r, 400, r->err);
	return false;
}

/* An id from the path (pid, handle): a decimal integer. */
static bool path_id(struct req *r, const char *s, const char *what, json_int_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || !*s || *end || v < 0) {
		snprintf(r->err, sizeof(r->err), "The %s in the path must be a non-negative integer.", what);
		fault(r, 400, r->err);
		return false;
	}
	*out = v;
	return true;
}

/* Whether the agent lists command `name` in guest-info. */
static bool has_command(json_t *info, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(info, "supported_commands"), i, c) {
		const char *n = json_string_value(json_object_get(c, "name"));
		if (n && !strcmp(n, name) && !json_is_false(json_object_get(c, "enabled")))
			return true;
	}
	return false;
}

/* ------------------------------------------------------------ GET /agent */

/* The last clock sync (after a resume, restore or host suspend). */
static json_t *clock_json(struct vm_agent *a)
{
	struct vm_agent_clock c;
	vm_agent_clock_status(a, &c);
	json_t *o = json_pack("{s:b}", "pending", c.pending);
	if (c.why[0]) {
		json_object_set_new(o, "last", json_string(c.why));
		json_object_set_new(o, "ok", json_boolean(c.ok));
		if (!c.ok)
			json_object_set_new(o, "error", json_string(c.error));
	}
	return o;
}

static void agent_info(struct req *r)
{
	bool connected = vm_agent_connected(r->agent);
	json_t *o = json_pack("{s:b,s:b,s:o}", "connected", connected, "answering", 0, "clock_sync",
			      clock_json(r->agent));
	if (connected) {
		json_t *ret = NULL;
		enum qga_status st = qga_call(vm_agent_client(r->agent), "guest-info", NULL, QGA_REPLY_SMALL,
					      PING_TIMEOUT_MS, &ret, r->err, sizeof(r->err), NULL, 0);
		if (st == QGA_OK) {
			json_object_set_new(o, "answering", json_true());
			const char *ver = json_string_value(json_object_get(ret, "version"));
			if (ver)
				json_object_set_new(o, "version", json_string(ver));
			json_object_set_new(o, "exec_stream", json_boolean(has_command(ret, "guest-exec-io")));
			json_object_set_new(o, "clipboard", json_boolean(has_command(ret, "guest-clipboard-get")));
			json_object_set_new(o, "file_hash", json_boolean(has_command(ret, "guest-file-hash")));
		} else {
			json_object_set_new(o, "error", json_string(r->err));
		}
		json_decref(ret);
	}
	ok_json(r, o);
}

/* ------------------------------------------------------------ exec */

static const struct api_field exec_fields[] = {
	{ "path", API_T_STRING, true },
	{ "args", API_T_ARRAY, false, NULL, API_T_STRING, 4096 },
	{ "env", API_T_ARRAY, false, NULL, API_T_STRING, 4096 },
	{ "input_data", API_T_STRING },
	{ "capture_output", API_T_BOOL },
	{ "stream", API_T_BOOL },
	{ "tty", API_T_BOOL },
	{ "rows", API_T_UINT },
	{ "cols", API_T_UINT },
	{ NULL }
};

static void exec_start(struct req *r)
{
	if (!check(r, exec_fields, "exec"))
		return;
	bool stream = api_json_bool(r->body, "stream", false);
	bool tty = api_json_bool(r->body, "tty", false);
	if (tty && !stream) {
		fault(r, 400, "exec.tty: a terminal needs \"stream\": true");
		return;
	}
	json_t *a = json_pack("{s:s}", "path", api_json_string(r->body, "path"));
	const json_t *v;
	if ((v = api_json_member(r->body, "args")))
		json_object_set(a, "arg", (json_t *)v);
	if ((v = api_json_member(r->body, "env")))
		json_object_set(a, "env", (json_t *)v);
	uint64_t n;
	if (stream) {
		if (api_json_member(r->body, "input_data") || api_json_member(r->body, "capture_output")) {
			json_decref(a);
			fault(r, 400, "exec: input_data and capture_output are for \"stream\": false "
				      "(a streamed process takes input through PUT /agent/exec/{pid})");
			return;
		}
		if (tty)
			json_object_set_new(a, "tty", json_true());
		if (api_json_uint(r->body, "rows", &n))
			json_object_set_new(a, "rows", json_integer((json_int_t)(n > 10000 ? 10000 : n)));
		if (api_json_uint(r->body, "cols", &n))
			json_object_set_new(a, "cols", json_integer((json_int_t)(n > 10000 ? 10000 : n)));
	} else {
		if ((v = api_json_member(r->body, "input_data")))
			json_object_set(a, "input-data", (json_t *)v);
		json_object_set_new(a, "capture-output",
				    json_boolean(api_json_bool(r->body, "capture_output", true)));
	}
	const char *cmd = stream ? "guest-exec-stream" : "guest-exec";
	json_t *ret = call(r, cmd, a, QGA_REPLY_SMALL, CALL_TIMEOUT_MS);
	json_t *pid = ret ? member(r, ret, cmd, "pid", JSON_INTEGER) : NULL;
	if (pid)
		ok_json(r, json_pack("{s:I,s:b}", "pid", json_integer_value(pid), "stream", stream));
	json_decref(ret);
}

static const struct api_field exec_io_fields[] = {
	{ "stream", API_T_BOOL },
	{ "input_data", API_T_STRING },
	{ "input_close", API_T_BOOL },
	{ "wait_ms", API_T_UINT },
	{ "count", API_T_UINT },
	{ "signal", API_T_UINT },
	{ "rows", API_T_UINT },
	{ "cols", API_T_UINT },
	{ NULL }
};

/* Copy the members of a guest-exec-status / guest-exec-io reply the API
 * passes on, checking their types. */
static json_t *exec_result(struct req *r, json_t *ret, const char *cmd)
{
	json_t *exited = member(r, ret, cmd, "exited", json_is_true(json_object_get(ret, "exited")) ? JSON_TRUE : JSON_FALSE);
	if (!exited)
		return NULL;
	json_t *o = json_pack("{s:O}", "exited", exited);
	static const struct { const char *qga, *api; json_type t; } m[] = {
		{ "exitcode", "exitcode", JSON_INTEGER }, { "signal", "signal", JSON_INTEGER },
		{ "out-data", "out_data", JSON_STRING }, { "err-data", "err_data", JSON_STRING },
		{ "input-count", "input_count", JSON_INTEGER },
		{ "out-truncated", "out_truncated", JSON_TRUE }, { "err-truncated", "err_truncated", JSON_TRUE },
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		json_t *v = json_object_get(ret, m[i].qga);
		if (!v)
			continue;
		bool ok = m[i].t == JSON_TRUE ? json_is_boolean(v) : json_typeof(v) == m[i].t;
		if (!ok) {
			snprintf(r->err, sizeof(r->err), "%s: the guest agent's reply has an invalid '%s'",
				 cmd, m[i].qga);
			fault(r, 502, r->err);
			json_decref(o);
			return NULL;
		}
		json_object_set(o, m[i].api, v);
	}
	return o;
}

static void exec_io(struct req *r)
{
	json_int_t pid;
	if (!path_id(r, r->id, "pid", &pid))
		return;
	if (!check(r, exec_io_fields, "exec"))
		return;
	bool stream = api_json_bool(r->body, "stream", true);
	uint64_t sig = 0, rows = 0, cols = 0, wait = 0, count = EXEC_IO_COUNT_MAX;
	bool has_sig = api_json_uint(r->body, "signal", &sig);
	bool has_rows = api_json_uint(r->body, "rows", &rows), has_cols = api_json_uint(r->body, "cols", &cols);
	api_json_uint(r->body, "wait_ms", &wait);
	api_json_uint(r->body, "count", &count);
	if (wait > 5000)
		wait = 5000;
	if (count == 0 || count > EXEC_IO_COUNT_MAX)
		count = EXEC_IO_COUNT_MAX;
	if (!stream) {
		json_t *ret = call(r, "guest-exec-status", json_pack("{s:I}", "pid", pid),
				   EXEC_STATUS_REPLY_MAX, CALL_TIMEOUT_MS);
		json_t *o = ret ? exec_result(r, ret, "guest-exec-status") : NULL;
		if (o)
			ok_json(r, o);
		json_decref(ret);
		return;
	}
	if (has_sig) {
		json_t *ret = call(r, "guest-exec-kill", json_pack("{s:I,s:I}", "pid", pid, "signal", (json_int_t)sig),
				   QGA_REPLY_SMALL, CALL_TIMEOUT_MS);
		if (!ret)
			return;
		json_decref(ret);
	}
	if (has_rows || has_cols) {
		json_t *ret = call(r, "guest-exec-resize", json_pack("{s:I,s:I,s:I}", "pid", pid, "rows",
								    (json_int_t)rows, "cols", (json_int_t)cols),
				   QGA_REPLY_SMALL, CALL_TIMEOUT_MS);
		if (!ret)
			return;
		json_decref(ret);
	}
	json_t *a = json_pack("{s:I,s:I,s:I}", "pid", pid, "wait-ms", (json_int_t)wait, "count", (json_int_t)count);
	const json_t *in = api_json_member(r->body, "input_data");
	if (in)
		json_object_set(a, "input-data", (json_t *)in);
	if (api_json_bool(r->body, "input_close", false))
		json_object_set_new(a, "input-close", json_true());
	/* two streams of `count` bytes in base64, and the rest */
	size_t max_reply = (size_t)count / 3 * 8 + 4096;
	json_t *ret = call(r, "guest-exec-io", a, max_reply, (unsigned)wait + CALL_TIMEOUT_MS);
	json_t *o = ret ? exec_result(r, ret, "guest-exec-io") : NULL;
	if (o)
		ok_json(r, o);
	json_decref(ret);
}

/* ------------------------------------------------------------ files */

static const struct api_field open_fields[] = {
	{ "path", API_T_STRING, true },
	{ "mode", API_T_STRING },
	{ NULL }
};

static void file_open(struct req *r)
{
	if (!check(r, open_fields, "files"))
		return;
	json_t *a = json_pack("{s:s}", "path", api_json_string(r->body, "path"));
	const char *mode = api_json_string(r->body, "mode");
	if (mode)
		json_object_set_new(a, "mode", json_string(mode));
	json_t *ret = call(r, "guest-file-open", a, QGA_REPLY_SMALL, FILE_TIMEOUT_MS);
	if (!ret)
		return;
	if (json_is_integer(ret))
		ok_json(r, json_pack("{s:O}", "handle", ret));
	else
		fault(r, 502, "guest-file-open: the guest agent's reply is not a handle");
	json_decref(ret);
}

static const struct api_field file_op_fields[] = {
	{ "op", API_T_STRING, true },
	{ "count", API_T_UINT },
	{ "data", API_T_STRING },
	{ "offset", API_T_NUMBER },
	{ "whence", API_T_STRING },
	{ NULL }
};

static void file_op(struct req *r)
{
	json_int_t h;
	if (!path_id(r, r->id, "handle", &h))
		return;
	if (!check(r, file_op_fields, "files"))
		return;
	const char *op = api_json_string(r->body, "op");
	json_t *ret;
	if (!strcmp(op, "read")) {
		uint64_t count = 65536;
		api_json_uint(r->body, "count", &count);
		if (count > FILE_CHUNK_MAX)
			count = FILE_CHUNK_MAX;
		ret = call(r, "guest-file-read", json_pack("{s:I,s:I}", "handle", h, "count", (json_int_t)count),
			   (size_t)count / 3 * 4 + 4096, FILE_TIMEOUT_MS);
		json_t *data = ret ? member(r, ret, "guest-file-read", "buf-b64", JSON_STRING) : NULL;
		json_t *n = data ? member(r, ret, "guest-file-read", "count", JSON_INTEGER) : NULL;
		if (n) {
			if (json_integer_value(n) < 0 || (uint64_t)json_integer_value(n) > count)
				fault(r, 502, "guest-file-read: the guest agent read more than was asked");
			else
				ok_json(r, json_pack("{s:O,s:O,s:b}", "data", data, "count", n, "eof",
						     json_is_true(json_object_get(ret, "eof"))));
		}
	} else if (!strcmp(op, "write")) {
		const json_t *data = api_json_member(r->body, "data");
		if (!json_is_string(data)) {
			fault(r, 400, "files.data: required for \"op\": \"write\"");
			return;
		}
		/* the body's string itself (1.4 MB of base64), not a copy */
		ret = call(r, "guest-file-write", json_pack("{s:I,s:O}", "handle", h, "buf-b64", data),
			   QGA_REPLY_SMALL, FILE_TIMEOUT_MS);
		json_t *n = ret ? member(r, ret, "guest-file-write", "count", JSON_INTEGER) : NULL;
		if (n)
			ok_json(r, json_pack("{s:O}", "count", n));
	} else if (!strcmp(op, "seek")) {
		const json_t *off = api_json_member(r->body, "offset");
		const char *whence = api_json_string(r->body, "whence");
		if (!json_is_integer(off)) {
			fault(r, 400, "files.offset: an integer is required for \"op\": \"seek\"");
			return;
		}
		ret = call(r, "guest-file-seek", json_pack("{s:I,s:O,s:s}", "handle", h, "offset", off,
							   "whence", whence ? whence : "set"),
			   QGA_REPLY_SMALL, FILE_TIMEOUT_MS);
		json_t *pos = ret ? member(r, ret, "guest-file-seek", "position", JSON_INTEGER) : NULL;
		if (pos)
			ok_json(r, json_pack("{s:O}", "position", pos));
	} else if (!strcmp(op, "flush") || !strcmp(op, "close")) {
		bool flush = op[0] == 'f';
		ret = call(r, flush ? "guest-file-flush" : "guest-file-close", json_pack("{s:I}", "handle", h),
			   QGA_REPLY_SMALL, FILE_TIMEOUT_MS);
		if (ret)
			api_respond_empty(r->resp, 204);
	} else {
		fault(r, 400, "files.op: must be read, write, seek, flush or close");
		return;
	}
	json_decref(ret);
}

static const struct api_field hash_fields[] = {
	{ "path", API_T_STRING, true },
	{ NULL }
};

/* The guest reads the whole file: a large one on a slow disk takes time. */
static void file_hash(struct req *r)
{
	if (!check(r, hash_fields, "hash"))
		return;
	json_t *ret = call(r, "guest-file-hash", json_pack("{s:s}", "path", api_json_string(r->body, "path")),
			   QGA_REPLY_SMALL, HASH_TIMEOUT_MS);
	json_t *alg = ret ? member(r, ret, "guest-file-hash", "algorithm", JSON_STRING) : NULL;
	json_t *dig = alg ? member(r, ret, "guest-file-hash", "digest", JSON_STRING) : NULL;
	json_t *size = dig ? member(r, ret, "guest-file-hash", "size", JSON_INTEGER) : NULL;
	if (size)
		ok_json(r, json_pack("{s:O,s:O,s:O}", "algorithm", alg, "digest", dig, "size", size));
	json_decref(ret);
}

/* ------------------------------------------------------------ the rest */

static const struct api_field shutdown_fields[] = {
	{ "mode", API_T_STRING },
	{ NULL }
};

static void agent_shutdown(struct req *r)
{
	if (!check(r, shutdown_fields, "shutdown"))
		return;
	const char *mode = api_json_string(r->body, "mode");
	mode = mode ? mode : "powerdown";
	if (strcmp(mode, "powerdown") && strcmp(mode, "halt") && strcmp(mode, "reboot")) {
		fault(r, 400, "shutdown.mode: must be powerdown, halt or reboot");
		return;
	}
	json_t *a = json_pack("{s:s}", "mode", mode);
	enum qga_status st = qga_send_only(vm_agent_client(r->agent), "guest-shutdown", a, CALL_TIMEOUT_MS,
					   r->err, sizeof(r->err));
	json_decref(a);
	if (st == QGA_OK)
		api_respond_empty(r->resp, 204);
	else
		fault(r, 503, r->err);
}

static const struct api_field time_fields[] = {
	{ "time_ns", API_T_UINT },
	{ NULL }
};

static void agent_time(struct req *r)
{
	if (!r->set) {
		json_t *ret = call(r, "guest-get-time", NULL, QGA_REPLY_SMALL, CALL_TIMEOUT_MS);
		if (!ret)
			return;
		if (json_is_integer(ret))
			ok_json(r, json_pack("{s:O,s:I}", "guest_ns", ret, "host_ns", (json_int_t)(int64_t)clock_ns(CLOCK_REALTIME)));
		else
			fault(r, 502, "guest-get-time: the guest agent's reply is not a time");
		json_decref(ret);
		return;
	}
	if (!check(r, time_fields, "time"))
		return;
	uint64_t t;
	int64_t ns = api_json_uint(r->body, "time_ns", &t) ? (int64_t)t : (int64_t)clock_ns(CLOCK_REALTIME);
	enum qga_status st = vm_agent_set_time(r->agent, ns, CALL_TIMEOUT_MS, r->err, sizeof(r->err));
	if (st == QGA_OK)
		api_respond_empty(r->resp, 204);
	else
		fault(r, st == QGA_E_AGENT ? 400 : 503, r->err);
}

static const struct api_field clip_fields[] = {
	{ "data", API_T_STRING, true },
	{ NULL }
};

static void agent_clipboard(struct req *r)
{
	if (!r->set) {
		json_t *ret = call(r, "guest-clipboard-get", NULL, 2u << 20, CALL_TIMEOUT_MS);
		json_t *data = ret ? member(r, ret, "guest-clipboard-get", "data", JSON_STRING) : NULL;
		if (data) {
			json_t *stamp = json_object_get(ret, "stamp");
			ok_json(r, json_pack("{s:O,s:I}", "data", data, "stamp",
					     json_is_integer(stamp) ? json_integer_value(stamp) : 0));
		}
		json_decref(ret);
		return;
	}
	if (!check(r, clip_fields, "clipboard"))
		return;
	json_t *ret = call(r, "guest-clipboard-set", json_pack("{s:s}", "data", api_json_string(r->body, "data")),
			   QGA_REPLY_SMALL, CALL_TIMEOUT_MS);
	if (ret)
		api_respond_empty(r->resp, 204);
	json_decref(ret);
}

static const struct api_field command_fields[] = {
	{ "execute", API_T_STRING, true },
	{ "arguments", API_T_OBJECT },
	{ NULL }
};

static void agent_command(struct req *r)
{
	/* "arguments" is passed on as it is: its members are the agent's. */
	json_t *copy = json_deep_copy(r->body);
	json_t *args = copy ? json_object_get(copy, "arguments") : NULL;
	json_object_del(copy, "arguments");
	const struct req saved = *r;
	r->body = copy;
	bool ok = check(r, command_fields, "command");
	*r = saved;
	if (ok && args && !json_is_object(args)) {
		fault(r, 400, "command.arguments: must be an object");
		ok = false;
	}
	if (ok) {
		json_t *ret = call(r, api_json_string(r->body, "execute"), json_incref(args), 4u << 20, CALL_TIMEOUT_MS);
		if (ret)
			ok_json(r, json_pack("{s:o}", "return", ret));
	}
	json_decref(copy);
}

/* ------------------------------------------------------------ the routes */

/* What every agent route needs beyond the route table's rule (the VM has
 * started): an agent port, and a VM that is not paused. False once the
 * request is answered. True: the VMM's lock is released (the call waits on
 * the guest without it; the agent stays until vmm_agent_quiesce has seen
 * the call end) and agent_done() must follow. */
static bool agent_req(struct vmm_call *c, struct req *r)
{
	*r = (struct req){ .resp = c->resp, .body = c->body, .id = c->id, .set = c->method == API_PUT };
	struct vm *vm = c->vm;
	if (!vm || !vm->devices || !vm->devices->agent) {
		fault(r, 503, "this VM has no guest agent port (it was started with the agent turned off, "
			      "or with its own --port " VM_AGENT_PORT_NAME ")");
		return false;
	}
	r->agent = vm->devices->agent;
	if (c->paused) {
		fault(r, 503, "the VM is paused: its guest agent cannot answer until it is resumed");
		return false;
	}
	r->closes = c->v->agent_closes;
	c->v->agent_calls++;
	pthread_mutex_unlock(&c->v->lock);
	return true;
}

/* The call is over: take the lock back. A call that failed because the VM
 * stopped, rebooted or was replaced meanwhile says so. */
static void agent_done(struct vmm_call *c, struct req *r)
{
	struct vmm *v = c->v;
	pthread_mutex_lock(&v->lock);
	if (--v->agent_calls == 0)
		pthread_cond_broadcast(&v->agent_idle);
	if (r->resp->status >= 400 && v->agent_closes != r->closes) {
		char msg[sizeof(r->err) + 128];
		snprintf(msg, sizeof(msg), "the VM stopped or rebooted during the guest agent call%s%s%s",
			 r->err[0] ? " (" : "", r->err, r->err[0] ? ")" : "");
		fault(r, 503, msg);
	}
}

void vmm_agent_quiesce(struct vmm *v, struct vm *vm)
{
	if (!vm || !vm->devices || !vm->devices->agent)
		return;
	vm_agent_close(vm->devices->agent);
	v->agent_closes++;
	while (v->agent_calls)
		pthread_cond_wait(&v->agent_idle, &v->lock);
}

/* One agent route: the checks, the call without the lock, the lock back. */
static void agent_route(struct vmm_call *c, void (*op)(struct req *r))
{
	struct req r;
	if (agent_req(c, &r)) {
		op(&r);
		agent_done(c, &r);
	}
}

void vmm_route_agent_info(struct vmm_call *c) { agent_route(c, agent_info); }
void vmm_route_agent_exec_start(struct vmm_call *c) { agent_route(c, exec_start); }
void vmm_route_agent_exec_io(struct vmm_call *c) { agent_route(c, exec_io); }
void vmm_route_agent_file_open(struct vmm_call *c) { agent_route(c, file_open); }
void vmm_route_agent_file_op(struct vmm_call *c) { agent_route(c, file_op); }
void vmm_route_agent_hash(struct vmm_call *c) { agent_route(c, file_hash); }
void vmm_route_agent_shutdown(struct vmm_call *c) { agent_route(c, agent_shutdown); }
void vmm_route_agent_time(struct vmm_call *c) { agent_route(c, agent_time); }
void vmm_route_agent_clipboard(struct vmm_call *c) { agent_route(c, agent_clipboard); }
void vmm_route_agent_command(struct vmm_call *c) { agent_route(c, agent_command); }

bool vmm_agent_present(struct vm *vm)
{
	return vm && vm->devices && vm->devices->agent;
}

void vmm_agent_sync_time(struct vm *vm, const char *why)
{
	if (vm && vm->devices && vm->devices->agent)
		vm_agent_sync_clock(vm->devices->agent, why);
}

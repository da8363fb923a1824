/*
 * libFuzzer target for the per-VM API's request handling (src/vmm/api.c:
 * routing, the before/after-start rules, InstanceStart, the runtime
 * updates) and the JSON sections behind it (src/vmm/config_json.c,
 * src/api/json_check.c), called as the HTTP server calls them, without a
 * socket.
 *
 * Input: requests separated by NUL bytes. Each is a first line
 * "METHOD PATH" and the rest is the body. METHOD CONFIG instead reads the
 * body as a --config-file document does (vm_config_from_json) and hands
 * the result to the VMM (vmm_set_config), as skiff run does.
 *
 * The VM is a stand-in (vm_create and the device hooks are defined here),
 * so InstanceStart and everything after it run without a guest. The
 * checks open the files a request names, so two kinds of request are left
 * out: logger and metrics sections (they create files where the input
 * says), and any body with a string naming an existing special file
 * (opening some devices has effects: a watchdog starts). For the inputs to
 * name, FUZZ_DIR holds a regular file `f` (a "kernel") and a directory `d`.
 * FUZZ_DIR in an input stands for this process's own directory
 * (scratch_dir.h), so side-by-side runs do not share files.
 *
 * Checked for every request: the answer is 200 with a JSON body, 204 with
 * none, or 400 with exactly {"fault_message": string}; a refused request
 * leaves GET /vm/config as it was; and before start, what GET /vm/config
 * returns is itself a config file a fresh VMM accepts and gives back
 * unchanged.
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"
#include "scratch_dir.h"
#include "virtio/net.h"
#include "vmm/api.h"
#include "vmm/api_agent.h"
#include "vmm/api_call.h"
#include "vmm/sandbox.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"
#include "vmm/vm_metrics.h"

#define MAX_REQUESTS 64
#define FUZZ_DIR "/tmp/skiff-fuzz-api"

/* This process's directory in place of FUZZ_DIR (scratch_dir.h). */
static char dir[64];

/* ---- the stand-in VM and device hooks ---- */

struct vm *vm_create(const struct vm_config *cfg, const struct vm_console *con,
		     const struct thread_hook *threads, char *err, size_t errlen)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	vm->nharts = 0;
	vm->ram.size = cfg->mem_bytes;
	pthread_mutex_init(&vm->state_lock, NULL);
	return vm;
}

int vm_start(struct vm *vm) { return 0; }

/* The engine is not linked: answer as an x86-64 host's engine does, so
 * "engine": "jit" in a document is accepted. */
bool engine_jit_available(void)
{
	return true;
}

/* The sandbox is not linked: the fuzzer's process must stay unconfined
 * (vmm_params.sandbox is NULL, for which the real ones do nothing too). */
int sandbox_vm_built(struct sandbox *sb, struct vm *vm, const struct vm_config *cfg,
		     char *err, size_t errlen) { return 0; }
int sandbox_confine_self(struct sandbox *sb, char *err, size_t errlen) { return 0; }
bool sandbox_spent(struct sandbox *sb) { return false; }
const struct thread_hook *sandbox_vm_threads(struct sandbox *sb, const struct vm_config *cfg)
{
	return NULL;
}

/* The guest agent routes need a guest: stand-ins that answer as a VM
 * without an agent port does. */
#define NO_AGENT(name) \
	void vmm_route_agent_##name(struct vmm_call *c) { api_respond_fault(c->resp, 503, "no agent"); }
NO_AGENT(info)
NO_AGENT(exec_start)
NO_AGENT(exec_io)
NO_AGENT(file_open)
NO_AGENT(file_op)
NO_AGENT(hash)
NO_AGENT(shutdown)
NO_AGENT(time)
NO_AGENT(clipboard)
NO_AGENT(command)
void vmm_agent_sync_time(struct vm *vm, const char *why) {}
bool vmm_agent_present(struct vm *vm) { return false; }
void vmm_agent_quiesce(struct vmm *v, struct vm *vm) { (void)v; (void)vm; }

/* Snapshots: the requests are checked and routed for real (api_snapshot.c);
 * nothing is read or written, since the paths come from the input. */
int vm_snapshot_track_dirty(struct vm *vm, bool on, char *err, size_t errlen) { return 0; }
int vm_snapshot_create(struct vm *vm, const char *config_json, enum vm_snapshot_type type,
		       const char *state_path, const char *mem_path,
		       struct vm_snapshot_stats *st, char *err, size_t errlen)
{
	snprintf(err, errlen, "no snapshots in the fuzzing harness");
	return -1;
}
struct vm_snapshot_file *vm_snapshot_open(const char *state_path, char *err, size_t errlen)
{
	snprintf(err, errlen, "no snapshots in the fuzzing harness");
	return NULL;
}
void vm_snapshot_close(struct vm_snapshot_file *sf) { }
const char *vm_snapshot_config(const struct vm_snapshot_file *sf) { return "{}"; }
struct vm *vm_restore(const struct vm_config *cfg, const struct vm_console *con,
		      const struct thread_hook *threads, struct vm_snapshot_file *sf,
		      const char *mem_path, bool track_dirty, char *err, size_t errlen)
{
	snprintf(err, errlen, "no snapshots in the fuzzing harness");
	return NULL;
}
int vm_restore_start(struct vm *vm, bool paused) { return -1; }
int vm_devices_attach_mmds(struct vm *vm, const struct vm_config *cfg, struct mmds *m,
			   char *err, size_t errlen)
{
	return 0;   /* no NICs in the stand-in VM */
}
int vm_balloon_hint(struct vm *vm, bool start, bool ack_on_stop, char *err, size_t errlen)
{
	snprintf(err, errlen, "no balloon in the fuzzing harness");
	return -ENODEV;
}
int vm_balloon_hint_status(struct vm *vm, uint32_t *host_cmd, uint32_t *guest_cmd, char *err,
			   size_t errlen)
{
	snprintf(err, errlen, "no balloon in the fuzzing harness");
	return -ENODEV;
}
void virtio_net_default_mac(const char *vm_name, unsigned index, uint8_t mac[6])
{
	static const uint8_t m[6] = { 2, 0, 0, 0, 0, 1 };
	memcpy(mac, m, 6);
	mac[5] = (uint8_t)(index + 1);
}
void vm_pause_all(struct vm *vm) { atomic_store(&vm->paused, true); }
void vm_resume_all(struct vm *vm) { atomic_store(&vm->paused, false); }

void vm_destroy(struct vm *vm)
{
	pthread_mutex_destroy(&vm->state_lock);
	free(vm);
}

int vm_request_shutdown(struct vm *vm) { return -ENODEV; }
void vm_metrics_add(struct vm *vm, json_t *m) { }

/* A running VM takes a new path_on_host (the real one opens the file and
 * swaps it in, devices.c); the stand-in opens nothing, since the path
 * comes from the input, and accepts the swap as the real one does when
 * the file opens. */
int vm_drive_update(struct vm *vm, size_t index, const struct vm_drive *d,
		    bool path_changed, bool limiter_changed, char *err, size_t errlen)
{
	return 0;
}

int vm_net_update(struct vm *vm, size_t index, const struct vm_net *n,
		  bool rx_changed, bool tx_changed, char *err, size_t errlen)
{
	return 0;
}

int vm_balloon_set_target(struct vm *vm, uint32_t target_mib, char *err, size_t errlen)
{
	if ((uint64_t)target_mib << 20 > vm->ram.size) {
		snprintf(err, errlen, "target larger than guest RAM");
		return -EINVAL;
	}
	return 0;
}

int vm_balloon_set_stats_interval(struct vm *vm, uint32_t seconds, char *err, size_t errlen)
{
	if (!seconds)
		abort();   /* the API promises never to ask for 0 */
	return 0;
}

int vm_balloon_get_stats(struct vm *vm, struct vm_balloon_stats *out, char *err, size_t errlen)
{
	out->target_pages = 1;
	out->actual_pages = 2;
	out->inflated_bytes = 3 << 12;
	out->reported_bytes = 4 << 12;
	out->present = 1u << VM_BALLOON_FREE_MEMORY;
	out->stat[VM_BALLOON_FREE_MEMORY] = 12345;
	return 0;
}

/* ---- driving the API ---- */

static void discard_output(void *ctx, const uint8_t *buf, size_t n) { }

static struct vmm *new_vmm(void)
{
	struct vmm_params p = { .id = "fuzz", .version = "0", .console = { .out = discard_output } };
	char err[256];
	struct vmm *v = vmm_new(&p, err, sizeof(err));
	if (!v) {
		fprintf(stderr, "fuzz_api: %s\n", err);
		abort();
	}
	return v;
}

/* A --config-file document as skiff run applies it: over the defaults. */
static const char *configure(struct vmm *v, const json_t *doc, char *err, size_t errlen)
{
	struct vm_config c;
	vm_config_init(&c);
	const char *e = vm_config_from_json(&c, doc, err, errlen);
	if (!e)
		e = vmm_set_config(v, &c, true, err, errlen);
	vm_config_free(&c);
	return e;
}

static void call(struct vmm *v, enum api_method m, const char *name, const char *path,
		 const char *body, size_t len, struct api_response *resp)
{
	struct api_request req = { .method = m, .method_name = name, .path = path,
				   .body = body, .body_len = len };
	memset(resp, 0, sizeof(*resp));
	vmm_handle(v, &req, resp);
}

/* The configuration as GET /vm/config returns it (parsed). */
static json_t *get_config(struct vmm *v)
{
	struct api_response r;
	call(v, API_GET, "GET", "/vm/config", "", 0, &r);
	if (r.status != 200 || !r.body)
		abort();
	json_t *doc = json_loads(r.body, 0, NULL);
	free(r.body);
	if (!doc)
		abort();
	return doc;
}

static bool is_started(struct vmm *v)
{
	struct api_response r;
	call(v, API_GET, "GET", "/", "", 0, &r);
	bool started = r.body && !strstr(r.body, "\"Not started\"");
	free(r.body);
	return started;
}

/* Every answer is one of Firecracker's three shapes. */
static void check_response(const struct api_response *r)
{
	if (r->status == 204) {
		if (r->body && *r->body)
			abort();
		return;
	}
	if (r->status != 200 && r->status != 400)
		abort();
	json_t *b = r->body ? json_loads(r->body, 0, NULL) : NULL;
	if (!b)
		abort();
	if (r->status == 400) {
		const json_t *m = json_object_get(b, "fault_message");
		if (json_object_size(b) != 1 || !json_is_string(m) || !*json_string_value(m))
			abort();
	}
	json_decref(b);
}

/* Before start: GET /vm/config is a config file giving the same back. */
static void check_round_trip(json_t *doc)
{
	struct vmm *w = new_vmm();
	char err[1024];
	if (configure(w, doc, err, sizeof(err))) {
		char *text = json_dumps(doc, JSON_COMPACT);
		fprintf(stderr, "fuzz_api: GET /vm/config is not a valid config file: %s\n%s\n",
			err, text ? text : "");
		free(text);
		abort();
	}
	json_t *again = get_config(w);
	if (!json_equal(doc, again)) {
		char *a = json_dumps(doc, JSON_COMPACT), *b = json_dumps(again, JSON_COMPACT);
		fprintf(stderr, "fuzz_api: config changed on the round trip:\n%s\n%s\n", a, b);
		abort();
	}
	json_decref(again);
	vmm_free(w);
}

static bool names_output(const char *path)
{
	return strstr(path, "logger") || strstr(path, "metrics");
}

/* Does any string in v name something that exists and is neither a
 * regular file nor a directory? */
static bool names_special_file(const json_t *v)
{
	if (json_is_string(v)) {
		struct stat st;
		const char *p = json_string_value(v);
		return strlen(p) == json_string_length(v) && stat(p, &st) == 0 &&
		       !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
	}
	const char *k;
	const json_t *m;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, m)
			if (names_special_file(m))
				return true;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			if (names_special_file(m))
				return true;
	}
	return false;
}

/* Would the API open a special file for this body? (It parses with the
 * same library and stricter flags, so what it accepts is parsed here.) */
static bool body_unsafe(const char *body, size_t len)
{
	json_t *doc = json_loadb(body, len, 0, NULL);
	bool bad = doc && names_special_file(doc);
	json_decref(doc);
	return bad;
}

static void make_files(void)
{
	if (dir[0])
		return;
	fuzz_dir_make(FUZZ_DIR, dir);
	char path[96];
	snprintf(path, sizeof(path), "%s/d", dir);
	if (mkdir(path, 0700))
		abort();
	/* `f` serves as kernel, initrd and drive: a RISC-V Image header (the
	 * configuration checks a kernel's), then zeros. */
	static unsigned char image[4096];
	memcpy(image + 8, "\0\0\x20\0\0\0\0\0", 8);
	memcpy(image + 16, "\0\x10\0\0\0\0\0\0", 8);
	memcpy(image + 48, "RISCV\0\0\0RSC\x05", 12);
	snprintf(path, sizeof(path), "%s/f", dir);
	FILE *f = fopen(path, "w");
	if (!f || fwrite(image, 1, sizeof(image), f) != sizeof(image) || fclose(f))
		abort();
}

static void one_request(struct vmm *v, char *text, size_t len)
{
	char *nl = memchr(text, '\n', len);
	size_t head = nl ? (size_t)(nl - text) : len;
	char line[600];
	if (head >= sizeof(line))
		return;
	memcpy(line, text, head);
	line[head] = 0;
	const char *body = nl ? nl + 1 : "";
	size_t body_len = nl ? len - head - 1 : 0;
	char *sp = strchr(line, ' ');
	if (!sp)
		return;
	*sp = 0;
	const char *method = line, *path = sp + 1;

	if (body_unsafe(body, body_len))
		return;
	if (!strcmp(method, "CONFIG")) {
		json_t *doc = json_loadb(body, body_len, 0, NULL);
		if (!doc)
			return;
		if (json_is_object(doc)) {
			json_object_del(doc, "logger");
			json_object_del(doc, "metrics");
		}
		json_t *before = get_config(v);
		char err[1024];
		if (configure(v, doc, err, sizeof(err))) {
			json_t *after = get_config(v);
			if (!json_equal(before, after))
				abort();   /* a refused document changed something */
			json_decref(after);
		}
		json_decref(before);
		json_decref(doc);
		return;
	}
	if (names_output(path))
		return;
	enum api_method m = !strcmp(method, "GET") ? API_GET : !strcmp(method, "PUT") ? API_PUT :
			    !strcmp(method, "PATCH") ? API_PATCH : API_OTHER;
	json_t *before = get_config(v);
	struct api_response r;
	call(v, m, method, path, body, body_len, &r);
	check_response(&r);
	if (r.status == 400) {
		json_t *after = get_config(v);
		if (!json_equal(before, after)) {
			fprintf(stderr, "fuzz_api: refused %s %s changed the configuration\n", method, path);
			abort();
		}
		json_decref(after);
	}
	free(r.body);
	json_decref(before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	make_files();
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	fuzz_dir_rewrite(buf, size, FUZZ_DIR, dir);
	struct vmm *v = new_vmm();
	size_t off = 0;
	for (int n = 0; n < MAX_REQUESTS && off < size; n++) {
		char *end = memchr(buf + off, 0, size - off);
		size_t len = end ? (size_t)(end - (buf + off)) : size - off;
		/* NUL-terminate the request for the body (the API's contract). */
		buf[off + len] = 0;
		one_request(v, buf + off, len);
		off += len + 1;
	}
	if (!is_started(v)) {
		json_t *doc = get_config(v);
		check_round_trip(doc);
		json_decref(doc);
	}
	vmm_free(v);
	free(buf);
	return 0;
}

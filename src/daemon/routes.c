/*
 * skiffd's REST API (see docs/skiffd.md):
 *
 *   GET    /                   daemon info (version, limits, counts)
 *   GET    /vms                every VM, running or not
 *   POST   /vms                create: {"id", "name", "image", <--config-file sections>}
 *   GET    /vms/{id}           one VM ({id} is its id or its name)
 *   DELETE /vms/{id}           stop it if it runs, remove its state
 *   PUT    /vms/{id}/actions   InstanceStart, InstanceStop (kill),
 *                              SendCtrlAltDel and FlushMetrics (to the VM)
 *   *      /vms/{id}/<rest>    proxied to the VM's own API as /<rest>
 *                              (/vms/{id}/ alone is the VM's GET /)
 *   GET    /metrics            Prometheus text
 *
 * Errors follow the per-VM API: 400 with {"fault_message": ...} naming the
 * problem; 201 with the VM for a create, 204 with no body for actions.
 * Requests run concurrently, each on its connection's API thread; the locks
 * (the daemon's, each VM's op) are described in skiffd.h.
 */
#include "daemon/skiffd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/http.h"
#include "api/json_check.h"
#include "daemon/uhttp.h"
#include "daemon/vm_image.h"
#include "vmm/config_json.h"

#define PROXY_TIMEOUT_MS 30000
/* The guest agent's calls may take the VMM up to 10 minutes (a hash of a
 * large file); the VMM bounds each one itself. */
#define AGENT_PROXY_TIMEOUT_MS 660000
/* How long a VMM that dropped a call is given to be seen gone. */
#define CUT_WAIT_MS 3000

struct req {
	struct skiffd *d;
	const struct api_request *r;
	struct api_response *resp;
	char err[1024];
};

static void fault(struct req *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fault(struct req *q, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_respond_fault(q->resp, 400, "%s", msg);
}

static void reply_json(struct req *q, unsigned status, json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (!s) {
		api_respond_fault(q->resp, 500, "out of memory");
		return;
	}
	api_respond_text(q->resp, status, s);
}

static bool is(const struct api_request *r, const char *m)
{
	return !strcmp(r->method_name, m);
}

/* ------------------------------------------------------------ create */

/* Path members that the VMM opens (vm_config_json_paths) must be
 * absolute, because the VMM runs in the VM's state directory, not where the
 * client is. */
struct relative { char *where; size_t wlen; const char *path; };

static int first_relative(json_t *obj, const char *key, const char *path, const char *where, void *ctx)
{
	struct relative *r = ctx;
	if (path[0] == '/')
		return 0;
	snprintf(r->where, r->wlen, "%s", where);
	r->path = path;
	return 1;
}

static const char *relative_path(json_t *cfg, char *where, size_t wlen)
{
	struct relative r = { where, wlen, NULL };
	vm_config_json_paths(cfg, first_relative, &r);
	return r.path;
}

/* skiffd's VMs share the host's loopback with each other's forwarded
 * ports, so user networking leaves it out unless the definition asks for
 * it: an interface without "host_loopback" gets false, stored. */
static int default_no_host_loopback(json_t *cfg)
{
	json_t *a = json_object_get(cfg, "network-interfaces");
	size_t k;
	json_t *e;
	json_array_foreach(a, k, e) {
		const char *backend = json_string_value(json_object_get(e, "backend"));
		bool user = backend ? !strcmp(backend, "user") : !json_object_get(e, "host_dev_name");
		json_t *hl = json_object_get(e, "host_loopback");
		if (json_is_object(e) && user && (!hl || json_is_null(hl)) &&
		    json_object_set_new(e, "host_loopback", json_false()))
			return -1;
	}
	return 0;
}

/* A string member that must follow skiffd_id_ok; NULL when absent. */
static bool take_name(struct req *q, const json_t *body, const char *key, const char **out)
{
	json_t *v = json_object_get(body, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return true;
	if (!json_is_string(v)) {
		fault(q, "%s: must be a string, not %s", key, api_json_type_name(v));
		return false;
	}
	char shown[80];
	api_json_printable(shown, sizeof(shown), json_string_value(v));
	if (!skiffd_id_ok(json_string_value(v))) {
		fault(q, "%s: `%s` is not valid: use 1 to %d letters, digits, '-' and '_', not "
		      "starting with '-'", key, shown, SKIFFD_MAX_ID);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

static bool taken(struct skiffd *d, const char *s)
{
	for (struct skiffd_vm *vm = d->vms; vm; vm = vm->next)
		if (!strcmp(vm->id, s) || (vm->name && !strcmp(vm->name, s)))
			return true;
	return false;
}

/* A new id: "vm-" and 8 hex digits, not in use. */
static int new_id(struct skiffd *d, char *out, size_t len)
{
	for (int tries = 0; tries < 100; tries++) {
		uint32_t r;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16) ^ (uint32_t)tries;
		snprintf(out, len, "vm-%08x", r);
		if (!taken(d, out))
			return 0;
	}
	return -1;
}

/* Reserve an id (given, or a new one) and a name for a VM being made: a
 * `creating` record in the table, with its jail uid, so that a second
 * create of the same id or name is refused while this one runs without
 * the daemon's lock. `name_optional`: a name in use is left out rather
 * than refused (a clone's). The record (one reference, the caller's), or
 * NULL after answering. */
static struct skiffd_vm *reserve(struct req *q, const char *id, const char *name, bool name_optional)
{
	struct skiffd *d = q->d;
	char idbuf[32];
	struct skiffd_vm *vm = NULL;
	pthread_mutex_lock(&d->lock);
	if (name && name_optional && (taken(d, name) || strlen(name) > SKIFFD_MAX_ID))
		name = NULL;
	if (id && taken(d, id)) {
		fault(q, "id: a VM with the id or name `%s` already exists", id);
	} else if (name && taken(d, name)) {
		fault(q, "name: a VM with the id or name `%s` already exists", name);
	} else if (!id && new_id(d, idbuf, sizeof(idbuf))) {
		fault(q, "cannot find an unused VM id");
	} else if (!(vm = skiffd_vm_alloc(d, id ? id : idbuf, name))) {
		api_respond_fault(q->resp, 500, "out of memory");
	} else if (skiffd_jail_assign(d, vm, q->err, sizeof(q->err))) {
		fault(q, "%s", q->err);
		skiffd_vm_free(vm);
		vm = NULL;
	} else {
		vm->creating = true;
		struct skiffd_vm **tail = &d->vms;
		while (*tail)
			tail = &(*tail)->next;
		*tail = vm;
	}
	pthread_mutex_unlock(&d->lock);
	return vm;
}

/* A create that failed gives its reservation back. */
static void unreserve(struct skiffd *d, struct skiffd_vm *vm)
{
	pthread_mutex_lock(&d->lock);
	skiffd_unlink(d, vm);
	pthread_mutex_unlock(&d->lock);
	skiffd_vm_free(vm);   /* nobody else could find it */
}

/* The VM as JSON, its live state asked of its VMM with no lock held. */
static json_t *vm_json(struct skiffd *d, struct skiffd_vm *vm)
{
	pthread_mutex_lock(&d->lock);
	json_t *o = skiffd_vm_json(d, vm);
	pthread_mutex_unlock(&d->lock);
	skiffd_vm_json_live(o);
	return o;
}

static void create(struct req *q, json_t *body)
{
	struct skiffd *d = q->d;
	const char *id = NULL, *name = NULL;
	if (!take_name(q, body, "id", &id) || !take_name(q, body, "name", &name))
		return;
	if (id && name && !strcmp(id, name))
		name = NULL; /* the same word twice */
	json_t *image = json_object_get(body, "image");
	if (image && !json_is_null(image) && !json_is_string(image)) {
		fault(q, "image: must be a string, not %s", api_json_type_name(image));
		return;
	}
	struct skiffd_vm *vm = reserve(q, id, name, false);
	if (!vm)
		return;
	id = vm->id;

	json_t *cfg = json_deep_copy(body);
	bool image_made = false, dir_made = false;
	struct vm_config spec;
	vm_config_init(&spec);
	if (!cfg) {
		api_respond_fault(q->resp, 500, "out of memory");
		goto fail;
	}
	json_object_del(cfg, "id");
	json_object_del(cfg, "name");
	json_object_del(cfg, "image");

	/* A system image: the VM's overlay of its disk is made in the VM's
	 * directory now, so the definition's checks see the file. */
	if (image && !json_is_null(image)) {
		if (skiffd_image_prepare(cfg, json_string_value(image), vm->dir, q->err, sizeof(q->err))) {
			fault(q, "%s", q->err);
			goto fail;
		}
		image_made = true;
	}
	/* After the image's user network is added, so it gets the default too. */
	if (default_no_host_loopback(cfg)) {
		api_respond_fault(q->resp, 500, "out of memory");
		goto fail;
	}

	/* The VMM's own checks, so a definition that will not boot is refused
	 * now with the VMM's message rather than at start. */
	char where[96];
	const char *rel;
	if (vm_config_from_json(&spec, cfg, q->err, sizeof(q->err)) ||
	    vm_config_check(&spec, q->err, sizeof(q->err))) {
		/* The VMM's list of sections, plus what skiffd adds. */
		char *known = strstr(q->err, "(known fields: ");
		if (known) {
			size_t at = (size_t)(known - q->err) + strlen("(known fields: ");
			fault(q, "%.*sid, name, image, %s", (int)at, q->err, q->err + at);
		} else {
			fault(q, "%s", q->err);
		}
		goto fail;
	}
	if (!spec.kernel) {
		fault(q, "boot-source.kernel_image_path: required (the kernel the VM boots)");
		goto fail;
	}
	if ((rel = relative_path(cfg, where, sizeof(where)))) {
		char shown[80];
		api_json_printable(shown, sizeof(shown), rel);
		fault(q, "%s: `%s` must be an absolute path (the VM does not run in the client's directory)",
		      where, shown);
		goto fail;
	}
	uint64_t mem_mib = spec.mem_bytes >> 20;
	if (mem_mib > d->mem_limit_mib) {
		fault(q, "machine-config.mem_size_mib: %" PRIu64 " MiB is more than skiffd's whole memory limit "
		      "of %" PRIu64 " MiB (%s), so the VM could never start", mem_mib, d->mem_limit_mib,
		      d->mem_limit_given ? "--mem-limit" : "the host's RAM");
		goto fail;
	}
	size_t longest = strlen(d->vms_dir) + 1 + strlen(id) + sizeof("/" SKIFFD_RUN_DIR "/console.sock") - 1;
	if (longest > SKIFFD_MAX_SOCK_PATH) {
		fault(q, "id: `%s` is too long for this state directory: %s/%s/" SKIFFD_RUN_DIR "/console.sock would be %zu bytes, "
		      "and a Unix socket path holds at most %d", id, d->vms_dir, id, longest, SKIFFD_MAX_SOCK_PATH);
		goto fail;
	}

	/* The definition is stored as the VMM's one writer writes what its
	 * checks settled: each drive's format (vm_drive_settle_format), so no
	 * start probes an image again once a guest has run on it, and the
	 * backing directories as canonical paths, so they mean the same in the
	 * VMM. */
	json_t *written = vm_config_to_json(&spec);
	if (!written) {
		api_respond_fault(q->resp, 500, "out of memory");
		goto fail;
	}
	json_decref(cfg);
	cfg = NULL;
	if (mkdir(vm->dir, 0700) && errno != EEXIST) {
		fault(q, "cannot create %s: %s", vm->dir, strerror(errno));
		json_decref(written);
		goto fail;
	}
	dir_made = true;
	pthread_mutex_lock(&d->lock);
	vm->config = written;
	vm->vcpus = spec.ncpus;
	vm->mem_mib = mem_mib;
	vm->created_at = time(NULL);
	/* A system image's overlay (its first drive) and its directory are
	 * the VM's. */
	int r = image_made ? skiffd_image_start(d, vm, q->err, sizeof(q->err)) : 0;
	if (!r)
		r = skiffd_save_vm(vm, q->err, sizeof(q->err));
	if (!r)
		vm->creating = false;
	json_t *reply = r ? NULL : skiffd_vm_json(d, vm);
	pthread_mutex_unlock(&d->lock);
	if (r) {
		fault(q, "%s", q->err);
		goto fail;
	}
	skiffd_log("vm %s created%s%s (%u vCPUs, %" PRIu64 " MiB)", vm->id, vm->name ? " as " : "",
		   vm->name ? vm->name : "", vm->vcpus, vm->mem_mib);
	reply_json(q, 201, reply);
	vm_config_free(&spec);
	skiffd_put(d, vm);
	return;
fail:
	if (image_made)
		skiffd_image_undo(vm->dir);
	else if (dir_made)
		rmdir(vm->dir);
	vm_config_free(&spec);
	json_decref(cfg);
	unreserve(d, vm);
}

/* ------------------------------------------------------------ one VM */

/* A PATCH the VM took changes the running VM (a drive's image, format or
 * rate limiter; a NIC's rate limiters): the stored definition follows it,
 * so the VM's next start and a skiffd snapshot (which copies the images
 * the definition names) see the disk the guest sees. The fields come from
 * the VMM's own view of the item (GET /vm/config), which has the format it
 * settled for a new image. vm->op held (PATCHes to one VM follow in turn). */
static void follow_patch(struct skiffd *d, struct skiffd_vm *vm, const char *sock, const char *rest)
{
	static const char *const drive_fields[] = { "path_on_host", "format", "rate_limiter", NULL };
	static const char *const net_fields[] = { "rx_rate_limiter", "tx_rate_limiter", NULL };
	bool drive = !strncmp(rest, "drives/", 7);
	if (!drive && strncmp(rest, "network-interfaces/", 19))
		return;
	const char *array = drive ? "drives" : "network-interfaces";
	const char *key = drive ? "drive_id" : "iface_id";
	const char *id = strchr(rest, '/') + 1;
	const char *const *fields = drive ? drive_fields : net_fields;
	struct uhttp_reply r;
	char err[256];
	if (uhttp_call(sock, "GET", "/vm/config", NULL, PROXY_TIMEOUT_MS, &r, err, sizeof(err))) {
		skiffd_log("vm %s: its definition does not follow PATCH /%s: %s", vm->id, rest, err);
		return;
	}
	json_t *cur = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
	uhttp_reply_free(&r);
	json_t *from = NULL, *to = NULL, *e;
	size_t k;
	json_array_foreach(json_object_get(cur, array), k, e)
		if (!strcmp(json_string_value(json_object_get(e, key)) ?: "", id))
			from = e;
	json_array_foreach(json_object_get(vm->config, array), k, e)
		if (!strcmp(json_string_value(json_object_get(e, key)) ?: "", id))
			to = e;
	if (!from || !to) {
		skiffd_log("vm %s: its definition does not follow PATCH /%s: no such item in %s",
			   vm->id, rest, from ? "the definition" : "the VM's configuration");
		json_decref(cur);
		return;
	}
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; fields[i]; i++) {
		json_t *v = json_object_get(from, fields[i]);
		if (v)
			json_object_set(to, fields[i], v);
		else
			json_object_del(to, fields[i]);
	}
	int saved = skiffd_save_vm(vm, err, sizeof(err));
	pthread_mutex_unlock(&d->lock);
	json_decref(cur);
	if (saved)
		skiffd_log("vm %s: its definition after PATCH /%s is not saved: %s", vm->id, rest, err);
}

/* PATCH /drives/{id} naming a new image: a jailed VMM sees only its own
 * files, so skiffd brings the image into its jail first (vm_jail.c), read
 * only when the drive is. d->lock held. 0, or -1 after answering. */
static int bring_drive_in(struct req *q, struct skiffd_vm *vm, const char *rest)
{
	if (strcmp(q->r->method_name, "PATCH") || strncmp(rest, "drives/", 7) || !q->r->body_len)
		return 0;
	json_t *body = json_loadb(q->r->body, q->r->body_len, 0, NULL);
	const char *path = json_string_value(json_object_get(body, "path_on_host"));
	bool ro = false;
	size_t k;
	json_t *e;
	json_array_foreach(json_object_get(vm->config, "drives"), k, e)
		if (!strcmp(json_string_value(json_object_get(e, "drive_id")) ?: "", rest + 7))
			ro = json_is_true(json_object_get(e, "is_read_only"));
	/* A relative or missing path is the VM's to refuse. */
	int r = path && path[0] == '/' ? skiffd_bring_in(q->d, vm, path, !ro, q->err, sizeof(q->err)) : 0;
	json_decref(body);
	if (r)
		fault(q, "%s", q->err);
	return r;
}

/* Has the process that runs the guest ended (d->lock held)? The
 * launcher may still be reaping it. */
static bool guest_process_ended(struct skiffd *d, struct skiffd_vm *vm, pid_t pid)
{
	struct skiffd_proc_stat st;
	return vm->pid != pid || !skiffd_vm_alive(d, vm) || vm->vmm_pid <= 0 ||
	       skiffd_read_proc_stat(vm->vmm_pid, &st) || st.state == 'Z' || st.state == 'X';
}

/* A call to the VM whose VMM was `pid` failed, or was refused: was the VM
 * deleted, or did its VMM end, meanwhile? The reason to tell, or NULL.
 * A VMM that dropped the connection is given a moment to be seen gone (a
 * process closes its sockets before it becomes a zombie); one that
 * answered is judged at once. */
static const char *call_cut(struct skiffd *d, struct skiffd_vm *vm, pid_t pid, bool answered)
{
	for (int waited = 0;; waited += 20) {
		pthread_mutex_lock(&d->lock);
		bool deleted = vm->deleting || vm->removed, ended = guest_process_ended(d, vm, pid);
		pthread_mutex_unlock(&d->lock);
		if (deleted)
			return "was deleted while this request was in flight";
		if (ended)
			return "ended while this request was in flight (its VMM is gone)";
		if (answered || waited >= CUT_WAIT_MS)
			return NULL;
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* Pass the request to the VM's own API. No lock is held while the VMM
 * works on it (a guest agent call may take minutes), except a PATCH's
 * vm->op: the definition follows PATCHes one at a time. A VM deleted or
 * ended during the call gets an answer that says so. */
static void proxy(struct req *q, struct skiffd_vm *vm, const char *rest)
{
	struct skiffd *d = q->d;
	bool patch = is(q->r, "PATCH");
	if (patch)
		pthread_mutex_lock(&vm->op);
	pthread_mutex_lock(&d->lock);
	pid_t pid = vm->pid;
	bool deleting = vm->deleting || vm->removed;
	char *sock = pid > 0 ? skiffd_vm_sock(vm, "api.sock") : NULL;
	int brought = pid > 0 && !deleting && patch ? bring_drive_in(q, vm, rest) : 0;
	pthread_mutex_unlock(&d->lock);
	char *path = NULL;
	if (deleting) {
		fault(q, "vm `%s` is being deleted", vm->id);
	} else if (pid <= 0) {
		fault(q, "vm `%s` is not running (start it first)", vm->id);
	} else if (brought) {
		/* answered */
	} else if (!sock || asprintf(&path, "/%s", rest) < 0) {
		path = NULL;
		api_respond_fault(q->resp, 500, "out of memory");
	} else {
		struct uhttp_reply r;
		bool agent = !strncmp(rest, "agent", 5) && (!rest[5] || rest[5] == '/');
		int failed = uhttp_call_cancel(sock, q->r->method_name, path,
					       q->r->body_len ? q->r->body : NULL,
					       agent ? AGENT_PROXY_TIMEOUT_MS : PROXY_TIMEOUT_MS, &d->ending,
					       &r, q->err, sizeof(q->err));
		const char *why = failed || r.status >= 400 ? call_cut(d, vm, pid, !failed) : NULL;
		if (failed && atomic_load(&d->ending)) {
			/* The VMM goes on with the request; only its answer is lost. */
			api_respond_fault(q->resp, 503, "vm `%s`: skiffd is ending, so it stopped waiting for "
					  "the VM's answer (the VM goes on; ask it again once skiffd is back)",
					  vm->id);
		} else if (why || failed) {
			/* The VMM's own words, when it answered before it went. */
			json_t *j = failed ? NULL : json_loads(r.body, 0, NULL);
			const char *fm = json_string_value(json_object_get(j, "fault_message"));
			api_respond_fault(q->resp, 503, "vm `%s` %s: %s", vm->id, why ? why :
					  "does not answer on its API socket", failed ? q->err : fm ? fm : r.body);
			json_decref(j);
		} else if (r.len) {
			api_respond_text(q->resp, (unsigned)r.status, r.body);
			r.body = NULL;
		} else {
			api_respond_empty(q->resp, (unsigned)r.status);
		}
		if (!failed && !why && r.status == 204 && patch)
			follow_patch(d, vm, sock, rest);
		if (!failed)
			uhttp_reply_free(&r);
	}
	if (patch)
		pthread_mutex_unlock(&vm->op);
	free(sock);
	free(path);
}

static const struct api_field action_fields[] = {
	{ "action_type", API_T_STRING, true },
	{ NULL }
};

static void action(struct req *q, struct skiffd_vm *vm, json_t *body)
{
	if (api_json_check_object(body, action_fields, "actions", q->err, sizeof(q->err))) {
		fault(q, "%s", q->err);
		return;
	}
	const char *a = api_json_string(body, "action_type");
	struct skiffd *d = q->d;
	if (!strcmp(a, "InstanceStart")) {
		pthread_mutex_lock(&vm->op);
		int r = skiffd_start_vm(d, vm, q->err, sizeof(q->err));
		pthread_mutex_unlock(&vm->op);
		if (r)
			fault(q, "%s", q->err);
		else
			api_respond_empty(q->resp, 204);
	} else if (!strcmp(a, "InstanceStop")) {
		/* Now, not after an operation in progress on the VM (a snapshot,
		 * a start): it ends with the VMM. */
		pthread_mutex_lock(&d->lock);
		skiffd_signal_stop(vm);
		pthread_mutex_unlock(&d->lock);
		pthread_mutex_lock(&vm->op);
		bool removed = vm->removed;
		int r = removed ? 0 : skiffd_stop_vm(d, vm, q->err, sizeof(q->err));
		pthread_mutex_unlock(&vm->op);
		if (removed)
			fault(q, "vm `%s` was deleted", vm->id);
		else if (r)
			fault(q, "%s", q->err);
		else
			api_respond_empty(q->resp, 204);
	} else if (!strcmp(a, "SendCtrlAltDel") || !strcmp(a, "FlushMetrics")) {
		proxy(q, vm, "actions");
	} else {
		char shown[80];
		api_json_printable(shown, sizeof(shown), a);
		fault(q, "actions.action_type: unknown action `%s` (InstanceStart, InstanceStop, "
		      "SendCtrlAltDel, FlushMetrics)", shown);
	}
}

/* DELETE: the VMM is told to end at once (so that an operation holding
 * vm->op, a snapshot or a start, ends with it), then, with vm->op, stopped
 * for good, its directory removed and its record taken out of the table.
 * Requests still working on it get "deleted" answers; the last frees it. */
static void delete_vm(struct req *q, struct skiffd_vm *vm)
{
	struct skiffd *d = q->d;
	pthread_mutex_lock(&d->lock);
	bool already = vm->deleting;
	if (!already) {
		vm->deleting = true;
		skiffd_signal_stop(vm);
	}
	pthread_mutex_unlock(&d->lock);
	if (already) {
		fault(q, "vm `%s` is being deleted already", vm->id);
		return;
	}
	pthread_mutex_lock(&vm->op);
	pthread_mutex_lock(&d->lock);
	bool running = vm->pid > 0;
	pthread_mutex_unlock(&d->lock);
	int r = running ? skiffd_stop_vm(d, vm, q->err, sizeof(q->err)) : 0;
	if (!r)
		r = skiffd_remove_vm_dir(vm, q->err, sizeof(q->err));
	pthread_mutex_lock(&d->lock);
	if (r)
		vm->deleting = false;
	else
		skiffd_unlink(d, vm);
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_unlock(&vm->op);
	if (r) {
		fault(q, "cannot remove vm `%s`: %s", vm->id, q->err);
		return;
	}
	skiffd_log("vm %s removed", vm->id);
	api_respond_empty(q->resp, 204);
}

/* ------------------------------------------------------------ snapshots */

static const struct api_field snapshot_fields[] = {
	{ "dir", API_T_STRING, true },
	{ "snapshot_type", API_T_STRING },
	{ NULL }
};

/* An operation on `vm` failed with q->err: say so, or that the VM was
 * deleted meanwhile (which is why it failed). */
static void deleted_or(struct req *q, struct skiffd_vm *vm)
{
	pthread_mutex_lock(&q->d->lock);
	bool gone = vm->deleting || vm->removed;
	pthread_mutex_unlock(&q->d->lock);
	if (gone)
		fault(q, "vm `%s` was deleted during the request", vm->id);
	else
		fault(q, "%s", q->err);
}

/* PUT /vms/{id}/snapshot {"dir", "snapshot_type"} */
static void snapshot_vm(struct req *q, struct skiffd_vm *vm, json_t *body)
{
	if (api_json_check_object(body, snapshot_fields, "snapshot", q->err, sizeof(q->err))) {
		fault(q, "%s", q->err);
		return;
	}
	const char *t = api_json_string(body, "snapshot_type");
	if (t && strcmp(t, "Full") && strcmp(t, "Diff")) {
		fault(q, "snapshot.snapshot_type: must be \"Full\" or \"Diff\"");
		return;
	}
	pthread_mutex_lock(&vm->op);
	int r = vm->removed ? -1 : skiffd_vm_snapshot(q->d, vm, api_json_string(body, "dir"), t, q->err,
						      sizeof(q->err));
	pthread_mutex_unlock(&vm->op);
	if (r)
		deleted_or(q, vm);
	else
		api_respond_empty(q->resp, 204);
}

/* Make the reserved record `vm` from the snapshot in `dir` and start it
 * (its op lock held throughout: until the start is done, a stop or delete
 * of it waits). false after answering with the reason. */
static bool make_and_start(struct req *q, struct skiffd_vm *vm, const char *dir, bool clone, const char *what)
{
	struct skiffd *d = q->d;
	pthread_mutex_lock(&vm->op);
	if (skiffd_vm_from_snapshot(d, vm, dir, clone, q->err, sizeof(q->err))) {
		pthread_mutex_unlock(&vm->op);
		fault(q, "%s%s", what, q->err);
		unreserve(d, vm);
		return false;
	}
	pthread_mutex_lock(&d->lock);
	vm->creating = false;
	pthread_mutex_unlock(&d->lock);
	skiffd_log("vm %s made from a snapshot", vm->id);
	int r = skiffd_start_vm(d, vm, q->err, sizeof(q->err));
	pthread_mutex_unlock(&vm->op);
	if (r) {
		fault(q, "%svm `%s` was made but did not start: %s", what, vm->id, q->err);
		skiffd_put(d, vm);
		return false;
	}
	return true;
}

static const struct api_field restore_fields[] = {
	{ "snapshot", API_T_STRING, true },
	{ "id", API_T_STRING },
	{ "name", API_T_STRING },
	{ NULL }
};

/* POST /vms {"snapshot": DIR, "id", "name"}: a new VM restored from DIR. */
static void restore(struct req *q, json_t *body)
{
	const char *id = NULL, *name = NULL;
	if (api_json_check_object(body, restore_fields, "vms", q->err, sizeof(q->err))) {
		fault(q, "%s", q->err);
		return;
	}
	if (!take_name(q, body, "id", &id) || !take_name(q, body, "name", &name))
		return;
	struct skiffd_vm *vm = reserve(q, id, name, false);
	if (!vm || !make_and_start(q, vm, api_json_string(body, "snapshot"), false, ""))
		return;
	reply_json(q, 201, vm_json(q->d, vm));
	skiffd_put(q->d, vm);
}

static const struct api_field clone_fields[] = {
	{ "count", API_T_UINT, true },
	{ NULL }
};

#define MAX_CLONES 64

/* POST /vms/{id}/clone {"count": N}: snapshot the running VM into its
 * directory, then N new VMs from it, each with its own CID, MACs, disk
 * copies and sockets, started. Replies with their ids. */
static void clone_vm(struct req *q, struct skiffd_vm *vm, json_t *body)
{
	uint64_t n = 0;
	if (api_json_check_object(body, clone_fields, "clone", q->err, sizeof(q->err))) {
		fault(q, "%s", q->err);
		return;
	}
	api_json_uint(body, "count", &n);
	if (n < 1 || n > MAX_CLONES) {
		fault(q, "clone.count: 1 to %d", MAX_CLONES);
		return;
	}
	char *dir = NULL;
	if (asprintf(&dir, "%s/clone-%lld", vm->dir, (long long)time(NULL)) < 0) {
		api_respond_fault(q->resp, 500, "out of memory");
		return;
	}
	/* The original is busy only for its snapshot. */
	pthread_mutex_lock(&vm->op);
	int r = vm->removed ? -1 : skiffd_vm_snapshot(q->d, vm, dir, "Full", q->err, sizeof(q->err));
	pthread_mutex_unlock(&vm->op);
	if (r) {
		deleted_or(q, vm);
		free(dir);
		return;
	}
	json_t *ids = json_array();
	for (uint64_t k = 0; k < n; k++) {
		char name[SKIFFD_MAX_ID + 16], what[64];
		snprintf(name, sizeof(name), "%s-%" PRIu64, vm->name ? vm->name : vm->id, k + 1);
		snprintf(what, sizeof(what), "clone %" PRIu64 " of %" PRIu64 ": ", k + 1, n);
		struct skiffd_vm *c = reserve(q, NULL, name, true);
		if (!c || !make_and_start(q, c, dir, true, what))
			break;
		json_array_append_new(ids, json_string(c->id));
		skiffd_put(q->d, c);
	}
	free(dir);
	if (json_array_size(ids) == n)
		reply_json(q, 201, json_pack("{s:o}", "clones", ids));
	else
		json_decref(ids);
}

/* ------------------------------------------------------------ routing */

static void bad_route(struct req *q)
{
	char m[16], shown[160];
	api_json_printable(m, sizeof(m), q->r->method_name);
	api_json_printable(shown, sizeof(shown), q->r->path);
	fault(q, "Invalid request method and/or path: %s %s.", m, shown);
}

static void daemon_info(struct req *q)
{
	struct skiffd *d = q->d;
	size_t total = 0, running = 0;
	pthread_mutex_lock(&d->lock);
	for (struct skiffd_vm *vm = d->vms; vm; vm = vm->next) {
		total += !vm->creating;
		running += vm->pid > 0;
	}
	uint64_t mem_running = skiffd_running_mem_mib(d);
	pthread_mutex_unlock(&d->lock);
	reply_json(q, 200, json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "app_name", "skiffd",
				     "version", SKIFF_VERSION, "state_dir", d->state_dir,
				     "mem_limit_mib", (json_int_t)d->mem_limit_mib,
				     "mem_running_mib", (json_int_t)mem_running,
				     "vms", (json_int_t)total, "running", (json_int_t)running));
}

static void route(struct req *q)
{
	const struct api_request *r = q->r;
	const char *p = r->path;
	while (*p == '/')
		p++;
	char path[1024];
	if (strlen(p) >= sizeof(path)) {
		bad_route(q);
		return;
	}
	snprintf(path, sizeof(path), "%s", p);
	size_t plen = strlen(path);
	bool trailing = plen && path[plen - 1] == '/';
	if (trailing)
		path[--plen] = 0;

	bool has_body = r->body_len > 0;
	if (is(r, "GET") && has_body) {
		fault(q, "GET request cannot have a body.");
		return;
	}

	if (!plen) {
		if (is(r, "GET"))
			daemon_info(q);
		else
			bad_route(q);
		return;
	}
	if (!strcmp(path, "metrics")) {
		if (!is(r, "GET")) {
			bad_route(q);
			return;
		}
		char *text = skiffd_metrics_text(q->d);
		if (!text)
			api_respond_fault(q->resp, 500, "out of memory");
		else
			api_respond_text(q->resp, 200, text);
		/* Prometheus' text exposition format. */
		q->resp->content_type = "text/plain; version=0.0.4";
		return;
	}
	if (strncmp(path, "vms", 3) || (path[3] && path[3] != '/')) {
		bad_route(q);
		return;
	}
	char *rest = path[3] ? path + 4 : NULL;     /* after "vms/" */
	char *sub = rest ? strchr(rest, '/') : NULL; /* after "vms/{id}" */
	if (sub)
		*sub++ = 0;

	/* Bodies are JSON objects wherever skiffd reads them itself. */
	json_t *body = NULL;
	bool own_body = !rest ? is(r, "POST") :
			(sub && ((!strcmp(sub, "actions") && is(r, "PUT")) ||
				 (!strcmp(sub, "snapshot") && is(r, "PUT")) ||
				 (!strcmp(sub, "clone") && is(r, "POST"))));
	if (own_body) {
		if (!has_body) {
			fault(q, "Empty %s request.", r->method_name);
			return;
		}
		body = api_json_parse_body(r->body, r->body_len, q->err, sizeof(q->err));
		if (!body) {
			fault(q, "%s", q->err);
			return;
		}
	}

	if (!rest) {
		if (is(r, "GET")) {
			/* The records under the lock; then each running VM's own
			 * state, asked with no lock held. */
			json_t *a = json_array();
			pthread_mutex_lock(&q->d->lock);
			for (struct skiffd_vm *vm = q->d->vms; vm && a; vm = vm->next)
				if (!vm->creating)
					json_array_append_new(a, skiffd_vm_json(q->d, vm));
			pthread_mutex_unlock(&q->d->lock);
			size_t k;
			json_t *o;
			json_array_foreach(a, k, o)
				skiffd_vm_json_live(o);
			reply_json(q, 200, a);
		} else if (is(r, "POST") && json_object_get(body, "snapshot")) {
			restore(q, body);
		} else if (is(r, "POST")) {
			create(q, body);
		} else {
			bad_route(q);
		}
		json_decref(body);
		return;
	}

	if (!*rest) {
		fault(q, "The VM id cannot be empty.");
		json_decref(body);
		return;
	}
	pthread_mutex_lock(&q->d->lock);
	struct skiffd_vm *vm = skiffd_get(q->d, rest);
	pthread_mutex_unlock(&q->d->lock);
	if (!vm) {
		char shown[80];
		api_json_printable(shown, sizeof(shown), rest);
		fault(q, "no VM with the id or name `%s`", shown);
		json_decref(body);
		return;
	}
	if (!sub && trailing) {
		proxy(q, vm, ""); /* /vms/{id}/ is the VM's own GET / */
	} else if (!sub) {
		if (is(r, "GET"))
			reply_json(q, 200, vm_json(q->d, vm));
		else if (is(r, "DELETE"))
			delete_vm(q, vm);
		else
			bad_route(q);
	} else if (!strcmp(sub, "actions") && is(r, "PUT")) {
		action(q, vm, body);
	} else if (!strcmp(sub, "snapshot") && is(r, "PUT")) {
		snapshot_vm(q, vm, body);
	} else if (!strcmp(sub, "clone") && is(r, "POST")) {
		clone_vm(q, vm, body);
	} else {
		proxy(q, vm, sub);
	}
	skiffd_put(q->d, vm);
	json_decref(body);
}

/* Runs on the API thread that serves the connection (a pool of threads
 * with one connection each, main.c): see skiffd.h for the locks. */
void skiffd_handle(void *ctx, const struct api_request *req, struct api_response *resp)
{
	struct skiffd *d = ctx;
	struct req q = { .d = d, .r = req, .resp = resp };
	pthread_mutex_lock(&d->lock);
	skiffd_reap(d);   /* what the request sees is up to date */
	pthread_mutex_unlock(&d->lock);
	route(&q);
}

/* The snapshot routes of the per-VM API (PUT /snapshot/create, PUT
 * /snapshot/load): their bodies, what the VMM puts in a snapshot and the
 * restored VM's configuration; see api_snapshot.h. */
#include "vmm/api_snapshot.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_check.h"
#include "base/clock.h"
#include "vmm/api_call.h"
#include "vmm/sandbox.h"
#include "vmm/vmm_core.h"
#include "virtio/net.h"

static const struct api_field create_fields[] = {
	{ "snapshot_type", API_T_STRING },
	{ "snapshot_path", API_T_STRING, true },
	{ "mem_file_path", API_T_STRING, true },
	{ NULL }
};

const char *vmm_snapshot_create_parse(const json_t *body, struct vmm_snapshot_create_req *out,
				      char *err, size_t errlen)
{
	if (api_json_check_object(body, create_fields, "snapshot", err, errlen))
		return err;
	const char *t = api_json_string(body, "snapshot_type");
	if (t && strcmp(t, "Full") && strcmp(t, "Diff")) {
		snprintf(err, errlen, "snapshot.snapshot_type: must be \"Full\" or \"Diff\"");
		return err;
	}
	out->type = t && !strcmp(t, "Diff") ? VM_SNAPSHOT_DIFF : VM_SNAPSHOT_FULL;
	out->state_path = api_json_string(body, "snapshot_path");
	out->mem_path = api_json_string(body, "mem_file_path");
	if (!*out->state_path || !*out->mem_path) {
		snprintf(err, errlen, "snapshot: snapshot_path and mem_file_path must not be empty");
		return err;
	}
	return NULL;
}

static const struct api_field mem_backend_fields[] = {
	{ "backend_type", API_T_STRING, true },
	{ "backend_path", API_T_STRING, true },
	{ NULL }
};

static const struct api_field forward_fields[] = {
	{ "protocol", API_T_STRING },
	{ "host_address", API_T_STRING },
	{ "host_port", API_T_UINT, true },
	{ "guest_port", API_T_UINT, true },
	{ NULL }
};

static const struct api_field net_override_fields[] = {
	{ "iface_id", API_T_STRING, true },
	{ "host_dev_name", API_T_STRING },
	{ "guest_mac", API_T_STRING },
	{ "port_forwards", API_T_ARRAY, false, forward_fields, API_T_OBJECT, 64 },
	{ NULL }
};

static const struct api_field port_override_fields[] = {
	{ "name", API_T_STRING, true },
	{ "uds_path", API_T_STRING, true },
	{ NULL }
};

static const struct api_field drive_override_fields[] = {
	{ "drive_id", API_T_STRING, true },
	{ "path_on_host", API_T_STRING, true },
	{ NULL }
};

static const struct api_field vsock_override_fields[] = {
	{ "uds_path", API_T_STRING },
	{ "guest_cid", API_T_UINT },
	{ NULL }
};

static const struct api_field load_fields[] = {
	{ "snapshot_path", API_T_STRING, true },
	{ "mem_backend", API_T_OBJECT, false, mem_backend_fields },
	{ "mem_file_path", API_T_STRING },
	{ "track_dirty_pages", API_T_BOOL },
	{ "enable_diff_snapshots", API_T_BOOL },
	{ "resume_vm", API_T_BOOL },
	{ "network_overrides", API_T_ARRAY, false, net_override_fields, API_T_OBJECT, 16 },
	{ "vsock_override", API_T_OBJECT, false, vsock_override_fields },
	{ "drive_overrides", API_T_ARRAY, false, drive_override_fields, API_T_OBJECT, 16 },
	{ "console_port_overrides", API_T_ARRAY, false, port_override_fields, API_T_OBJECT, 32 },
	{ "clock_realtime", API_T_BOOL },
	{ "huge_pages", API_T_STRING },
	{ NULL }
};

const char *vmm_snapshot_load_parse(const json_t *body, struct vmm_snapshot_load_req *out,
				    char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (api_json_check_object(body, load_fields, "snapshot", err, errlen))
		return err;
	const json_t *mb = api_json_member(body, "mem_backend");
	const char *mf = api_json_string(body, "mem_file_path");
	if (!mb == !mf) {
		snprintf(err, errlen, "snapshot: exactly one of mem_backend and mem_file_path must "
			 "be given");
		return err;
	}
	if (mb) {
		const char *type = api_json_string(mb, "backend_type");
		if (!strcmp(type, "Uffd")) {
			snprintf(err, errlen, "snapshot.mem_backend.backend_type: Uffd is not supported "
				 "here (skiff maps the memory file itself, copy-on-write): use File");
			return err;
		}
		if (strcmp(type, "File")) {
			snprintf(err, errlen, "snapshot.mem_backend.backend_type: must be \"File\"");
			return err;
		}
		mf = api_json_string(mb, "backend_path");
	}
	if (api_json_bool(body, "clock_realtime", false)) {
		snprintf(err, errlen, "snapshot.clock_realtime: only x86_64 has it; a restored "
			 "RISC-V guest's clock goes on from the snapshot (its RTC reads the "
			 "host's time)");
		return err;
	}
	const char *hp = api_json_string(body, "huge_pages");
	if (hp && strcmp(hp, "None") && strcmp(hp, "Snapshot")) {
		snprintf(err, errlen, "snapshot.huge_pages: \"%s\" is not supported (None or Snapshot)",
			 !strcmp(hp, "Transparent") || !strcmp(hp, "2M") ? hp : "?");
		return err;
	}
	out->state_path = api_json_string(body, "snapshot_path");
	out->mem_path = mf;
	if (!*out->state_path || !*out->mem_path) {
		snprintf(err, errlen, "snapshot: snapshot_path and the memory file path must not be empty");
		return err;
	}
	out->track_dirty = api_json_bool(body, "track_dirty_pages", false) ||
			   api_json_bool(body, "enable_diff_snapshots", false);
	out->resume = api_json_bool(body, "resume_vm", false);
	out->net_overrides = api_json_member(body, "network_overrides");
	out->vsock_override = api_json_member(body, "vsock_override");
	out->drive_overrides = api_json_member(body, "drive_overrides");
	out->port_overrides = api_json_member(body, "console_port_overrides");
	return NULL;
}

static void fmt_mac(char out[18], const uint8_t m[6])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

char *vmm_snapshot_conf(const struct vm_config *booted)
{
	json_t *cfg = vm_config_to_json(booted);
	if (!cfg)
		return NULL;
	/* A restored guest's driver knows the MAC it read at boot: keep it,
	 * also where it was derived from the VM's name. */
	json_t *nets = json_object_get(cfg, "network-interfaces");
	for (size_t k = 0; json_is_array(nets) && k < json_array_size(nets); k++) {
		json_t *n = json_array_get(nets, k);
		if (json_object_get(n, "guest_mac"))
			continue;
		uint8_t mac[6];
		char m[18];
		virtio_net_default_mac(booted->name, (unsigned)k, mac);
		fmt_mac(m, mac);
		json_object_set_new(n, "guest_mac", json_string(m));
	}
	/* Where the VMM writes its logs and metrics is the new process's
	 * business. */
	json_object_del(cfg, "logger");
	json_object_del(cfg, "metrics");
	json_t *doc = json_pack("{s:o,s:{s:s?,s:b,s:b,s:b}}", "vm_config", cfg, "skiff",
				"id", booted->name, "virtio_console", (int)booted->virtio_console,
				"rng", (int)booted->rng, "agent", (int)booted->agent);
	char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return s;
}

/* The entry of a configuration's array section (its interfaces, ports,
 * drives) whose member `key` is `id`; NULL if none. */
static json_t *find_entry(json_t *list, const char *key, const char *id)
{
	for (size_t k = 0; json_is_array(list) && k < json_array_size(list); k++) {
		json_t *e = json_array_get(list, k);
		const char *eid = json_string_value(json_object_get(e, key));
		if (eid && !strcmp(eid, id))
			return e;
	}
	return NULL;
}

static const char *apply_overrides(json_t *cfg, const struct vmm_snapshot_load_req *req,
				   char *err, size_t errlen)
{
	json_t *nets = json_object_get(cfg, "network-interfaces");
	for (size_t k = 0; req->net_overrides && k < json_array_size(req->net_overrides); k++) {
		const json_t *o = json_array_get(req->net_overrides, k);
		const char *id = api_json_string(o, "iface_id");
		json_t *n = find_entry(nets, "iface_id", id);
		char shown[80];
		api_json_printable(shown, sizeof(shown), id);
		if (!n) {
			snprintf(err, errlen, "snapshot.network_overrides: the snapshot has no "
				 "interface `%s`", shown);
			return err;
		}
		const char *dev = api_json_string(o, "host_dev_name");
		const char *mac = api_json_string(o, "guest_mac");
		if (dev) {
			const char *be = json_string_value(json_object_get(n, "backend"));
			if (be && strcmp(be, "tap")) {
				snprintf(err, errlen, "snapshot.network_overrides: interface `%s` uses "
					 "the user network; host_dev_name names a TAP device", shown);
				return err;
			}
			json_object_set_new(n, "host_dev_name", json_string(dev));
		}
		if (mac)
			json_object_set_new(n, "guest_mac", json_string(mac));
		/* Checked with the interface's other fields below. */
		const json_t *fw = api_json_member(o, "port_forwards");
		if (fw)
			json_object_set_new(n, "port_forwards", json_deep_copy(fw));
	}
	json_t *ports = json_object_get(cfg, "console-ports");
	for (size_t k = 0; req->port_overrides && k < json_array_size(req->port_overrides); k++) {
		const json_t *o = json_array_get(req->port_overrides, k);
		const char *name = api_json_string(o, "name");
		json_t *pt = find_entry(ports, "name", name);
		if (!pt) {
			char shown[80];
			api_json_printable(shown, sizeof(shown), name);
			snprintf(err, errlen, "snapshot.console_port_overrides: the snapshot has no port `%s`",
				 shown);
			return err;
		}
		json_object_set_new(pt, "uds_path", json_string(api_json_string(o, "uds_path")));
	}
	json_t *drives = json_object_get(cfg, "drives");
	for (size_t k = 0; req->drive_overrides && k < json_array_size(req->drive_overrides); k++) {
		const json_t *o = json_array_get(req->drive_overrides, k);
		const char *id = api_json_string(o, "drive_id");
		json_t *dr = find_entry(drives, "drive_id", id);
		if (!dr) {
			char shown[80];
			api_json_printable(shown, sizeof(shown), id);
			snprintf(err, errlen, "snapshot.drive_overrides: the snapshot has no drive `%s`", shown);
			return err;
		}
		json_object_set_new(dr, "path_on_host", json_string(api_json_string(o, "path_on_host")));
	}
	const json_t *vo = req->vsock_override;
	if (vo) {
		json_t *vs = json_object_get(cfg, "vsock");
		if (!json_is_object(vs)) {
			snprintf(err, errlen, "snapshot.vsock_override: the snapshot has no vsock device");
			return err;
		}
		const char *uds = api_json_string(vo, "uds_path");
		uint64_t cid;
		if (uds)
			json_object_set_new(vs, "uds_path", json_string(uds));
		if (api_json_uint(vo, "guest_cid", &cid))
			json_object_set_new(vs, "guest_cid", json_integer((json_int_t)cid));
	}
	return NULL;
}

static const struct api_field skiff_fields[] = {
	{ "id", API_T_STRING },
	{ "virtio_console", API_T_BOOL, true },
	{ "rng", API_T_BOOL, true },
	{ "agent", API_T_BOOL },   /* absent in snapshots made before the agent existed */
	{ NULL }
};


const char *vmm_snapshot_spec(struct vm_config *spec, const char *conf,
			      const struct vmm_snapshot_load_req *req, char *err, size_t errlen)
{
	char why[512];
	json_t *doc = api_json_parse_body(conf, strlen(conf), why, sizeof(why));
	if (!doc) {
		snprintf(err, errlen, "the snapshot's configuration is not JSON: %s", why);
		return err;
	}
	const char *e = NULL;
	json_t *cfg = json_object_get(doc, "vm_config");
	const json_t *sk = json_object_get(doc, "skiff");
	if (json_object_size(doc) != 2 || !json_is_object(cfg) || !json_is_object(sk) ||
	    api_json_check_object(sk, skiff_fields, "skiff", why, sizeof(why))) {
		snprintf(err, errlen, "the snapshot's configuration is not in skiff's shape "
			 "({\"vm_config\": {...}, \"skiff\": {...}})");
		e = err;
		goto out;
	}
	/* What the VMM decides besides the configuration, but the guest
	 * sees: the same devices must be there again. */
	spec->virtio_console = api_json_bool(sk, "virtio_console", false);
	spec->rng = api_json_bool(sk, "rng", true);
	spec->agent = api_json_bool(sk, "agent", false);
	json_t *boot = json_incref(json_object_get(cfg, "boot-source"));
	json_object_del(cfg, "boot-source");
	json_object_del(cfg, "logger");
	json_object_del(cfg, "metrics");
	if (apply_overrides(cfg, req, err, errlen)) {
		json_decref(boot);
		e = err;
		goto out;
	}
	if (vm_config_from_json(spec, cfg, why, sizeof(why))) {
		json_decref(boot);
		snprintf(err, errlen, "the snapshot's configuration does not fit here: %s", why);
		e = err;
		goto out;
	}
	/* Kept only if its files are still there; else a reboot of the
	 * restored guest says there is no kernel. */
	if (json_is_object(boot))
		vm_config_set(spec, VM_PUT_BOOT_SOURCE, NULL, boot, NULL, why, sizeof(why));
	json_decref(boot);
out:
	json_decref(doc);
	return e;
}

/* ------------------------------------------------------------ the routes */

/* PUT /snapshot/create: the VM must be paused (as Firecracker asks). */
void vmm_route_snapshot_create(struct vmm_call *c)
{
	struct vmm_snapshot_create_req rq;
	if (vmm_snapshot_create_parse(c->body, &rq, c->err, sizeof(c->err))) {
		vmm_call_fault(c, c->err);
		return;
	}
	if (!vmm_call_allowed(c))
		return;
	struct vmm *v = c->v;
	if (!v->paused) {
		vmm_call_fault(c, "Create snapshot error: the microVM must be paused first "
			 "(PATCH /vm {\"state\": \"Paused\"}).");
		return;
	}
	char *conf = vmm_snapshot_conf(&v->booted);
	if (!conf) {
		vmm_call_fault(c, "out of memory");
		return;
	}
	struct vm_snapshot_stats st;
	char why[768];
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
	int r = vm_snapshot_create(v->vm, conf, rq.type, rq.state_path, rq.mem_path, &st,
				   why, sizeof(why));
	free(conf);
	if (r) {
		snprintf(c->err, sizeof(c->err), "Create snapshot error: %s", why);
		vmm_call_fault(c, c->err);
		return;
	}
	LOG(v, VMM_LOG_INFO, "snapshot created (%s): state %" PRIu64 " bytes, %" PRIu64
	    " memory pages written, %" PRIu64 " ms", rq.type == VM_SNAPSHOT_DIFF ? "Diff" : "Full",
	    st.state_bytes, st.mem_pages, (clock_ns(CLOCK_MONOTONIC) - t0) / 1000000);
	vmm_call_ok(c);
}

/* PUT /snapshot/load: only on a VMM where nothing but the logger and the
 * metrics is configured (as Firecracker). The VM is built from the
 * snapshot's configuration with the request's overrides. */
void vmm_route_snapshot_load(struct vmm_call *c)
{
	/* Timed whole, from the parsed request to the answer (the log line
	 * below; bench/snapshot.py reads it as the VMM's own restore time). */
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
	uint64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	struct vmm_snapshot_load_req rq;
	if (vmm_snapshot_load_parse(c->body, &rq, c->err, sizeof(c->err))) {
		vmm_call_fault(c, c->err);
		return;
	}
	struct vmm *v = c->v;
	if (!vmm_call_allowed(c))
		return;
	if (v->configured) {
		vmm_call_fault(c, "Load snapshot error: only a fresh microVM can load a snapshot "
			 "(nothing but the logger and metrics may be configured before).");
		return;
	}
	if (sandbox_spent(v->sandbox)) {
		vmm_call_fault(c, "Load snapshot error: " SANDBOX_SPENT);
		return;
	}
	char why[768];
	/* Where the time goes (the log line below): state file read, VM
	 * built and loaded, other threads confined, harts started, this
	 * thread confined. */
	uint64_t at[6];
	at[0] = clock_ns(CLOCK_MONOTONIC);
	struct vm_snapshot_file *sf = vm_snapshot_open(rq.state_path, why, sizeof(why));
	if (!sf) {
		snprintf(c->err, sizeof(c->err), "Load snapshot error: %s", why);
		vmm_call_fault(c, c->err);
		return;
	}
	struct vm_config next, b;
	if (vm_config_copy(&next, &v->spec)) {
		vm_snapshot_close(sf);
		vmm_call_fault(c, "out of memory");
		return;
	}
	if (vmm_snapshot_spec(&next, vm_snapshot_config(sf), &rq, why, sizeof(why)) ||
	    vm_config_check(&next, why, sizeof(why))) {
		vm_snapshot_close(sf);
		vm_config_free(&next);
		snprintf(c->err, sizeof(c->err), "Load snapshot error: %s", why);
		vmm_call_fault(c, c->err);
		return;
	}
	if (vm_config_copy(&b, &next)) {
		vm_snapshot_close(sf);
		vm_config_free(&next);
		vmm_call_fault(c, "out of memory");
		return;
	}
	free(b.name);
	b.name = strdup(v->id);
	b.track_dirty_pages = rq.track_dirty;
	struct vm_console con = vmm_guest_console(v);
	at[1] = clock_ns(CLOCK_MONOTONIC);
	struct vm *vm = b.name ? vm_restore(&b, &con, sandbox_vm_threads(v->sandbox, &b), sf,
					       rq.mem_path, rq.track_dirty, why, sizeof(why)) : NULL;
	vm_snapshot_close(sf);
	if (vm && vmm_attach_mmds(v, vm, &b, why, sizeof(why))) {
		vm_destroy(vm);
		vm = NULL;
	}
	const char *bad = !vm ? (b.name ? why : "out of memory") : NULL;
	at[2] = clock_ns(CLOCK_MONOTONIC);
	if (!bad && sandbox_vm_built(v->sandbox, vm, &b, why, sizeof(why)))
		bad = why;
	at[3] = clock_ns(CLOCK_MONOTONIC);
	if (!bad && vm_restore_start(vm, !rq.resume))
		bad = "cannot start the harts";
	at[4] = clock_ns(CLOCK_MONOTONIC);
	if (!bad && sandbox_confine_self(v->sandbox, why, sizeof(why)))
		bad = why;
	at[5] = clock_ns(CLOCK_MONOTONIC);
	if (bad) {
		snprintf(c->err, sizeof(c->err), "Load snapshot error: %s", bad);
		if (vm)
			vm_destroy(vm);
		vm_config_free(&next);
		vm_config_free(&b);
		vmm_call_fault(c, c->err);
		return;
	}
	next.track_dirty_pages = rq.track_dirty;
	vm_config_free(&v->spec);
	v->spec = next;
	vm_config_free(&v->booted);
	v->booted = b;
	v->vm = vm;
	v->paused = !rq.resume;
	v->state = VMM_RUNNING;
	v->started_ns = clock_ns(CLOCK_MONOTONIC);
	v->last_metrics_ns = v->started_ns;
	LOG(v, VMM_LOG_INFO, "snapshot loaded from %s in %" PRIu64 " us (%" PRIu64 " us of this "
	    "thread's CPU time); the VM is %s; stages (us): request %" PRIu64 ", state file %"
	    PRIu64 ", build and load %" PRIu64 ", confine threads %" PRIu64 ", start harts %"
	    PRIu64 ", confine API thread %" PRIu64, rq.state_path,
	    (clock_ns(CLOCK_MONOTONIC) - t0) / 1000, (clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / 1000,
	    rq.resume ? "running" : "paused", (at[0] - t0) / 1000, (at[1] - at[0]) / 1000,
	    (at[2] - at[1]) / 1000, (at[3] - at[2]) / 1000, (at[4] - at[3]) / 1000,
	    (at[5] - at[4]) / 1000);
	/* The guest's clock stood still since the snapshot (vmm_tick sets it,
	 * once the VM runs). */
	v->clock_resync_due = true;
	vmm_call_ok(c);
}

const char *vmm_load_snapshot(struct vmm *v, const json_t *body, char *err, size_t errlen)
{
	struct api_response resp = { 0 };
	struct vmm_call c = { .v = v, .resp = &resp, .body = body };
	pthread_mutex_lock(&v->lock);
	if (vmm_call_route(&c, API_PUT, "snapshot/load"))
		vmm_route_snapshot_load(&c);
	pthread_mutex_unlock(&v->lock);
	const char *e = NULL;
	if (resp.status >= 400) {
		json_t *parsed = resp.body ? json_loads(resp.body, 0, NULL) : NULL;
		const json_t *fm = parsed ? json_object_get(parsed, "fault_message") : NULL;
		snprintf(err, errlen, "%s", json_is_string(fm) ? json_string_value(fm) : "failed");
		json_decref(parsed);
		e = err;
	}
	free(resp.body);
	return e;
}

/*
 * `skiff run` with --api-sock and/or --config-file; see run_api.h. Like
 * `firecracker --api-sock`: with nothing to boot yet, the VMM waits for the
 * API to configure it and send InstanceStart; with a config file (or
 * --kernel) it starts at once and the API, if any, serves runtime calls.
 * The main thread keeps the console and waits for the guest to end.
 */
#include "cli/run_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/console.h"
#include "vmm/api.h"
#include "vmm/snapshot.h"

/* The object member `name` of doc, created when absent; NULL when it exists
 * but is not an object (the config check then reports it). */
static json_t *section(json_t *doc, const char *name)
{
	json_t *s = json_object_get(doc, name);
	if (!s || json_is_null(s)) {
		s = json_object();
		json_object_set_new(doc, name, s);
	}
	return json_is_object(s) ? s : NULL;
}

/* Put the command line's VM options into the document: they are added to
 * (drives, interfaces, shares, console ports) or replace (the rest) what
 * the file says. */
static int overlay_cli(json_t *doc, const struct run_api_opts *o)
{
	const struct vm_config *c = o->cli;
	json_t *s;
	int r = 0;
	if ((o->kernel_given || o->initrd_given || o->append_given) && (s = section(doc, "boot-source"))) {
		if (o->kernel_given)
			r |= json_object_set_new(s, "kernel_image_path", json_string(c->kernel));
		if (o->initrd_given)
			r |= json_object_set_new(s, "initrd_path", json_string(c->initrd));
		if (o->append_given)
			r |= json_object_set_new(s, "boot_args", json_string(c->append));
	}
	if ((o->cpus_given || o->mem_given) && (s = section(doc, "machine-config"))) {
		if (o->cpus_given || !json_object_get(s, "vcpu_count"))
			r |= json_object_set_new(s, "vcpu_count", json_integer(c->ncpus));
		if (o->mem_given || !json_object_get(s, "mem_size_mib"))
			r |= json_object_set_new(s, "mem_size_mib",
						 json_integer((json_int_t)(o->mem_given ? c->mem_bytes >> 20 : VM_DEFAULT_MEM_MIB)));
	}
	if (c->ndrives) {
		json_t *arr = json_object_get(doc, "drives");
		if (!arr || json_is_null(arr)) {
			arr = json_array();
			json_object_set_new(doc, "drives", arr);
		}
		for (size_t i = 0; json_is_array(arr) && i < c->ndrives; i++) {
			json_t *e = vmm_drive_json(&c->drives[i]);
			if (!e)
				return -1;
			r |= json_array_append_new(arr, e);
		}
	}
	if (c->nnets) {
		json_t *arr = json_object_get(doc, "network-interfaces");
		if (!arr || json_is_null(arr)) {
			arr = json_array();
			json_object_set_new(doc, "network-interfaces", arr);
		}
		for (size_t i = 0; json_is_array(arr) && i < c->nnets; i++) {
			json_t *e = vmm_net_json(&c->nets[i]);
			if (!e)
				return -1;
			r |= json_array_append_new(arr, e);
		}
	}
	if (c->nshares) {
		json_t *arr = json_object_get(doc, "shares");
		if (!arr || json_is_null(arr)) {
			arr = json_array();
			json_object_set_new(doc, "shares", arr);
		}
		for (size_t i = 0; json_is_array(arr) && i < c->nshares; i++)
			r |= json_array_append_new(arr, vmm_share_json(&c->shares[i]));
	}
	if (c->nports) {
		json_t *arr = json_object_get(doc, "console-ports");
		if (!arr || json_is_null(arr)) {
			arr = json_array();
			json_object_set_new(doc, "console-ports", arr);
		}
		for (size_t i = 0; json_is_array(arr) && i < c->nports; i++)
			r |= json_array_append_new(arr, json_pack("{s:s,s:s}", "name", c->ports[i].name,
								  "uds_path", c->ports[i].uds_path));
	}
	if (c->vsock && c->vsock_uds)
		r |= json_object_set_new(doc, "vsock", json_pack("{s:I,s:s}", "guest_cid", (json_int_t)c->vsock_cid,
								 "uds_path", c->vsock_uds));
	if (c->balloon)
		r |= json_object_set_new(doc, "balloon", json_pack("{s:I,s:b,s:I}",
								   "amount_mib", (json_int_t)c->balloon_target_mib,
								   "deflate_on_oom", (int)c->balloon_deflate_on_oom,
								   "stats_polling_interval_s", (json_int_t)c->balloon_stats_interval_s));
	return r ? -1 : 0;
}

static size_t deliver(void *ctx, const uint8_t *buf, size_t n)
{
	/* Before InstanceStart the console holds what was typed. */
	return ctx ? vm_console_input(ctx, buf, n) : 0;
}

int run_api(const struct run_api_opts *o)
{
	char err[1024];
	json_t *doc = NULL;
	if (o->config_file) {
		doc = vmm_config_file_read(o->config_file, err, sizeof(err));
		if (!doc) {
			fprintf(stderr, "skiff run: --config-file %s\n", err);
			return 64;
		}
	} else {
		doc = json_object();
	}
	if (!doc || overlay_cli(doc, o)) {
		fprintf(stderr, "skiff run: out of memory\n");
		json_decref(doc);
		return 1;
	}

	struct console con;
	if (console_open(&con)) {
		fprintf(stderr, "skiff run: cannot set up the console: %s\n", strerror(errno));
		json_decref(doc);
		return 1;
	}
	struct vmm_params p = {
		.id = o->id,
		.version = o->version,
		.console = { .out = console_output, .ctx = &con },
		.dump_dtb = o->cli->dump_dtb,
		.virtio_console = o->cli->virtio_console,
		.no_rng = !o->cli->rng,
		.no_agent = !o->cli->agent,
	};
	int status = 0;
	bool con_open = true;
	char what[320] = "";     /* what the failure is about, for the message */
	struct vmm *v = vmm_new(&p, err, sizeof(err));
	if (!v) {
		status = 1;
		goto fail;
	}
	if (json_object_size(doc) && vmm_configure(v, doc, err, sizeof(err))) {
		if (o->config_file)
			snprintf(what, sizeof(what), "--config-file %s: ", o->config_file);
		status = 64;
		goto fail;
	}
	if (o->api_sock && vmm_listen(v, o->api_sock, err, sizeof(err))) {
		snprintf(what, sizeof(what), "--api-sock: ");
		status = 64;
		goto fail;
	}
	if (o->snapshot_dir) {
		char *state = NULL, *mem = NULL;
		json_t *body = NULL;
		if (asprintf(&state, "%s/" SNAPSHOT_STATE_FILE, o->snapshot_dir) >= 0 &&
		    asprintf(&mem, "%s/" SNAPSHOT_MEM_FILE, o->snapshot_dir) >= 0)
			body = json_pack("{s:s,s:{s:s,s:s},s:b}", "snapshot_path", state, "mem_backend",
					 "backend_type", "File", "backend_path", mem, "resume_vm", 1);
		const char *e = body ? vmm_load_snapshot(v, body, err, sizeof(err)) : "out of memory";
		if (e && e != err)
			snprintf(err, sizeof(err), "%s", e);
		json_decref(body);
		free(state);
		free(mem);
		if (e) {
			snprintf(what, sizeof(what), "--snapshot %s: ", o->snapshot_dir);
			status = 64;
			goto fail;
		}
	} else if (o->config_file || o->kernel_given || !o->api_sock) {
		/* A config file (or --kernel) means: start now, as Firecracker does. */
		if (vmm_start(v, err, sizeof(err))) {
			status = 64;
			goto fail;
		}
	}
	json_decref(doc);
	doc = NULL;

	for (;;) {
		struct vm *vm = vmm_vm(v);
		enum console_event ev = console_poll(&con, 50, deliver, vm);
		if (ev == CONSOLE_QUIT || ev == CONSOLE_SIGNAL) {
			if (!vm)
				break; /* nothing started: just leave */
			vm_end(vm, VM_STOPPED);
		}
		vmm_tick(v);
		if (!vm || !atomic_load(&vm->end))
			continue;
		enum vm_end why = vm_wait(vm);
		if (why == VM_CRASHED || why == VM_FAILED) {
			console_close(&con);
			con_open = false;
			if (why == VM_CRASHED)
				o->report_crash(vm);
			else
				fprintf(stderr, "skiff: the guest powered off reporting a failure\n");
			status = why == VM_CRASHED ? 2 : 1;
		}
		int r = vmm_vm_ended(v, why, err, sizeof(err));
		if (r == 1)
			continue; /* rebooted with the current configuration */
		if (r < 0) {
			if (con_open)
				console_close(&con);
			con_open = false;
			fprintf(stderr, "skiff run: the guest rebooted but could not be started again: %s\n", err);
			status = 1;
		}
		break;
	}
	vmm_free(v);
	if (con_open)
		console_close(&con);
	return status;

fail:
	vmm_free(v);
	console_close(&con);
	json_decref(doc);
	fprintf(stderr, "skiff run: %s%s\n", what, err);
	return status;
}

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

#include "base/gram.h"
#include "cli/console.h"
#include "vmm/api.h"
#include "vmm/snapshot.h"

static size_t deliver(void *ctx, const uint8_t *buf, size_t n)
{
	/* Before InstanceStart the console holds what was typed. */
	return ctx ? vm_console_input(ctx, buf, n) : 0;
}

int run_api(const struct run_api_opts *o)
{
	char err[1024];
	struct console con;
	if (console_open(&con)) {
		fprintf(stderr, "skiff run: cannot set up the console: %s\n", strerror(errno));
		return 1;
	}
	/* A restored VM's memory file truncated under it stops that VM with
	 * an error (vmm_tick) instead of killing the process by SIGBUS. */
	gram_catch_lost_pages();
	struct vmm_params p = {
		.id = o->cfg->name,
		.version = o->version,
		.console = { .out = console_output, .ctx = &con },
		.sandbox = o->sandbox,
	};
	int status = 0;
	int quit_status = 0;     /* what ending by VM_STOPPED means: Ctrl-A x or a signal */
	bool con_open = true;
	char what[320] = "";     /* what the failure is about, for the message */
	struct vmm *v = vmm_new(&p, err, sizeof(err));
	if (!v) {
		status = 1;
		goto fail;
	}
	if (vmm_set_config(v, o->cfg, o->configured, err, sizeof(err))) {
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
	} else if (o->start) {
		/* A config file (or --kernel) means: start now, as Firecracker does. */
		if (vmm_start(v, err, sizeof(err))) {
			status = 64;
			goto fail;
		}
	}

	for (;;) {
		struct vm *vm = vmm_vm(v);
		enum console_event ev = console_poll(&con, 50, deliver, vm);
		if (ev == CONSOLE_QUIT)
			quit_status = CONSOLE_QUIT_STATUS;
		if (ev == CONSOLE_QUIT || ev == CONSOLE_SIGNAL) {
			if (!vm) {
				status = quit_status; /* nothing started: just leave */
				break;
			}
			vm_end(vm, VM_STOPPED);
		}
		if (vm)
			vm_check_ram(vm);
		vmm_tick(v);
		if (!vm || !atomic_load(&vm->end))
			continue;
		enum vm_end why = vm_wait(vm);
		vm_check_ram(vm);
		if (why == VM_CRASHED || why == VM_FAILED) {
			console_close(&con);
			con_open = false;
			if (why == VM_CRASHED)
				o->report_crash(vm);
			else
				fprintf(stderr, "skiff: the guest powered off reporting a failure\n");
			status = why == VM_CRASHED ? 2 : 1;
		} else if (why == VM_STOPPED) {
			status = quit_status;
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
	fprintf(stderr, "skiff run: %s%s\n", what, err);
	return status;
}

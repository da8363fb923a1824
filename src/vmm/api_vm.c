/*
 * The per-VM API's routes for the instance itself: GET / (its id and
 * state), GET /version, PUT /actions (InstanceStart, SendCtrlAltDel,
 * FlushMetrics, each with its own rule for when it is allowed) and PATCH
 * /vm (pause and resume).
 */
#include "vmm/api_call.h"
#include "vmm/vmm_core.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/json_check.h"

static const struct api_field action_fields[] = {
	{ "action_type", API_T_STRING, true },
	{ NULL }
};

void vmm_route_actions(struct vmm_call *c)
{
	if (api_json_check_object(c->body, action_fields, "actions", c->err, sizeof(c->err))) {
		vmm_call_fault(c, c->err);
		return;
	}
	const char *a = api_json_string(c->body, "action_type");
	struct vmm *v = c->v;
	if (!strcmp(a, "InstanceStart")) {
		if (!vmm_call_require(c, ROUTE_PREBOOT))
			return;
		if (vmm_boot(v, c->err, sizeof(c->err))) {
			vmm_call_fault(c, c->err);
			return;
		}
		LOG(v, VMM_LOG_INFO, "InstanceStart: the VM is running (%u vCPUs, %" PRIu64 " MiB)",
		    v->spec.ncpus, v->spec.mem_bytes >> 20);
		vmm_call_ok(c);
	} else if (!strcmp(a, "SendCtrlAltDel")) {
		if (!vmm_call_require(c, ROUTE_POSTBOOT))
			return;
		int r = vm_request_shutdown(v->vm);
		if (r) {
			snprintf(c->err, sizeof(c->err), "SendCtrlAltDel: cannot ask the guest to shut down: %s",
				 r == -ENOSYS ? "not implemented yet" :
				 r == -ENODEV ? "the guest has no virtio-input driver loaded" : strerror(-r));
			vmm_call_fault(c, c->err);
			return;
		}
		vmm_call_ok(c);
	} else if (!strcmp(a, "FlushMetrics")) {
		if (!vmm_call_require(c, ROUTE_POSTBOOT))
			return;
		if (!vmm_write_metrics(v)) {
			vmm_call_fault(c, "FlushMetrics: the metrics line could not be written");
			return;
		}
		vmm_call_ok(c);
	} else {
		char shown[80];
		api_json_printable(shown, sizeof(shown), a);
		snprintf(c->err, sizeof(c->err),
			 "actions.action_type: unknown action `%s` (InstanceStart, SendCtrlAltDel, FlushMetrics)", shown);
		vmm_call_fault(c, c->err);
	}
}

static const struct api_field vm_state_fields[] = {
	{ "state", API_T_STRING, true },
	{ NULL }
};

void vmm_route_vm_state(struct vmm_call *c)
{
	if (api_json_check_object(c->body, vm_state_fields, "vm", c->err, sizeof(c->err))) {
		vmm_call_fault(c, c->err);
		return;
	}
	const char *s = api_json_string(c->body, "state");
	bool pause = !strcmp(s, "Paused");
	if (!pause && strcmp(s, "Resumed")) {
		vmm_call_fault(c, "vm.state: must be \"Paused\" or \"Resumed\"");
		return;
	}
	if (!vmm_call_allowed(c))
		return;
	struct vmm *v = c->v;
	if (pause && !v->paused) {
		vm_pause_all(v->vm);
		v->paused = true;
		LOG(v, VMM_LOG_INFO, "the VM is paused");
	} else if (!pause && v->paused) {
		vm_resume_all(v->vm);
		v->paused = false;
		LOG(v, VMM_LOG_INFO, "the VM is resumed");
		vmm_resync_guest_clock(v, "resumed");
	}
	vmm_call_ok(c);
}

void vmm_route_info(struct vmm_call *c)
{
	struct vmm *v = c->v;
	const char *state = v->state == VMM_NOT_STARTED ? "Not started" : v->paused ? "Paused" : "Running";
	vmm_call_json(c, json_pack("{s:s,s:s,s:s,s:s}", "id", v->id, "state", state,
			     "vmm_version", v->version, "app_name", "skiff"));
}

/* Firecracker's FirecrackerVersion. */
void vmm_route_version(struct vmm_call *c)
{
	vmm_call_json(c, json_pack("{s:s}", "firecracker_version", c->v->version));
}

/*
 * The per-VM API's metadata service routes: PUT, PATCH and GET /mmds, the
 * data store the guest reads over its NIC (Firecracker's MMDS; the service
 * itself is mmds.c). Allowed before and after start, as in Firecracker.
 * PUT /mmds/config is a configuration section (api_config.c).
 */
#include "vmm/api_call.h"
#include "vmm/vmm_core.h"

#include "vmm/mmds.h"

void vmm_route_mmds_get(struct vmm_call *c)
{
	if (!c->v->mmds) {
		vmm_call_fault(c, "out of memory");
		return;
	}
	json_t *doc = mmds_get(c->v->mmds);
	if (!doc)
		api_respond_fault(c->resp, 404, "The MMDS data store content can not be found.");
	else
		vmm_call_json(c, doc);
}

static void store(struct vmm_call *c, bool replace)
{
	if (!c->v->mmds) {
		vmm_call_fault(c, "out of memory");
		return;
	}
	int r = replace ? mmds_put(c->v->mmds, c->body, c->err, sizeof(c->err))
			: mmds_patch(c->v->mmds, c->body, c->err, sizeof(c->err));
	if (r)
		vmm_call_fault(c, c->err);
	else
		vmm_call_ok(c);
}

void vmm_route_mmds_put(struct vmm_call *c)
{
	store(c, true);
}

void vmm_route_mmds_patch(struct vmm_call *c)
{
	store(c, false);
}

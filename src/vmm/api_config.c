/*
 * The per-VM API's configuration routes: the sections of Firecracker's API
 * (machine-config, boot-source, drives, network-interfaces, vsock, balloon,
 * logger, metrics, serial, mmds-config, entropy) and skiff's shares, before start; their runtime
 * updates (PATCH of drives, interfaces and the balloon) after it; and the
 * configuration read back. The rules for when each is allowed are the route
 * table's (api_routes.c).
 *
 * A section is checked and applied to a copy of the configuration
 * (config_json.c); a runtime update then goes to the running device, and
 * only when both worked is the copy kept. A refused request changes
 * nothing.
 */
#include "vmm/api_call.h"
#include "vmm/vmm_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_check.h"
#include "vmm/serial_out.h"

/* PUT of a section before start: the row's request applies it to the
 * configuration (to a copy, kept only if it passes: no side effects). */
void vmm_route_section(struct vmm_call *c)
{
	if (vm_config_set(&c->v->spec, c->route->set, c->id, c->body, NULL, c->err, sizeof(c->err))) {
		vmm_call_fault(c, c->err);
	} else {
		c->v->configured = true;
		vmm_call_ok(c);
	}
}

/* PUT /logger and /metrics: the row's request on a copy, then the outputs
 * it names opened before the copy is kept. */
void vmm_route_outputs(struct vmm_call *c)
{
	struct vm_config next;
	if (vm_config_copy(&next, &c->v->spec)) {
		vmm_call_fault(c, "out of memory");
		return;
	}
	if (vm_config_set(&next, c->route->set, NULL, c->body, NULL, c->err, sizeof(c->err))) {
		vm_config_free(&next);
		vmm_call_fault(c, c->err);
		return;
	}
	bool logger = c->route->set == VM_PUT_LOGGER;
	if (vmm_commit_outputs(c->v, &next, logger, !logger, c->err, sizeof(c->err))) {
		vmm_call_fault(c, c->err);
		return;
	}
	vmm_call_ok(c);
}

/* The running VM's own configuration of drive `id`, or NULL. */
static struct vm_drive *booted_drive(struct vmm *v, const char *id)
{
	for (size_t i = 0; i < v->booted.ndrives; i++)
		if (v->booted.drives[i].id && !strcmp(v->booted.drives[i].id, id))
			return &v->booted.drives[i];
	return NULL;
}

void vmm_route_drive_patch(struct vmm_call *c)
{
	struct vm_config next;
	struct vm_drive_patch p;
	if (vm_config_copy(&next, &c->v->spec)) {
		vmm_call_fault(c, "out of memory");
		return;
	}
	if (vm_config_set(&next, VM_PATCH_DRIVE, c->id, c->body, &p, c->err, sizeof(c->err))) {
		vm_config_free(&next);
		vmm_call_fault(c, c->err);
		return;
	}
	const struct vm_drive *nd = &next.drives[p.index];
	/* booted describes the running VM (a snapshot records it), so it
	 * follows the drive too; its copy of the path is made before the
	 * swap, which cannot be undone for want of memory afterwards. */
	struct vm_drive *bd = booted_drive(c->v, nd->id);
	char *bpath = p.path_changed && bd ? strdup(nd->path) : NULL;
	if (p.path_changed && bd && !bpath) {
		vm_config_free(&next);
		vmm_call_fault(c, "out of memory");
		return;
	}
	char why[512] = "";
	if ((p.path_changed || p.limiter_changed) &&
	    vm_drive_update(c->v->vm, p.index, nd, p.path_changed, p.limiter_changed,
			    why, sizeof(why))) {
		free(bpath);
		vm_config_free(&next);
		snprintf(c->err, sizeof(c->err), "drives: cannot update drive `%s`: %s", c->id, why);
		vmm_call_fault(c, c->err);
		return;
	}
	if (bd) {
		if (bpath) {
			free(bd->path);
			bd->path = bpath;
			bd->format = nd->format;
		}
		bd->limiter = nd->limiter;
	}
	if (p.path_changed)
		LOG(c->v, VMM_LOG_INFO, "drive %s: now %s (%s)", c->id, nd->path,
		    nd->format == VM_DISK_QCOW2 ? "qcow2" : "raw");
	vm_config_free(&c->v->spec);
	c->v->spec = next;
	vmm_call_ok(c);
}

void vmm_route_net_patch(struct vmm_call *c)
{
	struct vm_config next;
	struct vm_net_patch p;
	if (vm_config_copy(&next, &c->v->spec)) {
		vmm_call_fault(c, "out of memory");
		return;
	}
	if (vm_config_set(&next, VM_PATCH_NET, c->id, c->body, &p, c->err, sizeof(c->err))) {
		vm_config_free(&next);
		vmm_call_fault(c, c->err);
		return;
	}
	char why[512] = "";
	if ((p.rx_changed || p.tx_changed) &&
	    vm_net_update(c->v->vm, p.index, &next.nets[p.index], p.rx_changed, p.tx_changed,
			  why, sizeof(why))) {
		vm_config_free(&next);
		snprintf(c->err, sizeof(c->err), "network-interfaces: cannot update interface `%s`: %s",
			 c->id, why);
		vmm_call_fault(c, c->err);
		return;
	}
	for (size_t i = 0; i < c->v->booted.nnets; i++) {   /* as for drives */
		struct vm_net *bn = &c->v->booted.nets[i];
		const char *id = next.nets[p.index].id;
		if (bn->id && id && !strcmp(bn->id, id)) {
			bn->rx = next.nets[p.index].rx;
			bn->tx = next.nets[p.index].tx;
		}
	}
	vm_config_free(&c->v->spec);
	c->v->spec = next;
	vmm_call_ok(c);
}

static void patch_balloon(struct vmm_call *c, bool stats)
{
	struct vm_config next;
	if (vm_config_copy(&next, &c->v->spec)) {
		vmm_call_fault(c, "out of memory");
		return;
	}
	const char *e = vm_config_set(&next, stats ? VM_PATCH_BALLOON_STATS : VM_PATCH_BALLOON, NULL, c->body,
				      NULL, c->err, sizeof(c->err));
	char why[512] = "";
	/* An unchanged interval is no change (Firecracker answers it with
	 * success, also when statistics are off: 0 stays 0). */
	uint32_t interval = next.balloon_stats_interval_s;
	bool same = stats && interval == c->v->spec.balloon_stats_interval_s;
	if (!e && !same && (stats ? vm_balloon_set_stats_interval(c->v->vm, interval, why, sizeof(why))
				  : vm_balloon_set_target(c->v->vm, next.balloon_target_mib, why, sizeof(why)))) {
		snprintf(c->err, sizeof(c->err), "balloon: cannot update the balloon: %s", why);
		e = c->err;
	}
	if (e) {
		vm_config_free(&next);
		vmm_call_fault(c, c->err);
		return;
	}
	vm_config_free(&c->v->spec);
	c->v->spec = next;
	vmm_call_ok(c);
}

/* Firecracker's balloon configuration, plus (once started) skiff's
 * additions: the size the guest reports holding and how much guest RAM
 * the device has given back to the host (by inflation and by free page
 * reporting), so a client can wait for the balloon's work rather than
 * sleep. */
void vmm_route_balloon_get(struct vmm_call *c)
{
	json_t *b = vm_config_balloon_json(&c->v->spec);
	if (!b) {
		vmm_call_fault(c, "balloon not configured");
		return;
	}
	struct vm_balloon_stats st;
	char why[256];
	if (c->v->state == VMM_RUNNING && c->v->vm &&
	    !vm_balloon_get_stats(c->v->vm, &st, why, sizeof(why))) {
		json_object_set_new(b, "actual_mib", json_integer((json_int_t)(st.actual_pages >> 8)));
		json_object_set_new(b, "inflated_bytes_total", json_integer((json_int_t)st.inflated_bytes));
		json_object_set_new(b, "free_page_reported_bytes_total",
				    json_integer((json_int_t)st.reported_bytes));
	}
	vmm_call_json(c, b);
}

void vmm_route_balloon_stats_get(struct vmm_call *c)
{
	const struct vm_config *cfg = &c->v->spec;
	if (!cfg->balloon) {
		vmm_call_fault(c, "balloon not configured");
		return;
	}
	if (!cfg->balloon_stats_interval_s) {
		vmm_call_fault(c, "balloon statistics are not enabled (stats_polling_interval_s was 0 at start)");
		return;
	}
	struct vm_balloon_stats st;
	memset(&st, 0, sizeof(st));
	char why[512] = "";
	if (vm_balloon_get_stats(c->v->vm, &st, why, sizeof(why))) {
		snprintf(c->err, sizeof(c->err), "balloon statistics are not available: %s", why);
		vmm_call_fault(c, c->err);
		return;
	}
	static const char *const names[VM_BALLOON_STATS] = {
		"swap_in", "swap_out", "major_faults", "minor_faults", "free_memory", "total_memory",
		"available_memory", "disk_caches", "hugetlb_allocations", "hugetlb_failures",
	};
	json_t *o = json_pack("{s:I,s:I,s:I,s:I}",
			      "target_pages", (json_int_t)st.target_pages,
			      "actual_pages", (json_int_t)st.actual_pages,
			      "target_mib", (json_int_t)(st.target_pages >> 8),
			      "actual_mib", (json_int_t)(st.actual_pages >> 8));
	for (unsigned i = 0; o && i < VM_BALLOON_STATS; i++)
		if (st.present & (1u << i))
			json_object_set_new(o, names[i], json_integer((json_int_t)st.stat[i]));
	vmm_call_json(c, o);
}

/* PUT /serial, before start: the console's output to a file or pipe,
 * and/or rate limited (serial_out.h). */
void vmm_route_serial_put(struct vmm_call *c)
{
	struct vmm_serial *s;
	if (vmm_serial_open(c->body, &s, c->err, sizeof(c->err))) {
		vmm_call_fault(c, c->err);
		return;
	}
	vmm_serial_free(c->v->serial);
	c->v->serial = s;
	vmm_call_ok(c);
}

void vmm_route_vm_config(struct vmm_call *c)
{
	vmm_call_json(c, vm_config_to_json(&c->v->spec));
}

void vmm_route_machine_get(struct vmm_call *c)
{
	vmm_call_json(c, vm_config_machine_json(&c->v->spec));
}

void vmm_route_balloon_patch(struct vmm_call *c)
{
	patch_balloon(c, false);
}

void vmm_route_balloon_stats_patch(struct vmm_call *c)
{
	patch_balloon(c, true);
}

static const struct api_field hint_start_fields[] = {
	{ "acknowledge_on_stop", API_T_BOOL },
	{ NULL }
};

/* PATCH /balloon/hinting/start and /stop, GET /balloon/hinting/status:
 * free page hinting. The body is checked before the rule. */
static void balloon_hinting(struct vmm_call *c, bool start, bool status)
{
	if (c->body && !start && !status) {
		vmm_call_fault(c, "balloon/hinting/stop takes no body");
		return;
	}
	if (c->body && api_json_check_object(c->body, hint_start_fields, "balloon/hinting/start",
					      c->err, sizeof(c->err))) {
		vmm_call_fault(c, c->err);
		return;
	}
	if (!vmm_call_allowed(c))
		return;
	char why[512] = "";
	int rc;
	uint32_t host = 0, guest = 0;
	if (status)
		rc = vm_balloon_hint_status(c->v->vm, &host, &guest, why, sizeof(why));
	else
		rc = vm_balloon_hint(c->v->vm, start,
				     c->body && api_json_bool(c->body, "acknowledge_on_stop", false),
				     why, sizeof(why));
	if (rc) {
		snprintf(c->err, sizeof(c->err), "balloon hinting: %s", why);
		vmm_call_fault(c, c->err);
	} else if (status) {
		vmm_call_json(c, json_pack("{s:I,s:I}", "host_cmd", (json_int_t)host, "guest_cmd", (json_int_t)guest));
	} else {
		vmm_call_ok(c);
	}
}

void vmm_route_balloon_hinting_start(struct vmm_call *c)
{
	balloon_hinting(c, true, false);
}

void vmm_route_balloon_hinting_stop(struct vmm_call *c)
{
	balloon_hinting(c, false, false);
}

void vmm_route_balloon_hinting_status(struct vmm_call *c)
{
	balloon_hinting(c, false, true);
}

void vmm_route_cpu_config(struct vmm_call *c)
{
	vmm_call_fault(c, "cpu-config: CPU templates change x86 CPUID and MSRs or aarch64 registers; "
		       "a RISC-V hart here has no such settings (its ISA is fixed: see the device "
		       "tree's riscv,isa)");
}

void vmm_route_hotplug_memory(struct vmm_call *c)
{
	vmm_call_fault(c, "hotplug/memory: memory hot-plug (virtio-mem) is not supported by skiff; "
		       "size the VM with machine-config.mem_size_mib and give memory back with the "
		       "balloon");
}

void vmm_route_pmem(struct vmm_call *c)
{
	vmm_call_fault(c, "pmem: virtio-pmem devices are not supported by skiff; use a drive "
		       "(virtio-blk) or a share (virtio-9p)");
}

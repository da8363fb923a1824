/*
 * Every route of the per-VM API, one row each: method, path, how the path's
 * id is checked, when the call is allowed (Firecracker's rules: the
 * configuration before InstanceStart, runtime updates after it) and the
 * handler. See api_call.h; the router is api.c.
 */
#include "vmm/api_call.h"

#include "vmm/config_json.h"

#define ROW(m, p, w, fn) { .method = API_##m, .path = p, .when = w, .handler = fn }
#define ROW_ID(m, p, idk, w, fn) { .method = API_##m, .path = p, .id = idk, .when = w, .handler = fn }
#define ROW_BODY_FIRST(m, p, w, fn) \
	{ .method = API_##m, .path = p, .when = w, .handler = fn, .body_first = true }
#define ROW_BODY_OPTIONAL(m, p, w, fn) \
	{ .method = API_##m, .path = p, .when = w, .handler = fn, .body_first = true, .body_optional = true }

/* A configuration section: its request (config_json.h) applied by the
 * shared handler, with the path's id for ROW_SET_ID. */
#define ROW_SET(m, p, w, req) \
	{ .method = API_##m, .path = p, .when = w, .handler = vmm_route_section, .set = req }
#define ROW_SET_ID(m, p, idk, w, req) \
	{ .method = API_##m, .path = p, .id = idk, .when = w, .handler = vmm_route_section, .set = req }
#define ROW_OUTPUTS(p, req) \
	{ .method = API_PUT, .path = p, .when = ROUTE_PREBOOT, .handler = vmm_route_outputs, .set = req }

const struct vmm_route vmm_routes[] = {
	/* The instance. */
	ROW(GET, "", ROUTE_ANY, vmm_route_info),
	ROW(GET, "version", ROUTE_ANY, vmm_route_version),
	ROW(GET, "vm/config", ROUTE_ANY, vmm_route_vm_config),
	/* InstanceStart before start; SendCtrlAltDel, FlushMetrics after. */
	ROW(PUT, "actions", ROUTE_ANY, vmm_route_actions),
	ROW_BODY_FIRST(PATCH, "vm", ROUTE_POSTBOOT, vmm_route_vm_state),

	/* Configuration. */
	ROW(GET, "machine-config", ROUTE_ANY, vmm_route_machine_get),
	ROW_SET(PUT, "machine-config", ROUTE_PREBOOT, VM_PUT_MACHINE),
	ROW_SET(PATCH, "machine-config", ROUTE_PREBOOT, VM_PATCH_MACHINE),
	ROW_SET(PUT, "boot-source", ROUTE_PREBOOT, VM_PUT_BOOT_SOURCE),
	ROW_SET_ID(PUT, "drives/{id}", ROUTE_ID_RESOURCE, ROUTE_PREBOOT, VM_PUT_DRIVE),
	ROW(PATCH, "drives/{id}", ROUTE_POSTBOOT, vmm_route_drive_patch),
	ROW_SET_ID(PUT, "network-interfaces/{id}", ROUTE_ID_RESOURCE, ROUTE_PREBOOT, VM_PUT_NET),
	ROW(PATCH, "network-interfaces/{id}", ROUTE_POSTBOOT, vmm_route_net_patch),
	ROW_SET_ID(PUT, "shares/{id}", ROUTE_ID_TAG, ROUTE_PREBOOT, VM_PUT_SHARE),
	ROW_SET(PUT, "vsock", ROUTE_PREBOOT, VM_PUT_VSOCK),
	ROW(GET, "balloon", ROUTE_ANY, vmm_route_balloon_get),
	ROW_SET(PUT, "balloon", ROUTE_PREBOOT, VM_PUT_BALLOON),
	ROW(PATCH, "balloon", ROUTE_POSTBOOT, vmm_route_balloon_patch),
	ROW(GET, "balloon/statistics", ROUTE_POSTBOOT, vmm_route_balloon_stats_get),
	ROW(PATCH, "balloon/statistics", ROUTE_POSTBOOT, vmm_route_balloon_stats_patch),
	/* Free page hinting (Firecracker's BalloonStartCmd, BalloonHintingStatus). */
	ROW_BODY_OPTIONAL(PATCH, "balloon/hinting/start", ROUTE_POSTBOOT, vmm_route_balloon_hinting_start),
	ROW_BODY_OPTIONAL(PATCH, "balloon/hinting/stop", ROUTE_POSTBOOT, vmm_route_balloon_hinting_stop),
	ROW_BODY_FIRST(GET, "balloon/hinting/status", ROUTE_POSTBOOT, vmm_route_balloon_hinting_status),
	ROW_OUTPUTS("logger", VM_PUT_LOGGER),
	ROW_OUTPUTS("metrics", VM_PUT_METRICS),
	ROW(PUT, "serial", ROUTE_PREBOOT, vmm_route_serial_put),
	/* virtio-rng (on in skiff anyway) and its rate limiter. */
	ROW_SET(PUT, "entropy", ROUTE_PREBOOT, VM_PUT_ENTROPY),

	/* The metadata service: its data at any time, its configuration
	 * before start. */
	ROW(GET, "mmds", ROUTE_ANY, vmm_route_mmds_get),
	ROW(PUT, "mmds", ROUTE_ANY, vmm_route_mmds_put),
	ROW(PATCH, "mmds", ROUTE_ANY, vmm_route_mmds_patch),
	/* Its version, address and the NICs that serve it. */
	ROW_SET(PUT, "mmds/config", ROUTE_PREBOOT, VM_PUT_MMDS),

	/* Snapshots: create needs a paused VM, load a fresh VMM. */
	ROW_BODY_FIRST(PUT, "snapshot/create", ROUTE_POSTBOOT, vmm_route_snapshot_create),
	ROW_BODY_FIRST(PUT, "snapshot/load", ROUTE_PREBOOT, vmm_route_snapshot_load),

	/* Firecracker's operations that have no meaning or device here: a
	 * clear refusal, whatever the body. */
	ROW(PUT, "cpu-config", ROUTE_ANY, vmm_route_cpu_config),
	ROW(GET, "hotplug/memory", ROUTE_ANY, vmm_route_hotplug_memory),
	ROW(PUT, "hotplug/memory", ROUTE_ANY, vmm_route_hotplug_memory),
	ROW(PATCH, "hotplug/memory", ROUTE_ANY, vmm_route_hotplug_memory),
	ROW_ID(PUT, "pmem/{id}", ROUTE_ID_ANY, ROUTE_ANY, vmm_route_pmem),
	ROW_ID(PATCH, "pmem/{id}", ROUTE_ID_ANY, ROUTE_ANY, vmm_route_pmem),

	/* The guest agent (skiff's; api_agent.h says what each takes). */
	ROW(GET, "agent", ROUTE_POSTBOOT, vmm_route_agent_info),
	ROW(PUT, "agent/exec", ROUTE_POSTBOOT, vmm_route_agent_exec_start),
	ROW_ID(PUT, "agent/exec/{id}", ROUTE_ID_ANY, ROUTE_POSTBOOT, vmm_route_agent_exec_io),
	ROW(PUT, "agent/files", ROUTE_POSTBOOT, vmm_route_agent_file_open),
	ROW_ID(PUT, "agent/files/{id}", ROUTE_ID_ANY, ROUTE_POSTBOOT, vmm_route_agent_file_op),
	ROW(PUT, "agent/hash", ROUTE_POSTBOOT, vmm_route_agent_hash),
	ROW(PUT, "agent/shutdown", ROUTE_POSTBOOT, vmm_route_agent_shutdown),
	ROW(GET, "agent/time", ROUTE_POSTBOOT, vmm_route_agent_time),
	ROW(PUT, "agent/time", ROUTE_POSTBOOT, vmm_route_agent_time),
	ROW(GET, "agent/clipboard", ROUTE_POSTBOOT, vmm_route_agent_clipboard),
	ROW(PUT, "agent/clipboard", ROUTE_POSTBOOT, vmm_route_agent_clipboard),
	ROW(PUT, "agent/command", ROUTE_POSTBOOT, vmm_route_agent_command),
};

const size_t vmm_nroutes = sizeof(vmm_routes) / sizeof(vmm_routes[0]);

/*
 * The per-VM API's routes as data, and what a route's handler gets.
 *
 * Every (method, path pattern) the VMM answers is one row of one table
 * (api_routes.c): its handler and Firecracker's rule for when it is allowed
 * (before InstanceStart, after it, or either; from Firecracker's
 * rpc_interface). The router (api.c) matches a request against the table
 * once, checks the path's id, parses the body and applies the row's rule,
 * then runs the handler. Handlers live beside their resource, one file per
 * large resource (api_config.c, api_vm.c, api_snapshot.c, api_agent.c).
 *
 * Adding a route: a handler in its resource's file, declared at the end of
 * this header, and one row in api_routes.c; a configuration section set
 * before start needs only the row, naming its request (ROW_SET).
 */
#ifndef SKIFF_VMM_API_CALL_H
#define SKIFF_VMM_API_CALL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "api/http.h"
#include "vmm/config_json.h"

struct vm;
struct vm_config;
struct vmm;

/* When a route is allowed. */
enum vmm_route_when {
	ROUTE_ANY,        /* whatever the state (the handler may look closer) */
	ROUTE_PREBOOT,    /* before InstanceStart (or a snapshot load) */
	ROUTE_POSTBOOT,   /* while the VM runs or is paused */
};

/* How the path's id segment ("{id}" in a pattern) must look. */
enum vmm_route_id {
	ROUTE_ID_RESOURCE,   /* a resource id: 1 to 64 of [A-Za-z0-9_] (Firecracker's) */
	ROUTE_ID_TAG,        /* a share tag (vmm_tag_valid) */
	ROUTE_ID_ANY,        /* any segment; the handler checks it */
};

struct vmm_call;

struct vmm_route {
	enum api_method method;
	/* Segments separated by '/', no leading slash ("" is the root); a
	 * segment "{id}" matches any one segment, checked as `id` says. */
	const char *path;
	enum vmm_route_id id;
	enum vmm_route_when when;
	void (*handler)(struct vmm_call *c);
	/* The handler checks its body before the rule and then calls
	 * vmm_call_allowed() itself: a malformed request is answered as
	 * malformed in any state (PATCH /vm, the snapshot calls). */
	bool body_first;
	/* A PUT or PATCH that may come without a body (balloon hinting). */
	bool body_optional;
	/* For the configuration sections' handlers (vmm_route_section,
	 * vmm_route_outputs): the section's request (config_json.h), given
	 * the path's id where the pattern has one. */
	enum vm_config_request set;
};

/* The table (api_routes.c). */
extern const struct vmm_route vmm_routes[];
extern const size_t vmm_nroutes;

/* One request on its way through a handler (the VMM's lock is held). */
struct vmm_call {
	struct vmm *v;
	const struct vmm_route *route;
	enum api_method method;
	const json_t *body;          /* NULL for a GET */
	const char *id;              /* the path's {id}, or NULL */
	struct vm *vm;               /* the running (or paused) VM, else NULL */
	bool paused;
	struct api_response *resp;
	char err[1024];
};

/* Answers: 400 with {"fault_message": msg}, 204, or 200 with `value`
 * (consumed; NULL answers 500, out of memory). */
void vmm_call_fault(struct vmm_call *c, const char *msg);
void vmm_call_ok(struct vmm_call *c);
void vmm_call_json(struct vmm_call *c, json_t *value);

/* Does the VMM's state allow `when`? If not, the fault is answered and
 * false returned. vmm_call_allowed() applies the route's own rule. */
bool vmm_call_require(struct vmm_call *c, enum vmm_route_when when);
bool vmm_call_allowed(struct vmm_call *c);

/* Give `c` the table's row for (m, path), a path without ids, as the
 * router would (for a call made from inside the VMM, like skiff run
 * --snapshot's load). False if the table has no such row. */
bool vmm_call_route(struct vmm_call *c, enum api_method m, const char *path);

/* ---- the handlers, by resource ---- */

/* api_vm.c: the instance, its version, actions, pause and resume. */
void vmm_route_info(struct vmm_call *c);
void vmm_route_version(struct vmm_call *c);
void vmm_route_actions(struct vmm_call *c);
void vmm_route_vm_state(struct vmm_call *c);

/* api_config.c: the configuration sections and their runtime updates.
 * A section set before start is the row's request applied by
 * vmm_route_section; logger and metrics, which open their outputs, by
 * vmm_route_outputs. */
void vmm_route_section(struct vmm_call *c);
void vmm_route_outputs(struct vmm_call *c);
void vmm_route_vm_config(struct vmm_call *c);
void vmm_route_machine_get(struct vmm_call *c);
void vmm_route_drive_patch(struct vmm_call *c);
void vmm_route_net_patch(struct vmm_call *c);
void vmm_route_balloon_get(struct vmm_call *c);
void vmm_route_balloon_patch(struct vmm_call *c);
void vmm_route_balloon_stats_get(struct vmm_call *c);
void vmm_route_balloon_stats_patch(struct vmm_call *c);
void vmm_route_balloon_hinting_start(struct vmm_call *c);
void vmm_route_balloon_hinting_stop(struct vmm_call *c);
void vmm_route_balloon_hinting_status(struct vmm_call *c);
void vmm_route_serial_put(struct vmm_call *c);
/* Firecracker operations without a meaning or a device here. */
void vmm_route_cpu_config(struct vmm_call *c);
void vmm_route_hotplug_memory(struct vmm_call *c);
void vmm_route_pmem(struct vmm_call *c);

/* api_mmds.c: the metadata service's data store. */
void vmm_route_mmds_get(struct vmm_call *c);
void vmm_route_mmds_put(struct vmm_call *c);
void vmm_route_mmds_patch(struct vmm_call *c);

/* api_snapshot.c */
void vmm_route_snapshot_create(struct vmm_call *c);
void vmm_route_snapshot_load(struct vmm_call *c);

/* api_agent.c: the guest agent (skiff's own routes). */
void vmm_route_agent_info(struct vmm_call *c);
void vmm_route_agent_exec_start(struct vmm_call *c);
void vmm_route_agent_exec_io(struct vmm_call *c);
void vmm_route_agent_file_open(struct vmm_call *c);
void vmm_route_agent_file_op(struct vmm_call *c);
void vmm_route_agent_hash(struct vmm_call *c);
void vmm_route_agent_shutdown(struct vmm_call *c);
void vmm_route_agent_time(struct vmm_call *c);
void vmm_route_agent_clipboard(struct vmm_call *c);
void vmm_route_agent_command(struct vmm_call *c);

#endif

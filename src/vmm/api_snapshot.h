/*
 * The snapshot requests of the per-VM API (Firecracker's shapes):
 *
 *   PUT /snapshot/create  {"snapshot_type": "Full"|"Diff", "snapshot_path",
 *                          "mem_file_path"}; the VM must be paused
 *   PUT /snapshot/load    {"snapshot_path", "mem_backend": {"backend_type":
 *                          "File", "backend_path"} (or the older
 *                          "mem_file_path"), "track_dirty_pages",
 *                          "resume_vm", "network_overrides": [{"iface_id",
 *                          "host_dev_name"}], "vsock_override":
 *                          {"uds_path"}}; only on a fresh VMM
 *
 * skiff adds, for clones: "guest_mac" and "port_forwards" (replacing the
 * user network's) in a network override, "guest_cid" in the vsock
 * override, "drive_overrides": [{"drive_id", "path_on_host"}] to give a
 * clone its own copy of a disk image (a writable image is locked by the VM
 * that has it open), and "console_port_overrides": [{"name", "uds_path"}]
 * for the host sockets of named console ports. This file checks the bodies and turns
 * a snapshot's embedded configuration plus the overrides into the
 * configuration the restored VM is built from; api.c runs them.
 */
#ifndef SKIFF_VMM_API_SNAPSHOT_H
#define SKIFF_VMM_API_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "vmm/config_json.h"
#include "vmm/snapshot.h"

struct vmm_snapshot_create_req {
	enum vm_snapshot_type type;
	const char *state_path, *mem_path;   /* point into the body */
};
const char *vmm_snapshot_create_parse(const json_t *body, struct vmm_snapshot_create_req *out,
				      char *err, size_t errlen);

struct vmm_snapshot_load_req {
	const char *state_path, *mem_path;   /* point into the body */
	bool track_dirty, resume;
	const json_t *net_overrides;         /* array or NULL */
	const json_t *vsock_override;        /* object or NULL */
	const json_t *drive_overrides;       /* array or NULL */
	const json_t *port_overrides;        /* array or NULL */
};
const char *vmm_snapshot_load_parse(const json_t *body, struct vmm_snapshot_load_req *out,
				    char *err, size_t errlen);

/* What the VMM puts in a snapshot: {"vm_config": GET /vm/config's document
 * with every NIC's MAC spelled out, "skiff": {"id", "virtio_console",
 * "rng", "agent"}} (the devices the VMM adds itself). malloc'd, NULL when
 * out of memory. */
char *vmm_snapshot_conf(const struct vm_config *booted);

/* The other way: apply a snapshot's document to `spec` (which keeps its
 * logger and metrics), then the request's overrides; virtio_console, rng
 * and agent come from the document too. The kernel is kept when its files
 * are still there (a reboot of the restored VM needs it). NULL, or err. */
const char *vmm_snapshot_spec(struct vm_config *spec, const char *conf,
			      const struct vmm_snapshot_load_req *req, char *err, size_t errlen);

#endif

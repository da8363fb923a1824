/*
 * The per-VM API: one VMM process configured and driven over HTTP/JSON on a
 * Unix socket, following Firecracker's API where the two overlap (endpoints,
 * field names, 204 with no body on success, 400 with {"fault_message": ...}
 * for bad input or a call in the wrong state, and which calls are allowed
 * before and after InstanceStart). Also the --config-file path, which fills
 * the same configuration without the API.
 *
 * Every route, with its rule for when it is allowed, is one row of the
 * table in api_routes.c (the router is api.c, the handlers api_vm.c,
 * api_config.c, api_snapshot.c and api_agent.c; see api_call.h). In short:
 * the configuration sections (machine-config, boot-source, drives,
 * network-interfaces, shares, vsock, balloon, logger, metrics, serial) are
 * PUT before InstanceStart; drives, interfaces and the balloon are PATCHed
 * after it; PUT /actions starts the VM, PATCH /vm pauses and resumes it;
 * /snapshot/create and /snapshot/load save and restore it; /agent/... talks
 * to its guest agent; GET /, /version, /vm/config, /machine-config and
 * /balloon answer any time.
 *
 * Threads: API requests are handled on the HTTP server's thread, one at a
 * time; InstanceStart creates and starts the VM there. The process's main
 * thread owns the console and the VM's end: it takes the running VM with
 * vmm_vm(), waits for it, and hands it back with vmm_vm_ended(), which
 * destroys it (or, on a guest reboot, builds it again from the current
 * configuration). Only the main thread destroys a VM.
 */
#ifndef SKIFF_VMM_API_H
#define SKIFF_VMM_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api/http.h"
#include "vmm/config_json.h"
#include "vmm/vm.h"

struct vmm_params {
	const char *id;              /* instance id; NULL: "anonymous-instance" */
	const char *version;         /* reported as vmm_version */
	struct vm_console console;   /* guest console output */
	struct sandbox *sandbox;     /* confines the process once a VM is built; may be NULL */
};

struct vmm;

struct vmm *vmm_new(const struct vmm_params *p, char *err, size_t errlen);
/* Stop the API server, destroy the VM if one is left, free everything. */
void vmm_free(struct vmm *v);

/* Before start: the configuration becomes a copy of `c` (a --config-file's
 * with skiff run's options over it; checked again here), and the logger
 * and metrics outputs it names are opened. `configured`: it was given (a
 * file or VM options), which rules out a snapshot load as a configuration
 * through the API does; else it holds only how to run the VM (engine,
 * console, rng, agent). */
const char *vmm_set_config(struct vmm *v, const struct vm_config *c, bool configured,
			   char *err, size_t errlen);
/* Serve the API on a new Unix socket at `path` (mode 0600). */
const char *vmm_listen(struct vmm *v, const char *path, char *err, size_t errlen);
/* Is a kernel configured (so that vmm_start can work)? */
bool vmm_has_boot_source(struct vmm *v);
/* InstanceStart. */
const char *vmm_start(struct vmm *v, char *err, size_t errlen);
/* PUT /snapshot/load with `body` (Firecracker's SnapshotLoadParams), for
 * `skiff run --snapshot`. NULL, or err. */
const char *vmm_load_snapshot(struct vmm *v, const json_t *body, char *err, size_t errlen);

/* The running VM, or NULL before InstanceStart. Main thread. */
struct vm *vmm_vm(struct vmm *v);
/* The VM returned by vmm_vm() ended (vm_wait returned `why`). On VM_REBOOT
 * the VM is built and started again from the current configuration and 1 is
 * returned; otherwise it is destroyed and 0 returned; -1 (message in err)
 * when a reboot could not build the VM again. */
int vmm_vm_ended(struct vmm *v, enum vm_end why, char *err, size_t errlen);
/* Call now and then from the main thread: periodic metrics (every 60 s). */
void vmm_tick(struct vmm *v);

/* One API request (what the HTTP server calls; also for tests). */
void vmm_handle(void *vmm, const struct api_request *req, struct api_response *resp);

/*
 * Hooks into the running VM's devices (implemented next to them, in
 * src/vmm/devices.c). Each runs on the API thread with the VM running or
 * paused, returns 0 or a negative errno with a message in err, and must not
 * keep pointers to its arguments. A failed hook leaves the configuration as
 * it was.
 */

/* SendCtrlAltDel: ask the guest to shut down cleanly (for example a power
 * button event or a console/agent request); returns once asked, not when the
 * guest has finished. */
int vm_request_shutdown(struct vm *vm);

/* PATCH /drives/{id} after start: `d` is the drive's new configuration
 * (index `index` in the vm_config the VM was created from). A new path
 * swaps the drive's image under the running guest (the new one opened
 * first, then virtio_blk_replace_disk, then the old one closed; a failure
 * leaves the old one serving); a new rate limiter applies at once. */
int vm_drive_update(struct vm *vm, size_t index, const struct vm_drive *d,
		    bool path_changed, bool limiter_changed, char *err, size_t errlen);

/* PATCH /network-interfaces/{id} after start: new rate limiters. */
int vm_net_update(struct vm *vm, size_t index, const struct vm_net *n,
		  bool rx_changed, bool tx_changed, char *err, size_t errlen);

/* PATCH /balloon: new target size; PATCH /balloon/statistics: new polling
 * interval (never 0 here: statistics are not turned on or off after start). */
int vm_balloon_set_target(struct vm *vm, uint32_t target_mib, char *err, size_t errlen);
int vm_balloon_set_stats_interval(struct vm *vm, uint32_t seconds, char *err, size_t errlen);

/* GET /balloon/statistics. The guest's statistics use the virtio balloon
 * tags as indexes (virtio 1.2 section 5.5.6.3); one counts only when its bit
 * is set in `present`. */
enum vm_balloon_stat {
	VM_BALLOON_SWAP_IN, VM_BALLOON_SWAP_OUT, VM_BALLOON_MAJOR_FAULTS, VM_BALLOON_MINOR_FAULTS,
	VM_BALLOON_FREE_MEMORY, VM_BALLOON_TOTAL_MEMORY, VM_BALLOON_AVAILABLE_MEMORY,
	VM_BALLOON_DISK_CACHES, VM_BALLOON_HUGETLB_ALLOCATIONS, VM_BALLOON_HUGETLB_FAILURES,
	VM_BALLOON_STATS
};
struct vm_balloon_stats {
	uint64_t target_pages, actual_pages;   /* 4 KiB pages */
	/* Guest RAM the device gave back to the host since the VM started,
	 * by inflation and by free page reporting. */
	uint64_t inflated_bytes, reported_bytes;
	uint32_t present;                      /* 1u << enum vm_balloon_stat */
	uint64_t stat[VM_BALLOON_STATS];
};
int vm_balloon_get_stats(struct vm *vm, struct vm_balloon_stats *out, char *err, size_t errlen);

/* The metadata service on the NICs cfg marks (src/vmm/mmds.h). */
struct mmds;
int vm_devices_attach_mmds(struct vm *vm, const struct vm_config *cfg, struct mmds *m,
			   char *err, size_t errlen);

/* PATCH /balloon/hinting/start and /stop, GET /balloon/hinting/status:
 * free page hinting runs (virtio_balloon_hint). */
int vm_balloon_hint(struct vm *vm, bool start, bool ack_on_stop, char *err, size_t errlen);
int vm_balloon_hint_status(struct vm *vm, uint32_t *host_cmd, uint32_t *guest_cmd, char *err,
			   size_t errlen);

#endif

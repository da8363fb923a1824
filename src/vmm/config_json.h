/*
 * A VMM's whole configuration as JSON: the sections of a --config-file
 * document and of the API's PUT/PATCH bodies (Firecracker's names where the
 * two overlap: boot-source, machine-config, drives, network-interfaces,
 * vsock, balloon, logger, metrics; plus skiff's shares, console-ports,
 * cpu_quota, drive format/serial and the user-mode network backend), and
 * GET /vm/config.
 *
 * Every request checks its input completely (shape, types, ranges, files that
 * must exist, ids, cross-section rules such as one root drive or a balloon no
 * larger than RAM) and changes the configuration only when all of it is right:
 * a refused request leaves it exactly as it was. Messages name the
 * field ("drives.rate_limiter.ops.size: ...").
 */
#ifndef SKIFF_VMM_CONFIG_JSON_H
#define SKIFF_VMM_CONFIG_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "vmm/config.h"

/* The kernel command line when none is given, by console: with hvc0 the
 * console appears only once the guest loads virtio_mmio, so the SBI early
 * console carries the kernel's first lines. */
#define VMM_DEFAULT_BOOT_ARGS "console=ttyS0 earlycon=sbi quiet"
#define VMM_DEFAULT_BOOT_ARGS_HVC "console=hvc0 earlycon=sbi quiet"
#define VMM_MAX_ID_LEN 64

/* Is `id` a valid resource id (1..VMM_MAX_ID_LEN of [A-Za-z0-9_])? */
bool vmm_id_valid(const char *id);
/* Is `tag` a valid share tag (as for `skiff run --share`: 1..64 of
 * [A-Za-z0-9_.+@:-], not starting with '.' or '-')? */
bool vmm_tag_valid(const char *tag);

/*
 * The configuration requests: one for each section's PUT, and PATCH where
 * it has one. vm_config_set() runs each the same way: the body checked
 * against the section's table, then the section applied to a copy of the
 * configuration that replaces it only if the rules across sections pass.
 * It returns NULL on success, else err. `path_id` is the id from the URL
 * (drives/{id}, network-interfaces/{id}, shares/{tag}; NULL for the
 * others); `out` is where a runtime update reports what changed (struct
 * vm_drive_patch for VM_PATCH_DRIVE, struct vm_net_patch for VM_PATCH_NET)
 * and NULL for every other request.
 */
enum vm_config_request {
	VM_CONFIG_NONE,               /* 0: sets nothing (a route of another kind) */
	VM_PUT_BOOT_SOURCE,
	VM_PUT_MACHINE,
	VM_PATCH_MACHINE,
	VM_PUT_DRIVE,
	VM_PATCH_DRIVE,               /* after start too (a new image, its limiter) */
	VM_PUT_NET,
	VM_PATCH_NET,                 /* after start too (the limiters) */
	VM_PUT_SHARE,
	VM_PUT_VSOCK,
	VM_PUT_BALLOON,
	VM_PATCH_BALLOON,             /* after start: the target */
	VM_PATCH_BALLOON_STATS,       /* after start: the statistics' interval */
	VM_PUT_LOGGER,
	VM_PUT_METRICS,
	VM_PUT_ENTROPY,               /* Firecracker's EntropyDeviceConfig */
	VM_PUT_MMDS,                  /* PUT /mmds/config (Firecracker's MmdsConfig) */
	VM_CONFIG_DOCUMENT,           /* a whole document (vm_config_from_json) */
	VM_CONFIG_REQUESTS
};

/* What a runtime update changed, for the caller to apply to the running
 * devices before it keeps the new configuration. */
struct vm_drive_patch {
	size_t index;              /* into vm.drives */
	bool path_changed, limiter_changed;
};
struct vm_net_patch {
	size_t index;              /* into vm.nets */
	bool rx_changed, tx_changed;
};

const char *vm_config_set(struct vm_config *s, enum vm_config_request r, const char *path_id,
			  const json_t *body, void *out, char *err, size_t errlen);

/* A whole --config-file document, applied on top of `s` (all or nothing). */
const char *vm_config_from_json(struct vm_config *s, const json_t *doc, char *err, size_t errlen);
/* Read a --config-file (at most 1 MiB, one JSON object, no duplicate
 * keys) without applying it; NULL with a message naming the line on error. */
json_t *vmm_config_file_read(const char *path, char *err, size_t errlen);
/* Read and apply a --config-file. */
const char *vm_config_load_file(struct vm_config *s, const char *path, char *err, size_t errlen);

/* The string members of a configuration document that name a host file
 * the VMM opens (kernel, initrd, drives' and shares' paths, the vsock
 * socket, log and metrics files): fn(object, key, path, where, ctx) for
 * each one present, `where` naming it for messages
 * ("drives[0].path_on_host"); a non-zero return stops the walk and is
 * returned. skiffd refuses relative ones, skiff create makes them absolute. */
typedef int (*vm_config_path_fn)(json_t *obj, const char *key, const char *path, const char *where,
				 void *ctx);
int vm_config_json_paths(json_t *doc, vm_config_path_fn fn, void *ctx);

/* GET /vm/config: the document --config-file reads. NULL if out of memory. */
json_t *vm_config_to_json(const struct vm_config *s);
json_t *vm_config_machine_json(const struct vm_config *s);
json_t *vm_config_balloon_json(const struct vm_config *s);
/* The entropy device's section (NULL if not set). */
json_t *vm_config_entropy_json(const struct vm_config *s);
/* The metadata service's configuration (NULL if none). */
json_t *vm_config_mmds_json(const struct vm_config *s);   /* NULL if none */

/* The log levels by name (case-insensitive); -1 if unknown. */
int vmm_log_level_parse(const char *name);
const char *vmm_log_level_name(enum vmm_log_level l);

#endif

/*
 * A VMM's whole configuration as JSON: the sections of a --config-file
 * document and of the API's PUT/PATCH bodies (Firecracker's names where the
 * two overlap: boot-source, machine-config, drives, network-interfaces,
 * vsock, balloon, logger, metrics; plus skiff's shares, console-ports,
 * cpu_quota, drive format/serial and the user-mode network backend), and
 * GET /vm/config.
 *
 * Every setter checks its input completely (shape, types, ranges, files that
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
 * The sections. Each returns NULL on success, else err. `path_id` is the id
 * from the URL (drives/{id}, ...); NULL when the id comes from the body only
 * (a --config-file entry).
 */
const char *vm_config_put_boot_source(struct vm_config *s, const json_t *body, char *err, size_t errlen);
const char *vm_config_put_machine_config(struct vm_config *s, const json_t *body, char *err, size_t errlen);
const char *vm_config_patch_machine_config(struct vm_config *s, const json_t *body, char *err, size_t errlen);
const char *vm_config_put_drive(struct vm_config *s, const char *path_id, const json_t *body,
			       char *err, size_t errlen);
const char *vm_config_put_net(struct vm_config *s, const char *path_id, const json_t *body,
			     char *err, size_t errlen);
const char *vm_config_put_vsock(struct vm_config *s, const json_t *body, char *err, size_t errlen);
const char *vm_config_put_balloon(struct vm_config *s, const json_t *body, char *err, size_t errlen);
const char *vm_config_put_logger(struct vm_config *s, const json_t *body, char *err, size_t errlen);
const char *vm_config_put_metrics(struct vm_config *s, const json_t *body, char *err, size_t errlen);
const char *vm_config_put_share(struct vm_config *s, const char *path_tag, const json_t *body,
			       char *err, size_t errlen);

/* The runtime updates (PATCH after start). They also report what changed so
 * the caller can apply it to the running devices before keeping it. */
struct vm_drive_patch {
	size_t index;              /* into vm.drives */
	bool path_changed, limiter_changed;
};
const char *vm_config_patch_drive(struct vm_config *s, const char *path_id, const json_t *body,
				 struct vm_drive_patch *out, char *err, size_t errlen);
struct vm_net_patch {
	size_t index;              /* into vm.nets */
	bool rx_changed, tx_changed;
};
const char *vm_config_patch_net(struct vm_config *s, const char *path_id, const json_t *body,
			       struct vm_net_patch *out, char *err, size_t errlen);
const char *vm_config_patch_balloon(struct vm_config *s, const json_t *body, char *err, size_t errlen);
const char *vm_config_patch_balloon_stats(struct vm_config *s, const json_t *body, char *err, size_t errlen);

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
/* PUT /entropy (Firecracker's EntropyDeviceConfig), and back (NULL if
 * not set). */
const char *vm_config_put_entropy(struct vm_config *s, const json_t *body, char *err, size_t errlen);
json_t *vm_config_entropy_json(const struct vm_config *s);
/* PUT /mmds/config (Firecracker's MmdsConfig), and back (NULL if none). */
const char *vm_config_put_mmds(struct vm_config *s, const json_t *body, char *err, size_t errlen);
json_t *vm_config_mmds_json(const struct vm_config *s);   /* NULL if none */

/* The log levels by name (case-insensitive); -1 if unknown. */
int vmm_log_level_parse(const char *name);
const char *vmm_log_level_name(enum vmm_log_level l);

#endif

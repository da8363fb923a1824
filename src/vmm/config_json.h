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
 * larger than RAM) and changes the spec only when all of it is right:
 * a refused request leaves the spec exactly as it was. Messages name the
 * field ("drives.rate_limiter.ops.size: ...").
 */
#ifndef SKIFF_VMM_CONFIG_JSON_H
#define SKIFF_VMM_CONFIG_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "vmm/config.h"

#define VMM_DEFAULT_MEM_MIB 512
#define VMM_DEFAULT_BOOT_ARGS "console=ttyS0 earlycon=sbi quiet"
#define VMM_MAX_ID_LEN 64
#define VMM_MAX_CMDLINE 1023   /* RISC-V Linux COMMAND_LINE_SIZE is 1024 */

enum vmm_log_level {
	VMM_LOG_OFF, VMM_LOG_ERROR, VMM_LOG_WARNING, VMM_LOG_INFO, VMM_LOG_DEBUG, VMM_LOG_TRACE,
};

struct vmm_logger_config {
	bool set;
	char *log_path;            /* NULL: standard error */
	enum vmm_log_level level;
	bool show_level, show_log_origin;
};

struct vmm_metrics_config {
	bool set;
	char *path;
};

struct vmm_spec {
	struct vm_config vm;       /* every string in it is malloc'd and owned */
	bool track_dirty_pages;    /* accepted for Firecracker clients; no effect */
	struct vmm_logger_config logger;
	struct vmm_metrics_config metrics;
};

void vmm_spec_init(struct vmm_spec *s);
void vmm_spec_free(struct vmm_spec *s);
/* Deep copy; -1 when out of memory (dst is then empty). */
int vmm_spec_copy(struct vmm_spec *dst, const struct vmm_spec *src);

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
const char *vmm_spec_put_boot_source(struct vmm_spec *s, const json_t *body, char *err, size_t errlen);
const char *vmm_spec_put_machine_config(struct vmm_spec *s, const json_t *body, char *err, size_t errlen);
const char *vmm_spec_patch_machine_config(struct vmm_spec *s, const json_t *body, char *err, size_t errlen);
const char *vmm_spec_put_drive(struct vmm_spec *s, const char *path_id, const json_t *body,
			       char *err, size_t errlen);
const char *vmm_spec_put_net(struct vmm_spec *s, const char *path_id, const json_t *body,
			     char *err, size_t errlen);
const char *vmm_spec_put_vsock(struct vmm_spec *s, const json_t *body, char *err, size_t errlen);
const char *vmm_spec_put_balloon(struct vmm_spec *s, const json_t *body, char *err, size_t errlen);
const char *vmm_spec_put_logger(struct vmm_spec *s, const json_t *body, char *err, size_t errlen);
const char *vmm_spec_put_metrics(struct vmm_spec *s, const json_t *body, char *err, size_t errlen);
const char *vmm_spec_put_share(struct vmm_spec *s, const char *path_tag, const json_t *body,
			       char *err, size_t errlen);

/* The runtime updates (PATCH after start). They also report what changed so
 * the caller can apply it to the running devices before keeping it. */
struct vmm_drive_patch {
	size_t index;              /* into vm.drives */
	bool path_changed, limiter_changed;
};
const char *vmm_spec_patch_drive(struct vmm_spec *s, const char *path_id, const json_t *body,
				 struct vmm_drive_patch *out, char *err, size_t errlen);
struct vmm_net_patch {
	size_t index;              /* into vm.nets */
	bool rx_changed, tx_changed;
};
const char *vmm_spec_patch_net(struct vmm_spec *s, const char *path_id, const json_t *body,
			       struct vmm_net_patch *out, char *err, size_t errlen);
const char *vmm_spec_patch_balloon(struct vmm_spec *s, const json_t *body, char *err, size_t errlen);
const char *vmm_spec_patch_balloon_stats(struct vmm_spec *s, const json_t *body, char *err, size_t errlen);

/* A whole --config-file document, applied on top of `s` (all or nothing). */
const char *vmm_spec_from_json(struct vmm_spec *s, const json_t *doc, char *err, size_t errlen);
/* Read a --config-file (at most 1 MiB, one JSON object, no duplicate
 * keys) without applying it; NULL with a message naming the line on error. */
json_t *vmm_config_file_read(const char *path, char *err, size_t errlen);
/* Read and apply a --config-file. */
const char *vmm_spec_load_file(struct vmm_spec *s, const char *path, char *err, size_t errlen);

/* Rules across sections (balloon within RAM, quota within vCPUs, unique MACs,
 * TAP names and forwarded ports). */
const char *vmm_spec_check(const struct vmm_spec *s, char *err, size_t errlen);

/* GET /vm/config: the document --config-file reads. NULL if out of memory. */
json_t *vmm_spec_to_json(const struct vmm_spec *s);
json_t *vmm_spec_machine_config_json(const struct vmm_spec *s);
json_t *vmm_drive_json(const struct vm_drive *d);               /* one "drives" entry */
json_t *vmm_net_json(const struct vm_net *n);   /* one "network-interfaces" entry */
json_t *vmm_share_json(const struct vm_share *sh);  /* one "shares" entry */
json_t *vmm_spec_balloon_json(const struct vmm_spec *s);   /* NULL if none */

/* The log levels by name (case-insensitive); -1 if unknown. */
int vmm_log_level_parse(const char *name);
const char *vmm_log_level_name(enum vmm_log_level l);

#endif

/*
 * JSON to struct vm_config, for the VMM API and --config-file; see
 * config_json.h (the way back is config_json_write.c). Each section is checked against its declared shape first
 * (api_json_check_object), then for ranges, files and ids, and applied to a
 * copy of the configuration; the copy replaces it only when the section and the
 * rules across sections (vm_config_check) all pass.
 */
#include "vmm/config_json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/json_check.h"
#include "base/unix_sock.h"
#include "machine/board.h"
#include "machine/loader.h"

#define MSG(...) (snprintf(err, errlen, __VA_ARGS__), err)

/* ------------------------------------------------------------ the shapes */

/*
 * A section's table says each member's shape and, where it is stored as it
 * is, its destination and range (api_json_store): adding such a field is
 * one row. Members with rules of their own (files, ids, addresses, names)
 * have no destination; their section reads them.
 */
/* The bytes a store kind writes: a row whose destination is not of that
 * size does not compile. */
#define STORE_SIZE(how)                                                                            \
	((how) == API_S_U16 ? 2 : (how) == API_S_U32 ? 4 :                                         \
	 (how) == API_S_BOOL || (how) == API_S_NOT ? sizeof(bool) :                                \
	 (how) == API_S_STRING ? sizeof(char *) : 8)
#define AT(how, type, member)                                                                      \
	.store = (how),                                                                            \
	.off = offsetof(type, member) +                                                            \
	       0 * sizeof(char[sizeof(((type *)0)->member) == STORE_SIZE(how) ? 1 : -1])
#define CFG(how, member) AT(how, struct vm_config, member)
#define BOOL_ROW(name, type, member) { name, API_T_BOOL, false, AT(API_S_BOOL, type, member) }

static const struct api_field bucket_fields[] = {
	{ "size", API_T_UINT, true, AT(API_S_U64, struct vm_token_bucket, size) },
	{ "one_time_burst", API_T_UINT, false, AT(API_S_U64, struct vm_token_bucket, one_time_burst) },
	{ "refill_time", API_T_UINT, true, AT(API_S_U64, struct vm_token_bucket, refill_time_ms) },
	{ NULL }
};

static const struct api_field limiter_fields[] = {
	{ "bandwidth", API_T_OBJECT, false, bucket_fields },
	{ "ops", API_T_OBJECT, false, bucket_fields },
	{ NULL }
};

/* The files are checked by boot_source() once stored. */
static const struct api_field boot_source_fields[] = {
	{ "kernel_image_path", API_T_STRING, true, CFG(API_S_STRING, kernel) },
	{ "initrd_path", API_T_STRING, false, CFG(API_S_STRING, initrd) },
	{ "boot_args", API_T_STRING, false, CFG(API_S_STRING, append) },
	{ NULL }
};

/* PUT needs the sizes, PATCH takes any of them. */
#define MACHINE_FIELDS(req)                                                                        \
	{ "vcpu_count", API_T_UINT, req, CFG(API_S_U32, ncpus), .min = 1, .max = BOARD_MAX_HARTS }, \
	{ "mem_size_mib", API_T_UINT, req, CFG(API_S_MIB, mem_bytes), .min = VM_MIN_MEM_MIB,        \
	  .max = VM_MAX_MEM_MIB },                                                                 \
	{ "smt", API_T_BOOL },                                                                     \
	BOOL_ROW("track_dirty_pages", struct vm_config, track_dirty_pages),                        \
	{ "cpu_quota", API_T_NUMBER, CFG(API_S_POSITIVE, cpu_quota),                               \
	  .hint = "leave it out for no limit" },                                                   \
	{ NULL }

static const struct api_field machine_put_fields[] = { MACHINE_FIELDS(true) };
static const struct api_field machine_patch_fields[] = { MACHINE_FIELDS(false) };

static const struct api_field drive_fields[] = {
	{ "drive_id", API_T_STRING, true },
	{ "path_on_host", API_T_STRING, true },
	{ "is_root_device", API_T_BOOL, true, AT(API_S_BOOL, struct vm_drive, root) },
	BOOL_ROW("is_read_only", struct vm_drive, read_only),
	{ "rate_limiter", API_T_OBJECT, false, limiter_fields },
	{ "format", API_T_STRING },
	{ "serial", API_T_STRING },
	{ "backing", API_T_BOOL },
	{ "backing_dirs", API_T_ARRAY, false, NULL, API_T_STRING, VM_MAX_BACKING_DIRS },
	{ NULL }
};

static const struct api_field drive_patch_fields[] = {
	{ "drive_id", API_T_STRING, true },
	{ "path_on_host", API_T_STRING },
	{ "rate_limiter", API_T_OBJECT, false, limiter_fields },
	{ "format", API_T_STRING },
	{ NULL }
};

static const struct api_field forward_fields[] = {
	{ "protocol", API_T_STRING, true },
	{ "host_address", API_T_STRING },
	{ "host_port", API_T_UINT, true, AT(API_S_U16, struct vm_port_forward, host_port), .min = 1 },
	{ "guest_port", API_T_UINT, true, AT(API_S_U16, struct vm_port_forward, guest_port), .min = 1 },
	{ NULL }
};

static const struct api_field net_fields[] = {
	{ "iface_id", API_T_STRING, true },
	{ "backend", API_T_STRING },
	{ "host_dev_name", API_T_STRING },
	{ "guest_mac", API_T_STRING },
	{ "rx_rate_limiter", API_T_OBJECT, false, limiter_fields },
	{ "tx_rate_limiter", API_T_OBJECT, false, limiter_fields },
	{ "port_forwards", API_T_ARRAY, false, forward_fields, API_T_OBJECT, VM_MAX_PORT_FORWARDS },
	BOOL_ROW("restrict", struct vm_net, restricted),
	{ "host_loopback", API_T_BOOL, false, AT(API_S_NOT, struct vm_net, no_host_loopback) },
	{ NULL }
};

static const struct api_field net_patch_fields[] = {
	{ "iface_id", API_T_STRING, true },
	{ "rx_rate_limiter", API_T_OBJECT, false, limiter_fields },
	{ "tx_rate_limiter", API_T_OBJECT, false, limiter_fields },
	{ NULL }
};

/* 0, 1 and 2 are the hypervisor, local and host; -1U is "any". */
static const struct api_field vsock_fields[] = {
	{ "guest_cid", API_T_UINT, true, CFG(API_S_U32, vsock_cid), .min = 3, .max = UINT32_MAX - 1 },
	{ "uds_path", API_T_STRING, true },
	{ "vsock_id", API_T_STRING },  /* deprecated in Firecracker; ignored */
	{ NULL }
};

static const struct api_field balloon_fields[] = {
	{ "amount_mib", API_T_UINT, true, CFG(API_S_U32, balloon_target_mib) },
	{ "deflate_on_oom", API_T_BOOL, true, CFG(API_S_BOOL, balloon_deflate_on_oom) },
	{ "stats_polling_interval_s", API_T_UINT, false, CFG(API_S_U32, balloon_stats_interval_s) },
	BOOL_ROW("free_page_hinting", struct vm_config, balloon_free_page_hinting),
	{ "free_page_reporting", API_T_BOOL, false, CFG(API_S_NOT, balloon_no_free_page_reporting) },
	{ NULL }
};

static const struct api_field balloon_patch_fields[] = {
	{ "amount_mib", API_T_UINT, true, CFG(API_S_U32, balloon_target_mib) },
	{ NULL }
};

static const struct api_field balloon_stats_patch_fields[] = {
	{ "stats_polling_interval_s", API_T_UINT, true, CFG(API_S_U32, balloon_stats_interval_s) },
	{ NULL }
};

static const struct api_field logger_fields[] = {
	{ "log_path", API_T_STRING, CFG(API_S_STRING, logger.log_path), .min = 1 },
	{ "level", API_T_STRING },
	BOOL_ROW("show_level", struct vm_config, logger.show_level),
	BOOL_ROW("show_log_origin", struct vm_config, logger.show_log_origin),
	{ NULL }
};

static const struct api_field metrics_fields[] = {
	{ "metrics_path", API_T_STRING, true, CFG(API_S_STRING, metrics.path), .min = 1 },
	{ NULL }
};

/* A share's tag is in the path of PUT /shares/{tag}, in the body of a
 * document's entry. */
#define SHARE_FIELDS(tag_required)                                                                 \
	{ "tag", API_T_STRING, tag_required },                                                     \
	{ "path_on_host", API_T_STRING, true },                                                    \
	BOOL_ROW("is_read_only", struct vm_share, read_only),                                      \
	BOOL_ROW("nodev", struct vm_share, nodev),                                                 \
	{ NULL }

static const struct api_field share_fields[] = { SHARE_FIELDS(false) };
static const struct api_field share_doc_fields[] = { SHARE_FIELDS(true) };

static const struct api_field console_port_fields[] = {
	{ "name", API_T_STRING, true },
	{ "uds_path", API_T_STRING, true },
	{ NULL }
};

static const struct api_field mmds_config_fields[] = {
	{ "version", API_T_STRING },
	{ "network_interfaces", API_T_ARRAY, true, NULL, API_T_STRING, VM_MAX_NETS },
	{ "ipv4_address", API_T_STRING },
	BOOL_ROW("imds_compat", struct vm_config, mmds_imds_compat),
	{ NULL }
};

static const struct api_field entropy_fields[] = {
	{ "rate_limiter", API_T_OBJECT, false, limiter_fields },
	{ NULL }
};

static const struct api_field doc_fields[] = {
	{ "boot-source", API_T_OBJECT, false, boot_source_fields },
	{ "machine-config", API_T_OBJECT, false, machine_put_fields },
	{ "drives", API_T_ARRAY, false, drive_fields, API_T_OBJECT, VM_MAX_DRIVES },
	{ "network-interfaces", API_T_ARRAY, false, net_fields, API_T_OBJECT, VM_MAX_NETS },
	{ "vsock", API_T_OBJECT, false, vsock_fields },
	{ "balloon", API_T_OBJECT, false, balloon_fields },
	{ "logger", API_T_OBJECT, false, logger_fields },
	{ "metrics", API_T_OBJECT, false, metrics_fields },
	{ "shares", API_T_ARRAY, false, share_doc_fields, API_T_OBJECT, VM_MAX_SHARES },
	{ "console-ports", API_T_ARRAY, false, console_port_fields, API_T_OBJECT, VM_MAX_CONSOLE_PORTS },
	{ "mmds-config", API_T_OBJECT, false, mmds_config_fields },
	{ "entropy", API_T_OBJECT, false, entropy_fields },
	{ NULL }
};

/* ------------------------------------------------------------ ids */

bool vmm_id_valid(const char *id)
{
	size_t n = 0;
	if (!id)
		return false;
	for (; id[n]; n++) {
		char ch = id[n];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'))
			return false;
	}
	return n >= 1 && n <= VMM_MAX_ID_LEN;
}

bool vmm_tag_valid(const char *tag)
{
	size_t n = 0;
	if (!tag || tag[0] == '.' || tag[0] == '-')
		return false;
	for (; tag[n]; n++) {
		char ch = tag[n];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      strchr("_.+@:-", ch)))
			return false;
	}
	return n >= 1 && n <= VMM_MAX_ID_LEN;
}

/* What a section's parser is given: the body, its table, its name in
 * messages ("drives[1]"), the id from the request's path (drives/{id};
 * NULL in a document), for a section keyed by a resource id the name of
 * that member and its value, where a PATCH reports what changed, and PUT
 * or PATCH. The body has passed the table's shape check, and the id
 * check_section_id(). */
struct section_arg {
	const json_t *body;
	const struct api_field *fields;
	const char *where;
	const char *path_id;
	const char *id_key, *id;
	void *out;
	bool patch;
};

typedef const char *(*section_fn)(struct vm_config *tmp, const struct section_arg *a, char *err,
				  size_t errlen);

static const char *check_id(const char *path_id, const char *body_id, const char *where,
			    const char *field, char *err, size_t errlen);

/* A section keyed by a resource id (drives, network interfaces): its
 * id member must be a valid id and the same as the path's. */
static const char *check_section_id(struct section_arg *a, char *err, size_t errlen)
{
	if (!a->id_key)
		return NULL;
	a->id = api_json_string(a->body, a->id_key);
	return check_id(a->path_id, a->id, a->where, a->id_key, err, errlen);
}

/* Run `fn` on a copy of the configuration; keep the copy only if it and the rules
 * across sections pass. */
static const char *apply(struct vm_config *s, section_fn fn, const struct section_arg *a, char *err,
			 size_t errlen)
{
	struct vm_config tmp;
	if (vm_config_copy(&tmp, s))
		return MSG("out of memory");
	if (fn(&tmp, a, err, errlen) || vm_config_check(&tmp, err, errlen)) {
		vm_config_free(&tmp);
		return err;
	}
	vm_config_free(s);
	*s = tmp;
	return NULL;
}

/* One request: its body checked against the section's table, then
 * applied. */
static const char *request(struct vm_config *s, section_fn fn, struct section_arg *a, char *err,
			   size_t errlen)
{
	if (api_json_check_object(a->body, a->fields, a->where, err, errlen) ||
	    check_section_id(a, err, errlen))
		return err;
	return apply(s, fn, a, err, errlen);
}

/* ------------------------------------------------------------ helpers */

/* Replace *dst by a copy of v; non-zero (message in err) when out of memory. */
static int set_str(char **dst, const char *v, char *err, size_t errlen)
{
	char *d = NULL;
	if (v && !(d = strdup(v))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(*dst);
	*dst = d;
	return 0;
}

/* The index of the entry keyed `key` in an array of n entries of `size`
 * bytes, each keyed by a string `key_at` bytes into it; n when there is
 * none. INDEX_OF names the array and its key member. The sections with an
 * id (drives, interfaces, shares) find an entry to replace or patch by it. */
static size_t index_of(const void *entries, size_t n, size_t size, size_t key_at, const char *key)
{
	const char *p = entries;
	for (size_t i = 0; i < n; i++, p += size) {
		const char *k = *(const char *const *)(const void *)(p + key_at);
		if (k && !strcmp(k, key))
			return i;
	}
	return n;
}

#define INDEX_OF(entries, n, member, key) \
	index_of(entries, n, sizeof(*(entries)), offsetof(__typeof__(*(entries)), member), key)

/* Put `entry` at index `at` of an array of n entries (found by INDEX_OF):
 * in place of the one there, freed with free_fn, or, at == n, as a new one. */
#define PUT_AT(entries, n, at, entry, free_fn) \
	do { \
		if ((at) < (n)) \
			free_fn(&(entries)[at]); \
		else \
			(n)++; \
		(entries)[at] = (entry); \
	} while (0)

/* A file the VMM will open: a regular file (or a block device when
 * allow_blk), readable, and writable when `write`. */
static const char *check_file(const char *path, bool write, bool allow_blk, const char *where,
			      const char *field, const char *what, char *err, size_t errlen)
{
	if (!*path)
		return MSG("%s.%s: must not be empty", where, field);
	int fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return MSG("%s.%s: the %s file '%s' cannot be opened%s: %s", where, field, what, path,
			   write ? " for writing" : "", strerror(errno));
	struct stat st;
	if (fstat(fd, &st)) {
		int e = errno;
		close(fd);
		return MSG("%s.%s: the %s file '%s': %s", where, field, what, path, strerror(e));
	}
	close(fd);
	if (!S_ISREG(st.st_mode) && !(allow_blk && S_ISBLK(st.st_mode)))
		return MSG("%s.%s: the %s file '%s' is not a regular file%s", where, field, what, path,
			   allow_blk ? " or block device" : "");
	return NULL;
}

/* The kernel must be a RISC-V Image (its header is what the loader checks
 * at start), so a configuration that is accepted also boots. */
static const char *check_kernel_image(const char *path, const char *where, char *err, size_t errlen)
{
	uint8_t b[RISCV_IMAGE_HEADER_SIZE];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	ssize_t n = fd >= 0 ? pread(fd, b, sizeof(b), 0) : -1;
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (n < 0)
		return MSG("%s.kernel_image_path: the kernel file '%s' cannot be read: %s", where, path,
			   strerror(e));
	struct riscv_image_header h;
	char why[512];
	if (loader_parse_image_header(path, b, (size_t)n, &h, why, sizeof(why)))
		return MSG("%s.kernel_image_path: %s", where, why);
	return NULL;
}

/* A Unix socket the VMM will create at `uds`: its directory must exist. */
static const char *check_socket_dir(const char *uds, const char *where, char *err, size_t errlen)
{
	char *copy = strdup(uds);
	if (!copy)
		return MSG("out of memory");
	struct stat st;
	const char *dir = dirname(copy);
	bool dir_ok = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
	free(copy);
	if (!dir_ok)
		return MSG("%s.uds_path: the directory of '%s' does not exist", where, uds);
	return NULL;
}

static const char *check_qcow2(const char *path, const char *where, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	unsigned char m[4] = { 0 };
	ssize_t n = fd >= 0 ? pread(fd, m, 4, 0) : -1;
	if (fd >= 0)
		close(fd);
	if (n != 4 || memcmp(m, "QFI\xfb", 4))
		return MSG("%s.format: '%s' is not a qcow2 image (no QFI\\xfb magic)", where, path);
	return NULL;
}

/* Apply a checked rate_limiter object: a bucket that is given replaces the
 * old one (size 0 turns it off), one that is absent stays as it was. */
static void merge_limiter(struct vm_rate_limiter *l, const json_t *o, bool *changed)
{
	static const char *const names[] = { "bandwidth", "ops" };
	struct vm_token_bucket *buckets[] = { &l->bandwidth, &l->ops };
	for (size_t i = 0; o && i < 2; i++) {
		const json_t *b = api_json_member(o, names[i]);
		char unused[8]; /* a bucket's members have no range to fail */
		if (!b)
			continue;
		memset(buckets[i], 0, sizeof(*buckets[i]));
		api_json_store(b, bucket_fields, buckets[i], names[i], unused, sizeof(unused));
		*changed = true;
	}
}

static const char *check_id(const char *path_id, const char *body_id, const char *where,
			    const char *field, char *err, size_t errlen)
{
	char shown[80];
	if (!vmm_id_valid(body_id)) {
		api_json_printable(shown, sizeof(shown), body_id);
		return MSG("%s.%s: `%s` is not a valid id (1 to %d ASCII letters, digits and underscores)",
			   where, field, shown, VMM_MAX_ID_LEN);
	}
	if (path_id && strcmp(path_id, body_id)) {
		char p[80];
		api_json_printable(p, sizeof(p), path_id);
		return MSG("%s.%s: The id from the path does not match the id from the body! (path: `%s`, body: `%s`)",
			   where, field, p, body_id);
	}
	return NULL;
}

/* ------------------------------------------------------------ boot-source */

static const char *boot_source(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	const char *where = a->where;
	/* PUT: what is not given is gone. */
	free(s->initrd);
	free(s->append);
	s->initrd = s->append = NULL;
	if (api_json_store(b, boot_source_fields, s, where, err, errlen) ||
	    check_file(s->kernel, false, false, where, "kernel_image_path", "kernel", err, errlen) ||
	    check_kernel_image(s->kernel, where, err, errlen) ||
	    (s->initrd && check_file(s->initrd, false, false, where, "initrd_path", "initrd", err, errlen)))
		return err;
	return NULL;
}

/* ------------------------------------------------------------ machine-config */

static const char *machine(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	const char *where = a->where;
	if (a->patch && json_object_size(b) == 0)
		return MSG("Empty PATCH request.");
	if (!a->patch) {
		/* PUT: what is not given goes back to its default (Firecracker). */
		s->cpu_quota = 0;
		s->track_dirty_pages = false;
	}
	if (api_json_store(b, a->fields, s, where, err, errlen))
		return err;
	if (api_json_bool(b, "smt", false))
		return MSG("%s.smt: simultaneous multithreading is not supported (must be false)", where);
	return NULL;
}

/* ------------------------------------------------------------ drives */

/* The format of image `path` for a drive, settled as the drive is
 * configured (PUT) or given a new image (PATCH while the VM runs): `fmt`
 * as the user gave it, else vm_drive_settle_format's rules (issue 12:
 * a writable image is never guessed to be qcow2). */
static const char *drive_format(const char *path, const char *fmt, bool read_only,
				enum vm_disk_format *out, const char *where, char *err, size_t errlen)
{
	if (fmt) {
		if (!strcmp(fmt, "raw"))
			*out = VM_DISK_RAW;
		else if (!strcmp(fmt, "qcow2"))
			*out = VM_DISK_QCOW2;
		else
			return MSG("%s.format: must be \"raw\" or \"qcow2\"", where);
		if (*out == VM_DISK_QCOW2 && check_qcow2(path, where, err, errlen))
			return err;
		return NULL;
	}
	char ferr[480];
	struct vm_drive d = { .path = (char *)path, .read_only = read_only };
	if (vm_drive_settle_format(&d, ferr, sizeof(ferr)))
		return MSG("%s.format: %s", where, ferr);
	*out = d.format;
	return NULL;
}

static const char *drive(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	const char *where = a->where, *id = a->id;
	struct vm_drive d = { 0 };
	if (api_json_store(b, drive_fields, &d, where, err, errlen))
		return err;
	const char *path = api_json_string(b, "path_on_host");
	const char *fmt = api_json_string(b, "format");
	const char *serial = api_json_string(b, "serial");
	if (check_file(path, !d.read_only, true, where, "path_on_host", "drive", err, errlen) ||
	    drive_format(path, fmt, d.read_only, &d.format, where, err, errlen))
		return err;
	if (serial) {
		if (strlen(serial) > 20)
			return MSG("%s.serial: at most 20 characters (the virtio-blk id), got %zu", where, strlen(serial));
		for (const char *p = serial; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				return MSG("%s.serial: printable ASCII only", where);
	}
	bool dummy = false;
	merge_limiter(&d.limiter, api_json_member(b, "rate_limiter"), &dummy);

	struct vm_config *c = s;
	size_t at = c->ndrives;
	for (size_t i = 0; i < c->ndrives; i++) {
		if (!strcmp(c->drives[i].id, id))
			at = i;
		else if (d.root && c->drives[i].root)
			return MSG("%s.is_root_device: A root block device already exists! (drive `%s`)",
				   where, c->drives[i].id);
	}
	if (at == c->ndrives && c->ndrives >= VM_MAX_DRIVES)
		return MSG("%s: at most %d drives", where, VM_MAX_DRIVES);

	/* Backing files only when asked for (issue 12); the directories are
	 * kept canonical. backing_dirs turns backing on unless it says false. */
	const json_t *dirs = api_json_member(b, "backing_dirs");
	size_t k;
	const json_t *dir;
	json_array_foreach(dirs, k, dir) {
		char berr[320];
		if (vm_drive_add_backing_dir(&d, json_string_value(dir), berr, sizeof(berr))) {
			vm_drive_free(&d);
			return MSG("%s.backing_dirs[%zu]: %s", where, k, berr);
		}
	}
	d.backing = api_json_bool(b, "backing", d.nbacking_dirs > 0);

	bool fail = false;
	d.id = vm_config_strdup(id, &fail);
	d.path = vm_config_strdup(path, &fail);
	d.serial = vm_config_strdup(serial, &fail);
	if (fail) {
		vm_drive_free(&d);
		return MSG("out of memory");
	}
	if (at < c->ndrives) {
		vm_drive_free(&c->drives[at]);
		memmove(&c->drives[at], &c->drives[at + 1], (c->ndrives - at - 1) * sizeof(c->drives[0]));
		c->ndrives--;
	}
	/* The root drive goes first, so it is /dev/vda (as in Firecracker). */
	size_t pos = d.root ? 0 : (at <= c->ndrives ? at : c->ndrives);
	if (!d.root && c->ndrives && c->drives[0].root && pos == 0)
		pos = 1;
	memmove(&c->drives[pos + 1], &c->drives[pos], (c->ndrives - pos) * sizeof(c->drives[0]));
	c->drives[pos] = d;
	c->ndrives++;
	return NULL;
}

static const char *find_drive(const struct vm_config *s, const char *id, const char *where,
			      size_t *out, char *err, size_t errlen)
{
	*out = INDEX_OF(s->drives, s->ndrives, id, id);
	if (*out == s->ndrives)
		return MSG("%s.drive_id: no drive `%s` is configured", where, id);
	return NULL;
}

static const char *drive_patch(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	struct vm_drive_patch *out = a->out;
	const char *where = a->where;
	size_t i = 0;
	if (find_drive(s, a->id, where, &i, err, errlen))
		return err;
	struct vm_drive *d = &s->drives[i];
	memset(out, 0, sizeof(*out));
	out->index = i;
	/* A new image (swapped in while the VM runs): checked, and its format
	 * settled, as at PUT; the drive's other settings stay. */
	const char *path = api_json_string(b, "path_on_host");
	const char *fmt = api_json_string(b, "format");
	if (fmt && !path)
		return MSG("%s.format: only with a new path_on_host (an open image keeps its format)",
			   where);
	if (path) {
		enum vm_disk_format f;
		if (check_file(path, !d->read_only, true, where, "path_on_host", "drive", err, errlen) ||
		    drive_format(path, fmt, d->read_only, &f, where, err, errlen) ||
		    set_str(&d->path, path, err, errlen))
			return err;
		d->format = f;
		out->path_changed = true;
	}
	merge_limiter(&d->limiter, api_json_member(b, "rate_limiter"), &out->limiter_changed);
	return NULL;
}

/* ------------------------------------------------------------ network */

static bool parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		unsigned v = 0;
		for (int k = 0; k < 2; k++) {
			char ch = *s++;
			unsigned d;
			if (ch >= '0' && ch <= '9')
				d = (unsigned)(ch - '0');
			else if (ch >= 'a' && ch <= 'f')
				d = (unsigned)(ch - 'a' + 10);
			else if (ch >= 'A' && ch <= 'F')
				d = (unsigned)(ch - 'A' + 10);
			else
				return false;
			v = v * 16 + d;
		}
		mac[i] = (uint8_t)v;
		if (i < 5 && *s++ != ':')
			return false;
	}
	return *s == 0;
}

static const char *forwards(struct vm_net *n, const json_t *arr, const char *where, char *err, size_t errlen)
{
	size_t cnt = json_array_size(arr);
	for (size_t i = 0; i < cnt; i++) {
		const json_t *f = json_array_get(arr, i);
		char w[96];
		snprintf(w, sizeof(w), "%s.port_forwards[%zu]", where, i);
		const char *proto = api_json_string(f, "protocol");
		const char *addr = api_json_string(f, "host_address");
		struct vm_port_forward *pf = &n->fwd[n->nfwd];
		if (api_json_store(f, forward_fields, pf, w, err, errlen))
			return err;
		if (!strcmp(proto, "tcp"))
			pf->udp = false;
		else if (!strcmp(proto, "udp"))
			pf->udp = true;
		else
			return MSG("%s.protocol: must be \"tcp\" or \"udp\"", w);
		struct in_addr ia;
		if (addr && inet_pton(AF_INET, addr, &ia) != 1)
			return MSG("%s.host_address: not an IPv4 address (like 127.0.0.1)", w);
		if (addr && !(pf->host_addr = strdup(addr)))
			return MSG("out of memory");
		n->nfwd++;
	}
	return NULL;
}

static const char *net(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	const char *where = a->where, *id = a->id;
	const char *backend = api_json_string(b, "backend");
	const char *tap = api_json_string(b, "host_dev_name");
	const char *mac = api_json_string(b, "guest_mac");
	const json_t *fw = api_json_member(b, "port_forwards");

	struct vm_net n = { 0 };
	if (api_json_store(b, net_fields, &n, where, err, errlen))
		return err;
	n.host_loopback_set = api_json_member(b, "host_loopback") != NULL;
	if (backend && !strcmp(backend, "tap"))
		n.backend = VM_NET_TAP;
	else if (backend && !strcmp(backend, "user"))
		n.backend = VM_NET_USER;
	else if (backend)
		return MSG("%s.backend: must be \"user\" or \"tap\"", where);
	else
		n.backend = tap ? VM_NET_TAP : VM_NET_USER;
	if (n.backend == VM_NET_TAP) {
		if (!tap)
			return MSG("%s.host_dev_name: required for the tap backend", where);
		size_t len = strlen(tap);
		if (len < 1 || len > 15)
			return MSG("%s.host_dev_name: a network interface name is 1 to 15 bytes, got %zu", where, len);
		for (const char *p = tap; *p; p++)
			if (*p == '/' || *p == ':' || *p <= ' ' || *p == 0x7f)
				return MSG("%s.host_dev_name: no '/', ':', spaces or control characters", where);
		if (fw && json_array_size(fw))
			return MSG("%s.port_forwards: only for the user backend", where);
		if (api_json_member(b, "restrict") || api_json_member(b, "host_loopback"))
			return MSG("%s: restrict and host_loopback are only for the user backend", where);
	} else if (tap) {
		return MSG("%s.host_dev_name: only for the tap backend (backend is \"user\")", where);
	}
	if (mac) {
		if (!parse_mac(mac, n.mac))
			return MSG("%s.guest_mac: not a MAC address (like 06:00:ac:10:00:02)", where);
		if (n.mac[0] & 1)
			return MSG("%s.guest_mac: %s is a multicast address", where, mac);
		n.mac_set = true;
	}
	bool dummy = false;
	merge_limiter(&n.rx, api_json_member(b, "rx_rate_limiter"), &dummy);
	merge_limiter(&n.tx, api_json_member(b, "tx_rate_limiter"), &dummy);

	struct vm_config *c = s;
	size_t at = INDEX_OF(c->nets, c->nnets, id, id);
	if (at == c->nnets && c->nnets >= VM_MAX_NETS)
		return MSG("%s: at most %d network interfaces", where, VM_MAX_NETS);
	bool fail = false;
	n.id = vm_config_strdup(id, &fail);
	n.tap_name = vm_config_strdup(n.backend == VM_NET_TAP ? tap : NULL, &fail);
	if (fail || (fw && forwards(&n, fw, where, err, errlen))) {
		vm_net_free(&n);
		return fail ? MSG("out of memory") : err;
	}
	PUT_AT(c->nets, c->nnets, at, n, vm_net_free);
	return NULL;
}

static const char *net_patch(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	struct vm_net_patch *out = a->out;
	const char *where = a->where, *id = a->id;
	size_t i = INDEX_OF(s->nets, s->nnets, id, id);
	if (i == s->nnets)
		return MSG("%s.iface_id: no network interface `%s` is configured", where, id);
	memset(out, 0, sizeof(*out));
	out->index = i;
	merge_limiter(&s->nets[i].rx, api_json_member(b, "rx_rate_limiter"), &out->rx_changed);
	merge_limiter(&s->nets[i].tx, api_json_member(b, "tx_rate_limiter"), &out->tx_changed);
	return NULL;
}

/* ------------------------------------------------------------ vsock */

static const char *vsock(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	const char *where = a->where;
	const char *uds = api_json_string(b, "uds_path");
	if (api_json_store(b, vsock_fields, s, where, err, errlen))
		return err;
	/* Room for "_PORT" (guest-initiated connections) in a sockaddr_un. */
	size_t room = sizeof(((struct sockaddr_un *)0)->sun_path) - 1 - 11;
	if (!*uds || strlen(uds) > room)
		return MSG("%s.uds_path: must be 1 to %zu bytes long", where, room);
	if (check_socket_dir(uds, where, err, errlen))
		return err;
	char why[400];
	if (unix_listen_check(uds, why, sizeof(why)))
		return MSG("%s.uds_path: %s", where, why);
	if (set_str(&s->vsock_uds, uds, err, errlen))
		return err;
	s->vsock = true;
	return NULL;
}

/* ------------------------------------------------------------ entropy */

/* The section replaces the one before: an absent rate_limiter is none. */
static const char *entropy(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	bool changed = false;
	memset(&s->entropy_limiter, 0, sizeof(s->entropy_limiter));
	merge_limiter(&s->entropy_limiter, api_json_member(b, "rate_limiter"), &changed);
	s->entropy = true;
	return NULL;
}

/* ------------------------------------------------------------ mmds */

/* Firecracker's MmdsConfig: the interfaces must exist; the address is
 * link-local, 169.254.1.0 to 169.254.254.255 (RFC 3927 2.1). */
static const char *mmds_config(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	const char *where = a->where;
	const char *v = api_json_string(b, "version");
	if (v && strcmp(v, "V1") && strcmp(v, "V2"))
		return MSG("%s.version: must be \"V1\" or \"V2\"", where);
	uint32_t ip = 0xa9fea9feu;   /* 169.254.169.254 */
	const char *addr = api_json_string(b, "ipv4_address");
	if (addr) {
		struct in_addr ia;
		if (inet_pton(AF_INET, addr, &ia) != 1)
			return MSG("%s.ipv4_address: `%s` is not an IPv4 address", where, addr);
		ip = ntohl(ia.s_addr);
		if ((ip >> 16) != 0xa9fe || ((ip >> 8) & 0xff) == 0 || ((ip >> 8) & 0xff) == 255)
			return MSG("%s.ipv4_address: %s is not a link-local address (169.254.1.0 to "
				   "169.254.254.255)", where, addr);
	}
	const json_t *ifs = api_json_member(b, "network_interfaces");
	if (!json_array_size(ifs))
		return MSG("%s.network_interfaces: name at least one interface", where);
	for (size_t i = 0; i < s->nnets; i++)
		s->nets[i].mmds = false;
	for (size_t k = 0; k < json_array_size(ifs); k++) {
		const char *id = json_string_value(json_array_get(ifs, k));
		size_t i = INDEX_OF(s->nets, s->nnets, id, id);
		if (i == s->nnets)
			return MSG("%s.network_interfaces: there is no interface `%s`", where, id);
		s->nets[i].mmds = true;
	}
	s->mmds = true;
	s->mmds_version = v && !strcmp(v, "V2") ? 2 : 1;
	s->mmds_ipv4 = ip;
	s->mmds_imds_compat = false;
	return api_json_store(b, mmds_config_fields, s, where, err, errlen);
}

/* ------------------------------------------------------------ balloon */

static const char *balloon(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	const char *where = a->where;
	/* PUT: what is not given goes back to its default. skiff reports free
	 * pages unless told not to (Firecracker: off unless asked). */
	s->balloon_stats_interval_s = 0;
	s->balloon_free_page_hinting = false;
	s->balloon_no_free_page_reporting = false;
	if (api_json_store(b, balloon_fields, s, where, err, errlen))
		return err;
	s->balloon = true;
	return NULL;
}

static const char *balloon_patch(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	if (!s->balloon)
		return MSG("balloon not configured");
	return api_json_store(b, balloon_patch_fields, s, a->where, err, errlen);
}

static const char *balloon_stats_patch(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	const char *where = a->where;
	if (!s->balloon)
		return MSG("balloon not configured");
	uint32_t before = s->balloon_stats_interval_s;
	if (api_json_store(b, balloon_stats_patch_fields, s, where, err, errlen))
		return err;
	if ((s->balloon_stats_interval_s == 0) != (before == 0))
		return MSG("%s.stats_polling_interval_s: statistics cannot be turned on or off after start "
			   "(they are %s)", where, before ? "on" : "off");
	return NULL;
}

/* ------------------------------------------------------------ logger, metrics */

static const char *const level_names[] = { "Off", "Error", "Warning", "Info", "Debug", "Trace" };

int vmm_log_level_parse(const char *name)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (!strcasecmp(name, level_names[i]))
			return (int)i;
	if (!strcasecmp(name, "warn"))
		return VMM_LOG_WARNING;
	return -1;
}

const char *vmm_log_level_name(enum vmm_log_level l)
{
	return (unsigned)l < sizeof(level_names) / sizeof(level_names[0]) ? level_names[l] : "Info";
}

static const char *logger(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	const char *where = a->where;
	const char *level = api_json_string(b, "level");
	int l = VMM_LOG_INFO;
	if (level && (l = vmm_log_level_parse(level)) < 0)
		return MSG("%s.level: must be one of Error, Warning, Info, Debug, Trace, Off", where);
	/* PUT: what is not given goes back to its default. */
	free(s->logger.log_path);
	s->logger.log_path = NULL;
	s->logger.show_level = s->logger.show_log_origin = false;
	if (api_json_store(b, logger_fields, s, where, err, errlen))
		return err;
	s->logger.set = true;
	s->logger.level = (enum vmm_log_level)l;
	return NULL;
}

static const char *metrics(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	if (s->metrics.set)
		return MSG("metrics: Reinitialization of metrics not allowed.");
	if (api_json_store(b, metrics_fields, s, a->where, err, errlen))
		return err;
	s->metrics.set = true;
	return NULL;
}

/* ------------------------------------------------------------ shares */

static const char *share(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	const char *where = a->where;
	struct vm_share sh = { 0 };
	if (api_json_store(b, a->fields, &sh, where, err, errlen))
		return err;
	const char *tag = api_json_string(b, "tag");
	if (!tag)
		tag = a->path_id;
	char shown[80];
	api_json_printable(shown, sizeof(shown), tag);
	if (!vmm_tag_valid(tag))
		return MSG("%s.tag: `%s` is not a valid tag (1 to %d letters, digits and _ . + @ : -, "
			   "not starting with . or -)", where, shown, VMM_MAX_ID_LEN);
	if (a->path_id && strcmp(a->path_id, tag))
		return MSG("%s.tag: The id from the path does not match the id from the body! (path: `%s`, body: `%s`)",
			   where, a->path_id, shown);
	const char *path = api_json_string(b, "path_on_host");
	bool ro = sh.read_only;
	struct stat st;
	if (!*path)
		return MSG("%s.path_on_host: must not be empty", where);
	if (stat(path, &st))
		return MSG("%s.path_on_host: '%s': %s", where, path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return MSG("%s.path_on_host: '%s' is not a directory", where, path);
	if (access(path, R_OK | X_OK | (ro ? 0 : W_OK)))
		return MSG("%s.path_on_host: '%s' is not %s: %s", where, path,
			   ro ? "readable" : "readable and writable", strerror(errno));
	struct vm_config *c = s;
	size_t at = INDEX_OF(c->shares, c->nshares, tag, tag);
	if (at == c->nshares && c->nshares >= VM_MAX_SHARES)
		return MSG("%s: at most %d shares", where, VM_MAX_SHARES);
	bool fail = false;
	sh.tag = vm_config_strdup(tag, &fail);
	sh.path = vm_config_strdup(path, &fail);
	if (fail) {
		vm_share_free(&sh);
		return MSG("out of memory");
	}
	PUT_AT(c->shares, c->nshares, at, sh, vm_share_free);
	return NULL;
}

/* ------------------------------------------------------------ console ports */

/* A named virtio-console port (skiff's, as `skiff run --port`); config
 * files only. */
static const char *console_port(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	const json_t *b = a->body;
	const char *where = a->where;
	const char *name = api_json_string(b, "name");
	const char *uds = api_json_string(b, "uds_path");
	char shown[80];
	api_json_printable(shown, sizeof(shown), name);
	if (!vm_console_port_name_valid(name))
		return MSG("%s.name: `%s` is not a valid port name (1 to %d printable characters, "
			   "no space, ',' or '/')", where, shown, VM_CONSOLE_PORT_NAME_MAX);
	if (!*uds || strlen(uds) > VM_UDS_PATH_MAX)
		return MSG("%s.uds_path: must be 1 to %d bytes long", where, VM_UDS_PATH_MAX);
	struct vm_config *c = s;
	for (size_t i = 0; i < c->nports; i++) {
		if (!strcmp(c->ports[i].name, name))
			return MSG("%s.name: `%s` is used twice", where, shown);
		if (!strcmp(c->ports[i].uds_path, uds))
			return MSG("%s.uds_path: '%s' is also the socket of port `%s`", where, uds,
				   c->ports[i].name);
	}
	if (c->nports >= VM_MAX_CONSOLE_PORTS)
		return MSG("%s: at most %d console ports", where, VM_MAX_CONSOLE_PORTS);
	if (check_socket_dir(uds, where, err, errlen))
		return err;
	struct vm_console_port p = { 0 };
	bool fail = false;
	p.name = vm_config_strdup(name, &fail);
	p.uds_path = vm_config_strdup(uds, &fail);
	if (fail) {
		free(p.name);
		free(p.uds_path);
		return MSG("out of memory");
	}
	c->ports[c->nports++] = p;
	return NULL;
}

/* ------------------------------------------------------------ documents */

/* A document's sections, in the order they are applied; an array section
 * names the member its entries must not share, and whether that member
 * is a resource id (check_section_id). */
static const struct section {
	const char *name;
	section_fn fn;
	const struct api_field *fields;  /* as in doc_fields */
	const char *id_field;
	bool resource_id;
} sections[] = {
	{ "logger", logger, logger_fields },
	{ "metrics", metrics, metrics_fields },
	{ "machine-config", machine, machine_put_fields },
	{ "boot-source", boot_source, boot_source_fields },
	{ "drives", drive, drive_fields, "drive_id", true },
	{ "network-interfaces", net, net_fields, "iface_id", true },
	{ "shares", share, share_doc_fields, "tag" },
	{ "console-ports", console_port, console_port_fields, "name" },
	{ "vsock", vsock, vsock_fields },
	{ "balloon", balloon, balloon_fields },
	{ "entropy", entropy, entropy_fields },
	{ "mmds-config", mmds_config, mmds_config_fields },  /* after the interfaces it names */
};

/* The entries of an array section, each as its PUT would be. */
static const char *doc_array(struct vm_config *s, const struct section *sec, const json_t *arr,
			     char *err, size_t errlen)
{
	const char *idf = sec->id_field;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		const json_t *it = json_array_get(arr, i);
		char where[64];
		snprintf(where, sizeof(where), "%s[%zu]", sec->name, i);
		const char *id = api_json_string(it, idf);
		for (size_t j = 0; j < i; j++) {
			const char *other = api_json_string(json_array_get(arr, j), idf);
			if (id && other && !strcmp(id, other)) {
				char shown[80];
				api_json_printable(shown, sizeof(shown), id);
				return MSG("%s.%s: `%s` is used twice", where, idf, shown);
			}
		}
		struct section_arg a = { .body = it, .fields = sec->fields, .where = where,
					 .id_key = sec->resource_id ? idf : NULL };
		if (check_section_id(&a, err, errlen) || sec->fn(s, &a, err, errlen))
			return err;
	}
	return NULL;
}

/* The whole document has passed doc_fields, which holds every section's
 * table. */
static const char *document(struct vm_config *s, const struct section_arg *a, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		const struct section *sec = &sections[i];
		const json_t *v = api_json_member(a->body, sec->name);
		struct section_arg one = { .body = v, .fields = sec->fields, .where = sec->name };
		if (v && (sec->id_field ? doc_array(s, sec, v, err, errlen) : sec->fn(s, &one, err, errlen)))
			return err;
	}
	return NULL;
}

/* ------------------------------------------------------------ requests */

/* Each request of config_json.h: its section's parser, table, name in
 * messages and PUT or PATCH; `out` says the request reports what changed
 * (a runtime update). */
static const struct request_row {
	section_fn fn;
	const struct api_field *fields;
	const char *where;
	const char *id_key;   /* keyed by this resource id member */
	bool patch, out;
} requests[VM_CONFIG_REQUESTS] = {
	[VM_PUT_BOOT_SOURCE] = { boot_source, boot_source_fields, "boot-source" },
	[VM_PUT_MACHINE] = { machine, machine_put_fields, "machine-config" },
	[VM_PATCH_MACHINE] = { machine, machine_patch_fields, "machine-config", .patch = true },
	[VM_PUT_DRIVE] = { drive, drive_fields, "drives", "drive_id" },
	[VM_PATCH_DRIVE] = { drive_patch, drive_patch_fields, "drives", "drive_id", .patch = true, .out = true },
	[VM_PUT_NET] = { net, net_fields, "network-interfaces", "iface_id" },
	[VM_PATCH_NET] = { net_patch, net_patch_fields, "network-interfaces", "iface_id", .patch = true,
			   .out = true },
	[VM_PUT_SHARE] = { share, share_fields, "shares" },
	[VM_PUT_VSOCK] = { vsock, vsock_fields, "vsock" },
	[VM_PUT_BALLOON] = { balloon, balloon_fields, "balloon" },
	[VM_PATCH_BALLOON] = { balloon_patch, balloon_patch_fields, "balloon", .patch = true },
	[VM_PATCH_BALLOON_STATS] = { balloon_stats_patch, balloon_stats_patch_fields, "balloon/statistics",
				     .patch = true },
	[VM_PUT_LOGGER] = { logger, logger_fields, "logger" },
	[VM_PUT_METRICS] = { metrics, metrics_fields, "metrics" },
	[VM_PUT_ENTROPY] = { entropy, entropy_fields, "entropy" },
	[VM_PUT_MMDS] = { mmds_config, mmds_config_fields, "mmds-config" },
	[VM_CONFIG_DOCUMENT] = { document, doc_fields, "" },
};

const char *vm_config_set(struct vm_config *s, enum vm_config_request r, const char *path_id,
			  const json_t *body, void *out, char *err, size_t errlen)
{
	const struct request_row *row = (unsigned)r < VM_CONFIG_REQUESTS ? &requests[r] : NULL;
	if (!row || !row->fn)
		return MSG("configuration request %d: no such request", (int)r);
	if (row->out != (out != NULL))
		return MSG("%s: %s request called %s", row->where, row->patch ? "PATCH" : "PUT",
			   row->out ? "without its result" : "with a result it does not report");
	struct section_arg a = { .body = body, .fields = row->fields, .where = row->where, .path_id = path_id,
				 .id_key = row->id_key, .out = out, .patch = row->patch };
	return request(s, row->fn, &a, err, errlen);
}

const char *vm_config_from_json(struct vm_config *s, const json_t *doc, char *err, size_t errlen)
{
	return vm_config_set(s, VM_CONFIG_DOCUMENT, NULL, doc, NULL, err, errlen);
}

json_t *vmm_config_file_read(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
		close(fd);
		snprintf(err, errlen, "%s: not a regular file of at most 1 MiB", path);
		return NULL;
	}
	size_t n = (size_t)st.st_size;
	char *buf = malloc(n + 1);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	json_error_t je;
	json_t *doc = json_loadb(buf, got, JSON_REJECT_DUPLICATES, &je);
	free(buf);
	if (!doc) {
		snprintf(err, errlen, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(doc)) {
		snprintf(err, errlen, "%s: the document must be a JSON object, not %s", path,
			 api_json_type_name(doc));
		json_decref(doc);
		return NULL;
	}
	return doc;
}

const char *vm_config_load_file(struct vm_config *s, const char *path, char *err, size_t errlen)
{
	json_t *doc = vmm_config_file_read(path, err, errlen);
	if (!doc)
		return err;
	char inner[768];
	const char *e = vm_config_from_json(s, doc, inner, sizeof(inner));
	json_decref(doc);
	if (e)
		return MSG("%s: %s", path, inner);
	return NULL;
}

int vm_config_json_paths(json_t *doc, vm_config_path_fn fn, void *ctx)
{
	static const char *const single[][2] = {
		{ "boot-source", "kernel_image_path" }, { "boot-source", "initrd_path" },
		{ "vsock", "uds_path" }, { "logger", "log_path" }, { "metrics", "metrics_path" },
	};
	char where[96];
	int r;
	for (size_t i = 0; i < sizeof(single) / sizeof(single[0]); i++) {
		json_t *o = json_object_get(doc, single[i][0]);
		const char *p = json_string_value(json_object_get(o, single[i][1]));
		snprintf(where, sizeof(where), "%s.%s", single[i][0], single[i][1]);
		if (p && (r = fn(o, single[i][1], p, where, ctx)))
			return r;
	}
	static const char *const arrays[] = { "drives", "shares" };
	for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
		size_t k;
		json_t *e;
		json_array_foreach(json_object_get(doc, arrays[i]), k, e) {
			const char *p = json_string_value(json_object_get(e, "path_on_host"));
			snprintf(where, sizeof(where), "%s[%zu].path_on_host", arrays[i], k);
			if (p && (r = fn(e, "path_on_host", p, where, ctx)))
				return r;
		}
	}
	return 0;
}

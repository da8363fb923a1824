/*
 * A VM's configuration, the one model of it: what `skiff run`'s options, a
 * --config-file, skiffd's definitions and the API describe all end up here
 * (the options through src/cli/devopts.c, JSON through config_json.c, which
 * also writes it out), a VM is built from it (vm.c, devices.c) and a
 * snapshot records it. Every string in it is malloc'd and owned by it
 * (vm_config_free). Field names follow Firecracker's API where the two
 * overlap (drives, network-interfaces, vsock, balloon, machine-config).
 *
 * Adding a field: declare it here with its default in vm_config_init(), its
 * rule in vm_config_check() when it has one across fields, its string in
 * vm_config_copy()/vm_config_free() when it is one; then its JSON member in
 * the section's table and code in config_json.c, and its option, if any, in
 * src/cli/run.c or devopts.c.
 */
#ifndef SKIFF_VMM_CONFIG_H
#define SKIFF_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_DEFAULT_MEM_MIB 512
#define VM_MIN_MEM_MIB 128
#define VM_MAX_MEM_MIB (256u * 1024)
#define VM_MAX_DRIVES 8
#define VM_MAX_BACKING_DIRS 8
#define VM_MAX_NETS 4
#define VM_MAX_SHARES 8
#define VM_MAX_PORT_FORWARDS 16
#define VM_MAX_CONSOLE_PORTS 16
#define VM_CONSOLE_PORT_NAME_MAX 127   /* virtio-console's limit */
#define VM_UDS_PATH_MAX 107            /* sockaddr_un's sun_path less its NUL */
#define VM_MAX_CMDLINE 1023            /* RISC-V Linux COMMAND_LINE_SIZE is 1024 */

/* A token bucket (Firecracker's rate_limiter: size, refill_time in ms,
 * one_time_burst). size == 0 means unlimited. */
struct vm_token_bucket {
	uint64_t size;
	uint64_t one_time_burst;
	uint64_t refill_time_ms;
};

struct vm_rate_limiter {
	struct vm_token_bucket bandwidth; /* bytes */
	struct vm_token_bucket ops;       /* operations */
};

/* UNSET only until vm_drive_settle_format() runs, when the drive is added
 * to a configuration; a VM is never created from an unsettled drive. */
enum vm_disk_format { VM_DISK_UNSET, VM_DISK_RAW, VM_DISK_QCOW2 };

struct vm_drive {
	char *id;            /* drive_id */
	char *path;          /* path_on_host */
	bool read_only;      /* is_read_only */
	bool root;           /* is_root_device: root=/dev/vdX on the command line */
	enum vm_disk_format format;
	char *serial;        /* may be NULL */
	struct vm_rate_limiter limiter;
	/* Follow a qcow2 backing chain (off by default): names resolve beneath
	 * the image's directory or one of backing_dirs (canonical absolute
	 * paths, directories or block devices). */
	bool backing;
	char *backing_dirs[VM_MAX_BACKING_DIRS];
	size_t nbacking_dirs;
};

struct vm_port_forward {
	bool udp;
	char *host_addr;     /* NULL: 127.0.0.1 */
	uint16_t host_port;
	uint16_t guest_port;
};

enum vm_net_backend { VM_NET_USER, VM_NET_TAP };

struct vm_net {
	char *id;            /* iface_id */
	enum vm_net_backend backend;
	char *tap_name;      /* host_dev_name, for VM_NET_TAP */
	uint8_t mac[6];
	bool mac_set;        /* else generated stably from the VM name and id */
	struct vm_port_forward fwd[VM_MAX_PORT_FORWARDS];
	size_t nfwd;
	struct vm_rate_limiter rx, tx;
	/* User networking only. restricted: QEMU's restrict=on, the guest
	 * reaches neither the host nor the outside (forwards still work).
	 * no_host_loopback: 10.0.2.2 does not lead to the host's loopback
	 * (skiff run keeps QEMU's default, skiffd turns it on). */
	bool restricted;
	bool no_host_loopback;
	bool mmds;           /* serves the metadata service (mmds-config) */
	bool host_loopback_set; /* given, not the default (skiffd's differs) */
};

struct vm_share {
	char *tag;
	char *path;
	bool read_only;
	bool nodev;          /* the guest makes no FIFOs, sockets or symlinks here */
};

/* A named virtio-console port (/dev/virtio-ports/NAME in the guest) whose
 * host side is a Unix socket skiff listens on. */
struct vm_console_port {
	char *name;
	char *uds_path;
};

/* The VMM process's log (Firecracker's logger section). */
enum vmm_log_level {
	VMM_LOG_OFF, VMM_LOG_ERROR, VMM_LOG_WARNING, VMM_LOG_INFO, VMM_LOG_DEBUG, VMM_LOG_TRACE,
};

struct vmm_logger_config {
	bool set;
	char *log_path;            /* NULL: standard error */
	enum vmm_log_level level;
	bool show_level, show_log_origin;
};

/* Where the VMM writes its metrics lines (Firecracker's metrics section). */
struct vmm_metrics_config {
	bool set;
	char *path;
};

struct vm_config {
	char *name;          /* for messages and stable MACs; may be NULL */
	unsigned ncpus;
	uint64_t mem_bytes;
	double cpu_quota;    /* fraction of a host core; 0 = unlimited */
	/* Execution tier (engine.h's enum engine_tier; engine_set false: the
	 * engine's default), the JIT's code cache size per hart (0: default)
	 * and its lockstep check (debugging). */
	bool engine_set;
	int engine;
	uint64_t jit_cache_bytes;
	bool jit_lockstep;
	char *kernel;
	char *initrd;        /* may be NULL */
	char *append;        /* kernel command line; may be NULL */
	char *dump_dtb;      /* write the generated device tree here; may be NULL */
	bool virtio_console; /* hvc0 on virtio-console instead of the UART */
	bool rng;            /* virtio-rng (on by default in skiff run) */
	bool agent;          /* the guest agent port org.qemu.guest_agent.0 (src/vmm/agent.h),
			      * on by default in skiff run and the API */

	struct vm_drive drives[VM_MAX_DRIVES];
	size_t ndrives;
	struct vm_net nets[VM_MAX_NETS];
	size_t nnets;
	struct vm_share shares[VM_MAX_SHARES];
	size_t nshares;
	struct vm_console_port ports[VM_MAX_CONSOLE_PORTS];
	size_t nports;       /* with ports, virtio-console exists even when the UART is the console */

	bool vsock;
	uint32_t vsock_cid;
	char *vsock_uds;

	bool balloon;
	bool balloon_deflate_on_oom;
	uint32_t balloon_target_mib;
	uint32_t balloon_stats_interval_s;
	bool balloon_free_page_hinting;       /* Firecracker's free_page_hinting */

	/* mmds-config (PUT /mmds/config): the metadata service's version (1
	 * or 2), its IPv4 address (host order) and answer format; the NICs
	 * that serve it have vm_net.mmds. */
	bool mmds;
	int mmds_version;
	uint32_t mmds_ipv4;
	bool mmds_imds_compat;

	/* entropy (PUT /entropy, Firecracker's EntropyDeviceConfig): given,
	 * the VM has virtio-rng whatever `rng` says, limited by this. */
	bool entropy;
	struct vm_rate_limiter entropy_limiter;
	bool balloon_no_free_page_reporting;  /* free_page_reporting: false */

	/* machine-config.track_dirty_pages: the VM keeps a dirty page log for
	 * diff snapshots from its start. */
	bool track_dirty_pages;
	/* The VMM process's outputs. */
	struct vmm_logger_config logger;
	struct vmm_metrics_config metrics;
};

/* The defaults (1 vCPU, 512 MiB, virtio-rng and the guest agent port on,
 * the log at Info). */
void vm_config_init(struct vm_config *c);
/* Free every string and empty the configuration. */
void vm_config_free(struct vm_config *c);
/* Deep copy; -1 when out of memory (dst is then empty). */
int vm_config_copy(struct vm_config *dst, const struct vm_config *src);

/* strdup for the configuration's strings: NULL stays NULL; *fail is set
 * when out of memory. */
char *vm_config_strdup(const char *p, bool *fail);

/* Free the strings of the device sections (drives, NICs, shares, console
 * ports, the vsock path) and empty them; the other fields are left alone. */
void vm_config_free_devices(struct vm_config *c);
/* The same for one section entry. */
void vm_drive_free(struct vm_drive *d);
void vm_net_free(struct vm_net *n);
void vm_share_free(struct vm_share *sh);

/* Settle the format of a drive given without one, once, as it is added to
 * a configuration (drive_format.c): a read-only image is probed, a writable
 * one is raw unless it starts with the qcow2 magic, which is refused (the
 * guest may have written that header: the user must say which it is). The
 * result is stored in the drive, so no reboot, stop/start or restore of
 * that configuration ever looks at the contents again. NULL if settled,
 * else err says why not. */
const char *vm_drive_settle_format(struct vm_drive *d, char *err, size_t errlen);

/* Add directory (or block device) `dir` to a drive's backing_dirs as its
 * canonical path, which must exist; turns backing on. NULL on success. */
const char *vm_drive_add_backing_dir(struct vm_drive *d, const char *dir, char *err, size_t errlen);

/* The rules of the whole configuration, checked after every change and
 * before any VM is built: ranges, the engine, console ports, the kernel
 * command line (one line the kernel takes whole), and the rules across
 * sections (balloon within RAM, quota within vCPUs, one root drive, unique
 * drive and interface ids and share tags, unique MACs, TAP names and
 * forwarded ports). NULL if usable, else a message naming the field that
 * is wrong. The kernel is not checked here: a restored VM needs none
 * (vm_create does). */
const char *vm_config_check(const struct vm_config *c, char *err, size_t errlen);

/* "xx:xx:xx:xx:xx:xx" */
void vm_mac_format(char out[18], const uint8_t mac[6]);

/* Is `name` a usable console port name: 1..VM_CONSOLE_PORT_NAME_MAX
 * printable ASCII characters other than space, ',' and '/', and not "." or
 * ".." (it becomes a file name in the guest)? */
bool vm_console_port_name_valid(const char *name);

#endif

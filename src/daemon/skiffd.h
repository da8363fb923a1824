/*
 * skiffd, the supervisor: many VMs, each its own `skiff run` process with its
 * own API socket, driven through one REST API on a Unix socket. This header
 * holds what its parts share: the daemon (struct skiffd) and one record per
 * VM (struct skiffd_vm).
 *
 * State directory layout (everything mode 0600/0700, owned by the user):
 *   STATE/skiffd.lock          held (flock) while a skiffd uses STATE
 *   STATE/vms/ID/vm.json       the definition: id, name, created_at, config
 *                              (the --config-file sections), last_exit,
 *                              jail_uid;
 *                              written atomically (temp, fsync, rename)
 *   STATE/vms/ID/config.json   what the VMM was last started with
 *   STATE/vms/ID/pid           "PID STARTTIME STARTED_AT" while it runs
 *   STATE/vms/ID/console.log   the VMM's standard output and error
 *   STATE/vms/ID/run/          the only place the VMM may write (vm_jail.c):
 *     api.sock                 the VM's own API (Firecracker's)
 *     console.sock             the guest console (skiff console)
 *     metrics.json             the VMM's metrics lines (FlushMetrics)
 *     vsock.sock, portN.sock   a restored VM's own sockets (snapshots.c)
 *     snapshot/                a snapshot being saved, moved out when done
 *   STATE/vms/ID/root/         the jail's root while it runs (skiffd as root)
 *   STATE/vms/ID/overlay/      an image VM's overlay, alone (vm_image.c)
 *
 * VMM processes are started in their own session and never depend on
 * skiffd: when skiffd ends, however it ends, they keep running, and the next
 * skiffd adopts them from their pid files (same process start time, a
 * command line naming this VM's API socket, an API that answers).
 *
 * Threads: the HTTP server runs each connection's requests on a thread of
 * its own (a pool of threads, one connection each), so a long request (a
 * guest agent call, a snapshot, a start) holds up only its own client; the
 * main thread reaps VMM processes and notices adopted ones that ended. Two
 * kinds of lock:
 *
 *   d->lock   the daemon's: the VM table, every VM record's fields, jail
 *             uid and vsock CID allocation, the running-memory count, each
 *             vm.json and pid file write. Held only for short work, never
 *             while waiting on a VMM (a call to its API, its start, its end).
 *   vm->op    one VM's: its start, stop, delete, snapshot (and the snapshot
 *             of a clone), a PATCH passed to it. Held across the waits.
 *             Taken before d->lock, never while holding it. Other calls
 *             passed to the VM (GETs, guest agent calls) take neither: the
 *             VMM serves them concurrently itself.
 *
 * A record's fields are written with d->lock held; config, restore,
 * jail_uid and the process fields that a start sets are written with
 * vm->op held too, so the VM's operation reads them with either lock;
 * what the main thread records when a process ends (pid, vmm_pid, child,
 * last_exit, cgroup) is read under d->lock only. A request holds a
 * reference (refs) on the record it works on; DELETE takes the record out
 * of the table (removed) and the last reference frees it. A create
 * reserves its id, name, jail uid and CID by putting a `creating` record in
 * the table at once (lookups skip it), so two creates of one id cannot
 * both succeed.
 */
#ifndef SKIFF_DAEMON_SKIFFD_H
#define SKIFF_DAEMON_SKIFFD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define SKIFFD_MAX_ID 64
/* Longest Unix socket path (sizeof sun_path - 1). */
#define SKIFFD_MAX_SOCK_PATH 107
/* The VMM's own directory and its jail's root, in STATE/vms/ID. */
#define SKIFFD_RUN_DIR "run"
#define SKIFFD_JAIL_DIR "root"

struct skiffd_exit {
	bool known;            /* false: it ended while no skiffd watched */
	int code;              /* exit status, when !signal */
	int signal;            /* the signal that ended it, or 0 */
	bool stopped;          /* ended by InstanceStop / DELETE */
	int64_t at;            /* unix time */
};

struct skiffd_vm {
	char *id;
	char *name;            /* NULL: none */
	char *dir;             /* STATE/vms/ID */
	json_t *config;        /* the sections; owned */
	unsigned vcpus;
	uint64_t mem_mib;
	int64_t created_at;

	/* While its VMM process lives. */
	pid_t pid;             /* 0: not running */
	pid_t vmm_pid;         /* the process that runs the guest: pid, or in a
				  jail pid's child (vm_jail.c) */
	bool old_layout;       /* adopted from a skiffd before run/: its sockets
				  are in dir itself */
	unsigned long long starttime;  /* /proc/PID/stat field 22 */
	int64_t started_at;
	bool child;            /* started by this skiffd (reaped with waitpid) */

	bool has_exit;
	struct skiffd_exit last_exit;

	/* Made from a snapshot and not started since: the body of the
	 * PUT /snapshot/load its first start sends (snapshots.c); else NULL. */
	json_t *restore;

	/* The uid its jailed VMM runs as, its own among skiffd's VMs
	 * (vm_jail.c); 0: none (not jailed, or the range was full). */
	uid_t jail_uid;

	/* Its cgroup v2 directory while it runs in one (cgroup.c); else NULL. */
	char *cgroup;

	/* Concurrency (see the top of this file). */
	pthread_mutex_t op;    /* this VM's operations */
	unsigned refs;         /* requests working on it (d->lock) */
	bool creating;         /* being made: id, name, uid and cid reserved,
				  invisible to lookups and lists */
	bool removed;          /* out of the table; freed at the last put */
	bool deleting;         /* a DELETE runs: other operations refused */
	bool starting;         /* a start runs: its memory counts as running */
	bool stopping;         /* InstanceStop/DELETE sent SIGTERM: its end is
				  recorded as stopped */
	uint64_t cid;          /* a clone being made: its vsock CID, reserved */

	struct skiffd_vm *next;
};

/* The cgroup v2 skiffd puts its VMs' cgroups in (cgroup.c); base NULL:
 * none (the in-process CPU quota alone). Which controllers it has. */
struct skiffd_cgroup {
	char *base;
	bool cpu, memory, pids, io;
};

/* skiffd as root jails its VMs (vm_jail.c): on, and as whom. Each VM
 * gets a uid of its own from [uid_base, uid_base + uid_count), kept in its
 * vm.json; all share the group gid (through which the operator lets them
 * read kernels and images). The default group is `skiff run --jail`'s
 * (vmm/jail.h); the default range lies above every account and the first
 * ~28000 users' /etc/subuid ranges (which start at 100000, 65536 each). */
#define SKIFFD_JAIL_DEFAULT_GID 65532
#define SKIFFD_JAIL_DEFAULT_UID_BASE 1879048192u   /* 0x70000000 */
#define SKIFFD_JAIL_DEFAULT_UID_COUNT 65536u
struct skiffd_jail {
	bool on;
	uid_t uid_base;
	uint32_t uid_count;
	gid_t gid;
};

struct skiffd {
	char *state_dir;
	char *vms_dir;
	char *socket_path;
	char *vmm_path;        /* the skiff binary that runs a VM */
	uint64_t mem_limit_mib;
	bool mem_limit_given;
	char console_log_max[24]; /* each VM's console.log cap, as skiff run takes it */
	struct skiffd_cgroup cgroup;
	struct skiffd_jail jail;
	long clk_tck;
	long page_size;

	pthread_mutex_t lock;
	struct skiffd_vm *vms; /* in creation order */
	struct api_server *server;
	/* SIGTERM/SIGINT came: requests proxied to a VMM give up their wait
	 * (uhttp_call_cancel), so that the server's stop, which waits for
	 * every request in flight, ends soon. */
	atomic_bool ending;
	int lock_fd;
};

/* cgroup.c: find (or take --cgroup's, or "off") the delegated cgroup v2
 * and enable its controllers for the VMs' cgroups; logs what it does. */
void skiffd_cgroup_init(struct skiffd *d, const char *opt);
/* Make the VM's cgroup with its limits: the descriptor of its cgroup.procs
 * (the VMM writes "0" there before exec), or -1 for none (logged). */
int skiffd_cgroup_prepare(struct skiffd *d, struct skiffd_vm *vm);
/* The VM's process ended: remove its cgroup. */
void skiffd_cgroup_remove(struct skiffd_vm *vm);

/* vm_jail.c: how each VMM is confined */
/* STATE/vms/ID/run/FILE (FILE NULL: the directory); malloc'd. */
char *skiffd_vm_run_path(const struct skiffd_vm *vm, const char *file);
/* The running VM's socket FILE (api.sock, console.sock): in run/, or in
 * its directory for a VMM adopted from an older skiffd; malloc'd. */
char *skiffd_vm_sock(const struct skiffd_vm *vm, const char *file);
/* Make run/ (and run/SUB unless NULL) for the VMM: owned by the VM's jail
 * uid when jailed (with SUB NULL, before a start, everything in run/ is
 * handed to it: a VM whose uid changed finds its files its own). 0 or -1
 * with err. */
int skiffd_vm_run_dir(const struct skiffd *d, const struct skiffd_vm *vm, const char *sub, char *err,
		      size_t errlen);
/* Give `vm` a jail uid no other VM of d->vms has (when jailed and it has
 * none, or one outside the range, or another VM's). 0, or -1 with err when
 * the range is full. */
int skiffd_jail_assign(const struct skiffd *d, struct skiffd_vm *vm, char *err, size_t errlen);
/* A file skiffd made for the VMM (its console log, a drive copy) goes to
 * the VM's jail uid when jailed. 0 or -1 with err. */
int skiffd_hand_over(const struct skiffd *d, const struct skiffd_vm *vm, int fd, char *err, size_t errlen);
int skiffd_hand_over_path(const struct skiffd *d, const struct skiffd_vm *vm, const char *path, char *err,
			  size_t errlen);
/* The `skiff run` options that confine the VM's VMM, into out; their
 * count (0: none, the VMM confines itself by Landlock). root and ids hold
 * the values. */
size_t skiffd_sandbox_args(const struct skiffd *d, const struct skiffd_vm *vm, char *root, size_t rootlen,
			   char ids[2][16], const char *out[7]);
/* The process that runs the guest for the `skiff run` process `launcher`:
 * its child in a jail, else itself. */
pid_t skiffd_find_vmm(pid_t launcher);
/* Make the host file `path` visible at the same path inside the running
 * VM's jail (read only unless `write`), for a PATCH that names it; nothing
 * to do when the VM is not jailed. 0 or -1 with err. */
int skiffd_bring_in(const struct skiffd *d, const struct skiffd_vm *vm, const char *path, bool write,
		    char *err, size_t errlen);
/* The same for every file of the VM's definition (kernel, initrd, drives,
 * shares): a restore starts the VMM without one, so its jail holds only
 * run/ until then. */
int skiffd_bring_in_config(const struct skiffd *d, const struct skiffd_vm *vm, char *err, size_t errlen);

/* store.c: definitions and files on disk */
int skiffd_write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen);
char *skiffd_vm_path(const struct skiffd_vm *vm, const char *file);
int skiffd_save_vm(const struct skiffd_vm *vm, char *err, size_t errlen);
/* Is `s` a usable VM id or name: 1 to SKIFFD_MAX_ID letters, digits, '-'
 * and '_', not starting with '-' (it would read as an option wherever an
 * id is passed as an argument: `skiff run --id`, scripts, xargs). */
bool skiffd_id_ok(const char *s);
/* Read every STATE/vms/ID/vm.json into d->vms. Problems are logged and
 * the VM skipped. */
void skiffd_load_vms(struct skiffd *d);
/* A new record (id, name, STATE/vms/ID; refs 1, op lock ready). NULL when
 * out of memory. */
struct skiffd_vm *skiffd_vm_alloc(const struct skiffd *d, const char *id, const char *name);
void skiffd_vm_free(struct skiffd_vm *vm);
/* The VM named by id or name, not being created or removed, with a
 * reference taken (d->lock held); NULL when none. */
struct skiffd_vm *skiffd_get(struct skiffd *d, const char *id_or_name);
/* Give a reference back; a removed record is freed at the last (takes
 * d->lock). */
void skiffd_put(struct skiffd *d, struct skiffd_vm *vm);
/* Take the record out of the table (d->lock held). */
void skiffd_unlink(struct skiffd *d, struct skiffd_vm *vm);
/* Remove the VM's directory and everything in it. */
int skiffd_remove_vm_dir(const struct skiffd_vm *vm, char *err, size_t errlen);
struct skiffd_vm *skiffd_find(struct skiffd *d, const char *id_or_name);
/* The VM as JSON (GET /vms/{id}), d->lock held; a running VM's state is
 * "running" until skiffd_vm_json_live asks its API. */
json_t *skiffd_vm_json(struct skiffd *d, struct skiffd_vm *vm);
/* With no lock held: a running VM's state as its API reports it (paused,
 * starting, unresponsive) into `o` from skiffd_vm_json. */
void skiffd_vm_json_live(json_t *o);

/* vcpus and mem_mib from the configuration's machine-config. */
void skiffd_vm_machine(struct skiffd_vm *vm);

/* snapshots.c */
/* Save the running VM into `dir` (absolute; made if missing): pause it
 * unless it is paused, PUT /snapshot/create, copy its writable drives,
 * resume. `type` "Full" or "Diff" (NULL: Full). vm->op held. 0 or -1. */
int skiffd_vm_snapshot(struct skiffd *d, struct skiffd_vm *vm, const char *dir, const char *type,
		       char *err, size_t errlen);
/* Make the reserved (creating) record `vm` a VM from the snapshot in
 * `snapdir`, with its own host side (directory and vm.json written); a
 * clone also gets a new CID and MACs. vm->op held. 0, or -1 with a message
 * (nothing left on disk). */
int skiffd_vm_from_snapshot(struct skiffd *d, struct skiffd_vm *vm, const char *snapdir, bool clone, char *err,
			    size_t errlen);
/* The first start of such a VM: PUT /snapshot/load on its fresh VMM
 * (vm->op held). */
int skiffd_vm_load_snapshot(struct skiffd_vm *vm, char *err, size_t errlen);

/* proc.c: VMM processes */
/* Adopt a VM whose pid file says it runs (at startup). */
void skiffd_adopt(struct skiffd *d, struct skiffd_vm *vm);
/* Start the VMM (vm->op held); 0, or -1 with a message in err. */
int skiffd_start_vm(struct skiffd *d, struct skiffd_vm *vm, char *err, size_t errlen);
/* The first step of InstanceStop and DELETE, before they wait for vm->op
 * (d->lock held): SIGTERM to a running VMM, so that an operation holding
 * vm->op on it (a snapshot, a restore's load) ends soon. */
void skiffd_signal_stop(struct skiffd_vm *vm);
/* InstanceStop (vm->op held): SIGTERM, then SIGKILL after a grace period. */
int skiffd_stop_vm(struct skiffd *d, struct skiffd_vm *vm, char *err, size_t errlen);
/* Reap children and notice adopted VMs that ended (lock held). */
void skiffd_reap(struct skiffd *d);
/* Does the VM's process run (d->lock held)? */
bool skiffd_vm_running(const struct skiffd_vm *vm);
/* Is the VM's process still the one we started (lock held)? */
bool skiffd_vm_alive(struct skiffd *d, struct skiffd_vm *vm);
/* Configured memory of running VMs, in MiB (lock held). */
uint64_t skiffd_running_mem_mib(struct skiffd *d);
/* /proc/PID/stat: user and system CPU ticks, RSS pages, threads, start time. */
struct skiffd_proc_stat {
	unsigned long long utime, stime, starttime;
	long rss_pages, threads;
	pid_t ppid;
	char state;
};
int skiffd_read_proc_stat(pid_t pid, struct skiffd_proc_stat *st);

/* routes.c: the REST API */
struct api_request;
struct api_response;
void skiffd_handle(void *ctx, const struct api_request *req, struct api_response *resp);

/* metrics.c: GET /metrics (Prometheus text format 0.0.4) */
char *skiffd_metrics_text(struct skiffd *d);

/* Log a line on standard error with a timestamp. */
void skiffd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

/*
 * The per-VM API and the VMM it drives: routes, the rules for which calls
 * are allowed before and after InstanceStart (Firecracker's, from its
 * rpc_interface: configuration before start, runtime updates and pause/resume
 * after), InstanceStart itself, the VM's end, the logger and the metrics.
 * See api.h.
 *
 * Every request is handled under the VMM's lock: parse the body, check the
 * call is allowed in this state, check and apply the section to a copy of
 * the configuration (config_json.c), run the device hook if the VM is
 * running, and only then keep the copy. A refused request changes nothing.
 */
#include "vmm/api.h"
#include "vmm/vm_metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/json_check.h"
#include "base/clock.h"
#include "vmm/api_agent.h"
#include "vmm/api_log.h"
#include "vmm/api_snapshot.h"
#include "vmm/serial_out.h"

#define DEFAULT_ID "anonymous-instance"
#define METRICS_PERIOD_NS (60ull * 1000000000ull)
#define PREBOOT_ONLY "The requested operation is not supported after starting the microVM."
#define POSTBOOT_ONLY "The requested operation is not supported before starting the microVM."

enum vmm_state { VMM_NOT_STARTED, VMM_RUNNING, VMM_ENDED };

struct vmm {
	pthread_mutex_t lock;
	pthread_t main_thread;
	char *id, *version, *dump_dtb;
	bool virtio_console, no_rng, no_agent;
	struct vm_console console;

	struct vm_config spec;      /* the configuration as the API sees it */
	struct vm_config booted;    /* what the running VM was created from */
	enum vmm_state state;
	bool paused;
	bool configured;           /* a section other than logger/metrics was set */
	bool clock_resync_due;     /* restored: set the guest clock through the agent */
	struct vmm_serial *serial; /* PUT /serial, or NULL: output to `console` */
	struct vm *vm;
	uint64_t started_ns;

	struct api_server *server;
	struct vmm_logger log;
	int metrics_fd;
	uint64_t last_metrics_ns;
	uint64_t requests, failed_requests, metrics_dropped;
	int64_t suspend_gap_ns;    /* CLOCK_BOOTTIME - CLOCK_MONOTONIC at the last tick */
};

static void vlog(struct vmm *v, enum vmm_log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void vlog(struct vmm *v, enum vmm_log_level level, const char *file, int line, const char *fmt, ...)
{
	if (v->log.fd < 0 || level > v->log.level)
		return;
	char msg[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	const char *thread = pthread_equal(pthread_self(), v->main_thread) ? "main" : "api";
	vmm_logger_write(&v->log, v->id, thread, level, file, line, msg);
}

#define LOG(v, level, ...) vlog((v), (level), __FILE__, __LINE__, __VA_ARGS__)

struct vmm *vmm_new(const struct vmm_params *p, char *err, size_t errlen)
{
	struct vmm *v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	const char *id = p->id ? p->id : DEFAULT_ID;
	v->id = strdup(id);
	v->version = strdup(p->version ? p->version : "unknown");
	v->dump_dtb = p->dump_dtb ? strdup(p->dump_dtb) : NULL;
	if (!v->id || !v->version || (p->dump_dtb && !v->dump_dtb)) {
		free(v->id);
		free(v->version);
		free(v->dump_dtb);
		free(v);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&v->lock, NULL);
	v->main_thread = pthread_self();
	v->console = p->console;
	v->virtio_console = p->virtio_console;
	v->no_rng = p->no_rng;
	v->no_agent = p->no_agent;
	vm_config_init(&v->spec);
	vm_config_init(&v->booted);
	v->log.fd = -1;
	v->metrics_fd = -1;
	return v;
}

void vmm_free(struct vmm *v)
{
	if (!v)
		return;
	api_server_stop(v->server); /* no request runs after this */
	if (v->vm)
		vm_destroy(v->vm);
	vm_config_free(&v->spec);
	vm_config_free(&v->booted);
	vmm_serial_free(v->serial);
	vmm_logger_close(&v->log);
	if (v->metrics_fd >= 0)
		close(v->metrics_fd);
	pthread_mutex_destroy(&v->lock);
	free(v->id);
	free(v->version);
	free(v->dump_dtb);
	free(v);
}

/* ------------------------------------------------------------ metrics */

static const char *const exit_names[EXIT_REASONS] = {
	[EXIT_NONE] = "none", [EXIT_SBI] = "sbi", [EXIT_WFI] = "wfi", [EXIT_MMIO] = "mmio",
	[EXIT_KICK] = "kick", [EXIT_USER_ECALL] = "user_ecall", [EXIT_FATAL] = "fatal",
	[EXIT_PAUSE] = "pause",
};

/* One JSON line of counters (lock held). */
static bool write_metrics(struct vmm *v)
{
	if (v->metrics_fd < 0)
		return true;
	json_t *m = json_pack("{s:I,s:{s:I,s:I},s:{s:s,s:I,s:I}}",
			      "utc_timestamp_ms", (json_int_t)(clock_ns(CLOCK_REALTIME) / 1000000),
			      "api_server", "requests", (json_int_t)v->requests,
			      "failed_requests", (json_int_t)v->failed_requests,
			      "vmm", "state", v->state == VMM_NOT_STARTED ? "Not started" :
					      v->paused ? "Paused" : "Running",
			      "uptime_ms", (json_int_t)(v->started_ns ? (clock_ns(CLOCK_MONOTONIC) - v->started_ns) / 1000000 : 0),
			      "log_lines_dropped", (json_int_t)v->log.dropped);
	if (!m)
		return false;
	json_t *cpus = json_array();
	if (v->vm) {
		for (unsigned i = 0; i < v->vm->nharts; i++) {
			struct vcpu *c = &v->vm->vcpu[i];
			json_t *exits = json_object();
			for (unsigned r = 0; r < EXIT_REASONS; r++)
				if (exit_names[r])
					json_object_set_new(exits, exit_names[r],
							    json_integer((json_int_t)atomic_load(&c->exits[r])));
			json_array_append_new(cpus, json_pack("{s:i,s:I,s:I,s:I,s:o}", "hart", (int)i,
							      "instructions", (json_int_t)atomic_load(&c->instructions),
							      "sbi_calls", (json_int_t)atomic_load(&c->sbi_calls),
							      "wfi_sleeps", (json_int_t)atomic_load(&c->wfi_sleeps),
							      "exits", exits));
		}
	}
	json_object_set_new(m, "vcpus", cpus);
	if (v->vm)
		vm_metrics_add(v->vm, m);
	char *line = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	bool ok = line && vmm_write_line(v->metrics_fd, line);
	free(line);
	if (!ok)
		v->metrics_dropped++;
	v->last_metrics_ns = clock_ns(CLOCK_MONOTONIC);
	return ok;
}

/* Have the guest's clock set from the host's through its agent (lock
 * held): after a resume, a restore, and after the host slept (the guest's
 * timer stood still meanwhile). Best effort, in the background: without
 * an agent nothing happens; GET /agent shows how it went. */
static void resync_guest_clock(struct vmm *v, const char *why)
{
	if (v->vm && !v->paused && vmm_agent_present(v->vm)) {
		vmm_agent_sync_time(v->vm, why);
		LOG(v, VMM_LOG_INFO, "the guest clock is being set through its agent (%s)", why);
	}
}

void vmm_tick(struct vmm *v)
{
	pthread_mutex_lock(&v->lock);
	if (v->metrics_fd >= 0 && v->state == VMM_RUNNING &&
	    clock_ns(CLOCK_MONOTONIC) - v->last_metrics_ns >= METRICS_PERIOD_NS)
		write_metrics(v);
	/* CLOCK_BOOTTIME counts a host suspend, CLOCK_MONOTONIC does not. */
	int64_t gap = (int64_t)(clock_ns(CLOCK_BOOTTIME) - clock_ns(CLOCK_MONOTONIC));
	if (v->suspend_gap_ns && gap - v->suspend_gap_ns > 1000000000LL && v->state == VMM_RUNNING)
		resync_guest_clock(v, "host suspend");
	v->suspend_gap_ns = gap;
	/* After a restore, once the VM runs (a restore left paused is set
	 * at its resume). */
	if (v->clock_resync_due && v->state == VMM_RUNNING && !v->paused) {
		v->clock_resync_due = false;
		resync_guest_clock(v, "snapshot restore");
	}
	pthread_mutex_unlock(&v->lock);
}

/* ------------------------------------------------------------ configuration */

/* Keep `next` (consumed) as the configuration, first opening the logger and
 * metrics outputs of the sections that were given (lock held). Nothing
 * changes if an output cannot be opened. */
static const char *commit_outputs(struct vmm *v, struct vm_config *next, bool logger_given,
				  bool metrics_given, char *err, size_t errlen)
{
	struct vmm_logger nl = { .fd = -1 };
	int mfd = -1;
	if (logger_given && vmm_logger_open(&nl, &next->logger, err, errlen)) {
		vm_config_free(next);
		return err;
	}
	if (metrics_given && (mfd = vmm_metrics_open(next->metrics.path, err, errlen)) < 0) {
		vmm_logger_close(&nl);
		vm_config_free(next);
		return err;
	}
	if (logger_given) {
		vmm_logger_close(&v->log);
		v->log = nl;
	}
	if (metrics_given) {
		if (v->metrics_fd >= 0)
			close(v->metrics_fd);
		v->metrics_fd = mfd;
	}
	vm_config_free(&v->spec);
	v->spec = *next;
	return NULL;
}

const char *vmm_configure(struct vmm *v, const json_t *doc, char *err, size_t errlen)
{
	const char *e = NULL;
	pthread_mutex_lock(&v->lock);
	struct vm_config next;
	if (v->state != VMM_NOT_STARTED) {
		snprintf(err, errlen, PREBOOT_ONLY);
		e = err;
	} else if (vm_config_copy(&next, &v->spec)) {
		snprintf(err, errlen, "out of memory");
		e = err;
	} else if (vm_config_from_json(&next, doc, err, errlen)) {
		vm_config_free(&next);
		e = err;
	} else {
		e = commit_outputs(v, &next, api_json_member(doc, "logger") != NULL,
				   api_json_member(doc, "metrics") != NULL, err, errlen);
		if (!e)
			v->configured = true;
	}
	pthread_mutex_unlock(&v->lock);
	return e;
}

bool vmm_has_boot_source(struct vmm *v)
{
	pthread_mutex_lock(&v->lock);
	bool r = v->spec.kernel != NULL;
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* ------------------------------------------------------------ lifecycle */

/* Where the guest's console output goes: the PUT /serial sink if there is
 * one (it passes on to `console` when it has no file). */
static struct vm_console guest_console(struct vmm *v)
{
	if (!v->serial)
		return v->console;
	v->serial->next = v->console;
	return (struct vm_console){ .out = vmm_serial_write, .ctx = v->serial };
}

/* Build and start a VM from the current spec (lock held). */
static const char *boot(struct vmm *v, char *err, size_t errlen)
{
	if (!v->spec.kernel) {
		snprintf(err, errlen, "Cannot start microvm without kernel configuration "
			 "(PUT /boot-source with kernel_image_path first).");
		return err;
	}
	struct vm_config b;
	if (vm_config_copy(&b, &v->spec)) {
		snprintf(err, errlen, "out of memory");
		return err;
	}
	bool fail = false;
	free(b.name);
	b.name = strdup(v->id);
	fail |= !b.name;
	if (!b.append)
		fail |= !(b.append = strdup(VMM_DEFAULT_BOOT_ARGS));
	if (v->dump_dtb && !b.dump_dtb)
		fail |= !(b.dump_dtb = strdup(v->dump_dtb));
	b.virtio_console = v->virtio_console;
	b.rng = !v->no_rng;
	b.agent = !v->no_agent;
	if (fail) {
		vm_config_free(&b);
		snprintf(err, errlen, "out of memory");
		return err;
	}
	char why[512];
	struct vm_console con = guest_console(v);
	struct vm *vm = vm_create(&b, &con, why, sizeof(why));
	if (!vm) {
		vm_config_free(&b);
		snprintf(err, errlen, "Start microvm error: %s", why);
		return err;
	}
	char why2[256];
	if (b.track_dirty_pages && vm_snapshot_track_dirty(vm, true, why2, sizeof(why2))) {
		vm_destroy(vm);
		vm_config_free(&b);
		snprintf(err, errlen, "Start microvm error: %s", why2);
		return err;
	}
	if (vm_start(vm)) {
		vm_destroy(vm);
		vm_config_free(&b);
		snprintf(err, errlen, "Start microvm error: cannot start the first hart");
		return err;
	}
	vm_config_free(&v->booted);
	v->booted = b; /* stays unchanged while the VM lives */
	v->vm = vm;
	v->paused = false;
	v->state = VMM_RUNNING;
	v->started_ns = clock_ns(CLOCK_MONOTONIC);
	v->last_metrics_ns = v->started_ns;
	return NULL;
}

const char *vmm_start(struct vmm *v, char *err, size_t errlen)
{
	pthread_mutex_lock(&v->lock);
	const char *e;
	if (v->state != VMM_NOT_STARTED) {
		snprintf(err, errlen, PREBOOT_ONLY);
		e = err;
	} else {
		e = boot(v, err, errlen);
	}
	if (!e)
		LOG(v, VMM_LOG_INFO, "InstanceStart: the VM is running (%u vCPUs, %" PRIu64 " MiB)",
		    v->spec.ncpus, v->spec.mem_bytes >> 20);
	pthread_mutex_unlock(&v->lock);
	return e;
}

struct vm *vmm_vm(struct vmm *v)
{
	pthread_mutex_lock(&v->lock);
	struct vm *vm = v->vm;
	pthread_mutex_unlock(&v->lock);
	return vm;
}

static const char *end_name(enum vm_end why)
{
	switch (why) {
	case VM_POWEROFF: return "powered off";
	case VM_REBOOT: return "rebooted";
	case VM_FAILED: return "reported failure";
	case VM_CRASHED: return "crashed";
	case VM_STOPPED: return "was stopped";
	default: return "ended";
	}
}

int vmm_vm_ended(struct vmm *v, enum vm_end why, char *err, size_t errlen)
{
	pthread_mutex_lock(&v->lock);
	struct vm *vm = v->vm;
	v->vm = NULL;
	LOG(v, VMM_LOG_INFO, "the guest %s", end_name(why));
	if (vm)
		vm_destroy(vm);
	int r = 0;
	if (why == VM_REBOOT) {
		v->state = VMM_NOT_STARTED;
		if (boot(v, err, errlen)) {
			LOG(v, VMM_LOG_ERROR, "reboot failed: %s", err);
			r = -1;
		} else {
			r = 1;
		}
	}
	if (r != 1) {
		v->state = VMM_ENDED;
		v->paused = false;
		write_metrics(v);
	}
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* ------------------------------------------------------------ the API */

struct call {
	struct vmm *v;
	struct api_response *resp;
	const json_t *body;
	const char *id;            /* from the path, for /drives/{id} and the like */
	char err[1024];
};

static void fault(struct call *c, const char *msg)
{
	api_respond_fault(c->resp, 400, "%s", msg);
}

static void ok_empty(struct call *c)
{
	api_respond_empty(c->resp, 204);
}

static void ok_json(struct call *c, json_t *value)
{
	char *s = value ? json_dumps(value, JSON_COMPACT) : NULL;
	json_decref(value);
	if (!s) {
		api_respond_fault(c->resp, 500, "out of memory");
		return;
	}
	api_respond_text(c->resp, 200, s);
}

static bool preboot(struct call *c)
{
	if (c->v->state == VMM_NOT_STARTED)
		return true;
	fault(c, PREBOOT_ONLY);
	return false;
}

static bool postboot(struct call *c)
{
	if (c->v->state == VMM_RUNNING && c->v->vm)
		return true;
	fault(c, c->v->state == VMM_NOT_STARTED ? POSTBOOT_ONLY : "The microVM has stopped.");
	return false;
}

/* A section setter applied to a copy, then kept (no side effects). */
typedef const char *(*setter_fn)(struct vm_config *, const json_t *, char *, size_t);
typedef const char *(*id_setter_fn)(struct vm_config *, const char *, const json_t *, char *, size_t);

static void put_section(struct call *c, setter_fn fn)
{
	if (!preboot(c))
		return;
	if (fn(&c->v->spec, c->body, c->err, sizeof(c->err))) {
		fault(c, c->err);
	} else {
		c->v->configured = true;
		ok_empty(c);
	}
}

static void put_id_section(struct call *c, id_setter_fn fn)
{
	if (!preboot(c))
		return;
	if (fn(&c->v->spec, c->id, c->body, c->err, sizeof(c->err))) {
		fault(c, c->err);
	} else {
		c->v->configured = true;
		ok_empty(c);
	}
}

static void put_outputs(struct call *c, setter_fn fn)
{
	if (!preboot(c))
		return;
	struct vm_config next;
	if (vm_config_copy(&next, &c->v->spec)) {
		fault(c, "out of memory");
		return;
	}
	if (fn(&next, c->body, c->err, sizeof(c->err))) {
		vm_config_free(&next);
		fault(c, c->err);
		return;
	}
	bool logger = fn == vm_config_put_logger;
	if (commit_outputs(c->v, &next, logger, !logger, c->err, sizeof(c->err))) {
		fault(c, c->err);
		return;
	}
	ok_empty(c);
}

static void patch_drive(struct call *c)
{
	if (!postboot(c))
		return;
	struct vm_config next;
	struct vm_drive_patch p;
	if (vm_config_copy(&next, &c->v->spec)) {
		fault(c, "out of memory");
		return;
	}
	if (vm_config_patch_drive(&next, c->id, c->body, &p, c->err, sizeof(c->err))) {
		vm_config_free(&next);
		fault(c, c->err);
		return;
	}
	char why[512] = "";
	if ((p.path_changed || p.limiter_changed) &&
	    vm_drive_update(c->v->vm, p.index, &next.drives[p.index], p.path_changed,
			    p.limiter_changed, why, sizeof(why))) {
		vm_config_free(&next);
		snprintf(c->err, sizeof(c->err), "drives: cannot update drive `%s`: %s", c->id, why);
		fault(c, c->err);
		return;
	}
	vm_config_free(&c->v->spec);
	c->v->spec = next;
	ok_empty(c);
}

static void patch_net(struct call *c)
{
	if (!postboot(c))
		return;
	struct vm_config next;
	struct vm_net_patch p;
	if (vm_config_copy(&next, &c->v->spec)) {
		fault(c, "out of memory");
		return;
	}
	if (vm_config_patch_net(&next, c->id, c->body, &p, c->err, sizeof(c->err))) {
		vm_config_free(&next);
		fault(c, c->err);
		return;
	}
	char why[512] = "";
	if ((p.rx_changed || p.tx_changed) &&
	    vm_net_update(c->v->vm, p.index, &next.nets[p.index], p.rx_changed, p.tx_changed,
			  why, sizeof(why))) {
		vm_config_free(&next);
		snprintf(c->err, sizeof(c->err), "network-interfaces: cannot update interface `%s`: %s",
			 c->id, why);
		fault(c, c->err);
		return;
	}
	vm_config_free(&c->v->spec);
	c->v->spec = next;
	ok_empty(c);
}

static void patch_balloon(struct call *c, bool stats)
{
	if (!postboot(c))
		return;
	struct vm_config next;
	if (vm_config_copy(&next, &c->v->spec)) {
		fault(c, "out of memory");
		return;
	}
	const char *e = stats ? vm_config_patch_balloon_stats(&next, c->body, c->err, sizeof(c->err))
			      : vm_config_patch_balloon(&next, c->body, c->err, sizeof(c->err));
	char why[512] = "";
	/* An unchanged interval is no change (Firecracker answers it with
	 * success, also when statistics are off: 0 stays 0). */
	uint32_t interval = next.balloon_stats_interval_s;
	bool same = stats && interval == c->v->spec.balloon_stats_interval_s;
	if (!e && !same && (stats ? vm_balloon_set_stats_interval(c->v->vm, interval, why, sizeof(why))
				  : vm_balloon_set_target(c->v->vm, next.balloon_target_mib, why, sizeof(why)))) {
		snprintf(c->err, sizeof(c->err), "balloon: cannot update the balloon: %s", why);
		e = c->err;
	}
	if (e) {
		vm_config_free(&next);
		fault(c, c->err);
		return;
	}
	vm_config_free(&c->v->spec);
	c->v->spec = next;
	ok_empty(c);
}

/* Firecracker's balloon configuration, plus (once started) the size the
 * guest reports holding. */
static void get_balloon(struct call *c)
{
	json_t *b = vm_config_balloon_json(&c->v->spec);
	if (!b) {
		fault(c, "balloon not configured");
		return;
	}
	struct vm_balloon_stats st;
	char why[256];
	if (c->v->state == VMM_RUNNING && c->v->vm &&
	    !vm_balloon_get_stats(c->v->vm, &st, why, sizeof(why)))
		json_object_set_new(b, "actual_mib", json_integer((json_int_t)(st.actual_pages >> 8)));
	ok_json(c, b);
}

static void get_balloon_stats(struct call *c)
{
	if (!postboot(c))
		return;
	const struct vm_config *cfg = &c->v->spec;
	if (!cfg->balloon) {
		fault(c, "balloon not configured");
		return;
	}
	if (!cfg->balloon_stats_interval_s) {
		fault(c, "balloon statistics are not enabled (stats_polling_interval_s was 0 at start)");
		return;
	}
	struct vm_balloon_stats st;
	memset(&st, 0, sizeof(st));
	char why[512] = "";
	if (vm_balloon_get_stats(c->v->vm, &st, why, sizeof(why))) {
		snprintf(c->err, sizeof(c->err), "balloon statistics are not available: %s", why);
		fault(c, c->err);
		return;
	}
	static const char *const names[VM_BALLOON_STATS] = {
		"swap_in", "swap_out", "major_faults", "minor_faults", "free_memory", "total_memory",
		"available_memory", "disk_caches", "hugetlb_allocations", "hugetlb_failures",
	};
	json_t *o = json_pack("{s:I,s:I,s:I,s:I}",
			      "target_pages", (json_int_t)st.target_pages,
			      "actual_pages", (json_int_t)st.actual_pages,
			      "target_mib", (json_int_t)(st.target_pages >> 8),
			      "actual_mib", (json_int_t)(st.actual_pages >> 8));
	for (unsigned i = 0; o && i < VM_BALLOON_STATS; i++)
		if (st.present & (1u << i))
			json_object_set_new(o, names[i], json_integer((json_int_t)st.stat[i]));
	ok_json(c, o);
}

static const struct api_field action_fields[] = {
	{ "action_type", API_T_STRING, true },
	{ NULL }
};

static void actions(struct call *c)
{
	if (api_json_check_object(c->body, action_fields, "actions", c->err, sizeof(c->err))) {
		fault(c, c->err);
		return;
	}
	const char *a = api_json_string(c->body, "action_type");
	struct vmm *v = c->v;
	if (!strcmp(a, "InstanceStart")) {
		if (!preboot(c))
			return;
		if (boot(v, c->err, sizeof(c->err))) {
			fault(c, c->err);
			return;
		}
		LOG(v, VMM_LOG_INFO, "InstanceStart: the VM is running (%u vCPUs, %" PRIu64 " MiB)",
		    v->spec.ncpus, v->spec.mem_bytes >> 20);
		ok_empty(c);
	} else if (!strcmp(a, "SendCtrlAltDel")) {
		if (!postboot(c))
			return;
		int r = vm_request_shutdown(v->vm);
		if (r) {
			snprintf(c->err, sizeof(c->err), "SendCtrlAltDel: cannot ask the guest to shut down: %s",
				 r == -ENOSYS ? "not implemented yet" :
				 r == -ENODEV ? "the guest has no virtio-input driver loaded" : strerror(-r));
			fault(c, c->err);
			return;
		}
		ok_empty(c);
	} else if (!strcmp(a, "FlushMetrics")) {
		if (!postboot(c))
			return;
		if (!write_metrics(v)) {
			fault(c, "FlushMetrics: the metrics line could not be written");
			return;
		}
		ok_empty(c);
	} else {
		char shown[80];
		api_json_printable(shown, sizeof(shown), a);
		snprintf(c->err, sizeof(c->err),
			 "actions.action_type: unknown action `%s` (InstanceStart, SendCtrlAltDel, FlushMetrics)", shown);
		fault(c, c->err);
	}
}

static const struct api_field vm_state_fields[] = {
	{ "state", API_T_STRING, true },
	{ NULL }
};

static void patch_vm(struct call *c)
{
	if (api_json_check_object(c->body, vm_state_fields, "vm", c->err, sizeof(c->err))) {
		fault(c, c->err);
		return;
	}
	const char *s = api_json_string(c->body, "state");
	bool pause = !strcmp(s, "Paused");
	if (!pause && strcmp(s, "Resumed")) {
		fault(c, "vm.state: must be \"Paused\" or \"Resumed\"");
		return;
	}
	if (!postboot(c))
		return;
	struct vmm *v = c->v;
	if (pause && !v->paused) {
		vm_pause_all(v->vm);
		v->paused = true;
		LOG(v, VMM_LOG_INFO, "the VM is paused");
	} else if (!pause && v->paused) {
		vm_resume_all(v->vm);
		v->paused = false;
		LOG(v, VMM_LOG_INFO, "the VM is resumed");
		resync_guest_clock(v, "resumed");
	}
	ok_empty(c);
}

/* PUT /snapshot/create: the VM must be paused (as Firecracker asks). */
static void snapshot_create(struct call *c)
{
	struct vmm_snapshot_create_req rq;
	if (vmm_snapshot_create_parse(c->body, &rq, c->err, sizeof(c->err))) {
		fault(c, c->err);
		return;
	}
	if (!postboot(c))
		return;
	struct vmm *v = c->v;
	if (!v->paused) {
		fault(c, "Create snapshot error: the microVM must be paused first "
			 "(PATCH /vm {\"state\": \"Paused\"}).");
		return;
	}
	char *conf = vmm_snapshot_conf(&v->booted);
	if (!conf) {
		fault(c, "out of memory");
		return;
	}
	struct vm_snapshot_stats st;
	char why[768];
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
	int r = vm_snapshot_create(v->vm, conf, rq.type, rq.state_path, rq.mem_path, &st,
				   why, sizeof(why));
	free(conf);
	if (r) {
		snprintf(c->err, sizeof(c->err), "Create snapshot error: %s", why);
		fault(c, c->err);
		return;
	}
	LOG(v, VMM_LOG_INFO, "snapshot created (%s): state %" PRIu64 " bytes, %" PRIu64
	    " memory pages written, %" PRIu64 " ms", rq.type == VM_SNAPSHOT_DIFF ? "Diff" : "Full",
	    st.state_bytes, st.mem_pages, (clock_ns(CLOCK_MONOTONIC) - t0) / 1000000);
	ok_empty(c);
}

/* PUT /snapshot/load: only on a VMM where nothing but the logger and the
 * metrics is configured (as Firecracker). The VM is built from the
 * snapshot's configuration with the request's overrides. */
static void snapshot_load(struct call *c)
{
	struct vmm_snapshot_load_req rq;
	if (vmm_snapshot_load_parse(c->body, &rq, c->err, sizeof(c->err))) {
		fault(c, c->err);
		return;
	}
	struct vmm *v = c->v;
	if (!preboot(c))
		return;
	if (v->configured) {
		fault(c, "Load snapshot error: only a fresh microVM can load a snapshot "
			 "(nothing but the logger and metrics may be configured before).");
		return;
	}
	char why[768];
	struct vm_snapshot_file *sf = vm_snapshot_open(rq.state_path, why, sizeof(why));
	if (!sf) {
		snprintf(c->err, sizeof(c->err), "Load snapshot error: %s", why);
		fault(c, c->err);
		return;
	}
	struct vm_config next, b;
	if (vm_config_copy(&next, &v->spec)) {
		vm_snapshot_close(sf);
		fault(c, "out of memory");
		return;
	}
	if (vmm_snapshot_spec(&next, vm_snapshot_config(sf), &rq, why, sizeof(why)) ||
	    vm_config_check(&next, why, sizeof(why))) {
		vm_snapshot_close(sf);
		vm_config_free(&next);
		snprintf(c->err, sizeof(c->err), "Load snapshot error: %s", why);
		fault(c, c->err);
		return;
	}
	if (vm_config_copy(&b, &next)) {
		vm_snapshot_close(sf);
		vm_config_free(&next);
		fault(c, "out of memory");
		return;
	}
	free(b.name);
	b.name = strdup(v->id);
	b.track_dirty_pages = rq.track_dirty;
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
	uint64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	struct vm_console con = guest_console(v);
	struct vm *vm = b.name ? vm_restore(&b, &con, sf, rq.mem_path, rq.track_dirty,
					       why, sizeof(why)) : NULL;
	vm_snapshot_close(sf);
	if (!vm || vm_restore_start(vm, !rq.resume)) {
		snprintf(c->err, sizeof(c->err), "Load snapshot error: %s",
			 vm ? "cannot start the harts" : b.name ? why : "out of memory");
		if (vm)
			vm_destroy(vm);
		vm_config_free(&next);
		vm_config_free(&b);
		fault(c, c->err);
		return;
	}
	next.track_dirty_pages = rq.track_dirty;
	vm_config_free(&v->spec);
	v->spec = next;
	vm_config_free(&v->booted);
	v->booted = b;
	v->vm = vm;
	v->paused = !rq.resume;
	v->state = VMM_RUNNING;
	v->started_ns = clock_ns(CLOCK_MONOTONIC);
	v->last_metrics_ns = v->started_ns;
	LOG(v, VMM_LOG_INFO, "snapshot loaded from %s in %" PRIu64 " us (%" PRIu64 " us of this "
	    "thread's CPU time); the VM is %s", rq.state_path, (v->started_ns - t0) / 1000,
	    (clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / 1000, rq.resume ? "running" : "paused");
	/* The guest's clock stood still since the snapshot (vmm_tick sets it,
	 * once the VM runs). */
	v->clock_resync_due = true;
	ok_empty(c);
}

static const struct api_field hint_start_fields[] = {
	{ "acknowledge_on_stop", API_T_BOOL },
	{ NULL }
};

/* PATCH /balloon/hinting/start and /stop, GET /balloon/hinting/status:
 * free page hinting (Firecracker's BalloonStartCmd, BalloonHintingStatus). */
static void balloon_hinting(struct call *c, bool start, bool status)
{
	if (c->body && !start && !status) {
		fault(c, "balloon/hinting/stop takes no body");
		return;
	}
	if (c->body && api_json_check_object(c->body, hint_start_fields, "balloon/hinting/start",
					      c->err, sizeof(c->err))) {
		fault(c, c->err);
		return;
	}
	if (!postboot(c))
		return;
	char why[512] = "";
	int rc;
	uint32_t host = 0, guest = 0;
	if (status)
		rc = vm_balloon_hint_status(c->v->vm, &host, &guest, why, sizeof(why));
	else
		rc = vm_balloon_hint(c->v->vm, start,
				     c->body && api_json_bool(c->body, "acknowledge_on_stop", false),
				     why, sizeof(why));
	if (rc) {
		snprintf(c->err, sizeof(c->err), "balloon hinting: %s", why);
		fault(c, c->err);
	} else if (status) {
		ok_json(c, json_pack("{s:I,s:I}", "host_cmd", (json_int_t)host, "guest_cmd", (json_int_t)guest));
	} else {
		ok_empty(c);
	}
}

/* PUT /serial, before start: the console's output to a file or pipe,
 * and/or rate limited (serial_out.h). */
static void put_serial(struct call *c)
{
	if (!preboot(c))
		return;
	struct vmm_serial *s;
	if (vmm_serial_open(c->body, &s, c->err, sizeof(c->err))) {
		fault(c, c->err);
		return;
	}
	vmm_serial_free(c->v->serial);
	c->v->serial = s;
	ok_empty(c);
}

static void instance_info(struct call *c)
{
	struct vmm *v = c->v;
	const char *state = v->state == VMM_NOT_STARTED ? "Not started" : v->paused ? "Paused" : "Running";
	ok_json(c, json_pack("{s:s,s:s,s:s,s:s}", "id", v->id, "state", state,
			     "vmm_version", v->version, "app_name", "skiff"));
}

enum route {
	R_NONE, R_INFO, R_VERSION, R_VM_CONFIG, R_VM, R_MACHINE, R_BOOT, R_DRIVE, R_NET, R_SHARE,
	R_VSOCK, R_BALLOON, R_BALLOON_STATS, R_LOGGER, R_METRICS, R_ACTIONS, R_SNAP_CREATE,
	R_SNAP_LOAD, R_AGENT, R_SERIAL, R_CPU_CONFIG, R_HOTPLUG_MEMORY, R_PMEM, R_HINT_START,
	R_HINT_STATUS, R_HINT_STOP,
};

/* Which route a (method, path) names; *id_seg is set for routes with an id. */
static enum route find_route(enum api_method m, char **seg, size_t nseg, bool *bad_id_count)
{
	const char *p0 = nseg > 0 ? seg[0] : "";
	const char *p1 = nseg > 1 ? seg[1] : NULL;
	*bad_id_count = false;
	if (m == API_OTHER)
		return R_NONE;
	if (!strcmp(p0, "agent"))
		return vmm_agent_route(m, seg, nseg) ? R_AGENT : R_NONE;
	if (nseg <= 1) {
		if (!*p0)
			return m == API_GET ? R_INFO : R_NONE;
		if (!strcmp(p0, "version"))
			return m == API_GET ? R_VERSION : R_NONE;
		if (!strcmp(p0, "machine-config"))
			return R_MACHINE;
		if (!strcmp(p0, "boot-source"))
			return m == API_PUT ? R_BOOT : R_NONE;
		if (!strcmp(p0, "vsock"))
			return m == API_PUT ? R_VSOCK : R_NONE;
		if (!strcmp(p0, "balloon"))
			return R_BALLOON;
		if (!strcmp(p0, "logger"))
			return m == API_PUT ? R_LOGGER : R_NONE;
		if (!strcmp(p0, "metrics"))
			return m == API_PUT ? R_METRICS : R_NONE;
		if (!strcmp(p0, "actions"))
			return m == API_PUT ? R_ACTIONS : R_NONE;
		if (!strcmp(p0, "vm"))
			return m == API_PATCH ? R_VM : R_NONE;
		if (!strcmp(p0, "serial"))
			return m == API_PUT ? R_SERIAL : R_NONE;
		if (!strcmp(p0, "cpu-config"))
			return m == API_PUT ? R_CPU_CONFIG : R_NONE;
	}
	if (nseg == 2 && !strcmp(p0, "vm") && !strcmp(p1, "config"))
		return m == API_GET ? R_VM_CONFIG : R_NONE;
	if (nseg == 3 && !strcmp(p0, "balloon") && !strcmp(p1, "hinting")) {
		if (!strcmp(seg[2], "start"))
			return m == API_PATCH ? R_HINT_START : R_NONE;
		if (!strcmp(seg[2], "stop"))
			return m == API_PATCH ? R_HINT_STOP : R_NONE;
		if (!strcmp(seg[2], "status"))
			return m == API_GET ? R_HINT_STATUS : R_NONE;
	}
	if (nseg == 2 && !strcmp(p0, "hotplug") && !strcmp(p1, "memory"))
		return m == API_PUT || m == API_PATCH || m == API_GET ? R_HOTPLUG_MEMORY : R_NONE;
	if (nseg == 2 && !strcmp(p0, "pmem"))
		return m == API_PUT || m == API_PATCH ? R_PMEM : R_NONE;
	if (nseg == 2 && !strcmp(p0, "snapshot") && !strcmp(p1, "create"))
		return m == API_PUT ? R_SNAP_CREATE : R_NONE;
	if (nseg == 2 && !strcmp(p0, "snapshot") && !strcmp(p1, "load"))
		return m == API_PUT ? R_SNAP_LOAD : R_NONE;
	if (nseg == 2 && !strcmp(p0, "balloon") && !strcmp(p1, "statistics"))
		return m == API_GET || m == API_PATCH ? R_BALLOON_STATS : R_NONE;
	enum route with_id = R_NONE;
	if (!strcmp(p0, "drives") && (m == API_PUT || m == API_PATCH))
		with_id = R_DRIVE;
	else if (!strcmp(p0, "network-interfaces") && (m == API_PUT || m == API_PATCH))
		with_id = R_NET;
	else if (!strcmp(p0, "shares") && m == API_PUT)
		with_id = R_SHARE;
	if (with_id != R_NONE && nseg <= 2) {
		*bad_id_count = nseg < 2;
		return with_id;
	}
	return R_NONE;
}

#define MAX_SEGS 4

static void route(struct vmm *v, const struct api_request *req, struct api_response *resp)
{
	struct call c = { .v = v, .resp = resp };
	char path[512], shown[160];
	api_json_printable(shown, sizeof(shown), req->path);
	if (strlen(req->path) >= sizeof(path)) {
		api_respond_fault(resp, 400, "Invalid request method and/or path: %s %s.",
				  req->method == API_OTHER ? "?" : req->method_name, shown);
		return;
	}
	/* Like Firecracker: leading slashes dropped, one trailing slash ignored. */
	const char *p = req->path;
	while (*p == '/')
		p++;
	snprintf(path, sizeof(path), "%s", p);
	size_t plen = strlen(path);
	if (plen && path[plen - 1] == '/')
		path[--plen] = 0;
	char *seg[MAX_SEGS];
	size_t nseg = 0;
	char *save = path;
	if (plen) {
		for (;;) {
			char *slash = strchr(save, '/');
			if (nseg == MAX_SEGS) {
				nseg++;
				break;
			}
			seg[nseg++] = save;
			if (!slash)
				break;
			*slash = 0;
			save = slash + 1;
		}
	}
	bool no_id = false;
	enum route r = nseg > MAX_SEGS ? R_NONE : find_route(req->method, seg, nseg, &no_id);
	if (r == R_NONE) {
		char m[16];
		api_json_printable(m, sizeof(m), req->method_name);
		api_respond_fault(resp, 400, "Invalid request method and/or path: %s %s.", m, shown);
		return;
	}
	if (req->method == API_GET && req->body_len) {
		fault(&c, "GET request cannot have a body.");
		return;
	}
	/* The hinting calls take no body, or (start) an optional one. */
	bool body_optional = r == R_HINT_START || r == R_HINT_STOP;
	if (req->method != API_GET && !req->body_len && !body_optional) {
		fault(&c, req->method == API_PUT ? "Empty PUT request." : "Empty PATCH request.");
		return;
	}
	if (r == R_DRIVE || r == R_NET || r == R_SHARE) {
		c.id = no_id ? "" : seg[1];
		if (!*c.id) {
			fault(&c, "The ID cannot be empty.");
			return;
		}
		if (r == R_SHARE && !vmm_tag_valid(c.id)) {
			fault(&c, "Share tags are 1 to 64 letters, digits and _ . + @ : - "
				  "(not starting with . or -).");
			return;
		}
		if (r != R_SHARE && !vmm_id_valid(c.id)) {
			fault(&c, "API Resource IDs can only contain alphanumeric characters and underscores "
				  "(at most 64 of them).");
			return;
		}
	}
	json_t *body = NULL;
	if (req->body_len) {
		body = api_json_parse_body(req->body, req->body_len, c.err, sizeof(c.err));
		if (!body) {
			fault(&c, c.err);
			return;
		}
	}
	c.body = body;
	LOG(v, VMM_LOG_INFO, "The API server received a %s request on \"%s\".",
	    req->method_name, shown);

	switch (r) {
	case R_INFO:
		instance_info(&c);
		break;
	case R_VERSION:   /* Firecracker's FirecrackerVersion */
		ok_json(&c, json_pack("{s:s}", "firecracker_version", v->version));
		break;
	case R_VM_CONFIG:
		ok_json(&c, vm_config_to_json(&v->spec));
		break;
	case R_VM:
		patch_vm(&c);
		break;
	case R_MACHINE:
		if (req->method == API_GET)
			ok_json(&c, vm_config_machine_json(&v->spec));
		else
			put_section(&c, req->method == API_PUT ? vm_config_put_machine_config
							       : vm_config_patch_machine_config);
		break;
	case R_BOOT:
		put_section(&c, vm_config_put_boot_source);
		break;
	case R_DRIVE:
		if (req->method == API_PUT)
			put_id_section(&c, vm_config_put_drive);
		else
			patch_drive(&c);
		break;
	case R_NET:
		if (req->method == API_PUT)
			put_id_section(&c, vm_config_put_net);
		else
			patch_net(&c);
		break;
	case R_SHARE:
		put_id_section(&c, vm_config_put_share);
		break;
	case R_VSOCK:
		put_section(&c, vm_config_put_vsock);
		break;
	case R_BALLOON:
		if (req->method == API_GET)
			get_balloon(&c);
		else if (req->method == API_PUT)
			put_section(&c, vm_config_put_balloon);
		else
			patch_balloon(&c, false);
		break;
	case R_BALLOON_STATS:
		if (req->method == API_GET)
			get_balloon_stats(&c);
		else
			patch_balloon(&c, true);
		break;
	case R_LOGGER:
		put_outputs(&c, vm_config_put_logger);
		break;
	case R_METRICS:
		put_outputs(&c, vm_config_put_metrics);
		break;
	case R_ACTIONS:
		actions(&c);
		break;
	case R_SNAP_CREATE:
		snapshot_create(&c);
		break;
	case R_SERIAL:
		put_serial(&c);
		break;
	case R_HINT_START:
	case R_HINT_STATUS:
	case R_HINT_STOP:
		balloon_hinting(&c, r == R_HINT_START, r == R_HINT_STATUS);
		break;
	/* Operations of Firecracker's API without a meaning or a device
	 * here: a clear refusal, whatever the method and body. */
	case R_CPU_CONFIG:
		fault(&c, "cpu-config: CPU templates change x86 CPUID and MSRs or aarch64 registers; "
		      "a RISC-V hart here has no such settings (its ISA is fixed: see the device "
		      "tree's riscv,isa)");
		break;
	case R_HOTPLUG_MEMORY:
		fault(&c, "hotplug/memory: memory hot-plug (virtio-mem) is not supported by skiff; "
		      "size the VM with machine-config.mem_size_mib and give memory back with the "
		      "balloon");
		break;
	case R_PMEM:
		fault(&c, "pmem: virtio-pmem devices are not supported by skiff; use a drive "
		      "(virtio-blk) or a share (virtio-9p)");
		break;
	case R_SNAP_LOAD:
		snapshot_load(&c);
		break;
	case R_AGENT:
		vmm_agent_request(v->state == VMM_RUNNING ? v->vm : NULL, v->paused, req->method, seg, nseg,
				  body, resp);
		break;
	case R_NONE:
		break;
	}
	json_decref(body);
}

const char *vmm_load_snapshot(struct vmm *v, const json_t *body, char *err, size_t errlen)
{
	struct api_response resp = { 0 };
	struct call c = { .v = v, .resp = &resp, .body = body };
	pthread_mutex_lock(&v->lock);
	snapshot_load(&c);
	pthread_mutex_unlock(&v->lock);
	const char *e = NULL;
	if (resp.status >= 400) {
		json_t *parsed = resp.body ? json_loads(resp.body, 0, NULL) : NULL;
		const json_t *fm = parsed ? json_object_get(parsed, "fault_message") : NULL;
		snprintf(err, errlen, "%s", json_is_string(fm) ? json_string_value(fm) : "failed");
		json_decref(parsed);
		e = err;
	}
	free(resp.body);
	return e;
}

void vmm_handle(void *ctx, const struct api_request *req, struct api_response *resp)
{
	struct vmm *v = ctx;
	pthread_mutex_lock(&v->lock);
	v->requests++;
	route(v, req, resp);
	if (resp->status >= 400) {
		v->failed_requests++;
		const json_t *fm = NULL;
		json_t *parsed = resp->body ? json_loads(resp->body, 0, NULL) : NULL;
		if (parsed)
			fm = json_object_get(parsed, "fault_message");
		LOG(v, VMM_LOG_ERROR, "Received Error. Status code: %u. Message: %s", resp->status,
		    fm && json_is_string(fm) ? json_string_value(fm) : "(none)");
		json_decref(parsed);
	}
	pthread_mutex_unlock(&v->lock);
}

const char *vmm_listen(struct vmm *v, const char *path, char *err, size_t errlen)
{
	if (v->server) {
		snprintf(err, errlen, "the API is already being served");
		return err;
	}
	struct api_server_config sc = {
		.socket_path = path,
		.max_body = API_DEFAULT_MAX_BODY,
		.large_prefix = "/agent/",
		.large_max_body = VMM_AGENT_MAX_BODY,
		.handler = vmm_handle,
		.ctx = v,
	};
	struct api_server *s = api_server_start(&sc, err, errlen);
	if (!s)
		return err;
	pthread_mutex_lock(&v->lock);
	v->server = s;
	LOG(v, VMM_LOG_INFO, "API server started on %s", path);
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

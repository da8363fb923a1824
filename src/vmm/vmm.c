/*
 * The VMM: one VM's configuration, its start (InstanceStart), its end and
 * reboots, and the outputs a Firecracker VMM keeps (the log and the metrics
 * lines). The per-VM API (api.c and its route handlers) drives it; `skiff
 * run` drives it directly. See api.h.
 */
#include "vmm/vmm_core.h"
#include "vmm/vm_metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/json_check.h"
#include "base/clock.h"
#include "vmm/api_agent.h"
#include "vmm/mmds.h"
#include "vmm/sandbox.h"
#include "vmm/serial_out.h"
#include "vmm/snapshot.h"

#define DEFAULT_ID "anonymous-instance"
#define METRICS_PERIOD_NS (60ull * 1000000000ull)

void vmm_log(struct vmm *v, enum vmm_log_level level, const char *file, int line, const char *fmt, ...)
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
	if (!v->id || !v->version) {
		free(v->id);
		free(v->version);
		free(v);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->agent_idle, NULL);
	v->main_thread = pthread_self();
	v->console = p->console;
	v->sandbox = p->sandbox;
	vm_config_init(&v->spec);
	vm_config_init(&v->booted);
	v->log.fd = -1;
	v->mmds = mmds_new();
	v->metrics_fd = -1;
	v->test_slept_fd = -1;
#ifdef SKIFF_TEST_HOOKS
	const char *slept = getenv("SKIFF_TEST_HOST_SLEPT");
	if (slept)
		v->test_slept_fd = open(slept, O_RDONLY | O_CLOEXEC);
#endif
	return v;
}

void vmm_free(struct vmm *v)
{
	if (!v)
		return;
	/* An agent call in flight ends now rather than at its time-out. */
	pthread_mutex_lock(&v->lock);
	vmm_agent_quiesce(v, v->vm);
	pthread_mutex_unlock(&v->lock);
	api_server_stop(v->server); /* no request runs after this */
	if (v->vm)
		vm_destroy(v->vm);
	vm_config_free(&v->spec);
	vm_config_free(&v->booted);
	vmm_serial_free(v->serial);
	mmds_free(v->mmds);
	vmm_logger_close(&v->log);
	if (v->metrics_fd >= 0)
		close(v->metrics_fd);
	if (v->test_slept_fd >= 0)
		close(v->test_slept_fd);
	pthread_cond_destroy(&v->agent_idle);
	pthread_mutex_destroy(&v->lock);
	free(v->id);
	free(v->version);
	free(v);
}

/* ------------------------------------------------------------ metrics */

static const char *const exit_names[EXIT_REASONS] = {
	[EXIT_NONE] = "none", [EXIT_SBI] = "sbi", [EXIT_WFI] = "wfi", [EXIT_MMIO] = "mmio",
	[EXIT_KICK] = "kick", [EXIT_USER_ECALL] = "user_ecall", [EXIT_FATAL] = "fatal",
	[EXIT_PAUSE] = "pause",
};

/* One JSON line of counters (lock held). */
bool vmm_write_metrics(struct vmm *v)
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
void vmm_resync_guest_clock(struct vmm *v, const char *why)
{
	if (v->vm && !v->paused && vmm_agent_present(v->vm)) {
		vmm_agent_sync_time(v->vm, why);
		LOG(v, VMM_LOG_INFO, "the guest clock is being set through its agent (%s)", why);
	}
}

/* Test builds only: a host suspend without suspending. SKIFF_TEST_HOST_SLEPT
 * names a file holding a number of seconds, opened when the VMM is made
 * (before the sandbox confines it); the boot clock reads that much later
 * while the file says so (tests/test_sanitizer_boot.py rewrites it). */
static uint64_t test_slept_ns(struct vmm *v)
{
	char buf[24];
	ssize_t n = v->test_slept_fd >= 0 ? pread(v->test_slept_fd, buf, sizeof(buf) - 1, 0) : -1;
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return strtoull(buf, NULL, 10) * CLOCK_NS_PER_S;
}

void vmm_tick(struct vmm *v)
{
	pthread_mutex_lock(&v->lock);
	if (v->metrics_fd >= 0 && v->state == VMM_RUNNING &&
	    clock_ns(CLOCK_MONOTONIC) - v->last_metrics_ns >= METRICS_PERIOD_NS)
		vmm_write_metrics(v);
	/* CLOCK_BOOTTIME counts a host suspend, CLOCK_MONOTONIC does not. */
	uint64_t mono = clock_monotonic_ns();
	uint64_t slept = host_sleep_check(&v->host_sleep, clock_ns(CLOCK_BOOTTIME) + test_slept_ns(v), mono);
	if (slept && v->state == VMM_RUNNING) {
		LOG(v, VMM_LOG_INFO, "the host slept %" PRIu64 " ms", slept / 1000000);
		vmm_resync_guest_clock(v, "host suspend");
	}
	/* After a restore, once the VM runs (a restore left paused is set
	 * at its resume). */
	if (v->clock_resync_due && v->state == VMM_RUNNING && !v->paused) {
		v->clock_resync_due = false;
		vmm_resync_guest_clock(v, "snapshot restore");
	}
	pthread_mutex_unlock(&v->lock);
}

/* ------------------------------------------------------------ configuration */

const char *vmm_commit_outputs(struct vmm *v, struct vm_config *next, bool logger_given,
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

const char *vmm_set_config(struct vmm *v, const struct vm_config *c, bool configured,
			   char *err, size_t errlen)
{
	const char *e = NULL;
	pthread_mutex_lock(&v->lock);
	struct vm_config next;
	if (v->state != VMM_NOT_STARTED) {
		snprintf(err, errlen, PREBOOT_ONLY);
		e = err;
	} else if (vm_config_copy(&next, c)) {
		snprintf(err, errlen, "out of memory");
		e = err;
	} else if (vm_config_check(&next, err, errlen)) {
		vm_config_free(&next);
		e = err;
	} else {
		e = vmm_commit_outputs(v, &next, next.logger.set, next.metrics.set, err, errlen);
		if (!e)
			v->configured |= configured;
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

/* The PUT /serial sink passes on to `console` when it has no file. */
struct vm_console vmm_guest_console(struct vmm *v)
{
	if (!v->serial)
		return v->console;
	v->serial->next = v->console;
	return (struct vm_console){ .out = vmm_serial_write, .ctx = v->serial };
}

int vmm_attach_mmds(struct vmm *v, struct vm *vm, const struct vm_config *b, char *err,
		    size_t errlen)
{
	if (!b->mmds)
		return 0;
	if (!v->mmds) {
		snprintf(err, errlen, "out of memory for the metadata service");
		return -1;
	}
	mmds_configure(v->mmds, b->mmds_version, b->mmds_imds_compat);
	return vm_devices_attach_mmds(vm, b, v->mmds, err, errlen);
}

const char *vmm_boot(struct vmm *v, char *err, size_t errlen)
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
		fail |= !(b.append = strdup(b.virtio_console ? VMM_DEFAULT_BOOT_ARGS_HVC
							   : VMM_DEFAULT_BOOT_ARGS));
	if (fail) {
		vm_config_free(&b);
		snprintf(err, errlen, "out of memory");
		return err;
	}
	char why[512];
	if (sandbox_spent(v->sandbox)) {
		vm_config_free(&b);
		snprintf(err, errlen, "Start microvm error: %s", SANDBOX_SPENT);
		return err;
	}
	struct vm_console con = vmm_guest_console(v);
	struct vm *vm = vm_create(&b, &con, sandbox_vm_threads(v->sandbox, &b), why, sizeof(why));
	if (!vm) {
		vm_config_free(&b);
		snprintf(err, errlen, "Start microvm error: %s", why);
		return err;
	}
	char why2[256];
	if ((b.track_dirty_pages && vm_snapshot_track_dirty(vm, true, why2, sizeof(why2))) ||
	    vmm_attach_mmds(v, vm, &b, why2, sizeof(why2)) ||
	    sandbox_vm_built(v->sandbox, vm, &b, why2, sizeof(why2))) {
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
	/* The thread that built the VM (main, or the API thread) is
	 * confined last: it needed the setup calls. */
	if (sandbox_confine_self(v->sandbox, why2, sizeof(why2))) {
		vm_destroy(vm);
		vm_config_free(&b);
		snprintf(err, errlen, "Start microvm error: %s", why2);
		return err;
	}
	vm_config_free(&v->booted);
	v->booted = b; /* changes only with the running VM (PATCH /drives, /network-interfaces) */
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
		e = vmm_boot(v, err, errlen);
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
	/* Out of v->vm first: requests that run while the agent's calls end
	 * see "The microVM has stopped." rather than a VM that has ended. */
	struct vm *vm = v->vm;
	v->vm = NULL;
	vmm_agent_quiesce(v, vm);
	LOG(v, VMM_LOG_INFO, "the guest %s", end_name(why));
	if (vm)
		vm_destroy(vm);
	int r = 0;
	if (why == VM_REBOOT) {
		v->state = VMM_NOT_STARTED;
		if (vmm_boot(v, err, errlen)) {
			LOG(v, VMM_LOG_ERROR, "reboot failed: %s", err);
			r = -1;
		} else {
			r = 1;
		}
	}
	if (r != 1) {
		v->state = VMM_ENDED;
		v->paused = false;
		vmm_write_metrics(v);
	}
	pthread_mutex_unlock(&v->lock);
	return r;
}

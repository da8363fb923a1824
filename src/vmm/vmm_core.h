/*
 * The VMM object (struct vmm of api.h) as its own files see it: its
 * lifecycle (vmm.c) and the API's route handlers (api_*.c), which run under
 * its lock (see struct vmm for what it protects). Nothing outside src/vmm includes this.
 */
#ifndef SKIFF_VMM_VMM_CORE_H
#define SKIFF_VMM_VMM_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/host_sleep.h"
#include "vmm/api.h"
#include "vmm/api_log.h"

#define PREBOOT_ONLY "The requested operation is not supported after starting the microVM."
#define POSTBOOT_ONLY "The requested operation is not supported before starting the microVM."
/* A start or load failed after the sandbox confined threads that outlive
 * the VM (sandbox_spent): another build in this process would be killed
 * by its own filters. */
#define SANDBOX_SPENT "an earlier start or snapshot load of this VMM failed after its threads " \
	"were confined (--seccomp): this process cannot build another VM; start a new skiff"

enum vmm_state { VMM_NOT_STARTED, VMM_RUNNING, VMM_ENDED };

struct vmm_serial;
struct mmds;

/*
 * What `lock` protects: every member below (the configuration, the state,
 * the VM pointer, the outputs and counters), and the VM's lifetime: the
 * VM is built, replaced (reboot) and destroyed only with it held, so a
 * request that holds it may use v->vm and its devices. Requests run on
 * the API's polling thread, guest agent calls each on a thread of its own
 * (api.c: agent_call_waits), so several at once;
 * each handler runs with the lock held, except where a guest agent call waits
 * on the guest (api_agent.c): it counts itself in agent_calls and lets
 * the lock go, and whoever destroys the VM first closes the agent
 * channel (vmm_agent_quiesce) and waits for agent_calls to reach 0.
 */
struct vmm {
	pthread_mutex_t lock;
	unsigned agent_calls;       /* agent calls waiting on the guest, lock released */
	pthread_cond_t agent_idle;  /* agent_calls fell to 0 */
	uint64_t agent_closes;      /* VMs whose agent channel was closed (quiesced) */
	pthread_t main_thread;
	char *id, *version;
	struct vm_console console;
	struct sandbox *sandbox;    /* confines the process once a VM is built; may be NULL */

	struct vm_config spec;      /* the configuration as the API sees it */
	struct vm_config booted;    /* what the running VM is made of (PATCHes included) */
	enum vmm_state state;
	bool paused;
	bool configured;           /* a section other than logger/metrics was set */
	bool clock_resync_due;     /* restored: set the guest clock through the agent */
	struct vmm_serial *serial; /* PUT /serial, or NULL: output to `console` */
	struct mmds *mmds;         /* the metadata service's data store (NULL: out of memory) */
	struct vm *vm;
	uint64_t started_ns;

	struct api_server *server;
	struct vmm_logger log;
	int metrics_fd;
	uint64_t last_metrics_ns;
	uint64_t requests, failed_requests, metrics_dropped;
	struct host_sleep_watch host_sleep; /* notices a host suspend between ticks */
	int test_slept_fd;         /* test builds: SKIFF_TEST_HOST_SLEPT's file, or -1 */
};

/* The VMM's log (Firecracker's logger): a line when `level` is on. */
void vmm_log(struct vmm *v, enum vmm_log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
#define LOG(v, level, ...) vmm_log((v), (level), __FILE__, __LINE__, __VA_ARGS__)

/* The rest run with the lock held. */

/* One metrics line now (FlushMetrics, the periodic one, the end). */
bool vmm_write_metrics(struct vmm *v);
/* Keep `next` (consumed) as the configuration, first opening the logger and
 * metrics outputs of the sections that were given. Nothing changes if an
 * output cannot be opened. */
const char *vmm_commit_outputs(struct vmm *v, struct vm_config *next, bool logger_given,
			       bool metrics_given, char *err, size_t errlen);
/* Build and start a VM from the current configuration (InstanceStart). */
const char *vmm_boot(struct vmm *v, char *err, size_t errlen);
/* The metadata service on the NICs `b` (the configuration vm was built
 * from) names, before the guest runs. 0, or -1 with err. */
int vmm_attach_mmds(struct vmm *v, struct vm *vm, const struct vm_config *b, char *err,
		    size_t errlen);
/* Where the guest's console output goes (the PUT /serial sink, if any). */
struct vm_console vmm_guest_console(struct vmm *v);
/* Before `vm` (the VMM's VM, or the one just taken out of v->vm) is
 * destroyed (lock held): close its agent channel, so that calls waiting on
 * the guest end with an error, and wait (the lock released meanwhile: other
 * requests run, so a VM that has ended is taken out of v->vm first) until
 * none is left (api_agent.c). */
void vmm_agent_quiesce(struct vmm *v, struct vm *vm);
/* Have the guest's clock set from the host's through its agent, in the
 * background (after a resume, a restore, a host suspend). */
void vmm_resync_guest_clock(struct vmm *v, const char *why);

#endif

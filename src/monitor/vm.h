/*
 * One virtual machine as the monitor sees it: its RAM, its harts (one host
 * thread each), the MMIO map and the board devices. The dispatcher runs the
 * harts, the interpreter emulates SBI and device accesses, the allocator
 * owns RAM and the starting and stopping of vCPU threads.
 */
#ifndef SKIFF_MONITOR_VM_H
#define SKIFF_MONITOR_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/gram.h"
#include "base/thread_start.h"
#include "engine/engine.h"
#include "machine/aclint.h"
#include "machine/board.h"
#include "machine/bus.h"
#include "machine/plic.h"
#include "machine/rtc.h"
#include "machine/syscon.h"
#include "machine/vmgenid.h"
#include "machine/uart.h"

/* SBI HSM hart states (SBI spec, chapter "Hart State Management"). */
enum hsm_state {
	HSM_STARTED = 0,
	HSM_STOPPED = 1,
	HSM_START_PENDING = 2,
	HSM_STOP_PENDING = 3,
	HSM_SUSPENDED = 4,
};

struct vm;
struct vm_devices;
struct vm_snap;

struct vcpu {
	struct vm *vm;
	unsigned id;
	struct hart *hart;
	pthread_t thread;
	bool thread_live;          /* joinable */
	_Atomic int state;         /* enum hsm_state */
	uint64_t start_addr, start_opaque;
	/* WFI sleep and wakeup. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool wake_pending;
	/* Exits by reason (the dispatcher's counters). */
	_Atomic uint64_t exits[EXIT_REASONS];
	_Atomic uint64_t sbi_calls, wfi_sleeps;
	_Atomic uint64_t instructions;   /* retired, as of the latest exit */
	uint64_t cpu_mark;         /* thread CPU time last accounted (quota) */
	/* The thread was started by the host (boot, restore), not by another
	 * hart (SBI HSM): it must confine itself (vm->thread_hook) before its
	 * first guest instruction; a hart's thread inherits its starter's. */
	bool host_started;
};

/* Why the VM stopped. */
enum vm_end {
	VM_RUNNING = 0,
	VM_POWEROFF,
	VM_REBOOT,
	VM_FAILED,     /* guest reported failure (see fail_why) */
	VM_CRASHED,    /* a hart could not go on (see vm->crash) */
	VM_STOPPED,    /* stopped by the host */
};

/* Where guest console output goes. */
struct vm_console {
	void (*out)(void *ctx, const uint8_t *buf, size_t n);
	void *ctx;
};

#define VM_CONSOLE_TAIL 4096

struct vm {
	struct gram ram;
	struct mmio_bus bus;
	unsigned nharts;
	double cpu_quota;          /* fraction of one host core; 0: none */
	struct vcpu vcpu[BOARD_MAX_HARTS];
	uint64_t time_base_ns;

	struct uart uart;
	struct plic plic;
	struct aclint aclint;
	struct rtc rtc;
	struct syscon syscon;
	struct vmgenid vmgenid;   /* changed on restore: the guest reseeds */
	/* The console hook the VMM hands down: the monitor's own console
	 * output (the SBI console calls) goes here, as the UART's does. */
	struct vm_console console;
	struct vm_devices *devices;    /* virtio devices (src/vmm/devices.h) */
	/* Every thread the host starts for this VM (its devices' threads
	 * through thread_start and ram.threads, which points here; a vCPU at
	 * boot or restore, the CPU quota's controller) calls start once it
	 * has named itself, before it does any work: the VMM's sandbox
	 * confines it (src/vmm/sandbox.c). Non-zero: the thread must not run.
	 * NULL members: nothing to do. */
	struct thread_hook thread_hook;
	struct vm_snap *snap;          /* snapshot memory chain (src/vmm/snapshot.c) */

	/* The VMM's (src/vmm/vm.c): where the console output finally goes,
	 * and its last bytes, for the report when the guest dies. */
	struct vm_console console_sink;
	pthread_mutex_t tail_lock;
	uint8_t tail[VM_CONSOLE_TAIL];
	size_t tail_pos, tail_len;

	/* Lifecycle: `end` is set once; waiters sleep on `state_cond`. */
	pthread_mutex_t state_lock;
	pthread_cond_t state_cond;
	_Atomic int end;           /* enum vm_end */
	_Atomic bool paused;
	unsigned paused_harts;     /* harts parked by a pause */
	/* How a VM_FAILED guest reported it, for the user. */
	char fail_why[96];
	/* Console output is translated LF -> CR LF on the SBI console paths
	 * (Linux's SBI earlycon sends bare LF, a raw terminal needs CR). */
	bool sbi_console_cr;
	/* CPU quota (allocator_cpu.c). */
	struct {
		bool live;
		pthread_t thread;
		_Atomic bool stop;
		uint64_t budget_ns;        /* per period, all harts together */
		_Atomic uint64_t used_ns;  /* in the current period */
		_Atomic uint64_t throttled;
	} quota;
	struct {
		unsigned hart;  /* nharts: no one hart's */
		const char *what;
		/* A hart's trap it could not take (dispatcher.c): then pc,
		 * cause and tval are that trap's. Without one (RAM lost
		 * under the VM, a thread that could not confine itself)
		 * there is no instruction to name. */
		bool at_pc;
		uint64_t pc, cause, tval;
		char why[160];  /* `what` when it is made up at the time */
	} crash;
};

/* dispatcher.c */
void *vcpu_thread(void *arg);
void vcpu_wake(struct vcpu *v);
/* End the VM (first reason wins) and make every hart leave. */
void vm_end(struct vm *vm, enum vm_end why);
void vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);

/* allocator.c */
int allocator_ram_init(struct vm *vm, uint64_t bytes);
/* RAM mapped privately from a snapshot's memory file (see gram_init_file). */
int allocator_ram_init_file(struct vm *vm, uint64_t bytes, int fd);
/* Run the thread of hart `id`, whose state a snapshot restored (it is
 * HSM_STARTED and keeps its registers). */
int allocator_hart_restored(struct vm *vm, unsigned id);
/* Bring hart `id` up at `addr` (SBI HSM hart_start; hart 0 at boot). */
int allocator_hart_start(struct vm *vm, unsigned id, uint64_t addr, uint64_t opaque);
void allocator_harts_join(struct vm *vm);
/* allocator_cpu.c: the CPU quota (fraction of one host core; <= 0: none). */
int allocator_cpu_quota_start(struct vm *vm, double quota);
void allocator_cpu_quota_stop(struct vm *vm);
void allocator_cpu_thread_start(struct vcpu *v);
/* Account the calling vCPU thread's CPU time; parks it while over budget. */
void allocator_cpu_account(struct vcpu *v);

/* interpreter_sbi.c: handle the ECALL the hart stopped at. */
void sbi_call(struct vcpu *v);
/* interpreter_mmio.c */
void mmio_exit(struct vcpu *v, const struct hart_exit *ex);

#endif

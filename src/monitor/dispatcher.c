/*
 * The dispatcher: the vCPU run loop on one host thread per hart. It enters
 * the engine, counts each exit by reason, and routes it: SBI calls and MMIO
 * to the interpreter, WFI to a host sleep until the hart's next timer
 * deadline or an interrupt. It also parks harts for pause and lets them go
 * when the VM ends.
 */
#include "monitor/vm.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>

#include "base/clock.h"

void vcpu_wake(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	v->wake_pending = true;
	pthread_cond_signal(&v->wake);
	pthread_mutex_unlock(&v->lock);
}

void vm_end(struct vm *vm, enum vm_end why)
{
	int expected = VM_RUNNING;
	atomic_compare_exchange_strong(&vm->end, &expected, (int)why);
	for (unsigned i = 0; i < vm->nharts; i++) {
		hart_kick(vm->vcpu[i].hart);
		vcpu_wake(&vm->vcpu[i]);
	}
	pthread_mutex_lock(&vm->state_lock);
	pthread_cond_broadcast(&vm->state_cond);
	pthread_mutex_unlock(&vm->state_lock);
}

void vm_pause(struct vm *vm)
{
	atomic_store(&vm->paused, true);
	for (unsigned i = 0; i < vm->nharts; i++) {
		hart_kick(vm->vcpu[i].hart);
		vcpu_wake(&vm->vcpu[i]);
	}
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->state_lock);
	atomic_store(&vm->paused, false);
	pthread_cond_broadcast(&vm->state_cond);
	pthread_mutex_unlock(&vm->state_lock);
}

static void park(struct vcpu *v)
{
	struct vm *vm = v->vm;
	pthread_mutex_lock(&vm->state_lock);
	vm->paused_harts++;
	pthread_cond_broadcast(&vm->state_cond);
	while (atomic_load(&vm->paused) && !atomic_load(&vm->end))
		pthread_cond_wait(&vm->state_cond, &vm->state_lock);
	vm->paused_harts--;
	pthread_mutex_unlock(&vm->state_lock);
}

/* Sleep until an enabled interrupt is pending, the timer deadline passes,
 * or the VM needs the thread (pause, end, HSM). */
static void wfi_sleep(struct vcpu *v)
{
	struct vm *vm = v->vm;
	struct hart *h = v->hart;
	pthread_mutex_lock(&v->lock);
	while (!v->wake_pending && !atomic_load(&vm->end) && !atomic_load(&vm->paused) &&
	       !hart_wakeup_pending(h)) {
		uint64_t cmp = hart_get_timecmp(h);
		uint64_t hz = BOARD_TIMEBASE_HZ;
		if (cmp >= (UINT64_MAX / 1000000000ull) * hz / 2) {
			pthread_cond_wait(&v->wake, &v->lock);
			continue;
		}
		uint64_t ns = vm->time_base_ns + (uint64_t)((unsigned __int128)cmp * 1000000000ull / hz);
		/* Round up so the deadline has passed when we wake. */
		ns += 1000000000ull / hz;
		struct timespec ts = clock_timespec(ns);
		atomic_fetch_add(&v->wfi_sleeps, 1);
		if (pthread_cond_timedwait(&v->wake, &v->lock, &ts) == ETIMEDOUT)
			break;
	}
	v->wake_pending = false;
	pthread_mutex_unlock(&v->lock);
}

static void crash(struct vcpu *v, const struct hart_exit *ex)
{
	struct vm *vm = v->vm;
	pthread_mutex_lock(&vm->state_lock);
	if (!vm->crash.what) {
		vm->crash.hart = v->id;
		vm->crash.what = ex->fatal.what;
		vm->crash.at_pc = true;
		vm->crash.pc = ex->fatal.pc;
		vm->crash.cause = ex->fatal.cause;
		vm->crash.tval = ex->fatal.tval;
	}
	pthread_mutex_unlock(&vm->state_lock);
	vm_end(vm, VM_CRASHED);
}

void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	struct hart_exit ex;

	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	if (v->host_started) {
		v->host_started = false;
		if (vm->thread_hook.start && vm->thread_hook.start(vm->thread_hook.ctx, name)) {
			pthread_mutex_lock(&vm->state_lock);
			vm->crash.hart = v->id;
			vm->crash.what = "its thread could not confine itself (sandbox)";
			pthread_mutex_unlock(&vm->state_lock);
			vm_end(vm, VM_CRASHED);
			return NULL;
		}
	}
	allocator_cpu_thread_start(v);
	while (!atomic_load(&vm->end)) {
		if (atomic_load(&vm->paused)) {
			park(v);
			continue;
		}
		allocator_cpu_account(v);
		int st = atomic_load(&v->state);
		if (st == HSM_STOPPED)
			break;
		hart_run(v->hart, &ex);
		atomic_fetch_add_explicit(&v->exits[ex.reason], 1, memory_order_relaxed);
		atomic_store_explicit(&v->instructions, hart_instret(v->hart), memory_order_relaxed);
		switch (ex.reason) {
		case EXIT_SBI:
			sbi_call(v);
			break;
		case EXIT_WFI:
			wfi_sleep(v);
			break;
		case EXIT_MMIO:
			mmio_exit(v, &ex);
			break;
		case EXIT_FATAL:
			crash(v, &ex);
			break;
		case EXIT_USER_ECALL: {
			struct hart_exit bad = { .reason = EXIT_FATAL };
			bad.fatal.what = "user-mode ecall exit in a full-system VM";
			bad.fatal.pc = hart_get_pc(v->hart);
			crash(v, &bad);
			break;
		}
		case EXIT_PAUSE:
			sched_yield();
			break;
		case EXIT_KICK:
		case EXIT_NONE:
		case EXIT_REASONS:
			break;
		}
	}
	return NULL;
}

/*
 * The allocator's CPU control: a VM with a CPU quota (a fraction of one host
 * core) may use quota x period of host CPU time per period, summed over its
 * vCPU threads, like the kernel's CFS bandwidth control. A controller thread
 * kicks the harts every tick so each vCPU thread accounts its own CPU time;
 * a VM over budget parks its harts until the next period starts.
 */
#include "monitor/vm.h"

#include <errno.h>
#include <time.h>

#include "base/clock.h"

#define QUOTA_PERIOD_NS 100000000ull  /* 100 ms */
#define QUOTA_TICKS 20                 /* accounting points per period */

static void *quota_thread(void *arg)
{
	struct vm *vm = arg;
	/* Named here, not by the starter: the sandbox finds its class by name. */
	pthread_setname_np(pthread_self(), "cpu-quota");
	if (vm->thread_hook.start && vm->thread_hook.start(vm->thread_hook.ctx, "cpu-quota")) {
		/* Unconfined it must not run: without its ticks the harts
		 * never learn of their budget; stop the VM rather. */
		pthread_mutex_lock(&vm->state_lock);
		if (!vm->crash.what) {
			vm->crash.hart = vm->nharts;  /* no hart's */
			vm->crash.what = "the CPU quota thread could not confine itself (sandbox)";
		}
		pthread_mutex_unlock(&vm->state_lock);
		vm_end(vm, VM_CRASHED);
		return NULL;
	}
	uint64_t next_ns = clock_monotonic_ns();
	unsigned tick = 0;
	while (!atomic_load(&vm->quota.stop) && !atomic_load(&vm->end)) {
		next_ns += QUOTA_PERIOD_NS / QUOTA_TICKS;
		struct timespec next = clock_timespec(next_ns);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
		if (++tick == QUOTA_TICKS) {
			tick = 0;
			pthread_mutex_lock(&vm->state_lock);
			/* A hart sees that it is over budget only at its next
			 * accounting point, so a period can overrun; the overrun
			 * is paid from the next period's budget, so the quota
			 * holds over time (as CFS bandwidth carries a deficit). */
			uint64_t used = atomic_load(&vm->quota.used_ns), left;
			do
				left = used > vm->quota.budget_ns ? used - vm->quota.budget_ns : 0;
			while (!atomic_compare_exchange_weak(&vm->quota.used_ns, &used, left));
			pthread_cond_broadcast(&vm->state_cond);
			pthread_mutex_unlock(&vm->state_lock);
		}
		/* Make running harts come back to the dispatcher and account. */
		for (unsigned i = 0; i < vm->nharts; i++)
			if (atomic_load(&vm->vcpu[i].state) == HSM_STARTED)
				hart_kick(vm->vcpu[i].hart);
	}
	return NULL;
}

int allocator_cpu_quota_start(struct vm *vm, double quota)
{
	if (quota <= 0)
		return 0;
	vm->quota.budget_ns = (uint64_t)(quota * (double)QUOTA_PERIOD_NS);
	atomic_store(&vm->quota.used_ns, 0);
	atomic_store(&vm->quota.stop, false);
	if (pthread_create(&vm->quota.thread, NULL, quota_thread, vm))
		return -EAGAIN;
	vm->quota.live = true;
	return 0;
}

void allocator_cpu_quota_stop(struct vm *vm)
{
	if (!vm->quota.live)
		return;
	atomic_store(&vm->quota.stop, true);
	pthread_join(vm->quota.thread, NULL);
	vm->quota.live = false;
}

void allocator_cpu_account(struct vcpu *v)
{
	struct vm *vm = v->vm;
	if (!vm->quota.live)
		return;
	uint64_t now = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	uint64_t used = atomic_fetch_add(&vm->quota.used_ns, now - v->cpu_mark) + (now - v->cpu_mark);
	v->cpu_mark = now;
	if (used < vm->quota.budget_ns)
		return;
	atomic_fetch_add(&vm->quota.throttled, 1);
	pthread_mutex_lock(&vm->state_lock);
	while (atomic_load(&vm->quota.used_ns) >= vm->quota.budget_ns &&
	       !atomic_load(&vm->end) && !atomic_load(&vm->paused) && !atomic_load(&vm->quota.stop))
		pthread_cond_wait(&vm->state_cond, &vm->state_lock);
	pthread_mutex_unlock(&vm->state_lock);
	/* Time spent waiting is not CPU time; start counting afresh. */
	v->cpu_mark = clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

void allocator_cpu_thread_start(struct vcpu *v)
{
	v->cpu_mark = clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

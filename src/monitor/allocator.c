/*
 * The allocator: the host resources bound to a VM. Guest RAM is reserved as
 * one lazily backed mapping of exactly the configured size (the guest can
 * never touch more); harts are brought up and down as vCPU threads when the
 * guest starts and stops them (SBI HSM).
 */
#include "monitor/vm.h"

#include <errno.h>

int allocator_ram_init(struct vm *vm, uint64_t bytes)
{
	return gram_init(&vm->ram, BOARD_RAM_BASE, bytes);
}

int allocator_ram_init_file(struct vm *vm, uint64_t bytes, int fd)
{
	return gram_init_file(&vm->ram, BOARD_RAM_BASE, bytes, fd);
}

int allocator_hart_restored(struct vm *vm, unsigned id)
{
	if (id >= vm->nharts)
		return -EINVAL;
	struct vcpu *v = &vm->vcpu[id];
	if (atomic_load(&v->state) != HSM_STARTED || v->thread_live)
		return -EALREADY;
	v->host_started = true;   /* only the host restores */
	if (pthread_create(&v->thread, NULL, vcpu_thread, v) != 0)
		return -EAGAIN;
	v->thread_live = true;
	return 0;
}

int allocator_hart_start(struct vm *vm, unsigned id, uint64_t addr, uint64_t opaque)
{
	if (id >= vm->nharts)
		return -EINVAL;
	struct vcpu *v = &vm->vcpu[id];
	int expected = HSM_STOPPED;
	if (!atomic_compare_exchange_strong(&v->state, &expected, HSM_START_PENDING))
		return -EALREADY;
	/* A hart that stopped itself left its thread finishing; reap it. */
	if (v->thread_live) {
		pthread_join(v->thread, NULL);
		v->thread_live = false;
	}
	hart_reset(v->hart, addr, opaque);
	/* As the firmware would: let U-mode read cycle, time and instret
	 * (Linux's vDSO reads time directly and never sets scounteren). */
	hart_csr_write(v->hart, 0x106, 7);
	atomic_store(&v->state, HSM_STARTED);
	if (pthread_create(&v->thread, NULL, vcpu_thread, v) != 0) {
		atomic_store(&v->state, HSM_STOPPED);
		return -EAGAIN;
	}
	v->thread_live = true;
	return 0;
}

void allocator_harts_join(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nharts; i++) {
		struct vcpu *v = &vm->vcpu[i];
		if (v->thread_live) {
			pthread_join(v->thread, NULL);
			v->thread_live = false;
		}
	}
}

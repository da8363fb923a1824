/*
 * The interpreter's MMIO routine: an access the engine could not complete
 * in RAM goes to the device that owns the address (a binary search of the
 * sorted MMIO map). An address no device owns is an access fault for the
 * guest, never a problem for the host.
 */
#include "monitor/vm.h"

void mmio_exit(struct vcpu *v, const struct hart_exit *ex)
{
	struct vm *vm = v->vm;
	uint64_t value = 0;
	bool ok;
	if (ex->mmio.write)
		ok = mmio_bus_write(&vm->bus, ex->mmio.addr, ex->mmio.size, ex->mmio.value);
	else
		ok = mmio_bus_read(&vm->bus, ex->mmio.addr, ex->mmio.size, &value);
	hart_mmio_complete(v->hart, value, !ok);
}

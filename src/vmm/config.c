/* Validation of a VM configuration; see config.h. */
#include "vmm/config.h"

#include <stdio.h>

#include "machine/board.h"

const char *vm_config_check(const struct vm_config *c, char *err, size_t errlen)
{
	if (c->ncpus < 1 || c->ncpus > BOARD_MAX_HARTS) {
		snprintf(err, errlen, "cpus: %u is out of range (1 to %u)", c->ncpus, BOARD_MAX_HARTS);
		return err;
	}
	uint64_t mib = c->mem_bytes >> 20;
	if (mib < VM_MIN_MEM_MIB || mib > VM_MAX_MEM_MIB || (c->mem_bytes & ((1u << 20) - 1))) {
		snprintf(err, errlen, "mem: %llu bytes is out of range (%u MiB to %u MiB, whole MiB)",
			 (unsigned long long)c->mem_bytes, VM_MIN_MEM_MIB, VM_MAX_MEM_MIB);
		return err;
	}
	if (c->cpu_quota < 0 || c->cpu_quota > c->ncpus) {
		snprintf(err, errlen, "cpu_quota: %g is out of range (0 for none, up to vcpu_count %u)",
			 c->cpu_quota, c->ncpus);
		return err;
	}
	if (!c->kernel || !*c->kernel) {
		snprintf(err, errlen, "kernel: no kernel image given");
		return err;
	}
	return NULL;
}

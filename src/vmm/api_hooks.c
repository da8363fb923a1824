/*
 * Stand-ins for the device hooks the per-VM API calls after start (declared
 * in vmm/api.h). Each answers -ENOSYS with a message, which the API turns
 * into a 400 naming what is missing. The integrator replaces these with the
 * real ones next to the devices (and drops this file from the build).
 */
#include "vmm/api.h"

#include <errno.h>
#include <stdio.h>

int vm_net_update(struct vm *vm, size_t index, const struct vm_net *n,
		  bool rx_changed, bool tx_changed, char *err, size_t errlen)
{
	(void)vm; (void)index; (void)n; (void)rx_changed; (void)tx_changed;
	snprintf(err, errlen, "updating a network interface of a running VM is not implemented yet");
	return -ENOSYS;
}

int vm_balloon_set_target(struct vm *vm, uint32_t target_mib, char *err, size_t errlen)
{
	(void)vm; (void)target_mib;
	snprintf(err, errlen, "the balloon device is not implemented yet");
	return -ENOSYS;
}

int vm_balloon_set_stats_interval(struct vm *vm, uint32_t seconds, char *err, size_t errlen)
{
	(void)vm; (void)seconds;
	snprintf(err, errlen, "the balloon device is not implemented yet");
	return -ENOSYS;
}

int vm_balloon_get_stats(struct vm *vm, struct vm_balloon_stats *out, char *err, size_t errlen)
{
	(void)vm; (void)out;
	snprintf(err, errlen, "the balloon device is not implemented yet");
	return -ENOSYS;
}

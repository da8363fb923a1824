/*
 * The VM's side of the metrics line the API writes (PUT /metrics): memory
 * (guest RAM backed by the host now, the balloon's size and what it and
 * free page reporting gave back) and, per device, bytes and operations and
 * rate-limiter throttle events. Member names follow Firecracker's metrics
 * where they overlap (block: read_bytes, write_count, ...). skiffd turns
 * them into Prometheus samples.
 */
#ifndef SKIFF_VMM_VM_METRICS_H
#define SKIFF_VMM_VM_METRICS_H

#include <jansson.h>

#include "monitor/vm.h"

/* Add "memory", "block" (and further device sections) to the object m. */
void vm_metrics_add(struct vm *vm, json_t *m);

#endif

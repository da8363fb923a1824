/*
 * PUT /serial (Firecracker's SerialDevice): the guest's console output goes
 * to a file or named pipe instead of the VMM's terminal, and/or through
 * a token bucket of bytes; output over the limit is dropped and counted,
 * as is output a pipe without a reader (or a full one) cannot take. The
 * guest never waits for it.
 */
#ifndef SKIFF_VMM_SERIAL_OUT_H
#define SKIFF_VMM_SERIAL_OUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/token_bucket.h"
#include "monitor/vm.h"

struct vmm_serial {
	int fd;                      /* -1: to `next` (the VMM's console) */
	struct vm_console next;
	bool limited;
	struct token_bucket tb;
	_Atomic uint64_t dropped;    /* bytes */
};

/* Check a SerialDevice body and open its output. NULL (and *out, to free
 * with vmm_serial_free) or err. */
const char *vmm_serial_open(const json_t *body, struct vmm_serial **out, char *err, size_t errlen);
void vmm_serial_free(struct vmm_serial *s);
/* A vm_console output function; ctx is the struct vmm_serial. */
void vmm_serial_write(void *ctx, const uint8_t *buf, size_t n);

#endif

/*
 * A VM's configuration: what `skiff run` options, a --config-file or the API
 * describe. Plain data; validated by vm_config_check() before any VM exists.
 */
#ifndef SKIFF_VMM_CONFIG_H
#define SKIFF_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_MIN_MEM_MIB 64
#define VM_MAX_MEM_MIB (256u * 1024)

struct vm_config {
	unsigned ncpus;
	uint64_t mem_bytes;
	char *kernel;
	char *initrd;      /* may be NULL */
	char *append;      /* kernel command line; may be NULL */
	char *dump_dtb;    /* write the generated device tree here; may be NULL */
};

/* NULL if usable, else a message naming the field that is wrong. */
const char *vm_config_check(const struct vm_config *c, char *err, size_t errlen);

#endif

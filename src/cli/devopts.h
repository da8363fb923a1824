/*
 * Parsing of `skiff run` device options into a struct vm_config:
 *   --disk PATH[,ro][,format=raw|qcow2][,serial=S][,root]
 *   --console uart|virtio
 * Each returns NULL, or a message naming what is wrong in err.
 */
#ifndef SKIFF_CLI_DEVOPTS_H
#define SKIFF_CLI_DEVOPTS_H

#include <stddef.h>

#include "vmm/config.h"

const char *devopt_disk(struct vm_config *c, const char *arg, char *err, size_t errlen);
const char *devopt_console(struct vm_config *c, const char *arg, char *err, size_t errlen);

#endif

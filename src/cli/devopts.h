/*
 * Parsing of `skiff run` device options into a struct vm_config:
 *   --disk PATH[,ro][,format=raw|qcow2][,serial=S][,root][,bw=BYTES/s][,iops=N]
 *   --console uart|virtio
 *   --net user[,hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT]...[,mac=M]
 *   --net tap,ifname=NAME[,mac=M]
 *   --vsock cid=N,uds=PATH
 *   --balloon[=deflate_on_oom][,target=MIB][,stats=SECONDS]
 *   --share HOSTDIR[,tag=NAME][,ro]   (virtio-9p; default tag share0, share1, ...)
 *   --port NAME,uds=PATH              (a named virtio-console port)
 * Each returns NULL, or a message naming what is wrong in err. The
 * configuration may already hold a config file's sections: disks, NICs,
 * shares and ports are added to them (under ids of their own), --vsock and
 * --balloon replace theirs.
 */
#ifndef SKIFF_CLI_DEVOPTS_H
#define SKIFF_CLI_DEVOPTS_H

#include <stddef.h>

#include "vmm/config.h"

const char *devopt_disk(struct vm_config *c, const char *arg, char *err, size_t errlen);
const char *devopt_console(struct vm_config *c, const char *arg, char *err, size_t errlen);
const char *devopt_share(struct vm_config *c, const char *arg, char *err, size_t errlen);
const char *devopt_net(struct vm_config *c, const char *arg, char *err, size_t errlen);
const char *devopt_vsock(struct vm_config *c, const char *arg, char *err, size_t errlen);
/* The port's strings are its own (malloc'd). */
const char *devopt_port(struct vm_config *c, const char *arg, char *err, size_t errlen);
/* arg may be NULL (plain --balloon). */
const char *devopt_balloon(struct vm_config *c, const char *arg, char *err, size_t errlen);

#endif

/*
 * The sandbox's layers that are not seccomp: which capabilities a VM still
 * needs once it runs (the rest are dropped from every thread, sandbox.c),
 * and the process's resource limits.
 *
 * Capabilities matter when the VMM runs as root. A guest reboot rebuilds
 * the VM in this process, so what the VM's configuration needs to be built
 * again stays: CAP_NET_ADMIN for a TAP interface, CAP_NET_BIND_SERVICE for
 * a forward from a host port below 1024; and what 9p needs at run time as
 * root (files made with the guest's owner, any file of the share reachable
 * whatever its mode): CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
 * CAP_FOWNER. Nothing else, so never CAP_SYS_ADMIN, CAP_SYS_PTRACE,
 * CAP_SYS_MODULE, CAP_SETUID, ...
 *
 * Limits: no core dumps (one would hold guest memory); at most 4096 open
 * files (a guest opening connections without end through the user network
 * runs out of them, not the host); no file written past twice the largest
 * of guest RAM (a snapshot's memory file) and the largest disk, plus 1 GiB
 * (qcow2 metadata, snapshot state), with SIGXFSZ ignored so the write just
 * fails. A process limit (RLIMIT_NPROC) counts every process of the user,
 * so it is left to a dedicated user (the jail) or to cgroup pids.max.
 */
#include "vmm/sandbox.h"

#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "vmm/config.h"
#include "vmm/devices.h"

#define MAX_OPEN_FILES 4096

uint64_t sandbox_caps_needed(const struct vm_config *cfg)
{
	uint64_t caps = 0;
	if (cfg->nshares)
		caps |= 1ull << CAP_CHOWN | 1ull << CAP_DAC_OVERRIDE | 1ull << CAP_DAC_READ_SEARCH |
			1ull << CAP_FOWNER;
	for (size_t i = 0; i < cfg->nnets; i++) {
		if (cfg->nets[i].backend == VM_NET_TAP)
			caps |= 1ull << CAP_NET_ADMIN;
		for (size_t k = 0; k < cfg->nets[i].nfwd; k++)
			if (cfg->nets[i].fwd[k].host_port < 1024)
				caps |= 1ull << CAP_NET_BIND_SERVICE;
	}
	return caps;
}

static int lower(int res, rlim_t v, const char *what, char *err, size_t errlen)
{
	struct rlimit r;
	if (getrlimit(res, &r) < 0) {
		snprintf(err, errlen, "sandbox: cannot read the %s limit: %s", what, strerror(errno));
		return -1;
	}
	if (r.rlim_max != RLIM_INFINITY && r.rlim_max < v)
		v = r.rlim_max;   /* already lower: keep it */
	r.rlim_cur = r.rlim_max = v;
	if (setrlimit(res, &r) < 0) {
		snprintf(err, errlen, "sandbox: cannot set the %s limit: %s", what, strerror(errno));
		return -1;
	}
	return 0;
}

int sandbox_set_limits(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen)
{
	uint64_t big = cfg->mem_bytes;
	uint64_t disk = vm->devices ? vm_devices_largest_disk(vm->devices) : 0;
	if (disk > big)
		big = disk;
	uint64_t fsize = big > (UINT64_MAX - (1ull << 30)) / 2 ? RLIM_INFINITY : 2 * big + (1ull << 30);
	signal(SIGXFSZ, SIG_IGN);
	return lower(RLIMIT_CORE, 0, "core file", err, errlen) ||
	       lower(RLIMIT_NOFILE, MAX_OPEN_FILES, "open file", err, errlen) ||
	       lower(RLIMIT_FSIZE, (rlim_t)fsize, "file size", err, errlen) ? -1 : 0;
}

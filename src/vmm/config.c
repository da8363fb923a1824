/* Validation of a VM configuration; see config.h. */
#include "vmm/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "machine/board.h"

void vm_drive_free(struct vm_drive *d)
{
	free(d->id);
	free(d->path);
	free(d->serial);
	for (size_t i = 0; i < d->nbacking_dirs; i++)
		free(d->backing_dirs[i]);
	memset(d, 0, sizeof(*d));
}

void vm_net_free(struct vm_net *n)
{
	free(n->id);
	free(n->tap_name);
	for (size_t k = 0; k < n->nfwd; k++)
		free(n->fwd[k].host_addr);
	memset(n, 0, sizeof(*n));
}

void vm_share_free(struct vm_share *sh)
{
	free(sh->tag);
	free(sh->path);
	memset(sh, 0, sizeof(*sh));
}

void vm_config_free_devices(struct vm_config *c)
{
	for (size_t i = 0; i < c->ndrives; i++)
		vm_drive_free(&c->drives[i]);
	for (size_t i = 0; i < c->nnets; i++)
		vm_net_free(&c->nets[i]);
	for (size_t i = 0; i < c->nshares; i++)
		vm_share_free(&c->shares[i]);
	for (size_t i = 0; i < c->nports; i++) {
		free(c->ports[i].name);
		free(c->ports[i].uds_path);
	}
	free(c->vsock_uds);
	c->vsock_uds = NULL;
	c->ndrives = c->nnets = c->nshares = c->nports = 0;
}

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
	if (c->engine_set && c->engine == ENGINE_JIT && !engine_jit_available()) {
		snprintf(err, errlen, "engine: this build has no JIT (it needs an x86-64 host); use interp");
		return err;
	}
	if (c->jit_cache_bytes && c->jit_cache_bytes < (1u << 20)) {
		snprintf(err, errlen, "jit cache: %llu bytes is less than the minimum, 1 MiB",
			 (unsigned long long)c->jit_cache_bytes);
		return err;
	}
	if (c->cpu_quota < 0 || c->cpu_quota > c->ncpus) {
		snprintf(err, errlen, "cpu_quota: %g is out of range (0 for none, up to vcpu_count %u)",
			 c->cpu_quota, c->ncpus);
		return err;
	}
	for (size_t i = 0; i < c->nports; i++) {
		const struct vm_console_port *p = &c->ports[i];
		if (!vm_console_port_name_valid(p->name)) {
			snprintf(err, errlen, "console port %zu: the name must be 1 to %d printable "
				 "characters, no space, ',' or '/'", i, VM_CONSOLE_PORT_NAME_MAX);
			return err;
		}
		if (!p->uds_path || !*p->uds_path || strlen(p->uds_path) > VM_UDS_PATH_MAX) {
			snprintf(err, errlen, "console port %s: the socket path must be 1 to %d bytes",
				 p->name, VM_UDS_PATH_MAX);
			return err;
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(p->name, c->ports[j].name)) {
				snprintf(err, errlen, "console port %s: the name is used twice", p->name);
				return err;
			}
			if (!strcmp(p->uds_path, c->ports[j].uds_path)) {
				snprintf(err, errlen, "console ports %s and %s: both use the socket %s",
					 c->ports[j].name, p->name, p->uds_path);
				return err;
			}
		}
	}
	return NULL;
}

bool vm_console_port_name_valid(const char *name)
{
	if (!name || !*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	size_t n = 0;
	for (; name[n]; n++)
		if (name[n] <= ' ' || name[n] > '~' || name[n] == ',' || name[n] == '/')
			return false;
	return n <= VM_CONSOLE_PORT_NAME_MAX;
}

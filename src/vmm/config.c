/* The VM configuration model: defaults, copies, and its rules; see config.h. */
#include "vmm/config.h"

#include <inttypes.h>
#include <stdbool.h>
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

void vm_config_init(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->ncpus = 1;
	c->mem_bytes = (uint64_t)VM_DEFAULT_MEM_MIB << 20;
	c->rng = true;
	c->agent = true;
	c->logger.level = VMM_LOG_INFO;
}

void vm_config_free(struct vm_config *c)
{
	free(c->name);
	free(c->kernel);
	free(c->initrd);
	free(c->append);
	free(c->dump_dtb);
	vm_config_free_devices(c);
	free(c->logger.log_path);
	free(c->metrics.path);
	memset(c, 0, sizeof(*c));
}

char *vm_config_strdup(const char *p, bool *fail)
{
	if (!p)
		return NULL;
	char *d = strdup(p);
	if (!d)
		*fail = true;
	return d;
}

int vm_config_copy(struct vm_config *dst, const struct vm_config *src)
{
	bool fail = false;
	*dst = *src;
	struct vm_config *c = dst;
	const struct vm_config *o = src;
	c->name = vm_config_strdup(o->name, &fail);
	c->kernel = vm_config_strdup(o->kernel, &fail);
	c->initrd = vm_config_strdup(o->initrd, &fail);
	c->append = vm_config_strdup(o->append, &fail);
	c->dump_dtb = vm_config_strdup(o->dump_dtb, &fail);
	c->vsock_uds = vm_config_strdup(o->vsock_uds, &fail);
	for (size_t i = 0; i < c->ndrives; i++) {
		c->drives[i].id = vm_config_strdup(o->drives[i].id, &fail);
		c->drives[i].path = vm_config_strdup(o->drives[i].path, &fail);
		c->drives[i].serial = vm_config_strdup(o->drives[i].serial, &fail);
		for (size_t k = 0; k < c->drives[i].nbacking_dirs; k++)
			c->drives[i].backing_dirs[k] = vm_config_strdup(o->drives[i].backing_dirs[k], &fail);
	}
	for (size_t i = 0; i < c->nnets; i++) {
		c->nets[i].id = vm_config_strdup(o->nets[i].id, &fail);
		c->nets[i].tap_name = vm_config_strdup(o->nets[i].tap_name, &fail);
		for (size_t k = 0; k < c->nets[i].nfwd; k++)
			c->nets[i].fwd[k].host_addr = vm_config_strdup(o->nets[i].fwd[k].host_addr, &fail);
	}
	for (size_t i = 0; i < c->nshares; i++) {
		c->shares[i].tag = vm_config_strdup(o->shares[i].tag, &fail);
		c->shares[i].path = vm_config_strdup(o->shares[i].path, &fail);
	}
	for (size_t i = 0; i < c->nports; i++) {
		c->ports[i].name = vm_config_strdup(o->ports[i].name, &fail);
		c->ports[i].uds_path = vm_config_strdup(o->ports[i].uds_path, &fail);
	}
	dst->logger.log_path = vm_config_strdup(src->logger.log_path, &fail);
	dst->metrics.path = vm_config_strdup(src->metrics.path, &fail);
	if (fail) {
		vm_config_free(dst);
		return -1;
	}
	return 0;
}

#define MSG(...) (snprintf(err, errlen, __VA_ARGS__), err)

/* The rules across network interfaces: unique MACs, TAP names and
 * forwarded host ports. */
static const char *check_nets(const struct vm_config *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->nnets; i++) {
		const struct vm_net *a = &c->nets[i];
		for (size_t j = i + 1; j < c->nnets; j++) {
			const struct vm_net *b = &c->nets[j];
			if (a->mac_set && b->mac_set && !memcmp(a->mac, b->mac, 6)) {
				char m[18];
				vm_mac_format(m, a->mac);
				return MSG("network-interfaces.guest_mac: The MAC address is already in use: %s "
					   "(interfaces `%s` and `%s`)", m, a->id, b->id);
			}
			if (a->tap_name && b->tap_name && !strcmp(a->tap_name, b->tap_name))
				return MSG("network-interfaces.host_dev_name: The host device name is already in use: %s "
					   "(interfaces `%s` and `%s`)", a->tap_name, a->id, b->id);
		}
		/* One host (protocol, address, port) can be forwarded once. */
		for (size_t k = 0; k < a->nfwd; k++) {
			const struct vm_port_forward *f = &a->fwd[k];
			const char *fa = f->host_addr ? f->host_addr : "127.0.0.1";
			for (size_t j = i; j < c->nnets; j++) {
				const struct vm_net *b = &c->nets[j];
				for (size_t l = (j == i ? k + 1 : 0); l < b->nfwd; l++) {
					const struct vm_port_forward *g = &b->fwd[l];
					const char *ga = g->host_addr ? g->host_addr : "127.0.0.1";
					if (f->udp == g->udp && f->host_port == g->host_port && !strcmp(fa, ga))
						return MSG("network-interfaces.port_forwards: host %s %s:%u is forwarded twice",
							   f->udp ? "udp" : "tcp", fa, f->host_port);
				}
			}
		}
	}
	return NULL;
}

static const char *check_ports(const struct vm_config *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->nports; i++) {
		const struct vm_console_port *p = &c->ports[i];
		if (!vm_console_port_name_valid(p->name))
			return MSG("console port %zu: the name must be 1 to %d printable characters, no "
				   "space, ',' or '/'", i, VM_CONSOLE_PORT_NAME_MAX);
		if (!p->uds_path || !*p->uds_path || strlen(p->uds_path) > VM_UDS_PATH_MAX)
			return MSG("console port %s: the socket path must be 1 to %d bytes", p->name,
				   VM_UDS_PATH_MAX);
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(p->name, c->ports[j].name))
				return MSG("console port %s: the name is used twice", p->name);
			if (!strcmp(p->uds_path, c->ports[j].uds_path))
				return MSG("console ports %s and %s: both use the socket %s", c->ports[j].name,
					   p->name, p->uds_path);
		}
	}
	return NULL;
}

const char *vm_config_check(const struct vm_config *c, char *err, size_t errlen)
{
	if (c->append && strlen(c->append) > VM_MAX_CMDLINE)
		return MSG("boot-source.boot_args: %zu bytes is longer than the kernel accepts (%d)",
			   strlen(c->append), VM_MAX_CMDLINE);
	if (c->append && strchr(c->append, '\n'))
		return MSG("boot-source.boot_args: must be one line");
	if (c->ncpus < 1 || c->ncpus > BOARD_MAX_HARTS)
		return MSG("machine-config.vcpu_count: %u is out of range (1 to %u)", c->ncpus, BOARD_MAX_HARTS);
	uint64_t mib = c->mem_bytes >> 20;
	if (mib < VM_MIN_MEM_MIB || mib > VM_MAX_MEM_MIB || (c->mem_bytes & ((1u << 20) - 1)))
		return MSG("machine-config.mem_size_mib: %llu bytes is out of range (%u MiB to %u MiB, whole MiB)",
			   (unsigned long long)c->mem_bytes, VM_MIN_MEM_MIB, VM_MAX_MEM_MIB);
	if (c->cpu_quota < 0 || c->cpu_quota > (double)c->ncpus)
		return MSG("machine-config.cpu_quota: %g is more than vcpu_count (%u)", c->cpu_quota, c->ncpus);
	if (c->engine_set && c->engine == ENGINE_JIT && !engine_jit_available())
		return MSG("engine: this build has no JIT (it needs an x86-64 host); use interp");
	if (c->jit_cache_bytes && c->jit_cache_bytes < (1u << 20))
		return MSG("jit cache: %llu bytes is less than the minimum, 1 MiB",
			   (unsigned long long)c->jit_cache_bytes);
	if (c->balloon && c->balloon_target_mib > mib)
		return MSG("balloon.amount_mib: %u MiB is more than the guest memory (machine-config.mem_size_mib %" PRIu64 ")",
			   c->balloon_target_mib, mib);
	unsigned roots = 0;
	for (size_t i = 0; i < c->ndrives; i++) {
		roots += c->drives[i].root;
		for (size_t j = 0; j < i; j++)
			if (c->drives[i].id && c->drives[j].id && !strcmp(c->drives[i].id, c->drives[j].id))
				return MSG("drives.drive_id: `%s` is used twice", c->drives[i].id);
	}
	for (size_t i = 0; i < c->nnets; i++)
		for (size_t j = 0; j < i; j++)
			if (c->nets[i].id && c->nets[j].id && !strcmp(c->nets[i].id, c->nets[j].id))
				return MSG("network-interfaces.iface_id: `%s` is used twice", c->nets[i].id);
	for (size_t i = 0; i < c->nshares; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(c->shares[i].tag, c->shares[j].tag))
				return MSG("shares.tag: `%s` is used twice", c->shares[i].tag);
	if (roots > 1)
		return MSG("drives.is_root_device: A root block device already exists!");
	if (check_nets(c, err, errlen) || check_ports(c, err, errlen))
		return err;
	return NULL;
}

void vm_mac_format(char out[18], const uint8_t m[6])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
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

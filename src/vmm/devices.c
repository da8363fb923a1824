/*
 * Building a VM's virtio devices from its configuration; see devices.h.
 * One table (device_kinds, at the end of the device makers) lists every
 * kind of device in slot order with how many the configuration asks for
 * and how to make one; each maker puts its device in the next slot with
 * its destroy function, and what a device saves and loads for snapshots is
 * in its virtio_dev_ops (save_version, save, load, restored).
 */
#include "vmm/devices.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/disk/disk.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "vmm/agent.h"
#include "virtio/rng.h"
#include "vmm/api.h"
#include "vmm/port_sock.h"
#include "virtio/9p.h"
#include "virtio/net.h"
#include "virtio/net_mmds.h"
#include "vmm/mmds.h"
#include "virtio/vsock.h"
#include "virtio/balloon.h"
#include "virtio/input.h"

static const char *add_slot(struct vm *vm, struct vm_devices *d, struct virtio_dev *dev,
			    void (*destroy)(void *), void *obj, const char *name,
			    char *err, size_t errlen)
{
	if (d->nslots >= BOARD_VIRTIO_SLOTS) {
		destroy(obj);
		snprintf(err, errlen, "%s: no free virtio slot (at most %d devices)", name,
			 BOARD_VIRTIO_SLOTS);
		return err;
	}
	unsigned n = d->nslots;
	struct vm_slot *s = &d->slot[n];
	uint64_t base = BOARD_VIRTIO_BASE + n * BOARD_VIRTIO_SIZE;
	struct irq_line irq = plic_irq_line(&vm->plic, BOARD_IRQ_VIRTIO0 + n);
	s->dev = dev;
	s->destroy = destroy;
	s->obj = obj;
	virtio_mmio_init(&s->mmio, dev, &irq);
	if (mmio_bus_add(&vm->bus, base, BOARD_VIRTIO_SIZE, &virtio_mmio_ops, &s->mmio, name)) {
		destroy(obj);
		snprintf(err, errlen, "%s: cannot map its registers", name);
		return err;
	}
	d->fdt[n].base = base;
	d->fdt[n].irq = BOARD_IRQ_VIRTIO0 + n;
	d->nslots++;
	return NULL;
}

/* A drive owns its disk: the device is stopped before the image closes. */
struct drive {
	struct virtio_blk *blk;
	struct disk *disk;
	char id[64];
};

static void drive_destroy(void *obj)
{
	struct drive *dv = obj;
	virtio_blk_destroy(dv->blk);
	disk_close(dv->disk);
	free(dv);
}

/* Configured limits into a device's buckets (each starts full). */
static void set_limits(struct rate_limiter *rl, const struct vm_rate_limiter *l)
{
	token_bucket_set(&rl->bytes, l->bandwidth.size, l->bandwidth.one_time_burst,
			 l->bandwidth.refill_time_ms);
	token_bucket_set(&rl->ops, l->ops.size, l->ops.one_time_burst, l->ops.refill_time_ms);
}

/* How a drive's image is opened. The format was settled when the drive
 * was configured or given its image (vm_drive_settle_format); an
 * unsettled one is refused by disk_open, which never probes. */
static struct disk_open_opts drive_open_opts(const struct vm_drive *dr)
{
	_Static_assert(VM_MAX_BACKING_DIRS <= DISK_MAX_BACKING_DIRS, "backing directories");
	return (struct disk_open_opts){
		.format = dr->format == VM_DISK_RAW ? DISK_FORMAT_RAW :
			  dr->format == VM_DISK_QCOW2 ? DISK_FORMAT_QCOW2 : DISK_FORMAT_NONE,
		.read_only = dr->read_only,
		.backing = dr->backing,
		.backing_dirs = (const char *const *)dr->backing_dirs,
		.nbacking_dirs = dr->nbacking_dirs,
	};
}

static const char *add_drive(struct vm *vm, struct vm_devices *d, const struct vm_config *cfg,
			     size_t index, char *err, size_t errlen)
{
	const struct vm_drive *dr = &cfg->drives[index];
	struct disk_open_opts o = drive_open_opts(dr);
	struct disk *disk;
	char derr[256];
	if (disk_open(dr->path, &o, &disk, derr, sizeof(derr)) < 0) {
		snprintf(err, errlen, "drive %s: %s", dr->id ? dr->id : dr->path, derr);
		return err;
	}
	struct drive *dv = calloc(1, sizeof(*dv));
	if (dv)
		dv->blk = virtio_blk_create(&vm->ram, disk, dr->serial, derr, sizeof(derr));
	else
		snprintf(derr, sizeof(derr), "out of memory");
	if (!dv || !dv->blk) {
		free(dv);
		disk_close(disk);
		snprintf(err, errlen, "drive %s: %s", dr->id ? dr->id : dr->path, derr);
		return err;
	}
	dv->disk = disk;
	snprintf(dv->id, sizeof(dv->id), "%s", dr->id ? dr->id : "");
	set_limits(virtio_blk_limiter(dv->blk), &dr->limiter);
	if (dr->root)
		snprintf(d->root_arg, sizeof(d->root_arg), "root=/dev/vd%c %s",
			 'a' + (char)index, dr->read_only ? "ro" : "rw");
	const char *e = add_slot(vm, d, virtio_blk_dev(dv->blk), drive_destroy, dv, "virtio-blk",
				 err, errlen);
	if (!e)
		d->drives[d->ndrives++] = dv;
	return e;
}

/* ---- virtio-console: hvc0 as the guest console, and named ports ---- */

/* hvc0's output goes where every console output goes: the VM's console
 * hook (src/vmm/vm.c). */
static void hvc_output(void *ctx, const uint8_t *buf, size_t n)
{
	struct vm *vm = ctx;
	vm->console.out(vm->console.ctx, buf, n);
}

/* The device and its ports' sockets, stopped in this order: the sockets'
 * thread feeds the device, the device's thread writes to the sockets. */
struct console_set {
	struct virtio_console *con;
	struct port_socks *socks;
	struct vm_agent *agent;    /* the VMM's guest agent port, after the named ones */
};

static void console_destroy(void *obj)
{
	struct console_set *cs = obj;
	vm_agent_stop(cs->agent);   /* its clock thread sends to the port */
	port_socks_stop(cs->socks);
	virtio_console_destroy(cs->con);
	port_socks_destroy(cs->socks);
	vm_agent_destroy(cs->agent);
	free(cs);
}

/* Does the VM get the VMM's own agent port? Not when the user named a
 * port org.qemu.guest_agent.0 (they talk to the agent themselves). */
static bool wants_agent(const struct vm_config *cfg)
{
	if (!cfg->agent)
		return false;
	for (size_t i = 0; i < cfg->nports; i++)
		if (!strcmp(cfg->ports[i].name, VM_AGENT_PORT_NAME))
			return false;
	return true;
}

/* Port 0 is hvc0; when the UART is the console the guest is not told of
 * it (no hvc0, no getty on it). The named ports follow. */
static const char *add_console(struct vm *vm, struct vm_devices *d, const struct vm_config *cfg,
			       size_t k, char *err, size_t errlen)
{
	struct virtio_console_port_config pc[2 + VM_MAX_CONSOLE_PORTS] = { { .no_console = true } };
	if (cfg->virtio_console)
		pc[0] = (struct virtio_console_port_config){ .output = hvc_output, .ctx = vm };
	char cerr[320];
	struct console_set *cs = calloc(1, sizeof(*cs));
	if (!cs) {
		snprintf(err, errlen, "virtio-console: out of memory");
		return err;
	}
	if (cfg->nports && !(cs->socks = port_socks_create(cfg->ports, cfg->nports, pc + 1,
							   cerr, sizeof(cerr)))) {
		free(cs);
		snprintf(err, errlen, "virtio-console: %s", cerr);
		return err;
	}
	unsigned nports = 1 + (unsigned)cfg->nports;
	if (wants_agent(cfg)) {
		if (!(cs->agent = vm_agent_create(vm, &pc[nports]))) {
			port_socks_destroy(cs->socks);
			free(cs);
			snprintf(err, errlen, "virtio-console: out of memory");
			return err;
		}
		nports++;
	}
	cs->con = virtio_console_create(&vm->ram, pc, nports, cerr, sizeof(cerr));
	if (cs->con && cs->agent)
		vm_agent_bind(cs->agent, cs->con, nports - 1);
	if (!cs->con || port_socks_start(cs->socks, cs->con, 1, vm->ram.threads, cerr, sizeof(cerr))) {
		virtio_console_destroy(cs->con);
		port_socks_destroy(cs->socks);
		vm_agent_destroy(cs->agent);
		free(cs);
		snprintf(err, errlen, "virtio-console: %s", cerr);
		return err;
	}
	if (add_slot(vm, d, virtio_console_dev(cs->con), console_destroy, cs, "virtio-console",
		     err, errlen))
		return err;
	if (cfg->virtio_console)
		d->console = cs->con;
	d->agent = cs->agent;
	return NULL;
}

/* ---- virtio-net: one device per configured NIC, each with its backend ---- */

static void net_destroy(void *obj) { virtio_net_destroy(obj); }

struct net_open_arg {
	const struct vm_net *cfg;
	const char *name;
};

static struct net_backend *net_open(void *arg, const struct net_backend_cb *cb, char *err, size_t errlen)
{
	const struct net_open_arg *a = arg;
	if (a->cfg->backend == VM_NET_TAP)
		return net_tap_create(a->cfg->tap_name, cb, err, errlen);
	struct net_user_fwd fwd[VM_MAX_PORT_FORWARDS];
	size_t nfwd = 0;
	for (size_t i = 0; i < a->cfg->nfwd && i < VM_MAX_PORT_FORWARDS; i++) {
		const struct vm_port_forward *f = &a->cfg->fwd[i];
		const char *host = f->host_addr ? f->host_addr : "127.0.0.1";
		struct in_addr ia;
		if (inet_pton(AF_INET, host, &ia) != 1) {
			snprintf(err, errlen, "%s: port forward host address '%s' is not an IPv4 address",
				 a->name, host);
			return NULL;
		}
		fwd[nfwd++] = (struct net_user_fwd){ .udp = f->udp, .host_addr = ia.s_addr,
						     .host_port = f->host_port, .guest_port = f->guest_port };
	}
	struct net_user_opts o = { .name = a->name, .fwd = fwd, .nfwd = nfwd,
				   .restricted = a->cfg->restricted,
				   .no_host_loopback = a->cfg->no_host_loopback };
	return net_user_create(&o, cb, err, errlen);
}

static const char *add_net(struct vm *vm, struct vm_devices *d, const struct vm_config *cfg,
			   size_t k, char *err, size_t errlen)
{
	const struct vm_net *nc = &cfg->nets[k];
	char name[40];
	snprintf(name, sizeof(name), "%s", nc->id ? nc->id : "net");
	if (!nc->id)
		snprintf(name, sizeof(name), "net%zu", k);
	uint8_t mac[6];
	if (nc->mac_set)
		memcpy(mac, nc->mac, 6);
	else
		virtio_net_default_mac(cfg->name, (unsigned)k, mac);
	struct net_open_arg a = { .cfg = nc, .name = name };
	char nerr[256];
	struct virtio_net *n = virtio_net_create(&vm->ram, name, mac, net_open, &a,
						 nerr, sizeof(nerr));
	if (!n) {
		snprintf(err, errlen, "virtio-net: %s", nerr);
		return err;
	}
	set_limits(virtio_net_limiter(n, false), &nc->rx);
	set_limits(virtio_net_limiter(n, true), &nc->tx);
	if (add_slot(vm, d, virtio_net_dev(n), net_destroy, n, "virtio-net", err, errlen))
		return err;
	snprintf(d->net_ids[d->nnets], sizeof(d->net_ids[0]), "%s", name);
	d->nets[d->nnets++] = n;
	return NULL;
}

/* ---- virtio-vsock and virtio-balloon ---- */

static void vsock_destroy(void *obj) { virtio_vsock_destroy(obj); }
static void balloon_destroy(void *obj) { virtio_balloon_destroy(obj); }

static const char *add_vsock(struct vm *vm, struct vm_devices *d, const struct vm_config *cfg,
			     size_t k, char *err, size_t errlen)
{
	char derr[256];
	struct virtio_vsock *v = virtio_vsock_create(&vm->ram, cfg->vsock_cid, cfg->vsock_uds,
						     derr, sizeof(derr));
	if (!v) {
		snprintf(err, errlen, "%s", derr);
		return err;
	}
	return add_slot(vm, d, virtio_vsock_dev(v), vsock_destroy, v, "virtio-vsock", err, errlen);
}

static const char *add_balloon(struct vm *vm, struct vm_devices *d, const struct vm_config *cfg,
			       size_t k, char *err, size_t errlen)
{
	struct virtio_balloon_config bc = {
		.target_mib = cfg->balloon_target_mib,
		.deflate_on_oom = cfg->balloon_deflate_on_oom,
		.stats_interval_s = cfg->balloon_stats_interval_s,
		.free_page_hinting = cfg->balloon_free_page_hinting,
		.no_free_page_reporting = cfg->balloon_no_free_page_reporting,
	};
	char derr[256];
	struct virtio_balloon *b = virtio_balloon_create(&vm->ram, &bc, derr, sizeof(derr));
	if (!b) {
		snprintf(err, errlen, "%s", derr);
		return err;
	}
	if (add_slot(vm, d, virtio_balloon_dev(b), balloon_destroy, b, "virtio-balloon", err, errlen))
		return err;
	d->balloon = b;
	return NULL;
}

/* ---- virtio-rng, virtio-9p (one per share), the virtio-input keyboard ---- */

static void rng_destroy(void *obj) { virtio_rng_destroy(obj); }
static void share_destroy(void *obj) { virtio_9p_destroy(obj); }
static void keyboard_destroy(void *obj) { virtio_input_destroy(obj); }

static const char *add_rng(struct vm *vm, struct vm_devices *d, const struct vm_config *cfg,
			   size_t k, char *err, size_t errlen)
{
	char rerr[256];
	struct virtio_rng *r = virtio_rng_create(&vm->ram, rerr, sizeof(rerr));
	if (!r) {
		snprintf(err, errlen, "virtio-rng: %s", rerr);
		return err;
	}
	set_limits(virtio_rng_limiter(r), &cfg->entropy_limiter);
	return add_slot(vm, d, virtio_rng_dev(r), rng_destroy, r, "virtio-rng", err, errlen);
}

static const char *add_share(struct vm *vm, struct vm_devices *d, const struct vm_config *cfg,
			     size_t k, char *err, size_t errlen)
{
	const struct vm_share *sh = &cfg->shares[k];
	char perr[256];
	struct virtio_9p *p = virtio_9p_create(&vm->ram, sh->tag, sh->path, sh->read_only, sh->nodev,
					       perr, sizeof(perr));
	if (!p) {
		snprintf(err, errlen, "virtio-9p: %s", perr);
		return err;
	}
	return add_slot(vm, d, virtio_9p_dev(p), share_destroy, p, "virtio-9p", err, errlen);
}

/* Always present: Ctrl+Alt+Del (SendCtrlAltDel). */
static const char *add_keyboard(struct vm *vm, struct vm_devices *d, const struct vm_config *cfg,
				size_t k, char *err, size_t errlen)
{
	char kerr[256];
	struct virtio_input *kbd = virtio_input_create(&vm->ram, kerr, sizeof(kerr));
	if (!kbd) {
		snprintf(err, errlen, "virtio-input: %s", kerr);
		return err;
	}
	return add_slot(vm, d, virtio_input_dev(kbd), keyboard_destroy, kbd, "virtio-input",
			err, errlen);
}

/* ---- the table ---- */

static size_t n_drives(const struct vm_config *c) { return c->ndrives; }
static size_t n_console(const struct vm_config *c)
{
	return c->virtio_console || c->nports || wants_agent(c);
}
static size_t n_rng(const struct vm_config *c) { return c->rng || c->entropy; }
static size_t n_shares(const struct vm_config *c) { return c->nshares; }
static size_t n_nets(const struct vm_config *c) { return c->nnets; }
static size_t n_vsock(const struct vm_config *c) { return c->vsock; }
static size_t n_balloon(const struct vm_config *c) { return c->balloon; }
static size_t n_one(const struct vm_config *c) { return 1; }

/* Every kind of device, in slot order. A guest's device tree and a
 * snapshot's transport sections name devices by slot, so the order stays
 * as it is (a kind a configuration does not ask for takes no slot). */
static const struct device_kind {
	size_t (*count)(const struct vm_config *cfg);   /* how many cfg asks for */
	/* Make the k-th (0 <= k < count) and put it in the next slot. NULL,
	 * or err naming the device and the problem. */
	const char *(*add)(struct vm *vm, struct vm_devices *d, const struct vm_config *cfg,
			   size_t k, char *err, size_t errlen);
} device_kinds[] = {
	{ n_drives, add_drive },     /* virtio-blk per drive, first: /dev/vda is the first drive */
	{ n_console, add_console },  /* virtio-console: hvc0, named ports, the agent's port */
	{ n_rng, add_rng },          /* virtio-rng */
	{ n_shares, add_share },     /* virtio-9p per share */
	{ n_nets, add_net },         /* virtio-net per interface */
	{ n_vsock, add_vsock },      /* virtio-vsock */
	{ n_balloon, add_balloon },  /* virtio-balloon */
	{ n_one, add_keyboard },     /* virtio-input */
};

const char *vm_devices_create(struct vm *vm, struct vm_devices *d,
			      const struct vm_config *cfg, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	for (size_t t = 0; t < sizeof(device_kinds) / sizeof(device_kinds[0]); t++) {
		const struct device_kind *kind = &device_kinds[t];
		for (size_t k = 0, n = kind->count(cfg); k < n; k++)
			if (kind->add(vm, d, cfg, k, err, errlen))
				return err;
	}
	return NULL;
}

/* SendCtrlAltDel: press Ctrl+Alt+Del on the keyboard; Linux's VT keyboard
 * handler turns it into ctrl_alt_del(), which signals init (the default
 * guest's inittab powers off). -ENODEV when the guest has no virtio-input
 * driver loaded (it never set DRIVER_OK), so nothing would read the keys. */
int vm_request_shutdown(struct vm *vm)
{
	struct vm_devices *d = vm->devices;
	for (unsigned n = 0; d && n < d->nslots; n++) {
		struct virtio_input *kbd = virtio_input_of(d->slot[n].dev);
		if (kbd)
			return virtio_input_send_ctrl_alt_del(kbd);
	}
	return -ENODEV;
}

struct virtio_blk *vm_devices_drive(struct vm_devices *d, size_t index, const char **id)
{
	if (index >= d->ndrives)
		return NULL;
	*id = d->drives[index]->id;
	return d->drives[index]->blk;
}

struct virtio_net *vm_devices_net(struct vm_devices *d, size_t index, const char **id)
{
	if (index >= d->nnets)
		return NULL;
	*id = d->net_ids[index];
	return d->nets[index];
}

uint64_t vm_devices_largest_disk(const struct vm_devices *d)
{
	uint64_t m = 0;
	for (size_t k = 0; k < d->ndrives; k++)
		if (disk_size(d->drives[k]->disk) > m)
			m = disk_size(d->drives[k]->disk);
	return m;
}

struct rate_limiter *vm_devices_drive_limiter(struct vm_devices *d, const char *id)
{
	for (size_t k = 0; k < d->ndrives; k++)
		if (!strcmp(d->drives[k]->id, id))
			return virtio_blk_limiter(d->drives[k]->blk);
	return NULL;
}

int vm_drive_update(struct vm *vm, size_t index, const struct vm_drive *dr,
		    bool path_changed, bool limiter_changed, char *err, size_t errlen)
{
	struct vm_devices *d = vm->devices;
	if (!d || index >= d->ndrives) {
		snprintf(err, errlen, "drive %s: not attached to the running VM", dr->id ? dr->id : "?");
		return -ENOENT;
	}
	struct drive *dv = d->drives[index];
	if (path_changed) {
		/* Opened first, beside the old image: any failure leaves the
		 * drive as it was. */
		struct disk_open_opts o = drive_open_opts(dr);
		struct disk *disk, *old;
		char derr[320];
		int r = disk_open_successor(dv->disk, dr->path, &o, &disk, derr, sizeof(derr));
		if (r < 0) {
			snprintf(err, errlen, "%s", derr);
			return r;
		}
		if (virtio_blk_replace_disk(dv->blk, disk, &old, derr, sizeof(derr))) {
			disk_close(disk);
			snprintf(err, errlen, "%s", derr);
			return -EINVAL;
		}
		dv->disk = disk;
		disk_close(old);
	}
	if (limiter_changed)
		set_limits(virtio_blk_limiter(dv->blk), &dr->limiter);
	return 0;
}

/* The buckets change under the running device: the token bucket has its
 * own lock, and the device is kicked so a frame waiting on the old limits
 * is looked at again at once. */
int vm_net_update(struct vm *vm, size_t index, const struct vm_net *n,
		  bool rx_changed, bool tx_changed, char *err, size_t errlen)
{
	struct vm_devices *d = vm->devices;
	if (!d || index >= d->nnets) {
		snprintf(err, errlen, "interface %s: not attached to the running VM", n->id ? n->id : "?");
		return -ENOENT;
	}
	struct virtio_net *dev = d->nets[index];
	if (rx_changed)
		set_limits(virtio_net_limiter(dev, false), &n->rx);
	if (tx_changed)
		set_limits(virtio_net_limiter(dev, true), &n->tx);
	virtio_net_limits_changed(dev);
	return 0;
}

/* ---- the balloon (PATCH /balloon, /balloon/statistics, GET .../statistics) ---- */

static struct virtio_balloon *balloon_of(struct vm *vm, char *err, size_t errlen)
{
	if (!vm->devices || !vm->devices->balloon) {
		snprintf(err, errlen, "the running VM has no balloon device");
		return NULL;
	}
	return vm->devices->balloon;
}

int vm_balloon_set_target(struct vm *vm, uint32_t target_mib, char *err, size_t errlen)
{
	struct virtio_balloon *b = balloon_of(vm, err, errlen);
	if (!b)
		return -ENODEV;
	return virtio_balloon_set_target(b, target_mib, err, errlen) ? -EINVAL : 0;
}

int vm_balloon_set_stats_interval(struct vm *vm, uint32_t seconds, char *err, size_t errlen)
{
	struct virtio_balloon *b = balloon_of(vm, err, errlen);
	if (!b)
		return -ENODEV;
	return virtio_balloon_set_stats_interval(b, seconds, err, errlen) ? -EINVAL : 0;
}

/* ---- the metadata service on its NICs ---- */

static int mmds_answer(void *ctx, const uint8_t *req, size_t len, bool eof, uint8_t **resp,
		       size_t *resp_len)
{
	return mmds_http(ctx, req, len, eof, resp, resp_len);
}

int vm_devices_attach_mmds(struct vm *vm, const struct vm_config *cfg, struct mmds *m,
			   char *err, size_t errlen)
{
	struct vm_devices *d = vm->devices;
	struct net_mmds_config mc = { .ipv4 = cfg->mmds_ipv4, .http = mmds_answer, .ctx = m };
	for (size_t k = 0; d && k < d->nnets && k < cfg->nnets; k++) {
		if (cfg->nets[k].mmds && virtio_net_set_mmds(d->nets[k], &mc)) {
			snprintf(err, errlen, "interface %s: out of memory for the metadata service",
				 cfg->nets[k].id);
			return -1;
		}
	}
	return 0;
}

int vm_balloon_hint(struct vm *vm, bool start, bool ack_on_stop, char *err, size_t errlen)
{
	struct virtio_balloon *b = balloon_of(vm, err, errlen);
	if (!b)
		return -ENODEV;
	return virtio_balloon_hint(b, start, ack_on_stop, err, errlen) ? -EINVAL : 0;
}

int vm_balloon_hint_status(struct vm *vm, uint32_t *host_cmd, uint32_t *guest_cmd, char *err,
			   size_t errlen)
{
	struct virtio_balloon *b = balloon_of(vm, err, errlen);
	if (!b)
		return -ENODEV;
	return virtio_balloon_hint_status(b, host_cmd, guest_cmd, err, errlen) ? -EINVAL : 0;
}

int vm_balloon_get_stats(struct vm *vm, struct vm_balloon_stats *out, char *err, size_t errlen)
{
	struct virtio_balloon *b = balloon_of(vm, err, errlen);
	if (!b)
		return -ENODEV;
	struct virtio_balloon_info info;
	virtio_balloon_get_info(b, &info);
	memset(out, 0, sizeof(*out));
	out->target_pages = info.target_pages;
	out->actual_pages = info.actual_pages;
	out->inflated_bytes = info.inflated_pages << 12;
	out->reported_bytes = info.reported_bytes;
	/* Both enums follow the virtio tags (5.5.6.3). */
	_Static_assert((int)VM_BALLOON_STATS == (int)VIRTIO_BALLOON_S_NR, "balloon statistic tags");
	out->present = info.present;
	for (unsigned i = 0; i < VM_BALLOON_STATS; i++)
		out->stat[i] = info.stat[i];
	return 0;
}

void vm_devices_destroy(struct vm_devices *d)
{
	for (unsigned n = 0; n < d->nslots; n++)
		d->slot[n].destroy(d->slot[n].obj);
	d->nslots = 0;
	d->ndrives = 0;
	d->console = NULL;
	d->agent = NULL;
	d->balloon = NULL;
}

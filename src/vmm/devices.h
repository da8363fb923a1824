/*
 * A VM's virtio devices: each configured drive, share, NIC, ... becomes a
 * device model with its host backend, behind a virtio-mmio transport in the
 * next free board slot (slot n at BOARD_VIRTIO_BASE + n * BOARD_VIRTIO_SIZE,
 * PLIC source BOARD_IRQ_VIRTIO0 + n). Slots are filled in the fixed order
 * of one table of device kinds in devices.c (drives, console, rng, ...), so
 * /dev/vda is always the first drive; a new kind of device is a maker and
 * a row there, and its snapshot state is its virtio_dev_ops' save/load.
 */
#ifndef SKIFF_VMM_DEVICES_H
#define SKIFF_VMM_DEVICES_H

#include <stddef.h>

#include "base/token_bucket.h"
#include "machine/fdt.h"
#include "monitor/vm.h"
#include "virtio/virtio_mmio.h"
#include "vmm/config.h"

struct vm_slot {
	struct virtio_mmio mmio;
	struct virtio_dev *dev;
	void (*destroy)(void *obj);
	void *obj;
};

struct drive;
struct virtio_balloon;
struct virtio_net;
struct vm_agent;

struct vm_devices {
	struct vm_slot slot[BOARD_VIRTIO_SLOTS];
	unsigned nslots;
	struct board_fdt_virtio fdt[BOARD_VIRTIO_SLOTS];
	struct virtio_console *console;  /* when hvc0 is the console */
	struct drive *drives[VM_MAX_DRIVES];
	size_t ndrives;
	char root_arg[64];               /* "root=/dev/vdX rw" for a root drive */
	struct virtio_net *nets[VM_MAX_NETS]; /* in the configuration's order */
	char net_ids[VM_MAX_NETS][40];
	size_t nnets;
	struct virtio_balloon *balloon;  /* when configured: target and statistics */
	struct vm_agent *agent;          /* the guest agent channel (src/vmm/agent.h), or NULL */
};

/* Create every device the configuration names and put it on the bus.
 * NULL on success, else err names the device and the problem. */
const char *vm_devices_create(struct vm *vm, struct vm_devices *d,
			      const struct vm_config *cfg, char *err, size_t errlen);
/* The rate limits of drive `id`, to change them at run time; NULL if there
 * is no such drive. */
struct rate_limiter *vm_devices_drive_limiter(struct vm_devices *d, const char *id);
/* Drive `index` (in configuration order) and its id; NULL past the last. */
struct virtio_blk *vm_devices_drive(struct vm_devices *d, size_t index, const char **id);
/* The same for NICs (the id is the interface id, or netN without one). */
struct virtio_net *vm_devices_net(struct vm_devices *d, size_t index, const char **id);
/* The largest virtual size of the VM's disks, in bytes (0 without any). */
uint64_t vm_devices_largest_disk(const struct vm_devices *d);
/* Stop the devices' I/O threads and free them (after the harts stopped). */
void vm_devices_destroy(struct vm_devices *d);

#endif

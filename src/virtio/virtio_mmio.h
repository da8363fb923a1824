/*
 * The virtio-mmio transport, version 2 ("modern") only: virtio 1.2 section
 * 4.2.2. One 0x200-byte register window per device (control registers below
 * 0x100, the device's configuration space from 0x100), placed by the board
 * at BOARD_VIRTIO_BASE + n * BOARD_VIRTIO_SIZE with PLIC source
 * BOARD_IRQ_VIRTIO0 + n. The legacy version 1 layout is not offered, and
 * drivers must accept VIRTIO_F_VERSION_1.
 *
 * The interrupt is level triggered: the line is high while InterruptStatus
 * is non-zero.
 *
 * Device tree node (the board's fdt code writes it):
 *   virtio_mmio@<addr> { compatible = "virtio,mmio"; reg = <addr size>;
 *                        interrupts = <irq>; interrupt-parent = <&plic>; }
 */
#ifndef SKIFF_VIRTIO_VIRTIO_MMIO_H
#define SKIFF_VIRTIO_VIRTIO_MMIO_H

#include <stddef.h>
#include <stdint.h>

#include "machine/bus.h"
#include "virtio/virtio.h"

/* Register offsets (section 4.2.2, table "MMIO Device Register Layout"). */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_VERSION             0x004
#define VIRTIO_MMIO_DEVICE_ID           0x008
#define VIRTIO_MMIO_VENDOR_ID           0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW    0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH   0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW    0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define VIRTIO_MMIO_SHM_SEL             0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW         0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH        0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW        0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH       0x0bc
#define VIRTIO_MMIO_QUEUE_RESET         0x0c0
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100

#define VIRTIO_MMIO_MAGIC   0x74726976u   /* "virt" */
/* skiff's vendor id: "SKIF" read as a little-endian 32-bit word. */
#define VIRTIO_MMIO_VENDOR  0x46494b53u

struct virtio_mmio {
	struct virtio_dev *dev;
	/* Selector registers; dev->lock protects them. */
	uint32_t device_features_sel, driver_features_sel, queue_sel, shm_sel;
};

/* Attach the transport to a device and its interrupt line. Nothing is
 * allocated: embed struct virtio_mmio anywhere that outlives the bus region.
 * Then: mmio_bus_add(bus, base, BOARD_VIRTIO_SIZE, &virtio_mmio_ops, t, name). */
void virtio_mmio_init(struct virtio_mmio *t, struct virtio_dev *dev, const struct irq_line *irq);

/* Snapshots: the transport, the device's common state and queues (section
 * "VMIO") and its own state (section "VDEV"), both with instance `slot`.
 * Save runs with the device quiesced (virtio_dev_quiesce) and returns 0,
 * or -1 with a message when the device cannot be saved now. Load goes into a freshly made device of the same kind; 0, or -1
 * with a message (the device is then unusable: destroy the VM). */
int virtio_mmio_save(struct virtio_mmio *t, uint32_t slot, struct snap_writer *w,
		     char *err, size_t errlen);
int virtio_mmio_load(struct virtio_mmio *t, uint32_t slot, struct snap_file *f,
		     char *err, size_t errlen);
/* The host side's state (section "VHST", instance `slot`) of a device
 * with save_host/load_host; nothing for others. No device lock held:
 * save before quiescing, load after virtio_mmio_load. A snapshot without
 * the section (from before it existed) loads nothing: the host side starts
 * fresh. 0, or -1 with a message. */
int virtio_host_save(struct virtio_dev *dev, uint32_t slot, struct snap_writer *w,
		     char *err, size_t errlen);
int virtio_host_load(struct virtio_dev *dev, uint32_t slot, struct snap_file *f,
		     char *err, size_t errlen);

/* Register access for the MMIO bus; the `dev` argument is a struct virtio_mmio *.
 * Control registers take aligned 32-bit accesses only (4.2.2.2); others
 * fault. The configuration space takes 1-, 2-, 4- and 8-byte accesses. */
extern const struct mmio_ops virtio_mmio_ops;

#endif

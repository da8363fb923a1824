/*
 * virtio-input keyboard (virtio 1.2 section 5.8, device id 18) whose one job
 * is to let the host press Ctrl+Alt+Del in the guest: RISC-V boards have no
 * i8042, so this is how a "please shut down" request (the API's
 * SendCtrlAltDel) reaches Linux's VT keyboard handler, which calls
 * ctrl_alt_del() and so signals init.
 *
 * The device describes itself as a plain keyboard (EV_KEY with the key codes
 * 1..127) so Linux's keyboard handler binds to it. Events the host sends wait
 * in a small ring until the driver offers eventq buffers; the statusq (LED
 * updates from the driver) is consumed and ignored.
 */
#ifndef SKIFF_VIRTIO_INPUT_H
#define SKIFF_VIRTIO_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "base/gram.h"
#include "virtio/virtio.h"

#define VIRTIO_ID_INPUT 18

/* Config space selectors (5.8.4). */
#define VIRTIO_INPUT_CFG_UNSET     0x00
#define VIRTIO_INPUT_CFG_ID_NAME   0x01
#define VIRTIO_INPUT_CFG_ID_SERIAL 0x02
#define VIRTIO_INPUT_CFG_ID_DEVIDS 0x03
#define VIRTIO_INPUT_CFG_PROP_BITS 0x10
#define VIRTIO_INPUT_CFG_EV_BITS   0x11
#define VIRTIO_INPUT_CFG_ABS_INFO  0x12

/* Config space layout: select, subsel, size, 5 reserved bytes, then the
 * 128-byte union (5.8.4). */
#define VIRTIO_INPUT_CFG_SELECT 0
#define VIRTIO_INPUT_CFG_SUBSEL 1
#define VIRTIO_INPUT_CFG_SIZE   2
#define VIRTIO_INPUT_CFG_DATA   8
#define VIRTIO_INPUT_CFG_BYTES  (8 + 128)

/* Linux input event types and codes used here (include/uapi/linux/
 * input-event-codes.h; virtio-input carries them unchanged, 5.8.6). */
#define INPUT_EV_SYN 0x00
#define INPUT_EV_KEY 0x01
#define INPUT_SYN_REPORT 0
#define INPUT_KEY_LEFTCTRL 29
#define INPUT_KEY_LEFTALT  56
#define INPUT_KEY_DELETE   111
#define INPUT_BUS_VIRTUAL  0x06

#define VIRTIO_INPUT_NAME   "skiff keyboard"
#define VIRTIO_INPUT_SERIAL "skiff-kbd-0"
#define VIRTIO_INPUT_VENDOR  0x736b   /* "sk" */
#define VIRTIO_INPUT_PRODUCT 0x0001
#define VIRTIO_INPUT_VERSION 0x0001

/* Events that can wait for eventq buffers (a Ctrl+Alt+Del is 8). */
#define VIRTIO_INPUT_PENDING 64

/* One event as it lies in an eventq or statusq buffer (5.8.6). */
struct virtio_input_event {
	uint16_t type;
	uint16_t code;
	uint32_t value;
};

struct virtio_input;

/* Create the keyboard and start its I/O thread. NULL with a message in err. */
struct virtio_input *virtio_input_create(struct gram *ram, char *err, size_t errlen);
/* Stop the I/O thread and free the device (after the vCPUs stopped). */
void virtio_input_destroy(struct virtio_input *in);
/* The common device, for virtio_mmio_init(). */
struct virtio_dev *virtio_input_dev(struct virtio_input *in);
/* The keyboard behind a common device, or NULL if `dev` is another kind. */
struct virtio_input *virtio_input_of(struct virtio_dev *dev);

/* Press and release Ctrl+Alt+Del: LEFTCTRL, LEFTALT, DELETE down, SYN, then
 * DELETE, LEFTALT, LEFTCTRL up, SYN, delivered in order on the I/O thread as
 * the driver offers buffers. Any thread. 0; -ENODEV if the guest driver has
 * not set DRIVER_OK (nobody would read the keys); -ENOSPC if too many events
 * are still waiting for buffers (the whole sequence is then dropped, never a
 * part of it). */
int virtio_input_send_ctrl_alt_del(struct virtio_input *in);
/* Queue arbitrary events as one group (all or none), same rules. */
int virtio_input_send(struct virtio_input *in, const struct virtio_input_event *ev, size_t n);
/* Events still waiting for eventq buffers. */
size_t virtio_input_pending(struct virtio_input *in);

#endif

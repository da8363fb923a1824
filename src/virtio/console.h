/*
 * virtio-console with VIRTIO_CONSOLE_F_MULTIPORT (virtio 1.2 section 5.3).
 * Port 0 is the guest console hvc0 (boot with console=hvc0); further ports
 * carry a name (VIRTIO_CONSOLE_PORT_NAME) and show up in the guest as
 * /dev/virtio-ports/<name>, e.g. for a guest agent. A device for named
 * ports only announces no port 0 (no_console). A driver without MULTIPORT
 * gets port 0 alone, as a plain console.
 *
 * Output: whatever the guest writes to a port is handed to that port's
 * output callback, on the device's I/O thread. A host side that cannot keep
 * up says so through output_busy: the port's writes then wait in its
 * transmitq (the guest's writers block) until virtio_console_output_ready().
 * Input: the host pushes bytes with virtio_console_input() from any thread;
 * they wait in a per-port buffer until the guest has opened the port and
 * offered receive buffers.
 */
#ifndef SKIFF_VIRTIO_CONSOLE_H
#define SKIFF_VIRTIO_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/gram.h"
#include "virtio/virtio.h"

/* Ports per device: (ports + 1) * 2 queues must fit VIRTIO_MAX_QUEUES. */
#define VIRTIO_CONSOLE_MAX_PORTS 31
/* Longest port name. */
#define VIRTIO_CONSOLE_NAME_MAX 127
/* Host input buffered per port before virtio_console_input() pushes back. */
#define VIRTIO_CONSOLE_INBUF (64u * 1024)

struct virtio_console_port_config {
	/* Port 0: NULL (it is the console). Other ports: a non-empty name of
	 * at most VIRTIO_CONSOLE_NAME_MAX bytes, e.g. "org.skiff.agent.0". */
	const char *name;
	/* Port 0 only: the VM has no console here. A MULTIPORT driver is then
	 * never told of port 0 (no PORT_ADD), so the guest gets no hvc0 and
	 * starts no getty on it, as with QEMU's virtio-serial and no
	 * virtconsole; a driver without MULTIPORT still gets it, its only port. */
	bool no_console;
	/* The guest wrote bytes to the port. Called on the device's I/O
	 * thread, possibly several times per guest write; must not call
	 * virtio_console_destroy(). May be NULL (output dropped). */
	void (*output)(void *ctx, const uint8_t *buf, size_t n);
	/* Optional: after virtio_console_input() took fewer bytes than
	 * offered, the buffer drained to half full or less. Called on the I/O
	 * thread without the console's lock: it may push more input. */
	void (*rx_space)(void *ctx);
	/* Optional: the guest opened (true) or closed (false) the port. Same
	 * thread and lock rules as rx_space. */
	void (*guest_open)(void *ctx, bool open);
	/* Optional: true while the host wants no more output from the port.
	 * Asked on the I/O thread before each guest write is taken (one write
	 * may still arrive after it turned true); must not block or call into
	 * the console. Once it would say false again, the host calls
	 * virtio_console_output_ready(). */
	bool (*output_busy)(void *ctx);
	void *ctx;
};

struct virtio_console;

/* ports[0] is the console; nports is 1..VIRTIO_CONSOLE_MAX_PORTS. The
 * configs are copied (names included). Starts the I/O thread. NULL with a
 * message in err. */
struct virtio_console *virtio_console_create(struct gram *ram,
					     const struct virtio_console_port_config *ports,
					     unsigned nports, char *err, size_t errlen);
void virtio_console_destroy(struct virtio_console *c);
struct virtio_dev *virtio_console_dev(struct virtio_console *c);

/* Host input for port `port`: buffers up to n bytes and returns how many it
 * took (fewer when the port's buffer is full, 0 for a bad port). Thread-safe. */
size_t virtio_console_input(struct virtio_console *c, unsigned port, const void *buf, size_t n);

/* The host can take output from `port` again (see output_busy). Any
 * thread. */
void virtio_console_output_ready(struct virtio_console *c, unsigned port);

/* Whether the guest has the port open (port 0: the console is up). */
bool virtio_console_guest_open(struct virtio_console *c, unsigned port);

#endif

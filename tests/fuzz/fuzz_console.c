/*
 * libFuzzer target for virtio-console's control protocol and port data
 * (src/virtio/console.c, virtio 1.2 5.3.6.2): the control messages a
 * driver sends (DEVICE_READY, PORT_READY, PORT_OPEN, and anything else,
 * for any port id, too short or too long), control receive buffers of any
 * size, host input for each port, guest output, and driver resets with and
 * without MULTIPORT, played by a small driver (virtio_driver.h) through the
 * virtio-mmio transport against the real device and its I/O thread.
 *
 * Input: a list of steps, each a byte choosing what happens and the bytes
 * it needs; the last byte's top bit makes a device without a console (no
 * port 0 for a MULTIPORT driver). What the device gives back is checked:
 * control messages name an existing, announced port and one of the events
 * a device sends, PORT_NAME carries
 * that port's name; each port's received data is the host's input in
 * order (after a reset, from some later point of it); each port's output
 * is what the guest sent on it, in order; used lengths never exceed the
 * buffer offered (virtio_driver.c).
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "virtio_driver.h"
#include "virtio/console.h"
#include "virtio/virtio.h"

#define NPORTS 3
#define LOG_MAX (64u * 1024)
#define MAX_STEPS 200

/* Control events (5.3.6.2). */
#define EV_PORT_ADD 1
#define EV_CONSOLE_PORT 4
#define EV_PORT_OPEN 6
#define EV_PORT_NAME 7

static const char *const names[NPORTS] = { NULL, "org.qemu.guest_agent.0", "data" };
static const unsigned rxq[NPORTS] = { 0, 4, 6 }, txq[NPORTS] = { 1, 5, 7 };

/* One direction of one port: what was sent, and how far the other side's
 * copy has come. After a reset chains in flight may be lost: from then on
 * each piece must come later in order, gaps allowed (the earliest match is
 * taken, which never misses an order that exists). */
struct stream {
	uint8_t sent[LOG_MAX];
	size_t len, seen;
	bool gaps;
	/* Output only: the driver, whose rings the input may have taken
	 * over (then the device may send whatever guest RAM holds). */
	const struct fuzz_driver *d;
};

struct state {
	struct stream in[NPORTS];    /* host input -> guest */
	struct stream out[NPORTS];   /* guest output -> host */
	struct fuzz_driver d;
	struct virtio_console *con;
	bool no_console;             /* port 0 is not announced (named ports only) */
};

static void stream_add(struct stream *s, const uint8_t *p, size_t n)
{
	if (n > LOG_MAX - s->len)
		n = LOG_MAX - s->len;
	memcpy(s->sent + s->len, p, n);
	s->len += n;
}

/* The other side got p[0..n): it must come next, or later after a reset. */
static void stream_got(struct stream *s, const uint8_t *p, size_t n)
{
	if (!n)
		return;
	if (s->len == LOG_MAX)
		return;   /* the log is full: no more checking */
	if (s->gaps)
		while (s->seen + n <= s->len && memcmp(s->sent + s->seen, p, n))
			s->seen++;
	if (s->seen + n > s->len || memcmp(s->sent + s->seen, p, n)) {
		fprintf(stderr, "fuzz_console: %zu bytes arrived that were not sent next\n", n);
		abort();
	}
	s->seen += n;
}

static void on_output(void *ctx, const uint8_t *buf, size_t n)
{
	struct stream *s = ctx;
	if (!s->d->untrusted)
		stream_got(s, buf, n);
}

static void reset_streams(struct state *s)
{
	for (unsigned p = 0; p < NPORTS; p++)
		s->in[p].gaps = s->out[p].gaps = true;
}

static void check_control(const uint8_t *m, long len, bool no_console)
{
	if (len < 8)
		abort();   /* the device writes whole messages only */
	uint32_t id;
	uint16_t event, value;
	memcpy(&id, m, 4);
	memcpy(&event, m + 4, 2);
	memcpy(&value, m + 6, 2);
	if (id >= NPORTS || (id == 0 && no_console))
		abort();   /* a port that does not exist, or port 0 not announced */
	switch (event) {
	case EV_PORT_ADD:
	case EV_PORT_OPEN:
		if (len != 8)
			abort();
		break;
	case EV_CONSOLE_PORT:
		if (id != 0 || len != 8)
			abort();
		break;
	case EV_PORT_NAME:
		if (!names[id] || (size_t)len != 8 + strlen(names[id]) ||
		    memcmp(m + 8, names[id], strlen(names[id])))
			abort();
		break;
	default:
		abort();
	}
}

static void step(struct state *s, struct cursor *c, uint8_t what)
{
	struct fuzz_driver *d = &s->d;
	uint8_t buf[FD_BUF];
	unsigned port = (what >> 3) % NPORTS;
	switch (what & 7) {
	case 0: {   /* a control message; sometimes cut short or long */
		uint8_t m[16];
		uint32_t id = what & 0x80 ? (uint32_t)take(c, 4) : (uint32_t)take(c, 1) % 4;
		uint16_t event = (uint16_t)take(c, 1) % 9, value = (uint16_t)take(c, 1) % 3;
		memcpy(m, &id, 4);
		memcpy(m + 4, &event, 2);
		memcpy(m + 6, &value, 2);
		memset(m + 8, 0xee, 8);
		size_t len = what & 0x40 ? (size_t)take(c, 1) % 17 : 8;
		fd_send(d, 3, m, len, 0);
		while (fd_reap(d, 3, buf, sizeof(buf)) >= 0)
			;
		break;
	}
	case 1: {   /* control receive buffers; read what came */
		size_t len = what & 0x80 ? (size_t)take(c, 1) % 40 : 8 + 127;
		fd_send(d, 2, NULL, 0, len);
		long n;
		while ((n = fd_reap(d, 2, buf, sizeof(buf))) >= 0)
			if (!d->untrusted && d->reaped_room >= 8 + 22)   /* room for any message */
				check_control(buf, n, s->no_console);
		break;
	}
	case 2: {   /* host input */
		size_t n = (size_t)take(c, 1);
		uint8_t in[256];
		for (size_t i = 0; i < n; i++)
			in[i] = (uint8_t)take(c, 1);
		size_t took = virtio_console_input(s->con, what & 0x80 ? 7 : port, in, n);
		if (took > n || ((what & 0x80) && took))
			abort();
		if (!(what & 0x80))
			stream_add(&s->in[port], in, took);
		fd_settle(d);
		break;
	}
	case 3: {   /* receive buffers for a port; check what arrived */
		fd_send(d, rxq[port], NULL, 0, 1 + (size_t)take(c, 1) % 64);
		long n;
		while ((n = fd_reap(d, rxq[port], buf, sizeof(buf))) >= 0)
			stream_got(&s->in[port], buf, (size_t)n);
		break;
	}
	case 4: {   /* guest output */
		size_t n = 1 + (size_t)take(c, 1) % 64;
		uint8_t out[64];
		for (size_t i = 0; i < n; i++)
			out[i] = (uint8_t)take(c, 1);
		/* Logged first: the device takes it before fd_send returns. */
		size_t before = s->out[port].len;
		stream_add(&s->out[port], out, n);
		if (!fd_send(d, txq[port], out, n, 0))
			s->out[port].len = before;
		while (fd_reap(d, txq[port], buf, sizeof(buf)) >= 0)
			;
		break;
	}
	case 5:     /* a driver (re)starts, with or without MULTIPORT */
		fd_bring_up(d, what & 0x80 ? ~0ull : ~2ull, 2 * (NPORTS + 1));
		reset_streams(s);
		break;
	case 6: {   /* any register write, as a confused driver */
		uint64_t off = (take(c, 1) * 4) & 0xff;
		if (off >= VIRTIO_MMIO_QUEUE_NUM && off != VIRTIO_MMIO_STATUS &&
		    off != VIRTIO_MMIO_QUEUE_NOTIFY && off != VIRTIO_MMIO_INTERRUPT_ACK)
			d->untrusted = true;   /* the queues may no longer be the driver's */
		fd_write(d, off, (uint32_t)take(c, 4));
		fd_settle(d);
		if (off == VIRTIO_MMIO_STATUS || off == VIRTIO_MMIO_QUEUE_READY)
			reset_streams(s);
		break;
	}
	case 7: {   /* config space: cols, rows, max_nr_ports */
		uint64_t v;
		unsigned size = 1u << (what >> 6);
		virtio_mmio_ops.read(&d->mmio, VIRTIO_MMIO_CONFIG + take(c, 1) % 16, size, &v);
		virtio_mmio_ops.read(&d->mmio, VIRTIO_MMIO_CONFIG + 4, 4, &v);
		if (v != NPORTS)
			abort();
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state *s = calloc(1, sizeof(*s));
	if (!s || fd_init_ram(&s->d))
		abort();   /* the harness itself, not guest input */
	struct virtio_console_port_config ports[NPORTS];
	memset(ports, 0, sizeof(ports));
	for (unsigned p = 0; p < NPORTS; p++) {
		ports[p].name = names[p];
		ports[p].output = on_output;
		ports[p].ctx = &s->out[p];
		s->out[p].d = &s->d;
	}
	/* The last byte's top bit: a device without a console (port 0 never
	 * announced to a MULTIPORT driver, its messages ignored). */
	s->no_console = ports[0].no_console = size && (data[size - 1] & 0x80);
	char err[256];
	struct virtio_console *con = s->con = virtio_console_create(&s->d.ram, ports, NPORTS, err, sizeof(err));
	if (!con) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	fd_attach(&s->d, virtio_console_dev(con));
	struct cursor c = { data, size };
	fd_bring_up(&s->d, ~0ull, 2 * (NPORTS + 1));
	for (int n = 0; c.n && n < MAX_STEPS; n++)
		step(s, &c, (uint8_t)take(&c, 1));
	virtio_console_destroy(con);
	fd_destroy_ram(&s->d);
	free(s);
	return 0;
}

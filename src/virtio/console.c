/*
 * virtio-console device model (virtio 1.2 section 5.3) with MULTIPORT.
 *
 * Queues (5.3.2): 0/1 are port 0's receiveq/transmitq, 2/3 the control
 * receiveq/transmitq, then 4 + 2(p-1) and 5 + 2(p-1) for port p >= 1. All
 * (nports + 1) * 2 are offered; a driver without MULTIPORT uses 0 and 1.
 *
 * Control protocol (5.3.6.2), as Linux drives it:
 *   driver DEVICE_READY(1) -> device PORT_ADD(p) for every port (not
 *                             port 0 when there is no console: its
 *                             messages are then ignored)
 *   driver PORT_READY(p,1) -> device CONSOLE_PORT(0,1) for port 0,
 *                             PORT_NAME(p) + name for named ports,
 *                             PORT_OPEN(p,1): the host side is always open
 *   driver PORT_OPEN(p,v)  -> the guest opened/closed the port; host input
 *                             is only delivered to an open port (Linux
 *                             discards data for closed ports).
 * Messages to the driver wait in a bounded queue until it offers control
 * receive buffers.
 *
 * Locking: c->lock (innermost of the device's locks, under a queue lock)
 * protects ports' buffers and state and the control message queue. Host
 * callbacks run on the I/O thread without c->lock.
 */
#include "virtio/console.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/snapfile.h"

#define VIRTIO_CONSOLE_F_MULTIPORT 1

/* Control events (5.3.6.2). */
#define CTRL_DEVICE_READY 0
#define CTRL_PORT_ADD     1
#define CTRL_PORT_REMOVE  2
#define CTRL_PORT_READY   3
#define CTRL_CONSOLE_PORT 4
#define CTRL_RESIZE       5
#define CTRL_PORT_OPEN    6
#define CTRL_PORT_NAME    7

#define Q_CTRL_RX 2
#define Q_CTRL_TX 3
#define CON_QUEUE_SIZE 64
#define CTRL_QUEUE_SIZE 32

struct ctrl_msg {             /* struct virtio_console_control */
	uint32_t id;
	uint16_t event;
	uint16_t value;
};

struct con_port {
	struct virtio_console_port_config cfg;
	char *name;
	uint8_t *in;                /* ring buffer of VIRTIO_CONSOLE_INBUF bytes */
	size_t in_head, in_len;
	bool in_was_full;           /* the host was refused: tell it about room */
	bool ready;                 /* the driver sent PORT_READY(1) */
	bool guest_open;
	bool open_reported;         /* guest_open as last told to the host */
};

struct virtio_console {
	struct virtio_dev dev;      /* first: container_of is a cast */
	pthread_mutex_t lock;
	unsigned nports;
	_Atomic bool multiport;     /* negotiated */
	struct con_port ports[VIRTIO_CONSOLE_MAX_PORTS];
	bool no_console;            /* port 0 is not announced to a MULTIPORT driver */
	struct ctrl_msg *cq;        /* messages waiting for the driver */
	unsigned cq_head, cq_len, cq_cap;
	bool cq_overflowed;
	uint8_t config[12];         /* cols, rows, max_nr_ports, emerg_wr */
};

static unsigned rx_queue(unsigned port) { return port ? 2 + 2 * port : 0; }
static unsigned tx_queue(unsigned port) { return rx_queue(port) + 1; }
static bool is_rx_queue(unsigned q) { return q == 0 || (q >= 4 && !(q & 1)); }
static unsigned queue_port(unsigned q) { return q < 2 ? 0 : q / 2 - 1; }

/* c->lock held. */
static bool deliverable(struct virtio_console *c, unsigned p)
{
	if (!atomic_load(&c->multiport))
		return p == 0;
	return c->ports[p].guest_open;
}

/* c->lock held. */
static void ctrl_send(struct virtio_console *c, uint32_t id, uint16_t event, uint16_t value)
{
	if (c->cq_len == c->cq_cap) {
		/* Only a driver repeating itself gets here. */
		if (!c->cq_overflowed && !c->dev.quiet)
			fprintf(stderr, "skiff: virtio-console: control messages dropped (driver not reading)\n");
		c->cq_overflowed = true;
		return;
	}
	c->cq[(c->cq_head + c->cq_len) % c->cq_cap] =
		(struct ctrl_msg){ .id = id, .event = event, .value = value };
	c->cq_len++;
}

/* Control transmitq: messages from the driver. */
static uint32_t ctrl_tx_request(struct virtio_dev *dev, struct virtq *vq, struct virtq_req *req)
{
	(void)vq;
	struct virtio_console *c = (struct virtio_console *)dev;
	struct ctrl_msg m;
	if (virtq_req_read(req, 0, &m, sizeof(m)) != sizeof(m))
		return 0;   /* too short to mean anything: ignore */

	bool kick_ctrl = false, open_changed = false;
	unsigned kick_rx = UINT32_MAX;
	pthread_mutex_lock(&c->lock);
	if (m.event == CTRL_DEVICE_READY) {
		if (m.value == 1) {
			for (unsigned p = c->no_console ? 1 : 0; p < c->nports; p++)
				ctrl_send(c, p, CTRL_PORT_ADD, 1);
			kick_ctrl = true;
		}
	} else if (m.id < c->nports && !(m.id == 0 && c->no_console)) {
		struct con_port *port = &c->ports[m.id];
		switch (m.event) {
		case CTRL_PORT_READY:
			port->ready = m.value == 1;
			if (port->ready) {
				if (m.id == 0)
					ctrl_send(c, 0, CTRL_CONSOLE_PORT, 1);
				if (port->name)
					ctrl_send(c, m.id, CTRL_PORT_NAME, 1);
				ctrl_send(c, m.id, CTRL_PORT_OPEN, 1);
				kick_ctrl = true;
			}
			break;
		case CTRL_PORT_OPEN:
			if (port->guest_open != (m.value != 0)) {
				port->guest_open = m.value != 0;
				open_changed = true;
			}
			if (port->guest_open && port->in_len)
				kick_rx = m.id;
			break;
		default:
			break;   /* nothing else is sent by drivers */
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (kick_ctrl)
		virtio_dev_kick(dev, Q_CTRL_RX);
	if (kick_rx != UINT32_MAX)
		virtio_dev_kick(dev, rx_queue(kick_rx));
	if (open_changed)
		virtio_dev_schedule_event(dev);
	return 0;
}

/* Control receiveq: deliver queued messages into the driver's buffers. */
static void ctrl_rx(struct virtio_console *c, struct virtq *vq)
{
	struct virtq_req *req = c->dev.req;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		int r = 0;
		while (c->cq_len && (r = virtq_pop(vq, req)) > 0) {
			struct ctrl_msg m = c->cq[c->cq_head];
			uint32_t n = (uint32_t)virtq_req_write(req, 0, &m, sizeof(m));
			if (m.event == CTRL_PORT_NAME && n == sizeof(m)) {
				const char *name = c->ports[m.id].name;
				n += (uint32_t)virtq_req_write(req, sizeof(m), name, strlen(name));
			}
			virtq_push(vq, req, n);
			c->cq_head = (c->cq_head + 1) % c->cq_cap;
			c->cq_len--;
		}
		if (r < 0 || !virtq_enable_notify(vq) || !c->cq_len)
			break;
	}
	pthread_mutex_unlock(&c->lock);
	virtio_dev_used(&c->dev, vq);
}

/* A port's transmitq: guest output. */
static uint32_t port_tx_request(struct virtio_dev *dev, struct virtq *vq, struct virtq_req *req)
{
	struct virtio_console *c = (struct virtio_console *)dev;
	unsigned p = queue_port(vq->index);
	if (p >= c->nports || !c->ports[p].cfg.output)
		return 0;
	for (unsigned k = 0; k < req->nout; k++)
		c->ports[p].cfg.output(c->ports[p].cfg.ctx, req->iov[k].iov_base, req->iov[k].iov_len);
	return 0;
}

/* A transmitq whose host side may be busy: virtio_dev_serve's loop, asking
 * before each request. A busy port's requests stay in the queue, with
 * notifications off: virtio_console_output_ready() kicks it. */
static void port_tx(struct virtio_console *c, const struct con_port *port, struct virtq *vq)
{
	struct virtq_req *req = c->dev.req;
	unsigned budget = vq->size;
	for (;;) {
		virtq_disable_notify(vq);
		int r = 0;
		bool busy;
		while (!(busy = port->cfg.output_busy(port->cfg.ctx)) && (r = virtq_pop(vq, req)) > 0) {
			port_tx_request(&c->dev, vq, req);
			virtq_push(vq, req, 0);
			if (--budget == 0) {
				virtio_dev_used(&c->dev, vq);
				virtio_dev_kick(&c->dev, vq->index);
				return;
			}
		}
		if (busy || r < 0 || !virtq_enable_notify(vq))
			break;
	}
	virtio_dev_used(&c->dev, vq);
}

/* A port's receiveq: host input into the driver's buffers. */
static void port_rx(struct virtio_console *c, unsigned p, struct virtq *vq)
{
	struct virtq_req *req = c->dev.req;
	struct con_port *port = &c->ports[p];
	unsigned budget = vq->size;
	bool tell_space = false, more = false;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		int r = 0;
		while (deliverable(c, p) && port->in_len && (r = virtq_pop(vq, req)) > 0) {
			size_t room = req->in_len < port->in_len ? (size_t)req->in_len : port->in_len;
			size_t done = 0;
			while (done < room) {   /* at most two pieces of the ring */
				size_t first = VIRTIO_CONSOLE_INBUF - port->in_head;
				size_t n = room - done < first ? room - done : first;
				virtq_req_write(req, done, port->in + port->in_head, n);
				port->in_head = (port->in_head + n) % VIRTIO_CONSOLE_INBUF;
				port->in_len -= n;
				done += n;
			}
			virtq_push(vq, req, (uint32_t)done);
			if (port->in_was_full && port->in_len <= VIRTIO_CONSOLE_INBUF / 2) {
				port->in_was_full = false;
				tell_space = true;
			}
			if (--budget == 0) {
				more = true;
				break;
			}
		}
		if (more || r < 0 || !virtq_enable_notify(vq) || !deliverable(c, p) || !port->in_len)
			break;
	}
	pthread_mutex_unlock(&c->lock);
	virtio_dev_used(&c->dev, vq);
	if (more)
		virtio_dev_kick(&c->dev, vq->index);
	if (tell_space && port->cfg.rx_space)
		port->cfg.rx_space(port->cfg.ctx);
}

static void con_process(struct virtio_dev *dev, struct virtq *vq)
{
	struct virtio_console *c = (struct virtio_console *)dev;
	unsigned q = vq->index;
	if (q == Q_CTRL_RX || q == Q_CTRL_TX) {
		if (!atomic_load(&c->multiport))
			return;   /* not negotiated: these queues do not exist */
		if (q == Q_CTRL_RX)
			ctrl_rx(c, vq);
		else
			virtio_dev_serve(dev, vq, ctrl_tx_request);
		return;
	}
	unsigned p = queue_port(q);
	if (p >= c->nports || (p > 0 && !atomic_load(&c->multiport)))
		return;
	if (is_rx_queue(q))
		port_rx(c, p, vq);
	else if (c->ports[p].cfg.output_busy)
		port_tx(c, &c->ports[p], vq);
	else
		virtio_dev_serve(dev, vq, port_tx_request);
}

/* I/O thread, no locks: tell the host about ports the guest opened or
 * closed (including closes caused by a device reset). */
static void con_event(struct virtio_dev *dev)
{
	struct virtio_console *c = (struct virtio_console *)dev;
	for (unsigned p = 0; p < c->nports; p++) {
		struct con_port *port = &c->ports[p];
		pthread_mutex_lock(&c->lock);
		bool now = port->guest_open, changed = now != port->open_reported;
		port->open_reported = now;
		pthread_mutex_unlock(&c->lock);
		if (changed && port->cfg.guest_open)
			port->cfg.guest_open(port->cfg.ctx, now);
	}
}

static bool con_features_ok(struct virtio_dev *dev, uint64_t features)
{
	struct virtio_console *c = (struct virtio_console *)dev;
	atomic_store(&c->multiport, (features >> VIRTIO_CONSOLE_F_MULTIPORT) & 1);
	return true;
}

static void con_reset(struct virtio_dev *dev)
{
	struct virtio_console *c = (struct virtio_console *)dev;
	bool changed = false;
	pthread_mutex_lock(&c->lock);
	atomic_store(&c->multiport, false);
	c->cq_head = c->cq_len = 0;
	c->cq_overflowed = false;
	for (unsigned p = 0; p < c->nports; p++) {
		/* Buffered host input survives: it is delivered once the new
		 * driver opens the port. */
		c->ports[p].ready = false;
		if (c->ports[p].guest_open)
			changed = true;
		c->ports[p].guest_open = false;
	}
	pthread_mutex_unlock(&c->lock);
	if (changed)
		virtio_dev_schedule_event(dev);
}

static bool con_config_read(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t *value)
{
	struct virtio_console *c = (struct virtio_console *)dev;
	*value = virtio_config_get(c->config, sizeof(c->config), off, size);
	return true;
}

static bool con_config_write(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t value)
{
	return true;   /* emerg_wr needs EMERG_WRITE, not offered */
}

/* Snapshots: per port its name (checked against the restored VM's), what
 * the driver said (ready, open) and the host input not yet delivered; the
 * control messages still waiting for the driver. The host side starts
 * afresh: it is told once more about every port the guest has open. */
static int con_save(struct virtio_dev *dev, struct snap_writer *w, uint16_t *unpopped,
		 char *err, size_t errlen)
{
	struct virtio_console *c = (struct virtio_console *)dev;
	pthread_mutex_lock(&c->lock);
	snap_put_u32(w, c->nports);
	for (unsigned p = 0; p < c->nports; p++) {
		const struct con_port *port = &c->ports[p];
		snap_put_str(w, port->name);
		snap_put_u8(w, (uint8_t)(port->ready | port->guest_open << 1 | port->in_was_full << 2));
		snap_put_u32(w, (uint32_t)port->in_len);
		for (size_t done = 0; done < port->in_len;) {
			size_t at = (port->in_head + done) % VIRTIO_CONSOLE_INBUF;
			size_t n = VIRTIO_CONSOLE_INBUF - at < port->in_len - done ?
				   VIRTIO_CONSOLE_INBUF - at : port->in_len - done;
			snap_put_bytes(w, port->in + at, n);
			done += n;
		}
	}
	snap_put_u8(w, c->cq_overflowed);
	snap_put_u32(w, c->cq_len);
	for (unsigned k = 0; k < c->cq_len; k++) {
		const struct ctrl_msg *m = &c->cq[(c->cq_head + k) % c->cq_cap];
		snap_put_u32(w, m->id);
		snap_put_u16(w, m->event);
		snap_put_u16(w, m->value);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void con_load(struct virtio_dev *dev, struct snap_reader *r)
{
	struct virtio_console *c = (struct virtio_console *)dev;
	uint32_t n = snap_get_u32(r);
	if (!r->overrun && n != c->nports) {
		snap_reader_fail(r, "%u ports; this VM's virtio-console has %u", n, c->nports);
		return;
	}
	pthread_mutex_lock(&c->lock);
	for (unsigned p = 0; p < n && !r->overrun && !r->invalid; p++) {
		struct con_port *port = &c->ports[p];
		char name[VIRTIO_CONSOLE_NAME_MAX + 1];
		snap_get_str(r, name, sizeof(name));
		uint8_t flags = snap_get_u8(r);
		uint32_t len = snap_get_u32(r);
		if (r->overrun || r->invalid)
			break;
		if (strcmp(name, port->name ? port->name : "")) {
			snap_reader_fail(r, "port %u was named \"%s\", here it is \"%s\"", p, name,
					 port->name ? port->name : "");
			break;
		}
		if ((flags & ~7u) || len > VIRTIO_CONSOLE_INBUF) {
			snap_reader_fail(r, "port %u: bad flags or %u bytes of input", p, len);
			break;
		}
		if (!snap_get_bytes(r, port->in, len))
			break;
		port->in_head = 0;
		port->in_len = len;
		port->ready = flags & 1;
		port->guest_open = flags & 2;
		port->in_was_full = flags & 4;
		port->open_reported = false;   /* the host side is new */
	}
	uint8_t overflowed = snap_get_u8(r);
	uint32_t cq = snap_get_u32(r);
	if (!r->overrun && !r->invalid && (cq > c->cq_cap || overflowed > 1))
		snap_reader_fail(r, "%u control messages waiting (room for %u)", cq, c->cq_cap);
	for (unsigned k = 0; k < cq && !r->overrun && !r->invalid; k++) {
		struct ctrl_msg m = { .id = snap_get_u32(r) };
		m.event = snap_get_u16(r);
		m.value = snap_get_u16(r);
		if (m.id >= c->nports)
			snap_reader_fail(r, "a control message for port %u", m.id);
		c->cq[k] = m;
	}
	c->cq_head = 0;
	c->cq_len = r->overrun || r->invalid ? 0 : cq;
	c->cq_overflowed = overflowed;
	pthread_mutex_unlock(&c->lock);
}

static void con_restored(struct virtio_dev *dev)
{
	virtio_dev_schedule_event(dev);   /* report open ports to the host side */
}

static const struct virtio_dev_ops console_ops = {
	.name = "console",
	.device_id = VIRTIO_ID_CONSOLE,
	.config_read = con_config_read,
	.config_write = con_config_write,
	.features_ok = con_features_ok,
	.queue_process = con_process,
	.reset = con_reset,
	.event = con_event,
	.save_version = 1,
	.save = con_save,
	.load = con_load,
	.restored = con_restored,
};

static void free_ports(struct virtio_console *c)
{
	for (unsigned p = 0; p < VIRTIO_CONSOLE_MAX_PORTS; p++) {
		free(c->ports[p].name);
		free(c->ports[p].in);
	}
	free(c->cq);
}

struct virtio_console *virtio_console_create(struct gram *ram,
					     const struct virtio_console_port_config *ports,
					     unsigned nports, char *err, size_t errlen)
{
	if (nports == 0 || nports > VIRTIO_CONSOLE_MAX_PORTS) {
		snprintf(err, errlen, "virtio-console: %u ports (1..%u supported)",
			 nports, VIRTIO_CONSOLE_MAX_PORTS);
		return NULL;
	}
	for (unsigned p = 1; p < nports; p++) {
		const char *n = ports[p].name;
		if (!n || !*n || strlen(n) > VIRTIO_CONSOLE_NAME_MAX) {
			snprintf(err, errlen, "virtio-console: port %u needs a name of 1..%u bytes",
				 p, VIRTIO_CONSOLE_NAME_MAX);
			return NULL;
		}
		for (unsigned q = 1; q < p; q++) {
			if (!strcmp(n, ports[q].name)) {
				snprintf(err, errlen, "virtio-console: two ports named \"%s\"", n);
				return NULL;
			}
		}
	}
	struct virtio_console *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "virtio-console: out of memory");
		return NULL;
	}
	c->nports = nports;
	c->no_console = ports[0].no_console;
	c->cq_cap = 4 * nports + 8;
	c->cq = calloc(c->cq_cap, sizeof(*c->cq));
	bool oom = !c->cq;
	for (unsigned p = 0; p < nports; p++) {
		c->ports[p].cfg = ports[p];
		c->ports[p].cfg.name = NULL;
		if (p > 0 && !(c->ports[p].name = strdup(ports[p].name)))
			oom = true;
		if (!(c->ports[p].in = malloc(VIRTIO_CONSOLE_INBUF)))
			oom = true;
	}
	if (oom) {
		snprintf(err, errlen, "virtio-console: out of memory");
		free_ports(c);
		free(c);
		return NULL;
	}
	uint32_t max_ports = nports;
	memcpy(c->config + 4, &max_ports, 4);

	unsigned nq = (nports + 1) * 2;
	uint16_t sizes[VIRTIO_MAX_QUEUES];
	for (unsigned q = 0; q < nq; q++)
		sizes[q] = (q == Q_CTRL_RX || q == Q_CTRL_TX) ? CTRL_QUEUE_SIZE : CON_QUEUE_SIZE;
	if (virtio_dev_init(&c->dev, &console_ops, ram, 1ull << VIRTIO_CONSOLE_F_MULTIPORT,
			    nq, sizes, err, errlen)) {
		free_ports(c);
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	if (virtio_dev_start(&c->dev, err, errlen)) {
		virtio_dev_fini(&c->dev);
		pthread_mutex_destroy(&c->lock);
		free_ports(c);
		free(c);
		return NULL;
	}
	return c;
}

void virtio_console_destroy(struct virtio_console *c)
{
	if (!c)
		return;
	virtio_dev_fini(&c->dev);
	pthread_mutex_destroy(&c->lock);
	free_ports(c);
	free(c);
}

struct virtio_dev *virtio_console_dev(struct virtio_console *c)
{
	return &c->dev;
}

size_t virtio_console_input(struct virtio_console *c, unsigned port, const void *buf, size_t n)
{
	if (port >= c->nports)
		return 0;
	struct con_port *pp = &c->ports[port];
	pthread_mutex_lock(&c->lock);
	size_t room = VIRTIO_CONSOLE_INBUF - pp->in_len;
	size_t take = n < room ? n : room;
	size_t done = 0;
	while (done < take) {   /* at most two pieces of the ring */
		size_t tail = (pp->in_head + pp->in_len) % VIRTIO_CONSOLE_INBUF;
		size_t piece = VIRTIO_CONSOLE_INBUF - tail;
		if (piece > take - done)
			piece = take - done;
		memcpy(pp->in + tail, (const uint8_t *)buf + done, piece);
		pp->in_len += piece;
		done += piece;
	}
	if (take < n)
		pp->in_was_full = true;
	pthread_mutex_unlock(&c->lock);
	if (take)
		virtio_dev_kick(&c->dev, rx_queue(port));
	return take;
}

void virtio_console_output_ready(struct virtio_console *c, unsigned port)
{
	if (port < c->nports)
		virtio_dev_kick(&c->dev, tx_queue(port));
}

bool virtio_console_guest_open(struct virtio_console *c, unsigned port)
{
	if (port >= c->nports)
		return false;
	pthread_mutex_lock(&c->lock);
	bool open = deliverable(c, port) && virtio_dev_driver_ok(&c->dev);
	pthread_mutex_unlock(&c->lock);
	return open;
}

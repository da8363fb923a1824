/*
 * virtio-input keyboard (virtio 1.2 section 5.8); see input.h.
 *
 * Queues (5.8.2): 0 is the eventq (device -> driver, one event per buffer),
 * 1 the statusq (driver -> device, e.g. LED state), which is consumed and
 * ignored. No feature bits (5.8.3).
 *
 * Configuration space (5.8.4): the driver writes `select` and `subsel`, the
 * device answers with `size` and the 128-byte union. Every write recomputes
 * the answer; anything not offered answers size 0 (5.8.5.1).
 *
 * Events from the host wait in a ring of VIRTIO_INPUT_PENDING entries until
 * the driver offers eventq buffers; a device reset drops them (a new driver
 * registers a new input device, which should not see half a key sequence
 * meant for the old one).
 *
 * Locking: in->lock protects the ring; it nests inside the eventq's lock
 * (queue processing) and inside dev->lock + all queue locks (reset). The
 * configuration image is only touched under dev->lock (transport).
 */
#include "virtio/input.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/snapfile.h"

#define Q_EVENT  0
#define Q_STATUS 1
#define INPUT_QUEUE_SIZE 64

/* Key codes offered: the ordinary keyboard range (KEY_ESC = 1 .. 127),
 * which is what Linux's VT keyboard handler looks for (any key below
 * BTN_MISC) before it binds to an input device. */
#define KEY_FIRST 1
#define KEY_LAST  127

struct virtio_input {
	struct virtio_dev dev;   /* first: container_of is a cast */

	/* Under dev->lock. */
	uint8_t cfg[VIRTIO_INPUT_CFG_BYTES];

	pthread_mutex_t lock;
	struct virtio_input_event ring[VIRTIO_INPUT_PENDING];
	unsigned head, len;
};

/* ---- configuration space (5.8.4) ---- */

static size_t put_string(uint8_t *data, const char *s)
{
	size_t n = strlen(s);
	if (n > 128)
		n = 128;
	memcpy(data, s, n);   /* no terminating NUL needed: size says the length */
	return n;
}

/* Fill size and the union for the current select/subsel. dev->lock held. */
static void cfg_answer(struct virtio_input *in)
{
	uint8_t *c = in->cfg;
	uint8_t sel = c[VIRTIO_INPUT_CFG_SELECT], sub = c[VIRTIO_INPUT_CFG_SUBSEL];
	uint8_t *data = c + VIRTIO_INPUT_CFG_DATA;
	size_t size = 0;
	memset(c + VIRTIO_INPUT_CFG_SIZE, 0, sizeof(in->cfg) - VIRTIO_INPUT_CFG_SIZE);
	switch (sel) {
	case VIRTIO_INPUT_CFG_ID_NAME:
		if (sub == 0)
			size = put_string(data, VIRTIO_INPUT_NAME);
		break;
	case VIRTIO_INPUT_CFG_ID_SERIAL:
		if (sub == 0)
			size = put_string(data, VIRTIO_INPUT_SERIAL);
		break;
	case VIRTIO_INPUT_CFG_ID_DEVIDS:
		if (sub == 0) {
			uint16_t ids[4] = { htole16(INPUT_BUS_VIRTUAL), htole16(VIRTIO_INPUT_VENDOR),
					    htole16(VIRTIO_INPUT_PRODUCT), htole16(VIRTIO_INPUT_VERSION) };
			memcpy(data, ids, sizeof(ids));
			size = sizeof(ids);
		}
		break;
	case VIRTIO_INPUT_CFG_EV_BITS:
		/* Only EV_KEY; bit n of the bitmap is code n (5.8.4). No
		 * EV_REP: a press is always followed by its release, so
		 * autorepeat would only add timers. */
		if (sub == INPUT_EV_KEY) {
			for (unsigned k = KEY_FIRST; k <= KEY_LAST; k++)
				data[k / 8] |= (uint8_t)(1u << (k % 8));
			size = KEY_LAST / 8 + 1;
		}
		break;
	case VIRTIO_INPUT_CFG_PROP_BITS:   /* no input properties */
	case VIRTIO_INPUT_CFG_ABS_INFO:    /* no absolute axes */
	case VIRTIO_INPUT_CFG_UNSET:
	default:
		break;
	}
	c[VIRTIO_INPUT_CFG_SIZE] = (uint8_t)size;
}

static bool input_config_read(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t *value)
{
	struct virtio_input *in = (struct virtio_input *)dev;
	*value = virtio_config_get(in->cfg, sizeof(in->cfg), off, size);
	return true;
}

static bool input_config_write(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t value)
{
	struct virtio_input *in = (struct virtio_input *)dev;
	/* Only select and subsel are the driver's to write (5.8.5.2: the
	 * driver MUST NOT write to the other fields); other bytes of a wide
	 * write are ignored. */
	bool touched = false;
	for (unsigned i = 0; i < size && i < 8; i++) {
		uint64_t o = (uint64_t)off + i;
		if (o == VIRTIO_INPUT_CFG_SELECT || o == VIRTIO_INPUT_CFG_SUBSEL) {
			in->cfg[o] = (uint8_t)(value >> (8 * i));
			touched = true;
		}
	}
	if (touched)
		cfg_answer(in);
	return true;
}

/* ---- queues ---- */

/* eventq: move waiting events into the driver's buffers, one per buffer
 * (5.8.6.2), in order. */
static void event_fill(struct virtio_input *in, struct virtq *vq)
{
	struct virtq_req *req = in->dev.req;
	unsigned budget = vq->size;
	bool more = false, pushed = false;

	pthread_mutex_lock(&in->lock);
	for (;;) {
		int r = 0;
		while (in->len && (r = virtq_pop(vq, req)) > 0) {
			const struct virtio_input_event *e = &in->ring[in->head];
			struct virtio_input_event le = {
				.type = htole16(e->type), .code = htole16(e->code),
				.value = htole32(e->value),
			};
			uint32_t written = 0;
			/* A buffer too small for an event goes back empty and
			 * the event waits for the next one. */
			if (req->in_len >= sizeof(le) &&
			    virtq_req_write(req, 0, &le, sizeof(le)) == sizeof(le)) {
				written = sizeof(le);
				in->head = (in->head + 1) % VIRTIO_INPUT_PENDING;
				in->len--;
			}
			virtq_push(vq, req, written);
			pushed = true;
			if (--budget == 0) {
				more = in->len != 0;
				break;
			}
		}
		/* Out of buffers with events left: ask to be notified when
		 * the driver adds some, and look once more (2.7.10). */
		if (budget == 0 || r < 0 || !in->len || !virtq_enable_notify(vq))
			break;
	}
	pthread_mutex_unlock(&in->lock);
	if (pushed)
		virtio_dev_used(&in->dev, vq);
	if (more)
		virtio_dev_kick(&in->dev, vq->index);
}

/* statusq: the driver reports LED and similar state; nothing to do with it
 * here, so every buffer is returned as read. */
static uint32_t status_request(struct virtio_dev *dev, struct virtq *vq, struct virtq_req *req)
{
	(void)dev;
	(void)vq;
	(void)req;
	return 0;
}

static void input_process(struct virtio_dev *dev, struct virtq *vq)
{
	struct virtio_input *in = (struct virtio_input *)dev;
	if (vq->index == Q_EVENT)
		event_fill(in, vq);
	else
		virtio_dev_serve(dev, vq, status_request);
}

static void input_reset(struct virtio_dev *dev)
{
	struct virtio_input *in = (struct virtio_input *)dev;
	pthread_mutex_lock(&in->lock);
	in->head = in->len = 0;
	pthread_mutex_unlock(&in->lock);
	memset(in->cfg, 0, sizeof(in->cfg));
	cfg_answer(in);
}

/* Snapshots: the driver's configuration selection and the events still
 * waiting for buffers (a key press is not lost across a restore). */
static int input_save(struct virtio_dev *dev, struct snap_writer *w, uint16_t *unpopped,
		   char *err, size_t errlen)
{
	struct virtio_input *in = (struct virtio_input *)dev;
	snap_put_u8(w, in->cfg[VIRTIO_INPUT_CFG_SELECT]);
	snap_put_u8(w, in->cfg[VIRTIO_INPUT_CFG_SUBSEL]);
	pthread_mutex_lock(&in->lock);
	snap_put_u32(w, in->len);
	for (unsigned k = 0; k < in->len; k++) {
		const struct virtio_input_event *e = &in->ring[(in->head + k) % VIRTIO_INPUT_PENDING];
		snap_put_u16(w, e->type);
		snap_put_u16(w, e->code);
		snap_put_u32(w, e->value);
	}
	pthread_mutex_unlock(&in->lock);
	return 0;
}

static void input_load(struct virtio_dev *dev, struct snap_reader *r)
{
	struct virtio_input *in = (struct virtio_input *)dev;
	uint8_t sel = snap_get_u8(r), sub = snap_get_u8(r);
	uint32_t n = snap_get_u32(r);
	if (!r->overrun && n > VIRTIO_INPUT_PENDING) {
		snap_reader_fail(r, "%u pending events (at most %u)", n, VIRTIO_INPUT_PENDING);
		return;
	}
	struct virtio_input_event ev[VIRTIO_INPUT_PENDING];
	for (unsigned k = 0; k < n && !r->overrun; k++) {
		ev[k].type = snap_get_u16(r);
		ev[k].code = snap_get_u16(r);
		ev[k].value = snap_get_u32(r);
	}
	if (r->overrun)
		return;
	in->cfg[VIRTIO_INPUT_CFG_SELECT] = sel;
	in->cfg[VIRTIO_INPUT_CFG_SUBSEL] = sub;
	cfg_answer(in);
	pthread_mutex_lock(&in->lock);
	memcpy(in->ring, ev, n * sizeof(ev[0]));
	in->head = 0;
	in->len = n;
	pthread_mutex_unlock(&in->lock);
}

static const struct virtio_dev_ops input_ops = {
	.name = "input",
	.device_id = VIRTIO_ID_INPUT,
	.config_read = input_config_read,
	.config_write = input_config_write,
	.queue_process = input_process,
	.reset = input_reset,
	.save_version = 1,
	.save = input_save,
	.load = input_load,
};

/* ---- host side ---- */

struct virtio_input *virtio_input_create(struct gram *ram, char *err, size_t errlen)
{
	struct virtio_input *in = calloc(1, sizeof(*in));
	if (!in) {
		snprintf(err, errlen, "virtio-input: out of memory");
		return NULL;
	}
	uint16_t qsizes[2] = { INPUT_QUEUE_SIZE, INPUT_QUEUE_SIZE };
	if (virtio_dev_init(&in->dev, &input_ops, ram, 0, 2, qsizes, err, errlen)) {
		free(in);
		return NULL;
	}
	pthread_mutex_init(&in->lock, NULL);
	cfg_answer(in);
	if (virtio_dev_start(&in->dev, err, errlen)) {
		virtio_dev_fini(&in->dev);
		pthread_mutex_destroy(&in->lock);
		free(in);
		return NULL;
	}
	return in;
}

void virtio_input_destroy(struct virtio_input *in)
{
	if (!in)
		return;
	virtio_dev_fini(&in->dev);
	pthread_mutex_destroy(&in->lock);
	free(in);
}

struct virtio_dev *virtio_input_dev(struct virtio_input *in)
{
	return &in->dev;
}

struct virtio_input *virtio_input_of(struct virtio_dev *dev)
{
	return dev && dev->ops == &input_ops ? (struct virtio_input *)dev : NULL;
}

int virtio_input_send(struct virtio_input *in, const struct virtio_input_event *ev, size_t n)
{
	if (!virtio_dev_driver_ok(&in->dev))
		return -ENODEV;
	pthread_mutex_lock(&in->lock);
	if (n > VIRTIO_INPUT_PENDING - in->len) {
		pthread_mutex_unlock(&in->lock);
		return -ENOSPC;
	}
	for (size_t i = 0; i < n; i++)
		in->ring[(in->head + in->len + i) % VIRTIO_INPUT_PENDING] = ev[i];
	in->len += (unsigned)n;
	pthread_mutex_unlock(&in->lock);
	virtio_dev_kick(&in->dev, Q_EVENT);
	return 0;
}

int virtio_input_send_ctrl_alt_del(struct virtio_input *in)
{
	static const struct virtio_input_event seq[] = {
		{ INPUT_EV_KEY, INPUT_KEY_LEFTCTRL, 1 },
		{ INPUT_EV_KEY, INPUT_KEY_LEFTALT, 1 },
		{ INPUT_EV_KEY, INPUT_KEY_DELETE, 1 },
		{ INPUT_EV_SYN, INPUT_SYN_REPORT, 0 },
		{ INPUT_EV_KEY, INPUT_KEY_DELETE, 0 },
		{ INPUT_EV_KEY, INPUT_KEY_LEFTALT, 0 },
		{ INPUT_EV_KEY, INPUT_KEY_LEFTCTRL, 0 },
		{ INPUT_EV_SYN, INPUT_SYN_REPORT, 0 },
	};
	return virtio_input_send(in, seq, sizeof(seq) / sizeof(seq[0]));
}

size_t virtio_input_pending(struct virtio_input *in)
{
	pthread_mutex_lock(&in->lock);
	size_t n = in->len;
	pthread_mutex_unlock(&in->lock);
	return n;
}

/*
 * Common virtio device state and the per-device I/O thread; see virtio.h.
 * Behaviour follows virtio 1.2: status and reset (2.1, 3.1), feature
 * negotiation (2.2, 3.1.1), notifications (2.3), DEVICE_NEEDS_RESET (2.1.2).
 */
#include "virtio/virtio.h"
#include "base/thread_start.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void raise_isr(struct virtio_dev *dev, uint32_t bits)
{
	pthread_mutex_lock(&dev->irq_lock);
	dev->isr |= bits;
	if (dev->isr && !dev->irq_level) {
		dev->irq_level = true;
		irq_set(&dev->irq, true);
	}
	pthread_mutex_unlock(&dev->irq_lock);
}

static void vq_error(void *opaque, struct virtq *vq, const char *msg)
{
	(void)vq;
	virtio_dev_fail(opaque, "%s", msg);
}

static void *io_thread(void *arg)
{
	struct virtio_dev *dev = arg;
	pthread_mutex_lock(&dev->work_lock);
	while (!dev->work_stop) {
		if (!dev->work_pending && !dev->work_event) {
			dev->work_busy = false;
			pthread_cond_broadcast(&dev->idle_cond);
			pthread_cond_wait(&dev->work_cond, &dev->work_lock);
			continue;
		}
		uint64_t mask = dev->work_pending;
		bool event = dev->work_event;
		dev->work_pending = 0;
		dev->work_event = false;
		dev->work_busy = true;
		pthread_mutex_unlock(&dev->work_lock);
		if (event && dev->ops->event)
			dev->ops->event(dev);
		while (mask) {
			unsigned q = (unsigned)__builtin_ctzll(mask);
			mask &= mask - 1;
			if (q >= dev->nqueues)
				continue;
			struct virtq *vq = &dev->vqs[q];
			pthread_mutex_lock(&vq->lock);
			if (vq->ready && !vq->broken && virtio_dev_active(dev))
				dev->ops->queue_process(dev, vq);
			pthread_mutex_unlock(&vq->lock);
		}
		pthread_mutex_lock(&dev->work_lock);
	}
	dev->work_busy = false;
	pthread_cond_broadcast(&dev->idle_cond);
	pthread_mutex_unlock(&dev->work_lock);
	return NULL;
}

void virtio_dev_wait_idle(struct virtio_dev *dev)
{
	pthread_mutex_lock(&dev->work_lock);
	while (dev->thread_running && !dev->work_stop &&
	       (dev->work_pending || dev->work_event || dev->work_busy))
		pthread_cond_wait(&dev->idle_cond, &dev->work_lock);
	pthread_mutex_unlock(&dev->work_lock);
}

int virtio_dev_init(struct virtio_dev *dev, const struct virtio_dev_ops *ops,
		    struct gram *ram, uint64_t features, unsigned nqueues,
		    const uint16_t *queue_sizes, char *err, size_t errlen)
{
	memset(dev, 0, sizeof(*dev));
	if (nqueues == 0 || nqueues > VIRTIO_MAX_QUEUES) {
		snprintf(err, errlen, "virtio-%s: %u queues (1..%u supported)",
			 ops->name, nqueues, VIRTIO_MAX_QUEUES);
		return -1;
	}
	dev->ops = ops;
	dev->ram = ram;
	dev->host_features = features | (1ull << VIRTIO_F_VERSION_1) |
			     (1ull << VIRTIO_F_RING_INDIRECT_DESC) |
			     (1ull << VIRTIO_F_RING_EVENT_IDX);
	dev->vqs = calloc(nqueues, sizeof(*dev->vqs));
	dev->req = malloc(sizeof(*dev->req));
	if (!dev->vqs || !dev->req) {
		snprintf(err, errlen, "virtio-%s: out of memory", ops->name);
		goto fail_mem;
	}
	for (unsigned q = 0; q < nqueues; q++) {
		uint16_t n = queue_sizes[q];
		if (n > VIRTQ_MAX_SIZE || virtq_init(&dev->vqs[q], q, n, vq_error, dev)) {
			snprintf(err, errlen, "virtio-%s: queue %u: bad size %u", ops->name, q, n);
			while (q--)
				virtq_destroy(&dev->vqs[q]);
			goto fail_mem;
		}
	}
	dev->nqueues = nqueues;
	pthread_mutex_init(&dev->lock, NULL);
	pthread_mutex_init(&dev->irq_lock, NULL);
	pthread_mutex_init(&dev->work_lock, NULL);
	pthread_cond_init(&dev->work_cond, NULL);
	pthread_cond_init(&dev->idle_cond, NULL);
	return 0;

fail_mem:
	free(dev->vqs);
	free(dev->req);
	memset(dev, 0, sizeof(*dev));
	return -1;
}

int virtio_dev_start(struct virtio_dev *dev, char *err, size_t errlen)
{
	char name[16];
	snprintf(name, sizeof(name), "virtio-%s", dev->ops->name);
	int e = thread_start(dev->ram ? dev->ram->threads : NULL, &dev->thread, name, io_thread, dev);
	if (e) {
		snprintf(err, errlen, "virtio-%s: cannot start I/O thread: %s",
			 dev->ops->name, strerror(e));
		return -1;
	}
	dev->thread_running = true;
	return 0;
}

void virtio_dev_fini(struct virtio_dev *dev)
{
	if (!dev->vqs)
		return;
	if (dev->thread_running) {
		pthread_mutex_lock(&dev->work_lock);
		dev->work_stop = true;
		pthread_cond_signal(&dev->work_cond);
		pthread_mutex_unlock(&dev->work_lock);
		pthread_join(dev->thread, NULL);
		dev->thread_running = false;
	}
	for (unsigned q = 0; q < dev->nqueues; q++)
		virtq_destroy(&dev->vqs[q]);
	free(dev->vqs);
	free(dev->req);
	dev->vqs = NULL;
	dev->req = NULL;
	pthread_cond_destroy(&dev->work_cond);
	pthread_cond_destroy(&dev->idle_cond);
	pthread_mutex_destroy(&dev->work_lock);
	pthread_mutex_destroy(&dev->irq_lock);
	pthread_mutex_destroy(&dev->lock);
}

void virtio_dev_set_irq(struct virtio_dev *dev, const struct irq_line *irq)
{
	pthread_mutex_lock(&dev->irq_lock);
	dev->irq = *irq;
	pthread_mutex_unlock(&dev->irq_lock);
}

void virtio_dev_kick(struct virtio_dev *dev, unsigned q)
{
	if (q >= dev->nqueues)
		return;
	pthread_mutex_lock(&dev->work_lock);
	dev->work_pending |= 1ull << q;
	pthread_cond_signal(&dev->work_cond);
	pthread_mutex_unlock(&dev->work_lock);
}

void virtio_dev_schedule_event(struct virtio_dev *dev)
{
	pthread_mutex_lock(&dev->work_lock);
	dev->work_event = true;
	pthread_cond_signal(&dev->work_cond);
	pthread_mutex_unlock(&dev->work_lock);
}

void virtio_dev_used(struct virtio_dev *dev, struct virtq *vq)
{
	if (virtq_should_notify(vq))
		raise_isr(dev, VIRTIO_ISR_USED);
}

void virtio_dev_config_changed(struct virtio_dev *dev)
{
	atomic_fetch_add(&dev->config_gen, 1);
	if (!virtio_dev_driver_ok(dev))
		return;
	pthread_mutex_lock(&dev->irq_lock);
	bool later = atomic_load(&dev->frozen);
	if (later)
		dev->config_pending = true;
	pthread_mutex_unlock(&dev->irq_lock);
	if (!later)
		raise_isr(dev, VIRTIO_ISR_CONFIG);
}

bool virtio_dev_active(const struct virtio_dev *dev)
{
	return virtio_dev_driver_ok(dev) && !atomic_load(&dev->frozen);
}

void virtio_dev_freeze(struct virtio_dev *dev, bool frozen)
{
	pthread_mutex_lock(&dev->irq_lock);
	atomic_store(&dev->frozen, frozen);
	bool config = !frozen && dev->config_pending;
	if (!frozen)
		dev->config_pending = false;
	pthread_mutex_unlock(&dev->irq_lock);
	if (frozen)
		return;
	if (config && virtio_dev_driver_ok(dev))
		raise_isr(dev, VIRTIO_ISR_CONFIG);
	for (unsigned q = 0; q < dev->nqueues; q++)
		virtio_dev_kick(dev, q);
	if (dev->ops->event)
		virtio_dev_schedule_event(dev);
}

void virtio_dev_fail(struct virtio_dev *dev, const char *fmt, ...)
{
	if (atomic_exchange(&dev->needs_reset, true))
		return;   /* already failed: keep the first reason */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dev->error, sizeof(dev->error), fmt, ap);
	va_end(ap);
	if (!dev->quiet)
		fprintf(stderr, "skiff: virtio-%s: %s; device needs reset\n",
			dev->ops->name, dev->error);
	if (atomic_load(&dev->status) & VIRTIO_STATUS_DRIVER_OK)
		raise_isr(dev, VIRTIO_ISR_CONFIG);
}

bool virtio_dev_driver_ok(const struct virtio_dev *dev)
{
	return (atomic_load(&dev->status) & VIRTIO_STATUS_DRIVER_OK) &&
	       !atomic_load(&dev->needs_reset);
}

void virtio_dev_serve(struct virtio_dev *dev, struct virtq *vq, virtio_req_fn *handle)
{
	struct virtq_req *req = dev->req;
	unsigned budget = vq->size;
	int r;
	for (;;) {
		virtq_disable_notify(vq);
		while ((r = virtq_pop(vq, req)) > 0) {
			uint32_t written = handle(dev, vq, req);
			virtq_push(vq, req, written);
			if (--budget == 0) {
				/* Come back for the rest after others had a turn. */
				virtio_dev_used(dev, vq);
				virtio_dev_kick(dev, vq->index);
				return;
			}
		}
		if (r < 0 || !virtq_enable_notify(vq))
			break;
	}
	virtio_dev_used(dev, vq);
}

uint64_t virtio_config_get(const void *image, size_t image_len, uint32_t off, unsigned size)
{
	uint64_t v = 0;
	if (size > 8 || off > image_len || size > image_len - off)
		return 0;
	memcpy(&v, (const uint8_t *)image + off, size);  /* little-endian host */
	return v;
}

uint32_t virtio_dev_status(const struct virtio_dev *dev)
{
	uint32_t s = atomic_load(&dev->status);
	if (atomic_load(&dev->needs_reset))
		s |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	return s;
}

void virtio_dev_reset(struct virtio_dev *dev)
{
	for (unsigned q = 0; q < dev->nqueues; q++)
		pthread_mutex_lock(&dev->vqs[q].lock);
	/* The I/O thread is now outside every queue, and sees status 0 when
	 * it comes back. */
	atomic_store(&dev->status, 0);
	for (unsigned q = 0; q < dev->nqueues; q++)
		virtq_reset(&dev->vqs[q]);
	if (dev->ops->reset)
		dev->ops->reset(dev);
	dev->driver_features = 0;
	pthread_mutex_lock(&dev->irq_lock);
	dev->isr = 0;
	if (dev->irq_level) {
		dev->irq_level = false;
		irq_set(&dev->irq, false);
	}
	pthread_mutex_unlock(&dev->irq_lock);
	atomic_store(&dev->needs_reset, false);
	dev->error[0] = 0;
	for (unsigned q = dev->nqueues; q-- > 0;)
		pthread_mutex_unlock(&dev->vqs[q].lock);
	pthread_mutex_lock(&dev->work_lock);
	dev->work_pending = 0;
	pthread_mutex_unlock(&dev->work_lock);
}

static bool features_acceptable(struct virtio_dev *dev)
{
	uint64_t f = dev->driver_features;
	if (f & ~dev->host_features) {
		snprintf(dev->error, sizeof(dev->error),
			 "driver accepted features %#llx that were not offered",
			 (unsigned long long)(f & ~dev->host_features));
		return false;
	}
	if (!(f & (1ull << VIRTIO_F_VERSION_1))) {
		snprintf(dev->error, sizeof(dev->error),
			 "driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are not supported)");
		return false;
	}
	if (dev->ops->features_ok && !dev->ops->features_ok(dev, f)) {
		snprintf(dev->error, sizeof(dev->error),
			 "device refused feature set %#llx", (unsigned long long)f);
		return false;
	}
	return true;
}

void virtio_dev_set_status(struct virtio_dev *dev, uint32_t v)
{
	v &= 0xff;
	if (v == 0) {
		virtio_dev_reset(dev);
		return;
	}
	uint32_t old = atomic_load(&dev->status);
	/* The driver never clears bits except by reset (2.1.1), and
	 * DEVICE_NEEDS_RESET is the device's to set. */
	v = (v | old) & ~(uint32_t)VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
	    !features_acceptable(dev))
		v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;   /* 3.1.1 step 6 */
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK)) {
		v &= ~(uint32_t)VIRTIO_STATUS_DRIVER_OK;
		atomic_store(&dev->status, v);
		virtio_dev_fail(dev, "driver set DRIVER_OK without FEATURES_OK");
		return;
	}
	atomic_store(&dev->status, v);
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		/* Buffers may already be waiting (2.1.2: none were used
		 * before DRIVER_OK). */
		for (unsigned q = 0; q < dev->nqueues; q++)
			virtio_dev_kick(dev, q);
	}
}

void virtio_dev_set_driver_features(struct virtio_dev *dev, unsigned word, uint32_t value)
{
	if (word > 1 || (atomic_load(&dev->status) & VIRTIO_STATUS_FEATURES_OK))
		return;
	unsigned shift = 32 * word;
	dev->driver_features = (dev->driver_features & ~(0xffffffffull << shift)) |
			       ((uint64_t)value << shift);
}

void virtio_dev_queue_ready(struct virtio_dev *dev, unsigned q, bool ready)
{
	if (q >= dev->nqueues)
		return;
	struct virtq *vq = &dev->vqs[q];
	char err[160];
	int rc = 0;
	pthread_mutex_lock(&vq->lock);
	if (ready && !vq->ready)
		rc = virtq_start(vq, dev->ram, dev->driver_features, err, sizeof(err));
	else if (!ready && vq->ready)
		virtq_stop(vq);
	pthread_mutex_unlock(&vq->lock);
	if (rc)
		virtio_dev_fail(dev, "%s", err);
	else if (ready && virtio_dev_active(dev))
		virtio_dev_kick(dev, q);
}

void virtio_dev_notify(struct virtio_dev *dev, unsigned q)
{
	if (q >= dev->nqueues)
		return;
	if (dev->ops->queue_notify)
		dev->ops->queue_notify(dev, q);
	else
		virtio_dev_kick(dev, q);
}

uint32_t virtio_dev_isr(struct virtio_dev *dev)
{
	pthread_mutex_lock(&dev->irq_lock);
	uint32_t v = dev->isr;
	pthread_mutex_unlock(&dev->irq_lock);
	return v;
}

void virtio_dev_ack(struct virtio_dev *dev, uint32_t bits)
{
	pthread_mutex_lock(&dev->irq_lock);
	dev->isr &= ~bits;
	if (!dev->isr && dev->irq_level) {
		dev->irq_level = false;
		irq_set(&dev->irq, false);
	}
	pthread_mutex_unlock(&dev->irq_lock);
}

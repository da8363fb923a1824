/*
 * The virtio-mmio transport, version 2 (virtio 1.2 section 4.2.2): decodes
 * register accesses into the transport-independent calls of virtio.h.
 * Register semantics and the device requirements of 4.2.2.1 are cited where
 * they apply; see virtio_mmio.h for the interface.
 */
#include "virtio/virtio_mmio.h"

#include <stdatomic.h>

void virtio_mmio_init(struct virtio_mmio *t, struct virtio_dev *dev, const struct irq_line *irq)
{
	t->dev = dev;
	t->device_features_sel = t->driver_features_sel = 0;
	t->queue_sel = t->shm_sel = 0;
	virtio_dev_set_irq(dev, irq);
}

static struct virtq *selected_queue(struct virtio_mmio *t)
{
	return t->queue_sel < t->dev->nqueues ? &t->dev->vqs[t->queue_sel] : NULL;
}

static uint32_t read_reg(struct virtio_mmio *t, uint64_t off)
{
	struct virtio_dev *dev = t->dev;
	struct virtq *vq;
	uint32_t v = 0;

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return dev->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (t->device_features_sel < 2)
			v = (uint32_t)(dev->host_features >> (32 * t->device_features_sel));
		return v;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		/* 0 for a queue that does not exist (4.2.2). */
		vq = selected_queue(t);
		return vq ? vq->max_size : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		vq = selected_queue(t);
		if (vq) {
			pthread_mutex_lock(&vq->lock);
			v = vq->ready;
			pthread_mutex_unlock(&vq->lock);
		}
		return v;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return virtio_dev_isr(dev);
	case VIRTIO_MMIO_STATUS:
		return virtio_dev_status(dev);
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		vq = selected_queue(t);
		if (vq) {
			pthread_mutex_lock(&vq->lock);
			uint64_t a = off < VIRTIO_MMIO_QUEUE_DRIVER_LOW ? vq->desc_gpa :
				     off < VIRTIO_MMIO_QUEUE_DEVICE_LOW ? vq->avail_gpa : vq->used_gpa;
			v = (uint32_t)(a >> (off & 4 ? 32 : 0));
			pthread_mutex_unlock(&vq->lock);
		}
		return v;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		/* No shared memory regions: length -1 means "none" (4.2.2). */
		return 0xffffffffu;
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return atomic_load(&dev->config_gen);
	default:
		return 0;   /* write-only and reserved registers */
	}
}

static void set_addr_half(uint64_t *a, uint64_t off, uint32_t value)
{
	if (off & 4)
		*a = (*a & 0xffffffffull) | ((uint64_t)value << 32);
	else
		*a = (*a & ~0xffffffffull) | value;
}

static void write_reg(struct virtio_mmio *t, uint64_t off, uint32_t value)
{
	struct virtio_dev *dev = t->dev;
	struct virtq *vq;

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->device_features_sel = value;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		virtio_dev_set_driver_features(dev, t->driver_features_sel, value);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->driver_features_sel = value;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = value;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
		vq = selected_queue(t);
		if (vq) {
			pthread_mutex_lock(&vq->lock);
			/* Checked when the queue is made ready. */
			if (!vq->ready)
				vq->size = value > 0xffff ? 0 : (uint16_t)value;
			pthread_mutex_unlock(&vq->lock);
		}
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		virtio_dev_queue_ready(dev, t->queue_sel, value & 1);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		vq = selected_queue(t);
		if (vq) {
			pthread_mutex_lock(&vq->lock);
			/* The driver must not change a live queue; ignore it. */
			if (!vq->ready)
				set_addr_half(off < VIRTIO_MMIO_QUEUE_DRIVER_LOW ? &vq->desc_gpa :
					      off < VIRTIO_MMIO_QUEUE_DEVICE_LOW ? &vq->avail_gpa :
					      &vq->used_gpa, off, value);
			pthread_mutex_unlock(&vq->lock);
		}
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		virtio_dev_ack(dev, value);
		break;
	case VIRTIO_MMIO_STATUS:
		virtio_dev_set_status(dev, value);
		break;
	case VIRTIO_MMIO_SHM_SEL:
		t->shm_sel = value;
		break;
	default:
		break;   /* read-only, reserved, QueueReset (RING_RESET not offered) */
	}
}

static bool mmio_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
	struct virtio_mmio *t = opaque;
	struct virtio_dev *dev = t->dev;
	*value = 0;
	if (off >= VIRTIO_MMIO_CONFIG) {
		pthread_mutex_lock(&dev->lock);
		bool ok = dev->ops->config_read ?
			  dev->ops->config_read(dev, (uint32_t)(off - VIRTIO_MMIO_CONFIG), size, value) : true;
		pthread_mutex_unlock(&dev->lock);
		return ok;
	}
	/* 4.2.2.2: control registers are 32 bits wide and aligned. */
	if (size != 4 || (off & 3))
		return false;
	if (off == VIRTIO_MMIO_INTERRUPT_STATUS) {   /* hot: no transport lock */
		*value = virtio_dev_isr(dev);
		return true;
	}
	pthread_mutex_lock(&dev->lock);
	*value = read_reg(t, off);
	pthread_mutex_unlock(&dev->lock);
	return true;
}

static bool mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct virtio_mmio *t = opaque;
	struct virtio_dev *dev = t->dev;
	if (off >= VIRTIO_MMIO_CONFIG) {
		pthread_mutex_lock(&dev->lock);
		bool ok = dev->ops->config_write ?
			  dev->ops->config_write(dev, (uint32_t)(off - VIRTIO_MMIO_CONFIG), size, value) : true;
		pthread_mutex_unlock(&dev->lock);
		return ok;
	}
	if (size != 4 || (off & 3))
		return false;
	/* Hot paths that need no transport lock. */
	if (off == VIRTIO_MMIO_QUEUE_NOTIFY) {
		virtio_dev_notify(dev, (uint32_t)value);
		return true;
	}
	if (off == VIRTIO_MMIO_INTERRUPT_ACK) {
		virtio_dev_ack(dev, (uint32_t)value);
		return true;
	}
	pthread_mutex_lock(&dev->lock);
	write_reg(t, off, (uint32_t)value);
	pthread_mutex_unlock(&dev->lock);
	return true;
}

const struct mmio_ops virtio_mmio_ops = {
	.read = mmio_read,
	.write = mmio_write,
};

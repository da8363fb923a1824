/*
 * A virtio device in a snapshot: the virtio-mmio transport's selectors, the
 * common device state (features, status, config generation, interrupt
 * status) and every queue's configuration and ring indices (section
 * "VMIO", instance = board slot), then the device's own state (section
 * "VDEV", same instance, in the device's own version) through its
 * save/load operations.
 *
 * Saving needs the device quiesced by the caller (virtio_dev_quiesce, held
 * until guest RAM is saved too): with the transport lock and every queue
 * lock held no request is in flight (a device serves a request start to finish
 * under its queue's lock), so the queue indices and the device state agree.
 * A chain a device popped and still holds (a frame half delivered, a
 * transmit waiting for room) is handed back: the saved available index
 * steps back over it, and the restored device pops it again.
 *
 * A device's host side (a network backend's own state) has a section of
 * its own ("VHST", same instance), saved and loaded without the device's
 * locks: the backend's thread takes them, and must be stopped to be saved.
 *
 * Loading goes into a freshly created device of the same kind; every value
 * is checked the way the transport checks a driver's writes (ring areas in
 * RAM and aligned, sizes powers of two, only offered features), so a
 * crafted file gets an error, never a device in a state no driver could
 * have put it in.
 */
#include "virtio/virtio_mmio.h"

#include <stdio.h>
#include <string.h>

#include "base/snapfile.h"

#define VMIO_SNAP_VERSION 1
#define TAG_VMIO SNAP_TAG('V', 'M', 'I', 'O')
#define TAG_VDEV SNAP_TAG('V', 'D', 'E', 'V')
#define TAG_VHST SNAP_TAG('V', 'H', 'S', 'T')

void virtio_dev_quiesce(struct virtio_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	for (unsigned q = 0; q < dev->nqueues; q++)
		pthread_mutex_lock(&dev->vqs[q].lock);
}

void virtio_dev_unquiesce(struct virtio_dev *dev)
{
	for (unsigned q = dev->nqueues; q-- > 0;)
		pthread_mutex_unlock(&dev->vqs[q].lock);
	pthread_mutex_unlock(&dev->lock);
}

static void save_queue(const struct virtq *vq, uint16_t unpopped, struct snap_writer *w)
{
	snap_put_u16(w, vq->max_size);
	snap_put_u16(w, vq->size);
	snap_put_u64(w, vq->desc_gpa);
	snap_put_u64(w, vq->avail_gpa);
	snap_put_u64(w, vq->used_gpa);
	snap_put_u8(w, vq->ready);
	snap_put_u8(w, vq->broken);
	snap_put_u16(w, (uint16_t)(vq->last_avail - unpopped));
	snap_put_u16(w, vq->used_idx);
	snap_put_u16(w, vq->signalled_used);
	snap_put_u8(w, vq->pushed);
	snap_put_str(w, vq->broken ? vq->error : "");
}

int virtio_mmio_save(struct virtio_mmio *t, uint32_t slot, struct snap_writer *w,
		     char *err, size_t errlen)
{
	struct virtio_dev *dev = t->dev;
	uint16_t unpopped[VIRTIO_MAX_QUEUES] = { 0 };
	if (dev->ops->save) {
		char why[400];
		snap_section_begin(w, TAG_VDEV, slot, dev->ops->save_version);
		if (dev->ops->save(dev, w, unpopped, why, sizeof(why))) {
			snprintf(err, errlen, "virtio-%s (slot %u): %s", dev->ops->name, slot, why);
			return -1;
		}
	}
	snap_section_begin(w, TAG_VMIO, slot, VMIO_SNAP_VERSION);
	snap_put_u32(w, dev->ops->device_id);
	snap_put_u32(w, t->device_features_sel);
	snap_put_u32(w, t->driver_features_sel);
	snap_put_u32(w, t->queue_sel);
	snap_put_u32(w, t->shm_sel);
	snap_put_u64(w, dev->host_features);
	snap_put_u64(w, dev->driver_features);
	snap_put_u32(w, atomic_load(&dev->status));
	snap_put_u8(w, atomic_load(&dev->needs_reset));
	snap_put_u32(w, atomic_load(&dev->config_gen));
	pthread_mutex_lock(&dev->irq_lock);
	snap_put_u32(w, dev->isr);
	snap_put_u8(w, dev->irq_level);
	pthread_mutex_unlock(&dev->irq_lock);
	snap_put_str(w, atomic_load(&dev->needs_reset) ? dev->error : "");
	snap_put_u32(w, dev->nqueues);
	for (unsigned q = 0; q < dev->nqueues; q++)
		save_queue(&dev->vqs[q], unpopped[q], w);
	return 0;
}

/* Bring one queue to its saved state (queue lock held). */
static void load_queue(struct virtio_dev *dev, struct virtq *vq, struct snap_reader *r)
{
	uint16_t max = snap_get_u16(r), size = snap_get_u16(r);
	uint64_t desc = snap_get_u64(r), avail = snap_get_u64(r), used = snap_get_u64(r);
	uint8_t ready = snap_get_u8(r), broken = snap_get_u8(r);
	uint16_t last_avail = snap_get_u16(r), used_idx = snap_get_u16(r);
	uint16_t signalled = snap_get_u16(r);
	uint8_t pushed = snap_get_u8(r);
	char error[sizeof(vq->error)];
	snap_get_str(r, error, sizeof(error));
	if (r->overrun || r->invalid)
		return;
	if (max != vq->max_size || ready > 1 || broken > 1 || pushed > 1) {
		snap_reader_fail(r, "queue %u: offered size %u (this device offers %u) or bad flags",
				 vq->index, max, vq->max_size);
		return;
	}
	vq->size = size;
	vq->desc_gpa = desc;
	vq->avail_gpa = avail;
	vq->used_gpa = used;
	/* A stopped queue keeps its indexes too: QueueReady 1 resumes there. */
	vq->last_avail = last_avail;
	vq->used_idx = used_idx;
	vq->signalled_used = signalled;
	vq->pushed = pushed;
	vq->broken = broken;
	snprintf(vq->error, sizeof(vq->error), "%s", broken ? error : "");
	if (ready) {
		char why[160];
		if (virtq_start(vq, dev->ram, dev->driver_features, why, sizeof(why))) {
			snap_reader_fail(r, "%s", why);
			return;
		}
	}
}

int virtio_mmio_load(struct virtio_mmio *t, uint32_t slot, struct snap_file *f,
		     char *err, size_t errlen)
{
	struct virtio_dev *dev = t->dev;
	struct snap_section *s = snap_file_find(f, TAG_VMIO, slot);
	if (!s) {
		snprintf(err, errlen, "the snapshot has no state for virtio slot %u (virtio-%s)",
			 slot, dev->ops->name);
		return -1;
	}
	struct snap_reader r;
	snap_reader_init(&r, s);
	if (s->version != VMIO_SNAP_VERSION) {
		snap_reader_fail(&r, "virtio transport state version %u is not known", s->version);
		return snap_reader_end(&r, err, errlen);
	}
	uint32_t id = snap_get_u32(&r);
	uint32_t sel[4];
	for (int i = 0; i < 4; i++)
		sel[i] = snap_get_u32(&r);
	uint64_t host = snap_get_u64(&r), drv = snap_get_u64(&r);
	uint32_t status = snap_get_u32(&r);
	uint8_t needs_reset = snap_get_u8(&r);
	uint32_t gen = snap_get_u32(&r), isr = snap_get_u32(&r);
	uint8_t level = snap_get_u8(&r);
	char error[sizeof(dev->error)];
	snap_get_str(&r, error, sizeof(error));
	uint32_t nq = snap_get_u32(&r);
	if (r.overrun || r.invalid)
		return snap_reader_end(&r, err, errlen);
	if (id != dev->ops->device_id || nq != dev->nqueues) {
		snap_reader_fail(&r, "device id %u with %u queues where this VM has virtio-%s "
				 "(id %u, %u queues)", id, nq, dev->ops->name, dev->ops->device_id,
				 dev->nqueues);
		return snap_reader_end(&r, err, errlen);
	}
	/* The driver keeps the features it negotiated: the device made now
	 * must offer every one of them (a different backend may not). */
	if ((status & VIRTIO_STATUS_FEATURES_OK) && (drv & ~dev->host_features)) {
		snap_reader_fail(&r, "the guest's driver uses features %#llx that virtio-%s does "
				 "not offer here (was %#llx)",
				 (unsigned long long)(drv & ~dev->host_features), dev->ops->name,
				 (unsigned long long)host);
		return snap_reader_end(&r, err, errlen);
	}
	if ((status & ~0xffu) || (status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) || needs_reset > 1 ||
	    level > 1 || (isr & ~(uint32_t)(VIRTIO_ISR_USED | VIRTIO_ISR_CONFIG)) ||
	    ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK))) {
		snap_reader_fail(&r, "status %#x / interrupt status %#x no driver could set",
				 status, isr);
		return snap_reader_end(&r, err, errlen);
	}

	virtio_dev_quiesce(dev);
	t->device_features_sel = sel[0];
	t->driver_features_sel = sel[1];
	t->queue_sel = sel[2];
	t->shm_sel = sel[3];
	dev->driver_features = drv;
	if ((status & VIRTIO_STATUS_FEATURES_OK) && dev->ops->features_ok &&
	    !dev->ops->features_ok(dev, drv))
		snap_reader_fail(&r, "virtio-%s refuses the saved feature set %#llx", dev->ops->name,
				 (unsigned long long)drv);
	for (unsigned q = 0; q < nq && !r.invalid; q++)
		load_queue(dev, &dev->vqs[q], &r);
	if (!r.overrun && !r.invalid) {
		atomic_store(&dev->config_gen, gen);
		atomic_store(&dev->needs_reset, needs_reset);
		snprintf(dev->error, sizeof(dev->error), "%s", needs_reset ? error : "");
		pthread_mutex_lock(&dev->irq_lock);
		dev->isr = isr;
		/* The PLIC's saved input line already has this level. */
		dev->irq_level = level;
		pthread_mutex_unlock(&dev->irq_lock);
		atomic_store(&dev->status, status);
	}
	if (snap_reader_end(&r, err, errlen)) {
		virtio_dev_unquiesce(dev);
		return -1;
	}
	if (dev->ops->load) {
		struct snap_section *ds = snap_file_find(f, TAG_VDEV, slot);
		if (!ds) {
			virtio_dev_unquiesce(dev);
			snprintf(err, errlen, "the snapshot has no device state for virtio slot %u "
				 "(virtio-%s)", slot, dev->ops->name);
			return -1;
		}
		snap_reader_init(&r, ds);
		if (ds->version > dev->ops->save_version)
			snap_reader_fail(&r, "virtio-%s state version %u is newer than this skiff's %u",
					 dev->ops->name, ds->version, dev->ops->save_version);
		else
			dev->ops->load(dev, &r);
		if (snap_reader_end(&r, err, errlen)) {
			virtio_dev_unquiesce(dev);
			return -1;
		}
	}
	virtio_dev_unquiesce(dev);
	return 0;
}

int virtio_host_save(struct virtio_dev *dev, uint32_t slot, struct snap_writer *w,
		     char *err, size_t errlen)
{
	if (!dev->ops->save_host)
		return 0;
	char why[400];
	snap_section_begin(w, TAG_VHST, slot, dev->ops->host_version);
	if (dev->ops->save_host(dev, w, why, sizeof(why))) {
		snprintf(err, errlen, "virtio-%s (slot %u): %s", dev->ops->name, slot, why);
		return -1;
	}
	return 0;
}

int virtio_host_load(struct virtio_dev *dev, uint32_t slot, struct snap_file *f,
		     char *err, size_t errlen)
{
	if (!dev->ops->load_host)
		return 0;
	struct snap_section *s = snap_file_find(f, TAG_VHST, slot);
	if (!s)
		return 0;
	struct snap_reader r;
	snap_reader_init(&r, s);
	if (s->version == 0 || s->version > dev->ops->host_version)
		snap_reader_fail(&r, "virtio-%s host state version %u (this skiff reads 1 to %u)",
				 dev->ops->name, s->version, dev->ops->host_version);
	else
		dev->ops->load_host(dev, &r);
	return snap_reader_end(&r, err, errlen);
}

void virtio_dev_restored(struct virtio_dev *dev)
{
	if (dev->ops->restored)
		dev->ops->restored(dev);
	/* Whatever the driver queued while the snapshot was being taken, or
	 * chains handed back, is served now. */
	if (virtio_dev_active(dev))
		for (unsigned q = 0; q < dev->nqueues; q++)
			virtio_dev_kick(dev, q);
}

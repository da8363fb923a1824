/*
 * The transport-independent part of a virtio device (virtio 1.2 sections 2
 * and 3): feature negotiation, device status and reset, the queues, the
 * interrupt status, and the I/O thread that serves the queues.
 *
 * A device model embeds struct virtio_dev, fills a struct virtio_dev_ops
 * (device id, config space access, queue processing, reset) and calls
 * virtio_dev_init() then virtio_dev_start(). A transport (virtio_mmio.c)
 * decodes register accesses into the virtio_dev_* calls below.
 *
 * Threads. Transport calls come from vCPU threads. A queue notification only
 * marks the queue pending and wakes the device's I/O thread; that thread
 * calls ops->queue_process() with the queue's lock held, which pops, does the
 * I/O, pushes and raises the interrupt. Host-side events (console input) also
 * just mark a queue pending with virtio_dev_kick().
 *
 * Lock order: dev->lock (transport registers) -> vq->lock (one queue) ->
 * a device's own locks -> dev->irq_lock -> the interrupt controller.
 */
#ifndef SKIFF_VIRTIO_VIRTIO_H
#define SKIFF_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/gram.h"
#include "machine/bus.h"
#include "virtio/virtq.h"

/* Device ids (virtio 1.2 section 5). */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4

/* Device-independent feature bits (section 6). */
#define VIRTIO_F_VERSION_1 32

/* Device status bits (section 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE        1
#define VIRTIO_STATUS_DRIVER             2
#define VIRTIO_STATUS_DRIVER_OK          4
#define VIRTIO_STATUS_FEATURES_OK        8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED             128

/* Interrupt status bits (section 4.2.2, InterruptStatus). */
#define VIRTIO_ISR_USED   1   /* used buffer notification */
#define VIRTIO_ISR_CONFIG 2   /* configuration change notification */

/* Queues per device; the pending-work mask is one 64-bit word. */
#define VIRTIO_MAX_QUEUES 64

struct virtio_dev;
struct snap_writer;
struct snap_reader;
struct snap_file;

struct virtio_dev_ops {
	const char *name;      /* "blk", "rng", ...: messages and thread name */
	uint32_t device_id;
	/* Device-specific configuration space (transport offset 0x100 for
	 * MMIO). Called with dev->lock held. `size` is 1, 2, 4 or 8; return
	 * false to refuse the access. Reads beyond the space should give 0. */
	bool (*config_read)(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t *value);
	bool (*config_write)(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t value);
	/* Optional: the driver sets FEATURES_OK with `features`; return false
	 * to refuse the combination. Called with dev->lock held. */
	bool (*features_ok)(struct virtio_dev *dev, uint64_t features);
	/* Optional: called on the vCPU thread when the driver notifies queue
	 * q. Default: virtio_dev_kick(dev, q). Must not block. */
	void (*queue_notify)(struct virtio_dev *dev, unsigned q);
	/* I/O thread, vq->lock held, queue ready and not broken, DRIVER_OK
	 * set: serve the queue. */
	void (*queue_process)(struct virtio_dev *dev, struct virtq *vq);
	/* Optional: device reset (driver wrote 0 to Status), with dev->lock
	 * and every queue lock held. Drop device state tied to the driver. */
	void (*reset)(struct virtio_dev *dev);
	/* Optional: I/O thread, no lock held: work the device scheduled with
	 * virtio_dev_schedule_event() (e.g. host callbacks that must not run
	 * under device locks). */
	void (*event)(struct virtio_dev *dev);

	/* Snapshots (virtio_snapshot.c), all optional. save writes the
	 * device's own state (section "VDEV" in version save_version) with
	 * dev->lock and every queue lock held, so no request is in flight;
	 * it sets unpopped[q] to the number of chains it popped from queue q
	 * and still holds (they are handed back to the ring); it returns 0,
	 * or -1 with a message when the state cannot be saved. load reads it
	 * back into a new device of the same kind (same locks held), checks
	 * every value and reports problems with snap_reader_fail; it accepts
	 * versions up to save_version. restored runs once the whole VM is
	 * loaded, before the guest runs again, with no lock held. */
	uint32_t save_version;
	int (*save)(struct virtio_dev *dev, struct snap_writer *w, uint16_t *unpopped,
		    char *err, size_t errlen);
	void (*load)(struct virtio_dev *dev, struct snap_reader *r);
	void (*restored)(struct virtio_dev *dev);
	/* The host side's state (a backend's), optional, in its own section
	 * "VHST" in version host_version: saved before the device is
	 * quiesced and loaded after its device state, both with no device
	 * lock held, since a backend's own thread takes the device's locks
	 * and the backend stops that thread to save or load. */
	uint32_t host_version;
	int (*save_host)(struct virtio_dev *dev, struct snap_writer *w, char *err, size_t errlen);
	void (*load_host)(struct virtio_dev *dev, struct snap_reader *r);
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	struct gram *ram;
	uint64_t host_features;    /* offered, including VERSION_1 and ring bits */
	uint64_t driver_features;  /* written by the driver */
	unsigned nqueues;
	struct virtq *vqs;

	pthread_mutex_t lock;      /* transport register state, config space */
	_Atomic uint32_t status;   /* as written by the driver */
	_Atomic bool needs_reset;  /* DEVICE_NEEDS_RESET, ORed into status reads */
	_Atomic uint32_t config_gen;
	/* Paused with its VM: no request is taken and guest memory is not
	 * written until it thaws (virtio_dev_freeze). */
	_Atomic bool frozen;
	bool config_pending;       /* a config change waits for the thaw (irq_lock) */

	pthread_mutex_t irq_lock;
	uint32_t isr;              /* InterruptStatus */
	bool irq_level;            /* level driven on irq */
	struct irq_line irq;

	/* The I/O thread. */
	pthread_t thread;
	bool thread_running;
	pthread_mutex_t work_lock;
	pthread_cond_t work_cond;
	pthread_cond_t idle_cond;  /* the thread ran out of work */
	uint64_t work_pending;     /* bit q: queue q needs attention */
	bool work_event;           /* ops->event wanted */
	bool work_busy;            /* processing what it last took */
	bool work_stop;
	struct virtq_req *req;     /* scratch request for the I/O thread */

	bool quiet;                /* do not print device errors (tests) */
	char error[200];           /* last error that set DEVICE_NEEDS_RESET */
};

/* Set up the common state. `features` are the device-specific bits; the
 * ring bits and VERSION_1 are added here. queue_sizes[q] is the largest size
 * queue q offers (a power of two). 0, or -1 with a message in err. */
int virtio_dev_init(struct virtio_dev *dev, const struct virtio_dev_ops *ops,
		    struct gram *ram, uint64_t features, unsigned nqueues,
		    const uint16_t *queue_sizes, char *err, size_t errlen);
/* Start the I/O thread (after the device struct is complete). 0 or -1. */
int virtio_dev_start(struct virtio_dev *dev, char *err, size_t errlen);
/* Stop and join the I/O thread, free the queues. The transport must no
 * longer call in (the vCPUs are stopped or the region is unmapped). */
void virtio_dev_fini(struct virtio_dev *dev);

/* Connect the interrupt line (the transport does this). */
void virtio_dev_set_irq(struct virtio_dev *dev, const struct irq_line *irq);

/* ---- for device models ---- */

/* Mark queue q pending and wake the I/O thread. Any thread, never blocks
 * for long. */
void virtio_dev_kick(struct virtio_dev *dev, unsigned q);
/* Have the I/O thread call ops->event() soon. Any thread. */
void virtio_dev_schedule_event(struct virtio_dev *dev);
/* Wait until the I/O thread has done everything notified, kicked or
 * scheduled before the call (and what that work kicked again). Work other
 * threads of a device do (a backend's, a timer's) is not waited for. */
void virtio_dev_wait_idle(struct virtio_dev *dev);
/* After pushing to vq: raise a used-buffer interrupt if the driver wants
 * one. Call with vq->lock held. */
void virtio_dev_used(struct virtio_dev *dev, struct virtq *vq);
/* The config space changed: bump ConfigGeneration and, once DRIVER_OK,
 * send a configuration change notification. */
void virtio_dev_config_changed(struct virtio_dev *dev);
/* The device hit an error the driver caused: set DEVICE_NEEDS_RESET and
 * notify the driver (section 2.1.2). Stops all queue processing until reset. */
__attribute__((format(printf, 2, 3)))
void virtio_dev_fail(struct virtio_dev *dev, const char *fmt, ...);
bool virtio_dev_driver_ok(const struct virtio_dev *dev);
/* DRIVER_OK and not frozen: the device may serve its queues now. */
bool virtio_dev_active(const struct virtio_dev *dev);
/* Freeze (true) or thaw the device with its VM's pause and resume: frozen,
 * queues are not served and guest memory is not written (host backends
 * hold their input back); thawing serves whatever waited and delivers a
 * configuration change made meanwhile. Any thread. */
void virtio_dev_freeze(struct virtio_dev *dev, bool frozen);
/* Negotiated feature test (valid once FEATURES_OK is set). */
static inline bool virtio_dev_has(const struct virtio_dev *dev, unsigned bit)
{
	return (dev->driver_features >> bit) & 1;
}

/* The plain request/response loop most queues need: pop every available
 * request, call handle() (which returns the bytes it wrote into the
 * writable part), push it, and notify the driver; with notification
 * suppression while busy and a bound of one queue's worth per call (the rest
 * is re-kicked, so a reset is never starved). Call from queue_process. */
typedef uint32_t virtio_req_fn(struct virtio_dev *dev, struct virtq *vq, struct virtq_req *req);
void virtio_dev_serve(struct virtio_dev *dev, struct virtq *vq, virtio_req_fn *handle);

/* Config space helper: read/write `size` bytes at `off` of a little-endian
 * byte image. Out-of-range reads give 0, writes outside are ignored. */
uint64_t virtio_config_get(const void *image, size_t image_len, uint32_t off, unsigned size);

/* ---- for transports (dev->lock held unless noted) ---- */

uint32_t virtio_dev_status(const struct virtio_dev *dev);   /* no lock needed */
void virtio_dev_set_status(struct virtio_dev *dev, uint32_t status);
void virtio_dev_reset(struct virtio_dev *dev);
void virtio_dev_set_driver_features(struct virtio_dev *dev, unsigned word, uint32_t value);
/* QueueReady = 1 / 0. */
void virtio_dev_queue_ready(struct virtio_dev *dev, unsigned q, bool ready);
/* QueueNotify: no lock needed, any vCPU thread. */
void virtio_dev_notify(struct virtio_dev *dev, unsigned q);
/* InterruptStatus / InterruptACK: no lock needed. */
uint32_t virtio_dev_isr(struct virtio_dev *dev);
void virtio_dev_ack(struct virtio_dev *dev, uint32_t bits);

/* ---- snapshots (virtio_snapshot.c) ---- */

/* Take / release the transport lock and every queue lock: with them held
 * no request is in flight. */
void virtio_dev_quiesce(struct virtio_dev *dev);
void virtio_dev_unquiesce(struct virtio_dev *dev);
/* The whole VM is loaded: run ops->restored and serve what the queues
 * hold. No lock held. */
void virtio_dev_restored(struct virtio_dev *dev);

#endif

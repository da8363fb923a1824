/*
 * The split virtqueue core, device side (virtio 1.2 section 2.7); see
 * virtq.h for the contract. Layout of the three areas (2.7, table "Virtqueue
 * Part Alignment and Size"):
 *   descriptor table  16 * size bytes, 16-byte aligned
 *   available ring    flags u16, idx u16, ring[size] u16, used_event u16
 *   used ring         flags u16, idx u16, ring[size] {id u32, len u32},
 *                     avail_event u16
 * All fields are little-endian; skiff's hosts (x86-64, RISC-V) are too.
 */
#include "virtio/virtq.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "virtq.c assumes a little-endian host (virtio rings are little-endian)"
#endif

/* Stop the compiler from re-reading guest memory instead of using a copy
 * already taken (the guest may change it at any time). */
#define compiler_barrier() __asm__ __volatile__("" ::: "memory")

static uint16_t *avail_flags(const struct virtq *vq) { return (uint16_t *)vq->avail; }
static uint16_t *avail_idx(const struct virtq *vq) { return (uint16_t *)(vq->avail + 2); }
static uint16_t *avail_ring(const struct virtq *vq, unsigned i) { return (uint16_t *)(vq->avail + 4 + 2 * i); }
static uint16_t *used_event(const struct virtq *vq) { return (uint16_t *)(vq->avail + 4 + 2 * vq->size); }
static uint16_t *used_flags(const struct virtq *vq) { return (uint16_t *)vq->used; }
static uint16_t *used_idx(const struct virtq *vq) { return (uint16_t *)(vq->used + 2); }
static uint32_t *used_elem(const struct virtq *vq, unsigned i) { return (uint32_t *)(vq->used + 4 + 8 * i); }
static uint16_t *avail_event(const struct virtq *vq) { return (uint16_t *)(vq->used + 4 + 8 * vq->size); }

static uint64_t avail_bytes(uint16_t size) { return 6 + 2 * (uint64_t)size; }
static uint64_t used_bytes(uint16_t size) { return 6 + 8 * (uint64_t)size; }

int virtq_init(struct virtq *vq, unsigned index, uint16_t max_size,
	       virtq_error_fn *on_error, void *err_opaque)
{
	memset(vq, 0, sizeof(*vq));
	if (max_size == 0 || (max_size & (max_size - 1)))
		return -1;
	if (pthread_mutex_init(&vq->lock, NULL))
		return -1;
	vq->index = index;
	vq->max_size = max_size;
	vq->size = max_size;
	vq->on_error = on_error;
	vq->err_opaque = err_opaque;
	return 0;
}

void virtq_destroy(struct virtq *vq)
{
	pthread_mutex_destroy(&vq->lock);
}

int virtq_start(struct virtq *vq, struct gram *ram, uint64_t features,
		char *err, size_t errlen)
{
	uint16_t n = vq->size;
	if (n == 0 || n > vq->max_size || (n & (n - 1))) {
		snprintf(err, errlen, "queue %u: size %u is not a power of two in 1..%u",
			 vq->index, n, vq->max_size);
		return -1;
	}
	if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3)) {
		snprintf(err, errlen, "queue %u: misaligned ring (desc %#llx, driver %#llx, device %#llx)",
			 vq->index, (unsigned long long)vq->desc_gpa,
			 (unsigned long long)vq->avail_gpa, (unsigned long long)vq->used_gpa);
		return -1;
	}
	uint8_t *d = gram_ptr(ram, vq->desc_gpa, 16 * (uint64_t)n);
	uint8_t *a = gram_ptr(ram, vq->avail_gpa, avail_bytes(n));
	uint8_t *u = gram_ptr(ram, vq->used_gpa, used_bytes(n));
	if (!d || !a || !u) {
		snprintf(err, errlen, "queue %u: %s area at %#llx lies outside guest RAM",
			 vq->index, !d ? "descriptor" : !a ? "driver" : "device",
			 (unsigned long long)(!d ? vq->desc_gpa : !a ? vq->avail_gpa : vq->used_gpa));
		return -1;
	}
	vq->ram = ram;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	vq->event_idx = features & (1ull << VIRTIO_F_RING_EVENT_IDX);
	vq->indirect = features & (1ull << VIRTIO_F_RING_INDIRECT_DESC);
	/* The ring indexes (the "available state" and "used state") are left
	 * as they are: only a device reset (or a queue reset, not offered)
	 * brings them back to 0 (virtio 1.2 2.6.1, 2.1.2). A driver that
	 * writes QueueReady 0 and then 1 resumes where it stopped; starting
	 * over at entry 0 would serve its old requests twice and move the
	 * used index backwards under it. A broken queue stays broken. */
	vq->ready = true;
	return 0;
}

void virtq_stop(struct virtq *vq)
{
	vq->ready = false;
	vq->desc = vq->avail = vq->used = NULL;
}

void virtq_reset(struct virtq *vq)
{
	virtq_stop(vq);
	vq->broken = false;
	vq->error[0] = 0;
	vq->size = vq->max_size;
	vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	vq->last_avail = vq->used_idx = vq->signalled_used = 0;
	vq->pushed = false;
}

__attribute__((format(printf, 2, 3)))
static int vq_fail(struct virtq *vq, const char *fmt, ...)
{
	if (vq->broken)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(vq->error, sizeof(vq->error), "queue %u: ", vq->index);
	if (n < 0 || (size_t)n >= sizeof(vq->error))
		n = 0;
	vsnprintf(vq->error + n, sizeof(vq->error) - n, fmt, ap);
	va_end(ap);
	vq->broken = true;
	if (vq->on_error)
		vq->on_error(vq->err_opaque, vq, vq->error);
	return -1;
}

static void read_desc(const uint8_t *table, unsigned i, struct virtq_desc *d)
{
	memcpy(d, table + 16 * (size_t)i, sizeof(*d));
	compiler_barrier();
}

bool virtq_has_avail(struct virtq *vq)
{
	if (!vq->ready || vq->broken)
		return false;
	return __atomic_load_n(avail_idx(vq), __ATOMIC_ACQUIRE) != vq->last_avail;
}

int virtq_pop(struct virtq *vq, struct virtq_req *req)
{
	if (vq->broken)
		return -1;
	if (!vq->ready)
		return 0;
	uint16_t size = vq->size;
	/* Acquire: ring entries and descriptors written before idx are seen. */
	uint16_t idx = __atomic_load_n(avail_idx(vq), __ATOMIC_ACQUIRE);
	uint16_t pending = (uint16_t)(idx - vq->last_avail);
	if (pending == 0)
		return 0;
	if (pending > size)
		return vq_fail(vq, "available index moved from %u to %u, more than the queue size %u",
			       vq->last_avail, idx, size);
	uint16_t head = __atomic_load_n(avail_ring(vq, vq->last_avail & (size - 1)),
					__ATOMIC_RELAXED);
	if (head >= size)
		return vq_fail(vq, "available ring entry %u names descriptor %u, queue size %u",
			       vq->last_avail, head, size);

	req->head = head;
	req->nout = req->nin = 0;
	req->out_len = req->in_len = 0;

	const uint8_t *table = vq->desc;
	unsigned table_n = size;   /* entries in the table being walked */
	unsigned steps = 0;        /* descriptors visited in that table */
	bool indirect = false, seen_write = false;
	unsigned i = head;
	for (;;) {
		struct virtq_desc d;
		if (++steps > table_n)
			return vq_fail(vq, "descriptor chain from head %u is longer than its %s table (%u entries): a loop?",
				       head, indirect ? "indirect" : "descriptor", table_n);
		read_desc(table, i, &d);

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* 2.7.5.3: only with the feature, never nested, never
			 * together with NEXT; the table is a whole number of
			 * descriptors. Its WRITE flag is ignored. */
			if (!vq->indirect)
				return vq_fail(vq, "indirect descriptor but VIRTIO_F_RING_INDIRECT_DESC not negotiated");
			if (indirect)
				return vq_fail(vq, "nested indirect descriptor in chain from head %u", head);
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return vq_fail(vq, "indirect descriptor %u also has NEXT set", i);
			if (d.len == 0 || d.len % 16 || d.len / 16 > VIRTQ_MAX_SEGS)
				return vq_fail(vq, "indirect table length %u is not a multiple of 16 in 16..%u",
					       d.len, 16 * VIRTQ_MAX_SEGS);
			table = gram_ptr(vq->ram, d.addr, d.len);
			if (!table)
				return vq_fail(vq, "indirect table [%#llx, +%u) lies outside guest RAM",
					       (unsigned long long)d.addr, d.len);
			table_n = d.len / 16;
			steps = 0;
			indirect = true;
			i = 0;
			continue;
		}

		if (d.flags & VIRTQ_DESC_F_WRITE) {
			seen_write = true;
		} else if (seen_write) {
			return vq_fail(vq, "device-readable descriptor after a writable one in chain from head %u", head);
		}
		if (d.len) {
			void *host = gram_ptr(vq->ram, d.addr, d.len);
			if (!host)
				return vq_fail(vq, "buffer [%#llx, +%u) lies outside guest RAM",
					       (unsigned long long)d.addr, d.len);
			unsigned n = req->nout + req->nin;
			if (n >= VIRTQ_MAX_SEGS)
				return vq_fail(vq, "chain from head %u has more than %u segments", head, VIRTQ_MAX_SEGS);
			req->iov[n].iov_base = host;
			req->iov[n].iov_len = d.len;
			req->gpa[n] = d.addr;
			if (d.flags & VIRTQ_DESC_F_WRITE) {
				req->nin++;
				req->in_len += d.len;
			} else {
				req->nout++;
				req->out_len += d.len;
			}
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= table_n)
			return vq_fail(vq, "descriptor %u: next index %u out of range (%u entries)",
				       i, d.next, table_n);
		i = d.next;
	}
	vq->last_avail++;
	return 1;
}

void virtq_push(struct virtq *vq, const struct virtq_req *req, uint32_t written)
{
	if (!vq->ready)
		return;
	if (written > req->in_len)
		written = (uint32_t)req->in_len;
	for (unsigned k = req->nout; k < req->nout + req->nin; k++)
		gram_written(vq->ram, req->gpa[k], req->iov[k].iov_len);

	unsigned slot = vq->used_idx & (vq->size - 1);
	uint32_t *e = used_elem(vq, slot);
	__atomic_store_n(&e[0], (uint32_t)req->head, __ATOMIC_RELAXED);
	__atomic_store_n(&e[1], written, __ATOMIC_RELAXED);
	gram_written(vq->ram, vq->used_gpa + 4 + 8 * (uint64_t)slot, 8);
	vq->used_idx++;
	/* Release: the element is visible before the index that covers it. */
	__atomic_store_n(used_idx(vq), vq->used_idx, __ATOMIC_RELEASE);
	gram_written(vq->ram, vq->used_gpa + 2, 2);
	vq->pushed = true;
}

bool virtq_should_notify(struct virtq *vq)
{
	if (!vq->ready || !vq->pushed)
		return false;
	/* The used index store must be globally visible before we read the
	 * driver's suppression state, or both sides may decide to wait. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t old = vq->signalled_used, now = vq->used_idx;
	vq->signalled_used = now;
	vq->pushed = false;
	if (vq->event_idx) {
		/* 2.7.10: notify if used_event lies in [old, now). */
		uint16_t ev = __atomic_load_n(used_event(vq), __ATOMIC_RELAXED);
		return (uint16_t)(now - ev - 1) < (uint16_t)(now - old);
	}
	return !(__atomic_load_n(avail_flags(vq), __ATOMIC_RELAXED) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

void virtq_disable_notify(struct virtq *vq)
{
	if (!vq->ready || vq->event_idx)
		return;
	__atomic_store_n(used_flags(vq), (uint16_t)VIRTQ_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
	gram_written(vq->ram, vq->used_gpa, 2);
}

bool virtq_enable_notify(struct virtq *vq)
{
	if (!vq->ready || vq->broken)
		return false;
	if (vq->event_idx) {
		__atomic_store_n(avail_event(vq), vq->last_avail, __ATOMIC_RELAXED);
		gram_written(vq->ram, vq->used_gpa + 4 + 8 * (uint64_t)vq->size, 2);
	} else {
		__atomic_store_n(used_flags(vq), (uint16_t)0, __ATOMIC_RELAXED);
		gram_written(vq->ram, vq->used_gpa, 2);
	}
	/* Our store must be visible before we look at avail->idx again, or a
	 * buffer added in between would get neither a kick nor our attention. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(avail_idx(vq), __ATOMIC_ACQUIRE) != vq->last_avail;
}

/* Copy between buf and the request's buffers iov[first, first + count),
 * starting `off` bytes into them; to_guest says which way. */
static size_t req_copy(const struct virtq_req *req, unsigned first, unsigned count, uint64_t off,
		       void *buf, size_t len, bool to_guest)
{
	size_t done = 0;
	for (unsigned k = first; k < first + count && done < len; k++) {
		size_t seg = req->iov[k].iov_len;
		if (off >= seg) {
			off -= seg;
			continue;
		}
		size_t n = seg - off;
		if (n > len - done)
			n = len - done;
		uint8_t *guest = (uint8_t *)req->iov[k].iov_base + off, *host = (uint8_t *)buf + done;
		if (to_guest)
			memcpy(guest, host, n);
		else
			memcpy(host, guest, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t virtq_req_read(const struct virtq_req *req, uint64_t off, void *dst, size_t len)
{
	size_t done = req_copy(req, 0, req->nout, off, dst, len, false);
	compiler_barrier();
	return done;
}

size_t virtq_req_write(struct virtq_req *req, uint64_t off, const void *src, size_t len)
{
	return req_copy(req, req->nout, req->nin, off, (void *)src, len, true);
}

int iov_slice(const struct iovec *src, unsigned n, uint64_t off, uint64_t len,
	      struct iovec *dst, unsigned maxdst)
{
	unsigned out = 0;
	for (unsigned k = 0; k < n && len > 0; k++) {
		uint64_t seg = src[k].iov_len;
		if (off >= seg) {
			off -= seg;
			continue;
		}
		uint64_t take = seg - off;
		if (take > len)
			take = len;
		if (out >= maxdst)
			return -1;
		dst[out].iov_base = (uint8_t *)src[k].iov_base + off;
		dst[out].iov_len = take;
		out++;
		len -= take;
		off = 0;
	}
	return len ? -1 : (int)out;
}

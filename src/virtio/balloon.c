/*
 * virtio-balloon device model (virtio 1.2 section 5.5).
 *
 * Features offered: STATS_VQ (when a polling interval is configured),
 * DEFLATE_ON_OOM (when configured), FREE_PAGE_HINT (when configured) and
 * PAGE_REPORTING (free page reporting). MUST_TELL_HOST is not offered: the
 * host does nothing on deflate, a deflated page simply faults back in as
 * zeros.
 *
 * Queues: 0 inflateq, 1 deflateq, then statsq, free_page_vq and
 * reporting_vq, each only when its feature was negotiated and numbered
 * without gaps (as Linux and QEMU number them: with PAGE_REPORTING but no
 * STATS_VQ or FREE_PAGE_HINT the reporting queue is 2).
 *
 *   inflateq (5.5.6.1): arrays of le32 page frame numbers (4 KiB pages);
 *     each page in guest RAM is discarded (gram_discard: MADV_DONTNEED),
 *     runs of consecutive frames in one call. Frames outside RAM are
 *     ignored.
 *   deflateq: counted only.
 *   statsq (5.5.6.3): the driver's one buffer of {le16 tag, le64 value}
 *     entries is parsed and kept until the next poll, when it is returned
 *     so the driver refills it. The latest values are kept for the API.
 *   free_page_vq (5.5.6.4): a run starts when the host writes a new
 *     command id (2 and up) to free_page_hint_cmd_id; the driver answers
 *     with that id, then hints free ranges of its memory (device-writable
 *     buffers, discarded like reported pages), then sends STOP (0). The
 *     host writes DONE (1) when the driver may use those pages again
 *     (Firecracker's acknowledge_on_stop does it as soon as STOP comes).
 *   reporting_vq (5.5.6.7): each buffer segment is a free range of guest
 *     RAM; it is discarded and the buffer returned.
 *
 * Configuration (5.5.4): num_pages (the target, set by the host), actual
 * (written by the driver), free_page_hint_cmd_id (the host's).
 */
#include "virtio/balloon.h"
#include "base/thread_start.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/snapfile.h"

#define F_MUST_TELL_HOST 0
#define F_STATS_VQ       1
#define F_DEFLATE_ON_OOM 2
#define F_FREE_PAGE_HINT 3
#define F_PAGE_POISON    4
#define F_PAGE_REPORTING 5

#define Q_INFLATE 0
#define Q_DEFLATE 1
#define BALLOON_QUEUES 5         /* inflate, deflate, stats, free page, reporting */
#define BALLOON_QUEUE_SIZE 128

#define PFN_SHIFT 12            /* VIRTIO_BALLOON_PFN_SHIFT */
#define PAGES_PER_MIB (1u << (20 - PFN_SHIFT))
#define STAT_ENTRY 10           /* le16 tag + le64 value, packed */
/* free_page_hint_cmd_id values (5.5.6.4): 0 asks the driver to stop, 1
 * tells it the host is done with the hinted pages (it may use them again),
 * and a run has an id of its own from 2 on. */
#define CMD_ID_STOP 0
#define CMD_ID_DONE 1
#define CMD_ID_FIRST 2

struct virtio_balloon {
	struct virtio_dev dev;      /* first: container_of is a cast */
	uint64_t ram_pages;
	bool offer_stats;

	pthread_mutex_t lock;       /* the fields below */
	uint32_t num_pages;         /* config: target */
	uint32_t actual;            /* config: written by the driver */
	int q_stats, q_hint, q_report;   /* queue index or -1 (negotiated) */
	bool offer_hint;
	uint32_t hint_cmd;          /* config: free_page_hint_cmd_id, the host's */
	uint32_t guest_cmd;         /* the last command id the driver sent */
	uint32_t last_run;          /* the id of the latest run (0: none yet) */
	bool hint_ack_on_stop;      /* answer the driver's STOP with DONE */
	uint64_t hinted;            /* bytes of free page hints, ever */
	struct virtq_req *stats_req;
	bool stats_held;            /* the driver's stats buffer is with us */
	bool stats_due;             /* return it at the next chance */
	bool stats_valid;
	uint64_t stats_time_ns;     /* CLOCK_MONOTONIC */
	uint32_t present;
	uint64_t stat[VIRTIO_BALLOON_S_NR];
	uint64_t inflated, deflated, reported;

	/* The statistics poller. */
	pthread_t thread;
	bool thread_started;
	pthread_cond_t cond;
	bool stop;
	uint32_t interval_s;
};

/* Discard a run of pages [pfn, pfn + n) if it lies in RAM. */
static void discard_pages(struct virtio_balloon *b, uint64_t pfn, uint64_t n)
{
	uint64_t gpa = pfn << PFN_SHIFT, len = n << PFN_SHIFT;
	if (pfn > (UINT64_MAX >> PFN_SHIFT) || !gram_contains(b->dev.ram, gpa, len)) {
		/* Part may be RAM: one page at a time. */
		for (uint64_t i = 0; i < n; i++)
			if (gram_contains(b->dev.ram, (pfn + i) << PFN_SHIFT, 1ull << PFN_SHIFT))
				gram_discard(b->dev.ram, (pfn + i) << PFN_SHIFT, 1ull << PFN_SHIFT);
		return;
	}
	gram_discard(b->dev.ram, gpa, len);
}

static uint32_t inflate_request(struct virtio_dev *dev, struct virtq *vq, struct virtq_req *req)
{
	struct virtio_balloon *b = (struct virtio_balloon *)dev;
	uint32_t pfns[256];
	uint64_t run_start = 0, run_len = 0, count = 0;
	uint64_t total = req->out_len / 4;
	for (uint64_t off = 0; off < total;) {
		size_t n = total - off < 256 ? (size_t)(total - off) : 256;
		virtq_req_read(req, off * 4, pfns, n * 4);
		for (size_t i = 0; i < n; i++) {
			uint64_t p = pfns[i];
			if (run_len && p == run_start + run_len) {
				run_len++;
				continue;
			}
			if (run_len)
				discard_pages(b, run_start, run_len);
			run_start = p;
			run_len = 1;
		}
		off += n;
		count += n;
	}
	if (run_len)
		discard_pages(b, run_start, run_len);
	pthread_mutex_lock(&b->lock);
	b->inflated += count;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static uint32_t deflate_request(struct virtio_dev *dev, struct virtq *vq, struct virtq_req *req)
{
	struct virtio_balloon *b = (struct virtio_balloon *)dev;
	pthread_mutex_lock(&b->lock);
	b->deflated += req->out_len / 4;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static uint32_t report_request(struct virtio_dev *dev, struct virtq *vq, struct virtq_req *req)
{
	struct virtio_balloon *b = (struct virtio_balloon *)dev;
	uint64_t bytes = 0;
	/* Linux offers the ranges device-writable; take either part. */
	for (unsigned k = 0; k < req->nout + req->nin; k++) {
		if (gram_discard(dev->ram, req->gpa[k], req->iov[k].iov_len) == 0)
			bytes += req->iov[k].iov_len;
	}
	pthread_mutex_lock(&b->lock);
	b->reported += bytes;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

/* free_page_vq (5.5.6.4): a buffer the driver writes holds a command id;
 * a device-writable one is a range of free guest memory, given back to the
 * host like reported pages. */
static uint32_t hint_request(struct virtio_dev *dev, struct virtq *vq, struct virtq_req *req)
{
	struct virtio_balloon *b = (struct virtio_balloon *)dev;
	bool notify = false;
	if (req->nin == 0) {
		uint32_t id;
		if (virtq_req_read(req, 0, &id, sizeof(id)) != sizeof(id))
			return 0;
		pthread_mutex_lock(&b->lock);
		b->guest_cmd = id;
		if (id == CMD_ID_STOP && b->hint_ack_on_stop && b->hint_cmd >= CMD_ID_FIRST) {
			b->hint_cmd = CMD_ID_DONE;
			notify = true;
		}
		pthread_mutex_unlock(&b->lock);
		if (notify)
			virtio_dev_config_changed(dev);
		return 0;
	}
	uint64_t bytes = 0;
	for (unsigned k = req->nout; k < req->nout + req->nin; k++)
		if (gram_discard(dev->ram, req->gpa[k], req->iov[k].iov_len) == 0)
			bytes += req->iov[k].iov_len;
	pthread_mutex_lock(&b->lock);
	b->hinted += bytes;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static void parse_stats(struct virtio_balloon *b, struct virtq_req *req)
{
	uint64_t n = req->out_len / STAT_ENTRY;
	if (n > 64)
		n = 64;   /* far more than there are tags */
	for (uint64_t i = 0; i < n; i++) {
		uint8_t e[STAT_ENTRY];
		virtq_req_read(req, i * STAT_ENTRY, e, STAT_ENTRY);
		uint16_t tag = (uint16_t)(e[0] | e[1] << 8);
		uint64_t val;
		memcpy(&val, e + 2, 8);   /* le64 on a little-endian host */
		if (tag < VIRTIO_BALLOON_S_NR) {
			b->stat[tag] = val;
			b->present |= 1u << tag;
		}
	}
	b->stats_valid = true;
	b->stats_time_ns = clock_monotonic_ns();
}

/* statsq: keep the driver's buffer until the poller wants new values. */
static void stats_process(struct virtio_balloon *b, struct virtq *vq)
{
	pthread_mutex_lock(&b->lock);
	for (;;) {
		if (b->stats_held && b->stats_due) {
			virtq_push(vq, b->stats_req, 0);
			b->stats_held = false;
			b->stats_due = false;
		}
		if (b->stats_held)
			break;
		int r = virtq_pop(vq, b->stats_req);
		if (r <= 0)
			break;
		parse_stats(b, b->stats_req);
		b->stats_held = true;
		b->stats_due = false;   /* these are fresh: keep them a full interval */
	}
	pthread_mutex_unlock(&b->lock);
	virtio_dev_used(&b->dev, vq);
}

static void balloon_process(struct virtio_dev *dev, struct virtq *vq)
{
	struct virtio_balloon *b = (struct virtio_balloon *)dev;
	pthread_mutex_lock(&b->lock);
	int qs = b->q_stats, qh = b->q_hint, qr = b->q_report;
	pthread_mutex_unlock(&b->lock);
	int q = (int)vq->index;
	if (q == Q_INFLATE)
		virtio_dev_serve(dev, vq, inflate_request);
	else if (q == Q_DEFLATE)
		virtio_dev_serve(dev, vq, deflate_request);
	else if (q == qs)
		stats_process(b, vq);
	else if (q == qh)
		virtio_dev_serve(dev, vq, hint_request);
	else if (q == qr)
		virtio_dev_serve(dev, vq, report_request);
	/* else: a queue that does not exist with these features */
}

static bool balloon_features_ok(struct virtio_dev *dev, uint64_t f)
{
	struct virtio_balloon *b = (struct virtio_balloon *)dev;
	int next = 2;
	pthread_mutex_lock(&b->lock);
	b->q_stats = (f >> F_STATS_VQ) & 1 ? next++ : -1;
	b->q_hint = (f >> F_FREE_PAGE_HINT) & 1 ? next++ : -1;
	b->q_report = (f >> F_PAGE_REPORTING) & 1 ? next++ : -1;
	pthread_mutex_unlock(&b->lock);
	return true;
}

static void balloon_reset(struct virtio_dev *dev)
{
	struct virtio_balloon *b = (struct virtio_balloon *)dev;
	pthread_mutex_lock(&b->lock);
	b->q_stats = b->q_hint = b->q_report = -1;
	b->stats_held = false;
	b->stats_due = false;
	b->actual = 0;
	pthread_mutex_unlock(&b->lock);
}

static bool balloon_config_read(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t *value)
{
	struct virtio_balloon *b = (struct virtio_balloon *)dev;
	uint8_t cfg[16] = { 0 };
	pthread_mutex_lock(&b->lock);
	memcpy(cfg, &b->num_pages, 4);
	memcpy(cfg + 4, &b->actual, 4);
	memcpy(cfg + 8, &b->hint_cmd, 4);
	pthread_mutex_unlock(&b->lock);
	*value = virtio_config_get(cfg, sizeof(cfg), off, size);
	return true;
}

static bool balloon_config_write(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t value)
{
	struct virtio_balloon *b = (struct virtio_balloon *)dev;
	/* Only `actual` is the driver's (poison_val needs PAGE_POISON). */
	if (off == 4 && size == 4) {
		pthread_mutex_lock(&b->lock);
		b->actual = (uint32_t)value;
		pthread_mutex_unlock(&b->lock);
	}
	return true;
}

/* Snapshots: the target and what the driver reports holding, the latest
 * statistics and the counters. The driver's statistics buffer, when the
 * device holds it, goes back to the statistics queue, so the restored
 * device takes it again and the driver need not know. */
static int balloon_save(struct virtio_dev *dev, struct snap_writer *w, uint16_t *unpopped,
		     char *err, size_t errlen)
{
	struct virtio_balloon *b = (struct virtio_balloon *)dev;
	pthread_mutex_lock(&b->lock);
	if (b->stats_held && b->q_stats >= 0)
		unpopped[b->q_stats] = 1;
	snap_put_u32(w, b->num_pages);
	snap_put_u32(w, b->actual);
	snap_put_u64(w, b->inflated);
	snap_put_u64(w, b->deflated);
	snap_put_u64(w, b->reported);
	snap_put_u8(w, b->stats_valid);
	snap_put_u32(w, b->present);
	for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
		snap_put_u64(w, b->stat[i]);
	/* version 2: free page hinting */
	snap_put_u32(w, b->hint_cmd);
	snap_put_u32(w, b->guest_cmd);
	snap_put_u8(w, b->hint_ack_on_stop);
	snap_put_u64(w, b->hinted);
	snap_put_u32(w, b->last_run);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static void balloon_load(struct virtio_dev *dev, struct snap_reader *r)
{
	struct virtio_balloon *b = (struct virtio_balloon *)dev;
	uint32_t target = snap_get_u32(r), actual = snap_get_u32(r);
	uint64_t inflated = snap_get_u64(r), deflated = snap_get_u64(r), reported = snap_get_u64(r);
	uint8_t valid = snap_get_u8(r);
	uint32_t present = snap_get_u32(r);
	uint64_t stat[VIRTIO_BALLOON_S_NR];
	for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
		stat[i] = snap_get_u64(r);
	uint32_t hint_cmd = CMD_ID_STOP, guest_cmd = CMD_ID_STOP;
	uint8_t ack = 0;
	uint64_t hinted = 0;
	uint32_t last_run = 0;
	if (r->version >= 2) {
		hint_cmd = snap_get_u32(r);
		guest_cmd = snap_get_u32(r);
		ack = snap_get_u8(r);
		hinted = snap_get_u64(r);
		last_run = snap_get_u32(r);
	}
	if (r->overrun)
		return;
	if (ack > 1) {
		snap_reader_fail(r, "bad free page hinting flag %u", ack);
		return;
	}
	if (target > b->ram_pages || valid > 1 || (present >> VIRTIO_BALLOON_S_NR)) {
		snap_reader_fail(r, "balloon target of %u pages in %llu pages of RAM, or bad flags",
				 target, (unsigned long long)b->ram_pages);
		return;
	}
	pthread_mutex_lock(&b->lock);
	b->num_pages = target;
	b->actual = actual;
	b->inflated = inflated;
	b->deflated = deflated;
	b->reported = reported;
	b->stats_valid = valid;
	b->present = present;
	memcpy(b->stat, stat, sizeof(stat));
	b->hint_cmd = hint_cmd;
	b->guest_cmd = guest_cmd;
	b->hint_ack_on_stop = ack;
	b->hinted = hinted;
	b->last_run = last_run;
	b->stats_time_ns = clock_monotonic_ns();
	pthread_mutex_unlock(&b->lock);
}

static const struct virtio_dev_ops balloon_ops = {
	.name = "balloon",
	.device_id = VIRTIO_ID_BALLOON,
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.features_ok = balloon_features_ok,
	.queue_process = balloon_process,
	.reset = balloon_reset,
	.save_version = 2,
	.save = balloon_save,
	.load = balloon_load,
};

/* Every interval, ask the driver for fresh statistics. */
static void *poll_thread(void *arg)
{
	struct virtio_balloon *b = arg;
	pthread_mutex_lock(&b->lock);
	while (!b->stop) {
		struct timespec until = clock_timespec(clock_monotonic_ns() +
						       (b->interval_s ? b->interval_s : 1) * CLOCK_NS_PER_S);
		int r = 0;
		while (!b->stop && r != ETIMEDOUT)
			r = pthread_cond_timedwait(&b->cond, &b->lock, &until);
		if (b->stop)
			break;
		b->stats_due = true;
		int q = b->q_stats;
		pthread_mutex_unlock(&b->lock);
		if (q >= 0)
			virtio_dev_kick(&b->dev, (unsigned)q);
		pthread_mutex_lock(&b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

struct virtio_balloon *virtio_balloon_create(struct gram *ram, const struct virtio_balloon_config *c,
					     char *err, size_t errlen)
{
	uint64_t ram_pages = ram->size >> PFN_SHIFT;
	if ((uint64_t)c->target_mib * PAGES_PER_MIB > ram_pages) {
		snprintf(err, errlen, "virtio-balloon: target %" PRIu32 " MiB is more than guest RAM "
			 "(%" PRIu64 " MiB)", c->target_mib, ram->size >> 20);
		return NULL;
	}
	struct virtio_balloon *b = calloc(1, sizeof(*b));
	if (!b || !(b->stats_req = malloc(sizeof(*b->stats_req)))) {
		free(b);
		snprintf(err, errlen, "virtio-balloon: out of memory");
		return NULL;
	}
	b->ram_pages = ram_pages;
	b->num_pages = c->target_mib * PAGES_PER_MIB;
	b->q_stats = b->q_hint = b->q_report = -1;
	b->offer_stats = c->stats_interval_s > 0;
	b->offer_hint = c->free_page_hinting;
	b->interval_s = c->stats_interval_s;
	uint64_t f = 0;
	if (b->offer_stats)
		f |= 1ull << F_STATS_VQ;
	if (c->deflate_on_oom)
		f |= 1ull << F_DEFLATE_ON_OOM;
	if (!c->no_free_page_reporting)
		f |= 1ull << F_PAGE_REPORTING;
	if (c->free_page_hinting)
		f |= 1ull << F_FREE_PAGE_HINT;
	uint16_t sizes[BALLOON_QUEUES];
	for (unsigned q = 0; q < BALLOON_QUEUES; q++)
		sizes[q] = BALLOON_QUEUE_SIZE;
	if (virtio_dev_init(&b->dev, &balloon_ops, ram, f, BALLOON_QUEUES, sizes, err, errlen)) {
		free(b->stats_req);
		free(b);
		return NULL;
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (b->offer_stats) {
		int e = thread_start(ram ? ram->threads : NULL, &b->thread, "balloon-stats", poll_thread, b);
		if (e) {
			snprintf(err, errlen, "virtio-balloon: cannot start the statistics thread: %s",
				 strerror(e));
			virtio_balloon_destroy(b);
			return NULL;
		}
		b->thread_started = true;
	}
	if (virtio_dev_start(&b->dev, err, errlen)) {
		virtio_balloon_destroy(b);
		return NULL;
	}
	return b;
}

void virtio_balloon_destroy(struct virtio_balloon *b)
{
	if (!b)
		return;
	if (b->thread_started) {
		pthread_mutex_lock(&b->lock);
		b->stop = true;
		pthread_cond_signal(&b->cond);
		pthread_mutex_unlock(&b->lock);
		pthread_join(b->thread, NULL);
	}
	virtio_dev_fini(&b->dev);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b->stats_req);
	free(b);
}

struct virtio_dev *virtio_balloon_dev(struct virtio_balloon *b)
{
	return &b->dev;
}

int virtio_balloon_set_target(struct virtio_balloon *b, uint32_t target_mib, char *err, size_t errlen)
{
	if ((uint64_t)target_mib * PAGES_PER_MIB > b->ram_pages) {
		snprintf(err, errlen, "target %" PRIu32 " MiB is more than guest RAM (%" PRIu64 " MiB)",
			 target_mib, b->ram_pages >> (20 - PFN_SHIFT));
		return -1;
	}
	pthread_mutex_lock(&b->dev.lock);
	pthread_mutex_lock(&b->lock);
	b->num_pages = target_mib * PAGES_PER_MIB;
	pthread_mutex_unlock(&b->lock);
	virtio_dev_config_changed(&b->dev);
	pthread_mutex_unlock(&b->dev.lock);
	return 0;
}

int virtio_balloon_set_stats_interval(struct virtio_balloon *b, uint32_t seconds,
				      char *err, size_t errlen)
{
	if (!b->offer_stats) {
		snprintf(err, errlen, "statistics were not enabled when the balloon was created");
		return -1;
	}
	if (seconds == 0) {
		snprintf(err, errlen, "the statistics interval cannot become 0 while the VM runs");
		return -1;
	}
	pthread_mutex_lock(&b->lock);
	b->interval_s = seconds;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

void virtio_balloon_get_info(struct virtio_balloon *b, struct virtio_balloon_info *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&b->lock);
	out->target_mib = b->num_pages / PAGES_PER_MIB;
	out->actual_mib = b->actual / PAGES_PER_MIB;
	out->target_pages = b->num_pages;
	out->actual_pages = b->actual;
	out->inflated_pages = b->inflated;
	out->deflated_pages = b->deflated;
	out->reported_bytes = b->reported;
	out->stats_valid = b->stats_valid;
	if (b->stats_valid)
		out->stats_age_ms = (clock_monotonic_ns() - b->stats_time_ns) / 1000000;
	out->present = b->present;
	memcpy(out->stat, b->stat, sizeof(out->stat));
	pthread_mutex_unlock(&b->lock);
}

int virtio_balloon_hint(struct virtio_balloon *b, bool start, bool ack_on_stop, char *err,
			size_t errlen)
{
	if (!b->offer_hint) {
		snprintf(err, errlen, "free page hinting was not enabled when the balloon was configured");
		return -1;
	}
	pthread_mutex_lock(&b->lock);
	if (start) {
		/* A new run has an id no run before it had (the driver ignores
		 * an id it has seen), never STOP or DONE. */
		b->last_run = b->last_run < CMD_ID_FIRST || b->last_run == UINT32_MAX ? CMD_ID_FIRST
										      : b->last_run + 1;
		b->hint_cmd = b->last_run;
		b->hint_ack_on_stop = ack_on_stop;
	} else {
		b->hint_cmd = CMD_ID_DONE;
	}
	pthread_mutex_unlock(&b->lock);
	virtio_dev_config_changed(&b->dev);
	return 0;
}

int virtio_balloon_hint_status(struct virtio_balloon *b, uint32_t *host_cmd, uint32_t *guest_cmd,
			       char *err, size_t errlen)
{
	if (!b->offer_hint) {
		snprintf(err, errlen, "free page hinting was not enabled when the balloon was configured");
		return -1;
	}
	pthread_mutex_lock(&b->lock);
	*host_cmd = b->hint_cmd;
	*guest_cmd = b->guest_cmd;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

/*
 * virtio-balloon (virtio 1.2 section 5.5): inflate/deflate, the statistics
 * queue, DEFLATE_ON_OOM, free page hinting and free page reporting. Pages the guest gives up
 * (inflated or reported free) go back to the host with gram_discard().
 */
#ifndef SKIFF_VIRTIO_BALLOON_H
#define SKIFF_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/gram.h"
#include "virtio/virtio.h"

#define VIRTIO_ID_BALLOON 5

struct virtio_balloon_config {
	uint32_t target_mib;        /* initial balloon size */
	bool deflate_on_oom;        /* VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	uint32_t stats_interval_s;  /* 0: no statistics queue */
	bool no_free_page_reporting;
	bool free_page_hinting;     /* VIRTIO_BALLOON_F_FREE_PAGE_HINT */
};

struct virtio_balloon;

/* NULL with a message in err. */
struct virtio_balloon *virtio_balloon_create(struct gram *ram, const struct virtio_balloon_config *c,
					     char *err, size_t errlen);
void virtio_balloon_destroy(struct virtio_balloon *b);
struct virtio_dev *virtio_balloon_dev(struct virtio_balloon *b);

/* Set the target size (MiB the guest should give back); the driver learns
 * it through a configuration change notification. 0, or -1 with a message
 * (larger than guest RAM). Any thread. */
int virtio_balloon_set_target(struct virtio_balloon *b, uint32_t target_mib, char *err, size_t errlen);
/* Change the statistics polling interval (seconds, > 0); only when the
 * device was created with statistics. 0 or -1 with a message. */
int virtio_balloon_set_stats_interval(struct virtio_balloon *b, uint32_t seconds,
				      char *err, size_t errlen);

/* Free page hinting (5.5.6.4): start a run (the driver hints its free
 * pages, which are given back to the host; with ack_on_stop the device
 * answers the driver's end of the run by letting it use them again), or
 * stop it (the driver may use the hinted pages again). 0, or -1 with a
 * message when hinting was not configured. Any thread. */
int virtio_balloon_hint(struct virtio_balloon *b, bool start, bool ack_on_stop, char *err,
			size_t errlen);
/* The host's current command id and the last one the driver sent. */
int virtio_balloon_hint_status(struct virtio_balloon *b, uint32_t *host_cmd, uint32_t *guest_cmd,
			       char *err, size_t errlen);

/* Statistic tags (5.5.6.3), in their order. */
enum virtio_balloon_stat {
	VIRTIO_BALLOON_S_SWAP_IN, VIRTIO_BALLOON_S_SWAP_OUT, VIRTIO_BALLOON_S_MAJFLT,
	VIRTIO_BALLOON_S_MINFLT, VIRTIO_BALLOON_S_MEMFREE, VIRTIO_BALLOON_S_MEMTOT,
	VIRTIO_BALLOON_S_AVAIL, VIRTIO_BALLOON_S_CACHES, VIRTIO_BALLOON_S_HTLB_PGALLOC,
	VIRTIO_BALLOON_S_HTLB_PGFAIL,
	VIRTIO_BALLOON_S_NR
};

struct virtio_balloon_info {
	uint32_t target_mib;        /* what the device asks for */
	uint32_t actual_mib;        /* what the driver reports it holds */
	uint32_t target_pages;      /* the same in 4 KiB pages (num_pages) */
	uint32_t actual_pages;      /* (actual) */
	uint64_t inflated_pages;    /* 4 KiB pages discarded by inflation, ever */
	uint64_t deflated_pages;
	uint64_t reported_bytes;    /* free page reporting, ever */
	bool stats_valid;           /* the guest has sent statistics */
	uint64_t stats_age_ms;      /* since the latest arrived */
	uint32_t present;           /* bit (1 << tag) for each value received */
	uint64_t stat[VIRTIO_BALLOON_S_NR];
};
/* The latest statistics and counters. Any thread. */
void virtio_balloon_get_info(struct virtio_balloon *b, struct virtio_balloon_info *out);

#endif

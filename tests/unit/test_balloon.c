/*
 * Unit tests for virtio-balloon (src/virtio/balloon.c). The test guest
 * (virtio_guest.h) plays Linux's virtio_balloon driver.
 *
 * Covered: the features offered for each configuration; num_pages from the
 * boot target and from virtio_balloon_set_target() (with a configuration
 * change interrupt), `actual` written by the driver; inflating discards the
 * listed pages (they read as zero and are no longer resident, checked with
 * mincore), ignoring frames outside RAM; the reporting queue's number
 * follows the negotiated features and each reported range is discarded;
 * the statistics buffer is parsed, kept, and returned at the polling
 * interval; targets larger than RAM are refused.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "virtio/balloon.h"
#include "virtio_guest.h"

#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_STATS (1ull << 1)
#define F_DOOM (1ull << 2)
#define F_REPORT (1ull << 5)
#define PAGE 4096u

struct bt {
	struct vguest g;
	struct virtio_balloon *b;
};

static void bt_up(struct bt *t, const struct virtio_balloon_config *c)
{
	memset(t, 0, sizeof(*t));
	vg_init(&t->g);
	char err[200];
	t->b = virtio_balloon_create(&t->g.ram, c, err, sizeof(err));
	if (!t->b) {
		fprintf(stderr, "%s\n", err);
		exit(2);
	}
	vg_attach(&t->g, virtio_balloon_dev(t->b));
}

static void bt_down(struct bt *t)
{
	virtio_balloon_destroy(t->b);
	vg_fini(&t->g);
}

static uint32_t cfg32(struct bt *t, uint32_t off)
{
	uint64_t v = 0;
	virtio_mmio_ops.read(&t->g.t, VIRTIO_MMIO_CONFIG + off, 4, &v);
	return (uint32_t)v;
}

static bool resident(struct bt *t, uint64_t gpa)
{
	unsigned char v = 0;
	mincore(vg_host(&t->g, gpa), PAGE, &v);
	return v & 1;
}

static bool page_is(struct bt *t, uint64_t gpa, uint8_t byte)
{
	const uint8_t *p = vg_host(&t->g, gpa);
	for (unsigned i = 0; i < PAGE; i++)
		if (p[i] != byte)
			return false;
	return true;
}

static void test_features_and_config(void)
{
	struct bt t;
	struct virtio_balloon_config c = { .target_mib = 3, .deflate_on_oom = true, .stats_interval_s = 1 };
	bt_up(&t, &c);
	CHECK_EQ(vg_r32(&t.g, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BALLOON);
	uint64_t f = vg_device_features(&t.g);
	CHECK(f & F_STATS);
	CHECK(f & F_DOOM);
	CHECK(f & F_REPORT);
	CHECK(!(f & 1));   /* MUST_TELL_HOST */
	CHECK_EQ(cfg32(&t, 0), 3 * 256);
	CHECK(vg_negotiate(&t.g, F_V1 | F_REPORT));
	vg_queue_setup(&t.g, 0, 16);
	vg_queue_setup(&t.g, 1, 16);
	vg_queue_setup(&t.g, 2, 16);
	vg_driver_ok(&t.g);
	/* The driver reports what it holds. */
	virtio_mmio_ops.write(&t.g.t, VIRTIO_MMIO_CONFIG + 4, 4, 2 * 256);
	struct virtio_balloon_info info;
	virtio_balloon_get_info(t.b, &info);
	CHECK_EQ(info.actual_mib, 2);
	CHECK_EQ(info.target_mib, 3);
	/* A new target: config space, generation, interrupt. */
	uint32_t gen = vg_r32(&t.g, VIRTIO_MMIO_CONFIG_GENERATION);
	char err[200];
	CHECK_EQ(virtio_balloon_set_target(t.b, 5, err, sizeof(err)), 0);
	CHECK_EQ(cfg32(&t, 0), 5 * 256);
	CHECK(vg_r32(&t.g, VIRTIO_MMIO_CONFIG_GENERATION) != gen);
	CHECK(vg_r32(&t.g, VIRTIO_MMIO_INTERRUPT_STATUS) & 2);
	/* Larger than RAM (16 MiB here): refused, nothing changes. */
	CHECK_EQ(virtio_balloon_set_target(t.b, 17, err, sizeof(err)), -1);
	CHECK(strstr(err, "RAM"));
	CHECK_EQ(cfg32(&t, 0), 5 * 256);
	/* Reset: the driver's `actual` is forgotten, the target stays. */
	vg_w32(&t.g, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(cfg32(&t, 4), 0);
	CHECK_EQ(cfg32(&t, 0), 5 * 256);
	bt_down(&t);

	struct virtio_balloon_config plain = { .no_free_page_reporting = true };
	bt_up(&t, &plain);
	f = vg_device_features(&t.g);
	CHECK(!(f & (F_STATS | F_DOOM | F_REPORT)));
	CHECK(virtio_balloon_set_stats_interval(t.b, 5, err, sizeof(err)) < 0);
	bt_down(&t);

	struct virtio_balloon_config huge = { .target_mib = 64 };
	struct gram ram;
	gram_init(&ram, VG_RAM_BASE, 16 << 20);
	CHECK(!virtio_balloon_create(&ram, &huge, err, sizeof(err)));
	gram_destroy(&ram);
}

static void test_inflate_and_report(void)
{
	struct bt t;
	struct virtio_balloon_config c = { 0 };
	bt_up(&t, &c);
	CHECK(vg_negotiate(&t.g, F_V1 | F_REPORT));
	vg_queue_setup(&t.g, 0, 16);
	vg_queue_setup(&t.g, 1, 16);
	vg_queue_setup(&t.g, 2, 16);   /* reporting: no stats queue before it */
	vg_driver_ok(&t.g);

	/* Four pages full of data, resident. */
	uint64_t pages = vg_alloc(&t.g, 8 * PAGE, PAGE);
	for (unsigned i = 0; i < 8; i++)
		memset(vg_host(&t.g, pages + i * PAGE), 0x5a, PAGE);
	for (unsigned i = 0; i < 8; i++)
		CHECK(resident(&t, pages + i * PAGE));
	/* Inflate pages 0, 1, 2 (a run) and 5, plus frames outside RAM. */
	uint64_t arr = vg_alloc(&t.g, 64, 8);
	uint32_t *pfn = vg_host(&t.g, arr);
	uint32_t base = (uint32_t)(pages >> 12);
	pfn[0] = base;
	pfn[1] = base + 1;
	pfn[2] = base + 2;
	pfn[3] = base + 5;
	pfn[4] = 0x10;              /* below RAM */
	pfn[5] = 0xffffffffu;       /* far above */
	struct vg_seg s = { arr, 6 * 4, false };
	vg_submit(&t.g, 0, &s, 1, false);
	uint32_t id, len;
	CHECK(vg_wait_used(&t.g, 0, &id, &len));
	CHECK_EQ(len, 0);
	for (unsigned i = 0; i < 8; i++) {
		bool gone = i <= 2 || i == 5;
		CHECK_EQ(resident(&t, pages + i * PAGE), !gone);
		CHECK(page_is(&t, pages + i * PAGE, gone ? 0 : 0x5a));
	}
	struct virtio_balloon_info info;
	virtio_balloon_get_info(t.b, &info);
	CHECK_EQ(info.inflated_pages, 6);

	/* Deflate: counted, nothing else. */
	vg_submit(&t.g, 1, &s, 1, false);
	CHECK(vg_wait_used(&t.g, 1, &id, &len));
	virtio_balloon_get_info(t.b, &info);
	CHECK_EQ(info.deflated_pages, 6);

	/* Free page reporting: a device-writable range of pages 6-7. */
	for (unsigned i = 6; i < 8; i++)
		CHECK(resident(&t, pages + i * PAGE));
	struct vg_seg r = { pages + 6 * PAGE, 2 * PAGE, true };
	vg_submit(&t.g, 2, &r, 1, false);
	CHECK(vg_wait_used(&t.g, 2, &id, &len));
	CHECK(!resident(&t, pages + 6 * PAGE));
	CHECK(!resident(&t, pages + 7 * PAGE));
	CHECK(page_is(&t, pages + 7 * PAGE, 0));
	CHECK(page_is(&t, pages + 4 * PAGE, 0x5a));
	virtio_balloon_get_info(t.b, &info);
	CHECK_EQ(info.reported_bytes, 2 * PAGE);
	bt_down(&t);
}

static bool stats_returned(struct vguest *g)
{
	return vg_used_idx(g, 2) != g->q[2].last_used;
}

static void put_stat(uint8_t *p, uint16_t tag, uint64_t val)
{
	p[0] = (uint8_t)tag;
	p[1] = (uint8_t)(tag >> 8);
	memcpy(p + 2, &val, 8);
}

static void test_stats_and_report_queue_number(void)
{
	struct bt t;
	struct virtio_balloon_config c = { .stats_interval_s = 1 };
	bt_up(&t, &c);
	CHECK(vg_negotiate(&t.g, F_V1 | F_STATS | F_REPORT));
	for (unsigned q = 0; q < 4; q++)
		vg_queue_setup(&t.g, q, 8);
	vg_driver_ok(&t.g);
	struct virtio_balloon_info info;
	virtio_balloon_get_info(t.b, &info);
	CHECK(!info.stats_valid);

	uint64_t buf = vg_alloc(&t.g, 40, 8);
	uint8_t *p = vg_host(&t.g, buf);
	put_stat(p, 4, 1234567);    /* MEMFREE */
	put_stat(p + 10, 5, 7654321);
	put_stat(p + 20, 99, 1);    /* unknown tag: ignored */
	struct vg_seg s = { buf, 30, false };
	vg_submit(&t.g, 2, &s, 1, false);
	vg_settle(&t.g);
	virtio_balloon_get_info(t.b, &info);
	CHECK(info.stats_valid);
	CHECK_EQ(info.stat[VIRTIO_BALLOON_S_MEMFREE], 1234567);
	CHECK_EQ(info.stat[VIRTIO_BALLOON_S_MEMTOT], 7654321);
	CHECK_EQ(info.present, (1u << 4) | (1u << 5));
	/* Kept until the poll: returned within the 1 s interval (+ slack). */
	CHECK(!stats_returned(&t.g));
	CHECK(vg_wait(stats_returned, &t.g));
	uint32_t id, len;
	CHECK(vg_wait_used(&t.g, 2, &id, &len));
	/* The driver refills it. */
	put_stat(p, 4, 42);
	vg_submit(&t.g, 2, &s, 1, false);
	vg_settle(&t.g);
	virtio_balloon_get_info(t.b, &info);
	CHECK_EQ(info.stat[VIRTIO_BALLOON_S_MEMFREE], 42);
	CHECK(info.stats_age_ms < 1000);

	/* With STATS_VQ negotiated the reporting queue is 3. */
	uint64_t pg = vg_alloc(&t.g, PAGE, PAGE);
	memset(vg_host(&t.g, pg), 0x77, PAGE);
	struct vg_seg r = { pg, PAGE, true };
	vg_submit(&t.g, 3, &r, 1, false);
	CHECK(vg_wait_used(&t.g, 3, &id, &len));
	CHECK(page_is(&t, pg, 0));
	char err[100];
	CHECK_EQ(virtio_balloon_set_stats_interval(t.b, 2, err, sizeof(err)), 0);
	CHECK(virtio_balloon_set_stats_interval(t.b, 0, err, sizeof(err)) < 0);
	bt_down(&t);
}

int main(void)
{
	test_features_and_config();
	test_inflate_and_report();
	test_stats_and_report_queue_number();
	return vt_report();
}

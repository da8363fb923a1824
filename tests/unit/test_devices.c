/*
 * Unit tests for the small board devices: the goldfish RTC
 * (src/machine/rtc.c: time within a second of the host, TIME_LOW latching,
 * setting the time, the alarm and its interrupt), the syscon power register
 * (src/machine/syscon.c) and the ACLINT (src/machine/aclint.c: mtime from
 * its time source, mtimecmp and msip storage, arbitrary accesses) and the
 * VM generation ID (src/machine/vmgenid.c: the ID at any width, a new one
 * only once published, its interrupt lowered by reading it, its snapshot
 * section).
 */
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/snapfile.h"
#include "machine/aclint.h"
#include "machine/rtc.h"
#include "machine/syscon.h"
#include "machine/vmgenid.h"
#include "machine_test.h"

static uint32_t rd32(const struct mmio_ops *ops, void *dev, uint64_t off)
{
	uint64_t v = 0;
	ops->read(dev, off, 4, &v);
	return (uint32_t)v;
}

static void wr32(const struct mmio_ops *ops, void *dev, uint64_t off, uint32_t v)
{
	ops->write(dev, off, 4, v);
}

struct line {
	bool level;
	int calls;
};

static void line_set(void *ctrl, unsigned irq, bool level)
{
	struct line *l = ctrl;
	l->level = level;
	l->calls++;
}

static uint64_t rtc_read_time(struct rtc *r)
{
	uint64_t lo = rd32(&rtc_mmio_ops, r, 0x00);
	uint64_t hi = rd32(&rtc_mmio_ops, r, 0x04);
	return hi << 32 | lo;
}

static void test_rtc(struct mt *t)
{
	struct rtc r;
	struct line l = { 0 };
	struct irq_line irq = { .set = line_set, .ctrl = &l, .irq = 11 };
	MT_EQ(t, rtc_init(&r, &irq), 0);

	uint64_t host = clock_ns(CLOCK_REALTIME), guest = rtc_read_time(&r);
	uint64_t diff = guest > host ? guest - host : host - guest;
	MT_CHECK(t, diff < 1000000000ull);

	/* TIME_HIGH returns the half latched by the last TIME_LOW read. */
	rd32(&rtc_mmio_ops, &r, 0x00);
	uint32_t hi1 = rd32(&rtc_mmio_ops, &r, 0x04);
	MT_EQ(t, rd32(&rtc_mmio_ops, &r, 0x04), hi1);

	/* Setting the time the way Linux does: TIME_HIGH, then TIME_LOW. */
	uint64_t target = 1000000000000000000ull; /* 2001-09-09 */
	wr32(&rtc_mmio_ops, &r, 0x04, (uint32_t)(target >> 32));
	wr32(&rtc_mmio_ops, &r, 0x00, (uint32_t)target);
	guest = rtc_read_time(&r);
	MT_CHECK(t, guest >= target && guest - target < 1000000000ull);

	/* An alarm in the past fires once interrupts are enabled. */
	uint64_t alarm = guest - 1;
	wr32(&rtc_mmio_ops, &r, 0x0c, (uint32_t)(alarm >> 32));
	MT_EQ(t, rd32(&rtc_mmio_ops, &r, 0x0c), (uint32_t)(alarm >> 32));
	wr32(&rtc_mmio_ops, &r, 0x08, (uint32_t)alarm);
	MT_EQ(t, rd32(&rtc_mmio_ops, &r, 0x18), 0);     /* fired at once */
	MT_CHECK(t, !l.level);                            /* IRQ not enabled */
	wr32(&rtc_mmio_ops, &r, 0x10, 1);
	MT_EQ(t, rd32(&rtc_mmio_ops, &r, 0x10), 1);
	MT_CHECK(t, l.level);
	wr32(&rtc_mmio_ops, &r, 0x1c, 1);                /* CLEAR_INTERRUPT */
	MT_CHECK(t, !l.level);

	/* An alarm in the future stays armed; the deadline is in host time. */
	alarm = rtc_read_time(&r) + 3600ull * 1000000000ull;
	wr32(&rtc_mmio_ops, &r, 0x0c, (uint32_t)(alarm >> 32));
	wr32(&rtc_mmio_ops, &r, 0x08, (uint32_t)alarm);
	MT_EQ(t, rd32(&rtc_mmio_ops, &r, 0x18), 1);
	uint64_t deadline = 0;
	MT_CHECK(t, rtc_alarm_deadline(&r, &deadline));
	host = clock_ns(CLOCK_REALTIME);
	MT_CHECK(t, deadline > host + 3599ull * 1000000000ull &&
		    deadline < host + 3601ull * 1000000000ull);
	rtc_poll(&r);
	MT_CHECK(t, !l.level);
	wr32(&rtc_mmio_ops, &r, 0x14, 1);                /* CLEAR_ALARM */
	MT_EQ(t, rd32(&rtc_mmio_ops, &r, 0x18), 0);
	MT_CHECK(t, !rtc_alarm_deadline(&r, &deadline));

	/* Bad accesses fault; unknown registers read 0. */
	uint64_t v;
	MT_CHECK(t, !rtc_mmio_ops.read(&r, 0x00, 8, &v));
	MT_CHECK(t, !rtc_mmio_ops.read(&r, 0x02, 4, &v));
	MT_EQ(t, rd32(&rtc_mmio_ops, &r, 0x800), 0);
	rtc_destroy(&r);
}

struct power_log {
	enum power_action last;
	int calls;
};

static void power_cb(void *ctx, enum power_action a)
{
	struct power_log *p = ctx;
	p->last = a;
	p->calls++;
}

static void test_syscon(struct mt *t)
{
	struct syscon s;
	struct power_log log = { 0 };
	syscon_init(&s, power_cb, &log);
	uint64_t v = 7;
	MT_CHECK(t, syscon_mmio_ops.read(&s, 0, 4, &v));
	MT_EQ(t, v, 0);
	wr32(&syscon_mmio_ops, &s, 0, 0x1234);
	wr32(&syscon_mmio_ops, &s, 4, 0x5555);
	MT_EQ(t, log.calls, 0);
	wr32(&syscon_mmio_ops, &s, 0, 0x5555);
	MT_EQ(t, log.calls, 1);
	MT_EQ(t, log.last, POWER_OFF);
	wr32(&syscon_mmio_ops, &s, 0, 0x7777);
	MT_EQ(t, log.calls, 2);
	MT_EQ(t, log.last, POWER_REBOOT);
	wr32(&syscon_mmio_ops, &s, 0, 0x3333 | (42u << 16));
	MT_EQ(t, log.calls, 3);
	MT_EQ(t, log.last, POWER_FAIL);
	MT_EQ(t, s.fail_code, 42);
	syscon_mmio_ops.write(&s, 0, 1, 0x55); /* a byte is not a command */
	MT_EQ(t, log.calls, 3);
}

static uint64_t fake_time(void *ctx)
{
	return *(uint64_t *)ctx;
}

static void test_aclint(struct mt *t)
{
	struct aclint a;
	uint64_t now = 0x123456789abcull;
	struct aclint_config cfg = { .nharts = 3, .time = fake_time, .ctx = &now };
	MT_EQ(t, aclint_init(&a, &cfg), 0);
	const struct mmio_ops *ops = &aclint_mmio_ops;
	uint64_t v;

	MT_CHECK(t, ops->read(&a, ACLINT_MTIME, 8, &v));
	MT_EQ(t, v, now);
	MT_EQ(t, rd32(ops, &a, ACLINT_MTIME + 4), 0x1234);
	now += 10;
	MT_EQ(t, rd32(ops, &a, ACLINT_MTIME), 0x56789abc + 10);
	ops->write(&a, ACLINT_MTIME, 8, 0); /* ignored */
	MT_CHECK(t, ops->read(&a, ACLINT_MTIME, 8, &v));
	MT_EQ(t, v, now);

	ops->read(&a, ACLINT_MTIMECMP_BASE + 8, 8, &v);
	MT_EQ(t, v, ~0ull);
	ops->write(&a, ACLINT_MTIMECMP_BASE + 8, 8, 0x1111222233334444ull);
	wr32(ops, &a, ACLINT_MTIMECMP_BASE + 16 + 4, 0xabcd);
	ops->read(&a, ACLINT_MTIMECMP_BASE + 8, 8, &v);
	MT_EQ(t, v, 0x1111222233334444ull);
	ops->read(&a, ACLINT_MTIMECMP_BASE + 16, 8, &v);
	MT_EQ(t, v, 0x0000abcdffffffffull);
	MT_EQ(t, rd32(ops, &a, ACLINT_MTIMECMP_BASE + 8 * 3), 0); /* hart 3: none */

	wr32(ops, &a, 4, 0xffffffff);
	MT_EQ(t, rd32(ops, &a, 4), 1);
	MT_EQ(t, rd32(ops, &a, 0), 0);
	wr32(ops, &a, 12, 1);                 /* msip of hart 3: absent */
	MT_EQ(t, rd32(ops, &a, 12), 0);
	ops->read(&a, 0, 8, &v);
	MT_EQ(t, v, 1ull << 32);

	/* Any size at any offset succeeds without harm. */
	bool all = true;
	for (uint64_t off = 0; off < BOARD_ACLINT_SIZE; off += 0x3fd) {
		for (unsigned size = 1; size <= 8; size *= 2) {
			all &= ops->read(&a, off, size, &v);
			all &= ops->write(&a, off, size, 0);
		}
	}
	MT_CHECK(t, all);
	MT_CHECK(t, ops->read(&a, 0x4006, 4, &v)); /* straddles two registers */
	MT_EQ(t, v, 0);
	aclint_destroy(&a);

	struct aclint_config bad = { .nharts = 0 };
	MT_EQ(t, aclint_init(&a, &bad), -1);
}

static void genid_bytes(struct vmgenid *g, uint8_t out[VMGENID_BYTES])
{
	/* As Linux's memcpy might: one word, then smaller pieces. */
	uint64_t v;
	vmgenid_mmio_ops.read(g, 0, 8, &v);
	memcpy(out, &v, 8);
	vmgenid_mmio_ops.read(g, 8, 4, &v);
	memcpy(out + 8, &v, 4);
	vmgenid_mmio_ops.read(g, 12, 2, &v);
	memcpy(out + 12, &v, 2);
	vmgenid_mmio_ops.read(g, 14, 1, &v);
	out[14] = (uint8_t)v;
	vmgenid_mmio_ops.read(g, 15, 1, &v);
	out[15] = (uint8_t)v;
}

static void test_vmgenid(struct mt *t)
{
	struct line l = { 0 };
	struct irq_line il = { .set = line_set, .ctrl = &l, .irq = 12 };
	struct vmgenid g, g2;
	MT_EQ(t, vmgenid_init(&g, &il), 0);
	uint8_t a[VMGENID_BYTES], b[VMGENID_BYTES], zero[VMGENID_BYTES] = { 0 };
	genid_bytes(&g, a);
	MT_CHECK(t, memcmp(a, g.id, sizeof(a)) == 0);
	MT_CHECK(t, memcmp(a, zero, sizeof(a)) != 0);
	uint64_t v = 1;
	MT_CHECK(t, vmgenid_mmio_ops.read(&g, 0x10, 8, &v) && v == 0);   /* past the ID */
	MT_CHECK(t, vmgenid_mmio_ops.write(&g, 0, 8, 0));
	genid_bytes(&g, b);
	MT_CHECK(t, memcmp(a, b, sizeof(a)) == 0);                         /* not the guest's */
	MT_EQ(t, l.calls, 0);

	/* Drawn, then published: a new ID and the line up until it is read. */
	MT_EQ(t, vmgenid_prepare(&g), 0);
	genid_bytes(&g, b);
	MT_CHECK(t, memcmp(a, b, sizeof(a)) == 0 && !l.level);
	vmgenid_publish(&g);
	MT_CHECK(t, l.level);
	vmgenid_mmio_ops.read(&g, 0x20, 4, &v);                           /* not the ID */
	MT_CHECK(t, l.level);
	genid_bytes(&g, b);
	MT_CHECK(t, memcmp(a, b, sizeof(a)) != 0 && !l.level);
	vmgenid_publish(&g);                                               /* nothing new */
	MT_CHECK(t, !l.level);

	/* The section carries the ID and the line; a bad line is refused. */
	vmgenid_prepare(&g);
	vmgenid_publish(&g);
	genid_bytes(&g, a);
	vmgenid_publish(&g);
	g.raised = true;
	struct snap_writer w;
	snap_writer_init(&w);
	vmgenid_save(&g, &w);
	MT_EQ(t, snap_writer_finish(&w), 0);
	struct snap_file f;
	char err[256];
	MT_EQ(t, snap_file_parse(&f, w.data, w.len, err, sizeof(err)), 0);
	struct line l2 = { 0 };
	struct irq_line il2 = { .set = line_set, .ctrl = &l2, .irq = 12 };
	MT_EQ(t, vmgenid_init(&g2, &il2), 0);
	struct snap_reader r;
	snap_reader_init(&r, snap_file_find(&f, SNAP_TAG('V', 'G', 'I', 'D'), 0));
	MT_EQ(t, vmgenid_load(&g2, &r), 0);
	MT_EQ(t, snap_reader_end(&r, err, sizeof(err)), 0);
	genid_bytes(&g2, b);
	MT_CHECK(t, memcmp(a, b, sizeof(a)) == 0);
	MT_CHECK(t, l2.calls >= 1);
	((uint8_t *)f.sec[0].payload)[VMGENID_BYTES] = 7;
	snap_reader_init(&r, &f.sec[0]);
	MT_EQ(t, vmgenid_load(&g2, &r), -1);
	MT_CHECK(t, snap_reader_end(&r, err, sizeof(err)) == -1 && strstr(err, "interrupt line"));
	snap_file_free(&f);
	snap_writer_free(&w);
	vmgenid_destroy(&g2);
	vmgenid_destroy(&g);
}

int main(void)
{
	struct mt t = { 0 };
	test_rtc(&t);
	test_syscon(&t);
	test_aclint(&t);
	test_vmgenid(&t);
	return mt_report(&t);
}

/*
 * Unit tests for the small board devices: the goldfish RTC
 * (src/machine/rtc.c: time within a second of the host, TIME_LOW latching,
 * setting the time, the alarm and its interrupt), the syscon power register
 * (src/machine/syscon.c) and the ACLINT (src/machine/aclint.c: mtime from
 * its time source, mtimecmp and msip storage, arbitrary accesses).
 */
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "machine/aclint.h"
#include "machine/rtc.h"
#include "machine/syscon.h"
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

int main(void)
{
	struct mt t = { 0 };
	test_rtc(&t);
	test_syscon(&t);
	test_aclint(&t);
	return mt_report(&t);
}

/*
 * The goldfish RTC model (see rtc.h). The register set is the one in the
 * Android emulator's goldfish RTC documentation, as QEMU's virt board and
 * Linux's rtc-goldfish driver use it:
 *
 *   0x00 TIME_LOW         read: low 32 bits of now, latches the high half
 *                         write: replace the low half of the time
 *   0x04 TIME_HIGH        read: the latched high half; write: replace it
 *   0x08 ALARM_LOW        read: low half of the alarm; write: arm the alarm
 *   0x0c ALARM_HIGH       high half of the alarm (write before ALARM_LOW)
 *   0x10 IRQ_ENABLED      bit 0 gates the interrupt line
 *   0x14 CLEAR_ALARM      write: disarm
 *   0x18 ALARM_STATUS     read: 1 while armed
 *   0x1c CLEAR_INTERRUPT  write: acknowledge the interrupt
 */
#include "machine/rtc.h"

#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/snapfile.h"

enum {
	RTC_TIME_LOW = 0x00,
	RTC_TIME_HIGH = 0x04,
	RTC_ALARM_LOW = 0x08,
	RTC_ALARM_HIGH = 0x0c,
	RTC_IRQ_ENABLED = 0x10,
	RTC_CLEAR_ALARM = 0x14,
	RTC_ALARM_STATUS = 0x18,
	RTC_CLEAR_INTERRUPT = 0x1c,
};

static uint64_t guest_now(const struct rtc *r)
{
	return clock_ns(CLOCK_REALTIME) + (uint64_t)r->offset_ns;
}

static void update_irq(struct rtc *r)
{
	bool level = r->irq_pending && r->irq_enabled;
	if (level != r->irq_level) {
		r->irq_level = level;
		irq_set(&r->irq, level);
	}
}

static void check_alarm(struct rtc *r)
{
	if (r->alarm_armed && guest_now(r) >= r->alarm_ns) {
		r->alarm_armed = false;
		r->irq_pending = true;
	}
	update_irq(r);
}

int rtc_init(struct rtc *r, const struct irq_line *irq)
{
	memset(r, 0, sizeof(*r));
	if (pthread_mutex_init(&r->lock, NULL) != 0)
		return -1;
	if (irq)
		r->irq = *irq;
	return 0;
}

void rtc_destroy(struct rtc *r)
{
	pthread_mutex_destroy(&r->lock);
}

void rtc_poll(struct rtc *r)
{
	pthread_mutex_lock(&r->lock);
	check_alarm(r);
	pthread_mutex_unlock(&r->lock);
}

bool rtc_alarm_deadline(struct rtc *r, uint64_t *host_realtime)
{
	pthread_mutex_lock(&r->lock);
	bool armed = r->alarm_armed;
	if (armed)
		*host_realtime = r->alarm_ns - (uint64_t)r->offset_ns;
	pthread_mutex_unlock(&r->lock);
	return armed;
}

/* Move guest time so that now reads as `target`. */
static void set_time(struct rtc *r, uint64_t target)
{
	r->offset_ns = (int64_t)(target - clock_ns(CLOCK_REALTIME));
}

static bool rtc_mmio_read(void *dev, uint64_t off, unsigned size, uint64_t *value)
{
	struct rtc *r = dev;
	uint64_t now;
	uint32_t v = 0;
	*value = 0;
	if (size != 4 || (off & 3))
		return false;
	pthread_mutex_lock(&r->lock);
	switch (off) {
	case RTC_TIME_LOW:
		now = guest_now(r);
		r->time_high = (uint32_t)(now >> 32);
		v = (uint32_t)now;
		break;
	case RTC_TIME_HIGH:
		v = r->time_high;
		break;
	case RTC_ALARM_LOW:
		v = (uint32_t)r->alarm_ns;
		break;
	case RTC_ALARM_HIGH:
		v = (uint32_t)(r->alarm_ns >> 32);
		break;
	case RTC_IRQ_ENABLED:
		v = r->irq_enabled;
		break;
	case RTC_ALARM_STATUS:
		v = r->alarm_armed;
		break;
	}
	check_alarm(r);
	pthread_mutex_unlock(&r->lock);
	*value = v;
	return true;
}

static bool rtc_mmio_write(void *dev, uint64_t off, unsigned size, uint64_t value)
{
	struct rtc *r = dev;
	uint32_t v = (uint32_t)value;
	uint64_t now;
	if (size != 4 || (off & 3))
		return false;
	pthread_mutex_lock(&r->lock);
	switch (off) {
	case RTC_TIME_LOW:
		now = guest_now(r);
		set_time(r, (now & ~0xffffffffull) | v);
		break;
	case RTC_TIME_HIGH:
		now = guest_now(r);
		set_time(r, (now & 0xffffffffull) | (uint64_t)v << 32);
		break;
	case RTC_ALARM_LOW:
		r->alarm_ns = (r->alarm_ns & ~0xffffffffull) | v;
		r->alarm_armed = true;
		break;
	case RTC_ALARM_HIGH:
		r->alarm_ns = (r->alarm_ns & 0xffffffffull) | (uint64_t)v << 32;
		break;
	case RTC_IRQ_ENABLED:
		r->irq_enabled = v & 1;
		break;
	case RTC_CLEAR_ALARM:
		r->alarm_armed = false;
		break;
	case RTC_CLEAR_INTERRUPT:
		r->irq_pending = false;
		break;
	}
	check_alarm(r);
	pthread_mutex_unlock(&r->lock);
	return true;
}

const struct mmio_ops rtc_mmio_ops = {
	.read = rtc_mmio_read,
	.write = rtc_mmio_write,
};

/* ---- snapshots (section "RTC "): the guest's offset from host time, the
 * latched high word, the alarm and the interrupt state. The offset is kept
 * as it was, so a restored guest's RTC reads the host's time now (plus the
 * same offset), not the time of the snapshot. ---- */

#define RTC_SNAP_VERSION 1

void rtc_save(struct rtc *r, struct snap_writer *w)
{
	pthread_mutex_lock(&r->lock);
	snap_section_begin(w, SNAP_TAG('R', 'T', 'C', ' '), 0, RTC_SNAP_VERSION);
	snap_put_u64(w, (uint64_t)r->offset_ns);
	snap_put_u32(w, r->time_high);
	snap_put_u64(w, r->alarm_ns);
	uint8_t flags = (uint8_t)(r->alarm_armed | r->irq_enabled << 1 | r->irq_pending << 2 |
				  r->irq_level << 3);
	snap_put_u8(w, flags);
	pthread_mutex_unlock(&r->lock);
}

int rtc_load(struct rtc *r, struct snap_reader *sr)
{
	if (sr->version != RTC_SNAP_VERSION) {
		snap_reader_fail(sr, "RTC state version %u is not known", sr->version);
		return -1;
	}
	int64_t offset = (int64_t)snap_get_u64(sr);
	uint32_t high = snap_get_u32(sr);
	uint64_t alarm = snap_get_u64(sr);
	uint8_t flags = snap_get_u8(sr);
	if (flags & ~0x0fu)
		snap_reader_fail(sr, "unknown flags %#x", flags);
	if (sr->overrun || sr->invalid)
		return -1;
	pthread_mutex_lock(&r->lock);
	r->offset_ns = offset;
	r->time_high = high;
	r->alarm_ns = alarm;
	r->alarm_armed = flags & 1;
	r->irq_enabled = flags & 2;
	r->irq_pending = flags & 4;
	r->irq_level = flags & 8;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

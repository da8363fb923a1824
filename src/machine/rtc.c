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

static uint64_t host_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t guest_now(const struct rtc *r)
{
	return host_realtime_ns() + (uint64_t)r->offset_ns;
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
	r->offset_ns = (int64_t)(target - host_realtime_ns());
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

/*
 * The goldfish real-time clock ("google,goldfish-rtc"): nanoseconds since
 * the Unix epoch, read from the host's CLOCK_REALTIME plus an offset the
 * guest may set. It has a one-shot alarm that raises its interrupt line.
 * Nothing here runs by itself: the alarm is checked on every register access
 * and whenever the host calls rtc_poll(), so a host that wants punctual
 * alarms arms a timer for rtc_alarm_deadline() and calls rtc_poll() then.
 */
#ifndef SKIFF_MACHINE_RTC_H
#define SKIFF_MACHINE_RTC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "machine/bus.h"

struct rtc {
	pthread_mutex_t lock;
	struct irq_line irq;
	int64_t offset_ns;      /* guest time = host CLOCK_REALTIME + offset */
	uint32_t time_high;     /* latched by reading TIME_LOW */
	uint64_t alarm_ns;      /* guest time of the alarm */
	bool alarm_armed;
	bool irq_enabled;
	bool irq_pending;
	bool irq_level;         /* last level driven on irq */
};

/* 0 or -1. */
int rtc_init(struct rtc *r, const struct irq_line *irq);
void rtc_destroy(struct rtc *r);

/* Fire the alarm if it is due. Thread-safe. */
void rtc_poll(struct rtc *r);
/* When an alarm is armed: true and the host CLOCK_REALTIME (ns) at which it
 * falls due. Thread-safe. */
bool rtc_alarm_deadline(struct rtc *r, uint64_t *host_realtime_ns);

/* Snapshots (section "RTC "). */
struct snap_writer;
struct snap_reader;
void rtc_save(struct rtc *r, struct snap_writer *w);
int rtc_load(struct rtc *r, struct snap_reader *sr);

/* The MMIO interface (32-bit aligned accesses; others fault). */
extern const struct mmio_ops rtc_mmio_ops;

#endif

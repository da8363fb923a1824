/*
 * The host's clocks as nanosecond counts (what every layer measures time
 * in), and the way back to a struct timespec for an absolute deadline
 * (pthread_cond_timedwait, clock_nanosleep).
 */
#ifndef SKIFF_BASE_CLOCK_H
#define SKIFF_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

#define CLOCK_NS_PER_S 1000000000ull

/* Nanoseconds on `clk` (CLOCK_MONOTONIC, CLOCK_REALTIME,
 * CLOCK_THREAD_CPUTIME_ID, ...). */
static inline uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * CLOCK_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_monotonic_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* Monotonic seconds, for the command line's timeouts and rates. */
static inline double clock_monotonic_s(void)
{
	return (double)clock_monotonic_ns() / 1e9;
}

/* A nanosecond count as a timespec (an absolute time on the same clock). */
static inline struct timespec clock_timespec(uint64_t ns)
{
	return (struct timespec){ .tv_sec = (time_t)(ns / CLOCK_NS_PER_S),
				  .tv_nsec = (long)(ns % CLOCK_NS_PER_S) };
}

#endif

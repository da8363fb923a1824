/*
 * Noticing that the host slept (suspend to RAM or disk): CLOCK_BOOTTIME
 * counts the time the host was suspended, CLOCK_MONOTONIC does not (Linux
 * clock_gettime(2)), so their difference grows by exactly the time slept.
 * A guest's clocks run from the host's monotonic time and stood still
 * meanwhile; the VMM feeds this watch a reading of both clocks at every tick
 * and sets the guest's clock through its agent when it says the host slept.
 * The decision is kept apart from the clocks so that tests can feed it
 * readings of their own.
 */
#ifndef SKIFF_BASE_HOST_SLEEP_H
#define SKIFF_BASE_HOST_SLEEP_H

#include <stdbool.h>
#include <stdint.h>

/* A growth of the difference below this is not called a suspend: the two
 * clocks are read one after the other, and a resync costs the guest a
 * guest-set-time. A suspend short enough to stay under it leaves the guest
 * at most this far behind. */
#define HOST_SLEEP_THRESHOLD_NS 1000000000ull

struct host_sleep_watch {
	bool primed;     /* a reading was taken */
	uint64_t gap_ns; /* boottime - monotonic at the last reading */
};

/* One reading of CLOCK_BOOTTIME and CLOCK_MONOTONIC: the nanoseconds the
 * host slept since the previous reading when that exceeds the threshold,
 * else 0 (also for the first reading, and when the difference shrank,
 * which no real pair of readings does). */
uint64_t host_sleep_check(struct host_sleep_watch *w, uint64_t boottime_ns, uint64_t monotonic_ns);

#endif

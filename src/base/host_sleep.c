/*
 * The host-suspend decision (see host_sleep.h): the growth of
 * CLOCK_BOOTTIME - CLOCK_MONOTONIC between two readings.
 */
#include "base/host_sleep.h"

uint64_t host_sleep_check(struct host_sleep_watch *w, uint64_t boottime_ns, uint64_t monotonic_ns)
{
	/* boottime >= monotonic on Linux; a caller's odd pair counts as no gap */
	uint64_t gap = boottime_ns > monotonic_ns ? boottime_ns - monotonic_ns : 0;
	bool primed = w->primed;
	uint64_t last = w->gap_ns;
	w->primed = true;
	w->gap_ns = gap;
	if (!primed || gap <= last)
		return 0;
	return gap - last > HOST_SLEEP_THRESHOLD_NS ? gap - last : 0;
}

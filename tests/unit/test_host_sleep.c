/*
 * base/host_sleep: the decision that the host slept, fed made-up readings
 * of CLOCK_BOOTTIME and CLOCK_MONOTONIC (no suspend needed): the first
 * reading only primes it, a grown difference above the threshold is a
 * sleep (once), small growth and a shrinking difference are not.
 */
#include <stdint.h>

#include "base/host_sleep.h"
#include "check.h"

#define S 1000000000ull

static struct check_counts C;

int main(void)
{
	struct host_sleep_watch w = { 0 };
	/* a host up 100 s that had slept 7 s before the VMM started */
	CHECK(&C, host_sleep_check(&w, 107 * S, 100 * S) == 0, "the first reading only primes the watch");
	CHECK(&C, host_sleep_check(&w, 108 * S, 101 * S) == 0, "both clocks advanced alike: no sleep");
	CHECK(&C, host_sleep_check(&w, 108 * S + S / 2, 101 * S + S / 4) == 0,
	      "a quarter second of growth (two readings apart) is under the threshold");
	uint64_t slept = host_sleep_check(&w, 3709 * S + S / 2, 102 * S + S / 4);
	CHECK(&C, slept == 3600 * S, "an hour's suspend between ticks is reported as an hour");
	CHECK(&C, host_sleep_check(&w, 3710 * S + S / 2, 103 * S + S / 4) == 0,
	      "after the sleep, the new difference is the reference: reported once");
	CHECK(&C, host_sleep_check(&w, 3710 * S, 104 * S) == 0, "a shrinking difference is not a sleep");
	CHECK(&C, host_sleep_check(&w, 3712 * S, 105 * S) == 0, "growth of exactly the threshold is not a sleep");
	CHECK(&C, host_sleep_check(&w, 3714 * S + 1, 106 * S) == HOST_SLEEP_THRESHOLD_NS + 1,
	      "1 ns over the threshold is a sleep");
	struct host_sleep_watch odd = { 0 };
	CHECK(&C, host_sleep_check(&odd, 5 * S, 9 * S) == 0 && host_sleep_check(&odd, 6 * S, 9 * S) == 0,
	      "boottime behind monotonic (impossible on Linux) counts as no difference");
	return check_summary(&C);
}

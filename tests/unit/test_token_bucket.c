/*
 * Token buckets (Firecracker semantics): a full bucket passes its size at
 * once, then refills at size per refill time; the one-time burst is spent
 * first; a cost above the size waits for a full bucket and leaves debt;
 * size 0 or refill time 0 is unlimited; limits change at run time; the
 * non-blocking rate_limiter_try charges both buckets or neither.
 */
#include <time.h>

#include "base/clock.h"
#include "base/token_bucket.h"
#include "check.h"

static struct check_counts C;

int main(void)
{
	struct token_bucket tb;
	token_bucket_init(&tb, 0, 0, 0);
	CHECK(&C, token_bucket_take(&tb, 1ull << 40) == 0, "size 0 is unlimited");

	/* The checks that sleep for nothing use slow buckets (1000 tokens per
	 * 10 s): this thread may lose the CPU between two calls on a loaded
	 * host, and what refills meanwhile must not change the answer. */
	token_bucket_set(&tb, 1000, 0, 10000);
	CHECK(&C, token_bucket_take(&tb, 600) == 0, "a full bucket passes");
	uint64_t wait = token_bucket_take(&tb, 600);
	CHECK(&C, wait > 1000000000 && wait <= 2010000000, "200 tokens missing: about 2 s, got %llu ns",
	      (unsigned long long)wait);
	CHECK(&C, token_bucket_take(&tb, 400) == 0, "what is left passes");

	token_bucket_set(&tb, 1000, 500, 10000);
	CHECK(&C, token_bucket_take(&tb, 1500) == 0, "burst plus bucket pass at once");
	CHECK(&C, token_bucket_take(&tb, 10) > 0, "then the bucket is empty");

	/* 5000 tokens through a 1000-per-100-ms bucket: ~400 ms after the first full bucket. */
	token_bucket_set(&tb, 1000, 0, 100);
	double t0 = clock_monotonic_s();
	for (int k = 0; k < 10; k++)
		token_bucket_take_wait(&tb, 500, NULL);
	double dt = clock_monotonic_s() - t0;
	CHECK(&C, dt >= 0.38, "rate held: 5000 tokens took %.3f s", dt);
	CHECK(&C, atomic_load(&tb.throttled) > 0, "throttle events counted");

	/* A cost above the size passes once the bucket is full, as debt. */
	token_bucket_set(&tb, 1000, 0, 10000);
	CHECK(&C, token_bucket_take(&tb, 3000) == 0, "big cost from a full bucket");
	wait = token_bucket_take(&tb, 1);
	CHECK(&C, wait >= 15000000000ull, "debt of 2000 tokens: ~20 s wait, got %llu ns",
	      (unsigned long long)wait);

	token_bucket_set(&tb, 1000, 0, 0);
	CHECK(&C, token_bucket_take(&tb, 5000) == 0 && token_bucket_take(&tb, 5000) == 0,
	      "refill time 0 is unlimited (as Firecracker makes no bucket)");

	/* Both buckets or neither. */
	struct rate_limiter rl;
	rate_limiter_init(&rl);
	CHECK(&C, rate_limiter_try(&rl, 1ull << 30) == 0, "no limits: anything passes");
	token_bucket_set(&rl.ops, 3, 0, 1000);
	token_bucket_set(&rl.bytes, 1000, 0, 1000);
	CHECK(&C, rate_limiter_try(&rl, 600) == 0, "first operation passes");
	wait = rate_limiter_try(&rl, 600);
	CHECK(&C, wait > 0, "bytes bucket short: refused");
	CHECK(&C, rate_limiter_try(&rl, 400) == 0, "the refused call took no operation token");
	CHECK(&C, rate_limiter_try(&rl, 0) == 0, "the third operation (no bytes) passes");
	wait = rate_limiter_try(&rl, 0);
	CHECK(&C, wait > 0, "ops bucket empty after three: refused, got %llu", (unsigned long long)wait);
	CHECK(&C, atomic_load(&rl.ops.throttled) >= 1 && atomic_load(&rl.bytes.throttled) >= 1,
	      "refusals counted");
	rate_limiter_destroy(&rl);

	_Atomic bool stop = true;
	t0 = clock_monotonic_s();
	token_bucket_take_wait(&tb, 1000, &stop);
	CHECK(&C, clock_monotonic_s() - t0 < 0.05, "a stop request ends the wait");
	token_bucket_destroy(&tb);
	return check_summary(&C);
}

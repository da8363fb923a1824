/* Token buckets for I/O rate limits; see token_bucket.h. */
#include "base/token_bucket.h"

#include <time.h>

#include "base/clock.h"

static void set_locked(struct token_bucket *tb, uint64_t size, uint64_t burst, uint64_t refill_ms)
{
	tb->size = refill_ms ? size : 0;
	tb->refill_ns = refill_ms ? refill_ms * 1000000ull : 1000000000ull;
	tb->budget = tb->size > INT64_MAX ? INT64_MAX : (int64_t)tb->size;
	tb->burst = burst;
	tb->last_ns = clock_monotonic_ns();
}

void token_bucket_init(struct token_bucket *tb, uint64_t size, uint64_t one_time_burst,
		       uint64_t refill_time_ms)
{
	pthread_mutex_init(&tb->lock, NULL);
	atomic_store(&tb->throttled, 0);
	set_locked(tb, size, one_time_burst, refill_time_ms);
}

void token_bucket_destroy(struct token_bucket *tb)
{
	pthread_mutex_destroy(&tb->lock);
}

void token_bucket_set(struct token_bucket *tb, uint64_t size, uint64_t one_time_burst,
		      uint64_t refill_time_ms)
{
	pthread_mutex_lock(&tb->lock);
	set_locked(tb, size, one_time_burst, refill_time_ms);
	pthread_mutex_unlock(&tb->lock);
}

static void refill(struct token_bucket *tb, uint64_t now)
{
	uint64_t dt = now - tb->last_ns;
	/* tokens = size * dt / refill, without overflow for long idle times. */
	unsigned __int128 add = (unsigned __int128)tb->size * dt / tb->refill_ns;
	if (add == 0)
		return;
	tb->last_ns = now;
	__int128 b = (__int128)tb->budget + (__int128)add;
	tb->budget = b > (__int128)tb->size ? (int64_t)tb->size : (int64_t)b;
}

uint64_t token_bucket_take(struct token_bucket *tb, uint64_t cost)
{
	pthread_mutex_lock(&tb->lock);
	if (tb->size == 0 || cost == 0) {
		pthread_mutex_unlock(&tb->lock);
		return 0;
	}
	uint64_t from_burst = cost < tb->burst ? cost : tb->burst;
	tb->burst -= from_burst;
	cost -= from_burst;
	if (cost == 0) {
		pthread_mutex_unlock(&tb->lock);
		return 0;
	}
	uint64_t now = clock_monotonic_ns();
	refill(tb, now);
	/* A cost above the bucket size waits for a full bucket, then leaves
	 * the rest as debt. */
	uint64_t need = cost < tb->size ? cost : tb->size;
	if (tb->budget >= (int64_t)need) {
		tb->budget -= (int64_t)(cost > INT64_MAX ? INT64_MAX : cost);
		pthread_mutex_unlock(&tb->lock);
		return 0;
	}
	uint64_t missing = (uint64_t)((int64_t)need - tb->budget);
	uint64_t wait = (uint64_t)((unsigned __int128)missing * tb->refill_ns / tb->size) + 1;
	tb->burst += from_burst; /* nothing taken */
	pthread_mutex_unlock(&tb->lock);
	return wait;
}

void token_bucket_take_wait(struct token_bucket *tb, uint64_t cost, const _Atomic bool *stop)
{
	bool counted = false;
	for (;;) {
		uint64_t wait = token_bucket_take(tb, cost);
		if (wait == 0 || (stop && atomic_load(stop)))
			return;
		if (!counted) {
			atomic_fetch_add(&tb->throttled, 1);
			counted = true;
		}
		/* Sleep in slices so a stop request is seen soon. */
		if (wait > 50000000ull)
			wait = 50000000ull;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)wait };
		nanosleep(&ts, NULL);
	}
}

void token_bucket_refund(struct token_bucket *tb, uint64_t cost)
{
	pthread_mutex_lock(&tb->lock);
	if (tb->size) {
		__int128 b = (__int128)tb->budget + (__int128)cost;
		tb->budget = b > (__int128)tb->size ? (int64_t)tb->size : (int64_t)b;
	}
	pthread_mutex_unlock(&tb->lock);
}

void rate_limiter_init(struct rate_limiter *rl)
{
	token_bucket_init(&rl->bytes, 0, 0, 0);
	token_bucket_init(&rl->ops, 0, 0, 0);
}

void rate_limiter_destroy(struct rate_limiter *rl)
{
	token_bucket_destroy(&rl->bytes);
	token_bucket_destroy(&rl->ops);
}

void rate_limiter_take(struct rate_limiter *rl, uint64_t bytes, const _Atomic bool *stop)
{
	token_bucket_take_wait(&rl->ops, 1, stop);
	token_bucket_take_wait(&rl->bytes, bytes, stop);
}

uint64_t rate_limiter_try(struct rate_limiter *rl, uint64_t bytes)
{
	uint64_t wait = token_bucket_take(&rl->ops, 1);
	if (wait) {
		atomic_fetch_add(&rl->ops.throttled, 1);
		return wait;
	}
	wait = token_bucket_take(&rl->bytes, bytes);
	if (wait) {
		token_bucket_refund(&rl->ops, 1);
		atomic_fetch_add(&rl->bytes.throttled, 1);
	}
	return wait;
}

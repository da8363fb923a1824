/*
 * Token buckets for I/O rate limits, with Firecracker's semantics: a bucket
 * holds at most `size` tokens and refills completely in `refill_time_ms`;
 * `one_time_burst` extra tokens are spent first and never refilled. A size
 * or a refill time of 0 means unlimited (Firecracker's TokenBucket::new
 * makes no bucket then). A cost larger than the bucket is allowed once the
 * bucket is full and leaves it in debt, so big requests pass at the
 * configured average rate. Thread-safe; the limits can change at runtime.
 */
#ifndef SKIFF_BASE_TOKEN_BUCKET_H
#define SKIFF_BASE_TOKEN_BUCKET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct token_bucket {
	pthread_mutex_t lock;
	uint64_t size, refill_ns;
	int64_t budget;          /* may go negative: debt from a big request */
	uint64_t burst;          /* one-time burst left */
	uint64_t last_ns;        /* when budget was last refilled */
	_Atomic uint64_t throttled; /* times a caller had to wait */
};

void token_bucket_init(struct token_bucket *tb, uint64_t size, uint64_t one_time_burst,
		       uint64_t refill_time_ms);
void token_bucket_destroy(struct token_bucket *tb);
/* Change the limits; the bucket starts full under the new ones. */
void token_bucket_set(struct token_bucket *tb, uint64_t size, uint64_t one_time_burst,
		      uint64_t refill_time_ms);
/* Take `cost` tokens if the bucket allows it now: returns 0. Otherwise
 * takes nothing and returns how many nanoseconds to wait before asking
 * again. */
uint64_t token_bucket_take(struct token_bucket *tb, uint64_t cost);
/* Take `cost` tokens, sleeping as long as needed; gives up early (without
 * taking) when *stop becomes true. */
void token_bucket_take_wait(struct token_bucket *tb, uint64_t cost, const _Atomic bool *stop);
/* Give back `cost` tokens taken by token_bucket_take() (up to the size). */
void token_bucket_refund(struct token_bucket *tb, uint64_t cost);

/* A disk's or NIC direction's pair of limits. */
struct rate_limiter {
	struct token_bucket bytes, ops;
};

void rate_limiter_init(struct rate_limiter *rl);
void rate_limiter_destroy(struct rate_limiter *rl);
/* One operation of `bytes` bytes; sleeps while either bucket is empty. */
void rate_limiter_take(struct rate_limiter *rl, uint64_t bytes, const _Atomic bool *stop);
/* The same without sleeping, for callers that must not block (an I/O
 * thread serving other queues): 0 when both buckets allowed it (and were
 * charged), else nothing is taken and the result is how many nanoseconds
 * to wait before trying again. Counts a throttle event when refused. */
uint64_t rate_limiter_try(struct rate_limiter *rl, uint64_t bytes);

#endif

/*
 * hart_run with a time limit, for the engine's unit tests: a watchdog
 * thread kicks the hart when RUN_LIMIT_S pass, so a guest program that a
 * broken translation sends into an endless loop (a loop counter read from
 * the wrong host register) comes back with EXIT_KICK and a message naming
 * where it was, and its check fails, where the test hung until meson's
 * timeout ended it without saying where.
 */
#ifndef SKIFF_TESTS_RUN_LIMITED_H
#define SKIFF_TESTS_RUN_LIMITED_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "engine/engine.h"

/* Below meson's 30 s for a whole test, above any one run's time under
 * the sanitizers and lockstep. */
#define RUN_LIMIT_S 10

struct run_watch {
	struct hart *h;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool done, fired;
};

static void *run_watch_thread(void *arg)
{
	struct run_watch *w = arg;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += RUN_LIMIT_S;
	pthread_mutex_lock(&w->lock);
	while (!w->done && pthread_cond_timedwait(&w->cv, &w->lock, &until) == 0)
		;
	if (!w->done) {
		w->fired = true;
		hart_kick(w->h);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* hart_run; true when the watchdog stopped it (ex->reason is EXIT_KICK):
 * a caller that runs again on a kick must not. */
static inline bool run_limited(struct hart *h, struct hart_exit *ex)
{
	struct run_watch w = { .h = h, .lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	pthread_t t;
	bool watched = pthread_create(&t, NULL, run_watch_thread, &w) == 0;
	hart_run(h, ex);
	pthread_mutex_lock(&w.lock);
	w.done = true;
	pthread_cond_signal(&w.cv);
	pthread_mutex_unlock(&w.lock);
	if (watched)
		pthread_join(t, NULL);
	if (w.fired)
		fprintf(stderr, "run_limited: the guest still ran after %d s (an endless loop?), "
			"stopped at pc %#llx\n", RUN_LIMIT_S, (unsigned long long)hart_get_pc(h));
	return w.fired;
}

#endif

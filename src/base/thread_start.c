/* Starting a VM's threads through its thread hook; see thread_start.h. */
#include "base/thread_start.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

struct trampoline {
	void *(*fn)(void *);
	void *arg;
	struct thread_hook hook;
	char name[16];
};

static void *run(void *p)
{
	struct trampoline t = *(struct trampoline *)p;
	free(p);
	/* The name first: the hook finds the thread's class by it, and the
	 * starter's pthread_setname_np may not have happened yet. */
	prctl(PR_SET_NAME, t.name, 0, 0, 0);
	if (t.hook.start && t.hook.start(t.hook.ctx, t.name))
		return NULL;
	return t.fn(t.arg);
}

int thread_start(const struct thread_hook *hook, pthread_t *t, const char *name,
		 void *(*fn)(void *), void *arg)
{
	struct trampoline *tr = calloc(1, sizeof(*tr));
	if (!tr)
		return ENOMEM;
	tr->fn = fn;
	tr->arg = arg;
	if (hook)
		tr->hook = *hook;
	snprintf(tr->name, sizeof(tr->name), "%s", name);
	struct thread_hook h = tr->hook;
	int e = pthread_create(t, NULL, run, tr);
	if (e) {
		free(tr);
		return e;
	}
	/* Also from here: a pass over the threads that looks before the new
	 * thread has run sees its own name, not its starter's. */
	pthread_setname_np(*t, name);
	if (h.started)
		h.started(h.ctx, thread_tid(*t));
	return 0;
}

pid_t thread_tid(pthread_t t)
{
	/* glibc before 2.42 has no pthread_gettid_np; the thread's CPU-time
	 * clock id carries its id in the kernel's layout for such clocks
	 * (include/linux/posix-timers.h: the id, bit-inverted, above bit 2;
	 * bit 2 set for a thread; CPUCLOCK_SCHED = 2 in bits 0-1). */
	clockid_t c;
	if (pthread_getcpuclockid(t, &c))
		return -1;
	if ((c & 7) != 6)
		return -1;
	return (pid_t)~(c >> 3);
}

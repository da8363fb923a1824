/*
 * A VM's threads confine themselves as they start (sandbox_vm_threads,
 * base/thread_start.h): a thread started through the sandbox's hook is in
 * seccomp filter mode with no_new_privs before its work runs, with no
 * confining pass over the process's threads; and the pass that follows
 * (sandbox_confine_others, what sandbox_vm_built runs) leaves it alone: it
 * keeps the one filter it installed, no second one from the signal.
 *
 * The pass itself, with the API server's threads (a thread per
 * connection, started by libmicrohttpd, not through the hook):
 * - a thread that is ending as it is signalled never runs the handler
 *   (glibc blocks signals as a thread ends): the pass does not wait for
 *   its answer, it finds it gone;
 * - a thread not confined yet that starts another before it gets the
 *   signal: that one inherits nothing, and a second round confines it;
 * - a thread started by a confined one inherited its filter: no second.
 *
 * Its own program: the sandbox is one per process, and its filters stay.
 * Run as root or not: the calling thread itself is never confined here.
 */
#include "base/thread_start.h"
#include "vmm/config.h"
#include "vmm/sandbox.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static struct check_counts counts;
#define T(cond, ...) CHECK(&counts, cond, __VA_ARGS__)

struct worker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool working, done;
};

/* The thread's work: say it runs, wait to be let go (futex only: in the
 * io class's list). */
static void *work(void *arg)
{
	struct worker *w = arg;
	pthread_mutex_lock(&w->lock);
	w->working = true;
	pthread_cond_broadcast(&w->cond);
	while (!w->done)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* A field of /proc/self/task/TID/status, or -1. */
static long status_field(pid_t tid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long v = -1;
	size_t n = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* Until a signal is pending for the calling thread (it blocks them all):
 * the pass has listed and signalled it. */
static void until_signalled(void)
{
	for (;;) {
		sigset_t p;
		sigemptyset(&p);
		sigpending(&p);
		for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
			if (sigismember(&p, sig))
				return;
		struct timespec nap = { 0, 1000000 };
		nanosleep(&nap, NULL);
	}
}

static void block_all(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

/* An API connection's thread that ends just as the pass signals it. */
static void *ending(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "MHD-connection");
	block_all(NULL);
	until_signalled();
	return NULL;
}

/* An API listener: it accepts a connection (starts its thread) between
 * the pass's listing and its own signal's handler, then, confined, a
 * second one when told. */
struct listener {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stage;              /* 1: first started, 2: start the second, 3: second started */
	struct worker first_w, second_w;
	pthread_t first, second;
	pid_t first_tid, second_tid;
};

static void start_conn(pthread_t *t, pid_t *tid, struct worker *w)
{
	/* With signals open, as libmicrohttpd's threads have them (the
	 * listener has blocked its own). */
	pthread_attr_t a;
	sigset_t none;
	sigemptyset(&none);
	pthread_attr_init(&a);
	pthread_attr_setsigmask_np(&a, &none);
	pthread_create(t, &a, work, w);
	pthread_attr_destroy(&a);
	pthread_setname_np(*t, "MHD-connection");
	*tid = thread_tid(*t);
}

static void set_stage(struct listener *l, int stage)
{
	pthread_mutex_lock(&l->lock);
	l->stage = stage;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

static void wait_stage(struct listener *l, int stage)
{
	pthread_mutex_lock(&l->lock);
	while (l->stage < stage)
		pthread_cond_wait(&l->cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
}

static void *listener(void *arg)
{
	struct listener *l = arg;
	pthread_setname_np(pthread_self(), "MHD-listen");
	sigset_t old;
	block_all(&old);
	until_signalled();
	start_conn(&l->first, &l->first_tid, &l->first_w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);   /* the handler confines it */
	set_stage(l, 1);
	wait_stage(l, 2);
	start_conn(&l->second, &l->second_tid, &l->second_w);
	set_stage(l, 3);
	return NULL;
}

static void wait_working(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	while (!w->working)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

static void let_go(struct worker *w, pthread_t t)
{
	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(t, NULL);
}

static void wait_named(pthread_t t, const char *want)
{
	char name[32] = "";
	while (pthread_getname_np(t, name, sizeof(name)) || strcmp(name, want))
		sched_yield();
}

static void api_threads(struct sandbox *sb)
{
	char err[512];
	pthread_t end, lis;
	static struct listener l = {
		.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
		.first_w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER },
		.second_w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER },
	};
	T(pthread_create(&end, NULL, ending, NULL) == 0, "the ending thread starts");
	T(pthread_create(&lis, NULL, listener, &l) == 0, "the listener starts");
	/* Both carry their names before the pass lists them. */
	wait_named(end, "MHD-connection");
	wait_named(lis, "MHD-listen");

	int r = sandbox_confine_others(sb, err, sizeof(err));
	T(r == 0, "a pass with an ending thread and one started meanwhile: %s", r ? err : "ok");
	pthread_join(end, NULL);
	wait_stage(&l, 1);
	wait_working(&l.first_w);
	T(status_field(l.first_tid, "Seccomp") == 2,
	  "the thread started during the pass is confined: Seccomp %ld",
	  status_field(l.first_tid, "Seccomp"));
	T(status_field(l.first_tid, "Seccomp_filters") == 1, "with one filter: %ld",
	  status_field(l.first_tid, "Seccomp_filters"));

	/* Started by the now confined listener: it inherited the filter, and
	 * the next pass (a guest reboot's) leaves it alone. */
	set_stage(&l, 2);
	wait_stage(&l, 3);
	wait_working(&l.second_w);
	T(sandbox_confine_others(sb, err, sizeof(err)) == 0, "%s", err);
	T(status_field(l.second_tid, "Seccomp_filters") == 1,
	  "a thread with its starter's filter got a second one: Seccomp_filters %ld",
	  status_field(l.second_tid, "Seccomp_filters"));
	pthread_join(lis, NULL);
	let_go(&l.first_w, l.first);
	let_go(&l.second_w, l.second);
}

int main(void)
{
	char err[512];
	struct sandbox_opts o = { .seccomp = SANDBOX_ON };
	struct sandbox *sb = sandbox_create(&o, err, sizeof(err));
	T(sb != NULL, "%s", err);
	if (!sb)
		return check_summary(&counts);
	struct vm_config cfg;
	vm_config_init(&cfg);
	const struct thread_hook *hook = sandbox_vm_threads(sb, &cfg);
	T(hook && hook->start && hook->started, "the sandbox gives a thread hook");

	struct worker w = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	pthread_t t;
	T(thread_start(hook, &t, "virtio-test", work, &w) == 0, "the thread starts");
	pid_t tid = thread_tid(t);
	T(tid > 0 && tid != getpid(), "its kernel id is known at once: %d", (int)tid);
	pthread_mutex_lock(&w.lock);
	while (!w.working)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);

	/* At work, and nobody has confined it: it did so itself. */
	T(status_field(tid, "Seccomp") == 2, "Seccomp %ld at work", status_field(tid, "Seccomp"));
	T(status_field(tid, "NoNewPrivs") == 1, "NoNewPrivs %ld", status_field(tid, "NoNewPrivs"));
	T(status_field(tid, "Seccomp_filters") == 1, "Seccomp_filters %ld",
	  status_field(tid, "Seccomp_filters"));

	/* The pass after a VM is built: no signal for it (one filter still). */
	T(sandbox_confine_others(sb, err, sizeof(err)) == 0, "%s", err);
	T(status_field(tid, "Seccomp_filters") == 1,
	  "the confining pass confined the thread again: Seccomp_filters %ld",
	  status_field(tid, "Seccomp_filters"));
	/* The caller is left as it was. */
	T(status_field((pid_t)getpid(), "Seccomp") == 0, "the calling thread is not confined");

	pthread_mutex_lock(&w.lock);
	w.done = true;
	pthread_cond_broadcast(&w.cond);
	pthread_mutex_unlock(&w.lock);
	pthread_join(t, NULL);

	api_threads(sb);
	vm_config_free(&cfg);
	return check_summary(&counts);
}

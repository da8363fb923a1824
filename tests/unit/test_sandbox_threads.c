/*
 * A VM's threads confine themselves as they start (sandbox_vm_threads,
 * base/thread_start.h): a thread started through the sandbox's hook is in
 * seccomp filter mode with no_new_privs before its work runs, with no
 * confining pass over the process's threads; and the pass that follows
 * (sandbox_confine_others, what sandbox_vm_built runs) leaves it alone: it
 * keeps the one filter it installed, no second one from the signal.
 *
 * Its own program: the sandbox is one per process, and its filters stay.
 * Run as root or not: the calling thread itself is never confined here.
 */
#include "base/thread_start.h"
#include "vmm/config.h"
#include "vmm/sandbox.h"

#include <pthread.h>
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
	vm_config_free(&cfg);
	return check_summary(&counts);
}

/*
 * Starting a thread that serves a VM: named, and handed to the VMM's
 * thread hook (its sandbox) before it runs any of its work. The hook's
 * `start` runs on the new thread as its first act (the sandbox installs
 * the thread's seccomp class there: a device thread is confined before it
 * can read anything the guest wrote); `started` runs on the starting
 * thread once the new one exists, with its kernel thread id (the sandbox
 * notes that this thread confines itself, so its pass over the process's
 * threads needs no signal round trip for it). A NULL hook, or NULL
 * members, start a plain named thread.
 */
#ifndef SKIFF_BASE_THREAD_START_H
#define SKIFF_BASE_THREAD_START_H

#include <pthread.h>
#include <sys/types.h>

struct thread_hook {
	/* On the new thread, named `name`, before its work; non-zero: the
	 * thread must not do its work (it ends at once). */
	int (*start)(void *ctx, const char *name);
	/* On the starting thread, after the new thread exists. */
	void (*started)(void *ctx, pid_t tid);
	void *ctx;
};

/* pthread_create(t, NULL, fn, arg) for a thread named `name` (at most 15
 * characters), through hook. 0 or an errno value, as pthread_create. */
int thread_start(const struct thread_hook *hook, pthread_t *t, const char *name,
		 void *(*fn)(void *), void *arg);

/* The kernel's id of a thread of this process (what /proc/self/task
 * lists), known as soon as pthread_create returns; -1 if it cannot be
 * told. */
pid_t thread_tid(pthread_t t);

#endif

/*
 * What one system call costs under skiff's seccomp filters: a thread named
 * like a VMM thread of a class (vcpu, I/O, user network) times the calls
 * that class makes on its hot paths, confined with the VMM's own filter for that class (src/vmm/sandbox.c), and prints
 * the difference in nanoseconds per call.
 *
 * bench/sandbox.py --syscalls multiplies it by the system calls the VMM
 * makes during each row (counted with perf) to bound the sandbox's share
 * of the row's host CPU time: a steadier figure than timing the rows twice,
 * whose scatter from run to run is far larger than 2%.
 *
 *     build/bench/seccomp-cost [--calls N] [--rounds R]
 *
 * Output: one line per class and call, "THREAD CALL off_ns on_ns
 * cost_ns": two threads of the class, one confined and one not, run R
 * rounds of N calls each (default 300 of 2000), alternately; each figure
 * is a thread's lowest round in thread CPU time (the least disturbed by
 * other work on the host).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "vmm/sandbox.h"

struct fds {
	int file;    /* a page-cached file of 1 MiB */
	int event;   /* an eventfd, as devices use for kicks and interrupts */
	int udp;     /* a non-blocking UDP socket with nothing to read */
};

enum call { C_PREAD, C_PWRITEV, C_EVENTFD, C_PPOLL, C_RECVFROM, C_FUTEX, C_NCALLS };
static const char *const call_name[] = { "pread64", "pwritev", "eventfd-write+read", "ppoll", "recvfrom",
					 "futex-wake" };

static int futex_word;

static void one(enum call c, const struct fds *f, char *buf, unsigned i)
{
	off_t at = (off_t)(i % 256) * 4096;
	struct iovec iov = { buf, 4096 };
	struct pollfd p = { f->event, POLLIN, 0 };
	struct timespec zero = { 0, 0 };
	uint64_t v = 1;

	switch (c) {
	case C_PREAD: (void)!pread(f->file, buf, 4096, at); break;
	case C_PWRITEV: (void)!pwritev(f->file, &iov, 1, at); break;
	/* Two calls: report per call below. */
	case C_EVENTFD: (void)!write(f->event, &v, 8); (void)!read(f->event, &v, 8); break;
	case C_PPOLL: (void)!ppoll(&p, 1, &zero, NULL); break;
	case C_RECVFROM: (void)!recvfrom(f->udp, buf, 64, MSG_DONTWAIT, NULL, NULL); break;
	/* A wake with nobody waiting: the call under every mutex and
	 * condition variable handing work between threads. */
	case C_FUTEX: (void)!syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); break;
	default: break;
	}
}

/* The calling thread's own CPU time: time the host spends on other
 * programs while this thread waits for a core is not in it. */
static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

/* The time per system call of one round of `calls`. */
static double per_call(enum call c, const struct fds *f, unsigned calls)
{
	static _Thread_local char buf[4096];
	double t0 = now_ns();
	for (unsigned i = 0; i < calls; i++)
		one(c, f, buf, i);
	return (now_ns() - t0) / calls / (c == C_EVENTFD ? 2 : 1);
}

/* One thread of a class: confined or not, it runs a round of every call
 * each time the main thread posts `go`, so that the confined and the
 * unconfined thread alternate round by round and share the host's ups and
 * downs. */
struct worker {
	const char *thread;          /* a name the sandbox puts in the class */
	bool confine;
	const enum call *calls;
	size_t ncalls;
	struct sandbox *sb;
	const struct fds *f;
	unsigned n, rounds;
	sem_t go, done;
	pid_t tid;
	double best[C_NCALLS];
	int err;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	char err[256];

	prctl(PR_SET_NAME, w->thread, 0, 0, 0);
	w->tid = (pid_t)syscall(SYS_gettid);
	if (w->confine && sandbox_confine_self(w->sb, err, sizeof(err))) {
		fprintf(stderr, "seccomp-cost: confining %s: %s\n", w->thread, err);
		w->err = 1;
	}
	for (size_t k = 0; k < w->ncalls; k++)
		w->best[k] = 1e30;
	for (unsigned r = 0; r < w->rounds; r++) {
		sem_wait(&w->go);
		for (size_t k = 0; k < w->ncalls && !w->err; k++) {
			double t = per_call(w->calls[k], w->f, w->n);
			if (t < w->best[k])
				w->best[k] = t;
		}
		sem_post(&w->done);
	}
	return NULL;
}

/* The "Seccomp:" field of a thread's status (0 none, 2 filter), -1 if unread. */
static int seccomp_state(pid_t tid)
{
	char path[64], line[256];
	int mode = -1;
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(f);
	return mode;
}

static int run_class(const char *thread, const enum call *calls, size_t ncalls, struct sandbox *sb,
		     const struct fds *f, unsigned n, unsigned rounds)
{
	struct worker w[2];
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		w[i] = (struct worker){ thread, i == 1, calls, ncalls, sb, f, n, rounds };
		sem_init(&w[i].go, 0, 0);
		sem_init(&w[i].done, 0, 0);
		if (pthread_create(&t[i], NULL, work, &w[i])) {
			fprintf(stderr, "seccomp-cost: cannot start a thread\n");
			exit(1);
		}
	}
	int bad = 0;
	for (unsigned r = 0; r < rounds; r++) {
		for (int i = 0; i < 2; i++) {
			sem_post(&w[i].go);
			sem_wait(&w[i].done);
		}
		/* Each thread has run a round: the confined one must be in
		 * seccomp's filter mode, the other in none. */
		for (int i = 0; r == 0 && i < 2; i++)
			bad |= seccomp_state(w[i].tid) != (w[i].confine ? 2 : 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	if (w[0].err || w[1].err)
		return 1;
	if (bad) {
		fprintf(stderr, "seccomp-cost: %s: the threads are not confined as intended\n", thread);
		return 1;
	}
	for (size_t k = 0; k < ncalls; k++)
		printf("%-10s %-20s %8.1f %8.1f %+8.1f\n", thread, call_name[calls[k]],
		       w[0].best[k], w[1].best[k], w[1].best[k] - w[0].best[k]);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned n = 2000, rounds = 300;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--calls"))
			n = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--rounds"))
			rounds = (unsigned)strtoul(argv[i + 1], NULL, 10);
	}
	if (!n || !rounds || (argc - 1) % 2) {
		fprintf(stderr, "usage: seccomp-cost [--calls N] [--rounds R]\n");
		return 64;
	}

	char path[] = "/tmp/skiff-seccomp-cost-XXXXXX";
	struct fds f = { mkstemp(path), eventfd(0, EFD_NONBLOCK), socket(AF_INET, SOCK_DGRAM, 0) };
	if (f.file < 0 || f.event < 0 || f.udp < 0) {
		perror("seccomp-cost: setup");
		return 1;
	}
	unlink(path);
	static char page[4096];
	for (int i = 0; i < 256; i++)
		(void)!write(f.file, page, sizeof(page));

	struct sandbox_opts o = { .seccomp = SANDBOX_ON };
	char err[256];
	struct sandbox *sb = sandbox_create(&o, err, sizeof(err));
	if (!sb) {
		fprintf(stderr, "seccomp-cost: %s\n", err);
		return 1;
	}

	static const enum call vcpu[] = { C_EVENTFD, C_FUTEX };
	static const enum call io[] = { C_PREAD, C_PWRITEV, C_EVENTFD, C_PPOLL, C_FUTEX };
	static const enum call net[] = { C_EVENTFD, C_PPOLL, C_RECVFROM, C_FUTEX };
	printf("%-10s %-20s %8s %8s %8s\n", "thread", "call", "off_ns", "on_ns", "cost_ns");
	int rc = run_class("vcpu0", vcpu, 2, sb, &f, n, rounds);
	rc |= run_class("virtio-blk", io, 5, sb, &f, n, rounds);
	rc |= run_class("slirp-net", net, 4, sb, &f, n, rounds);
	sandbox_destroy(sb);
	return rc;
}

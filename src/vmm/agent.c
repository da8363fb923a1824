/*
 * The VMM's guest agent channel; see agent.h.
 *
 * Threads: the console's I/O thread calls output (feeding the client),
 * rx_space and guest_open; API calls send from the API's connection
 * threads (without the VMM's lock; the QGA client lets one call at a time
 * onto the channel) and vm_agent_close() ends their waits. `lock`
 * and `room` hand "the port has room again" from the first to the second.
 * The clock thread ("agent-clock") sleeps on `clock_cond` until a sync is
 * asked for; `lock` guards its request and status too. It starts when the
 * first sync is asked for, usually after the VM's threads were confined:
 * it then confines itself to the API thread's class (vm->thread_hook, by
 * its name; src/vmm/sandbox.c) on top of the filter of the thread that
 * started it, before it does anything else.
 */
#include "vmm/agent.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/clock.h"
#include "monitor/vm.h"

/* How long a clock sync keeps trying (the agent may still be starting
 * after a restore), each try's time-out, and the pause between tries. */
#define CLOCK_TRY_FOR_NS (60ull * 1000000000ull)
#define CLOCK_CALL_MS 5000
#define CLOCK_RETRY_NS (500ull * 1000000ull)
/* A clock read back this close to the one set counts as set. */
#define SET_TIME_SLACK_NS (2ll * 1000000000ll)

struct vm_agent {
	struct vm *vm;             /* its thread_hook confines the clock thread */
	struct qga_client *client;
	struct virtio_console *con;
	unsigned port;
	pthread_mutex_t lock;
	pthread_cond_t room;
	unsigned long room_events;
	bool closed;               /* vm_agent_close: sends give up */

	pthread_t clock_thread;
	bool clock_started, clock_stop;
	pthread_cond_t clock_cond;
	char clock_want[32];       /* a requested sync's reason; "" when none */
	struct vm_agent_clock clock;
};

static void agent_output(void *ctx, const uint8_t *buf, size_t n)
{
	struct vm_agent *a = ctx;
	qga_client_feed(a->client, buf, n);
}

static void agent_rx_space(void *ctx)
{
	struct vm_agent *a = ctx;
	pthread_mutex_lock(&a->lock);
	a->room_events++;
	pthread_cond_broadcast(&a->room);
	pthread_mutex_unlock(&a->lock);
}

/* The guest's agent started or stopped: whatever was in flight is lost. */
static void agent_guest_open(void *ctx, bool open)
{
	struct vm_agent *a = ctx;
	qga_client_reset(a->client);
	agent_rx_space(a);
}

static int agent_send(void *ctx, const void *buf, size_t n, uint64_t deadline)
{
	struct vm_agent *a = ctx;
	const uint8_t *p = buf;
	while (n) {
		pthread_mutex_lock(&a->lock);
		bool closed = a->closed;
		pthread_mutex_unlock(&a->lock);
		if (closed || !a->con || !virtio_console_guest_open(a->con, a->port))
			return -EPIPE;
		pthread_mutex_lock(&a->lock);
		unsigned long seen = a->room_events;
		pthread_mutex_unlock(&a->lock);
		size_t took = virtio_console_input(a->con, a->port, p, n);
		p += took;
		n -= took;
		if (!n)
			break;
		/* Full: wait for the guest to take some (rx_space), or the deadline. */
		pthread_mutex_lock(&a->lock);
		while (a->room_events == seen) {
			if (a->closed) {
				pthread_mutex_unlock(&a->lock);
				return -EPIPE;
			}
			uint64_t now = clock_monotonic_ns();
			if (now >= deadline) {
				pthread_mutex_unlock(&a->lock);
				return -ETIMEDOUT;
			}
			struct timespec ts = clock_timespec(deadline);
			pthread_cond_timedwait(&a->room, &a->lock, &ts);
		}
		pthread_mutex_unlock(&a->lock);
	}
	return 0;
}

static bool agent_connected(void *ctx)
{
	return vm_agent_connected(ctx);
}

struct vm_agent *vm_agent_create(struct vm *vm, struct virtio_console_port_config *pc)
{
	struct vm_agent *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->vm = vm;
	struct qga_transport t = { .send = agent_send, .connected = agent_connected, .ctx = a };
	a->client = qga_client_new(&t);
	if (!a->client) {
		free(a);
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->room, &ca);
	pthread_cond_init(&a->clock_cond, &ca);
	pthread_condattr_destroy(&ca);
	*pc = (struct virtio_console_port_config){
		.name = VM_AGENT_PORT_NAME, .output = agent_output, .rx_space = agent_rx_space,
		.guest_open = agent_guest_open, .ctx = a,
	};
	return a;
}

void vm_agent_bind(struct vm_agent *a, struct virtio_console *con, unsigned port)
{
	a->con = con;
	a->port = port;
}

void vm_agent_close(struct vm_agent *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->closed = true;
	pthread_cond_broadcast(&a->room);
	pthread_mutex_unlock(&a->lock);
	qga_client_close(a->client);
}

void vm_agent_stop(struct vm_agent *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	bool started = a->clock_started;
	a->clock_stop = true;
	a->clock_started = false;
	pthread_cond_broadcast(&a->clock_cond);
	pthread_cond_broadcast(&a->room);
	pthread_mutex_unlock(&a->lock);
	if (started)
		pthread_join(a->clock_thread, NULL);
}

void vm_agent_destroy(struct vm_agent *a)
{
	if (!a)
		return;
	vm_agent_stop(a);
	qga_client_free(a->client);
	pthread_cond_destroy(&a->clock_cond);
	pthread_cond_destroy(&a->room);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

struct qga_client *vm_agent_client(struct vm_agent *a)
{
	return a->client;
}

bool vm_agent_connected(struct vm_agent *a)
{
	return a->con && virtio_console_guest_open(a->con, a->port);
}

/* ------------------------------------------------------------ the clock */

static void wait_until(struct vm_agent *a, uint64_t when)
{
	struct timespec ts = clock_timespec(when);
	while (!a->clock_stop && clock_monotonic_ns() < when)
		pthread_cond_timedwait(&a->clock_cond, &a->lock, &ts);
}

enum qga_status vm_agent_set_time(struct vm_agent *a, int64_t ns, unsigned timeout_ms, char *err, size_t errlen)
{
	uint64_t t0 = clock_monotonic_ns();
	json_t *args = json_pack("{s:I}", "time", (json_int_t)ns);
	json_t *ret = NULL;
	if (!args) {
		snprintf(err, errlen, "out of memory");
		return QGA_E_NOMEM;
	}
	enum qga_status st = qga_call(a->client, "guest-set-time", args, QGA_REPLY_SMALL, timeout_ms, &ret, err,
				      errlen, NULL, 0);
	json_decref(args);
	json_decref(ret);
	if (st != QGA_E_AGENT)
		return st;
	/* QEMU's agent sets the system clock and then runs hwclock -w, and
	 * reports a failure of the second (Debian without util-linux-extra
	 * has no /sbin/hwclock) as a failure of the call: the clock may well
	 * be set. Read it back. */
	char err2[256];
	st = qga_call(a->client, "guest-get-time", NULL, QGA_REPLY_SMALL, timeout_ms, &ret, err2, sizeof(err2), NULL, 0);
	int64_t want = ns + (int64_t)(clock_monotonic_ns() - t0);
	bool set = st == QGA_OK && json_is_integer(ret) &&
		   llabs((long long)(json_integer_value(ret) - want)) < (long long)SET_TIME_SLACK_NS;
	json_decref(ret);
	return set ? QGA_OK : QGA_E_AGENT;
}

/* One guest-set-time with the host's clock as it is when sent. */
static bool set_guest_clock(struct vm_agent *a, char *err, size_t errlen)
{
	return vm_agent_set_time(a, (int64_t)clock_ns(CLOCK_REALTIME), CLOCK_CALL_MS, err, errlen) == QGA_OK;
}

static void *clock_main(void *arg)
{
	struct vm_agent *a = arg;
	/* Named first: the sandbox finds the thread's class by its name. */
	pthread_setname_np(pthread_self(), "agent-clock");
	const struct vm *vm = a->vm;
	bool confined = !vm->thread_hook.start || vm->thread_hook.start(vm->thread_hook.ctx, "agent-clock") == 0;
	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (!a->clock_stop && !a->clock_want[0])
			pthread_cond_wait(&a->clock_cond, &a->lock);
		if (a->clock_stop)
			break;
		char why[sizeof(a->clock_want)];
		memcpy(why, a->clock_want, sizeof(why));
		a->clock_want[0] = 0;
		a->clock.pending = true;
		uint64_t give_up = clock_monotonic_ns() + CLOCK_TRY_FOR_NS;
		bool ok = false;
		char err[256] = "";
		if (!confined)
			snprintf(err, sizeof(err), "the clock thread could not confine itself (sandbox)");
		/* Until it worked, a newer request came (it starts over), or the
		 * time is up. */
		while (confined && !a->clock_stop && !a->clock_want[0]) {
			pthread_mutex_unlock(&a->lock);
			ok = set_guest_clock(a, err, sizeof(err));
			pthread_mutex_lock(&a->lock);
			if (ok || clock_monotonic_ns() >= give_up)
				break;
			wait_until(a, clock_monotonic_ns() + CLOCK_RETRY_NS);
		}
		a->clock.pending = a->clock_want[0] != 0;
		snprintf(a->clock.why, sizeof(a->clock.why), "%s", why);
		a->clock.ok = ok;
		snprintf(a->clock.error, sizeof(a->clock.error), "%s", ok ? "" : err);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

void vm_agent_sync_clock(struct vm_agent *a, const char *why)
{
	pthread_mutex_lock(&a->lock);
	if (!a->clock_started && !a->clock_stop) {
		if (pthread_create(&a->clock_thread, NULL, clock_main, a) == 0)
			a->clock_started = true;
	}
	if (a->clock_started) {
		snprintf(a->clock_want, sizeof(a->clock_want), "%s", why);
		a->clock.pending = true;
		pthread_cond_broadcast(&a->clock_cond);
	}
	pthread_mutex_unlock(&a->lock);
}

void vm_agent_clock_status(struct vm_agent *a, struct vm_agent_clock *out)
{
	pthread_mutex_lock(&a->lock);
	*out = a->clock;
	pthread_mutex_unlock(&a->lock);
}

/*
 * The VMM's guest agent channel; see agent.h.
 *
 * Threads: the console's I/O thread calls output (feeding the client),
 * rx_space and guest_open; API calls send from the API thread. `lock`
 * and `room` hand "the port has room again" from the first to the second.
 */
#include "vmm/agent.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "base/clock.h"

struct vm_agent {
	struct qga_client *client;
	struct virtio_console *con;
	unsigned port;
	pthread_mutex_t lock;
	pthread_cond_t room;
	unsigned long room_events;
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
		if (!a->con || !virtio_console_guest_open(a->con, a->port))
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

struct vm_agent *vm_agent_create(struct virtio_console_port_config *pc)
{
	struct vm_agent *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
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

void vm_agent_destroy(struct vm_agent *a)
{
	if (!a)
		return;
	qga_client_free(a->client);
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

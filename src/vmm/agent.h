/*
 * A VM's guest agent channel: the virtio-console port
 * org.qemu.guest_agent.0 that the VMM owns (added to every VM unless
 * turned off, or unless the user gives a --port of that name), with the
 * host's QGA client (src/api/qga.h) on it. The API's /agent routes, the
 * shutdown path and the clock resync after resume all call the agent
 * through it.
 *
 * The port's output goes straight into the client; input is pushed into
 * the port as far as its buffer takes it, the sender waiting for room
 * (the port's rx_space) up to its deadline. The client learns when the
 * guest opens or closes the port, so a call with no agent listening
 * fails at once instead of timing out.
 *
 * The guest's clock is set from the host's after a resume, a restore and
 * a host suspend (vm_agent_sync_clock) by the channel's own thread, so the
 * thread that asks (the API's, or the main loop) never waits for the
 * guest: it retries until the agent answers or a minute has passed.
 */
#ifndef SKIFF_VMM_AGENT_H
#define SKIFF_VMM_AGENT_H

#include <stdbool.h>

#include "api/qga.h"
#include "virtio/console.h"

#define VM_AGENT_PORT_NAME "org.qemu.guest_agent.0"

struct vm_agent;

struct vm;
/* A channel of `vm` not yet bound to a console: fills *pc (name and
 * callbacks) for virtio_console_create(). NULL when out of memory. */
struct vm_agent *vm_agent_create(struct vm *vm, struct virtio_console_port_config *pc);
/* The console exists: the channel is port `port` of it. */
void vm_agent_bind(struct vm_agent *a, struct virtio_console *con, unsigned port);
/* The VM is going away: calls waiting on the guest (a full port, an
 * answer) end with a channel error now, and later ones fail at once. Any
 * thread; NULL is ignored. */
void vm_agent_close(struct vm_agent *a);
/* Before the console is destroyed: ends the clock thread. NULL is ignored. */
void vm_agent_stop(struct vm_agent *a);
/* After the console is destroyed. NULL is ignored. */
void vm_agent_destroy(struct vm_agent *a);

/* guest-set-time to ns (nanoseconds since the epoch). An agent error
 * counts as success when the guest's clock reads back as set: QEMU's agent
 * fails the call when only its hwclock -w step failed. */
enum qga_status vm_agent_set_time(struct vm_agent *a, int64_t ns, unsigned timeout_ms, char *err, size_t errlen);

/* Set the guest's clock to the host's soon (why: "resumed", "restored",
 * ...). Returns at once; a request made while one is pending replaces it. */
void vm_agent_sync_clock(struct vm_agent *a, const char *why);

struct vm_agent_clock {
	char why[32];            /* of the last attempt that ended; "" if none */
	bool ok;                 /* it set the clock */
	char error[256];         /* else why not */
	bool pending;            /* a request is being worked on */
};
void vm_agent_clock_status(struct vm_agent *a, struct vm_agent_clock *out);

/* The client (calls: see qga.h). */
struct qga_client *vm_agent_client(struct vm_agent *a);
/* Whether the guest has the agent port open. */
bool vm_agent_connected(struct vm_agent *a);

#endif

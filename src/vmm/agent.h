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
 */
#ifndef SKIFF_VMM_AGENT_H
#define SKIFF_VMM_AGENT_H

#include <stdbool.h>

#include "api/qga.h"
#include "virtio/console.h"

#define VM_AGENT_PORT_NAME "org.qemu.guest_agent.0"

struct vm_agent;

/* A channel not yet bound to a console: fills *pc (name and callbacks)
 * for virtio_console_create(). NULL when out of memory. */
struct vm_agent *vm_agent_create(struct virtio_console_port_config *pc);
/* The console exists: the channel is port `port` of it. */
void vm_agent_bind(struct vm_agent *a, struct virtio_console *con, unsigned port);
/* After the console is destroyed. NULL is ignored. */
void vm_agent_destroy(struct vm_agent *a);

/* The client (calls: see qga.h). */
struct qga_client *vm_agent_client(struct vm_agent *a);
/* Whether the guest has the agent port open. */
bool vm_agent_connected(struct vm_agent *a);

#endif

/*
 * The host side of named virtio-console ports (`skiff run --port
 * NAME,uds=PATH`): a Unix socket per port that skiff listens on (mode 0600;
 * a stale socket file is replaced, one a program listens on is refused; the
 * file is removed at the end). One client per port at a time: a new
 * connection takes over and the old one is closed (it reads end of file).
 * Bytes pass unchanged both ways:
 *   guest -> client: what the guest writes goes to the connected client; with
 *     no client connected it is dropped. A client that reads slowly holds
 *     the guest's writes back (the port's transmitq waits: output_busy), so
 *     nothing is lost while it stays connected.
 *   client -> guest: fed to the port with virtio_console_input(); while the
 *     port's buffer is full the socket is not read (the device's rx_space
 *     callback resumes it), so the client's writes wait instead.
 * A client may shut down its sending side and go on reading. One thread
 * serves all the ports of a VM.
 */
#ifndef SKIFF_VMM_PORT_SOCK_H
#define SKIFF_VMM_PORT_SOCK_H

#include <stddef.h>

#include "virtio/console.h"
#include "vmm/config.h"

struct port_socks;
struct thread_hook;

/* Listen on the n ports' sockets and fill pcs[0..n) (name and callbacks)
 * for virtio_console_create(). NULL with a message in err; no socket file
 * is left behind then. */
struct port_socks *port_socks_create(const struct vm_console_port *ports, size_t n,
				     struct virtio_console_port_config *pcs,
				     char *err, size_t errlen);
/* Start serving: ports[i] is port first + i of con; the thread starts
 * through threads (base/thread_start.h). 0, or -1 with err. */
int port_socks_start(struct port_socks *ps, struct virtio_console *con, unsigned first,
		     const struct thread_hook *threads, char *err, size_t errlen);
/* Stop the serving thread; call before the console is destroyed (the
 * thread feeds it). NULL is ignored. */
void port_socks_stop(struct port_socks *ps);
/* Close the clients and the sockets, remove the socket files and free;
 * call after the console is destroyed (its thread calls the callbacks).
 * NULL is ignored. */
void port_socks_destroy(struct port_socks *ps);

#endif

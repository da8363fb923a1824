/*
 * virtio-vsock's host backend: Firecracker's Unix-socket convention.
 *
 *   host -> guest: a program connects to the listening socket `path` and
 *     writes "CONNECT <port>\n"; once the guest accepts, it reads
 *     "OK <localport>\n" and the socket carries the stream.
 *   guest -> host: a connection to host port P is a connection to the
 *     socket "<path>_P", which must be skiff's own user's, and so must the
 *     process listening on it (SO_PEERCRED): in a shared directory another
 *     local user could make "<path>_P" first and receive what the guest
 *     meant for the host. A refusal is reported once.
 *
 * The listening socket is mode 0600 whatever the umask (base/unix_sock.c).
 * What the device's connections get from here is a connected stream
 * socket (non-blocking, close-on-exec); the stream itself they read and
 * write directly.
 */
#ifndef SKIFF_VIRTIO_VSOCK_UDS_H
#define SKIFF_VIRTIO_VSOCK_UDS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/unix_sock.h"

#define VSOCK_UDS_LINE_MAX 32

struct vsock_uds {
	char *path;
	struct unix_sock_file file;   /* removed at the end only if still ours */
	int listen_fd;
	_Atomic uint64_t foreign_refused; /* guest connections to another user's socket */
};

/* A host client's request line as far as it came. */
struct vsock_uds_line {
	char text[VSOCK_UDS_LINE_MAX + 1];
	size_t len;
};

/* Listen on `path` (1 .. UNIX_SOCK_PATH_MAX - 11 bytes: "_<port>" must
 * fit too). NULL, or err. */
const char *vsock_uds_open(struct vsock_uds *b, const char *path, char *err, size_t errlen);
/* Stop listening; the socket file goes if it is still the one made. */
void vsock_uds_close(struct vsock_uds *b);
/* A new host client's stream, or -1 when none is waiting. */
int vsock_uds_accept(struct vsock_uds *b);
/* The guest connects to host port `port`: a stream, or -1 (nobody there,
 * or not skiff's user's). */
int vsock_uds_connect(struct vsock_uds *b, uint32_t port);
/* Read on at a host client's "CONNECT <port>\n", taking no byte after
 * it: 1 with *port when complete, 0 when more is to come, -1 when the
 * client is to be dropped (EOF, error, not such a line). */
int vsock_uds_read_request(int fd, struct vsock_uds_line *l, uint32_t *port);
/* Tell a host client the guest accepted, on host port local_port. */
bool vsock_uds_accepted(int fd, uint32_t local_port);

#endif

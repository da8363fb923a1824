/* virtio-vsock's host backend on Unix sockets; see vsock_uds.h. */
#include "virtio/vsock_uds.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

const char *vsock_uds_open(struct vsock_uds *b, const char *path, char *err, size_t errlen)
{
	b->listen_fd = -1;
	/* Room for "_<port>" too. */
	if (!path || !*path || strlen(path) + 11 > UNIX_SOCK_PATH_MAX) {
		snprintf(err, errlen, "socket path must be 1 to %d bytes", UNIX_SOCK_PATH_MAX - 11);
		return err;
	}
	if (!(b->path = strdup(path))) {
		snprintf(err, errlen, "out of memory");
		return err;
	}
	b->listen_fd = unix_listen(path, 64, &b->file, err, errlen);
	if (b->listen_fd < 0) {
		free(b->path);
		b->path = NULL;
		return err;
	}
	return NULL;
}

void vsock_uds_close(struct vsock_uds *b)
{
	if (b->listen_fd >= 0) {
		close(b->listen_fd);
		unix_listen_remove(b->path, &b->file);
		b->listen_fd = -1;
	}
	free(b->path);
	b->path = NULL;
}

int vsock_uds_accept(struct vsock_uds *b)
{
	return accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

/* Is the socket at `path`, connected as fd, skiff's own user's: the file
 * and the process that listens on it? Reported once per device. */
static bool owned_by_us(struct vsock_uds *b, int fd, const char *path)
{
	struct stat st;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t me = geteuid();
	long owner = -1;
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		owner = -1;
	else if (st.st_uid != me)
		owner = st.st_uid;
	else if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		owner = -1;
	else if (cred.uid != me)
		owner = cred.uid;
	else
		return true;
	if (atomic_fetch_add(&b->foreign_refused, 1) == 0)
		fprintf(stderr, "virtio-vsock: refused the guest's connection to %s: the socket or the "
			"program listening on it is not skiff's user's (uid %ld, skiff runs as %u); "
			"reported once\n", path, owner, (unsigned)me);
	return false;
}

int vsock_uds_connect(struct vsock_uds *b, uint32_t port)
{
	char path[UNIX_SOCK_PATH_MAX + 2];
	int len = snprintf(path, sizeof(path), "%s_%" PRIu32, b->path, port);
	int fd = len > 0 && (size_t)len <= UNIX_SOCK_PATH_MAX ? unix_connect(path, true) : -1;
	if (fd >= 0 && !owned_by_us(b, fd, path)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

int vsock_uds_read_request(int fd, struct vsock_uds_line *l, uint32_t *port)
{
	char peek[VSOCK_UDS_LINE_MAX + 1];
	size_t want = VSOCK_UDS_LINE_MAX - l->len;
	ssize_t n = recv(fd, peek, want, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return -1;
	if (n < 0)
		return 0;
	char *nl = memchr(peek, '\n', (size_t)n);
	size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
	ssize_t got = recv(fd, l->text + l->len, take, MSG_DONTWAIT);
	if (got != (ssize_t)take)
		return -1;
	l->len += take;
	l->text[l->len] = 0;
	if (!nl)
		return l->len >= VSOCK_UDS_LINE_MAX ? -1 : 0;   /* no newline in a sane length */
	char *end;
	unsigned long p = 0;
	bool ok = !strncmp(l->text, "CONNECT ", 8) && l->text[8] >= '0' && l->text[8] <= '9';
	if (ok) {
		errno = 0;
		p = strtoul(l->text + 8, &end, 10);
		ok = !errno && p <= UINT32_MAX && (*end == '\n' || (*end == '\r' && end[1] == '\n'));
	}
	if (!ok)
		return -1;
	*port = (uint32_t)p;
	return 1;
}

bool vsock_uds_accepted(int fd, uint32_t local_port)
{
	char ok[32];
	int n = snprintf(ok, sizeof(ok), "OK %" PRIu32 "\n", local_port);
	return send(fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n;
}

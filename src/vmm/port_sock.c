/*
 * Named virtio-console ports on Unix sockets; see port_sock.h.
 *
 * Threads: the console's I/O thread calls port_output() and
 * port_output_busy() (under the port's transmitq lock) and port_rx_space();
 * the serving thread accepts clients, reads them into the device, and sends
 * the output a client could not take at once. psock.lock guards what both
 * use (the client descriptor, the pending output); it is never held while
 * calling into the console.
 *
 * A client whose connect() has returned is connected, accepted or not: the
 * guest's output must not be dropped because the serving thread has not run
 * yet (on a busy host it may run long after the guest wrote). So while the
 * port has no client that can take output and one waits on the listener,
 * the port is busy: the guest's write waits in its queue until the serving
 * thread has accepted that client (set_client owes output_ready). The
 * serving thread accepts under psock.lock, so a client is always either
 * waiting on the listener or installed when port_output_busy looks.
 */
#include "vmm/port_sock.h"
#include "base/thread_start.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/unix_sock.h"

_Static_assert(VM_MAX_CONSOLE_PORTS < VIRTIO_CONSOLE_MAX_PORTS, "port 0 plus the named ports");
_Static_assert(VM_CONSOLE_PORT_NAME_MAX <= VIRTIO_CONSOLE_NAME_MAX, "port name length");

/* Guest output a slow client has not taken yet. From OUT_HIGH on, the port
 * is busy and the guest's next write waits in the queue; the one write that
 * may still come (Linux sends at most 32 KiB, or a spliced pipe's worth)
 * fits below OUT_MAX. Only a guest sending absurdly large buffers loses
 * bytes beyond it. */
#define OUT_HIGH (64u * 1024)
#define OUT_MAX (2u * 1024 * 1024)
#define IN_CHUNK (16u * 1024)

struct psock {
	struct port_socks *set;
	unsigned port;               /* the console's port number */
	char *path;
	struct unix_sock_file file;  /* the socket file made, removed only if still there */
	int listen_fd;

	pthread_mutex_t lock;
	int client;                  /* -1: none */
	bool broken;                 /* a send failed: the thread closes the client */
	uint8_t *out;                /* pending output: out[out_off, out_off + out_len) */
	size_t out_off, out_len, out_cap;
	bool held;                   /* output_busy said yes: output_ready is owed */

	/* The serving thread's alone. */
	bool in_eof;                 /* the client sent end of file */
	bool peer_gone;              /* the client hung up altogether */
	size_t in_off, in_len;       /* client bytes the device has not taken */
	uint8_t in[IN_CHUNK];
};

struct port_socks {
	struct psock *p;
	size_t n;
	struct pollfd *fds;          /* the wake eventfd, then listener and client per port */
	struct virtio_console *con;
	int wake;                    /* eventfd: device room, pending output, a broken client, stop */
	atomic_bool stop;
	bool running;
	pthread_t thread;
};

static void wake(struct port_socks *ps)
{
	uint64_t one = 1;
	if (write(ps->wake, &one, sizeof(one)) < 0) {
		/* The counter is already non-zero: the thread wakes anyway. */
	}
}

/* p->lock held. Keep n more bytes of output, as many as fit under OUT_MAX. */
static void out_append(struct psock *p, const uint8_t *buf, size_t n)
{
	if (p->out_off + p->out_len + n > p->out_cap && p->out_off) {
		memmove(p->out, p->out + p->out_off, p->out_len);
		p->out_off = 0;
	}
	if (p->out_len + n > p->out_cap && p->out_cap < OUT_MAX) {
		size_t cap = p->out_cap ? p->out_cap : OUT_HIGH;
		while (cap < p->out_len + n && cap < OUT_MAX)
			cap *= 2;
		if (cap > OUT_MAX)
			cap = OUT_MAX;
		uint8_t *grown = realloc(p->out, cap);
		if (grown) {
			p->out = grown;
			p->out_cap = cap;
		}
	}
	size_t room = p->out_cap - p->out_off - p->out_len;
	if (n > room)
		n = room;
	if (!n)
		return;
	memcpy(p->out + p->out_off + p->out_len, buf, n);
	p->out_len += n;
}

/* p->lock held. Send what the client takes without blocking; false if it
 * is gone. */
static bool send_some(struct psock *p, const uint8_t *buf, size_t n, size_t *sent)
{
	*sent = 0;
	while (*sent < n) {
		ssize_t w = send(p->client, buf + *sent, n - *sent, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (w <= 0)
			return false;
		*sent += (size_t)w;
	}
	return true;
}

/* p->lock held. The client cannot take output any more: drop it, now and
 * from now on (its input is still read to the end). */
static void out_fail(struct psock *p)
{
	p->broken = true;
	p->out_off = p->out_len = 0;
}

/* Console I/O thread: the guest wrote to the port. */
static void port_output(void *ctx, const uint8_t *buf, size_t n)
{
	struct psock *p = ctx;
	bool tell = false;
	pthread_mutex_lock(&p->lock);
	if (p->client >= 0 && !p->broken) {   /* else nobody listens: dropped */
		size_t sent = 0;
		bool was_empty = p->out_len == 0;
		/* Usually the client takes it all at once; otherwise the thread
		 * sends the rest when the socket has room. */
		if (was_empty && !send_some(p, buf, n, &sent))
			out_fail(p);
		else
			out_append(p, buf + sent, n - sent);
		tell = p->broken || (was_empty && p->out_len);
	}
	pthread_mutex_unlock(&p->lock);
	if (tell)
		wake(p->set);
}

/* p->lock held: a client waits on the listener. */
static bool client_waiting(struct psock *p)
{
	struct pollfd l = { .fd = p->listen_fd, .events = POLLIN };
	return poll(&l, 1, 0) > 0 && (l.revents & POLLIN);
}

static bool port_output_busy(void *ctx)
{
	struct psock *p = ctx;
	pthread_mutex_lock(&p->lock);
	bool busy = p->out_len >= OUT_HIGH ||
		    ((p->client < 0 || p->broken) && client_waiting(p));
	if (busy)
		p->held = true;
	pthread_mutex_unlock(&p->lock);
	return busy;
}

static void port_rx_space(void *ctx)
{
	wake(((struct psock *)ctx)->set);
}

/* p->lock held: whether output_ready is owed now (and no longer). */
static bool release_output(struct psock *p)
{
	bool owed = p->held && p->out_len < OUT_HIGH / 2;
	if (owed)
		p->held = false;
	return owed;
}

/* Replace the client by the one waiting on the listener (accept: true) or
 * by none. The old one is closed, its pending output and unread input
 * dropped. False: accept found no client (errno says why); nothing changed. */
static bool set_client(struct psock *p, bool accept)
{
	pthread_mutex_lock(&p->lock);
	int fd = -1;
	if (accept) {
		fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			int e = errno;
			pthread_mutex_unlock(&p->lock);
			errno = e;
			return false;
		}
	}
	int old = p->client;
	p->client = fd;
	p->broken = false;
	p->out_off = p->out_len = 0;
	bool owed = release_output(p);
	pthread_mutex_unlock(&p->lock);
	if (old >= 0)
		close(old);
	p->in_eof = p->peer_gone = false;
	p->in_off = p->in_len = 0;
	if (owed)
		virtio_console_output_ready(p->set->con, p->port);
	return true;
}

/* Pass client bytes on as far as the device takes them. */
static void feed(struct psock *p)
{
	if (!p->in_len)
		return;
	size_t took = virtio_console_input(p->set->con, p->port, p->in + p->in_off, p->in_len);
	p->in_off += took;
	p->in_len -= took;
}

static void serve_client(struct psock *p, short revents)
{
	if (revents & (POLLHUP | POLLERR))
		p->peer_gone = true;
	if (revents & (POLLOUT | POLLHUP | POLLERR)) {
		pthread_mutex_lock(&p->lock);
		size_t sent = 0;
		if (p->out_len && !send_some(p, p->out + p->out_off, p->out_len, &sent)) {
			out_fail(p);
		} else {
			p->out_len -= sent;
			p->out_off = p->out_len ? p->out_off + sent : 0;
		}
		pthread_mutex_unlock(&p->lock);
	}
	if ((revents & (POLLIN | POLLHUP | POLLERR)) && !p->in_eof && !p->in_len) {
		ssize_t r = recv(p->client, p->in, sizeof(p->in), MSG_DONTWAIT);
		if (r > 0) {
			p->in_off = 0;
			p->in_len = (size_t)r;
		} else if (r == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
			p->in_eof = true;
			if (r < 0)
				p->peer_gone = true;
		}
	}
}

/* The events to wait for on port p's client; -1: do not poll it. */
static int client_events(struct psock *p, short *events)
{
	*events = 0;
	if (p->client < 0)
		return -1;
	if (!p->in_eof && !p->in_len)
		*events |= POLLIN;
	pthread_mutex_lock(&p->lock);
	if (p->out_len)
		*events |= POLLOUT;
	pthread_mutex_unlock(&p->lock);
	/* A hung-up client with nothing to do would report POLLHUP forever;
	 * otherwise poll it even for no events, to notice a hang-up. */
	return p->peer_gone && !*events ? -1 : p->client;
}

static void *serve(void *arg)
{
	struct port_socks *ps = arg;
	struct pollfd *fds = ps->fds;
	while (!atomic_load(&ps->stop)) {
		fds[0] = (struct pollfd){ .fd = ps->wake, .events = POLLIN };
		for (size_t i = 0; i < ps->n; i++) {
			struct psock *p = &ps->p[i];
			short ev;
			fds[1 + 2 * i] = (struct pollfd){ .fd = p->listen_fd, .events = POLLIN };
			int fd = client_events(p, &ev);
			fds[2 + 2 * i] = (struct pollfd){ .fd = fd, .events = ev };
		}
		if (poll(fds, 1 + 2 * ps->n, -1) < 0 && errno != EINTR)
			break;
		if (fds[0].revents) {
			uint64_t v;
			if (read(ps->wake, &v, sizeof(v)) < 0) {
				/* Nothing to read: another wake-up got it. */
			}
		}
		for (size_t i = 0; i < ps->n; i++) {
			struct psock *p = &ps->p[i];
			if (fds[1 + 2 * i].revents & POLLIN) {
				if (set_client(p, true))   /* a new client takes over */
					continue;
				/* Out of descriptors: the listener stays readable,
				 * so wait a little instead of spinning on it. */
				if (errno == EMFILE || errno == ENFILE)
					usleep(100 * 1000);
			}
			if (p->client < 0)
				continue;
			if (fds[2 + 2 * i].revents)
				serve_client(p, fds[2 + 2 * i].revents);
			feed(p);   /* also when the device has room again */
			pthread_mutex_lock(&p->lock);
			bool owed = release_output(p);
			/* Done once nothing can pass either way any more. */
			bool done = (p->broken || p->peer_gone) && p->in_eof && !p->in_len;
			pthread_mutex_unlock(&p->lock);
			if (owed)
				virtio_console_output_ready(ps->con, p->port);
			if (done)
				set_client(p, false);
		}
	}
	return NULL;
}

struct port_socks *port_socks_create(const struct vm_console_port *ports, size_t n,
				     struct virtio_console_port_config *pcs,
				     char *err, size_t errlen)
{
	struct port_socks *ps = calloc(1, sizeof(*ps));
	if (!ps || !(ps->p = calloc(n, sizeof(*ps->p))) ||
	    !(ps->fds = calloc(1 + 2 * n, sizeof(*ps->fds)))) {
		if (ps)
			free(ps->p);
		free(ps);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ps->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ps->wake < 0) {
		snprintf(err, errlen, "cannot create an eventfd: %s", strerror(errno));
		port_socks_destroy(ps);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct psock *p = &ps->p[i];
		p->set = ps;
		p->client = p->listen_fd = -1;
		pthread_mutex_init(&p->lock, NULL);
		ps->n++;
		char why[400];
		if (!(p->path = strdup(ports[i].uds_path))) {
			snprintf(err, errlen, "out of memory");
			port_socks_destroy(ps);
			return NULL;
		}
		p->listen_fd = unix_listen(p->path, 4, &p->file, why, sizeof(why));
		if (p->listen_fd < 0) {
			snprintf(err, errlen, "port %s: %s", ports[i].name, why);
			port_socks_destroy(ps);
			return NULL;
		}
		pcs[i] = (struct virtio_console_port_config){
			.name = ports[i].name, .output = port_output, .rx_space = port_rx_space,
			.output_busy = port_output_busy, .ctx = p,
		};
	}
	return ps;
}

int port_socks_start(struct port_socks *ps, struct virtio_console *con, unsigned first,
		     const struct thread_hook *threads, char *err, size_t errlen)
{
	if (!ps)
		return 0;
	ps->con = con;
	for (size_t i = 0; i < ps->n; i++)
		ps->p[i].port = first + (unsigned)i;
	if (thread_start(threads, &ps->thread, "port-sock", serve, ps)) {
		snprintf(err, errlen, "cannot start the console ports' thread");
		return -1;
	}
	ps->running = true;
	return 0;
}

void port_socks_stop(struct port_socks *ps)
{
	if (!ps || !ps->running)
		return;
	atomic_store(&ps->stop, true);
	wake(ps);
	pthread_join(ps->thread, NULL);
	ps->running = false;
}

void port_socks_destroy(struct port_socks *ps)
{
	if (!ps)
		return;
	port_socks_stop(ps);
	for (size_t i = 0; i < ps->n; i++) {
		struct psock *p = &ps->p[i];
		if (p->client >= 0)
			close(p->client);
		if (p->listen_fd >= 0) {
			close(p->listen_fd);
			unix_listen_remove(p->path, &p->file);
		}
		pthread_mutex_destroy(&p->lock);
		free(p->path);
		free(p->out);
	}
	if (ps->wake >= 0)
		close(ps->wake);
	free(ps->fds);
	free(ps->p);
	free(ps);
}

/*
 * User-mode NAT backend on libslirp, like QEMU's "-netdev user": the guest
 * network is 10.0.2.0/24 with DHCP from 10.0.2.15, the gateway 10.0.2.2
 * (connections to it reach the host's loopback unless no_host_loopback),
 * DNS at 10.0.2.3 (relayed
 * to the host's resolver) and outbound TCP/UDP through ordinary host
 * sockets; host port forwards (hostfwd) listen on a host address and
 * connect to the guest.
 *
 * libslirp is not thread-safe, so one thread owns the Slirp instance: it
 * polls slirp's sockets, its timers and an eventfd, feeds it the frames
 * the virtio-net I/O thread queued (after software checksum and TCP
 * segmentation, offload.c) and passes its output frames to cb->rx. When the
 * receiver says it is congested, slirp's sockets are polled without POLLIN
 * so no new host data comes in until it resumes; TCP's own windows then
 * push back on the peers.
 *
 * Snapshots: to save or load slirp's state (user_state.c) from another
 * thread, the caller stops the slirp thread between two rounds (hold), so
 * it is neither inside libslirp nor in a callback into the device.
 */
#include "backend/net/net.h"
#include "base/thread_start.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include "backend/net/user_state.h"
#include "base/clock.h"

/* The guest link's MTU. slirp ends every connection in a host socket, so
 * the MTU only sizes the frames between the guest and slirp: the largest
 * one libslirp takes (as slirp4netns uses) makes a TCP stream cost the
 * guest ~40x fewer packets than 1500 does (measured: 20 MiB host->guest
 * 6.0 -> 8.9 MB/s, guest->host 6.2 -> 12 MB/s). */
#define NET_USER_DEFAULT_MTU 65520
#define TX_SLOTS 256
#define TX_MAX_BYTES (4u << 20)
#define GUEST_ERRORS_SHOWN 10

struct user_timer {
	struct user_timer *next;
	SlirpTimerCb cb;          /* NULL: an id timer (slirp_handle_timer) */
	SlirpTimerId id;
	void *cb_opaque;
	int64_t expire_ms;        /* -1: not armed */
};

struct tx_frame {
	size_t len;
	uint8_t data[];
};

struct user_backend {
	struct net_backend base;
	struct net_backend_cb cb;
	char name[32];
	Slirp *slirp;
	int evfd;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock;     /* the TX ring and the flags below it */
	pthread_cond_t held_cond; /* hold and parked changed */
	struct tx_frame *tx[TX_SLOTS];
	unsigned tx_head, tx_len;
	size_t tx_bytes;
	bool tx_blocked;          /* a sender got -EAGAIN */
	bool stop;
	bool hold;                /* a save or load wants the thread stopped */
	bool parked;              /* it is, between two rounds */

	_Atomic bool rx_paused;   /* this round polls without POLLIN */
	_Atomic uint32_t rx_offloads;

	/* Slirp thread only. */
	struct pollfd *pfd;
	unsigned npfd, pfd_cap;
	struct user_timer *timers;
	uint8_t *rxbuf;           /* header + frame handed to cb->rx */
	uint8_t *scratch;         /* one TCP segment */
	unsigned guest_errors;
};

static void wake(struct user_backend *u)
{
	uint64_t one = 1;
	ssize_t r = write(u->evfd, &one, sizeof(one));
	(void)r;   /* EAGAIN: the counter is already non-zero */
}

/* ---- slirp callbacks (slirp thread) ---- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct user_backend *u = opaque;
	if (len > NET_MAX_FRAME)
		return (ssize_t)len;   /* cannot happen with our MTU; drop */
	struct net_vnet_hdr h = { 0 };
	/* slirp computes every checksum itself, so they are known good
	 * (virtio 1.2 5.1.6.4: DATA_VALID needs GUEST_CSUM). */
	if (atomic_load(&u->rx_offloads) & NET_OFF_RX_CSUM)
		h.flags = NET_HDR_F_DATA_VALID;
	memcpy(u->rxbuf, &h, NET_VNET_HDR_LEN);
	memcpy(u->rxbuf + NET_VNET_HDR_LEN, buf, len);
	u->cb.rx(u->cb.ctx, u->rxbuf, NET_VNET_HDR_LEN + len);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	struct user_backend *u = opaque;
	if (u->guest_errors++ < GUEST_ERRORS_SHOWN)
		fprintf(stderr, "skiff: %s: user network: guest error: %s\n", u->name, msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return (int64_t)clock_monotonic_ns();
}

static struct user_timer *timer_add(struct user_backend *u, SlirpTimerCb cb, SlirpTimerId id,
				    void *cb_opaque)
{
	struct user_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;   /* slirp copes with a NULL timer by not using it */
	t->cb = cb;
	t->id = id;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = u->timers;
	u->timers = t;
	return t;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	return timer_add(opaque, cb, SLIRP_TIMER_RA, cb_opaque);
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	return timer_add(opaque, NULL, id, cb_opaque);
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct user_backend *u = opaque;
	for (struct user_timer **p = &u->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = ((struct user_timer *)timer)->next;
			free(timer);
			return;
		}
	}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	if (timer)
		((struct user_timer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque) { (void)fd; (void)opaque; }
static void cb_unregister_poll_fd(int fd, void *opaque) { (void)fd; (void)opaque; }
static void cb_notify(void *opaque) { (void)opaque; }

static const SlirpCb slirp_callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_unregister_poll_fd,
	.notify = cb_notify,
	.timer_new_opaque = cb_timer_new_opaque,
};

/* ---- the slirp thread ---- */

static int add_poll(int fd, int events, void *opaque)
{
	struct user_backend *u = opaque;
	if (u->npfd == u->pfd_cap) {
		unsigned cap = u->pfd_cap ? 2 * u->pfd_cap : 64;
		struct pollfd *p = realloc(u->pfd, cap * sizeof(*p));
		if (!p)
			return -1;   /* slirp skips the socket this round */
		u->pfd = p;
		u->pfd_cap = cap;
	}
	short ev = 0;
	if ((events & SLIRP_POLL_IN) && !atomic_load(&u->rx_paused))
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	u->pfd[u->npfd] = (struct pollfd){ .fd = fd, .events = ev };
	return (int)u->npfd++;
}

static int get_revents(int idx, void *opaque)
{
	struct user_backend *u = opaque;
	if (idx < 0 || (unsigned)idx >= u->npfd)
		return 0;
	short r = u->pfd[idx].revents;
	int ev = 0;
	if (r & POLLIN) ev |= SLIRP_POLL_IN;
	if (r & POLLOUT) ev |= SLIRP_POLL_OUT;
	if (r & POLLPRI) ev |= SLIRP_POLL_PRI;
	if (r & (POLLERR | POLLNVAL)) ev |= SLIRP_POLL_ERR;
	if (r & POLLHUP) ev |= SLIRP_POLL_HUP;
	return ev;
}

static void emit_to_slirp(void *ctx, const uint8_t *frame, size_t len)
{
	struct user_backend *u = ctx;
	slirp_input(u->slirp, frame, (int)len);
}

static void drain_tx(struct user_backend *u)
{
	struct tx_frame *batch[TX_SLOTS];
	pthread_mutex_lock(&u->lock);
	unsigned n = u->tx_len;
	for (unsigned i = 0; i < n; i++)
		batch[i] = u->tx[(u->tx_head + i) % TX_SLOTS];
	u->tx_head = (u->tx_head + n) % TX_SLOTS;
	u->tx_len = 0;
	u->tx_bytes = 0;
	bool blocked = u->tx_blocked;
	u->tx_blocked = false;
	pthread_mutex_unlock(&u->lock);

	for (unsigned i = 0; i < n; i++) {
		struct tx_frame *f = batch[i];
		struct net_vnet_hdr h;
		memcpy(&h, f->data, NET_VNET_HDR_LEN);
		/* A malformed offload request is the guest's problem: drop. */
		net_offload_segment(&h, f->data + NET_VNET_HDR_LEN, f->len - NET_VNET_HDR_LEN,
				    u->scratch, NET_MAX_FRAME, emit_to_slirp, u);
		free(f);
	}
	if (blocked)
		u->cb.tx_ready(u->cb.ctx);
}

static void run_timers(struct user_backend *u)
{
	int64_t now = (int64_t)clock_monotonic_ns() / 1000000;
	bool again = true;
	/* A callback may free or re-arm timers: restart the walk after each
	 * (bounded, in case one keeps re-arming itself into the past). */
	for (int rounds = 0; again && rounds < 64; rounds++) {
		again = false;
		for (struct user_timer *t = u->timers; t; t = t->next) {
			if (t->expire_ms >= 0 && t->expire_ms <= now) {
				t->expire_ms = -1;
				if (t->cb)
					t->cb(t->cb_opaque);
				else
					slirp_handle_timer(u->slirp, t->id, t->cb_opaque);
				again = true;
				break;
			}
		}
	}
}

static void *user_thread(void *arg)
{
	struct user_backend *u = arg;
	for (;;) {
		pthread_mutex_lock(&u->lock);
		while (u->hold && !u->stop) {
			u->parked = true;
			pthread_cond_broadcast(&u->held_cond);
			pthread_cond_wait(&u->held_cond, &u->lock);
		}
		u->parked = false;
		bool stop = u->stop;
		pthread_mutex_unlock(&u->lock);
		if (stop)
			break;
		atomic_store(&u->rx_paused, !u->cb.can_rx(u->cb.ctx));
		u->npfd = 0;
		add_poll(u->evfd, SLIRP_POLL_IN, u);
		u->pfd[0].events = POLLIN;   /* even while paused */
		uint32_t timeout = 1000;
		slirp_pollfds_fill(u->slirp, &timeout, add_poll, u);
		int64_t now = (int64_t)clock_monotonic_ns() / 1000000;
		for (struct user_timer *t = u->timers; t; t = t->next) {
			if (t->expire_ms < 0)
				continue;
			int64_t d = t->expire_ms - now;
			if (d < 0)
				d = 0;
			if (d < (int64_t)timeout)
				timeout = (uint32_t)d;
		}
		int rc = poll(u->pfd, u->npfd, (int)timeout);
		if (rc > 0 && (u->pfd[0].revents & POLLIN)) {
			uint64_t v;
			ssize_t r = read(u->evfd, &v, sizeof(v));
			(void)r;
		}
		drain_tx(u);
		slirp_pollfds_poll(u->slirp, rc < 0, get_revents, u);
		run_timers(u);
	}
	return NULL;
}

/* Stop the slirp thread between two rounds (or let it go on). */
static void hold(struct user_backend *u, bool on)
{
	pthread_mutex_lock(&u->lock);
	u->hold = on;
	pthread_cond_broadcast(&u->held_cond);
	pthread_mutex_unlock(&u->lock);
	if (!on)
		return;
	wake(u);   /* out of its poll */
	pthread_mutex_lock(&u->lock);
	while (u->thread_started && !u->parked)
		pthread_cond_wait(&u->held_cond, &u->lock);
	pthread_mutex_unlock(&u->lock);
}

/* ---- the backend interface ---- */

static int user_send(struct net_backend *b, const struct iovec *iov, unsigned n)
{
	struct user_backend *u = (struct user_backend *)b;
	size_t total = 0;
	for (unsigned i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (total < NET_VNET_HDR_LEN + 14 || total > NET_VNET_HDR_LEN + NET_MAX_FRAME)
		return 0;   /* not an Ethernet frame: drop */
	pthread_mutex_lock(&u->lock);
	if (u->tx_len == TX_SLOTS || u->tx_bytes + total > TX_MAX_BYTES) {
		u->tx_blocked = true;
		pthread_mutex_unlock(&u->lock);
		return -EAGAIN;
	}
	pthread_mutex_unlock(&u->lock);
	struct tx_frame *f = malloc(sizeof(*f) + total);
	if (!f)
		return 0;   /* drop */
	f->len = total;
	size_t off = 0;
	for (unsigned i = 0; i < n; i++) {
		memcpy(f->data + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	pthread_mutex_lock(&u->lock);
	bool was_empty = u->tx_len == 0;
	u->tx[(u->tx_head + u->tx_len) % TX_SLOTS] = f;
	u->tx_len++;
	u->tx_bytes += total;
	pthread_mutex_unlock(&u->lock);
	if (was_empty)
		wake(u);
	return 0;
}

static void user_rx_resume(struct net_backend *b)
{
	wake((struct user_backend *)b);
}

static void user_set_offloads(struct net_backend *b, uint32_t rx)
{
	atomic_store(&((struct user_backend *)b)->rx_offloads, rx);
}

static void user_destroy(struct net_backend *b)
{
	struct user_backend *u = (struct user_backend *)b;
	if (u->thread_started) {
		pthread_mutex_lock(&u->lock);
		u->stop = true;
		pthread_mutex_unlock(&u->lock);
		wake(u);
		pthread_join(u->thread, NULL);
	}
	if (u->slirp)
		slirp_cleanup(u->slirp);
	while (u->timers) {
		struct user_timer *t = u->timers;
		u->timers = t->next;
		free(t);
	}
	for (unsigned i = 0; i < u->tx_len; i++)
		free(u->tx[(u->tx_head + i) % TX_SLOTS]);
	if (u->evfd >= 0)
		close(u->evfd);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->held_cond);
	free(u->pfd);
	free(u->rxbuf);
	free(u->scratch);
	free(u);
}

static int user_save(struct net_backend *b, struct snap_writer *w, char *err, size_t errlen)
{
	struct user_backend *u = (struct user_backend *)b;
	hold(u, true);
	int rc = user_state_save(u->slirp, w, err, errlen);
	hold(u, false);
	return rc;
}

static void user_load(struct net_backend *b, struct snap_reader *r, bool apply)
{
	struct user_backend *u = (struct user_backend *)b;
	if (!apply) {
		user_state_load(NULL, r);
		return;
	}
	hold(u, true);
	user_state_load(u->slirp, r);
	hold(u, false);
}

static const struct net_backend_ops user_ops = {
	.send = user_send,
	.rx_resume = user_rx_resume,
	.set_offloads = user_set_offloads,
	.destroy = user_destroy,
	.save = user_save,
	.load = user_load,
};

struct net_backend *net_user_create(const struct net_user_opts *o, const struct net_backend_cb *cb,
				    char *err, size_t errlen)
{
	const char *name = o->name ? o->name : "net";
	unsigned mtu = o->mtu ? o->mtu : NET_USER_DEFAULT_MTU;
	if (mtu < 576 || mtu > 65520) {
		snprintf(err, errlen, "%s: user network MTU %u out of range (576..65520)", name, mtu);
		return NULL;
	}
	struct user_backend *u = calloc(1, sizeof(*u));
	if (!u) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	u->base.ops = &user_ops;
	u->base.offloads = NET_OFF_TX_CSUM | NET_OFF_TX_TSO4 | NET_OFF_TX_TSO6 | NET_OFF_RX_CSUM;
	u->base.mtu = mtu;
	u->cb = *cb;
	u->evfd = -1;
	snprintf(u->name, sizeof(u->name), "%s", name);
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->held_cond, NULL);
	u->rxbuf = malloc(NET_VNET_HDR_LEN + NET_MAX_FRAME);
	u->scratch = malloc(NET_MAX_FRAME);
	u->pfd_cap = 64;
	u->pfd = malloc(u->pfd_cap * sizeof(*u->pfd));
	if (!u->rxbuf || !u->scratch || !u->pfd) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	u->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->evfd < 0) {
		snprintf(err, errlen, "%s: eventfd: %s", name, strerror(errno));
		goto fail;
	}

	SlirpConfig c = { .version = 4 };
	/* restricted: slirp drops what the guest sends anywhere but its own
	 * services; forwards into the guest still work (QEMU's restrict=on).
	 * disable_host_loopback: a connection to 10.0.2.2 (or 127.0.0.1) is
	 * refused instead of reaching the host's loopback, where other VMs'
	 * forwarded ports and local services listen. */
	c.restricted = o->restricted;
	c.in_enabled = true;
	inet_pton(AF_INET, "10.0.2.0", &c.vnetwork);
	inet_pton(AF_INET, "255.255.255.0", &c.vnetmask);
	inet_pton(AF_INET, "10.0.2.2", &c.vhost);
	inet_pton(AF_INET, "10.0.2.15", &c.vdhcp_start);
	inet_pton(AF_INET, "10.0.2.3", &c.vnameserver);
	c.in6_enabled = true;
	inet_pton(AF_INET6, "fec0::", &c.vprefix_addr6);
	c.vprefix_len = 64;
	inet_pton(AF_INET6, "fec0::2", &c.vhost6);
	inet_pton(AF_INET6, "fec0::3", &c.vnameserver6);
	c.vhostname = "skiff";
	c.if_mtu = mtu;
	c.if_mru = mtu;
	c.disable_host_loopback = o->no_host_loopback;
	c.enable_emu = false;
	u->slirp = slirp_new(&c, &slirp_callbacks, u);
	if (!u->slirp) {
		snprintf(err, errlen, "%s: libslirp could not set up the user network", name);
		goto fail;
	}
	for (size_t i = 0; i < o->nfwd; i++) {
		const struct net_user_fwd *f = &o->fwd[i];
		struct in_addr host = { .s_addr = f->host_addr }, guest = { .s_addr = 0 };
		errno = 0;
		if (slirp_add_hostfwd(u->slirp, f->udp, host, f->host_port, guest, f->guest_port) < 0) {
			char a[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &host, a, sizeof(a));
			snprintf(err, errlen, "%s: hostfwd=%s:%s:%u-:%u: cannot listen on %s:%u%s%s", name,
				 f->udp ? "udp" : "tcp", a, f->host_port, f->guest_port, a, f->host_port,
				 errno ? ": " : "", errno ? strerror(errno) : "");
			goto fail;
		}
	}
	char tname[16];
	snprintf(tname, sizeof(tname), "slirp-%.9s", name);
	int e = thread_start(cb->threads, &u->thread, tname, user_thread, u);
	if (e) {
		snprintf(err, errlen, "%s: cannot start the user network thread: %s", name, strerror(e));
		goto fail;
	}
	u->thread_started = true;
	return &u->base;

fail:
	user_destroy(&u->base);
	return NULL;
}

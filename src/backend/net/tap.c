/*
 * TAP backend: the guest's frames go to and come from a host TAP interface
 * (/dev/net/tun with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR). The kernel's
 * virtio-net header (TUNSETVNETHDRSZ 12, the virtio 1.2 section 5.1.6
 * layout) passes checksum and segmentation offloads straight through in
 * both directions; the offloads the kernel may use towards the guest
 * (TUNSETOFFLOAD) follow what the guest driver accepted.
 *
 * One thread reads the TAP fd and hands frames to cb->rx; while the
 * receiver is congested it stops reading (the kernel queues, then drops).
 * Sends are plain writev() calls from the caller's thread.
 */
#include "backend/net/net.h"
#include "base/thread_start.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define TAP_READ_BATCH 64

struct tap_backend {
	struct net_backend base;
	struct net_backend_cb cb;
	char ifname[IFNAMSIZ];
	int fd, evfd;
	pthread_t thread;
	bool thread_started;
	_Atomic bool stop;
	uint8_t *buf;
};

static void wake(struct tap_backend *t)
{
	uint64_t one = 1;
	ssize_t r = write(t->evfd, &one, sizeof(one));
	(void)r;
}

static void *tap_thread(void *arg)
{
	struct tap_backend *t = arg;
	while (!atomic_load(&t->stop)) {
		bool can = t->cb.can_rx(t->cb.ctx);
		struct pollfd p[2] = {
			{ .fd = t->evfd, .events = POLLIN },
			{ .fd = t->fd, .events = can ? POLLIN : 0 },
		};
		int rc = poll(p, 2, -1);
		if (rc < 0)
			continue;   /* EINTR */
		if (p[0].revents & POLLIN) {
			uint64_t v;
			ssize_t r = read(t->evfd, &v, sizeof(v));
			(void)r;
		}
		if (!(p[1].revents & POLLIN))
			continue;
		for (int i = 0; i < TAP_READ_BATCH; i++) {
			ssize_t n = read(t->fd, t->buf, NET_VNET_HDR_LEN + NET_MAX_FRAME);
			if (n < 0)
				break;   /* EAGAIN, or the interface went away */
			if (n < NET_VNET_HDR_LEN + 14)
				continue;
			if (!t->cb.rx(t->cb.ctx, t->buf, (size_t)n))
				break;
		}
	}
	return NULL;
}

static int tap_send(struct net_backend *b, const struct iovec *iov, unsigned n)
{
	struct tap_backend *t = (struct tap_backend *)b;
	/* A frame the kernel refuses (a malformed offload header, the link
	 * down) is dropped, as a NIC would. */
	ssize_t r;
	do
		r = writev(t->fd, iov, (int)n);
	while (r < 0 && errno == EINTR);
	return 0;
}

static void tap_rx_resume(struct net_backend *b)
{
	wake((struct tap_backend *)b);
}

static void tap_set_offloads(struct net_backend *b, uint32_t rx)
{
	struct tap_backend *t = (struct tap_backend *)b;
	unsigned long f = 0;
	if (rx & NET_OFF_RX_CSUM) {
		f |= TUN_F_CSUM;
		if (rx & NET_OFF_RX_TSO4)
			f |= TUN_F_TSO4;
		if (rx & NET_OFF_RX_TSO6)
			f |= TUN_F_TSO6;
	}
	if (ioctl(t->fd, TUNSETOFFLOAD, f) < 0 && f)
		ioctl(t->fd, TUNSETOFFLOAD, 0ul);   /* plain frames always work */
}

static void tap_destroy(struct net_backend *b)
{
	struct tap_backend *t = (struct tap_backend *)b;
	if (t->thread_started) {
		atomic_store(&t->stop, true);
		wake(t);
		pthread_join(t->thread, NULL);
	}
	if (t->fd >= 0)
		close(t->fd);
	if (t->evfd >= 0)
		close(t->evfd);
	free(t->buf);
	free(t);
}

static const struct net_backend_ops tap_ops = {
	.send = tap_send,
	.rx_resume = tap_rx_resume,
	.set_offloads = tap_set_offloads,
	.destroy = tap_destroy,
};

struct net_backend *net_tap_create(const char *ifname, const struct net_backend_cb *cb,
				   char *err, size_t errlen)
{
	if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ) {
		snprintf(err, errlen, "tap: interface name '%s' must be 1 to %d bytes",
			 ifname ? ifname : "", IFNAMSIZ - 1);
		return NULL;
	}
	struct tap_backend *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "tap %s: out of memory", ifname);
		return NULL;
	}
	t->base.ops = &tap_ops;
	t->base.offloads = NET_OFF_TX_CSUM | NET_OFF_TX_TSO4 | NET_OFF_TX_TSO6 |
			   NET_OFF_RX_CSUM | NET_OFF_RX_TSO4 | NET_OFF_RX_TSO6;
	t->cb = *cb;
	t->evfd = -1;
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifname);
	t->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (t->fd < 0) {
		int e = errno;
		if (e == ENOENT)
			snprintf(err, errlen, "tap %s: /dev/net/tun does not exist (%s, errno %d): "
				 "the host needs TUN/TAP support (modprobe tun)", ifname, strerror(e), e);
		else
			snprintf(err, errlen, "tap %s: cannot open /dev/net/tun: %s (errno %d)",
				 ifname, strerror(e), e);
		goto fail;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		const char *hint = "";
		if (e == EPERM || e == EACCES)
			hint = "; create the interface for this user first (ip tuntap add NAME mode tap "
			       "user USER) or run with CAP_NET_ADMIN";
		else if (e == EBUSY)
			hint = "; another process has it open";
		else if (e == EINVAL)
			hint = "; is it a TUN (not TAP) interface, or a name in use by another kind of device?";
		snprintf(err, errlen, "tap %s: cannot attach to the interface: %s (errno %d)%s",
			 ifname, strerror(e), e, hint);
		goto fail;
	}
	int hdrsz = NET_VNET_HDR_LEN;
	if (ioctl(t->fd, TUNSETVNETHDRSZ, &hdrsz) < 0) {
		snprintf(err, errlen, "tap %s: TUNSETVNETHDRSZ: %s (errno %d)", ifname,
			 strerror(errno), errno);
		goto fail;
	}
	ioctl(t->fd, TUNSETOFFLOAD, 0ul);
	t->buf = malloc(NET_VNET_HDR_LEN + NET_MAX_FRAME);
	t->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!t->buf || t->evfd < 0) {
		snprintf(err, errlen, "tap %s: %s", ifname, t->buf ? strerror(errno) : "out of memory");
		goto fail;
	}
	char tname[16];
	snprintf(tname, sizeof(tname), "tap-%.11s", ifname);
	int e = thread_start(cb->threads, &t->thread, tname, tap_thread, t);
	if (e) {
		snprintf(err, errlen, "tap %s: cannot start its thread: %s", ifname, strerror(e));
		goto fail;
	}
	t->thread_started = true;
	return &t->base;

fail:
	tap_destroy(&t->base);
	return NULL;
}

/*
 * Host network backends behind one narrow interface, used by virtio-net
 * (src/virtio/net.c): send a frame, receive frames through a callback, and
 * flow control in both directions. Two backends: user-mode NAT through
 * libslirp (user.c) and a host TAP device (tap.c).
 *
 * Every frame crossing this interface, in both directions, starts with a
 * 12-byte struct net_vnet_hdr (the virtio 1.2 section 5.1.6 header, which
 * is also what a TAP device with IFF_VNET_HDR and TUNSETVNETHDRSZ 12 uses),
 * followed by the Ethernet frame. The header carries checksum and
 * segmentation offload requests; a backend says which of them it accepts
 * (net_backend_offloads()) and the device offers only those to the guest.
 *
 * Threads. Each backend owns one thread that waits for host input (the TAP
 * fd, slirp's sockets and timers) and calls cb->rx from it. net_backend_send()
 * may be called from any one thread (the device's I/O thread).
 */
#ifndef SKIFF_BACKEND_NET_NET_H
#define SKIFF_BACKEND_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* The header in front of every frame (virtio 1.2 5.1.6, little-endian). */
struct net_vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
#define NET_VNET_HDR_LEN 12

#define NET_HDR_F_NEEDS_CSUM 1
#define NET_HDR_F_DATA_VALID 2
#define NET_HDR_GSO_NONE  0
#define NET_HDR_GSO_TCPV4 1
#define NET_HDR_GSO_UDP   3
#define NET_HDR_GSO_TCPV6 4
#define NET_HDR_GSO_ECN   0x80

/* Largest Ethernet frame (without the header) either direction carries: a
 * 64 KiB GSO packet plus its headers. */
#define NET_MAX_FRAME (65536u + 14u + 256u)

/* Offloads (net_backend_offloads): what the backend accepts on send and may
 * produce on receive. */
#define NET_OFF_TX_CSUM   (1u << 0)  /* NEEDS_CSUM on frames sent */
#define NET_OFF_TX_TSO4   (1u << 1)  /* GSO_TCPV4 on frames sent */
#define NET_OFF_TX_TSO6   (1u << 2)  /* GSO_TCPV6 on frames sent */
#define NET_OFF_TX_UFO    (1u << 3)  /* GSO_UDP on frames sent */
#define NET_OFF_RX_CSUM   (1u << 4)  /* received frames may carry NEEDS_CSUM */
#define NET_OFF_RX_TSO4   (1u << 5)  /* ... or GSO_TCPV4 */
#define NET_OFF_RX_TSO6   (1u << 6)
#define NET_OFF_RX_UFO    (1u << 7)

struct net_backend_cb {
	void *ctx;
	/* Backend thread: one frame (header + Ethernet frame, len bytes) for
	 * the guest. The callee copies it. Returns false when the receiver
	 * is congested: the backend stops reading host input for now. */
	bool (*rx)(void *ctx, const uint8_t *frame, size_t len);
	/* Backend thread, before it waits for host input: may it read more?
	 * When this says no, the backend waits without reading until
	 * net_backend_rx_resume() (frames it must still emit, such as
	 * slirp's ARP and timer output, keep coming through rx). */
	bool (*can_rx)(void *ctx);
	/* Backend thread: net_backend_send() returned -EAGAIN earlier and
	 * there is room again. */
	void (*tx_ready)(void *ctx);
	/* How the backend starts its thread (base/thread_start.h). */
	const struct thread_hook *threads;
};

/* A port forward for the user backend. */
struct net_user_fwd {
	bool udp;
	uint32_t host_addr;     /* IPv4, network byte order */
	uint16_t host_port;
	uint16_t guest_port;
};

struct net_user_opts {
	const char *name;                /* for messages ("net0") */
	const struct net_user_fwd *fwd;
	size_t nfwd;
	unsigned mtu;                    /* 0: 65520 (see user.c) */
	bool restricted;                 /* no host, no outside: forwards only */
	bool no_host_loopback;           /* 10.0.2.2 is not the host's 127.0.0.1 */
};

struct net_backend;
struct snap_writer;
struct snap_reader;

struct net_backend_ops {
	int (*send)(struct net_backend *b, const struct iovec *iov, unsigned n);
	void (*rx_resume)(struct net_backend *b);
	void (*set_offloads)(struct net_backend *b, uint32_t rx_offloads);
	void (*destroy)(struct net_backend *b);
	/* Snapshots, optional (a backend without them keeps no host-side
	 * state worth saving). The backend stops its own thread between two
	 * rounds while it saves or loads, so the caller must hold no lock
	 * that thread takes (the device's queue locks). save appends the
	 * state to w: 0, or -1 with a message. load reads it back from r,
	 * reporting a bad value with snap_reader_fail; with `apply` false it
	 * checks the state and drops it (the host side starts fresh). */
	int (*save)(struct net_backend *b, struct snap_writer *w, char *err, size_t errlen);
	void (*load)(struct net_backend *b, struct snap_reader *r, bool apply);
};

struct net_backend {
	const struct net_backend_ops *ops;
	uint32_t offloads;   /* NET_OFF_* */
	unsigned mtu;        /* what the backend would like the guest to use */
};

/* User-mode NAT (libslirp): guest network 10.0.2.0/24, gateway and host
 * loopback at 10.0.2.2, DNS at 10.0.2.3, DHCP from 10.0.2.15. NULL with a
 * message in err. */
struct net_backend *net_user_create(const struct net_user_opts *o, const struct net_backend_cb *cb,
				    char *err, size_t errlen);
/* An existing or new TAP interface `ifname` (needs access to /dev/net/tun).
 * NULL with a message naming the interface and the errno. */
struct net_backend *net_tap_create(const char *ifname, const struct net_backend_cb *cb,
				   char *err, size_t errlen);

/* Send one frame (header + Ethernet frame, spread over iov). 0 when it was
 * sent or dropped (a bad or undeliverable frame), -EAGAIN when the backend
 * is full: try again after cb->tx_ready. */
static inline int net_backend_send(struct net_backend *b, const struct iovec *iov, unsigned n)
{
	return b->ops->send(b, iov, n);
}
/* The receiver has room again (cb->can_rx would say yes): wake the
 * backend so it polls its input again. Any thread, never blocks. */
static inline void net_backend_rx_resume(struct net_backend *b)
{
	b->ops->rx_resume(b);
}
/* The receive offloads the guest accepted (a subset of NET_OFF_RX_*). */
static inline void net_backend_set_offloads(struct net_backend *b, uint32_t rx)
{
	if (b->ops->set_offloads)
		b->ops->set_offloads(b, rx);
}
/* Snapshots: see net_backend_ops. A backend without state saves nothing
 * and can load nothing. */
static inline bool net_backend_has_state(const struct net_backend *b)
{
	return b->ops->save && b->ops->load;
}
static inline int net_backend_save(struct net_backend *b, struct snap_writer *w,
				   char *err, size_t errlen)
{
	return b->ops->save(b, w, err, errlen);
}
static inline void net_backend_load(struct net_backend *b, struct snap_reader *r, bool apply)
{
	b->ops->load(b, r, apply);
}
/* Stop the backend's thread and free it. Nothing is called back after. */
static inline void net_backend_destroy(struct net_backend *b)
{
	if (b)
		b->ops->destroy(b);
}

/* ---- software offloads (offload.c), for backends that take plain frames ---- */

/* Split a frame with a GSO header into MSS-sized frames with complete
 * checksums, or complete the checksum of a NEEDS_CSUM frame, calling emit()
 * for each resulting plain Ethernet frame. `frame` (len bytes, Ethernet
 * onwards) is modified in place. Returns 0, or -1 when the header or the
 * packet is malformed or longer than NET_MAX_FRAME (nothing or only part
 * was emitted). */
typedef void net_emit_fn(void *ctx, const uint8_t *frame, size_t len);
int net_offload_segment(const struct net_vnet_hdr *h, uint8_t *frame, size_t len,
			uint8_t *scratch, size_t scratch_len, net_emit_fn *emit, void *ctx);

#endif

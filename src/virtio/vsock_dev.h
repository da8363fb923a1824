/*
 * virtio-vsock's parts as its four files share them (nothing else
 * includes this): the device (vsock.c: the queues, the I/O thread, the
 * virtio ops), its receive path (vsock_rx.c), the connection state
 * machine (vsock_conn.c: what each packet from the guest does to a
 * connection, credit, shutdown, reset) and the host backend (vsock_uds.c:
 * Firecracker's Unix sockets). vsock.c's opening comment says how the
 * whole works.
 */
#ifndef SKIFF_VIRTIO_VSOCK_DEV_H
#define SKIFF_VIRTIO_VSOCK_DEV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtq.h"
#include "virtio/vsock.h"
#include "virtio/vsock_uds.h"

#define Q_RX 0
#define Q_TX 1
#define Q_EVT 2

#define HOST_CID 2
#define TYPE_STREAM 1

/* Operations (5.10.6). */
#define OP_REQUEST        1
#define OP_RESPONSE       2
#define OP_RST            3
#define OP_SHUTDOWN       4
#define OP_RW             5
#define OP_CREDIT_UPDATE  6
#define OP_CREDIT_REQUEST 7
#define SHUT_F_RCV  1
#define SHUT_F_SEND 2

#define BUF_ALLOC (256u * 1024)      /* per connection, guest -> host */
#define MAX_PKT (64u * 1024)         /* largest payload taken or sent */
#define MAX_CONNS 1024
#define STRAY_RST_MAX 64
#define EV_REMOVED 0xffffffffu          /* vconn.ev: not in the epoll set */

struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct vsock_hdr) == 44, "virtio_vsock_hdr is 44 bytes");

enum conn_state {
	C_HOST_LINE,      /* accepted, waiting for the backend's request line */
	C_REQUESTED,      /* REQUEST sent to the guest, waiting for RESPONSE */
	C_ESTABLISHED,
};

/* Control packets a connection owes the guest. */
#define P_REQUEST  1u
#define P_RESPONSE 2u
#define P_CREDIT   4u
#define P_SHUTDOWN 8u
#define P_RST      16u

struct vconn {
	int fd;                  /* the host side's stream (from the backend) */
	enum conn_state state;
	uint64_t deadline;       /* C_HOST_LINE, C_REQUESTED: CLOCK_MONOTONIC ns */
	uint32_t local_port;     /* host side (CID 2) */
	uint32_t peer_port;      /* guest side */
	uint32_t pending;        /* P_* */
	uint32_t shut_flags;     /* for P_SHUTDOWN */
	uint32_t ev;             /* epoll events registered now */
	bool readable, writable, hup;   /* from the last epoll_wait */

	/* Credit (5.10.6.3). */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;         /* payload bytes sent to the guest */
	uint32_t rx_cnt;         /* payload bytes received from the guest */
	uint32_t fwd_cnt;        /* ... of which written to the host socket */
	uint32_t fwd_told;       /* fwd_cnt as last sent to the guest */

	/* Guest data the host socket has not taken yet (a ring). */
	uint8_t *buf;
	size_t buf_head, buf_len;

	bool guest_shut_send;    /* guest sends no more data */
	bool guest_shut_rcv;     /* guest takes no more data */
	bool host_eof;           /* the host socket returned EOF */
	bool host_shut_wr_done;

	struct vsock_uds_line line;   /* C_HOST_LINE: the request so far */
};

struct stray_rst {
	uint32_t src_port, dst_port;   /* as the reply carries them */
};

struct virtio_vsock {
	struct virtio_dev dev;         /* first: container_of is a cast */
	uint8_t config[8];             /* guest_cid */
	uint64_t guest_cid;
	struct vsock_uds host;         /* the backend */
	int epfd, evfd;
	pthread_t thread;
	bool thread_started;
	_Atomic bool stop;

	pthread_mutex_t lock;          /* everything below */
	struct vconn **conns;
	unsigned nconns;
	uint32_t next_port;
	struct stray_rst stray[STRAY_RST_MAX];
	unsigned nstray;
	uint8_t *bounce;               /* one packet's payload */
	struct virtq_req *rxreq;       /* a receive chain kept for later */
	bool rx_held;
	struct virtq_req *txreq;

	_Atomic bool reset_due;        /* a transport reset event is owed */

	_Atomic uint64_t tx_bytes, rx_bytes, resets_sent;
	_Atomic unsigned nconns_now;
};

/* The connection state machine (vsock_conn.c), v->lock held. */

/* A connection on the host stream fd (in the epoll set), or NULL. */
struct vconn *vconn_new(struct virtio_vsock *v, int fd);
/* Forget connection i (closes its stream); slot i then holds another. */
void vconn_free(struct virtio_vsock *v, unsigned i);
/* Close the host side now and owe the guest a RST. */
void vconn_reset(struct virtio_vsock *v, struct vconn *c);
/* What the guest may still take on c (5.10.6.3). */
uint32_t vconn_peer_credit(const struct vconn *c);
/* Put our credit into a header for the guest. */
void vconn_fill_credit(struct vconn *c, struct vsock_hdr *h);
/* One packet from the guest's transmit queue. */
void vconn_guest_packet(struct virtio_vsock *v, struct virtq_req *req);
/* Take new host clients from the backend. */
void vconn_accept(struct virtio_vsock *v);
/* After epoll: handshake deadlines, host request lines (refused when the
 * queues are not `live`), buffered writes, shutdowns, credit updates. */
void vconn_sweep(struct virtio_vsock *v, bool live);
/* The earliest handshake deadline (CLOCK_MONOTONIC ns), UINT64_MAX if none. */
uint64_t vconn_first_deadline(struct virtio_vsock *v);

/* The receive path (vsock_rx.c), queue locks and v->lock held: send the
 * guest what can be sent through receive queue vq. Returns whether receive
 * buffers are left. */
bool vsock_serve_rx(struct virtio_vsock *v, struct virtq *vq);

#endif

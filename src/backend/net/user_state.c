/*
 * The user network's state in a snapshot: libslirp's own saved state
 * (slirp_state_save / slirp_state_load), framed and checked for the
 * snapshot file (base/snapfile.h). The caller makes sure no other thread
 * is inside the Slirp instance meanwhile (user.c stops its thread).
 *
 * What libslirp (4.7, state version 4) carries: the DHCP lease table (which
 * MAC holds which of the 16 addresses from 10.0.2.15), the IP id counter,
 * and the TCP sockets of guest forwards served by a callback (QEMU's
 * guestfwd to a chardev). Connections that end in a host socket (outbound
 * connections, hostfwd) are not in it: their host side is a descriptor of
 * the process that saved, and dies with it. skiff sets up no guest
 * forwards, so a saved state never holds a socket, and one that does is
 * refused before libslirp parses it (its socket loader trusts the sizes it
 * reads; the lease table and the counter are plain fixed-size fields).
 *
 * Layout: u32 libslirp state version, u32 length, that many bytes of
 * libslirp's stream. A load accepts versions up to the running libslirp's
 * (it reads older ones itself) and only a stream it consumes exactly.
 */
#include "backend/net/user_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "base/snapfile.h"

/* libslirp's stream: a 0 byte (no more guest-forward sockets) and the
 * lease table; far less than this. */
#define USER_STATE_MAX 4096

struct out_buf {
	uint8_t data[USER_STATE_MAX];
	size_t len;
	bool overflow;
};

static ssize_t put(const void *buf, size_t len, void *opaque)
{
	struct out_buf *o = opaque;
	if (len > sizeof(o->data) - o->len) {
		o->overflow = true;
		return -1;
	}
	memcpy(o->data + o->len, buf, len);
	o->len += len;
	return (ssize_t)len;
}

int user_state_save(Slirp *s, struct snap_writer *w, char *err, size_t errlen)
{
	struct out_buf *o = calloc(1, sizeof(*o));
	if (!o) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	slirp_state_save(s, put, o);
	if (o->overflow || !o->len || o->data[0] != 0) {
		snprintf(err, errlen, "libslirp's state %s", o->overflow ? "is unexpectedly large"
			 : "holds guest-forward connections skiff did not set up");
		free(o);
		return -1;
	}
	snap_put_u32(w, (uint32_t)slirp_state_version());
	snap_put_u32(w, (uint32_t)o->len);
	snap_put_bytes(w, o->data, o->len);
	free(o);
	return 0;
}

struct in_buf {
	const uint8_t *data;
	size_t len, off;
	bool short_read;
};

static ssize_t get(void *buf, size_t len, void *opaque)
{
	struct in_buf *in = opaque;
	if (len > in->len - in->off) {
		/* libslirp does not check every read: give it zeros and
		 * remember that the stream ended early. */
		memset(buf, 0, len);
		in->short_read = true;
		in->off = in->len;
		return -1;
	}
	memcpy(buf, in->data + in->off, len);
	in->off += len;
	return (ssize_t)len;
}

void user_state_load(Slirp *s, struct snap_reader *r)
{
	uint32_t version = snap_get_u32(r);
	uint32_t len = snap_get_u32(r);
	if (r->overrun || r->invalid)
		return;
	if (version == 0 || version > (uint32_t)slirp_state_version()) {
		snap_reader_fail(r, "user network state version %u (this libslirp reads 1 to %d)",
				 version, slirp_state_version());
		return;
	}
	if (len == 0 || len > USER_STATE_MAX || len > snap_reader_left(r)) {
		snap_reader_fail(r, "user network state of %u bytes (1 to %u, %llu left)", len,
				 USER_STATE_MAX, (unsigned long long)snap_reader_left(r));
		return;
	}
	uint8_t *data = malloc(len);
	if (!data) {
		snap_reader_fail(r, "out of memory");
		return;
	}
	snap_get_bytes(r, data, len);
	if (data[0] != 0) {
		snap_reader_fail(r, "the user network state holds guest-forward connections, "
				 "which skiff does not set up");
		free(data);
		return;
	}
	if (!s) {
		free(data);
		return;
	}
	struct in_buf in = { .data = data, .len = len };
	int rc = slirp_state_load(s, (int)version, get, &in);
	if (rc < 0 || in.short_read)
		snap_reader_fail(r, "libslirp refused the user network state (%s)",
				 in.short_read ? "it ends early" : strerror(-rc));
	else if (in.off != in.len)
		snap_reader_fail(r, "the user network state has %zu bytes libslirp did not read",
				 in.len - in.off);
	free(data);
}

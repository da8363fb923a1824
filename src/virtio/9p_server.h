/*
 * A 9P2000.L file server over one shared host directory (backend/fs):
 * the fid table and one handler per message type. Transport-independent:
 * virtio-9p (9p.c) hands it each request as bytes and sends back the
 * response bytes; the unit tests and the fuzzer call it directly.
 *
 * Messages served: version, attach (auth is refused), walk, lopen, lcreate,
 * read, write, readdir, getattr, setattr, mkdir, mknod (regular files,
 * FIFOs, sockets; no devices), symlink, link, readlink, rename, renameat,
 * unlink, unlinkat, remove, statfs, fsync, lock/getlock (locks are the
 * guest kernel's business: Tlock answers SUCCESS, Tgetlock "unlocked"),
 * xattrwalk (an empty attribute list; any named attribute is ENODATA),
 * xattrcreate (EOPNOTSUPP), flush (requests are answered in order, so
 * nothing is ever pending) and clunk. Failures are Rlerror with a Linux
 * errno (the guest is Linux, so the numbers carry over).
 *
 * Limits, whatever the client asks: msize at most P9_SERVER_MAX_MSIZE,
 * P9_SERVER_MAX_FIDS fids at a time, reads, writes and directory listings
 * bounded by msize and by the room the transport gives for the answer.
 * Memory use is fixed when the server is created.
 *
 * Not thread-safe: one thread (the device's I/O thread) calls in.
 */
#ifndef SKIFF_VIRTIO_9P_SERVER_H
#define SKIFF_VIRTIO_9P_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "backend/fs/fs.h"

#define P9_SERVER_MAX_MSIZE (512u * 1024)
#define P9_SERVER_MIN_MSIZE 4096u
#define P9_SERVER_MAX_FIDS 4096u

struct p9_server;

/* A server for `share`, which it takes over (closed by destroy, also when
 * creation fails). NULL with a message in err. */
struct p9_server *p9_server_create(struct fs_share *share, char *err, size_t errlen);
void p9_server_destroy(struct p9_server *srv);
/* Forget the session: every fid is clunked, msize back to the maximum
 * (a device reset). */
void p9_server_reset(struct p9_server *srv);

/* Serve one request req[0..len) (len may be longer than the message; the
 * size field decides) and write the response into out[0..cap). Returns
 * the response length, or 0 when not even an Rlerror can be sent (fewer
 * than 7 request bytes, or cap below 11). */
size_t p9_server_handle(struct p9_server *srv, const uint8_t *req, size_t len,
			uint8_t *out, size_t cap);

/* Snapshots: the session (msize) and every fid by the path of its file
 * beneath the share and how it is open. Saving fails (-1, message) when a
 * fid's file has no such path any more (deleted while open, moved out of
 * the share). Loading reopens each file; a path that is gone is reported
 * through the reader and leaves no fid behind. */
struct snap_writer;
struct snap_reader;
int p9_server_save(struct p9_server *srv, struct snap_writer *w, char *err, size_t errlen);
void p9_server_load(struct p9_server *srv, struct snap_reader *r);

/* The negotiated msize (P9_SERVER_MAX_MSIZE before Tversion). */
uint32_t p9_server_msize(const struct p9_server *srv);
/* Fids in use (tests). */
unsigned p9_server_nfids(const struct p9_server *srv);

#endif

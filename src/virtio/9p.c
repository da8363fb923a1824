/*
 * virtio-9p device model; see 9p.h. The request loop copies the readable
 * part of each buffer (at most msize bytes, as the size field says) into
 * a device buffer, lets the 9P server answer into another, and copies the
 * answer into the writable part. The server never sees guest memory, and a
 * request the server cannot answer at all (fewer than 7 bytes, or fewer
 * than 11 writable bytes) is returned with nothing written.
 */
#include "virtio/9p.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/fs/fs.h"
#include "base/snapfile.h"
#include "virtio/9p_proto.h"
#include "virtio/9p_server.h"

#define P9_QUEUE_SIZE 128

struct virtio_9p {
	struct virtio_dev dev;   /* first: container_of is a cast */
	struct p9_server *srv;
	char tag[VIRTIO_9P_MAX_TAG + 1];
	uint8_t config[2 + VIRTIO_9P_MAX_TAG];
	size_t config_len;
	uint8_t *in, *out;       /* P9_SERVER_MAX_MSIZE each, I/O thread only */
};

static uint32_t p9_request(struct virtio_dev *dev, struct virtq *vq, struct virtq_req *req)
{
	(void)vq;
	struct virtio_9p *p = (struct virtio_9p *)dev;
	uint8_t hdr[P9_HDR_SIZE];
	uint32_t size;
	uint8_t type;
	uint16_t tag;
	size_t got = virtq_req_read(req, 0, hdr, sizeof(hdr));
	if (p9_peek_header(hdr, got, &size, &type, &tag))
		return 0;
	/* Copy only what the size field claims, never more than msize; the
	 * server checks the size against what arrived. */
	size_t want = size < P9_HDR_SIZE ? P9_HDR_SIZE : size;
	if (want > P9_SERVER_MAX_MSIZE)
		want = P9_SERVER_MAX_MSIZE;
	got = virtq_req_read(req, 0, p->in, want);
	size_t cap = req->in_len < P9_SERVER_MAX_MSIZE ? (size_t)req->in_len : P9_SERVER_MAX_MSIZE;
	size_t n = p9_server_handle(p->srv, p->in, got, p->out, cap);
	if (n == 0)
		return 0;
	return (uint32_t)virtq_req_write(req, 0, p->out, n);
}

static void p9_process(struct virtio_dev *dev, struct virtq *vq)
{
	virtio_dev_serve(dev, vq, p9_request);
}

static bool p9_config_read(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t *value)
{
	struct virtio_9p *p = (struct virtio_9p *)dev;
	*value = virtio_config_get(p->config, p->config_len, off, size);
	return true;
}

static bool p9_config_write(struct virtio_dev *dev, uint32_t off, unsigned size, uint64_t value)
{
	return true;   /* the tag is read-only; writes are ignored */
}

static void p9_reset(struct virtio_dev *dev)
{
	/* A new driver starts a new session: the old fids are gone. */
	p9_server_reset(((struct virtio_9p *)dev)->srv);
}

/* Snapshots: the 9P session, every fid by its path (9p_server.c). A guest
 * holding a deleted file open cannot be saved; the message names the
 * share. */
static int p9_save(struct virtio_dev *dev, struct snap_writer *w, uint16_t *unpopped,
		   char *err, size_t errlen)
{
	struct virtio_9p *p = (struct virtio_9p *)dev;
	char why[320];
	snap_put_str(w, p->tag);
	if (p9_server_save(p->srv, w, why, sizeof(why))) {
		snprintf(err, errlen, "share '%s': %s", p->tag, why);
		return -1;
	}
	return 0;
}

static void p9_load(struct virtio_dev *dev, struct snap_reader *r)
{
	struct virtio_9p *p = (struct virtio_9p *)dev;
	char tag[VIRTIO_9P_MAX_TAG + 1];
	if (!snap_get_str(r, tag, sizeof(tag)))
		return;
	if (strcmp(tag, p->tag)) {
		snap_reader_fail(r, "the share was '%s', here it is '%s'", tag, p->tag);
		return;
	}
	p9_server_load(p->srv, r);
	if (r->invalid) {
		char why[sizeof(r->why)];
		snprintf(why, sizeof(why), "%s", r->why);
		r->invalid = false;
		snap_reader_fail(r, "share '%s': %s", p->tag, why);
	}
}

static const struct virtio_dev_ops p9_ops = {
	.name = "9p",
	.device_id = VIRTIO_ID_9P,
	.config_read = p9_config_read,
	.config_write = p9_config_write,
	.queue_process = p9_process,
	.reset = p9_reset,
	.save_version = 1,
	.save = p9_save,
	.load = p9_load,
};

struct virtio_9p *virtio_9p_create(struct gram *ram, const char *tag, const char *path,
				   bool read_only, bool nodev, char *err, size_t errlen)
{
	size_t tlen = tag ? strlen(tag) : 0;
	if (tlen == 0 || tlen > VIRTIO_9P_MAX_TAG || strchr(tag, '/')) {
		snprintf(err, errlen, "mount tag '%s' must be 1 to %d characters without '/'",
			 tag ? tag : "", VIRTIO_9P_MAX_TAG);
		return NULL;
	}
	char ferr[256];
	struct fs_share *share = fs_share_open(path, read_only, ferr, sizeof(ferr));
	if (!share) {
		snprintf(err, errlen, "share '%s': %s", tag, ferr);
		return NULL;
	}
	fs_share_set_nodev(share, nodev);
	struct virtio_9p *p = calloc(1, sizeof(*p));
	if (!p) {
		fs_share_close(share);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->srv = p9_server_create(share, ferr, sizeof(ferr));   /* owns share now */
	p->in = malloc(P9_SERVER_MAX_MSIZE);
	p->out = malloc(P9_SERVER_MAX_MSIZE);
	if (!p->srv || !p->in || !p->out) {
		snprintf(err, errlen, "share '%s': %s", tag, p->srv ? "out of memory" : ferr);
		goto fail;
	}
	memcpy(p->tag, tag, tlen + 1);
	p->config[0] = (uint8_t)tlen;
	p->config[1] = (uint8_t)(tlen >> 8);
	memcpy(p->config + 2, tag, tlen);
	p->config_len = 2 + tlen;

	uint16_t qsize = P9_QUEUE_SIZE;
	if (virtio_dev_init(&p->dev, &p9_ops, ram, 1ull << VIRTIO_9P_MOUNT_TAG, 1, &qsize,
			    err, errlen))
		goto fail;
	if (virtio_dev_start(&p->dev, err, errlen)) {
		virtio_dev_fini(&p->dev);
		goto fail;
	}
	return p;
fail:
	p9_server_destroy(p->srv);
	free(p->in);
	free(p->out);
	free(p);
	return NULL;
}

void virtio_9p_destroy(struct virtio_9p *p)
{
	if (!p)
		return;
	virtio_dev_fini(&p->dev);
	p9_server_destroy(p->srv);
	free(p->in);
	free(p->out);
	free(p);
}

struct virtio_dev *virtio_9p_dev(struct virtio_9p *p)
{
	return &p->dev;
}

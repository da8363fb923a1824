/*
 * libFuzzer target for what the guest sends the metadata service: the
 * input is a sequence of Ethernet frames (each a 2-byte big-endian length,
 * then the frame) given to the NIC side (src/virtio/net_mmds.c), which
 * answers ARP, runs its TCP endpoint and passes whole requests to the HTTP
 * side (src/vmm/mmds.c, V2 with a data store). Answers are drained after
 * each frame. Whatever the frames, no crash, leak or hang; every answer
 * fits a frame.
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/net_mmds.h"
#include "vmm/mmds.h"

static int answer(void *ctx, const uint8_t *req, size_t len, bool eof, uint8_t **resp, size_t *n)
{
	return mmds_http(ctx, req, len, eof, resp, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mmds *svc = mmds_new();
	json_t *doc = json_loads("{\"latest\": {\"meta-data\": {\"id\": \"i-1\", \"n\": 3}}}", 0, NULL);
	char err[128];
	mmds_put(svc, doc, err, sizeof(err));
	json_decref(doc);
	mmds_configure(svc, size && (data[0] & 1) ? 2 : 1, size && (data[0] & 2));
	struct net_mmds_config c = { .ipv4 = 0xa9fea9feu, .http = answer, .ctx = svc };
	struct net_mmds *m = net_mmds_new(&c);
	static uint8_t out[70000];
	size_t off = size ? 1 : 0;
	while (off + 2 <= size) {
		size_t n = (size_t)data[off] << 8 | data[off + 1];
		off += 2;
		if (n > size - off)
			n = size - off;
		net_mmds_frame(m, data + off, n);
		off += n;
		while (net_mmds_take(m, out, sizeof(out)))
			;
	}
	net_mmds_free(m);
	mmds_free(svc);
	return 0;
}

/* What a running VM's devices and memory report to the metrics; see
 * vm_metrics.h. */
#include "vmm/vm_metrics.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "vmm/devices.h"

static json_t *memory_json(struct vm *vm)
{
	json_t *m = json_pack("{s:I}", "guest_resident_bytes", (json_int_t)gram_resident_bytes(&vm->ram));
	struct virtio_balloon *b = vm->devices ? vm->devices->balloon : NULL;
	if (m && b) {
		struct virtio_balloon_info info;
		virtio_balloon_get_info(b, &info);
		json_object_set_new(m, "balloon_target_bytes", json_integer((json_int_t)info.target_mib << 20));
		json_object_set_new(m, "balloon_actual_bytes", json_integer((json_int_t)info.actual_mib << 20));
		json_object_set_new(m, "balloon_inflated_bytes_total",
				    json_integer((json_int_t)(info.inflated_pages << 12)));
		json_object_set_new(m, "free_page_reported_bytes_total",
				    json_integer((json_int_t)info.reported_bytes));
	}
	return m;
}

/* A device's counters in the metrics: each one's name there and where its
 * statistics structure holds it (every one a uint64_t). */
struct counter {
	const char *name;
	size_t at;
};

#define BLK(name, field) { name, offsetof(struct virtio_blk_stats, field) }
static const struct counter blk_counters[] = {
	BLK("read_bytes", read_bytes),
	BLK("write_bytes", write_bytes),
	BLK("read_count", read_count),
	BLK("write_count", write_count),
	BLK("flush_count", flush_count),
	BLK("rate_limiter_throttled_events", throttled),
	{ NULL, 0 }
};

#define NET(name, field) { name, offsetof(struct virtio_net_stats, field) }
static const struct counter net_counters[] = {
	NET("rx_bytes_count", rx_bytes),
	NET("rx_packets_count", rx_frames),
	NET("rx_dropped_count", rx_dropped),
	NET("rx_rate_limiter_throttled", rx_throttled),
	NET("tx_bytes_count", tx_bytes),
	NET("tx_packets_count", tx_frames),
	NET("tx_dropped_count", tx_dropped),
	NET("tx_rate_limiter_throttled", tx_throttled),
	{ NULL, 0 }
};

/* {"id": id, and each counter of `stats`}; NULL when out of memory. */
static json_t *counters_json(const char *id, const void *stats, const struct counter *c)
{
	json_t *o = json_pack("{s:s}", "id", id);
	for (; o && c->name; c++) {
		uint64_t v;
		memcpy(&v, (const char *)stats + c->at, sizeof(v));
		if (json_object_set_new(o, c->name, json_integer((json_int_t)v))) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static json_t *drives_json(struct vm_devices *d)
{
	json_t *a = json_array();
	const char *id;
	struct virtio_blk *blk;
	for (size_t i = 0; a && (blk = vm_devices_drive(d, i, &id)); i++) {
		struct virtio_blk_stats s;
		virtio_blk_get_stats(blk, &s);
		json_array_append_new(a, counters_json(id, &s, blk_counters));
	}
	return a;
}

static json_t *nets_json(struct vm_devices *d)
{
	json_t *a = json_array();
	const char *id;
	struct virtio_net *n;
	for (size_t i = 0; a && (n = vm_devices_net(d, i, &id)); i++) {
		struct virtio_net_stats s;
		virtio_net_get_stats(n, &s);
		json_array_append_new(a, counters_json(id, &s, net_counters));
	}
	return a;
}

void vm_metrics_add(struct vm *vm, json_t *m)
{
	json_object_set_new(m, "memory", memory_json(vm));
	if (vm->devices) {
		json_object_set_new(m, "block", drives_json(vm->devices));
		json_object_set_new(m, "net", nets_json(vm->devices));
	}
}

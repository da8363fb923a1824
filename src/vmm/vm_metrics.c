/* What a running VM's devices and memory report to the metrics; see
 * vm_metrics.h. */
#include "vmm/vm_metrics.h"

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

static json_t *drives_json(struct vm_devices *d)
{
	json_t *a = json_array();
	const char *id;
	struct virtio_blk *blk;
	for (size_t i = 0; a && (blk = vm_devices_drive(d, i, &id)); i++) {
		struct virtio_blk_stats s;
		virtio_blk_get_stats(blk, &s);
		json_array_append_new(a, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "id", id,
						   "read_bytes", (json_int_t)s.read_bytes,
						   "write_bytes", (json_int_t)s.write_bytes,
						   "read_count", (json_int_t)s.read_count,
						   "write_count", (json_int_t)s.write_count,
						   "flush_count", (json_int_t)s.flush_count,
						   "rate_limiter_throttled_events", (json_int_t)s.throttled));
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
		json_array_append_new(a, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "id", id,
						   "rx_bytes_count", (json_int_t)s.rx_bytes,
						   "rx_packets_count", (json_int_t)s.rx_frames,
						   "rx_dropped_count", (json_int_t)s.rx_dropped,
						   "rx_rate_limiter_throttled", (json_int_t)s.rx_throttled,
						   "tx_bytes_count", (json_int_t)s.tx_bytes,
						   "tx_packets_count", (json_int_t)s.tx_frames,
						   "tx_dropped_count", (json_int_t)s.tx_dropped,
						   "tx_rate_limiter_throttled", (json_int_t)s.tx_throttled));
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

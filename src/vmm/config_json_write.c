/*
 * struct vm_config to JSON: GET /vm/config, the API's section answers, and
 * the document `skiff create` sends and skiffd stores; the one writer, so
 * what config_json.c reads back is what was written. A section that is
 * not set is left out (Firecracker's FullVmConfiguration has objects
 * there, never null).
 */
#include "vmm/config_json.h"

#include <arpa/inet.h>

static json_t *bucket_json(const struct vm_token_bucket *b)
{
	return json_pack("{s:I,s:I,s:I}", "size", (json_int_t)b->size,
			 "one_time_burst", (json_int_t)b->one_time_burst,
			 "refill_time", (json_int_t)b->refill_time_ms);
}

static bool bucket_set(const struct vm_token_bucket *b)
{
	return b->size || b->one_time_burst || b->refill_time_ms;
}

/* NULL (left out) when neither bucket is set. */
static json_t *limiter_json(const struct vm_rate_limiter *l)
{
	if (!bucket_set(&l->bandwidth) && !bucket_set(&l->ops))
		return NULL;
	json_t *o = json_object();
	if (bucket_set(&l->bandwidth))
		json_object_set_new(o, "bandwidth", bucket_json(&l->bandwidth));
	if (bucket_set(&l->ops))
		json_object_set_new(o, "ops", bucket_json(&l->ops));
	return o;
}

static void set_opt(json_t *o, const char *k, json_t *v)
{
	if (v)
		json_object_set_new(o, k, v);
}

static void set_str_opt(json_t *o, const char *k, const char *v)
{
	if (v)
		json_object_set_new(o, k, json_string(v));
}

json_t *vm_config_entropy_json(const struct vm_config *s)
{
	if (!s->entropy)
		return NULL;
	json_t *o = json_object();
	if (o)
		set_opt(o, "rate_limiter", limiter_json(&s->entropy_limiter));
	return o;
}

static json_t *vm_config_boot_source_json(const struct vm_config *s)
{
	json_t *bs = json_object();
	set_str_opt(bs, "kernel_image_path", s->kernel);
	set_str_opt(bs, "initrd_path", s->initrd);
	set_str_opt(bs, "boot_args", s->append);
	return bs;
}

json_t *vm_config_machine_json(const struct vm_config *s)
{
	json_t *o = json_pack("{s:i,s:I,s:b,s:b}", "vcpu_count", (int)s->ncpus,
			      "mem_size_mib", (json_int_t)(s->mem_bytes >> 20),
			      "smt", 0, "track_dirty_pages", (int)s->track_dirty_pages);
	if (o && s->cpu_quota > 0)
		json_object_set_new(o, "cpu_quota", json_real(s->cpu_quota));
	return o;
}

json_t *vm_config_balloon_json(const struct vm_config *s)
{
	if (!s->balloon)
		return NULL;
	return json_pack("{s:I,s:b,s:I,s:b,s:b}", "amount_mib", (json_int_t)s->balloon_target_mib,
			 "deflate_on_oom", (int)s->balloon_deflate_on_oom,
			 "stats_polling_interval_s", (json_int_t)s->balloon_stats_interval_s,
			 "free_page_hinting", (int)s->balloon_free_page_hinting,
			 "free_page_reporting", (int)!s->balloon_no_free_page_reporting);
}

static json_t *vmm_drive_json(const void *entry)
{
	const struct vm_drive *d = entry;
	json_t *o = json_pack("{s:s,s:s,s:b,s:b}", "drive_id", d->id, "path_on_host", d->path,
			      "is_root_device", (int)d->root, "is_read_only", (int)d->read_only);
	if (!o)
		return NULL;
	set_opt(o, "rate_limiter", limiter_json(&d->limiter));
	if (d->format != VM_DISK_UNSET)
		json_object_set_new(o, "format", json_string(d->format == VM_DISK_QCOW2 ? "qcow2" : "raw"));
	set_str_opt(o, "serial", d->serial);
	if (d->backing || d->nbacking_dirs)
		json_object_set_new(o, "backing", json_boolean(d->backing));
	if (d->nbacking_dirs) {
		json_t *a = json_array();
		for (size_t k = 0; k < d->nbacking_dirs; k++)
			json_array_append_new(a, json_string(d->backing_dirs[k]));
		json_object_set_new(o, "backing_dirs", a);
	}
	return o;
}

static json_t *vmm_net_json(const void *entry)
{
	const struct vm_net *n = entry;
	json_t *o = json_pack("{s:s,s:s}", "iface_id", n->id,
			      "backend", n->backend == VM_NET_TAP ? "tap" : "user");
	if (!o)
		return NULL;
	set_str_opt(o, "host_dev_name", n->tap_name);
	if (n->mac_set) {
		char m[18];
		vm_mac_format(m, n->mac);
		json_object_set_new(o, "guest_mac", json_string(m));
	}
	set_opt(o, "rx_rate_limiter", limiter_json(&n->rx));
	set_opt(o, "tx_rate_limiter", limiter_json(&n->tx));
	if (n->nfwd) {
		json_t *fw = json_array();
		for (size_t k = 0; k < n->nfwd; k++) {
			const struct vm_port_forward *f = &n->fwd[k];
			json_t *fo = json_pack("{s:s,s:i,s:i}", "protocol", f->udp ? "udp" : "tcp",
					       "host_port", (int)f->host_port, "guest_port", (int)f->guest_port);
			set_str_opt(fo, "host_address", f->host_addr);
			json_array_append_new(fw, fo);
		}
		json_object_set_new(o, "port_forwards", fw);
	}
	if (n->restricted)
		json_object_set_new(o, "restrict", json_true());
	if (n->host_loopback_set || n->no_host_loopback)
		json_object_set_new(o, "host_loopback", json_boolean(!n->no_host_loopback));
	return o;
}

static json_t *vmm_share_json(const void *entry)
{
	const struct vm_share *sh = entry;
	json_t *o = json_pack("{s:s,s:s,s:b}", "tag", sh->tag, "path_on_host", sh->path,
			      "is_read_only", (int)sh->read_only);
	if (o && sh->nodev)
		json_object_set_new(o, "nodev", json_true());
	return o;
}

json_t *vm_config_mmds_json(const struct vm_config *s)
{
	if (!s->mmds)
		return NULL;
	char a[INET_ADDRSTRLEN];
	struct in_addr ia = { .s_addr = htonl(s->mmds_ipv4) };
	inet_ntop(AF_INET, &ia, a, sizeof(a));
	json_t *ifs = json_array();
	for (size_t i = 0; i < s->nnets; i++)
		if (s->nets[i].mmds)
			json_array_append_new(ifs, json_string(s->nets[i].id));
	return json_pack("{s:s,s:o,s:s,s:b}", "version", s->mmds_version == 2 ? "V2" : "V1",
			 "network_interfaces", ifs, "ipv4_address", a, "imds_compat",
			 (int)s->mmds_imds_compat);
}

static json_t *console_port_json(const void *entry)
{
	const struct vm_console_port *p = entry;
	return json_pack("{s:s,s:s}", "name", p->name, "uds_path", p->uds_path);
}

/* An array section: `one` writes each of the n entries of `size` bytes
 * (an empty array when there are none: the section is always written). */
static void set_list(json_t *doc, const char *name, const void *entries, size_t n, size_t size,
		     json_t *(*one)(const void *entry))
{
	json_t *a = json_array();
	const char *p = entries;
	for (size_t i = 0; i < n; i++, p += size)
		json_array_append_new(a, one(p));
	json_object_set_new(doc, name, a);
}

json_t *vm_config_to_json(const struct vm_config *s)
{
	const struct vm_config *c = s;
	json_t *doc = json_object();
	if (!doc)
		return NULL;
	if (c->kernel || c->initrd || c->append)
		json_object_set_new(doc, "boot-source", vm_config_boot_source_json(s));
	json_object_set_new(doc, "machine-config", vm_config_machine_json(s));

	set_list(doc, "drives", c->drives, c->ndrives, sizeof(c->drives[0]), vmm_drive_json);
	set_list(doc, "network-interfaces", c->nets, c->nnets, sizeof(c->nets[0]), vmm_net_json);

	if (c->vsock)
		json_object_set_new(doc, "vsock", json_pack("{s:I,s:s}", "guest_cid", (json_int_t)c->vsock_cid,
							    "uds_path", c->vsock_uds));
	json_t *mm = vm_config_mmds_json(s);
	if (mm)
		json_object_set_new(doc, "mmds-config", mm);
	json_t *bl = vm_config_balloon_json(s);
	if (bl)
		json_object_set_new(doc, "balloon", bl);
	json_t *en = vm_config_entropy_json(s);
	if (en)
		json_object_set_new(doc, "entropy", en);

	if (s->logger.set) {
		json_t *lg = json_pack("{s:s,s:b,s:b}", "level", vmm_log_level_name(s->logger.level),
				       "show_level", (int)s->logger.show_level,
				       "show_log_origin", (int)s->logger.show_log_origin);
		set_str_opt(lg, "log_path", s->logger.log_path);
		json_object_set_new(doc, "logger", lg);
	}
	if (s->metrics.set)
		json_object_set_new(doc, "metrics", json_pack("{s:s}", "metrics_path", s->metrics.path));

	set_list(doc, "shares", c->shares, c->nshares, sizeof(c->shares[0]), vmm_share_json);
	set_list(doc, "console-ports", c->ports, c->nports, sizeof(c->ports[0]), console_port_json);
	return doc;
}

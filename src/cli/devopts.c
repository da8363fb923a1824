/* `skiff run` device options; see devopts.h. Every string an option puts
 * into the configuration is its own allocation (vm_config_free frees
 * them); the parsers split a scratch copy of the argument. */
#include "cli/devopts.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/size.h"
#include "vmm/config_json.h"

/* Split "a,b=c,d" in place; calls fn for each item after the first. */
static char *first_item(char *s, char **rest)
{
	char *comma = strchr(s, ',');
	if (comma) {
		*comma = '\0';
		*rest = comma + 1;
	} else {
		*rest = NULL;
	}
	return s;
}

/* The first of PREFIX0, PREFIX1, ... (from `from`) that taken() says no
 * to: an option's device gets an id of its own beside a config file's. */
static void free_id(char out[16], const char *prefix, size_t from,
		    bool (*taken)(const struct vm_config *, const char *), const struct vm_config *c)
{
	for (size_t n = from;; n++) {
		snprintf(out, 16, "%s%zu", prefix, n);
		if (!taken(c, out))
			return;
	}
}

static bool drive_id_taken(const struct vm_config *c, const char *id)
{
	for (size_t i = 0; i < c->ndrives; i++)
		if (c->drives[i].id && !strcmp(c->drives[i].id, id))
			return true;
	return false;
}

static bool net_id_taken(const struct vm_config *c, const char *id)
{
	for (size_t i = 0; i < c->nnets; i++)
		if (c->nets[i].id && !strcmp(c->nets[i].id, id))
			return true;
	return false;
}

/* Parses into drive slot c->ndrives with strings pointing into `copy`. */
static const char *parse_disk(struct vm_config *c, char *copy, const char *arg, char *err,
			      size_t errlen)
{
	char *rest;
	struct vm_drive *d = &c->drives[c->ndrives];
	memset(d, 0, sizeof(*d));
	d->path = first_item(copy, &rest);
	if (!*d->path) {
		snprintf(err, errlen, "--disk %s: no image path", arg);
		return err;
	}
	while (rest) {
		char *item = first_item(rest, &rest);
		if (!strcmp(item, "ro")) {
			d->read_only = true;
		} else if (!strcmp(item, "root")) {
			d->root = true;
		} else if (!strncmp(item, "format=", 7)) {
			if (!strcmp(item + 7, "raw"))
				d->format = VM_DISK_RAW;
			else if (!strcmp(item + 7, "qcow2"))
				d->format = VM_DISK_QCOW2;
			else {
				snprintf(err, errlen, "--disk %s: format must be raw or qcow2", arg);
				return err;
			}
		} else if (!strncmp(item, "bw=", 3) || !strncmp(item, "iops=", 5)) {
			bool bw = item[0] == 'b';
			const char *num = item + (bw ? 3 : 5);
			uint64_t v = 0;
			/* bw is a size (K/M/G/T suffixes); iops a plain count. */
			bool ok = bw ? !size_parse(num, 1, &v) :
				       strspn(num, "0123456789") == strlen(num) && !size_parse(num, 1, &v) &&
				       v <= (1ull << 40);
			if (!ok || v == 0) {
				snprintf(err, errlen, "--disk %s: %s must be a positive number%s", arg,
					 bw ? "bw" : "iops", bw ? " of bytes per second (K/M/G suffix allowed)" : "");
				return err;
			}
			struct vm_token_bucket *tb = bw ? &d->limiter.bandwidth : &d->limiter.ops;
			tb->size = v;
			tb->refill_time_ms = 1000;
		} else if (!strcmp(item, "backing=on") || !strcmp(item, "backing=off")) {
			d->backing = !strcmp(item + 8, "on");
		} else if (!strncmp(item, "backing=", 8)) {
			char berr[320];
			if (vm_drive_add_backing_dir(d, item + 8, berr, sizeof(berr))) {
				snprintf(err, errlen, "--disk %s: %s", arg, berr);
				return err;
			}
		} else if (!strncmp(item, "serial=", 7)) {
			if (strlen(item + 7) > 20) {
				snprintf(err, errlen, "--disk %s: serial is at most 20 characters", arg);
				return err;
			}
			d->serial = item + 7;
		} else {
			snprintf(err, errlen, "--disk %s: unknown setting '%s' (ro, root, format=, backing=, serial=, bw=, iops=)",
				 arg, item);
			return err;
		}
	}
	return NULL;
}

const char *devopt_disk(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	if (c->ndrives >= VM_MAX_DRIVES) {
		snprintf(err, errlen, "--disk: at most %d disks", VM_MAX_DRIVES);
		return err;
	}
	char *copy = strdup(arg);
	const char *e = copy ? parse_disk(c, copy, arg, err, errlen) : "";
	struct vm_drive *d = &c->drives[c->ndrives];
	char ferr[512];
	if (!e && vm_drive_settle_format(d, ferr, sizeof(ferr))) {
		snprintf(err, errlen, "--disk %s: %s", arg, ferr);
		e = err;
	}
	if (e) {
		/* Only the backing directories are allocations yet. */
		for (size_t i = 0; i < d->nbacking_dirs; i++)
			free(d->backing_dirs[i]);
		memset(d, 0, sizeof(*d));
	} else {
		char id[16];
		free_id(id, "disk", c->ndrives, drive_id_taken, c);
		bool has_serial = d->serial != NULL;
		d->path = strdup(d->path);
		d->serial = has_serial ? strdup(d->serial) : NULL;
		d->id = strdup(id);
		c->ndrives++;
		if (!d->path || !d->id || (has_serial && !d->serial)) {
			vm_drive_free(d);
			c->ndrives--;
			e = "";
		}
	}
	free(copy);
	if (e && !*e) {
		snprintf(err, errlen, "--disk: out of memory");
		e = err;
	}
	return e;
}

const char *devopt_console(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	if (!strcmp(arg, "virtio"))
		c->virtio_console = true;
	else if (!strcmp(arg, "uart"))
		c->virtio_console = false;
	else {
		snprintf(err, errlen, "--console %s: must be uart or virtio", arg);
		return err;
	}
	return NULL;
}

/* ---- --net, --vsock, --balloon ---- */

static bool parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 10)
		return false;
	unsigned long long v = strtoull(s, NULL, 10);
	if (v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

static int hexdigit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* xx:xx:xx:xx:xx:xx */
static bool parse_mac(const char *s, uint8_t mac[6])
{
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 6; i++) {
		int hi = hexdigit(s[3 * i]), lo = hexdigit(s[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return false;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* hostfwd=PROTO:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (QEMU's form;
 * the guest address must be empty: it is the DHCP address 10.0.2.15). */
static const char *parse_hostfwd(struct vm_net *n, const char *arg, const char *spec,
				 char *err, size_t errlen)
{
	if (n->nfwd >= VM_MAX_PORT_FORWARDS) {
		snprintf(err, errlen, "--net %s: at most %d hostfwd", arg, VM_MAX_PORT_FORWARDS);
		return err;
	}
	struct vm_port_forward *f = &n->fwd[n->nfwd];
	memset(f, 0, sizeof(*f));
	const char *p = spec;
	if (!strncmp(p, "tcp:", 4)) {
		p += 4;
	} else if (!strncmp(p, "udp:", 4)) {
		f->udp = true;
		p += 4;
	} else {
		snprintf(err, errlen, "--net %s: hostfwd=%s: starts with tcp: or udp:", arg, spec);
		return err;
	}
	const char *colon = strchr(p, ':'), *dash = strchr(p, '-');
	if (!colon || !dash || colon > dash) {
		snprintf(err, errlen, "--net %s: hostfwd=%s: the form is %s:[HOSTADDR]:HOSTPORT-:GUESTPORT",
			 arg, spec, f->udp ? "udp" : "tcp");
		return err;
	}
	char addr[64], hport[16], gaddr[64], gport[16];
	size_t alen = (size_t)(colon - p), hlen = (size_t)(dash - colon - 1);
	const char *g = dash + 1, *gcolon = strchr(g, ':');
	if (alen >= sizeof(addr) || hlen >= sizeof(hport) || !gcolon ||
	    (size_t)(gcolon - g) >= sizeof(gaddr) || strlen(gcolon + 1) >= sizeof(gport)) {
		snprintf(err, errlen, "--net %s: hostfwd=%s: the form is %s:[HOSTADDR]:HOSTPORT-:GUESTPORT",
			 arg, spec, f->udp ? "udp" : "tcp");
		return err;
	}
	memcpy(addr, p, alen);
	addr[alen] = 0;
	memcpy(hport, colon + 1, hlen);
	hport[hlen] = 0;
	memcpy(gaddr, g, (size_t)(gcolon - g));
	gaddr[gcolon - g] = 0;
	snprintf(gport, sizeof(gport), "%s", gcolon + 1);
	struct in_addr ia;
	if (*addr && inet_pton(AF_INET, addr, &ia) != 1) {
		snprintf(err, errlen, "--net %s: hostfwd=%s: '%s' is not an IPv4 address", arg, spec, addr);
		return err;
	}
	if (*gaddr && strcmp(gaddr, "10.0.2.15")) {
		snprintf(err, errlen, "--net %s: hostfwd=%s: the guest address must be empty "
			 "(forwards go to the guest's DHCP address 10.0.2.15)", arg, spec);
		return err;
	}
	uint32_t hp, gp;
	if (!parse_u32(hport, 65535, &hp) || hp == 0 || !parse_u32(gport, 65535, &gp) || gp == 0) {
		snprintf(err, errlen, "--net %s: hostfwd=%s: ports are numbers from 1 to 65535", arg, spec);
		return err;
	}
	f->host_addr = *addr ? strdup(addr) : NULL;
	f->host_port = (uint16_t)hp;
	f->guest_port = (uint16_t)gp;
	n->nfwd++;
	return NULL;
}

/* The items of --net after its kind, into n; n's strings are its own. */
static const char *net_items(struct vm_net *n, const char *arg, char *rest, char *err, size_t errlen)
{
	while (rest) {
		char *item = first_item(rest, &rest);
		if (!strncmp(item, "hostfwd=", 8) && n->backend == VM_NET_USER) {
			if (parse_hostfwd(n, arg, item + 8, err, errlen))
				return err;
		} else if (!strncmp(item, "ifname=", 7) && n->backend == VM_NET_TAP) {
			size_t len = strlen(item + 7);
			if (len < 1 || len > 15 || strchr(item + 7, '/')) {
				snprintf(err, errlen, "--net %s: ifname must be 1 to 15 bytes, no '/'", arg);
				return err;
			}
			free(n->tap_name);
			if (!(n->tap_name = strdup(item + 7))) {
				snprintf(err, errlen, "--net: out of memory");
				return err;
			}
		} else if (n->backend == VM_NET_USER &&
			   (!strcmp(item, "restrict=on") || !strcmp(item, "restrict=off"))) {
			n->restricted = !strcmp(item + 9, "on");
		} else if (n->backend == VM_NET_USER &&
			   (!strcmp(item, "host-loopback=on") || !strcmp(item, "host-loopback=off"))) {
			n->no_host_loopback = !strcmp(item + 14, "off");
			n->host_loopback_set = true;
		} else if (!strncmp(item, "mac=", 4)) {
			if (!parse_mac(item + 4, n->mac) || (n->mac[0] & 1)) {
				snprintf(err, errlen, "--net %s: mac=%s: not a unicast MAC address "
					 "(like 02:00:00:00:00:01)", arg, item + 4);
				return err;
			}
			n->mac_set = true;
		} else {
			snprintf(err, errlen, "--net %s: unknown setting '%s' (%s)", arg, item,
				 n->backend == VM_NET_USER ? "hostfwd=, restrict=on|off, host-loopback=on|off, mac="
							   : "ifname=, mac=");
			return err;
		}
	}
	if (n->backend == VM_NET_TAP && !n->tap_name) {
		snprintf(err, errlen, "--net %s: tap needs ifname=NAME", arg);
		return err;
	}
	return NULL;
}

/* The argument is parsed in a copy that is freed before returning: the
 * interface keeps only strings of its own (tap_name, id, host addresses). */
const char *devopt_net(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	if (c->nnets >= VM_MAX_NETS) {
		snprintf(err, errlen, "--net: at most %d network interfaces", VM_MAX_NETS);
		return err;
	}
	char *copy = strdup(arg), *rest;
	if (!copy) {
		snprintf(err, errlen, "--net: out of memory");
		return err;
	}
	struct vm_net *n = &c->nets[c->nnets];
	memset(n, 0, sizeof(*n));
	const char *kind = first_item(copy, &rest);
	const char *e = NULL;
	if (!strcmp(kind, "user")) {
		n->backend = VM_NET_USER;
	} else if (!strcmp(kind, "tap")) {
		n->backend = VM_NET_TAP;
	} else {
		snprintf(err, errlen, "--net %s: the first item must be user or tap", arg);
		e = err;
	}
	if (!e)
		e = net_items(n, arg, rest, err, errlen);
	free(copy);
	char id[16];
	free_id(id, "net", c->nnets, net_id_taken, c);
	if (!e && !(n->id = strdup(id))) {
		snprintf(err, errlen, "--net: out of memory");
		e = err;
	}
	if (e) {
		free(n->tap_name);
		for (size_t k = 0; k < n->nfwd; k++)
			free(n->fwd[k].host_addr);
		memset(n, 0, sizeof(*n));
		return e;
	}
	c->nnets++;
	return NULL;
}

static const char *parse_vsock(struct vm_config *c, char *copy, const char *arg, char *err,
			       size_t errlen)
{
	char *rest = copy;
	bool have_cid = false;
	c->vsock_uds = NULL;
	while (rest) {
		char *item = first_item(rest, &rest);
		if (!strncmp(item, "cid=", 4)) {
			if (!parse_u32(item + 4, UINT32_MAX - 1, &c->vsock_cid) || c->vsock_cid < 3) {
				snprintf(err, errlen, "--vsock %s: cid must be a number from 3 to %u",
					 arg, UINT32_MAX - 1);
				return err;
			}
			have_cid = true;
		} else if (!strncmp(item, "uds=", 4)) {
			/* Room for "_PORT" in a sockaddr_un (108 bytes). */
			size_t len = strlen(item + 4);
			if (len < 1 || len > 107 - 11) {
				snprintf(err, errlen, "--vsock %s: uds must be 1 to %d bytes", arg, 107 - 11);
				return err;
			}
			c->vsock_uds = item + 4;
		} else {
			snprintf(err, errlen, "--vsock %s: unknown setting '%s' (cid=, uds=)", arg, item);
			return err;
		}
	}
	if (!have_cid || !c->vsock_uds) {
		snprintf(err, errlen, "--vsock %s: needs both cid=N and uds=PATH", arg);
		return err;
	}
	return NULL;
}

const char *devopt_vsock(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	free(c->vsock_uds);
	c->vsock_uds = NULL;
	c->vsock = false;
	char *copy = strdup(arg);
	const char *e = copy ? parse_vsock(c, copy, arg, err, errlen) : "";
	if (!e && !(c->vsock_uds = strdup(c->vsock_uds)))
		e = "";
	if (e)
		c->vsock_uds = NULL;
	free(copy);
	if (e && !*e) {
		snprintf(err, errlen, "--vsock: out of memory");
		e = err;
	}
	c->vsock = !e;
	return e;
}

const char *devopt_balloon(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	/* The option's balloon replaces a config file's whole. */
	c->balloon = true;
	c->balloon_deflate_on_oom = false;
	c->balloon_target_mib = 0;
	c->balloon_stats_interval_s = 0;
	c->balloon_free_page_hinting = false;
	c->balloon_no_free_page_reporting = false;
	if (!arg)
		return NULL;
	char *copy = strdup(arg), *rest = copy;
	if (!copy) {
		snprintf(err, errlen, "--balloon: out of memory");
		return err;
	}
	const char *e = NULL;
	while (rest && !e) {
		char *item = first_item(rest, &rest);
		if (!strcmp(item, "deflate_on_oom")) {
			c->balloon_deflate_on_oom = true;
		} else if (!strncmp(item, "target=", 7)) {
			if (!parse_u32(item + 7, VM_MAX_MEM_MIB, &c->balloon_target_mib)) {
				snprintf(err, errlen, "--balloon %s: target is a size in MiB", arg);
				e = err;
			}
		} else if (!strncmp(item, "stats=", 6)) {
			if (!parse_u32(item + 6, 86400, &c->balloon_stats_interval_s)) {
				snprintf(err, errlen, "--balloon %s: stats is a polling interval in seconds "
					 "(0 to 86400)", arg);
				e = err;
			}
		} else {
			snprintf(err, errlen, "--balloon %s: unknown setting '%s' (deflate_on_oom, target=, "
				 "stats=)", arg, item);
			e = err;
		}
	}
	free(copy);
	return e;
}

/* ---- --share (virtio-9p) ---- */

static bool share_tag_taken(const struct vm_config *c, const char *t)
{
	for (size_t i = 0; i < c->nshares; i++)
		if (c->shares[i].tag && !strcmp(c->shares[i].tag, t))
			return true;
	return false;
}

/* Parses into `sh` with strings pointing into `copy` (or into `tagbuf`). */
static const char *parse_share(struct vm_config *c, struct vm_share *out, char *copy,
			       char tagbuf[16], const char *arg, char *err, size_t errlen)
{
	char *rest;
	struct vm_share sh = { 0 };
	sh.path = first_item(copy, &rest);
	if (!*sh.path) {
		snprintf(err, errlen, "--share %s: no host directory", arg);
		return err;
	}
	while (rest) {
		char *item = first_item(rest, &rest);
		if (!strcmp(item, "ro")) {
			sh.read_only = true;
		} else if (!strcmp(item, "nodev")) {
			sh.nodev = true;
		} else if (!strncmp(item, "tag=", 4)) {
			if (!vmm_tag_valid(item + 4)) {   /* the API's rule too */
				snprintf(err, errlen, "--share %s: tag must be 1 to 64 letters, digits or "
					 "_ . + @ : - (not starting with . or -)", arg);
				return err;
			}
			sh.tag = item + 4;
		} else {
			snprintf(err, errlen, "--share %s: unknown setting '%s' (tag=, ro, nodev)", arg, item);
			return err;
		}
	}
	struct stat st;
	if (stat(sh.path, &st)) {
		snprintf(err, errlen, "--share %s: %s: %s", arg, sh.path, strerror(errno));
		return err;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "--share %s: %s is not a directory", arg, sh.path);
		return err;
	}
	if (access(sh.path, R_OK | X_OK | (sh.read_only ? 0 : W_OK))) {
		snprintf(err, errlen, "--share %s: %s is not %s: %s", arg, sh.path,
			 sh.read_only ? "readable" : "readable and writable", strerror(errno));
		return err;
	}
	if (sh.tag && share_tag_taken(c, sh.tag)) {
		snprintf(err, errlen, "--share %s: tag %s is already used", arg, sh.tag);
		return err;
	}
	if (!sh.tag) {
		free_id(tagbuf, "share", c->nshares, share_tag_taken, c);
		sh.tag = tagbuf;
	}
	*out = sh;
	return NULL;
}

const char *devopt_share(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	if (c->nshares >= VM_MAX_SHARES) {
		snprintf(err, errlen, "--share: at most %d shares", VM_MAX_SHARES);
		return err;
	}
	struct vm_share sh;
	char tagbuf[16];
	char *copy = strdup(arg);
	const char *e = copy ? parse_share(c, &sh, copy, tagbuf, arg, err, errlen) : "";
	if (!e) {
		sh.path = strdup(sh.path);
		sh.tag = strdup(sh.tag);
		if (sh.path && sh.tag)
			c->shares[c->nshares++] = sh;
		else {
			vm_share_free(&sh);
			e = "";
		}
	}
	free(copy);
	if (e && !*e) {
		snprintf(err, errlen, "--share: out of memory");
		e = err;
	}
	return e;
}

/* ---- --port (a named virtio-console port on a Unix socket) ---- */

/* The port's name and path are its own strings. */
const char *devopt_port(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	if (c->nports >= VM_MAX_CONSOLE_PORTS) {
		snprintf(err, errlen, "--port: at most %d ports", VM_MAX_CONSOLE_PORTS);
		return err;
	}
	const char *comma = strchr(arg, ',');
	size_t nlen = comma ? (size_t)(comma - arg) : strlen(arg);
	struct vm_console_port p = { .name = strndup(arg, nlen) };
	if (!p.name) {
		snprintf(err, errlen, "--port: out of memory");
		return err;
	}
	const char *e = NULL;
	if (!vm_console_port_name_valid(p.name)) {
		snprintf(err, errlen, "--port %s: NAME must be 1 to %d printable characters, no space, "
			 "',' or '/' (like org.example.agent)", arg, VM_CONSOLE_PORT_NAME_MAX);
		e = err;
	}
	for (size_t i = 0; !e && i < c->nports; i++) {
		if (!strcmp(c->ports[i].name, p.name)) {
			snprintf(err, errlen, "--port %s: there is already a port named %s", arg, p.name);
			e = err;
		}
	}
	for (const char *item = comma; !e && item; item = strchr(item + 1, ',')) {
		const char *end = strchr(item + 1, ',');
		size_t len = end ? (size_t)(end - item - 1) : strlen(item + 1);
		if (len >= 4 && !strncmp(item + 1, "uds=", 4)) {
			if (len - 4 < 1 || len - 4 > VM_UDS_PATH_MAX) {
				snprintf(err, errlen, "--port %s: uds must be 1 to %d bytes", arg, VM_UDS_PATH_MAX);
				e = err;
			} else {
				free(p.uds_path);
				if (!(p.uds_path = strndup(item + 5, len - 4))) {
					snprintf(err, errlen, "--port: out of memory");
					e = err;
				}
			}
		} else {
			snprintf(err, errlen, "--port %s: unknown setting '%.*s' (uds=)", arg, (int)len, item + 1);
			e = err;
		}
	}
	if (!e && !p.uds_path) {
		snprintf(err, errlen, "--port %s: needs uds=PATH (the host's Unix socket)", arg);
		e = err;
	}
	for (size_t i = 0; !e && i < c->nports; i++) {
		if (!strcmp(c->ports[i].uds_path, p.uds_path)) {
			snprintf(err, errlen, "--port %s: port %s already uses %s", arg, c->ports[i].name,
				 p.uds_path);
			e = err;
		}
	}
	if (e) {
		free(p.name);
		free(p.uds_path);
		return e;
	}
	c->ports[c->nports++] = p;
	return NULL;
}

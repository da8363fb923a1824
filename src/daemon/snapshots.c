/*
 * skiffd's snapshots: save a running VM into a directory, make a new VM
 * from a snapshot directory (a restore), and make N clones of a running VM.
 *
 * A snapshot directory holds the VMM's two files (vmstate and memory, see
 * src/vmm/snapshot.h) and, for writable drives, copies of their images
 * taken while the VM was paused for the snapshot (drive-<id>.img), so a VM
 * made from the directory later finds its disks as they were.
 *
 * A VM made from a snapshot gets the snapshot's configuration with its own
 * host side: its vsock socket, console port sockets and drive copies live
 * in its run/ directory; a clone also gets a new vsock CID, a new MAC per
 * interface and no port forwards (the original holds those host ports).
 * Its first start runs `skiff run` without a configuration and loads the
 * snapshot through the VM's API with those overrides; later starts boot
 * the configuration normally.
 *
 * A VMM may write only in its run/ directory, and open only its own files
 * (vm_jail.c): it saves a snapshot into run/snapshot/, from where skiffd
 * moves the files to the directory asked for (skiffd's own then, readable
 * by the jails' group), and it restores from files skiffd puts into run/
 * (a hard link where it can, else a copy).
 */
#include "daemon/skiffd.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/uhttp.h"
#include "vmm/snapshot.h"

#define CALL_TIMEOUT_MS 120000
/* A restored VM's snapshot files, in its run/ until it has loaded them. */
#define RESTORE_STATE "restore-" SNAPSHOT_STATE_FILE
#define RESTORE_MEM "restore-" SNAPSHOT_MEM_FILE

/* One call to the VM's API; 0 when it answered `want`. */
static int vm_call(struct skiffd_vm *vm, const char *method, const char *path, json_t *body,
		   long want, json_t **out, char *err, size_t errlen)
{
	char *sock = skiffd_vm_sock(vm, "api.sock");
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct uhttp_reply r;
	int rc = -1;
	if (!sock || (body && !text)) {
		snprintf(err, errlen, "out of memory");
	} else if (uhttp_call(sock, method, path, text, CALL_TIMEOUT_MS, &r, err, errlen) == 0) {
		if (r.status == want) {
			rc = 0;
			if (out)
				*out = json_loads(r.body, 0, NULL);
		} else {
			json_t *j = json_loads(r.body, 0, NULL);
			const char *fm = json_string_value(json_object_get(j, "fault_message"));
			snprintf(err, errlen, "%s %s: %s", method, path, fm ? fm : r.body);
			json_decref(j);
		}
		uhttp_reply_free(&r);
	}
	free(sock);
	free(text);
	return rc;
}

/* Copy a disk image, keeping its holes. */
static int copy_image(const char *from, const char *to, char *err, size_t errlen)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1;
	struct stat st;
	if (in < 0 || fstat(in, &st)) {
		snprintf(err, errlen, "%s: %s", from, strerror(errno));
		goto fail;
	}
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0 || ftruncate(out, st.st_size)) {
		snprintf(err, errlen, "%s: %s", to, strerror(errno));
		goto fail;
	}
	off_t off = 0;
	while (off < st.st_size) {
		off_t data = lseek(in, off, SEEK_DATA);
		if (data < 0)
			break;   /* only holes are left */
		off_t hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			hole = st.st_size;
		loff_t i = data, o = data;
		while (i < hole) {
			ssize_t n = copy_file_range(in, &i, out, &o, (size_t)(hole - i), 0);
			if (n <= 0) {
				snprintf(err, errlen, "copying %s to %s: %s", from, to,
					 n < 0 ? strerror(errno) : "short copy");
				goto fail;
			}
		}
		off = hole;
	}
	close(in);
	if (close(out)) {
		snprintf(err, errlen, "%s: %s", to, strerror(errno));
		unlink(to);
		return -1;
	}
	return 0;
fail:
	if (in >= 0)
		close(in);
	if (out >= 0) {
		close(out);
		unlink(to);
	}
	return -1;
}

static char *join(const char *dir, const char *file)
{
	char *p = NULL;
	return asprintf(&p, "%s/%s", dir, file) < 0 ? NULL : p;
}

/* Move a file: rename, or across file systems copy and remove. */
static int move_file(const char *from, const char *to, char *err, size_t errlen)
{
	if (rename(from, to) == 0)
		return 0;
	if (errno != EXDEV) {
		snprintf(err, errlen, "cannot move %s to %s: %s", from, to, strerror(errno));
		return -1;
	}
	unlink(to);
	if (copy_image(from, to, err, errlen))
		return -1;
	unlink(from);
	return 0;
}

/* copy_image, then the copy goes to the VMM's uid. */
static int copy_for_vm(struct skiffd *d, const struct skiffd_vm *vm, const char *from, const char *to, char *err,
		       size_t errlen)
{
	if (copy_image(from, to, err, errlen))
		return -1;
	int fd = open(to, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int r = fd < 0 ? -1 : skiffd_hand_over(d, vm, fd, err, errlen);
	if (fd < 0)
		snprintf(err, errlen, "%s: %s", to, strerror(errno));
	else
		close(fd);
	if (r)
		unlink(to);
	return r;
}

/* A snapshot skiffd saved for a jailed VM: its files belong to skiffd,
 * read-only to the jails' group, so that every VM made from it later gets
 * a hard link, not a copy of a whole memory file (a restore then reads
 * nothing, and clones share the pages none of them wrote). Only the VM the
 * link is put in for can reach it: a jail sees its own run/ alone. */
static int share_with_jails(const struct skiffd *d, const char *path, char *err, size_t errlen)
{
	if (!d->jail.on)
		return 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchown(fd, geteuid(), d->jail.gid) || fchmod(fd, 0640)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Whether a jailed VM may be given `st`'s file by a link: its own, or one
 * share_with_jails prepared (skiffd's, the jails' group reads, none writes). */
static bool linkable(const struct skiffd *d, const struct skiffd_vm *vm, const struct stat *st)
{
	if (!d->jail.on)
		return st->st_uid == geteuid();
	if (st->st_uid == vm->jail_uid)
		return true;
	return st->st_uid == geteuid() && st->st_gid == d->jail.gid && (st->st_mode & S_IRGRP) &&
	       !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/* Put the snapshot file `from` where the VM's VMM can open it,
 * run/`name`: a hard link when linkable (same file system), else a copy
 * handed to it. The malloc'd path, or NULL with err. */
static char *import_file(struct skiffd *d, struct skiffd_vm *vm, const char *from, const char *name,
			 char *err, size_t errlen)
{
	char *to = skiffd_vm_run_path(vm, name);
	if (!to) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	unlink(to);
	struct stat st;
	if (stat(from, &st) == 0 && S_ISREG(st.st_mode) && linkable(d, vm, &st) && link(from, to) == 0)
		return to;
	if (copy_for_vm(d, vm, from, to, err, errlen) == 0)
		return to;
	free(to);
	return NULL;
}

int skiffd_vm_snapshot(struct skiffd *d, struct skiffd_vm *vm, const char *dir, const char *type,
		       char *err, size_t errlen)
{
	pthread_mutex_lock(&d->lock);
	bool running = vm->pid > 0;
	pthread_mutex_unlock(&d->lock);
	if (!running) {
		snprintf(err, errlen, "vm `%s` is not running", vm->id);
		return -1;
	}
	if (dir[0] != '/') {
		snprintf(err, errlen, "dir: `%s` must be an absolute path", dir);
		return -1;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "dir %s: %s", dir, strerror(errno));
		return -1;
	}
	json_t *info = NULL;
	if (skiffd_vm_run_dir(d, vm, "snapshot", err, errlen) ||
	    vm_call(vm, "GET", "/", NULL, 200, &info, err, errlen))
		return -1;
	bool was_paused = !strcmp(json_string_value(json_object_get(info, "state")) ?: "", "Paused");
	json_decref(info);
	/* The VMM writes in run/snapshot/; the files go to `dir` after. */
	char *state = skiffd_vm_run_path(vm, "snapshot/" SNAPSHOT_STATE_FILE);
	char *mem = skiffd_vm_run_path(vm, "snapshot/" SNAPSHOT_MEM_FILE);
	char *state_to = join(dir, SNAPSHOT_STATE_FILE), *mem_to = join(dir, SNAPSHOT_MEM_FILE);
	bool diff = type && !strcmp(type, "Diff");
	json_t *pause = json_pack("{s:s}", "state", "Paused");
	json_t *resume = json_pack("{s:s}", "state", "Resumed");
	json_t *create = json_pack("{s:s,s:s,s:s}", "snapshot_type", type ? type : "Full",
				   "snapshot_path", state ? state : "", "mem_file_path", mem ? mem : "");
	int rc = -1;
	if (!state || !mem || !state_to || !mem_to || !pause || !resume || !create) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* A Diff snapshot writes the pages changed since the last one into
	 * the memory file that is there. */
	struct stat st;
	if (diff && stat(mem_to, &st) == 0 &&
	    (move_file(mem_to, mem, err, errlen) || skiffd_hand_over_path(d, vm, mem, err, errlen)))
		goto out;
	if (!was_paused && vm_call(vm, "PATCH", "/vm", pause, 204, NULL, err, errlen))
		goto out;
	rc = vm_call(vm, "PUT", "/snapshot/create", create, 204, NULL, err, errlen);
	if (!rc)
		rc = move_file(state, state_to, err, errlen);
	if (!rc || (diff && access(mem, F_OK) == 0))
		rc |= move_file(mem, mem_to, err, errlen);
	if (!rc)
		rc = share_with_jails(d, state_to, err, errlen) || share_with_jails(d, mem_to, err, errlen);
	/* Writable disks as they are at this moment, for VMs made from it. */
	json_t *drives = json_object_get(vm->config, "drives");
	size_t k;
	json_t *dr;
	json_array_foreach(drives, k, dr) {
		if (rc || json_is_true(json_object_get(dr, "is_read_only")))
			continue;
		char name[96];
		snprintf(name, sizeof(name), "drive-%s.img",
			 json_string_value(json_object_get(dr, "drive_id")) ?: "x");
		char *to = join(dir, name);
		if (to)
			unlink(to);
		if (!to || copy_image(json_string_value(json_object_get(dr, "path_on_host")), to,
				      err, errlen))
			rc = -1;
		free(to);
	}
	char rerr[256];
	if (!was_paused && vm_call(vm, "PATCH", "/vm", resume, 204, NULL, rerr, sizeof(rerr)))
		skiffd_log("vm %s: not resumed after its snapshot: %s", vm->id, rerr);
	if (!rc)
		skiffd_log("vm %s: snapshot saved in %s", vm->id, dir);
out:
	json_decref(pause);
	json_decref(resume);
	json_decref(create);
	free(state);
	free(mem);
	free(state_to);
	free(mem_to);
	return rc;
}

/* A random locally administered unicast MAC. */
static void new_mac(char out[18])
{
	uint8_t m[6];
	if (getrandom(m, sizeof(m), 0) != (ssize_t)sizeof(m))
		for (int i = 0; i < 6; i++)
			m[i] = (uint8_t)(rand() >> 8);
	m[0] = (uint8_t)((m[0] & 0xfc) | 0x02);
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* A vsock CID no other VM of this skiffd uses, nor a clone being made
 * (d->lock held). */
static uint64_t new_cid(struct skiffd *d)
{
	uint64_t cid = 3;
	for (struct skiffd_vm *v = d->vms; v; v = v->next) {
		json_t *c = json_object_get(json_object_get(v->config, "vsock"), "guest_cid");
		if (json_is_integer(c) && (uint64_t)json_integer_value(c) >= cid)
			cid = (uint64_t)json_integer_value(c) + 1;
		if (v->cid >= cid)
			cid = v->cid + 1;
	}
	return cid;
}

/* The new VM's configuration `cfg` (not the record's yet) and the load
 * request that give it its own host side (vm->dir exists). 0 or -1. */
static int own_host_side(struct skiffd *d, struct skiffd_vm *vm, json_t *cfg, const char *snapdir, bool clone,
			 json_t *load, char *err, size_t errlen)
{
	json_t *vs = json_object_get(cfg, "vsock");
	if (json_is_object(vs)) {
		char *uds = skiffd_vm_run_path(vm, "vsock.sock");
		json_t *o = json_pack("{s:s}", "uds_path", uds ? uds : "");
		json_object_set_new(vs, "uds_path", json_string(uds ? uds : ""));
		if (clone) {
			pthread_mutex_lock(&d->lock);
			uint64_t cid = new_cid(d);
			vm->cid = cid;
			pthread_mutex_unlock(&d->lock);
			json_object_set_new(vs, "guest_cid", json_integer((json_int_t)cid));
			json_object_set_new(o, "guest_cid", json_integer((json_int_t)cid));
		}
		json_object_set_new(load, "vsock_override", o);
		free(uds);
	}
	json_t *ports = json_object_get(cfg, "console-ports"), *po = json_array();
	size_t k;
	json_t *e;
	json_array_foreach(ports, k, e) {
		char file[48];
		snprintf(file, sizeof(file), "port%zu.sock", k);
		char *uds = skiffd_vm_run_path(vm, file);
		json_object_set_new(e, "uds_path", json_string(uds ? uds : ""));
		json_array_append_new(po, json_pack("{s:O,s:s}", "name", json_object_get(e, "name"),
						    "uds_path", uds ? uds : ""));
		free(uds);
	}
	json_object_set_new(load, "console_port_overrides", po);
	json_t *drives = json_object_get(cfg, "drives"), *dov = json_array();
	json_array_foreach(drives, k, e) {
		if (json_is_true(json_object_get(e, "is_read_only")))
			continue;
		const char *id = json_string_value(json_object_get(e, "drive_id")) ?: "x";
		char name[96];
		snprintf(name, sizeof(name), "drive-%s.img", id);
		char *from = join(snapdir, name), *to = skiffd_vm_run_path(vm, name);
		int r = !from || !to ? -1 : copy_for_vm(d, vm, from, to, err, errlen);
		if (!r) {
			json_object_set_new(e, "path_on_host", json_string(to));
			json_array_append_new(dov, json_pack("{s:s,s:s}", "drive_id", id, "path_on_host", to));
		}
		free(from);
		free(to);
		if (r) {
			json_decref(dov);
			return -1;
		}
	}
	json_object_set_new(load, "drive_overrides", dov);
	if (clone) {
		json_t *nets = json_object_get(cfg, "network-interfaces"), *nov = json_array();
		json_array_foreach(nets, k, e) {
			char mac[18];
			new_mac(mac);
			json_object_set_new(e, "guest_mac", json_string(mac));
			json_object_del(e, "port_forwards");
			json_array_append_new(nov, json_pack("{s:O,s:s,s:[]}", "iface_id",
							     json_object_get(e, "iface_id"), "guest_mac", mac,
							     "port_forwards"));
		}
		json_object_set_new(load, "network_overrides", nov);
	}
	return 0;
}

int skiffd_vm_from_snapshot(struct skiffd *d, struct skiffd_vm *vm, const char *snapdir, bool clone, char *err,
			    size_t errlen)
{
	char *state = join(snapdir, SNAPSHOT_STATE_FILE), *mem = join(snapdir, SNAPSHOT_MEM_FILE);
	char why[512];
	struct vm_snapshot_file *sf = state ? vm_snapshot_open(state, why, sizeof(why)) : NULL;
	json_t *doc = NULL, *cfg = NULL, *restore = NULL;
	char *rstate = NULL, *rmem = NULL;
	bool made = false;
	int rc = -1;
	if (!sf) {
		snprintf(err, errlen, "snapshot %s: %s", snapdir, state ? why : "out of memory");
		goto out;
	}
	doc = json_loads(vm_snapshot_config(sf), 0, NULL);
	json_t *from = json_object_get(doc, "vm_config");
	if (!json_is_object(from)) {
		snprintf(err, errlen, "snapshot %s: its configuration is not skiff's", snapdir);
		goto out;
	}
	if (!(cfg = json_deep_copy(from))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* Where the VMM writes its logs is the new VM's business. */
	json_object_del(cfg, "logger");
	json_object_del(cfg, "metrics");
	if (mkdir(vm->dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", vm->dir, strerror(errno));
		goto out;
	}
	made = true;
	if (skiffd_vm_run_dir(d, vm, NULL, err, errlen) ||
	    !(rstate = import_file(d, vm, state, RESTORE_STATE, err, errlen)) ||
	    !(rmem = import_file(d, vm, mem, RESTORE_MEM, err, errlen)))
		goto out;
	restore = json_pack("{s:s,s:{s:s,s:s},s:b}", "snapshot_path", rstate, "mem_backend",
			    "backend_type", "File", "backend_path", rmem, "resume_vm", 1);
	if (!restore) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (own_host_side(d, vm, cfg, snapdir, clone, restore, err, errlen))
		goto out;
	pthread_mutex_lock(&d->lock);
	vm->config = cfg;
	vm->restore = restore;
	cfg = restore = NULL;
	vm->created_at = time(NULL);
	skiffd_vm_machine(vm);
	rc = skiffd_save_vm(vm, err, errlen);
	if (rc) {
		json_decref(vm->config);
		json_decref(vm->restore);
		vm->config = vm->restore = NULL;
	}
	pthread_mutex_unlock(&d->lock);
out:
	if (rc && made)
		skiffd_remove_vm_dir(vm, why, sizeof(why));
	json_decref(cfg);
	json_decref(restore);
	free(rstate);
	free(rmem);
	vm_snapshot_close(sf);
	json_decref(doc);
	free(state);
	free(mem);
	return rc;
}

int skiffd_vm_load_snapshot(struct skiffd_vm *vm, char *err, size_t errlen)
{
	int r = vm_call(vm, "PUT", "/snapshot/load", vm->restore, 204, NULL, err, errlen);
	if (r == 0) {
		/* Loaded: the VMM holds what it needs of them. */
		char *p = skiffd_vm_run_path(vm, RESTORE_STATE), *q = skiffd_vm_run_path(vm, RESTORE_MEM);
		if (p)
			unlink(p);
		if (q)
			unlink(q);
		free(p);
		free(q);
	}
	return r;
}

/*
 * skiffd: a VM made from a system image (`skiff create --image NAME`, or
 * "image": NAME in POST /vms). The VM gets its own copy-on-write overlay of
 * the image's disk in its state directory (removed with the VM), the
 * image's kernel, initramfs and command line where the definition gives
 * none, 1 GiB of memory unless it says otherwise, and a user network when
 * it has no network interface.
 *
 * The overlay names the image's disk by its full path with the format
 * written out (qcow2), so nothing is probed, and the drive allows backing
 * files beneath the image's directory only (backing_dirs); the image itself
 * is never written by a skiffd VM.
 *
 * The overlay lives in a directory of its own, STATE/vms/ID/overlay/: a
 * drive that follows backing files brings its image's directory into the
 * VM's jail (read only), and that directory must hold nothing of skiffd's
 * (an older skiffd put the overlay beside vm.json; its VMs' overlays are
 * moved at their next start).
 */
#include "daemon/vm_image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/image_store.h"
#include "daemon/skiffd.h"

#define OVERLAY "disk.qcow2"

static json_t *section(json_t *cfg, const char *key)
{
	json_t *s = json_object_get(cfg, key);
	if (!json_is_object(s)) {
		s = json_object();
		json_object_set_new(cfg, key, s);
	}
	return s;
}

static void set_if_absent(json_t *o, const char *key, const char *value)
{
	if (!json_object_get(o, key))
		json_object_set_new(o, key, json_string(value));
}

int skiffd_image_prepare(json_t *cfg, const char *image, const char *vm_dir, char *err, size_t errlen)
{
	struct image_meta m;
	char sub[768];
	if (image_meta_load(NULL, image, &m, sub, sizeof(sub))) {
		snprintf(err, errlen, "image: %s", sub);
		return -1;
	}
	json_t *bs = section(cfg, "boot-source");
	set_if_absent(bs, "kernel_image_path", m.kernel);
	set_if_absent(bs, "initrd_path", m.initrd);
	set_if_absent(bs, "boot_args", m.cmdline);
	/* 1 GiB unless the definition says otherwise, as skiff run --image. */
	json_t *mc = section(cfg, "machine-config");
	if (!json_object_get(mc, "vcpu_count"))
		json_object_set_new(mc, "vcpu_count", json_integer(1));
	if (!json_object_get(mc, "mem_size_mib"))
		json_object_set_new(mc, "mem_size_mib", json_integer(1024));
	json_t *nets = json_object_get(cfg, "network-interfaces");
	if (!json_array_size(nets)) {
		json_t *a = json_array();
		json_array_append_new(a, json_pack("{s:s,s:s}", "iface_id", "eth0", "backend", "user"));
		json_object_set_new(cfg, "network-interfaces", a);
	}
	char *overlay = NULL;
	if (asprintf(&overlay, "%s/" SKIFFD_OVERLAY_DIR "/" OVERLAY, vm_dir) < 0) {
		image_meta_free(&m);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* The image's disk is /dev/vda, before the definition's own drives. */
	json_t *drives = json_object_get(cfg, "drives");
	if (!json_is_array(drives)) {
		drives = json_array();
		json_object_set_new(cfg, "drives", drives);
	}
	/* The overlay's backing file is followed beneath the image's directory
	 * only (backing_dirs). */
	json_array_insert_new(drives, 0, json_pack("{s:s,s:s,s:b,s:b,s:s,s:[s]}", "drive_id", "image",
						   "path_on_host", overlay, "is_root_device", 0,
						   "is_read_only", 0, "format", "qcow2",
						   "backing_dirs", m.dir));
	int ret = 0;
	char *slash = strrchr(overlay, '/');
	*slash = 0;
	if ((mkdir(vm_dir, 0700) && errno != EEXIST) || (mkdir(overlay, 0700) && errno != EEXIST)) {
		snprintf(err, errlen, "cannot create %s: %s", overlay, strerror(errno));
		rmdir(vm_dir);
		ret = -1;
	}
	*slash = '/';
	if (!ret && image_overlay_create(&m, overlay, sub, sizeof(sub))) {
		snprintf(err, errlen, "image: %s", sub);
		skiffd_image_undo(vm_dir);
		ret = -1;
	}
	free(overlay);
	image_meta_free(&m);
	return ret;
}

void skiffd_image_undo(const char *vm_dir)
{
	char *overlay = NULL;
	if (asprintf(&overlay, "%s/" SKIFFD_OVERLAY_DIR "/" OVERLAY, vm_dir) >= 0) {
		unlink(overlay);
		*strrchr(overlay, '/') = 0;
		rmdir(overlay);
		free(overlay);
	}
	rmdir(vm_dir);
}

int skiffd_image_start(const struct skiffd *d, struct skiffd_vm *vm, char *err, size_t errlen)
{
	json_t *drive = json_array_get(json_object_get(vm->config, "drives"), 0);
	const char *path = json_string_value(json_object_get(drive, "path_on_host"));
	char *old = NULL, *dir = NULL, *now = NULL;
	int r = -1;
	if (asprintf(&old, "%s/" OVERLAY, vm->dir) < 0 || asprintf(&dir, "%s/" SKIFFD_OVERLAY_DIR, vm->dir) < 0 ||
	    asprintf(&now, "%s/" OVERLAY, dir) < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (path && !strcmp(path, old)) {
		/* Made by an older skiffd: the overlay into its own directory,
		 * the definition after it (a failure leaves it where it was). */
		if ((mkdir(dir, 0700) && errno != EEXIST) || rename(old, now)) {
			snprintf(err, errlen, "cannot move the image's overlay %s into %s: %s", old, dir,
				 strerror(errno));
			goto out;
		}
		json_object_set_new(drive, "path_on_host", json_string(now));
		if (skiffd_save_vm(vm, err, errlen)) {
			json_object_set_new(drive, "path_on_host", json_string(old));
			if (rename(now, old))
				skiffd_log("vm %s: cannot move its overlay back to %s: %s", vm->id, old, strerror(errno));
			goto out;
		}
		skiffd_log("vm %s: its image's overlay moved into %s", vm->id, dir);
		path = now;
	}
	/* The VM's to write, and its uid may have changed since it was made. */
	r = 0;
	if (path && !strcmp(path, now) &&
	    (skiffd_hand_over_path(d, vm, dir, err, errlen) || skiffd_hand_over_path(d, vm, now, err, errlen)))
		r = -1;
out:
	free(old);
	free(dir);
	free(now);
	return r;
}

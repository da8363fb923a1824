/*
 * `skiff run --image NAME [--ephemeral] [--ssh-port P]`: turns a system
 * image (src/daemon/image_store.h) into the VM's kernel, initramfs, command
 * line, root disk and user network, through the same device options a user
 * would type, so the run is checked like any other.
 *
 * The image's directory is locked (shared) for as long as the VM runs, so
 * `skiff image rm` refuses to pull the disk from under it. With
 * --ephemeral the VM writes to a qcow2 overlay created beside the image's
 * disk (its backing file named relative to it, format qcow2, followed
 * because the drive says backing=on) and removed when skiff exits; overlays left by a skiff that was killed are removed
 * the next time one starts.
 */
#include "cli/image_run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include "cli/devopts.h"

#define OVERLAY_PREFIX "ephemeral-"

/* Removes ephemeral-PID-*.qcow2 overlays whose skiff is gone. */
static void remove_stale_overlays(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, OVERLAY_PREFIX, strlen(OVERLAY_PREFIX)))
			continue;
		char *end;
		long pid = strtol(e->d_name + strlen(OVERLAY_PREFIX), &end, 10);
		if (pid <= 0 || *end != '-')
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char path[4096];
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path))
			unlink(path);
	}
	closedir(d);
}

int image_use_begin(struct image_use *u, struct vm_config *cfg, const struct image_use_opts *o,
		    char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	u->lock_fd = -1;
	char sub[768];
	if (image_meta_load(NULL, o->name, &u->meta, sub, sizeof(sub))) {
		snprintf(err, errlen, "--image: %s", sub);
		return -1;
	}
	char *lock = NULL;
	if (asprintf(&lock, "%s/.lock", u->meta.dir) < 0)
		goto oom;
	u->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	free(lock);
	if (u->lock_fd < 0 || flock(u->lock_fd, LOCK_SH | LOCK_NB)) {
		snprintf(err, errlen, "--image %s: cannot lock %s/.lock: %s", o->name, u->meta.dir,
			 strerror(errno));
		goto fail;
	}
	const char *disk = u->meta.disk;
	if (o->ephemeral) {
		remove_stale_overlays(u->meta.dir);
		uint32_t r = 0;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint32_t)getpid();
		if (asprintf(&u->overlay, "%s/" OVERLAY_PREFIX "%ld-%08x.qcow2", u->meta.dir,
			     (long)getpid(), r) < 0) {
			u->overlay = NULL;
			goto oom;
		}
		if (image_overlay_create(&u->meta, u->overlay, sub, sizeof(sub))) {
			free(u->overlay);
			u->overlay = NULL;
			snprintf(err, errlen, "--ephemeral: %s", sub);
			goto fail;
		}
		disk = u->overlay;
	}
	/* The root disk first (it is /dev/vda, which the command line names).
	 * An overlay's backing file is the image's disk, beside it: followed
	 * only because this says so (backing=on resolves beneath the overlay's
	 * own directory). */
	char *arg = NULL;
	if (asprintf(&arg, "%s,format=qcow2%s", disk, o->ephemeral ? ",backing=on" : "") < 0)
		goto oom;
	if (cfg->ndrives >= VM_MAX_DRIVES) {
		free(arg);
		snprintf(err, errlen, "--image: at most %d more disks", VM_MAX_DRIVES - 1);
		goto fail;
	}
	if (devopt_disk(cfg, arg, err, errlen)) {
		free(arg);
		goto fail;
	}
	/* Move it before the user's disks. */
	struct vm_drive root = cfg->drives[cfg->ndrives - 1];
	memmove(cfg->drives + 1, cfg->drives, (cfg->ndrives - 1) * sizeof(root));
	cfg->drives[0] = root;
	free(arg);
	if (o->ssh_port && cfg->nnets) {
		snprintf(err, errlen, "--ssh-port makes the VM's user network; with --net, add "
			 "hostfwd=tcp:127.0.0.1:%u-:22 to it instead", o->ssh_port);
		goto fail;
	}
	if (!cfg->nnets) {
		/* DHCP and DNS from user networking, as the image expects. */
		char net[96];
		if (o->ssh_port)
			snprintf(net, sizeof(net), "user,hostfwd=tcp:127.0.0.1:%u-:22", o->ssh_port);
		else
			snprintf(net, sizeof(net), "user");
		if (devopt_net(cfg, net, err, errlen))
			goto fail;
	}
	/* The image's boot files where the options name none. */
	const char *mine[3] = { u->meta.kernel, u->meta.initrd, u->meta.cmdline };
	char **slot[3] = { &cfg->kernel, &cfg->initrd, &cfg->append };
	for (int i = 0; i < 3; i++)
		if (!*slot[i] && mine[i] && !(*slot[i] = strdup(mine[i])))
			goto oom;
	return 0;
oom:
	snprintf(err, errlen, "--image: out of memory");
fail:
	image_use_end(u);
	return -1;
}

void image_use_end(struct image_use *u)
{
	if (u->overlay) {
		unlink(u->overlay);
		free(u->overlay);
		u->overlay = NULL;
	}
	if (u->lock_fd >= 0)
		close(u->lock_fd);
	u->lock_fd = -1;
	image_meta_free(&u->meta);
}

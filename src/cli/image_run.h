/* A system image as the VM of `skiff run --image` (image_run.c). */
#ifndef SKIFF_CLI_IMAGE_RUN_H
#define SKIFF_CLI_IMAGE_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/image_store.h"
#include "vmm/config.h"

struct image_use_opts {
	const char *name;
	bool ephemeral;          /* write to an overlay removed at exit */
	unsigned ssh_port;       /* 0: none; else host 127.0.0.1:PORT -> guest 22 */
};

struct image_use {
	struct image_meta meta;
	char *overlay;           /* the ephemeral overlay, or NULL */
	int lock_fd;             /* shared lock on the image while it runs */
};

/* Fills in cfg's kernel, initrd and append where the user gave none, puts
 * the image's disk (or an ephemeral overlay of it) first among the disks,
 * and adds a user network when the user gave none. cfg's strings point into
 * `u`, which must outlive the run. 0, or -1 with a message. */
int image_use_begin(struct image_use *u, struct vm_config *cfg, const struct image_use_opts *o,
		    char *err, size_t errlen);
/* Removes the overlay, drops the lock, frees what begin allocated. */
void image_use_end(struct image_use *u);

#endif

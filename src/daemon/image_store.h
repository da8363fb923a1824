/*
 * System images made by `skiff image create` (guest/debian/create.sh), as
 * the `skiff` client and skiffd both read them: one directory per image,
 *
 *   ${XDG_CACHE_HOME:-~/.cache}/skiff/images/NAME/
 *       image.json  disk.qcow2  Image  initrd.cpio.gz  (logs)
 *
 * image.json names the files (plain names inside the directory, checked
 * here), the kernel command line and what the image holds; see
 * guest/debian/metadata.py for its fields.
 *
 * A VM never writes through another VM's overlay: a copy-on-write overlay
 * names the image's disk as its backing file with the format written out
 * (qcow2), so nothing is probed.
 */
#ifndef SKIFF_DAEMON_IMAGE_STORE_H
#define SKIFF_DAEMON_IMAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct image_meta {
	char *dir;            /* the image's directory */
	char *name;
	char *suite, *codename, *created, *kernel_release;
	char *disk, *kernel, *initrd;   /* full paths */
	char *cmdline;
	uint64_t size;        /* virtual size of the disk, bytes */
	size_t npackages;
	long create_seconds;
};

/* ${XDG_CACHE_HOME:-$HOME/.cache}/skiff/images (malloc'd), NULL if neither
 * is set or out of memory. */
char *image_store_dir(void);

/* Letters, digits, '.', '_', '-', not starting with '.', at most 64. */
bool image_name_ok(const char *name);

/* Reads NAME's image.json under `store` (NULL: image_store_dir()). Returns 0,
 * or -1 with a message naming the image and the problem. */
int image_meta_load(const char *store, const char *name, struct image_meta *m,
		    char *err, size_t errlen);
void image_meta_free(struct image_meta *m);

/* Creates `overlay` as a qcow2 copy-on-write overlay of the image's disk
 * (backing format qcow2, named relative to the overlay when it lies in the
 * image's directory, by its full path otherwise). 0 or -1 with a message. */
int image_overlay_create(const struct image_meta *m, const char *overlay, char *err, size_t errlen);

#endif

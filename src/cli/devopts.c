/* `skiff run` device options; see devopts.h. Strings point into argv (or
 * into copies that live as long as the process), never freed. */
#include "cli/devopts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

const char *devopt_disk(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	if (c->ndrives >= VM_MAX_DRIVES) {
		snprintf(err, errlen, "--disk: at most %d disks", VM_MAX_DRIVES);
		return err;
	}
	char *copy = strdup(arg), *rest;
	if (!copy) {
		snprintf(err, errlen, "--disk: out of memory");
		return err;
	}
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
		} else if (!strncmp(item, "serial=", 7)) {
			if (strlen(item + 7) > 20) {
				snprintf(err, errlen, "--disk %s: serial is at most 20 characters", arg);
				return err;
			}
			d->serial = item + 7;
		} else {
			snprintf(err, errlen, "--disk %s: unknown setting '%s' (ro, root, format=, serial=)",
				 arg, item);
			return err;
		}
	}
	char id[16];
	snprintf(id, sizeof(id), "disk%zu", c->ndrives);
	d->id = strdup(id);
	c->ndrives++;
	return NULL;
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

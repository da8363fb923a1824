/*
 * What a drive's image may be opened as, settled when the drive is
 * configured: its format, and the directories its backing chain may use.
 *
 * The format is settled once, when the drive is configured, so
 * that nothing a guest writes can change how its disk is opened later (the
 * attack is QEMU's CVE-2008-2004: a guest writes a qcow2 header naming a
 * host file as backing file onto its raw disk and reboots). The rules:
 *   - format= given: used as given, never checked against the contents but
 *     by the format's own parser at open;
 *   - read-only, no format=: probed here, once (the guest cannot write the
 *     image through this drive); but a qcow2 header that names a backing
 *     file is refused, since some guest may have written it earlier;
 *   - writable, no format=: raw, and an image that starts with the qcow2
 *     magic is refused rather than guessed, since the header may be the
 *     guest's work: the user says format=qcow2 or format=raw.
 * The settled format is part of the configuration from then on (GET
 * /vm/config shows it, skiffd stores it), and opening never probes
 * (src/backend/disk/disk.c). A new image swapped in while the VM runs
 * (PATCH /drives path_on_host) has its format settled by the same rules.
 */
#include "vmm/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/disk/disk.h"

const char *vm_drive_settle_format(struct vm_drive *d, char *err, size_t errlen)
{
	if (d->format != VM_DISK_UNSET)
		return NULL;
	struct disk_probe p;
	char perr[320];
	if (disk_probe_format(d->path, &p, perr, sizeof(perr)) < 0) {
		snprintf(err, errlen, "%s", perr);
		return err;
	}
	if (p.format == DISK_FORMAT_QCOW2 && !d->read_only) {
		snprintf(err, errlen, "%s: starts with a qcow2 header, but the format of a writable "
			 "disk is never guessed (a guest could have written that header): give its "
			 "format, qcow2 if the image was made as qcow2, raw if it is a raw disk",
			 d->path);
		return err;
	}
	if (p.format == DISK_FORMAT_QCOW2 && p.names_backing_file) {
		snprintf(err, errlen, "%s: reads as qcow2 and names a backing file; an image whose "
			 "format was guessed never leads to another file (a guest could have written "
			 "that header while the disk was writable): give its format, qcow2 if the "
			 "image was made as qcow2, raw if it is a raw disk", d->path);
		return err;
	}
	d->format = p.format == DISK_FORMAT_QCOW2 ? VM_DISK_QCOW2 : VM_DISK_RAW;
	return NULL;
}

/* Canonical now, so a later change of the working directory or of a
 * symlink does not move what the user allowed. */
const char *vm_drive_add_backing_dir(struct vm_drive *d, const char *dir, char *err, size_t errlen)
{
	if (d->nbacking_dirs >= VM_MAX_BACKING_DIRS) {
		snprintf(err, errlen, "at most %d backing directories", VM_MAX_BACKING_DIRS);
		return err;
	}
	char *canon = realpath(dir, NULL);
	struct stat st;
	if (!canon || stat(canon, &st) < 0) {
		snprintf(err, errlen, "backing directory %s: %s", dir, strerror(errno));
		free(canon);
		return err;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(err, errlen, "backing directory %s: not a directory or block device", dir);
		free(canon);
		return err;
	}
	d->backing_dirs[d->nbacking_dirs++] = canon;
	d->backing = true;
	return NULL;
}

/*
 * A disk backend: the narrow interface between virtio-blk and an image file
 * (raw or qcow2). All calls are all-or-nothing and return 0 or -errno; they
 * may block and are made from an I/O thread, never from a vCPU thread.
 * Offsets and lengths are in bytes; callers keep them within disk_size().
 */
#ifndef SKIFF_BACKEND_DISK_H
#define SKIFF_BACKEND_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* An image's format is always named by whoever opens it: opening never
 * guesses it from the contents, since a guest that can write a raw image
 * could make it look like any format (QEMU's CVE-2008-2004). NONE is the
 * "not given" value, refused by disk_open. */
enum disk_format { DISK_FORMAT_NONE, DISK_FORMAT_RAW, DISK_FORMAT_QCOW2 };

/* Backing files are followed only when the user allows it: `backing` on,
 * and then every backing name resolves beneath the top image's own
 * directory or beneath one of `backing_dirs` (openat2 RESOLVE_BENEATH: no
 * `..` or symlink leads out). An absolute name is fine when it lies beneath
 * one of those. A block device serves as a backing file only when
 * backing_dirs names that very device. */
#define DISK_MAX_BACKING_DIRS 8

struct disk_open_opts {
	enum disk_format format; /* RAW or QCOW2 */
	bool read_only;
	bool backing;            /* follow a qcow2 image's backing file */
	const char *const *backing_dirs; /* directories or block devices, or NULL */
	size_t nbacking_dirs;    /* at most DISK_MAX_BACKING_DIRS */
};

struct disk;

/* Open an image. On failure returns -errno-like code and writes a message
 * naming the file and the problem into err. */
int disk_open(const char *path, const struct disk_open_opts *opts,
	      struct disk **out, char *err, size_t errlen);
void disk_close(struct disk *d);
/* Open the image that is to take `cur`'s place (a drive's backing file
 * swapped while the VM runs), as disk_open does. When `path` names the very
 * file `cur` has open for writing (a raw image grown in place, say), the
 * new disk shares cur's open file and so its lock, which a second open
 * could not take beside cur's; a writable qcow2 image is not opened twice
 * that way (two copies of its metadata) and is refused. `cur` stays open
 * and usable either way: the caller closes it once the new disk serves. */
int disk_open_successor(const struct disk *cur, const char *path, const struct disk_open_opts *opts,
			struct disk **out, char *err, size_t errlen);

/* What the file's first bytes say: QCOW2 with the qcow2 magic (and whether
 * its header names a backing file), else RAW. Opens it read-only and takes
 * no lock. For a caller that settles a format once, before any guest has
 * run on the image (see src/vmm/drive_format.c for the rules); never part
 * of opening. */
struct disk_probe {
	enum disk_format format;
	bool names_backing_file;
};
int disk_probe_format(const char *path, struct disk_probe *out, char *err, size_t errlen);

uint64_t disk_size(const struct disk *d);
bool disk_read_only(const struct disk *d);
enum disk_format disk_format(const struct disk *d);

int disk_preadv(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t off);
int disk_pwritev(struct disk *d, const struct iovec *iov, int iovcnt, uint64_t off);
int disk_flush(struct disk *d);                 /* reaches stable storage */
int disk_discard(struct disk *d, uint64_t off, uint64_t len);
int disk_write_zeroes(struct disk *d, uint64_t off, uint64_t len);

/*
 * Additions beyond what virtio-blk needs.
 */

/* One line for humans: format, virtual size, cluster size, backing chain. */
void disk_describe(struct disk *d, char *buf, size_t len);

struct disk_create_opts {
	uint64_t size;            /* bytes; 0 with a backing file: its size */
	unsigned cluster_bits;    /* 9..21; 0 means 16 (64 KiB clusters) */
	const char *backing_file; /* NULL for none. Stored as given; a relative
				   * name is relative to the new image's directory.
				   * Its own backing files (if any) must lie beneath
				   * its directory */
	enum disk_format backing_format; /* RAW or QCOW2, recorded in the image
					  * (a backing file's format is never probed) */
};

/* Create a new qcow2 (version 3, 16-bit refcounts) image; refuses to replace
 * an existing file. A copy-on-write overlay is an image with a backing file. */
int disk_create_qcow2(const char *path, const struct disk_create_opts *opts,
		      char *err, size_t errlen);

#endif

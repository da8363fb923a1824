/*
 * Creating qcow2 images (version 3, 16-bit refcounts, zlib compression type,
 * no lazy refcounts): a header cluster, then the refcount table, the
 * refcount blocks that count everything written here, and an all-zero L1
 * table large enough for the virtual size. With a backing file, the new
 * image is a copy-on-write overlay over it; the backing file is opened once
 * (read-only, in the format given) to check it, and that format is recorded.
 */
#include "backend/disk/qcow2_meta.h"
#include "backend/disk/disk_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static int check_backing(const char *path, const struct disk_create_opts *opts,
			 char *fmt_out, size_t fmt_len, uint64_t *size, char *err, size_t errlen)
{
	const char *name = opts->backing_file;
	char full[4096];
	if (strlen(name) > QCOW2_MAX_BACKING_NAME) {
		disk_err(err, errlen, path, "backing file name longer than %d bytes",
			 QCOW2_MAX_BACKING_NAME);
		return -ENAMETOOLONG;
	}
	if (name[0] == '/' || !strchr(path, '/')) {
		snprintf(full, sizeof(full), "%s", name);
	} else {
		const char *slash = strrchr(path, '/');
		int dirlen = (int)(slash - path);
		int n = snprintf(full, sizeof(full), "%.*s/%s", dirlen ? dirlen : 1,
				 dirlen ? path : "/", name);
		if (n < 0 || (size_t)n >= sizeof(full)) {
			disk_err(err, errlen, path, "backing file path too long");
			return -ENAMETOOLONG;
		}
	}
	if (opts->backing_format != DISK_FORMAT_RAW && opts->backing_format != DISK_FORMAT_QCOW2) {
		disk_err(err, errlen, path, "the backing file's format must be given (it is "
			 "recorded in the image, never guessed)");
		return -EINVAL;
	}
	struct disk *b;
	char sub[768];
	/* The user named this backing file; its own chain, if any, must lie
	 * beneath its directory. */
	struct disk_open_opts o = { .format = opts->backing_format, .read_only = true, .backing = true };
	int ret = disk_open(full, &o, &b, sub, sizeof(sub));
	if (ret < 0) {
		disk_err(err, errlen, path, "backing file: %s", sub);
		return ret;
	}
	snprintf(fmt_out, fmt_len, "%s", disk_format(b) == DISK_FORMAT_QCOW2 ? "qcow2" : "raw");
	*size = disk_size(b);
	disk_close(b);
	return 0;
}

int disk_create_qcow2(const char *path, const struct disk_create_opts *opts,
		      char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = 0;
	if (!path || !opts) {
		disk_err(err, errlen, path, "missing arguments");
		return -EINVAL;
	}
	struct qcow2_header h;
	memset(&h, 0, sizeof(h));
	h.cluster_bits = opts->cluster_bits ? opts->cluster_bits : 16;
	if (h.cluster_bits < QCOW2_MIN_CLUSTER_BITS || h.cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
		disk_err(err, errlen, path, "cluster_bits %u out of range %d..%d", h.cluster_bits,
			 QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS);
		return -EINVAL;
	}
	h.size = opts->size;
	h.refcount_order = 4;
	int ret;
	if (opts->backing_file && opts->backing_file[0]) {
		uint64_t bsize;
		ret = check_backing(path, opts, h.backing_format, sizeof(h.backing_format), &bsize,
				    err, errlen);
		if (ret < 0)
			return ret;
		snprintf(h.backing_file, sizeof(h.backing_file), "%s", opts->backing_file);
		if (h.size == 0)
			h.size = bsize;
	}

	const uint64_t cs = 1ull << h.cluster_bits;
	const unsigned cover_bits = 2 * h.cluster_bits - 3;
	uint64_t l1 = (h.size >> cover_bits) + ((h.size & ((1ull << cover_bits) - 1)) != 0);
	if (l1 > QCOW2_MAX_L1_ENTRIES) {
		disk_err(err, errlen, path, "virtual size too large for %llu-byte clusters",
			 (unsigned long long)cs);
		return -EFBIG;
	}
	uint64_t l1c = (l1 * 8 + cs - 1) / cs;
	const uint64_t per_block = cs * 8 / 16;
	uint64_t nb = 1, tc = 1;
	for (;;) {
		uint64_t total = 1 + tc + nb + l1c;
		uint64_t need_nb = (total + per_block - 1) / per_block;
		uint64_t need_tc = (need_nb * 8 + cs - 1) / cs;
		if (need_nb <= nb && need_tc <= tc)
			break;
		nb = need_nb > nb ? need_nb : nb;
		tc = need_tc > tc ? need_tc : tc;
	}
	uint64_t total = 1 + tc + nb + l1c;
	h.refcount_table_offset = cs;
	h.refcount_table_clusters = (uint32_t)tc;
	h.l1_table_offset = (1 + tc + nb) * cs;
	h.l1_size = (uint32_t)l1;

	uint8_t *buf = calloc(1, cs);
	if (!buf) {
		disk_err(err, errlen, path, "out of memory");
		return -ENOMEM;
	}
	if (qcow2_header_build(&h, buf, cs) < 0) {
		free(buf);
		disk_err(err, errlen, path, "header does not fit in a cluster");
		return -EINVAL;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		free(buf);
		disk_err(err, errlen, path, "cannot create: %s", strerror(-ret));
		return ret;
	}
	flock(fd, LOCK_EX | LOCK_NB);
	ret = disk_pwrite_full(fd, buf, cs, 0);
	/* Refcount table: entry i points at block i, placed after it. */
	for (uint64_t c = 0; ret == 0 && c < tc; c++) {
		memset(buf, 0, cs);
		for (uint64_t i = 0; i < cs / 8; i++) {
			uint64_t bi = c * (cs / 8) + i;
			if (bi < nb)
				qcow2_put_be64(buf + i * 8, (1 + tc + bi) * cs);
		}
		ret = disk_pwrite_full(fd, buf, cs, (1 + c) * cs);
	}
	/* Refcount blocks: every cluster written here has refcount 1. */
	for (uint64_t b = 0; ret == 0 && b < nb; b++) {
		memset(buf, 0, cs);
		for (uint64_t i = 0; i < per_block; i++)
			if (b * per_block + i < total)
				qcow2_rb_set(buf, i, 4, 1);
		ret = disk_pwrite_full(fd, buf, cs, (1 + tc + b) * cs);
	}
	/* The L1 table is all zeros: extending the file provides it. */
	if (ret == 0 && ftruncate(fd, (off_t)(total * cs)) < 0)
		ret = -errno;
	if (ret == 0 && fdatasync(fd) < 0)
		ret = -errno;
	free(buf);
	close(fd);
	if (ret < 0) {
		unlink(path);
		disk_err(err, errlen, path, "cannot write the new image: %s", strerror(-ret));
	}
	return ret;
}

/*
 * disk_tool: a small command-line front end to skiff's disk backends, for the
 * interoperability tests (tests/unit/test_qcow2_interop.py) and for poking at
 * images by hand.
 *
 * Without -f the image's format is probed first (disk_probe_format), as a
 * user's tool may do; skiff's VMM never does that at open. -b follows a
 * backing chain beneath the image's directory, -B DIR (repeatable) also
 * beneath DIR; without either a backing file is refused.
 *
 *   disk_tool [-f raw|qcow2] [-r] info IMG
 *   disk_tool [-f ...] read IMG OFF LEN > out        (read-only open)
 *   disk_tool [-f ...] write IMG OFF < in
 *   disk_tool [-f ...] zero IMG OFF LEN
 *   disk_tool [-f ...] discard IMG OFF LEN
 *   disk_tool [-f ...] [-r] open IMG                 (open, close; for errors)
 *   disk_tool [-f ...] batch IMG < commands
 *   disk_tool create IMG SIZE [CLUSTER_BITS [BACKING [raw|qcow2]]]
 *
 * batch reads one command a line, all in one open session:
 *   write OFF LEN SEED | zero OFF LEN | discard OFF LEN | flush |
 *   read OFF LEN SEED   (checks the pattern) | readzero OFF LEN |
 *   say N   (prints N on stdout once the commands before it are done)
 * The pattern byte at disk offset p for seed s is
 *   ((p + 7 * s) mod 251 + s) mod 256
 * (period 251, prime, so data landing in the wrong place shows).
 * Exit status 0 on success, 1 with a message on stderr otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/disk/disk.h"

static uint8_t pattern(uint64_t p, uint64_t seed)
{
	return (uint8_t)((p + seed * 7) % 251 + seed);
}

static int usage(void)
{
	fprintf(stderr, "usage: disk_tool [-f raw|qcow2] [-r] [-b] [-B DIR] info|read|write|zero|discard|open|batch IMG ...\n"
			"       disk_tool create IMG SIZE [CLUSTER_BITS [BACKING [FORMAT]]]\n");
	return 2;
}

static uint64_t num(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end) {
		fprintf(stderr, "disk_tool: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static int fail(const char *what, int ret)
{
	fprintf(stderr, "disk_tool: %s: %s\n", what, strerror(-ret));
	return 1;
}

/* Reads [off, off + len) in pieces of varying size, each through two
 * iovecs, so the read path sees misaligned and split requests. */
static int do_read(struct disk *d, uint64_t off, uint64_t len, FILE *out)
{
	size_t cap = 3u << 20;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return fail("read", -ENOMEM);
	uint64_t step = 0;
	while (len > 0) {
		size_t n = (size_t)(len < cap ? len : cap);
		static const size_t sizes[] = { 3u << 20, 4096, 65536 + 17, 1 << 20, 511 };
		if (n > sizes[step % 5])
			n = sizes[step % 5];
		step++;
		size_t a = n / 3;
		struct iovec iov[2] = { { buf, a }, { buf + a, n - a } };
		int ret = disk_preadv(d, iov, 2, off);
		if (ret < 0) {
			free(buf);
			return fail("read", ret);
		}
		if (out && fwrite(buf, 1, n, out) != n) {
			free(buf);
			return fail("write to stdout", -EIO);
		}
		off += n;
		len -= n;
	}
	free(buf);
	return 0;
}

static int do_write_stdin(struct disk *d, uint64_t off)
{
	size_t cap = 1u << 20;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return fail("write", -ENOMEM);
	size_t n;
	while ((n = fread(buf, 1, cap, stdin)) > 0) {
		struct iovec iov = { buf, n };
		int ret = disk_pwritev(d, &iov, 1, off);
		if (ret < 0) {
			free(buf);
			return fail("write", ret);
		}
		off += n;
	}
	free(buf);
	int ret = disk_flush(d);
	return ret < 0 ? fail("flush", ret) : 0;
}

static int do_batch(struct disk *d)
{
	char line[256];
	unsigned lineno = 0;
	while (fgets(line, sizeof(line), stdin)) {
		lineno++;
		char cmd[32];
		unsigned long long a = 0, b = 0, c = 0;
		int k = sscanf(line, "%31s %lli %lli %lli", cmd, &a, &b, &c);
		if (k < 1)
			continue;
		int ret = 0;
		if (!strcmp(cmd, "write") && k == 4) {
			uint8_t *buf = malloc(b ? b : 1);
			if (!buf)
				return fail("batch", -ENOMEM);
			for (uint64_t i = 0; i < b; i++)
				buf[i] = pattern(a + i, c);
			size_t h = (size_t)b / 2;
			struct iovec iov[2] = { { buf, h }, { buf + h, b - h } };
			ret = disk_pwritev(d, iov, 2, a);
			free(buf);
		} else if ((!strcmp(cmd, "read") && k == 4) || (!strcmp(cmd, "readzero") && k == 3)) {
			uint8_t *buf = malloc(b ? b : 1);
			if (!buf)
				return fail("batch", -ENOMEM);
			struct iovec iov = { buf, b };
			ret = disk_preadv(d, &iov, 1, a);
			for (uint64_t i = 0; ret == 0 && i < b; i++) {
				uint8_t want = k == 4 ? pattern(a + i, c) : 0;
				if (buf[i] != want) {
					fprintf(stderr, "disk_tool: line %u: byte at %llu is 0x%02x, expected 0x%02x\n",
						lineno, a + i, buf[i], want);
					free(buf);
					return 1;
				}
			}
			free(buf);
		} else if (!strcmp(cmd, "zero") && k == 3) {
			ret = disk_write_zeroes(d, a, b);
		} else if (!strcmp(cmd, "discard") && k == 3) {
			ret = disk_discard(d, a, b);
		} else if (!strcmp(cmd, "flush")) {
			ret = disk_flush(d);
		} else if (!strcmp(cmd, "say") && k == 2) {
			/* A progress mark: the commands before it are done. */
			printf("%llu\n", a);
			fflush(stdout);
		} else {
			fprintf(stderr, "disk_tool: line %u: bad command\n", lineno);
			return 2;
		}
		if (ret < 0) {
			fprintf(stderr, "disk_tool: line %u: %s: %s\n", lineno, cmd, strerror(-ret));
			return 1;
		}
	}
	int ret = disk_flush(d);
	return ret < 0 ? fail("flush", ret) : 0;
}

int main(int argc, char **argv)
{
	struct disk_open_opts opts = { .format = DISK_FORMAT_NONE, .read_only = false };
	const char *dirs[DISK_MAX_BACKING_DIRS];
	int opt;
	while ((opt = getopt(argc, argv, "+f:rbB:")) != -1) {
		if (opt == 'f') {
			if (!strcmp(optarg, "raw"))
				opts.format = DISK_FORMAT_RAW;
			else if (!strcmp(optarg, "qcow2"))
				opts.format = DISK_FORMAT_QCOW2;
			else
				return usage();
		} else if (opt == 'r') {
			opts.read_only = true;
		} else if (opt == 'b') {
			opts.backing = true;
		} else if (opt == 'B' && opts.nbacking_dirs < DISK_MAX_BACKING_DIRS) {
			dirs[opts.nbacking_dirs++] = optarg;
			opts.backing_dirs = dirs;
			opts.backing = true;
		} else {
			return usage();
		}
	}
	if (argc - optind < 2)
		return usage();
	const char *cmd = argv[optind], *img = argv[optind + 1];
	char **args = argv + optind + 2;
	int nargs = argc - optind - 2;
	char err[1024];

	if (!strcmp(cmd, "create")) {
		if (nargs < 1)
			return usage();
		struct disk_create_opts c = { .size = num(args[0]) };
		if (nargs > 1)
			c.cluster_bits = (unsigned)num(args[1]);
		if (nargs > 2)
			c.backing_file = args[2];
		if (nargs > 3)
			c.backing_format = !strcmp(args[3], "raw") ? DISK_FORMAT_RAW :
					   !strcmp(args[3], "qcow2") ? DISK_FORMAT_QCOW2 : DISK_FORMAT_NONE;
		if (disk_create_qcow2(img, &c, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		return 0;
	}
	if (!strcmp(cmd, "read") || !strcmp(cmd, "info"))
		opts.read_only = true;
	struct disk *d;
	struct disk_probe probe;
	if (opts.format == DISK_FORMAT_NONE) {
		if (disk_probe_format(img, &probe, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		opts.format = probe.format;
	}
	if (disk_open(img, &opts, &d, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	int ret = 0;
	if (!strcmp(cmd, "info")) {
		char line[2048];
		disk_describe(d, line, sizeof(line));
		printf("%s\nsize %" PRIu64 "\n", line, disk_size(d));
	} else if (!strcmp(cmd, "open")) {
		ret = 0;
	} else if (!strcmp(cmd, "read") && nargs == 2) {
		ret = do_read(d, num(args[0]), num(args[1]), stdout);
	} else if (!strcmp(cmd, "write") && nargs == 1) {
		ret = do_write_stdin(d, num(args[0]));
	} else if ((!strcmp(cmd, "zero") || !strcmp(cmd, "discard")) && nargs == 2) {
		int r = !strcmp(cmd, "zero") ? disk_write_zeroes(d, num(args[0]), num(args[1]))
					     : disk_discard(d, num(args[0]), num(args[1]));
		if (r == 0)
			r = disk_flush(d);
		ret = r < 0 ? fail(cmd, r) : 0;
	} else if (!strcmp(cmd, "batch")) {
		ret = do_batch(d);
	} else {
		ret = usage();
	}
	disk_close(d);
	if (fflush(stdout) != 0)
		ret = 1;
	return ret;
}

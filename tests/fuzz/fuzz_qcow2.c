/*
 * libFuzzer target for the qcow2 backend (src/backend/disk/): the input is
 * the whole image file. It is written to a file in a private directory on
 * tmpfs that also holds two possible backing files ("base.raw", and
 * "base.qcow2" over it), then opened read-write as qcow2; if that succeeds
 * the target reads, writes, discards and write-zeroes at offsets derived
 * from the input, flushes, closes, reopens read-only and reads again.
 * Whatever the input, the backend must not crash, leak, hang, or write to
 * the backing files (checked after each run).
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/disk/disk.h"

#define BASE_SIZE (256u * 1024)
#define BIG_LEN (4u << 20)

struct fuzz_env {
	char dir[128];
	char img[192];
	char base_raw[192];
	struct stat base_st;
	uint8_t *buf;
};

static struct fuzz_env *env;

/* Every run made its own directory; leave none behind (a crash keeps it,
 * with the files that show what happened). */
static void cleanup(void)
{
	char path[192];
	snprintf(path, sizeof(path), "%s/base.qcow2", env->dir);
	unlink(path);
	unlink(env->img);
	unlink(env->base_raw);
	rmdir(env->dir);
}

static struct fuzz_env *env_get(void)
{
	if (env)
		return env;
	env = calloc(1, sizeof(*env));
	snprintf(env->dir, sizeof(env->dir), "%s/skiff-fuzz-qcow2-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(env->dir)) {
		perror("mkdtemp");
		exit(1);
	}
	atexit(cleanup);
	snprintf(env->img, sizeof(env->img), "%s/img.qcow2", env->dir);
	snprintf(env->base_raw, sizeof(env->base_raw), "%s/base.raw", env->dir);
	uint8_t *b = malloc(BASE_SIZE);
	for (unsigned i = 0; i < BASE_SIZE; i++)
		b[i] = (uint8_t)(i * 13 + (i >> 9));
	int fd = open(env->base_raw, O_RDWR | O_CREAT | O_TRUNC, 0444);
	if (fd < 0 || write(fd, b, BASE_SIZE) != BASE_SIZE) {
		perror("base.raw");
		exit(1);
	}
	close(fd);
	free(b);
	stat(env->base_raw, &env->base_st);
	char path[192], err[256];
	snprintf(path, sizeof(path), "%s/base.qcow2", env->dir);
	struct disk_create_opts co = { .size = 0, .cluster_bits = 12, .backing_file = "base.raw",
				       .backing_format = DISK_FORMAT_RAW };
	if (disk_create_qcow2(path, &co, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	chmod(path, 0444);
	env->buf = malloc(BIG_LEN);
	return env;
}

static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void exercise(struct disk *d, uint64_t seed, uint8_t *buf, bool write)
{
	uint64_t size = disk_size(d);
	if (!size)
		return;
	for (int i = 0; i < 10; i++) {
		uint64_t r = mix(&seed);
		uint64_t off;
		switch (i % 4) {
		case 0: off = 0; break;
		case 1: off = size - 1 - (r % (size < 70000 ? size : 70000)); break;
		default: off = r % size; break;
		}
		/* Mostly short requests; now and then a long one, enough to
		 * outgrow a small image's refcount table. */
		bool big = (mix(&seed) & 3) == 0;
		uint64_t len = 1 + (mix(&seed) % (big ? BIG_LEN : (1 << 17)));
		if (len > size - off)
			len = size - off;
		struct iovec iov[2] = { { buf, (size_t)len / 2 }, { buf + len / 2, (size_t)(len - len / 2) } };
		unsigned op = write ? (unsigned)(r >> 60) % 5 : 0;
		switch (op) {
		case 0:
			disk_preadv(d, iov, 2, off);
			break;
		case 1:
		case 2:
			memset(buf, (int)(r >> 8), (size_t)len);
			disk_pwritev(d, iov, 2, off);
			break;
		case 3:
			disk_write_zeroes(d, off, len);
			break;
		default:
			disk_discard(d, off, len);
			break;
		}
	}
	if (write)
		disk_flush(d);
}

static void run_one(const uint8_t *data, size_t size)
{
	struct fuzz_env *env = env_get();
	int fd = open(env->img, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return;
	}
	close(fd);
	uint64_t seed = 1469598103934665603ull;
	for (size_t i = 0; i < size; i += 61)
		seed = (seed ^ data[i]) * 1099511628211ull;

	char err[1024];
	struct disk *d;
	struct disk_open_opts rw = { DISK_FORMAT_QCOW2, false };
	if (disk_open(env->img, &rw, &d, err, sizeof(err)) == 0) {
		exercise(d, seed, env->buf, true);
		char line[2048];
		disk_describe(d, line, sizeof(line));
		disk_close(d);
	} else if (!err[0]) {
		fprintf(stderr, "refused without a message\n");
		abort();
	}
	struct disk_open_opts ro = { DISK_FORMAT_QCOW2, true };
	if (disk_open(env->img, &ro, &d, err, sizeof(err)) == 0) {
		exercise(d, seed ^ 1, env->buf, false);
		disk_close(d);
	}
	/* The backing files must be untouched. */
	struct stat st;
	if (stat(env->base_raw, &st) < 0 || st.st_size != env->base_st.st_size ||
	    st.st_mtim.tv_sec != env->base_st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != env->base_st.st_mtim.tv_nsec) {
		fprintf(stderr, "backing file modified\n");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run_one(data, size);
	return 0;
}

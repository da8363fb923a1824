/*
 * libFuzzer target for the boot loader (src/machine/loader.c): the kernel
 * Image header and, for an EFI-stub Image, the PE/COFF section table behind
 * it, the sizes they claim (image_size, section pointers) against the
 * file's, and the placement of kernel, initrd and device tree in guest RAM
 * of any size at any base (also across the 4 GiB line the device tree must
 * stay under). Kernel and initrd are files a user names: hostile ones must
 * get a message, never a write outside guest RAM or an overlap.
 *
 * Input: byte 0 picks the RAM base, byte 1 the RAM size, bytes 2-3 how
 * many of the remaining bytes are the kernel file; the rest is the initrd
 * file (none when empty). Both are written to files in a directory of this
 * process's own (mkdtemp) and loaded as skiff loads them. Afterwards the
 * layout must hold: everything inside RAM, nothing overlapping.
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <fcntl.h>
#include <libfdt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/loader.h"

struct fuzz_env {
	char dir[64], kernel[96], initrd[96];
	uint8_t fdt[256];
};

static struct fuzz_env *env;

static void cleanup(void)
{
	unlink(env->kernel);
	unlink(env->initrd);
	rmdir(env->dir);
}

static void die(const char *what)
{
	perror(what);
	exit(1);   /* the harness itself, not the input */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	env = calloc(1, sizeof(*env));
	if (!env)
		die("calloc");
	snprintf(env->dir, sizeof(env->dir), "%s/skiff-fuzz-loader-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(env->dir))
		die("mkdtemp");
	snprintf(env->kernel, sizeof(env->kernel), "%s/Image", env->dir);
	snprintf(env->initrd, sizeof(env->initrd), "%s/initrd", env->dir);
	atexit(cleanup);
	/* The device tree is skiff's own: a small valid one. */
	if (fdt_create_empty_tree(env->fdt, sizeof(env->fdt)) != 0)
		die("fdt_create_empty_tree");
	return 0;
}

static void put_file(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n))
		die(path);
	close(fd);
}

static bool inside(const struct gram *ram, uint64_t start, uint64_t len)
{
	return start >= ram->base && len <= ram->size && start - ram->base <= ram->size - len;
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!env)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 4)
		return 0;
	static const uint64_t bases[4] = {
		0x80000000ull,            /* the board's */
		0xffc00000ull,            /* RAM crossing 4 GiB */
		0x100000000ull,           /* all of it above 4 GiB */
		0x1000ull,                /* low, not 2 MiB aligned */
	};
	uint64_t base = bases[data[0] & 3];
	/* 256 KiB to 64 MiB, in 256 KiB steps. */
	uint64_t ram_size = ((uint64_t)data[1] + 1) << 18;
	size_t klen = (size_t)(data[2] | data[3] << 8);
	data += 4;
	size -= 4;
	if (klen > size)
		klen = size;

	struct gram ram;
	if (gram_init(&ram, base, ram_size) != 0)
		die("gram_init");
	put_file(env->kernel, data, klen);
	put_file(env->initrd, data + klen, size - klen);

	char err[512];
	struct boot_layout lay;
	const char *e = loader_load_kernel(&ram, env->kernel, &lay, err, sizeof(err));
	if (!e) {
		if (!inside(&ram, lay.kernel_addr, lay.kernel_size) || lay.kernel_file_size != klen ||
		    lay.kernel_size < klen)
			abort();
		if (size > klen) {
			e = loader_load_initrd(&ram, env->initrd, &lay, err, sizeof(err));
			if (!e && (!inside(&ram, lay.initrd_start, lay.initrd_end - lay.initrd_start) ||
				   lay.initrd_end - lay.initrd_start != size - klen ||
				   overlap(lay.kernel_addr, lay.kernel_size, lay.initrd_start,
					   lay.initrd_end - lay.initrd_start)))
				abort();
		}
		if (!e) {
			e = loader_load_dtb(&ram, env->fdt, &lay, err, sizeof(err));
			if (!e && (!inside(&ram, lay.dtb_addr, lay.dtb_size) || lay.dtb_addr % 8 ||
				   (lay.dtb_addr + lay.dtb_size > 0x100000000ull && base < 0x100000000ull) ||
				   overlap(lay.dtb_addr, lay.dtb_size, lay.kernel_addr, lay.kernel_size) ||
				   overlap(lay.dtb_addr, lay.dtb_size, lay.initrd_start,
					   lay.initrd_end - lay.initrd_start)))
				abort();
		}
	}
	if (e && (e != err || !err[0]))
		abort();   /* a failure always says why */
	gram_destroy(&ram);
	return 0;
}

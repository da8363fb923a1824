/*
 * Unit tests for the boot loader (src/machine/loader.c): a RISC-V Image is
 * loaded at RAM base + 2 MiB byte for byte; non-Images (text, ELF, gzip),
 * short and truncated files, big-endian kernels, kernels or initrds that do
 * not fit are refused with messages naming the file and the problem; the
 * initrd and DTB land where the Linux boot protocol accepts them.
 */
#include <fcntl.h>
#include <libfdt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine/board.h"
#include "machine/fdt.h"
#include "machine/loader.h"
#include "machine_test.h"

#define MIB (1024ull * 1024)

struct files {
	char dir[1024];
	char path[1536];
};

static const char *file_path(struct files *f, const char *name)
{
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
	return f->path;
}

static const char *make_file(struct files *f, const char *name, const void *data, size_t len)
{
	const char *p = file_path(f, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		if (write(fd, data, len) != (ssize_t)len)
			printf("short write to %s\n", p);
		close(fd);
	}
	return p;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A plausible Image: header, then a byte pattern. */
static uint8_t *fake_image(size_t len, uint64_t image_size)
{
	uint8_t *b = calloc(1, len);
	for (size_t i = 64; i < len; i++)
		b[i] = (uint8_t)(i * 7 + 3);
	put_le32(b + 0, 0x0000006f);          /* a jump, as the real one has */
	put_le64(b + 8, BOARD_KERNEL_OFFSET);  /* text_offset */
	put_le64(b + 16, image_size);
	put_le64(b + 24, 0);                   /* flags: little-endian */
	put_le32(b + 32, 2);                   /* header version 0.2 */
	put_le64(b + 48, 0x5643534952ull);     /* "RISCV" */
	memcpy(b + 56, "RSC\x05", 4);
	return b;
}

static bool has(const char *msg, const char *a, const char *b)
{
	return msg && strstr(msg, a) && (!b || strstr(msg, b));
}

static void test_kernel(struct mt *t, struct files *f)
{
	struct gram ram;
	MT_EQ(t, gram_init(&ram, BOARD_RAM_BASE, 64 * MIB), 0);
	struct boot_layout lay;
	char err[512];
	const char *e;

	size_t len = 64 * 1024 + 123;
	uint8_t *img = fake_image(len, 1 * MIB);
	const char *p = make_file(f, "Image", img, len);
	e = loader_load_kernel(&ram, p, &lay, err, sizeof(err));
	MT_CHECK(t, e == NULL);
	if (e)
		printf("%s\n", e);
	MT_EQ(t, lay.kernel_addr, BOARD_RAM_BASE + BOARD_KERNEL_OFFSET);
	MT_EQ(t, lay.kernel_size, 1 * MIB);
	MT_EQ(t, lay.kernel_file_size, len);
	void *in_ram = gram_ptr(&ram, lay.kernel_addr, len);
	MT_CHECK(t, in_ram && !memcmp(in_ram, img, len));

	/* image_size 0: the file size is the footprint. */
	put_le64(img + 16, 0);
	p = make_file(f, "Image0", img, len);
	MT_CHECK(t, loader_load_kernel(&ram, p, &lay, err, sizeof(err)) == NULL);
	MT_EQ(t, lay.kernel_size, len);

	/* Too big for RAM (with the DTB area). */
	put_le64(img + 16, 63 * MIB);
	p = make_file(f, "Huge", img, len);
	e = loader_load_kernel(&ram, p, &lay, err, sizeof(err));
	MT_CHECK(t, has(e, p, "guest RAM"));

	/* Big-endian flag. */
	put_le64(img + 16, 1 * MIB);
	put_le64(img + 24, 1);
	p = make_file(f, "BigEndian", img, len);
	e = loader_load_kernel(&ram, p, &lay, err, sizeof(err));
	MT_CHECK(t, has(e, p, "big-endian"));
	put_le64(img + 24, 0);

	/* Not an Image at all. */
	char text[200];
	memset(text, 'x', sizeof(text));
	p = make_file(f, "notes.txt", text, sizeof(text));
	e = loader_load_kernel(&ram, p, &lay, err, sizeof(err));
	MT_CHECK(t, has(e, p, "not a RISC-V Image"));
	MT_CHECK(t, has(e, "RSC", NULL));

	uint8_t elf[256] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
	p = make_file(f, "vmlinux", elf, sizeof(elf));
	e = loader_load_kernel(&ram, p, &lay, err, sizeof(err));
	MT_CHECK(t, has(e, p, "ELF"));

	uint8_t gz[256] = { 0x1f, 0x8b, 8 };
	p = make_file(f, "Image.gz", gz, sizeof(gz));
	e = loader_load_kernel(&ram, p, &lay, err, sizeof(err));
	MT_CHECK(t, has(e, p, "gzip"));

	/* Truncated: shorter than the header ... */
	p = make_file(f, "Short", img, 40);
	e = loader_load_kernel(&ram, p, &lay, err, sizeof(err));
	MT_CHECK(t, has(e, p, "too short"));

	/* ... or an EFI-stub Image cut short of its PE/COFF sections. */
	uint8_t *pe = fake_image(0x1000, 4 * MIB);
	memcpy(pe, "MZ", 2);
	memset(pe + 0x40, 0, 0x100);           /* PE and section headers */
	put_le32(pe + 60, 0x40);               /* res3: PE header offset */
	memcpy(pe + 0x40, "PE\0\0", 4);
	pe[0x40 + 6] = 1;                      /* one section */
	pe[0x40 + 20] = 0;                     /* no optional header */
	put_le32(pe + 0x58 + 16, 0x20000);     /* SizeOfRawData */
	put_le32(pe + 0x58 + 20, 0x200);       /* PointerToRawData */
	p = make_file(f, "Truncated", pe, 0x1000);
	e = loader_load_kernel(&ram, p, &lay, err, sizeof(err));
	MT_CHECK(t, has(e, p, "truncated"));
	put_le32(pe + 0x58 + 16, 0xe00);       /* now the file is whole */
	p = make_file(f, "Whole", pe, 0x1000);
	MT_CHECK(t, loader_load_kernel(&ram, p, &lay, err, sizeof(err)) == NULL);
	free(pe);

	/* Missing, empty, a directory. */
	e = loader_load_kernel(&ram, file_path(f, "missing"), &lay, err, sizeof(err));
	MT_CHECK(t, has(e, "missing", "cannot open"));
	p = make_file(f, "empty", "", 0);
	e = loader_load_kernel(&ram, p, &lay, err, sizeof(err));
	MT_CHECK(t, has(e, p, "empty"));
	e = loader_load_kernel(&ram, f->dir, &lay, err, sizeof(err));
	MT_CHECK(t, has(e, "not a regular file", NULL));

	free(img);
	gram_destroy(&ram);
}

static void test_initrd_dtb(struct mt *t, struct files *f, uint64_t ram_size)
{
	struct gram ram;
	MT_EQ(t, gram_init(&ram, BOARD_RAM_BASE, ram_size), 0);
	struct boot_layout lay;
	char err[512];
	const char *e;

	size_t klen = 4096;
	uint8_t *img = fake_image(klen, 8 * MIB);
	char kpath[1536];
	snprintf(kpath, sizeof(kpath), "%s", make_file(f, "Image", img, klen));
	free(img);

	/* An initrd before any kernel is refused. */
	memset(&lay, 0, sizeof(lay));
	size_t ilen = 3 * MIB + 17;
	uint8_t *initrd = malloc(ilen);
	for (size_t i = 0; i < ilen; i++)
		initrd[i] = (uint8_t)(i * 13);
	const char *ipath = make_file(f, "initrd.img", initrd, ilen);
	e = loader_load_initrd(&ram, ipath, &lay, err, sizeof(err));
	MT_CHECK(t, has(e, ipath, "kernel first"));

	MT_CHECK(t, loader_load_kernel(&ram, kpath, &lay, err, sizeof(err)) == NULL);
	e = loader_load_initrd(&ram, ipath, &lay, err, sizeof(err));
	MT_CHECK(t, e == NULL);
	if (e)
		printf("%s\n", e);
	MT_EQ(t, lay.initrd_start % GRAM_PAGE_SIZE, 0);
	MT_EQ(t, lay.initrd_end - lay.initrd_start, ilen);
	MT_CHECK(t, lay.initrd_start >= lay.kernel_addr + lay.kernel_size);
	void *in_ram = gram_ptr(&ram, lay.initrd_start, ilen);
	MT_CHECK(t, in_ram && !memcmp(in_ram, initrd, ilen));
	free(initrd);

	/* The device tree, with the initrd addresses in /chosen. */
	static uint8_t fdt[BOARD_FDT_MAX];
	struct board_fdt_desc d = {
		.nharts = 1, .isa = BOARD_FDT_ISA, .isa_extensions = BOARD_FDT_ISA_EXTENSIONS,
		.n_isa_extensions = BOARD_FDT_N_ISA_EXTENSIONS,
		.ram_base = ram.base, .ram_size = ram.size, .bootargs = "console=ttyS0",
		.initrd_start = lay.initrd_start, .initrd_end = lay.initrd_end,
	};
	MT_CHECK(t, board_fdt_build(&d, fdt, sizeof(fdt), err, sizeof(err)) == NULL);
	e = loader_load_dtb(&ram, fdt, &lay, err, sizeof(err));
	MT_CHECK(t, e == NULL);
	if (e)
		printf("%s\n", e);
	MT_EQ(t, lay.dtb_addr % 8, 0);
	MT_EQ(t, lay.dtb_size, fdt_totalsize(fdt));
	MT_CHECK(t, lay.dtb_addr >= lay.initrd_end);
	MT_CHECK(t, lay.dtb_addr + lay.dtb_size <= ram.base + ram.size);
	MT_CHECK(t, lay.dtb_addr + lay.dtb_size <= 0x100000000ull);
	in_ram = gram_ptr(&ram, lay.dtb_addr, lay.dtb_size);
	MT_CHECK(t, in_ram && !memcmp(in_ram, fdt, lay.dtb_size));
	MT_EQ(t, fdt_check_header(in_ram), 0);

	/* A garbage "device tree" is refused. */
	uint8_t junk[64] = { 0 };
	MT_CHECK(t, loader_load_dtb(&ram, junk, &lay, err, sizeof(err)) != NULL);

	/* An initrd that does not fit (a sparse file bigger than RAM). */
	const char *bpath = file_path(f, "big.img");
	int fd = open(bpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	MT_CHECK(t, fd >= 0 && ftruncate(fd, (off_t)ram_size) == 0);
	if (fd >= 0)
		close(fd);
	struct boot_layout before = lay;
	e = loader_load_initrd(&ram, bpath, &lay, err, sizeof(err));
	MT_CHECK(t, has(e, bpath, "does not fit"));
	MT_CHECK(t, lay.initrd_start == before.initrd_start);
	unlink(bpath);
	gram_destroy(&ram);
}

static void rm_dir(struct files *f)
{
	static const char *const names[] = {
		"Image", "Image0", "Huge", "BigEndian", "notes.txt", "vmlinux", "Image.gz",
		"Short", "Truncated", "Whole", "empty", "initrd.img", "big.img",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(file_path(f, names[i]));
	rmdir(f->dir);
}

int main(void)
{
	struct mt t = { 0 };
	struct files f;
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(f.dir, sizeof(f.dir), "%s/skiff-loader-XXXXXX", tmp);
	if (!mkdtemp(f.dir)) {
		printf("cannot create a temporary directory in %s\n", tmp);
		return 1;
	}
	test_kernel(&t, &f);
	test_initrd_dtb(&t, &f, 64 * MIB);
	test_initrd_dtb(&t, &f, 8192 * MIB); /* RAM past 4 GiB: DTB stays below */
	rm_dir(&f);
	return mt_report(&t);
}

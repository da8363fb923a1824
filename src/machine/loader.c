/*
 * Kernel, initrd and device tree placement (see loader.h).
 *
 * The kernel must be a flat RISC-V Image (Linux Documentation/arch/riscv/
 * boot-image-header.rst): "RSC\x05" at offset 56, little-endian fields,
 * image_size the memory it occupies once running (0 in old headers: then
 * the file size is all we know). It goes at RAM base + 2 MiB, the 2 MiB
 * alignment rv64 kernels need (Documentation/arch/riscv/boot.rst). If the
 * Image is also a PE/COFF file (an EFI-stub kernel, "MZ" at the start and
 * the PE header offset in res3), its section table tells how long the file
 * must be, which catches truncated copies.
 *
 * Layout, as QEMU's virt board does it: the device tree goes at the top of
 * RAM but below 4 GiB, 2 MiB aligned (Linux maps it early through a fixmap
 * window and needs it 8-byte aligned in RAM); the initrd goes right below,
 * page aligned, so the kernel can grow upward into free RAM.
 */
#include "machine/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fd_io.h"
#include "machine/board.h"

#define MIB (1024ull * 1024)
#define LOADER_DTB_ALIGN (2 * MIB)
#define HEADER_READ 4096 /* enough for the Image and PE/COFF headers */

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint64_t align_down(uint64_t v, uint64_t a)
{
	return v & ~(a - 1);
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* What a file that is not a RISC-V Image probably is, for the message. */
static const char *guess_format(const uint8_t *b, size_t len)
{
	if (len >= 4 && !memcmp(b, "\x7f" "ELF", 4))
		return "an ELF file (vmlinux?); use the flat Image (arch/riscv/boot/Image)";
	if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b)
		return "gzip-compressed; decompress it first (zcat FILE > Image)";
	if (len >= 8 && !memcmp(b, "MZ", 2) && !memcmp(b + 4, "zimg", 4))
		return "an EFI zboot compressed kernel; use the uncompressed Image";
	if (len >= 4 && !memcmp(b, "\x28\xb5\x2f\xfd", 4))
		return "zstd-compressed; decompress it first";
	if (len >= 3 && !memcmp(b, "BZh", 3))
		return "bzip2-compressed; decompress it first";
	if (len >= 6 && !memcmp(b, "\xfd" "7zXZ", 6))
		return "xz-compressed; decompress it first";
	return NULL;
}

const char *loader_parse_image_header(const char *name, const uint8_t *b, size_t len,
				      struct riscv_image_header *h, char *err, size_t errlen)
{
	const char *what = guess_format(b, len);
	if (len < RISCV_IMAGE_HEADER_SIZE) {
		if (what)
			return errf(err, errlen, "kernel %s: not a RISC-V Image: it is %s",
				    name, what);
		return errf(err, errlen, "kernel %s: too short to be a RISC-V Image "
			    "(%zu bytes; the header alone is %d)", name, len,
			    RISCV_IMAGE_HEADER_SIZE);
	}
	h->code0 = le32(b + 0);
	h->code1 = le32(b + 4);
	h->text_offset = le64(b + 8);
	h->image_size = le64(b + 16);
	h->flags = le64(b + 24);
	h->version = le32(b + 32);
	h->res1 = le32(b + 36);
	h->res2 = le64(b + 40);
	h->magic = le64(b + 48);
	h->magic2 = le32(b + 56);
	h->res3 = le32(b + 60);
	if (h->magic2 != RISCV_IMAGE_MAGIC2) {
		if (what)
			return errf(err, errlen, "kernel %s: not a RISC-V Image: it is %s",
				    name, what);
		return errf(err, errlen, "kernel %s: not a RISC-V Image "
			    "(no magic \"RSC\\x05\" at offset 56)", name);
	}
	if (h->flags & 1)
		return errf(err, errlen, "kernel %s: a big-endian kernel (Image flags bit 0); "
			    "skiff runs little-endian RISC-V", name);
	return NULL;
}

/* For an EFI-stub Image: the file length its PE/COFF section table needs,
 * or 0 if there is no (readable) PE header. */
static uint64_t pe_needed_length(const uint8_t *b, size_t len, const struct riscv_image_header *h)
{
	if ((h->code0 & 0xffff) != 0x5a4d) /* "MZ" */
		return 0;
	uint64_t pe = h->res3;
	if (pe < RISCV_IMAGE_HEADER_SIZE || pe + 24 > len || memcmp(b + pe, "PE\0\0", 4))
		return 0;
	unsigned nsec = le16(b + pe + 6);
	unsigned optsz = le16(b + pe + 20);
	uint64_t sec = pe + 24 + optsz;
	uint64_t need = 0;
	for (unsigned i = 0; i < nsec; i++, sec += 40) {
		if (sec + 40 > len)
			return 0; /* table beyond what we read: no verdict */
		uint64_t raw_size = le32(b + sec + 16);
		uint64_t raw_ptr = le32(b + sec + 20);
		if (raw_size && raw_ptr + raw_size > need)
			need = raw_ptr + raw_size;
	}
	return need;
}

/* Read all of `fd` (size bytes) into guest RAM at gpa, straight into the
 * guest's pages: a bounce buffer would cost a copy, and glibc keeps a freed
 * buffer of that size in the heap for the rest of the VMM's life. */
static const char *copy_file(struct gram *ram, int fd, const char *what, const char *path,
			     uint64_t gpa, uint64_t size, char *err, size_t errlen)
{
	uint8_t *dst = gram_ptr(ram, gpa, size);
	if (!dst)
		return errf(err, errlen, "%s %s: does not fit in guest RAM at %#llx", what, path,
			    (unsigned long long)gpa);
	uint64_t done = 0;
	const char *e = NULL;
	while (done < size) {
		/* Linux reads at most about 2 GiB per call; the loop does the rest. */
		ssize_t n = pread(fd, dst + done, (size_t)(size - done), (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errf(err, errlen, "%s %s: read error: %s", what, path, strerror(errno));
			break;
		}
		if (n == 0) {
			e = errf(err, errlen, "%s %s: file shrank while loading (%llu of %llu "
				 "bytes)", what, path, (unsigned long long)done,
				 (unsigned long long)size);
			break;
		}
		done += (uint64_t)n;
	}
	gram_written(ram, gpa, done);
	return e;
}

/* Open a regular, non-empty file; returns fd or -1 with err filled. */
static int open_file(const char *what, const char *path, uint64_t *size, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errf(err, errlen, "%s %s: cannot open: %s", what, path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		errf(err, errlen, "%s %s: cannot stat: %s", what, path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		errf(err, errlen, "%s %s: not a regular file", what, path);
		close(fd);
		return -1;
	}
	if (st.st_size == 0) {
		errf(err, errlen, "%s %s: the file is empty", what, path);
		close(fd);
		return -1;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

/* First byte above the DTB area's top, and the area's start. */
static uint64_t dtb_top(const struct gram *ram)
{
	uint64_t end = ram->base + ram->size;
	if (ram->base < LOADER_DTB_TOP && end > LOADER_DTB_TOP)
		end = LOADER_DTB_TOP;
	return end;
}

static bool dtb_area(const struct gram *ram, uint64_t *start)
{
	uint64_t top = dtb_top(ram);
	if (top - ram->base < LOADER_DTB_MAX)
		return false;
	uint64_t s = align_down(top - LOADER_DTB_MAX, LOADER_DTB_ALIGN);
	if (s < ram->base)
		s = align_up(ram->base, 8);
	*start = s;
	return true;
}

const char *loader_load_kernel(struct gram *ram, const char *path, struct boot_layout *lay,
			       char *err, size_t errlen)
{
	memset(lay, 0, sizeof(*lay));
	uint64_t size;
	int fd = open_file("kernel", path, &size, err, errlen);
	if (fd < 0)
		return err;

	uint8_t hdr[HEADER_READ];
	size_t hlen = size < sizeof(hdr) ? (size_t)size : sizeof(hdr);
	ssize_t n;
	do
		n = pread(fd, hdr, hlen, 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)hlen) {
		close(fd);
		return errf(err, errlen, "kernel %s: cannot read its header", path);
	}

	struct riscv_image_header h;
	const char *e = loader_parse_image_header(path, hdr, hlen, &h, err, errlen);
	if (e) {
		close(fd);
		return e;
	}
	uint64_t need = pe_needed_length(hdr, hlen, &h);
	if (need > size) {
		close(fd);
		return errf(err, errlen, "kernel %s: truncated: its PE/COFF sections need "
			    "%llu bytes but the file has %llu", path,
			    (unsigned long long)need, (unsigned long long)size);
	}

	uint64_t footprint = h.image_size ? h.image_size : size;
	if (footprint < size)
		footprint = size; /* trailing data, e.g. an appended signature */
	uint64_t addr = ram->base + BOARD_KERNEL_OFFSET;
	uint64_t area_start;
	if (!dtb_area(ram, &area_start) || area_start < addr ||
	    footprint > area_start - addr) {
		close(fd);
		return errf(err, errlen, "kernel %s: needs %llu KiB at RAM offset %llu KiB "
			    "plus %llu KiB for the device tree, but guest RAM is %llu KiB",
			    path, (unsigned long long)(footprint >> 10),
			    (unsigned long long)(BOARD_KERNEL_OFFSET >> 10),
			    (unsigned long long)(LOADER_DTB_MAX >> 10),
			    (unsigned long long)(ram->size >> 10));
	}

	e = copy_file(ram, fd, "kernel", path, addr, size, err, errlen);
	close(fd);
	if (e)
		return e;
	lay->kernel_addr = addr;
	lay->kernel_size = footprint;
	lay->kernel_file_size = size;
	return NULL;
}

const char *loader_load_initrd(struct gram *ram, const char *path, struct boot_layout *lay,
			       char *err, size_t errlen)
{
	if (!lay->kernel_addr)
		return errf(err, errlen, "initrd %s: load the kernel first", path);
	uint64_t size;
	int fd = open_file("initrd", path, &size, err, errlen);
	if (fd < 0)
		return err;

	uint64_t area_start = 0;
	uint64_t floor = align_up(lay->kernel_addr + lay->kernel_size, GRAM_PAGE_SIZE);
	bool ok = dtb_area(ram, &area_start) && area_start >= floor &&
		  size <= area_start - floor;
	if (!ok) {
		close(fd);
		uint64_t room = area_start > floor ? area_start - floor : 0;
		return errf(err, errlen, "initrd %s: %llu KiB does not fit in guest RAM: "
			    "%llu KiB free between the kernel's end (%#llx) and the device "
			    "tree area (%#llx)", path, (unsigned long long)(size >> 10),
			    (unsigned long long)(room >> 10), (unsigned long long)floor,
			    (unsigned long long)area_start);
	}
	uint64_t start = align_down(area_start - size, GRAM_PAGE_SIZE);
	const char *e = copy_file(ram, fd, "initrd", path, start, size, err, errlen);
	close(fd);
	if (e)
		return e;
	lay->initrd_start = start;
	lay->initrd_end = start + size;
	return NULL;
}

const char *loader_load_dtb(struct gram *ram, const void *fdt, struct boot_layout *lay,
			    char *err, size_t errlen)
{
	if (fdt_check_header(fdt) != 0)
		return errf(err, errlen, "device tree: bad header");
	uint64_t size = fdt_totalsize(fdt);
	if (size > LOADER_DTB_MAX)
		return errf(err, errlen, "device tree: %llu bytes (at most %llu)",
			    (unsigned long long)size, (unsigned long long)LOADER_DTB_MAX);
	uint64_t addr;
	if (!dtb_area(ram, &addr))
		return errf(err, errlen, "device tree: guest RAM (%llu KiB) is too small",
			    (unsigned long long)(ram->size >> 10));
	if (lay->kernel_size && addr < lay->kernel_addr + lay->kernel_size &&
	    lay->kernel_addr < addr + size)
		return errf(err, errlen, "device tree: would overlap the kernel");
	if (lay->initrd_end > lay->initrd_start && addr < lay->initrd_end &&
	    lay->initrd_start < addr + size)
		return errf(err, errlen, "device tree: would overlap the initrd");
	if (gram_write(ram, addr, fdt, size) != 0)
		return errf(err, errlen, "device tree: %#llx+%llu is not guest RAM",
			    (unsigned long long)addr, (unsigned long long)size);
	lay->dtb_addr = addr;
	lay->dtb_size = size;
	return NULL;
}

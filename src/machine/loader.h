/*
 * Boot image loading under the Linux RISC-V boot protocol: the kernel Image
 * at RAM base + BOARD_KERNEL_OFFSET, the initrd high in RAM, the device tree
 * above it. Call in that order: loader_load_kernel(), loader_load_initrd()
 * (optional), then build the device tree with the initrd addresses from the
 * layout and loader_load_dtb(). Every write goes through gram_write(). Errors
 * come back as a message naming the file and the problem; nothing exits.
 */
#ifndef SKIFF_MACHINE_LOADER_H
#define SKIFF_MACHINE_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "base/gram.h"

/* The DTB area: the device tree lives in the top LOADER_DTB_MAX bytes below
 * LOADER_DTB_TOP (or the end of RAM if lower), rounded down to 2 MiB. Linux
 * maps the DTB early through a fixmap window of this size. */
#define LOADER_DTB_MAX  0x100000ull      /* 1 MiB */
#define LOADER_DTB_TOP  0x100000000ull   /* stay below 4 GiB */

struct boot_layout {
	uint64_t kernel_addr;   /* load address = entry point */
	uint64_t kernel_size;   /* memory footprint: image_size (or file size) */
	uint64_t kernel_file_size;
	uint64_t initrd_start;  /* [start, end); both 0 when there is none */
	uint64_t initrd_end;
	uint64_t dtb_addr;      /* pass in a1 */
	uint64_t dtb_size;
};

/* Fields of the RISC-V Image header (Linux Documentation/arch/riscv/
 * boot-image-header.rst), 64 bytes at the start of the file. */
struct riscv_image_header {
	uint32_t code0, code1;
	uint64_t text_offset, image_size, flags;
	uint32_t version, res1;
	uint64_t res2, magic;
	uint32_t magic2, res3;
};

#define RISCV_IMAGE_HEADER_SIZE 64
#define RISCV_IMAGE_MAGIC2 0x05435352u   /* "RSC\x05" little-endian */

/* Parse and check a header from the first `len` bytes of `name`. NULL if it
 * is a RISC-V Image header (fills *h), else a message in err. */
const char *loader_parse_image_header(const char *name, const uint8_t *buf, size_t len,
				      struct riscv_image_header *h, char *err, size_t errlen);

/* Load the kernel Image at ram->base + BOARD_KERNEL_OFFSET; fills the
 * kernel fields of *lay and clears the rest. NULL on success, else err. */
const char *loader_load_kernel(struct gram *ram, const char *path, struct boot_layout *lay,
			       char *err, size_t errlen);

/* Load an initrd page-aligned as high as possible below the DTB area and
 * above the kernel's footprint; fills initrd_start/initrd_end. */
const char *loader_load_initrd(struct gram *ram, const char *path, struct boot_layout *lay,
			       char *err, size_t errlen);

/* Copy the finished device tree into the DTB area (8-byte aligned, not
 * overlapping the kernel or initrd); fills dtb_addr/dtb_size. */
const char *loader_load_dtb(struct gram *ram, const void *fdt, struct boot_layout *lay,
			    char *err, size_t errlen);

#endif

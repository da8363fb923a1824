/*
 * The device tree of the "virt" board, generated at boot with libfdt from a
 * description of the VM (harts, ISA, RAM, command line, initrd, virtio slots)
 * and handed to the kernel in a1. The fixed devices (UART, PLIC, CLINT, RTC,
 * syscon) come from board.h.
 */
#ifndef SKIFF_MACHINE_FDT_H
#define SKIFF_MACHINE_FDT_H

#include <stddef.h>
#include <stdint.h>

#define BOARD_FDT_MAX 0x10000  /* a buffer this big always suffices */

#define BOARD_FDT_UART_CLOCK_HZ 3686400
#define BOARD_FDT_STDOUT_PATH "/soc/serial@10000000"

struct board_fdt_virtio {
	uint64_t base;   /* e.g. BOARD_VIRTIO_BASE + n * BOARD_VIRTIO_SIZE */
	uint32_t irq;    /* PLIC source, e.g. BOARD_IRQ_VIRTIO0 + n */
};

struct board_fdt_desc {
	unsigned nharts;                     /* 1..BOARD_MAX_HARTS */
	const char *isa;                     /* riscv,isa, e.g. "rv64imafdc_zicsr_..." */
	const char *const *isa_extensions;   /* riscv,isa-extensions: "i", "m", ... */
	size_t n_isa_extensions;
	uint32_t cboz_block_size;            /* Zicboz: riscv,cboz-block-size; 0: none */
	const char *mmu_type;                /* "riscv,sv57"; NULL: that */
	uint64_t timebase_hz;                /* 0: BOARD_TIMEBASE_HZ */
	uint64_t ram_base, ram_size;
	const char *bootargs;                /* NULL: no bootargs property */
	uint64_t initrd_start, initrd_end;   /* both 0: no initrd */
	const struct board_fdt_virtio *virtio;
	size_t n_virtio;
	const uint8_t *rng_seed;             /* optional /chosen/rng-seed */
	size_t rng_seed_len;
};

/* The defaults matching what skiff's engine implements. */
extern const char BOARD_FDT_ISA[];
extern const char *const BOARD_FDT_ISA_EXTENSIONS[];
extern const size_t BOARD_FDT_N_ISA_EXTENSIONS;

/* Build the tree into buf (cap bytes). Returns NULL on success (its size is
 * fdt_totalsize(buf)), or err filled with a message naming the problem. */
const char *board_fdt_build(const struct board_fdt_desc *d, void *buf, size_t cap,
			    char *err, size_t errlen);

#endif

/*
 * The "virt" board: memory map, interrupt numbers and the devices every VM
 * has (UART, ACLINT, PLIC, RTC, syscon, VM generation ID), plus the slots where virtio-mmio
 * devices go. Guest RAM starts at BOARD_RAM_BASE.
 */
#ifndef SKIFF_MACHINE_BOARD_H
#define SKIFF_MACHINE_BOARD_H

#include <stdint.h>

#define BOARD_SYSCON_BASE   0x00100000ull
#define BOARD_SYSCON_SIZE   0x1000ull
#define BOARD_RTC_BASE      0x00101000ull
#define BOARD_RTC_SIZE      0x1000ull
#define BOARD_VMGENID_BASE  0x00102000ull
#define BOARD_VMGENID_SIZE  0x1000ull
#define BOARD_ACLINT_BASE   0x02000000ull   /* MSWI at +0, MTIMER at +0x4000 */
#define BOARD_ACLINT_SIZE   0x10000ull
#define BOARD_PLIC_BASE     0x0c000000ull
#define BOARD_PLIC_SIZE     0x00600000ull
#define BOARD_UART_BASE     0x10000000ull
#define BOARD_UART_SIZE     0x100ull
#define BOARD_VIRTIO_BASE   0x10001000ull   /* slot n at BASE + n * SIZE */
#define BOARD_VIRTIO_SIZE   0x1000ull
#define BOARD_VIRTIO_SLOTS  32
#define BOARD_RAM_BASE      0x80000000ull

/* PLIC sources. */
#define BOARD_IRQ_UART      10
#define BOARD_IRQ_RTC       11
#define BOARD_IRQ_VMGENID   12
#define BOARD_IRQ_VIRTIO0   32              /* slot n uses 32 + n */
#define BOARD_PLIC_NDEV     63

#define BOARD_MAX_HARTS     8
#define BOARD_TIMEBASE_HZ   10000000ull
#define BOARD_KERNEL_OFFSET 0x200000ull     /* kernel at RAM base + 2 MiB */

#endif

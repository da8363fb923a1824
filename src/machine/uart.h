/*
 * A 16550A UART (device-tree compatible "ns16550a"), the board's serial
 * console. Registers are one byte apart (reg-shift 0). Output is handed to
 * the host through a callback as the guest writes THR; input is pushed by the
 * host with uart_input() from any thread and lands in the receive FIFO.
 */
#ifndef SKIFF_MACHINE_UART_H
#define SKIFF_MACHINE_UART_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/bus.h"

/* Receive buffer. A real 16550A holds 16 bytes; a deeper buffer lets the
 * guest take a burst per interrupt. Trigger levels still count bytes. */
#define UART_RX_BUF 256

struct uart_config {
	/* Bytes the guest transmitted. Called with the UART's lock held, from
	 * a vCPU thread: it must not call back into this UART. */
	void (*tx)(void *ctx, const uint8_t *buf, size_t n);
	/* Optional: after uart_input() refused bytes, the receive buffer
	 * drained to half full or less, so input the host held back may be
	 * pushed now. Called without the UART's lock, from a vCPU thread. */
	void (*rx_space)(void *ctx);
	void *ctx;
	struct irq_line irq;
};

struct uart {
	pthread_mutex_t lock;
	struct uart_config cfg;
	uint8_t rx[UART_RX_BUF];
	unsigned rx_head, rx_count;
	bool rx_was_full;    /* the host saw a full FIFO; tell it about room */
	bool thr_ipending;   /* THR-empty interrupt armed (16550A datasheet) */
	uint8_t ier, lcr, mcr, scr, fcr, msr, dll, dlm;
	uint8_t lsr_err;     /* overrun etc., cleared by reading LSR */
	bool irq_level;      /* last level driven on cfg.irq */
};

/* Reset state: FIFO empty, interrupts off, divisor 1. 0 or -1. */
int uart_init(struct uart *u, const struct uart_config *cfg);
void uart_destroy(struct uart *u);

/* Host input: queue up to n bytes for the guest; returns how many were taken
 * (fewer than n when the buffer is full: push the rest later, e.g. after the
 * rx_space callback). Thread-safe. */
size_t uart_input(struct uart *u, const uint8_t *buf, size_t n);

/* Snapshots: registers and buffered input as section "UART"; a load checks
 * every value and changes nothing on failure. Thread-safe. */
struct snap_writer;
struct snap_reader;
void uart_save(struct uart *u, struct snap_writer *w);
int uart_load(struct uart *u, struct snap_reader *r);

/* The MMIO interface for mmio_bus_add(..., &uart_mmio_ops, u, "uart"). */
extern const struct mmio_ops uart_mmio_ops;

#endif

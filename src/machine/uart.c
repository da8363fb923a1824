/*
 * The 16550A UART model (see uart.h). Register behaviour follows the TI/
 * National PC16550D datasheet: its register summary table, the interrupt
 * priorities of the "interrupt control functions" table, the FIFO control
 * register description, and the
 * THRE interrupt which is set whenever THR is empty and ETBEI goes from 0
 * to 1, or a byte leaves THR; it is cleared by reading IIR while it is the
 * reported source, or by writing THR.
 *
 * Transmission is immediate: a byte written to THR goes straight to the tx
 * callback, so LSR always reports THRE|TEMT and the THRE interrupt re-arms
 * right after every THR write. Loopback mode (MCR bit 4) routes THR back to
 * the receiver and the modem outputs to MSR, as the datasheet describes.
 * The receive side raises its interrupt as soon as data is present: when the
 * FIFO holds fewer bytes than the trigger level, IIR reports a character
 * timeout, which is what real hardware shows a few character times later.
 */
#include "machine/uart.h"

#include <string.h>

#include "base/snapfile.h"

/* Register offsets (DLAB = LCR bit 7 selects DLL/DLM at 0/1). */
enum {
	REG_RBR_THR_DLL = 0,
	REG_IER_DLM = 1,
	REG_IIR_FCR = 2,
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI  0x04 /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */

#define IIR_NO_INT  0x01
#define IIR_MSI     0x00
#define IIR_THRI    0x02
#define IIR_RDI     0x04
#define IIR_RLSI    0x06
#define IIR_TIMEOUT 0x0c
#define IIR_FIFO_ON 0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS  0x10
#define MSR_DSR  0x20
#define MSR_RI   0x40
#define MSR_DCD  0x80

static unsigned rx_trigger(const struct uart *u)
{
	static const unsigned level[4] = { 1, 4, 8, 14 };
	return level[u->fcr >> 6];
}

static void rx_clear(struct uart *u)
{
	u->rx_head = 0;
	u->rx_count = 0;
}

static bool rx_push(struct uart *u, uint8_t b)
{
	if (u->rx_count == UART_RX_BUF)
		return false;
	u->rx[(u->rx_head + u->rx_count) % UART_RX_BUF] = b;
	u->rx_count++;
	return true;
}

/* The interrupt identification, highest priority first. */
static uint8_t compute_iir(const struct uart *u)
{
	uint8_t fifo = (u->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0;
	if ((u->ier & IER_ELSI) && u->lsr_err)
		return fifo | IIR_RLSI;
	if ((u->ier & IER_ERBFI) && u->rx_count) {
		bool full = !(u->fcr & FCR_ENABLE) || u->rx_count >= rx_trigger(u);
		return fifo | (full ? IIR_RDI : IIR_TIMEOUT);
	}
	if ((u->ier & IER_ETBEI) && u->thr_ipending)
		return fifo | IIR_THRI;
	if ((u->ier & IER_EDSSI) && (u->msr & 0x0f))
		return fifo | IIR_MSI;
	return fifo | IIR_NO_INT;
}

/* Drive the interrupt line to match IIR; only changes reach the PLIC. */
static void update_irq(struct uart *u)
{
	bool level = !(compute_iir(u) & IIR_NO_INT);
	if (level != u->irq_level) {
		u->irq_level = level;
		irq_set(&u->cfg.irq, level);
	}
}

/* Modem status inputs: wired to the outputs in loopback mode, otherwise a
 * terminal that is present and ready (DCD, DSR, CTS). */
static void update_msr(struct uart *u)
{
	uint8_t in;
	if (u->mcr & MCR_LOOP) {
		in = 0;
		if (u->mcr & MCR_RTS)
			in |= MSR_CTS;
		if (u->mcr & MCR_DTR)
			in |= MSR_DSR;
		if (u->mcr & MCR_OUT1)
			in |= MSR_RI;
		if (u->mcr & MCR_OUT2)
			in |= MSR_DCD;
	} else {
		in = MSR_DCD | MSR_DSR | MSR_CTS;
	}
	uint8_t old = u->msr & 0xf0, delta = u->msr & 0x0f;
	uint8_t changed = old ^ in;
	if (changed & MSR_CTS)
		delta |= MSR_DCTS;
	if (changed & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(in & MSR_RI))
		delta |= MSR_TERI; /* trailing edge only */
	if (changed & MSR_DCD)
		delta |= MSR_DDCD;
	u->msr = in | delta;
}

int uart_init(struct uart *u, const struct uart_config *cfg)
{
	memset(u, 0, sizeof(*u));
	if (pthread_mutex_init(&u->lock, NULL) != 0)
		return -1;
	u->cfg = *cfg;
	u->dll = 1; /* a divisor of 0 means nothing; start at full speed */
	u->msr = MSR_DCD | MSR_DSR | MSR_CTS;
	return 0;
}

void uart_destroy(struct uart *u)
{
	pthread_mutex_destroy(&u->lock);
}

size_t uart_input(struct uart *u, const uint8_t *buf, size_t n)
{
	size_t taken = 0;
	pthread_mutex_lock(&u->lock);
	while (taken < n && rx_push(u, buf[taken]))
		taken++;
	if (taken < n)
		u->rx_was_full = true;
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return taken;
}

/* Returns true when the host should be told there is room for input. */
static bool uart_read_reg(struct uart *u, unsigned reg, uint8_t *out)
{
	bool notify = false;
	uint8_t v = 0;
	switch (reg) {
	case REG_RBR_THR_DLL:
		if (u->lcr & LCR_DLAB) {
			v = u->dll;
		} else if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % UART_RX_BUF;
			u->rx_count--;
			if (u->rx_was_full && u->rx_count <= UART_RX_BUF / 2) {
				u->rx_was_full = false;
				notify = true;
			}
		}
		break;
	case REG_IER_DLM:
		v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
		break;
	case REG_IIR_FCR:
		v = compute_iir(u);
		/* Reading IIR while THRE is the reported source clears it. */
		if ((v & 0x0f) == IIR_THRI)
			u->thr_ipending = false;
		break;
	case REG_LCR:
		v = u->lcr;
		break;
	case REG_MCR:
		v = u->mcr;
		break;
	case REG_LSR:
		v = LSR_THRE | LSR_TEMT | u->lsr_err;
		if (u->rx_count)
			v |= LSR_DR;
		u->lsr_err = 0; /* error bits clear on read */
		break;
	case REG_MSR:
		v = u->msr;
		u->msr &= 0xf0; /* delta bits clear on read */
		break;
	case REG_SCR:
		v = u->scr;
		break;
	}
	*out = v;
	return notify;
}

static void uart_write_reg(struct uart *u, unsigned reg, uint8_t v)
{
	switch (reg) {
	case REG_RBR_THR_DLL:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
		} else if (u->mcr & MCR_LOOP) {
			if (!rx_push(u, v))
				u->lsr_err |= LSR_OE;
			u->thr_ipending = true;
		} else {
			if (u->cfg.tx)
				u->cfg.tx(u->cfg.ctx, &v, 1);
			/* The byte left THR at once: THR is empty again. */
			u->thr_ipending = true;
		}
		break;
	case REG_IER_DLM:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
		} else {
			uint8_t old = u->ier;
			u->ier = v & 0x0f;
			/* ETBEI going 0 -> 1 with THR empty raises THRE. */
			if ((u->ier & IER_ETBEI) && !(old & IER_ETBEI))
				u->thr_ipending = true;
		}
		break;
	case REG_IIR_FCR:
		/* Changing the FIFO enable bit clears both FIFOs. */
		if ((v ^ u->fcr) & FCR_ENABLE)
			rx_clear(u);
		if (v & FCR_CLEAR_RX)
			rx_clear(u);
		/* FCR_CLEAR_TX: the transmitter never holds data. */
		u->fcr = v & (FCR_ENABLE | 0xc0);
		break;
	case REG_LCR:
		u->lcr = v;
		break;
	case REG_MCR:
		u->mcr = v & 0x1f;
		update_msr(u);
		break;
	case REG_LSR:
	case REG_MSR:
		break; /* read-only here */
	case REG_SCR:
		u->scr = v;
		break;
	}
}

/* Registers are bytes; a wider access addresses the byte at `off`. */
static bool uart_mmio_read(void *dev, uint64_t off, unsigned size, uint64_t *value)
{
	struct uart *u = dev;
	uint8_t v = 0;
	bool notify = false;
	*value = 0;
	if (off > REG_SCR)
		return true;
	pthread_mutex_lock(&u->lock);
	notify = uart_read_reg(u, (unsigned)off, &v);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	if (notify && u->cfg.rx_space)
		u->cfg.rx_space(u->cfg.ctx);
	*value = v;
	return true;
}

static bool uart_mmio_write(void *dev, uint64_t off, unsigned size, uint64_t value)
{
	struct uart *u = dev;
	if (off > REG_SCR)
		return true;
	pthread_mutex_lock(&u->lock);
	uart_write_reg(u, (unsigned)off, (uint8_t)value);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return true;
}

const struct mmio_ops uart_mmio_ops = {
	.read = uart_mmio_read,
	.write = uart_mmio_write,
};

/* ---- snapshots (section "UART"): registers and the receive buffer ---- */

#define UART_SNAP_VERSION 1

void uart_save(struct uart *u, struct snap_writer *w)
{
	pthread_mutex_lock(&u->lock);
	snap_section_begin(w, SNAP_TAG('U', 'A', 'R', 'T'), 0, UART_SNAP_VERSION);
	uint8_t regs[11] = { u->ier, u->lcr, u->mcr, u->scr, u->fcr, u->msr, u->dll, u->dlm,
			     u->lsr_err, u->thr_ipending, u->irq_level };
	snap_put_bytes(w, regs, sizeof(regs));
	snap_put_u8(w, u->rx_was_full);
	snap_put_u32(w, u->rx_count);
	for (unsigned k = 0; k < u->rx_count; k++)
		snap_put_u8(w, u->rx[(u->rx_head + k) % UART_RX_BUF]);
	pthread_mutex_unlock(&u->lock);
}

int uart_load(struct uart *u, struct snap_reader *r)
{
	if (r->version != UART_SNAP_VERSION) {
		snap_reader_fail(r, "UART state version %u is not known", r->version);
		return -1;
	}
	uint8_t regs[11], rx[UART_RX_BUF];
	snap_get_bytes(r, regs, sizeof(regs));
	bool was_full = snap_get_u8(r);
	uint32_t count = snap_get_u32(r);
	if (!r->overrun && count > UART_RX_BUF)
		snap_reader_fail(r, "%u bytes in a %u-byte receive buffer", count, UART_RX_BUF);
	else
		snap_get_bytes(r, rx, count);
	if ((regs[0] & ~0x0f) || (regs[2] & ~0x1f) || (regs[4] & ~(FCR_ENABLE | 0xc0)) ||
	    regs[9] > 1 || regs[10] > 1)
		snap_reader_fail(r, "a register holds a value the UART cannot take");
	if (r->overrun || r->invalid)
		return -1;
	pthread_mutex_lock(&u->lock);
	u->ier = regs[0];
	u->lcr = regs[1];
	u->mcr = regs[2];
	u->scr = regs[3];
	u->fcr = regs[4];
	u->msr = regs[5];
	u->dll = regs[6];
	u->dlm = regs[7];
	u->lsr_err = regs[8];
	u->thr_ipending = regs[9];
	/* The PLIC's saved input line matches this; it is loaded on its own. */
	u->irq_level = regs[10];
	u->rx_was_full = was_full;
	memcpy(u->rx, rx, count);
	u->rx_head = 0;
	u->rx_count = count;
	pthread_mutex_unlock(&u->lock);
	return 0;
}

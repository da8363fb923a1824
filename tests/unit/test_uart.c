/*
 * Unit tests for the 16550A UART (src/machine/uart.c): reset values, the
 * THRE interrupt (raised by enabling ETBEI, cleared by reading IIR, re-armed
 * by THR writes and by re-enabling, as Linux's 8250 startup probe expects),
 * FIFO bits in IIR, received data and its interrupt, trigger levels, input
 * backpressure, DLAB, scratch and loopback.
 */
#include <string.h>

#include "machine/uart.h"
#include "machine_test.h"

struct host {
	uint8_t out[512];
	size_t nout;
	int irq_calls;
	bool irq;
	int rx_space_calls;
};

static void host_tx(void *ctx, const uint8_t *buf, size_t n)
{
	struct host *h = ctx;
	for (size_t i = 0; i < n && h->nout < sizeof(h->out); i++)
		h->out[h->nout++] = buf[i];
}

static void host_irq(void *ctrl, unsigned irq, bool level)
{
	struct host *h = ctrl;
	h->irq_calls++;
	h->irq = level;
}

static void host_rx_space(void *ctx)
{
	struct host *h = ctx;
	h->rx_space_calls++;
}

static uint8_t rd(struct uart *u, unsigned off)
{
	uint64_t v = 0xff;
	uart_mmio_ops.read(u, off, 1, &v);
	return (uint8_t)v;
}

static void wr(struct uart *u, unsigned off, uint8_t v)
{
	uart_mmio_ops.write(u, off, 1, v);
}

static void setup(struct uart *u, struct host *h)
{
	memset(h, 0, sizeof(*h));
	struct uart_config cfg = {
		.tx = host_tx, .rx_space = host_rx_space, .ctx = h,
		.irq = { .set = host_irq, .ctrl = h, .irq = 10 },
	};
	uart_init(u, &cfg);
}

static void test_reset_and_tx(struct mt *t)
{
	struct uart u;
	struct host h;
	setup(&u, &h);
	MT_EQ(t, rd(&u, 5), 0x60);  /* LSR: THRE | TEMT */
	MT_EQ(t, rd(&u, 2), 0x01);  /* IIR: nothing pending, FIFOs off */
	MT_EQ(t, rd(&u, 6), 0xb0);  /* MSR: DCD DSR CTS */
	MT_EQ(t, rd(&u, 1), 0);
	wr(&u, 0, 'h');
	wr(&u, 0, 'i');
	MT_EQ(t, h.nout, 2);
	MT_CHECK(t, h.out[0] == 'h' && h.out[1] == 'i');
	MT_CHECK(t, !h.irq);        /* THRE armed, but ETBEI is off */
	MT_EQ(t, rd(&u, 5), 0x60);
	/* Offsets past the registers and wide accesses are harmless. */
	uint64_t v = 1;
	MT_CHECK(t, uart_mmio_ops.read(&u, 0x80, 4, &v));
	MT_EQ(t, v, 0);
	MT_CHECK(t, uart_mmio_ops.write(&u, 0xff, 1, 0x12));
	MT_CHECK(t, uart_mmio_ops.read(&u, 5, 4, &v));
	MT_EQ(t, v, 0x60);
	uart_destroy(&u);
}

static void test_thre_irq(struct mt *t)
{
	struct uart u;
	struct host h;
	setup(&u, &h);
	wr(&u, 2, 0x07);            /* FIFOs on, cleared */
	MT_EQ(t, rd(&u, 2), 0xc1);  /* FIFO bits, no interrupt */

	wr(&u, 1, 0x02);            /* ETBEI with THR empty -> THRE */
	MT_CHECK(t, h.irq);
	MT_EQ(t, rd(&u, 2), 0xc2);  /* reading IIR clears it */
	MT_CHECK(t, !h.irq);
	MT_EQ(t, rd(&u, 2), 0xc1);

	wr(&u, 0, 'x');             /* THR write: empty again at once */
	MT_CHECK(t, h.irq);
	MT_EQ(t, rd(&u, 2), 0xc2);
	MT_CHECK(t, !h.irq);

	/* Linux 8250 startup: IER=THRI, IIR; IER=0; IER=THRI, IIR must again
	 * show THRE (otherwise it flags UART_BUG_THRE). */
	wr(&u, 1, 0x00);
	wr(&u, 1, 0x02);
	uint8_t iir1 = rd(&u, 2);
	wr(&u, 1, 0x00);
	wr(&u, 1, 0x02);
	uint8_t iir2 = rd(&u, 2);
	wr(&u, 1, 0x00);
	MT_CHECK(t, !(iir1 & 1) && !(iir2 & 1));
	MT_EQ(t, iir2 & 0x0f, 0x02);

	/* Writing IER again with ETBEI already set does not re-arm. */
	wr(&u, 1, 0x02);
	MT_EQ(t, rd(&u, 2), 0xc2);
	wr(&u, 1, 0x03);
	MT_EQ(t, rd(&u, 2), 0xc1);
	MT_CHECK(t, !h.irq);

	/* Disabling ETBEI drops a pending THRE from the line. */
	wr(&u, 0, 'y');
	MT_CHECK(t, h.irq);
	wr(&u, 1, 0x00);
	MT_CHECK(t, !h.irq);
	uart_destroy(&u);
}

static void test_rx(struct mt *t)
{
	struct uart u;
	struct host h;
	setup(&u, &h);
	wr(&u, 2, 0x01);            /* FIFO on, trigger level 1 */
	wr(&u, 1, 0x01);            /* ERBFI */
	MT_CHECK(t, !h.irq);
	MT_EQ(t, uart_input(&u, (const uint8_t *)"abc", 3), 3);
	MT_CHECK(t, h.irq);
	MT_EQ(t, rd(&u, 5), 0x61);  /* DR */
	MT_EQ(t, rd(&u, 2), 0xc4);  /* received data available */
	MT_EQ(t, rd(&u, 0), 'a');
	MT_EQ(t, rd(&u, 0), 'b');
	MT_CHECK(t, h.irq);
	MT_EQ(t, rd(&u, 0), 'c');
	MT_CHECK(t, !h.irq);
	MT_EQ(t, rd(&u, 5), 0x60);
	MT_EQ(t, rd(&u, 2), 0xc1);

	/* Below the trigger level (14) IIR shows a character timeout. */
	wr(&u, 2, 0xc1);
	uart_input(&u, (const uint8_t *)"xy", 2);
	MT_EQ(t, rd(&u, 2), 0xcc);
	/* RX data outranks THRE. */
	wr(&u, 1, 0x03);
	MT_EQ(t, rd(&u, 2), 0xcc);
	wr(&u, 2, 0xc3);            /* clear RX FIFO */
	MT_EQ(t, rd(&u, 5) & 1, 0);
	MT_EQ(t, rd(&u, 2), 0xc2);  /* now THRE shows */
	MT_EQ(t, rd(&u, 2), 0xc1);
	uart_destroy(&u);
}

static void test_backpressure(struct mt *t)
{
	struct uart u;
	struct host h;
	setup(&u, &h);
	uint8_t buf[UART_RX_BUF + 44];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	size_t took = uart_input(&u, buf, sizeof(buf));
	MT_EQ(t, took, UART_RX_BUF);
	MT_EQ(t, uart_input(&u, buf + took, 1), 0);
	bool order = true;
	for (size_t i = 0; i < UART_RX_BUF / 2 - 1; i++)
		order &= rd(&u, 0) == (uint8_t)i;
	MT_CHECK(t, order);
	MT_EQ(t, h.rx_space_calls, 0);
	rd(&u, 0);                  /* now half full: the host hears of it */
	MT_EQ(t, h.rx_space_calls, 1);
	rd(&u, 0);
	MT_EQ(t, h.rx_space_calls, 1);
	MT_EQ(t, uart_input(&u, buf + took, sizeof(buf) - took), sizeof(buf) - took);
	uart_destroy(&u);
}

static void test_dlab_scr_loop(struct mt *t)
{
	struct uart u;
	struct host h;
	setup(&u, &h);
	wr(&u, 1, 0x05);
	wr(&u, 3, 0x83);            /* DLAB, 8N1 */
	wr(&u, 0, 0x0c);
	wr(&u, 1, 0x00);
	MT_EQ(t, rd(&u, 0), 0x0c);
	MT_EQ(t, rd(&u, 1), 0x00);
	MT_EQ(t, h.nout, 0);        /* DLL write is not output */
	wr(&u, 3, 0x03);
	MT_EQ(t, rd(&u, 1), 0x05);  /* IER kept */
	MT_EQ(t, rd(&u, 3), 0x03);
	wr(&u, 7, 0x5a);
	MT_EQ(t, rd(&u, 7), 0x5a);

	/* Loopback: THR goes to the receiver; modem lines mirror MCR. */
	wr(&u, 1, 0);
	wr(&u, 4, 0x10);
	MT_EQ(t, rd(&u, 6) & 0xf0, 0x00);
	wr(&u, 4, 0x1f);
	MT_EQ(t, rd(&u, 6), 0xfb);  /* all four lines, deltas (no RI edge) */
	MT_EQ(t, rd(&u, 6), 0xf0);  /* deltas clear on read */
	wr(&u, 0, 'L');
	MT_EQ(t, h.nout, 0);
	MT_EQ(t, rd(&u, 5) & 1, 1);
	MT_EQ(t, rd(&u, 0), 'L');
	wr(&u, 4, 0x0b);            /* back to normal */
	MT_EQ(t, rd(&u, 6) & 0xf0, 0xb0);
	wr(&u, 0, 'N');
	MT_EQ(t, h.nout, 1);
	uart_destroy(&u);
}

int main(void)
{
	struct mt t = { 0 };
	test_reset_and_tx(&t);
	test_thre_irq(&t);
	test_rx(&t);
	test_backpressure(&t);
	test_dlab_scr_loop(&t);
	return mt_report(&t);
}

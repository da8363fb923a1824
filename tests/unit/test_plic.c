/*
 * Unit tests for the PLIC (src/machine/plic.c) with two harts: S-mode
 * contexts 1 and 3 reach the set_ext callback, M-mode contexts 0 and 2 do
 * not; claim/complete, the gateway (a claimed source is not pending again
 * until completed), priorities and ties, thresholds, hardwired bits, and
 * accesses out of range. Finishes with two threads hammering the PLIC.
 */
#include <pthread.h>
#include <string.h>

#include "machine/plic.h"
#include "machine_test.h"

struct harts {
	bool ext[BOARD_MAX_HARTS];
	int calls[BOARD_MAX_HARTS];
	int bad_calls;
};

static void set_ext(void *ctx, unsigned hart, bool level)
{
	struct harts *h = ctx;
	if (hart >= 2) {
		h->bad_calls++;
		return;
	}
	h->ext[hart] = level;
	h->calls[hart]++;
}

static uint32_t rd(struct plic *p, uint64_t off)
{
	uint64_t v = 0xdead;
	if (!plic_mmio_ops.read(p, off, 4, &v))
		return 0xfa17fa17;
	return (uint32_t)v;
}

static void wr(struct plic *p, uint64_t off, uint32_t v)
{
	plic_mmio_ops.write(p, off, 4, v);
}

#define PRIO(src) (PLIC_PRIORITY_BASE + 4 * (src))
#define ENABLE(ctx, w) (PLIC_ENABLE_BASE + PLIC_ENABLE_STRIDE * (ctx) + 4 * (w))
#define THRESH(ctx) (PLIC_CONTEXT_BASE + PLIC_CONTEXT_STRIDE * (ctx))
#define CLAIM(ctx) (THRESH(ctx) + 4)

static void setup(struct plic *p, struct harts *h)
{
	memset(h, 0, sizeof(*h));
	struct plic_config cfg = { .nharts = 2, .set_ext = set_ext, .ctx = h };
	plic_init(p, &cfg);
}

static void test_claim_complete(struct mt *t)
{
	struct plic p;
	struct harts h;
	setup(&p, &h);
	wr(&p, PRIO(10), 1);
	wr(&p, ENABLE(1, 0), 1u << 10);   /* hart 0 S */
	wr(&p, ENABLE(3, 0), 1u << 10);   /* hart 1 S */
	MT_CHECK(t, !h.ext[0] && !h.ext[1]);

	plic_set_irq(&p, 10, true);
	MT_CHECK(t, h.ext[0] && h.ext[1]);
	MT_EQ(t, rd(&p, PLIC_PENDING_BASE), 1u << 10);

	MT_EQ(t, rd(&p, CLAIM(1)), 10);   /* hart 0 wins */
	MT_EQ(t, rd(&p, PLIC_PENDING_BASE), 0);
	MT_CHECK(t, !h.ext[0] && !h.ext[1]);
	MT_EQ(t, rd(&p, CLAIM(3)), 0);    /* nothing left for hart 1 */

	/* Gateway: the line is still high, but a claimed source stays quiet. */
	plic_set_irq(&p, 10, true);
	MT_CHECK(t, !h.ext[0] && !h.ext[1]);
	MT_EQ(t, rd(&p, PLIC_PENDING_BASE), 0);

	/* Completing while the line is high makes it pending again. */
	wr(&p, CLAIM(1), 10);
	MT_CHECK(t, h.ext[0] && h.ext[1]);
	MT_EQ(t, rd(&p, CLAIM(3)), 10);   /* this time hart 1 */
	plic_set_irq(&p, 10, false);
	wr(&p, CLAIM(3), 10);
	MT_CHECK(t, !h.ext[0] && !h.ext[1]);
	MT_EQ(t, rd(&p, PLIC_PENDING_BASE), 0);

	/* A level pulse while not claimed: pending follows the line. */
	plic_set_irq(&p, 10, true);
	plic_set_irq(&p, 10, false);
	MT_EQ(t, rd(&p, PLIC_PENDING_BASE), 0);
	MT_CHECK(t, !h.ext[0]);

	/* Completion for a source not enabled in that context is ignored. */
	plic_set_irq(&p, 10, true);
	MT_EQ(t, rd(&p, CLAIM(1)), 10);
	wr(&p, ENABLE(1, 0), 0);
	wr(&p, CLAIM(1), 10);
	MT_CHECK(t, !h.ext[1]);           /* still claimed */
	wr(&p, ENABLE(1, 0), 1u << 10);
	wr(&p, CLAIM(1), 10);
	MT_CHECK(t, h.ext[0] && h.ext[1]);
	MT_EQ(t, h.bad_calls, 0);
	plic_destroy(&p);
}

static void test_priority_threshold(struct mt *t)
{
	struct plic p;
	struct harts h;
	setup(&p, &h);
	wr(&p, PRIO(5), 2);
	wr(&p, PRIO(33), 3);
	wr(&p, PRIO(40), 3);
	wr(&p, PRIO(7), 0);               /* priority 0: never interrupts */
	wr(&p, ENABLE(1, 0), (1u << 5) | (1u << 7));
	wr(&p, ENABLE(1, 1), (1u << (33 - 32)) | (1u << (40 - 32)));
	MT_EQ(t, rd(&p, ENABLE(1, 1)), (1u << 1) | (1u << 8));
	plic_set_irq(&p, 7, true);
	MT_CHECK(t, !h.ext[0]);
	plic_set_irq(&p, 5, true);
	plic_set_irq(&p, 40, true);
	plic_set_irq(&p, 33, true);
	MT_CHECK(t, h.ext[0]);
	MT_CHECK(t, !h.ext[1]);           /* nothing enabled for hart 1 */
	MT_EQ(t, rd(&p, PLIC_PENDING_BASE), (1u << 5) | (1u << 7));
	MT_EQ(t, rd(&p, PLIC_PENDING_BASE + 4), (1u << 1) | (1u << 8));

	/* Threshold 3 masks everything (priority must exceed it). */
	wr(&p, THRESH(1), 3);
	MT_EQ(t, rd(&p, THRESH(1)), 3);
	MT_CHECK(t, !h.ext[0]);
	MT_EQ(t, rd(&p, CLAIM(1)), 0);
	wr(&p, THRESH(1), 2);             /* only the priority-3 ones */
	MT_CHECK(t, h.ext[0]);
	MT_EQ(t, rd(&p, CLAIM(1)), 33);   /* tie at 3: lowest ID first */
	MT_EQ(t, rd(&p, CLAIM(1)), 40);
	MT_CHECK(t, !h.ext[0]);           /* 5 (prio 2) is at the threshold */
	MT_EQ(t, rd(&p, CLAIM(1)), 0);
	wr(&p, THRESH(1), 0);
	MT_CHECK(t, h.ext[0]);
	MT_EQ(t, rd(&p, CLAIM(1)), 5);
	MT_EQ(t, rd(&p, CLAIM(1)), 0);    /* 7 has priority 0 */
	MT_CHECK(t, !h.ext[0]);

	/* Priorities and thresholds keep 3 bits. */
	wr(&p, PRIO(5), 0xff);
	MT_EQ(t, rd(&p, PRIO(5)), 7);
	wr(&p, THRESH(3), 0x1234);
	MT_EQ(t, rd(&p, THRESH(3)), 4);
	plic_destroy(&p);
}

static void test_m_contexts_and_edges(struct mt *t)
{
	struct plic p;
	struct harts h;
	setup(&p, &h);
	/* M-mode contexts work but report nowhere. */
	wr(&p, PRIO(20), 1);
	wr(&p, ENABLE(0, 0), 1u << 20);
	wr(&p, ENABLE(2, 0), 1u << 20);
	plic_set_irq(&p, 20, true);
	MT_EQ(t, h.calls[0] + h.calls[1], 0);
	MT_EQ(t, rd(&p, CLAIM(2)), 20);
	wr(&p, CLAIM(2), 20);
	plic_set_irq(&p, 20, false);

	/* Source 0 and sources past riscv,ndev are hardwired to zero. */
	wr(&p, PRIO(0), 5);
	MT_EQ(t, rd(&p, PRIO(0)), 0);
	MT_EQ(t, rd(&p, PRIO(PLIC_NSRC)), 0);
	wr(&p, ENABLE(1, 0), 0xffffffff);
	MT_EQ(t, rd(&p, ENABLE(1, 0)), 0xfffffffe);
	plic_set_irq(&p, 0, true);
	plic_set_irq(&p, PLIC_NSRC, true);
	plic_set_irq(&p, 100000, true);
	MT_EQ(t, rd(&p, PLIC_PENDING_BASE), 0);
	wr(&p, PLIC_PENDING_BASE, 0xffffffff); /* read-only */
	MT_EQ(t, rd(&p, PLIC_PENDING_BASE), 0);

	/* Contexts beyond the harts, bad sizes and alignment. */
	MT_EQ(t, rd(&p, ENABLE(4, 0)), 0);
	wr(&p, ENABLE(4, 0), 0xffffffff);
	MT_EQ(t, rd(&p, CLAIM(4)), 0);
	wr(&p, CLAIM(1000), 3);
	MT_EQ(t, rd(&p, THRESH(1023) + 0xffc), 0);
	uint64_t v;
	MT_CHECK(t, !plic_mmio_ops.read(&p, PRIO(1), 8, &v));
	MT_CHECK(t, !plic_mmio_ops.read(&p, PRIO(1) + 1, 4, &v));
	MT_CHECK(t, !plic_mmio_ops.write(&p, CLAIM(1), 1, 1));
	MT_CHECK(t, !plic_mmio_ops.write(&p, CLAIM(1) + 2, 4, 1));
	MT_EQ(t, h.bad_calls, 0);
	plic_destroy(&p);

	struct plic_config none = { .nharts = 0 };
	MT_EQ(t, plic_init(&p, &none), -1);
	struct plic_config many = { .nharts = BOARD_MAX_HARTS + 1 };
	MT_EQ(t, plic_init(&p, &many), -1);
}

/* Two "harts" each service their own source: raise, claim, complete. */
struct stress {
	struct plic *p;
	unsigned ctx, src;
	int handled;
};

static void *stress_thread(void *arg)
{
	struct stress *s = arg;
	for (int i = 0; i < 20000; i++) {
		plic_set_irq(s->p, s->src, true);
		uint32_t got = rd(s->p, CLAIM(s->ctx));
		if (got == s->src) {
			plic_set_irq(s->p, s->src, false);
			wr(s->p, CLAIM(s->ctx), got);
			s->handled++;
		}
	}
	return NULL;
}

static void test_threads(struct mt *t)
{
	struct plic p;
	struct harts h;
	setup(&p, &h);
	wr(&p, PRIO(10), 1);
	wr(&p, PRIO(32), 1);
	wr(&p, ENABLE(1, 0), 1u << 10);
	wr(&p, ENABLE(3, 1), 1u << 0);
	struct stress a = { &p, 1, 10, 0 }, b = { &p, 3, 32, 0 };
	pthread_t ta, tb;
	pthread_create(&ta, NULL, stress_thread, &a);
	pthread_create(&tb, NULL, stress_thread, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	MT_EQ(t, a.handled, 20000);
	MT_EQ(t, b.handled, 20000);
	MT_CHECK(t, !h.ext[0] && !h.ext[1]);
	MT_EQ(t, rd(&p, PLIC_PENDING_BASE) | rd(&p, PLIC_PENDING_BASE + 4), 0);
	plic_destroy(&p);
}

int main(void)
{
	struct mt t = { 0 };
	test_claim_complete(&t);
	test_priority_threshold(&t);
	test_m_contexts_and_edges(&t);
	test_threads(&t);
	return mt_report(&t);
}

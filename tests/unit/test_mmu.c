/*
 * MMU tests: page tables built in guest memory for Sv39, Sv48 and Sv57, and
 * every fault rule of the privileged spec's translation process (10.3.2):
 * invalid and reserved encodings, non-canonical addresses, misaligned
 * superpages, U/SUM/MXR permissions, A and D set by the hart, PTEs outside
 * RAM; then the TLB and SFENCE.VMA observed from running code, and stval
 * for a misaligned access whose second page faults, a fault on the
 * second of two loads that share the JIT's TLB probe, and an instruction
 * across a page end (run alone, and hot in a loop whose second page is
 * rewritten, remapped and unmapped); and two address spaces with ASIDs
 * switched without fences, with global mappings; CBO.ZERO's zeroing,
 * faults and gate.
 */
#include <string.h>
#include <time.h>

#include "check.h"
#include "engine/hart.h"
#include "engine_tier.h"
#include "run_limited.h"
#include "rvasm.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (16ull << 20)
#define PT_POOL (RAM_BASE + (8ull << 20))

#define V 0x01
#define R 0x02
#define W 0x04
#define X 0x08
#define U 0x10
#define A 0x40
#define D 0x80

static struct check_counts C;

struct pt {
	struct gram *ram;
	uint64_t root, next;
	int levels;
};

static uint64_t alloc_page(struct pt *t)
{
	uint64_t p = t->next;
	t->next += 4096;
	uint8_t zero[4096] = { 0 };
	gram_write(t->ram, p, zero, sizeof(zero));
	return p;
}

static uint64_t *pte_ptr(struct pt *t, uint64_t addr) { return gram_ptr(t->ram, addr, 8); }

/* Map va -> pa with a leaf at `leaf_level` (0 = 4 KiB page). */
static uint64_t *map(struct pt *t, uint64_t va, uint64_t pa, uint64_t flags, int leaf_level)
{
	uint64_t table = t->root;
	for (int lvl = t->levels - 1; lvl > leaf_level; lvl--) {
		uint64_t *e = pte_ptr(t, table + ((va >> (12 + 9 * lvl)) & 0x1ff) * 8);
		if (!(*e & V))
			*e = (alloc_page(t) >> 12) << 10 | V;
		table = (*e >> 10) << 12;
	}
	uint64_t *e = pte_ptr(t, table + ((va >> (12 + 9 * leaf_level)) & 0x1ff) * 8);
	*e = (pa >> 12) << 10 | flags;
	return e;
}

static struct hart *new_hart(struct gram *ram)
{
	struct hart_config cfg = { .hartid = 0, .timebase_hz = 10000000 };
	engine_tier_from_env(&cfg);
	return hart_create(ram, &cfg);
}

static void set_mode(struct hart *h, struct pt *t, unsigned mode)
{
	h->satp = (uint64_t)mode << 60 | t->root >> 12;
	tlb_flush_all(h);
	tlb_select(h);
}

static void set_priv(struct hart *h, int priv, uint64_t status_bits)
{
	h->priv = priv;
	h->status = status_bits;
	tlb_flush_all(h);
	tlb_select(h);
}

static void test_mode(unsigned mode, int levels, const char *name)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = levels };
	t.root = alloc_page(&t);
	set_mode(h, &t, mode);
	uint64_t pa;
	int vabits = 12 + 9 * levels;
	/* A high canonical kernel-style address. */
	uint64_t kva = ~0ull << (vabits - 1) | 0x123000;
	uint64_t data = RAM_BASE + 0x200000;

	uint64_t *e = map(&t, kva, data, V | R | W | X, 0);
	set_priv(h, PRIV_S, 0);
	CHECK(&C, mmu_translate(h, kva + 0x10, ACCESS_READ, &pa) == 0 && pa == data + 0x10,
	      "%s: 4K read translates (pa %llx)", name, (unsigned long long)pa);
	CHECK(&C, (*e & A) && !(*e & D), "%s: read sets A only (pte %llx)", name, (unsigned long long)*e);
	CHECK(&C, mmu_translate(h, kva, ACCESS_WRITE, &pa) == 0 && (*e & D), "%s: write sets D", name);
	CHECK(&C, mmu_translate(h, kva, ACCESS_EXEC, &pa) == 0, "%s: exec ok", name);

	/* Unmapped, non-canonical. */
	CHECK(&C, mmu_translate(h, kva + 0x1000, ACCESS_READ, &pa) == CAUSE_LOAD_PAGE, "%s: unmapped load", name);
	CHECK(&C, mmu_translate(h, kva + 0x1000, ACCESS_WRITE, &pa) == CAUSE_STORE_PAGE, "%s: unmapped store", name);
	CHECK(&C, mmu_translate(h, kva + 0x1000, ACCESS_EXEC, &pa) == CAUSE_FETCH_PAGE, "%s: unmapped fetch", name);
	uint64_t noncanon = kva ^ (1ull << (vabits + 1));
	CHECK(&C, mmu_translate(h, noncanon, ACCESS_READ, &pa) == CAUSE_LOAD_PAGE, "%s: non-canonical", name);

	/* Reserved encodings. */
	uint64_t va2 = kva + 0x2000;
	e = map(&t, va2, data, V | W | A | D, 0);
	CHECK(&C, mmu_translate(h, va2, ACCESS_READ, &pa) == CAUSE_LOAD_PAGE, "%s: W without R", name);
	*e = (data >> 12) << 10 | V | R | A | (1ull << 60);
	CHECK(&C, mmu_translate(h, va2, ACCESS_READ, &pa) == CAUSE_LOAD_PAGE, "%s: reserved bit 60", name);
	*e = (data >> 12) << 10 | V | R | A;
	CHECK(&C, mmu_translate(h, va2, ACCESS_WRITE, &pa) == CAUSE_STORE_PAGE, "%s: store to read-only", name);
	CHECK(&C, mmu_translate(h, va2, ACCESS_EXEC, &pa) == CAUSE_FETCH_PAGE, "%s: fetch from non-X", name);

	/* Superpages: a 2 MiB leaf, aligned and misaligned. */
	uint64_t sva = kva & ~0x1fffffull;
	sva += 0x400000;
	map(&t, sva, RAM_BASE + 0x400000, V | R | W | A | D, 1);
	CHECK(&C, mmu_translate(h, sva + 0x12345, ACCESS_READ, &pa) == 0 && pa == RAM_BASE + 0x412345,
	      "%s: 2M superpage (pa %llx)", name, (unsigned long long)pa);
	map(&t, sva + 0x200000, RAM_BASE + 0x401000, V | R | A, 1);
	CHECK(&C, mmu_translate(h, sva + 0x200000, ACCESS_READ, &pa) == CAUSE_LOAD_PAGE,
	      "%s: misaligned superpage", name);

	/* U bit, SUM, MXR. */
	uint64_t uva = 0x10000;
	map(&t, uva, data, V | R | W | X | U | A | D, 0);
	map(&t, uva + 0x1000, data, V | X | U | A, 0);
	CHECK(&C, mmu_translate(h, uva, ACCESS_READ, &pa) == CAUSE_LOAD_PAGE, "%s: S reads U page without SUM", name);
	set_priv(h, PRIV_S, SSTATUS_SUM);
	CHECK(&C, mmu_translate(h, uva, ACCESS_READ, &pa) == 0, "%s: S reads U page with SUM", name);
	CHECK(&C, mmu_translate(h, uva, ACCESS_EXEC, &pa) == CAUSE_FETCH_PAGE, "%s: S never executes U page", name);
	set_priv(h, PRIV_U, 0);
	CHECK(&C, mmu_translate(h, uva, ACCESS_EXEC, &pa) == 0, "%s: U executes U page", name);
	CHECK(&C, mmu_translate(h, kva, ACCESS_READ, &pa) == CAUSE_LOAD_PAGE, "%s: U reads S page", name);
	CHECK(&C, mmu_translate(h, uva + 0x1000, ACCESS_READ, &pa) == CAUSE_LOAD_PAGE, "%s: X-only without MXR", name);
	set_priv(h, PRIV_U, SSTATUS_MXR);
	CHECK(&C, mmu_translate(h, uva + 0x1000, ACCESS_READ, &pa) == 0, "%s: X-only with MXR", name);

	/* A page-table page outside RAM is an access fault of the original
	 * access type (privileged spec, "Virtual Address Translation
	 * Process", step 2: a PTE access that violates a PMA check). */
	set_priv(h, PRIV_S, 0);
	uint64_t bva = kva + 0x40000000ull * 3;
	uint64_t *root_e = pte_ptr(&t, t.root + ((bva >> (12 + 9 * (levels - 1))) & 0x1ff) * 8);
	uint64_t saved = *root_e;
	*root_e = (0x1000ull >> 12) << 10 | V; /* next level at 0x1000: not RAM */
	int c = mmu_translate(h, bva, ACCESS_READ, &pa);
	CHECK(&C, c == CAUSE_LOAD_ACCESS, "%s: PTE outside RAM (%d)", name, c);
	c = mmu_translate(h, bva, ACCESS_WRITE, &pa);
	CHECK(&C, c == CAUSE_STORE_ACCESS, "%s: PTE outside RAM, store (%d)", name, c);
	c = mmu_translate(h, bva, ACCESS_EXEC, &pa);
	CHECK(&C, c == CAUSE_FETCH_ACCESS, "%s: PTE outside RAM, fetch (%d)", name, c);
	*root_e = saved;

	hart_destroy(h);
	gram_destroy(&ram);
}

/* The TLB keeps a translation until SFENCE.VMA, observed from code. */
static void test_tlb_and_sfence(void)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = 3 };
	t.root = alloc_page(&t);
	/* Identity map of the first 2 MiB of RAM (code), plus page P. */
	map(&t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1);
	map(&t, PT_POOL, PT_POOL, V | R | W | A | D, 1); /* the page tables */
	uint64_t P = 0x40000000ull, page1 = RAM_BASE + 0x300000, page2 = RAM_BASE + 0x301000;
	uint64_t *pte = map(&t, P, page1, V | R | W | A | D, 0);
	uint64_t v1 = 111, v2 = 222;
	gram_write(&ram, page1, &v1, 8);
	gram_write(&ram, page2, &v2, 8);
	uint32_t code[] = {
		LD(10, 5, 0),         /* a0 = *P (fills the TLB) */
		SD(7, 6, 0),          /* retarget the PTE (t1 = &pte, t2 = new pte) */
		LD(11, 5, 0),         /* a1 = *P: stale translation still used */
		0x12000073u,          /* sfence.vma x0, x0 */
		LD(12, 5, 0),         /* a2 = *P: new translation */
		ECALL(),
	};
	gram_write(&ram, RAM_BASE, code, sizeof(code));
	hart_reset(h, RAM_BASE, 0);
	hart_csr_write(h, 0x180, 8ull << 60 | t.root >> 12);
	hart_set_reg(h, 5, P);
	hart_set_reg(h, 6, (uint64_t)((uint8_t *)pte - ram.host) + RAM_BASE);
	hart_set_reg(h, 7, (page2 >> 12) << 10 | V | R | W | A | D);
	struct hart_exit ex;
	run_limited(h, &ex);
	CHECK(&C, ex.reason == EXIT_SBI, "ran to the ecall (%d)", ex.reason);
	CHECK(&C, hart_get_reg(h, 10) == 111 && hart_get_reg(h, 11) == 111 && hart_get_reg(h, 12) == 222,
	      "tlb: %llu %llu %llu", (unsigned long long)hart_get_reg(h, 10),
	      (unsigned long long)hart_get_reg(h, 11), (unsigned long long)hart_get_reg(h, 12));
	hart_destroy(h);
	gram_destroy(&ram);
}

/* A load page fault from code: scause, stval and sepc as the spec says. */
static void test_fault_from_code(void)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = 4 };
	t.root = alloc_page(&t);
	map(&t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1);
	uint32_t code[] = { LD(10, 5, 8) };
	uint32_t handler[] = { ECALL() };
	gram_write(&ram, RAM_BASE, code, sizeof(code));
	gram_write(&ram, RAM_BASE + 0x800, handler, sizeof(handler));
	hart_reset(h, RAM_BASE, 0);
	hart_csr_write(h, 0x180, 9ull << 60 | t.root >> 12);
	hart_csr_write(h, 0x105, RAM_BASE + 0x800);
	hart_set_reg(h, 5, 0x7000);
	struct hart_exit ex;
	run_limited(h, &ex);
	uint64_t cause, tval, epc;
	hart_csr_read(h, 0x142, &cause);
	hart_csr_read(h, 0x143, &tval);
	hart_csr_read(h, 0x141, &epc);
	CHECK(&C, ex.reason == EXIT_SBI && cause == 13 && tval == 0x7008 && epc == RAM_BASE,
	      "sv48 load fault: cause %llu tval %llx epc %llx", (unsigned long long)cause,
	      (unsigned long long)tval, (unsigned long long)epc);
	hart_destroy(h);
	gram_destroy(&ram);
}

/* A misaligned access across a page boundary that faults on the second
 * page reports that page in stval (privileged spec 4.1.9: the portion that
 * faulted), writes nothing, and reports the first address when the first
 * page faults. */
static void cross_page(struct gram *ram, struct hart *h, uint64_t root, uint32_t insn,
		       uint64_t addr, uint64_t want_cause, uint64_t want_tval, const char *what)
{
	uint32_t code[] = { insn };
	gram_write(ram, RAM_BASE, code, sizeof(code));
	hart_reset(h, RAM_BASE, 0);
	hart_csr_write(h, 0x180, 8ull << 60 | root >> 12);
	hart_csr_write(h, 0x105, RAM_BASE + 0x800);
	hart_set_reg(h, 5, addr);
	hart_set_reg(h, 6, 0x1122334455667788ull);
	struct hart_exit ex;
	run_limited(h, &ex);
	uint64_t cause, tval;
	hart_csr_read(h, 0x142, &cause);
	hart_csr_read(h, 0x143, &tval);
	CHECK(&C, ex.reason == EXIT_SBI && cause == want_cause && tval == want_tval,
	      "%s: cause %llu tval %llx, wanted %llu %llx", what, (unsigned long long)cause,
	      (unsigned long long)tval, (unsigned long long)want_cause, (unsigned long long)want_tval);
}

static void test_fault_across_pages(void)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = 3 };
	t.root = alloc_page(&t);
	map(&t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1);
	uint64_t P = 0x40000000ull, page = RAM_BASE + 0x300000;
	map(&t, P, page, V | R | W | A | D, 0);   /* P + 4 KiB and P - 4 KiB unmapped */
	uint32_t handler[] = { ECALL() };
	gram_write(&ram, RAM_BASE + 0x800, handler, sizeof(handler));
	uint8_t before[8], after[8];
	memcpy(before, gram_ptr(&ram, page + 0xff8, 8), 8);
	cross_page(&ram, h, t.root, SD(6, 5, 0), P + 0xffc, 15, P + 0x1000, "store, second page");
	memcpy(after, gram_ptr(&ram, page + 0xff8, 8), 8);
	CHECK(&C, !memcmp(before, after, 8), "a faulting store wrote its first part");
	cross_page(&ram, h, t.root, LD(10, 5, 0), P + 0xffd, 13, P + 0x1000, "load, second page");
	cross_page(&ram, h, t.root, SD(6, 5, 0), P - 4, 15, P - 4, "store, first page");
	cross_page(&ram, h, t.root, LD(10, 5, 0), P - 2, 13, P - 2, "load, first page");
	hart_destroy(h);
	gram_destroy(&ram);
}

/* The setup test_remapped_code and test_code_kept_across_flushes share:
 * a caller at RAM_BASE (identity-mapped) that JALRs through t0 to cva +
 * 0x100, which maps either p1 (code setting a0 = 1) or p2 (a0 = 2);
 * `sfence.vma x0, x0; ecall` at RAM_BASE + 0x100 and an ECALL trap handler
 * at RAM_BASE + 0x800. The caller is on another page, so under the JIT the
 * jump goes through the jump cache, which maps virtual addresses to
 * translations. Each test puts its own fence code at RAM_BASE + 0x200. */
struct remap_rig {
	struct gram ram;
	struct hart *h;
	struct pt t;
	uint64_t cva, p1, p2;
	uint64_t *pte;  /* cva's leaf */
	struct hart_exit ex;
};

static void remap_rig_init(struct remap_rig *r)
{
	gram_init(&r->ram, RAM_BASE, RAM_SIZE);
	r->h = new_hart(&r->ram);
	r->t = (struct pt){ .ram = &r->ram, .next = PT_POOL, .levels = 3 };
	r->t.root = alloc_page(&r->t);
	map(&r->t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1); /* caller, identity */
	map(&r->t, PT_POOL, PT_POOL, V | R | W | A | D, 1);
	r->cva = 0x40000000ull;
	r->p1 = RAM_BASE + 0x300000;
	r->p2 = RAM_BASE + 0x301000;
	r->pte = map(&r->t, r->cva, r->p1, V | R | X | A, 0);
	uint32_t callee1[] = { ADDI(10, 0, 1), JALR(0, 1, 0) };
	uint32_t callee2[] = { ADDI(10, 0, 2), JALR(0, 1, 0) };
	uint32_t caller[] = { JALR(1, 5, 0), ECALL() };
	uint32_t fence[] = { 0x12000073u /* sfence.vma x0, x0 */, ECALL() };
	uint32_t handler[] = { ECALL() };
	/* At +0x100: a jump-cache slot other than the caller's. */
	gram_write(&r->ram, r->p1 + 0x100, callee1, sizeof(callee1));
	gram_write(&r->ram, r->p2 + 0x100, callee2, sizeof(callee2));
	gram_write(&r->ram, RAM_BASE, caller, sizeof(caller));
	gram_write(&r->ram, RAM_BASE + 0x100, fence, sizeof(fence));
	gram_write(&r->ram, RAM_BASE + 0x800, handler, sizeof(handler));
	hart_reset(r->h, RAM_BASE, 0);
	hart_csr_write(r->h, 0x180, 8ull << 60 | r->t.root >> 12);
	hart_csr_write(r->h, 0x105, RAM_BASE + 0x800);
	hart_set_reg(r->h, 5, r->cva + 0x100);
}

static void remap_rig_destroy(struct remap_rig *r)
{
	hart_destroy(r->h);
	gram_destroy(&r->ram);
}

/* Point cva at physical page pa with permissions `perm` (the guest's PTE
 * write; the fence is the caller's business). */
static void remap_to(struct remap_rig *r, uint64_t pa, uint64_t perm)
{
	*r->pte = (pa >> 12) << 10 | perm;
}

/* Run the code at fence_at (if not 0), then the caller `runs` times;
 * returns how many runs did not end at the ECALL with a0 == want (the last
 * a0 in *a0). */
static int run_caller(struct remap_rig *r, uint64_t fence_at, int runs, uint64_t want, uint64_t *a0)
{
	int bad = 0;
	if (fence_at) {
		hart_set_pc(r->h, fence_at);
		run_limited(r->h, &r->ex);
	}
	for (int n = 0; n < runs; n++) {
		hart_set_pc(r->h, RAM_BASE);
		hart_set_reg(r->h, 10, 0);
		run_limited(r->h, &r->ex);
		*a0 = hart_get_reg(r->h, 10);
		if (r->ex.reason != EXIT_SBI || *a0 != want)
			bad++;
	}
	return bad;
}

/* Code at one virtual address remapped to another physical page (the
 * guest changes the PTE, then runs SFENCE.VMA) runs the new page's code.
 * The jump cache must not outlive the mapping: not after a whole
 * SFENCE.VMA, nor after one of that address. */
static void test_remapped_code(void)
{
	struct remap_rig r;
	remap_rig_init(&r);
	uint32_t fence_va[] = { 0x12028073u /* sfence.vma x5, x0 */, ECALL() };
	gram_write(&r.ram, RAM_BASE + 0x200, fence_va, sizeof(fence_va));
	uint64_t a0 = 0;
	int bad = run_caller(&r, 0, 40, 1, &a0);
	CHECK(&C, !bad, "before the remap: a0 %llu", (unsigned long long)a0);
	remap_to(&r, r.p2, V | R | X | A);
	bad = run_caller(&r, RAM_BASE + 0x100, 3, 2, &a0);
	CHECK(&C, !bad, "after the remap and sfence.vma: a0 %llu (want 2)", (unsigned long long)a0);
	/* Back to the first page, fenced for that one address only: the jump
	 * cache drops that page's entries (and keeps the others'). */
	remap_to(&r, r.p1, V | R | X | A);
	bad = run_caller(&r, RAM_BASE + 0x200, 3, 1, &a0);
	CHECK(&C, !bad, "after the remap back and sfence.vma of its address: a0 %llu (want 1)",
	      (unsigned long long)a0);
	remap_rig_destroy(&r);
}

/* The JIT keeps its jump-cache entries across a whole SFENCE.VMA and
 * revalidates each against the page tables at its next use (a per-flush
 * salt makes translated code's probes miss until then). Observed from
 * running code: an entry whose mapping did not change is kept and runs;
 * a page remapped to other code runs the new code, also after entries
 * were kept once; a page left without execute permission raises a fetch
 * page fault at the jump's target, not the code kept for it; and after as
 * many flushes as there are salts, an entry of the first salt does not
 * come back to life for a remapped page. */
static void test_code_kept_across_flushes(void)
{
	struct remap_rig r;
	remap_rig_init(&r);
	struct hart *h = r.h;
	/* JC_SIZE full fences: every salt once, and back to the first. */
	uint32_t fences[] = { ADDI(6, 0, 2047), ADDI(6, 6, 2047), ADDI(6, 6, 2), /* t1 = 4096 */
			      0x12000073u, ADDI(6, 6, -1), BNE(6, 0, -8), ECALL() };
	gram_write(&r.ram, RAM_BASE + 0x200, fences, sizeof(fences));
	uint64_t a0 = 0;
	int bad = run_caller(&r, 0, 40, 1, &a0);
	CHECK(&C, !bad, "before any flush: a0 %llu (want 1)", (unsigned long long)a0);
	uint64_t kept = h->jc_kept;
	bad = run_caller(&r, RAM_BASE + 0x100, 3, 1, &a0);
	CHECK(&C, !bad, "after sfence.vma with the mapping unchanged: a0 %llu (want 1)",
	      (unsigned long long)a0);
	/* Only translated code probes the jump cache (lockstep's never fills it). */
	if (h->jit && !h->cfg.jit_lockstep)
		CHECK(&C, h->jc_kept > kept, "no jump-cache entry was kept across the flush");
	remap_to(&r, r.p2, V | R | X | A);
	bad = run_caller(&r, RAM_BASE + 0x100, 3, 2, &a0);
	CHECK(&C, !bad, "after the remap and sfence.vma x0, x0: a0 %llu (want 2)", (unsigned long long)a0);
	/* Readable, not executable: the jump to it faults there. */
	remap_to(&r, r.p2, V | R | A);
	run_caller(&r, RAM_BASE + 0x100, 1, 0, &a0);
	uint64_t cause, tval, epc;
	hart_csr_read(h, 0x142, &cause);
	hart_csr_read(h, 0x143, &tval);
	hart_csr_read(h, 0x141, &epc);
	CHECK(&C, r.ex.reason == EXIT_SBI && cause == 12 && tval == r.cva + 0x100 &&
		      epc == r.cva + 0x100 && a0 == 0,
	      "a jump to a page no longer executable: cause %llu tval %llx epc %llx a0 %llu",
	      (unsigned long long)cause, (unsigned long long)tval, (unsigned long long)epc,
	      (unsigned long long)a0);
	remap_to(&r, r.p1, V | R | X | A);
	bad = run_caller(&r, RAM_BASE + 0x100, 3, 1, &a0);
	CHECK(&C, !bad, "executable again, first page: a0 %llu (want 1)", (unsigned long long)a0);
	remap_to(&r, r.p2, V | R | X | A);
	bad = run_caller(&r, RAM_BASE + 0x200, 3, 2, &a0);
	CHECK(&C, !bad, "after the remap and 4096 sfence.vma x0, x0: a0 %llu (want 2)",
	      (unsigned long long)a0);
	remap_rig_destroy(&r);
}

/* A superpage remapped, then fenced once for its first address (as Linux
 * fences a huge mapping: one SFENCE.VMA per huge page): a load from
 * another 4 KiB piece of it, cached in another TLB entry, must see the
 * new mapping. In either half of the address space (hart.h tlb_super). */
static void superpage_fence_case(uint64_t dva)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = 3 };
	t.root = alloc_page(&t);
	map(&t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1); /* code, identity */
	map(&t, PT_POOL, PT_POOL, V | R | W | A | D, 1);
	uint64_t p1 = RAM_BASE + 0x400000, p2 = RAM_BASE + 0x600000;
	uint64_t *pte = map(&t, dva, p1, V | R | W | A | D, 1);
	uint64_t one = 1, two = 2;
	gram_write(&ram, p1 + 0x1000, &one, 8);
	gram_write(&ram, p2 + 0x1000, &two, 8);
	uint32_t load[] = { LD(11, 5, 0), LD(10, 6, 0), ECALL() };
	uint32_t fence_va[] = { 0x12028073u /* sfence.vma x5, x0 */, ECALL() };
	gram_write(&ram, RAM_BASE, load, sizeof(load));
	gram_write(&ram, RAM_BASE + 0x100, fence_va, sizeof(fence_va));
	hart_reset(h, RAM_BASE, 0);
	hart_csr_write(h, 0x180, 8ull << 60 | t.root >> 12);
	hart_set_reg(h, 5, dva);
	hart_set_reg(h, 6, dva + 0x1000);
	struct hart_exit ex;
	for (int n = 0; n < 40; n++) {
		hart_set_pc(h, RAM_BASE);
		run_limited(h, &ex);
	}
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(h, 10) == 1,
	      "before the remap: a0 %llu", (unsigned long long)hart_get_reg(h, 10));
	*pte = (p2 >> 12) << 10 | V | R | W | A | D;
	hart_set_pc(h, RAM_BASE + 0x100);
	run_limited(h, &ex);
	for (int n = 0; n < 3; n++) {
		hart_set_pc(h, RAM_BASE);
		run_limited(h, &ex);
		CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(h, 10) == 2,
		      "after the superpage's remap at %#llx and sfence.vma of its first page, run %d: "
		      "a0 %llu (want 2)", (unsigned long long)dva, n, (unsigned long long)hart_get_reg(h, 10));
	}
	hart_destroy(h);
	gram_destroy(&ram);
}

static void test_superpage_fence(void)
{
	superpage_fence_case(0x40000000ull);
	superpage_fence_case(0xffffffffc0200000ull);
}

/* Code on a superpage, hot (translated, in the jump cache of the caller's
 * JALR), then the superpage remapped to other code and fenced once for its
 * first address, not the code's page: the next call must run the new code.
 * And a data piece of a superpage pushed into the second way by a 4 KiB
 * page of the same TLB index, then remapped and fenced the same way: the
 * next load must not find the old piece there. */
static void test_superpage_remap_code_and_second_way(void)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = 3 };
	t.root = alloc_page(&t);
	map(&t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1); /* caller, identity */
	map(&t, PT_POOL, PT_POOL, V | R | W | A | D, 1);
	uint64_t cva = 0x40000000ull, p1 = RAM_BASE + 0x400000, p2 = RAM_BASE + 0x600000;
	uint64_t dva = 0x40200000ull, d1 = RAM_BASE + 0x200000, d2 = RAM_BASE + 0xa00000;
	uint64_t *cpte = map(&t, cva, p1, V | R | X | A, 1);
	uint64_t *dpte = map(&t, dva, d1, V | R | W | A | D, 1);
	/* A 4 KiB page whose TLB index is that of dva + 0x1000. */
	uint64_t clash = dva + 0x1000 + (uint64_t)TLB_SIZE * 4096, cp = RAM_BASE + 0x380000;
	map(&t, clash, cp, V | R | A, 0);
	uint32_t f1[] = { ADDI(10, 0, 1), JALR(0, 1, 0) }, f2[] = { ADDI(10, 0, 2), JALR(0, 1, 0) };
	gram_write(&ram, p1 + 0x3000, f1, sizeof(f1));
	gram_write(&ram, p2 + 0x3000, f2, sizeof(f2));
	uint64_t one = 1, two = 2, seven = 7;
	gram_write(&ram, d1 + 0x1000, &one, 8);
	gram_write(&ram, d2 + 0x1000, &two, 8);
	gram_write(&ram, cp, &seven, 8);
	/* +0: call the superpage's code; load from the data piece, then from
	 * the clashing page, which leaves the piece in the second way (where
	 * the next run's first load finds it); ecall.
	 * +0x100: sfence.vma x7 (the superpages' first addresses), ecall. */
	uint32_t caller[] = { JALR(1, 5, 0), LD(11, 6, 0), LD(12, 28, 0), ECALL() };
	uint32_t fence[] = { 0x12038073u /* sfence.vma x7, x0 */, ECALL() };
	gram_write(&ram, RAM_BASE, caller, sizeof(caller));
	gram_write(&ram, RAM_BASE + 0x100, fence, sizeof(fence));
	hart_reset(h, RAM_BASE, 0);
	hart_csr_write(h, 0x180, 8ull << 60 | t.root >> 12);
	hart_set_reg(h, 5, cva + 0x3000);
	hart_set_reg(h, 6, dva + 0x1000);
	hart_set_reg(h, 28, clash);
	struct hart_exit ex;
	for (int n = 0; n < 40; n++) {
		hart_set_pc(h, RAM_BASE);
		run_limited(h, &ex);
	}
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(h, 10) == 1 && hart_get_reg(h, 11) == 1 &&
		  hart_get_reg(h, 12) == 7,
	      "before the remaps: a0 %llu a1 %llu a2 %llu", (unsigned long long)hart_get_reg(h, 10),
	      (unsigned long long)hart_get_reg(h, 11), (unsigned long long)hart_get_reg(h, 12));
	*cpte = (p2 >> 12) << 10 | V | R | X | A;
	*dpte = (d2 >> 12) << 10 | V | R | W | A | D;
	for (int k = 0; k < 2; k++) {
		hart_set_reg(h, 7, k ? dva : cva);
		hart_set_pc(h, RAM_BASE + 0x100);
		run_limited(h, &ex);
	}
	for (int n = 0; n < 3; n++) {
		hart_set_pc(h, RAM_BASE);
		run_limited(h, &ex);
		CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(h, 10) == 2 && hart_get_reg(h, 11) == 2,
		      "after both superpages' remap and a fence of their first addresses, run %d: "
		      "a0 %llu (want 2: the new code), a1 %llu (want 2: the new data)", n,
		      (unsigned long long)hart_get_reg(h, 10), (unsigned long long)hart_get_reg(h, 11));
	}
	hart_destroy(h);
	gram_destroy(&ram);
}

/* Two pages whose TLB index is the same (TLB_SIZE pages apart) both stay
 * cached, the second way holding the one pushed out; SFENCE.VMA of one of
 * them must drop it from whichever way it is in, for loads and stores. */
static void test_second_way_fence(void)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = 3 };
	t.root = alloc_page(&t);
	map(&t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1);
	map(&t, PT_POOL, PT_POOL, V | R | W | A | D, 1);
	uint64_t P = 0x40000000ull, Q = P + (uint64_t)TLB_SIZE * 4096;
	uint64_t page1 = RAM_BASE + 0x300000, page2 = RAM_BASE + 0x301000, page3 = RAM_BASE + 0x302000;
	uint64_t *pte = map(&t, P, page1, V | R | W | A | D, 0);
	map(&t, Q, page3, V | R | W | A | D, 0);
	uint64_t v1 = 111, v2 = 222, v3 = 333;
	gram_write(&ram, page1, &v1, 8);
	gram_write(&ram, page2, &v2, 8);
	gram_write(&ram, page3, &v3, 8);
	uint32_t code[] = {
		LD(10, 5, 0),         /* a0 = *P */
		SD(29, 5, 8),         /* a write translation of P */
		LD(11, 28, 0),        /* a1 = *Q: P's entries go to the second way */
		SD(29, 28, 8),
		SD(7, 6, 0),          /* retarget P's PTE to page2 */
		LD(12, 5, 0),         /* a2 = *P through the second way: still page1 */
		LD(13, 28, 0),        /* Q first again */
		SD(29, 28, 8),
		0x12028073u,          /* sfence.vma x5, x0 (P only) */
		LD(14, 5, 0),         /* a4 = *P: page2 */
		SD(29, 5, 16),        /* to page2 */
		ECALL(),
	};
	gram_write(&ram, RAM_BASE, code, sizeof(code));
	hart_reset(h, RAM_BASE, 0);
	hart_csr_write(h, 0x180, 8ull << 60 | t.root >> 12);
	hart_set_reg(h, 5, P);
	hart_set_reg(h, 28, Q);
	hart_set_reg(h, 29, 0x5eed);
	hart_set_reg(h, 6, (uint64_t)((uint8_t *)pte - ram.host) + RAM_BASE);
	hart_set_reg(h, 7, (page2 >> 12) << 10 | V | R | W | A | D);
	struct hart_exit ex;
	run_limited(h, &ex);
	uint64_t w1 = 0, w2 = 0;
	gram_read(&ram, page1 + 16, &w1, 8);
	gram_read(&ram, page2 + 16, &w2, 8);
	CHECK(&C, ex.reason == EXIT_SBI, "ran to the ecall (%d)", ex.reason);
	CHECK(&C, hart_get_reg(h, 10) == 111 && hart_get_reg(h, 11) == 333 &&
		  hart_get_reg(h, 13) == 333,
	      "two pages at one TLB index: %llu %llu %llu", (unsigned long long)hart_get_reg(h, 10),
	      (unsigned long long)hart_get_reg(h, 11), (unsigned long long)hart_get_reg(h, 13));
	CHECK(&C, hart_get_reg(h, 12) == 111,
	      "before the fence P is still cached (second way): a2 %llu",
	      (unsigned long long)hart_get_reg(h, 12));
	CHECK(&C, hart_get_reg(h, 14) == 222 && w2 == 0x5eed && w1 == 0,
	      "after sfence.vma of P: load %llu (want 222), store to the new page %llx, to the old %llx",
	      (unsigned long long)hart_get_reg(h, 14), (unsigned long long)w2, (unsigned long long)w1);
	hart_destroy(h);
	gram_destroy(&ram);
}

/* Loads off one base register share a TLB probe under the JIT
 * (jit/probes.h): the first probes the range of both and the second reuses
 * its result, also when an ADDI moved the base between them. A loop walks
 * a0 through a page whose next page is unmapped; in the last round the
 * first load is on the page and the second is not: the second must fault
 * exactly (sepc at it, stval its address, the first one's result kept,
 * every round before counted), never read through the addend kept from
 * the rounds before. */
static void shared_probe_fault(const uint32_t *code, size_t n, uint64_t want_epc, const char *what)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = 3 };
	t.root = alloc_page(&t);
	map(&t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1);
	uint64_t P = 0x40000000ull, page = RAM_BASE + 0x300000;
	map(&t, P, page, V | R | W | A | D, 0);   /* P + 4 KiB unmapped */
	for (uint64_t o = 0; o < 4096; o += 8)
		gram_write(&ram, page + o, &o, 8);
	/* The page after P in RAM: what a stale addend would read. */
	uint64_t poison = 0xbad;
	for (uint64_t o = 0; o < 4096; o += 8)
		gram_write(&ram, page + 4096 + o, &poison, 8);
	uint32_t handler[] = { ECALL() };
	gram_write(&ram, RAM_BASE, code, n * 4);
	gram_write(&ram, RAM_BASE + 0x800, handler, sizeof(handler));
	hart_reset(h, RAM_BASE, 0);
	hart_csr_write(h, 0x180, 8ull << 60 | t.root >> 12);
	hart_csr_write(h, 0x105, RAM_BASE + 0x800);
	hart_set_reg(h, 10, P + 0xe00);
	hart_set_reg(h, 14, P + 0x2000);
	struct hart_exit ex;
	do
		if (run_limited(h, &ex))
			break;
	while (ex.reason == EXIT_KICK);
	uint64_t cause, tval, epc, want = 0;
	for (uint64_t o = 0xe08; o <= 0xff8; o += 8)
		want += o;
	hart_csr_read(h, 0x142, &cause);
	hart_csr_read(h, 0x143, &tval);
	hart_csr_read(h, 0x141, &epc);
	CHECK(&C, ex.reason == EXIT_SBI && cause == 13 && tval == P + 0x1000 && epc == want_epc,
	      "%s: cause %llu tval %llx epc %llx", what, (unsigned long long)cause,
	      (unsigned long long)tval, (unsigned long long)epc);
	CHECK(&C, hart_get_reg(h, 11) == 0xff8 && hart_get_reg(h, 13) == want,
	      "%s: state at the fault: a1 %llx a3 %llx (want %llx) a0 %llx", what,
	      (unsigned long long)hart_get_reg(h, 11), (unsigned long long)hart_get_reg(h, 13),
	      (unsigned long long)want, (unsigned long long)hart_get_reg(h, 10));
	hart_destroy(h);
	gram_destroy(&ram);
}

static void test_shared_probe_fault(void)
{
	uint32_t code[] = {
		LD(11, 10, 0),    /* 0x00: a1 = [a0] */
		LD(12, 10, 8),    /* 0x04: a2 = [a0 + 8] */
		ADD(13, 13, 12),  /* 0x08: a3 += a2 */
		ADDI(10, 10, 8),  /* 0x0c */
		BNE(10, 14, -16), /* 0x10 */
		ECALL(),
	};
	shared_probe_fault(code, sizeof(code) / 4, RAM_BASE + 4, "second load of a shared probe");
	uint32_t stepped[] = {
		LD(11, 10, 0),    /* 0x00: a1 = [a0] */
		ADDI(10, 10, 8),  /* 0x04 */
		LD(12, 10, 0),    /* 0x08: a2 = [a0] (the old a0 + 8) */
		ADD(13, 13, 12),  /* 0x0c: a3 += a2 */
		BNE(10, 14, -16), /* 0x10 */
		ECALL(),
	};
	shared_probe_fault(stepped, sizeof(stepped) / 4, RAM_BASE + 8, "shared probe across an ADDI");
}

/* A run of stores off one base kept in memory (t0; under the JIT a probe
 * group whose followers add their offset to the member before's address)
 * steps by 8 through the end of a page whose successor is unmapped (the
 * rounds within the page take the group's fast path): the round
 * whose last store crosses takes a store page fault there, after the
 * three stores before it, and nothing lands in the RAM after the page
 * (where a stale addend would write). */
static void test_shared_probe_store_fault(void)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = 3 };
	t.root = alloc_page(&t);
	map(&t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1);
	uint64_t P = 0x40000000ull, page = RAM_BASE + 0x300000;
	map(&t, P, page, V | R | W | A | D, 0);   /* P + 4 KiB unmapped */
	uint32_t code[] = {
		SD(11, 5, 0),     /* 0x00 */
		SD(12, 5, 8),     /* 0x04 */
		SD(13, 5, 16),    /* 0x08 */
		SD(14, 5, 24),    /* 0x0c */
		ADDI(5, 5, 8),    /* 0x10 */
		BNE(5, 29, -20),  /* 0x14 */
		ECALL(),
	};
	uint32_t handler[] = { ECALL() };
	gram_write(&ram, RAM_BASE, code, sizeof(code));
	gram_write(&ram, RAM_BASE + 0x800, handler, sizeof(handler));
	hart_reset(h, RAM_BASE, 0);
	hart_csr_write(h, 0x180, 8ull << 60 | t.root >> 12);
	hart_csr_write(h, 0x105, RAM_BASE + 0x800);
	hart_set_reg(h, 5, P + 0xf80);
	hart_set_reg(h, 29, P + 0x2000);
	for (unsigned r = 11; r <= 14; r++)
		hart_set_reg(h, r, 0x1100 + r);
	struct hart_exit ex;
	do
		if (run_limited(h, &ex))
			break;
	while (ex.reason == EXIT_KICK);
	uint64_t cause, tval, epc;
	hart_csr_read(h, 0x142, &cause);
	hart_csr_read(h, 0x143, &tval);
	hart_csr_read(h, 0x141, &epc);
	CHECK(&C, ex.reason == EXIT_SBI && cause == 15 && tval == P + 0x1000 && epc == RAM_BASE + 0x0c &&
		  hart_get_reg(h, 5) == P + 0xfe8,
	      "store run through a page end: cause %llu tval %llx epc %llx t0 %llx",
	      (unsigned long long)cause, (unsigned long long)tval, (unsigned long long)epc,
	      (unsigned long long)hart_get_reg(h, 5));
	/* Each slot holds a1 from the last round that began there; the
	 * faulting round's a2 and a3 follow. */
	unsigned bad = 0, stray = 0;
	for (uint64_t o = 0xf80; o < 0x1000; o += 8) {
		uint64_t v, w = 0x1100 + (o == 0xff0 ? 12 : o == 0xff8 ? 13 : 11);
		gram_read(&ram, page + o, &v, 8);
		bad += v != w;
	}
	for (uint64_t o = 0; o < 64; o += 8) {
		uint64_t v;
		gram_read(&ram, page + 4096 + o, &v, 8);
		stray += v != 0;
	}
	CHECK(&C, bad == 0 && stray == 0, "%u stores wrong before the fault, %u landed past the page",
	      bad, stray);
	hart_destroy(h);
	gram_destroy(&ram);
}

/* A flush empties only the TLB indexes filled since the one before
 * (hart.h tlb_filled). A loop loads from more pages than the TLB holds
 * (indexes taken twice, both ways), one each, all backed by a few pages;
 * then the last page's PTE is retargeted and SFENCE.VMA x0 must drop it.
 * Then the same with a few pages. */
static void tlb_flush_case(unsigned pages)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = 3 };
	t.root = alloc_page(&t);
	map(&t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1);
	map(&t, PT_POOL, PT_POOL, V | R | W | A | D, 1);
	uint64_t P = 0x40000000ull, data = RAM_BASE + 0x400000, moved = RAM_BASE + 0x7ff000;
	uint64_t *last = NULL, want = 0;
	for (uint64_t k = 0; k < pages; k++) {
		last = map(&t, P + 4096 * k, data + 4096 * (k % 64), V | R | W | A | D, 0);
		uint64_t v = k % 64 + 1;
		gram_write(&ram, data + 4096 * (k % 64), &v, 8);
		want += v;
	}
	uint64_t fresh = 0xabc;
	gram_write(&ram, moved, &fresh, 8);
	uint32_t code[] = {
		LD(11, 10, 0),        /* 0x00: a1 = [a0] (a TLB fill per page) */
		ADD(13, 13, 11),      /* 0x04: a3 += a1 */
		ADD(10, 10, 12),      /* 0x08: a0 += 4096 */
		BNE(10, 14, -12),     /* 0x0c */
		SD(7, 6, 0),          /* retarget the last page's PTE */
		0x12000073u,          /* sfence.vma x0, x0 */
		LD(15, 28, 0),        /* a5 = [last page] */
		ECALL(),
	};
	gram_write(&ram, RAM_BASE, code, sizeof(code));
	hart_reset(h, RAM_BASE, 0);
	hart_csr_write(h, 0x180, 8ull << 60 | t.root >> 12);
	hart_set_reg(h, 10, P);
	hart_set_reg(h, 12, 4096);
	hart_set_reg(h, 14, P + 4096ull * pages);
	hart_set_reg(h, 28, P + 4096ull * (pages - 1));
	hart_set_reg(h, 6, (uint64_t)((uint8_t *)last - ram.host) + RAM_BASE);
	hart_set_reg(h, 7, (moved >> 12) << 10 | V | R | W | A | D);
	struct hart_exit ex;
	do
		if (run_limited(h, &ex))
			break;
	while (ex.reason == EXIT_KICK);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(h, 13) == want && hart_get_reg(h, 15) == fresh,
	      "%u pages loaded (TLB_SIZE %u), last remapped and fenced: sum %llu (want %llu), "
	      "a5 %#llx (want %#llx)", pages, TLB_SIZE, (unsigned long long)hart_get_reg(h, 13),
	      (unsigned long long)want, (unsigned long long)hart_get_reg(h, 15),
	      (unsigned long long)fresh);
	hart_destroy(h);
	gram_destroy(&ram);
}

static void test_tlb_flush(void)
{
	tlb_flush_case(2 * TLB_SIZE + 40);
	tlb_flush_case(8);
}

/* The TLB holds 4096 pages (16 MiB, the tables of 7-Zip's match finder):
 * a loop loads from that many pages, one each (every index once); then
 * every PTE is retargeted without a fence, and the same loop again reads
 * the old pages through the TLB, all of them. Reading through a stale
 * translation is what lockstep cannot compare: not under lockstep. */
enum { REACH = 4096 };

static void test_tlb_reach(void)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	if (h->cfg.jit_lockstep) {
		hart_destroy(h);
		gram_destroy(&ram);
		return;
	}
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = 3 };
	t.root = alloc_page(&t);
	map(&t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1);
	uint64_t P = 0x40000000ull, old_pa = RAM_BASE + 0x400000, new_pa = RAM_BASE + 0x401000;
	uint64_t one = 1, two = 2, *pte[REACH];
	gram_write(&ram, old_pa, &one, 8);
	gram_write(&ram, new_pa, &two, 8);
	for (uint64_t k = 0; k < REACH; k++)
		pte[k] = map(&t, P + 4096 * k, old_pa, V | R | A, 0);
	uint32_t code[] = { ADDI(13, 0, 0), LD(11, 10, 0), ADD(13, 13, 11), ADD(10, 10, 12),
			    BNE(10, 14, -12), ECALL() };
	gram_write(&ram, RAM_BASE, code, sizeof(code));
	hart_reset(h, RAM_BASE, 0);
	hart_csr_write(h, 0x180, 8ull << 60 | t.root >> 12);
	uint64_t sum[2];
	for (int round = 0; round < 2; round++) {
		hart_set_pc(h, RAM_BASE);
		hart_set_reg(h, 10, P);
		hart_set_reg(h, 12, 4096);
		hart_set_reg(h, 14, P + 4096ull * REACH);
		struct hart_exit ex;
		do
			if (run_limited(h, &ex))
				break;
		while (ex.reason == EXIT_KICK);
		sum[round] = ex.reason == EXIT_SBI ? hart_get_reg(h, 13) : 0;
		for (unsigned k = 0; k < REACH; k++)
			*pte[k] = (new_pa >> 12) << 10 | V | R | A;
	}
	CHECK(&C, sum[0] == REACH && sum[1] == REACH,
	      "%u pages loaded, then retargeted without a fence: sums %llu, %llu (want %u: all "
	      "read through the TLB)", REACH, (unsigned long long)sum[0], (unsigned long long)sum[1],
	      REACH);
	hart_destroy(h);
	gram_destroy(&ram);
}

/* A page stored to (a write TLB entry) that then becomes a code page:
 * its write entry goes (hart.h tlb_wfilled names where), so the store
 * that rewrites the code there takes the checked path and the block built
 * from it is rebuilt after FENCE.I. */
static void test_code_page_write_entry(void)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	uint64_t dpg = RAM_BASE + 0x10000;
	uint32_t code[] = {
		SW(5, 10, 0),        /* D: addi a1, x0, 1 (a write entry for D) */
		SW(6, 10, 4),        /* D + 4: ret */
		FENCE_I(),
		JALR(1, 10, 0),      /* run D: a1 = 1, D is a code page now */
		SW(7, 10, 0),        /* D: addi a1, x0, 2 */
		FENCE_I(),
		JALR(1, 10, 0),      /* a1 = 2 */
		ECALL(),
	};
	gram_write(&ram, RAM_BASE, code, sizeof(code));
	hart_reset(h, RAM_BASE, 0);
	hart_set_reg(h, 10, dpg);
	hart_set_reg(h, 5, ADDI(11, 0, 1));
	hart_set_reg(h, 6, JALR(0, 1, 0));
	hart_set_reg(h, 7, ADDI(11, 0, 2));
	struct hart_exit ex;
	do
		if (run_limited(h, &ex))
			break;
	while (ex.reason == EXIT_KICK);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(h, 11) == 2,
	      "code rewritten through a page stored to before it became code: a1 %llu (want 2)",
	      (unsigned long long)hart_get_reg(h, 11));
	hart_destroy(h);
	gram_destroy(&ram);
}

/* A 32-bit instruction across a page end (its parts in two pages): run
 * again and again it is fetched from the TLB, not by walking the page
 * tables each time (a walk logs a TLB fill: the log must not grow); and
 * when the second page is remapped and fenced, the new upper half runs. */
static void test_straddling_fetch(void)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = 3 };
	t.root = alloc_page(&t);
	map(&t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1);
	uint64_t cva = 0x40000000ull, p1 = RAM_BASE + 0x300000, p2 = RAM_BASE + 0x302000,
		 p3 = RAM_BASE + 0x304000;
	map(&t, cva, p1, V | R | X | A, 0);
	uint64_t *pte = map(&t, cva + 0x1000, p2, V | R | X | A, 0);
	/* addi a0, a0, 1 at cva + 0xffe, then ecall; p3 holds addi a0, a0, 2's
	 * upper half (ADDI's lower halves differ only in rd, rs1 and funct3). */
	uint32_t add1 = ADDI(10, 10, 1), add2 = ADDI(10, 10, 2), ecall = ECALL();
	CHECK(&C, (add1 & 0xffff) == (add2 & 0xffff), "the two ADDIs share their lower half");
	uint16_t lo = (uint16_t)add1, hi1 = (uint16_t)(add1 >> 16), hi2 = (uint16_t)(add2 >> 16);
	gram_write(&ram, p1 + 0xffe, &lo, 2);
	gram_write(&ram, p2, &hi1, 2);
	gram_write(&ram, p2 + 2, &ecall, 4);
	gram_write(&ram, p3, &hi2, 2);
	gram_write(&ram, p3 + 2, &ecall, 4);
	uint32_t fence[] = { 0x12000073u /* sfence.vma x0, x0 */, ECALL() };
	gram_write(&ram, RAM_BASE + 0x100, fence, sizeof(fence));
	hart_reset(h, RAM_BASE, 0);
	hart_csr_write(h, 0x180, 8ull << 60 | t.root >> 12);
	hart_set_reg(h, 10, 0);
	struct hart_exit ex;
	uint64_t walks = 0;
	for (int n = 0; n < 40; n++) {
		if (n == 4)
			walks = h->mmu_stats.walks[ACCESS_EXEC];
		hart_set_pc(h, cva + 0xffe);
		run_limited(h, &ex);
	}
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(h, 10) == 40, "straddling addi 40 times: a0 %llu",
	      (unsigned long long)hart_get_reg(h, 10));
	CHECK(&C, h->mmu_stats.walks[ACCESS_EXEC] == walks,
	      "a straddling instruction run 36 times more walked %llu times",
	      (unsigned long long)(h->mmu_stats.walks[ACCESS_EXEC] - walks));
	*pte = (p3 >> 12) << 10 | V | R | X | A;
	hart_set_pc(h, RAM_BASE + 0x100);
	run_limited(h, &ex);
	hart_set_reg(h, 10, 0);
	for (int n = 0; n < 3; n++) {
		hart_set_pc(h, cva + 0xffe);
		run_limited(h, &ex);
	}
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(h, 10) == 6,
	      "after its second page was remapped: a0 %llu (want 6)", (unsigned long long)hart_get_reg(h, 10));
	hart_destroy(h);
	gram_destroy(&ram);
}

/* Run the straddling loop of test_straddling_loop n times from its start:
 * a0 counts up by the straddling ADDI's immediate. */
static void run_loop(struct hart *h, uint64_t start, unsigned n, struct hart_exit *ex)
{
	hart_set_reg(h, 10, 0);
	hart_set_reg(h, 11, n);
	hart_set_pc(h, start);
	run_limited(h, ex);
}

/* A hot loop through an instruction that straddles a page end stays in
 * its blocks (under the JIT, in translated code: a link into the
 * straddling instruction's own block, the jump cache out of it), and that
 * block still follows its upper half's page: rewritten by a store through
 * another mapping and FENCE.I, remapped (PTE changed, SFENCE.VMA of that
 * page), unmapped (a fetch page fault on the second page). */
static void test_straddling_loop(void)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = 3 };
	t.root = alloc_page(&t);
	map(&t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1);
	map(&t, RAM_BASE + 0x200000, RAM_BASE + 0x200000, V | R | W | A | D, 1); /* p2 as data */
	uint64_t cva = 0x40000000ull, p1 = RAM_BASE + 0x300000, p2 = RAM_BASE + 0x302000,
		 p3 = RAM_BASE + 0x304000;
	map(&t, cva, p1, V | R | X | A, 0);
	uint64_t *pte = map(&t, cva + 0x1000, p2, V | R | X | A, 0);
	/* cva + 0xff6: addi a1, a1, -1; + 0xffa: beq x0, x0 to + 0xffe (a
	 * branch within the page, which the executor links and translated
	 * code jumps by); + 0xffe: addi a0, a0, 1 (straddling); + 0x1002:
	 * bnez a1, back to + 0xff6; ecall. p3 holds the same second page with
	 * addi a0, a0, 3. */
	uint32_t dec = ADDI(11, 11, -1), add1 = ADDI(10, 10, 1), add2 = ADDI(10, 10, 2),
		 add3 = ADDI(10, 10, 3);
	uint32_t head[] = { dec, BEQ(0, 0, 4) }, tail[] = { BNE(11, 0, -12), ECALL() };
	uint16_t lo = (uint16_t)add1, hi1 = (uint16_t)(add1 >> 16), hi3 = (uint16_t)(add3 >> 16);
	CHECK(&C, lo == (uint16_t)add3 && lo == (uint16_t)add2, "the ADDIs share their lower half");
	gram_write(&ram, p1 + 0xff6, head, sizeof(head));
	gram_write(&ram, p1 + 0xffe, &lo, 2);
	gram_write(&ram, p2, &hi1, 2);
	gram_write(&ram, p2 + 2, tail, sizeof(tail));
	gram_write(&ram, p3, &hi3, 2);
	gram_write(&ram, p3 + 2, tail, sizeof(tail));
	/* +0x100: sh t0, 0(t1); fence.i; ecall. +0x200: sfence.vma t1; ecall.
	 * +0x800: the trap handler, ecall. */
	uint32_t rewrite[] = { SH(5, 6, 0), FENCE_I(), ECALL() };
	uint32_t fence_va[] = { 0x12030073u /* sfence.vma x6, x0 */, ECALL() };
	uint32_t handler[] = { ECALL() };
	gram_write(&ram, RAM_BASE + 0x100, rewrite, sizeof(rewrite));
	gram_write(&ram, RAM_BASE + 0x200, fence_va, sizeof(fence_va));
	gram_write(&ram, RAM_BASE + 0x800, handler, sizeof(handler));
	hart_reset(h, RAM_BASE, 0);
	hart_csr_write(h, 0x180, 8ull << 60 | t.root >> 12);
	hart_csr_write(h, 0x105, RAM_BASE + 0x800);
	struct hart_exit ex;
	uint64_t start = cva + 0xff6;

	run_loop(h, start, 50, &ex);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(h, 10) == 50, "straddling loop: a0 %llu (want 50)",
	      (unsigned long long)hart_get_reg(h, 10));
	uint64_t built = h->blocks_built;
	run_loop(h, start, 1000, &ex);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(h, 10) == 1000, "straddling loop again: a0 %llu",
	      (unsigned long long)hart_get_reg(h, 10));
	CHECK(&C, h->blocks_built == built, "1000 runs of a straddling instruction built %llu blocks (want 0)",
	      (unsigned long long)(h->blocks_built - built));

	/* The guest rewrites the upper half through p2's identity mapping. */
	hart_set_reg(h, 5, (uint16_t)(add2 >> 16));
	hart_set_reg(h, 6, p2);
	hart_set_pc(h, RAM_BASE + 0x100);
	run_limited(h, &ex);
	run_loop(h, start, 10, &ex);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(h, 10) == 20,
	      "after its upper half was rewritten and FENCE.I: a0 %llu (want 20)",
	      (unsigned long long)hart_get_reg(h, 10));

	/* The second page remapped to p3, fenced for that page only. */
	*pte = (p3 >> 12) << 10 | V | R | X | A;
	hart_set_reg(h, 6, cva + 0x1000);
	hart_set_pc(h, RAM_BASE + 0x200);
	run_limited(h, &ex);
	run_loop(h, start, 10, &ex);
	CHECK(&C, ex.reason == EXIT_SBI && hart_get_reg(h, 10) == 30,
	      "after its second page was remapped: a0 %llu (want 30)", (unsigned long long)hart_get_reg(h, 10));

	/* Unmapped: the fetch of the upper half faults, on its own page. */
	*pte = 0;
	hart_set_pc(h, RAM_BASE + 0x200);
	run_limited(h, &ex);
	run_loop(h, start, 10, &ex);
	uint64_t cause, tval, epc;
	hart_csr_read(h, 0x142, &cause);
	hart_csr_read(h, 0x143, &tval);
	hart_csr_read(h, 0x141, &epc);
	CHECK(&C, ex.reason == EXIT_SBI && cause == CAUSE_FETCH_PAGE && tval == cva + 0x1000 &&
		  epc == cva + 0xffe && hart_get_reg(h, 11) == 9,
	      "after its second page was unmapped: cause %llu tval %llx epc %llx a1 %llu",
	      (unsigned long long)cause, (unsigned long long)tval, (unsigned long long)epc,
	      (unsigned long long)hart_get_reg(h, 11));
	hart_destroy(h);
	gram_destroy(&ram);
}

/* Two address spaces with their own ASIDs (privileged spec 10.1.11,
 * 10.2.1, 10.3.1): page tables T1 and T2 map the code and the tables
 * globally (as a kernel does), and VA P (data) and XV (code) to pages of
 * their own; VA Gv is a global mapping of one page in both. satp is
 * switched without a fence, as Linux with ASIDs does. The TLB keeps
 * global entries across such a switch (and across SFENCE.VMA x0, asid),
 * and non-global ones never outlive it. Observing that a global entry was
 * kept means reading through a stale translation, which lockstep cannot
 * compare (its shadow drops its whole TLB at every change): under
 * lockstep those steps are left out. */
enum { AS_SWITCH = 0x000, AS_FENCE_ASID = 0x100, AS_FENCE_ALL = 0x200, AS_BARE = 0x300,
       AS_SUM = 0x400, AS_CALLEE = 0x100, AS_PAGES = 600 };

/* Run the snippet at RAM_BASE + at (a0: the satp to switch to, a3: the
 * ASID to fence): a1 = *P, a2 = *Gv, a4 = what the code at XV returns. */
static bool as_run(struct hart *h, unsigned at, uint64_t satp, uint64_t asid)
{
	struct hart_exit ex;
	hart_set_pc(h, RAM_BASE + at);
	hart_set_reg(h, 10, satp);
	hart_set_reg(h, 13, asid);
	hart_set_reg(h, 14, 0);
	do
		if (run_limited(h, &ex))
			return false;
	while (ex.reason == EXIT_KICK);
	return ex.reason == EXIT_SBI;
}

static void test_asid_switch(void)
{
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	bool lockstep = h->cfg.jit_lockstep;
	enum { G = 0x20 };
	struct pt t1 = { .ram = &ram, .next = PT_POOL, .levels = 3 }, t2;
	t1.root = alloc_page(&t1);
	t2 = t1;
	t2.root = alloc_page(&t1);
	t2.next = t1.next + 64 * 4096;
	uint64_t P = 0x40000000ull, XV = 0x40400000ull, Gv = 0x40200000ull;
	uint64_t page[8];
	for (int k = 0; k < 8; k++) {
		page[k] = RAM_BASE + 0x300000 + 4096ull * k;
		uint64_t v = 111 * (uint64_t)(k + 1);
		gram_write(&ram, page[k], &v, 8);
	}
	uint64_t *pte_p[2], *pte_g[2], R0 = 0x40700000ull; /* TLB indexes clear of Gv's */
	struct pt *t[2] = { &t1, &t2 };
	for (int k = 0; k < 2; k++) {
		map(t[k], RAM_BASE, RAM_BASE, V | R | W | X | A | D | G, 1);
		map(t[k], PT_POOL, PT_POOL, V | R | W | A | D | G, 1);
		pte_p[k] = map(t[k], P, page[k], V | R | W | A | D, 0);
		pte_g[k] = map(t[k], Gv, page[2], V | R | W | A | D | G, 0);
		/* X: code returning 1 in T1, 2 in T2. */
		uint64_t code_pa = RAM_BASE + 0x380000 + 4096ull * (uint64_t)k;
		uint32_t callee[] = { ADDI(14, 0, k + 1), JALR(0, 1, 0) };
		gram_write(&ram, code_pa + AS_CALLEE, callee, sizeof(callee));
		map(t[k], XV, code_pa, V | R | X | A, 0);
		/* Many pages, all on page[k]. */
		for (uint64_t n = 0; n < AS_PAGES; n++)
			map(t[k], R0 + 4096 * n, page[k], V | R | A, 0);
	}
	uint32_t sw[] = { CSRRW(0, 0x180, 10), LD(11, 5, 0), LD(12, 6, 0), JALR(1, 7, 0), ECALL() };
	uint32_t fa[] = { 0x12000073u | 13u << 20, /* sfence.vma x0, a3 */
			  LD(11, 5, 0), LD(12, 6, 0), JALR(1, 7, 0), ECALL() };
	uint32_t fx[] = { 0x12000073u, LD(11, 5, 0), LD(12, 6, 0), JALR(1, 7, 0), ECALL() };
	uint32_t bare[] = { CSRRW(0, 0x180, 0), CSRRW(0, 0x180, 10), LD(11, 5, 0), LD(12, 6, 0),
			    JALR(1, 7, 0), ECALL() };
	gram_write(&ram, RAM_BASE + AS_SWITCH, sw, sizeof(sw));
	gram_write(&ram, RAM_BASE + AS_FENCE_ASID, fa, sizeof(fa));
	gram_write(&ram, RAM_BASE + AS_FENCE_ALL, fx, sizeof(fx));
	gram_write(&ram, RAM_BASE + AS_BARE, bare, sizeof(bare));
	/* a1 = the sum of the first doubleword of each page from t4 to t6. */
	uint32_t sum[] = { CSRRW(0, 0x180, 10), ADDI(11, 0, 0), LD(28, 29, 0), ADD(11, 11, 28),
			   ADD(29, 29, 30), BNE(29, 31, -12), ECALL() };
	gram_write(&ram, RAM_BASE + AS_SUM, sum, sizeof(sum));
	hart_reset(h, RAM_BASE, 0);
	hart_set_reg(h, 5, P);
	hart_set_reg(h, 6, Gv);
	hart_set_reg(h, 7, XV + AS_CALLEE);
	uint64_t asid[2] = { 1, 2 };
	uint64_t satp[2] = { 8ull << 60 | asid[0] << 44 | t1.root >> 12,
			     8ull << 60 | asid[1] << 44 | t2.root >> 12 };
	hart_csr_write(h, 0x180, satp[0]);
#define REG(n) ((unsigned long long)hart_get_reg(h, n))

	/* Switching back and forth (hot enough to be translated): each
	 * address space sees its own P and X. */
	int bad = 0;
	for (int n = 0; n < 100; n++) {
		int k = n & 1;
		if (!as_run(h, AS_SWITCH, satp[k], 0) || hart_get_reg(h, 11) != 111 * (uint64_t)(k + 1) ||
		    hart_get_reg(h, 12) != 333 || hart_get_reg(h, 14) != (uint64_t)k + 1)
			bad++;
	}
	CHECK(&C, !bad, "%d of 100 switches without a fence saw another address space's page "
	      "(last: P %llu, X returned %llu, Gv %llu)", bad, REG(11), REG(14), REG(12));

	/* Now in T2. Gv moved in both tables, unfenced: a switch keeps the
	 * global entry. */
	*pte_g[0] = *pte_g[1] = (page[3] >> 12) << 10 | V | R | W | A | D | G;
	if (!lockstep) {
		CHECK(&C, as_run(h, AS_SWITCH, satp[0], 0) && REG(11) == 111 && REG(12) == 333 &&
			      REG(14) == 1,
		      "global entry kept across a switch: P %llu (want 111), Gv %llu (want 333 from "
		      "the TLB), X returned %llu", REG(11), REG(12), REG(14));
	} else {
		as_run(h, AS_FENCE_ALL, 0, 0); /* no stale entry left to compare */
	}
	/* T1's P moved, unfenced; SFENCE.VMA x0, asid1 drops it, not Gv. */
	*pte_p[0] = (page[4] >> 12) << 10 | V | R | W | A | D;
	if (!lockstep) {
		CHECK(&C, as_run(h, AS_FENCE_ASID, 0, asid[0]) && REG(11) == 555 && REG(12) == 333,
		      "sfence.vma x0, asid: P %llu (want 555), Gv %llu (want 333 from the TLB)",
		      REG(11), REG(12));
	}
	/* ASID 2 reused after its P was remapped and fenced. */
	*pte_p[1] = (page[5] >> 12) << 10 | V | R | W | A | D;
	CHECK(&C, as_run(h, AS_SWITCH, satp[1], 0) && as_run(h, AS_FENCE_ASID, 0, asid[1]) &&
		      REG(11) == 666 && REG(14) == 2,
	      "ASID 2 after a remap and its fence: P %llu (want 666), X returned %llu", REG(11), REG(14));
	CHECK(&C, as_run(h, AS_FENCE_ALL, 0, 0) && REG(12) == 444,
	      "sfence.vma x0, x0 drops global entries: Gv %llu (want 444)", REG(12));
	/* A mode change (to Bare and back) drops global entries too. */
	*pte_g[0] = *pte_g[1] = (page[6] >> 12) << 10 | V | R | W | A | D | G;
	CHECK(&C, as_run(h, AS_BARE, satp[0], 0) && REG(11) == 555 && REG(12) == 777,
	      "after Bare and back: P %llu (want 555), Gv %llu (want 777)", REG(11), REG(12));

	/* Non-global entries of many pages all go at a switch, and the global
	 * ones still stay (the marks never overflow as the old fill log did). */
	hart_set_reg(h, 30, 4096);
	hart_set_reg(h, 31, R0 + 4096ull * AS_PAGES);
	bad = 0;
	for (int n = 0; n < 4; n++) {
		int k = n & 1;
		hart_set_reg(h, 29, R0);
		if (!as_run(h, AS_SUM, satp[k], 0) || hart_get_reg(h, 11) != 111ull * (k + 1) * AS_PAGES)
			bad++;
	}
	CHECK(&C, !bad, "%d of 4 switches after loads from %d pages saw another address space's "
	      "pages (last sum %llu)", bad, AS_PAGES, REG(11));
	*pte_g[0] = *pte_g[1] = (page[7] >> 12) << 10 | V | R | W | A | D | G;
	if (!lockstep)
		CHECK(&C, as_run(h, AS_SWITCH, satp[0], 0) && REG(12) == 777,
		      "a switch after %d fills keeps global entries: Gv %llu (want 777 from the TLB)",
		      AS_PAGES, REG(12));
#undef REG
	hart_destroy(h);
	gram_destroy(&ram);
}

/* n CBO.ZEROs from x[10] = a on, a block apart, by the loop at pc, which
 * ends in an ECALL; the trap vector holds an ECALL too. The cause taken
 * (the ECALL's own: done), stval and sepc. */
static uint64_t cbo_run(struct hart *h, uint64_t pc, enum priv priv, uint64_t a, unsigned n,
			uint64_t *tval, uint64_t *epc)
{
	hart_set_priv(h, priv);
	hart_set_pc(h, pc);
	hart_set_reg(h, 10, a);
	hart_set_reg(h, 11, n);
	struct hart_exit ex;
	run_limited(h, &ex);
	uint64_t cause = ~0ull;
	*tval = *epc = ~0ull;
	if (ex.reason == EXIT_SBI && hart_get_pc(h) == pc + 16)
		return priv == PRIV_U ? CAUSE_ECALL_U : CAUSE_ECALL_S; /* not trapped */
	if (ex.reason != EXIT_SBI)
		return cause;
	hart_csr_read(h, 0x142, &cause);
	hart_csr_read(h, 0x143, tval);
	hart_csr_read(h, 0x141, epc);
	return cause;
}

/* Zicboz CBO.ZERO from running code, under Sv39 (unprivileged spec, CMO
 * chapter): the block of a (aligned down to ENGINE_CBOZ_BLOCK) zeroed and
 * nothing else; a store's faults (a read-only page, an unmapped one, a user
 * page from S-mode, a page of no RAM: store/AMO page or access fault) with
 * stval = a, the address the instruction names, memory untouched; in
 * U-mode illegal unless senvcfg.CBZE. The zeroing runs in a loop (so
 * that translated code takes its inline path once the first CBO.ZERO
 * filled the TLB), and every case twice. */
static void test_cbo_zero(void)
{
	const unsigned B = ENGINE_CBOZ_BLOCK;
	struct gram ram;
	gram_init(&ram, RAM_BASE, RAM_SIZE);
	struct hart *h = new_hart(&ram);
	struct pt t = { .ram = &ram, .next = PT_POOL, .levels = 3 };
	t.root = alloc_page(&t);
	map(&t, RAM_BASE, RAM_BASE, V | R | W | X | A | D, 1);
	uint64_t P = 0x40000000ull, data = RAM_BASE + 0x300000, ucode = 0x50000000ull;
	map(&t, P, data, V | R | W | A | D, 0);
	map(&t, P + 0x1000, data + 0x1000, V | R | A, 0);          /* read-only */
	/* P + 0x2000 unmapped */
	map(&t, P + 0x3000, data + 0x3000, V | R | W | U | A | D, 0); /* a user page */
	map(&t, P + 0x4000, 0x10000000ull, V | R | W | A | D, 0);     /* no RAM */
	map(&t, ucode, RAM_BASE + 0x1000, V | R | X | U | A, 0);
	uint32_t code[] = { CBO_ZERO(10), ADDI(10, 10, (int32_t)B), ADDI(11, 11, -1), BNE(11, 0, -12), ECALL() };
	uint32_t handler[] = { ECALL() };
	gram_write(&ram, RAM_BASE, code, sizeof(code));
	gram_write(&ram, RAM_BASE + 0x1000, code, sizeof(code));
	gram_write(&ram, RAM_BASE + 0x800, handler, sizeof(handler));
	hart_reset(h, RAM_BASE, 0);
	hart_csr_write(h, 0x180, 8ull << 60 | t.root >> 12);
	hart_csr_write(h, 0x105, RAM_BASE + 0x800);
	uint8_t fill[0x5000];
	memset(fill, 0xa5, sizeof(fill));

	for (int round = 0; round < 2; round++) {
		gram_write(&ram, data, fill, sizeof(fill));
		uint64_t tval, epc, a = P + 3 * B + 13;
		uint64_t c = cbo_run(h, RAM_BASE, PRIV_S, a, 4, &tval, &epc);
		const uint8_t *m = gram_ptr(&ram, data, 0x5000);
		unsigned zeros = 0, first = ~0u;
		for (unsigned k = 0; k < 0x5000; k++)
			if (m[k] == 0) {
				zeros++;
				if (first == ~0u)
					first = k;
			}
		CHECK(&C, c == CAUSE_ECALL_S && zeros == 4 * B && first == 3 * B,
		      "cbo.zero round %d: cause %llu, %u bytes zeroed from %#x (want %u from %#x)", round,
		      (unsigned long long)c, zeros, first, 4 * B, 3 * B);

		const struct { uint64_t a, cause; const char *what; } faults[] = {
			{ P + 0x1000 + B + 7, CAUSE_STORE_PAGE, "a read-only page" },
			{ P + 0x2000 + 0x99, CAUSE_STORE_PAGE, "an unmapped page" },
			{ P + 0x3000 + 1, CAUSE_STORE_PAGE, "a user page from S-mode" },
			{ P + 0x4000 + B - 1, CAUSE_STORE_ACCESS, "a page of no RAM" },
		};
		for (size_t f = 0; f < sizeof(faults) / sizeof(faults[0]); f++) {
			c = cbo_run(h, RAM_BASE, PRIV_S, faults[f].a, 1, &tval, &epc);
			CHECK(&C, c == faults[f].cause && tval == faults[f].a && epc == RAM_BASE,
			      "cbo.zero on %s, round %d: cause %llu tval %llx epc %llx (want %llu, %llx)",
			      faults[f].what, round, (unsigned long long)c, (unsigned long long)tval,
			      (unsigned long long)epc, (unsigned long long)faults[f].cause,
			      (unsigned long long)faults[f].a);
		}
		m = gram_ptr(&ram, data + 0x1000, 0x4000);
		CHECK(&C, !memcmp(m, fill, 0x4000), "cbo.zero round %d: a fault wrote memory", round);

		/* U-mode: the gate. */
		hart_csr_write(h, 0x10a, 0);
		c = cbo_run(h, ucode, PRIV_U, P + 0x3000, 1, &tval, &epc);
		CHECK(&C, c == CAUSE_ILLEGAL && tval == code[0] && epc == ucode,
		      "cbo.zero in U-mode, senvcfg.CBZE clear, round %d: cause %llu tval %llx", round,
		      (unsigned long long)c, (unsigned long long)tval);
		m = gram_ptr(&ram, data + 0x3000, B);
		CHECK(&C, m[0] == 0xa5, "cbo.zero in U-mode, gate closed: the block was written");
		uint64_t envcfg = 0;
		hart_csr_write(h, 0x10a, ~0ull);
		hart_csr_read(h, 0x10a, &envcfg);
		CHECK(&C, envcfg == 0x81, "senvcfg keeps FIOM and CBZE only: %llx", (unsigned long long)envcfg);
		c = cbo_run(h, ucode, PRIV_U, P + 0x3000 + 2 * B + 5, 3, &tval, &epc);
		CHECK(&C, c == CAUSE_ECALL_U && m[2 * B] == 0 && m[5 * B - 1] == 0 && m[5 * B] == 0xa5 &&
			  m[2 * B - 1] == 0xa5,
		      "cbo.zero in U-mode, senvcfg.CBZE set, round %d: cause %llu", round,
		      (unsigned long long)c);
		c = cbo_run(h, ucode, PRIV_U, P + 0x2000, 1, &tval, &epc);
		CHECK(&C, c == CAUSE_STORE_PAGE && tval == P + 0x2000,
		      "cbo.zero in U-mode on an unmapped page, round %d: cause %llu tval %llx", round,
		      (unsigned long long)c, (unsigned long long)tval);
		hart_csr_write(h, 0x10a, 0);
	}
	hart_destroy(h);
	gram_destroy(&ram);
}

int main(void)
{
	test_mode(8, 3, "sv39");
	test_mode(9, 4, "sv48");
	test_mode(10, 5, "sv57");
	test_tlb_and_sfence();
	test_fault_from_code();
	test_fault_across_pages();
	test_remapped_code();
	test_code_kept_across_flushes();
	test_superpage_fence();
	test_superpage_remap_code_and_second_way();
	test_second_way_fence();
	test_shared_probe_fault();
	test_shared_probe_store_fault();
	test_tlb_flush();
	test_tlb_reach();
	test_code_page_write_entry();
	test_straddling_fetch();
	test_straddling_loop();
	test_asid_switch();
	test_cbo_zero();
	return check_summary(&C);
}

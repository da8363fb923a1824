/*
 * Address translation: Sv39, Sv48 and Sv57 page-table walks (privileged spec
 * 10.3 "Virtual-Address Translation Process", 10.4-10.6) with the hart
 * setting A and D itself (Svadu semantics), and the TLB that caches a guest
 * virtual page as a host pointer per access type.
 *
 * Write translations are never cached for pages that hold decoded code, so
 * stores to code always take the slow path, which invalidates the blocks.
 * A page can become a code page while another hart still holds a write
 * translation of it (filled before); stores through that are not noticed
 * at once. So before such a hart drops write translations, or passes a
 * FENCE.I or an exit, it counts every code page its write TLB maps as
 * written (tlb_sync_writes): the fence or the SBI remote fence.i a guest
 * must issue after cross-modifying code then finds the page's blocks out
 * of date. Any change of translations also empties the JIT's jump cache,
 * which maps virtual addresses to translated code.
 */
#include "engine/hart.h"

#include <string.h>

#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_G (1ull << 5)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)
#define PTE_PPN_SHIFT 10
#define PTE_PPN_MASK ((1ull << 44) - 1)
/* Bits 63..54: N (Svnapot), PBMT (Svpbmt) and reserved; none implemented. */
#define PTE_RESERVED (0x3ffull << 54)

static void mark(struct tlb_marks *m, unsigned set, unsigned idx)
{
	m->bits[set][idx / 64] |= 1ull << (idx % 64);
	m->sum[set] |= 1ull << (idx / 64);
}

/* The summary keeps its bit (a superset): marks_clear resets it. */
static void unmark(struct tlb_marks *m, unsigned set, unsigned idx)
{
	m->bits[set][idx / 64] &= ~(1ull << (idx % 64));
}

static void marks_clear(struct tlb_marks *m)
{
	for (unsigned set = 0; set < TLB_SETS; set++) {
		for (uint64_t ws = m->sum[set]; ws; ws &= ws - 1)
			m->bits[set][__builtin_ctzll(ws)] = 0;
		m->sum[set] = 0;
	}
}

/* Call fn(h, set, index, arg) for each index marked in m (fn may unmark it). */
static inline void marks_each(struct hart *h, const struct tlb_marks *m,
			      void (*fn)(struct hart *, unsigned, unsigned, uint64_t), uint64_t arg)
{
	for (unsigned set = 0; set < TLB_SETS; set++)
		for (uint64_t ws = m->sum[set]; ws; ws &= ws - 1) {
			unsigned w = (unsigned)__builtin_ctzll(ws);
			for (uint64_t bits = m->bits[set][w]; bits; bits &= bits - 1)
				fn(h, set, w * 64 + (unsigned)__builtin_ctzll(bits), arg);
		}
}

void tlb_init(struct hart *h)
{
	memset(h->tlb, 0xff, sizeof(h->tlb)); /* every tag TLB_INVALID */
	memset(&h->tlb_filled, 0, sizeof(h->tlb_filled));
	memset(&h->tlb_local, 0, sizeof(h->tlb_local));
	memset(&h->tlb_wfilled, 0, sizeof(h->tlb_wfilled));
	memset(h->tlb_super, 0, sizeof(h->tlb_super));
}

void tlb_select(struct hart *h)
{
	int set = h->priv == PRIV_U ? TLB_U : (h->status & SSTATUS_SUM) ? TLB_S_SUM : TLB_S;
	h->tlb_set = (unsigned)set;
	h->tlb_r = h->tlb[set].r;
	h->tlb_w = h->tlb[set].w;
	h->tlb_x = h->tlb[set].x;
}

/* A write entry (of either way) that maps a code page: count it written. */
static void count_code_writes(struct hart *h, unsigned set, unsigned idx, uint64_t unused)
{
	struct gram *r = h->ram;
	const struct tlb_entry *two[2] = { &h->tlb[set].w[idx], &h->tlb[set].w2[idx] };
	for (int w = 0; w < 2; w++) {
		const struct tlb_entry *e = two[w];
		if (e->tag == TLB_INVALID)
			continue;
		uintptr_t host = e->addend + (uintptr_t)(e->tag << 12);
		uint64_t pa = (uint64_t)(host - (uintptr_t)r->host) + r->base;
		uint64_t pn = (pa - r->base) >> GRAM_PAGE_SHIFT;
		if (pn < r->npages && atomic_load_explicit(&r->code[pn], memory_order_relaxed))
			gram_written(r, pa, 1);
	}
}

static void drop_writes(struct hart *h, unsigned set, unsigned idx, uint64_t unused)
{
	h->tlb[set].w[idx].tag = h->tlb[set].w2[idx].tag = TLB_INVALID;
}

/* Count the code pages the write TLB maps as written, then empty it. */
void tlb_flush_writes(struct hart *h)
{
	uint64_t epoch = atomic_load_explicit(&h->ram->code_epoch, memory_order_acquire);
	if (epoch != h->code_epoch) {
		marks_each(h, &h->tlb_wfilled, count_code_writes, 0);
		h->code_epoch = epoch;
	}
	/* The read and fetch entries stay: so do their marks. */
	marks_each(h, &h->tlb_wfilled, drop_writes, 0);
	marks_clear(&h->tlb_wfilled);
}

void tlb_sync_writes(struct hart *h)
{
	if (atomic_load_explicit(&h->ram->code_epoch, memory_order_relaxed) != h->code_epoch)
		tlb_flush_writes(h);
}

static void drop_all(struct hart *h, unsigned set, unsigned idx, uint64_t unused)
{
	struct tlb_set *s = &h->tlb[set];
	s->r[idx].tag = s->w[idx].tag = s->x[idx].tag = TLB_INVALID;
	s->r2[idx].tag = s->w2[idx].tag = TLB_INVALID;
}

void tlb_flush_all(struct hart *h)
{
	tlb_sync_writes(h);
	h->mmu_stats.flush_all++;
	marks_each(h, &h->tlb_filled, drop_all, 0);
	marks_clear(&h->tlb_filled);
	marks_clear(&h->tlb_local);
	marks_clear(&h->tlb_wfilled);
	h->tlb_gen++;
	for (int half = 0; half < 2; half++) {
		h->tlb_super[half].shift = 0;
		marks_clear(&h->tlb_super[half].idx);
	}
	jc_unmap_all(h);
}

/* Drop *e unless it maps a global page. */
static void drop_local(struct tlb_entry *e, uint8_t shift)
{
	if (!(shift & TLB_GLOBAL))
		e->tag = TLB_INVALID;
}

/* The non-global entries at one index; an index left empty leaves
 * tlb_filled, so later flushes do not visit it. */
static void drop_locals(struct hart *h, unsigned set, unsigned idx, uint64_t unused)
{
	struct tlb_set *s = &h->tlb[set];
	drop_local(&s->r[idx], s->r_shift[idx]);
	drop_local(&s->w[idx], s->w_shift[idx]);
	drop_local(&s->x[idx], s->x_shift[idx]);
	drop_local(&s->r2[idx], s->r2_shift[idx]);
	drop_local(&s->w2[idx], s->w2_shift[idx]);
	if (s->r[idx].tag == TLB_INVALID && s->w[idx].tag == TLB_INVALID &&
	    s->x[idx].tag == TLB_INVALID && s->r2[idx].tag == TLB_INVALID &&
	    s->w2[idx].tag == TLB_INVALID)
		unmark(&h->tlb_filled, set, idx);
}

/* Global mappings exist in every address space (privileged spec 10.3.1),
 * so a satp write need not drop them: Linux switches address spaces
 * with a satp write and no fence (it has ASIDs), and after each switch
 * the kernel's own pages (global) were walked again. Non-global entries
 * all belong to the address space current since the last satp write, so
 * dropping them all is what SFENCE.VMA x0, asid needs too (a superset).
 * tlb_local names where they are; the superpage span and marks stay as
 * they are (a superset of what still holds a superpage's piece). */
void tlb_flush_nonglobal(struct hart *h)
{
	tlb_sync_writes(h);
	h->mmu_stats.flush_nonglobal++;
	marks_each(h, &h->tlb_local, drop_locals, 0);
	marks_clear(&h->tlb_local);
	h->tlb_gen++;
	jc_unmap_all(h);
}

/* Drop *e if it came from a superpage holding va. */
static void drop_piece(struct tlb_entry *e, uint8_t shift, uint64_t va)
{
	unsigned s = TLB_SHIFT(shift);
	if (s > 12 && s < 64 && e->tag != TLB_INVALID && e->tag >> (s - 12) == va >> s)
		e->tag = TLB_INVALID;
}

/* The entries at one index that came from a superpage holding va. */
static void drop_super(struct hart *h, unsigned set, unsigned k, uint64_t va)
{
	struct tlb_set *s = &h->tlb[set];
	drop_piece(&s->r[k], s->r_shift[k], va);
	drop_piece(&s->w[k], s->w_shift[k], va);
	drop_piece(&s->x[k], s->x_shift[k], va);
	drop_piece(&s->r2[k], s->r2_shift[k], va);
	drop_piece(&s->w2[k], s->w2_shift[k], va);
}

/* SFENCE.VMA of one address (privileged spec 10.2.1): the leaf that maps
 * va may be a superpage, whose other 4 KiB pieces sit in other entries
 * (Linux fences a huge mapping once per huge page), so while any entry
 * came from a superpage those are searched too, and the jump cache,
 * which may hold code of any piece (its TLB entry long evicted), drops
 * what lies in the largest superpage that could hold va. */
void tlb_flush_va(struct hart *h, uint64_t va)
{
	tlb_sync_writes(h);
	h->tlb_gen++;
	const struct tlb_super *sp = &h->tlb_super[va >> 63];
	/* A program's own pages mostly lie outside its huge pages' span:
	 * their fences need no search. */
	bool super = sp->shift && va >= sp->lo && va < sp->hi;
	uint64_t tag = va >> 12;
	unsigned idx = tag & (TLB_SIZE - 1);
	for (int i = 0; i < TLB_SETS; i++) {
		struct tlb_set *s = &h->tlb[i];
		if (s->r[idx].tag == tag) s->r[idx].tag = TLB_INVALID;
		if (s->w[idx].tag == tag) s->w[idx].tag = TLB_INVALID;
		if (s->x[idx].tag == tag) s->x[idx].tag = TLB_INVALID;
		if (s->r2[idx].tag == tag) s->r2[idx].tag = TLB_INVALID;
		if (s->w2[idx].tag == tag) s->w2[idx].tag = TLB_INVALID;
	}
	if (super) {
		/* The pieces of an aligned superpage of n pages sit at n
		 * consecutive indexes (all of them when n >= TLB_SIZE), among
		 * those marked as filled from a superpage. */
		unsigned n = sp->shift - 12 >= TLB_BITS ? TLB_SIZE : 1u << (sp->shift - 12);
		unsigned first = idx & ~(n - 1);
		uint64_t part = n >= 64 ? ~0ull : ((1ull << n) - 1) << (first % 64);
		for (unsigned i = 0; i < TLB_SETS; i++)
			for (unsigned k = first; k < first + n; k += 64)
				for (uint64_t bits = sp->idx.bits[i][k / 64] & part; bits; bits &= bits - 1)
					drop_super(h, i, k / 64 * 64 + (unsigned)__builtin_ctzll(bits), va);
	}
	jc_drop_region(h, va, super ? sp->shift : 12);
}

static int fault_cause(enum access acc)
{
	return acc == ACCESS_EXEC ? CAUSE_FETCH_PAGE :
	       acc == ACCESS_WRITE ? CAUSE_STORE_PAGE : CAUSE_LOAD_PAGE;
}

static int access_cause(enum access acc)
{
	return acc == ACCESS_EXEC ? CAUSE_FETCH_ACCESS :
	       acc == ACCESS_WRITE ? CAUSE_STORE_ACCESS : CAUSE_LOAD_ACCESS;
}

/* Walk the page table (privileged spec 10.3.2). */
static int walk(struct hart *h, uint64_t va, enum access acc, uint64_t *pa, unsigned *shift,
		bool *global)
{
	unsigned mode = h->satp >> 60;
	int levels = mode == 8 ? 3 : mode == 9 ? 4 : 5;
	int vabits = 12 + 9 * levels;
	/* Bits above the VA width must equal its top bit. */
	uint64_t high = va >> (vabits - 1);
	if (high != 0 && high != (~0ull >> (vabits - 1)))
		return fault_cause(acc);

	uint64_t base = (h->satp & PTE_PPN_MASK) << 12;
	/* G on a non-leaf PTE makes every mapping below it global (10.3.1). */
	bool g = false;
	for (int lvl = levels - 1; lvl >= 0; lvl--) {
		uint64_t pte_addr = base + ((va >> (12 + 9 * lvl)) & 0x1ff) * 8;
		_Atomic uint64_t *ptep = gram_ptr(h->ram, pte_addr, 8);
		if (!ptep || (pte_addr & 7))
			return access_cause(acc);
	retry:;
		uint64_t pte = atomic_load_explicit(ptep, memory_order_acquire);
		if (!(pte & PTE_V) || (!(pte & PTE_R) && (pte & PTE_W)) || (pte & PTE_RESERVED))
			return fault_cause(acc);
		uint64_t ppn = (pte >> PTE_PPN_SHIFT) & PTE_PPN_MASK;
		g |= (pte & PTE_G) != 0;
		if (!(pte & (PTE_R | PTE_X))) {
			if (lvl == 0 || (pte & (PTE_A | PTE_D | PTE_U)))
				return fault_cause(acc);
			base = ppn << 12;
			continue;
		}
		/* Leaf: permissions (10.3.1 and the SUM/MXR rules). */
		if (h->priv == PRIV_U) {
			if (!(pte & PTE_U))
				return fault_cause(acc);
		} else if (pte & PTE_U) {
			if (acc == ACCESS_EXEC || !(h->status & SSTATUS_SUM))
				return fault_cause(acc);
		}
		switch (acc) {
		case ACCESS_EXEC:
			if (!(pte & PTE_X))
				return fault_cause(acc);
			break;
		case ACCESS_READ:
			if (!(pte & PTE_R) && !((h->status & SSTATUS_MXR) && (pte & PTE_X)))
				return fault_cause(acc);
			break;
		case ACCESS_WRITE:
			if (!(pte & PTE_W))
				return fault_cause(acc);
			break;
		}
		uint64_t lowmask = (1ull << (9 * lvl)) - 1;
		if (ppn & lowmask)
			return fault_cause(acc); /* misaligned superpage */
		uint64_t want = PTE_A | (acc == ACCESS_WRITE ? PTE_D : 0);
		if ((pte & want) != want) {
			if (!atomic_compare_exchange_strong(ptep, &pte, pte | want))
				goto retry;
			gram_written(h->ram, pte_addr, 8);
		}
		*pa = ((ppn | ((va >> 12) & lowmask)) << 12) | (va & 0xfff);
		*shift = 12 + 9 * (unsigned)lvl;
		*global = g;
		return 0;
	}
	return fault_cause(acc);
}

/* A load or store whose page sits in the second way: swap the two ways'
 * entries at its index (the first way is what probes look at first) and
 * give its physical address. False when it is not there. */
static bool second_way(struct hart *h, uint64_t va, enum access acc, uint64_t *pa)
{
	struct tlb_set *set = &h->tlb[h->tlb_set];
	unsigned idx = (va >> 12) & (TLB_SIZE - 1);
	bool rd = acc == ACCESS_READ;
	struct tlb_entry *e1 = rd ? &set->r[idx] : &set->w[idx];
	struct tlb_entry *e2 = rd ? &set->r2[idx] : &set->w2[idx];
	uint8_t *s1 = rd ? &set->r_shift[idx] : &set->w_shift[idx];
	uint8_t *s2 = rd ? &set->r2_shift[idx] : &set->w2_shift[idx];
	if (e2->tag != va >> 12)
		return false;
	struct gram *r = h->ram;
	uint64_t page = (uint64_t)(e2->addend + (va & ~0xfffull) - (uintptr_t)r->host) + r->base;
	if (!rd) {
		/* As a fill would (below): the page's dirty mark, and no write
		 * translation of a page that became code since. */
		uint64_t pn = (page - r->base) >> GRAM_PAGE_SHIFT;
		if (atomic_load_explicit(&r->code[pn], memory_order_relaxed)) {
			e2->tag = TLB_INVALID;
			return false;
		}
		gram_mark_dirty(r, pn);
	}
	struct tlb_entry te = *e1;
	uint8_t ts = *s1;
	*e1 = *e2;
	*s1 = *s2;
	*e2 = te;
	*s2 = ts;
	*pa = page | (va & 0xfff);
	return true;
}

int mmu_translate(struct hart *h, uint64_t va, enum access acc, uint64_t *pa)
{
	unsigned shift = 12;
	bool global = false;
	if (acc != ACCESS_EXEC && second_way(h, va, acc, pa))
		return 0;
	if ((h->satp >> 60) == 0) {
		*pa = va;
	} else {
		int cause = walk(h, va, acc, pa, &shift, &global);
		h->mmu_stats.walks[acc]++;
		h->mmu_stats.walks_global += global;
		if (cause)
			return cause;
	}
	uint64_t page = *pa & ~0xfffull;
	uint8_t *host = gram_ptr(h->ram, page, GRAM_PAGE_SIZE);
	if (!host)
		return 0; /* not RAM: the caller turns this into MMIO or a fault */

	struct tlb_entry *e;
	struct tlb_set *set = &h->tlb[h->tlb_set];
	unsigned idx = (va >> 12) & (TLB_SIZE - 1);
	uint8_t *eshift;
	if (acc == ACCESS_READ) {
		e = &h->tlb_r[idx];
		eshift = &set->r_shift[idx];
		set->r2[idx] = *e;
		set->r2_shift[idx] = *eshift;
	} else if (acc == ACCESS_EXEC) {
		e = &h->tlb_x[idx];
		eshift = &set->x_shift[idx];
	} else {
		uint64_t pn = (page - h->ram->base) >> GRAM_PAGE_SHIFT;
		/* Every store to RAM passes here before it may use a write
		 * translation: the one hook dirty-page tracking needs. */
		gram_mark_dirty(h->ram, pn);
		if (atomic_load_explicit(&h->ram->code[pn], memory_order_relaxed) || h->no_write_tlb)
			return 0;
		tlb_sync_writes(h);
		e = &h->tlb_w[idx];
		eshift = &set->w_shift[idx];
		set->w2[idx] = *e;
		set->w2_shift[idx] = *eshift;
	}
	*eshift = (uint8_t)(shift | (global ? TLB_GLOBAL : 0));
	if (shift > 12) {
		struct tlb_super *sp = &h->tlb_super[va >> 63];
		uint64_t lo = va & ~((1ull << shift) - 1), hi = lo + (1ull << shift);
		if (!sp->shift || lo < sp->lo)
			sp->lo = lo;
		if (!sp->shift || hi > sp->hi)
			sp->hi = hi;
		if (shift > sp->shift)
			sp->shift = (uint8_t)shift;
		mark(&sp->idx, h->tlb_set, idx);
	}
	e->tag = va >> 12;
	e->addend = (uintptr_t)host - (va & ~0xfffull);
	mark(&h->tlb_filled, h->tlb_set, idx);
	if (acc == ACCESS_WRITE)
		mark(&h->tlb_wfilled, h->tlb_set, idx);
	if (!global)
		mark(&h->tlb_local, h->tlb_set, idx);
	return 0;
}

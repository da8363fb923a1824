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

static void tlb_clear_set(struct tlb_set *s)
{
	memset(s, 0xff, sizeof(*s)); /* every tag TLB_INVALID */
}

static bool tlb_log_valid(const struct hart *h) { return h->tlb_logged <= TLB_LOG; }

static void log_add(uint16_t *log, unsigned *logged, unsigned set, unsigned idx)
{
	if (*logged < TLB_LOG)
		log[*logged] = (uint16_t)(set << TLB_BITS | idx);
	if (*logged <= TLB_LOG)
		(*logged)++;
}

static void tlb_log_fill(struct hart *h, unsigned set, unsigned idx, bool global)
{
	log_add(h->tlb_log, &h->tlb_logged, set, idx);
	if (!global)
		log_add(h->tlb_local_log, &h->tlb_local_logged, set, idx);
}

void tlb_select(struct hart *h)
{
	int set = h->priv == PRIV_U ? TLB_U : (h->status & SSTATUS_SUM) ? TLB_S_SUM : TLB_S;
	h->tlb_set = (unsigned)set;
	h->tlb_r = h->tlb[set].r;
	h->tlb_w = h->tlb[set].w;
	h->tlb_x = h->tlb[set].x;
}

/* Count the code pages the write TLB maps as written, then empty it. */
void tlb_flush_writes(struct hart *h)
{
	struct gram *r = h->ram;
	uint64_t epoch = atomic_load_explicit(&r->code_epoch, memory_order_acquire);
	bool logged = tlb_log_valid(h);
	unsigned n = logged ? h->tlb_logged : TLB_SETS * TLB_SIZE;
	if (epoch != h->code_epoch) {
		for (unsigned k = 0; k < n; k++) {
			unsigned at = logged ? h->tlb_log[k] : k;
			struct tlb_set *s = &h->tlb[at >> TLB_BITS];
			const struct tlb_entry *two[2] = { &s->w[at & (TLB_SIZE - 1)],
							   &s->w2[at & (TLB_SIZE - 1)] };
			for (int w = 0; w < 2; w++) {
				const struct tlb_entry *e = two[w];
				if (e->tag == TLB_INVALID)
					continue;
				uintptr_t host = e->addend + (uintptr_t)(e->tag << 12);
				uint64_t pa = (uint64_t)(host - (uintptr_t)r->host) + r->base;
				uint64_t pn = (pa - r->base) >> GRAM_PAGE_SHIFT;
				if (pn < r->npages &&
				    atomic_load_explicit(&r->code[pn], memory_order_relaxed))
					gram_written(r, pa, 1);
			}
		}
		h->code_epoch = epoch;
	}
	/* The read and fetch entries stay: so does the log. */
	if (logged) {
		for (unsigned k = 0; k < n; k++) {
			unsigned at = h->tlb_log[k];
			struct tlb_set *s = &h->tlb[at >> TLB_BITS];
			s->w[at & (TLB_SIZE - 1)].tag = TLB_INVALID;
			s->w2[at & (TLB_SIZE - 1)].tag = TLB_INVALID;
		}
		return;
	}
	for (int i = 0; i < TLB_SETS; i++) {
		memset(h->tlb[i].w, 0xff, sizeof(h->tlb[i].w));
		memset(h->tlb[i].w2, 0xff, sizeof(h->tlb[i].w2));
	}
}

void tlb_sync_writes(struct hart *h)
{
	if (atomic_load_explicit(&h->ram->code_epoch, memory_order_relaxed) != h->code_epoch)
		tlb_flush_writes(h);
}

void tlb_flush_all(struct hart *h)
{
	tlb_sync_writes(h);
	h->mmu_stats.flush_all++;
	if (tlb_log_valid(h)) {
		for (unsigned k = 0; k < h->tlb_logged; k++) {
			unsigned at = h->tlb_log[k], idx = at & (TLB_SIZE - 1);
			struct tlb_set *s = &h->tlb[at >> TLB_BITS];
			s->r[idx].tag = s->w[idx].tag = s->x[idx].tag = TLB_INVALID;
			s->r2[idx].tag = s->w2[idx].tag = TLB_INVALID;
		}
	} else {
		for (int i = 0; i < TLB_SETS; i++)
			tlb_clear_set(&h->tlb[i]);
	}
	h->tlb_logged = h->tlb_local_logged = 0;
	h->tlb_gen++;
	h->tlb_super_shift = 0;
	memset(h->tlb_super_idx, 0, sizeof(h->tlb_super_idx));
	jc_unmap_all(h);
}

/* Drop *e unless it maps a global page. */
static void drop_local(struct tlb_entry *e, uint8_t shift)
{
	if (!(shift & TLB_GLOBAL))
		e->tag = TLB_INVALID;
}

/* Global mappings exist in every address space (privileged spec 10.3.1),
 * so a satp write need not drop them: Linux switches address spaces
 * with a satp write and no fence (it has ASIDs), and after each switch
 * the kernel's own pages (global) were walked again. Non-global entries
 * all belong to the address space current since the last satp write, so
 * dropping them all is what SFENCE.VMA x0, asid needs too (a superset).
 * The local log names where they are; tlb_log still names every entry
 * (the global ones stay in it), and the superpage span and bitmap stay
 * as they are (a superset of what still holds a superpage's piece). */
void tlb_flush_nonglobal(struct hart *h)
{
	/* Once the log is void, every later flush (this one, the write
	 * flushes after code is written, the next full one) walks all the
	 * arrays: exec-heavy guests paid 25-40 % more host CPU for global
	 * entries kept that way. So past the log, drop them too. */
	if (!tlb_log_valid(h)) {
		tlb_flush_all(h);
		return;
	}
	tlb_sync_writes(h);
	h->mmu_stats.flush_nonglobal++;
	for (unsigned k = 0; k < h->tlb_local_logged; k++) {
		unsigned at = h->tlb_local_log[k], idx = at & (TLB_SIZE - 1);
		struct tlb_set *s = &h->tlb[at >> TLB_BITS];
		drop_local(&s->r[idx], s->r_shift[idx]);
		drop_local(&s->w[idx], s->w_shift[idx]);
		drop_local(&s->x[idx], s->x_shift[idx]);
		drop_local(&s->r2[idx], s->r2_shift[idx]);
		drop_local(&s->w2[idx], s->w2_shift[idx]);
	}
	/* The log keeps only the indexes still holding an entry (global
	 * ones), so it fills again only as fast as the last one did. */
	unsigned kept = 0;
	for (unsigned k = 0; k < h->tlb_logged; k++) {
		unsigned at = h->tlb_log[k], idx = at & (TLB_SIZE - 1);
		const struct tlb_set *s = &h->tlb[at >> TLB_BITS];
		if (s->r[idx].tag != TLB_INVALID || s->w[idx].tag != TLB_INVALID ||
		    s->x[idx].tag != TLB_INVALID || s->r2[idx].tag != TLB_INVALID ||
		    s->w2[idx].tag != TLB_INVALID)
			h->tlb_log[kept++] = (uint16_t)at;
	}
	h->tlb_logged = kept;
	h->tlb_local_logged = 0;
	h->tlb_gen++;
	jc_unmap_all(h);
}

/* Drop the entries of one array, at indexes [from, to), that come from a
 * superpage holding va. */
static void drop_super(struct tlb_entry *e, const uint8_t *shift, uint64_t va, unsigned from, unsigned to)
{
	for (unsigned k = from; k < to; k++) {
		unsigned s = TLB_SHIFT(shift[k]);
		if (s > 12 && s < 64 && e[k].tag != TLB_INVALID &&
		    e[k].tag >> (s - 12) == va >> s)
			e[k].tag = TLB_INVALID;
	}
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
	/* User pages mostly lie outside the kernel's superpage-mapped span:
	 * their fences need no search. */
	bool super = h->tlb_super_shift && va >= h->tlb_super_lo && va < h->tlb_super_hi;
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
	/* Only the indexes filled from a superpage can hold a piece of one. */
	for (int i = 0; super && i < TLB_SETS; i++) {
		struct tlb_set *s = &h->tlb[i];
		for (unsigned w = 0; w < TLB_SIZE / 64; w++) {
			for (uint64_t bits = h->tlb_super_idx[i][w]; bits; bits &= bits - 1) {
				unsigned k = w * 64 + (unsigned)__builtin_ctzll(bits);
				drop_super(s->r, s->r_shift, va, k, k + 1);
				drop_super(s->w, s->w_shift, va, k, k + 1);
				drop_super(s->x, s->x_shift, va, k, k + 1);
				drop_super(s->r2, s->r2_shift, va, k, k + 1);
				drop_super(s->w2, s->w2_shift, va, k, k + 1);
			}
		}
	}
	jc_drop_region(h, va, super ? h->tlb_super_shift : 12);
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
		uint64_t lo = va & ~((1ull << shift) - 1), hi = lo + (1ull << shift);
		if (!h->tlb_super_shift || lo < h->tlb_super_lo)
			h->tlb_super_lo = lo;
		if (!h->tlb_super_shift || hi > h->tlb_super_hi)
			h->tlb_super_hi = hi;
		if (shift > h->tlb_super_shift)
			h->tlb_super_shift = (uint8_t)shift;
		h->tlb_super_idx[h->tlb_set][idx / 64] |= 1ull << (idx % 64);
	}
	e->tag = va >> 12;
	e->addend = (uintptr_t)host - (va & ~0xfffull);
	tlb_log_fill(h, h->tlb_set, idx, global);
	return 0;
}

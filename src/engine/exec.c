/*
 * The execute loop: runs decoded blocks with threaded dispatch (each
 * instruction jumps straight to the next one's handler), checks for
 * asynchronous events once per block, and leaves only for an exit.
 *
 * Blocks are decoded once per guest-physical address and kept in a per-hart
 * cache (see struct block); a block records the generation of its page and
 * is rebuilt when a write to the page bumps it. Loads and stores hit the TLB
 * inline (one compare and one add); everything else takes the slow paths at
 * the bottom of this file.
 */
#include "base/clock.h"
#include "engine/fpu.h"
#include "engine/guest_access.h"
#include "engine/hart.h"
#include "engine/jit/jit.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* ---- the block cache ---------------------------------------------------- */

#define BLOCK_BYTES (sizeof(struct block) + (ENGINE_BLOCK_MAX + 1 + BLOCK_TAIL_MAX) * sizeof(struct insn))

/* An idle hart gives its arena (and its translations) back once it holds
 * this much: when it has slept in WFI for BC_IDLE_NS since it last looked
 * and for at least as long as it ran in that time. So a guest that waits
 * at its prompt gives the memory back two to four seconds after it went
 * idle, and a guest at work keeps its translations through the short
 * sleeps of its I/O (the age of the cache alone emptied it at the first
 * WFI two seconds after the last emptying: during the boot, and at the
 * start of about every command). */
#define BC_IDLE_BYTES (256u << 10)
#define BC_IDLE_NS 2000000000ull

/* Arena bytes block b takes (its instructions, sentinel and tail). */
static inline size_t block_span(const struct block *b)
{
	return (sizeof(struct block) + (b->n + 1u + b->tail) * sizeof(struct insn) + 15) & ~(size_t)15;
}

/* The two ways of the set for guest-physical address pa. */
static inline struct bc_entry *bc_set(struct hart *h, uint64_t pa)
{
	return &h->bc_table[2 * ((pa >> 1) & (BC_SETS - 1))];
}

/* The block cached for guest-physical pa, or NULL when there is none or
 * its page was written since it was decoded (its generation moved on). */
static inline struct block *bc_current(struct hart *h, uint64_t pa)
{
	const struct bc_entry *be = bc_set(h, pa);
	struct block *b;
	if (likely(be[0].pa == pa))
		b = be[0].b;
	else if (be[1].pa == pa)
		b = be[1].b;
	else
		return NULL;
	if (unlikely(!b || b->gen != atomic_load_explicit(&h->ram_gen[(pa - h->ram_base) >> GRAM_PAGE_SHIFT],
							  memory_order_relaxed)))
		return NULL;
	return b;
}

void block_cache_flush(struct hart *h)
{
	/* Every way in use points into the arena, at a block built since the
	 * last flush. When there are few (fence.i after each patched
	 * instruction, as Linux does at boot), emptying their ways costs much
	 * less than clearing the whole table. */
	if (h->bc_blocks < BC_SETS / 16) {
		for (size_t off = 0; off < h->bc_used;) {
			struct block *b = (struct block *)(h->bc_arena + off);
			struct bc_entry *e = bc_set(h, b->pa);
			for (int w = 0; w < 2; w++)
				if (e[w].b == b)
					e[w].b = NULL;
			off += block_span(b);
		}
	} else {
		memset(h->bc_table, 0, 2 * BC_SETS * sizeof(*h->bc_table));
	}
	h->bc_used = 0;
	h->bc_blocks = 0;
	/* Translations point at blocks: they go with them. */
	if (h->jit)
		jit_reset(h, false);
	jc_clear(h);
}

void jc_clear(struct hart *h)
{
	/* Read before emptying: a code write racing with this clear leaves
	 * the count moved, and the next FENCE.I clears again. */
	h->jc_code_writes = atomic_load_explicit(&h->ram->code_writes, memory_order_acquire);
	h->jc_clears++;
	memset(h->jc_pages, 0, sizeof(h->jc_pages));
	/* An entry with key 0 is empty (its jc_meta is then never read). */
	if (h->jc_logged <= JC_LOG && !h->jc_old) {
		for (unsigned k = 0; k < h->jc_logged; k++) {
			unsigned v = h->jc_log[k];
			h->jc[v >> JC_BITS][v & (JC_SIZE - 1)].key = 0;
		}
	} else {
		memset(h->jc, 0, sizeof(h->jc));
	}
	h->jc_logged = 0;
	h->jc_old = false;
}

void jc_unmap_all(struct hart *h)
{
	/* Linux empties the TLB whole thousands of times in a boot (a
	 * process's exit, a large munmap, kernel mappings going), mostly
	 * with the code mappings unchanged: an emptied jump cache cost a trip
	 * through the executor's lookup for each entry used again after it.
	 * A new salt makes the probes of translated code miss instead, and
	 * the miss revalidates the entry against the page tables. The log
	 * and the page bits track the entries of the current salt: those of
	 * older ones are revalidated before any use, so SFENCE.VMA of one
	 * page (jc_drop_region) has nothing to drop among them. After every
	 * salt was used once, entries filled under the first may still be
	 * there: the table is emptied for real. */
	h->jc_unmaps++;
	h->jc_salt = (h->jc_salt + 2) & JC_SALT_MASK;
	if (h->jc_salt == 1) {
		jc_clear(h);
		return;
	}
	h->jc_old |= h->jc_logged != 0;
	h->jc_logged = 0;
	memset(h->jc_pages, 0, sizeof(h->jc_pages));
}

/* Note the entry (set, idx) for pc as filled under the current salt. */
static void jc_note(struct hart *h, unsigned set, unsigned idx, uint64_t pc)
{
	unsigned bit = (unsigned)(pc >> 12) % JC_PAGE_BITS;
	h->jc_pages[bit / 64] |= 1ull << (bit % 64);
	if (h->jc_logged < JC_LOG)
		h->jc_log[h->jc_logged] = (uint16_t)(set << JC_BITS | idx);
	h->jc_logged++;
}

void jc_drop_region(struct hart *h, uint64_t va, unsigned shift)
{
	uint64_t page = va >> shift;
	if (shift == 12) {
		unsigned bit = (unsigned)page % JC_PAGE_BITS;
		if (!(h->jc_pages[bit / 64] & (1ull << (bit % 64))))
			return;
	}
	if (h->jc_logged <= JC_LOG) {
		/* The log names every filled entry: keep those of other pages. */
		unsigned keep = 0;
		for (unsigned k = 0; k < h->jc_logged; k++) {
			unsigned v = h->jc_log[k];
			struct jc_meta *m = &h->jc_meta[v >> JC_BITS][v & (JC_SIZE - 1)];
			if (m->va >> shift == page) {
				m->va = 0;
				h->jc[v >> JC_BITS][v & (JC_SIZE - 1)].key = 0;
			} else if (m->va) {
				h->jc_log[keep++] = (uint16_t)v;
			}
		}
		h->jc_logged = keep;
		return;
	}
	/* The region's pcs fall on the slots of its halfwords (all of them
	 * for a region as large as the table's span): look at those. A pass
	 * costs about what clearing does, and the other pages' entries stay
	 * (each one lost is a later trip through the executor's lookup). */
	unsigned first = 0, count = JC_SIZE;
	if (shift - 1 < JC_BITS) {
		first = (unsigned)((page << shift) >> 1) & (JC_SIZE - 1);
		count = 1u << (shift - 1);
	}
	for (unsigned s = 0; s < TLB_SETS; s++)
		for (unsigned k = 0; k < count; k++) {
			unsigned at = (first + k) & (JC_SIZE - 1);
			if (h->jc_meta[s][at].va >> shift == page) {
				h->jc_meta[s][at].va = 0;
				h->jc[s][at].key = 0;
			}
		}
}

/* A translation for pc (at guest-physical pa) in the current set, for
 * translated code's probes. */
static void jc_insert(struct hart *h, uint64_t pc, uint64_t pa, const void *code)
{
	unsigned idx = (unsigned)(pc >> 1) & (JC_SIZE - 1);
	struct jc_entry *e = &h->jc[h->tlb_set][idx];
	e->key = pc ^ h->jc_salt;
	e->code = code;
	h->jc_meta[h->tlb_set][idx] = (struct jc_meta){ pc, pa };
	jc_note(h, h->tlb_set, idx, pc);
}

const void *jc_refill(struct hart *h)
{
	/* Lockstep compares each block the executor enters: none may be
	 * entered from here. */
	if (h->cfg.jit_lockstep)
		return NULL;
	uint64_t pc = h->pc;
	unsigned set = h->tlb_set, idx = (unsigned)(pc >> 1) & (JC_SIZE - 1);
	struct jc_entry *e = &h->jc[set][idx];
	const struct jc_meta *m = &h->jc_meta[set][idx];
	h->jc_conflicts += e->key && m->va != pc;
	/* An entry for pc that missed was filled under an older salt. */
	bool older = e->key && m->va == pc;
	/* pc as its fetch would find it now: the TLB, else a walk that
	 * fills it; a fault (or code outside RAM) is the executor's. */
	const struct tlb_entry *t = &h->tlb_x[(pc >> 12) & (TLB_SIZE - 1)];
	uint64_t pa;
	if (t->tag == pc >> 12) {
		pa = (uint64_t)((const uint8_t *)(t->addend + pc) - h->ram_host) + h->ram_base;
	} else if (mmu_translate(h, pc, ACCESS_EXEC, &pa) || !gram_ptr(h->ram, pa, 2)) {
		h->jc_dropped += older;
		return NULL;
	}
	/* The entry still holds if pc maps to the page it was translated
	 * from. The code itself is current: translations go with jc_clear,
	 * and FENCE.I after a code write empties the table. */
	if (older && pa == m->pa) {
		h->jc_kept++;
		e->key = pc ^ h->jc_salt;
		jc_note(h, set, idx, pc);
		return e->code;
	}
	h->jc_dropped += older;
	/* Else the executor's lookup, for a block translated already (an
	 * entry that another pc took, a table emptied since): the same
	 * block table and generation check, without leaving translated
	 * code. Everything else (a block to build, heat to count, a link
	 * to patch) is the executor's. */
	const struct block *b = bc_current(h, pa);
	if (!b || b->jit_none || !b->jit[set])
		return NULL;
	h->jc_found++;
	jc_insert(h, pc, pa, b->jit[set]);
	return b->jit[set];
}

void code_fence(struct hart *h)
{
	/* Blocks are checked against their page's generation when looked
	 * up, and linked (by the executor or in translated code) only to
	 * blocks of the same page, which go out of date together; what
	 * bypasses the check is the jump cache, and only when a code page
	 * was written since it was last emptied: each entry was current when
	 * filled (the dispatcher checked its block's gen), so with no code
	 * write since the clear none is stale. Linux fences the icache far
	 * more often than it rewrites code (every new executable user
	 * mapping), and an emptied jump cache costs a trip through the
	 * dispatcher for every cross-page jump and return after it. */
	tlb_sync_writes(h);
	if (atomic_load_explicit(&h->ram->code_writes, memory_order_acquire) != h->jc_code_writes)
		jc_clear(h);
}

/* The hart is about to sleep in WFI. */
static void block_cache_idle(struct hart *h)
{
	uint64_t now = clock_monotonic_ns();
	h->ran_ns += now - h->woke_ns;
	h->slept_at_ns = now;
	h->in_wfi = true;
	if (h->slept_ns < BC_IDLE_NS)
		return;
	bool idle = h->slept_ns >= h->ran_ns;
	h->slept_ns = h->ran_ns = 0;
	if (!idle || h->bc_used < BC_IDLE_BYTES)
		return;
	block_cache_flush(h);
	madvise(h->bc_arena, h->bc_size, MADV_DONTNEED);
	if (h->jit)
		jit_reset(h, true);
}

static void mark_code_page(struct hart *h, uint64_t pn)
{
	struct gram *r = h->ram;
	if (atomic_load_explicit(&r->code[pn], memory_order_relaxed))
		return;
	/* Stores to this page must now go through the checked path: drop our
	 * own cached write translations first (none may map it once it is
	 * marked), and tell the other harts. */
	tlb_flush_writes(h);
	atomic_store_explicit(&r->code[pn], 1, memory_order_relaxed);
	uint64_t e = atomic_fetch_add(&r->code_epoch, 1);
	if (e == h->code_epoch)
		h->code_epoch = e + 1;
}

/* How far to shift jit_threshold for a block of a page at generation
 * `gen`, the runs before it is translated. A
 * page written again after its code ran (code beside data written often, a
 * guest's loader or JIT reusing it) throws its translations away before
 * they pay: every 16 such rewrites double the runs its blocks need first,
 * up to 64 times (1024 runs by default); code that then stays and runs
 * still gets translated, later. An explicit threshold (the tests'
 * "translate every block on its first run") stays exact. */
static uint8_t jit_shift_for(const struct hart *h, uint32_t gen)
{
	if (h->cfg.jit_threshold || h->jit_threshold == UINT32_MAX)
		return 0;
	return gen >> 4 > 6 ? 6 : (uint8_t)(gen >> 4);
}

static int fetch_parcel(struct hart *h, uint64_t va, uint16_t *out);

/* The tail of block b (struct block): when it ends in a conditional branch
 * forward over 1..BLOCK_TAIL_MAX whole instructions of its page, those are
 * decoded into the slots after the sentinel, with their offsets from the
 * block's start; returns how many (0: no tail). `host` is the block's
 * start. Decoded together with the block, from the same bytes, they are
 * invalidated with it. */
static uint8_t decode_tail(struct block *b, const uint8_t *host, const void *const *labels)
{
	if (b->n == 0)
		return 0;
	const struct insn *br = &b->insn[b->n - 1];
	if (br->op < OP_BEQ || br->op > OP_BGEU || br->imm <= 0)
		return 0;
	int join = br->pc_off + br->imm, off = b->bytes, k = 0;
	if ((int)(b->pa & 0xfff) + join > (int)GRAM_PAGE_SIZE)
		return 0;
	while (off < join && k < BLOCK_TAIL_MAX) {
		uint16_t lo;
		guest_copy(&lo, host + off, 2);
		unsigned len = insn_length(lo);
		uint32_t raw = lo;
		if (off + (int)len > join)
			return 0;
		if (len == 4) {
			uint16_t hi;
			guest_copy(&hi, host + off + 2, 2);
			raw |= (uint32_t)hi << 16;
		}
		struct insn *i = &b->insn[b->n + 1 + k++];
		decode(raw, i);
		i->pc_off = (int16_t)off;
		i->handler = labels[i->op];
		off += (int)len;
	}
	return off == join ? (uint8_t)k : 0;
}

/* Decode instructions at `host` (guest-physical `pa`, virtual `pc`) into a
 * new block. A block ends before an instruction that straddles the page
 * end; one that starts with such an instruction holds it alone, its upper
 * half fetched through pc + 2 (see block_straddles). Returns NULL with
 * *cause set when that fetch faults. */
static struct block *block_build(struct hart *h, uint64_t pc, uint64_t pa, const uint8_t *host,
				 const void *const *labels, const void *end_label, uint64_t *cause)
{
	if (h->bc_used + BLOCK_BYTES > h->bc_size)
		block_cache_flush(h);
	struct block *b = (struct block *)(h->bc_arena + h->bc_used);
	uint64_t pn = (pa - h->ram->base) >> GRAM_PAGE_SHIFT;
	mark_code_page(h, pn);
	b->pa = pa;
	b->link[0] = b->link[1] = NULL;
	b->gen = atomic_load_explicit(&h->ram->gen[pn], memory_order_acquire);
	b->heat = 0;
	b->jit_none = false;
	b->jit_shift = jit_shift_for(h, b->gen);
	b->hi = 0;
	memset(b->jit, 0, sizeof(b->jit));
	h->blocks_built++;

	/* off: page offset of the next instruction; bytes: its offset from
	 * the block's start (they differ by a constant until a jump on). */
	unsigned off = pa & 0xfff, n = 0;
	int bytes = 0;
	bool jumped = false;
	while (n < ENGINE_BLOCK_MAX && off + 2 <= GRAM_PAGE_SIZE) {
		uint16_t lo;
		guest_copy(&lo, host + bytes, 2);
		unsigned len = insn_length(lo);
		uint32_t raw = lo;
		if (off + len > GRAM_PAGE_SIZE) {
			if (n)
				break;
			int c = fetch_parcel(h, pc + 2, &b->hi);
			if (c) {
				*cause = (uint64_t)c;
				return NULL;
			}
			raw |= (uint32_t)b->hi << 16;
		} else if (len == 4) {
			uint16_t hi;
			guest_copy(&hi, host + bytes + 2, 2);
			raw |= (uint32_t)hi << 16;
		}
		struct insn *i = &b->insn[n++];
		decode(raw, i);
		i->pc_off = (int16_t)bytes;
		i->handler = labels[i->op];
		bytes += (int)len;
		off += len;
		/* A JAL x0 (`j`) to the same page: the block goes on at its
		 * target, so that code GCC lays out as a short block ending
		 * in `j` to a shared join (a merge's compare, a loop's tail)
		 * costs no block transition. Once per block, which bounds it
		 * (a `j` to itself or back into the block decodes a few
		 * instructions twice at most). Same page: one generation
		 * and one mapping cover it, and each instruction keeps its
		 * own pc (pc_off) for traps. Not from a straddling
		 * instruction (off past the page's end). */
		int64_t to = (int64_t)off - (int64_t)len + i->imm;
		if (i->op == OP_JAL && i->rd == REG_SINK && !jumped && off <= GRAM_PAGE_SIZE && to >= 0 &&
		    to + 2 <= (int64_t)GRAM_PAGE_SIZE) {
			i->flags |= INSN_JUMP_ON;
			jumped = true;
			bytes += (int)(to - (int64_t)off);
			off = (unsigned)to;
			continue;
		}
		if (i->flags & INSN_ENDS_BLOCK)
			break;
	}
	b->n = n;
	b->bytes = (int16_t)bytes;
	memset(&b->insn[n], 0, sizeof(b->insn[n]));
	b->insn[n].handler = end_label;
	b->tail = h->jit ? decode_tail(b, host, labels) : 0;
	h->bc_used += block_span(b);
	h->bc_blocks++;
	/* The new block goes to way 0 and what was there to way 1, dropping
	 * what way 1 held; but an outdated block for the same address is
	 * replaced where it is (way 0) or is the one dropped (way 1). A
	 * dropped block stays in the arena, reachable only through the links
	 * of other blocks, until the next flush. */
	struct bc_entry *e = bc_set(h, pa);
	if (e[0].pa != pa)
		e[1] = e[0];
	e[0].pa = pa;
	e[0].b = b;
	return b;
}

/* Fetch a 16-bit parcel at virtual `va`: a straddling instruction's upper half.
 * The fetch TLB first, as the dispatcher looks up every block: a hot
 * straddling instruction (a loop in a large program crosses page ends
 * often: a bytecode interpreter's did in bench/pywork.py, ~100k times a
 * round) would otherwise walk the page tables twice per run, and each
 * walk logs a TLB fill, so the fill log overflowed and every TLB flush
 * emptied the whole TLB. */
static int fetch_parcel(struct hart *h, uint64_t va, uint16_t *out)
{
	const struct tlb_entry *e = &h->tlb_x[(va >> 12) & (TLB_SIZE - 1)];
	if (likely(e->tag == va >> 12)) {
		guest_copy(out, (const void *)(e->addend + va), 2);
		return 0;
	}
	uint64_t pa;
	int cause = mmu_translate(h, va, ACCESS_EXEC, &pa);
	if (cause)
		return cause;
	const uint8_t *p = gram_ptr(h->ram, pa, 2);
	if (!p)
		return CAUSE_FETCH_ACCESS;
	guest_copy(out, p, 2);
	return 0;
}

/* Whether straddling block b, run at virtual pc, still holds the
 * instruction there: 0 when the upper half at pc + 2 is the one it was
 * decoded with, -1 when that changed (the page was written or pc + 2 maps
 * elsewhere now: build the block again), else the cause of that fetch's
 * fault. Its first half is the block's page, checked by its generation.
 * The same compare in translated code (jit/translate.c) needs a fetch TLB
 * entry for pc + 2: one passing here leaves one (fetch_parcel), so the
 * translation entered next gets past its own check. */
static int straddle_check(struct hart *h, const struct block *b, uint64_t pc)
{
	uint16_t hi;
	int cause = fetch_parcel(h, pc + 2, &hi);
	if (cause)
		return cause;
	return hi == b->hi ? 0 : -1;
}

/* ---- slow paths for memory access --------------------------------------- */

/* Result of a slow access: 0 done, MEM_MMIO an MMIO exit is set up in
 * h->mmio, otherwise an exception cause (+1 so that 0 stays "done") with
 * the address for stval in *tval: for an access across a page boundary
 * that faults on the second page, that page's first byte (privileged spec
 * 4.1.9, stval holds the address of the portion that faulted; a guest
 * that is told the first page, which is fine, retries forever). */
#define MEM_MMIO (-1)

static int load_slow(struct hart *h, uint64_t va, unsigned size, uint64_t *val, uint64_t *tval)
{
	*tval = va;
	uint64_t pa;
	int cause = mmu_translate(h, va, ACCESS_READ, &pa);
	if (cause)
		return cause + 1;
	if ((va & 0xfff) + size <= GRAM_PAGE_SIZE) {
		const uint8_t *p = gram_ptr(h->ram, pa, size);
		if (p) {
			*val = 0;
			guest_copy(val, p, size);
			return 0;
		}
		if (pa & (size - 1))
			return CAUSE_LOAD_ACCESS + 1;
		h->mmio.addr = pa;
		h->mmio.va = va;
		h->mmio.write = false;
		return MEM_MMIO;
	}
	/* Misaligned across a page boundary: both pages must be RAM. */
	uint64_t pa2, va2 = (va | 0xfff) + 1;
	cause = mmu_translate(h, va2, ACCESS_READ, &pa2);
	if (cause) {
		*tval = va2;
		return cause + 1;
	}
	unsigned first = GRAM_PAGE_SIZE - (va & 0xfff);
	const uint8_t *p1 = gram_ptr(h->ram, pa, first);
	const uint8_t *p2 = gram_ptr(h->ram, pa2, size - first);
	if (!p1 || !p2)
		return CAUSE_LOAD_ACCESS + 1;
	uint8_t buf[8];
	guest_copy(buf, p1, first);
	guest_copy(buf + first, p2, size - first);
	*val = 0;
	memcpy(val, buf, size);
	return 0;
}

static void ram_store(struct hart *h, uint64_t pa, uint8_t *p, const void *src, unsigned n)
{
	if (unlikely(h->store_log != NULL)) {
		uint64_t v = 0;
		memcpy(&v, src, n);
		store_log_add(h->store_log, p, v, n);
	}
	guest_copy(p, src, n);
	uint64_t pn = (pa - h->ram->base) >> GRAM_PAGE_SHIFT;
	if (atomic_load_explicit(&h->ram->code[pn], memory_order_relaxed))
		gram_written(h->ram, pa, n);
}

static int store_slow(struct hart *h, uint64_t va, unsigned size, uint64_t val, uint64_t *tval)
{
	*tval = va;
	uint64_t pa;
	int cause = mmu_translate(h, va, ACCESS_WRITE, &pa);
	if (cause)
		return cause + 1;
	if ((va & 0xfff) + size <= GRAM_PAGE_SIZE) {
		uint8_t *p = gram_ptr(h->ram, pa, size);
		if (p) {
			ram_store(h, pa, p, &val, size);
			return 0;
		}
		if (pa & (size - 1))
			return CAUSE_STORE_ACCESS + 1;
		h->mmio.addr = pa;
		h->mmio.va = va;
		h->mmio.write = true;
		return MEM_MMIO;
	}
	uint64_t pa2, va2 = (va | 0xfff) + 1;
	cause = mmu_translate(h, va2, ACCESS_WRITE, &pa2);
	if (cause) {
		*tval = va2;
		return cause + 1;
	}
	unsigned first = GRAM_PAGE_SIZE - (va & 0xfff);
	uint8_t *p1 = gram_ptr(h->ram, pa, first);
	uint8_t *p2 = gram_ptr(h->ram, pa2, size - first);
	if (!p1 || !p2)
		return CAUSE_STORE_ACCESS + 1;
	uint8_t buf[8];
	memcpy(buf, &val, 8);
	ram_store(h, pa, p1, buf, first);
	ram_store(h, pa2, p2, buf + first, size - first);
	return 0;
}

/* Zicboz CBO.ZERO of the block that holds address a (x[rs1]): the block
 * is a aligned down to ENGINE_CBOZ_BLOCK, written as a store writes (a
 * store's permission, the code pages' blocks invalidated, lockstep's log,
 * 8 bytes a record) and faulting as a store: a store/AMO page fault or
 * access fault, whose stval is a itself, the address the instruction
 * names (as the Sail model reports it), not the block's start. Never
 * misaligned. RAM only: no device here takes a block write, so a block
 * outside RAM is an access fault (the CMO chapter leaves CBO.ZERO to
 * memory without the PMAs for it to the platform). 0 done, else the cause
 * + 1. The caller checks the gate (senvcfg.CBZE in U-mode). */
int cbo_zero(struct hart *h, uint64_t a)
{
	static const uint8_t zeros[ENGINE_CBOZ_BLOCK];
	uint64_t va = a & ~(uint64_t)(ENGINE_CBOZ_BLOCK - 1), pa;
	const struct tlb_entry *e = &h->tlb_w[(va >> 12) & (TLB_SIZE - 1)];
	if (likely(e->tag == va >> 12) && likely(h->store_log == NULL)) {
		guest_copy((void *)(e->addend + va), zeros, ENGINE_CBOZ_BLOCK);
		return 0;
	}
	int cause = mmu_translate(h, va, ACCESS_WRITE, &pa);
	if (cause)
		return cause + 1;
	uint8_t *p = gram_ptr(h->ram, pa, ENGINE_CBOZ_BLOCK);
	if (!p)
		return CAUSE_STORE_ACCESS + 1;
	for (unsigned k = 0; k < ENGINE_CBOZ_BLOCK; k += 8)
		ram_store(h, pa + k, p + k, zeros, 8);
	return 0;
}

/* Host pointer for an atomic access (A extension): naturally aligned, RAM
 * only. LR needs read permission, everything else write permission. */
int amo_ptr(struct hart *h, uint64_t va, unsigned size, bool lr, void **out)
{
	if (va & (size - 1))
		return (lr ? CAUSE_MISALIGNED_LOAD : CAUSE_MISALIGNED_STORE) + 1;
	const struct tlb_entry *e = &(lr ? h->tlb_r : h->tlb_w)[(va >> 12) & (TLB_SIZE - 1)];
	if (likely(e->tag == va >> 12)) {
		*out = (void *)(e->addend + va);
		return 0;
	}
	uint64_t pa;
	int cause = mmu_translate(h, va, lr ? ACCESS_READ : ACCESS_WRITE, &pa);
	if (cause)
		return cause + 1;
	void *p = gram_ptr(h->ram, pa, size);
	if (!p)
		return (lr ? CAUSE_LOAD_ACCESS : CAUSE_STORE_ACCESS) + 1;
	if (!lr) {
		/* A code page never gets a write TLB entry; invalidate now, the
		 * write follows immediately. */
		gram_written(h->ram, pa, size);
	}
	*out = p;
	return 0;
}

/* ---- the loop ----------------------------------------------------------- */


static inline int64_t sx32(uint64_t v) { return (int64_t)(int32_t)v; }

/* Count one block transition down. The counter is also zeroed by other
 * threads (hart_poke), hence the atomic accesses; a decrement that races
 * with a zeroing delays the check by at most TIMER_CHECK_BLOCKS(_JIT)
 * blocks. */
static inline int countdown(struct hart *h)
{
	int c = __atomic_load_n(&h->timer_countdown, __ATOMIC_RELAXED) - 1;
	__atomic_store_n(&h->timer_countdown, c, __ATOMIC_RELAXED);
	return c;
}

static inline uint64_t clz64(uint64_t v) { return v ? (uint64_t)__builtin_clzll(v) : 64; }
static inline uint64_t ctz64(uint64_t v) { return v ? (uint64_t)__builtin_ctzll(v) : 64; }
static inline uint64_t rol64(uint64_t v, unsigned s) { s &= 63; return s ? (v << s) | (v >> (64 - s)) : v; }
static inline uint64_t ror64(uint64_t v, unsigned s) { s &= 63; return s ? (v >> s) | (v << (64 - s)) : v; }
static inline uint32_t rol32(uint32_t v, unsigned s) { s &= 31; return s ? (v << s) | (v >> (32 - s)) : v; }
static inline uint32_t ror32(uint32_t v, unsigned s) { s &= 31; return s ? (v >> s) | (v << (32 - s)) : v; }

static uint64_t orc_b(uint64_t v)
{
	uint64_t r = 0;
	for (int k = 0; k < 8; k++)
		if ((v >> (8 * k)) & 0xff)
			r |= 0xffull << (8 * k);
	return r;
}

/* The bits of an instruction that turned out illegal when it ran (stval for
 * the trap): read back from the block's page (a straddling instruction's
 * upper half is the one it was decoded with). */
static uint64_t insn_bits(struct hart *h, const struct block *b, const struct insn *i)
{
	uint32_t raw = 0;
	unsigned len = block_straddles(b) ? 2 : i->len;
	const uint8_t *p = gram_ptr(h->ram, b->pa + i->pc_off, len);
	if (p)
		guest_copy(&raw, p, len);
	if (block_straddles(b))
		raw |= (uint32_t)b->hi << 16;
	return raw;
}

/* Apply a completed load to its destination (shared by MMIO completion). */
static void load_writeback(struct hart *h, enum load_kind kind, unsigned rd, uint64_t v)
{
	switch (kind) {
	case LK_B: h->x[rd] = (int64_t)(int8_t)v; break;
	case LK_H: h->x[rd] = (int64_t)(int16_t)v; break;
	case LK_W: h->x[rd] = (int64_t)(int32_t)v; break;
	case LK_D: h->x[rd] = v; break;
	case LK_BU: h->x[rd] = (uint8_t)v; break;
	case LK_HU: h->x[rd] = (uint16_t)v; break;
	case LK_WU: h->x[rd] = (uint32_t)v; break;
	case LK_FW: h->f[rd] = fpu_box_s((uint32_t)v); h->status |= SSTATUS_FS; break;
	case LK_FD: h->f[rd] = v; h->status |= SSTATUS_FS; break;
	case LK_NONE: break;
	}
}

void hart_mmio_complete(struct hart *h, uint64_t value, bool fault)
{
	if (fault) {
		trap_take(h, h->mmio.write ? CAUSE_STORE_ACCESS : CAUSE_LOAD_ACCESS,
			  h->mmio.va, h->pc);
		return;
	}
	if (!h->mmio.write)
		load_writeback(h, h->mmio.kind, h->mmio.rd, value);
	h->pc += h->mmio.len;
	h->instret++;
}

/* The loop. With `only`, run just that block (it must be a copy without
 * links) and return at the next block boundary: the JIT's lockstep check
 * runs the executor that way on its shadow hart. */
static void run(struct hart *h, struct hart_exit *ex, struct block *only)
{
	static const void *const labels[OP_COUNT] = {
#define OP_LABEL(name) [OP_##name] = &&L_##name,
		OP_LIST(OP_LABEL)
#undef OP_LABEL
	};
	uint64_t *const x = h->x;
	uint64_t *const f = h->f;
	struct block *b;
	const struct insn *i;
	/* The block just left by a direct branch within its page, and which
	 * of its links the next block belongs in (see CHAIN). */
	struct block *prev = NULL;
	int prev_slot = 0;
	/* Every return leaves through here so in_run is always cleared. */
#define RETURN() do { tlb_sync_writes(h); atomic_store(&h->in_run, false); return; } while (0)

	ex->reason = EXIT_NONE;
	if (only) {
		for (unsigned k = 0; k <= only->n; k++)
			only->insn[k].handler = k < only->n ? labels[only->insn[k].op] : &&L_END;
		b = only;
		i = b->insn;
		goto *i->handler;
	}
	atomic_store(&h->in_run, true);
	h->pause_spins = 0;
	timer_update(h);
	atomic_store_explicit(&h->attention, 1, memory_order_relaxed);

#define PC (h->pc + i->pc_off)
#define RD x[i->rd]
#define RS1 x[i->rs1]
#define RS2 x[i->rs2]
#define IMM ((int64_t)i->imm)
#define NEXT do { i++; goto *i->handler; } while (0)
#define RETIRED ((uint64_t)(i - b->insn))
	/* Leave the block at a new pc after retiring this instruction. */
#define JUMP(target) do { h->instret += RETIRED + 1; h->pc = (target); goto next_block; } while (0)
/* Leave by a direct branch: go straight to the linked successor when there
 * is one and nothing asynchronous is waiting, else look it up and, if the
 * target lies in the same page, remember to link it. */
#define CHAIN(slot, target) do {                                                   \
		uint64_t t_ = (target);                                                 \
		h->instret += b->n; /* a branch always ends its block */                \
		struct block *n_ = b->link[slot];                                       \
		if (likely(n_ != NULL) && likely(t_ >> 12 == h->pc >> 12) &&            \
		    likely(!atomic_load_explicit(&h->attention, memory_order_relaxed)) && \
		    likely(countdown(h) > 0) &&                                         \
		    likely(n_->heat++ < h->jit_threshold << n_->jit_shift || n_->jit_none)) { \
			h->pc = t_;                                                     \
			b = n_;                                                         \
			i = b->insn;                                                    \
			goto *i->handler;                                               \
		}                                                                       \
		if (t_ >> 12 == h->pc >> 12) {                                          \
			prev = b;                                                       \
			prev_slot = (slot);                                             \
		}                                                                       \
		h->pc = t_;                                                             \
		goto next_block;                                                        \
	} while (0)
#define TRAP(cause, tval) do { h->instret += RETIRED; trap_take(h, (cause), (tval), PC); goto next_block; } while (0)
#define ILLEGAL() goto L_ILLEGAL_RUNTIME
#define EXIT(r) do { h->instret += RETIRED; h->pc = PC; ex->reason = (r); RETURN(); } while (0)

#define LOAD(type, kind_, write_dest) do {                                           \
		uint64_t va_ = RS1 + IMM;                                               \
		const struct tlb_entry *e_ = &h->tlb_r[(va_ >> 12) & (TLB_SIZE - 1)];  \
		type v_;                                                                \
		if (likely(e_->tag == va_ >> 12 && (va_ & 0xfff) <= GRAM_PAGE_SIZE - sizeof(type))) { \
			guest_copy(&v_, (const void *)(e_->addend + va_), sizeof(type)); \
		} else {                                                                \
			uint64_t w_, tv_;                                               \
			int r_ = load_slow(h, va_, sizeof(type), &w_, &tv_);            \
			if (r_ == MEM_MMIO) {                                           \
				h->mmio.kind = (kind_);                                  \
				h->mmio.rd = i->rd;                                     \
				h->mmio.len = i->len;                                   \
				ex->mmio.addr = h->mmio.addr;                           \
				ex->mmio.size = sizeof(type);                           \
				ex->mmio.write = false;                                 \
				ex->mmio.value = 0;                                     \
				EXIT(EXIT_MMIO);                                        \
			}                                                               \
			if (r_)                                                         \
				TRAP(r_ - 1, tv_);                                      \
			memcpy(&v_, &w_, sizeof(type));                                 \
		}                                                                       \
		write_dest;                                                             \
	} while (0)

#define STORE(type, val_expr) do {                                                      \
		uint64_t va_ = RS1 + IMM;                                               \
		const struct tlb_entry *e_ = &h->tlb_w[(va_ >> 12) & (TLB_SIZE - 1)];  \
		type v_ = (type)(val_expr);                                                \
		if (likely(e_->tag == va_ >> 12 && (va_ & 0xfff) <= GRAM_PAGE_SIZE - sizeof(type))) { \
			guest_copy((void *)(e_->addend + va_), &v_, sizeof(type));      \
		} else {                                                                \
			uint64_t tv_;                                                   \
			int r_ = store_slow(h, va_, sizeof(type), (uint64_t)v_, &tv_);  \
			if (r_ == MEM_MMIO) {                                           \
				h->mmio.kind = LK_NONE;                                 \
				h->mmio.len = i->len;                                   \
				ex->mmio.addr = h->mmio.addr;                           \
				ex->mmio.size = sizeof(type);                           \
				ex->mmio.write = true;                                  \
				ex->mmio.value = (uint64_t)v_;                          \
				EXIT(EXIT_MMIO);                                        \
			}                                                               \
			if (r_)                                                         \
				TRAP(r_ - 1, tv_);                                      \
		}                                                                       \
	} while (0)

#define FP_ON() do { if (unlikely(!(h->status & SSTATUS_FS))) ILLEGAL(); } while (0)
#define FP_DIRTY() (h->status |= SSTATUS_FS)
#define FP_RM(var) int var = i->rm == 7 ? (int)h->frm : i->rm; if (unlikely(var > 4)) ILLEGAL()
#define FP_OP2(expr) do { FP_ON(); FP_RM(rm_); f[i->rd] = (expr); FP_DIRTY(); NEXT; } while (0)
#define FP_XOP(expr) do { FP_ON(); RD = (expr); NEXT; } while (0)
#define FP_XOP_FLAGS(expr) do { FP_ON(); RD = (expr); FP_DIRTY(); NEXT; } while (0)

#define AMO(type, size, expr_new) do {                                              \
		void *p_;                                                               \
		int r_ = amo_ptr(h, RS1, size, false, &p_);                             \
		if (r_)                                                                 \
			TRAP(r_ - 1, RS1);                                              \
		type *a_ = p_, old_ = __atomic_load_n(a_, __ATOMIC_RELAXED), new_;       \
		type src_ = (type)RS2;                                                  \
		do {                                                                    \
			new_ = (expr_new);                                              \
		} while (!__atomic_compare_exchange_n(a_, &old_, new_, true,            \
						      __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)); \
		(void)src_;                                                             \
		RD = size == 4 ? (uint64_t)sx32(old_) : (uint64_t)old_;                 \
		NEXT;                                                                   \
	} while (0)

#define AMO_FETCH(type, size, builtin) do {                                        \
		void *p_;                                                               \
		int r_ = amo_ptr(h, RS1, size, false, &p_);                             \
		if (r_)                                                                 \
			TRAP(r_ - 1, RS1);                                              \
		type old_ = builtin((type *)p_, (type)RS2, __ATOMIC_SEQ_CST);           \
		RD = size == 4 ? (uint64_t)sx32(old_) : (uint64_t)old_;                 \
		NEXT;                                                                   \
	} while (0)

next_block:
	if (unlikely(only != NULL))
		RETURN();
	if (unlikely(countdown(h) <= 0)) {
		__atomic_store_n(&h->timer_countdown, h->jit ? TIMER_CHECK_BLOCKS_JIT : TIMER_CHECK_BLOCKS,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&h->jit_deadline, h->instret + TIMER_CHECK_INSNS_JIT, __ATOMIC_RELAXED);
		timer_update(h);
		tlb_sync_writes(h);
	}
	if (unlikely(atomic_load_explicit(&h->attention, memory_order_relaxed))) {
		prev = NULL;
		/* A full barrier: the reads of mip below must not pass this
		 * clear, or an interrupt posted in between would go unnoticed. */
		atomic_exchange(&h->attention, 0);
		if (unlikely(h->storm)) {
			h->storm = false;
			h->storm_count = 0;
			ex->reason = EXIT_FATAL;
			ex->fatal.what = "trap storm: the trap handler faults before retiring an instruction";
			ex->fatal.pc = h->storm_pc;
			ex->fatal.cause = h->storm_cause;
			ex->fatal.tval = h->storm_tval;
			RETURN();
		}
		if (atomic_exchange(&h->kick, 0)) {
			ex->reason = EXIT_KICK;
			atomic_store_explicit(&h->attention, 1, memory_order_relaxed);
			RETURN();
		}
		uint64_t fence_i = atomic_load(&h->fence_i_req);
		if (fence_i != atomic_load_explicit(&h->fence_i_done, memory_order_relaxed)) {
			code_fence(h);
			atomic_store(&h->fence_i_done, fence_i);
		}
		uint64_t sfence = atomic_load(&h->sfence_req);
		if (sfence != atomic_load_explicit(&h->sfence_done, memory_order_relaxed)) {
			h->mmu_stats.flush_remote++;
			tlb_flush_all(h);
			atomic_store(&h->sfence_done, sfence);
		}
		uint64_t irq = irq_deliverable(h);
		if (irq)
			trap_take(h, CAUSE_INTERRUPT | irq, 0, h->pc);
	}
	{
		uint64_t pc = h->pc, cause = 0, fault_va = pc;
		const struct tlb_entry *e = &h->tlb_x[(pc >> 12) & (TLB_SIZE - 1)];
		const uint8_t *host;
		if (likely(e->tag == pc >> 12)) {
			host = (const uint8_t *)(e->addend + pc);
		} else {
			uint64_t pa;
			cause = mmu_translate(h, pc, ACCESS_EXEC, &pa);
			host = cause ? NULL : gram_ptr(h->ram, pa, 2);
			if (!host) {
				if (!cause)
					cause = CAUSE_FETCH_ACCESS;
				goto fetch_fault;
			}
		}
		uint64_t pa = (uint64_t)(host - h->ram_host) + h->ram_base;
		b = bc_current(h, pa);
		if (unlikely((pa & 0xfff) == GRAM_PAGE_SIZE - 2) && b && block_straddles(b)) {
			/* Its upper half lies on another page: no link leads
			 * here (prev), the check must run every time. */
			prev = NULL;
			int c = straddle_check(h, b, pc);
			if (c > 0) {
				cause = (uint64_t)c;
				fault_va = pc + 2;
				goto fetch_fault;
			}
			if (c < 0)
				b = NULL;
		}
		if (unlikely(!b)) {
			prev = NULL;
			b = block_build(h, pc, pa, host, labels, &&L_END, &cause);
			if (!b) {
				fault_va = pc + 2;
				goto fetch_fault;
			}
		} else if (prev) {
			prev->link[prev_slot] = b;
			prev = NULL;
		}
		if (h->jit && !b->jit_none) {
			const void *code = b->jit[h->tlb_set];
			if (!code && ++b->heat >= h->jit_threshold << b->jit_shift) {
				bool full;
				code = jit_translate(h, b, &full);
				if (full) {
					block_cache_flush(h);
					goto next_block;
				}
			}
			if (code) {
				enum jit_exit r;
				prev = NULL;
				if (h->jit_link && h->jit_link_pa == pa && h->jit_link_set == h->tlb_set &&
				    !h->cfg.jit_lockstep)
					jit_link(h, code);
				h->jit_link = NULL;
				if (h->cfg.jit_lockstep) {
					const char *why = NULL;
					int ls = jit_lockstep_step(h, b, code, &why);
					if (ls < 0) {
						ex->reason = EXIT_FATAL;
						ex->fatal.what = why;
						ex->fatal.pc = h->pc;
						ex->fatal.cause = 0;
						ex->fatal.tval = b->pa;
						RETURN();
					}
					r = (enum jit_exit)ls;
				} else {
					jc_insert(h, pc, pa, code);
					r = jit_enter(h, code);
				}
				if (r == JIT_EXIT_BAIL) {
					b = h->jit_bail_block;
					i = &b->insn[h->jit_bail_idx];
					goto *i->handler;
				}
				goto next_block;
			}
		}
		h->jit_link = NULL;
		i = b->insn;
		goto *i->handler;
fetch_fault:
		/* A handler that cannot itself be fetched would trap forever. */
		if (pc == (h->stvec & ~3ull)) {
			ex->reason = EXIT_FATAL;
			ex->fatal.what = "the trap handler cannot be fetched";
			ex->fatal.pc = pc;
			ex->fatal.cause = cause;
			ex->fatal.tval = fault_va;
			RETURN();
		}
		trap_take(h, cause, fault_va, pc);
		goto next_block;
	}

L_END:
	h->instret += b->n;
	h->pc += b->bytes;
	goto next_block;

L_ILLEGAL:
	TRAP(CAUSE_ILLEGAL, (uint32_t)i->imm);
L_ILLEGAL_RUNTIME:
	TRAP(CAUSE_ILLEGAL, insn_bits(h, b, i));

	/* RV64I */
L_LUI: RD = IMM; NEXT;
L_AUIPC: RD = PC + IMM; NEXT;
L_JAL: {
	/* Within the block (block_build): its next instruction is the target's. */
	if (i->flags & INSN_JUMP_ON)
		NEXT;
	uint64_t t = PC + IMM; RD = PC + i->len; CHAIN(0, t); }
L_JALR: { uint64_t t = (RS1 + IMM) & ~1ull; RD = PC + i->len; JUMP(t); }
L_BEQ: if (RS1 == RS2) CHAIN(0, PC + IMM); CHAIN(1, PC + i->len);
L_BNE: if (RS1 != RS2) CHAIN(0, PC + IMM); CHAIN(1, PC + i->len);
L_BLT: if ((int64_t)RS1 < (int64_t)RS2) CHAIN(0, PC + IMM); CHAIN(1, PC + i->len);
L_BGE: if ((int64_t)RS1 >= (int64_t)RS2) CHAIN(0, PC + IMM); CHAIN(1, PC + i->len);
L_BLTU: if (RS1 < RS2) CHAIN(0, PC + IMM); CHAIN(1, PC + i->len);
L_BGEU: if (RS1 >= RS2) CHAIN(0, PC + IMM); CHAIN(1, PC + i->len);
L_LB: LOAD(int8_t, LK_B, RD = (int64_t)v_); NEXT;
L_LH: LOAD(int16_t, LK_H, RD = (int64_t)v_); NEXT;
L_LW: LOAD(int32_t, LK_W, RD = (int64_t)v_); NEXT;
L_LD: LOAD(uint64_t, LK_D, RD = v_); NEXT;
L_LBU: LOAD(uint8_t, LK_BU, RD = v_); NEXT;
L_LHU: LOAD(uint16_t, LK_HU, RD = v_); NEXT;
L_LWU: LOAD(uint32_t, LK_WU, RD = v_); NEXT;
L_SB: STORE(uint8_t, RS2); NEXT;
L_SH: STORE(uint16_t, RS2); NEXT;
L_SW: STORE(uint32_t, RS2); NEXT;
L_SD: STORE(uint64_t, RS2); NEXT;
L_ADDI: RD = RS1 + IMM; NEXT;
L_SLTI: RD = (int64_t)RS1 < IMM; NEXT;
L_SLTIU: RD = RS1 < (uint64_t)IMM; NEXT;
L_XORI: RD = RS1 ^ IMM; NEXT;
L_ORI: RD = RS1 | IMM; NEXT;
L_ANDI: RD = RS1 & IMM; NEXT;
L_SLLI: RD = RS1 << (i->imm & 63); NEXT;
L_SRLI: RD = RS1 >> (i->imm & 63); NEXT;
L_SRAI: RD = (int64_t)RS1 >> (i->imm & 63); NEXT;
L_ADD: RD = RS1 + RS2; NEXT;
L_SUB: RD = RS1 - RS2; NEXT;
L_SLL: RD = RS1 << (RS2 & 63); NEXT;
L_SLT: RD = (int64_t)RS1 < (int64_t)RS2; NEXT;
L_SLTU: RD = RS1 < RS2; NEXT;
L_XOR: RD = RS1 ^ RS2; NEXT;
L_SRL: RD = RS1 >> (RS2 & 63); NEXT;
L_SRA: RD = (int64_t)RS1 >> (RS2 & 63); NEXT;
L_OR: RD = RS1 | RS2; NEXT;
L_AND: RD = RS1 & RS2; NEXT;
L_ADDIW: RD = sx32(RS1 + IMM); NEXT;
L_SLLIW: RD = sx32((uint32_t)RS1 << (i->imm & 31)); NEXT;
L_SRLIW: RD = sx32((uint32_t)RS1 >> (i->imm & 31)); NEXT;
L_SRAIW: RD = (int64_t)((int32_t)RS1 >> (i->imm & 31)); NEXT;
L_ADDW: RD = sx32(RS1 + RS2); NEXT;
L_SUBW: RD = sx32(RS1 - RS2); NEXT;
L_SLLW: RD = sx32((uint32_t)RS1 << (RS2 & 31)); NEXT;
L_SRLW: RD = sx32((uint32_t)RS1 >> (RS2 & 31)); NEXT;
L_SRAW: RD = (int64_t)((int32_t)RS1 >> (RS2 & 31)); NEXT;

	/* Fences and system */
L_FENCE:
	/* RVWMO to x86-TSO: only a store-to-load ordering needs a host fence. */
	if ((i->imm & 0x10) && (i->imm & 0x02))
		atomic_thread_fence(memory_order_seq_cst);
	/* PAUSE (FENCE W,0) sits in spin loops. A hart that spins long waits
	 * for another hart, whose host thread may be off the CPU: with more
	 * harts than host cores (a ticket lock hands over only to the one
	 * next hart) spinning out a whole time slice starves the very hart it
	 * waits for. Like pause-loop exiting in hardware virtualization, leave
	 * after a while so the dispatcher can give the CPU away. */
	if (i->imm == 0x010 && unlikely(++h->pause_spins >= ENGINE_PAUSE_SPINS)) {
		h->instret += RETIRED + 1;
		h->pc = PC + i->len;
		ex->reason = EXIT_PAUSE;
		RETURN();
	}
	NEXT;
L_FENCE_I:
	code_fence(h);
	JUMP(PC + i->len);
L_ECALL:
	if (h->priv == PRIV_S)
		EXIT(EXIT_SBI);
	if (h->cfg.user_ecall_exits)
		EXIT(EXIT_USER_ECALL);
	TRAP(CAUSE_ECALL_U, 0);
L_EBREAK:
	TRAP(CAUSE_BREAKPOINT, PC);
L_SRET:
	if (h->priv != PRIV_S)
		ILLEGAL();
	h->instret += RETIRED + 1;
	sret(h);
	goto next_block;
L_WFI:
	if (h->priv != PRIV_S)
		ILLEGAL();
	if (hart_wakeup_pending(h))
		JUMP(PC + i->len);
	h->instret += RETIRED + 1;
	h->pc = PC + i->len;
	ex->reason = EXIT_WFI;
	block_cache_idle(h);
	RETURN();
L_SFENCE_VMA:
	if (h->priv != PRIV_S)
		ILLEGAL();
	h->mmu_stats.sfence[(i->rs1 != 0) << 1 | (i->rs2 != 0)]++;
	h->mmu_stats.flush_sfence += i->rs1 == 0;
	/* rs2 names an address space: its non-global mappings (10.2.1). */
	if (i->rs1 == 0 && i->rs2 != 0)
		tlb_flush_nonglobal(h);
	else if (i->rs1 == 0)
		tlb_flush_all(h);
	else
		tlb_flush_va(h, RS1);
	JUMP(PC + i->len);

	/* Zicsr: every CSR instruction ends its block, so state it changes is
	 * seen by the next block. */
	{
		uint64_t src, old;
		unsigned kind;
L_CSRRW: src = RS1; kind = 0; goto csr_common;
L_CSRRS: src = RS1; kind = 1; goto csr_common;
L_CSRRC: src = RS1; kind = 2; goto csr_common;
L_CSRRWI: src = i->rs1; kind = 0; goto csr_common;
L_CSRRSI: src = i->rs1; kind = 1; goto csr_common;
L_CSRRCI: src = i->rs1; kind = 2; goto csr_common;
csr_common:
		/* instret and cycle count every instruction before this one,
		 * those of this block included (Zicntr): count them first. */
		h->instret += RETIRED;
		old = 0;
		if (!(i->flags & INSN_CSR_NO_READ) && csr_read(h, (unsigned)i->imm, &old))
			goto csr_illegal;
		if (!(i->flags & INSN_CSR_NO_WRITE)) {
			uint64_t nv = kind == 0 ? src : kind == 1 ? old | src : old & ~src;
			if (csr_write(h, (unsigned)i->imm, nv))
				goto csr_illegal;
		}
		RD = old;
		h->instret++;
		h->pc = PC + i->len;
		goto next_block;
csr_illegal:
		h->instret -= RETIRED; /* the trap counts them again */
		ILLEGAL();
	}

	/* M */
L_MUL: RD = RS1 * RS2; NEXT;
L_MULH: RD = (uint64_t)(((__int128)(int64_t)RS1 * (__int128)(int64_t)RS2) >> 64); NEXT;
L_MULHSU: RD = (uint64_t)(((__int128)(int64_t)RS1 * (__int128)(unsigned __int128)RS2) >> 64); NEXT;
L_MULHU: RD = (uint64_t)(((unsigned __int128)RS1 * (unsigned __int128)RS2) >> 64); NEXT;
L_DIV: {
	int64_t a = (int64_t)RS1, d = (int64_t)RS2;
	RD = d == 0 ? ~0ull : (a == INT64_MIN && d == -1) ? (uint64_t)a : (uint64_t)(a / d);
	NEXT;
}
L_DIVU: RD = RS2 == 0 ? ~0ull : RS1 / RS2; NEXT;
L_REM: {
	int64_t a = (int64_t)RS1, d = (int64_t)RS2;
	RD = d == 0 ? (uint64_t)a : (a == INT64_MIN && d == -1) ? 0 : (uint64_t)(a % d);
	NEXT;
}
L_REMU: RD = RS2 == 0 ? RS1 : RS1 % RS2; NEXT;
L_MULW: RD = sx32(RS1 * RS2); NEXT;
L_DIVW: {
	int32_t a = (int32_t)RS1, d = (int32_t)RS2;
	RD = d == 0 ? ~0ull : (a == INT32_MIN && d == -1) ? (uint64_t)(int64_t)a : (uint64_t)(int64_t)(a / d);
	NEXT;
}
L_DIVUW: {
	uint32_t a = (uint32_t)RS1, d = (uint32_t)RS2;
	RD = d == 0 ? ~0ull : (uint64_t)sx32(a / d);
	NEXT;
}
L_REMW: {
	int32_t a = (int32_t)RS1, d = (int32_t)RS2;
	RD = d == 0 ? (uint64_t)(int64_t)a : (a == INT32_MIN && d == -1) ? 0 : (uint64_t)(int64_t)(a % d);
	NEXT;
}
L_REMUW: {
	uint32_t a = (uint32_t)RS1, d = (uint32_t)RS2;
	RD = (uint64_t)(d == 0 ? sx32(a) : sx32(a % d));
	NEXT;
}

	/* A */
L_LR_W: L_LR_D: {
	unsigned size = i->op == OP_LR_W ? 4 : 8;
	void *p = NULL;
	int r = amo_ptr(h, RS1, size, true, &p);
	if (r)
		TRAP(r - 1, RS1);
	uint64_t v = size == 4 ? (uint64_t)__atomic_load_n((uint32_t *)p, __ATOMIC_SEQ_CST)
			       : __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST);
	h->resv_valid = true;
	h->resv_addr = RS1;
	h->resv_val = v;
	RD = size == 4 ? (uint64_t)sx32(v) : v;
	NEXT;
}
L_SC_W: L_SC_D: {
	unsigned size = i->op == OP_SC_W ? 4 : 8;
	uint64_t va = RS1;
	if (!h->resv_valid || h->resv_addr != va) {
		h->resv_valid = false;
		RD = 1;
		NEXT;
	}
	void *p = NULL;
	int r = amo_ptr(h, va, size, false, &p);
	if (r)
		TRAP(r - 1, va);
	h->resv_valid = false;
	bool ok;
	if (size == 4) {
		uint32_t expect = (uint32_t)h->resv_val;
		ok = __atomic_compare_exchange_n((uint32_t *)p, &expect, (uint32_t)RS2, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	} else {
		uint64_t expect = h->resv_val;
		ok = __atomic_compare_exchange_n((uint64_t *)p, &expect, RS2, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
	RD = !ok;
	NEXT;
}
L_AMOSWAP_W: AMO_FETCH(uint32_t, 4, __atomic_exchange_n);
L_AMOADD_W: AMO_FETCH(uint32_t, 4, __atomic_fetch_add);
L_AMOXOR_W: AMO_FETCH(uint32_t, 4, __atomic_fetch_xor);
L_AMOAND_W: AMO_FETCH(uint32_t, 4, __atomic_fetch_and);
L_AMOOR_W: AMO_FETCH(uint32_t, 4, __atomic_fetch_or);
L_AMOMIN_W: AMO(uint32_t, 4, (int32_t)old_ < (int32_t)src_ ? old_ : src_);
L_AMOMAX_W: AMO(uint32_t, 4, (int32_t)old_ > (int32_t)src_ ? old_ : src_);
L_AMOMINU_W: AMO(uint32_t, 4, old_ < src_ ? old_ : src_);
L_AMOMAXU_W: AMO(uint32_t, 4, old_ > src_ ? old_ : src_);
L_AMOSWAP_D: AMO_FETCH(uint64_t, 8, __atomic_exchange_n);
L_AMOADD_D: AMO_FETCH(uint64_t, 8, __atomic_fetch_add);
L_AMOXOR_D: AMO_FETCH(uint64_t, 8, __atomic_fetch_xor);
L_AMOAND_D: AMO_FETCH(uint64_t, 8, __atomic_fetch_and);
L_AMOOR_D: AMO_FETCH(uint64_t, 8, __atomic_fetch_or);
L_AMOMIN_D: AMO(uint64_t, 8, (int64_t)old_ < (int64_t)src_ ? old_ : src_);
L_AMOMAX_D: AMO(uint64_t, 8, (int64_t)old_ > (int64_t)src_ ? old_ : src_);
L_AMOMINU_D: AMO(uint64_t, 8, old_ < src_ ? old_ : src_);
L_AMOMAXU_D: AMO(uint64_t, 8, old_ > src_ ? old_ : src_);

	/* F and D */
L_FLW: FP_ON(); LOAD(uint32_t, LK_FW, f[i->rd] = fpu_box_s(v_)); FP_DIRTY(); NEXT;
L_FLD: FP_ON(); LOAD(uint64_t, LK_FD, f[i->rd] = v_); FP_DIRTY(); NEXT;
L_FSW: FP_ON(); STORE(uint32_t, f[i->rs2]); NEXT;
L_FSD: FP_ON(); STORE(uint64_t, f[i->rs2]); NEXT;
L_FMADD_S: FP_OP2(fpu_fma_s(f[i->rs1], f[i->rs2], f[i->rs3], FMA_MADD, rm_, &h->fflags));
L_FMSUB_S: FP_OP2(fpu_fma_s(f[i->rs1], f[i->rs2], f[i->rs3], FMA_MSUB, rm_, &h->fflags));
L_FNMSUB_S: FP_OP2(fpu_fma_s(f[i->rs1], f[i->rs2], f[i->rs3], FMA_NMSUB, rm_, &h->fflags));
L_FNMADD_S: FP_OP2(fpu_fma_s(f[i->rs1], f[i->rs2], f[i->rs3], FMA_NMADD, rm_, &h->fflags));
L_FMADD_D: FP_OP2(fpu_fma_d(f[i->rs1], f[i->rs2], f[i->rs3], FMA_MADD, rm_, &h->fflags));
L_FMSUB_D: FP_OP2(fpu_fma_d(f[i->rs1], f[i->rs2], f[i->rs3], FMA_MSUB, rm_, &h->fflags));
L_FNMSUB_D: FP_OP2(fpu_fma_d(f[i->rs1], f[i->rs2], f[i->rs3], FMA_NMSUB, rm_, &h->fflags));
L_FNMADD_D: FP_OP2(fpu_fma_d(f[i->rs1], f[i->rs2], f[i->rs3], FMA_NMADD, rm_, &h->fflags));
L_FADD_S: FP_OP2(fpu_add_s(f[i->rs1], f[i->rs2], rm_, &h->fflags));
L_FSUB_S: FP_OP2(fpu_sub_s(f[i->rs1], f[i->rs2], rm_, &h->fflags));
L_FMUL_S: FP_OP2(fpu_mul_s(f[i->rs1], f[i->rs2], rm_, &h->fflags));
L_FDIV_S: FP_OP2(fpu_div_s(f[i->rs1], f[i->rs2], rm_, &h->fflags));
L_FSQRT_S: FP_OP2(fpu_sqrt_s(f[i->rs1], rm_, &h->fflags));
L_FADD_D: FP_OP2(fpu_add_d(f[i->rs1], f[i->rs2], rm_, &h->fflags));
L_FSUB_D: FP_OP2(fpu_sub_d(f[i->rs1], f[i->rs2], rm_, &h->fflags));
L_FMUL_D: FP_OP2(fpu_mul_d(f[i->rs1], f[i->rs2], rm_, &h->fflags));
L_FDIV_D: FP_OP2(fpu_div_d(f[i->rs1], f[i->rs2], rm_, &h->fflags));
L_FSQRT_D: FP_OP2(fpu_sqrt_d(f[i->rs1], rm_, &h->fflags));
L_FSGNJ_S: FP_ON(); f[i->rd] = fpu_sgnj_s(f[i->rs1], f[i->rs2], 0); FP_DIRTY(); NEXT;
L_FSGNJN_S: FP_ON(); f[i->rd] = fpu_sgnj_s(f[i->rs1], f[i->rs2], 1); FP_DIRTY(); NEXT;
L_FSGNJX_S: FP_ON(); f[i->rd] = fpu_sgnj_s(f[i->rs1], f[i->rs2], 2); FP_DIRTY(); NEXT;
L_FSGNJ_D: FP_ON(); f[i->rd] = fpu_sgnj_d(f[i->rs1], f[i->rs2], 0); FP_DIRTY(); NEXT;
L_FSGNJN_D: FP_ON(); f[i->rd] = fpu_sgnj_d(f[i->rs1], f[i->rs2], 1); FP_DIRTY(); NEXT;
L_FSGNJX_D: FP_ON(); f[i->rd] = fpu_sgnj_d(f[i->rs1], f[i->rs2], 2); FP_DIRTY(); NEXT;
L_FMIN_S: FP_ON(); f[i->rd] = fpu_min_s(f[i->rs1], f[i->rs2], &h->fflags); FP_DIRTY(); NEXT;
L_FMAX_S: FP_ON(); f[i->rd] = fpu_max_s(f[i->rs1], f[i->rs2], &h->fflags); FP_DIRTY(); NEXT;
L_FMIN_D: FP_ON(); f[i->rd] = fpu_min_d(f[i->rs1], f[i->rs2], &h->fflags); FP_DIRTY(); NEXT;
L_FMAX_D: FP_ON(); f[i->rd] = fpu_max_d(f[i->rs1], f[i->rs2], &h->fflags); FP_DIRTY(); NEXT;
L_FCVT_W_S: { FP_ON(); FP_RM(rm); RD = fpu_s_to_int(f[i->rs1], INT_W, rm, &h->fflags); FP_DIRTY(); NEXT; }
L_FCVT_WU_S: { FP_ON(); FP_RM(rm); RD = fpu_s_to_int(f[i->rs1], INT_WU, rm, &h->fflags); FP_DIRTY(); NEXT; }
L_FCVT_L_S: { FP_ON(); FP_RM(rm); RD = fpu_s_to_int(f[i->rs1], INT_L, rm, &h->fflags); FP_DIRTY(); NEXT; }
L_FCVT_LU_S: { FP_ON(); FP_RM(rm); RD = fpu_s_to_int(f[i->rs1], INT_LU, rm, &h->fflags); FP_DIRTY(); NEXT; }
L_FCVT_W_D: { FP_ON(); FP_RM(rm); RD = fpu_d_to_int(f[i->rs1], INT_W, rm, &h->fflags); FP_DIRTY(); NEXT; }
L_FCVT_WU_D: { FP_ON(); FP_RM(rm); RD = fpu_d_to_int(f[i->rs1], INT_WU, rm, &h->fflags); FP_DIRTY(); NEXT; }
L_FCVT_L_D: { FP_ON(); FP_RM(rm); RD = fpu_d_to_int(f[i->rs1], INT_L, rm, &h->fflags); FP_DIRTY(); NEXT; }
L_FCVT_LU_D: { FP_ON(); FP_RM(rm); RD = fpu_d_to_int(f[i->rs1], INT_LU, rm, &h->fflags); FP_DIRTY(); NEXT; }
L_FCVT_S_W: FP_OP2(fpu_int_to_s(RS1, INT_W, rm_, &h->fflags));
L_FCVT_S_WU: FP_OP2(fpu_int_to_s(RS1, INT_WU, rm_, &h->fflags));
L_FCVT_S_L: FP_OP2(fpu_int_to_s(RS1, INT_L, rm_, &h->fflags));
L_FCVT_S_LU: FP_OP2(fpu_int_to_s(RS1, INT_LU, rm_, &h->fflags));
L_FCVT_D_W: FP_OP2(fpu_int_to_d(RS1, INT_W, rm_, &h->fflags));
L_FCVT_D_WU: FP_OP2(fpu_int_to_d(RS1, INT_WU, rm_, &h->fflags));
L_FCVT_D_L: FP_OP2(fpu_int_to_d(RS1, INT_L, rm_, &h->fflags));
L_FCVT_D_LU: FP_OP2(fpu_int_to_d(RS1, INT_LU, rm_, &h->fflags));
L_FCVT_S_D: FP_OP2(fpu_d_to_s(f[i->rs1], rm_, &h->fflags));
L_FCVT_D_S: FP_OP2(((void)rm_, fpu_s_to_d(f[i->rs1], &h->fflags)));
L_FMV_X_W: FP_XOP((uint64_t)sx32(f[i->rs1]));
L_FMV_X_D: FP_XOP(f[i->rs1]);
L_FMV_W_X: FP_ON(); f[i->rd] = fpu_box_s((uint32_t)RS1); FP_DIRTY(); NEXT;
L_FMV_D_X: FP_ON(); f[i->rd] = RS1; FP_DIRTY(); NEXT;
L_FEQ_S: FP_XOP_FLAGS(fpu_cmp_s(f[i->rs1], f[i->rs2], CMP_EQ, &h->fflags));
L_FLT_S: FP_XOP_FLAGS(fpu_cmp_s(f[i->rs1], f[i->rs2], CMP_LT, &h->fflags));
L_FLE_S: FP_XOP_FLAGS(fpu_cmp_s(f[i->rs1], f[i->rs2], CMP_LE, &h->fflags));
L_FEQ_D: FP_XOP_FLAGS(fpu_cmp_d(f[i->rs1], f[i->rs2], CMP_EQ, &h->fflags));
L_FLT_D: FP_XOP_FLAGS(fpu_cmp_d(f[i->rs1], f[i->rs2], CMP_LT, &h->fflags));
L_FLE_D: FP_XOP_FLAGS(fpu_cmp_d(f[i->rs1], f[i->rs2], CMP_LE, &h->fflags));
L_FCLASS_S: FP_XOP(fpu_class_s(f[i->rs1]));
L_FCLASS_D: FP_XOP(fpu_class_d(f[i->rs1]));

	/* Zba */
L_SH1ADD: RD = (RS1 << 1) + RS2; NEXT;
L_SH2ADD: RD = (RS1 << 2) + RS2; NEXT;
L_SH3ADD: RD = (RS1 << 3) + RS2; NEXT;
L_ADD_UW: RD = (uint64_t)(uint32_t)RS1 + RS2; NEXT;
L_SH1ADD_UW: RD = ((uint64_t)(uint32_t)RS1 << 1) + RS2; NEXT;
L_SH2ADD_UW: RD = ((uint64_t)(uint32_t)RS1 << 2) + RS2; NEXT;
L_SH3ADD_UW: RD = ((uint64_t)(uint32_t)RS1 << 3) + RS2; NEXT;
L_SLLI_UW: RD = (uint64_t)(uint32_t)RS1 << (i->imm & 63); NEXT;

	/* Zbb */
L_ANDN: RD = RS1 & ~RS2; NEXT;
L_ORN: RD = RS1 | ~RS2; NEXT;
L_XNOR: RD = ~(RS1 ^ RS2); NEXT;
L_CLZ: RD = clz64(RS1); NEXT;
L_CTZ: RD = ctz64(RS1); NEXT;
L_CPOP: RD = (uint64_t)__builtin_popcountll(RS1); NEXT;
L_CLZW: RD = (uint32_t)RS1 ? (uint64_t)__builtin_clz((uint32_t)RS1) : 32; NEXT;
L_CTZW: RD = (uint32_t)RS1 ? (uint64_t)__builtin_ctz((uint32_t)RS1) : 32; NEXT;
L_CPOPW: RD = (uint64_t)__builtin_popcount((uint32_t)RS1); NEXT;
L_MAX: RD = (int64_t)RS1 > (int64_t)RS2 ? RS1 : RS2; NEXT;
L_MAXU: RD = RS1 > RS2 ? RS1 : RS2; NEXT;
L_MIN: RD = (int64_t)RS1 < (int64_t)RS2 ? RS1 : RS2; NEXT;
L_MINU: RD = RS1 < RS2 ? RS1 : RS2; NEXT;
L_SEXT_B: RD = (int64_t)(int8_t)RS1; NEXT;
L_SEXT_H: RD = (int64_t)(int16_t)RS1; NEXT;
L_ZEXT_H: RD = (uint16_t)RS1; NEXT;
L_ROL: RD = rol64(RS1, RS2); NEXT;
L_ROR: RD = ror64(RS1, RS2); NEXT;
L_RORI: RD = ror64(RS1, i->imm); NEXT;
L_ROLW: RD = sx32(rol32((uint32_t)RS1, RS2)); NEXT;
L_RORW: RD = sx32(ror32((uint32_t)RS1, RS2)); NEXT;
L_RORIW: RD = sx32(ror32((uint32_t)RS1, i->imm)); NEXT;
L_ORC_B: RD = orc_b(RS1); NEXT;
L_REV8: RD = __builtin_bswap64(RS1); NEXT;

	/* Zbs */
L_BCLR: RD = RS1 & ~(1ull << (RS2 & 63)); NEXT;
L_BCLRI: RD = RS1 & ~(1ull << (i->imm & 63)); NEXT;
L_BEXT: RD = (RS1 >> (RS2 & 63)) & 1; NEXT;
L_BEXTI: RD = (RS1 >> (i->imm & 63)) & 1; NEXT;
L_BINV: RD = RS1 ^ (1ull << (RS2 & 63)); NEXT;
L_BINVI: RD = RS1 ^ (1ull << (i->imm & 63)); NEXT;
L_BSET: RD = RS1 | (1ull << (RS2 & 63)); NEXT;
L_BSETI: RD = RS1 | (1ull << (i->imm & 63)); NEXT;
L_CBO_ZERO: {
	if (!cbo_zero_enabled(h))
		ILLEGAL();
	int r_ = cbo_zero(h, RS1);
	if (r_)
		TRAP(r_ - 1, RS1);
	NEXT;
}
}

void hart_run(struct hart *h, struct hart_exit *ex)
{
	if (unlikely(h->in_wfi)) {
		/* Back from WFI (block_cache_idle). */
		h->woke_ns = clock_monotonic_ns();
		h->slept_ns += h->woke_ns - h->slept_at_ns;
		h->in_wfi = false;
	}
	run(h, ex, NULL);
}

void exec_block(struct hart *h, struct block *b, struct hart_exit *ex)
{
	run(h, ex, b);
}

/*
 * Inline x86-64 code for the common F and D instructions (SSE2 scalar,
 * FMA3 when the host has it), hooked from translate.c's emit_insn.
 *
 * Exactness comes from the same argument as fpu.c's fast path: the inline
 * code only finishes an instruction when it can prove the RISC-V result and
 * flags (unprivileged spec, chapters "F" and "D") are what x86 produced
 * without reading MXCSR; every other case jumps to an out-of-line call of
 * jit_insn_helper (fpu.c, exactly what the executor runs), before anything
 * was written. The proofs:
 *  - arithmetic rounds as RISC-V only in RNE (MXCSR holds the default
 *    0x1f80 while translated code runs: fpu.c's contract), so an
 *    instruction is inline only with rm RNE, or DYN when frm is RNE;
 *  - NX: an inexact result needs no flag update when fflags.NX is already
 *    set (the usual state of an FP program); otherwise the helper runs;
 *  - a finite result of add/sub/mul/div/sqrt/fma comes only from finite
 *    operands, which raise neither NV nor DZ; OF gives an infinity and UF
 *    needs a result below 2^emin, so a result whose exponent field lies in
 *    [2, max-1] raised nothing but NX. Sums of finite values never
 *    underflow inexactly, so add and sub need only "not Inf/NaN". Every
 *    other result (NaN: canonicalised by the helper; Inf; zero; tiny) goes
 *    to the helper;
 *  - ordered compares (UCOMISD without PF) raise nothing in RISC-V;
 *    unordered ones go to the helper, which knows FEQ is quiet and FLT/FLE
 *    signalling;
 *  - single inputs must be NaN-boxed (D: "NaN Boxing of Narrower Values"):
 *    an unboxed one goes to the helper, which reads it as the canonical NaN.
 * sstatus.FS is checked once per block (a bail to the executor, which
 * raises the illegal-instruction trap, when Off) and set Dirty once per
 * block after the first instruction that dirties it, as exec.c's FP_ON
 * and FP_DIRTY do per instruction.
 *
 * Guest FP registers stay in h->f and are used as memory operands; integer
 * registers go through translate.h's accessors. Scratch: rax, rcx, rdx,
 * xmm0, xmm1 (nothing lives in XMM registers across instructions).
 */
#include "engine/jit/translate.h"

#include "engine/jit/regs.h"

#define FOFF(r) (HOFF(f) + 8 * (int32_t)(r))
#define XMM0 0
#define XMM1 1

static struct x86_mem fmem(unsigned r, int32_t add) { return hmem(FOFF(r) + add); }

static const uint64_t BOX = 0xffffffff00000000ull;

/* A jump to s from the fast path. */
static void to_slow(struct tr *t, struct slow *s, enum x86_cc cc)
{
	uint8_t *f = x86_jcc32(&t->b, cc);
	if (!s->jcc) {
		s->jcc = f;
		return;
	}
	for (unsigned k = 0; k < sizeof(s->more) / sizeof(s->more[0]); k++)
		if (!s->more[k]) {
			s->more[k] = f;
			return;
		}
	t->b.overflow = true; /* cannot happen: callers use at most 7 */
}

/* exec.c's FP_ON: once per block. */
static void fs_on(struct tr *t, unsigned idx)
{
	if (t->fs_on)
		return;
	struct slow *s = tr_slow_bail(t, idx);
	x86_test_mi8(&t->b, hmem(HOFF(status) + 1), (uint8_t)(SSTATUS_FS >> 8));
	to_slow(t, s, CC_E);
	t->fs_on = true;
}

/* exec.c's FP_DIRTY: once per block, after the instruction. */
static void fs_dirty(struct tr *t)
{
	if (t->fs_dirty)
		return;
	x86_alu_mi(&t->b, ALU_OR, hmem(HOFF(status)), (int32_t)SSTATUS_FS, 4);
	t->fs_dirty = true;
}

/* Rounding: RNE static, or DYN with frm RNE (else the helper: another
 * mode, or a reserved frm, which it refuses and the executor traps). */
static bool rm_rne(const struct insn *i) { return i->rm == 0 || i->rm == 7; }

static void check_rne(struct tr *t, const struct insn *i, struct slow *s)
{
	if (i->rm == 7) {
		x86_alu_mi(&t->b, ALU_CMP, hmem(HOFF(frm)), 0, 4);
		to_slow(t, s, CC_NE);
	}
}

/* A valid rounding mode (for exact operations whose result does not
 * depend on it): static 0-4, or DYN with frm 0-4. */
static bool rm_valid(const struct insn *i) { return i->rm <= 4 || i->rm == 7; }

static void check_valid(struct tr *t, const struct insn *i, struct slow *s)
{
	if (i->rm == 7) {
		x86_alu_mi(&t->b, ALU_CMP, hmem(HOFF(frm)), 4, 4);
		to_slow(t, s, CC_A);
	}
}

/* fflags.NX already set, else the helper. */
static void check_nx(struct tr *t, struct slow *s)
{
	x86_test_mi8(&t->b, hmem(HOFF(fflags)), 1);
	to_slow(t, s, CC_E);
}

/* All of the single inputs NaN-boxed (upper words all ones); those known
 * to be (t->f_boxed) need no check. */
static void check_boxed(struct tr *t, struct slow *s, const unsigned *regs, unsigned n)
{
	bool first = true;
	for (unsigned k = 0; k < n; k++) {
		if (t->f_boxed & (1u << regs[k]))
			continue;
		if (first)
			x86_load(&t->b, RAX, fmem(regs[k], 4), 4, false);
		else
			x86_alu_rm32(&t->b, ALU_AND, RAX, fmem(regs[k], 4));
		first = false;
	}
	if (first)
		return;
	x86_alu_ri32(&t->b, ALU_CMP, RAX, -1);
	to_slow(t, s, CC_NE);
}

/* The exponent field of the result in rax (double, or single in eax) into
 * ecx; then to the helper unless it is below all ones (finite only) or,
 * with `normal`, within [2, all ones - 1]. */
static void check_result(struct tr *t, struct slow *s, bool dbl, bool normal)
{
	unsigned top = dbl ? 0x7ff : 0xff;
	if (dbl) {
		x86_lea(&t->b, RCX, x86_mem_idx(RAX, RAX, 1, 0));
		x86_shift_ri(&t->b, SH_SHR, RCX, 53, false);
	} else {
		x86_lea(&t->b, RCX, x86_mem_idx(RAX, RAX, 1, 0));
		x86_shift_ri(&t->b, SH_SHR, RCX, 24, true);
	}
	if (normal) {
		x86_alu_ri32(&t->b, ALU_SUB, RCX, 2);
		x86_alu_ri32(&t->b, ALU_CMP, RCX, (int32_t)top - 3);
		to_slow(t, s, CC_A);
	} else {
		x86_alu_ri32(&t->b, ALU_CMP, RCX, (int32_t)top);
		to_slow(t, s, CC_E);
	}
}

/* rcx = the bits of x but the sign, doubled (ZF: x is ±0). */
static void zero_test(struct tr *t, struct x86_mem m_or_none, bool from_rax, bool dbl)
{
	if (from_rax)
		x86_mov_rr(&t->b, RCX, RAX);
	else if (dbl)
		x86_mov_rm(&t->b, RCX, m_or_none);
	else
		x86_load(&t->b, RCX, m_or_none, 4, false);
	if (dbl)
		x86_alu_rr(&t->b, ALU_ADD, RCX, RCX);
	else
		x86_alu_rr32(&t->b, ALU_ADD, RCX, RCX);
}

/* A product in rax: a normal result (check_result), or ±0 when an operand
 * is ±0: that product is exact and raises nothing (a zero of two non-zero
 * operands underflowed: UF and NX, the helper), and x86 gives it the sign
 * RISC-V does (the operands' signs' xor). Code whose products are often
 * zero (sums over sparse counts, with fflags.NX set) stays inline. */
static void check_product(struct tr *t, struct slow *s, const struct insn *i, bool dbl)
{
	unsigned top = dbl ? 0x7ff : 0xff;
	x86_lea(&t->b, RCX, x86_mem_idx(RAX, RAX, 1, 0));
	x86_shift_ri(&t->b, SH_SHR, RCX, dbl ? 53 : 24, !dbl);
	x86_alu_ri32(&t->b, ALU_SUB, RCX, 2);
	x86_alu_ri32(&t->b, ALU_CMP, RCX, (int32_t)top - 3);
	uint8_t *normal = x86_jcc32(&t->b, CC_BE);
	zero_test(t, fmem(0, 0), true, dbl);
	to_slow(t, s, CC_NE);
	zero_test(t, fmem(i->rs1, 0), false, dbl);
	uint8_t *zero_a = x86_jcc32(&t->b, CC_E);
	zero_test(t, fmem(i->rs2, 0), false, dbl);
	to_slow(t, s, CC_NE);
	if (normal)
		x86_patch_rel32(normal, t->b.p);
	if (zero_a)
		x86_patch_rel32(zero_a, t->b.p);
}

/* f[rd] = the single in eax (upper rax zero), NaN-boxed. */
static void store_single(struct tr *t, unsigned rd)
{
	x86_mov_ri(&t->b, RDX, BOX);
	x86_alu_rr(&t->b, ALU_OR, RAX, RDX);
	x86_mov_mr(&t->b, fmem(rd, 0), RAX, 8);
}

/* movsd/movss xmm, [f]; movq/movd rax, xmm0. */
static void load_x(struct tr *t, int xmm, unsigned r, bool dbl)
{
	x86_sse_rm(&t->b, dbl ? 0xf2 : 0xf3, false, 0x10, xmm, fmem(r, 0));
}

static void xmm0_to_rax(struct tr *t, bool dbl)
{
	x86_sse_rr(&t->b, 0x66, dbl, 0x7e, XMM0, RAX); /* movq rax, xmm0 / movd eax, xmm0 */
}

/* The end of an instruction whose result is f[rd]: the fast path stores
 * it (rax), the helper has; both go on here. */
static void finish_f(struct tr *t, struct slow *s, const struct insn *i, bool dbl)
{
	if (dbl)
		x86_mov_mr(&t->b, fmem(i->rd, 0), RAX, 8);
	else
		store_single(t, i->rd);
	s->resume = t->b.p;
	fs_dirty(t);
}

/* The end of an instruction whose result is x[rd] (rax on both paths). */
static void finish_x(struct tr *t, struct slow *s, const struct insn *i, bool dirty)
{
	s->writes_x = true;
	s->resume = t->b.p;
	tr_set_rd(t, i->rd, RAX);
	if (dirty)
		fs_dirty(t);
}

/* ---- instruction groups ------------------------------------------------ */

/* FADD/FSUB/FMUL/FDIV/FSQRT: SSE opcode 58/5C/59/5E/51. */
static bool arith(struct tr *t, const struct insn *i, unsigned idx, uint8_t op, bool dbl, bool sqrt)
{
	if (!rm_rne(i))
		return false;
	fs_on(t, idx);
	struct slow *s = tr_slow_helper(t, i, idx);
	check_rne(t, i, s);
	check_nx(t, s);
	if (!dbl) {
		unsigned regs[2] = { i->rs1, i->rs2 };
		check_boxed(t, s, regs, sqrt ? 1 : 2);
	}
	uint8_t pre = dbl ? 0xf2 : 0xf3;
	if (sqrt) {
		x86_sse_rm(&t->b, pre, false, op, XMM0, fmem(i->rs1, 0));
	} else {
		load_x(t, XMM0, i->rs1, dbl);
		x86_sse_rm(&t->b, pre, false, op, XMM0, fmem(i->rs2, 0));
	}
	xmm0_to_rax(t, dbl);
	/* add, sub, sqrt: finite is enough; mul, div: a normal result, and
	 * for mul also a zero product of a zero operand. */
	if (op == 0x59)
		check_product(t, s, i, dbl);
	else
		check_result(t, s, dbl, op == 0x5e);
	finish_f(t, s, i, dbl);
	return true;
}

/* FMADD/FMSUB/FNMSUB/FNMADD as VFMADD/VFMSUB/VFNMADD/VFNMSUB231: one
 * rounding, like RISC-V's; needs FMA3 (else fpu.c's software fma). */
static bool fused(struct tr *t, const struct insn *i, unsigned idx, uint8_t op, bool dbl)
{
	if (!t->j->fma || !rm_rne(i))
		return false;
	fs_on(t, idx);
	struct slow *s = tr_slow_helper(t, i, idx);
	check_rne(t, i, s);
	check_nx(t, s);
	if (!dbl) {
		unsigned regs[3] = { i->rs1, i->rs2, i->rs3 };
		check_boxed(t, s, regs, 3);
	}
	load_x(t, XMM0, i->rs3, dbl);
	load_x(t, XMM1, i->rs1, dbl);
	x86_fma_rm(&t->b, op, dbl, XMM0, XMM1, fmem(i->rs2, 0)); /* xmm0 = ±(xmm1 * rs2) ± xmm0 */
	xmm0_to_rax(t, dbl);
	check_result(t, s, dbl, true);
	finish_f(t, s, i, dbl);
	return true;
}

/* FEQ/FLT/FLE: UCOMIS[SD]; ZF, CF as for unsigned integers when ordered. */
static bool compare(struct tr *t, const struct insn *i, unsigned idx, enum x86_cc cc, bool dbl)
{
	fs_on(t, idx);
	struct slow *s = tr_slow_helper(t, i, idx);
	if (!dbl) {
		unsigned regs[2] = { i->rs1, i->rs2 };
		check_boxed(t, s, regs, 2);
	}
	load_x(t, XMM0, i->rs1, dbl);
	x86_sse_rm(&t->b, dbl ? 0x66 : 0, false, 0x2e, XMM0, fmem(i->rs2, 0));
	to_slow(t, s, CC_P);
	x86_setcc(&t->b, cc, RAX);
	x86_movzx_rr(&t->b, RAX, RAX, 1);
	finish_x(t, s, i, true);
	return true;
}

/* FMIN/FMAX for ordered operands: the smaller/larger; for equal ones
 * (only +0 and -0 differ) the OR (min: -0) or AND (max: +0) of the bits,
 * which also keeps a single's NaN box. */
static bool minmax(struct tr *t, const struct insn *i, unsigned idx, bool max, bool dbl)
{
	fs_on(t, idx);
	struct slow *s = tr_slow_helper(t, i, idx);
	if (!dbl) {
		unsigned regs[2] = { i->rs1, i->rs2 };
		check_boxed(t, s, regs, 2);
	}
	x86_mov_rm(&t->b, RAX, fmem(i->rs1, 0));
	x86_mov_rm(&t->b, RCX, fmem(i->rs2, 0));
	x86_mov_rr(&t->b, RDX, RAX);
	x86_alu_rr(&t->b, max ? ALU_AND : ALU_OR, RDX, RCX);
	load_x(t, XMM0, i->rs1, dbl);
	x86_sse_rm(&t->b, dbl ? 0x66 : 0, false, 0x2e, XMM0, fmem(i->rs2, 0));
	to_slow(t, s, CC_P);
	x86_cmov(&t->b, max ? CC_B : CC_A, RAX, RCX);
	x86_cmov(&t->b, CC_E, RAX, RDX);
	x86_mov_mr(&t->b, fmem(i->rd, 0), RAX, 8);
	s->resume = t->b.p;
	fs_dirty(t);
	return true;
}

/* FSGNJ/FSGNJN/FSGNJX (kind 0, 1, 2): no flags, no rounding. */
static bool sgnj(struct tr *t, const struct insn *i, unsigned idx, int kind, bool dbl)
{
	fs_on(t, idx);
	struct slow *s = NULL;
	if (!dbl) {
		s = tr_slow_helper(t, i, idx);
		unsigned regs[2] = { i->rs1, i->rs2 };
		check_boxed(t, s, regs, 2);
	}
	unsigned sb = dbl ? 63 : 31;
	x86_mov_rm(&t->b, RAX, fmem(i->rs1, 0));
	x86_mov_rm(&t->b, RCX, fmem(i->rs2, 0));
	if (kind == 1)
		x86_f7(&t->b, 2, RCX, false); /* not */
	else if (kind == 2)
		x86_alu_rr(&t->b, ALU_XOR, RCX, RAX);
	x86_bt_ri(&t->b, 6, RAX, sb); /* btr: rs1 without its sign */
	x86_shift_ri(&t->b, SH_SHR, RCX, sb, !dbl);
	x86_shift_ri(&t->b, SH_SHL, RCX, sb, !dbl);
	x86_alu_rr(&t->b, ALU_OR, RAX, RCX);
	x86_mov_mr(&t->b, fmem(i->rd, 0), RAX, 8);
	if (s)
		s->resume = t->b.p;
	fs_dirty(t);
	return true;
}

/* FMV.X.W/D, FMV.W/D.X: moves (FMV.X.* leave FS alone, as exec.c). */
static bool fmv(struct tr *t, const struct insn *i, unsigned idx, bool to_x, bool dbl)
{
	fs_on(t, idx);
	if (to_x) {
		x86_load(&t->b, RAX, fmem(i->rs1, 0), dbl ? 8 : 4, true);
		tr_set_rd(t, i->rd, RAX);
		return true;
	}
	tr_load(t, RAX, tr_src(t, i->rs1));
	if (dbl) {
		x86_mov_mr(&t->b, fmem(i->rd, 0), RAX, 8);
	} else {
		x86_mov_rr32(&t->b, RAX, RAX);
		store_single(t, i->rd);
	}
	fs_dirty(t);
	return true;
}

/* FCVT.D.S (exact; NaN to the helper) and FCVT.S.D (RNE). */
static bool cvt_fmt(struct tr *t, const struct insn *i, unsigned idx, bool to_d)
{
	if (to_d ? !rm_valid(i) : !rm_rne(i))
		return false;
	fs_on(t, idx);
	struct slow *s = tr_slow_helper(t, i, idx);
	if (to_d) {
		check_valid(t, i, s);
		unsigned regs[1] = { i->rs1 };
		check_boxed(t, s, regs, 1);
		x86_sse_rm(&t->b, 0xf3, false, 0x5a, XMM0, fmem(i->rs1, 0)); /* cvtss2sd */
	} else {
		check_rne(t, i, s);
		check_nx(t, s);
		x86_sse_rm(&t->b, 0xf2, false, 0x5a, XMM0, fmem(i->rs1, 0)); /* cvtsd2ss */
	}
	xmm0_to_rax(t, to_d);
	check_result(t, s, to_d, !to_d);
	finish_f(t, s, i, to_d);
	return true;
}

/* FCVT.{S,D}.{W,WU,L,LU}: CVTSI2S[SD] from 64 bits (W, WU extended
 * first; LU only below 2^63). Exact when converting back gives the
 * integer (then the rounding mode does not matter); otherwise RNE and NX
 * already set, else the helper. */
static bool cvt_from_int(struct tr *t, const struct insn *i, unsigned idx, int from, bool dbl)
{
	if (!rm_valid(i))
		return false;
	fs_on(t, idx);
	struct slow *s = tr_slow_helper(t, i, idx);
	tr_load(t, RCX, tr_src(t, i->rs1)); /* also the helper's a */
	check_valid(t, i, s);
	if (from == 0)
		x86_movsxd_rr(&t->b, RCX, RCX);
	else if (from == 1)
		x86_mov_rr32(&t->b, RCX, RCX);
	else if (from == 3) {
		x86_test_rr(&t->b, RCX, RCX);
		to_slow(t, s, CC_S);
	}
	uint8_t pre = dbl ? 0xf2 : 0xf3;
	x86_sse_rr(&t->b, 0x66, false, 0xef, XMM0, XMM0);       /* pxor: no false dependency */
	x86_sse_rr(&t->b, pre, true, 0x2a, XMM0, RCX);          /* cvtsi2s[sd] xmm0, rcx */
	if (!(dbl && from <= 1)) {
		/* Every 32-bit integer is exact as a double; else check. */
		x86_sse_rr(&t->b, pre, true, 0x2c, RAX, XMM0);  /* cvtts[sd]2si rax, xmm0 */
		x86_alu_rr(&t->b, ALU_CMP, RAX, RCX);
		uint8_t *exact = x86_jcc32(&t->b, CC_E);
		if (i->rm == 7) {
			x86_alu_mi(&t->b, ALU_CMP, hmem(HOFF(frm)), 0, 4);
			to_slow(t, s, CC_NE);
		} else if (i->rm != 0) {
			to_slow(t, s, CC_NE); /* flags still from cmp: not equal */
		}
		check_nx(t, s);
		if (exact)
			x86_patch_rel32(exact, t->b.p);
	}
	xmm0_to_rax(t, dbl);
	finish_f(t, s, i, dbl);
	return true;
}

/* FCVT.{W,WU,L,LU}.{S,D}: CVTS[SD]2SI (RNE through MXCSR) or CVTTS[SD]2SI
 * (RTZ) to 64 bits, then a range check (x86 gives 2^63 for NaN and out of
 * range, where RISC-V saturates and raises NV: the helper); inexact needs
 * NX already set. */
static bool cvt_to_int(struct tr *t, const struct insn *i, unsigned idx, int to, bool dbl)
{
	if (i->rm != 0 && i->rm != 1 && i->rm != 7)
		return false;
	fs_on(t, idx);
	struct slow *s = tr_slow_helper(t, i, idx);
	check_rne(t, i, s);
	check_nx(t, s);
	if (!dbl) {
		unsigned regs[1] = { i->rs1 };
		check_boxed(t, s, regs, 1);
	}
	x86_sse_rm(&t->b, dbl ? 0xf2 : 0xf3, true, i->rm == 1 ? 0x2c : 0x2d, RAX, fmem(i->rs1, 0));
	switch (to) {
	case 0: /* W: must fit 32 bits signed */
		x86_movsxd_rr(&t->b, RCX, RAX);
		x86_alu_rr(&t->b, ALU_CMP, RCX, RAX);
		to_slow(t, s, CC_NE);
		break;
	case 1: /* WU: [0, 2^32), then sign-extended as RISC-V wants */
		x86_mov_rr32(&t->b, RCX, RAX);
		x86_alu_rr(&t->b, ALU_CMP, RCX, RAX);
		to_slow(t, s, CC_NE);
		x86_movsxd_rr(&t->b, RAX, RAX);
		break;
	case 2: /* L: not the 2^63 marker (x - 1 overflows only for it) */
		x86_alu_ri(&t->b, ALU_CMP, RAX, 1);
		to_slow(t, s, CC_O);
		break;
	default: /* LU: [0, 2^63) */
		x86_test_rr(&t->b, RAX, RAX);
		to_slow(t, s, CC_S);
		break;
	}
	finish_x(t, s, i, true);
	return true;
}

/* FLW/FLD/FSW/FSD: translate.c's TLB probe and slow paths, as integer
 * loads and stores. */
static bool mem(struct tr *t, const struct insn *i, unsigned idx, unsigned size, bool store)
{
	fs_on(t, idx);
	tr_va(t, i);
	if (store) {
		struct opnd v = { .kind = O_MEM, .off = FOFF(i->rs2) };
		struct slow *s = tr_probe(t, size, true, idx, v);
		if (!t->j->lockstep) {
			x86_mov_rm(&t->b, RCX, fmem(i->rs2, 0));
			x86_mov_mr(&t->b, x86_mem(RAX, 0), RCX, size);
		}
		s->resume = t->b.p;
		return true;
	}
	struct slow *s = tr_probe(t, size, false, idx, (struct opnd){ 0 });
	s->resume = t->b.p;
	x86_load(&t->b, RAX, x86_mem(RAX, 0), size, false);
	if (size == 8)
		x86_mov_mr(&t->b, fmem(i->rd, 0), RAX, 8);
	else
		store_single(t, i->rd);
	fs_dirty(t);
	return true;
}

/* Which f register instruction op writes: 1 a single (always NaN-boxed,
 * whichever path computes it), 2 a double (any bits), 0 none. */
static int writes_f(enum op op)
{
	switch (op) {
	case OP_FLW: case OP_FMV_W_X: case OP_FADD_S: case OP_FSUB_S: case OP_FMUL_S:
	case OP_FDIV_S: case OP_FSQRT_S: case OP_FMADD_S: case OP_FMSUB_S: case OP_FNMSUB_S:
	case OP_FNMADD_S: case OP_FSGNJ_S: case OP_FSGNJN_S: case OP_FSGNJX_S: case OP_FMIN_S:
	case OP_FMAX_S: case OP_FCVT_S_W: case OP_FCVT_S_WU: case OP_FCVT_S_L: case OP_FCVT_S_LU:
	case OP_FCVT_S_D:
		return 1;
	case OP_FLD: case OP_FMV_D_X: case OP_FADD_D: case OP_FSUB_D: case OP_FMUL_D:
	case OP_FDIV_D: case OP_FSQRT_D: case OP_FMADD_D: case OP_FMSUB_D: case OP_FNMSUB_D:
	case OP_FNMADD_D: case OP_FSGNJ_D: case OP_FSGNJN_D: case OP_FSGNJX_D: case OP_FMIN_D:
	case OP_FMAX_D: case OP_FCVT_D_W: case OP_FCVT_D_WU: case OP_FCVT_D_L: case OP_FCVT_D_LU:
	case OP_FCVT_D_S:
		return 2;
	default:
		return 0;
	}
}

static bool translate(struct tr *t, const struct insn *i, unsigned idx);

/* Called for every F/D instruction of a block in order (translate.c's
 * fallbacks included), so t->f_boxed follows what the block writes. */
bool tr_fp(struct tr *t, const struct insn *i, unsigned idx)
{
	bool done = translate(t, i, idx);
	int w = writes_f((enum op)i->op);
	if (w == 1)
		t->f_boxed |= 1u << i->rd;
	else if (w == 2)
		t->f_boxed &= ~(1u << i->rd);
	return done;
}

static bool translate(struct tr *t, const struct insn *i, unsigned idx)
{
	switch ((enum op)i->op) {
	case OP_FLW: return mem(t, i, idx, 4, false);
	case OP_FLD: return mem(t, i, idx, 8, false);
	case OP_FSW: return mem(t, i, idx, 4, true);
	case OP_FSD: return mem(t, i, idx, 8, true);
	case OP_FADD_S: return arith(t, i, idx, 0x58, false, false);
	case OP_FSUB_S: return arith(t, i, idx, 0x5c, false, false);
	case OP_FMUL_S: return arith(t, i, idx, 0x59, false, false);
	case OP_FDIV_S: return arith(t, i, idx, 0x5e, false, false);
	case OP_FSQRT_S: return arith(t, i, idx, 0x51, false, true);
	case OP_FADD_D: return arith(t, i, idx, 0x58, true, false);
	case OP_FSUB_D: return arith(t, i, idx, 0x5c, true, false);
	case OP_FMUL_D: return arith(t, i, idx, 0x59, true, false);
	case OP_FDIV_D: return arith(t, i, idx, 0x5e, true, false);
	case OP_FSQRT_D: return arith(t, i, idx, 0x51, true, true);
	case OP_FMADD_S: return fused(t, i, idx, 0xb9, false);
	case OP_FMSUB_S: return fused(t, i, idx, 0xbb, false);
	case OP_FNMSUB_S: return fused(t, i, idx, 0xbd, false);
	case OP_FNMADD_S: return fused(t, i, idx, 0xbf, false);
	case OP_FMADD_D: return fused(t, i, idx, 0xb9, true);
	case OP_FMSUB_D: return fused(t, i, idx, 0xbb, true);
	case OP_FNMSUB_D: return fused(t, i, idx, 0xbd, true);
	case OP_FNMADD_D: return fused(t, i, idx, 0xbf, true);
	case OP_FEQ_S: return compare(t, i, idx, CC_E, false);
	case OP_FLT_S: return compare(t, i, idx, CC_B, false);
	case OP_FLE_S: return compare(t, i, idx, CC_BE, false);
	case OP_FEQ_D: return compare(t, i, idx, CC_E, true);
	case OP_FLT_D: return compare(t, i, idx, CC_B, true);
	case OP_FLE_D: return compare(t, i, idx, CC_BE, true);
	case OP_FMIN_S: return minmax(t, i, idx, false, false);
	case OP_FMAX_S: return minmax(t, i, idx, true, false);
	case OP_FMIN_D: return minmax(t, i, idx, false, true);
	case OP_FMAX_D: return minmax(t, i, idx, true, true);
	case OP_FSGNJ_S: return sgnj(t, i, idx, 0, false);
	case OP_FSGNJN_S: return sgnj(t, i, idx, 1, false);
	case OP_FSGNJX_S: return sgnj(t, i, idx, 2, false);
	case OP_FSGNJ_D: return sgnj(t, i, idx, 0, true);
	case OP_FSGNJN_D: return sgnj(t, i, idx, 1, true);
	case OP_FSGNJX_D: return sgnj(t, i, idx, 2, true);
	case OP_FMV_X_W: return fmv(t, i, idx, true, false);
	case OP_FMV_X_D: return fmv(t, i, idx, true, true);
	case OP_FMV_W_X: return fmv(t, i, idx, false, false);
	case OP_FMV_D_X: return fmv(t, i, idx, false, true);
	case OP_FCVT_D_S: return cvt_fmt(t, i, idx, true);
	case OP_FCVT_S_D: return cvt_fmt(t, i, idx, false);
	case OP_FCVT_S_W: return cvt_from_int(t, i, idx, 0, false);
	case OP_FCVT_S_WU: return cvt_from_int(t, i, idx, 1, false);
	case OP_FCVT_S_L: return cvt_from_int(t, i, idx, 2, false);
	case OP_FCVT_S_LU: return cvt_from_int(t, i, idx, 3, false);
	case OP_FCVT_D_W: return cvt_from_int(t, i, idx, 0, true);
	case OP_FCVT_D_WU: return cvt_from_int(t, i, idx, 1, true);
	case OP_FCVT_D_L: return cvt_from_int(t, i, idx, 2, true);
	case OP_FCVT_D_LU: return cvt_from_int(t, i, idx, 3, true);
	case OP_FCVT_W_S: return cvt_to_int(t, i, idx, 0, false);
	case OP_FCVT_WU_S: return cvt_to_int(t, i, idx, 1, false);
	case OP_FCVT_L_S: return cvt_to_int(t, i, idx, 2, false);
	case OP_FCVT_LU_S: return cvt_to_int(t, i, idx, 3, false);
	case OP_FCVT_W_D: return cvt_to_int(t, i, idx, 0, true);
	case OP_FCVT_WU_D: return cvt_to_int(t, i, idx, 1, true);
	case OP_FCVT_L_D: return cvt_to_int(t, i, idx, 2, true);
	case OP_FCVT_LU_D: return cvt_to_int(t, i, idx, 3, true);
	default: return false;
	}
}

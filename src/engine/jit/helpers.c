/*
 * Instructions translated code runs through a call into C: the A extension
 * (AMOs with host atomic instructions, LR/SC value-based as in exec.c),
 * CBO.ZERO when its inline path misses, and F/D through fpu.c, which is
 * bit-exact with the spec (its host path is SSE, its fallback software).
 * Semantics are exec.c's, case by case.
 *
 * jit_insn_helper(h, a, b) runs h->jit_insn with a = x[rs1] and b = x[rs2]
 * (the caller's host registers hold the mapped integer registers, so they
 * are passed in); the F registers are read and written in h->f. It returns
 * 1 when done, with an integer result (if the instruction has one) in
 * h->jit_ret, or 0 with nothing changed when the executor must run the
 * instruction: an exception, MMIO, FP disabled, a reserved rounding mode.
 */
#include "engine/fpu.h"
#include "engine/jit/runtime.h"

static inline uint64_t sx32(uint64_t v) { return (uint64_t)(int64_t)(int32_t)v; }

/* An AMO: the old value to rd; `f` computes the new one (as exec.c's AMO
 * and AMO_FETCH: a CAS loop, or the host's fetch-and-op). */
static int amo(struct hart *h, const struct insn *i, uint64_t va, uint64_t src)
{
	bool w = i->op <= OP_AMOMAXU_W;
	unsigned size = w ? 4 : 8;
	void *p;
	if (amo_ptr(h, va, size, false, &p))
		return 0;
	uint64_t old;
	if (w) {
		uint32_t *a = p, s = (uint32_t)src, o = __atomic_load_n(a, __ATOMIC_RELAXED), n;
		switch (i->op) {
		case OP_AMOSWAP_W: o = __atomic_exchange_n(a, s, __ATOMIC_SEQ_CST); break;
		case OP_AMOADD_W: o = __atomic_fetch_add(a, s, __ATOMIC_SEQ_CST); break;
		case OP_AMOXOR_W: o = __atomic_fetch_xor(a, s, __ATOMIC_SEQ_CST); break;
		case OP_AMOAND_W: o = __atomic_fetch_and(a, s, __ATOMIC_SEQ_CST); break;
		case OP_AMOOR_W: o = __atomic_fetch_or(a, s, __ATOMIC_SEQ_CST); break;
		default:
			do {
				switch (i->op) {
				case OP_AMOMIN_W: n = (int32_t)o < (int32_t)s ? o : s; break;
				case OP_AMOMAX_W: n = (int32_t)o > (int32_t)s ? o : s; break;
				case OP_AMOMINU_W: n = o < s ? o : s; break;
				default: n = o > s ? o : s; break;
				}
			} while (!__atomic_compare_exchange_n(a, &o, n, true, __ATOMIC_SEQ_CST,
							      __ATOMIC_RELAXED));
		}
		old = sx32(o);
	} else {
		uint64_t *a = p, s = src, o = __atomic_load_n(a, __ATOMIC_RELAXED), n;
		switch (i->op) {
		case OP_AMOSWAP_D: o = __atomic_exchange_n(a, s, __ATOMIC_SEQ_CST); break;
		case OP_AMOADD_D: o = __atomic_fetch_add(a, s, __ATOMIC_SEQ_CST); break;
		case OP_AMOXOR_D: o = __atomic_fetch_xor(a, s, __ATOMIC_SEQ_CST); break;
		case OP_AMOAND_D: o = __atomic_fetch_and(a, s, __ATOMIC_SEQ_CST); break;
		case OP_AMOOR_D: o = __atomic_fetch_or(a, s, __ATOMIC_SEQ_CST); break;
		default:
			do {
				switch (i->op) {
				case OP_AMOMIN_D: n = (int64_t)o < (int64_t)s ? o : s; break;
				case OP_AMOMAX_D: n = (int64_t)o > (int64_t)s ? o : s; break;
				case OP_AMOMINU_D: n = o < s ? o : s; break;
				default: n = o > s ? o : s; break;
				}
			} while (!__atomic_compare_exchange_n(a, &o, n, true, __ATOMIC_SEQ_CST,
							      __ATOMIC_RELAXED));
		}
		old = o;
	}
	h->jit_ret = old;
	return 1;
}

static int lr(struct hart *h, const struct insn *i, uint64_t va)
{
	unsigned size = i->op == OP_LR_W ? 4 : 8;
	void *p;
	if (amo_ptr(h, va, size, true, &p))
		return 0;
	uint64_t v = size == 4 ? (uint64_t)__atomic_load_n((uint32_t *)p, __ATOMIC_SEQ_CST)
			       : __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST);
	h->resv_valid = true;
	h->resv_addr = va;
	h->resv_val = v;
	h->jit_ret = size == 4 ? sx32(v) : v;
	return 1;
}

static int sc(struct hart *h, const struct insn *i, uint64_t va, uint64_t src)
{
	unsigned size = i->op == OP_SC_W ? 4 : 8;
	if (!h->resv_valid || h->resv_addr != va) {
		h->resv_valid = false;
		h->jit_ret = 1;
		return 1;
	}
	void *p;
	if (amo_ptr(h, va, size, false, &p))
		return 0;
	h->resv_valid = false;
	bool ok;
	if (size == 4) {
		uint32_t expect = (uint32_t)h->resv_val;
		ok = __atomic_compare_exchange_n((uint32_t *)p, &expect, (uint32_t)src, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	} else {
		uint64_t expect = h->resv_val;
		ok = __atomic_compare_exchange_n((uint64_t *)p, &expect, src, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
	h->jit_ret = !ok;
	return 1;
}

uint64_t jit_insn_helper(struct hart *h, uint64_t a, uint64_t b)
{
	const struct insn *i = h->jit_insn;
	enum op op = (enum op)i->op;
	if (h->jit->stats)
		h->jit->helper_calls++;
	if (op >= OP_AMOSWAP_W && op <= OP_AMOMAXU_D && op != OP_LR_D && op != OP_SC_D)
		return (uint64_t)amo(h, i, a, b);
	if (op == OP_LR_W || op == OP_LR_D)
		return (uint64_t)lr(h, i, a);
	if (op == OP_SC_W || op == OP_SC_D)
		return (uint64_t)sc(h, i, a, b);
	if (op == OP_CBO_ZERO) {
		/* a: x[rs1], or the block's address (the inline path's miss);
		 * the gate and a fault are the executor's to raise. */
		if (!cbo_zero_enabled(h))
			return 0;
		return cbo_zero(h, a) == 0;
	}

	/* F and D: exec.c's FP_ON, FP_RM and FP_DIRTY. */
	if (!(h->status & SSTATUS_FS))
		return 0;
	int rm = i->rm == 7 ? (int)h->frm : i->rm;
	uint64_t *f = h->f;
	uint64_t f1 = f[i->rs1], f2 = f[i->rs2], f3 = f[i->rs3];
	uint32_t *fl = &h->fflags;
	uint64_t r;
	bool to_x = false, uses_rm = true;
	switch (op) {
	case OP_FSGNJ_S: case OP_FSGNJN_S: case OP_FSGNJX_S: case OP_FSGNJ_D: case OP_FSGNJN_D:
	case OP_FSGNJX_D: case OP_FMIN_S: case OP_FMAX_S: case OP_FMIN_D: case OP_FMAX_D:
	case OP_FMV_X_W: case OP_FMV_X_D: case OP_FMV_W_X: case OP_FMV_D_X: case OP_FEQ_S:
	case OP_FLT_S: case OP_FLE_S: case OP_FEQ_D: case OP_FLT_D: case OP_FLE_D:
	case OP_FCLASS_S: case OP_FCLASS_D:
		uses_rm = false;
		break;
	default:
		break;
	}
	if (uses_rm && rm > 4)
		return 0;
	switch (op) {
	case OP_FMADD_S: r = fpu_fma_s(f1, f2, f3, FMA_MADD, rm, fl); break;
	case OP_FMSUB_S: r = fpu_fma_s(f1, f2, f3, FMA_MSUB, rm, fl); break;
	case OP_FNMSUB_S: r = fpu_fma_s(f1, f2, f3, FMA_NMSUB, rm, fl); break;
	case OP_FNMADD_S: r = fpu_fma_s(f1, f2, f3, FMA_NMADD, rm, fl); break;
	case OP_FMADD_D: r = fpu_fma_d(f1, f2, f3, FMA_MADD, rm, fl); break;
	case OP_FMSUB_D: r = fpu_fma_d(f1, f2, f3, FMA_MSUB, rm, fl); break;
	case OP_FNMSUB_D: r = fpu_fma_d(f1, f2, f3, FMA_NMSUB, rm, fl); break;
	case OP_FNMADD_D: r = fpu_fma_d(f1, f2, f3, FMA_NMADD, rm, fl); break;
	case OP_FADD_S: r = fpu_add_s(f1, f2, rm, fl); break;
	case OP_FSUB_S: r = fpu_sub_s(f1, f2, rm, fl); break;
	case OP_FMUL_S: r = fpu_mul_s(f1, f2, rm, fl); break;
	case OP_FDIV_S: r = fpu_div_s(f1, f2, rm, fl); break;
	case OP_FSQRT_S: r = fpu_sqrt_s(f1, rm, fl); break;
	case OP_FADD_D: r = fpu_add_d(f1, f2, rm, fl); break;
	case OP_FSUB_D: r = fpu_sub_d(f1, f2, rm, fl); break;
	case OP_FMUL_D: r = fpu_mul_d(f1, f2, rm, fl); break;
	case OP_FDIV_D: r = fpu_div_d(f1, f2, rm, fl); break;
	case OP_FSQRT_D: r = fpu_sqrt_d(f1, rm, fl); break;
	case OP_FSGNJ_S: r = fpu_sgnj_s(f1, f2, 0); break;
	case OP_FSGNJN_S: r = fpu_sgnj_s(f1, f2, 1); break;
	case OP_FSGNJX_S: r = fpu_sgnj_s(f1, f2, 2); break;
	case OP_FSGNJ_D: r = fpu_sgnj_d(f1, f2, 0); break;
	case OP_FSGNJN_D: r = fpu_sgnj_d(f1, f2, 1); break;
	case OP_FSGNJX_D: r = fpu_sgnj_d(f1, f2, 2); break;
	case OP_FMIN_S: r = fpu_min_s(f1, f2, fl); break;
	case OP_FMAX_S: r = fpu_max_s(f1, f2, fl); break;
	case OP_FMIN_D: r = fpu_min_d(f1, f2, fl); break;
	case OP_FMAX_D: r = fpu_max_d(f1, f2, fl); break;
	case OP_FCVT_W_S: r = fpu_s_to_int(f1, INT_W, rm, fl); to_x = true; break;
	case OP_FCVT_WU_S: r = fpu_s_to_int(f1, INT_WU, rm, fl); to_x = true; break;
	case OP_FCVT_L_S: r = fpu_s_to_int(f1, INT_L, rm, fl); to_x = true; break;
	case OP_FCVT_LU_S: r = fpu_s_to_int(f1, INT_LU, rm, fl); to_x = true; break;
	case OP_FCVT_W_D: r = fpu_d_to_int(f1, INT_W, rm, fl); to_x = true; break;
	case OP_FCVT_WU_D: r = fpu_d_to_int(f1, INT_WU, rm, fl); to_x = true; break;
	case OP_FCVT_L_D: r = fpu_d_to_int(f1, INT_L, rm, fl); to_x = true; break;
	case OP_FCVT_LU_D: r = fpu_d_to_int(f1, INT_LU, rm, fl); to_x = true; break;
	case OP_FCVT_S_W: r = fpu_int_to_s(a, INT_W, rm, fl); break;
	case OP_FCVT_S_WU: r = fpu_int_to_s(a, INT_WU, rm, fl); break;
	case OP_FCVT_S_L: r = fpu_int_to_s(a, INT_L, rm, fl); break;
	case OP_FCVT_S_LU: r = fpu_int_to_s(a, INT_LU, rm, fl); break;
	case OP_FCVT_D_W: r = fpu_int_to_d(a, INT_W, rm, fl); break;
	case OP_FCVT_D_WU: r = fpu_int_to_d(a, INT_WU, rm, fl); break;
	case OP_FCVT_D_L: r = fpu_int_to_d(a, INT_L, rm, fl); break;
	case OP_FCVT_D_LU: r = fpu_int_to_d(a, INT_LU, rm, fl); break;
	case OP_FCVT_S_D: r = fpu_d_to_s(f1, rm, fl); break;
	case OP_FCVT_D_S: r = fpu_s_to_d(f1, fl); break;
	case OP_FMV_X_W:
		/* No FS dirtying: exec.c's FP_XOP. */
		h->jit_ret = sx32(f1);
		return 1;
	case OP_FMV_X_D: h->jit_ret = f1; return 1;
	case OP_FCLASS_S: h->jit_ret = fpu_class_s(f1); return 1;
	case OP_FCLASS_D: h->jit_ret = fpu_class_d(f1); return 1;
	case OP_FMV_W_X: r = fpu_box_s((uint32_t)a); break;
	case OP_FMV_D_X: r = a; break;
	case OP_FEQ_S: r = fpu_cmp_s(f1, f2, CMP_EQ, fl); to_x = true; break;
	case OP_FLT_S: r = fpu_cmp_s(f1, f2, CMP_LT, fl); to_x = true; break;
	case OP_FLE_S: r = fpu_cmp_s(f1, f2, CMP_LE, fl); to_x = true; break;
	case OP_FEQ_D: r = fpu_cmp_d(f1, f2, CMP_EQ, fl); to_x = true; break;
	case OP_FLT_D: r = fpu_cmp_d(f1, f2, CMP_LT, fl); to_x = true; break;
	case OP_FLE_D: r = fpu_cmp_d(f1, f2, CMP_LE, fl); to_x = true; break;
	default:
		return 0;
	}
	(void)b;
	if (to_x)
		h->jit_ret = r;
	else
		f[i->rd] = r;
	h->status |= SSTATUS_FS;
	return 1;
}

/* Does jit_insn_helper run this instruction, and does it write x[rd]? */
bool jit_helper_covers(enum op op, bool *writes_x)
{
	*writes_x = false;
	if (op >= OP_LR_W && op <= OP_AMOMAXU_D) {
		*writes_x = true;
		return true;
	}
	/* FP loads and stores are always translated inline (translate_fp.c). */
	if (op <= OP_FSD || op > OP_FCVT_D_S)
		return false;
	switch (op) {
	case OP_FCVT_W_S: case OP_FCVT_WU_S: case OP_FCVT_L_S: case OP_FCVT_LU_S:
	case OP_FCVT_W_D: case OP_FCVT_WU_D: case OP_FCVT_L_D: case OP_FCVT_LU_D:
	case OP_FMV_X_W: case OP_FMV_X_D: case OP_FCLASS_S: case OP_FCLASS_D:
	case OP_FEQ_S: case OP_FLT_S: case OP_FLE_S: case OP_FEQ_D: case OP_FLT_D: case OP_FLE_D:
		*writes_x = true;
		break;
	default:
		break;
	}
	return true;
}

/* Zicsr, as exec.c's csr_common; idx is the instruction's index in its
 * block: the ones before it are done but, while translated code runs, not
 * yet counted in instret, which a read of instret or cycle must include.
 * 0: the executor must run it (an illegal access; nothing was changed, as
 * a failing write changes nothing and reads have no side effects); 1:
 * done, go on; 2: done, but the write may have changed what translations
 * depend on (the TLB set, a translation) or made an interrupt
 * deliverable: return to the executor's loop. */
uint64_t jit_csr_helper(struct hart *h, uint64_t a, uint64_t idx)
{
	const struct insn *i = h->jit_insn;
	unsigned csr = (unsigned)i->imm;
	if (h->jit->stats)
		h->jit->csr_calls++;
	uint64_t src = i->op >= OP_CSRRWI ? i->rs1 : a;
	unsigned kind = (i->op - OP_CSRRW) % 3;
	uint64_t old = 0;
	h->instret += idx;
	int err = !(i->flags & INSN_CSR_NO_READ) && csr_read(h, csr, &old);
	h->instret -= idx;
	if (err)
		return 0;
	h->jit_ret = old;
	if (i->flags & INSN_CSR_NO_WRITE)
		return 1;
	unsigned set = h->tlb_set;
	uint64_t gen = h->tlb_gen;
	uint64_t nv = kind == 0 ? src : kind == 1 ? old | src : old & ~src;
	if (csr_write(h, csr, nv))
		return 0;
	if (h->tlb_set != set || h->tlb_gen != gen || irq_deliverable(h))
		return 2;
	return 1;
}

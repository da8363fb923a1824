/*
 * Shared machinery for the F and D test programs (fp_s.c, fp_d.c). Each
 * instruction is wrapped in a function that sets frm, sets fflags to what
 * *fl holds on the call (0, or NX for the pass that starts with it set), moves
 * the raw operand bits into FP registers with fmv.d.x (so the compiler never
 * touches the values and single-precision NaN-boxing is under the test's
 * control), executes the instruction and returns the raw result bits and the
 * accrued flags. Rounding modes come in six variants per instruction: the
 * five static modes and DYN (taken from frm).
 *
 * The including file defines the value tables and then the op table with
 * the OP_* macros below.
 */
#ifndef ISA_PROGS_FP_TEMPLATE_H
#define ISA_PROGS_FP_TEMPLATE_H

#include "common.h"

enum fkind {
	K_FFF,  /* fp <- fp, fp */
	K_FF,   /* fp <- fp */
	K_FFFF, /* fp <- fp, fp, fp */
	K_XFF,  /* int <- fp, fp */
	K_XF,   /* int <- fp */
	K_FX,   /* fp <- int */
};

typedef u64 (*ffn)(u64 a, u64 b, u64 c, u64 frm, u64 *fl);

#define FP_PRE "csrw frm, %[m]\n\tcsrw fflags, %[x]\n\t" \
	       "fmv.d.x ft0, %[a]\n\tfmv.d.x ft1, %[b]\n\tfmv.d.x ft3, %[c]\n\t"
#define FP_OUTS [r] "=&r"(r), [f] "=&r"(f)
#define FP_INS [a] "r"(a), [b] "r"(b), [c] "r"(c), [m] "r"(frm), [x] "r"(*fl)
#define FP_CLOB "ft0", "ft1", "ft2", "ft3"

#define D_K_FFF(fn, insn, rm)                                                       \
	static u64 fn(u64 a, u64 b, u64 c, u64 frm, u64 *fl)                      \
	{                                                                         \
		u64 r, f;                                                         \
		__asm__ volatile(FP_PRE insn " ft2, ft0, ft1" rm "\n\t"           \
				 "fmv.x.d %[r], ft2\n\tcsrr %[f], fflags"         \
				 : FP_OUTS : FP_INS : FP_CLOB);                   \
		*fl = f;                                                          \
		return r;                                                         \
	}
#define D_K_FF(fn, insn, rm)                                                        \
	static u64 fn(u64 a, u64 b, u64 c, u64 frm, u64 *fl)                      \
	{                                                                         \
		u64 r, f;                                                         \
		__asm__ volatile(FP_PRE insn " ft2, ft0" rm "\n\t"                \
				 "fmv.x.d %[r], ft2\n\tcsrr %[f], fflags"         \
				 : FP_OUTS : FP_INS : FP_CLOB);                   \
		*fl = f;                                                          \
		return r;                                                         \
	}
#define D_K_FFFF(fn, insn, rm)                                                      \
	static u64 fn(u64 a, u64 b, u64 c, u64 frm, u64 *fl)                      \
	{                                                                         \
		u64 r, f;                                                         \
		__asm__ volatile(FP_PRE insn " ft2, ft0, ft1, ft3" rm "\n\t"      \
				 "fmv.x.d %[r], ft2\n\tcsrr %[f], fflags"         \
				 : FP_OUTS : FP_INS : FP_CLOB);                   \
		*fl = f;                                                          \
		return r;                                                         \
	}
#define D_K_XFF(fn, insn, rm)                                                       \
	static u64 fn(u64 a, u64 b, u64 c, u64 frm, u64 *fl)                      \
	{                                                                         \
		u64 r, f;                                                         \
		__asm__ volatile(FP_PRE insn " %[r], ft0, ft1" rm "\n\t"          \
				 "csrr %[f], fflags"                              \
				 : FP_OUTS : FP_INS : FP_CLOB);                   \
		*fl = f;                                                          \
		return r;                                                         \
	}
#define D_K_XF(fn, insn, rm)                                                        \
	static u64 fn(u64 a, u64 b, u64 c, u64 frm, u64 *fl)                      \
	{                                                                         \
		u64 r, f;                                                         \
		__asm__ volatile(FP_PRE insn " %[r], ft0" rm "\n\t"               \
				 "csrr %[f], fflags"                              \
				 : FP_OUTS : FP_INS : FP_CLOB);                   \
		*fl = f;                                                          \
		return r;                                                         \
	}
#define D_K_FX(fn, insn, rm)                                                        \
	static u64 fn(u64 a, u64 b, u64 c, u64 frm, u64 *fl)                      \
	{                                                                         \
		u64 r, f;                                                         \
		__asm__ volatile(FP_PRE insn " ft2, %[a]" rm "\n\t"               \
				 "fmv.x.d %[r], ft2\n\tcsrr %[f], fflags"         \
				 : FP_OUTS : FP_INS : FP_CLOB);                   \
		*fl = f;                                                          \
		return r;                                                         \
	}

/* Definitions: six rounding variants, or one. */
#define DEF_RM(D, fn, insn)                                                      \
	D(op_##fn##_rne, insn, ", rne") D(op_##fn##_rtz, insn, ", rtz")          \
	D(op_##fn##_rdn, insn, ", rdn") D(op_##fn##_rup, insn, ", rup")          \
	D(op_##fn##_rmm, insn, ", rmm") D(op_##fn##_dyn, insn, "")
#define DEF_1(D, fn, insn) D(op_##fn, insn, "")

#define TAB_RM(kind, fn, insn)                                              \
	{ insn, kind, { op_##fn##_rne, op_##fn##_rtz, op_##fn##_rdn, op_##fn##_rup, \
			op_##fn##_rmm, op_##fn##_dyn }, 6 },
#define TAB_1(kind, fn, insn) { insn, kind, { op_##fn }, 1 },

struct fop {
	const char *name;
	enum fkind kind;
	ffn fn[6];
	int nrm;
};

static const char *const rm_names[] = { "rne", "rtz", "rdn", "rup", "rmm", "dyn" };

struct fsets {
	const u64 *full;
	size_t nfull;
	const u64 *red; /* for the rounding-mode variants */
	size_t nred;
	const u64 *tern;
	size_t ntern;
	const u64 *tern_red;
	size_t ntern_red;
};

/* fflags before each instruction: 0, or NX (the state of most programs
 * once one result was inexact; a translator may take shortcuts then). */
enum { FL_CLEAR = 0, FL_NX = 1 };

static void fp_line(const struct fop *op, const char *rm, int frm, u64 a, u64 b, u64 c, u64 fl0)
{
	u64 fl = fl0, r = 0;
	int idx = 0;
	for (int i = 0; i < 6; i++)
		if (op->nrm == 6 && !strcmp(rm, rm_names[i]))
			idx = i;
	r = op->fn[idx](a, b, c, (u64)frm, &fl);
	printf("%s %s%s", op->name, rm, fl0 ? "+nx" : "");
	if (!strcmp(rm, "dyn"))
		printf("/%d", frm);
	switch (op->kind) {
	case K_FFF:
	case K_XFF:
		printf(" %016" PRIx64 " %016" PRIx64, a, b);
		break;
	case K_FFFF:
		printf(" %016" PRIx64 " %016" PRIx64 " %016" PRIx64, a, b, c);
		break;
	default:
		printf(" %016" PRIx64, a);
		break;
	}
	printf(" -> %016" PRIx64 " fl=%02" PRIx64 "\n", r, fl);
}

/* Every operand combination of one op under one rounding variant. */
static void fp_sweep_fl(const struct fop *op, const char *rm, int frm, const u64 *v, size_t n, u64 fl0)
{
	switch (op->kind) {
	case K_FFF:
	case K_XFF:
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < n; j++)
				fp_line(op, rm, frm, v[i], v[j], 0, fl0);
		break;
	case K_FFFF:
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < n; j++)
				for (size_t k = 0; k < n; k++)
					fp_line(op, rm, frm, v[i], v[j], v[k], fl0);
		break;
	default:
		for (size_t i = 0; i < n; i++)
			fp_line(op, rm, frm, v[i], 0, 0, fl0);
		break;
	}
}

static void fp_sweep(const struct fop *op, const char *rm, int frm, const u64 *v, size_t n)
{
	fp_sweep_fl(op, rm, frm, v, n, FL_CLEAR);
}

/*
 * Static RNE (and ops without a rounding mode) on the full set, with frm
 * set to something else so a static mode that wrongly follows frm shows;
 * the other static modes with frm = RNE, and DYN under every valid frm, on
 * the reduced set; static RNE once more starting with fflags.NX set.
 */
static void fp_run(const struct fop *ops, size_t nops, const struct fsets *s)
{
	for (size_t o = 0; o < nops; o++) {
		const struct fop *op = &ops[o];
		const u64 *full = s->full, *red = s->red;
		size_t nfull = s->nfull, nred = s->nred;
		if (op->kind == K_FX) {
			full = red = int_vals;
			nfull = nred = N_ELEMS(int_vals);
		} else if (op->kind == K_FFFF) {
			full = s->tern;
			nfull = s->ntern;
			red = s->tern_red;
			nred = s->ntern_red;
		}
		if (op->nrm == 1) {
			fp_sweep(op, "-", 4, full, nfull);
			continue;
		}
		fp_sweep(op, "rne", 4, full, nfull);
		fp_sweep_fl(op, "rne", 4, full, nfull, FL_NX);
		for (int rm = 1; rm < 5; rm++)
			fp_sweep(op, rm_names[rm], 0, red, nred);
		for (int frm = 0; frm < 5; frm++)
			fp_sweep(op, "dyn", frm, red, nred);
	}
}

#endif

/*
 * Shared by the two halves of the FPU differential check: the list of
 * operations (one per RISC-V F/D instruction that src/engine/fpu.h models)
 * and the binary record formats. fpu_vectors_host.c generates vector
 * records and evaluates them with fpu.c; fpu_vectors_rv.c is built for
 * RISC-V and executes each record as the real instruction (under
 * qemu-riscv64 here), writing result records in the same layout.
 */
#ifndef SKIFF_TESTS_FPU_VECTORS_H
#define SKIFF_TESTS_FPU_VECTORS_H

#include <stdint.h>

/* Operand/result shapes. FF = two floats, F = one float, FFF = three,
 * I = integer register. _RM: takes a rounding mode (dyn, from frm). */
enum fpv_kind {
	K_FF_F_RM,  /* fadd fsub fmul fdiv */
	K_F_F_RM,   /* fsqrt, fcvt.s.d */
	K_FFF_F_RM, /* fmadd fmsub fnmsub fnmadd */
	K_FF_F,     /* fmin fmax fsgnj* */
	K_FF_I,     /* feq flt fle */
	K_F_I,      /* fclass */
	K_F_I_RM,   /* fcvt.{w,wu,l,lu}.{s,d} */
	K_I_F_RM,   /* fcvt.{s,d}.{w,wu,l,lu} */
	K_F_F,      /* fcvt.d.s (always exact, no rm operand) */
	K_I_F,      /* fcvt.d.w, fcvt.d.wu (always exact) */
};

/* X(id, mnemonic, kind, input format: 'S', 'D', 'W' (32-bit int), 'L') */
#define FPV_OPS(X)                                   \
	X(FADD_S, "fadd.s", K_FF_F_RM, 'S')          \
	X(FSUB_S, "fsub.s", K_FF_F_RM, 'S')          \
	X(FMUL_S, "fmul.s", K_FF_F_RM, 'S')          \
	X(FDIV_S, "fdiv.s", K_FF_F_RM, 'S')          \
	X(FSQRT_S, "fsqrt.s", K_F_F_RM, 'S')         \
	X(FMADD_S, "fmadd.s", K_FFF_F_RM, 'S')       \
	X(FMSUB_S, "fmsub.s", K_FFF_F_RM, 'S')       \
	X(FNMSUB_S, "fnmsub.s", K_FFF_F_RM, 'S')     \
	X(FNMADD_S, "fnmadd.s", K_FFF_F_RM, 'S')     \
	X(FMIN_S, "fmin.s", K_FF_F, 'S')             \
	X(FMAX_S, "fmax.s", K_FF_F, 'S')             \
	X(FSGNJ_S, "fsgnj.s", K_FF_F, 'S')           \
	X(FSGNJN_S, "fsgnjn.s", K_FF_F, 'S')         \
	X(FSGNJX_S, "fsgnjx.s", K_FF_F, 'S')         \
	X(FEQ_S, "feq.s", K_FF_I, 'S')               \
	X(FLT_S, "flt.s", K_FF_I, 'S')               \
	X(FLE_S, "fle.s", K_FF_I, 'S')               \
	X(FCLASS_S, "fclass.s", K_F_I, 'S')          \
	X(FCVT_W_S, "fcvt.w.s", K_F_I_RM, 'S')       \
	X(FCVT_WU_S, "fcvt.wu.s", K_F_I_RM, 'S')     \
	X(FCVT_L_S, "fcvt.l.s", K_F_I_RM, 'S')       \
	X(FCVT_LU_S, "fcvt.lu.s", K_F_I_RM, 'S')     \
	X(FCVT_S_W, "fcvt.s.w", K_I_F_RM, 'W')       \
	X(FCVT_S_WU, "fcvt.s.wu", K_I_F_RM, 'W')     \
	X(FCVT_S_L, "fcvt.s.l", K_I_F_RM, 'L')       \
	X(FCVT_S_LU, "fcvt.s.lu", K_I_F_RM, 'L')     \
	X(FADD_D, "fadd.d", K_FF_F_RM, 'D')          \
	X(FSUB_D, "fsub.d", K_FF_F_RM, 'D')          \
	X(FMUL_D, "fmul.d", K_FF_F_RM, 'D')          \
	X(FDIV_D, "fdiv.d", K_FF_F_RM, 'D')          \
	X(FSQRT_D, "fsqrt.d", K_F_F_RM, 'D')         \
	X(FMADD_D, "fmadd.d", K_FFF_F_RM, 'D')       \
	X(FMSUB_D, "fmsub.d", K_FFF_F_RM, 'D')       \
	X(FNMSUB_D, "fnmsub.d", K_FFF_F_RM, 'D')     \
	X(FNMADD_D, "fnmadd.d", K_FFF_F_RM, 'D')     \
	X(FMIN_D, "fmin.d", K_FF_F, 'D')             \
	X(FMAX_D, "fmax.d", K_FF_F, 'D')             \
	X(FSGNJ_D, "fsgnj.d", K_FF_F, 'D')           \
	X(FSGNJN_D, "fsgnjn.d", K_FF_F, 'D')         \
	X(FSGNJX_D, "fsgnjx.d", K_FF_F, 'D')         \
	X(FEQ_D, "feq.d", K_FF_I, 'D')               \
	X(FLT_D, "flt.d", K_FF_I, 'D')               \
	X(FLE_D, "fle.d", K_FF_I, 'D')               \
	X(FCLASS_D, "fclass.d", K_F_I, 'D')          \
	X(FCVT_W_D, "fcvt.w.d", K_F_I_RM, 'D')       \
	X(FCVT_WU_D, "fcvt.wu.d", K_F_I_RM, 'D')     \
	X(FCVT_L_D, "fcvt.l.d", K_F_I_RM, 'D')       \
	X(FCVT_LU_D, "fcvt.lu.d", K_F_I_RM, 'D')     \
	X(FCVT_D_W, "fcvt.d.w", K_I_F, 'W')          \
	X(FCVT_D_WU, "fcvt.d.wu", K_I_F, 'W')        \
	X(FCVT_D_L, "fcvt.d.l", K_I_F_RM, 'L')       \
	X(FCVT_D_LU, "fcvt.d.lu", K_I_F_RM, 'L')     \
	X(FCVT_S_D, "fcvt.s.d", K_F_F_RM, 'D')       \
	X(FCVT_D_S, "fcvt.d.s", K_F_F, 'S')

enum fpv_op {
#define FPV_ENUM(id, mnem, kind, fmt) OP_##id,
	FPV_OPS(FPV_ENUM)
#undef FPV_ENUM
	OP_COUNT
};

/* One vector: 32 bytes, little-endian on both hosts. */
struct fpv_vec {
	uint32_t op;
	uint32_t rm; /* bits 0..2: the rounding mode 0..4; FPV_STATIC_RM: */
		     /* encode it in the instruction (frm then holds another mode) */
	uint64_t a, b, c;
};

#define FPV_STATIC_RM 0x100u
#define FPV_RM(v) ((v)->rm & 7u)

/* One result: the destination register's 64 bits and fflags. */
struct fpv_res {
	uint64_t value;
	uint32_t flags;
	uint32_t pad;
};

#endif

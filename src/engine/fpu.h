/*
 * F and D arithmetic exactly as the RISC-V unprivileged spec defines it
 * (chapters "F" and "D"): NaN-boxing of single values in 64-bit registers,
 * the canonical NaN for every NaN result, the five rounding modes (RNE, RTZ,
 * RDN, RUP, RMM), tininess detected after rounding, and the accrued flags.
 *
 * Every function takes raw 64-bit register contents and returns the raw
 * value to write back (single results NaN-boxed; integer results already
 * sign-extended as the spec says for the W forms). `rm` is a resolved static
 * rounding mode 0..4 (the caller maps DYN to frm and rejects 5..7). Exception
 * flags are OR-ed into *flags (bit 0 NX, 1 UF, 2 OF, 3 DZ, 4 NV).
 */
#ifndef SKIFF_ENGINE_FPU_H
#define SKIFF_ENGINE_FPU_H

#include <stdint.h>

enum fpu_rm { RM_RNE = 0, RM_RTZ = 1, RM_RDN = 2, RM_RUP = 3, RM_RMM = 4 };

#define FFLAG_NX 0x01u
#define FFLAG_UF 0x02u
#define FFLAG_OF 0x04u
#define FFLAG_DZ 0x08u
#define FFLAG_NV 0x10u

enum fpu_fma { FMA_MADD, FMA_MSUB, FMA_NMSUB, FMA_NMADD };
enum fpu_int { INT_W, INT_WU, INT_L, INT_LU };
enum fpu_cmp { CMP_EQ, CMP_LT, CMP_LE };

/* Single precision (inputs NaN-box checked: an improperly boxed input is the
 * canonical NaN). */
uint64_t fpu_add_s(uint64_t a, uint64_t b, int rm, uint32_t *flags);
uint64_t fpu_sub_s(uint64_t a, uint64_t b, int rm, uint32_t *flags);
uint64_t fpu_mul_s(uint64_t a, uint64_t b, int rm, uint32_t *flags);
uint64_t fpu_div_s(uint64_t a, uint64_t b, int rm, uint32_t *flags);
uint64_t fpu_sqrt_s(uint64_t a, int rm, uint32_t *flags);
uint64_t fpu_fma_s(uint64_t a, uint64_t b, uint64_t c, enum fpu_fma op, int rm, uint32_t *flags);
uint64_t fpu_min_s(uint64_t a, uint64_t b, uint32_t *flags);
uint64_t fpu_max_s(uint64_t a, uint64_t b, uint32_t *flags);
uint64_t fpu_sgnj_s(uint64_t a, uint64_t b, int kind /* 0 J, 1 JN, 2 JX */);
uint64_t fpu_cmp_s(uint64_t a, uint64_t b, enum fpu_cmp op, uint32_t *flags);
uint64_t fpu_class_s(uint64_t a);
uint64_t fpu_s_to_int(uint64_t a, enum fpu_int to, int rm, uint32_t *flags);
uint64_t fpu_int_to_s(uint64_t x, enum fpu_int from, int rm, uint32_t *flags);

/* Double precision. */
uint64_t fpu_add_d(uint64_t a, uint64_t b, int rm, uint32_t *flags);
uint64_t fpu_sub_d(uint64_t a, uint64_t b, int rm, uint32_t *flags);
uint64_t fpu_mul_d(uint64_t a, uint64_t b, int rm, uint32_t *flags);
uint64_t fpu_div_d(uint64_t a, uint64_t b, int rm, uint32_t *flags);
uint64_t fpu_sqrt_d(uint64_t a, int rm, uint32_t *flags);
uint64_t fpu_fma_d(uint64_t a, uint64_t b, uint64_t c, enum fpu_fma op, int rm, uint32_t *flags);
uint64_t fpu_min_d(uint64_t a, uint64_t b, uint32_t *flags);
uint64_t fpu_max_d(uint64_t a, uint64_t b, uint32_t *flags);
uint64_t fpu_sgnj_d(uint64_t a, uint64_t b, int kind);
uint64_t fpu_cmp_d(uint64_t a, uint64_t b, enum fpu_cmp op, uint32_t *flags);
uint64_t fpu_class_d(uint64_t a);
uint64_t fpu_d_to_int(uint64_t a, enum fpu_int to, int rm, uint32_t *flags);
uint64_t fpu_int_to_d(uint64_t x, enum fpu_int from, int rm, uint32_t *flags);

/* Conversions between the two formats. */
uint64_t fpu_d_to_s(uint64_t a, int rm, uint32_t *flags);
uint64_t fpu_s_to_d(uint64_t a, uint32_t *flags);

/* NaN-box a 32-bit value (FLW, FMV.W.X). */
static inline uint64_t fpu_box_s(uint32_t v) { return 0xffffffff00000000ull | v; }

#endif

/*
 * RISC-V F and D arithmetic (unprivileged ISA spec, the "F" and "D"
 * extension chapters; section names are cited below since their numbers
 * differ between editions) for the interface in fpu.h.
 *
 * Two implementations live here and give bit-identical results and flags:
 *
 *  - A host path for x86-64 (SSE2 scalar instructions, FMA3 when the CPU has
 *    it). x86 rounds in the four IEEE directed/nearest modes like RISC-V,
 *    detects tininess after rounding like RISC-V, and raises the same five
 *    flags; only NaN results differ (x86 propagates payloads or returns
 *    0xffc00000... "indefinite"), so every NaN result is replaced by the
 *    canonical NaN. Each host operation is one asm block that loads MXCSR
 *    (rounding mode, flags cleared), executes the instruction and stores
 *    MXCSR, so the compiler can neither fold, reorder nor contract it: this
 *    file needs no -frounding-math or -ffp-contract=off (it contains no C
 *    floating-point arithmetic at all besides exact int->float casts).
 *    Fast path: when rm is RNE and NX is already set in *flags (the usual
 *    state of fflags in an FP workload, if the caller passes the accrued
 *    fflags), the instruction runs without touching MXCSR and the remaining
 *    flags (OF, and UF via a fallback for results near the subnormal range)
 *    are derived from the operands and the result.
 *
 *  - An exact software path in integer arithmetic (round_pack() and the
 *    soft_* functions) used for RMM, which x86 does not have, for FMA on CPUs
 *    without FMA3, and for everything on non-x86 hosts (or when built with
 *    -DFPU_FORCE_SOFT, which the differential test uses to check it).
 *
 * Host MXCSR contract: between calls MXCSR must hold the default control
 * bits (0x1f80: all exceptions masked, RNE, no FTZ/DAZ); this file restores
 * them after any other rounding mode. The MXCSR status flags are left in an
 * unspecified state. Do not link the process with -ffast-math (it sets FTZ).
 */
#include "engine/fpu.h"

#include <stdbool.h>
#include <string.h>

typedef unsigned __int128 u128;

/* For the small helpers on hot paths: inlined with a constant format, the
 * format fields fold into immediates. */
#define HOT static inline __attribute__((always_inline))

/* ---------------------------------------------------------------------- */
/* Formats and bit-level helpers                                          */
/* ---------------------------------------------------------------------- */

struct fmt {
	unsigned width; /* 32 or 64 */
	unsigned p;     /* precision including the hidden bit */
	int emin, emax, bias;
	uint64_t canon; /* canonical NaN (F: "NaN Generation and Propagation") */
};

static const struct fmt F32 = { 32, 24, -126, 127, 127, 0x7fc00000u };
static const struct fmt F64 = { 64, 53, -1022, 1023, 1023, 0x7ff8000000000000ull };

#define S_SIGN 0x80000000u
#define S_INF 0x7f800000u
#define S_QBIT 0x00400000u
#define S_CANON 0x7fc00000u
#define S_MINNORM 0x00800000u
#define D_SIGN 0x8000000000000000ull
#define D_INF 0x7ff0000000000000ull
#define D_QBIT 0x0008000000000000ull
#define D_CANON 0x7ff8000000000000ull
#define D_MINNORM 0x0010000000000000ull

static inline uint64_t sign_bit(const struct fmt *f) { return 1ull << (f->width - 1); }
static inline uint64_t inf_bits(const struct fmt *f) { return ((1ull << (f->width - f->p)) - 1) << (f->p - 1); }
static inline uint64_t frac_mask(const struct fmt *f) { return (1ull << (f->p - 1)) - 1; }
static inline uint64_t abs_bits(const struct fmt *f, uint64_t x) { return x & (sign_bit(f) - 1); }

/* Single inputs must be NaN-boxed (D: "NaN Boxing of Narrower Values"):
 * otherwise they are the canonical NaN. */
static inline uint32_t unbox(uint64_t v)
{
	return (v >> 32) == 0xffffffffu ? (uint32_t)v : S_CANON;
}

static inline uint64_t box(uint32_t v) { return 0xffffffff00000000ull | v; }

static inline __attribute__((unused)) bool s_isnan(uint32_t x) { return (x & ~S_SIGN) > S_INF; }
static inline __attribute__((unused)) bool s_issnan(uint32_t x) { return s_isnan(x) && !(x & S_QBIT); }
static inline __attribute__((unused)) bool s_isfinite(uint32_t x) { return (x & S_INF) != S_INF; }
static inline __attribute__((unused)) bool d_isnan(uint64_t x) { return (x & ~D_SIGN) > D_INF; }
static inline __attribute__((unused)) bool d_isfinite(uint64_t x) { return (x & D_INF) != D_INF; }

static inline __attribute__((unused)) uint32_t s_bits(float v) { uint32_t u; memcpy(&u, &v, 4); return u; }
static inline __attribute__((unused)) float s_val(uint32_t u) { float v; memcpy(&v, &u, 4); return v; }
static inline __attribute__((unused)) uint64_t d_bits(double v) { uint64_t u; memcpy(&u, &v, 8); return u; }
static inline __attribute__((unused)) double d_val(uint64_t u) { double v; memcpy(&v, &u, 8); return v; }

enum cls { C_ZERO, C_FINITE, C_INF, C_QNAN, C_SNAN };

HOT enum cls classify(const struct fmt *f, uint64_t x)
{
	uint64_t a = abs_bits(f, x), inf = inf_bits(f);
	if (a == 0)
		return C_ZERO;
	if (a < inf)
		return C_FINITE;
	if (a == inf)
		return C_INF;
	return (x >> (f->p - 2)) & 1 ? C_QNAN : C_SNAN;
}

static inline bool cls_nan(enum cls c) { return c == C_QNAN || c == C_SNAN; }

/* ---------------------------------------------------------------------- */
/* Exact software path                                                    */
/* ---------------------------------------------------------------------- */

/*
 * A finite nonzero value sig * 2^(exp - 62) with sig in [2^62, 2^63). When a
 * result is not exact, bit 0 of sig is forced to 1 ("jamming"), which makes
 * the representation round-to-odd at 63 bits; rounding that once more to 53
 * or 24 bits gives the correctly rounded result in every mode.
 */
struct num {
	bool sign;
	int exp;
	uint64_t sig;
};

HOT struct num unpack(const struct fmt *f, uint64_t x)
{
	struct num n;
	n.sign = (x >> (f->width - 1)) & 1;
	int e = (int)((x >> (f->p - 1)) & ((1u << (f->width - f->p)) - 1));
	uint64_t m = x & frac_mask(f);
	if (e == 0)
		e = 1; /* subnormal */
	else
		m |= 1ull << (f->p - 1);
	int s = __builtin_clzll(m) - 1;
	n.sig = m << s;
	n.exp = e - f->bias - (int)(f->p - 1) - s + 62;
	return n;
}

static inline uint64_t shr_jam(uint64_t x, int n)
{
	if (n <= 0)
		return x;
	if (n >= 63)
		return x != 0;
	return (x >> n) | ((x & ((1ull << n) - 1)) != 0);
}

static inline u128 shr_jam128(u128 x, int n)
{
	if (n <= 0)
		return x;
	if (n >= 127)
		return x != 0;
	return (x >> n) | ((x & (((u128)1 << n) - 1)) != 0);
}

static inline int clz128(u128 x)
{
	uint64_t hi = (uint64_t)(x >> 64);
	return hi ? __builtin_clzll(hi) : 64 + __builtin_clzll((uint64_t)x);
}

/* Whether to add one unit in the last place: rem is the discarded part,
 * half its midpoint value, lsb the kept least significant bit. Modes as in
 * the rounding-mode table of the F chapter's "Floating-Point Control and
 * Status Register" section; RMM is "to nearest, ties to max magnitude". */
static inline bool round_inc(int rm, bool sign, bool lsb, uint64_t rem, uint64_t half)
{
	switch (rm) {
	case RM_RTZ:
		return false;
	case RM_RDN:
		return sign && rem;
	case RM_RUP:
		return !sign && rem;
	case RM_RMM:
		return rem >= half;
	default:
		return rem > half || (rem == half && lsb);
	}
}

static uint64_t overflow(const struct fmt *f, bool sign, int rm, uint32_t *fl)
{
	*fl |= FFLAG_OF | FFLAG_NX;
	bool to_inf = rm == RM_RNE || rm == RM_RMM || (rm == RM_RDN && sign) ||
		      (rm == RM_RUP && !sign) || (unsigned)rm > RM_RMM;
	uint64_t mag = to_inf ? inf_bits(f) : inf_bits(f) - 1;
	return (sign ? sign_bit(f) : 0) | mag;
}

/* Round sig * 2^(exp - 62) (sig in [2^62, 2^63), jammed) to format f.
 * Tininess is detected after rounding (F: "Subnormal Arithmetic"), i.e. on
 * the value rounded to p bits with an unbounded exponent; UF is raised for
 * a tiny result only when it is also inexact (IEEE 754 default handling). */
static uint64_t round_pack(const struct fmt *f, bool sign, int exp, uint64_t sig, int rm,
			   uint32_t *fl)
{
	const unsigned drop = 63 - f->p;
	const uint64_t mask = (1ull << drop) - 1, half = 1ull << (drop - 1);
	bool tiny = false;

	if (exp < f->emin) {
		tiny = true;
		if (exp == f->emin - 1) {
			uint64_t q = sig >> drop;
			q += round_inc(rm, sign, q & 1, sig & mask, half);
			if (q >> f->p)
				tiny = false; /* rounds up to 2^emin */
		}
		sig = shr_jam(sig, f->emin - exp);
		exp = f->emin;
	}
	if (exp > f->emax)
		return overflow(f, sign, rm, fl);
	uint64_t rem = sig & mask, q = sig >> drop;
	q += round_inc(rm, sign, q & 1, rem, half);
	/* The hidden bit (or a carry out of the significand) adds into the
	 * exponent field, which also turns a rounded-up subnormal normal. */
	uint64_t bits = ((uint64_t)(exp + f->bias - 1) << (f->p - 1)) + q;
	if (bits >= inf_bits(f))
		return overflow(f, sign, rm, fl);
	if (rem) {
		*fl |= FFLAG_NX;
		if (tiny)
			*fl |= FFLAG_UF;
	}
	return (sign ? sign_bit(f) : 0) | bits;
}

/* Common NaN handling for arithmetic: NV for any signalling input. */
static uint64_t nan_result(const struct fmt *f, enum cls a, enum cls b, uint32_t *fl)
{
	if (a == C_SNAN || b == C_SNAN)
		*fl |= FFLAG_NV;
	return f->canon;
}

static uint64_t invalid(const struct fmt *f, uint32_t *fl)
{
	*fl |= FFLAG_NV;
	return f->canon;
}

/* Exact zero result of x + (-x): +0, or -0 when rounding down (IEEE 6.3). */
static inline uint64_t cancel_zero(const struct fmt *f, int rm)
{
	return rm == RM_RDN ? sign_bit(f) : 0;
}

static uint64_t soft_add(const struct fmt *f, uint64_t a, uint64_t b, int rm, uint32_t *fl)
{
	enum cls ca = classify(f, a), cb = classify(f, b);
	uint64_t sb = sign_bit(f);
	if (cls_nan(ca) || cls_nan(cb))
		return nan_result(f, ca, cb, fl);
	if (ca == C_INF) {
		if (cb == C_INF && ((a ^ b) & sb))
			return invalid(f, fl);
		return a;
	}
	if (cb == C_INF)
		return b;
	if (ca == C_ZERO && cb == C_ZERO)
		return ((a ^ b) & sb) ? cancel_zero(f, rm) : a;
	if (ca == C_ZERO)
		return b;
	if (cb == C_ZERO)
		return a;

	struct num x = unpack(f, a), y = unpack(f, b);
	if (x.exp < y.exp || (x.exp == y.exp && x.sig < y.sig)) {
		struct num t = x;
		x = y;
		y = t;
	}
	uint64_t ys = shr_jam(y.sig, x.exp - y.exp);
	if (x.sign == y.sign) {
		uint64_t s = x.sig + ys;
		int e = x.exp;
		if (s >> 63) {
			s = shr_jam(s, 1);
			e++;
		}
		return round_pack(f, x.sign, e, s, rm, fl);
	}
	uint64_t s = x.sig - ys;
	if (s == 0)
		return cancel_zero(f, rm);
	int sh = __builtin_clzll(s) - 1;
	return round_pack(f, x.sign, x.exp - sh, s << sh, rm, fl);
}

static uint64_t soft_mul(const struct fmt *f, uint64_t a, uint64_t b, int rm, uint32_t *fl)
{
	enum cls ca = classify(f, a), cb = classify(f, b);
	uint64_t sb = sign_bit(f), sign = (a ^ b) & sb;
	if (cls_nan(ca) || cls_nan(cb))
		return nan_result(f, ca, cb, fl);
	if ((ca == C_INF && cb == C_ZERO) || (ca == C_ZERO && cb == C_INF))
		return invalid(f, fl);
	if (ca == C_INF || cb == C_INF)
		return sign | inf_bits(f);
	if (ca == C_ZERO || cb == C_ZERO)
		return sign;

	struct num x = unpack(f, a), y = unpack(f, b);
	u128 p = (u128)x.sig * y.sig; /* [2^124, 2^126) */
	int e = x.exp + y.exp;
	uint64_t s;
	if (p >> 125) {
		s = (uint64_t)shr_jam128(p, 63);
		e++;
	} else {
		s = (uint64_t)shr_jam128(p, 62);
	}
	return round_pack(f, sign != 0, e, s, rm, fl);
}

static uint64_t soft_div(const struct fmt *f, uint64_t a, uint64_t b, int rm, uint32_t *fl)
{
	enum cls ca = classify(f, a), cb = classify(f, b);
	uint64_t sb = sign_bit(f), sign = (a ^ b) & sb;
	if (cls_nan(ca) || cls_nan(cb))
		return nan_result(f, ca, cb, fl);
	if ((ca == C_INF && cb == C_INF) || (ca == C_ZERO && cb == C_ZERO))
		return invalid(f, fl);
	if (ca == C_INF)
		return sign | inf_bits(f);
	if (cb == C_INF || ca == C_ZERO)
		return sign;
	if (cb == C_ZERO) {
		*fl |= FFLAG_DZ;
		return sign | inf_bits(f);
	}

	struct num x = unpack(f, a), y = unpack(f, b);
	int e = x.exp - y.exp;
	u128 num;
	if (x.sig >= y.sig) {
		num = (u128)x.sig << 62;
	} else {
		num = (u128)x.sig << 63;
		e--;
	}
	uint64_t q = (uint64_t)(num / y.sig);
	if ((uint64_t)(num % y.sig))
		q |= 1;
	return round_pack(f, sign != 0, e, q, rm, fl);
}

/* floor(sqrt(x)) for 64 bits, digit by digit. */
static uint64_t isqrt64(uint64_t x)
{
	uint64_t res = 0, bit = 1ull << 62;
	while (bit > x)
		bit >>= 2;
	while (bit) {
		if (x >= res + bit) {
			x -= res + bit;
			res = (res >> 1) + bit;
		} else {
			res >>= 1;
		}
		bit >>= 2;
	}
	return res;
}

/* floor(sqrt(n)) for n in [2^124, 2^126), and whether it was exact: the
 * root of the top 64 bits is within 2^-29 relative, one Newton step (which
 * never lands below floor(sqrt(n))) brings it within a few units, and the
 * last units are stepped down exactly. */
static uint64_t isqrt128(u128 n, bool *exact)
{
	u128 r = (u128)isqrt64((uint64_t)(n >> 64)) << 32;
	r = (r + n / r) >> 1;
	while (r * r > n)
		r--;
	*exact = r * r == n;
	return (uint64_t)r;
}

static uint64_t soft_sqrt(const struct fmt *f, uint64_t a, int rm, uint32_t *fl)
{
	enum cls ca = classify(f, a);
	bool neg = (a & sign_bit(f)) != 0;
	if (cls_nan(ca))
		return nan_result(f, ca, C_ZERO, fl);
	if (ca == C_ZERO)
		return a;
	if (neg)
		return invalid(f, fl);
	if (ca == C_INF)
		return a;

	struct num x = unpack(f, a);
	/* x = sig * 2^(exp - 62); make exp even, then
	 * sqrt(x) = sqrt(m << 62) * 2^(e/2 - 62). */
	u128 m = x.sig;
	int e = x.exp;
	if (e & 1) {
		m <<= 1;
		e--;
	}
	bool exact;
	uint64_t r = isqrt128(m << 62, &exact); /* [2^62, 2^63) */
	if (!exact)
		r |= 1;
	return round_pack(f, false, e / 2, r, rm, fl);
}

/* a * b + c with one rounding; the caller has applied the negations of
 * FMSUB/FNMSUB/FNMADD to the signs of a and c (F: "Single-Precision
 * Floating-Point Computational Instructions"). */
static uint64_t soft_fma(const struct fmt *f, uint64_t a, uint64_t b, uint64_t c, int rm,
			 uint32_t *fl)
{
	enum cls ca = classify(f, a), cb = classify(f, b), cc = classify(f, c);
	uint64_t sb = sign_bit(f), psign = (a ^ b) & sb;
	bool infzero = (ca == C_INF && cb == C_ZERO) || (ca == C_ZERO && cb == C_INF);
	/* Same section: invalid for inf * 0 even when the addend is a quiet NaN. */
	if (infzero) {
		*fl |= FFLAG_NV;
		return f->canon;
	}
	if (cls_nan(ca) || cls_nan(cb) || cls_nan(cc)) {
		if (ca == C_SNAN || cb == C_SNAN || cc == C_SNAN)
			*fl |= FFLAG_NV;
		return f->canon;
	}
	if (ca == C_INF || cb == C_INF) {
		if (cc == C_INF && ((c & sb) != psign))
			return invalid(f, fl);
		return psign | inf_bits(f);
	}
	if (cc == C_INF)
		return c;
	if (ca == C_ZERO || cb == C_ZERO) {
		if (cc == C_ZERO)
			return (psign == (c & sb)) ? c : cancel_zero(f, rm);
		return c;
	}

	struct num x = unpack(f, a), y = unpack(f, b);
	/* Both terms as M * 2^(E - 125) with M in [2^125, 2^126). */
	u128 pm = (u128)x.sig * y.sig;
	int pe = x.exp + y.exp;
	if (pm >> 125)
		pe++;
	else
		pm <<= 1;
	bool ps = psign != 0;
	if (cc == C_ZERO) {
		uint64_t s = (uint64_t)shr_jam128(pm, 63);
		return round_pack(f, ps, pe, s, rm, fl);
	}
	struct num z = unpack(f, c);
	u128 cm = (u128)z.sig << 63;
	int ce = z.exp;
	bool cs = z.sign;

	/* Order so that the first term has the larger magnitude. */
	if (ce > pe || (ce == pe && cm > pm)) {
		u128 tm = pm;
		pm = cm;
		cm = tm;
		int te = pe;
		pe = ce;
		ce = te;
		bool ts = ps;
		ps = cs;
		cs = ts;
	}
	cm = shr_jam128(cm, pe - ce);
	u128 s;
	if (ps == cs) {
		s = pm + cm;
		if (s >> 126) {
			s = shr_jam128(s, 1);
			pe++;
		}
	} else {
		s = pm - cm;
		if (s == 0)
			return cancel_zero(f, rm);
		int sh = clz128(s) - 2;
		s <<= sh;
		pe -= sh;
	}
	return round_pack(f, ps, pe, (uint64_t)shr_jam128(s, 63), rm, fl);
}

/* Conversion between the formats (only narrowing can round). */
static uint64_t soft_convert(const struct fmt *to, const struct fmt *from, uint64_t a, int rm,
			     uint32_t *fl)
{
	enum cls ca = classify(from, a);
	bool sign = (a & sign_bit(from)) != 0;
	if (cls_nan(ca))
		return nan_result(to, ca, C_ZERO, fl);
	if (ca == C_INF)
		return (sign ? sign_bit(to) : 0) | inf_bits(to);
	if (ca == C_ZERO)
		return sign ? sign_bit(to) : 0;
	struct num x = unpack(from, a);
	return round_pack(to, x.sign, x.exp, x.sig, rm, fl);
}

/* Integer limits of fcvt.{w,wu,l,lu} (F: "Single-Precision Floating-Point
 * Conversion and Move Instructions", table of domains and invalid
 * behaviour): out-of-range, infinities and NaN raise NV and saturate; NaN
 * and +inf give the largest value. W and WU results are sign-extended. */
static const uint64_t int_pos_max[4] = { 0x7fffffffull, 0xffffffffull, 0x7fffffffffffffffull,
					 0xffffffffffffffffull };
static const uint64_t int_neg_max[4] = { 0x80000000ull, 0, 0x8000000000000000ull, 0 };

static inline uint64_t int_result(enum fpu_int to, uint64_t v)
{
	if (to == INT_W || to == INT_WU)
		return (uint64_t)(int64_t)(int32_t)(uint32_t)v;
	return v;
}

HOT uint64_t soft_to_int(const struct fmt *f, uint64_t a, enum fpu_int to, int rm, uint32_t *fl)
{
	unsigned t = (unsigned)to & 3;
	enum cls ca = classify(f, a);
	bool sign = (a & sign_bit(f)) != 0;
	if (cls_nan(ca)) {
		*fl |= FFLAG_NV;
		return int_result(to, int_pos_max[t]);
	}
	if (ca == C_ZERO)
		return 0;
	uint64_t mag = 0;
	bool inexact = false, big = ca == C_INF;
	if (!big) {
		struct num x = unpack(f, a);
		if (x.exp >= 64) {
			big = true;
		} else if (x.exp >= 62) {
			mag = x.sig << (x.exp - 62);
		} else {
			int sh = 62 - x.exp;
			uint64_t q, rem, half;
			if (sh > 63) {
				q = 0;
				rem = 1;
				half = 2; /* below one half, not zero */
			} else {
				q = x.sig >> sh;
				rem = x.sig & ((1ull << sh) - 1);
				half = 1ull << (sh - 1);
			}
			mag = q + round_inc(rm, sign, q & 1, rem, half);
			inexact = rem != 0;
		}
	}
	if (big || mag > (sign ? int_neg_max[t] : int_pos_max[t])) {
		*fl |= FFLAG_NV;
		return int_result(to, sign ? (t & 1 ? 0 : int_neg_max[t]) : int_pos_max[t]);
	}
	if (inexact)
		*fl |= FFLAG_NX;
	return int_result(to, sign ? -mag : mag);
}

static uint64_t soft_from_int(const struct fmt *f, uint64_t x, enum fpu_int from, int rm,
			      uint32_t *fl)
{
	bool sign = false;
	uint64_t mag;
	switch (from) {
	case INT_W:
		sign = (int32_t)x < 0;
		mag = sign ? -(uint64_t)(int64_t)(int32_t)x : (uint32_t)x;
		break;
	case INT_WU:
		mag = (uint32_t)x;
		break;
	case INT_L:
		sign = (int64_t)x < 0;
		mag = sign ? -x : x;
		break;
	default:
		mag = x;
		break;
	}
	if (mag == 0)
		return 0;
	int lz = __builtin_clzll(mag);
	if (lz == 0)
		return round_pack(f, sign, 63, shr_jam(mag, 1), rm, fl);
	return round_pack(f, sign, 63 - lz, mag << (lz - 1), rm, fl);
}

/* ---------------------------------------------------------------------- */
/* Host path (x86-64 SSE2 / FMA3)                                         */
/* ---------------------------------------------------------------------- */

#if defined(__x86_64__) && !defined(FPU_FORCE_SOFT)
#define FPU_HOST 1

/* MXCSR: flags IE DE ZE OE UE PE in bits 0..5, masks in 7..12, rounding
 * control in 13..14 (00 nearest, 01 down, 10 up, 11 toward zero). */
#define MXCSR_DEFAULT 0x1f80u
static const uint32_t mxcsr_rm[4] = {
	[RM_RNE] = 0x1f80u, [RM_RTZ] = 0x7f80u, [RM_RDN] = 0x3f80u, [RM_RUP] = 0x5f80u,
};

static inline uint32_t x86_flags(uint32_t st)
{
	return ((st & 0x01u) << 4)    /* IE -> NV */
	       | ((st & 0x04u) << 1)  /* ZE -> DZ */
	       | ((st & 0x08u) >> 1)  /* OE -> OF */
	       | ((st & 0x10u) >> 3)  /* UE -> UF */
	       | ((st & 0x20u) >> 5); /* PE -> NX */
}

static inline bool host_has_fma(void)
{
#ifdef __FMA__
	return true;
#else
	return __builtin_cpu_supports("fma");
#endif
}

/*
 * One asm block per operation: set the mode (clearing the flags), run the
 * instruction, read the flags, and for a directed mode put RNE back. For RNE
 * the restore is skipped: the control bits are already the default ones.
 */
#define HOST_RUN(insn_ops, rm, st, outs, ...)                                              \
	do {                                                                                \
		uint32_t mode_ = mxcsr_rm[rm], def_ = MXCSR_DEFAULT;                        \
		if ((rm) == RM_RNE)                                                         \
			__asm__ volatile("ldmxcsr %[m]\n\t" insn_ops "\n\tstmxcsr %[s]"     \
					 : outs, [s] "=m"(st)                               \
					 : __VA_ARGS__, [m] "m"(mode_));                    \
		else                                                                        \
			__asm__ volatile("ldmxcsr %[m]\n\t" insn_ops                        \
					 "\n\tstmxcsr %[s]\n\tldmxcsr %[d]"                 \
					 : outs, [s] "=m"(st)                               \
					 : __VA_ARGS__, [m] "m"(mode_), [d] "m"(def_));     \
	} while (0)

enum hop { H_ADD, H_SUB, H_MUL, H_DIV };

static inline double host_d2(enum hop op, double x, double y, int rm, uint32_t *st)
{
	switch (op) {
	case H_ADD:
		HOST_RUN("addsd %[y], %[x]", rm, *st, [x] "+x"(x), [y] "x"(y));
		break;
	case H_SUB:
		HOST_RUN("subsd %[y], %[x]", rm, *st, [x] "+x"(x), [y] "x"(y));
		break;
	case H_MUL:
		HOST_RUN("mulsd %[y], %[x]", rm, *st, [x] "+x"(x), [y] "x"(y));
		break;
	case H_DIV:
		HOST_RUN("divsd %[y], %[x]", rm, *st, [x] "+x"(x), [y] "x"(y));
		break;
	}
	return x;
}

static inline float host_s2(enum hop op, float x, float y, int rm, uint32_t *st)
{
	switch (op) {
	case H_ADD:
		HOST_RUN("addss %[y], %[x]", rm, *st, [x] "+x"(x), [y] "x"(y));
		break;
	case H_SUB:
		HOST_RUN("subss %[y], %[x]", rm, *st, [x] "+x"(x), [y] "x"(y));
		break;
	case H_MUL:
		HOST_RUN("mulss %[y], %[x]", rm, *st, [x] "+x"(x), [y] "x"(y));
		break;
	case H_DIV:
		HOST_RUN("divss %[y], %[x]", rm, *st, [x] "+x"(x), [y] "x"(y));
		break;
	}
	return x;
}

/* The same instructions without touching MXCSR (fast path, RNE). */
static inline double quick_d2(enum hop op, double x, double y)
{
	switch (op) {
	case H_ADD:
		__asm__("addsd %1, %0" : "+x"(x) : "x"(y));
		break;
	case H_SUB:
		__asm__("subsd %1, %0" : "+x"(x) : "x"(y));
		break;
	case H_MUL:
		__asm__("mulsd %1, %0" : "+x"(x) : "x"(y));
		break;
	case H_DIV:
		__asm__("divsd %1, %0" : "+x"(x) : "x"(y));
		break;
	}
	return x;
}

static inline float quick_s2(enum hop op, float x, float y)
{
	switch (op) {
	case H_ADD:
		__asm__("addss %1, %0" : "+x"(x) : "x"(y));
		break;
	case H_SUB:
		__asm__("subss %1, %0" : "+x"(x) : "x"(y));
		break;
	case H_MUL:
		__asm__("mulss %1, %0" : "+x"(x) : "x"(y));
		break;
	case H_DIV:
		__asm__("divss %1, %0" : "+x"(x) : "x"(y));
		break;
	}
	return x;
}

/*
 * Whether the fast path's result needs no flag beyond NX (already accrued)
 * and OF: the operands were finite (checked by the caller), so a NaN is
 * impossible except for 0/0, and underflow is only possible for results of
 * magnitude <= the smallest normal (after-rounding tininess can make even
 * exactly 2^emin tiny), which go to the MXCSR path. Sums never underflow
 * inexactly, so add and sub need no fallback.
 */
static inline uint64_t arith_d(enum hop op, uint64_t a, uint64_t b, int rm, uint32_t *flags)
{
	if (rm == RM_RNE && (*flags & FFLAG_NX) && d_isfinite(a) && d_isfinite(b) &&
	    (op != H_DIV || (b & ~D_SIGN))) {
		uint64_t r = d_bits(quick_d2(op, d_val(a), d_val(b)));
		uint64_t ar = r & ~D_SIGN;
		if (ar == D_INF) {
			*flags |= FFLAG_OF;
			return r;
		}
		if (ar > D_MINNORM || op == H_ADD || op == H_SUB)
			return r;
	}
	if ((unsigned)rm < RM_RMM) {
		uint32_t st;
		uint64_t r = d_bits(host_d2(op, d_val(a), d_val(b), rm, &st));
		*flags |= x86_flags(st);
		return d_isnan(r) ? D_CANON : r;
	}
	switch (op) {
	case H_ADD:
		return soft_add(&F64, a, b, rm, flags);
	case H_SUB:
		return soft_add(&F64, a, b ^ (d_isnan(b) ? 0 : D_SIGN), rm, flags);
	case H_MUL:
		return soft_mul(&F64, a, b, rm, flags);
	default:
		return soft_div(&F64, a, b, rm, flags);
	}
}

static inline uint64_t arith_s(enum hop op, uint64_t a64, uint64_t b64, int rm, uint32_t *flags)
{
	uint32_t a = unbox(a64), b = unbox(b64);
	if (rm == RM_RNE && (*flags & FFLAG_NX) && s_isfinite(a) && s_isfinite(b) &&
	    (op != H_DIV || (b & ~S_SIGN))) {
		uint32_t r = s_bits(quick_s2(op, s_val(a), s_val(b)));
		uint32_t ar = r & ~S_SIGN;
		if (ar == S_INF) {
			*flags |= FFLAG_OF;
			return box(r);
		}
		if (ar > S_MINNORM || op == H_ADD || op == H_SUB)
			return box(r);
	}
	if ((unsigned)rm < RM_RMM) {
		uint32_t st;
		uint32_t r = s_bits(host_s2(op, s_val(a), s_val(b), rm, &st));
		*flags |= x86_flags(st);
		return box(s_isnan(r) ? S_CANON : r);
	}
	switch (op) {
	case H_ADD:
		return box((uint32_t)soft_add(&F32, a, b, rm, flags));
	case H_SUB:
		return box((uint32_t)soft_add(&F32, a, b ^ (s_isnan(b) ? 0 : S_SIGN), rm, flags));
	case H_MUL:
		return box((uint32_t)soft_mul(&F32, a, b, rm, flags));
	default:
		return box((uint32_t)soft_div(&F32, a, b, rm, flags));
	}
}

#else /* software only */

enum hop { H_ADD, H_SUB, H_MUL, H_DIV };

static uint64_t soft_arith(const struct fmt *f, enum hop op, uint64_t a, uint64_t b, int rm,
			   uint32_t *flags)
{
	switch (op) {
	case H_ADD:
		return soft_add(f, a, b, rm, flags);
	case H_SUB:
		return soft_add(f, a, classify(f, b) >= C_QNAN ? b : b ^ sign_bit(f), rm, flags);
	case H_MUL:
		return soft_mul(f, a, b, rm, flags);
	default:
		return soft_div(f, a, b, rm, flags);
	}
}

static inline uint64_t arith_d(enum hop op, uint64_t a, uint64_t b, int rm, uint32_t *flags)
{
	return soft_arith(&F64, op, a, b, rm, flags);
}

static inline uint64_t arith_s(enum hop op, uint64_t a, uint64_t b, int rm, uint32_t *flags)
{
	return box((uint32_t)soft_arith(&F32, op, unbox(a), unbox(b), rm, flags));
}

#endif

/* ---------------------------------------------------------------------- */
/* Public interface: arithmetic                                           */
/* ---------------------------------------------------------------------- */

uint64_t fpu_add_s(uint64_t a, uint64_t b, int rm, uint32_t *flags)
{
	return arith_s(H_ADD, a, b, rm, flags);
}

uint64_t fpu_sub_s(uint64_t a, uint64_t b, int rm, uint32_t *flags)
{
	return arith_s(H_SUB, a, b, rm, flags);
}

uint64_t fpu_mul_s(uint64_t a, uint64_t b, int rm, uint32_t *flags)
{
	return arith_s(H_MUL, a, b, rm, flags);
}

uint64_t fpu_div_s(uint64_t a, uint64_t b, int rm, uint32_t *flags)
{
	return arith_s(H_DIV, a, b, rm, flags);
}

uint64_t fpu_add_d(uint64_t a, uint64_t b, int rm, uint32_t *flags)
{
	return arith_d(H_ADD, a, b, rm, flags);
}

uint64_t fpu_sub_d(uint64_t a, uint64_t b, int rm, uint32_t *flags)
{
	return arith_d(H_SUB, a, b, rm, flags);
}

uint64_t fpu_mul_d(uint64_t a, uint64_t b, int rm, uint32_t *flags)
{
	return arith_d(H_MUL, a, b, rm, flags);
}

uint64_t fpu_div_d(uint64_t a, uint64_t b, int rm, uint32_t *flags)
{
	return arith_d(H_DIV, a, b, rm, flags);
}

uint64_t fpu_sqrt_s(uint64_t a64, int rm, uint32_t *flags)
{
	uint32_t a = unbox(a64);
#ifdef FPU_HOST
	/* sqrt of a non-negative finite value can only be inexact. */
	if (rm == RM_RNE && (*flags & FFLAG_NX) && a < S_INF) {
		float x = s_val(a);
		__asm__("sqrtss %0, %0" : "+x"(x));
		return box(s_bits(x));
	}
	if ((unsigned)rm < RM_RMM) {
		uint32_t st;
		float x = s_val(a);
		HOST_RUN("sqrtss %[x], %[x]", rm, st, [x] "+x"(x), [unused] "i"(0));
		*flags |= x86_flags(st);
		uint32_t r = s_bits(x);
		return box(s_isnan(r) ? S_CANON : r);
	}
#endif
	return box((uint32_t)soft_sqrt(&F32, a, rm, flags));
}

uint64_t fpu_sqrt_d(uint64_t a, int rm, uint32_t *flags)
{
#ifdef FPU_HOST
	if (rm == RM_RNE && (*flags & FFLAG_NX) && a < D_INF) {
		double x = d_val(a);
		__asm__("sqrtsd %0, %0" : "+x"(x));
		return d_bits(x);
	}
	if ((unsigned)rm < RM_RMM) {
		uint32_t st;
		double x = d_val(a);
		HOST_RUN("sqrtsd %[x], %[x]", rm, st, [x] "+x"(x), [unused] "i"(0));
		*flags |= x86_flags(st);
		uint64_t r = d_bits(x);
		return d_isnan(r) ? D_CANON : r;
	}
#endif
	return soft_sqrt(&F64, a, rm, flags);
}

/* Sign flips for the four fused forms (F: computational instructions):
 * MSUB a*b-c, NMSUB -(a*b)+c, NMADD -(a*b)-c. The negations are exact and
 * are applied to the inputs (the product's sign via a); NaN results are
 * canonical anyway. */
static inline void fma_signs(enum fpu_fma op, uint64_t sign, uint64_t *a, uint64_t *c)
{
	if (op == FMA_NMSUB || op == FMA_NMADD)
		*a ^= sign;
	if (op == FMA_MSUB || op == FMA_NMADD)
		*c ^= sign;
}

uint64_t fpu_fma_s(uint64_t a64, uint64_t b64, uint64_t c64, enum fpu_fma op, int rm,
		   uint32_t *flags)
{
	uint64_t a = unbox(a64), b = unbox(b64), c = unbox(c64);
	fma_signs(op, S_SIGN, &a, &c);
#ifdef FPU_HOST
	if ((unsigned)rm < RM_RMM && host_has_fma() && !s_isnan((uint32_t)a) &&
	    !s_isnan((uint32_t)b) && !s_isnan((uint32_t)c)) {
		float x = s_val((uint32_t)a), y = s_val((uint32_t)b), z = s_val((uint32_t)c);
		if (rm == RM_RNE && (*flags & FFLAG_NX) && s_isfinite((uint32_t)a) &&
		    s_isfinite((uint32_t)b) && s_isfinite((uint32_t)c)) {
			float r = z;
			__asm__("vfmadd231ss %2, %1, %0" : "+x"(r) : "x"(x), "x"(y));
			uint32_t ar = s_bits(r) & ~S_SIGN;
			if (ar == S_INF) {
				*flags |= FFLAG_OF;
				return box(s_bits(r));
			}
			if (ar > S_MINNORM)
				return box(s_bits(r));
		}
		uint32_t st;
		HOST_RUN("vfmadd231ss %[y], %[x], %[z]", rm, st, [z] "+x"(z), [x] "x"(x), [y] "x"(y));
		*flags |= x86_flags(st);
		uint32_t r = s_bits(z);
		return box(s_isnan(r) ? S_CANON : r);
	}
#endif
	return box((uint32_t)soft_fma(&F32, a, b, c, rm, flags));
}

uint64_t fpu_fma_d(uint64_t a, uint64_t b, uint64_t c, enum fpu_fma op, int rm, uint32_t *flags)
{
	fma_signs(op, D_SIGN, &a, &c);
#ifdef FPU_HOST
	if ((unsigned)rm < RM_RMM && host_has_fma() && !d_isnan(a) && !d_isnan(b) &&
	    !d_isnan(c)) {
		double x = d_val(a), y = d_val(b), z = d_val(c);
		if (rm == RM_RNE && (*flags & FFLAG_NX) && d_isfinite(a) && d_isfinite(b) &&
		    d_isfinite(c)) {
			double r = z;
			__asm__("vfmadd231sd %2, %1, %0" : "+x"(r) : "x"(x), "x"(y));
			uint64_t ar = d_bits(r) & ~D_SIGN;
			if (ar == D_INF) {
				*flags |= FFLAG_OF;
				return d_bits(r);
			}
			if (ar > D_MINNORM)
				return d_bits(r);
		}
		uint32_t st;
		HOST_RUN("vfmadd231sd %[y], %[x], %[z]", rm, st, [z] "+x"(z), [x] "x"(x), [y] "x"(y));
		*flags |= x86_flags(st);
		uint64_t r = d_bits(z);
		return d_isnan(r) ? D_CANON : r;
	}
#endif
	return soft_fma(&F64, a, b, c, rm, flags);
}

/* ---------------------------------------------------------------------- */
/* Sign injection, min/max, compare, classify                             */
/* ---------------------------------------------------------------------- */

uint64_t fpu_sgnj_s(uint64_t a64, uint64_t b64, int kind)
{
	uint32_t a = unbox(a64), b = unbox(b64), s;
	if (kind == 0)
		s = b;
	else if (kind == 1)
		s = ~b;
	else
		s = a ^ b;
	return box((a & ~S_SIGN) | (s & S_SIGN));
}

uint64_t fpu_sgnj_d(uint64_t a, uint64_t b, int kind)
{
	uint64_t s;
	if (kind == 0)
		s = b;
	else if (kind == 1)
		s = ~b;
	else
		s = a ^ b;
	return (a & ~D_SIGN) | (s & D_SIGN);
}

/* Order key: for non-NaN values, unsigned comparison of keys is numeric
 * comparison with -0 < +0 (F 2.2: FMIN/FMAX, IEEE 754-2019 minimumNumber). */
static inline uint64_t order_key(uint64_t x, uint64_t sign)
{
	return (x & sign) ? ~x : x | sign;
}

HOT uint64_t minmax(const struct fmt *f, uint64_t a, uint64_t b, bool max, uint32_t *fl)
{
	enum cls ca = classify(f, a), cb = classify(f, b);
	if (ca == C_SNAN || cb == C_SNAN)
		*fl |= FFLAG_NV;
	if (cls_nan(ca))
		return cls_nan(cb) ? f->canon : b;
	if (cls_nan(cb))
		return a;
	uint64_t mask = f->width == 64 ? ~0ull : 0xffffffffull;
	uint64_t ka = order_key(a, sign_bit(f)) & mask, kb = order_key(b, sign_bit(f)) & mask;
	return (ka < kb) != max ? a : b;
}

uint64_t fpu_min_s(uint64_t a, uint64_t b, uint32_t *flags)
{
	return box((uint32_t)minmax(&F32, unbox(a), unbox(b), false, flags));
}

uint64_t fpu_max_s(uint64_t a, uint64_t b, uint32_t *flags)
{
	return box((uint32_t)minmax(&F32, unbox(a), unbox(b), true, flags));
}

uint64_t fpu_min_d(uint64_t a, uint64_t b, uint32_t *flags)
{
	return minmax(&F64, a, b, false, flags);
}

uint64_t fpu_max_d(uint64_t a, uint64_t b, uint32_t *flags)
{
	return minmax(&F64, a, b, true, flags);
}

/* FEQ is a quiet comparison (NV only for signalling NaNs); FLT and FLE are
 * signalling (NV for any NaN). Any NaN compares false (F: "Single-Precision
 * Floating-Point Compare Instructions"). */
HOT uint64_t compare(const struct fmt *f, uint64_t a, uint64_t b, enum fpu_cmp op, uint32_t *fl)
{
	enum cls ca = classify(f, a), cb = classify(f, b);
	if (cls_nan(ca) || cls_nan(cb)) {
		if (op != CMP_EQ || ca == C_SNAN || cb == C_SNAN)
			*fl |= FFLAG_NV;
		return 0;
	}
	if (ca == C_ZERO && cb == C_ZERO)
		return op != CMP_LT;
	if (op == CMP_EQ)
		return a == b;
	uint64_t ka = order_key(a, sign_bit(f)), kb = order_key(b, sign_bit(f));
	if (f->width == 32) {
		ka &= 0xffffffffu;
		kb &= 0xffffffffu;
	}
	return op == CMP_LT ? ka < kb : ka <= kb;
}

uint64_t fpu_cmp_s(uint64_t a, uint64_t b, enum fpu_cmp op, uint32_t *flags)
{
	return compare(&F32, unbox(a), unbox(b), op, flags);
}

uint64_t fpu_cmp_d(uint64_t a, uint64_t b, enum fpu_cmp op, uint32_t *flags)
{
	return compare(&F64, a, b, op, flags);
}

/* FCLASS bit positions (F: "Single-Precision Floating-Point Classify
 * Instruction", table "Format of result of FCLASS"). */
HOT uint64_t fclass(const struct fmt *f, uint64_t a)
{
	bool neg = (a & sign_bit(f)) != 0;
	switch (classify(f, a)) {
	case C_ZERO:
		return neg ? 1u << 3 : 1u << 4;
	case C_INF:
		return neg ? 1u << 0 : 1u << 7;
	case C_SNAN:
		return 1u << 8;
	case C_QNAN:
		return 1u << 9;
	default:
		break;
	}
	bool sub = abs_bits(f, a) < (1ull << (f->p - 1));
	if (neg)
		return sub ? 1u << 2 : 1u << 1;
	return sub ? 1u << 5 : 1u << 6;
}

uint64_t fpu_class_s(uint64_t a)
{
	return fclass(&F32, unbox(a));
}

uint64_t fpu_class_d(uint64_t a)
{
	return fclass(&F64, a);
}

/* ---------------------------------------------------------------------- */
/* Conversions                                                            */
/* ---------------------------------------------------------------------- */

uint64_t fpu_s_to_int(uint64_t a, enum fpu_int to, int rm, uint32_t *flags)
{
	return soft_to_int(&F32, unbox(a), to, rm, flags);
}

uint64_t fpu_d_to_int(uint64_t a, enum fpu_int to, int rm, uint32_t *flags)
{
	return soft_to_int(&F64, a, to, rm, flags);
}

uint64_t fpu_int_to_s(uint64_t x, enum fpu_int from, int rm, uint32_t *flags)
{
	/* Exact cases (|x| < 2^24) through the host's int->float conversion. */
	if (from == INT_W && (uint32_t)x + 0x1000000u <= 0x2000000u)
		return box(s_bits((float)(int32_t)x));
	if (from == INT_L && x + 0x1000000u <= 0x2000000u)
		return box(s_bits((float)(int64_t)x));
	return box((uint32_t)soft_from_int(&F32, x, from, rm, flags));
}

uint64_t fpu_int_to_d(uint64_t x, enum fpu_int from, int rm, uint32_t *flags)
{
	/* Every 32-bit integer, and 64-bit ones below 2^53, convert exactly. */
	switch (from) {
	case INT_W:
		return d_bits((double)(int32_t)x);
	case INT_WU:
		return d_bits((double)(uint32_t)x);
	case INT_L:
		if (x + (1ull << 53) <= (1ull << 54))
			return d_bits((double)(int64_t)x);
		break;
	case INT_LU:
		if (x <= (1ull << 53))
			return d_bits((double)(int64_t)x);
		break;
	}
	return soft_from_int(&F64, x, from, rm, flags);
}

uint64_t fpu_d_to_s(uint64_t a, int rm, uint32_t *flags)
{
#ifdef FPU_HOST
	if ((unsigned)rm < RM_RMM && !d_isnan(a)) {
		uint32_t st;
		double x = d_val(a);
		float r;
		HOST_RUN("cvtsd2ss %[x], %[r]", rm, st, [r] "=x"(r), [x] "x"(x));
		*flags |= x86_flags(st);
		return box(s_bits(r));
	}
#endif
	return box((uint32_t)soft_convert(&F32, &F64, a, rm, flags));
}

uint64_t fpu_s_to_d(uint64_t a, uint32_t *flags)
{
	uint32_t x = unbox(a);
	if (s_isnan(x)) {
		if (s_issnan(x))
			*flags |= FFLAG_NV;
		return D_CANON;
	}
	/* Widening is exact: rebuild the bits (subnormals normalize). */
	return soft_convert(&F64, &F32, x, RM_RNE, flags);
}

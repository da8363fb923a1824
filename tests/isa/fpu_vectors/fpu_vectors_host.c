/*
 * Host half of the FPU differential check (see fpu_vectors.h and run.sh).
 *
 *   fpu_vectors_host gen --seed S --count N > vectors.bin
 *       Writes N operand vectors: every operation of src/engine/fpu.h, every
 *       rounding mode 0..4, operands drawn from special values (zeros,
 *       infinities, quiet and signalling NaNs, subnormals, extreme normals,
 *       integers and halfway values near 2^31/2^32/2^63/2^64), random bit
 *       patterns, structured values (clustered exponents, sparse or truncated
 *       significands, so that exact results and rounding ties are common),
 *       operands related to the previous one (neighbours, products and
 *       quotients near the underflow and overflow thresholds, addends that
 *       cancel a product) and badly NaN-boxed singles.
 *
 *   fpu_vectors_host check vectors.bin reference.bin [--max-report K]
 *       Evaluates each vector with fpu.c twice, once with the accrued flags
 *       clear and once with NX already set (the fast path), and compares the
 *       results and flags with the reference (the real instruction under
 *       qemu-riscv64). Prints each mismatch (op, rm, inputs, expected, got)
 *       and a summary; exits 1 if any vector differs.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fpu.h"
#include "fpu_vectors.h"

struct op_info {
	const char *mnem;
	enum fpv_kind kind;
	char fmt;
};

static const struct op_info ops[OP_COUNT] = {
#define INFO(id, mnem, kind, fmt) [OP_##id] = { mnem, kind, fmt },
	FPV_OPS(INFO)
#undef INFO
};

static const char *const rm_names[5] = { "rne", "rtz", "rdn", "rup", "rmm" };

/* ---------------------------------------------------------------------- */
/* Random numbers (xoshiro256**, seeded through splitmix64)               */
/* ---------------------------------------------------------------------- */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&seed);
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t x = s[1] * 5;
	uint64_t res = ((x << 7) | (x >> 57)) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return res;
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return rng_next(r) % n;
}

static int range(struct rng *r, int lo, int hi)
{
	return lo + (int)below(r, (uint64_t)(hi - lo + 1));
}

/* ---------------------------------------------------------------------- */
/* Operand generation                                                     */
/* ---------------------------------------------------------------------- */

struct fdesc {
	int width, p, bias, emax_biased; /* emax_biased: all-ones exponent */
};

static const struct fdesc FS = { 32, 24, 127, 255 };
static const struct fdesc FD = { 64, 53, 1023, 2047 };

static uint64_t fmake(const struct fdesc *f, bool sign, int bexp, uint64_t frac)
{
	uint64_t fm = (1ull << (f->p - 1)) - 1;
	return ((uint64_t)sign << (f->width - 1)) | ((uint64_t)bexp << (f->p - 1)) | (frac & fm);
}

static int fexp(const struct fdesc *f, uint64_t x)
{
	return (int)((x >> (f->p - 1)) & (uint64_t)f->emax_biased);
}

static uint64_t gen_frac(struct rng *r, const struct fdesc *f)
{
	uint64_t fm = (1ull << (f->p - 1)) - 1, x = rng_next(r) & fm;
	switch (below(r, 6)) {
	case 0:
	case 1:
		return x;
	case 2: /* truncated: many trailing zeros, so results are often exact or ties */
		return x & ~((1ull << below(r, f->p)) - 1) & fm;
	case 3: { /* sparse */
		uint64_t v = 0;
		int n = range(r, 0, 3);
		for (int i = 0; i < n; i++)
			v |= 1ull << below(r, f->p - 1);
		return v;
	}
	case 4: { /* dense */
		uint64_t hole = 1ull << below(r, f->p - 1);
		return (fm ^ hole) & ~((1ull << below(r, 4)) - 1);
	}
	default: { /* a short odd significand at a random place */
		uint64_t m = (rng_next(r) & 0xff) | 1;
		return m << below(r, f->p - 8);
	}
	}
}

static int gen_bexp(struct rng *r, const struct fdesc *f)
{
	switch (below(r, 7)) {
	case 0:
	case 1:
	case 2:
		return range(r, f->bias - 24, f->bias + 24);
	case 3:
		return range(r, 0, f->p + 2);
	case 4:
		return range(r, f->emax_biased - f->p - 2, f->emax_biased - 1);
	case 5:
		return range(r, f->bias + 20, f->bias + 66); /* integer conversion limits */
	default:
		return range(r, 0, f->emax_biased - 1);
	}
}

static const uint32_t s_special[] = {
	0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7fc00001,
	0x7fffffff, 0xffffffff, 0x7f800001, 0xff800001, 0x7fa00000, 0x7fbfffff, 0x00000001,
	0x80000001, 0x007fffff, 0x807fffff, 0x00800000, 0x80800000, 0x00800001, 0x7f7fffff,
	0xff7fffff, 0x7f7ffffe, 0x3f800000, 0xbf800000, 0x3f000000, 0xbf000000, 0x3fc00000,
	0xbfc00000, 0x40200000, 0xc0200000, 0x3effffff, 0x3f000001, 0x4effffff, 0x4f000000,
	0x4f000001, 0xcf000000, 0xcf000001, 0xceffffff, 0x4f7fffff, 0x4f800000, 0x4f800001,
	0x5effffff, 0x5f000000, 0x5f000001, 0xdf000000, 0xdf000001, 0x5f7fffff, 0x5f800000,
	0x4b800000, 0x4b800001, 0x4b000000, 0x4affffff, 0x34000000, 0x33800000, 0x00400000,
	0x01000000, 0x7e800000, 0x7f000000, 0xbf7fffff, 0x3f7fffff, 0x40490fdb,
};

static const uint64_t d_special[] = {
	0x0000000000000000, 0x8000000000000000, 0x7ff0000000000000, 0xfff0000000000000,
	0x7ff8000000000000, 0xfff8000000000000, 0x7ff8000000000001, 0x7fffffffffffffff,
	0xffffffffffffffff, 0x7ff0000000000001, 0xfff0000000000001, 0x7ff4000000000000,
	0x7ff7ffffffffffff, 0x0000000000000001, 0x8000000000000001, 0x000fffffffffffff,
	0x800fffffffffffff, 0x0010000000000000, 0x8010000000000000, 0x0010000000000001,
	0x7fefffffffffffff, 0xffefffffffffffff, 0x7feffffffffffffe, 0x3ff0000000000000,
	0xbff0000000000000, 0x3fe0000000000000, 0xbfe0000000000000, 0x3ff8000000000000,
	0xbff8000000000000, 0x4004000000000000, 0xc004000000000000, 0x3fdfffffffffffff,
	0x3fe0000000000001, 0x41dfffffffc00000, 0x41dfffffffe00000, 0x41dfffffffffffff,
	0x41e0000000000000, 0x41e0000000000001, 0xc1e0000000000000, 0xc1e0000000100000,
	0xc1e0000000200000, 0xc1dfffffffffffff, 0x41efffffffe00000, 0x41effffffff00000,
	0x41efffffffffffff, 0x41f0000000000000, 0x41f0000000000001, 0x43dfffffffffffff,
	0x43e0000000000000, 0x43e0000000000001, 0xc3e0000000000000, 0xc3e0000000000001,
	0x43efffffffffffff, 0x43f0000000000000, 0x4330000000000000, 0x4330000000000001,
	0x432fffffffffffff, 0x4340000000000000, 0x3ca0000000000000, 0x3c90000000000000,
	0x0008000000000000, 0x0020000000000000, 0x7fd0000000000000, 0x7fe0000000000000,
	0x3810000000000000, 0x380fffffffffffff, 0x36a0000000000000, 0x3690000000000000,
	0x47efffffe0000000, 0x47efffff10000000, 0x47efffff00000000, 0x47f0000000000000,
	0x36a0000000000001, 0x369fffffffffffff, 0x3800000000000000, 0x400921fb54442d18,
};

static uint64_t gen_special(struct rng *r, const struct fdesc *f)
{
	if (f->width == 32)
		return s_special[below(r, sizeof(s_special) / sizeof(s_special[0]))];
	return d_special[below(r, sizeof(d_special) / sizeof(d_special[0]))];
}

static double dval(uint64_t u)
{
	double d;
	memcpy(&d, &u, 8);
	return d;
}

static uint64_t dbits(double d)
{
	uint64_t u;
	memcpy(&u, &d, 8);
	return u;
}

static float fval(uint32_t u)
{
	float d;
	memcpy(&d, &u, 4);
	return d;
}

static uint32_t fbits(float d)
{
	uint32_t u;
	memcpy(&u, &d, 4);
	return u;
}

/* A value near an integer conversion boundary: +-(2^k + j) or +-(n + 1/2). */
static uint64_t gen_intish(struct rng *r, const struct fdesc *f)
{
	static const int ks[] = { 0, 1, 2, 23, 24, 30, 31, 32, 33, 52, 53, 62, 63, 64, 65 };
	int k = ks[below(r, sizeof(ks) / sizeof(ks[0]))];
	bool neg = below(r, 2);
	double v;
	switch (below(r, 3)) {
	case 0: /* n + 1/2 and friends, n small */
		v = (double)range(r, 0, 6);
		v += (double)range(r, 0, 4) * 0.25;
		break;
	case 1: /* 2^k plus or minus a few units in the last place */
		v = ldexp(1.0, k);
		if (f->width == 32) {
			uint32_t b = fbits((float)v) + (uint32_t)range(r, -3, 3);
			v = (double)fval(b);
		} else {
			v = dval(dbits(v) + (uint64_t)(int64_t)range(r, -3, 3));
		}
		break;
	default: /* 2^k - 1/2 style halfway values where representable */
		v = (double)(1ull << (k & 31)) + (double)range(r, -4, 4) * 0.5;
		break;
	}
	if (neg)
		v = -v;
	if (f->width == 32)
		return fbits((float)v);
	return dbits(v);
}

/* The few classes that matter most for special-case logic, drawn often
 * enough that every combination of them appears (inf * 0 + qNaN, ...). */
static uint64_t gen_class_rep(struct rng *r, const struct fdesc *f)
{
	uint64_t sign = below(r, 2) ? 1ull << (f->width - 1) : 0;
	uint64_t qbit = 1ull << (f->p - 2);
	switch (below(r, 8)) {
	case 0:
		return sign;                                          /* zero */
	case 1:
		return sign | fmake(f, 0, f->emax_biased, 0);       /* inf */
	case 2:
		return fmake(f, 0, f->emax_biased, qbit);            /* canonical NaN */
	case 3:
		return sign | fmake(f, 0, f->emax_biased, 1 + below(r, 4)); /* sNaN */
	case 4:
		return sign | 1;                                      /* min subnormal */
	case 5:
		return sign | fmake(f, 0, f->emax_biased - 1, ~0ull); /* max */
	case 6:
		return sign | fmake(f, 0, 1, 0);                      /* min normal */
	default:
		return sign | fmake(f, 0, f->bias, 0);                /* one */
	}
}

static uint64_t gen_fp_base(struct rng *r, const struct fdesc *f)
{
	if (below(r, 10) == 0)
		return gen_class_rep(r, f);
	switch (below(r, 20)) {
	case 0:
	case 1:
	case 2:
	case 3:
		return gen_special(r, f);
	case 4:
	case 5:
	case 6:
		return f->width == 32 ? (uint32_t)rng_next(r) : rng_next(r);
	case 7:
	case 8:
		return gen_intish(r, f);
	default: {
		bool sign = below(r, 2);
		int e = gen_bexp(r, f);
		return fmake(f, sign, e, gen_frac(r, f));
	}
	}
}

/* An operand chosen in relation to a previous one. */
static uint64_t gen_related(struct rng *r, const struct fdesc *f, uint64_t prev, enum fpv_op op)
{
	int e = fexp(f, prev);
	bool sign = below(r, 2);
	const char *m = ops[op].mnem;
	bool mul = m[1] == 'm' && m[2] == 'u', div = m[1] == 'd' && m[2] == 'i';
	bool fused = strstr(m, "madd") || strstr(m, "msub");
	switch (below(r, 5)) {
	case 0: { /* neighbour (possibly the negation: cancellation) */
		uint64_t x = prev + (uint64_t)(int64_t)range(r, -2, 2);
		return x ^ (below(r, 2) ? 1ull << (f->width - 1) : 0);
	}
	case 1: /* same binade or close */
		e += range(r, -2, 2);
		return fmake(f, sign, e < 0 ? 0 : e > f->emax_biased - 1 ? f->emax_biased - 1 : e,
			     gen_frac(r, f));
	case 2: /* exponent gap around the precision: ties in sums */
		e -= f->p + range(r, -2, 2);
		return fmake(f, sign, e < 0 ? 0 : e, gen_frac(r, f));
	default: /* products / quotients near the underflow or overflow thresholds */
		if (mul || fused) {
			int t = below(r, 2) ? f->bias + 1 - e + range(r, -3, 1) : 3 * f->bias - e + range(r, -1, 2);
			t -= below(r, 3) ? 0 : range(r, 0, f->p);
			if (t < 0)
				t = 0;
			if (t > f->emax_biased - 1)
				t = f->emax_biased - 1;
			return fmake(f, sign, t, gen_frac(r, f));
		}
		if (div) {
			int t = below(r, 2) ? e + f->bias - 1 + range(r, -1, 3) : e - f->bias + range(r, -2, 1);
			t += below(r, 3) ? 0 : range(r, 0, f->p);
			if (t < 0)
				t = 0;
			if (t > f->emax_biased - 1)
				t = f->emax_biased - 1;
			return fmake(f, sign, t, gen_frac(r, f));
		}
		e = gen_bexp(r, f);
		return fmake(f, sign, e, gen_frac(r, f));
	}
}

static uint64_t to_fmt(const struct fdesc *f, long double v)
{
	return f->width == 32 ? fbits((float)v) : dbits((double)v);
}

static long double from_fmt(const struct fdesc *f, uint64_t x)
{
	return f->width == 32 ? (long double)fval((uint32_t)x) : (long double)dval(x);
}

/* Squares (exact square roots) and their neighbours. */
static uint64_t gen_square(struct rng *r, const struct fdesc *f)
{
	uint64_t half = rng_next(r) & ((1ull << ((f->p + 1) / 2)) - 1);
	int e = range(r, -40, 40);
	if (f->width == 32) {
		float y = (float)(half | 1) * fval((uint32_t)(127 + e) << 23);
		return fbits(y * y) + (uint32_t)range(r, -1, 1);
	}
	double y = (double)(half | 1) * dval((uint64_t)(1023 + e * 8) << 52);
	return dbits(y * y) + (uint64_t)(int64_t)range(r, -1, 1);
}

/* An addend that (nearly) cancels the product a*b. */
static uint64_t gen_cancel(struct rng *r, const struct fdesc *f, uint64_t a, uint64_t b)
{
	if (isnan(from_fmt(f, a) * from_fmt(f, b)))
		return gen_fp_base(r, f); /* NaN signs from host arithmetic vary */
	if (f->width == 32) {
		double p = (double)fval((uint32_t)a) * (double)fval((uint32_t)b);
		uint32_t c = fbits((float)-p);
		switch (below(r, 3)) {
		case 0:
			return c;
		case 1:
			return c + (uint32_t)range(r, -2, 2);
		default: /* half an ulp of the product: a tie */
			return fbits((float)(p * 0x1p-24 * (below(r, 2) ? 1 : -1)));
		}
	}
	double p = dval(a) * dval(b);
	uint64_t c = dbits(-p);
	switch (below(r, 3)) {
	case 0:
		return c;
	case 1:
		return c + (uint64_t)(int64_t)range(r, -2, 2);
	default:
		return dbits(p * 0x1p-53 * (below(r, 2) ? 1 : -1));
	}
}

/*
 * Results aimed at the hard spots: just below 2^emin (where tininess after
 * rounding differs from before rounding), ties in the subnormal range, the
 * overflow threshold, and the tiny range in general. Operands are solved
 * for in 64-bit long double and then perturbed by a few units.
 */
static long double gen_target(struct rng *r, const struct fdesc *f)
{
	long double u = (long double)(rng_next(r) >> 11) * 0x1p-53L; /* [0, 1) */
	int emin = 1 - f->bias, emax = f->bias;
	long double t;
	switch (below(r, 4)) {
	case 0:
		t = ldexpl(1.0L - ldexpl(u * 2.0L, -(f->p + 1)), emin);
		break;
	case 1:
		t = ldexpl((long double)range(r, 0, 8) + 0.5L + (u - 0.5L) * 0x1p-6L, emin - f->p + 1);
		break;
	case 2:
		t = ldexpl(2.0L - ldexpl(0.5L + u, -f->p), emax);
		break;
	default:
		t = ldexpl(1.0L + u, emin - range(r, 0, f->p));
		break;
	}
	return below(r, 2) ? -t : t;
}

static uint64_t nudge(struct rng *r, uint64_t x)
{
	return below(r, 2) ? x : x + (uint64_t)(int64_t)range(r, -2, 2);
}

static uint64_t gen_finite(struct rng *r, const struct fdesc *f)
{
	bool sign = below(r, 2);
	int e = range(r, 1, f->emax_biased - 1);
	return fmake(f, sign, e, gen_frac(r, f));
}

static bool gen_targeted(struct rng *r, const struct fdesc *f, struct fpv_vec *v)
{
	const char *m = ops[v->op].mnem;
	long double t = gen_target(r, f);
	if (ops[v->op].kind == K_FFF_F_RM) {
		long double s1 = (m[1] == 'n') ? -1.0L : 1.0L;
		long double s2 = (strstr(m, "nmadd") || (m[1] == 'm' && strstr(m, "msub"))) ? -1.0L : 1.0L;
		v->a = gen_finite(r, f);
		long double k = (long double)range(r, -8, 8) + 0.5L;
		v->b = nudge(r, to_fmt(f, t * k / from_fmt(f, v->a)));
		long double p = from_fmt(f, v->a) * from_fmt(f, v->b);
		v->c = nudge(r, to_fmt(f, (t - s1 * p) / s2));
		return true;
	}
	v->b = gen_finite(r, f);
	long double b = from_fmt(f, v->b);
	if (!strncmp(m, "fmul", 4))
		v->a = to_fmt(f, t / b);
	else if (!strncmp(m, "fdiv", 4))
		v->a = to_fmt(f, t * b);
	else if (!strncmp(m, "fadd", 4))
		v->a = to_fmt(f, t - b);
	else if (!strncmp(m, "fsub", 4))
		v->a = to_fmt(f, t + b);
	else
		return false;
	v->a = nudge(r, v->a);
	return true;
}

static uint64_t fix_box(struct rng *r, const struct fdesc *f, uint64_t x)
{
	if (f->width == 64)
		return x;
	x &= 0xffffffffu;
	if (below(r, 40) == 0) /* badly boxed single */
		return x | ((uint64_t)(uint32_t)(rng_next(r) & 0xfffffffe) << 32);
	return x | 0xffffffff00000000ull;
}

static uint64_t gen_int(struct rng *r, bool w, int p)
{
	static const uint64_t special[] = {
		0, 1, 2, 3, 0xffffffffffffffff, 0xfffffffffffffffe, 0x7fffffff, 0x80000000,
		0xffffffff, 0xffffffff80000000, 0x7fffffffffffffff, 0x8000000000000000,
		0x1000000, 0x1000001, 0x1000003, 0x2000001, 0x20000000000001, 0x20000000000003,
		0x40000000000001, 0xffffff, 0x1fffffffffffff, 0xfffffffffe000000, 0x7fffffbf,
		0x7fffff80, 0xffffff80, 0xffffffc0, 0x7ffffffffffffdff, 0x7ffffffffffffc00,
		0xfffffffffffffc00, 0xfffffffffffff800, 0x8000000000000400,
	};
	uint64_t x;
	switch (below(r, 6)) {
	case 0:
		x = special[below(r, sizeof(special) / sizeof(special[0]))];
		break;
	case 1:
		x = rng_next(r);
		break;
	case 2: { /* exact tie at precision p: p-bit significand, then binary 1000... */
		int width = w ? 32 : 64;
		if (width - p - 1 < 1) { /* every 32-bit integer is a double */
			x = rng_next(r);
			break;
		}
		int k = range(r, 1, width - p - 1);
		uint64_t m = (rng_next(r) & ((1ull << (p - 1)) - 1)) | (1ull << (p - 1));
		x = (m << k) | (1ull << (k - 1));
		if (below(r, 2))
			x |= 1ull << range(r, 0, k - 1); /* just above the tie */
		if (below(r, 2))
			x = -x;
		break;
	}
	default: { /* random bit length */
		int len = range(r, 1, w ? 32 : 64);
		x = rng_next(r) & (len == 64 ? ~0ull : (1ull << len) - 1);
		x |= 1ull << (len - 1);
		if (below(r, 2))
			x = -x;
		break;
	}
	}
	if (w) {
		x &= 0xffffffffu;
		if (below(r, 2))
			x |= rng_next(r) << 32; /* upper half must be ignored */
		else
			x = (uint64_t)(int64_t)(int32_t)x;
	}
	return x;
}

static void gen_vec(struct rng *r, struct fpv_vec *v)
{
	v->op = (uint32_t)below(r, OP_COUNT);
	v->rm = (uint32_t)below(r, 5);
	v->rm |= below(r, 2) ? FPV_STATIC_RM : 0; /* separate statements: fixed RNG order */
	const struct op_info *oi = &ops[v->op];
	const struct fdesc *f = oi->fmt == 'S' ? &FS : &FD;
	v->a = v->b = v->c = 0;
	if (oi->kind == K_I_F_RM || oi->kind == K_I_F) {
		bool single = strstr(oi->mnem, "fcvt.s.") != NULL;
		v->a = gen_int(r, oi->fmt == 'W', single ? 24 : 53);
		return;
	}
	if ((oi->kind == K_FF_F_RM || oi->kind == K_FFF_F_RM) && below(r, 5) == 0 &&
	    gen_targeted(r, f, v)) {
		v->a = fix_box(r, f, v->a);
		v->b = fix_box(r, f, v->b);
		v->c = fix_box(r, f, v->c);
		return;
	}
	if (oi->kind == K_F_F_RM && strstr(oi->mnem, "sqrt") && below(r, 4) == 0)
		v->a = gen_square(r, f);
	else
		v->a = gen_fp_base(r, f);
	v->b = below(r, 2) ? gen_related(r, f, v->a, v->op) : gen_fp_base(r, f);
	if (below(r, 4) == 0) /* the related operand first */
		v->a ^= v->b, v->b ^= v->a, v->a ^= v->b;
	if (oi->kind == K_FFF_F_RM) {
		switch (below(r, 3)) {
		case 0:
			v->c = gen_cancel(r, f, v->a, v->b);
			break;
		case 1:
			v->c = gen_related(r, f, v->a, v->op);
			break;
		default:
			v->c = gen_fp_base(r, f);
			break;
		}
		if (below(r, 10) == 0) {
			v->a = gen_class_rep(r, f);
			v->b = gen_class_rep(r, f);
			v->c = gen_class_rep(r, f);
		}
	}
	v->a = fix_box(r, f, v->a);
	v->b = fix_box(r, f, v->b);
	v->c = fix_box(r, f, v->c);
}

/* ---------------------------------------------------------------------- */
/* Evaluation with fpu.c                                                  */
/* ---------------------------------------------------------------------- */

static uint64_t eval(const struct fpv_vec *v, uint32_t *fl)
{
	int rm = (int)FPV_RM(v);
	uint64_t a = v->a, b = v->b, c = v->c;
	switch ((enum fpv_op)v->op) {
	case OP_FADD_S: return fpu_add_s(a, b, rm, fl);
	case OP_FSUB_S: return fpu_sub_s(a, b, rm, fl);
	case OP_FMUL_S: return fpu_mul_s(a, b, rm, fl);
	case OP_FDIV_S: return fpu_div_s(a, b, rm, fl);
	case OP_FSQRT_S: return fpu_sqrt_s(a, rm, fl);
	case OP_FMADD_S: return fpu_fma_s(a, b, c, FMA_MADD, rm, fl);
	case OP_FMSUB_S: return fpu_fma_s(a, b, c, FMA_MSUB, rm, fl);
	case OP_FNMSUB_S: return fpu_fma_s(a, b, c, FMA_NMSUB, rm, fl);
	case OP_FNMADD_S: return fpu_fma_s(a, b, c, FMA_NMADD, rm, fl);
	case OP_FMIN_S: return fpu_min_s(a, b, fl);
	case OP_FMAX_S: return fpu_max_s(a, b, fl);
	case OP_FSGNJ_S: return fpu_sgnj_s(a, b, 0);
	case OP_FSGNJN_S: return fpu_sgnj_s(a, b, 1);
	case OP_FSGNJX_S: return fpu_sgnj_s(a, b, 2);
	case OP_FEQ_S: return fpu_cmp_s(a, b, CMP_EQ, fl);
	case OP_FLT_S: return fpu_cmp_s(a, b, CMP_LT, fl);
	case OP_FLE_S: return fpu_cmp_s(a, b, CMP_LE, fl);
	case OP_FCLASS_S: return fpu_class_s(a);
	case OP_FCVT_W_S: return fpu_s_to_int(a, INT_W, rm, fl);
	case OP_FCVT_WU_S: return fpu_s_to_int(a, INT_WU, rm, fl);
	case OP_FCVT_L_S: return fpu_s_to_int(a, INT_L, rm, fl);
	case OP_FCVT_LU_S: return fpu_s_to_int(a, INT_LU, rm, fl);
	case OP_FCVT_S_W: return fpu_int_to_s(a, INT_W, rm, fl);
	case OP_FCVT_S_WU: return fpu_int_to_s(a, INT_WU, rm, fl);
	case OP_FCVT_S_L: return fpu_int_to_s(a, INT_L, rm, fl);
	case OP_FCVT_S_LU: return fpu_int_to_s(a, INT_LU, rm, fl);
	case OP_FADD_D: return fpu_add_d(a, b, rm, fl);
	case OP_FSUB_D: return fpu_sub_d(a, b, rm, fl);
	case OP_FMUL_D: return fpu_mul_d(a, b, rm, fl);
	case OP_FDIV_D: return fpu_div_d(a, b, rm, fl);
	case OP_FSQRT_D: return fpu_sqrt_d(a, rm, fl);
	case OP_FMADD_D: return fpu_fma_d(a, b, c, FMA_MADD, rm, fl);
	case OP_FMSUB_D: return fpu_fma_d(a, b, c, FMA_MSUB, rm, fl);
	case OP_FNMSUB_D: return fpu_fma_d(a, b, c, FMA_NMSUB, rm, fl);
	case OP_FNMADD_D: return fpu_fma_d(a, b, c, FMA_NMADD, rm, fl);
	case OP_FMIN_D: return fpu_min_d(a, b, fl);
	case OP_FMAX_D: return fpu_max_d(a, b, fl);
	case OP_FSGNJ_D: return fpu_sgnj_d(a, b, 0);
	case OP_FSGNJN_D: return fpu_sgnj_d(a, b, 1);
	case OP_FSGNJX_D: return fpu_sgnj_d(a, b, 2);
	case OP_FEQ_D: return fpu_cmp_d(a, b, CMP_EQ, fl);
	case OP_FLT_D: return fpu_cmp_d(a, b, CMP_LT, fl);
	case OP_FLE_D: return fpu_cmp_d(a, b, CMP_LE, fl);
	case OP_FCLASS_D: return fpu_class_d(a);
	case OP_FCVT_W_D: return fpu_d_to_int(a, INT_W, rm, fl);
	case OP_FCVT_WU_D: return fpu_d_to_int(a, INT_WU, rm, fl);
	case OP_FCVT_L_D: return fpu_d_to_int(a, INT_L, rm, fl);
	case OP_FCVT_LU_D: return fpu_d_to_int(a, INT_LU, rm, fl);
	case OP_FCVT_D_W: return fpu_int_to_d(a, INT_W, rm, fl);
	case OP_FCVT_D_WU: return fpu_int_to_d(a, INT_WU, rm, fl);
	case OP_FCVT_D_L: return fpu_int_to_d(a, INT_L, rm, fl);
	case OP_FCVT_D_LU: return fpu_int_to_d(a, INT_LU, rm, fl);
	case OP_FCVT_S_D: return fpu_d_to_s(a, rm, fl);
	case OP_FCVT_D_S: return fpu_s_to_d(a, fl);
	case OP_COUNT: break;
	}
	return 0;
}

static void flag_str(uint32_t f, char *buf)
{
	static const char *const names[5] = { "NX", "UF", "OF", "DZ", "NV" };
	buf[0] = 0;
	for (int i = 4; i >= 0; i--) {
		if (f & (1u << i)) {
			if (buf[0])
				strcat(buf, "|");
			strcat(buf, names[i]);
		}
	}
	if (!buf[0])
		strcpy(buf, "-");
}

static int operands(enum fpv_kind k)
{
	switch (k) {
	case K_FFF_F_RM:
		return 3;
	case K_FF_F_RM:
	case K_FF_F:
	case K_FF_I:
		return 2;
	default:
		return 1;
	}
}

static void report(const struct fpv_vec *v, const struct fpv_res *ref, uint64_t got, uint32_t gfl,
		   const char *path)
{
	const struct op_info *oi = &ops[v->op];
	char ef[32], gf[32];
	flag_str(ref->flags, ef);
	flag_str(gfl, gf);
	printf("MISMATCH %-10s rm=%s%s", oi->mnem, rm_names[FPV_RM(v)],
	       v->rm & FPV_STATIC_RM ? "(static)" : "(dyn)");
	int n = operands(oi->kind);
	printf(" a=%016" PRIx64, v->a);
	if (n > 1)
		printf(" b=%016" PRIx64, v->b);
	if (n > 2)
		printf(" c=%016" PRIx64, v->c);
	printf("  expected %016" PRIx64 " %s  got %016" PRIx64 " %s  [%s]\n", ref->value, ef,
	       got, gf, path);
}

static int read_all(const char *path, void **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "fpu_vectors_host: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = 1 << 20, n = 0;
	char *b = malloc(cap);
	size_t got;
	while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (!b) {
		fprintf(stderr, "fpu_vectors_host: out of memory reading %s\n", path);
		return -1;
	}
	*buf = b;
	*len = n;
	return 0;
}

static int cmd_check(const char *vpath, const char *rpath, long max_report)
{
	void *vb, *rb;
	size_t vl, rl;
	if (read_all(vpath, &vb, &vl) || read_all(rpath, &rb, &rl))
		return 2;
	size_t n = vl / sizeof(struct fpv_vec);
	if (vl % sizeof(struct fpv_vec) || rl != n * sizeof(struct fpv_res)) {
		fprintf(stderr,
			"fpu_vectors_host: %s has %zu bytes, %s has %zu: not %zu vectors and results\n",
			vpath, vl, rpath, rl, n);
		return 2;
	}
	const struct fpv_vec *vec = vb;
	const struct fpv_res *ref = rb;
	unsigned long per_op[OP_COUNT] = { 0 }, bad_op[OP_COUNT] = { 0 };
	unsigned long bad = 0, flagged[5] = { 0 };
	unsigned char *failed = calloc(n ? n : 1, 1);
	if (!failed) {
		fprintf(stderr, "fpu_vectors_host: out of memory\n");
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		const struct fpv_vec *v = &vec[i];
		if (v->op >= OP_COUNT || FPV_RM(v) > 4 || (v->rm & ~(FPV_STATIC_RM | 7u))) {
			fprintf(stderr, "fpu_vectors_host: vector %zu is malformed\n", i);
			free(failed);
			return 2;
		}
		per_op[v->op]++;
		for (int k = 0; k < 5; k++)
			flagged[k] += (ref[i].flags >> k) & 1;
	}
	/*
	 * Two passes: with the accrued flags clear (every flag must be
	 * computed), then with NX already accrued (the fast path). Running
	 * the passes one after the other, rather than both per vector, also
	 * catches a rounding mode left behind in MXCSR by the previous vector.
	 */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			const struct fpv_vec *v = &vec[i];
			uint32_t fl = pass ? FFLAG_NX : 0;
			uint64_t r = eval(v, &fl);
			if (r == ref[i].value && fl == (ref[i].flags | (pass ? FFLAG_NX : 0)))
				continue;
			if (failed[i])
				continue;
			failed[i] = 1;
			if ((long)bad < max_report)
				report(v, &ref[i], r, fl, pass ? "NX accrued" : "flags clear");
			bad++;
			bad_op[v->op]++;
		}
	}
	free(failed);
	if (bad) {
		printf("per-operation mismatches:\n");
		for (int i = 0; i < OP_COUNT; i++)
			if (bad_op[i])
				printf("  %-10s %lu of %lu\n", ops[i].mnem, bad_op[i], per_op[i]);
	}
	printf("fpu-diff: %zu vectors (reference raised NX %lu, UF %lu, OF %lu, DZ %lu, NV %lu), "
	       "%lu mismatches\n",
	       n, flagged[0], flagged[1], flagged[2], flagged[3], flagged[4], bad);
	free(vb);
	free(rb);
	return bad ? 1 : 0;
}

static int cmd_gen(uint64_t seed, unsigned long count)
{
	struct rng r;
	rng_seed(&r, seed);
	struct fpv_vec buf[1024];
	unsigned long done = 0;
	while (done < count) {
		size_t k = 0;
		for (; k < 1024 && done < count; k++, done++)
			gen_vec(&r, &buf[k]);
		if (fwrite(buf, sizeof(buf[0]), k, stdout) != k) {
			perror("fpu_vectors_host: write");
			return 2;
		}
	}
	return fflush(stdout) ? 2 : 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: fpu_vectors_host gen [--seed S] [--count N] > vectors.bin\n"
			"       fpu_vectors_host check vectors.bin reference.bin [--max-report K]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "gen")) {
		uint64_t seed = 1;
		unsigned long count = 100000;
		for (int i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "--seed") && i + 1 < argc)
				seed = strtoull(argv[++i], NULL, 0);
			else if (!strcmp(argv[i], "--count") && i + 1 < argc)
				count = strtoul(argv[++i], NULL, 0);
			else
				return usage();
		}
		return cmd_gen(seed, count);
	}
	if (!strcmp(argv[1], "check") && argc >= 4) {
		long max_report = 50;
		for (int i = 4; i < argc; i++) {
			if (!strcmp(argv[i], "--max-report") && i + 1 < argc)
				max_report = strtol(argv[++i], NULL, 0);
			else
				return usage();
		}
		return cmd_check(argv[2], argv[3], max_report);
	}
	return usage();
}

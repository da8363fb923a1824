/*
 * RISC-V half of the FPU differential check: reads struct fpv_vec records on
 * stdin, executes each as the real F/D instruction and writes struct fpv_res
 * records on stdout. Operands go in raw with fmv.d.x, so single-precision
 * inputs reach the instruction exactly as given (NaN-boxed or not), and
 * single results come back with their upper 32 bits. The rounding mode is
 * either written to frm for an instruction with the dynamic mode, or
 * (FPV_STATIC_RM) encoded in the instruction while frm holds a different
 * mode. fflags is cleared before and read right after the instruction, or
 * with the argument `nx` set to NX alone (as in a program that has already
 * rounded something: the state translated code is fastest in).
 *
 * Build: riscv64-linux-gnu-gcc -static -O2 -march=rv64gc fpu_vectors_rv.c
 * Run:   qemu-riscv64 ./fpu_vectors_rv < vectors.bin > results.bin
 */
#include <stdio.h>
#include <string.h>

#include "fpu_vectors.h"

#define CLOBBER "ft0", "ft1", "ft2", "ft3"

#define ASMR_K_FF_F_RM(m, rmode)                                                        \
	__asm__ volatile("fmv.d.x ft0, %[a]\n\tfmv.d.x ft1, %[b]\n\tfsflags %[p]\n\t" \
			 m " ft2, ft0, ft1, " rmode "\n\tfrflags %[f]\n\tfmv.x.d %[r], ft2"  \
			 : [r] "=r"(r), [f] "=r"(fl)                                    \
			 : [p] "r"(preset), [a] "r"(v->a), [b] "r"(v->b)                                 \
			 : CLOBBER)
#define ASMR_K_F_F_RM(m, rmode)                                                         \
	__asm__ volatile("fmv.d.x ft0, %[a]\n\tfsflags %[p]\n\t" m                   \
			 " ft2, ft0, " rmode "\n\tfrflags %[f]\n\tfmv.x.d %[r], ft2"         \
			 : [r] "=r"(r), [f] "=r"(fl)                                    \
			 : [p] "r"(preset), [a] "r"(v->a)                                                \
			 : CLOBBER)
#define ASMR_K_FFF_F_RM(m, rmode)                                                       \
	__asm__ volatile("fmv.d.x ft0, %[a]\n\tfmv.d.x ft1, %[b]\n\tfmv.d.x ft3, %[c]\n\t" \
			 "fsflags %[p]\n\t" m " ft2, ft0, ft1, ft3, " rmode "\n\t"           \
			 "frflags %[f]\n\tfmv.x.d %[r], ft2"                           \
			 : [r] "=r"(r), [f] "=r"(fl)                                    \
			 : [p] "r"(preset), [a] "r"(v->a), [b] "r"(v->b), [c] "r"(v->c)                  \
			 : CLOBBER)
#define ASM_K_FF_F(m)                                                           \
	__asm__ volatile("fmv.d.x ft0, %[a]\n\tfmv.d.x ft1, %[b]\n\tfsflags %[p]\n\t" \
			 m " ft2, ft0, ft1\n\tfrflags %[f]\n\tfmv.x.d %[r], ft2"       \
			 : [r] "=r"(r), [f] "=r"(fl)                                    \
			 : [p] "r"(preset), [a] "r"(v->a), [b] "r"(v->b)                                 \
			 : CLOBBER)
#define ASM_K_FF_I(m)                                                           \
	__asm__ volatile("fmv.d.x ft0, %[a]\n\tfmv.d.x ft1, %[b]\n\tfsflags %[p]\n\t" \
			 m " %[r], ft0, ft1\n\tfrflags %[f]"                           \
			 : [r] "=&r"(r), [f] "=r"(fl)                                   \
			 : [p] "r"(preset), [a] "r"(v->a), [b] "r"(v->b)                                 \
			 : CLOBBER)
#define ASM_K_F_I(m)                                                            \
	__asm__ volatile("fmv.d.x ft0, %[a]\n\tfsflags %[p]\n\t" m                   \
			 " %[r], ft0\n\tfrflags %[f]"                                  \
			 : [r] "=&r"(r), [f] "=r"(fl)                                   \
			 : [p] "r"(preset), [a] "r"(v->a)                                                \
			 : CLOBBER)
#define ASMR_K_F_I_RM(m, rmode)                                                         \
	__asm__ volatile("fmv.d.x ft0, %[a]\n\tfsflags %[p]\n\t" m                   \
			 " %[r], ft0, " rmode "\n\tfrflags %[f]"                             \
			 : [r] "=&r"(r), [f] "=r"(fl)                                   \
			 : [p] "r"(preset), [a] "r"(v->a)                                                \
			 : CLOBBER)
#define ASMR_K_I_F_RM(m, rmode)                                                         \
	__asm__ volatile("fsflags %[p]\n\t" m " ft2, %[a], " rmode "\n\t"                  \
			 "frflags %[f]\n\tfmv.x.d %[r], ft2"                           \
			 : [r] "=r"(r), [f] "=r"(fl)                                    \
			 : [p] "r"(preset), [a] "r"(v->a)                                                \
			 : CLOBBER)

#define ASM_K_F_F(m)                                                            \
	__asm__ volatile("fmv.d.x ft0, %[a]\n\tfsflags %[p]\n\t" m                   \
			 " ft2, ft0\n\tfrflags %[f]\n\tfmv.x.d %[r], ft2"              \
			 : [r] "=r"(r), [f] "=r"(fl)                                    \
			 : [p] "r"(preset), [a] "r"(v->a)                                                \
			 : CLOBBER)
#define ASM_K_I_F(m)                                                            \
	__asm__ volatile("fsflags %[p]\n\t" m " ft2, %[a]\n\t"                       \
			 "frflags %[f]\n\tfmv.x.d %[r], ft2"                           \
			 : [r] "=r"(r), [f] "=r"(fl)                                    \
			 : [p] "r"(preset), [a] "r"(v->a)                                                \
			 : CLOBBER)

/* The rounding mode in the encoding: static (rne..rmm) or dyn. */
#define RM_SWITCH(ASMR, m)                   \
	switch (srm) {                       \
	case 0: ASMR(m, "rne"); break;       \
	case 1: ASMR(m, "rtz"); break;       \
	case 2: ASMR(m, "rdn"); break;       \
	case 3: ASMR(m, "rup"); break;       \
	case 4: ASMR(m, "rmm"); break;       \
	default: ASMR(m, "dyn"); break;      \
	}
#define ASM_K_FF_F_RM(m) RM_SWITCH(ASMR_K_FF_F_RM, m)
#define ASM_K_F_F_RM(m) RM_SWITCH(ASMR_K_F_F_RM, m)
#define ASM_K_FFF_F_RM(m) RM_SWITCH(ASMR_K_FFF_F_RM, m)
#define ASM_K_F_I_RM(m) RM_SWITCH(ASMR_K_F_I_RM, m)
#define ASM_K_I_F_RM(m) RM_SWITCH(ASMR_K_I_F_RM, m)

static int run_one(const struct fpv_vec *v, struct fpv_res *out, uint64_t preset)
{
	uint64_t r = 0, fl = 0;
	unsigned rm = FPV_RM(v), srm = 7;
	if (v->rm & FPV_STATIC_RM) {
		srm = rm;
		rm = (rm + 1 + (unsigned)(v->a ^ v->b) % 4) % 5; /* any other mode */
	}
	__asm__ volatile("fsrm %0" : : "r"((uint64_t)rm));
	(void)srm;
	switch (v->op) {
#define CASE(id, mnem, kind, fmt)       \
	case OP_##id:                   \
		ASM_##kind(mnem);       \
		break;
		FPV_OPS(CASE)
#undef CASE
	default:
		return -1;
	}
	out->value = r;
	out->flags = (uint32_t)fl;
	out->pad = 0;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t preset = argc > 1 && !strcmp(argv[1], "nx") ? 1 : 0;
	static struct fpv_vec in[4096];
	static struct fpv_res out[4096];
	size_t n;
	while ((n = fread(in, sizeof(in[0]), 4096, stdin)) > 0) {
		for (size_t i = 0; i < n; i++) {
			if (FPV_RM(&in[i]) > 4 || (in[i].rm & ~(FPV_STATIC_RM | 7u)) ||
			    run_one(&in[i], &out[i], preset) != 0) {
				fprintf(stderr, "fpu_vectors_rv: bad record %zu (op %u rm %u)\n", i,
					in[i].op, in[i].rm);
				return 2;
			}
		}
		if (fwrite(out, sizeof(out[0]), n, stdout) != n) {
			perror("fpu_vectors_rv: write");
			return 2;
		}
	}
	return 0;
}

/*
 * A small x86-64 instruction encoder for the JIT: just the forms the
 * translator uses, written from the Intel SDM volume 2 encoding rules (REX,
 * ModRM, SIB, VEX for the BMI instructions). Every function appends to a
 * buffer; running past its end sets `overflow` and writes nothing, so the
 * caller checks once after a whole block.
 *
 * Operands: a register is one of enum x86_reg; a memory operand is
 * struct x86_mem (base + index * scale + disp, or RIP + disp).
 */
#ifndef SKIFF_ENGINE_JIT_X86_H
#define SKIFF_ENGINE_JIT_X86_H

#include <stdbool.h>
#include <stdint.h>

enum x86_reg {
	RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI,
	R8, R9, R10, R11, R12, R13, R14, R15,
	X86_NOREG = -1,
};

/* Condition codes (the low nibble of Jcc/SETcc/CMOVcc). */
enum x86_cc {
	CC_O = 0, CC_NO = 1, CC_B = 2, CC_AE = 3, CC_E = 4, CC_NE = 5, CC_BE = 6, CC_A = 7,
	CC_S = 8, CC_NS = 9, CC_P = 10, CC_NP = 11, CC_L = 12, CC_GE = 13, CC_LE = 14, CC_G = 15,
};

/* The ModRM reg field of the 0x81/0x83 group and the matching two-operand
 * opcodes (op r/m, reg = 8 * n + 1; op reg, r/m = 8 * n + 3). */
enum x86_alu { ALU_ADD = 0, ALU_OR = 1, ALU_AND = 4, ALU_SUB = 5, ALU_XOR = 6, ALU_CMP = 7 };

/* ModRM reg field of the shift group (C1 /n, D3 /n). */
enum x86_shift { SH_ROL = 0, SH_ROR = 1, SH_SHL = 4, SH_SHR = 5, SH_SAR = 7 };

struct x86_mem {
	int8_t base;   /* enum x86_reg, or X86_NOREG with rip = true */
	int8_t index;  /* X86_NOREG for none */
	uint8_t scale; /* 1, 2, 4, 8 */
	bool rip;
	int32_t disp;
};

static inline struct x86_mem x86_mem(enum x86_reg base, int32_t disp)
{
	return (struct x86_mem){ .base = (int8_t)base, .index = X86_NOREG, .scale = 1, .disp = disp };
}

static inline struct x86_mem x86_mem_idx(enum x86_reg base, enum x86_reg index, unsigned scale,
					 int32_t disp)
{
	return (struct x86_mem){ .base = (int8_t)base, .index = (int8_t)index, .scale = (uint8_t)scale,
				 .disp = disp };
}

struct x86_buf {
	uint8_t *p, *end;
	bool overflow;
};

/* Raw bytes. */
void x86_bytes(struct x86_buf *b, const void *bytes, unsigned n);
void x86_u32(struct x86_buf *b, uint32_t v);

/* Data movement. size is 1, 2, 4 or 8 for the width of the memory access. */
void x86_mov_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src);    /* 64-bit */
void x86_mov_rr32(struct x86_buf *b, enum x86_reg dst, enum x86_reg src);  /* zero-extends */
void x86_mov_rm(struct x86_buf *b, enum x86_reg dst, struct x86_mem m);    /* 64-bit load */
void x86_mov_mr(struct x86_buf *b, struct x86_mem m, enum x86_reg src, unsigned size);
void x86_mov_mi(struct x86_buf *b, struct x86_mem m, int32_t imm, unsigned size); /* size 4 or 8 */
void x86_mov_ri(struct x86_buf *b, enum x86_reg dst, uint64_t imm);        /* best form */
void x86_load(struct x86_buf *b, enum x86_reg dst, struct x86_mem m, unsigned size, bool sign);
void x86_lea(struct x86_buf *b, enum x86_reg dst, struct x86_mem m);
/* lea with a 32-bit result (the address computed in 64 bits, its low half
 * zero-extended into dst). */
void x86_lea32(struct x86_buf *b, enum x86_reg dst, struct x86_mem m);
void x86_movsxd_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src);
void x86_movsx_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src, unsigned size); /* 1, 2 */
void x86_movzx_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src, unsigned size); /* 1, 2 */

/* ALU, 64-bit unless the name ends in 32. */
void x86_alu_rr(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, enum x86_reg src);
void x86_alu_rr32(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, enum x86_reg src);
void x86_alu_rm(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, struct x86_mem m);
void x86_alu_rm32(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, struct x86_mem m);
void x86_alu_mr(struct x86_buf *b, enum x86_alu op, struct x86_mem m, enum x86_reg src);
void x86_alu_ri(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, int32_t imm);
void x86_alu_ri32(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, int32_t imm);
void x86_alu_mi(struct x86_buf *b, enum x86_alu op, struct x86_mem m, int32_t imm, unsigned size);
void x86_test_rr(struct x86_buf *b, enum x86_reg a, enum x86_reg c);
void x86_test_mi8(struct x86_buf *b, struct x86_mem m, uint8_t imm); /* test byte [m], imm */
void x86_shift_ri(struct x86_buf *b, enum x86_shift op, enum x86_reg dst, unsigned count, bool w32);
void x86_shift_rcl(struct x86_buf *b, enum x86_shift op, enum x86_reg dst, bool w32);
void x86_imul_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src, bool w32);
void x86_imul_rm(struct x86_buf *b, enum x86_reg dst, struct x86_mem m, bool w32);
/* One-operand group F7: 2 NOT, 3 NEG, 4 MUL, 5 IMUL, 6 DIV, 7 IDIV (rdx:rax). */
void x86_f7(struct x86_buf *b, unsigned ext, enum x86_reg r, bool w32);
void x86_cqo(struct x86_buf *b);
void x86_cdq(struct x86_buf *b);
void x86_setcc(struct x86_buf *b, enum x86_cc cc, enum x86_reg dst); /* low byte */
void x86_cmov(struct x86_buf *b, enum x86_cc cc, enum x86_reg dst, enum x86_reg src);
void x86_bswap(struct x86_buf *b, enum x86_reg r);
/* 0F BC/BD (BSF/BSR), with an F3 prefix TZCNT/LZCNT; 0F B8 with F3 POPCNT. */
void x86_bitscan(struct x86_buf *b, uint8_t op, bool f3, enum x86_reg dst, enum x86_reg src, bool w32);
/* BT/BTS/BTR/BTC r/m, imm8 (ext 4..7). */
void x86_bt_ri(struct x86_buf *b, unsigned ext, enum x86_reg r, unsigned bit);
/* BMI: ANDN dst = ~a & c; SHLX/SHRX/SARX dst = src shifted by cnt. */
void x86_andn(struct x86_buf *b, enum x86_reg dst, enum x86_reg a, enum x86_reg c);
void x86_shiftx(struct x86_buf *b, enum x86_shift op, enum x86_reg dst, enum x86_reg src,
		enum x86_reg cnt, bool w32);

/* SSE: [prefix] [REX.W] 0F op /r; reg and rm are XMM or general
 * registers (0-15) as the opcode wants; prefix 0 for none (66, F2, F3). */
void x86_sse_rr(struct x86_buf *b, uint8_t prefix, bool w, uint8_t op, int reg, int rm);
void x86_sse_rm(struct x86_buf *b, uint8_t prefix, bool w, uint8_t op, int reg, struct x86_mem m);
/* FMA3 scalar, VEX.LIG.66.0F38.W op: xmm reg = fma(reg, vvvv, m); W1 double. */
void x86_fma_rm(struct x86_buf *b, uint8_t op, bool w, int reg, int vvvv, struct x86_mem m);

/* Control flow. The rel32 forms return the offset of their 4-byte field in
 * the buffer (relative to `start`), for patching. */
uint8_t *x86_jcc32(struct x86_buf *b, enum x86_cc cc);
uint8_t *x86_jmp32(struct x86_buf *b);
uint8_t *x86_call32(struct x86_buf *b);
void x86_jmp_m(struct x86_buf *b, struct x86_mem m);
void x86_jmp_r(struct x86_buf *b, enum x86_reg r);
void x86_call_r(struct x86_buf *b, enum x86_reg r);
void x86_push(struct x86_buf *b, enum x86_reg r);
void x86_pop(struct x86_buf *b, enum x86_reg r);
void x86_ret(struct x86_buf *b);
void x86_mfence(struct x86_buf *b);
/* Point the rel32 field at `field` (as returned above) to `target`; both
 * are addresses in the buffer's own view. */
void x86_patch_rel32(uint8_t *field, const uint8_t *target);

#endif

/*
 * x86-64 encoder (see x86.h). Encodings follow the Intel SDM volume 2,
 * chapter 2 ("Instruction Format"): an optional legacy prefix, REX
 * (0100WRXB), the opcode, ModRM (mod, reg, rm), SIB when the rm field is 100
 * or an index is used, then displacement and immediate.
 */
#include "engine/jit/x86.h"

#include <string.h>

void x86_bytes(struct x86_buf *b, const void *bytes, unsigned n)
{
	if (b->overflow || (size_t)(b->end - b->p) < n) {
		b->overflow = true;
		return;
	}
	memcpy(b->p, bytes, n);
	b->p += n;
}

static void byte(struct x86_buf *b, uint8_t v) { x86_bytes(b, &v, 1); }

void x86_u32(struct x86_buf *b, uint32_t v) { x86_bytes(b, &v, 4); }

static void u64(struct x86_buf *b, uint64_t v) { x86_bytes(b, &v, 8); }

/* REX with W, and the high bits of the reg, index and base fields. `force`
 * emits it even when zero (byte access to SPL..DIL). */
static void rex(struct x86_buf *b, bool w, int reg, int index, int base, bool force)
{
	uint8_t r = 0x40 | (w ? 8 : 0) | (reg >= 8 ? 4 : 0) | (index >= 8 ? 2 : 0) | (base >= 8 ? 1 : 0);
	if (r != 0x40 || force)
		byte(b, r);
}

static void modrm_rr(struct x86_buf *b, int reg, int rm)
{
	byte(b, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

/* ModRM (+ SIB + displacement) for a memory operand. */
static void modrm_m(struct x86_buf *b, int reg, struct x86_mem m)
{
	if (m.rip) {
		byte(b, (uint8_t)((reg & 7) << 3 | 5));
		x86_u32(b, (uint32_t)m.disp);
		return;
	}
	int base = m.base;
	if (base == X86_NOREG) {
		/* [index * scale + disp32]: SIB with no base. */
		byte(b, (uint8_t)((reg & 7) << 3 | 4));
		unsigned ss = m.scale == 8 ? 3 : m.scale == 4 ? 2 : m.scale == 2 ? 1 : 0;
		byte(b, (uint8_t)(ss << 6 | (m.index & 7) << 3 | 5));
		x86_u32(b, (uint32_t)m.disp);
		return;
	}
	unsigned mod;
	if (m.disp == 0 && (base & 7) != RBP)
		mod = 0;
	else if (m.disp >= -128 && m.disp <= 127)
		mod = 1;
	else
		mod = 2;
	bool sib = m.index != X86_NOREG || (base & 7) == RSP;
	byte(b, (uint8_t)(mod << 6 | (reg & 7) << 3 | (sib ? 4 : (base & 7))));
	if (sib) {
		unsigned ss = m.scale == 8 ? 3 : m.scale == 4 ? 2 : m.scale == 2 ? 1 : 0;
		int idx = m.index == X86_NOREG ? RSP : m.index; /* 100: no index */
		byte(b, (uint8_t)(ss << 6 | (idx & 7) << 3 | (base & 7)));
	}
	if (mod == 1)
		byte(b, (uint8_t)(int8_t)m.disp);
	else if (mod == 2)
		x86_u32(b, (uint32_t)m.disp);
}

static int mbase(struct x86_mem m) { return m.rip ? 0 : m.base == X86_NOREG ? 0 : m.base; }
static int midx(struct x86_mem m) { return m.index == X86_NOREG ? 0 : m.index; }

/* op reg, r/m (register form) with REX.W = w. */
static void op_rr(struct x86_buf *b, bool w, const uint8_t *op, unsigned n, int reg, int rm)
{
	rex(b, w, reg, 0, rm, false);
	x86_bytes(b, op, n);
	modrm_rr(b, reg, rm);
}

static void op_rm(struct x86_buf *b, bool w, const uint8_t *op, unsigned n, int reg, struct x86_mem m)
{
	rex(b, w, reg, midx(m), mbase(m), false);
	x86_bytes(b, op, n);
	modrm_m(b, reg, m);
}

void x86_mov_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src)
{
	op_rr(b, true, (const uint8_t[]){ 0x8b }, 1, dst, src);
}

void x86_mov_rr32(struct x86_buf *b, enum x86_reg dst, enum x86_reg src)
{
	op_rr(b, false, (const uint8_t[]){ 0x8b }, 1, dst, src);
}

void x86_mov_rm(struct x86_buf *b, enum x86_reg dst, struct x86_mem m)
{
	op_rm(b, true, (const uint8_t[]){ 0x8b }, 1, dst, m);
}

void x86_mov_mr(struct x86_buf *b, struct x86_mem m, enum x86_reg src, unsigned size)
{
	switch (size) {
	case 1:
		/* Without REX, byte registers 4..7 would be AH..BH. */
		rex(b, false, src, midx(m), mbase(m), src >= 4);
		byte(b, 0x88);
		modrm_m(b, src, m);
		break;
	case 2:
		byte(b, 0x66);
		op_rm(b, false, (const uint8_t[]){ 0x89 }, 1, src, m);
		break;
	default:
		op_rm(b, size == 8, (const uint8_t[]){ 0x89 }, 1, src, m);
	}
}

void x86_mov_mi(struct x86_buf *b, struct x86_mem m, int32_t imm, unsigned size)
{
	op_rm(b, size == 8, (const uint8_t[]){ 0xc7 }, 1, 0, m);
	x86_u32(b, (uint32_t)imm);
}

void x86_mov_ri(struct x86_buf *b, enum x86_reg dst, uint64_t imm)
{
	if (imm == 0) {
		x86_alu_rr32(b, ALU_XOR, dst, dst);
	} else if (imm <= 0xffffffffull) {
		rex(b, false, 0, 0, dst, false); /* mov r32, imm32 zero-extends */
		byte(b, (uint8_t)(0xb8 | (dst & 7)));
		x86_u32(b, (uint32_t)imm);
	} else if ((int64_t)imm == (int32_t)imm) {
		rex(b, true, 0, 0, dst, false); /* C7 /0: sign-extended imm32 */
		byte(b, 0xc7);
		modrm_rr(b, 0, dst);
		x86_u32(b, (uint32_t)imm);
	} else {
		rex(b, true, 0, 0, dst, false);
		byte(b, (uint8_t)(0xb8 | (dst & 7)));
		u64(b, imm);
	}
}

void x86_load(struct x86_buf *b, enum x86_reg dst, struct x86_mem m, unsigned size, bool sign)
{
	switch (size) {
	case 1: op_rm(b, sign, (const uint8_t[]){ 0x0f, sign ? 0xbe : 0xb6 }, 2, dst, m); break;
	case 2: op_rm(b, sign, (const uint8_t[]){ 0x0f, sign ? 0xbf : 0xb7 }, 2, dst, m); break;
	case 4:
		if (sign)
			op_rm(b, true, (const uint8_t[]){ 0x63 }, 1, dst, m); /* movsxd */
		else
			op_rm(b, false, (const uint8_t[]){ 0x8b }, 1, dst, m);
		break;
	default: x86_mov_rm(b, dst, m);
	}
}

void x86_lea(struct x86_buf *b, enum x86_reg dst, struct x86_mem m)
{
	op_rm(b, true, (const uint8_t[]){ 0x8d }, 1, dst, m);
}

void x86_lea32(struct x86_buf *b, enum x86_reg dst, struct x86_mem m)
{
	op_rm(b, false, (const uint8_t[]){ 0x8d }, 1, dst, m);
}

void x86_movsxd_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src)
{
	op_rr(b, true, (const uint8_t[]){ 0x63 }, 1, dst, src);
}

void x86_movsx_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src, unsigned size)
{
	rex(b, true, dst, 0, src, false);
	x86_bytes(b, (const uint8_t[]){ 0x0f, size == 1 ? 0xbe : 0xbf }, 2);
	modrm_rr(b, dst, src);
}

void x86_movzx_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src, unsigned size)
{
	rex(b, false, dst, 0, src, size == 1 && src >= 4);
	x86_bytes(b, (const uint8_t[]){ 0x0f, size == 1 ? 0xb6 : 0xb7 }, 2);
	modrm_rr(b, dst, src);
}

void x86_alu_rr(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, enum x86_reg src)
{
	op_rr(b, true, (const uint8_t[]){ (uint8_t)(op * 8 + 3) }, 1, dst, src);
}

void x86_alu_rr32(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, enum x86_reg src)
{
	op_rr(b, false, (const uint8_t[]){ (uint8_t)(op * 8 + 3) }, 1, dst, src);
}

void x86_alu_rm(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, struct x86_mem m)
{
	op_rm(b, true, (const uint8_t[]){ (uint8_t)(op * 8 + 3) }, 1, dst, m);
}

void x86_alu_rm32(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, struct x86_mem m)
{
	op_rm(b, false, (const uint8_t[]){ (uint8_t)(op * 8 + 3) }, 1, dst, m);
}

void x86_alu_mr(struct x86_buf *b, enum x86_alu op, struct x86_mem m, enum x86_reg src)
{
	op_rm(b, true, (const uint8_t[]){ (uint8_t)(op * 8 + 1) }, 1, src, m);
}

static void alu_imm(struct x86_buf *b, bool w, enum x86_alu op, int rm_reg, const struct x86_mem *m,
		    int32_t imm)
{
	bool small = imm >= -128 && imm <= 127;
	uint8_t opc = small ? 0x83 : 0x81;
	if (m)
		op_rm(b, w, &opc, 1, op, *m);
	else
		op_rr(b, w, &opc, 1, op, rm_reg);
	if (small)
		byte(b, (uint8_t)(int8_t)imm);
	else
		x86_u32(b, (uint32_t)imm);
}

void x86_alu_ri(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, int32_t imm)
{
	alu_imm(b, true, op, dst, NULL, imm);
}

void x86_alu_ri32(struct x86_buf *b, enum x86_alu op, enum x86_reg dst, int32_t imm)
{
	alu_imm(b, false, op, dst, NULL, imm);
}

void x86_alu_mi(struct x86_buf *b, enum x86_alu op, struct x86_mem m, int32_t imm, unsigned size)
{
	alu_imm(b, size == 8, op, 0, &m, imm);
}

void x86_test_rr(struct x86_buf *b, enum x86_reg a, enum x86_reg c)
{
	op_rr(b, true, (const uint8_t[]){ 0x85 }, 1, c, a);
}

void x86_shift_ri(struct x86_buf *b, enum x86_shift op, enum x86_reg dst, unsigned count, bool w32)
{
	op_rr(b, !w32, (const uint8_t[]){ 0xc1 }, 1, op, dst);
	byte(b, (uint8_t)count);
}

void x86_shift_rcl(struct x86_buf *b, enum x86_shift op, enum x86_reg dst, bool w32)
{
	op_rr(b, !w32, (const uint8_t[]){ 0xd3 }, 1, op, dst);
}

void x86_imul_rr(struct x86_buf *b, enum x86_reg dst, enum x86_reg src, bool w32)
{
	op_rr(b, !w32, (const uint8_t[]){ 0x0f, 0xaf }, 2, dst, src);
}

void x86_imul_rm(struct x86_buf *b, enum x86_reg dst, struct x86_mem m, bool w32)
{
	op_rm(b, !w32, (const uint8_t[]){ 0x0f, 0xaf }, 2, dst, m);
}

void x86_f7(struct x86_buf *b, unsigned ext, enum x86_reg r, bool w32)
{
	op_rr(b, !w32, (const uint8_t[]){ 0xf7 }, 1, (int)ext, r);
}

void x86_cqo(struct x86_buf *b) { x86_bytes(b, (const uint8_t[]){ 0x48, 0x99 }, 2); }
void x86_cdq(struct x86_buf *b) { byte(b, 0x99); }

void x86_setcc(struct x86_buf *b, enum x86_cc cc, enum x86_reg dst)
{
	rex(b, false, 0, 0, dst, dst >= 4);
	x86_bytes(b, (const uint8_t[]){ 0x0f, (uint8_t)(0x90 | cc) }, 2);
	modrm_rr(b, 0, dst);
}

void x86_cmov(struct x86_buf *b, enum x86_cc cc, enum x86_reg dst, enum x86_reg src)
{
	op_rr(b, true, (const uint8_t[]){ 0x0f, (uint8_t)(0x40 | cc) }, 2, dst, src);
}

void x86_bswap(struct x86_buf *b, enum x86_reg r)
{
	rex(b, true, 0, 0, r, false);
	x86_bytes(b, (const uint8_t[]){ 0x0f, (uint8_t)(0xc8 | (r & 7)) }, 2);
}

void x86_bitscan(struct x86_buf *b, uint8_t op, bool f3, enum x86_reg dst, enum x86_reg src, bool w32)
{
	if (f3)
		byte(b, 0xf3);
	op_rr(b, !w32, (const uint8_t[]){ 0x0f, op }, 2, dst, src);
}

void x86_bt_ri(struct x86_buf *b, unsigned ext, enum x86_reg r, unsigned bit)
{
	op_rr(b, true, (const uint8_t[]){ 0x0f, 0xba }, 2, (int)ext, r);
	byte(b, (uint8_t)bit);
}

/* Three-byte VEX (C4): R X B inverted, map, W, vvvv inverted, L, pp. */
static void vex3(struct x86_buf *b, int reg, int rm, unsigned map, bool w, int vvvv, unsigned pp)
{
	byte(b, 0xc4);
	byte(b, (uint8_t)((reg >= 8 ? 0 : 0x80) | 0x40 | (rm >= 8 ? 0 : 0x20) | map));
	byte(b, (uint8_t)((w ? 0x80 : 0) | ((~vvvv & 15) << 3) | pp));
}

void x86_test_mi8(struct x86_buf *b, struct x86_mem m, uint8_t imm)
{
	rex(b, false, 0, midx(m), mbase(m), false);
	byte(b, 0xf6);
	modrm_m(b, 0, m);
	byte(b, imm);
}

/* SSE (Intel SDM vol. 2, 2.1: the mandatory prefix goes before REX). */
void x86_sse_rr(struct x86_buf *b, uint8_t prefix, bool w, uint8_t op, int reg, int rm)
{
	if (prefix)
		byte(b, prefix);
	op_rr(b, w, (const uint8_t[]){ 0x0f, op }, 2, reg, rm);
}

void x86_sse_rm(struct x86_buf *b, uint8_t prefix, bool w, uint8_t op, int reg, struct x86_mem m)
{
	if (prefix)
		byte(b, prefix);
	op_rm(b, w, (const uint8_t[]){ 0x0f, op }, 2, reg, m);
}

void x86_fma_rm(struct x86_buf *b, uint8_t op, bool w, int reg, int vvvv, struct x86_mem m)
{
	/* VEX.LIG.66.0F38.W op /r: C4, RXB inverted + map 2, W vvvv L=0 pp=1. */
	int base = mbase(m), idx = midx(m);
	byte(b, 0xc4);
	byte(b, (uint8_t)((reg >= 8 ? 0 : 0x80) | (idx >= 8 ? 0 : 0x40) | (base >= 8 ? 0 : 0x20) | 2));
	byte(b, (uint8_t)((w ? 0x80 : 0) | ((~vvvv & 15) << 3) | 1));
	byte(b, op);
	modrm_m(b, reg, m);
}

void x86_andn(struct x86_buf *b, enum x86_reg dst, enum x86_reg a, enum x86_reg c)
{
	vex3(b, dst, c, 2, true, a, 0);
	byte(b, 0xf2);
	modrm_rr(b, dst, c);
}

void x86_shiftx(struct x86_buf *b, enum x86_shift op, enum x86_reg dst, enum x86_reg src,
		enum x86_reg cnt, bool w32)
{
	/* SHLX 66, SARX F3, SHRX F2 (pp 1, 2, 3); map 0F38, opcode F7. */
	unsigned pp = op == SH_SHL ? 1 : op == SH_SAR ? 2 : 3;
	vex3(b, dst, src, 2, !w32, cnt, pp);
	byte(b, 0xf7);
	modrm_rr(b, dst, src);
}

uint8_t *x86_jcc32(struct x86_buf *b, enum x86_cc cc)
{
	x86_bytes(b, (const uint8_t[]){ 0x0f, (uint8_t)(0x80 | cc) }, 2);
	uint8_t *field = b->p;
	x86_u32(b, 0);
	return b->overflow ? NULL : field;
}

uint8_t *x86_jmp32(struct x86_buf *b)
{
	byte(b, 0xe9);
	uint8_t *field = b->p;
	x86_u32(b, 0);
	return b->overflow ? NULL : field;
}

uint8_t *x86_call32(struct x86_buf *b)
{
	byte(b, 0xe8);
	uint8_t *field = b->p;
	x86_u32(b, 0);
	return b->overflow ? NULL : field;
}

void x86_jmp_m(struct x86_buf *b, struct x86_mem m)
{
	op_rm(b, false, (const uint8_t[]){ 0xff }, 1, 4, m);
}

void x86_jmp_r(struct x86_buf *b, enum x86_reg r)
{
	op_rr(b, false, (const uint8_t[]){ 0xff }, 1, 4, r);
}

void x86_call_r(struct x86_buf *b, enum x86_reg r)
{
	op_rr(b, false, (const uint8_t[]){ 0xff }, 1, 2, r);
}

void x86_push(struct x86_buf *b, enum x86_reg r)
{
	rex(b, false, 0, 0, r, false);
	byte(b, (uint8_t)(0x50 | (r & 7)));
}

void x86_pop(struct x86_buf *b, enum x86_reg r)
{
	rex(b, false, 0, 0, r, false);
	byte(b, (uint8_t)(0x58 | (r & 7)));
}

void x86_ret(struct x86_buf *b) { byte(b, 0xc3); }

void x86_mfence(struct x86_buf *b) { x86_bytes(b, (const uint8_t[]){ 0x0f, 0xae, 0xf0 }, 3); }

void x86_patch_rel32(uint8_t *field, const uint8_t *target)
{
	int32_t rel = (int32_t)(target - (field + 4));
	memcpy(field, &rel, 4);
}

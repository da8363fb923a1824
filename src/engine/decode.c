/*
 * Instruction decoding (RISC-V unprivileged spec, chapter "RV32/64G
 * Instruction Set Listings", and chapter "C" for the compressed forms).
 * Produces the pre-decoded struct insn that blocks are built from; runs once
 * per instruction per cached block, never on the execute path.
 */
#include "engine/decode.h"

#include <string.h>

static const char *const op_names[OP_COUNT] = {
#define OP_NAME(name) [OP_##name] = #name,
	OP_LIST(OP_NAME)
#undef OP_NAME
};

const char *op_name(enum op op)
{
	return op < OP_COUNT ? op_names[op] : "?";
}

static inline uint32_t bits(uint32_t v, int hi, int lo)
{
	return (v >> lo) & ((1u << (hi - lo + 1)) - 1);
}

static inline int32_t sext(uint32_t v, int width)
{
	uint32_t sign = 1u << (width - 1);
	v &= (sign << 1) - 1;
	return (int32_t)(v ^ sign) - (int32_t)sign;
}

static inline uint8_t dst(uint32_t r) { return r ? (uint8_t)r : REG_SINK; }

static void set(struct insn *i, enum op op, unsigned rd, unsigned rs1, unsigned rs2, int32_t imm)
{
	i->op = op;
	i->rd = dst(rd);
	i->rs1 = rs1;
	i->rs2 = rs2;
	i->imm = imm;
}

static void illegal(struct insn *i, uint32_t raw)
{
	memset(i, 0, sizeof(*i));
	i->op = OP_ILLEGAL;
	i->imm = (int32_t)raw;
	i->flags = INSN_ENDS_BLOCK;
}

static int32_t imm_i(uint32_t r) { return (int32_t)r >> 20; }
static int32_t imm_s(uint32_t r) { return sext((bits(r, 31, 25) << 5) | bits(r, 11, 7), 12); }
static int32_t imm_b(uint32_t r)
{
	return sext((bits(r, 31, 31) << 12) | (bits(r, 7, 7) << 11) |
		    (bits(r, 30, 25) << 5) | (bits(r, 11, 8) << 1), 13);
}
static int32_t imm_j(uint32_t r)
{
	return sext((bits(r, 31, 31) << 20) | (bits(r, 19, 12) << 12) |
		    (bits(r, 20, 20) << 11) | (bits(r, 30, 21) << 1), 21);
}

/* OP-FP (opcode 0x53) for fmt = 0 (S) or 1 (D). */
static bool decode_op_fp(uint32_t r, struct insn *i)
{
	unsigned f7 = bits(r, 31, 25), rd = bits(r, 11, 7), rs1 = bits(r, 19, 15);
	unsigned rs2 = bits(r, 24, 20), rm = bits(r, 14, 12);
	bool d = f7 & 1;
	if (f7 & 2)
		return false; /* fmt H/Q not implemented */
	i->rm = rm;
	/* Results that go to an f register must not use the x0 sink. */
	i->rd = rd;
	i->rs1 = rs1;
	i->rs2 = rs2;
	switch (f7 >> 2) {
	case 0x00: i->op = d ? OP_FADD_D : OP_FADD_S; return true;
	case 0x01: i->op = d ? OP_FSUB_D : OP_FSUB_S; return true;
	case 0x02: i->op = d ? OP_FMUL_D : OP_FMUL_S; return true;
	case 0x03: i->op = d ? OP_FDIV_D : OP_FDIV_S; return true;
	case 0x0b:
		if (rs2)
			return false;
		i->op = d ? OP_FSQRT_D : OP_FSQRT_S;
		return true;
	case 0x04:
		if (rm > 2)
			return false;
		i->op = (d ? OP_FSGNJ_D : OP_FSGNJ_S) + rm;
		return true;
	case 0x05:
		if (rm > 1)
			return false;
		i->op = (d ? OP_FMIN_D : OP_FMIN_S) + rm;
		return true;
	case 0x08: /* FCVT.S.D (f7 0x20, rs2 1) / FCVT.D.S (f7 0x21, rs2 0) */
		if (d && rs2 == 0)
			i->op = OP_FCVT_D_S;
		else if (!d && rs2 == 1)
			i->op = OP_FCVT_S_D;
		else
			return false;
		return true;
	case 0x18: /* FCVT.int.fmt: rd is an x register */
		if (rs2 > 3)
			return false;
		i->op = (d ? OP_FCVT_W_D : OP_FCVT_W_S) + rs2;
		i->rd = dst(rd);
		return true;
	case 0x1a:
		if (rs2 > 3)
			return false;
		i->op = (d ? OP_FCVT_D_W : OP_FCVT_S_W) + rs2;
		return true;
	case 0x14:
		i->rd = dst(rd);
		if (rm == 2) i->op = d ? OP_FEQ_D : OP_FEQ_S;
		else if (rm == 1) i->op = d ? OP_FLT_D : OP_FLT_S;
		else if (rm == 0) i->op = d ? OP_FLE_D : OP_FLE_S;
		else return false;
		return true;
	case 0x1c:
		if (rs2)
			return false;
		i->rd = dst(rd);
		if (rm == 0) i->op = d ? OP_FMV_X_D : OP_FMV_X_W;
		else if (rm == 1) i->op = d ? OP_FCLASS_D : OP_FCLASS_S;
		else return false;
		return true;
	case 0x1e:
		if (rs2 || rm)
			return false;
		i->op = d ? OP_FMV_D_X : OP_FMV_W_X;
		return true;
	}
	return false;
}

static bool decode_amo(uint32_t r, struct insn *i)
{
	unsigned f5 = bits(r, 31, 27), w = bits(r, 14, 12), rs2 = bits(r, 24, 20);
	static const uint8_t amo_w[32] = {
		[0x02] = OP_LR_W, [0x03] = OP_SC_W, [0x01] = OP_AMOSWAP_W,
		[0x00] = OP_AMOADD_W, [0x04] = OP_AMOXOR_W, [0x0c] = OP_AMOAND_W,
		[0x08] = OP_AMOOR_W, [0x10] = OP_AMOMIN_W, [0x14] = OP_AMOMAX_W,
		[0x18] = OP_AMOMINU_W, [0x1c] = OP_AMOMAXU_W,
	};
	enum op op = amo_w[f5];
	if (op == 0 && f5 != 0)
		return false;
	if (f5 == 0)
		op = OP_AMOADD_W;
	if (w == 3)
		op += OP_LR_D - OP_LR_W;
	else if (w != 2)
		return false;
	if (f5 == 0x02 && rs2 != 0)
		return false;
	set(i, op, bits(r, 11, 7), bits(r, 19, 15), rs2, 0);
	i->rm = bits(r, 26, 25);
	return true;
}

static bool decode_op(uint32_t r, struct insn *i, bool w)
{
	unsigned f7 = bits(r, 31, 25), f3 = bits(r, 14, 12), rs2 = bits(r, 24, 20);
	enum op op;
	if (!w) {
		switch (f7) {
		case 0x00: { static const uint8_t t[8] = { OP_ADD, OP_SLL, OP_SLT, OP_SLTU, OP_XOR, OP_SRL, OP_OR, OP_AND }; op = t[f3]; break; }
		case 0x20:
			switch (f3) {
			case 0: op = OP_SUB; break;
			case 5: op = OP_SRA; break;
			case 4: op = OP_XNOR; break;
			case 6: op = OP_ORN; break;
			case 7: op = OP_ANDN; break;
			default: return false;
			}
			break;
		case 0x01: { static const uint8_t t[8] = { OP_MUL, OP_MULH, OP_MULHSU, OP_MULHU, OP_DIV, OP_DIVU, OP_REM, OP_REMU }; op = t[f3]; break; }
		case 0x10:
			if (f3 == 2) op = OP_SH1ADD;
			else if (f3 == 4) op = OP_SH2ADD;
			else if (f3 == 6) op = OP_SH3ADD;
			else return false;
			break;
		case 0x05:
			switch (f3) {
			case 4: op = OP_MIN; break;
			case 5: op = OP_MINU; break;
			case 6: op = OP_MAX; break;
			case 7: op = OP_MAXU; break;
			default: return false;
			}
			break;
		case 0x30:
			if (f3 == 1) op = OP_ROL;
			else if (f3 == 5) op = OP_ROR;
			else return false;
			break;
		case 0x24:
			if (f3 == 1) op = OP_BCLR;
			else if (f3 == 5) op = OP_BEXT;
			else return false;
			break;
		case 0x34:
			if (f3 == 1) op = OP_BINV;
			else return false;
			break;
		case 0x14:
			if (f3 == 1) op = OP_BSET;
			else return false;
			break;
		default:
			return false;
		}
	} else {
		switch (f7) {
		case 0x00:
			if (f3 == 0) op = OP_ADDW;
			else if (f3 == 1) op = OP_SLLW;
			else if (f3 == 5) op = OP_SRLW;
			else return false;
			break;
		case 0x20:
			if (f3 == 0) op = OP_SUBW;
			else if (f3 == 5) op = OP_SRAW;
			else return false;
			break;
		case 0x01:
			switch (f3) {
			case 0: op = OP_MULW; break;
			case 4: op = OP_DIVW; break;
			case 5: op = OP_DIVUW; break;
			case 6: op = OP_REMW; break;
			case 7: op = OP_REMUW; break;
			default: return false;
			}
			break;
		case 0x04:
			if (f3 == 0) op = OP_ADD_UW;
			else if (f3 == 4 && rs2 == 0) op = OP_ZEXT_H;
			else return false;
			break;
		case 0x10:
			if (f3 == 2) op = OP_SH1ADD_UW;
			else if (f3 == 4) op = OP_SH2ADD_UW;
			else if (f3 == 6) op = OP_SH3ADD_UW;
			else return false;
			break;
		case 0x30:
			if (f3 == 1) op = OP_ROLW;
			else if (f3 == 5) op = OP_RORW;
			else return false;
			break;
		default:
			return false;
		}
	}
	set(i, op, bits(r, 11, 7), bits(r, 19, 15), rs2, 0);
	return true;
}

static bool decode_op_imm(uint32_t r, struct insn *i)
{
	unsigned f3 = bits(r, 14, 12), f6 = bits(r, 31, 26), sh = bits(r, 25, 20);
	unsigned rd = bits(r, 11, 7), rs1 = bits(r, 19, 15);
	enum op op;
	int32_t imm = imm_i(r);
	switch (f3) {
	case 0: op = OP_ADDI; break;
	case 2: op = OP_SLTI; break;
	case 3: op = OP_SLTIU; break;
	case 4: op = OP_XORI; break;
	case 6: op = OP_ORI; break;
	case 7: op = OP_ANDI; break;
	case 1:
		imm = sh;
		if (f6 == 0x00) op = OP_SLLI;
		else if (f6 == 0x12) op = OP_BCLRI;
		else if (f6 == 0x1a) op = OP_BINVI;
		else if (f6 == 0x0a) op = OP_BSETI;
		else if (f6 == 0x18) {
			switch (sh) {
			case 0x00: op = OP_CLZ; break;
			case 0x01: op = OP_CTZ; break;
			case 0x02: op = OP_CPOP; break;
			case 0x04: op = OP_SEXT_B; break;
			case 0x05: op = OP_SEXT_H; break;
			default: return false;
			}
		} else return false;
		break;
	case 5:
		imm = sh;
		if (f6 == 0x00) op = OP_SRLI;
		else if (f6 == 0x10) op = OP_SRAI;
		else if (f6 == 0x12) op = OP_BEXTI;
		else if (f6 == 0x18) op = OP_RORI;
		else if (bits(r, 31, 20) == 0x287) op = OP_ORC_B;
		else if (bits(r, 31, 20) == 0x6b8) op = OP_REV8;
		else return false;
		break;
	default:
		return false;
	}
	set(i, op, rd, rs1, 0, imm);
	return true;
}

static bool decode_op_imm32(uint32_t r, struct insn *i)
{
	unsigned f3 = bits(r, 14, 12), f7 = bits(r, 31, 25), sh = bits(r, 24, 20);
	unsigned rd = bits(r, 11, 7), rs1 = bits(r, 19, 15);
	switch (f3) {
	case 0: set(i, OP_ADDIW, rd, rs1, 0, imm_i(r)); return true;
	case 1:
		if (f7 == 0x00) { set(i, OP_SLLIW, rd, rs1, 0, sh); return true; }
		if (bits(r, 31, 26) == 0x02) { set(i, OP_SLLI_UW, rd, rs1, 0, bits(r, 25, 20)); return true; }
		if (f7 == 0x30) {
			if (sh == 0) { set(i, OP_CLZW, rd, rs1, 0, 0); return true; }
			if (sh == 1) { set(i, OP_CTZW, rd, rs1, 0, 0); return true; }
			if (sh == 2) { set(i, OP_CPOPW, rd, rs1, 0, 0); return true; }
		}
		return false;
	case 5:
		if (f7 == 0x00) { set(i, OP_SRLIW, rd, rs1, 0, sh); return true; }
		if (f7 == 0x20) { set(i, OP_SRAIW, rd, rs1, 0, sh); return true; }
		if (f7 == 0x30) { set(i, OP_RORIW, rd, rs1, 0, sh); return true; }
		return false;
	}
	return false;
}

static bool decode_system(uint32_t r, struct insn *i)
{
	unsigned f3 = bits(r, 14, 12), rd = bits(r, 11, 7), rs1 = bits(r, 19, 15);
	i->flags |= INSN_ENDS_BLOCK;
	if (f3 == 0) {
		if (r == 0x00000073) { i->op = OP_ECALL; return true; }
		if (r == 0x00100073) { i->op = OP_EBREAK; return true; }
		if (r == 0x10200073) { i->op = OP_SRET; return true; }
		if (r == 0x10500073) { i->op = OP_WFI; return true; }
		if (bits(r, 31, 25) == 0x09 && rd == 0) {
			set(i, OP_SFENCE_VMA, 0, rs1, bits(r, 24, 20), 0);
			return true;
		}
		return false;
	}
	if (f3 == 4)
		return false;
	static const uint8_t t[8] = { 0, OP_CSRRW, OP_CSRRS, OP_CSRRC, 0, OP_CSRRWI, OP_CSRRSI, OP_CSRRCI };
	set(i, t[f3], rd, rs1, 0, bits(r, 31, 20));
	if ((f3 & 3) == 1 && rd == 0)
		i->flags |= INSN_CSR_NO_READ;
	if ((f3 & 3) != 1 && rs1 == 0)
		i->flags |= INSN_CSR_NO_WRITE;
	return true;
}

static bool decode32(uint32_t r, struct insn *i)
{
	unsigned rd = bits(r, 11, 7), rs1 = bits(r, 19, 15), rs2 = bits(r, 24, 20);
	unsigned f3 = bits(r, 14, 12);
	switch (bits(r, 6, 0)) {
	case 0x37: set(i, OP_LUI, rd, 0, 0, (int32_t)(r & 0xfffff000)); return true;
	case 0x17: set(i, OP_AUIPC, rd, 0, 0, (int32_t)(r & 0xfffff000)); return true;
	case 0x6f:
		set(i, OP_JAL, rd, 0, 0, imm_j(r));
		i->flags |= INSN_ENDS_BLOCK;
		return true;
	case 0x67:
		if (f3)
			return false;
		set(i, OP_JALR, rd, rs1, 0, imm_i(r));
		i->flags |= INSN_ENDS_BLOCK;
		return true;
	case 0x63: {
		static const uint8_t t[8] = { OP_BEQ, OP_BNE, 0, 0, OP_BLT, OP_BGE, OP_BLTU, OP_BGEU };
		if (!t[f3])
			return false;
		set(i, t[f3], 0, rs1, rs2, imm_b(r));
		i->flags |= INSN_ENDS_BLOCK;
		return true;
	}
	case 0x03: {
		static const uint8_t t[8] = { OP_LB, OP_LH, OP_LW, OP_LD, OP_LBU, OP_LHU, OP_LWU, 0 };
		if (!t[f3])
			return false;
		set(i, t[f3], rd, rs1, 0, imm_i(r));
		return true;
	}
	case 0x23: {
		static const uint8_t t[8] = { OP_SB, OP_SH, OP_SW, OP_SD };
		if (f3 > 3)
			return false;
		set(i, t[f3], 0, rs1, rs2, imm_s(r));
		return true;
	}
	case 0x13: return decode_op_imm(r, i);
	case 0x1b: return decode_op_imm32(r, i);
	case 0x33: return decode_op(r, i, false);
	case 0x3b: return decode_op(r, i, true);
	case 0x0f:
		if (f3 == 0) { i->op = OP_FENCE; i->imm = bits(r, 27, 20); return true; }
		if (f3 == 1) { i->op = OP_FENCE_I; i->flags |= INSN_ENDS_BLOCK; return true; }
		/* Zicboz: CBO.ZERO is imm 4 with rd = 0 (the CMO chapter of
		 * the unprivileged spec); the other CBO encodings are Zicbom's,
		 * not implemented. The immediate names the operation, so there
		 * is no offset: the address is rs1. */
		if (f3 == 2 && imm_i(r) == 4 && rd == 0) {
			set(i, OP_CBO_ZERO, 0, rs1, 0, 0);
			return true;
		}
		return false;
	case 0x73: return decode_system(r, i);
	case 0x2f: return decode_amo(r, i);
	case 0x07:
		if (f3 == 2) i->op = OP_FLW;
		else if (f3 == 3) i->op = OP_FLD;
		else return false;
		i->rd = rd; i->rs1 = rs1; i->imm = imm_i(r);
		return true;
	case 0x27:
		if (f3 == 2) i->op = OP_FSW;
		else if (f3 == 3) i->op = OP_FSD;
		else return false;
		i->rs1 = rs1; i->rs2 = rs2; i->imm = imm_s(r);
		return true;
	case 0x43: case 0x47: case 0x4b: case 0x4f: {
		unsigned fmt = bits(r, 26, 25);
		if (fmt > 1)
			return false;
		enum op base = fmt ? OP_FMADD_D : OP_FMADD_S;
		i->op = base + ((bits(r, 6, 0) - 0x43) >> 2);
		i->rd = rd; i->rs1 = rs1; i->rs2 = rs2; i->rs3 = bits(r, 31, 27);
		i->rm = f3;
		return true;
	}
	case 0x53: return decode_op_fp(r, i);
	}
	return false;
}

/* Compressed register fields name x8..x15. */
static inline unsigned creg(uint32_t v) { return 8 + v; }

static bool decode16(uint32_t r, struct insn *i)
{
	unsigned f3 = bits(r, 15, 13);
	unsigned rd = bits(r, 11, 7), rs2 = bits(r, 6, 2);
	unsigned rdp = creg(bits(r, 4, 2)), rs1p = creg(bits(r, 9, 7));
	switch (r & 3) {
	case 0:
		switch (f3) {
		case 0: { /* C.ADDI4SPN */
			uint32_t imm = (bits(r, 10, 7) << 6) | (bits(r, 12, 11) << 4) |
				       (bits(r, 5, 5) << 3) | (bits(r, 6, 6) << 2);
			if (!imm)
				return false;
			set(i, OP_ADDI, rdp, 2, 0, imm);
			return true;
		}
		case 1: case 3: case 5: case 7: { /* C.FLD C.LD C.FSD C.SD */
			int32_t imm = (bits(r, 12, 10) << 3) | (bits(r, 6, 5) << 6);
			static const uint8_t t[8] = { [1] = OP_FLD, [3] = OP_LD, [5] = OP_FSD, [7] = OP_SD };
			i->op = t[f3];
			i->rs1 = rs1p;
			i->imm = imm;
			if (f3 == 1) i->rd = rdp;
			else if (f3 == 3) i->rd = dst(rdp);
			else i->rs2 = rdp;
			return true;
		}
		case 2: case 6: { /* C.LW C.SW */
			int32_t imm = (bits(r, 12, 10) << 3) | (bits(r, 6, 6) << 2) | (bits(r, 5, 5) << 6);
			if (f3 == 2) set(i, OP_LW, rdp, rs1p, 0, imm);
			else set(i, OP_SW, 0, rs1p, rdp, imm);
			return true;
		}
		}
		return false;
	case 1: {
		int32_t imm6 = sext((bits(r, 12, 12) << 5) | bits(r, 6, 2), 6);
		switch (f3) {
		case 0: set(i, OP_ADDI, rd, rd, 0, imm6); return true; /* C.ADDI, C.NOP */
		case 1:
			if (!rd)
				return false;
			set(i, OP_ADDIW, rd, rd, 0, imm6);
			return true;
		case 2: set(i, OP_ADDI, rd, 0, 0, imm6); return true; /* C.LI */
		case 3:
			if (rd == 2) { /* C.ADDI16SP */
				int32_t imm = sext((bits(r, 12, 12) << 9) | (bits(r, 4, 3) << 7) |
						   (bits(r, 5, 5) << 6) | (bits(r, 2, 2) << 5) |
						   (bits(r, 6, 6) << 4), 10);
				if (!imm)
					return false;
				set(i, OP_ADDI, 2, 2, 0, imm);
				return true;
			}
			if (!imm6)
				return false;
			set(i, OP_LUI, rd, 0, 0, (int32_t)((uint32_t)imm6 << 12)); /* C.LUI */
			return true;
		case 4: {
			unsigned f2 = bits(r, 11, 10);
			unsigned sh = (bits(r, 12, 12) << 5) | bits(r, 6, 2);
			if (f2 == 0) { set(i, OP_SRLI, rs1p, rs1p, 0, sh); return true; }
			if (f2 == 1) { set(i, OP_SRAI, rs1p, rs1p, 0, sh); return true; }
			if (f2 == 2) { set(i, OP_ANDI, rs1p, rs1p, 0, imm6); return true; }
			static const uint8_t t[8] = { OP_SUB, OP_XOR, OP_OR, OP_AND, OP_SUBW, OP_ADDW, 0, 0 };
			enum op op = t[(bits(r, 12, 12) << 2) | bits(r, 6, 5)];
			if (!op)
				return false;
			set(i, op, rs1p, rs1p, rdp, 0);
			return true;
		}
		case 5: { /* C.J */
			int32_t imm = sext((bits(r, 12, 12) << 11) | (bits(r, 8, 8) << 10) |
					   (bits(r, 10, 9) << 8) | (bits(r, 6, 6) << 7) |
					   (bits(r, 7, 7) << 6) | (bits(r, 2, 2) << 5) |
					   (bits(r, 11, 11) << 4) | (bits(r, 5, 3) << 1), 12);
			set(i, OP_JAL, 0, 0, 0, imm);
			i->flags |= INSN_ENDS_BLOCK;
			return true;
		}
		case 6: case 7: { /* C.BEQZ C.BNEZ */
			int32_t imm = sext((bits(r, 12, 12) << 8) | (bits(r, 6, 5) << 6) |
					   (bits(r, 2, 2) << 5) | (bits(r, 11, 10) << 3) |
					   (bits(r, 4, 3) << 1), 9);
			set(i, f3 == 6 ? OP_BEQ : OP_BNE, 0, rs1p, 0, imm);
			i->flags |= INSN_ENDS_BLOCK;
			return true;
		}
		}
		return false;
	}
	case 2:
		switch (f3) {
		case 0: /* C.SLLI */
			set(i, OP_SLLI, rd, rd, 0, (bits(r, 12, 12) << 5) | bits(r, 6, 2));
			return true;
		case 1: /* C.FLDSP */
			i->op = OP_FLD;
			i->rd = rd;
			i->rs1 = 2;
			i->imm = (bits(r, 12, 12) << 5) | (bits(r, 6, 5) << 3) | (bits(r, 4, 2) << 6);
			return true;
		case 2: /* C.LWSP */
			if (!rd)
				return false;
			set(i, OP_LW, rd, 2, 0, (bits(r, 12, 12) << 5) | (bits(r, 6, 4) << 2) | (bits(r, 3, 2) << 6));
			return true;
		case 3: /* C.LDSP */
			if (!rd)
				return false;
			set(i, OP_LD, rd, 2, 0, (bits(r, 12, 12) << 5) | (bits(r, 6, 5) << 3) | (bits(r, 4, 2) << 6));
			return true;
		case 4:
			if (!bits(r, 12, 12)) {
				if (rs2) { set(i, OP_ADD, rd, 0, rs2, 0); return true; } /* C.MV */
				if (!rd)
					return false;
				set(i, OP_JALR, 0, rd, 0, 0); /* C.JR */
				i->flags |= INSN_ENDS_BLOCK;
				return true;
			}
			if (rs2) { set(i, OP_ADD, rd, rd, rs2, 0); return true; } /* C.ADD */
			if (!rd) { i->op = OP_EBREAK; i->flags |= INSN_ENDS_BLOCK; return true; }
			set(i, OP_JALR, 1, rd, 0, 0); /* C.JALR */
			i->flags |= INSN_ENDS_BLOCK;
			return true;
		case 5: /* C.FSDSP */
			i->op = OP_FSD;
			i->rs1 = 2;
			i->rs2 = rs2;
			i->imm = (bits(r, 12, 10) << 3) | (bits(r, 9, 7) << 6);
			return true;
		case 6: /* C.SWSP */
			set(i, OP_SW, 0, 2, rs2, (bits(r, 12, 9) << 2) | (bits(r, 8, 7) << 6));
			return true;
		case 7: /* C.SDSP */
			set(i, OP_SD, 0, 2, rs2, (bits(r, 12, 10) << 3) | (bits(r, 9, 7) << 6));
			return true;
		}
	}
	return false;
}

void decode(uint32_t raw, struct insn *i)
{
	bool ok;
	memset(i, 0, sizeof(*i));
	if ((raw & 3) == 3) {
		i->len = 4;
		ok = decode32(raw, i);
	} else {
		raw &= 0xffff;
		i->len = 2;
		ok = raw != 0 && decode16(raw, i);
	}
	if (!ok) {
		unsigned len = i->len;
		illegal(i, raw);
		i->len = len;
	}
}

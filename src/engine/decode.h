/*
 * Decoding: one RISC-V instruction (32-bit or compressed) into the engine's
 * pre-decoded form. Compressed instructions are expanded to the operation of
 * their 32-bit equivalent, so the executor has one handler per operation.
 * Reserved and unimplemented encodings decode to OP_ILLEGAL; nothing is a
 * silent no-op (HINT encodings excepted, as the spec reserves them as such).
 */
#ifndef SKIFF_ENGINE_DECODE_H
#define SKIFF_ENGINE_DECODE_H

#include <stdbool.h>
#include <stdint.h>

#define OP_LIST(X) \
	X(ILLEGAL) X(LUI) X(AUIPC) X(JAL) X(JALR) \
	X(BEQ) X(BNE) X(BLT) X(BGE) X(BLTU) X(BGEU) \
	X(LB) X(LH) X(LW) X(LD) X(LBU) X(LHU) X(LWU) \
	X(SB) X(SH) X(SW) X(SD) \
	X(ADDI) X(SLTI) X(SLTIU) X(XORI) X(ORI) X(ANDI) X(SLLI) X(SRLI) X(SRAI) \
	X(ADD) X(SUB) X(SLL) X(SLT) X(SLTU) X(XOR) X(SRL) X(SRA) X(OR) X(AND) \
	X(ADDIW) X(SLLIW) X(SRLIW) X(SRAIW) X(ADDW) X(SUBW) X(SLLW) X(SRLW) X(SRAW) \
	X(FENCE) X(FENCE_I) X(ECALL) X(EBREAK) X(SRET) X(WFI) X(SFENCE_VMA) \
	X(CSRRW) X(CSRRS) X(CSRRC) X(CSRRWI) X(CSRRSI) X(CSRRCI) \
	X(MUL) X(MULH) X(MULHSU) X(MULHU) X(DIV) X(DIVU) X(REM) X(REMU) \
	X(MULW) X(DIVW) X(DIVUW) X(REMW) X(REMUW) \
	X(LR_W) X(SC_W) X(AMOSWAP_W) X(AMOADD_W) X(AMOXOR_W) X(AMOAND_W) X(AMOOR_W) \
	X(AMOMIN_W) X(AMOMAX_W) X(AMOMINU_W) X(AMOMAXU_W) \
	X(LR_D) X(SC_D) X(AMOSWAP_D) X(AMOADD_D) X(AMOXOR_D) X(AMOAND_D) X(AMOOR_D) \
	X(AMOMIN_D) X(AMOMAX_D) X(AMOMINU_D) X(AMOMAXU_D) \
	X(FLW) X(FSW) X(FLD) X(FSD) \
	X(FMADD_S) X(FMSUB_S) X(FNMSUB_S) X(FNMADD_S) \
	X(FMADD_D) X(FMSUB_D) X(FNMSUB_D) X(FNMADD_D) \
	X(FADD_S) X(FSUB_S) X(FMUL_S) X(FDIV_S) X(FSQRT_S) \
	X(FSGNJ_S) X(FSGNJN_S) X(FSGNJX_S) X(FMIN_S) X(FMAX_S) \
	X(FCVT_W_S) X(FCVT_WU_S) X(FCVT_L_S) X(FCVT_LU_S) X(FMV_X_W) \
	X(FEQ_S) X(FLT_S) X(FLE_S) X(FCLASS_S) \
	X(FCVT_S_W) X(FCVT_S_WU) X(FCVT_S_L) X(FCVT_S_LU) X(FMV_W_X) \
	X(FADD_D) X(FSUB_D) X(FMUL_D) X(FDIV_D) X(FSQRT_D) \
	X(FSGNJ_D) X(FSGNJN_D) X(FSGNJX_D) X(FMIN_D) X(FMAX_D) \
	X(FCVT_W_D) X(FCVT_WU_D) X(FCVT_L_D) X(FCVT_LU_D) X(FMV_X_D) \
	X(FEQ_D) X(FLT_D) X(FLE_D) X(FCLASS_D) \
	X(FCVT_D_W) X(FCVT_D_WU) X(FCVT_D_L) X(FCVT_D_LU) X(FMV_D_X) \
	X(FCVT_S_D) X(FCVT_D_S) \
	X(SH1ADD) X(SH2ADD) X(SH3ADD) X(ADD_UW) X(SH1ADD_UW) X(SH2ADD_UW) X(SH3ADD_UW) \
	X(SLLI_UW) \
	X(ANDN) X(ORN) X(XNOR) X(CLZ) X(CTZ) X(CPOP) X(CLZW) X(CTZW) X(CPOPW) \
	X(MAX) X(MAXU) X(MIN) X(MINU) X(SEXT_B) X(SEXT_H) X(ZEXT_H) \
	X(ROL) X(ROR) X(RORI) X(ROLW) X(RORW) X(RORIW) X(ORC_B) X(REV8) \
	X(BCLR) X(BCLRI) X(BEXT) X(BEXTI) X(BINV) X(BINVI) X(BSET) X(BSETI) \
	X(CBO_ZERO)

enum op {
#define OP_ENUM(name) OP_##name,
	OP_LIST(OP_ENUM)
#undef OP_ENUM
	OP_COUNT
};

/* Register index that absorbs writes to x0: decode maps rd = 0 to it, so
 * handlers write unconditionally and x0 always reads zero. */
#define REG_SINK 32

/* Flags in insn.flags. */
#define INSN_ENDS_BLOCK 0x01   /* control transfer or state change */
#define INSN_CSR_NO_READ 0x02  /* CSRRW[I] with rd = x0: no read side effects */
#define INSN_CSR_NO_WRITE 0x04 /* CSRRS/C[I] with rs1/uimm = 0: no write */
#define INSN_JUMP_ON 0x08      /* JAL x0 whose block goes on at its target (exec.c) */

struct insn {
	const void *handler; /* executor label, filled when a block is built */
	int32_t imm;         /* immediate; CSR number; raw bits for ILLEGAL */
	/* Byte offset of this instruction from its block's start; negative
	 * after a JAL the block goes on past to a target before its start
	 * (INSN_JUMP_ON), within the same page. */
	int16_t pc_off;
	uint8_t op;          /* enum op (kept for tools and tests) */
	uint8_t rd, rs1, rs2, rs3;
	uint8_t rm;          /* FP rounding mode field; aq/rl for atomics */
	uint8_t len;         /* 2 or 4 */
	uint8_t flags;
};

/* Length in bytes of the instruction whose low 16 bits are `lo`. */
static inline unsigned insn_length(uint16_t lo) { return (lo & 3) == 3 ? 4 : 2; }

/* Decode `raw` (the low 16 bits only, when compressed) into *i. */
void decode(uint32_t raw, struct insn *i);

const char *op_name(enum op op);

#endif

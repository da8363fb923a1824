/* Tiny RISC-V instruction encoders for engine unit tests (RV64 base
 * encodings from the unprivileged spec's instruction listings). */
#ifndef SKIFF_TESTS_RVASM_H
#define SKIFF_TESTS_RVASM_H

#include <stdint.h>

static inline uint32_t rv_i(uint32_t op, uint32_t f3, unsigned rd, unsigned rs1, int32_t imm)
{
	return ((uint32_t)imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}
static inline uint32_t rv_r(uint32_t op, uint32_t f3, uint32_t f7, unsigned rd, unsigned rs1, unsigned rs2)
{
	return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}
static inline uint32_t rv_s(uint32_t op, uint32_t f3, unsigned rs1, unsigned rs2, int32_t imm)
{
	uint32_t u = (uint32_t)imm;
	return ((u >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (u & 0x1f) << 7 | op;
}
static inline uint32_t rv_b(uint32_t f3, unsigned rs1, unsigned rs2, int32_t off)
{
	uint32_t u = (uint32_t)off;
	return ((u >> 12) & 1) << 31 | ((u >> 5) & 0x3f) << 25 | rs2 << 20 | rs1 << 15 |
	       f3 << 12 | ((u >> 1) & 0xf) << 8 | ((u >> 11) & 1) << 7 | 0x63;
}
static inline uint32_t rv_j(unsigned rd, int32_t off)
{
	uint32_t u = (uint32_t)off;
	return ((u >> 20) & 1) << 31 | ((u >> 1) & 0x3ff) << 21 | ((u >> 11) & 1) << 20 |
	       ((u >> 12) & 0xff) << 12 | rd << 7 | 0x6f;
}
static inline uint32_t rv_lui(unsigned rd, uint32_t imm20) { return imm20 << 12 | rd << 7 | 0x37; }
static inline uint32_t rv_auipc(unsigned rd, uint32_t imm20) { return imm20 << 12 | rd << 7 | 0x17; }

#define ADDI(rd, rs1, imm) rv_i(0x13, 0, rd, rs1, imm)
#define SLLI(rd, rs1, sh) rv_i(0x13, 1, rd, rs1, sh)
#define ADD(rd, rs1, rs2) rv_r(0x33, 0, 0, rd, rs1, rs2)
#define SUB(rd, rs1, rs2) rv_r(0x33, 0, 0x20, rd, rs1, rs2)
#define SUBW(rd, rs1, rs2) rv_r(0x3b, 0, 0x20, rd, rs1, rs2)
#define MUL(rd, rs1, rs2) rv_r(0x33, 0, 1, rd, rs1, rs2)
#define MULW(rd, rs1, rs2) rv_r(0x3b, 0, 1, rd, rs1, rs2)
#define SRL(rd, rs1, rs2) rv_r(0x33, 5, 0, rd, rs1, rs2)
#define SLT(rd, rs1, rs2) rv_r(0x33, 2, 0, rd, rs1, rs2)
#define SRLI(rd, rs1, sh) rv_i(0x13, 5, rd, rs1, sh)
#define XOR(rd, rs1, rs2) rv_r(0x33, 4, 0, rd, rs1, rs2)
#define ADDW(rd, rs1, rs2) rv_r(0x3b, 0, 0, rd, rs1, rs2)
#define ADDIW(rd, rs1, imm) rv_i(0x1b, 0, rd, rs1, imm)
#define LD(rd, rs1, imm) rv_i(0x03, 3, rd, rs1, imm)
#define LW(rd, rs1, imm) rv_i(0x03, 2, rd, rs1, imm)
#define SD(rs2, rs1, imm) rv_s(0x23, 3, rs1, rs2, imm)
#define SW(rs2, rs1, imm) rv_s(0x23, 2, rs1, rs2, imm)
#define SH(rs2, rs1, imm) rv_s(0x23, 1, rs1, rs2, imm)
#define BNE(rs1, rs2, off) rv_b(1, rs1, rs2, off)
#define BEQ(rs1, rs2, off) rv_b(0, rs1, rs2, off)
#define JAL(rd, off) rv_j(rd, off)
#define JALR(rd, rs1, imm) rv_i(0x67, 0, rd, rs1, imm)
#define ECALL() 0x00000073u
#define WFI() 0x10500073u
#define SRET() 0x10200073u
#define FENCE_I() 0x0000100fu
#define CSRRW(rd, csr, rs1) rv_i(0x73, 1, rd, rs1, (int32_t)(csr))
#define CSRRS(rd, csr, rs1) rv_i(0x73, 2, rd, rs1, (int32_t)(csr))
#define AMOADD_D(rd, rs1, rs2) rv_r(0x2f, 3, 0x00, rd, rs1, rs2)
#define LR_D(rd, rs1) rv_r(0x2f, 3, 0x02 << 2, rd, rs1, 0)
#define SC_D(rd, rs1, rs2) rv_r(0x2f, 3, 0x03 << 2, rd, rs1, rs2)
#define AMOSWAP_W_AQ(rd, rs1, rs2) rv_r(0x2f, 2, 0x01 << 2 | 2, rd, rs1, rs2)
#define FENCE(pred, succ) rv_i(0x0f, 0, 0, 0, (int32_t)((pred) << 4 | (succ)))
#define PAUSE() 0x0100000fu
#define CBO_ZERO(rs1) rv_i(0x0f, 2, 0, rs1, 4)

#endif

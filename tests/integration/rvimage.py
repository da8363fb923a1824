"""Tiny RISC-V "kernels" built byte by byte for skiff's integration tests.

A flat RISC-V Linux Image (Linux Documentation/arch/riscv/boot-image-header.rst)
is a 64-byte header followed by code; skiff loads it at RAM base + 2 MiB and
enters it in S-mode with a0 = hart id, a1 = device tree address and the MMU
off (satp = 0). The programs here are a handful of RV64I instructions, so
they are encoded in Python (RISC-V unprivileged spec, chapter 2 "RV32I Base
Integer Instruction Set", instruction formats R/I/S/U/J, and chapter 34 "RV32/64G
Instruction Set Listings"), with no cross toolchain needed. Each encoder also
returns the instruction in GNU assembler syntax, so a test can assemble the
same text with riscv64-linux-gnu-as and compare the words (see
test_images.py::test_encodings_match_gnu_as).

Header layout (all little-endian):
    0  u32 code0        first instruction: "j .+64", jumps over the header
    4  u32 code1        0
    8  u64 text_offset  0x200000 (image load offset from RAM start)
   16  u64 image_size   memory the image occupies once running
   24  u64 flags        0: little-endian
   32  u32 version      0x2 (header version 0.2)
   36  u32 res1         0
   40  u64 res2         0
   48  u64 magic        "RISCV\\0\\0\\0" (deprecated, still filled in)
   56  u32 magic2       "RSC\\x05"
   60  u32 res3         0 (no PE/COFF header)
"""
import struct

HEADER_SIZE = 64
TEXT_OFFSET = 0x200000
RAM_BASE = 0x80000000
LOAD_ADDR = RAM_BASE + TEXT_OFFSET  # where the first header byte lands

# ABI register numbers (RISC-V psABI, "Integer Register Convention").
ZERO, T0, T1, A0, A1, A2, A6, A7 = 0, 5, 6, 10, 11, 12, 16, 17
REG_NAMES = {0: "zero", 5: "t0", 6: "t1", 10: "a0", 11: "a1", 12: "a2", 16: "a6", 17: "a7"}

CSR_STVEC = 0x105  # privileged spec, table "Currently allocated RISC-V supervisor-level CSR addresses"

# SBI v2.0 extension ids and function ids (SBI spec chapters 5, 10, 12).
SBI_EXT_LEGACY_PUTCHAR = 0x01       # a0 = character (legacy extension, chapter 5)
SBI_EXT_SRST = 0x53525354           # "SRST"; FID 0 system_reset(type, reason)
SBI_EXT_DBCN = 0x4442434E           # "DBCN"; FID 0 console_write, FID 2 write_byte
SBI_EXT_HSM = 0x48534D              # "HSM"; FID 0 hart_start(hartid, start_addr, opaque) (chapter 9)
SRST_TYPE_SHUTDOWN = 0
SRST_REASON_NONE = 0
SRST_REASON_SYSTEM_FAILURE = 1

# The board (src/machine/board.h): the 16550A UART and the power-control
# register (SiFive test finisher values: 0x5555 off, 0x3333 | code << 16 fail).
UART_BASE = 0x10000000
UART_RBR_THR, UART_LSR = 0, 5       # LSR bit 0: data ready
SYSCON_BASE = 0x100000
SYSCON_FAIL = 0x3333


class Insn:
    """One 32-bit instruction: its encoding and its GNU as spelling."""

    def __init__(self, word, text):
        assert 0 <= word < 1 << 32
        self.word = word
        self.text = text

    def __repr__(self):
        return f"Insn({self.word:#010x}, {self.text!r})"


def _r(n):
    return REG_NAMES.get(n, f"x{n}")


def _check_simm(value, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not lo <= value <= hi:
        raise ValueError(f"immediate {value} does not fit in {bits} signed bits")


def i_type(opcode, funct3, rd, rs1, imm):
    _check_simm(imm, 12)
    return (imm & 0xFFF) << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | opcode


def addi(rd, rs1, imm):
    """ADDI: I-type, opcode OP-IMM (0x13), funct3 0."""
    return Insn(i_type(0x13, 0, rd, rs1, imm), f"addi {_r(rd)}, {_r(rs1)}, {imm}")


def addiw(rd, rs1, imm):
    """ADDIW: I-type, opcode OP-IMM-32 (0x1b), funct3 0."""
    return Insn(i_type(0x1B, 0, rd, rs1, imm), f"addiw {_r(rd)}, {_r(rs1)}, {imm}")


def lui(rd, imm20):
    """LUI: U-type, opcode 0x37; rd = sign-extended imm20 << 12."""
    assert 0 <= imm20 < 1 << 20
    return Insn(imm20 << 12 | rd << 7 | 0x37, f"lui {_r(rd)}, {imm20:#x}")


def auipc(rd, imm20):
    """AUIPC: U-type, opcode 0x17; rd = pc + (imm20 << 12)."""
    assert 0 <= imm20 < 1 << 20
    return Insn(imm20 << 12 | rd << 7 | 0x17, f"auipc {_r(rd)}, {imm20:#x}")


def andi(rd, rs1, imm):
    """ANDI: I-type, opcode OP-IMM (0x13), funct3 7."""
    return Insn(i_type(0x13, 7, rd, rs1, imm), f"andi {_r(rd)}, {_r(rs1)}, {imm}")


def lbu(rd, rs1, imm):
    """LBU: I-type, opcode LOAD (0x03), funct3 4."""
    return Insn(i_type(0x03, 4, rd, rs1, imm), f"lbu {_r(rd)}, {imm}({_r(rs1)})")


def s_type(funct3, rs1, rs2, imm):
    """S-type, opcode STORE (0x23): imm[11:5] rs2 rs1 funct3 imm[4:0]."""
    _check_simm(imm, 12)
    imm &= 0xFFF
    return (imm >> 5) << 25 | rs2 << 20 | rs1 << 15 | funct3 << 12 | (imm & 0x1F) << 7 | 0x23


def sb(rs2, rs1, imm):
    """SB: S-type, funct3 0."""
    return Insn(s_type(0, rs1, rs2, imm), f"sb {_r(rs2)}, {imm}({_r(rs1)})")


def sw(rs2, rs1, imm):
    """SW: S-type, funct3 2."""
    return Insn(s_type(2, rs1, rs2, imm), f"sw {_r(rs2)}, {imm}({_r(rs1)})")


def beq(rs1, rs2, offset):
    """BEQ: B-type, opcode BRANCH (0x63), funct3 0; imm[12|10:5] in bits
    31..25, imm[4:1|11] in bits 11..7."""
    _check_simm(offset, 13)
    assert offset % 2 == 0
    imm = offset & 0x1FFF
    word = ((imm >> 12 & 1) << 31 | (imm >> 5 & 0x3F) << 25 | rs2 << 20 | rs1 << 15 |
            (imm >> 1 & 0xF) << 8 | (imm >> 11 & 1) << 7 | 0x63)
    return Insn(word, f"beq {_r(rs1)}, {_r(rs2)}, .{offset:+d}")


def jal(rd, offset):
    """JAL: J-type, opcode 0x6f; imm[20|10:1|11|19:12] in bits 31..12."""
    _check_simm(offset, 21)
    assert offset % 2 == 0
    imm = offset & 0x1FFFFF
    word = ((imm >> 20 & 1) << 31 | (imm >> 1 & 0x3FF) << 21 |
            (imm >> 11 & 1) << 20 | (imm >> 12 & 0xFF) << 12 | rd << 7 | 0x6F)
    return Insn(word, f"jal {_r(rd)}, .{offset:+d}")


def csrw(csr, rs1):
    """CSRRW x0, csr, rs1: I-type, opcode SYSTEM (0x73), funct3 1."""
    return Insn(csr << 20 | rs1 << 15 | 1 << 12 | 0 << 7 | 0x73,
                f"csrrw zero, {csr:#x}, {_r(rs1)}")


def ecall():
    """ECALL: SYSTEM opcode with every other field zero."""
    return Insn(0x00000073, "ecall")


def illegal():
    """The all-zero word: defined to be illegal in every RISC-V encoding space
    (unprivileged spec, "Base Instruction-Length Encoding")."""
    return Insn(0x00000000, ".word 0")


def li(rd, value):
    """Load a signed 32-bit constant: ADDI alone, or LUI + ADDIW."""
    if -2048 <= value <= 2047:
        return [addi(rd, ZERO, value)]
    assert -(1 << 31) <= value < 1 << 31, "li: only 32-bit constants here"
    hi = (value + 0x800) >> 12
    lo = value - (hi << 12)
    return [lui(rd, hi & 0xFFFFF), addiw(rd, rd, lo)]


def sbi_call(eid, fid=0, args=()):
    """Set a7 = EID, a6 = FID, a0.. = args and ECALL (SBI spec ch. 3)."""
    code = li(A7, eid) + li(A6, fid)
    for reg, val in zip((A0, A1, A2), args):
        code += li(reg, val)
    return code + [ecall()]


def header(image_size):
    """The 64-byte Image header; code0 jumps to the code right after it."""
    return struct.pack(
        "<IIQQQIIQQII",
        jal(ZERO, HEADER_SIZE).word,  # code0: j .+64
        0,                            # code1
        TEXT_OFFSET,
        image_size,
        0,                            # flags: little-endian
        2,                            # version 0.2
        0, 0,                         # res1, res2
        int.from_bytes(b"RISCV\0\0\0", "little"),
        int.from_bytes(b"RSC\x05", "little"),
        0,                            # res3
    )


def image(code, data=b""):
    """A complete Image: header, the instructions in `code`, then `data`
    (4-byte aligned). Returns bytes."""
    body = b"".join(struct.pack("<I", i.word) for i in code) + data
    body += b"\0" * (-len(body) % 4)
    size = HEADER_SIZE + len(body)
    image_size = (size + 0xFFF) & ~0xFFF
    blob = header(image_size) + body
    assert blob[56:60] == b"RSC\x05"
    return blob


def data_address(code):
    """Physical address of the data that image(code, data) puts after `code`."""
    return LOAD_ADDR + HEADER_SIZE + 4 * len(code)


def asm_text(code):
    """GNU as source for the header's first word and `code`, laid out as in
    image(): used to cross-check the encoders."""
    lines = [".option norvc", ".text", "jal zero, .+64", ".word 0", ".fill 56, 1, 0"]
    lines += [i.text for i in code]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------- programs

def prog_stvec_then_illegal(stvec=0x1000):
    """Point stvec at an address with nothing behind it, then execute an
    illegal instruction: the trap goes to stvec, whose fetch faults (access
    fault, cause 1, at pc = stvec), which traps to stvec again: a hart that
    can never make progress, which skiff must report as a crash."""
    return li(T0, stvec) + [csrw(CSR_STVEC, T0), illegal(), jal(ZERO, 0)]


def prog_putchar_then_shutdown(text=b"hi\n", reason=SRST_REASON_NONE):
    """Print `text` with the legacy SBI console putchar (EID 1), then SBI
    SRST system_reset(shutdown, reason). Loops forever if SRST returns."""
    code = []
    for ch in text:
        code += sbi_call(SBI_EXT_LEGACY_PUTCHAR, 0, (ch,))
    code += sbi_call(SBI_EXT_SRST, 0, (SRST_TYPE_SHUTDOWN, reason))
    return code + [jal(ZERO, 0)]


def prog_dbcn_write_then_shutdown(text=b"hi\n", reason=SRST_REASON_NONE):
    """Print `text` with SBI DBCN console_write (FID 0: num_bytes,
    base_addr_lo, base_addr_hi = 0; the address is physical), then SRST.
    The text is stored right after the code; its address is computed with
    AUIPC so the program does not depend on the load address.
    Returns (code, data)."""
    # auipc a1, 0 is at index i_auipc; the data starts after the whole code.
    pre = li(A7, SBI_EXT_DBCN) + li(A6, 0) + li(A0, len(text))
    tail = [None, None]  # auipc a1, 0; addi a1, a1, off  (patched below)
    post = li(A2, 0) + [ecall()]
    post += sbi_call(SBI_EXT_SRST, 0, (SRST_TYPE_SHUTDOWN, reason)) + [jal(ZERO, 0)]
    n_before_auipc = len(pre)
    n_total = len(pre) + len(tail) + len(post)
    offset = 4 * (n_total - n_before_auipc)
    tail[:] = [auipc(A1, 0), addi(A1, A1, offset)]
    return pre + tail + post, bytes(text)


def prog_spin():
    """Loop forever (a busy hart that never stops on its own)."""
    return [jal(ZERO, 0)]


def prog_uart_echo():
    """Echo every byte that arrives on the UART back to it, forever: poll
    LSR's data-ready bit, read RBR, write THR (16550A registers)."""
    return [lui(T0, UART_BASE >> 12),
            lbu(T1, T0, UART_LSR),          # loop:
            andi(T1, T1, 1),
            beq(T1, ZERO, -8),              # nothing there: poll again
            lbu(T1, T0, UART_RBR_THR),
            sb(T1, T0, UART_RBR_THR),
            jal(ZERO, -20)]                 # back to loop


def prog_syscon_fail(code):
    """Write the power-control register's failure value with `code` in the
    upper 16 bits (a 32-bit store), then loop if that returns."""
    return (li(T0, SYSCON_BASE) + li(T1, SYSCON_FAIL | code << 16) +
            [sw(T1, T0, 0), jal(ZERO, 0)])


def prog_spin_all_harts(nharts):
    """Hart 0 starts harts 1..nharts-1 (SBI HSM hart_start) at the spin
    loop, then spins there too: every hart busy forever."""
    code = []
    for hart in range(1, nharts):
        code += li(A7, SBI_EXT_HSM) + li(A6, 0) + li(A0, hart)
        code += [None, None] + li(A2, 0) + [ecall()]    # a1 = the loop's address (patched below)
    spin_at = len(code)
    for i, insn in enumerate(code):
        if insn is None and code[i + 1] is None:
            code[i:i + 2] = [auipc(A1, 0), addi(A1, A1, 4 * (spin_at - i))]
    return code + [jal(ZERO, 0)]

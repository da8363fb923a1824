#!/usr/bin/python3
"""Random instruction-sequence generator for the differential ISA check.

Generates a standalone riscv64 Linux program (assembly, no libc) from a seed:
it loads every integer and FP register, fcsr and a 1 KiB buffer with values
derived from the seed, runs a long straight-line sequence of random valid
instructions with some forward branches and jumps (half of the programs run
it two or three times over, to reuse cached translations) and bounded
loops (g_loop: a backward bnez to the loop's start or into its body; not
with --no-loops, which gives the programs of before), then writes all x
registers, all f registers, fcsr and the buffer to stdout (one write system
call) and exits. Run under qemu-riscv64 and under skiff-isa-run, the two
outputs must be identical (randcheck.py does that).

The instructions are RV64I/M (with the W forms), F and D with random static
rounding modes and DYN under a random frm, compressed instructions (explicit
c. mnemonics), AMOs and LR/SC on aligned addresses in the buffer, Zba, Zbb,
Zbs, Zicsr on fflags/frm/fcsr, FENCE, FENCE.I and PAUSE. Nothing that traps
or is nondeterministic is generated: frm only ever holds a valid mode, memory
accesses stay in the buffer, no counter reads.

Register conventions: x2 (sp) and x8 (s0) hold the buffer address all the
time (bases for the sp- and x8-relative compressed forms and for ordinary
loads and stores); every other register is data.

usage: randgen.py --seed S --index K --count N [-o prog.S] [--prefix L]
  --prefix L keeps only the first L instruction groups (for bisecting a
  mismatch down to one instruction).
"""
import argparse
import random
import struct
import sys

BUF_SIZE = 1024
# Offsets of the dump area from the buffer start.
DUMP_X = BUF_SIZE
DUMP_F = DUMP_X + 32 * 8
DUMP_FCSR = DUMP_F + 32 * 8
DUMP_END = DUMP_FCSR + 8
# A loop's counter (g_loop): in the dump area, which random stores never
# reach and the dump overwrites.
LOOP_SLOT = DUMP_X + 8

RESERVED = {0, 2, 8}
DATA_X = [r for r in range(32) if r not in RESERVED]
# Compressed register subset x8..x15; x8 is reserved, so only as a source.
CX_DST = list(range(9, 16))
CX_SRC = list(range(8, 16))
CF = list(range(8, 16))
RMS = ["rne", "rtz", "rdn", "rup", "rmm", "dyn"]

INT_EDGES = [
    0, 1, 2, 0xffffffffffffffff, 0xfffffffffffffffe, 0x7fffffffffffffff,
    0x8000000000000000, 0x000000007fffffff, 0x0000000080000000, 0x00000000ffffffff,
    0xffffffff80000000, 0x0000000100000000, 31, 32, 33, 63, 64, 0x5555555555555555,
]
F64_SPECIAL = [
    0x0000000000000000, 0x8000000000000000, 0x3ff0000000000000, 0xbff0000000000000,
    0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000, 0x7ff0000000000001,
    0x7ff4000000000000, 0x0000000000000001, 0x000fffffffffffff, 0x0010000000000000,
    0x7fefffffffffffff, 0x3fb999999999999a, 0x43e0000000000000, 0xc3e0000000000000,
    0x41dfffffffc00000, 0x41efffffffe00000, 0x3fe0000000000000, 0x4004000000000000,
]
F32_SPECIAL = [
    0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000,
    0x7fc00000, 0x7f800001, 0x7fa00000, 0x00000001, 0x007fffff, 0x00800000,
    0x7f7fffff, 0x3dcccccd, 0x4f000000, 0xcf000000, 0x5f000000, 0x3f000000,
    0x40200000, 0x4effffff,
]


def u64(x):
    return x & 0xffffffffffffffff


class Gen:
    def __init__(self, rng, misaligned=True, loops=True):
        self.r = rng
        self.misaligned = misaligned
        self.loops = loops
        self.labels = 0

    # ---- operands ----
    def x(self):
        return self.r.choice(DATA_X)

    def xs(self):
        """A source register: data registers, sometimes x0 or a base."""
        p = self.r.random()
        if p < 0.04:
            return 0
        if p < 0.06:
            return self.r.choice([2, 8])
        return self.x()

    def xd(self):
        """A destination: data registers, rarely x0."""
        return 0 if self.r.random() < 0.02 else self.x()

    def f(self):
        return self.r.randrange(32)

    def imm12(self):
        p = self.r.random()
        if p < 0.2:
            return self.r.choice([0, 1, -1, 2047, -2048, 0x7ff, -0x800, 32, -32])
        return self.r.randint(-2048, 2047)

    def label(self):
        self.labels += 1
        return f".Lr{self.labels}"

    def rm(self):
        return self.r.choice(RMS)

    def mem_off(self, size, align=None):
        """An offset into the buffer for an access of `size` bytes."""
        if align is None:
            align = size if (not self.misaligned or self.r.random() < 0.6) else 1
        off = self.r.randrange(0, BUF_SIZE - size + 1)
        return off - off % align

    def addr(self, size, align=None):
        """Lines that set a temp register to buf+off-imm, and (reg, imm)."""
        off = self.mem_off(size, align)
        p = self.r.random()
        if p < 0.3 and off <= 2047:
            return [], self.r.choice([2, 8]), off
        t = self.x()
        imm = self.r.randint(max(-2048, off - 2047), min(2047, off + 2048))
        return [f"addi x{t}, x8, {off - imm}"], t, imm

    # ---- instruction groups ----
    def g_alu_rr(self):
        ops = ["add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and",
               "addw", "subw", "sllw", "srlw", "sraw",
               "mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu",
               "mulw", "divw", "divuw", "remw", "remuw",
               "sh1add", "sh2add", "sh3add", "add.uw", "sh1add.uw", "sh2add.uw", "sh3add.uw",
               "andn", "orn", "xnor", "max", "maxu", "min", "minu", "rol", "ror", "rolw", "rorw",
               "bclr", "bext", "binv", "bset"]
        return [f"{self.r.choice(ops)} x{self.xd()}, x{self.xs()}, x{self.xs()}"]

    def g_alu_imm(self):
        op = self.r.choice(["addi", "slti", "sltiu", "xori", "ori", "andi", "addiw",
                            "slli", "srli", "srai", "slliw", "srliw", "sraiw",
                            "rori", "roriw", "slli.uw", "bclri", "bexti", "binvi", "bseti"])
        if op in ("slliw", "srliw", "sraiw", "roriw"):
            imm = self.r.randrange(32)
        elif op in ("slli", "srli", "srai", "rori", "slli.uw", "bclri", "bexti", "binvi", "bseti"):
            imm = self.r.randrange(64)
        else:
            imm = self.imm12()
        return [f"{op} x{self.xd()}, x{self.xs()}, {imm}"]

    def g_unary(self):
        op = self.r.choice(["clz", "clzw", "ctz", "ctzw", "cpop", "cpopw", "sext.b",
                            "sext.h", "zext.h", "orc.b", "rev8"])
        if op == "ctzw":
            # qemu-riscv64 7.2 gets ctzw wrong when the low word is zero
            # (tests/isa/qemu_deviations.txt); keep a bit of it set here.
            t = self.x()
            return [f"bseti x{t}, x{self.xs()}, {self.r.randrange(32)}", f"ctzw x{self.xd()}, x{t}"]
        return [f"{op} x{self.xd()}, x{self.xs()}"]

    def g_upper(self):
        op = self.r.choice(["lui", "auipc"])
        imm = self.r.choice([0, 1, 0x7ffff, 0x80000, 0xfffff, self.r.randrange(1 << 20)])
        return [f"{op} x{self.xd()}, {imm}"]

    def g_load(self):
        op, size = self.r.choice([("lb", 1), ("lh", 2), ("lw", 4), ("ld", 8),
                                  ("lbu", 1), ("lhu", 2), ("lwu", 4)])
        pre, base, imm = self.addr(size)
        return pre + [f"{op} x{self.xd()}, {imm}(x{base})"]

    def g_store(self):
        op, size = self.r.choice([("sb", 1), ("sh", 2), ("sw", 4), ("sd", 8)])
        pre, base, imm = self.addr(size)
        return pre + [f"{op} x{self.xs()}, {imm}(x{base})"]

    def g_fload(self):
        op, size = self.r.choice([("flw", 4), ("fld", 8)])
        pre, base, imm = self.addr(size)
        return pre + [f"{op} f{self.f()}, {imm}(x{base})"]

    def g_fstore(self):
        op, size = self.r.choice([("fsw", 4), ("fsd", 8)])
        pre, base, imm = self.addr(size)
        return pre + [f"{op} f{self.f()}, {imm}(x{base})"]

    def g_fp_arith(self):
        p = self.r.choice("sd")
        op = self.r.choice(["fadd", "fsub", "fmul", "fdiv", "fsqrt", "fmadd", "fmsub",
                            "fnmsub", "fnmadd", "fmin", "fmax", "fsgnj", "fsgnjn", "fsgnjx"])
        rd, a, b, c = self.f(), self.f(), self.f(), self.f()
        rm = self.rm()
        rms = "" if rm == "dyn" else f", {rm}"
        if op == "fsqrt":
            return [f"{op}.{p} f{rd}, f{a}{rms}"]
        if op.startswith(("fmadd", "fmsub", "fnm")):
            return [f"{op}.{p} f{rd}, f{a}, f{b}, f{c}{rms}"]
        if op in ("fmin", "fmax") or op.startswith("fsgnj"):
            return [f"{op}.{p} f{rd}, f{a}, f{b}"]
        return [f"{op}.{p} f{rd}, f{a}, f{b}{rms}"]

    def g_fp_cmp(self):
        p = self.r.choice("sd")
        op = self.r.choice(["feq", "flt", "fle", "fclass", "fmv.x"])
        if op == "fclass":
            return [f"fclass.{p} x{self.xd()}, f{self.f()}"]
        if op == "fmv.x":
            return [f"fmv.x.{'w' if p == 's' else 'd'} x{self.xd()}, f{self.f()}"]
        return [f"{op}.{p} x{self.xd()}, f{self.f()}, f{self.f()}"]

    def g_fp_cvt(self):
        rm = self.rm()
        rms = "" if rm == "dyn" else f", {rm}"
        kind = self.r.randrange(5)
        if kind == 0:  # fp -> int
            op = self.r.choice(["fcvt.w.s", "fcvt.wu.s", "fcvt.l.s", "fcvt.lu.s",
                                "fcvt.w.d", "fcvt.wu.d", "fcvt.l.d", "fcvt.lu.d"])
            return [f"{op} x{self.xd()}, f{self.f()}{rms}"]
        if kind == 1:  # int -> fp
            op = self.r.choice(["fcvt.s.w", "fcvt.s.wu", "fcvt.s.l", "fcvt.s.lu",
                                "fcvt.d.l", "fcvt.d.lu", "fcvt.d.w", "fcvt.d.wu"])
            if op in ("fcvt.d.w", "fcvt.d.wu"):
                rms = ""
            return [f"{op} f{self.f()}, x{self.xs()}{rms}"]
        if kind == 2:
            return [f"fcvt.s.d f{self.f()}, f{self.f()}{rms}"]
        if kind == 3:
            return [f"fcvt.d.s f{self.f()}, f{self.f()}"]
        op = self.r.choice(["fmv.w.x", "fmv.d.x"])
        return [f"{op} f{self.f()}, x{self.xs()}"]

    def g_csr(self):
        k = self.r.randrange(10)
        rd = self.xd()
        if k == 0:
            return [f"fsrmi x{rd}, {self.r.randrange(5)}"]
        if k == 1:
            return [f"csrrwi x{rd}, frm, {self.r.randrange(5)}"]
        if k == 2:
            return [f"csrrci x{rd}, frm, {self.r.randrange(8)}"]
        if k == 3:
            return [f"csrrc x{rd}, frm, x{self.xs()}"]
        if k == 4:
            op = self.r.choice(["csrrw", "csrrs", "csrrc"])
            return [f"{op} x{rd}, fflags, x{self.xs()}"]
        if k == 5:
            op = self.r.choice(["csrrwi", "csrrsi", "csrrci"])
            return [f"{op} x{rd}, fflags, {self.r.randrange(32)}"]
        if k == 6:
            # fcsr writes with frm restricted to RNE or RMM (bits 5, 6 clear).
            t = self.x()
            return [f"andi x{t}, x{self.xs()}, 0x9f", f"csrrw x{rd}, fcsr, x{t}"]
        if k == 7:
            op = self.r.choice(["csrrc", "csrrs"])
            t = self.x()
            if op == "csrrs":
                return [f"andi x{t}, x{self.xs()}, 0x1f", f"csrrs x{rd}, fcsr, x{t}"]
            return [f"csrrc x{rd}, fcsr, x{self.xs()}"]
        if k == 8:
            return [f"csrrs x{rd}, {self.r.choice(['fflags', 'frm', 'fcsr'])}, x0"]
        return [f"csrrsi x{rd}, {self.r.choice(['fflags', 'frm', 'fcsr'])}, 0"]

    def g_amo(self):
        w = self.r.choice("wd")
        size = 4 if w == "w" else 8
        op = self.r.choice(["amoswap", "amoadd", "amoxor", "amoand", "amoor", "amomin",
                            "amomax", "amominu", "amomaxu"])
        order = self.r.choice(["", ".aq", ".rl", ".aqrl"])
        off = self.mem_off(size, size)
        t = self.x()
        return [f"addi x{t}, x8, {off}", f"{op}.{w}{order} x{self.xd()}, x{self.xs()}, (x{t})"]

    def g_lrsc(self):
        w = self.r.choice("wd")
        size = 4 if w == "w" else 8
        o1, o2 = self.r.choice(["", ".aq", ".rl", ".aqrl"]), self.r.choice(["", ".aq", ".rl", ".aqrl"])
        off = self.mem_off(size, size)
        t = self.x()
        kind = self.r.randrange(3)
        if kind == 2:
            # SC with no reservation: fails (every earlier LR was followed by an SC).
            return [f"addi x{t}, x8, {off}", f"sc.{w}{o2} x{self.xd()}, x{self.xs()}, (x{t})"]
        rd = self.x()
        while rd == t:
            rd = self.x()
        lines = [f"addi x{t}, x8, {off}", f"lr.{w}{o1} x{rd}, (x{t})"]
        # A few ALU instructions in between (allowed in a constrained loop).
        for _ in range(self.r.randrange(3)):
            d = self.x()
            while d == t:
                d = self.x()
            lines.append(f"addi x{d}, x{self.xs()}, {self.imm12()}")
        if kind == 0:
            lines.append(f"sc.{w}{o2} x{self.xd()}, x{self.xs()}, (x{t})")
        else:
            # SC to an address 128+ bytes away from the reservation: fails.
            t2 = self.x()
            while t2 == t:
                t2 = self.x()
            off2 = self.r.choice([o for o in range(0, BUF_SIZE - size + 1, size)
                                  if abs(o - off) >= 128])
            lines.append(f"addi x{t2}, x8, {off2}")
            lines.append(f"sc.{w}{o2} x{self.xd()}, x{self.xs()}, (x{t2})")
        return lines

    def g_branch(self, skip_label):
        op = self.r.choice(["beq", "bne", "blt", "bge", "bltu", "bgeu"])
        return [f"{op} x{self.xs()}, x{self.xs()}, {skip_label}"]

    def g_jump(self, skip_label):
        k = self.r.randrange(3)
        if k == 0:
            return [f"jal x{self.xd()}, {skip_label}"]
        t = self.x()
        adj = self.r.randint(-100, 100)
        if k == 1:
            return [f"lla x{t}, {skip_label}", f"addi x{t}, x{t}, {-adj}",
                    f"jalr x{self.xd()}, {adj}(x{t})"]
        # JALR clears bit 0 of the target.
        return [f"lla x{t}, {skip_label}", f"addi x{t}, x{t}, 1", f"jalr x{self.xd()}, 0(x{t})"]

    def g_const(self):
        """Reload a register with an edge value, so overflow and
        division corner cases keep coming up after the values drift."""
        v = self.r.choice(INT_EDGES + [u64(-(1 << 31)), u64(-1 << 63), 0xffffffff00000000])
        return [f"li x{self.x()}, {v:#x}"]

    def g_misc(self):
        return [self.r.choice(["fence", "fence rw, rw", "fence r, w", "fence.tso",
                               "fence.i", "pause", "nop", "fence iorw, iorw"])]

    def g_compressed(self, skip_label):
        r = self.r
        k = r.randrange(26)
        nz = lambda lo, hi: r.choice([v for v in range(lo, hi + 1) if v])
        if k == 0:
            return [f"c.addi x{self.x()}, {nz(-32, 31)}"]
        if k == 1:
            return [f"c.addiw x{self.x()}, {r.randint(-32, 31)}"]
        if k == 2:
            return [f"c.li x{self.x()}, {r.randint(-32, 31)}"]
        if k == 3:
            imm = r.choice([r.randint(1, 31), r.randint(0xfffe0, 0xfffff)])
            return [f"c.lui x{self.x()}, {imm}"]
        if k == 4:
            return [f"c.slli x{self.x()}, {r.randint(1, 63)}"]
        if k in (5, 6, 7):
            op = ["c.srli", "c.srai", "c.andi"][k - 5]
            imm = r.randint(-32, 31) if op == "c.andi" else r.randint(1, 63)
            return [f"{op} x{r.choice(CX_DST)}, {imm}"]
        if k == 8:
            op = r.choice(["c.sub", "c.xor", "c.or", "c.and", "c.subw", "c.addw"])
            return [f"{op} x{r.choice(CX_DST)}, x{r.choice(CX_SRC)}"]
        if k == 9:
            rs = self.xs() or 1
            return [f"{r.choice(['c.mv', 'c.add'])} x{self.x()}, x{rs}"]
        if k == 10:
            op, size, hi = r.choice([("c.lw", 4, 124), ("c.ld", 8, 248)])
            return [f"{op} x{r.choice(CX_DST)}, {r.randrange(0, hi + 1, size)}(x8)"]
        if k == 11:
            op, size, hi = r.choice([("c.sw", 4, 124), ("c.sd", 8, 248)])
            return [f"{op} x{r.choice(CX_SRC)}, {r.randrange(0, hi + 1, size)}(x8)"]
        if k == 12:
            op = r.choice(["c.fld", "c.fsd"])
            return [f"{op} f{r.choice(CF)}, {r.randrange(0, 249, 8)}(x8)"]
        if k == 13:
            op, size, hi = r.choice([("c.lwsp", 4, 252), ("c.ldsp", 8, 504)])
            return [f"{op} x{self.x()}, {r.randrange(0, hi + 1, size)}(x2)"]
        if k == 14:
            op, size, hi = r.choice([("c.swsp", 4, 252), ("c.sdsp", 8, 504)])
            return [f"{op} x{self.xs()}, {r.randrange(0, hi + 1, size)}(x2)"]
        if k == 15:
            op = r.choice(["c.fldsp", "c.fsdsp"])
            return [f"{op} f{self.f()}, {r.randrange(0, 505, 8)}(x2)"]
        if k == 16:
            return [f"c.addi4spn x{r.choice(CX_DST)}, x2, {r.randrange(4, 1021, 4)}"]
        if k == 17:
            imm = r.choice([v for v in range(-512, 497, 16) if v])
            return [f"c.addi16sp x2, {imm}",
                    f"c.addi4spn x{r.choice(CX_DST)}, x2, {r.randrange(4, 1021, 4)}",
                    f"c.addi16sp x2, {-imm}" if -imm <= 496 else f"addi x2, x2, {-imm}"]
        if k == 18:
            return ["c.nop"]
        if k == 19:
            return [f"c.j {skip_label}"]
        if k == 20:
            op = r.choice(["c.beqz", "c.bnez"])
            return [f"{op} x{r.choice(CX_SRC)}, {skip_label}"]
        if k == 21:
            t = self.x()
            op = r.choice(["c.jr", "c.jalr"])
            return [f"lla x{t}, {skip_label}", f"{op} x{t}"]
        if k == 22:
            return [f"c.mv x{self.x()}, x{self.xs() or 5}"]
        # More of the common ALU forms.
        op = r.choice(["c.addw", "c.subw", "c.and", "c.or"])
        return [f"{op} x{r.choice(CX_DST)}, x{r.choice(CX_SRC)}"]

    GROUPS = [
        ("alu_rr", 22), ("alu_imm", 14), ("unary", 4), ("upper", 2), ("load", 6),
        ("store", 5), ("fload", 3), ("fstore", 2), ("fp_arith", 14), ("fp_cmp", 4),
        ("fp_cvt", 7), ("csr", 3), ("amo", 4), ("lrsc", 2), ("branch", 3), ("jump", 1),
        ("misc", 1), ("compressed", 14), ("const", 2), ("loop", 2),
    ]
    CONTROL = ("branch", "jump", "compressed", "loop")

    def group(self, skip_label):
        names = [g for g, _ in self.GROUPS]
        # Without loops the loop group weighs 0, the last in the list: the
        # draws, and so every seed's programs, are those from before loops.
        weights = [w if g != "loop" or self.loops else 0 for g, w in self.GROUPS]
        g = self.r.choices(names, weights)[0]
        fn = getattr(self, "g_" + g)
        if g in ("branch", "jump", "compressed"):
            return fn(skip_label)
        return fn()

    def body_group(self):
        """A group with no control flow (a compressed one drawn again if it
        branches)."""
        names = [g for g, _ in self.GROUPS if g not in self.CONTROL or g == "compressed"]
        weights = [w for g, w in self.GROUPS if g not in self.CONTROL or g == "compressed"]
        while True:
            g = self.r.choices(names, weights)[0]
            if g != "compressed":
                return getattr(self, "g_" + g)()
            lines = self.g_compressed(".Lnone")
            if not any(".Lnone" in l for l in lines):
                return lines

    def g_loop(self):
        """A bounded loop of random groups without control flow (one block
        for the JIT: a loop of one block, W results carried round). Its
        counter lives past the buffer (in the dump area, written only at
        the end), so the body may write any register; the closing bnez goes
        back to the loop's start or into its body."""
        r = self.r
        t = self.x()
        start, mid = self.loop_label(), self.loop_label()
        k = r.randint(1, 8)
        at_mid = r.randrange(k)
        lines = [f"li x{t}, {r.randint(1, 40)}", f"sd x{t}, {LOOP_SLOT}(x8)", f"{start}:"]
        for j in range(k):
            if j == at_mid:
                lines.append(f"{mid}:")
            lines += self.body_group()
        return lines + [f"ld x{t}, {LOOP_SLOT}(x8)", f"addi x{t}, x{t}, -1", f"sd x{t}, {LOOP_SLOT}(x8)",
                        f"bnez x{t}, {r.choice([start, mid])}"]

    def loop_label(self):
        self.labels += 1
        return f".Ll{self.labels}"

    # ---- whole program ----
    def initial_state(self):
        r = self.r
        xv = {}
        for reg in DATA_X:
            p = r.random()
            if p < 0.3:
                v = r.choice(INT_EDGES)
            elif p < 0.45:
                v = u64(r.randint(-2048, 2047))
            elif p < 0.6:
                v = u64(r.randint(-(1 << 31), (1 << 31) - 1))
            else:
                v = r.getrandbits(64)
            xv[reg] = v
        fv = []
        for _ in range(32):
            p = r.random()
            if p < 0.2:
                fv.append(r.choice(F64_SPECIAL))
            elif p < 0.35:
                fv.append(0xffffffff00000000 | r.choice(F32_SPECIAL))
            elif p < 0.5:
                fv.append(0xffffffff00000000 | r.getrandbits(32))
            elif p < 0.7:
                fv.append(struct.unpack("<Q", struct.pack("<d", r.uniform(-1e6, 1e6)))[0])
            elif p < 0.8:
                fv.append(0xffffffff00000000 | struct.unpack("<I", struct.pack("<f", r.uniform(-1e3, 1e3)))[0])
            elif p < 0.85:
                fv.append(r.getrandbits(32))  # improperly boxed single
            else:
                fv.append(r.getrandbits(64))
        fcsr = (r.randrange(5) << 5) | r.randrange(32)
        # Half of the programs run their random part several times, so
        # cached and chained translations get reused on new values.
        loops = r.choice([1, 1, 2, 3])
        buf = bytearray(r.getrandbits(8) for _ in range(BUF_SIZE))
        for _ in range(24):
            off = r.randrange(0, BUF_SIZE - 8, 8)
            v = r.choice(F64_SPECIAL + [0xffffffff00000000 | s for s in F32_SPECIAL])
            buf[off:off + 8] = struct.pack("<Q", v)
        return xv, fv, fcsr, bytes(buf), loops

    def program(self, count):
        """(initial state, list of (lines, labels placed after), instruction count)."""
        state = self.initial_state()
        items = []
        pending = []  # [remaining groups, label]
        n = 0
        while n < count:
            lbl = self.label()
            lines = self.group(lbl)
            uses = any(lbl in l for l in lines)
            if uses:
                pending.append([self.r.randint(1, 6), lbl])
            after = []
            for p in pending:
                p[0] -= 1
            for p in [p for p in pending if p[0] < 0]:
                after.append(p[1])
                pending.remove(p)
            items.append((lines, after))
            n += len(lines)
        if pending:
            items[-1][1].extend(p[1] for p in pending)
        return state, items, n


def render(state, items, prefix=None):
    xv, fv, fcsr, buf, loops = state
    out = []
    w = out.append
    w("# generated by tests/isa/randgen.py")
    w("\t.option norvc")
    w("\t.data")
    w("\t.balign 4096")
    w("\t.skip 3584  # the buffer straddles a page boundary")
    w("buf:")
    for i in range(0, BUF_SIZE, 16):
        w("\t.byte " + ", ".join(str(b) for b in buf[i:i + 16]))
    w(f"\t.skip {DUMP_END - BUF_SIZE}")
    w("\t.balign 8")
    w("init_x:")
    for reg in range(32):
        w(f"\t.dword {xv.get(reg, 0):#x}")
    w("init_f:")
    for v in fv:
        w(f"\t.dword {v:#x}")
    w(f"init_fcsr:\n\t.dword {fcsr:#x}")
    w(f"loop_ctr:\n\t.dword {loops}")
    w("\t.text")
    w("\t.globl _start")
    w("_start:")
    w("\tlla x8, init_fcsr")
    w("\tld x5, 0(x8)")
    w("\tcsrw fcsr, x5")
    w("\tlla x8, init_f")
    for i in range(32):
        w(f"\tfld f{i}, {8 * i}(x8)")
    w("\tlla x8, init_x")
    for reg in DATA_X:
        w(f"\tld x{reg}, {8 * reg}(x8)")
    w("\tlla x8, buf")
    w("\tmv x2, x8")
    w("# ---- random part ----")
    w(".Lloop:")
    keep = items if prefix is None else items[:prefix]
    defined = set()
    for lines, after in keep:
        for line in lines:
            if line.startswith("c."):
                w("\t.option rvc")
                w("\t" + line)
                w("\t.option norvc")
            else:
                w("\t" + line)
        for lbl in after:
            w(f"{lbl}:")
            defined.add(lbl)
    # Labels still to come when the program was cut short.
    for lines, _ in keep:
        for line in lines:
            for tok in line.replace(",", " ").split():
                if tok.startswith(".Lr") and tok not in defined:
                    w(f"{tok}:")
                    defined.add(tok)
    if loops > 1:
        w("\tlla x5, loop_ctr")
        w("\tld x6, 0(x5)")
        w("\taddi x6, x6, -1")
        w("\tsd x6, 0(x5)")
        w("\tbeqz x6, .Lend")
        w("\tj .Lloop")
    w(".Lend:")
    w("# ---- dump ----")
    w("\tlla x8, buf")
    for reg in range(32):
        w(f"\tsd x{reg}, {DUMP_X + 8 * reg}(x8)")
    for i in range(32):
        w(f"\tfsd f{i}, {DUMP_F + 8 * i}(x8)")
    w("\tcsrr x5, fcsr")
    w(f"\tsd x5, {DUMP_FCSR}(x8)")
    w("\tli a0, 1")
    w("\tmv a1, x8")
    w(f"\tli a2, {DUMP_END}")
    w("\tli a7, 64")
    w("\tecall")
    w("\tli a0, 0")
    w("\tli a7, 94")
    w("\tecall")
    return "\n".join(out) + "\n"


def make(seed, index, count, misaligned=True, loops=True):
    rng = random.Random(f"skiff-randgen:{seed}:{index}")
    return Gen(rng, misaligned, loops).program(count)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--index", type=int, default=0, help="program number within the seed")
    ap.add_argument("--count", type=int, default=4000, help="random instructions")
    ap.add_argument("--prefix", type=int, help="keep only the first N instruction groups")
    ap.add_argument("--no-misaligned", action="store_true")
    ap.add_argument("--no-loops", action="store_true", help="the programs of before loops came")
    ap.add_argument("-o", "--output", default="-")
    args = ap.parse_args()
    state, items, _ = make(args.seed, args.index, args.count, not args.no_misaligned, not args.no_loops)
    text = render(state, items, args.prefix)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

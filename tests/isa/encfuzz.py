#!/usr/bin/python3
"""Single-instruction encoding fuzzer: qemu-riscv64 vs. skiff-isa-run.

The random programs only contain instructions an assembler produces. This
checks the decoder on everything else: each case is one random instruction
word (biased towards the major RV64GC opcodes, with reserved funct fields,
rounding modes and compressed encodings included) patched into a prebuilt
template program. The template sets every register to a known value (a mix
of pointers into a data buffer and edge values that are unmapped addresses
in both runs), executes the word, dumps all registers, fcsr and the buffer,
and exits. Both runs must end within their time-out and agree on the exit
status (an illegal encoding must raise SIGILL in both) and on the dump. Control transfers are only generated
in their reserved forms (e.g. JALR with funct3 != 0), and ECALL and the
counter CSRs are left out, since their effects differ by design. skiff runs
with --mmu sv39, so stray addresses fault as they do under Linux.

usage: encfuzz.py --runner skiff-isa-run --count N [--seed S] [-j JOBS]
"""
import argparse
import concurrent.futures
import os
import random
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from isa_common import MARCH, QEMU_CPU, runner_env, sanitizer_report  # noqa: E402

MARKER = struct.pack("<I", 0xABCDE037)  # lui x0, 0xabcde: a HINT, no effect
BUF = 8192
NREG_DUMP = 32 + 32 + 1

# Register values: pointers into the buffer (aligned, with room for any
# 12-bit offset) and values that are unmapped addresses in both runs.
VALUES = [
    "PTR+0", "PTR+8", "PTR-2048+16", "PTR+1024", "PTR+2040", "PTR-1000", "PTR+256", "PTR-8",
    0, 1, 2, 0xffffffffffffffff, 0xfffffffffffffffe, 0x7fffffffffffffff,
    0x8000000000000000, 0x00000000ffffffff, 0xffffffff80000000, 0x0000000080000000,
    0x0000000100000000, 0x5555555555555555, 0xaaaaaaaaaaaaaaaa, 0x123456789abcdef0,
    0x000000000000001f, 0x0000000000000020, 0x000000000000003f, 0x8000000080000000,
    0xfedcba9876543210, 0x00000000deadbeef, 0xffffffffffff8000, 0x0000000000000041,
]
FVALUES = [
    0x3ff0000000000000, 0xbff0000000000000, 0x0000000000000000, 0x8000000000000000,
    0x7ff0000000000000, 0x7ff8000000000000, 0x7ff0000000000001, 0x0000000000000001,
    0xffffffff3f800000, 0xffffffffbf800000, 0xffffffff7fc00000, 0xffffffff7f800001,
    0xffffffff00000001, 0x000000003f800000, 0x3fb999999999999a, 0x7fefffffffffffff,
]


def template(base):
    """Assembly of the template; `base` is the register holding the dump address."""
    xs = []
    for i in range(32):
        v = VALUES[(i * 7) % len(VALUES)]
        xs.append(v)
    out = ["\t.option norvc", "\t.data", "\t.balign 4096", "buf:", f"\t.skip {BUF}",
           "dump:", f"\t.skip {8 * NREG_DUMP}", "\t.balign 8", "init_x:"]
    for i, v in enumerate(xs):
        if i == base:
            out.append("\t.dword dump")
        elif isinstance(v, str):
            out.append(f"\t.dword buf+{BUF // 2}+({v[3:] or 0})")
        else:
            out.append(f"\t.dword {v:#x}")
    out.append("init_f:")
    for i in range(32):
        out.append(f"\t.dword {FVALUES[i % len(FVALUES)]:#x}")
    out += ["\t.text", "\t.globl _start", "_start:",
            # a recognisable buffer
            "\tlla x5, buf", f"\tli x6, {BUF // 8}", "\tli x7, 0x0123456789abcdef",
            "1:\tsd x7, 0(x5)", "\taddi x7, x7, 0x135", "\taddi x5, x5, 8", "\taddi x6, x6, -1",
            "\tbnez x6, 1b",
            "\tcsrw fcsr, zero", "\tlla x5, init_f"]
    out += [f"\tfld f{i}, {8 * i}(x5)" for i in range(32)]
    out.append("\tlla x31, init_x")
    out += [f"\tld x{i}, {8 * i}(x31)" for i in range(1, 32)]
    out += ["\t.word 0xABCDE037", "\t.word 0x00000013", "\tnop"]
    out += [f"\tsd x{i}, {8 * i}(x{base})" for i in range(32)]
    out += [f"\tfsd f{i}, {256 + 8 * i}(x{base})" for i in range(32)]
    tmp = 5 if base != 5 else 6
    out += [f"\tcsrr x{tmp}, fcsr", f"\tsd x{tmp}, 512(x{base})",
            "\tli a0, 1", "\tlla a1, buf", f"\tli a2, {BUF + 8 * NREG_DUMP}", "\tli a7, 64",
            "\tecall", "\tli a0, 0", "\tli a7, 94", "\tecall"]
    return "\n".join(out) + "\n"


OPCODES = [0x03, 0x07, 0x0f, 0x13, 0x17, 0x1b, 0x23, 0x27, 0x2f, 0x33, 0x37, 0x3b,
           0x43, 0x47, 0x4b, 0x4f, 0x53, 0x63, 0x67, 0x73]
FUNCT7 = [0x00, 0x20, 0x01, 0x04, 0x05, 0x24, 0x30, 0x14, 0x10, 0x34, 0x08, 0x0c, 0x2c,
          0x50, 0x60, 0x68, 0x70, 0x78, 0x2d, 0x11, 0x15, 0x21, 0x61, 0x69, 0x71, 0x79,
          0x0d, 0x09, 0x01, 0x05, 0x25, 0x35]


def is_counter_csr(csr):
    return 0xc00 <= csr <= 0xc1f


def gen_word(r):
    """A random instruction: (word to patch in, text describing it)."""
    if r.random() < 0.3:
        while True:
            p = r.getrandbits(16)
            if p & 3 == 3:
                continue
            q, f3 = p & 3, p >> 13
            if q == 1 and f3 in (5, 6, 7):
                continue  # c.j, c.beqz, c.bnez
            if q == 2 and f3 == 4 and (p >> 2) & 31 == 0 and (p >> 7) & 31 != 0:
                continue  # c.jr, c.jalr (c.jr x0 is reserved: kept)
            return p | (0x0001 << 16), f"c {p:04x}"
    while True:
        if r.random() < 0.05:
            w = r.getrandbits(32) | 3
        else:
            op = r.choice(OPCODES)
            w = (r.getrandbits(25) << 7) | op
            if r.random() < 0.6:
                w = (w & 0x01ffffff) | (r.choice(FUNCT7) << 25)
        op, f3 = w & 0x7f, (w >> 12) & 7
        if op == 0x63 and f3 not in (2, 3):
            continue  # real branches
        if op == 0x67 and f3 == 0:
            continue  # real JALR
        if op == 0x6f:
            continue  # JAL
        if op == 0x73:
            if w == 0x00000073:
                continue  # ECALL
            if f3 != 0 and f3 != 4 and is_counter_csr(w >> 20):
                continue
        return w, f"w {w:08x}"


def run_case(args, tdir, templ, word, name):
    data = bytearray(templ)
    i = data.find(MARKER)
    data[i + 4:i + 8] = struct.pack("<I", word)
    path = os.path.join(tdir, name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o755)

    def one(cmd, env):
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, timeout=30)
            return (128 - p.returncode if p.returncode < 0 else p.returncode), p.stdout, \
                p.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired:
            return "timeout", b"", ""
    q = one([args.qemu, "-cpu", QEMU_CPU, path], {})
    s = one([args.runner, "--mmu", "sv39", "--timeout", "20", path], runner_env())
    os.unlink(path)
    return q, s


def describe(qout, sout):
    out = []
    n = BUF // 8
    if len(qout) != len(sout) or len(qout) < 8 * (n + NREG_DUMP):
        return [f"output {len(qout)} vs {len(sout)} bytes"] if qout != sout else []
    names = [f"buf+{8 * i:#x}" for i in range(n)] + [f"x{i}" for i in range(32)] + \
        [f"f{i}" for i in range(32)] + ["fcsr"]
    for i, name in enumerate(names):
        a = struct.unpack_from("<Q", qout, 8 * i)[0]
        b = struct.unpack_from("<Q", sout, 8 * i)[0]
        if a != b:
            out.append(f"{name}: qemu {a:#x} skiff {b:#x}")
    return out


def disasm(objdump, word, desc, tdir):
    if not objdump:
        return ""
    p = os.path.join(tdir, f"d{word:08x}.bin")
    with open(p, "wb") as f:
        f.write(struct.pack("<I", word) if desc.startswith("w") else struct.pack("<H", word & 0xffff))
    try:
        out = subprocess.run([objdump, "-D", "-b", "binary", "-m", "riscv:rv64", "-M", "no-aliases", p],
                             capture_output=True, text=True).stdout
        lines = [l for l in out.splitlines() if l.strip().startswith("0:")]
        return lines[0].split("\t", 2)[-1].strip() if lines else "?"
    finally:
        os.unlink(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runner", required=True)
    ap.add_argument("--qemu", default="qemu-riscv64")
    ap.add_argument("--cc", default="riscv64-linux-gnu-gcc")
    ap.add_argument("--objdump", default="riscv64-linux-gnu-objdump")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--max-report", type=int, default=50)
    args = ap.parse_args()
    r = random.Random(f"skiff-encfuzz:{args.seed}")
    with tempfile.TemporaryDirectory(prefix="skiff-encfuzz-") as tdir:
        templs = {}
        for base in (31, 30):
            src = os.path.join(tdir, f"t{base}.S")
            elf = os.path.join(tdir, f"t{base}")
            with open(src, "w") as f:
                f.write(template(base))
            subprocess.run([args.cc, "-nostdlib", "-static", f"-march={MARCH}", src, "-o", elf],
                           check=True)
            with open(elf, "rb") as f:
                templs[base] = f.read()
            if templs[base].count(MARKER) != 1:
                print("encfuzz: marker not found exactly once in the template")
                return 1
        # Baseline: the template with a NOP must run to the end in both.
        q, s = run_case(args, tdir, templs[31], 0x00000013, "baseline")
        if q[0] != 0 or s[0] != 0 or q[1] != s[1] or len(q[1]) != BUF + 8 * NREG_DUMP:
            print(f"encfuzz: the baseline (a NOP) does not run cleanly: qemu status {q[0]}, "
                  f"skiff status {s[0]}, {len(q[1])}/{len(s[1])} bytes; {s[2].strip()[:300]}")
            return 1
        cases = []
        for k in range(args.count):
            w, desc = gen_word(r)
            rd = (w >> 7) & 31
            cases.append((k, w, desc, 30 if rd == 31 else 31))

        def work(c):
            k, w, desc, base = c
            return c, run_case(args, tdir, templs[base], w, f"case{k}")

        bad = []
        outcomes = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
            for (k, w, desc, base), (q, s) in ex.map(work, cases):
                outcomes[q[0]] = outcomes.get(q[0], 0) + 1
                # A run that timed out shows nothing: two time-outs are
                # not an agreement.
                if "timeout" in (q[0], s[0]) or q[0] != s[0] or q[1] != s[1] or sanitizer_report(s[2]):
                    bad.append((k, w, desc, q, s))
        for k, w, desc, q, s in bad[:args.max_report]:
            print(f"MISMATCH {desc} ({disasm(args.objdump, w, desc, tdir)}): "
                  f"qemu status {q[0]}, skiff status {s[0]}")
            if q[0] == s[0]:
                for d in describe(q[1], s[1])[:10]:
                    print("    " + d)
            san = sanitizer_report(s[2])
            if san:
                print("    SANITIZER: " + san)
            elif s[2].strip():
                print("    skiff: " + s[2].strip().splitlines()[-1])
        if len(bad) > args.max_report:
            print(f"... and {len(bad) - args.max_report} more")
    summary = ", ".join(f"{n} exited {st}" for st, n in sorted(outcomes.items(), key=lambda x: str(x[0])))
    print(f"encfuzz: seed {args.seed}: {len(cases)} encodings ({summary}); {len(bad)} mismatches")
    return 1 if bad or not cases else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Zicboz CBO.ZERO in user programs, on every tier: cbo/cbo.c under
skiff-isa-run alone (qemu-riscv64 7.2, the reference of the differential
checks, has no Zicboz), with the executor, the JIT translating every block
at once, and the JIT in lockstep with the executor, each without and with
Sv39 translation. What the program must print and how it must end:

- zero (senvcfg.CBZE set, as Linux sets it for user programs): the block of
  the address given, aligned down, zeroed and nothing else;
- fault: a store/AMO access fault (no RAM there) or, under Sv39, a store/AMO
  page fault (not mapped), stval the address the instruction named;
- smc: a function whose block was zeroed runs the zeroed code after FENCE.I
  (an illegal instruction at its address), not its old translation;
- gate: without senvcfg.CBZE the first CBO.ZERO is an illegal instruction,
  stval its encoding.

Exit status 0 only if every case passed.
"""
import argparse
import re
import subprocess
import sys

TIERS = [("interp", ["--engine", "interp"]),
         ("jit", ["--engine", "jit", "--jit-threshold", "1"]),
         ("lockstep", ["--engine", "lockstep", "--jit-threshold", "1"])]
TRAP = re.compile(r"trap: cause (\d+) \([^)]*\) at pc 0x([0-9a-f]+), tval 0x([0-9a-f]+)")
# cbo.zero with rs1 = 0: MISC-MEM, funct3 2, imm 4.
CBO_ZERO = 0x0040200f
STORE_ACCESS, ILLEGAL, STORE_PAGE = 7, 2, 15


def expected_zero(block):
    page = 4096
    inside = page + 3 * block
    return (f"inside: {inside:#x}-{inside + block:#x}\n"
            f"page end: {2 * page - block:#x}-{2 * page:#x}\n"
            f"page: {page:#x}-{2 * page:#x}\n"
            "done\n")


def run(args, extra, mode):
    cmd = [args.runner] + extra + [args.prog, mode, str(args.block)]
    p = subprocess.run(cmd, env={}, capture_output=True, timeout=args.timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def trap_of(err):
    m = TRAP.search(err)
    return (int(m.group(1)), int(m.group(2), 16), int(m.group(3), 16)) if m else None


def check_case(args, tier, mmu, mode, cbze):
    """None if the case passed, else what was wrong."""
    extra = tier[1] + ["--mmu", mmu] + (["--cbze"] if cbze else [])
    rc, out, err = run(args, extra, mode)
    trap = trap_of(err)
    if not cbze:
        if out or not trap or trap[0] != ILLEGAL or trap[2] & ~(0x1f << 15) != CBO_ZERO:
            return f"gate closed: want an illegal CBO.ZERO; status {rc}, trap {trap}, stdout {out!r}"
        return None
    if mode == "zero":
        want = expected_zero(args.block)
        if rc != 0 or out != want:
            return f"status {rc}, stdout {out!r}, want {want!r}; stderr {err.strip()[:300]}"
    elif mode == "fault":
        m = re.match(r"address 0x([0-9a-f]+)\n$", out)
        cause = STORE_ACCESS if mmu == "bare" else STORE_PAGE
        if not m or not trap or trap[0] != cause or trap[2] != int(m.group(1), 16):
            return f"want cause {cause} with stval the address printed; stdout {out!r}, trap {trap}"
    elif mode == "smc":
        m = re.match(r"before: 140\ncode at 0x([0-9a-f]+)\n$", out)
        if not m or not trap or trap[0] != ILLEGAL or trap[1] != int(m.group(1), 16) or trap[2] != 0:
            return (f"want 'before: 140' and an illegal instruction (0) at the code's address; "
                    f"stdout {out!r}, trap {trap}")
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runner", required=True)
    ap.add_argument("--prog", required=True)
    ap.add_argument("--block", type=int, default=64, help="the engine's CBO.ZERO block size")
    ap.add_argument("--tiers", default="interp,jit,lockstep", help="of interp, jit, lockstep")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    failed = 0
    total = 0
    for tier in [t for t in TIERS if t[0] in args.tiers.split(",")]:
        for mmu in ("bare", "sv39"):
            for mode, cbze in (("zero", True), ("fault", True), ("smc", True), ("zero", False)):
                total += 1
                why = check_case(args, tier, mmu, mode, cbze)
                name = f"{tier[0]} {mmu} {mode}{'' if cbze else ' (gate closed)'}"
                if why:
                    failed += 1
                    print(f"FAIL {name}: {why}")
                else:
                    print(f"ok   {name}")
    print(f"{total - failed} of {total} cases passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

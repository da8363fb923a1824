#!/usr/bin/python3
"""Instruction coverage of the differential test programs.

Disassembles the given object files with `objdump -d -M no-aliases` and
checks that every instruction listed in insns.txt occurs at least once (and,
for entries marked `rm`, under every rounding mode; for `csr NAME` entries,
that some CSR instruction names that CSR). Exits 1 and lists what is missing
otherwise, so "every opcode is covered" is checked, not assumed.
"""
import argparse
import collections
import subprocess
import sys

RMS = ("rne", "rtz", "rdn", "rup", "rmm", "dyn")
CSR_INSNS = {"csrrw", "csrrs", "csrrc", "csrrwi", "csrrsi", "csrrci"}


def parse_list(path):
    insns, rm_insns, csrs = [], set(), []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            if line[0] == "csr" and len(line) == 2:
                csrs.append(line[1])
            elif len(line) == 1:
                insns.append(line[0])
            elif len(line) == 2 and line[1] == "rm":
                insns.append(line[0])
                rm_insns.add(line[0])
            else:
                sys.exit(f"{path}:{lineno}: cannot parse {' '.join(line)!r}")
    return insns, rm_insns, csrs


def disassemble(objdump, path):
    """Yields (mnemonic, operand list) for every instruction in `path`."""
    out = subprocess.run([objdump, "-d", "-M", "no-aliases", path], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or not fields[0].strip().endswith(":"):
            continue
        addr = fields[0].strip()[:-1]
        if not all(c in "0123456789abcdef" for c in addr):
            continue
        mnem = fields[2].strip()
        ops = fields[3].split("#")[0].strip().split(",") if len(fields) > 3 else []
        ops = [o.strip() for o in ops if o.strip()]
        # objdump prints c.nop as the c.addi hint it is encoded as.
        if mnem == "c.addi" and ops and ops[0] == "zero":
            mnem = "c.nop"
        yield mnem, ops


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--objdump", default="riscv64-linux-gnu-objdump")
    ap.add_argument("--list", required=True, help="insns.txt")
    ap.add_argument("files", nargs="+", help="object files to disassemble")
    args = ap.parse_args()

    insns, rm_insns, csrs = parse_list(args.list)
    seen = collections.Counter()
    seen_rm = collections.defaultdict(set)
    seen_csr = set()
    total = 0
    for path in args.files:
        for mnem, ops in disassemble(args.objdump, path):
            total += 1
            seen[mnem] += 1
            if mnem in rm_insns:
                seen_rm[mnem].add(ops[-1] if ops and ops[-1] in RMS else "dyn")
            if mnem in CSR_INSNS and len(ops) >= 2:
                seen_csr.add(ops[1])
    if total == 0:
        print("coverage: no instructions disassembled; nothing was checked")
        return 1

    missing = [i for i in insns if seen[i] == 0]
    missing_rm = [f"{i} {rm}" for i in sorted(rm_insns) for rm in RMS
                  if seen[i] and rm not in seen_rm[i]]
    missing_csr = [c for c in csrs if c not in seen_csr]
    print(f"coverage: {total} instructions in {len(args.files)} files; "
          f"{len(insns) - len(missing)}/{len(insns)} listed instructions present, "
          f"{len(rm_insns)} checked under all rounding modes, {len(csrs)} CSRs")
    bad = False
    if missing:
        bad = True
        print("MISSING instructions: " + " ".join(missing))
    if missing_rm:
        bad = True
        print("MISSING rounding modes: " + ", ".join(missing_rm))
    if missing_csr:
        bad = True
        print("MISSING CSR accesses: " + " ".join(missing_csr))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""skiff-isa-run against malformed and hostile ELF files.

Builds a minimal valid static riscv64 executable in memory (exit(7)), checks
that it runs, then feeds the runner systematically broken variants (every
header field that the loader must check) and a few thousand random
corruptions. Broken files must be rejected with status 2 and a message on
stderr; nothing may crash the runner (killed by a signal) or hang it. Needs
neither the cross compiler nor qemu.
"""
import argparse
import os
import random
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from isa_common import sanitizer_report  # noqa: E402

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
PT_LOAD, PT_INTERP, PT_PHDR = 1, 3, 6
PF_X, PF_W, PF_R = 1, 2, 4
BASE = 0x10000


def code():
    # addi a0, x0, 7; addi a7, x0, 93; ecall
    return struct.pack("<III", 0x00700513, 0x05d00893, 0x00000073)


def make(ident=None, etype=2, machine=243, version=1, entry=None, phoff=64, flags=5,
         phentsize=56, phnum=None, phdrs=None, extra=b""):
    ident = ident or (b"\x7fELF" + bytes([2, 1, 1]) + bytes(9))
    text_off = 0x1000
    if phdrs is None:
        phdrs = [(PT_LOAD, PF_R | PF_X, text_off, BASE, BASE, 12, 12, 0x1000)]
    if entry is None:
        entry = BASE
    phnum = len(phdrs) if phnum is None else phnum
    hdr = EHDR.pack(ident, etype, machine, version, entry, phoff, 0, flags, 64, phentsize,
                    phnum, 64, 0, 0)
    body = bytearray(hdr)
    for p in phdrs:
        body += PHDR.pack(*p)
    body += bytes(max(0, text_off - len(body)))
    body[text_off:text_off + 12] = code()
    return bytes(body[:max(len(body), text_off + 12)]) + extra


def cases():
    good_load = (PT_LOAD, PF_R | PF_X, 0x1000, BASE, BASE, 12, 12, 0x1000)
    c = {}
    valid = make()
    c["empty file"] = b""
    c["10 bytes"] = valid[:10]
    c["header only, truncated"] = valid[:63]
    c["header without program headers"] = valid[:64]
    c["bad magic"] = b"\x7fELG" + valid[4:]
    c["ELFCLASS32"] = make(ident=b"\x7fELF" + bytes([1, 1, 1]) + bytes(9))
    c["big endian"] = make(ident=b"\x7fELF" + bytes([2, 2, 1]) + bytes(9))
    c["bad ident version"] = make(ident=b"\x7fELF" + bytes([2, 1, 9]) + bytes(9))
    c["bad e_version"] = make(version=7)
    c["x86-64 machine"] = make(machine=62)
    c["ET_DYN"] = make(etype=3)
    c["ET_REL"] = make(etype=1)
    c["ET_CORE"] = make(etype=4)
    c["RV64E flag"] = make(flags=8)
    c["e_phentsize 32"] = make(phentsize=32)
    c["e_phnum 0"] = make(phnum=0)
    c["e_phnum 0xffff"] = make(phnum=0xffff)
    c["e_phoff past end"] = make(phoff=1 << 20)
    c["e_phoff overflow"] = make(phoff=(1 << 64) - 8)
    c["no PT_LOAD"] = make(phdrs=[(PT_PHDR, PF_R, 64, BASE + 64, 0, 56, 56, 8)])
    c["PT_INTERP"] = make(phdrs=[good_load, (PT_INTERP, PF_R, 0x100, 0, 0, 20, 20, 1)])
    c["filesz > memsz"] = make(phdrs=[(PT_LOAD, PF_R | PF_X, 0x1000, BASE, BASE, 12, 8, 0x1000)])
    c["segment data past end of file"] = make(
        phdrs=[(PT_LOAD, PF_R | PF_X, 0x1000, BASE, BASE, 1 << 20, 1 << 20, 0x1000)])
    c["p_offset overflow"] = make(
        phdrs=[(PT_LOAD, PF_R | PF_X, (1 << 64) - 4, BASE, BASE, 12, 12, 0x1000)])
    c["p_filesz overflow"] = make(
        phdrs=[(PT_LOAD, PF_R | PF_X, 0x1000, BASE, BASE, (1 << 64) - 1, (1 << 64) - 1, 0x1000)])
    c["segment at address 0"] = make(
        entry=0, phdrs=[(PT_LOAD, PF_R | PF_X, 0x1000, 0, 0, 12, 12, 0x1000)])
    c["segment beyond guest memory"] = make(
        entry=1 << 40, phdrs=[(PT_LOAD, PF_R | PF_X, 0x1000, 1 << 40, 1 << 40, 12, 12, 0x1000)])
    c["vaddr + memsz overflow"] = make(
        phdrs=[(PT_LOAD, PF_R | PF_X, 0x1000, BASE, BASE, 12, (1 << 64) - BASE + 16, 0x1000)])
    c["huge bss"] = make(phdrs=[(PT_LOAD, PF_R | PF_X, 0x1000, BASE, BASE, 12, 1 << 62, 0x1000)])
    c["bad alignment"] = make(phdrs=[(PT_LOAD, PF_R | PF_X, 0x1000, BASE, BASE, 12, 12, 3)])
    c["entry outside segments"] = make(entry=BASE + 0x100000)
    c["entry odd"] = make(entry=BASE + 1)
    c["entry in data segment"] = make(
        phdrs=[(PT_LOAD, PF_R | PF_W, 0x1000, BASE, BASE, 12, 12, 0x1000)])
    return valid, c


def run(runner, path, timeout=20):
    try:
        p = subprocess.run([runner, "--timeout", "5", "--max-insns", "50000000", path],
                           capture_output=True, timeout=timeout)
        return p.returncode, p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return "hang", ""


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runner", required=True)
    ap.add_argument("--fuzz", type=int, default=1500, help="random corruptions")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    valid, c = cases()
    failures = 0
    checked = 0
    with tempfile.TemporaryDirectory(prefix="skiff-elf-") as d:
        path = os.path.join(d, "prog")

        def write(data):
            with open(path, "wb") as f:
                f.write(data)

        write(valid)
        rc, err = run(args.runner, path)
        if rc != 7:
            print(f"FAIL the valid minimal ELF should exit 7, got {rc}: {err.strip()}")
            return 1
        print("ok   valid minimal ELF runs (exit 7)")
        for name, data in c.items():
            write(data)
            rc, err = run(args.runner, path)
            checked += 1
            if rc == 2 and err.strip() and not sanitizer_report(err):
                print(f"ok   {name}: {err.strip().splitlines()[0]}")
            else:
                failures += 1
                print(f"FAIL {name}: status {rc}, stderr {err.strip()!r}")
        for name, p in (("missing file", os.path.join(d, "nope")), ("directory", d)):
            rc, err = run(args.runner, p)
            checked += 1
            if rc == 2 and err.strip():
                print(f"ok   {name}: {err.strip()}")
            else:
                failures += 1
                print(f"FAIL {name}: status {rc}")

        rng = random.Random(args.seed)
        crashes = 0
        for i in range(args.fuzz):
            data = bytearray(valid)
            for _ in range(rng.randint(1, 8)):
                pos = rng.randrange(0, 64 + 56) if rng.random() < 0.8 else rng.randrange(len(data))
                data[pos] = rng.randrange(256)
            if rng.random() < 0.1:
                data = data[:rng.randrange(len(data))]
            write(bytes(data))
            rc, err = run(args.runner, path)
            checked += 1
            if sanitizer_report(err):
                failures += 1
                print(f"FAIL corruption {i}: {sanitizer_report(err)}")
            if rc == "hang" or (isinstance(rc, int) and rc < 0):
                crashes += 1
                keep = os.path.join(tempfile.gettempdir(), f"skiff-elf-crash-{args.seed}-{i}")
                with open(keep, "wb") as f:
                    f.write(data)
                print(f"FAIL corruption {i}: runner {'hung' if rc == 'hang' else f'killed by signal {-rc}'}; "
                      f"input kept as {keep}")
        failures += crashes
        print(f"ok   {args.fuzz} random corruptions: {crashes} crashes or hangs")
    print(f"elf-hostile: {checked} files, {failures} failures")
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())

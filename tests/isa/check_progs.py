#!/usr/bin/python3
"""Differential check of the ISA test programs: qemu-riscv64 vs. skiff.

Runs every given static riscv64 program under qemu-riscv64 (the reference)
and under skiff-isa-run, both with an empty environment, and requires the
same exit status and byte-identical stdout. The reference run must exit 0
and end with the line "done", so a program that did not run cannot pass.
Known QEMU deviations from the spec (qemu_deviations.txt) are corrected in
the reference output before the comparison and reported.

Exit status 0 only if at least one program ran and all agreed.
"""
import argparse
import concurrent.futures
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from isa_common import QEMU_CPU, runner_env, sanitizer_report  # noqa: E402



def load_deviations(path):
    """{program: [(qemu line, spec line, reason)]} from a ' | '-separated file."""
    devs = {}
    if not path:
        return devs
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.rstrip("\n").split(" | ")]
            if len(parts) != 4:
                sys.exit(f"{path}:{lineno}: expected 'program | qemu line | spec line | why'")
            devs.setdefault(parts[0], []).append(tuple(parts[1:]))
    return devs


def status_of(rc):
    """A process killed by signal N reports 128+N, as a shell would."""
    return 128 - rc if rc < 0 else rc


def run(cmd, timeout, env):
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout)
        return status_of(p.returncode), p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        return "timeout", e.stdout or b"", e.stderr or b""


def first_diffs(exp, got, limit):
    """Up to `limit` differing lines, as (line number, expected, got)."""
    el, gl = exp.split(b"\n"), got.split(b"\n")
    out = []
    for i in range(max(len(el), len(gl))):
        e = el[i] if i < len(el) else b"<missing>"
        g = gl[i] if i < len(gl) else b"<missing>"
        if e != g:
            out.append((i + 1, e.decode(errors="replace"), g.decode(errors="replace")))
            if len(out) >= limit:
                break
    return out


def check(prog, args, devs):
    name = os.path.basename(prog)
    for suffix in (".elf",):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    qrc, qout, qerr = run([args.qemu, "-cpu", QEMU_CPU, prog], args.timeout, {})
    report = []
    if qrc != 0 or not qout.endswith(b"done\n"):
        report.append(f"{name}: the reference run failed (qemu status {qrc}); "
                      f"stderr: {qerr.decode(errors='replace').strip()[:500]}")
        return name, False, report
    lines = qout.split(b"\n")
    for qline, sline, why in devs.get(name, []):
        hits = [i for i, l in enumerate(lines) if l == qline.encode()]
        for i in hits:
            lines[i] = sline.encode()
        if hits:
            report.append(f"{name}: corrected {len(hits)} qemu line(s) known to be wrong: {why}")
    qout = b"\n".join(lines)

    srun = [args.runner, "--timeout", str(args.timeout), "--mmu", args.mmu, prog]
    src, sout, serr = run(srun, args.timeout + 30, runner_env())
    san = sanitizer_report(serr.decode(errors="replace"))
    ok = src == qrc and sout == qout and san is None
    if san:
        report.append(f"{name}: SANITIZER: {san}")
    if not ok:
        report.append(f"{name}: MISMATCH (qemu status {qrc}, skiff status {src}, "
                      f"{len(qout)} vs {len(sout)} bytes of output)")
        for n, e, g in first_diffs(qout, sout, args.max_diffs):
            report.append(f"  line {n}:\n    expected (qemu): {e}\n    got (skiff):     {g}")
        if serr.strip():
            report.append("  skiff stderr: " + serr.decode(errors="replace").strip()[:2000])
        report.append(f"  reproduce: {' '.join(srun)}")
    return name, ok, report


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runner", required=True, help="skiff-isa-run")
    ap.add_argument("--qemu", default="qemu-riscv64")
    ap.add_argument("--deviations", help="qemu_deviations.txt")
    ap.add_argument("--mmu", default="bare", choices=["bare", "sv39", "sv48", "sv57"],
                    help="run skiff through page tables of this mode")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--max-diffs", type=int, default=20)
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("progs", nargs="*")
    args = ap.parse_args()

    progs = [p for p in args.progs if not p.endswith(".o")]
    if not progs:
        print("isa-progs: no programs given; nothing was checked")
        return 1
    devs = load_deviations(args.deviations)
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        for name, ok, report in ex.map(lambda p: check(p, args, devs), progs):
            results.append(ok)
            print(f"{'ok  ' if ok else 'FAIL'} {name}")
            for line in report:
                print(line)
    failed = results.count(False)
    print(f"isa-progs: {len(results) - failed}/{len(results)} programs agree with qemu-riscv64 "
          f"(skiff with --mmu {args.mmu})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Random differential ISA check: qemu-riscv64 vs. skiff-isa-run.

Generates programs with randgen.py (COUNT random instructions in total, in
programs of PER_PROG each), builds them with the cross compiler, runs each
under qemu-riscv64 and skiff-isa-run and compares the final state dumps (all
x and f registers, fcsr, the 1 KiB data buffer). For every mismatch it prints
what differs and, unless --no-bisect, cuts the program down to the first
instruction group after which the two disagree, with the operand values going
in, so the report names one instruction.

Exit status 0 only if at least one program ran and all agreed.
"""
import argparse
import concurrent.futures
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import randgen  # noqa: E402
from isa_common import MARCH, QEMU_CPU, runner_env, sanitizer_report  # noqa: E402

XNAMES = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1"] + \
    [f"a{i}" for i in range(8)] + [f"s{i}" for i in range(2, 12)] + [f"t{i}" for i in range(3, 7)]


class Env:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir


def build(env, text, name):
    src = os.path.join(env.workdir, name + ".S")
    elf = os.path.join(env.workdir, name)
    with open(src, "w") as f:
        f.write(text)
    p = subprocess.run([env.args.cc, "-nostdlib", "-static", f"-march={MARCH}", src, "-o", elf],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"cannot build {src}:\n{p.stderr[:3000]}")
    return src, elf


MMU_MODES = ["bare", "sv39", "sv48", "sv57"]


def mmu_for(args, index):
    return MMU_MODES[index % 4] if args.mmu == "mix" else args.mmu


def run_both(env, elf, mmu):
    def one(cmd, timeout, env):
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout)
            rc = 128 - p.returncode if p.returncode < 0 else p.returncode
            return rc, p.stdout, p.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired:
            return "timeout", b"", "timed out"
    q = one([env.args.qemu, "-cpu", QEMU_CPU, elf], 120, {})
    s = one([env.args.runner, "--timeout", "120", "--mmu", mmu, elf], 150, runner_env())
    return q, s


def decode(dump):
    """{name: value} for registers, fcsr and the buffer's 8-byte words."""
    if len(dump) != randgen.DUMP_END:
        return None
    d = {}
    for i in range(randgen.BUF_SIZE // 8):
        d[f"buf+{8 * i:#05x}"] = struct.unpack_from("<Q", dump, 8 * i)[0]
    for i in range(32):
        d[f"x{i}({XNAMES[i]})"] = struct.unpack_from("<Q", dump, randgen.DUMP_X + 8 * i)[0]
    for i in range(32):
        d[f"f{i}"] = struct.unpack_from("<Q", dump, randgen.DUMP_F + 8 * i)[0]
    d["fcsr"] = struct.unpack_from("<Q", dump, randgen.DUMP_FCSR)[0]
    return d


def differences(qout, sout):
    dq, ds = decode(qout), decode(sout)
    if dq is None or ds is None:
        return [f"output sizes: qemu {len(qout)} bytes, skiff {len(sout)} bytes "
                f"(expected {randgen.DUMP_END})"]
    return [f"{k}: expected (qemu) {dq[k]:#018x}, got (skiff) {ds[k]:#018x}"
            for k in dq if dq[k] != ds[k]]


def operands_of(lines):
    regs = []
    for line in lines:
        for tok in line.replace(",", " ").replace("(", " ").replace(")", " ").split()[1:]:
            if tok[0] in "xf" and tok[1:].isdigit() and tok not in regs:
                regs.append(tok)
    return regs


def bisect(env, state, items, tag, mmu):
    """Smallest prefix of instruction groups whose run differs."""
    cache = {}

    def differs(n):
        if n not in cache:
            _, elf = build(env, randgen.render(state, items, n), f"{tag}-p{n}")
            (qrc, qout, _), (src, sout, serr) = run_both(env, elf, mmu)
            cache[n] = (qrc != src or qout != sout, qout, sout, serr)
        return cache[n][0]

    lo, hi = 0, len(items)
    if differs(lo):
        return ["  even the program without random instructions differs"]
    if not differs(hi):
        return ["  the prefix runs agree (mismatch not reproducible by cutting the program)"]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if differs(mid):
            hi = mid
        else:
            lo = mid
    lines, _ = items[hi - 1]
    before = randgen_decode_regs(cache[lo][1])
    out = [f"  first differing instruction group ({hi} of {len(items)}):"]
    out += [f"      {l}" for l in lines]
    if before:
        ops = operands_of(lines)
        out.append("    operands before it: " + ", ".join(
            f"{r}={before[r]:#x}" for r in ops if r in before) +
            f", fcsr={before['fcsr']:#x}")
    for d in differences(cache[hi][1], cache[hi][2]):
        out.append("    after it: " + d)
    if cache[hi][3].strip():
        out.append("    skiff stderr: " + cache[hi][3].strip()[:500])
    return out


def randgen_decode_regs(dump):
    d = decode(dump)
    if d is None:
        return None
    regs = {f"x{i}": d[f"x{i}({XNAMES[i]})"] for i in range(32)}
    regs.update({f"f{i}": d[f"f{i}"] for i in range(32)})
    regs["fcsr"] = d["fcsr"]
    return regs


def check_one(env, index, count):
    a = env.args
    state, items, n = randgen.make(a.seed, index, count, not a.no_misaligned, not a.no_loops)
    tag = f"s{a.seed}-i{index}"
    src, elf = build(env, randgen.render(state, items), tag)
    mmu = mmu_for(a, index)
    (qrc, qout, qerr), (src_rc, sout, serr) = run_both(env, elf, mmu)
    repro = (f"randgen.py --seed {a.seed} --index {index} --count {count}"
             f"{' --no-misaligned' if a.no_misaligned else ''}{' --no-loops' if a.no_loops else ''} -o {tag}.S; "
             f"skiff-isa-run --mmu {mmu} <the built {tag}>")
    if qrc != 0 or len(qout) != randgen.DUMP_END:
        return index, n, False, [f"program {index}: the reference run failed (qemu status {qrc}): "
                                 f"{qerr.strip()[:500]}", f"  reproduce: {repro}"]
    san = sanitizer_report(serr)
    if src_rc == qrc and sout == qout and san is None:
        return index, n, True, []
    if san:
        return index, n, False, [f"program {index}: SANITIZER: {san}", f"  reproduce: {repro}"]
    report = [f"program {index}: MISMATCH (skiff status {src_rc}; kept as {src})",
              f"  reproduce: {repro}"]
    if serr.strip():
        report.append("  skiff stderr: " + serr.strip()[:500])
    diffs = differences(qout, sout)
    report += ["  " + d for d in diffs[:40]]
    if len(diffs) > 40:
        report.append(f"  ... {len(diffs) - 40} more")
    if not a.no_bisect:
        report += bisect(env, state, items, tag, mmu)
    return index, n, False, report


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, required=True, help="random instructions in total")
    ap.add_argument("--per-prog", type=int, default=4000, help="random instructions per program")
    ap.add_argument("--runner", default=os.environ.get("SKIFF_ISA_RUN"),
                    help="skiff-isa-run (default: $SKIFF_ISA_RUN or build/tests/isa/skiff-isa-run)")
    ap.add_argument("--qemu", default="qemu-riscv64")
    ap.add_argument("--cc", default="riscv64-linux-gnu-gcc")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--keep", help="directory for the generated programs (default: a temporary "
                                   "one, kept only if something failed)")
    ap.add_argument("--no-bisect", action="store_true")
    ap.add_argument("--no-misaligned", action="store_true", help="aligned memory accesses only")
    ap.add_argument("--no-loops", action="store_true",
                    help="no loops: the programs every seed gave before loops came")
    ap.add_argument("--mmu", default="mix", choices=MMU_MODES + ["mix"],
                    help="skiff's translation mode; mix (default) rotates through all four")
    args = ap.parse_args()
    if not args.runner:
        args.runner = os.path.join(HERE, "..", "..", "build", "tests", "isa", "skiff-isa-run")
    if not os.access(args.runner, os.X_OK):
        print(f"randcheck: runner {args.runner} not found; pass --runner")
        return 1
    if args.count <= 0 or args.per_prog <= 0:
        print("randcheck: --count and --per-prog must be positive; nothing was checked")
        return 1

    workdir = args.keep or tempfile.mkdtemp(prefix="skiff-randcheck-")
    os.makedirs(workdir, exist_ok=True)
    env = Env(args, workdir)
    chunks = []
    left = args.count
    while left > 0:
        chunks.append(min(args.per_prog, left))
        left -= chunks[-1]

    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        futs = [ex.submit(check_one, env, i, c) for i, c in enumerate(chunks)]
        for fut in futs:
            try:
                index, n, ok, report = fut.result()
            except RuntimeError as e:
                index, n, ok, report = -1, 0, False, [str(e)]
            results.append((index, n, ok))
            for line in report:
                print(line, flush=True)
    bad = [r for r in results if not r[2]]
    total = sum(r[1] for r in results)
    print(f"randcheck: seed {args.seed}: {len(results)} programs, {total} random instructions, "
          f"{len(bad)} mismatching program(s)")
    if bad:
        print(f"randcheck: programs kept in {workdir}")
    elif not args.keep:
        for f in os.listdir(workdir):
            os.unlink(os.path.join(workdir, f))
        os.rmdir(workdir)
    return 1 if bad or not results else 0


if __name__ == "__main__":
    sys.exit(main())

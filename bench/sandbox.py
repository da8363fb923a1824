#!/usr/bin/python3
"""What skiff's sandbox costs: the boot and I/O rows of bench/run.sh with
the sandbox on (skiff's default) and off (`skiff run --seccomp off`: no
seccomp filters, no capability drop, no rlimits), beside QEMU, in one run
(docs/benchmark-log.md, "Sandbox on and off"):

    bench/sandbox.py [--runs 3] [--rows boot,blk,net] [--io-mib 64]
                     [--skiff BINARY] [--json FILE] [--output FILE.md]
                     [--syscalls]

It is bench/run.sh's runner with a third system: for every run and every
VM configuration the rows need, the same guest boots in skiff with the
sandbox, in skiff without it and in QEMU, strictly in that order, and each
row measures in each boot exactly as bench/README.md describes (boot: launch
to the shell prompt, and the host CPU seconds to get there; blk: O_DIRECT
sequential and random reads and writes of a raw disk, every block's CRC-32
checked; net: TCP both ways through user networking). Boots are on 1 hart
unless --boot-harts says more.

The table gives medians and the sandbox's cost, on / off - 1 (for a
throughput, off / on - 1: positive means the sandbox made it slower); the
issue's target is at most 2% either way. Wall-clock times on a shared host
are noisy; the host CPU seconds (utime + stime of the VMM process, all
threads) are the steadier measure, and the load average before and after
the run is printed with the table.

The I/O rows scatter from run to run by far more than 2% even on a quiet
host, so --syscalls adds a bound that does not depend on timing the rows
twice: bench/seccomp_cost.c measures what the VMM's filters add to one
system call (a confined and an unconfined thread of each class, alternated;
the largest difference either way is taken as the cost per call), perf
counts the system calls the VMM makes during each I/O measurement
(bench/syscount.py), and the table gives calls x cost / the row's host CPU
time: the most the filters can have added to that row.
"""
import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time

import subprocess

import bench
import syscount
from peers import Qemu, Skiff
from rowbase import DEFAULT_IMAGE, HIGHER

ON, OFF, QEMU = "skiff", "skiff-nosandbox", "qemu"


class SkiffNoSandbox(Skiff):
    """skiff run with the sandbox off; otherwise the same command line."""
    name = OFF

    def argv(self, *args, **kw):
        return super().argv(*args, **kw) + ["--seccomp", "off"]


def cost(on, off, better):
    """The sandbox's cost in percent (positive: slower with it)."""
    if on is None or off is None or on <= 0 or off <= 0:
        return None
    return 100.0 * ((off / on) if better == HIGHER else (on / off)) - 100.0


def seccomp_cost(skiff_bin):
    """(the filters' cost per system call in ns, the lines seccomp-cost
    printed), from the seccomp-cost binary of skiff's build directory."""
    build = os.path.dirname(os.path.dirname(os.path.dirname(skiff_bin)))
    tool = os.path.join(build, "bench", "seccomp-cost")
    p = subprocess.run([tool], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench/sandbox.py: {tool} failed: {p.stderr.strip()[-300:]}")
    lines = p.stdout.strip().splitlines()
    deltas = [abs(float(line.split()[-1])) for line in lines[1:]]
    if not deltas:
        sys.exit(f"bench/sandbox.py: {tool} measured nothing")
    return max(deltas), lines


def syscall_bound(runner, per_call_ns, lines):
    """The table of --syscalls: for every I/O measurement, the most the
    filters can have added to its host CPU time."""
    res = runner.res
    L = ["", "System calls and the filters' bound (--syscalls): `seccomp-cost` measured, per "
         "system call, confined minus unconfined (ns):", "", "```", *lines, "```", "",
         f"Cost per call taken: {per_call_ns:.1f} ns (the largest difference either way). "
         f"Bound = system calls x cost / host CPU time of the measurement (sandbox on, medians).",
         "", "| measure | system calls (on) | host CPU s (on) | calls per CPU ms | bound |",
         "|---|---|---|---|---|"]
    worst = 0.0
    for (key, system), _ in sorted(res.samples.items()):
        if system != ON or not key.endswith(".syscalls"):
            continue
        calls, cpu = res.median(key, ON), res.median(key[:-9] + ".cpu", ON)
        if not calls or not cpu:
            continue
        bound = 100.0 * calls * per_call_ns * 1e-9 / cpu
        worst = max(worst, bound)
        L.append(f"| {key[:-9]} | {calls:.0f} | {cpu:.3f} | {calls / cpu / 1000:.1f} | "
                 f"{bound:.2f}% |")
    L += ["", f"Largest bound: {worst:.2f}% of a row's host CPU time."]
    return L


def report(a, runner, cmd, load_before, load_after, elapsed):
    res = runner.res
    L = [f"Command: `{cmd}`; {a.runs} run(s), each booting skiff with the sandbox, skiff "
         f"without it (`--seccomp off`) and QEMU in turn; host load average {load_before} "
         f"before the run, {load_after} after; {elapsed / 60:.0f} min.", "",
         "| measure | sandbox on | sandbox off | sandbox cost | QEMU | skiff (on) / QEMU |",
         "|---|---|---|---|---|---|"]
    worst = []
    for row in runner.rows:
        for m in row.metrics(a):
            on, off, q = (res.median(m.key, s) for s in (ON, OFF, QEMU))
            if on is None and off is None:
                continue
            c = cost(on, off, m.better)
            what = m.label + (" (host CPU s)" if m.table == "cputime" else f" ({m.unit})")
            ratio = (on / q) if on and q else None
            L.append(f"| {row.name}: {what} | {bench.fmt(on, m.unit)} | {bench.fmt(off, m.unit)} | "
                     f"{'—' if c is None else f'{c:+.1f}%'} | {bench.fmt(q, m.unit)} | "
                     f"{'—' if ratio is None else f'{ratio:.2f}'} |")
            if c is not None:
                worst.append((abs(c), m.key, m.table == "cputime"))
    L.append("")
    if worst:
        cpu = [w for w in worst if w[2]]
        L.append(f"Largest cost either way: {max(worst)[0]:.1f}% ({max(worst)[1]}); over the host "
                 f"CPU measures: {max(cpu)[0]:.1f}% ({max(cpu)[1]})." if cpu else
                 f"Largest cost either way: {max(worst)[0]:.1f}% ({max(worst)[1]}).")
    L.append("")
    L.append("Samples: " + "; ".join(
        f"{k} {s}: {', '.join(bench.fmt(x) for x in v)}"
        for (k, s), v in sorted(res.samples.items()) if s in (ON, OFF)))
    if a.count_syscalls:
        L += syscall_bound(runner, *a.seccomp_cost)
    if runner.errors:
        L += ["", "Errors: " + "; ".join(runner.errors)]
    return "\n".join(L) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rows", default="boot,blk,net", help="rows of bench/run.sh (default boot,blk,net)")
    ap.add_argument("--boot-harts", default="1", help="comma-separated hart counts of the boot row")
    ap.add_argument("--io-mib", type=int, default=64)
    ap.add_argument("--skiff", help="skiff binary (default: a release build in build-bench)")
    ap.add_argument("--json", help="also write every sample as JSON")
    ap.add_argument("--output", help="write the Markdown section here")
    ap.add_argument("--syscalls", action="store_true",
                    help="also bound the filters' cost from system call counts (needs perf)")
    o = ap.parse_args(argv)
    a = bench.parse_args(["--runs", str(o.runs), "--rows", o.rows, "--io-mib", str(o.io_mib)]
                         + (["--skiff", o.skiff] if o.skiff else []))
    a.boot_harts = [int(h) for h in o.boot_harts.split(",")]
    skiff_bin = os.path.abspath(o.skiff) if o.skiff else bench.build_skiff(a.build_dir)[0]
    a.count_syscalls = o.syscalls
    if o.syscalls:
        why = syscount.available()
        if why:
            sys.exit(f"bench/sandbox.py --syscalls: {why}")
        a.seccomp_cost = seccomp_cost(skiff_bin)
    gdir = bench.default_guest()
    images = {DEFAULT_IMAGE: (os.path.join(gdir, "Image"), os.path.join(gdir, "initrd.cpio.gz"))}
    systems = [Skiff(skiff_bin), SkiffNoSandbox(skiff_bin), Qemu(a.qemu)]
    log_dir = tempfile.mkdtemp(prefix="skiff-bench-sandbox-")
    bench.log(f"console logs in {log_dir}")
    runner = bench.Runner(a, systems, images, log_dir)
    load_before, t0 = bench.loadavg(), time.monotonic()
    try:
        runner.run(None)
    finally:
        if runner.workdir:
            shutil.rmtree(runner.workdir, ignore_errors=True)
    cmd = "bench/sandbox.py" + "".join(" " + shlex.quote(x) for x in argv)
    text = report(a, runner, cmd, load_before, bench.loadavg(), time.monotonic() - t0)
    bench.write_results(runner, text, o.json, o.output)
    return 1 if runner.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Public CPU workloads outside the bench, skiff beside QEMU, pair by pair.

    bench/wide.py [--runs 3] [--only cpumix,xzc,...] [--skiff BINARY]
                  [--qemu BINARY] [--json FILE] [--output FILE.md]

Issue 13's result is to be checked by a CPU benchmark the bench does not
run; this runs a spread of such programs.  For every run (a pair) skiff and
QEMU boot the same kernel and initramfs side by side (1 hart, 1 GiB, the
bench's command line), and each workload runs in one guest, then at once in
the other, before the next workload starts; which VMM goes first alternates
between runs (as in bench/run.sh's cpu row).  The measure is the host CPU
seconds (utime + stime, all threads) of the VMM process over the command,
which a busy host stretches less than wall-clock time.  Every workload's
output (a checksum, a digest of what it wrote, a count it printed) must be
the same in both guests of a pair; a difference is reported and fails the
run.  The table gives per pair QEMU / skiff (above 1: skiff cost less) and
the median over the pairs.

The guest is guest/profiles/bench-wide.conf (Debian riscv64 programs: xz,
zstd, openssl, sysbench, stockfish, primesieve, lua5.4, perl, sqlite3) plus
a second cpio archive appended to its initramfs with the static C programs
of bench/wide/*.c (built here with riscv64-linux-gnu-gcc -O2 -static) and
the scripts of bench/wide/, all under /opt/wide in the guest.
"""

import argparse
import glob
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import bench
from guestproc import GuestError, GuestProcess
from peers import Qemu, Skiff
from rowbase import GUEST_DIR, Spec, WorkloadError
from rows import Session

HERE = os.path.dirname(os.path.abspath(__file__))
WIDE_SRC = os.path.join(HERE, "wide")
IMAGE = "bench-wide"            # guest/profiles/bench-wide.conf
OPT = "/opt/wide"               # the appended archive's programs and scripts in the guest
SPEC = Spec(1, 1024, (), IMAGE)
CROSS_CC = "riscv64-linux-gnu-gcc"
W = GUEST_DIR

# Made once per boot, not measured: 6 MiB of the guest's own shared
# libraries (code and data, compressible like a binary tree), its xz -1
# and zstd -3 forms for the decompressors.  The same image gives the same
# bytes in both guests; its digest is compared like a workload's output.
PREP = (f"mkdir -p {W} && cd {W} && "
        f"cat /usr/lib/riscv64-linux-gnu/*.so* | head -c 6291456 > data.bin && "
        f"/usr/bin/xz -1 -T1 -c data.bin > data.xz && /usr/bin/zstd -q -3 -f data.bin -o data.zst && "
        f"md5sum data.bin data.xz data.zst")

AES_KEY = "000102030405060708090a0b0c0d0e0f"
AES_IV = "f0e0d0c0b0a090807060504030201000"


class Work:
    """Programs go by their full paths: the guest's busybox sh runs its own
    applet of a name (xz, for one) before it looks at PATH.

    One workload: a timed shell command (run in W, its output to a file
    or discarded: a console is slow and the two VMMs' consoles differ) and
    an untimed check command that prints what must be the same in both
    guests."""

    def __init__(self, key, label, cmd, check):
        self.key, self.label, self.cmd, self.check = key, label, cmd, check


def loop(n, cmd):
    return cmd if n == 1 else f"for i in {' '.join(str(i) for i in range(n))}; do {cmd} || exit 1; done"


WORKS = [
    Work("cpumix", "cpumix (CoreMark-like, bench/wide/cpumix.c)", f"{OPT}/cpumix 20000 > cpumix.out",
         "cat cpumix.out"),
    Work("fpmix", "fpmix (n-body, axpy/dot, Mandelbrot; bench/wide/fpmix.c)", f"{OPT}/fpmix 20000 > fpmix.out",
         "cat fpmix.out"),
    Work("stockfish", "stockfish bench 16 1 10 (its own benchmark: 16 MB hash, 1 thread, depth 10)",
         "/usr/games/stockfish bench 16 1 10 > sf.out 2>&1", "grep -E '^Nodes searched' sf.out"),
    Work("xzc", "xz -6 -T1 (6 MiB)", "/usr/bin/xz -6 -T1 -c data.bin > out.xz", "md5sum < out.xz"),
    Work("xzd", "xz -d, 3× (6 MiB out)", loop(3, "/usr/bin/xz -d -c data.xz > out.xzd"), "md5sum < out.xzd"),
    Work("zstdc", "zstd -9, 2× (6 MiB)", loop(2, "/usr/bin/zstd -q -9 -f data.bin -o out.zst"), "md5sum < out.zst"),
    Work("zstdd", "zstd -d, 10× (6 MiB out)", loop(10, "/usr/bin/zstd -q -d -f data.zst -o out.zstd"),
         "md5sum < out.zstd"),
    Work("sha256", "openssl dgst -sha256, 8× 6 MiB", loop(8, "/usr/bin/openssl dgst -sha256 data.bin") + " > sha256.out",
         "cat sha256.out"),
    Work("sha512", "openssl dgst -sha512, 8× 6 MiB", loop(8, "/usr/bin/openssl dgst -sha512 data.bin") + " > sha512.out",
         "cat sha512.out"),
    Work("aes", "openssl enc -aes-128-cbc, 8× 6 MiB",
         loop(8, f"/usr/bin/openssl enc -aes-128-cbc -K {AES_KEY} -iv {AES_IV} -in data.bin -out out.aes"),
         "md5sum < out.aes"),
    Work("sysbench", "sysbench cpu (1500 events, primes to 10000)",
         "/usr/bin/sysbench cpu --threads=1 --time=0 --events=1500 --cpu-max-prime=10000 run > sb.out",
         "grep -E 'Prime numbers limit|total number of events' sb.out"),
    Work("primesieve", "primesieve 1e9 -t1 (its segmented sieve of Eratosthenes, one thread)",
         "/usr/bin/primesieve 1e9 -t1 > ps.out", "grep Primes ps.out"),
    Work("lua", "lua5.4 bench/wide/work.lua 4 (sort, string.format, gmatch, recursion)",
         f"/usr/bin/lua5.4 {OPT}/work.lua 4 > lua.out", "cat lua.out"),
    Work("perl", "perl bench/wide/work.pl 6 (sort, sprintf, regex, hash, recursion)",
         f"/usr/bin/perl {OPT}/work.pl 6 > perl.out", "cat perl.out"),
    Work("sqlite", "sqlite3 < bench/wide/work.sql, 2× (60000-row CTE insert, index, GROUP BY, join, LIKE)",
         loop(2, f"/usr/bin/sqlite3 < {OPT}/work.sql") + " > sql.out", "cat sql.out"),
]


# ------------------------------------------------------------------ logic
def first_goes(run, systems):
    """The systems in the order they boot and run each workload in this
    run: as given in even runs, reversed in odd ones (the second of a pair
    was often ahead on a loaded host, whichever it was)."""
    return list(systems) if run % 2 == 0 else list(systems)[::-1]


def measure_pair(sessions, works, rec):
    """Run every workload in each session of the pair in turn; rec(system,
    key, host CPU seconds).  Returns a message for every workload whose
    checks differ between the sessions."""
    mismatches = []
    for w in works:
        seen = {}
        for s in sessions:
            _, cpu = s.measured(f"cd {W} && {w.cmd}")
            rec(s.system, w.key, cpu)
            seen[s.system] = s.sh(f"cd {W} && {w.check}", 600).strip()
        if len(set(seen.values())) > 1:
            mismatches.append(f"{w.key}: outputs differ: " +
                              "; ".join(f"{k}: {v[-200:]!r}" for k, v in seen.items()))
    return mismatches


def pair_ratios(samples, key, num="qemu", den="skiff"):
    """samples: {(key, system): [CPU s per run, None where the run failed]}.
    The per-run ratio num / den, for the runs where both were measured."""
    a, b = samples.get((key, num), []), samples.get((key, den), [])
    return [x / y for x, y in zip(a, b) if x is not None and y]


def geomean(xs):
    xs = [x for x in xs if x]
    if not xs:
        return None
    p = 1.0
    for x in xs:
        p *= x
    return p ** (1 / len(xs))


def table(works, samples):
    """The Markdown table: per workload each VMM's CPU seconds per pair,
    QEMU / skiff per pair, and the median of those ratios; then the
    geometric mean of the medians."""
    L = ["| workload | skiff CPU s | QEMU CPU s | QEMU / skiff per pair | median |",
         "|---|---|---|---|---|"]
    medians = []
    for w in works:
        r = pair_ratios(samples, w.key)
        med = statistics.median(r) if r else None
        medians.append(med)

        def cells(system):
            return ", ".join("—" if v is None else f"{v:.2f}" for v in samples.get((w.key, system), []))
        L.append(f"| {w.key} | {cells('skiff')} | {cells('qemu')} | "
                 f"{', '.join(f'{x:.2f}' for x in r) or '—'} | "
                 f"{'—' if med is None else f'**{med:.2f}**'} |")
    g = geomean(medians)
    L.append(f"| geometric mean of the medians | | | | {'—' if g is None else f'**{g:.2f}**'} |")
    return "\n".join(L)


# ------------------------------------------------------------------ image
def build_extras(out_dir):
    """The static programs of bench/wide/*.c and the scripts there, as a
    gzip'd newc cpio archive holding opt/wide/; returns its path."""
    sys.path.insert(0, os.path.join(bench.REPO, "guest"))
    import imagetool
    root = os.path.join(out_dir, "root")
    dest = os.path.join(root, OPT.lstrip("/"))
    os.makedirs(dest)
    for src in sorted(glob.glob(os.path.join(WIDE_SRC, "*.c"))):
        exe = os.path.join(dest, os.path.basename(src)[:-2])
        bench.log(f"building {os.path.relpath(src, bench.REPO)} ({CROSS_CC} -O2 -static)")
        subprocess.run([CROSS_CC, "-O2", "-static", "-Wall", "-Wextra", "-o", exe, src, "-lm"], check=True)
    for f in sorted(glob.glob(os.path.join(WIDE_SRC, "work.*"))):
        shutil.copy(f, dest)
    archive = os.path.join(out_dir, "wide.cpio.gz")
    imagetool.cmd_cpio(root, archive)
    return archive


def with_extras(initrd, extras, out):
    """The image's initramfs with the extras' archive appended: the kernel
    unpacks one compressed archive after another (zero padding between them
    is skipped), the later ones over the earlier."""
    with open(out, "wb") as f:
        for part in (initrd, extras):
            with open(part, "rb") as p:
                data = p.read()
            f.write(data + b"\0" * (-len(data) % 4))
    return out


# ------------------------------------------------------------------ running
def boot_pair(run, order, kernel, initrd, opts, log_dir):
    sessions = []
    for system in order:
        argv = system.argv(kernel, initrd, bench.APPEND, SPEC.harts, SPEC.mem_mib)
        g = GuestProcess(system.name, argv, os.path.join(log_dir, f"run{run + 1}-{system.name}.log"))
        s = Session(system.name, SPEC, g, opts, [])
        sessions.append(s)
        s.boot()
        bench.log(f"  {system.name} booted: prompt {s.t_prompt:.2f} s")
    return sessions


def run_all(o, systems, kernel, initrd, works, log_dir):
    """Every run: boot the pair, prepare the data in both, measure; returns
    (samples, errors).  A run that fails leaves None in its place."""
    samples, errors = {}, []
    for run in range(o.runs):
        order = first_goes(run, systems)
        bench.log(f"run {run + 1}/{o.runs}: {', '.join(s.name for s in order)} side by side")
        for w in works:
            for s in systems:
                samples.setdefault((w.key, s.name), []).append(None)

        def rec(system, key, cpu):
            samples[(key, system)][run] = cpu
            bench.log(f"  {system}: {key} {cpu:.2f} CPU s")

        sessions = []
        try:
            sessions = boot_pair(run, order, kernel, initrd, o, log_dir)
            prep = {s.system: s.sh(PREP, 900).strip() for s in sessions}
            if len(set(prep.values())) > 1:
                raise WorkloadError(f"the prepared data differ: {prep}")
            for m in measure_pair(sessions, works, rec):
                bench.log(f"  MISMATCH run {run + 1}: {m}")
                errors.append(f"run {run + 1}: {m}")
            for s in sessions:
                s.g.poweroff()
        except (GuestError, WorkloadError, OSError) as e:
            bench.log(f"  ERROR run {run + 1}: {e}")
            errors.append(f"run {run + 1}: {e}")
        finally:
            for s in sessions:
                if s.g.proc.poll() is None:
                    s.g.kill()
    return samples, errors


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="pairs (default 3)")
    ap.add_argument("--only", help="comma-separated workloads (default: all: "
                                   + ",".join(w.key for w in WORKS) + ")")
    ap.add_argument("--skiff", help="skiff binary (default: a release build in build-bench)")
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--json", help="also write every sample as JSON")
    ap.add_argument("--output", help="also write the Markdown section to this file")
    o = ap.parse_args(argv)
    if o.runs < 1:
        ap.error("--runs must be at least 1")
    names = [n.strip() for n in o.only.split(",")] if o.only else [w.key for w in WORKS]
    unknown = set(names) - {w.key for w in WORKS}
    if unknown:
        ap.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    works = [w for w in WORKS if w.key in names]
    o.boot_timeout, o.work_timeout = 900, 3600

    skiff_bin = os.path.abspath(o.skiff) if o.skiff else bench.build_skiff("build-bench")[0]
    kernel, initrd = bench.build_guest(IMAGE)
    tmp = tempfile.mkdtemp(prefix="skiff-bench-wide-")
    try:
        log_dir = os.path.join(tmp, "logs")
        os.makedirs(log_dir)
        full = with_extras(initrd, build_extras(tmp), os.path.join(tmp, "initrd-wide.cpio.gz"))
        systems = [Skiff(skiff_bin), Qemu(o.qemu)]
        load0, t0 = bench.loadavg(), time.monotonic()
        samples, errors = run_all(o, systems, kernel, full, works, log_dir)
        load1, mins = bench.loadavg(), (time.monotonic() - t0) / 60
        if errors:
            kept = os.path.join(tempfile.gettempdir(), os.path.basename(tmp) + "-logs")
            shutil.copytree(log_dir, kept)
            errors.append(f"console logs in {kept}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    head = bench.git("rev-parse", "--short", "HEAD") or "?"
    cmd = "bench/wide.py" + "".join(" " + shlex.quote(x) for x in argv)
    text = (f"Command: `{cmd}` at {head}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
            f"{o.runs} pair(s), {mins:.0f} min; host load average {load0} before, {load1} after.\n\n"
            + table(works, samples) + "\n")
    if errors:
        text += "\nErrors: " + "; ".join(errors) + "\n"
    print(text)
    if o.output:
        with open(o.output, "w") as f:
            f.write(text)
    if o.json:
        with open(o.json, "w") as f:
            json.dump([{"key": k, "system": s, "values": v} for (k, s), v in samples.items()], f, indent=1)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The compiled-CPU rows: real programs from Debian's riscv64 archive,
7-Zip's benchmark and stress-ng, run inside the guest by skiff and by QEMU,
and natively on the host by the host's own packages of the same programs.

The guest is the bench-cpu profile (guest/profiles/bench-cpu.conf): the
default guest plus Debian's `7zip` and `stress-ng` packages with their
shared libraries and dynamic loader at their Debian paths, fetched and
unpacked by guest/build-image.sh.  Both VMMs boot that same kernel and
initramfs with 1 hart and 1 GiB.

Throughput is counted per second of host CPU time, which stays steady when
other programs compete for the host's cores (wall-clock time does not):
- stress-ng does a fixed number of bogo operations (--METHOD-ops N); the
  value is the operations beyond those of a 1-operation run divided by the
  host CPU seconds (utime + stime, all threads) of the VMM process over the
  stress-ng command with N operations minus those of the 1-operation run
  (start-up: exec, the dynamic loader, stress-ng's own set-up; that run is
  done once before to warm up).  Natively it
  is the CPU time of stress-ng itself, doing NATIVE_SCALE times as many
  operations (the same operations; the host does them that much faster;
  the hash, whose guest run is longer, 2.5 times).
- 7-Zip repeats each test (compressing, then decompressing, a buffer as
  big as the dictionary) until it has done a set number of "commands",
  2^34 unless its speed test finds a slow clock; `-mtic=20` sets it so low
  that every test is one pass, the same fixed work on every system (the
  default takes over an hour per run in an emulator).  `-md22` tests the
  4 MiB dictionary only: the default adds 8, 16 and 32 MiB, ten times the
  work.  Before the tests 7-Zip runs its speed test (a few billion simple
  instructions), which is part of the run's cost.  7-Zip rates itself by
  the clock of the machine it runs on, the guest's in a VM; the rating per
  host CPU second is 7-Zip's rating times the command's duration on that
  clock divided by the host CPU seconds the VMM used for the command: on a
  quiet host that factor is about 1, on a busy one it undoes the stretch of
  wall-clock time.  Natively 7-Zip measures that itself: its R/U column is
  its rating per CPU second of its own process, test by test.
"""

import os
import re
import shutil
import subprocess

from native import NativeError
from rowbase import GUEST_DIR, HIGHER, Metric, Spec, WorkloadError
from workloads import parse_timed, timed

IMAGE = "bench-cpu"     # guest/profiles/bench-cpu.conf
MEM_MIB = 1024          # 7-Zip's benchmark needs about 440 MiB at -mmt1
NATIVE_SCALE = 10

# -mtic=20: 2^20 "commands", less than one pass of any test, so each test
# is one pass; -md22: the 4 MiB dictionary (7-Zip's smallest by default).
SEVENZIP_ARGS = "-mmt1 -mtic=20 -md22"


# ------------------------------------------------------------------ 7-Zip
def sevenzip_cmd(prog, args, out):
    """7-Zip's own benchmark, its output to a file (on a terminal it would
    also print progress)."""
    return f"{prog} b {args} > {out} 2>&1"


_NUM = re.compile(r"\d+")


def parse_sevenzip(text):
    """The ratings from `7z b` output: {"enc", "dec", "tot"}: (usage %,
    rating per usage, rating) in MIPS, from its "Avr:" line (compressing |
    decompressing: speed, usage, R/U, rating) and "Tot:" line (usage, R/U,
    rating); "dicts": the dictionary sizes tested (log2)."""
    avr = tot = None
    dicts = []
    for line in text.replace("\r", "\n").splitlines():
        m = re.match(r"(\d+):\s+\d", line)
        if m:
            dicts.append(int(m.group(1)))
        elif line.startswith("Avr:"):
            avr = line[4:]
        elif line.startswith("Tot:"):
            tot = line[4:]
    if avr is None or tot is None or "|" not in avr:
        raise ValueError(f"no Avr:/Tot: lines in 7-Zip's output: {text[-300:]!r}")
    left, right = avr.split("|", 1)
    enc, dec, t = (list(map(int, _NUM.findall(x))) for x in (left, right, tot))
    if len(enc) != 4 or len(dec) != 4 or len(t) != 3:
        raise ValueError(f"unexpected 7-Zip totals: Avr:{avr!r} Tot:{tot!r}")
    return {"enc": tuple(enc[1:]), "dec": tuple(dec[1:]), "tot": tuple(t),
            "dicts": dicts}


# ------------------------------------------------------------------ stress-ng
class Stressor:
    """One stress-ng run: `stress-ng ARGS --OPS N --metrics --verify --seed 1`.
    kind is the stressor's name in the metrics table."""

    def __init__(self, key, label, kind, args, ops, quick_ops, native_scale=NATIVE_SCALE):
        self.key = key
        self.label = label
        self.kind = kind
        self.args = args
        self.ops = ops
        self.quick_ops = quick_ops
        self.native_scale = native_scale   # natively this many times the ops

    def cmd(self, ops, out):
        # --verify: the stressors check their results (a wrong answer fails
        # the run); --seed: the same random data on every system.
        return (f"stress-ng {self.args} --{self.kind}-ops {ops} --metrics --verify --seed 1 "
                f"> {out} 2>&1")


# Methods whose work per bogo operation is fixed: a set loop over fixed
# data (int64 and the hash reseed their generator each operation; the
# matrix, the doubles and the data to sort come from the seeded generator).
STRESSORS = [
    Stressor("int64", "integer: cpu method int64 (1000 rounds of 64-bit add, shift, mul, div, xor)",
             "cpu", "--cpu 1 --cpu-method int64", 1000, 100),
    Stressor("double", "floating point: cpu method double (binary64 arithmetic, libm sin and cos)",
             "cpu", "--cpu 1 --cpu-method double", 300, 30),
    Stressor("matrix", "matrix: matrix method prod (128×128 binary32 matrix product)",
             "matrix", "--matrix 1 --matrix-method prod --matrix-size 128", 100, 10),
    # 400000 ops: at 100000 a VMM's sample was 1.5-3 s of host CPU and
    # the per-pair ratios beside QEMU scattered +-20 %.  Natively the same
    # 1000000 ops as before (2.5x), already ~10 s.
    Stressor("hash", "hashing: hash method jenkin (Jenkins one-at-a-time over random keys)",
             "hash", "--hash 1 --hash-method jenkin", 400000, 40000, native_scale=2.5),
    Stressor("qsort", "sorting: qsort (libc qsort of 262144 int32, four sorts per operation)",
             "qsort", "--qsort 1 --qsort-size 262144", 8, 2),
]


def parse_stressng(text, kind):
    """Bogo operations of stressor `kind` from stress-ng's --metrics table
    ("metrc: [PID] NAME OPS REAL USR SYS ...")."""
    rx = re.compile(r"metrc: \[\d+\] +" + re.escape(kind) + r" +(\d+) +[\d.]+ +[\d.]+ +[\d.]+ ")
    for line in text.splitlines():
        m = rx.search(line)
        if m:
            return int(m.group(1))
    raise ValueError(f"no metrics line for stressor {kind} in stress-ng's output: {text[-300:]!r}")


# ------------------------------------------------------------------ rows
def _fail(out, tail):
    """What follows a command whose output goes to the file `out`: when it
    fails, print the end of that file (so the error says why) and fail."""
    return f" || {{ {tail} -n 8 {out}; exit 1; }}"


class SevenZipRow:
    name = "7zip"
    title = "7-Zip (Debian riscv64)"
    order = 8
    PARTS = (("enc", "compressing"), ("dec", "decompressing"), ("tot", "total"))

    def metrics(self, o):
        what = f"`7z b {SEVENZIP_ARGS}`"
        out = [Metric(f"7zip.{k}", f"{what} {part} rating per host CPU second", "MIPS",
                      better=HIGHER, native=True) for k, part in self.PARTS]
        out.append(Metric("7zip.raw", f"{what} total rating as 7-Zip prints it (its machine's clock)",
                          "MIPS", better=HIGHER, native=True))
        out.append(Metric("7zip.cpu", what, "s", table="cputime", native=True))
        return out

    def specs(self, o):
        return [Spec(1, MEM_MIB, (), IMAGE)]

    def record(self, rec, system, text, secs, cpu, checks, own_cpu=False):
        """Record one run's values.  In a VM the rating is scaled by the
        run's duration on the guest's clock over the VMM's CPU seconds;
        natively (own_cpu) 7-Zip's own R/U column is the same quantity,
        its rating per CPU second of its own process (times()), measured
        over each test rather than over the whole run."""
        r = parse_sevenzip(text)
        if cpu <= 0 or secs <= 0:
            raise ValueError(f"7-Zip took {secs} s and {cpu} CPU seconds")
        scale = secs / cpu
        for k, _ in self.PARTS:
            rec(f"7zip.{k}", r[k][1] if own_cpu else r[k][2] * scale)
        rec("7zip.raw", r["tot"][2])
        rec("7zip.cpu", cpu)
        checks.append(("7-Zip benchmark: dictionaries tested (log2)", system,
                       " ".join(map(str, r["dicts"]))))

    def measure(self, s, rec):
        out = f"{GUEST_DIR}/7z.out"
        s.sh(f"mkdir -p {GUEST_DIR}")
        cmd = sevenzip_cmd("7z", SEVENZIP_ARGS, out)
        text, cpu = s.measured(timed(cmd + _fail(out, "busybox tail")))
        secs, rc, _ = parse_timed(text)
        if rc != 0:
            raise WorkloadError(f"{s.system}: 7z b exited with status {rc}")
        self.record(rec, s.system, s.sh(f"cat {out}"), secs, cpu, s.checks)

    def native(self, host, rec):
        prog = shutil.which("7zz") or shutil.which("7z")
        if not prog:
            raise NativeError("native: no 7zz or 7z on the host (Debian package 7zip)")
        d = os.path.join(host.dir, "work")
        os.makedirs(d, exist_ok=True)
        out = os.path.join(d, "7z.out")
        text, cpu = host.sh(timed(sevenzip_cmd(prog, SEVENZIP_ARGS, out) + _fail(out, "tail")))
        secs, rc, _ = parse_timed(text)
        if rc != 0:
            raise NativeError(f"native: {prog} b exited with status {rc}")
        with open(out) as f:
            self.record(rec, "native", f.read(), secs, cpu, host.checks, own_cpu=True)


class StressNgRow:
    name = "stressng"
    title = "stress-ng (Debian riscv64)"
    order = 9

    def ops(self, o, st):
        return st.quick_ops if o.quick else st.ops

    def metrics(self, o):
        out = [Metric(f"stressng.{st.key}", f"{st.label}: bogo ops per host CPU second", "ops/s",
                      better=HIGHER, native=True) for st in STRESSORS]
        for st in STRESSORS:
            out += [Metric(f"stressng.{st.key}.cpu", f"stress-ng {st.key}, {self.ops(o, st)} bogo ops",
                           "s", table="cputime"),
                    Metric(f"stressng.{st.key}.base", f"stress-ng {st.key}, 1 bogo op (start-up)", "s",
                           table="cputime", native=True)]
        return out

    def specs(self, o):
        return [Spec(1, MEM_MIB, (), IMAGE)]

    @staticmethod
    def rate(what, n, run):
        """Bogo ops per CPU second past start-up: run(ops) -> (bogo ops
        done, CPU seconds) runs 1 op twice (the first warms what a second
        start finds ready: the page cache, a VMM's translated code) and
        then n ops; the rate is (ops(n) - ops(1)) / (CPU(n) - CPU(1)), with
        the ops stress-ng reports (the matrix stressor does 2 when asked
        for 1).  Returns (rate, CPU(n), CPU(1), ops(n))."""
        run(1)
        done1, base = run(1)
        done, cpu = run(n)
        if done1 < 1 or done < n or done <= done1:
            raise ValueError(f"{what} did {done1} and {done} bogo ops, asked for 1 and {n}")
        if cpu <= base:
            raise ValueError(f"{what}: {n} bogo ops cost no more CPU time than 1 "
                             f"({cpu:.2f} s, {base:.2f} s); too few operations to measure")
        return (done - done1) / (cpu - base), cpu, base, done

    def measure(self, s, rec):
        s.sh(f"mkdir -p {GUEST_DIR}")
        for st in STRESSORS:
            out = f"{GUEST_DIR}/stress-ng.{st.key}.out"

            def run(ops):
                _, cpu = s.measured(f"cd {GUEST_DIR} && " + st.cmd(ops, out) + _fail(out, "busybox tail"))
                return parse_stressng(s.sh(f"cat {out}"), st.kind), cpu
            n = self.ops(s.opts, st)
            try:
                r, cpu, base, done = self.rate(f"{s.system}: stress-ng {st.key}", n, run)
            except ValueError as e:
                raise WorkloadError(str(e))
            rec(f"stressng.{st.key}", r)
            rec(f"stressng.{st.key}.cpu", cpu)
            rec(f"stressng.{st.key}.base", base)
            s.checks.append((f"stress-ng {st.key}: bogo ops done ({n} asked)", s.system, str(done)))

    def native(self, host, rec):
        if not shutil.which("stress-ng"):
            raise NativeError("native: no stress-ng on the host (Debian package stress-ng)")
        d = os.path.join(host.dir, "work")
        os.makedirs(d, exist_ok=True)
        for st in STRESSORS:
            out = os.path.join(d, f"stress-ng.{st.key}.out")

            def run(ops):
                _, cpu = host.sh(f"cd {d} && " + st.cmd(ops, out) + _fail(out, "tail"))
                with open(out) as f:
                    return parse_stressng(f.read(), st.kind), cpu
            n = int(self.ops(host.opts, st) * st.native_scale)
            try:
                r, _, base, done = self.rate(f"native: stress-ng {st.key}", n, run)
            except ValueError as e:
                raise NativeError(str(e))
            rec(f"stressng.{st.key}", r)
            rec(f"stressng.{st.key}.base", base)
            host.checks.append((f"stress-ng {st.key}: bogo ops done ({n} asked)", "native", str(done)))


# ------------------------------------------------------------------ versions
def native_versions():
    """The host packages the native columns ran, for the report."""
    out = []
    for pkg in ("7zip", "stress-ng"):
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                               text=True).stdout.strip()
        except OSError:
            v = ""
        out.append(f"{pkg} {v}" if v else f"{pkg} (not installed)")
    return ", ".join(out)

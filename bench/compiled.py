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
  value is N divided by the host CPU seconds (utime + stime, all threads) of
  the VMM process over the whole stress-ng command, start-up included.
  Natively it is the CPU time of stress-ng itself, which does NATIVE_SCALE
  times as many operations (the same operations; more of them, so that
  start-up stays small there too).
- 7-Zip rates itself by the clock of the machine it runs on (the guest's,
  in a VM) and sets the work of each test from a speed test unless it is
  fixed; `-mtic=N` fixes it at 2^N "commands" per test (7-Zip's default of
  2^34 takes over ten minutes per test in an emulator).  7-Zip still
  shortens the tests when its speed test sees a slow clock (a step longer
  than 16 s, "(Cmplx)" in its output), which a busy host can cause.  The
  rating per host CPU second is 7-Zip's rating times the command's duration
  on that clock divided by the host CPU seconds the command cost (the VMM's,
  or 7-Zip's own natively): on a quiet host that factor is about 1.
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

# 2^N commands per 7-Zip test (-mtic=N), full run and --quick.
SEVENZIP_TIC = 28
SEVENZIP_TIC_QUICK = 25


# ------------------------------------------------------------------ 7-Zip
def sevenzip_cmd(prog, tic, out):
    """7-Zip's own benchmark, one thread, its output to a file (on a
    terminal it would also print progress)."""
    return f"{prog} b -mmt1 -mtic={tic} > {out} 2>&1"


_NUM = re.compile(r"\d+")


def parse_sevenzip(text):
    """The ratings from `7z b` output: {"enc", "dec", "tot"}: (usage %,
    rating per usage, rating) in MIPS, from its "Avr:" line (compressing |
    decompressing: speed, usage, R/U, rating) and "Tot:" line (usage, R/U,
    rating); "calibrated": whether 7-Zip set the work from its speed test."""
    avr = tot = None
    for line in text.replace("\r", "\n").splitlines():
        if line.startswith("Avr:"):
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
            "calibrated": "(Cmplx)" in text}


# ------------------------------------------------------------------ stress-ng
class Stressor:
    """One stress-ng run: `stress-ng ARGS --OPS N --metrics --verify --seed 1`.
    kind is the stressor's name in the metrics table."""

    def __init__(self, key, label, kind, args, ops, quick_ops):
        self.key = key
        self.label = label
        self.kind = kind
        self.args = args
        self.ops = ops
        self.quick_ops = quick_ops

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
             "cpu", "--cpu 1 --cpu-method int64", 300, 60),
    Stressor("double", "floating point: cpu method double (binary64 arithmetic, libm sin and cos)",
             "cpu", "--cpu 1 --cpu-method double", 100, 20),
    Stressor("matrix", "matrix: matrix method prod (128×128 binary32 matrix product)",
             "matrix", "--matrix 1 --matrix-method prod --matrix-size 128", 30, 6),
    Stressor("hash", "hashing: hash method jenkin (Jenkins one-at-a-time over random keys)",
             "hash", "--hash 1 --hash-method jenkin", 40000, 8000),
    Stressor("qsort", "sorting: qsort (libc qsort of 262144 int32, four sorts per operation)",
             "qsort", "--qsort 1 --qsort-size 262144", 4, 1),
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

    def tic(self, o):
        return SEVENZIP_TIC_QUICK if o.quick else SEVENZIP_TIC

    def metrics(self, o):
        what = f"`7z b -mmt1 -mtic={self.tic(o)}`"
        out = [Metric(f"7zip.{k}", f"{what} {part} rating per host CPU second", "MIPS",
                      better=HIGHER, native=True) for k, part in self.PARTS]
        out.append(Metric("7zip.raw", f"{what} total rating as 7-Zip prints it (its machine's clock)",
                          "MIPS", better=HIGHER, native=True))
        out.append(Metric("7zip.cpu", f"{what} (work depends on 7-Zip's speed test, see notes)", "s",
                          table="cputime", native=True))
        return out

    def specs(self, o):
        return [Spec(1, MEM_MIB, (), IMAGE)]

    def record(self, rec, system, text, secs, cpu, checks):
        r = parse_sevenzip(text)
        if cpu <= 0 or secs <= 0:
            raise ValueError(f"7-Zip took {secs} s and {cpu} CPU seconds")
        scale = secs / cpu
        for k, _ in self.PARTS:
            rec(f"7zip.{k}", r[k][2] * scale)
        rec("7zip.raw", r["tot"][2])
        rec("7zip.cpu", cpu)
        checks.append(("7-Zip benchmark: work per test", system,
                       "set from its speed test (slow clock)" if r["calibrated"] else "fixed by -mtic"))

    def measure(self, s, rec):
        out = f"{GUEST_DIR}/7z.out"
        s.sh(f"mkdir -p {GUEST_DIR}")
        cmd = sevenzip_cmd("7z", self.tic(s.opts), out)
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
        text, cpu = host.sh(timed(sevenzip_cmd(prog, self.tic(host.opts), out) + _fail(out, "tail")))
        secs, rc, _ = parse_timed(text)
        if rc != 0:
            raise NativeError(f"native: {prog} b exited with status {rc}")
        with open(out) as f:
            self.record(rec, "native", f.read(), secs, cpu, host.checks)


class StressNgRow:
    name = "stressng"
    title = "stress-ng (Debian riscv64)"
    order = 9

    def ops(self, o, st):
        return st.quick_ops if o.quick else st.ops

    def metrics(self, o):
        out = [Metric(f"stressng.{st.key}", f"{st.label}: bogo ops per host CPU second", "ops/s",
                      better=HIGHER, native=True) for st in STRESSORS]
        out += [Metric(f"stressng.{st.key}.cpu", f"stress-ng {st.key}, {self.ops(o, st)} bogo ops", "s",
                       table="cputime") for st in STRESSORS]
        return out

    def specs(self, o):
        return [Spec(1, MEM_MIB, (), IMAGE)]

    def measure(self, s, rec):
        s.sh(f"mkdir -p {GUEST_DIR}")
        for st in STRESSORS:
            out = f"{GUEST_DIR}/stress-ng.{st.key}.out"
            n = self.ops(s.opts, st)
            _, cpu = s.measured(f"cd {GUEST_DIR} && " + st.cmd(n, out) + _fail(out, "busybox tail"))
            done = parse_stressng(s.sh(f"cat {out}"), st.kind)
            if done != n or cpu <= 0:
                raise WorkloadError(f"{s.system}: stress-ng {st.key} did {done} bogo ops of {n} "
                                    f"in {cpu} CPU seconds")
            rec(f"stressng.{st.key}", n / cpu)
            rec(f"stressng.{st.key}.cpu", cpu)
            s.checks.append((f"stress-ng {st.key}: bogo ops done ({n} asked)", s.system, str(done)))

    def native(self, host, rec):
        if not shutil.which("stress-ng"):
            raise NativeError("native: no stress-ng on the host (Debian package stress-ng)")
        d = os.path.join(host.dir, "work")
        os.makedirs(d, exist_ok=True)
        for st in STRESSORS:
            out = os.path.join(d, f"stress-ng.{st.key}.out")
            n = self.ops(host.opts, st) * NATIVE_SCALE
            _, cpu = host.sh(f"cd {d} && " + st.cmd(n, out) + _fail(out, "tail"))
            with open(out) as f:
                done = parse_stressng(f.read(), st.kind)
            if done != n or cpu <= 0:
                raise NativeError(f"native: stress-ng {st.key} did {done} bogo ops of {n} "
                                  f"in {cpu} CPU seconds")
            rec(f"stressng.{st.key}", n / cpu)
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

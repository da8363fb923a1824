"""skiff's benchmark runner: skiff and QEMU side by side, in one run.

Usage: bench/run.sh [--quick] [--runs N] [--rows boot,cpu,smp,vmm] [options]

For every run, and for every VM configuration the chosen rows need, it
boots the same guest in skiff and then in QEMU (strictly alternating:
skiff, qemu, skiff, qemu, ...), lets each row measure what it wants in
that booted guest, and powers it off.  The native (host) workloads run once
per run after the guests.  At the end it prints, per measure, the median of
each system and the ratios, and writes docs/BENCHMARKS.md (the machine,
the versions, the exact command, the tables, every raw sample).

Rows are defined in rows.py; see bench/README.md for what each one means.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from guestproc import GuestError, GuestProcess
from native import NativeError, NativeHost
from peers import Qemu, Skiff
from report import Results, consistency, fmt, raw_samples, tables
from devices import DeviceError
from compiled import IMAGE as COMPILED_IMAGE, native_versions
from python_row import HOST_PYTHON, IMAGE as PYTHON_IMAGE, native_version as python_native_version
from rowbase import DEFAULT_IMAGE
from rows import ROWS, TABLE_ORDER, Session, WorkloadError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
APPEND = "console=ttyS0 earlycon=sbi quiet"     # skiff's default command line
# --quick smoke-tests every row that runs without root (tap needs it).
QUICK_ROWS = "boot,cpu,7zip,stressng,python,vmm,blk,9p,net"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------ options
def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 1 run, 1 hart, 2 MiB of data, 8 MiB of I/O, a 5 s idle window, "
                        "one boot per system for the rows without devices")
    p.add_argument("--runs", type=int, help="runs per system (default 3; 1 with --quick)")
    p.add_argument("--rows", help=f"comma-separated rows (default: {','.join(TABLE_ORDER)}, "
                                  f"tap only as root; --quick: {QUICK_ROWS})")
    p.add_argument("--skiff", help="skiff binary (default: build it in --build-dir)")
    p.add_argument("--skiff-engine", choices=("interp", "jit"),
                   help="skiff's execution tier (skiff run --engine; default: skiff's default)")
    p.add_argument("--build-dir", default="build-bench",
                   help="meson build directory for a release build of skiff, relative to the "
                        "checkout (default build-bench); set up and built when --skiff is not given")
    p.add_argument("--qemu", default="qemu-system-riscv64", help="QEMU binary")
    p.add_argument("--busybox", default="busybox", help="host busybox for the native runs")
    p.add_argument("--kernel", help="guest kernel Image (default: the default guest image)")
    p.add_argument("--initrd", help="guest initramfs (default: the default guest image)")
    p.add_argument("--data-mib", type=float, help="size of the CPU test data (default 32; 2 with --quick)")
    p.add_argument("--idle-seconds", type=float, help="idle CPU window (default 30; 5 with --quick)")
    p.add_argument("--io-mib", type=int, help="size of the I/O rows' disk area, shared file and TCP "
                                              "transfers (default 64; 8 with --quick)")
    p.add_argument("--io-rand-ops", type=int, help="random 4 KiB reads and writes of the blk row "
                                                   "(default 4096; 256 with --quick)")
    p.add_argument("--output", help="Markdown report (default docs/BENCHMARKS.md; --quick: none unless given)")
    p.add_argument("--json", help="also write the whole run (every sample) as JSON to this file; "
                                  "`--report-from FILE [--output MD]` renders it again")
    p.add_argument("--log-dir", help="where the guests' console logs go (default: a new temporary directory)")
    a = p.parse_args(argv)
    if a.runs is None:
        a.runs = 1 if a.quick else 3
    if a.runs < 1:
        p.error("--runs must be at least 1")
    rows = a.rows or (QUICK_ROWS if a.quick else ",".join(TABLE_ORDER))
    a.skipped = []
    if not a.rows and not a.quick and os.geteuid() != 0:
        # The tap row makes a network namespace and a TAP device.
        a.skipped = ["tap (needs root)"]
        rows = ",".join(r for r in TABLE_ORDER if r != "tap")
    a.row_names = [r.strip() for r in rows.split(",") if r.strip()]
    for r in a.row_names:
        if r not in ROWS:
            p.error(f"unknown row '{r}' (rows: {', '.join(TABLE_ORDER)})")
    a.data_bytes = int((a.data_mib if a.data_mib is not None else (2 if a.quick else 32)) * (1 << 20))
    a.idle_seconds = a.idle_seconds if a.idle_seconds is not None else (5.0 if a.quick else 30.0)
    a.io_bytes = (a.io_mib if a.io_mib is not None else (8 if a.quick else 64)) << 20
    a.io_rand_ops = a.io_rand_ops if a.io_rand_ops is not None else (256 if a.quick else 4096)
    if a.io_bytes <= 0 or a.io_rand_ops <= 0:
        p.error("--io-mib and --io-rand-ops must be positive")
    a.awk_steps = 30000 if a.quick else 300000
    a.boot_harts = [1] if a.quick else [1, 4]
    a.smp_harts = [1, 4]
    a.vmm_mem = 256
    # --quick boots once per system: every row shares one 1-hart 256 MiB guest.
    a.work_mem = 256 if a.quick else 1024
    a.boot_timeout = 900
    a.work_timeout = 3600
    # One I/O step (seconds): a guest that hangs fails its session sooner.
    a.io_timeout = 120 if a.quick else 600
    if a.output is None and not a.quick:
        a.output = os.path.join(REPO, "docs", "BENCHMARKS.md")
    return a


# ------------------------------------------------------------------ setup
def build_skiff(build_dir):
    """Release build of skiff in build_dir; returns (binary, meson buildtype)."""
    d = build_dir if os.path.isabs(build_dir) else os.path.join(REPO, build_dir)
    if not os.path.exists(os.path.join(d, "build.ninja")):
        log(f"setting up a release build in {build_dir}")
        subprocess.run(["meson", "setup", d, "--buildtype=release"], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL)
    log(f"building skiff (ninja -C {build_dir})")
    binary = os.path.join(d, "src", "cli", "skiff")
    p = subprocess.run(["ninja", "-C", d], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        if not os.access(binary, os.X_OK):
            sys.exit("bench: building skiff failed:\n" + p.stdout[-3000:])
        log("warning: the build failed; benchmarking the skiff binary already in " + build_dir)
        return binary, buildtype(d) + " (rebuild failed: binary older than the commit)"
    return binary, buildtype(d)


def buildtype(d):
    try:
        out = subprocess.run(["meson", "introspect", d, "--buildoptions"], capture_output=True,
                             text=True, check=True).stdout
        return next(o["value"] for o in json.loads(out) if o["name"] == "buildtype")
    except (OSError, subprocess.CalledProcessError, StopIteration, ValueError):
        return "unknown"


def default_guest(profile=DEFAULT_IMAGE):
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "skiff", profile)


def build_guest(profile):
    """guest/build-image.sh --profile PROFILE (it does nothing when the image
    is current); returns (kernel, initramfs)."""
    d = default_guest(profile)
    files = (os.path.join(d, "Image"), os.path.join(d, "initrd.cpio.gz"))
    log(f"building guest image '{profile}' (guest/build-image.sh --profile {profile})")
    p = subprocess.run([os.path.join(REPO, "guest", "build-image.sh"), "--profile", profile],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        if not all(os.path.isfile(f) for f in files):
            sys.exit(f"bench: building guest image '{profile}' failed:\n" + p.stdout[-3000:])
        log(f"warning: building guest image '{profile}' failed; using the one in {d}:\n"
            + p.stdout[-1000:])
    return files


def machine_info():
    info = {}
    with open("/proc/cpuinfo") as f:
        models = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
    info["cpu"] = models[0] if models else platform.processor() or "unknown"
    info["cores"] = os.cpu_count()
    with open("/proc/meminfo") as f:
        kb = next(int(l.split()[1]) for l in f if l.startswith("MemTotal:"))
    info["ram"] = f"{kb / (1 << 20):.1f} GiB"
    info["kernel"] = f"{platform.system()} {platform.release()} ({platform.machine()})"
    return info


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def write_results(runner, text, json_path=None, md_path=None):
    """Print a runner's report, and write it (md_path) and every sample
    (json_path, a list of key/system/values) where asked."""
    print(text)
    if json_path:
        with open(json_path, "w") as f:
            json.dump([{"key": k, "system": s, "values": v} for (k, s), v in runner.res.samples.items()],
                      f, indent=1)
    if md_path:
        with open(md_path, "w") as f:
            f.write(text)


def git(*args):
    try:
        return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def busybox_version(bb):
    try:
        out = subprocess.run([bb], capture_output=True, text=True).stdout
        return out.splitlines()[0].split(" multi-call")[0].strip()
    except (OSError, IndexError):
        return None


def guest_manifest(dirpath):
    info = {}
    try:
        with open(os.path.join(dirpath, "manifest")) as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] in ("kernel-release", "package"):
                    info.setdefault(parts[0], []).append(" ".join(parts[1:]))
    except OSError:
        pass
    return info


# ------------------------------------------------------------------ running
class Runner:
    def __init__(self, a, systems, images, log_dir):
        self.a = a
        self.workdir = None             # the devices' host files (disk image, shared directory)
        self.systems = systems
        self.images = images            # guest profile -> (kernel, initramfs)
        self.log_dir = log_dir
        self.res = Results()
        self.checks = []
        self.errors = []
        self.rows = [ROWS[n] for n in TABLE_ORDER if n in a.row_names]
        self.opensbi = None

    def specs(self):
        out = []
        for row in self.rows:
            for s in row.specs(self.a):
                if s not in out:
                    out.append(s)
        return out

    def rows_of(self, spec):
        return sorted((r for r in self.rows if spec in r.specs(self.a)), key=lambda r: r.order)

    def logfile(self, run, spec, system):
        devs = "".join(f"-{d.kind}" for d in spec.devices)
        if spec.image != DEFAULT_IMAGE:
            devs += f"-{spec.image}"
        return os.path.join(self.log_dir, f"run{run + 1}-{system.name}-{spec.harts}h-{spec.mem_mib}M{devs}.log")

    def together(self, spec):
        """Whether this configuration's guests boot side by side: a row of
        it measures every system in turn (CpuRow), and it has no devices
        (two VMMs would share a port or a TAP name)."""
        return (len(self.systems) > 1 and not spec.devices
                and any(getattr(r, "together", False) for r in self.rows_of(spec)))

    def sessions(self, run, spec, systems, host=None):
        """Every system's boot of spec: one after the other, or side by
        side (together()); a side-by-side row measures the host too, and
        native() then leaves it out."""
        if not self.together(spec):
            for system in systems:
                self.session(run, spec, system)
            return
        rows = self.rows_of(spec)
        log(f"run {run + 1}/{self.a.runs}: {', '.join(x.name for x in systems)} side by side, {spec} "
            f"({', '.join(r.name for r in rows)})")
        kernel, initrd = self.images[spec.image]
        started = []
        try:
            for system in systems:
                g = GuestProcess(system.name, system.argv(kernel, initrd, APPEND, spec.harts, spec.mem_mib, []),
                                 self.logfile(run, spec, system))
                s = Session(system.name, spec, g, self.a, self.checks)
                started.append(s)
                s.boot()
                log(f"  {system.name} booted: init started {s.t_init:.2f} s, prompt {s.t_prompt:.2f} s")
            for row in rows:
                if getattr(row, "together", False):
                    row.measure_together(started, host, lambda side, k, v: self.record(
                        side.system, k, v, side if isinstance(side, Session) else None))
                else:
                    for s in started:
                        row.measure(s, lambda k, v, s=s: self.record(s.system, k, v, s))
            self.note_opensbi(started)
            for s in started:
                s.g.poweroff()
        except (GuestError, WorkloadError, NativeError, OSError, ValueError) as e:
            msg = f"run {run + 1}, {', '.join(x.name for x in systems)} side by side, {spec}: {e}"
            log("  ERROR " + msg)
            self.errors.append(msg)
        finally:
            for s in started:
                if s.g.proc.poll() is None:
                    s.g.kill()
                for f in s.contention:
                    self.res.add("host.runq_wait", s.system, f)

    def record(self, system, key, value, s=None):
        self.res.add(key, system, value)
        log(f"  {system}: {key} = {fmt(value)}")
        # With --syscalls (bench/sandbox.py), a host CPU figure comes with
        # the system calls made over the same stretch.
        if s is not None and key.endswith(".cpu") and s.last_syscalls is not None:
            self.res.add(key[:-4] + ".syscalls", system, s.last_syscalls)
            log(f"  {key[:-4]}.syscalls = {s.last_syscalls}")
            s.last_syscalls = None

    def note_opensbi(self, sessions):
        for s in sessions:
            if s.system == "qemu" and self.opensbi is None:
                t = s.g.tail(100000)
                i = t.find("OpenSBI v")
                if i >= 0:
                    self.opensbi = t[i:].split()[1]

    def session(self, run, spec, system):
        a = self.a
        rows = self.rows_of(spec)
        logf = self.logfile(run, spec, system)
        log(f"run {run + 1}/{a.runs}: {system.name}, {spec} ({', '.join(r.name for r in rows)})")
        prepared = []
        if spec.devices and self.workdir is None:
            # Disk images and shared files go to /var/tmp (a disk, like a
            # VM's image), not /tmp, which may be a tmpfs in RAM.
            self.workdir = tempfile.mkdtemp(prefix="skiff-bench-io-",
                                            dir="/var/tmp" if os.path.isdir("/var/tmp") else None)
        try:
            try:
                for d in spec.devices:
                    prepared.append(d.prepare(self.workdir))
            except (DeviceError, OSError) as e:
                msg = f"run {run + 1}, {system.name}, {spec}: {e}"
                log("  ERROR " + msg)
                self.errors.append(msg)
                return
            kernel, initrd = self.images[spec.image]
            argv = system.argv(kernel, initrd, APPEND, spec.harts, spec.mem_mib, prepared)
            g = GuestProcess(system.name, argv, logf)
            s = Session(system.name, spec, g, a, self.checks, prepared)
            try:
                self._session(run, s, rows)
            finally:
                if g.proc.poll() is None:   # interrupted (^C): do not leave the VMM running
                    g.kill()
                for f in s.contention:
                    self.res.add("host.runq_wait", system.name, f)
        finally:
            for d in prepared:
                d.close()

    def _session(self, run, s, rows):
        g = s.g
        try:
            s.boot()
            log(f"  booted: init started {s.t_init:.2f} s, prompt {s.t_prompt:.2f} s")
            for row in rows:
                row.measure(s, lambda k, v: self.record(s.system, k, v, s))
            self.note_opensbi([s])
        except (GuestError, WorkloadError, OSError, ValueError) as e:
            msg = f"run {run + 1}, {s.system}, {s.spec}: {e}"
            log("  ERROR " + msg)
            self.errors.append(msg)
            g.kill()
            return
        g.poweroff()

    def native(self, run, host):
        for row in self.rows:
            if not hasattr(row, "native"):
                continue
            if any(self.together(spec) for spec in row.specs(self.a)):
                continue    # measured natively between the guests (sessions())
            log(f"run {run + 1}/{self.a.runs}: native, row {row.name}")
            def rec(key, value):
                self.res.add(key, "native", value)
                log(f"  {key} = {fmt(value)}")
            try:
                row.native(host, rec)
            except (NativeError, OSError, ValueError) as e:
                msg = f"run {run + 1}, native: {e}"
                log("  ERROR " + msg)
                self.errors.append(msg)

    def run(self, host):
        for run in range(self.a.runs):
            for spec in self.specs():
                # Side by side, the systems take turns going first.
                turn = self.systems if run % 2 == 0 or not self.together(spec) else self.systems[::-1]
                self.sessions(run, spec, turn, host)
            if host:
                self.native(run, host)
        for row in self.rows:
            if hasattr(row, "derive"):
                for key, per in row.derive(self.a, self.res.median).items():
                    for system, v in per.items():
                        self.res.derived[(key, system)] = v


# ------------------------------------------------------------------ report
def markdown(a, r, meta):
    L = []
    L += ["# Benchmarks: skiff beside QEMU", "",
          "Generated by `bench/run.sh` (see [bench/README.md](../bench/README.md) for what each row "
          "measures and how). Do not edit by hand: run the suite again. Runs of single rows, two "
          "builds side by side and the history of the JIT tier are in "
          "[benchmark-log.md](benchmark-log.md).", "",
          "## Where and what", "",
          "| | |", "|---|---|",
          f"| Date | {meta['date']} |",
          f"| Host CPU | {meta['machine']['cpu']} |",
          f"| Host cores | {meta['machine']['cores']} |",
          f"| Host RAM | {meta['machine']['ram']} |",
          f"| Host kernel | {meta['machine']['kernel']} |",
          f"| Host load average (1/5/15 min) | at start {meta['load_start']}; at end {meta['load_end']} |",
          f"| skiff | commit {meta['commit']}, meson buildtype {meta['buildtype']} |",
          f"| QEMU | {meta['qemu']} (TCG), OpenSBI {meta['opensbi'] or '?'} as firmware (`-bios default`) |",
          f"| Guest | kernel {meta['guest_kernel']}, {meta['guest_busybox']} (initramfs from guest/build-image.sh) |",
          f"| Native | {meta['host_busybox'] or 'not run (no busybox on the host)'} |",
          *[f"| Guest image {name} | {what} |" for name, what in meta.get("images", {}).items()],
          *([f"| Native, compiled rows | {meta['native_compiled']} |"] if meta.get("native_compiled") else []),
          *([f"| Native, python row | {meta['native_python']} |"] if meta.get("native_python") else []),
          f"| Runs | {a.runs} per system, alternating skiff, QEMU, skiff, QEMU, …; medians shown |",
          f"| Wall time of the whole run | {meta['elapsed']} |",
          "", "Command:", "", "```", meta["command"], "```", "",
          "Both VMMs got the same kernel, initramfs and kernel command line "
          f"(`{APPEND}`), the same memory and the same number of harts:", "", "```"]
    L += meta["argv_examples"]
    L += ["```", "", "## Results", ""]
    L += tables(r.rows, a, r.res)
    L += [""]
    L += ["## Notes", "",
          "- Ratios are the first column divided by the second (skiff / QEMU, skiff / native, "
          "QEMU / native). For times and costs lower is better, so skiff / QEMU below 1 means skiff "
          "is faster or cheaper; for scaling higher is better.",
          "- Guest workload times are read from the guest's own clock (`/proc/uptime` before and "
          "after, 10 ms resolution), as a user timing a command in the VM would see them. They are "
          "wall-clock times and grow when the host is busy; the host CPU table does not.",
          f"- The host has {meta['machine']['cores']} cores. A 4-hart guest cannot run more than "
          f"{meta['machine']['cores']} harts at the same time here, so the SMP scaling is bounded by "
          f"{meta['machine']['cores']}×, not 4×, for both VMMs.",
          "- First guest instruction is approximated by the first byte on the console with "
          "`earlycon=sbi`. For QEMU that byte is OpenSBI's banner (OpenSBI is firmware running in "
          "the guest, so it is close to the first guest instruction); skiff has no firmware (it "
          "implements SBI itself), so its first byte is the kernel's first earlycon line, which "
          "comes after the kernel's early setup — an upper bound that favours QEMU. The next line, "
          "the kernel's first line on the console, would be the same point in both guests, but "
          "under QEMU the kernel prints nothing through `earlycon=sbi`: QEMU's OpenSBI implements "
          "SBI 1.0, without the debug console extension (DBCN, SBI 2.0) that the kernel's SBI "
          "earlycon needs, and the Debian kernel is built without the legacy SBI 0.1 console "
          "(`# CONFIG_RISCV_SBI_V01 is not set`).",
          "- Memory overhead: VmRSS of the VMM process minus the resident part of its guest RAM "
          "mapping (the anonymous mapping of exactly the guest's memory size; when the kernel has "
          "merged it with an adjacent anonymous mapping of the same flags, the resident pages of "
          "its guest-RAM part, counted from /proc/PID/pagemap — see Consistency checks), after "
          "the idle window. "
          "QEMU's translated-code buffer and skiff's block cache and JIT code cache count as "
          "overhead. A file mapped twice at the same offset (skiff's JIT code cache: one memfd, "
          "a writable and an executable view) is in VmRSS once per mapping; its pages count "
          "once (the extra views' Rss from /proc/PID/smaps is subtracted).",
          "- Idle CPU: utime + stime of the VMM process (all threads, /proc/PID/stat) over the "
          "idle window that starts when the shell prompt appears.",
          "- Boot CPU time: utime + stime of the VMM process from launch to the shell prompt "
          "(all threads: with 4 harts it includes the other harts' work and spinning).",
          ]
    if any(row.name in ("blk", "9p", "net", "tap") for row in r.rows):
        L += ["- I/O rows: one request or connection at a time; the guest's clock times the disk and "
              "9p requests (inside pread/pwrite, `O_DIRECT` on the disk), the host's clock the TCP "
              "transfers (connect to the last byte). Every transfer is checked (CRC-32s, byte counts) "
              "and a failed check fails the session. Images and shared files sit in the host's page "
              "cache for both VMMs; nothing is flushed to the host's disk while measuring."]
    if any(row.name in ("7zip", "stressng") for row in r.rows):
        L += ["- Compiled rows (7-Zip, stress-ng): Debian's riscv64 programs in the guest image "
              "`bench-cpu` (guest/profiles/bench-cpu.conf), the host's amd64 packages natively "
              "(versions above; the host's release may ship other versions). Throughput is per "
              "second of host CPU time: stress-ng's fixed bogo operations divided by the VMM's "
              "CPU seconds, less those of a 1-operation run (start-up; natively stress-ng does "
              "10× the operations); 7-Zip's ratings times the run's duration on the guest's clock, "
              "divided by the VMM's CPU seconds for the run, which undoes the wall-clock stretch "
              "of a busy host (the factor is about 1 on a quiet one); natively 7-Zip's own R/U "
              "(its rating per CPU second of its process). `-mtic=20` makes each of 7-Zip's "
              "tests one pass, the same work everywhere."]
    if any(row.name == "python" for row in r.rows):
        L += ["- Python row: Debian's python3 (python3-minimal, guest image `bench-py`, "
              "guest/profiles/bench-py.conf) runs bench/pywork.py, a pure-Python workload written "
              "for this bench (calls, a class hierarchy, dict/list/str work, int and float "
              "arithmetic, sorting). Rounds per host CPU second past start-up: the rounds of the "
              "long run less the 1-round run's, over the VMM's CPU seconds less the 1-round run's; "
              "natively the host's /usr/bin/python3 repeats the rounds 10× in one process (its "
              "version may differ from the guest's: see above). The checksum below must be the "
              "same everywhere."]
    busy = {s: r.res.median("host.runq_wait", s) for s in ("skiff", "qemu")}
    if all(v is not None for v in busy.values()):
        L += [f"- Host contention: while the guest workloads ran, the VMM's busiest thread was "
              f"runnable but waiting for a host core {busy['skiff']:.0%} of the time for skiff and "
              f"{busy['qemu']:.0%} for QEMU (median over all workloads and runs; "
              f"/proc/PID/task/TID/schedstat). That is the share by which other programs on the "
              f"host stretched the wall-clock times."]
    if r.errors:
        L += ["- A session that failed (see Errors) is left out of the medians; a median over "
              "fewer runs than the others is marked (n=…)."]
    L += [""]
    L += ["## Consistency checks", "",
          "Outputs that must be identical everywhere (the workloads did the same work):", ""]
    L += consistency(r.checks) or ["- (none recorded)"]
    L += [""]
    if r.errors:
        L += ["## Errors", ""] + [f"- {e}" for e in r.errors] + [""]
    L += ["## Raw samples", "", "Every value behind the medians, in run order "
          "(seconds, MiB, % or count as in the tables).", ""]
    L += raw_samples(r.rows, a, r.res)
    L += [""]
    return "\n".join(L)


def main(argv):
    a = parse_args(argv)
    t_start = time.monotonic()
    load_start = loadavg()
    commit = git("describe", "--always", "--dirty", "--abbrev=12") or "unknown"

    if a.skiff:
        skiff_bin, btype = os.path.abspath(a.skiff), "unknown (given with --skiff)"
    else:
        skiff_bin, btype = build_skiff(a.build_dir)
    if not os.access(skiff_bin, os.X_OK):
        sys.exit(f"bench: skiff binary {skiff_bin} not found or not executable")
    qemu = Qemu(a.qemu)
    qver = qemu.version()
    if not qver:
        sys.exit(f"bench: {a.qemu} not found (Debian package qemu-system-misc)")
    gdir = default_guest()
    kernel = a.kernel or os.path.join(gdir, "Image")
    initrd = a.initrd or os.path.join(gdir, "initrd.cpio.gz")
    images = {}
    for spec in (sp for n in a.row_names for sp in ROWS[n].specs(a)):
        if spec.image in images:
            continue
        if spec.image == DEFAULT_IMAGE:
            for f in (kernel, initrd):
                if not os.path.isfile(f):
                    sys.exit(f"bench: guest file {f} missing; build the default guest with "
                             "guest/build-image.sh")
            images[spec.image] = (kernel, initrd)
        else:
            images[spec.image] = build_guest(spec.image)
    bb = shutil.which(a.busybox)
    host = None
    if bb and any(hasattr(ROWS[n], "native") for n in a.row_names):
        host_bb_version = busybox_version(bb)
    else:
        host_bb_version = None
        if not bb:
            log(f"warning: no host busybox ('{a.busybox}'); native columns stay empty "
                "(install Debian's busybox package)")

    log_dir = a.log_dir or tempfile.mkdtemp(prefix="skiff-bench-logs-")
    os.makedirs(log_dir, exist_ok=True)
    log(f"console logs in {log_dir}")

    systems = [Skiff(skiff_bin, a.skiff_engine), qemu]
    r = Runner(a, systems, images, log_dir)
    if host_bb_version:
        host = NativeHost(bb, a, r.checks)
    for what in a.skipped:
        log(f"warning: row {what} left out; ask for it with --rows to see why it fails")
    log(f"rows {', '.join(x.name for x in r.rows)}; configurations: "
        f"{'; '.join(str(s) for s in r.specs())}; {a.runs} run(s); host load {load_start}")
    try:
        r.run(host)
    finally:
        if host:
            host.close()
        if r.workdir:
            shutil.rmtree(r.workdir, ignore_errors=True)

    elapsed = time.monotonic() - t_start
    man = guest_manifest(os.path.dirname(kernel))
    bbpkg = [p for p in man.get("package", []) if p.startswith("busybox")]
    # The first configuration, every configuration with devices and the
    # first of every other guest image.
    ex = []
    shown = set()
    for i, spec in enumerate(r.specs()):
        if i == 0 or spec.devices or spec.image not in shown:
            shown.add(spec.image)
            pre = "" if spec.image == DEFAULT_IMAGE else spec.image + "/"
            for s in systems:
                argv_ex = s.argv(pre + "Image", pre + "initrd.cpio.gz", APPEND, spec.harts, spec.mem_mib,
                                 [d.example() for d in spec.devices])
                ex.append(" ".join(shlex.quote(x) for x in argv_ex))
    other_images = {}
    for name, (k, _) in images.items():
        if name != DEFAULT_IMAGE:
            m = guest_manifest(os.path.dirname(k))
            pk = [p for p in m.get("package", [])
                  if p.split()[0] in ("7zip", "stress-ng", "libc6") or re.fullmatch(r"python3[.\d]*-minimal", p.split()[0])]
            other_images[name] = (f"kernel {(m.get('kernel-release') or ['?'])[0]}, "
                                  + ", ".join(pk) + f" (guest/build-image.sh --profile {name})")
    meta = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine_info(),
        "load_start": load_start,
        "load_end": loadavg(),
        "commit": commit,
        "buildtype": btype,
        "qemu": qver,
        "opensbi": r.opensbi,
        "guest_kernel": (man.get("kernel-release") or ["?"])[0],
        "guest_busybox": f"busybox-static {bbpkg[0].split()[-1]}" if bbpkg else "busybox",
        "host_busybox": host_bb_version and f"{host_bb_version} (host package busybox)",
        "elapsed": f"{elapsed / 60:.1f} min",
        "command": "bench/run.sh" + "".join(" " + shlex.quote(x) for x in argv),
        "argv_examples": ex,
        "images": other_images,
        "native_compiled": (native_versions() + " (host packages)"
                            if host and COMPILED_IMAGE in images else None),
        "native_python": (f"{python_native_version()} ({HOST_PYTHON})"
                          if host and PYTHON_IMAGE in images else None),
    }
    record = {"argv": argv, "rows": a.row_names, "meta": meta, "errors": r.errors, "checks": r.checks,
              "samples": [{"key": k, "system": s, "values": v} for (k, s), v in r.res.samples.items()],
              "derived": [{"key": k, "system": s, "value": v} for (k, s), v in r.res.derived.items()]}
    print()
    print("\n".join(tables(r.rows, a, r.res)))
    print()
    print("\n".join(consistency(r.checks)))
    if r.errors:
        print("\nerrors:\n" + "\n".join(r.errors))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(record, f, indent=1)
    if a.output:
        write_report(record, a.output)
    log(f"done in {elapsed / 60:.1f} min")
    return 1 if r.errors else 0


def write_report(record, path):
    """Render a run's record (live, or loaded from --json) as Markdown."""
    argv = record.get("argv")
    if argv is None:    # records written before "argv" was kept
        argv = shlex.split(record["meta"]["command"])[1:]
    a = parse_args(argv)
    a.row_names = record.get("rows", a.row_names)      # as run (tap is left out without root)
    meta = dict(record["meta"])
    # Paths of the machine the run was on stay out of the report.
    meta["argv_examples"] = [x.replace(REPO + os.sep, "") for x in meta["argv_examples"]]
    res = Results()
    for s in record["samples"]:
        res.samples[(s["key"], s["system"])] = list(s["values"])
    for d in record["derived"]:
        res.derived[(d["key"], d["system"])] = d["value"]
    view = argparse.Namespace(rows=[ROWS[n] for n in TABLE_ORDER if n in a.row_names], res=res,
                              checks=[tuple(c) for c in record["checks"]], errors=record["errors"])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(markdown(a, view, meta))
    log(f"wrote {path}")


def report_from(argv):
    """bench/run.sh --report-from RUN.json [--output FILE]: render a saved run again."""
    p = argparse.ArgumentParser(prog="bench/run.sh --report-from")
    p.add_argument("--report-from", required=True)
    p.add_argument("--output", default=os.path.join(REPO, "docs", "BENCHMARKS.md"))
    a = p.parse_args(argv)
    with open(a.report_from) as f:
        write_report(json.load(f), a.output)
    return 0

if __name__ == "__main__":
    if any(x == "--report-from" or x.startswith("--report-from=") for x in sys.argv[1:]):
        sys.exit(report_from(sys.argv[1:]))
    sys.exit(main(sys.argv[1:]))

"""Unit tests of the Guest CPU row (bench/rows.py CpuRow, bench/workloads.py):
a workload of several passes runs them all in one timed command and the row
records one pass; with two systems the row measures each workload in every
guest and natively before the next workload, and the runner boots the
guests side by side, alternating which goes first, and leaves the row out
of its separate native pass.  Fast and offline: no guest, no VMM; the pass
loop runs under the host's busybox sh.
Run: python3 -m pytest bench/test_cpu_row.py
"""

import argparse
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from rowbase import Spec  # noqa: E402
from rows import CpuRow  # noqa: E402
from workloads import Workload, cpu_workloads, parse_timed, timed  # noqa: E402

BUSYBOX = shutil.which("busybox")


@pytest.mark.skipif(BUSYBOX is None, reason="no host busybox (Debian package busybox, in scripts/deps.sh)")
def test_passes_run_inside_one_timed_command(tmp_path):
    w = Workload("t", "count", lambda d: f"echo pass >> {d}/log", passes=3)
    out = subprocess.run([BUSYBOX, "sh", "-c", timed(w.cmd(tmp_path))], capture_output=True,
                         text=True, check=True).stdout
    _, rc, _ = parse_timed(out)
    assert rc == 0
    assert (tmp_path / "log").read_text().splitlines() == ["pass"] * 3
    # A failing pass ends the loop and the command's status says so.
    bad = Workload("t", "fail", lambda d: f"echo pass >> {d}/bad; false", passes=3)
    out = subprocess.run([BUSYBOX, "sh", "-c", timed(bad.cmd(tmp_path))], capture_output=True,
                         text=True, check=True).stdout
    assert parse_timed(out)[1] != 0
    assert (tmp_path / "bad").read_text().splitlines() == ["pass"]


def test_short_workloads_take_several_passes():
    ws = {w.key: w for w in cpu_workloads(300000)}
    assert ws["sha256"].passes > 1 and ws["awk_fp"].passes > 1
    assert ws["bzip2"].passes == 1 and ws["gzip"].passes == 1


class FakeSide:
    """A guest session or the native host: times every workload at
    1 s of guest time and 2 s of CPU per pass, and logs the order."""

    def __init__(self, system, opts, log):
        self.system = system
        self.opts = opts
        self.log = log

    def ensure_data(self):
        self.log.append((self.system, "gen"))
        return 1.0, 2.0

    def timed(self, w):
        self.log.append((self.system, w.key))
        return 1.0 * w.passes, 2.0 * w.passes


def test_measure_together_interleaves_sides_per_workload():
    opts = argparse.Namespace(awk_steps=1000)
    log, got = [], {}
    a, b, n = FakeSide("skiff", opts, log), FakeSide("qemu", opts, log), FakeSide("native", opts, log)
    CpuRow().measure_together([a, b], n, lambda side, k, v: got.setdefault((side.system, k), v))
    keys = [w.key for w in cpu_workloads(1000)]
    assert log == [(s, "gen") for s in ("skiff", "qemu", "native")] + \
        [(s, k) for k in keys for s in ("skiff", "qemu", "native")]
    for s in ("skiff", "qemu", "native"):
        for k in keys:     # one pass, whatever the number of passes in the sample
            assert got[(s, f"cpu.{k}")] == 1.0 and got[(s, f"cpu.{k}.cpu")] == 2.0


def test_runner_boots_side_by_side_and_alternates_who_goes_first():
    a = bench.parse_args(["--runs", "3", "--rows", "cpu,vmm"])
    systems = [argparse.Namespace(name="skiff"), argparse.Namespace(name="qemu")]
    r = bench.Runner(a, systems, {}, "/nonexistent")
    calls, alone = [], []
    r.sessions = lambda run, spec, order, host=None: calls.append((run, spec, [s.name for s in order], host))
    r.native = lambda run, host: alone.append(run)
    host = object()
    r.run(host)
    cpu_spec = Spec(1, a.work_mem)
    assert r.together(cpu_spec) and not r.together(Spec(1, a.vmm_mem))
    firsts = [order[0] for run, spec, order, h in calls if spec == cpu_spec]
    assert firsts == ["skiff", "qemu", "skiff"]
    assert all(h is host for *_, h in calls)
    # The vmm row's configuration boots one system after the other, skiff first.
    assert all(order == ["skiff", "qemu"] for run, spec, order, _ in calls if spec != cpu_spec)
    assert alone == [0, 1, 2]


def test_native_pass_leaves_out_the_row_measured_between_guests():
    a = bench.parse_args(["--runs", "1", "--rows", "cpu"])
    r = bench.Runner(a, [argparse.Namespace(name="skiff"), argparse.Namespace(name="qemu")], {}, "/x")
    log = []
    host = FakeSide("native", a, log)
    r.native(0, host)
    assert log == []
    # With one system nothing is side by side: the native pass measures it.
    r1 = bench.Runner(a, [argparse.Namespace(name="skiff")], {}, "/x")
    r1.native(0, host)
    assert ("native", "gen") in log and ("native", "bzip2") in log

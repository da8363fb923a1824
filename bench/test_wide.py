"""Unit tests of bench/wide.py's own logic: which VMM goes first in each
pair, every workload measured in both guests of a pair before the next,
outputs that differ reported, the QEMU / skiff ratios per pair and their
median, and the appended archive of the initramfs.  Fast and offline: no
guest, no VMM.
Run: python3 -m pytest bench/test_wide.py
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wide  # noqa: E402
from wide import Work, first_goes, measure_pair, pair_ratios, table  # noqa: E402

SYSTEMS = [argparse.Namespace(name="skiff"), argparse.Namespace(name="qemu")]


class FakeSession:
    """A booted guest: a workload costs cpu[key] host CPU seconds and its
    check prints out[key] (default: the same in every guest)."""

    def __init__(self, system, log, cpu, out=None):
        self.system, self.log, self.cpu, self.out = system, log, cpu, out or {}

    def measured(self, cmd):
        key = next(k for k in self.cpu if f"run-{k} " in cmd)
        self.log.append((self.system, key))
        return "", self.cpu[key]

    def sh(self, cmd, timeout=None):
        key = next(k for k in self.cpu if f"check-{k} " in cmd)
        return self.out.get(key, f"{key} ok") + "\n"


WORKS = [Work(k, k, f"run-{k} ", f"check-{k} ") for k in ("a", "b", "c")]


def test_who_goes_first_alternates_per_pair():
    firsts = [first_goes(run, SYSTEMS)[0].name for run in range(4)]
    assert firsts == ["skiff", "qemu", "skiff", "qemu"]
    assert [s.name for s in first_goes(1, SYSTEMS)] == ["qemu", "skiff"]


def test_each_workload_runs_in_both_guests_before_the_next():
    log, got = [], {}
    s = FakeSession("qemu", log, {"a": 3.0, "b": 4.0, "c": 5.0})
    k = FakeSession("skiff", log, {"a": 1.0, "b": 2.0, "c": 2.5})
    assert measure_pair([s, k], WORKS, lambda sys_, key, v: got.setdefault((key, sys_), v)) == []
    assert log == [("qemu", "a"), ("skiff", "a"), ("qemu", "b"), ("skiff", "b"),
                   ("qemu", "c"), ("skiff", "c")]
    assert got[("b", "qemu")] == 4.0 and got[("c", "skiff")] == 2.5


def test_outputs_that_differ_are_reported_and_the_rest_still_measured():
    log = []
    k = FakeSession("skiff", log, {"a": 1.0, "b": 1.0, "c": 1.0}, out={"b": "checksum 1234"})
    q = FakeSession("qemu", log, {"a": 2.0, "b": 2.0, "c": 2.0}, out={"b": "checksum 1235"})
    bad = measure_pair([k, q], WORKS, lambda *a: None)
    assert len(bad) == 1 and bad[0].startswith("b: outputs differ")
    assert "1234" in bad[0] and "1235" in bad[0]
    assert ("qemu", "c") in log


def test_ratios_are_qemu_over_skiff_per_pair_and_their_median():
    samples = {("a", "skiff"): [2.0, 1.0, None, 4.0], ("a", "qemu"): [3.0, 3.0, 5.0, 4.0]}
    assert pair_ratios(samples, "a") == [1.5, 3.0, 1.0]
    text = table([Work("a", "a", "", "")], samples)
    row = next(line for line in text.splitlines() if line.startswith("| a |"))
    assert "1.50, 3.00, 1.00" in row and f"**{statistics.median([1.5, 3.0, 1.0]):.2f}**" in row
    assert "2.00, 1.00, —, 4.00" in row
    samples[("b", "skiff")], samples[("b", "qemu")] = [1.0], [4.0]
    text = table([Work("a", "a", "", ""), Work("b", "b", "", "")], samples)
    # The medians are 1.5 and 4.0: their geometric mean is sqrt(6).
    assert "| geometric mean of the medians | | | | **2.45** |" in text


def test_runs_alternate_and_a_failed_run_leaves_a_gap(monkeypatch):
    booted = []

    def boot_pair(run, order, kernel, initrd, opts, log_dir):
        booted.append([s.name for s in order])
        if run == 1:
            raise wide.GuestError("no prompt")
        return [FakeBooted(s.name, 1.0 if s.name == "skiff" else 2.0) for s in order]

    class FakeBooted(FakeSession):
        def __init__(self, system, cpu):
            super().__init__(system, [], {w.key: cpu for w in WORKS})
            self.g = argparse.Namespace(poweroff=lambda: None,
                                        proc=argparse.Namespace(poll=lambda: 0))

        def sh(self, cmd, timeout=None):
            return "prepared\n" if cmd == wide.PREP else super().sh(cmd, timeout)

    monkeypatch.setattr(wide, "boot_pair", boot_pair)
    samples, errors = wide.run_all(argparse.Namespace(runs=3), SYSTEMS, "k", "i", WORKS, "/x")
    assert booted == [["skiff", "qemu"], ["qemu", "skiff"], ["skiff", "qemu"]]
    assert samples[("a", "skiff")] == [1.0, None, 1.0]
    assert pair_ratios(samples, "a") == [2.0, 2.0]
    assert len(errors) == 1 and errors[0].startswith("run 2: ")


def test_the_extras_archive_is_appended_on_a_4_byte_boundary(tmp_path):
    base, extra = tmp_path / "initrd", tmp_path / "extra"
    base.write_bytes(b"\x1f\x8b" + b"x" * 5)
    extra.write_bytes(b"\x1f\x8bEXTRA")
    out = wide.with_extras(str(base), str(extra), str(tmp_path / "out"))
    data = open(out, "rb").read()
    assert data[:7] == base.read_bytes() and data[7] == 0 and data.index(b"\x1f\x8bEXTRA") == 8

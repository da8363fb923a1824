"""--cpu-quota and machine-config's cpu_quota: a guest whose harts are all
busy uses at most its quota of host CPU time.

The guest is a tiny hand-made Image (rvimage.py) whose harts spin forever
(hart 0 starts the others through SBI HSM), so each hart wants a whole host
core. The VMM's host CPU time (utime + stime of the process, from
/proc/PID/stat) is measured over a window of WINDOW seconds of wall time,
after a second to start. The quota is enforced per 100 ms period, so the
stated tolerance is 10 % of the quota plus 0.02 of a core for the VMM's own
threads and the period the window cuts.

An upper bound alone passes on a host too busy to give the VM its quota
(on a loaded host a busy guest may get less than a quarter of a core with
no quota at all). So one check uses a small quota and, beside the CPU time,
how the busiest hart thread spent the window (/proc/PID/task/TID/schedstat:
time running plus time waiting for a CPU): a hart that spins is runnable the
whole time, which the same guest without a quota shows; a hart held to its
quota sleeps once it has used it, so it is runnable for clearly less of the
window (unless the host gives a runnable thread less than a sixteenth of a
core).
"""
import json
import os
import signal
import subprocess
import time

import pytest

import rvimage

WINDOW = 5.0


def tolerance(quota):
    return quota * 1.1 + 0.02


def cpu_seconds(pid):
    """utime + stime (/proc/PID/stat fields 14 and 15), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_times(pid):
    """{tid: (ns running, ns running or waiting for a CPU)} from schedstat."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run, wait = (int(x) for x in f.read().split()[:2])
        except (OSError, ValueError):
            continue
        out[tid] = (run, run + wait)
    return out


def measure(skiff_bin, args, window=WINDOW):
    """Start `skiff run ARGS`, let it settle for a second, and return over
    the window: (the process's host CPU as a fraction of one core, the
    fraction of the window its busiest thread was runnable)."""
    p = subprocess.Popen([skiff_bin, "run", *map(str, args)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1)
        assert p.poll() is None, f"skiff ended: {p.returncode} {p.stderr.read()}"
        c0, s0, t0 = cpu_seconds(p.pid), thread_times(p.pid), time.monotonic()
        time.sleep(window)
        c1, s1, t1 = cpu_seconds(p.pid), thread_times(p.pid), time.monotonic()
        assert p.poll() is None, f"skiff ended: {p.returncode} {p.stderr.read()}"
        wall = t1 - t0
        busiest = max((s1[t][0] - s0[t][0], t) for t in s1 if t in s0)[1]
        return (c1 - c0) / wall, (s1[busiest][1] - s0[busiest][1]) / 1e9 / wall
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(20)


@pytest.fixture(scope="module")
def spinners(tmp_path_factory):
    d = tmp_path_factory.mktemp("quota")
    out = {}
    for n in (1, 2):
        out[n] = d / f"spin{n}.Image"
        out[n].write_bytes(rvimage.image(rvimage.prog_spin_all_harts(n)))
    return out


def test_quota_half_a_core_over_two_harts(skiff_bin, spinners):
    used, _ = measure(skiff_bin, ["--kernel", spinners[2], "--cpus", 2, "--cpu-quota", 0.5])
    print(f"\n2 busy harts, --cpu-quota 0.5: {used:.3f} of a core")
    assert used <= tolerance(0.5), f"2 busy harts with --cpu-quota 0.5 used {used:.3f} of a core"


def test_quota_quarter_core_from_config_file(skiff_bin, spinners, tmp_path):
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({"boot-source": {"kernel_image_path": str(spinners[1])},
                               "machine-config": {"vcpu_count": 1, "mem_size_mib": 128,
                                                  "cpu_quota": 0.25}}))
    used, _ = measure(skiff_bin, ["--config-file", cfg])
    print(f"\n1 busy hart, cpu_quota 0.25: {used:.3f} of a core")
    assert used <= tolerance(0.25), f"a busy hart with cpu_quota 0.25 used {used:.3f} of a core"


def test_small_quota_against_unlimited(skiff_bin, spinners):
    """A twentieth of a core, beside the same guest without a quota."""
    free, free_runnable = measure(skiff_bin, ["--kernel", spinners[1]], window=3)
    used, runnable = measure(skiff_bin, ["--kernel", spinners[1], "--cpu-quota", 0.05])
    print(f"\n1 busy hart without a quota: {free:.3f} of a core, runnable {free_runnable:.0%} of the time; "
          f"with --cpu-quota 0.05: {used:.3f} of a core, runnable {runnable:.0%}")
    assert free_runnable >= 0.9, \
        f"a spinning hart without a quota was runnable only {free_runnable:.0%} of the time"
    assert used <= tolerance(0.05), f"a busy hart with --cpu-quota 0.05 used {used:.3f} of a core"
    assert runnable <= 0.8, \
        (f"a busy hart with --cpu-quota 0.05 was runnable {runnable:.0%} of the time: it was not made "
         f"to wait once it had used its quota")

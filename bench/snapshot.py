#!/usr/bin/python3
"""Snapshot rows, skiff beside QEMU (docs/benchmark-log.md, "Snapshots"):

    bench/snapshot.py [--runs 3] [--mem 256] [--clones 10,50] [--restores 5]
                      [--skiff-only] [--build build]
                      [--output FILE.md]

The default guest (1 hart, --mem MiB) boots to its shell and idles; then,
alternating skiff and QEMU each run:

  create   skiff: PATCH /vm Paused, PUT /snapshot/create (Full); the call's
           time, the memory file's allocated size and the VMM's host CPU
           time for it. Then resumed, 2 s idle, paused again: a Diff, its
           time and size. QEMU: `stop`, then `migrate "exec:cat > FILE"`
           until `info migrate` says completed (its time and file size);
           QEMU has no Diff of its own here.
  restore  skiff: a fresh `skiff run --api-sock` (already up), then
           PUT /snapshot/load with resume_vm (--restores times a run): the
           call's time on a connection made beforehand, from sending the
           request to the answer (the VM runs again before it is sent), and
           the VMM's own time for it from its log line (request parsed to
           VM running, as Firecracker's load_snapshot latency; the rest of
           the call is the client's and the scheduler's), split into the
           stages that log line names (state file read, VM built and
           loaded, other threads confined, harts started, the API thread
           confined), and the launch of that VMM to its API socket taking
           connections (dynamic loading, the sandbox's filters compiled,
           the socket bound; measured with pexpect's spawn, as the rest of
           the rows). QEMU's peer for
           the call: a QEMU started with -incoming defer, then HMP
           `migrate_incoming "exec:cat FILE"` and `cont` until `info status`
           says running (it reads the whole state file). And from the
           call to the guest's shell answering a
           command typed on its console (first instruction to useful work).
  launch   skiff: from process launch to the VM running, two ways: the
           launch to the API socket plus the load call above (what a
           Firecracker-style client does), and `skiff run --snapshot DIR
           --api-sock` until GET / says Running (--restores times a run);
           with the host CPU time of the process by then (its threads'
           scheduler counts).
           From process launch to the shell answering, for both: skiff with
           --snapshot, QEMU with -incoming "exec:cat FILE" (it reads the
           whole file before running).
  density  N VMs restored from one snapshot at once, idle: their summed
           RSS and PSS (/proc/PID/smaps_rollup) once each has answered on
           its console.

Medians of the runs; ratio = skiff / QEMU (lower is better).
"""
import argparse
import http.client
import json
import re
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pexpect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from fc_schema import call, check_response   # noqa: E402  (the API client, answers checked against the spec)

PROMPT = r"root@skiff:[^\r\n]*# "
READY = "skiff-guest: ready"
APPEND = "console=ttyS0 earlycon=sbi quiet"


def guest():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    d = Path(cache) / "skiff" / "default"
    return d / "Image", d / "initrd.cpio.gz"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def task_cpu_seconds(pid):
    """CPU time of a process's live threads so far, from the scheduler's
    own nanosecond count (/proc/PID/task/TID/schedstat; /proc/PID/stat
    counts in ticks of 10 ms, too coarse for a launch)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e9


def rss_pss_kib(pid):
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def allocated(path):
    return os.stat(path).st_blocks * 512


def spawn(argv, log):
    p = pexpect.spawn(argv[0], [str(a) for a in argv[1:]], encoding="utf-8", codec_errors="replace",
                      timeout=600, dimensions=(50, 200))
    p.logfile_read = log
    return p


def answer(p, timeout=120):
    """Type a command until its output comes back (input typed while the
    VMM is still reading its state can be lost); seconds until then. After
    the first seconds it types more slowly: a slow guest's full tty input
    buffer throttles (a QEMU guest among 10 restored at once on a loaded
    host sent XOFF and never answered the pile of lines)."""
    t0 = time.monotonic()
    while True:
        p.sendline("echo =READY=$((40+2))")
        waited = time.monotonic() - t0
        try:
            p.expect("=READY=42", timeout=0.25 if waited < 5 else 3)
            return time.monotonic() - t0
        except pexpect.TIMEOUT:
            if time.monotonic() - t0 > timeout:
                raise


def wait_sock(path, timeout=30):
    """Until the Unix socket at path takes connections (its file appears
    when it is bound, a moment before it listens)."""
    deadline = time.monotonic() + timeout
    while True:
        c = socket.socket(socket.AF_UNIX)
        try:
            c.connect(str(path))
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{path} does not take connections")
            time.sleep(0.01)
        finally:
            c.close()


def until_running(sock, timeout=60):
    """From a VMM's launch: connect as soon as its API socket takes
    connections (retried every 0.2 ms), then GET / until the instance says
    Running (a request that comes while the restore runs waits for it)."""
    deadline = time.monotonic() + timeout
    while True:
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(timeout)
        try:
            c.connect(str(sock))
            c.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            r = http.client.HTTPResponse(c)
            r.begin()
            if r.status == 200 and json.loads(r.read()).get("state") == "Running":
                return
        except OSError:
            pass
        finally:
            c.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{sock}: the VM does not run")
        time.sleep(0.0002)


def timed_call(sock, method, path, body):
    """One API call on a connection made beforehand, timed from sending
    the request to having the whole answer: (status, seconds). The answer
    is held against the spec as call() does."""
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(120)
    c.connect(str(sock))
    data = json.dumps(body).encode()
    req = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(data)}\r\n\r\n").encode() + data
    r = http.client.HTTPResponse(c)
    t0 = time.monotonic()
    c.sendall(req)
    r.begin()
    answer_ = r.read()
    took = time.monotonic() - t0
    c.close()
    check_response(method, path, r.status, json.loads(answer_) if answer_ else None)
    return r.status, took


def kill(p):
    if p.isalive():
        p.kill(9)
    p.close(force=True)


# ------------------------------------------------------------------ skiff

def skiff_run(a, work, log, s):
    k, i = guest()
    cfg = {"boot-source": {"kernel_image_path": str(k), "initrd_path": str(i), "boot_args": APPEND},
           "machine-config": {"vcpu_count": 1, "mem_size_mib": a.mem, "track_dirty_pages": True}}
    (work / "vm.json").write_text(json.dumps(cfg))
    sock = work / "a.sock"
    p = spawn([a.skiff, "run", "--config-file", work / "vm.json", "--api-sock", sock, "--no-agent"], log)
    p.expect(READY)
    p.expect(PROMPT)
    time.sleep(2)
    snap = work / "snap"
    snap.mkdir()
    call(sock, "PATCH", "/vm", {"state": "Paused"})
    c0, t0 = cpu_seconds(p.pid), time.monotonic()
    st, _ = call(sock, "PUT", "/snapshot/create", {"snapshot_path": str(snap / "vmstate"),
                                                   "mem_file_path": str(snap / "memory")})
    s["create_s"].append(time.monotonic() - t0)
    s["create_cpu_s"].append(cpu_seconds(p.pid) - c0)
    assert st == 204
    s["full_bytes"].append(allocated(snap / "memory") + os.path.getsize(snap / "vmstate"))
    call(sock, "PATCH", "/vm", {"state": "Resumed"})
    time.sleep(2)
    call(sock, "PATCH", "/vm", {"state": "Paused"})
    t0 = time.monotonic()
    st, _ = call(sock, "PUT", "/snapshot/create", {"snapshot_type": "Diff",
                                                   "snapshot_path": str(work / "diff.state"),
                                                   "mem_file_path": str(work / "diff.mem")})
    s["diff_s"].append(time.monotonic() - t0)
    assert st == 204
    s["diff_bytes"].append(allocated(work / "diff.mem") + os.path.getsize(work / "diff.state"))
    kill(p)

    # Restore into a VMM that is already up.
    for k_ in range(a.restores):
        sock = work / f"r{k_}.sock"
        t0 = time.monotonic()
        p = spawn([a.skiff, "run", "--api-sock", sock, "--no-agent"], log)
        wait_sock(sock)
        s["sock_s"].append(time.monotonic() - t0)
        vlog = work / f"r{k_}.log"
        call(sock, "PUT", "/logger", {"log_path": str(vlog), "level": "Info"})
        st, took = timed_call(sock, "PUT", "/snapshot/load", {
            "snapshot_path": str(snap / "vmstate"), "resume_vm": True,
            "mem_backend": {"backend_type": "File", "backend_path": str(snap / "memory")}})
        assert st == 204
        s["load_s"].append(took)
        s["api_run_s"].append(s["sock_s"][-1] + took)
        m = re.search(r"in (\d+) us \((\d+) us of this thread's CPU time\)", vlog.read_text())
        s["load_vmm_s"].append(int(m.group(1)) / 1e6)
        s["load_cpu_s"].append(int(m.group(2)) / 1e6)
        m = re.search(r"stages \(us\): " + ", ".join(f"{n} (\\d+)" for n, _ in STAGES), vlog.read_text())
        for (_, key), v in zip(STAGES, m.groups()):
            s[key].append(int(v) / 1e6)
        s["useful_s"].append(answer(p) + took)
        kill(p)
    # From launch to the VM running: `skiff run --snapshot DIR`, with an
    # API socket to ask it. Started without a terminal (subprocess, not
    # pexpect: pexpect's child runs Python for ~15 ms of CPU before its
    # exec, which the process's CPU count would include).
    for k_ in range(a.restores):
        sock = work / f"L{k_}.sock"
        t0 = time.monotonic()
        p = subprocess.Popen([a.skiff, "run", "--snapshot", str(snap), "--api-sock", str(sock),
                              "--no-agent"], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            until_running(sock)
            s["run_s"].append(time.monotonic() - t0)
            s["run_cpu_s"].append(task_cpu_seconds(p.pid))
        finally:
            p.kill()
            p.wait()
    # From launch to useful work.
    t0 = time.monotonic()
    p = spawn([a.skiff, "run", "--snapshot", snap, "--no-agent"], log)
    answer(p)
    s["launch_s"].append(time.monotonic() - t0)
    kill(p)
    # Density.
    for n in a.clones:
        ps = []
        try:
            for k_ in range(n):
                ps.append(spawn([a.skiff, "run", "--snapshot", snap, "--no-agent"], log))
            for p in ps:
                answer(p, 300)
            time.sleep(1)
            tot = [rss_pss_kib(p.pid) for p in ps]
            s[f"rss{n}"].append(sum(r for r, _ in tot) * 1024)
            s[f"pss{n}"].append(sum(q for _, q in tot) * 1024)
        finally:
            for p in ps:
                kill(p)


# ------------------------------------------------------------------ QEMU

def hmp(sock, cmd):
    deadline = time.monotonic() + 60
    while True:
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(60)
        try:
            c.connect(str(sock))
            break
        except (ConnectionRefusedError, FileNotFoundError):
            c.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)   # QEMU has made the socket, not listened yet
    buf = b""
    while b"(qemu)" not in buf:
        buf += c.recv(4096)
    c.sendall(cmd.encode() + b"\n")
    buf = b""
    while buf.count(b"(qemu)") < 1:
        buf += c.recv(65536)
    c.close()
    return buf.decode(errors="replace")


def qemu_argv(a, extra=()):
    k, i = guest()
    return [a.qemu, "-M", "virt", "-m", str(a.mem), "-smp", "1", "-nographic", "-bios", "default",
            "-kernel", str(k), "-initrd", str(i), "-append", APPEND, "-nic", "none", *extra]


def qemu_restore(a, state, mon, log):
    """QEMU reading the saved state; it was saved stopped, so it stays
    stopped after the migration until `cont` (which fails while the
    incoming migration still runs)."""
    p = spawn(qemu_argv(a, ["-incoming", f"exec:cat {state}",
                            "-monitor", f"unix:{mon},server,nowait"]), log)
    wait_sock(mon)
    while "running" not in hmp(mon, "info status"):
        hmp(mon, "cont")
        time.sleep(0.002)
    return p


def qemu_run(a, work, log, s):
    mon = work / "mon.sock"
    p = spawn(qemu_argv(a, ["-monitor", f"unix:{mon},server,nowait"]), log)
    p.expect(READY)
    p.expect(PROMPT)
    time.sleep(2)
    state = work / "qemu.state"
    hmp(mon, "stop")
    c0, t0 = cpu_seconds(p.pid), time.monotonic()
    hmp(mon, f'migrate "exec:cat > {state}"')
    while "completed" not in hmp(mon, "info migrate"):
        time.sleep(0.005)
    s["create_s"].append(time.monotonic() - t0)
    s["create_cpu_s"].append(cpu_seconds(p.pid) - c0)
    s["full_bytes"].append(allocated(state))
    kill(p)
    # The load row's peer: a QEMU already up and waiting (-incoming defer)
    # is told to read the state (migrate_incoming) and let run (cont);
    # timed until `info status` says running.
    for k_ in range(a.restores):
        mon_k = work / f"w{k_}.sock"
        p = spawn(qemu_argv(a, ["-incoming", "defer", "-monitor", f"unix:{mon_k},server,nowait"]), log)
        wait_sock(mon_k)
        hmp(mon_k, "info status")   # the monitor answers: QEMU is up
        t0 = time.monotonic()
        hmp(mon_k, f'migrate_incoming "exec:cat {state}"')
        while "running" not in hmp(mon_k, "info status"):
            hmp(mon_k, "cont")
            time.sleep(0.002)
        s["load_s"].append(time.monotonic() - t0)
        kill(p)
    for k_ in range(3):
        t0 = time.monotonic()
        p = qemu_restore(a, state, work / f"m{k_}.sock", log)
        try:
            answer(p)
            s["launch_s"].append(time.monotonic() - t0)
        except pexpect.TIMEOUT:
            # Seen at load 30: the restored guest never echoed a line
            # typed on its serial console within 120 s. Counted, and said
            # under the table, rather than ending the whole run.
            s["launch_noanswer"].append(1)
        kill(p)
    for n in a.clones:
        ps = []
        try:
            for k_ in range(n):
                ps.append(qemu_restore(a, state, work / f"c{k_}.sock", log))
            for p in ps:
                answer(p, 600)
            time.sleep(1)
            tot = [rss_pss_kib(p.pid) for p in ps]
            s[f"rss{n}"].append(sum(r for r, _ in tot) * 1024)
            s[f"pss{n}"].append(sum(q for _, q in tot) * 1024)
        finally:
            for p in ps:
                kill(p)


# ------------------------------------------------------------------ report

def med(v):
    return statistics.median(v) if v else None


def fmt(v, unit):
    if v is None:
        return "—"
    if unit == "ms":
        return f"{v * 1000:.1f} ms" if v < 1 else f"{v:.2f} s"
    if unit == "MiB":
        return f"{v / (1 << 20):.1f} MiB"
    return f"{v:.2f} s"


# The VMM's log line for a load names where its time went (api_snapshot.c).
STAGES = [("request", "st_request_s"), ("state file", "st_state_s"),
          ("build and load", "st_build_s"), ("confine threads", "st_confine_s"),
          ("start harts", "st_start_s"), ("confine API thread", "st_self_s")]


def report(a, sk, qe, load):
    rows = [("Full snapshot create (idle guest): time", "create_s", "ms"),
            ("  host CPU time of the VMM for it", "create_cpu_s", "ms"),
            ("  files (allocated)", "full_bytes", "MiB"),
            ("Diff snapshot after 2 s idle: time", "diff_s", "ms"),
            ("  files (allocated)", "diff_bytes", "MiB"),
            ("restore into a VMM already up → running: the call (skiff PUT /snapshot/load, "
             "QEMU migrate_incoming + cont)", "load_s", "ms"),
            ("  the VMM's own time for it (request parsed → VM running)", "load_vmm_s", "ms"),
            ("  CPU time of the API thread for it", "load_cpu_s", "ms")] + [
            (f"    stage: {n}", key, "ms") for n, key in STAGES] + [
            ("  load call → guest shell answers", "useful_s", "ms"),
            ("process launch (`skiff run --api-sock`) → its API socket takes connections",
             "sock_s", "ms"),
            ("process launch → running through the API (the row above + the load call)",
             "api_run_s", "ms"),
            ("process launch (`skiff run --snapshot DIR --api-sock`) → GET / says Running",
             "run_s", "ms"),
            ("  host CPU time of the VMM's process by then (its threads', from its fork)",
             "run_cpu_s", "ms"),
            ("process launch → guest shell answers", "launch_s", "ms")]
    for n in a.clones:
        rows.append((f"{n} restored VMs, idle: summed RSS", f"rss{n}", "MiB"))
        rows.append(("  summed PSS", f"pss{n}", "MiB"))
    out = [f"Command: `bench/snapshot.py --runs {a.runs} --mem {a.mem} --clones "
           f"{','.join(map(str, a.clones))} --restores {a.restores}{' --skiff-only' if a.skiff_only else ''}`; "
           f"the default guest, 1 hart, {a.mem} MiB; "
           f"host load average before the run {load}.", "",
           "| measure | skiff | QEMU | skiff / QEMU |", "|---|---|---|---|"]
    for title, key, unit in rows:
        a_, b_ = med(sk.get(key, [])), med(qe.get(key, []))
        ratio = f"{a_ / b_:.3f}" if a_ is not None and b_ else "—"
        out.append(f"| {title} | {fmt(a_, unit)} | {fmt(b_, unit)} | {ratio} |")
    for name, st in (("skiff", sk), ("QEMU", qe)):
        if st.get("launch_noanswer"):
            out.append(f"\n{name}: {len(st['launch_noanswer'])} restored VM(s) of the launch row "
                       "did not answer on the console within 120 s and are left out.")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mem", type=int, default=256)
    ap.add_argument("--clones", default="10,50")
    ap.add_argument("--restores", type=int, default=5, help="restores into a running VMM per run")
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--qemu", default=shutil.which("qemu-system-riscv64"))
    ap.add_argument("--skiff-only", action="store_true",
                    help="no QEMU runs (its column stays empty): skiff's rows alone, e.g. on a host too "
                         "loaded for 10 QEMU guests at once")
    ap.add_argument("--output")
    a = ap.parse_args()
    a.clones = [int(x) for x in a.clones.split(",") if x]
    a.skiff = str(Path(a.build) / "src" / "cli" / "skiff")
    load = open("/proc/loadavg").read().split()[0]
    sk, qe = {}, {}
    from collections import defaultdict
    sk, qe = defaultdict(list), defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="skiff-snapbench-", dir="/var/tmp") as tmp:
        logdir = Path(tmp) / "logs"
        logdir.mkdir()
        for r in range(a.runs):
            peers = (("skiff", skiff_run, sk),) if a.skiff_only else \
                (("skiff", skiff_run, sk), ("qemu", qemu_run, qe))
            for name, fn, s in peers:
                work = Path(tmp) / f"{name}{r}"
                work.mkdir()
                with open(logdir / f"{name}{r}.log", "w") as log:
                    fn(a, work, log, s)
                shutil.rmtree(work)
                print(f"run {r + 1}/{a.runs} {name} done", file=sys.stderr)
    load = f"{load}, after it {open('/proc/loadavg').read().split()[0]}"
    text = report(a, sk, qe, load)
    print(text)
    if a.output:
        Path(a.output).write_text(text)


if __name__ == "__main__":
    main()

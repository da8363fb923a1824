#!/usr/bin/python3
"""Two builds of skiff side by side: a change against the tree before it
(docs/benchmark-log.md, "Two builds side by side"):

    bench/builds.py --base OLD_BINARY [--skiff NEW_BINARY] [--runs 3]
                    [--rows boot,blk,net] [--engine interp] [--io-mib 64]
                    [--api-calls 200] [--json FILE] [--output FILE.md]

It is bench/run.sh's runner with two skiffs and no peer: for every run and
every VM configuration the rows need, the same guest boots in the new build
and in the base build, strictly alternating, the base build first in every
other run (the second boot of a pair was often ahead on a loaded host,
whichever build it was: docs/benchmark-log.md), and each row measures in each
boot exactly as bench/README.md describes (the cpu row's configuration boots
both builds side by side and runs each workload in one, then at once in the
other, as bench/run.sh does with skiff and QEMU) (boot: launch to the shell
prompt and the host CPU seconds to get there; blk: O_DIRECT sequential and
random reads and writes of a raw disk, every block's CRC-32 checked; net:
TCP both ways through user networking). Before each run's boots, the API
row, alternating the builds too: `skiff run --api-sock` started
--api-starts times (process start to GET / answered 200), then in one VMM
--api-calls rounds of configuration requests (PUT /boot-source,
/machine-config, /drives/{id}, /network-interfaces/{id}, GET /vm/config),
each timed on a fresh connection, and the VMM's host CPU over them.

--engine picks both builds' tier (skiff run --engine), so that changes in
the JIT do not confound a comparison of the rest; it must exist in both.
The table gives medians and new / base (for a throughput, base / new:
above 1 means the new build is slower either way). Wall-clock times on a
shared host are noisy; the host CPU seconds (utime + stime of the VMM
process, all threads) are the steadier measure, and the load average
before and after the run is printed with the table.
"""
import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import bench
from api import api, api_ok, stop, wait_api
from guestproc import GuestError
from peers import Skiff
from rowbase import DEFAULT_IMAGE, HIGHER

NEW, BASE = "skiff", "skiff-base"


class SkiffBase(Skiff):
    """The base build: the same command lines, another binary."""
    name = BASE


def proc_cpu(pid):
    """utime + stime of a process, all threads, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def api_row(system, o, kernel, initrd, tmp, rec):
    """The API row for one build: process start to API ready, then
    --api-calls rounds of configuration requests in one VMM."""
    sock = os.path.join(tmp, "api.sock")
    argv = [system.binary, "run", "--api-sock", sock] + (["--engine", o.engine] if o.engine else [])
    for _ in range(o.api_starts):
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            rec("api.ready", (wait_api(sock, p) - t0) * 1000)
        finally:
            stop(p)
    disk = os.path.join(tmp, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    calls = [("PUT", "/boot-source", {"kernel_image_path": kernel, "initrd_path": initrd,
                                      "boot_args": bench.APPEND}),
             ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256}),
             ("PUT", "/drives/d0", {"drive_id": "d0", "path_on_host": disk, "is_root_device": False,
                                    "is_read_only": False, "format": "raw"}),
             ("PUT", "/network-interfaces/n0", {"iface_id": "n0", "backend": "user"}),
             ("GET", "/vm/config", None)]
    try:
        wait_api(sock, p)
        times = []
        c0 = proc_cpu(p.pid)
        for _ in range(o.api_calls):
            for method, path, body in calls:
                t0 = time.monotonic()
                if method == "GET":
                    st, text = api(sock, method, path)
                    if st != 200:
                        raise GuestError(f"GET {path}: {st} {text}")
                else:
                    api_ok(sock, method, path, body)
                times.append((time.monotonic() - t0) * 1000)
        rec("api.call", statistics.median(times))
        rec("api.cpu", (proc_cpu(p.pid) - c0) * 1000 / len(times))
    finally:
        stop(p)


API_METRICS = [("api.ready", "process start → API ready (GET / 200)", "ms"),
               ("api.call", "one configuration request (median of PUT boot-source, machine-config, "
                            "drives, network-interfaces, GET vm/config)", "ms"),
               ("api.cpu", "VMM host CPU per configuration request", "ms")]


def report(o, runner, cmd, load_before, load_after, elapsed):
    res = runner.res
    L = [f"Command: `{cmd}`; {o.runs} run(s), each starting and booting the new build and the "
         f"base build in turn; host load average {load_before} before the run, {load_after} "
         f"after; {elapsed / 60:.0f} min.", "",
         "| measure | new | base | new / base (cost) |", "|---|---|---|---|"]
    lines = [(key, f"api: {label}", unit, None, False) for key, label, unit in API_METRICS]
    for row in runner.rows:
        for m in row.metrics(o.bench):
            what = m.label + (" (host CPU s)" if m.table == "cputime" else f" ({m.unit})")
            lines.append((m.key, f"{row.name}: {what}", m.unit, m.better, m.table == "cputime"))
    for key, what, unit, better, _ in lines:
        new, base = res.median(key, NEW), res.median(key, BASE)
        if new is None and base is None:
            continue
        ratio = None
        if new and base:
            ratio = (base / new) if better == HIGHER else (new / base)
        L.append(f"| {what} | {bench.fmt(new, unit)} | {bench.fmt(base, unit)} | "
                 f"{'—' if ratio is None else f'{ratio:.3f}'} |")
    L += ["", "Samples: " + "; ".join(
        f"{k} {s}: {', '.join(bench.fmt(x) for x in v)}"
        for (k, s), v in sorted(res.samples.items()) if s in (NEW, BASE))]
    if runner.errors:
        L += ["", "Errors: " + "; ".join(runner.errors)]
    return "\n".join(L) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the base build's skiff binary")
    ap.add_argument("--skiff", help="the new build's skiff binary (default: a release build in build-bench)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rows", default="boot,blk,net",
                    help="rows of bench/run.sh (default boot,blk,net); the API row runs always, "
                         "'api' alone runs only it (no guest boots)")
    ap.add_argument("--engine", default="interp", help="skiff run --engine for both (default interp; '' for the default)")
    ap.add_argument("--io-mib", type=int, default=64)
    ap.add_argument("--api-starts", type=int, default=5, help="API starts per build and run (default 5)")
    ap.add_argument("--api-calls", type=int, default=200, help="rounds of configuration requests (default 200)")
    ap.add_argument("--json", help="also write every sample as JSON")
    ap.add_argument("--output", help="write the Markdown section here")
    o = ap.parse_args(argv)
    guest_rows = ",".join(r.strip() for r in o.rows.split(",") if r.strip() and r.strip() != "api")
    a = bench.parse_args(["--runs", str(o.runs), "--rows", guest_rows or "boot", "--io-mib", str(o.io_mib)]
                         + (["--skiff", o.skiff] if o.skiff else []))
    if not guest_rows:
        a.row_names = []
    a.boot_harts = [1]
    o.bench = a
    new_bin = os.path.abspath(o.skiff) if o.skiff else bench.build_skiff(a.build_dir)[0]
    gdir = bench.default_guest()
    kernel, initrd = os.path.join(gdir, "Image"), os.path.join(gdir, "initrd.cpio.gz")
    systems = [Skiff(new_bin, o.engine or None), SkiffBase(os.path.abspath(o.base), o.engine or None)]
    log_dir = tempfile.mkdtemp(prefix="skiff-bench-builds-")
    bench.log(f"console logs in {log_dir}")
    # Rows on another guest profile (7zip, stressng: bench-cpu) get theirs
    # as bench/run.sh builds it.
    images = {DEFAULT_IMAGE: (kernel, initrd)}
    for spec in (sp for n in a.row_names for sp in bench.ROWS[n].specs(a)):
        if spec.image not in images:
            images[spec.image] = bench.build_guest(spec.image)
    runner = bench.Runner(a, systems, images, log_dir)
    load_before, t0 = bench.loadavg(), time.monotonic()
    tmp = tempfile.mkdtemp(prefix="skiff-bench-api-")
    try:
        for run in range(o.runs):
            order = systems if run % 2 == 0 else systems[::-1]
            for system in order:
                bench.log(f"run {run + 1}/{o.runs}: {system.name}, API")
                try:
                    api_row(system, o, kernel, initrd, tmp,
                            lambda k, v, s=system.name: runner.res.add(k, s, v))
                except (GuestError, OSError) as e:
                    runner.errors.append(f"run {run + 1}, {system.name}, api: {e}")
            for spec in runner.specs():
                runner.sessions(run, spec, order)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if runner.workdir:
            shutil.rmtree(runner.workdir, ignore_errors=True)
    cmd = "bench/builds.py" + "".join(" " + shlex.quote(x) for x in argv)
    text = report(o, runner, cmd, load_before, bench.loadavg(), time.monotonic() - t0)
    bench.write_results(runner, text, o.json, o.output)
    return 1 if runner.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

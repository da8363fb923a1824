"""The per-VM API's numbers (issue 7), skiff only: medians over several runs.

Usage: /usr/bin/python3 bench/api.py [--runs N] [--skiff BINARY] [--output docs/benchmark-log.md]

Measured, each once per run (the API start five times per run):
  - VMM process start (`skiff run --api-sock PATH`) to the API answering
    GET / (200), polled every millisecond on fresh connections;
  - PUT /actions InstanceStart (sent right after boot-source and
    machine-config) to the guest's first init line, `skiff-guest: init
    started`, on the console (the VMM's standard output, a pipe stamped as
    it arrives, bench/guestproc.py); also how long the PUT itself took;
  - memory overhead of an idle 256 MiB, 1 vCPU guest booted through the
    API: VMM RSS minus the guest RAM it has touched, after an idle window
    from the shell prompt (the vmm row's method, GuestProcess.memory);
  - host CPU of a 2-vCPU guest busy-looping on both vCPUs, with
    machine-config cpu_quota 0.25 and 0.5: utime + stime of the VMM process
    (/proc/PID/stat, all threads) over a window, as a fraction of one core.

With --output, the Markdown table replaces the "Per-VM API" section of that
file (or is appended), and nothing else in it changes.
"""

import argparse
import datetime
import http.client
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from bench import build_skiff, default_guest, git, loadavg, machine_info
from guestproc import GuestError, GuestProcess

APPEND = "console=ttyS0 earlycon=sbi quiet"
SECTION = "## Per-VM API (bench/api.py)"
MIB = 1 << 20


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def api(sock, method, path, body=None, timeout=60):
    """One request on a fresh connection: (status, body text)."""
    c = UnixHTTP(sock, timeout)
    try:
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def api_ok(sock, method, path, body=None):
    st, text = api(sock, method, path, body)
    if st not in (200, 204):
        raise GuestError(f"{method} {path}: {st} {text}")
    return text


def wait_api(sock, proc, timeout=30):
    """Poll GET / until it answers 200; the monotonic time it did."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            st, _ = api(sock, "GET", "/", timeout=5)
            if st == 200:
                return time.monotonic()
        except (OSError, http.client.HTTPException):
            pass
        if proc.poll() is not None:
            raise GuestError(f"skiff exited ({proc.returncode}) before its API answered")
        if time.monotonic() > deadline:
            raise GuestError(f"the API at {sock} did not answer within {timeout} s")
        time.sleep(0.001)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Bench:
    def __init__(self, a, skiff, kernel, initrd, tmp, log_dir):
        self.a, self.skiff, self.kernel, self.initrd = a, skiff, kernel, initrd
        self.tmp, self.log_dir = tmp, log_dir
        self.samples = {}
        self.boots = 0

    def rec(self, key, value):
        self.samples.setdefault(key, []).append(value)

    def sock(self):
        return os.path.join(self.tmp, "api.sock")

    def api_start(self):
        sock = self.sock()
        t0 = time.monotonic()
        p = subprocess.Popen([self.skiff, "run", "--api-sock", sock], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            t = wait_api(sock, p)
        finally:
            stop(p)
        self.rec("api_ready", (t - t0) * 1000)

    def boot(self, name, vcpus, quota=None):
        """A VMM configured through its API and started; returns (guest,
        monotonic time InstanceStart was sent, seconds the PUT took)."""
        sock = self.sock()
        self.boots += 1
        g = GuestProcess(name, [self.skiff, "run", "--api-sock", sock],
                         os.path.join(self.log_dir, f"{self.boots:02d}-{name}.log"))
        try:
            wait_api(sock, g.proc)
            api_ok(sock, "PUT", "/boot-source", {"kernel_image_path": self.kernel,
                                                 "initrd_path": self.initrd, "boot_args": APPEND})
            mc = {"vcpu_count": vcpus, "mem_size_mib": self.a.mem}
            if quota:
                mc["cpu_quota"] = quota
            api_ok(sock, "PUT", "/machine-config", mc)
            t0 = time.monotonic()
            api_ok(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
            t_put = time.monotonic() - t0
            return g, t0, t_put
        except BaseException:
            g.kill()
            raise

    def start_to_init_and_memory(self):
        g, t0, t_put = self.boot("idle", 1)
        try:
            _, t_init = g.expect(rb"skiff-guest: init started", self.a.boot_timeout)
            self.rec("start_to_init", g.t_launch + t_init - t0)
            self.rec("start_put", t_put * 1000)
            g.expect(g.PROMPT, self.a.boot_timeout)
            time.sleep(self.a.idle_seconds)
            mem = g.memory(self.a.mem * MIB)
            self.rec("overhead", (mem["rss"] - mem["guest_rss"]) / MIB)
            self.rec("rss", mem["rss"] / MIB)
            self.rec("guest_rss", mem["guest_rss"] / MIB)
            if mem["how"] != "exact-size mapping":
                log(f"note: guest RAM found as {mem['how']}")
        finally:
            g.poweroff()

    def quota_cpu(self, quota):
        vcpus = self.a.quota_vcpus
        g, _, _ = self.boot(f"quota{quota:g}", vcpus, quota)
        try:
            g.expect(g.PROMPT, self.a.boot_timeout * 4)
            loops = " ".join(str(i) for i in range(vcpus))
            g.send(f"for i in {loops}; do (while :; do :; done) & done\n")
            g.expect(g.PROMPT, 60)
            time.sleep(2)   # every loop is running
            s0, c0, t0 = g.schedstat(), g.cpu_seconds(), time.monotonic()
            time.sleep(self.a.quota_seconds)
            s1, c1, t1 = g.schedstat(), g.cpu_seconds(), time.monotonic()
            self.rec(f"quota_{quota:g}", (c1 - c0) / (t1 - t0))
            # Throttled harts sleep; time spent runnable in the host's run
            # queue is the host's contention, not the quota.
            waited = sum(s1[t][1] - s0[t][1] for t in s1 if t in s0)
            self.rec(f"quota_{quota:g}_wait", waited / (t1 - t0))
        finally:
            g.kill()

    def run(self):
        for r in range(self.a.runs):
            log(f"run {r + 1}/{self.a.runs}: API start x{self.a.api_starts}")
            for _ in range(self.a.api_starts):
                self.api_start()
            log(f"run {r + 1}: InstanceStart -> init, idle memory")
            self.start_to_init_and_memory()
            for q in self.a.quotas:
                log(f"run {r + 1}: {self.a.quota_vcpus} vCPUs busy at cpu_quota {q:g}")
                self.quota_cpu(q)


def median(v):
    return statistics.median(v) if v else None


def rows(a, samples):
    """(label, unit, key) per table line."""
    out = [
        ("VMM process start (`skiff run --api-sock`) → API answers GET /", "ms", "api_ready"),
        ("PUT /actions InstanceStart → `skiff-guest: init started` on the console", "s", "start_to_init"),
        ("PUT /actions InstanceStart request itself (VM built and started)", "ms", "start_put"),
        (f"VMM memory overhead, idle {a.mem} MiB 1-vCPU guest: RSS − guest RAM touched", "MiB", "overhead"),
        (f"VMM RSS, idle {a.mem} MiB guest", "MiB", "rss"),
        ("guest RAM touched", "MiB", "guest_rss"),
    ]
    for q in a.quotas:
        out.append((f"host CPU, {a.quota_vcpus} vCPUs busy-looping, cpu_quota {q:g} "
                    f"(fraction of one core over {a.quota_seconds:g} s)", "cores", f"quota_{q:g}"))
        out.append(("… meanwhile runnable but waiting for a host CPU (host contention; "
                    "run-queue wait of the VMM's threads)", "cores", f"quota_{q:g}_wait"))
    return out


def fmt(v, unit):
    if v is None:
        return "—"
    if unit in ("ms", "MiB"):
        return f"{v:.1f}"
    if unit == "cores":
        return f"{v:.3f}"
    return f"{v:.2f}"


def table(a, samples):
    lines = ["| measure | unit | median | min – max | n |", "|---|---|---|---|---|"]
    for label, unit, key in rows(a, samples):
        v = samples.get(key, [])
        rng = f"{fmt(min(v), unit)} – {fmt(max(v), unit)}" if v else "—"
        lines.append(f"| {label} | {unit} | {fmt(median(v), unit)} | {rng} | {len(v)} |")
    return lines


def section(a, samples, meta):
    m = meta["machine"]
    out = [SECTION, "",
           f"Generated by `bench/api.py` (skiff only; see [bench/README.md](../bench/README.md)) on "
           f"{meta['date']}, commit {meta['commit']} (meson buildtype {meta['buildtype']}), "
           f"{m['cpu']} ({m['cores']} cores, {m['ram']}), host load {meta['load_start']} at the start, "
           f"{meta['load_end']} at the end, {meta['elapsed']}. "
           "", "Command:", "", "```", meta["command"], "```", "",
           *table(a, samples), "",
           f"Medians of {a.runs} runs ({a.api_starts} API starts per run). The guest is the default "
           f"guest, configured through the API (boot-source with `{APPEND}`, machine-config) and "
           f"started with InstanceStart; the memory is measured after a {a.idle_seconds:g} s idle "
           "window from the shell prompt; the CPU quota guests run one `while :; do :; done` "
           "shell loop per vCPU. A quota is an upper bound: on a busy host the VM gets less, and "
           "the run-queue wait line shows how much CPU time its threads wanted but did not get.", ""]
    return out


def write_section(path, lines):
    """Replace this script's section of the Markdown file (up to the next
    `## ` heading), or append it; the rest of the file is left as it is."""
    text = open(path).read() if os.path.exists(path) else ""
    body = "\n".join(lines).rstrip("\n") + "\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body if text else body
    else:
        end = text.find("\n## ", start + len(SECTION))
        rest = text[end + 1:] if end >= 0 else ""
        text = text[:start] + body + ("\n" + rest if rest else "")
    with open(path, "w") as f:
        f.write(text)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/api.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="runs (default 3)")
    p.add_argument("--api-starts", type=int, default=5, help="API start samples per run (default 5)")
    p.add_argument("--skiff", help="skiff binary (default: build it in --build-dir)")
    p.add_argument("--build-dir", default="build-bench", help="meson build directory (default build-bench)")
    p.add_argument("--mem", type=int, default=256, help="guest memory in MiB (default 256)")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="idle window before the memory (default 10)")
    p.add_argument("--quotas", default="0.25,0.5", help="cpu_quota values (default 0.25,0.5)")
    p.add_argument("--quota-vcpus", type=int, default=2, help="vCPUs of the quota guests (default 2)")
    p.add_argument("--quota-seconds", type=float, default=20.0, help="CPU measuring window (default 20)")
    p.add_argument("--boot-timeout", type=float, default=300.0, help="seconds a boot may take (default 300)")
    p.add_argument("--log-dir", help="console logs (default: a temporary directory)")
    p.add_argument("--output", help="Markdown file whose Per-VM API section is (re)written")
    p.add_argument("--json", help="also write every sample as JSON to this file")
    a = p.parse_args(argv)
    a.quotas = [float(x) for x in a.quotas.split(",") if x.strip()]
    if a.runs < 1 or a.api_starts < 1:
        p.error("--runs and --api-starts must be at least 1")
    return a


def main(argv):
    a = parse_args(argv)
    t_start = time.monotonic()
    load_start = loadavg()
    if a.skiff:
        skiff, btype = os.path.abspath(a.skiff), "unknown (given with --skiff)"
    else:
        skiff, btype = build_skiff(a.build_dir)
    gdir = default_guest()
    kernel, initrd = os.path.join(gdir, "Image"), os.path.join(gdir, "initrd.cpio.gz")
    for f in (kernel, initrd):
        if not os.path.isfile(f):
            sys.exit(f"bench/api.py: guest file {f} missing; build it with guest/build-image.sh")
    log_dir = a.log_dir or tempfile.mkdtemp(prefix="skiff-bench-api-logs-")
    os.makedirs(log_dir, exist_ok=True)
    log(f"console logs in {log_dir}")
    tmp = tempfile.mkdtemp(prefix="skiff-bench-api-")   # short: the socket path
    b = Bench(a, skiff, kernel, initrd, tmp, log_dir)
    try:
        b.run()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine_info(),
        "load_start": load_start,
        "load_end": loadavg(),
        "commit": git("describe", "--always", "--dirty", "--abbrev=12") or "unknown",
        "buildtype": btype,
        "elapsed": f"{(time.monotonic() - t_start) / 60:.1f} min",
        "command": "bench/api.py" + "".join(" " + shlex.quote(x) for x in argv),
    }
    print("\n".join(table(a, b.samples)))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "samples": b.samples}, f, indent=1)
    if a.output:
        write_section(a.output, section(a, b.samples, meta))
        log(f"wrote the section to {a.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

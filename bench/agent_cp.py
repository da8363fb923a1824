#!/usr/bin/python3
"""Copy throughput through the guest agent, skiff beside QEMU
(docs/benchmark-log.md, "Guest agent copies"):

    bench/agent_cp.py [--runs 3] [--mib 64] [--mem 384] [--build build]...
                      [--no-qemu] [--output FILE.md]

The default guest (1 hart, --mem MiB) boots once in each VMM and runs
skiff's guest agent (skiff-agent) on the virtio-console port
org.qemu.guest_agent.0: skiff gives it that port itself; QEMU gets
`-device virtio-serial-device` with a `virtserialport` of that name on a
chardev socket. Then, alternating skiff and QEMU each run, a file of --mib
random MiB goes into the guest's /tmp and back out:

  skiff  `skiff cp FILE API_SOCKET:/tmp/f` and `skiff cp API_SOCKET:/tmp/f
         OUT` (1 MiB guest-file-write/-read pieces through the VMM's
         /agent/files routes, then the guest-file-hash check).
  QEMU   what a program does through QEMU's agent chardev: this script's
         own QGA client, the same 1 MiB guest-file-write/-read pieces and
         the same guest-file-hash call at the end, so the guest does the
         same work on both sides.

Each copy's wall time and host CPU time (the VMM process, plus the copying
client: the `skiff cp` process, or this script's own CPU time for the QEMU
client) are measured; every copy is checked (sha256 of what came back, the
guest's XXH64 of what went in). Medians; ratio = skiff / QEMU (for the
throughput, higher is better; for CPU seconds, lower is).

--build may be given more than once (e.g. a change and the tree before
it): each build boots its own VM and the copies alternate between all of
them; --no-qemu leaves QEMU out. The ratio is then the first column's over
the last's. For skiff the VMM's API thread (libmicrohttpd's, which reads
the request bodies) has a row of its own: host CPU seconds of that thread.
"""
import argparse
import base64
import hashlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from snapshot import APPEND, READY, cpu_seconds, guest, kill, spawn, wait_sock

REPO = Path(__file__).resolve().parent.parent
CHUNK = 1 << 20
PORT = "org.qemu.guest_agent.0"


class Qga:
    """A minimal QEMU guest agent client over a chardev socket."""

    def __init__(self, path, timeout=30):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(str(path))
        self.buf = b""
        self.n = 0

    def _line(self):
        while b"\n" not in self.buf:
            got = self.s.recv(1 << 20)
            if not got:
                raise RuntimeError("the agent's chardev closed")
            self.buf += got
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def sync(self):
        """guest-sync-delimited: skip whatever came before the 0xFF mark."""
        self.n += 1
        self.s.sendall(b"\xff" + json.dumps({"execute": "guest-sync-delimited",
                                              "arguments": {"id": self.n}}).encode() + b"\n")
        while True:
            line = self._line()
            mark = line.rfind(b"\xff")
            if mark < 0:
                continue
            line = line[mark + 1:]
            if line.strip() and json.loads(line).get("return") == self.n:
                return

    def call(self, cmd, **args):
        self.s.sendall(json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
        while True:
            reply = json.loads(self._line().replace(b"\xff", b""))
            if "error" in reply:
                raise RuntimeError(f"{cmd}: {reply['error']}")
            if "return" in reply:
                return reply["return"]

    def close(self):
        self.s.close()


def xxh64(path):
    return subprocess.run(["xxhsum", "-H64", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0].split("_")[-1]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def api_thread_cpu(pid):
    """Host CPU seconds of the VMM's API threads ("api-N"; libmicrohttpd's "MHD-*" in builds before the API's own pool)."""
    total = 0.0
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (t / "stat").read_text()
        except OSError:
            continue
        if stat[stat.index("(") + 1:stat.rindex(")")].startswith(("MHD", "api-")):
            f = stat.rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ------------------------------------------------------------------ skiff

class SkiffVM:
    def __init__(self, a, work, log, skiff):
        k, i = guest()
        self.a, self.sock, self.skiff = a, work / "api.sock", skiff
        self.p = spawn([skiff, "run", "--kernel", k, "--initrd", i, "--append", APPEND,
                        "--mem", a.mem, "--api-sock", self.sock], log)
        self.p.expect(READY, timeout=600)
        wait_sock(self.sock)
        deadline = time.monotonic() + 300
        while self.cp_cmd("exec", self.sock, "--", "true").returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("skiff: the guest agent does not answer")
            time.sleep(1)

    def cp_cmd(self, *args):
        return subprocess.run([self.skiff, *map(str, args)], capture_output=True, timeout=1800)

    def copy(self, src, out, s):
        for way, args in (("in", (src, f"{self.sock}:/tmp/f")), ("out", (f"{self.sock}:/tmp/f", out))):
            c0, v0, t0 = children_cpu(), cpu_seconds(self.p.pid), time.monotonic()
            a0 = api_thread_cpu(self.p.pid)
            r = self.cp_cmd("cp", *args)
            s[f"{way}_s"].append(time.monotonic() - t0)
            s[f"{way}_cpu"].append(children_cpu() - c0 + cpu_seconds(self.p.pid) - v0)
            s[f"{way}_api"].append(api_thread_cpu(self.p.pid) - a0)
            if r.returncode:
                raise RuntimeError(f"skiff cp {way}: {r.stderr.decode(errors='replace')}")
        self.cp_cmd("exec", self.sock, "--", "rm", "/tmp/f")

    def close(self):
        kill(self.p)


# ------------------------------------------------------------------ QEMU

class QemuVM:
    def __init__(self, a, work, log):
        k, i = guest()
        chardev = work / "qga.sock"
        self.p = spawn([a.qemu, "-M", "virt", "-m", str(a.mem), "-smp", "1", "-nographic",
                        "-bios", "default", "-kernel", k, "-initrd", i, "-append", APPEND, "-nic", "none",
                        "-device", "virtio-serial-device",
                        "-chardev", f"socket,id=qga,path={chardev},server=on,wait=off",
                        "-device", f"virtserialport,chardev=qga,name={PORT}"], log)
        self.p.expect(READY, timeout=600)
        wait_sock(chardev)
        self.q = Qga(chardev, timeout=600)
        deadline = time.monotonic() + 300
        while True:
            try:
                self.q.s.settimeout(5)
                self.q.sync()
                self.q.s.settimeout(600)
                break
            except (TimeoutError, socket.timeout):
                if time.monotonic() > deadline:
                    raise RuntimeError("QEMU: the guest agent does not answer")

    def copy(self, src, out, s):
        q = self.q
        # in: open, 1 MiB writes, close, the guest's hash of what it got
        c0, v0, t0 = time.process_time(), cpu_seconds(self.p.pid), time.monotonic()
        h = q.call("guest-file-open", path="/tmp/f", mode="w")
        with open(src, "rb") as f:
            while chunk := f.read(CHUNK):
                q.call("guest-file-write", handle=h, **{"buf-b64": base64.b64encode(chunk).decode()})
        q.call("guest-file-close", handle=h)
        got = q.call("guest-file-hash", path="/tmp/f")
        s["in_s"].append(time.monotonic() - t0)
        s["in_cpu"].append(time.process_time() - c0 + cpu_seconds(self.p.pid) - v0)
        if got["digest"] != xxh64(src):
            raise RuntimeError(f"QEMU copy in: guest hash {got} differs")
        # out: open, 1 MiB reads to EOF, close, the guest's hash to compare
        c0, v0, t0 = time.process_time(), cpu_seconds(self.p.pid), time.monotonic()
        h = q.call("guest-file-open", path="/tmp/f", mode="r")
        with open(out, "wb") as f:
            while True:
                r = q.call("guest-file-read", handle=h, count=CHUNK)
                f.write(base64.b64decode(r["buf-b64"]))
                if r["eof"]:
                    break
        q.call("guest-file-close", handle=h)
        got = q.call("guest-file-hash", path="/tmp/f")
        s["out_s"].append(time.monotonic() - t0)
        s["out_cpu"].append(time.process_time() - c0 + cpu_seconds(self.p.pid) - v0)
        if got["digest"] != xxh64(out):
            raise RuntimeError("QEMU copy out: the hashes differ")
        pid = q.call("guest-exec", path="rm", arg=["/tmp/f"])["pid"]
        while not q.call("guest-exec-status", pid=pid)["exited"]:
            time.sleep(0.1)

    def close(self):
        self.q.close()
        kill(self.p)


# ------------------------------------------------------------------ report

def med(v):
    return statistics.median(v) if v else None


def report(a, cols, load_before, load_after):
    """cols: [(name, samples)]; the ratio is the first column's over the last's."""
    builds = "".join(f" --build {b}" for b in a.build) if a.build != [str(REPO / "build")] else ""
    names = [n for n, _ in cols]
    out = [f"Command: `bench/agent_cp.py --runs {a.runs} --mib {a.mib} --mem {a.mem}{builds}"
           f"{' --no-qemu' if a.no_qemu else ''}`; the default guest, 1 hart, {a.mem} MiB, skiff's "
           f"guest agent in every VMM; host load average {load_before} before the run, {load_after} after.",
           "", f"| {a.mib} MiB copy | " + " | ".join(names) + f" | {names[0]} / {names[-1]} |",
           "|---|" + "---|" * (len(cols) + 1)]

    def row(title, vals):
        shown = ["–" if v is None else f"{v:.2f}" for v in vals]
        ratio = f"{vals[0] / vals[-1]:.3f}" if None not in (vals[0], vals[-1]) and vals[-1] else "–"
        out.append(f"| {title} | " + " | ".join(shown) + f" | {ratio} |")

    for way, title in (("in", "host → guest (`skiff cp FILE VM:PATH`)"),
                       ("out", "guest → host (`skiff cp VM:PATH FILE`)")):
        row(f"{title}: MiB/s (wall)", [a.mib / med(s[f"{way}_s"]) for _, s in cols])
        row("&nbsp;&nbsp;host CPU seconds (VMM + client)", [med(s[f"{way}_cpu"]) for _, s in cols])
        row("&nbsp;&nbsp;of which the VMM's API thread", [med(s[f"{way}_api"]) for _, s in cols])
    out += ["", "Samples (wall s): " + "; ".join(
        f"{n} {w}: {', '.join(f'{x:.2f}' for x in s[f'{w}_s'])}" for n, s in cols for w in ("in", "out"))]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--mem", type=int, default=384)
    ap.add_argument("--build", action="append",
                    help="a meson build directory (default: build); more than one: side by side")
    ap.add_argument("--no-qemu", action="store_true", help="skiff only")
    ap.add_argument("--qemu", default=shutil.which("qemu-system-riscv64"))
    ap.add_argument("--output")
    a = ap.parse_args()
    a.build = a.build or [str(REPO / "build")]
    load_before = open("/proc/loadavg").read().split()[0]
    kinds = [(f"skiff ({b})" if len(a.build) > 1 else "skiff", str(Path(b) / "src" / "cli" / "skiff"))
             for b in a.build]
    if not a.no_qemu:
        kinds.append(("QEMU", None))
    cols = [(name, defaultdict(list)) for name, _ in kinds]
    with tempfile.TemporaryDirectory(prefix="skiff-cpbench-", dir="/var/tmp") as tmp:
        tmp = Path(tmp)
        src, out = tmp / "src.bin", tmp / "out.bin"
        with open(src, "wb") as f:
            f.write(os.urandom(a.mib << 20))
        want = sha256(src)
        vms = []
        try:
            for k, (name, skiff) in enumerate(kinds):
                (tmp / f"vm{k}").mkdir()
                log = open(tmp / f"vm{k}.log", "w")
                vms.append(SkiffVM(a, tmp / f"vm{k}", log, skiff) if skiff else QemuVM(a, tmp / f"vm{k}", log))
                print(f"{name}: booted, agent answers", file=sys.stderr)
            for r in range(a.runs):
                for vm, (name, s) in zip(vms, cols):
                    vm.copy(src, out, s)
                    if sha256(out) != want:
                        raise RuntimeError(f"{name}: the file that came back differs")
                    out.unlink()
                    print(f"run {r + 1}/{a.runs} {name}: in {s['in_s'][-1]:.2f} s, "
                          f"out {s['out_s'][-1]:.2f} s", file=sys.stderr)
        finally:
            for vm in vms:
                vm.close()
    text = report(a, cols, load_before, open("/proc/loadavg").read().split()[0])
    print(text)
    if a.output:
        Path(a.output).write_text(text)


if __name__ == "__main__":
    main()

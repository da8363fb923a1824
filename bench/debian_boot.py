#!/usr/bin/python3
"""Boot rows of the Debian image (docs/images.md), skiff beside QEMU:

    bench/debian_boot.py [--image debian] [--runs 3] [--cpus 1] [--mem 1024]
                         [--build build] [--output FILE.md]

Both systems boot the same image the same way: its kernel, initramfs and
command line, a fresh qcow2 overlay of its disk per boot (so every boot is
the same first boot), a virtio-net NIC on user networking and a virtio-rng
device, 1 hart and 1 GiB by default; QEMU is qemu-system-riscv64 -M virt
with OpenSBI (TCG). Runs alternate skiff and QEMU.

Rows (medians; ratio = skiff / QEMU, lower is better):
  - launch -> the console's `login:` prompt
  - launch -> `systemctl is-system-running --wait` answers (root logs in on
    the console right at the prompt and asks)
  - host CPU time of the VMM process up to that answer (user + system, all
    threads)

The state systemd reaches is recorded too: a row whose boots did not reach
"running" says so.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pexpect

REPO = Path(__file__).resolve().parent.parent
SHELL = r"root@[A-Za-z0-9.-]+:[^\r\n]*# "


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def boot(argv, env, log_path, timeout):
    """(seconds to login prompt, seconds to is-system-running, CPU seconds, state)."""
    t0 = time.monotonic()
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        p = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", codec_errors="replace",
                          timeout=timeout, dimensions=(50, 200))
        p.logfile_read = log
        try:
            p.expect(r"login: ")
            t_login = time.monotonic() - t0
            p.sendline("root")
            p.expect(SHELL, timeout=120)
            p.sendline("systemctl is-system-running --wait; echo =END=")
            # The state's line follows the echoed command and, from bash,
            # the end of bracketed paste (ESC [?2004l), with no newline; QEMU's
            # stdio keeps the host terminal's output processing, so its
            # lines end \r\r\n.
            p.expect(r"(\w+)\r*\n=END=")
            t_running = time.monotonic() - t0
            cpu = cpu_seconds(p.pid)
            state = p.match.group(1)
            p.expect(SHELL, timeout=60)
            p.sendline("systemctl poweroff")
            p.expect(pexpect.EOF, timeout=300)
        finally:
            p.close(force=True)
    return t_login, t_running, cpu, state


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default="debian")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--mem", type=int, default=1024, help="MiB")
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--output", default=None)
    a = ap.parse_args()
    skiff = str(Path(a.build) / "src" / "cli" / "skiff")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    img = cache / "skiff" / "images" / a.image
    meta = json.loads((img / "image.json").read_text())
    work = Path(tempfile.mkdtemp(prefix="debian-boot-"))
    env = dict(os.environ)
    results = {"skiff": [], "qemu": []}
    load0 = os.getloadavg()[0]
    for run in range(a.runs):
        for system in ("skiff", "qemu"):
            if system == "skiff":
                argv = [skiff, "run", "--image", a.image, "--ephemeral", "--cpus", str(a.cpus),
                        "--mem", f"{a.mem}M"]
                overlay = None
            else:
                overlay = work / "qemu-overlay.qcow2"
                overlay.unlink(missing_ok=True)
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                                str(img / meta["disk"]), str(overlay)], check=True)
                argv = ["qemu-system-riscv64", "-M", "virt", "-bios", "default", "-nographic",
                        "-kernel", str(img / meta["kernel"]), "-initrd", str(img / meta["initrd"]),
                        "-append", meta["cmdline"], "-smp", str(a.cpus), "-m", f"{a.mem}M",
                        "-drive", f"file={overlay},format=qcow2,if=none,id=d0",
                        "-device", "virtio-blk-device,drive=d0",
                        "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0",
                        "-device", "virtio-rng-device"]
            r = boot(argv, env, work / f"{system}-{run}.log", a.timeout)
            results[system].append(r)
            print(f"{system} run {run + 1}: login {r[0]:.1f} s, is-system-running {r[1]:.1f} s "
                  f"({r[3]}), VMM CPU {r[2]:.1f} s", flush=True)
            if overlay:
                overlay.unlink(missing_ok=True)
    load1 = os.getloadavg()[0]

    def med(system, i):
        return statistics.median(r[i] for r in results[system])
    rows = [("launch → `login:` prompt", 0), ("launch → `systemctl is-system-running` answers", 1),
            ("host CPU time of the VMM to that answer", 2)]
    states = {s: sorted({r[3] for r in results[s]}) for s in results}
    lines = [f"| Debian image boot ({a.cpus} hart{'s' if a.cpus > 1 else ''}, {a.mem} MiB) | skiff | QEMU | ratio |",
             "|---|--:|--:|--:|"]
    for label, i in rows:
        s, q = med("skiff", i), med("qemu", i)
        lines.append(f"| {label} | {s:.1f} s | {q:.1f} s | {s / q:.2f}× |")
    lines.append("")
    lines.append(f"Medians of {a.runs} runs, alternating; systemd's state: skiff {states['skiff']}, "
                 f"QEMU {states['qemu']}; host load average {load0:.1f} at the start, {load1:.1f} at the end. "
                 f"Every value: " + "; ".join(
                     f"{s}: " + ", ".join(f"{r[0]:.1f}/{r[1]:.1f}/{r[2]:.1f}" for r in results[s])
                     for s in results) + " (login / running / CPU s).")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.output:
        Path(a.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Boot the default guest again and again: the reliability check of the boot
issue ("20 boots in a row on 1, 2, 4 and 8 harts"). Too long for the test
command, so it has its own:

    tests/stress/boot_loop.py [--cpus 1,2,4,8] [--count 20] [--build build]
                              [--peer]

--peer boots qemu-system-riscv64 (-M virt, TCG, OpenSBI) instead, with the
same kernel, initramfs, command line and memory, for comparing under the
same host load.

Each boot must reach the shell prompt, see every hart in /proc/cpuinfo, have
no RCU stall, soft/hard lockup, hung task, BUG or WARNING in the kernel log,
and power off with status 0. Prints one line per boot (seconds to the init's
first line and to the prompt) and a summary; exits non-zero on any failure.
The console of a failed boot is kept in --logs.
"""
import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

import pexpect

REPO = Path(__file__).resolve().parent.parent.parent
PROMPT = r"root@skiff:[^\r\n]*# "
KERNEL_TROUBLE = r"rcu_sched self-detected stall|rcu: INFO|soft lockup|hard LOCKUP|" \
                 r"blocked for more than|BUG:|WARNING:|Oops|Kernel panic"


def guest_dir():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "skiff" / "default"


def command(skiff, peer, cpus):
    if not peer:
        return skiff, ["run", "--cpus", str(cpus), "--mem", "512M"]
    g = guest_dir()
    return "qemu-system-riscv64", ["-M", "virt", "-bios", "default", "-nographic", "-nic", "none",
                                   "-kernel", str(g / "Image"), "-initrd", str(g / "initrd.cpio.gz"),
                                   "-append", "console=ttyS0 earlycon=sbi quiet",
                                   "-smp", str(cpus), "-m", "512M"]


def one_boot(cmd, cpus, log_path, timeout):
    t0 = time.monotonic()
    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        p = pexpect.spawn(cmd[0], cmd[1], encoding="utf-8",
                          codec_errors="replace", timeout=timeout, dimensions=(50, 200))
        p.logfile_read = log
        try:
            p.expect("skiff-guest: init started")
            t_init = time.monotonic() - t0
            p.expect("skiff-guest: ready")
            p.expect(PROMPT)
            t_prompt = time.monotonic() - t0
            p.sendline("echo harts=$(grep -c ^processor /proc/cpuinfo) "
                       "trouble=$(dmesg | grep -cE '%s')" % KERNEL_TROUBLE)
            p.expect(r"harts=(\d+) trouble=(\d+)")
            harts, trouble = int(p.match.group(1)), int(p.match.group(2))
            p.expect(PROMPT)
            if harts != cpus:
                return f"/proc/cpuinfo lists {harts} harts, not {cpus}", t_init, t_prompt
            if trouble:
                # With the kernel's own report (stack, registers) in the log.
                p.sendline("dmesg | grep -A 40 -E '%s'" % KERNEL_TROUBLE)
                p.expect(PROMPT)
                return f"kernel log reports trouble ({trouble} lines)", t_init, t_prompt
            p.sendline("poweroff")
            p.expect(pexpect.EOF, timeout=60)
            p.close()
            if p.exitstatus != 0:
                return f"poweroff ended with status {p.exitstatus} signal {p.signalstatus}", \
                    t_init, t_prompt
            return None, t_init, t_prompt
        except pexpect.TIMEOUT:
            return "timed out", None, None
        except pexpect.EOF:
            return "skiff exited early", None, None
        finally:
            if p.isalive():
                p.terminate(force=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpus", default="1,2,4,8", help="comma-separated hart counts")
    ap.add_argument("--count", type=int, default=20, help="boots per hart count")
    ap.add_argument("--build", default=os.environ.get("SKIFF_BUILD", "build"))
    ap.add_argument("--timeout", type=float, default=300, help="seconds per step")
    ap.add_argument("--logs", default="boot-loop-logs", help="where failed consoles go")
    ap.add_argument("--peer", action="store_true", help="boot qemu-system-riscv64 instead")
    a = ap.parse_args()
    skiff = str((REPO / a.build / "src" / "cli" / "skiff").resolve())
    logs = Path(a.logs)
    logs.mkdir(parents=True, exist_ok=True)
    failed = 0
    passed = 0
    for cpus in [int(c) for c in a.cpus.split(",")]:
        inits, prompts = [], []
        for i in range(1, a.count + 1):
            log = logs / f"{'qemu' if a.peer else 'skiff'}-{cpus}harts-{i}.log"
            why, t_init, t_prompt = one_boot(command(skiff, a.peer, cpus), cpus, log, a.timeout)
            if why:
                failed += 1
                print(f"{cpus} harts boot {i}: FAILED: {why} (console: {log})", flush=True)
                continue
            passed += 1
            log.unlink()
            inits.append(t_init)
            prompts.append(t_prompt)
            print(f"{cpus} harts boot {i}: ok, init {t_init:.2f} s, prompt {t_prompt:.2f} s",
                  flush=True)
        if inits:
            print(f"{cpus} harts: {len(inits)}/{a.count} ok, median init "
                  f"{statistics.median(inits):.2f} s, prompt {statistics.median(prompts):.2f} s",
                  flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Build the full Debian image and check it the way a person would use it:
the checks of the Debian image issue, too long for the test command, so
they have their own:

    tests/stress/debian_image.py [--build build] [--name debian-check]
                                 [--reuse] [--logs DIR] [--timeout S]

1. `skiff image create debian --name NAME --ssh-key KEY --force` (unless
   --reuse and the image exists), timed;
2. `skiff run --image NAME --ssh-port P --port org.qemu.guest_agent.0,...`:
   the login prompt on the console, root logs in without a password;
3. `systemctl is-system-running --wait` says "running" and
   multi-user.target is active; on "degraded" every failed unit is listed
   and the check fails unless it is in KNOWN_FAILED with its reason;
4. ssh from the host through the forwarded port runs a command, with the
   key given at creation;
5. qemu-guest-agent answers guest-ping and guest-info over its
   virtio-console port (Debian's agent, the one issue 15's host side talks to);
6. `apt-get update` and `apt-get install hello` through user networking,
   and hello runs;
7. after `reboot` (same skiff run; skiff builds the machine anew) the login
   prompt comes back, a file written before is there, and the system is
   "running" again (no failed unit: serial-getty@ttyS0 is one when
   /dev/ttyS0 comes later than systemd's device timeout);
8. `poweroff` ends skiff with status 0, and the disk checks clean: qemu-img
   check on the qcow2, e2fsck -fn on its file system.

Prints one line per check with its time; exits non-zero on any failure.
The consoles are kept in --logs.
"""
import argparse
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pexpect

REPO = Path(__file__).resolve().parent.parent.parent

# Units allowed to fail, each with why (none so far).
KNOWN_FAILED = {}

LOGIN = r"login: "
NO_GETTY = r"Timed out waiting for device \S*dev-ttyS0\.device"
SHELL = r"root@[A-Za-z0-9.-]+:[^\r\n]*# "


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Check:
    def __init__(self):
        self.t0 = time.monotonic()
        self.failed = []

    def ok(self, what, detail=""):
        print(f"[{time.monotonic() - self.t0:7.1f} s] ok    {what}{': ' + detail if detail else ''}",
              flush=True)

    def fail(self, what, detail=""):
        print(f"[{time.monotonic() - self.t0:7.1f} s] FAIL  {what}{': ' + detail if detail else ''}",
              flush=True)
        self.failed.append(what)


class NoLogin(Exception):
    pass


class Console:
    """The guest's serial console in a `skiff run`, logged in as root."""

    def __init__(self, argv, env, log_path, timeout):
        self.log = open(log_path, "w", encoding="utf-8", errors="replace")
        self.timeout = timeout
        self.p = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8",
                               codec_errors="replace", timeout=timeout, dimensions=(50, 200))
        self.p.logfile_read = self.log
        self.n = 0

    def login(self):
        # systemd says so on the console when the serial port's getty
        # gave up waiting for its device: no prompt will come.
        if self.p.expect([LOGIN, NO_GETTY], timeout=self.timeout) == 1:
            raise NoLogin("systemd timed out waiting for /dev/ttyS0: no login prompt")
        self.p.sendline("root")
        self.p.expect(SHELL, timeout=120)
        # No colours, no pager, no line editing surprises.
        self.run("export SYSTEMD_PAGER= SYSTEMD_COLORS=0 TERM=dumb; stty -echo")

    def run(self, cmd, timeout=600):
        """(status, output) of a shell command."""
        self.n += 1
        mark = f"__done{self.n}__"
        self.p.sendline(f"{cmd}; echo {mark}$?")
        self.p.expect(re.escape(mark) + r"(\d+)", timeout=timeout)
        out = self.p.before
        status = int(self.p.match.group(1))
        self.p.expect(SHELL, timeout=60)
        # Drop the echoed command line, if the terminal echoed it.
        lines = out.replace("\r", "").split("\n")
        if lines and cmd[:20] in lines[0]:
            lines = lines[1:]
        return status, "\n".join(lines).strip()

    def close(self):
        self.p.close()
        self.log.close()


def agent_call(path, command, timeout=60):
    """One QGA command over the port's Unix socket, after a guest-sync."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    buf = b""
    token = secrets.randbelow(1 << 30)
    s.sendall(b"\xff" + json.dumps({"execute": "guest-sync-delimited",
                                    "arguments": {"id": token}}).encode() + b"\n")
    deadline = time.monotonic() + timeout
    # The answer to the sync: 0xff, then {"return": token} and a newline.
    while not (str(token).encode() in buf and buf.endswith(b"\n")) and time.monotonic() < deadline:
        buf += s.recv(4096)
    s.sendall(json.dumps({"execute": command}).encode() + b"\n")
    buf = b""

    def complete_lines():
        return [l.strip() for l in buf.split(b"\n")[:-1] if l.strip()]
    while not complete_lines() and time.monotonic() < deadline:
        buf += s.recv(65536)
    s.close()
    return json.loads(complete_lines()[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--name", default="debian-check")
    ap.add_argument("--reuse", action="store_true", help="use the image NAME if it exists")
    ap.add_argument("--logs", default=None)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds a boot may take")
    a = ap.parse_args()
    skiff = str(Path(a.build) / "src" / "cli" / "skiff")
    logs = Path(a.logs or tempfile.mkdtemp(prefix="debian-check-"))
    logs.mkdir(parents=True, exist_ok=True)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    img = cache / "skiff" / "images" / a.name
    env = dict(os.environ, SKIFF_GUEST_DIR=str(REPO / "guest"))
    c = Check()
    print(f"logs: {logs}", flush=True)

    key = logs / "id_ed25519"
    if a.reuse and (img / "image.json").is_file() and (img.parent / f"{a.name}.key").is_file():
        key = img.parent / f"{a.name}.key"
        c.ok("reusing the image", str(img))
    else:
        key.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        t = time.monotonic()
        with open(logs / "create.log", "w") as f:
            r = subprocess.run([skiff, "image", "create", "debian", "--name", a.name, "--ssh-key",
                                f"{key}.pub", "--force"], stdout=f, stderr=subprocess.STDOUT, env=env)
        if r.returncode != 0:
            c.fail("image create", f"status {r.returncode}; see {logs / 'create.log'}")
            return 1
        c.ok("image create", f"{time.monotonic() - t:.0f} s")
        # Keep the key beside the image for --reuse.
        for suffix in ("", ".pub"):
            (img.parent / f"{a.name}.key{suffix}").write_bytes(Path(f"{key}{suffix}").read_bytes())
            os.chmod(img.parent / f"{a.name}.key{suffix}", 0o600)
    meta = json.loads((img / "image.json").read_text())

    port = free_port()
    qga = logs / "qga.sock"
    argv = [skiff, "run", "--image", a.name, "--ssh-port", str(port),
            "--port", f"org.qemu.guest_agent.0,uds={qga}"]
    t_launch = time.monotonic()
    con = Console(argv, env, logs / "console.log", a.timeout)
    try:
        con.login()
        c.ok("login prompt and console login", f"{time.monotonic() - t_launch:.0f} s after launch")
        st, out = con.run("systemctl is-system-running --wait", timeout=a.timeout)
        state = out.strip().splitlines()[-1] if out.strip() else ""
        if state == "running":
            c.ok("systemctl is-system-running", f"running, {time.monotonic() - t_launch:.0f} s after launch")
        else:
            _, failed = con.run("systemctl --failed --plain --no-legend")
            units = [l.split()[0] for l in failed.splitlines() if l.strip()]
            unknown = [u for u in units if u not in KNOWN_FAILED]
            for u in units:
                _, st_out = con.run(f"systemctl status --no-pager -n 20 {u}")
                (logs / f"unit-{u}.txt").write_text(st_out)
            if unknown or state != "degraded":
                c.fail("systemctl is-system-running", f"{state!r}; failed units: {units}")
            else:
                c.ok("systemctl is-system-running",
                     "degraded by known units: " + "; ".join(f"{u} ({KNOWN_FAILED[u]})" for u in units))
        st, out = con.run("systemctl is-active multi-user.target")
        (c.ok if out.endswith("active") and st == 0 else c.fail)("multi-user.target active", out)

        ssh = ["ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
               "-o", "ConnectTimeout=60", "root@127.0.0.1"]
        r = subprocess.run(ssh + ["uname -m; cat /etc/debian_version; hostname"],
                           capture_output=True, text=True, timeout=600)
        if r.returncode == 0 and r.stdout.split()[:1] == ["riscv64"]:
            c.ok("ssh through the forwarded port", " ".join(r.stdout.split()))
        else:
            c.fail("ssh through the forwarded port", f"status {r.returncode}: {r.stdout} {r.stderr}")

        try:
            ping = agent_call(str(qga), "guest-ping")
            info = agent_call(str(qga), "guest-info")
            ok = ping == {"return": {}} and "version" in info.get("return", {})
            (c.ok if ok else c.fail)("qemu-guest-agent guest-ping/guest-info",
                                     f"version {info.get('return', {}).get('version')}")
        except (OSError, ValueError) as e:
            c.fail("qemu-guest-agent guest-ping/guest-info", repr(e))

        st, out = con.run("apt-get update -q && apt-get install -y -q hello && hello", timeout=3600)
        if st == 0 and "Hello, world!" in out:
            c.ok("apt-get update; apt-get install hello")
        else:
            c.fail("apt-get update; apt-get install hello", out[-800:])

        token = secrets.token_hex(8)
        con.run(f"echo {token} > /root/survives-reboot; sync")
        con.p.sendline("reboot")
        t_reboot = time.monotonic()
        con.login()
        c.ok("login prompt after the reboot", f"{time.monotonic() - t_reboot:.0f} s after reboot")
        st, out = con.run("cat /root/survives-reboot")
        (c.ok if out.strip() == token else c.fail)("a file survives a reboot", out.strip())
        st, out = con.run("systemctl is-system-running --wait; systemctl --failed --plain --no-legend",
                          timeout=a.timeout)
        (c.ok if out.splitlines()[:1] == ["running"] else c.fail)(
            "systemctl is-system-running after the reboot", " ".join(out.split()))

        con.p.sendline("poweroff")
        con.p.expect(pexpect.EOF, timeout=600)
        con.p.close()
        (c.ok if con.p.exitstatus == 0 else c.fail)("poweroff ends skiff with status 0",
                                                   str(con.p.exitstatus))
    except (pexpect.TIMEOUT, pexpect.EOF, NoLogin) as e:
        c.fail("console", f"{type(e).__name__} {e}; see {logs / 'console.log'}")
    finally:
        con.close()

    disk = img / meta["disk"]
    r = subprocess.run(["qemu-img", "check", str(disk)], capture_output=True, text=True)
    (c.ok if r.returncode == 0 else c.fail)("qemu-img check", r.stdout.strip().splitlines()[0] if r.stdout else r.stderr)
    raw = logs / "disk.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(disk), str(raw)], check=True)
    r = subprocess.run(["e2fsck", "-f", "-n", str(raw)], capture_output=True, text=True)
    raw.unlink()
    (c.ok if r.returncode == 0 else c.fail)("e2fsck -fn after poweroff", r.stdout.strip().splitlines()[-1])

    print(f"{'FAILED: ' + ', '.join(c.failed) if c.failed else 'all checks passed'} "
          f"({time.monotonic() - c.t0:.0f} s)")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""skiff's agent commands against Debian's own qemu-guest-agent (issue 15:
"the same host side works with Debian's qemu-guest-agent"), too long for the
test command (a systemd boot of the Debian image), so it has its own:

    tests/stress/debian_agent.py [--build build] [--image debian] [--mem 1024]
                                 [--logs DIR] [--timeout S]

Starts a skiffd of its own and in it a VM made from an image of
`skiff image create debian` (`skiff create --image NAME --start`; the VMM
owns the org.qemu.guest_agent.0 port, systemd starts qemu-guest-agent when
it appears), waits until GET /vms/ID/agent says the agent answers, then:

1. `skiff exec`: exit status, standard output and error, standard input,
   a program that does not exist (126);
2. `skiff cp` of 4 MiB random bytes in and back out, byte-exact (checked by
   the guest's sha256sum: Debian's agent has no guest-file-hash), and a
   guest path that does not exist;
3. the clock: an hour back through PUT /agent/time, a pause and resume, and
   the VMM sets it again (GET /agent's clock_sync; Debian's agent fails at
   its hwclock step, which skiff reads back and counts as set);
4. `skiff clipboard` says the agent lacks the command;
5. `skiff shutdown` powers the guest off through the agent (no Ctrl-Alt-Del
   said) and the VM ends by itself with status 0.

Prints one line per check; exits non-zero on any failure.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def api(sock, method, path, body=None):
    cmd = ["curl", "-sS", "--unix-socket", str(sock), "-X", method, "-w", "\n%{http_code}",
           f"http://localhost{path}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    text, _, code = out.rpartition("\n")
    return int(code or 0), (json.loads(text) if text.strip() else None)


def wait_for(fn, timeout, step=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--image", default="debian")
    ap.add_argument("--mem", type=int, default=1024, help="guest MiB (default 1024)")
    ap.add_argument("--logs", help="keep the VM's console log and skiffd's log here")
    ap.add_argument("--timeout", type=float, default=1200, help="seconds for the boot (default 1200)")
    a = ap.parse_args()
    skiff = str(Path(a.build) / "src" / "cli" / "skiff")
    t0 = time.monotonic()
    failed = []

    def check(what, good, detail=""):
        print(f"[{time.monotonic() - t0:7.1f} s] {'ok  ' if good else 'FAIL'}  {what}"
              f"{': ' + str(detail) if detail and not good else ''}", flush=True)
        if not good:
            failed.append(what)
        return good

    def sk(*args, input=None, timeout=600, env=None):
        return subprocess.run([skiff, *map(str, args)], input=input, capture_output=True, timeout=timeout,
                              env=env)

    with tempfile.TemporaryDirectory(prefix="skiff-dagent-") as tmp:
        tmp = Path(tmp)
        logs = Path(a.logs) if a.logs else tmp
        logs.mkdir(parents=True, exist_ok=True)
        sd_sock, state = tmp / "sd.sock", tmp / "state"
        sd_log = open(logs / "debian-agent-skiffd.log", "w")
        d = subprocess.Popen([str(Path(a.build) / "src" / "daemon" / "skiffd"), "--socket", sd_sock,
                              "--state-dir", state, "--vmm", skiff], stdout=sd_log, stderr=subprocess.STDOUT)
        env = dict(os.environ, SKIFF_SOCKET=str(sd_sock))
        vm, pre = "dag", "/vms/dag"
        try:
            wait_for(sd_sock.exists, 30, 0.1)
            r = sk("create", "--image", a.image, "--id", vm, "--mem", a.mem, "--start", env=env)
            if not check("skiff create --image --start", r.returncode == 0, r):
                return 1

            def answering():
                code, info = api(sd_sock, "GET", f"{pre}/agent")
                return code == 200 and info.get("answering") and info
            info = wait_for(answering, a.timeout, 2)
            if not check("qemu-guest-agent answers GET /agent", bool(info), "no answer"):
                return 1
            check("it is Debian's agent (no skiff extensions)",
                  not info.get("exec_stream") and not info.get("file_hash"), info)

            r = sk("exec", vm, "--", "sh", "-c", "echo out; echo err >&2; exit 7", env=env)
            check("exec: status, stdout, stderr", (r.returncode, r.stdout, r.stderr) == (7, b"out\n", b"err\n"), r)
            r = sk("exec", vm, "--", "tr", "a-z", "A-Z", input=b"hello agent\n", env=env)
            check("exec: standard input", (r.returncode, r.stdout) == (0, b"HELLO AGENT\n"), r)
            r = sk("exec", vm, "--", "/no/such/program", env=env)
            check("exec: a program that does not exist", r.returncode == 126, r)

            data = os.urandom(4 << 20)
            (tmp / "src.bin").write_bytes(data)
            r = sk("cp", tmp / "src.bin", f"{vm}:/root/copied.bin", env=env)
            check("cp into the guest", r.returncode == 0, r.stderr)
            r = sk("exec", vm, "--", "sha256sum", "/root/copied.bin", env=env)
            check("  the guest's sha256sum of it",
                  r.stdout.split()[:1] == [hashlib.sha256(data).hexdigest().encode()], r)
            r = sk("cp", f"{vm}:/root/copied.bin", tmp / "back.bin", env=env)
            check("cp out of the guest, byte-exact",
                  r.returncode == 0 and (tmp / "back.bin").read_bytes() == data, r.stderr)
            r = sk("cp", f"{vm}:/no/such/file", tmp / "x", env=env)
            check("cp of a guest path that does not exist", r.returncode == 1 and not (tmp / "x").exists(), r)

            code, _ = api(sd_sock, "PUT", f"{pre}/agent/time", {"time_ns": (int(time.time()) - 3600) * 10**9})
            check("PUT /agent/time an hour back", code == 204, code)
            check("pause and resume", sk("pause", vm, env=env).returncode == 0 and
                  sk("resume", vm, env=env).returncode == 0)

            def synced():
                code, info = api(sd_sock, "GET", f"{pre}/agent")
                cs = info.get("clock_sync", {}) if code == 200 else {}
                return cs.get("last") == "resumed" and not cs.get("pending") and cs
            cs = wait_for(synced, 120)
            code, t = api(sd_sock, "GET", f"{pre}/agent/time")
            off = abs(t["guest_ns"] - t["host_ns"]) / 1e9 if code == 200 else None
            check("the clock set again after the resume",
                  bool(cs) and cs["ok"] and off is not None and off < 5, (cs, off))

            r = sk("clipboard", vm, "paste", env=env)
            check("clipboard: said to be missing", r.returncode != 0 and b"found" in r.stderr, r)

            r = sk("shutdown", "-t", "120", vm, timeout=400, env=env)
            check("shutdown through the agent", r.returncode == 0 and b"Ctrl-Alt-Del" not in r.stderr, r)
            st = wait_for(lambda: (v := api(sd_sock, "GET", pre)[1]) and v["state"] == "stopped" and v, 300)
            ex = st and st.get("last_exit", {})
            check("the guest powered off by itself, status 0",
                  bool(ex) and not ex.get("stopped") and ex.get("code") == 0, st)
        finally:
            sk("rm", "-f", vm, env=env)
            con = state / "vms" / vm / "console.log"
            if con.exists():
                (logs / "debian-agent-console.log").write_bytes(con.read_bytes())
            d.terminate()
            d.wait(60)
            sd_log.close()
    print("FAILED: " + ", ".join(failed) if failed else "all checks passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""One guest boot with each sanitizer build: the default guest, with two
harts and one device of every kind (disk, NIC, 9p share, vsock, named
console port, balloon), reaches its shell, uses the disk and the share, and
powers off, and the sanitizers report nothing on the way.

- ASan + UBSan (SKIFF_ASAN_BUILD; leaks detected, a UBSan report ends the
  process): meanwhile the guest has its clock set through its agent after
  a host suspend (one made up through the test build's
  SKIFF_TEST_HOST_SLEPT: the VMM's boot clock reads an hour later).
- ThreadSanitizer (SKIFF_TSAN_BUILD): meanwhile the API thread works
  beside the harts and the devices' threads (the configuration read back,
  a pause and a resume, balloon statistics and a new balloon target). The
  JIT runs as it does by default: its translated code, like the engine's
  accesses to guest RAM (src/engine/guest_access.h), is not instrumented;
  the executor, the JIT's C helpers, the monitor, the devices and the VMM
  are. This boot runs with --seccomp=off: TSan's runtime starts a thread of
  its own that no sandbox class names and makes system calls the tables do
  not list; the ASan boot runs with the sandbox on."""
import json
import os
import shutil
import subprocess
import tempfile
import time

import pexpect
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _guest():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    d = os.path.join(cache, "skiff", "default")
    return os.path.join(d, "Image"), os.path.join(d, "initrd.cpio.gz")


def api(sock, method, path, body=None):
    cmd = ["curl", "-sS", "--unix-socket", sock, "-X", method, "-w", "\n%{http_code}", f"http://localhost{path}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    text, _, code = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.rpartition("\n")
    return int(code or 0), (json.loads(text) if text.strip() else None)


def wait_until(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.5)
    return pred()


def clock_after_host_suspend(sock, slept_file):
    """The guest's clock an hour behind, then the host "sleeps" an hour: the
    VMM notices and sets the guest's clock through the agent."""
    assert wait_until(lambda: (api(sock, "GET", "/agent")[1] or {}).get("answering"), 300), api(sock, "GET", "/agent")
    code, _ = api(sock, "PUT", "/agent/time", {"time_ns": (int(time.time()) - 3600) * 10**9})
    assert code == 204
    code, t = api(sock, "GET", "/agent/time")
    assert code == 200 and t["host_ns"] - t["guest_ns"] > 3000 * 10**9, t
    with open(slept_file, "w") as f:
        f.write("3600\n")

    def synced():
        cs = (api(sock, "GET", "/agent")[1] or {}).get("clock_sync", {})
        return cs.get("last") == "host suspend" and not cs.get("pending") and cs
    cs = wait_until(synced, 120)
    assert cs and cs["ok"], api(sock, "GET", "/agent")
    code, t = api(sock, "GET", "/agent/time")
    assert code == 200 and abs(t["guest_ns"] - t["host_ns"]) < 5 * 10**9, t


def _boot(var, default, env_for, extra=(), during=None):
    """Boot the sanitizer build named by $var, run `during(api socket,
    log directory)` at the shell, power off; the sanitizers' reports."""
    build = os.path.join(ROOT, os.environ.get(var, default))
    skiff = os.path.join(build, "src", "cli", "skiff")
    kernel, initrd = _guest()
    if not os.path.exists(skiff):
        pytest.fail(f"no sanitizer build at {build} (run-tests.sh makes it)")
    if not os.path.exists(kernel):
        if os.environ.get("SKIFF_REQUIRE_GUEST"):
            pytest.fail("the default guest is not built (guest/build-image.sh)")
        pytest.skip("the default guest is not built")
    logdir = tempfile.mkdtemp(prefix="skiff-san-")
    env = dict(os.environ, **env_for(logdir))
    disk = os.path.join(logdir, "disk.img")
    with open(disk, "wb") as f:
        f.write(b"skiff-san-disk\n".ljust(4096, b"\0"))
        f.truncate(4 << 20)
    share = os.path.join(logdir, "share")
    os.mkdir(share)
    with open(os.path.join(share, "hello"), "w") as f:
        f.write("from-the-host\n")
    devices = ["--disk", f"{disk},serial=san", "--net", "user", "--share", f"{share},tag=san",
               "--vsock", f"cid=3,uds={logdir}/v.sock", "--port", f"org.skiff.san,uds={logdir}/p.sock",
               "--balloon=deflate_on_oom,stats=1"]
    sock = f"{logdir}/api.sock"
    with open(f"{logdir}/slept", "w") as f:
        f.write("0\n")      # opened by the VMM at its start (ASan's made-up suspend)
    child = pexpect.spawn(skiff, ["run", "--cpus", "2", "--mem", "256M", "--kernel", kernel, "--initrd", initrd,
                                  "--append", "console=ttyS0 earlycon=sbi quiet", "--api-sock", sock]
                          + devices + list(extra),
                          env=env, encoding="utf-8", codec_errors="replace", timeout=900)
    try:
        child.expect("skiff-guest: ready")
        child.expect(r"# ")
        child.sendline("echo sum=$((40+2)); head -c 16 /dev/vda; cat /mnt/san/hello")
        child.expect("sum=42")
        child.expect("skiff-san-disk")
        child.expect("from-the-host")
        if during:
            during(sock, logdir)
            child.sendline("echo again=$((40+3))")
            child.expect("again=43")
        child.sendline("poweroff")
        child.expect(pexpect.EOF, timeout=300)
    finally:
        child.close(force=True)
    reports = []
    for name in sorted(os.listdir(logdir)):
        if name.startswith(("asan", "ubsan", "tsan")):
            with open(os.path.join(logdir, name), errors="replace") as f:
                reports.append(f.read())
    shutil.rmtree(logdir, ignore_errors=True)
    assert child.exitstatus == 0 or reports, f"exit status {child.exitstatus}"
    return reports


def test_asan_boot_and_poweroff():
    reports = _boot("SKIFF_ASAN_BUILD", "build-asan",
                    lambda d: dict(ASAN_OPTIONS=f"log_path={d}/asan:detect_leaks=1",
                                   UBSAN_OPTIONS=f"log_path={d}/ubsan:print_stacktrace=1:halt_on_error=1",
                                   SKIFF_TEST_HOST_SLEPT=f"{d}/slept"),
                    during=lambda sock, d: clock_after_host_suspend(sock, f"{d}/slept"))
    assert not reports, "sanitizer reports:\n" + "\n".join(reports)[:8000]


def _use_the_api(sock, logdir):
    """The API thread at work beside the harts and the devices."""
    code, cfg = api(sock, "GET", "/vm/config")
    assert code == 200 and cfg["machine-config"]["vcpu_count"] == 2, cfg
    assert api(sock, "PATCH", "/vm", {"state": "Paused"})[0] == 204
    assert api(sock, "PATCH", "/vm", {"state": "Resumed"})[0] == 204
    code, stats = api(sock, "GET", "/balloon/statistics")
    assert code == 200, stats
    assert api(sock, "PATCH", "/balloon", {"amount_mib": 16})[0] == 204


def test_tsan_smp_boot_and_poweroff():
    reports = _boot("SKIFF_TSAN_BUILD", "build-tsan",
                    lambda d: dict(TSAN_OPTIONS=f"log_path={d}/tsan:second_deadlock_stack=1"),
                    extra=["--seccomp=off"], during=_use_the_api)
    assert not reports, "ThreadSanitizer reports:\n" + "\n".join(reports)[:12000]

"""One guest boot with the sanitizer build (ASan + UBSan, leaks detected,
a UBSan report ends the process): the default guest, with one device of
every kind (disk, NIC, 9p share, vsock, named console port, balloon),
reaches its shell, uses the disk and the share, has its clock set through
its agent after a host suspend (one made up through the test build's
SKIFF_TEST_HOST_SLEPT: the VMM's boot clock reads an hour later), and
powers off, and the sanitizers report nothing on the way."""
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


def test_asan_boot_and_poweroff():
    build = os.path.join(ROOT, os.environ.get("SKIFF_ASAN_BUILD", "build-asan"))
    skiff = os.path.join(build, "src", "cli", "skiff")
    kernel, initrd = _guest()
    if not os.path.exists(skiff):
        pytest.fail(f"no sanitizer build at {build} (run-tests.sh makes it)")
    if not os.path.exists(kernel):
        if os.environ.get("SKIFF_REQUIRE_GUEST"):
            pytest.fail("the default guest is not built (guest/build-image.sh)")
        pytest.skip("the default guest is not built")
    logdir = tempfile.mkdtemp(prefix="skiff-asan-")
    env = dict(os.environ,
               ASAN_OPTIONS=f"log_path={logdir}/asan:detect_leaks=1",
               UBSAN_OPTIONS=f"log_path={logdir}/ubsan:print_stacktrace=1:halt_on_error=1",
               SKIFF_TEST_HOST_SLEPT=f"{logdir}/slept")
    disk = os.path.join(logdir, "disk.img")
    with open(disk, "wb") as f:
        f.write(b"skiff-asan-disk\n".ljust(4096, b"\0"))
        f.truncate(4 << 20)
    share = os.path.join(logdir, "share")
    os.mkdir(share)
    with open(os.path.join(share, "hello"), "w") as f:
        f.write("from-the-host\n")
    devices = ["--disk", f"{disk},serial=asan", "--net", "user", "--share", f"{share},tag=asan",
               "--vsock", f"cid=3,uds={logdir}/v.sock", "--port", f"org.skiff.asan,uds={logdir}/p.sock",
               "--balloon=deflate_on_oom,stats=1"]
    sock = f"{logdir}/api.sock"
    with open(f"{logdir}/slept", "w") as f:
        f.write("0\n")      # opened by the VMM at its start
    child = pexpect.spawn(skiff, ["run", "--cpus", "2", "--mem", "256M", "--kernel", kernel, "--initrd", initrd,
                                  "--append", "console=ttyS0 earlycon=sbi quiet", "--api-sock", sock] + devices,
                          env=env,
                          encoding="utf-8", codec_errors="replace", timeout=600)
    try:
        child.expect("skiff-guest: ready")
        child.expect(r"# ")
        child.sendline("echo sum=$((40+2)); head -c 16 /dev/vda; cat /mnt/asan/hello")
        child.expect("sum=42")
        child.expect("skiff-asan-disk")
        child.expect("from-the-host")
        clock_after_host_suspend(sock, f"{logdir}/slept")
        child.sendline("poweroff")
        child.expect(pexpect.EOF, timeout=180)
    finally:
        child.close(force=True)
    reports = []
    for name in os.listdir(logdir):
        if name.startswith(("asan", "ubsan")):
            with open(os.path.join(logdir, name), errors="replace") as f:
                reports.append(f.read())
    shutil.rmtree(logdir, ignore_errors=True)
    assert not reports, "sanitizer reports:\n" + "\n".join(reports)[:8000]
    assert child.exitstatus == 0, f"exit status {child.exitstatus}"

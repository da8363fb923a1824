"""One guest boot with the sanitizer build (ASan + UBSan, leaks detected):
the default guest, with one device of every kind (disk, NIC, 9p share,
vsock, named console port, balloon), reaches its shell, uses the disk and
the share, and powers off, and the sanitizers report nothing on the way."""
import os
import shutil
import subprocess
import tempfile

import pexpect
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _guest():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    d = os.path.join(cache, "skiff", "default")
    return os.path.join(d, "Image"), os.path.join(d, "initrd.cpio.gz")


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
               UBSAN_OPTIONS=f"log_path={logdir}/ubsan:print_stacktrace=1")
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
    child = pexpect.spawn(skiff, ["run", "--cpus", "2", "--mem", "256M"] + devices, env=env,
                          encoding="utf-8", codec_errors="replace", timeout=600)
    try:
        child.expect("skiff-guest: ready")
        child.expect(r"# ")
        child.sendline("echo sum=$((40+2)); head -c 16 /dev/vda; cat /mnt/asan/hello")
        child.expect("sum=42")
        child.expect("skiff-asan-disk")
        child.expect("from-the-host")
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

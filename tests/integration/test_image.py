"""`skiff image` and `skiff run --image`: the Debian image builder
(guest/debian/create.sh) on a tiny package set, its error paths, and the
commands around images.

The full image (systemd, ssh, apt, ...) takes far too long for the test
command; tests/stress/debian_image.py builds it and runs the checks of a
real system. Here:

- the builder's eight steps on a tiny package set (`--only
  hostname,perl-base,qemu-guest-agent`: what the second stage needs, dpkg,
  coreutils, mount, ..., hostname and Debian's guest agent, 46 packages):
  the first stage on the host, the second stage inside skiff (every
  package configured by the guest's own dpkg), the qcow2, image.json;
  the result boots with `skiff run --image --ephemeral`, its dpkg database
  lists the packages, the overlay goes away and the image is unchanged;
- the errors: a suite that does not exist, an interrupted download (a local
  proxy, no network: the lists are current, every .deb is cut short), no space left (on the host, and for the
  disk size asked), a bad name, an image that exists;
- `skiff image ls`, `rm` (also while the image is in use), `convert`;
- `skiff create --image` in skiffd, and Debian's qemu-guest-agent (in the
  tiny image) answering skiff exec and skiff ls through skiff's host side.

The tiny image is built once and kept, like the default guest, in the
user's cache (skiff/test-images/): it is built again when the builder's
files (guest/debian/, guest/lib/privapt.sh) or the default guest's manifest
(kernel, initramfs, archive) change, so a test run on a clean machine (CI)
runs the whole build and checks its steps, and a second run on the same
machine reuses it (the checks then read the build's own create.log and
stage2.log, kept in the image). The build shares the .deb cache and the
package lists of the user's cache directory, so the error-path tests that
need no network run with --offline on the lists it refreshed.

Cost, measured on the 2-core host at load 2 to 6: from an empty .deb cache
(a clean machine after guest/build-image.sh, which leaves the package lists
and the default guest) the module took 96 s wall, 78 s of CPU: the tiny
build 57 s (46 packages, 19 MiB fetched; its second stage 41 s wall, 33 s
of host CPU), the interrupted download 9 s; with the tiny image kept, 91 s
at load 10 falling to 2.
"""
import fcntl
import hashlib
import http.server
import json
import os
import re
import shutil
import socketserver
import subprocess
import threading
import time
from pathlib import Path

import pexpect
import pytest

from conftest import REPO_ROOT
from test_skiffd import console_say

CREATE_TIMEOUT = float(os.environ.get("SKIFF_IMAGE_TIMEOUT", "3600"))


def user_cache():
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "skiff"


def make_cache(tmp_path):
    """A private XDG_CACHE_HOME whose skiff/debs, skiff/apt (stable's lists)
    and skiff/default (the kernel and initramfs) are the user's, symlinked,
    so what the test command built already is reused."""
    cache = tmp_path / "cache"
    (cache / "skiff").mkdir(parents=True)
    for sub in ("debs", "apt", "default"):
        src = user_cache() / sub
        src.mkdir(parents=True, exist_ok=True)
        (cache / "skiff" / sub).symlink_to(src)
    return cache


def image_cmd(skiff_bin, cache, *args, env_extra=None, timeout=600):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), SKIFF_GUEST_DIR=str(REPO_ROOT / "guest"))
    env.update(env_extra or {})
    return subprocess.run([skiff_bin, "image", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------ the tiny image

TINY_INPUTS = ("guest/debian", "guest/lib/privapt.sh")
# hostname: a package the second stage sets up (step 4); Debian's
# qemu-guest-agent (8 packages, 2.3 MiB): skiff's agent host side
# against it (test_skiffd_create_image); perl-base: its postinst runs
# update-rc.d, a Perl script, and no package names perl-base (Essential).
TINY_ONLY = "hostname,perl-base,qemu-guest-agent"


def tiny_key():
    """What the tiny image depends on: the builder's files and the boot
    files it copies in (the default guest's manifest names the kernel
    package, the initramfs inputs and the archive)."""
    h = hashlib.sha256(TINY_ONLY.encode() + b"\0")
    for top in TINY_INPUTS:
        root = REPO_ROOT / top
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(REPO_ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    manifest = user_cache() / "default" / "manifest"
    h.update(manifest.read_bytes() if manifest.is_file() else b"no default guest")
    return h.hexdigest()


@pytest.fixture(scope="module")
def tiny(skiff_bin):
    """The tiny image: (cache, image dir, the build's output). Built when
    missing or out of date (tiny_key), else the one kept from an earlier
    run; the key is written last, so an interrupted build is redone."""
    cache = user_cache() / "test-images"
    (cache / "skiff").mkdir(parents=True, exist_ok=True)
    for sub in ("debs", "apt", "default"):
        src = user_cache() / sub
        src.mkdir(parents=True, exist_ok=True)
        link = cache / "skiff" / sub
        if not link.is_symlink():
            link.symlink_to(src)
    img = cache / "skiff" / "images" / "tiny"
    key_file = cache / "skiff" / "images" / "tiny.test-key"
    out_file = cache / "skiff" / "images" / "tiny.test-output"
    (cache / "skiff" / "images").mkdir(exist_ok=True)
    with open(cache / "skiff" / "images" / ".test-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)     # another test run may be building it
        key = tiny_key()
        have = key_file.read_text() if key_file.is_file() else ""
        if have != key or not (img / "image.json").is_file():
            key_file.unlink(missing_ok=True)
            t0 = time.monotonic()
            r = image_cmd(skiff_bin, cache, "create", "debian", "--name", "tiny", "--only",
                          TINY_ONLY, "--size", "1G", "--force", timeout=CREATE_TIMEOUT)
            took = time.monotonic() - t0
            out = r.stdout + r.stderr
            assert r.returncode == 0, f"the tiny image build failed ({took:.0f} s):\n{out[-6000:]}"
            print(f"tiny image built in {took:.0f} s")
            out_file.write_text(out)
            key_file.write_text(key)
    return cache, img, out_file.read_text()


def test_tiny_build_steps_and_metadata(tiny):
    cache, img, out = tiny
    steps = re.findall(r"^image create: \[(\d)/8\] ", out, re.M)
    assert steps == [str(i) for i in range(1, 9)], f"steps out of order or missing: {steps}\n{out}"
    # The second stage ran inside skiff: its log has the guest's own dpkg
    # setting packages up, every step of stage2.sh, and its last line.
    stage2 = (img / "stage2.log").read_text(errors="replace")
    assert "skiff-guest: switching root to /dev/vda (/skiff-stage2)" in stage2
    for n in range(1, 7):
        assert f"skiff-stage2: [{n}/6]" in stage2
    assert re.search(r"^skiff-stage2: done in \d+ s", stage2, re.M)
    assert re.search(r"^Setting up dpkg ", stage2, re.M)
    assert re.search(r"^Setting up hostname ", stage2, re.M)     # step 4, the package asked for
    meta = json.loads((img / "image.json").read_text())
    assert meta["format"] == "skiff-image 1"
    assert meta["name"] == "tiny" and meta["suite"] == "stable" and meta["minimal"] is True
    assert meta["codename"] and meta["codename"] != "stable"
    assert meta["disk"] == "disk.qcow2" and meta["disk_format"] == "qcow2"
    assert meta["size"] == 1 << 30
    assert "root=/dev/vda" in meta["cmdline"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["created"])
    names = {p["name"] for p in meta["packages"]}
    assert {"dpkg", "libc6", "base-files", "base-passwd", "dash", "coreutils", "mount",
            "hostname", "qemu-guest-agent"} <= names
    assert "systemd" not in names
    for f in ("disk.qcow2", "Image", "initrd.cpio.gz"):
        assert meta["sha256"][f] == sha256(img / f), f
    # The kernel is the default guest's build for the suite (same package).
    manifest = (cache / "skiff" / "default" / "manifest").read_text()
    assert f"kernel-release {meta['kernel_release']}\n" in manifest
    assert (img / "Image").read_bytes() == (cache / "skiff" / "default" / "Image").read_bytes()
    # qemu-img, an independent reader, finds skiff's qcow2 clean and sized.
    chk = subprocess.run(["qemu-img", "check", str(img / "disk.qcow2")], capture_output=True, text=True)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(img / "disk.qcow2")],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == 1 << 30
    assert info["actual-size"] < 400 << 20, "holes and zero clusters should not be copied"
    # No work directory is left behind.
    assert not list((cache / "skiff" / "images").glob(".create-*"))


def test_tiny_ls(tiny, skiff_bin):
    cache, img, _ = tiny
    r = image_cmd(skiff_bin, cache, "ls")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "SUITE", "RELEASE"]
    row = [l for l in lines[1:] if l.split()[0] == "tiny"]
    assert row, r.stdout
    # The fixture's key and output files beside the images are not images.
    assert (img.parent / "tiny.test-key").is_file()
    assert [l.split()[0] for l in lines[1:]] == sorted(
        d.name for d in img.parent.iterdir() if d.is_dir() and not d.name.startswith(".")), r.stdout
    assert row[0].split()[1] == "stable"
    assert row[0].split()[3] == "1.0G"


def test_tiny_boots_ephemeral(tiny, skiff_bin, console_log_dir):
    """The image boots from its disk (root=/dev/vda through skiff's
    initramfs); the guest's dpkg knows every package; with --ephemeral the
    writes go to an overlay that is removed at exit, and the image's disk
    is unchanged."""
    cache, img, _ = tiny
    before = sha256(img / "disk.qcow2")
    meta = json.loads((img / "image.json").read_text())
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    log = open(console_log_dir / "image-tiny.log", "w")
    p = pexpect.spawn(skiff_bin, ["run", "--image", "tiny", "--ephemeral", "--mem", "256M",
                                  "--append", meta["cmdline"].replace(" quiet", "") + " init=/bin/sh"],
                      env=env, encoding="utf-8", codec_errors="replace", timeout=300,
                      dimensions=(50, 200))
    p.logfile_read = log
    try:
        p.expect(r"switching root to /dev/vda \(/bin/sh\)")
        overlays = list(img.glob("ephemeral-*.qcow2"))
        assert len(overlays) == 1, overlays
        p.expect(r"# $")
        p.sendline("dpkg-query -W -f='${db:Status-Abbrev}${Package}\\n' | grep -c '^ii ';"
                   " echo mark-$(cat /etc/hostname)-$((6*7))")
        p.expect(r"(\d+)\r?\nmark-tiny-42")
        assert int(p.match.group(1)) == len(meta["packages"])
        p.sendline("echo scribble > /scribble; sync; echo o > /proc/sysrq-trigger")
        p.expect(pexpect.EOF, timeout=120)
    finally:
        p.close()
        log.close()
    assert p.exitstatus == 0
    assert not list(img.glob("ephemeral-*.qcow2")), "the ephemeral overlay was not removed"
    assert sha256(img / "disk.qcow2") == before, "--ephemeral wrote to the image's disk"


def test_rm_refuses_an_image_in_use_then_removes(tiny, skiff_bin, tmp_path):
    cache, img, _ = tiny
    # A copy, so the module's image stays for the other tests.
    copy = img.parent / "tiny2"
    shutil.rmtree(copy, ignore_errors=True)     # left by an interrupted run
    shutil.copytree(img, copy)
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    p = pexpect.spawn(skiff_bin, ["run", "--image", "tiny2", "--ephemeral", "--mem", "256M"],
                      env=env, encoding="utf-8", codec_errors="replace", timeout=300)
    try:
        p.expect("skiff-guest: init started")
        r = image_cmd(skiff_bin, cache, "rm", "tiny2")
        assert r.returncode == 1 and "in use" in r.stderr, r.stdout + r.stderr
        assert copy.is_dir()
    finally:
        p.terminate(force=True)
        p.close()
    r = image_cmd(skiff_bin, cache, "rm", "tiny2")
    assert r.returncode == 0, r.stderr
    assert not copy.exists()
    r = image_cmd(skiff_bin, cache, "rm", "tiny2")
    assert r.returncode == 1 and "no image 'tiny2'" in r.stderr


def test_create_refuses_an_existing_image(tiny, skiff_bin):
    cache, img, _ = tiny
    r = image_cmd(skiff_bin, cache, "create", "debian", "--name", "tiny", "--minimal")
    assert r.returncode == 1
    assert "image 'tiny' exists" in r.stderr
    assert (img / "image.json").is_file()


# ------------------------------------------------------------------ errors

def test_suite_that_does_not_exist(skiff_bin, tmp_path):
    cache = make_cache(tmp_path)
    r = image_cmd(skiff_bin, cache, "create", "debian", "--name", "x", "--only", "hostname",
                  "--suite", "skiff-no-such-suite")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "error (step 1/8, package lists): Debian has no suite 'skiff-no-such-suite'" in r.stderr
    assert not (cache / "skiff" / "images" / "x").exists()
    assert not (cache / "skiff" / "apt-skiff-no-such-suite").exists()


class CuttingProxy(http.server.BaseHTTPRequestHandler):
    """apt's HTTP proxy, answering from here (no network): the package
    lists are current (304 to the refresh's If-Modified-Since), and every
    .deb's body stops after 1000 bytes of a chunk that promised 100000,
    then the connection is dropped. Anything else is 404."""
    protocol_version = "HTTP/1.1"
    requests = []

    def do_GET(self):
        CuttingProxy.requests.append(self.path)
        if self.path.endswith(".deb"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n" % 100000 + b"\0" * 1000)
            self.wfile.flush()
            self.close_connection = True
        elif self.path.endswith("/InRelease") and self.headers.get("If-Modified-Since"):
            self.send_response(304)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404)

    def log_message(self, *a):
        pass


def test_interrupted_download(skiff_bin, tmp_path, default_guest):
    # The package lists are a copy of the user's (guest/build-image.sh
    # refreshed them for the default guest; apt's caches of them are copied
    # too, times kept, so apt does not build them again); the .deb cache is
    # empty, so every package is fetched, through a proxy that cuts each one
    # short. The proxy comes in as the host's apt setting (APT_CONFIG: the
    # builder copies the host's Acquire options), with no retries, which
    # apt would otherwise make with growing pauses.
    cache = tmp_path / "cache"
    apt = cache / "skiff" / "apt"
    (cache / "skiff" / "debs").mkdir(parents=True)
    (apt / "etc").mkdir(parents=True)
    (apt / "state" / "lists").mkdir(parents=True)
    (apt / "cache").mkdir()
    user_apt = user_cache() / "apt"
    shutil.copy2(user_apt / "etc" / "sources.list", apt / "etc")
    for f in (user_apt / "state" / "lists").iterdir():
        if f.is_file() and f.name != "lock":
            shutil.copy2(f, apt / "state" / "lists")
    for f in (user_apt / "cache").glob("*.bin"):
        shutil.copy2(f, apt / "cache")
    CuttingProxy.requests = []
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), CuttingProxy)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    conf = tmp_path / "apt.conf"
    conf.write_text(f'Acquire::http::Proxy "http://127.0.0.1:{srv.server_address[1]}";\n'
                    'Acquire::Retries "0";\n')
    try:
        r = image_cmd(skiff_bin, cache, "create", "debian", "--name", "x", "--only", "hostname",
                      env_extra={"APT_CONFIG": str(conf)}, timeout=600)
    finally:
        srv.shutdown()
        srv.server_close()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "error (step 3/8, downloading): the download was interrupted or failed" in r.stderr, r.stderr
    assert "Remote end closed connection" in r.stderr, r.stderr
    assert "run the same command again" in r.stderr
    assert any(p.endswith(".deb") for p in CuttingProxy.requests), CuttingProxy.requests
    # No cut-short .deb is left to pass for a good one.
    for f in (cache / "skiff" / "debs").glob("*.deb"):
        raise AssertionError(f"a partial download was kept: {f} ({f.stat().st_size} bytes)")
    assert not (cache / "skiff" / "images" / "x").exists()


def test_disk_size_too_small(tiny, skiff_bin, tmp_path):
    # --offline: the package lists and .debs are the ones the tiny build
    # refreshed and fetched into the shared cache.
    cache = make_cache(tmp_path)
    r = image_cmd(skiff_bin, cache, "create", "debian", "--name", "x", "--only", "hostname",
                  "--size", "300M", "--offline")
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"error \(step 3/8, downloading\): --size 300M is too small: the packages "
                     r"alone need \d+ MiB", r.stderr), r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_no_space_left_on_the_host(tiny, skiff_bin, tmp_path):
    """The images directory on a 64 MiB file system: the builder says so
    before it writes anything large (--offline on the tiny build's lists)."""
    cache = make_cache(tmp_path)
    images = cache / "skiff" / "images"
    images.mkdir()
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), SKIFF_GUEST_DIR=str(REPO_ROOT / "guest"))
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        f"mount -t tmpfs -o size=64m skiff-test {images} && "
                        f"exec {skiff_bin} image create debian --name x --only hostname --offline"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"error \(step 3/8, downloading\): no space left for the build: .* has \d+ MiB "
                     r"free, about \d+ MiB are needed", r.stderr), r.stderr


def test_bad_arguments(skiff_bin, tmp_path):
    cache = make_cache(tmp_path)
    for args, msg in [
        (["create"], "name the system to build"),
        (["create", "fedora"], "unknown system 'fedora'"),
        (["create", "debian", "--name", "../x"], "bad image name '../x'"),
        (["create", "debian", "--size", "lots"], "--size lots: not a size"),
        (["create", "debian", "--packages", "a;b"], "bad package name 'a;b'"),
        (["create", "debian", "--ssh-key", "/nonexistent"], "--ssh-key /nonexistent: cannot read it"),
        (["rm"], "name the image"),
        (["rm", "nothing-here"], "no image 'nothing-here'"),
        (["frobnicate"], "unknown command 'frobnicate'"),
    ]:
        r = image_cmd(skiff_bin, cache, *args)
        assert r.returncode in (1, 64), (args, r.returncode)
        assert msg in r.stderr, (args, r.stderr)
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    for args, msg in [
        (["--image", "nothing-here"], "no image 'nothing-here'"),
        (["--ephemeral"], "--ephemeral and --ssh-port go with --image NAME"),
        (["--image", "x", "--ssh-port", "70000"], "--ssh-port 70000: a TCP port"),
    ]:
        r = subprocess.run([skiff_bin, "run", *args], capture_output=True, text=True, env=env,
                           timeout=30)
        assert r.returncode == 64, (args, r.returncode, r.stderr)
        assert msg in r.stderr, (args, r.stderr)


def test_convert(skiff_bin, tmp_path):
    """A sparse raw file with data here and there becomes a qcow2 that
    qemu-img reads as the same bytes, holding only the clusters with data."""
    raw = tmp_path / "d.raw"
    with open(raw, "wb") as f:
        f.truncate(256 << 20)
        for off in (0, 5 << 20, (100 << 20) + 12345, (256 << 20) - 4096):
            f.seek(off)
            f.write(os.urandom(4096))
        f.seek(50 << 20)
        f.write(bytes(8 << 20))     # written zeros: data to SEEK_DATA, left out
    out = tmp_path / "d.qcow2"
    r = subprocess.run([skiff_bin, "image", "convert", str(raw), str(out)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    cmp = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(raw), str(out)],
                         capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    assert out.stat().st_size < 2 << 20
    r = subprocess.run([skiff_bin, "image", "convert", str(raw), str(out)], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "exists" in r.stderr.lower(), r.stderr


# ------------------------------------------------------------------ skiffd

def debian_agent_through_skiff(console, skiff):
    """Debian's qemu-guest-agent answers skiff's host side (the VMM's agent
    channel, skiffd's /agent routes, skiff exec and ls). No init or udev in
    this guest: the shell starts the agent on the port's device node, found
    through sysfs by its name."""
    console_say(console, "mount -t sysfs sysfs /sys 2>/dev/null; mount -t devtmpfs dev /dev 2>/dev/null;"
                " for d in /sys/class/virtio-ports/*; do [ \"$(cat $d/name)\" = org.qemu.guest_agent.0 ]"
                " && /usr/sbin/qemu-ga -m virtio-serial -p /dev/${d##*/} & done; echo qga-$((6*7))", r"qga-42")
    deadline = time.monotonic() + 120
    while (r := skiff("exec", "t1", "--", "/bin/echo", "from-debian")).returncode != 0:
        assert time.monotonic() < deadline, (r.returncode, r.stderr)
        time.sleep(2)
    assert r.stdout == "from-debian\n", r
    r = skiff("exec", "t1", "--", "/bin/sh", "-c", "echo err >&2; exit 3")
    assert (r.returncode, r.stderr) == (3, "err\n"), r
    r = skiff("ls")
    assert re.search(r"^\S+\s+t1\s.*\brunning\b.*\byes\b", r.stdout, re.M), r.stdout


def test_skiffd_create_image(tiny, skiff_bin, skiff_build, tmp_path):
    """`skiff create --image`: skiffd gives the VM its own overlay of the
    image's disk in the VM's state directory (backing file the image's
    disk, format qcow2), boots it from the image's kernel and disk, and
    removes the overlay with the VM; the image is not written."""
    cache, img, _ = tiny
    before = sha256(img / "disk.qcow2")
    root = Path(f"/tmp/ski-{os.getpid()}")
    root.mkdir()
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), SKIFF_SOCKET=str(root / "s.sock"))
    log = open(tmp_path / "skiffd.log", "w")
    d = subprocess.Popen([str(skiff_build / "src" / "daemon" / "skiffd"), "--socket", str(root / "s.sock"),
                          "--state-dir", str(root / "state")], stdout=log, stderr=subprocess.STDOUT, env=env)

    def skiff(*args):
        return subprocess.run([skiff_bin, *args], capture_output=True, text=True, env=env, timeout=120)
    try:
        for _ in range(300):
            if (root / "s.sock").exists():
                break
            time.sleep(0.1)
        r = skiff("create", "--image", "nothing-here", "--name", "bad")
        assert r.returncode != 0 and "no image 'nothing-here'" in r.stderr, r.stderr
        vms = root / "state" / "vms"
        assert not vms.exists() or not any(vms.iterdir()), "a refused VM left its directory"

        meta = json.loads((img / "image.json").read_text())
        r = skiff("create", "--image", "tiny", "--name", "t1", "--json", "--mem", "256M",
                  "--append", meta["cmdline"].replace(" quiet", "") + " init=/bin/sh")
        assert r.returncode == 0, r.stderr
        vm = json.loads(r.stdout)
        vdir = root / "state" / "vms" / vm["id"]
        overlay = vdir / "overlay" / "disk.qcow2"
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(overlay)],
                                         capture_output=True, text=True, check=True).stdout)
        assert info["backing-filename"] == str(img / "disk.qcow2")
        assert info["backing-filename-format"] == "qcow2"
        cfg = json.loads((vdir / "vm.json").read_text())
        cfg = cfg.get("config", cfg)
        assert cfg["boot-source"]["kernel_image_path"] == str(img / "Image")
        assert cfg["drives"][0]["path_on_host"] == str(overlay)
        assert cfg["drives"][0]["backing_dirs"] == [str(img)], cfg["drives"][0]
        assert cfg["network-interfaces"][0]["backend"] == "user"

        r = skiff("start", "t1")
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 600
        text = ""
        while time.monotonic() < deadline:
            try:
                text = (vdir / "console.log").read_text(errors="replace")
            except OSError:
                text = ""
            if "switching root to /dev/vda (/bin/sh)" in text:
                break
            time.sleep(2)
        assert "switching root to /dev/vda (/bin/sh)" in text, text[-3000:]
        debian_agent_through_skiff(vdir / "run" / "console.sock", skiff)
        r = skiff("rm", "-f", "t1")
        assert r.returncode == 0, r.stderr
        assert not overlay.exists() and not vdir.exists()
    finally:
        # skiffd leaves its VMs running when it stops: a failed check must
        # not leave this one behind
        skiff("rm", "-f", "t1")
        d.terminate()
        d.wait(timeout=60)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
    assert sha256(img / "disk.qcow2") == before

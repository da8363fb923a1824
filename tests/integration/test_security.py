"""The host-file holes of issue 12, each attacked the way an attacker would,
through a real guest or a real file, and shown to fail with a clear message.
One booted guest serves every check that needs one.

- Format probing (QEMU's CVE-2008-2004): the guest writes a qcow2 header
  naming a host file as its backing file onto its raw disk (given without
  format=) and reboots; the disk still reads as the bytes the guest wrote
  and the host file never appears; the settled format shows in GET
  /vm/config; a new `skiff run` of that image without format= is refused.
- User networking: with host-loopback=off (skiffd's default) and with
  restrict=on, the guest's connection to 10.0.2.2 never reaches a listener
  on the host's loopback, while port forwards into the guest still work.
- 9p with nodev: the guest's mkfifo and ln -s fail and leave nothing on
  the host; ordinary files are written.
- The sandbox: every thread of the running VMM (main, vCPU, device I/O,
  user network, API) shows Seccomp: 2 and NoNewPrivs: 1; in a test build,
  a thread of each class that makes a call outside its list ends the VMM
  by SIGSYS with a report naming the class and the call.
- Backing files: a qcow2 image naming a host file (absolute or `../`) is
  refused unless backing files are allowed, and then unless the file lies
  beneath the image's directory or one the user listed (the allowed case
  boots in test_blk.py).

The guest needs the default guest image (see conftest.py).
"""
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port

MiB = 1 << 20
SECRET = b"HOST-SECRET-7c1e "


def sh(*cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw)


def curl_json(sock, path):
    r = subprocess.run(["curl", "-sS", "--unix-socket", str(sock), f"http://localhost{path}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("security")
    f = {"dir": d}
    (d / "vm").mkdir()
    (d / "outside").mkdir()
    # A host file the guest must never read, outside the VM's directory.
    secret = d / "outside" / "host-secret"
    secret.write_bytes((SECRET * (MiB // len(SECRET) + 1))[:MiB])
    f["secret"] = secret
    # The payload: a qcow2 header that names the host file as backing file
    # (raw, recorded), made by QEMU's own tool. Small clusters keep it short.
    evil = d / "vm" / "evil.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512",
       "-b", secret, "-F", "raw", evil, str(MiB))
    f["evil"] = evil
    f["evil_bytes"] = evil.read_bytes()
    # The same by a relative name that climbs out of the image's directory.
    evil_rel = d / "vm" / "evil-rel.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "../outside/host-secret", "-F", "raw",
       evil_rel, str(MiB))
    f["evil_rel"] = evil_rel
    # A share where the guest may make no FIFOs, sockets or symlinks.
    (d / "share").mkdir()
    f["share"] = d / "share"
    # The guest's raw disk, given without format=.
    raw = d / "vm" / "raw.img"
    with open(raw, "wb") as fh:
        fh.truncate(MiB)
    f["raw"] = raw
    return f


@pytest.fixture(scope="module")
def guest(boot_guest, default_guest, files):
    api = files["dir"] / "vm" / "api.sock"
    fwd = [free_port(), free_port()]
    g = boot_guest("security",
                   "--kernel", default_guest.kernel, "--initrd", default_guest.initrd,
                   "--api-sock", api,
                   # a second hart (started by the first: SBI HSM) and the
                   # quota's controller thread, for the sandbox's checks
                   "--cpus", "2", "--cpu-quota", "1.9",
                   "--disk", files["raw"],                       # /dev/vda, no format=
                   "--disk", f"{files['evil']},ro,format=raw",    # /dev/vdb: the payload's bytes
                   "--share", f"{files['share']},tag=nd,nodev",
                   "--vsock", f"cid=3,uds={files['dir'] / 'vm' / 'v.sock'}",
                   "--port", f"org.test.port,uds={files['dir'] / 'vm' / 'port.sock'}",
                   # eth0: the host's loopback left out; eth1: restricted
                   "--net", f"user,host-loopback=off,hostfwd=tcp:127.0.0.1:{fwd[0]}-:8001",
                   "--net", f"user,restrict=on,hostfwd=tcp:127.0.0.1:{fwd[1]}-:8001")
    g.api = api
    g.fwd = fwd
    yield g
    g.close()


def drive_formats(sock):
    return {d["drive_id"]: d.get("format") for d in curl_json(sock, "/vm/config")["drives"]}


def test_probe_attack_through_reboot(guest, files, skiff_bin, default_guest):
    evil = files["evil_bytes"]
    sectors = (len(evil) + 511) // 512
    padded = evil + bytes(sectors * 512 - len(evil))
    # The format was settled once, at configuration: raw.
    assert drive_formats(guest.api)["disk0"] == "raw"
    # The guest writes the qcow2 header onto its own raw disk.
    guest.run(f"dd if=/dev/vdb of=/dev/vda bs=512 count={sectors} conv=fsync 2>/dev/null")
    assert files["raw"].read_bytes()[:len(evil)] == evil, "the guest's write did not land"
    # Reboot: skiff rebuilds the VM from the same configuration.
    guest.p.sendline("reboot")
    guest.wait_ready()
    assert drive_formats(guest.api)["disk0"] == "raw"
    # Still the 1 MiB raw disk with the guest's bytes, not a 1 MiB qcow2
    # disk reading through to the host file.
    status, out = guest.run_status(f"dd if=/dev/vda bs=64k 2>/dev/null | grep -c '{SECRET.decode().strip()}'")
    assert out == "0" and status == 1, f"the host file's contents reached the guest: {out}"
    assert guest.run("cat /sys/block/vda/size") == str(MiB // 512)
    md5 = guest.run(f"dd if=/dev/vda bs=512 count={sectors} 2>/dev/null | md5sum | cut -c1-32")
    assert md5 == hashlib.md5(padded).hexdigest()
    # A new configuration of the same image without format= is refused:
    # the format of a writable disk is never guessed from its contents.
    r = subprocess.run([skiff_bin, "run", "--kernel", default_guest.kernel, "--disk", files["raw"]],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "never guessed" in r.stderr and str(files["raw"]) in r.stderr, r.stderr


def skiff_refuses(skiff_bin, default_guest, *args):
    """`skiff run` with these options exits non-zero before booting; its message."""
    r = subprocess.run([skiff_bin, "run", "--kernel", default_guest.kernel] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r.stdout[-2000:]
    return r.stderr


def test_backing_file_only_when_allowed(files, skiff_bin, default_guest):
    """Hole 2: a qcow2 image names a host file as its backing file, by
    absolute path and by `../`, with format=qcow2 given: refused unless
    backing files are allowed, and then still refused, since the file is
    not beneath the image's directory nor a directory the user listed."""
    for img in (files["evil"], files["evil_rel"]):
        err = skiff_refuses(skiff_bin, default_guest, "--disk", f"{img},format=qcow2,ro")
        assert "followed only when allowed" in err and "host-secret" in err, err
        err = skiff_refuses(skiff_bin, default_guest, "--disk", f"{img},format=qcow2,ro,backing=on")
        assert "is not beneath" in err and str(files["dir"] / "vm") in err, err


def host_listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.setblocking(False)
    return srv


def accepted(srv):
    try:
        c, _ = srv.accept()
        c.close()
        return True
    except BlockingIOError:
        return False


def fetch(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ok", timeout=30) as r:
        return r.read()


def test_user_network_host_loopback_and_restrict(guest):
    """Hole 3. eth0 has host-loopback=off, eth1 restrict=on. The guest tries
    10.0.2.2 (the host's loopback under QEMU's rules) through each; a host
    listener on 127.0.0.1 must see nothing. Forwards into the guest work
    through both, so the interfaces themselves are up."""
    guest.run("mkdir -p /srv && echo ok > /srv/ok && httpd -p 8001 -h /srv")
    # eth1 carries the DHCP address too, and a host route sends 10.0.2.2
    # through it (slirp's forwards connect to 10.0.2.15).
    guest.run("ip link set eth1 up && ip addr add 10.0.2.15/32 dev eth1")
    assert fetch(guest.fwd[0]) == b"ok\n"
    srv = host_listener()
    try:
        port = srv.getsockname()[1]
        for dev, why in (("eth1", "restrict=on"), ("eth0", "host-loopback=off")):
            if dev == "eth1":
                guest.run("ip route add 10.0.2.2/32 dev eth1")
            else:
                guest.run("ip route del 10.0.2.2/32 dev eth1")
                assert fetch(guest.fwd[0]) == b"ok\n"
            assert guest.run("ip route get 10.0.2.2").split()[2] == dev
            status, out = guest.run_status(f"echo hello | timeout 5 nc -w 3 10.0.2.2 {port}", timeout=60)
            assert not accepted(srv), f"{why}: the guest reached the host's loopback ({status}, {out})"
            if dev == "eth1":
                assert fetch(guest.fwd[1]) == b"ok\n"
    finally:
        srv.close()


def test_share_nodev(guest, files):
    """Hole 6: on a nodev share the guest can make neither a FIFO (which
    would hang a host program that opens it) nor a symlink to anywhere on
    the host (which a host program could follow out of the share)."""
    status, out = guest.run_status("mkfifo /mnt/nd/fifo 2>&1")
    assert status != 0, out
    status, out = guest.run_status("ln -s /etc/shadow /mnt/nd/link 2>&1")
    assert status != 0, out
    guest.run("echo plain > /mnt/nd/file && mkdir /mnt/nd/dir && sync")
    share = files["share"]
    assert not os.path.lexists(share / "fifo") and not os.path.lexists(share / "link")
    assert (share / "file").read_text() == "plain\n" and (share / "dir").is_dir()


def thread_states(pid):
    """{tid: (name, Seccomp, NoNewPrivs, CapEff, CapBnd, Seccomp_filters)}
    of a process's threads (the capability sets and the number of seccomp
    filters as integers)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:
            continue   # the thread ended meanwhile
        f = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        out[int(tid)] = (name, f.get("Seccomp", "").strip(), f.get("NoNewPrivs", "").strip(),
                         int(f["CapEff"], 16), int(f["CapBnd"], 16),
                         int(f.get("Seccomp_filters", "-1")))
    return out


def test_every_thread_is_confined(guest):
    """The sandbox is on by default: every thread is in seccomp filter mode
    (2) with no_new_privs, whatever its class. The guest has rebooted
    (test_probe_attack_through_reboot): the rebuilt VM's threads too."""
    guest.run("true")   # the second hart is up
    states = thread_states(guest.p.pid)
    names = sorted(v[0] for v in states.values())
    for want in ("vcpu0", "vcpu1", "cpu-quota", "virtio-blk", "virtio-9p", "vsock", "port-sock",
                 "slirp-net0", "MHD-"):
        assert any(n.startswith(want) for n in names), f"no {want} thread among {names}"
    loose = {tid: v[:3] for tid, v in states.items() if v[1] != "2" or v[2] != "1"}
    assert not loose, f"threads not confined (name, Seccomp, NoNewPrivs): {loose}"
    # Capabilities (they matter as root): a VM with a 9p share keeps only
    # what 9p needs (CAP_CHOWN 0, CAP_DAC_OVERRIDE 1, CAP_DAC_READ_SEARCH 2,
    # CAP_FOWNER 3), in every thread's effective and bounding sets.
    share_caps = 0b1111
    extra = {v[0]: (hex(v[3]), hex(v[4])) for v in states.values() if (v[3] | v[4]) & ~share_caps}
    assert not extra, f"threads keep capabilities (CapEff, CapBnd): {extra}"


def test_limits(guest):
    """No core dumps (they would hold guest memory), a bounded number of
    open files, a bounded file size."""
    lim = {}
    for line in Path(f"/proc/{guest.p.pid}/limits").read_text().splitlines()[1:]:
        name, soft, hard = line[:26].strip(), line[26:47].strip(), line[47:68].strip()
        lim[name] = (soft, hard)
    assert lim["Max core file size"] == ("0", "0")
    soft, hard = lim["Max open files"]   # 4096, or lower where the host's hard limit was
    assert soft == hard and int(hard) <= 4096, lim["Max open files"]
    assert lim["Max file size"] != ("unlimited", "unlimited")


@pytest.fixture(scope="session")
def test_build_skiff():
    """The sandbox's triggers are compiled into test builds only: the
    sanitizer build run-tests.sh makes (SKIFF_ASAN_BUILD)."""
    d = os.environ.get("SKIFF_ASAN_BUILD")
    if not d:
        pytest.skip("SKIFF_ASAN_BUILD is not set: no test build with the sandbox's triggers")
    b = Path(d).resolve() / "src" / "cli" / "skiff"
    assert b.is_file(), f"no skiff in the test build {d}"
    return b


@pytest.mark.parametrize("cls", ["main", "vcpu", "io", "net", "api"])
def test_sandbox_kills_a_thread_outside_its_list(cls, test_build_skiff, default_guest, tmp_path):
    """SKIFF_SANDBOX_TRIGGER=CLASS: right after confining itself, a thread
    of that class calls mount(2), which no list allows. The VMM must end by
    SIGSYS, before the guest runs, with a report naming the class."""
    env = dict(os.environ, SKIFF_SANDBOX_TRIGGER=cls, ASAN_OPTIONS="detect_leaks=0")
    r = subprocess.run([test_build_skiff, "run", "--kernel", default_guest.kernel,
                        "--initrd", default_guest.initrd, "--api-sock", tmp_path / "api.sock",
                        "--net", "user"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=env, timeout=180)
    assert r.returncode == -signal.SIGSYS, (r.returncode, r.stderr[-2000:])
    assert f"skiff: sandbox: the {cls} thread" in r.stderr and "system call mount" in r.stderr, \
        r.stderr[-2000:]


def kernel_log():
    r = subprocess.run(["dmesg"], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


def audit_printk_window():
    """The kernel prints audit records under printk's rate limit (10 lines
    per 5 s by default) and drops the rest: the kill tests before this one
    fill that quickly. Wait until 5 s have passed since the last seccomp
    record printed, so the next one starts a new window."""
    log = kernel_log()
    if log is None:
        return
    stamps = [l for l in log.splitlines() if "audit: type=1326" in l]
    if not stamps:
        return
    last = float(stamps[-1].split("]", 1)[0].lstrip("[ "))
    with open("/proc/uptime") as f:
        now = float(f.read().split()[0])
    if now - last < 5.5:
        time.sleep(5.5 - (now - last))


@pytest.mark.parametrize("cls", ["main", "vcpu", "io", "net", "api"])
def test_sandbox_log_mode_lets_the_call_through(cls, test_build_skiff, default_guest, tmp_path):
    """--seccomp=log: the same forbidden call is let through (it fails by
    itself: no target) and the VMM goes on; the guest kernel's first lines
    come after every thread was confined. Where the kernel log is readable
    it holds the call (audit type=1326, syscall 165 = mount on x86-64)."""
    env = dict(os.environ, SKIFF_SANDBOX_TRIGGER=cls, ASAN_OPTIONS="detect_leaks=0")
    audit_printk_window()
    p = subprocess.Popen([test_build_skiff, "run", "--seccomp=log", "--kernel", default_guest.kernel,
                          "--initrd", default_guest.initrd, "--api-sock", tmp_path / "api.sock",
                          "--net", "user"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        seen = b""
        while b"Linux version" not in seen:
            line = p.stdout.readline()
            assert line, f"the VMM ended ({p.wait()}): {p.stderr.read()[-2000:]}"
            seen += line
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()
    log = kernel_log()
    if log is not None and os.uname().machine == "x86_64":
        assert any(f"pid={p.pid} " in l and "syscall=165 " in l for l in log.splitlines()), \
            "no seccomp log line for the VMM's mount call"

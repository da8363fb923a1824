"""The VMM's file confinement (issue 12), one booted guest per layer.

- The jail (`skiff run --jail DIR`, as root): the VMM runs as uid/gid 65532
  in mount, PID, IPC and UTS namespaces of its own; its root
  (/proc/PID/root) holds nothing but its kernel, initrd, disk, share, the
  sockets' directory, /etc/resolv.conf (user networking's DNS) and
  /dev/null; a host file outside is not there, and
  the VMM cannot open it through its API (PATCH /drives) while a file in
  its sockets' directory it can; the guest boots and its disk, user
  network, vsock, 9p share and API work; SIGTERM to the `skiff run`
  outside stops the jailed VMM.
- Landlock (an ordinary user, here the VMM run under setpriv as uid
  65533): the VMM cannot open a file outside its configuration that the
  uid may otherwise read and write (PATCH /drives answers "Permission
  denied"), while a file in its sockets' directory it can, and the guest
  runs.

- A jailed restore (`--jail --snapshot DIR`, a tiny spinning kernel): the
  snapshot's own disk and kernel, named in its state file only, are in
  the jail and the VM runs.
- A jailed VM with no NIC, no API and no snapshot gets a network
  namespace of its own (one with user networking keeps the host's, as the
  first test shows).
- A kernel without Landlock (simulated: a seccomp filter answers the three
  Landlock calls ENOSYS, as such a kernel does): the VMM says so once and
  the VM runs (a tiny spinning kernel, no guest boot).

All need root (the jail; setpriv to another uid); the first two the
default guest too.
"""
import errno
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

import rvimage
from conftest import Guest, guest_to_host_nc, wait_for

JAIL_ID = 65532       # skiff's default --jail-uid/--jail-gid
USER_ID = 65533       # the ordinary user of the Landlock test

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the jail and setpriv need root")


# One connection's bytes to stdout, from a Unix socket listener at argv[1].
VSOCK_LISTENER = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(1)
c, _ = s.accept()
while (d := c.recv(4096)):
    sys.stdout.buffer.write(d)
"""


def api(sock, method, path, body=None):
    cmd = ["curl", "-sS", "--unix-socket", str(sock), "-X", method, f"http://localhost{path}",
           "-w", "\n%{http_code}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text, code = r.stdout.rsplit("\n", 1)
    return int(code), text


def stop(p):
    """SIGTERM, then the process's stderr; SIGKILL if it does not end."""
    p.terminate()
    try:
        return p.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError("skiff did not end on SIGTERM")


def state(sock):
    """The VM's state from GET /, or None while its API does not answer
    (the socket file appears before the VMM listens on it)."""
    if not Path(sock).exists():
        return None
    r = subprocess.run(["curl", "-sS", "--unix-socket", str(sock), "http://localhost/"],
                       capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout).get("state") if r.returncode == 0 else None


def vmm_pid(outer):
    """The jailed VMM: the child of the `skiff run` that stayed outside."""
    with open(f"/proc/{outer}/task/{outer}/children") as f:
        kids = f.read().split()
    assert len(kids) == 1, kids
    return int(kids[0])


def status_fields(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def files_under(root):
    """Every non-directory beneath root, as absolute paths inside it, /proc
    left out (the VMM's own PID namespace)."""
    found = set()
    for d, dirs, names in os.walk(root):
        rel = "/" + os.path.relpath(d, root) if d != str(root) else ""
        if rel == "/proc":
            dirs[:] = []
            continue
        for n in names:
            found.add(os.path.normpath(f"{rel}/{n}"))
    return found


@pytest.fixture
def open_dir():
    """A directory other uids can reach (pytest's own sit beneath a 0700
    one): the jail's and the ordinary user's processes work in it."""
    d = Path(tempfile.mkdtemp(prefix="skiff-confine-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def jail_files(open_dir, guest_tools):
    tmp_path = open_dir
    vm = tmp_path / "vm"
    vm.mkdir()
    disk = vm / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(8 << 20)
    spare = vm / "spare.img"
    with open(spare, "wb") as f:
        f.truncate(8 << 20)
    for p in (vm, disk, spare):
        os.chown(p, JAIL_ID, JAIL_ID)
    share = tmp_path / "share"
    share.mkdir()
    shutil.copy(guest_tools / "vsock_tool", share / "vsock_tool")
    (tmp_path / "outside").mkdir()
    secret = tmp_path / "outside" / "host-secret.img"
    with open(secret, "wb") as f:
        f.truncate(8 << 20)
    os.chown(secret, JAIL_ID, JAIL_ID)   # the jail's uid could open it, were it there
    return {"dir": tmp_path, "vm": vm, "disk": disk, "spare": spare, "share": share, "secret": secret}


def test_jail(skiff_bin, default_guest, console_log_dir, jail_files):
    f = jail_files
    vm = f["vm"]
    g = Guest(skiff_bin, ["--jail", f["dir"] / "jail",
                          "--kernel", default_guest.kernel, "--initrd", default_guest.initrd,
                          "--api-sock", vm / "api.sock",
                          "--disk", f"{f['disk']},format=raw",
                          "--net", "user",
                          "--vsock", f"cid=3,uds={vm / 'v.sock'}",
                          "--share", f"{f['share']},tag=tools,ro"],
              console_log_dir / "jail.log", name="jail")
    try:
        g.wait_ready()
        pid = vmm_pid(g.p.pid)
        st = status_fields(pid)
        assert st["Uid"] == [str(JAIL_ID)] * 4 and st["Gid"] == [str(JAIL_ID)] * 4, st["Uid"]
        assert st["NoNewPrivs"] == ["1"] and st["Seccomp"] == ["2"]
        for ns in ("mnt", "pid", "ipc", "uts"):
            assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
        assert os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")   # user net
        # Its root holds only its own files.
        root = Path(f"/proc/{pid}/root")
        want = {"/dev/null", str(default_guest.kernel), str(default_guest.initrd), str(f["disk"]),
                str(f["spare"]), str(vm / "api.sock"), str(vm / "v.sock"),
                str(f["share"] / "vsock_tool")}
        if os.path.exists("/etc/resolv.conf"):
            want.add("/etc/resolv.conf")   # user networking's DNS forwarder reads it
        assert files_under(root) == want
        assert not os.path.exists(f"{root}{f['secret']}")

        # Through its API the VMM cannot open a host file outside; one in
        # its sockets' directory it can.
        code, text = api(vm / "api.sock", "PATCH", "/drives/disk0",
                         {"drive_id": "disk0", "path_on_host": str(f["secret"])})
        assert code == 400 and "No such file" in text, (code, text)
        code, text = api(vm / "api.sock", "PATCH", "/drives/disk0",
                         {"drive_id": "disk0", "path_on_host": str(f["spare"])})
        assert code == 204, (code, text)

        # The guest's disk (now spare.img), network, vsock and share work.
        g.run("echo jailed-disk-ok | dd of=/dev/vda bs=512 conv=fsync 2>/dev/null")
        assert f["spare"].read_bytes().startswith(b"jailed-disk-ok")
        n, _ = guest_to_host_nc(g, 1 / 16)
        assert n == 64 << 10
        # The guest connects to host port 5301: the VMM connects to
        # v.sock_5301, which must be its uid's socket, served by its uid.
        path = vm / "v.sock_5301"
        listener = subprocess.Popen(
            ["setpriv", f"--reuid={JAIL_ID}", f"--regid={JAIL_ID}", "--clear-groups",
             "/usr/bin/python3", "-c", VSOCK_LISTENER, str(path)],
            stdout=subprocess.PIPE)
        try:
            assert wait_for(path.exists, 30, 0.1), "the listener never bound"
            g.run("echo over-the-jail | /mnt/tools/vsock_tool send 2 5301", timeout=120)
            out, _ = listener.communicate(timeout=60)
        finally:
            listener.kill()
            listener.wait()
        assert out == b"over-the-jail\n"
        code, text = api(vm / "api.sock", "GET", "/")
        assert code == 200 and json.loads(text)["state"] == "Running"
        # SIGTERM to the skiff outside reaches the jailed VMM (PID 1 of its
        # namespace takes only signals it handles), which stops the VM.
        g.p.kill(signal.SIGTERM)
        assert g.wait_exit(60) == 0
        assert not os.path.exists(f"/proc/{pid}"), "the jailed VMM outlived its parent"
    finally:
        g.close()


def test_landlock_for_an_ordinary_user(skiff_bin, default_guest, console_log_dir, open_dir):
    # Everything the uid needs lies in a directory it can reach (the usual
    # build and cache directories may sit beneath root's home).
    d = open_dir
    for name in ("skiff", "Image", "initrd.cpio.gz"):
        src = {"skiff": skiff_bin, "Image": default_guest.kernel,
               "initrd.cpio.gz": default_guest.initrd}[name]
        shutil.copy(src, d / name)
    vm, outside = d / "vm", d / "outside"
    for sub in (vm, outside):
        sub.mkdir()
        for img in ("a.img", "b.img"):
            with open(sub / img, "wb") as fh:
                fh.truncate(8 << 20)
            os.chown(sub / img, USER_ID, USER_ID)
        os.chown(sub, USER_ID, USER_ID)
    wrapper = d / "as-user"
    wrapper.write_text(f"#!/bin/sh\nexec setpriv --reuid={USER_ID} --regid={USER_ID} "
                       f"--clear-groups {d / 'skiff'} \"$@\"\n")
    wrapper.chmod(0o755)
    g = Guest(str(wrapper), ["--kernel", d / "Image", "--initrd", d / "initrd.cpio.gz",
                        "--api-sock", vm / "api.sock", "--disk", f"{vm / 'a.img'},format=raw"],
              console_log_dir / "landlock.log", name="landlock")
    try:
        g.wait_ready()
        # The uid owns outside/b.img, but it is not the VM's: refused.
        code, text = api(vm / "api.sock", "PATCH", "/drives/disk0",
                         {"drive_id": "disk0", "path_on_host": str(outside / "b.img")})
        assert code == 400 and "Permission denied" in text, (code, text)
        code, text = api(vm / "api.sock", "PATCH", "/drives/disk0",
                         {"drive_id": "disk0", "path_on_host": str(vm / "b.img")})
        assert code == 204, (code, text)
        g.run("echo landlocked-disk-ok | dd of=/dev/vda bs=512 conv=fsync 2>/dev/null")
        assert (vm / "b.img").read_bytes().startswith(b"landlocked-disk-ok")
        assert "Landlock is not available" not in g.tail()
    finally:
        g.close()


def test_without_landlock_the_vm_runs_and_says_so(skiff_bin, open_dir):
    import seccomp   # Debian's python3-seccomp (scripts/deps.sh)

    d = open_dir
    shutil.copy(skiff_bin, d / "skiff")
    (d / "Image").write_bytes(rvimage.image(rvimage.prog_spin()))
    vm = d / "vm"
    vm.mkdir()
    os.chown(vm, USER_ID, USER_ID)

    def no_landlock():
        f = seccomp.SyscallFilter(seccomp.ALLOW)
        for call in ("landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"):
            f.add_rule(seccomp.ERRNO(errno.ENOSYS), call)
        f.load()
    p = subprocess.Popen(["setpriv", f"--reuid={USER_ID}", f"--regid={USER_ID}", "--clear-groups",
                          d / "skiff", "run", "--kernel", d / "Image", "--api-sock", vm / "api.sock"],
                         preexec_fn=no_landlock, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: state(vm / "api.sock") == "Running", 60, 0.2), "the VM did not run"
    finally:
        err = stop(p)
    err = err.decode(errors="replace")
    assert err.count("Landlock is not available here") == 1, err


def test_jail_restores_a_snapshot(skiff_bin, open_dir):
    d = open_dir
    (d / "Image").write_bytes(rvimage.image(rvimage.prog_spin()))
    for sub in ("vm", "vm2", "disks", "snap"):
        (d / sub).mkdir()
    disk = d / "disks" / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(4 << 20)
    first = subprocess.Popen([skiff_bin, "run", "--kernel", d / "Image", "--mem", "128",
                              "--api-sock", d / "vm" / "api.sock", "--disk", f"{disk},format=raw"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: state(d / "vm" / "api.sock"), 60, 0.1), "no API answers"
        assert api(d / "vm" / "api.sock", "PATCH", "/vm", {"state": "Paused"})[0] == 204
        code, text = api(d / "vm" / "api.sock", "PUT", "/snapshot/create",
                         {"snapshot_path": str(d / "snap" / "vmstate"),
                          "mem_file_path": str(d / "snap" / "memory")})
        assert code == 204, (code, text)
    finally:
        first.kill()
        first.wait()
    for p in (disk, d / "vm2", d / "snap" / "vmstate", d / "snap" / "memory"):
        os.chown(p, JAIL_ID, JAIL_ID)
    sock = d / "vm2" / "api.sock"
    p = subprocess.Popen([skiff_bin, "run", "--jail", d / "jail", "--snapshot", d / "snap",
                          "--api-sock", sock],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: state(sock) == "Running", 60, 0.2), "the restored VM does not run"
        files = files_under(f"/proc/{vmm_pid(p.pid)}/root")
        assert {str(disk), str(d / "Image")} <= files, files
    finally:
        err = stop(p)
    assert p.returncode == 0, err.decode(errors="replace")


def test_jail_without_network_has_its_own_net_namespace(skiff_bin, open_dir):
    d = open_dir
    (d / "Image").write_bytes(rvimage.image(rvimage.prog_spin()))
    p = subprocess.Popen([skiff_bin, "run", "--jail", d / "jail", "--kernel", d / "Image",
                          "--no-rng", "--no-agent"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def jailed_net():
            try:
                pid = vmm_pid(p.pid)
                return os.readlink(f"/proc/{pid}/ns/net"), os.readlink(f"/proc/{pid}/ns/mnt")
            except (OSError, AssertionError):
                return None
        # Once the mount namespace differs, the child has made its namespaces.
        got = wait_for(lambda: (n := jailed_net()) and n[1] != os.readlink("/proc/self/ns/mnt") and n,
                       30, 0.05)
        assert got, "no jailed VMM"
        assert got[0] != os.readlink("/proc/self/ns/net")
    finally:
        stop(p)

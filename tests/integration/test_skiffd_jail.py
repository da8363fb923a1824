"""skiffd confines every VM it starts (docs/security.md, "skiffd's VMs"),
with tiny hand-made guests (rvimage.py) so each start takes well under a
second.

- skiffd as root jails each VMM: the process that runs the guest (the
  `pid` skiffd reports) runs as uid/gid 65532 with NoNewPrivs and seccomp,
  in mount, PID, IPC and UTS namespaces other than skiffd's; its
  `/proc/PID/root` holds exactly its kernel, its disk, its run/ directory
  (sockets, metrics) and /dev/null, none of skiffd's own files (vm.json,
  config.json, console.log) and no other host file; asked directly on its
  own API socket (not through skiffd, which would bring the file in) to
  swap its disk for a host image, it cannot find it. A snapshot through
  skiffd lands in a directory outside the jail, and a VM restored from it
  runs, jailed too, with its kernel (brought in: a restore starts without
  a configuration) and its own disk copy in its run/.
- skiffd as an ordinary user (uid 65533 under setpriv): each VMM is under
  Landlock: a PATCH /drives to an image that user owns outside the VM's
  configuration is refused with "Permission denied", while a snapshot
  through skiffd to any directory of the user's works (skiffd moves it out
  of the VM's run/ directory) and a VM restored from it runs.
"""
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

import rvimage
from conftest import wait_for
from test_skiffd import (JAIL_ID, Skiffd, action, curl, fails, for_vmm, get, ok,  # noqa: F401
                         short_root, skiffd_bin)

USER_ID = 65533   # the ordinary user of the Landlock test

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the jail and setpriv need root")


def tiny_def(vm_id, kernel, disk):
    return {"id": vm_id, "boot-source": {"kernel_image_path": str(kernel)},
            "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
            "drives": [{"drive_id": "d", "path_on_host": str(disk), "is_root_device": False,
                        "is_read_only": False, "format": "raw"}]}


def status_fields(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def files_under(root):
    """Every non-directory beneath root, as absolute paths inside it, /proc
    (the VMM's own PID namespace's) left out."""
    found = set()
    for d, dirs, names in os.walk(root):
        rel = "/" + os.path.relpath(d, root) if d != str(root) else ""
        if rel == "/proc":
            dirs[:] = []
            continue
        found.update(os.path.normpath(f"{rel}/{n}") for n in names)
    return found


def vm_api(sock, method, path, body=None):
    code, js, raw = curl(sock, method, path, body)
    return code, raw


def make_files(root, owner):
    """A spinning kernel, a disk and an image outside the VM's list, owned
    by `owner` (the jail's uid, or the ordinary user)."""
    kernel = root / "Image"
    kernel.write_bytes(rvimage.image(rvimage.prog_spin()))
    disk, other = root / "disk.img", root / "other.img"
    for p in (disk, other):
        with open(p, "wb") as f:
            f.truncate(1 << 20)
        os.chown(p, owner, owner)
    return kernel, disk, other


def test_a_skiffd_vm_is_jailed(skiffd_bin, short_root, console_log_dir):
    kernel, disk, other = make_files(short_root, JAIL_ID)
    d = Skiffd(skiffd_bin, short_root, console_log_dir / "skiffd-jail.log")
    try:
        ok(d.sock, "POST", "/vms", tiny_def("j", kernel, disk), status=201)
        action(d.sock, "j", "InstanceStart")
        pid = get(d.sock, "/vms/j")["pid"]
        st = status_fields(pid)
        assert st["Uid"][:3] == [str(JAIL_ID)] * 3 and st["Gid"][:3] == [str(JAIL_ID)] * 3, st
        assert st["NoNewPrivs"] == ["1"] and st["Seccomp"] == ["2"], st
        for ns in ("mnt", "pid", "ipc", "uts"):
            assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
        vmdir = d.state / "vms" / "j"
        run = vmdir / "run"
        want = {str(kernel), str(disk), "/dev/null", str(run / "api.sock"), str(run / "console.sock")}
        files = files_under(f"/proc/{pid}/root")
        # metrics.json appears in run/ once the VMM flushes its metrics.
        assert want <= files and files - want <= {str(run / "metrics.json")}, files
        for outside in (other, vmdir / "vm.json", vmdir / "config.json", vmdir / "console.log"):
            assert str(outside) not in files, outside

        # On its own API socket (skiffd would bring the file in first) the
        # VMM cannot see a host image outside its list.
        code, text = vm_api(run / "api.sock", "PATCH", "/drives/d",
                            {"drive_id": "d", "path_on_host": str(other)})
        assert code == 400 and "No such file" in text, (code, text)

        # A snapshot through skiffd goes outside the jail; a VM restored
        # from it runs, jailed too.
        snap = short_root / "snap"
        ok(d.sock, "PUT", "/vms/j/snapshot", {"dir": str(snap)})
        assert {p.name for p in snap.iterdir()} >= {"vmstate", "memory", "drive-d.img"}
        assert not list(run.glob("snapshot/*")), list(run.glob("snapshot/*"))
        ok(d.sock, "POST", "/vms", {"snapshot": str(snap), "id": "r"}, status=201)
        assert wait_for(lambda: get(d.sock, "/vms/r/")["state"] == "Running", 30, 0.1)
        rpid = get(d.sock, "/vms/r")["pid"]
        assert status_fields(rpid)["Uid"][0] == str(JAIL_ID)
        # Its own disk copy; the snapshot's files it loaded are gone again.
        rrun = d.state / "vms" / "r" / "run"
        files = files_under(f"/proc/{rpid}/root")
        want = {str(kernel), "/dev/null", str(rrun / "drive-d.img"), str(rrun / "api.sock"),
                str(rrun / "console.sock")}
        assert want <= files and files - want <= {str(rrun / "metrics.json")}, files
        for vm in ("j", "r"):
            action(d.sock, vm, "InstanceStop")
    finally:
        d.close()


def test_a_skiffd_vm_of_an_ordinary_user_is_under_landlock(skiffd_bin, short_root, console_log_dir):
    os.chmod(short_root, 0o755)
    home = short_root / "u"
    home.mkdir()
    os.chown(home, USER_ID, USER_ID)
    kernel, disk, other = make_files(home, USER_ID)
    wrapper = short_root / "as-user"
    wrapper.write_text(f"#!/bin/sh\nexec setpriv --reuid={USER_ID} --regid={USER_ID} --clear-groups "
                       f"{skiffd_bin} \"$@\"\n")
    wrapper.chmod(0o755)
    d = Skiffd(str(wrapper), home, console_log_dir / "skiffd-landlock.log")
    try:
        ok(d.sock, "POST", "/vms", tiny_def("l", kernel, disk), status=201)
        action(d.sock, "l", "InstanceStart")
        pid = get(d.sock, "/vms/l")["pid"]
        assert status_fields(pid)["Uid"][0] == str(USER_ID)
        # Its own disk is open; an image of the same user outside its
        # configuration is not reachable.
        fails(d.sock, "PATCH", "/vms/l/drives/d", {"drive_id": "d", "path_on_host": str(other)},
              "Permission denied")
        # A snapshot into a directory the VMM could not write: skiffd moves
        # it there; a VM restored from it runs.
        snap = home / "snap"
        ok(d.sock, "PUT", "/vms/l/snapshot", {"dir": str(snap)})
        assert (snap / "vmstate").is_file() and (snap / "memory").is_file()
        ok(d.sock, "POST", "/vms", {"snapshot": str(snap), "id": "r"}, status=201)
        assert wait_for(lambda: get(d.sock, "/vms/r/")["state"] == "Running", 30, 0.1)
        for vm in ("l", "r"):
            action(d.sock, vm, "InstanceStop")
    finally:
        d.close()

"""skiffd confines every VM it starts (docs/security.md, "skiffd's VMs"),
with tiny hand-made guests (rvimage.py) so each start takes well under a
second.

- skiffd as root jails each VMM: the process that runs the guest (the
  `pid` skiffd reports) runs as the VM's own uid (`jail_uid`, from skiffd's
  range) and gid 65532 with NoNewPrivs and seccomp,
  in mount, PID, IPC and UTS namespaces other than skiffd's; its
  `/proc/PID/root` holds exactly its kernel, its disk, its run/ directory
  (sockets, metrics) and /dev/null, none of skiffd's own files (vm.json,
  config.json, console.log) and no other host file; asked directly on its
  own API socket (not through skiffd, which would bring the file in) to
  swap its disk for a host image, it cannot find it. A snapshot through
  skiffd lands in a directory outside the jail, and a VM restored from it
  runs, jailed too, as a uid of its own, with its kernel (brought in: a
  restore starts without a configuration) and its own disk copy in its
  run/, and maps the snapshot's memory file itself (a link, not a copy).
- Two jailed VMs run as different uids, so the one's uid can neither
  signal the other's VMM, nor look into its root through /proc, nor read
  its run/ directory or its console log. A VM keeps its uid across a
  restart of skiffd; with a range of one uid a second VM is refused with a
  clear message until the first is deleted, and its successor gets the
  uid again. When skiffd's range moves, a VM gets a uid of the new range
  at load, and its next start hands it its run/ (a snapshot's leftover
  directory): its next snapshot works.
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
from test_jail import files_under, status_fields
from test_skiffd import (JAIL_GID, JAIL_UID_BASE, Skiffd, action, curl, fails, for_vmm, get, ok,  # noqa: F401
                         short_root, skiffd_bin)

USER_ID = 65533   # the ordinary user of the Landlock test

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the jail and setpriv need root")


def tiny_def(vm_id, kernel, disk):
    return {"id": vm_id, "boot-source": {"kernel_image_path": str(kernel)},
            "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
            "drives": [{"drive_id": "d", "path_on_host": str(disk), "is_root_device": False,
                        "is_read_only": False, "format": "raw"}]}


def vm_api(sock, method, path, body=None):
    code, js, raw = curl(sock, method, path, body)
    return code, raw


def make_files(root, owner=None, names=("disk.img", "other.img")):
    """A spinning kernel and images (a disk, one outside the VM's list),
    owned by `owner` (the ordinary user), else writable by the jail's group."""
    kernel = root / "Image"
    kernel.write_bytes(rvimage.image(rvimage.prog_spin()))
    imgs = [root / n for n in names]
    for p in imgs:
        with open(p, "wb") as f:
            f.truncate(1 << 20)
        if owner is None:
            for_vmm(p)
        else:
            os.chown(p, owner, owner)
    return (kernel, *imgs)


def mapped_inodes(pid):
    """(device, inode) of every file process `pid` maps."""
    out = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 5 and fields[4] != "0":
                major, minor = (int(x, 16) for x in fields[3].split(":"))
                out.add((os.makedev(major, minor), int(fields[4])))
    return out


def test_a_skiffd_vm_is_jailed(skiffd_bin, short_root, console_log_dir):
    kernel, disk, other = make_files(short_root)
    d = Skiffd(skiffd_bin, short_root, console_log_dir / "skiffd-jail.log")
    try:
        ok(d.sock, "POST", "/vms", tiny_def("j", kernel, disk), status=201)
        action(d.sock, "j", "InstanceStart")
        info = get(d.sock, "/vms/j")
        pid, uid = info["pid"], info["jail_uid"]
        assert JAIL_UID_BASE <= uid < JAIL_UID_BASE + 65536, info
        st = status_fields(pid)
        assert st["Uid"][:3] == [str(uid)] * 3 and st["Gid"][:3] == [str(JAIL_GID)] * 3, st
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
        rinfo = get(d.sock, "/vms/r")
        rpid = rinfo["pid"]
        assert rinfo["jail_uid"] != uid and status_fields(rpid)["Uid"][0] == str(rinfo["jail_uid"]), rinfo
        # Its own disk copy; the snapshot's files it loaded are gone again.
        rrun = d.state / "vms" / "r" / "run"
        files = files_under(f"/proc/{rpid}/root")
        want = {str(kernel), "/dev/null", str(rrun / "drive-d.img"), str(rrun / "api.sock"),
                str(rrun / "console.sock")}
        assert want <= files and files - want <= {str(rrun / "metrics.json")}, files
        # It maps the snapshot's memory file itself (linked into its run/,
        # not copied: a restore reads nothing, clones share what they do
        # not write); the file is skiffd's, read-only to the jails' group.
        mem = os.stat(snap / "memory")
        assert (mem.st_uid, mem.st_gid, mem.st_mode & 0o777) == (0, JAIL_GID, 0o640), mem
        assert mapped_inodes(rpid) & {(mem.st_dev, mem.st_ino)}, (mapped_inodes(rpid), mem)
        for vm in ("j", "r"):
            action(d.sock, vm, "InstanceStop")
    finally:
        d.close()


# Run as the uid of one VM (and the jail's group, no other): what can it
# do to the other VM? Each attempt's outcome, by name.
PROBE = r"""
import json, os, sys
pid, run, vmdir, uid, gid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
os.chdir(vmdir)   # as root: skiffd's state directory is closed to the VMs' uids
os.setgroups([])
os.setresgid(gid, gid, gid)
os.setresuid(uid, uid, uid)
out = {}
def attempt(name, f):
    try:
        f()
        out[name] = "done"
    except OSError as e:
        out[name] = e.strerror
attempt("signal", lambda: os.kill(int(pid), 0))
attempt("proc_root", lambda: os.listdir(f"/proc/{pid}/root/"))
attempt("run_dir", lambda: os.listdir(run))
attempt("console_log", lambda: open("console.log", "rb").close())
print(json.dumps(out))
"""


def test_two_jailed_vms_cannot_reach_each_other(skiffd_bin, short_root, console_log_dir):
    kernel, disk_a, disk_b, disk_c = make_files(short_root, names=("a.img", "b.img", "c.img"))
    log = console_log_dir / "skiffd-jail-uids.log"
    d = Skiffd(skiffd_bin, short_root, log)
    try:
        for vm, disk in (("a", disk_a), ("b", disk_b)):
            ok(d.sock, "POST", "/vms", tiny_def(vm, kernel, disk), status=201)
            action(d.sock, vm, "InstanceStart")
        a, b = get(d.sock, "/vms/a"), get(d.sock, "/vms/b")
        assert a["jail_uid"] != b["jail_uid"], (a["jail_uid"], b["jail_uid"])
        for info in (a, b):
            assert status_fields(info["pid"])["Uid"][0] == str(info["jail_uid"]), info
        vmdir_b = d.state / "vms" / "b"
        probe = subprocess.run(["/usr/bin/python3", "-c", PROBE, str(b["pid"]), "run", str(vmdir_b),
                                str(a["jail_uid"]), str(JAIL_GID)],
                               capture_output=True, text=True, timeout=30)
        assert probe.returncode == 0, probe.stderr
        got = json.loads(probe.stdout)
        assert got == {"signal": "Operation not permitted", "proc_root": "Permission denied",
                       "run_dir": "Permission denied", "console_log": "Permission denied"}, got

        # b keeps its uid across a restart of skiffd, though a's (lower,
        # handed out first) is free by then; so does a new VM's start.
        action(d.sock, "a", "InstanceStop")
        ok(d.sock, "DELETE", "/vms/a")
        d.kill9()
        d.start()
        assert get(d.sock, "/vms/b")["jail_uid"] == b["jail_uid"]
        action(d.sock, "b", "InstanceStop")
        action(d.sock, "b", "InstanceStart")
        b2 = get(d.sock, "/vms/b")
        assert b2["jail_uid"] == b["jail_uid"] and status_fields(b2["pid"])["Uid"][0] == str(b["jail_uid"])
        # A snapshot leaves run/snapshot/ behind, its uid's.
        ok(d.sock, "PUT", "/vms/b/snapshot", {"dir": str(short_root / "snap1")})
        action(d.sock, "b", "InstanceStop")
        d.close()

        # skiffd's range moved: b gets a uid of the new range at load, and
        # its next start hands it everything in its run/, so the VMM (as
        # the new uid) can write its next snapshot there.
        base2 = JAIL_UID_BASE + 1000
        d = Skiffd(skiffd_bin, short_root, log, extra=["--jail-uid-base", str(base2)])
        assert get(d.sock, "/vms/b")["jail_uid"] == base2
        action(d.sock, "b", "InstanceStart")
        b3 = get(d.sock, "/vms/b")
        assert status_fields(b3["pid"])["Uid"][0] == str(base2)
        run_b = vmdir_b / "run"
        owners = {str(p): p.lstat().st_uid for p in [run_b, *run_b.rglob("*")]}
        assert str(run_b / "snapshot") in owners and set(owners.values()) == {base2}, owners
        ok(d.sock, "PUT", "/vms/b/snapshot", {"dir": str(short_root / "snap2")})
        action(d.sock, "b", "InstanceStop")
    finally:
        d.close()

    # One uid in the range: one VM. A second is refused until the first
    # is deleted; the uid is then the next VM's.
    base = 1879113728
    (short_root / "one").mkdir()
    d = Skiffd(skiffd_bin, short_root / "one", log, extra=["--jail-uid-base", str(base),
                                                          "--jail-uid-count", "1"])
    try:
        ok(d.sock, "POST", "/vms", tiny_def("x", kernel, disk_a), status=201)
        assert get(d.sock, "/vms/x")["jail_uid"] == base
        fails(d.sock, "POST", "/vms", tiny_def("y", kernel, disk_b), "no jail uid is free")
        ok(d.sock, "DELETE", "/vms/x", status=204)
        ok(d.sock, "POST", "/vms", tiny_def("y", kernel, disk_c), status=201)
        assert get(d.sock, "/vms/y")["jail_uid"] == base
    finally:
        d.close()


def fake_image(cache, name="fake"):
    """A system image in cache/skiff/images/NAME as `skiff image create`
    leaves it (image.json, a qcow2 disk, kernel, initrd), with a spinning
    kernel: enough for skiffd to make a VM of it and start it."""
    img = cache / "skiff" / "images" / name
    img.mkdir(parents=True)
    (img / "Image").write_bytes(rvimage.image(rvimage.prog_spin()))
    (img / "initrd.cpio.gz").write_bytes(b"\0" * 512)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img / "disk.qcow2"), "1M"], check=True)
    (img / "image.json").write_text(json.dumps({
        "format": "skiff-image 1", "name": name, "disk": "disk.qcow2", "disk_format": "qcow2",
        "kernel": "Image", "initrd": "initrd.cpio.gz", "cmdline": "console=ttyS0"}))
    for p in [cache, *cache.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return img


def test_an_image_vm_jail_holds_none_of_skiffds_files(skiffd_bin, short_root, console_log_dir, monkeypatch):
    """A VM made from a system image follows its overlay's backing file,
    so the overlay's directory is in its jail (read only): that directory
    is overlay/, holding the overlay alone, not the VM's directory. A VM an
    older skiffd made (overlay beside vm.json) gets it moved there at its
    next start."""
    cache = short_root / "cache"
    img = fake_image(cache)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    d = Skiffd(skiffd_bin, short_root, console_log_dir / "skiffd-jail-image.log")
    try:
        for vm in ("i", "o"):
            made = ok(d.sock, "POST", "/vms", {"id": vm, "image": "fake"}, status=201)
            assert made["config"]["drives"][0]["path_on_host"] == \
                str(d.state / "vms" / vm / "overlay" / "disk.qcow2"), made["config"]["drives"]
        # "o" as an older skiffd left it: the overlay beside vm.json.
        odir = d.state / "vms" / "o"
        (odir / "overlay" / "disk.qcow2").rename(odir / "disk.qcow2")
        (odir / "overlay").rmdir()
        doc = json.loads((odir / "vm.json").read_text())
        doc["config"]["drives"][0]["path_on_host"] = str(odir / "disk.qcow2")
        (odir / "vm.json").write_text(json.dumps(doc))
        d.kill9()
        d.start()
        for vm in ("i", "o"):
            vmdir = d.state / "vms" / vm
            overlay = vmdir / "overlay" / "disk.qcow2"
            action(d.sock, vm, "InstanceStart")
            info = get(d.sock, f"/vms/{vm}")
            assert info["config"]["drives"][0]["path_on_host"] == str(overlay), info["config"]["drives"]
            assert json.loads((vmdir / "vm.json").read_text())["config"]["drives"][0]["path_on_host"] == \
                str(overlay)
            files = files_under(f"/proc/{info['pid']}/root")
            assert str(overlay) in files and str(img / "disk.qcow2") in files, files
            mine = {p for p in files if p.startswith(str(vmdir) + "/")}
            run = str(vmdir / "run") + "/"
            assert {p for p in mine if not p.startswith(run)} == {str(overlay)}, mine
            # Not even the names of skiffd's files show (the VM's
            # directory is not bound in: only overlay/ and run/ are).
            assert sorted(os.listdir(f"/proc/{info['pid']}/root{vmdir}")) == ["overlay", "run"]
            assert os.stat(vmdir).st_mode & 0o777 == 0o700
            assert os.stat(overlay).st_uid == info["jail_uid"]
            action(d.sock, vm, "InstanceStop")
        assert not (d.state / "vms" / "o" / "disk.qcow2").exists()
        ok(d.sock, "DELETE", "/vms/i")
        assert not (d.state / "vms" / "i").exists()
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

"""virtio-9p through the real guest, with one boot for every check: a
writable share (`--share DIR`, mounted by the guest's init at
/mnt/share0) and a read-only one (`--share DIR2,tag=ro,ro`, at /mnt/ro).

From the guest: files and directories created, read, written, appended,
renamed, linked, chmod'ed, touched and deleted, each checked on the host,
and host changes seen by the guest; large files in both directions
(checksums); a tar of a small tree written into the share, extracted back
into the guest and into the share (checked on the host); escape attempts
(a symlink to / made in the share, `..` past the mount point) that must
stay inside the guest's own file system; and the read-only share refusing
every change with "Read-only file system" while staying readable."""
import hashlib
import os
import stat
import subprocess

import pytest


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


@pytest.fixture(scope="module")
def shares(tmp_path_factory):
    d = tmp_path_factory.mktemp("9p")
    rw = d / "rw"
    ro = d / "ro"
    rw.mkdir()
    ro.mkdir()
    (rw / "host.txt").write_text("hello from the host\n")
    (rw / "hostdir").mkdir()
    (rw / "hostdir" / "inner.txt").write_text("inner\n")
    with open(rw / "hostbig.bin", "wb") as f:
        f.write(os.urandom(3 * 1024 * 1024 + 123))
    (ro / "keep.txt").write_text("keep me\n")
    (ro / "sub").mkdir()
    (ro / "sub" / "deep.txt").write_text("deep\n")
    # Something next to the shares the guest must never reach.
    (d / "secret.txt").write_text("outside the share\n")
    return {"dir": d, "rw": rw, "ro": ro}


@pytest.fixture(scope="module")
def guest(boot_guest, shares):
    g = boot_guest("9p", "--share", str(shares["rw"]), "--share", f"{shares['ro']},tag=ro,ro")
    yield g
    g.close()


@pytest.mark.parametrize("args, message", [
    (["--share", "/nonexistent-skiff-dir"], "No such file or directory"),
    (["--share", "/etc/hostname"], "is not a directory"),
    (["--share", "/tmp,tag=.hidden"], "tag must be 1 to 64"),
    (["--share", "/tmp,tag=a b"], "tag must be 1 to 64"),
    (["--share", "/tmp,tag=x", "--share", "/tmp,tag=x"], "tag x is already used"),
    (["--share", "/tmp,rw"], "unknown setting 'rw'"),
])
def test_bad_share_options(skiff_bin, args, message):
    """Refused before anything boots: exit status 64 and one line naming it."""
    r = subprocess.run([skiff_bin, "run", *args, "--kernel", "/nonexistent-kernel"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 64, r.stderr
    assert message in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_mounted(guest):
    out = guest.run("mount | grep ' type 9p '")
    assert "share0 on /mnt/share0 type 9p" in out, out
    assert "ro on /mnt/ro type 9p" in out, out
    assert "trans=virtio" in out


def test_host_files_seen(guest, shares):
    assert guest.run("cat /mnt/share0/host.txt") == "hello from the host"
    assert guest.run("cat /mnt/share0/hostdir/inner.txt") == "inner"
    names = guest.run("ls /mnt/share0").split()
    assert {"host.txt", "hostdir", "hostbig.bin"} <= set(names)
    # A change on the host is visible at once (the guest mounts without a cache).
    (shares["rw"] / "host.txt").write_text("changed on the host\n")
    assert guest.run("cat /mnt/share0/host.txt") == "changed on the host"
    size = guest.run("wc -c < /mnt/share0/hostbig.bin").strip()
    assert int(size) == 3 * 1024 * 1024 + 123
    assert guest.run("md5sum /mnt/share0/hostbig.bin").split()[0] == md5(shares["rw"] / "hostbig.bin")


def test_create_write_rename_delete(guest, shares):
    rw = shares["rw"]
    guest.run("echo from the guest > /mnt/share0/g.txt")
    assert (rw / "g.txt").read_text() == "from the guest\n"
    guest.run("echo more >> /mnt/share0/g.txt")
    assert (rw / "g.txt").read_text() == "from the guest\nmore\n"
    guest.run("mkdir -p /mnt/share0/a/b/c && echo deep > /mnt/share0/a/b/c/f.txt")
    assert (rw / "a" / "b" / "c" / "f.txt").read_text() == "deep\n"
    guest.run("mv /mnt/share0/g.txt /mnt/share0/a/moved.txt")
    assert not (rw / "g.txt").exists()
    assert (rw / "a" / "moved.txt").read_text() == "from the guest\nmore\n"
    guest.run("mv /mnt/share0/a/b /mnt/share0/b2")
    assert (rw / "b2" / "c" / "f.txt").read_text() == "deep\n"
    # The guest can still use the renamed directory's files.
    assert guest.run("cat /mnt/share0/b2/c/f.txt") == "deep"
    guest.run("ln -s moved.txt /mnt/share0/a/sym && ln /mnt/share0/a/moved.txt /mnt/share0/a/hard")
    assert os.readlink(rw / "a" / "sym") == "moved.txt"
    assert os.stat(rw / "a" / "hard").st_ino == os.stat(rw / "a" / "moved.txt").st_ino
    assert guest.run("cat /mnt/share0/a/sym") == "from the guest\nmore"
    assert guest.run("readlink /mnt/share0/a/sym") == "moved.txt"
    guest.run("chmod 640 /mnt/share0/a/moved.txt")
    assert stat.S_IMODE(os.stat(rw / "a" / "moved.txt").st_mode) == 0o640
    guest.run("touch -t 200001020304 /mnt/share0/a/moved.txt")
    mtime = os.stat(rw / "a" / "moved.txt").st_mtime
    guest_mtime = int(guest.run("date -r /mnt/share0/a/moved.txt +%s"))
    assert int(mtime) == guest_mtime
    assert 946700000 < mtime < 946800000   # 2000-01-02
    guest.run(": > /mnt/share0/a/moved.txt")
    assert (rw / "a" / "moved.txt").stat().st_size == 0
    guest.run("rm /mnt/share0/a/moved.txt /mnt/share0/a/hard /mnt/share0/a/sym")
    assert not (rw / "a" / "moved.txt").exists()
    guest.run("rmdir /mnt/share0/a && rm -r /mnt/share0/b2")
    assert not (rw / "a").exists() and not (rw / "b2").exists()
    # Host-made directories go too.
    guest.run("rm -r /mnt/share0/hostdir")
    assert not (rw / "hostdir").exists()


def test_large_write(guest, shares):
    guest.run("dd if=/dev/urandom of=/mnt/share0/big.bin bs=65536 count=80 2>/dev/null", timeout=120)
    want = guest.run("md5sum /mnt/share0/big.bin", timeout=120).split()[0]
    assert os.path.getsize(shares["rw"] / "big.bin") == 80 * 65536
    assert md5(shares["rw"] / "big.bin") == want
    guest.run("rm /mnt/share0/big.bin")


def test_tar_round_trip(guest, shares):
    rw = shares["rw"]
    guest.run("rm -rf /tmp/src && mkdir -p /tmp/src/d1/d2 /tmp/src/empty && "
              "echo one > /tmp/src/one.txt && seq 1 3000 > /tmp/src/d1/numbers && "
              "echo two > /tmp/src/d1/d2/two.txt && ln -s ../one.txt /tmp/src/d1/link && "
              "chmod 700 /tmp/src/d1/d2")
    guest.run("tar -cf /mnt/share0/tree.tar -C /tmp/src .", timeout=120)
    assert (rw / "tree.tar").stat().st_size > 10000
    # Back into the guest's own file system, from the share.
    guest.run("rm -rf /tmp/back && mkdir /tmp/back && tar -xf /mnt/share0/tree.tar -C /tmp/back",
              timeout=120)
    listing = "cd {} && find . | sort && find . -type f | sort | xargs md5sum"
    assert guest.run(listing.format("/tmp/back")) == guest.run(listing.format("/tmp/src"))
    # And extracted into the share: checked on the host.
    guest.run("mkdir /mnt/share0/ext && tar -xf /mnt/share0/tree.tar -C /mnt/share0/ext", timeout=120)
    ext = rw / "ext"
    assert (ext / "one.txt").read_text() == "one\n"
    assert (ext / "d1" / "numbers").read_text() == "".join(f"{i}\n" for i in range(1, 3001))
    assert (ext / "d1" / "d2" / "two.txt").read_text() == "two\n"
    assert os.readlink(ext / "d1" / "link") == "../one.txt"
    assert (ext / "empty").is_dir()
    assert stat.S_IMODE(os.stat(ext / "d1" / "d2").st_mode) == 0o700
    assert guest.run(listing.format("/mnt/share0/ext")) == guest.run(listing.format("/tmp/src"))
    # A tar of the share made in the guest holds the same bytes.
    guest.run("tar -cf /tmp/again.tar -C /mnt/share0/ext . && rm -rf /tmp/again && mkdir /tmp/again && "
              "tar -xf /tmp/again.tar -C /tmp/again", timeout=120)
    assert guest.run(listing.format("/tmp/again")) == guest.run(listing.format("/tmp/src"))
    guest.run("rm -r /mnt/share0/ext /mnt/share0/tree.tar")
    assert not ext.exists()


def test_escapes_stay_in_the_guest(guest, shares):
    rw = shares["rw"]
    # A symlink to / made in the share points into the guest's own root.
    guest.run("ln -s / /mnt/share0/escape")
    assert os.readlink(rw / "escape") == "/"
    through_link = guest.run("ls /mnt/share0/escape/etc").split()
    guest_etc = guest.run("ls /etc").split()
    assert through_link == guest_etc
    host_only = set(os.listdir("/etc")) - set(guest_etc)
    assert host_only, "the host's /etc should hold something the guest's does not"
    assert not host_only & set(through_link)
    guest_hostname = guest.run("cat /etc/hostname")
    assert guest.run("cat /mnt/share0/escape/etc/hostname") == guest_hostname
    # ".." past the mount point is the guest's /, not the host's.
    assert guest.run("cat /mnt/share0/../../etc/hostname") == guest_hostname
    assert set(guest.run("ls /mnt/share0/..").split()) >= {"share0", "ro"}
    # Nothing of the host directory around the share is reachable.
    status, out = guest.run_status("cat /mnt/share0/../secret.txt")
    assert status != 0 and "outside the share" not in out
    # Absolute and relative symlinks made on the host are resolved by the guest too.
    os.symlink("/etc/passwd", rw / "host_abs")
    os.symlink("../secret.txt", rw / "host_rel")
    assert guest.run("cat /mnt/share0/host_abs") == guest.run("cat /etc/passwd")
    status, out = guest.run_status("cat /mnt/share0/host_rel")
    assert status != 0 and "outside the share" not in out
    guest.run("rm /mnt/share0/escape /mnt/share0/host_abs /mnt/share0/host_rel")
    assert (shares["dir"] / "secret.txt").read_text() == "outside the share\n"
    assert not (rw / "escape").exists()


def test_read_only_share(guest, shares):
    ro = shares["ro"]
    assert guest.run("cat /mnt/ro/keep.txt /mnt/ro/sub/deep.txt") == "keep me\ndeep"
    for cmd in ("touch /mnt/ro/new", "echo x > /mnt/ro/keep.txt", "echo x >> /mnt/ro/keep.txt",
                "mkdir /mnt/ro/newdir", "rm /mnt/ro/keep.txt", "mv /mnt/ro/keep.txt /mnt/ro/moved",
                "ln -s keep.txt /mnt/ro/link", "chmod 777 /mnt/ro/keep.txt", "rmdir /mnt/ro/sub",
                "touch /mnt/ro/keep.txt"):
        status, out = guest.run_status(cmd)
        assert status != 0, f"`{cmd}` succeeded on a read-only share"
        assert "Read-only file system" in out, f"`{cmd}`: {out}"
    assert sorted(os.listdir(ro)) == ["keep.txt", "sub"]
    assert (ro / "keep.txt").read_text() == "keep me\n"
    assert stat.S_IMODE(os.stat(ro / "keep.txt").st_mode) == 0o644


def test_kernel_log_clean(guest):
    log = guest.run("dmesg")
    bad = [line for line in log.splitlines()
           if "9p" in line.lower() and ("error" in line.lower() or "warn" in line.lower())]
    assert not bad, "\n".join(bad)
    assert not [line for line in log.splitlines() if "BUG" in line or "Oops" in line]


def test_poweroff(guest):
    assert guest.poweroff() == 0

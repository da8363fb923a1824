"""virtio-blk through the real guest: an ext4 image made on the host and
written by the guest (read back with debugfs, e2fsck clean), a read-only
disk, a serial number, a qcow2 overlay over a shared base (qemu-img check
clean, converts to the bytes the guest wrote, base unchanged), bandwidth and
request-rate limits against an unlimited disk, a guest flush reaching the
backing file's storage (fdatasync, seen with strace) and the data there after
SIGKILL, and a disk as the root filesystem. One boot serves all checks but
the root-disk one."""
import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

MiB = 1 << 20
IOPS = 40          # requests a second on the iops-limited disk (vdf)


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def disks(tmp_path_factory):
    d = tmp_path_factory.mktemp("blk")
    src = d / "src"
    src.mkdir()
    (src / "hello.txt").write_text("hello from the host\n")
    ext4 = d / "ext4.img"
    sh("mkfs.ext4", "-q", "-F", "-d", str(src), str(ext4), "64M")
    ro = d / "ro.img"
    sh("mkfs.ext4", "-q", "-F", "-d", str(src), str(ro), "16M")
    base = d / "base.qcow2"
    raw_base = d / "base.raw"
    with open(raw_base, "wb") as f:
        for k in range(8):
            f.write(bytes([0x40 + k]) * MiB)
    sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw_base), str(base))
    overlay = d / "overlay.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(overlay))
    durable = d / "durable.img"
    with open(durable, "wb") as f:
        f.truncate(16 * MiB)
    limited = d / "limited.img"
    with open(limited, "wb") as f:
        f.truncate(32 * MiB)
    iops = d / "iops.img"
    with open(iops, "wb") as f:
        f.truncate(4 * MiB)
    return {"dir": d, "ext4": ext4, "ro": ro, "base": base, "raw_base": raw_base,
            "overlay": overlay, "durable": durable, "limited": limited, "iops": iops,
            "base_sha": sha256(base)}


@pytest.fixture(scope="module")
def guest(boot_guest, disks):
    g = boot_guest("blk",
                   "--disk", f"{disks['ext4']},serial=skiff-serial-1",
                   "--disk", f"{disks['ro']},ro",
                   "--disk", f"{disks['overlay']},format=qcow2,backing=on",
                   "--disk", f"{disks['durable']},format=raw",
                   "--disk", f"{disks['limited']},format=raw,bw=2M",
                   "--disk", f"{disks['iops']},format=raw,iops={IOPS}")
    yield g
    g.close()


def test_devices_and_serial(guest):
    out = guest.run("cat /sys/block/vda/size /sys/block/vdb/ro /sys/block/vdc/size")
    assert out.split() == [str(64 * MiB // 512), "1", str(8 * MiB // 512)]
    assert guest.run("cat /sys/block/vda/serial") == "skiff-serial-1"


def test_ext4_written_by_guest(guest, disks):
    guest.run("mount /dev/vda /mnt")
    assert guest.run("cat /mnt/hello.txt") == "hello from the host"
    guest.run("mkdir /mnt/dir && seq 1 20000 > /mnt/dir/numbers && echo guest-wrote-this > /mnt/g.txt")
    guest.run("sync && umount /mnt")
    # The guest has unmounted: the image is consistent on the host now.
    out = sh("debugfs", "-R", "cat /g.txt", str(disks["ext4"])).stdout
    assert out == "guest-wrote-this\n"
    numbers = sh("debugfs", "-R", "cat /dir/numbers", str(disks["ext4"])).stdout
    assert numbers == "".join(f"{k}\n" for k in range(1, 20001))
    fsck = subprocess.run(["e2fsck", "-fn", str(disks["ext4"])], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_read_only_disk(guest):
    status, out = guest.run_status("dd if=/dev/zero of=/dev/vdb bs=4096 count=1 oflag=direct 2>&1")
    assert status != 0, out
    status, out = guest.run_status("mount -o rw /dev/vdb /mnt 2>&1")
    if status == 0:  # the kernel may fall back to a read-only mount
        assert " ro," in guest.run("grep ' /mnt ' /proc/mounts") + ","
        guest.run("umount /mnt")


def test_qcow2_overlay(guest, disks):
    # Overwrite MiB 2 and half of MiB 5 with new bytes; the rest stays the base's.
    # (Patterns go through files: dd reading a pipe may get short blocks.)
    guest.run("dd if=/dev/zero bs=1M count=1 2>/dev/null | tr '\\000' 'Z' > /tmp/z")
    guest.run("dd if=/dev/zero bs=512K count=1 2>/dev/null | tr '\\000' 'Y' > /tmp/y")
    guest.run("dd if=/tmp/z of=/dev/vdc bs=1M seek=2 count=1 oflag=direct 2>/dev/null")
    guest.run("dd if=/tmp/y of=/dev/vdc bs=512K seek=10 count=1 oflag=direct 2>/dev/null")
    guest.run("sync")
    # The guest reads back what it wrote and the base elsewhere.
    assert guest.run("dd if=/dev/vdc bs=1M skip=2 count=1 iflag=direct 2>/dev/null | md5sum | cut -c1-32") == \
        hashlib.md5(b"Z" * MiB).hexdigest()
    assert guest.run("dd if=/dev/vdc bs=1M skip=7 count=1 iflag=direct 2>/dev/null | md5sum | cut -c1-32") == \
        hashlib.md5(bytes([0x47]) * MiB).hexdigest()
    check = subprocess.run(["qemu-img", "check", str(disks["overlay"])], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    out = disks["dir"] / "overlay.raw"
    sh("qemu-img", "convert", "-O", "raw", str(disks["overlay"]), str(out))
    expected = bytearray(open(disks["raw_base"], "rb").read())
    expected[2 * MiB:3 * MiB] = b"Z" * MiB
    expected[5 * MiB:5 * MiB + MiB // 2] = b"Y" * (MiB // 2)
    assert open(out, "rb").read() == bytes(expected)
    assert sha256(disks["base"]) == disks["base_sha"], "the base image changed"


def timed(guest, cmd, timeout=180):
    t0 = time.monotonic()
    guest.run(cmd, timeout=timeout)
    return time.monotonic() - t0


def test_rate_limit(guest):
    """A 20 MiB read from a disk limited to 2 MiB/s: the first 2 MiB pass
    from the full bucket, the other 18 take at least 9 s (a lower bound:
    the limited read is never timed from above), while 16 MiB from a disk
    without a limit (vdd) in the same guest take less than the limit would
    allow them (7 s)."""
    read = "dd if=/dev/{} of=/dev/null bs=1M count=16 iflag=direct 2>/dev/null"
    free = timed(guest, read.format("vdd"))
    limited = timed(guest, "dd if=/dev/vde of=/dev/null bs=1M count=20 iflag=direct 2>/dev/null")
    print(f"\n16 MiB unlimited: {free:.1f} s; 20 MiB at bw=2M: {limited:.1f} s")
    assert limited >= 9, f"20 MiB at 2 MiB/s took {limited:.1f} s"
    # What the limit would make of those 16 MiB: 2 from the bucket, 14 at 2 MiB/s.
    assert free < 7, f"16 MiB from the disk without a limit took {free:.1f} s, as long as the limit allows"


def test_iops_limit(guest):
    """240 single-block direct reads from a disk limited to IOPS requests a
    second: the first IOPS pass from the full bucket, the rest take at
    least (240 - IOPS) / IOPS s, while the same reads from a disk without a
    limit (vdd) take less than that."""
    n = 240
    read = f"dd if=/dev/{{}} of=/dev/null bs=4096 count={n} iflag=direct 2>/dev/null"
    free = timed(guest, read.format("vdd"))
    limited = timed(guest, read.format("vdf"))
    bound = (n - IOPS) / IOPS
    print(f"\n{n} reads unlimited: {free:.1f} s; at iops={IOPS}: {limited:.1f} s (bound {bound:.1f} s)")
    assert limited >= bound, f"{n} requests at {IOPS}/s took {limited:.1f} s"
    assert free < bound, f"{n} reads from the disk without a limit took {free:.1f} s, as long as the limit allows"


def traced_threads(pid):
    """How many of the process's threads have a tracer attached."""
    n = 0
    for task in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(task) as f:
                n += any(line.startswith("TracerPid:") and line.split()[1] != "0" for line in f)
        except OSError:
            pass
    return n


def test_flush_reaches_storage_then_sigkill(guest, disks, tmp_path):
    """Last in this module: it kills skiff after the guest's sync.
    The device offers a volatile write cache (VIRTIO_BLK_F_FLUSH), so the
    guest's block layer sees one and flushes it.

    SIGKILL keeps the host's page cache, so the bytes being in the file
    afterwards does not show that a guest FLUSH reached the storage. strace
    watches skiff's sync calls while the guest writes (no FLUSH: no sync of
    the file) and then syncs (a FLUSH: at least one fdatasync or fsync of
    the backing file)."""
    strace = shutil.which("strace")
    assert strace, "strace is not installed (scripts/deps.sh installs it)"
    assert guest.run("cat /sys/block/vdd/queue/write_cache") == "write back"
    pid = guest.p.pid
    log = tmp_path / "sync-calls.txt"
    tracer = subprocess.Popen([strace, "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync,syncfs,sync_file_range",
                               "-o", str(log), "-p", str(pid)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        nthreads = len(os.listdir(f"/proc/{pid}/task"))
        while traced_threads(pid) < nthreads and time.monotonic() < deadline:
            assert tracer.poll() is None, f"strace could not attach: {tracer.stderr.read()}"
            time.sleep(0.1)
        assert traced_threads(pid) >= nthreads, "strace did not attach to every thread"
        name = re.escape(str(disks["durable"]))
        synced = lambda: re.findall(rf"^\d+\s+f(?:data)?sync\(\d+<{name}>\)\s+=\s+0", log.read_text(), re.M)
        guest.run("dd if=/dev/zero bs=1M count=3 2>/dev/null | tr '\\000' 'D' > /tmp/d")
        guest.run("dd if=/tmp/d of=/dev/vdd bs=1M seek=4 2>/dev/null")
        before = synced()
        # fsync of the block device: Linux sends a FLUSH (a plain `sync`
        # writes a raw device's dirty pages but flushes only file systems).
        guest.run("sync /dev/vdd")
        after = synced()
        guest.p.kill(signal.SIGKILL)
        guest.wait_exit(30)
    finally:
        tracer.wait(30)
    assert not before, f"the backing file was synced before the guest asked: {before}"
    assert after, (f"the guest's sync (a virtio-blk FLUSH) did not reach {disks['durable']} "
                   f"as an fdatasync/fsync; skiff's sync calls:\n{log.read_text()[-2000:]}")
    with open(disks["durable"], "rb") as f:
        f.seek(4 * MiB)
        assert f.read(3 * MiB) == b"D" * (3 * MiB)


def _busybox_deb():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    debs = glob.glob(os.path.join(cache, "skiff", "debs", "busybox-static_*_riscv64.deb"))
    return debs[0] if debs else None


def test_root_disk(boot_guest, skiff_bin, tmp_path):
    """A disk as the root filesystem: root=/dev/vda, the guest's init
    switches to it and runs its /sbin/init."""
    from conftest import Guest
    deb = _busybox_deb()
    assert deb, "busybox-static .deb not in the guest cache (guest/build-image.sh fetches it)"
    root = tmp_path / "root"
    sh("dpkg-deb", "-x", deb, str(root))
    for d in ("proc", "sys", "dev", "sbin", "tmp"):
        (root / d).mkdir(exist_ok=True)
    init = root / "sbin" / "init"
    init.write_text("#!/usr/bin/busybox sh\n"
                    "/usr/bin/busybox mount -t proc proc /proc\n"
                    "echo ROOTFS-INIT $(/usr/bin/busybox cat /proc/cmdline)\n"
                    "/usr/bin/busybox poweroff -f\n")
    init.chmod(0o755)
    img = tmp_path / "root.img"
    sh("mkfs.ext4", "-q", "-F", "-d", str(root), str(img), "32M")
    g = Guest(skiff_bin, ["--disk", f"{img},root"], tmp_path / "root.log", name="rootdisk")
    try:
        g._expect([r"ROOTFS-INIT [^\r\n]*root=/dev/vda rw"], 300, "the root disk's init")
        assert g.wait_exit(60) == 0
    finally:
        g.close()

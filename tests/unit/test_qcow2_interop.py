"""Interoperability and hostile-image tests for skiff's disk backends.

Images made by QEMU's tools (qemu-img, qemu-io from Debian's qemu-utils) must
read back exactly through skiff's backend (driven by tests/unit/disk_tool);
images skiff writes must pass `qemu-img check` and convert to exactly the
expected bytes; backing files must stay untouched; and every class of
malformed image must be refused at open with a message naming the problem
(or give an I/O error at access), never crash.

Run: DISK_TOOL=<build>/tests/unit/disk_tool /usr/bin/python3 -m pytest -q <this file>
"""
import fcntl
import hashlib
import os
import random
import shutil
import signal
import struct
import subprocess
import threading

import pytest

TOOL = os.environ.get("DISK_TOOL", "")
MiB = 1 << 20


@pytest.fixture(autouse=True, scope="session")
def tools_present():
    """Without disk_tool or QEMU's tools nothing here can run: that is a
    failure (meson would count a wholly skipped run as a pass)."""
    if not TOOL or not os.access(TOOL, os.X_OK):
        pytest.fail("DISK_TOOL is not set to the built disk_tool (meson test sets it)", pytrace=False)
    for t in ("qemu-img", "qemu-io"):
        if shutil.which(t) is None:
            pytest.fail(f"{t} is not installed (Debian package qemu-utils)", pytrace=False)


# ---- helpers ----

def run(*args, check=True, stdin=None, cwd=None):
    p = subprocess.run([str(a) for a in args], input=stdin, capture_output=True, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return p


def tool(*args, **kw):
    """disk_tool with backing chains allowed beneath the image's directory
    (-b); the tests of that rule call TOOL themselves."""
    return run(TOOL, "-b", *args, **kw)


def tool_fails(*args, **kw):
    """Runs disk_tool expecting a clean refusal: exit status 1, a message."""
    p = run(TOOL, "-b", *args, check=False, **kw)
    assert p.returncode == 1, f"expected exit 1, got {p.returncode}: {p.stderr!r}"
    return p.stderr.decode(errors="replace")


def qemu_img(*args):
    return run("qemu-img", *args)


def qemu_io(img, cmd, fmt="qcow2"):
    return run("qemu-io", "-f", fmt, "-c", cmd, img)


def qcheck(img):
    p = run("qemu-img", "check", img, check=False)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    return p.stdout.decode()


def to_raw(img, tmp, snapshot=None):
    out = tmp / ("conv-%d.raw" % random.randrange(1 << 30))
    args = ["convert", "-O", "raw"]
    if snapshot:
        args += ["-l", "snapshot.name=" + snapshot]
    qemu_img(*args, img, out)
    data = out.read_bytes()
    out.unlink()
    return data


def skiff_read(img, size, *opts):
    return tool(*opts, "read", img, 0, size).stdout


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def pattern(off, n, seed):
    """The bytes disk_tool's batch 'write OFF LEN SEED' writes:
    ((p + 7 * seed) mod 251 + seed) mod 256 at disk offset p."""
    period = bytes((i + seed) & 0xFF for i in range(251))
    start = (off + 7 * seed) % 251
    reps = (start + n) // 251 + 1
    return (period * reps)[start:start + n]


def compressible(n, seed=1):
    rnd = random.Random(seed)
    words = [b"skiff ", b"qcow2 ", b"cluster ", b"\x00" * 64, b"refcount ", b"riscv "]
    out = bytearray()
    while len(out) < n:
        out += rnd.choice(words)
    return bytes(out[:n])


class Model:
    """Expected disk content for a batch workload, following skiff's rules:
    write-zeroes zeros; discard zeros whole clusters (v3, or no backing)."""

    def __init__(self, data, cluster, v2_backed=False):
        self.d = bytearray(data)
        self.cs = cluster
        self.v2_backed = v2_backed

    def write(self, off, n, seed):
        self.d[off:off + n] = pattern(off, n, seed)

    def zero(self, off, n):
        self.d[off:off + n] = bytes(n)

    def discard(self, off, n):
        if self.v2_backed:
            return
        size = len(self.d)
        start = -(-off // self.cs) * self.cs
        end = (off + n) // self.cs * self.cs
        if off + n == size:
            end = size
        if end > start:
            self.d[start:end] = bytes(end - start)


def random_batch(model, rnd, nops, max_len, flush_every=7):
    size = len(model.d)
    lines = []
    for i in range(nops):
        op = rnd.random()
        n = rnd.randrange(1, max_len)
        off = rnd.randrange(0, size - 1)
        n = min(n, size - off)
        if op < 0.7:
            seed = rnd.randrange(1, 1 << 20)
            lines.append(f"write {off} {n} {seed}")
            model.write(off, n, seed)
        elif op < 0.85:
            lines.append(f"zero {off} {n}")
            model.zero(off, n)
        else:
            lines.append(f"discard {off} {n}")
            model.discard(off, n)
        if i % flush_every == 0:
            lines.append("flush")
    return ("\n".join(lines) + "\n").encode()


def patch(path, off, fmt, *vals):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(struct.pack(fmt, *vals))


def header(path):
    with open(path, "rb") as f:
        h = f.read(112)
    names = ["magic", "version", "backing_off", "backing_size", "cluster_bits", "size",
             "crypt", "l1_size", "l1_off", "rt_off", "rt_clusters", "nb_snap", "snap_off"]
    vals = struct.unpack(">IIQIIQIIQQIIQ", h[:72])
    d = dict(zip(names, vals))
    if d["version"] >= 3:
        d["incompat"], d["compat"], d["autoclear"], d["refcount_order"], d["hlen"] = \
            struct.unpack(">QQQII", h[72:104])
    return d


def read_u64(path, off):
    with open(path, "rb") as f:
        f.seek(off)
        return struct.unpack(">Q", f.read(8))[0]


# ---- images made by QEMU, read by skiff ----

def test_qemu_image_reads_back_exactly(tmp_path):
    img = tmp_path / "a.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", img, "16M")
    qemu_io(img, "write -P 0xab 0 1M")
    qemu_io(img, "write -P 0x11 3000000 70000")
    qemu_io(img, "write -z 100000 65536")
    qemu_io(img, "write -P 0x5a 16773120 4096")  # last 4 KiB
    expect = to_raw(img, tmp_path)
    assert expect[:100000] == b"\xab" * 100000
    assert skiff_read(img, 16 * MiB) == expect
    info = tool("info", img).stdout.decode()
    assert "qcow2 v3" in info and "size 16777216" in info


def test_qemu_compressed_image(tmp_path):
    src = tmp_path / "src.raw"
    data = compressible(6 * MiB)
    src.write_bytes(data)
    img = tmp_path / "c.qcow2"
    qemu_img("convert", "-c", "-f", "raw", "-O", "qcow2", src, img)
    out = qcheck(img)
    assert "compressed clusters" in out and " 0.00% compressed" not in out, out
    assert skiff_read(img, len(data)) == data
    # Writes over compressed clusters turn them into normal ones and free
    # the compressed space; the result must stay consistent.
    m = Model(data, 65536)
    rnd = random.Random(5)
    tool("batch", img, stdin=random_batch(m, rnd, 60, 200000))
    qcheck(img)
    assert to_raw(img, tmp_path) == bytes(m.d)
    assert skiff_read(img, len(data)) == bytes(m.d)


@pytest.mark.parametrize("cluster", [512, 4096, 65536, 2 * MiB])
def test_qemu_compressed_cluster_sizes(tmp_path, cluster):
    src = tmp_path / "src.raw"
    data = compressible(5 * MiB + 1234, seed=cluster)
    src.write_bytes(data)
    img = tmp_path / "c.qcow2"
    qemu_img("convert", "-c", "-f", "raw", "-O", "qcow2", "-o", f"cluster_size={cluster}", src, img)
    expect = to_raw(img, tmp_path)
    assert skiff_read(img, len(expect)) == expect


def test_overlay_over_shared_base(tmp_path):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", base, "8M")
    qemu_io(base, "write -P 0x42 0 8M")
    qemu_io(base, "write -P 0x43 65536 100")
    base_sum = sha(base)
    ov = tmp_path / "ov.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", ov)
    qemu_io(ov, "write -P 0xab 0 1M")
    expect = to_raw(ov, tmp_path)
    assert skiff_read(ov, 8 * MiB) == expect
    # Partial-cluster writes copy the rest of the cluster from the base.
    m = Model(expect, 65536)
    tool("batch", ov, stdin=random_batch(m, random.Random(1), 80, 150000))
    qcheck(ov)
    assert to_raw(ov, tmp_path) == bytes(m.d)
    assert sha(base) == base_sum, "backing file changed"
    # Two overlays over one base, each opened read-write at once.
    ov2 = tmp_path / "ov2.qcow2"
    tool("create", ov2, 0, 16, "base.qcow2", "qcow2")
    qcheck(ov2)
    assert skiff_read(ov2, 8 * MiB) == to_raw(base, tmp_path)
    with open(ov, "rb"):
        tool("batch", ov2, stdin=b"write 5 70000 9\nread 5 70000 9\n")
    assert sha(base) == base_sum


def test_backing_relative_to_overlay_directory(tmp_path):
    (tmp_path / "bases").mkdir()
    (tmp_path / "vms" / "vm1").mkdir(parents=True)
    base = tmp_path / "bases" / "base.raw"
    data = os.urandom(3 * MiB)
    base.write_bytes(data)
    ov = tmp_path / "vms" / "vm1" / "disk.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "../../bases/base.raw", "-F", "raw", ov)
    other = tmp_path / "elsewhere"
    other.mkdir()
    # Backing files are followed only when allowed, and `../../bases` lies
    # outside the overlay's directory: it must be allowed by name.
    p = run(TOOL, "read", ov, 0, len(data), check=False)
    assert p.returncode == 1 and b"followed only when allowed" in p.stderr, p.stderr
    p = run(TOOL, "-b", "read", ov, 0, len(data), check=False)
    assert p.returncode == 1 and b"is not beneath" in p.stderr, p.stderr
    p = run(TOOL, "-B", tmp_path / "bases", "read", ov, 0, len(data), cwd=other)
    assert p.stdout == data
    info = run(TOOL, "-B", tmp_path / "bases", "info", ov).stdout.decode()
    assert "backing file" in info and "raw" in info


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("losetup") is None,
                    reason="needs root and losetup for a loop device")
def test_backing_block_device_only_when_named(tmp_path):
    """A block device is a backing file only when the user names that device
    (-B /dev/loopN), not when it merely lies beneath an allowed directory."""
    data = os.urandom(MiB)
    raw = tmp_path / "dev.raw"
    raw.write_bytes(data)
    p = run("losetup", "--find", "--show", "--read-only", raw, check=False)
    if p.returncode != 0:
        pytest.skip(f"losetup failed: {p.stderr.decode()}")
    dev = p.stdout.decode().strip()
    try:
        ov = tmp_path / "ov.qcow2"
        qemu_img("create", "-q", "-f", "qcow2", "-u", "-b", dev, "-F", "raw", ov, "1M")
        err = run(TOOL, "-B", "/dev", "read", ov, 0, MiB, check=False).stderr
        assert b"is a block device" in err, err
        assert run(TOOL, "-B", dev, "read", ov, 0, MiB).stdout == data
    finally:
        run("losetup", "-d", dev, check=False)


def test_backing_format_never_probed(tmp_path):
    """A backing file whose format the image does not record is refused,
    never probed (a raw backing file a guest once wrote could read as
    qcow2 and name any host file in turn)."""
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", base, "2M")
    qemu_io(base, "write -P 0x77 0 2M")
    ov = tmp_path / "ov.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", ov, "2M")
    assert skiff_read(ov, 2 * MiB) == b"\x77" * (2 * MiB)
    # Hide the backing format extension (turn it into an unknown one).
    raw = ov.read_bytes()
    i = raw.index(struct.pack(">I", 0xE2792ACA), 0, 65536)
    patch(ov, i, ">I", 0x0BADF00D)
    refuse(ov, "base.qcow2", "never guessed", "qemu-img rebase -u")
    # The fix the message gives works.
    qemu_img("rebase", "-u", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", ov)
    assert skiff_read(ov, 2 * MiB) == b"\x77" * (2 * MiB)


def test_backing_smaller_than_overlay(tmp_path):
    base = tmp_path / "base.raw"
    base.write_bytes(b"\x99" * 100000)
    ov = tmp_path / "ov.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", ov, "1M")
    got = skiff_read(ov, MiB)
    assert got == b"\x99" * 100000 + bytes(MiB - 100000)
    m = Model(got, 65536)
    tool("batch", ov, stdin=b"write 90000 20000 3\nflush\n")
    m.write(90000, 20000, 3)
    qcheck(ov)
    assert to_raw(ov, tmp_path) == bytes(m.d)


def test_three_level_chain(tmp_path):
    a = tmp_path / "a.raw"
    a.write_bytes(b"\x01" * (4 * MiB))
    b = tmp_path / "b.qcow2"
    c = tmp_path / "c.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "a.raw", "-F", "raw", b)
    qemu_io(b, "write -P 0x02 1M 1M")
    qemu_img("create", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", c)
    qemu_io(c, "write -P 0x03 1536K 1M")
    assert skiff_read(c, 4 * MiB) == to_raw(c, tmp_path)


# ---- skiff writes, QEMU checks ----

@pytest.mark.parametrize("cluster,rbits", [(512, 1), (512, 64), (4096, 2), (4096, 8),
                                           (65536, 16), (65536, 4), (1 << 21, 32)])
def test_random_writes_various_geometries(tmp_path, cluster, rbits):
    img = tmp_path / "g.qcow2"
    size = 12 * MiB + 512
    qemu_img("create", "-q", "-f", "qcow2", "-o",
             f"cluster_size={cluster},refcount_bits={rbits}", img, str(size))
    m = Model(bytes(size), cluster)
    rnd = random.Random(cluster * 131 + rbits)
    tool("batch", img, stdin=random_batch(m, rnd, 400, 300000))
    out = qcheck(img)
    assert "No errors" in out
    assert to_raw(img, tmp_path) == bytes(m.d)
    assert skiff_read(img, size) == bytes(m.d)
    # A second session on the same image continues consistently.
    tool("batch", img, stdin=random_batch(m, rnd, 200, 300000))
    qcheck(img)
    assert to_raw(img, tmp_path) == bytes(m.d)


def test_refcount_table_growth(tmp_path):
    # 512-byte clusters, 64-bit refcounts: a refcount block covers 32 KiB
    # and a one-cluster refcount table 2 MiB, so 20 MiB of data needs the
    # table to grow several times.
    img = tmp_path / "grow.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "cluster_size=512,refcount_bits=64", img, "24M")
    rt_before = header(img)["rt_clusters"]
    data = os.urandom(20 * MiB)
    tool("write", img, 0, stdin=data)
    h = header(img)
    assert h["rt_clusters"] > rt_before
    qcheck(img)
    assert to_raw(img, tmp_path)[:len(data)] == data


def test_skiff_created_images(tmp_path):
    for cb in (9, 12, 16, 21):
        img = tmp_path / f"n{cb}.qcow2"
        tool("create", img, 40 * MiB + 4096, cb)
        qcheck(img)
        info = run("qemu-img", "info", img).stdout.decode()
        assert "virtual size: 40 MiB" in info or "41947136" in info, info
        qemu_io(img, "write -P 0xcd 1000 5000")
        m = Model(to_raw(img, tmp_path), 1 << cb)
        tool("batch", img, stdin=random_batch(m, random.Random(cb), 50, 500000))
        qcheck(img)
        assert to_raw(img, tmp_path) == bytes(m.d)
    # Large virtual size with small clusters: multi-cluster L1 and
    # several refcount blocks at creation.
    big = tmp_path / "big.qcow2"
    tool("create", big, 64 << 30, 9)
    qcheck(big)
    tool("batch", big, stdin=b"write 68719476000 736 5\nread 68719476000 736 5\n")
    qcheck(big)


def test_qemu_v2_images(tmp_path):
    img = tmp_path / "v2.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "compat=0.10", img, "8M")
    qemu_io(img, "write -P 0x21 0 300K")
    assert header(img)["version"] == 2
    expect = to_raw(img, tmp_path)
    assert skiff_read(img, 8 * MiB) == expect
    m = Model(expect, 65536)
    tool("batch", img, stdin=random_batch(m, random.Random(2), 80, 200000))
    qcheck(img)
    assert to_raw(img, tmp_path) == bytes(m.d)
    # v2 overlay: write-zeroes must write zeros, discard does nothing.
    base = tmp_path / "b.raw"
    base.write_bytes(b"\xee" * (4 * MiB))
    ov = tmp_path / "ov2.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "b.raw", "-F", "raw", ov)
    m = Model(b"\xee" * (4 * MiB), 65536, v2_backed=True)
    tool("batch", ov, stdin=random_batch(m, random.Random(3), 60, 200000))
    qcheck(ov)
    assert to_raw(ov, tmp_path) == bytes(m.d)


def test_internal_snapshots_preserved(tmp_path):
    img = tmp_path / "s.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", img, "6M")
    qemu_io(img, "write -P 0x31 0 6M")
    qemu_img("snapshot", "-c", "s1", img)
    snap = to_raw(img, tmp_path, snapshot="s1")
    m = Model(snap, 65536)
    tool("batch", img, stdin=random_batch(m, random.Random(9), 80, 200000))
    qcheck(img)
    assert to_raw(img, tmp_path) == bytes(m.d)
    assert to_raw(img, tmp_path, snapshot="s1") == snap


def test_discard_and_write_zeroes(tmp_path):
    img = tmp_path / "z.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", img, "4M")
    qemu_io(img, "write -P 0x44 0 4M")
    tool("zero", img, 65536, 3 * 65536 + 100)
    tool("discard", img, 1 * MiB + 1000, 1 * MiB)
    m = Model(b"\x44" * (4 * MiB), 65536)
    m.zero(65536, 3 * 65536 + 100)
    m.discard(1 * MiB + 1000, 1 * MiB)
    qcheck(img)
    assert to_raw(img, tmp_path) == bytes(m.d)
    # Freed clusters are reused.
    size_before = os.path.getsize(img)
    tool("batch", img, stdin=b"write 1100000 800000 4\n")
    assert os.path.getsize(img) <= size_before
    qcheck(img)
    # Over a backing file zero clusters hide the backing data.
    ov = tmp_path / "ov.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "z.qcow2", "-F", "qcow2", ov)
    tool("zero", ov, 0, 4 * MiB)
    assert skiff_read(ov, 4 * MiB) == bytes(4 * MiB)
    qcheck(ov)
    assert to_raw(ov, tmp_path) == bytes(4 * MiB)


def test_lazy_refcounts_and_bitmaps(tmp_path):
    img = tmp_path / "l.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", img, "4M")
    tool("batch", img, stdin=b"write 0 100000 1\n")
    qcheck(img)
    assert header(img)["incompat"] & 1 == 0
    b = tmp_path / "bm.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", b, "4M")
    qemu_img("bitmap", "--add", b, "bm0")
    assert header(b)["autoclear"] & 1
    tool("batch", b, stdin=b"write 0 100000 1\n")
    assert header(b)["autoclear"] == 0  # unknown autoclear features cleared
    # The bitmap clusters are now unreferenced: leaked (harmless, exit
    # status 3), never an error.
    p = run("qemu-img", "check", b, check=False)
    assert p.returncode in (0, 3), p.stdout + p.stderr
    assert b"ERROR" not in p.stdout + p.stderr


def test_raw_backend(tmp_path):
    img = tmp_path / "r.raw"
    img.write_bytes(bytes(3 * MiB))
    m = Model(bytes(3 * MiB), 1)
    lines = random_batch(m, random.Random(4), 50, 100000)
    # raw discard punches holes: zero in our model at byte granularity.
    m2 = Model(bytes(3 * MiB), 1)
    tool("-f", "raw", "batch", img, stdin=random_batch(m2, random.Random(4), 50, 100000))
    assert img.read_bytes() == bytes(m2.d)
    assert lines  # same generator, same ops
    tool_fails("-f", "raw", "read", img, 3 * MiB - 10, 11)


# ---- locking ----

def test_locking(tmp_path):
    img = tmp_path / "lk.qcow2"
    tool("create", img, MiB)
    with open(img, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        err = tool_fails("open", img)
        assert "locked" in err
        err = tool_fails("-r", "open", img)
        assert "locked" in err
    with open(img, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        tool("-r", "open", img)
        assert "locked" in tool_fails("open", img)
    # A base in use read-write cannot serve as a backing file.
    ov = tmp_path / "ov.qcow2"
    tool("create", ov, 0, 16, "lk.qcow2", "qcow2")
    with open(img, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        err = tool_fails("open", ov)
        assert "backing file" in err and "locked" in err


# ---- hostile images ----

@pytest.fixture
def good(tmp_path):
    """A small valid v3 image with some data, 64 KiB clusters."""
    img = tmp_path / "good.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", img, "4M")
    qemu_io(img, "write -P 0x66 0 200K")
    return img


def refuse(img, *expect, fmt="qcow2"):
    err = tool_fails("-f", fmt, "open", img)
    for e in expect:
        assert e in err, f"{e!r} not in {err!r}"
    err = tool_fails("-f", fmt, "-r", "info", img)
    return err


def test_hostile_truncated(good, tmp_path):
    t = tmp_path / "t.qcow2"
    for n in (0, 3, 50, 100):
        t.write_bytes(good.read_bytes()[:n])
        refuse(t, "too short" if n < 104 else "")
    # Truncated after the header: L1 / refcount table are gone.
    t.write_bytes(good.read_bytes()[:70000])
    refuse(t, "beyond the end of the file")


def test_hostile_magic_version_bits(good, tmp_path):
    cases = [
        (0, ">I", 0x12345678, "bad magic"),
        (4, ">I", 4, "unsupported qcow2 version 4"),
        (20, ">I", 8, "cluster_bits 8 out of range"),
        (20, ">I", 22, "cluster_bits 22 out of range"),
        (20, ">I", 0xFFFFFFFF, "out of range"),
        (96, ">I", 7, "refcount_order 7"),
        (100, ">I", 50, "header_length"),
        (100, ">I", 108, "not a multiple of 8"),
        (32, ">I", 1, "encrypted"),
        (72, ">Q", 1 << 5, "unsupported incompatible features"),
        (72, ">Q", 2, "marked corrupt"),
        (72, ">Q", 4, "external data file"),
        (72, ">Q", 16, "extended L2"),
    ]
    for off, fmt, val, msg in cases:
        t = tmp_path / "h.qcow2"
        shutil.copy(good, t)
        patch(t, off, fmt, val)
        refuse(t, msg)


def test_hostile_offsets_and_sizes(good, tmp_path):
    h = header(good)
    big = 1 << 50
    cases = [
        (40, ">Q", big, "L1 table at"),                   # L1 beyond file
        (40, ">Q", h["l1_off"] + 8, "not cluster-aligned"),
        (40, ">Q", 0, "overlap"),                         # L1 over header
        (40, ">Q", h["rt_off"], "overlap"),               # L1 over refcount table
        (48, ">Q", big, "refcount table at"),
        (48, ">Q", h["rt_off"] + 512, "not cluster-aligned"),
        (48, ">Q", h["l1_off"], "overlap"),
        (56, ">I", 0, "refcount table is empty"),
        (56, ">I", 0xFFFFFFFF, "refcount table too large"),
        (36, ">I", 0xFFFFFFFF, "L1 table too large"),
        (36, ">I", 0, "too small for the virtual size"),
        (24, ">Q", (1 << 64) - 1, "too small for the virtual size"),
        (24, ">Q", 1 << 62, "too small for the virtual size"),
        (60, ">I", 0xFFFFFFFF, "too many snapshots"),
        (60, ">I", 3, "snapshot"),                        # snapshot table at offset 0 → garbage
        (16, ">I", 0xFFFFFFFF, "backing file name too long"),
        (16, ">I", 1023, "outside the first cluster"),
        (8, ">Q", big, "backing file name"),
        (8, ">Q", 16, "backing file name overlaps the header"),
    ]
    for off, fmt, val, msg in cases:
        t = tmp_path / "o.qcow2"
        shutil.copy(good, t)
        if off in (8, 16):  # a backing file name: offset and length
            patch(t, 8, ">Q", 65536 - 1000)
            patch(t, 16, ">I", 10)
        patch(t, off, fmt, val)
        refuse(t, msg)


def test_hostile_table_entries(good, tmp_path):
    h = header(good)
    cs = 1 << h["cluster_bits"]
    l2 = read_u64(good, h["l1_off"]) & 0x00FFFFFFFFFFFE00
    rb0 = read_u64(good, h["rt_off"])
    cases = [
        (h["l1_off"], (1 << 50) | (1 << 63), "lies beyond the end of the file"),
        (h["l1_off"], l2 + 512, "malformed"),
        (h["l1_off"], h["rt_off"] | (1 << 63), "overlap"),     # L2 = refcount table
        (h["l1_off"], 1 << 63, ""),                             # offset 0 = unallocated: fine
        (h["rt_off"], 1 << 50, "refcount block 0"),
        (h["rt_off"], rb0 + 8, "reserved bits"),
        (h["rt_off"], h["l1_off"], "overlap"),
        (h["rt_off"] + 8, rb0, "overlap"),                      # two refcount blocks in one cluster
    ]
    for off, val, msg in cases:
        t = tmp_path / "e.qcow2"
        shutil.copy(good, t)
        patch(t, off, ">Q", val)
        if msg:
            refuse(t, msg)
        else:
            tool("open", t)
    # Bad L2 entries are found at access: -EIO, not a crash.
    for val in (1 << 57, 0x200 | (1 << 63), (1 << 62) | (1 << 63), (1 << 40) | (1 << 63), 0x100):
        t = tmp_path / "l2.qcow2"
        shutil.copy(good, t)
        patch(t, l2, ">Q", val)
        tool("open", t)
        err = tool_fails("read", t, 0, 65536)
        assert "Input/output error" in err, err
        err = tool_fails("batch", t, stdin=b"write 100 10 1\n")
        assert "Input/output error" in err, err
        tool("read", t, 65536, 65536)  # other clusters still read
    # An L2 entry pointing at the L1 table: reads fine, writes refused.
    t = tmp_path / "meta.qcow2"
    shutil.copy(good, t)
    patch(t, l2, ">Q", h["l1_off"] | (1 << 63))
    tool("read", t, 0, 65536)
    assert "Input/output error" in tool_fails("batch", t, stdin=b"write 0 10 1\n")
    assert read_u64(t, h["l1_off"]) == read_u64(good, h["l1_off"])
    # A compressed entry with garbage data.
    t = tmp_path / "cz.qcow2"
    shutil.copy(good, t)
    patch(t, l2, ">Q", (1 << 62) | (cs * 3 + 7))
    assert "Input/output error" in tool_fails("read", t, 0, 512)


def test_hostile_extensions(good, tmp_path):
    t = tmp_path / "x.qcow2"
    shutil.copy(good, t)
    hl = header(good)["hlen"]
    # An extension whose length runs past the cluster.
    patch(t, hl, ">II", 0x12345678, 0xFFFFFF00)
    refuse(t, "header extension")
    # Unknown extensions are skipped.
    shutil.copy(good, t)
    with open(t, "r+b") as f:
        f.seek(hl)
        f.write(struct.pack(">II", 0x12345678, 5) + b"abcde\0\0\0" + struct.pack(">II", 0, 0))
    tool("open", t)
    assert skiff_read(t, 4 * MiB) == to_raw(good, tmp_path)
    # Unknown incompatible bit named through the feature name table.
    with open(t, "r+b") as f:
        f.seek(hl)
        name = b"frobnicate".ljust(46, b"\0")
        f.write(struct.pack(">II", 0x6803F857, 48) + bytes([0, 9]) + name + struct.pack(">II", 0, 0))
    patch(t, 72, ">Q", 1 << 9)
    refuse(t, "bit 9 (frobnicate)")


def test_hostile_qemu_made_unsupported(tmp_path):
    z = tmp_path / "zstd.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "compression_type=zstd", z, "1M")
    refuse(z, "zstd")
    e = tmp_path / "extl2.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "extended_l2=on", e, "1M")
    refuse(e, "extended L2")
    d = tmp_path / "df.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", f"data_file={tmp_path / 'df.raw'}", d, "1M")
    refuse(d, "external data file")


def test_dirty_bit(good, tmp_path):
    t = tmp_path / "d.qcow2"
    shutil.copy(good, t)
    patch(t, 72, ">Q", 1)
    refuse_rw = tool_fails("open", t)
    assert "dirty" in refuse_rw
    assert skiff_read(t, 4 * MiB, "-r") == to_raw(good, tmp_path)


def test_backing_loops_and_depth(tmp_path):
    a = tmp_path / "a.qcow2"
    b = tmp_path / "b.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", a, "1M")
    qemu_img("create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", b)
    qemu_img("rebase", "-u", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", a)
    refuse(b, "backing chain loops")
    s = tmp_path / "self.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", s, "1M")
    qemu_img("rebase", "-u", "-f", "qcow2", "-b", "self.qcow2", "-F", "qcow2", s)
    refuse(s, "backing chain loops")
    # Depth: 16 backing files below the top are fine, 17 are not.
    prev = tmp_path / "d0.raw"
    prev.write_bytes(bytes(MiB))
    for i in range(1, 19):
        cur = tmp_path / f"d{i}.qcow2"
        fmt = "raw" if i == 1 else "qcow2"
        qemu_img("create", "-q", "-f", "qcow2", "-b", prev.name, "-F", fmt, cur)
        prev = cur
    tool("open", tmp_path / "d16.qcow2")
    refuse(tmp_path / "d17.qcow2", "deeper than 16")
    # Missing backing file, unsupported backing format, a FIFO.
    m = tmp_path / "m.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-b", "nothere.raw", "-F", "raw", m, "1M")
    refuse(m, "backing file", "nothere.raw", "No such file")
    os.mkfifo(tmp_path / "fifo")
    f = tmp_path / "f.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-b", "fifo", "-F", "raw", f, "1M")
    refuse(f, "not a regular file")
    v = tmp_path / "v.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "vmdk", v, "1M")
    refuse(v, "backing file format 'vmdk'")


def test_backing_never_written(tmp_path):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", base, "2M")
    qemu_io(base, "write -P 0x12 0 2M")
    os.chmod(base, 0o444)
    s = sha(base)
    ov = tmp_path / "ov.qcow2"
    tool("create", ov, 0, 12, "base.qcow2", "qcow2")
    m = Model(b"\x12" * (2 * MiB), 4096)
    tool("batch", ov, stdin=random_batch(m, random.Random(11), 100, 100000))
    assert sha(base) == s
    qcheck(ov)
    assert to_raw(ov, tmp_path) == bytes(m.d)


def test_killed_writer_leaves_consistent_image(tmp_path):
    """A writer killed in the middle of its work leaves at most leaked
    clusters: never an L2 entry pointing at a cluster without a refcount.
    Each round the batch carries `say` marks; the kill comes as soon as the
    writer reports a mark chosen at random in the first three quarters of
    its 400 commands, while the rest are still to do, and the writer must
    end by that SIGKILL (not by finishing first)."""
    img = tmp_path / "k.qcow2"
    base = tmp_path / "kb.raw"
    base.write_bytes(os.urandom(6 * MiB))
    qemu_img("create", "-q", "-f", "qcow2", "-o", "cluster_size=512,refcount_bits=64",
             "-b", "kb.raw", "-F", "raw", img)
    rnd = random.Random(21)
    nops = 400
    for round_ in range(16):
        m = Model(bytes(6 * MiB), 512)
        lines = random_batch(m, rnd, nops, 40000, flush_every=50).decode().splitlines()
        # A mark after every 10th write-class command.
        marked, k = [], 0
        for line in lines:
            marked.append(line)
            if line != "flush":
                k += 1
                if k % 10 == 0:
                    marked.append(f"say {k}")
        target = 10 * rnd.randrange(1, nops * 3 // 40)
        p = subprocess.Popen([TOOL, "-b", "batch", str(img)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        # Everything is in the pipe at once (the writer never waits for
        # input), then the marks are read until the target.
        feeder = threading.Thread(target=lambda: (p.stdin.write(("\n".join(marked) + "\n").encode()),
                                                  p.stdin.close()))
        feeder.start()
        seen = 0
        while seen < target:
            line = p.stdout.readline()
            assert line, f"round {round_}: the writer ended before mark {target} (last {seen})"
            seen = int(line)
        p.kill()
        p.wait()
        feeder.join(30)
        p.stdout.close()
        assert p.returncode == -signal.SIGKILL, \
            f"round {round_}: the writer was not killed mid-batch (status {p.returncode})"
        c = run("qemu-img", "check", img, check=False)
        out = (c.stdout + c.stderr).decode()
        assert c.returncode in (0, 3) and "ERROR" not in out, out
        tool("batch", img, stdin=b"write 1000 5000 7\nread 1000 5000 7\n")
    run("qemu-img", "check", "-r", "leaks", img, check=False)
    qcheck(img)

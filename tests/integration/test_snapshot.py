"""Snapshots of the real guest: create, kill, restore, Diff, clones, bad files.

One guest boots (4 harts, an ext4 data disk, user networking, vsock) and
starts work that runs for a while: four `seq | md5sum` pipelines, one per
hart, and a writer filling a file on the disk. In the middle of it the VM
is paused and saved three ways: a Full snapshot, then (after running a
little more) a Diff on top of it and a Full snapshot of that same moment;
then the VMM is killed.

- The Diff chain is loaded (paused) into a new process and saved again as a
  Full snapshot: its memory file must equal the Full one of the same moment
  byte for byte, and every hart and device section must come back the same
  (a load followed by a save changes nothing).
- The Full snapshot is loaded into a new process, which finishes the work:
  every checksum equals the host's, the file on the disk has the expected
  content and the file system checks clean, and a TCP transfer over the
  user network works. A TCP connection the guest held open to a host
  listener through the user network at the snapshot does not survive (its
  host end was a socket of the killed process, and libslirp saves no such
  connection): the host sees it end, and the guest's next segment on it is
  answered with a reset, so its program gets an error at once instead of
  hanging. What libslirp does carry, the DHCP leases, is in the state file.
- That restored guest starts a short job and a vsock listener and is saved
  again; 10 clones of it run at once, each given its own MAC and vsock CID,
  each finishing the job and accepting a vsock connection at its new CID,
  and each reading other random numbers (the VM generation ID changed).
  Their summed RSS (and PSS) stay well under ten times the guest's memory.
  A clone whose guest takes its new MAC and asks DHCP again for its address
  gets 10.0.2.15: the origin's lease (naming the old MAC) is not loaded into
  a NIC whose MAC changed.
- Corrupt, truncated and wrong-version state files are refused with a clear
  message and nothing is started.
- A memory file truncated under the VM restored from it stops that VM with
  a crash report naming the cause (not a SIGBUS that kills the VMM).
"""
import hashlib
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from conftest import Guest, guest_to_host_nc, rss_kib, vsock_recv_started, wait_for
from fc_schema import call
from test_security import thread_states

HERE = Path(__file__).resolve().parent
MEM_MIB = 256
SEQ_N = [250000, 260000, 270000, 280000]   # the four pipelines' lengths
WRITE_N = 200000                           # lines the disk writer writes
CLONE_N = 60000
CLONES = 10
GUEST_CID = 3


# ------------------------------------------------------------------ helpers

class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.sock_path = str(path)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.sock_path)
        self.sock = s


def api(sock, method, path, body=None):
    """(status, parsed body or None)."""
    c = UnixHTTP(sock)
    c.request(method, path, json.dumps(body) if body is not None else None,
              {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data else None)


def ok(sock, method, path, body=None):
    st, js = api(sock, method, path, body)
    assert st == 204, f"{method} {path} {body}: {st} {js}"


def listening(p):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(p))
        return True
    except OSError:   # not there yet, or bound but not yet listening
        return False
    finally:
        s.close()


def wait_api(p, proc, timeout=30):
    """Until the VMM's API socket takes connections (the file appears when
    it is bound, a moment before it listens)."""
    ok_ = wait_for(lambda: listening(p) or not proc.p.isalive(), timeout, 0.05)
    assert ok_ and proc.p.isalive(), f"{p}: the API did not come up"


def host_md5(text_lines):
    h = hashlib.md5()
    for chunk in text_lines:
        h.update(chunk)
    return h.hexdigest()


def seq_md5(n):
    return hashlib.md5("".join(f"{i}\n" for i in range(1, n + 1)).encode()).hexdigest()


def sections(path):
    """The state file's sections as {(tag, instance): (version, payload)}."""
    data = Path(path).read_bytes()
    assert data[:8] == b"SKIFFSNP"
    off, out = 24, {}
    while off < len(data):
        tag, inst, ver, _flags, ln = struct.unpack_from("<4sIIIQ", data, off)
        out[(tag.decode(), inst)] = (ver, data[off + 24:off + 24 + ln])
        off += 24 + ln
    return out


# The guest's count of TCP connections ended by a reset (RFC 1213's
# tcpEstabResets, field 9 of /proc/net/snmp's second Tcp: line).
RESETS = "awk '/^Tcp:/ && n++ {print $9}' /proc/net/snmp"


def with_section(data, tag, payload):
    """The state file `data` with section `tag`'s payload replaced, its
    length and CRC made right again (so the loader, not the container
    check, sees the change)."""
    out, off = bytearray(data[:24]), 24
    while off < len(data):
        t, inst, ver, flags, ln = struct.unpack_from("<4sIIIQ", data, off)
        body = data[off + 24:off + 24 + ln]
        off += 24 + ln
        if t == b"END ":
            break
        if t == tag.encode():
            body, ln = payload, len(payload)
        out += struct.pack("<4sIIIQ", t, inst, ver, flags, ln) + body
    out += struct.pack("<4sIIIQ", b"END ", 0, 1, 0, 4)
    struct.pack_into("<Q", out, 16, len(out) + 4)
    return bytes(out) + struct.pack("<I", zlib.crc32(out))


def snapshot(sock, d, kind="Full"):
    d.mkdir(exist_ok=True)
    t0 = time.monotonic()
    ok(sock, "PUT", "/snapshot/create", {"snapshot_type": kind,
                                         "snapshot_path": str(d / "vmstate"),
                                         "mem_file_path": str(d / "memory")})
    return time.monotonic() - t0


def spawn(skiff_bin, args, log, name):
    return Guest(skiff_bin, args, log, name=name)


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("snap")
    s = Path(f"/tmp/skiff-snap-{os.getpid()}")
    s.mkdir()
    yield d, s
    shutil.rmtree(s, ignore_errors=True)


@pytest.fixture(scope="module")
def disk(work):
    d, _ = work
    src = d / "img"
    src.mkdir()
    cc = shutil.which("riscv64-linux-gnu-gcc")
    if not cc:
        pytest.fail("riscv64-linux-gnu-gcc is not installed (scripts/deps.sh installs it)")
    subprocess.run([cc, "-static", "-O2", "-o", str(src / "vsock_tool"),
                    str(HERE / "net_guest" / "vsock_tool.c")], check=True)
    img = d / "data.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(src), str(img), "64M"], check=True)
    return img


@pytest.fixture(scope="module")
def saved(skiff_bin, default_guest, console_log_dir, work, disk):
    """Boot, start the work, save Full S1, run on, save Diff D1 and Full F1
    of one moment, kill the VMM. Returns the directories and timings."""
    d, s = work
    cfg = {
        "boot-source": {"kernel_image_path": str(default_guest.kernel),
                        "initrd_path": str(default_guest.initrd),
                        "boot_args": "console=ttyS0 quiet"},
        "machine-config": {"vcpu_count": 4, "mem_size_mib": MEM_MIB, "track_dirty_pages": True},
        "drives": [{"drive_id": "data", "path_on_host": str(disk), "is_root_device": False,
                    "is_read_only": False}],
        "network-interfaces": [{"iface_id": "eth0", "backend": "user"}],
        "vsock": {"guest_cid": GUEST_CID, "uds_path": str(s / "v.sock")},
        "balloon": {"amount_mib": 0, "deflate_on_oom": True, "stats_polling_interval_s": 1,
                    "free_page_hinting": True},
        "mmds-config": {"version": "V2", "network_interfaces": ["eth0"]},
        "entropy": {"rate_limiter": {"bandwidth": {"size": 2048, "refill_time": 1000}}},
    }
    (d / "origin.json").write_text(json.dumps(cfg))
    sock = s / "origin.sock"
    g = spawn(skiff_bin, ["--config-file", d / "origin.json", "--api-sock", sock],
              console_log_dir / "snap-origin.log", "origin")
    try:
        g.wait_ready()
        g.run("mkdir -p /mnt/d && mount /dev/vda /mnt/d")
        g.run("cd /tmp; " + " ".join(
            f"(seq 1 {n} | md5sum > /tmp/s{i}.part && mv /tmp/s{i}.part /tmp/s{i}) &"
            for i, n in enumerate(SEQ_N)) +
            f" (seq 1 {WRITE_N} > /mnt/d/seq.txt && sync && touch /tmp/written) & true")
        # A connection to the host held open across the snapshot: the
        # guest sends "before" now and "after" once /tmp/go exists, and
        # keeps nc's input open (at its end nc would half-close), so the
        # connection stays established until the network ends it; then nc
        # ends and /tmp/conn.end appears. The guest's count of connections
        # reset while established is noted.
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(60)
        g.run("(echo before; while [ ! -e /tmp/go ]; do sleep 0.2; done; echo after; sleep 300) | "
              f"(nc 10.0.2.2 {srv.getsockname()[1]} > /dev/null; echo $? > /tmp/conn.end) & true")
        held, _ = srv.accept()
        held.settimeout(60)
        assert held.recv(64) == b"before\n"
        g.run(f"{RESETS} > /tmp/resets0")
        # In the middle: no pipeline done yet.
        done = g.run("ls /tmp/s? /tmp/written 2>/dev/null | wc -l")
        ok(sock, "PATCH", "/vm", {"state": "Paused"})
        t_s1 = snapshot(sock, d / "s1")
        # Nothing runs between these two: the Diff must hold no page.
        snapshot(sock, d / "d0", "Diff")
        ok(sock, "PATCH", "/vm", {"state": "Resumed"})
        time.sleep(1.5)
        ok(sock, "PATCH", "/vm", {"state": "Paused"})
        t_d1 = snapshot(sock, d / "d1", "Diff")
        t_f1 = snapshot(sock, d / "f1")
    finally:
        if g.p.isalive():
            g.p.kill(9)
        g.close()
    try:
        ended = held.recv(64)
    except ConnectionResetError:
        ended = b""
    held.close()
    srv.close()
    return {"dir": d, "sock": s, "unfinished_at_s1": done.strip() == "0",
            "held_ended": ended == b"", "t": {"s1": t_s1, "d1": t_d1, "f1": t_f1}}


# ------------------------------------------------------------------ tests

def test_snapshot_files(saved):
    d = saved["dir"]
    assert saved["unfinished_at_s1"], "the work had finished before the snapshot"
    full = (d / "s1" / "memory").stat()
    diff = (d / "d1" / "memory").stat()
    assert full.st_size == diff.st_size == MEM_MIB << 20
    # Pages that were never written are holes; the Diff holds only what
    # changed in 1.5 s.
    assert full.st_blocks * 512 < (MEM_MIB << 20), "the Full memory file is not sparse"
    # How much a running guest dirties in 1.5 s depends on the host's speed
    # (and free page hinting dirties what it discards), so the size that is
    # checked is the Diff of a paused VM right after the Full: empty.
    empty = (d / "d0" / "memory").stat()
    assert empty.st_size == MEM_MIB << 20
    assert empty.st_blocks == 0, f"a Diff with nothing run since the Full holds {empty.st_blocks * 512} bytes"
    assert diff.st_blocks > 0, "the Diff after 1.5 s of work holds no page"
    secs = sections(d / "s1" / "vmstate")
    for key in [("CONF", 0), ("VM  ", 0), ("MEM ", 0), ("PLIC", 0), ("ACLI", 0), ("UART", 0),
                ("RTC ", 0), ("SYSC", 0)] + [("HART", i) for i in range(4)]:
        assert key in secs, f"no {key} section"
    # The NIC's host side: kind 1 (user network), libslirp's state version
    # and stream, whose lease table names the guest's MAC at 10.0.2.15.
    vhst = [(k[1], v) for k, v in secs.items() if k[0] == "VHST"]
    assert len(vhst) == 1, vhst
    ver, payload = vhst[0][1]
    assert ver == 1 and payload[0] == 1, payload[:16]
    mac = secs[("VDEV", vhst[0][0])][1][:6]   # virtio-net's state starts with it
    assert struct.pack(">H", 1) + mac in payload[9:], "no lease for the guest's MAC"
    # A transport section per virtio slot, starting with the device id, and
    # a device section for each but virtio-rng (id 4: no state of its own).
    ids = {k[1]: struct.unpack_from("<I", v[1])[0] for k, v in secs.items() if k[0] == "VMIO"}
    vdev = {k[1] for k in secs if k[0] == "VDEV"}
    # blk, console (the agent's port), rng, net, vsock, balloon, input
    assert sorted(ids.values()) == sorted([2, 3, 4, 1, 19, 5, 18]), ids
    assert set(ids) == set(range(len(ids))) and {n for n, i in ids.items() if i != 4} == vdev, (ids, vdev)
    print(f"\nsnapshot create (4 harts busy, {MEM_MIB} MiB): Full {saved['t']['s1'] * 1000:.0f} ms "
          f"({full.st_blocks * 512 >> 20} MiB allocated), Diff {saved['t']['d1'] * 1000:.0f} ms "
          f"({diff.st_blocks * 512 >> 10} KiB)")


def test_diff_restores_like_full(skiff_bin, console_log_dir, saved):
    """Full + Diff, loaded and saved again, equals the Full of that moment."""
    d, s = saved["dir"], saved["sock"]
    sock = s / "diff.sock"
    p = spawn(skiff_bin, ["--api-sock", sock], console_log_dir / "snap-diff.log", "diff")
    try:
        wait_api(sock, p)
        ok(sock, "PUT", "/snapshot/load", {
            "snapshot_path": str(d / "d1" / "vmstate"),
            "mem_backend": {"backend_type": "File", "backend_path": str(d / "d1" / "memory")},
            "resume_vm": False,
            "vsock_override": {"uds_path": str(s / "v-diff.sock")}})
        st, info = api(sock, "GET", "/")
        assert st == 200 and info["state"] == "Paused", info
        snapshot(sock, d / "again")
    finally:
        p.close()
    a = (d / "again" / "memory").read_bytes()
    b = (d / "f1" / "memory").read_bytes()
    assert len(a) == len(b)
    if a != b:
        bad = [i for i in range(0, len(a), 4096) if a[i:i + 4096] != b[i:i + 4096]]
        pytest.fail(f"{len(bad)} pages differ between Full+Diff and Full, first at {bad[0]:#x}")
    sa, sb = sections(d / "again" / "vmstate"), sections(d / "f1" / "vmstate")
    assert set(sa) == set(sb)
    for key in sa:
        if key[0] in ("CONF", "VM  ", "MEM ", "END "):
            continue   # the VM's id and vsock path, its guest time, the memory chain, the CRC
        assert sa[key] == sb[key], f"section {key} changed through a load and a save"


def test_restored_threads_confined(skiff_bin, console_log_dir, saved):
    """A snapshot loaded into a started VMM (PUT /snapshot/load): every
    thread of the process is confined (Seccomp 2, NoNewPrivs 1), the
    device threads the load started included; those confine themselves as
    they start (sandbox_vm_threads), the threads that ran before the load
    by the sandbox's signal. Each has exactly one filter: none was
    confined twice."""
    d, s = saved["dir"], saved["sock"]
    sock = s / "threads.sock"
    p = spawn(skiff_bin, ["--api-sock", sock], console_log_dir / "snap-threads.log", "threads")
    try:
        wait_api(sock, p)
        ok(sock, "PUT", "/snapshot/load", {
            "snapshot_path": str(d / "d1" / "vmstate"),
            "mem_backend": {"backend_type": "File", "backend_path": str(d / "d1" / "memory")},
            "resume_vm": False,
            "vsock_override": {"uds_path": str(s / "v-threads.sock")}})
        want = ("vcpu0", "vcpu3", "virtio-blk", "virtio-net", "virtio-rng", "virtio-balloon",
                "balloon-stats", "vsock", "net-limit", "slirp-", "MHD-")
        # A thread the load started may not have run yet on a busy host:
        # it confines itself when it first runs (before any work).
        def confined():
            st = thread_states(p.p.pid)
            return all(v[1] == "2" and v[2] == "1" for v in st.values()), st
        assert wait_for(lambda: confined()[0], 30), \
            f"threads not confined (name, Seccomp, NoNewPrivs): {confined()[1]}"
        states = confined()[1]
        names = sorted(v[0] for v in states.values())
        for w in want:
            assert any(n.startswith(w) for n in names), f"no {w} thread among {names}"
        twice = {tid: v[0] for tid, v in states.items() if v[5] != 1}
        assert not twice, f"threads with other than one seccomp filter: {twice}"
    finally:
        p.close()


@pytest.fixture(scope="module")
def resumed(skiff_bin, console_log_dir, saved):
    """The Full snapshot of the later moment, loaded into a new process."""
    d = saved["dir"]
    # The killed VMM left its vsock socket behind; the restored one makes
    # it anew (a clone would be given another path instead).
    (saved["sock"] / "v.sock").unlink(missing_ok=True)
    t0 = time.monotonic()
    g = spawn(skiff_bin, ["--snapshot", d / "f1", "--api-sock", saved["sock"] / "resumed.sock"],
              console_log_dir / "snap-resumed.log", "resumed")
    try:
        first = g.run("echo back", timeout=120)
        assert first == "back"
        g.restore_seconds = time.monotonic() - t0
        yield g
    finally:
        g.close()


def test_work_finishes_after_restore(resumed, saved, disk):
    g = resumed
    g.run("while [ ! -e /tmp/written ] || [ $(ls /tmp/s? | wc -l) != 4 ]; do sleep 1; done",
          timeout=900)
    for i, n in enumerate(SEQ_N):
        got = g.run(f"cat /tmp/s{i}").split()[0]
        assert got == seq_md5(n), f"pipeline {i}: {got} != {seq_md5(n)}"
    got = g.run("md5sum /mnt/d/seq.txt").split()[0]
    assert got == seq_md5(WRITE_N), "the file on the disk is not what was written"


def test_network_after_restore(resumed, saved):
    n, secs = guest_to_host_nc(resumed, 2)
    assert n == 2 << 20, f"TCP over the user network after restore: {n} bytes"
    # The connection held open across the snapshot: ended on the host when
    # the VMM died; for the guest, reset by the restored user network
    # (which has no such connection), not left hanging.
    assert saved["held_ended"], "the host end of the held connection is still open"
    g = resumed
    g.run("touch /tmp/go")
    assert wait_for(lambda: g.run("cat /tmp/conn.end 2>/dev/null || true") != "", 30, 0.5), \
        "the guest's held connection did not end after the restore"
    before, after = int(g.run("cat /tmp/resets0")), int(g.run(RESETS))
    assert after > before, f"the held connection ended without a reset ({before} -> {after})"


def test_started_vm_answers_per_spec(resumed, saved):
    """A restored VM with every device: each runtime answer against
    Firecracker's schemas (fc_schema.py), the balloon's statistics included."""
    sock = saved["sock"] / "resumed.sock"
    st, info = call(sock, "GET", "/")
    assert st == 200 and info["state"] == "Running", info
    call(sock, "GET", "/version")
    assert call(sock, "GET", "/machine-config")[1]["vcpu_count"] == 4
    st, cfg = call(sock, "GET", "/vm/config")
    assert cfg["vsock"]["guest_cid"] == GUEST_CID and cfg["balloon"]["stats_polling_interval_s"] == 1
    assert "null" not in json.dumps(cfg)
    call(sock, "GET", "/balloon")
    assert wait_for(lambda: call(sock, "GET", "/balloon/statistics")[0] == 200, 60), \
        "the restored guest's balloon sends no statistics"
    assert call(sock, "GET", "/balloon/statistics")[1]["total_memory"] > 0
    assert call(sock, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 2})[0] == 204
    assert call(sock, "PATCH", "/balloon", {"amount_mib": 0})[0] == 204
    # Free page hinting: a run, which the guest's driver ends with STOP and
    # the device acknowledges with DONE (acknowledge_on_stop).
    host0 = call(sock, "GET", "/balloon/hinting/status")[1]["host_cmd"]
    assert call(sock, "PATCH", "/balloon/hinting/start", {"acknowledge_on_stop": True})[0] == 204
    assert call(sock, "GET", "/balloon/hinting/status")[1]["host_cmd"] in (max(host0 + 1, 2), 1)
    assert wait_for(lambda: call(sock, "GET", "/balloon/hinting/status")[1] ==
                    {"host_cmd": 1, "guest_cmd": 0}, 60), call(sock, "GET", "/balloon/hinting/status")
    assert call(sock, "PATCH", "/balloon/hinting/stop")[0] == 204
    # The metadata service (V2), reached by the restored guest over its NIC.
    assert call(sock, "PUT", "/mmds", {"latest": {"meta-data": {"instance-id": "i-snap", "n": 1}}})[0] == 204
    assert call(sock, "PATCH", "/mmds", {"latest": {"meta-data": {"n": None, "host": "h1"}}})[0] == 204
    assert call(sock, "GET", "/mmds")[1] == {"latest": {"meta-data": {"instance-id": "i-snap", "host": "h1"}}}
    assert cfg["mmds-config"] == {"version": "V2", "network_interfaces": ["eth0"],
                                  "ipv4_address": "169.254.169.254", "imds_compat": False}, cfg
    g = resumed
    assert "401" in g.run("wget -q -O - http://169.254.169.254/latest/meta-data/ 2>&1", check=False)
    g.run("printf 'PUT /latest/api/token HTTP/1.1\\r\\nX-metadata-token-ttl-seconds: 60\\r\\n\\r\\n' "
          "| nc 169.254.169.254 80 | tail -n 1 > /tmp/tok")
    got = g.run("wget -q -O - --header \"X-metadata-token: $(cat /tmp/tok)\" "
                "http://169.254.169.254/latest/meta-data/; echo; "
                "wget -q -O - --header \"X-metadata-token: $(cat /tmp/tok)\" "
                "http://169.254.169.254/latest/meta-data/instance-id")
    assert got == "host\ninstance-id\ni-snap", repr(got)
    # virtio-rng at the rate PUT /entropy set (kept in the snapshot): 2 KiB
    # at once, then 2 KiB/s, so 8 KiB take about 3 s (unlimited, well
    # under a second on a loaded host).
    assert cfg["entropy"] == {"rate_limiter": {"bandwidth": {"size": 2048, "one_time_burst": 0,
                                                             "refill_time": 1000}}}, cfg
    t0 = time.monotonic()
    assert g.run("head -c 8192 /dev/hwrng | wc -c", timeout=60) == "8192"
    took = time.monotonic() - t0
    assert took > 2, f"8 KiB from virtio-rng limited to 2 KiB/s took {took:.2f} s"
    assert call(sock, "PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
        "bandwidth": {"size": 1 << 30, "refill_time": 1000}}})[0] == 204
    assert call(sock, "PUT", "/snapshot/create", {"snapshot_path": "/nonexistent/x",
                                                  "mem_file_path": "/nonexistent/y"})[0] == 400
    assert call(sock, "PUT", "/boot-source", {"kernel_image_path": "/x"})[0] == 400
    assert call(sock, "PUT", "/actions", {"action_type": "Nonsense"})[0] == 400


@pytest.fixture(scope="module")
def clone_source(resumed, saved):
    """The restored guest, saved again with a short job and a vsock
    listener under way."""
    g, d, s = resumed, saved["dir"], saved["sock"]
    vsock_recv_started(g, "/mnt/d/vsock_tool", 5000, "/tmp/v.out")
    # The clones share the disk image: nothing may write it from now on.
    g.run("sync && mount -o remount,ro /mnt/d")
    g.run(f"(seq 1 {CLONE_N} | md5sum > /tmp/c.part && mv /tmp/c.part /tmp/c) & true")
    # The VM generation ID interrupts the guest has taken so far.
    g.run("awk '/vmgenid/ {print $2}' /proc/interrupts > /tmp/genid0")
    sock = s / "resumed.sock"
    ok(sock, "PATCH", "/vm", {"state": "Paused"})
    snapshot(sock, d / "c1")
    ok(sock, "PATCH", "/vm", {"state": "Resumed"})
    return d / "c1"


def test_clones(skiff_bin, console_log_dir, saved, clone_source, disk):
    s = saved["sock"]
    clones = []
    try:
        for k in range(CLONES):
            sock = s / f"c{k}.sock"
            # Each clone its own copy of the disk (the original is locked
            # by the VM that has it open read-write).
            own = saved["dir"] / f"data{k}.img"
            subprocess.run(["cp", "--sparse=always", str(disk), str(own)], check=True)
            c = spawn(skiff_bin, ["--api-sock", sock, "--id", f"clone{k}"],
                      console_log_dir / f"snap-clone{k}.log", f"clone{k}")
            clones.append(c)
            wait_api(sock, c)
            ok(sock, "PUT", "/snapshot/load", {
                "snapshot_path": str(clone_source / "vmstate"),
                "mem_backend": {"backend_type": "File", "backend_path": str(clone_source / "memory")},
                "resume_vm": True,
                "network_overrides": [{"iface_id": "eth0", "guest_mac": f"02:00:00:00:01:{k:02x}"}],
                "vsock_override": {"uds_path": str(s / f"v{k}.sock"), "guest_cid": 100 + k},
                "drive_overrides": [{"drive_id": "data", "path_on_host": str(own)}]})
        for k, c in enumerate(clones):
            cfg = api(s / f"c{k}.sock", "GET", "/vm/config")[1]
            assert cfg["vsock"]["guest_cid"] == 100 + k
            assert cfg["network-interfaces"][0]["guest_mac"] == f"02:00:00:00:01:{k:02x}"
        # Each clone's guest takes a connection at its own CID (it read the
        # new CID after the transport reset event).
        for k in range(CLONES):
            v = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            v.settimeout(60)
            v.connect(str(s / f"v{k}.sock"))
            v.sendall(b"CONNECT 5000\n")
            line = b""
            while not line.endswith(b"\n"):
                got = v.recv(64)
                assert got, f"clone {k}: vsock connection closed before OK"
                line += got
            assert line.startswith(b"OK "), line
            v.sendall(f"hello from clone {k}\n".encode())
            v.close()
        # Each clone was told of a new VM generation ID (one more vmgenid
        # interrupt, which its driver turns into a reseed of the kernel's
        # random number generator) and no two read the same random bytes.
        # (Three clones of a freshly booted guest restored without the new
        # ID read the same bytes; these clones' pools also differ by then.)
        for k, c in enumerate(clones):
            got = c.run("cat /tmp/genid0; awk '/vmgenid/ {print $2}' /proc/interrupts").split()
            assert len(got) == 2 and int(got[1]) == int(got[0]) + 1, \
                f"clone {k}: vmgenid interrupts before and after the restore: {got}"
        rand = [c.run("head -c 16 /dev/urandom | md5sum").split()[0] for c in clones]
        assert len(set(rand)) == CLONES, f"clones share random numbers: {rand}"
        # Clone 0's guest takes its new MAC and asks DHCP for its address
        # again: it keeps 10.0.2.15 (the origin's lease names the old MAC
        # and stayed behind; loaded, it would have the address refused).
        c = clones[0]
        c.run("kill $(cat /run/udhcpc.eth0.pid); ip link set eth0 address 02:00:00:00:01:00; "
              "udhcpc -i eth0 -s /usr/share/udhcpc/default.script -q -n -t 5 -T 1 -r 10.0.2.15 "
              "> /tmp/dhcp.log 2>&1", timeout=60)
        got = c.run("ip -4 addr show dev eth0")
        assert "inet 10.0.2.15/" in got, c.run("cat /tmp/dhcp.log") + got
        for k, c in enumerate(clones):
            c.run("while [ ! -e /tmp/c ]; do sleep 0.5; done", timeout=600)
            assert c.run("cat /tmp/c").split()[0] == seq_md5(CLONE_N), f"clone {k}"
            assert wait_for(lambda: c.run("cat /tmp/v.out") == f"hello from clone {k}", 30), \
                f"clone {k}: vsock data: {c.run('cat /tmp/v.out')!r}"
        rss = [rss_kib(c.p.pid) for c in clones]
        pss = []
        for c in clones:
            with open(f"/proc/{c.p.pid}/smaps_rollup") as f:
                pss.append(next(int(l.split()[1]) for l in f if l.startswith("Pss:")))
        total_mib = sum(rss) / 1024
        print(f"\n{CLONES} clones of a {MEM_MIB} MiB guest: summed RSS {total_mib:.0f} MiB, "
              f"PSS {sum(pss) / 1024:.0f} MiB")
        assert total_mib < CLONES * MEM_MIB / 2, f"summed RSS {total_mib:.0f} MiB"
    finally:
        for c in clones:
            c.close()


def test_filesystem_clean_after_restore(resumed, disk, clone_source):
    """Last in the module: the restored guest unmounts and powers off."""
    resumed.run("killall vsock_tool; sleep 0.2; umount /mnt/d", check=False)
    assert resumed.run("grep -c /mnt/d /proc/mounts", check=False) == "0"
    assert resumed.poweroff() == 0
    r = subprocess.run(["e2fsck", "-fn", str(disk)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_memory_file_truncated_under_vm(skiff_bin, console_log_dir, saved, disk, tmp_path):
    """Another program truncates the memory file of a running restored VM
    (the file is mapped, not read): the guest's next touch of a page it had
    not written used to kill the VMM by SIGBUS. Now that VM stops with a
    crash report that names the cause (and says its pc is not known, where
    it printed pc 0 and a trap before it; or, when a hart met the zeros
    first, that hart's crash after the cause), exit status 2, and the API socket
    is gone as after any end. On its own copies of the files (the module's
    other VMs share the originals)."""
    own = tmp_path / "snap"
    own.mkdir()
    for f in ("vmstate", "memory"):
        subprocess.run(["cp", "--sparse=always", str(saved["dir"] / "f1" / f), str(own / f)], check=True)
    own_disk = tmp_path / "data.img"
    subprocess.run(["cp", "--sparse=always", str(disk), str(own_disk)], check=True)
    sock = saved["sock"] / "cut.sock"
    g = spawn(skiff_bin, ["--api-sock", sock], console_log_dir / "snap-cut.log", "cut")
    try:
        wait_api(sock, g)
        ok(sock, "PUT", "/snapshot/load", {
            "snapshot_path": str(own / "vmstate"),
            "mem_backend": {"backend_type": "File", "backend_path": str(own / "memory")},
            "resume_vm": True,
            "vsock_override": {"uds_path": str(tmp_path / "v.sock")},
            "drive_overrides": [{"drive_id": "data", "path_on_host": str(own_disk)}]})
        assert g.run("echo back", timeout=120) == "back"
        os.truncate(own / "memory", 0)
        # Pages the guest has not written since the restore are gone now;
        # a command run touches some (and the kernel's own work others).
        g.p.sendline("cat /proc/meminfo /proc/*/status > /dev/null; ls -lR / > /dev/null")
        status = g.wait_exit(120)
        out = g.tail(4000)
        assert status == 2, f"the VMM ended with status {status} (negative: killed by that signal)\n{out}"
        assert "snapshot memory file" in out and "truncated" in out, out
        if "; then: " in out:
            # A hart met the zeros first (its code, page tables or trap
            # handler gone) and stopped at an instruction: the report names
            # the lost RAM first, then that hart's crash with its pc.
            assert "died on hart" in out and "skiff:   pc 0x" in out, out
        else:
            # The harts were running: no pc to name, and no trap to show.
            assert "pc not known" in out and "trap before it" not in out, out
        assert not sock.exists(), "the API socket was left behind"
    finally:
        g.close()


def test_bad_state_files(skiff_bin, saved, disk, tmp_path):
    """Bad state files are refused with their reason, by `skiff run
    --snapshot` (exit status 64) and by PUT /snapshot/load (400, the VMM
    stays fresh). Independent of the other tests: the restored VM of
    `resumed` may still run and hold the vsock socket and the disk, so the
    loads that get as far as the devices (the user network's state) bring
    their own."""
    good = (saved["dir"] / "s1" / "vmstate").read_bytes()
    cases = {
        "truncated": (good[:len(good) // 2], "truncated"),
        "corrupt": (good[:100] + bytes([good[100] ^ 0x40]) + good[101:], "corrupt"),
        "version": (good[:8] + struct.pack("<I", 99) + good[12:], "newer skiff"),
        "foreign": (b"\x7fELF" + good[4:], "not a skiff snapshot"),
    }
    # The user network's state: a libslirp state version from the future,
    # and a stream cut short.
    vhst = next(v for k, v in sections(saved["dir"] / "s1" / "vmstate").items()
                if k[0] == "VHST")[1]
    device_cases = {
        "slirp-version": (with_section(good, "VHST", vhst[:1] + struct.pack("<I", 99) + vhst[5:]),
                          "this libslirp reads"),
        "slirp-short": (with_section(good, "VHST", vhst[:-1]), "bytes (1 to"),
    }
    for name, (data, needle) in {**cases, **device_cases}.items():
        d = tmp_path / name
        d.mkdir()
        (d / "vmstate").write_bytes(data)
        os.symlink(saved["dir"] / "s1" / "memory", d / "memory")
    for name, (data, needle) in cases.items():
        d = tmp_path / name
        r = subprocess.run([skiff_bin, "run", "--snapshot", str(d)], capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 64, f"{name}: status {r.returncode}: {r.stderr}"
        assert needle in r.stderr, f"{name}: {r.stderr!r}"
    # Through the API: refused, and the VMM stays fresh. A load that failed
    # in the devices (after the sandbox began to confine the VMM's threads)
    # leaves a VMM that refuses to build another VM, and says why (it was
    # killed by its own filter: memfd_create on the API thread).
    own_disk = tmp_path / "data.img"
    subprocess.run(["cp", "--sparse=always", str(disk), str(own_disk)], check=True)

    def load(sock, name):
        return api(sock, "PUT", "/snapshot/load", {
            "snapshot_path": str(tmp_path / name / "vmstate"),
            "mem_backend": {"backend_type": "File", "backend_path": str(tmp_path / name / "memory")},
            "vsock_override": {"uds_path": str(tmp_path / "v.sock")},
            "drive_overrides": [{"drive_id": "data", "path_on_host": str(own_disk)}]})

    tries = [("corrupt", "corrupt")] + [(k, v[1]) for k, v in device_cases.items()]
    for k, (name, needle) in enumerate(tries):
        sock = saved["sock"] / f"bad{k}.sock"
        p = subprocess.Popen([skiff_bin, "run", "--api-sock", str(sock)], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            assert wait_for(lambda: listening(sock), 20, 0.05)
            st, js = load(sock, name)
            assert st == 400 and needle in js["fault_message"], (name, js)
            st, js = load(sock, tries[-1][0])
            assert st == 400, (name, js)
            if name in device_cases:
                assert "cannot build another VM" in js["fault_message"], (name, js)
            st, info = api(sock, "GET", "/")
            assert info["state"] == "Not started", info
        finally:
            p.kill()
            _, errs = p.communicate()
        assert b"sandbox" not in errs, errs.decode(errors="replace")

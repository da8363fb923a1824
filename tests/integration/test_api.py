"""The per-VM API driven the way a Firecracker user drives it: `skiff run
--api-sock PATH` started as a process, `curl --unix-socket` for every call,
the guest's serial console read from the process's standard output and typed
into its standard input.

- Firecracker's getting-started sequence (boot-source, machine-config,
  drives, InstanceStart) boots the default guest; pause and resume stop and
  restart it; GET /vm/config shows what was configured; calls that are only
  allowed before start are refused after it; `poweroff` on the console ends
  the process with status 0 and removes the socket.
- Every class of bad input through the real socket (unknown field, wrong
  type, out of range, missing field, id mismatch, unknown id, bad JSON, a
  60 KiB body, broken HTTP) gets a 400 with a fault_message naming the
  problem, and the process survives all of it.
- The getting-started sequence also configures a share and a vsock
  through the API; the guest reads the share and reaches the host over the
  vsock with a program run from the share.
- --config-file boots without the API (and with it, the API serves the
  running VM); PATCH /drives/{id} gives a running VM's drive a rate limit
  (a new backing file is refused); a guest reboot rebuilds the VM in the
  same process, with that PATCH, and makes a console port's socket anew; GET
  /vm/config is itself a config file; bad config files and options exit 64.
- Runtime updates on one shared VM (booted from a config file with the
  console on a pty): a NIC's rx limit given in the configuration holds a
  host->guest transfer to its rate, a tx limit PATCHed in at run time holds
  a guest->host transfer to its rate (a lower bound on the time, and the
  metrics' throttle count grows; the same transfer unlimited, in the same
  test, before the limit and after the limits are lifted, leaves that
  count alone: a state, not a time bound a busy host breaks); the
  balloon reports the guest's statistics,
  PATCH /balloon inflates it (GET /balloon's actual_mib follows the target,
  the VMM's RSS falls) and deflates it again; bad runtime input is a 400
  naming the field. A balloon without statistics refuses them (Firecracker's
  rules) in the getting-started sequence.

Boots need the default guest (see conftest.py); the checks that need no
guest run without it.
"""
import fcntl
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (BOOT_TIMEOUT, READY, Guest, free_port, guest_to_host_nc, host_to_guest_nc,
                      rss_kib, wait_for)
from test_blk import traced_threads

CURL_TIMEOUT = 60
MiB = 1 << 20


class Vmm:
    """A `skiff run` process with its console on pipes."""

    def __init__(self, skiff, args, log_path):
        self.log_path = Path(log_path)
        self.p = subprocess.Popen([skiff, "run"] + [str(a) for a in args],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.out = bytearray()
        self.err = bytearray()
        self.lock = threading.Lock()
        self.readers = [threading.Thread(target=self._pump, args=(self.p.stdout, self.out), daemon=True),
                        threading.Thread(target=self._pump, args=(self.p.stderr, self.err), daemon=True)]
        for r in self.readers:
            r.start()

    def _pump(self, f, buf):
        while True:
            chunk = f.read1(65536) if hasattr(f, "read1") else f.read(4096)
            if not chunk:
                return
            with self.lock:
                buf.extend(chunk)

    def output(self):
        with self.lock:
            return self.out.decode("utf-8", "replace")

    def stderr(self):
        with self.lock:
            return self.err.decode("utf-8", "replace")

    def tail(self, n=3000):
        return self.output()[-n:]

    def wait_output(self, pattern, timeout, start=0, what=None):
        """Wait for `pattern` (a regex) in the console output after offset `start`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(self.output(), start)
            if m:
                return m
            if self.p.poll() is not None:
                time.sleep(0.2)
                m = rx.search(self.output(), start)
                if m:
                    return m
                pytest.fail(f"skiff exited ({self.p.returncode}) while waiting for {what or pattern}\n"
                            f"--- stderr ---\n{self.stderr()}\n--- console tail ---\n{self.tail()}")
            time.sleep(0.1)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what or pattern}\n"
                    f"--- console tail ---\n{self.tail()}")

    def type(self, text):
        self.p.stdin.write(text.encode())
        self.p.stdin.flush()

    def run(self, cmd, timeout=60):
        """Type a shell command and return its output (the markers are
        typed split, so their echo never matches what echo prints)."""
        self.seq = getattr(self, "seq", 0) + 1
        n = self.seq
        mark = len(self.output())
        self.type(f'echo __S""TART_{n}__; {cmd}; echo __E""ND_{n}__\n')
        m = self.wait_output(rf"(?s)__START_{n}__\r?\n(.*?)__END_{n}__", timeout, start=mark,
                             what=f"the output of {cmd!r}")
        return m.group(1).replace("\r\n", "\n").rstrip("\n")

    def wait_exit(self, timeout):
        """Wait for the process to end and for its last output to be read."""
        try:
            status = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"skiff did not exit within {timeout} s\n--- console tail ---\n{self.tail()}")
        for r in self.readers:
            r.join(10)
        return status

    def close(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)
        for r in self.readers:
            r.join(5)
        self.log_path.write_text(self.output() + "\n--- stderr ---\n" + self.stderr(),
                                 encoding="utf-8", errors="replace")


def wait_socket(vmm, path, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        if vmm.p.poll() is not None:
            pytest.fail(f"skiff exited ({vmm.p.returncode}) before creating {path}:\n{vmm.stderr()}")
        time.sleep(0.05)
    pytest.fail(f"the API socket {path} did not appear")


def curl(sock, method, path, body=None, data_file=None, extra=()):
    """One call as in Firecracker's docs; returns (status, parsed JSON or None, raw body)."""
    cmd = ["curl", "-sS", "--unix-socket", str(sock), "-X", method, f"http://localhost{path}",
           "-H", "Accept: application/json", "-H", "Content-Type: application/json",
           "-w", "\n%{http_code}", *extra]
    if body is not None:
        cmd += ["-d", body if isinstance(body, str) else json.dumps(body)]
    if data_file is not None:
        cmd += ["--data-binary", f"@{data_file}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=CURL_TIMEOUT)
    assert r.returncode == 0, f"curl {method} {path} failed ({r.returncode}): {r.stderr}"
    text, _, code = r.stdout.rpartition("\n")
    parsed = None
    if text:
        parsed = json.loads(text)
    return int(code), parsed, text


def ok(sock, method, path, body=None):
    status, js, raw = curl(sock, method, path, body)
    assert status == 204 and raw == "", f"{method} {path} {body!r}: {status} {raw}"


def fails(sock, method, path, body, *needles, status=400):
    """The call is refused with `status` and a fault_message holding every needle."""
    code, js, raw = curl(sock, method, path, body)
    assert code == status, f"{method} {path} {body!r}: wanted {status}, got {code} {raw}"
    assert isinstance(js, dict) and set(js) == {"fault_message"}, f"{method} {path}: not a fault body: {raw}"
    msg = js["fault_message"]
    for n in needles:
        assert n in msg, f"{method} {path} {body!r}: fault_message {msg!r} lacks {n!r}"
    return msg


def get(sock, path):
    code, js, raw = curl(sock, "GET", path)
    assert code == 200, f"GET {path}: {code} {raw}"
    return js


def guest_instructions(sock, metrics_path):
    """Instructions the guest's harts have retired: FlushMetrics, then the
    new line of the VM's metrics file (PUT /metrics)."""
    before = len(Path(metrics_path).read_text().splitlines()) if Path(metrics_path).exists() else 0
    ok(sock, "PUT", "/actions", {"action_type": "FlushMetrics"})
    lines = Path(metrics_path).read_text().splitlines()
    assert len(lines) > before, "FlushMetrics wrote no line"
    return sum(v["instructions"] for v in json.loads(lines[-1])["vcpus"])


def throttled(sock, metrics_path, kind, dev_id, counter):
    """A device's rate-limiter counter (times a request or a frame had to
    wait for its bucket): FlushMetrics, then the new metrics line's entry
    for `dev_id` in its `kind` list ("block" or "net")."""
    before = len(Path(metrics_path).read_text().splitlines()) if Path(metrics_path).exists() else 0
    ok(sock, "PUT", "/actions", {"action_type": "FlushMetrics"})
    lines = Path(metrics_path).read_text().splitlines()
    assert len(lines) > before, "FlushMetrics wrote no line"
    devs = {d["id"]: d for d in json.loads(lines[-1]).get(kind, [])}
    assert dev_id in devs, f"no {kind} device {dev_id} in the metrics: {lines[-1][:500]}"
    return devs[dev_id][counter]


def raw_http(sock, data, read_timeout=10, half_close=False):
    """Send raw bytes on a fresh connection; returns (what came back, whether
    the server closed the connection). With half_close, the client then
    shuts down its sending side: a server waiting for more of the request
    sees its end."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(read_timeout)
    s.connect(str(sock))
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass
    got = b""
    closed = False
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            got += chunk
            if b"\r\n\r\n" in got and not half_close:
                head, _, rest = got.partition(b"\r\n\r\n")
                m = re.search(rb"Content-Length: (\d+)", head, re.I)
                if m and len(rest) >= int(m.group(1)):
                    break
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    s.close()
    return got, closed


def from_guest_vsock(v, listen_path, command, accept_timeout):
    """What the guest sends over vsock to a host listener at listen_path
    (Firecracker's convention: <uds_path>_<port>) when `command` is typed."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(listen_path)
    srv.listen(1)
    srv.settimeout(accept_timeout)
    v.type(command + "\n")
    c, _ = srv.accept()
    c.settimeout(60)
    got = b""
    while chunk := c.recv(65536):
        got += chunk
    c.close()
    srv.close()
    return got


def status_of(reply):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", reply)
    return int(m.group(1)) if m else None


def name_prefix(request):
    """What the test module's directories and console logs are named by:
    its NAME_PREFIX ("api" here; test_ctrl_alt_del uses these fixtures too)."""
    return getattr(request.module, "NAME_PREFIX", "api")


@pytest.fixture
def short_tmp(request):
    """A short directory for sockets (sun_path holds 107 bytes)."""
    d = Path(f"/tmp/skiff-{name_prefix(request)}-{os.getpid()}-{time.monotonic_ns() % 1000000}")
    d.mkdir()
    yield d
    for f in d.iterdir():
        try:
            f.unlink()
        except OSError:
            pass
    d.rmdir()


@pytest.fixture
def vmm_factory(request, skiff_bin, console_log_dir):
    made = []
    prefix = name_prefix(request)

    def make(name, *args):
        v = Vmm(skiff_bin, args, console_log_dir / f"{prefix}-{name}.log")
        made.append(v)
        return v
    yield make
    for v in made:
        v.close()


# ------------------------------------------------------------ no guest needed

def test_api_before_start_and_bad_input(vmm_factory, short_tmp, tmp_path):
    sock = short_tmp / "fc.sock"
    v = vmm_factory("prestart", "--api-sock", sock, "--id", "api-test")
    wait_socket(v, sock)
    mode = os.lstat(sock).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600, f"socket mode {oct(mode)}"

    info = get(sock, "/")
    assert info == {"id": "api-test", "state": "Not started", "vmm_version": info["vmm_version"],
                    "app_name": "skiff"}, info
    assert get(sock, "/version") == {"firecracker_version": info["vmm_version"]}
    assert get(sock, "/machine-config")["vcpu_count"] == 1

    # Calls allowed only after InstanceStart.
    for method, path, body in [("PATCH", "/vm", {"state": "Paused"}),
                               ("PATCH", "/vm", {"state": "Resumed"}),
                               ("PATCH", "/drives/rootfs", {"drive_id": "rootfs"}),
                               ("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0"}),
                               ("PATCH", "/balloon", {"amount_mib": 1}),
                               ("PUT", "/actions", {"action_type": "FlushMetrics"}),
                               ("PUT", "/actions", {"action_type": "SendCtrlAltDel"})]:
        fails(sock, method, path, body, "not supported before starting the microVM")
    fails(sock, "GET", "/balloon/statistics", None, "not supported before starting")
    fails(sock, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 1},
          "not supported before starting")
    fails(sock, "GET", "/balloon", None, "balloon not configured")
    fails(sock, "PUT", "/actions", {"action_type": "InstanceStart"}, "kernel configuration")

    disk = tmp_path / "scratch.raw"
    disk.write_bytes(b"\0" * 65536)
    before = get(sock, "/vm/config")

    # Every class of bad input, through the socket.
    fails(sock, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256, "hugepages": 1},
          "machine-config", "unknown field `hugepages`")
    fails(sock, "PUT", "/machine-config", {"vcpu_count": "2", "mem_size_mib": 256},
          "machine-config.vcpu_count", "expected a non-negative integer")
    fails(sock, "PUT", "/machine-config", {"vcpu_count": 99, "mem_size_mib": 256},
          "machine-config.vcpu_count", "out of range")
    fails(sock, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 8},
          "machine-config.mem_size_mib", "out of range")
    fails(sock, "PUT", "/machine-config", {"vcpu_count": 2},
          "machine-config.mem_size_mib", "missing required field")
    fails(sock, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256, "smt": True},
          "machine-config.smt")
    fails(sock, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256, "cpu_quota": 3},
          "machine-config.cpu_quota")
    fails(sock, "PUT", "/boot-source", {"kernel_image_path": str(tmp_path / "no-such-Image")},
          "boot-source.kernel_image_path", "no-such-Image")
    fails(sock, "PUT", "/boot-source", {"boot_args": "console=ttyS0"},
          "boot-source.kernel_image_path", "missing required field")
    fails(sock, "PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(tmp_path / "missing.ext4"),
                                          "is_root_device": True, "is_read_only": False},
          "drives.path_on_host", "missing.ext4", "No such file")
    fails(sock, "PUT", "/drives/rootfs", {"drive_id": "other", "path_on_host": str(disk), "is_root_device": False},
          "drives.drive_id", "does not match")
    fails(sock, "PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(disk),
                                          "is_root_device": False, "format": "vdi"}, "drives.format")
    fails(sock, "PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(disk), "is_root_device": False,
                                          "rate_limiter": {"bandwidth": {"size": -1, "refill_time": 10}}},
          "drives.rate_limiter.bandwidth.size", "negative")
    fails(sock, "PUT", "/drives/bad.id", {"drive_id": "bad.id"}, "API Resource IDs")
    fails(sock, "PUT", "/drives/", {"drive_id": "x"}, "The ID cannot be empty.")
    fails(sock, "PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "guest_mac": "not-a-mac"},
          "network-interfaces.guest_mac")
    fails(sock, "PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "port_forwards": [
          {"protocol": "tcp", "host_port": 80000, "guest_port": 22}]},
          "network-interfaces.port_forwards[0].host_port", "out of range")
    fails(sock, "PUT", "/vsock", {"guest_cid": 1, "uds_path": str(short_tmp / "v.sock")}, "vsock.guest_cid")
    fails(sock, "PUT", "/balloon", {"amount_mib": 100000, "deflate_on_oom": True}, "balloon.amount_mib")
    fails(sock, "PUT", "/shares/data", {"path_on_host": str(disk)}, "shares.path_on_host", "not a directory")
    fails(sock, "PUT", "/logger", {"level": "Chatty"}, "logger.level")
    fails(sock, "PUT", "/metrics", {"metrics_path": str(tmp_path / "no" / "dir")}, "metrics.metrics_path")
    fails(sock, "PUT", "/actions", {"action_type": "Reboot"}, "actions.action_type", "Reboot")
    fails(sock, "PATCH", "/vm", {"state": "Frozen"}, "vm.state")
    fails(sock, "PUT", "/boot-source", '{"kernel_image_path": ', "deserializing", "line 1")
    fails(sock, "PUT", "/boot-source", "[1, 2]", "expected an object")
    fails(sock, "PUT", "/boot-source", '{"kernel_image_path": "a", "kernel_image_path": "b"}', "duplicate")
    fails(sock, "PUT", "/nowhere", {}, "Invalid request method and/or path")
    fails(sock, "POST", "/actions", {"action_type": "InstanceStart"}, "Invalid request method and/or path")
    fails(sock, "DELETE", "/drives/rootfs", None, "Invalid request method and/or path")
    code, _, raw = curl(sock, "PUT", "/boot-source", extra=["-H", "Content-Length: 0"])
    assert code == 400 and "Empty PUT request." in raw, raw
    # A body over 50 KiB is refused, whatever it holds.
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"kernel_image_path": "x" * (60 * 1024)}))
    code, js, raw = curl(sock, "PUT", "/boot-source", data_file=big)
    assert code == 400 and "larger than the limit of 51200" in js["fault_message"], raw
    code, js, raw = curl(sock, "PUT", "/boot-source", data_file=big,
                         extra=["-H", "Transfer-Encoding: chunked"])
    assert code == 400 and "larger than the limit" in js["fault_message"], raw
    # Nothing was half-applied by any of it.
    assert get(sock, "/vm/config") == before

    # Broken HTTP on raw connections: answered or closed, never fatal.
    reply, _ = raw_http(sock, b"PUT /boot-source HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
    assert status_of(reply) == 400 and b"larger than the limit" in reply, reply[:300]
    for junk in [b"\x00\xff\xfe garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"PUT /actions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                 b"PUT /actions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\"",
                 b"PUT /actions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                 b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"b" * 100000 + b"\r\n\r\n",
                 b"PUT /drives/%00%ff HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"]:
        # The client sends no more: the server must answer with an error or
        # close the connection, not leave it hanging.
        reply, closed = raw_http(sock, junk, read_timeout=10, half_close=True)
        code = status_of(reply)
        assert closed, f"the connection was left open after {junk[:60]!r} (got {reply[:300]!r})"
        assert code is None or code >= 400, (junk[:60], reply[:300])
        assert v.p.poll() is None, f"skiff died on {junk[:60]!r}:\n{v.stderr()}"
    # Many connections at once, left hanging mid-request, then dropped: the
    # server gives their slots back.
    hanging = []
    for _ in range(24):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(str(sock))
            s.sendall(b"PUT /actions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        except OSError:
            pass
        hanging.append(s)
    for s in hanging:
        s.close()
    t0 = time.monotonic()
    assert get(sock, "/")["state"] == "Not started"
    assert time.monotonic() - t0 < 5

    # Another VMM cannot take a socket that is in use.
    other = vmm_factory("dup-socket", "--api-sock", sock)
    assert other.wait_exit(20) == 64
    assert "already exists" in other.stderr(), other.stderr()

    v.p.terminate()
    assert v.wait_exit(20) == 0
    assert not os.path.exists(sock), "the socket file was left behind"


def test_bad_options(vmm_factory, tmp_path, short_tmp):
    cfg = tmp_path / "bad.json"
    cfg.write_text('{"machine-config": {"vcpu_count": 1, "mem_size_mib": 256}, "no-such-section": {}}')
    v = vmm_factory("bad-config", "--config-file", cfg)
    assert v.wait_exit(20) == 64
    assert "unknown field `no-such-section`" in v.stderr() and str(cfg) in v.stderr(), v.stderr()

    cfg.write_text('{"boot-source": {"kernel_image_path": ')
    v = vmm_factory("broken-config", "--config-file", cfg)
    assert v.wait_exit(20) == 64
    assert "line 1" in v.stderr(), v.stderr()

    v = vmm_factory("missing-config", "--config-file", tmp_path / "none.json")
    assert v.wait_exit(20) == 64
    assert "No such file" in v.stderr(), v.stderr()

    v = vmm_factory("long-socket", "--api-sock", "/tmp/" + "s" * 200)
    assert v.wait_exit(20) == 64
    assert "--api-sock" in v.stderr(), v.stderr()

    v = vmm_factory("bad-id", "--api-sock", short_tmp / "x.sock", "--id", "no spaces")
    assert v.wait_exit(20) == 64

    # A config file with no boot source has nothing to start.
    cfg.write_text('{"machine-config": {"vcpu_count": 1, "mem_size_mib": 256}}')
    v = vmm_factory("no-kernel", "--config-file", cfg)
    assert v.wait_exit(20) == 64
    assert "kernel" in v.stderr(), v.stderr()


# ------------------------------------------------------------ with the guest

def test_getting_started_sequence(vmm_factory, default_guest, short_tmp, tmp_path, guest_tools):
    sock = short_tmp / "firecracker.socket"
    v = vmm_factory("getting-started", "--api-sock", sock)
    wait_socket(v, sock)

    # Firecracker's getting-started calls, with skiff's kernel and initrd.
    ok(sock, "PUT", "/boot-source", {"kernel_image_path": str(default_guest.kernel),
                                     "initrd_path": str(default_guest.initrd),
                                     "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"})
    ok(sock, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
    fails(sock, "PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(tmp_path / "ubuntu.ext4"),
                                          "is_root_device": True, "is_read_only": False},
          "drives.path_on_host", "ubuntu.ext4")
    data = tmp_path / "data.raw"
    data.write_bytes(b"\0" * (1 << 20))
    ok(sock, "PUT", "/drives/data", {"drive_id": "data", "path_on_host": str(data),
                                     "is_root_device": False, "is_read_only": True, "serial": "APITEST1"})
    metrics = tmp_path / "metrics.json"
    ok(sock, "PUT", "/metrics", {"metrics_path": str(metrics)})
    log = tmp_path / "vmm.log"
    ok(sock, "PUT", "/logger", {"log_path": str(log), "level": "Info"})
    ok(sock, "PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": False})
    # skiff's share and Firecracker's vsock, through the API too.
    share = tmp_path / "data"
    share.mkdir()
    shutil.copy(guest_tools / "vsock_tool", share / "vsock_tool")
    (share / "hello.txt").write_text("shared through the API\n")
    ok(sock, "PUT", "/shares/data", {"path_on_host": str(share), "is_read_only": True})
    vsock = short_tmp / "v.sock"
    ok(sock, "PUT", "/vsock", {"guest_cid": 7, "uds_path": str(vsock)})
    # Firecracker's entropy device limit: virtio-rng gives 4 KiB a second.
    ok(sock, "PUT", "/entropy", {"rate_limiter": {"bandwidth": {"size": 4096, "refill_time": 1000}}})
    ok(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    assert get(sock, "/")["state"] == "Running"

    v.wait_output(re.escape(READY), BOOT_TIMEOUT, what=f"'{READY}' on the console")
    v.wait_output(r"# ", 60, what="the shell prompt")

    # After start: configuration calls are refused; runtime ones work.
    for method, path, body in [
            ("PUT", "/boot-source", {"kernel_image_path": str(default_guest.kernel)}),
            ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256}),
            ("PATCH", "/machine-config", {"vcpu_count": 1}),
            ("PUT", "/drives/more", {"drive_id": "more", "path_on_host": str(data), "is_root_device": False}),
            ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0"}),
            ("PUT", "/vsock", {"guest_cid": 3, "uds_path": str(short_tmp / "v.sock")}),
            ("PUT", "/balloon", {"amount_mib": 1, "deflate_on_oom": False}),
            ("PUT", "/logger", {"level": "Debug"}),
            ("PUT", "/actions", {"action_type": "InstanceStart"})]:
        fails(sock, method, path, body, "not supported after starting the microVM")
    fails(sock, "PATCH", "/drives/nosuch", {"drive_id": "nosuch", "rate_limiter": {}}, "drives.drive_id", "nosuch")
    fails(sock, "PATCH", "/drives/data", {"drive_id": "data", "is_read_only": False}, "unknown field `is_read_only`")
    # Firecracker's rules for a balloon configured without statistics.
    fails(sock, "GET", "/balloon/statistics", None, "statistics are not enabled",
          "stats_polling_interval_s")
    fails(sock, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 5},
          "balloon/statistics.stats_polling_interval_s", "cannot be turned on")
    ok(sock, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 0})   # 0 stays 0: no change
    bl = get(sock, "/balloon")
    assert bl["amount_mib"] == 0 and bl["stats_polling_interval_s"] == 0, bl
    ok(sock, "PUT", "/actions", {"action_type": "FlushMetrics"})
    line = json.loads(metrics.read_text().splitlines()[-1])
    assert line["vmm"]["state"] == "Running" and len(line["vcpus"]) == 2, line
    assert line["vcpus"][0]["exits"]["sbi"] > 0, line

    # The entropy limit holds against the guest: 16 KiB from its hwrng take
    # at least 3 s (the bucket starts full with 4 KiB). A lower bound only,
    # so a slow host passes too.
    t0 = time.monotonic()
    assert v.run("dd if=/dev/hwrng of=/dev/null bs=1024 count=16 2>/dev/null; "
                 "cat /sys/class/misc/hw_random/rng_current").startswith("virtio_rng")
    assert time.monotonic() - t0 >= 2.5, "virtio-rng gave 16 KiB faster than 4 KiB/s"

    # The share is mounted, and the guest reaches the host over the vsock.
    assert v.run("cat /mnt/data/hello.txt") == "shared through the API"
    got = from_guest_vsock(v, f"{vsock}_5200", "echo over-the-api-vsock | /mnt/data/vsock_tool send 2 5200",
                           accept_timeout=60)
    assert got == b"over-the-api-vsock\n", got

    # The drive is there, as configured.
    mark = len(v.output())
    v.type("cat /sys/block/vda/serial; echo; echo SERIAL_$((40+2))\n")
    v.wait_output(r"SERIAL_42", 60, start=mark)
    assert "APITEST1" in v.output()[mark:], v.tail()

    # Pause: the guest stops running: with input waiting for it, its harts
    # retire no instruction (the VMM's counters), and nothing is echoed.
    ok(sock, "PATCH", "/vm", {"state": "Paused"})
    assert get(sock, "/")["state"] == "Paused"
    ok(sock, "PATCH", "/vm", {"state": "Paused"})   # idempotent, as in Firecracker
    mark = len(v.output())
    v.type("echo PAUSE_$((6*7))\n")
    first = guest_instructions(sock, metrics)
    time.sleep(1)
    assert guest_instructions(sock, metrics) == first, "the guest's harts ran while paused"
    assert "PAUSE_42" not in v.output()[mark:], "the guest ran while paused"
    ok(sock, "PATCH", "/vm", {"state": "Resumed"})
    assert get(sock, "/")["state"] == "Running"
    v.wait_output(r"PAUSE_42", 60, start=mark, what="the command typed while paused")

    cfg = get(sock, "/vm/config")
    assert cfg["boot-source"]["kernel_image_path"] == str(default_guest.kernel)
    assert cfg["boot-source"]["boot_args"] == "console=ttyS0 reboot=k panic=1 pci=off"
    assert cfg["machine-config"] == {"vcpu_count": 2, "mem_size_mib": 256, "smt": False,
                                     "track_dirty_pages": False}
    # The format left out was settled (probed: read-only) when the drive was put.
    assert cfg["drives"] == [{"drive_id": "data", "path_on_host": str(data), "is_root_device": False,
                              "is_read_only": True, "format": "raw", "serial": "APITEST1"}]
    assert cfg["metrics"] == {"metrics_path": str(metrics)}
    assert "The API server received a PATCH request" in log.read_text()

    # Poweroff on the console ends the VMM with status 0.
    v.type("poweroff\n")
    assert v.wait_exit(120) == 0, v.stderr()
    assert not os.path.exists(sock)


DRIVE_RATE = 192 << 10     # bytes a second PATCHed onto a drive


def swap_writable_drive(v, sock, old, new, tmp_path):
    """PATCH the writable drive `rw` (the guest's vdb) from the raw file
    `old` to `new` while the guest uses it. The guest's direct writes send
    no FLUSH, so the only sync of `old` while strace watches is the swap's:
    what the guest wrote is on the old file's storage before the new one
    takes over (a raw image is not synced when closed; a qcow2 one is, so
    it would not show a swap that forgot). After the swap the guest's
    writes reach `new` and leave `old` as it was."""
    put = "printf {} | dd of=/dev/vdb bs=4096 seek=5 count=1 conv=sync oflag=direct 2>/dev/null"
    get_ = "dd if=/dev/vdb bs=4096 skip=5 count=1 iflag=direct 2>/dev/null | head -c 8"
    v.run(put.format("OLD-DATA"))
    assert v.run(get_) == "OLD-DATA"
    strace = shutil.which("strace")
    assert strace, "strace is not installed (scripts/deps.sh installs it)"
    pid = v.p.pid
    log = tmp_path / "swap-syncs.txt"
    tracer = subprocess.Popen([strace, "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync",
                               "-o", str(log), "-p", str(pid)], stderr=subprocess.PIPE, text=True)
    try:
        nthreads = len(os.listdir(f"/proc/{pid}/task"))
        assert wait_for(lambda: tracer.poll() is None and traced_threads(pid) >= nthreads, 30, 0.1), \
            f"strace did not attach to every thread: {tracer.poll() and tracer.stderr.read()}"
        ok(sock, "PATCH", "/drives/rw", {"drive_id": "rw", "path_on_host": str(new), "format": "raw"})
    finally:
        tracer.terminate()
        tracer.wait(30)
    name = re.escape(str(old))
    synced = re.findall(rf"^\d+\s+f(?:data)?sync\(\d+<{name}>\)\s+=\s+0", log.read_text(), re.M)
    assert synced, f"the swap did not sync the old image {old}; skiff's sync calls:\n{log.read_text()[-2000:]}"
    before = old.read_bytes()
    v.run(put.format("NEW-DATA"))
    assert v.run(get_) == "NEW-DATA"
    assert old.read_bytes() == before, "the guest's write after the swap changed the old image"
    assert before[5 * 4096:5 * 4096 + 8] == b"OLD-DATA", "the old image lost the guest's write"
    assert new.read_bytes()[5 * 4096:5 * 4096 + 8] == b"NEW-DATA", "the guest's write missed the new image"


def test_config_file_boot(vmm_factory, default_guest, guest_tools, short_tmp, tmp_path):
    """A config file boots without the API calls, its share and vsock
    used by the guest (it reaches the host's socket); then, on the running
    VM, PATCH /drives/{id} puts a rate limit on the read-only drive and
    swaps its backing file (a file that cannot be opened is refused and
    changes nothing; the guest reads the new file and sees its new size;
    the limit stays), and swaps the writable drive's (what the guest wrote
    before is flushed to the old file's storage and stays there, what it
    writes after goes to the new file only); a guest reboot rebuilds the
    VM with those PATCHes and makes the console port's socket anew (its
    client is closed); as root, a swap to a loop block device works under
    the sandbox."""
    a, b = tmp_path / "a.raw", tmp_path / "b.raw"
    a.write_bytes(b"A" * MiB)
    b.write_bytes(b"B" * (2 * MiB))
    w_old, w_new = tmp_path / "w-old.raw", tmp_path / "w-new.raw"
    for w in (w_old, w_new):
        with open(w, "wb") as f:
            f.truncate(MiB)
    tools = tmp_path / "tools"
    tools.mkdir()
    shutil.copy(guest_tools / "vsock_tool", tools / "vsock_tool")
    vsock = short_tmp / "cfg.vsock"
    port_sock = short_tmp / "port.sock"
    cfg = tmp_path / "vm.json"
    metrics = tmp_path / "metrics.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(default_guest.kernel),
                        "initrd_path": str(default_guest.initrd)},
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
        "drives": [{"drive_id": "data", "path_on_host": str(a), "is_root_device": False,
                    "is_read_only": True, "format": "raw"},
                   {"drive_id": "rw", "path_on_host": str(w_old), "is_root_device": False,
                    "is_read_only": False, "format": "raw"}],
        "network-interfaces": [], "vsock": {"guest_cid": 3, "uds_path": str(vsock)},
        "balloon": None, "logger": None, "metrics": {"metrics_path": str(metrics)},
        "shares": [{"tag": "tools", "path_on_host": str(tools), "is_read_only": True}],
    }))
    sock = short_tmp / "cfg.sock"
    v = vmm_factory("config-file", "--config-file", cfg, "--api-sock", sock, "--mem", "320",
                    "--port", f"org.skiff.reboot,uds={port_sock}")
    wait_socket(v, sock)
    assert get(sock, "/")["state"] == "Running"
    # The command line's --mem fills in over the file.
    assert get(sock, "/machine-config")["mem_size_mib"] == 320
    v.wait_output(re.escape(READY), BOOT_TIMEOUT, what=f"'{READY}' on the console")
    v.wait_output(r"# ", 60, what="the shell prompt")
    # What GET /vm/config returns is itself a valid config file.
    again = tmp_path / "again.json"
    again.write_text(json.dumps(get(sock, "/vm/config")))

    # The config file's vsock: the guest reaches the host's socket
    # (Firecracker's convention: a host listener at <uds_path>_<port>).
    got = from_guest_vsock(v, f"{vsock}_5300", "echo over-the-config-vsock | /mnt/tools/vsock_tool send 2 5300",
                           accept_timeout=120)
    assert got == b"over-the-config-vsock\n", got

    head = "dd if=/dev/vda bs=4096 count=1 iflag=direct 2>/dev/null | head -c 4"
    assert v.run(head) == "AAAA"
    swap_writable_drive(v, sock, w_old, w_new, tmp_path)
    # A backing file that cannot be opened is refused; nothing changes:
    # one that is missing (checked with the request), one another process
    # holds locked for writing (seen only when the VM opens it).
    fails(sock, "PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(tmp_path / "none.raw")},
          "drives.path_on_host", "none.raw", "No such file")
    locked = tmp_path / "locked.raw"
    locked.write_bytes(b"L" * MiB)
    with open(locked, "r+b") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        fails(sock, "PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(locked)},
              "cannot update drive `data`", "locked")
    assert get(sock, "/vm/config")["drives"][0]["path_on_host"] == str(a)
    assert v.run(head) == "AAAA"
    # PATCH a rate limit: the same read of 1 MiB, unlimited and then
    # limited, in the same guest. Unlimited, no request waited for the
    # drive's bucket; limited, requests waited (the metrics' throttle
    # count: a state, where a wall-time bound on the unlimited read fails
    # on a busy host) and the read took at least what the rate allows.
    mib = "dd if=/dev/vda of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null"
    waits = throttled(sock, metrics, "block", "data", "rate_limiter_throttled_events")
    t0 = time.monotonic()
    v.run(mib)
    free = time.monotonic() - t0
    assert throttled(sock, metrics, "block", "data", "rate_limiter_throttled_events") == waits, \
        "the drive's reads waited for a bucket before any limit was PATCHed in"
    ok(sock, "PATCH", "/drives/data", {"drive_id": "data",
                                       "rate_limiter": {"bandwidth": {"size": DRIVE_RATE, "refill_time": 1000}}})
    t0 = time.monotonic()
    v.run(mib, timeout=120)
    limited = time.monotonic() - t0
    bound = (MiB - DRIVE_RATE) / DRIVE_RATE - 0.5
    print(f"\n1 MiB from the drive: {free:.1f} s unlimited, {limited:.1f} s at {DRIVE_RATE >> 10} KiB/s")
    assert limited >= bound, f"1 MiB through a {DRIVE_RATE} B/s limit PATCHed in took {limited:.1f} s"
    assert throttled(sock, metrics, "block", "data", "rate_limiter_throttled_events") > waits, \
        "no read waited for the drive's bucket after the limit was PATCHed in"

    # Swap the backing file under the running guest (Firecracker's PATCH
    # path_on_host): b is twice a's size; the driver learns the new
    # capacity from the configuration change interrupt.
    ok(sock, "PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(b)})
    drive = get(sock, "/vm/config")["drives"][0]
    assert drive["path_on_host"] == str(b) and drive["format"] == "raw", drive
    sectors = v.run("for i in $(seq 30); do [ $(cat /sys/block/vda/size) = 4096 ] && break; sleep 1; "
                    "done; cat /sys/block/vda/size")
    assert sectors == "4096", f"the guest's vda has {sectors} sectors after the swap, not 2 MiB's 4096"
    assert v.run(head) == "BBBB"
    tail = "dd if=/dev/vda bs=512 skip=4095 count=1 iflag=direct 2>/dev/null | head -c 4"
    assert v.run(tail) == "BBBB", "the new file's last sector is not the guest's"
    # The limit PATCHed before the swap still holds.
    t0 = time.monotonic()
    v.run(mib, timeout=120)
    swapped = time.monotonic() - t0
    assert swapped >= bound, f"1 MiB of the swapped-in file took {swapped:.1f} s: the drive's limit was lost"

    # The port's client gets what the guest writes.
    client = socket.socket(socket.AF_UNIX)
    client.settimeout(60)
    client.connect(str(port_sock))
    v.run("echo before-reboot > /dev/virtio-ports/org.skiff.reboot")
    assert client.recv(100) == b"before-reboot\n"

    # A guest reboot builds the VM again in the same process.
    mark = len(v.output())
    v.type("reboot\n")
    v.wait_output(re.escape(READY), BOOT_TIMEOUT, start=mark, what=f"'{READY}' after the reboot")
    v.wait_output(r"# ", 60, start=mark, what="the shell prompt after the reboot")
    assert get(sock, "/")["state"] == "Running"
    # The old client was closed; the socket is there anew.
    assert client.recv(100) == b"", "the port's client was not closed by the reboot"
    client.close()
    # The PATCHes are kept: the new file and the limit after the reboot too.
    drive = get(sock, "/vm/config")["drives"][0]
    assert drive["path_on_host"] == str(b), drive
    assert drive.get("rate_limiter", {}).get("bandwidth", {}).get("size") == DRIVE_RATE, \
        f"the PATCHed limit is gone after the reboot: {drive}"
    assert v.run(tail) == "BBBB"
    t0 = time.monotonic()
    v.run(mib, timeout=120)
    after = time.monotonic() - t0
    assert after >= bound, f"after the reboot 1 MiB took {after:.1f} s: the PATCHed limit was lost"
    client = socket.socket(socket.AF_UNIX)
    client.settimeout(60)
    client.connect(str(port_sock))
    v.run("echo after-reboot > /dev/virtio-ports/org.skiff.reboot")
    assert client.recv(100) == b"after-reboot\n"
    client.close()

    # A block device as the new backing file (root only: losetup makes
    # it; CI runs as root). Under the sandbox the API thread asks the
    # device's size (ioctl BLKGETSIZE64); the guest sees it.
    if os.geteuid() == 0 and shutil.which("losetup"):
        c = tmp_path / "c.raw"
        c.write_bytes(b"C" * (3 * MiB))
        loop = subprocess.run(["losetup", "--find", "--show", "--read-only", str(c)],
                              check=True, capture_output=True, text=True).stdout.strip()
        try:
            ok(sock, "PATCH", "/drives/data", {"drive_id": "data", "path_on_host": loop})
            sectors = v.run("for i in $(seq 30); do [ $(cat /sys/block/vda/size) = 6144 ] && break; "
                            "sleep 1; done; cat /sys/block/vda/size")
            assert sectors == "6144", f"after the swap to {loop} the guest's vda has {sectors} sectors, not 6144"
            assert v.run(head) == "CCCC"
        finally:
            subprocess.run(["losetup", "--detach", loop], capture_output=True)

    v.type("poweroff\n")
    assert v.wait_exit(120) == 0, v.stderr()

    v2 = vmm_factory("config-file-again", "--config-file", again)
    v2.wait_output(r"Linux version", BOOT_TIMEOUT, what="the kernel banner")
    v2.p.terminate()
    assert v2.wait_exit(30) == 0


# ------------------------------------------------------------ runtime updates, one shared VM

RATE = 128 << 10           # bytes a second through a NIC's limiters
LIMITED_BYTES = MiB        # sent through a limit: at least (1 MiB - the 128 KiB burst) / RATE = 7 s
FILL_MIB = 160             # page cache the guest fills before the balloon inflates
BALLOON_MIB = 128


def rate_limiter(rate=RATE):
    return {"bandwidth": {"size": rate, "refill_time": 1000}}


LIMITED_BOUND = (LIMITED_BYTES - RATE) / RATE - 0.5


@pytest.fixture(scope="module")
def runtime_vm(skiff_bin, default_guest, console_log_dir, tmp_path_factory):
    """The default guest from a config file: a NIC on the user network with
    a port forward and a 128 KiB/s receive limit, a balloon with statistics
    every second, and a sparse disk for the page cache; the API on a socket."""
    d = Path(f"/tmp/skiff-rt-{os.getpid()}")
    d.mkdir()
    fill = tmp_path_factory.mktemp("api-runtime") / "fill.raw"
    with open(fill, "wb") as f:
        f.truncate(FILL_MIB * MiB)
    port = free_port()
    cfg = d / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": str(default_guest.kernel),
                        "initrd_path": str(default_guest.initrd)},
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
        "drives": [{"drive_id": "fill", "path_on_host": str(fill), "is_root_device": False,
                    "is_read_only": True}],
        "network-interfaces": [{"iface_id": "eth0", "backend": "user",
                                "port_forwards": [{"protocol": "tcp", "host_port": port,
                                                   "guest_port": 80}],
                                "rx_rate_limiter": rate_limiter()}],
        "balloon": {"amount_mib": 0, "deflate_on_oom": False, "stats_polling_interval_s": 1},
        "metrics": {"metrics_path": str(d / "metrics.json")},
    }))
    sock = d / "api.sock"
    g = Guest(skiff_bin, ["--config-file", cfg, "--api-sock", sock],
              console_log_dir / "api-runtime.log", name="api-runtime")
    try:
        g.wait_ready()
        g.sock = sock
        g.port = port
        g.metrics = d / "metrics.json"
        yield g
    finally:
        g.close()
        for f in d.iterdir():
            f.unlink()
        d.rmdir()


def nic_waits(g, counter):
    """eth0's rx_rate_limiter_throttled or tx_rate_limiter_throttled."""
    return throttled(g.sock, g.metrics, "net", "eth0", counter)


def test_rx_limit_from_configuration(runtime_vm):
    """Host -> guest through the forward, against the configured rx limit
    (frames waited for the bucket; the transfer took at least what the
    rate allows); then with the limit lifted, the same transfer in the
    same guest has no frame wait (a state, not a time bound that a busy
    host breaks)."""
    g = runtime_vm
    g.run("ip -4 addr show dev eth0 | grep -q 10.0.2.15", timeout=60)
    rx0 = nic_waits(g, "rx_rate_limiter_throttled")
    limited = host_to_guest_nc(g, g.port, LIMITED_BYTES)
    rx1 = nic_waits(g, "rx_rate_limiter_throttled")
    ok(g.sock, "PATCH", "/network-interfaces/eth0",
       {"iface_id": "eth0", "rx_rate_limiter": {"bandwidth": {"size": 0, "refill_time": 1000}}})
    # Counted from the lift on: a late frame of the limited transfer (an
    # ACK) may still have waited between the read above and the PATCH.
    lifted = nic_waits(g, "rx_rate_limiter_throttled")
    free = host_to_guest_nc(g, g.port, LIMITED_BYTES)
    rx2 = nic_waits(g, "rx_rate_limiter_throttled")
    print(f"\nhost->guest {LIMITED_BYTES >> 10} KiB: {limited:.1f} s at rx {RATE >> 10} KiB/s, "
          f"{free:.1f} s unlimited; rx throttle count {rx0} -> {rx1}, {lifted} -> {rx2}")
    assert limited >= LIMITED_BOUND, f"{LIMITED_BYTES} bytes through a {RATE} B/s rx limit took {limited:.1f} s"
    assert rx1 > rx0, "no received frame waited for the configured rx limit's bucket"
    assert rx2 == lifted, f"with the rx limit lifted, frames still waited ({lifted} -> {rx2})"


def test_patch_tx_limit_at_runtime(runtime_vm):
    """Guest -> host: unlimited (no frame waits for a bucket), then with a
    tx limit PATCHed in (frames wait; slower by the rate), then with the
    limits lifted (no frame waits again)."""
    g = runtime_vm
    sock = g.sock
    tx0 = nic_waits(g, "tx_rate_limiter_throttled")
    n, free = guest_to_host_nc_bytes(g, LIMITED_BYTES)
    tx1 = nic_waits(g, "tx_rate_limiter_throttled")
    ok(sock, "PATCH", "/network-interfaces/eth0",
       {"iface_id": "eth0", "tx_rate_limiter": rate_limiter()})
    nic = get(sock, "/vm/config")["network-interfaces"][0]
    assert nic["tx_rate_limiter"]["bandwidth"] == {"size": RATE, "refill_time": 1000,
                                                   "one_time_burst": 0}, nic
    n, limited = guest_to_host_nc_bytes(g, LIMITED_BYTES)
    tx2 = nic_waits(g, "tx_rate_limiter_throttled")

    # Lifting both limits (size 0) is accepted and kept; the ops buckets
    # that were not named stay as they were.
    off = {"bandwidth": {"size": 0, "refill_time": 1000}}
    ok(sock, "PATCH", "/network-interfaces/eth0",
       {"iface_id": "eth0", "rx_rate_limiter": off, "tx_rate_limiter": off})
    nic = get(sock, "/vm/config")["network-interfaces"][0]
    for k in ("rx_rate_limiter", "tx_rate_limiter"):
        assert nic.get(k, {}).get("bandwidth", {}).get("size", 0) == 0, nic
    # Counted from the lift on (a late frame of the limited transfer may
    # have waited after the read above).
    tx_lift = nic_waits(g, "tx_rate_limiter_throttled")
    n, lifted = guest_to_host_nc_bytes(g, LIMITED_BYTES)
    tx3 = nic_waits(g, "tx_rate_limiter_throttled")
    print(f"\nguest->host {LIMITED_BYTES >> 10} KiB: {free:.1f} s unlimited, {limited:.1f} s at tx "
          f"{RATE >> 10} KiB/s, {lifted:.1f} s after lifting it; tx throttle count "
          f"{tx0} -> {tx1} -> {tx2}, {tx_lift} -> {tx3}")
    assert limited >= LIMITED_BOUND, \
        f"{LIMITED_BYTES} bytes through a {RATE} B/s tx limit PATCHed in took {limited:.1f} s"
    assert tx1 == tx0, f"frames waited for a tx bucket before any tx limit ({tx0} -> {tx1})"
    assert tx2 > tx1, "no transmitted frame waited for the tx limit PATCHed in"
    assert tx3 == tx_lift, f"after lifting the tx limit frames still waited ({tx_lift} -> {tx3})"


def guest_to_host_nc_bytes(guest, nbytes):
    """guest_to_host_nc for a byte count that is a whole number of MiB or
    a 64 KiB multiple; checks every byte arrived."""
    n, secs = guest_to_host_nc(guest, nbytes / MiB)
    assert n == nbytes, f"guest->host nc moved {n} of {nbytes} bytes"
    return n, secs


def test_bad_runtime_input(runtime_vm):
    sock = runtime_vm.sock
    before = get(sock, "/vm/config")
    fails(sock, "PATCH", "/network-interfaces/eth0",
          {"iface_id": "eth0", "tx_rate_limiter": {"bandwidth": {"size": -1, "refill_time": 10}}},
          "network-interfaces.tx_rate_limiter.bandwidth.size", "negative")
    fails(sock, "PATCH", "/network-interfaces/eth0",
          {"iface_id": "eth0", "rx_rate_limiter": {"ops": {"size": 10}}},
          "network-interfaces.rx_rate_limiter.ops", "missing required field `refill_time`")
    fails(sock, "PATCH", "/network-interfaces/eth0",
          {"iface_id": "eth0", "rx_rate_limiter": {"bandwidth": {"size": "1M", "refill_time": 10}}},
          "network-interfaces.rx_rate_limiter.bandwidth.size")
    fails(sock, "PATCH", "/network-interfaces/eth0", {"iface_id": "eth0", "guest_mac": "02:00:00:00:00:09"},
          "unknown field `guest_mac`")
    fails(sock, "PATCH", "/network-interfaces/eth1", {"iface_id": "eth1", "rx_rate_limiter": {}},
          "network-interfaces.iface_id", "eth1")
    fails(sock, "PATCH", "/network-interfaces/eth0", {"iface_id": "eth9"},
          "network-interfaces.iface_id", "does not match")
    fails(sock, "PATCH", "/balloon", {"amount_mib": 4096}, "balloon.amount_mib", "more than the guest memory")
    fails(sock, "PATCH", "/balloon", {"amount_mib": -5}, "balloon.amount_mib", "negative")
    fails(sock, "PATCH", "/balloon", {"amount_mib": "64"}, "balloon.amount_mib")
    fails(sock, "PATCH", "/balloon", {"deflate_on_oom": True}, "balloon")
    fails(sock, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 0},
          "balloon/statistics.stats_polling_interval_s", "cannot be turned on or off")
    fails(sock, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 1.5},
          "balloon/statistics.stats_polling_interval_s")
    assert get(sock, "/vm/config") == before


def test_balloon_statistics(runtime_vm):
    sock = runtime_vm.sock
    names = {"target_pages", "actual_pages", "target_mib", "actual_mib", "swap_in", "swap_out",
             "major_faults", "minor_faults", "free_memory", "total_memory", "available_memory",
             "disk_caches", "hugetlb_allocations", "hugetlb_failures"}
    st = wait_for(lambda: (lambda s: s if "total_memory" in s else None)(get(sock, "/balloon/statistics")),
                  30, 1)
    assert st, f"no guest statistics after 30 s: {get(sock, '/balloon/statistics')}"
    assert set(st) <= names, f"fields outside Firecracker's: {set(st) - names}"
    assert {"free_memory", "available_memory", "minor_faults"} <= set(st), st
    assert st["target_pages"] == 0 and st["target_mib"] == 0, st
    total = st["total_memory"]
    assert 150 * MiB < total <= 256 * MiB, f"total_memory {total} for a 256 MiB guest"
    assert 0 < st["free_memory"] <= total and 0 < st["available_memory"] <= total, st
    # The guest's own numbers: /proc/meminfo's MemTotal is the same.
    memtotal = int(runtime_vm.run("grep MemTotal /proc/meminfo").split()[1]) * 1024
    assert total == memtotal, f"total_memory {total}, guest MemTotal {memtotal}"
    # Statistics keep coming: minor faults grow as the guest works.
    runtime_vm.run("for i in $(seq 30); do ls / > /dev/null; done", timeout=120)
    later = wait_for(lambda: (lambda s: s if s["minor_faults"] > st["minor_faults"] else None)(
        get(sock, "/balloon/statistics")), 20, 1)
    assert later, "minor_faults did not move in 20 s with a 1 s polling interval"
    ok(sock, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 2})
    assert get(sock, "/balloon")["stats_polling_interval_s"] == 2
    ok(sock, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 1})


def test_balloon_inflate_and_deflate(runtime_vm):
    g = runtime_vm
    sock = g.sock
    pid = g.p.pid
    bl = get(sock, "/balloon")
    assert bl == {"amount_mib": 0, "deflate_on_oom": False, "stats_polling_interval_s": 1,
                  "free_page_hinting": False, "free_page_reporting": True,
                  "actual_mib": 0, "inflated_bytes_total": 0,
                  "free_page_reported_bytes_total": bl.get("free_page_reported_bytes_total")}, bl
    # Page cache the guest can give up: reading the sparse disk makes its
    # pages resident in the VMM.
    before = rss_kib(pid)
    g.run("cat /dev/vda > /dev/null", timeout=300)
    filled = rss_kib(pid)
    assert filled - before > FILL_MIB * 1024 // 2, \
        f"RSS grew only {(filled - before) >> 10} MiB after the guest read {FILL_MIB} MiB"
    ok(sock, "PATCH", "/balloon", {"amount_mib": BALLOON_MIB})
    assert get(sock, "/balloon")["amount_mib"] == BALLOON_MIB
    got = wait_for(lambda: (lambda b: b if b["actual_mib"] >= BALLOON_MIB * 3 // 4 else None)(
        get(sock, "/balloon")), 90, 1)
    low = rss_kib(pid)
    print(f"\nballoon {BALLOON_MIB} MiB: RSS {before >> 10} -> {filled >> 10} (page cache) -> "
          f"{low >> 10} MiB; GET /balloon {get(sock, '/balloon')}")
    assert got, f"actual_mib did not approach {BALLOON_MIB}: {get(sock, '/balloon')}"
    st = get(sock, "/balloon/statistics")
    assert st["target_mib"] == BALLOON_MIB and st["target_pages"] == BALLOON_MIB * 256, st
    assert st["actual_mib"] >= BALLOON_MIB * 3 // 4, st
    given = get(sock, "/balloon")["inflated_bytes_total"]
    assert given >= st["actual_pages"] << 12, f"inflated_bytes_total {given} with {st['actual_pages']} pages held"
    assert filled - low > BALLOON_MIB * 1024 // 2, \
        f"RSS fell only {(filled - low) >> 10} MiB when the balloon took {got['actual_mib']} MiB"
    # The guest sees the memory gone (without deflate_on_oom Linux lowers MemTotal).
    memtotal = int(g.run("grep MemTotal /proc/meminfo").split()[1]) >> 10
    assert memtotal <= 256 - BALLOON_MIB * 3 // 4, f"guest MemTotal {memtotal} MiB with the balloon inflated"
    # Deflating gives it back.
    ok(sock, "PATCH", "/balloon", {"amount_mib": 0})
    back = wait_for(lambda: (lambda b: b if b["actual_mib"] == 0 else None)(get(sock, "/balloon")), 60, 1)
    assert back, f"actual_mib did not return to 0: {get(sock, '/balloon')}"
    assert g.run("echo alive") == "alive"

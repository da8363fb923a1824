"""virtio-console and virtio-rng through the real guest.

One boot with `--console virtio` and a named port (`--port
org.skiff.test,uds=SOCK`): the shell comes over hvc0 and the kernel's
console is hvc0; the port is /dev/virtio-ports/org.skiff.test in the guest;
bytes pass byte-exact both ways (4 MiB to the host, with a host reader that
starts late, so the guest's writes must wait rather than be lost; 1 MiB to
the guest, more than the port buffers); guest output with no client connected is dropped; a new client
takes over from the old one; poweroff exits 0 and removes the socket.
virtio-rng in the same boot: /dev/hwrng is virtio_rng and gives random bytes.

A second boot with the UART console, `--no-rng` and a port: the
virtio-console device is there for the port alone, and there is no
virtio-rng.

With hvc0 as the console, the default guest's `skiff-guest: ready` never
shows: hvc0 exists only once /init has loaded the virtio modules, after
/init's own output went nowhere. The boot waits for the shell prompt instead.

Then `--port` and `console-ports` option errors and socket file handling
with a tiny image that powers off at once, and standard input that is not a
terminal with a tiny image that echoes its UART (no Linux boot).
"""
import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import rvimage
from conftest import BOOT_TIMEOUT, PROMPT_RE, Guest, wait_for
from test_api import curl, get, guest_instructions

PORT = "org.skiff.test"
MIB = 1 << 20


@pytest.fixture(scope="module")
def sockdir():
    """A short directory for the sockets (sun_path holds 107 bytes)."""
    d = tempfile.mkdtemp(prefix="skiff-port-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def wait_shell(g):
    """Boot until the shell prompt (there is no `ready` line on hvc0)."""
    i = g._expect([PROMPT_RE, r"Kernel panic - not syncing[^\r\n]*"], BOOT_TIMEOUT,
                  "the shell prompt")
    if i == 1:
        g.broken = "kernel panic"
        g.fail("the guest kernel panicked during boot")
    g.boot_seconds = time.monotonic() - g.started
    return g


def connect(path, timeout=60):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        d = s.recv(min(65536, n - len(buf)))
        if not d:
            break
        buf += d
    return bytes(buf)


class Reader(threading.Thread):
    """Reads n bytes from a socket in the background, after a delay."""

    def __init__(self, s, n, delay=0.0):
        super().__init__(daemon=True)
        self.s, self.n, self.delay = s, n, delay
        self.data, self.error = b"", None
        self.start()

    def run(self):
        try:
            time.sleep(self.delay)
            self.data = recv_exact(self.s, self.n)
        except OSError as e:
            self.error = e


@pytest.fixture(scope="module")
def hvc(skiff_bin, default_guest, console_log_dir, sockdir):
    path = os.path.join(sockdir, "test.sock")
    g = Guest(skiff_bin, ["--console", "virtio", "--port", f"{PORT},uds={path}"],
              console_log_dir / "console-virtio.log", name="console-virtio")
    try:
        wait_shell(g)
        g.sock = path
        yield g
    finally:
        g.close()


def test_shell_and_kernel_console_on_hvc0(hvc):
    assert hvc.run("echo $((6 * 7))") == "42"
    consoles = hvc.run("cat /proc/consoles")
    assert re.search(r"^hvc0\b", consoles, re.M), consoles
    assert "ttyS0" not in consoles, consoles
    assert hvc.run("cat /sys/class/tty/console/active").split() == ["hvc0"]


def test_port_is_named_in_the_guest(hvc):
    assert os.stat(hvc.sock).st_mode & 0o777 == 0o600
    dev = hvc.run(f"readlink /dev/virtio-ports/{PORT}")
    assert re.fullmatch(r"\.\./vport\d+p[1-9]\d*", dev), dev
    assert hvc.run(f"cat /sys/class/virtio-ports/{dev[3:]}/name") == PORT
    hvc.run(f"test -c /dev/virtio-ports/{PORT}")


def test_bytes_both_ways(hvc):
    c = connect(hvc.sock)
    try:
        hvc.run(f"echo hello from the guest > /dev/virtio-ports/{PORT}")
        assert recv_exact(c, 21) == b"hello from the guest\n"

        # Guest to host, 4 MiB (more than skiff buffers for a slow client).
        # The host starts reading late: the guest's writes wait meanwhile,
        # nothing is dropped.
        n = 4 * MIB
        want = hvc.run(f"head -c {n} /dev/urandom > /tmp/g2h && sha256sum /tmp/g2h").split()[0]
        r = Reader(c, n, delay=3)
        hvc.run(f"cat /tmp/g2h > /dev/virtio-ports/{PORT}", timeout=300)
        r.join(120)
        assert r.error is None, r.error
        assert len(r.data) == n, f"the host got {len(r.data)} of {n} bytes"
        assert hashlib.sha256(r.data).hexdigest() == want
        hvc.run("rm /tmp/g2h")

        # Host to guest, 1 MiB, sent before the guest opens the port.
        data = os.urandom(MIB)
        sender = threading.Thread(target=c.sendall, args=(data,), daemon=True)
        sender.start()
        got = hvc.run(f"head -c {MIB} /dev/virtio-ports/{PORT} | sha256sum", timeout=300).split()[0]
        sender.join(60)
        assert not sender.is_alive(), "the host could not send all of its 1 MiB"
        assert got == hashlib.sha256(data).hexdigest()
    finally:
        c.close()


def test_output_without_client_is_dropped_and_clients_take_over(hvc):
    # The last client closed: this is written to nobody.
    hvc.run(f"echo lost > /dev/virtio-ports/{PORT}")
    first = connect(hvc.sock)
    second = None
    try:
        hvc.run(f"echo first > /dev/virtio-ports/{PORT}")
        assert recv_exact(first, 6) == b"first\n"
        second = connect(hvc.sock)
        # The old client is closed: it reads end of file.
        assert first.recv(100) == b""
        hvc.run(f"echo second > /dev/virtio-ports/{PORT}")
        assert recv_exact(second, 7) == b"second\n"
        # The new client's input reaches the guest.
        second.sendall(b"typed by the new client\n")
        assert hvc.run(f"head -n 1 /dev/virtio-ports/{PORT}") == "typed by the new client"
    finally:
        first.close()
        if second:
            second.close()


def test_virtio_rng(hvc):
    assert hvc.run("cat /sys/class/misc/hw_random/rng_current").startswith("virtio_rng")
    out = hvc.run("head -c 65536 /dev/hwrng > /tmp/r1 && head -c 65536 /dev/hwrng > /tmp/r2 && "
                  "wc -c < /tmp/r1 && tr -d '\\000' < /tmp/r1 | wc -c && "
                  "if cmp -s /tmp/r1 /tmp/r2; then echo same; else echo differ; fi").split()
    size, nonzero, same = int(out[0]), int(out[1]), out[2]
    assert size == 65536
    assert nonzero > 60000, f"{65536 - nonzero} of 65536 bytes from /dev/hwrng are zero"
    assert same == "differ", "two reads of /dev/hwrng gave the same bytes"


def test_poweroff_removes_the_socket(hvc):
    assert hvc.poweroff() == 0
    assert not os.path.exists(hvc.sock)


def test_uart_console_with_port_and_no_rng(boot_guest, sockdir):
    path = os.path.join(sockdir, "uart.sock")
    g = boot_guest("console-uart-port", "--no-rng", "--port", f"agent.0,uds={path}")
    try:
        assert re.search(r"^ttyS0\b", g.run("cat /proc/consoles"), re.M)
        g.run("test -c /dev/virtio-ports/agent.0")
        # no console on the device, so no port 0 (no hvc0 from it), as with
        # QEMU's virtio-serial without a virtconsole
        ports = g.run("ls /sys/class/virtio-ports").split()
        assert ports and not [p for p in ports if p.endswith("p0")], ports
        c = connect(path)
        try:
            c.sendall(b"ping\n")
            assert g.run("head -n 1 /dev/virtio-ports/agent.0") == "ping"
            g.run("echo pong > /dev/virtio-ports/agent.0")
            assert recv_exact(c, 5) == b"pong\n"
        finally:
            c.close()
        rng = g.run("cat /sys/class/misc/hw_random/rng_available "
                    "/sys/class/misc/hw_random/rng_current 2>&1", check=False)
        assert "virtio_rng" not in rng, rng
        status, out = g.run_status("head -c 16 /dev/hwrng")
        assert status != 0, f"/dev/hwrng gave data without an rng device: {out!r}"
        assert g.poweroff() == 0
    finally:
        g.close()


# ------------------------------------------------------------ no Linux boot

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    p = tmp_path_factory.mktemp("tiny") / "tiny.Image"
    p.write_bytes(rvimage.image(rvimage.prog_putchar_then_shutdown(b"")))
    return p


def skiff_run(skiff_bin, *args):
    return subprocess.run([skiff_bin, "run", *map(str, args)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, errors="replace", timeout=60)


def one_line_64(r, *patterns):
    assert r.returncode == 64, f"status {r.returncode}, stderr {r.stderr!r}"
    err = r.stderr.strip("\n")
    assert err.startswith("skiff") and "\n" not in err, repr(r.stderr)
    for pat in patterns:
        assert re.search(pat, err), f"/{pat}/ not in {err!r}"


@pytest.mark.parametrize("ports,patterns", [
    (["noport"], [r"--port noport", r"uds=PATH"]),
    (["a/b,uds=/tmp/x.sock"], [r"--port a/b", r"NAME must be"]),
    ([",uds=/tmp/x.sock"], [r"NAME must be"]),
    (["has space,uds=/tmp/x.sock"], [r"NAME must be"]),
    (["..,uds=/tmp/x.sock"], [r"NAME must be"]),
    (["x" * 128 + ",uds=/tmp/x.sock"], [r"1 to 127"]),
    (["a,uds=/tmp/x.sock,ro"], [r"unknown setting 'ro'"]),
    (["a,uds="], [r"uds must be 1 to 107"]),
    (["a,uds=/tmp/" + "x" * 110], [r"uds must be 1 to 107"]),
    (["a,uds=/tmp/x.sock", "a,uds=/tmp/y.sock"], [r"already a port named a"]),
    (["a,uds=/tmp/x.sock", "b,uds=/tmp/x.sock"], [r"port a already uses /tmp/x\.sock"]),
], ids=["no-uds", "slash", "empty-name", "space", "dotdot", "long-name", "unknown", "empty-uds",
        "long-uds", "same-name", "same-socket"])
def test_port_option_errors(skiff_bin, tiny, ports, patterns):
    args = ["--kernel", tiny]
    for p in ports:
        args += ["--port", p]
    one_line_64(skiff_run(skiff_bin, *args), *patterns)


def test_port_socket_files(skiff_bin, tiny, sockdir):
    path = os.path.join(sockdir, "tiny.sock")
    # A file that is not a socket is left alone.
    with open(path, "w") as f:
        f.write("keep me\n")
    one_line_64(skiff_run(skiff_bin, "--kernel", tiny, "--port", f"a,uds={path}"),
                r"already exists and is not a socket")
    assert open(path).read() == "keep me\n"
    os.unlink(path)
    # A socket a program listens on is refused.
    busy = socket.socket(socket.AF_UNIX)
    busy.bind(path)
    busy.listen(1)
    try:
        one_line_64(skiff_run(skiff_bin, "--kernel", tiny, "--port", f"a,uds={path}"),
                    r"a program is listening")
    finally:
        busy.close()
    # The file it left behind is stale: replaced, and removed at the end.
    assert os.path.exists(path)
    r = skiff_run(skiff_bin, "--kernel", tiny, "--port", f"a,uds={path}")
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(path)


def test_console_ports_in_a_config_file(skiff_bin, tiny, sockdir, tmp_path):
    def run_with(ports):
        cfg = tmp_path / "vm.json"
        cfg.write_text(json.dumps({"boot-source": {"kernel_image_path": str(tiny)},
                                   "console-ports": ports}))
        return skiff_run(skiff_bin, "--config-file", cfg)
    r = run_with([{"name": "a,b", "uds_path": os.path.join(sockdir, "c.sock")}])
    one_line_64(r, r"console-ports\[0\]\.name: `a,b` is not a valid port name")
    path = os.path.join(sockdir, "c.sock")
    with open(path, "w") as f:
        f.write("not a socket\n")
    # The port is made when the VM is: its socket problem stops the start.
    one_line_64(run_with([{"name": "agent", "uds_path": path}]), r"port agent: .*not a socket")
    os.unlink(path)
    r = run_with([{"name": "agent", "uds_path": path}])
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(path)
    # --port adds to the file's ports.
    cfg = tmp_path / "vm.json"
    r = skiff_run(skiff_bin, "--config-file", cfg, "--port", f"agent,uds={path}2")
    one_line_64(r, r"--port agent,uds=.*: there is already a port named agent")


def test_stdin_not_a_terminal(skiff_bin, sockdir, tmp_path):
    """Standard input a pipe: the escape keys are off (C-a x, C-a C-a and
    C-a h reach the guest unchanged; a guest that echoes its UART sends
    them back), the guest runs on after standard input ends (its harts keep
    retiring instructions), and SIGINT ends skiff with status 0. The API
    socket's path held a stale socket file, which skiff replaced; it is
    removed at exit."""
    echo = tmp_path / "echo.Image"
    echo.write_bytes(rvimage.image(rvimage.prog_uart_echo()))
    api = os.path.join(sockdir, "stdin-api.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(api)
    stale.close()
    metrics = tmp_path / "metrics.json"
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({"boot-source": {"kernel_image_path": str(echo)},
                               "metrics": {"metrics_path": str(metrics)}}))
    p = subprocess.Popen([skiff_bin, "run", "--config-file", str(cfg), "--api-sock", api],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def answers():
            try:
                return curl(api, "GET", "/")[0] == 200
            except AssertionError:      # curl could not connect (yet)
                return False
        assert wait_for(answers, 20, 0.1), f"the API did not answer on {api} (a stale socket file was there)"
        assert get(api, "/")["state"] == "Running"
        typed = b"ab\x01xcd\x01\x01ef\x01h\n"
        p.stdin.write(typed)
        p.stdin.flush()
        got = b""
        deadline = time.monotonic() + 20
        while len(got) < len(typed) and time.monotonic() < deadline:
            if select.select([p.stdout], [], [], 0.2)[0]:
                got += os.read(p.stdout.fileno(), 4096)
        assert got == typed, f"the guest echoed {got!r} for {typed!r}"
        assert p.poll() is None, "skiff ended on C-a x from a pipe"
        p.stdin.close()
        first = guest_instructions(api, metrics)
        assert wait_for(lambda: guest_instructions(api, metrics) > first, 20, 0.2), \
            "the guest stopped running when standard input ended"
        assert p.poll() is None
        p.send_signal(signal.SIGINT)
        assert p.wait(20) == 0, p.stderr.read()
        assert not os.path.exists(api), "the API socket was left behind"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()

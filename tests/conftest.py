"""Shared pytest setup for skiff's Python test suites (tests/integration/ and
later ones): where the `skiff` binary is, where the default guest is, and
`Guest`, a pexpect driver for a VM's serial console.

Options and environment:
  --skiff-build DIR / SKIFF_BUILD=DIR   meson build directory holding
                                        src/cli/skiff (default: build)
  SKIFF_REQUIRE_GUEST=1                 a missing default guest image is a
                                        failure, not a skip (CI sets it)
  SKIFF_BOOT_TIMEOUT=SECONDS            how long a boot may take (default 300)
  XDG_CACHE_HOME                        as for skiff itself: the default
                                        guest is $XDG_CACHE_HOME/skiff/default

Run with Debian's python3:  python3 -m pytest tests/integration
"""
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pexpect
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# busybox ash prompt from the guest's /etc/profile (PS1='\u@\h:\w\$ ').
PROMPT_RE = r"root@skiff:[^\r\n]*# "
READY = "skiff-guest: ready"
INIT_STARTED = "skiff-guest: init started"


def pytest_addoption(parser):
    parser.addoption(
        "--skiff-build", default=None,
        help="meson build directory with src/cli/skiff (env SKIFF_BUILD; default: build)")


def env_seconds(name, default):
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise pytest.UsageError(f"{name}={raw!r} is not a number of seconds")


BOOT_TIMEOUT = env_seconds("SKIFF_BOOT_TIMEOUT", 300.0)


# ------------------------------------------------------------------ paths

@pytest.fixture(scope="session")
def skiff_build(request):
    """The build directory (absolute). A relative one is looked up from the
    current directory first, then from the repository root."""
    raw = request.config.getoption("--skiff-build") or os.environ.get("SKIFF_BUILD") or "build"
    p = Path(raw)
    if not p.is_absolute():
        cands = [Path.cwd() / p, REPO_ROOT / p]
        p = next((c for c in cands if c.is_dir()), cands[0])
    return p.resolve()


@pytest.fixture(scope="session")
def skiff_bin(skiff_build):
    """Path of the skiff binary; a missing binary fails every test using it."""
    b = skiff_build / "src" / "cli" / "skiff"
    if not (b.is_file() and os.access(b, os.X_OK)):
        pytest.fail(f"skiff binary not found at {b}: build it (meson setup {skiff_build.name} && "
                    f"ninja -C {skiff_build.name}) or point --skiff-build / SKIFF_BUILD at the "
                    f"build directory", pytrace=False)
    return str(b)


class GuestImage:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.kernel = self.dir / "Image"
        self.initrd = self.dir / "initrd.cpio.gz"

    def missing(self):
        return [str(f) for f in (self.kernel, self.initrd) if not f.is_file()]


def default_guest_dir():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "skiff" / "default"


@pytest.fixture(scope="session")
def default_guest():
    """Paths of the default guest (kernel Image + initrd). Skips when it is
    not built, unless SKIFF_REQUIRE_GUEST is set: then it is a failure."""
    img = GuestImage(default_guest_dir())
    missing = img.missing()
    if missing:
        msg = (f"default guest image missing ({', '.join(missing)}); "
               f"build it with guest/build-image.sh")
        if os.environ.get("SKIFF_REQUIRE_GUEST"):
            pytest.fail(msg + " [SKIFF_REQUIRE_GUEST is set, so this is a failure]",
                        pytrace=False)
        pytest.skip(msg)
    return img


@pytest.fixture(scope="session")
def console_log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("consoles")


@pytest.fixture(scope="session")
def guest_tools(tmp_path_factory):
    """A directory with tests/integration/net_guest/vsock_tool built static
    for riscv64 (the guest side of the vsock and UDP checks; busybox has no
    vsock client): hand it to a guest on a disk or a share."""
    cc = shutil.which("riscv64-linux-gnu-gcc")
    if not cc:
        pytest.fail("riscv64-linux-gnu-gcc is not installed (scripts/deps.sh installs it)", pytrace=False)
    d = tmp_path_factory.mktemp("guest-tools")
    subprocess.run([cc, "-static", "-O2", "-Wall", "-o", str(d / "vsock_tool"),
                    str(REPO_ROOT / "tests" / "integration" / "net_guest" / "vsock_tool.c")], check=True)
    return d


# ------------------------------------------------------------------ helpers

def free_port(kind=socket.SOCK_STREAM):
    """A port on 127.0.0.1 that is free now (for a forward or a server)."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    """VmRSS of a process, KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def wait_for(pred, timeout, step=0.5):
    """pred()'s first true value within timeout seconds, else its last."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)



def vsock_recv_started(guest, tool, port, out, then=""):
    """Start `TOOL recv PORT` (tests/integration/net_guest/vsock_tool.c) in
    the guest's background, its data to `out` (a guest path), and return
    once it listens: a host CONNECT before that is refused, however long
    the guest takes to start it. `then`: shell text run after it in the same
    background job (e.g. '; echo recv-status=$?')."""
    ready = f"/tmp/vsock-ready-{port}"
    guest.run(f"rm -f {ready}; ({tool} recv {port} {ready} > {out}{then}) & "
              f"until [ -e {ready} ]; do sleep 0.1; done", timeout=120)


def guest_to_host_nc(guest, mib, timeout=300):
    """Pipe `mib` MiB of zeros from the guest with busybox nc to a listener on
    the host's loopback (the user network's 10.0.2.2). Returns (bytes
    received, seconds from the first byte to the end)."""
    # The guest's udhcpc gives up its first tries after 5 s and tries again
    # 10 s later, so on a slow host the lease may come after the shell.
    routed = wait_for(lambda: guest.run("ip -4 route show default", check=False), 60)
    assert routed, "the guest has no default route: no DHCP lease from the user network"
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    res = {"n": None, "t": None}

    def sink():
        c, _ = srv.accept()
        t0, n = None, 0
        while True:
            d = c.recv(1 << 20)
            if t0 is None:
                t0 = time.monotonic()
            if not d:
                break
            n += len(d)
        res["n"], res["t"] = n, time.monotonic() - t0
        c.close()
    th = threading.Thread(target=sink)
    th.start()
    try:
        guest.run(f"dd if=/dev/zero bs=64k count={int(mib * 16)} 2>/dev/null | nc 10.0.2.2 {port}",
                  timeout=timeout)
        th.join(60)
    finally:
        srv.close()
    return res["n"], res["t"]


def host_to_guest_nc(guest, host_port, nbytes, timeout=300):
    """Send `nbytes` zeros from the host to `nc -l -p 80 | wc -c` in the
    guest through a TCP forward of the user network (host_port -> guest
    port 80). The guest's nc runs in the background and nothing is sent
    before the guest's kernel lists it as listening; the guest prints the
    count when nc ends. Returns the seconds from the connection to the
    count; a count other than nbytes fails."""
    n = next(guest._seq)
    guest.run(f'(echo "__NC""COUNT_{n}_$(nc -l -p 80 | wc -c)__") & true')
    # Port 80 (0050) in state LISTEN (0A) in the guest's /proc/net/tcp or
    # tcp6 (busybox nc listens on IPv6's any address when it can).
    listening = wait_for(lambda: guest.run("cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | "
                                           "grep -cE ':0050 0+:0000 0A'", check=False) != "0", 60, 0.2)
    assert listening, "the guest's nc never listened on port 80"
    c = socket.create_connection(("127.0.0.1", host_port), timeout=timeout)
    t0 = time.monotonic()
    chunk = bytes(min(nbytes, 1 << 20))
    left = nbytes
    while left:
        c.sendall(chunk[:left])
        left -= min(left, len(chunk))
    c.shutdown(socket.SHUT_WR)
    guest._expect([rf"__NCCOUNT_{n}_(\d+)__"], timeout, "the guest's byte count")
    took = time.monotonic() - t0
    got = int(guest.p.match.group(1))
    c.close()
    guest.run("wait")
    assert got == nbytes, f"the guest received {got} bytes, not {nbytes}"
    return took


# ------------------------------------------------------------------ Guest

class GuestError(AssertionError):
    """The guest did not do what a test waited for; carries the console tail."""


class CommandFailed(AssertionError):
    pass


class Guest:
    """A `skiff run` process driven through its serial console with pexpect.

    The console is a pseudo-terminal (skiff puts it in raw mode; the guest's
    tty echoes). Everything the guest prints is also written to `log_path`.

        g = Guest(skiff_bin, ["--cpus", "2"], log_path)
        g.wait_ready()
        out = g.run("uname -m")          # output only, no echo or prompt
        status, out = g.run_status("false")
        assert g.poweroff() == 0
    """

    _ids = itertools.count(1)

    def __init__(self, skiff, args=(), log_path=None, name="guest"):
        self.name = name
        self.args = [str(a) for a in args]
        self.log_path = Path(log_path) if log_path else None
        self._log = open(self.log_path, "w", encoding="utf-8", errors="replace") if self.log_path else None
        self.started = time.monotonic()
        self.boot_seconds = None
        self.exitstatus = None
        self.broken = None  # why the console can no longer be trusted
        self._seq = itertools.count(1)
        self.p = pexpect.spawn(skiff, ["run"] + self.args, encoding="utf-8",
                               codec_errors="replace", dimensions=(50, 200),
                               timeout=60, env=dict(os.environ))
        self.p.logfile_read = self._log
        self.p.delaybeforesend = 0.01

    # -- diagnostics
    def tail(self, nbytes=3000):
        """The last console output (from the log file), for failure messages."""
        if self._log:
            self._log.flush()
            try:
                data = self.log_path.read_text(encoding="utf-8", errors="replace")
                return data[-nbytes:]
            except OSError:
                pass
        return (self.p.before or "")[-nbytes:]

    def fail(self, what):
        where = f"\n(full console log: {self.log_path})" if self.log_path else ""
        alive = self.p.isalive()
        status = "" if alive else f" skiff exited: status {self.p.exitstatus}, signal {self.p.signalstatus}."
        raise GuestError(f"{self.name}: {what}.{status}{where}\n--- console tail ---\n{self.tail()}\n---")

    def _expect(self, patterns, timeout, what):
        try:
            return self.p.expect(patterns, timeout=timeout)
        except pexpect.TIMEOUT:
            self.broken = f"timed out waiting for {what}"
            self.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        except pexpect.EOF:
            self.broken = f"skiff exited while waiting for {what}"
            self.p.close()
            self.exitstatus = self.p.exitstatus
            self.fail(f"skiff exited while waiting for {what}")

    # -- boot
    def wait_ready(self, timeout=BOOT_TIMEOUT):
        """Wait for `skiff-guest: ready` and then the shell prompt."""
        i = self._expect([re.escape(READY), r"Kernel panic - not syncing[^\r\n]*"],
                         timeout, f"'{READY}'")
        if i == 1:
            self.broken = "kernel panic"
            self.p.expect([pexpect.TIMEOUT, pexpect.EOF], timeout=2)
            self.fail("the guest kernel panicked during boot")
        self._expect([PROMPT_RE], 60, "the shell prompt after 'ready'")
        self.boot_seconds = time.monotonic() - self.started
        return self

    # -- commands
    def run_status(self, cmd, timeout=60):
        """Run one shell command line; returns (exit status, output).

        The command runs as `echo BEGIN; CMD; echo END$?` on one line. The
        markers are typed as __B""EGIN_n__ so the echo of the typed line
        never matches what `echo` prints; the output is what lies between
        them, with CR LF turned into LF. CMD must not end with '&'."""
        if self.broken:
            raise GuestError(f"{self.name}: console unusable after an earlier failure ({self.broken})")
        n = next(self._seq)
        self.p.sendline(f'echo __B""EGIN_{n}__; {cmd}; echo __E""ND_{n}_$?__')
        self._expect([rf"__BEGIN_{n}__\r?\n"], 30, f"the start marker of command {cmd!r}")
        self._expect([rf"__END_{n}_(\d+)__"], timeout, f"command {cmd!r} to finish")
        out = self.p.before
        status = int(self.p.match.group(1))
        self._expect([PROMPT_RE], 30, f"the prompt after command {cmd!r}")
        out = out.replace("\r\n", "\n").replace("\r", "")
        if out.endswith("\n"):
            out = out[:-1]
        return status, out

    def run(self, cmd, timeout=60, check=True):
        """Run a command and return its output; a non-zero exit status raises
        CommandFailed (unless check=False)."""
        status, out = self.run_status(cmd, timeout)
        self.last_status = status
        if check and status != 0:
            raise CommandFailed(f"{self.name}: `{cmd}` exited with status {status}; output:\n{out}")
        return out

    def interrupt_and_resync(self):
        """After a timeout: Ctrl-C, then check the shell answers again."""
        self.broken = None
        self.p.sendcontrol("c")
        self.run("true", timeout=30)

    # -- ending
    def wait_exit(self, timeout=120):
        """Wait for skiff to exit; returns its exit status (-N for signal N)."""
        try:
            self.p.expect(pexpect.EOF, timeout=timeout)
        except pexpect.TIMEOUT:
            self.fail(f"skiff did not exit within {timeout:.0f} s")
        deadline = time.monotonic() + 10
        while self.p.isalive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.p.close(force=True)
        st = self.p.exitstatus if self.p.exitstatus is not None else -(self.p.signalstatus or 0)
        self.exitstatus = st
        return st

    def poweroff(self, timeout=120):
        """Type `poweroff` and return skiff's exit status."""
        self.p.sendline("poweroff")
        return self.wait_exit(timeout)

    def close(self):
        """Stop skiff if it still runs (SIGTERM, then SIGKILL); close the log."""
        if self.p.isalive():
            self.p.kill(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while self.p.isalive() and time.monotonic() < deadline:
                try:
                    self.p.read_nonblocking(65536, timeout=0.2)
                except (pexpect.TIMEOUT, pexpect.EOF):
                    pass
            if self.p.isalive():
                self.p.kill(signal.SIGKILL)
        try:
            self.p.close(force=True)
        except Exception:
            pass
        if self._log:
            self._log.close()
            self._log = None


@pytest.fixture(scope="session")
def boot_guest(skiff_bin, default_guest, console_log_dir):
    """Factory: boot_guest(name, *args) starts the default guest with the
    extra skiff options and waits for its prompt; the caller owns close()."""
    def boot(name, *args):
        g = Guest(skiff_bin, list(args), console_log_dir / f"{name}.log", name=name)
        try:
            g.wait_ready()
        except BaseException:
            g.close()
            raise
        return g
    return boot

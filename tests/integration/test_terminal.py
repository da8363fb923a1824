"""The guest console through a real terminal: skiff runs in a tmux pane
(private tmux server, 200x50), keys go in with `send-keys`, the screen comes
back with `capture-pane`. Checks: the prompt, typed commands, Ctrl-C
reaching the guest's shell, the console's own keys (C-a h help, C-a C-a
passing C-a through, C-a x quitting), and that the terminal's settings are
the same after skiff as before it (a wrapper shell records `stty -g` on both
sides of `skiff run`).

One boot for the whole module; the checks run in the order written. Then
tiny hand-made guests (rvimage.py), each in its own tmux session: the
terminal's settings come back after a guest poweroff (status 0), a guest
crash (status 2), SIGTERM, SIGINT (status 0), C-a x (status 3: the
user quit, the guest did not power off; with and without --api-sock) and
a fatal signal on the sandboxed vCPU thread (ended by that signal);
while skiff runs, the terminal is in raw mode.
"""
import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import time

import pytest

import rvimage
from conftest import BOOT_TIMEOUT

# Screen lines are right-stripped, so a bare prompt ends in "#".
PROMPT_LINE = re.compile(r"^root@skiff:[^\n]*#( |$)", re.M)


class Tmux:
    """A private tmux server (its own socket name) with one session."""

    def __init__(self, socket, session="skiff"):
        self.socket = socket
        self.session = session
        self.exe = shutil.which("tmux")

    def cmd(self, *args, check=True):
        r = subprocess.run([self.exe, "-L", self.socket, "-f", "/dev/null", *args],
                           capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {r.stderr.strip()}")
        return r.stdout

    def start(self, command, cwd):
        self.cmd("new-session", "-d", "-s", self.session, "-x", "200", "-y", "50",
                 "-c", str(cwd), command)
        self.cmd("set-option", "-t", self.session, "history-limit", "20000")

    def keys(self, *keys):
        """Key names (Enter, C-c, C-a, ...)."""
        self.cmd("send-keys", "-t", self.session, *keys)

    def type(self, text):
        """Literal text, then Enter."""
        self.cmd("send-keys", "-t", self.session, "-l", text)
        self.cmd("send-keys", "-t", self.session, "Enter")

    def screen(self):
        """The pane's history and screen, wrapped lines joined."""
        out = self.cmd("capture-pane", "-p", "-J", "-t", self.session, "-S", "-20000", check=False)
        return "\n".join(line.rstrip() for line in out.splitlines())

    def kill(self):
        self.cmd("kill-server", check=False)


class Term:
    """The skiff-in-tmux session plus the wrapper's files."""

    def __init__(self, tmux, work):
        self.tmux = tmux
        self.work = work
        self.before = work / "stty-before"
        self.after = work / "stty-after"
        self.status = work / "skiff-status"
        self.pidfile = work / "skiff-pid"

    def wait_for(self, what, cond, timeout):
        deadline = time.monotonic() + timeout
        while True:
            screen = self.tmux.screen()
            got = cond(screen)
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; "
                                     f"the screen ends with:\n{screen[-2500:]}")
            time.sleep(0.2)

    def prompt_count(self, screen=None):
        return len(PROMPT_LINE.findall(screen if screen is not None else self.tmux.screen()))

    def wait_prompt_after(self, count, what, timeout=30):
        """Wait until there are more than `count` prompts and the screen ends
        with a fresh, empty prompt."""
        def ok(s):
            lines = [l for l in s.splitlines() if l.strip()]
            return (self.prompt_count(s) > count and lines and
                    re.fullmatch(r"root@skiff:[^\n]*#", lines[-1]))
        self.wait_for(what, ok, timeout)

    def run(self, command, expect_line, timeout=30):
        """Type a command and wait for an output line matching the regex."""
        n = self.prompt_count()
        self.tmux.type(command)
        pat = re.compile(expect_line, re.M)
        self.wait_for(f"{expect_line!r} after typing {command!r}", lambda s: pat.search(s), timeout)
        self.wait_prompt_after(n, f"the prompt after {command!r}")


def start_term(tmux, work, skiff_bin, *args):
    """Start `skiff run ARGS` in the tmux session inside a wrapper shell
    that records `stty -g` before and after it, skiff's pid and its exit
    status."""
    t = Term(tmux, work)
    q = shlex.quote
    # The inner sh writes its pid and execs skiff, so skiff-pid is skiff's.
    inner = f"echo $$ > {q(str(t.pidfile))}; exec {' '.join(q(str(a)) for a in (skiff_bin, 'run', *args))}"
    wrapper = (f"stty -g > {q(str(t.before))}; sh -c {q(inner)}; echo $? > {q(str(t.status))}; "
               f"stty -g > {q(str(t.after))}; echo WRAPPER-DONE; sleep 600")
    tmux.start("sh -c " + q(wrapper), work)
    return t


def wrapper_done(t, what, timeout=20):
    """Wait for skiff to end in the wrapper; returns its exit status."""
    t.wait_for(f"the wrapper to see skiff exit after {what}",
               lambda s: "WRAPPER-DONE" in s and t.after.exists(), timeout)
    return int(t.status.read_text().strip())


def assert_settings_restored(t, what):
    before, after = t.before.read_text().strip(), t.after.read_text().strip()
    assert before and after, "stty -g printed nothing"
    assert before == after, f"terminal settings changed by skiff ({what}):\nbefore {before}\nafter  {after}"


@pytest.fixture(scope="module")
def tmux_server():
    if not shutil.which("tmux"):
        pytest.fail("tmux is not installed (package tmux)")
    name = f"skiff-test-{os.getpid()}"
    # A session that lasts the module: a server without sessions exits,
    # and a new session started while it does fails ("server exited
    # unexpectedly") between two tiny guests' sessions.
    Tmux(name, session="keep").start("sleep 3600", os.getcwd())
    yield name
    Tmux(name).kill()


@pytest.fixture(scope="module")
def term(skiff_bin, default_guest, tmp_path_factory, tmux_server):
    work = tmp_path_factory.mktemp("terminal")
    return start_term(Tmux(tmux_server), work, skiff_bin)


def test_boot_to_prompt_in_terminal(term):
    term.wait_for("'skiff-guest: ready'", lambda s: "skiff-guest: ready" in s, BOOT_TIMEOUT)
    term.wait_prompt_after(0, "the first shell prompt", timeout=60)


def test_boot_messages_start_at_column_0(term):
    """Every console line starts at the left margin. The terminal is in raw
    mode while skiff runs (no output post-processing), so a guest that ends
    lines with a bare LF would draw a staircase; the kernel's early SBI
    console (earlycon=sbi, DBCN console_write) sends bare LFs."""
    screen = term.tmux.screen()
    kernel_lines = [l for l in screen.splitlines() if re.search(r"\[\s*\d+\.\d+\] ", l)]
    assert kernel_lines, "no kernel log lines on the screen:\n" + screen[-2000:]
    shifted = [l for l in kernel_lines if not l.startswith("[")]
    assert not shifted, (f"{len(shifted)} of {len(kernel_lines)} kernel lines do not start at "
                         f"column 0 (bare LF in raw mode):\n" + "\n".join(shifted[:6]))


def test_typed_command_runs(term):
    term.run("echo hello $((6*7))", r"^hello 42$")


def test_ctrl_c_interrupts_guest_command(term):
    n = term.prompt_count()
    term.tmux.type("sleep 100")
    # Make sure the guest has read the line and is running sleep (no new prompt).
    time.sleep(2)
    assert term.prompt_count() == n, "a prompt came back before Ctrl-C: sleep did not run?\n" + \
        term.tmux.screen()[-1500:]
    t0 = time.monotonic()
    term.tmux.keys("C-c")
    term.wait_prompt_after(n, "the prompt after Ctrl-C (sleep 100 should be interrupted)", timeout=20)
    assert time.monotonic() - t0 < 20
    term.run("echo back $((2*3))", r"^back 6$")


def test_ctrl_a_h_shows_help(term):
    term.tmux.keys("C-a", "h")
    term.wait_for("the C-a h help text", lambda s: "C-a x" in s and "exit skiff" in s, 10)
    # The guest is still there and the help keys did not reach it.
    term.run("echo still $((1+1))", r"^still 2$")


def test_ctrl_a_ctrl_a_sends_ctrl_a(term):
    """C-a C-a gives the guest one C-a, which ash's line editor reads as
    'beginning of line': typing 'cho X', C-a C-a, 'e' runs 'echo X'."""
    n = term.prompt_count()
    term.tmux.cmd("send-keys", "-t", term.tmux.session, "-l", "cho passthrough-$((3+4))")
    term.tmux.keys("C-a", "C-a")
    term.tmux.cmd("send-keys", "-t", term.tmux.session, "-l", "e")
    term.tmux.keys("Enter")
    term.wait_for("'passthrough-7' (C-a C-a should move to the start of the line)",
                  lambda s: re.search(r"^passthrough-7$", s, re.M), 20)
    term.wait_prompt_after(n, "the prompt after the C-a C-a command")


def test_ctrl_a_x_quits_and_restores_terminal(term):
    pid = int(term.pidfile.read_text().strip())
    assert os.path.exists(f"/proc/{pid}"), f"skiff (pid {pid}) is not running before C-a x"
    term.tmux.keys("C-a", "x")
    status = wrapper_done(term, "C-a x")
    # skiff is gone (the wrapper has reaped it; a zombie would also be gone from the pane's view)
    alive = os.path.exists(f"/proc/{pid}") and "skiff" in open(f"/proc/{pid}/comm").read()
    assert not alive, f"skiff (pid {pid}) still exists after C-a x"
    assert status == 3, f"C-a x ended skiff with status {status}; docs/skiff-run.md says 3"
    assert_settings_restored(term, "C-a x")


# (tiny guest, how it ends: nothing, a signal or keys; skiff's exit status)
TINY_ENDS = [
    ("poweroff", rvimage.prog_putchar_then_shutdown(b"bye\n"), None, 0),
    ("crash", rvimage.prog_stvec_then_illegal(), None, 2),
    ("sigterm", rvimage.prog_spin(), signal.SIGTERM, 0),
    ("sigint", rvimage.prog_spin(), signal.SIGINT, 0),
    ("ctrl-a-x", rvimage.prog_spin(), ("C-a", "x"), 3),
    # The same VMM with an API socket (run_api.c's loop, not run.c's).
    ("ctrl-a-x-api", rvimage.prog_spin(), ("C-a", "x"), 3),
    ("sigterm-api", rvimage.prog_spin(), signal.SIGTERM, 0),
    # A fatal signal on the confined vCPU thread (a host fault there): the
    # process ends by that signal, not by SIGSYS from the terminal's restore.
    ("vcpu-sigsegv", rvimage.prog_spin(), ("vcpu0", signal.SIGSEGV), 128 + signal.SIGSEGV),
]


def thread_kill(pid, name, sig, timeout=20):
    """tgkill the thread of process `pid` named `name` (once it has
    started: the terminal is raw before the VM's threads exist)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    named = f.read().strip() == name
            except FileNotFoundError:
                continue
            if named:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.syscall(234, pid, int(tid), int(sig)):  # SYS_tgkill on x86-64
                    raise OSError(ctypes.get_errno(), f"tgkill {pid} {tid}")
                return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} has no thread named {name}")


@pytest.mark.parametrize("how,code,sig,want", TINY_ENDS, ids=[c[0] for c in TINY_ENDS])
def test_terminal_restored_however_skiff_ends(skiff_bin, tmux_server, tmp_path, how, code, sig, want):
    img = tmp_path / "tiny.Image"
    img.write_bytes(rvimage.image(code))
    tmux = Tmux(tmux_server, session=f"tiny-{how}")
    sock = f"/tmp/skiff-term-{os.getpid()}-{how}.sock"  # sun_path holds 107 bytes
    api = ["--api-sock", sock] if how.endswith("-api") else []
    t = start_term(tmux, tmp_path, skiff_bin, "--kernel", img, *api)
    try:
        if sig is not None:
            t.wait_for("skiff to start", lambda s: t.pidfile.exists() and t.pidfile.read_text().strip(), 20)
            pid = int(t.pidfile.read_text().strip())
            tty = tmux.cmd("display-message", "-p", "-t", tmux.session, "#{pane_tty}").strip()
            # While skiff runs the terminal is raw: what is checked below
            # was changed and had to be put back.
            raw = lambda: subprocess.run(["stty", "-F", tty, "-g"], capture_output=True,
                                         text=True).stdout.strip()
            t.wait_for("skiff to put the terminal in raw mode",
                       lambda s: t.before.exists() and raw() and raw() != t.before.read_text().strip(), 20)
            if isinstance(sig, tuple) and isinstance(sig[1], signal.Signals):
                thread_kill(pid, *sig)
            elif isinstance(sig, tuple):
                tmux.keys(*sig)
            else:
                os.kill(pid, sig)
        status = wrapper_done(t, how)
        assert status == want, f"skiff ended by {how} with status {status}, expected {want}"
        assert_settings_restored(t, how)
    finally:
        tmux.cmd("kill-session", "-t", tmux.session, check=False)
        if api and os.path.exists(sock):
            os.unlink(sock)

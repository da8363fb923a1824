"""How many system calls a process (all its threads) makes over a stretch of
time: `perf stat` counting the raw_syscalls:sys_enter tracepoint, started
with counting off and switched on and off through its control FIFO, so that
the count covers exactly the stretch between start() and stop() (perf's own
start-up, which takes tens of milliseconds, is not in it).

Used by bench/sandbox.py --syscalls to bound the seccomp filters' share of
a row's host CPU time. Threads the process starts after start() are not
counted (perf stat -p follows the threads present when it attaches)."""
import os
import shutil
import signal
import subprocess
import tempfile


class SyscountError(Exception):
    pass


def available():
    """None when perf can count system calls here, else why not."""
    if not shutil.which("perf"):
        return "perf is not installed (Debian: linux-perf)"
    p = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"],
                       capture_output=True, text=True)
    if p.returncode != 0 or "<not supported>" in p.stderr:
        return f"perf cannot count raw_syscalls:sys_enter: {p.stderr.strip()[-200:]}"
    return None


class SyscallCount:
    def __init__(self, pid):
        self.dir = tempfile.mkdtemp(prefix="skiff-syscount-")
        ctl, ack, self.out = (os.path.join(self.dir, n) for n in ("ctl", "ack", "out"))
        os.mkfifo(ctl)
        os.mkfifo(ack)
        self.perf = subprocess.Popen(
            ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", str(pid), "-D", "-1",
             "--control", f"fifo:{ctl},{ack}", "-o", self.out],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Opening a FIFO blocks until perf opens its end.
        self.ctl = open(ctl, "w")
        self.ack = open(ack)

    def _say(self, word):
        self.ctl.write(word + "\n")
        self.ctl.flush()
        if self.ack.readline().strip("\0 \n") != "ack":
            raise SyscountError(f"perf did not acknowledge `{word}`")

    def start(self):
        self._say("enable")

    def stop(self):
        """The number of system calls since start()."""
        try:
            self._say("disable")
        finally:
            self.perf.send_signal(signal.SIGINT)
            self.perf.wait(30)
            self.ctl.close()
            self.ack.close()
        try:
            with open(self.out) as f:
                for line in f:
                    fields = line.strip().split(",")
                    if len(fields) > 2 and fields[2] == "raw_syscalls:sys_enter":
                        if not fields[0].isdigit():
                            raise SyscountError(f"perf counted nothing: {line.strip()}")
                        return int(fields[0])
            raise SyscountError("perf wrote no count")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

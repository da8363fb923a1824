"""The CPU workloads run natively on the host: the physical limit.

The same busybox command lines as in the guest (workloads.py), run by the
host's busybox (Debian's `busybox` package) in a tmpfs directory, timed the
same way (/proc/uptime around the command).  The host CPU time comes from
wait4()'s rusage of the shell, which includes the programs it waited for.
"""

import os
import shutil
import subprocess
import tempfile

from workloads import Workload, gen_data, parse_timed, timed


class NativeError(Exception):
    pass


class NativeHost:
    system = "native"

    def __init__(self, busybox, opts, checks):
        self.opts = opts
        self.checks = checks
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self.dir = tempfile.mkdtemp(prefix="skiff-bench-native-", dir=base)
        # `busybox APPLET` in the command lines must be this busybox.
        bindir = os.path.join(self.dir, "bin")
        os.mkdir(bindir)
        os.symlink(busybox, os.path.join(bindir, "busybox"))
        self.env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
        self.busybox = busybox
        self.data_ready = False

    def sh(self, cmd):
        p = subprocess.Popen([self.busybox, "sh", "-c", cmd], cwd=self.dir, env=self.env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = p.stdout.read().decode("utf-8", "replace")
        p.stdout.close()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise NativeError(f"native: `{cmd[:80]}` exited with status {p.returncode}: {out[-300:]!r}")
        return out, ru.ru_utime + ru.ru_stime

    def timed(self, w):
        d = os.path.join(self.dir, "work")
        out, cpu = self.sh(timed(w.cmd(d)))
        secs, rc, _ = parse_timed(out)
        if rc != 0:
            raise NativeError(f"native: {w.label} exited with status {rc}")
        if w.check:
            self.checks.append((w.label, self.system, self.sh(w.check(d))[0].strip()))
        return secs, cpu

    def ensure_data(self):
        """Generate the data (timed, every call: it is a workload too)."""
        d = os.path.join(self.dir, "work")
        r = self.timed(Workload("gen", "generate test data", lambda _: gen_data(d, self.opts.data_bytes)))
        self.data_ready = True
        return r

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

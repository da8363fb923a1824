"""The python row: Debian's python3 running a pure-Python CPU workload
(bench/pywork.py) inside the guest, by skiff and by QEMU, and natively on
the host by the host's own /usr/bin/python3.

A bytecode interpreter is a different load on an engine than compression:
an indirect jump per bytecode, a large code footprint, many calls and
returns, dict and string work, malloc.  The guest is the bench-py profile
(guest/profiles/bench-py.conf: the default guest plus Debian's
python3-minimal); both VMMs boot it with 1 hart.  The script is sent into
the guest's tmpfs over the console (base64, in short lines).

Throughput is rounds of pywork.py per second of host CPU time past
start-up, as the stress-ng rows count bogo operations
(compiled.StressNgRow.rate): one round runs twice (the first compiles the
standard library's start-up modules to .pyc in the guest and warms a VMM's
translated code), then ROUNDS rounds; the rate is (ROUNDS - 1) over the
VMM's CPU seconds of the long run less those of the one-round run.
Natively the script does its ROUNDS rounds NATIVE_REPEAT times in one
process (the same checksum every time) and its CPU time is the process's
own.  The guest's python3 is Debian stable's, the host's is its own
release's: the versions differ when the releases do (the report names
both), so the native column is the physical limit of a close relative,
not of the same binary.  The checksum it prints is the same on every
Python 3 (pywork.py says why) and goes to the consistency checks.
"""

import base64
import os
import re
import subprocess

from compiled import StressNgRow, _fail
from native import NativeError
from rowbase import GUEST_DIR, HIGHER, Metric, Spec, WorkloadError

IMAGE = "bench-py"      # guest/profiles/bench-py.conf
MEM_MIB = 256
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pywork.py")
HOST_PYTHON = "/usr/bin/python3"
ROUNDS, QUICK_ROUNDS = 30, 4
NATIVE_REPEAT = 10
B64_LINE = 300          # characters of base64 per console line

_OUT = re.compile(r"^pywork (\d+) (\d+) ([0-9a-f]{16})$", re.M)


def parse_pywork(text):
    """(rounds, repeat, checksum) from pywork.py's output line."""
    m = _OUT.search(text)
    if not m:
        raise ValueError(f"no 'pywork ROUNDS REPEAT CHECKSUM' line in the output: {text[-300:]!r}")
    return int(m.group(1)), int(m.group(2)), m.group(3)


def pywork_cmd(python, script, rounds, repeat, out):
    """The command line: -I (isolated: no PYTHON* variables, no user site
    directory), the output to a file."""
    return f"{python} -I {script} {rounds} {repeat} > {out} 2>&1"


def upload_cmds(text, path):
    """Shell commands that write `text` to `path` in the guest in lines
    short enough for its shell: base64 pieces appended to path.b64, then
    decoded by busybox."""
    b64 = base64.b64encode(text.encode()).decode()
    cmds = [f": > {path}.b64"]
    cmds += [f"echo {b64[i:i + B64_LINE]} >> {path}.b64" for i in range(0, len(b64), B64_LINE)]
    cmds.append(f"busybox base64 -d {path}.b64 > {path} && rm {path}.b64")
    return cmds


class PythonRow:
    name = "python"
    title = "Python (Debian's python3)"
    order = 10

    def rounds(self, o):
        return QUICK_ROUNDS if o.quick else ROUNDS

    def metrics(self, o):
        what = f"pywork.py, {self.rounds(o)} rounds"
        return [Metric("python.rate", "python3 pywork.py (calls, classes, dict/list/str, int and float "
                       "arithmetic, sorting): rounds per host CPU second", "rounds/s",
                       better=HIGHER, native=True),
                Metric("python.cpu", what, "s", table="cputime"),
                Metric("python.base", "pywork.py, 1 round (python3 start-up)", "s",
                       table="cputime", native=True)]

    def specs(self, o):
        return [Spec(1, MEM_MIB, (), IMAGE)]

    def record(self, rec, checks, system, what, rounds, run):
        """Rate past start-up from run(rounds) -> (output text, CPU seconds);
        the checksum of the long run goes to the consistency checks."""
        last = {}

        def ops(n):
            text, cpu = run(n)
            done, repeat, last["sum"] = parse_pywork(text)
            return done * repeat, cpu
        r, cpu, base, _ = StressNgRow.rate(what, rounds, ops)
        rec("python.rate", r)
        rec("python.base", base)
        checks.append((f"python3 pywork.py {rounds}: checksum", system, last["sum"]))
        return cpu

    def measure(self, s, rec):
        script = f"{GUEST_DIR}/pywork.py"
        out = f"{GUEST_DIR}/pywork.out"
        s.sh(f"mkdir -p {GUEST_DIR}")
        with open(SCRIPT) as f:
            for c in upload_cmds(f.read(), script):
                s.sh(c, 120)

        def run(n):
            _, cpu = s.measured(pywork_cmd("python3", script, n, 1, out) + _fail(out, "busybox tail"))
            return s.sh(f"cat {out}"), cpu
        try:
            cpu = self.record(rec, s.checks, s.system, f"{s.system}: python3", self.rounds(s.opts), run)
        except ValueError as e:
            raise WorkloadError(str(e))
        rec("python.cpu", cpu)

    def native(self, host, rec):
        if not os.access(HOST_PYTHON, os.X_OK):
            raise NativeError(f"native: no {HOST_PYTHON} on the host (Debian package python3)")
        d = os.path.join(host.dir, "work")
        os.makedirs(d, exist_ok=True)
        out = os.path.join(d, "pywork.out")

        def run(n):
            # The one-round runs stay one round; the long one repeats.
            _, cpu = host.sh(pywork_cmd(HOST_PYTHON, SCRIPT, n, NATIVE_REPEAT if n > 1 else 1, out)
                             + _fail(out, "tail"))
            with open(out) as f:
                return f.read(), cpu
        try:
            self.record(rec, host.checks, "native", "native: python3", self.rounds(host.opts), run)
        except ValueError as e:
            raise NativeError(str(e))


def native_version():
    """The host's python3 version, for the report."""
    try:
        v = subprocess.run([HOST_PYTHON, "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        v = ""
    return v or "no python3"

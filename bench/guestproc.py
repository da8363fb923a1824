"""One guest VM process driven through its serial console, for the benchmarks.

A GuestProcess starts a VMM (skiff or qemu-system-riscv64) with the console
on plain pipes, reads everything the guest prints on a background thread and
stamps each chunk with the host's monotonic clock at the moment it arrived.
That makes "how long after launch did line X appear" exact to the reading
latency (well under a millisecond), independent of when the caller looks.

It also knows how to run one shell command in the guest and wait for its
end marker, how to read the VMM's own resource use from /proc/PID (RSS, the
guest RAM mapping, CPU time), and how to stop the guest cleanly.

Nothing here is specific to a benchmark row; rows live in rows.py.
"""

import os
import re
import signal
import subprocess
import threading
import time


class GuestError(Exception):
    """The guest did not do what a benchmark expected (timeout, exit, crash)."""


class GuestProcess:
    def __init__(self, name, argv, log_path=None):
        self.name = name
        self.argv = list(argv)
        self._buf = bytearray()
        self._stamps = []          # (offset into _buf, monotonic time of arrival)
        self._cond = threading.Condition()
        self._eof = False
        self._log = open(log_path, "wb") if log_path else None
        self.t_launch = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, bufsize=0, start_new_session=True)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # ------------------------------------------------------------ output
    def _read_loop(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            now = time.monotonic()
            with self._cond:
                if not chunk:
                    self._eof = True
                    self._cond.notify_all()
                    break
                self._stamps.append((len(self._buf), now))
                self._buf.extend(chunk)
                self._cond.notify_all()
            if self._log:
                self._log.write(chunk)
                self._log.flush()

    def _time_of(self, offset):
        """Arrival time of the byte at offset in the output."""
        t = None
        for off, stamp in self._stamps:
            if off > offset:
                break
            t = stamp
        return t

    def first_byte_time(self, timeout):
        """Seconds from launch to the first byte of console output."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._buf:
                if self._eof:
                    raise GuestError(f"{self.name}: exited before printing anything")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GuestError(f"{self.name}: no console output after {timeout:.0f} s")
                self._cond.wait(left)
            return self._stamps[0][1] - self.t_launch

    def expect(self, pattern, timeout, start=None):
        """Wait until the regex (bytes) matches output at or after `start`
        (default: where the last expect ended).  Returns (match, arrival
        time of the match's last byte, relative to launch)."""
        rx = re.compile(pattern) if isinstance(pattern, (bytes, str)) else pattern
        if isinstance(rx.pattern, str):
            rx = re.compile(rx.pattern.encode(), rx.flags & ~re.UNICODE)
        pos = self._pos if start is None else start
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = rx.search(self._buf, pos)
                if m:
                    self._pos = m.end()
                    return m, self._time_of(m.end() - 1) - self.t_launch
                if self._eof:
                    raise GuestError(f"{self.name}: exited (status {self.proc.poll()}) while "
                                     f"waiting for {rx.pattern!r}; last output: {self.tail()!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GuestError(f"{self.name}: timed out after {timeout:.0f} s waiting for "
                                     f"{rx.pattern!r}; last output: {self.tail()!r}")
                self._cond.wait(min(left, 1.0))

    _pos = 0

    def find_time(self, pattern):
        """Arrival time (relative to launch) of the first match of pattern
        anywhere in the output so far, or None."""
        with self._cond:
            m = re.search(pattern, self._buf)
            return self._time_of(m.end() - 1) - self.t_launch if m else None

    def tail(self, n=300):
        return bytes(self._buf[-n:]).decode("utf-8", "replace")

    # ------------------------------------------------------------ input
    def send(self, text):
        data = text.encode() if isinstance(text, str) else text
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise GuestError(f"{self.name}: console input closed: {e}")

    PROMPT = rb"root@[^ \r\n]*# "

    def run(self, command, timeout):
        """Run one shell command line in the guest (the shell prompt must be
        up).  Returns (exit status, the command's output as text).  The
        markers are split in the typed line so the shell's echo of the
        command cannot match them."""
        self._seq = getattr(self, "_seq", 0) + 1
        tag = f"{self._seq}"
        # The subshell keeps a failing command (even a shell error that
        # aborts the line) from eating the end marker.
        self.send(f'echo "@@B""EG{tag}"; ( {command} ); echo "@@E""ND{tag} $?"\n')
        m0, _ = self.expect(rb"@@BEG" + tag.encode() + rb"\r?\n", 60)
        m, _ = self.expect(rb"@@END" + tag.encode() + rb" (\d+)\r?\n", timeout)
        out = bytes(self._buf[m0.end():m.start()]).decode("utf-8", "replace")
        self.expect(self.PROMPT, 30)
        return int(m.group(1)), out.replace("\r", "")

    # ------------------------------------------------------------ /proc
    def cpu_seconds(self):
        """utime + stime of the VMM process, all threads, in seconds."""
        with open(f"/proc/{self.pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12])    # utime, stime (proc(5) fields 14, 15)
        return ticks / os.sysconf("SC_CLK_TCK")

    def schedstat(self):
        """Per thread: (seconds on a CPU, seconds runnable but waiting for
        one), from /proc/PID/task/TID/schedstat."""
        out = {}
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/schedstat") as f:
                    run, wait = f.read().split()[:2]
            except (OSError, ValueError):
                continue
            out[tid] = (int(run) / 1e9, int(wait) / 1e9)
        return out

    def threads(self):
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def memory(self, guest_bytes):
        """Total RSS of the VMM and the resident part of its guest RAM, in bytes.

        The guest RAM is the anonymous mapping whose size is the guest
        memory size (both VMMs map guest RAM as one anonymous region of
        exactly that size).  The kernel merges adjacent anonymous mappings
        with the same flags into one, so RAM may sit inside a bigger one
        (skiff's per-hart block-cache arenas have RAM's flags and are mapped
        after it, right below it: mmap hands out addresses top down).  Then
        the smallest anonymous mapping at least that big is taken, and the
        resident pages of its top guest_bytes are counted from
        /proc/PID/pagemap (bit 63: page present); the result says so.

        A file mapped twice (skiff's JIT code cache: one memfd mapped
        writable for the translator and executable for the hart) has each
        resident page in VmRSS twice, once per mapping, though it is one
        page of host memory: the RSS returned counts it once (the extra
        views' Rss is subtracted; "double" says how much)."""
        maps = []
        cur = None
        with open(f"/proc/{self.pid}/smaps") as f:
            for line in f:
                first = line.split(None, 1)[0]
                if "-" in first and not first.endswith(":"):
                    parts = line.split()
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    path = parts[5] if len(parts) > 5 else ""
                    cur = {"lo": lo, "hi": hi, "size": hi - lo, "path": path, "rss": 0,
                           "file": (parts[3], parts[4], parts[2]) if parts[4] != "0" else None}
                    maps.append(cur)
                elif first == "Rss:" and cur is not None:
                    cur["rss"] = int(line.split()[1]) * 1024
        with open(f"/proc/{self.pid}/status") as f:
            rss = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
        views = {}
        for m in maps:
            if m["file"] is not None:
                views.setdefault(m["file"], []).append(m["rss"])
        double = sum(sum(v) - max(v) for v in views.values() if len(v) > 1)
        rss -= double
        anon = [m for m in maps if m["path"] == "" or m["path"].startswith("[anon")]
        exact = [m for m in anon if m["size"] == guest_bytes]
        if exact:
            ram = max(exact, key=lambda m: m["rss"])
            return {"rss": rss, "guest_rss": ram["rss"], "how": "exact-size mapping", "double": double}
        big = [m for m in anon if m["size"] >= guest_bytes]
        if not big:
            raise GuestError(f"{self.name}: no anonymous mapping of {guest_bytes} bytes "
                             f"or more in /proc/{self.pid}/smaps")
        ram = min(big, key=lambda m: m["size"])
        page = os.sysconf("SC_PAGE_SIZE")
        lo = ram["hi"] - guest_bytes
        present = 0
        with open(f"/proc/{self.pid}/pagemap", "rb") as f:
            f.seek(lo // page * 8)
            data = f.read(guest_bytes // page * 8)
        for i in range(0, len(data), 8):
            if data[i + 7] & 0x80:
                present += 1
        how = (f"top {guest_bytes >> 20} MiB of a merged {ram['size'] >> 20} MiB mapping "
               f"(pagemap), the rest counted as overhead")
        return {"rss": rss, "guest_rss": present * page, "how": how, "double": double}

    # ------------------------------------------------------------ end
    def poweroff(self, timeout=60):
        """Ask the guest to power off; kill the VMM if it does not end."""
        if self.proc.poll() is None:
            try:
                self.send("\npoweroff -f\n")
            except GuestError:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close()

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self._close()

    def _close(self):
        self._reader.join(5)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        if self._log:
            self._log.close()
            self._log = None


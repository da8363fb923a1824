"""The benchmark rows: what is measured, in which VM configuration, and how.

A row is a small class:
  - metrics(opts): the lines it adds to the table (key, label, unit, and
    whether lower or higher is better), in table order;
  - specs(opts): the VM configurations (harts, memory, devices, guest
    image) it needs a booted guest of; rows asking for the same
    configuration share one boot;
  - measure(session, rec): called once for every booted guest of a
    configuration it asked for; records values with rec(key, value);
  - native(host, rec): optional, the same work on the host (the physical
    limit), once per run;
  - derive(opts, median): optional, values computed from the medians
    (scaling).

Adding a row is one more class here and its name in ROWS; the runner,
the alternation between skiff and QEMU, the medians, the ratios and the
report need no change.  A row that needs a device asks for it in its
Spec (devices.py: a disk, a 9p share, a NIC) and finds the prepared device
with session.device(kind); a row that needs programs the default guest
lacks names a guest profile in its Spec (compiled.py: the bench-cpu image).
Metric and Spec live in rowbase.py, the compiled-program rows in
compiled.py, the python row in python_row.py.
"""

import contextlib
import json
import os
import subprocess
import sys
import time

from compiled import SevenZipRow, StressNgRow
from python_row import PythonRow
from devices import Disk, Share, TapNet, UserNet
from iowork import expected_crcs, parse_io
from syscount import SyscallCount
from rowbase import GUEST_DIR, HIGHER, LOWER, Metric, Spec, WorkloadError
from workloads import Workload, cpu_workloads, gen_data, parallel_sha256, parse_timed, timed

IOWORK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "iowork.py")


class Session:
    """One booted guest of one system, shared by the rows that need it."""

    def __init__(self, system, spec, guest, opts, checks, devices=()):
        self.system = system
        self.spec = spec
        self.devices = list(devices)    # the prepared devices (devices.py) of this boot
        self.g = guest
        self.opts = opts
        self.checks = checks            # (what, system, value) for the consistency report
        self.t_first_byte = None
        self.t_init = None
        self.t_prompt = None
        self.data_ready = False
        self.contention = []            # run-queue wait fractions, see note_contention
        self.cpu_at_prompt = None
        self.last_syscalls = None       # system calls of the last usage() (--syscalls)

    def boot(self):
        o = self.opts
        self.t_first_byte = self.g.first_byte_time(o.boot_timeout)
        _, self.t_init = self.g.expect(rb"skiff-guest: init started", o.boot_timeout)
        self.g.expect(rb"skiff-guest: ready", o.boot_timeout)
        _, self.t_prompt = self.g.expect(self.g.PROMPT, o.boot_timeout)
        self.cpu_at_prompt = self.g.cpu_seconds()

    # The guest shell's line editor takes lines of at most about 1 KB; a
    # longer command is written to a script file in short pieces first.
    MAX_LINE = 400

    def stage(self, cmd):
        """A command line short enough for the guest's shell: cmd itself,
        or `busybox sh FILE` after writing cmd to FILE in short pieces."""
        if len(cmd) <= self.MAX_LINE:
            return cmd
        script = f"{GUEST_DIR}/.cmd"
        self._run(f"mkdir -p {GUEST_DIR} && : > {script}", 120)
        piece = ""
        for ch in cmd:
            piece += "'\\''" if ch == "'" else ch
            if len(piece) >= self.MAX_LINE - 40:
                self._run(f"printf '%s' '{piece}' >> {script}", 120)
                piece = ""
        if piece:
            self._run(f"printf '%s' '{piece}' >> {script}", 120)
        return f"busybox sh {script}"

    def sh(self, cmd, timeout=None):
        return self._run(self.stage(cmd), timeout or self.opts.work_timeout)

    def _run(self, cmd, timeout):
        rc, out = self.g.run(cmd, timeout)
        if rc != 0:
            raise WorkloadError(f"{self.system}: `{cmd[:80]}` exited with status {rc}: {out[-300:]!r}")
        return out

    def measured(self, cmd, timeout=None):
        """Run a command; (its output, host CPU seconds the VMM used
        meanwhile).  Typing a long script is not counted."""
        cmd = self.stage(cmd)
        with self.usage() as u:
            out = self._run(cmd, timeout or self.opts.work_timeout)
        return out, u["cpu"]

    @contextlib.contextmanager
    def usage(self):
        """What the VMM uses over the with-block: u["cpu"], its host CPU
        seconds; the share of time its busiest thread waited for a core
        goes to self.contention; with opts.count_syscalls (bench/sandbox.py
        --syscalls) the number of its system calls goes to
        self.last_syscalls."""
        u = {}
        counter = SyscallCount(self.g.pid) if getattr(self.opts, "count_syscalls", False) else None
        try:
            c0 = self.g.cpu_seconds()
            s0, t0 = self.g.schedstat(), time.monotonic()
            if counter:
                counter.start()
            yield u
            if counter:
                self.last_syscalls, counter = counter.stop(), None
            u["cpu"] = self.g.cpu_seconds() - c0
            self.note_contention(s0, self.g.schedstat(), time.monotonic() - t0)
        finally:
            if counter:
                counter.perf.kill()

    def timed(self, w):
        """Run a workload; (guest seconds, host CPU seconds of the VMM)."""
        out, cpu = self.measured(timed(w.cmd(GUEST_DIR)))
        secs, rc, _ = parse_timed(out)
        if rc != 0:
            raise WorkloadError(f"{self.system}: {w.label} exited with status {rc}")
        if w.check:
            self.checks.append((w.label, self.system, self.sh(w.check(GUEST_DIR), 120).strip()))
        return secs, cpu

    def note_contention(self, s0, s1, wall):
        """How much of the time the VMM's busiest thread spent runnable but
        waiting for a host core (other programs on the host); kept for the
        report's notes."""
        busiest = max((t for t in s1 if t in s0), key=lambda t: s1[t][0] - s0[t][0], default=None)
        if busiest is not None and wall > 0:
            self.contention.append(min(1.0, (s1[busiest][1] - s0[busiest][1]) / wall))

    def device(self, kind):
        return next(d for d in self.devices if d.kind == kind)

    def ensure_data(self):
        """Generate the test data in the guest's tmpfs once per boot; returns
        (guest seconds, host CPU seconds) when it did, else None."""
        if self.data_ready:
            return None
        r = self.timed(Workload("gen", "generate test data",
                                lambda d: gen_data(d, self.opts.data_bytes)))
        self.data_ready = True
        return r



# ------------------------------------------------------------------ rows
class BootRow:
    name = "boot"
    title = "Boot"
    order = 1       # measure order inside a session (idle measurements go first)

    def metrics(self, o):
        out = []
        for h in o.boot_harts:
            hs = f"{h} hart{'s' if h > 1 else ''}"
            out.append(Metric(f"boot.{h}.init", f"{hs}: launch → `skiff-guest: init started`", "s"))
            out.append(Metric(f"boot.{h}.prompt", f"{hs}: launch → shell prompt", "s"))
        for h in o.boot_harts:
            hs = f"{h} hart{'s' if h > 1 else ''}"
            out.append(Metric(f"boot.{h}.prompt.cpu", f"boot to the shell prompt, {hs}", "s",
                              table="cputime"))
        return out

    def specs(self, o):
        return [Spec(h, o.work_mem) for h in o.boot_harts]

    def measure(self, s, rec):
        rec(f"boot.{s.spec.harts}.init", s.t_init)
        rec(f"boot.{s.spec.harts}.prompt", s.t_prompt)
        rec(f"boot.{s.spec.harts}.prompt.cpu", s.cpu_at_prompt)


class CpuRow:
    """busybox workloads over generated data.  With more than one system
    (skiff and QEMU, or two builds) the runner boots them side by side and
    calls measure_together: each workload runs in one guest, then at once
    in the other (and natively), so both sides of a ratio see the host at
    the same speed; this host's own speed drifted by 30 % within minutes
    (docs/benchmark-log.md), as much as the difference being measured."""
    name = "cpu"
    title = "Guest CPU"
    order = 2
    together = True

    def workloads(self, o):
        return cpu_workloads(o.awk_steps)

    def metrics(self, o):
        mib = o.data_bytes / (1 << 20)
        data = f"{mib:g} MiB"
        out = [Metric("cpu.gen", f"generate the {data} of test data (busybox awk + tr)", "s", native=True)]
        for w in self.workloads(o):
            what = w.label if w.key == "awk_fp" else f"{w.label} over {data}"
            if w.passes > 1:
                what += f" (one pass; a sample is {w.passes} passes)"
            out.append(Metric(f"cpu.{w.key}", what, "s", native=True))
        out.append(Metric("cpu.gen.cpu", "generate test data", "s", table="cputime", native=True))
        for w in self.workloads(o):
            out.append(Metric(f"cpu.{w.key}.cpu", w.label, "s", table="cputime", native=True))
        return out

    def specs(self, o):
        return [Spec(1, o.work_mem)]

    @staticmethod
    def _gen(where, rec):
        gen = where.ensure_data()
        if gen:
            rec("cpu.gen", gen[0])
            rec("cpu.gen.cpu", gen[1])

    @staticmethod
    def _one(where, w, rec):
        secs, cpu = where.timed(w)
        rec(f"cpu.{w.key}", secs / w.passes)
        rec(f"cpu.{w.key}.cpu", cpu / w.passes)

    def measure(self, s, rec):
        self._gen(s, rec)
        for w in self.workloads(s.opts):
            self._one(s, w, rec)

    def native(self, host, rec):
        self._gen(host, rec)
        for w in self.workloads(host.opts):
            self._one(host, w, rec)

    def measure_together(self, sessions, host, rec):
        """sessions: the booted guests of every system; host: the native
        side or None; rec(side, key, value) with side one of them.  Each workload runs in every
        guest, in the order given (the runner alternates it between runs),
        and natively, before the next workload starts."""
        sides = list(sessions) + ([host] if host else [])
        for where in sides:
            self._gen(where, lambda k, v, x=where: rec(x, k, v))
        for w in self.workloads(sessions[0].opts):
            for where in sides:
                self._one(where, w, lambda k, v, x=where: rec(x, k, v))


class SmpRow:
    name = "smp"
    title = "SMP"
    order = 3
    JOBS = 4

    def metrics(self, o):
        w = parallel_sha256(self.JOBS)
        mib = f"{o.data_bytes / (1 << 20):g} MiB"
        out = []
        for h in o.smp_harts:
            out.append(Metric(f"smp.{h}", f"{w.label} over {mib}, {h} hart{'s' if h > 1 else ''}", "s"))
        lo, hi = o.smp_harts[0], o.smp_harts[-1]
        out.append(Metric("smp.scaling", f"scaling {lo} → {hi} harts (time on {lo} / time on {hi})",
                          "×", better=HIGHER))
        for h in o.smp_harts:
            out.append(Metric(f"smp.{h}.cpu", f"{w.label}, {h} hart{'s' if h > 1 else ''}", "s",
                              table="cputime"))
        return out

    def specs(self, o):
        return [Spec(h, o.work_mem) for h in o.smp_harts]

    def measure(self, s, rec):
        s.ensure_data()
        secs, cpu = s.timed(parallel_sha256(self.JOBS))
        rec(f"smp.{s.spec.harts}", secs)
        rec(f"smp.{s.spec.harts}.cpu", cpu)

    def derive(self, o, median):
        lo, hi = o.smp_harts[0], o.smp_harts[-1]
        out = {}
        for system in ("skiff", "qemu"):
            a, b = median(f"smp.{lo}", system), median(f"smp.{hi}", system)
            if a is not None and b:
                out[system] = a / b
        return {"smp.scaling": out}


class VmmRow:
    name = "vmm"
    title = "VMM cost"
    order = 0

    def metrics(self, o):
        return [
            Metric("vmm.first_byte", "launch → first console byte (≈ first guest instruction, see notes)", "s"),
            Metric("vmm.kernel_line", "launch → kernel's first console line (`Linux version` via earlycon; not printed under QEMU, see notes)", "s"),
            Metric("vmm.overhead", f"memory overhead of an idle {o.vmm_mem} MiB guest: VMM RSS − guest RAM RSS", "MiB"),
            Metric("vmm.rss", f"VMM RSS, idle {o.vmm_mem} MiB guest", "MiB"),
            Metric("vmm.guest_rss", "guest RAM touched (RSS of the guest RAM mapping)", "MiB"),
            Metric("vmm.idle_cpu", f"host CPU used by the idle guest over {o.idle_seconds:g} s (% of one core)", "%"),
            Metric("vmm.threads", "VMM threads (idle, 1 hart)", "", better=LOWER),
        ]

    def specs(self, o):
        return [Spec(1, o.vmm_mem)]

    def measure(self, s, rec):
        rec("vmm.first_byte", s.t_first_byte)
        t = s.g.find_time(rb"Linux version")
        if t is not None:
            rec("vmm.kernel_line", t)
        # The idle window starts once the prompt is there: nothing runs in
        # the guest but its idle loop, timers and the shell waiting for input.
        c0 = s.g.cpu_seconds()
        t0 = time.monotonic()
        time.sleep(s.opts.idle_seconds)
        c1 = s.g.cpu_seconds()
        rec("vmm.idle_cpu", 100.0 * (c1 - c0) / (time.monotonic() - t0))
        mem = s.g.memory(s.spec.mem_mib << 20)
        rec("vmm.rss", mem["rss"] / (1 << 20))
        rec("vmm.guest_rss", mem["guest_rss"] / (1 << 20))
        rec("vmm.overhead", (mem["rss"] - mem["guest_rss"]) / (1 << 20))
        rec("vmm.threads", s.g.threads())
        if mem["how"] != "exact-size mapping":
            s.checks.append(("guest RAM mapping found by", s.system, mem["how"]))


MIB = 1 << 20


def mib(n):
    return f"{n / MIB:g} MiB"


class BlkRow:
    """virtio-blk on a raw image: guest_io (bench/guest_io.c) reads and
    writes /dev/vda with O_DIRECT; every operation's data is checked
    against its CRC-32 computed on the host (iowork.expected_crcs)."""
    name = "blk"
    title = "virtio-blk"
    order = 4
    SEQ_BS = MIB
    RAND_BS = 4096
    TOOL = f"{GUEST_DIR}/guest_io"
    # (key, guest_io operation, block size, seed of the offsets and data)
    OPS = [("seq_read", "seqread", SEQ_BS, 1), ("rand_read", "randread", RAND_BS, 2),
           ("seq_write", "seqwrite", SEQ_BS, 3), ("rand_write", "randwrite", RAND_BS, 4)]

    def __init__(self):
        self._expected = {}

    def metrics(self, o):
        size, n = mib(o.io_bytes), o.io_rand_ops
        label = {"seq_read": f"sequential read, {size} in 1 MiB blocks",
                 "seq_write": f"sequential write, {size} in 1 MiB blocks",
                 "rand_read": f"random 4 KiB reads ({n} over {size})",
                 "rand_write": f"random 4 KiB writes ({n} over {size})"}
        out = [Metric(f"blk.{k}", f"{label[k]}, O_DIRECT",
                      "MiB/s" if k.startswith("seq") else "IOPS", better=HIGHER)
               for k, _, _, _ in self.OPS]
        out += [Metric(f"blk.{k}.cpu", label[k], "s", table="cputime")
                for k, _, _, _ in self.OPS]
        return out

    def specs(self, o):
        return [Spec(1, o.work_mem, (Disk(o.io_bytes),))]

    def plan(self, o):
        return [(op, bs, o.io_rand_ops, seed) for _, op, bs, seed in self.OPS]

    def expected(self, o, data):
        if len(data) not in self._expected:
            self._expected[len(data)] = expected_crcs(data, self.plan(o))
        return self._expected[len(data)]

    def measure(self, s, rec):
        o = s.opts
        d = s.device("disk")
        size = len(d.data)
        # The only disk is /dev/vda; guest_io sits right after the test area.
        s.sh(f"[ $(cat /sys/block/vda/size) -eq {(size + d.tool_size + 4095) // 4096 * 8} ]")
        s.sh(f"mkdir -p {GUEST_DIR} && busybox dd if=/dev/vda bs=4096 skip={size // 4096} "
             f"count={(d.tool_size + 4095) // 4096} 2>/dev/null | busybox head -c {d.tool_size} "
             f"> {self.TOOL} && chmod +x {self.TOOL}")
        crcs, final = self.expected(o, d.data)
        for (key, op, bs, seed), want in zip(self.OPS, crcs):
            out, cpu = s.measured(f"{self.TOOL} /dev/vda {op} {size} {bs} {o.io_rand_ops} {seed}",
                                  o.io_timeout)
            r = parse_io(out)
            ops = o.io_rand_ops if op.startswith("rand") else size // bs
            if r["op"] != op or r["ops"] != ops or r["bytes"] != ops * bs:
                raise WorkloadError(f"{s.system}: guest_io {op} did {r['ops']} operations, "
                                    f"{r['bytes']} bytes; expected {ops}, {ops * bs}")
            if r["crc"] != want:
                raise WorkloadError(f"{s.system}: guest_io {op}: CRC-32 {r['crc']:08x} of the data, "
                                    f"expected {want:08x}")
            if r["seconds"] <= 0:
                raise WorkloadError(f"{s.system}: guest_io {op} took no time")
            rec(f"blk.{key}", r["bytes"] / MIB / r["seconds"] if key.startswith("seq")
                else r["ops"] / r["seconds"])
            rec(f"blk.{key}.cpu", cpu)
        # What the writes left on the disk, read back past the guest's cache.
        r = parse_io(s.sh(f"{self.TOOL} /dev/vda crc {size} {self.SEQ_BS} 0 0", o.io_timeout))
        if r["crc"] != final:
            raise WorkloadError(f"{s.system}: after the writes the disk's CRC-32 is {r['crc']:08x}, "
                                f"expected {final:08x}")
        s.checks.append(("virtio-blk: CRC-32 of the test area after the writes (as computed on the host)",
                         s.system, f"{r['crc']:08x}"))


class NinepRow:
    """virtio-9p: one sequential read of a file in a shared host directory,
    by guest_io (its CRC-32 checked against the host's)."""
    name = "9p"
    title = "virtio-9p"
    order = 5
    MOUNT = "/mnt/bench"
    BS = MIB
    TOOL = f"{GUEST_DIR}/guest_io"

    def metrics(self, o):
        return [Metric("9p.read", f"sequential read of a {mib(o.io_bytes)} file, 1 MiB reads", "MiB/s", better=HIGHER),
                Metric("9p.read.cpu", f"sequential read of a {mib(o.io_bytes)} file", "s", table="cputime")]

    def specs(self, o):
        return [Spec(1, o.work_mem, (Share(o.io_bytes),))]

    def measure(self, s, rec):
        d = s.device("share")
        m = self.MOUNT
        # The guest's init mounts every share at /mnt/<tag> (msize 262144,
        # its default); mount it the same way if it did not.
        s.sh(f"grep -q ' {m} 9p ' /proc/mounts || {{ mkdir -p {m} && mount -t 9p -o "
             f"trans=virtio,version=9p2000.L,msize=262144 {d.tag} {m}; }}")
        opts = s.sh(f"grep ' {m} 9p ' /proc/mounts | cut -d' ' -f4").strip()
        s.checks.append(("virtio-9p: mount options", s.system, opts))
        s.sh(f"mkdir -p {GUEST_DIR} && cp {m}/guest_io {self.TOOL} && chmod +x {self.TOOL}")
        s.sh("sync && echo 3 > /proc/sys/vm/drop_caches")
        out, cpu = s.measured(f"{self.TOOL} {m}/data fileread {s.opts.io_bytes} {self.BS} 0 0",
                              s.opts.io_timeout)
        r = parse_io(out)
        if r["bytes"] != s.opts.io_bytes or r["crc"] != d.sample_crc:
            raise WorkloadError(f"{s.system}: read {r['bytes']} bytes of the shared file with CRC-32 "
                                f"{r['crc']:08x}; expected {s.opts.io_bytes}, {d.sample_crc:08x}")
        if r["seconds"] <= 0:
            raise WorkloadError(f"{s.system}: the 9p read took no time")
        # Every byte, once more (not measured).
        full = parse_io(s.sh(f"{self.TOOL} {m}/data filecrc {s.opts.io_bytes} {self.BS} 0 0",
                             s.opts.io_timeout))
        if full["crc"] != d.crc:
            raise WorkloadError(f"{s.system}: the shared file reads back with CRC-32 {full['crc']:08x}, "
                                f"expected {d.crc:08x}")
        rec("9p.read", r["bytes"] / MIB / r["seconds"])
        rec("9p.read.cpu", cpu)


class NetRow:
    """TCP throughput over user-mode networking (slirp) through a host
    port forward: busybox nc in the guest, a Python socket on the host
    (iowork.py), timed on the host from connect to the end of the data."""
    name = "net"
    title = "virtio-net (user)"
    order = 6
    KEY = "net"
    HOW = "user-mode networking, hostfwd"

    def metrics(self, o):
        size = mib(o.io_bytes)
        return [Metric(f"{self.KEY}.h2g", f"TCP host → guest, {size} ({self.HOW})", "MiB/s", better=HIGHER),
                Metric(f"{self.KEY}.g2h", f"TCP guest → host, {size} ({self.HOW})", "MiB/s", better=HIGHER),
                Metric(f"{self.KEY}.h2g.cpu", f"TCP host → guest, {size} ({self.HOW})", "s", table="cputime"),
                Metric(f"{self.KEY}.g2h.cpu", f"TCP guest → host, {size} ({self.HOW})", "s", table="cputime")]

    def specs(self, o):
        return [Spec(1, o.work_mem, (UserNet(),))]

    def device(self, s):
        return s.device("usernet")

    def setup(self, s, dev):
        # The guest's init asked for a DHCP lease; wait until it has one.
        s.sh("i=0; until ip -4 addr show dev eth0 | grep -q 'inet '; do "
             "[ $i -lt 600 ] || exit 1; usleep 100000; i=$((i+1)); done")

    def measure(self, s, rec):
        dev = self.device(s)
        self.setup(s, dev)
        size, port, d = s.opts.io_bytes, dev.guest_port, GUEST_DIR
        # host → guest: nc's stdin is a FIFO nobody writes (a sleep holds it
        # open) so nc does not half-close at once; it exits when the host's
        # data ends, and its close tells the host the guest has read it all.
        s.sh(f"mkdir -p {d} && cd {d} && rm -f rx.fifo rx.log && mkfifo rx.fifo && "
             f"( busybox sleep 100000 > rx.fifo & h=$!; busybox nc -l -p {port} < rx.fifo | "
             f"busybox wc -c > rx.log; kill $h; echo rx-done >> rx.log ) > /dev/null 2>&1 &")
        r, cpu = self.host_side(s, dev, "send")
        log = self.wait_done(s, f"{d}/rx.log", "rx-done")
        nbytes = int(log.split()[0]) if log.split()[0].isdigit() else None
        if nbytes != size or r["unexpected"]:
            raise WorkloadError(f"{s.system}: the guest received {nbytes} bytes of {size} "
                                f"(and sent {r['unexpected']} back)")
        rec(f"{self.KEY}.h2g", size / MIB / r["seconds"])
        rec(f"{self.KEY}.h2g.cpu", cpu)
        # guest → host: zeros from dd; nc half-closes when dd is done.
        s.sh(f"cd {d} && rm -f tx.log && ( busybox head -c {size} /dev/zero | "
             f"busybox nc -l -p {port} > /dev/null; echo tx-done >> tx.log ) > /dev/null 2>&1 &")
        r, cpu = self.host_side(s, dev, "recv")
        if r["bytes"] != size or r["nonzero_chunks"]:
            raise WorkloadError(f"{s.system}: the host received {r['bytes']} bytes of {size} "
                                f"({r['nonzero_chunks']} chunks not zero)")
        self.wait_done(s, f"{d}/tx.log", "tx-done")
        rec(f"{self.KEY}.g2h", size / MIB / r["seconds"])
        rec(f"{self.KEY}.g2h.cpu", cpu)
        s.checks.append((f"{self.title}: bytes each way", s.system, str(size)))

    def host_side(self, s, dev, what):
        """Wait for the guest's nc to listen, then run the host end
        (iowork.py) where the device says; (its result, VMM CPU seconds)."""
        port = f"{dev.guest_port:04X}"
        s.sh(f"i=0; until cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | "
             f"grep -qE '^ *[0-9]+: [0-9A-F]+:{port} [0-9A-F]+:0000 0A'; do "
             f"[ $i -lt 1000 ] || exit 1; usleep 20000; i=$((i+1)); done")
        argv = [*dev.host_prefix, sys.executable, "-B", IOWORK, what, dev.host_addr, str(dev.port),
                str(s.opts.io_bytes)]
        with s.usage() as u:
            try:
                p = subprocess.run(argv, capture_output=True, text=True, timeout=s.opts.io_timeout)
            except subprocess.TimeoutExpired:
                raise WorkloadError(f"{s.system}: the host end of the TCP {what} timed out")
        cpu = u["cpu"]
        try:
            r = json.loads(p.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise WorkloadError(f"{s.system}: the host end of the TCP {what} failed: {p.stderr[-300:]!r}")
        if "error" in r:
            raise WorkloadError(f"{s.system}: TCP {what}: {r['error']}")
        if r["seconds"] <= 0:
            raise WorkloadError(f"{s.system}: TCP {what} took no time")
        return r, cpu

    def wait_done(self, s, log, word):
        return s.sh(f"i=0; until grep -q {word} {log}; do [ $i -lt 3000 ] || exit 1; "
                    f"usleep 20000; i=$((i+1)); done; cat {log}")


class TapRow(NetRow):
    """The same TCP transfers over a TAP interface in a network namespace
    the bench makes (needs root); the host end runs in that namespace."""
    name = "tap"
    title = "virtio-net (TAP)"
    order = 7
    KEY = "tap"
    HOW = "TAP in a network namespace"

    def specs(self, o):
        return [Spec(1, o.work_mem, (TapNet(),))]

    def device(self, s):
        return s.device("tap")

    def setup(self, s, dev):
        # No DHCP server on the TAP: stop init's udhcpc, set the address.
        s.sh("[ ! -r /run/udhcpc.eth0.pid ] || kill $(cat /run/udhcpc.eth0.pid) 2>/dev/null; "
             f"ip -4 addr flush dev eth0 && ip addr add {dev.guest_ip}/24 dev eth0 && "
             "ip link set eth0 up")
        s.sh(f"ping -c 1 -W 10 {dev.host_ip} > /dev/null")


ROWS = {r.name: r for r in (BootRow(), CpuRow(), SevenZipRow(), StressNgRow(), PythonRow(), SmpRow(),
                            VmmRow(), BlkRow(), NinepRow(), NetRow(), TapRow())}
TABLE_ORDER = ["boot", "cpu", "7zip", "stressng", "python", "smp", "vmm", "blk", "9p", "net", "tap"]

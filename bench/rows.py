"""The benchmark rows: what is measured, in which VM configuration, and how.

A row is a small class:
  - metrics(opts): the lines it adds to the table (key, label, unit, and
    whether lower or higher is better), in table order;
  - specs(opts): the VM configurations (harts, memory) it needs a booted
    guest of; rows asking for the same configuration share one boot;
  - measure(session, rec): called once for every booted guest of a
    configuration it asked for; records values with rec(key, value);
  - native(host, rec): optional, the same work on the host (the physical
    limit), once per run;
  - derive(opts, median): optional, values computed from the medians
    (scaling).

Adding a row (say virtio-blk sequential reads once the device exists) is
one more class here and its name in ROWS; the runner, the alternation
between skiff and QEMU, the medians, the ratios and the report need no
change.
"""

import time

from workloads import Workload, cpu_workloads, gen_data, parallel_sha256, parse_timed, timed

GUEST_DIR = "/tmp/bench"      # tmpfs in the guest (mounted by the guest's init)

LOWER, HIGHER = "lower", "higher"


class Metric:
    def __init__(self, key, label, unit, better=LOWER, table="main", native=False):
        self.key = key
        self.label = label
        self.unit = unit
        self.better = better
        self.table = table      # "main", or "cputime" for host CPU seconds
        self.native = native    # whether a native (host) value exists


class Spec(tuple):
    """A VM configuration: (harts, memory in MiB)."""

    def __new__(cls, harts, mem_mib):
        return tuple.__new__(cls, (harts, mem_mib))

    harts = property(lambda s: s[0])
    mem_mib = property(lambda s: s[1])

    def __str__(self):
        return f"{self.harts} hart{'s' if self.harts > 1 else ''}, {self.mem_mib} MiB"


class Session:
    """One booted guest of one system, shared by the rows that need it."""

    def __init__(self, system, spec, guest, opts, checks):
        self.system = system
        self.spec = spec
        self.g = guest
        self.opts = opts
        self.checks = checks            # (what, system, value) for the consistency report
        self.t_first_byte = None
        self.t_init = None
        self.t_prompt = None
        self.data_ready = False
        self.contention = []            # run-queue wait fractions, see note_contention
        self.cpu_at_prompt = None

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

    def timed(self, w):
        """Run a workload; (guest seconds, host CPU seconds of the VMM)."""
        cmd = self.stage(timed(w.cmd(GUEST_DIR)))     # typing a long script is not timed
        c0 = self.g.cpu_seconds()
        s0, t0 = self.g.schedstat(), time.monotonic()
        out = self._run(cmd, self.opts.work_timeout)
        cpu = self.g.cpu_seconds() - c0
        self.note_contention(s0, self.g.schedstat(), time.monotonic() - t0)
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

    def ensure_data(self):
        """Generate the test data in the guest's tmpfs once per boot; returns
        (guest seconds, host CPU seconds) when it did, else None."""
        if self.data_ready:
            return None
        r = self.timed(Workload("gen", "generate test data",
                                lambda d: gen_data(d, self.opts.data_bytes)))
        self.data_ready = True
        return r


class WorkloadError(Exception):
    pass


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
    name = "cpu"
    title = "Guest CPU"
    order = 2

    def workloads(self, o):
        return cpu_workloads(o.awk_steps)

    def metrics(self, o):
        mib = o.data_bytes / (1 << 20)
        data = f"{mib:g} MiB"
        out = [Metric("cpu.gen", f"generate the {data} of test data (busybox awk + tr)", "s", native=True)]
        for w in self.workloads(o):
            what = w.label if w.key == "awk_fp" else f"{w.label} over {data}"
            out.append(Metric(f"cpu.{w.key}", what, "s", native=True))
        out.append(Metric("cpu.gen.cpu", "generate test data", "s", table="cputime", native=True))
        for w in self.workloads(o):
            out.append(Metric(f"cpu.{w.key}.cpu", w.label, "s", table="cputime", native=True))
        return out

    def specs(self, o):
        return [Spec(1, o.work_mem)]

    def measure(self, s, rec):
        gen = s.ensure_data()
        if gen:
            rec("cpu.gen", gen[0])
            rec("cpu.gen.cpu", gen[1])
        for w in self.workloads(s.opts):
            secs, cpu = s.timed(w)
            rec(f"cpu.{w.key}", secs)
            rec(f"cpu.{w.key}.cpu", cpu)

    def native(self, host, rec):
        secs, cpu = host.ensure_data()
        rec("cpu.gen", secs)
        rec("cpu.gen.cpu", cpu)
        for w in self.workloads(host.opts):
            secs, cpu = host.timed(w)
            rec(f"cpu.{w.key}", secs)
            rec(f"cpu.{w.key}.cpu", cpu)


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
            Metric("vmm.guest_rss", f"guest RAM touched (RSS of the guest RAM mapping)", "MiB"),
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


ROWS = {r.name: r for r in (BootRow(), CpuRow(), SmpRow(), VmmRow())}
TABLE_ORDER = ["boot", "cpu", "smp", "vmm"]

# Rows that need devices skiff does not have yet; listed in the report.
NOT_YET = "virtio-blk sequential/random I/O, 9p file I/O, TCP throughput"
NOT_YET_WHY = "needs virtio-blk/9p/net"

"""Boot the default guest (stock Debian kernel + busybox initramfs) with 1,
4 and 8 harts and check it the way a person at the console would: the
harts and ISA extensions the kernel sees, the wall clock, a clean kernel
log, an SMP stress run, and that poweroff and reboot work.

Each hart count boots once; the checks of one class share that boot, in
the order written (poweroff / reboot come last).
"""
import hashlib
import re
import time

import pytest

from conftest import INIT_STARTED

# The ISA the design advertises (docs: DESIGN.md "Machine model"); the
# single-letter part must be exactly rv64imafdc, these must be present.
REQUIRED_EXTENSIONS = {"zba", "zbb", "zbs", "sstc", "zicboz", "zicntr", "zihintpause"}

# Kernel log lines that mean something went wrong.
BAD_DMESG = [
    re.compile(r"\bWARNING\b"),
    re.compile(r"\bBUG\b"),
    re.compile(r"\bOops\b"),
    re.compile(r"rcu_\w+ self-detected stall"),
    re.compile(r"rcu: INFO: .*detected stall"),
    re.compile(r"detected stalls? on CPUs?"),
    re.compile(r"soft lockup"),
    re.compile(r"hard LOCKUP", re.I),
    re.compile(r"hung task|blocked for more than \d+ seconds"),
    re.compile(r"Kernel panic"),
]


def assert_dmesg_clean(guest, when):
    log = guest.run("dmesg", timeout=60)
    assert "Linux version" in log, f"dmesg output does not look like a kernel log:\n{log[:2000]}"
    bad = [line for line in log.splitlines() if any(p.search(line) for p in BAD_DMESG)]
    assert not bad, (f"{guest.name}: kernel log {when} has problem lines:\n" + "\n".join(bad[:40]) +
                     f"\n(full console log: {guest.log_path})")


def parse_cpuinfo(text):
    """/proc/cpuinfo as a list of {field: value}, one per processor."""
    cpus = []
    for block in re.split(r"\n\s*\n", text.strip()):
        fields = {}
        for line in block.splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                fields[k.strip()] = v.strip()
        if "processor" in fields:
            cpus.append(fields)
    return cpus


def check_isa_string(isa, where):
    assert isa.startswith("rv64imafdc"), f"{where}: isa {isa!r} does not start with rv64imafdc"
    base, *exts = isa.split("_")
    assert base == "rv64imafdc", f"{where}: single-letter extensions are {base!r}, expected rv64imafdc"
    missing = REQUIRED_EXTENSIONS - set(exts)
    assert not missing, f"{where}: isa {isa!r} lacks {sorted(missing)}"


def cpu_busy_ticks(stat_text):
    """{cpu number: user+nice+system ticks} from /proc/stat."""
    busy = {}
    for line in stat_text.splitlines():
        m = re.match(r"cpu(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", line)
        if m:
            busy[int(m.group(1))] = int(m.group(2)) + int(m.group(3)) + int(m.group(4))
    return busy


@pytest.fixture(scope="class")
def guest(request, boot_guest):
    n = request.cls.ncpus
    g = boot_guest(f"boot-{n}hart", "--cpus", str(n))
    print(f"\n{g.name}: booted to the prompt in {g.boot_seconds:.1f} s")
    yield g
    g.close()


class BootChecks:
    """Checks shared by every hart count; subclasses set ncpus."""
    ncpus = None

    def test_cpuinfo_lists_every_hart_and_extensions(self, guest):
        cpus = parse_cpuinfo(guest.run("cat /proc/cpuinfo"))
        want = list(range(self.ncpus))
        assert sorted(int(c["processor"]) for c in cpus) == want, \
            f"/proc/cpuinfo processors: {[c.get('processor') for c in cpus]}, expected {want}"
        assert sorted(int(c["hart"]) for c in cpus if "hart" in c) == want, \
            f"/proc/cpuinfo hart ids: {[c.get('hart') for c in cpus]}, expected {want}"
        for c in cpus:
            where = f"processor {c['processor']}"
            assert "isa" in c, f"{where}: no isa line in /proc/cpuinfo: {c}"
            check_isa_string(c["isa"], where)
            if "hart isa" in c:
                check_isa_string(c["hart isa"], where + " (hart isa)")
        online = guest.run("cat /sys/devices/system/cpu/online")
        expect_online = "0" if self.ncpus == 1 else f"0-{self.ncpus - 1}"
        assert online.strip() == expect_online, f"online cpus {online!r}, expected {expect_online!r}"

    def test_clock_matches_host(self, guest):
        before = time.time()
        out = guest.run("date +%s")
        after = time.time()
        assert re.fullmatch(r"\d+", out.strip()), f"date +%s printed {out!r}"
        t = int(out.strip())
        assert before - 2 <= t <= after + 2, (
            f"guest time {t} is off the host's: host was {before:.1f}..{after:.1f} "
            f"(difference {t - (before + after) / 2:+.1f} s)")

    def test_dmesg_clean_after_boot(self, guest):
        assert_dmesg_clean(guest, "after boot")

    def test_user_mode_reads_time_csr_on_every_hart(self, guest):
        """clock_gettime(CLOCK_MONOTONIC) runs in the vDSO, which reads the
        time CSR (rdtime) from U-mode; that needs scounteren.TM, which SBI
        firmware sets before entering S-mode (OpenSBI writes scounteren = 7:
        CY, TM, IR) and Linux leaves alone. busybox `time` uses it."""
        failures = []
        for cpu in range(self.ncpus):
            status, out = guest.run_status(f"taskset -c {cpu} time true", timeout=60)
            if status != 0 or "real" not in out:
                failures.append(f"hart {cpu}: status {status}, output {out!r}")
        trace = guest.run("dmesg | grep -A3 'unhandled signal' | tail -8", check=False)
        assert not failures, ("`time true` (rdtime from U-mode) fails:\n" + "\n".join(failures) +
                              "\nkernel log:\n" + trace)


class TestOneHart(BootChecks):
    ncpus = 1

    def test_reboot_comes_back(self, guest):
        pid = guest.p.pid
        sent = time.monotonic()
        guest.p.sendline("reboot")
        guest._expect([re.escape(INIT_STARTED)], 300, f"'{INIT_STARTED}' after reboot")
        guest.wait_ready()
        assert guest.p.isalive() and guest.p.pid == pid, "skiff is not the same process after reboot"
        since = time.monotonic() - sent
        uptime = float(guest.run("cut -d' ' -f1 /proc/uptime"))
        assert uptime <= since + 2, (
            f"guest uptime after reboot is {uptime:.1f} s but the reboot was sent "
            f"{since:.1f} s ago: the kernel did not start again")
        assert guest.run("echo again $((20+22))") == "again 42"
        assert_dmesg_clean(guest, "after reboot")

    def test_poweroff_exits_0(self, guest):
        status = guest.poweroff()
        assert status == 0, f"skiff exited with status {status} after poweroff\n{guest.tail(1500)}"


# Known data for the SMP stress run: what `seq 1 SEQ_N` prints, hashed on
# the host.
SEQ_N = 40000
SEQ_DATA = "".join(f"{i}\n" for i in range(1, SEQ_N + 1)).encode()
SEQ_DIGESTS = [hashlib.sha256(SEQ_DATA).hexdigest() + "  -", hashlib.md5(SEQ_DATA).hexdigest() + "  -"]


class SmpChecks(BootChecks):
    """The SMP stress run, for the multi-hart classes."""

    def test_smp_stress(self, guest):
        """One job pinned to each hart hashes known data (seq output) with
        sha256sum and md5sum (twice with 4 harts, once with 8), while the shell forks and execs
        300 times: every digest must be the one the host computes, so a
        hart that computes wrongly under SMP is caught, and every hart must
        have worked."""
        rounds = 2 if self.ncpus <= 4 else 1
        stat_before = cpu_busy_ticks(guest.run("cat /proc/stat"))
        job = f"for k in $(seq {rounds}); do seq 1 {SEQ_N} | sha256sum; seq 1 {SEQ_N} | md5sum; done"
        cmd = ("rm -f /tmp/hash*; "
               f"for c in $(seq 0 {self.ncpus - 1}); do "
               f"( taskset -c $c sh -c '{job}' > /tmp/hash$c; echo ok > /tmp/hash$c.done ) & done; "
               "for i in $(seq 300); do /bin/true || echo TRUE-FAILED; done; echo forks-done; "
               "wait; echo all-done")
        t0 = time.monotonic()
        out = guest.run(cmd, timeout=600)
        took = time.monotonic() - t0
        print(f"\nsmp stress on {self.ncpus} harts took {took:.1f} s")
        assert "TRUE-FAILED" not in out, f"a /bin/true in the fork loop failed:\n{out}"
        assert "forks-done" in out and "all-done" in out, f"stress run did not finish:\n{out}"
        for c in range(self.ncpus):
            done = guest.run(f"cat /tmp/hash{c}.done", check=False)
            assert done == "ok", f"stress job on hart {c} did not finish (got {done!r})"
            lines = guest.run(f"cat /tmp/hash{c}").splitlines()
            assert lines == SEQ_DIGESTS * rounds, \
                (f"hart {c}: wrong digests of `seq 1 {SEQ_N}` (expected {SEQ_DIGESTS}):\n" + "\n".join(lines))
        stat_after = cpu_busy_ticks(guest.run("cat /proc/stat"))
        idle_cpus = [c for c in range(self.ncpus)
                     if stat_after.get(c, 0) - stat_before.get(c, 0) <= 0]
        assert not idle_cpus, (f"cpus {idle_cpus} did no work during the stress run "
                               f"(busy ticks before {stat_before}, after {stat_after})")

    def test_dmesg_clean_after_stress(self, guest):
        assert_dmesg_clean(guest, "after the SMP stress run")

    def test_poweroff_exits_0(self, guest):
        status = guest.poweroff()
        assert status == 0, f"skiff exited with status {status} after poweroff\n{guest.tail(1500)}"


class TestFourHarts(SmpChecks):
    ncpus = 4


class TestEightHarts(SmpChecks):
    """The most harts skiff gives a VM: more than the host's cores, the case
    that used to stall (see the pause-loop exit in docs/architecture.md)."""
    ncpus = 8

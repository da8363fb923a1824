"""Settings shared by the differential ISA check scripts."""
import os

# qemu-riscv64 configured as the ISA skiff implements: RV64GC with Zba, Zbb,
# Zbs (Zicsr, Zifencei, Zihintpause and the counters are always on in QEMU
# 7.2), and every other optional extension QEMU would enable by default
# switched off, so an encoding skiff rejects is rejected by QEMU too.
QEMU_CPU = ("rv64,zba=true,zbb=true,zbs=true,zbc=false,zbkb=false,zbkc=false,zbkx=false,"
            "zk=false,zkn=false,zks=false,zkr=false,zknd=false,zkne=false,zknh=false,"
            "zksed=false,zksh=false,zkt=false,v=false,h=false,Zfh=false,Zfhmin=false,"
            "svinval=false,zmmul=false,zdinx=false,zfinx=false,zhinx=false,zhinxmin=false,"
            "Zve32f=false,Zve64f=false,svnapot=false,svpbmt=false")

# The cross compiler's -march for generated and test programs.
MARCH = "rv64gc_zba_zbb_zbs_zihintpause"


def sanitizer_report(stderr):
    """The first line of an ASan/UBSan report in a runner's stderr, or None.
    UBSan only prints and carries on, so exit statuses alone miss it."""
    for line in stderr.splitlines():
        if "runtime error:" in line or "Sanitizer" in line:
            return line.strip()
    return None


def runner_env():
    """The environment for skiff-isa-run: only the tier settings it reads
    (SKIFF_ENGINE, SKIFF_JIT_THRESHOLD), so that a check run under
    SKIFF_ENGINE=lockstep runs lockstep. Nothing else: the programs' runs
    must not depend on the caller's environment (qemu-riscv64 gets none)."""
    return {k: os.environ[k] for k in ("SKIFF_ENGINE", "SKIFF_JIT_THRESHOLD") if k in os.environ}

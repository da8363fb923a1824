"""What every benchmark row is made of: its table lines (Metric), the VM
configurations it needs a booted guest of (Spec), and the error a failed
workload raises.  rows.py holds the rows themselves (compiled.py the ones
that run Debian's compiled programs); the runner (bench.py) only needs these.
"""

GUEST_DIR = "/tmp/bench"      # tmpfs in the guest (mounted by the guest's init)

LOWER, HIGHER = "lower", "higher"

DEFAULT_IMAGE = "default"     # the guest profile most rows boot (guest/profiles/)


class Metric:
    def __init__(self, key, label, unit, better=LOWER, table="main", native=False):
        self.key = key
        self.label = label
        self.unit = unit
        self.better = better
        self.table = table      # "main", or "cputime" for host CPU seconds
        self.native = native    # whether a native (host) value exists


class Spec(tuple):
    """A VM configuration: (harts, memory in MiB, devices, guest image).
    devices is a tuple of device values from devices.py (a disk, a share, a
    NIC); the runner prepares them on the host before each boot.  image
    names the guest profile whose kernel and initramfs both VMMs boot
    (guest/build-image.sh --profile NAME)."""

    def __new__(cls, harts, mem_mib, devices=(), image=DEFAULT_IMAGE):
        return tuple.__new__(cls, (harts, mem_mib, tuple(devices), image))

    harts = property(lambda s: s[0])
    mem_mib = property(lambda s: s[1])
    devices = property(lambda s: s[2])
    image = property(lambda s: s[3])

    def __str__(self):
        devs = "".join(f", {d.kind}" for d in self.devices)
        img = "" if self.image == DEFAULT_IMAGE else f", image {self.image}"
        return f"{self.harts} hart{'s' if self.harts > 1 else ''}, {self.mem_mib} MiB{devs}{img}"


class WorkloadError(Exception):
    pass

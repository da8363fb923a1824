"""The systems measured side by side: skiff and its peer, QEMU (TCG).

Each system turns one VM configuration (kernel, initramfs, command line,
harts, memory) into a command line.  Both get exactly the same guest:
the same kernel Image, the same initramfs, the same kernel command line,
the same memory size and the same number of harts.

QEMU gets `-nic none` on top of the peer command line from the issue:
without it QEMU adds a default network card, the guest's init would then
spend seconds on DHCP, and skiff's guest, which has no NIC unless asked,
would not be doing the same work.

The I/O rows' configurations add devices (devices.py); each system turns a
prepared device into its own options, both on virtio-mmio: a raw
virtio-blk disk, a virtio-9p share, a virtio-net NIC on user-mode
networking or on a TAP interface.  A TAP device lives in a network
namespace, and the VMM is started inside it (`ip netns exec`).
"""

import shutil
import subprocess


def vmm_prefix(devices):
    """What the VMM's command line is run under: `ip netns exec NS` for a
    TAP device (the namespace holds the interface), else nothing."""
    for d in devices:
        if getattr(d, "vmm_prefix", ()):
            return list(d.vmm_prefix)
    return []


class Skiff:
    name = "skiff"

    def __init__(self, binary, engine=None):
        self.binary = binary
        self.engine = engine  # --engine for skiff run; None: skiff's default

    def argv(self, kernel, initrd, append, harts, mem_mib, devices=()):
        argv = [self.binary, "run", "--kernel", kernel, "--initrd", initrd,
                "--append", append, "--cpus", str(harts), "--mem", f"{mem_mib}M"]
        if self.engine:
            argv += ["--engine", self.engine]
        for d in devices:
            argv += self.device_args(d)
        return vmm_prefix(devices) + argv

    @staticmethod
    def device_args(d):
        if d.kind == "disk":
            return ["--disk", f"{d.path},format=raw"]
        if d.kind == "share":
            return ["--share", f"{d.path},tag={d.tag}"]
        if d.kind == "usernet":
            return ["--net", f"user,hostfwd=tcp:127.0.0.1:{d.port}-:{d.guest_port}"]
        if d.kind == "tap":
            return ["--net", f"tap,ifname={d.ifname}"]
        raise ValueError(f"skiff: unknown device kind {d.kind}")


class Qemu:
    name = "qemu"

    def __init__(self, binary="qemu-system-riscv64"):
        self.binary = binary

    def argv(self, kernel, initrd, append, harts, mem_mib, devices=()):
        argv = [self.binary, "-M", "virt", "-bios", "default", "-nographic", "-nic", "none",
                "-kernel", kernel, "-initrd", initrd, "-append", append,
                "-smp", str(harts), "-m", f"{mem_mib}M"]
        for i, d in enumerate(devices):
            argv += self.device_args(d, i)
        return vmm_prefix(devices) + argv

    @staticmethod
    def device_args(d, i):
        if d.kind == "disk":
            return ["-drive", f"file={d.path},format=raw,if=none,id=d{i}",
                    "-device", f"virtio-blk-device,drive=d{i}"]
        if d.kind == "share":
            return ["-fsdev", f"local,id=f{i},path={d.path},security_model=none",
                    "-device", f"virtio-9p-device,fsdev=f{i},mount_tag={d.tag}"]
        if d.kind == "usernet":
            return ["-netdev", f"user,id=n{i},hostfwd=tcp:127.0.0.1:{d.port}-:{d.guest_port}",
                    "-device", f"virtio-net-device,netdev=n{i}"]
        if d.kind == "tap":
            return ["-netdev", f"tap,id=n{i},ifname={d.ifname},script=no,downscript=no",
                    "-device", f"virtio-net-device,netdev=n{i}"]
        raise ValueError(f"qemu: unknown device kind {d.kind}")

    def version(self):
        path = shutil.which(self.binary)
        if not path:
            return None
        out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0].strip() if out else None

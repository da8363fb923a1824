"""The systems measured side by side: skiff and its peer, QEMU (TCG).

Each system turns one VM configuration (kernel, initramfs, command line,
harts, memory) into a command line.  Both get exactly the same guest:
the same kernel Image, the same initramfs, the same kernel command line,
the same memory size and the same number of harts.

QEMU gets `-nic none` on top of the peer command line from the issue:
without it QEMU adds a default network card, the guest's init would then
spend seconds on DHCP, and skiff has no network device yet, so the two
guests would not be doing the same work.
"""

import shutil
import subprocess


class Skiff:
    name = "skiff"

    def __init__(self, binary):
        self.binary = binary

    def argv(self, kernel, initrd, append, harts, mem_mib):
        return [self.binary, "run", "--kernel", kernel, "--initrd", initrd,
                "--append", append, "--cpus", str(harts), "--mem", f"{mem_mib}M"]


class Qemu:
    name = "qemu"

    def __init__(self, binary="qemu-system-riscv64"):
        self.binary = binary

    def argv(self, kernel, initrd, append, harts, mem_mib):
        return [self.binary, "-M", "virt", "-bios", "default", "-nographic", "-nic", "none",
                "-kernel", kernel, "-initrd", initrd, "-append", append,
                "-smp", str(harts), "-m", f"{mem_mib}M"]

    def version(self):
        path = shutil.which(self.binary)
        if not path:
            return None
        out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0].strip() if out else None

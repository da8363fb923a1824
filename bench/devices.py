"""The devices of the I/O rows' VM configurations, on the host side.

A device in a Spec is a small value (its kind and size), so two rows asking
for the same device share one boot.  Before every session the runner calls
prepare(workdir) on each, which makes what the VMM is given on the host: a
fresh disk image, a shared directory with its test file, a free TCP port
for the forward, a network namespace with a TAP interface.  Each session
starts from the same state, so skiff and QEMU do the same work on the same
bytes.  close() removes what prepare made.  How each VMM is told about a
prepared device is in peers.py.
"""

import os
import random
import shutil
import socket
import subprocess
import zlib
from collections import namedtuple

from iowork import crc_sample

HERE = os.path.dirname(os.path.abspath(__file__))

GUEST_PORT = 5201
SHARE_TAG = "bench"
BLOCK = 4096


class DeviceError(Exception):
    """A device could not be prepared on the host (missing tool, no root)."""


def device(name, fields):
    """A device value: a named tuple that is equal only to the same kind of
    device with the same fields (plain named tuples compare as tuples, so a
    disk and a share of the same size would be one configuration)."""
    base = namedtuple(name, fields)

    def eq(a, b):
        return type(a) is type(b) and tuple.__eq__(a, b)

    return type(name, (base,), {"__slots__": (), "__eq__": eq,
                                "__ne__": lambda a, b: not eq(a, b),
                                "__hash__": lambda a: hash((name, tuple(a)))})


def test_bytes(size, seed):
    """The deterministic content of a disk image or shared file."""
    return random.Random(seed).randbytes(size)


def build_guest_io(workdir):
    """Cross-compile bench/guest_io.c into a static riscv64 program (once
    per workdir); returns its path."""
    out = os.path.join(workdir, "guest_io")
    if os.path.exists(out):
        return out
    cc = shutil.which("riscv64-linux-gnu-gcc")
    if not cc:
        raise DeviceError("riscv64-linux-gnu-gcc not found (packages gcc-riscv64-linux-gnu, "
                          "libc6-dev-riscv64-cross; scripts/deps.sh installs them)")
    p = subprocess.run([cc, "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out,
                        os.path.join(HERE, "guest_io.c")], capture_output=True, text=True)
    if p.returncode != 0:
        raise DeviceError(f"building guest_io failed: {p.stderr[-2000:]}")
    return out


# ------------------------------------------------------------------ disk
class Disk(device("Disk", "size")):
    """A raw virtio-blk disk: `size` bytes of test data (the area the blk
    row reads and writes), then the guest_io program at offset `size`
    (padded to 4 KiB), which the guest copies out of the disk it tests, so
    both VMMs hand the guest the same program the same way."""
    kind = "disk"

    def prepare(self, workdir):
        tool = build_guest_io(workdir)
        with open(tool, "rb") as f:
            prog = f.read()
        data = test_bytes(self.size, seed=self.size)
        path = os.path.join(workdir, "disk.img")
        with open(path, "wb") as f:
            f.write(data)
            f.write(prog)
            f.write(bytes(-len(prog) % BLOCK))
        return PreparedDisk(path, data, len(prog))

    def example(self):
        return PreparedDisk("disk.img", b"", 0)


class PreparedDisk:
    kind = "disk"

    def __init__(self, path, data, tool_size):
        self.path = path
        self.data = data                # the initial test area
        self.tool_size = tool_size      # guest_io's size in bytes, stored at len(data)

    def close(self):
        if os.path.isabs(self.path) and os.path.exists(self.path):
            os.unlink(self.path)


# ------------------------------------------------------------------ 9p
class Share(device("Share", "size")):
    """A host directory shared over virtio-9p with tag `bench`, holding
    the test file `data` of `size` bytes and the guest_io program."""
    kind = "share"

    def prepare(self, workdir):
        tool = build_guest_io(workdir)
        d = os.path.join(workdir, "share")
        os.makedirs(d, exist_ok=True)
        data = test_bytes(self.size, seed=self.size + 1)
        with open(os.path.join(d, "data"), "wb") as f:
            f.write(data)
        shutil.copy(tool, os.path.join(d, "guest_io"))
        return PreparedShare(d, crc_sample(data), zlib.crc32(data))

    def example(self):
        return PreparedShare("share", 0, 0)


class PreparedShare:
    kind = "share"
    tag = SHARE_TAG

    def __init__(self, path, sample_crc, crc):
        self.path = path
        self.sample_crc = sample_crc    # guest_io fileread's CRC-32 of the test file
        self.crc = crc                  # and filecrc's

    def close(self):
        if os.path.isabs(self.path):
            shutil.rmtree(self.path, ignore_errors=True)


# ------------------------------------------------------------------ network
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UserNet(device("UserNet", "")):
    """A virtio-net NIC on user-mode networking (slirp) with one TCP
    forward from 127.0.0.1:PORT on the host to the guest's GUEST_PORT."""
    kind = "usernet"

    def prepare(self, workdir):
        return PreparedUserNet(free_port())

    def example(self):
        return PreparedUserNet("PORT")


class PreparedUserNet:
    kind = "usernet"
    guest_port = GUEST_PORT
    host_addr = "127.0.0.1"     # where the host side connects
    host_prefix = ()            # the host side runs in the bench's own namespace
    vmm_prefix = ()

    def __init__(self, port):
        self.port = port

    def close(self):
        pass


class TapNet(device("TapNet", "")):
    """A virtio-net NIC on a TAP interface inside a network namespace the
    bench creates for the session and deletes afterwards (needs root, like
    the TAP integration test).  The VMM and the host side of the
    measurement both run in that namespace, so no traffic leaves it."""
    kind = "tap"
    HOST_IP = "192.168.78.1"
    GUEST_IP = "192.168.78.2"
    IFNAME = "skbtap0"

    def prepare(self, workdir):
        if os.geteuid() != 0:
            raise DeviceError("the tap row needs root (it makes a network namespace and a TAP device)")
        if not os.path.exists("/dev/net/tun"):
            raise DeviceError("/dev/net/tun does not exist: the host has no TUN/TAP support")
        if not shutil.which("ip"):
            raise DeviceError("the ip command (iproute2) is not installed")
        ns = f"skbench{os.getpid()}"
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)     # left by a ^C
        steps = [["ip", "netns", "add", ns],
                 ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
                 ["ip", "netns", "exec", ns, "ip", "tuntap", "add", "dev", self.IFNAME, "mode", "tap"],
                 ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.HOST_IP}/24", "dev", self.IFNAME],
                 ["ip", "netns", "exec", ns, "ip", "link", "set", self.IFNAME, "up"]]
        prepared = PreparedTap(ns, self.IFNAME)
        for cmd in steps:
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                prepared.close()
                raise DeviceError(f"`{' '.join(cmd)}` failed: {p.stderr.strip()}")
        return prepared

    def example(self):
        return PreparedTap("NETNS", self.IFNAME)


class PreparedTap:
    kind = "tap"
    guest_port = GUEST_PORT
    host_addr = TapNet.GUEST_IP
    guest_ip = TapNet.GUEST_IP
    host_ip = TapNet.HOST_IP

    def __init__(self, ns, ifname):
        self.ns = ns
        self.ifname = ifname
        self.port = GUEST_PORT
        self.host_prefix = ("ip", "netns", "exec", ns)
        self.vmm_prefix = self.host_prefix

    def close(self):
        if self.ns != "NETNS":
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)

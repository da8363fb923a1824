#!/bin/bash
# Development check of the default guest image (guest/build-image.sh) under
# Debian's qemu-system-riscv64 (-M virt -bios default: OpenSBI), while
# skiff's own hypervisor is not ready to boot it.  Not part of the CI suite.
#
# Boots the image several times and drives the serial console with
# python3-pexpect, checking: "skiff-guest: init started" / "ready", the
# shell and its prompt, module loading (dmesg), every virtio device the image
# has drivers for (net + DHCP, 9p share, blk, rng, balloon, console), 1 and 4
# harts, skiff.hostname=, job control, shell respawn, poweroff, reboot, and
# root=/dev/vda (switch_root to a tiny ext4 disk made with mkfs.ext4 -d).
#
# usage: guest/test-with-qemu.sh [--profile NAME] [--keep]
#   --keep  keep the work directory (console logs of every boot) and print it
# SKIFF_TEST_TIMEOUT=SECONDS (default 300) bounds each wait on the console;
# qemu's TCG is slow on a loaded host, 4 harts on 2 host cores most of all.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
profile=default
keep=no
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile=$2; shift 2 ;;
        --keep) keep=yes; shift ;;
        *) echo "usage: $0 [--profile NAME] [--keep]" >&2; exit 2 ;;
    esac
done

img_dir=$("$here/build-image.sh" --profile "$profile" --print-dir)
for f in Image initrd.cpio.gz; do
    if [ ! -f "$img_dir/$f" ]; then
        echo "test-with-qemu: $img_dir/$f missing; run guest/build-image.sh first" >&2
        exit 1
    fi
done
for tool in qemu-system-riscv64 mkfs.ext4 dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "test-with-qemu: $tool not found" >&2; exit 1; }
done
/usr/bin/python3 -c 'import pexpect' 2>/dev/null ||
    { echo "test-with-qemu: python3-pexpect is not installed (apt-get install python3-pexpect)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/skiff-guest-test.XXXXXX")
if [ "$keep" = yes ]; then
    trap 'echo "test-with-qemu: logs kept in $work"' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi

# A 9p share with a file the guest must see.
mkdir -p "$work/share"
echo "hello from the host" > "$work/share/host-file.txt"

# A tiny ext4 root disk: a static busybox and an /sbin/init that reports
# where it runs and powers off.
deb=$(ls "$img_dir/../debs/"busybox-static_*.deb 2>/dev/null | head -n 1 || true)
[ -n "$deb" ] || { echo "test-with-qemu: no cached busybox-static .deb in $img_dir/../debs" >&2; exit 1; }
mkdir -p "$work/bb" "$work/disk/bin" "$work/disk/sbin" "$work/disk/proc" "$work/disk/sys" \
         "$work/disk/dev" "$work/disk/run" "$work/disk/tmp"
dpkg-deb -x "$deb" "$work/bb"
cp "$work/bb/usr/bin/busybox" "$work/disk/bin/busybox"
ln -s busybox "$work/disk/bin/sh"
cat > "$work/disk/sbin/init" <<'EOF'
#!/bin/busybox sh
export PATH=/bin
echo "disk-init: running as pid $$"
echo "disk-init: root $(busybox awk '$2 == "/" { print $1, $3 }' /proc/mounts)"
echo "disk-init: vda $(busybox ls /dev/vda)"
echo "disk-init: ext4 module $(busybox grep -c '^ext4 ' /proc/modules)"
busybox poweroff -f
EOF
chmod 755 "$work/disk/sbin/init"
mkfs.ext4 -q -F -L skiffroot -d "$work/disk" "$work/root.ext4" 16M
truncate -s 8M "$work/data.img"

export IMG_DIR=$img_dir WORK=$work
exec /usr/bin/python3 - <<'PYEOF'
import os, re, subprocess, sys, threading, time, http.server, socketserver
import pexpect

IMG, WORK = os.environ["IMG_DIR"], os.environ["WORK"]
TIMEOUT = int(os.environ.get("SKIFF_TEST_TIMEOUT", "300"))   # per expect, seconds
results = []          # (name, ok, detail)
boot_times = []


def check(name, ok, detail=""):
    """Record one check; the detail is shown for failures and short passes."""
    results.append((name, bool(ok), detail))
    detail = str(detail).strip()
    if ok and (len(detail) > 70 or "\n" in detail):
        detail = ""
    print(("PASS " if ok else "FAIL ") + name + (f"  ({detail})" if detail else ""), flush=True)


class Guest:
    """One qemu-system-riscv64 run, driven through its serial console."""

    def __init__(self, tag, smp=1, append="console=ttyS0", extra=(), timeout=TIMEOUT):
        self.tag = tag
        args = ["-M", "virt", "-bios", "default", "-m", "512M", "-smp", str(smp),
                "-nographic", "-kernel", f"{IMG}/Image", "-initrd", f"{IMG}/initrd.cpio.gz",
                "-append", append] + list(extra)
        self.log = open(f"{WORK}/console-{tag}.log", "w")
        self.p = pexpect.spawn("qemu-system-riscv64", args, encoding="utf-8",
                               codec_errors="replace", timeout=timeout,
                               dimensions=(50, 200))
        self.p.logfile_read = self.log

    def wait_ready(self):
        self.p.expect("skiff-guest: init started")
        t0 = time.monotonic()
        self.p.expect("skiff-guest: ready")
        boot_times.append((self.tag, time.monotonic() - t0))
        self.p.expect(r"root@[^:\s]+:[^#]*# ")
        prompt = self.p.after
        # A wide terminal, so that echoed command lines do not wrap.
        self.p.sendline("stty cols 1000")
        self.p.expect(r"root@[^:\s]+:[^#\r\n]*# ")
        return prompt

    def run(self, cmd, timeout=60):
        """Run cmd in the guest shell; return (exit status, output)."""
        self.p.sendline(f'{cmd}; echo "__E""ND__ $?"')
        self.p.expect(r"__END__ (\d+)[\r\n]", timeout=timeout)
        out = self.p.before
        # drop the echoed command line (it may wrap) up to its marker text
        k = out.find('__E""ND__ $?"')
        if k >= 0:
            out = out[k + len('__E""ND__ $?"'):]
        rc = int(self.p.match.group(1))
        self.p.expect(r"root@[^:\s]+:[^#\r\n]*# ")
        self.prompt = self.p.after
        return rc, out.replace("\r", "").strip()

    def expect_exit(self, timeout=60):
        self.p.expect(pexpect.EOF, timeout=timeout)
        self.p.close()
        return self.p.exitstatus

    def kill(self):
        if self.p.isalive():
            self.p.terminate(force=True)


def guarded(name, fn):
    try:
        fn()
    except (pexpect.TIMEOUT, pexpect.EOF) as e:
        check(name + ": completed without timeout/EOF", False, type(e).__name__)


# A tiny HTTP server on the host's loopback; slirp maps 10.0.2.2 to it.
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


os.chdir(f"{WORK}/share")
httpd = socketserver.TCPServer(("127.0.0.1", 0), Quiet)
port = httpd.server_address[1]
threading.Thread(target=httpd.serve_forever, daemon=True).start()

# -------------------------------------------------- boot 1: one hart, all devices
def boot1():
    g = Guest("1hart-devices", smp=1, extra=[
        "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0",
        "-virtfs", f"local,path={WORK}/share,mount_tag=share0,security_model=none",
        # -virtfs gives virtio-9p over PCI on -M virt; share1 is on virtio-mmio,
        # the transport skiff has.
        "-fsdev", f"local,id=fs1,path={WORK}/share,security_model=none",
        "-device", "virtio-9p-device,fsdev=fs1,mount_tag=share1",
        "-drive", f"file={WORK}/data.img,format=raw,if=none,id=d0",
        "-device", "virtio-blk-device,drive=d0",
        "-device", "virtio-rng-device",
        "-device", "virtio-balloon-device",
        "-device", "virtio-serial-device", "-device", "virtconsole,id=vc0"])
    try:
        prompt = g.wait_ready()
        check("boot 1 hart: ready and prompt", "root@skiff:/# " in prompt, repr(prompt))
        rc, out = g.run("echo $((6 * 7))")
        check("shell evaluates commands", rc == 0 and out.endswith("42"), out)
        rc, out = g.run("dmesg | grep -iE 'module|insmod|unknown symbol|disagrees' "
                        "| grep -iE 'fail|error|unknown|disagree|taint' ; true")
        check("no module errors in dmesg", out == "", out)
        rc, out = g.run("cat /proc/modules | cut -d' ' -f1 | sort | tr '\\n' ' '")
        want = {"virtio_mmio", "virtio_blk", "virtio_net", "virtio_rng", "9pnet_virtio",
                "9p", "vmw_vsock_virtio_transport", "virtio_balloon", "ext4"}
        have = set(out.split())
        check("requested modules loaded", want <= have, "missing: " + " ".join(sorted(want - have)))
        rc, out = g.run("ip -4 addr show dev eth0; ip route; cat /etc/resolv.conf")
        check("DHCP address on eth0", "inet 10.0.2.15/24" in out, out)
        check("DHCP default route", "default via 10.0.2.2 dev eth0" in out, out)
        check("DHCP resolv.conf", "nameserver 10.0.2.3" in out, out)
        rc, out = g.run(f"wget -q -O - http://10.0.2.2:{port}/host-file.txt")
        check("TCP to the host through slirp (wget)", rc == 0 and "hello from the host" in out, out)
        rc, out = g.run("grep ' /mnt/share0 ' /proc/mounts; cat /mnt/share0/host-file.txt")
        check("9p share mounted at /mnt/share0", " 9p " in out and "trans=virtio" in out, out)
        check("9p share readable", "hello from the host" in out, out)
        rc, out = g.run("echo from-guest > /mnt/share0/guest-file.txt && sync")
        try:
            with open(f"{WORK}/share/guest-file.txt") as f:
                host_view = f.read().strip()
        except OSError as e:
            host_view = str(e)
        check("9p share writable", rc == 0 and host_view == "from-guest", host_view)
        rc, out = g.run("grep ' /mnt/share1 ' /proc/mounts; cat /mnt/share1/guest-file.txt")
        check("9p share over virtio-mmio mounted at /mnt/share1",
              " 9p " in out and "from-guest" in out, out)
        rc, out = g.run("mke2fs /dev/vda >/dev/null 2>&1; mount -t ext4 /dev/vda /mnt && echo blk-ok > /mnt/f && cat /mnt/f && umount /mnt")
        check("virtio-blk disk usable with ext4 driver", rc == 0 and "blk-ok" in out, out)
        rc, out = g.run("cat /sys/class/misc/hw_random/rng_current 2>/dev/null || "
                        "cat /sys/devices/virtual/misc/hw_random/rng_current; "
                        "head -c 16 /dev/hwrng | wc -c")
        check("virtio-rng is the hwrng", "virtio_rng" in out and out.endswith("16"), out)
        rc, out = g.run("ls /sys/bus/virtio/drivers/virtio_balloon/ | grep -c virtio")
        check("virtio-balloon bound", rc == 0 and int(out.split()[-1]) >= 1, out)
        rc, out = g.run("ls /dev/hvc0 && ls /sys/bus/virtio/drivers/virtio_console/ | grep -c virtio")
        check("virtio-console bound (/dev/hvc0)", rc == 0, out)
        rc, out = g.run("grep -c . /proc/net/vsock 2>/dev/null; ls -d /sys/module/vmw_vsock_virtio_transport")
        check("vsock transport present", rc == 0, out)
        rc, out = g.run("dmesg")
        with open(f"{WORK}/dmesg-1hart.txt", "w") as f:
            f.write(out + "\n")
        g.log.flush()
        with open(f"{WORK}/console-1hart-devices.log", errors="replace") as f:
            lines = [l.strip() for l in f if "skiff-guest:" in l]
        check("'skiff-guest: init started' is init's first line",
              lines and lines[0] == "skiff-guest: init started", lines[:1])
        check("'skiff-guest: ready' printed once",
              sum(l == "skiff-guest: ready" for l in lines) == 1)
        g.p.sendline("poweroff")
        status = g.expect_exit()
        check("poweroff ends qemu", status == 0, f"exit status {status}")
    finally:
        g.kill()


# -------------------------------------------------- boot 2: four harts, shell behaviour
def boot2():
    g = Guest("4harts-shell", smp=4, append="console=ttyS0 skiff.hostname=testbox",
              extra=["-no-reboot"])
    try:
        prompt = g.wait_ready()
        check("boot 4 harts: ready, hostname from skiff.hostname=",
              "root@testbox:/# " in prompt, repr(prompt))
        rc, out = g.run("nproc; grep -c '^processor' /proc/cpuinfo")
        check("4 harts online", out.split()[-2:] == ["4", "4"], out)
        rc, out = g.run("grep -m1 '^isa' /proc/cpuinfo; grep -m1 '^mmu' /proc/cpuinfo")
        check("cpuinfo readable", rc == 0, out.replace("\n", "; "))
        rc, out = g.run("cd /tmp && pwd")
        check("prompt shows the directory", g.prompt == "root@testbox:/tmp# ", repr(g.prompt))
        rc, out = g.run("sleep 300 & sleep 0.2; jobs")
        check("job control: background job listed", "sleep 300" in out and "[1]" in out, out)
        rc, out = g.run("kill %1; sleep 0.2; jobs -l; true")
        g.p.sendline("sleep 100")
        time.sleep(1)
        g.p.sendcontrol("c")
        rc, out = g.run("echo after-ctrl-c")
        check("Ctrl-C interrupts the foreground job", out.endswith("after-ctrl-c"), out)
        g.p.sendline("exit")
        g.p.expect(r"root@testbox:[^#]*# ", timeout=30)
        rc, out = g.run("echo respawned")
        check("exiting the shell respawns a new one", out.endswith("respawned"), out)
        g.p.sendline("reboot")
        status = g.expect_exit()
        check("reboot resets the machine (qemu -no-reboot exits)", status == 0, f"exit status {status}")
    finally:
        g.kill()


# -------------------------------------------------- boot 3: root=/dev/vda
def boot3():
    g = Guest("switch-root", smp=1, append="console=ttyS0 root=/dev/vda", extra=[
        "-drive", f"file={WORK}/root.ext4,format=raw,if=none,id=d0",
        "-device", "virtio-blk-device,drive=d0"])
    try:
        g.p.expect("skiff-guest: init started")
        g.p.expect(r"skiff-guest: switching root to (\S+) \(")
        check("root=/dev/vda: switch_root announced", g.p.match.group(1) == "/dev/vda")
        g.p.expect(r"disk-init: running as pid (\d+)\r")
        check("disk's /sbin/init runs as PID 1", g.p.match.group(1) == "1", g.p.match.group(1))
        g.p.expect(r"disk-init: root ([^\r\n]*)\r")
        check("root file system is the ext4 disk", g.p.match.group(1) == "/dev/vda ext4",
              g.p.match.group(1))
        g.p.expect(r"disk-init: vda ([^\r\n]*)\r")
        check("/dev moved to the new root", g.p.match.group(1) == "/dev/vda", g.p.match.group(1))
        status = g.expect_exit()
        check("disk init's poweroff ends qemu", status == 0, f"exit status {status}")
    finally:
        g.kill()


# -------------------------------------------------- boot 4: a root device that never appears
def boot4():
    g = Guest("rescue", smp=1, append="console=ttyS0 root=/dev/vdz rootdelay=1")
    try:
        g.p.expect("skiff-guest: init started")
        g.p.expect("starting a rescue shell")
        g.p.expect("skiff-guest: ready")
        g.p.expect(r"root@skiff:/# ")
        check("missing root device falls back to a shell", True)
        g.p.sendline("poweroff")
        check("poweroff from the rescue shell", g.expect_exit() == 0)
    finally:
        g.kill()


for name, fn in (("boot 1", boot1), ("boot 2", boot2), ("boot 3", boot3), ("boot 4", boot4)):
    guarded(name, fn)

httpd.shutdown()
for tag, secs in boot_times:
    print(f"init started -> ready: {secs:5.2f} s  ({tag}, under qemu TCG)")
failed = [r for r in results if not r[1]]
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
PYEOF

"""Networking and host channels through the real guest: virtio-net on the
user-mode NAT (DHCP, DNS, the host's loopback through the gateway 10.0.2.2, TCP
and UDP port forwards into the guest), virtio-vsock with Firecracker's Unix
socket convention (several MiB byte-exact both ways, several connections at
once, resets and closes both ways), virtio-balloon (free page reporting
gives freed guest memory back to the host, inflating takes pages away from
the guest and out of the VM's RSS), and virtio-net on a TAP device inside a
network namespace the test makes.

One boot serves every check of the user network, vsock and balloon; the TAP
check boots once more inside its namespace. The guest side of vsock is
net_guest/vsock_tool.c, built static for riscv64 and handed to the guest on
an ext4 disk image together with the test data.

Throughput numbers (TCP over the user network, vsock) are printed (pytest
-s shows them); the tests check behaviour, not speed.
"""
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import (Guest, free_port, guest_to_host_nc, host_to_guest_nc, rss_kib,
                      vsock_recv_started, wait_for)

MiB = 1 << 20
GUEST_CID = 3
BALLOON_TARGET_MIB = 192
VM_MEM_MIB = 768


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def recv_line(s, limit=64):
    line = b""
    while not line.endswith(b"\n") and len(line) < limit:
        d = s.recv(1)
        if not d:
            break
        line += d
    return line


def recv_all(s):
    chunks = []
    while True:
        d = s.recv(1 << 20)
        if not d:
            return b"".join(chunks)
        chunks.append(d)


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def workdir():
    # Short: Unix socket paths are limited to 108 bytes.
    d = Path(tempfile.mkdtemp(prefix="skiffnet"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def payload(workdir):
    """Random test data: what the guest fetches, serves and sends."""
    rnd = os.urandom
    data = {"web": rnd(2 * MiB + 123), "blob": rnd(8 * MiB), "small": rnd(64 * 1024 + 7)}
    return data


@pytest.fixture(scope="module")
def tools_image(workdir, payload, guest_tools):
    """An ext4 image with vsock_tool and the test data."""
    src = workdir / "img"
    src.mkdir()
    shutil.copy(guest_tools / "vsock_tool", src / "vsock_tool")
    (src / "blob").write_bytes(payload["blob"])
    (src / "web").write_bytes(payload["web"])
    img = workdir / "tools.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(src), str(img), "48M"], check=True)
    return img


@pytest.fixture(scope="module")
def http_server(workdir, payload):
    """python3 -m http.server on the host's loopback, serving payload['web']."""
    root = workdir / "www"
    root.mkdir()
    (root / "file.bin").write_bytes(payload["web"])
    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                          "--directory", str(root)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 10, 0.1)
    if not ok:
        p.kill()
        pytest.fail("the host HTTP server did not start")
    yield port
    p.terminate()
    p.wait(10)


@pytest.fixture(scope="module")
def net(boot_guest, default_guest, workdir, tools_image, http_server):
    """The one boot: user network with forwards, vsock, balloon, tools disk,
    and the API socket (GET /balloon). With --api-sock, skiff run boots at
    once only when given a kernel, so the default guest is named."""
    ports = {"tcp": free_port(), "udp": free_port(socket.SOCK_DGRAM), "http": http_server}
    uds = workdir / "v.sock"
    api = workdir / "api.sock"
    g = boot_guest("net",
                   "--api-sock", str(api), "--kernel", str(default_guest.kernel),
                   "--initrd", str(default_guest.initrd),
                   "--append", "console=ttyS0 earlycon=sbi quiet",
                   "--mem", str(VM_MEM_MIB),
                   "--net", f"user,hostfwd=tcp:127.0.0.1:{ports['tcp']}-:80,"
                            f"hostfwd=udp:127.0.0.1:{ports['udp']}-:7777",
                   "--vsock", f"cid={GUEST_CID},uds={uds}",
                   "--balloon=deflate_on_oom,target=%d,stats=1" % BALLOON_TARGET_MIB,
                   "--disk", f"{tools_image},ro")
    g.ports = ports
    g.uds = str(uds)
    g.api = str(api)
    g.run("mkdir -p /mnt/t && mount -o ro /dev/vda /mnt/t")
    yield g
    g.close()


# ------------------------------------------------------------------ user network

class TestUserNetwork:
    def test_dhcp_lease_and_route(self, net):
        addr = net.run("ip -4 addr show dev eth0")
        assert "inet 10.0.2.15/24" in addr, f"eth0 has no DHCP lease from the user network:\n{addr}"
        route = net.run("ip route")
        assert "default via 10.0.2.2" in route, f"no default route via 10.0.2.2:\n{route}"
        link = net.run("ip link show dev eth0")
        assert "mtu 65520" in link, f"eth0 did not take the device's MTU (VIRTIO_NET_F_MTU):\n{link}"

    def test_dns_through_the_gateway(self, net):
        """The user network's DNS server (10.0.2.3) forwards to the host's
        resolver: a query is answered (NXDOMAIN is an answer too), where a
        missing forwarder would time out."""
        out = net.run("nslookup localhost 10.0.2.3 2>&1; echo status=$?", timeout=60, check=False)
        assert "10.0.2.3:53" in out, out
        assert "timed out" not in out and "no servers could be reached" not in out, \
            f"the DNS forwarder at 10.0.2.3 did not answer:\n{out}"
        assert "localhost" in out and ("NXDOMAIN" in out or "Address" in out.split("localhost", 1)[1]), out

    def test_guest_fetches_from_host_loopback(self, net, payload):
        port = net.ports["http"]
        t0 = time.monotonic()
        net.run(f"wget -q -O /tmp/file.bin http://10.0.2.2:{port}/file.bin", timeout=120)
        took = time.monotonic() - t0
        got = net.run("sha256sum /tmp/file.bin", timeout=120).split()[0]
        assert got == sha256(payload["web"]), "the file the guest fetched differs from the host's"
        print(f"\nhost->guest HTTP (wget {len(payload['web']) >> 10} KiB): {took:.2f} s, "
              f"{len(payload['web']) / took / 1e6:.2f} MB/s")

    def test_host_reaches_guest_httpd_through_forward(self, net, payload):
        net.run("mkdir -p /srv && cp /mnt/t/web /srv/web && httpd -p 80 -h /srv")
        url = f"http://127.0.0.1:{net.ports['tcp']}/web"
        t0 = time.monotonic()
        body = urllib.request.urlopen(url, timeout=60).read()
        took = time.monotonic() - t0
        assert sha256(body) == sha256(payload["web"]), \
            f"the guest httpd's file arrived different ({len(body)} bytes)"
        print(f"\nguest->host HTTP (httpd {len(body) >> 10} KiB): {took:.2f} s, "
              f"{len(body) / took / 1e6:.2f} MB/s")

    def test_udp_forward_both_ways(self, net):
        n = 3
        net.p.sendline(f"/mnt/t/vsock_tool udp-echo 7777 {n}; echo udp-status=$?")
        net._expect(["listening"], 30, "the guest's UDP echo")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(10)
        answers = []
        for i in range(n):
            msg = f"hello-over-udp-{i}".encode()
            s.sendto(msg, ("127.0.0.1", net.ports["udp"]))
            try:
                answers.append(s.recv(2048))
            except socket.timeout:
                answers.append(None)
        s.close()
        net._expect([r"udp-status=0"], 30, "the guest's UDP echo to finish")
        net.run("true")
        assert answers == [f"echo:hello-over-udp-{i}".encode() for i in range(n)], \
            f"UDP through the forward: {answers}"

    def test_tcp_throughput_with_nc(self, net):
        """Not a check: busybox nc piping /dev/zero, both directions."""
        mib = 16
        # guest -> host
        n, secs = guest_to_host_nc(net, mib)
        assert n == mib * MiB, f"guest->host nc moved {n} bytes"
        up = n / secs / 1e6
        # host -> guest (through the TCP forward to guest port 80: stop httpd
        # first); nothing is sent before the guest's nc listens
        net.run("killall httpd; true")
        took = host_to_guest_nc(net, net.ports["tcp"], mib * MiB)
        down = mib * MiB / took / 1e6
        print(f"\nTCP over the user network, busybox nc, {mib} MiB: guest->host {up:.2f} MB/s, "
              f"host->guest {down:.2f} MB/s")


# ------------------------------------------------------------------ vsock

class TestVsock:
    def listen(self, net, port):
        path = f"{net.uds}_{port}"
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.listen(8)
        return s

    def connect(self, net, port):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(60)
        s.connect(net.uds)
        s.sendall(f"CONNECT {port}\n".encode())
        return s, recv_line(s)

    def test_guest_to_host_several_mib(self, net, payload):
        srv = self.listen(net, 5001)
        res = {}

        def take():
            c, _ = srv.accept()
            t0 = time.monotonic()
            res["data"] = recv_all(c)
            res["t"] = time.monotonic() - t0
            c.close()
        th = threading.Thread(target=take)
        th.start()
        out = net.run("/mnt/t/vsock_tool send 2 5001 < /mnt/t/blob && echo sent", timeout=300)
        th.join(60)
        srv.close()
        assert "sent" in out, f"vsock_tool send failed: {out}"
        data = res.get("data", b"")
        assert len(data) == len(payload["blob"]) and data == payload["blob"], \
            f"guest->host: {len(data)} bytes arrived, not the {len(payload['blob'])} sent"
        print(f"\nvsock guest->host {len(data) >> 20} MiB: {len(data) / res['t'] / 1e6:.2f} MB/s")

    def test_host_to_guest_several_mib(self, net, payload):
        vsock_recv_started(net, "/mnt/t/vsock_tool", 5000, "/tmp/in.bin", "; echo recv-status=$?")
        s, line = self.connect(net, 5000)
        assert re.fullmatch(rb"OK \d+\n", line), f"CONNECT 5000 answered {line!r}"
        t0 = time.monotonic()
        s.sendall(payload["blob"])
        s.shutdown(socket.SHUT_WR)
        rest = s.recv(16)   # the guest closes after EOF
        took = time.monotonic() - t0
        s.close()
        assert rest == b"", f"unexpected bytes from the guest: {rest!r}"
        net._expect([r"recv-status=0"], 120, "vsock_tool recv to finish")
        net.run("true")
        same = net.run("cmp /tmp/in.bin /mnt/t/blob && echo same", timeout=120, check=False)
        assert same.endswith("same"), f"host->guest data differs: {same}"
        print(f"\nvsock host->guest {len(payload['blob']) >> 20} MiB: "
              f"{len(payload['blob']) / took / 1e6:.2f} MB/s")

    def test_several_connections_at_once(self, net):
        n = 4
        net.p.sendline(f"/mnt/t/vsock_tool echo 5002 {n}; echo echo-status=$?")
        net._expect(["listening"], 30, "the echo server")
        results = [None] * n

        def one(i):
            data = os.urandom(512 * 1024 + i)
            s, line = self.connect(net, 5002)
            if not line.startswith(b"OK "):
                results[i] = f"CONNECT answered {line!r}"
                return
            got = []

            def reader():
                got.append(recv_all(s))
            r = threading.Thread(target=reader)
            r.start()
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            r.join(120)
            s.close()
            results[i] = "ok" if got and got[0] == data else \
                f"echo of connection {i} differs ({len(got[0]) if got else None} bytes)"
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        net._expect([r"echo-status=0"], 60, "the echo server to finish")
        net.run("true")
        assert results == ["ok"] * n, f"concurrent connections: {results}"

    def test_host_connect_to_closed_guest_port_is_refused(self, net):
        s, line = self.connect(net, 5999)
        rest = s.recv(16) if line else b""
        s.close()
        assert line == b"" and rest == b"", \
            f"CONNECT to a port nobody listens on answered {line!r}, {rest!r}"

    def test_guest_connect_without_host_listener_is_reset(self, net):
        out = net.run("/mnt/t/vsock_tool send 2 5998 < /dev/null", check=False)
        assert net.last_status != 0 and "connect" in out and "reset" in out.lower(), \
            f"connecting to a host port without a listener: status {net.last_status}, {out!r}"

    def test_host_close_is_eof_in_guest(self, net):
        srv = self.listen(net, 5003)

        def close_soon():
            c, _ = srv.accept()
            c.sendall(b"bye")
            time.sleep(0.5)
            c.close()
        th = threading.Thread(target=close_soon)
        th.start()
        out = net.run("/mnt/t/vsock_tool wait-eof 2 5003", timeout=60)
        th.join(10)
        srv.close()
        assert out.strip() == "byeEOF", \
            f"the guest did not read the host's data and then the end of the stream: {out!r}"

    def test_guest_close_closes_host_socket(self, net):
        vsock_recv_started(net, "/mnt/t/vsock_tool", 5004, "/dev/null")
        s, line = self.connect(net, 5004)
        assert line.startswith(b"OK "), f"CONNECT 5004 answered {line!r}"
        s.sendall(b"x" * 1000)
        net.run("killall vsock_tool; sleep 1")
        s.settimeout(30)
        try:
            rest = s.recv(16)
        except ConnectionResetError:
            rest = b""
        s.close()
        assert rest == b"", f"the host socket is still open after the guest side died ({rest!r})"


# ------------------------------------------------------------------ balloon

class TestBalloon:
    def balloon(self, net):
        """GET /balloon: the guest's driver's size (actual_mib) and what the
        device has given back to the host so far."""
        out = subprocess.run(["curl", "-sS", "--fail", "--unix-socket", net.api,
                              "http://localhost/balloon"], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, f"GET /balloon failed: {out.stderr}"
        return json.loads(out.stdout)

    def given_back(self, b):
        return b["inflated_bytes_total"] + b["free_page_reported_bytes_total"]

    def meminfo(self, net):
        info = {}
        for line in net.run("cat /proc/meminfo").splitlines():
            k, v = line.split(":", 1)
            info[k] = int(v.split()[0])
        return info

    def test_features_and_boot_target(self, net):
        feats = net.run("for d in /sys/bus/virtio/devices/*; do "
                        "[ $(cat $d/device) = 0x0005 ] && cat $d/features; done; true")
        assert feats, "no virtio-balloon device in the guest"
        bits = feats.strip()
        for bit, what in ((1, "STATS_VQ"), (2, "DEFLATE_ON_OOM"), (5, "FREE_PAGE_REPORTING")):
            assert bits[bit] == "1", f"balloon feature {what} not negotiated: {bits}"
        # The boot-time target was inflated: that much of the guest's
        # memory is no longer available to it (with DEFLATE_ON_OOM Linux
        # keeps MemTotal and counts the balloon as used).
        def held():
            m = self.meminfo(net)
            used = (m["MemTotal"] - m["MemAvailable"]) >> 10
            return used if used >= BALLOON_TARGET_MIB else None
        used = wait_for(held, 30, 1)
        assert used, (f"the guest does not seem to hold the {BALLOON_TARGET_MIB} MiB balloon "
                      f"(MemTotal - MemAvailable = "
                      f"{(self.meminfo(net)['MemTotal'] - self.meminfo(net)['MemAvailable']) >> 10} MiB)")

    def test_free_page_reporting_returns_freed_memory(self, net):
        pid = net.p.pid
        net.run("mkdir -p /mnt/big && mount -t tmpfs -o size=400m tmpfs /mnt/big")
        before = rss_kib(pid)
        net.run("dd if=/dev/zero of=/mnt/big/x bs=1M count=200 2>/dev/null", timeout=120)
        filled = rss_kib(pid)
        assert filled - before > 150 * 1024, \
            f"RSS grew only {(filled - before) >> 10} MiB after the guest wrote 200 MiB"
        start = self.balloon(net)["free_page_reported_bytes_total"]
        net.run("rm /mnt/big/x")
        # The driver reports free blocks of 2 MiB and more in batches, a
        # few seconds apart (how much of the 200 MiB comes back whole
        # depends on the guest's fragmentation); the device counts what
        # it discarded (GET /balloon). Every reported byte was resident
        # (the guest had just written it), so RSS falls by what was
        # reported.
        def reported_now():
            return self.balloon(net)["free_page_reported_bytes_total"] - start
        reported = wait_for(lambda: (lambda n: n if n >= 100 * MiB else None)(reported_now()), 120, 1)
        reported = reported_now()
        after = rss_kib(pid)
        print(f"\nfree page reporting: RSS {before >> 10} -> {filled >> 10} (200 MiB written) -> "
              f"{after >> 10} MiB (freed); {reported >> 20} MiB reported")
        assert reported >= 100 * MiB, f"the guest reported only {reported >> 20} MiB free after freeing 200 MiB"
        assert (filled - after) * 1024 > reported - 16 * MiB, \
            (f"RSS fell only {(filled - after) >> 10} MiB after the device discarded {reported >> 20} MiB "
             f"the guest reported free ({before >> 10} -> {filled >> 10} -> {after >> 10} MiB)")

    def test_inflating_lowers_rss(self, net):
        """Unload the balloon driver (it deflates everything and no longer
        reports free pages), make the guest touch nearly all its memory and
        free BALLOON_TARGET_MIB of it again, then load the driver: it
        inflates to the target, taking those now-resident free pages, and
        the device discards them. The device counts every page it gives
        back (GET /balloon), so "nothing was given back while the driver
        was away" and "the driver has inflated" are read, not waited for."""
        pid = net.p.pid
        mod = net.run("grep virtio_balloon /etc/skiff/modules").strip()
        net.run("rmmod virtio_balloon")
        gone = self.balloon(net)
        assert gone["actual_mib"] == 0, f"the balloon still holds memory without its driver: {gone}"
        total = self.meminfo(net)["MemTotal"] >> 10
        net.run(f"dd if=/dev/zero of=/mnt/big/x1 bs=1M count={BALLOON_TARGET_MIB} 2>/dev/null",
                timeout=120)
        avail = self.meminfo(net)["MemAvailable"] >> 10
        fill = max(avail - 40, 0)
        net.run(f"mount -o remount,size={fill + BALLOON_TARGET_MIB + 64}m /mnt/big; "
                f"dd if=/dev/zero of=/mnt/big/x2 bs=1M count={fill} 2>/dev/null", timeout=180)
        net.run("rm /mnt/big/x1")
        high = rss_kib(pid)
        idle = self.balloon(net)
        assert self.given_back(idle) == self.given_back(gone), \
            f"the device gave back guest RAM with no driver loaded: {gone} -> {idle}"
        net.run(f"insmod {mod}")
        want = BALLOON_TARGET_MIB * 1024
        # The driver writes `actual` after the device has taken each batch
        # of pages (virtio 1.2 5.5.6.1), so once it reports the target the
        # pages are gone from the host.
        full = wait_for(lambda: (lambda b: b if b["actual_mib"] >= BALLOON_TARGET_MIB else None)(
            self.balloon(net)), 120, 0.5)
        after = self.balloon(net)
        low = rss_kib(pid)
        inflated = after["inflated_bytes_total"] - idle["inflated_bytes_total"]
        print(f"\nballoon inflate by {BALLOON_TARGET_MIB} MiB: RSS {high >> 10} -> {low >> 10} MiB "
              f"(guest MemTotal {total} MiB; {fill} MiB still in use); GET /balloon {after}")
        assert full, f"the driver did not inflate to {BALLOON_TARGET_MIB} MiB: {after}"
        assert inflated >= BALLOON_TARGET_MIB << 20, \
            f"the device discarded {inflated >> 20} MiB by inflation for a {BALLOON_TARGET_MIB} MiB balloon"
        assert high - low > want * 3 // 4, \
            f"RSS fell {(high - low) >> 10} MiB when the balloon inflated by {BALLOON_TARGET_MIB} MiB"
        net.run("rm -f /mnt/big/x2")

    def test_poweroff(self, net):
        assert net.poweroff() == 0


# ------------------------------------------------------------------ TAP

@pytest.fixture(scope="module")
def netns(workdir):
    if os.geteuid() != 0:
        pytest.skip("the TAP test needs root (it makes a network namespace and a TAP device)")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("/dev/net/tun does not exist: the host has no TUN/TAP support")
    if not shutil.which("ip"):
        pytest.skip("the ip command (iproute2) is not installed")
    ns = f"skiffnet{os.getpid()}"
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, text=True)
    try:
        run("ip", "netns", "add", ns)
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot create a network namespace: {e.stderr.strip()}")
    try:
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        run("ip", "netns", "exec", ns, "ip", "tuntap", "add", "dev", "sktap0", "mode", "tap")
        run("ip", "netns", "exec", ns, "ip", "addr", "add", "192.168.77.1/24", "dev", "sktap0")
        run("ip", "netns", "exec", ns, "ip", "link", "set", "sktap0", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


class TestTap:
    def test_tap_in_namespace(self, skiff_bin, default_guest, console_log_dir, netns, workdir,
                              payload):
        wrapper = workdir / "skiff-in-ns"
        wrapper.write_text(f"#!/bin/sh\nexec ip netns exec {netns} {skiff_bin} \"$@\"\n")
        wrapper.chmod(0o755)
        www = workdir / "tapwww"
        www.mkdir()
        (www / "file.bin").write_bytes(payload["web"])
        server = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-m", "http.server",
                                   "8000", "--bind", "192.168.77.1", "--directory", str(www)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # A second NIC (user-mode NAT, MAC not given) checks several NICs
        # per VM and the generated MAC.
        g = Guest(str(wrapper), ["--net", "tap,ifname=sktap0,mac=02:00:00:77:00:02",
                                 "--net", "user"],
                  console_log_dir / "tap.log", name="tap")
        try:
            g.wait_ready()
            g.run("ip addr add 192.168.77.2/24 dev eth0 && ip link set eth0 up")
            mac = g.run("cat /sys/class/net/eth0/address")
            assert mac == "02:00:00:77:00:02", f"eth0 has MAC {mac}, not the configured one"
            mac1 = g.run("cat /sys/class/net/eth1/address")
            assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac1) and mac1 != mac, mac1
            assert int(mac1[:2], 16) & 3 == 2, f"generated MAC {mac1} is not a local unicast one"
            g.run("ip link set eth1 up && udhcpc -i eth1 -n -q -t 5 -T 1 "
                  "-s /usr/share/udhcpc/default.script >/dev/null 2>&1", timeout=60)
            addr1 = g.run("ip -4 addr show dev eth1")
            assert "inet 10.0.2.15/24" in addr1, f"the second NIC got no lease:\n{addr1}"
            out = g.run("ping -c 3 -W 5 192.168.77.1", timeout=60, check=False)
            assert " 0% packet loss" in out, f"guest cannot ping the host side of the TAP:\n{out}"
            ping = [shutil.which("ping")] if shutil.which("ping") else [shutil.which("busybox"), "ping"]
            host_ping = subprocess.run(["ip", "netns", "exec", netns] + ping +
                                       ["-c", "3", "-W", "5", "192.168.77.2"],
                                       capture_output=True, text=True)
            assert host_ping.returncode == 0, f"host side cannot ping the guest:\n{host_ping.stdout}{host_ping.stderr}"
            g.run("wget -q -O /tmp/f.bin http://192.168.77.1:8000/file.bin", timeout=120)
            got = g.run("sha256sum /tmp/f.bin", timeout=120).split()[0]
            assert got == sha256(payload["web"]), "file fetched over the TAP differs"
            g.run("mkdir -p /srv && cp /tmp/f.bin /srv/f.bin && httpd -p 80 -h /srv")
            fetch = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c",
                                    "import sys,urllib.request; sys.stdout.buffer.write("
                                    "urllib.request.urlopen('http://192.168.77.2/f.bin',"
                                    " timeout=60).read())"], capture_output=True)
            assert fetch.returncode == 0 and sha256(fetch.stdout) == sha256(payload["web"]), \
                f"host side fetching from the guest over the TAP failed: {fetch.stderr[-500:]!r}"
            assert g.poweroff() == 0
        finally:
            g.close()
            server.terminate()
            server.wait(10)

    def test_missing_tap_is_a_clear_error(self, skiff_bin, default_guest):
        """Without permission to create the interface (a non-root user) or
        with a TUN device of the wrong kind, skiff names the interface and
        the errno; here: a name that is a TUN (not TAP) device."""
        ns = f"skiffnet{os.getpid()}b"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            subprocess.run(["ip", "netns", "exec", ns, "ip", "tuntap", "add", "dev", "sktun0",
                            "mode", "tun"], check=True)
            r = subprocess.run(["ip", "netns", "exec", ns, skiff_bin, "run", "--net",
                                "tap,ifname=sktun0"], capture_output=True, text=True, timeout=60)
            assert r.returncode != 0, "skiff started with a TUN device as its TAP"
            assert "sktun0" in r.stderr and "errno" in r.stderr, \
                f"the error does not name the interface and errno: {r.stderr!r}"
        finally:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

#!/bin/sh
# Seed corpus for the net target: frames as tests/fuzz/fuzz_net.c reads
# them (a scratch-size byte, the 12-byte virtio-net header, the Ethernet
# frame): a TCPv4 and a TCPv6 GSO frame a Linux guest sends with TSO, one
# behind a VLAN tag, a NEEDS_CSUM UDP and TCP frame, a plain frame, a GSO
# frame with a small scratch buffer, and GSO frames whose 65535-byte MSS
# would wrap a segment's IP length, and a plain frame longer than
# NET_MAX_FRAME (regressions). Usage: seed_net.sh OUTDIR
set -eu
out=$1
mkdir -p "$out"
/usr/bin/python3 - "$out" <<'PY'
import os, struct, sys
out = sys.argv[1]
def hdr(flags, gso, gso_size, start, off, hlen=0):
    return struct.pack('<BBHHHHH', flags, gso, hlen, gso_size, start, off, 0)
eth = lambda t, vlan=False: b'\x52\x54\x00\x12\x34\x56' * 2 + (b'\x81\x00\x00\x05' if vlan else b'') + struct.pack('>H', t)
def ipv4(plen, proto=6):
    return struct.pack('>BBHHHBBH4s4s', 0x45, 0, 20 + plen, 0x1234, 0x4000, 64, proto, 0,
                       bytes([10, 0, 2, 15]), bytes([10, 0, 2, 2]))
def ipv6(plen, proto=6):
    return struct.pack('>IHBB16s16s', 0x60000000, plen, proto, 64, b'\xfe\x80' + b'\0' * 13 + b'\1',
                       b'\xfe\x80' + b'\0' * 13 + b'\2')
def tcp(flags=0x18, opts=b''):
    return struct.pack('>HHIIBBHHH', 40000, 80, 1000, 0, (5 + len(opts) // 4) << 4, flags, 65535, 0, 0) + opts
udp = lambda plen: struct.pack('>HHHH', 5000, 53, 8 + plen, 0)
data = bytes(range(256)) * 12
seeds = {
    'tso4': b'\0' + hdr(1, 1, 1448, 34, 16, 66) + eth(0x800) + ipv4(20 + len(data)) + tcp() + data,
    'tso6': b'\0' + hdr(1, 4, 1428, 54, 16, 86) + eth(0x86dd) + ipv6(20 + len(data)) + tcp(0x19) + data,
    'tso4-vlan-opts': b'\0' + hdr(1, 0x81, 500, 38, 16) + eth(0x800, True) + ipv4(32 + 1500) + tcp(0x98, b'\x01\x01\x08\x0a' + b'\0' * 8) + data[:1500],
    'csum-udp': b'\0' + hdr(1, 0, 0, 34, 6) + eth(0x800) + ipv4(8 + 100, 17) + udp(100) + data[:100],
    'csum-tcp': b'\0' + hdr(1, 0, 0, 34, 16) + eth(0x800) + ipv4(20 + 10) + tcp() + data[:10],
    'plain': b'\0' + hdr(0, 0, 0, 0, 0) + eth(0x806) + b'\0\1\x08\0\6\4\0\1' + b'\0' * 20,
    'tso4-small-scratch': b'\x90' + hdr(1, 1, 1000, 34, 16) + eth(0x800) + ipv4(20 + len(data)) + tcp() + data,
    'udp-gso': b'\0' + hdr(1, 3, 1000, 34, 6) + eth(0x800) + ipv4(8 + 100, 17) + udp(100) + data[:100],
}
# Regression: an MSS so large that a segment's IP length field would wrap.
big = bytes(65535)
seeds['tso4-max-mss'] = b'\0' + hdr(1, 1, 65535, 34, 16) + eth(0x800) + ipv4(0) + tcp() + big
seeds['tso6-max-mss'] = b'\0' + hdr(1, 4, 65535, 54, 16) + eth(0x86dd) + ipv6(0) + tcp() + big
# Regression: a plain frame past NET_MAX_FRAME (65806 bytes) was passed on.
seeds['plain-oversize'] = b'\0' + hdr(0, 0, 0, 0, 0) + eth(0x800) + bytes(65900)
for name, b in seeds.items():
    open(os.path.join(out, name), 'wb').write(b)
PY
echo "seed_net: $(ls "$out" | wc -l) inputs in $out"

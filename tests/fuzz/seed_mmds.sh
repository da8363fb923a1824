#!/bin/sh
# Seed corpus for the mmds fuzz target: a guest's ARP request, then a TCP
# handshake and an HTTP request (a V2 token, a GET) to 169.254.169.254, as
# framed by tests/fuzz/fuzz_mmds.c. Usage: seed_mmds.sh OUTDIR
set -eu
mkdir -p "$1"
/usr/bin/python3 - "$1" <<'PY'
import struct, sys, os
out = sys.argv[1]
gm, sm = bytes([2, 0, 0, 0, 0, 1]), bytes([2, 0, 0, 0, 0, 2])
gip, mip = bytes([10, 0, 2, 15]), bytes([169, 254, 169, 254])
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def tcp(seq, ack, flags, data=b""):
    t = struct.pack("!HHIIBBHHH", 50000, 80, seq, ack, 5 << 4, flags, 65535, 0, 0) + data
    ps = gip + mip + struct.pack("!BBH", 0, 6, len(t))
    t = t[:16] + struct.pack("!H", csum(ps + t)) + t[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(t), 1, 0x4000, 64, 6, 0, gip, mip)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return sm + gm + b"\x08\x00" + ip + t
def arp():
    return b"\xff" * 6 + gm + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + gm + gip + b"\0" * 6 + mip
def seed(name, mode, frames):
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([mode]))
        for fr in frames:
            f.write(struct.pack("!H", len(fr)) + fr)
get = b"GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n"
tok = b"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n"
seed("arp", 0, [arp()])
seed("v1-get", 0, [tcp(1000, 0, 2), tcp(1001, 1, 0x10), tcp(1001, 1, 0x18, get), tcp(1001 + len(get), 2, 0x11)])
seed("v2-token", 1, [tcp(7, 0, 2), tcp(8, 1, 0x18, tok), tcp(8 + len(tok), 1, 0x11)])
seed("json", 2, [tcp(1, 0, 2), tcp(2, 1, 0x18, get.replace(b"\r\n\r\n", b"\r\nAccept: application/json\r\n\r\n"))])
PY

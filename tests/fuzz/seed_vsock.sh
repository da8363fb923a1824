#!/bin/sh
# Seed corpus for the vsock target: step lists as tests/fuzz/fuzz_vsock.c
# reads them. A guest connection to a listening host port (REQUEST, data,
# credit request, shutdown, RST), a host client's CONNECT answered by the
# guest, data beyond the granted credit (claimed, and sent: 8 x 64 KiB to
# a peer that does not read), a packet longer than its buffer, stray
# packets; host data to the guest through receive buffers of every shape
# (Linux's 4 KiB ones, split, small, a readable part first, one too short
# for a header), within a small credit the guest updates, a host that
# half-closes or stops reading. Usage: seed_vsock.sh OUTDIR
set -eu
out=$1
mkdir -p "$out"
/usr/bin/python3 - "$out" <<'PY'
import os, struct, sys
out = sys.argv[1]
REQ, RESP, RST, SHUT, RW, CUPD, CREQ = 1, 2, 3, 4, 5, 6, 7
def pkt(op, src=0, dport=0x00, flags=0, payload=b'', fwd=0, segs=0, src_port=None,
        length=None, buf_alloc=None, wrong=None, short=False, filler=0, known=None):
    shape = segs & 3 | (0x04 if filler else 0)
    extra = b''
    if wrong:
        shape |= 0x80
        extra += bytes(wrong)
    if src_port is not None:
        shape |= 0x40
        extra += struct.pack('<I', src_port)
    elif known is None:
        extra += bytes([src])
    if known is not None:
        extra += bytes([known])   # the connection the guest heard of
    else:
        extra += bytes([dport])
        if dport >= 0xf0:
            extra += struct.pack('<I', 7777)
    extra += bytes([flags])
    if buf_alloc is not None:
        shape |= 0x20
        extra += struct.pack('<I', buf_alloc)
    extra += struct.pack('<I', fwd)
    extra += struct.pack('<H', filler - 1) if filler else bytes([len(payload)])
    if length is not None:
        shape |= 0x10
        extra += struct.pack('<I', length)
    if short:
        shape |= 0x08
    cuts = bytes([10, 30, 3][:segs & 3])
    return bytes([op << 4 | (8 if known is not None else 0)]) + bytes([shape]) + extra + payload + cuts
client = lambda port: bytes([4, port & 31])
garbage = lambda b: bytes([4, 0xff, len(b)]) + b
peers = lambda what, n=1: bytes([5, what]) + (bytes([n]) if not what & 0x20 else b'')
SWEEP, RX = bytes([6]), bytes([7])
# Receive buffers (a 0x0f step, count in bits 4-6): a shape byte each
# (bytes: a shape that takes one more byte).
def bufs(*shapes):
    out = b''
    for i in range(0, len(shapes), 8):
        g = shapes[i:i + 8]
        out += bytes([0x0f | (len(g) - 1) << 4])
        out += b''.join(bytes([x]) if isinstance(x, int) else x for x in g)
    return out
LINUX = 0xb0                    # 44 + 4096 bytes
DELIVER = bufs(LINUX, LINUX, LINUX, LINUX) + RX
data = b'hello from the guest\n' * 8
seeds = {
    'guest-connect': pkt(REQ) + DELIVER + peers(0) + pkt(RW, payload=data[:150], segs=2)
        + SWEEP + peers(1) + pkt(CREQ) + DELIVER + pkt(SHUT, flags=3) + SWEEP + DELIVER + pkt(RST),
    'host-connect': client(0) + SWEEP + DELIVER + pkt(RESP, src_port=1000, dport=0xc0)
        + pkt(RW, src_port=1000, dport=0xc0, payload=b'ok') + SWEEP + peers(4) + SWEEP + DELIVER,
    'over-credit': pkt(REQ, src=1) + DELIVER + pkt(RW, src=1, payload=b'x' * 200, length=300 * 1024),
    'short-buffer': pkt(REQ, src=2, dport=0x90) + pkt(RW, src=2, dport=0x90, payload=b'abc', short=True, segs=3),
    'stray': pkt(RW, src=3, dport=0xf5) + pkt(RST) + pkt(CUPD, wrong=[3, 2, 2]) + DELIVER,
    'bad-lines': garbage(b'CONNECT 99999999999\n') + garbage(b'CONNECT \n') + garbage(b'GET / HTTP/1.0\r\n')
        + garbage(b'CONNECT 5') + SWEEP + DELIVER + SWEEP,
    'peer-gone': pkt(REQ) + DELIVER + peers(2) + pkt(RW, payload=data[:100]) + SWEEP + SWEEP + DELIVER,
    # 8 x 64 KiB to a peer that does not read: beyond the 256 KiB credit.
    'flood': pkt(REQ) + DELIVER + b''.join(pkt(RW, filler=65536) for _ in range(8)) + SWEEP + DELIVER,
    'requests': b''.join(pkt(REQ, src=i % 4, dport=0x10 * i) for i in range(12)) + DELIVER,
    # Host data to the guest on a host client's connection, 4 KiB of
    # credit at a time, then the host's end of stream.
    'host-data': client(0) + SWEEP + DELIVER + pkt(RESP, known=0, buf_alloc=1000) + SWEEP
        + peers(0x21) + SWEEP + DELIVER + pkt(CUPD, known=0, buf_alloc=1000, fwd=1000) + SWEEP
        + DELIVER + peers(8, 0) + SWEEP + DELIVER + DELIVER,
    # Receive buffers of every shape: exactly a header, small, split,
    # a readable part first, a whole packet.
    'rx-shapes': pkt(REQ) + bufs(LINUX) + RX + peers(0x21) + SWEEP + bufs(0x10, b'\xd5\x20', 0xf0, 0x80)
        + RX + SWEEP + DELIVER + SWEEP + bufs(0x01, b'\xe0\x01', 0x00) + RX,
    # A guest that guessed the ports answers before the device's REQUEST
    # reached it (the device takes the RESPONSE): legal for the oracle.
    'early-response': client(0) + SWEEP + pkt(RESP, src_port=1000, dport=0xc0, buf_alloc=1 << 20)
        + peers(1, 100) + SWEEP + DELIVER + SWEEP + DELIVER,
    # More live connections than the first oracle's table of 64 held.
    'many-connections': b''.join(pkt(REQ, src_port=50000 + i) + bufs(LINUX) + RX for i in range(70)),
    # A receive buffer with room for a header only, in front of data.
    'header-only-buffer': pkt(REQ) + bufs(LINUX) + RX + peers(1, 8) + SWEEP + bufs(0x00, LINUX) + RX + SWEEP + RX,
    'rx-too-short': pkt(REQ) + bufs(0xc5, LINUX) + RX + peers(1) + SWEEP + RX,
    'half-close': pkt(REQ) + DELIVER + peers(0x09, 10) + SWEEP + DELIVER + DELIVER + pkt(RW, payload=b'more')
        + SWEEP + peers(0) + pkt(SHUT, flags=3) + SWEEP + DELIVER,
    'host-stops-reading': pkt(REQ) + DELIVER + peers(0x50) + b''.join(pkt(RW, filler=65536) for _ in range(4))
        + SWEEP + DELIVER + peers(0x20) + SWEEP + DELIVER,
}
for name, b in seeds.items():
    open(os.path.join(out, name), 'wb').write(b)
PY
echo "seed_vsock: $(ls "$out" | wc -l) inputs in $out"

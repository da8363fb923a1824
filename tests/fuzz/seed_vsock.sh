#!/bin/sh
# Seed corpus for the vsock target: step lists as tests/fuzz/fuzz_vsock.c
# reads them. A guest connection to a listening host port (REQUEST, data,
# credit request, shutdown, RST), a host client's CONNECT answered by the
# guest, data beyond the granted credit (claimed, and sent: 8 x 64 KiB to
# a peer that does not read), a packet longer than its buffer,
# and stray packets. Usage: seed_vsock.sh OUTDIR
set -eu
out=$1
mkdir -p "$out"
/usr/bin/python3 - "$out" <<'PY'
import os, struct, sys
out = sys.argv[1]
REQ, RESP, RST, SHUT, RW, CUPD, CREQ = 1, 2, 3, 4, 5, 6, 7
def pkt(op, src=0, dport=0x00, flags=0, payload=b'', fwd=0, segs=0, src_port=None,
        length=None, buf_alloc=None, wrong=None, short=False, filler=0):
    shape = segs & 3 | (0x04 if filler else 0)
    extra = b''
    if wrong:
        shape |= 0x80
        extra += bytes(wrong)
    if src_port is not None:
        shape |= 0x40
        extra += struct.pack('<I', src_port)
    else:
        extra += bytes([src])
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
    return bytes([op << 4]) + bytes([shape]) + extra + payload + cuts
client = lambda port: bytes([4, port & 31])
garbage = lambda b: bytes([4, 0xff, len(b)]) + b
peers = lambda what: bytes([5, what])
SWEEP, DELIVER = bytes([6]), bytes([7])
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
}
for name, b in seeds.items():
    open(os.path.join(out, name), 'wb').write(b)
PY
echo "seed_vsock: $(ls "$out" | wc -l) inputs in $out"

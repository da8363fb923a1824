#!/bin/sh
# Seed corpus for the mmio target: step lists as tests/fuzz/fuzz_mmio.c
# reads them, for virtio-rng (first byte even) and virtio-console (odd): a
# driver's bring-up and requests, the same done register by register,
# feature words refused, queues made ready with bad sizes and addresses,
# sub-word and config-space accesses, notifications of queues that do not
# exist, rings overwritten after use. Usage: seed_mmio.sh OUTDIR
set -eu
out=$1
mkdir -p "$out"
/usr/bin/python3 - "$out" <<'PY'
import os, struct, sys
out = sys.argv[1]
def w(off, v, size_log=2):
    step = 0 | size_log << 3 | (0x20 if off > 0xff or off % 4 else 0)
    o = struct.pack('<H', off) if step & 0x20 else bytes([off // 4])
    return bytes([step]) + o + v.to_bytes(1 << size_log, 'little')
def r(off, size_log=2):
    step = 1 | size_log << 3 | (0x20 if off > 0xff or off % 4 else 0)
    return bytes([step]) + (struct.pack('<H', off) if step & 0x20 else bytes([off // 4]))
up = lambda feat: bytes([2]) + struct.pack('<Q', feat)
req = lambda q, out_b, in_half: bytes([3, q, len(out_b)]) + out_b + bytes([in_half])
scribble = lambda off, b: bytes([4]) + off.to_bytes(3, 'little') + bytes([len(b) - 1]) + b
notify = lambda q: bytes([5, q])
ack, ident = bytes([6]), bytes([7])
manual = (w(0x70, 0) + w(0x70, 1) + w(0x70, 3) + w(0x14, 1) + r(0x10) + w(0x24, 1) + w(0x20, 1)
          + w(0x70, 11) + r(0x70) + w(0x30, 0) + r(0x34) + w(0x38, 8) + w(0x80, 0x80000000)
          + w(0x84, 0) + w(0x90, 0x80001000) + w(0x94, 0) + w(0xa0, 0x80002000) + w(0xa4, 0)
          + w(0x44, 1) + r(0x44) + w(0x70, 15) + notify(0) + ack)
for dev in (0, 1):
    seeds = {
        'driver': up(1 << 32 | 0xff) + req(0, b'', 32) + req(1, b'hello', 8) + ack + ident,
        'manual': manual + ident,
        'bad-queue': w(0x70, 3) + w(0x30, 0) + w(0x38, 3) + w(0x44, 1) + w(0x38, 1 << 16) + w(0x44, 1)
            + w(0x30, 99) + r(0x34) + w(0x44, 1) + r(0x44) + w(0x80, 0xfff) + w(0x44, 1) + notify(9),
        'subword': r(0x100, 0) + r(0x101, 1) + r(0x104, 3) + w(0x108, 7, 0) + r(0x2, 1) + w(0x71, 1, 0)
            + r(0x1fc, 2) + r(0xfc) + r(0xb0) + w(0xac, 5) + r(0xb8),
        'scribble': up(~0 & (1 << 64) - 1) + req(0, b'', 64) + scribble(0x1002, b'\xff\xff')
            + scribble(0x0, b'\0' * 8 + b'\xff' * 8) + notify(0) + req(0, b'', 16)
            + scribble(0x2004, b'\x40\0\0\0') + up(0),
        'reset-live': up(1 << 32) + req(0, b'', 100) + w(0x70, 0) + req(0, b'', 10) + up(1 << 32) + notify(0),
    }
    for name, b in seeds.items():
        open(os.path.join(out, f'{name}-{"console" if dev else "rng"}'), 'wb').write(bytes([dev]) + b)
PY
echo "seed_mmio: $(ls "$out" | wc -l) inputs in $out"

#!/bin/sh
# Seed corpus for the console target: step lists as
# tests/fuzz/fuzz_console.c reads them. A Linux driver's start (DEVICE_READY,
# PORT_READY for each port, PORT_OPEN), data both ways on the console and a
# named port, a port closed with input waiting, a driver without MULTIPORT,
# a reset in the middle, short and unknown control messages. Usage:
# seed_console.sh OUTDIR
set -eu
out=$1
mkdir -p "$out"
/usr/bin/python3 - "$out" <<'PY'
import os, sys
out = sys.argv[1]
ctrl = lambda i, ev, val: bytes([0, i, ev, val])
ctrl_short = lambda i, ev, val, n: bytes([0x40, i, ev, val, n])
ctrl_rx = bytes([1])
ctrl_rx_small = lambda n: bytes([0x81, n])
host = lambda p, b: bytes([2 | p << 3, len(b)]) + b
port_rx = lambda p, n: bytes([3 | p << 3, n])
guest = lambda p, b: bytes([4 | p << 3, len(b) - 1]) + b
up = lambda mp: bytes([5 | (0x80 if mp else 0)])
raw = lambda off, v: bytes([6, off // 4]) + v.to_bytes(4, 'little')
cfg = lambda size_log, off: bytes([7 | size_log << 6, off])
start = up(True) + ctrl_rx * 4 + ctrl(0, 0, 1) + ctrl_rx * 3 + ctrl(0, 3, 1) + ctrl(1, 3, 1) \
    + ctrl(2, 3, 1) + ctrl_rx * 8 + ctrl(0, 6, 1) + ctrl(1, 6, 1)
seeds = {
    'linux-start': start + cfg(2, 4) + cfg(1, 0),
    'data': start + host(0, b'ls -l\r') + port_rx(0, 63) + guest(0, b'total 0\r\n')
        + host(1, b'{"execute": "guest-ping"}\n') + port_rx(1, 10) + port_rx(1, 63)
        + guest(1, b'{"return": {}}\n'),
    'closed-port': start + ctrl(1, 6, 0) + host(1, b'waiting') + port_rx(1, 40) + ctrl(1, 6, 1) + port_rx(1, 40),
    'no-multiport': up(False) + host(0, b'hello') + port_rx(0, 3) + port_rx(0, 3) + guest(0, b'hi')
        + ctrl(0, 0, 1) + ctrl_rx + guest(1, b'lost'),
    'reset': start + host(2, b'abcdef') + raw(0x70, 0) + port_rx(2, 8) + up(True) + ctrl(0, 0, 1)
        + ctrl_rx * 4 + ctrl(2, 3, 1) + ctrl(2, 6, 1) + ctrl_rx * 4 + port_rx(2, 8),
    'odd-control': up(True) + ctrl_short(0, 0, 1, 4) + ctrl_short(1, 3, 1, 16) + ctrl(9, 6, 1)
        + ctrl(1, 5, 1) + ctrl(0, 0, 1) + ctrl(0, 0, 1) + ctrl(0, 0, 1) + ctrl(0, 0, 1)
        + ctrl_rx_small(8) + ctrl_rx_small(3) + ctrl_rx * 20,
    # no console: the last byte's top bit (a config read of offset 0x80).
    'no-console': start + host(1, b'agent') + port_rx(1, 10) + ctrl(0, 6, 1) + host(0, b'x')
        + port_rx(0, 4) + cfg(0, 0x80),
    # A long run's find (minimised): QueueReady written again on a live
    # queue, after which the device sent output the harness never wrote:
    # legal once the input owns the rings, no longer judged then.
    'ready-again': bytes.fromhex('d1d1d1d1d1d1d1d1d4d1d1d1d1d1d1d1d1b8b8b8b8b8b8b8b8b8d1d1d1d1d1d1d1d1d1d1d17491d12ed12e2e2a2eff2e2ed1d1d1d1d1d1d1d1b8b8025168656f7374'),
    'big-input': start + host(1, bytes(range(255))) * 4 + port_rx(1, 63) * 20,
}
for name, b in seeds.items():
    open(os.path.join(out, name), 'wb').write(b)
PY
echo "seed_console: $(ls "$out" | wc -l) inputs in $out"

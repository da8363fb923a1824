#!/bin/sh
# Seed corpus for the escape target: step lists as tests/fuzz/fuzz_escape.c
# reads them (first byte: bit 0 = standard input is a terminal). Typing
# with every escape (C-a h, C-a ?, C-a C-a, C-a and another key, C-a x),
# an escape split across two reads, a guest that takes a byte at a time or
# nothing, the end of input with bytes still held, a signal while bytes
# are held, and the same keys with standard input not a terminal.
# Usage: seed_escape.sh OUTDIR
set -eu
out=$1
mkdir -p "$out"
/usr/bin/python3 - "$out" <<'PY'
import os, sys
out = sys.argv[1]
TYPE, GUEST, POLL, EOF_, SIG = 0, 1, 2, 3, 4
typ = lambda b: bytes([TYPE, len(b)]) + b
guest = lambda n: bytes([GUEST, n])
guest_all = bytes([GUEST | 0x80])
poll = bytes([POLL])
seeds = {
    'keys': b'\x01' + typ(b'ls\r\x01h\x01?echo \x01\x01\x01q done\r') + poll * 2 + typ(b'\x01x') + poll,
    'split-escape': b'\x01' + typ(b'abc\x01') + poll + typ(b'x') + poll,
    'split-ctrl-a': b'\x01' + typ(b'\x01') + poll + typ(b'\x01tail\r') + poll + typ(b'\x01X') + poll,
    'slow-guest': b'\x01' + guest(1) + typ(b'0123456789' * 20) + poll * 5 + guest(0) + poll * 3
        + guest_all + poll * 2,
    'eof-held': b'\x01' + guest(2) + typ(b'held bytes\r') + bytes([EOF_]) + poll * 3 + guest_all + poll * 3,
    'signal-held': b'\x01' + guest(0) + typ(b'abc') + poll + bytes([SIG]) + poll + guest_all + poll,
    'not-a-tty': b'\x00' + typ(b'\x01x\x01h\x01\x01 passes\n') + poll * 2 + bytes([EOF_]) + poll * 2,
    'keys-mapped': b"\x01" + bytes([0x80, 10, 1, 2, 1, 4, 1, 6, 0x41, 1, 8]) + poll,
    'long': b'\x01' + b''.join(typ(bytes(range(i, i + 200))) for i in range(0, 50, 10)) + poll * 8,
}
for name, b in seeds.items():
    open(os.path.join(out, name), 'wb').write(b)
PY
echo "seed_escape: $(ls "$out" | wc -l) inputs in $out"

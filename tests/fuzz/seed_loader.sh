#!/bin/sh
# Seed corpus for the loader target: inputs as tests/fuzz/fuzz_loader.c
# reads them (RAM base byte, RAM size byte, the kernel's length, then the
# kernel and the initrd): a small RISC-V Image with and without an initrd,
# an EFI-stub Image with a PE/COFF section table (whole and truncated), an
# Image whose image_size does not fit, one in RAM across 4 GiB, and files
# that are not Images (ELF, gzip). Usage: seed_loader.sh OUTDIR
set -eu
out=$1
mkdir -p "$out"
/usr/bin/python3 - "$out" <<'PY'
import os, struct, sys
out = sys.argv[1]
def image(size=4096, image_size=0x10000, code0=0x13, pe=0, flags=0):
    h = struct.pack('<IIQQQIIQQII', code0, 0, 0x200000, image_size, flags, 2, 0, 0,
                    0x5643534952, 0x05435352, pe)
    return h + bytes(size - len(h))
def efi(size, sec_end):
    b = bytearray(image(size, 0x20000, code0=0x5a4d | 0x13 << 16, pe=0x40))
    b[0x40:0x44] = b'PE\0\0'
    struct.pack_into('<HH', b, 0x40 + 4, 0x5064, 1)     # machine, one section
    struct.pack_into('<H', b, 0x40 + 20, 0)             # no optional header
    struct.pack_into('<II', b, 0x40 + 24 + 16, sec_end - 0x200, 0x200)
    return bytes(b)
def inp(base, ram, kernel, initrd=b''):
    return bytes([base, ram]) + struct.pack('<H', len(kernel)) + kernel + initrd
seeds = {
    'image': inp(0, 63, image()),
    'image-initrd': inp(0, 63, image(), b'070701' + bytes(500)),
    'efi': inp(0, 63, efi(8192, 8192)),
    'efi-truncated': inp(0, 63, efi(4096, 9000)),
    'too-big': inp(0, 7, image(image_size=1 << 40)),
    'too-big-64m': inp(0, 255, image(image_size=1 << 40)),
    'just-too-big': inp(0, 255, image(image_size=61 << 20)),
    'across-4g': inp(1, 40, image(), b'x' * 3000),
    'above-4g': inp(2, 20, image(), b'y' * 100),
    'low-base': inp(3, 30, image(2048, 0), b'z'),
    'big-endian': inp(0, 63, image(flags=1)),
    'elf': inp(0, 63, b'\x7fELF\x02\x01\x01' + bytes(100)),
    'gzip': inp(0, 63, b'\x1f\x8b\x08' + bytes(20)),
    'short': inp(0, 63, b'MZ'),
}
for name, b in seeds.items():
    open(os.path.join(out, name), 'wb').write(b)
PY
echo "seed_loader: $(ls "$out" | wc -l) inputs in $out"

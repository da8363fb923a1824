#!/bin/sh
# Random differential ISA check (qemu-riscv64 vs. skiff-isa-run); the work
# is done by randcheck.py next to this script.
# usage: randcheck.sh --seed S --count N [--runner PATH] [--per-prog N] [-j JOBS]
#                     [--keep DIR] [--no-bisect] [--qemu PATH] [--cc PATH]
exec /usr/bin/python3 "$(dirname "$0")/randcheck.py" "$@"

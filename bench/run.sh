#!/bin/sh
# Runs skiff's benchmark suite: skiff and qemu-system-riscv64 side by side,
# alternating, medians and ratios, report in docs/BENCHMARKS.md.
# Usage: bench/run.sh [--quick] [--runs N] [--rows boot,cpu,smp,vmm] [--help]
# Needs Debian's /usr/bin/python3, qemu-system-misc, busybox (for the native
# column) and the default guest image (guest/build-image.sh).
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 -B "$here/bench.py" "$@"

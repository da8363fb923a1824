#!/bin/sh
# Differential check of src/engine/fpu.c against the real RISC-V F/D
# instructions as executed by qemu-riscv64 (QEMU's softfloat).
#
#   run.sh [--seed S] [--count N] [--keep DIR] [--host BIN] [--soft BIN] [--rv BIN]
#          [--qemu QEMU] [--skiff RUNNER]
#
# Generates N vectors (default 200000, a few seconds) with seed S (default 1),
# runs them through the RISC-V program under qemu-riscv64, and checks the
# results and fflags of fpu.c's host path (--host) and of its software-only
# build (--soft, fpu.c with -DFPU_FORCE_SOFT) against them; with --skiff,
# also the JIT's inline FP code (see the end). Without the
# --host/--soft/--rv binaries (meson passes them) the script builds them with
# cc and riscv64-linux-gnu-gcc in a temporary directory. Exit 0 when every
# vector matches, 1 on a mismatch, 77 (meson's "skip") when qemu-riscv64 or
# the cross compiler is missing.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
seed=1
count=200000
keep=
host=
soft=
rv=
qemu=${QEMU_RISCV64:-qemu-riscv64}
skiff=
while [ $# -gt 0 ]; do
	case "$1" in
	--seed) seed=$2; shift 2 ;;
	--count) count=$2; shift 2 ;;
	--keep) keep=$2; shift 2 ;;
	--host) host=$2; shift 2 ;;
	--soft) soft=$2; shift 2 ;;
	--rv) rv=$2; shift 2 ;;
	--qemu) qemu=$2; shift 2 ;;
	--skiff) skiff=$2; shift 2 ;;
	*) echo "usage: $0 [--seed S] [--count N] [--keep DIR] [--host BIN] [--soft BIN]" \
		"[--rv BIN] [--qemu QEMU] [--skiff RUNNER]" >&2
	   exit 2 ;;
	esac
done

if ! command -v "$qemu" >/dev/null 2>&1; then
	echo "fpu-diff: $qemu not found, skipping" >&2
	exit 77
fi

if [ -n "$keep" ]; then
	work=$keep
	mkdir -p "$work"
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/fpu-diff.XXXXXX")
	trap 'rm -rf "$work"' EXIT INT TERM
fi

cc=${CC:-cc}
cflags="-std=gnu11 -O2 -Wall -Wextra -I$top/src -I$here"
if [ -z "$host" ]; then
	host=$work/fpu_vectors_host
	$cc $cflags -o "$host" "$here/fpu_vectors_host.c" "$top/src/engine/fpu.c" -lm
fi
if [ -z "$soft" ]; then
	soft=$work/fpu_vectors_soft
	$cc $cflags -DFPU_FORCE_SOFT -o "$soft" "$here/fpu_vectors_host.c" "$top/src/engine/fpu.c" -lm
fi
if [ -z "$rv" ]; then
	rvcc=${RISCV_CC:-riscv64-linux-gnu-gcc}
	if ! command -v "$rvcc" >/dev/null 2>&1; then
		echo "fpu-diff: $rvcc not found, skipping" >&2
		exit 77
	fi
	rv=$work/fpu_vectors_rv
	$rvcc -static -O2 -march=rv64gc -Wall -Wextra -o "$rv" "$here/fpu_vectors_rv.c"
fi

"$host" gen --seed "$seed" --count "$count" > "$work/vectors.bin"
"$qemu" "$rv" < "$work/vectors.bin" > "$work/reference.bin"

status=0
echo "fpu-diff: seed $seed, host path:"
"$host" check "$work/vectors.bin" "$work/reference.bin" || status=1
echo "fpu-diff: seed $seed, software path (FPU_FORCE_SOFT):"
"$soft" check "$work/vectors.bin" "$work/reference.bin" || status=1
# With --skiff (build/tests/isa/skiff-isa-run): the same RISC-V program on
# skiff's engine, every block translated at once, under the JIT and in
# lockstep with the executor, must write what it wrote under qemu, with
# fflags cleared before each instruction and with NX already set (the
# state in which translated code takes its inline paths).
if [ -n "$skiff" ]; then
	for pre in clear nx; do
		arg=
		[ "$pre" = nx ] && arg=nx
		"$qemu" "$rv" $arg < "$work/vectors.bin" > "$work/qemu-$pre.bin"
		for engine in jit lockstep; do
			echo "fpu-diff: seed $seed, skiff --engine $engine, fflags $pre before each:"
			out=$work/skiff-$engine-$pre.bin
			if SKIFF_JIT_THRESHOLD=1 "$skiff" --engine "$engine" "$rv" $arg \
				< "$work/vectors.bin" > "$out" &&
			   cmp -s "$work/qemu-$pre.bin" "$out"; then
				echo "  all $count vectors match"
			else
				status=1
				# The first differing record (vectors: 32 bytes, op
				# and rm, a, b, c; results: 16, the value, fflags).
				at=$(cmp "$work/qemu-$pre.bin" "$out" 2>&1 | sed -n 's/.*byte \([0-9]*\).*/\1/p')
				if [ -n "$at" ]; then
					k=$(( (at - 1) / 16 ))
					echo "  MISMATCH at vector $k: vector, qemu's result, skiff's:"
					od -A n -t x8 -j $((k * 32)) -N 32 "$work/vectors.bin"
					od -A n -t x8 -j $((k * 16)) -N 16 "$work/qemu-$pre.bin"
					od -A n -t x8 -j $((k * 16)) -N 16 "$out"
				else
					echo "  MISMATCH: skiff failed or wrote a different length"
				fi
			fi
		done
	done
fi
exit $status

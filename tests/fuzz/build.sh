#!/bin/sh
# Configure and build the libFuzzer targets (tests/fuzz/meson.build says
# which sources each links) in a meson build directory of their own with
# clang, AddressSanitizer and UBSan: build-fuzz (or $1); the programs land
# in DIR/tests/fuzz/NAME. Further arguments name the targets to build
# (default: all). Needs clang with libFuzzer (Debian: clang,
# libclang-rt-14-dev).
#
# Run a target:  tests/fuzz/run.sh NAME SECONDS
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build-fuzz}
[ $# -gt 0 ] && shift
if [ ! -f "$out/build.ninja" ]; then
	# -Dwerror=false: the warning gate is the ordinary (GCC) build; clang
	# also flags GNU extensions the engine uses on purpose.
	CC=${CC:-clang} meson setup "$out" "$root" --buildtype=debugoptimized -Dfuzz=true \
		-Dwerror=false -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
targets=""
for name in "$@"; do
	targets="$targets tests/fuzz/$name"
done
if [ -z "$targets" ]; then
	for f in "$root"/tests/fuzz/fuzz_*.c; do
		name=${f##*/fuzz_}
		targets="$targets tests/fuzz/${name%.c}"
	done
fi
# shellcheck disable=SC2086
ninja -C "$out" $targets

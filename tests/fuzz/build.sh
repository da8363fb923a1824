#!/bin/sh
# Build the libFuzzer targets listed in tests/fuzz/targets.txt into
# build-fuzz/<name> (or the directory given as $1). Each line of targets.txt
# is "name source-files..." with paths relative to the repository root;
# blank lines and lines starting with # are skipped. Needs clang with
# libFuzzer (Debian: clang, libclang-rt-14-dev).
#
# Run a target:  build-fuzz/<name> -max_total_time=60 [corpus-dir]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build-fuzz}
CC=${CC:-clang}
CFLAGS=${CFLAGS:-"-std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"}
LIBS=${LIBS:-"-lpthread -lm -lz"}
mkdir -p "$out"
grep -v '^[[:space:]]*#' "$root/tests/fuzz/targets.txt" | while read -r name srcs; do
	[ -n "$name" ] || continue
	(cd "$root" && $CC $CFLAGS -Isrc $srcs -o "$out/$name" $LIBS)
	echo "built $out/$name"
done

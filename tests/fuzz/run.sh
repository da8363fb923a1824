#!/bin/sh
# Run one libFuzzer target for a while:
#   tests/fuzz/run.sh NAME SECONDS [extra libFuzzer flags]
# Builds the target first (tests/fuzz/build.sh) if it is not built yet.
# The corpus lives in build-fuzz/corpus/NAME and is kept between runs; on
# first use it is seeded by tests/fuzz/seed_NAME.sh OUTDIR when that script
# exists. Crash inputs land in build-fuzz/crashes/NAME/. Per-target flags
# can be put on one line in tests/fuzz/NAME.options.
# FUZZ_OUT overrides the build-fuzz directory.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 NAME SECONDS [libFuzzer flags]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
name=$1
secs=$2
shift 2
out=${FUZZ_OUT:-$root/build-fuzz}
bin=$out/tests/fuzz/$name
[ -x "$bin" ] || "$root/tests/fuzz/build.sh" "$out" "$name"
corpus=$out/corpus/$name
crashes=$out/crashes/$name
mkdir -p "$corpus" "$crashes"
if [ -z "$(ls -A "$corpus")" ] && [ -x "$root/tests/fuzz/seed_$name.sh" ]; then
	"$root/tests/fuzz/seed_$name.sh" "$corpus"
fi
opts=""
[ -f "$root/tests/fuzz/$name.options" ] && opts=$(cat "$root/tests/fuzz/$name.options")
# shellcheck disable=SC2086
exec "$bin" -max_total_time="$secs" -artifact_prefix="$crashes/" $opts "$@" "$corpus"

#!/bin/sh
# Seed corpus for the snapshot fuzz target: state files of small VMs (a
# plain one; one with a drive, a NIC, a share and a balloon whose queues are
# set up as a driver does it; a Diff on top of it), written by the target
# itself (see tests/fuzz/fuzz_snapshot.c). Usage: seed_snapshot.sh OUTDIR
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${FUZZ_OUT:-$root/build-fuzz}/tests/fuzz/snapshot
mkdir -p "$1"
SKIFF_SNAPSHOT_SEEDS=$1 "$bin" -runs=0 >/dev/null 2>&1 || {
	echo "seed_snapshot.sh: $bin could not write the seeds" >&2
	exit 1
}
ls "$1" | grep -q . || { echo "seed_snapshot.sh: no seeds written" >&2; exit 1; }

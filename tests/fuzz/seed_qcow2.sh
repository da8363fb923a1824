#!/bin/sh
# Seed corpus for the qcow2 fuzz target: small valid images made by QEMU's
# tools covering the format's features (v2 and v3, small clusters, every
# refcount width, compressed clusters, zero clusters, backing files named
# "base.raw" / "base.qcow2" as the target provides them, internal
# snapshots, lazy refcounts, bitmaps). Usage: seed_qcow2.sh OUTDIR
set -eu
out=$1
mkdir -p "$out"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
q() { qemu-img "$@" >/dev/null; }
io() { f=$1; shift; for c in "$@"; do qemu-io -f qcow2 -c "$c" "$f" >/dev/null; done; }
w() { io "$1" "write -P 0xab 0 3000" "write -P 0x11 70000 5000" "write -z 20000 4096" \
	"write -z 1024 1024" "write -z 40960 4096"; }

q create -f qcow2 -o cluster_size=512 "$t/small.qcow2" 256K; w "$t/small.qcow2"
q create -f qcow2 -o cluster_size=512,compat=0.10 "$t/v2.qcow2" 256K; w "$t/v2.qcow2"
for rb in 1 2 4 8 32 64; do
	q create -f qcow2 -o cluster_size=512,refcount_bits=$rb "$t/rb$rb.qcow2" 8M
	w "$t/rb$rb.qcow2"
done
q create -f qcow2 -o cluster_size=4096 "$t/c4k.qcow2" 1M; w "$t/c4k.qcow2"
yes skiff-qcow2-compressed | head -c 65536 > "$t/text.raw"
q convert -c -f raw -O qcow2 -o cluster_size=512 "$t/text.raw" "$t/comp.qcow2"
head -c 131072 /dev/zero > "$t/base.raw"
q create -f qcow2 -o cluster_size=512 -b base.raw -F raw "$t/ov-raw.qcow2"; w "$t/ov-raw.qcow2"
q create -f qcow2 -o cluster_size=512,compat=0.10 -b base.raw -F raw "$t/ov-v2.qcow2"; w "$t/ov-v2.qcow2"
q create -f qcow2 -o cluster_size=512 -b base.raw -F raw "$t/base.qcow2"
q create -f qcow2 -o cluster_size=512 -u -b base.qcow2 -F qcow2 "$t/ov-q.qcow2" 128K
q create -f qcow2 -o cluster_size=512 "$t/snap.qcow2" 128K; w "$t/snap.qcow2"
q snapshot -c s1 "$t/snap.qcow2"; io "$t/snap.qcow2" "write -P 0x22 0 1000"
q create -f qcow2 -o cluster_size=512,lazy_refcounts=on "$t/lazy.qcow2" 128K; w "$t/lazy.qcow2"
q create -f qcow2 -o cluster_size=512 "$t/bm.qcow2" 64K; q bitmap --add "$t/bm.qcow2" b0
for f in "$t"/*.qcow2; do
	[ "$(basename "$f")" = base.qcow2 ] && continue
	cp "$f" "$out/"
done
ls -l "$out" | awk 'NR > 1 { s += $5 } END { print NR - 1, "seeds,", s, "bytes" }'

#!/bin/sh
# Seed corpus for the qga fuzz target: agent output as tests/fuzz/fuzz_qga.c
# reads it (a first byte choosing the chunk size, then the stream): QEMU
# agent replies of each shape, a delimited sync answer, errors, and broken
# and oversized replies. Usage: seed_qga.sh OUTDIR
set -eu
out=$1
mkdir -p "$out"
n=0
seed() {   # CHUNK TEXT
	printf "\\$(printf '%03o' "$1")%b" "$2" > "$out/seed$n"
	n=$((n + 1))
}
seed 0 '{"return": {}}\n'
seed 1 '\377{"return": 1234}\n{"return": {"pid": 77}}\n'
seed 7 '{"error": {"class": "CommandNotFound", "desc": "The command x has not been found"}}\n'
seed 3 '{"return": {"exited": true, "exitcode": 0, "out-data": "aGVsbG8K", "out-truncated": false}}\n'
seed 5 '{"return": {"count": 4, "buf-b64": "AAEC/w==", "eof": true}}\n'
seed 2 '{"return": [{"name": "eth0", "ip-addresses": [{"ip-address": "10.0.2.15", "ip-address-type": "ipv4", "prefix": 24}]}]}\n'
seed 4 'junk}{"retu\377{"return": "a}b\\"c"}{"error": 5}{"return": 1, "error": {}}\n'
seed 9 '{"return": "\\ud800\\udc00\\u0000"}{[[[[[[[[[[[[[[]]]]]]]]]]]]]]}\n'
seed 0 "{\"return\": \"$(head -c 700 /dev/zero | tr '\0' A)\"}{\"return\": 2}"
echo "seed_qga: $n inputs in $out"

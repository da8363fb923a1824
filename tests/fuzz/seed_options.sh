#!/bin/sh
# Seed corpus for the options target: `skiff run` device options as
# tests/fuzz/fuzz_options.c reads them (NUL-separated, each a letter naming
# the option, then its argument): the forms docs/skiff-run.md shows, several
# devices of a kind, duplicates, and typical mistakes. Usage:
# seed_options.sh OUTDIR
set -eu
out=$1
mkdir -p "$out"
n=0
seed() {   # NAME OPTION...
	name=$1
	shift
	first=1
	for o in "$@"; do
		[ $first = 1 ] || printf '\000'
		printf '%s' "$o"
		first=0
	done > "$out/$name"
	n=$((n + 1))
}
seed disks 'drootfs.img,root' 'ddata.qcow2Q,format=qcow2,ro' 'dscratch,bw=10M,iops=500,serial=abc123'
seed disk-backing 'doverlay.qcow2,format=qcow2,backing=on' 'dbase.qcow2B,ro' 'dx,backing=/,backing=/tmp'
i=0
for bad in 'd' 'dx,format=vmdk' 'dx,bw=0' 'dx,iops=1k' 'dx,serial=123456789012345678901' 'dimgQ' \
	'dmissingN' 'nuser,hostfwd=tcp:1.2.3:1-:2' 'nuser,hostfwd=tcp::99999-:1' \
	'nuser,mac=zz:00:00:00:00:00' 'nslirp' 'ntap' 'vcid=2,uds=' 'vuds=a' 's/tmp,tag=-x' \
	's/nonexistent' 'p,uds=x' 'btarget=x' 'bstats=86401' 'cserial'; do
	seed "bad$i" 'drootfs.img,root' "$bad"   # skiff run stops at the first refusal
	i=$((i + 1))
done
seed net-user 'nuser' 'nuser,hostfwd=tcp::2222-:22,hostfwd=udp:127.0.0.1:5353-:53,mac=52:54:00:12:34:56'
seed net-tap 'ntap,ifname=tap0,mac=02:00:00:00:00:01' 'nuser,restrict=on'
seed vsock 'vcid=3,uds=/run/v.sock' 'vcid=4294967295,uds=x'
seed share 's/,tag=root,ro' 's/tmp' 's/tmp,tag=t,nodev'
seed ports 'porg.qemu.guest_agent.0,uds=/run/qga.sock' 'pdata,uds=/run/d.sock' 'pdata,uds=/run/e.sock'
seed balloon 'B' 'bdeflate_on_oom,target=64,stats=5'
seed console 'cvirtio' 'cuart'
seed all 'drootfs.img,root' 'nuser' 'vcid=3,uds=/run/v.sock' 's/tmp' 'pagent,uds=/run/a' 'B' 'cvirtio'
echo "seed_options: $n inputs in $out"

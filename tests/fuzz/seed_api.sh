#!/bin/sh
# Seed corpus for the api fuzz target: request sequences as
# tests/fuzz/fuzz_api.c reads them (requests separated by NUL bytes, each
# "METHOD PATH" then a newline and the body). Firecracker's getting-started
# calls, every section, InstanceStart and the runtime calls after it, a
# config document, and typical bad input. Usage: seed_api.sh OUTDIR
set -eu
out=$1
mkdir -p "$out"
K=/tmp/skiff-fuzz-api/f
D=/tmp/skiff-fuzz-api/d
n=0
# seed NAME REQUEST... : one file, the requests joined by NUL bytes
seed() {
	name=$1
	shift
	first=1
	for r in "$@"; do
		[ $first = 1 ] || printf '\000'
		printf '%s' "$r"
		first=0
	done > "$out/$name"
	n=$((n + 1))
}
L='{"bandwidth": {"size": 1048576, "refill_time": 1000, "one_time_burst": 4096}, "ops": {"size": 100, "refill_time": 100}}'
BOOT="PUT /boot-source
{\"kernel_image_path\": \"$K\", \"initrd_path\": \"$K\", \"boot_args\": \"console=ttyS0\"}"
MACHINE='PUT /machine-config
{"vcpu_count": 2, "mem_size_mib": 256, "smt": false, "track_dirty_pages": false, "cpu_quota": 0.5}'
DRIVE="PUT /drives/rootfs
{\"drive_id\": \"rootfs\", \"path_on_host\": \"$K\", \"is_root_device\": true, \"is_read_only\": true, \"rate_limiter\": $L, \"format\": \"raw\", \"serial\": \"S1\"}"
NET="PUT /network-interfaces/eth0
{\"iface_id\": \"eth0\", \"backend\": \"user\", \"guest_mac\": \"02:00:00:00:00:01\", \"rx_rate_limiter\": $L, \"tx_rate_limiter\": $L, \"port_forwards\": [{\"protocol\": \"tcp\", \"host_address\": \"127.0.0.1\", \"host_port\": 2222, \"guest_port\": 22}]}"
TAP='PUT /network-interfaces/tap1
{"iface_id": "tap1", "host_dev_name": "tap1"}'
SHARE="PUT /shares/home
{\"tag\": \"home\", \"path_on_host\": \"$D\", \"is_read_only\": true}"
VSOCK="PUT /vsock
{\"guest_cid\": 3, \"uds_path\": \"$D/v.sock\"}"
BALLOON='PUT /balloon
{"amount_mib": 16, "deflate_on_oom": true, "stats_polling_interval_s": 1}'
START='PUT /actions
{"action_type": "InstanceStart"}'

seed getting-started "$BOOT" "$MACHINE" "$DRIVE" "$START" 'GET /'
seed all-sections "$BOOT" "$MACHINE" "$DRIVE" "$NET" "$TAP" "$SHARE" "$VSOCK" "$BALLOON" \
	'GET /vm/config' 'GET /machine-config' 'GET /balloon' 'PATCH /machine-config
{"vcpu_count": 1}'
seed runtime "$BOOT" "$DRIVE" "$NET" "$BALLOON" "$START" \
	"PATCH /drives/rootfs
{\"drive_id\": \"rootfs\", \"rate_limiter\": $L}" \
	"PATCH /network-interfaces/eth0
{\"iface_id\": \"eth0\", \"tx_rate_limiter\": {\"bandwidth\": {\"size\": 0, \"refill_time\": 0}}}" \
	'PATCH /balloon
{"amount_mib": 64}' 'PATCH /balloon/statistics
{"stats_polling_interval_s": 5}' 'GET /balloon/statistics' 'GET /balloon' \
	'PATCH /vm
{"state": "Paused"}' 'PATCH /vm
{"state": "Resumed"}' 'PUT /actions
{"action_type": "FlushMetrics"}' 'PUT /actions
{"action_type": "SendCtrlAltDel"}' "$MACHINE"
seed no-stats "$BOOT" 'PUT /balloon
{"amount_mib": 0, "deflate_on_oom": false}' "$START" 'GET /balloon/statistics' \
	'PATCH /balloon/statistics
{"stats_polling_interval_s": 1}'
seed config "CONFIG x
{\"boot-source\": {\"kernel_image_path\": \"$K\"}, \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128}, \"drives\": [{\"drive_id\": \"d0\", \"path_on_host\": \"$K\", \"is_root_device\": false, \"is_read_only\": true}], \"network-interfaces\": [{\"iface_id\": \"n0\", \"tx_rate_limiter\": $L}], \"shares\": [{\"tag\": \"t\", \"path_on_host\": \"$D\"}], \"vsock\": null, \"balloon\": {\"amount_mib\": 1, \"deflate_on_oom\": false}}" 'GET /vm/config'
seed bad-input 'PUT /machine-config
{"vcpu_count": "2", "mem_size_mib": 256}' 'PUT /drives/bad.id
{}' 'PUT /boot-source
{"kernel_image_path": ' 'PUT /boot-source
{"kernel_image_path": "a", "kernel_image_path": "b"}' 'DELETE /drives/x
' 'GET //balloon/statistics/' 'PUT /network-interfaces/eth0
{"iface_id": "eth1"}' 'PATCH /balloon
{"amount_mib": -1}' 'PUT /actions
{"action_type": "Reboot"}' 'GET /version
{}'
echo "$n seeds"

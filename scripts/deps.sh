#!/bin/bash
# Installs every Debian package skiff needs to build, run, test and benchmark
# (one list, used by setup.sh and run-tests.sh). Only installs what is
# missing, so a second run is quick and needs no network.
set -euo pipefail

PACKAGES=(
    # build
    gcc meson ninja-build pkg-config libfdt-dev libslirp-dev libseccomp-dev
    libjansson-dev libmicrohttpd-dev liburing-dev zlib1g-dev libcurl4-openssl-dev
    # guest image builder
    apt dpkg cpio gzip xz-utils zstd debian-archive-keyring python3
    # tests
    python3-pytest python3-pexpect gcc-riscv64-linux-gnu libc6-dev-riscv64-cross
    binutils-riscv64-linux-gnu qemu-user qemu-utils e2fsprogs device-tree-compiler
    tmux clang libclang-rt-14-dev curl xxhash strace
    # test_jail.py: a kernel without Landlock, simulated by a seccomp filter
    python3-seccomp
    # the Debian image check (tests/stress/debian_image.py): ssh into the guest
    openssh-client
    # benchmarks: the peer and the native baseline (busybox; 7-Zip and
    # stress-ng for the compiled rows; perf counts system calls for
    # bench/sandbox.py --syscalls and samples bench/jit_profile.py)
    qemu-system-misc busybox 7zip stress-ng linux-perf
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#PACKAGES[@]} packages are installed"
    exit 0
fi
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"

#!/bin/bash
# Builds a Debian riscv64 system image for skiff (what `skiff image create
# debian` runs): a qcow2 disk with Debian's base system (systemd, udev, apt,
# systemd-networkd with DHCP, openssh-server, qemu-guest-agent,
# ca-certificates), the stock kernel with its modules, the kernel and an
# initramfs beside it, and a metadata file, in
#   ${XDG_CACHE_HOME:-$HOME/.cache}/skiff/images/NAME/
#     disk.qcow2  Image  initrd.cpio.gz  image.json  create.log
#
# Steps (each prints "[N/8] ..."; a failure names its step, and the work
# directory with the logs is kept):
#   1 package lists  the project's private apt configuration (lib/privapt.sh)
#   2 resolve        the package set, pinned to versions: Debian's required
#                    packages plus the base list and --packages
#   3 download       into the shared .deb cache; sizes checked against the index
#   4 boot files     the stock kernel and skiff's initramfs (build-image.sh
#                    with the default profile: virtio drivers, ext4, and an
#                    init that mounts root= and switch_roots to it)
#   5 first stage    on the host: the required packages unpacked with
#                    dpkg-deb -x (no maintainer scripts, no binfmt, no
#                    qemu-user) and an ext4 file system made from them with
#                    mke2fs -d (no root needed)
#   6 second stage   inside skiff: guest/debian/stage2.sh runs as the guest's
#                    init, installs every package with dpkg (maintainer
#                    scripts run on the guest's own CPU), configures the
#                    system and powers off; the .debs come over a read-only
#                    virtio-9p share
#   7 qcow2          `skiff image convert` copies the disk into a compact qcow2
#   8 metadata       image.json (kernel, initramfs, command line, suite,
#                    packages, creation date, sha256), then the directory is
#                    moved into place in one rename
#
# The initramfs is skiff's own (the default guest's, from the same kernel
# package) rather than Debian's initramfs-tools: it is already tested, it is
# made on the host in a second, and the second stage would otherwise spend
# its longest step building one under emulation.  A small local package
# (skiff-boot) provides linux-initramfs-tool, so the kernel package installs
# normally and apt knows its modules.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)     # guest/
PYTHON=/usr/bin/python3
# shellcheck source=../lib/privapt.sh
. "$here/lib/privapt.sh"

usage() {
    cat <<EOF
usage: $0 [options]

Builds a Debian riscv64 system image into
\${XDG_CACHE_HOME:-\$HOME/.cache}/skiff/images/NAME/.

  --name NAME        image name (default debian)
  --size SIZE        disk size, with a K/M/G suffix (default 8G)
  --suite SUITE      Debian suite (default stable)
  --packages A,B,C   more packages to install
  --ssh-key FILE     public key authorised for root (default: the first of
                     ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub)
  --minimal          only Debian's required packages and --packages (no
                     kernel package, systemd, ssh, ...)
  --only A,B,C       only these packages, what the second stage itself
                     needs (dpkg, dash, coreutils, diffutils, findutils,
                     grep, sed, tar, libc-bin, mount,
                     base-files, base-passwd) and their dependencies: a tiny
                     system with no init, for tests (boot it with init=/bin/sh)
  --cpus N           harts for the second stage (default 1)
  --mem SIZE         guest memory for the second stage (default 1G)
  --engine E         the second stage's engine (skiff run --engine; default
                     skiff's own default)
  --force            replace an existing image NAME
  --offline          use the cached package lists and .deb files
  --skiff PATH       the skiff binary (default: \$SKIFF, else skiff on PATH,
                     else build/src/cli/skiff in this source tree)

Environment: SKIFF_DEBIAN_MIRROR overrides the archive URI read from the
host's apt sources.
EOF
}

step_no=0
step_name=
log() { echo "image create: $*"; }
die() {
    local where=
    [ "$step_no" -gt 0 ] && where=" (step $step_no/8, $step_name)"
    echo "image create: error$where: $*" >&2
    # From step 4 on the work directory holds logs worth reading.
    if [ -n "${work:-}" ] && [ -d "$work" ] && [ "$step_no" -ge 4 ]; then
        keep_work=yes
        echo "image create: the work directory with its logs is kept: $work" >&2
    fi
    exit 1
}
step() {
    step_no=$1
    step_name=$2
    log "[$step_no/8] $step_name"
}
size_bytes() {   # SIZE with K/M/G[iB] suffix -> bytes, or nothing
    local v=$1 n mult=1
    n=${v%%[KkMmGgTt]*}
    case "$n" in ''|*[!0-9]*) return 1 ;; esac
    case "${v#"$n"}" in
        '') mult=1 ;;
        [Kk]|[Kk]i[Bb]|[Kk][Bb]) mult=1024 ;;
        [Mm]|[Mm]i[Bb]|[Mm][Bb]) mult=$((1024 * 1024)) ;;
        [Gg]|[Gg]i[Bb]|[Gg][Bb]) mult=$((1024 * 1024 * 1024)) ;;
        [Tt]|[Tt]i[Bb]|[Tt][Bb]) mult=$((1024 * 1024 * 1024 * 1024)) ;;
        *) return 1 ;;
    esac
    echo $((n * mult))
}
cpu_of() {       # CPU seconds (user + system) of the children in a `times` output
    tail -n 1 "$1" |
        awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } printf "%d\n", n }'
}
no_space() {     # a command's log says the host file system is full
    grep -q -i -e 'No space left on device' -e 'Could not allocate block' "$@" 2>/dev/null
}

name=debian
size=8G
SUITE=stable
extra_packages=
ssh_key=
minimal=no
only=
cpus=1
mem=1G
engine=
force=no
offline=no
skiff=${SKIFF:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --name|--size|--suite|--packages|--ssh-key|--cpus|--mem|--skiff|--only|--engine)
            [ $# -ge 2 ] || die "$1 needs a value"
            case "$1" in
                --name) name=$2 ;; --size) size=$2 ;; --suite) SUITE=$2 ;;
                --packages) extra_packages=$2 ;; --ssh-key) ssh_key=$2 ;;
                --cpus) cpus=$2 ;; --mem) mem=$2 ;; --skiff) skiff=$2 ;;
                --only) only=$2; minimal=yes ;;
                --engine) engine=$2 ;;
            esac
            shift 2 ;;
        --minimal) minimal=yes; shift ;;
        --force) force=yes; shift ;;
        --offline) offline=yes; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
case "$name" in
    ''|*[!A-Za-z0-9._-]*|.*) die "bad image name '$name' (letters, digits, . _ - only; not starting with .)" ;;
esac
case "$SUITE" in
    ''|*[!A-Za-z0-9.-]*) die "bad suite name '$SUITE'" ;;
esac
size_b=$(size_bytes "$size") || die "--size $size: not a size (examples: 8G, 2048M)"
[ "$size_b" -ge $((256 * 1024 * 1024)) ] || die "--size $size: at least 256M"
case "$cpus" in [1-8]) ;; *) die "--cpus $cpus: 1 to 8" ;; esac
case "$engine" in ''|[a-z]*) ;; *) die "--engine $engine: an engine name (see skiff run --help)" ;; esac
size_bytes "$mem" >/dev/null || die "--mem $mem: not a size"
packages=()
[ -z "$only" ] || extra_packages=${extra_packages:+$extra_packages,}$only
if [ -n "$extra_packages" ]; then
    IFS=, read -r -a packages <<< "$extra_packages"
    for p in "${packages[@]}"; do
        case "$p" in
            ''|*[!a-z0-9.+-]*) die "--packages: bad package name '$p'" ;;
        esac
    done
fi
if [ -z "$ssh_key" ] && [ "$minimal" = no ]; then
    for k in id_ed25519 id_ecdsa id_rsa; do
        [ -r "${HOME:-/nonexistent}/.ssh/$k.pub" ] && { ssh_key=$HOME/.ssh/$k.pub; break; }
    done
fi
if [ -n "$ssh_key" ]; then
    [ -r "$ssh_key" ] || die "--ssh-key $ssh_key: cannot read it"
    grep -q -E '^(ssh-|ecdsa-|sk-)[^ ]+ [A-Za-z0-9+/=]+' "$ssh_key" ||
        die "--ssh-key $ssh_key: not an OpenSSH public key"
fi

if [ -z "$skiff" ]; then
    if command -v skiff >/dev/null 2>&1; then
        skiff=$(command -v skiff)
    else
        skiff=$here/../build/src/cli/skiff
    fi
fi
[ -x "$skiff" ] || die "no skiff binary at $skiff (build it, or give --skiff PATH)"

missing=()
for tool in apt-get apt-cache apt-config dpkg-deb mke2fs sha256sum flock; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ -x "$PYTHON" ] || missing+=("$PYTHON")
[ ${#missing[@]} -eq 0 ] || die "missing host tools: ${missing[*]} (this needs a Debian-based host with apt, dpkg, e2fsprogs and python3)"

if [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ]; then
    die "neither XDG_CACHE_HOME nor HOME is set; cannot choose a cache directory"
fi
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/skiff
images=$cache_root/images
out_dir=$images/$name
deb_dir=$cache_root/debs
mkdir -p "$images" "$deb_dir"
exec 9>"$images/.lock-$name"
flock -n 9 || die "another creation of image '$name' is running (lock $images/.lock-$name)"
if [ -e "$out_dir" ] && [ "$force" = no ]; then
    die "image '$name' exists ($out_dir); remove it with 'skiff image rm $name' or give --force"
fi
# A running VM holds its image's lock (shared); --force does not pull the
# disk from under it.
if [ -e "$out_dir/.lock" ] && ! flock -n -x "$out_dir/.lock" true; then
    die "image '$name' is in use by a running VM"
fi

start_time=$(date +%s)
keep_work=no
work=$(mktemp -d "$images/.create-$name.XXXXXX")
cleanup() {
    [ "$keep_work" = yes ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'die "interrupted"' INT TERM HUP
exec > >(tee -a "$work/create.log") 2> >(tee -a "$work/create.log" >&2)

# ------------------------------------------------------------ 1 package lists
step 1 "package lists"
archive_uri=$(privapt_archive_uri) || die "cannot find the Debian archive in the host's apt sources"
privapt_setup "$cache_root" "$archive_uri" "$SUITE" main "$offline"
if [ "$offline" = no ]; then
    log "  refreshing the riscv64 lists of $archive_uri $SUITE"
    rc=0
    privapt_update || rc=$?
    [ "$rc" -ne 2 ] || die "Debian has no suite '$SUITE' (the archive $archive_uri has no Release file for it)"
    [ "$rc" -eq 0 ] || die "could not refresh the package lists from $archive_uri (is the network up?)"
elif ! privapt_have_lists; then
    die "--offline, but no package lists for '$SUITE' are cached; run once without --offline"
fi

# ------------------------------------------------------------ 2 resolve
step 2 "resolving the package set"
if [ -n "$only" ]; then
    # What stage2.sh runs: the shell, dpkg (which wants diff, ldconfig and
    # tar), coreutils, findutils, grep, sed and mount,
    # on a system with Debian's users and base files.
    required="base-files base-passwd dpkg dash coreutils diffutils findutils grep sed tar libc-bin mount"
else
    required=$(apt-cache "${APT_OPTS[@]}" dumpavail |
        awk '/^Package:/ { p = $2 } /^Priority: required/ { print p }' | LC_ALL=C sort -u)
    [ -n "$required" ] || die "no packages of priority 'required' in $SUITE"
fi
base=()
kernel_pkg=
if [ "$minimal" = no ]; then
    base=(systemd systemd-sysv udev systemd-resolved kmod iproute2 openssh-server
          qemu-guest-agent ca-certificates debian-archive-keyring less)
    kernel_pkg=$(privapt_kernel_package linux-image-riscv64)
    [ -n "$kernel_pkg" ] || die "linux-image-riscv64 in $SUITE names no linux-image-* package"
fi
for p in "${packages[@]}"; do
    [ -n "$(privapt_candidate "$p")" ] || die "package '$p' is not in $SUITE/main for riscv64"
done
# The order of apt's simulated installation puts every Pre-Depends before
# its user; the second stage installs in this order.
# shellcheck disable=SC2086
required_set=$(privapt_resolve $required | cut -d' ' -f1) ||
    die "cannot resolve Debian's required packages"
# The kernel package is resolved apart: its first choice of initramfs
# builder (initramfs-tools) is not wanted, skiff-boot stands in for it; its
# other dependencies (kmod, linux-base) join the rest, and it comes last.
kernel_deps=()
[ -z "$kernel_pkg" ] || kernel_deps=(kmod linux-base)
sim=$(apt-get "${APT_OPTS[@]}" -s -q --no-install-recommends install \
        $required "${base[@]}" "${kernel_deps[@]}" "${packages[@]}" 2>&1) || {
    echo "$sim" | sed 's/^/  /' >&2
    die "cannot resolve the package set"
}
order=$(echo "$sim" | sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1 \2/p')
if [ -n "$kernel_pkg" ]; then
    kv=$(privapt_candidate "$kernel_pkg")
    [ -n "$kv" ] || die "kernel package $kernel_pkg not found"
    order=$(printf '%s\n%s %s' "$order" "$kernel_pkg" "$kv")
fi
count=$(echo "$order" | wc -l)
log "  $count packages ($(echo "$required_set" | wc -l) required)"

# ------------------------------------------------------------ 3 download
step 3 "downloading"
# "name version size installed-KiB" of each package, from the index: a
# cached .deb of another size is a leftover of an interrupted download.
# shellcheck disable=SC2046
index=$(apt-cache "${APT_OPTS[@]}" show $(echo "$order" | sed 's/ /=/') 2>/dev/null |
    awk '/^Package:/ { p = $2 } /^Version:/ { v = $2 } /^Size:/ { s = $2 }
         /^Installed-Size:/ { i = $2 } /^$/ { if (p != "") print p, v, s, i; p = "" }
         END { if (p != "") print p, v, s, i }')
to_fetch=()
while read -r p v; do
    f=$(privapt_deb_file "$deb_dir" "$p" "$v") || { to_fetch+=("$p=$v"); continue; }
    want=$(echo "$index" | awk -v p="$p" -v v="$v" '$1 == p && $2 == v { print $3; exit }')
    if [ -n "$want" ] && [ "$(stat -c %s "$f")" != "$want" ]; then
        log "  $(basename "$f") is not $want bytes long: fetching it again"
        rm -f "$f"
        to_fetch+=("$p=$v")
    fi
done <<< "$order"
if [ ${#to_fetch[@]} -gt 0 ]; then
    [ "$offline" = no ] || die "--offline, but ${#to_fetch[@]} packages are not cached: ${to_fetch[*]:0:5}..."
    log "  fetching ${#to_fetch[@]} packages"
    if ! privapt_download "$deb_dir" "${to_fetch[@]}"; then
        no_space "$apt_dir/download.log" && die "no space left on the file system of $deb_dir"
        die "the download was interrupted or failed (apt's words above); run the same command again to go on, the packages already fetched are kept"
    fi
fi
debs=()
download_b=0
while read -r p v; do
    f=$(privapt_deb_file "$deb_dir" "$p" "$v") || die "the download of $p $v produced no .deb"
    debs+=("$f")
    download_b=$((download_b + $(stat -c %s "$f")))
done <<< "$order"
installed_kib=$(echo "$index" | awk '{ s += $4 } END { print s + 0 }')
log "  $((download_b / 1048576)) MiB of packages, $((installed_kib / 1024)) MiB installed"
[ $((installed_kib * 1024 + 268435456)) -le "$size_b" ] ||
    die "--size $size is too small: the packages alone need $((installed_kib / 1024)) MiB"

# Room on the host: the raw disk (what is installed plus the first stage
# and the file system's own), its qcow2 copy, and slack.
need=$(( (installed_kib * 1024) * 5 / 2 + 536870912 ))
avail=$(( $(df -P -k "$images" | awk 'NR == 2 { print $4 }') * 1024 ))
[ "$avail" -ge "$need" ] ||
    die "no space left for the build: $images has $((avail / 1048576)) MiB free, about $((need / 1048576)) MiB are needed"

# ------------------------------------------------------------ 4 boot files
step 4 "kernel and initramfs"
# The default guest's build for this suite: the same kernel package, so its
# modules match the ones the image installs; kept, and current, in the
# cache, so a second creation spends no time here.
boot=$cache_root/default
[ "$SUITE" = stable ] || boot=$cache_root/default-$SUITE
kernel_release=
if [ "$minimal" = no ]; then
    kernel_release=${kernel_pkg#linux-image-}
fi
"$here/build-image.sh" --profile default --suite "$SUITE" --out "$boot" --offline \
    >"$work/boot.log" 2>&1 || { sed 's/^/  /' "$work/boot.log" >&2; die "the kernel and initramfs could not be built"; }
built_release=$(sed -n 's/^kernel-release //p' "$boot/manifest")
if [ -n "$kernel_release" ] && [ "$built_release" != "$kernel_release" ]; then
    die "the initramfs was built for kernel $built_release, the image installs $kernel_release"
fi
kernel_release=$built_release
log "  kernel $kernel_release"

# ------------------------------------------------------------ 5 first stage
step 5 "first stage (on the host)"
root=$work/root
share=$work/share
mkdir -p "$root" "$share/debs"
# Debian's merged /usr: /bin, /sbin and /lib are links into /usr before
# anything is unpacked, as the packages expect.
mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib"
for d in bin sbin lib; do ln -s "usr/$d" "$root/$d"; done
n=0
while read -r p; do
    f=$(privapt_deb_file "$deb_dir" "$p" "$(echo "$order" | awk -v p="$p" '$1 == p { print $2 }')") ||
        die "no .deb for required package $p"
    dpkg-deb -x "$f" "$root" 2>"$work/unpack.log" ||
        { no_space "$work/unpack.log" && die "no space left on the host while unpacking $p"; die "cannot unpack $f"; }
    n=$((n + 1))
done <<< "$required_set"
log "  unpacked $n required packages"
[ -e "$root/usr/bin/sh" ] || ln -s dash "$root/usr/bin/sh"
install -m 0755 "$here/debian/stage2.sh" "$root/skiff-stage2"
mkdir -p "$root/dev" "$root/proc" "$root/sys" "$root/run" "$root/tmp" "$root/root"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
: > "$root/var/lib/dpkg/status"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
: > "$root/var/lib/dpkg/available"

# The .debs, hard-linked (or copied) into the share, named by their place in
# the installation order.
i=0
for f in "${debs[@]}"; do
    i=$((i + 1))
    t=$share/debs/$(printf '%04d' "$i")_$(basename "$f")
    ln "$f" "$t" 2>/dev/null || cp "$f" "$t" || die "cannot copy $f into the share"
done
echo "$required_set" > "$share/required"
echo "$order" > "$share/order"

# skiff-boot: provides linux-initramfs-tool, so the kernel package installs
# without initramfs-tools (skiff boots the kernel and initramfs from the
# image's directory).
if [ "$minimal" = no ]; then
    pk=$work/skiff-boot
    mkdir -p "$pk/DEBIAN"
    cat > "$pk/DEBIAN/control" <<EOF
Package: skiff-boot
Version: 1
Architecture: all
Maintainer: skiff <skiff@localhost>
Provides: linux-initramfs-tool
Priority: optional
Section: admin
Description: boot files handled by skiff
 skiff boots this system with the kernel and initramfs kept beside the
 image (skiff image ls); no initramfs is built inside the guest.
EOF
    dpkg-deb --root-owner-group -Zgzip --build "$pk" "$share/debs/0000_skiff-boot_1_all.deb" \
        >/dev/null || die "cannot build the skiff-boot package"
fi

# What the second stage needs to know.
codename=$(apt-cache "${APT_OPTS[@]}" policy 2>/dev/null | sed -n 's/.*,n=\([^,]*\),.*/\1/p' | head -n 1)
{
    printf 'SUITE=%q\n' "$SUITE"
    printf 'CODENAME=%q\n' "${codename:-$SUITE}"
    printf 'ARCHIVE=%q\n' "$archive_uri"
    printf 'HOSTNAME=%q\n' "$name"
    printf 'MINIMAL=%q\n' "$minimal"
    printf 'HOST_UID=%q\n' "$(id -u)"
} > "$share/settings"
[ -z "$ssh_key" ] || cp "$ssh_key" "$share/authorized_keys"
if [ "$minimal" = no ]; then
    cp -R "$here/debian/rootfs" "$share/rootfs"
    # The archive's lists, so apt in the guest knows the packages before its
    # first `apt-get update`.
    mkdir -p "$share/lists"
    cp "$apt_dir/state/lists/"*_InRelease "$apt_dir/state/lists/"*_Packages* "$share/lists/" 2>/dev/null || true
fi

raw=$work/disk.raw
truncate -s "$size_b" "$raw" || die "cannot create $raw"
if ! mke2fs -q -F -t ext4 -L skiff-root -E root_owner=0:0 -d "$root" "$raw" >"$work/mke2fs.log" 2>&1; then
    sed 's/^/  /' "$work/mke2fs.log" >&2
    no_space "$work/mke2fs.log" && die "no space left on the host while making the file system"
    die "mke2fs could not make the file system"
fi
rm -rf "$root"

# ------------------------------------------------------------ 6 second stage
step 6 "second stage (inside skiff)"
stage2_log=$work/stage2.log
cmdline="console=ttyS0 root=/dev/vda rw init=/skiff-stage2 skiff.net=off"
log "  skiff run --cpus $cpus --mem $mem: $count packages to install; the log is $stage2_log"
times > "$work/times.0"   # in this shell: a subshell would count its own children
t0=$(date +%s)
# (No agent port and no rng: nothing in the second stage uses them.)
nice -n 10 "$skiff" run --kernel "$boot/Image" --initrd "$boot/initrd.cpio.gz" \
    --append "$cmdline" --cpus "$cpus" --mem "$mem" ${engine:+--engine "$engine"} \
    --disk "$raw,format=raw" --share "$share,tag=stage2,ro" --no-rng --no-agent \
    </dev/null >"$stage2_log" 2>&1 &
vm=$!
# Progress: the guest's step lines as they come, and a count of packages.
last_shown=
while kill -0 "$vm" 2>/dev/null; do
    sleep 5
    s=$(grep -a '^skiff-stage2: \[' "$stage2_log" | tail -n 1 | tr -d '\r' || true)
    done_n=$(grep -a -c '^Setting up ' "$stage2_log" || true)
    line="${s#skiff-stage2: } ($done_n of $count packages set up, $(( $(date +%s) - start_time )) s)"
    if [ "$s" != "$last_shown" ] || [ $(( $(date +%s) % 60 )) -lt 5 ]; then
        log "  $line"
        last_shown=$s
    fi
done
vm_status=0
wait "$vm" || vm_status=$?
if ! grep -a -q '^skiff-stage2: done' "$stage2_log"; then
    failed=$(grep -a '^skiff-stage2: FAILED' "$stage2_log" | tail -n 1 | tr -d '\r' || true)
    tail -n 25 "$stage2_log" | sed 's/^/  | /' >&2
    if grep -a -q 'No space left on device' "$stage2_log"; then
        die "the image is full: --size $size is too small for these packages (log: $stage2_log)"
    fi
    [ -n "$failed" ] && die "the second stage ${failed#skiff-stage2: } (log: $stage2_log)"
    die "the second stage ended without finishing (skiff exited with status $vm_status; log: $stage2_log)"
fi
[ "$vm_status" -eq 0 ] || die "skiff exited with status $vm_status after the second stage (log: $stage2_log)"
times > "$work/times.1"
log "  second stage done in $(( $(date +%s) - t0 )) s, $(( $(cpu_of "$work/times.1") - $(cpu_of "$work/times.0") )) s of host CPU"

# ------------------------------------------------------------ 7 qcow2
step 7 "qcow2"
"$skiff" image convert "$raw" "$work/disk.qcow2" >"$work/convert.log" 2>&1 || {
    sed 's/^/  /' "$work/convert.log" >&2
    no_space "$work/convert.log" && die "no space left on the host while writing the qcow2 image"
    die "cannot convert the disk to qcow2"
}
rm -f "$raw"
log "  disk.qcow2: $(( $(stat -c %s "$work/disk.qcow2") / 1048576 )) MiB for $size"

# ------------------------------------------------------------ 8 metadata
step 8 "metadata"
img=$work/image
mkdir -p "$img"
mv "$work/disk.qcow2" "$img/disk.qcow2"
cp "$boot/Image" "$img/Image"
cp "$boot/initrd.cpio.gz" "$img/initrd.cpio.gz"
end_time=$(date +%s)
echo "$order" | "$PYTHON" "$here/debian/metadata.py" "$img" \
    --name "$name" --suite "$SUITE" --codename "${codename:-$SUITE}" --archive "$archive_uri" \
    --kernel-release "$kernel_release" --size "$size_b" --minimal "$minimal" \
    --ssh-key "${ssh_key:-}" --seconds $((end_time - start_time)) ||
    die "cannot write image.json"
cp "$work/create.log" "$img/create.log"
cp "$stage2_log" "$img/stage2.log"
if [ -e "$out_dir" ]; then
    mv "$out_dir" "$work/old" || die "cannot move the old image '$name' aside"
fi
mv "$img" "$out_dir" || die "cannot move the image into $out_dir"
log "image '$name' created in $((end_time - start_time)) s: $out_dir"
log "  boot it: skiff run --image $name [--ephemeral] [--ssh-port 2222]"

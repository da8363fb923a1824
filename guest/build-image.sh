#!/bin/bash
# Builds a skiff guest image: the stock Debian riscv64 kernel as a raw RISC-V
# Image plus an initramfs (newc cpio, gzip) holding a static busybox, the
# kernel modules the virtio devices need, and guest/init as /init.
#
# Output: ${XDG_CACHE_HOME:-$HOME/.cache}/skiff/<profile>/{Image,initrd.cpio.gz,manifest}
# What goes in is described by guest/profiles/<profile>.conf (default: "default").
#
# Packages come from the Debian archive the host's apt already uses, fetched
# with `apt-get download` under the project's private apt configuration
# (guest/lib/privapt.sh), so the host's apt setup is never touched.  Nothing
# is installed: packages are unpacked with dpkg-deb -x.
#
# The manifest records the package versions, a hash of the builder's files
# under guest/ and a hash of the profile's settings; when it matches, the
# script does nothing.  The image is built in a
# temporary directory and moved into place at the end, so any failure leaves
# the previous image as it was.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=/usr/bin/python3
ARCH=riscv64
# shellcheck source=lib/privapt.sh
. "$here/lib/privapt.sh"

usage() {
    cat <<EOF
usage: $0 [--profile NAME] [--suite SUITE] [--out DIR] [--force] [--offline]
          [--print-dir | --print-manifest]

Builds the skiff guest image NAME (default: default) from guest/profiles/NAME.conf
into \${XDG_CACHE_HOME:-\$HOME/.cache}/skiff/NAME/.

  --profile NAME  which profile to build
  --suite SUITE   take the packages from SUITE instead of the profile's
  --out DIR       write the image to DIR instead of the cache directory
  --force         rebuild even when the image is current
  --offline       do not refresh the package lists; use the ones from the
                  last run and the cached .deb files
  --print-dir     print the output directory and exit
  --print-manifest  print the manifest the image would have (what decides
                  whether it is current) and exit

Environment: SKIFF_DEBIAN_MIRROR overrides the archive URI read from the
host's apt sources.
EOF
}

log() { echo "build-image: $*"; }
die() { echo "build-image: error: $*" >&2; exit 1; }

profile=default
suite_arg=
out_arg=
force=no
offline=no
print_dir=no
print_manifest=no
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) [ $# -ge 2 ] || die "--profile needs a name"; profile=$2; shift 2 ;;
        --profile=*) profile=${1#--profile=}; shift ;;
        --suite) [ $# -ge 2 ] || die "--suite needs a name"; suite_arg=$2; shift 2 ;;
        --out) [ $# -ge 2 ] || die "--out needs a directory"; out_arg=$2; shift 2 ;;
        --force) force=yes; shift ;;
        --offline) offline=yes; shift ;;
        --print-dir) print_dir=yes; shift ;;
        --print-manifest) print_manifest=yes; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
case "$profile" in
    ''|*[!A-Za-z0-9._-]*|.*) die "bad profile name '$profile' (letters, digits, . _ - only)" ;;
esac
profile_file=$here/profiles/$profile.conf
[ -f "$profile_file" ] || die "no profile '$profile' ($profile_file does not exist)"

if [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ]; then
    die "neither XDG_CACHE_HOME nor HOME is set; cannot choose a cache directory"
fi
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/skiff
out_dir=$cache_root/$profile
[ -z "$out_arg" ] || out_dir=$out_arg
if [ "$print_dir" = yes ]; then
    echo "$out_dir"
    exit 0
fi

# ------------------------------------------------------------ profile
SUITE=stable
COMPONENT=main
KERNEL_METAPACKAGE=linux-image-riscv64
PACKAGES=()
RESOLVE_DEPENDS=no
MODULES=()
MODULES_COMPRESSED=decompress
OVERLAYS=()
PRUNE=()
AGENT=no
LIBS_NEEDED_BY=()
# shellcheck source=profiles/default.conf
. "$profile_file"
[ -z "$suite_arg" ] || SUITE=$suite_arg
case "$SUITE" in
    ''|*[!A-Za-z0-9.-]*) die "bad suite name '$SUITE'" ;;
esac
# What the profile says, as the variables stand once it (and whatever it
# sources) ran: this, not the files in profiles/, goes into the image's key,
# so that a new or changed profile leaves every other image current.
profile_settings=$(declare -p SUITE COMPONENT KERNEL_METAPACKAGE PACKAGES RESOLVE_DEPENDS MODULES \
    MODULES_COMPRESSED OVERLAYS PRUNE AGENT LIBS_NEEDED_BY)

# ------------------------------------------------------------ host tools
missing=()
AGENT_CC=riscv64-linux-gnu-gcc
agent_tools=()
[ "$AGENT" = yes ] && agent_tools=("$AGENT_CC")
for tool in apt-get apt-cache dpkg-deb sha256sum "${agent_tools[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ -x "$PYTHON" ] || missing+=("$PYTHON")
[ ${#missing[@]} -eq 0 ] || die "missing host tools: ${missing[*]} (this needs a Debian-based host with apt, dpkg and python3)"

mkdir -p "$cache_root"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache_root/.lock-$profile-$SUITE"
    flock -w 900 9 || die "another build of '$profile' is still running (lock $cache_root/.lock-$profile-$SUITE)"
fi

start_time=$(date +%s)

# ------------------------------------------------------------ private apt
archive_uri=$(privapt_archive_uri) || die "cannot find the Debian archive in the host's apt sources"
deb_dir=$cache_root/debs
mkdir -p "$deb_dir"
privapt_setup "$cache_root" "$archive_uri" "$SUITE" "$COMPONENT" "$offline"

if [ "$offline" = no ]; then
    log "refreshing package lists for $ARCH from $archive_uri ($SUITE/$COMPONENT)"
    rc=0
    privapt_update || rc=$?
    if [ "$rc" -ne 0 ]; then
        msg="could not refresh the package lists from $archive_uri"
        [ "$rc" -eq 2 ] && msg="the archive $archive_uri has no suite '$SUITE' (no Release file)"
        if [ -f "$out_dir/manifest" ]; then
            msg="$msg; the existing image in $out_dir is unchanged (use --offline to rebuild from the cached lists)"
        fi
        die "$msg"
    fi
elif ! privapt_have_lists; then
    die "--offline, but no package lists are cached yet; run once without --offline"
fi

# The metapackage depends on exactly one linux-image-<release>-riscv64.
kernel_meta_version=$(privapt_candidate "$KERNEL_METAPACKAGE")
[ -n "$kernel_meta_version" ] || die "package $KERNEL_METAPACKAGE not found in $SUITE/$COMPONENT for $ARCH"
kernel_pkg=$(privapt_kernel_package "$KERNEL_METAPACKAGE")
[ -n "$kernel_pkg" ] || die "$KERNEL_METAPACKAGE $kernel_meta_version does not depend on a linux-image-* package"
kernel_version=$(privapt_candidate "$kernel_pkg")
[ -n "$kernel_version" ] || die "kernel package $kernel_pkg (named by $KERNEL_METAPACKAGE) not found"
kernel_release=${kernel_pkg#linux-image-}

# Userland packages, pinned to exact versions.
pkg_specs=()
if [ ${#PACKAGES[@]} -gt 0 ]; then
    if [ "$RESOLVE_DEPENDS" = yes ]; then
        resolved=$(privapt_resolve "${PACKAGES[@]}") ||
            die "cannot resolve the dependencies of: ${PACKAGES[*]}"
        while read -r name ver; do
            pkg_specs+=("$name=$ver")
        done <<< "$resolved"
    else
        for p in "${PACKAGES[@]}"; do
            v=$(privapt_candidate "$p")
            [ -n "$v" ] || die "package $p not found in $SUITE/$COMPONENT for $ARCH"
            pkg_specs+=("$p=$v")
        done
    fi
fi

# Hash of the builder's files under guest/ that shape the image (the
# profile's part is profile_settings).
inputs=("build-image.sh" "lib/privapt.sh" "imagetool.py" "init")
if [ "$AGENT" = yes ]; then
    inputs+=("agent" "../src/base/base64.c" "../src/base/base64.h" "../src/base/xxh64.c" "../src/base/xxh64.h")
fi
for o in "${OVERLAYS[@]}"; do inputs+=("$o"); done
inputs_hash=$(cd "$here" && find "${inputs[@]}" \( -type f -o -type l \) -print |
    LC_ALL=C sort | while read -r f; do
        x=-; [ -x "$f" ] && x=x
        echo "$f $x $(sha256sum < "$f" | cut -d' ' -f1)"
    done | sha256sum | cut -d' ' -f1)

manifest=$(
    echo "# skiff guest image manifest: the image is current when these lines match"
    echo "profile $profile"
    echo "archive $archive_uri $SUITE $COMPONENT $ARCH"
    echo "kernel $kernel_pkg $kernel_version"
    echo "kernel-release $kernel_release"
    for s in "${pkg_specs[@]}"; do echo "package ${s%%=*} ${s#*=}"; done
    echo "modules ${MODULES[*]}"
    if [ "$AGENT" = yes ]; then
        echo "agent $("$AGENT_CC" -dumpfullversion 2>/dev/null || "$AGENT_CC" -dumpversion)"
    fi
    echo "inputs-sha256 $inputs_hash"
    echo "settings-sha256 $(printf '%s\n' "$profile_settings" | sha256sum | cut -d' ' -f1)"
)
if [ "$print_manifest" = yes ]; then
    printf '%s\n' "$manifest"
    exit 0
fi

if [ "$force" = no ] && [ -f "$out_dir/Image" ] && [ -f "$out_dir/initrd.cpio.gz" ] &&
   [ "$(cat "$out_dir/manifest" 2>/dev/null || true)" = "$manifest" ]; then
    log "image '$profile' is current (kernel $kernel_release, $kernel_version); nothing to do"
    log "  $out_dir"
    exit 0
fi

# ------------------------------------------------------------ download
log "kernel: $kernel_pkg $kernel_version"
for s in "${pkg_specs[@]}"; do log "package: ${s%%=*} ${s#*=}"; done

deb_file() { privapt_deb_file "$deb_dir" "$@"; }

want=("$kernel_pkg=$kernel_version" "${pkg_specs[@]}")
to_fetch=()
for s in "${want[@]}"; do
    deb_file "${s%%=*}" "${s#*=}" >/dev/null || to_fetch+=("$s")
done
if [ ${#to_fetch[@]} -gt 0 ]; then
    [ "$offline" = no ] || die "--offline, but these packages are not cached: ${to_fetch[*]}"
    log "downloading ${#to_fetch[@]} package(s)"
    privapt_download "$deb_dir" "${to_fetch[@]}" ||
        die "downloading packages failed; the existing image in $out_dir (if any) is unchanged"
fi
debs=()
for s in "${want[@]}"; do
    f=$(deb_file "${s%%=*}" "${s#*=}") || die "download of ${s%%=*} ${s#*=} produced no .deb in $deb_dir"
    debs+=("$f")
done

# ------------------------------------------------------------ build
tmp=$(mktemp -d "$cache_root/.build-$profile.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
kdir=$tmp/kernel
root=$tmp/root
out=$tmp/out
mkdir -p "$kdir" "$root" "$out"

log "unpacking kernel"
dpkg-deb -x "${debs[0]}" "$kdir"
kimage=
for f in "$kdir"/boot/vmlinu[xz]-"$kernel_release" "$kdir"/boot/vmlinu[xz]-* "$kdir"/boot/Image*; do
    [ -f "$f" ] && { kimage=$f; break; }
done
[ -n "$kimage" ] || die "no kernel image (boot/vmlinux-*, boot/vmlinuz-*) in ${debs[0]}"
"$PYTHON" "$here/imagetool.py" kernel "$kimage" "$out/Image" | sed 's/^/build-image: /'

moddir=
for d in "$kdir/usr/lib/modules/$kernel_release" "$kdir/lib/modules/$kernel_release"; do
    [ -d "$d" ] && { moddir=$d; break; }
done
[ -n "$moddir" ] || die "no modules directory for $kernel_release in ${debs[0]}"

log "unpacking ${#pkg_specs[@]} package(s)"
for f in "${debs[@]:1}"; do
    dpkg-deb -x "$f" "$root"
done
for p in "${PRUNE[@]}"; do
    # shellcheck disable=SC2086  # PRUNE entries are globs
    (cd "$root" && rm -rf -- $p)
done

# Debian's merged /usr layout: /bin, /sbin, /lib point into /usr.
mkdir -p "$root/usr/bin" "$root/usr/lib"
for d in bin sbin lib; do
    [ -e "$root/$d" ] || [ -L "$root/$d" ] || ln -s "usr/$d" "$root/$d"
done
if [ ! -e "$root/usr/sbin" ] || [ -z "$(ls -A "$root/usr/sbin")" ]; then
    rmdir "$root/usr/sbin" 2>/dev/null || true
    ln -s bin "$root/usr/sbin"           # nothing else in sbin: one directory
fi

if [ ${#LIBS_NEEDED_BY[@]} -gt 0 ]; then
    "$PYTHON" "$here/imagetool.py" libs "$root" "${LIBS_NEEDED_BY[@]}" | sed 's/^/build-image: /'
fi

busybox=
for f in "$root/usr/bin/busybox" "$root/bin/busybox"; do
    [ -f "$f" ] && [ ! -L "$f" ] && { busybox=$f; break; }
done
if [ -n "$busybox" ]; then
    bb_rel=${busybox#"$root"/}
    applets=$("$PYTHON" "$here/imagetool.py" applets "$busybox")
    n=0
    exists() { [ -e "$1" ] || [ -L "$1" ]; }
    while read -r a; do
        [ -n "$a" ] && [ "$a" != busybox ] || continue
        if ! exists "$root/usr/bin/$a" && ! exists "$root/usr/sbin/$a"; then
            ln -s "../../$bb_rel" "$root/usr/bin/$a"
            n=$((n + 1))
        fi
    done <<< "$applets"
    # Paths the kernel and init use literally, when usr/sbin is a real directory.
    if [ ! -L "$root/usr/sbin" ]; then
        for a in init modprobe switch_root poweroff reboot halt; do
            exists "$root/usr/sbin/$a" || ln -s "../../$bb_rel" "$root/usr/sbin/$a"
        done
    fi
    log "busybox: $n applet links"
fi
[ -e "$root/usr/bin/sh" ] || [ -L "$root/usr/bin/sh" ] || die "the image has no /bin/sh (profile packages: ${PACKAGES[*]})"

for o in "${OVERLAYS[@]}"; do
    [ -d "$here/$o" ] || die "overlay directory guest/$o not found"
    cp -R --preserve=mode,links "$here/$o/." "$root/"
done
install -m 0755 "$here/init" "$root/init"
if [ "$AGENT" = yes ]; then
    # skiff's guest agent (guest/agent/, with src/base's base64 and xxh64): a static
    # riscv64 program, started by /init; skiff-clip is the same program
    # under another name.
    log "building the guest agent with $AGENT_CC"
    "$AGENT_CC" -std=gnu11 -D_GNU_SOURCE -static -O2 -s -Wall -Wextra -Wno-unused-parameter \
        -I "$here/../src/base" -o "$root/usr/bin/skiff-agent" "$here"/agent/*.c \
        "$here/../src/base/base64.c" "$here/../src/base/xxh64.c" 2>"$tmp/agent.log" ||
        { sed 's/^/  /' "$tmp/agent.log" >&2; die "the guest agent did not build"; }
    ln -sf skiff-agent "$root/usr/bin/skiff-clip"
fi
mkdir -p "$root/dev" "$root/proc" "$root/sys" "$root/run" "$root/tmp" "$root/mnt" \
         "$root/root" "$root/newroot" "$root/etc"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
[ -e "$root/etc/mtab" ] || ln -s /proc/self/mounts "$root/etc/mtab"

if [ ${#MODULES[@]} -gt 0 ]; then
    log "resolving ${#MODULES[@]} kernel module(s) and their dependencies"
    keep_opt=()
    [ "$MODULES_COMPRESSED" = keep ] && keep_opt=(--keep-compressed)
    "$PYTHON" "$here/imagetool.py" modules "${keep_opt[@]}" "$moddir" "$root" "${MODULES[@]}" |
        sed 's/^/build-image: /'
fi

log "writing initramfs"
"$PYTHON" "$here/imagetool.py" cpio "$root" "$out/initrd.cpio.gz"
printf '%s\n' "$manifest" > "$out/manifest"

# ------------------------------------------------------------ install
# Each rename is atomic; the manifest goes last, so an interrupted install
# is seen as "not current" and rebuilt next time.
mkdir -p "$out_dir"
rm -f "$out_dir/manifest"
mv -f "$out/Image" "$out_dir/Image"
mv -f "$out/initrd.cpio.gz" "$out_dir/initrd.cpio.gz"
mv -f "$out/manifest" "$out_dir/manifest"

# Keep only the versions just used in the .deb cache.
for s in "${want[@]}"; do
    keep=$(deb_file "${s%%=*}" "${s#*=}")
    for f in "$deb_dir/${s%%=*}_"*.deb; do
        [ -f "$f" ] && [ "$f" != "$keep" ] && rm -f "$f"
    done
done

end_time=$(date +%s)
log "built '$profile' in $((end_time - start_time)) s:"
log "  $out_dir/Image           $(stat -c %s "$out_dir/Image") bytes"
log "  $out_dir/initrd.cpio.gz  $(stat -c %s "$out_dir/initrd.cpio.gz") bytes"
log "  kernel command line: console=ttyS0 (add root=/dev/vda to boot a disk)"

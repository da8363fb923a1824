# The project's private apt configuration, sourced by guest/build-image.sh
# and guest/debian/create.sh: apt-get and apt-cache run against the Debian
# archive the host's apt already uses, for riscv64, with their own sources
# list, state, cache and preferences (all passed with -o) and their own
# APT_CONFIG, so the host's apt setup is never read for anything but its
# Acquire settings and never changed.  Signatures are checked against the
# host's Debian archive keyring.
#
# One apt directory per suite under the cache: <cache>/apt for stable (the
# default guest's), <cache>/apt-<suite> for others, so builds of two suites
# do not rewrite each other's lists.
#
# Callers set PYTHON and here (the guest/ directory) and define die().

PRIVAPT_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PRIVAPT_ARCH=riscv64

# privapt_archive_uri: the archive URI (SKIFF_DEBIAN_MIRROR, else the host's
# apt sources).
privapt_archive_uri() {
    if [ -n "${SKIFF_DEBIAN_MIRROR:-}" ]; then
        echo "$SKIFF_DEBIAN_MIRROR"
    else
        "$PYTHON" "$here/imagetool.py" archive-uri /etc/apt
    fi
}

# privapt_setup CACHE_ROOT ARCHIVE_URI SUITE COMPONENT OFFLINE
# Sets apt_dir, APT_OPTS and APT_CONFIG. With OFFLINE=yes, dies when the
# directory's lists were made for another archive or suite.
privapt_setup() {
    local cache_root=$1 uri=$2 suite=$3 component=$4 offline=$5
    [ -r "$PRIVAPT_KEYRING" ] || die "$PRIVAPT_KEYRING not found; install the debian-archive-keyring package"
    apt_dir=$cache_root/apt
    [ "$suite" = stable ] || apt_dir=$cache_root/apt-$suite
    mkdir -p "$apt_dir/etc/sources.list.d" "$apt_dir/etc/preferences.d" \
             "$apt_dir/etc/trusted.gpg.d" "$apt_dir/state/lists/partial" \
             "$apt_dir/cache/archives/partial"
    # Paths written into the configuration are the real ones (the cache may
    # be reached through a link).
    apt_dir=$(cd -P "$apt_dir" && pwd)
    [ -e "$apt_dir/state/status" ] || : > "$apt_dir/state/status"
    local line="deb [arch=$PRIVAPT_ARCH signed-by=$PRIVAPT_KEYRING] $uri $suite $component"
    if [ "$(cat "$apt_dir/etc/sources.list" 2>/dev/null || true)" != "$line" ]; then
        echo "$line" > "$apt_dir/etc/sources.list"
        if [ "$offline" = yes ]; then
            die "--offline, but the package lists were made for another archive or suite; run once online"
        fi
    fi
    # The host's apt.conf.d is kept out too (its update hooks, cache settings
    # and extra index targets are the host's business): APT_CONFIG names a
    # private main file whose parts directory holds only the host's Acquire
    # settings (proxies, timeouts), copied with apt-config.
    mkdir -p "$apt_dir/etc/apt.conf.d"
    apt-config dump Acquire 2>/dev/null |
        grep -v -e '^Acquire::IndexTargets' -e '^Acquire::Languages' \
        > "$apt_dir/etc/apt.conf.d/50host-acquire" || true
    printf 'Dir::Etc::Main "%s";\nDir::Etc::Parts "%s";\n' \
        "$apt_dir/etc/apt.conf.none" "$apt_dir/etc/apt.conf.d" > "$apt_dir/etc/apt.conf"
    export APT_CONFIG=$apt_dir/etc/apt.conf
    APT_OPTS=(
        -o "APT::Architecture=$PRIVAPT_ARCH"
        -o "APT::Architectures=$PRIVAPT_ARCH"
        -o "Dir::State=$apt_dir/state"
        -o "Dir::State::status=$apt_dir/state/status"
        -o "Dir::Cache=$apt_dir/cache"
        -o "Dir::Cache::pkgcache=pkgcache.bin"
        -o "Dir::Cache::srcpkgcache=srcpkgcache.bin"
        -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
        -o "Dir::Etc::SourceParts=$apt_dir/etc/sources.list.d"
        -o "Dir::Etc::Preferences=$apt_dir/etc/preferences"
        -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
        -o "Dir::Etc::Trusted=$apt_dir/etc/trusted.gpg"
        -o "Dir::Etc::TrustedParts=$apt_dir/etc/trusted.gpg.d"
        -o "Acquire::Languages=none"
        -o "APT::Get::AllowUnauthenticated=false"
    )
}

# privapt_update: refresh the lists; on failure prints apt's words and
# returns 1, or 2 when the suite has no Release file in the archive (a suite
# that does not exist).
privapt_update() {
    if apt-get "${APT_OPTS[@]}" -q --error-on=any update >"$apt_dir/update.log" 2>&1; then
        return 0
    fi
    sed 's/^/  /' "$apt_dir/update.log" >&2
    if grep -q -e 'does not have a Release file' -e '404 *Not Found' "$apt_dir/update.log"; then
        # Nothing worth keeping for a suite the archive does not have.
        privapt_have_lists || rm -rf "$apt_dir"
        return 2
    fi
    return 1
}

# privapt_have_lists: the lists of an earlier update are there.
privapt_have_lists() {
    ls "$apt_dir/state/lists/"*_Packages* >/dev/null 2>&1
}

# privapt_candidate PACKAGE: the version apt would install, or nothing.
privapt_candidate() {
    apt-cache "${APT_OPTS[@]}" show --no-all-versions "$1" 2>/dev/null |
        sed -n 's/^Version: //p' | head -n 1
}

# privapt_kernel_package METAPACKAGE: the linux-image-<release> package the
# metapackage depends on (exactly one).
privapt_kernel_package() {
    apt-cache "${APT_OPTS[@]}" show --no-all-versions "$1" |
        sed -n 's/^Depends: //p' | head -n 1 | tr ',|' '\n\n' | sed 's/(.*//; s/ //g' |
        grep '^linux-image-' | head -n 1 || true
}

# privapt_resolve PACKAGE...: "name version" of every package an
# `apt-get install --no-install-recommends` would install on an empty
# system, sorted; returns 1 (with apt's words on stderr) when it cannot.
privapt_resolve() {
    local sim
    sim=$(apt-get "${APT_OPTS[@]}" -s -q --no-install-recommends install "$@" 2>&1) ||
        { echo "$sim" | sed 's/^/  /' >&2; return 1; }
    echo "$sim" | sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1 \2/p' | LC_ALL=C sort
}

# privapt_deb_file DEB_DIR NAME VERSION: the cached .deb (apt escapes ':' as %3a).
privapt_deb_file() {
    local f
    for f in "$1/${2}_${3//:/%3a}_"*.deb; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}

# privapt_download DEB_DIR NAME=VERSION...: fetch into DEB_DIR; on failure
# prints apt's words and returns 1.  apt writes a download under its final
# name as it comes, so the files go to a directory of their own first and
# only complete ones (all of them, or after a failure those of the size the
# index gives) move into DEB_DIR.
privapt_download() {
    local dir=$1 f name ver want rc=0
    shift
    local part
    part=$(mktemp -d "$dir/.partial.XXXXXX") || return 1
    # (As root, apt downloads as user _apt where _apt can write, and falls
    # back to root with a warning, kept in download.log, where it cannot.)
    chmod 0755 "$part"
    (cd "$part" && apt-get "${APT_OPTS[@]}" -q download "$@") >"$apt_dir/download.log" 2>&1 || rc=1
    if [ "$rc" -ne 0 ]; then
        sed 's/^/  /' "$apt_dir/download.log" >&2
        for f in "$part"/*.deb; do
            [ -f "$f" ] || continue
            name=${f##*/}
            ver=${name#*_}
            ver=${ver%_*}
            name=${name%%_*}
            want=$(apt-cache "${APT_OPTS[@]}" show "$name=${ver//%3a/:}" 2>/dev/null |
                sed -n 's/^Size: //p' | head -n 1)
            [ -n "$want" ] && [ "$(stat -c %s "$f")" = "$want" ] || rm -f "$f"
        done
    fi
    for f in "$part"/*.deb; do
        [ -f "$f" ] && mv -f "$f" "$dir/"
    done
    rm -rf "$part"
    return "$rc"
}

#!/bin/sh
# The second stage of a Debian image (guest/debian/create.sh): runs inside
# skiff as the guest's init (init=/skiff-stage2), on the root file system
# the first stage unpacked, and installs the system with the guest's own
# dpkg, so every maintainer script runs on the guest's RISC-V CPU.
#
# The host hands over a read-only virtio-9p share (tag "stage2"): debs/
# (every .deb, named NNNN_<package>_... in apt's installation order),
# required (Debian's required packages, installed first), settings (suite,
# archive, hostname), authorized_keys, rootfs/ (configuration files) and
# lists/ (the archive's package lists).
#
# Each step prints "skiff-stage2: [N/6] what"; a failing step prints
# "skiff-stage2: FAILED at step N/6 (what): ..." and the guest powers off,
# so the host names the step.  The last line is "skiff-stage2: done in S s".
# The order of the steps is the one Debian's own bootstrap follows: the
# user and base files first, then dpkg, the C library, perl-base and mawk
# alone, then every required package unpacked and configured, then the rest.

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true
export LC_ALL=C LANGUAGE=C LANG=C HOME=/root DPKG_COLORS=never
umask 022
STEPS=6
step_no=0
step_name=
t0=$(cut -d. -f1 /proc/uptime)

say() { echo "skiff-stage2: $*"; }
off() {
    sync
    mount -o remount,ro / 2>/dev/null
    sync
    echo o > /proc/sysrq-trigger
    sleep 60
}
fail() {
    say "FAILED at step $step_no/$STEPS ($step_name): $*"
    off
}
step() {
    step_no=$1
    step_name=$2
    say "[$step_no/$STEPS] $step_name"
}
# run CMD...: runs it, or fails the step naming the command and its status.
run() {
    "$@" || fail "'$*' exited with status $?"
}

S=/run/skiff-stage2
mkdir -p "$S"
mount -t 9p -o trans=virtio,version=9p2000.L,ro stage2 "$S" ||
    { step_name="mount the share"; fail "cannot mount the 9p share 'stage2'"; }
. "$S/settings"

# deb NAME...: the .deb files of these packages, in installation order.
debs_of() {
    for n in "$@"; do
        for f in "$S"/debs/[0-9][0-9][0-9][0-9]_"$n"_*.deb; do
            [ -f "$f" ] && echo "$f"
        done
    done
}

# ------------------------------------------------------------------ 1
step 1 "core packages"
mount -t tmpfs -o nosuid,nodev tmpfs /tmp 2>/dev/null
if [ "$HOST_UID" != 0 ]; then
    # The first stage ran without root: its files belong to the builder.
    run chown -hR 0:0 /usr /etc /var /root /skiff-stage2
fi
# Services are not started while packages are configured.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
# No fsync per unpacked file while the system is built (each would be a
# disk flush through to the host); the end of the second stage syncs once.
echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/skiff-unsafe-io
# No documentation, manual pages or translations: they would take most of
# the unpacking time here; the copyright files stay.
mkdir -p /etc/dpkg/dpkg.cfg.d
cat > /etc/dpkg/dpkg.cfg.d/skiff-nodoc <<'EOF'
# skiff image: no documentation, manual pages or translations (apt-get
# install --reinstall brings a package's back after removing this file)
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF
rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/info/* 2>/dev/null
# Debian's bootstrap order: users and base files, then the package manager,
# the C library, perl-base and awk, each installed alone.
for p in base-passwd base-files dpkg libc6 perl-base mawk; do
    f=$(debs_of "$p")
    [ -n "$f" ] || continue
    say "  installing $p"
    run dpkg --force-depends --install $f
done
[ -e /etc/localtime ] || ln -sf /usr/share/zoneinfo/Etc/UTC /etc/localtime

# ------------------------------------------------------------------ 2
step 2 "unpacking the required packages"
# shellcheck disable=SC2046
run dpkg --force-depends --force-overwrite --skip-same-version --unpack $(debs_of $(cat "$S/required"))

# ------------------------------------------------------------------ 3
step 3 "configuring the required packages"
run dpkg --configure --pending --force-configure-any --force-depends

# ------------------------------------------------------------------ 4
step 4 "installing the other packages"
rest=
for f in "$S"/debs/*.deb; do
    n=${f##*/}
    n=${n#*_}
    n=${n%%_*}
    grep -q -x "$n" "$S/required" || rest="$rest $f"
done
# One package at a time, in apt's installation order (the numbering of the
# files): given them all at once, dpkg unpacks everything before it
# configures anything, and refuses every package whose Pre-Depends is in the
# same batch (systemd on libsystemd-shared, the kernel on linux-base). A
# package whose Depends come later in the order is left unconfigured and
# finished by the --configure -a below; one refused for a Pre-Depends is
# tried again after it.
n_rest=0
for f in $rest; do
    n_rest=$((n_rest + 1))
done
i=0
for f in $rest; do
    i=$((i + 1))
    n=${f##*/}
    n=${n#*_}
    n=${n%%_*}
    say "  ($i/$n_rest) $n"
    dpkg --force-confold --skip-same-version --install "$f" ||
        say "  dpkg --install $n exited with status $?; it is finished below"
done
dpkg --configure -a || say "  dpkg --configure -a exited with status $?; trying the rest again"
for f in $rest; do
    n=${f##*/}
    n=${n#*_}
    n=${n%%_*}
    case "$(dpkg-query -W -f='${Status}' "$n" 2>/dev/null)" in
        "install ok installed") ;;
        *) run dpkg --force-confold --install "$f" ;;
    esac
done
run dpkg --configure -a
dpkg --audit | grep -q . && fail "dpkg --audit: $(dpkg --audit | head -n 5)"

# ------------------------------------------------------------------ 5
step 5 "configuring the system"
echo "$HOSTNAME" > /etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    "$HOSTNAME" > /etc/hosts
printf '# <file system> <mount point> <type> <options> <dump> <pass>\nLABEL=skiff-root / ext4 defaults,errors=remount-ro 0 1\n' \
    > /etc/fstab
# Each VM made from the image gets its own machine id at its first boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
# root logs in on the console without a password; over SSH only with a key
# (sshd refuses empty passwords).
if command -v passwd >/dev/null; then
    run passwd -d root
fi
if [ -f "$S/authorized_keys" ]; then
    install -d -m 0700 /root/.ssh
    install -m 0600 "$S/authorized_keys" /root/.ssh/authorized_keys
fi
# apt reaches the archive the host uses, by the suite's code name, with its
# lists as the host saw them so `apt-get install` works before an update.
[ -d /etc/apt/sources.list.d ] && rm -f /etc/apt/sources.list &&
cat > /etc/apt/sources.list.d/debian.sources <<EOF
Types: deb
URIs: $ARCHIVE
Suites: $CODENAME
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
if [ -d "$S/lists" ]; then
    for f in "$S"/lists/*; do
        [ -f "$f" ] || continue
        b=${f##*/}
        cp "$f" "/var/lib/apt/lists/$(echo "$b" | sed "s/_dists_${SUITE}_/_dists_${CODENAME}_/")"
    done
fi
if [ "$MINIMAL" = no ]; then
    run cp -R "$S/rootfs/." /
    run systemctl enable systemd-networkd.service systemd-resolved.service
    ln -sf ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
    # The host's SSH keys are made at each VM's first boot (see
    # skiff-ssh-keygen.service), not once for every VM of the image.
    rm -f /etc/ssh/ssh_host_*
    run systemctl enable skiff-ssh-keygen.service
fi

# ------------------------------------------------------------------ 6
step 6 "cleaning up"
rm -f /usr/sbin/policy-rc.d /etc/dpkg/dpkg.cfg.d/skiff-unsafe-io
sync
apt-get clean 2>/dev/null
rm -rf /var/log/*.log /var/cache/debconf/*-old /var/lib/dpkg/*-old /tmp/* 2>/dev/null
umount /tmp 2>/dev/null
umount "$S"
rm -f /skiff-stage2
# Freed blocks go back to the host, so the qcow2 copy leaves them out.
fstrim -v / 2>/dev/null || true
say "done in $(( $(cut -d. -f1 /proc/uptime) - t0 )) s"
off

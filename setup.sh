#!/bin/bash
# From nothing to a guest shell: installs the build and runtime dependencies
# (Debian packages), builds skiff, builds the default guest image into the
# user's cache directory, and boots it. Quit the guest with Ctrl-A x.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release
ninja -C build
guest/build-image.sh
if [ "${1:-}" = "--no-boot" ]; then
    echo "setup: done; boot the guest with ./build/src/cli/skiff run"
    exit 0
fi
echo "setup: booting the default guest (Ctrl-A x quits)"
exec ./build/src/cli/skiff run

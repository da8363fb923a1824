#!/bin/bash
# The whole test suite: installs what it needs, builds skiff (and a sanitizer
# build and a ThreadSanitizer build), builds the default guest, then runs
# under pytest the unit tests, the engine's differential checks (short run),
# the integration tests that boot the guest, the sanitizer build's unit tests
# plus one guest boot, and the TSan build's threaded unit tests plus one SMP
# guest boot. The last line is pytest's summary.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
# An existing build directory is configured again: the tools some tests need
# (cross compiler, qemu-riscv64, dtc) are looked up at configure time, and
# deps.sh may have just installed them.
setup() { local dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then meson setup --reconfigure "$dir" "$@"; else meson setup "$dir" "$@"; fi; }
setup build --buildtype=release
ninja -C build
setup build-asan --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false
ninja -C build-asan
# ThreadSanitizer: the threaded unit tests and one SMP boot
# (tests/test_meson_suites.py's THREADED, tests/test_sanitizer_boot.py).
setup build-tsan --buildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false
ninja -C build-tsan
guest/build-image.sh
export SKIFF_BUILD=build SKIFF_ASAN_BUILD=build-asan SKIFF_TSAN_BUILD=build-tsan SKIFF_REQUIRE_GUEST=1
# A UBSan report ends the sanitizer build's process (by default UBSan prints
# and goes on), so a test that runs it fails rather than passing over it.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# tests/unit holds C tests (run through meson by tests/test_meson_suites.py)
# and the qcow2 interop script meson runs with its tool built; not collected
# here a second time.
exec /usr/bin/python3 -m pytest -p no:cacheprovider -q -rs --ignore=tests/unit \
    tests guest/test_imagetool.py bench/test_compiled.py bench/test_python_row.py bench/test_cpu_row.py \
    bench/test_wide.py "$@"

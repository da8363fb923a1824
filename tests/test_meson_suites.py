"""Runs every test that meson knows as a pytest case, so one pytest summary
covers the whole suite: from the normal build, the unit tests, the engine's
differential ISA checks (suite "isa") and the qcow2 interop script; from the
sanitizer (ASan + UBSan) build, the unit tests (the default suite); from the
ThreadSanitizer build, the unit tests that run threads (THREADED: harts on
threads of their own, devices' I/O threads, the QGA client's reader), where
any report is a failure (TSan exits 66).

meson counts a skipped test (exit status 77) as a success, and a test that
meson.build did not register (a tool missing when the build directory was
configured) as nothing at all. Here both are failures: each case must end
"OK" with nothing skipped, and the tests named in REQUIRED must be
registered in each build."""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Tests that need tools found at configure time (the cross compiler,
# qemu-riscv64, qemu-img, dtc): the normal build must register every one.
# The unit tests the sanitizer build runs are the normal build's default
# suite, so it must have those too.
REQUIRED_ISA = ["isa-runner-elf", "isa-progs", "isa-progs-sv39", "isa-coverage",
                "isa-random-short", "isa-encodings", "fpu-diff"]
REQUIRED_UNIT = ["machine_fdt", "engine", "mmu", "virtio", "disk", "qcow2_interop", "api_config"]
# The unit tests whose code runs on several threads: SMP harts and a
# thread posting interrupts (engine, engine-jit: translated code is not
# instrumented, its C helpers and the executor are), every virtio device's
# I/O thread against the test's driver, 9p's workers, the snapshot of
# devices with running threads, the QGA client's reader thread, the API
# socket's pool of threads.
THREADED = ["engine", "engine-jit", "virtio", "virtio_blk", "virtio_console", "virtio_input",
            "virtio_9p", "virtio_net", "net_user", "virtio_vsock", "virtio_balloon", "snapshot", "mmds",
            "qga", "http"]


def _builds():
    """(build directory, which tests) pairs that exist: every suite (None),
    the default suite ("default") or the threaded list."""
    out = []
    for var, default, which in (("SKIFF_BUILD", "build", None),
                                ("SKIFF_ASAN_BUILD", "build-asan", "default"),
                                ("SKIFF_TSAN_BUILD", "build-tsan", THREADED)):
        path = os.path.join(ROOT, os.environ.get(var, default))
        if os.path.exists(os.path.join(path, "build.ninja")):
            out.append((path, which))
    return out


def _tests(build, which):
    r = subprocess.run(["meson", "test", "-C", build, "--list"], capture_output=True,
                       text=True, check=True)
    names = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("ninja") or " / " not in line:
            continue
        project_suite, name = line.split(" / ", 1)
        if which is None or (which == "default" and ":" not in project_suite) or \
                (isinstance(which, list) and name in which):
            names.append(name)
    return names


BUILDS = _builds()
LISTED = {b: _tests(b, which) for b, which in BUILDS}
CASES = [(b, t) for b, _ in BUILDS for t in LISTED[b]]


def test_meson_found_tests():
    """A suite that runs nothing must not pass."""
    assert CASES, "no meson build with tests found (run meson setup build first)"


@pytest.mark.parametrize("build,which", BUILDS, ids=[os.path.basename(b) for b, _ in BUILDS])
def test_required_tests_registered(build, which):
    want = which if isinstance(which, list) else REQUIRED_UNIT + (REQUIRED_ISA if which is None else [])
    missing = [t for t in want if t not in LISTED[build]]
    assert not missing, (f"{build} does not register {missing}: a tool they need was missing "
                         f"when it was configured; install them (scripts/deps.sh) and run "
                         f"meson setup --reconfigure {build}")


def meson_summary(out):
    """{'Ok': n, 'Skipped': n, ...} from meson test's closing summary."""
    return {k: int(v) for k, v in re.findall(r"^(Ok|Fail|Skipped|Timeout|Expected Fail|"
                                             r"Unexpected Pass):\s+(\d+)", out, re.M)}


@pytest.mark.parametrize("build,name", CASES,
                         ids=[f"{os.path.basename(b)}:{t}" for b, t in CASES])
def test_meson(build, name):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env.setdefault("TSAN_OPTIONS", "second_deadlock_stack=1")
    r = subprocess.run(["meson", "test", "-C", build, "--no-rebuild", "--print-errorlogs", name],
                       capture_output=True, text=True, env=env)
    log = r.stdout[-6000:] + r.stderr[-2000:]
    assert r.returncode == 0, log
    counts = meson_summary(r.stdout)
    assert counts.get("Skipped", 0) == 0, f"{name} skipped itself (exit status 77): a skip is a failure here\n{log}"
    assert counts.get("Ok") == 1, f"{name}: meson did not report exactly one test passed ({counts})\n{log}"

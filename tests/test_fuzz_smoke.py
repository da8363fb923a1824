"""A short run of every libFuzzer target (tests/fuzz/fuzz_NAME.c, built by
tests/fuzz/meson.build): the guest- and user-facing parsers (virtqueue
walker, qcow2 metadata, 9p messages, API requests, agent replies, snapshot
files, MMDS frames, network offload headers, vsock packets and its receive
path, virtio-mmio register sequences, console control messages, the
kernel/initrd loader, skiff run's device options and its console's Ctrl-A
escapes) each get SKIFF_FUZZ_SECONDS (default 12) of
fuzzing from their seed corpus. A crash, a leak, a sanitizer report or a
run that executed nothing fails. Longer runs: tests/fuzz/run.sh NAME
SECONDS (docs/testing.md lists what the long runs found).

The targets are built with clang in the meson build directory
$SKIFF_FUZZ_BUILD (default build-fuzz-smoke, configured -Dfuzz=true by
tests/fuzz/build.sh), separate from build-fuzz so a long on-demand corpus
is neither used nor disturbed here. Every ordinary build links the same
targets with a replay main() (fuzz-replay-NAME), so one that stops linking
stops the build first."""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, os.environ.get("SKIFF_FUZZ_BUILD", "build-fuzz-smoke"))
# 12 s each keeps the 14 targets near what 7 took at 20 s each (168 s, 140 s).
SECONDS = int(os.environ.get("SKIFF_FUZZ_SECONDS", "12"))


def _targets():
    names = []
    for f in sorted(os.listdir(os.path.join(ROOT, "tests", "fuzz"))):
        if f.startswith("fuzz_") and f.endswith(".c"):
            names.append(f[len("fuzz_"):-len(".c")])
    return names


TARGETS = _targets()


@pytest.fixture(scope="module")
def built():
    """Builds every target (ninja rebuilds what changed since the last
    build) and starts each from its seed corpus only."""
    if shutil.which("clang") is None:
        pytest.fail("clang is not installed (scripts/deps.sh installs clang and "
                    "libclang-rt-14-dev)", pytrace=False)
    shutil.rmtree(os.path.join(OUT, "corpus"), ignore_errors=True)
    shutil.rmtree(os.path.join(OUT, "crashes"), ignore_errors=True)
    r = subprocess.run([os.path.join(ROOT, "tests", "fuzz", "build.sh"), OUT],
                       capture_output=True, text=True)
    assert r.returncode == 0, "building the fuzz targets failed:\n" + r.stdout + r.stderr[-4000:]
    return OUT


def test_targets_listed():
    assert len(TARGETS) >= 3, TARGETS


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_briefly(built, name):
    env = dict(os.environ, FUZZ_OUT=built)
    r = subprocess.run([os.path.join(ROOT, "tests", "fuzz", "run.sh"), name, str(SECONDS)],
                       capture_output=True, text=True, env=env, timeout=SECONDS * 10 + 120)
    log = r.stdout + r.stderr
    assert r.returncode == 0, f"fuzz target {name} failed:\n{log[-6000:]}"
    m = re.search(r"Done (\d+) runs in", log)
    assert m and int(m.group(1)) > 0, f"fuzz target {name} ran nothing:\n{log[-3000:]}"

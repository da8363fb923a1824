"""A short run of every libFuzzer target in tests/fuzz/targets.txt: the guest-
and user-facing parsers (virtqueue walker, qcow2 metadata, 9p messages, API
requests) each get SKIFF_FUZZ_SECONDS (default 20) of fuzzing from their seed
corpus. A crash, a leak, a sanitizer report or a run that executed nothing
fails. Longer runs: tests/fuzz/run.sh NAME SECONDS.

The targets are built with clang into $SKIFF_FUZZ_BUILD (default
build-fuzz-smoke), separate from build-fuzz so a long on-demand corpus is
neither used nor disturbed here."""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, os.environ.get("SKIFF_FUZZ_BUILD", "build-fuzz-smoke"))
SECONDS = int(os.environ.get("SKIFF_FUZZ_SECONDS", "20"))


def _targets():
    names = []
    with open(os.path.join(ROOT, "tests", "fuzz", "targets.txt")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                names.append(line.split()[0])
    return names


TARGETS = _targets()


@pytest.fixture(scope="module")
def built():
    """Builds every target afresh (the sources may have changed since the
    last build) and starts each from its seed corpus only."""
    if shutil.which("clang") is None:
        pytest.fail("clang is not installed (scripts/deps.sh installs clang and "
                    "libclang-rt-14-dev)", pytrace=False)
    shutil.rmtree(OUT, ignore_errors=True)
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

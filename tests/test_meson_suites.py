"""Runs every test that meson knows as a pytest case, so one pytest summary
covers the whole suite: from the normal build, the unit tests, the engine's
differential ISA checks (suite "isa") and the qcow2 interop script; from the
sanitizer (ASan + UBSan) build, the unit tests (the default suite)."""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _builds():
    """(build directory, all suites?) pairs that exist."""
    out = []
    for var, default, all_suites in (("SKIFF_BUILD", "build", True),
                                     ("SKIFF_ASAN_BUILD", "build-asan", False)):
        path = os.path.join(ROOT, os.environ.get(var, default))
        if os.path.exists(os.path.join(path, "build.ninja")):
            out.append((path, all_suites))
    return out


def _tests(build, all_suites):
    r = subprocess.run(["meson", "test", "-C", build, "--list"], capture_output=True,
                       text=True, check=True)
    names = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("ninja") or " / " not in line:
            continue
        project_suite, name = line.split(" / ", 1)
        if all_suites or ":" not in project_suite:
            names.append(name)
    return names


CASES = [(b, t) for b, all_suites in _builds() for t in _tests(b, all_suites)]


def test_meson_found_tests():
    """A suite that runs nothing must not pass."""
    assert CASES, "no meson build with tests found (run meson setup build first)"


@pytest.mark.parametrize("build,name", CASES,
                         ids=[f"{os.path.basename(b)}:{t}" for b, t in CASES])
def test_meson(build, name):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    r = subprocess.run(["meson", "test", "-C", build, "--no-rebuild", "--print-errorlogs", name],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]

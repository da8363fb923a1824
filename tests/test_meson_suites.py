"""Runs every test that meson knows (unit tests, the engine's differential
ISA checks, fuzz smoke runs) as a pytest case, once for the normal build and
once for the sanitizer (ASan + UBSan) build, so one pytest summary covers the
whole suite."""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _builds():
    out = []
    for var, default in (("SKIFF_BUILD", "build"), ("SKIFF_ASAN_BUILD", "build-asan")):
        path = os.path.join(ROOT, os.environ.get(var, default))
        if os.path.exists(os.path.join(path, "build.ninja")):
            out.append(path)
    return out


def _tests(build):
    r = subprocess.run(["meson", "test", "-C", build, "--list"], capture_output=True,
                       text=True, check=True)
    names = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if line and not line.startswith("ninja"):
            # "project:suite / name" or plain name
            names.append(line.split(" / ")[-1])
    return names


CASES = [(b, t) for b in _builds() for t in _tests(b)]


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

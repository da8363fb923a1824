"""Integration tests run again against the sanitizer build (ASan + UBSan,
leaks detected), the one run-tests.sh makes: ones that boot no guest and
so take seconds, yet drive the code a user's input reaches first: the
per-VM API refusing bad requests and bad options before any guest runs;
and skiffd with tiny spinning guests: its jailed VMs started, snapshot,
restored, a drive swapped (brought into the jail), VMs adopted after a
restart, two VMs under their own uids, an image VM's overlay moved from
an older skiffd's place (about 30 s at load 35 here; the whole test_skiffd_lifecycle.py
took 100-240 s at load 30-50, too long for this list). Under the
sanitizer build a skiffd VM's start was once ended by the sandbox (a
device thread confined before AddressSanitizer's start code in it asked
for the CPU affinity; sandbox_tables.c's sanitizer rows now allow it),
and every jailed VMM's outer process had LeakSanitizer fail at exit (its
PID namespace took no new process; jail.c now leaves it).

Each selection runs in its own pytest with SKIFF_BUILD pointing at the
sanitizer build, so every skiff, skiffd and VMM process it starts is a
sanitized one; the sanitizers write their reports into a directory of
their own (log_path), which must stay empty, and the run must pass.
(tests/test_sanitizer_boot.py boots the default guest the same way.)
"""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SELECTIONS = {
    "api-bad-input": ["tests/integration/test_api.py::test_api_before_start_and_bad_input",
                      "tests/integration/test_api.py::test_bad_options"],
    "skiffd-jail": ["tests/integration/test_skiffd_jail.py::test_a_skiffd_vm_is_jailed",
                    "tests/integration/test_skiffd_jail.py::test_two_jailed_vms_cannot_reach_each_other",
                    "tests/integration/test_skiffd_jail.py::test_an_image_vm_jail_holds_none_of_skiffds_files",
                    "tests/integration/test_skiffd_lifecycle.py::"
                    "test_a_drive_swapped_in_a_running_vm_stays_in_its_definition"],
}


@pytest.mark.parametrize("name", sorted(SELECTIONS))
def test_under_sanitizers(name):
    build = os.path.join(ROOT, os.environ.get("SKIFF_ASAN_BUILD", "build-asan"))
    if not os.path.exists(os.path.join(build, "src", "cli", "skiff")):
        pytest.fail(f"no sanitizer build at {build} (run-tests.sh makes it)")
    logdir = tempfile.mkdtemp(prefix="skiff-asan-it-")
    env = dict(os.environ, SKIFF_BUILD=build,
               ASAN_OPTIONS=f"log_path={logdir}/asan:detect_leaks=1",
               UBSAN_OPTIONS=f"log_path={logdir}/ubsan:print_stacktrace=1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x",
                        *SELECTIONS[name]], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=1200)
    reports = []
    for f in sorted(os.listdir(logdir)):
        with open(os.path.join(logdir, f), errors="replace") as fh:
            reports.append(f"--- {f}\n{fh.read()}")
    shutil.rmtree(logdir, ignore_errors=True)
    assert not reports, "sanitizer reports:\n" + "\n".join(reports)[:8000]
    assert r.returncode == 0, f"pytest under the sanitizer build failed:\n{r.stdout[-6000:]}{r.stderr[-2000:]}"
    assert " passed" in r.stdout and " skipped" not in r.stdout, r.stdout[-2000:]

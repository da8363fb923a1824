"""Unit tests of the python row (bench/python_row.py): parsing pywork.py's
output, the rate past start-up, the script's upload over the guest's shell,
and the workload's own promise (the same checksum for the same rounds, any
repeat).  Fast and offline: no guest, no VMM; the workload runs for one
round under the Python running the tests.
Run: python3 -m pytest bench/test_python_row.py
"""

import base64
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import python_row  # noqa: E402


def test_parse_pywork():
    assert python_row.parse_pywork("noise\npywork 20 10 43cf6fa7e9598ae5\n") == (20, 10, "43cf6fa7e9598ae5")
    with pytest.raises(ValueError, match="no 'pywork ROUNDS REPEAT CHECKSUM' line"):
        python_row.parse_pywork("Traceback (most recent call last):\nMemoryError\n")
    with pytest.raises(ValueError):
        python_row.parse_pywork("pywork 20 1 43cf6fa7\n")     # a checksum cut short


def test_rate_counts_rounds_past_start_up_and_records_the_checksum():
    """0.4 s of start-up and 0.1 s a round: 10 rounds per CPU second; a
    native run's repeats count as rounds done."""
    calls, got, checks = [], {}, []

    def run(n):
        calls.append(n)
        repeat = 10 if n > 1 else 1
        return f"pywork {n} {repeat} 00000000000000ab\n", 0.4 + 0.1 * n * repeat
    cpu = python_row.PythonRow().record(lambda k, v: got.__setitem__(k, v), checks, "native",
                                        "test", 20, run)
    assert calls == [1, 1, 20]
    assert got["python.rate"] == pytest.approx(10.0)
    assert got["python.base"] == pytest.approx(0.5)
    assert cpu == pytest.approx(20.4)
    assert checks == [("python3 pywork.py 20: checksum", "native", "00000000000000ab")]


def test_rate_refuses_a_run_that_did_less():
    def run(n):
        return "pywork 1 1 00000000000000ab\n", 1.0 + n
    with pytest.raises(ValueError, match="did 1 and 1 bogo ops"):
        python_row.PythonRow().record(lambda k, v: None, [], "skiff", "test", 20, run)


def test_upload_lines_are_short_and_decode_to_the_script(tmp_path):
    with open(python_row.SCRIPT) as f:
        text = f.read()
    cmds = python_row.upload_cmds(text, "/tmp/bench/pywork.py")
    assert all(len(c) < 400 for c in cmds)      # the guest shell's line limit (rows.Session)
    assert cmds[0] == ": > /tmp/bench/pywork.py.b64"
    assert cmds[-1].startswith("busybox base64 -d /tmp/bench/pywork.py.b64 > /tmp/bench/pywork.py")
    pieces = [c.split()[1] for c in cmds[1:-1]]
    assert all(c.split()[2:] == [">>", "/tmp/bench/pywork.py.b64"] for c in cmds[1:-1])
    assert base64.b64decode("".join(pieces)).decode() == text


def _pywork(*args):
    return subprocess.run([sys.executable, "-I", python_row.SCRIPT, *args], capture_output=True,
                          text=True, timeout=300)


def test_pywork_checksum_is_the_same_for_every_repeat():
    one = _pywork("1")
    two = _pywork("1", "2")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    r1, r2 = python_row.parse_pywork(one.stdout), python_row.parse_pywork(two.stdout)
    assert (r1[0], r1[1], r2[0], r2[1]) == (1, 1, 1, 2)
    assert r1[2] == r2[2]
    other = python_row.parse_pywork(_pywork("2").stdout)
    assert other[2] != r1[2]        # the rounds are in the checksum


def test_pywork_refuses_bad_arguments():
    for args in ((), ("0",), ("x",), ("1", "2", "3")):
        p = _pywork(*args)
        assert p.returncode == 2 and "usage: pywork.py" in p.stderr


def test_command_line():
    cmd = python_row.pywork_cmd("python3", "/tmp/bench/pywork.py", 20, 1, "/tmp/bench/out")
    assert cmd == "python3 -I /tmp/bench/pywork.py 20 1 > /tmp/bench/out 2>&1"

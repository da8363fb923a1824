"""Unit tests of the compiled rows' output parsing and arithmetic
(bench/compiled.py), on output in the shape 7-Zip and stress-ng print it.
Fast and offline: no guest, no VMM.  Run: python3 -m pytest bench/test_compiled.py
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compiled  # noqa: E402

SEVENZIP = """
7-Zip 25.01 (riscv64) : Copyright (c) 1999-2025 Igor Pavlov : 2025-08-03
 64-bit locale=C.UTF-8 Threads:1 OPEN_MAX:1024

 mt1 tic=20
1T CPU Freq (MHz):   526   646   499   434   489   473   483

RAM size:    1000 MB,  # CPU hardware threads:   1
RAM usage:    437 MB,  # Benchmark threads:      1

                       Compressing  |                  Decompressing
Dict     Speed Usage    R/U Rating  |      Speed Usage    R/U Rating
         KiB/s     %   MIPS   MIPS  |      KiB/s     %   MIPS   MIPS

22:        183   100    178    178  |       2718   100    232    232
23:        151   100    155    155  |       2281   100    197    197
24:        164   100    177    177  |       3522   100    309    309
25:        150    99    160    159  |       3000    99    250    249
----------------------------------  | ------------------------------
Avr:       162   100    168    167  |       2880   100    247    246
Tot:             100    207    206
"""

STRESSNG = """stress-ng: info:  [301] dispatching hogs: 1 qsort
stress-ng: metrc: [301] stressor       bogo ops real time  usr time  sys time   bogo ops/s     bogo ops/s CPU used per       RSS Max
stress-ng: metrc: [301]                           (secs)    (secs)    (secs)   (real time) (usr+sys time) instance (%)          (KB)
stress-ng: metrc: [301] qsort                 4      7.04      6.92      0.05         0.57           0.57        98.99         14036
stress-ng: metrc: [301] miscellaneous metrics:
stress-ng: metrc: [301] qsort            5620178.39 qsort comparisons per sec (harmonic mean of 1 instance)
stress-ng: info:  [301] passed: 1: qsort (1)
"""


def test_sevenzip_totals():
    r = compiled.parse_sevenzip(SEVENZIP)
    assert r["enc"] == (100, 168, 167)
    assert r["dec"] == (100, 247, 246)
    assert r["tot"] == (100, 207, 206)
    assert r["dicts"] == [22, 23, 24, 25]


def test_sevenzip_bad_output_is_an_error():
    with pytest.raises(ValueError, match="no Avr:/Tot:"):
        compiled.parse_sevenzip("ERROR: Can't allocate required memory!\n")
    with pytest.raises(ValueError, match="unexpected 7-Zip totals"):
        compiled.parse_sevenzip(SEVENZIP.replace("Tot:             100", "Tot:"))


def test_sevenzip_rating_scaled_to_host_cpu():
    """A run that took 100 s on its clock but got 50 s of host CPU did its
    work at twice the rating it printed, per CPU second."""
    got, checks = {}, []
    compiled.SevenZipRow().record(lambda k, v: got.__setitem__(k, v), "skiff", SEVENZIP,
                                  100.0, 50.0, checks)
    assert got["7zip.enc"] == pytest.approx(334)
    assert got["7zip.dec"] == pytest.approx(492)
    assert got["7zip.tot"] == pytest.approx(412)
    assert got["7zip.raw"] == 206 and got["7zip.cpu"] == 50.0
    assert checks == [("7-Zip benchmark: dictionaries tested (log2)", "skiff", "22 23 24 25")]
    with pytest.raises(ValueError):
        compiled.SevenZipRow().record(lambda k, v: None, "skiff", SEVENZIP, 100.0, 0.0, [])


def test_sevenzip_native_uses_its_own_cpu_clock():
    """Natively 7-Zip's R/U column (rating per CPU second of its process)
    is taken as it is, whatever the wall clock did."""
    got = {}
    compiled.SevenZipRow().record(lambda k, v: got.__setitem__(k, v), "native", SEVENZIP,
                                  100.0, 50.0, [], own_cpu=True)
    assert (got["7zip.enc"], got["7zip.dec"], got["7zip.tot"]) == (168, 247, 207)
    assert got["7zip.raw"] == 206


def test_stressng_bogo_ops():
    assert compiled.parse_stressng(STRESSNG, "qsort") == 4
    with pytest.raises(ValueError, match="no metrics line for stressor cpu"):
        compiled.parse_stressng(STRESSNG, "cpu")


def test_stressng_command_fixes_the_work():
    st = next(s for s in compiled.STRESSORS if s.key == "int64")
    cmd = st.cmd(300, "/tmp/x")
    assert "--cpu-method int64" in cmd and "--cpu-ops 300" in cmd
    assert "--seed 1" in cmd and "--verify" in cmd and "--metrics" in cmd
    assert {s.kind for s in compiled.STRESSORS} == {"cpu", "matrix", "hash", "qsort"}


def test_stressng_rate_leaves_out_start_up():
    """0.5 s of start-up and 10 ms per operation: 100 ops per CPU second,
    whatever the start-up costs; 1 op runs twice (warm-up) before n."""
    calls = []

    def run(ops):
        calls.append(ops)
        return ops, 0.5 + 0.01 * ops
    rate, cpu, base, done = compiled.StressNgRow.rate("test", 300, run)
    assert rate == pytest.approx(100.0)
    assert (cpu, base, done) == (pytest.approx(3.5), pytest.approx(0.51), 300)
    assert calls == [1, 1, 300]
    # The ops stress-ng reports count (its matrix stressor does 2 for 1).
    rate, _, _, _ = compiled.StressNgRow.rate("test", 10, lambda ops: (max(ops, 2), 0.5 + 0.01 * max(ops, 2)))
    assert rate == pytest.approx(100.0)
    with pytest.raises(ValueError, match="did 1 and 299 bogo ops"):
        compiled.StressNgRow.rate("test", 300, lambda ops: (min(ops, 299), 1.0 + ops))
    with pytest.raises(ValueError, match="too few operations"):
        compiled.StressNgRow.rate("test", 3, lambda ops: (ops, 1.0))

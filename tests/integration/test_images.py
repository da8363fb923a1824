"""skiff running tiny hand-made RISC-V Images (see rvimage.py) instead of
Linux: the guest's end states, each tied to skiff's exit status.

  - a hart that traps into an unfetchable stvec: exit status 2, and a
    report with the pc, the cause and the word "died";
  - "hi" printed through SBI (legacy putchar, and DBCN console_write),
    then SBI SRST shutdown: "hi" on the console, exit status 0;
  - SRST shutdown with reason "system failure", or the syscon failure code:
    exit status 1.

No default guest image needed; each run takes well under a second.
"""
import re
import shutil
import subprocess

import pytest

import rvimage

RUN_TIMEOUT = 30


def run_image(skiff_bin, tmp_path, blob, *extra):
    img = tmp_path / "tiny.Image"
    img.write_bytes(blob)
    try:
        return subprocess.run([skiff_bin, "run", "--kernel", str(img), *extra],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"skiff did not exit within {RUN_TIMEOUT} s running {img}; "
                    f"stdout {e.stdout!r}, stderr {e.stderr!r}")


def describe(r):
    return (f"exit status {r.returncode}\nstdout: {r.stdout.decode(errors='replace')!r}\n"
            f"stderr: {r.stderr.decode(errors='replace')!r}")


@pytest.mark.parametrize("program", ["crash", "putchar", "dbcn", "echo", "syscon-fail"])
def test_encodings_match_gnu_as(tmp_path, program):
    """The hand encodings agree with the cross assembler (when installed)."""
    asm = shutil.which("riscv64-linux-gnu-as")
    objcopy = shutil.which("riscv64-linux-gnu-objcopy")
    if not asm or not objcopy:
        pytest.skip("riscv64-linux-gnu-as/objcopy not installed (binutils-riscv64-linux-gnu)")
    if program == "crash":
        code = rvimage.prog_stvec_then_illegal()
    elif program == "putchar":
        code = rvimage.prog_putchar_then_shutdown()
    elif program == "echo":
        code = rvimage.prog_uart_echo()
    elif program == "syscon-fail":
        code = rvimage.prog_syscon_fail(0x1234)
    else:
        code, _ = rvimage.prog_dbcn_write_then_shutdown()
    src = tmp_path / "p.S"
    src.write_text(rvimage.asm_text(code))
    obj, binf = tmp_path / "p.o", tmp_path / "p.bin"
    subprocess.run([asm, "-march=rv64g", "-mno-relax", "-o", str(obj), str(src)], check=True)
    subprocess.run([objcopy, "-O", "binary", "-j", ".text", str(obj), str(binf)], check=True)
    got = binf.read_bytes()
    mine = rvimage.image(code)
    assert got[:4] == mine[:4], f"header jump: as {got[:4].hex()} vs {mine[:4].hex()}"
    for k, insn in enumerate(code):
        off = rvimage.HEADER_SIZE + 4 * k
        assert got[off:off + 4] == mine[off:off + 4], \
            f"{insn.text}: as gives {got[off:off + 4][::-1].hex()}, rvimage {insn.word:08x}"


def test_crash_is_reported_with_status_2(skiff_bin, tmp_path):
    stvec = 0x1000  # below the first device (syscon at 0x100000): nothing there
    r = run_image(skiff_bin, tmp_path, rvimage.image(rvimage.prog_stvec_then_illegal(stvec)))
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 2, "a hart that cannot go on must end skiff with status 2\n" + describe(r)
    assert "died" in err, "the crash report does not say the guest died\n" + describe(r)
    # The hart dies fetching the handler: pc = stvec, cause 1 (instruction
    # access fault, privileged spec table "Supervisor cause register values").
    assert f"pc 0x{stvec:016x}" in err, f"the report does not give pc {stvec:#x}\n" + describe(r)
    assert "cause 1" in err, "the report does not give cause 1 (instruction access fault)\n" + describe(r)
    # The trap that led there: the illegal instruction (scause 2) at its pc.
    code = rvimage.prog_stvec_then_illegal(stvec)
    bad_pc = rvimage.LOAD_ADDR + rvimage.HEADER_SIZE + 4 * [i.word for i in code].index(0)
    assert re.search(rf"scause 0x2\b.*\b0x0*{bad_pc:x}\b", err), \
        f"the report does not show the illegal instruction (scause 0x2) at {bad_pc:#x}\n" + describe(r)


@pytest.mark.parametrize("how", ["legacy-putchar", "dbcn-write"])
def test_sbi_console_then_shutdown_exits_0(skiff_bin, tmp_path, how):
    if how == "legacy-putchar":
        blob = rvimage.image(rvimage.prog_putchar_then_shutdown(b"hi\n"))
    else:
        code, data = rvimage.prog_dbcn_write_then_shutdown(b"hi\n")
        blob = rvimage.image(code, data)
    r = run_image(skiff_bin, tmp_path, blob)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, "SRST shutdown (reason 0) must end skiff with status 0\n" + describe(r)
    assert out.replace("\r\n", "\n") == "hi\n", "console output should be exactly 'hi\\n'\n" + describe(r)


def test_sbi_shutdown_with_failure_exits_1(skiff_bin, tmp_path):
    blob = rvimage.image(rvimage.prog_putchar_then_shutdown(
        b"bye\n", reason=rvimage.SRST_REASON_SYSTEM_FAILURE))
    r = run_image(skiff_bin, tmp_path, blob)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 1, "SRST shutdown with reason 1 (system failure) must give status 1\n" + describe(r)
    assert "bye" in r.stdout.decode(errors="replace"), describe(r)
    assert "failure" in err, "skiff does not say the guest reported a failure\n" + describe(r)
    # The guest gave SRST reason 1; a report of "failure 0" names a code the
    # guest never gave (skiff prints the syscon's failure code here).
    assert "failure 0" not in err, \
        "the failure report gives code 0, but the guest gave SRST reason 1\n" + describe(r)


def test_syscon_failure_code_exits_1(skiff_bin, tmp_path):
    """The power-control register's failure value (0x3333 | code << 16, the
    SiFive test finisher's, which a guest's own test code writes): exit
    status 1 and a message that gives the guest's code."""
    r = run_image(skiff_bin, tmp_path, rvimage.image(rvimage.prog_syscon_fail(0x1234)))
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 1, "the syscon failure code must end skiff with status 1\n" + describe(r)
    assert "failure" in err and "syscon" in err and "4660" in err, \
        "skiff does not report the syscon failure and its code (0x1234 = 4660)\n" + describe(r)


def test_multi_hart_tiny_image_shuts_down(skiff_bin, tmp_path):
    """Secondary harts stay stopped (SBI HSM) until started: a 4-hart VM
    running the putchar program prints 'hi' once and exits 0."""
    r = run_image(skiff_bin, tmp_path, rvimage.image(rvimage.prog_putchar_then_shutdown()),
                  "--cpus", "4")
    assert r.returncode == 0, describe(r)
    assert r.stdout.decode(errors="replace").replace("\r\n", "\n") == "hi\n", describe(r)


@pytest.mark.parametrize("var", ["SKIFF_JIT_DUMP", "SKIFF_JIT_PERFMAP"])
def test_jit_debug_outputs_under_the_sandbox(skiff_bin, tmp_path, monkeypatch, var):
    """The JIT's debugging outputs work with the sandbox on (the default):
    the vCPU thread that writes them is confined, so writing must not need
    a call outside its class (stdio's first write used to fstat the file,
    and the sandbox ended the VMM)."""
    dump = tmp_path / "jit-dump.txt"
    if var == "SKIFF_JIT_DUMP":
        monkeypatch.setenv(var, str(dump))
    else:
        monkeypatch.setenv(var, "1")
    # A loop run often enough to be translated, then "hi" and shutdown.
    t0, zero = rvimage.T0, rvimage.ZERO
    loop = rvimage.li(t0, 100000) + [rvimage.addi(t0, t0, -1), rvimage.beq(t0, zero, 8),
                                     rvimage.jal(zero, -8)]
    r = run_image(skiff_bin, tmp_path, rvimage.image(loop + rvimage.prog_putchar_then_shutdown(b"hi\n")),
                  "--engine", "jit")
    assert r.returncode == 0 and b"hi" in r.stdout, describe(r)
    if var == "SKIFF_JIT_DUMP":
        assert dump.stat().st_size > 0, "SKIFF_JIT_DUMP wrote nothing"

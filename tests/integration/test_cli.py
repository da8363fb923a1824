"""`skiff run` command line: bad input gives one line on stderr naming the
problem and exit status 64 (the status the usage text promises for bad
options); --help documents every option, and so does docs/skiff-run.md;
--dump-dtb writes a device tree
that dtc reads without a warning.

The kernel used where a valid one is needed is a tiny hand-made Image
(rvimage.py) that powers off at once, so no test here boots Linux.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import rvimage

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30


def skiff(skiff_bin, *args):
    try:
        return subprocess.run([skiff_bin, *map(str, args)], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace",
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"skiff {' '.join(map(str, args))} did not exit within {TIMEOUT} s "
                    f"(a bad option should be refused before booting); stderr {e.stderr!r}")


def describe(r):
    return f"exit status {r.returncode}\nstdout: {r.stdout!r}\nstderr: {r.stderr!r}"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Input files for the bad-input cases."""
    d = tmp_path_factory.mktemp("cli")
    f = {}
    f["tiny"] = d / "tiny.Image"
    f["tiny"].write_bytes(rvimage.image(rvimage.prog_putchar_then_shutdown(b"")))
    f["random"] = d / "random.bin"
    f["random"].write_bytes(bytes((i * 151 + 7) % 256 for i in range(8192)))
    f["text"] = d / "hostname"
    f["text"].write_text("skiff-host\n")
    f["empty"] = d / "empty"
    f["empty"].write_bytes(b"")
    f["gzip"] = d / "Image.gz"
    f["gzip"].write_bytes(b"\x1f\x8b\x08\x00" + bytes(200))
    f["elf"] = d / "vmlinux"
    f["elf"].write_bytes(b"\x7fELF\x02\x01\x01" + bytes(200))
    f["big"] = d / "big-initrd"
    with open(f["big"], "wb") as fh:  # 300 MiB, sparse: more than the smallest guest RAM
        fh.truncate(300 << 20)
    f["dir"] = d / "kdir"
    f["dir"].mkdir()
    f["missing"] = d / "no-such-file"
    return f


# (id, arguments after `skiff run`, regexes the one error line must match)
BAD_INPUT = [
    ("missing-kernel", ["--kernel", "{missing}"], [r"--kernel", r"no-such-file", r"no such file"]),
    ("kernel-is-text", ["--kernel", "{text}"], [r"hostname", r"not a RISC-V Image|too short"]),
    ("kernel-is-random", ["--kernel", "{random}"], [r"random\.bin", r"not a RISC-V Image"]),
    ("kernel-is-empty", ["--kernel", "{empty}"], [r"empty"]),
    ("kernel-is-gzip", ["--kernel", "{gzip}"], [r"Image\.gz", r"gzip"]),
    ("kernel-is-elf", ["--kernel", "{elf}"], [r"vmlinux", r"ELF"]),
    ("kernel-is-directory", ["--kernel", "{dir}"], [r"kdir", r"is a directory|not a regular file"]),
    ("missing-initrd", ["--kernel", "{tiny}", "--initrd", "{missing}"],
     [r"--initrd|initrd", r"no-such-file", r"no such file"]),
    ("initrd-too-big", ["--kernel", "{tiny}", "--initrd", "{big}", "--mem", "{min_mem}"],
     [r"initrd", r"big-initrd", r"does not fit"]),
    ("mem-1", ["--kernel", "{tiny}", "--mem", "1"], [r"--mem 1\b|mem", r"\d+ MiB"]),
    ("mem-abc", ["--kernel", "{tiny}", "--mem", "abc"], [r"--mem", r"abc", r"not a size"]),
    ("mem-0", ["--kernel", "{tiny}", "--mem", "0"], [r"--mem", r"0"]),
    ("mem-negative", ["--kernel", "{tiny}", "--mem", "-5"], [r"--mem", r"-5"]),
    ("cpus-0", ["--kernel", "{tiny}", "--cpus", "0"], [r"--cpus", r"\b0\b", r"1 to 8"]),
    ("cpus-9", ["--kernel", "{tiny}", "--cpus", "9"], [r"--cpus", r"\b9\b", r"1 to 8"]),
    ("cpus-abc", ["--kernel", "{tiny}", "--cpus", "abc"], [r"--cpus", r"abc"]),
    ("unknown-option", ["--kernel", "{tiny}", "--frobnicate"], [r"--frobnicate", r"unrecognized|unknown"]),
    ("missing-option-argument", ["--kernel", "{tiny}", "--cpus"], [r"--cpus", r"requires an argument|missing|needs a value"]),
    ("console-bad", ["--kernel", "{tiny}", "--console", "serial"], [r"--console", r"serial", r"uart or virtio"]),
    ("disk-missing", ["--kernel", "{tiny}", "--disk", "{missing}"], [r"no-such-file", r"[Nn]o such file"]),
    ("disk-bad-format", ["--kernel", "{tiny}", "--disk", "{random},format=vmdk"], [r"--disk", r"vmdk", r"raw or qcow2"]),
    ("disk-bad-setting", ["--kernel", "{tiny}", "--disk", "{random},bogus"], [r"--disk", r"bogus"]),
    ("disk-bad-backing-dir", ["--kernel", "{tiny}", "--disk", "{random},backing={missing}"], [r"--disk", r"backing directory", r"[Nn]o such file"]),
    ("stray-argument", ["--kernel", "{tiny}", "stray"], [r"stray", r"unexpected argument"]),
    ("mem-127", ["--kernel", "{tiny}", "--mem", "127"], [r"--mem 127", r"128 MiB to 256 GiB"]),
    ("net-kind", ["--kernel", "{tiny}", "--net", "foo"], [r"--net foo", r"user or tap"]),
    ("net-port", ["--kernel", "{tiny}", "--net", "user,hostfwd=tcp::99999-:22"], [r"--net", r"1 to 65535"]),
    ("net-mac", ["--kernel", "{tiny}", "--net", "user,mac=zz"], [r"--net", r"mac=zz", r"MAC address"]),
    ("net-tap-name", ["--kernel", "{tiny}", "--net", "tap"], [r"--net tap", r"ifname=NAME"]),
    ("net-setting", ["--kernel", "{tiny}", "--net", "user,bogus=1"], [r"--net", r"unknown setting 'bogus=1'"]),
    ("vsock-cid", ["--kernel", "{tiny}", "--vsock", "cid=2,uds=/tmp/skiff-test.v"], [r"--vsock", r"3 to 4294967294"]),
    ("vsock-no-uds", ["--kernel", "{tiny}", "--vsock", "cid=3"], [r"--vsock cid=3", r"uds=PATH"]),
    ("vsock-dir", ["--kernel", "{tiny}", "--vsock", "cid=3,uds={missing}/v.sock"], [r"vsock", r"no-such-file"]),
    ("balloon-setting", ["--kernel", "{tiny}", "--balloon=bogus"], [r"--balloon", r"unknown setting 'bogus'"]),
    ("balloon-target", ["--kernel", "{tiny}", "--balloon=target=abc"], [r"--balloon", r"target"]),
    ("balloon-stats", ["--kernel", "{tiny}", "--balloon=stats=-1"], [r"--balloon", r"stats", r"0 to 86400"]),
    ("cpu-quota-0", ["--kernel", "{tiny}", "--cpu-quota", "0"], [r"--cpu-quota 0", r"positive fraction"]),
    ("cpu-quota-abc", ["--kernel", "{tiny}", "--cpu-quota", "abc"], [r"--cpu-quota abc", r"positive fraction"]),
    ("cpu-quota-over-cpus", ["--kernel", "{tiny}", "--cpus", "2", "--cpu-quota", "2.5"],
     [r"cpu_quota", r"2\.5", r"vcpu_count \(?2"]),
    ("disk-iops-0", ["--kernel", "{tiny}", "--disk", "{random},iops=0"], [r"--disk", r"iops must be a positive"]),
    ("9-disks", ["--kernel", "{tiny}"] + ["--disk", "{random},ro"] * 9, [r"--disk", r"at most 8"]),
    ("9-shares", ["--kernel", "{tiny}"] + [a for i in range(9) for a in ("--share", f"{{dir}},tag=t{i}")],
     [r"--share", r"at most 8 shares"]),
    ("17-ports", ["--kernel", "{tiny}"] + [a for i in range(17) for a in ("--port", f"p{i},uds=/tmp/skiff-t{i}.sock")],
     [r"--port", r"at most 16 ports"]),
    ("5-nics", ["--kernel", "{tiny}"] + ["--net", "user"] * 5, [r"--net", r"at most 4 network interfaces"]),
    ("17-forwards", ["--kernel", "{tiny}", "--net", "user" + "".join(f",hostfwd=tcp::{20000 + i}-:{i}" for i in range(1, 18))],
     [r"--net", r"at most 16 hostfwd"]),
]


@pytest.fixture(scope="module")
def min_mem(skiff_bin, files):
    """The smallest --mem skiff accepts, 128 MiB (docs/skiff-run.md): the
    tiny image runs with it (127 is refused, see BAD_INPUT)."""
    r = skiff(skiff_bin, "run", "--kernel", files["tiny"], "--mem", "128")
    assert r.returncode == 0, "the tiny image does not run with --mem 128\n" + describe(r)
    return "128"


@pytest.mark.parametrize("args,patterns", [(a, p) for _, a, p in BAD_INPUT],
                         ids=[i for i, _, _ in BAD_INPUT])
def test_bad_input_one_line_status_64(skiff_bin, files, min_mem, args, patterns):
    argv = ["run"] + [a.format(**files, min_mem=min_mem) for a in args]
    r = skiff(skiff_bin, *argv)
    assert r.returncode == 64, f"skiff {' '.join(argv)}: expected exit status 64\n" + describe(r)
    err = r.stderr.strip("\n")
    assert err, f"skiff {' '.join(argv)}: nothing on stderr\n" + describe(r)
    assert "\n" not in err, (f"skiff {' '.join(argv)}: the error is {len(err.splitlines())} "
                             f"lines, expected one\n" + describe(r))
    assert err.startswith("skiff"), "the error line does not start with 'skiff'\n" + describe(r)
    for pat in patterns:
        assert re.search(pat, err, re.I), f"the error line does not match /{pat}/\n" + describe(r)
    assert r.stdout == "", "bad input must not print to stdout\n" + describe(r)


def test_unknown_top_level_option_is_one_line(skiff_bin):
    """`skiff --frobnicate` (no `run`) goes to `skiff run` too."""
    r = skiff(skiff_bin, "--frobnicate")
    assert r.returncode == 64, describe(r)
    assert len(r.stderr.strip("\n").splitlines()) == 1, \
        "expected a one-line error for an unknown option\n" + describe(r)


def test_unknown_command(skiff_bin):
    r = skiff(skiff_bin, "frobnicate")
    assert r.returncode == 64, describe(r)
    assert "frobnicate" in r.stderr.splitlines()[0], describe(r)


def test_unreachable_vm_socket_is_named(skiff_bin, tmp_path):
    """`skiff exec` at a VM's API socket that is missing, not a socket, or
    where nothing listens says which (not libcurl's 'localhost port 80')."""
    import socket
    dead = tmp_path / "dead.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(dead))
    s.close()
    plain = tmp_path / "plain"
    plain.write_text("x")
    for path, words in [(tmp_path / "none.sock", "no socket at"), (plain, "is not a socket"),
                        (dead, "nothing listens")]:
        r = skiff(skiff_bin, "exec", str(path), "--", "true")
        assert r.returncode == 125, describe(r)
        assert words in r.stderr and str(path) in r.stderr and "port 80" not in r.stderr, describe(r)


# ------------------------------------------------------------------ --help

def source_long_options():
    """The long options `skiff run` accepts, from its getopt table."""
    src = (REPO_ROOT / "src" / "cli" / "run.c").read_text()
    table = re.search(r"struct option opts\[\]\s*=\s*\{(.*?)\n\t\};", src, re.S)
    assert table, "cannot find the getopt_long table in src/cli/run.c"
    names = re.findall(r'\{\s*"([a-z0-9-]+)"\s*,\s*(\w+)', table.group(1))
    assert names, "the getopt_long table in src/cli/run.c has no options"
    return names


def test_help_documents_every_option(skiff_bin):
    r = skiff(skiff_bin, "run", "--help")
    assert r.returncode == 0, describe(r)
    assert r.stderr == "", describe(r)
    text = r.stdout
    documented = set(re.findall(r"^[ \t]+(?:-\w,[ \t]+)?--([a-z0-9-]+)", text, re.M))
    expected = {"kernel", "initrd", "append", "cpus", "mem", "dump-dtb", "help"}
    from_source = {name for name, _ in source_long_options()}
    missing = (expected | from_source) - documented
    assert not missing, f"--help does not document {sorted(missing)}:\n{text}"
    for word in ("C-a x", "C-a h", "Exit status", "64"):
        assert word in text, f"--help does not mention {word!r}:\n{text}"


def test_every_documented_option_is_accepted(skiff_bin):
    """Each option --help lists is one getopt knows: `--opt=VALUE --help`
    parses it and then prints the help (status 0). Whether an option takes
    a value comes from the getopt table in src/cli/run.c."""
    text = skiff(skiff_bin, "run", "--help").stdout
    takes_arg = {name: kind != "no_argument" for name, kind in source_long_options()}
    # Values valid where the option is checked as it is parsed.
    values = {"cpus": "2", "mem": "128", "console": "uart", "cpu-quota": "0.5",
              "net": "user", "share": "/tmp", "vsock": "cid=3,uds=/tmp/skiff-test.vsock",
              "disk": "/dev/null", "balloon": "deflate_on_oom", "id": "test-vm",
              "api-sock": "/tmp/skiff-test-api.sock", "config-file": "/dev/null",
              "console-sock": "/tmp/skiff-test-console.sock",
              "port": "org.skiff.test,uds=/tmp/skiff-test-port.sock", "ssh-port": "2222",
              "engine": "interp", "jit-cache": "32M", "snapshot": "/tmp",
              "console-log-max": "4M", "seccomp": "off",
              "jail": "/tmp/skiff-test-jail", "jail-uid": "65532", "jail-gid": "65532",
              "landlock": "off"}
    documented = re.findall(r"^[ \t]+(?:-\w,[ \t]+)?--([a-z0-9-]+)", text, re.M)
    assert documented, "no options found in --help:\n" + text
    for opt in documented:
        if opt == "help":
            continue
        assert opt in takes_arg, f"--help documents --{opt}, which run.c's getopt table lacks"
        spelled = f"--{opt}={values.get(opt, 'x')}" if takes_arg[opt] else f"--{opt}"
        r = skiff(skiff_bin, "run", spelled, "--help")
        assert r.returncode == 0 and "usage" in r.stdout, \
            f"documented option {spelled} is not accepted\n" + describe(r)


def test_reference_has_every_option(skiff_bin):
    """docs/skiff-run.md has a table row for each option --help lists, and
    no row for an option --help does not list."""
    text = skiff(skiff_bin, "run", "--help").stdout
    helped = set(re.findall(r"^[ \t]+(?:-\w,[ \t]+)?--([a-z0-9-]+)", text, re.M))
    doc = (REPO_ROOT / "docs" / "skiff-run.md").read_text()
    rows = set(re.findall(r"^\| `(?:-\w`, `)?--([a-z0-9-]+)", doc, re.M))
    assert helped - rows == set(), f"docs/skiff-run.md has no row for {sorted(helped - rows)}"
    assert rows - helped == set(), f"docs/skiff-run.md documents {sorted(rows - helped)}, --help does not"


def test_short_help_and_top_level_help(skiff_bin):
    r = skiff(skiff_bin, "run", "-h")
    assert r.returncode == 0 and "--kernel" in r.stdout, describe(r)
    r = skiff(skiff_bin, "--help")
    assert r.returncode == 0 and "skiff run --help" in r.stdout, describe(r)


# ------------------------------------------------------------------ --dump-dtb

def dump_dtb(skiff_bin, files, tmp_path, *extra):
    out = tmp_path / "board.dtb"
    r = skiff(skiff_bin, "run", "--kernel", files["tiny"], "--dump-dtb", out, *extra)
    assert r.returncode == 0, "the tiny image powers off at once: expected status 0\n" + describe(r)
    assert out.is_file() and out.stat().st_size > 0, f"--dump-dtb wrote nothing to {out}\n" + describe(r)
    return out


def dtc_to_dts(dtb):
    dtc = shutil.which("dtc")
    if not dtc:
        pytest.fail("dtc not installed (package device-tree-compiler)")
    r = subprocess.run([dtc, "-I", "dtb", "-O", "dts", "-o", "-", str(dtb)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"dtc failed on {dtb}:\n{r.stderr}"
    assert r.stderr == "", f"dtc warns about the DTB skiff wrote:\n{r.stderr}"
    return r.stdout


def test_dump_dtb_is_dtc_clean(skiff_bin, files, tmp_path):
    dts = dtc_to_dts(dump_dtb(skiff_bin, files, tmp_path))
    assert re.search(r'compatible = "riscv-virtio"|model = "skiff', dts), dts[:2000]
    assert len(re.findall(r"\bcpu@[0-9a-f]+ \{", dts)) == 1, "expected one cpu node:\n" + dts
    assert "riscv,isa" in dts and "rv64imafdc" in dts, "no rv64imafdc riscv,isa in the DTB:\n" + dts
    assert re.search(r"memory@80000000", dts), "no memory@80000000 node:\n" + dts


def test_dump_dtb_with_harts_initrd_and_cmdline(skiff_bin, files, tmp_path):
    initrd = tmp_path / "small-initrd"
    initrd.write_bytes(b"\x07" * 5000)
    dts = dtc_to_dts(dump_dtb(skiff_bin, files, tmp_path, "--cpus", "4", "--mem", "256",
                              "--initrd", initrd, "--append", "console=ttyS0 skiff.test=1"))
    assert len(re.findall(r"\bcpu@[0-9a-f]+ \{", dts)) == 4, "expected 4 cpu nodes:\n" + dts
    assert 'bootargs = "console=ttyS0 skiff.test=1"' in dts, "--append is not in /chosen:\n" + dts
    start = re.search(r"linux,initrd-start = <(.*?)>;", dts)
    end = re.search(r"linux,initrd-end = <(.*?)>;", dts)
    assert start and end, "no linux,initrd-start/end in /chosen:\n" + dts

    def cells(s):
        v = 0
        for c in s.split():
            v = v << 32 | int(c, 16)
        return v
    assert cells(end.group(1)) - cells(start.group(1)) == 5000, \
        f"initrd range {start.group(1)}..{end.group(1)} is not the 5000-byte file"
    assert re.search(r"memory@80000000 \{[^}]*reg = <0x00 0x80000000 0x00 0x10000000>", dts), \
        "memory node is not 256 MiB at 0x80000000:\n" + dts


def test_api_mode_default_cmdline_follows_the_console(skiff_bin, files, tmp_path):
    """With --api-sock and no --append, the VMM picks the default command
    line at boot: console=hvc0 for --console virtio (a ttyS0 line there
    leaves the guest's console on a UART no one reads), ttyS0 otherwise."""
    for console, want in (("virtio", "console=hvc0 "), ("uart", "console=ttyS0 ")):
        out = tmp_path / f"{console}.dtb"
        api = tmp_path / f"{console}.sock"
        r = skiff(skiff_bin, "run", "--kernel", files["tiny"], "--api-sock", api,
                  "--console", console, "--dump-dtb", out)
        assert r.returncode == 0, describe(r)
        dts = dtc_to_dts(out)
        m = re.search(r'bootargs = "([^"]*)"', dts)
        assert m and m.group(1).startswith(want), \
            f"--console {console} in API mode booted with {m and m.group(1)!r}, want {want!r}..."


def test_dump_dtb_unwritable_path(skiff_bin, files, tmp_path):
    r = skiff(skiff_bin, "run", "--kernel", files["tiny"], "--dump-dtb", tmp_path / "no" / "dir" / "x.dtb")
    assert r.returncode == 64, describe(r)
    err = r.stderr.strip("\n")
    assert "\n" not in err and "--dump-dtb" in err, describe(r)

"""Offline unit tests for guest/imagetool.py (run with: python3 -m pytest guest/).

They build small fixtures themselves: apt source files in both formats, a
fake kernel module tree whose modules are minimal ELF64 files carrying only a
.modinfo section (some xz-compressed, as Debian ships them), a fake busybox
string table, and a tree to pack as cpio, which is then read back.
"""

import gzip
import lzma
import os
import stat
import struct
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imagetool  # noqa: E402


# ------------------------------------------------------------ fixtures

def make_elf(sections):
    """A little-endian ELF64 relocatable file with the given {name: bytes} sections."""
    names = [b""] + [n.encode() for n in sections] + [b".shstrtab"]
    shstr = b"\0"
    offs = {}
    for n in names[1:]:
        offs[n] = len(shstr)
        shstr += n + b"\0"
    body = b""
    data_off = 64
    placed = []
    for n, d in sections.items():
        placed.append((n.encode(), data_off + len(body), len(d)))
        body += d
    shstr_off = data_off + len(body)
    body += shstr
    shoff = data_off + len(body)
    shnum = len(placed) + 2
    ehdr = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    ehdr += struct.pack("<HHIQQQIHHHHHH", 1, 243, 1, 0, 0, shoff, 0, 64, 0, 0, 64, shnum, shnum - 1)
    shdrs = b"\0" * 64
    for n, off, size in placed:
        shdrs += struct.pack("<IIQQQQIIQQ", offs[n], 1, 0, 0, off, size, 0, 0, 1, 0)
    shdrs += struct.pack("<IIQQQQIIQQ", offs[b".shstrtab"], 3, 0, 0, shstr_off, len(shstr), 0, 0, 1, 0)
    return ehdr + body + shdrs


def write_module(moddir, rel, info, compress=True):
    data = make_elf({".text": b"\0" * 8, ".modinfo": b"\0".join(i.encode() for i in info) + b"\0"})
    path = os.path.join(moddir, rel + (".xz" if compress else ""))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(lzma.compress(data) if compress else data)
    return data


@pytest.fixture
def modtree(tmp_path):
    moddir = tmp_path / "lib" / "modules" / "6.1.0-test"
    m = str(moddir)
    write_module(m, "kernel/fs/ext4/ext4.ko", ["softdep=pre: crypto-crc32c",
                                              "depends=jbd2,mbcache", "name=ext4", "alias=fs-ext4"])
    write_module(m, "kernel/fs/jbd2/jbd2.ko", ["depends=", "name=jbd2"])
    write_module(m, "kernel/fs/mbcache.ko", ["depends=", "name=mbcache"])
    write_module(m, "kernel/crypto/crc32c_generic.ko", ["depends=", "name=crc32c_generic",
                                                        "alias=crypto-crc32c", "alias=crc32c"])
    write_module(m, "kernel/net/9p/9pnet.ko", ["depends=netfs", "name=9pnet"])
    write_module(m, "kernel/fs/netfs/netfs.ko", ["depends=", "name=netfs"], compress=False)
    write_module(m, "kernel/net/9p/9pnet_virtio.ko", ["depends=9pnet", "name=9pnet_virtio"])
    write_module(m, "kernel/drivers/char/hw_random/virtio-rng.ko", ["depends=", "name=virtio_rng"])
    (moddir / "modules.builtin").write_text("kernel/drivers/char/virtio_console.ko\n")
    return moddir


# ------------------------------------------------------------ modules

def test_depmod_files_generated_with_transitive_order(modtree):
    tree = imagetool.ModuleTree(str(modtree))
    dep = (modtree / "modules.dep").read_text()
    assert "kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko\n" in dep
    assert tree.lookup("crypto-crc32c") == ("module", "kernel/crypto/crc32c_generic.ko.xz")
    assert tree.lookup("virtio_console") == ("builtin", "virtio_console")
    assert tree.lookup("virtio-rng") == ("module", "kernel/drivers/char/hw_random/virtio-rng.ko.xz")
    assert tree.lookup("nonexistent") is None


def test_resolve_orders_dependencies_first_and_follows_softdeps(modtree):
    order, builtin = imagetool.ModuleTree(str(modtree)).resolve(["9pnet_virtio", "ext4", "virtio_console"])
    names = [imagetool.module_name(r) for r in order]
    assert names.index("netfs") < names.index("9pnet") < names.index("9pnet_virtio")
    assert names.index("crc32c_generic") < names.index("ext4")
    assert names.index("jbd2") < names.index("ext4") and names.index("mbcache") < names.index("ext4")
    assert len(names) == len(set(names))
    assert builtin == ["virtio_console"]


def test_unknown_module_is_an_error(modtree):
    with pytest.raises(imagetool.ToolError, match="neither a module nor built in"):
        imagetool.ModuleTree(str(modtree)).resolve(["no_such_driver"])


def test_modules_command_installs_decompressed_subset(modtree, tmp_path):
    root = tmp_path / "root"
    imagetool.cmd_modules(str(modtree), str(root), ["ext4"])
    dest = root / "lib" / "modules" / "6.1.0-test"
    ko = dest / "kernel" / "fs" / "ext4" / "ext4.ko"
    assert ko.read_bytes()[:4] == b"\x7fELF"
    order = [l for l in (root / "etc" / "skiff" / "modules").read_text().splitlines()
             if not l.startswith("#")]
    assert order[-1] == "/lib/modules/6.1.0-test/kernel/fs/ext4/ext4.ko"
    assert len(order) == 4
    assert "kernel/fs/ext4/ext4.ko:" in (dest / "modules.dep").read_text()
    assert "alias fs-ext4 ext4" in (dest / "modules.alias").read_text()


def test_modules_keep_compressed(modtree, tmp_path):
    root = tmp_path / "root"
    imagetool.cmd_modules(str(modtree), str(root), ["9pnet_virtio"], keep_compressed=True)
    assert (root / "lib/modules/6.1.0-test/kernel/net/9p/9pnet_virtio.ko.xz").exists()
    assert (root / "lib/modules/6.1.0-test/kernel/fs/netfs/netfs.ko").exists()


def test_dependency_cycle_is_reported(tmp_path):
    m = str(tmp_path / "6.1.0-cycle")
    write_module(m, "kernel/a.ko", ["depends=b", "name=a"])
    write_module(m, "kernel/b.ko", ["depends=a", "name=b"])
    # modules.dep lists full closures, so a cycle shows up as a module in its own list
    # or as a loop during the walk; either way resolve must terminate.
    try:
        order, _ = imagetool.ModuleTree(m).resolve(["a"])
        assert sorted(imagetool.module_name(r) for r in order) == ["a", "b"]
    except imagetool.ToolError as e:
        assert "cycle" in str(e)


# ------------------------------------------------------------ shared libraries

def dyn_elf(interp=None, needed=(), runpath=None):
    """An ELF64 file with .interp, .dynamic and .dynstr sections as a
    dynamically linked program or library has them."""
    strtab, entries = b"\0", []
    for tag, name in [(1, n) for n in needed] + ([(29, runpath)] if runpath else []):
        entries.append((tag, len(strtab)))
        strtab += name.encode() + b"\0"
    dyn = b"".join(struct.pack("<qQ", t, v) for t, v in entries + [(0, 0)])
    sections = {".dynamic": dyn, ".dynstr": strtab}
    if interp:
        sections[".interp"] = interp.encode() + b"\0"
    return make_elf(sections)


@pytest.fixture
def libroot(tmp_path):
    """A merged-/usr tree: a program needing libA (which needs libB), a
    plugin beside its own program found through $ORIGIN, and libraries
    nobody needs (one in a driver directory of its own)."""
    root = tmp_path / "root"
    arch = root / "usr/lib/testarch"
    (arch / "dri").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/lib/app").mkdir(parents=True)
    (root / "etc/ld.so.conf.d").mkdir(parents=True)
    (root / "etc/ld.so.conf.d/testarch.conf").write_text("# multiarch\n/usr/local/lib/testarch\n"
                                                         "/lib/testarch\n/usr/lib/testarch\n")
    os.symlink("usr/lib", root / "lib")
    (root / "usr/lib/ld-test.so.1").write_bytes(dyn_elf())
    (root / "usr/bin/prog").write_bytes(dyn_elf("/lib/ld-test.so.1", ["libA.so.1", "libc.so.6"]))
    (arch / "libA.so.1.0.0").write_bytes(dyn_elf(needed=["libB.so.2"]))
    os.symlink("libA.so.1.0.0", arch / "libA.so.1")
    (arch / "libB.so.2").write_bytes(dyn_elf(needed=["libc.so.6"]))
    (arch / "libc.so.6").write_bytes(dyn_elf(needed=["ld-test.so.1"]))
    (arch / "libunused.so.3").write_bytes(dyn_elf(needed=["libc.so.6"]))
    os.symlink("libunused.so.3", arch / "libunused.so")
    (arch / "dri/fake_dri.so").write_bytes(dyn_elf(needed=["libunused.so.3"]))
    (arch / "gconv").mkdir()
    (arch / "gconv/gconv-modules").write_text("# not a library\n")
    (root / "usr/lib/app/plugin.so").write_bytes(dyn_elf(needed=["libhelper.so.1", "libB.so.2"],
                                                         runpath="$ORIGIN/private"))
    (root / "usr/lib/app/private").mkdir()
    (root / "usr/lib/app/private/libhelper.so.1").write_bytes(dyn_elf())
    (root / "usr/lib/app/private/libother.so.1").write_bytes(dyn_elf())
    return root


def test_libs_keeps_what_the_programs_load(libroot, capsys):
    imagetool.cmd_libs(str(libroot), ["usr/bin/prog", "usr/lib/app/plugin.so"])
    arch = libroot / "usr/lib/testarch"
    for kept in ("usr/lib/ld-test.so.1", "usr/bin/prog", "usr/lib/testarch/libA.so.1.0.0",
                 "usr/lib/testarch/libB.so.2", "usr/lib/testarch/libc.so.6",
                 "usr/lib/app/plugin.so", "usr/lib/app/private/libhelper.so.1"):
        assert (libroot / kept).is_file(), kept
    assert os.readlink(arch / "libA.so.1") == "libA.so.1.0.0"
    for gone in ("libunused.so.3", "libunused.so", "dri"):
        assert not os.path.lexists(arch / gone), gone
    assert not (libroot / "usr/lib/app/private/libother.so.1").exists()
    assert (arch / "gconv/gconv-modules").is_file()       # only shared objects go
    assert "removed 4 unused shared objects" in capsys.readouterr().out


def test_libs_missing_library_is_an_error(libroot):
    os.unlink(libroot / "usr/lib/testarch/libB.so.2")
    with pytest.raises(imagetool.ToolError, match="needs libB.so.2"):
        imagetool.cmd_libs(str(libroot), ["usr/bin/prog"])
    assert (libroot / "usr/lib/testarch/libunused.so.3").exists()    # nothing removed


def test_libs_missing_interpreter_and_program(libroot):
    os.unlink(libroot / "usr/lib/ld-test.so.1")
    with pytest.raises(imagetool.ToolError, match="interpreter /lib/ld-test.so.1"):
        imagetool.cmd_libs(str(libroot), ["usr/bin/prog"])
    with pytest.raises(imagetool.ToolError, match="not a file in the image"):
        imagetool.cmd_libs(str(libroot), ["usr/bin/nothing"])


def test_resolve_in_root_stays_inside(libroot):
    os.symlink("/usr/lib/testarch/libB.so.2", libroot / "usr/bin/abs-link")
    real, links = imagetool.resolve_in_root(str(libroot), "/usr/bin/abs-link")
    assert real == "usr/lib/testarch/libB.so.2" and links == ["usr/bin/abs-link"]
    assert imagetool.resolve_in_root(str(libroot), "/lib/../lib/testarch/libc.so.6")[0] == \
        "usr/lib/testarch/libc.so.6"
    os.symlink("loop2", libroot / "usr/bin/loop1")
    os.symlink("loop1", libroot / "usr/bin/loop2")
    with pytest.raises(imagetool.ToolError, match="too many levels"):
        imagetool.resolve_in_root(str(libroot), "/usr/bin/loop1")


# ------------------------------------------------------------ kernel

def test_kernel_header_check_and_decompression(tmp_path):
    image = bytearray(128)
    image[0:2] = b"MZ"
    struct.pack_into("<QQQI", image, 8, 0x200000, 0x1000, 0, 2)
    image[48:56] = b"RISCV\0\0\0"
    image[56:60] = b"RSC\x05"
    src = tmp_path / "vmlinuz"
    src.write_bytes(gzip.compress(bytes(image)))
    imagetool.cmd_kernel(str(src), str(tmp_path / "Image"))
    assert (tmp_path / "Image").read_bytes() == bytes(image)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\0" * 128)
    with pytest.raises(imagetool.ToolError, match="not a RISC-V Image"):
        imagetool.cmd_kernel(str(bad), str(tmp_path / "Image2"))


# ------------------------------------------------------------ busybox

def test_applets_table(tmp_path, capsys):
    bb = tmp_path / "busybox"
    bb.write_bytes(b"\x7fELF junk\0more junk\0[\0[[\0ash\0cat\0sh\0zcat\0\0tail")
    imagetool.cmd_applets(str(bb))
    assert capsys.readouterr().out.split() == ["[", "[[", "ash", "cat", "sh", "zcat"]
    bb.write_bytes(b"no table here")
    with pytest.raises(imagetool.ToolError):
        imagetool.cmd_applets(str(bb))


# ------------------------------------------------------------ apt sources

def test_archive_uri_one_line(tmp_path, capsys):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\n"
        "deb [signed-by=/k.gpg arch=amd64] http://security.example/debian-security stable-security main\n"
        "deb-src http://mirror.example/debian stable main\n"
        "deb [ arch=amd64 ] http://mirror.example/debian/ stable main contrib\n")
    imagetool.cmd_archive_uri(str(tmp_path))
    assert capsys.readouterr().out.strip() == "http://mirror.example/debian"


def test_archive_uri_deb822(tmp_path, capsys):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://off.example/debian\nSuites: stable\n"
        "Components: main\nEnabled: no\n\n"
        "Types: deb deb-src\nURIs: http://deb.example/debian\nSuites: trixie trixie-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://deb.example/debian-security\nSuites: trixie-security\n"
        "Components: main\n")
    (d / "other.list.disabled").write_text("deb http://nope.example/ x main\n")
    imagetool.cmd_archive_uri(str(tmp_path))
    assert capsys.readouterr().out.strip() == "http://deb.example/debian"


def test_archive_uri_missing(tmp_path):
    with pytest.raises(imagetool.ToolError, match="SKIFF_DEBIAN_MIRROR"):
        imagetool.cmd_archive_uri(str(tmp_path))


# ------------------------------------------------------------ cpio

def read_newc(data):
    entries, pos = {}, 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        f = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, uid, gid, size, rmaj, rmin, namesize = f[1], f[2], f[3], f[6], f[9], f[10], f[11]
        name = data[pos + 110: pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        body = data[pos: pos + size]
        pos = (pos + size + 3) & ~3
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, uid, gid, body, (rmaj, rmin))


def test_cpio_round_trip(tmp_path):
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "busybox").write_bytes(b"BB")
    os.chmod(root / "usr" / "bin" / "busybox", 0o775)
    os.symlink("busybox", root / "usr" / "bin" / "sh")
    os.symlink("usr/bin", root / "bin")
    (root / "tmp").mkdir()
    os.chmod(root / "tmp", 0o1777)
    (root / "init").write_text("#!/bin/sh\n")
    os.chmod(root / "init", 0o755)
    out = tmp_path / "initrd.cpio.gz"
    imagetool.cmd_cpio(str(root), str(out))
    e = read_newc(gzip.decompress(out.read_bytes()))
    assert stat.S_ISREG(e["usr/bin/busybox"][0]) and stat.S_IMODE(e["usr/bin/busybox"][0]) == 0o755
    assert e["usr/bin/busybox"][3] == b"BB"
    assert stat.S_ISLNK(e["usr/bin/sh"][0]) and e["usr/bin/sh"][3] == b"busybox"
    assert stat.S_ISLNK(e["bin"][0]) and e["bin"][3] == b"usr/bin"
    assert stat.S_IMODE(e["tmp"][0]) == 0o1777
    assert stat.S_ISCHR(e["dev/console"][0]) and e["dev/console"][4] == (5, 1)
    assert all(v[1] == 0 and v[2] == 0 for v in e.values())
    names = list(e)
    assert names.index("usr") < names.index("usr/bin") < names.index("usr/bin/busybox")
    # the same tree gives the same bytes
    out2 = tmp_path / "again.cpio.gz"
    imagetool.cmd_cpio(str(root), str(out2))
    assert out.read_bytes() == out2.read_bytes()


def test_cpio_readable_by_gnu_cpio(tmp_path):
    if subprocess.run(["sh", "-c", "command -v cpio"], capture_output=True).returncode:
        pytest.skip("cpio not installed")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "profile").write_text("export PS1\n")
    out = tmp_path / "i.cpio.gz"
    imagetool.cmd_cpio(str(root), str(out))
    listing = subprocess.run(["cpio", "-it", "--quiet"], input=gzip.decompress(out.read_bytes()),
                             capture_output=True, check=True).stdout.decode().split()
    assert {"etc", "etc/profile", "dev", "dev/console"} <= set(listing)

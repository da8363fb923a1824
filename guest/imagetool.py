#!/usr/bin/python3
"""Helper for guest/build-image.sh: the parts of building the guest image
that are easier in Python than in shell, using only the standard library.

Subcommands:
  kernel SRC DST          copy the kernel to DST as a raw RISC-V Image,
                          decompressing it when Debian ships it compressed,
                          and check the Image header (magic "RSC\\x05" at
                          offset 56, Documentation/arch/riscv/boot-image-header.rst).
  modules [--keep-compressed] MODDIR ROOT M..
                          resolve modules M (names as in modinfo, '-' or '_')
                          with their dependencies, copy them decompressed into
                          ROOT/lib/modules/<release>/, write modules.dep,
                          modules.alias and modules.softdep for that subset
                          (so busybox modprobe works) and ROOT/etc/skiff/modules
                          (the insmod order for /init, dependencies first).
                          Modules are stored decompressed unless
                          --keep-compressed (busybox insmod reads .ko.xz too).
  libs ROOT ELF..         keep only the shared libraries the ELF files
                          (paths inside ROOT) load: their interpreter and
                          DT_NEEDED libraries, transitively, found as the
                          loader finds them (DT_RUNPATH, the directories in
                          ROOT/etc/ld.so.conf.d, /lib, /usr/lib); every other
                          *.so* file under those directories is removed.  A
                          library that cannot be found is an error.
  applets BUSYBOX         print the applet names compiled into a busybox
                          binary, one a line, without running it (it is a
                          riscv64 binary; the build host is not).
  archive-uri ETC         print the URI of the Debian archive that the host's
                          apt sources (ETC = /etc/apt) already use.
  cpio ROOT OUT           write ROOT as a gzip-compressed newc cpio archive,
                          every entry owned by root, plus the /dev/console
                          node the kernel needs to give /init a console, so
                          the build needs neither root nor mknod.

Debian's kernel package does not ship modules.dep (its postinst runs depmod),
so `modules` first derives modules.dep / modules.alias / modules.softdep for
the whole tree from each module's .modinfo section, the same data depmod
uses ("depends=" is what modpost computed from the symbol tables), unless
the tree already has them.  Dependencies are then resolved from those files.
"""

import concurrent.futures
import fnmatch
import gzip
import lzma
import os
import re
import shutil
import stat
import struct
import subprocess
import sys

MOD_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")


class ToolError(Exception):
    pass


# ---------------------------------------------------------------- helpers

def decompress(data, what):
    """Return data decompressed if it starts with a known compression magic."""
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        zstd = shutil.which("zstd")
        if not zstd:
            raise ToolError(f"{what} is zstd-compressed and the zstd program is not installed "
                            "(apt-get install zstd)")
        return subprocess.run([zstd, "-dc"], input=data, stdout=subprocess.PIPE,
                              check=True).stdout
    return data


def module_name(path):
    base = os.path.basename(path)
    for suf in MOD_SUFFIXES:
        if base.endswith(suf):
            base = base[: -len(suf)]
            break
    return base.replace("-", "_")


def strip_compression(relpath):
    for suf in (".xz", ".zst", ".gz"):
        if relpath.endswith(".ko" + suf):
            return relpath[: -len(suf)]
    return relpath


def elf_section(data, wanted, what):
    """Return the bytes of section `wanted` of a little-endian ELF64 file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ToolError(f"{what}: not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if shentsize < 64 or shoff + shnum * shentsize > len(data) or shstrndx >= shnum:
        raise ToolError(f"{what}: bad section header table")
    def sh(i):
        # name, type, flags, addr, offset, size
        return struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
    strtab_off = sh(shstrndx)[4]
    for i in range(shnum):
        name_off, _, _, _, off, size = sh(i)
        end = data.find(b"\0", strtab_off + name_off)
        if data[strtab_off + name_off:end] == wanted:
            if off + size > len(data):
                raise ToolError(f"{what}: section {wanted!r} runs past the end of the file")
            return data[off:off + size]
    return None


def read_modinfo(path):
    """(relpath, [key=value ...]) for one module file."""
    with open(path, "rb") as f:
        data = decompress(f.read(), path)
    sec = elf_section(data, b".modinfo", path)
    if sec is None:
        raise ToolError(f"{path}: no .modinfo section")
    return [s.decode("utf-8", "replace") for s in sec.split(b"\0") if s]


# ---------------------------------------------------------------- depmod

def find_module_files(moddir):
    files = []
    for top, dirs, names in os.walk(moddir):
        dirs.sort()
        for n in sorted(names):
            if n.endswith(MOD_SUFFIXES):
                files.append(os.path.relpath(os.path.join(top, n), moddir))
    return files


def _modinfo_job(args):
    moddir, rel = args
    return rel, read_modinfo(os.path.join(moddir, rel))


def generate_depmod_files(moddir):
    """Write modules.dep, modules.alias, modules.softdep from .modinfo data."""
    files = find_module_files(moddir)
    if not files:
        raise ToolError(f"no kernel modules under {moddir}")
    by_name = {module_name(r): r for r in files}
    infos = {}
    workers = max(1, min(8, os.cpu_count() or 1))
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        for rel, info in pool.map(_modinfo_job, [(moddir, r) for r in files], chunksize=32):
            infos[rel] = info
    direct = {}
    aliases = []
    softdeps = []
    for rel in files:
        name = module_name(rel)
        deps = []
        for kv in infos[rel]:
            key, _, val = kv.partition("=")
            if key == "depends" and val:
                deps += [d.replace("-", "_") for d in val.split(",") if d]
            elif key == "alias":
                aliases.append((val, name))
            elif key == "softdep":
                softdeps.append((name, val))
        direct[rel] = [by_name[d] for d in deps if d in by_name]
    # modules.dep lists every module with its full transitive dependency
    # list, nearest first, as depmod does (modprobe loads it in reverse).
    with open(os.path.join(moddir, "modules.dep"), "w") as out:
        for rel in files:
            out.write(f"{rel}: {' '.join(transitive(rel, direct))}".rstrip() + "\n")
    with open(os.path.join(moddir, "modules.alias"), "w") as out:
        out.write("# Aliases extracted from modules themselves.\n")
        for pattern, name in aliases:
            out.write(f"alias {pattern} {name}\n")
    with open(os.path.join(moddir, "modules.softdep"), "w") as out:
        out.write("# Soft dependencies extracted from modules themselves.\n")
        for name, val in softdeps:
            out.write(f"softdep {name} {val}\n")


def transitive(rel, direct):
    """All dependencies of rel, ordered as depmod orders them: loading the
    list from its end to its start loads every module after its own
    dependencies (the reverse of a depth-first post-order)."""
    seen, post = {rel}, []

    def walk(m):
        for d in direct.get(m, []):
            if d not in seen:
                seen.add(d)
                walk(d)
                post.append(d)
    walk(rel)
    return list(reversed(post))


class ModuleTree:
    """The dependency data of one kernel's module tree."""

    def __init__(self, moddir):
        self.moddir = moddir
        dep = os.path.join(moddir, "modules.dep")
        if not os.path.exists(dep):
            generate_depmod_files(moddir)
        self.deps = {}          # relpath -> [relpath] (transitive)
        self.by_name = {}       # name -> relpath
        with open(dep) as f:
            for line in f:
                line = line.strip()
                if not line or ":" not in line:
                    continue
                rel, _, rest = line.partition(":")
                self.deps[rel] = rest.split()
                self.by_name[module_name(rel)] = rel
        self.aliases = []       # (pattern, name)
        self._read_pairs("modules.alias", "alias", self.aliases)
        self.softdeps = {}      # name -> [(pre|post, target)]
        path = os.path.join(moddir, "modules.softdep")
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    w = line.split()
                    if len(w) < 3 or w[0] != "softdep":
                        continue
                    kind = None
                    for tok in w[2:]:
                        if tok in ("pre:", "post:"):
                            kind = tok[:-1]
                        elif kind:
                            self.softdeps.setdefault(w[1].replace("-", "_"), []).append((kind, tok))
        self.builtin = set()
        path = os.path.join(moddir, "modules.builtin")
        if os.path.exists(path):
            with open(path) as f:
                self.builtin = {module_name(l.strip()) for l in f if l.strip()}
        self.builtin_aliases = []
        path = os.path.join(moddir, "modules.builtin.modinfo")
        if os.path.exists(path):
            with open(path, "rb") as f:
                for rec in f.read().split(b"\0"):
                    s = rec.decode("utf-8", "replace")
                    mod, _, kv = s.partition(".")
                    if kv.startswith("alias="):
                        self.builtin_aliases.append((kv[6:], mod.replace("-", "_")))

    def _read_pairs(self, fname, keyword, into):
        path = os.path.join(self.moddir, fname)
        if not os.path.exists(path):
            return
        with open(path) as f:
            for line in f:
                w = line.split()
                if len(w) == 3 and w[0] == keyword:
                    into.append((w[1], w[2].replace("-", "_")))

    def lookup(self, name):
        """('module', relpath) | ('builtin', name) | None for a module name or alias."""
        n = name.replace("-", "_")
        if n in self.by_name:
            return ("module", self.by_name[n])
        if n in self.builtin:
            return ("builtin", n)
        for pattern, mod in self.aliases:
            if fnmatch.fnmatchcase(name, pattern) and mod in self.by_name:
                return ("module", self.by_name[mod])
        for pattern, mod in self.builtin_aliases:
            if fnmatch.fnmatchcase(name, pattern):
                return ("builtin", mod)
        return None

    def resolve(self, wanted):
        """Load order (relpaths, dependencies first) and the builtin names."""
        order, builtin, state = [], [], {}

        def visit(rel, chain):
            if state.get(rel) == "done":
                return
            if state.get(rel) == "active":
                raise ToolError("module dependency cycle: " + " -> ".join(chain + [rel]))
            state[rel] = "active"
            name = module_name(rel)
            soft = self.softdeps.get(name, [])
            for kind, target in soft:
                if kind == "pre":
                    visit_name(target, chain + [rel], soft=True)
            for d in self.deps.get(rel, []):
                visit(d, chain + [rel])
            state[rel] = "done"
            order.append(rel)
            for kind, target in soft:
                if kind == "post":
                    visit_name(target, chain + [rel], soft=True)

        def visit_name(name, chain, soft=False):
            hit = self.lookup(name)
            if hit is None:
                if soft:
                    print(f"imagetool: note: soft dependency {name!r} of {chain[-1]} "
                          "not found; skipped", file=sys.stderr)
                    return
                raise ToolError(f"kernel module {name!r} is neither a module nor built in "
                                f"(looked in {self.moddir})")
            if hit[0] == "builtin":
                if hit[1] not in builtin and not soft:
                    builtin.append(hit[1])
                return
            visit(hit[1], chain)

        for w in wanted:
            visit_name(w, [])
        return order, builtin


def cmd_modules(moddir, root, wanted, keep_compressed=False):
    moddir = os.path.abspath(moddir)
    release = os.path.basename(moddir.rstrip("/"))
    tree = ModuleTree(moddir)
    order, builtin = tree.resolve(wanted)
    dest = os.path.join(root, "lib", "modules", release)
    os.makedirs(dest, exist_ok=True)
    out_rel = {}
    for rel in order:
        new_rel = rel if keep_compressed else strip_compression(rel)
        out_rel[rel] = new_rel
        with open(os.path.join(moddir, rel), "rb") as f:
            data = f.read()
        if not keep_compressed:
            data = decompress(data, rel)
        path = os.path.join(dest, new_rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
    chosen = set(order)
    names = {module_name(r) for r in order}
    with open(os.path.join(dest, "modules.dep"), "w") as f:
        for rel in order:
            deps = [out_rel[d] for d in tree.deps.get(rel, []) if d in chosen]
            f.write(f"{out_rel[rel]}: {' '.join(deps)}".rstrip() + "\n")
    with open(os.path.join(dest, "modules.alias"), "w") as f:
        for pattern, mod in tree.aliases:
            if mod in names:
                f.write(f"alias {pattern} {mod}\n")
    with open(os.path.join(dest, "modules.softdep"), "w") as f:
        for mod in sorted(names):
            for kind, target in tree.softdeps.get(mod, []):
                f.write(f"softdep {mod} {kind}: {target}\n")
    for extra in ("modules.builtin",):
        src = os.path.join(moddir, extra)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(dest, extra))
    os.makedirs(os.path.join(root, "etc", "skiff"), exist_ok=True)
    with open(os.path.join(root, "etc", "skiff", "modules"), "w") as f:
        f.write(f"# insmod order for /init (dependencies first); kernel {release}\n")
        for rel in order:
            f.write(f"/lib/modules/{release}/{out_rel[rel]}\n")
    print("modules: " + " ".join(module_name(r) for r in order))
    print("built-in: " + (" ".join(builtin) if builtin else "(none)"))


# ---------------------------------------------------------------- apt sources

def _source_entries(etc):
    """(types, uris, suites, components) of every enabled entry in the host's
    apt sources: one-line sources.list(5) files and deb822 *.sources files."""
    entries = []
    one_line = [os.path.join(etc, "sources.list")]
    parts = os.path.join(etc, "sources.list.d")
    names = sorted(os.listdir(parts)) if os.path.isdir(parts) else []
    one_line += [os.path.join(parts, n) for n in names if n.endswith(".list")]
    for path in one_line:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            kind, rest = words[0], words[1:]
            if rest and rest[0].startswith("["):
                while rest and not rest[0].endswith("]"):
                    rest = rest[1:]
                rest = rest[1:]
            if len(rest) >= 2:
                entries.append(([kind], [rest[0]], [rest[1]], rest[2:]))
    for n in names:
        if not n.endswith(".sources"):
            continue
        try:
            with open(os.path.join(parts, n)) as f:
                text = f.read()
        except OSError:
            continue
        for stanza in _deb822_stanzas(text):
            if stanza.get("enabled", "yes").strip().lower() == "no":
                continue
            entries.append((stanza.get("types", "").split(), stanza.get("uris", "").split(),
                            stanza.get("suites", "").split(), stanza.get("components", "").split()))
    return entries


def _deb822_stanzas(text):
    stanzas, cur, key = [], {}, None
    for line in text.splitlines() + [""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if cur:
                stanzas.append(cur)
            cur, key = {}, None
        elif line[0] in " \t" and key:
            cur[key] += " " + line.strip()
        elif ":" in line:
            key, _, val = line.partition(":")
            key = key.strip().lower()
            cur[key] = val.strip()
    return stanzas


def cmd_archive_uri(etc):
    """Print the URI of the host's main Debian archive: the first enabled
    `deb` entry with the main component whose suites are not security ones."""
    for types, uris, suites, comps in _source_entries(etc):
        if "deb" not in types or "main" not in comps or not uris:
            continue
        if any(s.endswith("-security") or "/updates" in s for s in suites):
            continue
        uri = uris[0].rstrip("/")
        if uri.startswith("cdrom:") or uri.endswith("-security"):
            continue
        print(uri)
        return
    raise ToolError(f"no Debian archive (a 'deb' entry with component 'main') found in "
                    f"{etc}/sources.list or {etc}/sources.list.d/; set SKIFF_DEBIAN_MIRROR "
                    "to the archive's URI")


# ---------------------------------------------------------------- kernel

def cmd_kernel(src, dst):
    with open(src, "rb") as f:
        data = f.read()
    raw = decompress(data, src)
    if raw is not data:
        print(f"kernel: decompressed {len(data)} -> {len(raw)} bytes")
    if len(raw) < 64 or raw[56:60] != b"RSC\x05":
        raise ToolError(f"{src} is not a RISC-V Image: no magic 'RSC\\x05' at offset 56")
    text_offset, image_size, flags, version = struct.unpack_from("<QQQI", raw, 8)
    tmp = dst + ".part"
    with open(tmp, "wb") as f:
        f.write(raw)
    os.replace(tmp, dst)
    print(f"kernel: RISC-V Image, {len(raw)} bytes, text_offset {text_offset:#x}, "
          f"image_size {image_size:#x}, header version {version >> 16}.{version & 0xffff}, "
          f"pe/efi stub {'yes' if raw[:2] == b'MZ' else 'no'}")


# ---------------------------------------------------------------- shared libraries

SHARED_OBJECT = re.compile(r"\.so(\.[0-9]+)*$")
DT_NULL, DT_NEEDED, DT_RPATH, DT_RUNPATH = 0, 1, 15, 29


def elf_dynamic(data, what):
    """(interpreter, [DT_NEEDED names], [DT_RUNPATH and DT_RPATH directories])
    of an ELF64 file, from its .interp, .dynamic and .dynstr sections (the
    ELF gABI's dynamic section: 16-byte tag/value entries up to DT_NULL)."""
    interp = elf_section(data, b".interp", what)
    interp = interp.split(b"\0")[0].decode() if interp else None
    dyn = elf_section(data, b".dynamic", what)
    if dyn is None:
        return interp, [], []          # statically linked
    strtab = elf_section(data, b".dynstr", what)
    if strtab is None:
        raise ToolError(f"{what}: has a .dynamic section but no .dynstr")

    def string(off):
        end = strtab.find(b"\0", off)
        if off >= len(strtab) or end < 0:
            raise ToolError(f"{what}: dynamic entry points outside .dynstr")
        return strtab[off:end].decode("utf-8", "replace")
    needed, paths = [], []
    for i in range(0, len(dyn) - 15, 16):
        tag, val = struct.unpack_from("<qQ", dyn, i)
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            needed.append(string(val))
        elif tag in (DT_RPATH, DT_RUNPATH):
            paths += [p for p in string(val).split(":") if p]
    return interp, needed, paths


def resolve_in_root(root, path):
    """Follow `path` (absolute, as the guest sees it) inside the tree at
    root, symlinks included (absolute targets are taken inside root too).
    Returns (real path relative to root, [symlinks passed, relative to
    root]) or None when it does not exist."""
    todo = [c for c in path.split("/") if c not in ("", ".")]
    cur, links, hops = "", [], 0
    while todo:
        c = todo.pop(0)
        if c == "..":
            cur = os.path.dirname(cur)
            continue
        cand = os.path.join(cur, c) if cur else c
        full = os.path.join(root, cand)
        if os.path.islink(full):
            hops += 1
            if hops > 40:
                raise ToolError(f"{path}: too many levels of symbolic links in {root}")
            links.append(cand)
            target = os.readlink(full)
            if target.startswith("/"):
                cur = ""
            todo = [t for t in target.split("/") if t not in ("", ".")] + todo
        elif os.path.lexists(full):
            cur = cand
        else:
            return None
    return cur, links


def library_dirs(root):
    """The directories the dynamic loader searches, as the guest sees
    them: the ones listed in etc/ld.so.conf.d/*.conf (Debian's libc6 lists
    its multiarch directories there), then /lib and /usr/lib."""
    dirs = []
    conf = os.path.join(root, "etc", "ld.so.conf.d")
    names = sorted(os.listdir(conf)) if os.path.isdir(conf) else []
    for n in names:
        if not n.endswith(".conf"):
            continue
        with open(os.path.join(conf, n)) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line.startswith("/") and line not in dirs:
                    dirs.append(line)
    return dirs + [d for d in ("/lib", "/usr/lib") if d not in dirs]


def needed_closure(root, wanted):
    """Every file (relative to root) that loading the ELF files `wanted`
    (paths inside root) maps: the files themselves, their interpreter and
    their shared libraries, transitively, plus the symlinks on the way."""
    search = library_dirs(root)
    keep, queue, done = set(), [], set()
    for w in wanted:
        r = resolve_in_root(root, "/" + w.lstrip("/"))
        if r is None or not os.path.isfile(os.path.join(root, r[0])):
            raise ToolError(f"{w}: not a file in the image")
        queue.append((r, w))
    while queue:
        (real, links), who = queue.pop()
        keep.update(links)
        keep.add(real)
        if real in done:
            continue
        done.add(real)
        with open(os.path.join(root, real), "rb") as f:
            data = f.read()
        interp, needed, runpath = elf_dynamic(data, who)
        if interp:
            r = resolve_in_root(root, interp)
            if r is None:
                raise ToolError(f"{who}: its interpreter {interp} is not in the image")
            queue.append((r, interp))
        origin = "/" + os.path.dirname(real)
        dirs = [p.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for p in runpath] + search
        for name in needed:
            hits = [os.path.join(d, name) for d in dirs] if "/" not in name else [name]
            for h in hits:
                r = resolve_in_root(root, h)
                if r is not None and os.path.isfile(os.path.join(root, r[0])):
                    queue.append((r, h))
                    break
            else:
                raise ToolError(f"{who} needs {name}, which is in none of {', '.join(dirs)} "
                                "in the image (a missing package?)")
    return keep


def cmd_libs(root, wanted):
    """Remove the shared libraries under the loader's directories that the
    ELF files `wanted` do not load (apt brings a package's whole dependency
    tree, including libraries that only plugins loaded at run time use)."""
    keep = needed_closure(root, wanted)
    walked, emptied, removed, size = set(), set(), 0, 0
    for d in library_dirs(root):
        r = resolve_in_root(root, d)
        if r is None or r[0] in walked or not os.path.isdir(os.path.join(root, r[0])):
            continue
        walked.add(r[0])
        base = os.path.join(root, r[0])
        for top, dirs, names in os.walk(base, topdown=False):
            for n in names + [x for x in dirs if os.path.islink(os.path.join(top, x))]:
                full = os.path.join(top, n)
                if SHARED_OBJECT.search(n) and os.path.relpath(full, root) not in keep:
                    size += os.lstat(full).st_size
                    os.unlink(full)
                    removed += 1
                    emptied.add(top)
            # Directories left empty by this (Mesa's dri/, gbm/) go too.
            if top != base and top in emptied and not os.listdir(top):
                os.rmdir(top)
                emptied.add(os.path.dirname(top))
    kept = sorted(k for k in keep if os.path.isfile(os.path.join(root, k))
                  and not os.path.islink(os.path.join(root, k)))
    kept_size = sum(os.path.getsize(os.path.join(root, k)) for k in kept)
    print(f"libs: {len(kept)} files loaded by {' '.join(wanted)} ({kept_size >> 10} KiB); "
          f"removed {removed} unused shared objects ({size >> 10} KiB)")

# ---------------------------------------------------------------- busybox

def cmd_applets(binary):
    with open(binary, "rb") as f:
        data = f.read()
    # busybox keeps its applet names as one sorted NUL-separated string
    # table that starts with "[" and "[[" (applets/applet_tables.c).
    start = data.find(b"[\0[[\0")
    if start < 0 or data.find(b"[\0[[\0", start + 1) >= 0:
        raise ToolError(f"{binary}: cannot find busybox's applet name table")
    names, pos = [], start
    while True:
        end = data.index(b"\0", pos)
        if end == pos:
            break
        names.append(data[pos:end].decode("ascii"))
        pos = end + 1
    if "sh" not in names or names != sorted(names):
        raise ToolError(f"{binary}: applet name table looks wrong")
    print("\n".join(names))


# ---------------------------------------------------------------- cpio

def cmd_cpio(root, out):
    """newc format: see the kernel's Documentation/driver-api/early-userspace/buffer-format.rst."""
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    entries = []
    for top, dirs, names in os.walk(root):
        dirs.sort()
        rel_top = os.path.relpath(top, root)
        if rel_top != ".":
            entries.append(rel_top)
        for n in sorted(names + [d for d in dirs if os.path.islink(os.path.join(top, d))]):
            entries.append(os.path.normpath(os.path.join(rel_top, n)))
    ino = [0]

    def header(name, mode, size, nlink=1, rdev=(0, 0)):
        ino[0] += 1
        nb = name.encode() + b"\0"
        h = b"070701" + b"".join(b"%08X" % v for v in (
            ino[0], mode, 0, 0, nlink, mtime, size, 0, 0, rdev[0], rdev[1], len(nb), 0))
        pad = (4 - (len(h) + len(nb)) % 4) % 4
        return h + nb + b"\0" * pad

    def pad4(n):
        return b"\0" * ((4 - n % 4) % 4)

    tmp = out + ".part"
    with open(tmp, "wb") as raw_out:
        with gzip.GzipFile(fileobj=raw_out, mode="wb", compresslevel=9, mtime=0, filename="") as z:
            have_dev = False
            for rel in entries:
                path = os.path.join(root, rel)
                st = os.lstat(path)
                perm = stat.S_IMODE(st.st_mode)
                if not perm & stat.S_ISVTX:
                    perm &= ~0o022      # no group/world write, whatever the umask was
                if stat.S_ISDIR(st.st_mode):
                    z.write(header(rel, stat.S_IFDIR | perm, 0, nlink=2))
                    have_dev |= rel == "dev"
                elif stat.S_ISLNK(st.st_mode):
                    target = os.readlink(path).encode()
                    z.write(header(rel, stat.S_IFLNK | 0o777, len(target)))
                    z.write(target + pad4(len(target)))
                elif stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as f:
                        data = f.read()
                    z.write(header(rel, stat.S_IFREG | perm, len(data)))
                    z.write(data + pad4(len(data)))
                else:
                    raise ToolError(f"{path}: unsupported file type in the image tree")
            if not have_dev:
                z.write(header("dev", stat.S_IFDIR | 0o755, 0, nlink=2))
            z.write(header("dev/console", stat.S_IFCHR | 0o600, 0, rdev=(5, 1)))
            z.write(header("TRAILER!!!", 0, 0, nlink=1))
    os.replace(tmp, out)


def main(argv):
    try:
        if len(argv) == 3 and argv[0] == "kernel":
            cmd_kernel(argv[1], argv[2])
        elif len(argv) >= 4 and argv[0] == "modules" and argv[1] == "--keep-compressed":
            cmd_modules(argv[2], argv[3], argv[4:], keep_compressed=True)
        elif len(argv) >= 3 and argv[0] == "modules":
            cmd_modules(argv[1], argv[2], argv[3:])
        elif len(argv) >= 3 and argv[0] == "libs":
            cmd_libs(argv[1], argv[2:])
        elif len(argv) == 2 and argv[0] == "applets":
            cmd_applets(argv[1])
        elif len(argv) == 3 and argv[0] == "cpio":
            cmd_cpio(argv[1], argv[2])
        elif len(argv) == 2 and argv[0] == "archive-uri":
            cmd_archive_uri(argv[1])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (ToolError, OSError, lzma.LZMAError, subprocess.CalledProcessError) as e:
        print(f"imagetool: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

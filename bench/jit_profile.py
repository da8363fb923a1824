#!/usr/bin/python3
"""Where a `perf record` of skiff spent its time inside translated code.

The JIT's code cache is a memfd mapped executable (src/engine/jit/cache.c),
so perf files samples there under the file `memfd:skiff-jit (deleted)` at
their offset in it and does not read the /tmp/perf-PID.map that
SKIFF_JIT_PERFMAP=1 writes (perf uses those maps for anonymous memory
only). This script puts the samples back on translated blocks: the
cache's mapping address comes from the recording's mmap events, the
blocks from the SKIFF_JIT_DUMP file of the same run (guest physical
address, TLB set, guest instructions, host bytes). A code address the
cache held more than once (it is emptied when full) is given to the last
translation there, so for a clean picture record only the phase you
measure. Samples outside the cache are listed by symbol.

    SKIFF_JIT_DUMP=dump.txt skiff run --engine jit ... &
    perf record -e cpu-clock -o perf.data -p PID    # during the workload
    bench/jit_profile.py perf.data dump.txt [--top N] [--show K]

--show K prints the K hottest blocks with their guest instructions and
the samples per host instruction (objdump disassembles them).
"""
import argparse
import bisect
import collections
import re
import subprocess
import sys
import tempfile


def cache_base(data):
    """Start address of the executable view of the JIT's code cache."""
    out = subprocess.run(["perf", "script", "-i", data, "--show-mmap-events"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "PERF_RECORD_MMAP" in line and "skiff-jit" in line and "r-x" in line:
            m = re.search(r"\[(0x[0-9a-f]+)\(", line)
            if m:
                return int(m.group(1), 16)
    return None


def read_dump(path):
    """Translations in dump order: (host start, size, text lines, host bytes)."""
    blocks, cur = [], None
    with open(path) as f:
        for line in f:
            if line.startswith("block pa"):
                m = re.search(r"host 0x([0-9a-f]+) bytes (\d+)", line)
                cur = {"start": int(m.group(1), 16), "size": int(m.group(2)),
                       "text": [line.rstrip()], "hex": [], "in_host": False}
                blocks.append(cur)
            elif cur is not None:
                if line.startswith("  host:"):
                    cur["in_host"] = True
                elif cur["in_host"]:
                    cur["hex"].append(line.strip())
                else:
                    cur["text"].append(line.rstrip())
    return blocks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("perf_data")
    ap.add_argument("dump")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--show", type=int, default=0)
    a = ap.parse_args()

    base = cache_base(a.perf_data)
    if base is None:
        sys.exit("no mapping of the JIT code cache in the recording")
    # The last translation at each host address wins: one that a later
    # translation overlaps (the cache was emptied and filled again) is
    # dropped, whether or not the two start at the same address.
    latest, starts = {}, []
    for b in reversed(read_dump(a.dump)):
        k = bisect.bisect_left(starts, b["start"])
        if k < len(starts) and starts[k] < b["start"] + b["size"]:
            continue
        if k > 0 and starts[k - 1] + latest[starts[k - 1]]["size"] > b["start"]:
            continue
        starts.insert(k, b["start"])
        latest[b["start"]] = b
    starts = sorted(latest)

    out = subprocess.run(["perf", "script", "-i", a.perf_data, "-F", "ip,sym,dso"],
                         capture_output=True, text=True).stdout
    per_block, per_ip, outside = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for line in out.splitlines():
        parts = line.split()
        if not parts:
            continue
        total += 1
        if "skiff-jit" in line:
            ip = int(parts[0], 16)
            addr = ip if ip >= base else base + ip   # perf gives the file offset
            k = bisect.bisect_right(starts, addr) - 1
            if k >= 0 and addr < starts[k] + latest[starts[k]]["size"]:
                per_block[starts[k]] += 1
                per_ip[addr] += 1
            else:
                outside["(code cache: shared routines)"] += 1
        else:
            outside[" ".join(parts[1:-1]) or parts[-1]] += 1
    if not total:
        sys.exit("no samples")
    inside = sum(per_block.values())
    print(f"{total} samples, {100 * inside / total:.1f} % in translated blocks")
    for start, n in per_block.most_common(a.top):
        print(f"  {100 * n / total:5.1f} %  {latest[start]['text'][0]}")
    print("outside translated blocks:")
    for name, n in outside.most_common(a.top):
        print(f"  {100 * n / total:5.1f} %  {name}")
    for start, _ in per_block.most_common(a.show):
        b = latest[start]
        print("\n" + "\n".join(b["text"]))
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(bytes.fromhex("".join(b["hex"])))
            f.flush()
            dis = subprocess.run(["objdump", "-D", "-b", "binary", "-mi386:x86-64",
                                  f"--adjust-vma={start:#x}", f.name],
                                 capture_output=True, text=True).stdout
        for line in dis.splitlines():
            m = re.match(r"\s*([0-9a-f]+):\t", line)
            if m:
                n = per_ip.get(int(m.group(1), 16), 0)
                print(f"{100 * n / total:6.1f} % {line}" if n else f"         {line}")


if __name__ == "__main__":
    main()

"""The host side of the I/O rows: what the guest must have read and written
(blk), and the host end of the TCP transfers (net, tap).

The blk row's guest program, guest_io.c, draws its random offsets and makes
its write data with splitmix64; expected_crcs() does the same here and
returns the CRC-32 of every operation's data, so a run that read the wrong
blocks, wrote nothing or lost writes fails its check instead of giving a
number.

The TCP end runs as this file's main (`iowork.py send|recv ADDR PORT
BYTES`) so it can be started inside the TAP row's network namespace with
`ip netns exec` exactly as it is started for user-mode networking; it
prints one JSON line: bytes moved and host seconds from connect to the
end of the transfer.
"""

import json
import random
import socket
import sys
import time
import zlib

MASK = (1 << 64) - 1


def splitmix64(state):
    """(next state, output), as guest_io.c's splitmix64."""
    state = (state + 0x9e3779b97f4a7c15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & MASK
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & MASK
    return state, z ^ (z >> 31)


def offsets(seed, count, blocks, bs):
    s = seed
    out = []
    for _ in range(count):
        s, z = splitmix64(s)
        out.append(z % blocks * bs)
    return out


def write_block(pattern, off, i):
    return off.to_bytes(8, "little") + i.to_bytes(8, "little") + pattern[16:]


def pattern(seed, bs):
    s = seed
    words = []
    for _ in range(bs // 8):
        s, z = splitmix64(s)
        words.append(z.to_bytes(8, "little"))
    return b"".join(words)


SAMPLE_EVERY, SAMPLE_BYTES = 4096, 16


def crc_sample(data, crc=0):
    """guest_io's CRC-32 over the first 16 bytes of every 4 KiB."""
    return zlib.crc32(b"".join(data[i:i + SAMPLE_BYTES] for i in range(0, len(data), SAMPLE_EVERY)), crc)


def expected_crcs(data, plan):
    """The CRC-32 each guest_io operation of `plan` must print, in order,
    starting from the disk's test area `data` (sampled, see guest_io.c);
    also the test area's full CRC after all of them (the final `crc`
    pass).  plan: [(op, bs, count, seed)]."""
    disk = bytearray(data)
    size = len(disk)
    out = []
    for op, bs, count, seed in plan:
        blocks = size // bs
        offs = offsets(seed, count, blocks, bs) if op.startswith("rand") else \
            [i * bs for i in range(blocks)]
        crc = 0
        if op.endswith("write"):
            pat = pattern(seed, bs)
            for i, off in enumerate(offs):
                blk = write_block(pat, off, i)
                disk[off:off + bs] = blk
                crc = crc_sample(blk, crc)
        else:
            for off in offs:
                crc = crc_sample(disk[off:off + bs], crc)
        out.append(crc)
    return out, zlib.crc32(disk)


def parse_io(out):
    """guest_io's result line as a dict (op, ops, bytes, seconds, crc)."""
    for line in out.splitlines():
        if line.startswith("@@IO "):
            d = dict(kv.split("=", 1) for kv in line.split()[1:])
            return {"op": d["op"], "ops": int(d["ops"]), "bytes": int(d["bytes"]),
                    "seconds": float(d["seconds"]), "crc": int(d["crc"], 16)}
    raise ValueError(f"no @@IO line in guest_io's output: {out[-300:]!r}")


# ------------------------------------------------------------------ TCP
CHUNK = 1 << 20


def send(addr, port, nbytes, timeout=600):
    """Connect, send nbytes, half-close, and wait until the guest closes
    (it has read everything).  The data is incompressible."""
    block = random.Random(nbytes).randbytes(CHUNK)
    t0 = time.monotonic()
    with socket.create_connection((addr, port), timeout=timeout) as s:
        left = nbytes
        while left:
            n = min(left, CHUNK)
            s.sendall(block[:n])
            left -= n
        s.shutdown(socket.SHUT_WR)
        extra = 0
        while True:
            b = s.recv(65536)
            if not b:
                break
            extra += len(b)
    t1 = time.monotonic()
    return {"bytes": nbytes, "seconds": t1 - t0, "unexpected": extra}


def recv(addr, port, nbytes, timeout=600):
    """Connect and read until the guest half-closes; the guest sends zeros,
    so every byte is checked."""
    got = 0
    nonzero = 0
    zero = bytes(65536)
    t0 = time.monotonic()
    with socket.create_connection((addr, port), timeout=timeout) as s:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += len(b)
            if b != zero[:len(b)]:
                nonzero += 1
    t1 = time.monotonic()
    return {"bytes": got, "seconds": t1 - t0, "nonzero_chunks": nonzero, "expected": nbytes}


if __name__ == "__main__":
    what, addr, port, nbytes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    try:
        r = (send if what == "send" else recv)(addr, port, nbytes)
    except OSError as e:
        r = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(r), flush=True)

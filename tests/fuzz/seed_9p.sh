#!/bin/sh
# Seed corpus for the 9p target: message sequences a Linux client
# sends (walk, open, read, readdir, create, write, mkdir, symlink, link,
# rename, setattr, remove, lock, xattr, statfs, ...) over the trees the
# target shares (files a, d/b, d/e/c; symlinks root -> /, d/up -> ../..;
# a FIFO), in read-only and writable mode. Usage: seed_9p.sh OUTDIR
set -eu
out=$1
mkdir -p "$out"
/usr/bin/python3 - "$out" <<'PY'
import struct, sys, os
out = sys.argv[1]
def s(x):
    b = x.encode()
    return struct.pack('<H', len(b)) + b
def m(t, tag, body):
    return struct.pack('<IBH', 7 + len(body), t, tag) + body
d = lambda v: struct.pack('<I', v)
q = lambda v: struct.pack('<Q', v)
def walk(fid, new, *names):
    return m(110, 3, d(fid) + d(new) + struct.pack('<H', len(names)) + b''.join(s(n) for n in names))
lopen = lambda fid, fl: m(12, 4, d(fid) + d(fl))
read = lambda fid, off, n: m(116, 5, d(fid) + q(off) + d(n))
readdir = lambda fid, off, n: m(40, 6, d(fid) + q(off) + d(n))
getattr_ = lambda fid: m(24, 7, d(fid) + q(0x7ff))
clunk = lambda fid: m(120, 8, d(fid))
lcreate = lambda fid, name, fl, mode: m(14, 9, d(fid) + s(name) + d(fl) + d(mode) + d(0))
write = lambda fid, off, data: m(118, 10, d(fid) + q(off) + d(len(data)) + data)
mkdir = lambda fid, name: m(72, 11, d(fid) + s(name) + d(0o755) + d(0))
symlink = lambda fid, name, tgt: m(16, 12, d(fid) + s(name) + s(tgt) + d(0))
link = lambda dfid, fid, name: m(70, 13, d(dfid) + d(fid) + s(name))
readlink = lambda fid: m(22, 14, d(fid))
rename = lambda fid, dfid, name: m(20, 15, d(fid) + d(dfid) + s(name))
renameat = lambda a, an, b, bn: m(74, 16, d(a) + s(an) + d(b) + s(bn))
unlinkat = lambda fid, name, fl: m(76, 17, d(fid) + s(name) + d(fl))
setattr_ = lambda fid, valid, mode, size, at, mt: m(26, 18, d(fid) + d(valid) + d(mode) + d(0) + d(0) + q(size) + q(at) + q(0) + q(mt) + q(0))
mknod = lambda fid, name, mode: m(18, 19, d(fid) + s(name) + d(mode) + d(0) + d(0) + d(0))
statfs = lambda fid: m(8, 20, d(fid))
fsync = lambda fid: m(50, 21, d(fid) + d(0))
lock = lambda fid: m(52, 22, d(fid) + b'\x01' + d(0) + q(0) + q(100) + d(1) + s('guest'))
getlock = lambda fid: m(54, 23, d(fid) + b'\x00' + q(0) + q(100) + d(1) + s('guest'))
xwalk = lambda fid, new, name: m(30, 24, d(fid) + d(new) + s(name))
xcreate = lambda fid, name: m(32, 25, d(fid) + s(name) + q(4) + d(0))
remove = lambda fid: m(122, 26, d(fid))
flush = lambda tag: m(108, 27, struct.pack('<H', tag))
version = m(100, 0xffff, d(8192) + s('9P2000.L'))
attach = lambda fid, aname: m(104, 28, d(fid) + d(0xffffffff) + s('root') + s(aname) + d(0))
seqs = {
 'read': [walk(0, 1, 'a'), lopen(1, 0), read(1, 0, 100), read(1, 3, 2), getattr_(1), clunk(1)],
 'readdir': [walk(0, 1, 'd'), lopen(1, 0o200000), readdir(1, 0, 4000), readdir(1, 0, 40), clunk(1)],
 'deep': [walk(0, 1, 'd', 'e', 'c'), lopen(1, 0), read(1, 0, 8), walk(0, 2, 'd', 'e', '..', '..', '..'), getattr_(2)],
 'escape': [walk(0, 1, 'root', 'etc'), walk(0, 2, 'root'), readlink(2), lopen(2, 0), walk(0, 3, 'd', 'up', 'x'), walk(0, 4, '..', '..', 'etc')],
 'create': [walk(0, 1), lcreate(1, 'new', 0o102, 0o644), write(1, 0, b'hello'), read(1, 0, 5), fsync(1), clunk(1)],
 'mkdir': [mkdir(0, 'nd'), walk(0, 1, 'nd'), symlink(1, 'sl', '/etc'), readlink(1), mknod(0, 'ff', 0o10644), mknod(0, 'dev', 0o20644)],
 'rename': [walk(0, 1, 'a'), link(0, 1, 'a2'), rename(1, 0, 'a3'), renameat(0, 'a3', 0, 'a4'), unlinkat(0, 'a2', 0), walk(0, 2, 'd', 'e'), remove(2)],
 'setattr': [walk(0, 1, 'a'), setattr_(1, 1, 0o600, 0, 0, 0), setattr_(1, 8, 0, 3, 0, 0), setattr_(1, 0x1b0, 0, 0, 1000, 2000), getattr_(1)],
 'misc': [statfs(0), walk(0, 1, 'a'), lock(1), getlock(1), xwalk(1, 2, ''), read(2, 0, 10), xwalk(1, 3, 'user.x'), xcreate(1, 'user.y'), flush(3), clunk(2)],
 'session': [version, attach(5, ''), attach(6, 'd'), walk(5, 7, 'fifo'), lopen(7, 0), clunk(5), clunk(6)],
}
for name, msgs in seqs.items():
    for mode in (2, 3, 0xff):   # read-only / writable with fixed sizes; writable, small room
        body = bytes([mode if mode != 0xff else 0x43]) + b''.join(struct.pack('<H', len(x)) + x for x in msgs)
        open(os.path.join(out, f'{name}-{mode:02x}'), 'wb').write(body)
PY

#!/usr/bin/python3
"""Random writes through a mounted flat file, mirrored in an expected file.

usage: writes.py FLAT EXPECTED COUNT SEED [MAXLEN]

EXPECTED starts as the disk's current content (the caller makes it); every
write goes to FLAT with os.pwrite and to EXPECTED.  Offsets and sizes are
random: unaligned, sector- and grain-straddling, sometimes at the very end.
Every 97 writes, and at the end, FLAT is fsync'd and read back in part.
"""
import os
import random
import sys

flat, expected, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
maxlen = int(sys.argv[5]) if len(sys.argv) > 5 else 300000
rng = random.Random(seed)
fd = os.open(flat, os.O_RDWR)
size = os.fstat(fd).st_size
exp = bytearray(open(expected, 'rb').read())
assert len(exp) == size, (len(exp), size)
for i in range(count):
    kind = rng.random()
    if kind < 0.3:
        n = rng.randrange(1, 1024)
    elif kind < 0.9:
        n = rng.randrange(1, 70000)
    else:
        n = rng.randrange(1, maxlen)
    if rng.random() < 0.2:   # straddle a 64 KiB grain boundary
        off = rng.randrange(1, size // 65536) * 65536 - rng.randrange(1, 600)
    else:
        off = rng.randrange(0, size)
    n = min(n, size - off)
    data = rng.randbytes(n) if rng.random() < 0.8 else bytes([rng.randrange(256)]) * n
    w = os.pwrite(fd, data, off)
    if w != n:
        sys.exit(f'write {i}: pwrite({off}, {n}) returned {w}')
    exp[off:off + n] = data
    if i % 97 == 96 or i == count - 1:
        os.fsync(fd)
        o = rng.randrange(0, size - 4096)
        if os.pread(fd, 4096, o) != exp[o:o + 4096]:
            sys.exit(f'read-back after write {i} at {o} differs')
# Past the end: ENOSPC, the disk cannot grow.
try:
    os.pwrite(fd, b'x', size)
    sys.exit('a write past the end of the disk succeeded')
except OSError as e:
    if e.errno != 28:
        sys.exit(f'write past the end: {e}')
os.close(fd)
open(expected, 'wb').write(exp)

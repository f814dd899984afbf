#!/usr/bin/python3
"""Write workload for the crash test, and its checker.

  crash-load.py write FLAT ACKLOG ROUND   write until killed
  crash-load.py check RAW ACKLOG          every acknowledged write present?

The disk is cut into 256 KiB slots, each written once per round at most
(rounds use disjoint slots), so an acknowledged write is never overwritten
later.  A batch of writes is acknowledged by fsync on the flat file; only
then is it recorded (and fsync'd) in ACKLOG.  Data is derived from
(round, batch, index), so the checker can rebuild it.
"""
import os
import random
import sys

SLOT = 256 * 1024


def data_for(rnd, batch, i, n):
    return random.Random(f'{rnd}/{batch}/{i}').randbytes(n)


def slots_for(size, rnd):
    slots = list(range(size // SLOT))
    random.Random(12345).shuffle(slots)
    per_round = len(slots) // 8
    return slots[rnd * per_round:(rnd + 1) * per_round]


def write(flat, acklog, rnd):
    fd = os.open(flat, os.O_RDWR)
    size = os.fstat(fd).st_size
    log = open(acklog, 'a')
    rng = random.Random(rnd)
    slots = slots_for(size, rnd)
    batch = 0
    while slots:
        recs = []
        for i in range(min(len(slots), rng.randrange(1, 6))):
            s = slots.pop()
            off = s * SLOT + rng.randrange(0, 4096)
            n = rng.randrange(1, SLOT - 4096)
            os.pwrite(fd, data_for(rnd, batch, i, n), off)
            recs.append((i, off, n))
        os.fsync(fd)
        for i, off, n in recs:
            log.write(f'{rnd} {batch} {i} {off} {n}\n')
        log.flush()
        os.fsync(log.fileno())
        batch += 1


def check(raw, acklog):
    img = open(raw, 'rb')
    count = 0
    for line in open(acklog):
        rnd, batch, i, off, n = map(int, line.split())
        img.seek(off)
        if img.read(n) != data_for(rnd, batch, i, n):
            sys.exit(f'acknowledged write lost: round {rnd} batch {batch} '
                     f'#{i} at {off}, {n} bytes')
        count += 1
    print(f'{count} acknowledged writes present')


if sys.argv[1] == 'write':
    write(sys.argv[2], sys.argv[3], int(sys.argv[4]))
else:
    check(sys.argv[2], sys.argv[3])

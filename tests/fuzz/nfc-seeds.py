#!/usr/bin/python3
"""Seeds for tests/fuzz/nfc-fuzz: a header (how the disk is opened, what is
asked) and the host's side of one NFC session, as the lab's NFC server
(tests/lab) answers, after the records it follows (cloudbase
OpenVixDiskLib docs/nfc_open.md, nfc_read.md, nfc_write.md): the classic
replies 36, 51 (version 11), 52; AIO replies to OPEN_SESSION,
SET_SOCK_OPTS, SET_RES_POOL, OPEN_FILE; read replies in fragments of the
session buffer; write acknowledgements; CLOSE_FILE, CLOSE_SESSION.  The
fuzzer mutates from these; they are not an oracle for anything.

usage: nfc-seeds.py DIR"""
import os
import struct
import sys

MAGIC = 0xA100DA7A
SIZE = 4 << 20  # the disk's size in OPEN_FILE's reply


def classic(t, a4=0):
    m = bytearray(264)
    struct.pack_into("<II", m, 0, t, a4)
    return bytes(m)


def aio(t, op, payload=b"", extra=b""):
    return struct.pack("<IIII", MAGIC, t, len(payload), op) + payload + extra


def io_reply(op, req_off, req_len, frag, data):
    p = struct.pack("<QQQIIIII", 0, 1, req_off, req_len, frag, len(data),
                    len(data), 0)
    return aio(7, op, p, data)


def ack(op):
    return aio(7, op, bytes(44))


def session(readonly, nslots, max_io, bufsize, ops, split_order=False):
    """The header and the host's bytes for OPS [(write, start_4k, sectors,
    stream)], as nfc-fuzz asks them (one request per read of at most
    MAX_IO; no read-ahead in these seeds but for STREAM ops' first
    request)."""
    flags = 0 if readonly else 1
    hdr = bytes([flags, nslots - 1, max_io // 512 - 1, bufsize // 512 - 1,
                 len(ops), 0, 0, 0])
    for w, start, sectors, stream in ops:
        hdr += bytes([(1 if w else 0) | (2 if stream else 0), start,
                      (sectors - 1) & 0xff, (sectors - 1) >> 8])
    host = classic(36) + classic(51, 11) + classic(52)
    host += aio(2, 0, bytes(16)) + aio(9, 1, struct.pack("<III", 1 << 20,
                                                          1 << 20, 0))
    host += aio(22, 2, bytes(4))
    host += aio(4, 3, struct.pack("<QQ12sQI", 0, 0x1234, b"", SIZE, 512)
                + bytes(20))
    op = 4
    for w, start, sectors, stream in ops:
        off, ln = start * 4096, sectors * 512
        if w:
            ln = min(ln, 65536)
            for _ in range(0, ln, max_io):
                host += ack(op)
                op += 1
            continue
        for r in range(off, off + ln, max_io):
            rl = min(max_io, off + ln - r)
            frags = [(f, min(bufsize, rl - f)) for f in range(0, rl, bufsize)]
            if split_order:
                frags.reverse()
            for f, fl in frags:
                host += io_reply(op, r, rl, f, os.urandom(fl))
            op += 1
    host += aio(5, op, bytes(8)) + aio(3, op + 1, bytes(4))
    return hdr + host


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    seeds = {
        "read-one": session(True, 4, 65536, 65536, [(0, 0, 8, 0)]),
        "read-frags": session(True, 4, 65536, 4096, [(0, 1, 128, 0)]),
        "read-reordered": session(True, 2, 16384, 4096, [(0, 2, 64, 0)],
                                  split_order=True),
        "read-two": session(True, 8, 8192, 8192,
                            [(0, 0, 16, 0), (0, 3, 40, 0)]),
        "write": session(False, 4, 65536, 16384,
                         [(1, 0, 64, 0), (0, 0, 64, 0)]),
        "open-only": session(True, 4, 65536, 65536, []),
    }
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()

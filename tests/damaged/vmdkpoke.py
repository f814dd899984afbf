#!/usr/bin/python3
"""vmdkpoke.py - locate and damage fields of VMDK files (for test-damaged.sh).

Standard library only.  All offsets printed or taken are bytes.

  vmdkpoke.py set FILE OFFSET FMT VALUE
        struct.pack_into("<FMT", ...) VALUE (an integer, 0x.. allowed) at
        OFFSET; FMT "raw" takes VALUE as hex bytes instead.
  vmdkpoke.py kdmv-gde FILE INDEX
        byte offset of KDMV grain directory entry INDEX (footer used when
        the header says GD_AT_END).
  vmdkpoke.py kdmv-gte FILE GRAIN
        byte offset of the grain table entry of GRAIN.
  vmdkpoke.py kdmv-grain FILE GRAIN
        byte offset the grain table entry of GRAIN points at (the grain, or
        its marker in a stream); fails if the grain is not allocated.
  vmdkpoke.py se-gte FILE GRAIN
        byte offset of the grain table entry of GRAIN in an SEsparse extent.
  vmdkpoke.py mkstream RAW OUT.vmdk [--no-footer]
        write a VMware-style streamOptimized file (GD_AT_END, grain tables,
        grain directory and footer after the grains, as VMware and
        python3-vmdkstream write it).  --no-footer: stop after the grains
        (a writer that died before the end): no tables, no footer, only an
        end-of-stream marker.
"""

import os
import struct
import sys
import zlib

SECTOR = 512
GD_AT_END = 0xFFFFFFFFFFFFFFFF


def die(msg):
    print("vmdkpoke.py: %s" % msg, file=sys.stderr)
    sys.exit(2)


def read_at(f, off, n):
    f.seek(off)
    return f.read(n)


def kdmv_header(f):
    h = read_at(f, 0, SECTOR)
    if h[:4] != b"KDMV":
        die("not a KDMV file")
    gd = struct.unpack_from("<Q", h, 56)[0]
    if gd == GD_AT_END:
        f.seek(0, os.SEEK_END)
        h = read_at(f, f.tell() - 1024, SECTOR)
        if h[:4] != b"KDMV":
            die("no footer")
    return h


def kdmv_gde(f, index):
    h = kdmv_header(f)
    return struct.unpack_from("<Q", h, 56)[0] * SECTOR + 4 * index


def kdmv_gte(f, grain):
    h = kdmv_header(f)
    ngte = struct.unpack_from("<I", h, 44)[0]
    gde_off = kdmv_gde(f, grain // ngte)
    gt = struct.unpack("<I", read_at(f, gde_off, 4))[0]
    if gt == 0:
        die("grain %d has no grain table" % grain)
    return gt * SECTOR + 4 * (grain % ngte)


def kdmv_grain(f, grain):
    gte = struct.unpack("<I", read_at(f, kdmv_gte(f, grain), 4))[0]
    if gte in (0, 1):
        die("grain %d is not allocated (entry %d)" % (grain, gte))
    return gte * SECTOR


def se_gte(f, grain):
    c = read_at(f, 0, SECTOR)
    q = struct.unpack_from("<26Q", c, 0)
    if q[0] != 0xCAFEBABE:
        die("not an SEsparse file")
    gts, gdo, gto = q[4], q[16], q[18]
    nent = gts * SECTOR // 8
    gde = struct.unpack("<Q", read_at(f, gdo * SECTOR + 8 * (grain // nent),
                                      8))[0]
    if gde == 0:
        die("grain %d has no grain table" % grain)
    return (gto + (gde & 0xFFFFFFFF) * gts) * SECTOR + 8 * (grain % nent)


def cmd_set(path, off, fmt, value):
    if fmt == "raw":
        data = bytes.fromhex(value)
    else:
        data = struct.pack("<" + fmt, int(value, 0))
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(data)


def mkstream(raw_path, out_path, no_footer):
    grain = 128
    gb = grain * SECTOR
    ngte = 512
    raw = open(raw_path, "rb").read()
    if not raw or len(raw) % SECTOR:
        die("%s: size must be a non-zero multiple of 512" % raw_path)
    cap = len(raw) // SECTOR
    ngrains = -(-cap // grain)
    ngd = -(-ngrains // ngte)
    name = os.path.basename(out_path)
    desc = ("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\n"
            "CID=5a5a5a5a\nparentCID=ffffffff\nisNativeSnapshot=\"no\"\n"
            "createType=\"streamOptimized\"\n\n# Extent description\n"
            "RW %d SPARSE \"%s\"\n\n# The Disk Data Base\n#DDB\n\n"
            "ddb.adapterType = \"lsilogic\"\n"
            "ddb.virtualHWVersion = \"14\"\n" % (cap, name)).encode()
    desc_sectors = 2
    overhead = 128

    def header(gd_offset):
        h = bytearray(SECTOR)
        struct.pack_into("<4sIIQQQQIQQQ", h, 0, b"KDMV", 3, 0x30001, cap,
                         grain, 1, desc_sectors, ngte, 0, gd_offset, overhead)
        h[72] = 0
        h[73:77] = b"\n \r\n"
        struct.pack_into("<H", h, 77, 1)
        return bytes(h)

    def marker(value, mtype):
        return struct.pack("<QII", value, 0, mtype).ljust(SECTOR, b"\0")

    out = bytearray()
    out += header(GD_AT_END)
    out += desc.ljust(desc_sectors * SECTOR, b"\0")
    out += bytes(overhead * SECTOR - len(out))
    gtes = [0] * (ngd * ngte)
    for g in range(ngrains):
        data = raw[g * gb:(g + 1) * gb]
        if not any(data):
            continue
        z = zlib.compress(data)
        gtes[g] = len(out) // SECTOR
        rec = struct.pack("<QI", g * grain, len(z)) + z
        out += rec.ljust(-(-len(rec) // SECTOR) * SECTOR, b"\0")
    if not no_footer:
        gt_sectors = ngte * 4 // SECTOR
        gd = []
        for t in range(ngd):
            out += marker(gt_sectors, 1)
            gd.append(len(out) // SECTOR)
            out += struct.pack("<%dI" % ngte, *gtes[t * ngte:(t + 1) * ngte])
        gd_sectors = -(-ngd * 4 // SECTOR)
        out += marker(gd_sectors, 2)
        gd_off = len(out) // SECTOR
        out += struct.pack("<%dI" % ngd, *gd).ljust(gd_sectors * SECTOR,
                                                    b"\0")
        out += marker(1, 3)
        out += header(gd_off)
    out += marker(0, 0)
    with open(out_path, "wb") as f:
        f.write(out)


def main():
    a = sys.argv[1:]
    if not a:
        die("usage: see the top of this file")
    cmd = a[0]
    if cmd == "set" and len(a) == 5:
        cmd_set(a[1], int(a[2], 0), a[3], a[4])
    elif cmd in ("kdmv-gde", "kdmv-gte", "kdmv-grain", "se-gte") and \
            len(a) == 3:
        fn = {"kdmv-gde": kdmv_gde, "kdmv-gte": kdmv_gte,
              "kdmv-grain": kdmv_grain, "se-gte": se_gte}[cmd]
        with open(a[1], "rb") as f:
            print(fn(f, int(a[2], 0)))
    elif cmd == "mkstream" and len(a) in (3, 4):
        if len(a) == 4 and a[3] != "--no-footer":
            die("unknown option %s" % a[3])
        mkstream(a[1], a[2], len(a) == 4)
    else:
        die("bad arguments (see the top of this file)")


if __name__ == "__main__":
    main()

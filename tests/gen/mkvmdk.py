#!/usr/bin/python3
"""mkvmdk.py - build COWD (vmfsSparse) and SEsparse VMDK test images.

No tool packaged for Debian writes these two formats, so vmdkfs's tests make
them with this script (standard library only, Python 3.11).  Its output is
checked against qemu-img by tests/test-gen-oracle.sh.

Usage:
  mkvmdk.py cowd     RAW OUT.vmdk [--parent PARENT.vmdk] [--grain SECTORS]
                                  [--sparse-skip-zero] [--map MAPSPEC]
  mkvmdk.py sesparse RAW OUT.vmdk [--parent PARENT.vmdk] [--grain SECTORS]
                                  [--map MAPSPEC] [--replay-journal]
                                  [--layout vmware|compact] [--first-cluster N]
                                  [--cluster-order reverse|forward]
  mkvmdk.py expected-raw DESCRIPTOR.vmdk OUT.raw [--unmapped zero|parent]

Common extra options (for tests): --cid HEX, --parent-cid HEX (force a value,
e.g. a wrong one for a CID-mismatch test).

RAW is a raw disk image; its size (a multiple of 512) is the capacity.
OUT.vmdk is written as a text descriptor and the extent beside it as
OUT-delta.vmdk (COWD) or OUT-sesparse.vmdk (SEsparse).

Grain allocation: every grain of RAW that is not all zeros is allocated and
written; all-zero grains stay unallocated (they read through to the parent,
or as zeros on a base).  --map overrides single grains: a comma-separated list
of GRAIN_INDEX:KIND, KIND one of
  data      allocate the grain and write RAW's bytes (even if all zero)
  unalloc   leave the grain unallocated
  zero      (SEsparse) grain table entry type 2, "zero grain"
  unmapped  (SEsparse) grain table entry type 1, "SCSI-unmapped grain".  If
            RAW's grain is not all zero its bytes are stored in a cluster of
            the image and the entry keeps that cluster's number (a stale
            mapping, as VMware leaves it after an UNMAP), so a reader that
            wrongly treats type 1 as allocated returns RAW's bytes and fails.

COWD --sparse-skip-zero: without it, every grain directory entry points at a
grain table (tables with no allocated grain are written all zero); with it,
grain tables that would be all zero are not written and their grain
directory entry is 0.

expected-raw: an independent, simple reader that writes the raw content of a
descriptor chain (FLAT/VMFS/ZERO/SPARSE(KDMV or COWD)/VMFSSPARSE/SESPARSE
extents, monolithicSparse and streamOptimized files, parents found through
parentFileNameHint).  SEsparse type 1 grains read as zeros, as in qemu, unless
--unmapped parent is given.  It holds the whole disk in memory: test-sized
images only.
"""

import argparse
import os
import random
import re
import struct
import sys
import zlib

SECTOR = 512

COWD_MAGIC = b"COWD"
COWD_HEADER_SECTORS = 4          # 2048-byte header; grain directory at sector 4
COWD_GTES = 4096                 # entries per COWD grain table (u32)
COWD_GT_SECTORS = COWD_GTES * 4 // SECTOR   # 32

SE_CONST_MAGIC = 0xCAFEBABE
SE_VOLATILE_MAGIC = 0xCAFECAFE
SE_VERSION = 0x0000000200000001
SE_GTES = 4096                   # entries per SEsparse grain table (u64)
SE_GT_SECTORS = SE_GTES * 8 // SECTOR       # 64
SE_GD_VALID = 0x1000000000000000
SE_TYPE_MASK = 0xF000000000000000
SE_UNALLOC = 0x0 << 60
SE_UNMAPPED = 0x1 << 60
SE_ZERO = 0x2 << 60
SE_ALLOC = 0x3 << 60

KDMV_MAGIC = b"KDMV"
NO_PARENT_CID = 0xFFFFFFFF


def die(msg):
    print("mkvmdk.py: error: %s" % msg, file=sys.stderr)
    sys.exit(2)


def warn(msg):
    print("mkvmdk.py: warning: %s" % msg, file=sys.stderr)


def ceil_div(a, b):
    return -(-a // b)


def round_up(a, b):
    return ceil_div(a, b) * b


# --------------------------------------------------------------------------
# Descriptor helpers
# --------------------------------------------------------------------------

def read_descriptor_text(path):
    """Return the descriptor text of PATH: a text descriptor file, or the
    descriptor embedded in a hosted sparse (KDMV) extent."""
    with open(path, "rb") as f:
        head = f.read(SECTOR)
        if head[:4] == KDMV_MAGIC:
            desc_off, desc_size = struct.unpack_from("<QQ", head, 28)
            if desc_off == 0 or desc_size == 0:
                die("%s: sparse extent without an embedded descriptor" % path)
            f.seek(desc_off * SECTOR)
            data = f.read(desc_size * SECTOR)
        elif head[:4] == COWD_MAGIC or \
                head[:8] == struct.pack("<Q", SE_CONST_MAGIC):
            die("%s: is an extent file, give its descriptor" % path)
        else:
            f.seek(0)
            data = f.read(1 << 20)
    data = data.split(b"\0", 1)[0]
    return data.decode("utf-8", "replace")


def descriptor_value(text, key):
    """Value of KEY=VALUE in a descriptor (quotes stripped), or None."""
    m = re.search(r'^[ \t]*' + re.escape(key) + r'[ \t]*=[ \t]*"?([^"\r\n]*)"?',
                  text, re.MULTILINE)
    return m.group(1).strip() if m else None


def descriptor_cid(path):
    text = read_descriptor_text(path)
    v = descriptor_value(text, "CID")
    if v is None:
        die("%s: no CID in descriptor" % path)
    try:
        return int(v, 16)
    except ValueError:
        die("%s: bad CID %r" % (path, v))


EXTENT_RE = re.compile(
    r'^[ \t]*(RW|RDONLY|NOACCESS)[ \t]+(\d+)[ \t]+([A-Z]+)'
    r'(?:[ \t]+"([^"]*)"(?:[ \t]+(\d+))?)?[ \t]*\r?$', re.MULTILINE)


def descriptor_extents(text):
    return [(m.group(1), int(m.group(2)), m.group(3), m.group(4),
             int(m.group(5)) if m.group(5) else 0)
            for m in EXTENT_RE.finditer(text)]


def image_capacity(path):
    """Capacity in sectors of a VMDK (descriptor or monolithic sparse)."""
    with open(path, "rb") as f:
        head = f.read(SECTOR)
    if head[:4] == KDMV_MAGIC:
        cap = struct.unpack_from("<Q", head, 12)[0]
        if cap:
            return cap
    return sum(e[1] for e in descriptor_extents(read_descriptor_text(path)))


def random_cid():
    while True:
        cid = random.SystemRandom().getrandbits(32)
        if cid not in (0xFFFFFFFF, 0xFFFFFFFE):
            return cid


def write_descriptor(path, create_type, extent_line, cid, parent_cid,
                     parent_hint, capacity, extra_ddb):
    lines = [
        "# Disk DescriptorFile",
        "version=1",
        'encoding="UTF-8"',
        "CID=%08x" % cid,
        "parentCID=%08x" % parent_cid,
        'isNativeSnapshot="no"',
        'createType="%s"' % create_type,
    ]
    if parent_hint is not None:
        lines.append('parentFileNameHint="%s"' % parent_hint)
    lines += [
        "",
        "# Extent description",
        extent_line,
        "",
        "# The Disk Data Base",
        "#DDB",
        "",
    ]
    if parent_hint is None:
        heads, spt = 255, 63
        cyl = max(1, min(capacity // (heads * spt), 65535))
        lines += [
            'ddb.adapterType = "lsilogic"',
            'ddb.geometry.cylinders = "%d"' % cyl,
            'ddb.geometry.heads = "%d"' % heads,
            'ddb.geometry.sectors = "%d"' % spt,
        ]
    lines += [
        'ddb.longContentID = "%032x"' % random.SystemRandom().getrandbits(128),
        'ddb.virtualHWVersion = "14"',
    ]
    lines += extra_ddb
    with open(path, "w", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# Reading RAW and deciding grain kinds
# --------------------------------------------------------------------------

class Raw:
    def __init__(self, path, grain_sectors):
        self.path = path
        self.f = open(path, "rb")
        size = os.fstat(self.f.fileno()).st_size
        if size == 0 or size % SECTOR:
            die("%s: size %d is not a non-zero multiple of 512" % (path, size))
        self.size = size
        self.capacity = size // SECTOR
        self.grain_bytes = grain_sectors * SECTOR
        self.ngrains = ceil_div(size, self.grain_bytes)

    def grain(self, g):
        """Bytes of grain G, zero-padded to a full grain at the end."""
        self.f.seek(g * self.grain_bytes)
        data = self.f.read(self.grain_bytes)
        if len(data) < self.grain_bytes:
            data += bytes(self.grain_bytes - len(data))
        return data

    def nonzero_grains(self):
        """Indices of grains that are not all zero (holes skipped fast)."""
        gb = self.grain_bytes
        chunk = max(gb, (1 << 20) // gb * gb)
        zchunk = bytes(chunk)
        zgrain = bytes(gb)
        fd = self.f.fileno()
        out = []
        pos = 0
        while pos < self.size:
            try:
                data_pos = os.lseek(fd, pos, os.SEEK_DATA)
            except (OSError, AttributeError):
                data_pos = self.size
            if data_pos >= self.size:
                break
            pos = data_pos // gb * gb
            self.f.seek(pos)
            buf = self.f.read(chunk)
            if not buf:
                break
            if buf != zchunk[:len(buf)]:
                mv = memoryview(buf)
                for off in range(0, len(buf), gb):
                    piece = mv[off:off + gb]
                    if piece != zgrain[:len(piece)]:
                        out.append((pos + off) // gb)
            pos += len(buf)
        return out


def parse_map(spec, ngrains, allowed):
    result = {}
    if not spec:
        return result
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            idx_s, kind = item.split(":", 1)
            idx = int(idx_s, 0)
        except ValueError:
            die("bad --map item %r (want GRAIN_INDEX:KIND)" % item)
        if kind not in allowed:
            die("bad --map kind %r (allowed: %s)" % (kind, ", ".join(allowed)))
        if not 0 <= idx < ngrains:
            die("--map grain %d out of range (the disk has %d grains)"
                % (idx, ngrains))
        result[idx] = kind
    return result


def plan_grains(raw, mapspec, allowed):
    """Dict grain index -> kind for every grain that is not 'unalloc'."""
    kinds = {g: "data" for g in raw.nonzero_grains()}
    for g, kind in parse_map(mapspec, raw.ngrains, allowed).items():
        if kind == "unalloc":
            kinds.pop(g, None)
        else:
            kinds[g] = kind
    return kinds


class SparseWriter:
    """Writes only non-zero pieces, so untouched ranges stay holes."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.end = 0

    def write(self, offset, data):
        if any(data):
            self.f.seek(offset)
            self.f.write(data)
        self.end = max(self.end, offset + len(data))

    def close(self, size=None):
        self.f.truncate(self.end if size is None else size)
        self.f.close()


# --------------------------------------------------------------------------
# Common front end for the two writers
# --------------------------------------------------------------------------

def resolve_parent(args, out_path, capacity):
    """(parent_cid, parent_hint) from --parent / --parent-cid."""
    if args.parent is None:
        parent_cid, hint = NO_PARENT_CID, None
    else:
        if not os.path.exists(args.parent):
            die("parent %s does not exist" % args.parent)
        parent_cid = descriptor_cid(args.parent)
        out_dir = os.path.dirname(os.path.abspath(out_path))
        hint = os.path.relpath(os.path.abspath(args.parent), out_dir)
        pcap = image_capacity(args.parent)
        if pcap != capacity:
            warn("parent capacity %d sectors != RAW capacity %d sectors"
                 % (pcap, capacity))
    if args.parent_cid is not None:
        parent_cid = int(args.parent_cid, 16)
    return parent_cid, hint


def extent_paths(out_path, suffix):
    if not out_path.endswith(".vmdk"):
        die("OUT must end in .vmdk: %s" % out_path)
    base = out_path[:-len(".vmdk")]
    ext_path = base + suffix
    return ext_path, os.path.basename(ext_path)


# --------------------------------------------------------------------------
# COWD (vmfsSparse)
# --------------------------------------------------------------------------
#
# Header (2048 bytes, little-endian u32 unless said otherwise):
#     0  magic "COWD" (bytes)        4  version = 1
#     8  flags = 3 (ROOT|CHECKCAPABLE)
#    12  numSectors (capacity)      16  grainSize (sectors)
#    20  gdOffset (sectors) = 4     24  numGDEntries
#    28  freeSector (next free sector = file size in sectors)
#    32  union: root {cylinders 32, heads 36, sectors 40}
#              child {parentFileName[1024] 32, parentGeneration 1056}
#  1060  generation                1064  name[60]
#  1124  description[512]          1636  savedGeneration
#  1640  reserved[8]               1648  uncleanShutdown = 0
#  1652  padding to 2048
# Grain directory: numGDEntries u32 sector numbers of grain tables.
# Grain table: 4096 u32 sector numbers of grains (0 = unallocated).

def cmd_cowd(args):
    grain = args.grain if args.grain is not None else 1
    if grain < 1:
        die("--grain must be >= 1")
    raw = Raw(args.raw, grain)
    cap = raw.capacity
    if cap > 0xFFFFFFFF:
        die("COWD capacity is limited to 2^32-1 sectors")
    kinds = plan_grains(raw, args.map, ("data", "unalloc"))
    parent_cid, hint = resolve_parent(args, args.out, cap)
    cid = int(args.cid, 16) if args.cid else random_cid()
    ext_path, ext_name = extent_paths(args.out, "-delta.vmdk")

    gt_span = COWD_GTES * grain
    num_gd = ceil_div(cap, gt_span)
    gd_sectors = ceil_div(num_gd * 4, SECTOR)
    used_gts = sorted({g // COWD_GTES for g in kinds})
    tables = used_gts if args.sparse_skip_zero else list(range(num_gd))

    nxt = COWD_HEADER_SECTORS + gd_sectors
    gd = [0] * num_gd
    for t in tables:
        gd[t] = nxt
        nxt += COWD_GT_SECTORS
    gtes = {}
    for g in sorted(kinds):
        gtes[g] = nxt
        nxt += grain
    free_sector = nxt
    if free_sector > 0xFFFFFFFF:
        die("COWD file would exceed 2^32 sectors")

    hdr = bytearray(2048)
    hdr[0:4] = COWD_MAGIC
    struct.pack_into("<7I", hdr, 4, 1, 3, cap, grain, COWD_HEADER_SECTORS,
                     num_gd, free_sector)
    if hint is None:
        heads, spt = 255, 63
        cyl = max(1, min(cap // (heads * spt), 65535))
        struct.pack_into("<3I", hdr, 32, cyl, heads, spt)
    else:
        name = hint.encode("utf-8")[:1023]
        hdr[32:32 + len(name)] = name
        struct.pack_into("<I", hdr, 1056, 0)          # parentGeneration
    struct.pack_into("<I", hdr, 1060, 0)              # generation
    struct.pack_into("<I", hdr, 1636, 0)              # savedGeneration
    struct.pack_into("<I", hdr, 1648, 0)              # uncleanShutdown

    w = SparseWriter(ext_path)
    w.write(0, bytes(hdr))
    w.write(COWD_HEADER_SECTORS * SECTOR,
            struct.pack("<%dI" % num_gd, *gd).ljust(gd_sectors * SECTOR, b"\0"))
    for t in tables:
        entries = [gtes.get(t * COWD_GTES + i, 0) for i in range(COWD_GTES)]
        w.write(gd[t] * SECTOR, struct.pack("<%dI" % COWD_GTES, *entries))
    for g, sec in gtes.items():
        w.write(sec * SECTOR, raw.grain(g))
    w.close(free_sector * SECTOR)

    write_descriptor(args.out, "vmfsSparse",
                     'RW %d VMFSSPARSE "%s"' % (cap, ext_name),
                     cid, parent_cid, hint, cap, [])


# --------------------------------------------------------------------------
# SEsparse
# --------------------------------------------------------------------------
#
# Constant header, sector 0, little-endian u64 at byte offset:
#     0 magic 0xcafebabe     8 version 0x0000000200000001
#    16 capacity (sectors)  24 grainSize = 8        32 grainTableSize = 64
#    40 flags = 0           48..79 reserved1..4 = 0
#    80 volatileHeader offset,  88 size     (sectors, as all that follow)
#    96 journalHeader offset,  104 size
#   112 journal offset,        120 size
#   128 grainDirectory offset, 136 size
#   144 grainTables offset,    152 size
#   160 freeBitmap offset,     168 size
#   176 backMap offset,        184 size
#   192 grains offset,         200 size
#   208..511 zero padding (qemu requires it zero)
# Volatile header (u64): 0 magic 0xcafecafe, 8 freeGTNumber,
#   16 nextTxnSeqNumber, 24 replayJournal, 32..511 zero padding.
# Grain directory entry: 0, or 0x1000000000000000 | table index (the table
#   is at grainTables offset + index * 64 sectors).
# Grain table entry: top nibble = type (0 unallocated, 1 unmapped, 2 zero,
#   3 allocated); type 3 (and a stale type 1) cluster number c is stored as
#   ((c & 0xfff) << 48) | (c >> 12); data at grains offset + c * 8 sectors.
#
# --layout vmware mirrors the layout ESXi logs for a new snapshot (regions
# 1 MiB aligned, each at least 2048 sectors: volatile <1:1>, journal header
# <2:2>, journal <2048:2048>, grain directory <4096:...>, ...); --layout
# compact packs the regions, 4 KiB aligned.  Grain tables get indices in
# reverse grain-directory order and clusters are handed out in reverse grain
# order, starting at --first-cluster, so a reader that confuses indices
# with positions reads the wrong data.  The free bitmap and back map are
# left zero (qemu does not read them; their exact encoding is not known).

def se_encode_cluster(c):
    return ((c & 0xFFF) << 48) | (c >> 12)


def se_decode_cluster(e):
    return ((e >> 48) & 0xFFF) | ((e & 0xFFFFFFFFFFFF) << 12)


def cmd_sesparse(args):
    grain = args.grain if args.grain is not None else 8
    if grain < 1:
        die("--grain must be >= 1")
    if grain != 8:
        warn("grain size %d: VMware and qemu only use/accept 8" % grain)
    raw = Raw(args.raw, grain)
    cap = raw.capacity
    kinds = plan_grains(raw, args.map, ("data", "unalloc", "zero", "unmapped"))
    parent_cid, hint = resolve_parent(args, args.out, cap)
    cid = int(args.cid, 16) if args.cid else random_cid()
    ext_path, ext_name = extent_paths(args.out, "-sesparse.vmdk")

    ngrains = raw.ngrains
    num_gt = ceil_div(ngrains, SE_GTES)
    gd_need = max(1, ceil_div(num_gt * 8, SECTOR))
    gt_need = num_gt * SE_GT_SECTORS
    fb_need = max(1, ceil_div(ceil_div(ngrains, 8), SECTOR))
    bm_need = max(1, ceil_div(ngrains * 8, SECTOR))

    # Which grains need a cluster: data, and unmapped with non-zero RAW data.
    stale = {}
    cluster_grains = []
    for g in sorted(kinds):
        k = kinds[g]
        if k == "data":
            cluster_grains.append(g)
        elif k == "unmapped":
            data = raw.grain(g)
            if any(data):
                stale[g] = data
                cluster_grains.append(g)
    first = args.first_cluster
    cluster_of = {}
    order = cluster_grains if args.cluster_order == "forward" else reversed(cluster_grains)
    for n, g in enumerate(order):
        cluster_of[g] = first + n
    nclusters = first + len(cluster_grains)
    grains_need = max(ngrains, nclusters) * grain

    if args.layout == "vmware":
        A = 2048
        vh = (1, 1)
        jh = (2, 2)
        jr = (A, A)
        nxt = 2 * A
        regions = []
        for need in (gd_need, gt_need, fb_need, bm_need):
            size = round_up(need, A)
            regions.append((nxt, size))
            nxt += size
        gdr, gtr, fbr, bmr = regions
        grs = (nxt, grains_need)
    else:
        A = 8
        vh = (1, 1)
        jh = (2, 1)
        jr = (A, A)
        nxt = 2 * A
        regions = []
        for need in (gd_need, gt_need, fb_need, bm_need):
            size = round_up(need, A)
            regions.append((nxt, size))
            nxt += size
        gdr, gtr, fbr, bmr = regions
        grs = (nxt, grains_need)

    used_gts = sorted({g // SE_GTES for g in kinds})
    table_index = {}
    for n, t in enumerate(reversed(used_gts)):
        table_index[t] = n
    gd = [0] * (gdr[1] * SECTOR // 8)
    for t, n in table_index.items():
        gd[t] = SE_GD_VALID | n
    if gtr[0] + len(used_gts) * SE_GT_SECTORS > 0xFFFFFFFF:
        die("grain tables beyond 2^32 sectors")

    const = bytearray(SECTOR)
    struct.pack_into("<6Q", const, 0, SE_CONST_MAGIC, SE_VERSION, cap, grain,
                     SE_GT_SECTORS, 0)
    struct.pack_into("<16Q", const, 80, *vh, *jh, *jr, *gdr, *gtr, *fbr, *bmr,
                     *grs)
    vol = bytearray(SECTOR)
    struct.pack_into("<4Q", vol, 0, SE_VOLATILE_MAGIC, len(used_gts), 0,
                     1 if args.replay_journal else 0)

    w = SparseWriter(ext_path)
    w.write(0, bytes(const))
    w.write(vh[0] * SECTOR, bytes(vol))
    # Only the used part of the (zero-initialised) directory is written.
    gd_used = round_up(max([t + 1 for t in table_index] + [1]), SECTOR // 8)
    w.write(gdr[0] * SECTOR, struct.pack("<%dQ" % gd_used, *gd[:gd_used]))
    for t, n in table_index.items():
        entries = []
        for i in range(SE_GTES):
            g = t * SE_GTES + i
            k = kinds.get(g)
            if k is None:
                e = SE_UNALLOC
            elif k == "data":
                e = SE_ALLOC | se_encode_cluster(cluster_of[g])
            elif k == "zero":
                e = SE_ZERO
            elif g in cluster_of:           # unmapped, stale mapping kept
                e = SE_UNMAPPED | se_encode_cluster(cluster_of[g])
            else:
                e = SE_UNMAPPED
            entries.append(e)
        w.write((gtr[0] + n * SE_GT_SECTORS) * SECTOR,
                struct.pack("<%dQ" % SE_GTES, *entries))
    for g, c in cluster_of.items():
        data = stale[g] if g in stale else raw.grain(g)
        w.write((grs[0] + c * grain) * SECTOR, data)
    # The file ends after the last cluster in use (ESXi grows it on demand),
    # but never before the end of the metadata regions.
    end = max(bmr[0] + bmr[1], grs[0] + nclusters * grain)
    w.close(end * SECTOR)

    write_descriptor(args.out, "seSparse",
                     'RW %d SESPARSE "%s"' % (cap, ext_name),
                     cid, parent_cid, hint, cap, ['ddb.grain = "%d"' % grain])


# --------------------------------------------------------------------------
# expected-raw: a small independent reader
# --------------------------------------------------------------------------
#
# Each extent reader fills a bytearray slice: alloc -> data, zero -> zeros,
# unallocated -> left as is (the caller pre-fills it with the parent's
# content, or zeros on a base).

def read_at(f, off, n):
    f.seek(off)
    d = f.read(n)
    return d + bytes(n - len(d))


def overlay_kdmv(f, buf, base, sectors, unmapped):
    hdr = read_at(f, 0, SECTOR)
    (flags, cap, gsz, _doff, _dsz, ngte, _rgd, gdo, _ovh) = struct.unpack_from(
        "<IQQQQIQQQ", hdr, 8)
    comp = struct.unpack_from("<H", hdr, 77)[0]
    if gdo == 0xFFFFFFFFFFFFFFFF:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        hdr = read_at(f, end - 1024, SECTOR)
        (flags, cap, gsz, _doff, _dsz, ngte, _rgd, gdo, _ovh) = \
            struct.unpack_from("<IQQQQIQQQ", hdr, 8)
        comp = struct.unpack_from("<H", hdr, 77)[0]
    gb = gsz * SECTOR
    span = ngte * gsz
    ngd = ceil_div(cap, span)
    gd = struct.unpack("<%dI" % ngd, read_at(f, gdo * SECTOR, ngd * 4))
    limit = min(sectors, cap) * SECTOR
    for t, gto in enumerate(gd):
        if gto == 0:
            continue
        gt = struct.unpack("<%dI" % ngte, read_at(f, gto * SECTOR, ngte * 4))
        for i, e in enumerate(gt):
            off = (t * ngte + i) * gb
            if off >= limit or e == 0:
                continue
            n = min(gb, limit - off)
            if e == 1 and flags & 0x4:
                buf[base + off:base + off + n] = bytes(n)
            elif comp == 1:
                m = read_at(f, e * SECTOR, 12)
                size = struct.unpack_from("<I", m, 8)[0]
                data = zlib.decompress(read_at(f, e * SECTOR + 12, size))
                data = data.ljust(gb, b"\0")
                buf[base + off:base + off + n] = data[:n]
            else:
                buf[base + off:base + off + n] = read_at(f, e * SECTOR, n)


def overlay_cowd(f, buf, base, sectors, unmapped):
    hdr = read_at(f, 0, 32)
    (_ver, _flags, cap, gsz, gdo, ngd, _free) = struct.unpack_from("<7I", hdr, 4)
    gb = gsz * SECTOR
    gd = struct.unpack("<%dI" % ngd, read_at(f, gdo * SECTOR, ngd * 4))
    limit = min(sectors, cap) * SECTOR
    for t, gto in enumerate(gd):
        if gto == 0:
            continue
        gt = struct.unpack("<%dI" % COWD_GTES,
                           read_at(f, gto * SECTOR, COWD_GTES * 4))
        for i, e in enumerate(gt):
            off = (t * COWD_GTES + i) * gb
            if off >= limit or e == 0:
                continue
            n = min(gb, limit - off)
            buf[base + off:base + off + n] = read_at(f, e * SECTOR, n)


def overlay_sesparse(f, buf, base, sectors, unmapped):
    const = read_at(f, 0, SECTOR)
    q = struct.unpack_from("<26Q", const, 0)
    if q[0] != SE_CONST_MAGIC:
        die("SEsparse: bad magic")
    cap, gsz, gts = q[2], q[3], q[4]
    vol = read_at(f, q[10] * SECTOR, SECTOR)
    if struct.unpack_from("<Q", vol, 24)[0]:
        die("SEsparse: journal needs replay")
    gdo, gds, gto = q[16], q[17], q[18]
    grains = q[24]
    nent = gts * SECTOR // 8
    gb = gsz * SECTOR
    ngd = gds * SECTOR // 8
    gd = struct.unpack("<%dQ" % ngd, read_at(f, gdo * SECTOR, gds * SECTOR))
    limit = min(sectors, cap) * SECTOR
    for t, d in enumerate(gd):
        if d == 0:
            continue
        if d & 0xFFFFFFFF00000000 != SE_GD_VALID:
            die("SEsparse: bad grain directory entry %#x" % d)
        toff = (gto + (d & 0xFFFFFFFF) * gts) * SECTOR
        gt = struct.unpack("<%dQ" % nent, read_at(f, toff, nent * 8))
        for i, e in enumerate(gt):
            off = (t * nent + i) * gb
            if off >= limit:
                continue
            n = min(gb, limit - off)
            typ = e & SE_TYPE_MASK
            if typ == SE_UNALLOC:
                if e:
                    die("SEsparse: bad unallocated entry %#x" % e)
            elif typ == SE_UNMAPPED:
                if unmapped == "zero":
                    buf[base + off:base + off + n] = bytes(n)
            elif typ == SE_ZERO:
                buf[base + off:base + off + n] = bytes(n)
            elif typ == SE_ALLOC:
                c = se_decode_cluster(e)
                buf[base + off:base + off + n] = \
                    read_at(f, (grains + c * gsz) * SECTOR, n)
            else:
                die("SEsparse: bad grain table entry %#x" % e)


def sparse_overlay_for(path):
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic[:4] == KDMV_MAGIC:
        return overlay_kdmv
    if magic[:4] == COWD_MAGIC:
        return overlay_cowd
    if magic == struct.pack("<Q", SE_CONST_MAGIC):
        return overlay_sesparse
    die("%s: unknown sparse extent" % path)


def expected_content(path, unmapped, depth=0):
    if depth > 32:
        die("parent chain too long")
    with open(path, "rb") as f:
        head = f.read(SECTOR)
    text = read_descriptor_text(path)
    if head[:4] == KDMV_MAGIC and struct.unpack_from("<Q", head, 12)[0]:
        extents = [("RW", struct.unpack_from("<Q", head, 12)[0], "SPARSE",
                    None, 0)]
    else:
        extents = descriptor_extents(text)
    total = sum(e[1] for e in extents)
    pcid = descriptor_value(text, "parentCID")
    hint = descriptor_value(text, "parentFileNameHint")
    if pcid and int(pcid, 16) != NO_PARENT_CID and hint:
        ppath = hint if os.path.isabs(hint) else \
            os.path.join(os.path.dirname(path), hint)
        pcid_real = descriptor_cid(ppath)
        if pcid_real != int(pcid, 16):
            die("%s: parentCID %s != CID %08x of %s"
                % (path, pcid, pcid_real, ppath))
        buf = expected_content(ppath, unmapped, depth + 1)
        if len(buf) < total * SECTOR:
            buf += bytes(total * SECTOR - len(buf))
        del buf[total * SECTOR:]
    else:
        buf = bytearray(total * SECTOR)
    d = os.path.dirname(path)
    base = 0
    for access, sectors, typ, fname, off in extents:
        fpath = path if fname is None else \
            (fname if os.path.isabs(fname) else os.path.join(d, fname))
        if typ in ("FLAT", "VMFS"):
            with open(fpath, "rb") as f:
                buf[base:base + sectors * SECTOR] = \
                    read_at(f, off * SECTOR, sectors * SECTOR)
        elif typ == "ZERO":
            buf[base:base + sectors * SECTOR] = bytes(sectors * SECTOR)
        elif typ in ("SPARSE", "VMFSSPARSE", "SESPARSE"):
            with open(fpath, "rb") as f:
                sparse_overlay_for(fpath)(f, buf, base, sectors, unmapped)
        else:
            die("extent type %s not supported by expected-raw" % typ)
        base += sectors * SECTOR
    return buf


def cmd_expected_raw(args):
    buf = expected_content(args.descriptor, args.unmapped)
    w = SparseWriter(args.out)
    step = 1 << 20
    for off in range(0, len(buf), step):
        w.write(off, bytes(buf[off:off + step]))
    w.close(len(buf))


# --------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(
        prog="mkvmdk.py",
        description="Build COWD / SEsparse VMDK test images from a raw image.")
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp):
        sp.add_argument("raw", metavar="RAW")
        sp.add_argument("out", metavar="OUT.vmdk")
        sp.add_argument("--parent", metavar="PARENT.vmdk")
        sp.add_argument("--grain", type=int, metavar="SECTORS")
        sp.add_argument("--map", metavar="MAPSPEC")
        sp.add_argument("--cid", metavar="HEX",
                        help="CID to write (default: random)")
        sp.add_argument("--parent-cid", metavar="HEX",
                        help="parentCID to write instead of the parent's CID")

    c = sub.add_parser("cowd", help="COWD / vmfsSparse (-delta.vmdk)")
    common(c)
    c.add_argument("--sparse-skip-zero", action="store_true",
                   help="do not write grain tables with no allocated grain")
    c.set_defaults(func=cmd_cowd)

    s = sub.add_parser("sesparse", help="SEsparse (-sesparse.vmdk)")
    common(s)
    s.add_argument("--replay-journal", action="store_true",
                   help="set the volatile header's replayJournal to 1")
    s.add_argument("--layout", choices=("vmware", "compact"),
                   default="vmware")
    s.add_argument("--first-cluster", type=int, default=0, metavar="N",
                   help="number of the first cluster used (default 0)")
    s.add_argument("--cluster-order", choices=("reverse", "forward"),
                   default="reverse",
                   help="clusters handed out in reverse grain order (the "
                   "default: a reader confusing indices with positions "
                   "fails) or in grain order (a delta written sequentially, "
                   "for benchmarks)")
    s.set_defaults(func=cmd_sesparse)

    e = sub.add_parser("expected-raw",
                       help="write the raw content of a descriptor chain")
    e.add_argument("descriptor", metavar="DESCRIPTOR.vmdk")
    e.add_argument("out", metavar="OUT.raw")
    e.add_argument("--unmapped", choices=("zero", "parent"), default="zero",
                   help="how SEsparse type-1 grains read (qemu: zero)")
    e.set_defaults(func=cmd_expected_raw)

    args = p.parse_args()
    if getattr(args, "first_cluster", 0) < 0:
        die("--first-cluster must be >= 0")
    args.func(args)


if __name__ == "__main__":
    main()

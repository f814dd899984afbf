#!/usr/bin/python3
"""mkvmfs.py - write VMFS5 and VMFS6 volumes from scratch, for the tests.

No public tool creates VMFS, so the tests make volumes with this script
(standard library only) and check them with Debian's independent readers
(vmfs-fuse/debugvmfs for VMFS5, vmfs6-fuse/debugvmfs6 for VMFS6) where they
reach, and with the project's reader (tests/vmfs/vmfs-tool).  The layout
copies the structure of two real ESXi-made volumes (VMFS 5.81 and 6.82:
LVM header and physical-extent table, FS descriptor, heartbeat region,
resource files with their cluster headers and bitmaps, file descriptors,
both directory formats); the values are our own and the system files are
sized for what is written, far smaller than ESXi's.

Usage:
  mkvmfs.py make OUT.img --version 5|6 [--size BYTES] [--label L]
            [--uuid VMFS-UUID] [--seed N] [--from DIR] [--spec SPEC.json]
            [--layout GLOB=MODE]... [--manifest OUT.json] [--span N]

--size: the image (device) size, default 1 GiB (suffix K/M/G/T); the
  logical volume is what follows the 17 MiB LVM area, in whole 1 MiB blocks.
  With --span N the image is N devices OUT.img.0 .. OUT.img.(N-1), each of
  --size bytes with its own LVM header and physical-extent table; every
  device but the last carries a whole number of 256 MiB segments.
--from DIR: pack DIR's tree (folders, regular files, symlinks with their
  targets kept; permission bits and mtimes kept).
--spec SPEC.json: a list of entries
  {"path": "vm1/disk-flat.vmdk", "kind": "file", "from": "/abs/file"
   | "size": N, "pattern": "seeded"|"zero", "layout": "thin+fragmented",
   "mode": "0644", "mtime": 1700000000}
  {"path": "vm1", "kind": "dir"}, {"path": "vm1/l", "kind": "symlink",
   "target": "disk.vmdk"}
  Parent folders are made as needed.  "seeded": deterministic pseudo-random
  bytes from --seed, per 1 MiB chunk; chunk 2 of every 4 is all zero (so
  thin and lazy have something to do); past 64 MiB only the first 8 chunks,
  every 1024th and the last carry data (huge files stay cheap).
--layout GLOB=MODE: the mode of the --from files whose relative path
  matches GLOB (fnmatch; the first match wins).  MODE is '+'-joined words:
    auto (default): resident if the data fits in the descriptor, sub-blocks
      if at most one sub-block, file blocks, pointer blocks past the
      descriptor's direct reach, double indirect past single indirect's;
      thick.
    thick: every block allocated, data written (zero blocks stay holes of
      the sparse image, which read as zeros).
    lazy: lazy-zeroed thick: all blocks allocated; blocks all zero carry the
      to-be-zeroed bit and their bytes on disk are b'STALE!' repeated.
    thin: all-zero blocks get address 0 (a hole); all-zero pointer blocks too.
    fragmented: the blocks are placed out of order and not contiguous.
    resident, sub-block, file-block, pointer, double-indirect: the address
      mode (ZLA 0x10d1, 2, 1, 3, 0x10d0), forced.  VMFS6 keeps its pointer
      blocks in .sbc.sf, as ESXi does.
    large: (VMFS6) 512 MiB large file blocks (address type 7).
--manifest OUT.json: what was written: the volume (version, uuid, label,
  lvm_uuid, size, block sizes, devices) and per entry its path, kind, fd
  address, zla, size, layout, block size and extents [{"offset", "length",
  "kind": "data"|"hole"|"zero"}] in file bytes ("zero": allocated, to be
  zeroed).

The image is sparse: only metadata and non-zero data are written.
"""

import argparse
import fnmatch
import json
import os
import random
import stat
import struct
import sys

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
SEG = 256 * MiB                  # LVM segment / physical extent unit
LVM_OFF = 0x100000               # LVM header on every device
DATA_OFF = 0x1100000             # the logical volume on a device
FS_DESC = 0x200000               # FS descriptor in the logical volume
HB_BASE = 0x300000               # heartbeat region
FBS = MiB                        # file block (VMFS6: small file block)
LFB_SHIFT = 9                    # VMFS6: large block = 512 small blocks
LFBS = FBS << LFB_SHIFT
STALE = b"STALE!"
ZLA_FB, ZLA_SB, ZLA_PB, ZLA_DI, ZLA_RES = 1, 2, 3, 0x10d0, 0x10d1
T_DIR, T_FILE, T_LINK, T_SYS = 2, 3, 4, 5
FD_MAGIC = 0x10c00001
RFMD = 0x72666d64
DMCR = 0x72636d64
DMDF = 0x66646d64
ADDR_WORDS = ("auto", "resident", "sub-block", "file-block", "pointer",
              "double-indirect")
WORDS = set(ADDR_WORDS) | {"thick", "lazy", "thin", "fragmented", "large"}


def die(msg):
    sys.stderr.write("mkvmfs.py: %s\n" % msg)
    sys.exit(1)


def ceil_div(a, b):
    return -(-a // b)


def round_up(a, b):
    return ceil_div(a, b) * b


def parse_size(s):
    s = s.strip().upper().rstrip("B").rstrip("I")
    mult = 1
    for suf, m in (("K", KiB), ("M", MiB), ("G", GiB), ("T", GiB << 10)):
        if s.endswith(suf):
            s, mult = s[:-1], m
            break
    try:
        return int(s, 0) * mult
    except ValueError:
        die("bad size %r" % s)


def uuid_bytes(s):
    """'61137dd5-df6bc2c8-f0e7-000c29801686' as on disk (u32 u32 u16 le,
    then 6 bytes)."""
    p = s.split("-")
    if len(p) != 4 or [len(x) for x in p] != [8, 8, 4, 12]:
        die("bad VMFS UUID %r (want like 61137dd5-df6bc2c8-f0e7-000c29801686)"
            % s)
    try:
        return (struct.pack("<IIH", int(p[0], 16), int(p[1], 16),
                            int(p[2], 16)) + bytes.fromhex(p[3]))
    except ValueError:
        die("bad VMFS UUID %r" % s)


def uuid_str(b):
    a, c, d = struct.unpack_from("<IIH", b)
    return "%08x-%08x-%04x-%s" % (a, c, d, b[10:16].hex())


def parse_mode(m):
    words = [w for w in m.split("+") if w]
    for w in words:
        if w not in WORDS:
            die("unknown layout word %r in %r (known: %s)"
                % (w, m, ", ".join(sorted(WORDS))))
    addr = [w for w in words if w in ADDR_WORDS and w != "auto"]
    if len(addr) > 1:
        die("layout %r names two address modes" % m)
    alloc = [w for w in words if w in ("thick", "lazy", "thin")]
    if len(alloc) > 1:
        die("layout %r names two allocation modes" % m)
    return {"addr": addr[0] if addr else "auto",
            "alloc": alloc[0] if alloc else "thick",
            "frag": "fragmented" in words, "large": "large" in words}


def put(buf, off, fmt, *v):
    struct.pack_into("<" + fmt, buf, off, *v)


# ---- Content sources: per 1 MiB chunk, bytes or None (all zero) ----

class LocalContent:
    def __init__(self, path):
        self.path = path
        self.size = os.path.getsize(path)
        self.f = open(path, "rb")
        self.data = []           # (start, end) of data regions
        fd = self.f.fileno()
        off = 0
        while off < self.size:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            h = os.lseek(fd, d, os.SEEK_HOLE)
            self.data.append((d, h))
            off = h

    def read(self, off, n):
        """N bytes at OFF (zero past the end), or None if all zero."""
        n = max(0, min(n, self.size - off))
        if n == 0 or not any(a < off + n and b > off for a, b in self.data):
            return None
        self.f.seek(off)
        b = self.f.read(n)
        return b if b.count(0) != len(b) else None


class BytesContent:
    def __init__(self, b):
        self.b = bytes(b)
        self.size = len(b)

    def read(self, off, n):
        b = self.b[off:off + n]
        return b if b and b.count(0) != len(b) else None


class SeededContent:
    def __init__(self, size, seed, key):
        self.size = size
        self.seed = "%s/%s" % (seed, key)

    def chunk_has_data(self, j):
        last = (self.size - 1) // MiB
        if self.size <= 64 * MiB:
            return j % 4 != 2
        return j < 8 or j % 1024 == 0 or j == last

    def chunk(self, j):
        if not self.chunk_has_data(j):
            return None
        n = min(MiB, self.size - j * MiB)
        return random.Random("%s/%d" % (self.seed, j)).randbytes(n)

    def read(self, off, n):
        out = bytearray()
        any_data = False
        end = min(off + n, self.size)
        while off < end:
            j = off // MiB
            c = self.chunk(j)
            m = min(end, (j + 1) * MiB) - off
            if c is None:
                out += bytes(m)
            else:
                i = off - j * MiB
                out += c[i:i + m]
                any_data = True
            off += m
        return bytes(out) if any_data and out.count(0) != len(out) else None


# ---- The devices and the logical volume ----

class Volume:
    def __init__(self, out, size, span):
        self.span = span
        if span <= 1:
            self.paths = [out]
        else:
            self.paths = ["%s.%d" % (out, i) for i in range(span)]
        per = size - DATA_OFF
        if per < 64 * MiB:
            die("--size %d is too small (at least %d bytes)"
                % (size, DATA_OFF + 64 * MiB))
        self.pieces = []         # (loff, len) per device
        loff = 0
        for i in range(len(self.paths)):
            n = per // FBS * FBS
            if i < len(self.paths) - 1:
                n = per // SEG * SEG
                if n == 0:
                    die("--span: each device needs at least 256 MiB after "
                        "its 17 MiB LVM area")
            self.pieces.append((loff, n))
            loff += n
        self.size = loff
        self.devsize = size
        self.fds = []
        for p in self.paths:
            fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            os.ftruncate(fd, size)
            self.fds.append(fd)

    def write(self, off, data):
        """DATA at logical volume offset OFF."""
        data = memoryview(data)
        if off + len(data) > self.size:
            die("internal: write past the volume end (%#x + %d)"
                % (off, len(data)))
        while len(data):
            for i, (lo, n) in enumerate(self.pieces):
                if lo <= off < lo + n:
                    m = min(len(data), lo + n - off)
                    os.pwrite(self.fds[i], data[:m], DATA_OFF + off - lo)
                    data = data[m:]
                    off += m
                    break

    def dev_write(self, i, off, data):
        os.pwrite(self.fds[i], data, off)

    def close(self):
        for fd in self.fds:
            os.close(fd)


# ---- Resource files ----

class Res:
    """A resource file: RPC resources of RSIZE bytes per cluster, CPG
    clusters per group, NCL clusters in use (rounded to what the file
    holds)."""

    def __init__(self, g, name, magic, rpc, cpg, rsize, need, min_cl=1):
        self.g, self.name, self.magic = g, name, magic
        self.rpc, self.cpg, self.rsize = rpc, cpg, rsize
        self.hdr = g.ch_size
        self.cgo = 0x10000
        self.cg_size = cpg * (self.hdr + rpc * rsize)
        self.ncl = max(min_cl, ceil_div(need, rpc)) if rpc else 0
        self.ncg = max(1, ceil_div(self.ncl, cpg)) if rpc else 1
        self.used = set()        # resource indexes in use
        self.next = 0
        if rpc == 0:
            self.length = self.cgo
        else:
            full, rest = divmod(self.ncl, cpg)
            self.length = (self.cgo + full * self.cg_size +
                           ((self.hdr * cpg + rest * rpc * rsize)
                            if rest else 0))
        self.fd = None           # the system file Node

    def total(self):
        return self.ncl * self.rpc

    def alloc(self):
        if self.next >= self.total():
            die("internal: %s is full (%d resources)"
                % (self.name, self.total()))
        i = self.next
        self.next += 1
        self.used.add(i)
        return i

    def offset(self, i, pos=0):
        """File offset of resource I."""
        c, r = divmod(i, self.rpc)
        return (self.cgo + c // self.cpg * self.cg_size + self.cpg * self.hdr
                + c % self.cpg * self.rpc * self.rsize + r * self.rsize + pos)

    def ch_offset(self, c):
        return self.cgo + c // self.cpg * self.cg_size + c % self.cpg * self.hdr

    def header(self):
        b = bytearray(0x200)
        put(b, 0, "7I", self.rpc, self.cpg, self.cgo, self.rsize,
            self.cg_size, self.total() & 0xffffffff, self.ncg)
        put(b, 0x1c, "I", self.total() >> 32)
        if self.g.v6:
            put(b, 0x20, "II", RFMD, 1)
            put(b, 0x28, "III", 4, self.cgo + self.rpc, 1)
        return b


# ---- Tree nodes ----

class Node:
    def __init__(self, kind, name, parent=None):
        self.kind = kind         # dir, file, link, sys
        self.name = name
        self.parent = parent
        self.children = []
        self.mode = 0o755 if kind == "dir" else 0o644
        self.mtime = None
        self.content = None      # content source
        self.size = 0
        self.target = None
        self.layout = None
        self.layout_text = "auto"
        self.addr = 0
        self.gen = 1
        self.nlink = 1
        self.type = {"dir": T_DIR, "file": T_FILE, "link": T_LINK,
                     "sys": T_SYS}[kind]
        self.sysdir = False
        self.blocks = []         # file blocks (system files: contiguous)

    def path(self):
        if self.parent is None:
            return ""
        p = self.parent.path()
        return p + "/" + self.name if p else self.name


class Gen:
    def __init__(self, args):
        self.v6 = args.version == 6
        self.version = args.version
        self.seed = args.seed
        self.rng = random.Random("mkvmfs/%d" % args.seed)
        self.now = 1700000000 + args.seed % 1000000
        self.label = args.label if args.label is not None else (
            "VMFS%d Gen" % args.version)
        if len(self.label.encode()) > 127:
            die("label longer than 127 bytes")
        if args.uuid:
            self.uuid = uuid_bytes(args.uuid)
        else:
            self.uuid = (struct.pack("<II", self.now, self.rng.getrandbits(32))
                         + self.rng.randbytes(8))
        tail = self.uuid[10:16]
        self.lvm_uuid = (struct.pack("<IIH", self.now - 1,
                                     self.rng.getrandbits(32),
                                     self.rng.getrandbits(16)) + tail)
        self.sbs = 0x10000 if self.v6 else 0x2000
        self.md = 0x1000 if self.v6 else 512
        self.ch_size = 2 * self.md if self.v6 else 1024
        self.fd_size = 2 * self.md if self.v6 else 2048
        self.fd_meta = self.md
        self.fd_res_off = self.md + 512 if self.v6 else 1024
        self.res_cap = self.md - 512 if self.v6 else 1024
        self.naddr = 320 if self.v6 else 256
        self.fd_addr_off = self.fd_size - self.naddr * (8 if self.v6 else 4)
        self.aw = 8 if self.v6 else 4
        self.pbe = 8192 if self.v6 else 1024
        self.pb_size = self.pbe * self.aw
        self.seq = 0x100

    # -- addresses --
    def fd_addr(self, i, res):
        c, r = divmod(i, res.rpc)
        return (r << 22) | (c << 6) | 4

    def sb_addr(self, i):
        c, r = divmod(i, self.sbc.rpc)
        if self.v6:
            return (r << 56) | (c << 6) | 2
        return ((r & 0xf) << 28) | (((r >> 4) & 3) << 3) | (c << 6) | 2

    def pb_addr(self, i):
        c, r = divmod(i, self.pbc.rpc)
        return (r << 28) | (c << 6) | 3

    def fb_addr(self, blk, tbz=False):
        if self.v6:
            c, r = divmod(blk, 512)
            return (r << 51) | (c << 15) | ((0xff << 7) if tbz else 0) | 1
        return (blk << 6) | (0x20 if tbz else 0) | 1

    def lfb_addr(self, k, tbz=False):
        return (k << 15) | ((0xff << 7) if tbz else 0) | 7

    # -- block allocation --
    def alloc_blocks(self, n, frag=False):
        out = []
        want = 2 * n if frag else n
        i = self.hint
        got = []
        while len(got) < want:
            if i >= self.nblocks:
                if frag and len(got) >= n:
                    break
                die("the volume is full (%d blocks of 1 MiB): give a bigger "
                    "--size" % self.nblocks)
            if not self.bmap[i]:
                got.append(i)
            i += 1
        if frag:
            # Every other free block, backwards: neither contiguous nor in
            # order; the ones skipped stay free for the next files.
            out = got[1::2][:n]
            if len(out) < n:
                out += got[0::2][:n - len(out)]
            out.reverse()
        else:
            out = got
        for b in out:
            self.bmap[b] = 1
        while self.hint < self.nblocks and self.bmap[self.hint]:
            self.hint += 1
        return out

    def alloc_lfb(self):
        k = self.lfb_next
        while True:
            if (k + 1) * 512 > self.nblocks:
                die("no free 512 MiB large file block left: give a bigger "
                    "--size")
            if not any(self.bmap[k * 512:(k + 1) * 512]):
                break
            k += 1
        for b in range(k * 512, (k + 1) * 512):
            self.bmap[b] = 1
        self.lfb_used.add(k)
        self.lfb_next = k + 1
        return k

    # -- the tree --
    def build_tree(self, args):
        self.root = Node("dir", "")
        self.root.mode = 0o1755
        self.root.mtime = self.now
        self.nodes = {"": self.root}
        layouts = []
        for spec in args.layout or []:
            if "=" not in spec:
                die("--layout wants GLOB=MODE, not %r" % spec)
            g, m = spec.rsplit("=", 1)
            parse_mode(m)
            layouts.append((g, m))
        if args.src:
            self.pack_dir(args.src, layouts)
        if args.spec:
            with open(args.spec) as f:
                try:
                    entries = json.load(f)
                except ValueError as e:
                    die("%s: %s" % (args.spec, e))
            for e in entries:
                self.add_spec(e)

    def parent_of(self, path):
        parts = path.split("/")
        cur = self.root
        for i, p in enumerate(parts[:-1]):
            sub = "/".join(parts[:i + 1])
            n = self.nodes.get(sub)
            if n is None:
                n = Node("dir", p, cur)
                n.mtime = self.now
                cur.children.append(n)
                self.nodes[sub] = n
            elif n.kind != "dir":
                die("%s is not a folder" % sub)
            cur = n
        return cur, parts[-1]

    def add(self, path, kind):
        path = path.strip("/")
        if not path or any(p in ("", ".", "..") for p in path.split("/")):
            die("bad path %r" % path)
        for p in path.split("/"):
            if len(p.encode()) > (255 if self.v6 else 127):
                die("name %r is longer than %d bytes" %
                    (p, 255 if self.v6 else 127))
        if path in self.nodes:
            n = self.nodes[path]
            if kind == "dir" and n.kind == "dir":
                return n
            die("%s given twice" % path)
        parent, name = self.parent_of(path)
        n = Node(kind, name, parent)
        n.mtime = self.now
        parent.children.append(n)
        self.nodes[path] = n
        return n

    def pack_dir(self, top, layouts):
        if not os.path.isdir(top):
            die("--from %s: not a folder" % top)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            rel = os.path.relpath(dirpath, top)
            rel = "" if rel == "." else rel
            if rel:
                st = os.lstat(dirpath)
                n = self.add(rel, "dir")
                n.mode = stat.S_IMODE(st.st_mode)
                n.mtime = int(st.st_mtime)
            for name in sorted(filenames + [d for d in dirnames
                                            if os.path.islink(
                                                os.path.join(dirpath, d))]):
                full = os.path.join(dirpath, name)
                r = os.path.join(rel, name) if rel else name
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    n = self.add(r, "link")
                    n.target = os.readlink(full)
                    n.mode = 0o777
                elif stat.S_ISREG(st.st_mode):
                    n = self.add(r, "file")
                    n.content = LocalContent(full)
                    n.size = n.content.size
                    n.mode = stat.S_IMODE(st.st_mode)
                    for g, m in layouts:
                        if fnmatch.fnmatch(r, g):
                            n.layout_text = m
                            break
                else:
                    sys.stderr.write("mkvmfs.py: skipping %s (not a file, "
                                     "folder or symlink)\n" % full)
                    continue
                n.mtime = int(st.st_mtime)
            dirnames[:] = [d for d in dirnames
                           if not os.path.islink(os.path.join(dirpath, d))]
        st = os.stat(top)
        self.root.mtime = int(st.st_mtime)

    def add_spec(self, e):
        kind = e.get("kind", "file")
        k = {"file": "file", "dir": "dir", "symlink": "link"}.get(kind)
        if not k or "path" not in e:
            die("spec entry %r: want a path and a kind file|dir|symlink" % e)
        n = self.add(e["path"], k)
        if "mode" in e:
            n.mode = int(str(e["mode"]), 8)
        if k == "link":
            n.mode = int(str(e.get("mode", "777")), 8)
            if "target" not in e:
                die("spec symlink %s without a target" % e["path"])
            n.target = e["target"]
        if "mtime" in e:
            n.mtime = int(e["mtime"])
        if k == "file":
            if "from" in e:
                n.content = LocalContent(e["from"])
            elif "size" in e:
                size = int(e["size"])
                pat = e.get("pattern", "seeded")
                if pat == "seeded":
                    n.content = SeededContent(size, self.seed, e["path"])
                elif pat == "zero":
                    n.content = BytesContent(b"")
                    n.content.size = size
                else:
                    die("spec %s: pattern %r (seeded or zero)"
                        % (e["path"], pat))
            else:
                n.content = BytesContent(b"")
            n.size = n.content.size
            n.layout_text = e.get("layout", "auto")

    # -- planning --
    def walk(self, n=None):
        n = n or self.root
        yield n
        for c in n.children:
            if c.kind == "dir":
                yield from self.walk(c)
            else:
                yield c

    def dir_size(self, n):
        k = len(n.children) + 2
        if self.v6:
            per = (self.md - 0x40) // 0x120
            return 0x10000 + (1 + max(1, ceil_div(len(n.children), per))) \
                * self.md
        return k * 140

    def plan(self, n):
        """Choose N's address mode and block size: n.zla, n.bs, n.lay."""
        if n.kind == "link":
            data = n.target.encode()
            if not data or len(data) > 4096:
                die("symlink %s: target of %d bytes" % (n.path(), len(data)))
            n.content = BytesContent(data)
            n.size = len(data)
            n.layout_text = "resident" if (self.v6 or n.size > self.sbs) \
                else "sub-block"
            if n.size > self.res_cap and n.layout_text == "resident":
                n.layout_text = "sub-block"
        if n.kind == "dir":
            n.size = self.dir_size(n)
            if n is self.root or n.size > (2 * self.sbs if self.v6
                                           else self.sbs):
                n.layout_text = "file-block"
            else:
                n.layout_text = "sub-block"
        lay = parse_mode(n.layout_text)
        n.lay = lay
        size = n.size
        addr = lay["addr"]
        if lay["large"] and not self.v6:
            die("%s: large file blocks are VMFS6's" % n.path())
        if addr == "auto":
            if size <= self.res_cap and not lay["large"]:
                addr = "resident"
            elif size <= self.sbs and not lay["large"]:
                addr = "sub-block"
            else:
                bs = LFBS if lay["large"] else FBS
                nb = ceil_div(size, bs)
                if nb <= self.naddr:
                    addr = "file-block"
                elif nb <= self.naddr * self.pbe:
                    addr = "pointer"
                else:
                    addr = "double-indirect"
        n.addr_mode = addr
        if addr == "resident":
            if size > self.res_cap:
                die("%s: %d bytes do not fit in the descriptor (%d)"
                    % (n.path(), size, self.res_cap))
            n.zla, n.bs = ZLA_RES, self.sbs
        elif addr == "sub-block":
            if lay["large"]:
                die("%s: large and sub-block" % n.path())
            n.zla, n.bs = ZLA_SB, self.sbs
            if ceil_div(size, self.sbs) > self.naddr:
                die("%s: %d bytes need more than %d sub-blocks"
                    % (n.path(), size, self.naddr))
        else:
            n.bs = LFBS if lay["large"] else FBS
            nb = ceil_div(size, n.bs)
            n.zla = {"file-block": ZLA_FB, "pointer": ZLA_PB,
                     "double-indirect": ZLA_DI}[addr]
            cap = {ZLA_FB: self.naddr, ZLA_PB: self.naddr * self.pbe,
                   ZLA_DI: self.naddr * self.pbe * self.pbe}[n.zla]
            if nb > cap:
                die("%s: %d blocks are more than %s addressing reaches (%d)"
                    % (n.path(), nb, addr, cap))

    def count_needs(self, user):
        """Upper bounds of descriptors, sub-blocks and pointer blocks."""
        fds = sb = pb = 0
        for n in user:
            fds += 1
            if n.zla == ZLA_SB:
                sb += ceil_div(max(n.size, 1), self.sbs)
            elif n.zla in (ZLA_PB, ZLA_DI):
                nb = ceil_div(n.size, n.bs)
                k = ceil_div(nb, self.pbe)
                if n.zla == ZLA_DI:
                    k += ceil_div(nb, self.pbe * self.pbe)
                if self.v6:
                    sb += k
                else:
                    pb += k
        return fds, sb, pb

    # -- data placement --
    def place(self, n):
        """Allocate N's blocks, write its data, fill n.addrs (the
        descriptor's address array or resident bytes) and n.extents."""
        lay = n.lay
        size = n.size
        ext = []

        def run(kind, off, length):
            if length <= 0:
                return
            if ext and ext[-1]["kind"] == kind and \
                    ext[-1]["offset"] + ext[-1]["length"] == off:
                ext[-1]["length"] += length
            else:
                ext.append({"offset": off, "length": length, "kind": kind})

        n.nblocks = 0
        n.tbz = 0
        if n.zla == ZLA_RES:
            b = n.content.read(0, size) or bytes(size)
            n.resident = b
            n.addrs = []
            run("data", 0, size)
            n.extents = ext
            return
        if n.zla == ZLA_SB:
            addrs = []
            for i in range(ceil_div(size, self.sbs)):
                m = min(self.sbs, size - i * self.sbs)
                d = n.content.read(i * self.sbs, m)
                if d is None and lay["alloc"] == "thin":
                    addrs.append(0)
                    run("hole", i * self.sbs, m)
                    continue
                k = self.sbc.alloc()
                addrs.append(self.sb_addr(k))
                n.nblocks += 1
                if d is not None:
                    self.res_write(self.sbc, self.sbc.offset(k), d)
                run("data", i * self.sbs, m)
            n.addrs = addrs
            n.extents = ext
            return
        bs = n.bs
        nb = ceil_div(size, bs)
        # Which blocks carry data.
        has = [None] * nb
        if isinstance(n.content, SeededContent) or \
                isinstance(n.content, LocalContent):
            pass
        for i in range(nb):
            has[i] = self.block_has_data(n.content, i * bs,
                                         min(bs, size - i * bs))
        need = [i for i in range(nb) if has[i] or lay["alloc"] != "thin"]
        # Allocate.
        if bs == LFBS:
            where = {}
            order = need[::-1] if lay["frag"] else need
            for i in order:
                where[i] = self.alloc_lfb()
        else:
            blks = self.alloc_blocks(len(need), lay["frag"])
            where = dict(zip(need, blks))
        addrs = [0] * nb
        for i in range(nb):
            off, m = i * bs, min(bs, size - i * bs)
            if i not in where:
                run("hole", off, m)
                continue
            tbz = lay["alloc"] == "lazy" and not has[i]
            if bs == LFBS:
                addrs[i] = self.lfb_addr(where[i], tbz)
                vbase = where[i] * LFBS
            else:
                addrs[i] = self.fb_addr(where[i], tbz)
                vbase = where[i] * FBS
            n.nblocks += 1
            if tbz:
                n.tbz += 1
                # Stale bytes where the reader must give zeros.
                pat = (STALE * (FBS // len(STALE) + 1))[:FBS]
                # (Of a 512 MiB large block only the first MiB: the image
                # stays small, and a reader ignoring the bit still fails.)
                for j in range(0, min(m, FBS) if bs == LFBS else m, FBS):
                    self.vol.write(vbase + j, pat[:min(FBS, m - j)])
                run("zero", off, m)
                continue
            if has[i]:
                self.write_data(n.content, off, m, vbase)
            run("data", off, m)
        n.extents = ext
        # Address array, with pointer blocks as needed.
        if n.zla == ZLA_FB:
            n.addrs = addrs
        elif n.zla == ZLA_PB:
            n.addrs = self.pointer_level(addrs, lay)
        else:
            n.addrs = self.pointer_level(self.pointer_level(addrs, lay), lay)
        if len(n.addrs) > self.naddr:
            die("internal: %s needs %d addresses" % (n.path(), len(n.addrs)))

    def block_has_data(self, content, off, m):
        if isinstance(content, SeededContent):
            return any(content.chunk_has_data(j)
                       for j in range(off // MiB, ceil_div(off + m, MiB)))
        for j in range(off, off + m, MiB):
            if content.read(j, min(MiB, off + m - j)) is not None:
                return True
        return False

    def write_data(self, content, off, m, vbase):
        for j in range(0, m, MiB):
            d = content.read(off + j, min(MiB, m - j))
            if d is not None:
                self.vol.write(vbase + j, d)

    def pointer_level(self, addrs, lay):
        """Pack ADDRS into pointer blocks; the addresses of those."""
        out = []
        fmt = "<%d%s" % (self.pbe, "Q" if self.v6 else "I")
        for i in range(0, len(addrs), self.pbe):
            part = addrs[i:i + self.pbe]
            if not any(part) and lay["alloc"] == "thin":
                out.append(0)
                continue
            part = part + [0] * (self.pbe - len(part))
            data = struct.pack(fmt, *part)
            if self.v6:
                k = self.sbc.alloc()
                self.res_write(self.sbc, self.sbc.offset(k), data)
                out.append(self.sb_addr(k))
            else:
                k = self.pbc.alloc()
                self.res_write(self.pbc, self.pbc.offset(k), data)
                out.append(self.pb_addr(k))
        return out

    def res_write(self, res, foff, data):
        """DATA at FOFF of resource file RES (contiguous system blocks)."""
        sf = res.fd
        if foff + len(data) > sf.size:
            die("internal: %s write past its end" % res.name)
        data = memoryview(data)
        while len(data):
            b = sf.blocks[foff // FBS]
            m = min(len(data), FBS - foff % FBS)
            self.vol.write(b * FBS + foff % FBS, data[:m])
            data = data[m:]
            foff += m

    def sys_voff(self, sf, foff):
        return sf.blocks[foff // FBS] * FBS + foff % FBS

    # -- descriptors --
    def fd_bytes(self, n, voff):
        b = bytearray(self.fd_size)
        self.seq += 1
        put(b, 0, "IQ", FD_MAGIC, voff)
        put(b, 0x1c, "Q", 1)
        put(b, 0x38, "Q", self.seq)
        m = self.fd_meta
        mt = n.mtime if n.mtime is not None else self.now
        mode = n.mode
        if n.sysdir:
            mode = 0o40700
        put(b, m, "IIIII", n.addr, n.gen, n.nlink, n.type, 0)
        put(b, m + 0x14, "QQQ", n.size, n.bs, n.nblocks)
        put(b, m + 0x2c, "IIIIIIIIII", mt, mt, mt, 0, 0, mode, n.zla,
            n.tbz, 0, n.nblocks)
        shift = n.bs.bit_length() - 1
        if self.v6:
            put(b, m + 0x64, "III", DMDF, n.addr, 0x14)
            if n.parent is not None and n.type != T_SYS:
                put(b, m + 0x70, "I", n.parent.addr)
        else:
            put(b, m + 0x68, "II", n.addr, shift)
        b[m + 0x89] = shift
        if n.zla == ZLA_RES:
            b[self.fd_res_off:self.fd_res_off + len(n.resident)] = n.resident
        else:
            fmt = "<%d%s" % (len(n.addrs), "Q" if self.v6 else "I")
            struct.pack_into(fmt, b, self.fd_addr_off, *n.addrs)
        return b

    # -- directories --
    def dir_content(self, n):
        kids = [(c.type, c.addr, c.gen, c.name) for c in n.children]
        parent = n.parent or n
        if not self.v6:
            ents = [(T_DIR if not n.sysdir else T_SYS, n.addr, n.gen, "."),
                    (T_DIR, parent.addr, parent.gen, "..")] + kids
            b = bytearray()
            for t, a, g, name in ents:
                e = bytearray(140)
                put(e, 0, "III", t, a, g)
                nb = name.encode()
                e[12:12 + len(nb)] = nb
                b += e
            return BytesContent(b)
        size = n.size
        b = bytearray(size)
        put(b, 0, "IIII", 0xf50001, len(kids) + 2, len(kids) + 2, 1)
        put(b, 0x10, "I", 0)
        for off, (t, a, g, name) in ((0x3b8, (T_DIR if not n.sysdir
                                              else T_SYS, n.addr, n.gen, ".")),
                                     (0x4d8, (T_DIR, parent.addr,
                                              parent.gen, ".."))):
            put(b, off, "IIIII", t, a, g, 0, off)
            b[off + 0x18:off + 0x18 + len(name)] = name.encode()
        per = (self.md - 0x40) // 0x120
        nblk = (size - 0x10000) // self.md
        amap = 0x10000
        put(b, amap, "HHH", 0, 3, 0)
        nib = []
        for k in range(nblk):
            if k == 0:
                nib.append(3)
            else:
                part = kids[(k - 1) * per:k * per]
                nib.append(1 | (4 if len(part) < per else 0))
        nib += [8] * ((len(nib) & 1))
        b[amap + 0x40:amap + self.md] = b"\x88" * (self.md - 0x40)
        for k in range(0, len(nib), 2):
            b[amap + 0x40 + k // 2] = nib[k] << 4 | nib[k + 1]
        for k in range(1, nblk):
            base = 0x10000 + k * self.md
            part = kids[(k - 1) * per:k * per]
            put(b, base, "HHHH", 1, 1, per, per - len(part))
            bm = 0
            for s in range(len(part), per):
                bm |= 1 << s
            b[base + 8:base + 8 + ceil_div(per, 8)] = \
                bm.to_bytes(ceil_div(per, 8), "little")
            for s, (t, a, g, name) in enumerate(part):
                e = base + 0x40 + s * 0x120
                put(b, e, "IIIII", t, a, g, 0, e)
                nb = name.encode()
                b[e + 0x18:e + 0x18 + len(nb)] = nb
        return BytesContent(b)

    # -- the whole volume --
    def make(self, args):
        self.vol = Volume(args.out, args.size, args.span)
        self.nblocks = self.vol.size // FBS
        self.bmap = bytearray(self.nblocks)
        self.hint = 0
        self.lfb_next = 0
        self.lfb_used = set()
        self.build_tree(args)
        user = list(self.walk())
        # The system files, in ESXi's order of resource numbers.
        names = [".fbb.sf", ".fdc.sf", ".pbc.sf", ".sbc.sf", ".vh.sf",
                 ".pb2.sf", ".sdd.sf"] + ([".jbc.sf"] if self.v6 else [])
        self.sys = {}
        for i, nm in enumerate(names):
            s = Node("sys", nm, self.root)
            s.mode = 0o400
            s.mtime = self.now
            self.sys[nm] = s
        sdd = self.sys[".sdd.sf"]
        sdd.sysdir = True
        sdd.nlink = 2
        self.root.children[:0] = [self.sys[nm] for nm in names]
        # Plan every user node (directories' sizes are known now).
        for n in user:
            self.plan(n)
        fds, sb, pb = self.count_needs(user)
        nsys = len(names) + 1
        if self.v6:
            self.fdc = Res(self, ".fdc.sf", 0x10c00005, 256, 8, self.fd_size,
                           fds + nsys + 1)
            self.sbc = Res(self, ".sbc.sf", 0x10c00003, 256, 8, self.sbs,
                           sb + 2)
            self.pbc = Res(self, ".pbc.sf", 0, 0, 8, 0x10000, 0)
            self.pb2 = Res(self, ".pb2.sf", 0x10c00006, 32, 8, 0x10000, 1)
        else:
            self.fdc = Res(self, ".fdc.sf", 0x10c00005, 32, 64, self.fd_size,
                           fds + nsys + 1, 2)
            self.sbc = Res(self, ".sbc.sf", 0x10c00003, 32, 64, self.sbs,
                           sb + 2)
            self.pbc = Res(self, ".pbc.sf", 0x10c00004, 16, 64, 0x1000,
                           pb + 1)
            self.pb2 = Res(self, ".pb2.sf", 0x10c00006, 16, 64, 0x1000, 1)
        # .fbb.sf
        if self.v6:
            self.nlfb = ceil_div(self.nblocks, 512)
            self.fbb_len = 0x10000 + round_up(max(self.nlfb, 1), 8) // 8 * \
                0x10000 + self.nlfb * 0x2000
            self.fbb_rpc = 512
        else:
            self.fbb_rpc = 200
            self.fbb_ncl = ceil_div(self.nblocks, self.fbb_rpc)
            self.fbb_ncg = ceil_div(self.fbb_ncl, 64)
            self.fbb_len = 0x10000 + self.fbb_ncg * 0x10000
        # Lay the system files out on the first blocks.
        vh_blocks = 7 if self.v6 else 4
        sizes = {".vh.sf": vh_blocks * FBS, ".fdc.sf": self.fdc.length,
                 ".fbb.sf": self.fbb_len, ".pbc.sf": self.pbc.length,
                 ".sbc.sf": self.sbc.length, ".pb2.sf": self.pb2.length,
                 ".jbc.sf": FBS}
        sdd.size = 0x11000 if self.v6 else 280
        for nm in names:
            s = self.sys[nm]
            if nm != ".sdd.sf":
                s.size = sizes[nm]
        order = [".vh.sf", ".fdc.sf", None, ".fbb.sf", ".pbc.sf", ".sbc.sf",
                 ".pb2.sf", ".sdd.sf"] + ([".jbc.sf"] if self.v6 else [])
        for nm in order:
            s = self.root if nm is None else self.sys[nm]
            if s is self.root:
                continue         # placed as a directory below
            s.blocks = self.alloc_blocks(ceil_div(s.size, FBS))
            s.bs, s.zla = FBS, ZLA_FB
            if nm == ".fdc.sf" and s.blocks[0] != vh_blocks:
                die("internal: .fdc.sf not at block %d" % vh_blocks)
        self.fdc.fd, self.sbc.fd = self.sys[".fdc.sf"], self.sys[".sbc.sf"]
        self.pbc.fd, self.pb2.fd = self.sys[".pbc.sf"], self.sys[".pb2.sf"]
        # Descriptor addresses: root 0, system files 1.., then the tree.
        self.root.addr = self.fd_addr(self.fdc.alloc(), self.fdc)
        for nm in names:
            self.sys[nm].addr = self.fd_addr(self.fdc.alloc(), self.fdc)
        gen = 1
        for n in user:
            if n is self.root:
                continue
            n.addr = self.fd_addr(self.fdc.alloc(), self.fdc)
            gen += 1
            n.gen = gen
        for n in user:
            if n.kind == "dir":
                n.nlink = 2 + sum(1 for c in n.children
                                  if c.kind == "dir" or c.sysdir)
        # .sdd.sf: a system directory holding . and ..
        sdd.bs, sdd.zla = FBS, ZLA_FB
        sdd.lay = parse_mode("file-block")
        # Place: the root right after .fdc.sf as ESXi does, then the rest.
        for n in user:
            if n.kind == "dir":
                n.content = self.dir_content(n)
        for n in user:
            self.place(n)
        # System files' own descriptors and contents.
        self.write_system()
        for n in list(self.walk()):
            self.write_fd(n)
        self.vol.close()
        return user

    def write_fd(self, n):
        res = self.fdc
        i = ((n.addr >> 6) & 0xffff) * res.rpc + ((n.addr >> 22) & 0x3ff)
        foff = res.offset(i)
        self.res_write(res, foff, self.fd_bytes(n, self.sys_voff(res.fd,
                                                                  foff)))

    def write_system(self):
        v = self.vol
        # .sdd.sf content
        sdd = self.sys[".sdd.sf"]
        sdd.content = self.dir_content(sdd)
        sdd.lay = parse_mode("file-block")
        sdd.zla, sdd.bs = ZLA_FB, FBS
        blocks = sdd.blocks
        b = sdd.content.b
        v.write(blocks[0] * FBS, b)
        for s in self.sys.values():
            s.addrs = [self.fb_addr(x) for x in s.blocks]
            s.nblocks = len(s.blocks)
            s.tbz = 0
            s.extents = [{"offset": 0, "length": s.size, "kind": "data"}]
        # Resource files: headers, cluster headers and bitmaps.
        for res in (self.fdc, self.sbc, self.pbc, self.pb2):
            self.res_write(res, 0, res.header())
            for c in range(res.ncl):
                used = [k for k in range(c * res.rpc, (c + 1) * res.rpc)
                        if k in res.used]
                self.cluster_header(res, res.ch_offset(c), res.magic, c,
                                    res.rpc, set(k - c * res.rpc
                                                 for k in used))
        self.write_fbb()
        # FS descriptor and heartbeats.
        self.write_fsd()
        if self.v6:
            for i in range(1024):
                v.write(HB_BASE + i * 0x1000,
                        struct.pack("<IQ", 0xabcdef01, HB_BASE + i * 0x1000))
        else:
            hb = bytearray(2048 * 0x200)
            for i in range(2048):
                put(hb, i * 0x200, "IQ", 0xabcdef01, HB_BASE + i * 0x200)
            v.write(HB_BASE, hb)
        self.write_lvm()

    def cluster_header(self, res, foff, magic, cid, total, used):
        sf = res.fd if hasattr(res, "fd") else res
        voff = self.sys_voff(sf, foff)
        free = total - len(used)
        ffree = next((k for k in range(total) if k not in used), 0)
        bm = 0
        for k in range(total):
            if k not in used:
                bm |= 1 << k
        bmb = bm.to_bytes(ceil_div(max(total, 1), 8), "little")
        self.seq += 1
        if self.v6:
            b = bytearray(0x2000)
            put(b, 0, "IQ", magic, voff)
            put(b, 0x1c, "Q", 1)
            put(b, 0x38, "Q", self.seq)
            put(b, 0x1010, "I", DMCR)
            put(b, 0x1018, "Q", cid)
            put(b, 0x1020, "HH", total, free)
            put(b, 0x1030, "I", 1)
            put(b, 0x107c, "I", ffree)
            b[0x1080:0x1080 + len(bmb)] = bmb
        else:
            b = bytearray(0x400)
            put(b, 0, "IQ", magic, voff)
            put(b, 0x1c, "Q", 1)
            put(b, 0x38, "Q", self.seq)
            put(b, 0x200, "IIII", cid, total, free, ffree)
            b[0x210:0x210 + len(bmb)] = bmb
        self.res_write_sf(sf, foff, b)

    def res_write_sf(self, sf, foff, data):
        data = memoryview(data)
        while len(data):
            b = sf.blocks[foff // FBS]
            m = min(len(data), FBS - foff % FBS)
            self.vol.write(b * FBS + foff % FBS, data[:m])
            data = data[m:]
            foff += m

    def write_fbb(self):
        sf = self.sys[".fbb.sf"]
        used = self.bmap
        if not self.v6:
            h = bytearray(0x200)
            put(h, 0, "7I", self.fbb_rpc, 64, 0x10000, 0,
                64 * 0x400, self.nblocks, self.fbb_ncg)
            self.res_write_sf(sf, 0, h)

            class R:
                pass
            r = R()
            r.fd = sf
            for c in range(self.fbb_ncl):
                lo = c * self.fbb_rpc
                total = min(self.fbb_rpc, self.nblocks - lo)
                u = set(k for k in range(total) if used[lo + k])
                foff = 0x10000 + c // 64 * 0x10000 + c % 64 * 0x400
                self.cluster_header(r, foff, 0x10c00002, c, total, u)
            return
        # VMFS6: large file blocks at 0, small ones as its child at 0x1000.
        ncg = ceil_div(max(self.nlfb, 1), 8)
        h = bytearray(0x1100)
        put(h, 0, "7I", 16, 8, 0x10000, 0x2000, 0x110000, self.nlfb, ncg)
        put(h, 0x20, "IIIII", RFMD, 1, 0x35, 0x340348, 3)
        put(h, 0x34, "I", 0x1000)
        put(h, 0x1000, "7I", 512, 8, 0x10000, 0, 0x10000, self.nblocks, ncg)
        put(h, 0x1020, "IIIII", RFMD, 1, 0x2a, 0x100d8, 2)
        put(h, 0x1038, "III", 0x10, 8, 0x110000)
        put(h, 0x1054, "I", 2)
        self.res_write_sf(sf, 0, h)

        class R:
            pass
        r = R()
        r.fd = sf
        # Cluster headers of the large blocks (16 per cluster).
        for c in range(ceil_div(self.nlfb, 16)):
            u = set(k for k in range(16) if c * 16 + k < self.nlfb and
                    (c * 16 + k) in self.lfb_used)
            total = min(16, self.nlfb - c * 16)
            foff = 0x10000 + c // 8 * 0x110000 + c % 8 * 0x2000
            self.cluster_header(r, foff, 0x10c00008, c, total, u)
        # One resource per large block: its small blocks' cluster.
        for k in range(self.nlfb):
            c = k // 16
            foff = (0x10000 + c // 8 * 0x110000 + 8 * 0x2000 +
                    (c % 8) * 16 * 0x2000 + (k % 16) * 0x2000)
            lo = k * 512
            total = min(512, self.nblocks - lo)
            u = set(j for j in range(total) if used[lo + j])
            self.cluster_header(r, foff, 0x10c00002, k, total, u)

    def write_fsd(self):
        b = bytearray(0x200)
        put(b, 0, "II", 0x2fabf15e, 24 if self.v6 else 14)
        b[8] = 82 if self.v6 else 81
        b[9:25] = self.uuid
        put(b, 0x19, "I", 6)
        lb = self.label.encode()
        b[0x1d:0x1d + len(lb)] = lb
        put(b, 0x9d, "IQII", 0x200, FBS, self.now, 1)
        b[0xb1:0xc1] = self.lvm_uuid
        b[0xc1] = 1
        put(b, 0xd1, "IIII", 0x10000, self.fdc.cpg, self.sbs,
            0x4000 if self.v6 else 0x800)
        pb2 = self.sys[".pb2.sf"]
        sdd = self.sys[".sdd.sf"]
        put(b, 0xe1, "QI", self.fd_voff(pb2), pb2.addr)
        b[0xed:0xfd] = struct.pack("<II", self.now, self.seed & 0xffffffff) \
            + self.uuid[8:16]
        put(b, 0xfd, "I", 1)
        put(b, 0x105, "QI", self.fd_voff(sdd), sdd.addr)
        if self.v6:
            b[0x112] = 1
            put(b, 0x130, "IIH", 0x200, self.md, LFB_SHIFT)
            put(b, 0x13c, "IIIIII", 0x100000, 0x2c, 0x100000, 0x200000,
                0x3e80, 0xfa0)
        self.vol.write(FS_DESC, b)

    def fd_voff(self, n):
        res = self.fdc
        i = ((n.addr >> 6) & 0xffff) * res.rpc + ((n.addr >> 22) & 0x3ff)
        return self.sys_voff(res.fd, res.offset(i))

    def write_lvm(self):
        v = self.vol
        ndev = len(v.paths)
        md = 0x1000 if self.v6 else 512
        maxvol = 1 if self.v6 else 512
        vt = LVM_OFF + md
        sd = vt + maxvol * 512 + (1024 - maxvol) * 512 - 256 * 32
        pe_maps = sd + 256 * 32
        bitmap = md if self.v6 and md > 1024 else 1024
        usec = self.now * 1000000
        nseg_total = ceil_div(v.size, SEG)
        devids = []
        for i in range(ndev):
            devids.append(struct.pack("<IIH", self.now - 2 + i,
                                      self.rng.getrandbits(32),
                                      self.rng.getrandbits(16))
                          + self.uuid[10:16])
        for i, (loff, n) in enumerate(v.pieces):
            h = bytearray(md + 512)
            put(h, 0, "IIII", 0xc001d00d, 6 if self.v6 else 5, 0x15, 0xa00)
            name = b"vmhba0:%d:0" % i
            h[0x2e:0x2e + len(name)] = name
            h[0x5b] = 2
            h[0x5f] = 2
            put(h, 0x60, "I", max(0, v.devsize // 0x10000 - 16))
            put(h, 0x66, "II", 1, 1)
            h[0x72] = 3
            put(h, 0x7a, "Q", DATA_OFF)
            h[0x82:0x92] = devids[i]
            put(h, 0x92, "QQ", usec, usec)
            if self.v6:
                put(h, 0xca, "II", md, 3)
            else:
                put(h, 0xbe, "I", 1)
            t = md
            first = loff // SEG
            nseg = ceil_div(n, SEG)
            put(h, t, "QQI", v.size, nseg_total + ndev, 1)
            us = uuid_str(self.lvm_uuid).encode()
            h[t + 0x14:t + 0x14 + len(us)] = us
            h[t + 0x54:t + 0x64] = self.lvm_uuid
            put(h, t + 0x64, "IQ", 1, usec)
            put(h, t + 0x70, "IIQQ", 0, nseg, first, first + nseg - 1)
            put(h, t + 0x88, "QI", usec, ndev)
            v.dev_write(i, LVM_OFF, h)
            if self.v6:
                v.dev_write(i, vt + 0x110, struct.pack("<I", 1))
            names = bytearray(256 * 32)
            for j in range(ndev):
                nm = b"mpx.vmhba0:C0:T%d:L0:1" % j
                names[j * 256:j * 256 + len(nm)] = nm
            v.dev_write(i, sd, names)
            pe = bytearray(bitmap + 128)
            pe[0] = 1
            e = bytearray(128)
            e[0] = 1
            put(e, 5, "IQQQ", 0, DATA_OFF, loff, n)
            e[0x21] = 1
            pe[bitmap:] = e
            v.dev_write(i, pe_maps, pe)


def manifest(g, user, args):
    vol = g.vol
    m = {"version": g.version, "uuid": uuid_str(g.uuid), "label": g.label,
         "lvm_uuid": uuid_str(g.lvm_uuid), "size": vol.size,
         "block_size": FBS, "sub_block_size": g.sbs,
         "large_block_size": LFBS if g.v6 else 0,
         "fd_size": g.fd_size,
         "devices": vol.paths, "device_size": vol.devsize, "files": []}
    for n in user + [g.sys[k] for k in sorted(g.sys)]:
        if n is g.root:
            continue
        e = {"path": n.path(), "kind": {"dir": "dir", "file": "file",
                                        "link": "symlink",
                                        "sys": "system"}[n.kind],
             "fd": "%#x" % n.addr, "zla": n.zla, "size": n.size,
             "block_size": n.bs, "layout": n.layout_text,
             "mode": "%o" % (n.mode & 0o7777), "mtime": n.mtime,
             "extents": n.extents}
        if n.kind == "link":
            e["target"] = n.target
        m["files"].append(e)
    with open(args.manifest, "w") as f:
        json.dump(m, f, indent=1)
        f.write("\n")


def cmd_make(args):
    if args.version not in (5, 6):
        die("--version is 5 or 6")
    args.size = parse_size(args.size)
    if args.span < 1 or args.span > 32:
        die("--span is 1 to 32")
    g = Gen(args)
    user = g.make(args)
    if args.manifest:
        manifest(g, user, args)


def main():
    p = argparse.ArgumentParser(
        description="Write VMFS5/VMFS6 volumes for the tests.")
    sub = p.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="write a volume")
    mk.add_argument("out", metavar="OUT.img")
    mk.add_argument("--version", type=int, required=True)
    mk.add_argument("--size", default="1G")
    mk.add_argument("--label")
    mk.add_argument("--uuid")
    mk.add_argument("--seed", type=int, default=1)
    mk.add_argument("--from", dest="src", metavar="DIR")
    mk.add_argument("--spec", metavar="SPEC.json")
    mk.add_argument("--layout", action="append", metavar="GLOB=MODE")
    mk.add_argument("--manifest", metavar="OUT.json")
    mk.add_argument("--span", type=int, default=1)
    args = p.parse_args()
    if args.cmd == "make":
        cmd_make(args)


if __name__ == "__main__":
    main()

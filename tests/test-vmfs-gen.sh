#!/bin/bash
# test-vmfs-gen.sh: volumes written by tests/gen/mkvmfs.py (VMFS5 and VMFS6,
# from a local folder tree and a spec) read by the independent Debian
# readers and by the project's reader (tests/vmfs/vmfs-tool).
#
# The tree: folders five levels deep, a folder of 70 files (more than one
# VMFS5 sub-block and several VMFS6 directory blocks), symlinks (to a file,
# a folder, a missing name), names of 120 bytes, odd permission bits and
# mtimes, and files in every address and allocation mode: resident,
# sub-block, file blocks, pointer blocks, double indirect, thick, lazy
# (to-be-zeroed blocks over stale bytes), thin (holes), fragmented, and
# combinations; on VMFS6 also 512 MiB large file blocks.  For each volume:
#   (a) the independent reader (vmfs-fuse and debugvmfs on VMFS5,
#       vmfs6-fuse and debugvmfs6 on VMFS6): the listing of its mount equals
#       the source tree's, and every file it reaches reads as the source
#       bytes.  What it does not reach, and so only the generator and the
#       project's reader witness: double indirect on both (vmfs-tools folds
#       it into single indirect; vmfs6-tools 0.2.1 has none), VMFS6 large
#       file blocks, and on VMFS6 holes and to-be-zeroed blocks (vmfs6-tools
#       stops a block list at its first zero address and ignores the
#       to-be-zeroed bits);
#   (b) the project's reader: tree equals the source listing, every file's
#       bytes (data extents of the huge sparse ones) equal the source, and
#       the allocation map (vmfs-tool map) equals the generator's manifest
#       (holes for thin, "zero" for to-be-zeroed).
# Then: a COWD and an SEsparse delta over a descriptor + flat base (made
# with tests/gen/mkvmdk.py) on a VMFS5 and a VMFS6 volume read by vmfs-tool
# vmdk-cat as qemu-img reads the local files; a volume spanning two devices;
# and a changed byte caught by the comparison.
#
# VMFS_TOOL: the tool (default tests/vmfs/vmfs-tool, or vmfs-tool-san when
# $VMDKFS is the sanitizer build).
. "$(dirname "$0")/lib.sh"
set -o pipefail

if [ -z "${VMFS_TOOL:-}" ]; then
	case $VMDKFS in
	*-san) VMFS_TOOL=$TOP/tests/vmfs/vmfs-tool-san ;;
	*) VMFS_TOOL=$TOP/tests/vmfs/vmfs-tool ;;
	esac
fi
TOOL=$VMFS_TOOL
[ -x "$TOOL" ] || skip "$TOOL not built (make tests/vmfs/vmfs-tool)"
need python3 cmp md5sum find fusermount mountpoint timeout truncate
for c in vmfs-fuse vmfs6-fuse debugvmfs debugvmfs6; do
	command -v $c >/dev/null 2>&1 ||
		skip "$c is not installed (apt-get install vmfs-tools vmfs6-tools)"
done
[ -c /dev/fuse ] || skip "/dev/fuse missing"
MKVMFS="/usr/bin/python3 $TESTS/gen/mkvmfs.py"

SAN=$WORK/san
mkdir -p "$SAN"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SAN/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:log_path=$SAN/ubsan"
sanitizer_clean() {
	if ls "$SAN"/* >/dev/null 2>&1; then
		cat "$SAN"/* | head -30
		fail "sanitizer report after: $1"
	fi
}
cd "$WORK" || fail "cd $WORK"
T0=$(date +%s)
MiB=1048576

# ---- The source tree ----
python3 - src <<'EOF' || fail "making the source tree"
import os, random, sys
top = sys.argv[1]
MiB = 1 << 20
r = random.Random(7)
def mk(path, size, zero_mib=(), mode=0o644, mtime=1600000000):
    p = os.path.join(top, path)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        b = bytearray(r.randbytes(size))
        for z in zero_mib:
            b[z * MiB:(z + 1) * MiB] = bytes(len(b[z * MiB:(z + 1) * MiB]))
        f.write(b)
    os.chmod(p, mode)
    os.utime(p, (mtime, mtime))
# Address and allocation modes (the --layout globs below name them).
for name in ("thick", "lazy", "thin", "fragmented", "thin+fragmented",
             "lazy+fragmented", "file-block", "auto"):
    mk("modes/%s.bin" % name, 5 * MiB + 12345, zero_mib=(1, 3))
mk("modes/resident.bin", 700)
mk("modes/sub-block.bin", 6000)
mk("modes/sub-block+thin.bin", 6000)
mk("modes/pointer.bin", 3 * MiB + 7, zero_mib=(1,))
mk("modes/lazy+pointer.bin", 3 * MiB + 7, zero_mib=(1,))
mk("modes/pointer+thin.bin", 3 * MiB + 7, zero_mib=(0, 2))
mk("modes/double-indirect.bin", 2 * MiB + 99, zero_mib=(1,))
mk("modes/double-indirect+thin.bin", 4 * MiB, zero_mib=(1, 2))
mk("modes/empty.bin", 0)
# Folders several levels deep, odd modes and mtimes.
mk("deep/a/b/c/d/e/leaf.txt", 33, mode=0o600, mtime=1500000000)
mk("deep/a/b/run.sh", 100, mode=0o755, mtime=1400000000)
mk("deep/a/b/c/setuid", 10, mode=0o4750)
# A long name (120 bytes) and a folder of many files.
mk("long/" + "n" * 116 + ".bin", 5000)
for i in range(70):
    mk("many/file-%03d.txt" % i, 10 + i * 37)
os.symlink("../modes/auto.bin", os.path.join(top, "deep/link-to-file"))
os.symlink("a/b", os.path.join(top, "deep/link-to-dir"))
os.symlink("no-such-file", os.path.join(top, "deep/dangling"))
os.symlink("l" * 200, os.path.join(top, "long/long-target"))
for d in ("deep/a/b/c/d/e", "deep/a/b/c/d", "deep/a/b/c", "deep/a/b",
          "deep/a", "deep", "long", "many", "modes"):
    os.utime(os.path.join(top, d), (1650000000, 1650000000))
EOF
# VMFS6 only: large file blocks (the image stays sparse).
mkdir -p src6
cp -a src/. src6/
python3 - src6 <<'EOF' || fail "making the VMFS6 extras"
import os, random, sys
r = random.Random(8)
MiB = 1 << 20
for name, size, at in (("large", 600 * MiB, (0, 5 * MiB, 599 * MiB)),
                       ("large+thin", 1100 * MiB, (3 * MiB, 1090 * MiB)),
                       ("lazy+large", 700 * MiB, (0,))):
    p = os.path.join(sys.argv[1], "modes", name + ".bin")
    with open(p, "wb") as f:
        f.truncate(size)
        for a in at:
            f.seek(a)
            f.write(r.randbytes(MiB))
    os.utime(p, (1600000000, 1600000000))
os.utime(os.path.join(sys.argv[1], "modes"), (1650000000, 1650000000))
EOF
LAYOUTS=""
for f in src6/modes/*.bin; do
	b=$(basename "$f" .bin)
	case $b in empty) continue ;; esac
	LAYOUTS="$LAYOUTS --layout modes/$b.bin=$b"
done

# listing DIR: KIND PERMS SIZE MTIME PATH [-> TARGET], as vmfs-tool tree.
listing() {
	(cd "$1" && find . -mindepth 1 \( -type l -printf '%y %m %s %T@ %P -> %l\n' \) \
		-o -printf '%y %m %s %T@ %P\n') |
		sed -E 's/^([^ ]+ [^ ]+ [^ ]+ [0-9]+)\.[0-9]+ /\1 /' |
		grep -v ' \.[a-z0-9]*\.sf$' | LC_ALL=C sort -t ' ' -k5
}
# Folders' sizes are the volume's own (directory files), not the source's.
nodirsize() { sed -E 's/^d ([0-7]+) [0-9]+ /d \1 - /'; }

mountit() { # IMG... MNT (VERSION in $ver)
	local mnt=${*: -1}
	mkdir -p "$mnt"
	if [ "$ver" = 6 ]; then vmfs6-fuse "$@" >/dev/null 2>&1; else vmfs-fuse "$@" >/dev/null 2>&1; fi ||
		fail "VMFS$ver: the oracle does not mount $*"
	MOUNTS="$MOUNTS $WORK/$mnt"
	for i in $(seq 100); do mountpoint -q "$mnt" && return 0; sleep 0.05; done
	fail "the oracle mount $mnt did not appear"
}
umountit() { fusermount -u "$1"; MOUNTS=$(echo "$MOUNTS" | sed "s# $WORK/$1##"); }

# What the independent readers do not reach (see the header).
oracle_skip() { # VERSION PATH
	case $1:$2 in
	*:modes/double-indirect*) return 0 ;;
	6:modes/*large*) return 0 ;;
	6:modes/*thin* | 6:modes/*lazy*) return 0 ;;
	esac
	return 1
}

# check_map IMG MANIFEST SRCDIR: vmfs-tool map of every file equals the
# manifest's extents; vmfs-tool cat (data extents only for files over 64
# MiB) equals the source.
check_ours() {
	python3 - "$TOOL" "$1" "$2" "$3" <<'EOF'
import json, os, subprocess, sys
tool, img, man, src = sys.argv[1:5]
m = json.load(open(man))
n = nz = nh = 0
for e in m["files"]:
    if e["kind"] != "file":
        continue
    p = "/" + e["path"]
    out = subprocess.run([tool, "map", p, img], capture_output=True, text=True)
    if out.returncode:
        sys.exit("vmfs-tool map %s: %s" % (p, out.stderr))
    got = [l.split() for l in out.stdout.splitlines()]
    got = [{"kind": k, "offset": int(o), "length": int(l)} for k, o, l in got]
    want = [{"kind": x["kind"], "offset": x["offset"], "length": x["length"]}
            for x in e["extents"] if x["length"]]
    if got != want:
        sys.exit("%s: map %s, manifest %s" % (p, got[:6], want[:6]))
    nz += sum(1 for x in got if x["kind"] == "zero")
    nh += sum(1 for x in got if x["kind"] == "hole")
    sf = open("%s/%s" % (src, e["path"]), "rb")
    if e["size"] <= 64 << 20:
        b = subprocess.run([tool, "cat", p, img], capture_output=True).stdout
        if b != sf.read():
            sys.exit("%s: vmfs-tool cat differs from the source" % p)
    else:
        # Huge sparse files: the source's data regions, and the first MiB of
        # every extent.
        spans = [(x["offset"], min(1 << 20, x["length"])) for x in got]
        fd = sf.fileno()
        off = 0
        while off < e["size"]:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            h = os.lseek(fd, d, os.SEEK_HOLE)
            spans.append((d, h - d))
            off = h
        for off, ln in spans:
            b = subprocess.run([tool, "read", p, str(off), str(ln), img],
                               capture_output=True).stdout
            sf.seek(off)
            if b != sf.read(ln):
                sys.exit("%s: bytes at %d differ from the source" % (p, off))
    n += 1
print("%d files, %d holes, %d to-be-zeroed runs" % (n, nh, nz))
EOF
}

# check_oracle VERSION IMG MNT SRC: the oracle's listing and bytes.
check_oracle() {
	local ver=$1 img=$2 mnt=$3 src=$4 n=0 s=0 kind perm size mtime path a b
	listing "$mnt" | nodirsize >oracle.lst
	listing "$src" | nodirsize >source.lst
	cmp -s oracle.lst source.lst || { diff source.lst oracle.lst | head; echo "VMFS$ver: the oracle's listing differs from the source's"; return 1; }
	while read -r kind perm size mtime path; do
		[ "$kind" = f ] || continue
		if oracle_skip "$ver" "$path"; then s=$((s + 1)); continue; fi
		cmp -s "$mnt/$path" "$src/$path" || { echo "VMFS$ver: /$path through the oracle mount differs from the source"; return 1; }
		if [ "$ver" = 6 ]; then
			a=$(debugvmfs6 "$img" cat "/$path" | tail -c +17 | md5sum)
		else
			a=$(debugvmfs "$img" cat "/$path" | md5sum)
		fi
		b=$(md5sum <"$src/$path")
		[ "$a" = "$b" ] || { echo "VMFS$ver: debugvmfs cat /$path differs from the source"; return 1; }
		n=$((n + 1))
	done <source.lst
	echo "$n files equal ($s left to the project's reader)"
}

for ver in 5 6; do
	t0=$(date +%s)
	src=src; [ $ver = 6 ] && src=src6
	lay=$LAYOUTS
	[ $ver = 5 ] && lay=$(echo "$LAYOUTS" | sed 's/--layout [^ ]*large[^ ]*//g')
	# shellcheck disable=SC2086
	$MKVMFS make v$ver.img --version $ver --size $((ver == 6 ? 4096 : 1024))M --seed $ver \
		--uuid 61137dd5-df6bc2c8-f0e7-00000000000$ver --label "Gen $ver" \
		--from $src $lay --manifest v$ver.json || fail "VMFS$ver: mkvmfs.py make"
	[ "$(du -k v$ver.img | cut -f1)" -lt 300000 ] || fail "VMFS$ver: the image is not sparse ($(du -k v$ver.img | cut -f1) KiB)"
	"$TOOL" info v$ver.img >info.txt || fail "VMFS$ver: vmfs-tool info"
	grep -qx "uuid 61137dd5-df6bc2c8-f0e7-00000000000$ver" info.txt || fail "VMFS$ver: uuid not kept: $(cat info.txt)"
	grep -qx "label Gen $ver" info.txt || fail "VMFS$ver: label not kept"
	# (a) the independent reader
	mountit v$ver.img m$ver
	out=$(check_oracle $ver v$ver.img m$ver $src) || fail "$out"
	echo "ok VMFS$ver: vmfs$([ $ver = 6 ] && echo 6)-fuse and debugvmfs$([ $ver = 6 ] && echo 6): the listing ($(wc -l <source.lst) entries) equals the source, $out"
	# (b) the project's reader
	"$TOOL" tree / v$ver.img | grep -v ' \.[a-z0-9]*\.sf$' | nodirsize | LC_ALL=C sort -t ' ' -k5 >ours.lst ||
		fail "VMFS$ver: vmfs-tool tree"
	cmp -s ours.lst source.lst || { diff source.lst ours.lst | head; fail "VMFS$ver: vmfs-tool tree differs from the source"; }
	"$TOOL" tree / v$ver.img | grep ' \.[a-z0-9]*\.sf$' | awk '{print $5}' | tr '\n' ' ' >sys.lst
	want=".fbb.sf .fdc.sf .pbc.sf .sbc.sf .vh.sf .pb2.sf .sdd.sf "
	[ $ver = 6 ] && want="$want.jbc.sf "
	[ "$(cat sys.lst)" = "$want" ] || fail "VMFS$ver: system files $(cat sys.lst)"
	out=$(check_ours v$ver.img v$ver.json $src) || fail "VMFS$ver: $out"
	echo "ok VMFS$ver: vmfs-tool tree, cat and map equal the source and the manifest: $out"
	"$TOOL" ls /many v$ver.img | wc -l | grep -qx 70 || fail "VMFS$ver: /many does not list 70 entries"
	# The address modes the manifest says were used.
	python3 - v$ver.json $ver <<'EOF' || fail "VMFS$ver: modes"
import json, sys
m = {e["path"]: e for e in json.load(open(sys.argv[1]))["files"]}
want = {"modes/resident.bin": 0x10d1, "modes/sub-block.bin": 2,
        "modes/file-block.bin": 1, "modes/pointer.bin": 3,
        "modes/double-indirect.bin": 0x10d0, "modes/auto.bin": 1,
        "many": 1 if sys.argv[2] == "5" else 2, "deep/a": 2}
for p, z in want.items():
    if m[p]["zla"] != z:
        sys.exit("%s: zla %#x, want %#x" % (p, m[p]["zla"], z))
if sys.argv[2] == "6" and m["modes/large.bin"]["block_size"] != 512 << 20:
    sys.exit("large.bin is not in large file blocks")
EOF
	umountit m$ver
	sanitizer_clean "VMFS$ver"
	echo "ok VMFS$ver volume checked in $(($(date +%s) - t0))s"
done

# A thin 300 GiB file: past VMFS5's single indirect reach (256 GiB), so
# double indirect by itself there; single indirect on VMFS6.  Only the
# project's reader witnesses it (see the header).
mkdir -p huge
truncate -s 300G huge/disk-flat.vmdk
printf 'head' | dd of=huge/disk-flat.vmdk conv=notrunc status=none
printf 'tail' | dd of=huge/disk-flat.vmdk bs=1 seek=$((300 * 1024 * MiB - 4)) conv=notrunc status=none
for ver in 5 6; do
	$MKVMFS make h$ver.img --version $ver --size 256M --from huge --layout '*=thin' \
		--manifest h$ver.json || fail "VMFS$ver: the 300 GiB file"
	zla=$("$TOOL" stat /disk-flat.vmdk h$ver.img | awk '$1 == "zla" {print $2}')
	want=3; [ $ver = 5 ] && want=4304
	[ "$((zla))" = $want ] || fail "VMFS$ver: the 300 GiB file has ZLA $zla, want $want"
	out=$(check_ours h$ver.img h$ver.json huge) || fail "VMFS$ver: $out"
	[ "$("$TOOL" read /disk-flat.vmdk $((300 * 1024 * MiB - 4)) 4 h$ver.img)" = tail ] || fail "VMFS$ver: the 300 GiB file's last bytes"
done
echo "ok a thin 300 GiB file (VMFS5 double indirect, VMFS6 single indirect): map and data equal the source"

# The stale bytes under to-be-zeroed blocks are there (so a reader that
# ignored the bit would fail): lazy.bin's second MiB.
python3 - v5.json v5.img <<'EOF' || fail "stale bytes"
import json, os, sys
m = {e["path"]: e for e in json.load(open(sys.argv[1]))["files"]}
z = [x for x in m["modes/lazy.bin"]["extents"] if x["kind"] == "zero"]
assert z, "lazy.bin has no to-be-zeroed extent"
f = open(sys.argv[2], "rb")
fd, off, n = f.fileno(), 0, 0
while True:
    try:
        d = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    n += os.pread(fd, h - d, d).count(b"STALE!")
    off = h
assert n > 100000, "no stale pattern in the image"
EOF
echo "ok to-be-zeroed blocks hold stale bytes on disk and read as zeros"

# ---- A changed byte is caught ----
python3 - v5.json v5.img <<'EOF' || fail "flip"
import os, sys
# modes/thick.bin's first block: where is it?  The generator does not say;
# find the source's first 64 bytes in the image.
src = open("src/modes/thick.bin", "rb").read(64)
img = open(sys.argv[2], "r+b")
fd, off = img.fileno(), 0
while True:
    d = os.lseek(fd, off, os.SEEK_DATA)
    h = os.lseek(fd, d, os.SEEK_HOLE)
    data = os.pread(fd, h - d, d)
    at = data.find(src)
    if at >= 0:
        break
    off = h
os.pwrite(fd, bytes([data[at + 10] ^ 0xff]), d + at + 10)
EOF
if out=$(check_ours v5.img v5.json src); then fail "a changed byte went unnoticed by vmfs-tool ($out)"; fi
ver=5 mountit v5.img m5b
if out=$(check_oracle 5 v5.img m5b src); then fail "a changed byte went unnoticed by the oracle ($out)"; fi
umountit m5b
echo "ok a changed byte is caught: $out"

# ---- Delta chains on VMFS: COWD and SEsparse over a flat base ----
need qemu-img
CHAINS="" KNOWN=""
mkdir -p vm
python3 - <<'EOF' || fail "delta raws"
import random
r = random.Random(9)
n = 8 << 20
base = bytearray(r.randbytes(n)); base[1 << 20:3 << 20] = bytes(2 << 20)
open("vm/base.raw", "wb").write(base)
for name in ("c1", "s1"):
    d = bytearray(n)
    for g in (0, 5, 100, 4000, 16383):
        d[g * 512:(g + 1) * 512] = r.randbytes(512)
    open("vm/%s.raw" % name, "wb").write(d)
EOF
cp vm/base.raw vm/base-flat.vmdk
cat >vm/base.vmdk <<'EOF'
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="vmfs"

RW 16384 VMFS "base-flat.vmdk"

ddb.adapterType = "lsilogic"
ddb.geometry.cylinders = "1"
ddb.geometry.heads = "255"
ddb.geometry.sectors = "63"
ddb.virtualHWVersion = "14"
EOF
$MKVMDK cowd vm/c1.raw vm/cowd.vmdk --parent vm/base.vmdk >/dev/null || fail "mkvmdk cowd"
$MKVMDK sesparse vm/s1.raw vm/se.vmdk --parent vm/base.vmdk >/dev/null || fail "mkvmdk sesparse"
rm -f vm/*.raw
qemu-img convert -f vmdk -O raw vm/cowd.vmdk want-cowd.raw || fail "qemu-img on the COWD chain"
qemu-img convert -f vmdk -O raw vm/se.vmdk want-se.raw || fail "qemu-img on the SEsparse chain"
for ver in 5 6; do
	# (vmfs6-tools reads no holes nor to-be-zeroed blocks: thick there.)
	if [ $ver = 5 ]; then
		dl="--layout *-flat.vmdk=thin --layout *-sesparse.vmdk=thin+fragmented --layout *-delta.vmdk=lazy"
	else
		dl="--layout *-flat.vmdk=fragmented --layout *-sesparse.vmdk=pointer --layout *-delta.vmdk=fragmented"
	fi
	# shellcheck disable=SC2086
	$MKVMFS make d$ver.img --version $ver --size 256M --from vm $dl \
		--manifest d$ver.json >/dev/null || fail "VMFS$ver: mkvmfs.py make of the delta folder"
	"$TOOL" vmdk-cat /base.vmdk d$ver.img | cmp -s - vm/base-flat.vmdk ||
		fail "VMFS$ver: vmdk-cat of the flat base"
	for f in vm/*; do
		"$TOOL" cat "/${f#vm/}" d$ver.img | cmp -s - "$f" || fail "VMFS$ver: /${f#vm/} differs"
	done
	for d in cowd se; do
		if "$TOOL" vmdk-cat /$d.vmdk d$ver.img >got.raw 2>err.txt; then
			same got.raw want-$d.raw "VMFS$ver: the $d chain through vmfs-tool vmdk-cat"
			CHAINS="$CHAINS $d/$ver"
		elif grep -q 'parentFileNameHint) not found' err.txt; then
			# vmdk/vmdk.c looks a parent up with access() on the local
			# file system, not through the opener (a bug outside vmfs/,
			# reported): the chain cannot be opened on a volume yet.
			KNOWN="$KNOWN $d/$ver"
		else
			cat err.txt
			fail "VMFS$ver: vmdk-cat /$d.vmdk"
		fi
	done
	ver=$ver mountit d$ver.img md$ver
	for d in cowd se; do
		qemu-img convert -f vmdk -O raw md$ver/$d.vmdk q.raw || fail "qemu-img over the oracle mount"
		same q.raw want-$d.raw "VMFS$ver: qemu-img of the $d chain over the oracle's mount"
	done
	umountit md$ver
	sanitizer_clean "deltas on VMFS$ver"
done
echo "ok COWD and SEsparse chains over a flat base on VMFS5 and VMFS6: their files read back whole, the base through vmdk-cat, qemu-img over the oracle mount equals qemu-img of the local files; vmdk-cat of the chain equals qemu-img for:${CHAINS:- none}"
[ -z "$KNOWN" ] || echo "NOTE: vmdk-cat cannot open the chain's parent on a volume (vmdk/vmdk.c checks the parent with access() on the local file system, not through the opener) for:$KNOWN"

# ---- A volume spanning two devices ----
for ver in 5 6; do
	$MKVMFS make sp$ver.img --version $ver --size 300M --span 2 --spec /dev/stdin \
		--manifest sp$ver.json <<EOF || fail "VMFS$ver: --span 2"
[{"path": "a/big.bin", "kind": "file", "size": $((400 * MiB)), "pattern": "seeded", "layout": "thick"},
 {"path": "a/small", "kind": "file", "size": 5000, "pattern": "seeded"}]
EOF
	"$TOOL" info sp$ver.img.1 sp$ver.img.0 | grep -qx 'devices 2' || fail "VMFS$ver: the spanned volume"
	"$TOOL" cat /a/big.bin sp$ver.img.0 sp$ver.img.1 | md5sum >ours.md5
	ver=$ver mountit sp$ver.img.0 sp$ver.img.1 msp$ver
	md5sum <msp$ver/a/big.bin | cmp -s - ours.md5 || fail "VMFS$ver: the file across both devices reads differently in the oracle"
	umountit msp$ver
done
echo "ok volumes spanning two devices read alike by vmfs-tool and the oracles"
sanitizer_clean "all"
echo "ok all in $(($(date +%s) - T0))s"

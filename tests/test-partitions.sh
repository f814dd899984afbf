#!/bin/bash
# Partitions as files (DISK-pN.raw) and the scratch layer (-o scratch).
#
# Oracles, all independent of vmdkfs: the tables are made by sfdisk and
# sgdisk, and each partition's number, start, size, type, GUID and name
# come from `sfdisk --json` and `sgdisk -i`; the bytes of a partition file
# are compared with `dd` of the raw image at those offsets; the file
# systems in them are made by mkfs.ext4 -d and mkntfs (filled through
# ntfs-3g) from known folders, then mounted by the kernel (loop, ext4) and
# by ntfs-3g from the partition files and compared file by file with
# those folders; SEEK_DATA/SEEK_HOLE of a partition file against
# `qemu-img map` of the disk clipped to the partition.  The disks are read
# as real VMDKs made by `qemu-img convert` (monolithicSparse and
# streamOptimized).  The dirty ext4 is a copy of an image the kernel had
# mounted (its journal needing recovery, as dumpe2fs reports): the kernel
# refuses it read-only without scratch, and replays its journal through
# scratch, the VMDK's hash unchanged.  Odd tables (an entry past the end,
# an overlap, an EBR loop) are built byte by byte here.  A lun= volume
# (tests/gen/mkvmfs.py) and a vSphere disk read over nbdssl (the lab:
# vcsim plus the project's NFC server, SIMULATED) show partition files too.
. "$(dirname "$0")/lib.sh"
need sfdisk sgdisk mkfs.ext4 dumpe2fs qemu-img getfattr losetup
[ -x /usr/bin/python3 ] || skip "python3 is not installed"
[ "$(id -u)" = 0 ] || skip "loop mounts need root"
cd "$WORK"
MiB=1048576
LOG=$WORK/vmdkfs.log

# part_json RAW N: "start size" in bytes of partition N by sfdisk --json.
part_json() {
	sfdisk --json "$1" | /usr/bin/python3 -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
ss = t.get("sectorsize", 512)
for p in t["partitions"]:
    if p["node"].endswith(sys.argv[1]) and p["node"][len(p["node"]) - len(sys.argv[1]) - 1:-len(sys.argv[1])] not in "0123456789":
        print(p["start"] * ss, p["size"] * ss)
' "$2"
}
# extract RAW START SIZE OUT: the oracle's bytes of a partition.
extract() { dd if="$1" of="$4" bs=512 skip=$(($2 / 512)) count=$(($3 / 512)) status=none; }
xa() { getfattr --only-values -n "user.vmdkfs.partition.$2" "$1" 2>/dev/null; }
# files: a folder of known files (names with spaces, a subfolder).
mkfiles() {
	mkdir -p "$1/sub dir"
	head -c 300000 /dev/urandom >"$1/big.bin"
	echo "hello from $1" >"$1/hello.txt"
	head -c 4097 /dev/urandom >"$1/sub dir/odd size"
}
# same_tree A B WHAT: the same files and bytes.
same_tree() { diff -r -x lost+found "$1" "$2" >diff.txt 2>&1 || fail "$3: $(head -5 diff.txt)"; }
# unmount_fs DIR: a kernel or ntfs-3g mount made here.
unmount_fs() { umount "$1" 2>/dev/null || fusermount3 -u "$1"; MOUNTS=$(echo "$MOUNTS" | sed "s# $WORK/$1##"); }

# ---- Images: an MBR disk with logicals, a GPT disk, file systems ----
mkfiles src1
mkfiles src5
mkfiles srcg
mkfs.ext4 -q -F -d src1 fs1.img 12M >/dev/null
mkfs.ext4 -q -F -d src5 fs5.img 10M >/dev/null
mkfs.ext4 -q -F -b 4096 -d srcg fsg.img 8M >/dev/null
have_ntfs=""
if command -v mkntfs >/dev/null && command -v ntfs-3g >/dev/null; then
	mkfiles srcn
	truncate -s 12M ntfs.img
	mkntfs -q -F -Q ntfs.img >/dev/null 2>&1 || fail "mkntfs"
	mkdir -p nm
	ntfs-3g ntfs.img nm || fail "ntfs-3g ntfs.img"
	MOUNTS="$MOUNTS $WORK/nm"
	cp -r srcn/. nm/
	unmount_fs nm
	have_ntfs=1
else
	echo "(no NTFS: mkntfs/ntfs-3g are not installed; scripts/install-deps.sh test installs ntfs-3g)"
fi

truncate -s 64M mbr.raw
sfdisk -q mbr.raw <<'EOF' || fail "sfdisk mbr"
label: dos
label-id: 0x1234abcd
start=2048, size=24576, type=83
start=28672, size=65536, type=5
start=96256, size=8192, type=da
start=30720, size=20480, type=83
start=53248, size=24576, type=7
EOF
read -r s1 z1 <<<"$(part_json mbr.raw 1)"
read -r s5 z5 <<<"$(part_json mbr.raw 5)"
read -r s6 z6 <<<"$(part_json mbr.raw 6)"
read -r s3 z3 <<<"$(part_json mbr.raw 3)"
[ -n "$s6" ] && [ -n "$s3" ] || fail "sfdisk --json: $(sfdisk --json mbr.raw)"
dd if=fs1.img of=mbr.raw bs=512 seek=$((s1 / 512)) conv=notrunc status=none
dd if=fs5.img of=mbr.raw bs=512 seek=$((s5 / 512)) conv=notrunc status=none
[ -n "$have_ntfs" ] && dd if=ntfs.img of=mbr.raw bs=512 seek=$((s6 / 512)) conv=notrunc status=none
head -c 100000 /dev/urandom | dd of=mbr.raw bs=512 seek=$((s3 / 512)) conv=notrunc status=none
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse mbr.raw mbr.vmdk
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized mbr.raw mbrs.vmdk

# GPT: entries 1, 2 and 5 (index 4: a gap before it), names, types.
truncate -s 48M gpt.raw
sgdisk -n 1:2048:+8M -t 1:8300 -c 1:"linux root" \
	-n 2:0:+4M -t 2:0700 -c 2:"Basic data" \
	-n 5:0:+16M -t 5:8e00 -c 5:"lvm space" gpt.raw >/dev/null || fail "sgdisk"
gstart() { sgdisk -i "$1" gpt.raw | sed -n 's/^First sector: \([0-9]*\).*/\1/p'; }
glast() { sgdisk -i "$1" gpt.raw | sed -n 's/^Last sector: \([0-9]*\).*/\1/p'; }
dd if=fsg.img of=gpt.raw bs=512 seek="$(gstart 1)" conv=notrunc status=none
# Partition 5: scattered 64 KiB pieces of data, holes between them.
for o in 0 5 6 100 250; do
	head -c 65536 /dev/urandom | dd of=gpt.raw bs=512 seek=$(($(gstart 5) + o * 128)) conv=notrunc status=none
done
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse gpt.raw gpt.vmdk

# Damaged GPT: the primary header's CRC broken (the backup is good);
# sgdisk -v sees the damage too.
cp gpt.raw gptbad.raw
printf '\xff\xff' | dd of=gptbad.raw bs=1 seek=$((512 + 16)) conv=notrunc status=none
sgdisk -v gptbad.raw 2>&1 | grep -qi "crc\|corrupt\|damaged" || fail "sgdisk does not see the damaged primary GPT"
qemu-img convert -f raw -O vmdk gptbad.raw gptbad.vmdk

# Odd MBRs, made byte by byte: an entry past the end, an overlap, and an
# EBR chain that loops back to its first EBR.
/usr/bin/python3 - <<'EOF'
import struct

def mbr(entries, size=16 << 20):
    b = bytearray(size)
    for i, (t, start, n) in enumerate(entries):
        o = 446 + 16 * i
        b[o + 4] = t
        b[o + 8:o + 16] = struct.pack("<II", start, n)
    b[510:512] = b"\x55\xaa"
    return b

def save(name, b):
    open(name, "wb").write(b)

save("past.raw", mbr([(0x83, 2048, 4096), (0x83, 8192, 40000)]))
save("overlap.raw", mbr([(0x83, 2048, 8192), (0x83, 6144, 4096)]))
b = mbr([(0x83, 2048, 2048), (0x05, 8192, 16384)])
e = 8192 * 512  # the first EBR: a logical, then a link to itself
b[e + 446 + 4] = 0x83
b[e + 446 + 8:e + 446 + 16] = struct.pack("<II", 2048, 2048)
b[e + 462 + 4] = 0x05
b[e + 462 + 8:e + 462 + 16] = struct.pack("<II", 0, 16384)
b[e + 510:e + 512] = b"\x55\xaa"
save("loop.raw", b)
save("none.raw", bytearray(8 << 20))
EOF
for d in past overlap loop none; do
	qemu-img convert -f raw -O vmdk $d.raw $d.vmdk
done
sfdisk -l past.raw >/dev/null 2>&1 # (sfdisk lists such tables as they are)

# ---- Local disks: names, bytes, xattrs, file systems ----
rm -f "$LOG"
mount_vmdkfs m -o "log=$LOG" mbr.vmdk mbrs.vmdk gpt.vmdk gptbad.vmdk past.vmdk overlap.vmdk loop.vmdk none.vmdk
sleep 0.2
! grep -q "partition" "$LOG" || fail "a partition table was read at mount, before any listing: $(grep partition "$LOG")"
ls m >ls.txt
for f in mbr.raw mbr-p1.raw mbr-p3.raw mbr-p5.raw mbr-p6.raw mbrs-p1.raw mbrs-p6.raw \
	gpt-p1.raw gpt-p2.raw gpt-p5.raw gptbad-p1.raw gptbad-p5.raw past-p1.raw overlap-p1.raw loop-p5.raw none.raw; do
	grep -qx "$f" ls.txt || fail "no $f in the mount: $(tr '\n' ' ' <ls.txt)"
done
for f in mbr-p2.raw mbr-p4.raw mbr-p7.raw gpt-p3.raw gpt-p4.raw past-p2.raw overlap-p2.raw loop-p6.raw none-p1.raw; do
	grep -qx "$f" ls.txt && fail "$f should not exist: $(tr '\n' ' ' <ls.txt)"
done
echo "ok names: $(grep -c -- '-p[0-9]*\.raw$' ls.txt) partition files, none invented"

for n in 1 3 5 6; do
	read -r s z <<<"$(part_json mbr.raw $n)"
	extract mbr.raw "$s" "$z" want.bin
	same m/mbr-p$n.raw want.bin "MBR partition $n (sfdisk: bytes $s+$z)"
	same m/mbrs-p$n.raw want.bin "streamOptimized MBR partition $n"
	[ "$(xa m/mbr-p$n.raw number)" = $n ] || fail "mbr-p$n number"
	[ "$(xa m/mbr-p$n.raw start)" = "$s" ] || fail "mbr-p$n start $(xa m/mbr-p$n.raw start), sfdisk $s"
	[ "$(xa m/mbr-p$n.raw size)" = "$z" ] || fail "mbr-p$n size"
	want_type=$(printf '0x%02x' "0x$(sfdisk --part-type mbr.raw $n | tr -d " ")")
	[ "$(xa m/mbr-p$n.raw type)" = "$want_type" ] || fail "mbr-p$n type $(xa m/mbr-p$n.raw type), sfdisk $want_type"
	want_uuid=$(sfdisk --part-uuid mbr.raw $n 2>/dev/null || true)
	[ -z "$want_uuid" ] || [ "$(xa m/mbr-p$n.raw uuid)" = "$want_uuid" ] || fail "mbr-p$n uuid $(xa m/mbr-p$n.raw uuid), sfdisk $want_uuid"
done
echo "ok MBR: primaries and logicals as sfdisk --json gives them (bytes, number, start, size, type, PARTUUID)"
for n in 1 2 5; do
	s=$(($(gstart $n) * 512))
	z=$((($(glast $n) - $(gstart $n) + 1) * 512))
	extract gpt.raw $s $z want.bin
	same m/gpt-p$n.raw want.bin "GPT partition $n"
	same m/gptbad-p$n.raw want.bin "GPT partition $n from the backup table"
	info=$(sgdisk -i $n gpt.raw)
	guid=$(echo "$info" | sed -n 's/^Partition unique GUID: //p' | tr A-Z a-z)
	type=$(echo "$info" | sed -n 's/^Partition GUID code: \([0-9A-F-]*\).*/\1/p' | tr A-Z a-z)
	name=$(echo "$info" | sed -n "s/^Partition name: '\(.*\)'$/\1/p")
	for f in gpt gptbad; do
		[ "$(xa m/$f-p$n.raw uuid)" = "$guid" ] || fail "$f-p$n uuid $(xa m/$f-p$n.raw uuid), sgdisk $guid"
		[ "$(xa m/$f-p$n.raw type)" = "$type" ] || fail "$f-p$n type $(xa m/$f-p$n.raw type), sgdisk $type"
		[ "$(xa m/$f-p$n.raw name)" = "$name" ] || fail "$f-p$n name '$(xa m/$f-p$n.raw name)', sgdisk '$name'"
		[ "$(xa m/$f-p$n.raw start)" = $s ] && [ "$(xa m/$f-p$n.raw size)" = $z ] || fail "$f-p$n start/size"
	done
done
grep -q "gptbad.raw: GUID partition table (the backup" "$LOG" || fail "the damaged GPT's backup use is not logged: $(grep gptbad "$LOG")"
echo "ok GPT: entries 1, 2, 5 as sgdisk -i gives them (bytes, GUID, type, name), also from the backup of a damaged table"

for d in past overlap loop; do
	n=$(grep -c "$d.raw: partition table: " "$LOG" || true)
	[ "$n" = 1 ] || fail "$d: $n warnings, not 1: $(grep "$d.raw" "$LOG")"
done
grep "partition table: " "$LOG" | sed 's/^.*warn[a-z]*: /  /'
! grep -q "none.raw: partition table" "$LOG" || fail "a disk with no table warned"
nw=$(grep -c "partition table: " "$LOG")
ls m >/dev/null
cat m/past-p1.raw >/dev/null
[ "$(grep -c "partition table: " "$LOG")" = "$nw" ] || fail "a second listing logged the warnings again"
echo "ok odd tables: skipped entries, one warning each, naming the disk"

# File systems, mounted from the partition files.
mkdir -p x
mount -o loop,ro m/mbr-p1.raw x || fail "mount -o loop,ro mbr-p1.raw"
MOUNTS="$MOUNTS $WORK/x"
same_tree src1 x "ext4 in MBR partition 1"
unmount_fs x
mount -o loop,ro m/mbrs-p5.raw x || fail "mount -o loop,ro mbrs-p5.raw (a logical, streamOptimized)"
MOUNTS="$MOUNTS $WORK/x"
same_tree src5 x "ext4 in logical partition 5"
unmount_fs x
mount -o loop,ro m/gptbad-p1.raw x || fail "mount -o loop,ro gptbad-p1.raw"
MOUNTS="$MOUNTS $WORK/x"
same_tree srcg x "ext4 in GPT partition 1 (backup table)"
unmount_fs x
if [ -n "$have_ntfs" ]; then
	ntfs-3g -o ro m/mbr-p6.raw x || fail "ntfs-3g -o ro mbr-p6.raw"
	MOUNTS="$MOUNTS $WORK/x"
	same_tree srcn x "NTFS in logical partition 6 (ntfs-3g)"
	unmount_fs x
	echo "ok file systems: ext4 (kernel, loop) and NTFS (ntfs-3g) from partition files"
else
	echo "ok file systems: ext4 (kernel, loop); NTFS skipped (no ntfs-3g)"
fi

# SEEK_DATA/SEEK_HOLE of gpt-p5.raw: qemu-img map of the disk, clipped.
qemu-img map --output=json -f vmdk gpt.vmdk >map.json
/usr/bin/python3 - m/gpt-p5.raw map.json "$(xa m/gpt-p5.raw start)" "$(xa m/gpt-p5.raw size)" <<'EOF' || fail "SEEK_DATA/SEEK_HOLE of gpt-p5.raw disagree with qemu-img map"
import json, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
start, size = int(sys.argv[3]), int(sys.argv[4])
assert os.fstat(fd).st_size == size
got, pos = [], 0
while pos < size:
    try:
        d = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    assert d < h <= size, (d, h)
    got.append([d, h])
    pos = h
want = []
for e in json.load(open(sys.argv[2])):
    s, t = max(e["start"], start), min(e["start"] + e["length"], start + size)
    if not e["data"] or s >= t:
        continue
    if want and want[-1][1] == s - start:
        want[-1][1] = t - start
    else:
        want.append([s - start, t - start])
if got != want or len(got) < 3:
    print("vmdkfs:", got, "\nqemu:  ", want)
    sys.exit(1)
try:
    os.lseek(fd, size, os.SEEK_DATA)
    sys.exit("SEEK_DATA at the partition's end did not fail")
except OSError as e:
    assert e.errno == 6
print(f"  {len(got)} data ranges")
EOF
echo "ok SEEK_DATA/SEEK_HOLE bounded to the partition (qemu-img map)"
umount_vmdkfs m

# partitions=off
mount_vmdkfs m -o partitions=off mbr.vmdk gpt.vmdk
[ "$(ls m | tr '\n' ' ')" = "gpt.raw mbr.raw " ] || fail "partitions=off: $(ls m)"
umount_vmdkfs m
echo "ok partitions=off"

# ---- rw: writes through a partition stop at its end ----
cp mbr.vmdk rw.vmdk
mount_vmdkfs m -o rw rw.vmdk
/usr/bin/python3 - m/rw-p3.raw "$z3" <<'EOF' || fail "rw write at the partition's end"
import errno, os, sys
fd, size = os.open(sys.argv[1], os.O_WRONLY), int(sys.argv[2])
assert os.pwrite(fd, b"E" * 1024, size - 512) == 512
try:
    os.pwrite(fd, b"F" * 512, size)
    sys.exit("a write past the partition's end went through")
except OSError as e:
    assert e.errno == errno.ENOSPC, e
os.pwrite(fd, b"W" * 4096, 8192)
EOF
umount_vmdkfs m
qemu-img convert -f vmdk -O raw rw.vmdk rw.raw
cp mbr.raw want.raw
printf 'E%.0s' $(seq 512) | dd of=want.raw bs=1 seek=$((s3 + z3 - 512)) conv=notrunc status=none
printf 'W%.0s' $(seq 4096) | dd of=want.raw bs=1 seek=$((s3 + 8192)) conv=notrunc status=none
same rw.raw want.raw "rw writes through mbr-p3.raw (qemu-img convert of the result)"
echo "ok rw: writes through the partition land in the disk, none past its end"

# ---- The scratch layer ----
# A dirty ext4: an image the kernel has mounted, copied while mounted.
mkfiles srcj
truncate -s 24M j.img
mkfs.ext4 -q -F j.img >/dev/null
mkdir -p jm
mount -o loop j.img jm || fail "loop mount of j.img"
MOUNTS="$MOUNTS $WORK/jm"
cp -r srcj/. jm/
sync
cp j.img dirty.img
unmount_fs jm
dumpe2fs -h dirty.img 2>/dev/null | grep -q "^Filesystem features:.*needs_recovery" || fail "the copy's journal does not need recovery"
truncate -s 40M sd.raw
sfdisk -q sd.raw <<<"start=2048, size=49152, type=83" || fail "sfdisk sd"
read -r sj zj <<<"$(part_json sd.raw 1)"
dd if=dirty.img of=sd.raw bs=512 seek=$((sj / 512)) conv=notrunc status=none
qemu-img convert -f raw -O vmdk sd.raw sd.vmdk
sum0=$(md5sum <sd.vmdk)

mount_vmdkfs m sd.vmdk
if mount -o loop,ro m/sd-p1.raw x 2>err.txt; then
	MOUNTS="$MOUNTS $WORK/x"
	fail "the dirty ext4 mounted read-only without scratch (no recovery needed?)"
fi
grep -q "read-only" err.txt || fail "mount -o loop,ro failed otherwise: $(cat err.txt)"
echo "ok without scratch: mount -o loop,ro refuses the dirty ext4 ($(head -1 err.txt | sed 's/^mount: [^:]*: //'))"
umount_vmdkfs m

mkdir -p scr
mount_vmdkfs m -o "scratch=$WORK/scr,log=$LOG" sd.vmdk
[ -z "$(ls -A scr)" ] || fail "the scratch file is not unlinked: $(ls -A scr)"
loop_attach m/sd-p1.raw
mount -o ro "$LOOP" x || fail "mount -o ro of the dirty ext4 through scratch: $(dmesg | tail -3)"
MOUNTS="$MOUNTS $WORK/x"
same_tree srcj x "the dirty ext4 after its journal replay into the scratch layer"
unmount_fs x
losetup -d "$LOOP"
LOOPS=$(echo "$LOOPS" | sed "s# $LOOP##")
# The replay is in the layer, seen through the disk's file too.
dd if=m/sd.raw bs=512 skip=$((sj / 512)) count=$((zj / 512)) status=none >replayed.img
dumpe2fs -h replayed.img 2>/dev/null | grep -q "^Filesystem features:.*needs_recovery" && fail "sd.raw does not show the replay written through sd-p1.raw"
# A write into a hole through the partition: data for SEEK_DATA, in
# sd.raw at the partition's offset.
hole=$(/usr/bin/python3 -c '
import os, sys
fd, size = os.open(sys.argv[1], os.O_RDONLY), os.fstat(os.open(sys.argv[1], os.O_RDONLY)).st_size
for c in range(size - 65536, 0, -65536):  # a whole 64 KiB chunk of hole
    try:
        d = os.lseek(fd, c, os.SEEK_DATA)
    except OSError:
        d = size
    if d >= c + 65536:
        print(c + 300)
        break
' m/sd-p1.raw)
[ -n "$hole" ] || fail "no hole in sd-p1.raw to write into"
printf 'scratch!' | dd of=m/sd-p1.raw bs=1 seek=$hole conv=notrunc status=none
[ "$(dd if=m/sd.raw bs=1 skip=$((sj + hole)) count=8 status=none)" = "scratch!" ] || fail "sd.raw does not show the write made through sd-p1.raw"
/usr/bin/python3 -c '
import os, sys
fd, h = os.open(sys.argv[1], os.O_RDONLY), int(sys.argv[2])
c = h // 65536 * 65536
assert os.lseek(fd, c, os.SEEK_DATA) == c, "not data"
assert os.lseek(fd, c, os.SEEK_HOLE) == c + 65536, "not one chunk"
' m/sd-p1.raw $hole || fail "SEEK_DATA does not report the written chunk"
umount_vmdkfs m
[ "$(md5sum <sd.vmdk)" = "$sum0" ] || fail "the VMDK changed under the scratch layer"
grep -q "written to the scratch layer, discarded" "$LOG" || fail "the discard is not logged"
mount_vmdkfs m sd.vmdk
dd if=m/sd.raw bs=512 skip=$((sj / 512)) count=$((zj / 512)) status=none | cmp -s - dirty.img || fail "the scratch layer outlived its mount"
umount_vmdkfs m
echo "ok scratch: the journal replayed into a temporary file, the VMDK's md5 unchanged, nothing kept"

# Memory, bounded by scratch_max.
mount_vmdkfs m -o scratch,scratch_max=1M sd.vmdk
if dd if=/dev/zero of=m/sd-p1.raw bs=64k count=32 conv=notrunc,fsync status=none 2>err.txt; then
	fail "2 MiB went into a 1 MiB scratch layer"
fi
grep -q "No space left" err.txt || fail "not ENOSPC past scratch_max: $(cat err.txt)"
umount_vmdkfs m
"$VMDKFS" -o scratch,rw sd.vmdk m 2>err.txt && fail "scratch with rw was accepted"
grep -q "read-only" err.txt || fail "scratch,rw: $(cat err.txt)"
"$VMDKFS" -o scratch=$WORK/nonexistent sd.vmdk m 2>err.txt && fail "scratch in a missing folder was accepted"
grep -q "nonexistent" err.txt || fail "scratch=missing: $(cat err.txt)"
echo "ok scratch in memory: ENOSPC past scratch_max; refused with rw and for a missing folder"

# ---- lun=: a disk on a VMFS volume ----
mkdir -p vol
qemu-img convert -f raw -O vmdk -o subformat=monolithicFlat gpt.raw vol/g.vmdk
if /usr/bin/python3 "$TESTS/gen/mkvmfs.py" make vol.img --version 6 --size 160M --from vol >/dev/null 2>err.txt; then
	mount_vmdkfs m -o "lun=$WORK/vol.img"
	[ -f m/g-p5.raw ] || fail "lun=: no g-p5.raw: $(ls m)"
	s=$(($(gstart 5) * 512))
	z=$((($(glast 5) - $(gstart 5) + 1) * 512))
	extract gpt.raw $s $z want.bin
	same m/g-p5.raw want.bin "lun=: GPT partition 5 of a disk on the volume"
	umount_vmdkfs m
	echo "ok lun=: partition files of a disk on a VMFS6 volume"
else
	fail "mkvmfs.py: $(tail -3 err.txt)"
fi

# ---- vSphere over nbdssl (the lab: SIMULATED vCenter and NFC server) ----
if [ -n "${SKIP_LAB:-}" ]; then
	echo "(vSphere part skipped: SKIP_LAB set)"
	exit 0
fi
lab_nfc_setup
flat=$LAB_DATASTORE_DIR/$LAB_VM/$LAB_VM-flat.vmdk
[ -f "$flat" ] || fail "the lab VM's flat disk is not at $flat"
lsize=$(stat -c %s "$flat")
truncate -s "$lsize" lab.raw
sgdisk -n 1:2048:+6M -t 1:8300 -c 1:"lab data" lab.raw >/dev/null || fail "sgdisk lab.raw"
head -c $((6 * MiB)) /dev/urandom | dd of=lab.raw bs=512 seek=2048 conv=notrunc status=none
cp lab.raw "$flat"
mount_vmdkfs m -o "$NFC_OPTS,snapshot=new,transports=nbdssl"
f=$(ls -d m/*/Hard_disk_1-p1.raw 2>/dev/null | head -1)
[ -n "$f" ] || fail "nbdssl: no Hard_disk_1-p1.raw: $(ls -R m)"
[ "$(getfattr --only-values -n user.vmdkfs.transport "$f")" = nbdssl ] || fail "nbdssl: the partition's transport"
extract lab.raw $((2048 * 512)) $((6 * MiB)) want.bin
same "$f" want.bin "nbdssl: GPT partition 1 of the lab VM's disk"
[ "$(xa "$f" name)" = "lab data" ] || fail "nbdssl: partition name"
umount_vmdkfs m
echo "ok vSphere: a partition of a disk read over nbdssl"

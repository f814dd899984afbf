#!/bin/bash
# test-vmfs.sh: the VMFS reader (vmfs/, through tests/vmfs/vmfs-tool) on the
# two real volumes ESXi made (../shared/testdata/vmfs: VMFS5 and VMFS6),
# against the independent Debian readers: vmfs-fuse / debugvmfs (package
# vmfs-tools, VMFS5) and vmfs6-fuse / debugvmfs6 (vmfs6-tools, VMFS6).
#
# For each volume: the recursive listing (kind, permissions, size, mtime,
# path, symlink target) equals find over the oracle's FUSE mount; every
# file's bytes equal what debugvmfs(6) cat gives, and (files up to 8 MiB)
# what the FUSE mount reads.  Then, on copies of the volumes changed at
# exact offsets (each checked first):
#   - address modes the volumes do not use, where vmfs-tools reads them too:
#     VMFS5 single indirect (a pointer block in .pbc.sf), a to-be-zeroed
#     file block, holes (unallocated blocks, also inside a pointer block),
#     a VMFS6 file of small file blocks with a hole; the allocation map
#     (vmfs-tool map) of each;
#   - modes no reader here can check (VMFS5 double indirect, VMFS6 pointer
#     blocks in a sub-block, VMFS6 to-be-zeroed, large file blocks): against
#     the raw blocks they point to;
#   - ESXi-style absolute symlinks (/vmfs/volumes/LABEL or UUID/...);
#   - a VMDK stored on the volume (a descriptor in file4, its VMFS extent
#     file5) read through vmdk/ with the volume's opener, against qemu-img
#     reading it through vmfs-fuse;
#   - a volume spanning two devices (the VMFS6 volume's logical volume
#     split in two, each half with its own LVM header), in either order,
#     and a missing, repeated or foreign device;
#   - damaged structures: bad LVM and FS magic, VMFS-L, unsupported
#     versions, a truncated image, a directory entry pointing past the end
#     of .fdc.sf or at a free descriptor, a block address outside the
#     volume, a bad address mode, a resource file that maps itself: each
#     fails with exit status 1 (no crash, no sanitizer report) and a message
#     naming the structure;
#   - one byte of file5's data changed: the comparison above must catch it.
#
# VMFS_TESTDATA: where vmfs5.bin.gz and vmfs6.bin.gz are (default
# ../shared/testdata/vmfs beside the project).  VMFS_TOOL: the tool
# (default tests/vmfs/vmfs-tool, or vmfs-tool-san when $VMDKFS is the
# sanitizer build).
. "$(dirname "$0")/lib.sh"
set -o pipefail

DATA=${VMFS_TESTDATA:-$TOP/../shared/testdata/vmfs}
if [ -z "${VMFS_TOOL:-}" ]; then
	case $VMDKFS in
	*-san) VMFS_TOOL=$TOP/tests/vmfs/vmfs-tool-san ;;
	*) VMFS_TOOL=$TOP/tests/vmfs/vmfs-tool ;;
	esac
fi
TOOL=$VMFS_TOOL
[ -x "$TOOL" ] || skip "$TOOL not built (make check builds it)"
[ -r "$DATA/vmfs5.bin.gz" ] && [ -r "$DATA/vmfs6.bin.gz" ] ||
	skip "the real volumes are not in $DATA (set VMFS_TESTDATA)"
need gunzip cmp dd truncate md5sum od find fusermount mountpoint timeout
for c in vmfs-fuse vmfs6-fuse debugvmfs debugvmfs6; do
	command -v $c >/dev/null 2>&1 ||
		skip "$c is not installed (apt-get install vmfs-tools vmfs6-tools)"
done
[ -c /dev/fuse ] || skip "/dev/fuse missing"

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
MiB=1048576

# ---- The volumes, unpacked sparse (511 and 1023 MiB, ~10 MiB on disk) ----
t0=$(date +%s)
(gunzip -c "$DATA/vmfs5.bin.gz" | cp --sparse=always /dev/stdin v5.bin) &
p5=$!
(gunzip -c "$DATA/vmfs6.bin.gz" | cp --sparse=always /dev/stdin v6.bin) &
p6=$!
wait $p5 || fail "unpacking vmfs5.bin.gz"
wait $p6 || fail "unpacking vmfs6.bin.gz"
echo "ok unpacked both volumes in $(($(date +%s) - t0))s ($(du -sk v5.bin v6.bin | awk '{s += $1} END {print s}') KiB on disk)"

# peek FILE OFFSET LEN: the bytes, hex; poke FILE OFFSET HEX: write them.
peek() { od -An -tx1 -v -j $(($2)) -N $(($3)) "$1" | tr -d ' \n'; }
poke() {
	printf "$(echo "$3" | sed 's/../\\x&/g')" |
		dd of="$1" bs=1 seek=$(($2)) conv=notrunc status=none
}
# expect FILE OFFSET HEX WHAT: the bytes there are what the test believes
# (so that a poke never lands elsewhere).
expect() { [ "$(peek "$1" "$2" $((${#3} / 2)))" = "$3" ] || fail "$4: $1 at $2 holds $(peek "$1" "$2" $((${#3} / 2))), not $3"; }
le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
le64() { echo "$(le32 $(($1 & 0xffffffff)))$(le32 $(($1 >> 32 & 0xffffffff)))"; }
copy() { cp --sparse=always "$1" "$2"; }

# bad NAME REGEX CMD...: CMD fails with status 1 and its message matches
# REGEX (extended, case-insensitive).
bad() {
	local name=$1 re=$2 rc=0
	shift 2
	timeout 60 "$@" >bad.out 2>bad.err || rc=$?
	[ $rc = 1 ] || { cat bad.err; fail "$name: exit status $rc (want 1)"; }
	grep -qiE "$re" bad.err || fail "$name: message \"$(cat bad.err)\" does not match /$re/"
	sanitizer_clean "$name"
	echo "ok $name: $(head -c 300 bad.err)"
}

# ---- The oracles ----
mkdir -p m5 m6
vmfs-fuse v5.bin m5 >/dev/null 2>&1 || fail "vmfs-fuse v5.bin"
MOUNTS="$MOUNTS $WORK/m5"
vmfs6-fuse v6.bin m6 >/dev/null 2>&1 || fail "vmfs6-fuse v6.bin"
MOUNTS="$MOUNTS $WORK/m6"
for m in m5 m6; do
	for i in $(seq 100); do mountpoint -q $m && break; sleep 0.05; done
	mountpoint -q $m || fail "the oracle mount $m did not appear"
done
# debugvmfs6 writes "VMFS version: 6" before what cat gives: strip it
# (checked here), debugvmfs writes nothing else.
[ "$(debugvmfs6 v6.bin cat /directory/file4 | head -c 16)" = "VMFS version: 6" ] ||
	fail "debugvmfs6 cat does not start with its version line any more"
dbgcat() { # VERSION IMAGE PATH
	if [ "$1" = 6 ]; then
		debugvmfs6 "$2" cat "$3" | tail -c +17
	else
		debugvmfs "$2" cat "$3"
	fi
}

# listing MNT VERSION: the oracle's listing in vmfs-tool tree's format.
# vmfs-fuse shows VMFS5's .sdd.sf (a system file whose mode is S_IFDIR
# 0700) as a socket: it ORs S_IFREG into that mode (0040700 | 0100000 =
# 0140700); vmfs6-fuse and we show a directory.
listing() {
	(cd "$1" && find . -mindepth 1 \( -type l -printf '%y %m %s %T@ %P -> %l\n' \) \
		-o -printf '%y %m %s %T@ %P\n') |
		sed -E 's/^([^ ]+ [^ ]+ [^ ]+ [0-9]+)\.[0-9]+ /\1 /' |
		{ if [ "$2" = 5 ]; then sed 's/^s 700 \([0-9]* [0-9]* \.sdd\.sf\)$/d 700 \1/'; else cat; fi } |
		LC_ALL=C sort -t ' ' -k5
}

# check_volume IMG VERSION MNT DBGIMG: IMG read by us equals the oracles
# (MNT a FUSE mount, DBGIMG the image debugvmfs reads).  Prints the first
# difference and returns 1.
check_volume() {
	local img=$1 ver=$2 mnt=$3 dbgimg=$4 kind perm size mtime path a b n=0
	"$TOOL" tree / "$img" | LC_ALL=C sort -t ' ' -k5 >ours.lst ||
		{ echo "vmfs-tool tree / $img failed"; return 1; }
	listing "$mnt" "$ver" >oracle.lst || { echo "find over $mnt failed"; return 1; }
	if ! cmp -s ours.lst oracle.lst; then
		echo "listing of $img differs from the oracle's:"
		diff ours.lst oracle.lst | head -20
		return 1
	fi
	while read -r kind perm size mtime path; do
		[ "$kind" = f ] || continue
		a=$("$TOOL" cat "/$path" "$img" | md5sum) ||
			{ echo "vmfs-tool cat /$path $img failed"; return 1; }
		b=$(dbgcat "$ver" "$dbgimg" "/$path" | md5sum) ||
			{ echo "debugvmfs cat /$path failed"; return 1; }
		[ "$a" = "$b" ] || { echo "/$path of $img: bytes differ from debugvmfs's"; return 1; }
		if [ "$size" -le $((8 * MiB)) ]; then
			b=$(md5sum <"$mnt/$path") || return 1
			[ "$a" = "$b" ] || { echo "/$path of $img: bytes differ from the FUSE oracle's"; return 1; }
		fi
		n=$((n + 1))
	done <ours.lst
	echo "$n files"
}

for ver in 5 6; do
	t0=$(date +%s)
	out=$(check_volume v$ver.bin $ver m$ver v$ver.bin) || fail "VMFS$ver: $out"
	echo "ok VMFS$ver: listing ($(wc -l <ours.lst) entries), symlink targets and the bytes of all $out equal the oracles' ($(($(date +%s) - t0))s)"
	sanitizer_clean "VMFS$ver comparison"
done

# Symlinks followed by cat and by a path through them; the allocation of
# file5 (one block, or one sub-block); st_blocks as vmfs-fuse's.
for ver in 5 6; do
	[ "$("$TOOL" cat /directory/symlink v$ver.bin)" = content ] || fail "VMFS$ver: cat of the symlink"
	[ "$("$TOOL" readlink /directory/symlink v$ver.bin)" = file4 ] || fail "VMFS$ver: readlink"
	[ "$("$TOOL" map /directory/file5 v$ver.bin)" = "data 0 8193" ] || fail "VMFS$ver: map of file5"
	"$TOOL" stat /directory/./../directory/file5 v$ver.bin >st.txt || fail "VMFS$ver: stat with . and .."
	ours=$(($(awk '$1 == "blocks" {print $2}' st.txt) * $(awk '$1 == "block_size" {print $2}' st.txt) / 512))
	[ "$ours" = "$(stat -c %b m$ver/directory/file5)" ] || fail "VMFS$ver: allocated size $ours sectors, the oracle's $(stat -c %b m$ver/directory/file5)"
done
echo "ok symlinks followed, readlink, map and allocated size of file5"
# An ESXi-style absolute symlink (VMFS6's symlink, descriptor 0x3800004 at
# image 0x183c000, keeps its target in the descriptor at +0x1200): inside
# this volume by label or UUID it is followed, elsewhere it is refused.
for target in "/vmfs/volumes/VMFS6 Test/directory/file4" \
	"/vmfs/volumes/6113001e-a6377ebc-1d24-000c29801686/./directory/../directory/file4" \
	"/vmfs/volumes/other/file4"; do
	copy v6.bin link6.bin
	expect link6.bin 0x183d000 04008003 "VMFS6 symlink's descriptor"
	expect link6.bin 0x183d200 66696c6534 "VMFS6 symlink's target"
	poke link6.bin 0x183d014 "$(le64 ${#target})"
	poke link6.bin 0x183d200 "$(printf '%s' "$target" | od -An -tx1 -v | tr -d ' \n')"
	[ "$("$TOOL" readlink /directory/symlink link6.bin)" = "$target" ] || fail "readlink of $target"
	case $target in
	*other*) bad "a symlink to another volume" "points outside this volume" "$TOOL" cat /directory/symlink link6.bin ;;
	*) [ "$("$TOOL" cat /directory/symlink link6.bin)" = content ] || fail "cat through $target" ;;
	esac
done
rm -f link6.bin
echo "ok absolute /vmfs/volumes/LABEL|UUID/... symlinks followed inside the volume"

# ---- The comparison catches a changed byte ----
copy v5.bin flip5.bin
# file5 is file block 14 (address 0x381): image 0x1100000 + 14 MiB.
expect flip5.bin 0x1f00064 61 "file5's data"
poke flip5.bin 0x1f00064 62
if out=$(check_volume flip5.bin 5 m5 v5.bin); then
	fail "a changed byte of file5 went unnoticed ($out)"
fi
echo "ok a changed byte of file5 is caught: $out"

# ---- Address modes vmfs-tools reads too (VMFS5) ----
# file5's descriptor is 0x3400004 (resource 13 of .fdc.sf, whose cluster
# group 0 resources start at image 0x1520000): metadata at 0x1526a00
# (length +0x14, ZLA +0x44), addresses at 0x1526c00.  .pbc.sf's pointer
# block 0 (cluster 0 resource 0) is at image 0x1820000.
F5=0x1526800
modes5() { # NAME LENGTH ZLA ADDR0 ADDR1 ADDR2 PB0 EXPECTED-MAP
	local img=mode-$1.bin
	copy v5.bin $img
	expect $img $((F5 + 0x200)) 04004003 "file5's descriptor"
	expect $img $((F5 + 0x400)) 81030000 "file5's block"
	expect $img 0x1820000 00000000 ".pbc.sf's pointer block 0"
	poke $img $((F5 + 0x214)) "$(le64 $2)"
	poke $img $((F5 + 0x244)) "$(le32 $3)"
	poke $img $((F5 + 0x400)) "$(le32 $4)$(le32 $5)$(le32 $6)"
	poke $img 0x1820000 "$(le32 $7)"
	a=$("$TOOL" cat /directory/file5 $img | md5sum) || fail "$1: vmfs-tool cat"
	b=$(debugvmfs $img cat /directory/file5 | md5sum) || fail "$1: debugvmfs cat"
	[ "$a" = "$b" ] || fail "$1: file5 reads differently from debugvmfs"
	[ "$("$TOOL" map /directory/file5 $img | tr '\n' ,)" = "$8" ] ||
		fail "$1: map is $("$TOOL" map /directory/file5 $img | tr '\n' ,), want $8"
	echo "ok VMFS5 $1: bytes as debugvmfs's, map $8"
}
B14=0x381
modes5 indirect 8193 3 3 0 0 $B14 "data 0 8193,"
modes5 tbz 8193 1 $((B14 | 0x20)) 0 0 0 "zero 0 8193,"
modes5 hole 8193 1 0 0 0 0 "hole 0 8193,"
modes5 indirect-hole 8193 3 3 0 0 0 "hole 0 8193,"
modes5 thin $((3 * MiB + 5)) 1 $B14 0 $((B14 | 0x20)) 0 \
	"data 0 1048576,hole 1048576 1048576,zero 2097152 1048576,hole 3145728 5,"
modes5 after-hole $((2 * MiB)) 1 0 $B14 0 0 "hole 0 1048576,data 1048576 1048576,"
[ "$("$TOOL" cat /directory/file5 mode-tbz.bin | tr -d '\0' | wc -c)" = 0 ] ||
	fail "a to-be-zeroed block does not read as zeros"

# VMFS6: file5 (descriptor 0x3c00004, resource 15: image 0x183e000,
# metadata at +0x1000, addresses at +0x1600) made a file of small file
# blocks: .jbc.sf's first two (blocks 461 and 462), then 461 again.
# vmfs6-tools stops reading a block array at its first zero entry (so every
# block after a hole reads as zeros there): the file with a hole is checked
# against the raw image instead.
F6=0x183e000
mode6() { # NAME ADDR0 ADDR1 ADDR2
	copy v6.bin mode6-$1.bin
	expect mode6-$1.bin $((F6 + 0x1000)) 0400c003 "VMFS6 file5's descriptor"
	expect mode6-$1.bin $((F6 + 0x1044)) 02000000 "VMFS6 file5's ZLA"
	poke mode6-$1.bin $((F6 + 0x1014)) "$(le64 $((2 * MiB + 5)))$(le64 $MiB)"
	poke mode6-$1.bin $((F6 + 0x1044)) "$(le32 1)"
	poke mode6-$1.bin $((F6 + 0x1089)) 14
	poke mode6-$1.bin $((F6 + 0x1600)) "$(le64 $2)$(le64 $3)$(le64 $4)"
}
S461=0x0e68000000000001
S462=0x0e70000000000001
mode6 sfb $S461 $S462 $S461
a=$("$TOOL" cat /directory/file5 mode6-sfb.bin | md5sum) || fail "VMFS6 small file blocks: vmfs-tool cat"
b=$(dbgcat 6 mode6-sfb.bin /directory/file5 | md5sum) || fail "VMFS6 small file blocks: debugvmfs6 cat"
[ "$a" = "$b" ] || fail "VMFS6 small file blocks: file5 reads differently from debugvmfs6"
[ "$("$TOOL" map /directory/file5 mode6-sfb.bin)" = "data 0 2097157" ] ||
	fail "VMFS6 small file blocks: map is $("$TOOL" map /directory/file5 mode6-sfb.bin | tr '\n' ,)"
mode6 hole $S461 0 $S462
{
	dd if=v6.bin bs=1M skip=$((17 + 461)) count=1 status=none
	head -c $MiB /dev/zero
	dd if=v6.bin bs=5 count=1 iflag=skip_bytes skip=$(((17 + 462) * MiB)) status=none
} >want6.raw
"$TOOL" cat /directory/file5 mode6-hole.bin >got6.raw || fail "VMFS6 hole: vmfs-tool cat"
same got6.raw want6.raw "VMFS6 small file blocks around a hole"
[ "$("$TOOL" map /directory/file5 mode6-hole.bin | tr '\n' ,)" = "data 0 1048576,hole 1048576 1048576,data 2097152 5," ] ||
	fail "VMFS6 hole: map is $("$TOOL" map /directory/file5 mode6-hole.bin | tr '\n' ,)"
echo "ok VMFS6 small file blocks: bytes as debugvmfs6's; with a hole: as the raw blocks, map as expected"

# Modes no independent reader here can check (vmfs-tools folds double
# indirect into single and has no large file blocks; vmfs6-tools stops at
# the first hole and takes VMFS6's copy-on-write bit for to-be-zeroed):
# checked against the raw blocks they point to, as our reading of the
# layout (fox-it/dissect.vmfs) says they map.
# VMFS5 double indirect: file5 of 1 GiB + 8193 bytes; its pointer block
# (.pbc.sf's, image 0x1820000) has a hole, then .pb2.sf's pointer block
# (image 0x1c20000), whose first entry is file5's block.
copy v5.bin mode-double.bin
expect mode-double.bin 0x1c20000 00000000 ".pb2.sf's pointer block 0"
poke mode-double.bin $((F5 + 0x214)) "$(le64 $((1024 * MiB + 8193)))"
poke mode-double.bin $((F5 + 0x244)) "$(le32 0x10d0)"
poke mode-double.bin $((F5 + 0x400)) "$(le32 3)"
poke mode-double.bin 0x1820000 "$(le32 0)$(le32 5)"
poke mode-double.bin 0x1c20000 "$(le32 $B14)"
[ "$("$TOOL" map /directory/file5 mode-double.bin | tr '\n' ,)" = "hole 0 1073741824,data 1073741824 8193," ] ||
	fail "VMFS5 double indirect: map is $("$TOOL" map /directory/file5 mode-double.bin | tr '\n' ,)"
"$TOOL" read /directory/file5 $((1024 * MiB)) 8193 mode-double.bin >got.raw || fail "VMFS5 double indirect: read"
"$TOOL" cat /directory/file5 v5.bin >want.raw
same got.raw want.raw "VMFS5 double indirect"
[ "$("$TOOL" read /directory/file5 $((1024 * MiB - 3)) 3 mode-double.bin | od -An -tx1 | tr -d ' ')" = 000000 ] ||
	fail "VMFS5 double indirect: the hole does not read as zeros"
echo "ok VMFS5 double indirect (unconfirmed): file5's block at 1 GiB, a hole before it"
# VMFS6 single indirect through a pointer block kept in a sub-block (.sbc.sf
# cluster 0 resource 10, free: .sbc.sf's block 0 is small file block 139,
# so image 0x1100000 + 139 MiB + 0xc0000).
SB10=$((0x1100000 + 139 * MiB + 0xc0000))
mode6 sbpb $((10 << 56 | 2)) 0 0
expect mode6-sbpb.bin $((0x1100000 + 459 * MiB + 0x20000)) 0100000000005804 ".sbc.sf's first block in .pb2.sf"
expect mode6-sbpb.bin $SB10 0000000000000000 "sub-block 10"
poke mode6-sbpb.bin $((F6 + 0x1044)) "$(le32 3)"
poke mode6-sbpb.bin $SB10 "$(le64 $S461)$(le64 0)$(le64 $S462)"
"$TOOL" cat /directory/file5 mode6-sbpb.bin >got6.raw || fail "VMFS6 sub-block pointer block: cat"
same got6.raw want6.raw "VMFS6 single indirect through a sub-block"
[ "$("$TOOL" map /directory/file5 mode6-sbpb.bin | tr '\n' ,)" = "data 0 1048576,hole 1048576 1048576,data 2097152 5," ] ||
	fail "VMFS6 sub-block pointer block: map"
echo "ok VMFS6 single indirect through a pointer block in a sub-block (unconfirmed)"
# VMFS6 to-be-zeroed (bits 7-14 of a small file block's address).
mode6 tbz6 $((S461 | 1 << 7)) 0 0
[ "$("$TOOL" map /directory/file5 mode6-tbz6.bin | tr '\n' ,)" = "zero 0 1048576,hole 1048576 1048581," ] ||
	fail "VMFS6 to-be-zeroed: map is $("$TOOL" map /directory/file5 mode6-tbz6.bin | tr '\n' ,)"
[ "$("$TOOL" cat /directory/file5 mode6-tbz6.bin | tr -d '\0' | wc -c)" = 0 ] ||
	fail "VMFS6 to-be-zeroed: not zeros"
echo "ok VMFS6 to-be-zeroed small file block reads as zeros (unconfirmed)"
# VMFS6 large file blocks: a file of 512 MiB blocks, large blocks 0 and 1
# (volume offsets 0 and 512 MiB).
mode6 lfb 7 $((1 << 15 | 7)) 0
poke mode6-lfb.bin $((F6 + 0x1014)) "$(le64 $((528 * MiB)))$(le64 $((512 * MiB)))"
poke mode6-lfb.bin $((F6 + 0x1089)) 1d
[ "$("$TOOL" map /directory/file5 mode6-lfb.bin)" = "data 0 553648128" ] ||
	fail "VMFS6 large file blocks: map is $("$TOOL" map /directory/file5 mode6-lfb.bin | tr '\n' ,)"
for at in 0 512; do
	a=$("$TOOL" read /directory/file5 $((at * MiB)) $((16 * MiB)) mode6-lfb.bin | md5sum) ||
		fail "VMFS6 large file blocks: read at $at MiB"
	b=$(dd if=mode6-lfb.bin bs=1M skip=$((17 + at)) count=16 status=none | md5sum)
	[ "$a" = "$b" ] || fail "VMFS6 large file blocks: 16 MiB at $at MiB differ from the raw volume"
done
echo "ok VMFS6 large file blocks (unconfirmed) read the volume's 512 MiB blocks"
rm -f mode-*.bin mode6-*.bin
sanitizer_clean "the address modes"

# ---- A VMDK on the volume, through vmdk/ ----
# file4 (descriptor 0x3000004, resource 12: image 0x1526000) holds its 8
# bytes in the descriptor (1024 bytes of room at +0x400): make it a VMDK
# descriptor whose VMFS extent is file5.
copy v5.bin vmdk5.bin
F4=0x1526000
expect vmdk5.bin $((F4 + 0x200)) 04000003 "file4's descriptor"
expect vmdk5.bin $((F4 + 0x244)) d1100000 "file4's ZLA (resident)"
desc='# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
createType="vmfs"
RW 16 VMFS "file5"
'
poke vmdk5.bin $((F4 + 0x400)) "$(printf '%s' "$desc" | od -An -tx1 -v | tr -d ' \n')"
poke vmdk5.bin $((F4 + 0x214)) "$(le64 ${#desc})"
"$TOOL" vmdk-cat /directory/file4 vmdk5.bin >disk.raw || fail "vmdk-cat of a VMDK on VMFS"
"$TOOL" cat /directory/file5 vmdk5.bin | head -c 8192 >want.raw
same disk.raw want.raw "the VMDK on VMFS"
"$TOOL" vmdk-cat /directory/symlink vmdk5.bin | cmp -s - want.raw || fail "the VMDK through a symlink"
if command -v qemu-img >/dev/null 2>&1; then
	mkdir -p mv
	vmfs-fuse vmdk5.bin mv >/dev/null 2>&1 || fail "vmfs-fuse vmdk5.bin"
	MOUNTS="$MOUNTS $WORK/mv"
	for i in $(seq 100); do mountpoint -q mv && break; sleep 0.05; done
	qemu-img convert -f vmdk -O raw mv/directory/file4 qemu.raw || fail "qemu-img on the vmfs-fuse mount"
	same disk.raw qemu.raw "the VMDK on VMFS against qemu-img over vmfs-fuse"
	fusermount -u mv
	echo "ok a VMDK stored on VMFS reads through vmdk/ and the volume's opener as qemu-img reads it over vmfs-fuse"
else
	echo "ok a VMDK stored on VMFS reads through vmdk/ and the volume's opener (qemu-img missing: not compared)"
fi

# ---- A volume on two devices ----
# The VMFS6 logical volume (768 MiB, one physical extent at 0x1100000) cut
# in two: device A keeps the LVM header and logical 0-256 MiB, device B
# gets a copy of the header (its own device UUID) and logical 256-768 MiB
# at its own 0x1100000.  LVM6 layout: volume table at 0x101000 (first
# extent +0x78, last +0x80, devices +0x90), PE table at 0x182000 (physical
# +0x09, logical +0x11, length +0x19), device UUID at 0x100082.
copy v6.bin spanA.bin
expect spanA.bin 0x182000 "01$(le32 0)$(le32 0)$(le64 0x1100000)$(le64 0)$(le64 0x30000000)" "the PE table"
expect spanA.bin 0x101078 "$(le64 0)$(le64 2)" "the volume table"
expect spanA.bin 0x101090 "$(le32 1)" "the volume's device count"
poke spanA.bin 0x101080 "$(le64 0)"
poke spanA.bin 0x101090 "$(le32 2)"
poke spanA.bin $((0x182000 + 0x19)) "$(le64 0x10000000)"
truncate -s $((0x1100000 + 512 * MiB)) spanB.bin
dd if=spanA.bin of=spanB.bin bs=1M count=17 conv=notrunc,sparse status=none
dd if=v6.bin of=spanB.bin bs=1M skip=$((17 + 256)) seek=17 count=512 conv=notrunc,sparse status=none
poke spanB.bin $((0x100082 + 15)) 87
poke spanB.bin 0x101078 "$(le64 1)$(le64 2)"
poke spanB.bin $((0x182000 + 0x11)) "$(le64 0x10000000)$(le64 0x20000000)"
"$TOOL" tree / v6.bin >single.lst
for order in "spanA.bin spanB.bin" "spanB.bin spanA.bin"; do
	# shellcheck disable=SC2086
	"$TOOL" tree / $order >span.lst || fail "tree over $order"
	same span.lst single.lst "the listing over $order"
	for p in /directory/file5 /.sbc.sf /.jbc.sf; do
		# shellcheck disable=SC2086
		[ "$("$TOOL" cat $p $order | md5sum)" = "$("$TOOL" cat $p v6.bin | md5sum)" ] ||
			fail "$p over $order"
	done
done
echo "ok a volume on two devices, given in either order, reads as on one"

# ---- Damaged input: a clear error, exit status 1, never a crash ----
bad "missing device" "not given.*spans 2 device.*1 given" "$TOOL" tree / spanA.bin
bad "missing first device" "bytes 0 to 0xfffffff .*not given" "$TOOL" tree / spanB.bin
bad "the same device twice" "the same device" "$TOOL" tree / spanA.bin spanA.bin
copy spanB.bin spanC.bin
poke spanC.bin $((0x101054 + 15)) 00
bad "a device of another volume" "belongs to logical volume" "$TOOL" tree / spanA.bin spanC.bin
rm -f spanA.bin spanB.bin spanC.bin

damaged() { # NAME SRC OFFSET EXPECTED NEW REGEX [PATH]
	copy v$2.bin dmg.bin
	expect dmg.bin $3 $4 "$1"
	poke dmg.bin $3 $5
	if [ -n "${7:-}" ]; then
		bad "$1" "$6" "$TOOL" cat "$7" dmg.bin
	else
		bad "$1" "$6" "$TOOL" tree / dmg.bin
	fi
}
damaged "bad LVM magic" 5 0x100000 0dd001c0 00000000 "LVM header: bad magic"
damaged "unsupported LVM version" 6 0x100004 06000000 07000000 "LVM header: version 7 not supported"
damaged "bad FS magic" 5 0x1300000 5ef1ab2f 00000000 "FS descriptor: bad magic"
damaged "VMFS-L" 6 0x1300000 5ef1ab2f 5ff1ab2f "FS descriptor: .*VMFS-L"
damaged "unsupported FS version" 5 0x1300004 0e000000 0f000000 "FS descriptor: version 15\.81 not supported"
damaged "unsupported FS version (VMFS6)" 6 0x1300004 18000000 19000000 "FS descriptor: version 25\.82 not supported"
# The root directory's entry for "directory" (entry 9 at image 0x1600000 + 9 x 140, its address at +4):
# its address made cluster 63 of .fdc.sf (past its 1 MiB), or a free
# descriptor (resource 20).
damaged "directory entry past the end of .fdc.sf" 5 0x16004f0 04000002 c40f0000 "directory.*past the end of \.fdc\.sf"
damaged "directory entry at a free descriptor" 5 0x16004f0 04000002 04000005 "free or damaged descriptor"
damaged "lookup through a bad entry" 5 0x16004f0 04000002 c40f0000 "past the end of \.fdc\.sf" /directory/file5
damaged "block address outside the volume" 5 $((F5 + 0x400)) 81030000 c1ffffff "directory/file5: block address 0xffffffc1.*outside the volume" /directory/file5
damaged "unsupported address mode" 5 $((F5 + 0x244)) 01000000 99000000 "address mode \(ZLA\) 0x99" /directory/file5
# VMFS6 .pb2.sf (descriptor 0x1800004: image 0x182c000) mapped through its
# own pointer block.
copy v6.bin dmg.bin
expect dmg.bin 0x182d044 01000000 ".pb2.sf's ZLA"
poke dmg.bin 0x182d044 05000000
poke dmg.bin 0x182d600 "$(le64 5)"
bad "a resource file mapping itself" "\.pb2\.sf.*itself.*loop" "$TOOL" tree / dmg.bin
copy v5.bin dmg.bin
truncate -s $((100 * MiB)) dmg.bin
bad "truncated image" "LVM header: physical extent .*past the end of the device.*truncated" "$TOOL" tree / dmg.bin
truncate -s $((0x100100)) dmg.bin
bad "truncated in the LVM header" "LVM header.*past the end of the device" "$TOOL" tree / dmg.bin
rm -f dmg.bin

fusermount -u m5
fusermount -u m6
MOUNTS=""

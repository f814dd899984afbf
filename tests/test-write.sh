#!/bin/bash
# Writes on -o rw mounts, checked with independent tools: after thousands of
# random writes (unaligned, grain- and extent-straddling) and an unmount,
# `qemu-img check` is clean and `qemu-img compare` equals the content the
# test kept.  Chains allocate in the top link only; formats vmdkfs cannot
# write, and parents with children, are refused at mount.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io
N=${WRITES:-2000}

cd "$WORK"
random_raw r.raw 12
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse r.raw sparse.vmdk
qemu-img convert -f raw -O vmdk -o subformat=monolithicFlat r.raw flat.vmdk
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse empty.vmdk 12M
# A chain: the child allocates, the parent must not change.
mkdir chain
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse r.raw chain/base.vmdk
qemu-img create -q -f vmdk -b base.vmdk -F vmdk chain/child.vmdk
qemu-io -f vmdk -c 'write -P 0x33 1M 1M' chain/child.vmdk >/dev/null
base_sum=$(md5sum <chain/base.vmdk)
# Several extents: FLAT + hosted SPARSE + FLAT with an offset, so writes
# straddle extents.
head -c 4M /dev/urandom >m1.bin
head -c 5M /dev/urandom >m3.bin
qemu-img create -q -f vmdk -o subformat=monolithicSparse m2.vmdk 3M
cat >multi.vmdk <<'EOD'
# Disk DescriptorFile
version=1
CID=5ca1ab1e
parentCID=ffffffff
createType="twoGbMaxExtentSparse"
RW 8192 FLAT "m1.bin" 0
RW 6144 SPARSE "m2.vmdk"
RW 8192 FLAT "m3.bin" 2048
EOD
# A hosted sparse extent whose grain directory has empty slots (no grain
# tables yet): writing must create tables.
qemu-img create -q -f vmdk -o subformat=monolithicSparse nogt.vmdk 40M
/usr/bin/python3 - nogt.vmdk <<'EOP'
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(512)
cap, grain = struct.unpack_from('<QQ', h, 12)
gtes, = struct.unpack_from('<I', h, 44)
rgd, gd = struct.unpack_from('<QQ', h, 48)
n = -(-cap // (grain * gtes))
for d in (rgd, gd):
    f.seek(d * 512)
    f.write(b'\0' * 4 * n)
EOP
qemu-img check -q nogt.vmdk || fail "nogt.vmdk setup is not a valid image"

chmod 640 multi.vmdk
disks="sparse.vmdk flat.vmdk empty.vmdk chain/child.vmdk multi.vmdk nogt.vmdk"
for v in $disks; do
	qemu-img convert -f vmdk -O raw "$v" "exp-$(basename "$v" .vmdk).raw"
done
mount_vmdkfs mnt -o rw $disks
seed=1
for v in $disks; do
	n=$(basename "$v" .vmdk)
	/usr/bin/python3 "$TESTS/writes.py" "mnt/$n.raw" "exp-$n.raw" "$N" $seed ||
		fail "$v: random writes"
	seed=$((seed + 1))
	# The unclean-shutdown flag is set while the mount is dirty.
	case $v in sparse.vmdk)
		[ "$(od -A n -t u1 -j 72 -N 1 sparse.vmdk | tr -d ' ')" = 1 ] ||
			fail "unclean flag not set while dirty" ;;
	esac
done
umount_vmdkfs mnt
for v in $disks; do
	n=$(basename "$v" .vmdk)
	qemu-img check -q "$v" || fail "$v: qemu-img check after writes"
	qemu-img compare -q -f vmdk -F raw "$v" "exp-$n.raw" || fail "$v: content differs from what was written"
	echo "ok $v: $N random writes"
done
[ "$(od -A n -t u1 -j 72 -N 1 sparse.vmdk | tr -d ' ')" = 0 ] || fail "unclean flag left set after unmount"
[ "$(md5sum <chain/base.vmdk)" = "$base_sum" ] || fail "the parent changed"
# The child got a new CID, and still names its parent's.
"$VMDKFS" info chain/child.vmdk >/dev/null || fail "chain no longer opens: $("$VMDKFS" info chain/child.vmdk 2>&1)"
# A text descriptor gets its new CID by a rename that keeps its mode.
grep -q '^CID=5ca1ab1e' multi.vmdk && fail "multi.vmdk: CID unchanged after writes"
grep -Eq '^CID=[0-9a-f]{8}$' multi.vmdk || fail "multi.vmdk: CID line: $(grep CID multi.vmdk)"
[ "$(stat -c %a multi.vmdk)" = 640 ] || fail "multi.vmdk: mode $(stat -c %a multi.vmdk)"
echo "ok flags, CID, parent untouched"

# Refused at mount, with a message naming the extent.
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized r.raw stream.vmdk
$MKVMDK cowd r.raw cowd.vmdk >/dev/null
$MKVMDK sesparse r.raw se.vmdk >/dev/null
printf '# Disk DescriptorFile\nCID=1\nparentCID=ffffffff\nRW 100 FLAT "m1.bin"\nRW 100 ZERO\n' >zero.vmdk
printf '# Disk DescriptorFile\nCID=1\nparentCID=ffffffff\nRDONLY 100 FLAT "m1.bin"\n' >rdonly.vmdk
mkdir -p m2
for case in "stream.vmdk:streamOptimized" "cowd.vmdk:COWD" "se.vmdk:SESPARSE" \
	"zero.vmdk:ZERO extent" "rdonly.vmdk:RDONLY extent" \
	"chain/base.vmdk:child.vmdk is a child of this disk"; do
	v=${case%%:*}
	want=${case#*:}
	if "$VMDKFS" -o rw "$v" m2 2>err; then fail "$v mounted rw"; fi
	grep -q "$want" err || fail "$v: message: $(cat err)"
done
echo "ok refusals"
# ... unless the user says so.
mount_vmdkfs m3 -o rw,allow_parent_write chain/base.vmdk
umount_vmdkfs m3
# Read-only mounts of the same images still work, and truncation is refused.
mount_vmdkfs m4 -o rw sparse.vmdk
if truncate -s 1M m4/sparse.raw 2>/dev/null; then fail "truncate succeeded"; fi
truncate -s "$(stat -c %s m4/sparse.raw)" m4/sparse.raw || fail "truncate to the same size"
umount_vmdkfs m4
echo "ok truncate"

# A disk written by one mount cannot be opened by another vmdkfs.
mount_vmdkfs m5 -o rw sparse.vmdk
mkdir -p m6
if "$VMDKFS" sparse.vmdk m6 2>err; then fail "a second mount of a disk being written"; fi
grep -q "in use" err || fail "second mount: $(cat err)"
umount_vmdkfs m5
mount_vmdkfs m5 sparse.vmdk
if "$VMDKFS" -o rw sparse.vmdk m6 2>err; then fail "rw mount of a disk another mount reads"; fi
grep -q "in use" err || fail "rw mount over a reader: $(cat err)"
mount_vmdkfs m6 sparse.vmdk
umount_vmdkfs m5
umount_vmdkfs m6
echo "ok one writer or many readers"

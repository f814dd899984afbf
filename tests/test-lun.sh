#!/bin/bash
# -o lun=: a whole VMFS volume mounted read-only, against Debian's
# independent readers (vmfs-fuse for VMFS5, vmfs6-fuse for VMFS6) on the
# two real volumes ESXi made (../shared/testdata/vmfs): the same tree
# (names, kinds, permission bits, sizes, symlink targets) and the same
# bytes.  Damaged
# volumes are refused at mount with the structure named.
. "$(dirname "$0")/lib.sh"
need vmfs-fuse vmfs6-fuse gunzip md5sum
DATA=$TOP/../shared/testdata/vmfs
[ -f "$DATA/vmfs5.bin.gz" ] || skip "no test volumes in $DATA"
cd "$WORK"

# tree DIR: one line per entry: path, kind, permission bits less write
# (the mount is read-only; symlinks: none), size (files), target (links).
tree() {
	(cd "$1" && find . -mindepth 1 -printf '%P %y %m %s %l\n' | while read -r p y m size l; do
		[ "$y" = l ] && m=- || m=$(printf '%o' $((8#$m & ~0222)))
		[ "$y" = f ] || size=-
		echo "$p $y $m $size $l"
	done | sort)
}
# sums DIR: md5 of every regular file; of the first and last MiB for the
# big system files (hundreds of MiB on VMFS6).
sums() {
	(cd "$1" && find . -type f -printf '%P %s\n' | sort | while read -r f size; do
		[ -f "$f" ] || continue # vmfs-fuse: .sdd.sf typed a file in readdir
		if [ "$size" -le $((64 << 20)) ]; then
			echo "$f $(md5sum <"$f" | cut -c1-32)"
		else
			echo "$f $(head -c 1048576 "$f" | md5sum | cut -c1-32) $(tail -c 1048576 "$f" | md5sum | cut -c1-32)"
		fi
	done)
}

for v in 5 6; do
	gunzip -c "$DATA/vmfs$v.bin.gz" | cp --sparse=always /dev/stdin vol$v.bin
	oracle=vmfs-fuse
	[ $v = 6 ] && oracle=vmfs6-fuse
	mkdir -p ref$v
	$oracle vol$v.bin ref$v >/dev/null 2>&1 || fail "$oracle vol$v.bin"
	MOUNTS="$MOUNTS $WORK/ref$v"
	mount_vmdkfs m$v -o "lun=$WORK/vol$v.bin"
	tree ref$v >want.tree
	tree m$v >got.tree
	if [ $v = 5 ] && grep -q '^\.sdd\.sf s ' want.tree; then
		# vmfs-fuse shows .sdd.sf (a system directory) as a socket;
		# debugvmfs, of the same vmfs-tools, lists it as a directory.
		debugvmfs vol5.bin ls -l / | grep -q '^d.* \.sdd\.sf$' ||
			fail "debugvmfs does not list .sdd.sf as a directory either"
		sed -i 's/^\.sdd\.sf s /.sdd.sf d /' want.tree
	fi
	diff want.tree got.tree >diff.txt || fail "VMFS$v tree differs from $oracle: $(head -20 diff.txt)"
	grep -q '^directory/symlink l - - file4$' got.tree || fail "VMFS$v: the symlink: $(cat got.tree)"
	sums ref$v >want.sums
	sums m$v >got.sums
	diff want.sums got.sums >diff.txt || fail "VMFS$v bytes differ from $oracle: $(head -20 diff.txt)"
	[ "$(cat m$v/directory/file4)" = content ] || fail "VMFS$v file4"
	[ "$(tr -d a <m$v/directory/file5 | od -An -c | tr -d ' ')" = '\n' ] || fail "VMFS$v file5"
	echo "ok VMFS$v: $(wc -l <got.tree) entries, $(wc -l <got.sums) files as $oracle reads them"
	umount_vmdkfs m$v
	fusermount3 -u ref$v
	MOUNTS=${MOUNTS/ $WORK\/ref$v/}
done

# lun= is read-only and takes no DISK arguments.
mkdir -p m0
if "$VMDKFS" -o "lun=$WORK/vol5.bin,rw" m0 2>err; then fail "a rw lun= mount"; fi
grep -q "lun= mounts are read-only" err || fail "lun=,rw: $(cat err)"
if "$VMDKFS" -o "lun=$WORK/vol5.bin" some.vmdk m0 2>err; then fail "lun= with a disk"; fi
grep -q "with lun=, give only the mount point" err || fail "lun= with a disk: $(cat err)"

# Damaged volumes: refused at mount, the structure named, nothing mounted.
damaged() { # NAME OFFSET HEXBYTES REGEX
	cp --sparse=always vol5.bin bad.bin
	printf "$3" | dd of=bad.bin bs=1 seek=$(($2)) conv=notrunc status=none
	if "$VMDKFS" -o "lun=$WORK/bad.bin" m0 2>err; then
		fusermount3 -u m0
		fail "$1: mounted"
	fi
	grep -Eq "$4" err || fail "$1: $(cat err)"
	mountpoint -q m0 && fail "$1: left a mount"
	echo "ok damaged: $1: $(head -1 err)"
}
damaged "LVM magic" 0x100000 '\x00\x00\x00\x00' 'LVM'
damaged "FS descriptor magic" 0x1300000 '\x00\x00\x00\x00' 'descriptor|magic'
truncate -s 2M bad.bin
if "$VMDKFS" -o "lun=$WORK/bad.bin" m0 2>err; then fusermount3 -u m0; fail "a truncated volume mounted"; fi
[ -s err ] || fail "a truncated volume: no message"
echo "ok damaged: truncated: $(head -1 err)"
if "$VMDKFS" -o "lun=$WORK/no-such.bin" m0 2>err; then fusermount3 -u m0; fail "a missing device mounted"; fi
grep -q "no-such.bin" err || fail "a missing device: $(cat err)"
echo "ok a missing device is named"

# status on a lun= mount: a vmdkfs mount without flat files.
mount_vmdkfs m5 -o "lun=$WORK/vol5.bin"
"$VMDKFS" status m5 >st.txt || fail "status of a lun= mount"
grep -q "no flat files" st.txt || fail "status of a lun= mount: $(cat st.txt)"
umount_vmdkfs m5
echo "ok status of a lun= mount"

# --- Generated volumes (tests/gen/mkvmfs.py, checked against vmfs-fuse and
# vmfs6-fuse by test-vmfs-gen.sh) holding VM disks: a thin base (its flat
# extent thin on the volume) and a delta (COWD on VMFS5, SEsparse on VMFS6,
# as ESXi makes snapshots there), inside whole-LUN images with a GPT
# (sgdisk) or an MBR (sfdisk).  The flat files beside the descriptors read
# the chains as qemu-img reads the same files locally. ---
need qemu-img sgdisk sfdisk getfattr
MKVMFS="/usr/bin/python3 $TESTS/gen/mkvmfs.py"
holes() { # FILE: bytes of holes by SEEK_DATA/SEEK_HOLE
	/usr/bin/python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); size = os.fstat(fd).st_size; off = n = 0
while off < size:
    try: d = os.lseek(fd, off, os.SEEK_DATA)
    except OSError: d = size
    n += d - off
    if d >= size: break
    off = os.lseek(fd, d, os.SEEK_HOLE)
print(n)" "$1"
}
mkdir -p src/vm
random_raw base.raw 8
dd if=/dev/zero of=base.raw bs=1M seek=4 count=3 conv=notrunc status=none # a thin stretch
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat base.raw src/vm/base.vmdk
cp base.raw top.raw
head -c 300000 /dev/urandom | dd of=top.raw bs=4096 seek=700 conv=notrunc status=none
$MKVMDK cowd top.raw src/vm/cowd.vmdk --parent src/vm/base.vmdk >/dev/null
$MKVMDK sesparse top.raw src/vm/se.vmdk --parent src/vm/base.vmdk >/dev/null
qemu-img convert -f vmdk -O raw src/vm/cowd.vmdk want-cowd.raw
qemu-img convert -f vmdk -O raw src/vm/se.vmdk want-se.raw
size=$((128 << 20))
for v in 5 6; do
	delta=cowd
	[ $v = 6 ] && delta=se
	$MKVMFS make vol.img --version $v --size $size --label gen$v --from src \
		--layout '*-flat.vmdk=thin' >/dev/null || fail "mkvmfs VMFS$v"
	# GPT: partition 1 a small other one, partition 2 the VMFS volume.
	rm -f gpt.img && truncate -s $((size + (8 << 20))) gpt.img
	sgdisk -o -n 1:2048:+2M -t 1:8300 -n 2:8192:+$((size >> 10))K -t 2:fb00 gpt.img >/dev/null 2>&1 || fail "sgdisk"
	dd if=vol.img of=gpt.img bs=1M seek=4 conv=notrunc,sparse status=none
	mount_vmdkfs g -o "lun=$WORK/gpt.img"
	same g/vm/base.raw base.raw "VMFS$v GPT: base"
	same g/vm/$delta.raw want-$delta.raw "VMFS$v GPT: $delta chain"
	[ "$(getfattr --only-values -n user.vmdkfs.transport g/vm/$delta.raw)" = san ] || fail "VMFS$v: transport"
	case $(getfattr --only-values -n user.vmdkfs.lun g/vm/base.raw) in
	*"gpt.img partition 2, VMFS$v "*) ;;
	*) fail "VMFS$v: user.vmdkfs.lun: $(getfattr --only-values -n user.vmdkfs.lun g/vm/base.raw)" ;;
	esac
	h=$(holes g/vm/base.raw)
	[ "$h" -ge $((3 << 20)) ] || fail "VMFS$v: the thin base shows $h bytes of holes"
	[ "$(holes g/vm/base-flat.vmdk)" -ge $((3 << 20)) ] || fail "VMFS$v: the thin -flat.vmdk shows no holes"
	cp --sparse=always g/vm/$delta.raw copy.raw
	same copy.raw want-$delta.raw "VMFS$v: sparse copy of the chain"
	"$VMDKFS" status g | grep -q "base.raw  *san .*(LUN .*partition 2, VMFS$v" || fail "VMFS$v: status: $("$VMDKFS" status g)"
	umount_vmdkfs g
	echo "ok VMFS$v in a GPT (partition 2 found by type): base and $delta chain as qemu-img reads them, $h bytes of holes"
	mount_vmdkfs g -o "lun=$WORK/gpt.img,partition=2"
	same g/vm/$delta.raw want-$delta.raw "VMFS$v partition=2"
	umount_vmdkfs g
	if "$VMDKFS" -o "lun=$WORK/gpt.img,partition=1" g 2>err; then fusermount3 -u g; fail "partition=1 mounted"; fi
	grep -q "partition 1: LVM header: bad magic" err || fail "partition=1: $(cat err)"
	if "$VMDKFS" -o "lun=$WORK/gpt.img,partition=3" g 2>err; then fusermount3 -u g; fail "partition=3 mounted"; fi
	grep -q "the GPT has no partition 3" err || fail "partition=3: $(cat err)"
	echo "ok VMFS$v: partition=2 reads it, partition=1 (not VMFS) and 3 (none) refused by name"
	# MBR: the volume in a type 0xFB logical partition.
	rm -f mbr.img && truncate -s $((size + (8 << 20))) mbr.img
	printf 'label: dos\nstart=2048, size=2048, type=83\nstart=4096, type=5\nstart=8192, size=%d, type=fb\n' $((size / 512)) |
		sfdisk -q mbr.img >/dev/null 2>&1 || fail "sfdisk"
	sfdisk -d mbr.img | grep -q 'mbr.img5 : start= *8192, size= *'$((size / 512))', type=fb' || fail "sfdisk made no logical VMFS partition: $(sfdisk -d mbr.img)"
	dd if=vol.img of=mbr.img bs=1M seek=4 conv=notrunc,sparse status=none
	mount_vmdkfs g -o "lun=$WORK/mbr.img"
	same g/vm/$delta.raw want-$delta.raw "VMFS$v MBR: $delta chain"
	case $(getfattr --only-values -n user.vmdkfs.lun g/vm/base.raw) in
	*"mbr.img partition 5, VMFS$v "*) ;;
	*) fail "VMFS$v MBR: user.vmdkfs.lun: $(getfattr --only-values -n user.vmdkfs.lun g/vm/base.raw)" ;;
	esac
	umount_vmdkfs g
	echo "ok VMFS$v in an MBR logical partition (type 0xfb, number 5)"
	# vmdkfs info --lun: the volume, and a chain on it.
	"$VMDKFS" info --lun gpt.img >info.txt || fail "info --lun"
	grep -q "^volume: VMFS$v .*\"gen$v\"" info.txt || fail "info --lun: $(cat info.txt)"
	grep -q "^lun: .*gpt.img.* partition 2, VMFS$v" info.txt || fail "info --lun: $(cat info.txt)"
	"$VMDKFS" info --lun gpt.img /vm/$delta.vmdk >info.txt || fail "info --lun PATH"
	grep -q "^link 1: /vm/base.vmdk" info.txt || fail "info --lun PATH: $(cat info.txt)"
	"$VMDKFS" info --json --lun mbr.img | grep -q "\"vmfs\": $v" || fail "info --json --lun"
	echo "ok VMFS$v: vmdkfs info --lun"
done

# More devices than a volume can span: refused by name, not cut to 32.
many=$(printf 'gpt.img:%.0s' $(seq 33))
if "$VMDKFS" info --lun "${many%:}" >info.txt 2>err.txt; then
	fail "info --lun with 33 devices succeeded"
fi
grep -q "more than 32 devices" err.txt || fail "33 devices: $(cat err.txt)"
if "$VMDKFS" info --lun ":" >info.txt 2>err.txt; then
	fail "info --lun with no device succeeded"
fi
grep -q "give the VMFS device" err.txt || fail "lun=: : $(cat err.txt)"
echo "ok lun=: 33 devices and none refused with the reason"

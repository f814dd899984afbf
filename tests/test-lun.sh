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

#!/bin/bash
# make demo: build a small disk chain (a base disk holding a partition with
# an ext4 file system, and a snapshot delta on top), mount it with vmdkfs,
# and show the flat file, then leave it mounted and say how to unmount.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
demo=$top/demo
mnt=$demo/mnt
vmdkfs=$top/vmdkfs

if mountpoint -q "$mnt" 2>/dev/null; then
	fusermount3 -u "$mnt"
fi
rm -rf "$demo"
mkdir -p "$demo/files" "$mnt"
cd "$demo"

echo "== making a sample disk: 64 MiB, MBR, one ext4 partition with a file"
echo "Hello from inside a VMware virtual disk." >files/hello.txt
date -u >files/made-at.txt
truncate -s 64M disk.raw
echo 'start=2048, type=83' | sfdisk -q disk.raw
truncate -s 62M part.img
mkfs.ext4 -q -F -L demo -d files part.img
dd if=part.img of=disk.raw bs=1M seek=1 conv=notrunc status=none
rm part.img

echo "== base disk (monolithicSparse) and a snapshot delta on top of it"
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse disk.raw base.vmdk
qemu-img create -q -f vmdk -b base.vmdk -F vmdk snapshot-1.vmdk
# The snapshot overwrites the last MiB of the disk.
qemu-io -f vmdk -c 'write -P 0x5a 63M 1M' snapshot-1.vmdk >/dev/null
rm disk.raw
ls -l "$demo"/*.vmdk

echo
echo "== vmdkfs info snapshot-1.vmdk"
"$vmdkfs" info snapshot-1.vmdk

echo
echo "== vmdkfs base.vmdk snapshot-1.vmdk $mnt"
"$vmdkfs" base.vmdk snapshot-1.vmdk "$mnt"
ls -l "$mnt"
getfattr -d "$mnt/snapshot-1.raw" 2>/dev/null || true
echo
sfdisk -l "$mnt/snapshot-1.raw" | sed -n '1,2p;/^Device/,$p'

echo
echo "== its partition 1, the file snapshot-1-p1.raw, loop-mounted read-only (no offsets)"
if command -v losetup >/dev/null && [ "$(id -u)" = 0 ] &&
	dev=$(losetup -f --show -r "$mnt/snapshot-1-p1.raw" 2>/dev/null); then
	mkdir -p part
	if mount -o ro "$dev" part 2>/dev/null; then
		ls -l part
		echo "hello.txt: $(cat part/hello.txt)"
		umount part
	else
		echo "(could not mount $dev here)"
	fi
	losetup -d "$dev"
else
	echo "(needs root and loop devices; skipped)"
fi

echo
echo "The disks stay mounted at $mnt.  Unmount with:"
echo "    fusermount3 -u $mnt"

#!/bin/bash
# Build small seed inputs for the fuzzers into DIR (made fresh each run, so
# no binary images are committed).
set -eu
dir=$1
gen="/usr/bin/python3 $(cd "$(dirname "$0")/../gen" && pwd)/mkvmdk.py"
top=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$dir"
cd "$dir"
head -c 65536 /dev/urandom >r.raw
qemu-img create -q -f vmdk -o subformat=monolithicSparse sparse.vmdk 256k
qemu-io -f vmdk -c 'write -P 1 0 64k' sparse.vmdk >/dev/null
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized r.raw stream.vmdk
$gen cowd r.raw cowd.vmdk --grain 8 >/dev/null
$gen sesparse r.raw se.vmdk --layout compact >/dev/null
# Deltas with unallocated grains: reads of those fall through to the parent
# (the COWD and SEsparse targets open the input as a chain).
{ head -c 16384 /dev/urandom; head -c 32768 /dev/zero; head -c 16384 /dev/urandom; } >h.raw
$gen cowd h.raw cowd-holes.vmdk --grain 8 >/dev/null
$gen sesparse h.raw se-holes.vmdk --layout compact --map 2:zero,3:unmapped >/dev/null
rm -f r.raw h.raw
printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="custom"\nRW 100 FLAT "x" 1\nRDONLY 8 ZERO\nNOACCESS 8 SPARSE "y"\nRW 8 VMFSSPARSE "z"\nddb.a = "b"\n' >desc.txt
# VMFS (vmfs-fuzz's sparse-chunk format, tests/fuzz/vmfs-walk.h): the
# non-zero sectors the fuzzer's walk reads on the two real volumes, written
# by vmfs-tool seed; kept in build/vmfs-seeds (unpacking takes seconds) and
# made again when the tool or the volumes are newer.  Without the tool or
# the volumes, vmfs-fuzz starts from the other seeds.
tool=$top/tests/vmfs/vmfs-tool
data=${VMFS_TESTDATA:-$top/../shared/testdata/vmfs}
cache=$top/build/vmfs-seeds
if [ -x "$tool" ] && [ -r "$data/vmfs5.bin.gz" ] && [ -r "$data/vmfs6.bin.gz" ]; then
	for v in vmfs5 vmfs6; do
		if ! [ "$cache/$v.seed" -nt "$tool" ] ||
			! [ "$cache/$v.seed" -nt "$data/$v.bin.gz" ]; then
			mkdir -p "$cache"
			tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmfs-seed.XXXXXX")
			gunzip -c "$data/$v.bin.gz" | cp --sparse=always /dev/stdin "$tmp/$v.bin"
			"$tool" seed "$cache/$v.seed" "$tmp/$v.bin"
			rm -rf "$tmp"
		fi
		cp "$cache/$v.seed" "$v.seed"
	done
fi
# Partition tables (part-fuzz: the input is a disk image): an MBR with
# primaries and an extended chain, a GPT with named entries (a VMFS one),
# a 4096-byte-sector GPT, a hybrid MBR; small, so the fuzzer reaches their
# last sectors.
if command -v sfdisk >/dev/null && command -v sgdisk >/dev/null && command -v fdisk >/dev/null; then
	truncate -s 64k part-mbr.img
	printf 'label: dos\nlabel-id: 0x1234abcd\nstart=4, size=8, type=83, bootable\nstart=12, size=8, type=fb\nstart=20, type=5\nstart=22, size=4, type=83\nstart=28, size=4, type=fb\nstart=34, size=4, type=7\n' |
		sfdisk -q part-mbr.img >/dev/null 2>&1
	truncate -s 64k part-gpt.img
	sgdisk -a 1 -o -n 1:34:+7 -t 1:ef00 -c 1:efi -n 2:42:+15 -t 2:fb00 -c 2:vmfs \
		-n 4:58:+3 -c 4:x part-gpt.img >/dev/null 2>&1
	cp part-gpt.img part-hybrid.img
	sgdisk -h 2 part-hybrid.img >/dev/null 2>&1
	# Its CRCs zeroed: part-fuzz's build takes a stored 0 (crc_ok), so
	# mutated entries get past the checksums.
	cp part-gpt.img part-gpt-nocrc.img
	for o in 528 600 65040 65112; do
		dd if=/dev/zero of=part-gpt-nocrc.img bs=1 seek=$o count=4 conv=notrunc status=none
	done
	truncate -s 128k part-gpt4k.img
	printf 'g\nn\n1\n6\n+3\nt\nAA31E02A-400F-11DB-9590-000C2911D1B8\nn\n2\n\n+3\nw\n' |
		fdisk -b 4096 part-gpt4k.img >/dev/null 2>&1
fi

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

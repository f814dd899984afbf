#!/bin/bash
# SEEK_DATA / SEEK_HOLE on the flat files (FUSE lseek) must report the same
# allocation as `qemu-img map --output=json` (data: true ranges), for hosted
# sparse, stream, zeroed grains, COWD, SEsparse, flat and chains (a flat
# extent: its file's holes are holes, so the oracle is qemu-img map of the
# extent file read as raw: qemu's vmdk driver calls a flat extent all data
# without asking the file); and
# `cp --sparse=always` of a mounted disk gives a sparse copy with the same
# bytes.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io

cd "$WORK"
head -c 16M /dev/zero >r.raw
for o in 0 3 4 9 10 11 100 101 150 255; do   # scattered 64 KiB grains of data
	head -c 65536 /dev/urandom | dd of=r.raw bs=64k seek=$o conv=notrunc status=none
done
head -c 5000 /dev/urandom | dd of=r.raw bs=1 seek=$((200 * 65536 + 300)) conv=notrunc status=none
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse r.raw sparse.vmdk
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized r.raw stream.vmdk
qemu-img convert -f raw -O vmdk -o subformat=monolithicFlat r.raw flat.vmdk
qemu-img create -q -f vmdk -o zeroed_grain=on zg.vmdk 16M
qemu-io -f vmdk -c 'write -P 1 0 1M' -c 'write -z 256k 256k' -c 'write -P 2 8M 64k' zg.vmdk >/dev/null
$MKVMDK cowd r.raw cowd.vmdk --grain 8 --sparse-skip-zero >/dev/null
$MKVMDK sesparse r.raw se.vmdk --map 4000:zero,4001:unmapped >/dev/null
qemu-img create -q -f vmdk -b sparse.vmdk -F vmdk child.vmdk
qemu-io -f vmdk -c 'write -P 9 12M 128k' -c 'write -P 8 640k 64k' child.vmdk >/dev/null
$MKVMDK cowd r.raw delta.vmdk --parent zg.vmdk --map 100:data,2000:data >/dev/null

disks="sparse stream flat zg cowd se child delta"
mount_vmdkfs mnt $(for d in $disks; do echo $d.vmdk; done)
for d in $disks; do
	if [ $d = flat ]; then
		qemu-img map --output=json -f raw flat-flat.vmdk >map-$d.json
	else
		qemu-img map --output=json -f vmdk $d.vmdk >map-$d.json
	fi
	/usr/bin/python3 - mnt/$d.raw map-$d.json <<'EOP' || fail "$d: SEEK_DATA/SEEK_HOLE disagree with qemu-img map"
import json, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
got, pos = [], 0
while pos < size:
    try:
        d = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    assert h > d, (d, h)
    got.append([d, h])
    pos = h
want = []
for e in json.load(open(sys.argv[2])):
    if e['data']:
        s, t = e['start'], e['start'] + e['length']
        if want and want[-1][1] == s:
            want[-1][1] = t
        else:
            want.append([s, t])
if got != want:
    print('vmdkfs:', got[:12], '\nqemu:  ', want[:12])
    sys.exit(1)
print(f'{len(got)} data ranges')
EOP
	echo "ok $d"
done
# A disk with no data at all: SEEK_DATA fails with ENXIO, SEEK_HOLE is 0.
qemu-img create -q -f vmdk empty.vmdk 4M
mount_vmdkfs mnt2 empty.vmdk
/usr/bin/python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
try:
    os.lseek(fd, 0, os.SEEK_DATA); sys.exit("SEEK_DATA found data")
except OSError as e:
    assert e.errno == 6, e
' mnt2/empty.raw || fail "empty disk"

# ZERO extents (qemu cannot map them): a hole between two flat extents.
head -c 1M /dev/urandom >z.bin
printf '# Disk DescriptorFile\nCID=1\nparentCID=ffffffff\nRW 1024 FLAT "z.bin"\nRW 4096 ZERO\nRW 1024 FLAT "z.bin" 1024\n' >zero.vmdk
mount_vmdkfs mnt3 zero.vmdk
/usr/bin/python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
K = 512
assert os.lseek(fd, 0, os.SEEK_HOLE) == 1024 * K
assert os.lseek(fd, 1024 * K, os.SEEK_DATA) == 5120 * K
assert os.lseek(fd, 5120 * K, os.SEEK_HOLE) == 6144 * K
' mnt3/zero.raw || fail "ZERO extent is not a hole"
echo "ok ZERO extent"

cp --sparse=always mnt/sparse.raw copy.raw
same copy.raw r.raw "cp --sparse=always"
[ "$(du -k copy.raw | cut -f1)" -lt 4096 ] || fail "copy is not sparse: $(du -k copy.raw)"
echo "ok cp --sparse=always ($(du -k copy.raw | cut -f1) KiB on disk for 16 MiB)"

# st_blocks is what the chain's files take on the host (at most the size):
# du shows it, and cp --sparse=auto (the default) and tar --sparse see a
# sparse file and ask SEEK_DATA for the data instead of reading every zero.
blocks() { stat -c %b "$1"; }
size_blocks=$((16 * 1024 * 1024 / 512))
[ "$(blocks mnt/sparse.raw)" -lt $((size_blocks / 2)) ] || fail "sparse: st_blocks $(blocks mnt/sparse.raw) of $size_blocks"
[ "$(blocks mnt/flat.raw)" -eq "$(stat -c %b flat-flat.vmdk)" ] || fail "flat: st_blocks $(blocks mnt/flat.raw), the extent file has $(stat -c %b flat-flat.vmdk)"
want=$(($(stat -c %b sparse.vmdk) + $(stat -c %b child.vmdk)))
[ "$want" -gt $size_blocks ] && want=$size_blocks
[ "$(blocks mnt/child.raw)" -eq "$want" ] || fail "chain: st_blocks $(blocks mnt/child.raw), its files take $want"
rm -f copy.raw
cp mnt/child.raw copy.raw
qemu-img convert -f vmdk -O raw child.vmdk want.raw
same copy.raw want.raw "cp (--sparse=auto) of a chain"
[ "$(du -k copy.raw | cut -f1)" -lt 4096 ] || fail "plain cp made a full copy: $(du -k copy.raw)"
echo "ok st_blocks: du $(du -k mnt/sparse.raw | cut -f1) KiB for a 16 MiB sparse disk; plain cp keeps the holes"

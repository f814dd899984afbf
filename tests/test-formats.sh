#!/bin/bash
# Every format qemu-img writes, read through a real vmdkfs mount, must be
# byte-identical to qemu-img's own raw conversion (the independent oracle).
# Also: python3-vmdkstream's VMware-style streamOptimized (grain directory at
# the end, footer, markers), and COWD / SEsparse made by tests/gen (itself
# checked against qemu-img in test-gen-oracle.sh).
. "$(dirname "$0")/lib.sh"
need qemu-img

cd "$WORK"
random_raw r.raw 9
# A capacity that is not a whole number of grains or grain tables.
truncate -s 9437696 r.raw

list=""
for sub in monolithicSparse monolithicFlat twoGbMaxExtentSparse \
	twoGbMaxExtentFlat streamOptimized; do
	qemu-img convert -f raw -O vmdk -o subformat=$sub r.raw $sub.vmdk
	list="$list $sub.vmdk"
done
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse,zeroed_grain=on \
	r.raw zeroed.vmdk
qemu-img create -q -f vmdk -o subformat=monolithicSparse empty.vmdk 5M
list="$list zeroed.vmdk empty.vmdk"

# qemu-img create "vmfs" (-flat.vmdk with VMFS extent) via a hand-made
# descriptor over a copy of the raw data.
cp r.raw vmfsdisk-flat.vmdk
sectors=$(($(stat -c %s r.raw) / 512))
cat >vmfsdisk.vmdk <<EOD
# Disk DescriptorFile
version=1
CID=1a2b3c4d
parentCID=ffffffff
createType="vmfs"

# Extent description
RW $sectors VMFS "vmfsdisk-flat.vmdk"

# The Disk Data Base
ddb.adapterType = "lsilogic"
EOD
list="$list vmfsdisk.vmdk"

$MKVMDK cowd r.raw cowd1.vmdk >/dev/null
$MKVMDK cowd r.raw cowd128.vmdk --grain 128 >/dev/null
$MKVMDK sesparse r.raw se.vmdk >/dev/null
list="$list cowd1.vmdk cowd128.vmdk se.vmdk"

# VMware-style stream (python3-vmdkstream): grain directory at the end,
# footer and markers.  Installed by scripts/install-deps.sh test.
/usr/bin/python3 -c 'import VMDKstream' || fail "python3-vmdkstream missing"
/usr/bin/python3 -c 'import sys, VMDKstream; VMDKstream.convert_to_stream(sys.argv[1], sys.argv[2])' \
	r.raw vmw-stream.vmdk >/dev/null
od -A n -t x8 -j 56 -N 8 vmw-stream.vmdk | grep -q ffffffffffffffff ||
	fail "vmdkstream output does not have its grain directory at the end"
list="$list vmw-stream.vmdk"

# Zeroed-grain entries (GTE 1): qemu-io writes zeros into a zeroed_grain
# image as such entries.
qemu-img create -q -f vmdk -o subformat=monolithicSparse,zeroed_grain=on zg.vmdk 4M
qemu-io -f vmdk -c 'write -P 0x5a 0 4M' -c 'write -z 1M 1M' -c 'write -z 3M 128k' zg.vmdk >/dev/null
list="$list zg.vmdk"

mount_vmdkfs mnt $list
for v in $list; do
	n=${v%.vmdk}
	qemu-img convert -f vmdk -O raw "$v" "oracle-$n.raw"
	[ "$(stat -c %s "mnt/$n.raw")" = "$(stat -c %s "oracle-$n.raw")" ] ||
		fail "$v: size $(stat -c %s "mnt/$n.raw") != qemu's $(stat -c %s "oracle-$n.raw")"
	same "mnt/$n.raw" "oracle-$n.raw" "$v"
	echo "ok $v"
done
# The raw data itself, too (not just agreement with qemu).
same mnt/monolithicSparse.raw r.raw "monolithicSparse vs input"
same mnt/se.raw r.raw "SEsparse vs input"
same mnt/cowd1.raw r.raw "COWD vs input"

# Unaligned reads: odd offsets and lengths straddling sectors and grains.
/usr/bin/python3 - mnt $list <<'EOP'
import os, random, sys
mnt = sys.argv[1]
rng = random.Random(7)
for v in sys.argv[2:]:
    n = v[:-5]
    raw = open(f'oracle-{n}.raw', 'rb').read()
    fd = os.open(f'{mnt}/{n}.raw', os.O_RDONLY)
    for _ in range(300):
        off = rng.randrange(0, len(raw))
        ln = rng.choice([1, 7, 511, 513, 4095, 65537, 200000])
        got = os.pread(fd, ln, off)
        if got != raw[off:off + ln]:
            sys.exit(f'{v}: pread({off}, {ln}) wrong')
    # Past the end: short read, then EOF.
    if os.pread(fd, 100, len(raw) - 10) != raw[-10:] or os.pread(fd, 10, len(raw) + 5) != b'':
        sys.exit(f'{v}: read at the end wrong')
    os.close(fd)
EOP
echo "ok unaligned reads"

#!/bin/bash
# Parent chains through parentFileNameHint (relative, absolute, another
# folder), of hosted sparse, COWD and SEsparse links: each mounted link must
# equal qemu-img's raw conversion of that link's chain.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io

cd "$WORK"
mkdir base snaps
random_raw r.raw 6
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse r.raw base/base.vmdk
# child in another folder, relative hint "../base/base.vmdk"
qemu-img create -q -f vmdk -b ../base/base.vmdk -F vmdk snaps/c1.vmdk
qemu-io -f vmdk -c 'write -P 0xa1 100k 300k' -c 'write -P 0xa2 5M 1M' snaps/c1.vmdk >/dev/null
# grandchild with an absolute hint, and a larger capacity than its parent
qemu-img create -q -f vmdk -b "$WORK/snaps/c1.vmdk" -F vmdk snaps/c2.vmdk 8M
qemu-io -f vmdk -c 'write -P 0xb1 1000k 10k' -c 'write -P 0xb2 7M 512k' snaps/c2.vmdk >/dev/null
grep -q "parentFileNameHint=\"$WORK/snaps/c1.vmdk\"" snaps/c2.vmdk ||
	head -c 2000 snaps/c2.vmdk | grep -aq "parentFileNameHint=\"$WORK" ||
	fail "expected an absolute parentFileNameHint in c2"

# COWD and SEsparse deltas (tests/gen) over the qemu chain.
qemu-img convert -f vmdk -O raw snaps/c2.vmdk c2.raw
cp c2.raw d3.raw
printf 'delta3 data' | dd of=d3.raw bs=1 seek=4096 conv=notrunc status=none
dd if=/dev/urandom of=d3.raw bs=64k seek=20 count=3 conv=notrunc status=none
$MKVMDK cowd d3.raw snaps/d3.vmdk --parent snaps/c2.vmdk --map 8:data,9:data,2560:data,2561:data,2562:data,2563:data >/dev/null
cp d3.raw d4.raw
dd if=/dev/urandom of=d4.raw bs=4k seek=77 count=5 conv=notrunc status=none
$MKVMDK sesparse d4.raw snaps/d4.vmdk --parent snaps/d3.vmdk --map 77:data,78:data,79:zero,80:data,81:unmapped >/dev/null

links="base/base.vmdk snaps/c1.vmdk snaps/c2.vmdk snaps/d3.vmdk snaps/d4.vmdk"
mount_vmdkfs mnt $links
for v in $links; do
	n=$(basename "$v" .vmdk)
	qemu-img convert -f vmdk -O raw "$v" "o-$n.raw"
	same "mnt/$n.raw" "o-$n.raw" "chain link $v"
	echo "ok $v ($(stat -c %s "mnt/$n.raw") bytes)"
done
"$VMDKFS" info snaps/d4.vmdk | grep -c '^link' | grep -qx 5 || fail "info does not show 5 links"
"$VMDKFS" info --json snaps/d4.vmdk | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
c = j["chain"]
assert len(c) == 5, len(c)
for child, parent in zip(c, c[1:]):
    assert child["parentCID"] == parent["cid"], (child, parent)
assert c[-1]["parentCID"] == "ffffffff"
assert c[0]["extents"][0]["format"] == "SEsparse"
assert c[1]["extents"][0]["format"] == "COWD"
' || fail "info --json chain wrong"
echo "ok info"

# The absolute hint may name a path that exists only on the ESXi host: the
# parent is then looked for by its base name beside the child, and the CID
# check still applies.
mkdir moved
cp base/base.vmdk moved/
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse -b base.vmdk -F vmdk moved/m1.vmdk
qemu-io -f vmdk -c 'write -P 0xc1 64k 64k' moved/m1.vmdk >/dev/null
qemu-img convert -f vmdk -O raw moved/m1.vmdk o-m1.raw
sed -i 's#^parentFileNameHint=.*#parentFileNameHint="/vmfs/volumes/ds1/vm/base.vmdk"#' moved/m1.vmdk
grep -q '^parentFileNameHint="/vmfs/volumes/ds1/vm/base.vmdk"' moved/m1.vmdk || fail "sed"
mount_vmdkfs mnt2 moved/m1.vmdk
same mnt2/m1.raw o-m1.raw "absolute hint resolved by base name"
echo "ok absolute hint fallback"

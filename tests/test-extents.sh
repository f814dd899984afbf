#!/bin/bash
# Several extents of mixed types in one disk: FLAT with an offset, a hosted
# SPARSE extent (RDONLY), ZERO, VMFS, VMFSSPARSE (COWD), SESPARSE, and a
# NOACCESS extent.  qemu-img skips ZERO and non-RW extents, so the expected
# bytes are built here with dd.  Reads of a NOACCESS extent fail with EIO
# (vmdkfs's documented choice: its data must not be shown).  Raw device
# mappings are refused at mount with "not supported".
. "$(dirname "$0")/lib.sh"
need qemu-img

cd "$WORK"
head -c 2M /dev/urandom >a.bin		# FLAT source, used from sector 100
head -c 512K /dev/urandom >s.raw
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicSparse s.raw s.vmdk
head -c 1M /dev/urandom >v-flat.bin
head -c 1M /dev/urandom >c.raw
dd if=/dev/zero of=c.raw bs=4k seek=10 count=20 conv=notrunc status=none
$MKVMDK cowd c.raw c.vmdk >/dev/null
head -c 1M /dev/urandom >e.raw
$MKVMDK sesparse e.raw e.vmdk >/dev/null

cat >mixed.vmdk <<'EOD'
# Disk Descriptor File
version=1
CID=0badcafe
parentCID=ffffffff
createType="custom"

# Extent description
RW 2048 FLAT "a.bin" 100
RDONLY 1024 SPARSE "s.vmdk"
RW 512 ZERO
RW 2048 VMFS "v-flat.bin" 0
RW 2048 VMFSSPARSE "c-delta.vmdk"
RW 2048 SESPARSE "e-sesparse.vmdk"
NOACCESS 128 FLAT "a.bin" 0
EOD
# CRLF line ends must be accepted too.
sed 's/$/\r/' mixed.vmdk >crlf.vmdk

{
	dd if=a.bin bs=512 skip=100 count=2048 status=none
	cat s.raw
	head -c 256K /dev/zero
	cat v-flat.bin c.raw e.raw
} >expect.raw
good=$(stat -c %s expect.raw)

mount_vmdkfs mnt mixed.vmdk crlf.vmdk
for n in mixed crlf; do
	[ "$(stat -c %s mnt/$n.raw)" = $((good + 65536)) ] || fail "$n: size $(stat -c %s mnt/$n.raw)"
	head -c "$good" mnt/$n.raw >got.raw || fail "$n: reading the accessible extents failed"
	same got.raw expect.raw "$n: accessible extents"
	if dd if=mnt/$n.raw of=/dev/null bs=512 skip=$((good / 512)) count=1 2>err; then
		fail "$n: reading the NOACCESS extent succeeded"
	fi
	grep -q "Input/output error" err || fail "$n: NOACCESS read: $(cat err)"
done
echo "ok mixed extents, NOACCESS gives EIO"
"$VMDKFS" info mixed.vmdk | grep -q "RDONLY SPARSE 1024 sectors" || fail "info extents"

# RDONLY-only descriptor (qemu crashes on this one).
cat >ro.vmdk <<'EOD'
# Disk DescriptorFile
version=1
CID=11111111
parentCID=ffffffff
createType=monolithicFlat
RDONLY 2048 FLAT "v-flat.bin"
EOD
mount_vmdkfs mnt3 ro.vmdk
same mnt3/ro.raw v-flat.bin "RDONLY flat"

# Raw device mappings: a clear "not supported".
mkdir -p mnt4
for t in VMFSRDM VMFSRAW; do
	printf '# Disk DescriptorFile\nCID=1\nparentCID=ffffffff\ncreateType="vmfsRawDeviceMap"\nRW 2048 %s "v-flat.bin"\n' $t >rdm.vmdk
	if "$VMDKFS" rdm.vmdk mnt4 2>err; then fail "$t mounted"; fi
	grep -q "$t.*not supported" err || fail "$t: message: $(cat err)"
done
echo "ok raw device mappings refused"

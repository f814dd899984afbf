#!/bin/bash
# The san transport: a snapshot's disks read straight from the datastore's
# LUN, a real loop device (O_DIRECT) over a VMFS5 and a VMFS6 volume holding
# the lab's datastore folder.  The volumes are made by tests/gen/mkvmfs.py
# (checked against vmfs-fuse/vmfs6-fuse by test-vmfs-gen.sh) inside a GPT
# made by sgdisk (partition 1, type VMFS).  SIMULATED: the lab's
# Datastore.info (VmfsDatastoreInfo: NAA extent, partition, volume UUID) is
# what this test tells it (tests/lab/vmfs.go); no real storage stack.  Every
# byte is compared with qemu-img's view of the same chain in the folder.
. "$(dirname "$0")/lib.sh"
need qemu-img getfattr sgdisk losetup
MKVMFS="/usr/bin/python3 $TESTS/gen/mkvmfs.py"
lab_nfc_setup
opts=$NFC_OPTS

# Snapshot s1 (the base), guest writes, snapshot s2 (base + a delta).
snap() {
	lab_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this><name>$1</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"
	task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
	[ "$(lab_task_wait "$task")" = success ] || fail "CreateSnapshot_Task $1"
}
lab_login
# The second VM, powered off, no snapshot: its current disk is a base
# flat extent, for a rw restore over san.
vm1=$(echo "$LAB_VMS" | cut -d' ' -f2)
vm1_moref=$(lab_ctl state | /usr/bin/python3 -c "import json,sys; print([v['moref'] for v in json.load(sys.stdin)['vms'] if v['name']=='$vm1'][0])")
lab_soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm1_moref</_this></PowerOffVM_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "PowerOffVM_Task"
opts1=$(echo "$opts" | sed "s/,vm=.*//"),vm=$vm1
head -c 200000 /dev/urandom >restore.bin
snap s1
lab_ctl "write?vm=$LAB_VM&disk=0&offset=1048576&length=3145728&pattern=0x5a" >/dev/null || fail "guest write"
snap s2
# Powered off too, after its snapshots: its current disks are deltas.
lab_soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this></PowerOffVM_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "PowerOffVM_Task"

# lun_image V UUID [MKVMFS OPTIONS]: a GPT LUN image lun$V.img whose
# partition 1 (type VMFS) is a VMFS$V volume made from the datastore
# folder.
size=$((192 << 20))
lun_image() {
	local v=$1 uuid=$2
	shift 2
	$MKVMFS make vol$v.img --version "$v" --uuid "$uuid" --size $size \
		--label "lab$v" --from "$LAB_DATASTORE_DIR" "$@" || fail "mkvmfs VMFS$v"
	rm -f lun$v.img
	truncate -s $((size + (4 << 20))) lun$v.img
	sgdisk -o -n 1:2048:+$((size >> 10))K -t 1:fb00 lun$v.img >/dev/null 2>&1 || fail "sgdisk"
	sgdisk -i 1 lun$v.img | grep -q "AA31E02A-400F-11DB-9590-000C2911D1B8" || fail "sgdisk made no VMFS partition"
	dd if=vol$v.img of=lun$v.img bs=1M seek=1 conv=notrunc,sparse status=none
}

# present IMAGE [LOSETUP OPTIONS]: IMAGE as the LUN of VMFS$v volume
# $uuid: a loop device ($dev) named by NAA $naa under byid/, and the lab's
# datastore told that it is that volume.  unpresent: the loop detached.
present() {
	local img=$1
	shift
	loop_attach "$img" "$@"
	dev=$LOOP
	rm -rf byid && mkdir byid && ln -s "$dev" byid/wwn-0x$naa
	lab_vmfs $uuid $v naa.$naa 1 || fail "lab_vmfs"
}
unpresent() {
	losetup -d "$dev"
	LOOPS=$(echo "$LOOPS" | sed "s# $dev##")
}

for v in 5 6; do
	uuid=6113001e-a6377ebc-1d2$v-000c29801686
	naa=6000c29a1b2c3d4e5f60718293a4b5c$v
	lun_image $v $uuid
	present lun$v.img --direct-io=on
	san="$opts,san_devices=$WORK/byid,tmpDirectory=$WORK"

	# --- Every disk of s2 (a chain: delta on the volume) and s1 ---
	for s in s2 s1; do
		mount_vmdkfs m -o "$san,snapshot=$s,transports=san"
		n=0
		for f in m/*/Hard_disk_*.raw; do
			[ "$(getfattr --only-values -n user.vmdkfs.transport "$f")" = san ] || fail "$f: transport"
			lunx=$(getfattr --only-values -n user.vmdkfs.lun "$f")
			case $lunx in *"/wwn-0x$naa ($dev) partition 1, VMFS$v $uuid") ;; *) fail "$f: user.vmdkfs.lun is \"$lunx\"" ;; esac
			qemu-img convert -f vmdk -O raw "$(local_of "$f")" want.raw
			same "$f" want.raw "VMFS$v san read of $f ($s)"
			n=$((n + 1))
		done
		[ $n -ge 2 ] || fail "snapshot $s: $n disks"
		"$VMDKFS" status m >status.txt || fail "vmdkfs status"
		grep -q "Hard_disk_1.raw  *san " status.txt || fail "status: $(cat status.txt)"
		grep -q "($dev) partition 1" status.txt || fail "status does not name the LUN: $(cat status.txt)"
		umount_vmdkfs m
		echo "ok VMFS$v: snapshot $s over san, $n disks as qemu-img reads them"
	done
	# The nbdkit plugin over san: s2's first disk (a delta on the volume).
	if command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null && [ -f "$PLUGIN" ]; then
		IFS=, read -ra kv <<<"$san"
		s2=$(lab_ctl state | /usr/bin/python3 -c "import json,sys; v=[v for v in json.load(sys.stdin)['vms'] if v['name']=='$LAB_VM'][0]; print([x['moref'] for x in v['snapshots'] if x['name']=='s2'][0])")
		sd=$(lab_ctl state | /usr/bin/python3 -c "import json,sys; v=[v for v in json.load(sys.stdin)['vms'] if v['name']=='$LAB_VM'][0]; d=[x for x in v['snapshots'] if x['name']=='s2'][0]['disks'][0]; print(d['file']); print(d['local_chain'][0])")
		qemu-img convert -f vmdk -O raw "$(echo "$sd" | tail -1)" want.raw
		nbdkit_start san$v -r "${kv[@]}" snapshot="$s2" file="$(echo "$sd" | head -1)" transports=san
		nbdcopy "$NBD_URI" nk.raw || fail "VMFS$v: nbdkit over san: nbdcopy"
		same nk.raw want.raw "VMFS$v: nbdkit over san"
		qemu-img convert -f raw -O raw "$NBD_URI" nk2.raw || fail "VMFS$v: nbdkit over san: qemu-img convert"
		same nk2.raw want.raw "VMFS$v: nbdkit over san (qemu-img)"
		nbdkit_stop
		echo "ok VMFS$v: the nbdkit plugin over san: s2's disk as qemu-img reads its chain"
	fi
	grep -q "san: datastore $LAB_DATASTORE: .*($dev) partition 1, VMFS$v" vmdkfs-*.log || fail "no san line in the log"
	rm -f vmdkfs-*.log

	# --- The mode list moves on when san cannot reach a disk ---
	expect_next() { # WHAT OPTS LOGTEXT
		mount_vmdkfs m -o "$san,snapshot=s1,transports=san:nbdssl$2"
		f=$(ls -d m/*/Hard_disk_1.raw)
		[ "$(getfattr --only-values -n user.vmdkfs.transport "$f")" = nbdssl ] || fail "$1: not nbdssl"
		umount_vmdkfs m
		grep -q "$3" vmdkfs-*.log || fail "$1: the log does not say \"$3\": $(grep -h san vmdkfs-*.log | head -3)"
		rm -f vmdkfs-*.log
		# san alone: the mount fails and says why
		if "$VMDKFS" -o "$san,snapshot=s1,transports=san$2" m 2>err.txt; then
			MOUNTS="$MOUNTS $WORK/m"
			fail "$1: transports=san mounted"
		fi
		grep -q "$3" err.txt || fail "$1: the error does not say \"$3\": $(cat err.txt)"
		echo "ok VMFS$v: $1: nbdssl takes over; san alone fails naming it"
	}
	expect_next "LUN on the deny list" ",vixDiskLib.transport.san.denyList=/dev/loop*" "is in vixDiskLib.transport.san.denyList"
	expect_next "denyList=all" ",vixDiskLib.transport.san.denyList=all" "denyList is all"
	# the allow list wins over the deny list
	mount_vmdkfs m -o "$san,snapshot=s1,transports=san,vixDiskLib.transport.san.denyList=all,vixDiskLib.transport.san.allowList=$dev"
	[ "$(getfattr --only-values -n user.vmdkfs.transport m/*/Hard_disk_1.raw)" = san ] || fail "allowList did not win"
	umount_vmdkfs m
	echo "ok VMFS$v: allowList wins over denyList=all"
	mkdir -p empty
	san="$opts,san_devices=$WORK/empty,tmpDirectory=$WORK"
	expect_next "LUN not presented" "" "LUN naa.$naa not found on this machine"
	san="$opts,san_devices=$WORK/byid,tmpDirectory=$WORK"
	lab_vmfs 00000000-a6377ebc-1d2$v-000c29801686 $v naa.$naa 1 || fail "lab_vmfs"
	expect_next "another volume on the LUN" "" "holds VMFS volume $uuid, but datastore"
	lab_vmfs $uuid $v naa.$naa 2 || fail "lab_vmfs"
	expect_next "no such partition" "" "has no partition 2"
	lab_vmfs_off || fail "lab_vmfs_off"
	expect_next "not a VMFS datastore" "" "not VMFS"
	lab_vmfs $uuid $v naa.$naa 1 || fail "lab_vmfs"

	# --- A restore (rw, powered-off VM, base disk): in place over san ---
	mount_vmdkfs m -o "$(echo "$san" | sed "s/,vm=[^,]*//"),vm=$vm1,rw,transports=san"
	f=$(ls -d m/current/Hard_disk_1.raw)
	[ "$(getfattr --only-values -n user.vmdkfs.transport "$f")" = san ] || fail "rw: not san"
	dd if=restore.bin of="$f" bs=4096 seek=300 conv=notrunc,fsync status=none || fail "rw: write"
	umount_vmdkfs m
	# Read back by Debian's own VMFS reader, from the partition on the LUN.
	loop_attach lun$v.img -r -o $((1 << 20)) --sizelimit $size
	oracle=vmfs-fuse
	[ $v = 6 ] && oracle=vmfs6-fuse
	mkdir -p ref
	$oracle "$LOOP" ref >/dev/null 2>&1 || fail "$oracle on the LUN's partition"
	MOUNTS="$MOUNTS $WORK/ref"
	flat=$(ls ref/"$vm1"/*-flat.vmdk | head -1)
	cmp -s <(tail -c +$((300 * 4096 + 1)) "$flat" | head -c 200000) restore.bin || fail "rw: $oracle does not read the restored bytes"
	# The rest of the disk is untouched: equal to the folder's copy.
	cmp -s <(head -c $((300 * 4096)) "$flat") <(head -c $((300 * 4096)) "$LAB_DATASTORE_DIR/$vm1/$(basename "$flat")") || fail "rw: bytes before the write changed"
	fusermount3 -u ref
	MOUNTS=$(echo "$MOUNTS" | sed "s# $WORK/ref##")
	losetup -d "$LOOP"
	LOOPS=$(echo "$LOOPS" | sed "s# $LOOP##")
	echo "ok VMFS$v: rw restore in place over san, read back by $oracle"
	# A delta (the first VM's current disk, after its snapshots) is not
	# written over san: nbdssl takes it.
	rm -f vmdkfs-*.log
	mount_vmdkfs m -o "$san,transports=san:nbdssl,rw"
	[ "$(getfattr --only-values -n user.vmdkfs.transport m/current/Hard_disk_1.raw)" = nbdssl ] || fail "rw delta: not nbdssl"
	umount_vmdkfs m
	grep -q "is a delta link" vmdkfs-*.log || fail "rw delta: the log does not say why: $(grep -h san vmdkfs-*.log | head -3)"
	echo "ok VMFS$v: rw on a delta goes to nbdssl, san says why"
	unpresent
done

# --- Thin and lazy-zeroed flat files on the volume (VMFS6 and VMFS5) ---
for v in 5 6; do
	layout=thin
	[ $v = 5 ] && layout=lazy
	uuid=6113001e-a6377ebc-1d3$v-000c29801686
	naa=6000c29a1b2c3d4e5f60718293a4b5d$v
	lun_image $v $uuid --layout "*-flat.vmdk=$layout"
	present lun$v.img --direct-io=on
	san="$opts,san_devices=$WORK/byid,tmpDirectory=$WORK"
	mount_vmdkfs m -o "$san,snapshot=s1,transports=san"
	f=$(ls -d m/*/Hard_disk_1.raw)
	qemu-img convert -f vmdk -O raw "$(local_of "$f")" want.raw
	same "$f" want.raw "VMFS$v $layout flat file over san"
	# Its holes: the zero stretches of the disk's data are holes (thin:
	# no block; lazy: to be zeroed), and st_blocks leaves them out.
	holes=$(/usr/bin/python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); size = os.fstat(fd).st_size; off = 0; n = 0
while off < size:
    try: d = os.lseek(fd, off, os.SEEK_DATA)
    except OSError: d = size
    if d > off: n += d - off
    if d >= size: break
    off = os.lseek(fd, d, os.SEEK_HOLE)
print(n)" "$f")
	[ "$holes" -gt 0 ] || fail "VMFS$v $layout: no holes through san"
	blocks=$(stat -c %b "$f")
	[ $((blocks * 512)) -lt $((LAB_DISK_MIB << 20)) ] || fail "VMFS$v $layout: st_blocks $blocks counts the holes"
	cp --sparse=always "$f" copy.raw
	same copy.raw want.raw "VMFS$v $layout sparse copy"
	umount_vmdkfs m
	echo "ok VMFS$v: $layout flat file over san: right bytes, $holes bytes of holes, st_blocks $blocks"
	# rw: san refuses a file that would need allocation; nbdssl takes it
	rm -f vmdkfs-*.log
	mount_vmdkfs m -o "$(echo "$san" | sed "s/,vm=[^,]*//"),vm=$vm1,rw,transports=san:nbdssl"
	[ "$(getfattr --only-values -n user.vmdkfs.transport m/current/Hard_disk_1.raw)" = nbdssl ] || fail "$layout rw: not nbdssl"
	umount_vmdkfs m
	want="no block (thin)"
	[ $layout = lazy ] && want="still to be zeroed"
	grep -q "$want" vmdkfs-*.log || fail "$layout rw: the log does not say \"$want\": $(grep -h san vmdkfs-*.log | head -3)"
	echo "ok VMFS$v: rw on a $layout disk goes to nbdssl, san says why"
	unpresent
done

# --- The snapshot removed by another client under a san mount ---
# vmdkfs reads the datastore's files itself, which nothing on the host
# knows of: the snapshot is checked every 2 s before a read, and once it
# is gone reads fail (consolidation would write other bytes into the very
# blocks read).  s2 (its files on the VMFS6 thin volume of the last loop).
present lun$v.img --direct-io=on
rm -f vmdkfs-*.log
mount_vmdkfs m -o "$opts,san_devices=$WORK/byid,tmpDirectory=$WORK,snapshot=s2,transports=san"
f=$(ls -d m/*/Hard_disk_1.raw)
qemu-img convert -f vmdk -O raw "$(local_of "$f")" want.raw
same "$f" want.raw "VMFS$v: s2 before its removal"
s2=$(lab_ctl state | /usr/bin/python3 -c "import json,sys; v=[v for v in json.load(sys.stdin)['vms'] if v['name']=='$LAB_VM'][0]; print([x['moref'] for x in v['snapshots'] if x['name']=='s2'][0])")
lab_login >/dev/null
lab_soap "<RemoveSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachineSnapshot\">$s2</_this><removeChildren>false</removeChildren></RemoveSnapshot_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "RemoveSnapshot_Task s2"
sleep 2.2
echo 3 >/proc/sys/vm/drop_caches
if cat "$f" >got.raw 2>err.txt; then
	fail "a read after the snapshot was removed succeeded"
fi
grep -q "Input/output error" err.txt || fail "not EIO after the snapshot was removed: $(cat err.txt)"
grep -q "snapshot $s2 is gone" vmdkfs-*.log || fail "the log does not say the snapshot is gone: $(tail -3 vmdkfs-*.log)"
umount_vmdkfs m
unpresent
echo "ok VMFS$v: the snapshot removed by another client under a san mount: EIO within 2 s, the reason logged, a clean unmount"

# --- The LUN fails reads under a san mount ---
# The same volume (s1, its base disk), its LUN now qemu-storage-daemon's
# FUSE export of the image through qemu's blkdebug driver, which fails
# every read that covers one sector in the middle of the disk's data with
# EIO, under a real loop device: a storage path that returns I/O errors.
# The read over that sector fails with EIO and the device named in the
# log; the bytes before it are right; the mount goes on serving the rest;
# the unmount is clean.
if command -v qemu-storage-daemon >/dev/null 2>&1; then
	present lun$v.img --direct-io=on
	mount_vmdkfs m -o "$opts,san_devices=$WORK/byid,tmpDirectory=$WORK,snapshot=s1,transports=san"
	f=$(ls -d m/*/Hard_disk_1.raw)
	qemu-img convert -f vmdk -O raw "$(local_of "$f")" want.raw
	umount_vmdkfs m
	unpresent
	# A 4 KiB block of the disk found once in the image: the sector to fail.
	bad=$(/usr/bin/python3 - want.raw lun$v.img <<'PY'
import sys
disk, img = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
mid = len(disk) // 2 // 4096 * 4096
for off in list(range(mid, len(disk), 4096)) + list(range(65536, mid, 4096)):
    blk = disk[off:off + 4096]
    if blk.count(blk[:1]) == len(blk):
        continue
    at = img.find(blk)
    if at >= 0 and at % 512 == 0 and img.find(blk, at + 1) < 0:
        print(off, at // 512)
        break
PY
)
	[ -n "$bad" ] || fail "no block of the disk's data found once in the image"
	read -r bad_off bad_sector <<<"$bad"
	printf '[inject-error]\nevent = "read_aio"\nerrno = "5"\nsector = "%s"\n' "$bad_sector" >blkdebug.conf
	touch lunbad
	qemu-storage-daemon --blockdev driver=file,node-name=f,filename=lun$v.img \
		--blockdev driver=blkdebug,node-name=b,image=f,config=blkdebug.conf \
		--blockdev driver=raw,node-name=r,file=b \
		--export type=fuse,id=e,node-name=r,mountpoint=lunbad,writable=off \
		--daemonize --pidfile "$WORK/qsd.pid" || fail "qemu-storage-daemon with blkdebug"
	MOUNTS="$MOUNTS $WORK/lunbad"
	present lunbad -r
	rm -f vmdkfs-*.log
	echo 3 >/proc/sys/vm/drop_caches
	mount_vmdkfs m -o "$opts,san_devices=$WORK/byid,tmpDirectory=$WORK,snapshot=s1,transports=san"
	f=$(ls -d m/*/Hard_disk_1.raw)
	[ "$(getfattr --only-values -n user.vmdkfs.transport "$f")" = san ] || fail "I/O errors: not san"
	if cat "$f" >got.raw 2>err.txt; then
		fail "a read over a sector the LUN fails succeeded"
	fi
	grep -q "Input/output error" err.txt || fail "not EIO over a failing sector: $(cat err.txt)"
	[ "$(stat -c %s got.raw)" -le "$bad_off" ] || fail "$(stat -c %s got.raw) bytes read, past the failing block at $bad_off"
	cmp -s got.raw <(head -c "$(stat -c %s got.raw)" want.raw) || fail "wrong bytes before the EIO"
	grep -q "$dev" vmdkfs-*.log || fail "the log does not name the device: $(tail -3 vmdkfs-*.log)"
	# The rest of the disk still reads, and right.
	cmp -s <(dd if="$f" bs=4096 skip=$((bad_off / 4096 + 1)) status=none) <(tail -c +$((bad_off + 4096 + 1)) want.raw) ||
		fail "the disk after the failing block does not read right"
	umount_vmdkfs m
	mountpoint -q m && fail "still mounted after the I/O errors"
	[ "$(lab_ctl state | /usr/bin/python3 -c "import json,sys; print(len(json.load(sys.stdin)['disabled_methods'] or []))")" = 0 ] ||
		fail "methods left disabled after the I/O errors"
	unpresent
	kill "$(cat "$WORK/qsd.pid")"
	for i in $(seq 50); do mountpoint -q lunbad || break; sleep 0.1; done
	MOUNTS=$(echo "$MOUNTS" | sed "s# $WORK/lunbad##")
	echo "ok VMFS$v: the LUN fails a sector (blkdebug under a loop device): EIO naming $dev, $(stat -c %s got.raw) bytes before it right, the rest of the disk right, a clean unmount"
else
	echo "SKIP the failing-LUN case: qemu-storage-daemon is not installed"
fi

# --- The LUN goes away under a san mount ---
# The last volume again (VMFS6, thin), then its loop device shrinks to
# nothing under the mount, as a LUN unpresented from the proxy: EIO with
# the device named, never zeros, and a clean unmount (EndAccess done).
present lun$v.img --direct-io=on
rm -f vmdkfs-*.log
mount_vmdkfs m -o "$opts,san_devices=$WORK/byid,tmpDirectory=$WORK,snapshot=s1,transports=san"
f=$(ls -d m/*/Hard_disk_1.raw)
[ "$(getfattr --only-values -n user.vmdkfs.transport "$f")" = san ] || fail "vanish: not san"
qemu-img convert -f vmdk -O raw "$(local_of "$f")" want.raw
same "$f" want.raw "VMFS$v before the LUN went away"
echo 3 >/proc/sys/vm/drop_caches
truncate -s 0 lun$v.img
losetup -c "$dev"
if cat "$f" >got.raw 2>err.txt; then
	fail "a read after the LUN went away succeeded ($(cmp -s got.raw want.raw && echo "the old bytes" || echo "other bytes"))"
fi
grep -q "Input/output error" err.txt || fail "not EIO after the LUN went away: $(cat err.txt)"
cmp -s got.raw <(head -c "$(stat -c %s got.raw)" want.raw) || fail "wrong bytes before the EIO"
grep -q "$dev" vmdkfs-*.log || fail "the log does not name the device: $(tail -3 vmdkfs-*.log)"
umount_vmdkfs m
mountpoint -q m && fail "still mounted after the LUN went away"
[ "$(lab_ctl state | /usr/bin/python3 -c "import json,sys; print(len(json.load(sys.stdin)['disabled_methods'] or []))")" = 0 ] ||
	fail "methods left disabled after the LUN went away"
echo "ok VMFS$v: the LUN went away under a san mount: EIO naming $dev, $(stat -c %s got.raw) bytes read before it right, a clean unmount"

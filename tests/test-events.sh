#!/bin/bash
# Session and host events under a mount:
#   - the vCenter session expires while mounted: the next call that needs
#     one (a new NFC ticket after the link broke) logs in again by itself,
#     and the bytes are right;
#   - the snapshot is removed by another client while mounted: the lab
#     consolidates the later writes into the snapshot's file, so a new
#     link to it would serve other bytes; vmdkfs reads EIO with the reason
#     logged, never those bytes, and unmounts cleanly;
#   - the LUN under a lun= mount goes away (its loop device shrinks to
#     nothing): EIO with the reason logged, never zeros, and a clean
#     unmount.
# Peers: the lab (tests/lab, SIMULATED: govmomi's vcsim with the lab's
# session expiry and snapshot consolidation, and the lab's NFC server after
# recorded VDDK traffic); a real loop device over a real ESXi VMFS5 volume
# (../shared/testdata/vmfs).
. "$(dirname "$0")/lib.sh"
need qemu-img curl getfattr losetup
lab_nfc_setup
mkdir -p logs
py() { /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin); $1"; }
vm_state() { lab_ctl state | py "v=[v for v in s['vms'] if v['name']=='$LAB_VM'][0]; $1"; }

# A named snapshot, then a guest write after it: the snapshot's bytes and
# the VM's current bytes differ.
lab_login >/dev/null
lab_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this><name>s1</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "CreateSnapshot_Task s1"
snap=$(vm_state "print([x['moref'] for x in v['snapshots'] if x['name']=='s1'][0])")
base=$(vm_state "print([x for x in v['snapshots'] if x['name']=='s1'][0]['disks'][0]['local_chain'][0])")
qemu-img convert -U -f vmdk -O raw "$base" want.raw
lab_ctl "write?vm=$LAB_VM&disk=0&offset=0&length=4194304&pattern=0x6b" >/dev/null || fail "guest write"

mount_vmdkfs m -o "$NFC_OPTS,snapshot=s1,transports=nbdssl,tmpDirectory=$WORK/logs"
f=$(ls -d m/*/Hard_disk_1.raw)
same "$f" want.raw "the snapshot's disk"

# --- The session expires while mounted ---
lab_ctl expire >/dev/null
echo 3 >/proc/sys/vm/drop_caches
lab_ctl "nfc?cut=300000" >/dev/null # the link breaks: a new ticket is needed
same "$f" want.raw "a read after the session expired and the link broke"
grep -q "session expired; logging in again" logs/vmdkfs-*.log ||
	fail "no new login in the log after the session expired"
echo "ok the session expired: logged in again by itself, right bytes"

# --- The snapshot is removed by another client while mounted ---
# Also mounted over the file transport, through the datastore folder (as
# an NFS datastore mounted here): nothing on the host knows of that
# reader, so vmdkfs asks every 2 s whether the snapshot is still there.
lab_login >/dev/null # the test's own session expired too
# (prepare_access=off: the first mount holds the VM's PrepareForAccess)
mount_vmdkfs mf -o "$NFC_OPTS,snapshot=s1,transports=file,datastore.$LAB_DATASTORE=$LAB_DATASTORE_DIR,prepare_access=off,tmpDirectory=$WORK/logs"
ff=$(ls -d mf/*/Hard_disk_1.raw)
same "$ff" want.raw "the snapshot's disk over the file transport"
lab_soap "<RemoveSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachineSnapshot\">$snap</_this><removeChildren>false</removeChildren></RemoveSnapshot_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "RemoveSnapshot_Task s1"
# The file the snapshot's disk was now has the guest's write: a new link
# to it would read 0x6b where the snapshot had other bytes.
qemu-img convert -U -f vmdk -O raw "$base" now.raw
cmp -s now.raw want.raw && fail "the lab did not consolidate the write into the snapshot's file"
echo 3 >/proc/sys/vm/drop_caches
lab_ctl "nfc?cut=100000" >/dev/null
if cat "$f" >got.raw 2>err; then
	fail "a read after the snapshot was removed succeeded ($(cmp got.raw want.raw >/dev/null && echo "the old bytes" || echo "OTHER bytes"))"
fi
grep -q "Input/output error" err || fail "not EIO after the snapshot was removed: $(cat err)"
# What was read before the error is the snapshot's.
cmp -s got.raw <(head -c "$(stat -c %s got.raw)" want.raw) || fail "wrong bytes before the EIO"
grep -q "snapshot $snap is gone" logs/vmdkfs-*.log || fail "the log does not say the snapshot is gone"
echo 3 >/proc/sys/vm/drop_caches
dd if="$f" of=/dev/null bs=64k count=1 skip=200 status=none 2>/dev/null && fail "a later read succeeded"
umount_vmdkfs m
sleep 2.2 # the file transport's next check
echo 3 >/proc/sys/vm/drop_caches
if cat "$ff" >gotf.raw 2>errf; then
	fail "file transport: a read after the snapshot was removed succeeded ($(cmp gotf.raw want.raw >/dev/null && echo "the old bytes" || echo "OTHER bytes"))"
fi
grep -q "Input/output error" errf || fail "file transport: not EIO after the snapshot was removed: $(cat errf)"
cmp -s gotf.raw <(head -c "$(stat -c %s gotf.raw)" want.raw) || fail "file transport: wrong bytes before the EIO"
umount_vmdkfs mf
echo "ok the snapshot removed under a file-transport mount: EIO within 2 s, never the consolidated bytes"
[ "$(lab_ctl state | py "print(len(s['disabled_methods'] or []))")" = 0 ] || fail "methods left disabled"
[ "$(lab_ctl state | py "print(s['nfc']['stats']['live'])")" = 0 ] || fail "NFC links left open"
echo "ok the snapshot removed by another client: EIO, the reason logged, $(stat -c %s got.raw) bytes read before were the snapshot's; a clean unmount"

# --- The LUN of a lun= mount goes away ---
DATA=$TOP/../shared/testdata/vmfs
if [ -f "$DATA/vmfs5.bin.gz" ]; then
	gunzip -c "$DATA/vmfs5.bin.gz" >vol5.bin
	loop_attach vol5.bin
	mount_vmdkfs l -o "lun=$LOOP,tmpDirectory=$WORK/logs"
	big=$(find l -type f -size +64k -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
	[ -n "$big" ] || fail "no file of more than 64 KiB on the volume"
	cat "$big" >/dev/null || fail "reading $big before the LUN went away"
	echo 3 >/proc/sys/vm/drop_caches
	truncate -s 0 vol5.bin
	losetup -c "$LOOP"
	if cat "$big" >got.bin 2>err; then
		[ -s got.bin ] && ! cmp -s got.bin /dev/zero 2>/dev/null ||
			fail "a read after the LUN went away succeeded"
		fail "a read after the LUN went away succeeded (zeros)"
	fi
	grep -q "Input/output error" err || fail "not EIO after the LUN went away: $(cat err)"
	grep -q "past the end\|$LOOP" logs/vmdkfs-*.log || fail "the log does not name the device: $(tail -3 logs/vmdkfs-*.log)"
	umount_vmdkfs l
	mountpoint -q l && fail "still mounted"
	echo "ok the LUN went away under a lun= mount: EIO, the reason logged, a clean unmount"
else
	echo "SKIP the LUN part: no test volumes in $DATA"
fi

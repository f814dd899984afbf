#!/bin/bash
# Browsing a whole vCenter in one mount (server= without vm=; fs/browse.c)
# against the lab: SIMULATED vCenter (vcsim + the lab's snapshots with real
# delta disks, DisableMethods) and SIMULATED NFC server (tests/lab/nfc*.go);
# no real vCenter here.  The datastore is not mapped: every disk is read
# over nbdssl.  What is checked:
# - the tree: a folder per VM (vms= filters), a folder per snapshot (names
#   made safe and unique), current/ for a powered-off VM only, the disks
#   with the inventory's sizes and xattrs; ls -lR and getfattr open no disk
#   (the lab's NfcRandomAccessOpenReadonly count stays 0);
# - partition files listed once their disk was opened, and found by name
#   before (the lookup opens the disk);
# - a file restored (debugfs, an independent reader of ext4) from a GPT
#   partition of a snapshot's disk, after a guest write that changed the
#   running disk: the snapshot's bytes, not the VM's current ones;
# - PrepareForAccess while a VM's disk is open, EndAccess after idle_close;
# - max_open_disks: EBUSY after open_wait with a log line naming it; an
#   idle disk closed to make room;
# - a snapshot removed while browsed: ENOENT after inventory_ttl, and at
#   once for an open inside the TTL (the open asks the inventory);
# - rw, snapshot=new, snapshot=, scratch refused with a reason;
# - a direct ESXi host (the lab's -esx): read, PrepareForAccess skipped.
. "$(dirname "$0")/lib.sh"
need curl getfattr sgdisk mkfs.ext4 debugfs
PY=/usr/bin/python3
[ -x $PY ] || skip "/usr/bin/python3 is not installed"
start_lab -vms 3
[ -n "${LAB_NFC_PORT:-}" ] || skip "this lab has no NFC server"
cd "$WORK"
printf '%s\n' "$LAB_PASSWORD" >pw
chmod 600 pw
BASE="server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$WORK/pw,thumbprint=$LAB_THUMBPRINT_SHA256,nfchostport=$LAB_NFC_PORT,transports=nbdssl,tmpDirectory=$WORK/logs"
mkdir -p logs
MiB=1048576

state() { lab_ctl state >state.json && $PY -c "import json,sys; s=json.load(open('state.json')); print($1)"; }
tickets() { state "s['calls'].get('NfcRandomAccessOpenReadonly', 0)"; }
handles() { state "len(s['nfc'].get('handles') or [])"; }
relocate_disabled() { # MOREF: is RelocateVM_Task disabled on it?
	state "sum(1 for d in s.get('disabled_methods') or [] if d['entity']['Value'] == '$1' and d['method'] == 'RelocateVM_Task')"
}
vm_moref() { state "[v['moref'] for v in s['vms'] if v['name'] == '$1'][0]"; }
snapshot() { # MOREF NAME: CreateSnapshot_Task
	lab_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$1</_this><name>$(lab_xml_escape "$2")</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"
	local task
	task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
	[ "$(lab_task_wait "$task")" = success ] || fail "CreateSnapshot_Task $2"
}
remove_snapshot() { # SNAPSHOT-MOREF
	lab_soap "<RemoveSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachineSnapshot\">$1</_this><removeChildren>false</removeChildren></RemoveSnapshot_Task>"
	local task
	task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
	[ "$(lab_task_wait "$task")" = success ] || fail "RemoveSnapshot_Task $1"
}
lab_login >/dev/null
read -r VM0 VM1 VM2 <<<"$LAB_VMS"
M0=$(vm_moref "$VM0")
M1=$(vm_moref "$VM1")
M2=$(vm_moref "$VM2")

# --- VM0's first disk: a GPT with an ext4 holding a known file, written
# into the base flat file before any snapshot (as test-partitions.sh) ---
flat=$LAB_DATASTORE_DIR/$VM0/$VM0-flat.vmdk
[ -f "$flat" ] || fail "the lab VM's flat disk is not at $flat"
size=$(stat -c %s "$flat")
truncate -s "$size" img.raw
sgdisk -n 1:2048:+10M -t 1:8300 -c 1:"browse data" img.raw >/dev/null || fail "sgdisk"
mkdir -p tree
head -c 300000 /dev/urandom >tree/restore-me.bin
echo "hello from the snapshot" >tree/note.txt
mkfs.ext4 -q -F -b 1024 -d tree part.img 10M || fail "mkfs.ext4 -d"
dd if=part.img of=img.raw bs=512 seek=2048 conv=notrunc status=none
cp img.raw "$flat"

# --- Inventory: snapshots on VM0 (two, one with an unsafe name), VM1 (two
# of the same name); VM2 powered off, without snapshots ---
snapshot "$M0" "before"
# A guest write over the partition after "before": the running disk's
# file system is damaged, the snapshot's is not.
lab_ctl "write?vm=$VM0&disk=0&offset=$((1 * MiB))&length=$((10 * MiB))&pattern=0x5a" >/dev/null || fail "lab write"
snapshot "$M0" "nightly backup/2"
snapshot "$M1" "dup"
snapshot "$M1" "dup"
lab_soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$M2</_this></PowerOffVM_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "PowerOffVM_Task"
lab_ctl "reset?calls=1" >/dev/null

# --- Refused in this mode, each with its reason ---
mkdir -p m0
for o in rw snapshot=new snapshot=before scratch; do
	if "$VMDKFS" -o "$BASE,$o" m0 2>err; then fusermount3 -u m0; fail "$o: browsing mounted"; fi
	grep -q "browsing" err || fail "$o: $(cat err)"
done
echo "ok rw, snapshot=new, snapshot=, scratch refused: $(head -1 err)"

# --- The tree, with no disk opened ---
t0=$(date +%s)
mount_vmdkfs m -o "$BASE,inventory_ttl=2,idle_close=3,max_open_disks=2,open_wait=2"
ls -lR m >ls.txt || fail "ls -lR"
getfattr -R -d -m - m >xattrs.txt 2>&1 || fail "getfattr -R"
[ "$(tickets)" = 0 ] || fail "ls -lR / getfattr asked for $(tickets) NFC tickets"
[ "$(handles)" = 0 ] || fail "ls -lR opened a disk"
[ "$(ls m | sort | tr '\n' ' ')" = "$(printf '%s\n' $LAB_VMS | sort | tr '\n' ' ')" ] || fail "VM folders: $(ls m)"
[ "$(ls m/"$VM0")" = "$(printf 'before\nnightly_backup_2')" ] || fail "$VM0's folders: $(ls m/"$VM0")"
[ "$(ls m/"$VM1")" = "$(printf 'dup\ndup-2')" ] || fail "$VM1's folders: $(ls m/"$VM1")"
[ "$(ls m/"$VM2")" = current ] || fail "$VM2 (powered off): $(ls m/"$VM2")"
[ "$(ls m/"$VM0"/before)" = "$(printf 'Hard_disk_1.raw\nHard_disk_2.raw')" ] || fail "before: $(ls m/"$VM0"/before)"
d=m/$VM0/before/Hard_disk_1.raw
[ "$(stat -c %s "$d")" = "$size" ] || fail "size of $d"
xa() { getfattr --only-values -n "user.vmdkfs.$2" "$1" 2>/dev/null; }
[ "$(xa "$d" vm)" = "$M0" ] || fail "vm xattr"
[ "$(xa "$d" device_key)" = 2000 ] || fail "device_key xattr"
[ "$(xa "$d" capacity)" = "$size" ] || fail "capacity xattr"
[ "$(xa "$d" datastore_path)" = "[$LAB_DATASTORE] $VM0/$VM0.vmdk" ] || fail "datastore_path: $(xa "$d" datastore_path)"
[ -n "$(xa "$d" change_id)" ] || fail "change_id xattr"
snap_before=$(xa "$d" snapshot)
[ -n "$snap_before" ] || fail "snapshot xattr"
[ -z "$(xa "$d" transport)" ] || fail "a transport before any open"
[ -z "$(xa m/"$VM2"/current/Hard_disk_1.raw snapshot)" ] || fail "current/ has a snapshot xattr"
[ "$(tickets)" = 0 ] || fail "getfattr opened a disk"
echo "ok the tree: $(grep -c '\.raw$' ls.txt) flat files, no ticket asked"

# --- A file restored from a partition of a snapshot disk over nbdssl ---
# Not listed before the disk was opened; its name, looked up, opens the
# disk to read the table.
p=m/$VM0/before/Hard_disk_1-p1.raw
[ -f "$p" ] || fail "no partition file when looked up: $(ls m/"$VM0"/before)"
[ "$(tickets)" = 1 ] || fail "the lookup asked for $(tickets) tickets"
[ "$(ls -U m/"$VM0"/before | tr '\n' ' ')" = "Hard_disk_1.raw Hard_disk_2.raw Hard_disk_1-p1.raw " ] || fail "listed after the open: $(ls m/"$VM0"/before)"
[ "$(xa "$d" transport)" = nbdssl ] || fail "transport after open: $(xa "$d" transport)"
[ "$(xa "$p" transport)" = nbdssl ] || fail "partition's transport after open: $(xa "$p" transport)"
head -c 512 "$d" >/dev/null || fail "open $d"
[ "$(tickets)" = 1 ] || fail "a second open of an open disk asked for a ticket"
[ "$(relocate_disabled "$M0")" = 1 ] || fail "PrepareForAccess: RelocateVM_Task not disabled on $M0"
[ "$(xa "$p" partition.name)" = "browse data" ] || fail "partition name"
[ "$(stat -c %s "$p")" = $((10 * MiB)) ] || fail "partition size"
debugfs -R "dump /restore-me.bin $WORK/restored.bin" "$p" 2>/dev/null
same restored.bin tree/restore-me.bin "restore-me.bin from the snapshot's partition"
debugfs -R "cat /note.txt" "$p" 2>/dev/null | grep -q "hello from the snapshot" || fail "note.txt"
# The running disk has the guest's write there: its partition is no ext4.
c=m/$VM0/nightly_backup_2/Hard_disk_1.raw
cmp -s -n $MiB -i $((1 * MiB)):0 "$c" <(head -c $MiB /dev/zero | tr '\0' 'Z') || fail "the later snapshot lacks the guest write"
echo "ok a file restored from $p over nbdssl (the snapshot's bytes, not the later write)"

# --- Idle close and EndAccess ---
sleep 1
[ "$(handles)" -ge 1 ] || fail "the disks closed before idle_close"
for i in $(seq 100); do [ "$(handles)" = 0 ] && break; sleep 0.1; done
[ "$(handles)" = 0 ] || fail "no idle close after idle_close=3"
[ "$(relocate_disabled "$M0")" = 0 ] || fail "EndAccess: RelocateVM_Task still disabled on $M0"
grep -q "disk closed (idle for idle_close=3 s)" logs/vmdkfs-*.log || fail "no idle-close log line"
echo "ok idle close after 3 s, then EndAccess"

# --- max_open_disks=2: a third in use waits open_wait, then EBUSY ---
exec 3<m/"$VM1"/dup/Hard_disk_1.raw 4<m/"$VM1"/dup-2/Hard_disk_1.raw
t1=$(date +%s.%N)
if head -c 1 m/"$VM2"/current/Hard_disk_1.raw >/dev/null 2>err; then fail "a third disk opened past max_open_disks=2"; fi
t2=$(date +%s.%N)
grep -q "Device or resource busy" err || fail "third open: $(cat err)"
$PY -c "import sys; sys.exit(0 if 1.5 <= $t2 - $t1 <= 8 else 1)" || fail "EBUSY after $(echo "$t2 - $t1" | bc) s, not open_wait=2"
grep -q "max_open_disks=2 disks are open and in use" logs/vmdkfs-*.log || fail "no log line naming max_open_disks"
# One closed (idle now): the third opens at once, the idle one closed for it.
exec 3<&-
head -c 4096 m/"$VM2"/current/Hard_disk_1.raw | cmp -s - <(head -c 4096 /dev/zero | tr '\0' '1') || fail "current/ of $VM2: wrong bytes"
grep -q "disk closed (room for another disk)" logs/vmdkfs-*.log || fail "the idle disk was not closed to make room"
exec 4<&-
echo "ok max_open_disks: EBUSY after open_wait, an idle disk closed to make room"

# --- A snapshot removed while browsed: ENOENT after the TTL ---
gone=$(xa m/"$VM1"/dup-2/Hard_disk_1.raw snapshot)
remove_snapshot "$gone"
sleep 3.2
if ls m/"$VM1"/dup-2 >/dev/null 2>err; then fail "a removed snapshot is still listed after inventory_ttl"; fi
grep -q "No such file" err || fail "removed snapshot: $(cat err)"
[ "$(ls m/"$VM1")" = dup ] || fail "$VM1 after the removal: $(ls m/"$VM1")"
if stat m/"$VM1"/dup-2/Hard_disk_1.raw >/dev/null 2>&1; then fail "a removed snapshot's disk"; fi
echo "ok a removed snapshot: ENOENT after inventory_ttl"
umount_vmdkfs m

# --- Inside the TTL, an open asks the inventory: ENOENT, never stale ---
mount_vmdkfs m -o "$BASE,inventory_ttl=300,vms=*VM0"
[ "$(ls m)" = "$VM0" ] || fail "vms=*VM0: $(ls m)"
ls m/"$VM0"/nightly_backup_2 >/dev/null
remove_snapshot "$(xa m/"$VM0"/nightly_backup_2/Hard_disk_1.raw snapshot)"
if head -c 1 m/"$VM0"/nightly_backup_2/Hard_disk_1.raw >/dev/null 2>err; then fail "opened a removed snapshot's disk"; fi
grep -q "No such file" err || fail "removed inside the TTL: $(cat err)"
sleep 1.2
[ "$(ls m/"$VM0")" = before ] || fail "$VM0 after the removal: $(ls m/"$VM0")"
umount_vmdkfs m
echo "ok vms=GLOB; a snapshot removed inside the TTL: ENOENT at open"
lab_ctl "reset" >/dev/null

# --- A direct ESXi host (the lab's -esx): no DisableMethods there, said
# once at mount; prepare_access=required refused at mount ---
lab_stop
lab_start "$WORK/lab-esx" -esx -vms 2 || fail "the -esx lab did not start"
printf '%s\n' "$LAB_PASSWORD" >pw
EBASE="server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$WORK/pw,thumbprint=$LAB_THUMBPRINT_SHA256,nfchostport=$LAB_NFC_PORT,transports=nbdssl,tmpDirectory=$WORK/logs-esx"
mkdir -p logs-esx
lab_login >/dev/null
snapshot "$LAB_VM_MOREF" "esx snap"
if "$VMDKFS" -o "$EBASE,prepare_access=required" m0 2>err; then fusermount3 -u m0; fail "prepare_access=required on ESXi mounted"; fi
grep -q "direct ESXi connection" err || fail "required on ESXi: $(cat err)"
mount_vmdkfs m -o "$EBASE"
e=m/$LAB_VM/esx_snap/Hard_disk_1.raw
head -c $MiB "$e" | cmp -s - <(head -c $MiB /dev/zero | tr '\0' '\021') || fail "ESXi: $e: wrong bytes"
[ "$(cat logs-esx/vmdkfs-*.log | grep -c "PrepareForAccess")" = 1 ] || fail "ESXi: PrepareForAccess said more than once"
umount_vmdkfs m
echo "ok a direct ESXi host: read, PrepareForAccess skipped (said once), required refused"
echo "all browse tests passed in $(($(date +%s) - t0)) s"

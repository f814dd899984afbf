#!/bin/bash
# The hotadd transport: the snapshot's disk attached to the proxy VM with
# ReconfigVM_Task, found as a SCSI disk in sysfs, read with O_DIRECT, and
# always released (SCSI delete, then ReconfigVM_Task remove).
#
# SIMULATED (tests/lab/hotadd.go; this kernel has no SCSI layer and
# vmdkfs runs in no VM): the lab's third VM is the proxy; this machine is
# presented as it by a DMI folder under a test sysfs root ($WORK/sys:
# sys_vendor, product_uuid byte-swapped); the SCSI hosts, their PCI paths
# and scan files, and each SCSI device H:0:U:0 (block/loopN/size, delete)
# are files the lab lays out after vmdkfs writes a scan; the disk's chain
# is resolved by qemu-storage-daemon (a FUSE export of qemu's vmdk driver,
# read-only for independent_nonpersistent) under a real loop device, the
# node $WORK/dev/loopN a symlink to it.  A decoy disk of the same size and
# unit on another (ata) host is told apart only by the host's PCI slot.
# The lab refuses a remove before the SCSI delete.  Every byte read is
# compared with qemu-img convert of the chain in the datastore folder.
. "$(dirname "$0")/lib.sh"
need qemu-img getfattr losetup curl
command -v qemu-storage-daemon >/dev/null 2>&1 ||
	skip "qemu-storage-daemon is not installed (Debian package qemu-system-common): it resolves the chain in the lab's simulated SCSI disk"
[ "$(id -u)" = 0 ] || skip "loop devices need root"
l=$(losetup -f 2>/dev/null) && [ -n "$l" ] || skip "no free loop device here"
start_lab -vms 3
trap 'lab_ctl "hotadd?off=1" >/dev/null 2>&1; lab_stop; cleanup' EXIT
cd "$WORK"
printf '%s\n' "$LAB_PASSWORD" >pw
chmod 600 pw
base="server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$WORK/pw,thumbprint=$LAB_THUMBPRINT_SHA256,nfchostport=$LAB_NFC_PORT,tmpDirectory=$WORK,hotadd_sysfs=$WORK/sys,hotadd_dev=$WORK/dev,hotadd_timeout=10"
vm0=$LAB_VM
vm1=$(echo "$LAB_VMS" | cut -d' ' -f2)
proxy=$(echo "$LAB_VMS" | cut -d' ' -f3)
lab_ctl "hotadd?proxy=$proxy&sysfs=$WORK/sys&dev=$WORK/dev" | grep -q '"ok": true' || fail "lab: /lab/hotadd?proxy="
py() { /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin); $1"; }
hstate() { lab_ctl state | py "h=s['hotadd']; print($1)"; }
proxy_moref=$(lab_ctl state | py "print([v['moref'] for v in s['vms'] if v['name']=='$proxy'][0])")
# the proxy's disks, less the placeholders of ?fill=
proxy_disks() { lab_ctl state | py "print(len([d for d in [v for v in s['vms'] if v['name']=='$proxy'][0]['disks'] if not d['label'].startswith('Hard disk filler')]))"; }
own=$(proxy_disks)
vmdkfs_log() { cat vmdkfs-*.log 2>/dev/null; }

snap() {
	lab_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this><name>$1</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"
	task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
	[ "$(lab_task_wait "$task")" = success ] || fail "CreateSnapshot_Task $1"
}
lab_login
# VM 0 stays powered on: its snapshots are read while it runs.
[ "$(lab_ctl state | py "print([v['power_state'] for v in s['vms'] if v['name']=='$vm0'][0])")" = poweredOn ] || fail "$vm0 is not powered on"
snap s1
lab_ctl "write?vm=$vm0&disk=0&offset=1048576&length=3145728&pattern=0x5a" >/dev/null || fail "guest write"
lab_ctl "write?vm=$vm0&disk=1&offset=4194304&length=65536&pattern=0x77" >/dev/null || fail "guest write"
snap s2
lab_ctl "write?vm=$vm0&disk=0&offset=0&length=65536&pattern=0x99" >/dev/null || fail "guest write"

# released: no disk of the test left on the proxy, none refused
released() {
	[ "$(proxy_disks)" = "$own" ] || fail "$1: $(($(proxy_disks) - own)) disks left on the proxy VM"
	[ "$(hstate "len(h['disks'])")" = 0 ] || fail "$1: the lab still has SCSI disks: $(hstate "h['disks']")"
	[ "$(hstate "h['remove_before_delete']")" = 0 ] || fail "$1: a disk was removed before its SCSI delete: $(hstate "h['log']")"
}

# --- A powered-on VM's snapshots, every disk, as qemu-img reads them ---
for s in s2 s1; do
	rm -f vmdkfs-*.log
	mount_vmdkfs m -o "$base,vm=$vm0,snapshot=$s,transports=hotadd"
	n=0
	for f in m/*/Hard_disk_*.raw; do
		[ "$(getfattr --only-values -n user.vmdkfs.transport "$f")" = hotadd ] || fail "$f: transport"
		lunx=$(getfattr --only-values -n user.vmdkfs.lun "$f")
		case $lunx in "$WORK/dev/loop"*" (SCSI 2:0:"[0-9]*":0) on proxy VM $proxy ($proxy_moref)") ;; *) fail "$f: user.vmdkfs.lun is \"$lunx\"" ;; esac
		qemu-img convert -f vmdk -O raw "$(local_of "$f")" want.raw
		same "$f" want.raw "hotadd read of $f ($s)"
		n=$((n + 1))
	done
	[ $n = 2 ] || fail "snapshot $s: $n disks"
	[ "$(hstate "len(h['disks'])")" = 2 ] || fail "the lab sees $(hstate "len(h['disks'])") disks attached"
	[ "$(hstate "sorted(set(d['disk_mode'] for d in h['disks']))")" = "['independent_nonpersistent']" ] || fail "disk modes $(hstate "[d['disk_mode'] for d in h['disks']]")"
	hstate "[d['label'] for d in h['disks']]" | grep -q "vmdkfs hotadd $LAB_VM_MOREF snapshot-" || fail "labels: $(hstate "[d['label'] for d in h['disks']]")"
	hstate "[d['decoy'] for d in h['disks']]" | grep -q "1:0:" || fail "no decoy disk was laid out"
	"$VMDKFS" status m >status.txt || fail "vmdkfs status"
	grep -q "Hard_disk_1.raw  *hotadd .*(LUN $WORK/dev/loop[0-9]* (SCSI 2:0:[0-9]*:0) on proxy VM $proxy" status.txt || fail "status: $(cat status.txt)"
	umount_vmdkfs m
	released "unmount of $s"
	vmdkfs_log | grep -q "hotadd: SCSI device .* deleted" || fail "no delete in the log"
	echo "ok snapshot $s of the powered-on $vm0 over hotadd: $n disks as qemu-img reads them, released at unmount"
done
[ "$(hstate "h['deletes']")" -ge 4 ] || fail "deletes: $(hstate "h['deletes']")"

# --- The nbdkit plugin over hotadd: the same options as key=value ---
if command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null && [ -f "$PLUGIN" ]; then
	IFS=, read -ra kv <<<"$base"
	s2=$(lab_ctl state | py "v=[v for v in s['vms'] if v['name']=='$vm0'][0]; print([x['moref'] for x in v['snapshots'] if x['name']=='s2'][0])")
	s2chain=$(lab_ctl state | py "v=[v for v in s['vms'] if v['name']=='$vm0'][0]; print([x for x in v['snapshots'] if x['name']=='s2'][0]['disks'][0]['local_chain'][0])")
	file0=$(lab_ctl state | py "v=[v for v in s['vms'] if v['name']=='$vm0'][0]; print([x for x in v['snapshots'] if x['name']=='s2'][0]['disks'][0]['file'])")
	qemu-img convert -U -f vmdk -O raw "$s2chain" want.raw
	nbdkit_start hot -r "${kv[@]}" vm="$vm0" snapshot="$s2" file="$file0" transports=hotadd
	[ "$(hstate "len(h['disks'])")" = 1 ] || fail "nbdkit: the lab sees $(hstate "len(h['disks'])") disks attached"
	qemu-img convert -f raw -O raw "$NBD_URI" hot.raw || fail "nbdkit over hotadd: qemu-img convert"
	same hot.raw want.raw "nbdkit over hotadd: qemu-img convert"
	nbdcopy --connections=4 "$NBD_URI" hot2.raw || fail "nbdkit over hotadd: nbdcopy"
	same hot2.raw want.raw "nbdkit over hotadd: nbdcopy"
	nbdkit_stop
	released "nbdkit's end"
	echo "ok the nbdkit plugin over hotadd: s2's disk as qemu-img reads its chain (qemu-img convert, nbdcopy), released when nbdkit ends"
else
	echo "SKIP the nbdkit plugin over hotadd: nbdkit, nbdcopy or $PLUGIN missing"
fi

# --- Unit 7 is the controller's: units 1-6 taken, the disks go to 8, 9 ---
lab_ctl "hotadd?fill=1,2,3,4,5,6" >/dev/null || fail "fill"
mount_vmdkfs m -o "$base,vm=$vm0,snapshot=s1,transports=hotadd"
units=$(for f in m/*/Hard_disk_*.raw; do getfattr --only-values -n user.vmdkfs.lun "$f" | sed 's/.*SCSI 2:0:\([0-9]*\):0.*/\1/'; echo; done | sort -n | tr '\n' ' ')
[ "$units" = "8 9 " ] || fail "units with 1-6 taken: $units"
f=$(ls -d m/*/Hard_disk_1.raw)
qemu-img convert -f vmdk -O raw "$(local_of "$f")" want.raw
same "$f" want.raw "hotadd read at unit 8"
umount_vmdkfs m
released "unmount (units 8, 9)"
echo "ok unit 7 skipped: units $units"

# --- A failed mount releases what it attached: one unit left (15) ---
lab_ctl "hotadd?fill=8,9,10,11,12,13,14" >/dev/null || fail "fill"
rm -f vmdkfs-*.log
if "$VMDKFS" -o "$base,vm=$vm0,snapshot=s1,transports=hotadd" m 2>err.txt; then
	MOUNTS="$MOUNTS $WORK/m"
	fail "mounted with one free unit for two disks"
fi
grep -q "has a free unit" err.txt || fail "failed mount: $(cat err.txt)"
released "failed mount"
vmdkfs_log | grep -q "SCSI 2:0:15:0\|unit 15" || fail "the first disk did not go to unit 15: $(vmdkfs_log | grep hotadd | head -3)"
echo "ok a failed mount (second disk: no unit) released the first disk (unit 15)"

# --- A full controller: the mode list moves on ---
lab_ctl "hotadd?fill=15" >/dev/null || fail "fill"
rm -f vmdkfs-*.log
mount_vmdkfs m -o "$base,vm=$vm0,snapshot=s1,transports=hotadd:nbdssl"
[ "$(getfattr --only-values -n user.vmdkfs.transport m/*/Hard_disk_1.raw)" = nbdssl ] || fail "full controller: not nbdssl"
umount_vmdkfs m
vmdkfs_log | grep -q "no SCSI controller of the proxy VM $proxy_moref has a free unit" || fail "full controller: the log does not say why: $(vmdkfs_log | grep hotadd | head -3)"
lab_ctl "hotadd?unfill=1" >/dev/null
released "full controller"
echo "ok a full controller: hotadd unusable (says why), nbdssl takes over"

# --- The proxy is the VM read: refused; not a VMware machine: refused ---
rm -f vmdkfs-*.log
if "$VMDKFS" -o "$base,vm=$proxy,snapshot=new,transports=hotadd" m 2>err.txt; then
	MOUNTS="$MOUNTS $WORK/m"
	fail "the proxy mounted its own disks"
fi
grep -q "the proxy VM $proxy_moref is the VM being read" err.txt || fail "proxy = VM: $(cat err.txt)"
[ "$(nsnaps vmdkfs-)" = 0 ] || fail "proxy = VM: the temporary snapshot stayed"
cp sys/class/dmi/id/sys_vendor vendor.save
echo "QEMU" >sys/class/dmi/id/sys_vendor
mount_vmdkfs m -o "$base,vm=$vm0,snapshot=s1,transports=hotadd:nbdssl"
[ "$(getfattr --only-values -n user.vmdkfs.transport m/*/Hard_disk_1.raw)" = nbdssl ] || fail "not VMware: not nbdssl"
umount_vmdkfs m
vmdkfs_log | grep -q 'not a VMware VM (.*says "QEMU")' || fail "not VMware: the log does not say why"
cp vendor.save sys/class/dmi/id/sys_vendor
# proxy_vm= names it without DMI (the DMI UUID is not used then)
echo 00000000-0000-0000-0000-000000000000 >uuid.save
cp sys/class/dmi/id/product_uuid uuid.save
echo 00000000-0000-0000-0000-000000000000 >sys/class/dmi/id/product_uuid
mount_vmdkfs m -o "$base,vm=$vm0,snapshot=s1,transports=hotadd,proxy_vm=moid=$proxy_moref"
[ "$(getfattr --only-values -n user.vmdkfs.transport m/*/Hard_disk_1.raw)" = hotadd ] || fail "proxy_vm=: not hotadd"
umount_vmdkfs m
cp uuid.save sys/class/dmi/id/product_uuid
released "proxy_vm="
echo "ok the proxy reading itself refused; a non-VMware machine refused; proxy_vm= overrides DMI"

# --- SIGTERM: released ---
mount_vmdkfs m -o "$base,vm=$vm0,snapshot=s2,transports=hotadd"
pids=$(vmdkfs_pids m)
[ "$(hstate "len(h['disks'])")" = 2 ] || fail "SIGTERM: not attached"
kill -TERM $pids
for i in $(seq 100); do
	[ "$(proxy_disks)" = "$own" ] && [ "$(hstate "len(h['disks'])")" = 0 ] && break
	sleep 0.1
done
fusermount3 -u m 2>/dev/null || true
MOUNTS=$(echo "$MOUNTS" | sed "s# $WORK/m##")
released "SIGTERM"
echo "ok SIGTERM: both disks released"

# --- A restore (rw, powered-off VM): persistent mode, read back ---
vm1_moref=$(lab_ctl state | py "print([v['moref'] for v in s['vms'] if v['name']=='$vm1'][0])")
lab_soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm1_moref</_this></PowerOffVM_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "PowerOffVM_Task"
head -c 300000 /dev/urandom >restore.bin
mount_vmdkfs m -o "$base,vm=$vm1,rw,transports=hotadd"
f=m/current/Hard_disk_1.raw
[ "$(getfattr --only-values -n user.vmdkfs.transport "$f")" = hotadd ] || fail "rw: not hotadd"
[ "$(hstate "[d['disk_mode'] for d in h['disks']]")" = "['persistent']" ] || fail "rw: disk mode $(hstate "[d['disk_mode'] for d in h['disks']]")"
dd if=restore.bin of="$f" bs=1000 seek=777 conv=notrunc,fsync status=none || fail "rw: write"
umount_vmdkfs m
released "rw"
cur=$(lab_ctl state | py "print([v for v in s['vms'] if v['name']=='$vm1'][0]['disks'][0]['local_chain'][0])")
qemu-img convert -f vmdk -O raw "$cur" back.raw
cmp -s <(tail -c +$((777 * 1000 + 1)) back.raw | head -c 300000) restore.bin || fail "rw: qemu-img does not read the restored bytes"
cmp -s <(head -c 777000 back.raw) <(head -c 777000 "$(ls "$LAB_DATASTORE_DIR/$vm1/"*-flat.vmdk | head -1)") || fail "rw: bytes before the write changed"
echo "ok rw restore over hotadd (persistent), read back by qemu-img"

# --- kill -9 of a hotadd mount, then vmdkfs cleanup ---
mount_vmdkfs m -o "$base,vm=$vm0,snapshot=new,transports=hotadd"
[ "$(hstate "len(h['disks'])")" = 2 ] || fail "kill: not attached"
[ "$(nsnaps vmdkfs-)" = 1 ] || fail "kill: no temporary snapshot"
kill -9 $(vmdkfs_pids m)
sleep 0.2
fusermount3 -u m 2>/dev/null || umount -l m 2>/dev/null || true
MOUNTS=$(echo "$MOUNTS" | sed "s# $WORK/m##")
[ "$(($(proxy_disks) - own))" = 2 ] || fail "kill: $(($(proxy_disks) - own)) disks on the proxy"
"$VMDKFS" cleanup -o "$base" >cleanup.txt 2>&1 || fail "vmdkfs cleanup: $(cat cleanup.txt)"
grep -q "^cleanup: 4 cleaned, 0 remaining" cleanup.txt || fail "cleanup: $(cat cleanup.txt)"
[ "$(grep -c "^detached .* from the proxy VM $proxy_moref" cleanup.txt)" = 2 ] || fail "cleanup: $(cat cleanup.txt)"
released "cleanup"
[ "$(nsnaps vmdkfs-)" = 0 ] || fail "cleanup: vmdkfs-* snapshots left"
[ "$(lab_ctl state | py "print(len(s['disabled_methods']))")" = 0 ] || fail "cleanup: disabled methods left"
"$VMDKFS" cleanup -o "$base" >cleanup.txt 2>&1 || fail "second cleanup: $(cat cleanup.txt)"
grep -q "^cleanup: 0 cleaned, 0 remaining" cleanup.txt || fail "second cleanup: $(cat cleanup.txt)"
echo "ok kill -9, then vmdkfs cleanup: 2 disks detached (SCSI delete first), the snapshot removed, RelocateVM_Task enabled; 0 left"

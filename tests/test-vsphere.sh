#!/bin/bash
# vSphere mounts against the lab (tests/lab: govmomi's vcsim, real; with
# simulated parts marked there: real delta disks for snapshots,
# DisableMethods/EnableMethods, session expiry, fault injection).  The data
# path is the file transport over the lab's datastore folder, so every disk
# read is checked against qemu-img's view of the same chain.
. "$(dirname "$0")/lib.sh"
need qemu-img curl getfattr
start_lab
lab_login >/dev/null

cd "$WORK"
printf '%s\n' "$LAB_PASSWORD" >pw
chmod 600 pw
base="server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$WORK/pw,datastore.$LAB_DATASTORE=$LAB_DATASTORE_DIR"
pinned="$base,thumbprint=$LAB_THUMBPRINT_SHA256"
VM=$LAB_VM
state() { lab_ctl state; }
py() { /usr/bin/python3 -c "$@"; }
# How many methods are disabled in the lab (nsnaps, in lib.sh, counts
# snapshots).
ndisabled() { state | py "import json,sys; s=json.load(sys.stdin); print(len(s.get('disabled_methods') or []))"; }
# The local file behind a datastore path xattr.
# The daemon tidies up (snapshot removal, EndAccess) after the unmount
# returns: wait up to 10 s for no temporary snapshot and no disabled method.
settled() {
	local i
	for i in $(seq 100); do
		[ "$(nsnaps vmdkfs-)" = "${1:-0}" ] && [ "$(ndisabled)" = "${2:-0}" ] && return 0
		sleep 0.1
	done
	return 1
}
expect_fail() { # WANT ARGS...: vmdkfs must fail with WANT in its message
	local want=$1
	shift
	if "$VMDKFS" "$@" 2>err; then fail "vmdkfs $* succeeded"; fi
	grep -q -- "$want" err || fail "vmdkfs $*: wanted \"$want\", got: $(cat err)"
}
mkdir -p m0

# --- Identity and credentials ---
printf 'wrong\n' >badpw
chmod 600 badpw
expect_fail "InvalidLogin" -o "$pinned,password_file=$WORK/badpw,vm=$VM,snapshot=new" m0
expect_fail "$LAB_THUMBPRINT_SHA256" -o "$base,thumbprint=$(printf '%064d' 0),vm=$VM,snapshot=new" m0
grep -q "not trusted" err || fail "thumbprint mismatch message: $(cat err)"
# No pin and no CA that knows the lab's certificate: refused, showing it.
expect_fail "$LAB_THUMBPRINT_SHA256" -o "$base,vm=$VM,snapshot=new" m0
chmod 644 pw
expect_fail "readable by group or others" -o "$pinned,vm=$VM,snapshot=new" m0
chmod 600 pw
echo "ok wrong password, wrong thumbprint, unknown CA, open password file"

# --- Unknown VM and snapshot ---
expect_fail 'no virtual machine is named "no-such-vm"' -o "$pinned,vm=no-such-vm,snapshot=new" m0
expect_fail 'no virtual machine has the moref "vm-999"' -o "$pinned,vm=moid=vm-999,snapshot=new" m0
expect_fail 'has no snapshot "nope"' -o "$pinned,vm=$VM,snapshot=nope" m0
[ "$(ndisabled)" = 0 ] || fail "a failed mount left methods disabled"
echo "ok unknown VM and snapshot"

# --- snapshot=new: PrepareForAccess, temporary snapshot, EndAccess ---
# Also: a CA bundle instead of a pin, and the VM by inventory path.
mount_vmdkfs m1 -o "$base,cafile=$LAB_CERT,vm=path=$LAB_DATACENTER/vm/$VM,snapshot=new"
snapdir=$(ls m1)
case $snapdir in vmdkfs-*) ;; *) fail "temporary snapshot folder: $snapdir" ;; esac
[ "$(ls m1/"$snapdir")" = "$(printf 'Hard_disk_1.raw\nHard_disk_2.raw')" ] || fail "disks: $(ls m1/"$snapdir")"
[ "$(nsnaps vmdkfs-)" = 1 ] || fail "no temporary snapshot on the server"
state | py "import json,sys; s=json.load(sys.stdin); d=s['disabled_methods']; assert any(x['method']=='RelocateVM_Task' and x['sourceId']=='vmdkfs' for x in d), d" ||
	fail "PrepareForAccess did not disable RelocateVM_Task"
for d in 1 2; do
	f=m1/$snapdir/Hard_disk_$d.raw
	qemu-img convert -f vmdk -O raw "$(local_of "$f")" want$d.raw
	same "$f" want$d.raw "snapshot=new disk $d vs qemu-img"
done
[ "$(getfattr --only-values -n user.vmdkfs.transport m1/"$snapdir"/Hard_disk_1.raw)" = file ] || fail "transport xattr"
[ "$(getfattr --only-values -n user.vmdkfs.device_key m1/"$snapdir"/Hard_disk_2.raw)" = 2001 ] || fail "device key xattr"
getfattr --only-values -n user.vmdkfs.change_id m1/"$snapdir"/Hard_disk_1.raw | grep -q . || fail "changeId xattr"
# The guest writes on: the snapshot's view does not change.
lab_ctl "write?vm=$VM&disk=0&offset=0&length=65536&pattern=0xee" >/dev/null
same m1/"$snapdir"/Hard_disk_1.raw want1.raw "snapshot after a guest write"
umount_vmdkfs m1
settled || fail "temporary snapshot not removed, or methods not re-enabled, at unmount: $(nsnaps vmdkfs-) $(ndisabled)"
echo "ok snapshot=new, PrepareForAccess/EndAccess, CA bundle, inventory path"

# --- An existing snapshot, by name and by moref; SHA-1 pin ---
lab_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this><name>nightly</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "CreateSnapshot_Task"
snapref=$(state | py "import json,sys; s=json.load(sys.stdin); print([x['moref'] for v in s['vms'] for x in v.get('snapshots') or [] if x['name']=='nightly'][0])")
lab_ctl "write?vm=$VM&disk=0&offset=1048576&length=65536&pattern=0x99" >/dev/null
mount_vmdkfs m2 -o "$base,thumbprint=$LAB_THUMBPRINT_SHA1,vm=$VM,snapshot=nightly"
qemu-img convert -f vmdk -O raw "$(local_of m2/nightly/Hard_disk_1.raw)" nightly.raw
same m2/nightly/Hard_disk_1.raw nightly.raw "snapshot by name"
# The guest's write after the snapshot (0x99 at 1 MiB) is not in it.
head -c $((1048576 + 65536)) m2/nightly/Hard_disk_1.raw | tail -c 65536 >at1m
[ "$(tr -d '\231' <at1m | wc -c)" -gt 0 ] || fail "the snapshot shows the guest's later write"
umount_vmdkfs m2
mount_vmdkfs m2 -o "$pinned,vm=moid=$LAB_VM_MOREF,snapshot=$snapref"
same m2/nightly/Hard_disk_1.raw nightly.raw "snapshot by moref"
umount_vmdkfs m2
# Every snapshot at once: a folder each (two named "nightly": unique names).
lab_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this><name>nightly</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "second CreateSnapshot_Task"
mount_vmdkfs m2 -o "$pinned,vm=$VM,snapshot=all"
[ "$(ls m2 | tr '\n' ' ')" = "nightly nightly-2 " ] || fail "snapshot=all folders: $(ls m2)"
same m2/nightly/Hard_disk_1.raw nightly.raw "snapshot=all, first"
qemu-img convert -f vmdk -O raw "$(local_of m2/nightly-2/Hard_disk_1.raw)" nightly2.raw
same m2/nightly-2/Hard_disk_1.raw nightly2.raw "snapshot=all, second"
cmp -s nightly.raw nightly2.raw && fail "the two snapshots should differ (a guest write lies between them)"
umount_vmdkfs m2
expect_fail "has 2 snapshots named \"nightly\"" -o "$pinned,vm=$VM,snapshot=nightly" m0
snap2=$(state | py "import json,sys; s=json.load(sys.stdin); print([x['moref'] for v in s['vms'] for x in v.get('snapshots') or [] if x['name']=='nightly' and x['moref']!='$snapref'][0])")
lab_soap "<RemoveSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachineSnapshot\">$snap2</_this><removeChildren>false</removeChildren></RemoveSnapshot_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "RemoveSnapshot_Task"
echo "ok existing snapshot by name and moref, SHA-1 pin, snapshot=all"

# --- rw is refused for snapshots and for a powered-on VM ---
expect_fail "writes only the current disks of a powered-off VM" -o "$pinned,vm=$VM,snapshot=nightly,rw" m0
expect_fail "give snapshot=NAME or snapshot=new" -o "$pinned,vm=$VM" m0
expect_fail "writes only the disks of a powered-off VM" -o "$pinned,vm=$VM,rw" m0
echo "ok rw and powered-on refusals"

# --- PrepareForAccess while the method is already disabled ---
dis() { lab_soap "<$1 xmlns=\"urn:internalvim25\"><_this type=\"AuthorizationManager\">$LAB_AUTHZ</_this><entity type=\"VirtualMachine\">$LAB_VM_MOREF</entity><method>RelocateVM_Task</method><sourceId>vmdkfs</sourceId></$1>"; }
dis DisableMethods
[ "$LAB_HTTP" = 200 ] || fail "DisableMethods: HTTP $LAB_HTTP"
# (5 s: two tries after the first, so that a slow machine, or a
# sanitizer build, still gets to a retry past the progress's first second)
expect_fail "still disabled" -o "$pinned,vm=$VM,snapshot=new,prepare_access_timeout=5" m0
# The wait shows progress (stderr is no terminal here: a line every 5 s),
# and -o quiet silences it.
grep -q "PrepareForAccess: $LAB_VM_MOREF is held by another program; retrying" err ||
	fail "no progress line while PrepareForAccess waits: $(cat err)"
expect_fail "still disabled" -o "$pinned,vm=$VM,snapshot=new,prepare_access_timeout=3,quiet" m0
grep -q "retrying" err && fail "-o quiet still printed progress: $(cat err)"
[ "$(nsnaps vmdkfs-)" = 0 ] || fail "a snapshot was taken although PrepareForAccess failed"
(sleep 1.5; dis EnableMethods) &
enabler=$!
mount_vmdkfs m3 -o "$pinned,vm=$VM,snapshot=new,prepare_access_timeout=30"
wait $enabler
umount_vmdkfs m3
settled || fail "methods left disabled"
echo "ok PrepareForAccess retried while already disabled"

# --- Two VMs at once; session expiry mid-mount ---
VM2=${LAB_VMS##* }
mount_vmdkfs m4 -o "$pinned,vm=$VM,snapshot=new"
mount_vmdkfs m5 -o "$pinned,vm=$VM2,snapshot=new"
[ "$(nsnaps vmdkfs-)" = 2 ] || fail "two temporary snapshots expected"
f=$(ls -d m5/*/Hard_disk_1.raw)
qemu-img convert -f vmdk -O raw "$(local_of "$f")" vm2.raw
same "$f" vm2.raw "second VM"
lab_ctl expire >/dev/null
umount_vmdkfs m4
umount_vmdkfs m5
settled || fail "after session expiry, snapshots or disabled methods left: $(nsnaps vmdkfs-) $(ndisabled)"
echo "ok two VMs at once, session expiry mid-mount"

# --- Other credentials, the identity string, lookups, logs ---
mkdir -p logs
VMDKFS_PASSWORD=$LAB_PASSWORD mount_vmdkfs m8 -o "server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,thumbprint=$LAB_THUMBPRINT_SHA256,datastore.$LAB_DATASTORE=$LAB_DATASTORE_DIR,vm=$VM,snapshot=new,identity=nightly backup job 7,tmpDirectory=$WORK/logs,vixDiskLib.transport.LogLevel=6"
state | py "import json,sys; s=json.load(sys.stdin); d=s['disabled_methods']; assert d and d[0]['reasonId']=='nightly backup job 7', d" ||
	fail "the identity string is not the DisableMethods reason"
umount_vmdkfs m8
settled || fail "identity mount left state"
grep -q "SOAP RetrievePropertiesEx request" logs/vmdkfs-*.log || fail "LogLevel 6 logged no SOAP"
if grep -rqF "$LAB_PASSWORD" logs; then fail "the password is in the log"; fi
# An existing session's cookie, from a private config file.
lab_login >/dev/null
cookie=$(awk '$6 == "vmware_soap_session" { print $7 }' "$LAB_COOKIES")
[ -n "$cookie" ] || fail "no session cookie from the lab"
printf 'cookie=%s\n' "$cookie" >cookie.conf
chmod 644 cookie.conf
expect_fail "readable by group or others" -o "config=$WORK/cookie.conf,server=$LAB_HOST,port=$LAB_PORT,thumbprint=$LAB_THUMBPRINT_SHA256,vm=$VM,snapshot=nightly,datastore.$LAB_DATASTORE=$LAB_DATASTORE_DIR" m0
chmod 600 cookie.conf
mount_vmdkfs m8 -o "config=$WORK/cookie.conf,server=$LAB_HOST,port=$LAB_PORT,thumbprint=$LAB_THUMBPRINT_SHA256,vm=$VM,snapshot=nightly,datastore.$LAB_DATASTORE=$LAB_DATASTORE_DIR"
same m8/nightly/Hard_disk_1.raw nightly.raw "mount with a session cookie"
umount_vmdkfs m8
expect_fail "visible to every user" -o "cookie=$cookie,server=$LAB_HOST" m0
# The VM by BIOS UUID, and verification off (a warning).
lab_props VirtualMachine "$LAB_VM_MOREF" config.uuid
uuid=$(sed -n 's:.*<val xsi\:type="xsd\:string">\([^<]*\)</val>.*:\1:p' "$LAB_RESP")
[ -n "$uuid" ] || fail "no BIOS UUID from the lab"
"$VMDKFS" -o "$base,vixDiskLib.linuxSSL.verifyCertificates=0,vm=uuid=$uuid,snapshot=nightly" m8 2>err ||
	fail "mount by uuid without verification: $(cat err)"
MOUNTS="$MOUNTS $WORK/m8"
grep -q "verification is off" err || fail "no warning with verifyCertificates=0: $(cat err)"
same m8/nightly/Hard_disk_1.raw nightly.raw "VM by BIOS UUID"
umount_vmdkfs m8
echo "ok VMDKFS_PASSWORD, cookie, identity, BIOS UUID, verification off, no password in logs"

# --- PrepareForAccess refused for another reason: a warning, or an error
# with prepare_access=required ---
lab_ctl "fault?method=DisableMethods&fault=NoPermission&count=1" >/dev/null
"$VMDKFS" -o "$pinned,vm=$VM,snapshot=nightly" m8 2>err || fail "mount after a refused PrepareForAccess: $(cat err)"
MOUNTS="$MOUNTS $WORK/m8"
grep -q "PrepareForAccess refused.*NoPermission" err || fail "no warning naming the fault: $(cat err)"
umount_vmdkfs m8
lab_ctl "fault?method=DisableMethods&fault=NoPermission&count=1" >/dev/null
expect_fail "NoPermission" -o "$pinned,vm=$VM,snapshot=nightly,prepare_access=required" m0
settled || fail "refused PrepareForAccess left state"
echo "ok PrepareForAccess refused: warning, or error when required"

# --- A dropped connection: a clear error, and nothing left behind ---
# (CreateSnapshot_Task goes on a connection of its own, so libcurl never
# sends it again by itself: one drop, one failure; tests/test-faults.sh
# has the rest.)
lab_ctl "drop?count=1&method=CreateSnapshot_Task" >/dev/null
expect_fail "vSphere CreateSnapshot_Task" -o "$pinned,vm=$VM,snapshot=new" m0
settled || fail "a failed mount left state: $(nsnaps vmdkfs-) $(ndisabled)"
lab_ctl "fault?method=RetrievePropertiesEx&fault=SystemError&count=1&message=injected" >/dev/null
expect_fail "SystemError: injected" -o "$pinned,vm=$VM,snapshot=nightly" m0
# A datastore that is not mapped: the temporary snapshot is undone.
# (Only modes that cannot work: the list connects, then the first open
# fails naming each mode and why.)
expect_fail "file: datastore $LAB_DATASTORE is not mapped to a local folder.*; san: datastore $LAB_DATASTORE is OTHER, not VMFS: there is no LUN to read; hotadd: this machine is not a" -o "server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$WORK/pw,thumbprint=$LAB_THUMBPRINT_SHA256,vm=$VM,snapshot=new,transports=file:san:hotadd" m0
settled || fail "a mount that failed after its snapshot left state: $(nsnaps vmdkfs-) $(ndisabled)"
echo "ok dropped connection, SOAP fault, unmapped datastore"

# --- Paged results (SIMULATED in the lab: vcsim never pages): with one
# object a page, finding a VM by name and cleanup walk every page with
# ContinueRetrievePropertiesEx ---
lab_ctl "page?max=1" >/dev/null
mount_vmdkfs m8 -o "$pinned,vm=$VM2,snapshot=new"
ls m8/*/Hard_disk_1.raw >/dev/null || fail "paged: no disk"
umount_vmdkfs m8
settled || fail "paged: state left"
out=$("$VMDKFS" cleanup -o "$pinned") || fail "paged cleanup: $out"
echo "$out" | grep -q "cleanup: 0 cleaned, 0 remaining" || fail "paged cleanup said: $out"
calls=$(state | py "import json,sys; print(json.load(sys.stdin)['calls'].get('ContinueRetrievePropertiesEx', 0))")
[ "$calls" -gt 0 ] || fail "no ContinueRetrievePropertiesEx call was made"
lab_ctl "page?max=0" >/dev/null
echo "ok paged results ($calls ContinueRetrievePropertiesEx calls)"

# --- A restore: rw on the current disks of a powered-off VM ---
lab_soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this></PowerOffVM_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "PowerOffVM_Task"
mount_vmdkfs m9 -o "$pinned,vm=$VM,rw"
[ -f m9/current/Hard_disk_1.raw ] || fail "no current/ folder: $(ls -R m9)"
head -c 70000 /dev/urandom >restore.bin
dd if=restore.bin of=m9/current/Hard_disk_1.raw bs=4096 seek=100 conv=notrunc,fsync status=none || fail "restore write"
umount_vmdkfs m9
cur=$(state | py "import json,sys; s=json.load(sys.stdin); print([v['disks'][0]['local_chain'][0] for v in s['vms'] if v['name']=='$VM'][0])" 2>/dev/null) ||
	cur=""
[ -n "$cur" ] || fail "cannot find the VM's current disk in /lab/state"
qemu-img convert -f vmdk -O raw "$cur" restored.raw
cmp -s <(tail -c +$((409600 + 1)) restored.raw | head -c 70000) restore.bin || fail "restored bytes not in the current disk"
lab_soap "<PowerOnVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this></PowerOnVM_Task>"
echo "ok restore to a powered-off VM's current disk"

# --- SIGTERM ends a mount cleanly; kill -9 leaves state for cleanup ---
mkdir -p m6 m7
"$VMDKFS" -f -o "$pinned,vm=$VM,snapshot=new" m6 2>/dev/null &
pid=$!
MOUNTS="$MOUNTS $WORK/m6"
for i in $(seq 100); do mountpoint -q m6 && break; sleep 0.05; done
mountpoint -q m6 || fail "foreground mount did not appear"
kill -TERM $pid
wait $pid || true
settled || fail "SIGTERM: temporary snapshot or disabled method left"
! mountpoint -q m6 || fail "SIGTERM: still mounted"
"$VMDKFS" -f -o "$pinned,vm=$VM,snapshot=new" m6 2>err6 &
pid=$!
for i in $(seq 100); do mountpoint -q m6 && break; sleep 0.05; done
mountpoint -q m6 || fail "foreground mount did not appear"
kill -9 $pid
wait $pid 2>/dev/null || true
fusermount3 -u -z m6 2>/dev/null || true
settled 1 1 || fail "kill -9 should leave a snapshot and a disabled method: $(nsnaps vmdkfs-) $(ndisabled) $(cat err6)"
out=$("$VMDKFS" cleanup -o "$pinned") || fail "cleanup: $out"
echo "$out" | grep -q "cleanup: 2 cleaned, 0 remaining" || fail "cleanup said: $out"
[ "$(nsnaps vmdkfs-)" = 0 ] && [ "$(ndisabled)" = 0 ] || fail "cleanup left state"
out=$("$VMDKFS" cleanup -o "$pinned") || fail "second cleanup: $out"
echo "$out" | grep -q "cleanup: 0 cleaned, 0 remaining" || fail "second cleanup said: $out"
echo "ok SIGTERM, kill -9 then cleanup (twice)"

# --- A direct ESXi connection: PrepareForAccess is refused with a warning ---
lab_stop
lab_start "$WORK/esx" -esx || fail "ESXi lab did not start"
printf '%s\n' "$LAB_PASSWORD" >pw
esx="server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$WORK/pw,thumbprint=$LAB_THUMBPRINT_SHA256,datastore.$LAB_DATASTORE=$LAB_DATASTORE_DIR"
"$VMDKFS" -o "$esx,vm=$LAB_VM,snapshot=new" m7 2>err || fail "ESXi mount: $(cat err)"
MOUNTS="$MOUNTS $WORK/m7"
grep -q "HostAgent is not a VirtualCenter" err || fail "ESXi: no PrepareForAccess warning: $(cat err)"
f=$(ls -d m7/*/Hard_disk_1.raw)
qemu-img convert -f vmdk -O raw "$(local_of "$f")" esx.raw
same "$f" esx.raw "ESXi snapshot disk"
umount_vmdkfs m7
expect_fail "HostAgent is not a VirtualCenter" -o "$esx,vm=$LAB_VM,snapshot=new,prepare_access=required" m0
echo "ok direct ESXi connection"

#!/bin/bash
# A signal at every long phase of a vSphere mount: SIGTERM and SIGINT
# undo what the mount did by themselves (no temporary snapshot, no
# disabled method, no disk left on the proxy VM, no NFC link); SIGKILL
# leaves what it leaves, and `vmdkfs cleanup` then removes all of it.
# Phases: PrepareForAccess, snapshot creation, the NFC ticket, the NFC
# handshake, the hotadd attach, a read, a write, the unmount; for
# snapshot=new mounts over nbdssl and hotadd, rw mounts over nbd and
# hotadd, and a browsing mount; SIGHUP at two of them.
#
# The peer is the lab (tests/lab, SIMULATED): each phase is held open by
# a lab delay (/lab/delay on the SOAP call, the NFC server's stall and
# delay knobs) so that the signal lands in it; the hotadd proxy and its
# SCSI disks are the lab's simulation (see tests/test-hotadd.sh).
. "$(dirname "$0")/lib.sh"
need qemu-img curl getfattr losetup timeout
hotadd=1
command -v qemu-storage-daemon >/dev/null 2>&1 || hotadd=0
[ "$(id -u)" = 0 ] && l=$(losetup -f 2>/dev/null) && [ -n "$l" ] || hotadd=0
start_lab -vms 3
trap 'lab_ctl "hotadd?off=1" >/dev/null 2>&1; lab_stop; cleanup' EXIT
cd "$WORK"
printf '%s\n' "$LAB_PASSWORD" >pw
chmod 600 pw
conn="server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$WORK/pw,thumbprint=$LAB_THUMBPRINT_SHA256"
base="$conn,nfchostport=$LAB_NFC_PORT,tmpDirectory=$WORK/logs,quiet,hotadd_sysfs=$WORK/sys,hotadd_dev=$WORK/dev,hotadd_timeout=10"
mkdir -p logs
proxy=$(echo "$LAB_VMS" | cut -d' ' -f3)
if [ $hotadd = 1 ]; then
	lab_ctl "hotadd?proxy=$proxy&sysfs=$WORK/sys&dev=$WORK/dev" | grep -q '"ok": true' || fail "lab: /lab/hotadd?proxy="
fi
py() { /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin); $1"; }
proxy_disks() { lab_ctl state | py "print(len([d for d in [v for v in s['vms'] if v['name']=='$proxy'][0]['disks'] if not d['label'].startswith('Hard disk filler')]))"; }
own=$(proxy_disks)
leftovers() {
	lab_ctl state | py "
snaps = sum(1 for v in s['vms'] for x in v.get('snapshots') or [] if x['name'].startswith('vmdkfs-'))
proxy = [v for v in s['vms'] if v['name'] == '$proxy'][0]
added = len([d for d in proxy['disks'] if not d['label'].startswith('Hard disk filler')]) - $own
print('snapshots=%d disabled=%d hotadded=%d nfc_links=%d' % (snaps, len(s['disabled_methods'] or []), added, s['nfc']['stats']['live']))"
}
CLEAN="snapshots=0 disabled=0 hotadded=0 nfc_links=0"
calls() { lab_ctl state | py "print(s['calls'].get('$1', 0))"; }

# Hold PHASE open: what the lab is told before the mount starts.
hold() {
	case $1 in
	prepare) lab_ctl "delay?method=DisableMethods&ms=4000&count=1" ;;
	snapshot) lab_ctl "delay?method=CreateSnapshot_Task&ms=4000&count=1" ;;
	ticket) lab_ctl "delay?method=NfcRandomAccessOpenReadonly&ms=4000&count=1" ;;
	handshake) lab_ctl "nfc?fault=stall&fault_at=2&stall_ms=4000" ;;
	attach) lab_ctl "delay?method=ReconfigVM_Task&ms=4000&count=1" ;;
	esac >/dev/null
}
# Wait until the mount is in PHASE (the lab saw its call).
reached() {
	local i want
	case $1 in
	prepare) want=DisableMethods ;;
	snapshot) want=CreateSnapshot_Task ;;
	ticket) want=NfcRandomAccessOpenReadonly ;;
	attach) want=ReconfigVM_Task ;;
	handshake) want=NFC ;;
	esac
	for i in $(seq 200); do
		if [ $want = NFC ]; then
			[ "$(lab_ctl state | py "print(s['nfc']['stats']['connections'])")" -ge 1 ] && break
		else
			[ "$(calls $want)" -ge 1 ] && break
		fi
		sleep 0.05
	done
	sleep 0.5
}

results=""
# one TRANSPORT PHASE SIGNAL
one() {
	local tr=$1 phase=$2 sig=$3 opts pid rc=0 i what bg=
	# KILL_ONLY=TRANSPORT/PHASE/SIGNAL runs that one alone (debugging).
	case ${KILL_ONLY:-$tr/$phase/$sig} in "$tr/$phase/$sig") ;; *) return 0 ;; esac
	lab_ctl "reset?calls=1" >/dev/null
	opts="$base,vm=$LAB_VM,snapshot=new,transports=$tr,vixDiskLib.nfc.ReadTimeoutMs=20000"
	mkdir -p m
	rm -f err
	case $phase in
	prepare | snapshot | ticket | handshake | attach)
		hold "$phase"
		"$VMDKFS" -f -o "$opts" m 2>err &
		pid=$!
		reached "$phase"
		kill -s "$sig" $pid
		;;
	read | write | unmount)
		[ $phase = write ] && opts="$base,vm=$(echo "$LAB_VMS" | cut -d' ' -f2),rw,transports=$tr"
		"$VMDKFS" -f -o "$opts" m 2>err &
		pid=$!
		for i in $(seq 200); do mountpoint -q m && break; sleep 0.05; done
		mountpoint -q m || fail "$tr $phase $sig: the mount did not appear: $(cat err)"
		f=$(ls -d m/*/*.raw | head -1)
		case $phase in
		read)
			lab_ctl "nfc?delay_ms=1500" >/dev/null
			timeout 60 cat "$f" >/dev/null 2>&1 &
			bg=$!
			;;
		write)
			lab_ctl "nfc?delay_ms=1500" >/dev/null
			timeout 60 dd if=/dev/urandom of="$f" bs=1M count=4 conv=notrunc,fsync status=none 2>/dev/null &
			bg=$!
			;;
		unmount)
			lab_ctl "nfc?stall_close=1&stall_ms=6000" >/dev/null
			fusermount3 -u m
			;;
		esac
		sleep 0.7
		kill -s "$sig" $pid
		;;
	esac
	for i in $(seq 400); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
	kill -0 $pid 2>/dev/null && fail "$tr $phase $sig: vmdkfs still runs 40 s after the signal"
	wait $pid 2>/dev/null || rc=$?
	fusermount3 -u -z m 2>/dev/null || true
	[ -z "$bg" ] || wait $bg 2>/dev/null || true
	lab_ctl reset >/dev/null
	if [ "$sig" = KILL ]; then
		# The call the lab held when the kill came is still carried out
		# after it (as vCenter carries out a request whose client died):
		# cleanup once it is done.
		case $phase in prepare | snapshot | ticket | handshake | attach) sleep 4.5 ;; esac
		"$VMDKFS" cleanup -o "$conn,hotadd_sysfs=$WORK/sys,hotadd_dev=$WORK/dev" >cleanup.txt 2>&1 ||
			fail "$tr $phase: vmdkfs cleanup after kill -9: $(cat cleanup.txt)"
		what="kill -9, then vmdkfs cleanup"
	else
		what="SIG$sig alone (exit $rc)"
		case $phase in
		read | write | unmount) ;;
		# Opening interrupted: no mount, a non-zero exit, the reason.
		*)
			[ $rc != 0 ] || fail "$tr $phase $sig: exit 0, but no mount was made"
			grep -q "interrupted by SIG$sig\|SIG$sig before serving" err ||
				fail "$tr $phase $sig: the reason is not on stderr: $(cat err)"
			;;
		esac
	fi
	left=$(wait_clean 150) || { lab_ctl state | py "print(s['disabled_methods'], [[(x['name'], x['moref']) for x in v.get('snapshots') or []] for v in s['vms']])"; fail "$tr $phase, $what: left behind: $left"; }
	echo "ok $tr, $phase: $what: nothing left"
	results="$results $tr/$phase/$sig"
}

for sig in TERM INT KILL; do
	for phase in prepare snapshot ticket handshake read unmount; do
		one nbdssl $phase $sig
	done
	if [ $hotadd = 1 ]; then
		for phase in attach read; do
			one hotadd $phase $sig
		done
	fi
done

# A write: the second VM, powered off, mounted rw over nbd.
lab_login >/dev/null
vm1=$(echo "$LAB_VMS" | cut -d' ' -f2)
vm1_moref=$(lab_ctl state | py "print([v['moref'] for v in s['vms'] if v['name']=='$vm1'][0])")
lab_soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm1_moref</_this></PowerOffVM_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "PowerOffVM_Task"
for sig in TERM KILL; do
	one nbd write $sig
	[ $hotadd = 0 ] || one hotadd write $sig
done
# SIGHUP (a closed terminal) stops a mount as SIGTERM does.
for phase in snapshot read; do
	one nbdssl $phase HUP
done

# A browsing mount (server= without vm=) with a disk open (its VM's
# methods disabled): SIGTERM undoes it by itself; after kill -9, cleanup
# re-enables them.
mkdir -p b
for sig in TERM KILL; do
	"$VMDKFS" -f -o "$base" b 2>err &
	pid=$!
	for i in $(seq 200); do mountpoint -q b && break; sleep 0.05; done
	mountpoint -q b || fail "browsing mount: $(cat err)"
	f=$(find b -name '*.raw' | head -1)
	[ -n "$f" ] || fail "browsing: no disk file under b/"
	exec 7<"$f"
	head -c 65536 <&7 >/dev/null
	[ "$(lab_ctl state | py "print(len(s['disabled_methods'] or []))")" -ge 1 ] || fail "browsing: no PrepareForAccess while a disk is open"
	kill -s $sig $pid
	for i in $(seq 400); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
	kill -0 $pid 2>/dev/null && fail "browsing, SIG$sig: vmdkfs still runs 40 s after it"
	wait $pid 2>/dev/null || true
	exec 7<&-
	fusermount3 -u -z b 2>/dev/null || true
	what="SIG$sig alone"
	if [ $sig = KILL ]; then
		"$VMDKFS" cleanup -o "$conn,hotadd_sysfs=$WORK/sys,hotadd_dev=$WORK/dev" >cleanup.txt 2>&1 || fail "cleanup after the browsing mount: $(cat cleanup.txt)"
		what="kill -9, then vmdkfs cleanup"
	fi
	left=$(wait_clean 150) || fail "browsing, $what: left behind: $left"
	echo "ok browsing, a disk open: $what: nothing left"
done

# The parent of a daemon mount: 0 only once the mount is in place; a
# SIGTERM while it opens: non-zero, the reason on stderr.
"$VMDKFS" -o "$base,vm=$LAB_VM,snapshot=new,transports=nbdssl" m 2>err || fail "daemon mount: $(cat err)"
mountpoint -q m || fail "the daemon mount's parent exited 0 before the mount was in place"
MOUNTS="$MOUNTS $WORK/m"
umount_vmdkfs m
lab_ctl "reset?calls=1" >/dev/null
hold snapshot
"$VMDKFS" -o "$base,vm=$LAB_VM,snapshot=new,transports=nbdssl" m 2>err &
pid=$!
reached snapshot
kill -TERM $pid
rc=0
wait $pid || rc=$?
[ $rc != 0 ] || fail "a daemon mount stopped by SIGTERM while opening exited 0"
grep -q "interrupted by SIGTERM" err || fail "daemon mount, SIGTERM: $(cat err)"
mountpoint -q m && fail "a mount is in place after SIGTERM while opening"
lab_ctl reset >/dev/null
left=$(wait_clean 150) || fail "daemon mount, SIGTERM while opening: left behind: $left"
echo "ok the daemon's parent: 0 once mounted; SIGTERM while opening: exit $rc, the reason on stderr, nothing left"

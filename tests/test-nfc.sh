#!/bin/bash
# nbd and nbdssl: vmdkfs's NFC client against the lab's authd + NFC server
# (tests/lab/nfc*.go: SIMULATED, its defaults from the records of VDDK and
# real ESXi in tests/lab/nfc_records.json; no real ESXi here).  The datastore is NOT mapped, so the disks are read only
# over the network; every read is checked against qemu-img's view of the
# same chain on the lab's datastore folder.
. "$(dirname "$0")/lib.sh"
need qemu-img curl getfattr
lab_nfc_setup
opts=$NFC_OPTS

# --- Byte-exact reads over nbd and nbdssl (default list: file is skipped,
# the datastore being unmapped; san and hotadd are not in this build) ---
for mode in nbdssl nbd; do
	# nbd also with 2 MiB requests and 256 KiB fragments.
	extra=""
	[ $mode = nbd ] && extra=",nfc_max_io=2M,vixDiskLib.nfcAio.Session.BufSizeIn64KB=4"
	rm -rf logs-$mode && mkdir logs-$mode
	mount_vmdkfs m -o "$opts,snapshot=new,transports=$mode$extra,tmpDirectory=$WORK/logs-$mode,vixDiskLib.nfc.LogLevel=3"
	for f in m/*/Hard_disk_*.raw; do
		[ "$(getfattr --only-values -n user.vmdkfs.transport "$f")" = $mode ] || fail "$f: transport xattr"
		qemu-img convert -f vmdk -O raw "$(local_of "$f")" want.raw
		same "$f" want.raw "$mode read of $f"
	done
	umount_vmdkfs m
	echo "ok $mode reads"
	# A sequential read keeps reads in flight ahead of it (BufCount), even
	# after the partition tables were read, the backup GPT at the disk's
	# end among them (the count includes those reads, never ahead; 0.29
	# when the read-ahead stopped after them).
	grep -ho "NFC: [0-9]* reads, [0-9]* of them read ahead" logs-$mode/vmdkfs-*.log >ahead.txt ||
		fail "$mode: no read-ahead count in the log"
	read -r n a < <(awk '{ n += $2; a += $4 } END { print n, a }' ahead.txt)
	[ $((a * 10)) -ge $((n * 6)) ] || fail "$mode: $a of $n reads found their bytes read ahead: $(cat ahead.txt)"
	echo "ok $mode: $a of $n reads found their bytes read ahead"
done
mount_vmdkfs m -o "$opts,snapshot=new"
f=$(ls -d m/*/Hard_disk_1.raw)
[ "$(getfattr --only-values -n user.vmdkfs.transport "$f")" = nbdssl ] || fail "default list did not pick nbdssl"
"$VMDKFS" status m >status.txt || fail "vmdkfs status"
grep -q "Hard_disk_1.raw  *nbdssl  *16777216  \[$LAB_DATASTORE\]" status.txt || fail "status: $(cat status.txt)"
qemu-img convert -f vmdk -O raw "$(local_of "$f")" want.raw

# --- Faults: always the right bytes or EIO, never wrong bytes ---
mkdir -p logs
check_read() { # WHAT: a fresh read of the whole disk equals want.raw, or fails
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	if cat "$f" >got.raw 2>err; then
		same got.raw want.raw "$1"
		echo "ok $1: right bytes"
	else
		grep -q "Input/output error" err || fail "$1: $(cat err)"
		echo "ok $1: EIO"
	fi
}
umount_vmdkfs m
# Each fault on a fresh mount, so nothing comes from the page cache.
fault_case() { # KNOBS WHAT EXTRA_OPTS
	mount_vmdkfs m -o "$opts,snapshot=new,transports=nbdssl,tmpDirectory=$WORK/logs${3:-}"
	f=$(ls -d m/*/Hard_disk_1.raw)
	nctl "$1"
	check_read "$2"
	nctl reset=1
	umount_vmdkfs m
}
fault_case "cut=100000" "link cut mid-read (reconnect, new ticket)"
fault_case "shuffle=1" "fragments out of order"
fault_case "error=3&text=injected&count=1" "one ERROR record"
fault_case "error=3&text=injected&count=100" "ERROR records on every try"
grep -q "NFC error 3 from the host: injected" logs/vmdkfs-*.log || fail "the host's ERROR text is not in the log"
[ "$(nstat cuts)" -ge 1 ] || fail "the lab never cut a link"
# A read timeout fires: replies slower than ReadTimeoutMs end in EIO within
# a few seconds (retries included), and the log says why.
t0=$(date +%s)
fault_case "delay_ms=1500" "replies slower than ReadTimeoutMs" ",vixDiskLib.nfc.ReadTimeoutMs=400"
[ $(($(date +%s) - t0)) -lt 30 ] || fail "the read timeout did not fire in time"
grep -q "no answer within vixDiskLib.nfc.ReadTimeoutMs=400" logs/vmdkfs-*.log || fail "no read-timeout message in the log"
# Without the timeout (0 = none) the same delay only slows reads down.
fault_case "delay_ms=300" "slow replies, no timeout"

# --- AcceptTimeoutMs: an authd that never greets ---
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
conns = [s.accept() for _ in range(1)]
time.sleep(20)' >mute.port &
mute=$!
for i in $(seq 50); do [ -s mute.port ] && break; sleep 0.1; done
t0=$(date +%s)
mkdir -p m0
if "$VMDKFS" -o "${opts/nfchostport=$LAB_NFC_PORT/nfchostport=$(cat mute.port)},snapshot=new,transports=nbd,vixDiskLib.nfc.AcceptTimeoutMs=700" m0 2>err; then
	fusermount3 -u m0; fail "mount through a silent authd succeeded"
fi
kill $mute 2>/dev/null || true
grep -q "sent no greeting" err || fail "AcceptTimeoutMs: $(cat err)"
[ $(($(date +%s) - t0)) -lt 15 ] || fail "AcceptTimeoutMs did not fire in time"
echo "ok AcceptTimeoutMs"

# --- RequestTimeoutMs: authd never answers BANNER ---
nctl "stall_banner=1"
t0=$(date +%s)
expect_fail_quiet() {
	mkdir -p m0
	if "$VMDKFS" "$@" m0 2>err; then fusermount3 -u m0; fail "$* succeeded"; fi
}
expect_fail_quiet -o "$opts,snapshot=new,transports=nbd,vixDiskLib.nfc.RequestTimeoutMs=600"
nctl reset=1
grep -q "authd gave no answer within vixDiskLib.nfc.RequestTimeoutMs=600" err || fail "RequestTimeoutMs: $(cat err)"
[ $(($(date +%s) - t0)) -lt 15 ] || fail "RequestTimeoutMs did not fire in time"
echo "ok RequestTimeoutMs"

# --- nfcFssrvr.TimeoutMs: an idle file session is replaced before use ---
mount_vmdkfs m -o "$opts,snapshot=new,transports=nbd,vixDiskLib.nfcFssrvr.TimeoutMs=1000"
f=$(ls -d m/*/Hard_disk_1.raw)
dd if="$f" of=/dev/null bs=64k count=1 status=none
before=$(nstat connections)
sleep 1.6
dd if="$f" of=/dev/null bs=64k count=1 skip=100 status=none
after=$(nstat connections)
[ "$after" -gt "$before" ] || fail "idle link was not replaced ($before -> $after connections)"
umount_vmdkfs m
echo "ok nfcFssrvr.TimeoutMs"

# --- Identity and authd faults at open: a clear error ---
expect_fail() {
	local want=$1
	shift
	mkdir -p m0
	if "$VMDKFS" "$@" m0 2>err; then fusermount3 -u m0; fail "$* succeeded"; fi
	grep -q -- "$want" err || fail "$*: wanted \"$want\", got: $(cat err)"
}
nctl "wrong_thumbprint=1"
expect_fail "SHA-256 thumbprint" -o "$opts,snapshot=new,transports=nbdssl"
nctl reset=1
nctl "proxy_reply=500%20nope"
expect_fail "answer to PROXY" -o "$opts,snapshot=new,transports=nbd"
nctl reset=1
echo "ok wrong thumbprint, wrong PROXY reply"

# --- Writes over nbd: a restore to the powered-off VM's current disk ---
lab_login >/dev/null
lab_soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this></PowerOffVM_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "PowerOffVM_Task"
mount_vmdkfs m -o "$opts,rw,transports=nbd"
head -c 300000 /dev/urandom >restore.bin
dd if=restore.bin of=m/current/Hard_disk_1.raw bs=1000 seek=77 conv=notrunc,fsync status=none || fail "NFC write"
cmp -s <(tail -c +77001 m/current/Hard_disk_1.raw | head -c 300000) restore.bin || fail "NFC write read back differs"
cur=$(local_of m/current/Hard_disk_1.raw)
umount_vmdkfs m
sleep 0.5
qemu-img convert -f vmdk -O raw "$cur" host.raw
cmp -s <(tail -c +77001 host.raw | head -c 300000) restore.bin ||
	fail "the host's disk does not hold the written bytes"
echo "ok nbd writes"


# --- Close payload sizes: 8 and 4 by default (as VDDK was recorded), or
# another host's spelling when set (the strict lab refuses that: off) ---
close_sizes() { echo "$(nstat close_file_size),$(nstat close_session_size)"; }
mount_vmdkfs m -o "$opts,snapshot=new,transports=nbd"
umount_vmdkfs m
[ "$(close_sizes)" = "8,4" ] || fail "default close payloads: $(close_sizes)"
nctl "strict=0"
mount_vmdkfs m -o "$opts,snapshot=new,transports=nbd,nfc_close_file=16,nfc_close_session=16"
umount_vmdkfs m
nctl reset=1
[ "$(close_sizes)" = "16,16" ] || fail "nfc_close_file=16,nfc_close_session=16: the host saw $(close_sizes)"
expect_fail "nfc_close_file=9, nfc_close_session=4: the payloads are 8 or 16" -o "$opts,snapshot=new,transports=nbd,nfc_close_file=9"
echo "ok close payloads (nfc_close_file, nfc_close_session)"

# --- A host that never answers the close: with no timeout set each disk's
# close waits 10 s at most (two disks here), then the unmount's tidying
# goes on and the temporary snapshot is removed (the lab's stall_close
# knob, SIMULATED) ---
mount_vmdkfs m -o "$opts,snapshot=new,transports=nbd"
[ "$(nsnaps vmdkfs-)" = 1 ] || fail "no temporary snapshot while mounted"
nctl "stall_close=1&stall_ms=120000"
t0=$(date +%s)
umount_vmdkfs m
while [ "$(nsnaps vmdkfs-)" != 0 ]; do
	[ $(($(date +%s) - t0)) -lt 60 ] || fail "the temporary snapshot is still there 60 s after the unmount"
	sleep 0.5
done
took=$(($(date +%s) - t0))
nctl reset=1
[ "$took" -ge 19 ] && [ "$took" -le 30 ] || fail "the two closes gave up after $took s, not 2 x 10 s"
echo "ok a close the host never answers: given up after $took s, snapshot removed"

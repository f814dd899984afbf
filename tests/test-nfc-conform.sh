#!/bin/bash
# NFC conformance: what vmdkfs sends over nbd and nbdssl, message by message
# and field by field, against the table of what VDDK was recorded sending to
# real ESXi hosts (tests/lab/nfc_records.json; each row cites its file in
# cloudbase/OpenVixDiskLib, an independent implementation written from
# intercepts of VDDK 8.0.2 and vCenter/ESXi 8.0.1).  The peer is the lab's
# NFC server (SIMULATED), in strict mode: it answers any message that
# departs from the table with an error, so a departure also fails the reads.
# tests/nfc_conform.py then checks the lab's record of every session, in
# order, with its own reading of the table.
. "$(dirname "$0")/lib.sh"
need qemu-img curl getfattr
lab_nfc_setup
opts=$NFC_OPTS
conform() { # WHAT ARGS...: the lab's log since the last clear conforms
	local what=$1
	shift
	lab_ctl "nfc/log" >log.json || fail "$what: no /lab/nfc/log"
	/usr/bin/python3 "$TESTS/nfc_conform.py" log.json "$@" >conform.txt ||
		fail "$what: $(cat conform.txt)"
	echo "ok $what: $(tail -1 conform.txt)"
	lab_ctl "nfc/log?clear=1" >/dev/null
}
[ "$(lab_ctl state | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["nfc"]["knobs"]["strict"])')" = True ] ||
	fail "the lab's NFC server is not strict by default"
lab_ctl "nfc/log?clear=1" >/dev/null

# --- Open, a sequential read (read ahead), random reads, close ---
for mode in nbd nbdssl; do
	mount_vmdkfs m -o "$opts,snapshot=new,transports=$mode"
	f=$(ls -d m/*/Hard_disk_1.raw)
	qemu-img convert -f vmdk -O raw "$(local_of "$f")" want.raw
	same "$f" want.raw "$mode sequential read"
	echo 3 >/proc/sys/vm/drop_caches
	for off in 13 4095 777 2049 31; do # 4 KiB pages, out of order
		cmp <(dd if="$f" bs=4096 skip=$off count=1 status=none) \
			<(dd if=want.raw bs=4096 skip=$off count=1 status=none) ||
			fail "$mode random read at page $off"
	done
	umount_vmdkfs m
	conform "$mode open, reads, close" --mode $mode --closed --soap --need aio.read
done

# --- The close with reads in flight: a short sequential read leaves up to
# BufCount requests of read ahead unanswered; they are drained before
# CLOSE_FILE, so CLOSE_SESSION and the type 4 still go out ---
mount_vmdkfs m -o "$opts,snapshot=new,transports=nbd,vixDiskLib.nfcAio.Session.BufCount=4"
f=$(ls -d m/*/Hard_disk_1.raw)
dd if="$f" of=/dev/null bs=1M count=2 status=none
umount_vmdkfs m
lab_ctl "nfc/log" >log.json
# The requests sent reach past what the reader took: they were in flight.
far=$(/usr/bin/python3 -c '
import json, struct
log = json.load(open("log.json"))
end = 0
for c in log["connections"]:
    for m in c["messages"]:
        if m["kind"] == "aio" and m["type"] == 7 and m.get("row") == "aio.read":
            p = bytes.fromhex(m["payload"])
            off, n = struct.unpack_from("<QQ", p, 16)
            end = max(end, off + n)
print(end)')
[ "$far" -gt $((3 << 20)) ] || fail "no read ahead was in flight at the close (requests end at $far)"
conform "close after read ahead (requests up to $((far >> 20)) MiB in flight for a 2 MiB read)" --mode nbd --closed

# --- A host that answers 33 only after the version (the lab's old guess,
# params_reply=after_version): vmdkfs waits for the 36 before it sends 51,
# as VDDK was recorded doing, and RequestTimeoutMs ends the wait with an
# error that names it ---
nctl "params_reply=after_version"
mkdir -p m0
if "$VMDKFS" -o "$opts,snapshot=new,transports=nbd,vixDiskLib.nfc.RequestTimeoutMs=800" m0 2>err; then
	fusermount3 -u m0
	fail "a host that withholds the 36 was not waited for"
fi
nctl reset=1
grep -q "RequestTimeoutMs=800" err || fail "after_version: $(cat err)"
lab_ctl "nfc/log?clear=1" >/dev/null
echo "ok a withheld 36 is waited for, then RequestTimeoutMs"

# --- Writes (a restore to the powered-off VM's current disk), over nbdssl
# and nbd; with ack_len36=1 the host also puts the length at [36] of its
# acknowledgement, which must not make vmdkfs wait for data ---
lab_login >/dev/null
lab_soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this></PowerOffVM_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "PowerOffVM_Task"
lab_ctl "nfc/log?clear=1" >/dev/null
for mode in nbdssl nbd; do
	[ $mode = nbd ] && nctl "ack_len36=1"
	mount_vmdkfs m -o "$opts,rw,transports=$mode,vixDiskLib.nfc.WriteTimeoutMs=5000,vixDiskLib.nfc.ReadTimeoutMs=5000"
	head -c 200000 /dev/urandom >data.bin
	dd if=data.bin of=m/current/Hard_disk_1.raw bs=1000 seek=4099 conv=notrunc,fsync status=none ||
		fail "$mode write"
	cur=$(local_of m/current/Hard_disk_1.raw)
	umount_vmdkfs m
	qemu-img convert -f vmdk -O raw "$cur" host.raw
	cmp -s <(tail -c +4099001 host.raw | head -c 200000) data.bin ||
		fail "$mode: the host's disk does not hold the written bytes"
	conform "$mode writes$([ $mode = nbd ] && echo ', the length at [36] of each acknowledgement')" --mode $mode --closed --soap --need aio.write
done
nctl reset=1

# --- The strict lab catches a departure: CLOSE_FILE of 16 bytes (another
# host's spelling, kept as -o nfc_close_file=16) is answered with an ERROR
# record; with strict=0 the lab takes it ---
mkdir -p logs
mount_vmdkfs m -o "$opts,snapshot=new,transports=nbd,nfc_close_file=16,tmpDirectory=$WORK/logs"
umount_vmdkfs m
grep -q "NFC error 3 from the host: vmdkfs-lab strict: aio.close_file" logs/vmdkfs-*.log ||
	fail "the strict lab did not refuse a 16-byte CLOSE_FILE: $(grep -i nfc logs/vmdkfs-*.log | tail -3)"
lab_ctl "nfc/log" >log.json
if /usr/bin/python3 "$TESTS/nfc_conform.py" log.json --closed >conform.txt; then
	fail "nfc_conform.py found nothing wrong with a 16-byte CLOSE_FILE"
fi
grep -q "aio.close_file: payload of 16 bytes, the records show 8" conform.txt || fail "nfc_conform.py: $(cat conform.txt)"
echo "ok a departure (16-byte CLOSE_FILE) is refused by the lab and found by the checker"

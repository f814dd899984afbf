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

# --- VDDK's read-only open, as recorded: an NfcGetVmFiles ticket (vm
# alone, nfc_auth.md: "No disk path, snapshot, or host is in this
# request"), good for any link of any disk of the VM, then reads that ask
# for FastLZ (2 at [12], nfc_read.md: "Reads with FASTLZ always *request*
# type 2"), over nbd and nbdssl, from the strict lab.  The host answers
# each fragment FastLZ when that is shorter, else raw ("FASTLZ, data that
# shrinks" / "FASTLZ, incompressible"): disk 2000 holds the random data
# written above, disk 2001 only the lab's patterns.  The client is the
# lab's own (tests/lab/nfc_client.py, which speaks as VDDK was recorded);
# the bytes must be qemu-img's view of each link ---
client() { # ARGS...: nfc_client.py with an NfcGetVmFiles ticket for the VM; its JSON line in client.json
	/usr/bin/python3 "$TESTS/lab/nfc_client.py" --env "$LAB_DIR/lab.env" --vm "$LAB_VM_MOREF" \
		--method NfcGetVmFiles "$@" >client.json 2>&1
}
cj() { /usr/bin/python3 -c "import json; j=json.load(open('client.json')); print($1)"; }
lab_props VirtualMachine "$LAB_VM_MOREF" config.hardware.device
mapfile -t links < <(grep -o '<fileName>[^<]*</fileName>' "$LAB_RESP" | sed 's:</*fileName>::g')
[ ${#links[@]} = 2 ] || fail "the VM's disks: ${links[*]}"
lab_ctl "nfc/log?clear=1" >/dev/null
n=0
for link in "${links[@]}"; do
	n=$((n + 1))
	ssl=""
	[ $n = 1 ] || ssl=--ssl
	qemu-img convert -f vmdk -O raw "$LAB_DATASTORE_DIR/${link#*] }" want.raw
	client --path "$link" --compress fastlz --out got.raw $ssl || fail "NfcGetVmFiles, FastLZ reads of $link: $(cat client.json)"
	same got.raw want.raw "NfcGetVmFiles, FastLZ reads of $link"
	[ "$(cj 'j["fastlz_fragments"] > 0')" = True ] || fail "no fragment of $link came FastLZ: $(cat client.json)"
	[ $n = 2 ] || [ "$(cj 'j["raw_fragments"] > 0')" = True ] ||
		fail "no fragment of $link's random data came raw: $(cat client.json)"
	echo "ok NfcGetVmFiles ticket, $link read with FastLZ over $([ $n = 1 ] && echo nbd || echo nbdssl): $(cj '"%d fragments, %d FastLZ, %d raw" % (j["fragments"], j["fastlz_fragments"], j["raw_fragments"])'), the bytes are the link's"
done
lab_ctl "nfc/log" >log.json
[ "$(/usr/bin/python3 -c '
import json, struct
log = json.load(open("log.json"))
reads = [bytes.fromhex(m["payload"]) for c in log["connections"] for m in c["messages"] if m["row"] == "aio.read"]
calls = [s for s in log["soap"] if s["method"] == "NfcGetVmFiles"]
print(len(reads) > 0 and all(struct.unpack_from("<II", p, 8) == (1, 2) for p in reads)
      and len(calls) == 2 and all(s["row"] == "soap.ticket_vm" and s["args"] == ["vm"] and not s["departures"] for s in calls))')" = True ] ||
	fail "the log does not show two NfcGetVmFiles calls (vm alone) and reads of 1 | 2 << 32 at [8]"
conform "NfcGetVmFiles tickets, FastLZ reads" --closed --soap --need soap.ticket_vm --need aio.read

# The strict lab still refuses what departs: a read that asks for zlib (1
# at [12]; the records show 0 or 2) gets an ERROR record and the other
# reads are served; NfcGetVmFiles with a hostForAccess (not in the
# records) gets a SOAP fault; nfc_conform.py finds both
link=${links[0]}
client --path "$link" --compress fastlz --depart zlib --expect-error 3 ||
	fail "a zlib read was not refused alone: $(cat client.json)"
case $(cj 'j["errors"][0]["text"]') in
"vmdkfs-lab strict: aio.read: [12] is 1, the records show one of 0, 2 (records: read, "*) ;;
*) fail "the zlib read's refusal: $(cat client.json)" ;;
esac
lab_props VirtualMachine "$LAB_VM_MOREF" runtime.host
host=$(sed -n 's:.*<val [^>]*type="HostSystem"[^>]*>\([^<]*\)</val>.*:\1:p' "$LAB_RESP")
[ -n "$host" ] || fail "the VM's runtime.host"
getvmfiles="<NfcGetVmFiles xmlns=\"urn:vim25\"><_this type=\"NfcService\">nfcService</_this><vm type=\"VirtualMachine\">$LAB_VM_MOREF</vm><hostForAccess type=\"HostSystem\">$host</hostForAccess></NfcGetVmFiles>"
lab_soap "$getvmfiles"
[ "$LAB_HTTP" = 500 ] && grep -q "<faultstring>vmdkfs-lab strict: soap.ticket_vm: a hostForAccess argument, which the records do not show (they show vm)" "$LAB_RESP" ||
	fail "NfcGetVmFiles with a hostForAccess was not refused: HTTP $LAB_HTTP $(head -c 600 "$LAB_RESP")"
lab_ctl "nfc/log" >log.json
if /usr/bin/python3 "$TESTS/nfc_conform.py" log.json --closed --soap >conform.txt; then
	fail "nfc_conform.py found nothing wrong with a zlib read and NfcGetVmFiles with a hostForAccess"
fi
grep -q "aio.read: \[12\] is 1, the records show \[0, 2\]" conform.txt &&
	grep -q "soap.ticket_vm: a hostForAccess argument, which the records do not show" conform.txt ||
	fail "nfc_conform.py: $(cat conform.txt)"
nctl strict=0
lab_soap "$getvmfiles"
[ "$LAB_HTTP" = 200 ] && grep -q "<sessionId>52" "$LAB_RESP" || fail "strict=0: NfcGetVmFiles with a hostForAccess: HTTP $LAB_HTTP"
nctl reset=1
lab_ctl "nfc/log?clear=1" >/dev/null
echo "ok departures (a zlib read, NfcGetVmFiles with a hostForAccess) are refused by the strict lab and found by the checker; strict=0 serves them"

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

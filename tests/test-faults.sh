#!/bin/bash
# The fault matrix: a fault at every step of a snapshot=new mount of the
# lab's VM (two disks) over nbdssl, and at the messages of a write over
# nbd (a rw mount of a powered-off VM, checked as said below), one cell
# per (step, fault), each on a fresh mount.  For every cell:
#   - the mount either fails with a clear error and a non-zero exit, or is
#     in place and serves the right bytes (both disks read whole and
#     compared with qemu-img's reading of the chain) or EIO;
#   - nothing is left behind once vmdkfs is done: no vmdkfs-* snapshot,
#     no disabled method, no NFC connection or open handle in the lab;
#   - no cell takes longer than the timeouts it was given allow.
# The table of outcomes is printed (and kept in the README).
#
# The peer is the lab (tests/lab, SIMULATED): govmomi's vcsim for SOAP
# with the lab's drop knobs (/lab/drop?skip=K-1&mode=...: the K-th request
# of the mount, counted as the lab's call_log shows a clean mount), and
# the lab's NFC server, whose behaviour follows the records of real VDDK
# and ESXi traffic (tests/lab/nfc_records.json), with its fault knob
# (/lab/nfc?fault=WHAT&fault_at=K&fault_conn=C: the client's K-th message
# on the C-th connection).  FAULTS_FULL=1 (make check-long) runs every
# fault at every step; by default every step gets the close, the lost
# answer (SOAP) and, at a spread of steps, the other faults.
. "$(dirname "$0")/lib.sh"
need qemu-img curl getfattr timeout
# The hotadd cells need the lab's proxy VM (the third) and its simulated
# SCSI disks: qemu-storage-daemon under real loop devices, as in
# tests/test-hotadd.sh.
hotadd=1
hotadd_why=""
command -v qemu-storage-daemon >/dev/null 2>&1 || { hotadd=0; hotadd_why="qemu-storage-daemon is not installed"; }
[ "$(id -u)" = 0 ] && l=$(losetup -f 2>/dev/null) && [ -n "$l" ] || { hotadd=0; hotadd_why="no loop devices (root and a free one needed)"; }
lab_nfc_setup -vms 3
trap 'lab_ctl "hotadd?off=1" >/dev/null 2>&1; lab_stop; cleanup' EXIT
proxy=$(echo "$LAB_VMS" | cut -d' ' -f3)
if [ $hotadd = 1 ]; then
	lab_ctl "hotadd?proxy=$proxy&sysfs=$WORK/sys&dev=$WORK/dev" | grep -q '"ok": true' || fail "lab: /lab/hotadd?proxy="
fi
FULL=${FAULTS_FULL:-0}
# Short timeouts, so that a stall shows within seconds.
T_OPTS="vixDiskLib.nfc.AcceptTimeoutMs=1500,vixDiskLib.nfc.RequestTimeoutMs=1500,vixDiskLib.nfc.ReadTimeoutMs=1500,vixDiskLib.nfc.WriteTimeoutMs=1500,soap_timeout=3"
opts="$NFC_OPTS,snapshot=new,transports=nbdssl,$T_OPTS,tmpDirectory=$WORK/logs,quiet"
mkdir -p logs
# s: the longest a cell may take (the timeouts above, the retries, the
# tidying up), and when it is killed as hung.
CELL_BOUND=30
CELL_LIMIT=90
lab_ctl "nfc?stall_ms=2500" >/dev/null

py() { /usr/bin/python3 -c "$@"; }
# What vmdkfs may have left: temporary snapshots, disabled methods, NFC
# connections still open, NFC handles still open.
# Hot-added: disks on the proxy VM beyond its own, and SCSI disks the lab
# still presents.
proxy_disks() {
	lab_ctl state | py "
import json, sys
s = json.load(sys.stdin)
print(len([d for d in [v for v in s['vms'] if v['name'] == '$proxy'][0]['disks'] if not d['label'].startswith('Hard disk filler')]))"
}
own=$(proxy_disks)
leftovers() {
	lab_ctl state | py "
import json, sys
s = json.load(sys.stdin)
snaps = sum(1 for v in s['vms'] for x in v.get('snapshots') or [] if x['name'].startswith('vmdkfs-'))
proxy = [v for v in s['vms'] if v['name'] == '$proxy'][0]
added = len([d for d in proxy['disks'] if not d['label'].startswith('Hard disk filler')]) - $own
added += len((s.get('hotadd') or {}).get('disks') or [])
print('snapshots=%d disabled=%d hotadded=%d nfc_links=%d nfc_handles=%d' % (snaps, len(s['disabled_methods'] or []),
      added, s['nfc']['stats']['live'], len(s['nfc']['handles'] or [])))"
}
CLEAN="snapshots=0 disabled=0 hotadded=0 nfc_links=0 nfc_handles=0"

# The bytes each disk must have: the VM's current chain, as qemu-img reads it.
lab_ctl state | py "
import json, sys
s = json.load(sys.stdin)
vm = [v for v in s['vms'] if v['name'] == '$LAB_VM'][0]
for d in vm['disks']:
    print(d['label'].replace(' ', '_'), d['local_chain'][0])" >disks.txt
while read -r label file; do
	qemu-img convert -U -f vmdk -O raw "$file" "want-$label.raw"
done <disks.txt
[ "$(wc -l <disks.txt)" = 2 ] || fail "the lab's VM has not two disks: $(cat disks.txt)"

ROWS=$WORK/rows
: >"$ROWS"
BAD=0
# run_cell STEP FAULT OPTS BODY [AFTER]: one mount with OPTS, the fault set
# up (by the caller) just before.  BODY runs once the mount is in place
# and sets outcome (it sees this function's locals); AFTER, if given, runs
# whatever happened.  The outcome goes to the table, a wrong outcome fails
# the test.
run_cell() {
	local step=$1 fault=$2 o=$3 body=$4 after=${5:-} t0 rc outcome why left took
	# FAULTS_ONLY=REGEX (debugging): only the cells whose "STEP FAULT"
	# matches, their logs kept in FAULTS_LOGS.
	if [ -n "${FAULTS_ONLY:-}" ] && [ "$fault" != - ] && ! [[ "$step $fault" =~ $FAULTS_ONLY ]]; then
		lab_ctl reset >/dev/null
		lab_ctl "nfc?stall_ms=2500" >/dev/null
		return 0
	fi
	rm -f "$WORK"/logs/*
	rm -f err
	mkdir -p m
	t0=$(date +%s)
	rc=0
	timeout -s KILL $CELL_LIMIT "$VMDKFS" -o "$o" m 2>err || rc=$?
	if [ $rc = 0 ]; then
		MOUNTS="$MOUNTS $WORK/m"
		outcome="mounted"
		$body
	elif [ $rc = 137 ]; then
		outcome="HUNG (killed after $CELL_LIMIT s)"
		BAD=$((BAD + 1))
	else
		why=$(grep -v '^vmdkfs: warning' err | head -1 | sed 's/^vmdkfs: //; s@\[LocalDS_0\] DC0_C0_RP0_VM0/@@g' | cut -c1-400)
		[ -n "$why" ] || {
			why="no message"
			BAD=$((BAD + 1))
		}
		outcome="refused (exit $rc): $why"
	fi
	[ -z "$after" ] || $after
	lab_ctl reset >/dev/null
	lab_ctl "nfc?stall_ms=2500" >/dev/null
	if ! left=$(wait_clean); then
		outcome="$outcome; LEFT BEHIND: $left"
		BAD=$((BAD + 1))
		# Tidy up for the next cell, so that one failure stays one.
		"$VMDKFS" cleanup -o "server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$WORK/pw,thumbprint=$LAB_THUMBPRINT_SHA256,hotadd_sysfs=$WORK/sys,hotadd_dev=$WORK/dev" >/dev/null 2>&1 || true
	fi
	took=$(($(date +%s) - t0))
	if [ -n "${FAULTS_LOGS:-}" ]; then
		mkdir -p "$FAULTS_LOGS"
		cat "$WORK"/logs/* >"$FAULTS_LOGS/$(echo "$step $fault" | tr -c 'A-Za-z0-9#_-' _).log" 2>/dev/null
	fi
	if [ $took -gt $CELL_BOUND ]; then
		outcome="$outcome; TOO SLOW (over $CELL_BOUND s)"
		BAD=$((BAD + 1))
	fi
	printf '%s\t%s\t%s\t%ss\n' "$step" "$fault" "$outcome" "$took" >>"$ROWS"
	printf '%-34s %-9s %s (%ss)\n' "$step" "$fault" "$outcome" "$took"
}

# Both disks read whole and compared: the right bytes, or EIO.
read_disks() {
	local f label
	for f in m/*/*.raw; do
		label=$(basename "$f" .raw)
		if timeout -s KILL $CELL_LIMIT cat "$f" >got.raw 2>readerr; then
			if ! cmp -s got.raw "want-$label.raw"; then
				outcome="WRONG BYTES in $label"
				BAD=$((BAD + 1))
			fi
		elif grep -q "Input/output error" readerr; then
			outcome="$outcome, EIO on $label"
		else
			outcome="$outcome, read of $label: $(head -c 80 readerr)"
			BAD=$((BAD + 1))
		fi
	done
	[ "$outcome" = mounted ] && outcome="mounted, right bytes"
	umount_vmdkfs m
}
cell() { run_cell "$1" "$2" "$opts" read_disks; }

# --- A clean mount: the SOAP calls and NFC messages of the exchange ---
lab_ctl "reset?calls=1" >/dev/null
lab_ctl "nfc/log?clear=1" >/dev/null
cell "(none)" "-"
grep -q "right bytes" <(tail -1 "$ROWS") || fail "the clean mount: $(tail -1 "$ROWS")"
lab_ctl state | py "
import json, sys
for c in json.load(sys.stdin)['call_log']: print(c)" >calls.txt
lab_ctl nfc/log | py "
import json, sys
log = json.load(sys.stdin)
for i, c in enumerate(log['connections'][:2]):
    for m in c['messages']:
        what = m['row'] or m['kind'] + ' ' + str(m.get('type', ''))
        if m['kind'] == 'authd':
            what = m['line'].split(' ')[0].lower()
        print(i + 1, what.replace(' ', '_'))" >msgs.txt
nsoap=$(wc -l <calls.txt)
nmsgs=$(wc -l <msgs.txt)
[ "$nsoap" -gt 10 ] || fail "the clean mount made only $nsoap SOAP calls"
[ "$nmsgs" -gt 20 ] || fail "the clean mount sent only $nmsgs NFC messages"
echo "clean mount: $nsoap SOAP calls, $nmsgs NFC messages on 2 links"

# The calls vmdkfs sends again when their answer is lost (vsphere/soap.c).
retry_safe() {
	case $1 in
	Retrieve* | Find* | QueryChangedDiskAreas | Nfc* | EnableMethods | Logout | CreateContainerView | DestroyView) return 0 ;;
	esac
	return 1
}
# Whether a step of the short pass gets the other faults too.
spread() { [ "$FULL" = 1 ] || [ $(($1 % 5)) = 2 ]; }

# --- SOAP: every request of the mount and of its unmount ---
k=0
while read -r method; do
	k=$((k + 1))
	for mode in close after truncate garbage; do
		case $mode in
		close) ;;
		# A lost answer matters where the call changes something;
		# the short pass leaves it out for calls that only read.
		after) [ "$FULL" = 1 ] || ! retry_safe "$method" || continue ;;
		*) spread $k || continue ;;
		esac
		lab_ctl "drop?skip=$((k - 1))&count=1&mode=$mode" >/dev/null
		cell "SOAP #$k $method" "$mode"
	done
	if spread $k; then
		lab_ctl "delay?method=$method&ms=4000&count=1" >/dev/null
		cell "SOAP #$k $method" "stall"
	fi
done <calls.txt

# --- NFC: every message of each link ---
declare -A nth last reads
while read -r conn what; do
	nth[$conn]=$((${nth[$conn]:-0} + 1))
	k=${nth[$conn]}
	# The short pass: of the reads, the first two and every tenth.
	if [ "$FULL" != 1 ] && [ "$what" = aio.read ] && [ "${last[$conn]:-}" = aio.read ]; then
		reads[$conn]=$((${reads[$conn]:-1} + 1))
		[ ${reads[$conn]} -le 2 ] || [ $(($k % 10)) = 2 ] || continue
	fi
	last[$conn]=$what
	for fault in close stall garbage trickle; do
		[ $fault = close ] || spread $k || continue
		extra=""
		[ $fault = trickle ] && extra="&trickle_ms=40"
		lab_ctl "nfc?fault=$fault&fault_at=$k&fault_conn=$conn$extra" >/dev/null
		cell "NFC link $conn #$k $what" "$fault"
	done
done <msgs.txt

# --- The host refuses new connections (its NFC connection limit) ---
for n in 1 2 8; do
	lab_ctl "nfc?refuse=$n" >/dev/null
	cell "NFC: $n connection(s) refused" "refuse"
done

# --- hotadd: every SOAP request of a snapshot=new hotadd mount ---
# The same VM, its snapshot's disks attached to the proxy VM (the lab's
# simulation, see tests/test-hotadd.sh) and read as SCSI disks.  The calls
# before its first of its own (login, inventory, PrepareForAccess, the
# snapshot: the nbdssl mount's first calls, faulted above) get cells only
# in the full pass; from the proxy's lookup on (ReconfigVM_Task and its
# task, the reads, the detach, the unmount) every call gets the close and
# the lost answer (if it changes something), and a spread of them the
# other faults.
if [ $hotadd = 1 ]; then
	hopts="$NFC_OPTS,snapshot=new,transports=hotadd,hotadd_sysfs=$WORK/sys,hotadd_dev=$WORK/dev,hotadd_timeout=10,soap_timeout=3,tmpDirectory=$WORK/logs,quiet"
	lab_ctl "reset?calls=1" >/dev/null
	run_cell "hotadd: (none)" "-" "$hopts" read_disks
	grep -q "right bytes" <(tail -1 "$ROWS") || fail "the clean hotadd mount: $(tail -1 "$ROWS")"
	lab_ctl state | py "
import json, sys
for c in json.load(sys.stdin)['call_log']: print(c)" >hcalls.txt
	grep -q ReconfigVM_Task hcalls.txt || fail "the clean hotadd mount made no ReconfigVM_Task: $(tr '\n' ' ' <hcalls.txt)"
	echo "clean hotadd mount: $(wc -l <hcalls.txt) SOAP calls"
	k=0
	own_step=0
	nreconf=0
	while read -r method; do
		k=$((k + 1))
		what=$method
		# The first ReconfigVM_Task of each disk attaches it, the
		# later ones detach.
		if [ "$method" = ReconfigVM_Task ]; then
			nreconf=$((nreconf + 1))
			what="$method (attach)"
			[ $nreconf -le "$(wc -l <disks.txt)" ] || what="$method (detach)"
		fi
		# From the first call the nbdssl mount does not make on.
		grep -qx "$method" calls.txt || own_step=1
		[ "$method" = ReconfigVM_Task ] && own_step=1
		for mode in close after truncate garbage; do
			case $mode in
			close) [ "$FULL" = 1 ] || [ $own_step = 1 ] || continue ;;
			after) [ "$FULL" = 1 ] || { [ $own_step = 1 ] && ! retry_safe "$method"; } || continue ;;
			*) { [ $own_step = 1 ] && spread $k; } || [ "$FULL" = 1 ] || continue ;;
			esac
			lab_ctl "drop?skip=$((k - 1))&count=1&mode=$mode" >/dev/null
			run_cell "hotadd: SOAP #$k $what" "$mode" "$hopts" read_disks
		done
		if { [ $own_step = 1 ] && spread $k; } || [ "$FULL" = 1 ]; then
			lab_ctl "delay?method=$method&ms=4000&count=1" >/dev/null
			run_cell "hotadd: SOAP #$k $what" "stall" "$hopts" read_disks
		fi
	done <hcalls.txt
	# The guest never sees the disk attached (no SCSI device on a scan):
	# hotadd_timeout, then the disk detached again.
	lab_ctl "hotadd?hide=1" >/dev/null
	run_cell "hotadd: the SCSI device never appears" "hide" "$hopts" read_disks
	lab_ctl "hotadd?hide=0" >/dev/null
else
	echo "SKIP the hotadd cells: $hotadd_why"
fi

# --- NFC writes: a fault at the messages of a write's link ---
# The second VM, powered off, mounted rw over nbd; 2 MiB written at 1 MiB
# (two requests of 1 MiB, each in fragments sharing an opId: a fault in
# the middle of a write).  Each cell then reads the disk back from the
# datastore folder with qemu-img: the bytes outside the write never
# change; a write that succeeded is all there; one that failed left each
# sector old or new, never anything else.  The folder is put back after
# each cell.
lab_login >/dev/null
vm1=$(echo "$LAB_VMS" | cut -d' ' -f2)
vm1_moref=$(lab_ctl state | py "import json,sys; print([v['moref'] for v in json.load(sys.stdin)['vms'] if v['name']=='$vm1'][0])")
lab_vm_task PowerOffVM_Task "$vm1_moref"
wfile=$(lab_ctl state | py "import json,sys; print([v for v in json.load(sys.stdin)['vms'] if v['name']=='$vm1'][0]['disks'][0]['local_chain'][0])")
wdir=$(dirname "$wfile")
cp -a "$wdir" "$WORK/w-orig"
qemu-img convert -U -f vmdk -O raw "$wfile" w-old.raw
head -c $((2 << 20)) /dev/urandom >w-new.bin
wopts="$(echo "$NFC_OPTS" | sed "s/,vm=[^,]*//"),vm=$vm1,rw,transports=nbd,$T_OPTS,tmpDirectory=$WORK/logs,quiet"
# The write (2 MiB at 1 MiB), then the disk read back from the folder.
write_disk() {
	local f dd_rc=0 check
	f=$(ls -d m/*/*.raw | head -1)
	timeout -s KILL $CELL_LIMIT dd if=w-new.bin of="$f" bs=1M seek=1 conv=notrunc,fsync status=none 2>dderr || dd_rc=$?
	umount_vmdkfs m
	qemu-img convert -U -f vmdk -O raw "$wfile" w-got.raw
	check=$(/usr/bin/python3 - w-old.raw w-new.bin w-got.raw $dd_rc <<'PY'
import sys
old, new, got = (open(p, "rb").read() for p in sys.argv[1:4])
a, b = 1 << 20, (1 << 20) + len(new)
if got[:a] != old[:a] or got[b:] != old[b:]:
    print("WRONG BYTES outside the write")
elif sys.argv[4] == "0":
    print("written, right bytes" if got[a:b] == new else "WRONG BYTES: a write that succeeded is not all there")
else:
    mixed = [i for i in range(0, len(new), 512) if got[a + i:a + i + 512] not in (old[a + i:a + i + 512], new[i:i + 512])]
    print("write failed, each sector old or new" if not mixed else "WRONG BYTES: sector %d neither old nor new" % (mixed[0] // 512))
PY
)
	case $check in WRONG*) BAD=$((BAD + 1)) ;; esac
	outcome="mounted, $check"
	[ $dd_rc = 0 ] || outcome="$outcome ($(grep -o 'Input/output error' dderr | head -1))"
}
# The folder as it was, for the next cell.
restore_wdir() { rm -rf "$wdir" && cp -a "$WORK/w-orig" "$wdir"; }
wcell() { run_cell "$1" "$2" "$wopts" write_disk restore_wdir; }
lab_ctl "nfc/log?clear=1" >/dev/null
wcell "write: (none)" "-"
grep -q "written, right bytes" <(tail -1 "$ROWS") || fail "the clean write: $(tail -1 "$ROWS")"
lab_ctl nfc/log | py "
import json, sys
log = json.load(sys.stdin)
for m in log['connections'][0]['messages']:
    what = m['row'] or m['kind'] + ' ' + str(m.get('type', ''))
    if m['kind'] == 'authd':
        what = m['line'].split(' ')[0].lower()
    print(what.replace(' ', '_'))" >wmsgs.txt
k=0
while read -r what; do
	k=$((k + 1))
	# The short pass: every third message, and every fourth one of the
	# write's.
	[ "$FULL" = 1 ] || [ $((k % 3)) = 1 ] || { [ "$what" = aio.write ] && [ $((k % 4)) = 0 ]; } || continue
	for fault in close stall garbage; do
		[ $fault = close ] || [ "$FULL" = 1 ] || [ $((k % 9)) = 1 ] || continue
		lab_ctl "nfc?fault=$fault&fault_at=$k&fault_conn=1" >/dev/null
		wcell "NFC write link #$k $what" "$fault"
	done
done <wmsgs.txt

# --- The table: every cell, then the steps of a kind together ---
echo
echo "| step | fault | outcome |"
echo "|---|---|---|"
awk -F'\t' '{ printf "| %s | %s | %s |\n", $1, $2, $3 }' "$ROWS"
echo
/usr/bin/python3 - "$ROWS" <<'PY'
import re, sys
faults = ["close", "after", "truncate", "garbage", "stall", "trickle", "refuse", "hide"]
rows, order = {}, []
for line in open(sys.argv[1]):
    step, fault, outcome, _ = line.rstrip("\n").split("\t")
    if fault == "-":
        continue
    kind = re.sub(r" #\d+", "", step)
    kind = re.sub(r"^NFC link \d ", "NFC ", kind)
    kind = re.sub(r"^NFC write link ", "NFC write: ", kind)
    kind = re.sub(r"^hotadd: SOAP ", "hotadd: ", kind)
    if kind not in rows:
        rows[kind] = {}
        order.append(kind)
    if outcome.startswith("mounted, right bytes"):
        o = "mounted, right bytes"
    elif outcome.startswith("mounted, written, right bytes"):
        o = "written, right bytes"
    elif outcome.startswith("mounted, write failed, each sector old or new"):
        o = "write EIO, each sector old or new"
    elif "EIO" in outcome:
        o = "mounted, EIO"
    else:
        o = re.sub(r"^refused \(exit \d+\): ", "refused: ", outcome)
        o = re.sub(r"^refused: (\S+ \(Hard disk \d\): |127\.0\.0\.1: )+", "refused: ", o)
        o = re.sub(r"\[LocalDS_0\] \S+ \(Hard disk \d\): ", "", o)
        o = re.sub(r"\(127\.0\.0\.1:\d+\)|127\.0\.0\.1: |=\d+|Hard disk \d", "", o)
        o = re.sub(r"DC0_C0_RP0_VM\d(_\d)?\.vmdk", "DISK", o)
        o = re.sub(r"vmdkfs-\d{8}T\d{6}Z", "vmdkfs-TIME", o)
        o = re.sub(r"/tmp/vmdkfs-test\.\w+", "TEST", o)
        o = re.sub(r"vm-\d+", "VM", o).strip()
        o = o if len(o) <= 150 else o[:150] + "..."
    rows[kind].setdefault(fault, set()).add(o)
used = [f for f in faults if any(f in r for r in rows.values())]
print("| step | " + " | ".join(used) + " |")
print("|---|" + "---|" * len(used))
for k in order:
    print("| %s | %s |" % (k, " | ".join(" / ".join(sorted(rows[k].get(f, ["-"]))) for f in used)))
PY
echo
cells=$(wc -l <"$ROWS")
echo "$cells cells, $BAD wrong"
[ "$BAD" = 0 ] || fail "$BAD of $cells cells went wrong (see the table)"

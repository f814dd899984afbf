#!/bin/bash
# Changed block tracking over the lab's NFC (nbdssl): holes from "*",
# changed_since= views, apply-changes, and every fault a clear error.
#
# SIMULATED: the lab answers QueryChangedDiskAreas itself (tests/lab/cbt.go)
# from the chain's real files: "changed since A" = the clusters qemu-img map
# shows allocated in the links written after A, rounded out to 64 KiB as
# ESXi 8 was recorded doing; "*" = the chain's non-zero areas.  The
# oracles are independent: qemu-img convert of B's chain, and the list of
# writes this test made.
. "$(dirname "$0")/lib.sh"
need qemu-img curl getfattr cp
[ -x /usr/bin/python3 ] || skip "python3 is not installed"
PY=/usr/bin/python3
lab_nfc_setup
opts="$NFC_OPTS,transports=nbdssl,tmpDirectory=$WORK/logs"
mkdir -p logs

snap() { # NAME: a snapshot of the VM
	lab_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this><name>$1</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"
	task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
	[ "$(lab_task_wait "$task")" = success ] || fail "CreateSnapshot_Task $1"
}
xval() { getfattr --only-values -n "user.vmdkfs.$1" "$2"; }
# must_fail WHAT PATTERN OPTS: the mount fails (non-zero), saying PATTERN.
must_fail() {
	mkdir -p bad
	if "$VMDKFS" -o "$3" bad 2>err.txt; then
		fusermount3 -u bad 2>/dev/null || true
		fail "$1: the mount succeeded"
	fi
	grep -q "$2" err.txt || fail "$1: $(cat err.txt)"
	echo "ok $1: $(tail -1 err.txt | cut -c1-150)..."
}
lab_login
snap A

# --- Random guest writes between A and B (into the running delta) ---
$PY - >writes.txt <<'PY'
import random
random.seed(1313)
size = 16 << 20
for i in range(40):
    n = random.choice([512, 4096, 65536, 200 * 512, 1 << 20])
    off = random.randrange(0, size - n) // 512 * 512
    print(off, n, "0x%02x" % random.randrange(1, 255))
PY
while read -r off len pat; do
	lab_ctl "write?vm=$LAB_VM&disk=2000&offset=$off&length=$len&pattern=$pat" | grep -q '"ok": true' ||
		fail "lab write $off $len"
done <writes.txt
snap B

# --- Full backup at A (a sparse copy: "*" gives the holes) ---
mount_vmdkfs m -o "$opts,snapshot=A"
d=m/A/Hard_disk_1.raw
[ "$(xval transport $d)" = nbdssl ] || fail "transport"
ida=$(xval change_id $d)
ida2=$(xval change_id m/A/Hard_disk_2.raw)
"$VMDKFS" status --json m >status.json || fail "status --json"
$PY - "$ida" "$ida2" <<'PY' || fail "status --json: $(cat status.json)"
import json, sys
s = json.load(open("status.json"))
by = {d["device_key"]: d for d in s["disks"] if d["view"] == "disk"}
assert by[2000]["change_id"] == sys.argv[1] and by[2001]["change_id"] == sys.argv[2], by
assert all(d["capacity"] == 16 << 20 for d in by.values())
PY
echo "ok status --json: device keys and change ids"
qemu-img convert -f vmdk -O raw "$(local_of $d)" wantA.raw
lab_ctl "reset?calls=1" >/dev/null
cp --sparse=always $d full.raw
same full.raw wantA.raw "full copy at A"
read_a=$(nstat bytes_read)
inuse=$(( $(stat -c %b $d) * 512 ))
[ "$inuse" -lt $((4 << 20)) ] || fail "st_blocks of a thin disk: $inuse bytes"
# What the host sent: the areas in use, plus at most the kernel's
# readahead (1 MiB, readahead=) past the end of each (DISK.raw reads the
# true bytes there; the NFC transport's own read-ahead follows the areas
# in use).
nareas=$($PY -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); pos = n = 0; size = os.fstat(fd).st_size
while pos < size:
    try: d = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError: break
    pos = os.lseek(fd, d, os.SEEK_HOLE); n += 1
print(n)" $d)
[ "$read_a" -ge "$inuse" ] && [ "$read_a" -le $((inuse + nareas * (1 << 20))) ] ||
	fail "the sparse copy read $read_a bytes over NFC, $inuse in use in $nareas areas"
[ "$read_a" -gt 0 ] || fail "nothing read"
echo "ok sparse copy of a thin disk over nbdssl: $read_a of $((16 << 20)) bytes read from the host ($inuse in use, $nareas areas)"
grep -q "areas in use (changed block tracking" logs/vmdkfs-*.log || fail "no '*' log line"
umount_vmdkfs m
# cbt=off: no holes, the whole disk read.
mount_vmdkfs m -o "$opts,snapshot=A,cbt=off"
[ "$($PY -c "import os,sys; f=os.open(sys.argv[1],os.O_RDONLY); print(os.lseek(f,0,os.SEEK_HOLE))" m/A/Hard_disk_1.raw)" = $((16 << 20)) ] ||
	fail "cbt=off: holes"
umount_vmdkfs m
echo "ok cbt=off: no holes"

# --- Incremental at B since A ---
inc="$opts,snapshot=B,changed_since.2000=$ida,changed_since.2001=$ida2"
mount_vmdkfs m -o "$inc"
# Counted from the mount on: listing the folder reads the partition tables,
# and a read at the start of an area sends the read-ahead on to the next
# areas, whose bytes the copy below then takes from the transport.
lab_ctl "reset?calls=1" >/dev/null
b=m/B/Hard_disk_1.raw
[ -f m/B/Hard_disk_1.changed.json ] && [ -f m/B/Hard_disk_1.changed.raw ] || fail "no views: $(ls m/B)"
cp m/B/Hard_disk_1.changed.json changed.json
cp m/B/Hard_disk_2.changed.json changed2.json
qemu-img convert -f vmdk -O raw "$(local_of $b)" wantB.raw
$PY - "$ida" "$(xval change_id $b)" <<'PY' || fail "changed.json"
import json, sys
G = 64 << 10
j = json.load(open("changed.json"))
assert j["base_change_id"] == sys.argv[1] and j["change_id"] == sys.argv[2], j
assert j["device_key"] == 2000 and j["capacity"] == 16 << 20, j
areas = [(a["offset"], a["length"]) for a in j["areas"]]
assert areas == sorted(areas) and all(l > 0 for _, l in areas)
assert all(areas[i][0] + areas[i][1] < areas[i + 1][0] for i in range(len(areas) - 1)), "not merged"
assert sum(l for _, l in areas) == j["changed_bytes"]
writes = [tuple(int(x, 0) for x in l.split()[:2]) for l in open("writes.txt")]
inside = lambda o, n, rs: any(s <= o and o + n <= s + l for s, l in rs)
for o, n in writes:  # every written byte is covered
    for p in range(o, o + n, 512):
        assert inside(p, 512, areas), ("missed", p)
gran = [(o // G * G, (o + n + G - 1) // G * G - o // G * G) for o, n in writes]
for o, n in areas:  # every area lies in the granules of what was written
    for p in range(o, o + n, G):
        assert inside(p, min(G, o + n - p), gran), ("extra", p)
j2 = json.load(open("changed2.json"))
assert j2["device_key"] == 2001 and j2["areas"] == [], j2
print("changed areas:", len(areas), "bytes:", j["changed_bytes"])
PY
echo "ok DISK.changed.json covers every write, inside its 64 KiB granules; disk 2 unchanged"
# The view: the changed bytes, zeros elsewhere; SEEK_DATA and st_blocks
# give exactly the areas; a sparse copy reads only them from the host.
v=m/B/Hard_disk_1.changed.raw
[ "$(stat -c %s $v)" = $((16 << 20)) ] || fail "view size"
cp --sparse=always $v inc.raw
read_b=$(nstat bytes_read)
$PY - $v <<'PY' || fail "the changed view"
import json, os, sys
j = json.load(open("changed.json"))
areas = [(a["offset"], a["length"]) for a in j["areas"]]
fd = os.open(sys.argv[1], os.O_RDONLY)
got, pos, size = [], 0, os.fstat(fd).st_size
while pos < size:
    try:
        d = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    got.append((d, h - d)); pos = h
assert got == areas, (got[:5], areas[:5])
assert os.fstat(fd).st_blocks * 512 == j["changed_bytes"]
want = bytearray(size)
B = open("wantB.raw", "rb").read()
for o, l in areas:
    want[o:o + l] = B[o:o + l]
assert open("inc.raw", "rb").read() == bytes(want)
PY
# (DISK.raw only now: reads ahead in flight would count above.)
same $b wantB.raw "DISK.raw at B reads the true bytes"
changed=$($PY -c 'import json; print(json.load(open("changed.json"))["changed_bytes"])')
# Not exact: the partition tables of both disks are read too, and a read
# the transport has no slot for makes it drop its oldest reply (read
# again if asked for): at most 4 MiB more is allowed.
[ "$read_b" -ge "$changed" ] && [ "$read_b" -le $((changed + (4 << 20))) ] ||
	fail "the incremental copy read $read_b bytes over NFC, $changed changed"
echo "ok DISK.changed.raw: SEEK_DATA/st_blocks = the areas, zeros elsewhere; $read_b bytes read from the host ($changed changed)"
# apply-changes: the full copy at A becomes B.
"$VMDKFS" apply-changes $v full.raw >apply.txt || fail "apply-changes: $(cat apply.txt)"
same full.raw wantB.raw "full copy at A + apply-changes of B since A vs qemu-img convert of B"
echo "ok apply-changes: $(cat apply.txt)"
# From SEEK_DATA alone (no json beside it) and a copy of the wrong size.
cp wantA.raw full2.raw
ln -s "$PWD/$v" alone.raw
"$VMDKFS" apply-changes alone.raw full2.raw >apply2.txt || fail "apply-changes (SEEK_DATA)"
grep -q "areas from SEEK_DATA" apply2.txt || fail "$(cat apply2.txt)"
same full2.raw wantB.raw "apply-changes through SEEK_DATA"
truncate -s 1M small.raw
if "$VMDKFS" apply-changes $v small.raw 2>err.txt; then fail "apply-changes into a copy of the wrong size"; fi
grep -q "not a full copy of this disk" err.txt || fail "$(cat err.txt)"
[ "$(stat -c %s small.raw)" = 1048576 ] && $PY -c 'import sys; sys.exit(1 if any(open("small.raw","rb").read()) else 0)' ||
	fail "apply-changes wrote into the wrong-size copy"
echo "ok apply-changes refuses a copy of the wrong size, writes nothing"
umount_vmdkfs m

# Answers in windows (vSphere may answer part of the disk at a time).
lab_ctl "cbt?window=1048576" >/dev/null
mount_vmdkfs m -o "$inc"
cmp -s m/B/Hard_disk_1.changed.json changed.json || fail "windowed answers differ"
umount_vmdkfs m
lab_ctl "cbt?window=0" >/dev/null
[ "$(lab_ctl state | $PY -c 'import json,sys; print(json.load(sys.stdin)["calls"].get("QueryChangedDiskAreas", 0))')" -gt 16 ] ||
	fail "no windowed calls"
echo "ok windows of 1 MiB: 16 calls per disk, the same areas"
# changed_since=* : the areas in use.
mount_vmdkfs m -o "$opts,snapshot=B,changed_since=*"
grep -q '"base_change_id": "\*"' m/B/Hard_disk_1.changed.json || fail "changed_since=*"
umount_vmdkfs m
echo "ok changed_since=*"

# --- Faults: a message and a non-zero exit, never a silent increment ---
must_fail "a change id of another disk" "a full backup is needed" "$opts,snapshot=B,changed_since=$ida"
must_fail "an unknown change id" "a full backup is needed" "$opts,snapshot=B,changed_since.2000=52 00 00 00 00 00 00 00-00 00 00 00 00 00 00 00/7,changed_since.2001=$ida2"
lab_ctl "cbt?bad=outside" >/dev/null
must_fail "an area outside the disk" "outside the disk" "$inc"
lab_ctl "cbt?bad=none" >/dev/null
lab_ctl "fault?method=QueryChangedDiskAreas&fault=SystemError&count=-1&message=injected" >/dev/null
must_fail "a SystemError fault" "injected" "$inc"
# ... where only the holes depend on it, the disk shows none, one log line.
rm -f logs/*
mount_vmdkfs m -o "$opts,snapshot=B"
[ "$($PY -c "import os,sys; f=os.open(sys.argv[1],os.O_RDONLY); print(os.lseek(f,0,os.SEEK_HOLE))" m/B/Hard_disk_1.raw)" = $((16 << 20)) ] ||
	fail "'*' refused but holes shown"
same m/B/Hard_disk_1.raw wantB.raw "reads with '*' refused"
umount_vmdkfs m
[ "$(grep -c "Hard disk 1): no holes over nbdssl" logs/vmdkfs-*.log)" = 1 ] || fail "not one log line: $(cat logs/*)"
lab_ctl "fault?clear=1" >/dev/null
echo "ok '*' refused: no holes, one log line"
lab_ctl "cbt?vm=$LAB_VM&enabled=0" >/dev/null
must_fail "CBT off" "changeTrackingEnabled is false" "$inc"
lab_ctl "cbt?vm=$LAB_VM&enabled=1" >/dev/null # a new epoch: every id is stale
must_fail "a change id from before a reset" "a full backup is needed" "$inc"
# An independent disk (read through a mapped datastore: the lab's NFC
# refuses to open a sparse disk in independent mode before CBT is asked).
lab_ctl "cbt?vm=$LAB_VM&disk=2000&mode=independent_persistent" >/dev/null
must_fail "an independent disk" "independent disks are not part of snapshots" \
	"$NFC_OPTS,datastore.$LAB_DATASTORE=$LAB_DATASTORE_DIR,snapshot=new,changed_since.2000=*"
lab_ctl "cbt?vm=$LAB_VM&disk=2000&mode=persistent" >/dev/null
echo "PASS"

#!/bin/bash
# Changed block tracking benchmark (part of make bench): an incremental
# backup of a BENCH_CBT_MIB (default 1024) MiB disk with 5% of it changed
# between snapshots A and B, over nbdssl, against a full read of the same
# disk at B, in one run: bytes the host sent (the lab's NFC bytes_read) and
# time.  Target: the incremental at most 0.1x the full read's time.  The
# peer is the lab (tests/lab; QueryChangedDiskAreas SIMULATED from the
# chain's real allocation).  The full read uses cbt=off (every byte read,
# as a backup without CBT does); the incremental copies DISK.changed.raw
# with cp --sparse=always.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
VMDKFS=${VMDKFS:-$top/vmdkfs}
MIB=${BENCH_CBT_MIB:-1024}
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vmdkfs-cbench.XXXXXX")
. "$top/tests/lab/lab.sh"
cleanup() {
	mountpoint -q "$dir/m" 2>/dev/null && fusermount3 -u "$dir/m"
	sleep 0.5
	lab_stop
	rm -rf "$dir"
}
trap cleanup EXIT
lab_build "$top/build/lab" >/dev/null
lab_start "$dir/lab" -disk-mib "$MIB" -vms 1 -first-vm-disks 1 >/dev/null
printf '%s\n' "$LAB_PASSWORD" >"$dir/pw"
chmod 600 "$dir/pw"
mkdir -p "$dir/m"
cd "$dir"
opts="server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$dir/pw,thumbprint=$LAB_THUMBPRINT_SHA256,nfchostport=$LAB_NFC_PORT,vm=$LAB_VM,transports=nbdssl"
stat_bytes() { lab_ctl state | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['nfc']['stats']['bytes_read'])"; }
snap() {
	lab_soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this><name>$1</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"
	task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
	[ "$(lab_task_wait "$task")" = success ]
}
waitmount() { for _ in $(seq 100); do mountpoint -q m && return; sleep 0.05; done; exit 1; }
umountwait() { fusermount3 -u m; sleep 1; }
lab_login
# The guest fills the disk first (a full disk: every byte in use), then A.
step=$((64 << 20))
for ((o = 0; o < MIB << 20; o += step)); do
	lab_ctl "write?vm=$LAB_VM&disk=0&offset=$o&length=$step&pattern=0x5a" >/dev/null
done
snap A
"$VMDKFS" -o "$opts,snapshot=A" m && waitmount
ida=$(getfattr --only-values -n user.vmdkfs.change_id m/A/Hard_disk_1.raw)
umountwait
# 5% changed: writes of 1 MiB at random places.
n=$(((MIB * 5 + 99) / 100))
for off in $(/usr/bin/python3 -c "
import random; random.seed(7); mib=$MIB
print(' '.join(str(x << 20) for x in random.sample(range(mib), $n)))"); do
	lab_ctl "write?vm=$LAB_VM&disk=0&offset=$off&length=1048576&pattern=0xc3" >/dev/null
done
snap B

echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
# Three runs, interleaved (full, incremental, full, ...); each time is
# the median, with the spread.  Bytes from the host are counted from
# before each mount (listing the folder reads the partition table, and
# the read-ahead may already fetch the first areas), in the first run.
# The bytes are checked outside the timed parts, in the first run: the
# full read against qemu-img's reading of the lab's chain, the copy's
# areas against the same.
. "$top/scripts/bench-lib.sh"
: >full.t
: >inc.t
for run in 1 2 3; do
	b0=$(stat_bytes)
	"$VMDKFS" -o "$opts,snapshot=B,cbt=off" m && waitmount
	ls m/B >/dev/null
	t0=$(date +%s.%N)
	cat m/B/Hard_disk_1.raw >/dev/null
	t1=$(date +%s.%N)
	[ "$run" = 1 ] && full_bytes=$(($(stat_bytes) - b0))
	echo "$t0 $t1" | awk '{ printf "%.3f\n", $2 - $1 }' >>full.t
	if [ "$run" = 1 ]; then
		p=$(getfattr --absolute-names --only-values -n user.vmdkfs.datastore_path m/B/Hard_disk_1.raw)
		qemu-img convert -f vmdk -O raw "$LAB_DATASTORE_DIR/${p#*] }" want.raw
		cmp -s m/B/Hard_disk_1.raw want.raw || { echo "bench-cbt: the full read returned other bytes"; exit 1; }
	fi
	umountwait

	b0=$(stat_bytes)
	"$VMDKFS" -o "$opts,snapshot=B,changed_since=$ida" m && waitmount
	ls m/B >/dev/null
	cp m/B/Hard_disk_1.changed.json changed.json
	t2=$(date +%s.%N)
	cp --sparse=always m/B/Hard_disk_1.changed.raw inc.raw
	t3=$(date +%s.%N)
	[ "$run" = 1 ] && inc_bytes=$(($(stat_bytes) - b0))
	echo "$t2 $t3" | awk '{ printf "%.3f\n", $2 - $1 }' >>inc.t
	umountwait
	if [ "$run" = 1 ]; then
		/usr/bin/python3 - <<'EOC' || { echo "bench-cbt: the incremental copy holds other bytes"; exit 1; }
import json
j = json.load(open("changed.json"))
with open("inc.raw", "rb") as a, open("want.raw", "rb") as b:
    for x in j["areas"]:
        a.seek(x["offset"]); b.seek(x["offset"])
        assert a.read(x["length"]) == b.read(x["length"]), x
EOC
	fi
	rm -f inc.raw
done
changed=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["changed_bytes"])' changed.json)
rm -f want.raw
tf=$(median full.t) ti=$(median inc.t)

/usr/bin/python3 - "$tf" "$ti" "$full_bytes" "$inc_bytes" "$changed" "$MIB" <<'EOP'
import sys
tf, ti = map(float, sys.argv[1:3])
full, inc, changed, mib = map(int, sys.argv[3:7])
r = ti / tf
print("cbt bench: %d MiB disk, %.1f%% changed (%d bytes in the areas); times: medians of 3" % (mib, 100.0 * changed / (mib << 20), changed))
print("  full read (cbt=off):    %12d bytes from the host  %7.2f s  %7.1f MB/s" % (full, tf, full / tf / 1e6))
print("  incremental (changed):  %12d bytes from the host  %7.2f s" % (inc, ti))
print("  ratio incremental/full: time %.3fx  bytes %.3fx  (target time <= 0.1x: %s)" % (r, inc / full if full else 0, "met" if r <= 0.1 else "NOT met"))
EOP
# For make bench's table: the incremental copy's time against the full
# read's (lower is better).
bench_row "incremental backup, 5% changed, time (s)" "$ti" "full read over nbdssl (s)" "$tf" "<=0.1" "$(spread inc.t), $(spread full.t)"

#!/bin/bash
# HotAdd benchmark (part of make bench): a sequential read of a
# BENCH_HOTADD_MIB (default 1024) MiB snapshot disk through a vmdkfs mount
# over hotadd, against dd iflag=direct bs=1M on the same loop device, in
# the same run (alternating, the median of BENCH_HOTADD_RUNS, default 5,
# each: the lab's device alone spreads by up to 6x between runs here).
# Target: hotadd at least 0.9x dd.
#
# SIMULATED (tests/lab/hotadd.go): the "SCSI disk" attached to the proxy
# VM is a loop device over qemu-storage-daemon's FUSE export of the chain;
# both readers read that same loop device, so the ratio is what vmdkfs
# (FUSE, the alignment layer, O_DIRECT) costs over a raw direct read.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
MIB=${BENCH_HOTADD_MIB:-1024}
RUNS=${BENCH_HOTADD_RUNS:-5}
command -v qemu-storage-daemon >/dev/null || { echo "bench-hotadd: qemu-storage-daemon missing (qemu-system-common): skipped"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "bench-hotadd: needs root (loop devices): skipped"; exit 0; }
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vmdkfs-hbench.XXXXXX")
. "$top/tests/lab/lab.sh"
. "$top/scripts/bench-lib.sh"
cleanup() {
	mountpoint -q "$dir/m" 2>/dev/null && fusermount3 -u "$dir/m"
	mountpoint -q "$dir/c" 2>/dev/null && fusermount3 -u "$dir/c"
	sleep 0.5
	[ -n "$LAB_PROC_PID" ] && lab_ctl "hotadd?off=1" >/dev/null 2>&1
	lab_stop
	rm -rf "$dir"
}
trap cleanup EXIT
lab_build "$top/build/lab" >/dev/null
lab_start "$dir/lab" -disk-mib "$MIB" -vms 2 -first-vm-disks 1 >/dev/null
printf '%s\n' "$LAB_PASSWORD" >"$dir/pw"
chmod 600 "$dir/pw"
mkdir -p "$dir/m"
proxy=$(echo "$LAB_VMS" | cut -d' ' -f2)
lab_ctl "hotadd?proxy=$proxy&sysfs=$dir/sys&dev=$dir/dev" | grep -q '"ok": true'

"$top/vmdkfs" -o "server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$dir/pw,thumbprint=$LAB_THUMBPRINT_SHA256,vm=$LAB_VM,snapshot=new,transports=hotadd,hotadd_sysfs=$dir/sys,hotadd_dev=$dir/dev,tmpDirectory=$dir${HOTADD_OPTS:-}" "$dir/m"
f=$(ls -d "$dir"/m/*/Hard_disk_1.raw)
loop=$(lab_ctl state | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['hotadd']['disks'][0]['loop'])")
direct=$(lab_ctl state | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['hotadd']['disks'][0]['loop_direct_io'])")
[ -b "$loop" ] || { echo "bench-hotadd: no loop device ($loop)"; exit 1; }

raw() { dd if="$loop" of=/dev/null bs=1M iflag=direct 2>&1 | tail -1 | dd_mbs; }
# Through the mount: the file's page cache dropped first (a read-only
# mount keeps it across opens).
hot() {
	dd if="$f" of=/dev/null bs=1M count=0 iflag=nocache status=none
	dd if="$f" of=/dev/null bs=1M 2>&1 | tail -1 | dd_mbs
}
mkdir -p "$dir/c"
for _ in $(seq "$RUNS"); do
	raw >>"$dir/raw"
	hot >>"$dir/hot"
	fuse_ceiling_pass "$MIB" "$dir/c" >>"$dir/ceiling" # bench-lib.sh
done
rm_=$(median "$dir/raw")
hm=$(median "$dir/hot")
echo "HotAdd benchmark: $MIB MiB sequential read of a snapshot disk (MB/s; runs $(echo $(cat "$dir/raw")) / $(echo $(cat "$dir/hot")))"
printf '%-44s %8s\n' "dd iflag=direct bs=1M on $loop (direct-io $direct)" "$rm_" "vmdkfs over hotadd (the same device)" "$hm"
awk -v a="$hm" -v b="$rm_" 'BEGIN {
	x = a / b
	printf "hotadd / dd   %.2fx  (target >= 0.9x: %s)\n", x, (x >= 0.9) ? "met" : "NOT met"
}'
bench_row "snapshot disk over hotadd, $MIB MiB" "$hm" "dd iflag=direct, same loop" "$rm_" 0.9 "$(spread "$dir/hot"), $(spread "$dir/raw")"
# For scale: no FUSE file reads faster than the FUSE ceiling; here the
# lab's device (a loop over qemu-storage-daemon's FUSE export) runs beside.
bench_row "snapshot disk over hotadd (for scale)" "$hm" "FUSE ceiling" "$(median "$dir/ceiling")" - "$(spread "$dir/hot"), $(spread "$dir/ceiling")"

#!/bin/bash
# VMFS benchmark (part of make bench): disks read from a VMFS volume on a
# real loop device (losetup --direct-io=on), in one run, with ratios:
#   thick     a thick (eager-zeroed) disk's flat file read through vmdkfs
#             -o lun= (the san data path: transports/lun.c O_DIRECT, vmfs/,
#             vmdk/; a vSphere san mount adds only the datastore lookup)
#             against dd iflag=direct bs=1M of the same number of bytes of
#             the loop device itself (the ceiling);
#   thin      the same data in a thin file (a quarter of its blocks holes);
#   delta     a COWD (VMFS5) / SEsparse (VMFS6) delta over the thick base;
#   oracle    the thick disk's -flat.vmdk read through vmfs-fuse (VMFS5) or
#             vmfs6-fuse (VMFS6) against vmdkfs -o lun= reading the same file.
# Each figure is the median of BENCH_RUNS (3) sequential passes, each after
# dropping the page cache, with the spread; bytes are compared with the
# source outside the timed parts.  Volumes are made by tests/gen/mkvmfs.py.
#   BENCH_SAN_MIB  disk size in MiB (default 1024)
#   BENCH_RUNS     passes per figure (default 3)
set -euo pipefail
export LC_ALL=C
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/bench-lib.sh"
vmdkfs=${VMDKFS:-$top/vmdkfs}
MIB=${BENCH_SAN_MIB:-1024}
RUNS=${BENCH_RUNS:-3}
python=/usr/bin/python3
if [ "$(id -u)" != 0 ] || ! losetup -f >/dev/null 2>&1; then
	echo "bench-san: skipped: needs root and a free loop device"
	exit 0
fi
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vmdkfs-sanbench.XXXXXX")
loops=""
cleanup() {
	for m in "$dir"/m "$dir"/o; do
		mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m"
	done
	for l in $loops; do losetup -d "$l" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"
mkdir -p m o

# secs CMD...: wall time of CMD, seconds.
secs() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk '{ printf "%.4f", $2 - $1 }'
}
# median RUNS times of a read of BYTES by CMD...: "MB/s spread%"
measure() {
	local bytes=$1 i t all=""
	shift
	for i in $(seq "$RUNS"); do
		drop
		t=$(secs "$@")
		all="$all $t"
	done
	echo "$all" | tr ' ' '\n' | grep . | sort -n | awk -v b="$bytes" '
		{ t[NR] = $1 } END {
			m = t[int((NR + 1) / 2)]
			printf "%.0f %.0f\n", b / 1048576 / m, (t[NR] - t[1]) / m * 100 }'
}
readf() { dd if="$1" of=/dev/null bs=1M status=none; }
readdev() { dd if="$1" of=/dev/null bs=1M iflag=direct count="$2" status=none; }

# Source data: random, with every fourth MiB zero (thin holes).
mkdir -p src/vm
head -c $((MIB << 20)) /dev/urandom >base.raw
$python - base.raw <<'EOP'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
size = os.fstat(fd).st_size
for off in range(0, size, 4 << 20):
    os.pwrite(fd, bytes(1 << 20), off)
EOP
cp base.raw top.raw
$python - top.raw <<'EOP'
import os, random, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
size = os.fstat(fd).st_size
rng = random.Random(7)
for _ in range(size // (1 << 20) // 10):  # a tenth of the MiBs rewritten
    os.pwrite(fd, os.urandom(1 << 20), rng.randrange(size >> 20) << 20)
EOP
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat base.raw src/vm/thick.vmdk
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat base.raw src/vm/thin.vmdk

printf '%-34s %10s %10s %8s %6s %s\n' "figure" "MB/s" "ceiling" "ratio" "goal" "(spread: vmdkfs, ceiling)"
for v in 5 6; do
	delta=cowd oracle=vmfs-fuse
	[ $v = 6 ] && delta=sesparse oracle=vmfs6-fuse
	rm -f src/vm/delta*.vmdk
	order=""
	[ $delta = sesparse ] && order="--cluster-order forward" # as written in order
	# shellcheck disable=SC2086
	/usr/bin/python3 "$top/tests/gen/mkvmdk.py" $delta top.raw src/vm/delta.vmdk --parent src/vm/thick.vmdk $order >/dev/null
	/usr/bin/python3 "$top/tests/gen/mkvmfs.py" make vol.img --version $v \
		--size $((3 * MIB + 256))M --from src --layout '*thin-flat.vmdk=thin' \
		--layout '*thick-flat.vmdk=thick' >/dev/null
	loop=$(losetup --direct-io=on -f --show vol.img)
	loops="$loops $loop"
	"$vmdkfs" -o "lun=$loop" m
	for i in $(seq 100); do mountpoint -q m && break; sleep 0.05; done
	# the bytes, outside the timed parts
	cmp -s m/vm/thick.raw base.raw || { echo "bench-san: VMFS$v thick: wrong bytes"; exit 1; }
	cmp -s m/vm/thin.raw base.raw || { echo "bench-san: VMFS$v thin: wrong bytes"; exit 1; }
	qemu-img convert -f vmdk -O raw src/vm/delta.vmdk want.raw
	cmp -s m/vm/delta.raw want.raw || { echo "bench-san: VMFS$v delta: wrong bytes"; exit 1; }
	rm -f want.raw
	read -r ceil cspread < <(measure $((MIB << 20)) readdev "$loop" "$MIB")
	for f in thick thin delta; do
		read -r got spread < <(measure $((MIB << 20)) readf m/vm/$f.raw)
		goal=0.9
		[ $f = thick ] || goal=-
		ratio=$(echo "$got $ceil" | awk '{ printf "%.2f", $1 / $2 }')
		met=""
		[ "$goal" = - ] || met=$(echo "$ratio $goal" | awk '{ print ($1 >= $2) ? "met" : "NOT met" }')
		printf '%-34s %10s %10s %7sx %6s %s\n' "VMFS$v $f over san (lun=)" "$got" "$ceil" "$ratio" "$goal" "($spread%, $cspread%) $met"
		bench_row "VMFS$v $f disk over san (lun=), cold" "$got" "dd iflag=direct, loop dev" "$ceil" "$goal" "$spread%, $cspread%"
	done
	$oracle "$loop" o >/dev/null 2>&1 || { echo "bench-san: $oracle would not mount"; exit 1; }
	cmp -s o/vm/thick-flat.vmdk base.raw || { echo "bench-san: $oracle reads other bytes"; exit 1; }
	read -r ora ospread < <(measure $((MIB << 20)) readf o/vm/thick-flat.vmdk)
	read -r got spread < <(measure $((MIB << 20)) readf m/vm/thick-flat.vmdk)
	ratio=$(echo "$got $ora" | awk '{ printf "%.2f", $1 / $2 }')
	printf '%-34s %10s %10s %7sx %6s %s\n' "VMFS$v -flat.vmdk lun= vs $oracle" "$got" "$ora" "$ratio" "-" "($spread%, $ospread%)"
	bench_row "VMFS$v -flat.vmdk through lun=, cold" "$got" "$oracle" "$ora" - "$spread%, $ospread%"
	fusermount3 -u o
	fusermount3 -u m
	sleep 0.5
	losetup -d "$loop"
	loops=${loops/ $loop/}
	rm -f vol.img
done

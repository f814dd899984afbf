#!/bin/bash
# Memory benchmark (part of make bench): the vmdkfs daemon's peak resident
# memory (VmHWM) against 64 MiB plus its configured caches (table_cache and
# grain_cache, per disk chain as vmdkfs sizes them; EnableCache is off),
# whatever the disk's size, in one run:
#   a 1 TiB monolithicSparse disk read at BENCH_MEM_RAND (20000) random
#   4 KiB offsets spread over the whole disk (every grain table touched);
#   a 64 GiB streamOptimized disk (64 MiB of data spread over it) read at
#   random the same way;
#   16 monolithicSparse disks of 256 MiB in one mount, each read end to end
#   (dd) while the others are read at random.
# Each case runs BENCH_RUNS (3) times on a fresh mount; the figure is the
# largest peak of the runs.
# Goal: VmHWM <= 64 MiB + the caches of the disks read (met / NOT met).
set -euo pipefail
export LC_ALL=C
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/bench-lib.sh"
vmdkfs=${VMDKFS:-$top/vmdkfs}
NRAND=${BENCH_MEM_RAND:-20000}
RUNS=${BENCH_RUNS:-3}
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vmdkfs-mbench.XXXXXX")
cleanup() {
	mountpoint -q "$dir/m" 2>/dev/null && fusermount3 -u "$dir/m"
	rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"
mkdir -p m
cc -O2 -o bench-rand "$top/scripts/bench-rand.c"
TABLE=$((16 << 20)) GRAIN=$((32 << 20)) # vmdkfs's defaults (fs/config.c)

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
# report NAME CACHES_BYTES FILE: the peaks of the daemon's runs (KiB, one a
# line in FILE) against the goal; the figure is the largest of the runs.
report() {
	local name=$1 caches=$2 hwm goal
	hwm=$(sort -n "$3" | tail -1)
	goal=$(((64 << 10) + caches / 1024))
	printf '%-46s VmHWM %6d MiB   goal <= %4d MiB  %s  (runs: %s MiB)\n' "$name" $((hwm >> 10)) $((goal >> 10)) \
		"$([ "$hwm" -le "$goal" ] && echo met || echo "NOT met")" "$(awk '{ printf "%s%d", (NR > 1 ? " " : ""), $1 / 1024 }' "$3")"
	bench_row "$name: peak RSS (MiB)" $((hwm >> 10)) "64 MiB + caches (MiB)" $((goal >> 10)) "<=1" "largest of $RUNS, spread $(spread "$3")"
}
# peak FILE: after a case, the daemon's peak (KiB) to FILE; unmount.
peak() {
	hwm_kib "$pid" >>"$1"
	fusermount3 -u m
	sleep 0.5
}

# The disks, made once.
# 1 TiB sparse, data written in a few places (qemu-io), read at random.
qemu-img create -q -f vmdk -o subformat=monolithicSparse big.vmdk 1T
qemu-io -f vmdk -c 'write -P 7 0 1M' -c 'write -P 8 512G 1M' -c 'write -P 9 1023G 1M' big.vmdk >/dev/null
# 64 GiB streamOptimized: 64 MiB of data at 1 MiB every GiB.
truncate -s 64G s.raw
for g in $(seq 0 63); do
	head -c 1048576 /dev/urandom | dd of=s.raw bs=1M seek=$((g * 1024)) conv=notrunc status=none
done
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized s.raw stream.vmdk
rm -f s.raw
# 16 disks for one mount.
disks=""
for i in $(seq 1 16); do
	qemu-img create -q -f vmdk -o subformat=monolithicSparse d$i.vmdk 256M
	qemu-io -f vmdk -c "write -P $i 0 64M" -c "write -P $i 192M 32M" d$i.vmdk >/dev/null
	disks="$disks d$i.vmdk"
done

for _ in $(seq "$RUNS"); do
	"$vmdkfs" big.vmdk "$dir/m" && bench_wait_mount m
	pid=$(bench_daemon_pid "$vmdkfs" "$dir/m")
	./bench-rand m/big.raw "$NRAND" 1 >/dev/null
	peak hwm-big

	"$vmdkfs" stream.vmdk "$dir/m" && bench_wait_mount m
	pid=$(bench_daemon_pid "$vmdkfs" "$dir/m")
	./bench-rand m/stream.raw "$NRAND" 2 >/dev/null
	peak hwm-stream

	# shellcheck disable=SC2086
	"$vmdkfs" $disks "$dir/m" && bench_wait_mount m
	pid=$(bench_daemon_pid "$vmdkfs" "$dir/m")
	for i in $(seq 1 16); do
		dd if=m/d$i.raw of=/dev/null bs=1M status=none &
		./bench-rand m/d$(((i % 16) + 1)).raw 2000 "$i" >/dev/null &
	done
	wait
	peak hwm-16
done
report "1 TiB sparse disk, $NRAND random 4 KiB reads" $TABLE hwm-big
report "64 GiB stream disk, $NRAND random 4 KiB reads" $((TABLE + GRAIN)) hwm-stream
report "16 sparse disks in one mount, read at once" $((16 * TABLE)) hwm-16

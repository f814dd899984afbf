#!/bin/bash
# The FUSE ceiling (part of make bench): scripts/fuse-ceiling serves a file
# of BENCH_MIB (1024) MiB from memory with vmdkfs's FUSE settings; a flat
# disk of the same size held in /dev/shm is read through vmdkfs.  Both are
# read sequentially (dd bs=1M) on fresh mounts, BENCH_RUNS (3) times, page
# cache dropped before each pass; the figure is the median, with the
# spread.  The bytes vmdkfs returns are compared with the source outside
# the timed part.  Also a warm direct read of the same file for scale.
set -euo pipefail
export LC_ALL=C
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/bench-lib.sh"
vmdkfs=${VMDKFS:-$top/vmdkfs}
ceiling=$top/scripts/fuse-ceiling
MIB=${BENCH_MIB:-1024}
RUNS=${BENCH_RUNS:-3}
[ -x "$ceiling" ] || { echo "bench-ceiling: $ceiling not built (make scripts/fuse-ceiling)"; exit 1; }
shm=$(mktemp -d /dev/shm/vmdkfs-ceil.XXXXXX)
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vmdkfs-ceil.XXXXXX")
cleanup() {
	for m in "$dir"/c "$dir"/m; do mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m"; done
	rm -rf "$dir" "$shm"
}
trap cleanup EXIT
mkdir -p "$dir/c" "$dir/m"
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t0 $t1" | awk '{ printf "%.4f\n", $2 - $1 }'; }
# med FILE-OF-SECONDS: "MB/s spread%" (MB = 10^6 bytes, as dd)
med() { sort -n "$1" | awk -v b=$((MIB << 20)) '{ t[NR] = $1 } END { m = t[int((NR + 1) / 2)]; printf "%.0f %.0f%%\n", b / 1e6 / m, (t[NR] - t[1]) / m * 100 }'; }
readf() { dd if="$1" of=/dev/null bs=1M status=none; }

head -c $((MIB << 20)) /dev/urandom >"$shm/disk.raw"
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat "$shm/disk.raw" "$shm/flat.vmdk"
: >"$dir/ceil.t"
: >"$dir/flat.t"
: >"$dir/direct.t"
for _ in $(seq "$RUNS"); do
	echo "$MIB" | awk -v v="$(fuse_ceiling_pass "$MIB" "$dir/c")" '{ printf "%.4f\n", $1 * 1048576 / 1e6 / v }' >>"$dir/ceil.t"
	"$vmdkfs" "$shm/flat.vmdk" "$dir/m"
	bench_wait_mount "$dir/m" || { echo "bench-ceiling: vmdkfs did not mount"; exit 1; }
	drop
	secs readf "$dir/m/flat.raw" >>"$dir/flat.t"
	cmp -s "$dir/m/flat.raw" "$shm/disk.raw" || { echo "bench-ceiling: vmdkfs returned other bytes"; exit 1; }
	fusermount3 -u "$dir/m"
	secs readf "$shm/disk.raw" >>"$dir/direct.t"
done
read -r c cs < <(med "$dir/ceil.t")
read -r f fs < <(med "$dir/flat.t")
read -r d ds < <(med "$dir/direct.t")
printf 'FUSE ceiling (memory, fuse-ceiling)  %6s MB/s (spread %s)\n' "$c" "$cs"
printf 'vmdkfs flat disk in /dev/shm         %6s MB/s (spread %s)  %s x the ceiling\n' "$f" "$fs" "$(echo "$f $c" | awk '{ printf "%.2f", $1 / $2 }')"
printf 'direct read of the same file (warm)  %6s MB/s (spread %s)\n' "$d" "$ds"
bench_row "local flat disk (/dev/shm), first pass" "$f" "FUSE ceiling" "$c" 0.9 "$fs, $cs"
bench_row "FUSE ceiling (for scale)" "$c" "direct read, warm" "$d" - "$cs, $ds"

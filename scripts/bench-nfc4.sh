#!/bin/bash
# Four disks at once over nbdssl (part of make bench): one mount of a lab VM
# with four disks of BENCH_NFC4_MIB (256) MiB, the four read at the same
# time (dd bs=1M each), against four plain TLS streams of the same size at
# the same time on loopback (four connections, the lab's sender to
# scripts/stream-read, as in bench-nfc.sh), in one run.  The figure is the
# aggregate: all bytes over the wall time of the slowest, the median of
# three interleaved runs.  Goal: >= 0.8x.  The peer is the lab's NFC
# server (tests/lab, SIMULATED).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/bench-lib.sh"
MIB=${BENCH_NFC4_MIB:-256}
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vmdkfs-n4bench.XXXXXX")
. "$top/tests/lab/lab.sh"
cleanup() {
	mountpoint -q "$dir/m" 2>/dev/null && fusermount3 -u "$dir/m"
	lab_stop
	rm -rf "$dir"
}
trap cleanup EXIT
lab_build "$top/build/lab" >/dev/null
lab_start "$dir/lab" -disk-mib "$MIB" -vms 1 -first-vm-disks 4 >/dev/null
printf '%s\n' "$LAB_PASSWORD" >"$dir/pw"
chmod 600 "$dir/pw"
mkdir -p "$dir/m"
now() { date +%s.%N; }

streams4() { # MB/s aggregate of four plain TLS streams at once (bench-lib.sh)
	local i pids=""
	for i in 1 2 3 4; do
		lab_stream tls "$MIB" >"$dir/stream-$i" &
		pids="$pids $!"
	done
	wait $pids
	for i in 1 2 3 4; do
		[ -s "$dir/stream-$i" ] || { echo "bench-nfc4: a plain stream failed" >&2; exit 1; }
	done
	# all bytes over the time from the first connect to the last byte
	cat "$dir"/stream-[1-4] | awk -v b=$((4 * MIB << 20)) '
		NR == 1 || $4 < t0 { t0 = $4 } NR == 1 || $5 > t1 { t1 = $5 }
		END { printf "%.0f\n", b / 1e6 / (t1 - t0) }'
}
nbdssl4() { # MB/s aggregate of the four disks of one mount read at once
	local t0 t1 f pids=""
	"$top/vmdkfs" -o "server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$dir/pw,thumbprint=$LAB_THUMBPRINT_SHA256,nfchostport=$LAB_NFC_PORT,vm=$LAB_VM,snapshot=new,transports=nbdssl${NFC_OPTS:-}" "$dir/m"
	[ "$(ls "$dir"/m/*/Hard_disk_*.raw | wc -l)" = 4 ] || { echo "bench-nfc4: not four disks" >&2; return 1; }
	drop
	t0=$(now)
	for f in "$dir"/m/*/Hard_disk_*.raw; do
		dd if="$f" of=/dev/null bs=1M status=none &
		pids="$pids $!"
	done
	wait $pids
	t1=$(now)
	fusermount3 -u "$dir/m"
	sleep 1
	echo "$t0 $t1" | awk -v b=$((4 * MIB << 20)) '{ printf "%.0f\n", b / 1e6 / ($2 - $1) }'
}
for _ in 1 2 3; do # interleaved, so that drifts hit both alike
	nbdssl4 >>"$dir/agg"
	streams4 >>"$dir/tls"
done
agg=$(median "$dir/agg")
tls=$(median "$dir/tls")
echo "four disks at once over nbdssl: $agg MB/s aggregate ($(paste -sd' ' "$dir/agg")); four plain TLS streams: $tls MB/s ($(paste -sd' ' "$dir/tls"))"
awk -v a="$agg" -v b="$tls" 'BEGIN { x = a / b; printf "ratio %.2fx (target >= 0.8x: %s)\n", x, (x >= 0.8) ? "met" : "NOT met" }'
bench_row "4 disks at once over nbdssl, aggregate" "$agg" "4 plain TLS streams at once" "$tls" 0.8 "$(spread "$dir/agg"), $(spread "$dir/tls")"

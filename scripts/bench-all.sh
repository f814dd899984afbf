#!/bin/bash
# make bench: every benchmark in one run, then one table of every figure
# against its ceiling or peer measured in the same run (bench-table.sh).
# A bench that breaks (wrong bytes, a mount that fails) fails make bench;
# a goal missed is reported, not failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
BENCH_TABLE=$(mktemp "${TMPDIR:-/tmp}/vmdkfs-bench-table.XXXXXX")
export BENCH_TABLE
trap 'rm -f "$BENCH_TABLE"' EXIT
rc=0
for b in bench-ceiling bench bench-write bench-nfc bench-nfc4 bench-san bench-hotadd bench-cbt bench-mem; do
	[ -f "$top/scripts/$b.sh" ] || continue
	echo "== $b"
	bash "$top/scripts/$b.sh" || { echo "bench: $b.sh failed"; rc=1; }
done
bash "$top/scripts/bench-table.sh" "$BENCH_TABLE"
exit $rc

#!/bin/bash
# make bench: every benchmark in one run, then one table of every figure
# against its ceiling or peer measured in the same run (bench-table.sh).
# A bench that breaks (wrong bytes, a mount that fails) fails make bench;
# a goal missed is reported, not failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
BENCH_TABLE=$(mktemp "${TMPDIR:-/tmp}/vmdkfs-bench-table.XXXXXX")
export BENCH_TABLE
rc=0
# How fast the machine gives and writes memory (scripts/mem-bw.c), before
# each bench and at the end, for reading the table: the figures swing
# with the first.
bw=$(mktemp "${TMPDIR:-/tmp}/vmdkfs-bench-bw.XXXXXX")
trap 'rm -f "$BENCH_TABLE" "$bw" "$bw.bin"' EXIT
cc -O2 -o "$bw.bin" "$top/scripts/mem-bw.c" || { echo "bench: cannot build mem-bw"; exit 1; }
membw() {
	local a b
	read -r a b < <("$bw.bin") && echo "$a $b" >>"$bw" &&
		echo "memory: first write (page faults) $a GB/s, rewrite $b GB/s"
}
for b in bench-ceiling bench bench-write bench-nfc bench-nfc4 bench-nbdkit bench-san bench-hotadd bench-cbt bench-mem; do
	[ -f "$top/scripts/$b.sh" ] || continue
	echo "== $b"
	membw
	bash "$top/scripts/$b.sh" || { echo "bench: $b.sh failed"; rc=1; }
done
membw
. "$top/scripts/bench-lib.sh"
col() { awk -v c="$1" '{ print $c }' "$bw" | sort -g; }
bench_row "fresh memory, first write (GB/s), lowest" "$(col 1 | head -n 1)" "highest, in this run" "$(col 1 | tail -n 1)" - "$(echo $(awk '{ print $1 }' "$bw"))"
bench_row "memory rewrite (GB/s), lowest" "$(col 2 | head -n 1)" "highest, in this run" "$(col 2 | tail -n 1)" - "$(echo $(awk '{ print $2 }' "$bw"))"
bash "$top/scripts/bench-table.sh" "$BENCH_TABLE"
exit $rc

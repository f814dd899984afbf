#!/bin/bash
# Run every test: C unit tests, then tests/test-*.sh (real FUSE mounts).
# Prints one line per test and ends with "N passed, N failed, N skipped".
cd "$(dirname "$0")/.." || exit 1
pass=0 failn=0 skipn=0
failed=""
log=$(mktemp -d "${TMPDIR:-/tmp}/vmdkfs-run.XXXXXX")

run() {
	name=$1
	shift
	start=$(date +%s)
	"$@" >"$log/out" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	case $rc in
	0) pass=$((pass + 1)); echo "PASS $name (${secs}s)" ;;
	77) skipn=$((skipn + 1)); echo "SKIP $name: $(grep -m1 '^SKIP' "$log/out" | sed 's/^SKIP: //')" ;;
	*) failn=$((failn + 1)); failed="$failed $name"; echo "FAIL $name (exit $rc, ${secs}s)"; sed 's/^/    /' "$log/out" | tail -40 ;;
	esac
}

for t in tests/unit/*-test; do
	[ -x "$t" ] && run "$t" "$t"
done
for t in tests/test-*.sh; do
	case "${ONLY:-}" in "" | *"$(basename "$t")"*) run "$t" bash "$t" ;; esac
done
rm -rf "$log"
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $failn failed, $skipn skipped"
[ "$failn" = 0 ]

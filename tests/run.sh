#!/bin/bash
# Run every test: C unit tests, then tests/test-*.sh (real FUSE mounts).
# Prints one line per test and ends with "N passed, N failed, N skipped".
cd "$(dirname "$0")/.." || exit 1
pass=0 failn=0 skipn=0
failed=""
log=$(mktemp -d "${TMPDIR:-/tmp}/vmdkfs-run.XXXXXX")

# SAN_CHECK=1 (make check SANITIZE=...): sanitizer reports go to files,
# one folder per test, and any report fails the test that made it (a test
# that sets its own log_path checks its reports itself).
san_opts() {
	[ -n "${SAN_CHECK:-}" ] || return 0
	rm -rf "$log/san"
	mkdir -p "$log/san"
	export ASAN_OPTIONS="${ASAN_BASE:-}${ASAN_BASE:+:}log_path=$log/san/asan"
	export UBSAN_OPTIONS="${UBSAN_BASE:-}${UBSAN_BASE:+:}print_stacktrace=1:log_path=$log/san/ubsan"
}
ASAN_BASE=${ASAN_OPTIONS:-}
UBSAN_BASE=${UBSAN_OPTIONS:-}

run() {
	name=$1
	shift
	start=$(date +%s)
	san_opts
	"$@" >"$log/out" 2>&1
	rc=$?
	if [ -n "${SAN_CHECK:-}" ] && [ "$rc" != 77 ] && ls "$log"/san/* >/dev/null 2>&1; then
		echo "FAIL: sanitizer reports:" >>"$log/out"
		head -q -n 25 "$log"/san/* >>"$log/out"
		rc=1
	fi
	secs=$(($(date +%s) - start))
	case $rc in
	0) pass=$((pass + 1)); echo "PASS $name (${secs}s)" ;;
	77) skipn=$((skipn + 1)); echo "SKIP $name: $(grep -m1 '^SKIP' "$log/out" | sed 's/^SKIP: //')" ;;
	*) failn=$((failn + 1)); failed="$failed $name"; echo "FAIL $name (exit $rc, ${secs}s)"; sed 's/^/    /' "$log/out" | tail -40 ;;
	esac
}

for t in tests/unit/*-test${UNIT_SFX:-}; do
	[ -x "$t" ] && run "$t" "$t"
done
for t in tests/test-*.sh; do
	case "${ONLY:-}" in "" | *"$(basename "$t")"*) run "$t" bash "$t" ;; esac
done
rm -rf "$log"
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $failn failed, $skipn skipped"
[ "$failn" = 0 ]

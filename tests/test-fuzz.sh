#!/bin/bash
# A short run of each libFuzzer target (make fuzz runs them longer).
# Fails on any crash, sanitizer report, leak or timeout the fuzzer finds.
. "$(dirname "$0")/lib.sh"
need qemu-img clang
secs=${FUZZ_CHECK_SECONDS:-12}
"$TESTS/fuzz/make-seeds.sh" "$WORK/seeds"
for f in desc vmdk4 cowd sesparse image vmfs part soap; do
	bin="$TESTS/fuzz/$f-fuzz"
	[ -x "$bin" ] || fail "$bin not built (make check builds it)"
	mkdir -p "$WORK/corpus-$f"
	seeds=$WORK/seeds
	# SOAP answers: vcsim's own, recorded, and a few of the lab's shapes.
	[ $f = soap ] && seeds="$TESTS/fuzz/soap-seeds -max_len=65536"
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
		"$WORK/corpus-$f" $seeds >"$WORK/log-$f" 2>&1 ||
		{ tail -30 "$WORK/log-$f"; fail "fuzzer $f found a problem"; }
	echo "ok $f: $(grep -o 'Done [0-9]* runs' "$WORK/log-$f")"
done

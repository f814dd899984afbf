#!/bin/bash
# A short run of each libFuzzer target (make fuzz runs them longer).
# Fails on any crash, sanitizer report, leak or timeout the fuzzer finds.
. "$(dirname "$0")/lib.sh"
need qemu-img clang
secs=${FUZZ_CHECK_SECONDS:-12}
"$TESTS/fuzz/make-seeds.sh" "$WORK/seeds"
# NFC sessions as the lab answers them: each must go through whole, or the
# fuzzer starts from inputs that fail at the first message.
"$TESTS/fuzz/nfc-seeds.py" "$WORK/nfc-seeds"
for s in "$WORK"/nfc-seeds/*; do
	out=$(NFC_FUZZ_VERBOSE=1 "$TESTS/fuzz/nfc-fuzz" "$s" 2>&1 | grep '^nfc-fuzz:' | head -1)
	case $out in
	*"operations, no error") ;;
	*) fail "nfc seed $(basename "$s") does not go through: $out" ;;
	esac
	read -r _ done _ all _ <<<"$out"
	[ "$done" = "$all" ] || fail "nfc seed $(basename "$s"): $out"
done
echo "ok nfc seeds: $(ls "$WORK/nfc-seeds" | wc -l) sessions go through"
for f in desc vmdk4 cowd sesparse image vmfs part soap nfc; do
	bin="$TESTS/fuzz/$f-fuzz"
	[ -x "$bin" ] || fail "$bin not built (make check builds it)"
	mkdir -p "$WORK/corpus-$f"
	seeds=$WORK/seeds
	# SOAP answers: vcsim's own, recorded, and a few of the lab's shapes.
	[ $f = soap ] && seeds="$TESTS/fuzz/soap-seeds -max_len=65536"
	[ $f = nfc ] && seeds="$WORK/nfc-seeds -max_len=65536"
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
		"$WORK/corpus-$f" $seeds >"$WORK/log-$f" 2>&1 ||
		{ tail -30 "$WORK/log-$f"; fail "fuzzer $f found a problem"; }
	echo "ok $f: $(grep -o 'Done [0-9]* runs' "$WORK/log-$f")"
done

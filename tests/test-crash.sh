#!/bin/bash
# Crash safety: vmdkfs is killed with SIGKILL at random points of a write
# workload, several times over the same images.  After each kill
# `qemu-img check` must be clean and every write acknowledged by fsync must
# be in the image (read back by qemu-img, not by vmdkfs).
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io
ROUNDS=${CRASH_ROUNDS:-6}

cd "$WORK"
qemu-img create -q -f vmdk -o subformat=monolithicSparse sparse.vmdk 128M
qemu-img create -q -f vmdk base.vmdk 128M
qemu-io -f vmdk -c 'write -P 0x77 0 128M' base.vmdk >/dev/null
qemu-img create -q -f vmdk -b base.vmdk -F vmdk child.vmdk

midway=0
for v in sparse child; do
	: >"ack-$v"
	for round in $(seq 0 $((ROUNDS - 1))); do
		mkdir -p mnt
		"$VMDKFS" -f -o rw "$v.vmdk" mnt 2>"err-$v" &
		pid=$!
		MOUNTS="$MOUNTS $WORK/mnt"
		i=0
		until mountpoint -q mnt; do
			i=$((i + 1))
			[ $i -lt 100 ] || fail "mount did not appear: $(cat "err-$v")"
			sleep 0.05
		done
		/usr/bin/python3 "$TESTS/crash-load.py" write "mnt/$v.raw" "ack-$v" "$round" 2>/dev/null &
		load=$!
		# Once the first batch of this round is acknowledged, kill at a
		# random moment of the next 0-60 ms.
		acked=$(wc -l <"ack-$v")
		i=0
		while [ "$(wc -l <"ack-$v")" = "$acked" ] && [ $i -lt 400 ]; do
			sleep 0.005
			i=$((i + 1))
		done
		sleep "$(printf '0.%03d' $((RANDOM % 60)))"
		kill -0 $load 2>/dev/null && midway=$((midway + 1))
		kill -9 $pid
		wait $load 2>/dev/null || true
		wait $pid 2>/dev/null || true
		fusermount3 -u -z mnt 2>/dev/null || umount -l mnt 2>/dev/null || true
		qemu-img check -q "$v.vmdk" || fail "$v round $round: qemu-img check after kill -9"
		qemu-img convert -f vmdk -O raw "$v.vmdk" "$v.raw"
		out=$(/usr/bin/python3 "$TESTS/crash-load.py" check "$v.raw" "ack-$v") ||
			fail "$v round $round: $out"
		echo "ok $v round $round: $out"
	done
	[ "$(wc -l <"ack-$v")" -gt 0 ] || fail "$v: the workload never got an fsync through"
done
# The test means something only if kills landed while writes were going on.
[ $midway -ge $ROUNDS ] || fail "only $midway of $((2 * ROUNDS)) kills landed during the workload"
echo "$midway of $((2 * ROUNDS)) kills landed during the workload"

#!/bin/bash
# vmdkfs benchmark (`make bench`): prints figures measured in this one run.
# It is not a test: a missed target is reported, not failed.  It exits
# non-zero only when something broke (vmdkfs would not mount, returned wrong
# bytes, a read failed, the setup failed).
#
# What it does: writes BENCH_MIB MiB of random data to a raw file, converts it
# with qemu-img into three VMDK images (monolithicFlat, monolithicSparse,
# streamOptimized), then, for each image, reads it through each reader:
#   direct     the raw file itself (the baseline; same file for every format)
#   vmdkfs     ./vmdkfs -f IMAGE MNT, reading MNT/NAME.raw (its defaults)
#   vmdkmount  vmdkmount IMAGE MNT (libvmdk-utils), reading MNT/vmdk1
#   nbdfuse    qemu-nbd -r -t -e 4 -f vmdk -k SOCK IMAGE, then
#              nbdfuse -r MNT --unix SOCK, reading MNT/nbd
# and measures, for each (format, reader), on a fresh mount:
#   first      sequential read (dd bs=1M) after dropping the page cache
#              (so the image file is cold too: the same for every reader)
#   re-read    the same again, caches not dropped
#   rand 4K    BENCH_RAND preads of 4 KiB at random 4 KiB-aligned offsets
#              (fixed seed: the same offsets for every reader), on a new
#              mount after dropping the page cache
# The bytes each reader returns are compared with the raw file (cmp after the
# sequential passes, and the random offsets re-read and compared), outside
# the timed parts.  A reader that cannot read a format is shown as n/a with
# the reason.
#
# Environment:
#   BENCH_MIB      disk size in MiB (default 1024)
#   BENCH_RAND     number of random 4 KiB reads (default 20000)
#   BENCH_SEED     seed of the random offsets (default 1)
#   BENCH_DIR      where the work folder is made (default /var/tmp); it is
#                  removed on exit, with every mount made
#   BENCH_FORMATS  formats to run (default "monolithicFlat monolithicSparse
#                  streamOptimized")
#   BENCH_READERS  readers to run (default "direct vmdkfs vmdkmount nbdfuse")
#   BENCH_TIMEOUT  seconds allowed for one read pass (default 1800)
#   VMDKFS         the vmdkfs binary (default: ./vmdkfs of this tree)
# Dropping caches needs root; without it the "first" figures are warm and
# marked so.

# The mount_* functions are called indirectly, as "mount_$reader".
# shellcheck disable=SC2317
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
VMDKFS=${VMDKFS:-$root/vmdkfs}
MIB=${BENCH_MIB:-1024}
NRAND=${BENCH_RAND:-20000}
SEED=${BENCH_SEED:-1}
BASE=${BENCH_DIR:-/var/tmp}
TMO=${BENCH_TIMEOUT:-1800}
FORMATS=${BENCH_FORMATS:-monolithicFlat monolithicSparse streamOptimized}
READERS=${BENCH_READERS:-direct vmdkfs vmdkmount nbdfuse}

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

for v in MIB NRAND SEED TMO; do
	[[ ${!v} =~ ^[0-9]{1,9}$ ]] || die "BENCH_$v must be a number (got '${!v}')"
done
((MIB > 0 && NRAND > 0 && TMO > 0)) || die "BENCH_MIB, BENCH_RAND, BENCH_TIMEOUT must be > 0"
[ -x "$VMDKFS" ] || die "$VMDKFS not built (make vmdkfs)"
for t in qemu-img dd cmp cc timeout mountpoint fusermount3 awk; do
	command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh bench)"
done
[ -d "$BASE" ] || die "BENCH_DIR $BASE is not a folder"
avail=$(df -P -m "$BASE" | awk 'NR == 2 { print $4 }')
need=$((MIB * 4 + MIB / 8 + 64))
((avail >= need)) || die "$BASE has $avail MiB free, needs about $need MiB"

W=$(mktemp -d "$BASE/vmdkfs-bench.XXXXXX") || die "cannot make a work folder in $BASE"
SIZE=$((MIB * 1048576))
RAW=$W/disk.raw

declare -A MPIDS=()	# mount point -> pids to end after unmounting it
MOUNTS=()

# Unmount MNT (if mounted) and end the processes that served it.
unmount() {
	local m=$1 p
	if mountpoint -q "$m" 2>/dev/null; then
		for _ in 1 2 3 4 5; do
			fusermount3 -u "$m" 2>/dev/null && break
			sleep 0.5
		done
		mountpoint -q "$m" 2>/dev/null && fusermount3 -uz "$m" 2>/dev/null
	fi
	# The first pid is the FUSE daemon, which ends once unmounted; the others
	# (qemu-nbd) are ended then.
	# shellcheck disable=SC2086 # a list of pids
	set -- ${MPIDS[$m]:-}
	if (($#)); then
		for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	fi
	for p in "$@"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	MPIDS[$m]=""
}

cleanup() {
	local m left=0
	trap - EXIT INT TERM
	for m in "${MOUNTS[@]}"; do unmount "$m"; done
	for m in "${MOUNTS[@]}"; do mountpoint -q "$m" 2>/dev/null && left=1; done
	if ((left)); then
		note "some mounts under $W would not go away; $W left in place"
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CAN_DROP=1
drop_caches() {
	((CAN_DROP)) || return 0
	sync
	if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		CAN_DROP=0
		note "cannot drop caches (not root?): 'first' figures are not cold"
	fi
}

now() { date +%s.%N; }

# wait_mount MNT FILE PIDS: wait until MNT is mounted and FILE is there.
wait_mount() {
	local m=$1 f=$2 pids=$3 p
	for _ in $(seq 300); do
		mountpoint -q "$m" && [ -e "$f" ] && return 0
		for p in $pids; do kill -0 "$p" 2>/dev/null || return 1; done
		sleep 0.1
	done
	return 1
}

# Last meaningful line of a log, for an n/a reason.
reason_from() {
	local r
	r=$(grep -v -e '^vmdkmount [0-9]*$' -e '^[[:space:]]*$' "$1" 2>/dev/null |
		tail -n 1 | cut -c1-70)
	echo "${r:-no message}"
}

# mount_READER FORMAT N: mount the FORMAT image freshly for READER (N tells
# the mounts apart); sets FILE to the file to read, or REASON and returns 1.
mount_direct() { FILE=$RAW; }

mount_vmdkfs() {
	local m=$W/mnt/vmdkfs-$1-$2 log=$W/log/vmdkfs-$1-$2 pid
	mkdir -p "$m"
	MOUNTS+=("$m")
	"$VMDKFS" -f -o "tmpDirectory=$W/log" "$W/$1.vmdk" "$m" >"$log" 2>&1 &
	pid=$!
	MPIDS[$m]=$pid
	FILE=$m/$1.raw
	wait_mount "$m" "$FILE" "$pid" && return 0
	REASON="does not mount: $(reason_from "$log")"
	return 1
}

mount_vmdkmount() {
	local m=$W/mnt/vmdkmount-$1-$2 log=$W/log/vmdkmount-$1-$2
	command -v vmdkmount >/dev/null || { REASON="vmdkmount not installed"; return 1; }
	mkdir -p "$m"
	MOUNTS+=("$m")
	FILE=$m/vmdk1
	# vmdkmount goes to the background once mounted; unmounting ends it.
	if timeout 60 vmdkmount "$W/$1.vmdk" "$m" >"$log" 2>&1 &&
		wait_mount "$m" "$FILE" ""; then
		return 0
	fi
	REASON="fails to mount: $(reason_from "$log")"
	return 1
}

mount_nbdfuse() {
	local m=$W/mnt/nbdfuse-$1-$2 log=$W/log/nbdfuse-$1-$2
	local sock=$W/nbd-$1-$2.sock qpid npid
	command -v qemu-nbd >/dev/null || { REASON="qemu-nbd not installed"; return 1; }
	command -v nbdfuse >/dev/null || { REASON="nbdfuse not installed"; return 1; }
	mkdir -p "$m"
	MOUNTS+=("$m")
	# -t: keep serving across connections; -e 4: let nbdfuse use multi-conn.
	qemu-nbd -r -t -e 4 -f vmdk -k "$sock" "$W/$1.vmdk" >"$log" 2>&1 &
	qpid=$!
	MPIDS[$m]=$qpid
	for _ in $(seq 300); do
		[ -S "$sock" ] && break
		kill -0 "$qpid" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -S "$sock" ]; then
		REASON="qemu-nbd does not start: $(reason_from "$log")"
		return 1
	fi
	nbdfuse -r "$m" --unix "$sock" >>"$log" 2>&1 &
	npid=$!
	MPIDS[$m]="$npid $qpid"
	FILE=$m/nbd
	wait_mount "$m" "$FILE" "$npid $qpid" && return 0
	REASON="nbdfuse does not mount: $(reason_from "$log")"
	return 1
}

# seq_read FILE: one dd pass; prints MB/s (10^6 bytes/s) or returns 1.
seq_read() {
	local f=$1 t0 t1 n
	t0=$(now)
	timeout "$TMO" dd if="$f" of=/dev/null bs=1M 2>"$W/dd.err" || return 1
	t1=$(now)
	n=$(awk '/bytes/ { print $1; exit }' "$W/dd.err")
	[ "$n" = "$SIZE" ] || { note "$f: read $n bytes, expected $SIZE"; return 1; }
	awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) / 1e6 }'
}

declare -A FIRST=() REREAD=() RANDMB=() IOPS=() NOTE=()
FAILED=0

# A failure: of vmdkfs or the baseline it breaks the run; of another reader
# it only makes that reader n/a.
fail() {
	local fmt=$1 r=$2 why=$3
	NOTE[$fmt,$r]=$why
	note "$fmt/$r: $why"
	case $r in direct | vmdkfs) FAILED=1 ;; esac
}

measure() {
	local fmt=$1 r=$2 v t
	FILE="" REASON=""
	if ! "mount_$r" "$fmt" 1; then
		fail "$fmt" "$r" "$REASON"
		unmount_last
		return
	fi
	drop_caches
	v=$(seq_read "$FILE") || { fail "$fmt" "$r" "first read failed"; unmount_last; return; }
	FIRST[$fmt,$r]=$v
	v=$(seq_read "$FILE") || { fail "$fmt" "$r" "re-read failed"; unmount_last; return; }
	REREAD[$fmt,$r]=$v
	if ! timeout "$TMO" cmp -s "$FILE" "$RAW"; then
		FIRST[$fmt,$r]="" REREAD[$fmt,$r]=""
		fail "$fmt" "$r" "returned wrong bytes (cmp)"
		unmount_last
		return
	fi
	unmount_last

	FILE="" REASON=""
	if ! "mount_$r" "$fmt" 2; then
		fail "$fmt" "$r" "second mount: $REASON"
		unmount_last
		return
	fi
	drop_caches
	t=$(timeout "$TMO" "$W/bench-rand" "$FILE" "$NRAND" "$SEED") ||
		{ fail "$fmt" "$r" "random reads failed"; unmount_last; return; }
	if ! timeout "$TMO" "$W/bench-rand" "$FILE" "$NRAND" "$SEED" "$RAW"; then
		fail "$fmt" "$r" "returned wrong bytes (random reads)"
		unmount_last
		return
	fi
	unmount_last
	RANDMB[$fmt,$r]=$(awk -v n="$NRAND" -v t="$t" 'BEGIN { printf "%.1f", n * 4096 / t / 1e6 }')
	IOPS[$fmt,$r]=$(awk -v n="$NRAND" -v t="$t" 'BEGIN { printf "%.0f", n / t }')
}

unmount_last() {
	local n=${#MOUNTS[@]}
	((n)) && [ "${FILE:-}" != "$RAW" ] && unmount "${MOUNTS[n - 1]}"
	return 0
}

# ---- setup ----
mkdir -p "$W/mnt" "$W/log"
cc -O2 -o "$W/bench-rand" "$here/bench-rand.c" || die "cannot build bench-rand"

echo "vmdkfs benchmark: $MIB MiB of random data, $NRAND random 4 KiB reads (seed $SEED)"
echo "work folder: $W"
echo "machine: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tools: $("$VMDKFS" -V 2>&1 | head -n1); $(qemu-img --version | head -n1);" \
	"$(command -v vmdkmount >/dev/null && vmdkmount -V 2>&1 | grep -m1 vmdkmount);" \
	"$(command -v nbdfuse >/dev/null && nbdfuse -V 2>&1 | head -n1)"
echo

t0=$(now)
head -c "$SIZE" /dev/urandom >"$RAW" || die "cannot write $RAW"
declare -A IMG=()
for fmt in $FORMATS; do
	case $fmt in
	monolithicFlat | monolithicSparse | streamOptimized) ;;
	*) die "unknown format $fmt" ;;
	esac
	qemu-img convert -f raw -O vmdk -o "subformat=$fmt" "$RAW" "$W/$fmt.vmdk" ||
		die "qemu-img convert to $fmt failed"
	IMG[$fmt]=$(du -cm "$W/$fmt"*.vmdk | awk 'END { print $1 }')
done
sync
echo "images made in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s:" \
	"$(for f in $FORMATS; do printf '%s %s MiB  ' "$f" "${IMG[$f]}"; done)"
echo

for fmt in $FORMATS; do
	for r in $READERS; do
		case $r in
		direct | vmdkfs | vmdkmount | nbdfuse) ;;
		*) die "unknown reader $r" ;;
		esac
		echo "measuring $fmt / $r ..." >&2
		measure "$fmt" "$r"
	done
done

# ---- report ----
label() {
	case $1 in
	nbdfuse) echo "qemu-nbd+nbdfuse" ;;
	*) echo "$1" ;;
	esac
}
val() { local v=${1:-}; echo "${v:-n/a}"; }

echo
cold=""
((CAN_DROP)) || cold=" (caches NOT dropped)"
echo "Throughput in MB/s (10^6 bytes/s); first = after dropping caches$cold; rand 4K = $NRAND reads"
printf '%-17s %-17s %9s %9s %9s %8s  %s\n' format reader first re-read "rand 4K" IOPS note
for fmt in $FORMATS; do
	for r in $READERS; do
		printf '%-17s %-17s %9s %9s %9s %8s  %s\n' "$fmt" "$(label "$r")" \
			"$(val "${FIRST[$fmt,$r]:-}")" "$(val "${REREAD[$fmt,$r]:-}")" \
			"$(val "${RANDMB[$fmt,$r]:-}")" "$(val "${IOPS[$fmt,$r]:-}")" \
			"${NOTE[$fmt,$r]:-}"
	done
done

# ratio A B: A/B as "1.23x", or n/a.
ratio() {
	if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then
		awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx\n", a / b; else print "n/a" }'
	else
		echo n/a
	fi
}

echo
echo "Ratios of vmdkfs to the other readers (above 1 = vmdkfs faster)"
printf '%-17s %-22s %9s %9s %9s\n' format "vmdkfs vs" first re-read "rand 4K"
for fmt in $FORMATS; do
	for r in $READERS; do
		[ "$r" = vmdkfs ] && continue
		printf '%-17s %-22s %9s %9s %9s\n' "$fmt" "$(label "$r")" \
			"$(ratio "${FIRST[$fmt,vmdkfs]:-}" "${FIRST[$fmt,$r]:-}")" \
			"$(ratio "${REREAD[$fmt,vmdkfs]:-}" "${REREAD[$fmt,$r]:-}")" \
			"$(ratio "${RANDMB[$fmt,vmdkfs]:-}" "${RANDMB[$fmt,$r]:-}")"
	done
done

# target TEXT A B MIN: is A >= MIN * B?
target() {
	local text=$1 a=${2:-} b=${3:-} min=$4 what=$5 r
	if [ -z "$a" ] || [ -z "$b" ]; then
		printf '  %-62s %-8s %s\n' "$text" "n/a" "$what"
		return
	fi
	r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f\n", (b > 0 ? a / b : 0) }')
	if awk -v r="$r" -v m="$min" 'BEGIN { exit !(r >= m) }'; then
		printf '  %-62s %-8s %sx\n' "$text" "met" "$r"
	else
		printf '  %-62s %-8s %sx\n' "$text" "NOT met" "$r"
	fi
}
why() {	# why a target is n/a
	local fmt=$1 r=$2
	if [ -n "${NOTE[$fmt,$r]:-}" ]; then
		echo "($(label "$r") ${NOTE[$fmt,$r]})"
	elif [ -n "${NOTE[$fmt,vmdkfs]:-}" ]; then
		echo "(vmdkfs: ${NOTE[$fmt,vmdkfs]})"
	else
		echo "(not measured)"
	fi
}

echo
echo "Targets (vmdkfs)"
for fmt in monolithicFlat monolithicSparse; do
	for r in vmdkmount nbdfuse; do
		target "$fmt first-pass sequential >= 5x $(label "$r")" \
			"${FIRST[$fmt,vmdkfs]:-}" "${FIRST[$fmt,$r]:-}" 5 "$(why "$fmt" "$r")"
	done
done
for fmt in $FORMATS; do
	target "$fmt re-read >= 0.9x direct" \
		"${REREAD[$fmt,vmdkfs]:-}" "${REREAD[$fmt,direct]:-}" 0.9 "$(why "$fmt" direct)"
done
target "streamOptimized random 4 KiB >= 5x vmdkmount" \
	"${RANDMB[streamOptimized,vmdkfs]:-}" "${RANDMB[streamOptimized,vmdkmount]:-}" 5 \
	"$(why streamOptimized vmdkmount)"

if ((FAILED)); then
	echo
	echo "bench: something broke (see the notes above)" >&2
	exit 1
fi
exit 0

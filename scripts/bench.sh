#!/bin/bash
# vmdkfs benchmark (`make bench`): prints figures measured in this one run.
# It is not a test: a missed target is reported, not failed.  It exits
# non-zero only when something broke (vmdkfs would not mount or returned
# wrong bytes, a read of vmdkfs or of the raw file failed, the setup failed).
#
# What it does: writes BENCH_MIB MiB of random data to a raw file, converts it
# with qemu-img into three VMDK images (monolithicFlat, monolithicSparse,
# streamOptimized), then, for each image, reads it through each reader:
#   direct     the raw file itself (the baseline; the same file for every
#              format, measured again in each format's rows)
#   vmdkfs     ./vmdkfs -f IMAGE MNT, reading MNT/NAME.raw (its defaults)
#   vmdkmount  vmdkmount IMAGE MNT (libvmdk-utils), reading MNT/vmdk1
#   nbdfuse    qemu-nbd -r -t -e 4 -f vmdk -k SOCK IMAGE, then
#              nbdfuse -r MNT --unix SOCK, reading MNT/nbd
# and measures, for each (format, reader):
#   first      on a fresh mount, one sequential read (dd bs=1M) after
#              dropping the page cache (so the image file is cold too: the
#              same for every reader)
#   re-read    then BENCH_REREAD more passes, caches not dropped; the median
#   rand cold  on a new mount after dropping the page cache, BENCH_RAND
#              preads of 4 KiB at random 4 KiB-aligned offsets (fixed seed:
#              the same offsets for every reader)
#   rand warm  the same on a new mount after dropping the page cache and
#              reading the image files (for direct: the raw file) once, so
#              the reader's own file is cold but the disk is not in the way:
#              this shows the reader's own cost per request
#   first warm on a new mount, the image files read into the page cache
#              as for rand warm, one sequential read: the reader's own
#              cost per byte; for vmdkfs, set against the FUSE ceiling
#              (scripts/fuse-ceiling, bench-lib.sh) measured just before
# Each dd figure is dd's own timing.  The bytes each reader returns are
# compared with the raw file (cmp after the sequential passes, and the random
# offsets read again and compared), outside the timed parts.  A reader that
# cannot read a format is shown as n/a with the reason.
#
# Environment:
#   BENCH_MIB      disk size in MiB (default 1024)
#   BENCH_RAND     number of random 4 KiB reads (default 20000)
#   BENCH_SEED     seed of the random offsets (default 1)
#   BENCH_REREAD   number of re-read passes, figure = median (default 3)
#   BENCH_RUNS     runs of everything, interleaved; each figure is the
#                  median of the runs, with their spread (default 3)
#   BENCH_DIR      where the work folder is made (default /var/tmp); it is
#                  removed on exit, with every mount made
#   BENCH_FORMATS  formats to run (default "monolithicFlat monolithicSparse
#                  streamOptimized")
#   BENCH_READERS  readers to run (default "direct vmdkfs vmdkmount nbdfuse")
#   BENCH_TIMEOUT  seconds allowed for one read pass (default 1800)
#   VMDKFS         the vmdkfs binary (default: ./vmdkfs of this tree)
# Dropping caches needs root; without it the cold figures are not cold and
# are marked so.

# The mount_* functions are called indirectly, as "mount_$reader".
# shellcheck disable=SC2317
set -u -o pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
VMDKFS=${VMDKFS:-$root/vmdkfs}
MIB=${BENCH_MIB:-1024}
NRAND=${BENCH_RAND:-20000}
SEED=${BENCH_SEED:-1}
NREREAD=${BENCH_REREAD:-3}
NRUNS=${BENCH_RUNS:-3}
BASE=${BENCH_DIR:-/var/tmp}
TMO=${BENCH_TIMEOUT:-1800}
FORMATS=${BENCH_FORMATS:-monolithicFlat monolithicSparse streamOptimized}
READERS=${BENCH_READERS:-direct vmdkfs vmdkmount nbdfuse}

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

for v in MIB NRAND SEED NREREAD NRUNS TMO; do
	[[ ${!v} =~ ^[0-9]{1,9}$ ]] || die "$v must be a number (got '${!v}')"
done
((MIB > 0 && NRAND > 0 && NREREAD > 0 && NRUNS > 0 && TMO > 0)) ||
	die "BENCH_MIB, BENCH_RAND, BENCH_REREAD, BENCH_RUNS, BENCH_TIMEOUT must be > 0"
for fmt in $FORMATS; do
	case $fmt in
	monolithicFlat | monolithicSparse | streamOptimized) ;;
	*) die "unknown format $fmt" ;;
	esac
done
for r in $READERS; do
	case $r in
	direct | vmdkfs | vmdkmount | nbdfuse) ;;
	*) die "unknown reader $r" ;;
	esac
done
[ -x "$VMDKFS" ] || die "$VMDKFS not built (make vmdkfs)"
for t in qemu-img dd cmp cc timeout mountpoint fusermount3 awk sort; do
	command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh bench)"
done
[ -d "$BASE" ] || die "BENCH_DIR $BASE is not a folder"
avail=$(df -P -m "$BASE" | awk 'NR == 2 { print $4 }')
need=$((MIB * 4 + MIB / 8 + 64))
((avail >= need)) || die "$BASE has $avail MiB free, needs about $need MiB"

W=$(mktemp -d "$BASE/vmdkfs-bench.XXXXXX") || die "cannot make a work folder in $BASE"
SIZE=$((MIB * 1048576))
RAW=$W/disk.raw

declare -A MPIDS=() # mount point -> pids to end after unmounting it
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
	MOUNTS+=("$W/ceiling") # fuse-ceiling's, if a pass was cut short
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
		note "cannot drop caches (not root?): the cold figures are not cold"
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
	command -v vmdkmount >/dev/null || { REASON="not installed"; return 1; }
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

unmount_last() {
	local n=${#MOUNTS[@]}
	((n)) && [ "${FILE:-}" != "$RAW" ] && unmount "${MOUNTS[n - 1]}"
	return 0
}

# seq_read FILE: one dd pass; prints MB/s (10^6 bytes/s) by dd's own timing.
seq_read() {
	local f=$1 n s
	timeout "$TMO" dd if="$f" of=/dev/null bs=1M 2>"$W/dd.err" || return 1
	n=$(awk '/ copied, / { print $1; exit }' "$W/dd.err")
	s=$(sed -n 's/.* copied, \([0-9.e+-]*\) s,.*/\1/p' "$W/dd.err")
	[ "$n" = "$SIZE" ] || { note "$f: read ${n:-?} bytes, expected $SIZE"; return 1; }
	awk -v n="$n" -v s="$s" 'BEGIN { printf "%.1f\n", (s > 0 ? n / s / 1e6 : 0) }'
}

# rand_read FILE: prints "MB/s IOPS" of the random 4 KiB reads.
rand_read() {
	local t
	t=$(timeout "$TMO" "$W/bench-rand" "$1" "$NRAND" "$SEED") || return 1
	awk -v n="$NRAND" -v t="$t" 'BEGIN { printf "%.1f %.0f\n", n * 4096 / t / 1e6, n / t }'
}

declare -A FIRST=() FWARM=() REREAD=() RCOLD=() ICOLD=() RWARM=() IWARM=() NOTE=() CEIL=()
FAILED=0

# A failure: of vmdkfs or the baseline it breaks the run; of another reader
# it only makes that reader n/a.
fail() {
	local fmt=$1 r=$2 why=$3
	NOTE[$fmt,$r]=$why
	note "$fmt/$r: $why"
	case $r in direct | vmdkfs) FAILED=1 ;; esac
	unmount_last
}

# warm_images FORMAT READER: drop the page cache, then read the reader's
# backing files into it (for direct: the raw file).
warm_images() {
	local f
	drop_caches
	if [ "$2" = direct ]; then
		cat "$RAW" >/dev/null
	else
		for f in "$W/$1".vmdk "$W/$1"-*.vmdk; do
			[ -e "$f" ] && cat "$f" >/dev/null
		done
	fi
	return 0
}

measure() {
	local fmt=$1 r=$2 v vs=() f

	# Sequential: first pass cold, then re-reads.
	FILE="" REASON=""
	"mount_$r" "$fmt" 1 || { fail "$fmt" "$r" "$REASON"; return; }
	drop_caches
	v=$(seq_read "$FILE") || { fail "$fmt" "$r" "first read failed"; return; }
	for _ in $(seq "$NREREAD"); do
		f=$(seq_read "$FILE") || { fail "$fmt" "$r" "re-read failed"; return; }
		vs+=("$f")
	done
	if ! timeout "$TMO" cmp -s "$FILE" "$RAW"; then
		fail "$fmt" "$r" "returned wrong bytes (cmp)"
		return
	fi
	unmount_last
	FIRST[$fmt,$r]=$v
	REREAD[$fmt,$r]=$(printf '%s\n' "${vs[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')

	# Random, everything cold.
	FILE="" REASON=""
	"mount_$r" "$fmt" 2 || { fail "$fmt" "$r" "second mount: $REASON"; return; }
	drop_caches
	v=$(rand_read "$FILE") || { fail "$fmt" "$r" "random reads failed"; return; }
	if ! timeout "$TMO" "$W/bench-rand" "$FILE" "$NRAND" "$SEED" "$RAW"; then
		fail "$fmt" "$r" "returned wrong bytes (random reads)"
		return
	fi
	unmount_last
	RCOLD[$fmt,$r]=${v% *} ICOLD[$fmt,$r]=${v#* }

	# Random, the image files in the page cache, the reader's file not.
	warm_images "$fmt" "$r"
	FILE="" REASON=""
	"mount_$r" "$fmt" 3 || { fail "$fmt" "$r" "third mount: $REASON"; return; }
	v=$(rand_read "$FILE") || { fail "$fmt" "$r" "random reads failed"; return; }
	unmount_last
	RWARM[$fmt,$r]=${v% *} IWARM[$fmt,$r]=${v#* }

	# First pass with the image files in the page cache (the reader's own
	# file not): the reader's own cost, set against the FUSE ceiling,
	# measured just before for vmdkfs's rows.
	[ "$r" = vmdkfs ] && CEIL[$fmt]=$(fuse_ceiling_pass "$MIB" "$W/ceiling")
	warm_images "$fmt" "$r"
	FILE="" REASON=""
	"mount_$r" "$fmt" 4 || { fail "$fmt" "$r" "fourth mount: $REASON"; return; }
	v=$(seq_read "$FILE") || { fail "$fmt" "$r" "warm first read failed"; return; }
	unmount_last
	FWARM[$fmt,$r]=$v
}

# ---- setup ----
mkdir -p "$W/mnt" "$W/log" "$W/ceiling"
. "$here/bench-lib.sh"
[ -x "$here/fuse-ceiling" ] || die "scripts/fuse-ceiling not built (make scripts/fuse-ceiling)"
# A private copy: the whole run uses one binary even if the tree is rebuilt.
cp "$VMDKFS" "$W/vmdkfs" || die "cannot copy $VMDKFS"
VMDKFS=$W/vmdkfs
cc -O2 -o "$W/bench-rand" "$here/bench-rand.c" || die "cannot build bench-rand"

echo "vmdkfs benchmark: $MIB MiB of random data, $NRAND random 4 KiB reads (seed $SEED)"
echo "work folder: $W"
echo "machine: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tools: $("$VMDKFS" -V 2>&1 | head -n1); $(qemu-img --version | head -n1);" \
	"$(command -v vmdkmount >/dev/null && vmdkmount -V 2>&1 | grep -m1 vmdkmount);" \
	"$(command -v nbdfuse >/dev/null && nbdfuse -V 2>&1 | head -n1)"

t0=$(now)
head -c "$SIZE" /dev/urandom >"$RAW" || die "cannot write $RAW"
declare -A IMG=()
for fmt in $FORMATS; do
	qemu-img convert -f raw -O vmdk -o "subformat=$fmt" "$RAW" "$W/$fmt.vmdk" ||
		die "qemu-img convert to $fmt failed"
	IMG[$fmt]=$(du -cm "$W/$fmt"*.vmdk | awk 'END { print $1 }')
done
sync
echo "images made in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s:" \
	"$(for f in $FORMATS; do printf '%s %s MiB  ' "$f" "${IMG[$f]}"; done)"

# BENCH_RUNS runs, interleaved (every format and reader in each run, so
# that this machine's drifts hit all alike); each figure is the median of
# its runs, with the spread of them, (max - min) / median.
declare -A ALL=() SPREAD=()
FIGS="FIRST FWARM REREAD RCOLD ICOLD RWARM IWARM"
for run in $(seq "$NRUNS"); do
	for fmt in $FORMATS; do
		for r in $READERS; do
			[ -n "${NOTE[$fmt,$r]:-}" ] && continue # failed in a run before
			echo "measuring $fmt / $r, run $run of $NRUNS ..." >&2
			FIRST[$fmt,$r]="" FWARM[$fmt,$r]="" REREAD[$fmt,$r]="" RCOLD[$fmt,$r]="" ICOLD[$fmt,$r]="" RWARM[$fmt,$r]="" IWARM[$fmt,$r]=""
			measure "$fmt" "$r"
			[ -n "${NOTE[$fmt,$r]:-}" ] && continue
			for name in $FIGS; do
				declare -n fig=$name
				ALL[$name,$fmt,$r]+=" ${fig[$fmt,$r]}"
				unset -n fig
			done
			[ "$r" = vmdkfs ] && ALL[CEIL,$fmt,-]+=" ${CEIL[$fmt]:-}"
		done
	done
done
# med_spread "V1 V2 ...": "median spread%"
med_spread() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)]; printf "%s %.0f%%\n", m, (m > 0 ? (v[NR] - v[1]) / m * 100 : 0) }'; }
for k in "${!ALL[@]}"; do
	name=${k%%,*} rest=${k#*,}
	read -r m sp < <(med_spread "${ALL[$k]}")
	SPREAD[$k]=$sp
	if [ "$name" = CEIL ]; then
		CEIL[${rest%,-}]=$m
	else
		declare -n fig=$name
		fig[$rest]=$m
		unset -n fig
	fi
done
# sp NAME FORMAT READER: the spread of a figure ("-" if none)
sp() { echo "${SPREAD[$1,$2,$3]:--}"; }

# ---- report ----
label() {
	case $1 in
	nbdfuse) echo "qemu-nbd+nbdfuse" ;;
	*) echo "$1" ;;
	esac
}
val() { echo "${1:-n/a}"; }

echo
cold=""
((CAN_DROP)) || cold=" (caches could NOT be dropped)"
echo "Each figure: the median of $NRUNS interleaved runs (their spreads in make bench's table)."
echo "MB/s = 10^6 bytes/s.  first: cold$cold; warm: the image files in the page cache,"
echo "the reader's file not; re-read: median of $NREREAD passes;"
echo "rand: $NRAND x 4 KiB; cold: disk cold; warm: image files in the page cache, the"
echo "reader's own file not (for direct, whose file is the raw file: page-cache hits)."
fmtrow='%-17s %-17s %8s %8s %8s %9s %7s %9s %7s  %s\n'
# shellcheck disable=SC2059 # the format is a variable
printf "$fmtrow" "" "" "first" "first" "re-read" "rand cold" "" "rand warm" "" ""
# shellcheck disable=SC2059
printf "$fmtrow" format reader cold warm MB/s MB/s IOPS MB/s IOPS note
for fmt in $FORMATS; do
	for r in $READERS; do
		# shellcheck disable=SC2059
		printf "$fmtrow" "$fmt" "$(label "$r")" \
			"$(val "${FIRST[$fmt,$r]:-}")" "$(val "${FWARM[$fmt,$r]:-}")" \
			"$(val "${REREAD[$fmt,$r]:-}")" \
			"$(val "${RCOLD[$fmt,$r]:-}")" "$(val "${ICOLD[$fmt,$r]:-}")" \
			"$(val "${RWARM[$fmt,$r]:-}")" "$(val "${IWARM[$fmt,$r]:-}")" \
			"${NOTE[$fmt,$r]:-}"
	done
done
printf '%-35s' "FUSE ceiling before vmdkfs's warm pass:"
for fmt in $FORMATS; do printf ' %s %s' "$fmt" "$(val "${CEIL[$fmt]:-}")"; done
echo

# How noisy the cold figures are: direct reads the same file in each format.
lo="" hi=""
for fmt in $FORMATS; do
	v=${FIRST[$fmt,direct]:-}
	[ -n "$v" ] || continue
	[ -z "$lo" ] || awk -v a="$v" -v b="$lo" 'BEGIN { exit !(a < b) }' && lo=$v
	[ -z "$hi" ] || awk -v a="$v" -v b="$hi" 'BEGIN { exit !(a > b) }' && hi=$v
done
if [ -n "$lo" ] && [ "$lo" != "$hi" ]; then
	echo "(direct reads the same raw file in every format: its cold first pass" \
		"ranged $lo..$hi MB/s in this run, a measure of the disk's noise)"
fi

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
fmtrat='%-17s %-22s %8s %8s %8s %9s %9s\n'
# shellcheck disable=SC2059
printf "$fmtrat" format "vmdkfs vs" "1st cold" "1st warm" re-read "rand cold" "rand warm"
for fmt in $FORMATS; do
	for r in $READERS; do
		[ "$r" = vmdkfs ] && continue
		# shellcheck disable=SC2059
		printf "$fmtrat" "$fmt" "$(label "$r")" \
			"$(ratio "${FIRST[$fmt,vmdkfs]:-}" "${FIRST[$fmt,$r]:-}")" \
			"$(ratio "${FWARM[$fmt,vmdkfs]:-}" "${FWARM[$fmt,$r]:-}")" \
			"$(ratio "${REREAD[$fmt,vmdkfs]:-}" "${REREAD[$fmt,$r]:-}")" \
			"$(ratio "${RCOLD[$fmt,vmdkfs]:-}" "${RCOLD[$fmt,$r]:-}")" \
			"$(ratio "${RWARM[$fmt,vmdkfs]:-}" "${RWARM[$fmt,$r]:-}")"
	done
done

# why FORMAT READER: why a target comparing vmdkfs with READER is n/a.
why() {
	local fmt=$1 r=$2
	if [ -n "${NOTE[$fmt,$r]:-}" ]; then
		echo "($(label "$r") ${NOTE[$fmt,$r]})"
	elif [ -n "${NOTE[$fmt,vmdkfs]:-}" ]; then
		echo "(vmdkfs: ${NOTE[$fmt,vmdkfs]})"
	else
		echo "(not measured)"
	fi
}

# target TEXT A B MIN FORMAT READER: is A >= MIN * B?
target() {
	local text=$1 a=${2:-} b=${3:-} min=$4 r
	if [ -z "$a" ] || [ -z "$b" ]; then
		printf '  %-66s %-8s %s\n' "$text" "n/a" "$(why "$5" "$6")"
		return
	fi
	r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f\n", (b > 0 ? a / b : 0) }')
	if awk -v r="$r" -v m="$min" 'BEGIN { exit !(r >= m) }'; then
		printf '  %-66s %-8s %sx\n' "$text" "met" "$r"
	else
		printf '  %-66s %-8s %sx\n' "$text" "NOT met" "$r"
	fi
}

echo
echo "Targets (vmdkfs; issue #15: against peers and ceilings of this run)"
# row TEXT A B GOAL PEER FORMAT READER: a line here and a row of make
# bench's table.
# SPREAD: the spreads of A's and B's runs.
row() {
	target "$1 >= $4x $5" "$2" "$3" "$4" "$6" "$7"
	[ -n "$2" ] && [ -n "$3" ] && bench_row "$1" "$2" "$5" "$3" "$4" "${8:--}"
	return 0
}
for fmt in monolithicSparse streamOptimized; do
	row "$fmt first pass (backing warm)" "${FWARM[$fmt,vmdkfs]:-}" "${CEIL[$fmt]:-}" 0.9 "FUSE ceiling" "$fmt" vmdkfs "$(sp FWARM "$fmt" vmdkfs), $(sp CEIL "$fmt" -)"
	row "$fmt first pass (backing warm)" "${FWARM[$fmt,vmdkfs]:-}" "${FWARM[$fmt,nbdfuse]:-}" 4 "qemu-nbd+nbdfuse" "$fmt" nbdfuse "$(sp FWARM "$fmt" vmdkfs), $(sp FWARM "$fmt" nbdfuse)"
done
row "streamOptimized first pass (backing warm)" "${FWARM[streamOptimized,vmdkfs]:-}" "${FWARM[streamOptimized,vmdkmount]:-}" 1.5 vmdkmount streamOptimized vmdkmount "$(sp FWARM streamOptimized vmdkfs), $(sp FWARM streamOptimized vmdkmount)"
for fmt in monolithicSparse streamOptimized monolithicFlat; do
	row "$fmt first pass (cold)" "${FIRST[$fmt,vmdkfs]:-}" "${FIRST[$fmt,direct]:-}" 0.9 "direct read (cold)" "$fmt" direct "$(sp FIRST "$fmt" vmdkfs), $(sp FIRST "$fmt" direct)"
done
row "streamOptimized random 4 KiB (image warm)" "${RWARM[streamOptimized,vmdkfs]:-}" "${RWARM[streamOptimized,vmdkmount]:-}" 2 vmdkmount streamOptimized vmdkmount "$(sp RWARM streamOptimized vmdkfs), $(sp RWARM streamOptimized vmdkmount)"
# Where the disk is faster than FUSE, no FUSE reader reaches 0.9x a cold
# direct read: the ceiling says what was reachable.
for fmt in monolithicSparse streamOptimized; do
	[ -n "${CEIL[$fmt]:-}" ] && [ -n "${FIRST[$fmt,direct]:-}" ] &&
		bench_row "FUSE ceiling (for the $fmt cold goal)" "${CEIL[$fmt]}" "direct read (cold)" "${FIRST[$fmt,direct]}" - "$(sp CEIL "$fmt" -), $(sp FIRST "$fmt" direct)"
done

load=$(cut -d' ' -f1 /proc/loadavg)
echo
echo "load average at the end: $load on $(nproc) CPUs$(awk -v l="$load" \
	'BEGIN { if (l > 0.7) print " (other work was running: figures are noisy)" }')"

if ((FAILED)); then
	echo
	echo "bench: something broke (see the notes above)" >&2
	exit 1
fi
exit 0

# Shared by the bench scripts: one row of make bench's closing table.
# bench_row FIGURE VALUE CEILING_NAME CEILING_VALUE GOAL SPREAD
#   VALUE and CEILING_VALUE in the same unit (MB/s unless the figure says);
#   the ratio is VALUE / CEILING_VALUE; GOAL "0.9" means ratio >= 0.9,
#   "<=0.1" ratio <= 0.1, "-" no goal; SPREAD how far the runs spread
#   (e.g. "12%"), "-" when there was one run.
# Rows go to $BENCH_TABLE (set by scripts/bench-all.sh); without it, nothing.
bench_row() {
	[ -n "${BENCH_TABLE:-}" ] || return 0
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >>"$BENCH_TABLE"
}

# ---- helpers the bench scripts share ----
bench_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# dd_mbs: dd's last line on stdin, its rate in MB/s on stdout.
dd_mbs() { awk '{ v = $(NF-1); u = $NF; if (u == "GB/s") v *= 1000; if (u == "kB/s") v /= 1000; printf "%.0f\n", v }'; }
# median FILE: the median of a file of numbers, one a line.
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# spread FILE: how far the numbers spread, (max - min) / median, in %.
spread() { sort -n "$1" | awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)]; printf "%.0f%%\n", (m > 0 ? (v[NR] - v[1]) / m * 100 : 0) }'; }
# drop: the page cache (root only; without it, nothing).
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
# bench_wait_mount DIR: until DIR is a mount point (5 s at most).
bench_wait_mount() { local _; for _ in $(seq 100); do mountpoint -q "$1" && return 0; sleep 0.05; done; return 1; }

# bench_daemon_pid BINARY MOUNTPOINT: the PID of the BINARY process
# serving MOUNTPOINT (its last argument).
bench_daemon_pid() {
	local p
	for p in /proc/[0-9]*; do
		[ "$p/exe" -ef "$1" ] 2>/dev/null || continue
		[ "$(tr '\0' '\n' <"$p/cmdline" 2>/dev/null | tail -1)" = "$2" ] && { echo "${p#/proc/}"; return; }
	done
}
# bench_cpu_ticks PID: its user + system CPU time, in clock ticks.
bench_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# bench_machine_ticks: the CPU time of the whole machine, every CPU and
# process (user, nice, system, irq, softirq, steal; not idle or iowait),
# in clock ticks.
bench_machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

# lab_stream tcp|tls MIB: one plain stream of MIB MiB on loopback, the
# lab's sender (vmdkfs-lab -stream, tests/lab/stream.go: the NFC server's
# TLS set-up) to scripts/stream-read (nbdssl's OpenSSL set-up).  Prints
# "MB/s CPU-seconds-of-the-reader cipher connect-time last-byte-time".  Needs LAB_BIN and LAB_DIR
# (tests/lab/lab.sh, after lab_start).
lab_stream() {
	local port out
	coproc BENCH_STREAM { "$LAB_BIN" -stream "$1" -stream-mib "$2" -stream-cert "$LAB_DIR/nfc-cert.pem" -stream-key "$LAB_DIR/nfc-key.pem"; }
	read -r port <&"${BENCH_STREAM[0]}" || { echo "bench: the lab's stream did not start" >&2; return 1; }
	out=$("$bench_top/scripts/stream-read" "$1" "$port" $(($2 << 20))) || { wait; return 1; }
	wait
	echo "$out"
}

# fuse_ceiling_pass MIB MNT [CPUFILE]: one cold pass (dd bs=1M) over a
# fresh mount of scripts/fuse-ceiling (MIB MiB from memory, vmdkfs's FUSE
# settings and read-ahead); prints MB/s, and appends the server's CPU
# seconds (user + system) to CPUFILE if given.
fuse_ceiling_pass() {
	local pid bdi v c0 c1
	"$bench_top/scripts/fuse-ceiling" "$1" "$2" &
	pid=$!
	bench_wait_mount "$2" || { echo "bench: fuse-ceiling did not mount" >&2; return 1; }
	bdi=$(mountpoint -d "$2")
	echo 1024 >"/sys/class/bdi/$bdi/read_ahead_kb" 2>/dev/null || true
	drop
	c0=$(bench_cpu_ticks "$pid")
	v=$(dd if="$2/disk" of=/dev/null bs=1M 2>&1 | tail -1 | dd_mbs)
	c1=$(bench_cpu_ticks "$pid")
	[ -z "${3:-}" ] || echo "$c0 $c1" | awk -v hz="$(getconf CLK_TCK)" '{ print ($2 - $1) / hz }' >>"$3"
	fusermount3 -u "$2"
	wait "$pid" || true
	echo "$v"
}

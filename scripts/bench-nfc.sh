#!/bin/bash
# NFC benchmark (part of make bench): a sequential read (dd bs=1M) of a
# BENCH_NFC_MIB (default 1024) MiB disk through a vmdkfs mount over nbd
# and over nbdssl, in one run with its ceilings:
#   the FUSE ceiling   scripts/fuse-ceiling: the same number of bytes from
#                      memory with vmdkfs's FUSE settings (bench-lib.sh)
#   plain TCP / TLS    one connection on loopback, the lab's sender
#                      (vmdkfs-lab -stream: the NFC server's TLS set-up)
#                      to scripts/stream-read (nbdssl's OpenSSL set-up):
#                      the same cipher suite and 16 KiB records as nbdssl
# Goals (#15): nbd >= 0.8x the FUSE ceiling, nbdssl >= 0.8x the plain
# TLS stream; vmdkfs's own CPU per GiB (the daemon's user + system time,
# /proc) at most 1.3x the plain reader's (getrusage) for the same bytes.
# The runs are interleaved (ceiling, TCP, nbd, TLS, nbdssl; BENCH_RUNS
# times, default 3) so that this machine's drifts hit every figure alike;
# each figure is the median, with the spread.  The first nbdssl mount
# logs its cipher suite, which must be the plain stream's.  NFC_OPTS adds
# mount options (e.g. ",vixDiskLib.nfcAio.Session.BufCount=8").
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
MIB=${BENCH_NFC_MIB:-1024}
RUNS=${BENCH_RUNS:-3}
. "$top/scripts/bench-lib.sh"
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vmdkfs-nbench.XXXXXX")
. "$top/tests/lab/lab.sh"
cleanup() {
	for m in "$dir/m" "$dir/c"; do mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m"; done
	lab_stop
	rm -rf "$dir"
}
trap cleanup EXIT
for b in stream-read fuse-ceiling; do
	[ -x "$top/scripts/$b" ] || { echo "bench-nfc: scripts/$b not built (make scripts/$b)"; exit 1; }
done
lab_build "$top/build/lab" >/dev/null
lab_start "$dir/lab" -disk-mib "$MIB" -vms 1 -first-vm-disks 1 >/dev/null
printf '%s\n' "$LAB_PASSWORD" >"$dir/pw"
chmod 600 "$dir/pw"
mkdir -p "$dir/m" "$dir/c"

# nfc_read nbd|nbdssl [OPTS]: MB/s of dd over a fresh mount (the daemon's
# CPU seconds to $dir/cpu-MODE).  The bytes are checked once, outside the
# timed part, against qemu-img's reading of the lab's files.
nfc_read() {
	"$top/vmdkfs" -o "server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$dir/pw,thumbprint=$LAB_THUMBPRINT_SHA256,nfchostport=$LAB_NFC_PORT,vm=$LAB_VM,snapshot=new,transports=$1${NFC_OPTS:-}${2:-}" "$dir/m"
	local f out pid c0 c1 a0 a1 hz
	f=$(ls -d "$dir"/m/*/Hard_disk_1.raw)
	pid=$(bench_daemon_pid "$top/vmdkfs" "$dir/m")
	drop
	hz=$(getconf CLK_TCK)
	c0=$(bench_cpu_ticks "$pid") a0=$(bench_machine_ticks)
	out=$(dd if="$f" of=/dev/null bs=1M 2>&1 | tail -1)
	c1=$(bench_cpu_ticks "$pid") a1=$(bench_machine_ticks)
	echo "$c0 $c1" | awk -v hz="$hz" '{ print ($2 - $1) / hz }' >>"$dir/cpu-$1"
	echo "$a0 $a1" | awk -v hz="$hz" '{ print ($2 - $1) / hz }' >>"$dir/all-$1"
	if [ ! -e "$dir/checked-$1" ]; then # qemu-img's view of the lab's chain
		local p
		p=$(getfattr --absolute-names --only-values -n user.vmdkfs.datastore_path "$f")
		qemu-img convert -f vmdk -O raw "$LAB_DATASTORE_DIR/${p#*] }" "$dir/want.raw"
		cmp -s "$f" "$dir/want.raw" || { echo "bench-nfc: $1 returned other bytes" >&2; exit 1; }
		rm -f "$dir/want.raw"
		: >"$dir/checked-$1"
	fi
	fusermount3 -u "$dir/m"
	sleep 1
	echo "$out" | dd_mbs >>"$dir/mbs-$1"
}
stream() { # tcp|tls: MB/s to $dir/mbs-MODE, the reader's CPU to cpu-MODE
	local mbs cpu cipher
	read -r mbs cpu cipher _ < <(lab_stream "$1" "$MIB")
	echo "$mbs" >>"$dir/mbs-$1"
	echo "$cpu" >>"$dir/cpu-$1"
	echo "$cipher" >"$dir/cipher-$1"
}

for _ in $(seq "$RUNS"); do
	fuse_ceiling_pass "$MIB" "$dir/c" "$dir/cpu-ceiling" >>"$dir/mbs-ceiling"
	stream tcp
	nfc_read nbd
	stream tls
	nfc_read nbdssl
done
# The cipher suite nbdssl negotiated with the lab, from its log.
nfc_read nbdssl ",log=$dir/vmdkfs.log,vixDiskLib.nfc.LogLevel=3" >/dev/null
sed -i '$d' "$dir/mbs-nbdssl" "$dir/cpu-nbdssl" "$dir/all-nbdssl" # not one of the runs
ssl_cipher=$(sed -n 's/.*nbdssl: TLS[^,]*, //p' "$dir/vmdkfs.log" | tail -1)
stream_cipher=$(cat "$dir/cipher-tls")
[ "$ssl_cipher" = "$stream_cipher" ] || { echo "bench-nfc: nbdssl negotiated '$ssl_cipher', the plain stream '$stream_cipher'" >&2; exit 1; }

gib=$(echo "$MIB" | awk '{ print $1 / 1024 }')
# s/GiB: the median of FILE's CPU seconds per GiB read.
s_gib() { median "$dir/$1" | awk -v g="$gib" '{ printf "%.3f", $1 / g }'; }
per_gib() { s_gib "cpu-$1"; } # the process's own
all_gib() { s_gib "all-$1"; } # the machine's
m() { median "$dir/mbs-$1"; }
s() { spread "$dir/mbs-$1"; }
echo "NFC benchmark: $MIB MiB sequential read on loopback, medians of $RUNS interleaved runs (MB/s); cipher $ssl_cipher"
printf '%-34s %8s  (spread %s)\n' "FUSE ceiling (memory)" "$(m ceiling)" "$(s ceiling)" \
	"plain TCP stream" "$(m tcp)" "$(s tcp)" "vmdkfs over nbd" "$(m nbd)" "$(s nbd)" \
	"plain TLS stream" "$(m tls)" "$(s tls)" "vmdkfs over nbdssl" "$(m nbdssl)" "$(s nbdssl)"
printf 'CPU s/GiB: nbd %s (TCP reader %s), nbdssl %s (TLS reader %s), FUSE ceiling server %s\n' "$(per_gib nbd)" "$(per_gib tcp)" "$(per_gib nbdssl)" "$(per_gib tls)" "$(per_gib ceiling)"
bench_row "nbd, sequential" "$(m nbd)" "FUSE ceiling" "$(m ceiling)" 0.8 "$(s nbd), $(s ceiling)"
bench_row "nbd, sequential (for scale)" "$(m nbd)" "plain TCP stream" "$(m tcp)" - "$(s nbd), $(s tcp)"
# For scale: the machine's CPU time per GiB of the nbd read (vmdkfs, the
# lab's server, dd and the kernel's network work, all on this machine),
# and so the most the machine's CPUs allow at that cost.
ncpu=$(nproc)
cpu_bound() { all_gib "$1" | awk -v c="$ncpu" '{ printf "%.0f", ($1 > 0 ? c * 1073.741824 / $1 : 0) }'; }
printf 'machine CPU s/GiB (every process): nbd %s, nbdssl %s, on %s CPUs\n' "$(all_gib nbd)" "$(all_gib nbdssl)" "$ncpu"
bench_row "nbd, sequential (for scale)" "$(m nbd)" "$ncpu CPUs at nbd's $(all_gib nbd) CPU s/GiB" "$(cpu_bound nbd)" - "$(s nbd), $(spread "$dir/all-nbd")"
bench_row "nbdssl, sequential" "$(m nbdssl)" "plain TLS stream, $ssl_cipher" "$(m tls)" 0.8 "$(s nbdssl), $(s tls)"
bench_row "nbdssl: vmdkfs CPU s per GiB" "$(per_gib nbdssl)" "plain TLS reader, s per GiB" "$(per_gib tls)" "<=1.3" "median of $RUNS"
bench_row "nbd: vmdkfs CPU s per GiB" "$(per_gib nbd)" "plain TCP reader, s per GiB" "$(per_gib tcp)" "<=1.3" "median of $RUNS"
# For scale: what FUSE alone costs its server per GiB (fuse-ceiling), and
# the plain reader plus that, the least a FUSE reader of the link spends.
bench_row "nbd: vmdkfs CPU s per GiB (for scale)" "$(per_gib nbd)" "TCP reader + FUSE server, s/GiB" "$(echo "$(per_gib tcp) $(per_gib ceiling)" | awk '{ printf "%.3f", $1 + $2 }')" - "median of $RUNS"

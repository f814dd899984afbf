#!/bin/bash
# NFC benchmark (part of make bench): a sequential read of a BENCH_NFC_MIB
# (default 1024) MiB disk through a vmdkfs mount over nbd and over nbdssl,
# against a plain TCP stream and a plain TLS stream of the same size on
# loopback, in one run.  The peer is the lab's NFC server (tests/lab, Go).
# Target: each NFC mode at least 0.8x its plain stream.  For scale it
# also reads a flat disk held in memory (/dev/shm) through vmdkfs: what a
# FUSE read costs here with no transport at all.  Each figure is the
# median of three runs.  NFC_OPTS adds
# mount options (e.g. ",vixDiskLib.nfcAio.Session.BufSizeIn64KB=16").
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
MIB=${BENCH_NFC_MIB:-1024}
. "$top/scripts/bench-lib.sh"
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vmdkfs-nbench.XXXXXX")
. "$top/tests/lab/lab.sh"
cleanup() {
	mountpoint -q "$dir/m" 2>/dev/null && fusermount3 -u "$dir/m"
	lab_stop
	rm -rf "$dir"
}
trap cleanup EXIT
lab_build "$top/build/lab" >/dev/null
lab_start "$dir/lab" -disk-mib "$MIB" -vms 1 -first-vm-disks 1 >/dev/null
printf '%s\n' "$LAB_PASSWORD" >"$dir/pw"
chmod 600 "$dir/pw"
mkdir -p "$dir/m"

# Plain streams: a server sends MIB MiB, the client reads them into one
# reused buffer (as the kernel would), timed on the client.
stream() { # tcp|tls
	/usr/bin/python3 - "$1" "$MIB" "$LAB_DIR/nfc-cert.pem" "$LAB_DIR/nfc-key.pem" "$dir/cpu-$1" <<'EOP'
import socket, ssl, sys, threading, time
mode, mib, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
total = mib << 20
srv = socket.socket()
srv.bind(('127.0.0.1', 0))
srv.listen(1)
port = srv.getsockname()[1]
def serve():
    c, _ = srv.accept()
    if mode == 'tls':
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        c = ctx.wrap_socket(c, server_side=True)
    chunk = bytes(1 << 20)
    for _ in range(mib):
        c.sendall(chunk)
    c.close()
threading.Thread(target=serve, daemon=True).start()
s = socket.create_connection(('127.0.0.1', port))
if mode == 'tls':
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(s)
buf = memoryview(bytearray(1 << 20))
got, t0, c0 = 0, time.monotonic(), time.thread_time()
while got < total:
    n = s.recv_into(buf)
    if not n:
        break
    got += n
dt = time.monotonic() - t0
cpu = time.thread_time() - c0  # the reader's own CPU (the server is another thread)
assert got == total, got
with open(sys.argv[5], 'a') as f:
    f.write(f'{cpu}\n')
print(f'{total / dt / 1e6:.0f}')
EOP
}

# dd_mbs: dd's last line on stdin, its rate in MB/s on stdout.
dd_mbs() { awk '{ v = $(NF-1); u = $NF; if (u == "GB/s") v *= 1000; if (u == "kB/s") v /= 1000; printf "%.0f", v }'; }

# The vmdkfs daemon serving $dir/m, and its user+system CPU ticks.
daemon_pid() {
	local p
	for p in /proc/[0-9]*; do
		[ "$p/exe" -ef "$top/vmdkfs" ] 2>/dev/null || continue
		[ "$(tr '\0' '\n' <"$p/cmdline" 2>/dev/null | tail -1)" = "$dir/m" ] && { echo "${p#/proc/}"; return; }
	done
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# median of a file of numbers
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

nfc_read() { # nbd|nbdssl: MB/s of dd over the mount (its CPU to $dir/cpu-MODE)
	"$top/vmdkfs" -o "server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$dir/pw,thumbprint=$LAB_THUMBPRINT_SHA256,nfchostport=$LAB_NFC_PORT,vm=$LAB_VM,snapshot=new,transports=$1${NFC_OPTS:-}" "$dir/m"
	local f out pid c0 c1
	f=$(ls -d "$dir"/m/*/Hard_disk_1.raw)
	pid=$(daemon_pid)
	c0=$(cpu_ticks "$pid")
	out=$(dd if="$f" of=/dev/null bs=1M 2>&1 | tail -1)
	c1=$(cpu_ticks "$pid")
	echo "$c0 $c1" | awk -v hz="$(getconf CLK_TCK)" '{ print ($2 - $1) / hz }' >>"$dir/cpu-$1"
	fusermount3 -u "$dir/m"
	sleep 1
	echo "$out" | dd_mbs
}

# med3 CMD...: the median of three runs (this machine's figures vary).
med3() { printf '%s\n' "$("$@")" "$("$@")" "$("$@")" | sort -n | sed -n 2p; }

# The FUSE ceiling: a monolithicFlat disk in /dev/shm, fresh mount, one
# pass each.
fuse_ceiling() {
	local shm v
	[ "$(df -k --output=avail /dev/shm | tail -1)" -gt $((MIB * 1024 + 65536)) ] || { echo "-"; return; }
	shm=$(mktemp -d /dev/shm/vmdkfs-nbench.XXXXXX)
	qemu-img create -q -f vmdk -o subformat=monolithicFlat "$shm/d.vmdk" "${MIB}M"
	head -c $((MIB << 20)) /dev/urandom >"$shm/d-flat.vmdk"
	one() {
		"$top/vmdkfs" "$shm/d.vmdk" "$dir/m"
		dd if="$dir/m/d.raw" of=/dev/null bs=1M 2>&1 | tail -1 | dd_mbs
		fusermount3 -u "$dir/m"
	}
	v=$(med3 one)
	rm -rf "$shm"
	echo "$v"
}

ceiling=$(fuse_ceiling)
tcp=$(med3 stream tcp)
tls=$(med3 stream tls)
nbd=$(med3 nfc_read nbd)
nbdssl=$(med3 nfc_read nbdssl)
echo "NFC benchmark: $MIB MiB sequential read on loopback (MB/s)"
printf '%-28s %8s\n' "plain TCP stream" "$tcp" "vmdkfs over nbd" "$nbd" \
	"plain TLS stream" "$tls" "vmdkfs over nbdssl" "$nbdssl" \
	"vmdkfs, flat disk in memory" "$ceiling"
awk -v a="$nbd" -v b="$tcp" -v c="$nbdssl" -v e="$tls" 'BEGIN {
	x = a / b; y = c / e
	printf "nbd / TCP      %.2fx  (target >= 0.8x: %s)\n", x, (x >= 0.8) ? "met" : "NOT met"
	printf "nbdssl / TLS   %.2fx  (target >= 0.8x: %s)\n", y, (y >= 0.8) ? "met" : "NOT met"
}'
[ "$ceiling" = - ] || awk -v c="$ceiling" -v b="$tcp" -v a="$nbd" 'BEGIN {
	printf "vmdkfs with no transport (FUSE alone) / TCP %.2fx; nbd / that %.2fx\n", c / b, a / c
}'
# For make bench's table.  The FUSE ceiling proper (fuse-ceiling, memory)
# is measured by bench-ceiling.sh; here nbd is set against vmdkfs reading
# a flat disk in memory, the nearest ceiling measured in this script.
bench_row "nbd, sequential" "$nbd" "plain TCP stream" "$tcp" 0.8 "median of 3"
bench_row "nbdssl, sequential" "$nbdssl" "plain TLS stream" "$tls" 0.8 "median of 3"
[ "$ceiling" = - ] || bench_row "nbd, sequential" "$nbd" "vmdkfs flat in /dev/shm" "$ceiling" 0.8 "median of 3"
# CPU per GiB read: vmdkfs's daemon (user + system, /proc) against the plain
# reader of the same bytes (its own thread's CPU), medians of 3.
gib=$(echo "$MIB" | awk '{ print $1 / 1024 }')
per_gib() { median "$dir/cpu-$1" | awk -v g="$gib" '{ printf "%.3f", $1 / g }'; }
printf 'CPU s/GiB: nbd %s (TCP reader %s), nbdssl %s (TLS reader %s)\n' "$(per_gib nbd)" "$(per_gib tcp)" "$(per_gib nbdssl)" "$(per_gib tls)"
bench_row "nbdssl: vmdkfs CPU s per GiB" "$(per_gib nbdssl)" "plain TLS reader, s per GiB" "$(per_gib tls)" "<=1.3" "median of 3"
bench_row "nbd: vmdkfs CPU s per GiB" "$(per_gib nbd)" "plain TCP reader, s per GiB" "$(per_gib tcp)" "<=1.3" "median of 3"

#!/bin/bash
# Four disks at once over nbdssl (part of make bench): one mount of a lab VM
# with four disks of BENCH_NFC4_MIB (256) MiB, the four read at the same
# time (dd bs=1M each), against four plain TLS streams of the same size at
# the same time on loopback (four processes, one connection each), in one
# run.  The figure is the aggregate: all bytes over the wall time of the
# slowest, the median of three runs.  Goal: >= 0.8x.  The peer is the lab's
# NFC server (tests/lab, SIMULATED).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/bench-lib.sh"
MIB=${BENCH_NFC4_MIB:-256}
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vmdkfs-n4bench.XXXXXX")
. "$top/tests/lab/lab.sh"
cleanup() {
	mountpoint -q "$dir/m" 2>/dev/null && fusermount3 -u "$dir/m"
	lab_stop
	rm -rf "$dir"
}
trap cleanup EXIT
lab_build "$top/build/lab" >/dev/null
lab_start "$dir/lab" -disk-mib "$MIB" -vms 1 -first-vm-disks 4 >/dev/null
printf '%s\n' "$LAB_PASSWORD" >"$dir/pw"
chmod 600 "$dir/pw"
mkdir -p "$dir/m"
now() { date +%s.%N; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

# One plain TLS stream of MIB MiB (server and client in one process).
cat >"$dir/stream.py" <<'EOP'
import socket, ssl, sys, threading
mib, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
srv = socket.socket()
srv.bind(('127.0.0.1', 0))
srv.listen(1)
def serve():
    c, _ = srv.accept()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    c = ctx.wrap_socket(c, server_side=True)
    chunk = bytes(1 << 20)
    for _ in range(mib):
        c.sendall(chunk)
    c.close()
threading.Thread(target=serve, daemon=True).start()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(srv.getsockname()))
buf = memoryview(bytearray(1 << 20))
got = 0
while got < mib << 20:
    n = s.recv_into(buf)
    if not n:
        break
    got += n
assert got == mib << 20, got
EOP
streams4() { # MB/s aggregate of four streams at once
	local t0 t1 i
	t0=$(now)
	for i in 1 2 3 4; do
		/usr/bin/python3 "$dir/stream.py" "$MIB" "$LAB_DIR/nfc-cert.pem" "$LAB_DIR/nfc-key.pem" &
	done
	wait
	t1=$(now)
	echo "$t0 $t1" | awk -v b=$((4 * MIB << 20)) '{ printf "%.0f\n", b / 1e6 / ($2 - $1) }'
}
nbdssl4() { # MB/s aggregate of the four disks of one mount read at once
	local t0 t1 f
	"$top/vmdkfs" -o "server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$dir/pw,thumbprint=$LAB_THUMBPRINT_SHA256,nfchostport=$LAB_NFC_PORT,vm=$LAB_VM,snapshot=new,transports=nbdssl${NFC_OPTS:-}" "$dir/m"
	[ "$(ls "$dir"/m/*/Hard_disk_*.raw | wc -l)" = 4 ] || { echo "bench-nfc4: not four disks" >&2; return 1; }
	drop
	t0=$(now)
	for f in "$dir"/m/*/Hard_disk_*.raw; do
		dd if="$f" of=/dev/null bs=1M status=none &
	done
	wait
	t1=$(now)
	fusermount3 -u "$dir/m"
	sleep 1
	echo "$t0 $t1" | awk -v b=$((4 * MIB << 20)) '{ printf "%.0f\n", b / 1e6 / ($2 - $1) }'
}
med3() { printf '%s\n' "$("$@")" "$("$@")" "$("$@")" | sort -n | sed -n 2p; }
spread() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%.0f%%", (v[NR] - v[1]) / v[2] * 100 }'; }

a1=$(nbdssl4) a2=$(nbdssl4) a3=$(nbdssl4)
s1=$(streams4) s2=$(streams4) s3=$(streams4)
agg=$(printf '%s\n' "$a1" "$a2" "$a3" | sort -n | sed -n 2p)
tls=$(printf '%s\n' "$s1" "$s2" "$s3" | sort -n | sed -n 2p)
echo "four disks at once over nbdssl: $agg MB/s aggregate ($a1 $a2 $a3); four plain TLS streams: $tls MB/s ($s1 $s2 $s3)"
awk -v a="$agg" -v b="$tls" 'BEGIN { x = a / b; printf "ratio %.2fx (target >= 0.8x: %s)\n", x, (x >= 0.8) ? "met" : "NOT met" }'
bench_row "4 disks at once over nbdssl, aggregate" "$agg" "4 plain TLS streams at once" "$tls" 0.8 "$(spread "$a1" "$a2" "$a3"), $(spread "$s1" "$s2" "$s3")"

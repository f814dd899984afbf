#!/bin/bash
# The nbdkit plugin (part of make bench): nbdcopy from nbdkit-vmdkfs-plugin
# to null: against its ceilings, in one run:
#   local sparse and streamOptimized disks (BENCH_NBDKIT_MIB MiB of random
#   bytes, default 512) against nbdkit's own file plugin serving the same
#   bytes as a flat file (the NBD ceiling: nbdkit, the socket, nbdcopy);
#   over nbdssl (the lab, snapshot=new) against the plain TLS stream (the
#   lab's sender to scripts/stream-read, nbdssl's TLS set-up);
#   nbdcopy's four connections over four NFC links (nfc_links=4) against
#   the same over one.
# Goals (#23): local >= 0.9x the file plugin, nbdssl >= 0.8x the TLS
# stream, four links faster than one where the CPUs allow.  Runs are
# interleaved (BENCH_RUNS, default 3); each figure is the median, with the
# spread.  The bytes are checked once per kind, outside the timed part.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
MIB=${BENCH_NBDKIT_MIB:-512}
RUNS=${BENCH_RUNS:-3}
. "$top/scripts/bench-lib.sh"
plugin=$top/nbdkit/nbdkit-vmdkfs-plugin.so
[ -f "$plugin" ] || { echo "bench-nbdkit: $plugin not built (make)"; exit 1; }
[ -x "$top/scripts/stream-read" ] || { echo "bench-nbdkit: scripts/stream-read not built"; exit 1; }
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vmdkfs-kbench.XXXXXX")
. "$top/tests/lab/lab.sh"
pid=""
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	lab_stop
	rm -rf "$dir"
}
trap cleanup EXIT

# serve ARGS...: nbdkit on $dir/sock until a client gets an answer.
serve() {
	rm -f "$dir/sock"
	nbdkit -f -r -U "$dir/sock" "$@" >"$dir/nbdkit.log" 2>&1 &
	pid=$!
	for _ in $(seq 600); do
		nbdinfo --size "nbd+unix:///?socket=$dir/sock" >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$dir/nbdkit.log"; exit 1; }
		sleep 0.05
	done
	echo "bench-nbdkit: nbdkit did not serve: $*" >&2
	exit 1
}
unserve() {
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=""
}
# copy NAME [NBDCOPY OPTIONS]: MB/s of nbdcopy to null: appended to
# $dir/mbs-NAME; the bytes checked against $dir/want-KIND once (CHECK).
copy() {
	local name=$1 t0 t1
	shift
	drop
	t0=$(date +%s.%N)
	nbdcopy "$@" "nbd+unix:///?socket=$dir/sock" null:
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk -v b=$((MIB << 20)) '{ printf "%.0f\n", b / ($2 - $1) / 1e6 }' >>"$dir/mbs-$name"
}
check() { # WANT: the export's bytes are WANT's
	nbdcopy "nbd+unix:///?socket=$dir/sock" "$dir/got.raw"
	cmp -s "$dir/got.raw" "$1" || { echo "bench-nbdkit: other bytes than $1" >&2; exit 1; }
	rm -f "$dir/got.raw"
}

# Local disks: random bytes, as a flat file, a monolithicSparse and a
# streamOptimized VMDK.
head -c $((MIB << 20)) /dev/urandom >"$dir/flat.raw"
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$dir/flat.raw" "$dir/sparse.vmdk"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$dir/flat.raw" "$dir/stream.vmdk"
for k in sparse stream; do
	serve "$plugin" file="$dir/$k.vmdk"
	check "$dir/flat.raw"
	unserve
done
for _ in $(seq "$RUNS"); do
	serve file file="$dir/flat.raw"
	copy file
	unserve
	for k in sparse stream; do
		serve "$plugin" file="$dir/$k.vmdk"
		copy "$k"
		unserve
	done
done
rm -f "$dir/flat.raw" "$dir/sparse.vmdk" "$dir/stream.vmdk"

# Over nbdssl: the lab's VM, one disk of MIB MiB.
lab_build "$top/build/lab" >/dev/null
lab_start "$dir/lab" -disk-mib "$MIB" -vms 1 -first-vm-disks 1 >/dev/null
printf '%s\n' "$LAB_PASSWORD" >"$dir/pw"
chmod 600 "$dir/pw"
disk=$(lab_ctl state | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['vms'][0]['disks'][0]['file'])")
vm=(server="$LAB_HOST" port="$LAB_PORT" user="$LAB_USER" password=+"$dir/pw"
	thumbprint="$LAB_THUMBPRINT_SHA1" nfchostport="$LAB_NFC_PORT"
	vm=moref="$LAB_VM_MOREF" snapshot=new file="$disk" transports=nbdssl
	tmpDirectory="$dir" cbt=off) # no holes: every byte crosses the link
serve "$plugin" "${vm[@]}"
qemu-img convert -U -f vmdk -O raw "$LAB_DATASTORE_DIR/${disk#*] }" "$dir/want.raw"
check "$dir/want.raw"
unserve
rm -f "$dir/want.raw"
nfc_conns() { lab_ctl state | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['nfc']['stats']['connections'])"; }
stream() {
	local mbs
	read -r mbs _ < <(lab_stream tls "$MIB")
	echo "$mbs" >>"$dir/mbs-tls"
}
for _ in $(seq "$RUNS"); do
	stream
	serve "$plugin" "${vm[@]}"
	copy nbdssl --connections=1
	unserve
	serve "$plugin" "${vm[@]}"
	copy links1 --connections=4
	unserve
	c0=$(nfc_conns)
	serve "$plugin" "${vm[@]}" nfc_links=4
	copy links4 --connections=4
	unserve
	echo $(($(nfc_conns) - c0)) >>"$dir/links"
done

m() { median "$dir/mbs-$1"; }
s() { spread "$dir/mbs-$1"; }
echo "nbdkit plugin: nbdcopy of $MIB MiB to null:, medians of $RUNS interleaved runs (MB/s)"
printf '%-44s %8s  (spread %s)\n' "nbdkit file plugin, flat file" "$(m file)" "$(s file)" \
	"vmdkfs plugin, monolithicSparse" "$(m sparse)" "$(s sparse)" \
	"vmdkfs plugin, streamOptimized" "$(m stream)" "$(s stream)" \
	"plain TLS stream" "$(m tls)" "$(s tls)" \
	"vmdkfs plugin, nbdssl, 1 connection" "$(m nbdssl)" "$(s nbdssl)" \
	"vmdkfs plugin, nbdssl, 4 connections, 1 link" "$(m links1)" "$(s links1)" \
	"vmdkfs plugin, nbdssl, 4 connections, 4 links" "$(m links4)" "$(s links4)"
echo "(nfc_links=4 opened $(tr '\n' ' ' <"$dir/links")NFC links in its runs)"
bench_row "nbdkit plugin, monolithicSparse" "$(m sparse)" "nbdkit file plugin, same bytes" "$(m file)" 0.9 "$(s sparse), $(s file)"
bench_row "nbdkit plugin, streamOptimized" "$(m stream)" "nbdkit file plugin, same bytes" "$(m file)" 0.9 "$(s stream), $(s file)"
bench_row "nbdkit plugin, nbdssl" "$(m nbdssl)" "plain TLS stream" "$(m tls)" 0.8 "$(s nbdssl), $(s tls)"
bench_row "nbdkit plugin, nbdssl, 4 conns: 4 links" "$(m links4)" "4 conns, 1 link" "$(m links1)" 1.0 "$(s links4), $(s links1)"

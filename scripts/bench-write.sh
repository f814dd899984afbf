#!/bin/bash
# Write benchmark (part of make bench): sequential 1 MiB writes and random
# 4 KiB writes through a vmdkfs -o rw mount, against qemu-io writing the
# same image format directly, in one run, with ratios.  Each case starts
# from a fresh image, so sparse cases include grain allocation.  Both sides
# issue the same writes from one process and end with one flush.
#   BENCH_MIB   data size (default 1024)
#   BENCH_RAND  number of random 4 KiB writes (default 20000)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
vmdkfs=$top/vmdkfs
MIB=${BENCH_MIB:-1024}
NRAND=${BENCH_RAND:-20000}
dir=$(mktemp -d "${BENCH_DIR:-/var/tmp}/vmdkfs-wbench.XXXXXX")
mnt=$dir/mnt
cleanup() {
	mountpoint -q "$mnt" 2>/dev/null && fusermount3 -u "$mnt"
	rm -rf "$dir"
}
trap cleanup EXIT
mkdir -p "$mnt"
cd "$dir"

now() { date +%s.%N; }
mbps() { echo "$1 $2" | awk '{ printf "%.0f", $1 / 1048576 / $2 }'; }

# Command files: the same writes for both sides.
python=/usr/bin/python3
$python - "$MIB" "$NRAND" <<'EOP'
import random, sys
mib, n = int(sys.argv[1]), int(sys.argv[2])
with open('seq.ops', 'w') as f:
    for i in range(mib):
        f.write(f'{i * 1048576} 1048576\n')
rng = random.Random(1)
with open('rand.ops', 'w') as f:
    for _ in range(n):
        f.write(f'{rng.randrange(mib * 256) * 4096} 4096\n')
for name in ('seq', 'rand'):
    with open(f'{name}.ops') as src, open(f'{name}.qemu', 'w') as dst:
        for line in src:
            off, ln = line.split()
            dst.write(f'write -P 0x5a {off} {ln}\n')
        dst.write('flush\n')
EOP

# The vmdkfs side: pwrite each op, then fsync.
cat >writer.py <<'EOP'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
buf = b'\x5a' * 1048576
for line in open(sys.argv[2]):
    off, n = map(int, line.split())
    os.pwrite(fd, buf[:n], off)
os.fsync(fd)
EOP

fresh() { # fresh FORMAT: an empty image of that subformat as img.vmdk
	rm -f img*.vmdk
	qemu-img create -q -f vmdk -o subformat="$1" img.vmdk "${MIB}M"
}

printf '%-18s %-6s %12s %12s %8s\n' format load "vmdkfs MB/s" "qemu-io MB/s" ratio
for fmt in monolithicFlat monolithicSparse; do
	for load in seq rand; do
		[ $load = seq ] && bytes=$((MIB * 1048576)) || bytes=$((NRAND * 4096))
		fresh $fmt
		sync
		"$vmdkfs" -o rw img.vmdk "$mnt"
		t0=$(now)
		$python writer.py "$mnt/img.raw" $load.ops
		t1=$(now)
		fusermount3 -u "$mnt"
		qemu-img check -q img.vmdk || echo "warning: qemu-img check failed after vmdkfs $fmt $load"
		v=$(mbps $bytes "$(awk "BEGIN { print $t1 - $t0 }")")
		fresh $fmt
		sync
		t0=$(now)
		qemu-io -f vmdk img.vmdk <$load.qemu >/dev/null
		t1=$(now)
		q=$(mbps $bytes "$(awk "BEGIN { print $t1 - $t0 }")")
		printf '%-18s %-6s %12s %12s %8s\n' $fmt $load "$v" "$q" \
			"$(echo "$v $q" | awk '{ printf "%.2fx", $1 / ($2 ? $2 : 1) }')"
	done
done

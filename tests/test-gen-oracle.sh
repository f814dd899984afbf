#!/bin/bash
# test-gen-oracle.sh - check the test-image generator tests/gen/mkvmdk.py
# against qemu-img (the oracle): for each case the generated COWD/SEsparse
# image (and chain) must read back, through `qemu-img convert -O raw`, as
# exactly the expected bytes, computed here independently with dd.  The
# generator's own `expected-raw` reader is checked the same way.
#
# Exit: 0 pass, 1 fail, 77 skipped (qemu-img / qemu-io / python3 missing).
#
# What qemu 7.2 does with SEsparse grain-table entries (block/vmdk.c,
# get_cluster_offset; checked by the "semap" case below):
#   type 0 (unallocated)  reads through to the parent, zeros on a base;
#   type 1 (SCSI-unmapped) reads as ZEROS, even when the image has a parent
#          and even when the entry still carries a stale cluster number
#          (qemu treats it like type 2: "scsi-unmapped grain - fallthrough"
#          into the zero-grain case);
#   type 2 (zero)          reads as zeros, parent or not;
#   type 3 (allocated)     reads the cluster.
# `qemu-img map` reports type 1/2 as "zero": true, "data": false.
set -eu

case $0 in
*/*) here=$(cd "${0%/*}" && pwd) ;;
*) here=$(pwd) ;;
esac
GEN="$here/gen/mkvmdk.py"
PY=/usr/bin/python3

for tool in qemu-img qemu-io; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool not found (install qemu-utils)"
        exit 77
    fi
done
if [ ! -x "$PY" ]; then
    echo "SKIP: $PY not found"
    exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-gen-oracle.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# gen ARGS...: run the generator; its failure fails the whole test.
gen() {
    if ! "$PY" "$GEN" "$@"; then
        echo "FAIL: mkvmdk.py $* failed"
        exit 1
    fi
}

KiB=1024
MiB=$((1024 * 1024))

# rnd OFFSET LENGTH FILE...: the same random bytes into each FILE (bytes,
# multiples of 512).
rnd() {
    local off=$1 len=$2
    shift 2
    head -c "$len" /dev/urandom >chunk.bin
    for f in "$@"; do
        dd if=chunk.bin of="$f" bs=512 seek=$((off / 512)) conv=notrunc \
            status=none
    done
}

# zero OFFSET LENGTH FILE...: zeros into each FILE.
zero() {
    local off=$1 len=$2
    shift 2
    for f in "$@"; do
        dd if=/dev/zero of="$f" bs=512 seek=$((off / 512)) \
            count=$((len / 512)) conv=notrunc status=none
    done
}

# mkraw FILE SIZE: an all-zero (sparse) raw file.
mkraw() { rm -f "$1"; truncate -s "$2" "$1"; }

# check NAME DESCRIPTOR EXPECTED.raw: qemu-img and expected-raw read EXPECTED,
# and qemu-img check finds no error.
check() {
    local name=$1 desc=$2 exp=$3
    if ! qemu-img convert -f vmdk -O raw "$desc" got.raw 2>qemu.err; then
        fail "$name: qemu-img convert failed: $(cat qemu.err)"
        return
    fi
    if ! cmp -s got.raw "$exp"; then
        fail "$name: qemu-img reads different content ($(cmp got.raw "$exp" 2>&1 | head -1))"
        return
    fi
    if ! qemu-img check -q -f vmdk "$desc" >check.out 2>&1; then
        fail "$name: qemu-img check: $(cat check.out)"
        return
    fi
    if ! "$PY" "$GEN" expected-raw "$desc" mine.raw 2>gen.err; then
        fail "$name: expected-raw failed: $(cat gen.err)"
        return
    fi
    if ! cmp -s mine.raw "$exp"; then
        fail "$name: expected-raw differs ($(cmp mine.raw "$exp" 2>&1 | head -1))"
        return
    fi
    pass "$name"
}

# qemu_parent NAME SIZE: a qemu-img monolithicSparse parent with patterns,
# and its content as NAME.raw.
qemu_parent() {
    local name=$1 size=$2
    qemu-img create -q -f vmdk "$name.vmdk" "$size"
    qemu-io -f vmdk -c 'write -q -P 0x11 0 1M' "$name.vmdk" >/dev/null
    qemu-io -f vmdk -c "write -q -P 0x22 2M 512k" "$name.vmdk" >/dev/null
    qemu-img convert -f vmdk -O raw "$name.vmdk" "$name.raw"
}

# map_data DESCRIPTOR: the byte ranges qemu-img map reports as data in the
# top image, "start+length" per line, adjacent ranges merged.
map_data() {
    qemu-img map -f vmdk --output=json "$1" | "$PY" -c '
import json, sys
out = []
for e in json.load(sys.stdin):
    if e["data"] and e["depth"] == 0:
        if out and out[-1][0] + out[-1][1] == e["start"]:
            out[-1][1] += e["length"]
        else:
            out.append([e["start"], e["length"]])
for s, l in out:
    print("%d+%d" % (s, l))'
}

# map_zero DESCRIPTOR: ranges reported "present": true, "zero": true,
# "data": false at depth 0 (SEsparse type 1/2 grains; unallocated grains
# are "present": false), merged.
map_zero() {
    qemu-img map -f vmdk --output=json "$1" | "$PY" -c '
import json, sys
out = []
for e in json.load(sys.stdin):
    if e["present"] and e["zero"] and not e["data"] and e["depth"] == 0:
        if out and out[-1][0] + out[-1][1] == e["start"]:
            out[-1][1] += e["length"]
        else:
            out.append([e["start"], e["length"]])
for s, l in out:
    print("%d+%d" % (s, l))'
}

# expect_lines NAME GOT WANT
expect_lines() {
    if [ "$2" = "$3" ]; then
        pass "$1"
    else
        fail "$1: got [${2//$'\n'/ }] want [${3//$'\n'/ }]"
    fi
}

CAP=$((3 * MiB + 64 * KiB))     # not a multiple of any grain-table span

# --- COWD base, grain 1 (default), odd capacity, two grain tables ------------
mkraw a.raw $CAP
rnd 0 $((64 * KiB)) a.raw
rnd $((1 * MiB + 512)) $((3 * 512)) a.raw
rnd $((2 * MiB - 1024)) $((4 * KiB)) a.raw       # crosses the 2 MiB GT span
rnd $((CAP - 512)) 512 a.raw                      # last sector
gen cowd a.raw c1.vmdk
check "cowd base grain 1" c1.vmdk a.raw
if grep -q '^createType="vmfsSparse"$' c1.vmdk &&
    grep -q '^RW 6272 VMFSSPARSE "c1-delta.vmdk"$' c1.vmdk &&
    grep -q '^parentCID=ffffffff$' c1.vmdk &&
    grep -Eq '^CID=[0-9a-f]{8}$' c1.vmdk &&
    [ "$(head -c 4 c1-delta.vmdk)" = COWD ]; then
    pass "cowd descriptor/magic"
else
    fail "cowd descriptor/magic"
fi

# --- COWD base, grain 128 -----------------------------------------------------
mkraw b.raw $CAP
rnd $((64 * KiB)) $((64 * KiB)) b.raw              # grain 1
rnd $((1 * MiB + 100 * 512)) 512 b.raw             # part of grain 16
rnd $((3 * MiB)) $((64 * KiB)) b.raw               # last grain (48)
gen cowd b.raw c128.vmdk --grain 128
check "cowd base grain 128" c128.vmdk b.raw
expect_lines "cowd grain 128: qemu-img map data = allocated grains" \
    "$(map_data c128.vmdk)" \
    "$(printf '%s\n' $((64 * KiB))+$((64 * KiB)) $((16 * 64 * KiB))+$((64 * KiB)) $((48 * 64 * KiB))+$((64 * KiB)))"

# --- COWD, grain 1, --sparse-skip-zero: an empty middle grain table -----------
mkraw s.raw $((5 * MiB))
rnd 0 $((8 * KiB)) s.raw
rnd $((4 * MiB + 4 * KiB)) $((8 * KiB)) s.raw
gen cowd s.raw cskip.vmdk --sparse-skip-zero
check "cowd --sparse-skip-zero" cskip.vmdk s.raw
read -r gd0 gd1 gd2 <<<"$(od -An -tu4 -j 2048 -N 12 cskip-delta.vmdk)"
if [ "$gd0" != 0 ] && [ "$gd1" = 0 ] && [ "$gd2" != 0 ]; then
    pass "cowd --sparse-skip-zero leaves GD entry 1 empty"
else
    fail "cowd --sparse-skip-zero GD entries: $gd0 $gd1 $gd2"
fi
gen cowd s.raw cdense.vmdk
read -r gd0 gd1 gd2 <<<"$(od -An -tu4 -j 2048 -N 12 cdense-delta.vmdk)"
if [ "$gd1" != 0 ]; then
    pass "cowd default writes every grain table"
else
    fail "cowd default GD entry 1 is 0"
fi

# --- COWD delta over a qemu-img monolithicSparse parent -----------------------
qemu_parent p1 $CAP
mkraw d.raw $CAP
cp p1.raw d.exp
rnd $((512 * KiB)) $((8 * KiB)) d.raw d.exp        # over the 0x11 pattern
rnd $((2 * MiB + 64 * KiB)) 512 d.raw d.exp        # over the 0x22 pattern
rnd $((3 * MiB)) $((4 * KiB)) d.raw d.exp          # over parent zeros
gen cowd d.raw cd.vmdk --parent p1.vmdk
check "cowd delta over monolithicSparse" cd.vmdk d.exp
pcid=$(qemu-img info --output=json p1.vmdk | "$PY" -c \
    'import json,sys; print("%08x" % json.load(sys.stdin)["format-specific"]["data"]["cid"])')
if grep -q "^parentCID=$pcid\$" cd.vmdk &&
    grep -q '^parentFileNameHint="p1.vmdk"$' cd.vmdk; then
    pass "cowd delta parentCID/hint"
else
    fail "cowd delta parentCID/hint"
fi

# grain 8 delta with --map: grain 3 has RAW data but stays unallocated,
# grain 5 is all zero in RAW but allocated (hides the parent's 0x11).
mkraw d8.raw $CAP
cp p1.raw d8.exp
rnd 0 $((8 * 512)) d8.raw d8.exp                   # grain 0
rnd $((3 * 4 * KiB)) $((4 * KiB)) d8.raw           # grain 3: not in exp
zero $((5 * 4 * KiB)) $((4 * KiB)) d8.exp          # grain 5: zeros
gen cowd d8.raw cd8.vmdk --parent p1.vmdk --grain 8 --map 3:unalloc,5:data
check "cowd delta grain 8 with --map" cd8.vmdk d8.exp

# delta in a subdirectory: parentFileNameHint is relative to the child
mkdir -p sub
cp d.raw sub/d.raw
gen cowd sub/d.raw sub/cdsub.vmdk --parent p1.vmdk
if grep -q '^parentFileNameHint="../p1.vmdk"$' sub/cdsub.vmdk; then
    pass "relative parentFileNameHint"
else
    fail "relative parentFileNameHint"
fi
check "cowd delta in a subdirectory" sub/cdsub.vmdk d.exp

# --- capacity not a multiple of the grain (partial last grain) -----------------
head -c $((1001 * 512)) /dev/urandom >odd.raw
gen cowd odd.raw codd.vmdk --grain 128
check "cowd grain 128, capacity 1001 sectors" codd.vmdk odd.raw
gen sesparse odd.raw sodd.vmdk
check "sesparse, capacity 1001 sectors" sodd.vmdk odd.raw

# --- SEsparse base, both layouts -----------------------------------------------
mkraw e.raw $CAP
rnd 0 $((4 * KiB)) e.raw
rnd $((100 * KiB)) $((12 * KiB)) e.raw
rnd $((1 * MiB + 512)) 512 e.raw
rnd $((CAP - 4 * KiB)) $((4 * KiB)) e.raw
gen sesparse e.raw se.vmdk
check "sesparse base (vmware layout)" se.vmdk e.raw
if grep -q '^createType="seSparse"$' se.vmdk &&
    grep -q '^RW 6272 SESPARSE "se-sesparse.vmdk"$' se.vmdk; then
    pass "sesparse descriptor"
else
    fail "sesparse descriptor"
fi
gen sesparse e.raw sec.vmdk --layout compact
check "sesparse base (compact layout)" sec.vmdk e.raw
expect_lines "sesparse: qemu-img map data = allocated grains" \
    "$(map_data sec.vmdk)" \
    "$(printf '%s\n' 0+4096 $((100 * KiB))+$((12 * KiB)) $((256 * 4 * KiB))+4096 $((CAP - 4 * KiB))+4096)"

# several grain tables (16 MiB each), clusters >= 4096 (high encoding bits)
BIG=$((40 * MiB + 4 * KiB))
mkraw big.raw $BIG
rnd 0 $((8 * KiB)) big.raw
rnd $((33 * MiB)) $((64 * KiB)) big.raw
rnd $((BIG - 4 * KiB)) $((4 * KiB)) big.raw
gen sesparse big.raw sebig.vmdk --first-cluster 5000
check "sesparse 3 grain tables, clusters >= 4096" sebig.vmdk big.raw

# --- SEsparse delta over a monolithicSparse parent, all GTE types -------------
# grains (4 KiB): 0,1 data; 2 RAW data but unalloc (parent shows); 3 zero;
# 4 unmapped with RAW data (stale cluster kept in the entry); 5 unmapped with
# RAW zeros (plain 0x1000000000000000); 6 data with RAW zeros; 7 unalloc.
# grain 300 lies in the parent's zero area: zero type there reads zeros too.
mkraw f.raw $CAP
cp p1.raw f.exp
rnd 0 $((8 * KiB)) f.raw f.exp                     # grains 0-1
rnd $((2 * 4 * KiB)) $((4 * KiB)) f.raw            # grain 2 (unalloc)
zero $((3 * 4 * KiB)) $((4 * KiB)) f.exp           # grain 3 zero
rnd $((4 * 4 * KiB)) $((4 * KiB)) f.raw            # grain 4 unmapped, stale
zero $((4 * 4 * KiB)) $((4 * KiB)) f.exp           #   qemu: zeros
zero $((5 * 4 * KiB)) $((4 * KiB)) f.exp           # grain 5 unmapped: zeros
zero $((6 * 4 * KiB)) $((4 * KiB)) f.exp           # grain 6 data (zeros)
rnd $((600 * 4 * KiB)) $((4 * KiB)) f.raw f.exp    # grain 600 over 0x22
gen sesparse f.raw semap.vmdk --parent p1.vmdk \
    --map 2:unalloc,3:zero,4:unmapped,5:unmapped,6:data,300:zero
check "sesparse delta with unalloc/zero/unmapped (semap)" semap.vmdk f.exp
gen expected-raw semap.vmdk fpar.raw --unmapped parent
cp f.exp fpar.exp
dd if=p1.raw of=fpar.exp bs=4096 skip=4 seek=4 count=2 conv=notrunc status=none
if cmp -s fpar.raw fpar.exp; then
    pass "expected-raw --unmapped parent"
else
    fail "expected-raw --unmapped parent"
fi

# the same map on a base: check qemu-img map's data / zero reports
mkraw g.raw $CAP
rnd 0 $((16 * KiB)) g.raw
rnd $((40 * KiB)) $((4 * KiB)) g.raw
gen sesparse g.raw semb.vmdk --layout compact --map 1:zero,2:unmapped,3:unmapped,10:data,12:zero
cp g.raw g.exp
zero $((4 * KiB)) $((12 * KiB)) g.exp
check "sesparse base with zero/unmapped" semb.vmdk g.exp
expect_lines "sesparse base: qemu-img map data" "$(map_data semb.vmdk)" \
    "$(printf '%s\n' 0+4096 $((40 * KiB))+4096)"
expect_lines "sesparse base: qemu-img map zero (types 1, 2)" "$(map_zero semb.vmdk)" \
    "$(printf '%s\n' 4096+$((12 * KiB)) $((48 * KiB))+4096)"

# --- chains of generated images ------------------------------------------------
# SEsparse delta over an SEsparse base
mkraw h.raw $CAP
cp e.raw h.exp
rnd $((100 * KiB)) $((4 * KiB)) h.raw h.exp
rnd $((2 * MiB)) $((8 * KiB)) h.raw h.exp
gen sesparse h.raw seonse.vmdk --parent se.vmdk
check "sesparse delta over sesparse base" seonse.vmdk h.exp

# qemu monolithicSparse <- COWD delta (cd.vmdk) <- SEsparse delta
mkraw i.raw $CAP
cp d.exp i.exp
rnd $((508 * KiB)) $((8 * KiB)) i.raw i.exp
gen sesparse i.raw chain3.vmdk --parent cd.vmdk --layout compact
check "3-level chain monolithicSparse <- COWD <- SEsparse" chain3.vmdk i.exp

# COWD delta over SEsparse
mkraw j.raw $CAP
cp h.exp j.exp
rnd $((3 * MiB + 512)) 512 j.raw j.exp
gen cowd j.raw cdonse.vmdk --parent seonse.vmdk
check "cowd delta over sesparse delta" cdonse.vmdk j.exp

# --- damaged / inconsistent images: qemu must refuse ---------------------------
gen sesparse e.raw sedirty.vmdk --replay-journal
if qemu-img convert -f vmdk -O raw sedirty.vmdk x.raw 2>err.txt; then
    fail "replay-journal image was accepted by qemu-img"
elif grep -q "Replaying journal not supported" err.txt; then
    pass "replay-journal image refused by qemu-img"
else
    fail "replay-journal: unexpected error: $(cat err.txt)"
fi

gen cowd d.raw cdbad.vmdk --parent p1.vmdk --parent-cid 12345678
if qemu-img convert -f vmdk -O raw cdbad.vmdk x.raw 2>err.txt; then
    fail "parentCID mismatch was accepted by qemu-img"
else
    pass "parentCID mismatch refused by qemu-img"
fi

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all checks passed"
exit 0

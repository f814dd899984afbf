#!/bin/bash
# test-damaged.sh: damaged and inconsistent images must be refused cleanly.
#
# Every case builds a small image (qemu-img, tests/gen/mkvmdk.py or
# tests/damaged/vmdkpoke.py), damages it at an exact offset, then checks:
#
# open cases (damage visible when the disk is opened):
#   `vmdkfs info DISK` and a mount attempt `vmdkfs DISK MP` both exit
#   non-zero, below 128 (no crash, no timeout), with no sanitizer report,
#   and the message names the damaged file and the problem (an extended
#   regular expression per case, matched case-insensitively against the
#   message with its file names removed).
#
# read cases (damage only found when the data is read: grain-table entry
#   past EOF, damaged deflate data, grain-directory entry past EOF, SEsparse
#   cluster outside the grain area or bad entry type, file cut in the
#   grains): the mount succeeds; reading the damaged range with dd fails
#   with "Input/output error" (twice: no cached wrong bytes), reading the
#   whole disk fails, undamaged ranges read exactly the bytes qemu-img reads
#   from the undamaged original, and the vmdkfs log names the file and the
#   problem.
#
# A failing case does not stop the others; the summary lists them.
# CASES=REGEX runs only the cases whose name matches.
#
# Sanitizer builds (make SANITIZE=address,undefined): reports are sent to
# files (ASAN_OPTIONS/UBSAN_OPTIONS log_path, also for the daemonised FUSE
# process) and any report fails the case that made it.  UBSan's own
# "runtime error" reports still go to stderr with gcc's runtimes, so the
# read cases run the mount in the foreground (-f, in the background) and
# check its stderr and exit status too.
. "$(dirname "$0")/lib.sh"

need qemu-img fusermount3 mountpoint timeout cmp dd
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 not found"
[ -x "$VMDKFS" ] || skip "$VMDKFS not built (make vmdkfs)"
[ -c /dev/fuse ] || skip "/dev/fuse missing"

PY=/usr/bin/python3
POKE="$PY $TESTS/damaged/vmdkpoke.py"
KiB=1024
MiB=$((1024 * 1024))

SAN=$WORK/san
mkdir -p "$SAN/seen"
case ${ASAN_OPTIONS:-} in
*log_path*) ;;
*) export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$SAN/san" ;;
esac
case ${UBSAN_OPTIONS:-} in
*log_path*) ;;
*) export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:log_path=$SAN/san" ;;
esac

D=$WORK/img
mkdir -p "$D"
cd "$D" || fail "cd $D"

# ---- Result bookkeeping -----------------------------------------------------

npass=0 nfail=0
FAILED=""
CASE="" CASE_OK=1

selected() {
	[ -z "${CASES:-}" ] || printf '%s\n' "$1" | grep -Eq -- "$CASES"
}

begin() {
	CASE=$1
	CASE_OK=1
}

bad() {
	echo "FAIL: $CASE: $*"
	CASE_OK=0
}

# san_check: any sanitizer report written since the last call fails CASE.
san_check() {
	local f
	for f in "$SAN"/san.*; do
		[ -e "$f" ] || continue
		bad "sanitizer report $(basename "$f"):"
		sed 's/^/    | /' "$f" | head -40
		mv "$f" "$SAN/seen/"
	done
}

finish() {
	san_check
	if [ "$CASE_OK" = 1 ]; then
		npass=$((npass + 1))
		echo "PASS: $CASE"
	else
		nfail=$((nfail + 1))
		FAILED="$FAILED
    $CASE"
	fi
}

# strip_names: delete the file names (and paths) of a message, so that the
# problem regex cannot match a case's own file name ("k-magic.vmdk").
strip_names() { sed -E 's#[^[:space:]"]*\.(vmdk|img|raw)##g'; }

# show FILE: the output, indented, for failure messages.
show() { sed 's/^/    > /' "$1" | head -20; }

# ---- Assertions ---------------------------------------------------------------

# check_refusal WHAT RC OUTFILE FILEWORD REGEX: a clean refusal naming the
# file and the problem.
check_refusal() {
	local what=$1 rc=$2 out=$3 fileword=$4 re=$5
	if [ "$rc" = 0 ]; then
		bad "$what exited 0 (accepted the damaged image)"
		show "$out"
		return
	fi
	if [ "$rc" -ge 124 ]; then
		bad "$what exited $rc (crash, signal or timeout)"
		show "$out"
		return
	fi
	if grep -Eq 'Sanitizer|Segmentation|runtime error|core dumped' "$out"; then
		bad "$what: crash/sanitizer output"
		show "$out"
		return
	fi
	if ! grep -q '^vmdkfs: ' "$out"; then
		bad "$what: no \"vmdkfs: <message>\" line"
		show "$out"
	fi
	if ! grep -qF -- "$fileword" "$out"; then
		bad "$what: message does not name $fileword"
		show "$out"
	elif ! strip_names <"$out" | grep -Eiq -- "$re"; then
		bad "$what: message does not match /$re/"
		show "$out"
	fi
}

# refused NAME DISK FILEWORD REGEX: the open case (info, then mount).
refused() {
	local name=$1 disk=$2 fileword=$3 re=$4 rc mp=$WORK/mp
	begin "$name"
	rc=0
	timeout 20 "$VMDKFS" info "$disk" >"$WORK/out" 2>&1 || rc=$?
	check_refusal "vmdkfs info $(basename "$disk")" "$rc" "$WORK/out" \
		"$fileword" "$re"
	[ -z "${VERBOSE:-}" ] || show "$WORK/out"
	mkdir -p "$mp" "$WORK/log"
	rc=0
	timeout 20 "$VMDKFS" -o tmpDirectory="$WORK/log" "$disk" "$mp" \
		>"$WORK/out" 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		mountpoint -q "$mp" && fusermount3 -u "$mp"
	fi
	check_refusal "vmdkfs (mount) $(basename "$disk")" "$rc" "$WORK/out" \
		"$fileword" "$re"
	finish
}

# readcheck NAME DISK ORIG FILEWORD REGEX BADOFF:BADLEN[,...] GOODOFF:GOODLEN...
# Offsets and lengths in bytes, multiples of 4 KiB.  ORIG is the raw content
# of the undamaged image (from qemu-img).
readcheck() {
	local name=$1 disk=$2 orig=$3 fileword=$4 re=$5 bads=$6
	local mp=$WORK/mp log=$WORK/log-$$-$RANDOM raw r off len rc pid i
	shift 6
	begin "$name"
	mkdir -p "$log"
	mkdir -p "$mp"
	"$VMDKFS" -f -o tmpDirectory="$log" "$disk" "$mp" >"$WORK/fg.out" 2>&1 &
	pid=$!
	i=0
	while ! mountpoint -q "$mp" && kill -0 $pid 2>/dev/null && [ $i -lt 200 ]; do
		i=$((i + 1))
		sleep 0.05
	done
	if ! mountpoint -q "$mp"; then
		kill $pid 2>/dev/null || true
		rc=0
		wait $pid || rc=$?
		bad "mount failed (exit $rc; the damage is only in the data)"
		show "$WORK/fg.out"
		finish
		return
	fi
	MOUNTS="$MOUNTS $mp"
	raw=$mp/$(basename "$disk" .vmdk).raw
	for r in ${bads//,/ }; do
		off=${r%%:*} len=${r#*:}
		for try in 1 2; do
			rc=0
			dd if="$raw" of="$WORK/got" bs=4096 skip=$((off / 4096)) \
				count=$((len / 4096)) >"$WORK/out" 2>&1 || rc=$?
			if [ "$rc" = 0 ]; then
				bad "read $try of damaged range $off+$len succeeded"
				if cmp -s "$WORK/got" <(dd if="$orig" bs=4096 \
					skip=$((off / 4096)) count=$((len / 4096)) status=none); then
					echo "    (bytes equal the original?)"
				else
					echo "    (and returned WRONG bytes)"
				fi
			elif ! grep -q 'Input/output error' "$WORK/out"; then
				bad "read $try of damaged range $off+$len: not EIO"
				show "$WORK/out"
			fi
		done
	done
	for r in "$@"; do
		off=${r%%:*} len=${r#*:}
		rc=0
		dd if="$raw" of="$WORK/got" bs=4096 skip=$((off / 4096)) \
			count=$((len / 4096)) >"$WORK/out" 2>&1 || rc=$?
		if [ "$rc" != 0 ]; then
			bad "read of undamaged range $off+$len failed"
			show "$WORK/out"
		elif ! cmp -s "$WORK/got" <(dd if="$orig" bs=4096 \
			skip=$((off / 4096)) count=$((len / 4096)) status=none); then
			bad "undamaged range $off+$len reads wrong bytes"
		fi
	done
	rc=0
	cat "$raw" >/dev/null 2>"$WORK/out" || rc=$?
	[ "$rc" != 0 ] || bad "reading the whole disk succeeded"
	umount_vmdkfs "$mp"
	rc=0
	wait $pid || rc=$?
	[ "$rc" = 0 ] || bad "vmdkfs -f exited $rc after the unmount"
	if grep -Eq 'Sanitizer|Segmentation|runtime error' "$WORK/fg.out"; then
		bad "sanitizer/crash output from the mount:"
		show "$WORK/fg.out"
	fi
	if ! cat "$log"/*.log 2>/dev/null | grep -F -- "$fileword" |
		strip_names | grep -Eiq -- "$re"; then
		bad "the log has no line naming $fileword and matching /$re/"
		cat "$log"/*.log 2>/dev/null | sed 's/^/    log> /' | tail -5
	elif [ -n "${VERBOSE:-}" ]; then
		grep -h 'error' "$log"/*.log | sed 's/^/    log> /' | tail -2
	fi
	finish
}

# must CMD...: a setup step; its failure fails the whole test.
must() {
	"$@" >"$WORK/setup.out" 2>&1 || {
		cat "$WORK/setup.out"
		fail "setup: $* failed"
	}
}

# poke FILE OFFSET FMT VALUE: struct.pack("<FMT", VALUE) at OFFSET ("raw":
# hex bytes).
poke() { must $POKE set "$@"; }

# ---- Undamaged originals ------------------------------------------------------
#
# base.raw, 4 MiB: 0-640K random, 640K-1M zeros, 1M-2M compressible text,
# 2M-4M random.  Grains (64 KiB) 0-9 random, 10-15 zero, 16-31 text,
# 32-63 random.
head -c $((640 * KiB)) /dev/urandom >base.raw
truncate -s $((1 * MiB)) base.raw
$PY -c '
import sys
s = b"".join(b"line %07d of some compressible text\n" % i for i in range(40000))
sys.stdout.buffer.write(s[:1 << 20])' >>base.raw
head -c $((2 * MiB)) /dev/urandom >>base.raw
[ "$(stat -c %s base.raw)" = $((4 * MiB)) ] || fail "base.raw has the wrong size"

# big.raw, 40 MiB sparse (two grain tables of 32 MiB): data at 0-1M and
# 36M-37M only.
truncate -s $((40 * MiB)) big.raw
dd if=base.raw of=big.raw bs=1M count=1 conv=notrunc status=none
dd if=base.raw of=big.raw bs=1M skip=2 seek=36 count=1 conv=notrunc status=none

must qemu-img convert -f raw -O vmdk base.raw ms.vmdk
must qemu-img convert -f raw -O vmdk -o subformat=streamOptimized base.raw st.vmdk
must qemu-img convert -f raw -O vmdk big.raw big.vmdk
must $POKE mkstream base.raw vs.vmdk
must $MKVMDK cowd base.raw cw.vmdk --cid 0c0d0c0d
must $MKVMDK sesparse base.raw se.vmdk --cid 05e05e05
cp base.raw good-flat.img
cat >good-flat.vmdk <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
createType="monolithicFlat"
RW 8192 FLAT "good-flat.img" 0
EOF
# (no blank line before the extent: qemu-img 7.2 then reads the extent twice)

# The originals must be good: qemu-img and vmdkfs read them as base.raw.
begin "undamaged originals read correctly"
mkdir -p "$WORK/mp0"
for img in ms st big vs cw se good-flat; do
	rc=0
	qemu-img convert -f vmdk -O raw "$img.vmdk" "$img.orig" \
		>"$WORK/out" 2>&1 || rc=$?
	[ "$rc" = 0 ] || { bad "qemu-img convert $img.vmdk failed"; show "$WORK/out"; }
	want=base.raw
	[ "$img" = big ] && want=big.raw
	cmp -s "$img.orig" "$want" || bad "qemu-img reads $img.vmdk differently from $want"
	rc=0
	"$VMDKFS" info "$img.vmdk" >"$WORK/out" 2>&1 || rc=$?
	[ "$rc" = 0 ] || { bad "vmdkfs info $img.vmdk failed"; show "$WORK/out"; }
	if mount_vmdkfs "$WORK/mp0" -o tmpDirectory="$WORK/log" "$img.vmdk" \
		>"$WORK/out" 2>&1; then
		cmp -s "$WORK/mp0/$img.raw" "$want" ||
			bad "vmdkfs reads $img.vmdk differently from $want"
		umount_vmdkfs "$WORK/mp0"
	else
		bad "mount of $img.vmdk failed"
		show "$WORK/out"
	fi
done
finish
[ "$CASE_OK" = 1 ] || fail "the undamaged images do not work; not testing damage"

# Header fields (vmdk-formats.md) and, for ms.vmdk, the layout qemu-img
# writes: descriptor at sector 1, grain directory at sector GD_SEC.
GD_SEC=$($PY -c 'import struct,sys; print(struct.unpack_from("<Q", open("ms.vmdk","rb").read(512), 56)[0])')
MS_SIZE=$(stat -c %s ms.vmdk)

# ---- KDMV header fields: a table ---------------------------------------------
#
# kdmv NAME SRC OFFSET FMT VALUE REGEX: copy SRC.vmdk to NAME.vmdk, write
# VALUE at OFFSET, expect a refusal naming NAME.vmdk and matching REGEX.
kdmv() {
	local name=$1 src=$2 off=$3 fmt=$4 val=$5 re=$6
	selected "$name" || return 0
	cp "$src.vmdk" "$name.vmdk"
	poke "$name.vmdk" "$off" "$fmt" "$val"
	refused "$name" "$D/$name.vmdk" "$name.vmdk" "$re"
}

#    name              src off fmt value                 problem
kdmv k-magic           ms  0   raw 4b444d58              'magic|sparse header'
kdmv k-version4        ms  4   I   4                     'version 4'
kdmv k-version0        ms  4   I   0                     'version 0'
kdmv k-capacity0       ms  12  Q   0                     'capacity'
kdmv k-capacity2p63    ms  12  Q   0x8000000000000000    'capacity'
kdmv k-grain0          ms  20  Q   0                     'grain size'
kdmv k-grain2p40       ms  20  Q   0x10000000000         'grain size'
kdmv k-gtes0           ms  44  I   0                     'grain table'
kdmv k-gtes2p31        ms  44  I   0x80000000            'grain table'
kdmv k-gd-past-eof     ms  56  Q   0x100000              'grain directory.*past the end'
kdmv k-gd-huge         ms  56  Q   0x7ffffffffffffff0    'grain directory.*past the end'
kdmv k-desc-off-eof    ms  28  Q   0x100000              'descriptor'
kdmv k-desc-off-huge   ms  28  Q   0x0100000000000000    'descriptor'
kdmv k-desc-size-huge  ms  36  Q   0xffffffffffffff00    'descriptor'
kdmv k-newline         ms  73  raw 0a200a0a              'newline'
kdmv k-newline-crlf    ms  73  raw 0a200d0d              'newline'
kdmv s-compress7       st  77  H   7                     'compression'
kdmv s-compress0       st  77  H   0                     'compression'
kdmv v-compress7       vs  77  H   7                     'compression'

# descriptor size inside the 1 MiB limit but past the end of the file
name='k-desc-size-eof'
if selected $name; then
	cp ms.vmdk $name.vmdk
	poke $name.vmdk 28 Q $((MS_SIZE / 512 - 100))
	poke $name.vmdk 36 Q 2000
	refused $name "$D/$name.vmdk" $name.vmdk 'descriptor'
fi

# The same header damage seen through a descriptor: the extent file is named.
name='k-magic-extent'
if selected $name; then
	cp ms.vmdk magic-s001.vmdk
	poke magic-s001.vmdk 0 raw 4b444d58
	printf '# Disk DescriptorFile\nversion=1\nCID=11111111\nparentCID=ffffffff\ncreateType="twoGbMaxExtentSparse"\nRW 8192 SPARSE "magic-s001.vmdk"\n' >$name.vmdk
	refused $name "$D/$name.vmdk" magic-s001.vmdk 'magic'
fi
name='k-version4-extent'
if selected $name; then
	cp ms.vmdk v4-s001.vmdk
	poke v4-s001.vmdk 4 I 4
	printf '# Disk DescriptorFile\nversion=1\nCID=11111111\nparentCID=ffffffff\ncreateType="twoGbMaxExtentSparse"\nRW 8192 SPARSE "v4-s001.vmdk"\n' >$name.vmdk
	refused $name "$D/$name.vmdk" v4-s001.vmdk 'version 4'
fi
# descriptor gives the sparse extent more sectors than its header
name='k-extent-larger-than-capacity'
if selected $name; then
	printf '# Disk DescriptorFile\nversion=1\nCID=11111111\nparentCID=ffffffff\ncreateType="twoGbMaxExtentSparse"\nRW 16384 SPARSE "ms.vmdk"\n' >$name.vmdk
	refused $name "$D/$name.vmdk" ms.vmdk 'header|capacity|sectors'
fi

# ---- Truncated files ----------------------------------------------------------

name='t-cut-in-header'
if selected $name; then
	head -c 300 ms.vmdk >$name.vmdk
	refused $name "$D/$name.vmdk" $name.vmdk 'truncated|too short|header'
fi
name='t-cut-in-gd'
if selected $name; then
	head -c $((GD_SEC * 512 + 2)) ms.vmdk >$name.vmdk
	refused $name "$D/$name.vmdk" $name.vmdk 'grain directory.*past the end'
fi
name='t-cut-in-grains'
if selected $name; then
	# Cut 10000 bytes into grain 40 (2.5 MiB): grain 40 is short, 41-63
	# are gone.  Only found on read.
	cp ms.vmdk $name.vmdk
	g40=$($POKE kdmv-grain ms.vmdk 40)
	truncate -s $((g40 + 10000)) $name.vmdk
	readcheck $name "$D/$name.vmdk" ms.orig $name.vmdk \
		'past the end|end of the file|truncated' \
		$((40 * 64 * KiB)):$((64 * KiB)),$((41 * 64 * KiB)):$((64 * KiB)),$((63 * 64 * KiB)):$((64 * KiB)) \
		0:$((64 * KiB)) $((1 * MiB)):$((1 * MiB)) $((39 * 64 * KiB)):$((64 * KiB))
fi
name='t-cut-stream-in-grains'
if selected $name; then
	# qemu-img streams keep the tables at the front.
	cp st.vmdk $name.vmdk
	g40=$($POKE kdmv-grain st.vmdk 40)
	truncate -s $((g40 + 3000)) $name.vmdk
	readcheck $name "$D/$name.vmdk" st.orig $name.vmdk \
		'past the end|end of the file|compressed|impossible|truncated' \
		$((40 * 64 * KiB)):$((64 * KiB)),$((50 * 64 * KiB)):$((64 * KiB)) \
		0:$((64 * KiB)) $((1 * MiB)):$((1 * MiB))
fi

# ---- Streams (streamOptimized) ------------------------------------------------

name='s-gd-at-end-no-footer'
if selected $name; then
	must $POKE mkstream base.raw $name.vmdk --no-footer
	refused $name "$D/$name.vmdk" $name.vmdk 'footer'
fi
name='s-gd-at-end-footer-zeroed'
if selected $name; then
	# The footer sector is there but wiped.
	cp vs.vmdk $name.vmdk
	sz=$(stat -c %s $name.vmdk)
	dd if=/dev/zero of=$name.vmdk bs=512 seek=$((sz / 512 - 2)) count=1 \
		conv=notrunc status=none
	refused $name "$D/$name.vmdk" $name.vmdk 'footer'
fi
name='s-footer-gd-past-eof'
if selected $name; then
	cp vs.vmdk $name.vmdk
	sz=$(stat -c %s $name.vmdk)
	poke $name.vmdk $((sz - 1024 + 56)) Q 0x100000
	refused $name "$D/$name.vmdk" $name.vmdk 'grain directory.*past the end'
fi
name='s-footer-says-gd-at-end'
if selected $name; then
	cp vs.vmdk $name.vmdk
	sz=$(stat -c %s $name.vmdk)
	poke $name.vmdk $((sz - 1024 + 56)) Q 0xffffffffffffffff
	refused $name "$D/$name.vmdk" $name.vmdk 'footer'
fi
name='s-footer-grain0'
if selected $name; then
	cp vs.vmdk $name.vmdk
	sz=$(stat -c %s $name.vmdk)
	poke $name.vmdk $((sz - 1024 + 20)) Q 0
	refused $name "$D/$name.vmdk" $name.vmdk 'grain size'
fi

# Damaged deflate data (found on read).  Grain 20 holds text (real deflate
# blocks), grain 40 random data (stored blocks: only the adler32 catches it).
name='s-deflate-text-damaged'
if selected $name; then
	cp st.vmdk $name.vmdk
	m=$($POKE kdmv-grain st.vmdk 20)
	poke $name.vmdk $((m + 12 + 40)) raw 0123456789abcdeffedcba9876543210
	readcheck $name "$D/$name.vmdk" st.orig $name.vmdk 'compressed|deflate|zlib|damaged' \
		$((20 * 64 * KiB)):$((64 * KiB)) \
		0:$((64 * KiB)) $((19 * 64 * KiB)):$((64 * KiB)) $((21 * 64 * KiB)):$((64 * KiB)) $((3 * MiB)):$((1 * MiB))
fi
name='s-deflate-random-damaged'
if selected $name; then
	cp st.vmdk $name.vmdk
	m=$($POKE kdmv-grain st.vmdk 40)
	poke $name.vmdk $((m + 12 + 30000)) raw 00000000
	readcheck $name "$D/$name.vmdk" st.orig $name.vmdk 'compressed|deflate|zlib|damaged' \
		$((40 * 64 * KiB)):$((64 * KiB)) \
		0:$((64 * KiB)) $((41 * 64 * KiB)):$((64 * KiB))
fi
name='s-deflate-header-damaged'
if selected $name; then
	cp vs.vmdk $name.vmdk
	m=$($POKE kdmv-grain vs.vmdk 5)
	poke $name.vmdk $((m + 12)) raw ffff
	readcheck $name "$D/$name.vmdk" vs.orig $name.vmdk 'compressed|deflate|zlib|damaged' \
		$((5 * 64 * KiB)):$((64 * KiB)) \
		0:$((64 * KiB)) $((6 * 64 * KiB)):$((64 * KiB))
fi
name='s-compressed-size-huge'
if selected $name; then
	cp st.vmdk $name.vmdk
	m=$($POKE kdmv-grain st.vmdk 33)
	poke $name.vmdk $((m + 8)) I 0xfffffff0
	readcheck $name "$D/$name.vmdk" st.orig $name.vmdk 'compressed size|impossible|past the end' \
		$((33 * 64 * KiB)):$((64 * KiB)) \
		$((32 * 64 * KiB)):$((64 * KiB)) $((34 * 64 * KiB)):$((64 * KiB))
fi
name='s-marker-lba-wrong'
if selected $name; then
	cp st.vmdk $name.vmdk
	m=$($POKE kdmv-grain st.vmdk 34)
	poke $name.vmdk $m Q $((35 * 128))
	readcheck $name "$D/$name.vmdk" st.orig $name.vmdk 'marker|LBA' \
		$((34 * 64 * KiB)):$((64 * KiB)) \
		$((33 * 64 * KiB)):$((64 * KiB)) $((35 * 64 * KiB)):$((64 * KiB))
fi

# ---- Grain tables / directory entries past EOF (found on read) -----------------

name='r-gte-past-eof'
if selected $name; then
	cp ms.vmdk $name.vmdk
	poke $name.vmdk "$($POKE kdmv-gte ms.vmdk 20)" I 0x00f00000
	readcheck $name "$D/$name.vmdk" ms.orig $name.vmdk 'past the end' \
		$((20 * 64 * KiB)):$((64 * KiB)) \
		0:$((64 * KiB)) $((19 * 64 * KiB)):$((64 * KiB)) $((21 * 64 * KiB)):$((64 * KiB)) $((50 * 64 * KiB)):$((64 * KiB))
fi
name='r-gte-last-sector'
if selected $name; then
	# The grain starts inside the file but runs past its end.
	cp ms.vmdk $name.vmdk
	poke $name.vmdk "$($POKE kdmv-gte ms.vmdk 22)" I $((MS_SIZE / 512 - 1))
	readcheck $name "$D/$name.vmdk" ms.orig $name.vmdk 'past the end|end of the file' \
		$((22 * 64 * KiB)):$((64 * KiB)) \
		$((21 * 64 * KiB)):$((64 * KiB)) $((23 * 64 * KiB)):$((64 * KiB))
fi
name='r-stream-gte-past-eof'
if selected $name; then
	cp st.vmdk $name.vmdk
	poke $name.vmdk "$($POKE kdmv-gte st.vmdk 36)" I 0x00f00000
	readcheck $name "$D/$name.vmdk" st.orig $name.vmdk 'past the end' \
		$((36 * 64 * KiB)):$((64 * KiB)) \
		0:$((64 * KiB)) $((37 * 64 * KiB)):$((64 * KiB))
fi
name='r-gd-entry-past-eof'
if selected $name; then
	# big.vmdk has two grain tables; damage the second one's GD entry
	# (and the redundant copy, so no reader can fall back).
	cp big.vmdk $name.vmdk
	poke $name.vmdk "$($POKE kdmv-gde big.vmdk 1)" I 0x7fffff00
	rgd=$($PY -c 'import struct; print(struct.unpack_from("<Q", open("big.vmdk","rb").read(512), 48)[0])')
	poke $name.vmdk $((rgd * 512 + 4)) I 0x7fffff00
	readcheck $name "$D/$name.vmdk" big.orig $name.vmdk 'past the end' \
		$((36 * MiB)):$((64 * KiB)),$((39 * MiB)):$((64 * KiB)) \
		0:$((1 * MiB)) $((20 * MiB)):$((64 * KiB))
fi
name='r-cowd-gte-past-eof'
if selected $name; then
	mkdir -p cgte
	must $MKVMDK cowd base.raw cgte/c.vmdk
	# grain size 1 sector: GT 0 covers sectors 0-4095 (2 MiB).
	gd0=$(od -An -tu4 -j 2048 -N 4 cgte/c-delta.vmdk | tr -d ' ')
	poke cgte/c-delta.vmdk $((gd0 * 512 + 4 * 2048)) I 0x00f00000
	readcheck $name "$D/cgte/c.vmdk" cw.orig c-delta.vmdk 'past the end' \
		$((1 * MiB)):4096 \
		0:$((64 * KiB)) $((1 * MiB + 4096)):$((64 * KiB)) $((3 * MiB)):$((64 * KiB))
fi

# ---- COWD headers -----------------------------------------------------------------

# cowd NAME OFFSET FMT VALUE REGEX: damage a copy of cw-delta.vmdk.
cowd() {
	local name=$1 off=$2 fmt=$3 val=$4 re=$5
	selected "$name" || return 0
	mkdir -p "$name"
	sed 's/cw-delta.vmdk/c-delta.vmdk/' cw.vmdk >"$name/c.vmdk"
	cp cw-delta.vmdk "$name/c-delta.vmdk"
	poke "$name/c-delta.vmdk" "$off" "$fmt" "$val"
	refused "$name" "$D/$name/c.vmdk" c-delta.vmdk "$re"
}

#    name                  off fmt value       problem
cowd c-magic               0   raw 434f5758    'magic'
cowd c-version2            4   I   2           'version'
cowd c-grain0              16  I   0           'grain size'
cowd c-grain-huge          16  I   0xffffffff  'grain size'
cowd c-gd-entries-small    24  I   1           'grain directory'
cowd c-gd-entries-0        24  I   0           'grain directory'
cowd c-gd-past-eof         20  I   0x00f00000  'grain directory.*past the end'
cowd c-capacity0           12  I   0           'capacity'

name='c-truncated-header'
if selected $name; then
	mkdir -p $name
	sed 's/cw-delta.vmdk/c-delta.vmdk/' cw.vmdk >$name/c.vmdk
	head -c 1000 cw-delta.vmdk >$name/c-delta.vmdk
	refused $name "$D/$name/c.vmdk" c-delta.vmdk 'too short|truncated|header'
fi

# ---- SEsparse -------------------------------------------------------------------------

# sesp NAME OFFSET FMT VALUE REGEX: damage a copy of se-sesparse.vmdk.
sesp() {
	local name=$1 off=$2 fmt=$3 val=$4 re=$5
	selected "$name" || return 0
	mkdir -p "$name"
	sed 's/se-sesparse.vmdk/s-sesparse.vmdk/' se.vmdk >"$name/s.vmdk"
	cp se-sesparse.vmdk "$name/s-sesparse.vmdk"
	poke "$name/s-sesparse.vmdk" "$off" "$fmt" "$val"
	refused "$name" "$D/$name/s.vmdk" s-sesparse.vmdk "$re"
}

#    name                  off fmt value                 problem
sesp e-magic               0   Q   0xcafebabf            'magic'
sesp e-version             8   Q   0x0000000200000002    'version'
sesp e-capacity0           16  Q   0                     'capacity'
sesp e-grain0              24  Q   0                     'grain'
sesp e-volatile-magic      512 Q   0xcafecaff            'volatile.*magic|magic'
sesp e-gd-past-eof         128 Q   0x100000              'grain directory.*outside|past the end'
sesp e-journal-replay      536 Q   1                     'journal'

name='e-replay-journal'
if selected $name; then
	mkdir -p $name
	must $MKVMDK sesparse base.raw $name/s.vmdk --replay-journal
	refused $name "$D/$name/s.vmdk" s-sesparse.vmdk 'journal'
fi

# Not damage: the areas a reader never uses (journal header, journal, free
# bitmap, back map) absent, offset and size 0.  qemu reads such a file; so
# must vmdkfs, with the same bytes.
name='ok-unused-areas-absent'
if selected $name; then
	begin $name
	mkdir -p $name
	sed 's/se-sesparse.vmdk/s-sesparse.vmdk/' se.vmdk >"$name/s.vmdk"
	cp se-sesparse.vmdk "$name/s-sesparse.vmdk"
	for o in 96 104 112 120 160 168 176 184; do
		poke "$name/s-sesparse.vmdk" $o Q 0
	done
	must qemu-img convert -f vmdk -O raw "$name/s.vmdk" "$WORK/q.raw"
	cmp -s "$WORK/q.raw" se.orig || bad "qemu-img reads other bytes than the original"
	mkdir -p "$WORK/mp"
	if timeout 20 "$VMDKFS" "$D/$name/s.vmdk" "$WORK/mp" >"$WORK/out" 2>&1; then
		MOUNTS="$MOUNTS $WORK/mp"
		cmp -s "$WORK/mp/s.raw" "$WORK/q.raw" || bad "vmdkfs reads other bytes than qemu-img"
		umount_vmdkfs "$WORK/mp"
	else
		bad "refused: $(cat "$WORK/out")"
	fi
	finish
fi

# Cluster outside the grain area / bad entry types (found on read).  4 KiB
# grains: grain 600 is at 2400 KiB.
# sesp_read NAME GRAIN ENTRY REGEX
sesp_read() {
	local name=$1 g=$2 entry=$3 re=$4 gte
	selected "$name" || return 0
	mkdir -p "$name"
	sed 's/se-sesparse.vmdk/s-sesparse.vmdk/' se.vmdk >"$name/s.vmdk"
	cp se-sesparse.vmdk "$name/s-sesparse.vmdk"
	gte=$($POKE se-gte se-sesparse.vmdk "$g")
	poke "$name/s-sesparse.vmdk" "$gte" Q "$entry"
	readcheck "$name" "$D/$name/s.vmdk" se.orig s-sesparse.vmdk "$re" \
		$((g * 4096)):4096 \
		0:$((64 * KiB)) $(((g - 1) * 4096)):4096 $(((g + 1) * 4096)):4096 $((3 * MiB)):$((64 * KiB))
}
# cluster 2^40 (encoding: ((c & 0xfff) << 48) | (c >> 12))
sesp_read e-cluster-outside   600 0x3000000010000000 'outside the grain area|cluster'
# cluster 1000: inside the grain area as declared (1024 clusters), but past
# the end of the file (which ends after the ~930 clusters in use)
sesp_read e-cluster-past-eof  601 0x33e8000000000000 'past the end|outside'
sesp_read e-gte-type5         602 0x5000000000000000 'type 5|invalid'
sesp_read e-gte-type15        603 0xf000000000000001 'type 15|invalid'
name='e-gd-entry-bad'
if selected $name; then
	mkdir -p $name
	sed 's/se-sesparse.vmdk/s-sesparse.vmdk/' se.vmdk >$name/s.vmdk
	cp se-sesparse.vmdk $name/s-sesparse.vmdk
	gdo=$($PY -c 'import struct; print(struct.unpack_from("<Q", open("se-sesparse.vmdk","rb").read(512), 128)[0])')
	poke $name/s-sesparse.vmdk $((gdo * 512)) Q 0x2000000000000000
	readcheck $name "$D/$name/s.vmdk" se.orig s-sesparse.vmdk \
		'grain directory entry|invalid' 0:$((64 * KiB))
fi

# ---- Descriptor text ------------------------------------------------------------------
#
# desc NAME REGEX [FILEWORD]: the descriptor NAME.vmdk is read from stdin;
# its extent (if any) is the good flat image.  The message must name
# FILEWORD (default NAME.vmdk; the extent file for damaged extents).
desc() {
	local name=$1 re=$2 fileword=${3:-$1.vmdk}
	if ! selected "$name"; then
		cat >/dev/null
		return 0
	fi
	cat >"$name.vmdk"
	refused "$name" "$D/$name.vmdk" "$fileword" "$re"
}

if selected d-binary-junk; then
	{ printf '\177ELF\002\001\001'; head -c 4096 /dev/urandom; } >d-binary-junk.vmdk
	refused d-binary-junk "$D/d-binary-junk.vmdk" d-binary-junk.vmdk 'not a VMDK descriptor'
fi
if selected d-nul-first; then
	{ printf '\0\0\0\0'; cat good-flat.vmdk; } >d-nul-first.vmdk
	refused d-nul-first "$D/d-nul-first.vmdk" d-nul-first.vmdk 'not a VMDK descriptor|empty'
fi
desc d-first-line 'first line|DescriptorFile' <<'EOF'
# Disk Description File
version=1
CID=12345678
parentCID=ffffffff
RW 8192 FLAT "good-flat.img" 0
EOF
desc d-type-foo '"?FOO"?.*(unknown|type)|type.*FOO' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 8192 FOO "good-flat.img" 0
EOF
desc d-access-bad 'FULLACCESS|access|key=value' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
FULLACCESS 8192 FLAT "good-flat.img" 0
EOF
desc d-sectors-abc '"?abc"?' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW abc FLAT "good-flat.img" 0
EOF
desc d-sectors-0 'size|sector count' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 0 FLAT "good-flat.img" 0
EOF
desc d-sectors-huge '99999999999999999999' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 99999999999999999999 FLAT "good-flat.img" 0
EOF
desc d-sectors-2p64-1 '18446744073709551615' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 18446744073709551615 FLAT "good-flat.img" 0
EOF
desc d-sectors-sum-overflow 'add up|more than|total|sectors' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 549755813888 ZERO
RW 549755813888 ZERO
RW 8192 FLAT "good-flat.img" 0
EOF
desc d-offset-huge 'offset|past the end' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 8192 FLAT "good-flat.img" 99999999999999999999
EOF
desc d-missing-quote 'quote' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 8192 FLAT "good-flat.img 0
EOF
desc d-no-extents 'extent' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
createType="monolithicFlat"
EOF
desc d-no-cid 'CID' <<'EOF'
# Disk DescriptorFile
version=1
parentCID=ffffffff
RW 8192 FLAT "good-flat.img" 0
EOF
desc d-cid-not-hex 'CID' <<'EOF'
# Disk DescriptorFile
version=1
CID=xyz12345
parentCID=ffffffff
RW 8192 FLAT "good-flat.img" 0
EOF
desc d-cid-too-long 'CID' <<'EOF'
# Disk DescriptorFile
version=1
CID=123456789
parentCID=ffffffff
RW 8192 FLAT "good-flat.img" 0
EOF
desc d-parentcid-not-hex 'parentCID' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=-1
RW 8192 FLAT "good-flat.img" 0
EOF
desc d-version4 'version' <<'EOF'
# Disk DescriptorFile
version=4
CID=12345678
parentCID=ffffffff
RW 8192 FLAT "good-flat.img" 0
EOF
desc d-garbage-line 'key=value|line 5' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
this line is neither a key nor an extent
RW 8192 FLAT "good-flat.img" 0
EOF
if selected d-empty; then
	: >d-empty.vmdk
	refused d-empty "$D/d-empty.vmdk" d-empty.vmdk 'empty'
fi
if selected d-blank-lines; then
	printf '\n\n   \n\n' >d-blank-lines.vmdk
	refused d-blank-lines "$D/d-blank-lines.vmdk" d-blank-lines.vmdk 'empty|not a VMDK descriptor'
fi
if selected d-2mib-text; then
	{
		printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\nRW 8192 FLAT "good-flat.img" 0\n'
		$PY -c 'import sys; sys.stdout.write("# padding comment line .........................\n" * 43000)'
	} >d-2mib-text.vmdk
	refused d-2mib-text "$D/d-2mib-text.vmdk" d-2mib-text.vmdk \
		'too (large|big|long)|[0-9]+ bytes|descriptor'
fi
if selected d-2mib-one-line; then
	{
		printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\nRW 8192 FLAT "good-flat.img" 0\nddb.comment = "'
		head -c $((2 * MiB)) /dev/zero | tr '\0' 'x'
		printf '"\n'
	} >d-2mib-one-line.vmdk
	refused d-2mib-one-line "$D/d-2mib-one-line.vmdk" d-2mib-one-line.vmdk \
		'too (large|big|long)|[0-9]+ bytes|descriptor'
fi
# the embedded descriptor of a monolithicSparse file, damaged
name='d-embedded-garbage'
if selected $name; then
	cp ms.vmdk $name.vmdk
	poke $name.vmdk 512 raw "$(printf 'RW 8192 FOO "x"\n' | od -An -tx1 | tr -d ' \n')"
	refused $name "$D/$name.vmdk" $name.vmdk 'not a VMDK descriptor|first line'
fi

# ---- Extent files -----------------------------------------------------------------------

head -c $((1 * MiB)) base.raw >small-flat.img
desc x-flat-larger-than-file 'past the end|end of the file' small-flat.img <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 8192 FLAT "small-flat.img" 0
EOF
desc x-flat-offset-past-eof 'past the end|end of the file' small-flat.img <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 1024 FLAT "small-flat.img" 4096
EOF
desc x-flat-offset-overflow 'offset|past the end' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 1024 FLAT "small-flat.img" 36028797018963968
EOF
desc x-missing-flat 'No such file|not found' nonexistent-flat.img <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 8192 FLAT "nonexistent-flat.img" 0
EOF
desc x-missing-sparse 'No such file|not found' nonexistent-s001.vmdk <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 8192 SPARSE "nonexistent-s001.vmdk"
EOF
desc x-extent-is-directory 'not a regular file|directory' img/. <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 8192 FLAT "." 0
EOF
desc x-vmfsrdm 'not supported' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
createType="vmfsRawDeviceMap"
RW 8192 VMFSRDM "good-flat.img"
EOF
desc x-vmfsraw 'not supported' <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
createType="vmfsRaw"
RW 8192 VMFSRAW "good-flat.img"
EOF
desc x-sparse-is-cowd 'match|COWD' cw-delta.vmdk <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 8192 SPARSE "cw-delta.vmdk"
EOF
desc x-sesparse-is-kdmv 'match|KDMV' ms.vmdk <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 8192 SESPARSE "ms.vmdk"
EOF
desc x-vmfssparse-is-flat 'magic' good-flat.img <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 8192 VMFSSPARSE "good-flat.img"
EOF
desc x-sparse-is-descriptor 'magic|too short|header' good-flat.vmdk <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
RW 8192 SPARSE "good-flat.vmdk"
EOF

# ---- Parent chains -----------------------------------------------------------------------

# chain DIR: a base pb.vmdk (CID bbbbbbbb) and a child pa.vmdk (CID
# aaaaaaaa, parent pb.vmdk), COWD, 1 MiB.
head -c $((1 * MiB)) base.raw >chain.raw
chain() {
	mkdir -p "$1"
	must $MKVMDK cowd chain.raw "$1/pb.vmdk" --cid bbbbbbbb
	must $MKVMDK cowd chain.raw "$1/pa.vmdk" --cid aaaaaaaa --parent "$1/pb.vmdk"
}

name='p-loop-a-b-a'
if selected $name; then
	chain $name
	sed -i 's/^parentCID=ffffffff$/parentCID=aaaaaaaa\nparentFileNameHint="pa.vmdk"/' $name/pb.vmdk
	grep -q '^parentFileNameHint="pa.vmdk"' $name/pb.vmdk || fail "setup: $name"
	refused $name "$D/$name/pa.vmdk" pa.vmdk 'loop'
fi
name='p-loop-self'
if selected $name; then
	mkdir -p $name
	must $MKVMDK cowd chain.raw $name/pa.vmdk --cid aaaaaaaa
	sed -i 's/^parentCID=ffffffff$/parentCID=aaaaaaaa\nparentFileNameHint="pa.vmdk"/' $name/pa.vmdk
	refused $name "$D/$name/pa.vmdk" pa.vmdk 'loop'
fi
name='p-loop-via-symlink'
if selected $name; then
	# the hint names the child through a symbolic link: still a loop
	chain $name
	ln -s pa.vmdk $name/alias.vmdk
	sed -i 's/^parentCID=ffffffff$/parentCID=aaaaaaaa\nparentFileNameHint="alias.vmdk"/' $name/pb.vmdk
	refused $name "$D/$name/pa.vmdk" .vmdk 'loop'
fi
name='p-missing-parent'
if selected $name; then
	chain $name
	rm $name/pb.vmdk
	refused $name "$D/$name/pa.vmdk" pb.vmdk 'not found|No such file'
fi
name='p-missing-parent-absolute'
if selected $name; then
	chain $name
	sed -i 's#^parentFileNameHint=.*#parentFileNameHint="/vmfs/volumes/datastore1/vm/gone.vmdk"#' $name/pa.vmdk
	refused $name "$D/$name/pa.vmdk" gone.vmdk 'not found|No such file'
fi
name='p-missing-parent-extent'
if selected $name; then
	chain $name
	rm $name/pb-delta.vmdk
	refused $name "$D/$name/pa.vmdk" pb-delta.vmdk 'not found|No such file'
fi
name='p-parentcid-mismatch'
if selected $name; then
	mkdir -p $name
	must $MKVMDK cowd chain.raw $name/pb.vmdk --cid bbbbbbbb
	must $MKVMDK cowd chain.raw $name/pa.vmdk --cid aaaaaaaa --parent $name/pb.vmdk --parent-cid 12345678
	refused $name "$D/$name/pa.vmdk" pa.vmdk 'parentCID'
fi
name='p-parentcid-no-hint'
if selected $name; then
	chain $name
	sed -i '/^parentFileNameHint=/d' $name/pa.vmdk
	refused $name "$D/$name/pa.vmdk" pa.vmdk 'parentFileNameHint'
fi
name='p-damaged-parent'
if selected $name; then
	# the parent's extent is damaged: the message names the parent's file
	chain $name
	poke $name/pb-delta.vmdk 4 I 9
	refused $name "$D/$name/pa.vmdk" pb-delta.vmdk 'version'
fi

# zchain DIR N LAST_PARENT_LINES: N text descriptors l1.vmdk .. lN.vmdk
# (ZERO extents), each the parent of the one before (l1 is the top).  lN
# gets LAST_PARENT_LINES (a parentCID/parentFileNameHint pair, or none).
zchain() {
	local dir=$1 n=$2 last=$3 i
	mkdir -p "$dir"
	for i in $(seq 1 "$n"); do
		{
			printf '# Disk DescriptorFile\nversion=1\nCID=%08x\n' "$i"
			if [ "$i" -lt "$n" ]; then
				printf 'parentCID=%08x\nparentFileNameHint="l%d.vmdk"\n' \
					$((i + 1)) $((i + 1))
			else
				printf '%s\n' "$last"
			fi
			printf 'RW 2048 ZERO\n'
		} >"$dir/l$i.vmdk"
	done
}
name='p-chain-too-long'
if selected $name; then
	zchain $name 300 'parentCID=ffffffff'
	refused $name "$D/$name/l1.vmdk" .vmdk 'chain|longer|links'
fi
name='p-loop-40-links'
if selected $name; then
	zchain $name 40 "$(printf 'parentCID=00000001\nparentFileNameHint="l1.vmdk"')"
	refused $name "$D/$name/l1.vmdk" .vmdk 'loop'
fi
name='p-parent-is-directory'
if selected $name; then
	chain $name
	mkdir $name/dir.vmdk
	sed -i 's#^parentFileNameHint=.*#parentFileNameHint="dir.vmdk"#' $name/pa.vmdk
	refused $name "$D/$name/pa.vmdk" dir.vmdk 'not a regular file|directory'
fi

name='d-too-many-extents'
if selected $name; then
	{
		printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
		yes 'RW 1 ZERO' | head -n 65537
	} >$name.vmdk
	refused $name "$D/$name.vmdk" $name.vmdk 'more than|too many|extents'
fi
name='d-too-many-ddb'
if selected $name; then
	{
		printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\nRW 8192 FLAT "good-flat.img" 0\n'
		seq 1 5000 | sed 's/.*/ddb.k& = "v"/'
	} >$name.vmdk
	refused $name "$D/$name.vmdk" $name.vmdk 'more than|too many|ddb'
fi
name='k-no-embedded-descriptor'
if selected $name; then
	cp ms.vmdk $name.vmdk
	poke $name.vmdk 36 Q 0
	refused $name "$D/$name.vmdk" $name.vmdk 'descriptor'
fi

# Several disks on one mount: one damaged disk fails the whole mount.
name='m-two-disks-one-damaged'
if selected $name; then
	begin $name
	cp ms.vmdk m-bad.vmdk
	poke m-bad.vmdk 4 I 4
	mkdir -p "$WORK/mp"
	rc=0
	timeout 20 "$VMDKFS" -o tmpDirectory="$WORK/log" "$D/ms.vmdk" "$D/m-bad.vmdk" \
		"$WORK/mp" >"$WORK/out" 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		mountpoint -q "$WORK/mp" && fusermount3 -u "$WORK/mp"
	fi
	check_refusal "vmdkfs (mount) ms.vmdk m-bad.vmdk" "$rc" "$WORK/out" \
		m-bad.vmdk 'version 4'
	finish
fi

# ---- Summary ------------------------------------------------------------------------------

cd /
sleep 0.2	# let unmounted daemons write their leak reports
CASE="(after all cases: late sanitizer reports)" CASE_OK=1
san_check
if [ "$CASE_OK" = 0 ]; then
	nfail=$((nfail + 1))
	FAILED="$FAILED
    $CASE"
fi
echo "$npass passed, $nfail failed"
if [ "$nfail" != 0 ]; then
	echo "failed cases:$FAILED"
	exit 1
fi
exit 0

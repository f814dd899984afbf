#!/bin/bash
# test-part.sh: the partition-table reader (part/, through
# tests/part/part-tool) on tables made by the real tools, against what
# they and independent readers report:
#   - an MBR made by sfdisk: three primaries (one bootable, one of type
#     0xfb) and an extended partition with three logicals: numbers, starts,
#     sizes, types and the boot flag against sfdisk --json (libfdisk);
#     numbers, starts, sizes and PARTUUIDs against partx (libblkid); then
#     the same with primary 2 deleted (numbers kept by slot);
#   - a GPT made by sgdisk with five entries (1 2 3 5 7: a gap), names (one
#     not ASCII), a VMFS entry by sgdisk's code fb00 and one by GUID:
#     numbers, starts, sizes, type and unique GUIDs, names and the disk
#     GUID against sgdisk -p / sgdisk -i N, and against sfdisk --json;
#   - that GPT with the primary header damaged (dd), then its entries: the
#     backup is used (and sgdisk -v agrees the backup is intact), the same
#     partitions; both headers damaged: no table, with a warning;
#   - a hybrid MBR (sgdisk -h): the GPT wins;
#   - a GPT with 4096-byte sectors (fdisk -b 4096) against fdisk -l: found
#     by probing, and not with 512-byte sectors;
#   - a disk without a table;
#   - a wrong expectation: the comparison must catch it.
#
# PART_TOOL: the tool (default tests/part/part-tool).
. "$(dirname "$0")/lib.sh"
set -o pipefail

TOOL=${PART_TOOL:-$TOP/tests/part/part-tool}
[ -x "$TOOL" ] || skip "$TOOL not built (make tests/part/part-tool)"
need sfdisk sgdisk fdisk partx jq dd truncate od diff
cd "$WORK"

# same_lines WHAT EXPECTED ACTUAL: equal, or show the difference and
# return 1.
same_lines() {
	diff -u "$2" "$3" >"$WORK/diff" && return 0
	echo "$1: what part-tool found differs from what is expected:"
	cat "$WORK/diff"
	return 1
}

# tool IMAGE [SECTOR_SIZE]: part-tool's output in IMAGE.out, its warnings
# in IMAGE.err (and fail if it fails).
tool() {
	"$TOOL" "$@" >"$1.out" 2>"$1.err" || fail "part-tool $*: $(cat "$1.err")"
}

# MBR, per sfdisk --json: NUMBER START SIZE TYPE UUID FLAGS NAME (no
# extended containers; UUID from partx).
mbr_expect() {
	local img=$1 sig node start size type boot n u
	sig=$(sfdisk --json "$img" | jq -r '.partitiontable.id')
	sig=$(printf %08x "$sig")
	printf 'scheme mbr sector_size 512 disk_guid - disk_sig %s used_backup 0\n' "$sig"
	sfdisk --json "$img" | jq -r '.partitiontable.partitions[] |
		"\(.node) \(.start) \(.size) \(.type) \(.bootable // false)"' |
		while read -r node start size type boot; do
			case $type in 5 | f | 85) continue ;; esac
			n=${node#"$img"}
			u=$(partx -g -o UUID -n "$n" "$img")
			printf '%s %s %s 0x%02x %s %s \n' "$n" $((start * 512)) \
				$((size * 512)) "0x$type" "$u" \
				"$([ "$boot" = true ] && echo boot || echo -)"
		done
}

# MBR per partx (libblkid): NUMBER START SIZE UUID, no extended containers.
mbr_partx() {
	partx -g -b -o NR,START,SECTORS,TYPE,UUID "$1" |
		awk '$4 != "0x5" && $4 != "0xf" && $4 != "0x85" {
			printf "%s %d %d %s\n", $1, $2 * 512, $3 * 512, $5 }'
}

# GPT per sgdisk -p and -i N; DISK_SIG and USED as given.
gpt_expect_sgdisk() {
	local img=$1 used=$2 g n info type uuid first last name
	g=$(sgdisk -p "$img" | sed -n 's/^Disk identifier (GUID): //p' | tr A-F a-f)
	printf 'scheme gpt sector_size 512 disk_guid %s disk_sig 00000000 used_backup %s\n' "$g" "$used"
	for n in $(sgdisk -p "$img" | awk 'f && $1 ~ /^[0-9]+$/ { print $1 } /^Number/ { f = 1 }'); do
		info=$(sgdisk -i "$n" "$img")
		type=$(sed -n 's/^Partition GUID code: \([^ ]*\).*/\1/p' <<<"$info" | tr A-F a-f)
		uuid=$(sed -n 's/^Partition unique GUID: //p' <<<"$info" | tr A-F a-f)
		first=$(sed -n 's/^First sector: \([0-9]*\) .*/\1/p' <<<"$info")
		last=$(sed -n 's/^Last sector: \([0-9]*\) .*/\1/p' <<<"$info")
		name=$(sed -n "s/^Partition name: '\(.*\)'\$/\1/p" <<<"$info")
		printf '%s %s %s %s %s - %s\n' "$n" $((first * 512)) \
			$(((last - first + 1) * 512)) "$type" "$uuid" "$name"
	done
}

# GPT per sfdisk --json (libfdisk), partition lines only.
gpt_expect_sfdisk() {
	local img=$1
	sfdisk --json "$img" | jq -r '.partitiontable.partitions[] |
		"\(.node) \(.start) \(.size) \(.type) \(.uuid) \(.name // "")"' |
		while read -r node start size type uuid name; do
			printf '%s %s %s %s %s - %s\n' "${node#"$img"}" \
				$((start * 512)) $((size * 512)) \
				"${type,,}" "${uuid,,}" "$name"
		done
}

# The MBR's four type bytes, in hex.
mbr_types() {
	local i
	for i in 0 1 2 3; do
		od -An -tx1 -j $((446 + 16 * i + 4)) -N1 "$1" | tr -d ' '
	done
}

# --- MBR ---
truncate -s 64M mbr.img
sfdisk -q mbr.img <<'EOF' || fail "sfdisk could not write the MBR"
label: dos
label-id: 0x5a17c0de
start=2048, size=8192, type=83, bootable
start=10240, size=16384, type=fb
start=26624, size=65536, type=5
start=100000, size=8192, type=7
start=28672, size=4096, type=83
start=34816, size=8192, type=fb
start=45056, size=4096, type=82
EOF
[ "$(mbr_types mbr.img | tr '\n' ' ')" = "83 fb 05 07 " ] ||
	fail "sfdisk did not put the extended partition in slot 3"
mbr_expect mbr.img >mbr.exp
[ "$(wc -l <mbr.exp)" = 7 ] || fail "sfdisk shows $(($(wc -l <mbr.exp) - 1)) partitions, not 6"
tool mbr.img
same_lines "MBR (sfdisk)" mbr.exp mbr.img.out || fail "MBR against sfdisk --json"
[ ! -s mbr.img.err ] || fail "MBR: warnings: $(cat mbr.img.err)"
mbr_partx mbr.img >mbr.px
awk 'NR > 1 { print $1, $2, $3, $5 }' mbr.img.out >mbr.px.out
same_lines "MBR (partx)" mbr.px mbr.px.out || fail "MBR against partx"
grep -q '^6 .* 0xfb 5a17c0de-06 ' mbr.img.out || fail "MBR: logical 6 is not 0xfb"
echo "ok MBR: 3 primaries + 3 logicals as sfdisk and partx see them"

sfdisk -q --delete mbr.img 2 || fail "sfdisk --delete"
mbr_expect mbr.img >mbr2.exp
tool mbr.img
same_lines "MBR without 2" mbr2.exp mbr.img.out || fail "MBR with slot 2 empty"
grep -q '^2 ' mbr.img.out && fail "MBR: the deleted partition 2 is still there"
awk 'NR > 1 { print $1 }' mbr.img.out | tr '\n' ' ' | grep -qx '1 4 5 6 7 ' ||
	fail "MBR: numbers not kept by slot: $(awk 'NR > 1 { print $1 }' mbr.img.out | tr '\n' ' ')"
echo "ok MBR: an empty slot keeps the numbers"

# --- GPT ---
truncate -s 64M gpt.img
sgdisk -o -U 0c0ffee0-1234-4567-89ab-0123456789ab \
	-n 1:2048:+4M -t 1:ef00 -c 1:"EFI system" \
	-n 2:0:+16M -t 2:fb00 -c 2:"datastore1" \
	-n 3:0:+4M -t 3:8300 -c 3:"Linux root" \
	-n 5:0:+8M -t 5:AA31E02A-400F-11DB-9590-000C2911D1B8 -c 5:"vmfs é日本" \
	-n 7:0:+2M -t 7:0700 -c 7:"data" gpt.img >/dev/null ||
	fail "sgdisk could not write the GPT"
sgdisk -i 2 gpt.img | grep -q '^Partition GUID code: AA31E02A-400F-11DB-9590-000C2911D1B8' ||
	fail "sgdisk's fb00 is not the VMFS type GUID"
gpt_expect_sgdisk gpt.img 0 >gpt.exp
[ "$(wc -l <gpt.exp)" = 6 ] || fail "sgdisk shows $(($(wc -l <gpt.exp) - 1)) partitions, not 5"
tool gpt.img
same_lines "GPT (sgdisk)" gpt.exp gpt.img.out || fail "GPT against sgdisk"
[ ! -s gpt.img.err ] || fail "GPT: warnings: $(cat gpt.img.err)"
gpt_expect_sfdisk gpt.img >gpt.sf
tail -n +2 gpt.img.out >gpt.sf.out
same_lines "GPT (sfdisk)" gpt.sf gpt.sf.out || fail "GPT against sfdisk --json"
[ "$(grep -c ' aa31e02a-400f-11db-9590-000c2911d1b8 ' gpt.img.out)" = 2 ] ||
	fail "GPT: not two VMFS entries"
grep -q '^5 .* vmfs é日本$' gpt.img.out || fail "GPT: the UTF-16 name of 5"
echo "ok GPT: 5 entries (a gap, names, VMFS) as sgdisk and sfdisk see them"

# Hybrid MBR: 0xEE and MBR entries for 1 and 2; the GPT wins.
cp gpt.img hybrid.img
sgdisk -h 1:2 hybrid.img >/dev/null || fail "sgdisk -h"
types=$(mbr_types hybrid.img | tr '\n' ' ')
case $types in *ee*) ;; *) fail "no 0xEE in the hybrid MBR: $types" ;; esac
[ "$(mbr_types hybrid.img | grep -cv '^00$')" -ge 2 ] || fail "the MBR is not hybrid: $types"
tool hybrid.img
same_lines "hybrid MBR" gpt.exp hybrid.img.out || fail "hybrid MBR: not the GPT"
echo "ok hybrid MBR ($types): the GPT"

# The primary header damaged (a reserved byte under its CRC).
cp gpt.img bad1.img
printf '\x01' | dd of=bad1.img bs=1 seek=$((512 + 20)) conv=notrunc status=none
sgdisk -v bad1.img >bad1.v 2>&1 || true
grep -q '^Main header: ERROR' bad1.v && grep -q '^Backup header: OK' bad1.v &&
	grep -q '^Backup partition table: OK' bad1.v ||
	fail "sgdisk -v does not see the damage as expected: $(cat bad1.v)"
tool bad1.img
sed '1s/used_backup 0/used_backup 1/' gpt.exp >bad1.exp
same_lines "damaged primary header" bad1.exp bad1.img.out || fail "damaged primary header"
gpt_expect_sgdisk bad1.img 1 >bad1.sg 2>/dev/null
same_lines "damaged primary header (sgdisk on it)" bad1.sg bad1.img.out ||
	fail "damaged primary header against sgdisk reading it"
grep -q 'using the backup at LBA 131071' bad1.img.err || fail "no warning: $(cat bad1.img.err)"
echo "ok GPT, primary header damaged: the backup (as sgdisk -v)"

# The primary entries damaged.
cp gpt.img bad2.img
printf 'X' | dd of=bad2.img bs=1 seek=$((1024 + 128 + 60)) conv=notrunc status=none
sgdisk -v bad2.img >bad2.v 2>&1 || true
grep -q '^Main partition table: ERROR' bad2.v && grep -q '^Backup partition table: OK' bad2.v ||
	fail "sgdisk -v does not see the damaged entries: $(cat bad2.v)"
tool bad2.img
same_lines "damaged primary entries" bad1.exp bad2.img.out || fail "damaged primary entries"
grep -q "entries' CRC does not match" bad2.img.err || fail "no warning: $(cat bad2.img.err)"
echo "ok GPT, primary entries damaged: the backup"

# Both headers damaged: no table, a warning.
printf '\x01' | dd of=bad2.img bs=1 seek=$((64 * 1048576 - 512 + 20)) conv=notrunc status=none
printf '\x01' | dd of=bad2.img bs=1 seek=$((512 + 20)) conv=notrunc status=none
tool bad2.img
echo "scheme none sector_size 512 disk_guid - disk_sig 00000000 used_backup 0" >none.exp
same_lines "both GPT headers damaged" none.exp bad2.img.out || fail "both headers damaged"
grep -q 'protective MBR (type 0xee) but no valid GPT' bad2.img.err ||
	fail "no warning: $(cat bad2.img.err)"
echo "ok GPT, both damaged: no table, a warning"

# --- 4096-byte sectors (fdisk -b 4096 on a file) ---
truncate -s 64M gpt4k.img
printf 'g\nn\n1\n256\n+1023\nt\nAA31E02A-400F-11DB-9590-000C2911D1B8\nn\n3\n\n+8M\nx\nn\n3\nlinux data\nr\nw\n' |
	fdisk -b 4096 gpt4k.img >gpt4k.fdisk 2>&1 || fail "fdisk -b 4096: $(cat gpt4k.fdisk)"
fdisk -b 4096 -l -o Device,Start,Sectors,Type-UUID,UUID,Name gpt4k.img >gpt4k.l ||
	fail "fdisk -l"
{
	printf 'scheme gpt sector_size 4096 disk_guid %s disk_sig 00000000 used_backup 0\n' \
		"$(sed -n 's/^Disk identifier: //p' gpt4k.l | tr A-F a-f)"
	awk '$1 ~ /^gpt4k.img[0-9]/ {
		n = substr($1, 10); name = ""
		for (i = 6; i <= NF; i++) name = name (i > 6 ? " " : "") $i
		printf "%s %d %d %s %s - %s\n", n, $2 * 4096, $3 * 4096,
			tolower($4), tolower($5), name }' gpt4k.l
} >gpt4k.exp
[ "$(wc -l <gpt4k.exp)" = 3 ] || fail "fdisk shows $(($(wc -l <gpt4k.exp) - 1)) partitions, not 2"
tool gpt4k.img
same_lines "4096-byte sectors" gpt4k.exp gpt4k.img.out || fail "GPT with 4096-byte sectors"
tool gpt4k.img 4096
same_lines "4096-byte sectors given" gpt4k.exp gpt4k.img.out || fail "GPT, 4096 given"
tool gpt4k.img 512
grep -q '^scheme none ' gpt4k.img.out || fail "a 4Kn GPT read with 512-byte sectors"
echo "ok GPT with 4096-byte sectors as fdisk -b 4096 sees it"

# --- no table ---
truncate -s 8M empty.img
tool empty.img
same_lines "no table" none.exp empty.img.out || fail "a disk without a table"
[ ! -s empty.img.err ] || fail "no table: warnings: $(cat empty.img.err)"
echo "ok no table"

# The comparison can fail: a start one sector off, a changed name.
tool gpt.img
sed '3s/^2 5242880 /2 5243392 /' gpt.exp >wrong.exp
cmp -s wrong.exp gpt.exp && fail "the wrong expectation is not wrong"
same_lines "wrong" wrong.exp gpt.img.out >/dev/null && fail "a wrong start is not caught"
sed 's/datastore1/datastore2/' gpt.exp >wrong.exp
same_lines "wrong" wrong.exp gpt.img.out >/dev/null && fail "a wrong name is not caught"
echo "ok the comparison catches a wrong start and name"
exit 0

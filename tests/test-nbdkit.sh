#!/bin/bash
# The nbdkit front end (nbdkit/vmdkfs.c, nbdkit-vmdkfs-plugin.so) under
# Debian's nbdkit, read by Debian's qemu-img, nbdcopy and nbdinfo:
#   - local VMDKs (monolithicSparse, streamOptimized, a delta over its
#     parent): qemu-img convert and nbdcopy from the plugin equal
#     qemu-img convert of the file itself, and nbdinfo --map's data and
#     holes are qemu-img map's;
#   - single-link=true: a delta's own grains only;
#   - nbdkit-vddk-plugin's parameters: a literal password, compression=
#     and an unknown key refused with a message, libdir= accepted and
#     ignored;
#   - a VM's snapshot disk through the lab over nbd and nbdssl (by moref
#     and file= as virt-v2v gives them, the current disk's path with
#     snapshot=), compared with qemu-img convert of its chain in the
#     datastore folder; four connections at once (multi-conn), over one
#     NFC link and over up to four (nfc_links=4);
#   - lun=: a disk on a VMFS volume; changed_since=: an increment;
#   - snapshot=new: the temporary snapshot and the disabled method held
#     while nbdkit serves, gone after SIGTERM (the plugin unloads); after
#     kill -9, vmdkfs cleanup leaves nothing;
#   - a write through nbdcopy into a powered-off VM's disk (rw=true), read
#     back through a new nbdkit and compared.
# Peers: Debian's nbdkit, qemu-img, nbdcopy, nbdinfo; the lab (tests/lab,
# SIMULATED: govmomi's vcsim and the lab's NFC server after recorded VDDK
# traffic).
. "$(dirname "$0")/lib.sh"
need nbdkit nbdcopy nbdinfo qemu-img qemu-io
[ -f "$PLUGIN" ] || fail "$PLUGIN not built (make)"
cd "$WORK"

# map_data FILE.json KIND: the merged data ranges "start end" of a
# qemu-img map (KIND qemu) or nbdinfo --map --json (KIND nbd).
map_data() {
	/usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
runs = []
for e in m:
    if sys.argv[2] == "qemu":
        start, length, data = e["start"], e["length"], e["data"]
    else:
        start, length = e["offset"], e["length"]
        data = not (e["type"] & 1)  # not a hole
    if runs and runs[-1][2] == data and runs[-1][1] == start:
        runs[-1][1] = start + length
    else:
        runs.append([start, start + length, data])
for s, e, d in runs:
    if d:
        print(s, e)
PY
}

# check_local NAME VMDK: every way of reading it through the plugin.
check_local() {
	local name=$1 vmdk=$2
	qemu-img convert -f vmdk -O raw "$vmdk" "$name.want"
	nbdkit_start "$name" -r file="$WORK/$vmdk"
	qemu-img convert -f raw -O raw "$NBD_URI" "$name.qemu" || fail "$name: qemu-img convert from the plugin"
	same "$name.qemu" "$name.want" "$name: qemu-img convert from nbdkit"
	nbdcopy "$NBD_URI" "$name.copy" || fail "$name: nbdcopy"
	same "$name.copy" "$name.want" "$name: nbdcopy from nbdkit"
	nbdinfo --map --json "$NBD_URI" >"$name.nbdmap" || fail "$name: nbdinfo --map"
	qemu-img map --output=json -f vmdk "$vmdk" >"$name.qmap"
	map_data "$name.nbdmap" nbd >"$name.nbd.data"
	map_data "$name.qmap" qemu >"$name.qemu.data"
	diff "$name.qemu.data" "$name.nbd.data" >/dev/null ||
		fail "$name: nbdinfo --map's data differs from qemu-img map's: $(diff "$name.qemu.data" "$name.nbd.data" | head -5)"
	[ -s "$name.nbd.data" ] || fail "$name: no data at all in the map"
	nbdinfo "$NBD_URI" >"$name.info"
	grep -q "can_multi_conn: true" "$name.info" || fail "$name: not multi-conn"
	grep -q "is_read_only: true" "$name.info" || fail "$name: -r but writable"
	nbdkit_stop
	echo "ok $name: qemu-img convert, nbdcopy and nbdinfo --map through the plugin equal qemu-img's ($(wc -l <"$name.nbd.data") data runs)"
}

qemu-img create -q -f vmdk -o subformat=monolithicSparse sparse.vmdk 64M
qemu-io -f vmdk -c 'write -P 7 1M 2M' -c 'write -P 9 40M 64k' -c 'write -z 50M 1M' sparse.vmdk >/dev/null
check_local sparse sparse.vmdk
random_raw r.raw 8
dd if=/dev/zero of=r.raw bs=1M seek=3 count=2 conv=notrunc status=none
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized r.raw stream.vmdk
check_local stream stream.vmdk
qemu-img create -q -f vmdk -o subformat=monolithicSparse base.vmdk 32M
qemu-io -f vmdk -c 'write -P 1 0 8M' base.vmdk >/dev/null
qemu-img create -q -f vmdk -b base.vmdk -F vmdk child.vmdk
qemu-io -f vmdk -c 'write -P 2 4M 64k' -c 'write -P 3 20M 1M' child.vmdk >/dev/null
check_local chain child.vmdk
# single-link=true: the delta alone, as VDDK's single-link open gives it:
# its own grains, zeros elsewhere (the parent not opened), and those
# holes not said to be zeros.
/usr/bin/python3 -c "
import sys
b = bytearray(32 << 20)
b[4 << 20:(4 << 20) + 65536] = b'\x02' * 65536
b[20 << 20:21 << 20] = b'\x03' * (1 << 20)
open('single.want', 'wb').write(b)"
nbdkit_start single -r file="$WORK/child.vmdk" single-link=true
nbdcopy "$NBD_URI" single.raw || fail "single-link: nbdcopy"
same single.raw single.want "single-link=true: the delta's own grains, zeros elsewhere"
nbdinfo --map "$NBD_URI" >single.map
grep -q "hole,zero" single.map && fail "single-link: a hole said to be zeros: $(cat single.map)"
[ "$(grep -c "data" single.map)" = 2 ] || fail "single-link: the map: $(cat single.map)"
nbdkit_stop
echo "ok single-link=true: the delta's own grains only, its holes not zero"

# lun=: a disk on a VMFS volume (an image made by tests/gen/mkvmfs.py,
# itself checked against vmfs-tools), read by vmdkfs's VMFS reader.
mkdir -p volfolder
qemu-img convert -q -f vmdk -O vmdk -o subformat=monolithicFlat sparse.vmdk volfolder/d.vmdk
/usr/bin/python3 "$TESTS/gen/mkvmfs.py" make vol6.img --version 6 --size 256M --from volfolder >/dev/null ||
	fail "mkvmfs.py make"
nbdkit_start lun -r lun="$WORK/vol6.img" file=/d.vmdk
nbdcopy "$NBD_URI" lun.raw || fail "lun=: nbdcopy"
same lun.raw sparse.want "lun=: a flat disk on a VMFS6 volume"
nbdkit_stop
echo "ok lun=: a disk on a VMFS6 volume served as qemu-img reads its source"

# --- The man page: every parameter of --help has its entry ---
page=$TOP/nbdkit/nbdkit-vmdkfs-plugin.1
LC_ALL=C groff -man -Tascii -ww -z "$page" 2>groff.err
[ ! -s groff.err ] || fail "groff warns about $page: $(cat groff.err)"
LC_ALL=C groff -man -Tascii "$page" 2>/dev/null | col -b >page.txt
nbdkit_run "$PLUGIN" --help 2>&1 | sed -n '/^file=/,$p' | grep '^[a-z]' |
	grep -oE '(^| )[a-z][a-z_-]*=' | tr -d ' ' | sort -u >help.keys
[ "$(wc -l <help.keys)" -ge 12 ] || fail "--help lists $(wc -l <help.keys) parameters: $(cat help.keys)"
while read -r k; do
	grep -qF -- "$k" page.txt || fail "$k is in nbdkit vmdkfs --help but not in $page"
done <help.keys
echo "ok the man page: groff has nothing to say, and each of the $(wc -l <help.keys) parameters of --help is in it"

# --- vddk's parameters ---
refused() { # WHAT TEXT ARGS...
	local what=$1 text=$2
	shift 2
	if nbdkit_run -f -U "$WORK/r.sock" "$PLUGIN" "$@" >refused.log 2>&1; then
		fail "$what: nbdkit started"
	fi
	grep -q "$text" refused.log || fail "$what: the error does not say \"$text\": $(cat refused.log)"
	echo "ok $what: refused ($(grep -m1 -o "$text.*" refused.log | head -c 100))"
}
refused "a literal password" "password=+FILE" file="$WORK/sparse.vmdk" server=h user=u password=secret vm=moref=vm-1
printf 'x\n' >pw644 && chmod 644 pw644
refused "a password file others can read" "chmod 600" file="$WORK/sparse.vmdk" server=h user=u password=+"$WORK/pw644" vm=moref=vm-1
refused "compression=zlib" "compression=zlib: not supported" file="$WORK/sparse.vmdk" compression=zlib
refused "an unknown parameter" "unknown parameter nosuchkey" file="$WORK/sparse.vmdk" nosuchkey=1
refused "server= without vm=" "missing parameter: vm" file="[ds] a.vmdk" server=h user=u
refused "no file=" "give file=" vm=x
nbdkit_start libdir -r file="$WORK/sparse.vmdk" libdir=/opt/vmware-vix-disklib-distrib compression=none
qemu-img convert -f raw -O raw "$NBD_URI" libdir.raw
same libdir.raw sparse.want "libdir= and compression=none"
nbdkit_stop
echo "ok libdir= accepted and ignored, compression=none accepted"

# --- A VM's snapshot disk through the lab ---
lab_nfc_setup
py() { /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin); $1"; }
vm_state() { lab_ctl state | py "v=[v for v in s['vms'] if v['name']=='$LAB_VM'][0]; $1"; }
lab_login >/dev/null
lab_vm_task CreateSnapshot_Task "$LAB_VM_MOREF" "<name>s1</name><memory>false</memory><quiesce>false</quiesce>"
lab_ctl "write?vm=$LAB_VM&disk=0&offset=1048576&length=2097152&pattern=0x6b" >/dev/null || fail "guest write"
snap=$(vm_state "print([x['moref'] for x in v['snapshots'] if x['name']=='s1'][0])")
# The snapshot's chain, and the current disk's path (what virt-v2v gives
# with snapshot=: the VM's disk as its configuration names it).
chain=$(vm_state "print([x for x in v['snapshots'] if x['name']=='s1'][0]['disks'][0]['local_chain'][0])")
qemu-img convert -U -f vmdk -O raw "$chain" s1.want
cur=$(vm_state "print(v['disks'][0]['file'])")
lab=(server="$LAB_HOST" port="$LAB_PORT" user="$LAB_USER" password=+"$WORK/pw"
	thumbprint="$LAB_THUMBPRINT_SHA1" nfchostport="$LAB_NFC_PORT"
	vm=moref="$LAB_VM_MOREF" tmpDirectory="$WORK")
for t in nbdssl nbd; do
	nbdkit_start "$t" -r "${lab[@]}" snapshot="$snap" file="$cur" transports=$t
	qemu-img convert -f raw -O raw "$NBD_URI" "$t.raw" || fail "$t: qemu-img convert"
	same "$t.raw" s1.want "$t: the snapshot's disk through nbdkit"
	nbdcopy --connections=4 "$NBD_URI" "$t.copy" || fail "$t: nbdcopy"
	same "$t.copy" s1.want "$t: nbdcopy, 4 connections"
	nbdinfo "$NBD_URI" | grep -q "can_multi_conn: true" || fail "$t: not multi-conn"
	# The holes over the LAN: changed block tracking's "*" (cbt=on, the
	# default): VMware's areas in use, inside qemu-img map's data of the
	# chain (whose flat base is data throughout), and zeros outside them
	# in qemu-img's reading of the chain.
	nbdinfo --map --json "$NBD_URI" >"$t.nbdmap"
	qemu-img map -U --output=json -f vmdk "$chain" >"$t.qmap"
	map_data "$t.nbdmap" nbd >"$t.nbd.data"
	map_data "$t.qmap" qemu >"$t.qemu.data"
	/usr/bin/python3 - "$t.nbd.data" "$t.qemu.data" s1.want <<'PY' || fail "$t: the map over the LAN (CBT \"*\") is wrong"
import sys
rd = lambda f: [tuple(map(int, l.split())) for l in open(f) if l.strip()]
nbd, qemu, want = rd(sys.argv[1]), rd(sys.argv[2]), open(sys.argv[3], "rb").read()
assert nbd and sum(b - a for a, b in nbd) < len(want), "no holes at all: %r" % nbd
for a, b in nbd:
    assert any(qa <= a and b <= qb for qa, qb in qemu), "data %d-%d not in qemu-img's data %r" % (a, b, qemu)
pos = 0
for a, b in nbd + [(len(want), len(want))]:
    assert want[pos:a] == bytes(a - pos), "a hole at %d-%d is not zeros in the chain" % (pos, a)
    pos = b
PY
	nbdkit_stop
	[ "$(lab_ctl state | py "print(s['nfc']['stats']['live'])")" = 0 ] || fail "$t: NFC links left open"
	echo "ok $t: snapshot $snap's disk (file= the current disk's path) through nbdkit as qemu-img reads its chain; 4 connections; its map (CBT \"*\", $(wc -l <"$t.nbd.data") data runs) inside qemu-img map's data, zeros elsewhere"
done

# A read the host fails on every try: the client gets EIO, nbdkit's log
# the reason; -D vmdkfs.datapath=1 logs each request (with -v).
nbdkit_exact eio "$WORK/eio.sock" -f -v -U "$WORK/eio.sock" -D vmdkfs.datapath=1 \
	"$PLUGIN" -r "${lab[@]}" snapshot="$snap" file="$cur" transports=nbd
nctl "error=3&text=injected&count=100"
if nbdcopy "$NBD_URI" eio.raw 2>eio.err; then
	fail "a read that fails on every try: nbdcopy succeeded"
fi
nctl "reset=1"
sleep 2 # the failed connection's other requests, failed in turn
nbdkit_stop
grep -qi "Input/output error\|EIO" eio.err || fail "the client did not get EIO: $(cat eio.err)"
grep -q "nbdkit: .*error: read of [0-9]* bytes at [0-9]*: .*injected" "$WORK/eio.nbdkit.log" ||
	fail "nbdkit's log does not give the reason: $(grep error "$WORK/eio.nbdkit.log" | tail -3)"
grep -q "debug: pread [0-9]* bytes at 0" "$WORK/eio.nbdkit.log" || fail "-D vmdkfs.datapath=1: no request lines"
echo "ok a read the host fails: EIO to the client, the reason in nbdkit's log ($(grep -o 'NFC error [0-9]* from the host: injected' "$WORK/eio.nbdkit.log" | head -1)); -D vmdkfs.datapath=1 logs the requests"

# nfc_links=4: nbdcopy's four connections get links of their own (the
# lab counts them), the bytes still the snapshot's.
c0=$(lab_ctl state | py "print(s['nfc']['stats']['connections'])")
nbdkit_start links -r "${lab[@]}" snapshot="$snap" file="$cur" transports=nbdssl nfc_links=4
nbdcopy --connections=4 "$NBD_URI" links.raw || fail "nfc_links=4: nbdcopy"
same links.raw s1.want "nfc_links=4: 4 connections"
nbdkit_stop
c1=$(lab_ctl state | py "print(s['nfc']['stats']['connections'])")
[ $((c1 - c0)) -ge 2 ] && [ $((c1 - c0)) -le 4 ] || fail "nfc_links=4: $((c1 - c0)) NFC connections (want 2 to 4)"
[ "$(lab_ctl state | py "print(s['nfc']['stats']['live'])")" = 0 ] || fail "nfc_links=4: NFC links left open"
echo "ok nfc_links=4: nbdcopy's 4 connections over $((c1 - c0)) NFC links, the snapshot's bytes, every link closed"

# changed_since=ID: snapshot s2's changes since s1 (the guest wrote 2 MiB
# at 1 MiB between them): their bytes where they changed, zeros and holes
# that read as zeros elsewhere, as a mount's DISK.changed.raw.
lab_props VirtualMachineSnapshot "$snap" config.hardware.device >/dev/null
cid=$(grep -o '<changeId>[^<]*</changeId>' "$LAB_RESP" | head -1 | sed 's:</*changeId>::g')
[ -n "$cid" ] || fail "no change id of s1's first disk"
lab_vm_task CreateSnapshot_Task "$LAB_VM_MOREF" "<name>s2</name><memory>false</memory><quiesce>false</quiesce>"
snap2=$(vm_state "print([x['moref'] for x in v['snapshots'] if x['name']=='s2'][0])")
chain2=$(vm_state "print([x for x in v['snapshots'] if x['name']=='s2'][0]['disks'][0]['local_chain'][0])")
qemu-img convert -U -f vmdk -O raw "$chain2" s2.want
nbdkit_start inc -r "${lab[@]}" snapshot="$snap2" file="$cur" transports=nbdssl changed_since="$cid"
nbdcopy "$NBD_URI" inc.raw || fail "changed_since: nbdcopy"
nbdinfo --map --json "$NBD_URI" >inc.map
nbdkit_stop
cur=$(vm_state "print(v['disks'][0]['file'])") # the VM's disk since s2
refused "changed_since= an unknown change id" "a full backup is needed" "${lab[@]}" \
	snapshot="$snap2" file="$cur" transports=nbdssl \
	changed_since="52 00 00 00 00 00 00 00-00 00 00 00 00 00 00 00/7"
# nbdkit exits after a failed start with no unload: the plugin undoes
# PrepareForAccess itself.
[ "$(lab_ctl state | py "print(len(s['disabled_methods'] or []))")" = 0 ] ||
	fail "a failed start left RelocateVM_Task disabled"
/usr/bin/python3 - inc.raw s2.want inc.map <<'PY' || fail "changed_since: the increment is wrong"
import json, sys
got, want = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
m = json.load(open(sys.argv[3]))
data = [(e["offset"], e["offset"] + e["length"]) for e in m if not e["type"] & 1]
covered = sum(b - a for a, b in data)
assert len(got) == len(want), "size"
# the guest's write is inside the changed areas, with s2's bytes
w0, w1 = 1 << 20, 3 << 20
assert any(a <= w0 and w1 <= b for a, b in data) or sum(
    min(b, w1) - max(a, w0) for a, b in data if a < w1 and b > w0) == w1 - w0, "the write is not all changed: %r" % data
assert got[w0:w1] == want[w0:w1] == b"\x6b" * (w1 - w0), "the written bytes"
assert covered < len(want) // 2, "not an increment: %d of %d bytes changed" % (covered, len(want))
pos = 0
for a, b in data:
    assert got[pos:a] == bytes(a - pos), "not zeros outside the changed areas at %d" % pos
    assert got[a:b] == want[a:b], "other bytes than s2's in a changed area at %d" % a
    pos = b
assert got[pos:] == bytes(len(got) - pos), "not zeros after the last area"
PY
echo "ok changed_since=ID: s2's changes since s1 only ($(nbdinfo --version >/dev/null; /usr/bin/python3 -c "import json; m=json.load(open('inc.map')); print(sum(e['length'] for e in m if not e['type'] & 1))") bytes of data), zeros elsewhere"

# --- snapshot=new, held for the plugin's life ---
leftovers() { lab_ctl state | py "print(sum(1 for v in s['vms'] for x in v.get('snapshots') or [] if x['name'].startswith('vmdkfs-')), len(s['disabled_methods'] or []))"; }
CLEAN="0 0"
[ "$(leftovers)" = "$CLEAN" ] || fail "leftovers before snapshot=new: $(leftovers)"
nbdkit_start new -r "${lab[@]}" snapshot=new file="$cur" transports=nbdssl
[ "$(leftovers)" = "1 1" ] || fail "snapshot=new: while serving, $(leftovers) (want 1 snapshot, 1 disabled method)"
qemu-img convert -U -f vmdk -O raw "$LAB_DATASTORE_DIR/${cur#*] }" cur.want
qemu-img convert -f raw -O raw "$NBD_URI" new.raw
same new.raw cur.want "snapshot=new: the temporary snapshot's disk"
nbdkit_stop TERM
wait_clean || fail "snapshot=new: after SIGTERM, left: $(leftovers)"
echo "ok snapshot=new: a temporary snapshot and PrepareForAccess for nbdkit's life, undone when it ends"
nbdkit_start new9 -r "${lab[@]}" snapshot=new file="$cur" transports=nbdssl
nbdkit_stop KILL
[ "$(leftovers)" = "1 1" ] || fail "after kill -9: $(leftovers)"
VMDKFS_PASSWORD=$LAB_PASSWORD "$VMDKFS" cleanup -o "server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,thumbprint=$LAB_THUMBPRINT_SHA256" >cleanup.out ||
	fail "vmdkfs cleanup: $(cat cleanup.out)"
[ "$(leftovers)" = "$CLEAN" ] || fail "after vmdkfs cleanup: $(leftovers)"
echo "ok kill -9 of nbdkit: vmdkfs cleanup leaves nothing ($(tail -1 cleanup.out))"

# --- A write into a powered-off VM's disk ---
vm1=$(echo "$LAB_VMS" | cut -d' ' -f2)
vm1_moref=$(lab_ctl state | py "print([v['moref'] for v in s['vms'] if v['name']=='$vm1'][0])")
lab_vm_task PowerOffVM_Task "$vm1_moref"
file1=$(lab_ctl state | py "print([v for v in s['vms'] if v['name']=='$vm1'][0]['disks'][0]['file'])")
w=("${lab[@]/vm=moref=$LAB_VM_MOREF/vm=moref=$vm1_moref}")
nbdkit_start rw "${w[@]}" rw=true file="$file1" transports=nbd
nbdinfo "$NBD_URI" | grep -q "is_read_only: false" || fail "rw=true: read-only"
size=$(nbdinfo --size "$NBD_URI")
head -c "$size" /dev/urandom >restore.raw
nbdcopy restore.raw "$NBD_URI" || fail "nbdcopy into the VM's disk"
nbdkit_stop
nbdkit_start rb -r "${w[@]}" file="$file1" transports=nbdssl
nbdcopy "$NBD_URI" back.raw
same back.raw restore.raw "the VM's disk read back after nbdcopy wrote it"
nbdkit_stop
qemu-img convert -U -f vmdk -O raw "$LAB_DATASTORE_DIR/${file1#*] }" folder.raw
same folder.raw restore.raw "the datastore folder's disk after nbdcopy wrote it (qemu-img)"
echo "ok a write through nbdcopy into $vm1's disk (rw=true), read back through nbdkit and by qemu-img"
# Without rw=true the export is read-only, whatever nbdkit is told.
nbdkit_start ro "${w[@]}" file="$file1" transports=nbd
nbdinfo "$NBD_URI" | grep -q "is_read_only: true" || fail "no rw=true, yet writable"
nbdkit_stop
echo "ok without rw=true the export is read-only"

# --- The command lines of the tools that use nbdkit-vddk-plugin, with
# the plugin's name changed to this plugin (its path) and nothing else ---
# (Under make check SANITIZE=..., no leak check for these: nbdkit's
# filters leak on their own, and the plugin is checked in the runs above.)
NOLEAK="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
cfgfile=$WORK/vddk-config-file # CDI's /vddk-args/vddk-config-file
printf 'VixDiskLib.nfcAio.Session.BufSizeIn64KB=16\n' >"$cfgfile" # CDI's example ConfigMap
# CDI's vddk importer: kubevirt/containerized-data-importer c07cdb6f,
# pkg/image/nbdkit.go NewNbdkitVddk and StartNbdkit (the password on a
# pipe as fd 3; snapshot= with transports=file:nbdssl:nbd), after its
# pre-flight nbdkit --dump-plugin (validatePlugin).
nbdkit_run --dump-plugin "$PLUGIN" libdir=/opt/vmware-vix-disklib-distrib >dump.out 2>&1 ||
	fail "CDI's pre-flight: nbdkit --dump-plugin: $(cat dump.out)"
grep -q "^vmdkfs_transports=" dump.out || fail "--dump-plugin: $(cat dump.out)"
ASAN_OPTIONS=$NOLEAK nbdkit_exact cdi "$WORK/nbd.sock" --foreground --readonly --exit-with-parent \
	-U "$WORK/nbd.sock" --pidfile "$WORK/nbd.pid" \
	--filter=retry --filter=cacheextents "$PLUGIN" \
	libdir=/opt/vmware-vix-disklib-distrib server="$LAB_HOST:$LAB_PORT" \
	user="$LAB_USER" password=-3 thumbprint="$LAB_THUMBPRINT_SHA1" \
	vm=moref="$LAB_VM_MOREF" snapshot="$snap" transports=file:nbdssl:nbd \
	--verbose -D nbdkit.backend.datapath=0 -D vddk.datapath=0 -D vddk.stats=1 \
	config="$cfgfile" file="$cur" 3< <(printf %s "$LAB_PASSWORD")
# (the lab's authd port is not 902: the InitEx file cannot say it, so the
# lab's ticket gives it)
qemu-img convert -f raw -O raw "$NBD_URI" cdi.raw || fail "CDI: qemu-img convert"
same cdi.raw s1.want "CDI's command line: the snapshot's disk"
nbdkit_stop INT # CDI's KillNbdkit
echo "ok CDI's vddk importer command line (pkg/image/nbdkit.go), the plugin swapped: the snapshot's disk as qemu-img reads its chain"

# virt-v2v -it vddk, one nbdkit per disk with file=: libguestfs/virt-v2v
# 9b786f36 (the parent of 48c4ce8e), input/nbdkit_vddk.ml
# create_nbdkit_vddk and lib/nbdkit.ml run_unix.
cowbs=""
nbdkit null --filter=cow --help 2>/dev/null | grep -q cow-block-size && cowbs=cow-block-size=4096
# shellcheck disable=SC2086
ASAN_OPTIONS=$NOLEAK nbdkit_exact v2v1 "$WORK/in0" --exit-with-parent --foreground \
	--pidfile "$WORK/nbdkit1.pid" --unix "$WORK/in0" --threads 16 \
	-D nbdkit.backend.datapath=0 -D vddk.stats=1 -D vddk.datapath=0 \
	--filter multi-conn --filter cow --filter blocksize --filter cacheextents \
	--filter retry "$PLUGIN" server="$LAB_HOST" vm=moref="$LAB_VM_MOREF" \
	file="$cur" user="$LAB_USER" nfchostport="$LAB_NFC_PORT" port="$LAB_PORT" \
	snapshot="$snap" thumbprint="$LAB_THUMBPRINT_SHA1" transports=nbdssl \
	minblock=512 maxdata=2M multi-conn-mode=disable $cowbs password=+"$WORK/pw"
nbdcopy "$NBD_URI" v2v1.raw || fail "virt-v2v (file=): nbdcopy"
same v2v1.raw s1.want "virt-v2v's command line (file=)"
nbdkit_stop
echo "ok virt-v2v's -it vddk command line, one nbdkit per disk (input/nbdkit_vddk.ml), the plugin swapped"

# virt-v2v today: one nbdkit for every disk, each chosen by its export
# name: libguestfs/virt-v2v 71376bdb, input/input_vddk.ml
# create_nbdkit_vddk and get_vddk_export_wildcard (the disks' common
# prefix, escaped, then *.vmdk).
files=$(vm_state "print('\n'.join(d['file'] for d in v['disks']))")
[ "$(echo "$files" | wc -l)" -ge 2 ] || fail "the lab's VM has fewer than 2 disks"
wild=$(/usr/bin/python3 -c "
import os, sys
files = sys.argv[1].split('\n')
p = os.path.commonprefix(files)
print(''.join('\\\\' + c if c in '[]?*' else c for c in p) + '*.vmdk')" "$files")
uri_of() { /usr/bin/python3 -c "import sys, urllib.parse; print('nbd+unix:///' + urllib.parse.quote(sys.argv[1], safe='') + '?socket=$WORK/in0')" "$1"; }
first=$(echo "$files" | head -1)
# shellcheck disable=SC2086
ASAN_OPTIONS=$NOLEAK NBD_PROBE=$(uri_of "$first") nbdkit_exact v2v "$WORK/in0" --exit-with-parent \
	--foreground --pidfile "$WORK/nbdkit2.pid" --unix "$WORK/in0" --threads 16 \
	-D nbdkit.backend.datapath=0 -D vddk.stats=1 -D vddk.datapath=0 \
	--filter multi-conn --filter cow --filter blocksize --filter retry \
	"$PLUGIN" server="$LAB_HOST" vm=moref="$LAB_VM_MOREF" user="$LAB_USER" \
	password=+"$WORK/pw" nfchostport="$LAB_NFC_PORT" port="$LAB_PORT" \
	snapshot="$snap" thumbprint="$LAB_THUMBPRINT_SHA1" transports=nbdssl \
	minblock=512 maxdata=2M multi-conn-mode=disable $cowbs export="$wild"
k=0
while read -r f; do
	chain_k=$(vm_state "print([x for x in v['snapshots'] if x['name']=='s1'][0]['disks'][$k]['local_chain'][0])")
	qemu-img convert -U -f vmdk -O raw "$chain_k" "want$k.raw"
	nbdcopy "$(uri_of "$f")" "v2v$k.raw" || fail "virt-v2v (export=): nbdcopy of $f"
	same "v2v$k.raw" "want$k.raw" "virt-v2v's command line (export=), disk $f"
	k=$((k + 1))
done <<<"$files"
if nbdinfo --size "$(uri_of "[LocalDS_0] other/other.vmdk")" >other.out 2>&1; then
	fail "export=: a name outside the wildcard was served"
fi
# The list: every disk by its name, with its label and size.
nbdinfo --list --json "nbd+unix:///?socket=$WORK/in0" >list.json || fail "export=: nbdinfo --list"
listed=$(/usr/bin/python3 -c "
import json, sys
for e in json.load(open(sys.argv[1]))['exports']:
    print(e['export-name'] + '|' + e.get('description', ''))" list.json)
[ "$(echo "$listed" | cut -d'|' -f1)" = "$files" ] || fail "export=: nbdinfo --list gives $(echo "$listed" | tr '\n' ';'), not the disks $(echo "$files" | tr '\n' ';')"
echo "$listed" | head -1 | grep -q "|Hard disk 1, $((LAB_DISK_MIB << 20)) bytes$" || fail "export=: description $(echo "$listed" | head -1)"
nbdkit_stop
grep -q 'access denied: client requested "\[LocalDS_0\] other/other.vmdk"' "$WORK/v2v.nbdkit.log" ||
	fail "export=: no access denied for another name: $(tail -3 "$WORK/v2v.nbdkit.log")"
echo "ok virt-v2v's -it vddk command line today (input/input_vddk.ml, export=$wild), the plugin swapped: $k disks by export name, listed by nbdinfo --list; another name refused"

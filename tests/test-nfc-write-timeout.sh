#!/bin/bash
# WriteTimeoutMs and nfcFssrvrWrite.TimeoutMs over nbd and nbdssl, against
# the lab's NFC server (tests/lab/nfc*.go: SIMULATED from
# ../shared/notes/nfc-protocol.md) with its stall_writes knob: the host
# reads a write request's header, then stops reading its socket.
#
# The write timeout is the socket's send timeout, so it can only fire once
# the client's send blocks: when the host's receive buffer and the
# client's send buffer are full.  Loopback's default buffers (up to 4 and
# 6 MiB) swallow a whole 1 MiB write, so this test runs in a network
# namespace of its own whose TCP buffers are capped at 64 KiB
# (net.ipv4.tcp_wmem and tcp_rmem are per namespace): real kernel TCP,
# only smaller.
if [ -z "${VMDKFS_NETNS:-}" ]; then
	command -v unshare >/dev/null 2>&1 || { echo "SKIP: unshare is not installed"; exit 77; }
	command -v ip >/dev/null 2>&1 || { echo "SKIP: ip is not installed (Debian package iproute2)"; exit 77; }
	if ! unshare -n true 2>/dev/null; then
		echo "SKIP: cannot make a network namespace here (needs root)"
		exit 77
	fi
	exec unshare -n -- env VMDKFS_NETNS=1 bash -c '
		ip link set lo up &&
		echo "4096 16384 65536" >/proc/sys/net/ipv4/tcp_wmem &&
		echo "4096 16384 65536" >/proc/sys/net/ipv4/tcp_rmem &&
		exec bash "$0"' "$0"
fi
. "$(dirname "$0")/lib.sh"
need qemu-img curl getfattr
lab_nfc_setup
opts=$NFC_OPTS

# Writes need the powered-off VM's current disk.
lab_login >/dev/null
lab_soap "<PowerOffVM_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$LAB_VM_MOREF</_this></PowerOffVM_Task>"
task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
[ "$(lab_task_wait "$task")" = success ] || fail "PowerOffVM_Task"

mkdir -p logs
STALL_MS=8000
# stalled_write MODE EXTRA_OPTS SEEK_MIB: one 1 MiB O_DIRECT write at
# SEEK_MIB whose first attempt the host stops reading for STALL_MS, then
# drops.  Sets $took (ms) and $rc (dd's exit status).  Leaves the mount
# at m, the data in data.bin.
stalled_write() {
	rm -f logs/*.log
	mount_vmdkfs m -o "$opts,rw,transports=$1,tmpDirectory=$WORK/logs$2"
	f=m/current/Hard_disk_1.raw
	head -c 1048576 /dev/urandom >data.bin
	local stalls0 t0 t1
	stalls0=$(nstat stalls)
	nctl "stall_writes=1&stall_ms=$STALL_MS"
	t0=$(date +%s%N)
	rc=0
	dd if=data.bin of="$f" bs=1M seek="$3" oflag=direct conv=notrunc status=none 2>err || rc=$?
	t1=$(date +%s%N)
	took=$(((t1 - t0) / 1000000))
	nctl reset=1
	[ "$(nstat stalls)" -gt "$stalls0" ] || fail "$1$2: the lab never stalled the write"
}
# written_back SEEK_MIB: data.bin reads back through the mount and, after
# unmounting, from the host's disk.
written_back() {
	cmp -s <(dd if="$f" bs=1M skip="$1" count=1 iflag=direct status=none) data.bin ||
		fail "the write does not read back"
	local cur
	cur=$(local_of "$f")
	umount_vmdkfs m
	sleep 0.5
	qemu-img convert -f vmdk -O raw "$cur" host.raw
	cmp -s <(dd if=host.raw bs=1M skip="$1" count=1 status=none) data.bin ||
		fail "the host's disk does not hold the written bytes"
}
# timed_out KEY MS: the write failed with EIO once the timeout fired, well
# before the host would have dropped the link, and the log says which
# timeout.  The stalled session still holds the disk's lock on the host,
# so the retries are refused ("Failed to lock the file") until it ends;
# vmdkfs pauses before each (3 s in all), then gives up; then the same
# mount writes again.
timed_out() {
	[ "$rc" != 0 ] || fail "$1: the write succeeded over a stalled link"
	grep -q "Input/output error" err || fail "$1: $(cat err)"
	grep -q "the host took nothing within the write timeout ($1=$2)" logs/vmdkfs-*.log ||
		fail "no $1 message in the log: $(cat logs/vmdkfs-*.log)"
	grep -q "the disk is locked; trying again" logs/vmdkfs-*.log ||
		fail "$1: no pause for the host's lock in the log: $(grep -h NFC logs/vmdkfs-*.log | tail -5)"
	[ "$took" -ge $(($2 + 3000)) ] && [ "$took" -lt $((STALL_MS - 1000)) ] ||
		fail "$1=$2: the write failed after $took ms"
	sleep $((STALL_MS / 1000 + 1))
	dd if=data.bin of="$f" bs=1M seek="$3" oflag=direct conv=notrunc status=none ||
		fail "$1: no write once the host recovered"
	written_back "$3"
	echo "ok $1 over $4: EIO after $took ms, then writes again"
}

stalled_write nbd ",vixDiskLib.nfc.WriteTimeoutMs=1000,vixDiskLib.nfc.LogLevel=2" 3
timed_out vixDiskLib.nfc.WriteTimeoutMs 1000 3 nbd

# nfcFssrvrWrite.TimeoutMs is the write timeout of a read-write open; it
# wins over WriteTimeoutMs (here none).  Under TLS (nbdssl) too.
stalled_write nbdssl ",vixDiskLib.nfcFssrvrWrite.TimeoutMs=1500,vixDiskLib.nfc.LogLevel=2" 5
timed_out vixDiskLib.nfcFssrvrWrite.TimeoutMs 1500 5 nbdssl

# Without a write timeout (0: none; the default is 600 s) the same stall
# lasts until the host drops the link; then the write goes again on a new
# link and succeeds.
stalled_write nbd ",vixDiskLib.nfc.WriteTimeoutMs=0" 7
[ "$rc" = 0 ] || fail "no write timeout: the write failed: $(cat err)"
! grep -q "within the write timeout" logs/vmdkfs-*.log || fail "a write timeout fired with none set"
[ "$took" -ge "$STALL_MS" ] || fail "with no write timeout the stalled write took only $took ms"
written_back 7
echo "ok no write timeout: the write waited for the host ($took ms), then went again"

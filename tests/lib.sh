# Shared helpers for the shell tests.  Source it: . "$(dirname "$0")/lib.sh"
# Exit codes: 0 pass, 1 fail, 77 skipped (print why first).
set -eu

TESTS=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$TESTS/.." && pwd)
VMDKFS=${VMDKFS:-$TOP/vmdkfs}
MKVMDK="/usr/bin/python3 $TESTS/gen/mkvmdk.py"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmdkfs-test.XXXXXX")
MOUNTS=""
LOOPS=""

cleanup() {
	for p in ${NBDKIT_PIDS:-}; do
		kill "$p" 2>/dev/null || true
	done
	for m in $MOUNTS; do
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	for l in $LOOPS; do
		losetup -d "$l" 2>/dev/null || true
	done
	# Mounts a peer left under $WORK (the lab's qemu-storage-daemon
	# exports for hotadd, when the lab was stopped before it tore them
	# down): lazily, so that the folder can go.
	for m in $(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts 2>/dev/null | sort -r); do
		fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK" || true
}
trap cleanup EXIT

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
need() {
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
	done
}

# mount_vmdkfs MOUNTPOINT ARGS...: mount in the background, wait for it.
mount_vmdkfs() {
	mp=$1
	shift
	mkdir -p "$mp"
	"$VMDKFS" "$@" "$mp" || return 1
	MOUNTS="$MOUNTS $mp"
	i=0
	while ! mountpoint -q "$mp"; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "mount of $mp did not appear"
		sleep 0.05
	done
}

# The vmdkfs daemons serving mount point MP (as given to mount_vmdkfs).
vmdkfs_pids() {
	local p
	for p in /proc/[0-9]*; do
		[ "$p/exe" -ef "$VMDKFS" ] 2>/dev/null || continue # no fork per process
		[ "$(tr '\0' '\n' <"$p/cmdline" 2>/dev/null | tail -1)" = "$1" ] && echo "${p#/proc/}"
	done
	return 0
}

# umount_vmdkfs MP: unmount, then wait (60 s at most) for the daemon to
# end: it closes its disks (the NFC close, the temporary snapshot) after
# the unmount itself.
umount_vmdkfs() {
	local pids p i
	pids=$(vmdkfs_pids "$1")
	fusermount3 -u "$1"
	MOUNTS=$(echo "$MOUNTS" | sed "s# $1##")
	for p in $pids; do
		for i in $(seq 600); do
			# Gone, or a zombie (the daemon's parent is init, which
			# may take its time to reap it): it has ended.
			case $(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null) in
			"" | Z) break ;;
			esac
			sleep 0.1
		done
	done
}

# loop_attach FILE [LOSETUP OPTIONS...]: a loop device over FILE in $LOOP,
# detached by the EXIT trap.  Skips where there are none.
loop_attach() {
	local f=$1
	shift
	[ "$(id -u)" = 0 ] || skip "loop devices need root"
	LOOP=$(losetup "$@" -f --show "$f" 2>/dev/null) || skip "no loop device here (losetup -f failed)"
	LOOPS="$LOOPS $LOOP"
}

# random_raw FILE MIB: random data with some zero stretches.
random_raw() {
	head -c "$(($2 * 1048576))" /dev/urandom >"$1"
	dd if=/dev/zero of="$1" bs=64K seek=3 count=5 conv=notrunc status=none
}

# same FILE1 FILE2 WHAT: byte-identical or fail.
same() {
	cmp "$1" "$2" >/dev/null || fail "$3: $1 differs from $2 ($(cmp "$1" "$2" 2>&1 | head -1))"
}

# start_lab: build and start the simulated vCenter (tests/lab) for a test,
# stopped by the EXIT trap; skips when Go/govmomi are missing.
start_lab() {
	. "$TESTS/lab/lab.sh"
	local rc=0
	lab_build "$TOP/build/lab" || rc=$?
	[ $rc = 77 ] && skip "the lab cannot be built here (Go/govmomi missing)"
	[ $rc = 0 ] || fail "building the lab"
	trap 'lab_stop; cleanup' EXIT
	lab_start "$WORK/lab" "$@" || fail "lab did not start"
}

# Start the lab and cd to $WORK, with a password file (mode 600) there and
# $NFC_OPTS the options of a mount of the lab's VM over its NFC server;
# any arguments go to the lab (-vms 3 ...).
lab_nfc_setup() {
	start_lab "$@"
	[ -n "${LAB_NFC_PORT:-}" ] || skip "this lab has no NFC server"
	cd "$WORK"
	printf '%s\n' "$LAB_PASSWORD" >"$WORK/pw"
	chmod 600 "$WORK/pw"
	NFC_OPTS="server=$LAB_HOST,port=$LAB_PORT,user=$LAB_USER,password_file=$WORK/pw,thumbprint=$LAB_THUMBPRINT_SHA256,nfchostport=$LAB_NFC_PORT,vm=$LAB_VM"
}
# local_of FILE: the lab datastore's local path of a mounted disk.
local_of() { local p; p=$(getfattr --only-values -n user.vmdkfs.datastore_path "$1"); echo "$LAB_DATASTORE_DIR/${p#*] }"; }
# nsnaps PREFIX: how many snapshots in the lab are named PREFIX...
nsnaps() { lab_ctl state | /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin); print(sum(1 for v in s['vms'] for x in v.get('snapshots') or [] if x['name'].startswith('$1')))"; }
# nctl QUERY: set NFC fault knobs; nstat NAME: one of the NFC server's stats.
nctl() { lab_ctl "nfc?$1" >/dev/null || fail "lab nfc control $1"; }
nstat() { lab_ctl state | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['nfc']['stats']['$1'])"; }
# wait_clean [TRIES]: poll the caller's `leftovers` (what a mount may have
# left on the lab's VMs, one line) every 0.2 s, TRIES times (100), until it
# prints $CLEAN; else print the last line and fail.
wait_clean() {
	local i l
	for i in $(seq "${1:-100}"); do
		l=$(leftovers)
		[ "$l" = "$CLEAN" ] && return 0
		sleep 0.2
	done
	echo "$l"
	return 1
}
# nbdkit_start NAME ARGS...: nbdkit (foreground, in the background) with
# the plugin on the Unix socket $WORK/NAME.sock, its log in
# $WORK/NAME.nbdkit.log; NBDKIT_PID its PID and NBD_URI its URI.  Waits
# until it serves (or fails the test with its log).
PLUGIN=${PLUGIN:-$TOP/nbdkit/nbdkit-vmdkfs-plugin$(case $VMDKFS in *-san) echo -san ;; esac).so}
NBDKIT_PIDS=""
nbdkit_start() {
	local name=$1
	shift
	rm -f "$WORK/$name.pid"
	nbdkit_exact "$name" "$WORK/$name.sock" -f -U "$WORK/$name.sock" \
		-P "$WORK/$name.pid" "$PLUGIN" "$@"
}
# nbdkit_run ARGS...: nbdkit ARGS; a sanitizer build of the plugin gets
# its runtimes loaded first (nbdkit itself is not built with them).
# (the plugin too: nbdkit unloads it before the leak check, which could
# then not name its functions)
nbdkit_preload() { echo "$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so):$PLUGIN"; }
nbdkit_run() {
	case $PLUGIN in
	*-san.so) LD_PRELOAD="$(nbdkit_preload)" nbdkit "$@" ;;
	*) nbdkit "$@" ;;
	esac
}
# nbdkit_exact NAME SOCKET ARGS...: nbdkit ARGS exactly as given (a
# command line as another program builds it), in the background, serving
# on SOCKET; as nbdkit_start otherwise (NBD_PROBE: the URI to wait for,
# when the default export is refused).
nbdkit_exact() {
	local name=$1 sock=$2 i
	shift 2
	rm -f "$sock"
	# (exec: $! is nbdkit's own PID, for the signals)
	(
		case $PLUGIN in *-san.so) export LD_PRELOAD="$(nbdkit_preload)" ;; esac
		exec nbdkit "$@"
	) >"$WORK/$name.nbdkit.log" 2>&1 &
	NBDKIT_PID=$!
	disown "$NBDKIT_PID" # no "Killed" line from bash after a kill -9
	NBDKIT_PIDS="$NBDKIT_PIDS $NBDKIT_PID"
	NBD_URI="nbd+unix:///?socket=$sock"
	# Serving: a client gets its answer (the pidfile may come before the
	# plugin's after_fork has opened the disk).
	for i in $(seq 600); do
		[ -S "$sock" ] && nbdinfo --size "${NBD_PROBE:-$NBD_URI}" >/dev/null 2>&1 && return 0
		kill -0 "$NBDKIT_PID" 2>/dev/null || { cat "$WORK/$name.nbdkit.log"; fail "nbdkit $name exited: $*"; }
		sleep 0.05
	done
	cat "$WORK/$name.nbdkit.log"
	fail "nbdkit $name did not serve within 30 s"
}
# nbdkit_stop [SIGNAL]: stop the last nbdkit_start's nbdkit (SIGTERM:
# its plugin unloads) and wait for it (60 s at most).
nbdkit_stop() {
	local i
	kill -"${1:-TERM}" "$NBDKIT_PID" 2>/dev/null || return 0
	for i in $(seq 600); do
		kill -0 "$NBDKIT_PID" 2>/dev/null || return 0
		sleep 0.1
	done
	fail "nbdkit $NBDKIT_PID did not end within 60 s"
}
# lab_vm_task METHOD MOREF [ARGUMENTS-XML]: a VirtualMachine task on the
# lab (after lab_login), waited for; the test fails unless it succeeds.
lab_vm_task() {
	local task
	lab_soap "<$1 xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$2</_this>${3:-}</$1>"
	task=$(sed -n 's:.*<returnval type="Task">\([^<]*\)</returnval>.*:\1:p' "$LAB_RESP")
	[ "$(lab_task_wait "$task")" = success ] || fail "$1 on $2"
}

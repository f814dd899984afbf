#!/bin/bash
# The command line: names of the flat files, xattrs, --list-transports,
# config file and -o keys through one table, log file and levels, the read
# cache, fstab-style options, the kernel page cache on read-only mounts.
. "$(dirname "$0")/lib.sh"
need qemu-img getfattr

cd "$WORK"
random_raw r.raw 2
mkdir d1 d2
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse r.raw d1/a.vmdk
cp d1/a.vmdk d2/a.vmdk
cp d1/a.vmdk "my disk (1).VMDK"
cp d1/a.vmdk -- "-x.vmdk"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized r.raw s.vmdk

[ "$("$VMDKFS" --list-transports)" = file:san:hotadd:nbd:nbdssl ] || fail "--list-transports: $("$VMDKFS" --list-transports)"

# Names: shell-safe, unique, documented in --help.
mount_vmdkfs mnt -o ro,noatime,_netdev,nofail,x-systemd.automount,defaults \
	d1/a.vmdk d2/a.vmdk "my disk (1).VMDK" -- -x.vmdk
[ "$(ls mnt | tr '\n' ' ')" = "_x.raw a-2.raw a.raw my_disk__1_.raw " ] ||
	fail "names: $(ls mnt | tr '\n' ' ')"
for f in mnt/*.raw; do same "$f" r.raw "$f"; done
echo "ok names"
# Readahead raised to 1 MiB (root), so sequential reads arrive in 1 MiB.
if [ "$(id -u)" = 0 ]; then
	[ "$(cat /sys/class/bdi/"$(mountpoint -d mnt)"/read_ahead_kb)" = 1024 ] ||
		fail "readahead not raised"
fi

# fstab style, through mount.fuse3 (as /etc/fstab would).
mkdir -p fstab
mount -t fuse -o ro,nofail,noatime "$VMDKFS#$WORK/s.vmdk" "$WORK/fstab" || fail "mount -t fuse"
MOUNTS="$MOUNTS $WORK/fstab"
same fstab/s.raw r.raw "fstab-style mount"
umount_vmdkfs "$WORK/fstab"
echo "ok mount.fuse3"

# Extended attributes.
cid=$(printf "%08x" "0x$(sed -n "s/^CID=//p" <(head -c 4096 d1/a.vmdk | tr -d "\0"))") # qemu drops leading zeros
[ "$(getfattr --only-values -n user.vmdkfs.transport mnt/a.raw)" = file ] || fail xattr transport
[ "$(getfattr --only-values -n user.vmdkfs.path mnt/a-2.raw)" = "$WORK/d2/a.vmdk" ] || fail xattr path
[ "$(getfattr --only-values -n user.vmdkfs.capacity mnt/a.raw)" = 2097152 ] || fail xattr capacity
[ "$(getfattr --only-values -n user.vmdkfs.cid mnt/a.raw)" = "$cid" ] || fail "xattr cid: $(getfattr --only-values -n user.vmdkfs.cid mnt/a.raw) != $cid"
getfattr -d mnt/a.raw | grep -c 'user.vmdkfs' | grep -qx 4 || fail "listxattr"
# Read-only: writes refused.
if (echo x >>mnt/a.raw) 2>/dev/null; then fail "write to a read-only mount worked"; fi
umount_vmdkfs mnt
echo "ok xattrs"

# Config file and -o keys: one table.
mkdir logs
cat >good.conf <<EOC
# comment
tmpDirectory=$WORK/logs
vixDiskLib.transport.LogLevel = 6
vixDiskLib.nfc.ReadTimeoutsMs=1000
vixDiskLib.disklib.EnableCache=0
EOC
chmod 600 good.conf
mount_vmdkfs mnt -o config=good.conf,vixDiskLib.disklib.EnableCache=1,cache_size=256K s.vmdk
log=$(ls logs/vmdkfs-*.log)
grep -q "s.raw: .*transport file" "$log" || fail "log file lacks the open message"
same mnt/s.raw r.raw "EnableCache read"
# Random reads through the cache, then the page cache check: a second full
# read of the file is served by the kernel (no new reads reach vmdkfs).
/usr/bin/python3 - mnt/s.raw r.raw <<'EOP'
import os, random, sys
fd = os.open(sys.argv[1], os.O_RDONLY); raw = open(sys.argv[2], 'rb').read()
rng = random.Random(3)
for _ in range(2000):
    off = rng.randrange(len(raw)); n = rng.randrange(1, 70000)
    assert os.pread(fd, n, off) == raw[off:off + n], (off, n)
EOP
cat mnt/s.raw >/dev/null
before=$(grep -c ': read ' "$log")
cat mnt/s.raw >/dev/null
after=$(grep -c ': read ' "$log")
[ "$before" -gt 0 ] || fail "LogLevel 6 logged no reads"
[ "$before" = "$after" ] || fail "re-read reached vmdkfs ($before -> $after reads): page cache not kept"
umount_vmdkfs mnt
echo "ok config, log, cache, page cache"

# Unknown keys warn, naming the key; bad values and bad files are errors.
mount_vmdkfs mnt -o no.such.key=1 s.vmdk 2>err
grep -q 'unknown option "no.such.key"' err || fail "unknown key: $(cat err)"
umount_vmdkfs mnt
chk() { # expect failure with a message matching $1
	want=$1; shift
	if "$VMDKFS" "$@" 2>err; then fail "$* succeeded"; fi
	grep -q -- "$want" err || fail "$*: message: $(cat err)"
}
mkdir -p m2
chk 'vixDiskLib.transport.LogLevel=9: expected a whole number from 0 to 6' -o vixDiskLib.transport.LogLevel=9 s.vmdk m2
chk 'cache_size=lots' -o cache_size=lots s.vmdk m2
printf '# x\nnot a pair\n' >bad.conf
chmod 600 bad.conf
chk 'bad.conf:2: expected name=value' -o config=bad.conf s.vmdk m2
cp good.conf open.conf
chmod 666 open.conf
chk 'writable by group or others' -o config=open.conf s.vmdk m2
chk 'no-such.vmdk: cannot open' no-such.vmdk m2
chk 'hotadd: needs a vSphere mount' -o transports=hotadd s.vmdk m2
chk 'san: needs a vSphere mount' -o transports=san s.vmdk m2
chk 'nbd: needs a vSphere mount' -o transports=nbd s.vmdk m2
chk 'is not a transport mode' -o transports=file:nfs s.vmdk m2
chk 'unknown option --bogus' --bogus s.vmdk m2
chk 'no mount point given after s.vmdk' s.vmdk
chk 'no disk and no mount point given'
chk 'no disk given to mount on m2' m2
chk 'password=...: a password on the command line' -o password=secret s.vmdk m2
chk 'use password_file= (mode 600) or VMDKFS_PASSWORD' -o server=localhost,password=secret m2
chk "$WORK: config file is not a regular file" -o "config=$WORK" s.vmdk m2
chk 's.vmdk and ./s.vmdk are the same disk; give it once' s.vmdk ./s.vmdk m2
echo "ok option errors"

# Mount points: a plain file is refused, and so is a vmdkfs mount already.
: >plain
chk 'mount point plain: not a directory' s.vmdk plain
mountpoint -q plain && fail "mounted over a plain file"
mount_vmdkfs mnt s.vmdk
chk 'mnt is already a vmdkfs mount' s.vmdk mnt
[ "$(grep -c " $WORK/mnt " /proc/self/mounts)" = 1 ] || fail "mounts stacked on mnt"
# status: a vmdkfs mount, or a clear refusal; never into other mounts.
"$VMDKFS" status mnt >st.txt || fail "status of a vmdkfs mount"
grep -q '^s.raw  *file' st.txt || fail "status: $(cat st.txt)"
mkdir -p plaindir/sub
: >plaindir/sub/f
if "$VMDKFS" status plaindir >st.txt 2>err; then fail "status of a plain folder succeeded"; fi
grep -q "plaindir is not a vmdkfs mount" err || fail "status of a plain folder: $(cat err)"
[ ! -s st.txt ] || fail "status of a plain folder printed: $(cat st.txt)"
# The log is named after the daemon's own PID.
mkdir -p pidlogs
mount_vmdkfs mnt2 -o tmpDirectory=$WORK/pidlogs s.vmdk
pid=$(vmdkfs_pids mnt2)
[ -n "$pid" ] && [ -f "pidlogs/vmdkfs-$pid.log" ] || fail "log not named after the daemon $pid: $(ls pidlogs)"
umount_vmdkfs mnt2
mount_vmdkfs mnt2 -o log=$WORK/my.log s.vmdk
umount_vmdkfs mnt2
grep -q "transport file" my.log || fail "log=FILE: $(cat my.log 2>&1)"
umount_vmdkfs mnt
echo "ok mount points, status, log names"

# --help names every command; --version prints it.
"$VMDKFS" --help >help.txt
for cmd in info status cleanup --list-transports --version; do
	grep -q -- "vmdkfs $cmd\|$cmd" help.txt || fail "--help does not name $cmd"
done
"$VMDKFS" --version | grep -q '^vmdkfs [0-9]' || fail "--version"
echo "ok --help, --version"

# Plain make on a machine without the -dev packages (pkg-config and dpkg
# stand-ins in PATH): the message names what is missing and how to get it.
mkdir -p fakebin
printf '#!/bin/sh\nexit 1\n' >fakebin/pkg-config
printf '#!/bin/sh\n[ "$3" = libfuse3-dev ] && exit 1\necho "install ok installed"\n' >fakebin/dpkg-query
chmod +x fakebin/*
if PATH=$WORK/fakebin:$PATH make -C "$TOP" -s >make.out 2>&1; then fail "make without the -dev packages succeeded"; fi
grep -q 'missing Debian packages: libfuse3-dev; install them with "make deps"' make.out ||
	fail "make without the -dev packages: $(cat make.out)"
echo "ok make names the missing packages"

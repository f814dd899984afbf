#!/bin/bash
# The layering: the library (common/ vmdk/ vmfs/ part/ transports/
# vsphere/, built as build/libvmdkfs.a) has no FUSE and no nbdkit in it,
# in its sources or in what its objects call; the front ends (fs/,
# nbdkit/) sit over it.  And inside fs/, the tree (tree.c) knows what
# fills it only through fs/provider.h: it names no provider.
. "$(dirname "$0")/lib.sh"
need nm
cd "$TOP"
LIBDIRS="common vmdk vmfs part transports vsphere"

bad=$(grep -lE '#[[:space:]]*include[[:space:]]*[<"](fuse[^">]*|nbdkit-[^">]*)[">]' \
	$(find $LIBDIRS -name '*.[ch]') || true)
[ -z "$bad" ] || fail "library files include FUSE or nbdkit headers: $bad"
echo "ok no library source includes fuse*.h or nbdkit-*.h ($(find $LIBDIRS -name '*.[ch]' | wc -l) files)"

bdir=${BUILD_DIR:-build} # make check SANITIZE=...: build-san
lib=$bdir/libvmdkfs.a
[ -f "$lib" ] || fail "$lib not built (make)"
calls=$(nm -u "$lib" | grep -E ' U (fuse_|nbdkit_)' | sort -u || true)
[ -z "$calls" ] || fail "the library calls FUSE or nbdkit: $calls"
# The check itself: a front end's object does call them.
nm -u "$bdir/fs/tree.o" | grep -q ' U fuse_' || fail "nm finds no fuse_ call in tree.o: the check above proves nothing"
echo "ok $lib calls no fuse_* or nbdkit_* function ($(ar t "$lib" | wc -l) objects)"

# The tree and its providers: tree.c calls none by name.
names=$(grep -ohE '\bfs_(browse|lun|vsphere|vm|local|part|scratch|cbt)_[a-z_]+\b' fs/tree.c | sort -u || true)
[ -z "$names" ] || fail "fs/tree.c names providers: $names"
for p in local vm browse lun; do
	grep -q "^const struct fs_provider fs_${p}_provider = {" fs/*.c || fail "no fs_${p}_provider"
done
echo "ok fs/tree.c names no provider; local, vm, browse and lun are struct fs_provider"

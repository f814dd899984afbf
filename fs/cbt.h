/* Changed block tracking in the tree (fs/cbt.c): holes from "*" for disks
 * read over the LAN, the DISK.changed.json / DISK.changed.raw views of
 * changed_since=, `vmdkfs apply-changes` and `vmdkfs status --json`. */
#ifndef VMDKFS_FS_CBT_H
#define VMDKFS_FS_CBT_H

#include "../transports/disk.h"

struct vs_conn;
struct vs_disk;
struct fs_file;

/* Called for each disk VD of VM at snapshot SNAP (NULL: current) once its
 * transport opened *D: with cbt=on, on a read-only mount, a disk read over
 * nbd, nbdssl or hotadd takes its holes from QueryChangedDiskAreas "*"
 * (where that is refused: no holes, one log line); with changed_since=
 * *D becomes a disk the views can share.  0 or -errno (then *D is
 * unchanged and still the caller's). */
int fs_cbt_open(struct vs_conn *c, const char *vm, const char *snap,
		const struct vs_disk *vd, struct disk **d);

/* After F (from fs_cbt_open's disk) was added to folder DIR ("" the
 * root): with changed_since= for its device key, add DISK.changed.json
 * and DISK.changed.raw beside it.  0 or -errno with a message (the mount
 * then fails: never a silent full or empty increment). */
int fs_cbt_views(struct vs_conn *c, const char *vm, const char *snap,
		 const char *dir, struct fs_file *f, const struct vs_disk *vd);

/* vmdkfs apply-changes MOUNT/.../DISK.changed.raw FULLCOPY */
int fs_apply_changes_main(int argc, char **argv);

/* vmdkfs status --json MOUNTPOINT */
int fs_status_json(const char *mountpoint);

#endif

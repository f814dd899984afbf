/* Changed block tracking in the tree (fs/cbt.c): the DISK.changed.json /
 * DISK.changed.raw views of changed_since=, `vmdkfs apply-changes` and
 * `vmdkfs status --json`. */
#ifndef VMDKFS_FS_CBT_H
#define VMDKFS_FS_CBT_H

#include "../transports/disk.h"

struct vs_conn;
struct vs_disk;
struct fs_file;

/* After F (from vm_disk_open with WANT_AREAS) was added to folder DIR
 * ("" the root): with changed_since= for its device key, add DISK.changed.json
 * and DISK.changed.raw beside it.  0 or -errno with a message (the mount
 * then fails: never a silent full or empty increment). */
int fs_cbt_views(struct vs_conn *c, const char *vm, const char *snap,
		 const char *dir, struct fs_file *f, const struct vs_disk *vd);

/* vmdkfs apply-changes MOUNT/.../DISK.changed.raw FULLCOPY */
int fs_apply_changes_main(int argc, char **argv);

/* vmdkfs status --json MOUNTPOINT */
int fs_status_json(const char *mountpoint);

#endif

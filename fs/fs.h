/* The file system: a tree of flat files (one per disk), in the root or in
 * one level of folders (one per snapshot), and the FUSE loop that serves
 * it.  Callbacks only translate to struct disk calls and -errno. */
#ifndef VMDKFS_FS_H
#define VMDKFS_FS_H

#include <stdbool.h>
#include <stddef.h>

#include "../transports/disk.h"
#include "config.h"

struct fs_file {
	char dir[256];	/* folder ("" = the root) */
	char name[256]; /* NAME.raw */
	char *source;	/* what was opened: descriptor path (owned) */
	struct disk *disk;
	/* vSphere facts, or NULL/-1 */
	char *ds_path, *change_id, *vm, *snapshot;
	int device_key;
};

extern struct config fs_cfg;

int fs_info_main(int argc, char **argv);
int fs_status_main(int argc, char **argv);
/* Is DIR the mount point of a vmdkfs mount (/proc/self/mountinfo)? */
bool fs_is_vmdkfs_mount(const char *dir);

/* Turn the base name of PATH into a flat file's name: ".vmdk" dropped,
 * characters other than [A-Za-z0-9._+-] replaced by '_', no leading '-' or
 * '.', then ".raw".  Writes at most SIZE bytes into OUT. */
void fs_flat_name(const char *path, char *out, size_t size);
/* The same rule for a folder name (no ".raw"). */
void fs_dir_name(const char *name, char *out, size_t size);

/* Add a file for DISK in folder DIR named after NAME_HINT (made unique).
 * The tree takes DISK and SOURCE.  Returns the new entry, or NULL. */
struct fs_file *fs_add(const char *dir, const char *name_hint,
		       struct disk *disk, char *source);
/* Does folder DIR hold any file yet? */
bool fs_dir_exists(const char *dir);
/* Close every disk and empty the tree. */
void fs_close_all(void);

/* vSphere mounts (vsmount.c): connect, pick the VM and snapshot, add its
 * disks to the tree; at the end remove a temporary snapshot, EndAccess,
 * log out.  cleanup: vmdkfs cleanup. */
int fs_vsphere_open(void);
void fs_vsphere_close(void);
int fs_vsphere_cleanup(void);

/* Mount at MOUNTPOINT and serve until unmounted or signalled.  FARGS are
 * passed to libfuse.  Returns 0 or 1. */
struct fuse_args;
int fs_serve(struct fuse_args *fargs, const char *mountpoint, bool foreground,
	     bool single, bool debug);

#endif

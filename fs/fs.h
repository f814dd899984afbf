/* The file system: a tree of folders and flat files (one per disk), of
 * any depth, and the FUSE loop that serves it.  Callbacks only look the
 * node up and translate to struct disk calls and -errno. */
#ifndef VMDKFS_FS_H
#define VMDKFS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../transports/disk.h"
#include "config.h"

/* A disk shown as a flat file, and its vSphere facts (NULL/-1 if none). */
struct fs_file {
	char *source; /* what was opened: descriptor path (owned) */
	struct disk *disk;
	char *ds_path, *change_id, *vm, *snapshot;
	int device_key;
	/* A partition's file: its table entry (owned); NULL for a disk */
	struct part_entry *part;
	/* Browsing (fs/browse.c): a disk opened on its first open and closed
	 * when idle (DISK is NULL while closed; its size and facts are the
	 * inventory's); not owned by the tree.  NULL: an ordinary disk. */
	struct fs_lazy *lazy;
};

enum fs_kind { FS_DIR, FS_DISK, FS_FILE, FS_LINK };

struct fs_node;
struct source;

/* Fills folder DIR on its first lookup or listing (fs_add_* calls);
 * called with the tree locked.  0 or -errno (the folder then reads as
 * that error, and is tried again next time). */
typedef int fs_fill_fn(struct fs_node *dir, void *arg);
/* Adds the entries that go beside disk node DISK in its folder (its
 * partitions: fs_part_expand) on the first lookup or listing of the
 * folder, after its fill; called with the tree locked.  0 or -errno
 * (logged; the folder is still served). */
typedef int fs_expand_fn(struct fs_node *disk);
struct part_entry;

struct fs_node {
	enum fs_kind kind;
	char name[256];
	struct fs_node *parent; /* NULL: the root */
	struct fs_node **kids;	/* FS_DIR: its entries, in the order made */
	size_t nkids;
	fs_fill_fn *fill; /* FS_DIR: not filled yet; NULL once done */
	void *fill_arg;
	struct fs_file *file; /* FS_DISK (owned) */
	struct source *src;   /* FS_FILE: its bytes, read-only (owned) */
	char *target;	      /* FS_LINK (owned) */
	time_t mtime;	      /* 0: the mount's time */
	bool has_mode;	      /* else 0444 files, 0555 folders */
	unsigned mode;	      /* permission bits */
	fs_expand_fn *expand; /* FS_DISK: not expanded yet; NULL once done */
	bool expand_pending;  /* FS_DIR: a child's expand hook is still due */
	/* Browsing (fs/browse.c): a folder filled again by REFILL (with
	 * FILL_ARG) on a look at or after FRESH_UNTIL; a node GONE from the
	 * inventory is hidden (ENOENT) but kept, as file handles may hold
	 * it, until unmount. */
	fs_fill_fn *refill;
	time_t fresh_until;
	bool gone;
};

extern struct config fs_cfg;

int fs_info_main(int argc, char **argv);
int fs_status_main(int argc, char **argv);
/* Is DIR the mount point of a vmdkfs mount (/proc/self/mountinfo)?  Its
 * device numbers in *MAJOR, *MINOR (either may be NULL). */
bool fs_vmdkfs_mount(const char *dir, unsigned *major, unsigned *minor);

/* Turn the base name of PATH into a flat file's name: ".vmdk" dropped,
 * characters other than [A-Za-z0-9._+-] replaced by '_', no leading '-' or
 * '.', then ".raw".  Writes at most SIZE bytes into OUT. */
void fs_flat_name(const char *path, char *out, size_t size);
/* The same rule for a folder name (no ".raw"). */
void fs_dir_name(const char *name, char *out, size_t size);

/* The root folder. */
struct fs_node *fs_root(void);
/* The folder NAME in PARENT, made if need be; NULL when a file has that
 * name, or on ENOMEM. */
struct fs_node *fs_mkdir(struct fs_node *parent, const char *name);
/* A flat file for DISK in folder DIR, named after NAME_HINT (fs_flat_name,
 * made unique in DIR).  The tree takes DISK and SOURCE.  NULL on ENOMEM. */
struct fs_node *fs_add_disk(struct fs_node *dir, const char *name_hint,
			    struct disk *disk, char *source);
/* A read-only plain file NAME (exact) in DIR over SRC, which the tree
 * takes; a symbolic link NAME to TARGET.  NULL when the name is taken or
 * on ENOMEM. */
struct fs_node *fs_add_file(struct fs_node *dir, const char *name,
			    struct source *src, time_t mtime);
struct fs_node *fs_add_link(struct fs_node *dir, const char *name,
			    const char *target, time_t mtime);
/* Partition E of disk node DISK as a flat file NAME (exact) beside it,
 * over PDISK (part_disk_open; the tree takes it): the disk's xattrs and
 * user.vmdkfs.partition.*.  NULL when the name is taken or on ENOMEM
 * (PDISK is then still the caller's). */
struct fs_node *fs_add_partition(struct fs_node *disk, const char *name,
				 struct disk *pdisk, const struct part_entry *e);
/* The path of N below the mount, for messages ("dir/name.raw"). */
void fs_node_path(const struct fs_node *n, char *out, size_t size);
/* Let FILL fill DIR when it is first looked at (a lazily filled folder). */
void fs_set_fill(struct fs_node *dir, fs_fill_fn *fill, void *arg);
/* The same in the root ("") or a folder of the root named DIR. */
struct fs_file *fs_add(const char *dir, const char *name_hint,
		       struct disk *disk, char *source);
/* Is there a folder DIR in the root? */
bool fs_dir_exists(const char *dir);
/* Close every disk and empty the tree. */
void fs_close_all(void);

/* vSphere mounts (vsmount.c): connect, pick the VM and snapshot, add its
 * disks to the tree; at the end remove a temporary snapshot, EndAccess,
 * log out.  cleanup: vmdkfs cleanup. */
int fs_vsphere_open(void);
void fs_vsphere_close(void);
int fs_vsphere_cleanup(void);

/* -o lun= mounts (lunmount.c): open the VMFS volume on DEVICES
 * (colon-separated; partition PARTNO of each, 0: found by type) and let
 * it fill the tree; close it after the tree. */
int fs_lun_open(const char *devices, unsigned partno);
void fs_lun_close(void);

/* ---- Browsing: a whole vCenter or ESXi host (fs/browse.c) ---- */

/* REFILL fills DIR on each look once its FRESH_UNTIL has passed (0: at
 * the first look); the filler sets FRESH_UNTIL. */
void fs_set_refill(struct fs_node *dir, fs_fill_fn *refill, void *arg);
/* The visible (not gone) entry NAME of DIR, or NULL. */
struct fs_node *fs_child(struct fs_node *dir, const char *name);
/* A flat file named after NAME_HINT (fs_flat_name, made unique in DIR)
 * with no disk yet, for browse.c to fill in (fs_file fields, lazy); the
 * tree takes SOURCE.  NULL on ENOMEM.  Call with the tree locked. */
struct fs_node *fs_add_lazy(struct fs_node *dir, const char *name_hint,
			    char *source);
/* The tree's lock (recursive), for providers that change nodes outside
 * a fill. */
void fs_tree_lock(void);
void fs_tree_unlock(void);

/* server= without vm=: check the options, connect, and let the root
 * list the inventory.  0 or -errno (message printed). */
int fs_browse_open(void);
/* Close every open disk (EndAccess where owed) and log out; before
 * fs_close_all. */
void fs_browse_close(void);
bool fs_browse_on(void);
/* In the daemon, once serving: the idle-close thread.  The kernel's
 * entry and attribute timeout, seconds, in *TIMEOUT. */
void fs_browse_start(double *timeout);
/* A FUSE open of lazy disk node N: opens its disk if need be (waiting for
 * a free slot of max_open_disks), and holds it until fs_browse_put.
 * *KEEP_CACHE: may the page cache stay across opens.  0 or -errno
 * (ENOENT: gone from the inventory; EBUSY: no free slot in time). */
int fs_browse_get(struct fs_node *n, bool *keep_cache);
void fs_browse_put(struct fs_node *n);
/* A lookup of NAME in DIR found nothing: when NAME is DISK-pN.raw of a
 * lazy disk DISK.raw whose table was not read yet, open the disk to read
 * it (then closed as any).  Is it worth looking again?  Called with the
 * tree unlocked. */
bool fs_browse_miss(struct fs_node *dir, const char *name);
/* A lazy disk's size (the inventory's capacity) and transport in use or
 * last used (NULL: never opened yet). */
uint64_t fs_browse_size(const struct fs_file *f);
const char *fs_browse_transport(const struct fs_file *f);
/* vsmount.c's connection, datastore mapping and PrepareForAccess
 * identity, for browse.c. */
struct vs_conn;
int fs_vs_connect(struct vs_conn **conn);
int fs_vs_local_path(const char *ds_path, char **out);
/* The disk_spec of vSphere disk VD of VM (snapshot SNAP, NULL: current),
 * every field from the configuration; read-only (the caller may change
 * that and sets path and ds_path). */
struct disk_spec;
struct vs_disk;
void fs_vs_spec(struct disk_spec *spec, struct vs_conn *conn, const char *vm,
		const char *snap, const struct vs_disk *vd);
void fs_vs_identity(char *out, size_t size);

/* Mount at MOUNTPOINT and serve until unmounted or signalled.  FARGS are
 * passed to libfuse.  Returns 0 or 1. */
struct fuse_args;
int fs_serve(struct fuse_args *fargs, const char *mountpoint, bool foreground,
	     bool single, bool debug);

#endif

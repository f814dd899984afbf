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
#include "../common/config.h"

/* A disk shown as a flat file, and its vSphere facts (NULL/-1 if none). */
struct fs_file {
	char *source; /* what was opened: descriptor path (owned) */
	struct disk *disk;
	char *ds_path, *change_id, *vm, *snapshot;
	int device_key;
	/* A partition's file: its table entry (owned); NULL for a disk */
	struct part_entry *part;
	/* A disk its provider opens on demand (provider.h; DISK is NULL
	 * while closed) and the provider's own data; NULL: an ordinary
	 * disk, open for the mount's life. */
	const struct fs_file_ops *ops;
	void *priv;
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
/* A lookup of NAME in folder DIR found nothing: may the provider have it
 * after all (a file it makes only when asked: a browsed disk's
 * partition)?  Is it worth looking again?  Called with the tree
 * unlocked. */
typedef bool fs_miss_fn(struct fs_node *dir, const char *name);
struct part_entry;
struct fs_file_ops;

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
	fs_miss_fn *miss; /* FS_DIR: NULL, or asked on a failed lookup */
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

/* ---- For providers whose folders change (browsing) ---- */

/* REFILL fills DIR on each look once its FRESH_UNTIL has passed (0: at
 * the first look); the filler sets FRESH_UNTIL. */
void fs_set_refill(struct fs_node *dir, fs_fill_fn *refill, void *arg);
/* The visible (not gone) entry NAME of DIR, or NULL. */
struct fs_node *fs_child(struct fs_node *dir, const char *name);
/* A flat file named after NAME_HINT (fs_flat_name, made unique in DIR)
 * whose disk OPS open on demand (PRIV their data), for the provider to
 * fill in (fs_file fields); the tree takes SOURCE.  NULL on ENOMEM.  Call
 * with the tree locked. */
struct fs_node *fs_add_lazy(struct fs_node *dir, const char *name_hint,
			    char *source, const struct fs_file_ops *ops,
			    void *priv);
/* The tree's lock (recursive), for providers that change nodes outside
 * a fill. */
void fs_tree_lock(void);
void fs_tree_unlock(void);

/* The hooks of every disk added from now on: EXPAND (partitions=: its
 * partition files) and LAYER (scratch: a layer in front of it, in
 * *OUT; the layer takes the disk; 0 or -errno).  NULL: none. */
typedef int fs_layer_fn(struct disk *under, struct disk **out);
void fs_set_disk_hooks(fs_expand_fn *expand, fs_layer_fn *layer);

/* Mount at MOUNTPOINT and serve P's tree until unmounted or signalled.
 * FARGS are passed to libfuse.  Returns 0 or 1. */
struct fuse_args;
struct fs_provider;
int fs_serve(const struct fs_provider *p, struct fuse_args *fargs,
	     const char *mountpoint, bool foreground, bool single, bool debug);

#endif

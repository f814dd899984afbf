/* What fills the tree.  fs/tree.c serves a tree of folders and files and
 * knows its fillers only through this interface: one provider per mount,
 * chosen by main.c from the options; inside the tree, a folder's fill,
 * refill and miss hooks (fs.h), a disk node's expand hook, and the file
 * ops of a disk opened on demand.
 *
 *   fs_local_provider   DISK.vmdk... on the command line (local.c)
 *   fs_vm_provider      server= with vm=: a VM's snapshot (vsmount.c)
 *   fs_browse_provider  server= without vm=: every VM (browse.c)
 *   fs_lun_provider     lun=: a VMFS volume (lunmount.c)
 *
 * and beside any of them, hooks main.c sets: partitions= (partition.c,
 * the expand hook of each disk) and scratch (scratch.c, a layer in front
 * of each disk). */
#ifndef VMDKFS_FS_PROVIDER_H
#define VMDKFS_FS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fs_node;
struct fs_file;

/* How the daemon serves a provider's tree (fs_serve's defaults first). */
struct fs_serve_hints {
	double entry_timeout;	 /* seconds names and attributes are kept */
	double negative_timeout; /* seconds a missing name is remembered */
	bool kernel_cache;	 /* may file pages stay across opens */
};

struct fs_provider {
	const char *name;
	/* Check the options, open what the mount needs, fill the root (or
	 * set its fill hook).  PATHS: the disks of the command line (only
	 * the local provider takes any).  0 or -errno, the message printed
	 * on stderr. */
	int (*open)(char *const *paths, size_t npaths);
	/* The FUSE worker threads it wants (NULL: one per disk, 1 to 8). */
	unsigned (*threads)(void);
	/* In the daemon, once serving: start what runs beside the tree and
	 * change the hints (NULL: nothing). */
	void (*start)(struct fs_serve_hints *h);
	/* After serving, before the tree is emptied: close the disks the
	 * provider holds itself (NULL: the tree's are closed with it). */
	void (*close_disks)(void);
	/* After the tree is emptied: what its disks used (a VMFS volume, a
	 * vSphere session, a temporary snapshot).  Also after a failed
	 * open. */
	void (*close)(void);
};

extern const struct fs_provider fs_local_provider, fs_vm_provider,
    fs_browse_provider, fs_lun_provider;

/* A disk file whose disk its provider opens on demand: NULL ops for an
 * ordinary one (its disk open for the mount's life). */
struct fs_file_ops {
	/* A FUSE open of N: open its disk if need be and hold it until
	 * put.  *KEEP_CACHE: may the page cache stay across opens.  0 or
	 * -errno (ENOENT: gone; EBUSY: no free slot in time). */
	int (*get)(struct fs_node *n, bool *keep_cache);
	void (*put)(struct fs_node *n);
	/* Its size and transport (in use or last used; NULL: never opened)
	 * while no disk may be open. */
	uint64_t (*size)(const struct fs_file *f);
	const char *(*transport)(const struct fs_file *f);
};

#endif

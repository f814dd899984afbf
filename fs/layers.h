/* Disks over disks, for the tree: a partition of a disk (partition.c) and
 * the scratch layer, a copy-on-write layer in front of a read-only disk
 * (scratch.c).  Both are struct disk wrappers: the alignment layer
 * (transports/align.c) serves them as any disk. */
#ifndef VMDKFS_LAYERS_H
#define VMDKFS_LAYERS_H

#include <stdbool.h>
#include <stdint.h>

#include "../transports/disk.h"

struct fs_node;

/* ---- The scratch layer (scratch.c) ---- */

/* Bytes of one chunk of the layer: what a first write into it copies up
 * from the disk below. */
#define SCRATCH_CHUNK (64u << 10)

/* Make the store every layer of the mount shares: DIR NULL: no layer;
 * "": memory; else a temporary file in DIR (unlinked at once).  MAX: the
 * bytes all layers together may hold.  0 or -errno with a message. */
int fs_scratch_open(const char *dir, uint64_t max);
/* Is the store open (disks are then wrapped by fs_add_disk)? */
bool fs_scratch_on(void);
/* Free the store (after every layer was closed). */
void fs_scratch_close(void);
/* A layer in front of UNDER (read-only or not: the layer never writes
 * it), in *OUT.  The layer takes UNDER and closes it; on failure (-ENOMEM)
 * UNDER stays the caller's. */
int fs_scratch_wrap(struct disk *under, struct disk **out);

/* ---- Partitions (partition.c) ---- */

/* Partition [START, START + SIZE) bytes of PARENT as a disk of its own,
 * in *OUT: PARENT's sector size, its reads, writes (clipped to the
 * partition: ENOSPC past its end) and allocation.  START and SIZE must be
 * multiples of the sector size and inside PARENT (-EINVAL).  The
 * partition does not own PARENT and never touches it when closed, so the
 * two close in any order; PARENT must outlive its use (the tree frees
 * every node at once, at unmount). */
int part_disk_open(struct disk *parent, uint64_t start, uint64_t size,
		   struct disk **out);

/* The expand hook of a disk node (FS_DISK): read its partition table and
 * add DISK-pN.raw beside it for each partition.  Called with the tree
 * locked, on the first lookup or listing of the disk's folder.  Never
 * fails the folder: odd tables and failed reads are logged (once, naming
 * the disk) and give no partition files; returns 0 or -ENOMEM. */
int fs_part_expand(struct fs_node *disk);

#endif

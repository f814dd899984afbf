/* struct disk: a logical disk as the file system sees it, reached through
 * one transport.  Transports implement whole-sector operations; the
 * alignment layer (align.c) turns any byte range into those, in one place.
 */
#ifndef VMDKFS_DISK_H
#define VMDKFS_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct disk;
struct lru;

/* Allocation kinds of block_status (the same values as enum vmdk_alloc). */
enum disk_alloc { DISK_DATA, DISK_ZERO, DISK_HOLE };

struct disk_ops {
	/* COUNT sectors from SECTOR; BUF aligned to d->mem_align. */
	int (*pread)(struct disk *d, void *buf, uint64_t sector,
		     uint64_t count);
	int (*pwrite)(struct disk *d, const void *buf, uint64_t sector,
		      uint64_t count);
	int (*flush)(struct disk *d);
	/* Allocation of sectors from SECTOR: *RUN of them share *KIND
	 * (enum disk_alloc).  NULL: all data. */
	int (*block_status)(struct disk *d, uint64_t sector, uint64_t count,
			    int *kind, uint64_t *run);
	/* Bytes the disk takes on its storage, for st_blocks.  NULL: its
	 * size. */
	uint64_t (*allocated)(struct disk *d);
	void (*close)(struct disk *d);
};

struct disk {
	const struct disk_ops *ops;
	const char *transport; /* name of the transport in use */
	char *path;	       /* what was opened, for messages and xattrs */
	char *lun; /* san: the LUN(s), partition and VMFS volume read, for
		      status and user.vmdkfs.lun (malloc'd); else NULL */
	uint64_t size;	       /* bytes */
	uint32_t sector_size;  /* bytes, a power of two */
	size_t mem_align;      /* buffer alignment the transport needs */
	uint64_t max_io;       /* bytes per backend call */
	uint32_t cid;
	bool readonly;
	struct lru *cache; /* optional read cache (EnableCache) */
	/* Optional, set by a wrapper that knows the allocation (areas.c), for
	 * a transport's own read-ahead: the first area of data that ends
	 * after byte OFF, [*START, *END) (*START may be before OFF); false if
	 * there is none.  NULL: the whole disk is data. */
	bool (*ahead_data)(void *arg, uint64_t off, uint64_t *start,
			   uint64_t *end);
	void *ahead_arg;
};

/* Read LEN bytes at byte OFF, any alignment.  Returns the number of bytes
 * read (short only at the end of the disk) or -errno. */
ssize_t disk_pread(struct disk *d, void *buf, size_t len, uint64_t off);

/* Write LEN bytes at byte OFF, any alignment: partial sectors are read,
 * patched and written back (serialised per sector).  Returns the number of
 * bytes written (short only at the end of the disk) or -errno; -ENOSPC at
 * or past the end. */
ssize_t disk_pwrite(struct disk *d, const void *buf, size_t len, uint64_t off);

/* Make all writes durable. */
int disk_flush(struct disk *d);

/* Allocation of the disk from byte OFF: is it data (*DATA true) or a hole
 * (unallocated, or known zeros), and for how many bytes (*LEN)? */
int disk_block_status(struct disk *d, uint64_t off, bool *data,
		      uint64_t *len);

/* Turn on the read cache of BYTES bytes (64 KiB blocks). */
int disk_enable_cache(struct disk *d, size_t bytes);

void disk_close(struct disk *d);

#endif

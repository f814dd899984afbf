/* Internals of the VMDK library, shared by its files. */
#ifndef VMDKFS_VMDK_INTERNAL_H
#define VMDKFS_VMDK_INTERNAL_H

#include <pthread.h>

#include "../common/lru.h"
#include "vmdk.h"

#define TABLE_PAGE 4096u
#define DEFAULT_TABLE_CACHE (16u << 20)
#define DEFAULT_GRAIN_CACHE (32u << 20)
#define MAX_DESCRIPTOR (1u << 20)

enum extent_fmt { FMT_FLAT, FMT_ZERO, FMT_VMDK4, FMT_COWD, FMT_SESPARSE };

enum map_kind { M_DATA, M_ZERO, M_UNALLOC, M_COMPRESSED, M_NOACCESS };

struct map {
	int kind;
	uint64_t count; /* sectors */
	uint64_t off;	/* bytes in the extent file (M_DATA, M_COMPRESSED) */
	uint64_t grain; /* grain index (M_COMPRESSED) */
};

struct extent {
	int access, type, fmt;
	uint64_t start, sectors; /* in the disk */
	char *path;
	struct source *src;
	uint64_t flat_off; /* bytes */
	struct vmdk_sparse_info h;
	struct lru *grains; /* inflated grains (compressed) */
	struct vmdk *v;
	/* Writing (hosted sparse): grain allocation is serialised. */
	pthread_mutex_t alloc_lock;
	uint64_t alloc_end; /* bytes: where the next grain goes */
};

struct vmdk {
	char *path;
	struct vmdk_desc desc;
	struct extent *ext;
	size_t next;
	uint64_t sectors;
	struct vmdk *parent;
	struct lru *tables; /* shared along the chain, owned by the top */
	bool owns_tables;
	size_t grain_cache_bytes;
	bool embedded; /* the descriptor lives in ext[0]'s file */
	bool writable;
	bool dirty; /* written since open: unclean flags set, CID changed */
	bool keep_desc; /* vmdk_options.keep_descriptor */
	/* where its files are opened (NULL: local files): parents are
	 * looked for through it too */
	const struct source_opener *opener;
	pthread_mutex_t write_lock;
};

static inline uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Read the SIZE-byte (4 or 8) entry at byte OFF of E's file, through the
 * table cache. */
int vmdk_read_entry(struct extent *e, uint64_t off, unsigned size,
		    uint64_t *out);
/* Map grain G of sparse extent E: kind (enum map_kind) and byte offset. */
int vmdk_grain_lookup(struct extent *e, uint64_t g, int *kind, uint64_t *off);
struct extent *vmdk_find_extent(struct vmdk *v, uint64_t sector);
/* Read COUNT sectors of parent P from SECTOR; zeros past its end or with
 * no parent. */
int vmdk_read_parent(struct vmdk *p, void *buf, uint64_t sector,
		     uint64_t count);

/* Open one link alone (no parents, read-only). */
int vmdk_open_link(const char *path, const struct vmdk_options *o,
		   struct vmdk **out);
/* The parent's path from V's parentFileNameHint (malloc'd). */
char *vmdk_parent_path(const struct vmdk *v);

/* write.c */
int vmdk_write_prepare(struct vmdk *v, bool allow_parent_write,
		       bool keep_descriptor);
void vmdk_write_close(struct vmdk *v);

#endif

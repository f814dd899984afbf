/* vmdk: the VMDK format library.  No FUSE, no network: it parses
 * descriptors and extent headers, opens each extent through a
 * struct source_opener given by the caller, follows parent links, and reads
 * whole sectors of the logical disk.
 *
 * Every function returns 0 or -errno; the message is in vmdkfs_errmsg().
 * Units: "sector" arguments are 512-byte sectors, "off"/"len" are bytes.
 */
#ifndef VMDKFS_VMDK_H
#define VMDKFS_VMDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/source.h"

#define VMDK_SECTOR 512u
#define VMDK_NO_PARENT 0xffffffffu
/* Largest disk accepted: 256 TiB (VMware's limit is 62 TB). */
#define VMDK_MAX_SECTORS (1ULL << 39)
/* Longest parent chain accepted. */
#define VMDK_MAX_CHAIN 255

enum vmdk_access { VMDK_RW, VMDK_RDONLY, VMDK_NOACCESS };

enum vmdk_type {
	VMDK_FLAT,
	VMDK_SPARSE,
	VMDK_ZERO,
	VMDK_VMFS,
	VMDK_VMFSSPARSE,
	VMDK_VMFSRDM,
	VMDK_VMFSRAW,
	VMDK_SESPARSE,
};

const char *vmdk_access_name(int access);
const char *vmdk_type_name(int type);

/* ---- Descriptor ---- */

struct vmdk_desc_extent {
	int access; /* enum vmdk_access */
	uint64_t sectors;
	int type;	 /* enum vmdk_type */
	char *file;	 /* NULL for ZERO */
	uint64_t offset; /* sectors, FLAT/VMFS only */
};

struct vmdk_kv {
	char *key, *value;
};

struct vmdk_desc {
	int version;
	uint32_t cid, parent_cid;
	bool has_cid;
	char *create_type;
	char *parent_hint; /* parentFileNameHint, or NULL */
	char *change_track_path;
	struct vmdk_desc_extent *extents;
	size_t nextents;
	struct vmdk_kv *ddb; /* ddb.* keys in file order */
	size_t nddb;
};

/* Parse descriptor TEXT of LEN bytes (it may contain NUL padding, which ends
 * it).  NAME is used in messages. */
int vmdk_desc_parse(const char *text, size_t len, const char *name,
		    struct vmdk_desc *d);
void vmdk_desc_free(struct vmdk_desc *d);

/* ---- Extent headers (exposed for unit tests and fuzzing) ---- */

#define VMDK4_MAGIC 0x564d444bu /* "KDMV" */
#define COWD_MAGIC 0x44574f43u	/* "COWD" */
#define SESPARSE_MAGIC 0xcafebabeULL
#define SESPARSE_VOLATILE_MAGIC 0xcafecafeULL
#define VMDK4_GD_AT_END 0xffffffffffffffffULL

#define VMDK4_FLAG_NL_TEST 0x1u
#define VMDK4_FLAG_RGD 0x2u
#define VMDK4_FLAG_ZEROED_GTE 0x4u
#define VMDK4_FLAG_COMPRESSED 0x10000u
#define VMDK4_FLAG_MARKERS 0x20000u

/* What a sparse extent header says, whatever its format. */
struct vmdk_sparse_info {
	uint32_t magic; /* VMDK4_MAGIC, COWD_MAGIC or 0xcafebabe */
	uint32_t version;
	uint32_t flags;
	uint64_t capacity;		 /* sectors */
	uint64_t grain;			 /* sectors */
	uint64_t desc_offset, desc_size; /* sectors (KDMV) */
	uint32_t gt_entries;		 /* entries per grain table */
	uint32_t entry_size;		 /* bytes per GD/GT entry: 4 or 8 */
	uint64_t gd_offset;		 /* bytes */
	uint64_t rgd_offset;		 /* bytes, 0 if none */
	uint64_t gd_entries;
	uint64_t gt_base;	  /* SEsparse: bytes of the first grain table */
	uint64_t gt_area;	  /* SEsparse: bytes of the grain-table area */
	uint64_t grains_base;	  /* SEsparse: bytes of the grain area */
	uint64_t grains_area;	  /* SEsparse: bytes */
	uint64_t volatile_offset; /* SEsparse: bytes */
	bool unclean;
	bool compressed, markers, zeroed_gte;
};

/* Parse a KDMV header (512 bytes at BUF) of a file of FILE_SIZE bytes. */
int vmdk4_header_parse(const uint8_t *buf, uint64_t file_size, const char *name,
		       struct vmdk_sparse_info *h);
/* Parse a COWD header (2048 bytes). */
int cowd_header_parse(const uint8_t *buf, uint64_t file_size, const char *name,
		      struct vmdk_sparse_info *h);
/* Parse an SEsparse constant header (512 bytes). */
int sesparse_header_parse(const uint8_t *buf, uint64_t file_size,
			  const char *name, struct vmdk_sparse_info *h);

/* ---- Disks ---- */

struct vmdk;

struct vmdk_options {
	const struct source_opener *opener; /* NULL: local files */
	bool writable;		 /* the top link; parents stay read-only */
	bool allow_parent_write; /* write even if another disk's parent */
	/* Only this link: no parents opened, its unallocated grains read as
	 * zeros and are holes (VDDK's VIXDISKLIB_FLAG_OPEN_SINGLE_LINK). */
	bool single_link;
	/* Writes change the data only: no unclean flag, no new CID, no
	 * look for children in the folder (san: the descriptor is a file on
	 * a VMFS volume that vmdkfs writes only the data blocks of). */
	bool keep_descriptor;
	size_t table_cache_bytes; /* grain tables; 0: default */
	size_t grain_cache_bytes; /* inflated grains; 0: default */
};

/* Open the disk described by PATH (a descriptor, or a sparse extent with
 * its descriptor embedded) and its parents. */
int vmdk_open(const char *path, const struct vmdk_options *o,
	      struct vmdk **out);
void vmdk_close(struct vmdk *v);

uint64_t vmdk_sectors(const struct vmdk *v);
const struct vmdk_desc *vmdk_descriptor(const struct vmdk *v);
const char *vmdk_path(const struct vmdk *v);
struct vmdk *vmdk_parent(const struct vmdk *v);

/* Read COUNT sectors from SECTOR (which must lie inside the disk). */
int vmdk_read(struct vmdk *v, void *buf, uint64_t sector, uint64_t count);

/* Write COUNT sectors at SECTOR (disk opened writable).  Hosted sparse
 * extents allocate grains; flat extents are written in place. */
int vmdk_write(struct vmdk *v, const void *buf, uint64_t sector,
	       uint64_t count);
/* Make every write so far durable (data and tables). */
int vmdk_flush(struct vmdk *v);

/* Allocation status of a run of sectors. */
enum vmdk_alloc { VMDK_ALLOC_DATA, VMDK_ALLOC_ZERO, VMDK_ALLOC_HOLE };

/* Status of the sectors from SECTOR: *RUN (<= COUNT) of them share *KIND,
 * looking through the whole chain. */
int vmdk_block_status(struct vmdk *v, uint64_t sector, uint64_t count,
		      int *kind, uint64_t *run);

/* Bytes the files of the chain take on their storage (their st_blocks),
 * at most the disk's size: what `du` shows for the flat file. */
uint64_t vmdk_allocated(struct vmdk *v);

struct vmdk_extent_info {
	int access, type;
	uint64_t start, sectors; /* in the disk */
	const char *path;	 /* resolved file, or NULL */
	uint64_t offset;	 /* sectors, flat */
	const char *format;	 /* "flat", "KDMV v1", "stream", ... */
	uint64_t grain;		 /* sectors, sparse; 0 flat */
	uint32_t gt_entries;
	uint64_t file_size;
};

size_t vmdk_extent_count(const struct vmdk *v);
void vmdk_extent_get(const struct vmdk *v, size_t i,
		     struct vmdk_extent_info *info);

#endif

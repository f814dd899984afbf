/* Internals of the VMFS reader, shared by its files.
 *
 * Layers, outside in: lvm.c maps the logical volume onto the devices;
 * volume.c reads the FS descriptor, bootstraps the resource system files
 * and owns the metadata cache; file.c parses file descriptors and resolves
 * a file offset to a volume offset through the address modes; dir.c lists
 * directories and resolves paths.
 *
 * Where each on-disk layout was confirmed is said next to the code that
 * reads it: "confirmed" means checked on both real volumes of
 * ../shared/testdata/vmfs (ESXi-made VMFS 5.81 and 6.82); "unconfirmed"
 * means taken from the public sources only (fox-it/dissect.vmfs, vmfs-tools)
 * because those volumes do not use it.
 */
#ifndef VMDKFS_VMFS_INTERNAL_H
#define VMDKFS_VMFS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/lru.h"
#include "vmfs.h"

#define LVM_HEADER_OFFSET 0x100000u
#define LVM_MAGIC 0xc001d00du
#define FS_DESC_OFFSET 0x200000u /* in the logical volume */
#define FS_MAGIC 0x2fabf15eu
#define FS_MAGIC_VMFSL 0x2fabf15fu
#define FS_MAJOR_VMFS5 14u
#define FS_MAJOR_VMFS6 24u

/* Address types: the low 3 bits of every address. */
enum {
	ADDR_NONE = 0,
	ADDR_FB = 1, /* file block; VMFS6: small file block */
	ADDR_SB = 2,
	ADDR_PB = 3,
	ADDR_FD = 4,
	ADDR_PB2 = 5,
	ADDR_JB = 6,
	ADDR_LFB = 7,
};

#define META_PAGE 4096u
#define DEFAULT_CACHE (8u << 20)
/* Resource reads nested inside resource reads (a pointer block of
 * .sbc.sf found through .pb2.sf ...): deeper means a loop. */
#define MAX_DEPTH 6

/* One piece of the logical volume: LEN bytes at LOFF are at POFF of DEV. */
struct vmfs_extent {
	uint64_t loff, len, poff;
	unsigned dev;
};

struct vmfs_dev {
	struct source *src;
	uint8_t uuid[16];
	uint64_t first_pe, last_pe;
};

/* A file descriptor, parsed.  RAW is the whole descriptor. */
struct vmfs_fd {
	uint32_t addr;
	char *label; /* for messages: ".sbc.sf", "/a/b", "descriptor 0x..." */
	uint32_t type, flags, mode, nlink, uid, gid, zla;
	uint32_t mtime, ctime, atime;
	uint64_t length, block_size, nblocks;
	unsigned shift; /* log2(block_size) */
	uint8_t *raw;
};

/* A resource file (.fdc.sf, .sbc.sf, .pbc.sf, .pb2.sf, .fbb.sf): its
 * metadata header and the descriptor that maps it. */
struct vmfs_res {
	const char *name;
	bool open;
	struct vmfs_fd *fd; /* owned; for FB and LFB shared with .fbb.sf */
	uint32_t rpc;	    /* resources per cluster */
	uint32_t cpg;	    /* clusters per cluster group */
	uint32_t cg_offset; /* of cluster group 0, in the file */
	uint32_t rsize;	    /* bytes of one resource */
	uint32_t cg_size;   /* bytes of one cluster group */
	uint32_t ncg;	    /* cluster groups */
	uint64_t nres;	    /* resources */
	uint32_t flags;
};

/* What one stretch of a file maps to. */
enum run_kind { RUN_DATA, RUN_HOLE, RUN_ZERO, RUN_RESIDENT };

struct vmfs_run {
	int kind;
	uint64_t voff; /* RUN_DATA: volume offset; RUN_RESIDENT: in fd->raw */
	uint64_t len;  /* bytes, >= 1 */
};

struct vmfs {
	char *name; /* for messages: the first device's name */
	struct vmfs_dev dev[VMFS_MAX_DEVICES];
	unsigned ndev;
	struct vmfs_extent *ext;
	size_t next;
	uint64_t size; /* of the logical volume */
	char lvm_uuid[36];

	int version; /* 5 or 6 */
	uint32_t major, minor, config;
	char label[129];
	char uuid[36];
	uint64_t fbs; /* file block size */
	unsigned fbs_shift;
	uint32_t sbs;	    /* sub-block size */
	uint32_t md;	    /* metadata alignment (512 on VMFS5) */
	unsigned lfb_shift; /* log2 of the large file block; 0 on VMFS5 */
	uint32_t sfb_rpc;   /* VMFS6: small file blocks per cluster */
	uint32_t fdc_cg_offset, fdc_cpg;
	uint64_t pb2_vol_addr;
	uint32_t pb2_fd_addr;

	/* File descriptor layout. */
	uint32_t fd_size, fd_meta, fd_res_off, fd_res_size;
	uint32_t fd_addr_off, fd_naddr, aw; /* aw: address width, 4 or 8 */
	uint32_t pb_entries;		    /* addresses per pointer block */
	unsigned pb_shift;

	struct vmfs_res res[8]; /* by address type */
	int opening;		/* while opening: the resource being opened */
	struct lru *cache;	/* META_PAGE pages of the volume */
};

static inline uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* log2 of X if X is a power of two, else -1. */
static inline int log2_exact(uint64_t x)
{
	if (x == 0 || (x & (x - 1)))
		return -1;
	return __builtin_ctzll(x);
}

/* "61137dd5-df6bc2c8-f0e7-000c29801686" from the 16 bytes at P (u32, u32,
 * u16 little-endian, then 6 bytes: confirmed, the label strings of both
 * volumes' LVM headers spell their UUIDs so). */
void vmfs_uuid_str(const uint8_t *p, char out[36]);

/* lvm.c: read the devices' LVM headers, build v->ext, v->size. */
int vmfs_lvm_open(struct vmfs *v);
/* Read LEN bytes at OFF of the logical volume (-EIO outside it). */
int vmfs_vol_read(struct vmfs *v, void *buf, size_t len, uint64_t off);
/* Write file data in place (never metadata: see vmfs_file_pwrite). */
int vmfs_vol_write(struct vmfs *v, const void *buf, size_t len, uint64_t off);

/* volume.c: the same through the metadata cache. */
int vmfs_meta_read(struct vmfs *v, void *buf, size_t len, uint64_t off);
/* Where (OFF, in the resource file for address type TYPE) LEN bytes at
 * POS of resource (CLUSTER, RESOURCE) lie, after checking that they exist;
 * WHAT names the address in messages. */
int vmfs_res_locate(struct vmfs *v, int type, uint64_t cluster,
		    uint32_t resource, uint32_t pos, size_t len,
		    const char *what, uint64_t *off);
/* Read LEN bytes at POS of resource (CLUSTER, RESOURCE) of the resource
 * file for address type TYPE; WHAT names the address in messages. */
int vmfs_res_read(struct vmfs *v, int type, uint64_t cluster, uint32_t resource,
		  void *buf, size_t len, uint32_t pos, int depth,
		  const char *what);
/* The cluster and resource of address ADDR (types SB, PB, PB2, FD). */
void vmfs_addr_res(const struct vmfs *v, uint64_t addr, uint64_t *cluster,
		   uint32_t *resource);

/* file.c */
/* Load the file descriptor at ADDR (through .fdc.sf) into a new fd;
 * LABEL names it in messages (NULL: "descriptor ADDR"). */
int vmfs_fd_load(struct vmfs *v, uint32_t addr, const char *label,
		 struct vmfs_fd **out);
/* Parse RAW (v->fd_size bytes, taken over) as the descriptor at ADDR. */
int vmfs_fd_parse(struct vmfs *v, uint32_t addr, uint8_t *raw,
		  const char *label, struct vmfs_fd **out);
void vmfs_fd_free(struct vmfs_fd *fd);
/* What byte OFF (< length) of FD maps to. */
int vmfs_fd_map(struct vmfs *v, struct vmfs_fd *fd, uint64_t off, int depth,
		struct vmfs_run *r);
/* Read LEN bytes at OFF of FD (inside its length); META: through the
 * metadata cache. */
int vmfs_fd_read(struct vmfs *v, struct vmfs_fd *fd, void *buf, size_t len,
		 uint64_t off, int depth, bool meta);
int vmfs_kind_of(uint32_t type, uint32_t mode);
void vmfs_fd_stat(const struct vmfs_fd *fd, struct vmfs_stat *st);

/* dir.c: resolve PATH to an fd (loaded; caller frees). */
int vmfs_resolve(struct vmfs *v, const char *path, bool follow,
		 struct vmfs_fd **out);

#endif

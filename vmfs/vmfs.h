/* vmfs: a reader of VMFS5 and VMFS6 volumes.  No FUSE, no network: the
 * caller gives the partitions (or whole-LUN images) of a datastore as
 * struct source, and gets back its directories, symlinks, file attributes
 * and file data, a file also as a struct source (so that vmdk/ opens a
 * VMDK chain stored on the volume unchanged).
 *
 * Read only.  Every function returns 0 or -errno, with the message in
 * vmdkfs_errmsg(): it names the volume, the structure (LVM header, FS
 * descriptor, a resource file, a file descriptor address or path) and the
 * problem.  Damaged input never crashes and never yields wrong bytes: it is
 * refused with -EINVAL (bad structure) or -EIO (read failed, truncated).
 *
 * Once opened, a volume and its files may be used from several threads at
 * once (the only shared mutable state is a bounded, locked metadata cache).
 * Units: "off", "len", "size" are bytes.
 */
#ifndef VMDKFS_VMFS_H
#define VMDKFS_VMFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/source.h"

struct vmfs;
struct vmfs_file;

/* The most devices (LUNs/partitions) a spanned volume may have here. */
#define VMFS_MAX_DEVICES 32
/* Longest name in a directory entry (VMFS6 has room for 256 bytes). */
#define VMFS_NAME_MAX 256
/* Symlinks followed while resolving one path. */
#define VMFS_MAX_SYMLINKS 40

struct vmfs_options {
	size_t cache_bytes; /* metadata cache; 0: 8 MiB */
};

struct vmfs_info {
	int version;	       /* 5 or 6 */
	uint32_t major, minor; /* FS descriptor version: 14.81, 24.82 */
	char label[129];
	char uuid[36];		   /* "61137dd5-df6bc2c8-f0e7-000c29801686" */
	char lvm_uuid[36];	   /* the logical volume's */
	uint64_t size;		   /* bytes of the logical volume */
	uint64_t block_size;	   /* file block (VMFS6: small file block) */
	uint64_t large_block_size; /* VMFS6 large file block; 0 on VMFS5 */
	uint32_t sub_block_size;
	uint32_t fd_size;      /* bytes of one file descriptor */
	uint32_t pb_size;      /* bytes of one pointer block's entries */
	uint32_t md_alignment; /* 512 on VMFS5 */
	unsigned devices;      /* devices the volume spans */
};

/* Open the volume made of the NDEVS devices DEVS (any order; each starts
 * with its LVM header at 1 MiB).  On success the volume owns the sources
 * and vmfs_close() closes them; on failure the caller still owns them.
 * O may be NULL. */
int vmfs_open(struct source *const *devs, size_t ndevs,
	      const struct vmfs_options *o, struct vmfs **out);
/* The same for local files or block devices. */
int vmfs_open_paths(const char *const *paths, size_t n,
		    const struct vmfs_options *o, struct vmfs **out);
void vmfs_close(struct vmfs *v);

void vmfs_get_info(const struct vmfs *v, struct vmfs_info *info);

/* ---- Files and directories ---- */

/* What a directory entry or file descriptor is.  A system file (.fdc.sf
 * ...) is VMFS_FILE, or VMFS_DIR when its mode says so (.sdd.sf). */
enum vmfs_kind { VMFS_DIR, VMFS_FILE, VMFS_SYMLINK, VMFS_RDM };

/* The file descriptor types (FS3_DescriptorType), in vmfs_stat.type. */
enum {
	VMFS_FD_DIRECTORY = 2,
	VMFS_FD_REGFILE = 3,
	VMFS_FD_SYMLINK = 4,
	VMFS_FD_SYSFILE = 5,
	VMFS_FD_RDM = 6,
};

/* Address modes (the "zero level address type"), in vmfs_stat.zla. */
enum {
	VMFS_ZLA_FILE_BLOCK = 1,
	VMFS_ZLA_SUB_BLOCK = 2,
	VMFS_ZLA_POINTER_BLOCK = 3,
	VMFS_ZLA_POINTER2_BLOCK = 5,
	VMFS_ZLA_DOUBLE_INDIRECT = 0x10d0,
	VMFS_ZLA_RESIDENT = 0x10d1,
};

struct vmfs_stat {
	uint32_t addr; /* file descriptor address: unique, an inode number */
	int kind;      /* enum vmfs_kind */
	uint32_t type; /* VMFS_FD_* */
	uint32_t mode; /* permission bits (07777) */
	uint32_t nlink, uid, gid;
	uint64_t size;		     /* bytes */
	int64_t mtime, ctime, atime; /* seconds since 1970 */
	uint64_t block_size;	     /* the file's block size */
	uint64_t blocks;	     /* blocks allocated (of block_size) */
	uint32_t zla;		     /* VMFS_ZLA_* */
};

struct vmfs_dirent {
	char name[VMFS_NAME_MAX + 1];
	int kind;      /* enum vmfs_kind from the entry's type alone (a system
			* file is VMFS_FILE: stat tells a directory), -1 if
			* the type is unknown */
	uint32_t type; /* VMFS_FD_*, as the entry says */
	uint32_t addr; /* of the entry's file descriptor */
};

/* The root directory's file descriptor address. */
#define VMFS_ROOT_ADDR 0x4u

/* Resolve PATH (absolute or relative to the root; "." and ".." work;
 * symlinks on the way are followed, the last component's only if FOLLOW)
 * to a file descriptor address.  A symlink target "/vmfs/volumes/NAME/..."
 * with NAME this volume's label or UUID is taken as inside this volume;
 * other absolute targets are -ENOENT. */
int vmfs_lookup(struct vmfs *v, const char *path, bool follow, uint32_t *addr);

/* Attributes of the file descriptor at ADDR. */
int vmfs_stat_addr(struct vmfs *v, uint32_t addr, struct vmfs_stat *st);
/* Attributes of PATH (not following a final symlink, as lstat). */
int vmfs_stat(struct vmfs *v, const char *path, struct vmfs_stat *st);

/* Call CB for every entry of the directory at ADDR but "." and "..", in
 * on-disk order; a non-zero return from CB stops the walk and is
 * returned. */
typedef int (*vmfs_dir_cb)(void *opaque, const struct vmfs_dirent *e);
int vmfs_readdir(struct vmfs *v, uint32_t addr, vmfs_dir_cb cb, void *opaque);

/* The target of the symlink at ADDR / PATH, NUL-terminated in BUF of SIZE
 * bytes (-ENAMETOOLONG if it does not fit). */
int vmfs_readlink_addr(struct vmfs *v, uint32_t addr, char *buf, size_t size);
int vmfs_readlink(struct vmfs *v, const char *path, char *buf, size_t size);

/* ---- File data ---- */

/* Open the regular or system file at PATH (symlinks followed) or ADDR.
 * The volume must outlive the file. */
int vmfs_file_open(struct vmfs *v, const char *path, struct vmfs_file **out);
int vmfs_file_open_addr(struct vmfs *v, uint32_t addr, struct vmfs_file **out);
void vmfs_file_close(struct vmfs_file *f);
uint64_t vmfs_file_size(const struct vmfs_file *f);
void vmfs_file_stat(const struct vmfs_file *f, struct vmfs_stat *st);

/* Read LEN bytes at OFF, which must lie inside the file (-EIO past the
 * end, as struct source).  Holes and to-be-zeroed blocks read as zeros. */
int vmfs_file_pread(struct vmfs_file *f, void *buf, size_t len, uint64_t off);

/* Write LEN bytes at OFF in place.  Every byte must lie in a file block
 * that is allocated and not to be zeroed (a thin file's hole, a
 * lazy-zeroed block, data resident in the descriptor or in sub-blocks
 * would need VMFS metadata to change): else -EROFS, and nothing is
 * written.  The volume's devices must be writable sources.  Never
 * allocates, never changes metadata. */
int vmfs_file_pwrite(struct vmfs_file *f, const void *buf, size_t len,
		     uint64_t off);
/* Can the whole file be written in place (as above)?  If not, WHY (SIZE
 * bytes) says why. */
bool vmfs_file_in_place(struct vmfs_file *f, char *why, size_t size);

/* Allocation of the file from OFF (< size): *RUN bytes (<= LEN, >= 1)
 * share *KIND.  VMFS_MAP_HOLE: no block (a thin file's unwritten part);
 * VMFS_MAP_ZERO: a block that is allocated but still to be zeroed (lazy
 * zeroed thick); both read as zeros and count as holes for SEEK_HOLE. */
enum vmfs_map_kind { VMFS_MAP_DATA, VMFS_MAP_HOLE, VMFS_MAP_ZERO };
int vmfs_file_map(struct vmfs_file *f, uint64_t off, uint64_t len, int *kind,
		  uint64_t *run);

/* Bytes the file takes on the volume (its blocks), for st_blocks. */
uint64_t vmfs_file_allocated(const struct vmfs_file *f);

/* The file at PATH (symlinks followed) as a read-only struct source named
 * "VOLUME:PATH"; its allocated() is vmfs_file_allocated().  The volume
 * must outlive the source. */
int vmfs_file_source(struct vmfs *v, const char *path, struct source **out);

/* An opener of paths inside V (for vmdk_options.opener): read-only (a
 * writable open is -EROFS).  V must outlive what it opens. */
void vmfs_opener_init(struct vmfs *v, struct source_opener *op);
/* The same, but a writable open succeeds for a file that can be written
 * in place whole (vmfs_file_in_place), on a volume opened over writable
 * devices; its source writes with vmfs_file_pwrite. */
void vmfs_opener_init_rw(struct vmfs *v, struct source_opener *op);

#endif

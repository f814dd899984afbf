/* part: a reader of MBR and GPT partition tables.  No FUSE, no network and
 * no I/O of its own: the disk is read through a callback.
 *
 * Odd tables never fail and never invent a partition: an entry that does
 * not fit (past the disk's end, overlapping an earlier one, starting at
 * sector 0, empty, outside its extended partition) is skipped with one
 * warning naming it; a broken EBR chain (a loop, a link outside the
 * extended partition, too many logicals) ends there.  Only reads fail.
 * Nothing outside [0, disk size) is ever read.
 *
 * Units: "start", "size", "off", "len" are bytes; sector numbers are in
 * the table's logical sectors (struct part_table's sector_size).
 */
#ifndef VMDKFS_PART_H
#define VMDKFS_PART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* LEN bytes at byte OFF into BUF; 0 or -errno (-EIO past the end). */
typedef int (*part_read_fn)(void *opaque, void *buf, size_t len, uint64_t off);
/* A warning about a skipped entry or a damaged structure: one line, no
 * newline. */
typedef void (*part_warn_fn)(void *opaque, const char *msg);

enum part_scheme { PART_NONE, PART_MBR, PART_GPT };

/* The most logical partitions followed in an EBR chain. */
#define PART_MAX_LOGICALS 128
/* The largest GPT entry array read (bytes). */
#define PART_GPT_MAX_ARRAY (4u << 20)

struct part_entry {
	/* As Linux numbers it: MBR primaries 1-4 by slot, logicals 5.. in
	 * chain order; GPT entry index + 1. */
	unsigned number;
	uint64_t start, size; /* bytes */
	uint8_t mbr_type;     /* MBR: the type byte; GPT: 0 */
	/* GPT: the type GUID, lower-case canonical
	 * ("aa31e02a-400f-11db-9590-000c2911d1b8"); MBR: "0xfb". */
	char type[37];
	/* GPT: the unique partition GUID; MBR: "SSSSSSSS-NN" (the disk
	 * signature in hex, the number), as Linux's PARTUUID, or "" when the
	 * signature is 0. */
	char uuid[37];
	char
	    name[109]; /* GPT: the name as UTF-8 (36 UTF-16LE units); MBR: "" */
	bool bootable; /* MBR: boot indicator 0x80 */
	uint64_t attrs; /* GPT: the attribute bits; MBR: 0 */
};

struct part_table {
	enum part_scheme scheme;
	uint32_t
	    sector_size; /* the logical sector size the table was found with */
	char disk_guid[37]; /* GPT: the disk GUID; MBR: "" */
	uint32_t disk_sig;  /* MBR: the disk signature (at 440); GPT: 0 */
	/* GPT: the primary header or entries were damaged, the backup header
	 * and its entries were used. */
	bool used_backup;
	size_t n;
	struct part_entry *e; /* sorted by number; malloc'd */
};

/* Read the partition table of a disk of DISK_SIZE bytes through RD.
 * SECTOR_SIZE: the logical sector size (a power of two, 512 to 65536), or
 * 0: MBR with 512; GPT tried with 512, then 4096 (4Kn LUNs).  WARN (may be
 * NULL) gets each warning.
 *
 * A GPT wins over a protective or hybrid MBR (one with a 0xEE entry);
 * without a valid GPT such an MBR gives no table (with a warning).  A disk
 * without the 0x55AA signature is still searched for a GPT (with a
 * warning when one is found).
 *
 * Returns 0, with T filled (scheme PART_NONE and n 0 when there is no
 * table), or -errno with a message in vmdkfs_errmsg() when a read failed
 * (-EINVAL for a bad SECTOR_SIZE, -ENOMEM); T is then empty.  Free T with
 * part_table_free() in either case. */
int part_read(part_read_fn rd, void *opaque, uint64_t disk_size,
	      uint32_t sector_size, part_warn_fn warn, void *wopaque,
	      struct part_table *t);
void part_table_free(struct part_table *t);

/* Well-known types */
#define PART_GPT_VMFS "aa31e02a-400f-11db-9590-000c2911d1b8"
#define PART_MBR_VMFS 0xfb

/* Whether E is a VMFS partition (GPT type PART_GPT_VMFS or MBR 0xFB). */
bool part_is_vmfs(const struct part_entry *e);

/* The partition numbered NUMBER in T, or NULL. */
const struct part_entry *part_find(const struct part_table *t, unsigned number);

#endif

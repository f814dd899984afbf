/* LUNs: a block device or an image of one (a whole LUN with a GPT or MBR,
 * or a bare VMFS partition), read with O_DIRECT through the alignment
 * layer, and the VMFS volume on one or more of them.  Shared by the san
 * transport and by -o lun= mounts.
 */
#ifndef VMDKFS_LUN_H
#define VMDKFS_LUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/source.h"

struct vmfs;

/* One device opened (refcounted: each partition source holds it). */
struct lun;

/* Open PATH read-only or read-write.  O_DIRECT with page-aligned buffers
 * and lengths in the device's logical sectors; a file that refuses
 * O_DIRECT (tmpfs, some FUSE file systems) is read buffered, with one log
 * line saying so. */
int lun_open(const char *path, bool writable, struct lun **out);
void lun_put(struct lun *l);
const char *lun_path(const struct lun *l);
bool lun_direct(const struct lun *l);
/* L as a struct disk (sector I/O through lun.c): the hotadd transport's
 * disk is a LUN too.  Owned by L. */
struct disk *lun_disk(struct lun *l);

/* The VMFS partition of L as a source: PARTNO > 0 that partition of the
 * table; 0 the one partition of VMFS type (GPT AA31E02A-..., MBR 0xFB),
 * else the one partition holding an LVM header, else the whole LUN if it
 * starts as a bare VMFS partition.  *NUMBER: the partition's number, 0
 * for the whole LUN.  The source holds a reference to L. */
int lun_vmfs_source(struct lun *l, unsigned partno, struct source **out,
		    unsigned *number);

/* A VMFS volume over the devices PATHS (each: partition PARTNO, 0 as
 * above).  DESC (malloc'd) describes what was opened, for messages,
 * xattrs and status: "PATH partition N, ..." */
int lun_open_vmfs(const char *const *paths, size_t n, unsigned partno,
		  bool writable, struct vmfs **out, char **desc);

/* The same over DEVICES, the lun= option's value: paths separated by ':'
 * (more than VMFS_MAX_DEVICES, or none, is refused). */
int lun_open_vmfs_list(const char *devices, unsigned partno, bool writable,
		       struct vmfs **out, char **desc);

#endif

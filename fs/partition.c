/* Partitions as files: beside each DISK.raw, DISK-pN.raw for each
 * partition of its MBR or GPT (part/), N as Linux numbers it.  A
 * partition is a disk over its parent disk: the parent's bytes, writes
 * and allocation, offset and bounded.  The table is read when the disk's
 * folder is first looked at (the tree's expand hook), not at mount. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "../part/part.h"
#include "fs.h"
#include "layers.h"

struct part_disk {
	struct disk d;
	struct disk *parent;
	uint64_t first; /* the partition's first sector on PARENT */
};

static struct part_disk *pd_of(struct disk *d)
{
	return (struct part_disk *)d;
}

static int part_pread(struct disk *d, void *buf, uint64_t sector,
		      uint64_t count)
{
	struct part_disk *p = pd_of(d);
	uint64_t len = count * d->sector_size;
	ssize_t n = disk_pread(p->parent, buf, len,
			       (p->first + sector) * d->sector_size);

	if (n >= 0 && (uint64_t)n != len)
		return -EIO; /* cannot be: the partition is inside */
	return n < 0 ? (int)n : 0;
}

static int part_pwrite(struct disk *d, const void *buf, uint64_t sector,
		       uint64_t count)
{
	struct part_disk *p = pd_of(d);
	uint64_t len = count * d->sector_size;
	ssize_t n = disk_pwrite(p->parent, buf, len,
				(p->first + sector) * d->sector_size);

	if (n >= 0 && (uint64_t)n != len)
		return -EIO;
	return n < 0 ? (int)n : 0;
}

static int part_flush(struct disk *d)
{
	return disk_flush(pd_of(d)->parent);
}

static int part_block_status(struct disk *d, uint64_t sector, uint64_t count,
			     int *kind, uint64_t *run)
{
	struct part_disk *p = pd_of(d);
	int r;

	if (!p->parent->ops->block_status) {
		*kind = DISK_DATA;
		*run = count;
		return 0;
	}
	r = p->parent->ops->block_status(p->parent, p->first + sector, count,
					 kind, run);
	if (r == 0 && *run > count)
		*run = count;
	return r;
}

static void part_close(struct disk *d)
{
	free(pd_of(d)); /* never the parent: it is its own node's */
}

static const struct disk_ops part_ops = {
    .pread = part_pread,
    .pwrite = part_pwrite,
    .flush = part_flush,
    .block_status = part_block_status,
    .close = part_close,
};

int part_disk_open(struct disk *parent, uint64_t start, uint64_t size,
		   struct disk **out)
{
	uint64_t ss = parent->sector_size;
	struct part_disk *p;

	if (start % ss || size % ss || size == 0 || start > parent->size ||
	    size > parent->size - start) {
		vmdkfs_error("bytes %llu+%llu: not whole %llu-byte sectors "
			     "inside the disk",
			     (unsigned long long)start,
			     (unsigned long long)size, (unsigned long long)ss);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->parent = parent;
	p->first = start / ss;
	/* The parent's names (shared, not owned), sector size and
	 * alignment; no cache (the parent's serves both) and no request
	 * limit (the parent splits its own). */
	p->d.ops = &part_ops;
	p->d.transport = parent->transport;
	p->d.path = parent->path;
	p->d.lun = parent->lun;
	p->d.size = size;
	p->d.sector_size = parent->sector_size;
	p->d.mem_align = parent->mem_align;
	p->d.cid = parent->cid;
	p->d.readonly = parent->readonly;
	*out = &p->d;
	return 0;
}

/* ---- Reading the table ---- */

struct expand_ctx {
	struct disk *disk;
	const char *shown; /* the disk's file, for messages */
};

static int table_read(void *opaque, void *buf, size_t len, uint64_t off)
{
	struct expand_ctx *c = opaque;
	ssize_t n = disk_pread(c->disk, buf, len, off);

	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

static void table_warn(void *opaque, const char *msg)
{
	struct expand_ctx *c = opaque;

	log_warn("%s: partition table: %s", c->shown, msg);
}

int fs_part_expand(struct fs_node *node)
{
	struct fs_file *f = node->file;
	struct part_table t;
	char shown[1024];
	struct expand_ctx c = {.disk = f->disk, .shown = shown};
	char name[256];
	size_t i, base;
	int r;

	fs_node_path(node, shown, sizeof(shown));
	r = part_read(table_read, &c, f->disk->size, f->disk->sector_size,
		      table_warn, &c, &t);
	if (r < 0) {
		log_warn("%s: partition table not read, no partition files: "
			 "%s",
			 shown, vmdkfs_errmsg());
		part_table_free(&t);
		return 0;
	}
	if (t.scheme != PART_NONE)
		log_info("%s: %s partition table%s, %zu partition(s)", shown,
			 t.scheme == PART_GPT ? "GUID" : "MBR",
			 t.used_backup ? " (the backup: the primary is "
					 "damaged)"
				       : "",
			 t.n);
	base = strlen(node->name);
	if (base > 4 && strcmp(node->name + base - 4, ".raw") == 0)
		base -= 4;
	for (i = 0; i < t.n && r == 0; i++) {
		const struct part_entry *e = &t.e[i];
		struct disk *pd;

		snprintf(name, sizeof(name), "%.*s-p%u.raw", (int)base,
			 node->name, e->number);
		if (part_disk_open(f->disk, e->start, e->size, &pd) < 0) {
			log_warn("%s: partition %u: %s; no file for it", shown,
				 e->number, vmdkfs_errmsg());
			continue;
		}
		if (!fs_add_partition(node, name, pd, e)) {
			log_warn("%s: partition %u: no file %s (the name is "
				 "taken, or out of memory)",
				 shown, e->number, name);
			disk_close(pd);
		}
	}
	part_table_free(&t);
	return r;
}

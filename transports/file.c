/* The file transport: a VMDK chain on a local (or NFS-mounted) file
 * system, read through vmdk/. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../vmdk/vmdk.h"
#include "transport.h"

struct file_disk {
	struct disk d;
	struct vmdk *v;
	void (*release)(void *);
	void *release_arg;
};

static int file_pread(struct disk *d, void *buf, uint64_t sector,
		      uint64_t count)
{
	return vmdk_read(((struct file_disk *)d)->v, buf, sector, count);
}

static int file_pwrite(struct disk *d, const void *buf, uint64_t sector,
		       uint64_t count)
{
	struct file_disk *f = (struct file_disk *)d;
	int r = vmdk_write(f->v, buf, sector, count);

	d->cid = vmdk_descriptor(f->v)->cid; /* the first write changes it */
	return r;
}

static int file_flush(struct disk *d)
{
	return vmdk_flush(((struct file_disk *)d)->v);
}

static int file_block_status(struct disk *d, uint64_t sector, uint64_t count,
			     int *kind, uint64_t *run)
{
	int r = vmdk_block_status(((struct file_disk *)d)->v, sector, count,
				  kind, run);

	if (r == 0)
		*kind = *kind == VMDK_ALLOC_DATA   ? DISK_DATA
			: *kind == VMDK_ALLOC_ZERO ? DISK_ZERO
						   : DISK_HOLE;
	return r;
}

static void file_close(struct disk *d)
{
	struct file_disk *f = (struct file_disk *)d;

	vmdk_close(f->v);
	if (f->release)
		f->release(f->release_arg);
	free(d->path);
	free(d->lun);
	free(f);
}

static uint64_t file_allocated(struct disk *d)
{
	return vmdk_allocated(((struct file_disk *)d)->v);
}

static const struct disk_ops file_ops = {
    .pread = file_pread,
    .pwrite = file_pwrite,
    .flush = file_flush,
    .block_status = file_block_status,
    .allocated = file_allocated,
    .close = file_close,
};

int vmdk_disk_open(const struct disk_spec *spec, const char *name,
		   void (*release)(void *), void *arg, struct disk **out)
{
	struct vmdk_options o = {
	    .writable = !spec->readonly,
	    .allow_parent_write = spec->allow_parent_write,
	    .single_link = spec->single_link,
	    .keep_descriptor = spec->keep_descriptor,
	    .table_cache_bytes = spec->table_cache_bytes,
	    .grain_cache_bytes = spec->grain_cache_bytes,
	    .opener = spec->opener,
	};
	struct file_disk *f = calloc(1, sizeof(*f));
	int r;

	if (!f)
		return -ENOMEM;
	r = vmdk_open(spec->path, &o, &f->v);
	if (r < 0) {
		free(f);
		return r;
	}
	f->d.ops = &file_ops;
	f->d.transport = name;
	f->release = release;
	f->release_arg = arg;
	f->d.path = strdup(spec->path);
	f->d.size = vmdk_sectors(f->v) * VMDK_SECTOR;
	f->d.sector_size = VMDK_SECTOR;
	f->d.mem_align = 1;
	f->d.max_io = 32u << 20;
	f->d.cid = vmdk_descriptor(f->v)->cid;
	f->d.readonly = spec->readonly;
	*out = &f->d;
	return 0;
}

static int file_open(const struct disk_spec *spec, struct disk **out)
{
	return vmdk_disk_open(spec, "file", NULL, NULL, out);
}

/* The file transport needs the disk on a local path: a local disk, or a
 * vSphere disk whose datastore is mapped to a local folder. */
static bool file_available(const struct disk_spec *spec, char *why,
			   size_t size)
{
	const char *end;

	if (spec->path)
		return true;
	end = spec->ds_path ? strchr(spec->ds_path, ']') : NULL;
	if (spec->ds_path && spec->ds_path[0] == '[' && end)
		snprintf(why, size,
			 "datastore %.*s is not mapped to a local folder (give "
			 "-o datastore.%.*s=/local/folder)",
			 (int)(end - spec->ds_path - 1), spec->ds_path + 1,
			 (int)(end - spec->ds_path - 1), spec->ds_path + 1);
	else
		snprintf(why, size, "no local path for this disk");
	return false;
}

const struct transport file_transport = {
    .name = "file",
    .available = file_available,
    .open_disk = file_open,
};

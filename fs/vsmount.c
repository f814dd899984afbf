/* A VM's snapshot disks in the tree: the VM opened for access by
 * transports/vm.c (ConnectEx, PrepareForAccess, snapshot=new), a folder
 * per snapshot with a flat file per disk and, with changed_since=, its
 * views (fs/cbt.c); at the end the VM closed (the temporary snapshot
 * removed, EndAccess).  vmdkfs cleanup is vm_cleanup.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "../transports/vm.h"
#include "../vsphere/vsphere.h"
#include "cbt.h"
#include "fs.h"
#include "provider.h"

static struct vm_access *vma;

/* A folder name for NAME not used yet. */
static void unique_dir(const char *name, char *out, size_t size)
{
	char base[200];
	int k;

	fs_dir_name(name, base, sizeof(base));
	snprintf(out, size, "%s", base);
	for (k = 2; fs_dir_exists(out); k++)
		snprintf(out, size, "%s-%d", base, k);
}

/* Open the disks of snapshot SNAP (NULL: the VM's current disks) into
 * folder DIR. */
static int add_disks(const char *snap, const char *dir)
{
	struct vs_conn *conn = vm_conn(vma);
	const char *vm = vm_info(vma)->moref;
	struct vs_disk *disks;
	size_t n, i;
	int r;

	r = vs_disks(conn, vm, snap, &disks, &n);
	if (r < 0)
		return r;
	for (i = 0; i < n && r == 0; i++) {
		bool views = config_changed_since(&fs_cfg, disks[i].key) != NULL;
		struct fs_file *f;
		struct disk *d;
		char *path = NULL;

		r = vm_disk_open(&fs_cfg, conn, vm, snap, &disks[i],
				 !fs_cfg.rw, views, &d, &path);
		if (r < 0)
			break;
		/* The source: the local descriptor, or the datastore path
		 * when the disk is reached over the network. */
		if (!path && !(path = strdup(disks[i].file))) {
			disk_close(d);
			r = -ENOMEM;
			break;
		}
		f = fs_add(dir, disks[i].label ? disks[i].label : path, d,
			   path);
		if (!f) {
			disk_close(d);
			free(path);
			r = -ENOMEM;
			break;
		}
		f->ds_path = strdup(disks[i].file);
		f->change_id =
		    disks[i].change_id ? strdup(disks[i].change_id) : NULL;
		f->device_key = disks[i].key;
		f->vm = strdup(vm);
		f->snapshot = snap ? strdup(snap) : NULL;
		/* changed_since=: DISK.changed.json/.raw (fs/cbt.c). */
		r = fs_cbt_views(conn, vm, snap, dir, f, &disks[i]);
	}
	vs_disks_free(disks, n);
	return r;
}

static int vsphere_open(char *const *paths, size_t npaths)
{
	const struct vs_snapshot *snap = NULL;
	const struct vs_vm *vm;
	char dir[256];
	int r;

	(void)paths, (void)npaths;
	if (!fs_cfg.vm) {
		fprintf(stderr, "vmdkfs: server=%s: give vm=\n", fs_cfg.server);
		return -EINVAL;
	}
	r = vm_open(&fs_cfg, NULL, &vma);
	if (r == 0)
		r = vm_snapshot(vma, &snap);
	if (r < 0)
		goto fail;
	vm = vm_info(vma);
	if (fs_cfg.snapshot && strcmp(fs_cfg.snapshot, "all") == 0) {
		size_t i;

		/* Every snapshot, a folder each (names made unique). */
		for (i = 0; i < vm->nsnaps && r == 0; i++) {
			const struct vs_snapshot *s = &vm->snaps[i];

			unique_dir(s->name ? s->name : s->moref, dir,
				   sizeof(dir));
			r = add_disks(s->moref, dir);
		}
	} else if (snap) {
		fs_dir_name(snap->name ? snap->name : snap->moref, dir,
			    sizeof(dir));
		r = add_disks(snap->moref, dir);
	} else {
		r = add_disks(NULL, "current");
	}
	if (r == 0)
		return 0;
fail:
	fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
	return r;
}

/* After the tree's disks are closed (main.c, after sig_cleanup_begin). */
static void vsphere_close(void)
{
	vm_close(vma);
	vma = NULL;
}

const struct fs_provider fs_vm_provider = {
    .name = "vm",
    .open = vsphere_open,
    .close = vsphere_close,
};

/* -o lun=DEV[:DEV...]: a VMFS volume (LUNs, partitions or their images)
 * mounted read-only, whole: its folders (filled as they are first looked
 * at), files and symbolic links as they are, and beside each VMDK
 * descriptor a flat file of its disk (NAME.raw), read through vmdk/ from
 * the volume itself. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/err.h"
#include "../transports/lun.h"
#include "../transports/transport.h"
#include "../vmfs/vmfs.h"
#include "fs.h"
#include "provider.h"

static struct {
	struct vmfs *vol;
	struct source_opener opener;
	char *devices; /* as given, for messages */
	char *desc;    /* what was opened: devices, partitions, volume */
} lun;

/* The VMFS path of node N ("/dir/file"). */
static void vmfs_path(const struct fs_node *n, char *out, size_t size)
{
	if (!n->parent) {
		snprintf(out, size, "/");
		return;
	}
	vmfs_path(n->parent, out, size);
	snprintf(out + strlen(out), size - strlen(out), "%s%s",
		 out[strlen(out) - 1] == '/' ? "" : "/", n->name);
}

/* Is NAME a VMDK descriptor's name (not an extent: -flat, -delta,
 * -sesparse, -ctk, -rdm)? */
static bool descriptor_name(const char *name)
{
	static const char *const extents[] = {"-flat.vmdk", "-delta.vmdk",
					      "-sesparse.vmdk", "-ctk.vmdk",
					      "-rdm.vmdk", "-rdmp.vmdk"};
	size_t n = strlen(name), i;

	if (n < 5 || strcasecmp(name + n - 5, ".vmdk") != 0)
		return false;
	for (i = 0; i < sizeof(extents) / sizeof(extents[0]); i++) {
		size_t k = strlen(extents[i]);

		if (n > k && strcasecmp(name + n - k, extents[i]) == 0)
			return false;
	}
	return true;
}

/* The disk of descriptor PATH, as a flat file in DIR.  A descriptor that
 * does not open (a damaged or missing extent) is left as a plain file,
 * with the reason in the log. */
static void add_disk(struct fs_node *dir, const char *name, const char *path)
{
	struct disk_spec spec = {
	    .path = path,
	    .readonly = true,
	    .opener = &lun.opener,
	    .table_cache_bytes = fs_cfg.table_cache,
	    .grain_cache_bytes = fs_cfg.grain_cache,
	};
	struct disk *d;
	char *source;

	if (vmdk_disk_open(&spec, "san", NULL, NULL, &d) < 0) {
		log_warn("%s: no flat file: %s", path, vmdkfs_errmsg());
		return;
	}
	d->lun = strdup(lun.desc);
	if (asprintf(&source, "%s:%s", lun.devices, path) < 0 ||
	    !fs_add_disk(dir, name, d, source)) {
		disk_close(d);
		return;
	}
}

static int fill_dir(struct fs_node *dir, void *arg);

/* Node N shows the volume's permission bits MODE, less write (the mount
 * is read-only). */
static void set_mode(struct fs_node *n, uint32_t mode)
{
	n->mode = mode & 07555;
	n->has_mode = true;
}

/* A folder's entries, gathered first: they are added to the tree after
 * the directory walk (opening a descriptor's disk reads the volume). */
struct fill_ctx {
	struct vmfs_dirent *ents;
	size_t n, cap;
};

static int gather(void *opaque, const struct vmfs_dirent *e)
{
	struct fill_ctx *c = opaque;

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		struct vmfs_dirent *ents =
		    realloc(c->ents, cap * sizeof(*ents));

		if (!ents)
			return -ENOMEM;
		c->ents = ents;
		c->cap = cap;
	}
	c->ents[c->n++] = *e;
	return 0;
}

/* Add entry E of folder DIR (VMFS path DIRPATH) to the tree.  A damaged
 * entry is left out (logged), not the folder. */
static int add_entry(struct fs_node *dir, const char *dirpath,
		     const struct vmfs_dirent *e)
{
	struct vmfs_stat st;
	char path[4096 + VMFS_NAME_MAX + 2], target[4096];
	struct source *src;
	struct fs_node *n;
	int r;

	snprintf(path, sizeof(path), "%s%s%s", dirpath,
		 strcmp(dirpath, "/") == 0 ? "" : "/", e->name);
	r = vmfs_stat_addr(lun.vol, e->addr, &st);
	if (r < 0) {
		log_warn("%s: %s", path, vmdkfs_errmsg());
		return 0;
	}
	switch (st.kind) {
	case VMFS_DIR:
		n = fs_mkdir(dir, e->name);
		if (!n)
			return -ENOMEM;
		n->mtime = (time_t)st.mtime;
		set_mode(n, st.mode);
		fs_set_fill(n, fill_dir, (void *)(uintptr_t)e->addr);
		return 0;
	case VMFS_SYMLINK:
		r = vmfs_readlink_addr(lun.vol, e->addr, target,
				       sizeof(target));
		if (r < 0) {
			log_warn("%s: %s", path, vmdkfs_errmsg());
			return 0;
		}
		return fs_add_link(dir, e->name, target, (time_t)st.mtime)
			   ? 0
			   : -ENOMEM;
	case VMFS_FILE:
		r = vmfs_file_source(lun.vol, path, &src);
		if (r < 0) {
			log_warn("%s: %s", path, vmdkfs_errmsg());
			return 0;
		}
		n = fs_add_file(dir, e->name, src, (time_t)st.mtime);
		if (!n) {
			source_close(src);
			return -ENOMEM;
		}
		set_mode(n, st.mode);
		if (descriptor_name(e->name) && st.size < (1u << 20))
			add_disk(dir, e->name, path);
		return 0;
	default:
		log_info("%s: a raw device mapping: not shown", path);
		return 0;
	}
}

/* Fill folder DIR, whose file descriptor address is ARG, from the volume.
 * Called with the tree locked. */
static int fill_dir(struct fs_node *dir, void *arg)
{
	struct fill_ctx c = {0};
	char path[4096];
	size_t i;
	int r;

	vmfs_path(dir, path, sizeof(path));
	r = vmfs_readdir(lun.vol, (uint32_t)(uintptr_t)arg, gather, &c);
	for (i = 0; r == 0 && i < c.n; i++)
		r = add_entry(dir, path, &c.ents[i]);
	free(c.ents);
	return r;
}

static int open_devices(const char *devices, unsigned partno)
{
	struct vmfs_info info;
	int r;

	r = lun_open_vmfs_list(devices, partno, false, &lun.vol, &lun.desc);
	if (r < 0)
		return r;
	lun.devices = strdup(devices);
	if (!lun.devices) {
		return -ENOMEM;
	}
	vmfs_opener_init(lun.vol, &lun.opener);
	vmfs_get_info(lun.vol, &info);
	log_info("lun=%s: %s: VMFS%d (%u.%u) \"%s\", %u device(s)", devices,
		 lun.desc, info.version, info.major, info.minor, info.label,
		 info.devices);
	fs_set_fill(fs_root(), fill_dir, (void *)(uintptr_t)VMFS_ROOT_ADDR);
	return 0;
}

static void lun_close(void)
{
	if (lun.vol)
		vmfs_close(lun.vol);
	lun.vol = NULL;
	free(lun.devices);
	lun.devices = NULL;
	free(lun.desc);
	lun.desc = NULL;
}

/* lun=DEV[:DEV...] (partition= of each): the volume's root is the
 * mount's. */
static int lun_provider_open(char *const *paths, size_t npaths)
{
	int r;

	(void)paths, (void)npaths;
	r = open_devices(fs_cfg.lun, (unsigned)fs_cfg.partition);
	if (r < 0)
		fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
	return r;
}

const struct fs_provider fs_lun_provider = {
    .name = "lun",
    .open = lun_provider_open,
    .close = lun_close,
};

/* The tree of flat files and the FUSE callbacks. */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse.h>
#include <pthread.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/sig.h"
#include "../common/source.h"
#include "../part/part.h"
#include "fs.h"
#include "provider.h"

struct config fs_cfg;

/* The tree: folders and disks, any depth.  Nodes are made before the
 * mount is served (and, later, by providers that fill folders as they are
 * first looked at) and freed only by fs_close_all(), so a FUSE file
 * handle can hold a node's address.  tree_lock guards the structure (the
 * children of every folder); a disk's own I/O needs no lock here.  It is
 * recursive: a folder's filler adds to the tree while a lookup holds it. */
static pthread_mutex_t tree_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

static struct {
	struct fs_node root;
	time_t mount_time;
	uid_t uid;
	gid_t gid;
	const struct fs_provider *provider; /* what fills the tree */
	fs_expand_fn *expand;		    /* every disk's, or NULL */
	fs_layer_fn *layer;		    /* in front of every disk, or NULL */
} fs = {.root = {.kind = FS_DIR}};

/* ---- Names ---- */

void fs_flat_name(const char *path, char *out, size_t size)
{
	const char *base = strrchr(path, '/');
	size_t n, i;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n > 5 && strcasecmp(base + n - 5, ".vmdk") == 0)
		n -= 5;
	if (n > size - 5)
		n = size - 5;
	for (i = 0; i < n; i++) {
		char c = base[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			  c == '+' || c == '-';

		out[i] = ok ? c : '_';
	}
	if (n == 0)
		out[n++] = '_';
	if (out[0] == '-' || out[0] == '.')
		out[0] = '_';
	memcpy(out + n, ".raw", 5);
}

void fs_dir_name(const char *name, char *out, size_t size)
{
	fs_flat_name(name, out, size);
	out[strlen(out) - 4] = '\0'; /* no ".raw" */
}

/* The child of DIR named NAME (LEN bytes), or NULL.  Called with
 * tree_lock held. */
static struct fs_node *child(const struct fs_node *dir, const char *name,
			     size_t len)
{
	size_t i;

	for (i = 0; i < dir->nkids; i++)
		if (!dir->kids[i]->gone && /* browse.c: gone, hidden */
		    strlen(dir->kids[i]->name) == len &&
		    memcmp(dir->kids[i]->name, name, len) == 0)
			return dir->kids[i];
	return NULL;
}

/* Run the expand hooks still due in folder DIR (partitions beside each
 * disk), each once.  Kids added meanwhile are appended: the loop reads
 * the array afresh.  Called with tree_lock held. */
static void expand_kids(struct fs_node *dir)
{
	size_t i;

	dir->expand_pending = false;
	for (i = 0; i < dir->nkids; i++) {
		struct fs_node *k = dir->kids[i];
		fs_expand_fn *fn = k->expand;

		if (!fn)
			continue;
		k->expand = NULL;
		if (fn(k) < 0)
			log_error("%s: %s", k->name, vmdkfs_errmsg());
	}
}

/* Fill folder N if it is filled lazily and not yet, then expand its
 * disks.  0 or -errno.  Called with tree_lock held. */
static int filled(struct fs_node *n)
{
	int r;

	if (n->kind != FS_DIR)
		return 0;
	if (n->fill) {
		r = n->fill(n, n->fill_arg);
		if (r < 0) {
			log_error("%s: %s", n->name[0] ? n->name : "/",
				  vmdkfs_errmsg());
			return r;
		}
		n->fill = NULL;
	}
	/* Browsing (fs/browse.c): filled again once stale. */
	if (n->refill && time(NULL) >= n->fresh_until) {
		r = n->refill(n, n->fill_arg);
		if (r < 0) {
			log_error("%s: %s", n->name[0] ? n->name : "/",
				  vmdkfs_errmsg());
			return r;
		}
	}
	if (n->expand_pending)
		expand_kids(n);
	return 0;
}

/* The node of an absolute PATH, or NULL with *ERR -ENOENT (or a folder's
 * filling error). */
static struct fs_node *lookup_err(const char *path, int *err)
{
	struct fs_node *n = &fs.root;

	*err = -ENOENT;
	if (path[0] != '/')
		return NULL;
	pthread_mutex_lock(&tree_lock);
	while (n && *path) {
		size_t len;
		int r;

		while (*path == '/')
			path++;
		len = strcspn(path, "/");
		if (len == 0)
			break;
		if (n->kind != FS_DIR) {
			*err = -ENOTDIR;
			n = NULL;
			break;
		}
		r = filled(n);
		if (r < 0) {
			*err = -EIO;
			n = NULL;
			break;
		}
		if (n->gone) { /* browse.c: its refill found it gone */
			n = NULL;
			break;
		}
		{
			struct fs_node *dir = n;

			n = child(dir, path, len);
			/* A name its provider makes only when asked (a browsed
			 * disk's partition, before the disk was opened); the
			 * tree is unlocked meanwhile (the provider may wait),
			 * nodes are never freed. */
			if (!n && dir->miss && len < 256) {
				char name[256];

				snprintf(name, sizeof(name), "%.*s", (int)len,
					 path);
				pthread_mutex_unlock(&tree_lock);
				if (dir->miss(dir, name)) {
					pthread_mutex_lock(&tree_lock);
					n = child(dir, path, len);
				} else {
					pthread_mutex_lock(&tree_lock);
				}
			}
		}
		path += len;
	}
	pthread_mutex_unlock(&tree_lock);
	return n;
}

static struct fs_node *lookup(const char *path)
{
	int err;

	return lookup_err(path, &err);
}

/* A new child of DIR named NAME; NULL on ENOMEM.  Called with tree_lock
 * held. */
static struct fs_node *add_child(struct fs_node *dir, enum fs_kind kind,
				 const char *name)
{
	struct fs_node **kids, *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	kids = realloc(dir->kids, (dir->nkids + 1) * sizeof(*kids));
	if (!kids) {
		free(n);
		return NULL;
	}
	dir->kids = kids;
	n->kind = kind;
	n->parent = dir;
	snprintf(n->name, sizeof(n->name), "%s", name);
	kids[dir->nkids++] = n;
	return n;
}

struct fs_node *fs_root(void)
{
	return &fs.root;
}

struct fs_node *fs_mkdir(struct fs_node *parent, const char *name)
{
	struct fs_node *n;

	pthread_mutex_lock(&tree_lock);
	n = child(parent, name, strlen(name));
	if (n && n->kind != FS_DIR)
		n = NULL; /* the name is a file's */
	else if (!n)
		n = add_child(parent, FS_DIR, name);
	pthread_mutex_unlock(&tree_lock);
	return n;
}

bool fs_dir_exists(const char *dir)
{
	struct fs_node *n;

	pthread_mutex_lock(&tree_lock);
	n = child(&fs.root, dir, strlen(dir));
	pthread_mutex_unlock(&tree_lock);
	return n && n->kind == FS_DIR;
}

void fs_node_path(const struct fs_node *n, char *out, size_t size)
{
	if (n->parent && n->parent->parent) {
		fs_node_path(n->parent, out, size);
		snprintf(out + strlen(out), size - strlen(out), "/%s", n->name);
	} else {
		snprintf(out, size, "%s", n->name);
	}
}

struct fs_node *fs_add_disk(struct fs_node *dir, const char *name_hint,
			    struct disk *disk, char *source)
{
	struct fs_file *f = calloc(1, sizeof(*f));
	struct fs_node *n = NULL;
	char base[240], name[256], shown[1024];
	int k;

	if (!f)
		return NULL;
	fs_flat_name(name_hint, base, sizeof(base));
	snprintf(name, sizeof(name), "%s", base);
	pthread_mutex_lock(&tree_lock);
	/* Files and folders share the names of a folder. */
	for (k = 2; child(dir, name, strlen(name)); k++)
		snprintf(name, sizeof(name), "%.*s-%d.raw",
			 (int)(strlen(base) - 4), base, k);
	n = add_child(dir, FS_DISK, name);
	/* Partitions and the scratch layer: a disk of a read-only mount
	 * gets a scratch layer in front (its partitions then go through
	 * it, so both see one layer), and its partition files are made on
	 * the first look at its folder. */
	if (n && fs.layer && fs.layer(disk, &disk) < 0) {
		dir->nkids--;
		free(n);
		n = NULL;
	}
	if (n && fs.expand) {
		n->expand = fs.expand;
		dir->expand_pending = true;
	}
	pthread_mutex_unlock(&tree_lock);
	if (!n) {
		free(f);
		return NULL;
	}
	f->device_key = -1;
	f->disk = disk;
	f->source = source;
	n->file = f;
	fs_node_path(n, shown, sizeof(shown));
	log_info("%s: %s, %llu bytes, transport %s%s", shown, source,
		 (unsigned long long)disk->size, disk->transport,
		 fs.layer ? ", scratch layer" : "");
	return n;
}

struct fs_node *fs_add_partition(struct fs_node *disk, const char *name,
				 struct disk *pdisk, const struct part_entry *e)
{
	struct fs_file *f = calloc(1, sizeof(*f)), *of = disk->file;
	struct fs_node *n = NULL;

	if (!f || !(f->part = malloc(sizeof(*e))) ||
	    !(f->source = strdup(of->source)))
		goto out_free;
	*f->part = *e;
	f->disk = pdisk;
	f->device_key = of->device_key;
	/* The vSphere facts are the disk's (set after fs_add_disk). */
	f->ds_path = of->ds_path ? strdup(of->ds_path) : NULL;
	f->change_id = of->change_id ? strdup(of->change_id) : NULL;
	f->vm = of->vm ? strdup(of->vm) : NULL;
	f->snapshot = of->snapshot ? strdup(of->snapshot) : NULL;
	pthread_mutex_lock(&tree_lock);
	if (!child(disk->parent, name, strlen(name)))
		n = add_child(disk->parent, FS_DISK, name);
	if (n)
		n->file = f;
	pthread_mutex_unlock(&tree_lock);
	if (n) {
		log_info("%s: partition %u of %s, bytes %llu+%llu, type %s",
			 name, e->number, disk->name,
			 (unsigned long long)e->start,
			 (unsigned long long)e->size, e->type);
		return n;
	}
out_free:
	if (f) {
		free(f->part);
		free(f->source);
		free(f->ds_path);
		free(f->change_id);
		free(f->vm);
		free(f->snapshot);
		free(f);
	}
	return NULL;
}

struct fs_node *fs_add_file(struct fs_node *dir, const char *name,
			    struct source *src, time_t mtime)
{
	struct fs_node *n = NULL;

	pthread_mutex_lock(&tree_lock);
	if (!child(dir, name, strlen(name)))
		n = add_child(dir, FS_FILE, name);
	if (n) {
		n->src = src;
		n->mtime = mtime;
	}
	pthread_mutex_unlock(&tree_lock);
	return n;
}

struct fs_node *fs_add_link(struct fs_node *dir, const char *name,
			    const char *target, time_t mtime)
{
	struct fs_node *n = NULL;
	char *t = strdup(target);

	if (!t)
		return NULL;
	pthread_mutex_lock(&tree_lock);
	if (!child(dir, name, strlen(name)))
		n = add_child(dir, FS_LINK, name);
	if (n) {
		n->target = t;
		n->mtime = mtime;
	}
	pthread_mutex_unlock(&tree_lock);
	if (!n)
		free(t);
	return n;
}

void fs_set_fill(struct fs_node *dir, fs_fill_fn *fill, void *arg)
{
	pthread_mutex_lock(&tree_lock);
	dir->fill = fill;
	dir->fill_arg = arg;
	pthread_mutex_unlock(&tree_lock);
}

struct fs_file *fs_add(const char *dir, const char *name_hint,
		       struct disk *disk, char *source)
{
	struct fs_node *d = dir[0] ? fs_mkdir(&fs.root, dir) : &fs.root;
	struct fs_node *n = d ? fs_add_disk(d, name_hint, disk, source) : NULL;

	return n ? n->file : NULL;
}

static void free_node(struct fs_node *n)
{
	size_t i;

	for (i = 0; i < n->nkids; i++) {
		free_node(n->kids[i]);
		free(n->kids[i]);
	}
	free(n->kids);
	n->kids = NULL;
	n->nkids = 0;
	n->fill = NULL;
	source_close(n->src);
	n->src = NULL;
	free(n->target);
	n->target = NULL;
	if (n->file) {
		struct fs_file *f = n->file;

		disk_close(f->disk);
		free(f->source);
		free(f->ds_path);
		free(f->change_id);
		free(f->vm);
		free(f->snapshot);
		free(f->part);
		free(f);
		n->file = NULL;
	}
}

/* ---- Browsing hooks (fs/browse.c) ---- */

void fs_set_refill(struct fs_node *dir, fs_fill_fn *refill, void *arg)
{
	pthread_mutex_lock(&tree_lock);
	dir->refill = refill;
	dir->fill_arg = arg;
	dir->fresh_until = 0;
	pthread_mutex_unlock(&tree_lock);
}

struct fs_node *fs_child(struct fs_node *dir, const char *name)
{
	struct fs_node *n;

	pthread_mutex_lock(&tree_lock);
	n = child(dir, name, strlen(name));
	pthread_mutex_unlock(&tree_lock);
	return n;
}

void fs_set_disk_hooks(fs_expand_fn *expand, fs_layer_fn *layer)
{
	fs.expand = expand;
	fs.layer = layer;
}

struct fs_node *fs_add_lazy(struct fs_node *dir, const char *name_hint,
			    char *source, const struct fs_file_ops *ops,
			    void *priv)
{
	struct fs_file *f = calloc(1, sizeof(*f));
	char base[240], name[256];
	struct fs_node *n;
	int k;

	if (!f)
		return NULL;
	fs_flat_name(name_hint, base, sizeof(base));
	snprintf(name, sizeof(name), "%s", base);
	pthread_mutex_lock(&tree_lock);
	for (k = 2; child(dir, name, strlen(name)); k++)
		snprintf(name, sizeof(name), "%.*s-%d.raw",
			 (int)(strlen(base) - 4), base, k);
	n = add_child(dir, FS_DISK, name);
	if (n) {
		f->device_key = -1;
		f->source = source;
		f->ops = ops;
		f->priv = priv;
		n->file = f;
	}
	pthread_mutex_unlock(&tree_lock);
	if (!n)
		free(f);
	return n;
}

void fs_tree_lock(void)
{
	pthread_mutex_lock(&tree_lock);
}

void fs_tree_unlock(void)
{
	pthread_mutex_unlock(&tree_lock);
}

void fs_close_all(void)
{
	pthread_mutex_lock(&tree_lock);
	free_node(&fs.root);
	pthread_mutex_unlock(&tree_lock);
}

/* ---- FUSE callbacks ---- */

/* Do the flat files take writes: a rw mount, or a scratch layer? */
static bool writable(void)
{
	return fs_cfg.rw || fs.layer;
}

static void *vfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* The images do not change under a read-only mount: keep the page
	 * cache across opens.  A provider whose tree changes (browsing)
	 * asks for less. */
	struct fs_serve_hints h = {.entry_timeout = 3600,
				   .negative_timeout = 60,
				   .kernel_cache = !writable()};

	if (fs.provider && fs.provider->start)
		fs.provider->start(&h);
	cfg->use_ino = 0;
	cfg->entry_timeout = cfg->attr_timeout = h.entry_timeout;
	cfg->negative_timeout = h.negative_timeout;
	cfg->kernel_cache = h.kernel_cache;
	conn->max_readahead =
	    fs_cfg.readahead_kb ? fs_cfg.readahead_kb * 1024 : 1u << 20;
	conn->max_write = 1u << 20;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	return NULL;
}

/* The disk of a path, or NULL. */
static struct fs_file *disk_at(const char *path)
{
	struct fs_node *n = lookup(path);

	return n && n->kind == FS_DISK ? n->file : NULL;
}

/* Read from a plain file: up to its end, then 0. */
static int read_plain(const char *path, struct source *src, char *buf,
		      size_t size, off_t off)
{
	int r;

	if (off < 0 || (uint64_t)off >= src->size)
		return 0;
	if (size > src->size - (uint64_t)off)
		size = (size_t)(src->size - (uint64_t)off);
	r = source_pread(src, buf, size, (uint64_t)off);
	if (r < 0) {
		log_error("%s: read of %zu bytes at %lld failed: %s", path,
			  size, (long long)off, vmdkfs_errmsg());
		return -EIO;
	}
	return (int)size;
}

/* The disk behind an open file. */
static struct fs_file *open_file(const struct fuse_file_info *fi)
{
	return ((struct fs_node *)(uintptr_t)fi->fh)->file;
}

static int vfs_getattr(const char *path, struct stat *st,
		       struct fuse_file_info *fi)
{
	int err;
	struct fs_node *n = lookup_err(path, &err);
	struct fs_file *f;

	(void)fi;
	memset(st, 0, sizeof(*st));
	st->st_uid = fs.uid;
	st->st_gid = fs.gid;
	if (!n)
		return err;
	st->st_atime = st->st_mtime = st->st_ctime =
	    n->mtime ? n->mtime : fs.mount_time;
	switch (n->kind) {
	case FS_DIR:
		st->st_mode = S_IFDIR | (n->has_mode ? n->mode : 0555);
		st->st_nlink = 2;
		return 0;
	case FS_LINK:
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)strlen(n->target);
		return 0;
	case FS_FILE:
		st->st_mode = S_IFREG | (n->has_mode ? n->mode : 0444);
		st->st_nlink = 1;
		st->st_size = (off_t)n->src->size;
		st->st_blksize = 4096;
		st->st_blocks = (blkcnt_t)(source_allocated(n->src) / 512);
		return 0;
	case FS_DISK:
		break;
	}
	f = n->file;
	st->st_mode = S_IFREG | (writable() ? 0644 : 0444);
	st->st_nlink = 1;
	if (f->ops) { /* its provider's size: maybe no disk open */
		st->st_size = (off_t)f->ops->size(f);
		st->st_blksize = 4096;
		st->st_blocks = st->st_size / 512;
		return 0;
	}
	st->st_size = (off_t)f->disk->size;
	st->st_blksize = 4096;
	/* What the disk takes on its storage (a sparse or compressed disk
	 * less than its size): du shows it, and cp and tar then look for
	 * holes with SEEK_DATA. */
	st->st_blocks = (blkcnt_t)((f->disk->ops->allocated
					? f->disk->ops->allocated(f->disk)
					: f->disk->size) /
				   512);
	return 0;
}

static int vfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		       off_t off, struct fuse_file_info *fi,
		       enum fuse_readdir_flags flags)
{
	int err;
	struct fs_node *n = lookup_err(path, &err);
	size_t i;

	(void)off, (void)fi, (void)flags;
	if (!n)
		return err;
	if (n->kind != FS_DIR)
		return -ENOTDIR;
	pthread_mutex_lock(&tree_lock);
	err = filled(n);
	if (err == 0 && n->gone) /* browse.c: gone while filled */
		err = -ENOENT;
	if (err == 0) {
		fill(buf, ".", NULL, 0, 0);
		fill(buf, "..", NULL, 0, 0);
		for (i = 0; i < n->nkids; i++)
			if (!n->kids[i]->gone) /* browse.c */
				fill(buf, n->kids[i]->name, NULL, 0, 0);
	}
	pthread_mutex_unlock(&tree_lock);
	return err == -ENOENT ? err : err < 0 ? -EIO : 0;
}

static int vfs_open(const char *path, struct fuse_file_info *fi)
{
	struct fs_node *n = lookup(path);

	if (!n)
		return -ENOENT;
	if (n->kind == FS_DIR)
		return -EISDIR;
	if ((fi->flags & O_ACCMODE) != O_RDONLY &&
	    (!writable() || n->kind != FS_DISK))
		return -EROFS;
	if (fi->flags & O_TRUNC)
		return -EPERM; /* a disk cannot change size */
	fi->fh = (uint64_t)(uintptr_t)n;
	fi->keep_cache = !writable();
	/* A disk opened on demand: now, held until release. */
	if (n->kind == FS_DISK && n->file->ops) {
		bool keep = false;
		int r = n->file->ops->get(n, &keep);

		if (r < 0)
			return r;
		fi->keep_cache = keep;
	}
	return 0;
}

/* The last use of a disk opened on demand. */
static int vfs_release(const char *path, struct fuse_file_info *fi)
{
	struct fs_node *n = (struct fs_node *)(uintptr_t)fi->fh;

	(void)path;
	if (n && n->kind == FS_DISK && n->file->ops)
		n->file->ops->put(n);
	return 0;
}

static int vfs_read(const char *path, char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_node *node = (struct fs_node *)(uintptr_t)fi->fh;
	struct fs_file *f = node->file;
	ssize_t n;

	vmdkfs_error_clear();
	if (node->kind == FS_FILE)
		return read_plain(path, node->src, buf, size, off);
	n = disk_pread(f->disk, buf, size, (uint64_t)off);
	if (n < 0) {
		log_error("%s: read of %zu bytes at %lld failed: %s (%s)",
			  path, size, (long long)off, strerror((int)-n),
			  vmdkfs_errmsg());
		return (int)n == -EIO || (int)n == -ENOMEM ? (int)n : -EIO;
	}
	if (vmdkfs_log_level() >= LOG_TRACE)
		vmdkfs_log(LOG_TRACE, "%s: read %zu bytes at %lld", path, size,
			   (long long)off);
	return (int)n;
}

static int vfs_write(const char *path, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fs_file *f = open_file(fi);
	ssize_t n;

	vmdkfs_error_clear();
	n = disk_pwrite(f->disk, buf, size, (uint64_t)off);
	if (n < 0) {
		log_error("%s: write of %zu bytes at %lld failed: %s (%s)",
			  path, size, (long long)off, strerror((int)-n),
			  vmdkfs_errmsg());
		return n == -ENOSPC || n == -EROFS || n == -ENOMEM ? (int)n
								   : -EIO;
	}
	if (vmdkfs_log_level() >= LOG_TRACE)
		vmdkfs_log(LOG_TRACE, "%s: wrote %zu bytes at %lld", path,
			   size, (long long)off);
	return (int)n;
}

static int flush_file(const char *path, struct fs_file *f)
{
	int r;

	vmdkfs_error_clear();
	r = disk_flush(f->disk);
	if (r < 0) {
		log_error("%s: flush failed: %s", path, vmdkfs_errmsg());
		return -EIO;
	}
	return 0;
}

static int vfs_flush(const char *path, struct fuse_file_info *fi)
{
	return open_file(fi) ? flush_file(path, open_file(fi)) : 0;
}

static int vfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	return open_file(fi) ? flush_file(path, open_file(fi)) : 0;
}

static int vfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fs_file *f = disk_at(path);

	(void)fi;
	if (!f)
		return lookup(path) ? -EISDIR : -ENOENT;
	if (!writable())
		return -EROFS;
	/* A disk keeps its capacity; "truncating" to it changes nothing. */
	return (uint64_t)size == f->disk->size ? 0 : -EPERM;
}

/* The kernel's write-back cache sets times on write-back: the flat files
 * have no times of their own to keep, so accept and ignore them. */
static int vfs_utimens(const char *path, const struct timespec tv[2],
		       struct fuse_file_info *fi)
{
	(void)tv, (void)fi;
	return lookup(path) ? 0 : -ENOENT;
}

/* SEEK_DATA / SEEK_HOLE from the disk's allocation map. */
static off_t vfs_lseek(const char *path, off_t off, int whence,
		       struct fuse_file_info *fi)
{
	struct fs_node *node = (struct fs_node *)(uintptr_t)fi->fh;
	struct fs_file *f = node->file;
	uint64_t pos = (uint64_t)off, len;
	bool data;
	int r;

	(void)path;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (!f) { /* a plain file: its source's map (a VMFS file's holes) */
		struct source *s = node->src;

		if (off < 0 || pos >= s->size)
			return -ENXIO;
		for (;;) {
			r = source_map(s, pos, s->size - pos, &data, &len);
			if (r < 0)
				return -EIO;
			if (data == (whence == SEEK_DATA))
				return (off_t)pos;
			pos += len;
			if (pos >= s->size)
				return whence == SEEK_HOLE ? (off_t)s->size
							   : -ENXIO;
		}
	}
	if (off < 0 || pos >= f->disk->size)
		return -ENXIO;
	for (;;) {
		r = disk_block_status(f->disk, pos, &data, &len);
		if (r < 0)
			return r == -ENXIO ? r : -EIO;
		if (data == (whence == SEEK_DATA))
			return (off_t)pos;
		pos += len;
		if (pos >= f->disk->size)
			return whence == SEEK_HOLE ? (off_t)f->disk->size
						   : -ENXIO;
	}
}

/* Reads into a page-aligned buffer of our own (libfuse frees it): a
 * transport that needs aligned memory (O_DIRECT: san) then reads straight
 * into it, with no bounce buffer and no copy in user space. */
static int vfs_read_buf(const char *path, struct fuse_bufvec **bufp,
			size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec *bv = malloc(sizeof(*bv));
	void *mem = NULL;
	int n;

	if (!bv || posix_memalign(&mem, 4096, size ? size : 1) != 0) {
		free(bv);
		return -ENOMEM;
	}
	n = vfs_read(path, mem, size, off, fi);
	if (n < 0) {
		free(mem);
		free(bv);
		return n;
	}
	*bv = (struct fuse_bufvec)FUSE_BUFVEC_INIT((size_t)n);
	bv->buf[0].mem = mem;
	*bufp = bv;
	return 0;
}

static const char *const xattr_names[] = {
    "user.vmdkfs.transport",	  "user.vmdkfs.path",
    "user.vmdkfs.capacity",	  "user.vmdkfs.cid",
    "user.vmdkfs.datastore_path", "user.vmdkfs.device_key",
    "user.vmdkfs.change_id",	  "user.vmdkfs.vm",
    "user.vmdkfs.snapshot",	  "user.vmdkfs.lun",
    /* a partition's (XATTR_PART on): its table entry */
    "user.vmdkfs.partition.number", "user.vmdkfs.partition.type",
    "user.vmdkfs.partition.start",  "user.vmdkfs.partition.size",
    "user.vmdkfs.partition.uuid",   "user.vmdkfs.partition.name",
};
#define XATTR_PART 10
#define NXATTRS (sizeof(xattr_names) / sizeof(xattr_names[0]))

/* The value of xattr I of F, or NULL if F has none. */
static const char *xattr_value(const struct fs_file *f, size_t i, char *buf,
			       size_t size)
{
	if (f->ops) { /* its provider's facts: maybe no disk open */
		if (i == 0)
			return f->ops->transport(f);
		if (i == 2) {
			snprintf(buf, size, "%" PRIu64, f->ops->size(f));
			return buf;
		}
		if (i == 3 || i == 9)
			return NULL;
	}
	switch (i) {
	case 0:
		return f->disk->transport;
	case 1:
		return f->source;
	case 2:
		snprintf(buf, size, "%" PRIu64, f->disk->size);
		return buf;
	case 3:
		snprintf(buf, size, "%08x", f->disk->cid);
		return buf;
	case 4:
		return f->ds_path;
	case 5:
		if (f->device_key < 0)
			return NULL;
		snprintf(buf, size, "%d", f->device_key);
		return buf;
	case 6:
		return f->change_id;
	case 7:
		return f->vm;
	case 8:
		return f->snapshot;
	case 9:
		return f->disk->lun;
	}
	if (i < XATTR_PART || !f->part)
		return NULL;
	switch (i - XATTR_PART) {
	case 0:
		snprintf(buf, size, "%u", f->part->number);
		return buf;
	case 1:
		return f->part->type;
	case 2:
		snprintf(buf, size, "%" PRIu64, f->part->start);
		return buf;
	case 3:
		snprintf(buf, size, "%" PRIu64, f->part->size);
		return buf;
	case 4:
		return f->part->uuid[0] ? f->part->uuid : NULL;
	case 5:
		return f->part->name[0] ? f->part->name : NULL;
	}
	return NULL;
}

static int vfs_getxattr(const char *path, const char *name, char *value,
			size_t size)
{
	struct fs_file *f = disk_at(path);
	const char *v = NULL;
	char buf[64];
	size_t i, len;

	if (!f)
		return lookup(path) ? -ENODATA : -ENOENT;
	for (i = 0; i < NXATTRS; i++)
		if (strcmp(name, xattr_names[i]) == 0)
			v = xattr_value(f, i, buf, sizeof(buf));
	if (!v)
		return -ENODATA;
	len = strlen(v);
	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	memcpy(value, v, len);
	return (int)len;
}

static int vfs_listxattr(const char *path, char *list, size_t size)
{
	struct fs_file *f = disk_at(path);
	size_t i, len = 0;
	char buf[64];

	if (!f)
		return lookup(path) ? 0 : -ENOENT;
	for (i = 0; i < NXATTRS; i++)
		if (xattr_value(f, i, buf, sizeof(buf)))
			len += strlen(xattr_names[i]) + 1;
	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	for (i = 0; i < NXATTRS; i++) {
		if (!xattr_value(f, i, buf, sizeof(buf)))
			continue;
		strcpy(list, xattr_names[i]);
		list += strlen(xattr_names[i]) + 1;
	}
	return (int)len;
}

static int vfs_readlink(const char *path, char *buf, size_t size)
{
	struct fs_node *n = lookup(path);

	if (!n)
		return -ENOENT;
	if (n->kind != FS_LINK)
		return -EINVAL;
	snprintf(buf, size, "%s", n->target);
	return 0;
}

static const struct fuse_operations vfs_ops = {
    .readlink = vfs_readlink,
    .init = vfs_init,
    .getattr = vfs_getattr,
    .readdir = vfs_readdir,
    .open = vfs_open,
    .release = vfs_release,
    .read = vfs_read,
    .read_buf = vfs_read_buf,
    .write = vfs_write,
    .flush = vfs_flush,
    .fsync = vfs_fsync,
    .truncate = vfs_truncate,
    .utimens = vfs_utimens,
    .lseek = vfs_lseek,
    .getxattr = vfs_getxattr,
    .listxattr = vfs_listxattr,
};

static void set_readahead(const char *mountpoint, unsigned kb)
{
	char path[128];
	unsigned major, minor;
	FILE *fp;

	if (!fs_vmdkfs_mount(mountpoint, &major, &minor))
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 major, minor);
	fp = fopen(path, "we");
	if (!fp || fprintf(fp, "%u\n", kb) < 0 || fclose(fp) != 0) {
		log_info("%s: readahead stays at the kernel's default: %s: %m",
			 mountpoint, path);
		return;
	}
	log_debug("%s: readahead %u KiB", mountpoint, kb);
}

/* The disks (not partitions) in the folders built so far. */
static unsigned count_disks(const struct fs_node *n)
{
	unsigned k = n->kind == FS_DISK && n->file && !n->file->part;
	size_t i;

	for (i = 0; i < n->nkids; i++)
		k += count_disks(n->kids[i]);
	return k;
}

/* threads=0: a thread for each disk that may be read at the same time as
 * another, 1 to 8.  One thread serves a single stream fastest: with more,
 * each request wakes another thread, on another CPU (measured with
 * scripts/fuse-ceiling on 2 CPUs: 3500-3800 MB/s with one thread,
 * 2800-3100 with 2, 1800-1900 with libfuse's default of up to 10); but
 * disks read at once need a thread each, or one waits on the network
 * while another's bytes are there (four disks over nbdssl: 623 MB/s with 1
 * or 2 threads, 859 with 4). */
static unsigned loop_threads(void)
{
	unsigned n;

	if (fs_cfg.threads > 0)
		return (unsigned)fs_cfg.threads;
	if (fs.provider && fs.provider->threads)
		n = fs.provider->threads();
	else
		n = count_disks(&fs.root);
	if (n == 0) /* folders filled later (lun=): not known yet */
		n = 2;
	return n > 8 ? 8 : n;
}

int fs_serve(const struct fs_provider *p, struct fuse_args *fargs,
	     const char *mountpoint, bool foreground, bool single, bool debug)
{
	struct fuse_loop_config *lc;
	struct fuse *f;
	int r;

	fs.provider = p;
	fs.uid = getuid();
	fs.gid = getgid();
	fs.mount_time = time(NULL);

	if (fuse_opt_add_arg(fargs, "-ofsname=vmdkfs") < 0 ||
	    fuse_opt_add_arg(fargs, "-osubtype=vmdkfs") < 0 ||
	    (writable() ? 0 : fuse_opt_add_arg(fargs, "-oro")) < 0 ||
	    (debug ? fuse_opt_add_arg(fargs, "-d") : 0) < 0)
		return 1;
	f = fuse_new(fargs, &vfs_ops, sizeof(vfs_ops), NULL);
	if (!f)
		return 1;
	if (fuse_mount(f, mountpoint) != 0) {
		fuse_destroy(f);
		return 1;
	}
	if (fs_cfg.readahead_kb)
		set_readahead(mountpoint, fs_cfg.readahead_kb);
	/* libfuse takes the stop signals while it serves (its handlers go
	 * only where none is set); one that came before ends it at once. */
	sig_handover();
	if (sig_stop_requested()) {
		/* (a warning: on stderr too) */
		log_warn("%s: %s before serving; unmounting", mountpoint,
			 sig_name(sig_stop_requested()));
		sig_takeback();
		fuse_unmount(f);
		fuse_destroy(f);
		return 1;
	}
	if (fuse_daemonize(foreground) != 0 ||
	    fuse_set_signal_handlers(fuse_get_session(f)) != 0) {
		sig_takeback();
		fuse_unmount(f);
		fuse_destroy(f);
		return 1;
	}
	sig_unblock();
	vmdkfs_log_follow_pid(); /* the daemon's own PID names the log */
	/* Few threads, all kept (loop_threads). */
	lc = fuse_loop_cfg_create();
	if (!lc) {
		r = -1;
	} else {
		unsigned t = loop_threads();

		log_debug("%s: %u FUSE thread(s)", mountpoint, t);
		fuse_loop_cfg_set_clone_fd(lc, 0);
		fuse_loop_cfg_set_max_threads(lc, t);
		fuse_loop_cfg_set_idle_threads(lc, t);
		r = single ? fuse_loop(f) : fuse_loop_mt(f, lc);
		fuse_loop_cfg_destroy(lc);
	}
	fuse_remove_signal_handlers(fuse_get_session(f));
	sig_takeback();
	fuse_unmount(f);
	fuse_destroy(f);
	/* A positive value is the signal (SIGTERM, SIGINT...) that ended the
	 * loop: a requested, clean unmount. */
	return r >= 0 ? 0 : 1;
}

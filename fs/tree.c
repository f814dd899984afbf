/* The tree of flat files and the FUSE callbacks. */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 32
#include <errno.h>
#include <fuse.h>
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
#include "fs.h"

struct config fs_cfg;

static struct {
	struct fs_file *files;
	size_t nfiles;
	time_t mount_time;
	uid_t uid;
	gid_t gid;
} fs;

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

/* Split "/DIR/NAME" or "/NAME"; false if deeper or not absolute. */
static bool split(const char *path, char *dir, const char **name)
{
	const char *slash;

	if (path[0] != '/')
		return false;
	slash = strchr(path + 1, '/');
	if (!slash) {
		dir[0] = '\0';
		*name = path + 1;
		return true;
	}
	if (strchr(slash + 1, '/') || (size_t)(slash - path - 1) >= 256)
		return false;
	memcpy(dir, path + 1, (size_t)(slash - path - 1));
	dir[slash - path - 1] = '\0';
	*name = slash + 1;
	return true;
}

static struct fs_file *lookup(const char *path)
{
	const char *name;
	char dir[256];
	size_t i;

	if (!split(path, dir, &name))
		return NULL;
	for (i = 0; i < fs.nfiles; i++)
		if (strcmp(fs.files[i].dir, dir) == 0 &&
		    strcmp(fs.files[i].name, name) == 0)
			return &fs.files[i];
	return NULL;
}

/* Is PATH the root or one of the folders? */
static bool is_dir(const char *path)
{
	size_t i;

	if (strcmp(path, "/") == 0)
		return true;
	for (i = 0; i < fs.nfiles; i++)
		if (fs.files[i].dir[0] &&
		    strcmp(fs.files[i].dir, path + 1) == 0)
			return true;
	return false;
}

bool fs_dir_exists(const char *dir)
{
	size_t i;

	for (i = 0; i < fs.nfiles; i++)
		if (strcmp(fs.files[i].dir, dir) == 0)
			return true;
	return false;
}

static bool name_taken(const char *dir, const char *name)
{
	size_t i;

	for (i = 0; i < fs.nfiles; i++)
		if (strcmp(fs.files[i].dir, dir) == 0 &&
		    strcmp(fs.files[i].name, name) == 0)
			return true;
	/* A file in the root may not shadow a folder, nor the reverse. */
	if (!dir[0])
		for (i = 0; i < fs.nfiles; i++)
			if (strcmp(fs.files[i].dir, name) == 0)
				return true;
	return false;
}

struct fs_file *fs_add(const char *dir, const char *name_hint,
		       struct disk *disk, char *source)
{
	struct fs_file *files, *f;
	char base[240];
	int k;

	files = realloc(fs.files, (fs.nfiles + 1) * sizeof(*files));
	if (!files)
		return NULL;
	fs.files = files;
	f = &files[fs.nfiles];
	memset(f, 0, sizeof(*f));
	f->device_key = -1;
	snprintf(f->dir, sizeof(f->dir), "%s", dir);
	fs_flat_name(name_hint, base, sizeof(base));
	snprintf(f->name, sizeof(f->name), "%s", base);
	for (k = 2; name_taken(f->dir, f->name); k++)
		snprintf(f->name, sizeof(f->name), "%.*s-%d.raw",
			 (int)(strlen(base) - 4), base, k);
	f->disk = disk;
	f->source = source;
	fs.nfiles++;
	log_info("%s%s%s: %s, %llu bytes, transport %s", f->dir,
		 f->dir[0] ? "/" : "", f->name, source,
		 (unsigned long long)disk->size, disk->transport);
	return f;
}

void fs_close_all(void)
{
	size_t i;

	for (i = 0; i < fs.nfiles; i++) {
		struct fs_file *f = &fs.files[i];

		disk_close(f->disk);
		free(f->source);
		free(f->ds_path);
		free(f->change_id);
		free(f->vm);
		free(f->snapshot);
	}
	free(fs.files);
	fs.files = NULL;
	fs.nfiles = 0;
}

/* ---- FUSE callbacks ---- */

static void *vfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->use_ino = 0;
	cfg->entry_timeout = 3600;
	cfg->attr_timeout = 3600;
	cfg->negative_timeout = 60;
	/* The images do not change under a read-only mount: keep the page
	 * cache across opens. */
	cfg->kernel_cache = !fs_cfg.rw;
	conn->max_readahead =
	    fs_cfg.readahead_kb ? fs_cfg.readahead_kb * 1024 : 1u << 20;
	conn->max_write = 1u << 20;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	return NULL;
}

static int vfs_getattr(const char *path, struct stat *st,
		       struct fuse_file_info *fi)
{
	struct fs_file *f;

	(void)fi;
	memset(st, 0, sizeof(*st));
	st->st_uid = fs.uid;
	st->st_gid = fs.gid;
	st->st_atime = st->st_mtime = st->st_ctime = fs.mount_time;
	if (is_dir(path)) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	}
	f = lookup(path);
	if (!f)
		return -ENOENT;
	st->st_mode = S_IFREG | (fs_cfg.rw ? 0644 : 0444);
	st->st_nlink = 1;
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
	const char *dir = strcmp(path, "/") == 0 ? "" : path + 1;
	size_t i, j;

	(void)off, (void)fi, (void)flags;
	if (!is_dir(path))
		return lookup(path) ? -ENOTDIR : -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	for (i = 0; i < fs.nfiles; i++) {
		if (strcmp(fs.files[i].dir, dir) == 0) {
			fill(buf, fs.files[i].name, NULL, 0, 0);
			continue;
		}
		if (dir[0] || !fs.files[i].dir[0])
			continue;
		for (j = 0; j < i; j++) /* each folder once */
			if (strcmp(fs.files[j].dir, fs.files[i].dir) == 0)
				break;
		if (j == i)
			fill(buf, fs.files[i].dir, NULL, 0, 0);
	}
	return 0;
}

static int vfs_open(const char *path, struct fuse_file_info *fi)
{
	struct fs_file *f = lookup(path);

	if (!f)
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && !fs_cfg.rw)
		return -EROFS;
	if (fi->flags & O_TRUNC)
		return -EPERM; /* a disk cannot change size */
	fi->fh = (uint64_t)(f - fs.files);
	fi->keep_cache = !fs_cfg.rw;
	return 0;
}

static int vfs_read(const char *path, char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_file *f = &fs.files[fi->fh];
	ssize_t n;

	(void)path;
	vmdkfs_error_clear();
	n = disk_pread(f->disk, buf, size, (uint64_t)off);
	if (n < 0) {
		log_error("%s: read of %zu bytes at %lld failed: %s (%s)",
			  f->name, size, (long long)off, strerror((int)-n),
			  vmdkfs_errmsg());
		return (int)n == -EIO || (int)n == -ENOMEM ? (int)n : -EIO;
	}
	if (vmdkfs_log_level() >= LOG_TRACE)
		vmdkfs_log(LOG_TRACE, "%s: read %zu bytes at %lld", f->name,
			   size, (long long)off);
	return (int)n;
}

static int vfs_write(const char *path, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fs_file *f = &fs.files[fi->fh];
	ssize_t n;

	(void)path;
	vmdkfs_error_clear();
	n = disk_pwrite(f->disk, buf, size, (uint64_t)off);
	if (n < 0) {
		log_error("%s: write of %zu bytes at %lld failed: %s (%s)",
			  f->name, size, (long long)off, strerror((int)-n),
			  vmdkfs_errmsg());
		return n == -ENOSPC || n == -EROFS || n == -ENOMEM ? (int)n
								   : -EIO;
	}
	if (vmdkfs_log_level() >= LOG_TRACE)
		vmdkfs_log(LOG_TRACE, "%s: wrote %zu bytes at %lld", f->name,
			   size, (long long)off);
	return (int)n;
}

static int flush_file(struct fs_file *f)
{
	int r;

	vmdkfs_error_clear();
	r = disk_flush(f->disk);
	if (r < 0) {
		log_error("%s: flush failed: %s", f->name, vmdkfs_errmsg());
		return -EIO;
	}
	return 0;
}

static int vfs_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	return flush_file(&fs.files[fi->fh]);
}

static int vfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path, (void)datasync;
	return flush_file(&fs.files[fi->fh]);
}

static int vfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fs_file *f = lookup(path);

	(void)fi;
	if (!f)
		return -ENOENT;
	if (!fs_cfg.rw)
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
	return lookup(path) || strcmp(path, "/") == 0 ? 0 : -ENOENT;
}

/* SEEK_DATA / SEEK_HOLE from the disk's allocation map. */
static off_t vfs_lseek(const char *path, off_t off, int whence,
		       struct fuse_file_info *fi)
{
	struct fs_file *f = &fs.files[fi->fh];
	uint64_t pos = (uint64_t)off, len;
	bool data;
	int r;

	(void)path;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
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

static const char *const xattr_names[] = {
    "user.vmdkfs.transport",	  "user.vmdkfs.path",
    "user.vmdkfs.capacity",	  "user.vmdkfs.cid",
    "user.vmdkfs.datastore_path", "user.vmdkfs.device_key",
    "user.vmdkfs.change_id",	  "user.vmdkfs.vm",
    "user.vmdkfs.snapshot",
};
#define NXATTRS (sizeof(xattr_names) / sizeof(xattr_names[0]))

/* The value of xattr I of F, or NULL if F has none. */
static const char *xattr_value(const struct fs_file *f, size_t i, char *buf,
			       size_t size)
{
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
	}
	return NULL;
}

static int vfs_getxattr(const char *path, const char *name, char *value,
			size_t size)
{
	struct fs_file *f = lookup(path);
	const char *v = NULL;
	char buf[64];
	size_t i, len;

	if (!f)
		return is_dir(path) ? -ENODATA : -ENOENT;
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
	struct fs_file *f = lookup(path);
	size_t i, len = 0;
	char buf[64];

	if (!f)
		return is_dir(path) ? 0 : -ENOENT;
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

static const struct fuse_operations vfs_ops = {
    .init = vfs_init,
    .getattr = vfs_getattr,
    .readdir = vfs_readdir,
    .open = vfs_open,
    .read = vfs_read,
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
	char *real = realpath(mountpoint, NULL), line[8192], path[128];
	unsigned major, minor;
	bool found = false;
	FILE *fp;

	if (!real)
		return;
	fp = fopen("/proc/self/mountinfo", "re");
	while (fp && fgets(line, sizeof(line), fp)) {
		char mp[4096];

		/* ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ... */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &major, &minor,
			   mp) == 3 &&
		    strcmp(mp, real) == 0 && strstr(line, "fuse.vmdkfs"))
			found = true; /* the last match is the newest */
	}
	if (fp)
		fclose(fp);
	free(real);
	if (!found)
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

int fs_serve(struct fuse_args *fargs, const char *mountpoint, bool foreground,
	     bool single, bool debug)
{
	struct fuse_loop_config lc = {.clone_fd = 0, .max_idle_threads = 16};
	struct fuse *f;
	int r;

	fs.uid = getuid();
	fs.gid = getgid();
	fs.mount_time = time(NULL);

	if (fuse_opt_add_arg(fargs, "-ofsname=vmdkfs") < 0 ||
	    fuse_opt_add_arg(fargs, "-osubtype=vmdkfs") < 0 ||
	    (fs_cfg.rw ? 0 : fuse_opt_add_arg(fargs, "-oro")) < 0 ||
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
	if (fuse_daemonize(foreground) != 0 ||
	    fuse_set_signal_handlers(fuse_get_session(f)) != 0) {
		fuse_unmount(f);
		fuse_destroy(f);
		return 1;
	}
	vmdkfs_log_follow_pid(); /* the daemon's own PID names the log */
	r = single ? fuse_loop(f) : fuse_loop_mt(f, &lc);
	fuse_remove_signal_handlers(fuse_get_session(f));
	fuse_unmount(f);
	fuse_destroy(f);
	/* A positive value is the signal (SIGTERM, SIGINT...) that ended the
	 * loop: a requested, clean unmount. */
	return r >= 0 ? 0 : 1;
}

/* vmdkfs: mount VMware virtual disks as flat files.  This file parses the
 * command line and holds the FUSE callbacks, which only translate to
 * struct disk calls and -errno. */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 32
#include <errno.h>
#include <fuse.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/err.h"
#include "../transports/transport.h"
#include "config.h"
#include "fs.h"

#define VMDKFS_VERSION "0.1"

struct flat_file {
	char name[256];
	char *abspath;
	struct disk *disk;
};

static struct {
	struct config cfg;
	struct flat_file *files;
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

static struct flat_file *lookup(const char *path)
{
	size_t i;

	if (path[0] != '/')
		return NULL;
	for (i = 0; i < fs.nfiles; i++)
		if (strcmp(fs.files[i].name, path + 1) == 0)
			return &fs.files[i];
	return NULL;
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
	cfg->kernel_cache = !fs.cfg.rw;
	conn->max_readahead = fs.cfg.readahead_kb ? fs.cfg.readahead_kb * 1024 : 1u << 20;
	conn->max_write = 1u << 20;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	return NULL;
}

static int vfs_getattr(const char *path, struct stat *st,
		       struct fuse_file_info *fi)
{
	struct flat_file *f;

	(void)fi;
	memset(st, 0, sizeof(*st));
	st->st_uid = fs.uid;
	st->st_gid = fs.gid;
	st->st_atime = st->st_mtime = st->st_ctime = fs.mount_time;
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	}
	f = lookup(path);
	if (!f)
		return -ENOENT;
	st->st_mode = S_IFREG | (fs.cfg.rw ? 0644 : 0444);
	st->st_nlink = 1;
	st->st_size = (off_t)f->disk->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)(f->disk->size / 512);
	return 0;
}

static int vfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		       off_t off, struct fuse_file_info *fi,
		       enum fuse_readdir_flags flags)
{
	size_t i;

	(void)off, (void)fi, (void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	for (i = 0; i < fs.nfiles; i++)
		fill(buf, fs.files[i].name, NULL, 0, 0);
	return 0;
}

static int vfs_open(const char *path, struct fuse_file_info *fi)
{
	struct flat_file *f = lookup(path);

	if (!f)
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && !fs.cfg.rw)
		return -EROFS;
	if (fi->flags & O_TRUNC)
		return -EPERM; /* a disk cannot change size */
	fi->fh = (uint64_t)(f - fs.files);
	fi->keep_cache = !fs.cfg.rw;
	return 0;
}

static int vfs_read(const char *path, char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct flat_file *f = &fs.files[fi->fh];
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

static int vfs_write(const char *path, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	struct flat_file *f = &fs.files[fi->fh];
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

static int flush_file(struct flat_file *f)
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

static int vfs_truncate(const char *path, off_t size,
			struct fuse_file_info *fi)
{
	struct flat_file *f = lookup(path);

	(void)fi;
	if (!f)
		return -ENOENT;
	if (!fs.cfg.rw)
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
	struct flat_file *f = &fs.files[fi->fh];
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
    "user.vmdkfs.transport",
    "user.vmdkfs.path",
    "user.vmdkfs.capacity",
    "user.vmdkfs.cid",
};

static int vfs_getxattr(const char *path, const char *name, char *value,
			size_t size)
{
	struct flat_file *f = lookup(path);
	char buf[PATH_MAX + 64];
	size_t len;

	if (!f)
		return strcmp(path, "/") == 0 ? -ENODATA : -ENOENT;
	if (strcmp(name, xattr_names[0]) == 0)
		snprintf(buf, sizeof(buf), "%s", f->disk->transport);
	else if (strcmp(name, xattr_names[1]) == 0)
		snprintf(buf, sizeof(buf), "%s", f->abspath);
	else if (strcmp(name, xattr_names[2]) == 0)
		snprintf(buf, sizeof(buf), "%" PRIu64, f->disk->size);
	else if (strcmp(name, xattr_names[3]) == 0)
		snprintf(buf, sizeof(buf), "%08x", f->disk->cid);
	else
		return -ENODATA;
	len = strlen(buf);
	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	memcpy(value, buf, len);
	return (int)len;
}

static int vfs_listxattr(const char *path, char *list, size_t size)
{
	size_t i, len = 0;

	if (!lookup(path))
		return strcmp(path, "/") == 0 ? 0 : -ENOENT;
	for (i = 0; i < 4; i++)
		len += strlen(xattr_names[i]) + 1;
	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	for (i = 0; i < 4; i++) {
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

/* ---- Command line ---- */

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: vmdkfs [options] DISK.vmdk... MOUNTPOINT\n"
	    "       vmdkfs info [--json] DISK.vmdk\n"
	    "       vmdkfs --list-transports\n"
	    "\n"
	    "Mounts each disk as a flat file MOUNTPOINT/NAME.raw (NAME: the\n"
	    "disk's file name without .vmdk, characters other than\n"
	    "A-Z a-z 0-9 . _ + - replaced by _; -2, -3... added to repeats).\n"
	    "\n"
	    "options:\n"
	    "  -f                 stay in the foreground\n"
	    "  -d                 debug: foreground, FUSE and vmdkfs "
	    "debug output\n"
	    "  -s                 single-threaded\n"
	    "  -o OPT[,OPT...]    mount options (below), fstab style\n"
	    "  -h, --help         this help\n"
	    "  -V, --version      version\n"
	    "\n"
	    "mount options (also accepted as name=value lines by "
	    "-o config=FILE):\n"
	    "  config=FILE                                  read options "
	    "from FILE first\n");
	if (out == stdout)
		config_print_keys();
	fprintf(out, "  FUSE options passed on: allow_other, allow_root, "
		     "default_permissions,\n"
		     "  auto_unmount, fsname=, subtype=; fstab words dropped: "
		     "defaults, auto,\n"
		     "  noauto, user, nouser, users, _netdev, nofail, x-*, "
		     "comment=.\n");
}

static const char *const fuse_passthrough[] = {
    "allow_other", "allow_root", "default_permissions", "auto_unmount", NULL,
};
static const char *const fuse_passthrough_val[] = {"fsname", "subtype", NULL};
static const char *const fstab_noise[] = {
    "defaults", "auto",	  "noauto", "user",    "nouser",   "users",
    "_netdev",	"nofail", "dev",    "nodev",   "suid",	   "nosuid",
    "exec",	"noexec", "atime",  "noatime", "relatime", NULL,
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

struct cmdline {
	char **opts; /* -o items, in order */
	size_t nopts;
	char **paths; /* disks, then the mount point */
	size_t npaths;
	bool foreground, debug, single;
	struct fuse_args fargs;
};

static int push(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = s;
	*v = nv;
	return 0;
}

/* Split an -o list at commas into c->opts. */
static int add_opts(struct cmdline *c, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *s = strdup(tok);

		if (!s || push(&c->opts, &c->nopts, s) < 0) {
			free(s);
			free(copy);
			return -ENOMEM;
		}
	}
	free(copy);
	return 0;
}

/* Apply the -o options: config files first, then the rest in order.
 * FUSE options go to c->fargs.  Returns 0 or -EINVAL (message printed). */
static int apply_opts(struct cmdline *c, struct config *cfg)
{
	size_t i;

	for (i = 0; i < c->nopts; i++) {
		if (strncmp(c->opts[i], "config=", 7) == 0 &&
		    config_load(cfg, c->opts[i] + 7) < 0) {
			fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
			return -EINVAL;
		}
	}
	for (i = 0; i < c->nopts; i++) {
		char *o = c->opts[i], *eq = strchr(o, '='), *arg;
		char key[256];

		if (strncmp(o, "config=", 7) == 0)
			continue;
		snprintf(key, sizeof(key), "%.*s",
			 (int)(eq ? (size_t)(eq - o) : strlen(o)), o);
		if (in_list(fstab_noise, key) || strncmp(key, "x-", 2) == 0 ||
		    strcmp(key, "comment") == 0)
			continue;
		if ((!eq && in_list(fuse_passthrough, key)) ||
		    (eq && in_list(fuse_passthrough_val, key))) {
			if (asprintf(&arg, "-o%s", o) < 0 ||
			    fuse_opt_add_arg(&c->fargs, arg) < 0)
				return -ENOMEM;
			free(arg);
			continue;
		}
		if (config_set(cfg, key, eq ? eq + 1 : NULL, "-o") < 0) {
			fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
			return -EINVAL;
		}
	}
	return 0;
}

static void free_cmdline(struct cmdline *c)
{
	size_t i;

	for (i = 0; i < c->nopts; i++)
		free(c->opts[i]);
	free(c->opts);
	free(c->paths);
	fuse_opt_free_args(&c->fargs);
}

static int parse_cmdline(int argc, char **argv, struct cmdline *c)
{
	int i;
	bool dashdash = false;

	for (i = 1; i < argc; i++) {
		char *a = argv[i];

		if (dashdash || a[0] != '-' || !a[1]) {
			if (push(&c->paths, &c->npaths, a) < 0)
				return -ENOMEM;
		} else if (strcmp(a, "--") == 0) {
			dashdash = true;
		} else if (strcmp(a, "-f") == 0) {
			c->foreground = true;
		} else if (strcmp(a, "-d") == 0 || strcmp(a, "--debug") == 0) {
			c->debug = c->foreground = true;
		} else if (strcmp(a, "-s") == 0) {
			c->single = true;
		} else if (strcmp(a, "-o") == 0) {
			if (++i >= argc) {
				fprintf(stderr, "vmdkfs: -o needs a value\n");
				return -EINVAL;
			}
			if (add_opts(c, argv[i]) < 0)
				return -ENOMEM;
		} else if (strncmp(a, "-o", 2) == 0) {
			if (add_opts(c, a + 2) < 0)
				return -ENOMEM;
		} else {
			fprintf(stderr,
				"vmdkfs: unknown option %s (see "
				"vmdkfs --help)\n",
				a);
			return -EINVAL;
		}
	}
	return 0;
}

static int open_disks(struct cmdline *c)
{
	size_t i, j;

	fs.nfiles = c->npaths - 1;
	fs.files = calloc(fs.nfiles, sizeof(*fs.files));
	if (!fs.files)
		return -ENOMEM;
	for (i = 0; i < fs.nfiles; i++) {
		struct flat_file *f = &fs.files[i];
		char *abspath = realpath(c->paths[i], NULL);
		struct disk_spec spec = {
		    /* Absolute: the daemon changes to / before serving. */
		    .path = abspath ? abspath : c->paths[i],
		    .readonly = !fs.cfg.rw,
		    .allow_parent_write = fs.cfg.allow_parent_write,
		    .table_cache_bytes = fs.cfg.table_cache,
		    .grain_cache_bytes = fs.cfg.grain_cache,
		};
		char name[256];
		int r, k;

		r = transport_open(fs.cfg.transports, &spec, &f->disk);
		if (r < 0) {
			fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
			free(abspath);
			return r;
		}
		f->abspath = abspath ? abspath : strdup(c->paths[i]);
		if (fs.cfg.enable_cache &&
		    disk_enable_cache(f->disk, fs.cfg.cache_size) < 0)
			return -ENOMEM;
		fs_flat_name(c->paths[i], name, sizeof(name) - 16);
		snprintf(f->name, sizeof(f->name), "%s", name);
		for (k = 2;; k++) {
			for (j = 0; j < i; j++)
				if (strcmp(fs.files[j].name, f->name) == 0)
					break;
			if (j == i)
				break;
			snprintf(f->name, sizeof(f->name), "%.*s-%d.raw",
				 (int)(strlen(name) - 4), name, k);
		}
		log_info("%s: %s, %llu bytes, transport %s", f->name,
			 f->abspath, (unsigned long long)f->disk->size,
			 f->disk->transport);
	}
	return 0;
}

static void close_disks(void)
{
	size_t i;

	for (i = 0; i < fs.nfiles; i++) {
		disk_close(fs.files[i].disk);
		free(fs.files[i].abspath);
	}
	free(fs.files);
	fs.files = NULL;
	fs.nfiles = 0;
}

/* The kernel caps a FUSE mount's readahead at its 128 KiB default whatever
 * the file system asks for; raise it through sysfs (root only).  The mount's
 * device number comes from /proc/self/mountinfo, as stat() of the mount
 * point would need the daemon, which is not serving yet. */
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

static int run_fuse(struct cmdline *c, const char *mountpoint)
{
	struct fuse_loop_config lc = {.clone_fd = 0, .max_idle_threads = 16};
	struct fuse *f;
	int r;

	if (fuse_opt_add_arg(&c->fargs, "-ofsname=vmdkfs") < 0 ||
	    fuse_opt_add_arg(&c->fargs, "-osubtype=vmdkfs") < 0 ||
	    (fs.cfg.rw ? 0 : fuse_opt_add_arg(&c->fargs, "-oro")) < 0 ||
	    (c->debug ? fuse_opt_add_arg(&c->fargs, "-d") : 0) < 0)
		return 1;
	f = fuse_new(&c->fargs, &vfs_ops, sizeof(vfs_ops), NULL);
	if (!f)
		return 1;
	if (fuse_mount(f, mountpoint) != 0) {
		fuse_destroy(f);
		return 1;
	}
	if (fs.cfg.readahead_kb)
		set_readahead(mountpoint, fs.cfg.readahead_kb);
	if (fuse_daemonize(c->foreground) != 0 ||
	    fuse_set_signal_handlers(fuse_get_session(f)) != 0) {
		fuse_unmount(f);
		fuse_destroy(f);
		return 1;
	}
	r = c->single ? fuse_loop(f) : fuse_loop_mt(f, &lc);
	fuse_remove_signal_handlers(fuse_get_session(f));
	fuse_unmount(f);
	fuse_destroy(f);
	return r == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct cmdline c = {.fargs = FUSE_ARGS_INIT(0, NULL)};
	int r, status = 1;

	if (argc >= 2 && strcmp(argv[1], "info") == 0)
		return fs_info_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "--list-transports") == 0) {
		printf("%s\n", transport_list());
		return 0;
	}
	if (argc >= 2 &&
	    (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 &&
	    (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))) {
		printf("vmdkfs %s\n", VMDKFS_VERSION);
		return 0;
	}
	config_init(&fs.cfg);
	if (fuse_opt_add_arg(&c.fargs, argv[0]) < 0)
		goto out;
	r = parse_cmdline(argc, argv, &c);
	if (r < 0) {
		status = 2;
		goto out;
	}
	if (c.npaths < 2) {
		usage(stderr);
		status = 2;
		goto out;
	}
	if (apply_opts(&c, &fs.cfg) < 0) {
		status = 2;
		goto out;
	}
	vmdkfs_log_stderr(c.debug ? LOG_DEBUG : LOG_WARN);
	if (vmdkfs_log_open(fs.cfg.tmp_directory, fs.cfg.log_level) < 0)
		fprintf(stderr, "vmdkfs: warning: %s\n", vmdkfs_errmsg());
	fs.uid = getuid();
	fs.gid = getgid();
	fs.mount_time = time(NULL);
	if (open_disks(&c) < 0)
		goto out_close;
	status = run_fuse(&c, c.paths[c.npaths - 1]);
out_close:
	close_disks();
out:
	vmdkfs_log_close();
	config_free(&fs.cfg);
	free_cmdline(&c);
	return status;
}

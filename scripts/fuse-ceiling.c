/* fuse-ceiling: the FUSE ceiling of `make bench`.  A minimal libfuse
 * program that serves one read-only file, "disk", of SIZE bytes from
 * memory, with vmdkfs's FUSE settings (the same max_readahead, splice
 * writes, kernel cache kept, reads answered from a page-aligned buffer
 * through read_buf, libfuse's multi-threaded loop with one worker thread,
 * as vmdkfs runs it for a mount of one disk: fs/tree.c loop_threads):
 * what FUSE alone costs on this machine, without vmdkfs.  Not a test and
 * not installed.
 *
 * usage: fuse-ceiling SIZE_MIB MOUNTPOINT [FUSE ARGS...]
 * (runs in the foreground; unmount with fusermount3 -u MOUNTPOINT; the
 * caller sets the mount's read_ahead_kb as vmdkfs does)
 */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <errno.h>
#include <fuse.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PATTERN (1u << 20)

static uint64_t size;
static unsigned char *pattern; /* 1 MiB, repeated over the file */

static void *ceiling_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->kernel_cache = 1;
	cfg->entry_timeout = 3600;
	cfg->attr_timeout = 3600;
	conn->max_readahead = 1u << 20;
	conn->max_write = 1u << 20;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	return NULL;
}

static int ceiling_getattr(const char *path, struct stat *st,
			   struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/disk") != 0)
		return -ENOENT;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)(size / 512);
	return 0;
}

static int ceiling_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
			   off_t off, struct fuse_file_info *fi,
			   enum fuse_readdir_flags flags)
{
	(void)off, (void)fi, (void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, "disk", NULL, 0, 0);
	return 0;
}

static int ceiling_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/disk") != 0)
		return -ENOENT;
	fi->keep_cache = 1;
	return 0;
}

static int ceiling_read_buf(const char *path, struct fuse_bufvec **bufp,
			    size_t len, off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec *bv = malloc(sizeof(*bv));
	unsigned char *mem = NULL;
	size_t done = 0;

	(void)path, (void)fi;
	if ((uint64_t)off >= size)
		len = 0;
	else if (len > size - (uint64_t)off)
		len = (size_t)(size - (uint64_t)off);
	if (!bv || posix_memalign((void **)&mem, 4096, len ? len : 1) != 0) {
		free(bv);
		return -ENOMEM;
	}
	while (done < len) {
		size_t at = (size_t)(((uint64_t)off + done) % PATTERN);
		size_t n = PATTERN - at < len - done ? PATTERN - at : len - done;

		memcpy(mem + done, pattern + at, n);
		done += n;
	}
	*bv = (struct fuse_bufvec)FUSE_BUFVEC_INIT(len);
	bv->buf[0].mem = mem;
	*bufp = bv;
	return 0;
}

static const struct fuse_operations ops = {
    .init = ceiling_init,
    .getattr = ceiling_getattr,
    .readdir = ceiling_readdir,
    .open = ceiling_open,
    .read_buf = ceiling_read_buf,
};

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	struct fuse *f;
	int i, r;
	size_t k;

	if (argc < 3) {
		fprintf(stderr,
			"usage: fuse-ceiling SIZE_MIB MOUNTPOINT [FUSE ARGS...]\n");
		return 2;
	}
	size = strtoull(argv[1], NULL, 10) << 20;
	pattern = malloc(PATTERN);
	if (!pattern)
		return 1;
	for (k = 0; k < PATTERN; k++) /* not zeros: no shortcut anywhere */
		pattern[k] = (unsigned char)(k * 2654435761u >> 24);
	/* as vmdkfs (fs/main.c): keep 1 MiB buffers on the heap */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 128 << 20);
	/* as vmdkfs (fs_serve): the same options and loop */
	if (fuse_opt_add_arg(&args, argv[0]) < 0 ||
	    fuse_opt_add_arg(&args, "-ofsname=fuse-ceiling") < 0 ||
	    fuse_opt_add_arg(&args, "-oro") < 0)
		return 1;
	for (i = 3; i < argc; i++)
		if (fuse_opt_add_arg(&args, argv[i]) < 0)
			return 1;
	f = fuse_new(&args, &ops, sizeof(ops), NULL);
	if (!f || fuse_mount(f, argv[2]) != 0)
		return 1;
	if (fuse_set_signal_handlers(fuse_get_session(f)) != 0)
		return 1;
	if (!lc)
		return 1;
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, 1);
	fuse_loop_cfg_set_idle_threads(lc, 1);
	r = fuse_loop_mt(f, lc);
	fuse_loop_cfg_destroy(lc);
	fuse_remove_signal_handlers(fuse_get_session(f));
	fuse_unmount(f);
	fuse_destroy(f);
	return r >= 0 ? 0 : 1;
}

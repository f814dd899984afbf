#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "source.h"

struct fd_source {
	struct source s;
	int fd;
	dev_t dev;
	ino_t ino;
	struct fd_source *next; /* in open_files */
};

/* Every file this process has open, so that a lock refused by one of its
 * own opens is not blamed on another process. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fd_source *open_files;

static bool open_here(const struct stat *st)
{
	struct fd_source *f;
	bool found = false;

	pthread_mutex_lock(&open_lock);
	for (f = open_files; f && !found; f = f->next)
		found = f->dev == st->st_dev && f->ino == st->st_ino;
	pthread_mutex_unlock(&open_lock);
	return found;
}

static int fd_pread(struct source *s, void *buf, size_t len, uint64_t off)
{
	struct fd_source *f = (struct fd_source *)s;
	char *p = buf;

	while (len > 0) {
		ssize_t n = pread(f->fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			vmdkfs_error("%s: read at offset %llu: %m", s->name,
				     (unsigned long long)off);
			return -errno;
		}
		if (n == 0) {
			vmdkfs_error("%s: read at offset %llu: past the end "
				     "of the file (%llu bytes)",
				     s->name, (unsigned long long)off,
				     (unsigned long long)s->size);
			return -EIO;
		}
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

/* Holes of the file, as its file system reports them (SEEK_DATA). */
static int fd_map(struct source *s, uint64_t off, uint64_t len, bool *data,
		  uint64_t *run)
{
	struct fd_source *f = (struct fd_source *)s;
	off_t d = lseek(f->fd, (off_t)off, SEEK_DATA), h;

	if (d < 0 && errno == ENXIO)
		d = (off_t)s->size; /* a hole to the end */
	else if (d < 0) {
		/* no SEEK_DATA here (or a block device): all data */
		*data = true;
		*run = len;
		return 0;
	}
	if ((uint64_t)d > off) {
		*data = false;
		*run = (uint64_t)d - off;
	} else {
		h = lseek(f->fd, (off_t)off, SEEK_HOLE);
		*data = true;
		*run = h > (off_t)off ? (uint64_t)h - off : len;
	}
	if (*run > len)
		*run = len;
	return 0;
}

static int fd_pwrite(struct source *s, const void *buf, size_t len,
		     uint64_t off)
{
	struct fd_source *f = (struct fd_source *)s;
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(f->fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			vmdkfs_error("%s: write at offset %llu: %m", s->name,
				     (unsigned long long)off);
			return -errno;
		}
		p += n;
		len -= n;
		off += n;
	}
	if (off > s->size)
		s->size = off;
	return 0;
}

static int fd_flush(struct source *s)
{
	struct fd_source *f = (struct fd_source *)s;

	if (fdatasync(f->fd) < 0) {
		vmdkfs_error("%s: fdatasync: %m", s->name);
		return -errno;
	}
	return 0;
}

static void fd_close(struct source *s)
{
	struct fd_source *f = (struct fd_source *)s, **p;

	pthread_mutex_lock(&open_lock);
	for (p = &open_files; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	pthread_mutex_unlock(&open_lock);
	close(f->fd);
	free(s->name);
	free(f);
}

static uint64_t fd_allocated(struct source *s)
{
	struct stat st;

	if (fstat(((struct fd_source *)s)->fd, &st) < 0)
		return s->size;
	return (uint64_t)st.st_blocks * 512;
}

static const struct source_ops fd_ops = {
    .pread = fd_pread,
    .pwrite = fd_pwrite,
    .flush = fd_flush,
    .close = fd_close,
    .allocated = fd_allocated,
    .map = fd_map,
};

int fd_source_open(const char *path, bool writable, struct source **out)
{
	struct fd_source *f;
	struct stat st;
	int fd, e;

	fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		vmdkfs_error("%s: cannot open: %s", path, strerror(e));
		return -e;
	}
	/* A writer excludes every other opener of the file, through vmdkfs;
	 * readers share.  (qemu's own locks are byte ranges and do not see
	 * these.) */
	if (fstat(fd, &st) < 0 ||
	    !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		vmdkfs_error("%s: not a regular file or block device", path);
		close(fd);
		return -EINVAL;
	}
	if (flock(fd, (writable ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0 &&
	    errno == EWOULDBLOCK) {
		if (open_here(&st))
			vmdkfs_error("%s: this mount already opens it (the "
				     "same disk given twice, or a link of "
				     "another disk's chain): a disk written "
				     "must be in no other disk's chain",
				     path);
		else
			vmdkfs_error("%s: in use: another process has it open "
				     "%s",
				     path,
				     writable ? "(vmdkfs writes only a disk "
						"that no other vmdkfs has open)"
					      : "for writing");
		close(fd);
		return -EBUSY;
	}
	f = calloc(1, sizeof(*f));
	if (!f || !(f->s.name = strdup(path))) {
		free(f);
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	pthread_mutex_lock(&open_lock);
	f->next = open_files;
	open_files = f;
	pthread_mutex_unlock(&open_lock);
	/* Disk images are mostly read in long runs, by several threads at
	 * once: a wider readahead window keeps the kernel's readahead going
	 * when their requests arrive slightly out of order. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	f->s.ops = &fd_ops;
	f->s.writable = writable;
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(fd, 0, SEEK_END);

		f->s.size = end < 0 ? 0 : (uint64_t)end;
	} else {
		f->s.size = (uint64_t)st.st_size;
	}
	*out = &f->s;
	return 0;
}

static int local_open(void *opaque, const char *path, bool writable,
		      struct source **out)
{
	(void)opaque;
	return fd_source_open(path, writable, out);
}

const struct source_opener local_opener = {.open = local_open};

struct mem_source {
	struct source s;
	char *data;
};

static int mem_pread(struct source *s, void *buf, size_t len, uint64_t off)
{
	struct mem_source *m = (struct mem_source *)s;

	if (off > s->size || len > s->size - off) {
		vmdkfs_error("%s: read at offset %llu: past the end of the "
			     "file (%llu bytes)",
			     s->name, (unsigned long long)off,
			     (unsigned long long)s->size);
		return -EIO;
	}
	memcpy(buf, m->data + off, len);
	return 0;
}

int source_ro_pwrite(struct source *s, const void *buf, size_t len,
		     uint64_t off)
{
	(void)buf, (void)len, (void)off;
	vmdkfs_error("%s: opened read-only", s->name);
	return -EROFS;
}

int source_no_flush(struct source *s)
{
	(void)s;
	return 0;
}

static void mem_close(struct source *s)
{
	struct mem_source *m = (struct mem_source *)s;

	free(m->data);
	free(s->name);
	free(m);
}

static const struct source_ops mem_ops = {
    .pread = mem_pread,
    .pwrite = source_ro_pwrite,
    .flush = source_no_flush,
    .close = mem_close,
};

int mem_source_new(const char *name, const void *data, size_t len,
		   struct source **out)
{
	struct mem_source *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->data = malloc(len ? len : 1);
	m->s.name = strdup(name);
	if (!m->data || !m->s.name) {
		free(m->data);
		free(m->s.name);
		free(m);
		return -ENOMEM;
	}
	memcpy(m->data, data, len);
	m->s.ops = &mem_ops;
	m->s.size = len;
	*out = &m->s;
	return 0;
}

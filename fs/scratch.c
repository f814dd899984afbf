/* The scratch layer (-o scratch, scratch=DIR): a copy-on-write layer in
 * front of each disk of a read-only mount.  Writes land in 64 KiB chunks
 * of one store the mount shares (memory, or a temporary file unlinked at
 * once), bounded by scratch_max; reads take a written chunk from the
 * store and everything else from the disk below, which stays opened
 * read-only and is never written.  Nothing is kept after unmount.
 *
 * Each layer keeps its chunks in an array sorted by chunk number: a
 * lookup is a binary search, and the next written chunk after a position
 * (for SEEK_DATA/SEEK_HOLE) is the one the search lands on.  An insert
 * moves the array's tail: cheap for the tens of thousands of chunks a
 * journal replay writes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/err.h"
#include "layers.h"

/* ---- The store: chunk slots in memory or in a temporary file ---- */

static struct {
	bool on;
	int fd;		    /* the temporary file, or -1: memory */
	uint64_t max, used; /* bytes */
	uint64_t next;	    /* file: offset of the next new slot */
	pthread_mutex_t lock;
} store = {.fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

/* A written chunk of a layer: chunk number INDEX (bytes INDEX *
 * SCRATCH_CHUNK of the disk), held at MEM or at file offset OFF. */
struct chunk {
	uint64_t index;
	char *mem;
	uint64_t off;
};

int fs_scratch_open(const char *dir, uint64_t max)
{
	char tmpl[4096];
	int fd;

	if (!dir)
		return 0;
	store.max = max;
	store.used = store.next = 0;
	store.fd = -1;
	if (dir[0]) {
		fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0 && errno != ENOENT && errno != ENOTDIR &&
		    errno != EACCES) {
			/* No O_TMPFILE there: a named file, unlinked. */
			snprintf(tmpl, sizeof(tmpl), "%s/vmdkfs-scratch.XXXXXX",
				 dir);
			fd = mkostemp(tmpl, O_CLOEXEC);
			if (fd >= 0)
				unlink(tmpl);
		}
		if (fd < 0) {
			vmdkfs_error("scratch=%s: cannot make a temporary file "
				     "there: %m",
				     dir);
			return -errno;
		}
		store.fd = fd;
	}
	store.on = true;
	log_info("scratch layer: %s%s, at most %llu bytes; writes are "
		 "discarded at unmount",
		 dir[0] ? "a temporary file in " : "memory", dir,
		 (unsigned long long)max);
	return 0;
}

bool fs_scratch_on(void)
{
	return store.on;
}

void fs_scratch_close(void)
{
	if (store.fd >= 0)
		close(store.fd);
	store.fd = -1;
	store.on = false;
	store.used = store.next = 0;
}

/* A new slot for chunk C: -ENOSPC past scratch_max, -ENOMEM. */
static int slot_alloc(struct chunk *c)
{
	int r = 0;

	pthread_mutex_lock(&store.lock);
	if (store.used + SCRATCH_CHUNK > store.max) {
		r = -ENOSPC;
	} else if (store.fd < 0) {
		c->mem = malloc(SCRATCH_CHUNK);
		if (!c->mem)
			r = -ENOMEM;
	} else {
		c->off = store.next;
		store.next += SCRATCH_CHUNK;
	}
	if (r == 0)
		store.used += SCRATCH_CHUNK;
	pthread_mutex_unlock(&store.lock);
	if (r == -ENOSPC)
		vmdkfs_error("the scratch layer is full (scratch_max=%llu "
			     "bytes)",
			     (unsigned long long)store.max);
	return r;
}

static void slot_free(struct chunk *c)
{
	free(c->mem);
	c->mem = NULL;
	pthread_mutex_lock(&store.lock);
	store.used -= SCRATCH_CHUNK;
	pthread_mutex_unlock(&store.lock);
}

/* LEN bytes at POS of chunk C into or from BUF.  0 or -errno. */
static int slot_io(const struct chunk *c, void *buf, size_t len, size_t pos,
		   bool write)
{
	char *p = buf;

	if (c->mem) {
		if (write)
			memcpy(c->mem + pos, buf, len);
		else
			memcpy(buf, c->mem + pos, len);
		return 0;
	}
	while (len > 0) {
		ssize_t n =
		    write ? pwrite(store.fd, p, len, (off_t)(c->off + pos))
			  : pread(store.fd, p, len, (off_t)(c->off + pos));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			vmdkfs_error("scratch file: %s of %zu bytes: %m",
				     write ? "write" : "read", len);
			return -e;
		}
		if (n == 0) { /* a read past what was written: zeros */
			memset(p, 0, len);
			return 0;
		}
		p += n;
		pos += (size_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- A layer ---- */

struct scratch_disk {
	struct disk d;
	struct disk *under;
	pthread_mutex_t lock; /* the chunk array; writes are serialised */
	struct chunk *map;    /* sorted by index */
	size_t n, cap;
};

static struct scratch_disk *sd_of(struct disk *d)
{
	return (struct scratch_disk *)d;
}

/* The position of the first chunk numbered INDEX or more.  Called with
 * s->lock held. */
static size_t find(const struct scratch_disk *s, uint64_t index)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->map[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool found(const struct scratch_disk *s, size_t i, uint64_t index)
{
	return i < s->n && s->map[i].index == index;
}

/* Bytes of chunk INDEX that lie on the disk (the last may be short). */
static size_t chunk_len(const struct scratch_disk *s, uint64_t index)
{
	uint64_t start = index * SCRATCH_CHUNK;

	return s->d.size - start < SCRATCH_CHUNK ? (size_t)(s->d.size - start)
						 : SCRATCH_CHUNK;
}

/* LEN bytes at OFF (whole sectors) from the disk below. */
static int read_under(struct scratch_disk *s, void *buf, size_t len,
		      uint64_t off)
{
	ssize_t n = disk_pread(s->under, buf, len, off);

	if (n < 0)
		return (int)n;
	if ((size_t)n != len) {
		vmdkfs_error("%s: short read below the scratch layer",
			     s->d.path ? s->d.path : "disk");
		return -EIO;
	}
	return 0;
}

static int scratch_pread(struct disk *d, void *buf, uint64_t sector,
			 uint64_t count)
{
	struct scratch_disk *s = sd_of(d);
	uint64_t off = sector * d->sector_size;
	uint64_t len = count * d->sector_size;
	char *p = buf;
	int r;

	while (len > 0) {
		uint64_t index = off / SCRATCH_CHUNK, stop;
		size_t pos = off % SCRATCH_CHUNK, i;
		uint64_t n =
		    SCRATCH_CHUNK - pos < len ? SCRATCH_CHUNK - pos : len;

		pthread_mutex_lock(&s->lock);
		i = find(s, index);
		if (found(s, i, index)) {
			r = slot_io(&s->map[i], p, n, pos, false);
			pthread_mutex_unlock(&s->lock);
		} else {
			/* Up to the next written chunk, from below. */
			stop = i < s->n ? s->map[i].index * SCRATCH_CHUNK
					: UINT64_MAX;
			pthread_mutex_unlock(&s->lock);
			n = stop - off < len ? stop - off : len;
			r = read_under(s, p, n, off);
		}
		if (r < 0)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Chunk INDEX into the layer at array position I, its bytes copied up
 * from below unless the write about to be made covers it whole (WHOLE).
 * Called with s->lock held. */
static int chunk_add(struct scratch_disk *s, size_t i, uint64_t index,
		     bool whole)
{
	struct chunk c = {.index = index};
	void *tmp = NULL;
	size_t clen = chunk_len(s, index);
	size_t align = s->under->mem_align > 64 ? s->under->mem_align : 64;
	int r;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct chunk *m = realloc(s->map, cap * sizeof(*m));

		if (!m)
			return -ENOMEM;
		s->map = m;
		s->cap = cap;
	}
	r = slot_alloc(&c);
	if (r < 0)
		return r;
	if (!whole) {
		if (posix_memalign(&tmp, align, SCRATCH_CHUNK) != 0) {
			slot_free(&c);
			return -ENOMEM;
		}
		r = read_under(s, tmp, clen, index * SCRATCH_CHUNK);
		if (r == 0)
			r = slot_io(&c, tmp, clen, 0, true);
		free(tmp);
		if (r < 0) {
			slot_free(&c);
			return r;
		}
	}
	memmove(&s->map[i + 1], &s->map[i], (s->n - i) * sizeof(*s->map));
	s->map[i] = c;
	s->n++;
	return 0;
}

static int scratch_pwrite(struct disk *d, const void *buf, uint64_t sector,
			  uint64_t count)
{
	struct scratch_disk *s = sd_of(d);
	uint64_t off = sector * d->sector_size;
	uint64_t len = count * d->sector_size;
	const char *p = buf;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	while (len > 0 && r == 0) {
		uint64_t index = off / SCRATCH_CHUNK;
		size_t pos = off % SCRATCH_CHUNK, i = find(s, index);
		size_t n = SCRATCH_CHUNK - pos < len ? SCRATCH_CHUNK - pos
						     : (size_t)len;

		if (!found(s, i, index))
			r = chunk_add(s, i, index,
				      pos == 0 && n == chunk_len(s, index));
		if (r == 0)
			r = slot_io(&s->map[i], (void *)p, n, pos, true);
		p += n;
		off += n;
		len -= n;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Nothing is ever made durable: the layer ends at unmount. */
static int scratch_flush(struct disk *d)
{
	(void)d;
	return 0;
}

/* Written chunks are data; elsewhere the disk's own allocation, each run
 * ended at the next written chunk. */
static int scratch_block_status(struct disk *d, uint64_t sector, uint64_t count,
				int *kind, uint64_t *run)
{
	struct scratch_disk *s = sd_of(d);
	uint64_t ss = d->sector_size, off = sector * ss, end, next;
	uint64_t index = off / SCRATCH_CHUNK;
	size_t i, j;
	int r;

	pthread_mutex_lock(&s->lock);
	i = find(s, index);
	if (found(s, i, index)) {
		for (j = i;
		     j + 1 < s->n && s->map[j + 1].index == s->map[j].index + 1;
		     j++)
			;
		end = (s->map[j].index + 1) * SCRATCH_CHUNK;
		pthread_mutex_unlock(&s->lock);
		*kind = DISK_DATA;
		*run = (end - off + ss - 1) / ss;
		if (*run > count)
			*run = count;
		return 0;
	}
	next = i < s->n ? s->map[i].index * SCRATCH_CHUNK : UINT64_MAX;
	pthread_mutex_unlock(&s->lock);
	if (s->under->ops->block_status) {
		r = s->under->ops->block_status(s->under, sector, count, kind,
						run);
		if (r < 0)
			return r;
	} else {
		*kind = DISK_DATA;
		*run = count;
	}
	if (*run > count)
		*run = count;
	if (next != UINT64_MAX && (sector + *run) * ss > next)
		*run = (next - off) / ss;
	if (*run == 0)
		*run = 1;
	return 0;
}

static uint64_t scratch_allocated(struct disk *d)
{
	struct scratch_disk *s = sd_of(d);
	uint64_t a = s->under->ops->allocated
			 ? s->under->ops->allocated(s->under)
			 : s->under->size;

	a += (uint64_t)s->n * SCRATCH_CHUNK;
	return a < d->size ? a : d->size;
}

static void scratch_close(struct disk *d)
{
	struct scratch_disk *s = sd_of(d);
	size_t i;

	if (s->n)
		log_info("%s: %zu KiB written to the scratch layer, discarded",
			 d->path ? d->path : "disk",
			 s->n * (SCRATCH_CHUNK >> 10));
	for (i = 0; i < s->n; i++)
		slot_free(&s->map[i]);
	free(s->map);
	disk_close(s->under);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct disk_ops scratch_ops = {
    .pread = scratch_pread,
    .pwrite = scratch_pwrite,
    .flush = scratch_flush,
    .block_status = scratch_block_status,
    .allocated = scratch_allocated,
    .close = scratch_close,
};

int fs_scratch_wrap(struct disk *under, struct disk **out)
{
	struct scratch_disk *s;

	if (SCRATCH_CHUNK % under->sector_size) {
		vmdkfs_error("%s: %u-byte sectors: too large for the scratch "
			     "layer's chunks",
			     under->path ? under->path : "disk",
			     under->sector_size);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->under = under;
	/* The disk's names (shared, not owned), size, sector size and
	 * alignment; no cache and no request limit of its own (the disk
	 * below has them). */
	s->d.ops = &scratch_ops;
	s->d.transport = under->transport;
	s->d.path = under->path;
	s->d.lun = under->lun;
	s->d.size = under->size;
	s->d.sector_size = under->sector_size;
	s->d.mem_align = under->mem_align;
	s->d.cid = under->cid;
	s->d.readonly = false;
	*out = &s->d;
	return 0;
}

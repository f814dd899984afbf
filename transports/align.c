/* The alignment layer: any (offset, length) becomes whole-sector I/O on the
 * transport, with aligned bounce buffers for the partial sectors at either
 * end and for callers' buffers that the transport cannot use directly.
 * With the read cache on, I/O goes through 64 KiB cache blocks instead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "../common/lru.h"
#include "disk.h"

#define CACHE_BLOCK (64u << 10)

/* Whole sectors, split at d->max_io; BUF must suit d->mem_align. */
static int sectors_io(struct disk *d, char *buf, uint64_t sector,
		      uint64_t count, bool write)
{
	uint64_t max = d->max_io ? d->max_io / d->sector_size : count;
	int r;

	if (max == 0)
		max = 1;
	while (count > 0) {
		uint64_t n = count < max ? count : max;

		r = write ? d->ops->pwrite(d, buf, sector, n)
			  : d->ops->pread(d, buf, sector, n);
		if (r < 0)
			return r;
		buf += n * d->sector_size;
		sector += n;
		count -= n;
	}
	return 0;
}

static int read_sectors(struct disk *d, void *buf, uint64_t sector,
			uint64_t count)
{
	return sectors_io(d, buf, sector, count, false);
}

static int write_sectors(struct disk *d, const void *buf, uint64_t sector,
			 uint64_t count)
{
	return sectors_io(d, (char *)buf, sector, count, true);
}

static void *bounce_alloc(struct disk *d, size_t len)
{
	void *p = NULL;
	size_t align = d->mem_align > sizeof(void *) ? d->mem_align : 64;

	if (posix_memalign(&p, align, len) != 0)
		return NULL;
	return p;
}

/* Read through the cache: whole 64 KiB blocks (the last may be short). */
static int read_cached(struct disk *d, char *buf, size_t len, uint64_t off)
{
	char *blk = NULL;
	int r = 0;

	while (len > 0) {
		uint64_t b = off / CACHE_BLOCK;
		size_t pos = off % CACHE_BLOCK;
		size_t n = CACHE_BLOCK - pos < len ? CACHE_BLOCK - pos : len;

		uint64_t gen;

		if (!lru_get(d->cache, d, b, pos, buf, n, &gen)) {
			uint64_t start = b * CACHE_BLOCK;
			uint64_t blen = d->size - start < CACHE_BLOCK
					    ? d->size - start
					    : CACHE_BLOCK;

			if (!blk && !(blk = bounce_alloc(d, CACHE_BLOCK)))
				return -ENOMEM;
			memset(blk, 0, CACHE_BLOCK);
			r = read_sectors(d, blk, start / d->sector_size,
					 blen / d->sector_size);
			if (r < 0)
				break;
			lru_put(d->cache, d, b, blk, &gen);
			memcpy(buf, blk + pos, n);
		}
		buf += n;
		off += n;
		len -= n;
	}
	free(blk);
	return r;
}

ssize_t disk_pread(struct disk *d, void *buf, size_t len, uint64_t off)
{
	uint64_t ss = d->sector_size, first, last, end;
	size_t head, done = 0;
	char *p = buf, *bounce = NULL;
	int r;

	if (off >= d->size)
		return 0;
	if (len > d->size - off)
		len = d->size - off;
	if (len == 0)
		return 0;
	if (d->cache) {
		r = read_cached(d, buf, len, off);
		return r < 0 ? r : (ssize_t)len;
	}
	end = off + len;
	first = off / ss;
	last = (end + ss - 1) / ss; /* exclusive */

	/* Unaligned edges or buffer: go through a bounce buffer for the
	 * partial sectors; the aligned middle goes straight to BUF when the
	 * transport accepts its alignment. */
	head = off % ss;
	if (head || ((uintptr_t)p % (d->mem_align ? d->mem_align : 1))) {
		size_t n;

		bounce = bounce_alloc(d, ss);
		if (!bounce)
			return -ENOMEM;
		if (head || len < ss) {
			r = read_sectors(d, bounce, first, 1);
			if (r < 0)
				goto out;
			n = ss - head < len ? ss - head : len;
			memcpy(p, bounce + head, n);
			done = n;
			first++;
		}
	}
	if (done < len) {
		uint64_t mid = (end / ss > first) ? end / ss - first : 0;

		if (mid && d->mem_align > 1 &&
		    (uintptr_t)(p + done) % d->mem_align) {
			/* Caller's buffer is misaligned: bounce in chunks. */
			size_t chunk = 1u << 20;
			char *tmp = bounce_alloc(d, chunk);

			if (!tmp) {
				r = -ENOMEM;
				goto out;
			}
			while (mid) {
				uint64_t n =
				    chunk / ss < mid ? chunk / ss : mid;

				r = read_sectors(d, tmp, first, n);
				if (r < 0) {
					free(tmp);
					goto out;
				}
				memcpy(p + done, tmp, n * ss);
				done += n * ss;
				first += n;
				mid -= n;
			}
			free(tmp);
		} else if (mid) {
			r = read_sectors(d, p + done, first, mid);
			if (r < 0)
				goto out;
			done += mid * ss;
			first += mid;
		}
	}
	if (done < len) {
		/* Partial last sector. */
		if (!bounce && !(bounce = bounce_alloc(d, ss))) {
			r = -ENOMEM;
			goto out;
		}
		r = read_sectors(d, bounce, last - 1, 1);
		if (r < 0)
			goto out;
		memcpy(p + done, bounce, len - done);
		done = len;
	}
	r = 0;
out:
	free(bounce);
	return r < 0 ? r : (ssize_t)len;
}

int disk_enable_cache(struct disk *d, size_t bytes)
{
	size_t n = bytes / CACHE_BLOCK;

	if (d->cache)
		return 0;
	if (CACHE_BLOCK % d->sector_size)
		return -EINVAL;
	return lru_new(n ? n : 1, CACHE_BLOCK, &d->cache);
}

void disk_close(struct disk *d)
{
	struct lru *c;

	if (!d)
		return;
	c = d->cache;
	d->ops->close(d);
	lru_free(c);
}

/* ---- Writes ---- */

#define RMW_LOCKS 64
static pthread_mutex_t rmw_locks[RMW_LOCKS] = {
	[0 ... RMW_LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER,
};

/* Read-modify-write LEN bytes at byte POS of SECTOR. */
static int write_partial(struct disk *d, const char *buf, uint64_t sector,
			 size_t pos, size_t len)
{
	pthread_mutex_t *m = &rmw_locks[sector % RMW_LOCKS];
	char *b = bounce_alloc(d, d->sector_size);
	int r;

	if (!b)
		return -ENOMEM;
	pthread_mutex_lock(m);
	r = read_sectors(d, b, sector, 1);
	if (r == 0) {
		memcpy(b + pos, buf, len);
		r = write_sectors(d, b, sector, 1);
	}
	pthread_mutex_unlock(m);
	free(b);
	return r;
}

/* Drop cached blocks touched by a write of [OFF, OFF + LEN). */
static void cache_forget(struct disk *d, uint64_t off, size_t len)
{
	uint64_t b;

	for (b = off / CACHE_BLOCK; b * CACHE_BLOCK < off + len; b++)
		lru_drop(d->cache, d, b);
}

ssize_t disk_pwrite(struct disk *d, const void *buf, size_t len, uint64_t off)
{
	uint64_t ss = d->sector_size;
	const char *p = buf;
	size_t done = 0;
	int r = 0;

	if (d->readonly)
		return -EROFS;
	if (off >= d->size)
		return len ? -ENOSPC : 0;
	if (len > d->size - off)
		len = d->size - off;
	while (done < len && r == 0) {
		uint64_t at = off + done, sector = at / ss;
		size_t pos = at % ss, n;

		if (pos || len - done < ss) {
			n = ss - pos < len - done ? ss - pos : len - done;
			r = write_partial(d, p + done, sector, pos, n);
		} else {
			uint64_t count = (len - done) / ss;

			n = count * ss;
			if (d->mem_align > 1 &&
			    (uintptr_t)(p + done) % d->mem_align) {
				char *tmp;

				if (n > (1u << 20))
					n = 1u << 20;
				tmp = bounce_alloc(d, n);
				if (!tmp)
					return -ENOMEM;
				memcpy(tmp, p + done, n);
				r = write_sectors(d, tmp, sector, n / ss);
				free(tmp);
			} else {
				r = write_sectors(d, p + done, sector, count);
			}
		}
		done += n;
	}
	if (d->cache)
		cache_forget(d, off, len);
	return r < 0 ? r : (ssize_t)len;
}

int disk_flush(struct disk *d)
{
	return d->readonly ? 0 : d->ops->flush(d);
}

int disk_block_status(struct disk *d, uint64_t off, bool *data, uint64_t *len)
{
	uint64_t ss = d->sector_size, sector = off / ss, run;
	int kind, r;

	if (off >= d->size)
		return -ENXIO;
	if (!d->ops->block_status) {
		*data = true;
		*len = d->size - off;
		return 0;
	}
	r = d->ops->block_status(d, sector, (d->size - off + ss - 1) / ss,
				 &kind, &run);
	if (r < 0)
		return r;
	*data = kind == DISK_DATA;
	*len = (sector + run) * ss - off;
	return 0;
}

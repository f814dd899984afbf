/* A disk over another one, with its allocation from a list of areas (the
 * changed block tracking of vSphere), see areas.h.  Sector I/O of this
 * disk becomes byte I/O of the disk below through its own alignment layer
 * and cache. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "areas.h"

struct shared {
	struct disk *inner;
	int refs; /* changed only while the tree is built or closed */
	/* The areas the inner disk's read-ahead keeps to (inner->ahead_data):
	 * a mask's (the smallest: an incremental copy reads no more than
	 * changed), else the map's. */
	struct disk_area *hint;
	size_t nhint;
	bool hint_from_mask;
};

static const struct disk_ops areas_ops;

struct adisk {
	struct disk d; /* first */
	struct shared *sh;
	enum areas_mode mode;
	struct disk_area *a;
	size_t n;
	uint64_t total; /* bytes in the areas */
};

/* inner->ahead_data: the first area that ends after OFF. */
static bool hint_data(void *arg, uint64_t off, uint64_t *start, uint64_t *end)
{
	struct shared *sh = arg;
	size_t lo = 0, hi = sh->nhint;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sh->hint[mid].off + sh->hint[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == sh->nhint)
		return false;
	*start = sh->hint[lo].off;
	*end = sh->hint[lo].off + sh->hint[lo].len;
	return true;
}

/* Let AD's areas bound the read-ahead of the disk below. */
static void set_hint(struct shared *sh, const struct adisk *ad)
{
	struct disk_area *h;

	if (ad->mode == AREAS_PASS || (sh->hint && sh->hint_from_mask))
		return;
	h = ad->n ? malloc(ad->n * sizeof(*h)) : NULL;
	if (ad->n && !h)
		return; /* only a hint */
	if (ad->n)
		memcpy(h, ad->a, ad->n * sizeof(*h));
	free(sh->hint);
	sh->hint = h;
	sh->nhint = ad->n;
	sh->hint_from_mask = ad->mode == AREAS_MASK;
	sh->inner->ahead_arg = sh;
	sh->inner->ahead_data = hint_data;
}


bool areas_is(const struct disk *d)
{
	return d && d->ops == &areas_ops;
}

/* The first area that ends after byte POS (N if none). */
static size_t area_after(const struct adisk *ad, uint64_t pos)
{
	size_t lo = 0, hi = ad->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ad->a[mid].off + ad->a[mid].len <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Is byte POS in an area, and for how many bytes (up to LIMIT) is that
 * so? */
static bool area_at(const struct adisk *ad, uint64_t pos, uint64_t limit,
		    uint64_t *run)
{
	size_t i = area_after(ad, pos);
	uint64_t end = limit;
	bool in = false;

	if (i < ad->n && ad->a[i].off <= pos) {
		in = true;
		end = ad->a[i].off + ad->a[i].len;
	} else if (i < ad->n) {
		end = ad->a[i].off;
	}
	if (end > limit)
		end = limit;
	*run = end - pos;
	return in;
}

static int areas_pread(struct disk *d, void *buf, uint64_t sector,
		       uint64_t count)
{
	struct adisk *ad = (struct adisk *)d;
	uint64_t ss = d->sector_size, pos = sector * ss, end = pos + count * ss;
	char *p = buf;

	if (ad->mode != AREAS_MASK) {
		ssize_t r = disk_pread(ad->sh->inner, buf, count * ss, pos);

		return r < 0 ? (int)r : 0;
	}
	while (pos < end) {
		uint64_t run;
		bool in = area_at(ad, pos, end, &run);

		if (in) {
			ssize_t r = disk_pread(ad->sh->inner, p, run, pos);

			if (r < 0)
				return (int)r;
			if ((uint64_t)r < run)
				memset(p + r, 0, run - (uint64_t)r);
		} else {
			memset(p, 0, run);
		}
		p += run;
		pos += run;
	}
	return 0;
}

static int areas_pwrite(struct disk *d, const void *buf, uint64_t sector,
			uint64_t count)
{
	struct adisk *ad = (struct adisk *)d;
	ssize_t r;

	if (ad->mode == AREAS_MASK)
		return -EROFS;
	r = disk_pwrite(ad->sh->inner, buf, count * d->sector_size,
			sector * d->sector_size);
	return r < 0 ? (int)r : 0;
}

static int areas_flush(struct disk *d)
{
	struct adisk *ad = (struct adisk *)d;

	return ad->mode == AREAS_MASK ? 0 : disk_flush(ad->sh->inner);
}

static int areas_block_status(struct disk *d, uint64_t sector, uint64_t count,
			      int *kind, uint64_t *run)
{
	struct adisk *ad = (struct adisk *)d;
	uint64_t ss = d->sector_size, pos = sector * ss, end = pos + count * ss;
	uint64_t arun = end - pos, ilen;
	bool data = true, idata = true;
	int r;

	if (ad->mode != AREAS_PASS)
		data = area_at(ad, pos, end, &arun);
	/* The disk below may know holes of its own. */
	if (data && ad->sh->inner->ops->block_status) {
		r = disk_block_status(ad->sh->inner, pos, &idata, &ilen);
		if (r < 0)
			return r;
		if (ilen < arun)
			arun = ilen;
		data = idata;
	}
	*kind = data ? DISK_DATA : DISK_HOLE;
	*run = (arun + ss - 1) / ss;
	if (*run == 0)
		*run = 1;
	return 0;
}

static uint64_t areas_allocated(struct disk *d)
{
	struct adisk *ad = (struct adisk *)d;
	struct disk *in = ad->sh->inner;
	uint64_t below = in->ops->allocated ? in->ops->allocated(in) : in->size;

	if (ad->mode == AREAS_PASS)
		return below;
	return ad->total < below ? ad->total : below;
}

static void areas_close(struct disk *d)
{
	struct adisk *ad = (struct adisk *)d;

	if (--ad->sh->refs == 0) {
		disk_close(ad->sh->inner);
		free(ad->sh->hint);
		free(ad->sh);
	}
	free(ad->d.path);
	free(ad->d.lun);
	free(ad->a);
	free(ad);
}

static const struct disk_ops areas_ops = {
    .pread = areas_pread,
    .pwrite = areas_pwrite,
    .flush = areas_flush,
    .block_status = areas_block_status,
    .allocated = areas_allocated,
    .close = areas_close,
};

static int make(struct shared *sh, enum areas_mode mode,
		const struct disk_area *a, size_t n, struct disk **out)
{
	struct disk *in = sh->inner;
	struct adisk *ad = calloc(1, sizeof(*ad));
	uint64_t ss = in->sector_size;
	size_t i, o = 0;

	if (!ad || (n && !(ad->a = calloc(n, sizeof(*a))))) {
		free(ad);
		return -ENOMEM;
	}
	/* Whole sectors, inside the disk; neighbours that touch merge. */
	for (i = 0; mode != AREAS_PASS && i < n; i++) {
		uint64_t s = a[i].off / ss * ss, e = a[i].off + a[i].len;

		e = (e + ss - 1) / ss * ss;
		if (e > in->size)
			e = in->size;
		if (e <= s)
			continue;
		if (o && s <= ad->a[o - 1].off + ad->a[o - 1].len) {
			if (e > ad->a[o - 1].off + ad->a[o - 1].len)
				ad->a[o - 1].len = e - ad->a[o - 1].off;
			continue;
		}
		ad->a[o++] = (struct disk_area){s, e - s};
	}
	ad->n = o;
	for (i = 0; i < o; i++)
		ad->total += ad->a[i].len;
	ad->mode = mode;
	ad->sh = sh;
	ad->d.ops = &areas_ops;
	ad->d.transport = in->transport;
	ad->d.path = in->path ? strdup(in->path) : NULL;
	ad->d.lun = in->lun ? strdup(in->lun) : NULL;
	ad->d.size = in->size;
	ad->d.sector_size = in->sector_size;
	ad->d.mem_align = in->mem_align;
	ad->d.max_io = 0;
	ad->d.cid = in->cid;
	ad->d.readonly = mode == AREAS_MASK ? true : in->readonly;
	sh->refs++;
	set_hint(sh, ad);
	*out = &ad->d;
	return 0;
}

int areas_disk_new(struct disk *inner, enum areas_mode mode,
		   const struct disk_area *a, size_t n, struct disk **out)
{
	struct shared *sh = calloc(1, sizeof(*sh));
	int r;

	if (!sh)
		return -ENOMEM;
	sh->inner = inner;
	r = make(sh, mode, a, n, out);
	if (r < 0)
		free(sh);
	return r;
}

int areas_share(struct disk *d, enum areas_mode mode,
		const struct disk_area *a, size_t n, struct disk **out)
{
	if (!areas_is(d))
		return -EINVAL;
	return make(((struct adisk *)d)->sh, mode, a, n, out);
}

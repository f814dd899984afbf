/* A snapshot's disk read from the datastore's files themselves (san: the
 * VMFS volume on the LUN; file: a datastore folder mounted here): nothing
 * on the host knows of the reader, so another client may remove the
 * snapshot while it reads, and consolidation then writes the later bytes
 * into the very files the reader reads.  This wrapper asks vCenter, at
 * most every GUARD_EVERY_S seconds before a read, whether the snapshot is
 * still there; once it is gone every read fails (EIO, the reason logged),
 * never serving what consolidation wrote.  (nbd/nbdssl check on each new
 * link, and the host holds the files of an open NFC session or a
 * hot-added disk.)  Reads in the seconds between a removal and the next
 * check are not covered: the snapshot must not be removed while it is
 * read, as for VDDK's san mode. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/err.h"
#include "../vsphere/vsphere.h"
#include "transport.h"

#define GUARD_EVERY_S 2.0

struct guard {
	struct disk d;
	struct disk *inner;
	struct vs_conn *vs;
	char *snap;
	pthread_mutex_t lock;
	double checked; /* CLOCK_MONOTONIC s of the last check */
	bool gone;
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 0 while the snapshot is there (or could not be asked: the read goes on,
 * and the next read asks again), -EIO once it is gone. */
static int check(struct guard *g)
{
	int r = 0;

	pthread_mutex_lock(&g->lock);
	if (!g->gone && mono() - g->checked >= GUARD_EVERY_S) {
		int e = vs_snapshot_exists(g->vs, g->snap);

		if (e == 0)
			g->gone = true;
		else if (e > 0)
			g->checked = mono();
	}
	if (g->gone) {
		vmdkfs_error("%s: snapshot %s is gone (removed by another "
			     "client?): its files now hold other bytes, and "
			     "its disk can no longer be read",
			     g->d.path, g->snap);
		r = -EIO;
	}
	pthread_mutex_unlock(&g->lock);
	return r;
}

static int guard_pread(struct disk *d, void *buf, uint64_t sector,
		       uint64_t count)
{
	struct guard *g = (struct guard *)d;
	int r = check(g);

	return r < 0 ? r : g->inner->ops->pread(g->inner, buf, sector, count);
}

static int guard_pwrite(struct disk *d, const void *buf, uint64_t sector,
			uint64_t count)
{
	struct guard *g = (struct guard *)d;

	return g->inner->ops->pwrite(g->inner, buf, sector, count);
}

static int guard_flush(struct disk *d)
{
	struct guard *g = (struct guard *)d;

	return g->inner->ops->flush ? g->inner->ops->flush(g->inner) : 0;
}

static int guard_block_status(struct disk *d, uint64_t sector, uint64_t count,
			      int *kind, uint64_t *run)
{
	struct guard *g = (struct guard *)d;

	if (!g->inner->ops->block_status) {
		*kind = DISK_DATA;
		*run = count;
		return 0;
	}
	return g->inner->ops->block_status(g->inner, sector, count, kind, run);
}

static uint64_t guard_allocated(struct disk *d)
{
	struct guard *g = (struct guard *)d;

	return g->inner->ops->allocated ? g->inner->ops->allocated(g->inner)
					: g->inner->size;
}

static void guard_close(struct disk *d)
{
	struct guard *g = (struct guard *)d;

	disk_close(g->inner);
	pthread_mutex_destroy(&g->lock);
	free(g->snap);
	free(g->d.path);
	free(g->d.lun);
	free(g);
}

static const struct disk_ops guard_ops = {
    .pread = guard_pread,
    .pwrite = guard_pwrite,
    .flush = guard_flush,
    .block_status = guard_block_status,
    .allocated = guard_allocated,
    .close = guard_close,
};

int guard_disk_new(struct disk *inner, struct vs_conn *vs, const char *snap,
		   struct disk **out)
{
	struct guard *g = calloc(1, sizeof(*g));

	if (!g)
		return -ENOMEM;
	g->d = *inner; /* size, sector size, alignment, transport, cid... */
	g->d.ops = &guard_ops;
	g->d.cache = NULL;
	g->d.ahead_data = NULL;
	g->d.path = inner->path ? strdup(inner->path) : NULL;
	g->d.lun = inner->lun ? strdup(inner->lun) : NULL;
	g->inner = inner;
	g->vs = vs;
	g->snap = strdup(snap);
	g->checked = mono();
	pthread_mutex_init(&g->lock, NULL);
	if (!g->snap || (inner->path && !g->d.path) ||
	    (inner->lun && !g->d.lun)) {
		pthread_mutex_destroy(&g->lock);
		free(g->snap);
		free(g->d.path);
		free(g->d.lun);
		free(g);
		return -ENOMEM;
	}
	*out = &g->d;
	return 0;
}

/* A struct disk over another one whose allocation comes from a list of
 * areas (transports/areas.c): for disks read over the LAN, whose
 * transports know no holes, the areas vSphere's changed block tracking
 * reports.  I/O is forwarded to the disk below, so any transport works
 * (nbd, nbdssl, hotadd).
 */
#ifndef VMDKFS_AREAS_H
#define VMDKFS_AREAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disk.h"

struct disk_area {
	uint64_t off, len; /* bytes */
};

enum areas_mode {
	/* Reads give the disk's true bytes everywhere; the areas are the
	 * data (SEEK_DATA, st_blocks), the rest holes.  Writes forwarded. */
	AREAS_MAP,
	/* Reads give the disk's bytes inside the areas and zeros elsewhere
	 * (nothing is read there); read-only. */
	AREAS_MASK,
	/* No areas: forwards everything, allocation included (a disk shared
	 * with a mask view). */
	AREAS_PASS,
};

/* A disk over INNER with areas A (N of them, sorted and disjoint; copied,
 * rounded out to INNER's sectors).  INNER is shared by every disk made over
 * it with areas_share(), and closed when the last of them is. */
int areas_disk_new(struct disk *inner, enum areas_mode mode,
		   const struct disk_area *a, size_t n, struct disk **out);

/* Another disk over the same disk as D (one made by areas_disk_new). */
int areas_share(struct disk *d, enum areas_mode mode,
		const struct disk_area *a, size_t n, struct disk **out);

/* Is D one made by areas_disk_new / areas_share? */
bool areas_is(const struct disk *d);

#endif

/* Headers of the sparse extent formats: hosted sparse / streamOptimized
 * ("KDMV"), ESX redo logs ("COWD"), and SEsparse.  Each parser checks every
 * field it returns against the file size, so the reader can trust them. */
#include <errno.h>
#include <string.h>

#include "../common/err.h"
#include "vmdk.h"

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

#define MAX_GRAIN 65536u /* sectors: 32 MiB */

/* Does [off, off + len) lie inside a file of SIZE bytes? (no overflow) */
static bool inside(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

int vmdk4_header_parse(const uint8_t *buf, uint64_t file_size, const char *name,
		       struct vmdk_sparse_info *h)
{
	uint64_t gd_sectors, gd_span;
	uint16_t alg;

	memset(h, 0, sizeof(*h));
	h->magic = le32(buf);
	h->version = le32(buf + 4);
	h->flags = le32(buf + 8);
	h->capacity = le64(buf + 12);
	h->grain = le64(buf + 20);
	h->desc_offset = le64(buf + 28);
	h->desc_size = le64(buf + 36);
	h->gt_entries = le32(buf + 44);
	h->rgd_offset = le64(buf + 48);
	h->gd_offset = le64(buf + 56);
	h->unclean = buf[72] != 0;
	alg = (uint16_t)(buf[77] | buf[78] << 8);
	h->entry_size = 4;
	h->compressed = h->flags & VMDK4_FLAG_COMPRESSED;
	h->markers = h->flags & VMDK4_FLAG_MARKERS;
	h->zeroed_gte = h->flags & VMDK4_FLAG_ZEROED_GTE;

	if (h->magic != VMDK4_MAGIC) {
		vmdkfs_error("%s: sparse header: bad magic %08x (want KDMV)",
			     name, h->magic);
		return -EINVAL;
	}
	if (h->version < 1 || h->version > 3) {
		vmdkfs_error("%s: sparse header: version %u not supported "
			     "(1 to 3 are)",
			     name, h->version);
		return -EINVAL;
	}
	if ((h->flags & VMDK4_FLAG_NL_TEST) &&
	    memcmp(buf + 73, "\n \r\n", 4) != 0) {
		vmdkfs_error("%s: sparse header: newline check bytes are "
			     "damaged (text-mode transfer?)",
			     name);
		return -EINVAL;
	}
	if (h->capacity == 0 || h->capacity > VMDK_MAX_SECTORS) {
		vmdkfs_error("%s: sparse header: capacity %llu sectors is "
			     "out of range (1 to %llu)",
			     name, (unsigned long long)h->capacity,
			     (unsigned long long)VMDK_MAX_SECTORS);
		return -EINVAL;
	}
	if (h->grain == 0 || h->grain > MAX_GRAIN) {
		vmdkfs_error("%s: sparse header: grain size %llu sectors is "
			     "out of range (1 to %u)",
			     name, (unsigned long long)h->grain, MAX_GRAIN);
		return -EINVAL;
	}
	if (h->gt_entries == 0 || h->gt_entries > 65536) {
		vmdkfs_error("%s: sparse header: %u entries per grain table "
			     "is out of range (1 to 65536)",
			     name, h->gt_entries);
		return -EINVAL;
	}
	if (h->compressed && alg != 1) {
		vmdkfs_error("%s: sparse header: compression algorithm %u "
			     "not supported (1 = deflate is)",
			     name, alg);
		return -EINVAL;
	}
	if (h->desc_size > 2048 ||
	    (h->desc_size &&
	     (h->desc_offset > VMDK_MAX_SECTORS ||
	      !inside(h->desc_offset * 512, h->desc_size * 512, file_size)))) {
		vmdkfs_error("%s: sparse header: embedded descriptor (sector "
			     "%llu, %llu sectors) lies outside the file or is "
			     "too large",
			     name, (unsigned long long)h->desc_offset,
			     (unsigned long long)h->desc_size);
		return -EINVAL;
	}
	gd_span = h->grain * h->gt_entries;
	h->gd_entries = div_up(h->capacity, gd_span);
	if (h->gd_offset == VMDK4_GD_AT_END)
		return 0; /* the caller reads the footer */
	gd_sectors = div_up(h->gd_entries * 4, 512);
	if (h->gd_offset > VMDK_MAX_SECTORS ||
	    !inside(h->gd_offset * 512, gd_sectors * 512, file_size)) {
		vmdkfs_error("%s: sparse header: grain directory (sector %llu, "
			     "%llu entries) lies past the end of the file",
			     name, (unsigned long long)h->gd_offset,
			     (unsigned long long)h->gd_entries);
		return -EINVAL;
	}
	h->gd_offset *= 512;
	if (h->rgd_offset > VMDK_MAX_SECTORS)
		h->rgd_offset = 0;
	h->rgd_offset *= 512;
	return 0;
}

int cowd_header_parse(const uint8_t *buf, uint64_t file_size, const char *name,
		      struct vmdk_sparse_info *h)
{
	uint64_t need;

	memset(h, 0, sizeof(*h));
	h->magic = le32(buf);
	h->version = le32(buf + 4);
	h->flags = le32(buf + 8);
	h->capacity = le32(buf + 12);
	h->grain = le32(buf + 16);
	h->gd_offset = le32(buf + 20);
	h->gd_entries = le32(buf + 24);
	h->unclean = buf[1648] != 0;
	h->gt_entries = 4096;
	h->entry_size = 4;

	if (h->magic != COWD_MAGIC) {
		vmdkfs_error("%s: COWD header: bad magic %08x", name, h->magic);
		return -EINVAL;
	}
	if (h->version != 1) {
		vmdkfs_error("%s: COWD header: version %u not supported (1 is)",
			     name, h->version);
		return -EINVAL;
	}
	if (h->capacity == 0) {
		vmdkfs_error("%s: COWD header: capacity is 0", name);
		return -EINVAL;
	}
	if (h->grain == 0 || h->grain > MAX_GRAIN) {
		vmdkfs_error("%s: COWD header: grain size %llu sectors is out "
			     "of range (1 to %u)",
			     name, (unsigned long long)h->grain, MAX_GRAIN);
		return -EINVAL;
	}
	need = div_up(h->capacity, h->grain * 4096);
	if (h->gd_entries < need) {
		vmdkfs_error("%s: COWD header: %llu grain directory entries "
			     "cannot cover %llu sectors (need %llu)",
			     name, (unsigned long long)h->gd_entries,
			     (unsigned long long)h->capacity,
			     (unsigned long long)need);
		return -EINVAL;
	}
	if (!inside(h->gd_offset * 512, h->gd_entries * 4, file_size)) {
		vmdkfs_error("%s: COWD header: grain directory (sector %llu, "
			     "%llu entries) lies past the end of the file",
			     name, (unsigned long long)h->gd_offset,
			     (unsigned long long)h->gd_entries);
		return -EINVAL;
	}
	h->gd_offset *= 512;
	return 0;
}

int sesparse_header_parse(const uint8_t *buf, uint64_t file_size,
			  const char *name, struct vmdk_sparse_info *h)
{
	static const char *const area[] = {
	    "volatile header", "journal header", "journal",  "grain directory",
	    "grain tables",    "free bitmap",	 "back map", "grains",
	};
	uint64_t magic = le64(buf), version = le64(buf + 8);
	uint64_t gt_sectors = le64(buf + 32), flags = le64(buf + 40);
	uint64_t off[8], size[8];
	int i;

	memset(h, 0, sizeof(*h));
	h->capacity = le64(buf + 16);
	h->grain = le64(buf + 24);
	for (i = 0; i < 8; i++) {
		off[i] = le64(buf + 80 + 16 * i);
		size[i] = le64(buf + 88 + 16 * i);
	}
	if (magic != SESPARSE_MAGIC) {
		vmdkfs_error("%s: SEsparse header: bad magic %016llx", name,
			     (unsigned long long)magic);
		return -EINVAL;
	}
	h->magic = (uint32_t)magic;
	if (version != 0x0000000200000001ULL) {
		vmdkfs_error("%s: SEsparse header: version %016llx not "
			     "supported (0000000200000001 is)",
			     name, (unsigned long long)version);
		return -EINVAL;
	}
	if (h->capacity == 0 || h->capacity > VMDK_MAX_SECTORS) {
		vmdkfs_error("%s: SEsparse header: capacity %llu sectors is "
			     "out of range",
			     name, (unsigned long long)h->capacity);
		return -EINVAL;
	}
	if (h->grain != 8 || gt_sectors != 64) {
		vmdkfs_error("%s: SEsparse header: grain size %llu and grain "
			     "table size %llu sectors not supported (8 and 64 "
			     "are)",
			     name, (unsigned long long)h->grain,
			     (unsigned long long)gt_sectors);
		return -EINVAL;
	}
	if (flags != 0) {
		vmdkfs_error("%s: SEsparse header: unknown flags %016llx", name,
			     (unsigned long long)flags);
		return -EINVAL;
	}
	for (i = 0; i < 8; i++) {
		/* Areas a reader never uses (journal header, journal, free
		 * bitmap, back map) may be absent, offset and size 0, as
		 * qemu accepts them. */
		if ((i == 1 || i == 2 || i == 5 || i == 6) && off[i] == 0 &&
		    size[i] == 0)
			continue;
		if (off[i] == 0 || off[i] > VMDK_MAX_SECTORS ||
		    size[i] > VMDK_MAX_SECTORS ||
		    (i != 7 && i != 4 &&
		     !inside(off[i] * 512, size[i] * 512, file_size))) {
			vmdkfs_error("%s: SEsparse header: %s (sector %llu, "
				     "%llu sectors) lies outside the file",
				     name, area[i], (unsigned long long)off[i],
				     (unsigned long long)size[i]);
			return -EINVAL;
		}
	}
	h->version = 2;
	h->entry_size = 8;
	h->gt_entries = 4096;
	h->volatile_offset = off[0] * 512;
	h->gd_offset = off[3] * 512;
	h->gd_entries = size[3] * 512 / 8;
	h->gt_base = off[4] * 512;
	h->gt_area = size[4] * 512;
	h->grains_base = off[7] * 512;
	h->grains_area = size[7] * 512;
	if (h->gd_entries < div_up(h->capacity, 8 * 4096)) {
		vmdkfs_error("%s: SEsparse header: grain directory of %llu "
			     "entries cannot cover %llu sectors",
			     name, (unsigned long long)h->gd_entries,
			     (unsigned long long)h->capacity);
		return -EINVAL;
	}
	return 0;
}

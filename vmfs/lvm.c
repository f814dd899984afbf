/* The VMFS LVM: the header each device (partition or LUN) carries at
 * 1 MiB, and the physical-extent tables that map the logical volume onto
 * the devices.
 *
 * Layout (offsets from the header; confirmed on both real volumes unless
 * said otherwise):
 *   0x00 u32 magic 0xC001D00D   0x04 u32 major (5: VMFS5, 6: VMFS6)
 *   0x66 u32 volumes on the device (1)
 *   0x6a u32 physical-extent table entries (1 on both)
 *   0x7a u64 data offset (0x1100000 on both; the extents' own physical
 *            offsets are what the mapping uses)
 *   0x82 16  device UUID        0xbe u32 PE maps (VMFS5 1, VMFS6 0 = 1)
 *   0xc2 u64 extended metadata offset (0 on both; refused otherwise)
 *   0xca u32 LVM6 metadata alignment (0x1000)
 * The volume table follows the 512-byte (LVM5) or alignment-sized (LVM6)
 * device metadata; an entry (512 bytes): 0x00 u64 logical size, 0x14
 * name[64], 0x54 logical volume UUID (16) + snapshot id (u32), 0x70 u32
 * volume id, 0x74 u32 extents in 256 MiB units, 0x78 u64 first and 0x80 u64
 * last such extent on this device, 0x90 u32 devices of the volume.
 * After the volume table (512 / 1 entries of 512 bytes) and a reserved
 * area come the device-name table (32 x 256 bytes; at 0x17e200 / 0x17f000
 * on the real volumes: "mpx.vmhba0:C0:T4:L0:1"), then PE maps: a bitmap
 * (1024 / max(alignment, 1024) bytes; at 0x180200 / 0x181000) and a table
 * of 8192 entries of 128 bytes: 0x00 u8 used, 0x05 u32 volume id, 0x09 u64
 * physical offset (absolute on the device), 0x11 u64 logical offset, 0x19
 * u64 length.  On the real volumes one entry maps the whole volume (256 /
 * 768 MiB) from the data offset.  Several PE maps and spanned volumes are
 * unconfirmed (no such volume here); spanning follows the same tables.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "internal.h"

#define LVM_PES_PER_MAP 8192u
#define LVM_PE_ENTRY 128u
#define LVM_MAX_MAPS 8u
#define LVM_SD_ENTRY 256u
#define LVM_SD_ENTRIES 32u

struct lvm_hdr {
	uint32_t major;
	uint8_t devid[16];
	uint8_t lvid[20]; /* UUID and snapshot id */
	uint64_t lsize;
	uint32_t volid, numdevs;
	uint64_t first_pe, last_pe;
	char name[65];
	uint64_t sd_table;    /* device offset of the name table */
	uint64_t pe_maps;     /* device offset of the first PE map */
	uint32_t bitmap_size; /* bytes of a PE map's bitmap */
	uint32_t npes;	      /* PE table entries */
};

void vmfs_uuid_str(const uint8_t *p, char out[36])
{
	snprintf(out, 36, "%08x-%08x-%04x-%02x%02x%02x%02x%02x%02x", le32(p),
		 le32(p + 4), le16(p + 8), p[10], p[11], p[12], p[13], p[14],
		 p[15]);
}

static int dev_read(struct source *s, void *buf, size_t len, uint64_t off,
		    const char *what)
{
	int r;

	if (off > s->size || len > s->size - off) {
		vmdkfs_error("%s: LVM header: %s at offset %#llx lies past "
			     "the end of the device (%llu bytes): truncated "
			     "image?",
			     s->name, what, (unsigned long long)off,
			     (unsigned long long)s->size);
		return -EIO;
	}
	r = source_pread(s, buf, len, off);
	if (r < 0)
		vmdkfs_error("%s: LVM header: reading %s: %s", s->name, what,
			     vmdkfs_errmsg());
	return r;
}

static int lvm_header(struct source *s, struct lvm_hdr *h)
{
	uint8_t b[512];
	uint32_t magic, nvol, nmaps, md = 512, maxvol;
	uint64_t ext, vt, reserved;
	int r;

	memset(h, 0, sizeof(*h));
	r = dev_read(s, b, sizeof(b), LVM_HEADER_OFFSET, "the device header");
	if (r < 0)
		return r;
	magic = le32(b);
	h->major = le32(b + 4);
	if (magic != LVM_MAGIC) {
		vmdkfs_error("%s: LVM header: bad magic 0x%08x at offset "
			     "0x100000 (want 0xc001d00d): not a VMFS "
			     "partition",
			     s->name, magic);
		return -EINVAL;
	}
	if (h->major != 5 && h->major != 6) {
		vmdkfs_error("%s: LVM header: version %u not supported (5 is "
			     "VMFS5's, 6 VMFS6's)",
			     s->name, h->major);
		return -EINVAL;
	}
	nvol = le32(b + 0x66);
	h->npes = le32(b + 0x6a);
	memcpy(h->devid, b + 0x82, 16);
	nmaps = le32(b + 0xbe);
	ext = le64(b + 0xc2);
	if (h->major == 6) {
		md = le32(b + 0xca);
		if (log2_exact(md) < 9 || md > 0x10000) {
			vmdkfs_error("%s: LVM header: metadata alignment %u "
				     "is not a power of two from 512 to 65536",
				     s->name, md);
			return -EINVAL;
		}
	}
	maxvol = h->major == 6 ? 1 : 512;
	if (nvol != 1) {
		vmdkfs_error("%s: LVM header: %u logical volumes on the device "
			     "(only one is supported)",
			     s->name, nvol);
		return -EINVAL;
	}
	if (nmaps == 0)
		nmaps = 1;
	if (nmaps > LVM_MAX_MAPS || h->npes > nmaps * LVM_PES_PER_MAP) {
		vmdkfs_error("%s: LVM header: %u physical extents in %u PE "
			     "maps (at most %u maps of %u)",
			     s->name, h->npes, nmaps, LVM_MAX_MAPS,
			     LVM_PES_PER_MAP);
		return -EINVAL;
	}
	if (ext != 0) {
		vmdkfs_error("%s: LVM header: extended metadata (at %#llx) is "
			     "not supported",
			     s->name, (unsigned long long)ext);
		return -EINVAL;
	}

	vt = LVM_HEADER_OFFSET + md;
	r = dev_read(s, b, sizeof(b), vt, "the volume table");
	if (r < 0)
		return r;
	h->lsize = le64(b);
	memcpy(h->name, b + 0x14, 64);
	h->name[64] = '\0';
	memcpy(h->lvid, b + 0x54, 20);
	h->volid = le32(b + 0x70);
	h->first_pe = le64(b + 0x78);
	h->last_pe = le64(b + 0x80);
	h->numdevs = le32(b + 0x90);
	if (h->lsize < FS_DESC_OFFSET + 512 || h->lsize > (1ULL << 56)) {
		vmdkfs_error("%s: LVM header: logical volume size %llu is out "
			     "of range",
			     s->name, (unsigned long long)h->lsize);
		return -EINVAL;
	}
	if (h->numdevs == 0 || h->numdevs > VMFS_MAX_DEVICES) {
		vmdkfs_error("%s: LVM header: the volume spans %u devices (1 "
			     "to %u supported)",
			     s->name, h->numdevs, VMFS_MAX_DEVICES);
		return -EINVAL;
	}
	/* LVM_UNUSED_MD_SIZE - the name table: what is left of the first
	 * 1024 sectors after the volume table. */
	reserved =
	    (uint64_t)(1024 - maxvol) * 512 - LVM_SD_ENTRY * LVM_SD_ENTRIES;
	h->sd_table = vt + (uint64_t)maxvol * 512 + reserved;
	h->pe_maps = h->sd_table + LVM_SD_ENTRY * LVM_SD_ENTRIES;
	h->bitmap_size = h->major == 6 && md > 1024 ? md : 1024;
	return 0;
}

static int cmp_ext(const void *a, const void *b)
{
	const struct vmfs_extent *x = a, *y = b;

	return x->loff < y->loff ? -1 : x->loff > y->loff;
}

/* Append the extents of device I that belong to the volume. */
static int lvm_extents(struct vmfs *v, unsigned i, const struct lvm_hdr *h,
		       size_t *cap)
{
	struct source *s = v->dev[i].src;
	uint32_t left = h->npes, map, j, n;
	uint8_t *buf = NULL;
	int r = 0;

	for (map = 0; left > 0; map++) {
		uint64_t at = h->pe_maps +
			      map * ((uint64_t)h->bitmap_size +
				     LVM_PES_PER_MAP * LVM_PE_ENTRY) +
			      h->bitmap_size;

		n = left < LVM_PES_PER_MAP ? left : LVM_PES_PER_MAP;
		free(buf);
		buf = malloc((size_t)n * LVM_PE_ENTRY);
		if (!buf)
			return -ENOMEM;
		r = dev_read(s, buf, (size_t)n * LVM_PE_ENTRY, at,
			     "the physical-extent table");
		if (r < 0)
			goto out;
		for (j = 0; j < n; j++) {
			const uint8_t *e = buf + (size_t)j * LVM_PE_ENTRY;
			struct vmfs_extent x;

			if (e[0] == 0 || le32(e + 5) != h->volid)
				continue;
			x.poff = le64(e + 9);
			x.loff = le64(e + 0x11);
			x.len = le64(e + 0x19);
			x.dev = i;
			if (x.len == 0 || x.loff > h->lsize ||
			    x.len > h->lsize - x.loff) {
				vmdkfs_error("%s: LVM header: physical extent "
					     "%u (logical %#llx, %#llx bytes) "
					     "lies outside the logical volume "
					     "(%#llx bytes)",
					     s->name, map * LVM_PES_PER_MAP + j,
					     (unsigned long long)x.loff,
					     (unsigned long long)x.len,
					     (unsigned long long)h->lsize);
				r = -EINVAL;
				goto out;
			}
			if (x.poff > s->size || x.len > s->size - x.poff) {
				vmdkfs_error("%s: LVM header: physical extent "
					     "%u (device offset %#llx, %#llx "
					     "bytes) goes past the end of the "
					     "device (%llu bytes): truncated "
					     "image?",
					     s->name, map * LVM_PES_PER_MAP + j,
					     (unsigned long long)x.poff,
					     (unsigned long long)x.len,
					     (unsigned long long)s->size);
				r = -EIO;
				goto out;
			}
			if (v->next == *cap) {
				size_t c = *cap ? *cap * 2 : 8;
				struct vmfs_extent *p =
				    realloc(v->ext, c * sizeof(*p));

				if (!p) {
					r = -ENOMEM;
					goto out;
				}
				v->ext = p;
				*cap = c;
			}
			v->ext[v->next++] = x;
		}
		left -= n;
	}
out:
	free(buf);
	return r;
}

/* The names devZero's table gives the volume's devices, for messages. */
static void lvm_names(struct vmfs *v, const struct lvm_hdr *h, char *out,
		      size_t size)
{
	struct source *s = NULL;
	uint8_t b[LVM_SD_ENTRY];
	unsigned i;
	size_t used = 0;

	for (i = 0; i < v->ndev; i++)
		if (v->dev[i].first_pe == 0)
			s = v->dev[i].src;
	out[0] = '\0';
	if (!s)
		return;
	for (i = 0; i < h->numdevs && i < LVM_SD_ENTRIES; i++) {
		if (source_pread(s, b, sizeof(b),
				 h->sd_table + (uint64_t)i * LVM_SD_ENTRY) < 0)
			return;
		b[sizeof(b) - 1] = 0;
		if (!b[0])
			continue;
		used += (size_t)snprintf(out + used, size - used, "%s%s",
					 used ? ", " : "", (char *)b);
		if (used >= size)
			return;
	}
}

int vmfs_lvm_open(struct vmfs *v)
{
	struct lvm_hdr h0, h;
	char lv[36], u[36], given[VMFS_MAX_DEVICES * 40], names[2048];
	size_t cap = 0, k, w = 0;
	uint64_t at = 0;
	unsigned i, j;
	int r;

	for (i = 0; i < v->ndev; i++) {
		struct source *s = v->dev[i].src;

		r = lvm_header(s, i == 0 ? &h0 : &h);
		if (r < 0)
			return r;
		if (i == 0)
			h = h0;
		memcpy(v->dev[i].uuid, h.devid, 16);
		v->dev[i].first_pe = h.first_pe;
		v->dev[i].last_pe = h.last_pe;
		vmfs_uuid_str(h.devid, u);
		if (i > 0 && memcmp(h.lvid, h0.lvid, 20) != 0) {
			vmfs_uuid_str(h.lvid, lv);
			vmfs_uuid_str(h0.lvid, given);
			vmdkfs_error("%s: LVM header: device %s belongs to "
				     "logical volume %s, not to %s (of %s)",
				     s->name, u, lv, given,
				     v->dev[0].src->name);
			return -EINVAL;
		}
		if (i > 0 && (h.lsize != h0.lsize || h.numdevs != h0.numdevs ||
			      h.major != h0.major)) {
			vmdkfs_error("%s: LVM header: its volume size, version "
				     "or device count disagrees with %s's",
				     s->name, v->dev[0].src->name);
			return -EINVAL;
		}
		for (j = 0; j < i; j++)
			if (!memcmp(v->dev[j].uuid, h.devid, 16)) {
				vmdkfs_error("%s: LVM header: the same device "
					     "(UUID %s) as %s",
					     s->name, u, v->dev[j].src->name);
				return -EINVAL;
			}
		w += (size_t)snprintf(given + w, sizeof(given) - w, "%s%s",
				      i ? ", " : "", u);
		r = lvm_extents(v, i, &h, &cap);
		if (r < 0)
			return r;
	}
	vmfs_uuid_str(h0.lvid, v->lvm_uuid);
	v->size = h0.lsize;
	if (v->next)
		qsort(v->ext, v->next, sizeof(*v->ext), cmp_ext);
	/* The extents must tile [0, size): a gap is a missing device. */
	for (k = 0; k <= v->next; k++) {
		uint64_t end = k < v->next ? v->ext[k].loff : v->size;

		if (end > at) {
			lvm_names(v, &h0, names, sizeof(names));
			vmdkfs_error(
			    "%s: LVM: bytes %#llx to %#llx of logical "
			    "volume %s%s%s%s lie on a device that was "
			    "not given: the volume spans %u device(s), "
			    "%u given (UUID %s)%s%s",
			    v->name, (unsigned long long)at,
			    (unsigned long long)end - 1, v->lvm_uuid,
			    strcmp(h0.name, v->lvm_uuid) ? " (\"" : "",
			    strcmp(h0.name, v->lvm_uuid) ? h0.name : "",
			    strcmp(h0.name, v->lvm_uuid) ? "\")" : "",
			    h0.numdevs, v->ndev, given,
			    names[0] ? "; its devices are named " : "", names);
			return -EINVAL;
		}
		if (end < at) {
			vmdkfs_error("%s: LVM: physical extents overlap at "
				     "logical offset %#llx (device %s)",
				     v->name, (unsigned long long)end,
				     v->dev[v->ext[k].dev].src->name);
			return -EINVAL;
		}
		if (k < v->next)
			at = v->ext[k].loff + v->ext[k].len;
	}
	return 0;
}

static int vol_io(struct vmfs *v, void *buf, size_t len, uint64_t off,
		  bool write)
{
	uint8_t *p = buf;
	size_t lo = 0, hi = v->next;

	if (off > v->size || len > v->size - off) {
		vmdkfs_error("%s: %s of %zu bytes at volume offset %#llx: "
			     "past the end of the volume (%#llx bytes)",
			     v->name, write ? "write" : "read", len,
			     (unsigned long long)off,
			     (unsigned long long)v->size);
		return -EIO;
	}
	/* The extent holding OFF: the last one starting at or before it. */
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (v->ext[mid].loff <= off)
			lo = mid;
		else
			hi = mid;
	}
	while (len > 0) {
		const struct vmfs_extent *e = &v->ext[lo];
		uint64_t in = off - e->loff, n = e->len - in;
		struct source *s = v->dev[e->dev].src;
		int r;

		if (n > len)
			n = len;
		r = write ? s->ops->pwrite(s, p, (size_t)n, e->poff + in)
			  : source_pread(s, p, (size_t)n, e->poff + in);
		if (r < 0)
			return r;
		p += n;
		off += n;
		len -= (size_t)n;
		lo++;
	}
	return 0;
}

int vmfs_vol_read(struct vmfs *v, void *buf, size_t len, uint64_t off)
{
	return vol_io(v, buf, len, off, false);
}

int vmfs_vol_write(struct vmfs *v, const void *buf, size_t len, uint64_t off)
{
	return vol_io(v, (void *)buf, len, off, true);
}

/* Opening a VMDK disk (descriptor, extents, parent chain) and reading it.
 *
 * Every extent maps a run of its sectors to one of: data at a byte offset
 * of its file, zeros, "unallocated" (read the parent, or zeros on a base),
 * a compressed grain, or no access.  vmdk_read() and vmdk_block_status()
 * are both built on that one mapping.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
#include <zlib.h>

#include "../common/err.h"
#include "../common/lru.h"
#include "adler.h"
#include "internal.h"

/* ---- Metadata entries, through the table cache ---- */

/* Read the SIZE-byte (4 or 8) little-endian entry at byte OFF of E's file. */
int vmdk_read_entry(struct extent *e, uint64_t off, unsigned size,
		      uint64_t *out)
{
	uint64_t page = off / TABLE_PAGE;
	size_t pos = off % TABLE_PAGE;
	uint8_t b[8], buf[TABLE_PAGE];
	uint64_t len, gen;
	int r;

	if (off > e->src->size || size > e->src->size - off) {
		vmdkfs_error(
		    "%s: table entry at byte %llu lies past the end of "
		    "the file (%llu bytes)",
		    e->path, (unsigned long long)off,
		    (unsigned long long)e->src->size);
		return -EIO;
	}
	if (!lru_get(e->v->tables, e, page, pos, b, size, &gen)) {
		len = e->src->size - page * TABLE_PAGE;
		if (len > TABLE_PAGE)
			len = TABLE_PAGE;
		memset(buf, 0, sizeof(buf));
		r = source_pread(e->src, buf, len, page * TABLE_PAGE);
		if (r < 0)
			return r;
		lru_put(e->v->tables, e, page, buf, &gen);
		memcpy(b, buf + pos, size);
	}
	*out = size == 4 ? le32(b) : le64(b);
	return 0;
}

/* Map grain G of sparse extent E: kind and byte offset of the grain. */
int vmdk_grain_lookup(struct extent *e, uint64_t g, int *kind, uint64_t *off)
{
	const struct vmdk_sparse_info *h = &e->h;
	uint64_t gdi = g / h->gt_entries, gti = g % h->gt_entries;
	uint64_t gde, gt, gte;
	int r;

	if (gdi >= h->gd_entries) {
		vmdkfs_error("%s: grain %llu lies beyond the grain directory",
			     e->path, (unsigned long long)g);
		return -EIO;
	}
	r = vmdk_read_entry(e, h->gd_offset + gdi * h->entry_size, h->entry_size,
		       &gde);
	if (r < 0)
		return r;
	if (gde == 0) {
		*kind = M_UNALLOC;
		return 0;
	}
	if (e->fmt == FMT_SESPARSE) {
		uint64_t idx = gde & 0xffffffffULL;
		uint64_t gt_bytes = (uint64_t)h->gt_entries * 8;

		if ((gde & 0xffffffff00000000ULL) != 0x1000000000000000ULL ||
		    idx >= h->gt_area / gt_bytes) {
			vmdkfs_error(
			    "%s: grain directory entry %llu is invalid "
			    "(%016llx)",
			    e->path, (unsigned long long)gdi,
			    (unsigned long long)gde);
			return -EIO;
		}
		gt = h->gt_base + idx * gt_bytes;
	} else {
		gt = gde * 512;
	}
	r = vmdk_read_entry(e, gt + gti * h->entry_size, h->entry_size, &gte);
	if (r < 0)
		return r;

	if (e->fmt == FMT_SESPARSE) {
		uint64_t cluster;

		switch (gte >> 60) {
		case 0:
			*kind = M_UNALLOC;
			return 0;
		case 1: /* unmapped (trimmed): zeros, as qemu reads it */
		case 2: /* zero */
			*kind = M_ZERO;
			return 0;
		case 3:
			cluster = ((gte >> 48) & 0xfff) |
				  ((gte & 0xffffffffffffULL) << 12);
			if (cluster >= h->grains_area / (h->grain * 512)) {
				vmdkfs_error(
				    "%s: grain %llu: cluster %llu lies "
				    "outside the grain area",
				    e->path, (unsigned long long)g,
				    (unsigned long long)cluster);
				return -EIO;
			}
			*kind = M_DATA;
			*off = h->grains_base + cluster * h->grain * 512;
			break;
		default:
			vmdkfs_error(
			    "%s: grain %llu: grain table entry type %llu "
			    "is invalid",
			    e->path, (unsigned long long)g,
			    (unsigned long long)(gte >> 60));
			return -EIO;
		}
	} else if (gte == 0) {
		*kind = M_UNALLOC;
		return 0;
	} else if (gte == 1 && h->zeroed_gte) {
		*kind = M_ZERO;
		return 0;
	} else {
		*kind = h->compressed ? M_COMPRESSED : M_DATA;
		*off = gte * 512;
	}
	if (*off >= e->src->size) {
		vmdkfs_error("%s: grain %llu: grain table entry points at byte "
			     "%llu, past the end of the file (%llu bytes)",
			     e->path, (unsigned long long)g,
			     (unsigned long long)*off,
			     (unsigned long long)e->src->size);
		return -EIO;
	}
	return 0;
}

/* Map sectors [REL, REL + MAX) of extent E (REL relative to the extent).
 * With STATUS, runs of data grains are merged whether or not they lie
 * together in the file, and compressed grains count as data. */
static int extent_map(struct extent *e, uint64_t rel, uint64_t max,
		      bool status, struct map *m)
{
	uint64_t grain, g, in, n, off = 0;
	int kind, r;

	memset(m, 0, sizeof(*m));
	m->count = max;
	if (e->access == VMDK_NOACCESS) {
		m->kind = M_NOACCESS;
		return 0;
	}
	switch (e->fmt) {
	case FMT_ZERO:
		m->kind = M_ZERO;
		return 0;
	case FMT_FLAT:
		m->kind = M_DATA;
		m->off = e->flat_off + rel * 512;
		if (status) {
			/* A thin file's holes (on VMFS: also to-be-zeroed
			 * blocks) read as zeros: not data. */
			uint64_t run;
			bool data;

			r = source_map(e->src, m->off, max * 512, &data, &run);
			if (r < 0)
				return r;
			if (run < 512) /* a map finer than a sector: data */
				data = true, run = 512;
			m->count = run / 512 < max ? run / 512 : max;
			if (!data)
				m->kind = M_ZERO;
		}
		return 0;
	}

	grain = e->h.grain;
	g = rel / grain;
	in = rel % grain;
	n = grain - in < max ? grain - in : max;
	r = vmdk_grain_lookup(e, g, &kind, &off);
	if (r < 0)
		return r;
	m->kind = kind;
	m->grain = g;
	m->off = off + in * 512;
	if (kind == M_COMPRESSED && status)
		m->kind = kind = M_DATA;
	if (kind == M_COMPRESSED) {
		m->off = off;
		m->count = n;
		return 0;
	}
	/* Extend over following grains that continue the same run. */
	while (n < max) {
		uint64_t off2 = 0;
		int kind2;

		r = vmdk_grain_lookup(e, g + 1, &kind2, &off2);
		if (status && kind2 == M_COMPRESSED)
			kind2 = M_DATA;
		if (r < 0 || kind2 != kind ||
		    (kind == M_DATA && !status && off2 != off + grain * 512))
			break;
		g++;
		off = off2;
		n += grain < max - n ? grain : max - n;
	}
	m->count = n;
	return 0;
}

/* At most this many runs of data (or grains), of this many sectors in
 * all, are read together by read_data() (read_grains()). */
#define GATHER_RUNS 256
#define GATHER_SECTORS 2048 /* 1 MiB */
/* Compressed grains: 256 KiB of output at a time, so that the compressed
 * bytes and the bytes inflated from them stay in a 1 MiB L2 cache (first
 * pass of a 1 GiB stream disk of random data, image warm, medians of 10
 * interleaved runs: 2800 MB/s and 0.38 CPU s/GiB with 1 MiB spans, 3400
 * and 0.33 with 256 KiB spans and inflate_stored()). */
#define GRAIN_GATHER_SECTORS 512

/* ---- Compressed grains ---- */

/* The header of compressed grain G of E at byte OFF of the file (HEAD:
 * its marker, or its size alone in a file without markers): *CLEN, the
 * size of its compressed data, which follows the header. */
static int grain_head(struct extent *e, uint64_t g, uint64_t off,
		      const uint8_t *head, uint32_t *clen)
{
	size_t gbytes = e->h.grain * 512, hdr = e->h.markers ? 12 : 4;

	*clen = le32(head + hdr - 4);
	if (e->h.markers && le64(head) != g * e->h.grain) {
		vmdkfs_error("%s: grain %llu: marker says LBA %llu", e->path,
			     (unsigned long long)g,
			     (unsigned long long)le64(head));
		return -EIO;
	}
	if (*clen == 0 || *clen > 2 * gbytes + 1024 ||
	    off + hdr + *clen > e->src->size) {
		vmdkfs_error("%s: grain %llu: compressed size %u at byte %llu "
			     "is impossible",
			     e->path, (unsigned long long)g, *clen,
			     (unsigned long long)off);
		return -EIO;
	}
	return 0;
}

/* A deflate stream (IN, LEN bytes) made only of stored blocks, the form
 * zlib gives data that does not compress (random data, encrypted guest
 * disks): copy its bytes to OUT (at most CAP) and check the Adler-32 that
 * follows in one pass.  Returns the bytes copied, or 0 if the stream is not
 * of that form or anything is amiss (zlib then takes it from the start and
 * reports what is wrong, as for any grain). */
static size_t inflate_stored(const uint8_t *in, size_t len, uint8_t *out,
			     size_t cap)
{
	uint32_t adler = 1;
	size_t at = 0, n = 0;
	bool final = false;

	while (!final) {
		size_t blen;

		/* BFINAL, BTYPE 00, then the rest of the byte; LEN, NLEN. */
		if (len - at < 5 || (in[at] & 6) != 0)
			return 0;
		final = in[at] & 1;
		blen = (size_t)in[at + 1] | (size_t)in[at + 2] << 8;
		if ((blen ^ ((size_t)in[at + 3] | (size_t)in[at + 4] << 8)) !=
		    0xffff)
			return 0;
		at += 5;
		if (blen > len - at || blen > cap - n)
			return 0;
		adler = vmdk_adler32_copy(adler, out + n, in + at, blen);
		at += blen;
		n += blen;
	}
	if (len - at < 4 ||
	    ((uint32_t)in[at] << 24 | (uint32_t)in[at + 1] << 16 |
	     (uint32_t)in[at + 2] << 8 | in[at + 3]) != adler)
		return 0;
	return n;
}

/* Inflate the CLEN bytes IN of compressed grain G of E into OUT (grain
 * bytes). */
static int inflate_mem(struct extent *e, uint64_t g, const uint8_t *in,
		       uint32_t clen, uint8_t *out)
{
	size_t gbytes = e->h.grain * 512;
	uint64_t want = e->h.capacity - g * e->h.grain;
	size_t got;
	z_stream zs;
	int r, zr;

	if (want > e->h.grain)
		want = e->h.grain;
	want *= 512;
	/* A zlib stream (RFC 1950).  zlib is asked for the raw deflate data
	 * only and the Adler-32 is checked here, by vmdk_adler32(): zlib's
	 * own check cost as much as the inflating. */
	if (clen < 2 || (in[0] & 0x0f) != 8 || in[0] >> 4 > 7 ||
	    (in[0] << 8 | in[1]) % 31 || (in[1] & 0x20)) {
		vmdkfs_error("%s: grain %llu: compressed data is damaged "
			     "(no zlib header)",
			     e->path, (unsigned long long)g);
		return -EIO;
	}
	got = inflate_stored(in + 2, clen - 2, out, gbytes);
	if (got > 0 && got >= want) {
		memset(out + got, 0, gbytes - got);
		return 0;
	}
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, -15) != Z_OK)
		return -ENOMEM;
	zs.next_in = (uint8_t *)in + 2;
	zs.avail_in = clen - 2;
	zs.next_out = out;
	zs.avail_out = (uInt)gbytes;
	zr = inflate(&zs, Z_FINISH);
	/* The check value follows the deflate data, big-endian.  (A stream
	 * cut short after all of the grain's bytes is taken, as zlib's own
	 * check would have let it through too.) */
	if (zr == Z_STREAM_END && zs.avail_in >= 4 &&
	    ((uint32_t)zs.next_in[0] << 24 | (uint32_t)zs.next_in[1] << 16 |
	     (uint32_t)zs.next_in[2] << 8 | zs.next_in[3]) !=
		vmdk_adler32(1, out, zs.total_out))
		zr = Z_DATA_ERROR;
	if ((zr != Z_STREAM_END && zr != Z_BUF_ERROR && zr != Z_OK) ||
	    zs.total_out < want) {
		vmdkfs_error("%s: grain %llu: compressed data is damaged "
			     "(zlib %d, %lu of %llu bytes)",
			     e->path, (unsigned long long)g, zr, zs.total_out,
			     (unsigned long long)want);
		r = -EIO;
	} else {
		memset(out + zs.total_out, 0, gbytes - zs.total_out);
		r = 0;
	}
	inflateEnd(&zs);
	return r;
}

/* Inflate grain G of E (its marker at byte OFF) into OUT (grain bytes).
 * END: where its bytes end at most (the next grain's start), or 0 if not
 * known; with it, the header and the data are read at once. */
static int inflate_grain(struct extent *e, uint64_t g, uint64_t off,
			 uint64_t end, uint8_t *out)
{
	size_t gbytes = e->h.grain * 512, hdr = e->h.markers ? 12 : 4;
	uint8_t head[12], *in;
	uint32_t clen = 0;
	int r;

	if (end > off + hdr && end <= e->src->size &&
	    end - off <= hdr + 2 * gbytes + 1024) {
		in = malloc(end - off);
		if (!in)
			return -ENOMEM;
		r = source_pread(e->src, in, end - off, off);
		if (r == 0)
			r = grain_head(e, g, off, in, &clen);
		if (r == 0 && hdr + clen <= end - off)
			r = inflate_mem(e, g, in + hdr, clen, out);
		else if (r == 0)
			r = 1; /* runs into the next grain: read as it says */
		free(in);
		if (r <= 0)
			return r;
	}
	r = source_pread(e->src, head, hdr, off);
	if (r == 0)
		r = grain_head(e, g, off, head, &clen);
	if (r < 0)
		return r;
	in = malloc(clen);
	if (!in)
		return -ENOMEM;
	r = source_pread(e->src, in, clen, off + hdr);
	if (r == 0)
		r = inflate_mem(e, g, in, clen, out);
	free(in);
	return r;
}

/* The file offset of the compressed grain at REL of E if it lies beyond
 * AFTER in the file, else 0. */
static uint64_t grain_after(struct extent *e, uint64_t rel, uint64_t after)
{
	struct map m;

	if (rel + e->h.grain > e->sectors ||
	    extent_map(e, rel, e->h.grain, false, &m) < 0 ||
	    m.kind != M_COMPRESSED || m.off <= after)
		return 0;
	return m.off;
}

/* Copy COUNT sectors at REL of E, in compressed grain M->grain, a part of
 * it (a random reader's; whole grains go to read_grains()):
 * the grain is inflated whole, straight into a block of the grain cache,
 * for the reads of its other parts.  (Handing malloc'd grains to the cache
 * was tried before the cache took blocks in place: each miss then took
 * fresh memory, faulted in page by page, and random reads of a new mount
 * ran at 3.1k/s instead of 4k/s.) */
static int read_compressed(struct extent *e, const struct map *m,
			   uint64_t rel, uint64_t count, void *buf)
{
	uint64_t in = rel % e->h.grain, end;
	uint8_t *grain;
	bool claimed;
	int r;

	if (lru_get(e->grains, e, m->grain, in * 512, buf, count * 512, NULL))
		return 0;
	end = grain_after(e, rel - in + e->h.grain, m->off);
	grain = lru_claim(e->grains);
	claimed = grain != NULL;
	/* Every block taken by other readers: a grain of its own. */
	if (!claimed && !(grain = malloc(e->h.grain * 512)))
		return -ENOMEM;
	r = inflate_grain(e, m->grain, m->off, end, grain);
	if (r == 0)
		memcpy(buf, grain + in * 512, count * 512);
	if (claimed && r == 0)
		lru_commit(e->grains, grain, e, m->grain, NULL);
	else if (claimed)
		lru_unclaim(e->grains, grain);
	else if (r == 0)
		lru_put(e->grains, e, m->grain, grain, NULL);
	if (!claimed)
		free(grain);
	return r;
}

/* Read the whole compressed grain M (at REL of E, MAX sectors at most
 * left in the extent) into P, and the whole compressed grains that follow
 * it, further on in the file, up to GRAIN_GATHER_SECTORS,
 * inflated straight into P and not cached (the kernel's page cache keeps
 * those bytes; a copy into the cache would cost as much as the inflating):
 * their compressed bytes with one read, in file order (a stream disk's
 * grains lie one after the other), not two reads a grain.  Each grain's
 * bytes end where the next one's begin; the last one's end is the start
 * of the grain after it, looked up, or else it is read on its own, after
 * the others, so the file is still read front to back (the kernel's
 * read-ahead of the image sees a sequential reader).  *DONE: the sectors
 * read. */
static int read_grains(struct extent *e, uint64_t rel, uint64_t max,
		       struct map m, char *p, uint64_t *done)
{
	size_t gbytes = e->h.grain * 512, hdr = e->h.markers ? 12 : 4;
	uint64_t off[GATHER_RUNS + 1], at = m.count, span;
	uint8_t *buf = NULL;
	uint32_t clen;
	size_t n = 1, i;
	int r = 0;

	*done = m.count;
	if (lru_get(e->grains, e, m.grain, 0, p, gbytes, NULL))
		return 0;
	off[0] = m.off;
	/* off[n]: the next grain's start, where the last one's bytes end
	 * (0: not known); the next grain is taken while the read wants it. */
	while ((off[n] = grain_after(e, rel + at, off[n - 1])) != 0 &&
	       n < GATHER_RUNS && at + e->h.grain <= max &&
	       at + e->h.grain <= GRAIN_GATHER_SECTORS) {
		n++;
		at += e->h.grain;
	}
	span = off[n] ? off[n] - off[0] : off[n - 1] - off[0];
	if (span > 0 && span <= n * (2 * gbytes + 1024 + hdr) &&
	    (buf = malloc(span)) != NULL)
		r = source_pread(e->src, buf, span, off[0]);
	for (i = 0; i < n && r == 0; i++) {
		uint64_t g = m.grain + i, at_i = off[i] - off[0];
		uint8_t *out = (uint8_t *)p + i * gbytes;

		/* Not all in the span (the last grain, a huge grain): that
		 * grain is read on its own. */
		if (!buf || at_i + hdr > span) {
			r = inflate_grain(e, g, off[i], 0, out);
			continue;
		}
		r = grain_head(e, g, off[i], buf + at_i, &clen);
		if (r == 0 && at_i + hdr + clen > span)
			r = inflate_grain(e, g, off[i], 0, out);
		else if (r == 0)
			r = inflate_mem(e, g, buf + at_i + hdr, clen, out);
	}
	free(buf);
	if (r == 0)
		*done = at;
	return r;
}

/* ---- Reading ---- */

struct extent *vmdk_find_extent(struct vmdk *v, uint64_t sector)
{
	size_t lo = 0, hi = v->next;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (v->ext[mid].start <= sector)
			lo = mid;
		else
			hi = mid;
	}
	return &v->ext[lo];
}

int vmdk_read_parent(struct vmdk *p, void *buf, uint64_t sector,
		       uint64_t count)
{
	uint64_t n = 0;

	if (p && sector < p->sectors) {
		n = p->sectors - sector < count ? p->sectors - sector : count;
		int r = vmdk_read(p, buf, sector, n);

		if (r < 0)
			return r;
	}
	memset((char *)buf + n * 512, 0, (count - n) * 512);
	return 0;
}

/* ---- Data grains, gathered ---- */

struct piece {
	uint64_t off; /* bytes in the extent file */
	char *dst;
	size_t len;
};

static int piece_cmp(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Read N pieces of E's file: the pieces that lie next to each other in the
 * file, in whatever order the disk has them (a delta whose grains were
 * written backwards, SEsparse's clusters), with one read through a bounce
 * buffer; over san each read is an I/O of its own on the LUN. */
static int read_pieces(struct extent *e, struct piece *pc, size_t n)
{
	char *bounce = NULL;
	size_t i, j, k;
	int r = 0;

	if (n > 1)
		qsort(pc, n, sizeof(*pc), piece_cmp);
	for (i = 0; i < n && r == 0; i = j) {
		uint64_t end = pc[i].off + pc[i].len;

		for (j = i + 1; j < n && pc[j].off == end; j++)
			end += pc[j].len;
		if (j == i + 1) {
			r = source_pread(e->src, pc[i].dst, pc[i].len, pc[i].off);
			continue;
		}
		if (!bounce && !(bounce = malloc((size_t)GATHER_SECTORS * 512))) {
			r = -ENOMEM;
			break;
		}
		r = source_pread(e->src, bounce, end - pc[i].off, pc[i].off);
		for (k = i; k < j && r == 0; k++)
			memcpy(pc[k].dst, bounce + (pc[k].off - pc[i].off),
			       pc[k].len);
	}
	free(bounce);
	return r;
}

/* Read the data run M of extent E (at REL, MAX sectors at most left in
 * the extent) into P, and the data runs that follow it, up to the first
 * run of another kind, GATHER_RUNS runs or GATHER_SECTORS; *DONE: the
 * sectors read. */
static int read_data(struct extent *e, uint64_t rel, uint64_t max,
		     struct map m, char *p, uint64_t *done)
{
	struct piece pc[GATHER_RUNS];
	uint64_t at = 0;
	size_t n = 0;
	int r;

	for (;;) {
		pc[n++] = (struct piece){m.off, p + at * 512, m.count * 512};
		at += m.count;
		if (at >= max || n == GATHER_RUNS || at >= GATHER_SECTORS)
			break;
		r = extent_map(e, rel + at, (max - at < GATHER_SECTORS - at
						 ? max - at
						 : GATHER_SECTORS - at),
			       false, &m);
		if (r < 0)
			return r;
		if (m.kind != M_DATA)
			break;
	}
	*done = at;
	return read_pieces(e, pc, n);
}

int vmdk_read(struct vmdk *v, void *buf, uint64_t sector, uint64_t count)
{
	char *p = buf;
	int r;

	if (sector > v->sectors || count > v->sectors - sector)
		return -EINVAL;
	while (count > 0) {
		struct extent *e = vmdk_find_extent(v, sector);
		uint64_t rel = sector - e->start;
		uint64_t max =
		    e->sectors - rel < count ? e->sectors - rel : count;
		struct map m;

		r = extent_map(e, rel, max, false, &m);
		if (r < 0)
			return r;
		switch (m.kind) {
		case M_DATA:
			r = read_data(e, rel, max, m, p, &m.count);
			break;
		case M_ZERO:
			memset(p, 0, m.count * 512);
			break;
		case M_UNALLOC:
			r = vmdk_read_parent(v->parent, p, sector, m.count);
			break;
		case M_COMPRESSED:
			if (rel % e->h.grain == 0 && m.count == e->h.grain)
				r = read_grains(e, rel, max, m, p, &m.count);
			else
				r = read_compressed(e, &m, rel, m.count, p);
			break;
		default:
			vmdkfs_error(
			    "%s: sector %llu lies in a NOACCESS extent",
			    v->path, (unsigned long long)sector);
			r = -EIO;
		}
		if (r < 0)
			return r;
		p += m.count * 512;
		sector += m.count;
		count -= m.count;
	}
	return 0;
}

uint64_t vmdk_allocated(struct vmdk *v)
{
	uint64_t sum = 0, size = v->sectors * VMDK_SECTOR;
	struct vmdk *l;
	size_t i;

	for (l = v; l; l = l->parent)
		for (i = 0; i < l->next; i++) {
			const struct extent *e = &l->ext[i];

			/* ZERO extents have no file; extents at offsets of
			 * one flat file follow each other: count it once. */
			if (e->src && !(i > 0 && l->ext[i - 1].path &&
					strcmp(l->ext[i - 1].path, e->path) == 0))
				sum += source_allocated(e->src);
		}
	return sum < size ? sum : size;
}

int vmdk_block_status(struct vmdk *v, uint64_t sector, uint64_t count,
		      int *kind, uint64_t *run)
{
	struct extent *e;
	uint64_t rel, max;
	struct map m;
	int r;

	if (sector >= v->sectors || count == 0)
		return -EINVAL;
	if (count > v->sectors - sector)
		count = v->sectors - sector;
	e = vmdk_find_extent(v, sector);
	rel = sector - e->start;
	max = e->sectors - rel < count ? e->sectors - rel : count;
	r = extent_map(e, rel, max, true, &m);
	if (r < 0)
		return r;
	*run = m.count;
	switch (m.kind) {
	case M_ZERO:
		*kind = VMDK_ALLOC_ZERO;
		break;
	case M_UNALLOC:
		if (!v->parent || sector >= v->parent->sectors) {
			*kind = VMDK_ALLOC_HOLE;
			break;
		}
		return vmdk_block_status(v->parent, sector, m.count, kind, run);
	default:
		*kind = VMDK_ALLOC_DATA;
	}
	return 0;
}

/* ---- Opening ---- */

static char *join_path(const char *base_file, const char *rel)
{
	char *dir, *copy, *out = NULL;

	if (rel[0] == '/')
		return strdup(rel);
	copy = strdup(base_file);
	if (!copy)
		return NULL;
	dir = dirname(copy);
	if (asprintf(&out, "%s/%s", dir, rel) < 0)
		out = NULL;
	free(copy);
	return out;
}

static int open_source(const struct vmdk_options *o, const char *path,
		       bool writable, struct source **out)
{
	const struct source_opener *op = o->opener ? o->opener : &local_opener;

	return op->open(op->opaque, path, writable, out);
}

/* Read the sparse header of extent E and set it up. */
static int open_sparse(struct vmdk *v, struct extent *e)
{
	uint8_t buf[2048];
	uint64_t magic64;
	uint32_t magic;
	size_t n;
	int r;

	memset(buf, 0, sizeof(buf));
	n = e->src->size < sizeof(buf) ? e->src->size : sizeof(buf);
	if (n < 512) {
		vmdkfs_error("%s: sparse extent is too short for a header "
			     "(%zu bytes)",
			     e->path, n);
		return -EINVAL;
	}
	r = source_pread(e->src, buf, n, 0);
	if (r < 0)
		return r;
	magic = le32(buf);
	magic64 = le64(buf);
	if (magic == VMDK4_MAGIC) {
		e->fmt = FMT_VMDK4;
		r = vmdk4_header_parse(buf, e->src->size, e->path, &e->h);
		if (r == 0 && e->h.gd_offset == VMDK4_GD_AT_END) {
			/* Stream written in one pass: the real header is the
			 * footer, 1024 bytes before the end. */
			if (e->src->size < 1536) {
				vmdkfs_error("%s: stream has no footer",
					     e->path);
				return -EINVAL;
			}
			r = source_pread(e->src, buf, 512, e->src->size - 1024);
			if (r < 0)
				return r;
			if (le32(buf) != VMDK4_MAGIC) {
				vmdkfs_error("%s: stream footer missing or "
					     "damaged: the header puts the "
					     "grain directory at the end, but "
					     "there is no KDMV footer 1024 "
					     "bytes before the end of the file",
					     e->path);
				return -EINVAL;
			}
			r = vmdk4_header_parse(buf, e->src->size, e->path,
					       &e->h);
			if (r == 0 && e->h.gd_offset == VMDK4_GD_AT_END) {
				vmdkfs_error("%s: stream footer has no grain "
					     "directory offset",
					     e->path);
				r = -EINVAL;
			}
		}
	} else if (magic == COWD_MAGIC) {
		e->fmt = FMT_COWD;
		if (n < 2048) {
			vmdkfs_error("%s: COWD extent is too short for its "
				     "2048-byte header",
				     e->path);
			return -EINVAL;
		}
		r = cowd_header_parse(buf, e->src->size, e->path, &e->h);
	} else if (magic64 == SESPARSE_MAGIC) {
		uint8_t vh[32];

		e->fmt = FMT_SESPARSE;
		r = sesparse_header_parse(buf, e->src->size, e->path, &e->h);
		if (r == 0)
			r = source_pread(e->src, vh, sizeof(vh),
					 e->h.volatile_offset);
		if (r == 0 && le64(vh) != SESPARSE_VOLATILE_MAGIC) {
			vmdkfs_error("%s: SEsparse volatile header: bad magic",
				     e->path);
			r = -EINVAL;
		} else if (r == 0 && le64(vh + 24) != 0) {
			vmdkfs_error(
			    "%s: SEsparse volatile header: the journal "
			    "needs replaying (open the disk on ESXi "
			    "first); refusing to read it",
			    e->path);
			r = -EINVAL;
		}
	} else {
		vmdkfs_error("%s: %s extent: unknown header magic %08x",
			     e->path, vmdk_type_name(e->type), magic);
		return -EINVAL;
	}
	if (r < 0)
		return r;
	if ((e->type == VMDK_SPARSE && e->fmt != FMT_VMDK4) ||
	    (e->type == VMDK_SESPARSE && e->fmt != FMT_SESPARSE)) {
		static const char *const found[] = {"", "", "KDMV", "COWD",
						    "SEsparse"};

		vmdkfs_error("%s: extent type %s does not match the file's "
			     "header (%s)",
			     e->path, vmdk_type_name(e->type), found[e->fmt]);
		return -EINVAL;
	}
	if (e->h.unclean)
		log_warn("%s: the unclean-shutdown flag is set: the last writer "
			 "did not close it cleanly", e->path);
	if (e->h.capacity < e->sectors) {
		vmdkfs_error("%s: descriptor gives the extent %llu sectors but "
			     "its header only %llu",
			     e->path, (unsigned long long)e->sectors,
			     (unsigned long long)e->h.capacity);
		return -EINVAL;
	}
	if (e->h.compressed) {
		size_t gb = e->h.grain * 512;
		size_t count = v->grain_cache_bytes / gb;

		r = lru_new(count ? count : 1, gb, &e->grains);
		if (r < 0)
			return r;
	}
	return 0;
}

static int open_extent(struct vmdk *v, const struct vmdk_options *o,
		       const struct vmdk_desc_extent *de, uint64_t start,
		       struct extent *e)
{
	int r;

	e->v = v;
	e->access = de->access;
	e->type = de->type;
	e->start = start;
	e->sectors = de->sectors;
	if (de->type == VMDK_VMFSRDM || de->type == VMDK_VMFSRAW) {
		vmdkfs_error(
		    "%s: %s extent \"%s\": raw device mappings are not "
		    "supported on a local mount (read the disk "
		    "through the ESXi host instead)",
		    v->path, vmdk_type_name(de->type), de->file);
		return -ENOTSUP;
	}
	if (de->type == VMDK_ZERO) {
		e->fmt = FMT_ZERO;
		return 0;
	}
	e->path = join_path(v->path, de->file);
	if (!e->path)
		return -ENOMEM;
	r = open_source(o, e->path, o->writable && de->access == VMDK_RW,
			&e->src);
	if (r < 0)
		return r;
	if (de->type == VMDK_FLAT || de->type == VMDK_VMFS) {
		e->fmt = FMT_FLAT;
		e->flat_off = de->offset * 512;
		if (e->flat_off > e->src->size ||
		    e->sectors * 512 > e->src->size - e->flat_off) {
			vmdkfs_error(
			    "%s: flat extent of %llu sectors at sector "
			    "%llu runs past the end of the file "
			    "(%llu bytes)",
			    e->path, (unsigned long long)e->sectors,
			    (unsigned long long)de->offset,
			    (unsigned long long)e->src->size);
			return -EINVAL;
		}
		return 0;
	}
	return open_sparse(v, e);
}

/* Read the descriptor of PATH: a text file, or embedded in a sparse extent.
 * A COWD or SEsparse file opened directly gets a one-extent descriptor. */
static int read_descriptor(const struct vmdk_options *o, const char *path,
			   struct vmdk_desc *d, bool *embedded)
{
	struct vmdk_sparse_info h;
	struct source *s = NULL;
	uint8_t head[2048];
	char *text = NULL;
	uint64_t off = 0, len;
	int r;

	r = open_source(o, path, false, &s);
	if (r < 0)
		return r;
	memset(head, 0, sizeof(head));
	len = s->size < sizeof(head) ? s->size : sizeof(head);
	r = source_pread(s, head, len, 0);
	if (r < 0)
		goto out;
	len = s->size;
	if (le32(head) == VMDK4_MAGIC) {
		if (s->size < 512) {
			vmdkfs_error("%s: sparse header truncated", path);
			r = -EINVAL;
			goto out;
		}
		r = vmdk4_header_parse(head, s->size, path, &h);
		if (r < 0)
			goto out;
		if (h.desc_size == 0) {
			vmdkfs_error("%s: sparse extent has no embedded "
				     "descriptor; open its descriptor file",
				     path);
			r = -EINVAL;
			goto out;
		}
		off = h.desc_offset * 512;
		len = h.desc_size * 512;
		*embedded = true;
	} else if (le32(head) == COWD_MAGIC || le64(head) == SESPARSE_MAGIC) {
		bool cowd = le32(head) == COWD_MAGIC;
		char *copy = strdup(path);

		if (!copy) {
			r = -ENOMEM;
			goto out;
		}
		r = cowd ? cowd_header_parse(head, s->size, path, &h)
			 : sesparse_header_parse(head, s->size, path, &h);
		if (r == 0 &&
		    asprintf(&text,
			     "# Disk DescriptorFile\nCID=fffffffe\n"
			     "parentCID=ffffffff\nRW %llu %s \"%s\"\n",
			     (unsigned long long)h.capacity,
			     cowd ? "VMFSSPARSE" : "SESPARSE",
			     basename(copy)) < 0)
			r = -ENOMEM;
		free(copy);
		if (r == 0)
			r = vmdk_desc_parse(text, strlen(text), path, d);
		goto out;
	} else if (len > MAX_DESCRIPTOR) {
		vmdkfs_error("%s: not a VMDK descriptor (%llu bytes, no sparse "
			     "header); give the .vmdk descriptor, not the data "
			     "file",
			     path, (unsigned long long)len);
		r = -EINVAL;
		goto out;
	}
	text = malloc(len + 1);
	if (!text) {
		r = -ENOMEM;
		goto out;
	}
	r = source_pread(s, text, len, off);
	if (r < 0)
		goto out;
	text[len] = '\0';
	r = vmdk_desc_parse(text, len, path, d);
	if (r == 0 && off) {
		/* Embedded: the file itself is the one extent, whatever name
		 * the descriptor gives it (writers put other names there). */
		char *copy = strdup(path), *self;

		self = copy ? strdup(basename(copy)) : NULL;
		free(copy);
		if (!self) {
			r = -ENOMEM;
		} else if (d->nextents != 1) {
			vmdkfs_error("%s: embedded descriptor has %zu extents "
				     "(a sparse file holds one)",
				     path, d->nextents);
			free(self);
			r = -EINVAL;
		} else {
			free(d->extents[0].file);
			d->extents[0].file = self;
		}
		if (r < 0)
			vmdk_desc_free(d);
	}
out:
	free(text);
	source_close(s);
	return r;
}

static void close_one(struct vmdk *v)
{
	size_t i;

	for (i = 0; i < v->next; i++) {
		source_close(v->ext[i].src);
		lru_free(v->ext[i].grains);
		free(v->ext[i].path);
	}
	free(v->ext);
	vmdk_desc_free(&v->desc);
	if (v->owns_tables)
		lru_free(v->tables);
	free(v->path);
	free(v);
}

void vmdk_close(struct vmdk *v)
{
	if (v)
		vmdk_write_close(v);
	while (v) {
		struct vmdk *p = v->parent;

		close_one(v);
		v = p;
	}
}

static int open_one(const char *path, const struct vmdk_options *o,
		    struct lru *tables, struct vmdk **out)
{
	struct vmdk *v = calloc(1, sizeof(*v));
	uint64_t start = 0;
	size_t i;
	int r;

	if (!v)
		return -ENOMEM;
	v->path = strdup(path);
	v->tables = tables;
	v->grain_cache_bytes =
	    o->grain_cache_bytes ? o->grain_cache_bytes : DEFAULT_GRAIN_CACHE;
	if (!v->path) {
		r = -ENOMEM;
		goto fail;
	}
	r = read_descriptor(o, path, &v->desc, &v->embedded);
	if (r < 0)
		goto fail;
	v->ext = calloc(v->desc.nextents, sizeof(*v->ext));
	if (!v->ext) {
		r = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < v->desc.nextents; i++) {
		v->next++;
		r = open_extent(v, o, &v->desc.extents[i], start, &v->ext[i]);
		if (r < 0)
			goto fail;
		start += v->desc.extents[i].sectors;
	}
	v->sectors = start;
	*out = v;
	return 0;
fail:
	close_one(v);
	return r;
}

int vmdk_open_link(const char *path, const struct vmdk_options *opts,
		   struct vmdk **out)
{
	struct vmdk_options o = *opts;
	struct lru *tables;
	int r;

	r = lru_new(16, TABLE_PAGE, &tables);
	if (r < 0)
		return r;
	o.writable = false;
	r = open_one(path, &o, tables, out);
	if (r < 0) {
		lru_free(tables);
		return r;
	}
	(*out)->owns_tables = true;
	return 0;
}

/* Does PATH exist where OP opens files? */
static bool exists(const struct source_opener *op, const char *path)
{
	struct source *s;

	if (!op)
		return access(path, F_OK) == 0;
	if (op->open(op->opaque, path, false, &s) < 0) {
		vmdkfs_error_clear();
		return false;
	}
	source_close(s);
	return true;
}

/* PATH made canonical (for loop checks): realpath for local files; for an
 * opener's (absolute) paths, "." and ".." and repeated "/" removed. */
static char *canonical(const struct source_opener *op, const char *path)
{
	char *out, *o;
	const char *p = path;

	if (!op)
		return realpath(path, NULL);
	out = malloc(strlen(path) + 2);
	if (!out)
		return NULL;
	o = out;
	while (*p) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0)
			break;
		if (n == 1 && p[0] == '.') {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (o > out && *--o != '/')
				;
		} else {
			*o++ = '/';
			memcpy(o, p, n);
			o += n;
		}
		p += n;
	}
	if (o == out)
		*o++ = '/';
	*o = '\0';
	return out;
}

/* Find the parent file named by V's parentFileNameHint.  An absolute hint
 * that does not exist here (a path on the ESXi host) is looked for by its
 * base name beside V; the CID check then guards the choice. */
char *vmdk_parent_path(const struct vmdk *v)
{
	const char *hint = v->desc.parent_hint;
	char *p = join_path(v->path, hint);
	char *copy, *q;

	if (!p || hint[0] != '/' || exists(v->opener, p))
		return p;
	copy = strdup(hint);
	q = copy ? join_path(v->path, basename(copy)) : NULL;
	free(copy);
	if (q && exists(v->opener, q)) {
		log_info("%s: parent %s not found; using %s", v->path, p, q);
		free(p);
		return q;
	}
	free(q);
	return p;
}

int vmdk_open(const char *path, const struct vmdk_options *opts,
	      struct vmdk **out)
{
	struct vmdk_options o = *opts;
	char *seen[VMDK_MAX_CHAIN + 1];
	size_t nseen = 0, i;
	struct vmdk *top = NULL, *cur;
	struct lru *tables;
	size_t tc;
	int r;

	tc = o.table_cache_bytes ? o.table_cache_bytes : DEFAULT_TABLE_CACHE;
	r = lru_new(tc / TABLE_PAGE ? tc / TABLE_PAGE : 1, TABLE_PAGE, &tables);
	if (r < 0)
		return r;
	r = open_one(path, &o, tables, &top);
	if (r < 0) {
		lru_free(tables);
		return r;
	}
	top->owns_tables = true;
	top->opener = o.opener;
	/* Parents are always opened read-only. */
	o.writable = false;
	for (cur = top;
	     cur->desc.parent_cid != VMDK_NO_PARENT && !opts->single_link;
	     cur = cur->parent) {
		char *pp = vmdk_parent_path(cur), *real;

		if (!pp) {
			r = -ENOMEM;
			goto fail;
		}
		real = canonical(o.opener, cur->path);
		if (real)
			seen[nseen++] = real;
		real = canonical(o.opener, pp);
		for (i = 0; real && i < nseen; i++) {
			if (strcmp(seen[i], real) == 0) {
				vmdkfs_error("%s: parent chain loop: %s is "
					     "already in the chain",
					     cur->path, pp);
				r = -ELOOP;
			}
		}
		free(real);
		if (r == 0 && nseen >= VMDK_MAX_CHAIN) {
			vmdkfs_error("%s: parent chain longer than %d links",
				     path, VMDK_MAX_CHAIN);
			r = -ELOOP;
		}
		if (r == 0 && !exists(o.opener, pp)) {
			vmdkfs_error("%s: parent \"%s\" (parentFileNameHint) "
				     "not found%s%s",
				     cur->path, pp, o.opener ? "" : ": ",
				     o.opener ? "" : strerror(errno));
			r = -ENOENT;
		}
		if (r == 0)
			r = open_one(pp, &o, tables, &cur->parent);
		if (r == 0)
			cur->parent->opener = o.opener;
		if (r == 0 && cur->parent->desc.cid != cur->desc.parent_cid) {
			vmdkfs_error(
			    "%s: parentCID %08x does not match the CID "
			    "%08x of parent %s (the parent changed "
			    "after this link was made)",
			    cur->path, cur->desc.parent_cid,
			    cur->parent->desc.cid, pp);
			r = -EINVAL;
		}
		free(pp);
		if (r < 0)
			goto fail;
	}
	for (i = 0; i < nseen; i++)
		free(seen[i]);
	if (opts->writable) {
		r = vmdk_write_prepare(top, opts->allow_parent_write,
				       opts->keep_descriptor);
		if (r < 0) {
			vmdk_close(top);
			return r;
		}
	}
	*out = top;
	return 0;
fail:
	for (i = 0; i < nseen; i++)
		free(seen[i]);
	vmdk_close(top);
	return r;
}

uint64_t vmdk_sectors(const struct vmdk *v)
{
	return v->sectors;
}

const struct vmdk_desc *vmdk_descriptor(const struct vmdk *v)
{
	return &v->desc;
}

const char *vmdk_path(const struct vmdk *v)
{
	return v->path;
}

struct vmdk *vmdk_parent(const struct vmdk *v)
{
	return v->parent;
}

size_t vmdk_extent_count(const struct vmdk *v)
{
	return v->next;
}

void vmdk_extent_get(const struct vmdk *v, size_t i,
		     struct vmdk_extent_info *info)
{
	const struct extent *e = &v->ext[i];
	static const char *const fmts[] = {"flat", "zero", "KDMV", "COWD",
					   "SEsparse"};

	memset(info, 0, sizeof(*info));
	info->access = e->access;
	info->type = e->type;
	info->start = e->start;
	info->sectors = e->sectors;
	info->path = e->path;
	info->offset = e->flat_off / 512;
	info->format = fmts[e->fmt];
	if (e->fmt == FMT_VMDK4 && e->h.compressed)
		info->format = "stream";
	if (e->fmt >= FMT_VMDK4) {
		info->grain = e->h.grain;
		info->gt_entries = e->h.gt_entries;
	}
	info->file_size = e->src ? e->src->size : 0;
}

/* MBR and GPT partition tables (see part.h).
 *
 * MBR: the table at 446 of sector 0, signature 0x55AA at 510; primaries
 * numbered 1-4 by slot; each extended partition (0x05, 0x0F, 0x85) is a
 * chain of EBRs, each with a data entry relative to itself and a link
 * relative to the extended partition's start; logicals numbered 5.. in
 * chain order, as Linux's block/partitions/msdos.c does.
 *
 * GPT (UEFI spec, chapter 5): the header at LBA 1, the backup at the last
 * LBA; header and entry array each guarded by a CRC32 (zlib's: the
 * reflected 0xEDB88320 polynomial the spec names).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../common/err.h"
#include "part.h"

#define MBR_SIZE 512
#define MBR_TABLE 446
#define MBR_SIG_OFF 440
#define GPT_HDR_MIN 92
#define GPT_ENTRY_MIN 128
/* EBRs followed in one chain (data or not) before giving up. */
#define MAX_EBRS (2 * PART_MAX_LOGICALS)

struct span {
	uint64_t s, e; /* sectors, [s, e) */
	unsigned number;
};

struct ctx {
	part_read_fn rd;
	void *opaque;
	uint64_t disk_size;
	part_warn_fn warn;
	void *wopaque;
	struct part_table *t;
	uint32_t ss;	    /* sector size in use */
	uint64_t nsectors;  /* whole sectors of the disk */
	struct span *spans; /* accepted partitions, sorted by start */
	size_t nspans, cap, ecap;
};

static uint16_t le16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void warn(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void warn(struct ctx *c, const char *fmt, ...)
{
	char msg[640];
	va_list ap;

	if (!c->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->warn(c->wopaque, msg);
}

/* Read LEN bytes at OFF.  Returns 0, 1 if the range is not inside the
 * disk (nothing read), or -errno with a message. */
static int rd(struct ctx *c, void *buf, size_t len, uint64_t off)
{
	int r;

	if (off > c->disk_size || len > c->disk_size - off)
		return 1;
	r = c->rd(c->opaque, buf, len, off);
	if (r < 0) {
		errno = -r;
		vmdkfs_error("partition table: reading %zu bytes at byte %llu: "
			     "%m",
			     len, (unsigned long long)off);
	}
	return r < 0 ? r : 0;
}

static void guid_str(const uint8_t *g, char out[37])
{
	snprintf(out, 37, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 le32(g), le16(g + 4), le16(g + 6), g[8], g[9], g[10], g[11],
		 g[12], g[13], g[14], g[15]);
}

/* UTF-16LE (NUNITS units, up to a NUL) to UTF-8 in OUT (room for
 * 3 * NUNITS + 1 bytes); unpaired surrogates become U+FFFD. */
static void utf16_to_utf8(const uint8_t *in, size_t nunits, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < nunits; i++) {
		uint32_t u = le16(in + 2 * i);

		if (u == 0)
			break;
		if (u >= 0xd800 && u < 0xdc00 && i + 1 < nunits &&
		    le16(in + 2 * i + 2) >= 0xdc00 &&
		    le16(in + 2 * i + 2) < 0xe000) {
			u = 0x10000 + ((u - 0xd800) << 10) +
			    (le16(in + 2 * i + 2) - 0xdc00);
			i++;
		} else if (u >= 0xd800 && u < 0xe000) {
			u = 0xfffd;
		}
		if (u < 0x80) {
			out[o++] = u;
		} else if (u < 0x800) {
			out[o++] = 0xc0 | u >> 6;
			out[o++] = 0x80 | (u & 0x3f);
		} else if (u < 0x10000) {
			out[o++] = 0xe0 | u >> 12;
			out[o++] = 0x80 | (u >> 6 & 0x3f);
			out[o++] = 0x80 | (u & 0x3f);
		} else {
			out[o++] = 0xf0 | u >> 18;
			out[o++] = 0x80 | (u >> 12 & 0x3f);
			out[o++] = 0x80 | (u >> 6 & 0x3f);
			out[o++] = 0x80 | (u & 0x3f);
		}
	}
	out[o] = 0;
}

/* Whether STORED is the CRC32 of the N bytes at P.  Fuzz builds also take
 * a stored 0, so that the fuzzer gets past the checksums to the fields and
 * entries behind them. */
static bool crc_ok(uint32_t stored, const uint8_t *p, size_t n)
{
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	if (stored == 0)
		return true;
#endif
	return crc32(0, p, n) == stored;
}

static int nomem(void)
{
	vmdkfs_error("partition table: out of memory");
	return -ENOMEM;
}

/* Check the partition NUMBER of NSEC sectors from sector START against the
 * disk and the partitions accepted so far; if it fits, append a new entry
 * for it to the table in *E.  Returns 0 (*E NULL when skipped, with a
 * warning) or -ENOMEM. */
static int accept(struct ctx *c, unsigned number, uint64_t start, uint64_t nsec,
		  struct part_entry **e)
{
	struct part_table *t = c->t;
	size_t lo = 0, hi = c->nspans;

	*e = NULL;
	if (start == 0) {
		warn(c,
		     "partition %u: starts at sector 0 (the table itself): "
		     "skipped",
		     number);
		return 0;
	}
	if (nsec == 0) {
		warn(c, "partition %u: empty (0 sectors): skipped", number);
		return 0;
	}
	if (start >= c->nsectors) {
		warn(c,
		     "partition %u: starts at sector %llu, past the disk's "
		     "end (%llu sectors): skipped",
		     number, (unsigned long long)start,
		     (unsigned long long)c->nsectors);
		return 0;
	}
	if (nsec > c->nsectors - start) {
		warn(c,
		     "partition %u: sectors %llu-%llu end past the disk's "
		     "end (%llu sectors): skipped",
		     number, (unsigned long long)start,
		     (unsigned long long)(start + (nsec - 1)),
		     (unsigned long long)c->nsectors);
		return 0;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->spans[mid].s < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	if ((lo < c->nspans && c->spans[lo].s < start + nsec) ||
	    (lo > 0 && c->spans[lo - 1].e > start)) {
		struct span *o = lo < c->nspans && c->spans[lo].s < start + nsec
				     ? &c->spans[lo]
				     : &c->spans[lo - 1];

		warn(c,
		     "partition %u: sectors %llu-%llu overlap partition %u "
		     "(sectors %llu-%llu): skipped",
		     number, (unsigned long long)start,
		     (unsigned long long)(start + nsec - 1), o->number,
		     (unsigned long long)o->s, (unsigned long long)(o->e - 1));
		return 0;
	}
	if (c->nspans == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		struct span *s = realloc(c->spans, cap * sizeof(*s));

		if (!s)
			return nomem();
		c->spans = s;
		c->cap = cap;
	}
	if (t->n == c->ecap) {
		size_t cap = c->ecap ? 2 * c->ecap : 16;
		struct part_entry *n = realloc(t->e, cap * sizeof(*n));

		if (!n)
			return nomem();
		t->e = n;
		c->ecap = cap;
	}
	memmove(c->spans + lo + 1, c->spans + lo,
		(c->nspans - lo) * sizeof(*c->spans));
	c->spans[lo] = (struct span){start, start + nsec, number};
	c->nspans++;
	*e = &t->e[t->n++];
	memset(*e, 0, sizeof(**e));
	(*e)->number = number;
	(*e)->start = start * c->ss;
	(*e)->size = nsec * c->ss;
	return 0;
}

/* --- MBR --- */

static bool mbr_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

struct mbr_slot {
	uint8_t boot, type;
	uint32_t start, nsec;
};

static struct mbr_slot mbr_slot(const uint8_t *sec, int i)
{
	const uint8_t *p = sec + MBR_TABLE + 16 * i;

	return (struct mbr_slot){p[0], p[4], le32(p + 8), le32(p + 12)};
}

static bool mbr_magic(const uint8_t *sec)
{
	return sec[510] == 0x55 && sec[511] == 0xaa;
}

static int mbr_add(struct ctx *c, unsigned number, uint64_t start,
		   const struct mbr_slot *s)
{
	struct part_entry *e;
	int r;

	r = accept(c, number, start, s->nsec, &e);
	if (r < 0 || !e)
		return r;
	e->mbr_type = s->type;
	e->bootable = s->boot == 0x80;
	snprintf(e->type, sizeof(e->type), "0x%02x", s->type);
	if (c->t->disk_sig)
		snprintf(e->uuid, sizeof(e->uuid), "%08x-%02x", c->t->disk_sig,
			 number);
	return 0;
}

/* Follow the EBR chain of the extended partition EXT (slot SLOT),
 * numbering its logicals from *NEXT. */
static int mbr_chain(struct ctx *c, int slot, const struct mbr_slot *ext,
		     unsigned *next)
{
	uint64_t ebrs[MAX_EBRS];
	uint64_t first = ext->start, end = (uint64_t)ext->start + ext->nsec;
	uint64_t ebr = first;
	uint8_t sec[MBR_SIZE];
	size_t n = 0, i;
	int r;

	if (ext->start == 0 || end > c->nsectors) {
		warn(c,
		     "partition %d: extended partition at sectors %llu-%llu "
		     "is not inside the disk (%llu sectors): its logical "
		     "partitions are skipped",
		     slot + 1, (unsigned long long)first,
		     (unsigned long long)(end - 1),
		     (unsigned long long)c->nsectors);
		return 0;
	}
	for (;;) {
		struct mbr_slot d, l;

		for (i = 0; i < n; i++)
			if (ebrs[i] == ebr)
				break;
		if (i < n) {
			warn(c,
			     "extended partition %d: the EBR chain loops "
			     "back to sector %llu: the chain ends there",
			     slot + 1, (unsigned long long)ebr);
			return 0;
		}
		if (n == MAX_EBRS || *next - 5 >= PART_MAX_LOGICALS) {
			warn(c,
			     "extended partition %d: more than %d logical "
			     "partitions: the rest are ignored",
			     slot + 1, PART_MAX_LOGICALS);
			return 0;
		}
		ebrs[n++] = ebr;
		r = rd(c, sec, sizeof(sec), ebr * c->ss);
		if (r < 0)
			return r;
		if (r > 0 || !mbr_magic(sec)) {
			warn(c,
			     "extended partition %d: no EBR (0x55AA) at "
			     "sector %llu: the chain ends there",
			     slot + 1, (unsigned long long)ebr);
			return 0;
		}
		d = mbr_slot(sec, 0);
		l = mbr_slot(sec, 1);
		if (d.nsec && !mbr_extended(d.type)) {
			unsigned number = (*next)++;
			uint64_t s = ebr + d.start;

			if (d.start == 0 || s + d.nsec > end) {
				warn(c,
				     "partition %u: sectors %llu-%llu are "
				     "not inside its extended partition "
				     "(sectors %llu-%llu): skipped",
				     number, (unsigned long long)s,
				     (unsigned long long)(s + d.nsec - 1),
				     (unsigned long long)first,
				     (unsigned long long)(end - 1));
			} else {
				r = mbr_add(c, number, s, &d);
				if (r < 0)
					return r;
			}
		}
		if (l.nsec == 0)
			return 0;
		if (!mbr_extended(l.type)) {
			warn(c,
			     "extended partition %d: the EBR at sector %llu "
			     "links to a partition of type 0x%02x, not an "
			     "EBR: the chain ends there",
			     slot + 1, (unsigned long long)ebr, l.type);
			return 0;
		}
		if (first + l.start >= end) {
			warn(c,
			     "extended partition %d: the EBR at sector %llu "
			     "links to sector %llu, outside the extended "
			     "partition (sectors %llu-%llu): the chain ends "
			     "there",
			     slot + 1, (unsigned long long)ebr,
			     (unsigned long long)(first + l.start),
			     (unsigned long long)first,
			     (unsigned long long)(end - 1));
			return 0;
		}
		ebr = first + l.start;
	}
}

static int mbr_parse(struct ctx *c, const uint8_t *sec)
{
	struct mbr_slot s[4];
	unsigned next = 5;
	int i, r;

	c->t->scheme = PART_MBR;
	c->t->disk_sig = le32(sec + MBR_SIG_OFF);
	for (i = 0; i < 4; i++)
		s[i] = mbr_slot(sec, i);
	for (i = 0; i < 4; i++) {
		if (s[i].nsec == 0 || mbr_extended(s[i].type))
			continue;
		r = mbr_add(c, i + 1, s[i].start, &s[i]);
		if (r < 0)
			return r;
	}
	for (i = 0; i < 4; i++) {
		if (s[i].nsec == 0 || !mbr_extended(s[i].type))
			continue;
		r = mbr_chain(c, i, &s[i], &next);
		if (r < 0)
			return r;
	}
	return 0;
}

/* --- GPT --- */

struct gpt_hdr {
	uint64_t my_lba, alt_lba, first_usable, last_usable, entries_lba;
	uint32_t n, esz, entries_crc;
	uint8_t guid[16];
};

/* Read and check the GPT header at LBA with sector size SS.  Returns 0,
 * 1 when it is not valid (the reason in WHY), or -errno. */
static int gpt_header(struct ctx *c, uint32_t ss, uint64_t lba,
		      struct gpt_hdr *h, char *why, size_t whylen)
{
	uint64_t last = c->disk_size / ss - 1, bytes;
	uint32_t hsize, crc, rev;
	uint8_t *b;
	int r;

	snprintf(why, whylen, "unreadable");
	if (c->disk_size / ss < 3 || lba > last) {
		snprintf(why, whylen, "the disk is too small");
		return 1;
	}
	b = malloc(ss);
	if (!b)
		return nomem();
	r = rd(c, b, ss, lba * ss);
	if (r != 0)
		goto out_free;
	r = 1;
	if (memcmp(b, "EFI PART", 8) != 0) {
		snprintf(why, whylen, "no \"EFI PART\" signature");
		goto out_free;
	}
	rev = le32(b + 8);
	hsize = le32(b + 12);
	if (rev >> 16 != 1) {
		snprintf(why, whylen, "revision %#x", rev);
		goto out_free;
	}
	if (hsize < GPT_HDR_MIN || hsize > ss) {
		snprintf(why, whylen, "header size %u", hsize);
		goto out_free;
	}
	crc = le32(b + 16);
	memset(b + 16, 0, 4);
	if (!crc_ok(crc, b, hsize)) {
		snprintf(why, whylen, "header CRC mismatch");
		goto out_free;
	}
	h->my_lba = le64(b + 24);
	h->alt_lba = le64(b + 32);
	h->first_usable = le64(b + 40);
	h->last_usable = le64(b + 48);
	memcpy(h->guid, b + 56, 16);
	h->entries_lba = le64(b + 72);
	h->n = le32(b + 80);
	h->esz = le32(b + 84);
	h->entries_crc = le32(b + 88);
	bytes = (uint64_t)h->n * h->esz;
	if (h->my_lba != lba) {
		snprintf(why, whylen, "it names itself at LBA %llu",
			 (unsigned long long)h->my_lba);
	} else if (h->first_usable > h->last_usable || h->last_usable > last) {
		snprintf(why, whylen,
			 "usable LBAs %llu-%llu are not inside the disk "
			 "(LBAs 0-%llu)",
			 (unsigned long long)h->first_usable,
			 (unsigned long long)h->last_usable,
			 (unsigned long long)last);
	} else if (h->esz < GPT_ENTRY_MIN || h->esz % 8) {
		snprintf(why, whylen, "entry size %u", h->esz);
	} else if (bytes > PART_GPT_MAX_ARRAY) {
		snprintf(why, whylen, "%u entries of %u bytes: too many", h->n,
			 h->esz);
	} else if (h->entries_lba == 0 || h->entries_lba > last ||
		   bytes > (last + 1 - h->entries_lba) * ss) {
		snprintf(why, whylen,
			 "the entries at LBA %llu are not inside the disk",
			 (unsigned long long)h->entries_lba);
	} else {
		r = 0;
	}
out_free:
	free(b);
	return r;
}

/* Read H's entry array into *BUF (malloc'd) and check its CRC.  Returns 0,
 * 1 when the CRC does not match (WHY), or -errno. */
static int gpt_entries(struct ctx *c, uint32_t ss, const struct gpt_hdr *h,
		       uint8_t **buf, char *why, size_t whylen)
{
	size_t bytes = (size_t)h->n * h->esz;
	int r;

	*buf = malloc(bytes ? bytes : 1);
	if (!*buf)
		return nomem();
	r = rd(c, *buf, bytes, h->entries_lba * ss);
	if (r == 0 && !crc_ok(h->entries_crc, *buf, bytes)) {
		snprintf(why, whylen, "the entries' CRC does not match");
		r = 1;
	} else if (r > 0) {
		snprintf(why, whylen, "the entries are not inside the disk");
	}
	if (r != 0) {
		free(*buf);
		*buf = NULL;
	}
	return r;
}

/* Both header and entries at LBA: 0, 1 (WHY) or -errno. */
static int gpt_load(struct ctx *c, uint32_t ss, uint64_t lba, struct gpt_hdr *h,
		    uint8_t **buf, char *why, size_t whylen)
{
	int r = gpt_header(c, ss, lba, h, why, whylen);

	if (r == 0)
		r = gpt_entries(c, ss, h, buf, why, whylen);
	return r;
}

static int gpt_parse(struct ctx *c, const struct gpt_hdr *h, const uint8_t *buf)
{
	static const uint8_t zero[16];
	uint32_t i;
	int r;

	c->t->scheme = PART_GPT;
	guid_str(h->guid, c->t->disk_guid);
	for (i = 0; i < h->n; i++) {
		const uint8_t *p = buf + (size_t)i * h->esz;
		uint64_t first = le64(p + 32), last = le64(p + 40);
		struct part_entry *e;

		if (memcmp(p, zero, 16) == 0)
			continue;
		if (last < first) {
			warn(c,
			     "partition %u: ends at sector %llu, before it "
			     "starts (sector %llu): skipped",
			     i + 1, (unsigned long long)last,
			     (unsigned long long)first);
			continue;
		}
		if (first >= c->nsectors) {
			accept(c, i + 1, first, 1, &e); /* warns */
			continue;
		}
		r = accept(c, i + 1, first, last - first + 1, &e);
		if (r < 0)
			return r;
		if (!e)
			continue;
		guid_str(p, e->type);
		guid_str(p + 16, e->uuid);
		e->attrs = le64(p + 48);
		utf16_to_utf8(p + 56, 36, e->name);
	}
	return 0;
}

/* Find a GPT with sector size SS (0: 512, then 4096).  Returns 0 (the
 * table filled, or nothing found: *FOUND false, with the reasons in WHY),
 * or -errno. */
static int gpt_find(struct ctx *c, uint32_t ss, bool *found, char *why,
		    size_t whylen)
{
	uint32_t sizes[2] = {ss ? ss : 512, 4096};
	int nsizes = ss ? 1 : 2, i, j, r, pri = -1;
	struct gpt_hdr h[2], b;
	char pwhy[2][96], bwhy[2][96];
	uint8_t *buf = NULL;
	uint64_t lba[2];

	*found = false;
	for (i = 0; i < nsizes; i++) {
		r = gpt_header(c, sizes[i], 1, &h[i], pwhy[i], sizeof(pwhy[i]));
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		if (pri < 0)
			pri = i;
		r = gpt_entries(c, sizes[i], &h[i], &buf, pwhy[i],
				sizeof(pwhy[i]));
		if (r < 0)
			return r;
		if (r == 0) {
			c->ss = c->t->sector_size = sizes[i];
			c->nsectors = c->disk_size / c->ss;
			goto found;
		}
	}
	/* The backup: at the last LBA; or where a valid primary header
	 * says it is (a disk grown since). The size with a valid primary
	 * header first. */
	for (j = 0; j < nsizes; j++) {
		i = pri >= 0 ? (pri + j) % nsizes : j;
		lba[0] = c->disk_size / sizes[i] - 1;
		lba[1] = i == pri ? h[i].alt_lba : lba[0];
		r = gpt_load(c, sizes[i], lba[0], &b, &buf, bwhy[i],
			     sizeof(bwhy[i]));
		if (r > 0 && lba[1] != lba[0] && lba[1] > 1)
			r = gpt_load(c, sizes[i], lba[1], &b, &buf, bwhy[i],
				     sizeof(bwhy[i]));
		if (r < 0)
			return r;
		if (r == 0) {
			c->ss = c->t->sector_size = sizes[i];
			c->nsectors = c->disk_size / c->ss;
			c->t->used_backup = true;
			warn(c,
			     "GPT: the primary header or entries at LBA 1 "
			     "are damaged (%s, with %u-byte sectors): using "
			     "the backup at LBA %llu",
			     pwhy[i], sizes[i], (unsigned long long)b.my_lba);
			h[0] = b;
			i = 0;
			goto found;
		}
	}
	if (nsizes == 1)
		snprintf(why, whylen, "LBA 1: %s; backup: %s", pwhy[0],
			 bwhy[0]);
	else
		snprintf(why, whylen,
			 "512-byte sectors: LBA 1: %s, backup: %s; 4096-byte "
			 "sectors: LBA 1: %s, backup: %s",
			 pwhy[0], bwhy[0], pwhy[1], bwhy[1]);
	return 0;
found:
	*found = true;
	r = gpt_parse(c, &h[i], buf);
	free(buf);
	return r;
}

int part_read(part_read_fn rdfn, void *opaque, uint64_t disk_size,
	      uint32_t sector_size, part_warn_fn warnfn, void *wopaque,
	      struct part_table *t)
{
	struct ctx c = {.rd = rdfn,
			.opaque = opaque,
			.disk_size = disk_size,
			.warn = warnfn,
			.wopaque = wopaque,
			.t = t};
	uint8_t sec[MBR_SIZE];
	bool found, pmbr = false;
	char why[512];
	int i, r;

	memset(t, 0, sizeof(*t));
	if (sector_size && (sector_size < 512 || sector_size > 65536 ||
			    (sector_size & (sector_size - 1)))) {
		vmdkfs_error("partition table: bad sector size %u",
			     sector_size);
		return -EINVAL;
	}
	c.ss = sector_size ? sector_size : 512;
	c.nsectors = disk_size / c.ss;
	t->sector_size = c.ss;
	if (disk_size < MBR_SIZE)
		return 0;
	r = rd(&c, sec, sizeof(sec), 0);
	if (r < 0)
		return r;
	if (mbr_magic(sec)) {
		for (i = 0; i < 4; i++)
			if (mbr_slot(sec, i).type == 0xee)
				pmbr = true;
		for (i = 0; i < 4 && !pmbr; i++) {
			uint8_t boot = mbr_slot(sec, i).boot;

			if (boot != 0 && boot != 0x80) {
				warn(&c,
				     "MBR: slot %d has boot indicator "
				     "0x%02x: not a partition table (a "
				     "boot sector?)",
				     i + 1, boot);
				return 0;
			}
		}
		if (!pmbr) {
			r = mbr_parse(&c, sec);
			goto out;
		}
	}
	r = gpt_find(&c, sector_size, &found, why, sizeof(why));
	if (r < 0 || found) {
		if (r == 0 && !pmbr)
			warn(&c, "GPT without a protective MBR (no 0x55AA "
				 "signature in sector 0)");
		goto out;
	}
	if (pmbr)
		warn(&c,
		     "protective MBR (type 0xee) but no valid GPT (%s): no "
		     "partition table",
		     why);
out:
	free(c.spans);
	if (r < 0) {
		part_table_free(t);
		t->sector_size = c.ss;
	}
	return r;
}

void part_table_free(struct part_table *t)
{
	free(t->e);
	t->e = NULL;
	t->n = 0;
	t->scheme = PART_NONE;
}

bool part_is_vmfs(const struct part_entry *e)
{
	return e->mbr_type == PART_MBR_VMFS || !strcmp(e->type, PART_GPT_VMFS);
}

const struct part_entry *part_find(const struct part_table *t, unsigned number)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->e[i].number == number)
			return &t->e[i];
	return NULL;
}

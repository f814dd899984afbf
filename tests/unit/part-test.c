/* Partition tables: MBR and GPT tables built by hand in memory (with a
 * CRC32 of the test's own, checked against the standard check value, not
 * zlib's), read back through part_read(). */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "../../common/err.h"
#include "../../part/part.h"
#include "check.h"

#define MIB (1024 * 1024)

struct disk {
	uint8_t *b;
	uint64_t size;
	int outside; /* reads outside [0, size) */
	int fail;    /* -errno for every read from fail_off on, or 0 */
	uint64_t fail_off;
};

static int disk_read(void *opaque, void *buf, size_t len, uint64_t off)
{
	struct disk *d = opaque;

	if (off > d->size || len > d->size - off) {
		d->outside++;
		return -EIO;
	}
	if (d->fail && off >= d->fail_off)
		return d->fail;
	memcpy(buf, d->b + off, len);
	return 0;
}

static char warnings[8192];
static int nwarnings;

static void collect(void *opaque, const char *msg)
{
	size_t n = strlen(warnings);

	(void)opaque;
	CHECK(!strchr(msg, '\n'));
	snprintf(warnings + n, sizeof(warnings) - n, "%s\n", msg);
	nwarnings++;
}

static int rd(struct disk *d, uint32_t ss, struct part_table *t)
{
	warnings[0] = 0;
	nwarnings = 0;
	return part_read(disk_read, d, d->size, ss, collect, NULL, t);
}

static struct disk *disk_new(uint64_t size)
{
	static struct disk d;

	free(d.b);
	d.b = calloc(1, size);
	d.size = size;
	d.outside = 0;
	d.fail = 0;
	d.fail_off = 0;
	return &d;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v, p[1] = v >> 8, p[2] = v >> 16, p[3] = v >> 24;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, v), put32(p + 4, v >> 32);
}

/* The reflected CRC32 (0xEDB88320), bit by bit. */
static uint32_t crc(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffff;
	int k;

	while (n--) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = c & 1 ? c >> 1 ^ 0xedb88320 : c >> 1;
	}
	return ~c;
}

/* --- MBR --- */

static void mbr_entry(uint8_t *sec, int slot, uint8_t boot, uint8_t type,
		      uint32_t start, uint32_t nsec)
{
	uint8_t *p = sec + 446 + 16 * slot;

	p[0] = boot;
	p[4] = type;
	put32(p + 8, start);
	put32(p + 12, nsec);
	sec[510] = 0x55;
	sec[511] = 0xaa;
}

/* An EBR at sector EBR (of SS bytes): a logical at EBR + REL of NSEC, a
 * link to EXT + NEXT (NEXT 0: none). */
static void ebr(struct disk *d, uint32_t ss, uint64_t at, uint8_t type,
		uint32_t rel, uint32_t nsec, uint32_t next, uint32_t next_size)
{
	uint8_t *sec = d->b + at * ss;

	memset(sec, 0, 512);
	if (nsec)
		mbr_entry(sec, 0, 0, type, rel, nsec);
	if (next)
		mbr_entry(sec, 1, 0, 0x05, next, next_size);
	sec[510] = 0x55;
	sec[511] = 0xaa;
}

static void mbr_primaries_and_logicals(void)
{
	struct disk *d = disk_new(32 * MIB);
	struct part_table t;

	put32(d->b + 440, 0xdeadbeef);
	mbr_entry(d->b, 0, 0x80, 0x83, 2048, 2048);
	mbr_entry(d->b, 1, 0, 0x0f, 8192, 16384);
	mbr_entry(d->b, 3, 0, 0xfb, 30000, 1000);
	ebr(d, 512, 8192, 0x07, 63, 1000, 2048, 4096);
	ebr(d, 512, 10240, 0x82, 100, 500, 4096, 1000);
	ebr(d, 512, 12288, 0xfb, 10, 100, 0, 0);

	CHECK(rd(d, 0, &t) == 0);
	CHECK(nwarnings == 0);
	CHECK(t.scheme == PART_MBR && t.sector_size == 512);
	CHECK(t.disk_sig == 0xdeadbeef && !t.disk_guid[0]);
	CHECK(t.n == 5);
	if (t.n == 5) {
		CHECK(t.e[0].number == 1 && t.e[0].start == 2048 * 512ull &&
		      t.e[0].size == 2048 * 512ull && t.e[0].bootable);
		CHECK(!strcmp(t.e[0].type, "0x83") && t.e[0].mbr_type == 0x83);
		CHECK(!strcmp(t.e[0].uuid, "deadbeef-01"));
		CHECK(!part_is_vmfs(&t.e[0]));
		CHECK(t.e[1].number == 4 && t.e[1].start == 30000 * 512ull);
		CHECK(part_is_vmfs(&t.e[1]) && !strcmp(t.e[1].type, "0xfb"));
		CHECK(!t.e[1].bootable && !t.e[1].name[0]);
		CHECK(t.e[2].number == 5 && t.e[2].start == 8255 * 512ull &&
		      t.e[2].size == 1000 * 512ull);
		CHECK(!strcmp(t.e[2].uuid, "deadbeef-05"));
		CHECK(t.e[3].number == 6 && t.e[3].start == 10340 * 512ull &&
		      t.e[3].mbr_type == 0x82);
		CHECK(t.e[4].number == 7 && t.e[4].start == 12298 * 512ull &&
		      t.e[4].size == 100 * 512ull && part_is_vmfs(&t.e[4]));
		CHECK(part_find(&t, 6) == &t.e[3] && !part_find(&t, 2));
	}
	part_table_free(&t);

	/* 4096-byte sectors given: the same table, 8 times the bytes. */
	d = disk_new(256 * MIB);
	mbr_entry(d->b, 0, 0, 0x83, 2048, 2048);
	mbr_entry(d->b, 1, 0, 0x05, 8192, 16384);
	ebr(d, 4096, 8192, 0xfb, 1, 100, 0, 0);
	CHECK(rd(d, 4096, &t) == 0 && nwarnings == 0);
	CHECK(t.scheme == PART_MBR && t.sector_size == 4096 && t.n == 2);
	if (t.n == 2) {
		CHECK(t.e[0].start == 2048 * 4096ull);
		CHECK(t.e[1].number == 5 && t.e[1].start == 8193 * 4096ull &&
		      t.e[1].size == 100 * 4096ull);
		CHECK(!t.e[0].uuid[0]); /* signature 0: no PARTUUID */
	}
	part_table_free(&t);
	CHECK(d->outside == 0);
}

static void mbr_odd(void)
{
	struct disk *d = disk_new(8 * MIB); /* 16384 sectors */
	struct part_table t;
	int i;

	/* Overlap, past the end, ending past the end, start 0. */
	mbr_entry(d->b, 0, 0, 0x83, 2048, 4096);
	mbr_entry(d->b, 1, 0, 0x83, 4000, 100);
	mbr_entry(d->b, 2, 0, 0x83, 20000, 100);
	mbr_entry(d->b, 3, 0, 0x83, 16000, 1000);
	CHECK(rd(d, 0, &t) == 0);
	CHECK(t.scheme == PART_MBR && t.n == 1 && t.e[0].number == 1);
	CHECK(nwarnings == 3);
	CHECK(strstr(warnings, "partition 2: sectors 4000-4099 overlap "
			       "partition 1"));
	CHECK(strstr(warnings, "partition 3: starts at sector 20000, past the "
			       "disk's end (16384 sectors): skipped"));
	CHECK(strstr(warnings, "partition 4: sectors 16000-16999 end past"));
	part_table_free(&t);
	mbr_entry(d->b, 1, 0, 0x83, 0, 100);
	mbr_entry(d->b, 2, 0, 0, 0, 0);
	mbr_entry(d->b, 3, 0, 0, 0, 0);
	CHECK(rd(d, 0, &t) == 0 && t.n == 1 && nwarnings == 1);
	CHECK(strstr(warnings, "partition 2: starts at sector 0"));
	part_table_free(&t);

	/* A loop: the third EBR links back to the second. */
	memset(d->b, 0, 512);
	mbr_entry(d->b, 0, 0, 0x05, 2048, 8192);
	ebr(d, 512, 2048, 0x83, 1, 10, 100, 100);
	ebr(d, 512, 2148, 0x83, 1, 10, 200, 100);
	ebr(d, 512, 2248, 0x83, 1, 10, 100, 100);
	CHECK(rd(d, 0, &t) == 0 && t.n == 3);
	CHECK(t.n == 3 && t.e[2].number == 7 && t.e[2].start == 2249 * 512ull);
	CHECK(nwarnings == 1 && strstr(warnings, "loops back to sector 2148"));
	part_table_free(&t);
	/* A link to itself (relative 0). */
	ebr(d, 512, 2048, 0x83, 1, 10, 0, 0);
	mbr_entry(d->b + 2048 * 512, 1, 0, 0x05, 0, 100);
	CHECK(rd(d, 0, &t) == 0 && t.n == 1 && nwarnings == 1);
	CHECK(strstr(warnings, "loops back to sector 2048"));
	part_table_free(&t);

	/* A link outside the extended partition; a logical outside it (its
	 * number is used all the same, as Linux does). */
	ebr(d, 512, 2048, 0x83, 1, 10, 100, 100);
	ebr(d, 512, 2148, 0x83, 1, 9000, 200, 100);
	ebr(d, 512, 2248, 0x83, 1, 10, 9000, 100);
	CHECK(rd(d, 0, &t) == 0 && t.n == 2);
	CHECK(t.n == 2 && t.e[0].number == 5 && t.e[1].number == 7);
	CHECK(nwarnings == 2);
	CHECK(strstr(warnings, "partition 6: sectors 2149-11148 are not "
			       "inside its extended partition (sectors "
			       "2048-10239): skipped"));
	CHECK(strstr(warnings, "links to sector 11048, outside the extended"));
	part_table_free(&t);

	/* An extended partition past the end: no logicals. */
	mbr_entry(d->b, 0, 0, 0x85, 2048, 100000);
	CHECK(rd(d, 0, &t) == 0 && t.n == 0 && t.scheme == PART_MBR);
	CHECK(nwarnings == 1 && strstr(warnings, "extended partition"));
	part_table_free(&t);

	/* No EBR signature where the link points. */
	mbr_entry(d->b, 0, 0, 0x05, 2048, 8192);
	ebr(d, 512, 2048, 0x83, 1, 10, 100, 100);
	memset(d->b + 2148 * 512, 0, 512);
	CHECK(rd(d, 0, &t) == 0 && t.n == 1 && nwarnings == 1);
	CHECK(strstr(warnings, "no EBR (0x55AA) at sector 2148"));
	part_table_free(&t);

	/* 200 logicals in the chain: 128 kept. */
	for (i = 0; i < 200; i++)
		ebr(d, 512, 2048 + 20 * i, 0x83, 1, 10, 20 * (i + 1), 20);
	CHECK(rd(d, 0, &t) == 0 && t.n == PART_MAX_LOGICALS);
	CHECK(t.n && t.e[t.n - 1].number == 4 + PART_MAX_LOGICALS);
	CHECK(nwarnings == 1 && strstr(warnings, "more than 128 logical"));
	part_table_free(&t);

	/* A boot indicator other than 0/0x80: not a partition table. */
	memset(d->b, 0, 512);
	mbr_entry(d->b, 0, 0x12, 0x83, 2048, 100);
	CHECK(rd(d, 0, &t) == 0 && t.scheme == PART_NONE && t.n == 0);
	CHECK(nwarnings == 1 && strstr(warnings, "boot indicator 0x12"));
	part_table_free(&t);
	CHECK(d->outside == 0);
}

/* --- GPT --- */

static void guid(uint8_t *p, const char *s)
{
	unsigned v[16];

	sscanf(s, "%2x%2x%2x%2x-%2x%2x-%2x%2x-%2x%2x-%2x%2x%2x%2x%2x%2x", &v[3],
	       &v[2], &v[1], &v[0], &v[5], &v[4], &v[7], &v[6], &v[8], &v[9],
	       &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]);
	for (int i = 0; i < 16; i++)
		p[i] = v[i];
}

struct gent {
	unsigned index; /* 0-based slot */
	const char *type, *uuid;
	uint64_t first, last, attrs;
	const uint16_t *name; /* UTF-16 units, NUL-terminated */
};

#define DISK_GUID "01234567-89ab-cdef-0011-223344556677"
#define LINUX "0fc63daf-8483-4772-8e79-3d69d8477de4"

/* A GPT on D with sector size SS: protective MBR, header at LBA 1 and
 * entries at 2, the backup entries before the backup header at the last
 * LBA; NARRAY entries of ESZ bytes. */
static void gpt(struct disk *d, uint32_t ss, const struct gent *e, size_t n,
		uint32_t narray, uint32_t esz)
{
	uint64_t last = d->size / ss - 1;
	uint32_t abytes = narray * esz, asec = (abytes + ss - 1) / ss;
	uint8_t *arr = calloc(1, abytes), h[512];
	size_t i, k;

	for (i = 0; i < n; i++) {
		uint8_t *p = arr + e[i].index * esz;

		guid(p, e[i].type);
		guid(p + 16, e[i].uuid);
		put64(p + 32, e[i].first);
		put64(p + 40, e[i].last);
		put64(p + 48, e[i].attrs);
		for (k = 0; e[i].name && e[i].name[k] && k < 36; k++)
			p[56 + 2 * k] = e[i].name[k],
				   p[57 + 2 * k] = e[i].name[k] >> 8;
	}
	memset(d->b, 0, 512);
	mbr_entry(d->b, 0, 0, 0xee, 1,
		  last > 0xffffffff ? 0xffffffff : (uint32_t)last);
	for (int b = 0; b < 2; b++) {
		uint64_t my = b ? last : 1, alt = b ? 1 : last;
		uint64_t elba = b ? last - asec : 2;

		memset(h, 0, sizeof(h));
		memcpy(h, "EFI PART", 8);
		put32(h + 8, 0x00010000);
		put32(h + 12, 92);
		put64(h + 24, my);
		put64(h + 32, alt);
		put64(h + 40, 2 + asec);
		put64(h + 48, last - asec - 1);
		guid(h + 56, DISK_GUID);
		put64(h + 72, elba);
		put32(h + 80, narray);
		put32(h + 84, esz);
		put32(h + 88, crc(arr, abytes));
		put32(h + 16, crc(h, 92));
		memset(d->b + my * ss, 0, ss);
		memcpy(d->b + my * ss, h, sizeof(h));
		memcpy(d->b + elba * ss, arr, abytes);
	}
	free(arr);
}

static const uint16_t name_esxi[] = {'d',    'a',    't',    'a',    's',
				     't',    'o',    'r',    'e',    ' ',
				     0x00e9, 0x65e5, 0xd83d, 0xde00, 0};
static const uint16_t name_bad[] = {'x', 0xdc00, 'y', 0xd800, 0};
static const uint16_t name_long[] = {
    'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm',
    'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z',
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 0};

static const struct gent gents[] = {
    {0, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
     "11111111-2222-3333-4444-555555555555", 2048, 4095, 1, NULL},
    {1, PART_GPT_VMFS, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", 4096, 8191, 0,
     name_esxi},
    {4, LINUX, "0a0b0c0d-0e0f-1011-1213-141516171819", 8192, 8192, 0,
     name_long},
    {6, LINUX, "ffffffff-ffff-ffff-ffff-fffffffffffe", 10000, 10099, 0,
     name_bad},
};

static void check_gents(const struct part_table *t, uint32_t ss)
{
	CHECK(t->scheme == PART_GPT && t->sector_size == ss);
	CHECK(!strcmp(t->disk_guid, DISK_GUID));
	CHECK(t->n == 4);
	if (t->n != 4)
		return;
	CHECK(t->e[0].number == 1 && t->e[0].start == 2048ull * ss &&
	      t->e[0].size == 2048ull * ss && t->e[0].attrs == 1);
	CHECK(!strcmp(t->e[0].type, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"));
	CHECK(!strcmp(t->e[0].uuid, "11111111-2222-3333-4444-555555555555"));
	CHECK(!t->e[0].name[0] && !t->e[0].mbr_type && !t->e[0].bootable);
	CHECK(!part_is_vmfs(&t->e[0]));
	CHECK(t->e[1].number == 2 && part_is_vmfs(&t->e[1]));
	CHECK(!strcmp(t->e[1].name, "datastore \xc3\xa9\xe6\x97\xa5"
				    "\xf0\x9f\x98\x80"));
	CHECK(t->e[2].number == 5 && t->e[2].size == ss);
	CHECK(!strcmp(t->e[2].name, "abcdefghijklmnopqrstuvwxyz0123456789"));
	CHECK(!strcmp(t->e[2].uuid, "0a0b0c0d-0e0f-1011-1213-141516171819"));
	CHECK(t->e[3].number == 7);
	CHECK(!strcmp(t->e[3].name, "x\xef\xbf\xbdy\xef\xbf\xbd"));
}

static void gpt_tables(void)
{
	struct disk *d = disk_new(8 * MIB);
	struct part_table t;
	uint8_t *h1;

	gpt(d, 512, gents, 4, 128, 128);
	CHECK(rd(d, 0, &t) == 0 && nwarnings == 0);
	check_gents(&t, 512);
	CHECK(!t.used_backup);
	part_table_free(&t);
	CHECK(rd(d, 512, &t) == 0 && nwarnings == 0);
	check_gents(&t, 512);
	part_table_free(&t);
	CHECK(rd(d, 4096, &t) == 0 && t.scheme == PART_NONE && nwarnings == 1);
	CHECK(strstr(warnings, "protective MBR (type 0xee) but no valid GPT"));
	part_table_free(&t);

	/* Entries of 256 bytes, 8 of them. */
	gpt(d, 512, gents, 4, 8, 256);
	CHECK(rd(d, 0, &t) == 0 && nwarnings == 0);
	check_gents(&t, 512);
	part_table_free(&t);

	/* The primary header damaged: the backup. */
	gpt(d, 512, gents, 4, 128, 128);
	h1 = d->b + 512;
	h1[60] ^= 1;
	CHECK(rd(d, 0, &t) == 0);
	CHECK(t.used_backup && nwarnings == 1);
	CHECK(strstr(warnings, "header CRC mismatch") &&
	      strstr(warnings, "using the backup at LBA 16383"));
	check_gents(&t, 512);
	part_table_free(&t);
	/* ... its signature gone */
	h1[60] ^= 1;
	h1[0] = 'X';
	CHECK(rd(d, 0, &t) == 0 && t.used_backup && nwarnings == 1);
	check_gents(&t, 512);
	part_table_free(&t);
	/* The primary entries damaged (CRC): the backup. */
	h1[0] = 'E';
	d->b[2 * 512 + 128 + 60] ^= 0x40;
	CHECK(rd(d, 0, &t) == 0 && t.used_backup && nwarnings == 1);
	CHECK(strstr(warnings, "entries' CRC does not match"));
	check_gents(&t, 512);
	part_table_free(&t);
	/* Both damaged: no table. */
	d->b[d->size - 512 + 3] ^= 1;
	CHECK(rd(d, 0, &t) == 0 && t.scheme == PART_NONE && t.n == 0);
	CHECK(nwarnings == 1 && strstr(warnings, "no valid GPT"));
	part_table_free(&t);
	/* The backup's entries damaged too (its header intact). */
	d->b[d->size - 512 + 3] ^= 1;
	d->b[d->size - 33 * 512 + 100] ^= 1;
	CHECK(rd(d, 0, &t) == 0 && t.scheme == PART_NONE && nwarnings == 1);
	part_table_free(&t);

	/* A hybrid MBR (0xee and an MBR partition): the GPT wins. */
	gpt(d, 512, gents, 4, 128, 128);
	mbr_entry(d->b, 1, 0x80, 0x0c, 2048, 2048);
	CHECK(rd(d, 0, &t) == 0 && nwarnings == 0);
	check_gents(&t, 512);
	part_table_free(&t);
	/* ... and without a valid GPT: nothing (Linux does not read it). */
	memset(d->b + 512, 0, 512);
	memset(d->b + d->size - 512, 0, 512);
	CHECK(rd(d, 0, &t) == 0 && t.scheme == PART_NONE && nwarnings == 1);
	part_table_free(&t);

	/* A protective MBR alone. */
	memset(d->b, 0, d->size);
	mbr_entry(d->b, 0, 0, 0xee, 1, 16383);
	CHECK(rd(d, 0, &t) == 0 && t.scheme == PART_NONE && nwarnings == 1);
	part_table_free(&t);

	/* A GPT without the MBR's signature: found, with a warning. */
	gpt(d, 512, gents, 4, 128, 128);
	memset(d->b, 0, 512);
	CHECK(rd(d, 0, &t) == 0 && nwarnings == 1);
	CHECK(strstr(warnings, "without a protective MBR"));
	check_gents(&t, 512);
	part_table_free(&t);
	CHECK(d->outside == 0);
}

static void gpt_odd(void)
{
	static const struct gent odd[] = {
	    {0, LINUX, "00000000-0000-0000-0000-000000000001", 2048, 4095, 0,
	     NULL},
	    {1, LINUX, "00000000-0000-0000-0000-000000000002", 4000, 5000, 0,
	     NULL},
	    {2, LINUX, "00000000-0000-0000-0000-000000000003", 6000, 5999, 0,
	     NULL},
	    {3, LINUX, "00000000-0000-0000-0000-000000000004", 16000, 17000, 0,
	     NULL},
	    {4, LINUX, "00000000-0000-0000-0000-000000000005", 20000, 20001, 0,
	     NULL},
	    {5, LINUX, "00000000-0000-0000-0000-000000000006", 0, 10, 0, NULL},
	    {6, LINUX, "00000000-0000-0000-0000-000000000007", 8000, UINT64_MAX,
	     0, NULL},
	    {9, LINUX, "00000000-0000-0000-0000-00000000000a", 6000, 6999, 0,
	     NULL},
	};
	struct disk *d = disk_new(8 * MIB);
	struct part_table t;

	gpt(d, 512, odd, 8, 128, 128);
	CHECK(rd(d, 0, &t) == 0 && t.scheme == PART_GPT);
	CHECK(t.n == 2 && t.e[0].number == 1 && t.e[1].number == 10);
	CHECK(nwarnings == 6);
	CHECK(strstr(warnings, "partition 2: sectors 4000-5000 overlap "
			       "partition 1 (sectors 2048-4095): skipped"));
	CHECK(strstr(warnings, "partition 3: ends at sector 5999, before"));
	CHECK(strstr(warnings, "partition 4: sectors 16000-17000 end past "
			       "the disk's end (16384 sectors)"));
	CHECK(strstr(warnings, "partition 5: starts at sector 20000, past"));
	CHECK(strstr(warnings, "partition 6: starts at sector 0"));
	CHECK(strstr(warnings, "partition 7: sectors 8000-18446744073709551615 "
			       "end past"));
	part_table_free(&t);
	CHECK(d->outside == 0);
}

static void gpt_4k(void)
{
	struct disk *d = disk_new(64 * MIB);
	struct part_table t;

	gpt(d, 4096, gents, 4, 128, 128);
	CHECK(rd(d, 0, &t) == 0 && nwarnings == 0);
	check_gents(&t, 4096);
	part_table_free(&t);
	CHECK(rd(d, 4096, &t) == 0 && nwarnings == 0);
	check_gents(&t, 4096);
	part_table_free(&t);
	CHECK(rd(d, 512, &t) == 0 && t.scheme == PART_NONE && nwarnings == 1);
	part_table_free(&t);
	/* The primary damaged: the backup at the last 4 KiB LBA. */
	d->b[4096 + 20] ^= 1;
	CHECK(rd(d, 0, &t) == 0 && t.used_backup && nwarnings == 1);
	CHECK(strstr(warnings, "4096-byte sectors") &&
	      strstr(warnings, "LBA 16383"));
	check_gents(&t, 4096);
	part_table_free(&t);
	CHECK(d->outside == 0);
}

static void none_and_errors(void)
{
	struct disk *d = disk_new(8 * MIB);
	struct part_table t;
	int i;

	CHECK(rd(d, 0, &t) == 0 && t.scheme == PART_NONE && t.n == 0);
	CHECK(nwarnings == 0 && !t.e);
	part_table_free(&t);
	for (i = 0; i < 8 * MIB; i++)
		d->b[i] = i * 7 + (i >> 9);
	d->b[510] = 0;
	CHECK(rd(d, 0, &t) == 0 && t.scheme == PART_NONE && nwarnings == 0);
	part_table_free(&t);

	/* Smaller than a sector: nothing read. */
	d->size = 100;
	CHECK(rd(d, 0, &t) == 0 && t.scheme == PART_NONE);
	part_table_free(&t);
	d->size = 8 * MIB;

	/* A read failure is the only failure. */
	d->fail = -EIO;
	vmdkfs_error_clear();
	CHECK(rd(d, 0, &t) == -EIO && t.n == 0);
	CHECK(strstr(vmdkfs_errmsg(), "reading 512 bytes at byte 0"));
	part_table_free(&t);
	CHECK(rd(d, 1000, &t) == -EINVAL);
	part_table_free(&t);
	/* ... also the GPT's, or the backup's. */
	d->fail = 0;
	gpt(d, 512, gents, 4, 128, 128);
	CHECK(rd(d, 0, &t) == 0 && t.n == 4);
	part_table_free(&t);
	d->fail = -ENXIO;
	d->fail_off = 512;
	CHECK(rd(d, 0, &t) == -ENXIO && t.n == 0 && t.scheme == PART_NONE);
	CHECK(strstr(vmdkfs_errmsg(), "at byte 512"));
	part_table_free(&t);
	d->b[512] ^= 1;
	d->fail_off = d->size - 512;
	CHECK(rd(d, 0, &t) == -ENXIO && t.n == 0);
	part_table_free(&t);
	/* ... and a logical's EBR. */
	memset(d->b, 0, d->size);
	mbr_entry(d->b, 0, 0, 0x05, 2048, 100);
	ebr(d, 512, 2048, 0x83, 1, 10, 0, 0);
	d->fail_off = 2048 * 512;
	CHECK(rd(d, 0, &t) == -ENXIO && t.n == 0);
	part_table_free(&t);
	CHECK(d->outside == 0);
}

int main(void)
{
	CHECK(crc((const uint8_t *)"123456789", 9) == 0xcbf43926);
	mbr_primaries_and_logicals();
	mbr_odd();
	gpt_tables();
	gpt_odd();
	gpt_4k();
	none_and_errors();
	free(disk_new(0)->b);
	CHECK_DONE();
}

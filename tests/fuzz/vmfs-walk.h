/* Shared by tests/fuzz/vmfs-fuzz.c and tests/vmfs/vmfs-tool.c (its seed
 * command): a bounded walk of a VMFS volume that touches every structure
 * the reader has, and the fuzzer's input format.
 *
 * Input format ("sparse chunks"), so that a few KiB describe volumes of
 * hundreds of MiB that are mostly zeros:
 *   u32 size of device 0 in MiB, u32 size of device 1 in MiB (0: one
 *   device), both at most 2048, little-endian;
 *   then records: u8 device (0 or 1), u32 512-byte sector, u16 length,
 *   that many bytes (cut at the end of the input); at most 4096 records
 *   per device.  Bytes no record gives read as zeros; a later record
 *   wins.
 */
#ifndef VMDKFS_VMFS_WALK_H
#define VMDKFS_VMFS_WALK_H

/* Includers define _GNU_SOURCE first (asprintf). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/source.h"
#include "../../vmfs/vmfs.h"

#define CHUNK_MAX_MIB 2048u

struct chunk_rec {
	uint64_t off;
	size_t len;
	const uint8_t *data;
};

struct chunk_source {
	struct source s;
	struct chunk_rec *rec;
	size_t nrec, cap;
};

#define CHUNK_MAX_RECS 4096u

static int chunk_pread(struct source *s, void *buf, size_t len, uint64_t off)
{
	struct chunk_source *c = (struct chunk_source *)s;
	size_t i;

	if (off > s->size || len > s->size - off)
		return -EIO;
	memset(buf, 0, len);
	for (i = 0; i < c->nrec; i++) {
		const struct chunk_rec *r = &c->rec[i];
		uint64_t a = r->off > off ? r->off : off;
		uint64_t b =
		    r->off + r->len < off + len ? r->off + r->len : off + len;

		if (a < b)
			memcpy((uint8_t *)buf + (a - off),
			       r->data + (a - r->off), (size_t)(b - a));
	}
	return 0;
}

static void chunk_close(struct source *s)
{
	struct chunk_source *c = (struct chunk_source *)s;

	free(c->rec);
	free(s->name);
	free(c);
}

static const struct source_ops chunk_ops = {
    .pread = chunk_pread,
    .pwrite = source_ro_pwrite,
    .flush = source_no_flush,
    .close = chunk_close,
};

static uint32_t chunk_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* The devices INPUT describes (it must outlive them): 1 or 2, or 0 if the
 * input is too short. */
static size_t chunk_devices(const uint8_t *in, size_t n, struct source **dev)
{
	struct chunk_source *c[2] = {NULL, NULL};
	size_t ndev, i, pos;

	if (n < 8)
		return 0;
	ndev = chunk_le32(in + 4) ? 2 : 1;
	for (i = 0; i < ndev; i++) {
		uint32_t mib = chunk_le32(in + 4 * i);

		c[i] = calloc(1, sizeof(*c[i]));
		if (!c[i])
			goto fail;
		c[i]->s.ops = &chunk_ops;
		c[i]->s.size = (uint64_t)(mib % (CHUNK_MAX_MIB + 1)) << 20;
		if (asprintf(&c[i]->s.name, "dev%zu", i) < 0) {
			c[i]->s.name = NULL;
			goto fail;
		}
	}
	for (pos = 8; pos + 7 <= n;) {
		struct chunk_source *d = c[in[pos] & 1 ? ndev - 1 : 0];
		struct chunk_rec *r;
		size_t len = (size_t)(in[pos + 5] | in[pos + 6] << 8);

		if (len > n - pos - 7)
			len = n - pos - 7;
		if (d->nrec == CHUNK_MAX_RECS)
			break;
		if (d->nrec == d->cap) {
			d->cap = d->cap ? 2 * d->cap : 64;
			r = realloc(d->rec, d->cap * sizeof(*r));
			if (!r)
				goto fail;
			d->rec = r;
		}
		r = d->rec;
		r[d->nrec].off = (uint64_t)chunk_le32(in + pos + 1) * 512;
		r[d->nrec].len = len;
		r[d->nrec].data = in + pos + 7;
		d->nrec++;
		pos += 7 + len;
	}
	for (i = 0; i < ndev; i++)
		dev[i] = &c[i]->s;
	return ndev;
fail:
	for (i = 0; i < 2; i++)
		if (c[i])
			chunk_close(&c[i]->s);
	return 0;
}

/* ---- The walk ---- */

struct walk_ctx {
	struct vmfs *v;
	char path[4096];
	unsigned depth, entries;
	uint8_t buf[65536];
};

#define WALK_MAX_ENTRIES 300
#define WALK_MAX_DEPTH 8

static void walk_file(struct walk_ctx *w)
{
	struct vmfs_file *f;
	struct source *s;
	uint64_t size, off, run;
	unsigned i;
	int kind;

	if (vmfs_file_open(w->v, w->path, &f) < 0)
		return;
	size = vmfs_file_size(f);
	(void)vmfs_file_allocated(f);
	if (size) {
		size_t n =
		    size < sizeof(w->buf) ? (size_t)size : sizeof(w->buf);

		vmfs_file_pread(f, w->buf, n, 0);
		n = size < 4096 ? (size_t)size : 4096;
		vmfs_file_pread(f, w->buf, n, size - n);
		vmfs_file_pread(f, w->buf, n, (size - n) / 2);
		/* Past the end: refused. */
		vmfs_file_pread(f, w->buf, 2, size - 1);
		for (off = 0, i = 0; off < size && i < 64; off += run, i++)
			if (vmfs_file_map(f, off, size - off, &kind, &run) < 0)
				break;
	}
	vmfs_file_close(f);
	if (vmfs_file_source(w->v, w->path, &s) == 0) {
		if (s->size)
			source_pread(s, w->buf, s->size < 512 ? s->size : 512,
				     0);
		(void)source_allocated(s);
		source_close(s);
	}
}

static int walk_cb(void *opaque, const struct vmfs_dirent *e)
{
	struct walk_ctx *w = opaque;
	struct vmfs_stat st;
	size_t at = strlen(w->path);
	char target[4097];
	uint32_t addr;

	if (++w->entries > WALK_MAX_ENTRIES)
		return 1;
	if (at + 1 + strlen(e->name) + 1 > sizeof(w->path))
		return 0;
	snprintf(w->path + at, sizeof(w->path) - at, "%s%s", at > 1 ? "/" : "",
		 e->name);
	if (vmfs_stat_addr(w->v, e->addr, &st) == 0) {
		switch (st.kind) {
		case VMFS_DIR:
			if (w->depth < WALK_MAX_DEPTH) {
				w->depth++;
				vmfs_readdir(w->v, e->addr, walk_cb, w);
				w->depth--;
			}
			break;
		case VMFS_SYMLINK:
			vmfs_readlink_addr(w->v, e->addr, target,
					   sizeof(target));
			vmfs_lookup(w->v, w->path, true, &addr);
			break;
		case VMFS_FILE:
			walk_file(w);
			break;
		}
		vmfs_lookup(w->v, w->path, false, &addr);
	}
	w->path[at] = '\0';
	return 0;
}

/* Walk the whole tree (bounded), reading from every file. */
static void vmfs_walk(struct vmfs *v)
{
	struct walk_ctx *w = malloc(sizeof(*w));
	struct vmfs_info info;
	struct vmfs_stat st;
	uint32_t addr;

	if (!w)
		return;
	memset(w, 0, sizeof(*w));
	w->v = v;
	vmfs_get_info(v, &info);
	strcpy(w->path, "/");
	vmfs_readdir(v, VMFS_ROOT_ADDR, walk_cb, w);
	vmfs_lookup(v, "/directory/../directory/./symlink", true, &addr);
	vmfs_stat(v, "/directory/file5", &st);
	free(w);
}

#endif

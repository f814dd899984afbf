/* File descriptors and their data: the address modes, reads, the
 * allocation map, files as struct source.
 *
 * File metadata, at the descriptor's metadata offset (512; VMFS6 the
 * alignment) (confirmed on every descriptor of both volumes):
 *   0x00 u32 own address  0x08 u32 links  0x0c u32 type (2 directory, 3
 *   file, 4 symlink, 5 system file, 6 RDM)  0x14 u64 length  0x1c u64 block
 *   size (1 MiB, or the sub-block size for resident and sub-block files)
 *   0x24 u64 blocks  0x2c u32 mtime  0x30 ctime  0x34 atime  0x38 uid
 *   0x3c gid  0x40 u32 mode (permission bits; S_IFDIR on .sdd.sf)
 *   0x44 u32 zero-level address type (ZLA)  0x89 u8 block offset shift
 *   (log2 of the block size; VMFS5's is ignored, as ESXi does for
 *   versions up to 19).
 *
 * Addresses (low 3 bits: type):
 *   VMFS5 file block: block number bits 6-31, to-be-zeroed bit 5
 *     (confirmed: 0x381 is block 14, file5's; TBZ unconfirmed: none set).
 *   VMFS6 small file block: cluster bits 15-45, resource bits 51-63,
 *     block = cluster x 512 (.fbb.sf's small-block resources per cluster)
 *     + resource (confirmed: .jbc.sf's blocks run 510, 511 of cluster 0,
 *     then 0, 1 of cluster 1); to-be-zeroed map bits 7-14 (unconfirmed;
 *     any bit makes the block read as zeros, as dissect.vmfs does).
 *   VMFS6 large file block: block bits 15-45, of 512 MiB (unconfirmed).
 *   Sub-blocks, pointer blocks: see vmfs_addr_res().
 * ZLA 0x10d1: data in the descriptor (confirmed: file4, VMFS6's symlink);
 * 1: file blocks (confirmed); 2: sub-blocks (confirmed); 3 or 5: one level
 * of pointer blocks, by the pointer block's address type (confirmed only
 * as VMFS6's .sbc.sf, through .pb2.sf); 0x10d0: two levels (unconfirmed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "internal.h"

struct vmfs_file {
	struct vmfs *v;
	struct vmfs_fd *fd;
};

void vmfs_fd_free(struct vmfs_fd *fd)
{
	if (!fd)
		return;
	free(fd->raw);
	free(fd->label);
	free(fd);
}

int vmfs_kind_of(uint32_t type, uint32_t mode)
{
	switch (type) {
	case VMFS_FD_DIRECTORY:
		return VMFS_DIR;
	case VMFS_FD_REGFILE:
		return VMFS_FILE;
	case VMFS_FD_SYMLINK:
		return VMFS_SYMLINK;
	case VMFS_FD_SYSFILE:
		return (mode & 0170000) == 0040000 ? VMFS_DIR : VMFS_FILE;
	case VMFS_FD_RDM:
		return VMFS_RDM;
	}
	return -1;
}

/* Bytes the address array of FD (in its mode) can map, saturated. */
static uint64_t capacity(const struct vmfs *v, const struct vmfs_fd *fd)
{
	unsigned __int128 c = (unsigned __int128)v->fd_naddr << fd->shift;

	switch (fd->zla) {
	case VMFS_ZLA_RESIDENT:
		return v->fd_res_size;
	case VMFS_ZLA_POINTER_BLOCK:
	case VMFS_ZLA_POINTER2_BLOCK:
		c <<= v->pb_shift;
		break;
	case VMFS_ZLA_DOUBLE_INDIRECT:
		c <<= 2 * v->pb_shift;
		break;
	}
	return c > UINT64_MAX ? UINT64_MAX : (uint64_t)c;
}

int vmfs_fd_parse(struct vmfs *v, uint32_t addr, uint8_t *raw,
		  const char *label, struct vmfs_fd **out)
{
	const uint8_t *m = raw + v->fd_meta;
	struct vmfs_fd *fd;
	uint32_t own = le32(m);
	int sh, r = -EINVAL;

	fd = calloc(1, sizeof(*fd));
	if (!fd || !(fd->label = strdup(label))) {
		free(fd);
		free(raw);
		return -ENOMEM;
	}
	fd->raw = raw;
	fd->addr = addr;
	fd->nlink = le32(m + 0x08);
	fd->type = le32(m + 0x0c);
	fd->flags = le32(m + 0x10);
	fd->length = le64(m + 0x14);
	fd->block_size = le64(m + 0x1c);
	fd->nblocks = le64(m + 0x24);
	fd->mtime = le32(m + 0x2c);
	fd->ctime = le32(m + 0x30);
	fd->atime = le32(m + 0x34);
	fd->uid = le32(m + 0x38);
	fd->gid = le32(m + 0x3c);
	fd->mode = le32(m + 0x40);
	fd->zla = le32(m + 0x44);
	if (own != addr) {
		vmdkfs_error("%s: %s: file descriptor %#x holds address %#x: a "
			     "free or damaged descriptor (a directory entry "
			     "pointing nowhere?)",
			     v->name, label, addr, own);
		goto fail;
	}
	if (vmfs_kind_of(fd->type, fd->mode) < 0) {
		vmdkfs_error("%s: %s: file descriptor %#x has type %u (not a "
			     "directory, file, symlink, system file or RDM)",
			     v->name, label, addr, fd->type);
		goto fail;
	}
	sh = log2_exact(fd->block_size);
	if (sh < 9 || sh > 40) {
		vmdkfs_error("%s: %s: file descriptor %#x: block size %llu is "
			     "not a power of two from 512 to 1 TiB",
			     v->name, label, addr,
			     (unsigned long long)fd->block_size);
		goto fail;
	}
	fd->shift = (unsigned)sh;
	if (v->version == 6 && m[0x89] != 0 && m[0x89] != sh) {
		vmdkfs_error("%s: %s: file descriptor %#x: block offset shift "
			     "%u disagrees with its block size %llu",
			     v->name, label, addr, m[0x89],
			     (unsigned long long)fd->block_size);
		goto fail;
	}
	switch (fd->zla) {
	case VMFS_ZLA_RESIDENT:
	case VMFS_ZLA_FILE_BLOCK:
	case VMFS_ZLA_SUB_BLOCK:
	case VMFS_ZLA_POINTER_BLOCK:
	case VMFS_ZLA_POINTER2_BLOCK:
	case VMFS_ZLA_DOUBLE_INDIRECT:
		break;
	default:
		vmdkfs_error("%s: %s: file descriptor %#x: address mode (ZLA) "
			     "%#x is not supported",
			     v->name, label, addr, fd->zla);
		goto fail;
	}
	if (fd->length > capacity(v, fd) || fd->length > (1ULL << 62)) {
		vmdkfs_error("%s: %s: file descriptor %#x: length %llu is more "
			     "than its address mode %#x can map (%llu bytes)",
			     v->name, label, addr,
			     (unsigned long long)fd->length, fd->zla,
			     (unsigned long long)capacity(v, fd));
		goto fail;
	}
	*out = fd;
	return 0;
fail:
	vmfs_fd_free(fd);
	return r;
}

int vmfs_fd_load(struct vmfs *v, uint32_t addr, const char *label,
		 struct vmfs_fd **out)
{
	char what[64], by_addr[48];
	uint64_t cluster;
	uint32_t resource;
	uint8_t *raw;
	int r;

	if (!label) {
		snprintf(by_addr, sizeof(by_addr), "descriptor %#x", addr);
		label = by_addr;
	}
	if ((addr & 7) != ADDR_FD) {
		vmdkfs_error("%s: %s: address %#x is not a file descriptor's "
			     "(type %u)",
			     v->name, label, addr, addr & 7);
		return -EINVAL;
	}
	raw = malloc(v->fd_size);
	if (!raw)
		return -ENOMEM;
	vmfs_addr_res(v, addr, &cluster, &resource);
	snprintf(what, sizeof(what), "file descriptor %#x", addr);
	r = vmfs_res_read(v, ADDR_FD, cluster, resource, raw, v->fd_size, 0, 0,
			  what);
	if (r < 0) {
		if (strncmp(label, "descriptor ", 11))
			vmdkfs_error("%s (%s)", vmdkfs_errmsg(), label);
		free(raw);
		return r;
	}
	return vmfs_fd_parse(v, addr, raw, label, out);
}

static uint64_t fd_addr(const struct vmfs *v, const struct vmfs_fd *fd,
			uint64_t i)
{
	const uint8_t *p = fd->raw + v->fd_addr_off + i * v->aw;

	return v->aw == 8 ? le64(p) : le32(p);
}

/* End of index I's span of 2^SH bytes, saturated. */
static uint64_t span_end(uint64_t i, unsigned sh)
{
	if (sh >= 64 || i + 1 > (UINT64_MAX >> sh))
		return UINT64_MAX;
	return (i + 1) << sh;
}

/* Entry Q of the pointer block at address PB (an entry of FD's map). */
static int pb_entry(struct vmfs *v, struct vmfs_fd *fd, uint64_t pb, uint64_t q,
		    int depth, uint64_t *out)
{
	char what[160];
	uint8_t b[8] = {0};
	unsigned t = pb & 7;
	int r;

	snprintf(what, sizeof(what), "%s: pointer block %#llx", fd->label,
		 (unsigned long long)pb);
	if (t == ADDR_PB || t == ADDR_PB2 ||
	    (t == ADDR_SB && v->version == 6)) {
		uint64_t cluster;
		uint32_t resource;

		vmfs_addr_res(v, pb, &cluster, &resource);
		r = vmfs_res_read(v, (int)t, cluster, resource, b, v->aw,
				  (uint32_t)(q * v->aw), depth, what);
		if (r < 0)
			return r;
	} else if (t == ADDR_FB && v->version == 6) {
		/* A pointer block in a small file block (its first 64 KiB;
		 * unconfirmed). */
		const struct vmfs_res *sfb = &v->res[ADDR_FB];
		uint64_t cl = (pb >> 15) & 0x7fffffff, blk;
		uint32_t res = (uint32_t)(pb >> 51) & 0x1fff;

		blk = cl * v->sfb_rpc + res;
		if (res >= v->sfb_rpc || (sfb->open && blk >= sfb->nres) ||
		    span_end(blk, v->fbs_shift) > v->size) {
			vmdkfs_error("%s: %s: file block %llu is out of range",
				     v->name, what, (unsigned long long)blk);
			return -EINVAL;
		}
		if ((pb >> 7) & 0xff) {
			*out = 0; /* to be zeroed: no pointers yet */
			return 0;
		}
		r = vmfs_meta_read(v, b, 8, (blk << v->fbs_shift) + q * 8);
		if (r < 0)
			return r;
	} else {
		vmdkfs_error("%s: %s: address type %u is not a pointer block's",
			     v->name, what, t);
		return -EINVAL;
	}
	*out = v->aw == 8 ? le64(b) : le32(b);
	return 0;
}

/* What data address A (FD's, at file offset OFF, its slot ending at END)
 * maps to. */
static int data_run(struct vmfs *v, struct vmfs_fd *fd, uint64_t off,
		    uint64_t a, uint64_t end, int depth, struct vmfs_run *run)
{
	uint64_t limit = (end < fd->length ? end : fd->length) - off;
	uint64_t blk, nblk, unit, in;
	unsigned t = a & 7, ush;
	bool tbz;
	int r;

	switch (t) {
	case ADDR_NONE:
		run->kind = RUN_HOLE;
		run->len = limit;
		return 0;
	case ADDR_FB:
		if (v->version == 6) {
			uint32_t res = (uint32_t)(a >> 51) & 0x1fff;

			if (res >= v->sfb_rpc)
				goto range;
			blk = ((a >> 15) & 0x7fffffff) * v->sfb_rpc + res;
			tbz = (a >> 7) & 0xff;
		} else {
			blk = (a >> 6) & 0x3ffffff;
			tbz = (a >> 5) & 1;
		}
		/* Before .fbb.sf is open (reading the resource files), the
		 * volume's end is the bound. */
		nblk = v->res[ADDR_FB].open ? v->res[ADDR_FB].nres : UINT64_MAX;
		ush = v->fbs_shift;
		if (fd->block_size != v->fbs) {
			vmdkfs_error(
			    "%s: %s: file block address %#llx in a file "
			    "of %llu-byte blocks",
			    v->name, fd->label, (unsigned long long)a,
			    (unsigned long long)fd->block_size);
			return -EINVAL;
		}
		break;
	case ADDR_LFB:
		if (v->version != 6)
			goto type;
		blk = (a >> 15) & 0x7fffffff;
		tbz = (a >> 7) & 0xff;
		nblk =
		    v->res[ADDR_LFB].open ? v->res[ADDR_LFB].nres : UINT64_MAX;
		ush = v->lfb_shift;
		if (fd->shift > ush) {
			vmdkfs_error(
			    "%s: %s: large file block address %#llx in "
			    "a file of %llu-byte blocks",
			    v->name, fd->label, (unsigned long long)a,
			    (unsigned long long)fd->block_size);
			return -EINVAL;
		}
		break;
	case ADDR_SB: {
		struct vmfs_res *sb = &v->res[ADDR_SB];
		struct vmfs_run sub;
		uint64_t cluster, roff;
		uint32_t resource;
		char what[160];

		if (fd->block_size != v->sbs) {
			vmdkfs_error(
			    "%s: %s: sub-block address %#llx in a file "
			    "of %llu-byte blocks",
			    v->name, fd->label, (unsigned long long)a,
			    (unsigned long long)fd->block_size);
			return -EINVAL;
		}
		in = off & (v->sbs - 1);
		vmfs_addr_res(v, a, &cluster, &resource);
		snprintf(what, sizeof(what), "%s: sub-block %#llx", fd->label,
			 (unsigned long long)a);
		r = vmfs_res_locate(v, ADDR_SB, cluster, resource, (uint32_t)in,
				    1, what, &roff);
		if (r < 0)
			return r;
		r = vmfs_fd_map(v, sb->fd, roff, depth + 1, &sub);
		if (r < 0)
			return r;
		if (sub.kind == RUN_RESIDENT) {
			vmdkfs_error("%s: %s: resident data", v->name,
				     sb->name);
			return -EINVAL;
		}
		*run = sub;
		if (run->len > v->sbs - in)
			run->len = v->sbs - in;
		if (run->len > limit)
			run->len = limit;
		return 0;
	}
	default:
		goto type;
	}
	/* The block's start must lie inside the volume; a read past its end
	 * (a last, partial large block) fails in vmfs_vol_read(). */
	if (blk >= nblk ||
	    blk >= (v->size >> ush) + !!(v->size & ((1ULL << ush) - 1)))
		goto range;
	unit = 1ULL << ush;
	in = off & (unit - 1);
	run->kind = tbz ? RUN_ZERO : RUN_DATA;
	run->voff = (blk << ush) + in;
	run->len = unit - in < limit ? unit - in : limit;
	return 0;
range:
	vmdkfs_error("%s: %s: block address %#llx (at file offset %llu) lies "
		     "outside the volume",
		     v->name, fd->label, (unsigned long long)a,
		     (unsigned long long)off);
	return -EINVAL;
type:
	vmdkfs_error("%s: %s: address %#llx of type %u where a data block was "
		     "expected (at file offset %llu)",
		     v->name, fd->label, (unsigned long long)a, t,
		     (unsigned long long)off);
	return -EINVAL;
}

int vmfs_fd_map(struct vmfs *v, struct vmfs_fd *fd, uint64_t off, int depth,
		struct vmfs_run *run)
{
	uint64_t idx, a, p, q, mask = v->pb_entries - 1;
	unsigned sh = fd->shift, ps = v->pb_shift;
	int r;

	if (depth > MAX_DEPTH) {
		vmdkfs_error("%s: %s: pointer blocks nest too deep: a loop in "
			     "the resource files?",
			     v->name, fd->label);
		return -EINVAL;
	}
	if (off >= fd->length) {
		vmdkfs_error("%s: %s: offset %llu is past the end (%llu bytes)",
			     v->name, fd->label, (unsigned long long)off,
			     (unsigned long long)fd->length);
		return -EIO;
	}
	idx = off >> sh;
	switch (fd->zla) {
	case VMFS_ZLA_RESIDENT:
		run->kind = RUN_RESIDENT;
		run->voff = v->fd_res_off + off;
		run->len = fd->length - off;
		return 0;
	case VMFS_ZLA_FILE_BLOCK:
	case VMFS_ZLA_SUB_BLOCK:
		a = fd_addr(v, fd, idx);
		return data_run(v, fd, off, a, span_end(idx, sh), depth, run);
	case VMFS_ZLA_POINTER_BLOCK:
	case VMFS_ZLA_POINTER2_BLOCK:
		p = idx >> ps;
		a = fd_addr(v, fd, p);
		if (a == 0)
			return data_run(v, fd, off, 0, span_end(p, ps + sh),
					depth, run);
		r = pb_entry(v, fd, a, idx & mask, depth, &a);
		if (r < 0)
			return r;
		return data_run(v, fd, off, a, span_end(idx, sh), depth, run);
	default: /* double indirect */
		p = idx >> 2 * ps;
		q = idx >> ps;
		a = fd_addr(v, fd, p);
		if (a == 0)
			return data_run(v, fd, off, 0, span_end(p, 2 * ps + sh),
					depth, run);
		r = pb_entry(v, fd, a, q & mask, depth, &a);
		if (r < 0)
			return r;
		if (a == 0)
			return data_run(v, fd, off, 0, span_end(q, ps + sh),
					depth, run);
		r = pb_entry(v, fd, a, idx & mask, depth, &a);
		if (r < 0)
			return r;
		return data_run(v, fd, off, a, span_end(idx, sh), depth, run);
	}
}

int vmfs_fd_read(struct vmfs *v, struct vmfs_fd *fd, void *buf, size_t len,
		 uint64_t off, int depth, bool meta)
{
	uint8_t *p = buf;
	struct vmfs_run run;
	int r;

	if (off > fd->length || len > fd->length - off) {
		vmdkfs_error("%s: %s: read of %zu bytes at %llu: past the end "
			     "(%llu bytes)",
			     v->name, fd->label, len, (unsigned long long)off,
			     (unsigned long long)fd->length);
		return -EIO;
	}
	while (len > 0) {
		size_t n;

		r = vmfs_fd_map(v, fd, off, depth, &run);
		if (r < 0)
			return r;
		n = run.len < len ? (size_t)run.len : len;
		/* Data blocks that follow each other on the volume (a thick
		 * disk's, mostly): one read, not one a block. */
		while (run.kind == RUN_DATA && !meta && n < len) {
			struct vmfs_run next;

			r = vmfs_fd_map(v, fd, off + n, depth, &next);
			if (r < 0)
				return r;
			if (next.kind != RUN_DATA || next.voff != run.voff + n)
				break;
			n += next.len < len - n ? (size_t)next.len : len - n;
		}
		switch (run.kind) {
		case RUN_DATA:
			r = meta ? vmfs_meta_read(v, p, n, run.voff)
				 : vmfs_vol_read(v, p, n, run.voff);
			if (r < 0) {
				vmdkfs_error("%s (reading %s at %llu)",
					     vmdkfs_errmsg(), fd->label,
					     (unsigned long long)off);
				return r;
			}
			break;
		case RUN_RESIDENT:
			memcpy(p, fd->raw + run.voff, n);
			break;
		default:
			memset(p, 0, n);
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

void vmfs_fd_stat(const struct vmfs_fd *fd, struct vmfs_stat *st)
{
	memset(st, 0, sizeof(*st));
	st->addr = fd->addr;
	st->kind = vmfs_kind_of(fd->type, fd->mode);
	st->type = fd->type;
	st->mode = fd->mode & 07777;
	st->nlink = fd->nlink;
	st->uid = fd->uid;
	st->gid = fd->gid;
	st->size = fd->length;
	st->mtime = fd->mtime;
	st->ctime = fd->ctime;
	st->atime = fd->atime;
	st->block_size = fd->block_size;
	st->blocks = fd->nblocks;
	st->zla = fd->zla;
}

/* ---- Files ---- */

static int file_wrap(struct vmfs *v, struct vmfs_fd *fd, struct vmfs_file **out)
{
	int kind = vmfs_kind_of(fd->type, fd->mode);
	struct vmfs_file *f;

	if (kind == VMFS_DIR) {
		vmdkfs_error("%s: %s: is a directory", v->name, fd->label);
		vmfs_fd_free(fd);
		return -EISDIR;
	}
	if (kind == VMFS_RDM) {
		vmdkfs_error("%s: %s: a raw device mapping: its data is on "
			     "another LUN, not in this volume",
			     v->name, fd->label);
		vmfs_fd_free(fd);
		return -ENOTSUP;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		vmfs_fd_free(fd);
		return -ENOMEM;
	}
	f->v = v;
	f->fd = fd;
	*out = f;
	return 0;
}

int vmfs_file_open(struct vmfs *v, const char *path, struct vmfs_file **out)
{
	struct vmfs_fd *fd;
	int r;

	r = vmfs_resolve(v, path, true, &fd);
	if (r < 0)
		return r;
	return file_wrap(v, fd, out);
}

int vmfs_file_open_addr(struct vmfs *v, uint32_t addr, struct vmfs_file **out)
{
	struct vmfs_fd *fd;
	int r;

	r = vmfs_fd_load(v, addr, NULL, &fd);
	if (r < 0)
		return r;
	return file_wrap(v, fd, out);
}

void vmfs_file_close(struct vmfs_file *f)
{
	if (!f)
		return;
	vmfs_fd_free(f->fd);
	free(f);
}

uint64_t vmfs_file_size(const struct vmfs_file *f)
{
	return f->fd->length;
}

void vmfs_file_stat(const struct vmfs_file *f, struct vmfs_stat *st)
{
	vmfs_fd_stat(f->fd, st);
}

int vmfs_file_pread(struct vmfs_file *f, void *buf, size_t len, uint64_t off)
{
	return vmfs_fd_read(f->v, f->fd, buf, len, off, 0, false);
}

/* Is FD's data in file blocks (not resident, not in sub-blocks)? */
static bool in_file_blocks(const struct vmfs_fd *fd)
{
	return fd->zla == VMFS_ZLA_FILE_BLOCK ||
	       fd->zla == VMFS_ZLA_POINTER_BLOCK ||
	       fd->zla == VMFS_ZLA_POINTER2_BLOCK ||
	       fd->zla == VMFS_ZLA_DOUBLE_INDIRECT;
}

/* Check that [OFF, OFF+LEN) is all in data blocks; WHY if not. */
static int check_in_place(struct vmfs_file *f, uint64_t off, uint64_t len,
			  char *why, size_t size)
{
	struct vmfs_run run;
	uint64_t end = off + len;
	int r;

	if (!in_file_blocks(f->fd)) {
		snprintf(why, size,
			 "%s: %s: its data is %s, not in file blocks",
			 f->v->name, f->fd->label,
			 f->fd->zla == VMFS_ZLA_RESIDENT ? "in its descriptor"
							 : "in sub-blocks");
		return -EROFS;
	}
	while (off < end) {
		r = vmfs_fd_map(f->v, f->fd, off, 0, &run);
		if (r < 0) {
			snprintf(why, size, "%s", vmdkfs_errmsg());
			return r;
		}
		if (run.kind != RUN_DATA) {
			snprintf(why, size,
				 "%s: %s: %s at offset %llu (writing it would "
				 "need VMFS to allocate or zero the block)",
				 f->v->name, f->fd->label,
				 run.kind == RUN_ZERO ? "a block still to be "
							"zeroed (lazy-zeroed)"
						      : "no block (thin)",
				 (unsigned long long)off);
			return -EROFS;
		}
		off += run.len;
	}
	return 0;
}

bool vmfs_file_in_place(struct vmfs_file *f, char *why, size_t size)
{
	if (f->fd->length == 0)
		return true;
	return check_in_place(f, 0, f->fd->length, why, size) == 0;
}

int vmfs_file_pwrite(struct vmfs_file *f, const void *buf, size_t len,
		     uint64_t off)
{
	const uint8_t *p = buf;
	struct vmfs_run run;
	char why[512];
	int r;

	if (off > f->fd->length || len > f->fd->length - off) {
		vmdkfs_error("%s: %s: write of %zu bytes at %llu: past the end "
			     "(%llu bytes)",
			     f->v->name, f->fd->label, len,
			     (unsigned long long)off,
			     (unsigned long long)f->fd->length);
		return -EIO;
	}
	r = check_in_place(f, off, len, why, sizeof(why));
	if (r < 0) {
		vmdkfs_error("%s", why);
		return r;
	}
	while (len > 0) {
		size_t n;

		r = vmfs_fd_map(f->v, f->fd, off, 0, &run);
		if (r < 0)
			return r;
		n = run.len < len ? (size_t)run.len : len;
		r = vmfs_vol_write(f->v, p, n, run.voff);
		if (r < 0)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int map_kind(int run_kind)
{
	switch (run_kind) {
	case RUN_HOLE:
		return VMFS_MAP_HOLE;
	case RUN_ZERO:
		return VMFS_MAP_ZERO;
	}
	return VMFS_MAP_DATA;
}

int vmfs_file_map(struct vmfs_file *f, uint64_t off, uint64_t len, int *kind,
		  uint64_t *run)
{
	struct vmfs_run r;
	uint64_t done = 0;
	int k = -1, e;

	if (off >= f->fd->length || len == 0) {
		vmdkfs_error("%s: %s: map of %llu bytes at %llu: outside the "
			     "file (%llu bytes)",
			     f->v->name, f->fd->label, (unsigned long long)len,
			     (unsigned long long)off,
			     (unsigned long long)f->fd->length);
		return -EINVAL;
	}
	if (len > f->fd->length - off)
		len = f->fd->length - off;
	while (done < len) {
		e = vmfs_fd_map(f->v, f->fd, off + done, 0, &r);
		if (e < 0)
			return e;
		if (k >= 0 && map_kind(r.kind) != k)
			break;
		k = map_kind(r.kind);
		done += r.len < len - done ? r.len : len - done;
	}
	*kind = k;
	*run = done;
	return 0;
}

uint64_t vmfs_file_allocated(const struct vmfs_file *f)
{
	unsigned __int128 b =
	    (unsigned __int128)f->fd->nblocks * f->fd->block_size;

	return b > UINT64_MAX ? UINT64_MAX : (uint64_t)b;
}

/* ---- As struct source ---- */

struct vmfs_source {
	struct source s;
	struct vmfs_file *f;
	uint64_t allocated; /* bytes of data blocks; UINT64_MAX: not yet */
};

static int vs_pread(struct source *s, void *buf, size_t len, uint64_t off)
{
	return vmfs_file_pread(((struct vmfs_source *)s)->f, buf, len, off);
}

static void vs_close(struct source *s)
{
	vmfs_file_close(((struct vmfs_source *)s)->f);
	free(s->name);
	free(s);
}

static int vs_pwrite(struct source *s, const void *buf, size_t len,
		     uint64_t off)
{
	if (!s->writable)
		return source_ro_pwrite(s, buf, len, off);
	return vmfs_file_pwrite(((struct vmfs_source *)s)->f, buf, len, off);
}

/* Data blocks are written through the devices: flush them all. */
static int vs_flush(struct source *s)
{
	struct vmfs *v = ((struct vmfs_source *)s)->f->v;
	unsigned i;
	int r;

	if (!s->writable)
		return 0;
	for (i = 0; i < v->ndev; i++) {
		r = v->dev[i].src->ops->flush(v->dev[i].src);
		if (r < 0)
			return r;
	}
	return 0;
}

static int vs_map(struct source *s, uint64_t off, uint64_t len, bool *data,
		  uint64_t *run)
{
	int kind, r;

	r = vmfs_file_map(((struct vmfs_source *)s)->f, off, len, &kind, run);
	*data = kind == VMFS_MAP_DATA;
	return r;
}

/* The file's data blocks: to-be-zeroed blocks (allocated, read as zeros)
 * do not count, as holes do not.  Walked once. */
static uint64_t vs_allocated(struct source *s)
{
	struct vmfs_source *vs = (struct vmfs_source *)s;
	uint64_t off = 0, sum = 0, run;
	bool data;

	if (vs->allocated != UINT64_MAX)
		return vs->allocated;
	while (off < s->size) {
		if (vs_map(s, off, s->size - off, &data, &run) < 0) {
			/* damaged: say what the volume says */
			sum = vmfs_file_allocated(vs->f);
			break;
		}
		if (data)
			sum += run;
		off += run;
	}
	/* whole blocks, as the volume allocates them, and never more than
	 * the volume says (resident data takes no block) */
	if (vs->f->fd->block_size && sum % vs->f->fd->block_size)
		sum += vs->f->fd->block_size - sum % vs->f->fd->block_size;
	if (sum > vmfs_file_allocated(vs->f))
		sum = vmfs_file_allocated(vs->f);
	vs->allocated = sum;
	return sum;
}

static const struct source_ops vs_ops = {
    .pread = vs_pread,
    .pwrite = vs_pwrite,
    .flush = vs_flush,
    .close = vs_close,
    .allocated = vs_allocated,
    .map = vs_map,
};

int vmfs_file_source(struct vmfs *v, const char *path, struct source **out)
{
	struct vmfs_source *vs;
	struct vmfs_file *f;
	int r;

	r = vmfs_file_open(v, path, &f);
	if (r < 0)
		return r;
	vs = calloc(1, sizeof(*vs));
	if (!vs || asprintf(&vs->s.name, "%s:%s", v->name, path) < 0) {
		free(vs);
		vmfs_file_close(f);
		return -ENOMEM;
	}
	vs->s.ops = &vs_ops;
	vs->s.size = vmfs_file_size(f);
	vs->f = f;
	vs->allocated = UINT64_MAX;
	*out = &vs->s;
	return 0;
}

static int opener_open(void *opaque, const char *path, bool writable,
		       struct source **out)
{
	struct vmfs *v = opaque;

	if (writable) {
		vmdkfs_error("%s:%s: the VMFS volume is opened read-only",
			     v->name, path);
		return -EROFS;
	}
	return vmfs_file_source(v, path, out);
}

static int opener_open_rw(void *opaque, const char *path, bool writable,
			  struct source **out)
{
	struct vmfs *v = opaque;
	struct vmfs_source *vs;
	char why[512];
	unsigned i;
	int r;

	r = vmfs_file_source(v, path, out);
	if (r < 0 || !writable)
		return r;
	vs = (struct vmfs_source *)*out;
	for (i = 0; i < v->ndev; i++)
		if (!v->dev[i].src->writable) {
			vmdkfs_error("%s:%s: the volume's devices are opened "
				     "read-only",
				     v->name, path);
			r = -EROFS;
		}
	if (r == 0 && !vmfs_file_in_place(vs->f, why, sizeof(why))) {
		vmdkfs_error("%s", why);
		r = -EROFS;
	}
	if (r < 0) {
		source_close(*out);
		*out = NULL;
		return r;
	}
	(*out)->writable = true;
	return 0;
}

void vmfs_opener_init(struct vmfs *v, struct source_opener *op)
{
	op->open = opener_open;
	op->opaque = v;
}

void vmfs_opener_init_rw(struct vmfs *v, struct source_opener *op)
{
	op->open = opener_open_rw;
	op->opaque = v;
}

/* A VMFS volume: the FS descriptor, the resource system files, the
 * metadata cache.
 *
 * FS descriptor, at 2 MiB into the logical volume (confirmed: 0x1300000 of
 * both images, their LVM data offset being 0x1100000):
 *   0x00 u32 magic 0x2FABF15E (0x2FABF15F: VMFS-L, refused)
 *   0x04 u32 major (14 VMFS5, 24 VMFS6)  0x08 u8 minor (81, 82)
 *   0x09 16  UUID  0x19 u32 config (bit 2: dense sub-blocks; 0x6 on both)
 *   0x1d label[128]  0xa1 u64 file block size (1 MiB on both)
 *   0xd1 u32 .fdc.sf cluster group offset (0x10000)
 *   0xd5 u32 .fdc.sf clusters per group (64 / 8)
 *   0xd9 u32 sub-block size (8 KiB / 64 KiB)
 *   0xe1 u64 .pb2.sf descriptor's volume offset (0x423000 / 0x72c000)
 *   0xe9 u32 .pb2.sf descriptor address (0x1800004)
 *   0x134 u32 metadata alignment (0 / 0x1000)
 *   0x138 u16 small-to-large file block shift (0 / 9: 512 MiB blocks)
 * (the notes' 0x13E "pointer block shift" reads 16 on VMFS6 and is not
 * used: a VMFS6 pointer block has 8192 entries, as its 64 KiB resources in
 * .pb2.sf say.)
 *
 * System file descriptors sit at fixed places in .fdc.sf's first cluster
 * group, found from the FS descriptor (confirmed: the formula gives the
 * recorded .pb2.sf descriptor offset on both, and the root directory
 * there): VMFS5 at ceil-to-block(block + 4 MiB - 1) + cluster group offset
 * + 1024 x clusters per group + 2048 x n; VMFS6 at ((alignment << 10) + 4
 * MiB - 1 rounded down to 1 MiB) + cluster group offset + 2 x alignment x
 * (clusters per group + n); n = the descriptor's resource number: 0 root,
 * 1 .fbb.sf, 2 .fdc.sf, 3 .pbc.sf, 4 .sbc.sf, 5 .vh.sf, 6 .pb2.sf.
 *
 * A resource file starts with its metadata (confirmed, all twelve headers
 * of the two volumes): 0x00 resources per cluster, 0x04 clusters per
 * group, 0x08 offset of group 0, 0x0c resource size, 0x10 group size
 * (= clusters x (cluster header + resources per cluster x size)), 0x14
 * resource count low, 0x18 groups, 0x1c count high, 0x20 signature
 * ("rfmd" on VMFS6), 0x28 flags, 0x34 child metadata offset (VMFS6
 * .fbb.sf: large file blocks at 0, small ones at 0x1000).  Resource (C, R)
 * lies at group offset + (C / cpg) x group size + cpg x cluster header
 * (1024; VMFS6 2 x alignment) + (C % cpg) x rpc x size + R x size.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "internal.h"

#define RES_HEADER 0x58u
#define RFMD_SIGNATURE 0x72666d64u

int vmfs_meta_read(struct vmfs *v, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf, page[META_PAGE];
	int r;

	if (off > v->size || len > v->size - off)
		return vmfs_vol_read(v, buf, len, off); /* the message */
	while (len > 0) {
		uint64_t pg = off / META_PAGE;
		size_t in = (size_t)(off % META_PAGE), n = META_PAGE - in;
		uint64_t gen;

		if (n > len)
			n = len;
		if ((pg + 1) * META_PAGE > v->size) {
			r = vmfs_vol_read(v, p, n, off);
			if (r < 0)
				return r;
		} else if (!lru_get(v->cache, v, pg, in, p, n, &gen)) {
			r = vmfs_vol_read(v, page, META_PAGE, pg * META_PAGE);
			if (r < 0)
				return r;
			lru_put(v->cache, v, pg, page, &gen);
			memcpy(p, page + in, n);
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

void vmfs_addr_res(const struct vmfs *v, uint64_t a, uint64_t *cluster,
		   uint32_t *resource)
{
	switch (a & 7) {
	case ADDR_FD:
		/* Both versions (confirmed: 0x3c00004 is cluster 0 resource
		 * 15 of .fdc.sf, file5's descriptor on VMFS6). */
		*cluster = (a >> 6) & 0xffff;
		*resource = (uint32_t)(a >> 22) & 0x3ff;
		return;
	case ADDR_SB:
		if (v->version == 6) {
			/* Confirmed: 0x100000000000002 is resource 1. */
			*cluster = (a >> 6) & 0xfffffffffULL;
			*resource = (uint32_t)(a >> 56) & 0xff;
		} else {
			/* Confirmed: 0x10000102 is cluster 4 resource 1.  With
			 * dense sub-blocks (config bit 2) bits 3-4 are the
			 * resource's bits 4-5 (unconfirmed: zero here). */
			*cluster = (a >> 6) & 0x3fffff;
			*resource = (uint32_t)(a >> 28) & 0xf;
			if (v->config & 4)
				*resource |= (uint32_t)(a & 0x18) << 1;
		}
		return;
	default: /* PB, PB2 */
		if (v->version == 6) {
			/* Confirmed: .sbc.sf's 0x5 is .pb2.sf's (0, 0). */
			*cluster = (a >> 6) & 0xfffffffffULL;
			*resource = (uint32_t)(a >> 56) & 0xff;
		} else {
			*cluster = (a >> 6) & 0x3fffff;
			*resource = (uint32_t)(a >> 28) & 0xf;
		}
		return;
	}
}

int vmfs_res_locate(struct vmfs *v, int type, uint64_t cluster,
		    uint32_t resource, uint32_t pos, size_t len,
		    const char *what, uint64_t *off)
{
	struct vmfs_res *rs = &v->res[type];
	uint64_t hdr = v->version == 6 ? 2ULL * v->md : 1024, o;

	if (!rs->open) {
		if (v->opening == type)
			vmdkfs_error(
			    "%s: %s: needs %s itself, which it maps (a "
			    "loop)",
			    v->name, what, rs->name);
		else if (v->opening)
			vmdkfs_error("%s: %s: needs a resource file (type %d) "
				     "that is not open yet",
				     v->name, what, type);
		else
			vmdkfs_error("%s: %s: the volume has no resource file "
				     "for address type %d",
				     v->name, what, type);
		return -EINVAL;
	}
	if (resource >= rs->rpc || cluster >= (uint64_t)rs->ncg * rs->cpg) {
		vmdkfs_error("%s: %s: cluster %llu resource %u is out of range "
			     "of %s (%llu clusters of %u resources)",
			     v->name, what, (unsigned long long)cluster,
			     resource, rs->name,
			     (unsigned long long)rs->ncg * rs->cpg, rs->rpc);
		return -EINVAL;
	}
	if (pos > rs->rsize || len > rs->rsize - pos) {
		vmdkfs_error("%s: %s: %zu bytes at %u of a %u-byte resource of "
			     "%s",
			     v->name, what, len, pos, rs->rsize, rs->name);
		return -EINVAL;
	}
	o = rs->cg_offset + cluster / rs->cpg * rs->cg_size + rs->cpg * hdr +
	    cluster % rs->cpg * rs->rpc * rs->rsize +
	    (uint64_t)resource * rs->rsize + pos;
	if (o > rs->fd->length || len > rs->fd->length - o) {
		vmdkfs_error("%s: %s: cluster %llu resource %u lies past the "
			     "end of %s (%llu bytes)",
			     v->name, what, (unsigned long long)cluster,
			     resource, rs->name,
			     (unsigned long long)rs->fd->length);
		return -EINVAL;
	}
	*off = o;
	return 0;
}

int vmfs_res_read(struct vmfs *v, int type, uint64_t cluster, uint32_t resource,
		  void *buf, size_t len, uint32_t pos, int depth,
		  const char *what)
{
	uint64_t off;
	int r;

	r = vmfs_res_locate(v, type, cluster, resource, pos, len, what, &off);
	if (r < 0)
		return r;
	return vmfs_fd_read(v, v->res[type].fd, buf, len, off, depth + 1, true);
}

static int fs_descriptor(struct vmfs *v)
{
	uint8_t b[512];
	uint32_t magic, cpg;
	uint64_t fbs;
	int r, sh;

	r = vmfs_vol_read(v, b, sizeof(b), FS_DESC_OFFSET);
	if (r < 0) {
		vmdkfs_error("%s: FS descriptor: %s", v->name, vmdkfs_errmsg());
		return r;
	}
	magic = le32(b);
	v->major = le32(b + 4);
	v->minor = b[8];
	if (magic == FS_MAGIC_VMFSL) {
		vmdkfs_error("%s: FS descriptor: magic 0x2fabf15f is VMFS-L "
			     "(ESXi's own OS-data volume), which is not "
			     "supported",
			     v->name);
		return -EINVAL;
	}
	if (magic != FS_MAGIC) {
		vmdkfs_error("%s: FS descriptor: bad magic 0x%08x at volume "
			     "offset 0x200000 (want 0x2fabf15e): no VMFS "
			     "file system in this logical volume",
			     v->name, magic);
		return -EINVAL;
	}
	if (v->major == FS_MAJOR_VMFS5) {
		v->version = 5;
	} else if (v->major == FS_MAJOR_VMFS6) {
		v->version = 6;
	} else {
		vmdkfs_error("%s: FS descriptor: version %u.%u not supported "
			     "(14 is VMFS5, 24 VMFS6)",
			     v->name, v->major, v->minor);
		return -EINVAL;
	}
	vmfs_uuid_str(b + 9, v->uuid);
	v->config = le32(b + 0x19);
	memcpy(v->label, b + 0x1d, 128);
	v->label[128] = '\0';
	fbs = le64(b + 0xa1);
	sh = log2_exact(fbs);
	if (sh < 12 || sh > 26) {
		vmdkfs_error("%s: FS descriptor: file block size %llu is not a "
			     "power of two from 4 KiB to 64 MiB",
			     v->name, (unsigned long long)fbs);
		return -EINVAL;
	}
	v->fbs = fbs;
	v->fbs_shift = (unsigned)sh;
	v->fdc_cg_offset = le32(b + 0xd1);
	cpg = le32(b + 0xd5);
	v->sbs = le32(b + 0xd9);
	v->pb2_vol_addr = le64(b + 0xe1);
	v->pb2_fd_addr = le32(b + 0xe9);
	if (v->fdc_cg_offset > (16u << 20) || cpg == 0 || cpg > 65536) {
		vmdkfs_error("%s: FS descriptor: .fdc.sf cluster group offset "
			     "%u or %u clusters per group out of range",
			     v->name, v->fdc_cg_offset, cpg);
		return -EINVAL;
	}
	v->fdc_cpg = cpg;
	if (log2_exact(v->sbs) < 9 || v->sbs > fbs) {
		vmdkfs_error("%s: FS descriptor: sub-block size %u is not a "
			     "power of two from 512 to the block size",
			     v->name, v->sbs);
		return -EINVAL;
	}
	if (v->version == 5) {
		/* Confirmed: 2048-byte descriptors, metadata at 512, 256
		 * 32-bit addresses (or resident data) at 1024; 1024 pointers
		 * in a 4 KiB pointer block (.pbc.sf's resource size). */
		v->md = 512;
		v->fd_size = 2048;
		v->fd_meta = 512;
		v->fd_res_off = 1024;
		v->fd_res_size = 1024;
		v->fd_addr_off = 1024;
		v->fd_naddr = 256;
		v->aw = 4;
		v->pb_entries = 1024;
	} else {
		uint32_t md = le32(b + 0x134), lfb = le16(b + 0x138);

		if (log2_exact(md) < 12 || md > 0x10000) {
			vmdkfs_error("%s: FS descriptor: metadata alignment %u "
				     "is not a power of two from 4 KiB to 64 "
				     "KiB",
				     v->name, md);
			return -EINVAL;
		}
		if (lfb < 1 || v->fbs_shift + lfb > 40) {
			vmdkfs_error("%s: FS descriptor: large file block "
				     "shift %u out of range",
				     v->name, lfb);
			return -EINVAL;
		}
		/* Confirmed (alignment 4 KiB): descriptors of 2 x alignment,
		 * lock block first, metadata at the alignment, resident data
		 * right after the 512 bytes of metadata, 320 64-bit addresses
		 * ending the descriptor.  Larger alignments (md / 16 addresses
		 * in the last md / 2 bytes) are unconfirmed.  Pointer blocks:
		 * 8192 64-bit entries (.pb2.sf's 64 KiB resources). */
		v->md = md;
		v->lfb_shift = v->fbs_shift + lfb;
		/* Small file blocks per cluster: what .fbb.sf says (checked
		 * when it is open), needed to read the resource files before
		 * (confirmed: 512 = 512 MiB / 1 MiB). */
		v->sfb_rpc = (uint32_t)((0x20000000 >> v->fbs_shift) < 0x2000
					    ? 0x20000000 >> v->fbs_shift
					    : 0x2000);
		v->fd_size = 2 * md;
		v->fd_meta = md;
		v->fd_res_off = md + 512;
		v->fd_res_size = md - 512;
		v->fd_naddr = md <= 0x1000 ? 320 : md >> 4;
		v->fd_addr_off = v->fd_size - v->fd_naddr * 8;
		v->aw = 8;
		v->pb_entries = 8192;
	}
	v->pb_shift = (unsigned)log2_exact(v->pb_entries);
	return 0;
}

/* Volume offset of system file descriptor N (cluster 0 of .fdc.sf). */
static uint64_t sfd_offset(const struct vmfs *v, unsigned n)
{
	uint64_t cg;

	if (v->version == 6) {
		cg = ((((uint64_t)v->md << 10) + 0x3fffff) & ~0xfffffULL) +
		     v->fdc_cg_offset;
		return cg + 2ULL * v->md * (v->fdc_cpg + n);
	}
	/* Without dense sub-blocks (older VMFS5), .pb2.sf's descriptor is
	 * wherever the FS descriptor says (unconfirmed: dense here). */
	if (!(v->config & 4) && ((uint32_t)n << 22 | ADDR_FD) == v->pb2_fd_addr)
		return v->pb2_vol_addr;
	cg = v->fbs * ((v->fbs + 0x3fffff) / v->fbs) + v->fdc_cg_offset;
	return cg + 1024ULL * v->fdc_cpg + 2048ULL * n;
}

static const char *const sf_names[] = {"root directory", ".fbb.sf", ".fdc.sf",
				       ".pbc.sf",	 ".sbc.sf", ".vh.sf",
				       ".pb2.sf"};

static int load_sfd(struct vmfs *v, unsigned n, struct vmfs_fd **out)
{
	uint32_t addr = (uint32_t)n << 22 | ADDR_FD;
	uint64_t off = sfd_offset(v, n);
	struct vmfs_fd *fd;
	uint8_t *raw;
	int r;

	raw = malloc(v->fd_size);
	if (!raw)
		return -ENOMEM;
	r = vmfs_meta_read(v, raw, v->fd_size, off);
	if (r < 0) {
		vmdkfs_error("%s: %s: descriptor (at volume offset %#llx): %s",
			     v->name, sf_names[n], (unsigned long long)off,
			     vmdkfs_errmsg());
		free(raw);
		return r;
	}
	r = vmfs_fd_parse(v, addr, raw, sf_names[n], &fd);
	if (r < 0)
		return r;
	if (fd->type != VMFS_FD_SYSFILE || fd->block_size != v->fbs) {
		vmdkfs_error("%s: %s: descriptor %#x at volume offset %#llx is "
			     "not a system file of %llu-byte blocks (type %u, "
			     "block size %llu)",
			     v->name, sf_names[n], addr,
			     (unsigned long long)off,
			     (unsigned long long)v->fbs, fd->type,
			     (unsigned long long)fd->block_size);
		vmfs_fd_free(fd);
		return -EINVAL;
	}
	*out = fd;
	return 0;
}

/* Read the resource metadata at OFF of FD into RS. */
static int res_header(struct vmfs *v, struct vmfs_res *rs, struct vmfs_fd *fd,
		      uint64_t off, int type)
{
	uint8_t b[RES_HEADER];
	uint64_t hdr = v->version == 6 ? 2ULL * v->md : 1024, need;
	int r;

	if (off > fd->length || RES_HEADER > fd->length - off) {
		vmdkfs_error("%s: %s: %llu bytes, too short for its resource "
			     "metadata at %llu",
			     v->name, rs->name, (unsigned long long)fd->length,
			     (unsigned long long)off);
		return -EINVAL;
	}
	r = vmfs_fd_read(v, fd, b, sizeof(b), off, 0, true);
	if (r < 0)
		return r;
	rs->rpc = le32(b);
	rs->cpg = le32(b + 4);
	rs->cg_offset = le32(b + 8);
	rs->rsize = le32(b + 0xc);
	rs->cg_size = le32(b + 0x10);
	rs->nres = le32(b + 0x14) | (uint64_t)le32(b + 0x1c) << 32;
	rs->ncg = le32(b + 0x18);
	rs->flags = le32(b + 0x28);
	if (v->version == 6 && le32(b + 0x20) != RFMD_SIGNATURE) {
		vmdkfs_error("%s: %s: resource metadata signature 0x%08x (want "
			     "0x72666d64, \"rfmd\")",
			     v->name, rs->name, le32(b + 0x20));
		return -EINVAL;
	}
	if (rs->rpc > 65536 || rs->cpg == 0 || rs->cpg > 65536 ||
	    rs->rsize > (16u << 20) || rs->ncg > (1u << 24)) {
		vmdkfs_error("%s: %s: resource metadata out of range (%u "
			     "resources of %u bytes per cluster, %u clusters "
			     "per group, %u groups)",
			     v->name, rs->name, rs->rpc, rs->rsize, rs->cpg,
			     rs->ncg);
		return -EINVAL;
	}
	need = rs->cpg * (hdr + (uint64_t)rs->rpc * rs->rsize);
	if (rs->cg_size < need) {
		vmdkfs_error("%s: %s: cluster groups of %u bytes cannot hold "
			     "their %u clusters (%llu bytes)",
			     v->name, rs->name, rs->cg_size, rs->cpg,
			     (unsigned long long)need);
		return -EINVAL;
	}
	if ((type == ADDR_FD && rs->rsize != v->fd_size) ||
	    (type == ADDR_SB && rs->rsize != v->sbs) ||
	    ((type == ADDR_PB || type == ADDR_PB2) && rs->rpc &&
	     rs->rsize < v->pb_entries * v->aw) ||
	    ((type == ADDR_FB || type == ADDR_LFB) &&
	     (v->version == 6 ? rs->rpc == 0 : false))) {
		vmdkfs_error(
		    "%s: %s: resource size %u (or %u per cluster) does "
		    "not fit its use",
		    v->name, rs->name, rs->rsize, rs->rpc);
		return -EINVAL;
	}
	rs->fd = fd;
	rs->open = true;
	return 0;
}

static int open_res(struct vmfs *v, int type, unsigned n)
{
	struct vmfs_res *rs = &v->res[type];
	struct vmfs_fd *fd;
	int r;

	rs->name = sf_names[n];
	v->opening = type;
	r = load_sfd(v, n, &fd);
	if (r < 0)
		return r;
	r = res_header(v, rs, fd, 0, type);
	if (r < 0) {
		vmfs_fd_free(fd);
		return r;
	}
	return 0;
}

static int open_resources(struct vmfs *v)
{
	int r;

	/* Pointer-block files first: the others may need them (VMFS6's
	 * .sbc.sf is mapped through .pb2.sf, confirmed). */
	if (v->pb2_vol_addr) {
		r = open_res(v, ADDR_PB2, 6);
		if (r < 0)
			return r;
	}
	r = open_res(v, ADDR_PB, 3);
	if (r < 0)
		return r;
	if (v->version == 6) {
		/* .fbb.sf: large file blocks, and small ones as its child
		 * (confirmed: 16 x 512 MiB and 512 x 1 MiB per cluster). */
		struct vmfs_res *lfb = &v->res[ADDR_LFB];
		uint8_t b[4];

		r = open_res(v, ADDR_LFB, 1);
		if (r < 0)
			return r;
		r = vmfs_fd_read(v, lfb->fd, b, 4, 0x34, 0, true);
		if (r < 0)
			return r;
		v->res[ADDR_FB].name = lfb->name;
		r = res_header(v, &v->res[ADDR_FB], lfb->fd, le32(b), ADDR_FB);
		if (r < 0)
			return r;
		if (v->res[ADDR_FB].rpc != v->sfb_rpc) {
			vmdkfs_error("%s: .fbb.sf: %u small file blocks per "
				     "cluster (want %u for %llu-byte blocks)",
				     v->name, v->res[ADDR_FB].rpc, v->sfb_rpc,
				     (unsigned long long)v->fbs);
			return -EINVAL;
		}
	} else {
		r = open_res(v, ADDR_FB, 1);
		if (r < 0)
			return r;
	}
	r = open_res(v, ADDR_FD, 2);
	if (r < 0)
		return r;
	r = open_res(v, ADDR_SB, 4);
	v->opening = 0;
	return r;
}

static void free_all(struct vmfs *v)
{
	int t;

	for (t = 0; t < 8; t++)
		if (v->res[t].open && !(t == ADDR_FB && v->version == 6))
			vmfs_fd_free(v->res[t].fd);
	lru_free(v->cache);
	free(v->ext);
	free(v->name);
	free(v);
}

int vmfs_open(struct source *const *devs, size_t ndevs,
	      const struct vmfs_options *o, struct vmfs **out)
{
	size_t cache = o && o->cache_bytes ? o->cache_bytes : DEFAULT_CACHE;
	struct vmfs_fd *root = NULL;
	struct vmfs *v;
	unsigned i;
	int r;

	if (ndevs == 0 || ndevs > VMFS_MAX_DEVICES) {
		vmdkfs_error("VMFS: %zu devices given (1 to %u)", ndevs,
			     VMFS_MAX_DEVICES);
		return -EINVAL;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->ndev = (unsigned)ndevs;
	for (i = 0; i < v->ndev; i++)
		v->dev[i].src = devs[i];
	v->name = strdup(devs[0]->name ? devs[0]->name : "VMFS");
	if (!v->name || lru_new(cache / META_PAGE < 16 ? 16 : cache / META_PAGE,
				META_PAGE, &v->cache) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	r = vmfs_lvm_open(v);
	if (r < 0)
		goto fail;
	r = fs_descriptor(v);
	if (r < 0)
		goto fail;
	r = open_resources(v);
	if (r < 0)
		goto fail;
	/* The root directory, through .fdc.sf like any other file. */
	r = vmfs_fd_load(v, VMFS_ROOT_ADDR, "/", &root);
	if (r < 0)
		goto fail;
	if (root->type != VMFS_FD_DIRECTORY) {
		vmdkfs_error(
		    "%s: root directory: descriptor 0x4 is of type %u, "
		    "not a directory",
		    v->name, root->type);
		vmfs_fd_free(root);
		r = -EINVAL;
		goto fail;
	}
	vmfs_fd_free(root);
	*out = v;
	return 0;
fail:
	free_all(v);
	return r;
}

int vmfs_open_paths(const char *const *paths, size_t n,
		    const struct vmfs_options *o, struct vmfs **out)
{
	struct source *s[VMFS_MAX_DEVICES];
	size_t i, k;
	int r;

	if (n == 0 || n > VMFS_MAX_DEVICES) {
		vmdkfs_error("VMFS: %zu devices given (1 to %u)", n,
			     VMFS_MAX_DEVICES);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		r = fd_source_open(paths[i], false, &s[i]);
		if (r < 0)
			goto fail;
	}
	r = vmfs_open(s, n, o, out);
	if (r == 0)
		return 0;
fail:
	for (k = 0; k < i; k++)
		source_close(s[k]);
	return r;
}

void vmfs_close(struct vmfs *v)
{
	unsigned i;

	if (!v)
		return;
	for (i = 0; i < v->ndev; i++)
		source_close(v->dev[i].src);
	free_all(v);
}

void vmfs_get_info(const struct vmfs *v, struct vmfs_info *info)
{
	memset(info, 0, sizeof(*info));
	info->version = v->version;
	info->major = v->major;
	info->minor = v->minor;
	memcpy(info->label, v->label, sizeof(info->label));
	memcpy(info->uuid, v->uuid, sizeof(info->uuid));
	memcpy(info->lvm_uuid, v->lvm_uuid, sizeof(info->lvm_uuid));
	info->size = v->size;
	info->block_size = v->fbs;
	info->large_block_size = v->lfb_shift ? 1ULL << v->lfb_shift : 0;
	info->sub_block_size = v->sbs;
	info->fd_size = v->fd_size;
	info->pb_size = v->pb_entries * v->aw;
	info->md_alignment = v->md;
	info->devices = v->ndev;
}

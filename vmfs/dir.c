/* Directories, path lookup, symlinks.
 *
 * VMFS5 directory (confirmed): an array of 140-byte entries: 0x00 u32
 * type, 0x04 u32 descriptor address (0: a free slot), 0x08 u32 generation,
 * 0x0c name[128], NUL-padded; "." and ".." are entries too.
 *
 * VMFS6 directory (confirmed, one allocation-map block per directory on
 * both volumes): a 64 KiB header block: 0x00 u32 version (0xf50001;
 * 0xfdc001 is accepted too), 0x04 u32 entries, 0x0c u32 allocation-map
 * blocks, 0x10 u32 their block numbers [128], "." at 0x3b8 and ".." at
 * 0x4d8; then blocks of the metadata alignment (4 KiB), each with a
 * 64-byte header: 0x02 u16 type (1 entries, 2 hash links, 3 allocation
 * map), 0x04 u16 slots, 0x08 a bitmap in which a clear bit is a used slot.
 * An allocation map holds a 4-bit entry per block (high nibble first),
 * type in the low 2 bits.  An entry block holds 288-byte entries: 0x00
 * u32 type, 0x04 u32 descriptor address, 0x18 name[256].  Lookups walk the
 * entries (the name hash table is not used).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "internal.h"

#define V5_ENTRY 140u
#define V5_CHUNK (V5_ENTRY * 32)
#define V6_HEADER_BLOCK 0x10000u
#define V6_BLOCK_HEADER 0x40u
#define V6_ENTRY 0x120u
#define V6_MAX_MAPS 128u

static int entry(struct vmfs *v, struct vmfs_fd *dir, const uint8_t *type,
		 const uint8_t *addr, const uint8_t *name, size_t name_max,
		 vmfs_dir_cb cb, void *opaque)
{
	struct vmfs_dirent e;
	size_t n;

	e.addr = le32(addr);
	if (e.addr == 0)
		return 0; /* a free slot */
	n = strnlen((const char *)name, name_max);
	if (n == 0) {
		vmdkfs_error("%s: directory %s: the entry for descriptor %#x "
			     "has no name",
			     v->name, dir->label, e.addr);
		return -EINVAL;
	}
	memcpy(e.name, name, n);
	e.name[n] = '\0';
	if (!strcmp(e.name, ".") || !strcmp(e.name, ".."))
		return 0;
	if (memchr(e.name, '/', n)) {
		vmdkfs_error("%s: directory %s: entry name \"%s\" holds a '/'",
			     v->name, dir->label, e.name);
		return -EINVAL;
	}
	e.type = le32(type);
	e.kind = vmfs_kind_of(e.type, 0);
	return cb(opaque, &e);
}

static int readdir5(struct vmfs *v, struct vmfs_fd *dir, vmfs_dir_cb cb,
		    void *opaque)
{
	uint8_t buf[V5_CHUNK];
	uint64_t off = 0;
	int r;

	if (dir->length % V5_ENTRY) {
		vmdkfs_error("%s: directory %s: length %llu is not a whole "
			     "number of %u-byte entries",
			     v->name, dir->label,
			     (unsigned long long)dir->length, V5_ENTRY);
		return -EINVAL;
	}
	while (off < dir->length) {
		uint64_t n = dir->length - off;
		struct vmfs_run run;
		size_t i;

		r = vmfs_fd_map(v, dir, off, 0, &run);
		if (r < 0)
			return r;
		if (run.kind == RUN_HOLE || run.kind == RUN_ZERO) {
			/* No entries there: skip to the entry holding the
			 * hole's end. */
			uint64_t end = off + run.len;

			end -= end % V5_ENTRY;
			if (end > off) {
				off = end;
				continue;
			}
		}
		if (n > sizeof(buf))
			n = sizeof(buf);
		r = vmfs_fd_read(v, dir, buf, (size_t)n, off, 0, true);
		if (r < 0)
			return r;
		for (i = 0; i < n; i += V5_ENTRY) {
			r = entry(v, dir, buf + i, buf + i + 4, buf + i + 12,
				  128, cb, opaque);
			if (r)
				return r;
		}
		off += n;
	}
	return 0;
}

static int dirent_block(struct vmfs *v, struct vmfs_fd *dir, uint64_t blk,
			uint8_t *b, vmfs_dir_cb cb, void *opaque)
{
	unsigned slots, max = (v->md - V6_BLOCK_HEADER) / V6_ENTRY, s;
	int r;

	r = vmfs_fd_read(v, dir, b, v->md, V6_HEADER_BLOCK + blk * v->md, 0,
			 true);
	if (r < 0)
		return r;
	slots = le16(b + 4);
	if (le16(b + 2) != 1 || slots > max || slots > 56 * 8) {
		vmdkfs_error("%s: directory %s: block %llu, an entry block by "
			     "the allocation map, has type %u and %u slots "
			     "(want type 1, at most %u)",
			     v->name, dir->label, (unsigned long long)blk,
			     le16(b + 2), slots, max);
		return -EINVAL;
	}
	for (s = 0; s < slots; s++) {
		const uint8_t *e = b + V6_BLOCK_HEADER + s * V6_ENTRY;

		if (b[8 + s / 8] >> (s % 8) & 1)
			continue; /* free */
		r = entry(v, dir, e, e + 4, e + 0x18, VMFS_NAME_MAX, cb,
			  opaque);
		if (r)
			return r;
	}
	return 0;
}

static int readdir6(struct vmfs *v, struct vmfs_fd *dir, vmfs_dir_cb cb,
		    void *opaque)
{
	uint8_t hdr[0x10 + 4 * V6_MAX_MAPS], *map = NULL, *blk = NULL;
	uint64_t nblocks, per_map = 2ULL * (v->md - V6_BLOCK_HEADER), j;
	uint32_t version, nmaps, m;
	int r;

	if (dir->length < V6_HEADER_BLOCK ||
	    (dir->length - V6_HEADER_BLOCK) % v->md) {
		vmdkfs_error("%s: directory %s: length %llu is not a 64 KiB "
			     "header and whole %u-byte blocks",
			     v->name, dir->label,
			     (unsigned long long)dir->length, v->md);
		return -EINVAL;
	}
	nblocks = (dir->length - V6_HEADER_BLOCK) / v->md;
	r = vmfs_fd_read(v, dir, hdr, sizeof(hdr), 0, 0, true);
	if (r < 0)
		return r;
	version = le32(hdr);
	nmaps = le32(hdr + 0xc);
	if (version != 0xf50001 && version != 0xfdc001) {
		vmdkfs_error("%s: directory %s: header version %#x (want "
			     "0xf50001)",
			     v->name, dir->label, version);
		return -EINVAL;
	}
	if (nmaps > V6_MAX_MAPS) {
		vmdkfs_error("%s: directory %s: %u allocation-map blocks (at "
			     "most %u)",
			     v->name, dir->label, nmaps, V6_MAX_MAPS);
		return -EINVAL;
	}
	map = malloc(v->md);
	blk = malloc(v->md);
	if (!map || !blk) {
		r = -ENOMEM;
		goto out;
	}
	for (m = 0; m < nmaps; m++) {
		uint32_t mb = le32(hdr + 0x10 + 4 * m);

		if (mb >= nblocks) {
			vmdkfs_error("%s: directory %s: allocation map %u is "
				     "block %u, past its %llu blocks",
				     v->name, dir->label, m, mb,
				     (unsigned long long)nblocks);
			r = -EINVAL;
			goto out;
		}
		r = vmfs_fd_read(v, dir, map, v->md,
				 V6_HEADER_BLOCK + (uint64_t)mb * v->md, 0,
				 true);
		if (r < 0)
			goto out;
		if (le16(map + 2) != 3) {
			vmdkfs_error("%s: directory %s: block %u, an "
				     "allocation map by the header, has type "
				     "%u (want 3)",
				     v->name, dir->label, mb, le16(map + 2));
			r = -EINVAL;
			goto out;
		}
		for (j = 0; j < per_map; j++) {
			uint64_t b = m * per_map + j;
			uint8_t x = map[V6_BLOCK_HEADER + j / 2];

			if (b >= nblocks)
				break;
			x = j % 2 ? x & 0xf : x >> 4;
			if ((x & 3) != 1)
				continue;
			r = dirent_block(v, dir, b, blk, cb, opaque);
			if (r)
				goto out;
		}
	}
	r = 0;
out:
	free(map);
	free(blk);
	return r;
}

static int readdir_fd(struct vmfs *v, struct vmfs_fd *dir, vmfs_dir_cb cb,
		      void *opaque)
{
	if (vmfs_kind_of(dir->type, dir->mode) != VMFS_DIR) {
		vmdkfs_error("%s: %s: not a directory", v->name, dir->label);
		return -ENOTDIR;
	}
	return v->version == 6 ? readdir6(v, dir, cb, opaque)
			       : readdir5(v, dir, cb, opaque);
}

int vmfs_readdir(struct vmfs *v, uint32_t addr, vmfs_dir_cb cb, void *opaque)
{
	struct vmfs_fd *dir;
	int r;

	r = vmfs_fd_load(v, addr, addr == VMFS_ROOT_ADDR ? "/" : NULL, &dir);
	if (r < 0)
		return r;
	r = readdir_fd(v, dir, cb, opaque);
	vmfs_fd_free(dir);
	return r;
}

struct find {
	const char *name;
	uint32_t addr;
};

static int find_cb(void *opaque, const struct vmfs_dirent *e)
{
	struct find *f = opaque;

	if (strcmp(e->name, f->name))
		return 0;
	f->addr = e->addr;
	return 1;
}

static int readlink_fd(struct vmfs *v, struct vmfs_fd *fd, char *buf,
		       size_t size)
{
	int r;

	if (vmfs_kind_of(fd->type, fd->mode) != VMFS_SYMLINK) {
		vmdkfs_error("%s: %s: not a symlink", v->name, fd->label);
		return -EINVAL;
	}
	if (fd->length == 0 || fd->length > 4096) {
		vmdkfs_error("%s: %s: symlink target of %llu bytes (1 to 4096)",
			     v->name, fd->label,
			     (unsigned long long)fd->length);
		return -EINVAL;
	}
	if (fd->length >= size) {
		vmdkfs_error(
		    "%s: %s: symlink target of %llu bytes does not fit",
		    v->name, fd->label, (unsigned long long)fd->length);
		return -ENAMETOOLONG;
	}
	r = vmfs_fd_read(v, fd, buf, (size_t)fd->length, 0, 0, true);
	if (r < 0)
		return r;
	buf[fd->length] = '\0';
	if (strlen(buf) != fd->length) {
		vmdkfs_error("%s: %s: symlink target holds a NUL byte", v->name,
			     fd->label);
		return -EINVAL;
	}
	return 0;
}

int vmfs_readlink_addr(struct vmfs *v, uint32_t addr, char *buf, size_t size)
{
	struct vmfs_fd *fd;
	int r;

	r = vmfs_fd_load(v, addr, NULL, &fd);
	if (r < 0)
		return r;
	r = readlink_fd(v, fd, buf, size);
	vmfs_fd_free(fd);
	return r;
}

/* TARGET as a path inside this volume: relative, or /vmfs/volumes/NAME/...
 * with NAME this volume's label or UUID; *ABS says which.  NULL if it
 * points elsewhere. */
static const char *inside(struct vmfs *v, const char *target, bool *abs)
{
	static const char pre[] = "/vmfs/volumes/";
	const char *n, *end;

	*abs = target[0] == '/';
	if (!*abs)
		return target;
	if (strncmp(target, pre, sizeof(pre) - 1))
		return NULL;
	n = target + sizeof(pre) - 1;
	end = strchrnul(n, '/');
	if (((size_t)(end - n) == strlen(v->label) &&
	     !strncmp(n, v->label, (size_t)(end - n))) ||
	    ((size_t)(end - n) == strlen(v->uuid) &&
	     !strncmp(n, v->uuid, (size_t)(end - n))))
		return end;
	return NULL;
}

#define MAX_PATH_DEPTH 256

/* The directories walked so far, as addresses and as a path for
 * messages. */
struct walk {
	uint32_t addr[MAX_PATH_DEPTH];
	size_t plen[MAX_PATH_DEPTH];
	unsigned depth;
	char path[MAX_PATH_DEPTH * (VMFS_NAME_MAX + 1) + 2];
};

static void walk_root(struct walk *w)
{
	w->depth = 1;
	w->addr[0] = VMFS_ROOT_ADDR;
	w->plen[0] = 1;
	strcpy(w->path, "/");
}

static void walk_push(struct walk *w, uint32_t addr, const char *name)
{
	size_t n = w->plen[w->depth - 1];

	if (n > 1)
		w->path[n++] = '/';
	strcpy(w->path + n, name);
	w->addr[w->depth] = addr;
	w->plen[w->depth++] = n + strlen(name);
}

static void walk_pop(struct walk *w)
{
	if (w->depth > 1)
		w->depth--;
	w->path[w->plen[w->depth - 1]] = '\0';
}

int vmfs_resolve(struct vmfs *v, const char *path, bool follow,
		 struct vmfs_fd **out)
{
	unsigned links = 0;
	struct vmfs_fd *fd = NULL;
	char *rest, *p, name[VMFS_NAME_MAX + 1];
	struct walk *w;
	int r;

	w = malloc(sizeof(*w));
	rest = strdup(path);
	if (!w || !rest) {
		free(w);
		free(rest);
		return -ENOMEM;
	}
	walk_root(w);
	p = rest;
	for (;;) {
		struct find f = {name, 0};
		size_t n;
		char *next, target[4097];
		const char *in;
		bool abs;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		next = strchrnul(p, '/');
		n = (size_t)(next - p);
		if (n > VMFS_NAME_MAX) {
			vmdkfs_error("%s: %s: a name is longer than %u bytes",
				     v->name, path, VMFS_NAME_MAX);
			r = -ENAMETOOLONG;
			goto out;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		p = next;
		if (!strcmp(name, "."))
			continue;
		if (!strcmp(name, "..")) {
			walk_pop(w);
			continue;
		}
		r = vmfs_fd_load(v, w->addr[w->depth - 1], w->path, &fd);
		if (r < 0)
			goto out;
		r = readdir_fd(v, fd, find_cb, &f);
		vmfs_fd_free(fd);
		fd = NULL;
		if (r < 0)
			goto out;
		if (!f.addr) {
			vmdkfs_error("%s: %s: no such file or directory "
				     "(no \"%s\" in %s)",
				     v->name, path, name, w->path);
			r = -ENOENT;
			goto out;
		}
		if (w->depth == MAX_PATH_DEPTH) {
			vmdkfs_error("%s: %s: more than %u levels", v->name,
				     path, MAX_PATH_DEPTH);
			r = -ENAMETOOLONG;
			goto out;
		}
		walk_push(w, f.addr, name);
		r = vmfs_fd_load(v, f.addr, w->path, &fd);
		if (r < 0)
			goto out;
		if (vmfs_kind_of(fd->type, fd->mode) != VMFS_SYMLINK ||
		    (!*p && !follow)) {
			vmfs_fd_free(fd);
			fd = NULL;
			continue;
		}
		/* A symlink to follow: go on from its target, relative to
		 * the directory holding it. */
		if (++links > VMFS_MAX_SYMLINKS) {
			vmdkfs_error("%s: %s: more than %u symlinks (a loop?)",
				     v->name, path, VMFS_MAX_SYMLINKS);
			r = -ELOOP;
			goto out;
		}
		r = readlink_fd(v, fd, target, sizeof(target));
		vmfs_fd_free(fd);
		fd = NULL;
		if (r < 0)
			goto out;
		walk_pop(w);
		in = inside(v, target, &abs);
		if (!in) {
			vmdkfs_error(
			    "%s: %s: symlink %s/%s points outside this "
			    "volume (to %s)",
			    v->name, path, w->path, name, target);
			r = -ENOENT;
			goto out;
		}
		if (abs)
			walk_root(w);
		{
			char *nr;

			if (asprintf(&nr, "%s/%s", in, p) < 0) {
				r = -ENOMEM;
				goto out;
			}
			free(rest);
			rest = p = nr;
		}
	}
	r = vmfs_fd_load(v, w->addr[w->depth - 1], w->path, &fd);
	if (r == 0)
		*out = fd;
out:
	free(rest);
	free(w);
	return r;
}

int vmfs_lookup(struct vmfs *v, const char *path, bool follow, uint32_t *addr)
{
	struct vmfs_fd *fd;
	int r;

	r = vmfs_resolve(v, path, follow, &fd);
	if (r < 0)
		return r;
	*addr = fd->addr;
	vmfs_fd_free(fd);
	return 0;
}

int vmfs_stat_addr(struct vmfs *v, uint32_t addr, struct vmfs_stat *st)
{
	struct vmfs_fd *fd;
	int r;

	r = vmfs_fd_load(v, addr, NULL, &fd);
	if (r < 0)
		return r;
	vmfs_fd_stat(fd, st);
	vmfs_fd_free(fd);
	return 0;
}

int vmfs_stat(struct vmfs *v, const char *path, struct vmfs_stat *st)
{
	struct vmfs_fd *fd;
	int r;

	r = vmfs_resolve(v, path, false, &fd);
	if (r < 0)
		return r;
	vmfs_fd_stat(fd, st);
	vmfs_fd_free(fd);
	return 0;
}

int vmfs_readlink(struct vmfs *v, const char *path, char *buf, size_t size)
{
	struct vmfs_fd *fd;
	int r;

	r = vmfs_resolve(v, path, false, &fd);
	if (r < 0)
		return r;
	r = readlink_fd(v, fd, buf, size);
	vmfs_fd_free(fd);
	return r;
}

/* Writing: flat extents in place, hosted sparse extents by allocating
 * grains at the end of the extent file.
 *
 * Crash safety (the process may be killed at any point): a new grain is
 * written in full at the end of the file before any table points at it; a
 * new grain table is written in full (with its entry) before the grain
 * directories point at it, the redundant directory first.  A kill in between
 * leaves at worst unreferenced space at the end of the file, never a table
 * entry pointing at unwritten data.  The header's unclean-shutdown byte is
 * set (and synced) before the first write and cleared at a clean close.
 *
 * On the first write the link's CID changes, as VMware and qemu do, so
 * children made from the old content no longer match it.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/err.h"
#include "internal.h"

#define UNCLEAN_BYTE 72

static int source_pwrite(struct source *s, const void *buf, size_t len,
			 uint64_t off)
{
	return s->ops->pwrite(s, buf, len, off);
}

/* ---- Can this disk be written? ---- */

static const char *why_not_writable(const struct extent *e)
{
	if (e->access != VMDK_RW)
		return e->access == VMDK_RDONLY ? "an RDONLY extent"
						: "a NOACCESS extent";
	switch (e->fmt) {
	case FMT_FLAT:
		return NULL;
	case FMT_ZERO:
		return "a ZERO extent";
	case FMT_COWD:
		return "a VMFSSPARSE (COWD) extent";
	case FMT_SESPARSE:
		return "an SESPARSE extent";
	}
	if (e->h.compressed)
		return "a streamOptimized (compressed) extent";
	return NULL;
}

/* Read the parent hint and CID of the descriptor at PATH, if it is one. */
static bool child_of(const char *path, const char *parent_real,
		     uint32_t parent_cid)
{
	struct vmdk_options o = {0};
	struct vmdk *v = NULL;
	bool yes = false;
	char *hint, *real;

	/* Only the descriptor is needed, but opening the link alone is the
	 * simplest way to read it in every form; its own parents are not
	 * followed here. */
	if (vmdk_open_link(path, &o, &v) < 0)
		return false;
	if (v->desc.parent_hint && v->desc.parent_cid == parent_cid) {
		hint = vmdk_parent_path(v);
		real = hint ? realpath(hint, NULL) : NULL;
		yes = real && strcmp(real, parent_real) == 0;
		free(real);
		free(hint);
	}
	vmdk_close(v);
	return yes;
}

/* Another descriptor in the same folder whose parent is V? */
static int find_child(struct vmdk *v, char **child)
{
	char *copy = strdup(v->path), *dir, *real;
	struct dirent *de;
	DIR *d;

	*child = NULL;
	real = realpath(v->path, NULL);
	if (!copy || !real) {
		free(copy);
		free(real);
		return 0;
	}
	dir = dirname(copy);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char *p = NULL;

		if (n < 6 || strcasecmp(de->d_name + n - 5, ".vmdk") != 0)
			continue;
		if (asprintf(&p, "%s/%s", dir, de->d_name) < 0)
			break;
		if (child_of(p, real, v->desc.cid)) {
			*child = p;
			break;
		}
		free(p);
	}
	if (d)
		closedir(d);
	vmdkfs_error_clear();
	free(copy);
	free(real);
	return 0;
}

int vmdk_write_prepare(struct vmdk *v, bool allow_parent_write,
		       bool keep_descriptor)
{
	char *child = NULL;
	size_t i;

	for (i = 0; i < v->next; i++) {
		const struct extent *e = &v->ext[i];
		const char *why = why_not_writable(e);

		if (why) {
			vmdkfs_error("%s: extent %zu (%s) is %s: vmdkfs cannot "
				     "write it; mount read-only",
				     v->path, i, e->path ? e->path : "no file",
				     why);
			return -EROFS;
		}
	}
	v->keep_desc = keep_descriptor;
	if (!allow_parent_write && !keep_descriptor) {
		find_child(v, &child);
		if (child) {
			vmdkfs_error("%s: %s is a child of this disk (its "
				     "parentCID is this disk's CID); writing "
				     "would change the CID and break it.  Mount "
				     "the child instead, or add -o "
				     "allow_parent_write",
				     v->path, child);
			free(child);
			return -EBUSY;
		}
	}
	for (i = 0; i < v->next; i++) {
		struct extent *e = &v->ext[i];

		pthread_mutex_init(&e->alloc_lock, NULL);
		if (e->src)
			e->alloc_end = (e->src->size + 511) / 512 * 512;
	}
	pthread_mutex_init(&v->write_lock, NULL);
	v->writable = true;
	return 0;
}

/* ---- First write: unclean flags and a new CID ---- */

static int set_unclean(struct vmdk *v, uint8_t value)
{
	size_t i;
	int r;

	for (i = 0; i < v->next; i++) {
		struct extent *e = &v->ext[i];

		if (e->fmt != FMT_VMDK4)
			continue;
		r = source_pwrite(e->src, &value, 1, UNCLEAN_BYTE);
		if (r == 0)
			r = e->src->ops->flush(e->src);
		if (r < 0)
			return r;
	}
	return 0;
}

/* TEXT with the value of its CID line replaced by CID; NULL if none. */
static char *replace_cid(const char *text, uint32_t cid)
{
	const char *p = text;

	while (*p) {
		const char *line = p, *q = p;
		const char *eol = strchr(p, '\n');

		while (*q == ' ' || *q == '\t')
			q++;
		if (strncasecmp(q, "CID", 3) == 0) {
			const char *r = q + 3;

			while (*r == ' ' || *r == '\t')
				r++;
			if (*r == '=') {
				char *out = NULL;
				const char *end = eol ? eol : line + strlen(line);

				while (end > line && end[-1] == '\r')
					end--;
				if (asprintf(&out, "%.*sCID=%08x%s",
					     (int)(line - text), text, cid,
					     end) < 0)
					return NULL;
				return out;
			}
		}
		if (!eol)
			break;
		p = eol + 1;
	}
	return NULL;
}

/* Rewrite V's descriptor with CID: in place when it is embedded in a
 * sparse extent, else through a temporary file and rename. */
static int write_cid(struct vmdk *v, uint32_t cid)
{
	struct extent *self = NULL;
	uint64_t off = 0, len = 0;
	char *text = NULL, *out = NULL, *tmp = NULL;
	struct stat st;
	int r, fd = -1;

	if (v->embedded)
		self = &v->ext[0];
	if (self) {
		off = self->h.desc_offset * 512;
		len = self->h.desc_size * 512;
		text = calloc(1, len + 1);
		if (!text)
			return -ENOMEM;
		r = source_pread(self->src, text, len, off);
		if (r < 0)
			goto out;
		out = replace_cid(text, cid);
		if (!out || strlen(out) > len) {
			vmdkfs_error("%s: cannot update the CID in the embedded "
				     "descriptor", v->path);
			r = -EIO;
			goto out;
		}
		memset(text, 0, len);
		memcpy(text, out, strlen(out));
		r = source_pwrite(self->src, text, len, off);
		if (r == 0)
			r = self->src->ops->flush(self->src);
		goto out;
	}

	{
		FILE *fp = fopen(v->path, "re");
		long n;

		if (!fp) {
			vmdkfs_error("%s: cannot read the descriptor: %m",
				     v->path);
			return -errno;
		}
		text = calloc(1, 1 << 20);
		n = text ? (long)fread(text, 1, (1 << 20) - 1, fp) : -1;
		fclose(fp);
		if (n < 0)
			return -ENOMEM;
	}
	out = replace_cid(text, cid);
	if (!out || asprintf(&tmp, "%s.vmdkfs-tmp", v->path) < 0) {
		vmdkfs_error("%s: cannot update the CID", v->path);
		r = -EIO;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	/* The new descriptor keeps the old one's mode and owner. */
	if (fd < 0 || stat(v->path, &st) < 0 ||
	    fchmod(fd, st.st_mode & 07777) < 0 ||
	    (fchown(fd, st.st_uid, st.st_gid) < 0 && errno != EPERM) ||
	    write(fd, out, strlen(out)) != (ssize_t)strlen(out) ||
	    fsync(fd) < 0 || rename(tmp, v->path) < 0) {
		vmdkfs_error("%s: cannot write the new CID: %m", v->path);
		r = -EIO;
		unlink(tmp);
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(text);
	free(out);
	return r;
}

static int first_write(struct vmdk *v)
{
	uint32_t cid;
	int r = 0;

	pthread_mutex_lock(&v->write_lock);
	if (v->dirty)
		goto out;
	if (v->keep_desc) {
		v->dirty = true;
		goto out;
	}
	r = set_unclean(v, 1);
	if (r < 0)
		goto out;
	do {
		if (getrandom(&cid, sizeof(cid), 0) != sizeof(cid))
			cid = (uint32_t)time(NULL) ^ (uint32_t)getpid();
	} while (cid == VMDK_NO_PARENT || cid == v->desc.cid);
	r = write_cid(v, cid);
	if (r < 0)
		goto out;
	log_info("%s: first write: CID %08x -> %08x", v->path, v->desc.cid,
		 cid);
	v->desc.cid = cid;
	v->dirty = true;
out:
	pthread_mutex_unlock(&v->write_lock);
	return r;
}

/* ---- Grain allocation ---- */

/* Write the u32 table entry at byte OFF of E's file, and the cache. */
static int write_entry(struct extent *e, uint64_t off, uint32_t value)
{
	uint8_t b[4];
	int r;

	put_le32(b, value);
	r = source_pwrite(e->src, b, 4, off);
	if (r == 0)
		lru_patch(e->v->tables, e, off / TABLE_PAGE, off % TABLE_PAGE,
			  b, 4);
	return r;
}

/* Append LEN bytes at the end of E's file; their offset in *OFF.  Called
 * with e->alloc_lock held. */
static int append(struct extent *e, const void *buf, size_t len,
		  uint64_t *off)
{
	uint64_t p = e->alloc_end, page;
	int r = source_pwrite(e->src, buf, len, p);

	if (r < 0)
		return r;
	e->alloc_end = p + (len + 511) / 512 * 512;
	/* Pages cached before the file grew hold zeros past the old end. */
	for (page = p / TABLE_PAGE; page * TABLE_PAGE < p + len; page++)
		lru_drop(e->v->tables, e, page);
	*off = p;
	return 0;
}

/* Grain directory slot GDI has no table: append a zeroed grain table (and
 * one for the redundant directory), then point the directories at them.
 * Returns the new table's byte offset in *GT.  Called with alloc_lock. */
static int new_grain_table(struct extent *e, uint64_t gdi, uint64_t *gt)
{
	size_t len = ((size_t)e->h.gt_entries * 4 + 511) / 512 * 512;
	uint64_t rgt = 0;
	uint8_t *zero = calloc(1, len);
	int r;

	if (!zero)
		return -ENOMEM;
	r = append(e, zero, len, gt);
	if (r == 0 && e->h.rgd_offset)
		r = append(e, zero, len, &rgt);
	free(zero);
	if (r == 0 && e->h.rgd_offset)
		r = write_entry(e, e->h.rgd_offset + gdi * 4,
				(uint32_t)(rgt / 512));
	if (r == 0)
		r = write_entry(e, e->h.gd_offset + gdi * 4,
				(uint32_t)(*gt / 512));
	return r;
}

/* Point grain G of E at sector SECTOR in both grain tables.  Called with
 * alloc_lock held. */
static int set_grain(struct extent *e, uint64_t g, uint32_t sector)
{
	uint64_t gdi = g / e->h.gt_entries, gti = g % e->h.gt_entries;
	uint64_t gde, rgde = 0, gt;
	int r;

	r = vmdk_read_entry(e, e->h.gd_offset + gdi * 4, 4, &gde);
	if (r == 0 && e->h.rgd_offset)
		r = vmdk_read_entry(e, e->h.rgd_offset + gdi * 4, 4, &rgde);
	if (r < 0)
		return r;
	if (gde == 0) {
		r = new_grain_table(e, gdi, &gt);
		if (r < 0)
			return r;
		if (e->h.rgd_offset)
			r = vmdk_read_entry(e, e->h.rgd_offset + gdi * 4, 4,
					    &rgde);
	} else {
		gt = gde * 512;
	}
	/* The redundant table first: the primary is what readers use. */
	if (r == 0 && rgde)
		r = write_entry(e, rgde * 512 + gti * 4, sector);
	if (r == 0)
		r = write_entry(e, gt + gti * 4, sector);
	return r;
}

/* Write N sectors at sector IN of grain G, which is not allocated (or is a
 * zeroed grain): build the whole grain from the parent (or zeros) and BUF,
 * append it, then point the tables at it. */
static int write_new_grain(struct extent *e, uint64_t g, uint64_t in,
			   uint64_t n, const char *buf)
{
	uint64_t grain = e->h.grain, off, first = g * grain;
	size_t gbytes = grain * 512;
	uint8_t *gbuf = NULL;
	int kind, r;

	pthread_mutex_lock(&e->alloc_lock);
	r = vmdk_grain_lookup(e, g, &kind, &off);
	if (r < 0)
		goto out;
	if (kind == M_DATA) {	/* another thread allocated it meanwhile */
		pthread_mutex_unlock(&e->alloc_lock);
		return source_pwrite(e->src, buf, n * 512, off + in * 512);
	}
	gbuf = malloc(gbytes);
	if (!gbuf) {
		r = -ENOMEM;
		goto out;
	}
	if (n < grain) {
		uint64_t avail = e->sectors - first < grain ? e->sectors - first
							    : grain;

		memset(gbuf, 0, gbytes);
		if (kind == M_UNALLOC) {
			r = vmdk_read_parent(e->v->parent, gbuf,
					     e->start + first, avail);
			if (r < 0)
				goto out;
		}
	}
	memcpy(gbuf + in * 512, buf, n * 512);
	if ((e->alloc_end + gbytes) / 512 > UINT32_MAX) {
		vmdkfs_error("%s: the extent file is full (grain offsets are "
			     "32-bit sector numbers)", e->path);
		r = -ENOSPC;
		goto out;
	}
	r = append(e, gbuf, gbytes, &off);
	if (r == 0)
		r = set_grain(e, g, (uint32_t)(off / 512));
out:
	pthread_mutex_unlock(&e->alloc_lock);
	free(gbuf);
	return r;
}

static int write_sparse(struct extent *e, const char *buf, uint64_t rel,
			uint64_t count)
{
	uint64_t grain = e->h.grain;
	int r = 0;

	while (count > 0 && r == 0) {
		uint64_t g = rel / grain, in = rel % grain, off = 0;
		uint64_t n = grain - in < count ? grain - in : count;
		int kind;

		r = vmdk_grain_lookup(e, g, &kind, &off);
		if (r < 0)
			break;
		if (kind == M_DATA)
			r = source_pwrite(e->src, buf, n * 512, off + in * 512);
		else
			r = write_new_grain(e, g, in, n, buf);
		buf += n * 512;
		rel += n;
		count -= n;
	}
	return r;
}

int vmdk_write(struct vmdk *v, const void *buf, uint64_t sector,
	       uint64_t count)
{
	const char *p = buf;
	int r;

	if (!v->writable)
		return -EROFS;
	if (sector > v->sectors || count > v->sectors - sector)
		return -ENOSPC;
	if (!v->dirty) {
		r = first_write(v);
		if (r < 0)
			return r;
	}
	while (count > 0) {
		struct extent *e = vmdk_find_extent(v, sector);
		uint64_t rel = sector - e->start;
		uint64_t n = e->sectors - rel < count ? e->sectors - rel : count;

		if (e->fmt == FMT_FLAT)
			r = source_pwrite(e->src, p, n * 512,
					  e->flat_off + rel * 512);
		else
			r = write_sparse(e, p, rel, n);
		if (r < 0)
			return r;
		p += n * 512;
		sector += n;
		count -= n;
	}
	return 0;
}

int vmdk_flush(struct vmdk *v)
{
	size_t i;
	int r;

	if (!v->writable)
		return 0;
	for (i = 0; i < v->next; i++) {
		struct source *s = v->ext[i].src;

		if (s && (r = s->ops->flush(s)) < 0)
			return r;
	}
	return 0;
}

void vmdk_write_close(struct vmdk *v)
{
	size_t i;

	if (!v->writable)
		return;
	if (v->dirty && vmdk_flush(v) == 0 && !v->keep_desc &&
	    set_unclean(v, 0) < 0)
		log_error("%s: could not clear the unclean-shutdown flag: %s",
			  v->path, vmdkfs_errmsg());
	for (i = 0; i < v->next; i++)
		pthread_mutex_destroy(&v->ext[i].alloc_lock);
	pthread_mutex_destroy(&v->write_lock);
	v->writable = false;
}

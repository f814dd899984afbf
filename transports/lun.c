/* LUNs as struct disk (sector I/O, O_DIRECT) and their VMFS partition as
 * struct source, every byte through the alignment layer (align.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/err.h"
#include "../part/part.h"
#include "../vmfs/vmfs.h"
#include "disk.h"
#include "lun.h"

#define LVM_OFFSET 0x100000u
#define LVM_MAGIC 0xC001D00Du

struct lun {
	struct disk d;
	int fd;
	bool direct;
	int refs;
};

static int lun_io(struct disk *d, void *buf, uint64_t sector, uint64_t count,
		  bool write)
{
	struct lun *l = (struct lun *)d;
	size_t len = count * d->sector_size;
	uint64_t off = sector * d->sector_size;
	char *p = buf;

	while (len > 0) {
		ssize_t n = write ? pwrite(l->fd, p, len, (off_t)off)
				  : pread(l->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			vmdkfs_error("%s: %s at offset %llu: %s", d->path,
				     write ? "write" : "read",
				     (unsigned long long)off, strerror(e));
			return -e;
		}
		if (n == 0) {
			vmdkfs_error("%s: %s at offset %llu: past the end "
				     "(%llu bytes)",
				     d->path, write ? "write" : "read",
				     (unsigned long long)off,
				     (unsigned long long)d->size);
			return -EIO;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int lun_pread(struct disk *d, void *buf, uint64_t sector,
		     uint64_t count)
{
	return lun_io(d, buf, sector, count, false);
}

static int lun_pwrite(struct disk *d, const void *buf, uint64_t sector,
		      uint64_t count)
{
	return lun_io(d, (void *)buf, sector, count, true);
}

static int lun_flush(struct disk *d)
{
	struct lun *l = (struct lun *)d;

	if (fdatasync(l->fd) < 0) {
		vmdkfs_error("%s: flush: %m", d->path);
		return -errno;
	}
	return 0;
}

static void lun_close(struct disk *d)
{
	struct lun *l = (struct lun *)d;

	close(l->fd);
	free(d->path);
	free(l);
}

static const struct disk_ops lun_ops = {
    .pread = lun_pread,
    .pwrite = lun_pwrite,
    .flush = lun_flush,
    .close = lun_close,
};

/* Can FD be read with O_DIRECT at SS-byte granularity?  (Some file
 * systems take the flag at open and refuse the read.) */
static bool direct_reads(int fd, uint32_t ss, uint64_t size)
{
	void *p = NULL;
	bool ok;

	if (size < ss)
		return true; /* nothing to read: nothing to refuse */
	if (posix_memalign(&p, 4096, ss) != 0)
		return false;
	ok = pread(fd, p, ss, 0) == (ssize_t)ss;
	free(p);
	return ok;
}

int lun_open(const char *path, bool writable, struct lun **out)
{
	int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
	struct lun *l;
	struct stat st;
	uint32_t ss = 512;
	int fd, e, bs;
	bool direct = true;

	fd = open(path, flags | O_DIRECT);
	if (fd < 0 && errno == EINVAL) {
		direct = false;
		fd = open(path, flags);
	}
	if (fd < 0) {
		e = errno;
		vmdkfs_error("%s: cannot open: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0 ||
	    !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		vmdkfs_error("%s: not a block device or an image file", path);
		close(fd);
		return -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (!l || !(l->d.path = strdup(path))) {
		free(l);
		close(fd);
		return -ENOMEM;
	}
	if (S_ISBLK(st.st_mode)) {
		uint64_t bytes = 0;

		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
			vmdkfs_error("%s: size of the device: %m", path);
			lun_close(&l->d);
			return -EIO;
		}
		l->d.size = bytes;
		if (ioctl(fd, BLKSSZGET, &bs) == 0 && bs >= 512 &&
		    (bs & (bs - 1)) == 0)
			ss = (uint32_t)bs;
	} else {
		l->d.size = (uint64_t)st.st_size;
	}
	l->fd = fd;
	if (direct && !direct_reads(fd, ss, l->d.size)) {
		close(fd);
		direct = false;
		l->fd = open(path, flags);
		if (l->fd < 0) {
			e = errno;
			vmdkfs_error("%s: cannot open: %s", path, strerror(e));
			free(l->d.path);
			free(l);
			return -e;
		}
	}
	if (!direct)
		log_info("%s: O_DIRECT refused by its file system; reading it "
			 "buffered",
			 path);
	l->direct = direct;
	l->refs = 1;
	l->d.ops = &lun_ops;
	l->d.transport = "san";
	l->d.sector_size = ss;
	l->d.mem_align = direct ? 4096 : 1;
	l->d.max_io = 8u << 20;
	l->d.readonly = !writable;
	/* The alignment layer works in whole sectors: a trailing partial
	 * sector of an image file is not part of any partition. */
	l->d.size -= l->d.size % ss;
	*out = l;
	return 0;
}

void lun_put(struct lun *l)
{
	if (l && --l->refs == 0)
		lun_close(&l->d);
}

const char *lun_path(const struct lun *l)
{
	return l->d.path;
}

bool lun_direct(const struct lun *l)
{
	return l->direct;
}

struct disk *lun_disk(struct lun *l)
{
	return &l->d;
}

/* ---- A byte range of the LUN as struct source ---- */

struct range_source {
	struct source s;
	struct lun *l;
	uint64_t start;
};

static int range_check(struct source *s, size_t len, uint64_t off,
		       const char *what)
{
	if (off > s->size || len > s->size - off) {
		vmdkfs_error("%s: %s at offset %llu: past the end (%llu "
			     "bytes)",
			     s->name, what, (unsigned long long)off,
			     (unsigned long long)s->size);
		return -EIO;
	}
	return 0;
}

static int range_pread(struct source *s, void *buf, size_t len, uint64_t off)
{
	struct range_source *r = (struct range_source *)s;
	ssize_t n;
	int e = range_check(s, len, off, "read");

	if (e < 0)
		return e;
	n = disk_pread(&r->l->d, buf, len, r->start + off);
	if (n >= 0 && (size_t)n != len) {
		vmdkfs_error("%s: short read at offset %llu", s->name,
			     (unsigned long long)off);
		return -EIO;
	}
	return n < 0 ? (int)n : 0;
}

static int range_pwrite(struct source *s, const void *buf, size_t len,
			uint64_t off)
{
	struct range_source *r = (struct range_source *)s;
	ssize_t n;
	int e = range_check(s, len, off, "write");

	if (e < 0)
		return e;
	if (!s->writable)
		return source_ro_pwrite(s, buf, len, off);
	n = disk_pwrite(&r->l->d, buf, len, r->start + off);
	if (n >= 0 && (size_t)n != len) {
		vmdkfs_error("%s: short write at offset %llu", s->name,
			     (unsigned long long)off);
		return -EIO;
	}
	return n < 0 ? (int)n : 0;
}

static int range_flush(struct source *s)
{
	return s->writable ? disk_flush(&((struct range_source *)s)->l->d) : 0;
}

static void range_close(struct source *s)
{
	struct range_source *r = (struct range_source *)s;

	lun_put(r->l);
	free(s->name);
	free(r);
}

static const struct source_ops range_ops = {
    .pread = range_pread,
    .pwrite = range_pwrite,
    .flush = range_flush,
    .close = range_close,
};

static int range_source(struct lun *l, uint64_t start, uint64_t size,
			unsigned number, struct source **out)
{
	struct range_source *r = calloc(1, sizeof(*r));
	int n;

	if (!r)
		return -ENOMEM;
	n = number ? asprintf(&r->s.name, "%s partition %u", l->d.path, number)
		   : asprintf(&r->s.name, "%s", l->d.path);
	if (n < 0) {
		free(r);
		return -ENOMEM;
	}
	r->s.ops = &range_ops;
	r->s.size = size;
	r->s.writable = !l->d.readonly;
	r->l = l;
	r->start = start;
	l->refs++;
	*out = &r->s;
	return 0;
}

/* ---- Finding the VMFS partition ---- */

static int part_cb(void *opaque, void *buf, size_t len, uint64_t off)
{
	struct lun *l = opaque;
	ssize_t n = disk_pread(&l->d, buf, len, off);

	if (n >= 0 && (size_t)n != len) {
		vmdkfs_error("%s: read at offset %llu: past the end",
			     l->d.path, (unsigned long long)off);
		return -EIO;
	}
	return n < 0 ? (int)n : 0;
}

static void part_warn(void *opaque, const char *msg)
{
	vmdkfs_log(LOG_WARN, "%s: %s", ((struct lun *)opaque)->d.path, msg);
}

/* Does an LVM header start 1 MiB into [START, START+SIZE)? */
static bool lvm_at(struct lun *l, uint64_t start, uint64_t size)
{
	unsigned char b[4];

	if (size < LVM_OFFSET + 512 || part_cb(l, b, 4, start + LVM_OFFSET) < 0)
		return false;
	return ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
		(uint32_t)b[3] << 24) == LVM_MAGIC;
}

int lun_vmfs_source(struct lun *l, unsigned partno, struct source **out,
		    unsigned *number)
{
	struct part_table t;
	const struct part_entry *hit = NULL;
	size_t i, nvmfs = 0, nlvm = 0;
	int r;

	r = part_read(part_cb, l, l->d.size, 0, part_warn, l, &t);
	if (r < 0)
		return r;
	if (partno) {
		for (i = 0; i < t.n; i++)
			if (t.e[i].number == partno)
				hit = &t.e[i];
		if (!hit) {
			if (t.scheme == PART_NONE)
				vmdkfs_error("%s: no partition table, so no "
					     "partition %u",
					     l->d.path, partno);
			else
				vmdkfs_error("%s: the %s has no partition %u "
					     "(%zu partitions)",
					     l->d.path,
					     t.scheme == PART_GPT ? "GPT"
								  : "MBR",
					     partno, t.n);
			part_table_free(&t);
			return -ENOENT;
		}
	} else {
		for (i = 0; i < t.n; i++)
			if (part_is_vmfs(&t.e[i]) && nvmfs++ == 0)
				hit = &t.e[i];
		for (i = 0; !nvmfs && i < t.n; i++)
			if (lvm_at(l, t.e[i].start, t.e[i].size) && nlvm++ == 0)
				hit = &t.e[i];
		if (nvmfs > 1 || (!nvmfs && nlvm > 1)) {
			vmdkfs_error("%s: %zu VMFS partitions: give "
				     "partition=N",
				     l->d.path, nvmfs ? nvmfs : nlvm);
			part_table_free(&t);
			return -EINVAL;
		}
	}
	if (!hit && t.n > 0 && !lvm_at(l, 0, l->d.size)) {
		vmdkfs_error("%s: no VMFS partition in its %s (%zu partitions, "
			     "none of type VMFS or holding an LVM header)",
			     l->d.path, t.scheme == PART_GPT ? "GPT" : "MBR",
			     t.n);
		part_table_free(&t);
		return -EINVAL;
	}
	if (hit) {
		*number = hit->number;
		r = range_source(l, hit->start, hit->size, hit->number, out);
	} else {
		*number = 0; /* a bare partition: vmfs_open names what is
				missing if it is not VMFS */
		r = range_source(l, 0, l->d.size, 0, out);
	}
	part_table_free(&t);
	return r;
}

int lun_open_vmfs(const char *const *paths, size_t n, unsigned partno,
		  bool writable, struct vmfs **out, char **desc)
{
	struct source *srcs[VMFS_MAX_DEVICES] = {NULL};
	struct vmfs_info info;
	char *text = NULL;
	size_t i, k = 0;
	int r = 0;

	*desc = NULL;
	if (n == 0 || n > VMFS_MAX_DEVICES) {
		vmdkfs_error("lun=: give 1 to %d devices", VMFS_MAX_DEVICES);
		return -EINVAL;
	}
	for (i = 0; i < n && r == 0; i++) {
		struct lun *l;
		unsigned number = 0;
		char *more, *real;
		int w;

		r = lun_open(paths[i], writable, &l);
		if (r < 0)
			break;
		r = lun_vmfs_source(l, partno, &srcs[k], &number);
		lun_put(l);
		if (r < 0)
			break;
		k++;
		real = realpath(paths[i], NULL);
		if (real && strcmp(real, paths[i]) == 0) {
			free(real);
			real = NULL;
		}
		w = asprintf(&more, "%s%s%s%s%s%s%s", text ? text : "",
			     text ? ", " : "", paths[i], real ? " (" : "",
			     real ? real : "", real ? ")" : "",
			     number ? "" : " (whole)");
		free(real);
		if (w < 0) {
			r = -ENOMEM;
			break;
		}
		free(text);
		text = more;
		if (number) {
			if (asprintf(&more, "%s partition %u", text, number) <
			    0) {
				r = -ENOMEM;
				break;
			}
			free(text);
			text = more;
		}
	}
	if (r == 0)
		r = vmfs_open(srcs, k, NULL, out);
	if (r < 0) {
		for (i = 0; i < k; i++)
			source_close(srcs[i]);
		free(text);
		return r;
	}
	vmfs_get_info(*out, &info);
	if (asprintf(desc, "%s, VMFS%d %s", text, info.version, info.uuid) <
	    0) {
		*desc = text;
		text = NULL;
	}
	free(text);
	return 0;
}

int lun_open_vmfs_list(const char *devices, unsigned partno, bool writable,
		       struct vmfs **out, char **desc)
{
	const char *paths[VMFS_MAX_DEVICES];
	char *copy, *save = NULL, *p;
	size_t n = 0;
	int r;

	*desc = NULL;
	copy = strdup(devices ? devices : "");
	if (!copy)
		return -ENOMEM;
	for (p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		if (n == VMFS_MAX_DEVICES) {
			free(copy);
			vmdkfs_error("lun=%s: more than %d devices (a VMFS "
				     "volume spans at most %d)",
				     devices, VMFS_MAX_DEVICES,
				     VMFS_MAX_DEVICES);
			return -EINVAL;
		}
		paths[n++] = p;
	}
	if (n == 0) {
		free(copy);
		vmdkfs_error("lun=: give the VMFS device or image (several: "
			     "colon-separated)");
		return -EINVAL;
	}
	r = lun_open_vmfs(paths, n, partno, writable, out, desc);
	free(copy);
	return r;
}

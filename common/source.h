/* struct source: a byte range of one file (a local file, or a file inside a
 * VMFS volume).  The VMDK code reads its extents only through this.
 *
 * Every operation returns 0 or -errno.  pread fails with -EIO if the range
 * goes past the end of the source (a short read is never returned).
 */
#ifndef VMDKFS_SOURCE_H
#define VMDKFS_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct source;

struct source_ops {
	int (*pread)(struct source *s, void *buf, size_t len, uint64_t off);
	int (*pwrite)(struct source *s, const void *buf, size_t len,
		      uint64_t off);
	int (*flush)(struct source *s);
	void (*close)(struct source *s);
	/* Bytes the source takes on its storage (st_blocks); NULL: size. */
	uint64_t (*allocated)(struct source *s);
	/* Allocation from OFF (< size): *RUN bytes (1 <= *RUN <= LEN) are
	 * all data (*DATA) or all a hole (no storage, or known to read as
	 * zeros).  NULL: all data. */
	int (*map)(struct source *s, uint64_t off, uint64_t len, bool *data,
		   uint64_t *run);
};

struct source {
	const struct source_ops *ops;
	char *name;    /* path, for messages; owned */
	uint64_t size; /* bytes */
	bool writable;
};

/* Opens sources for the VMDK code.  PATH is already resolved (absolute or
 * relative to the working directory). */
struct source_opener {
	int (*open)(void *opaque, const char *path, bool writable,
		    struct source **out);
	void *opaque;
};

static inline uint64_t source_allocated(struct source *s)
{
	return s->ops->allocated ? s->ops->allocated(s) : s->size;
}

static inline int source_map(struct source *s, uint64_t off, uint64_t len,
			     bool *data, uint64_t *run)
{
	if (!s->ops->map) {
		*data = true;
		*run = len;
		return 0;
	}
	return s->ops->map(s, off, len, data, run);
}

static inline int source_pread(struct source *s, void *buf, size_t len,
			       uint64_t off)
{
	return s->ops->pread(s, buf, len, off);
}

static inline void source_close(struct source *s)
{
	if (s)
		s->ops->close(s);
}

/* For read-only sources: pwrite fails with -EROFS (and a message), flush
 * has nothing to do. */
int source_ro_pwrite(struct source *s, const void *buf, size_t len,
		     uint64_t off);
int source_no_flush(struct source *s);

/* A local file through a file descriptor. */
int fd_source_open(const char *path, bool writable, struct source **out);

/* The opener for local files (opaque unused). */
extern const struct source_opener local_opener;

/* A read-only source over a memory buffer (copied); for tests and fuzzing. */
int mem_source_new(const char *name, const void *data, size_t len,
		   struct source **out);

#endif

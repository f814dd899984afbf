/* libFuzzer target: the partition-table reader.  The input is a disk
 * image; part_read reads it with each sector size (0: probe, 512, 4096)
 * and the result is checked: no read outside the image, every partition
 * inside the image, numbered in order, none overlapping another. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../part/part.h"

struct img {
	const uint8_t *data;
	size_t size;
};

static int img_read(void *opaque, void *buf, size_t len, uint64_t off)
{
	const struct img *m = opaque;

	if (off > m->size || len > m->size - off)
		abort(); /* part_read must never read outside the disk */
	memcpy(buf, m->data + off, len);
	return 0;
}

static void check(const struct part_table *t, uint64_t size)
{
	size_t i, j;

	for (i = 0; i < t->n; i++) {
		const struct part_entry *e = &t->e[i];

		if (e->size == 0 || e->start == 0 || e->start > size ||
		    e->size > size - e->start)
			abort();
		if (i && e->number <= t->e[i - 1].number)
			abort();
		for (j = 0; j < i; j++)
			if (e->start < t->e[j].start + t->e[j].size &&
			    t->e[j].start < e->start + e->size)
				abort();
	}
}

static void ignore(void *opaque, const char *msg)
{
	(void)opaque;
	if (strchr(msg, '\n'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t sizes[] = {0, 512, 4096};
	struct img m = {data, size};
	struct part_table t;
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (part_read(img_read, &m, size, sizes[i], ignore, NULL, &t) ==
		    0)
			check(&t, size);
		part_table_free(&t);
	}
	return 0;
}

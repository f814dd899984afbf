/* The alignment layer: every (offset, length) against a disk whose
 * transport only takes whole sectors, with 512- and 4096-byte sectors, a
 * max_io split, a buffer alignment demand, and the read cache. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "../../common/lru.h"
#include "../../transports/disk.h"
#include "check.h"

struct mem_disk {
	struct disk d;
	unsigned char *data;
	unsigned calls;
};

static int md_pread(struct disk *d, void *buf, uint64_t sector, uint64_t count)
{
	struct mem_disk *m = (struct mem_disk *)d;

	if ((uintptr_t)buf % d->mem_align ||
	    (sector + count) * d->sector_size > d->size ||
	    count * d->sector_size > d->max_io) {
		check_failures++;
		return -EINVAL;
	}
	memcpy(buf, m->data + sector * d->sector_size, count * d->sector_size);
	m->calls++;
	return 0;
}

static void md_close(struct disk *d)
{
	(void)d;
}

static const struct disk_ops md_ops = {.pread = md_pread, .close = md_close};

static void run(uint32_t ss, size_t align, bool cache)
{
	struct mem_disk m = {0};
	size_t size = 64 * ss + 3 * 65536;
	unsigned char *buf = malloc(300000 + 64);
	unsigned seed = 1;
	int i;

	size -= size % ss;
	m.data = malloc(size);
	for (size_t k = 0; k < size; k++)
		m.data[k] = (unsigned char)(k * 131 + k / 509);
	m.d.ops = &md_ops;
	m.d.size = size;
	m.d.sector_size = ss;
	m.d.mem_align = align;
	m.d.max_io = 8 * ss;
	if (cache)
		CHECK(disk_enable_cache(&m.d, 1 << 20) == 0);
	for (i = 0; i < 3000; i++) {
		uint64_t off = (uint64_t)rand_r(&seed) % (size + 100);
		size_t len = (size_t)rand_r(&seed) % (i % 3 ? 9000 : 300000);
		unsigned char *p = buf + rand_r(&seed) % 64;
		size_t want =
		    off >= size ? 0 : (len < size - off ? len : size - off);
		ssize_t n = disk_pread(&m.d, p, len, off);

		CHECK(n == (ssize_t)want);
		if (n > 0 && memcmp(p, m.data + off, (size_t)n) != 0) {
			check_failures++;
			break;
		}
	}
	if (cache)
		lru_free(m.d.cache);
	free(m.data);
	free(buf);
}

int main(void)
{
	run(512, 1, false);
	run(512, 512, false);
	run(4096, 4096, false);
	run(512, 1, true);
	run(4096, 4096, true);
	CHECK_DONE();
}

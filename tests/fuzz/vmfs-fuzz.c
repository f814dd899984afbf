/* libFuzzer target: the VMFS reader.  The input (vmfs-walk.h's sparse
 * chunks) is one or two devices; the target opens them as a volume and
 * walks the tree, reading from every file, following every symlink. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>

#include "vmfs-walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmfs_options o = {.cache_bytes = 64 << 10};
	struct source *dev[2];
	struct vmfs *v;
	size_t n, i;

	n = chunk_devices(data, size, dev);
	if (n == 0)
		return 0;
	if (vmfs_open(dev, n, &o, &v) < 0) {
		for (i = 0; i < n; i++)
			source_close(dev[i]);
		return 0;
	}
	vmfs_walk(v);
	vmfs_close(v);
	return 0;
}

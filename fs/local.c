/* Local disks: DISK.vmdk... on the command line, each a flat file in the
 * root, through the file transport (or transports=). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "../transports/transport.h"
#include "fs.h"
#include "provider.h"

static int local_open(char *const *paths, size_t npaths)
{
	size_t i;

	for (i = 0; i < npaths; i++) {
		/* Absolute: the daemon changes to / before serving. */
		char *abspath = realpath(paths[i], NULL);
		struct disk_spec spec = {
		    .readonly = !fs_cfg.rw,
		    .allow_parent_write = fs_cfg.allow_parent_write,
		    .table_cache_bytes = fs_cfg.table_cache,
		    .grain_cache_bytes = fs_cfg.grain_cache,
		};
		struct disk *d;
		int r;

		if (!abspath && !(abspath = strdup(paths[i])))
			return -ENOMEM;
		spec.path = abspath;
		r = transport_open(fs_cfg.transports ? fs_cfg.transports
						     : TRANSPORTS_LOCAL,
				   &spec, &d);
		if (r < 0) {
			fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
			free(abspath);
			return r;
		}
		if (fs_cfg.enable_cache &&
		    disk_enable_cache(d, fs_cfg.cache_size) < 0) {
			disk_close(d);
			free(abspath);
			return -ENOMEM;
		}
		if (!fs_add("", paths[i], d, abspath)) {
			disk_close(d);
			free(abspath);
			return -ENOMEM;
		}
	}
	return 0;
}

const struct fs_provider fs_local_provider = {
    .name = "local",
    .open = local_open,
};

/* Transports: how a disk is reached.  One static struct per transport, a
 * registry, and a selector that tries a mode list in order, as VDDK does.
 */
#ifndef VMDKFS_TRANSPORT_H
#define VMDKFS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "disk.h"

/* What to open and how. */
struct disk_spec {
	const char *path; /* local: the .vmdk descriptor */
	bool readonly;
	bool allow_parent_write;
	size_t table_cache_bytes, grain_cache_bytes;
};

struct transport {
	const char *name;
	/* Can this transport be used at all here?  If not, *WHY says so. */
	bool (*available)(const char **why);
	int (*open_disk)(const struct disk_spec *spec, struct disk **out);
};

extern const struct transport file_transport;

/* Colon-separated names of the transports this build supports. */
const char *transport_list(void);

/* Open SPEC with the first transport of MODES (colon-separated) that
 * opens it.  On failure the message names each mode and why it failed. */
int transport_open(const char *modes, const struct disk_spec *spec,
		   struct disk **out);

#endif

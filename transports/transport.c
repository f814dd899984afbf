#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "transport.h"

static const struct transport *const registry[] = {
    &file_transport,
    &san_transport,
    &hotadd_transport,
    &nbd_transport,
    &nbdssl_transport,
};

#define NREG (sizeof(registry) / sizeof(registry[0]))

const char *transport_list(void)
{
	static char buf[128];
	size_t i;

	if (!buf[0]) {
		for (i = 0; i < NREG; i++) {
			if (i)
				strcat(buf, ":");
			strcat(buf, registry[i]->name);
		}
	}
	return buf;
}

/* Every VDDK mode, and why this build cannot use those it lacks. */
static const char *const modes_known[] = {"file", "san", "hotadd", "nbd",
					  "nbdssl"};

static bool is_mode(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(modes_known) / sizeof(modes_known[0]); i++)
		if (strlen(modes_known[i]) == len &&
		    strncmp(modes_known[i], name, len) == 0)
			return true;
	return false;
}

int transport_check_modes(const char *modes)
{
	const char *p = modes;

	if (!*p) {
		vmdkfs_error("transports=: the list is empty");
		return -EINVAL;
	}
	while (*p) {
		size_t len = strcspn(p, ":");

		if (!is_mode(p, len)) {
			vmdkfs_error("transports=%s: \"%.*s\" is not a transport "
				     "mode (file, san, hotadd, nbd, nbdssl)",
				     modes, (int)len, p);
			return -EINVAL;
		}
		p += len;
		if (*p == ':')
			p++;
	}
	return 0;
}

static const struct transport *find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NREG; i++)
		if (strlen(registry[i]->name) == len &&
		    strncmp(registry[i]->name, name, len) == 0)
			return registry[i];
	return NULL;
}

int transport_open(const char *modes, const struct disk_spec *spec,
		   struct disk **out)
{
	char why_all[2048] = "";
	const char *p = modes;
	bool several = strchr(modes, ':') != NULL;
	int r = -ENOENT;

	while (*p) {
		size_t len = strcspn(p, ":");
		const struct transport *t = find(p, len);
		char why[512] = "";
		char one[1024];

		if (!t) {
			snprintf(one, sizeof(one),
				 "%.*s: not in this build yet (it has: %s)",
				 (int)len, p, transport_list());
			r = -ENODEV;
		} else if (t->available &&
			   !t->available(spec, why, sizeof(why))) {
			snprintf(one, sizeof(one), "%s: %s", t->name, why);
			r = -ENODEV;
		} else {
			vmdkfs_error_clear();
			r = t->open_disk(spec, out);
			if (r == 0)
				return 0;
			snprintf(one, sizeof(one), "%s%s%s",
				 several ? t->name : "", several ? ": " : "",
				 vmdkfs_errmsg());
			log_info("%s: transport %s failed: %s",
				 spec->path ? spec->path : spec->ds_path, t->name,
				 one);
		}
		if (why_all[0])
			strncat(why_all, "; ",
				sizeof(why_all) - strlen(why_all) - 1);
		strncat(why_all, one, sizeof(why_all) - strlen(why_all) - 1);
		p += len;
		if (*p == ':')
			p++;
	}
	if (!why_all[0])
		snprintf(why_all, sizeof(why_all), "no transport given");
	vmdkfs_error("%s", why_all);
	return r;
}

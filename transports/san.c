/* The san transport: the datastore's LUN read directly (O_DIRECT) by this
 * machine, the VMFS volume on it parsed here (vmfs/), the disk's chain
 * then read from the volume through vmdk/.
 *
 * The LUN comes from the vSphere API: Datastore.info (VmfsDatastoreInfo)
 * names each extent's disk (naa.ID) and partition; the device is
 * SAN_DEVICES/wwn-0xID or scsi-3ID (/dev/disk/by-id by default), and the
 * volume found there must have the datastore's VMFS UUID.  VDDK's own SAN
 * mode asks the host for a block map through an undocumented API; vmdkfs
 * reads VMFS itself instead (see notes/vddk-semantics.md, "SAN").
 *
 * Writes (a rw restore of a powered-off VM's current disks) go only in
 * place, into the file blocks of a base disk's flat extent that are
 * allocated and not to be zeroed; a disk that would need allocation makes
 * san unusable for it and the next mode takes it.  vmdkfs never allocates
 * VMFS blocks or changes VMFS metadata, and the descriptor is not touched
 * (its CID stays).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../common/err.h"
#include "../vmdk/vmdk.h"
#include "../vmfs/vmfs.h"
#include "../vsphere/vsphere.h"
#include "lun.h"
#include "transport.h"

/* A datastore's volume, opened once per mount and shared by its disks. */
struct san_vol {
	char *datastore;
	struct vmfs *vol;
	struct source_opener op, op_rw;
	bool writable; /* the LUNs are opened read-write */
	char *desc;    /* for status and user.vmdkfs.lun */
	int refs;
	struct san_vol *next;
};

static pthread_mutex_t vols_lock = PTHREAD_MUTEX_INITIALIZER;
static struct san_vol *vols;

static void vol_put(void *arg)
{
	struct san_vol *sv = arg, **p;

	pthread_mutex_lock(&vols_lock);
	if (--sv->refs > 0) {
		pthread_mutex_unlock(&vols_lock);
		return;
	}
	for (p = &vols; *p; p = &(*p)->next)
		if (*p == sv) {
			*p = sv->next;
			break;
		}
	pthread_mutex_unlock(&vols_lock);
	vmfs_close(sv->vol);
	free(sv->datastore);
	free(sv->desc);
	free(sv);
}

/* Is PATH matched by one of LIST's comma-separated shell patterns? */
static bool listed(const char *list, const char *path)
{
	const char *p = list;

	while (p && *p) {
		size_t len = strcspn(p, ",");
		char pat[PATH_MAX];

		while (len && (*p == ' ' || *p == '\t' || *p == '"')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' ||
			       p[len - 1] == '"'))
			len--;
		if (len && len < sizeof(pat)) {
			memcpy(pat, p, len);
			pat[len] = '\0';
			if (fnmatch(pat, path, FNM_PATHNAME) == 0)
				return true;
		}
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return false;
}

static bool is_all(const char *list)
{
	return list && strcasecmp(list, "all") == 0;
}

/* VDDK 8 semantics: a device on the allow list is used; otherwise one on
 * the deny list, or any device when the deny list is "all", is not.  A
 * device counts as named by its path as found or its real node. */
static bool permitted(const struct disk_spec *spec, const char *path,
		      const char *real, char *why, size_t size)
{
	if (spec->san_allow && *spec->san_allow &&
	    (listed(spec->san_allow, path) || listed(spec->san_allow, real)))
		return true;
	if (is_all(spec->san_deny)) {
		snprintf(why, size,
			 "%.300s (%.300s) is not in vixDiskLib.transport.san.allowList "
			 "and denyList is all",
			 path, real);
		return false;
	}
	if (spec->san_deny && *spec->san_deny &&
	    (listed(spec->san_deny, path) || listed(spec->san_deny, real))) {
		snprintf(why, size,
			 "%.300s (%.300s) is in vixDiskLib.transport.san.denyList",
			 path, real);
		return false;
	}
	return true;
}

/* The device of extent DISKNAME in *PATH (malloc'd). */
static int find_device(const struct disk_spec *spec, const char *disk,
		       char **path, char *why, size_t size)
{
	const char *dir = spec->san_devices ? spec->san_devices
					    : "/dev/disk/by-id";
	const char *id;
	char cand[2][PATH_MAX];
	struct stat st;
	int k;

	if (strncasecmp(disk, "naa.", 4) == 0) {
		id = disk + 4;
		snprintf(cand[0], sizeof(cand[0]), "%s/wwn-0x%s", dir, id);
		snprintf(cand[1], sizeof(cand[1]), "%s/scsi-3%s", dir, id);
	} else if (strncasecmp(disk, "eui.", 4) == 0) {
		id = disk + 4;
		snprintf(cand[0], sizeof(cand[0]), "%s/wwn-0x%s", dir, id);
		snprintf(cand[1], sizeof(cand[1]), "%s/nvme-eui.%s", dir, id);
	} else {
		snprintf(why, size,
			 "extent %s: not an NAA or EUI device id; vmdkfs finds "
			 "only those",
			 disk);
		return -ENODEV;
	}
	for (k = 0; k < 2; k++) {
		/* by-id names are lower case */
		char *c;

		for (c = cand[k] + strlen(dir); *c; c++)
			if (*c >= 'A' && *c <= 'F')
				*c = (char)(*c - 'A' + 'a');
		if (stat(cand[k], &st) == 0) {
			*path = strdup(cand[k]);
			return *path ? 0 : -ENOMEM;
		}
	}
	snprintf(why, size,
		 "LUN %.100s not found on this machine: no %.300s or %.300s (is the LUN "
		 "presented to it? san_devices= names another folder)",
		 disk, cand[0], cand[1]);
	return -ENODEV;
}

/* Open the volume of datastore DS (every extent). */
static int open_volume(const struct disk_spec *spec, struct vs_datastore *ds,
		       struct san_vol **out, char *why, size_t size)
{
	const char *paths[VMFS_MAX_DEVICES];
	char *found[VMFS_MAX_DEVICES] = {0};
	struct san_vol *sv;
	struct vmfs_info info;
	size_t i;
	unsigned partno;
	int r = 0;

	if (!ds->type || strcasecmp(ds->type, "VMFS") != 0) {
		snprintf(why, size,
			 "datastore %s is %s, not VMFS: there is no LUN to "
			 "read",
			 ds->name, ds->type ? ds->type : "of an unknown type");
		return -ENODEV;
	}
	if (ds->next == 0 || !ds->vmfs_uuid) {
		snprintf(why, size,
			 "datastore %s: its info names no VMFS extent or UUID",
			 ds->name);
		return -ENODEV;
	}
	if (ds->next > VMFS_MAX_DEVICES) {
		snprintf(why, size, "datastore %s spans %zu LUNs (at most %d)",
			 ds->name, ds->next, VMFS_MAX_DEVICES);
		return -ENODEV;
	}
	partno = (unsigned)ds->ext[0].partition;
	for (i = 0; i < ds->next && r == 0; i++) {
		char real[PATH_MAX];

		if (ds->ext[i].partition != ds->ext[0].partition) {
			/* lun_open_vmfs takes one partition number */
			snprintf(why, size,
				 "datastore %s: its extents are on different "
				 "partition numbers (%d, %d): not supported",
				 ds->name, ds->ext[0].partition,
				 ds->ext[i].partition);
			r = -ENODEV;
			break;
		}
		r = find_device(spec, ds->ext[i].disk, &found[i], why, size);
		if (r < 0)
			break;
		if (!realpath(found[i], real))
			snprintf(real, sizeof(real), "%s", found[i]);
		if (!permitted(spec, found[i], real, why, size)) {
			r = -EACCES;
			break;
		}
		paths[i] = found[i];
	}
	sv = r == 0 ? calloc(1, sizeof(*sv)) : NULL;
	if (r == 0 && !sv)
		r = -ENOMEM;
	if (r == 0) {
		r = lun_open_vmfs(paths, ds->next, partno, !spec->readonly,
				  &sv->vol, &sv->desc);
		if (r < 0)
			snprintf(why, size, "datastore %s (%s): %s", ds->name,
				 ds->ext[0].disk, vmdkfs_errmsg());
	}
	for (i = 0; i < ds->next; i++)
		free(found[i]);
	if (r < 0) {
		free(sv);
		return r;
	}
	vmfs_get_info(sv->vol, &info);
	if (strcasecmp(info.uuid, ds->vmfs_uuid) != 0) {
		snprintf(why, size,
			 "LUN %s holds VMFS volume %s, but datastore %s is "
			 "volume %s",
			 ds->ext[0].disk, info.uuid, ds->name, ds->vmfs_uuid);
		vmfs_close(sv->vol);
		free(sv->desc);
		free(sv);
		return -ENODEV;
	}
	sv->datastore = strdup(ds->name);
	sv->writable = !spec->readonly;
	vmfs_opener_init(sv->vol, &sv->op);
	vmfs_opener_init_rw(sv->vol, &sv->op_rw);
	sv->refs = 1;
	log_info("san: datastore %s: %s", ds->name, sv->desc);
	*out = sv;
	return 0;
}

/* The volume of datastore NAME, opened now or by an earlier disk. */
static int get_volume(const struct disk_spec *spec, const char *name,
		      struct san_vol **out, char *why, size_t size)
{
	struct vs_datastore ds;
	struct san_vol *sv;
	int r;

	pthread_mutex_lock(&vols_lock);
	for (sv = vols; sv; sv = sv->next)
		if (strcmp(sv->datastore, name) == 0 &&
		    sv->writable == !spec->readonly) {
			sv->refs++;
			break;
		}
	pthread_mutex_unlock(&vols_lock);
	if (sv) {
		*out = sv;
		return 0;
	}
	r = vs_datastore(spec->vs, spec->vm, name, &ds);
	if (r < 0) {
		snprintf(why, size, "%s", vmdkfs_errmsg());
		return r;
	}
	r = open_volume(spec, &ds, &sv, why, size);
	vs_datastore_free(&ds);
	if (r < 0)
		return r;
	pthread_mutex_lock(&vols_lock);
	sv->next = vols;
	vols = sv;
	pthread_mutex_unlock(&vols_lock);
	*out = sv;
	return 0;
}

/* May the disk at PATH on SV be written through san?  Only in place: one
 * base link (a delta is the host's redo log and grows), every extent FLAT
 * or VMFS, on files whose every block is allocated and zeroed already
 * (vmfs_opener_init_rw checks that at the writable open). */
static int check_writable(struct san_vol *sv, const char *path)
{
	struct vmdk_options o = {.opener = &sv->op};
	struct vmdk *v;
	size_t i;
	int r = vmdk_open(path, &o, &v);

	if (r < 0)
		return r;
	if (vmdk_parent(v)) {
		vmdkfs_error("%s is a delta link: writing it through san would "
			     "need VMFS to grow it (the host does that: nbdssl, "
			     "nbd)",
			     path);
		r = -EROFS;
	}
	for (i = 0; r == 0 && i < vmdk_extent_count(v); i++) {
		struct vmdk_extent_info e;

		vmdk_extent_get(v, i, &e);
		if (e.type != VMDK_FLAT && e.type != VMDK_VMFS) {
			vmdkfs_error("%s: extent %zu is %s, not flat: writing "
				     "it through san would need VMFS to "
				     "allocate",
				     path, i, e.format ? e.format : "sparse");
			r = -EROFS;
		}
	}
	vmdk_close(v);
	return r;
}

static bool san_available(const struct disk_spec *spec, char *why,
			  size_t size)
{
	if (spec->vs && spec->vm && spec->ds_path)
		return true;
	snprintf(why, size, "needs a vSphere mount (-o lun= reads a VMFS "
			    "volume offline)");
	return false;
}

static int san_open(const struct disk_spec *spec, struct disk **out)
{
	const char *close = strchr(spec->ds_path, ']'), *rel;
	struct disk_spec one = *spec;
	struct san_vol *sv;
	char name[256], why[1024] = "", *path;
	int r;

	if (spec->ds_path[0] != '[' || !close ||
	    (size_t)(close - spec->ds_path) > sizeof(name) - 1) {
		vmdkfs_error("\"%s\" is not a datastore path", spec->ds_path);
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(close - spec->ds_path - 1),
		 spec->ds_path + 1);
	rel = close + 1;
	while (*rel == ' ')
		rel++;
	r = get_volume(spec, name, &sv, why, sizeof(why));
	if (r < 0) {
		vmdkfs_error("%s", why);
		return r;
	}
	if (asprintf(&path, "/%s", rel) < 0) {
		vol_put(sv);
		return -ENOMEM;
	}
	one.path = path;
	one.opener = &sv->op;
	if (!spec->readonly) {
		r = check_writable(sv, path);
		if (r < 0) {
			free(path);
			vol_put(sv);
			return r;
		}
		one.opener = &sv->op_rw;
		one.keep_descriptor = true;
	}
	r = vmdk_disk_open(&one, "san", vol_put, sv, out);
	free(path);
	if (r < 0) {
		vol_put(sv);
		return r;
	}
	(*out)->lun = strdup(sv->desc);
	return 0;
}

const struct transport san_transport = {
    .name = "san",
    .available = san_available,
    .open_disk = san_open,
};

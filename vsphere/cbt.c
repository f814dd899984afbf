/* Changed Block Tracking: QueryChangedDiskAreas in windows, and the checks
 * that turn its faults into messages saying what to do. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "cbt.h"
#include "vsphere.h"

/* The VirtualDisk element of device KEY in a device list, or NULL. */
static xmlNodePtr find_disk(xmlNodePtr list, int key)
{
	xmlNodePtr k;

	for (k = list ? list->children : NULL; k; k = k->next) {
		char *t, *ks;
		bool hit;

		if (k->type != XML_ELEMENT_NODE)
			continue;
		t = vs_xsi_type(k);
		ks = vs_text(k, "key");
		hit = t && strcmp(t, "VirtualDisk") == 0 && ks &&
		      atoi(ks) == key;
		free(t);
		free(ks);
		if (hit)
			return k;
	}
	return NULL;
}

int vs_cbt_check(struct vs_conn *c, const char *vm, const char *snap, int key)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr val, disk, backing;
	char *s = NULL, *mode = NULL, *btype = NULL, *compat = NULL;
	int r;

	r = vs_prop(c, "VirtualMachine", vm, "config.changeTrackingEnabled",
		     &doc, &val);
	if (r < 0)
		return r;
	s = val ? vs_text(val, NULL) : NULL;
	xmlFreeDoc(doc);
	doc = NULL;
	if (!s || strcmp(s, "true") != 0) {
		vmdkfs_error("changed block tracking is not enabled on VM %s "
			     "(config.changeTrackingEnabled is %s): enable it "
			     "(ReconfigVM_Task with changeTrackingEnabled "
			     "true), take a snapshot and make a full backup",
			     vm, s ? s : "unset");
		free(s);
		return -EOPNOTSUPP;
	}
	free(s);
	r = snap ? vs_prop(c, "VirtualMachineSnapshot", snap,
			    "config.hardware.device", &doc, &val)
		 : vs_prop(c, "VirtualMachine", vm, "config.hardware.device",
			    &doc, &val);
	if (r < 0)
		return r;
	disk = find_disk(val, key);
	backing = disk ? vs_find(disk, "backing") : NULL;
	if (!disk) {
		vmdkfs_error("%s has no disk with device key %d",
			     snap ? snap : vm, key);
		r = -ENOENT;
		goto out;
	}
	btype = backing ? vs_xsi_type(backing) : NULL;
	mode = backing ? vs_text(backing, "diskMode") : NULL;
	compat = backing ? vs_text(backing, "compatibilityMode") : NULL;
	if (mode && strncmp(mode, "independent", 11) == 0) {
		vmdkfs_error("disk %d of %s is %s: independent disks are not "
			     "part of snapshots and cannot track changed "
			     "blocks; back it up whole",
			     key, vm, mode);
		r = -EOPNOTSUPP;
	} else if (btype && strstr(btype, "RawDiskMapping") && compat &&
		   strcmp(compat, "physicalMode") == 0) {
		vmdkfs_error("disk %d of %s is a physical-mode raw device "
			     "mapping: it cannot track changed blocks",
			     key, vm);
		r = -EOPNOTSUPP;
	}
out:
	free(btype);
	free(mode);
	free(compat);
	xmlFreeDoc(doc);
	return r;
}

static int cmp_area(const void *a, const void *b)
{
	const struct vs_area *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

void vs_areas_merge(struct vs_area *a, size_t *n)
{
	size_t i, o = 0;

	if (*n == 0)
		return;
	qsort(a, *n, sizeof(*a), cmp_area);
	for (i = 1; i < *n; i++) {
		uint64_t end = a[o].off + a[o].len;

		if (a[i].off <= end) {
			if (a[i].off + a[i].len > end)
				a[o].len = a[i].off + a[i].len - a[o].off;
		} else {
			a[++o] = a[i];
		}
	}
	*n = o + 1;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || *s == '-' || !*s)
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* One answer: check and append its areas.  *NEXT: where the next window
 * starts. */
static int take_answer(xmlDocPtr doc, uint64_t start, uint64_t capacity,
		       struct vs_area **a, size_t *n, size_t *cap,
		       uint64_t *next)
{
	xmlNodePtr rv = vs_find(xmlDocGetRootElement(doc), "returnval"), k;
	char *so = NULL, *ln = NULL;
	uint64_t aoff = 0, alen = 0;
	int r = 0;

	for (k = rv ? rv->children : NULL; k; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		if (!strcmp((const char *)k->name, "startOffset"))
			so = vs_text(k, NULL);
		else if (!strcmp((const char *)k->name, "length"))
			ln = vs_text(k, NULL);
	}
	if (!parse_u64(so, &aoff) || !parse_u64(ln, &alen)) {
		vmdkfs_error("QueryChangedDiskAreas: an answer without "
			     "startOffset/length");
		r = -EPROTO;
		goto out;
	}
	if (aoff != start || alen == 0 || alen > capacity - start) {
		vmdkfs_error("QueryChangedDiskAreas: asked from %" PRIu64
			     ", answered startOffset %" PRIu64
			     " length %" PRIu64 " (the disk has %" PRIu64
			     " bytes)",
			     start, aoff, alen, capacity);
		r = -EPROTO;
		goto out;
	}
	for (k = rv->children; k; k = k->next) {
		char *s1, *s2;
		uint64_t o, l;
		bool good;

		if (k->type != XML_ELEMENT_NODE ||
		    strcmp((const char *)k->name, "changedArea"))
			continue;
		s1 = vs_text(k, "start");
		s2 = vs_text(k, "length");
		good = parse_u64(s1, &o) && parse_u64(s2, &l);
		free(s1);
		free(s2);
		if (!good || o > capacity || l > capacity - o) {
			vmdkfs_error("QueryChangedDiskAreas: a changed area "
				     "at %" PRIu64 ", %" PRIu64
				     " bytes, lies outside the disk's "
				     "%" PRIu64 " bytes",
				     good ? o : 0, good ? l : 0, capacity);
			r = -EPROTO;
			goto out;
		}
		if (l == 0)
			continue;
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			struct vs_area *na = realloc(*a, nc * sizeof(*na));

			if (!na) {
				r = -ENOMEM;
				goto out;
			}
			*a = na;
			*cap = nc;
		}
		(*a)[(*n)++] = (struct vs_area){o, l};
	}
	*next = start + alen;
out:
	free(so);
	free(ln);
	return r;
}

/* Does the fault message say the host refused the change id (FileFault:
 * no tracking data for it; InvalidArgument changeId; NotFound)? */
static bool refused_id(const char *msg)
{
	return strstr(msg, "QueryChangedDiskAreas: FileFault") ||
	       strstr(msg, "QueryChangedDiskAreas: NotFound") ||
	       (strstr(msg, "QueryChangedDiskAreas: InvalidArgument") &&
		strstr(msg, "changeId"));
}

int vs_changed_areas(struct vs_conn *c, const char *vm, const char *snap,
		     int key, uint64_t capacity, const char *change_id,
		     struct vs_area **out, size_t *n)
{
	char *id = vs_xml_escape(change_id), *sn = NULL, *body = NULL;
	struct vs_area *a = NULL;
	size_t na = 0, cap = 0;
	uint64_t pos = 0;
	int r = 0, calls = 0;

	*out = NULL;
	*n = 0;
	if (!id || (snap && !(sn = vs_xml_escape(snap)))) {
		r = -ENOMEM;
		goto out;
	}
	while (pos < capacity && r == 0) {
		xmlDocPtr doc = NULL;

		free(body);
		body = NULL;
		if (asprintf(&body,
			     "%s%s%s<deviceKey>%d</deviceKey>"
			     "<startOffset>%" PRIu64 "</startOffset>"
			     "<changeId>%s</changeId>",
			     sn ? "<snapshot type=\"VirtualMachineSnapshot\">"
				: "",
			     sn ? sn : "", sn ? "</snapshot>" : "", key, pos,
			     id) < 0) {
			body = NULL;
			r = -ENOMEM;
			break;
		}
		r = vs_call(c, "QueryChangedDiskAreas", "VirtualMachine", vm,
			    body, &doc);
		if (r < 0)
			break;
		r = take_answer(doc, pos, capacity, &a, &na, &cap, &pos);
		xmlFreeDoc(doc);
		calls++;
	}
	if (r < 0 && r != -ENOMEM && r != -EPROTO &&
	    strcmp(change_id, "*") != 0 && refused_id(vmdkfs_errmsg())) {
		char *msg = strdup(vmdkfs_errmsg());

		vmdkfs_error("disk %d of %s: the changes since change id "
			     "\"%s\" are not known (%s): the id is no longer "
			     "valid (changed block tracking was reset or "
			     "turned off, or the id is of another disk); a "
			     "full backup is needed",
			     key, vm, change_id, msg ? msg : "?");
		free(msg);
		r = -ESTALE;
	} else if (r < 0 && r != -ENOMEM && r != -EPROTO) {
		char *msg = strdup(vmdkfs_errmsg());

		vmdkfs_error("disk %d of %s: the changes since change id "
			     "\"%s\" are not known: %s",
			     key, vm, change_id, msg ? msg : "?");
		free(msg);
	}
	if (r < 0) {
		free(a);
		goto out;
	}
	vs_areas_merge(a, &na);
	*out = a;
	*n = na;
	vmdkfs_log(LOG_INFO,
		   "QueryChangedDiskAreas %s disk %d since %s: %zu areas in "
		   "%d calls",
		   snap ? snap : vm, key, change_id, na, calls);
out:
	free(id);
	free(sn);
	free(body);
	return r;
}

/* Changed block tracking in the tree: the DISK.changed.json /
 * DISK.changed.raw views of changed_since=, `vmdkfs apply-changes` and
 * `vmdkfs status --json` (the holes from "*" of disks read over the LAN
 * are transports/vm.c's vm_cbt_wrap).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/source.h"
#include "../transports/areas.h"
#include "../vsphere/cbt.h"
#include "../vsphere/vsphere.h"
#include "cbt.h"
#include "fs.h"

static const char *disk_name(const struct vs_disk *vd)
{
	return vd->label ? vd->label : vd->file;
}

/* ---- The views ---- */

static void json_put(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(fp, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(fp, "\\u%04x", ch);
		else
			fputc(ch, fp);
	}
	fputc('"', fp);
}

/* The node of F in folder DIR. */
static struct fs_node *node_of(struct fs_node *dir, const struct fs_file *f)
{
	size_t i;

	for (i = 0; dir && i < dir->nkids; i++)
		if (dir->kids[i]->file == f)
			return dir->kids[i];
	return NULL;
}

static int copy_facts(struct fs_file *to, const struct fs_file *from)
{
	to->ds_path = from->ds_path ? strdup(from->ds_path) : NULL;
	to->change_id = from->change_id ? strdup(from->change_id) : NULL;
	to->vm = from->vm ? strdup(from->vm) : NULL;
	to->snapshot = from->snapshot ? strdup(from->snapshot) : NULL;
	to->device_key = from->device_key;
	return (from->ds_path && !to->ds_path) || (from->vm && !to->vm)
		   ? -ENOMEM
		   : 0;
}

int fs_cbt_views(struct vs_conn *c, const char *vm, const char *snap,
		 const char *dir, struct fs_file *f, const struct vs_disk *vd)
{
	const char *since = config_changed_since(&fs_cfg, vd->key);
	struct fs_node *dn, *node, *vn;
	struct vs_area *a = NULL;
	struct disk *view = NULL;
	struct source *src = NULL;
	char base[256], name[300], *json = NULL, *srcname = NULL;
	size_t n = 0, i, jlen = 0;
	uint64_t bytes = 0;
	FILE *fp;
	int r;

	if (!since)
		return 0;
	dn = dir[0] ? fs_mkdir(fs_root(), dir) : fs_root();
	node = node_of(dn, f);
	if (!node || !areas_is(f->disk))
		return -EINVAL;
	r = vs_cbt_check(c, vm, snap, vd->key);
	if (r == 0)
		r = vs_changed_areas(c, vm, snap, vd->key, f->disk->size, since,
				     &a, &n);
	if (r < 0) {
		char *m = strdup(vmdkfs_errmsg());

		vmdkfs_error("%s (%s): changed_since=%s: %s", vd->file,
			     disk_name(vd), since, m ? m : "?");
		free(m);
		return r;
	}
	snprintf(base, sizeof(base), "%s", node->name);
	if (strlen(base) > 4 && !strcmp(base + strlen(base) - 4, ".raw"))
		base[strlen(base) - 4] = '\0';
	for (i = 0; i < n; i++)
		bytes += a[i].len;

	/* DISK.changed.json */
	fp = open_memstream(&json, &jlen);
	if (!fp) {
		r = -ENOMEM;
		goto out;
	}
	fprintf(fp, "{\n  \"disk\": ");
	json_put(fp, node->name);
	fprintf(fp, ",\n  \"datastore_path\": ");
	json_put(fp, vd->file);
	fprintf(fp, ",\n  \"vm\": ");
	json_put(fp, vm);
	fprintf(fp, ",\n  \"snapshot\": ");
	if (snap)
		json_put(fp, snap);
	else
		fputs("null", fp);
	fprintf(fp, ",\n  \"device_key\": %d,\n  \"capacity\": %" PRIu64
		    ",\n  \"base_change_id\": ",
		vd->key, f->disk->size);
	json_put(fp, since);
	fprintf(fp, ",\n  \"change_id\": ");
	if (vd->change_id)
		json_put(fp, vd->change_id);
	else
		fputs("null", fp);
	fprintf(fp, ",\n  \"changed_bytes\": %" PRIu64 ",\n  \"areas\": [",
		bytes);
	for (i = 0; i < n; i++)
		fprintf(fp, "%s\n    {\"offset\": %" PRIu64 ", \"length\": %" PRIu64 "}",
			i ? "," : "", a[i].off, a[i].len);
	fprintf(fp, "%s]\n}\n", n ? "\n  " : "");
	if (fclose(fp) != 0) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(name, sizeof(name), "%s.changed.json", base);
	r = mem_source_new(name, json, jlen, &src);
	if (r < 0)
		goto out;
	if (!fs_add_file(dn, name, src, time(NULL))) {
		source_close(src);
		vmdkfs_error("%s/%s: the name is taken", dir, name);
		r = -EEXIST;
		goto out;
	}

	/* DISK.changed.raw */
	r = areas_share(f->disk, AREAS_MASK, (const struct disk_area *)a, n,
			&view);
	if (r < 0)
		goto out;
	snprintf(name, sizeof(name), "%s.changed", base);
	srcname = strdup(f->source ? f->source : vd->file);
	vn = srcname ? fs_add_disk(dn, name, view, srcname) : NULL;
	if (!vn) {
		disk_close(view);
		free(srcname);
		r = -ENOMEM;
		goto out;
	}
	r = copy_facts(vn->file, f);
	log_info("%s: %zu areas, %" PRIu64 " bytes changed since %s "
		 "(snapshot change id %s)",
		 vn->name, n, bytes, since,
		 vd->change_id ? vd->change_id : "none");
out:
	free(json);
	free(a);
	return r;
}

/* ---- vmdkfs apply-changes ---- */

/* The areas of a DISK.changed.json (its "capacity" in *CAP). */
static int read_json_areas(const char *path, uint64_t *cap,
			   struct vs_area **out, size_t *n)
{
	char *text = NULL, *p;
	size_t len = 0, cap_a = 0;
	FILE *fp = fopen(path, "re");
	struct vs_area *a = NULL;
	ssize_t got;

	*out = NULL;
	*n = 0;
	if (!fp)
		return -errno;
	got = getdelim(&text, &len, '\0', fp);
	fclose(fp);
	if (got < 0) {
		free(text);
		return -EIO;
	}
	p = strstr(text, "\"capacity\":");
	if (!p || sscanf(p + 11, " %" SCNu64, cap) != 1)
		goto bad;
	p = strstr(text, "\"areas\":");
	if (!p)
		goto bad;
	while ((p = strstr(p, "\"offset\":"))) {
		uint64_t o, l;
		char *q = strstr(p, "\"length\":");

		if (!q || sscanf(p + 9, " %" SCNu64, &o) != 1 ||
		    sscanf(q + 9, " %" SCNu64, &l) != 1)
			goto bad;
		if (*n == cap_a) {
			struct vs_area *na;

			cap_a = cap_a ? cap_a * 2 : 64;
			na = realloc(a, cap_a * sizeof(*a));
			if (!na) {
				free(a);
				free(text);
				return -ENOMEM;
			}
			a = na;
		}
		a[(*n)++] = (struct vs_area){o, l};
		p = q + 9;
	}
	free(text);
	*out = a;
	return 0;
bad:
	free(a);
	free(text);
	*n = 0;
	return -EPROTO;
}

/* The data areas of FD (SIZE bytes) through SEEK_DATA / SEEK_HOLE. */
static int seek_areas(int fd, uint64_t size, struct vs_area **out, size_t *n)
{
	struct vs_area *a = NULL;
	size_t cap = 0;
	off_t pos = 0;

	*n = 0;
	while ((uint64_t)pos < size) {
		off_t d = lseek(fd, pos, SEEK_DATA), h;

		if (d < 0 && errno == ENXIO)
			break;
		if (d < 0)
			goto fail;
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			goto fail;
		if (*n == cap) {
			struct vs_area *na;

			cap = cap ? cap * 2 : 64;
			na = realloc(a, cap * sizeof(*a));
			if (!na) {
				errno = ENOMEM;
				goto fail;
			}
			a = na;
		}
		a[(*n)++] = (struct vs_area){(uint64_t)d, (uint64_t)(h - d)};
		pos = h;
	}
	*out = a;
	return 0;
fail:
	free(a);
	return -errno;
}

/* Copy LEN bytes at OFF from IN to OUT. */
static int copy_range(int in, int out, uint64_t off, uint64_t len, char *buf,
		      size_t bsize)
{
	while (len > 0) {
		size_t want = len < bsize ? (size_t)len : bsize, got = 0;

		while (got < want) {
			ssize_t k = pread(in, buf + got, want - got,
					  (off_t)(off + got));

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				return k < 0 ? -errno : -EIO;
			got += (size_t)k;
		}
		for (size_t put = 0; put < want;) {
			ssize_t k = pwrite(out, buf + put, want - put,
					   (off_t)(off + put));

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				return k < 0 ? -errno : -EIO;
			put += (size_t)k;
		}
		off += want;
		len -= want;
	}
	return 0;
}

int fs_apply_changes_main(int argc, char **argv)
{
	const char *raw, *copy;
	char json[4096], *buf = NULL;
	struct vs_area *a = NULL;
	uint64_t size, csize, jcap = 0, bytes = 0;
	size_t n = 0, i, bsize = 1u << 20;
	struct stat st;
	bool from_json = false;
	int in = -1, out = -1, r, rc = 1;

	if (argc != 3) {
		fprintf(stderr,
			"usage: vmdkfs apply-changes MOUNT/.../DISK.changed.raw "
			"FULLCOPY\n");
		return 2;
	}
	raw = argv[1];
	copy = argv[2];
	in = open(raw, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0) {
		fprintf(stderr, "vmdkfs: %s: %s\n", raw, strerror(errno));
		goto out;
	}
	size = (uint64_t)st.st_size;
	/* The areas: from the sibling DISK.changed.json, else the holes of
	 * the view itself. */
	snprintf(json, sizeof(json), "%s", raw);
	if (strlen(json) > 12 &&
	    !strcmp(json + strlen(json) - 12, ".changed.raw")) {
		strcpy(json + strlen(json) - 4, ".json");
		r = read_json_areas(json, &jcap, &a, &n);
		if (r == 0) {
			from_json = true;
			if (jcap != size) {
				fprintf(stderr,
					"vmdkfs: %s says the disk has %" PRIu64
					" bytes, %s has %" PRIu64 "\n",
					json, jcap, raw, size);
				goto out;
			}
		} else if (r != -ENOENT) {
			fprintf(stderr, "vmdkfs: %s: %s\n", json,
				r == -EPROTO ? "not a DISK.changed.json"
					     : strerror(-r));
			goto out;
		}
	}
	if (!from_json) {
		r = seek_areas(in, size, &a, &n);
		if (r < 0) {
			fprintf(stderr, "vmdkfs: %s: SEEK_DATA: %s\n", raw,
				strerror(-r));
			goto out;
		}
	}
	vs_areas_merge(a, &n);
	for (i = 0; i < n; i++)
		if (a[i].off > size || a[i].len > size - a[i].off) {
			fprintf(stderr,
				"vmdkfs: %s: an area at %" PRIu64 " (%" PRIu64
				" bytes) lies outside the disk\n",
				from_json ? json : raw, a[i].off, a[i].len);
			goto out;
		}
	out = open(copy, O_RDWR | O_CLOEXEC);
	if (out < 0) {
		fprintf(stderr, "vmdkfs: %s: %s\n", copy, strerror(errno));
		goto out;
	}
	{
		off_t e = lseek(out, 0, SEEK_END);

		csize = e < 0 ? 0 : (uint64_t)e;
	}
	if (csize != size) {
		fprintf(stderr,
			"vmdkfs: %s has %" PRIu64 " bytes but the disk %" PRIu64
			": not a full copy of this disk; nothing written\n",
			copy, csize, size);
		goto out;
	}
	buf = malloc(bsize);
	if (!buf) {
		fprintf(stderr, "vmdkfs: out of memory\n");
		goto out;
	}
	for (i = 0; i < n; i++) {
		r = copy_range(in, out, a[i].off, a[i].len, buf, bsize);
		if (r < 0) {
			fprintf(stderr,
				"vmdkfs: copying %" PRIu64 "+%" PRIu64
				" from %s to %s: %s (the copy is now partly "
				"updated: apply again)\n",
				a[i].off, a[i].len, raw, copy, strerror(-r));
			goto out;
		}
		bytes += a[i].len;
	}
	if (fsync(out) < 0) {
		fprintf(stderr, "vmdkfs: fsync %s: %s\n", copy,
			strerror(errno));
		goto out;
	}
	printf("apply-changes: %zu areas, %" PRIu64 " bytes written into %s "
	       "(areas from %s)\n",
	       n, bytes, copy, from_json ? json : "SEEK_DATA");
	rc = 0;
out:
	if (out >= 0 && close(out) < 0 && rc == 0) {
		fprintf(stderr, "vmdkfs: close %s: %s\n", copy,
			strerror(errno));
		rc = 1;
	}
	if (in >= 0)
		close(in);
	free(buf);
	free(a);
	return rc;
}

/* ---- vmdkfs status --json ---- */

static bool xattr(const char *path, const char *name, char *val, size_t size)
{
	char full[64];
	ssize_t n;

	snprintf(full, sizeof(full), "user.vmdkfs.%s", name);
	n = getxattr(path, full, val, size - 1);
	val[n > 0 ? n : 0] = '\0';
	return n > 0;
}

static void status_walk_json(const char *dir, const char *shown, dev_t dev,
			     int depth, int *count)
{
	static const char *const keys[] = {"transport", "capacity",
					   "device_key", "change_id",
					   "datastore_path", "vm",
					   "snapshot", "path"};
	static const bool number[] = {false, true, true, false,
				      false, false, false, false};
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char p[4096], s[4096], val[1024];
		struct stat st;
		size_t i, len;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		snprintf(s, sizeof(s), "%s%s", shown, de->d_name);
		if (lstat(p, &st) < 0 || st.st_dev != dev)
			continue;
		if (S_ISDIR(st.st_mode) && depth < 16) {
			strncat(s, "/", sizeof(s) - strlen(s) - 1);
			status_walk_json(p, s, dev, depth + 1, count);
			continue;
		}
		if (!S_ISREG(st.st_mode) || !xattr(p, "transport", val, 64))
			continue;
		printf("%s\n    {\"file\": ", (*count)++ ? "," : "");
		json_put(stdout, s);
		len = strlen(s);
		printf(", \"view\": \"%s\"",
		       len > 12 && !strcmp(s + len - 12, ".changed.raw")
			   ? "changed"
			   : "disk");
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			if (!xattr(p, keys[i], val, sizeof(val)))
				continue;
			printf(", \"%s\": ", keys[i]);
			if (number[i])
				printf("%s", val);
			else
				json_put(stdout, val);
		}
		printf("}");
	}
	if (d)
		closedir(d);
}

int fs_status_json(const char *mountpoint)
{
	struct stat top;
	int count = 0;

	if (stat(mountpoint, &top) < 0) {
		fprintf(stderr, "vmdkfs: %s: %s\n", mountpoint,
			strerror(errno));
		return 1;
	}
	if (!fs_vmdkfs_mount(mountpoint, NULL, NULL)) {
		fprintf(stderr, "vmdkfs: %s is not a vmdkfs mount\n",
			mountpoint);
		return 1;
	}
	printf("{\"mount\": ");
	json_put(stdout, mountpoint);
	printf(", \"disks\": [");
	status_walk_json(mountpoint, "", top.st_dev, 0, &count);
	printf("%s]}\n", count ? "\n  " : "");
	return 0;
}

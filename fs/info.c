/* vmdkfs info [--json] DISK.vmdk: the chain, its extents and sizes. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "../common/err.h"
#include "../transports/lun.h"
#include "../vmdk/vmdk.h"
#include "../vmfs/vmfs.h"
#include "cbt.h"
#include "fs.h"

static void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_text(struct vmdk *top)
{
	struct vmdk *v;
	int link = 0;

	printf("disk: %s\n", vmdk_path(top));
	printf("capacity: %llu bytes (%llu sectors)\n",
	       (unsigned long long)vmdk_sectors(top) * VMDK_SECTOR,
	       (unsigned long long)vmdk_sectors(top));
	for (v = top; v; v = vmdk_parent(v), link++) {
		const struct vmdk_desc *d = vmdk_descriptor(v);
		size_t i;

		printf("link %d: %s\n", link, vmdk_path(v));
		printf("  createType: %s\n",
		       d->create_type ? d->create_type : "(none)");
		printf("  CID: %08x  parentCID: %08x\n", d->cid, d->parent_cid);
		if (d->parent_hint)
			printf("  parentFileNameHint: %s\n", d->parent_hint);
		printf("  capacity: %llu sectors\n",
		       (unsigned long long)vmdk_sectors(v));
		for (i = 0; i < vmdk_extent_count(v); i++) {
			struct vmdk_extent_info e;

			vmdk_extent_get(v, i, &e);
			printf(
			    "  extent %zu: %s %s %llu sectors at sector %llu",
			    i, vmdk_access_name(e.access),
			    vmdk_type_name(e.type),
			    (unsigned long long)e.sectors,
			    (unsigned long long)e.start);
			if (e.path)
				printf(", file %s (%llu bytes)", e.path,
				       (unsigned long long)e.file_size);
			if (e.offset)
				printf(", offset %llu sectors",
				       (unsigned long long)e.offset);
			printf(", format %s", e.format);
			if (e.grain)
				printf(", grain %llu sectors (%llu KiB), %u "
				       "entries per grain table",
				       (unsigned long long)e.grain,
				       (unsigned long long)e.grain / 2,
				       e.gt_entries);
			printf("\n");
		}
	}
}

static void print_json(struct vmdk *top)
{
	struct vmdk *v;

	printf("{\"disk\": ");
	json_str(vmdk_path(top));
	printf(", \"capacity\": %llu, \"chain\": [",
	       (unsigned long long)vmdk_sectors(top) * VMDK_SECTOR);
	for (v = top; v; v = vmdk_parent(v)) {
		const struct vmdk_desc *d = vmdk_descriptor(v);
		size_t i;

		printf("%s{\"file\": ", v == top ? "" : ", ");
		json_str(vmdk_path(v));
		printf(", \"createType\": ");
		json_str(d->create_type ? d->create_type : "");
		printf(", \"cid\": \"%08x\", \"parentCID\": \"%08x\"", d->cid,
		       d->parent_cid);
		printf(", \"parentFileNameHint\": ");
		if (d->parent_hint)
			json_str(d->parent_hint);
		else
			printf("null");
		printf(", \"capacity\": %llu, \"extents\": [",
		       (unsigned long long)vmdk_sectors(v) * VMDK_SECTOR);
		for (i = 0; i < vmdk_extent_count(v); i++) {
			struct vmdk_extent_info e;

			vmdk_extent_get(v, i, &e);
			printf("%s{\"access\": \"%s\", \"type\": \"%s\", "
			       "\"start\": %llu, \"sectors\": %llu, \"file\": ",
			       i ? ", " : "", vmdk_access_name(e.access),
			       vmdk_type_name(e.type),
			       (unsigned long long)e.start,
			       (unsigned long long)e.sectors);
			if (e.path)
				json_str(e.path);
			else
				printf("null");
			printf(", \"offset\": %llu, \"format\": \"%s\", "
			       "\"grain\": %llu, \"gtEntries\": %u, "
			       "\"fileSize\": %llu}",
			       (unsigned long long)e.offset, e.format,
			       (unsigned long long)e.grain, e.gt_entries,
			       (unsigned long long)e.file_size);
		}
		printf("]}");
	}
	printf("]}\n");
}

static void print_volume(struct vmfs *vol, const char *desc, bool json)
{
	struct vmfs_info in;

	vmfs_get_info(vol, &in);
	if (json) {
		printf("{\"lun\": ");
		json_str(desc);
		printf(", \"vmfs\": %d, \"version\": \"%u.%u\", \"uuid\": ",
		       in.version, in.major, in.minor);
		json_str(in.uuid);
		printf(", \"label\": ");
		json_str(in.label);
		printf(", \"size\": %llu, \"blockSize\": %llu, "
		       "\"devices\": %u}\n",
		       (unsigned long long)in.size,
		       (unsigned long long)in.block_size, in.devices);
		return;
	}
	printf("lun: %s\n", desc);
	printf("volume: VMFS%d (%u.%u) \"%s\" %s, %llu bytes, block %llu, "
	       "%u device(s)\n",
	       in.version, in.major, in.minor, in.label, in.uuid,
	       (unsigned long long)in.size, (unsigned long long)in.block_size,
	       in.devices);
}

int fs_info_main(int argc, char **argv)
{
	struct vmdk_options o = {0};
	struct source_opener op;
	struct vmfs *vol = NULL;
	struct vmdk *v;
	bool json = false;
	const char *path = NULL, *lun = NULL;
	char *desc = NULL;
	unsigned partno = 0;
	int i, r;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--lun") == 0 && i + 1 < argc) {
			lun = argv[++i];
		} else if (strcmp(argv[i], "--partition") == 0 &&
			   i + 1 < argc) {
			partno = (unsigned)atoi(argv[++i]);
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "vmdkfs info: unknown option %s\n",
				argv[i]);
			return 2;
		} else if (path) {
			fprintf(stderr, "vmdkfs info: one disk at a time\n");
			return 2;
		} else {
			path = argv[i];
		}
	}
	if (!path && !lun) {
		fprintf(stderr, "usage: vmdkfs info [--json] DISK.vmdk\n"
				"       vmdkfs info [--json] --lun DEV[:DEV...] "
				"[--partition N] [/PATH/IN/VOLUME.vmdk]\n");
		return 2;
	}
	if (lun) {
		r = lun_open_vmfs_list(lun, partno, false, &vol, &desc);
		if (r < 0) {
			fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
			return 1;
		}
		if (!path) {
			print_volume(vol, desc, json);
			vmfs_close(vol);
			free(desc);
			return 0;
		}
		if (!json)
			print_volume(vol, desc, false);
		vmfs_opener_init(vol, &op);
		o.opener = &op;
	}
	r = vmdk_open(path, &o, &v);
	if (r < 0) {
		fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
		if (vol)
			vmfs_close(vol);
		free(desc);
		return 1;
	}
	if (json)
		print_json(v);
	else
		print_text(v);
	vmdk_close(v);
	if (vol)
		vmfs_close(vol);
	free(desc);
	return 0;
}

/* vmdkfs status MOUNTPOINT: each flat file of a mount, with the transport
 * it uses and where it comes from (read from the files' xattrs). */
/* One line for the flat file PATH; false if it is not one (a plain file
 * of a lun= mount has no transport). */
static bool status_file(const char *path, const char *shown)
{
	static const char *const keys[] = {"transport", "capacity",
					   "datastore_path", "path", "lun"};
	char val[5][1024];
	size_t i;

	for (i = 0; i < 5; i++) {
		char name[64];
		ssize_t n;

		snprintf(name, sizeof(name), "user.vmdkfs.%s", keys[i]);
		n = getxattr(path, name, val[i], sizeof(val[i]) - 1);
		val[i][n > 0 ? n : 0] = '\0';
	}
	if (!val[0][0])
		return false;
	printf("%-40s %-7s %14s  %s%s%s%s\n", shown, val[0], val[1],
	       val[2][0] ? val[2] : val[3], val[4][0] ? " (LUN " : "", val[4],
	       val[4][0] ? ")" : "");
	return true;
}

/* The flat files under DIR (shown as PREFIX...), at most 16 folders deep,
 * never into another file system than DEV's.  How many were shown. */
static int status_walk(const char *dir, const char *prefix, dev_t dev,
		       int depth)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	while (d && (de = readdir(d))) {
		char p[4096], shown[4096];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		snprintf(shown, sizeof(shown), "%s%s", prefix, de->d_name);
		if (lstat(p, &st) < 0 || st.st_dev != dev)
			continue;
		if (S_ISDIR(st.st_mode) && depth < 16 &&
		    strlen(shown) + 2 < sizeof(shown)) {
			strcat(shown, "/");
			n += status_walk(p, shown, dev, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			n += status_file(p, shown);
		}
	}
	if (d)
		closedir(d);
	return n;
}

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] &&
		    s[3]) {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

bool fs_vmdkfs_mount(const char *dir, unsigned *major, unsigned *minor)
{
	char *want = realpath(dir, NULL), *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *fp;

	if (!want)
		return false;
	fp = fopen("/proc/self/mountinfo", "re");
	while (fp && getline(&line, &cap, fp) > 0) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - TYPE SOURCE ... */
		char mp[4096], type[256], src[256];
		const char *dash = strstr(line, " - ");
		unsigned ma, mi;

		if (!dash ||
		    sscanf(line, "%*s %*s %u:%u %*s %4095s", &ma, &mi, mp) !=
			3 ||
		    sscanf(dash, " - %255s %255s", type, src) != 2)
			continue;
		unescape(mp);
		/* The last mount on the point is the one seen. */
		if (strcmp(mp, want) == 0) {
			found = strcmp(type, "fuse.vmdkfs") == 0 ||
				strcmp(src, "vmdkfs") == 0;
			if (major)
				*major = ma;
			if (minor)
				*minor = mi;
		}
	}
	if (fp)
		fclose(fp);
	free(line);
	free(want);
	return found;
}

int fs_status_main(int argc, char **argv)
{
	struct stat top;
	DIR *d;
	int n;

	if (argc == 3 && strcmp(argv[1], "--json") == 0)
		return fs_status_json(argv[2]); /* fs/cbt.c */
	if (argc != 2) {
		fprintf(stderr, "usage: vmdkfs status [--json] MOUNTPOINT\n");
		return 2;
	}
	if (stat(argv[1], &top) < 0) {
		fprintf(stderr, "vmdkfs: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (!fs_vmdkfs_mount(argv[1], NULL, NULL)) {
		fprintf(stderr, "vmdkfs: %s is not a vmdkfs mount\n", argv[1]);
		return 1;
	}
	d = opendir(argv[1]);
	if (!d) {
		fprintf(stderr, "vmdkfs: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	closedir(d);
	printf("%-40s %-7s %14s  %s\n", "FILE", "MODE", "BYTES", "SOURCE");
	n = status_walk(argv[1], "", top.st_dev, 0);
	if (n == 0)
		printf("(no flat files: this mount shows no disk)\n");
	return 0;
}

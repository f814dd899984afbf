/* vmfs-tool: the VMFS reader on the command line, for the tests.
 *
 *   vmfs-tool info DEV...            the volume's geometry
 *   vmfs-tool ls PATH DEV...         a directory: KIND PERMS SIZE NAME
 *   vmfs-tool tree PATH DEV...       everything below PATH, recursively:
 *                                    KIND PERMS SIZE MTIME PATH [-> TARGET]
 *                                    (PATH relative to the given one)
 *   vmfs-tool stat PATH DEV...       the attributes, one per line
 *   vmfs-tool cat PATH DEV...        the bytes
 *   vmfs-tool read PATH OFF LEN DEV... LEN bytes at OFF
 *   vmfs-tool readlink PATH DEV...   a symlink's target
 *   vmfs-tool map PATH DEV...        data/hole/zero extents: KIND OFF LEN
 *   vmfs-tool vmdk-cat PATH DEV...   the disk of a VMDK stored on the volume
 *                                    (through vmdk/, opening its extents
 *                                    inside the volume)
 *   vmfs-tool seed OUT DEV...        write to OUT, in the fuzzer's input
 *                                    format, the non-zero sectors that the
 *                                    fuzzer's walk reads (a fuzz seed)
 *
 * A DEV of the form chunks:FILE is a file in the fuzzer's input format
 * (one or two devices).
 * KIND: d directory, f file, l symlink, r raw device mapping.  PERMS is
 * octal without leading zeros (as find -printf %m).  Exit status 0, or 1
 * with the library's message on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/err.h"
#include "../../vmdk/vmdk.h"
#include "../../vmfs/vmfs.h"
#include "../fuzz/vmfs-walk.h"

static const char kinds[] = "dflr";

static int die(const char *what)
{
	fprintf(stderr, "vmfs-tool: %s: %s\n", what,
		vmdkfs_errmsg()[0] ? vmdkfs_errmsg() : "failed");
	return 1;
}

static int write_all(const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(1, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			vmdkfs_error("stdout: %m");
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct ls {
	struct vmfs *v;
	const char *dir; /* path of the directory, "" for the root */
	bool recurse;
	int err;
};

static int ls_cb(void *opaque, const struct vmfs_dirent *e)
{
	struct ls *l = opaque, sub;
	struct vmfs_stat st;
	char *path, target[4097];
	int r;

	if (asprintf(&path, "%s/%s", l->dir, e->name) < 0)
		return -ENOMEM;
	r = vmfs_stat_addr(l->v, e->addr, &st);
	if (r < 0) {
		vmdkfs_error("%s: %s", path, vmdkfs_errmsg());
		goto out;
	}
	if (!l->recurse) {
		printf("%c %o %" PRIu64 " %s\n", kinds[st.kind], st.mode,
		       st.size, e->name);
		goto out;
	}
	printf("%c %o %" PRIu64 " %" PRId64 " %s", kinds[st.kind], st.mode,
	       st.size, st.mtime, path + 1);
	if (st.kind == VMFS_SYMLINK) {
		r = vmfs_readlink_addr(l->v, e->addr, target, sizeof(target));
		if (r < 0)
			goto out;
		printf(" -> %s", target);
	}
	printf("\n");
	if (st.kind == VMFS_DIR) {
		sub = *l;
		sub.dir = path;
		r = vmfs_readdir(l->v, e->addr, ls_cb, &sub);
	}
out:
	free(path);
	return r;
}

static int cmd_ls(struct vmfs *v, const char *path, bool recurse)
{
	struct ls l = {v, "", recurse, 0};
	uint32_t addr;
	int r;

	r = vmfs_lookup(v, path, true, &addr);
	if (r < 0)
		return r;
	return vmfs_readdir(v, addr, ls_cb, &l);
}

static int cmd_stat(struct vmfs *v, const char *path)
{
	struct vmfs_stat st;
	int r;

	r = vmfs_stat(v, path, &st);
	if (r < 0)
		return r;
	printf("addr %#x\nkind %c\ntype %u\nmode %o\nnlink %u\nuid %u\n"
	       "gid %u\nsize %" PRIu64 "\nmtime %" PRId64 "\nctime %" PRId64
	       "\natime %" PRId64 "\nblock_size %" PRIu64 "\nblocks %" PRIu64
	       "\nzla %#x\n",
	       st.addr, kinds[st.kind], st.type, st.mode, st.nlink, st.uid,
	       st.gid, st.size, st.mtime, st.ctime, st.atime, st.block_size,
	       st.blocks, st.zla);
	return 0;
}

static int cmd_cat(struct vmfs *v, const char *path)
{
	struct vmfs_file *f;
	uint64_t off = 0, size;
	size_t bs = 1 << 20;
	char *buf = malloc(bs);
	int r;

	if (!buf)
		return -ENOMEM;
	r = vmfs_file_open(v, path, &f);
	if (r < 0)
		goto out;
	size = vmfs_file_size(f);
	while (off < size) {
		size_t n = size - off < bs ? (size_t)(size - off) : bs;

		r = vmfs_file_pread(f, buf, n, off);
		if (r == 0)
			r = write_all(buf, n);
		if (r < 0)
			break;
		off += n;
	}
	vmfs_file_close(f);
out:
	free(buf);
	return r;
}

static int cmd_read(struct vmfs *v, const char *path, uint64_t off,
		    uint64_t len)
{
	struct vmfs_file *f;
	char *buf = malloc(1 << 20);
	int r;

	if (!buf)
		return -ENOMEM;
	r = vmfs_file_open(v, path, &f);
	if (r < 0) {
		free(buf);
		return r;
	}
	while (r == 0 && len > 0) {
		size_t n = len < (1 << 20) ? (size_t)len : 1 << 20;

		r = vmfs_file_pread(f, buf, n, off);
		if (r == 0)
			r = write_all(buf, n);
		off += n;
		len -= n;
	}
	vmfs_file_close(f);
	free(buf);
	return r;
}

static int cmd_map(struct vmfs *v, const char *path)
{
	static const char *const names[] = {"data", "hole", "zero"};
	struct vmfs_file *f;
	uint64_t off = 0, size, run;
	int r = 0, kind;

	r = vmfs_file_open(v, path, &f);
	if (r < 0)
		return r;
	size = vmfs_file_size(f);
	while (off < size) {
		r = vmfs_file_map(f, off, size - off, &kind, &run);
		if (r < 0)
			break;
		printf("%s %" PRIu64 " %" PRIu64 "\n", names[kind], off, run);
		off += run;
	}
	vmfs_file_close(f);
	return r;
}

static int cmd_vmdk(struct vmfs *v, const char *path)
{
	struct source_opener op;
	struct vmdk_options o = {0};
	struct vmdk *d;
	uint64_t s, n;
	char *buf = malloc(128 * VMDK_SECTOR);
	int r;

	if (!buf)
		return -ENOMEM;
	vmfs_opener_init(v, &op);
	o.opener = &op;
	r = vmdk_open(path, &o, &d);
	if (r < 0)
		goto out;
	n = vmdk_sectors(d);
	for (s = 0; s < n && r == 0; s += 128) {
		uint64_t c = n - s < 128 ? n - s : 128;

		r = vmdk_read(d, buf, s, c);
		if (r == 0)
			r = write_all(buf, (size_t)c * VMDK_SECTOR);
	}
	vmdk_close(d);
out:
	free(buf);
	return r;
}

static int cmd_info(struct vmfs *v)
{
	struct vmfs_info i;

	vmfs_get_info(v, &i);
	printf("version %d\nfs_version %u.%u\nlabel %s\nuuid %s\nlvm_uuid %s\n"
	       "size %" PRIu64 "\nblock_size %" PRIu64
	       "\nlarge_block_size %" PRIu64 "\nsub_block_size %u\n"
	       "fd_size %u\npb_size %u\nmd_alignment %u\ndevices %u\n",
	       i.version, i.major, i.minor, i.label, i.uuid, i.lvm_uuid, i.size,
	       i.block_size, i.large_block_size, i.sub_block_size, i.fd_size,
	       i.pb_size, i.md_alignment, i.devices);
	return 0;
}

/* A source that notes which 512-byte sectors were read. */
struct rec_source {
	struct source s;
	struct source *in;
	uint8_t *seen; /* a bit per sector */
};

static int rec_pread(struct source *s, void *buf, size_t len, uint64_t off)
{
	struct rec_source *r = (struct rec_source *)s;
	uint64_t a;

	for (a = off / 512; len && a <= (off + len - 1) / 512; a++)
		if (a < (s->size + 511) / 512)
			r->seen[a / 8] |= (uint8_t)(1 << (a % 8));
	return source_pread(r->in, buf, len, off);
}

static void rec_close(struct source *s)
{
	struct rec_source *r = (struct rec_source *)s;

	source_close(r->in);
	free(r->seen);
	free(r);
}

static const struct source_ops rec_ops = {
    .pread = rec_pread,
    .pwrite = source_ro_pwrite,
    .flush = source_no_flush,
    .close = rec_close,
};

static int rec_wrap(struct source *in, struct source **out)
{
	struct rec_source *r = calloc(1, sizeof(*r));

	if (!r || !(r->seen = calloc(1, (size_t)(in->size / 4096 + 1)))) {
		free(r);
		source_close(in);
		return -ENOMEM;
	}
	r->s.ops = &rec_ops;
	r->s.name = in->name;
	r->s.size = in->size;
	r->in = in;
	*out = &r->s;
	return 0;
}

static void put32(FILE *fp, uint32_t x)
{
	uint8_t b[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16),
			(uint8_t)(x >> 24)};

	fwrite(b, 1, 4, fp);
}

/* Write the sectors of the NDEV recorders read and not all zeros. */
static int write_seed(const char *out, struct source **dev, size_t ndev)
{
	FILE *fp = fopen(out, "wb");
	uint8_t sec[512], run[127 * 512];
	size_t d;

	if (!fp) {
		vmdkfs_error("%s: %m", out);
		return -errno;
	}
	for (d = 0; d < 2; d++)
		put32(fp, d < ndev
			      ? (uint32_t)((dev[d]->size + (1 << 20) - 1) >> 20)
			      : 0);
	for (d = 0; d < ndev; d++) {
		struct rec_source *r = (struct rec_source *)dev[d];
		uint64_t a, n = r->s.size / 512, start = 0;
		size_t len = 0;

		for (a = 0; a <= n; a++) {
			bool keep = false;

			if (a < n && (r->seen[a / 8] >> (a % 8) & 1)) {
				int e = source_pread(r->in, sec, 512, a * 512);
				size_t i;

				if (e < 0)
					return e;
				for (i = 0; i < 512 && !keep; i++)
					keep = sec[i] != 0;
			}
			if (len && (!keep || len == sizeof(run))) {
				uint8_t h[3] = {(uint8_t)d, (uint8_t)len,
						(uint8_t)(len >> 8)};

				fwrite(h, 1, 1, fp);
				put32(fp, (uint32_t)start);
				fwrite(h + 1, 1, 2, fp);
				fwrite(run, 1, len, fp);
				len = 0;
			}
			if (keep) {
				if (!len)
					start = a;
				memcpy(run + len, sec, 512);
				len += 512;
			}
		}
	}
	if (fclose(fp) != 0) {
		vmdkfs_error("%s: %m", out);
		return -EIO;
	}
	return 0;
}

static uint8_t *chunk_file;

/* Open ARGS as the devices (recording reads if REC). */
static int open_devices(char **args, size_t n, bool rec, struct source **dev,
			size_t *ndev)
{
	size_t i;
	int r;

	*ndev = 0;
	for (i = 0; i < n; i++) {
		if (!strncmp(args[i], "chunks:", 7)) {
			FILE *fp = fopen(args[i] + 7, "rb");
			long size;

			if (!fp || fseek(fp, 0, SEEK_END) < 0 ||
			    (size = ftell(fp)) < 0 ||
			    fseek(fp, 0, SEEK_SET) < 0 ||
			    !(chunk_file = malloc((size_t)size + 1)) ||
			    fread(chunk_file, 1, (size_t)size, fp) !=
				(size_t)size) {
				vmdkfs_error("%s: cannot read", args[i] + 7);
				if (fp)
					fclose(fp);
				return -EIO;
			}
			fclose(fp);
			if (*ndev + 2 > VMFS_MAX_DEVICES)
				return -EINVAL;
			*ndev += chunk_devices(chunk_file, (size_t)size,
					       dev + *ndev);
			continue;
		}
		if (*ndev == VMFS_MAX_DEVICES) {
			vmdkfs_error("too many devices");
			return -EINVAL;
		}
		r = fd_source_open(args[i], false, &dev[*ndev]);
		if (r == 0 && rec)
			r = rec_wrap(dev[*ndev], &dev[*ndev]);
		if (r < 0)
			return r;
		(*ndev)++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct source *dev[VMFS_MAX_DEVICES];
	size_t ndev = 0, i;
	uint64_t roff = 0, rlen = 0;
	const char *cmd, *path = NULL;
	struct vmfs *v;
	int first, r;

	if (argc < 3) {
		fprintf(
		    stderr,
		    "usage: vmfs-tool info DEV...\n"
		    "       vmfs-tool ls|tree|stat|cat|readlink|map|vmdk-cat "
		    "PATH DEV...\n"
		    "       vmfs-tool read PATH OFF LEN DEV...\n"
		    "       vmfs-tool seed OUT DEV...\n");
		return 2;
	}
	cmd = argv[1];
	first = 2;
	if (!strcmp(cmd, "read")) {
		if (argc < 6) {
			fprintf(stderr, "usage: vmfs-tool read PATH OFF LEN "
					"DEV...\n");
			return 2;
		}
		path = argv[2];
		roff = strtoull(argv[3], NULL, 0);
		rlen = strtoull(argv[4], NULL, 0);
		first = 5;
	} else if (strcmp(cmd, "info")) {
		path = argv[2];
		first = 3;
		if (argc < 4) {
			fprintf(stderr, "vmfs-tool: %s: no device given\n",
				cmd);
			return 2;
		}
	}
	r = open_devices(argv + first, (size_t)(argc - first),
			 !strcmp(cmd, "seed"), dev, &ndev);
	if (r == 0)
		r = vmfs_open(dev, ndev, NULL, &v);
	if (r < 0) {
		for (i = 0; i < ndev; i++)
			source_close(dev[i]);
		return die("open");
	}
	if (!strcmp(cmd, "seed")) {
		vmfs_walk(v);
		r = write_seed(path, dev, ndev);
		vmfs_close(v);
		free(chunk_file);
		return r < 0 ? die("seed") : 0;
	}
	if (!strcmp(cmd, "info")) {
		r = cmd_info(v);
	} else if (!strcmp(cmd, "ls")) {
		r = cmd_ls(v, path, false);
	} else if (!strcmp(cmd, "tree")) {
		r = cmd_ls(v, path, true);
	} else if (!strcmp(cmd, "stat")) {
		r = cmd_stat(v, path);
	} else if (!strcmp(cmd, "cat")) {
		r = cmd_cat(v, path);
	} else if (!strcmp(cmd, "readlink")) {
		char target[4097];

		r = vmfs_readlink(v, path, target, sizeof(target));
		if (r == 0)
			printf("%s\n", target);
	} else if (!strcmp(cmd, "read")) {
		r = cmd_read(v, path, roff, rlen);
	} else if (!strcmp(cmd, "map")) {
		r = cmd_map(v, path);
	} else if (!strcmp(cmd, "vmdk-cat")) {
		r = cmd_vmdk(v, path);
	} else {
		fprintf(stderr, "vmfs-tool: unknown command %s\n", cmd);
		vmfs_close(v);
		return 2;
	}
	fflush(stdout);
	vmfs_close(v);
	free(chunk_file);
	if (r < 0)
		return die(cmd);
	return 0;
}

/* part-tool: the partition-table reader on the command line, for
 * tests/test-part.sh.
 *
 *   part-tool IMAGE [SECTOR_SIZE]
 *
 * prints a header line
 *   scheme none|mbr|gpt sector_size N disk_guid G|- disk_sig X used_backup 0|1
 * then one line per partition
 *   NUMBER START SIZE TYPE UUID FLAGS NAME
 * START and SIZE in bytes, UUID "-" when there is none, FLAGS "boot" or
 * "-", NAME (the rest of the line, maybe empty) for GPT.  Warnings go to
 * stderr, one "warning: ..." line each.  Exit status 0, or 1 with the
 * library's message on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/err.h"
#include "../../part/part.h"

static int fd_read(void *opaque, void *buf, size_t len, uint64_t off)
{
	int fd = *(int *)opaque;
	size_t done = 0;

	while (done < len) {
		ssize_t n =
		    pread(fd, (char *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += n;
	}
	return 0;
}

static void print_warning(void *opaque, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "warning: %s\n", msg);
}

int main(int argc, char **argv)
{
	static const char *const schemes[] = {"none", "mbr", "gpt"};
	struct part_table t;
	unsigned long ss = 0;
	struct stat st;
	off_t size;
	size_t i;
	int fd, r;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: part-tool IMAGE [SECTOR_SIZE]\n");
		return 2;
	}
	if (argc == 3)
		ss = strtoul(argv[2], NULL, 0);
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "part-tool: %s: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	size = S_ISBLK(st.st_mode) ? lseek(fd, 0, SEEK_END) : st.st_size;
	r = part_read(fd_read, &fd, size < 0 ? 0 : size, ss, print_warning,
		      NULL, &t);
	close(fd);
	if (r < 0) {
		fprintf(stderr, "part-tool: %s: %s\n", argv[1],
			vmdkfs_errmsg());
		return 1;
	}
	printf("scheme %s sector_size %" PRIu32
	       " disk_guid %s disk_sig %08" PRIx32 " used_backup %d\n",
	       schemes[t.scheme], t.sector_size,
	       t.disk_guid[0] ? t.disk_guid : "-", t.disk_sig, t.used_backup);
	for (i = 0; i < t.n; i++) {
		const struct part_entry *e = &t.e[i];

		printf("%u %" PRIu64 " %" PRIu64 " %s %s %s %s\n", e->number,
		       e->start, e->size, e->type, e->uuid[0] ? e->uuid : "-",
		       e->bootable ? "boot" : "-", e->name);
	}
	part_table_free(&t);
	return 0;
}

/* Random 4 KiB reader for scripts/bench.sh (built by it with cc).
 *
 * usage: bench-rand FILE COUNT SEED          time COUNT 4 KiB preads at
 *                                            random 4 KiB-aligned offsets;
 *                                            prints the seconds taken
 *        bench-rand FILE COUNT SEED REF      untimed: read the same offsets
 *                                            from FILE and REF, compare;
 *                                            exit 1 on a difference
 *
 * The offsets come from splitmix64(SEED), so every reader and every run gets
 * the same ones whatever the libc.  Offsets are below the size of FILE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BS 4096

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int open_ro(const char *path, off_t *size)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "bench-rand: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	*size = st.st_size;
	return fd;
}

static void read_block(int fd, const char *path, char *buf, off_t off)
{
	ssize_t n = pread(fd, buf, BS, off);
	if (n != BS) {
		fprintf(stderr, "bench-rand: %s: pread at %jd: %s\n", path,
			(intmax_t)off, n < 0 ? strerror(errno) : "short read");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: bench-rand FILE COUNT SEED [REF]\n");
		return 2;
	}
	const char *path = argv[1], *ref = argc == 5 ? argv[4] : NULL;
	long count = strtol(argv[2], NULL, 10);
	uint64_t seed = strtoull(argv[3], NULL, 10);
	off_t size, rsize = 0;
	int fd = open_ro(path, &size), rfd = ref ? open_ro(ref, &rsize) : -1;
	uint64_t blocks = (uint64_t)size / BS;
	if (blocks == 0 || count <= 0 || (ref && rsize != size)) {
		fprintf(stderr, "bench-rand: bad size or count\n");
		return 2;
	}
	static char buf[BS], rbuf[BS];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < count; i++) {
		off_t off = (off_t)(splitmix64(&seed) % blocks) * BS;
		read_block(fd, path, buf, off);
		if (ref) {
			read_block(rfd, ref, rbuf, off);
			if (memcmp(buf, rbuf, BS) != 0) {
				fprintf(stderr, "bench-rand: %s differs from "
					"%s at offset %jd\n", path, ref,
					(intmax_t)off);
				return 1;
			}
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!ref)
		printf("%.6f\n", (double)(t1.tv_sec - t0.tv_sec) +
		       (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}

/* mem-bw: how fast this machine gives and writes memory, for make bench's
 * table (scripts/bench-all.sh runs it between the benchmarks).  Maps MIB
 * MiB (default 512) and prints two rates in GB/s (10^9 bytes/s): the first
 * write, which takes a page fault per 4 KiB page (the kernel finding fresh
 * memory, as every page-cache fill of a bench does), then the best of two
 * rewrites (the memory's own bandwidth).  On the VMs here the first swung
 * from 0.2 to 8 GB/s within an hour while the second stayed near 20-30,
 * and the figures of every bench that moves a GiB through the page cache,
 * the FUSE ceiling's among them, swung with it.  Not a test and not
 * installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t n = (size_t)(argc > 1 ? atol(argv[1]) : 512) << 20;
	double first = 0, best = 0;
	char *p;
	int i;

	p = n ? mmap(NULL, n, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
	      : MAP_FAILED;
	if (p == MAP_FAILED) {
		fprintf(stderr, "mem-bw: cannot map %zu bytes\n", n);
		return 1;
	}
	for (i = 1; i <= 3; i++) {
		double t0 = now(), t;

		memset(p, i, n);
		t = now() - t0;
		if (p[n / 2] != i) /* keeps the memset */
			return 1;
		if (i == 1)
			first = t > 0 ? (double)n / t : 0;
		else if (t > 0 && (double)n / t > best)
			best = (double)n / t;
	}
	printf("%.2f %.2f\n", first / 1e9, best / 1e9);
	munmap(p, n);
	return 0;
}

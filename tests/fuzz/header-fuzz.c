/* libFuzzer targets for the extent-header parsers, built once per parser
 * (FUZZ_VMDK4, FUZZ_COWD, FUZZ_SESPARSE), and FUZZ_IMAGE: a whole open and
 * read of the input as a VMDK file (every extent file name opens the same
 * input), so header fields reach the grain lookup code too.  The COWD and
 * SEsparse targets also open the input as a two-link chain (a descriptor
 * whose delta extent is the input, its parent the input opened directly),
 * so that reads reach their grain tables and fall through to the parent. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/source.h"
#include "../../vmdk/vmdk.h"

#if defined(FUZZ_IMAGE) || defined(FUZZ_COWD) || defined(FUZZ_SESPARSE)
static const uint8_t *in_data;
static size_t in_size;
static const char *top_desc; /* what disk.vmdk holds, or NULL: the input */

static int fuzz_open(void *opaque, const char *path, bool writable,
		     struct source **out)
{
	size_t n = strlen(path);

	(void)opaque, (void)writable;
	if (top_desc && n >= 9 && strcmp(path + n - 9, "disk.vmdk") == 0)
		return mem_source_new(path, top_desc, strlen(top_desc), out);
	return mem_source_new(path, in_data, in_size, out);
}

static const struct source_opener fuzz_opener = {.open = fuzz_open};

static void fuzz_image(const uint8_t *data, size_t size)
{
	struct vmdk_options o = {.opener = &fuzz_opener,
				 .table_cache_bytes = 65536,
				 .grain_cache_bytes = 1 << 20};
	struct vmdk *v;
	uint64_t n, s, step, run;
	uint8_t *buf;
	int kind;

	in_data = data;
	in_size = size;
	if (vmdk_open("/fuzz/disk.vmdk", &o, &v) < 0)
		return;
	n = vmdk_sectors(v);
	step = n / 16 + 1;
	buf = malloc(64 * 512);
	for (s = 0; buf && s < n; s += step) {
		uint64_t c = n - s < 64 ? n - s : 64;

		vmdk_read(v, buf, s, c);
		vmdk_block_status(v, s, c, &kind, &run);
	}
	free(buf);
	vmdk_close(v);
}

#if defined(FUZZ_COWD) || defined(FUZZ_SESPARSE)
/* The input as the delta of a chain whose parent is the input itself
 * (opened directly: CID fffffffe). */
static void fuzz_chain(const uint8_t *data, size_t size,
		       const struct vmdk_sparse_info *h, const char *type)
{
	char *desc;

	if (asprintf(&desc,
		     "# Disk DescriptorFile\nversion=1\nCID=12345678\n"
		     "parentCID=fffffffe\ncreateType=\"vmfsSparse\"\n"
		     "parentFileNameHint=\"base-in.vmdk\"\n"
		     "RW %llu %s \"delta-in.vmdk\"\n",
		     (unsigned long long)h->capacity, type) < 0)
		return;
	top_desc = desc;
	fuzz_image(data, size);
	top_desc = NULL;
	free(desc);
}
#endif
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmdk_sparse_info h;
	uint8_t hdr[2048];

	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, data, size < sizeof(hdr) ? size : sizeof(hdr));
	(void)h;
#if defined(FUZZ_VMDK4)
	vmdk4_header_parse(hdr, size, "fuzz", &h);
#elif defined(FUZZ_COWD)
	if (cowd_header_parse(hdr, size, "fuzz", &h) == 0)
		fuzz_chain(data, size, &h, "VMFSSPARSE");
#elif defined(FUZZ_SESPARSE)
	if (sesparse_header_parse(hdr, size, "fuzz", &h) == 0)
		fuzz_chain(data, size, &h, "SESPARSE");
#else
	fuzz_image(data, size);
#endif
	return 0;
}

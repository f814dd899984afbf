/* libFuzzer targets for the extent-header parsers, built once per parser
 * (FUZZ_VMDK4, FUZZ_COWD, FUZZ_SESPARSE), and FUZZ_IMAGE: a whole open and
 * read of the input as a VMDK file (every extent file name opens the same
 * input), so header fields reach the grain lookup code too. */
#include <stdlib.h>
#include <string.h>

#include "../../common/source.h"
#include "../../vmdk/vmdk.h"

#ifdef FUZZ_IMAGE
static const uint8_t *in_data;
static size_t in_size;

static int fuzz_open(void *opaque, const char *path, bool writable,
		     struct source **out)
{
	(void)opaque, (void)writable;
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
	cowd_header_parse(hdr, size, "fuzz", &h);
#elif defined(FUZZ_SESPARSE)
	sesparse_header_parse(hdr, size, "fuzz", &h);
#else
	fuzz_image(data, size);
#endif
	return 0;
}

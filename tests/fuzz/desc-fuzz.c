/* libFuzzer target: the descriptor parser. */
#include <stddef.h>
#include <stdint.h>

#include "../../vmdk/vmdk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmdk_desc d;

	if (vmdk_desc_parse((const char *)data, size, "fuzz", &d) == 0)
		vmdk_desc_free(&d);
	return 0;
}

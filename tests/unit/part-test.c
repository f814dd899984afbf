/* Partition tables: hand-built MBR and GPT tables in memory. */
#include <errno.h>
#include <string.h>

#include "../../common/err.h"
#include "../../part/part.h"
#include "check.h"

int main(void)
{
	struct part_table t;
	static uint8_t disk[4096];

	CHECK(part_read(NULL, NULL, 100, 0, NULL, NULL, &t) == 0);
	CHECK(t.scheme == PART_NONE && t.n == 0);
	part_table_free(&t);
	(void)disk;
	CHECK_DONE();
}

/* Descriptor parser: accepted variants and rejected garbage. */
#include <errno.h>
#include <string.h>

#include "../../common/err.h"
#include "../../vmdk/vmdk.h"
#include "check.h"

static int parse(const char *text, struct vmdk_desc *d)
{
	return vmdk_desc_parse(text, strlen(text), "t.vmdk", d);
}

static void accepted(void)
{
	struct vmdk_desc d;
	const char *vmw =
	    "# Disk Descriptor File\r\n"
	    "version=1\r\n"
	    "encoding=\"UTF-8\"\r\n"
	    "CID=fffffffe\r\n"
	    "parentCID = 1A2b3C4d\r\n"
	    "isNativeSnapshot=\"no\"\r\n"
	    "createType=\"vmfsSparse\"\r\n"
	    "parentFileNameHint=\"/vmfs/volumes/ds/vm/vm.vmdk\"\r\n"
	    "# Extent description\r\n"
	    "RW 41943040 VMFSSPARSE \"vm-000001-delta.vmdk\"\r\n"
	    "\r\n"
	    "# Change Tracking File\r\n"
	    "changeTrackPath=\"vm-000001-ctk.vmdk\"\r\n"
	    "ddb.longContentID = \"abc\"\r\n"
	    "ddb.uuid = \"60 00 C2 9a\"\r\n";

	CHECK(parse(vmw, &d) == 0);
	CHECK(d.version == 1);
	CHECK(d.cid == 0xfffffffe);
	CHECK(d.parent_cid == 0x1a2b3c4d);
	CHECK(d.create_type && !strcmp(d.create_type, "vmfsSparse"));
	CHECK(d.parent_hint &&
	      !strcmp(d.parent_hint, "/vmfs/volumes/ds/vm/vm.vmdk"));
	CHECK(d.change_track_path &&
	      !strcmp(d.change_track_path, "vm-000001-ctk.vmdk"));
	CHECK(d.nextents == 1);
	CHECK(d.extents[0].type == VMDK_VMFSSPARSE);
	CHECK(d.extents[0].sectors == 41943040);
	CHECK(!strcmp(d.extents[0].file, "vm-000001-delta.vmdk"));
	CHECK(d.nddb == 2 && !strcmp(d.ddb[1].value, "60 00 C2 9a"));
	vmdk_desc_free(&d);

	CHECK(parse("# Disk DescriptorFile\nCID=1\n"
		    "RW 100 FLAT \"a b.bin\" 7\n"
		    "RDONLY 5 ZERO\n"
		    "NOACCESS 3 VMFS bare.bin\n"
		    "RW 8 SESPARSE \"x-sesparse.vmdk\"\n",
		    &d) == 0);
	CHECK(d.nextents == 4);
	CHECK(!strcmp(d.extents[0].file, "a b.bin") &&
	      d.extents[0].offset == 7);
	CHECK(d.extents[1].access == VMDK_RDONLY && !d.extents[1].file);
	CHECK(d.extents[2].access == VMDK_NOACCESS &&
	      !strcmp(d.extents[2].file, "bare.bin"));
	CHECK(d.extents[3].type == VMDK_SESPARSE);
	CHECK(d.parent_cid == VMDK_NO_PARENT);
	vmdk_desc_free(&d);

	/* NUL padding ends an embedded descriptor. */
	{
		char buf[512] = "# Disk DescriptorFile\nCID=2\nRW 1 ZERO\n";

		CHECK(vmdk_desc_parse(buf, sizeof(buf), "t", &d) == 0);
		vmdk_desc_free(&d);
	}
}

static void rejected(void)
{
	static const struct {
		const char *text, *word;
	} cases[] = {
	    {"", "empty"},
	    {"hello\nCID=1\nRW 1 ZERO\n", "first line"},
	    {"# Disk DescriptorFile\nCID=1\n", "no extent"},
	    {"# Disk DescriptorFile\nRW 1 ZERO\n", "no CID"},
	    {"# Disk DescriptorFile\nCID=xyz\nRW 1 ZERO\n", "CID"},
	    {"# Disk DescriptorFile\nCID=123456789\nRW 1 ZERO\n", "CID"},
	    {"# Disk DescriptorFile\nCID=1\nversion=9\nRW 1 ZERO\n", "version"},
	    {"# Disk DescriptorFile\nCID=1\nRW 1 FOO \"a\"\n", "FOO"},
	    {"# Disk DescriptorFile\nCID=1\nRW abc FLAT \"a\"\n", "abc"},
	    {"# Disk DescriptorFile\nCID=1\nRW 0 FLAT \"a\"\n", "size"},
	    {"# Disk DescriptorFile\nCID=1\n"
	     "RW 99999999999999999999 FLAT \"a\"\n",
	     "size"},
	    {"# Disk DescriptorFile\nCID=1\nRW 10 FLAT \"a\n", "quote"},
	    {"# Disk DescriptorFile\nCID=1\nRW 10 FLAT\n", "no file"},
	    {"# Disk DescriptorFile\nCID=1\nRW 10 FLAT \"a\" x\n", "offset"},
	    {"# Disk DescriptorFile\nCID=1\nRW 10 SPARSE \"a\" 5\n",
	     "unexpected"},
	    {"# Disk DescriptorFile\nCID=1\nparentCID=5\nRW 1 ZERO\n",
	     "parentFileNameHint"},
	    {"# Disk DescriptorFile\nCID=1\njunk line\nRW 1 ZERO\n",
	     "key=value"},
	    {"# Disk DescriptorFile\nCID=1\nRW 549755813888 ZERO\n"
	     "RW 549755813888 ZERO\n",
	     "more than"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmdk_desc d;
		int r = parse(cases[i].text, &d);

		if (r != -EINVAL || !strstr(vmdkfs_errmsg(), cases[i].word) ||
		    !strstr(vmdkfs_errmsg(), "t.vmdk")) {
			fprintf(stderr, "case %zu: r=%d msg=\"%s\"\n", i, r,
				vmdkfs_errmsg());
			check_failures++;
		}
		if (r == 0)
			vmdk_desc_free(&d);
	}
}

int main(void)
{
	accepted();
	rejected();
	CHECK_DONE();
}

/* libFuzzer target: the SOAP answers vmdkfs parses (vsphere/).  The input
 * is the server's side of a session: answers separated by NUL bytes (XML
 * holds none), one per call, given to the calls through vs_config.answer
 * (no network).  A session goes through what a mount asks: the service
 * content and login, a VM by name and by moref, its facts, snapshots and
 * disks, a datastore, an NFC ticket, CBT areas, a task, hardware, the
 * disabled methods, the VM list.  Faults, paging tokens, missing and odd
 * elements all go through the same parsers.  Any crash or sanitizer
 * report is a bug; the results are also checked for sense (areas inside
 * the disk and in order). */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/err.h"
#include "../../vsphere/cbt.h"
#include "../../vsphere/vsphere.h"

struct feed {
	const uint8_t *p;
	size_t left;
};

/* The next answer: up to the next NUL (an empty body, HTTP 200, once the
 * input is used up: a server that says nothing). */
static int next_answer(void *ctx, const char *method, const char *request,
		       char **body, size_t *len)
{
	struct feed *f = ctx;
	const uint8_t *end = memchr(f->p, 0, f->left);
	size_t n = end ? (size_t)(end - f->p) : f->left;

	(void)method, (void)request;
	*body = malloc(n + 1);
	if (!*body)
		return 0;
	memcpy(*body, f->p, n);
	(*body)[n] = '\0';
	*len = n;
	f->p += n + (end ? 1 : 0);
	f->left -= n + (end ? 1 : 0);
	return 200;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct feed f = {data, size};
	struct vs_config cfg = {.server = "fuzz.example",
				.user = "u",
				.password = "p",
				.verify = true,
				.answer = next_answer,
				.answer_ctx = &f};
	struct vs_conn *c = NULL;
	struct vs_vm vm;
	struct vs_disk *disks;
	struct vs_datastore ds;
	struct vs_ticket t;
	struct vs_area *areas;
	struct vs_hw hw;
	struct vs_vmref *list;
	char *moref = NULL, *res = NULL, **methods;
	size_t n, i;

	if (vs_connect(&cfg, &c) < 0)
		return 0;
	if (vs_find_vm(c, "VM0", &moref) == 0)
		free(moref);
	if (vs_find_vm(c, "moid=vm-20", &moref) == 0)
		free(moref);
	if (vs_vm_info(c, "vm-20", &vm) == 0)
		vs_vm_free(&vm);
	if (vs_disks(c, "vm-20", "snapshot-1", &disks, &n) == 0)
		vs_disks_free(disks, n);
	memset(&ds, 0, sizeof(ds));
	if (vs_datastore(c, "vm-20", "LocalDS_0", &ds) == 0)
		vs_datastore_free(&ds);
	if (vs_nfc_ticket(c, "vm-20", 2000, false, &t) == 0)
		vs_ticket_free(&t);
	if (vs_cbt_check(c, "vm-20", "snapshot-1", 2000) == 0 &&
	    vs_changed_areas(c, "vm-20", "snapshot-1", 2000, 1 << 24, "*",
			     &areas, &n) == 0) {
		for (i = 0; i < n; i++)
			if (areas[i].len == 0 || areas[i].off > (1u << 24) ||
			    areas[i].len > (1u << 24) - areas[i].off ||
			    (i && areas[i].off < areas[i - 1].off +
						     areas[i - 1].len))
				abort();
		free(areas);
	}
	if (vs_wait_task(c, "task-1", false, &res) == 0)
		free(res);
	memset(&hw, 0, sizeof(hw));
	if (vs_hardware(c, "vm-22", NULL, &hw) == 0)
		vs_hardware_free(&hw);
	if (vs_disabled_methods(c, "vm-20", &methods, &n) == 0) {
		for (i = 0; i < n; i++)
			free(methods[i]);
		free(methods);
	}
	(void)vs_snapshot_exists(c, "snapshot-1");
	if (vs_list_vms(c, &list, &n) == 0)
		vs_vmrefs_free(list, n);
	vs_disconnect(c);
	vmdkfs_error_clear();
	return 0;
}

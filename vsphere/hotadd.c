/* The control plane of the hotadd transport: a VM's controllers and disks
 * as the transport needs them, ReconfigVM_Task adding an existing disk
 * file to the proxy VM and removing it again (never a fileOperation: the
 * file is neither created nor destroyed), and the files of a VM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/sig.h"
#include "vsphere.h"

static int int_of(xmlNodePtr n, const char *name, int def)
{
	char *s = vs_text(n, name);
	int v = s && *s ? atoi(s) : def;

	free(s);
	return v;
}

/* The direct child element NAME of N (vs_find goes deep). */
static xmlNodePtr child(xmlNodePtr n, const char *name)
{
	xmlNodePtr k;

	for (k = n ? n->children : NULL; k; k = k->next)
		if (k->type == XML_ELEMENT_NODE &&
		    strcmp((const char *)k->name, name) == 0)
			return k;
	return NULL;
}

static int ctl_kind(const char *type)
{
	if (!strcmp(type, "ParaVirtualSCSIController") ||
	    !strcmp(type, "VirtualLsiLogicController") ||
	    !strcmp(type, "VirtualLsiLogicSASController") ||
	    !strcmp(type, "VirtualBusLogicController"))
		return VS_CTL_SCSI;
	if (!strcmp(type, "VirtualIDEController"))
		return VS_CTL_IDE;
	if (!strcmp(type, "VirtualAHCIController"))
		return VS_CTL_SATA;
	if (!strcmp(type, "VirtualNVMEController"))
		return VS_CTL_NVME;
	return -1;
}

int vs_hardware(struct vs_conn *c, const char *vm, const char *snap,
		struct vs_hw *hw)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr val, k;
	int r;

	memset(hw, 0, sizeof(*hw));
	r = snap ? vs_prop(c, "VirtualMachineSnapshot", snap,
			    "config.hardware.device", &doc, &val)
		 : vs_prop(c, "VirtualMachine", vm, "config.hardware.device",
			    &doc, &val);
	if (r < 0)
		return r;
	for (k = val ? val->children : NULL; k && r == 0; k = k->next) {
		char *type = k->type == XML_ELEMENT_NODE ? vs_xsi_type(k) : NULL;
		int kind = type ? ctl_kind(type) : -1;

		if (type && kind >= 0 && hw->nctl < VS_MAX_CTL) {
			struct vs_ctl *x = &hw->ctl[hw->nctl++];
			xmlNodePtr slot = child(k, "slotInfo");

			x->key = int_of(k, "key", 0);
			x->kind = kind;
			x->bus = int_of(k, "busNumber", 0);
			x->pci_slot =
			    slot ? int_of(slot, "pciSlotNumber", -1) : -1;
			snprintf(x->type, sizeof(x->type), "%s", type);
		} else if (type && !strcmp(type, "VirtualDisk") &&
			   hw->ndisk < VS_MAX_HWDISK) {
			struct vs_hwdisk *d = &hw->disk[hw->ndisk++];
			xmlNodePtr b = child(k, "backing");
			xmlNodePtr info = child(k, "deviceInfo");
			char *s;

			d->key = int_of(k, "key", 0);
			d->ctl_key = int_of(k, "controllerKey", 0);
			d->unit = int_of(k, "unitNumber", -1);
			d->label = info ? vs_text(info, "label") : NULL;
			d->file =
			    b ? vs_text(child(b, "fileName"), NULL) : NULL;
			d->mode =
			    b ? vs_text(child(b, "diskMode"), NULL) : NULL;
			d->backing = b ? vs_xsi_type(b) : NULL;
			s = vs_text(k, "capacityInBytes");
			d->capacity = s ? strtoull(s, NULL, 10) : 0;
			free(s);
			if (!d->capacity) {
				s = vs_text(k, "capacityInKB");
				d->capacity =
				    s ? strtoull(s, NULL, 10) * 1024 : 0;
				free(s);
			}
		}
		free(type);
	}
	xmlFreeDoc(doc);
	return r;
}

void vs_hardware_free(struct vs_hw *hw)
{
	size_t i;

	for (i = 0; i < hw->ndisk; i++) {
		free(hw->disk[i].label);
		free(hw->disk[i].file);
		free(hw->disk[i].mode);
		free(hw->disk[i].backing);
	}
	memset(hw, 0, sizeof(*hw));
}

const struct vs_ctl *vs_hw_ctl(const struct vs_hw *hw, int key)
{
	size_t i;

	for (i = 0; i < hw->nctl; i++)
		if (hw->ctl[i].key == key)
			return &hw->ctl[i];
	return NULL;
}

/* ReconfigVM_Task on VM with one device change (BODY: the
 * VirtualDeviceConfigSpec's content), waited for. */
static int reconfig(struct vs_conn *c, const char *vm, const char *change)
{
	char *body = NULL, *task = NULL;
	xmlDocPtr doc = NULL;
	int r;

	if (asprintf(&body, "<spec><deviceChange>%s</deviceChange></spec>",
		     change) < 0)
		return -ENOMEM;
	r = vs_call(c, "ReconfigVM_Task", "VirtualMachine", vm, body, &doc);
	free(body);
	if (r < 0)
		return r;
	task = vs_text(xmlDocGetRootElement(doc), "returnval");
	xmlFreeDoc(doc);
	if (!task) {
		vmdkfs_error("ReconfigVM_Task on %s: no task", vm);
		return -EPROTO;
	}
	r = vs_wait_task(c, task, false, NULL);
	free(task);
	return r;
}

static int attach_disk(struct vs_conn *c, const char *proxy, const char *file,
		       uint64_t capacity, int ctl_key, int unit,
		       bool persistent, const char *label, int *key);

/* Not ended by a stop signal: once the reconfiguration went out the disk
 * is attached whatever we do, and only its key lets the caller detach
 * it. */
int vs_attach_disk(struct vs_conn *c, const char *proxy, const char *file,
		   uint64_t capacity, int ctl_key, int unit, bool persistent,
		   const char *label, int *key)
{
	int r;

	sig_hold(true);
	r = attach_disk(c, proxy, file, capacity, ctl_key, unit, persistent,
			label, key);
	sig_hold(false);
	return r;
}

/* The key of PROXY's disk: KEY itself (FILE NULL), or the disk of FILE at
 * (CTL_KEY, UNIT); 0 if there is none, or -errno. */
static int find_disk(struct vs_conn *c, const char *proxy, int key,
		     const char *file, int ctl_key, int unit)
{
	struct vs_hw hw;
	size_t i;
	int r = vs_hardware(c, proxy, NULL, &hw);

	if (r < 0)
		return r;
	for (i = 0; i < hw.ndisk && r == 0; i++)
		if (file ? hw.disk[i].ctl_key == ctl_key &&
			       hw.disk[i].unit == unit && hw.disk[i].file &&
			       !strcmp(hw.disk[i].file, file)
			 : hw.disk[i].key == key)
			r = hw.disk[i].key;
	vs_hardware_free(&hw);
	return r;
}

/* The pause before look I + 1 at a reconfiguration whose answer was
 * lost: 1 s (none in the fuzzer). */
static void look_pause(void)
{
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	sleep(1);
#endif
}

static int attach_disk(struct vs_conn *c, const char *proxy, const char *file,
		       uint64_t capacity, int ctl_key, int unit,
		       bool persistent, const char *label, int *key)
{
	char *f = vs_xml_escape(file), *l = vs_xml_escape(label);
	char *change = NULL;
	int r = -ENOMEM;

	*key = 0;
	/* No <fileOperation>: the file exists and must stay as it is. */
	if (f && l &&
	    asprintf(&change,
		     "<operation>add</operation>"
		     "<device xsi:type=\"VirtualDisk\"><key>-100</key>"
		     "<deviceInfo><label>%s</label><summary>%s</summary>"
		     "</deviceInfo>"
		     "<backing xsi:type=\"VirtualDiskFlatVer2BackingInfo\">"
		     "<fileName>%s</fileName><diskMode>%s</diskMode>"
		     "</backing><controllerKey>%d</controllerKey>"
		     "<unitNumber>%d</unitNumber>"
		     "<capacityInKB>%llu</capacityInKB></device>",
		     l, l, f,
		     persistent ? "persistent" : "independent_nonpersistent",
		     ctl_key, unit, (unsigned long long)(capacity / 1024)) >= 0)
		r = reconfig(c, proxy, change);
	free(change);
	free(f);
	free(l);
	if (r < 0) {
		/* The answer (of the call or of its task) may be lost with
		 * the disk attached all the same: look for it up to 10 s (a
		 * task still running), so that it is used, and detached in
		 * the end, rather than left on the proxy VM. */
		char why[1024];
		int looks = vs_answer_lost(c) ? 11 : 1, i, found = 0;

		snprintf(why, sizeof(why), "%s", vmdkfs_errmsg());
		for (i = 0; i < looks && found <= 0; i++) {
			if (i)
				look_pause();
			found = find_disk(c, proxy, 0, file, ctl_key, unit);
		}
		if (found <= 0) {
			vmdkfs_error("%s (and no disk %s appeared at controller "
				     "%d unit %d%s)",
				     why, file, ctl_key, unit,
				     looks > 1 ? " within 10 s; should it appear "
						 "later, vmdkfs cleanup "
						 "detaches it"
					       : "");
			return r;
		}
		vmdkfs_log(LOG_WARN,
			   "ReconfigVM_Task on %s: %s; the disk %s was "
			   "attached all the same (key %d): using it",
			   proxy, why, file, found);
		*key = found;
		return 0;
	}
	/* The key the host gave it: the disk now at (controller, unit). */
	r = find_disk(c, proxy, 0, file, ctl_key, unit);
	if (r < 0)
		return r;
	*key = r;
	if (!*key) {
		vmdkfs_error("ReconfigVM_Task on %s: no disk %s at controller "
			     "%d unit %d afterwards",
			     proxy, file, ctl_key, unit);
		return -EPROTO;
	}
	return 0;
}

int vs_detach_disk(struct vs_conn *c, const char *proxy, int key, int ctl_key,
		   int unit)
{
	char change[512], why[1024];
	int try, i, looks, found, r;

	/* No <fileOperation>destroy</fileOperation>: the file stays. */
	snprintf(change, sizeof(change),
		 "<operation>remove</operation>"
		 "<device xsi:type=\"VirtualDisk\"><key>%d</key>"
		 "<controllerKey>%d</controllerKey><unitNumber>%d</unitNumber>"
		 "<capacityInKB>0</capacityInKB></device>",
		 key, ctl_key, unit);
	for (try = 0;; try++) {
		r = reconfig(c, proxy, change);
		if (r == 0)
			return 0;
		/* Done all the same (its answer lost), or still to do. */
		snprintf(why, sizeof(why), "%s", vmdkfs_errmsg());
		looks = vs_answer_lost(c) ? 3 : 1;
		for (i = 0, found = 1; i < looks && found != 0; i++) {
			if (i)
				look_pause();
			found = find_disk(c, proxy, key, NULL, 0, 0);
		}
		if (found == 0) {
			vmdkfs_log(LOG_WARN,
				   "ReconfigVM_Task on %s: %s; disk %d was "
				   "detached all the same",
				   proxy, why, key);
			return 0;
		}
		if (try == 2)
			break;
		vmdkfs_log(LOG_WARN,
			   "ReconfigVM_Task on %s: detaching disk %d: %s; "
			   "trying again",
			   proxy, key, why);
		look_pause();
	}
	vmdkfs_error("%s", why);
	return r;
}

int vs_vm_files(struct vs_conn *c, const char *vm, char ***files, size_t *n)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr val, k;
	int r;

	*files = NULL;
	*n = 0;
	r = vs_prop(c, "VirtualMachine", vm, "layoutEx.file", &doc, &val);
	if (r < 0)
		return r;
	for (k = val ? val->children : NULL; k; k = k->next) {
		char **m;

		if (k->type != XML_ELEMENT_NODE)
			continue;
		m = realloc(*files, (*n + 1) * sizeof(*m));
		if (!m) {
			r = -ENOMEM;
			break;
		}
		*files = m;
		m[*n] = vs_text(child(k, "name"), NULL);
		if (m[*n])
			(*n)++;
	}
	xmlFreeDoc(doc);
	return r;
}

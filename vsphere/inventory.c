/* Inventory look-ups, snapshots and PrepareForAccess/EndAccess. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/sig.h"
#include "../common/progress.h"
#include "vsphere.h"

/* RetrievePropertiesEx of PATHS (NULL-terminated) of one object. */
static int retrieve(struct vs_conn *c, const char *type, const char *moref,
		    const char *const *paths, xmlDocPtr *out)
{
	char body[4096], *m = vs_xml_escape(moref);
	size_t pos;
	int r;

	if (!m)
		return -ENOMEM;
	pos = (size_t)snprintf(body, sizeof(body),
			       "<specSet><propSet><type>%s</type>", type);
	for (; *paths && pos < sizeof(body); paths++)
		pos += (size_t)snprintf(body + pos, sizeof(body) - pos,
					"<pathSet>%s</pathSet>", *paths);
	if (pos < sizeof(body))
		pos += (size_t)snprintf(body + pos, sizeof(body) - pos,
					"</propSet><objectSet><obj type=\"%s\">"
					"%s</obj></objectSet></specSet>"
					"<options/>",
					type, m);
	free(m);
	if (pos >= sizeof(body))
		return -E2BIG;
	r = vs_call(c, "RetrievePropertiesEx", "PropertyCollector",
		    vs_moref(c, "propertyCollector"), body, out);
	return r;
}

/* The <val> of property NAME in a RetrievePropertiesEx answer. */
static xmlNodePtr prop_val(xmlDocPtr doc, const char *name)
{
	xmlNodePtr n = xmlDocGetRootElement(doc);
	xmlNodePtr objs = vs_find(n, "objects"), k;

	for (k = objs ? objs->children : NULL; k; k = k->next) {
		char *pn;
		bool match;

		if (k->type != XML_ELEMENT_NODE ||
		    strcmp((const char *)k->name, "propSet") != 0)
			continue;
		pn = vs_text(k, "name");
		match = pn && strcmp(pn, name) == 0;
		free(pn);
		if (match)
			return vs_find(k, "val");
	}
	return NULL;
}

int vs_prop(struct vs_conn *c, const char *type, const char *moref,
	    const char *path, xmlDocPtr *doc, xmlNodePtr *val)
{
	const char *const paths[] = {path, NULL};
	int r = retrieve(c, type, moref, paths, doc);

	*val = r == 0 ? prop_val(*doc, path) : NULL;
	return r;
}

int vs_snapshot_exists(struct vs_conn *c, const char *snap)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr val;
	int r = vs_prop(c, "VirtualMachineSnapshot", snap, "vm", &doc, &val);

	if (r == -ENOENT) /* ManagedObjectNotFound */
		return 0;
	if (r == 0)
		r = val != NULL;
	if (doc)
		xmlFreeDoc(doc);
	return r;
}

char *vs_xsi_type(xmlNodePtr n)
{
	xmlChar *t = xmlGetProp(n, (const xmlChar *)"type");
	char *s = NULL;

	if (t) {
		const char *colon = strchr((const char *)t, ':');

		s = strdup(colon ? colon + 1 : (const char *)t);
	}
	xmlFree(t);
	return s;
}

static char *simple_call_result(struct vs_conn *c, const char *method,
				const char *type, const char *moref,
				const char *body, int *r)
{
	xmlDocPtr doc = NULL;
	char *v = NULL;

	*r = vs_call(c, method, type, moref, body, &doc);
	if (*r < 0)
		return NULL;
	v = vs_text(xmlDocGetRootElement(doc), "returnval");
	xmlFreeDoc(doc);
	return v;
}

/* ---- Finding a VM ---- */

/* Add the objects of one RetrievePropertiesEx/Continue answer to LIST;
 * the continuation token (or NULL) in *TOKEN. */
static int add_objects(xmlDocPtr doc, struct vs_vmref **list, size_t *n,
		       char **token)
{
	xmlNodePtr rv = vs_find(xmlDocGetRootElement(doc), "returnval"), k;

	*token = NULL;
	for (k = rv ? rv->children : NULL; k; k = k->next) {
		struct vs_vmref *l;

		if (k->type != XML_ELEMENT_NODE)
			continue;
		if (strcmp((const char *)k->name, "token") == 0) {
			*token = vs_text(k, NULL);
			continue;
		}
		if (strcmp((const char *)k->name, "objects") != 0)
			continue;
		l = realloc(*list, (*n + 1) * sizeof(*l));
		if (!l)
			return -ENOMEM;
		*list = l;
		l[*n].moref = vs_text(k, "obj");
		l[*n].name = vs_text(k, "val");
		(*n)++;
	}
	return 0;
}

int vs_list_vms(struct vs_conn *c, struct vs_vmref **list, size_t *n)
{
	char body[1024], *view = NULL, *token = NULL;
	xmlDocPtr doc = NULL;
	int r;

	*list = NULL;
	*n = 0;
	snprintf(body, sizeof(body),
		 "<container type=\"Folder\">%s</container>"
		 "<type>VirtualMachine</type><recursive>true</recursive>",
		 vs_moref(c, "rootFolder"));
	view = simple_call_result(c, "CreateContainerView", "ViewManager",
				  vs_moref(c, "viewManager"), body, &r);
	if (!view)
		return r < 0 ? r : -EPROTO;
	snprintf(
	    body, sizeof(body),
	    "<specSet><propSet><type>VirtualMachine</type>"
	    "<pathSet>name</pathSet></propSet>"
	    "<objectSet><obj type=\"ContainerView\">%s</obj><skip>true</skip>"
	    "<selectSet xsi:type=\"TraversalSpec\"><name>v</name>"
	    "<type>ContainerView</type><path>view</path><skip>false</skip>"
	    "</selectSet></objectSet></specSet><options/>",
	    view);
	r = vs_call(c, "RetrievePropertiesEx", "PropertyCollector",
		    vs_moref(c, "propertyCollector"), body, &doc);
	while (r == 0) {
		r = add_objects(doc, list, n, &token);
		xmlFreeDoc(doc);
		doc = NULL;
		if (r < 0 || !token)
			break;
		/* More pages: ContinueRetrievePropertiesEx with the token. */
		snprintf(body, sizeof(body), "<token>%s</token>", token);
		free(token);
		token = NULL;
		r = vs_call(c, "ContinueRetrievePropertiesEx",
			    "PropertyCollector",
			    vs_moref(c, "propertyCollector"), body, &doc);
	}
	free(token);
	{
		xmlDocPtr d2 = NULL;

		if (vs_call(c, "DestroyView", "ContainerView", view, NULL,
			    &d2) == 0)
			xmlFreeDoc(d2);
	}
	free(view);
	if (r < 0) {
		vs_vmrefs_free(*list, *n);
		*list = NULL;
		*n = 0;
	}
	return r;
}

void vs_vmrefs_free(struct vs_vmref *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(list[i].moref);
		free(list[i].name);
	}
	free(list);
}

static int find_by_name(struct vs_conn *c, const char *name, char **moref)
{
	struct vs_vmref *list;
	size_t n, i, found = 0;
	int r;

	r = vs_list_vms(c, &list, &n);
	if (r < 0)
		return r;
	for (i = 0; i < n; i++)
		if (list[i].name && strcmp(list[i].name, name) == 0 &&
		    found++ == 0)
			*moref = strdup(list[i].moref);
	vs_vmrefs_free(list, n);
	if (found == 0) {
		vmdkfs_error("no virtual machine is named \"%s\"", name);
		return -ENOENT;
	}
	if (found > 1) {
		vmdkfs_error("%zu virtual machines are named \"%s\"; give "
			     "vm=moid=... or vm=path=... instead",
			     found, name);
		free(*moref);
		*moref = NULL;
		return -EINVAL;
	}
	return *moref ? 0 : -ENOMEM;
}

int vs_find_vm(struct vs_conn *c, const char *spec, char **moref)
{
	char body[1024], *v = NULL, *e;
	int r = 0;

	*moref = NULL;
	if (strncmp(spec, "moid=", 5) == 0) {
		xmlDocPtr doc = NULL;
		static const char *const p[] = {"name", NULL};

		/* Check it exists (ManagedObjectNotFound otherwise). */
		r = retrieve(c, "VirtualMachine", spec + 5, p, &doc);
		if (r < 0) {
			if (r == -ENOENT)
				vmdkfs_error("no virtual machine has the "
					     "moref \"%s\"",
					     spec + 5);
			return r;
		}
		xmlFreeDoc(doc);
		*moref = strdup(spec + 5);
		return *moref ? 0 : -ENOMEM;
	}
	if (strncmp(spec, "uuid=", 5) == 0 || strncmp(spec, "path=", 5) == 0) {
		bool uuid = spec[0] == 'u';

		e = vs_xml_escape(spec + 5);
		if (!e)
			return -ENOMEM;
		if (uuid)
			snprintf(body, sizeof(body),
				 "<uuid>%s</uuid><vmSearch>true</vmSearch>"
				 "<instanceUuid>false</instanceUuid>",
				 e);
		else
			snprintf(body, sizeof(body),
				 "<inventoryPath>%s</inventoryPath>", e);
		free(e);
		v = simple_call_result(
		    c, uuid ? "FindByUuid" : "FindByInventoryPath",
		    "SearchIndex", vs_moref(c, "searchIndex"), body, &r);
		if (r < 0)
			return r;
		if (!v || !*v) {
			free(v);
			vmdkfs_error("no virtual machine has the %s \"%s\"",
				     uuid ? "BIOS UUID" : "inventory path",
				     spec + 5);
			return -ENOENT;
		}
		*moref = v;
		return 0;
	}
	return find_by_name(c, strncmp(spec, "name=", 5) == 0 ? spec + 5 : spec,
			    moref);
}

/* ---- VM facts and snapshots ---- */

static int add_snapshots(xmlNodePtr list, struct vs_vm *vm)
{
	xmlNodePtr k;

	for (k = list; k; k = k->next) {
		struct vs_snapshot *s;
		xmlNodePtr snapnode, kids;

		if (k->type != XML_ELEMENT_NODE ||
		    (strcmp((const char *)k->name, "rootSnapshotList") != 0 &&
		     strcmp((const char *)k->name, "childSnapshotList") != 0))
			continue;
		s = realloc(vm->snaps, (vm->nsnaps + 1) * sizeof(*s));
		if (!s)
			return -ENOMEM;
		vm->snaps = s;
		s = &vm->snaps[vm->nsnaps++];
		memset(s, 0, sizeof(*s));
		/* Direct children only: nested lists are handled below. */
		for (snapnode = k->children; snapnode;
		     snapnode = snapnode->next) {
			if (snapnode->type != XML_ELEMENT_NODE)
				continue;
			if (!strcmp((const char *)snapnode->name, "snapshot"))
				s->moref = vs_text(snapnode, NULL);
			else if (!strcmp((const char *)snapnode->name, "name"))
				s->name = vs_text(snapnode, NULL);
		}
		kids = k->children;
		if (add_snapshots(kids, vm) < 0)
			return -ENOMEM;
	}
	return 0;
}

int vs_vm_info(struct vs_conn *c, const char *moref, struct vs_vm *vm)
{
	static const char *const p[] = {"name", "runtime.powerState",
					"snapshot", NULL};
	xmlDocPtr doc = NULL;
	xmlNodePtr v;
	int r;

	memset(vm, 0, sizeof(*vm));
	r = retrieve(c, "VirtualMachine", moref, p, &doc);
	if (r < 0)
		return r;
	vm->moref = strdup(moref);
	v = prop_val(doc, "name");
	vm->name = v ? vs_text(v, NULL) : strdup(moref);
	v = prop_val(doc, "runtime.powerState");
	vm->power_state = v ? vs_text(v, NULL) : strdup("unknown");
	v = prop_val(doc, "snapshot");
	if (v)
		r = add_snapshots(v->children, vm);
	xmlFreeDoc(doc);
	return r;
}

void vs_vm_free(struct vs_vm *vm)
{
	size_t i;

	for (i = 0; i < vm->nsnaps; i++) {
		free(vm->snaps[i].moref);
		free(vm->snaps[i].name);
	}
	free(vm->snaps);
	free(vm->moref);
	free(vm->name);
	free(vm->power_state);
	memset(vm, 0, sizeof(*vm));
}

int vs_disks(struct vs_conn *c, const char *vm, const char *snap,
	     struct vs_disk **disks, size_t *n)
{
	static const char *const p[] = {"config.hardware.device", NULL};
	xmlDocPtr doc = NULL;
	xmlNodePtr val, k;
	int r;

	*disks = NULL;
	*n = 0;
	r = snap ? retrieve(c, "VirtualMachineSnapshot", snap, p, &doc)
		 : retrieve(c, "VirtualMachine", vm, p, &doc);
	if (r < 0)
		return r;
	val = prop_val(doc, "config.hardware.device");
	for (k = val ? val->children : NULL; k; k = k->next) {
		char *type = k->type == XML_ELEMENT_NODE ? vs_xsi_type(k) : NULL;
		xmlNodePtr backing;
		struct vs_disk *d;
		char *s;

		if (!type || strcmp(type, "VirtualDisk") != 0) {
			free(type);
			continue;
		}
		free(type);
		d = realloc(*disks, (*n + 1) * sizeof(*d));
		if (!d) {
			r = -ENOMEM;
			break;
		}
		*disks = d;
		d = &d[(*n)++];
		memset(d, 0, sizeof(*d));
		s = vs_text(k, "key");
		d->key = s ? atoi(s) : 0;
		free(s);
		d->label = vs_text(k, "label");
		s = vs_text(k, "capacityInBytes");
		if (!s) {
			s = vs_text(k, "capacityInKB");
			d->capacity = s ? strtoull(s, NULL, 10) * 1024 : 0;
		} else {
			d->capacity = strtoull(s, NULL, 10);
		}
		free(s);
		backing = vs_find(k, "backing");
		/* The top link's fileName: the first one under backing,
		 * before any <parent>. */
		if (backing) {
			xmlNodePtr b;

			for (b = backing->children; b; b = b->next) {
				if (b->type != XML_ELEMENT_NODE)
					continue;
				if (!strcmp((const char *)b->name, "fileName"))
					d->file = vs_text(b, NULL);
				else if (!strcmp((const char *)b->name,
						 "changeId"))
					d->change_id = vs_text(b, NULL);
			}
		}
		if (!d->file) {
			vmdkfs_error("%s: disk %d has no backing file name "
				     "(raw device mapping?)",
				     snap ? snap : vm, d->key);
			r = -ENOTSUP;
			break;
		}
	}
	xmlFreeDoc(doc);
	if (r < 0) {
		vs_disks_free(*disks, *n);
		*disks = NULL;
		*n = 0;
	}
	return r;
}

void vs_disks_free(struct vs_disk *disks, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(disks[i].label);
		free(disks[i].file);
		free(disks[i].change_id);
	}
	free(disks);
}

int vs_create_snapshot(struct vs_conn *c, const char *vm, const char *name,
		       bool quiesce, char **snap, char **task_out)
{
	char body[1024], *e = vs_xml_escape(name), *task;
	int r;

	if (!e)
		return -ENOMEM;
	snprintf(body, sizeof(body),
		 "<name>%s</name><description>vmdkfs temporary snapshot"
		 "</description><memory>false</memory><quiesce>%s</quiesce>",
		 e, quiesce ? "true" : "false");
	free(e);
	task = simple_call_result(c, "CreateSnapshot_Task", "VirtualMachine",
				  vm, body, &r);
	if (!task)
		return r < 0 ? r : -EPROTO;
	r = vs_wait_task(c, task, true, snap);
	if (task_out)
		*task_out = task;
	else
		free(task);
	if (r == 0 && !*snap) {
		vmdkfs_error("CreateSnapshot_Task gave no snapshot");
		r = -EPROTO;
	}
	return r;
}

int vs_remove_snapshot(struct vs_conn *c, const char *snap)
{
	char *task;
	int r;

	task = simple_call_result(c, "RemoveSnapshot_Task",
				  "VirtualMachineSnapshot", snap,
				  "<removeChildren>false</removeChildren>"
				  "<consolidate>true</consolidate>",
				  &r);
	if (!task)
		return r < 0 ? r : -EPROTO;
	r = vs_wait_task(c, task, true, NULL);
	free(task);
	return r;
}

/* DisableMethods / EnableMethods on the internal AuthorizationManager, in
 * the request shape of govmomi's object/authorization_manager_internal.go:
 * DisableMethods takes <method><method>NAME</method><reasonId>WHY</reasonId>
 * </method>, EnableMethods plain <method>NAME</method>. */
static int access_methods(struct vs_conn *c, bool disable, const char *vm,
			  const char *source, const char *reason)
{
	char *e = vs_xml_escape(source), *m = vs_xml_escape(vm);
	char *why = vs_xml_escape(reason ? reason : "");
	char body[1536];
	xmlDocPtr doc = NULL;
	int r = -ENOMEM;

	if (e && m && why) {
		if (disable)
			snprintf(body, sizeof(body),
				 "<entity type=\"VirtualMachine\">%s</entity>"
				 "<method><method>RelocateVM_Task</method>"
				 "<reasonId>%s</reasonId></method>"
				 "<sourceId>%s</sourceId>",
				 m, why, e);
		else
			snprintf(body, sizeof(body),
				 "<entity type=\"VirtualMachine\">%s</entity>"
				 "<method>RelocateVM_Task</method>"
				 "<sourceId>%s</sourceId>",
				 m, e);
		r = vs_call_ns(c, "urn:internalvim25",
			       disable ? "DisableMethods" : "EnableMethods",
			       "AuthorizationManager",
			       vs_moref(c, "authorizationManager"), body, &doc);
	}
	free(e);
	free(m);
	free(why);
	if (doc)
		xmlFreeDoc(doc);
	return r;
}

int vs_disabled_methods(struct vs_conn *c, const char *vm, char ***methods,
			size_t *n)
{
	static const char *const p[] = {"disabledMethod", NULL};
	xmlDocPtr doc = NULL;
	xmlNodePtr v, k;
	int r;

	*methods = NULL;
	*n = 0;
	r = retrieve(c, "VirtualMachine", vm, p, &doc);
	if (r < 0)
		return r;
	v = prop_val(doc, "disabledMethod");
	for (k = v ? v->children : NULL; k; k = k->next) {
		char **m;

		if (k->type != XML_ELEMENT_NODE)
			continue;
		m = realloc(*methods, (*n + 1) * sizeof(*m));
		if (!m) {
			r = -ENOMEM;
			break;
		}
		*methods = m;
		m[(*n)++] = vs_text(k, NULL);
	}
	xmlFreeDoc(doc);
	return r;
}

int vs_disable_relocate(struct vs_conn *c, const char *vm, const char *source,
			const char *identity)
{
	return access_methods(c, true, vm, source, identity);
}

int vs_enable_relocate(struct vs_conn *c, const char *vm, const char *source)
{
	return access_methods(c, false, vm, source, NULL);
}

/* ---- Tasks ---- */

static int wait_task(struct vs_conn *c, const char *task, bool progress,
		     char **result);

/* A task runs to its end on the server whatever we do: a stop signal
 * does not end the wait (the stop is seen after, and what the task did
 * is undone). */
int vs_wait_task(struct vs_conn *c, const char *task, bool progress,
		 char **result)
{
	int r;

	sig_hold(true);
	r = wait_task(c, task, progress, result);
	sig_hold(false);
	return r;
}

static int wait_task(struct vs_conn *c, const char *task, bool progress,
		     char **result)
{
	static const char *const p[] = {"info", NULL};
	struct progress pr = {0};
	unsigned delay = 50000;
	int r;

	if (result)
		*result = NULL;
	for (;;) {
		xmlDocPtr doc = NULL;
		xmlNodePtr info;
		char *state, *pct, *desc;

		r = retrieve(c, "Task", task, p, &doc);
		if (r < 0) {
			progress_end(&pr);
			return r;
		}
		info = prop_val(doc, "info");
		state = info ? vs_text(info, "state") : NULL;
		pct = info ? vs_text(info, "progress") : NULL;
		desc = info ? vs_text(info, "descriptionId") : NULL;
		if (progress)
			progress_update(&pr, "%s: %s%s (%s)",
					desc ? desc : task, pct ? pct : "",
					pct ? "%" : "running", task);
		if (state && strcmp(state, "success") == 0) {
			if (result)
				*result = vs_text(info, "result");
			r = 0;
		} else if (state && strcmp(state, "error") == 0) {
			xmlNodePtr err = vs_find(info, "error");
			char *msg =
			    err ? vs_text(err, "localizedMessage") : NULL;
			xmlNodePtr f = err ? vs_find(err, "fault") : NULL;
			char *ft = f ? vs_xsi_type(f) : NULL;

			vmdkfs_error("task %s (%s) failed: %s: %s", task,
				     desc ? desc : "?", ft ? ft : "fault",
				     msg ? msg : "(no message)");
			free(msg);
			free(ft);
			r = -EIO;
		} else {
			r = 1;
		}
		free(state);
		free(pct);
		free(desc);
		xmlFreeDoc(doc);
		if (r <= 0) {
			progress_end(&pr);
			return r;
		}
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
		usleep(delay);
#endif
		if (delay < 1000000)
			delay *= 2;
	}
}

/* ---- Datastores ---- */

static int datastore_facts(struct vs_conn *c, const char *moref,
			   struct vs_datastore *ds)
{
	static const char *const p[] = {"summary.name", "summary.type", "info",
					NULL};
	xmlDocPtr doc = NULL;
	xmlNodePtr info, vmfs, k;
	int r = retrieve(c, "Datastore", moref, p, &doc);

	if (r < 0)
		return r;
	ds->moref = strdup(moref);
	info = prop_val(doc, "summary.name");
	ds->name = info ? vs_text(info, NULL) : NULL;
	info = prop_val(doc, "summary.type");
	ds->type = info ? vs_text(info, NULL) : NULL;
	info = prop_val(doc, "info");
	vmfs = info ? vs_find(info, "vmfs") : NULL;
	if (vmfs) {
		char *s = vs_text(vmfs, "majorVersion");

		ds->vmfs_major = s ? atoi(s) : 0;
		free(s);
		for (k = vmfs->children; k; k = k->next) {
			if (k->type != XML_ELEMENT_NODE)
				continue;
			if (!strcmp((const char *)k->name, "uuid")) {
				free(ds->vmfs_uuid);
				ds->vmfs_uuid = vs_text(k, NULL);
			} else if (!strcmp((const char *)k->name, "extent") &&
				   ds->next < VS_MAX_EXTENTS) {
				s = vs_text(k, "partition");
				ds->ext[ds->next].disk = vs_text(k, "diskName");
				ds->ext[ds->next].partition = s ? atoi(s) : 0;
				free(s);
				ds->next++;
			}
		}
	}
	xmlFreeDoc(doc);
	return ds->moref ? 0 : -ENOMEM;
}

int vs_datastore(struct vs_conn *c, const char *vm, const char *name,
		 struct vs_datastore *ds)
{
	static const char *const p[] = {"datastore", NULL};
	xmlDocPtr doc = NULL;
	xmlNodePtr val, k;
	int r = retrieve(c, "VirtualMachine", vm, p, &doc);

	memset(ds, 0, sizeof(*ds));
	if (r < 0)
		return r;
	val = prop_val(doc, "datastore");
	r = -ENOENT;
	for (k = val ? val->children : NULL; k; k = k->next) {
		char *moref;

		if (k->type != XML_ELEMENT_NODE)
			continue;
		moref = vs_text(k, NULL);
		r = moref ? datastore_facts(c, moref, ds) : -ENOMEM;
		free(moref);
		if (r < 0)
			break;
		if (ds->name && strcmp(ds->name, name) == 0)
			break;
		vs_datastore_free(ds);
		r = -ENOENT;
	}
	xmlFreeDoc(doc);
	if (r == -ENOENT)
		vmdkfs_error("VM %s has no datastore named %s", vm, name);
	return r;
}

void vs_datastore_free(struct vs_datastore *ds)
{
	size_t i;

	free(ds->moref);
	free(ds->name);
	free(ds->type);
	free(ds->vmfs_uuid);
	for (i = 0; i < ds->next; i++)
		free(ds->ext[i].disk);
	memset(ds, 0, sizeof(*ds));
}

/* ---- NFC tickets ---- */

/* The moref of the host VM runs on (runtime.host) in *HOST, NULL when
 * the VM has none. */
static int vm_host(struct vs_conn *c, const char *vm, char **host)
{
	static const char *const p[] = {"runtime.host", NULL};
	xmlDocPtr doc = NULL;
	xmlNodePtr v;
	int r = retrieve(c, "VirtualMachine", vm, p, &doc);

	*host = NULL;
	if (r < 0)
		return r;
	v = prop_val(doc, "runtime.host");
	*host = v ? vs_text(v, NULL) : NULL;
	xmlFreeDoc(doc);
	return 0;
}

/* The calls as VDDK was recorded to make them (OpenVixDiskLib
 * docs/nfc_auth.md, "Stage 2: NFC ticket"): in urn:vim25, with
 * hostForAccess the host the VM runs on. */
int vs_nfc_ticket(struct vs_conn *c, const char *vm, int disk_key, bool rw,
		  struct vs_ticket *t)
{
	xmlDocPtr doc = NULL;
	xmlNodePtr rv;
	char body[1024], *svc, *port, *host, *hx = NULL;
	int r;

	memset(t, 0, sizeof(*t));
	/* The NFC service is not in the public WSDL: take its reference from
	 * RetrieveInternalContent, never assume its name. */
	r = vs_call(c, "RetrieveInternalContent", "ServiceInstance",
		    "ServiceInstance", NULL, &doc);
	if (r < 0)
		return r;
	svc = vs_text(xmlDocGetRootElement(doc), "nfcService");
	xmlFreeDoc(doc);
	doc = NULL;
	if (!svc || !*svc) {
		free(svc);
		vmdkfs_error("RetrieveInternalContent: no NFC service");
		return -EOPNOTSUPP;
	}
	r = vm_host(c, vm, &host);
	if (r < 0) {
		free(svc);
		return r;
	}
	if (!host)
		vmdkfs_log(LOG_WARN, "%s: runtime.host unknown; NFC ticket "
			   "without hostForAccess", vm);
	else if (!(hx = vs_xml_escape(host))) {
		free(host);
		free(svc);
		return -ENOMEM;
	}
	snprintf(body, sizeof(body),
		 "<vm type=\"VirtualMachine\">%s</vm>"
		 "<diskDeviceKey>%d</diskDeviceKey>"
		 "%s%s%s",
		 vm, disk_key, hx ? "<hostForAccess type=\"HostSystem\">" : "",
		 hx ? hx : "", hx ? "</hostForAccess>" : "");
	free(host);
	free(hx);
	r = vs_call(c,
		    rw ? "NfcRandomAccessOpenDisk"
		       : "NfcRandomAccessOpenReadonly",
		    "NfcService", svc, body, &doc);
	free(svc);
	if (r < 0)
		return r;
	rv = vs_find(xmlDocGetRootElement(doc), "returnval");
	t->host = rv ? vs_text(rv, "host") : NULL;
	port = rv ? vs_text(rv, "port") : NULL;
	t->port = port ? atoi(port) : 902;
	free(port);
	t->thumbprint = rv ? vs_text(rv, "sslThumbprint") : NULL;
	t->service = rv ? vs_text(rv, "service") : NULL;
	t->session = rv ? vs_text(rv, "sessionId") : NULL;
	xmlFreeDoc(doc);
	if (!t->session || !t->service) {
		vmdkfs_error("NFC ticket for %s disk %d lacks a session or "
			     "service",
			     vm, disk_key);
		vs_ticket_free(t);
		return -EPROTO;
	}
	return 0;
}

void vs_ticket_free(struct vs_ticket *t)
{
	free(t->host);
	free(t->thumbprint);
	free(t->service);
	if (t->session)
		explicit_bzero(t->session, strlen(t->session));
	free(t->session);
	memset(t, 0, sizeof(*t));
}

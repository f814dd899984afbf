/* Browsing a whole vCenter or ESXi host in one mount: server= without vm=.
 *
 *   MOUNT/VM/SNAPSHOT/DISK.raw   a snapshot's disks (a folder per snapshot)
 *   MOUNT/VM/current/DISK.raw    a powered-off VM's own disks
 *   MOUNT/VM/.../DISK-pN.raw     its partitions, once DISK was opened
 *
 * Folders are filled from the inventory when first looked at, and again
 * on a look once inventory_ttl seconds old (the tree's refill hook); what
 * the inventory no longer has is marked gone (hidden, ENOENT) and kept
 * until unmount, as file handles may hold its node.  Sizes and xattrs are
 * the inventory's, so listing opens no disk.  A disk opens (ticket,
 * transport chosen by transport_open from the same disk_spec a single-VM
 * mount fills) on its first open, stays open while a file handle holds
 * it, and closes idle_close seconds after its last close; at most
 * max_open_disks are open at once (an idle one is closed to make room;
 * when all are in use an open waits open_wait seconds, then EBUSY).  An
 * open that really opens the disk, or that finds the inventory older than
 * inventory_ttl, first checks that the VM and the snapshot still exist
 * (one RetrievePropertiesEx): a disk gone from the inventory gives ENOENT,
 * never a stale disk.  PrepareForAccess on a VM when its first disk
 * opens, EndAccess when its last disk closes.  Browsing is read-only.
 *
 * Partition files: reading a table opens the disk, so a disk's partition
 * files appear beside it once the disk has been opened (the table is read
 * then, once; a snapshot does not change).  Each is opened through its
 * disk (a reference on it) as a window (part_disk_open) made at its first
 * open, so it never outlives the disk it reads.
 *
 * Locks: the tree's lock (held by fillers) may be taken before bw.lock,
 * never after it: bw.lock is a leaf.  Opening, closing and SOAP calls run
 * without bw.lock; a disk's state (OPENING, CLOSING) makes others wait on
 * bw.cond.  A VM's alock orders its PrepareForAccess and EndAccess, taken
 * without bw.lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../common/err.h"
#include "../part/part.h"
#include "../transports/transport.h"
#include "../transports/vm.h"
#include "../vsphere/vsphere.h"
#include "fs.h"
#include "layers.h"
#include "provider.h"

/* vsmount.c's source id: vmdkfs cleanup re-enables what it disabled. */
#define SOURCE_ID "vmdkfs"
#define CURRENT "current"

struct bvm {
	char *moref, *name;
	struct fs_node *node;
	pthread_mutex_t alock;
	unsigned users; /* disks of the VM opening or open (alock) */
	bool disabled;	/* PrepareForAccess done: EndAccess owed */
	struct bvm *next;
};

struct bsnap {
	struct bvm *vm;
	char *moref; /* NULL: current/ */
	char *name;  /* as the inventory names it ("current") */
	struct bsnap *next;
};

enum lz_state { LZ_CLOSED, LZ_OPENING, LZ_OPEN, LZ_CLOSING };

struct fs_lazy {
	struct fs_node *node;
	struct bsnap *snap;
	struct fs_lazy *parent;	 /* a partition: its disk's */
	struct part_entry entry; /* a partition's table entry */
	struct vs_disk vd;	 /* a disk's inventory facts (owned) */
	uint64_t size;		 /* bytes */
	/* bw.lock: */
	enum lz_state state;
	unsigned refs;	       /* file handles (and partitions) holding it */
	double idle_since;     /* open, refs 0: since when (mono) */
	double verified;       /* the inventory last showed it (mono) */
	const char *transport; /* in use or last used; NULL: never */
	bool expanded;	       /* its partitions looked for */
	struct fs_lazy *next;
};

static struct {
	bool on;
	struct vs_conn *conn;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	unsigned nopen;	     /* disks OPENING, OPEN or CLOSING */
	struct fs_lazy *all;
	struct bvm *vms;
	struct bsnap *snaps;
	pthread_t idler;
	bool idler_on, stop;
	bool no_access; /* a direct ESXi host: no PrepareForAccess */
} bw = {.lock = PTHREAD_MUTEX_INITIALIZER};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Wait on bw.cond until mono() time UNTIL.  Called with bw.lock held. */
static void wait_until(double until)
{
	struct timespec ts;

	ts.tv_sec = (time_t)until;
	ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
	pthread_cond_timedwait(&bw.cond, &bw.lock, &ts);
}

static uint64_t lazy_size(const struct fs_file *f)
{
	const struct fs_lazy *lz = f->priv;

	return lz->size;
}

static const char *lazy_transport(const struct fs_file *f)
{
	const struct fs_lazy *lz = f->priv;

	return lz->parent ? lz->parent->transport : lz->transport;
}

static int lazy_get(struct fs_node *n, bool *keep_cache);
static void lazy_put(struct fs_node *n);
static bool lazy_miss(struct fs_node *dir, const char *name);

/* A browsed disk, or a partition of one: opened on its first open,
 * closed when idle (the tree's DISK is NULL while closed; its size and
 * facts are the inventory's). */
static const struct fs_file_ops lazy_ops = {
    .get = lazy_get,
    .put = lazy_put,
    .size = lazy_size,
    .transport = lazy_transport,
};

/* The browsed disk or partition of node N, or NULL. */
static struct fs_lazy *lazy_of(const struct fs_node *n)
{
	return n && n->file && n->file->ops == &lazy_ops ? n->file->priv
							  : NULL;
}

/* ---- Filling the folders ---- */

/* A folder name from NAME (fs_dir_name; a '/' in it is a character of
 * the name, not a path), unique among the visible entries of DIR. */
static void unique_name(struct fs_node *dir, const char *name, char *out,
			size_t size)
{
	char base[200], flat[256], *p;
	int k;

	snprintf(flat, sizeof(flat), "%s", name);
	for (p = flat; (p = strchr(p, '/'));)
		*p = '_';
	fs_dir_name(flat, base, sizeof(base));
	snprintf(out, size, "%s", base);
	for (k = 2; fs_child(dir, out); k++)
		snprintf(out, size, "%s-%d", base, k);
}

/* Make node N, gone, visible again unless its name was taken meanwhile.
 * Called with the tree locked. */
static bool revive(struct fs_node *dir, struct fs_node *n)
{
	if (fs_child(dir, n->name))
		return false;
	n->gone = false;
	return true;
}

static void all_gone(struct fs_node *dir)
{
	size_t i;

	for (i = 0; i < dir->nkids; i++)
		dir->kids[i]->gone = true;
}

static int fill_vm(struct fs_node *dir, void *arg);
static int fill_snap(struct fs_node *dir, void *arg);

/* The root: a folder per VM (vms= filters).  Called with the tree
 * locked. */
static int fill_root(struct fs_node *root, void *arg)
{
	struct vs_vmref *list;
	bool *found;
	size_t n, i, k;
	int r;

	(void)arg;
	r = vs_list_vms(bw.conn, &list, &n);
	if (r < 0)
		return r;
	found = calloc(n + 1, sizeof(*found));
	if (!found) {
		vs_vmrefs_free(list, n);
		return -ENOMEM;
	}
	all_gone(root);
	for (i = 0; i < n; i++) {
		found[i] =
		    !list[i].moref || !list[i].name ||
		    (fs_cfg.vms && fnmatch(fs_cfg.vms, list[i].name, 0) != 0);
		/* First the folders already made: their names stay. */
		for (k = 0; !found[i] && k < root->nkids; k++) {
			struct fs_node *kn = root->kids[k];
			struct bvm *v = kn->fill_arg;

			if (kn->refill == fill_vm && v &&
			    !strcmp(v->moref, list[i].moref) &&
			    !strcmp(v->name, list[i].name) && revive(root, kn))
				found[i] = true;
		}
	}
	for (i = 0; i < n && r == 0; i++) {
		struct bvm *v;
		char name[256];

		if (found[i])
			continue;
		v = calloc(1, sizeof(*v));
		if (!v || !(v->moref = strdup(list[i].moref)) ||
		    !(v->name = strdup(list[i].name))) {
			if (v)
				free(v->moref);
			free(v);
			r = -ENOMEM;
			break;
		}
		pthread_mutex_init(&v->alock, NULL);
		unique_name(root, v->name, name, sizeof(name));
		v->node = fs_mkdir(root, name);
		if (!v->node) {
			free(v->moref);
			free(v->name);
			free(v);
			r = -ENOMEM;
			break;
		}
		fs_set_refill(v->node, fill_vm, v);
		v->next = bw.vms;
		bw.vms = v;
	}
	free(found);
	vs_vmrefs_free(list, n);
	root->fresh_until = time(NULL) + fs_cfg.inventory_ttl;
	return r;
}

/* A VM's folder: a folder per snapshot, and current/ when it is powered
 * off.  Called with the tree locked. */
static int fill_vm(struct fs_node *dir, void *arg)
{
	struct bvm *v = arg;
	struct vs_vm vm;
	bool *found;
	size_t n, i, k;
	int r;

	r = vs_vm_info(bw.conn, v->moref, &vm);
	if (r == -ENOENT) { /* the VM is gone */
		log_info("%s: VM %s is gone from the inventory", dir->name,
			 v->moref);
		dir->gone = true;
		all_gone(dir);
		return 0;
	}
	if (r < 0)
		return r;
	/* Entry 0: current/ (NULL moref); 1..: the snapshots. */
	n = vm.nsnaps + 1;
	found = calloc(n, sizeof(*found));
	if (!found) {
		vs_vm_free(&vm);
		return -ENOMEM;
	}
	found[0] = strcmp(vm.power_state, "poweredOff") != 0;
	all_gone(dir);
	for (i = 0; i < n; i++) {
		const char *moref = i ? vm.snaps[i - 1].moref : NULL;
		const char *name = i ? vm.snaps[i - 1].name : CURRENT;

		if (i && !moref)
			found[i] = true;
		if (i && !name)
			name = moref;
		for (k = 0; !found[i] && k < dir->nkids; k++) {
			struct fs_node *kn = dir->kids[k];
			struct bsnap *s = kn->fill_arg;

			if (kn->refill != fill_snap || !s ||
			    !!s->moref != !!moref ||
			    (moref && strcmp(s->moref, moref)) ||
			    strcmp(s->name, name))
				continue;
			found[i] = revive(dir, kn);
		}
	}
	for (i = 0; i < n && r == 0; i++) {
		const char *moref = i ? vm.snaps[i - 1].moref : NULL;
		const char *name = i ? vm.snaps[i - 1].name : CURRENT;
		struct fs_node *node;
		struct bsnap *s;
		char fname[256];

		if (found[i])
			continue;
		if (!name)
			name = moref;
		s = calloc(1, sizeof(*s));
		if (!s || !(s->name = strdup(name)) ||
		    (moref && !(s->moref = strdup(moref)))) {
			if (s)
				free(s->name);
			free(s);
			r = -ENOMEM;
			break;
		}
		s->vm = v;
		unique_name(dir, name, fname, sizeof(fname));
		node = fs_mkdir(dir, fname);
		if (!node) {
			free(s->name);
			free(s->moref);
			free(s);
			r = -ENOMEM;
			break;
		}
		fs_set_refill(node, fill_snap, s);
		s->next = bw.snaps;
		bw.snaps = s;
	}
	free(found);
	vs_vm_free(&vm);
	dir->fresh_until = time(NULL) + fs_cfg.inventory_ttl;
	return r;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_disk(const struct vs_disk *a, const struct vs_disk *b)
{
	return a->key == b->key && a->capacity == b->capacity &&
	       same_str(a->file, b->file) &&
	       same_str(a->change_id, b->change_id);
}

static void lazy_add(struct fs_lazy *lz)
{
	pthread_mutex_lock(&bw.lock);
	lz->next = bw.all;
	bw.all = lz;
	pthread_mutex_unlock(&bw.lock);
}

/* A flat file for disk D of snapshot S in DIR.  Called with the tree
 * locked. */
static int add_lazy_disk(struct fs_node *dir, struct bsnap *s,
			 const struct vs_disk *d)
{
	struct fs_lazy *lz = calloc(1, sizeof(*lz));
	char *src = NULL;
	struct fs_node *n;
	struct fs_file *f;

	if (!lz)
		return -ENOMEM;
	if (vm_local_path(&fs_cfg, d->file, &src) < 0)
		src = NULL; /* not a datastore path: shown as it is */
	if (!src && !(src = strdup(d->file)))
		goto out_nomem;
	lz->vd.key = d->key;
	lz->vd.capacity = d->capacity;
	lz->vd.file = strdup(d->file);
	lz->vd.label = d->label ? strdup(d->label) : NULL;
	lz->vd.change_id = d->change_id ? strdup(d->change_id) : NULL;
	if (!lz->vd.file)
		goto out_nomem;
	n = fs_add_lazy(dir, d->label ? d->label : d->file, src, &lazy_ops,
			lz);
	if (!n)
		goto out_nomem;
	src = NULL; /* the tree's */
	f = n->file;
	f->ds_path = strdup(d->file);
	f->change_id = d->change_id ? strdup(d->change_id) : NULL;
	f->device_key = d->key;
	f->vm = strdup(s->vm->moref);
	f->snapshot = s->moref ? strdup(s->moref) : NULL;
	lz->node = n;
	lz->snap = s;
	lz->size = d->capacity;
	lz->verified = mono();
	dir->miss = lazy_miss; /* its partitions, before it was opened */
	lazy_add(lz);
	return 0;
out_nomem:
	free(src);
	free(lz->vd.file);
	free(lz->vd.label);
	free(lz->vd.change_id);
	free(lz);
	return -ENOMEM;
}

/* A snapshot's (or current/'s) folder: its disks.  Called with the tree
 * locked. */
static int fill_snap(struct fs_node *dir, void *arg)
{
	struct bsnap *s = arg;
	struct vs_disk *disks;
	bool *found;
	double now = mono();
	size_t n, i, k;
	int r;

	r = vs_disks(bw.conn, s->vm->moref, s->moref, &disks, &n);
	if (r == -ENOENT) {
		log_info("%s: snapshot %s of %s is gone from the inventory",
			 dir->name, s->moref ? s->moref : CURRENT,
			 s->vm->moref);
		dir->gone = true;
		all_gone(dir);
		return 0;
	}
	if (r < 0)
		return r;
	found = calloc(n + 1, sizeof(*found));
	if (!found) {
		vs_disks_free(disks, n);
		return -ENOMEM;
	}
	all_gone(dir);
	for (i = 0; i < n; i++) {
		found[i] = !disks[i].file;
		for (k = 0; !found[i] && k < dir->nkids; k++) {
			struct fs_node *kn = dir->kids[k];
			struct fs_lazy *lz = lazy_of(kn);

			if (!lz || lz->parent || !same_disk(&lz->vd, &disks[i]))
				continue;
			found[i] = revive(dir, kn);
			if (found[i]) {
				pthread_mutex_lock(&bw.lock);
				lz->verified = now;
				pthread_mutex_unlock(&bw.lock);
			}
		}
	}
	for (i = 0; i < n && r == 0; i++)
		if (!found[i])
			r = add_lazy_disk(dir, s, &disks[i]);
	/* Partition files stay as long as their disk does. */
	for (k = 0; k < dir->nkids; k++) {
		struct fs_node *kn = dir->kids[k];
		struct fs_lazy *lz = lazy_of(kn);

		if (lz && lz->parent)
			kn->gone = lz->parent->node->gone;
	}
	free(found);
	vs_disks_free(disks, n);
	dir->fresh_until = time(NULL) + fs_cfg.inventory_ttl;
	return r;
}

/* ---- PrepareForAccess / EndAccess, per VM ---- */

/* The first disk of V opens: PrepareForAccess once (no retries: an open
 * must not wait minutes; prepare_access=required makes a refusal fail
 * the open).  0 or -errno. */
static int vm_enter(struct bvm *v, const char *shown)
{
	bool required = strcmp(fs_cfg.prepare_access, "required") == 0;
	char who[64];
	int r = 0;

	pthread_mutex_lock(&v->alock);
	if (v->users++ > 0 || bw.no_access ||
	    strcmp(fs_cfg.prepare_access, "off") == 0)
		goto out;
	vm_identity(&fs_cfg, who, sizeof(who));
	r = vs_disable_relocate(bw.conn, v->moref, SOURCE_ID, who);
	if (r == 0) {
		v->disabled = true;
		log_info("PrepareForAccess: RelocateVM_Task disabled on %s "
			 "(%s)",
			 v->moref, v->name);
		goto out;
	}
	/* The answer lost: the methods may be disabled all the same, and
	 * EnableMethods of methods that are not is harmless. */
	if (vs_answer_lost(bw.conn))
		v->disabled = true;
	if (required) {
		vmdkfs_error("%s: PrepareForAccess on %s: %s "
			     "(prepare_access=required)",
			     shown, v->name, vmdkfs_errmsg());
		v->users--;
		r = strcasestr(vmdkfs_errmsg(), "already disabled") ? -EBUSY
								    : -EACCES;
		goto out;
	}
	log_warn("%s: PrepareForAccess on %s refused (%s); going on "
		 "(prepare_access=required makes this an error)",
		 shown, v->name, vmdkfs_errmsg());
	r = 0;
out:
	pthread_mutex_unlock(&v->alock);
	return r;
}

/* A disk of V closed (or failed to open): EndAccess after the last. */
static void vm_leave(struct bvm *v)
{
	pthread_mutex_lock(&v->alock);
	if (--v->users == 0 && v->disabled) {
		if (vs_enable_relocate(bw.conn, v->moref, SOURCE_ID) < 0)
			log_warn("EndAccess on %s: %s (run vmdkfs cleanup)",
				 v->moref, vmdkfs_errmsg());
		else
			log_info("EndAccess: RelocateVM_Task enabled on %s "
				 "(%s)",
				 v->moref, v->name);
		v->disabled = false;
	}
	pthread_mutex_unlock(&v->alock);
}

/* ---- Opening and closing a disk ---- */

/* Mark LZ's snapshot folder (and the VM's, if GONE_VM) gone: the
 * inventory says so. */
static void mark_gone(struct fs_lazy *lz, bool gone_vm)
{
	struct fs_node *snap = lz->node->parent, *vm = snap->parent;

	fs_tree_lock();
	snap->gone = true;
	vm->fresh_until = 0;
	if (gone_vm)
		vm->gone = true;
	fs_tree_unlock();
}

/* Does the inventory still have LZ's VM and snapshot (or, for current/,
 * is the VM still powered off)?  0, -ENOENT (logged, folders marked) or
 * another -errno. */
static int verify(struct fs_lazy *lz, const char *shown)
{
	struct bsnap *s = lz->snap;
	struct vs_vm vm;
	bool ok = false;
	size_t i;
	int r;

	r = vs_vm_info(bw.conn, s->vm->moref, &vm);
	if (r == -ENOENT) {
		log_warn("%s: VM %s is gone from the inventory: ENOENT", shown,
			 s->vm->moref);
		mark_gone(lz, true);
		return -ENOENT;
	}
	if (r < 0)
		return r;
	if (s->moref) {
		for (i = 0; i < vm.nsnaps; i++)
			if (vm.snaps[i].moref &&
			    !strcmp(vm.snaps[i].moref, s->moref))
				ok = true;
	} else {
		ok = strcmp(vm.power_state, "poweredOff") == 0;
	}
	if (!ok)
		log_warn("%s: %s: ENOENT", shown,
			 s->moref ? "the snapshot is gone from the inventory"
				  : "the VM is no longer powered off");
	vs_vm_free(&vm);
	if (!ok)
		mark_gone(lz, false);
	return ok ? 0 : -ENOENT;
}

/* Open LZ's disk as a single-VM mount opens one (transports/vm.c):
 * read-only, with changed block tracking's holes. */
static int open_disk(struct fs_lazy *lz, struct disk **out)
{
	struct bsnap *s = lz->snap;
	char *path = NULL;
	int r = vm_disk_open(&fs_cfg, bw.conn, s->vm->moref, s->moref, &lz->vd,
			     true, false, out, &path);

	free(path);
	return r;
}

/* Take LZ's disk off it to be closed (CLOSING).  Called with bw.lock
 * held. */
static struct disk *start_close(struct fs_lazy *lz)
{
	struct disk *d = lz->node->file->disk;

	lz->state = LZ_CLOSING;
	lz->node->file->disk = NULL;
	return d;
}

/* Close D, LZ's disk taken by start_close, for WHY.  Called without
 * bw.lock. */
static void finish_close(struct fs_lazy *lz, struct disk *d, const char *why)
{
	char shown[1024];

	fs_node_path(lz->node, shown, sizeof(shown));
	disk_close(d);
	vm_leave(lz->snap->vm);
	log_info("%s: disk closed (%s)", shown, why);
	pthread_mutex_lock(&bw.lock);
	lz->state = LZ_CLOSED;
	bw.nopen--;
	pthread_cond_broadcast(&bw.cond);
	pthread_mutex_unlock(&bw.lock);
}

/* The open disk idle longest, or NULL.  Called with bw.lock held. */
static struct fs_lazy *idlest(void)
{
	struct fs_lazy *lz, *best = NULL;

	for (lz = bw.all; lz; lz = lz->next)
		if (!lz->parent && lz->state == LZ_OPEN && lz->refs == 0 &&
		    (!best || lz->idle_since < best->idle_since))
			best = lz;
	return best;
}

static int errno_of_open(int r)
{
	return r == -ENOENT || r == -EBUSY || r == -EACCES || r == -ENOMEM ||
		       r == -EOPNOTSUPP
		   ? r
		   : -EIO;
}

/* Table reads for the partition files. */
static int table_read(void *opaque, void *buf, size_t len, uint64_t off)
{
	ssize_t n = disk_pread(opaque, buf, len, off);

	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

static void table_warn(void *opaque, const char *msg)
{
	log_warn("%s: partition table: %s", (const char *)opaque, msg);
}

/* Read the partition table of LZ's disk D (open, held) and add its
 * partition files beside it. */
static void expand(struct fs_lazy *lz, struct disk *d, const char *shown)
{
	struct fs_node *node = lz->node;
	struct part_table t;
	char name[256];
	size_t i, base;

	if (part_read(table_read, d, d->size, d->sector_size, table_warn,
		      (void *)shown, &t) < 0) {
		log_warn("%s: partition table not read, no partition files: "
			 "%s",
			 shown, vmdkfs_errmsg());
		part_table_free(&t);
		return;
	}
	base = strlen(node->name) - 4; /* no ".raw" */
	fs_tree_lock();
	for (i = 0; i < t.n; i++) {
		const struct part_entry *e = &t.e[i];
		struct fs_lazy *p;
		struct fs_node *n;

		if (e->size == 0 || e->start % d->sector_size ||
		    e->size % d->sector_size || e->start > d->size ||
		    e->size > d->size - e->start)
			continue;
		snprintf(name, sizeof(name), "%.*s-p%u.raw", (int)base,
			 node->name, e->number);
		p = calloc(1, sizeof(*p));
		n = p ? fs_add_partition(node, name, NULL, e) : NULL;
		if (!n) {
			log_warn("%s: partition %u: no file %s (the name is "
				 "taken, or out of memory)",
				 shown, e->number, name);
			free(p);
			continue;
		}
		p->node = n;
		p->snap = lz->snap;
		p->parent = lz;
		p->entry = *e;
		p->size = e->size;
		n->gone = node->gone;
		n->file->ops = &lazy_ops;
		n->file->priv = p;
		lazy_add(p);
	}
	fs_tree_unlock();
	if (t.scheme != PART_NONE)
		log_info("%s: %s partition table, %zu partition(s), shown "
			 "beside it from now on",
			 shown, t.scheme == PART_GPT ? "GUID" : "MBR", t.n);
	part_table_free(&t);
}

static void disk_put(struct fs_lazy *lz)
{
	pthread_mutex_lock(&bw.lock);
	if (--lz->refs == 0) {
		lz->idle_since = mono();
		pthread_cond_broadcast(&bw.cond);
	}
	pthread_mutex_unlock(&bw.lock);
}

/* Hold LZ's disk, opening it if need be.  0 or -errno. */
static int disk_get(struct fs_lazy *lz)
{
	double deadline = mono() + fs_cfg.open_wait;
	struct disk *d = NULL;
	char shown[1024];
	bool parts;
	int r;

	fs_node_path(lz->node, shown, sizeof(shown));
	pthread_mutex_lock(&bw.lock);
	for (;;) {
		if (lz->state == LZ_OPEN) {
			bool stale = lz->refs == 0 && mono() - lz->verified >=
							  fs_cfg.inventory_ttl;

			lz->refs++;
			pthread_mutex_unlock(&bw.lock);
			if (!stale)
				return 0;
			/* Open but idle, and the inventory is old: ask. */
			r = verify(lz, shown);
			pthread_mutex_lock(&bw.lock);
			if (r == 0)
				lz->verified = mono();
			pthread_mutex_unlock(&bw.lock);
			if (r < 0 && r != -ENOENT)
				log_error("%s: not opened: %s", shown,
					  vmdkfs_errmsg());
			if (r < 0)
				disk_put(lz);
			return r < 0 ? errno_of_open(r) : 0;
		}
		if (lz->state != LZ_CLOSED) { /* another thread's turn */
			pthread_cond_wait(&bw.cond, &bw.lock);
			continue;
		}
		if (bw.nopen < (unsigned)fs_cfg.max_open_disks)
			break;
		{
			struct fs_lazy *v = idlest();

			if (v) { /* make room: close the idlest */
				d = start_close(v);
				pthread_mutex_unlock(&bw.lock);
				finish_close(v, d, "room for another disk");
				pthread_mutex_lock(&bw.lock);
				continue;
			}
		}
		if (mono() >= deadline) {
			pthread_mutex_unlock(&bw.lock);
			log_error("%s: not opened: max_open_disks=%d disks are "
				  "open and in use, none freed within "
				  "open_wait=%d s: EBUSY",
				  shown, fs_cfg.max_open_disks,
				  fs_cfg.open_wait);
			return -EBUSY;
		}
		wait_until(deadline);
	}
	lz->state = LZ_OPENING;
	bw.nopen++;
	pthread_mutex_unlock(&bw.lock);

	r = verify(lz, shown);
	if (r == 0) {
		r = vm_enter(lz->snap->vm, shown);
		if (r == 0) {
			r = open_disk(lz, &d);
			if (r < 0)
				vm_leave(lz->snap->vm);
		}
	}
	if (r < 0 && r != -ENOENT)
		log_error("%s: not opened: %s", shown, vmdkfs_errmsg());
	pthread_mutex_lock(&bw.lock);
	if (r < 0) {
		lz->state = LZ_CLOSED;
		bw.nopen--;
		pthread_cond_broadcast(&bw.cond);
		pthread_mutex_unlock(&bw.lock);
		return errno_of_open(r);
	}
	lz->node->file->disk = d;
	lz->transport = d->transport;
	lz->state = LZ_OPEN;
	lz->refs = 1;
	lz->verified = mono();
	parts = fs_cfg.partitions && !lz->expanded;
	lz->expanded = true;
	pthread_cond_broadcast(&bw.cond);
	pthread_mutex_unlock(&bw.lock);
	log_info("%s: disk opened, transport %s (%u of max_open_disks=%d "
		 "open)",
		 shown, d->transport, bw.nopen, fs_cfg.max_open_disks);
	if (parts)
		expand(lz, d, shown);
	return 0;
}

/* A partition: its disk held, and a window over it while in use. */
static int part_get(struct fs_lazy *p)
{
	struct fs_lazy *lz = p->parent;
	struct disk *pd = NULL;
	int r = disk_get(lz);

	if (r < 0)
		return r;
	pthread_mutex_lock(&bw.lock);
	if (p->refs++ == 0) {
		r = part_disk_open(lz->node->file->disk, p->entry.start,
				   p->entry.size, &pd);
		if (r == 0) {
			p->node->file->disk = pd;
			p->transport = pd->transport;
		} else {
			p->refs--;
		}
	}
	pthread_mutex_unlock(&bw.lock);
	if (r < 0) {
		log_error("%s: partition %u: %s", lz->node->name,
			  p->entry.number, vmdkfs_errmsg());
		disk_put(lz);
		return -EIO;
	}
	return 0;
}

static void part_put(struct fs_lazy *p)
{
	struct disk *pd = NULL;

	pthread_mutex_lock(&bw.lock);
	if (--p->refs == 0) {
		pd = p->node->file->disk;
		p->node->file->disk = NULL;
	}
	pthread_mutex_unlock(&bw.lock);
	disk_close(pd);
	disk_put(p->parent);
}

static int lazy_get(struct fs_node *n, bool *keep_cache)
{
	struct fs_lazy *lz = lazy_of(n);

	/* A snapshot never changes; current/ may, between opens. */
	*keep_cache = lz->snap->moref != NULL;
	return lz->parent ? part_get(lz) : disk_get(lz);
}

static void lazy_put(struct fs_node *n)
{
	struct fs_lazy *lz = lazy_of(n);

	if (lz->parent)
		part_put(lz);
	else
		disk_put(lz);
}

static bool lazy_miss(struct fs_node *dir, const char *name)
{
	size_t n = strlen(name), i;
	char disk[256];
	struct fs_node *dn;
	struct fs_lazy *lz;
	bool todo;

	/* NAME-pN.raw: N digits after the last "-p". */
	if (n < 8 || strcmp(name + n - 4, ".raw") != 0)
		return false;
	i = n - 4;
	while (i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9')
		i--;
	if (i == n - 4 || i < 3 || name[i - 1] != 'p' || name[i - 2] != '-')
		return false;
	snprintf(disk, sizeof(disk), "%.*s.raw", (int)(i - 2), name);
	dn = fs_child(dir, disk);
	lz = dn && dn->kind == FS_DISK ? lazy_of(dn) : NULL;
	if (!lz || lz->parent || !fs_cfg.partitions)
		return false;
	pthread_mutex_lock(&bw.lock);
	todo = !lz->expanded;
	pthread_mutex_unlock(&bw.lock);
	if (!todo || disk_get(lz) < 0)
		return false;
	disk_put(lz);
	return true;
}

/* ---- The idle-close thread ---- */

static void *idler(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&bw.lock);
	while (!bw.stop) {
		double now = mono(), next = now + 1;
		struct fs_lazy *lz;

		for (lz = bw.all; lz; lz = lz->next) {
			double due = lz->idle_since + fs_cfg.idle_close;

			if (lz->parent || lz->state != LZ_OPEN || lz->refs)
				continue;
			if (due <= now)
				break;
			if (due < next)
				next = due;
		}
		if (lz) {
			struct disk *d = start_close(lz);
			char why[64];

			snprintf(why, sizeof(why), "idle for idle_close=%d s",
				 fs_cfg.idle_close);
			pthread_mutex_unlock(&bw.lock);
			finish_close(lz, d, why);
			pthread_mutex_lock(&bw.lock);
			continue;
		}
		wait_until(next);
	}
	pthread_mutex_unlock(&bw.lock);
	return NULL;
}

/* The inventory changes: the kernel keeps names and attributes a second
 * (none with inventory_ttl=0), no missing names (partition files
 * appear), and page cache per open. */
static void browse_start(struct fs_serve_hints *h)
{
	h->entry_timeout = fs_cfg.inventory_ttl < 1 ? 0 : 1;
	h->negative_timeout = 0;
	h->kernel_cache = false;
	if (bw.idler_on)
		return;
	if (pthread_create(&bw.idler, NULL, idler, NULL) == 0)
		bw.idler_on = true;
	else
		log_error("browsing: no idle-close thread: %m; disks stay "
			  "open until unmount");
}

/* ---- Mount and unmount ---- */

/* Options a browsing mount cannot honour: a message and -EINVAL. */
static int refuse(void)
{
	if (fs_cfg.rw)
		vmdkfs_error(
		    "rw: browsing (server= without vm=) is read-only: it "
		    "shows every VM's snapshots, and a snapshot's disks are "
		    "read by the links made after it; for a restore into a "
		    "powered-off VM, mount that VM with vm=");
	else if (fs_cfg.snapshot && !strcmp(fs_cfg.snapshot, "new"))
		vmdkfs_error("snapshot=new: browsing takes no snapshots (it "
			     "would take one of every VM listed); give vm= to "
			     "mount a temporary snapshot of one VM");
	else if (fs_cfg.snapshot)
		vmdkfs_error("snapshot=%s: browsing shows every snapshot of "
			     "every VM, a folder each; give vm= to mount one "
			     "snapshot",
			     fs_cfg.snapshot);
	else if (fs_cfg.changed_since || fs_cfg.nchanged_since_keys)
		vmdkfs_error("changed_since: browsing shows no changed views; "
			     "give vm= and snapshot=");
	else if (fs_cfg.scratch)
		vmdkfs_error("scratch: not while browsing (a browsed disk "
			     "closes when idle, and its layer would go with "
			     "it); give vm= and snapshot=");
	else
		return 0;
	return -EINVAL;
}

static int browse_open(char *const *paths, size_t npaths)
{
	pthread_condattr_t ca;
	int r;

	(void)paths, (void)npaths;
	r = refuse();
	if (r == 0)
		r = vm_connect(&fs_cfg, NULL, &bw.conn);
	if (r < 0) {
		fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
		return r;
	}
	if (strcmp(fs_cfg.prepare_access, "optional") &&
	    strcmp(fs_cfg.prepare_access, "required") &&
	    strcmp(fs_cfg.prepare_access, "off")) {
		fprintf(
		    stderr,
		    "vmdkfs: prepare_access=%s: optional, required or off\n",
		    fs_cfg.prepare_access);
		vs_disconnect(bw.conn);
		bw.conn = NULL;
		return -EINVAL;
	}
	/* A direct ESXi host has no DisableMethods: said once, here. */
	if (strcmp(vs_api_type(bw.conn), "HostAgent") == 0 &&
	    strcmp(fs_cfg.prepare_access, "off") != 0) {
		if (!strcmp(fs_cfg.prepare_access, "required")) {
			fprintf(stderr,
				"vmdkfs: PrepareForAccess: %s is a direct ESXi "
				"connection (HostAgent), which cannot disable "
				"methods, and prepare_access=required\n",
				fs_cfg.server);
			vs_disconnect(bw.conn);
			bw.conn = NULL;
			return -EOPNOTSUPP;
		}
		log_info("PrepareForAccess: %s is a direct ESXi connection "
			 "(HostAgent): disks are opened without it",
			 fs_cfg.server);
		bw.no_access = true;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&bw.cond, &ca);
	pthread_condattr_destroy(&ca);
	bw.on = true;
	log_info("browsing %s (%s)%s%s: inventory_ttl=%d s, idle_close=%d s, "
		 "max_open_disks=%d",
		 fs_cfg.server, vs_api_type(bw.conn),
		 fs_cfg.vms ? ", vms=" : "", fs_cfg.vms ? fs_cfg.vms : "",
		 fs_cfg.inventory_ttl, fs_cfg.idle_close,
		 fs_cfg.max_open_disks);
	fs_set_refill(fs_root(), fill_root, NULL);
	return 0;
}

static void browse_close(void)
{
	struct fs_lazy *lz, *ln;
	struct bsnap *s, *sn;
	struct bvm *v, *vn;

	if (!bw.on)
		return;
	if (bw.idler_on) {
		pthread_mutex_lock(&bw.lock);
		bw.stop = true;
		pthread_cond_broadcast(&bw.cond);
		pthread_mutex_unlock(&bw.lock);
		pthread_join(bw.idler, NULL);
		bw.idler_on = false;
	}
	/* Partitions first: their windows read their disks. */
	for (lz = bw.all; lz; lz = lz->next)
		if (lz->parent && lz->node->file->disk) {
			disk_close(lz->node->file->disk);
			lz->node->file->disk = NULL;
		}
	for (lz = bw.all; lz; lz = lz->next)
		if (!lz->parent && lz->node->file->disk) {
			disk_close(lz->node->file->disk);
			lz->node->file->disk = NULL;
			vm_leave(lz->snap->vm);
		}
	for (lz = bw.all; lz; lz = ln) {
		ln = lz->next;
		lz->node->file->ops = NULL;
		lz->node->file->priv = NULL;
		free(lz->vd.file);
		free(lz->vd.label);
		free(lz->vd.change_id);
		free(lz);
	}
	bw.all = NULL;
	for (s = bw.snaps; s; s = sn) {
		sn = s->next;
		free(s->moref);
		free(s->name);
		free(s);
	}
	bw.snaps = NULL;
	for (v = bw.vms; v; v = vn) {
		vn = v->next;
		pthread_mutex_destroy(&v->alock);
		free(v->moref);
		free(v->name);
		free(v);
	}
	bw.vms = NULL;
	vs_disconnect(bw.conn);
	bw.conn = NULL;
	bw.on = false;
}

/* A disk per open file at once, at most max_open_disks. */
static unsigned browse_threads(void)
{
	return (unsigned)fs_cfg.max_open_disks;
}

const struct fs_provider fs_browse_provider = {
    .name = "browse",
    .open = browse_open,
    .threads = browse_threads,
    .start = browse_start,
    .close_disks = browse_close,
};

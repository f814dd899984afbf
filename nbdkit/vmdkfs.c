/* nbdkit-vmdkfs-plugin: vmdkfs's library behind nbdkit, with the
 * parameters of nbdkit's vddk plugin (nbdkit-vddk-plugin(1)), so that the
 * tools that speak NBD to a VMware disk through nbdkit (qemu-img, nbdcopy,
 * virt-v2v, KubeVirt CDI, Forklift) can use it where they use VDDK.
 *
 *   nbdkit vmdkfs server=HOST user=U password=+FILE thumbprint=T \
 *          vm=moref=vm-16 snapshot=snapshot-7 file='[ds] vm/vm.vmdk'
 *   nbdkit vmdkfs file=/path/disk.vmdk          (a local VMDK, any format)
 *
 * file=: one disk, opened once after nbdkit forks and shared by every
 * connection (the disks of the library serve concurrent requests; an NFC
 * disk serialises them on its link).  export=WILDCARD (virt-v2v's way,
 * with server=): each disk of the VM a client names by its export name
 * ("[ds] vm/disk.vmdk", matching the wildcard), opened on the first
 * connection to it and shared the same way.  With server=, the VM is
 * opened for access as the FUSE mount opens it (transports/vm.c):
 * PrepareForAccess and, with snapshot=new, a temporary snapshot, held for
 * the plugin's life and undone at unload (or by vmdkfs cleanup after a
 * kill).  Every other key=value is a vmdkfs mount option or InitEx key
 * (vmdkfs(1)), the same table as -o and config=FILE. */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "../common/config.h"
#include "../common/err.h"
#include "../common/progress.h"
#include "../common/source.h"
#include "../transports/areas.h"
#include "../transports/lun.h"
#include "../transports/transport.h"
#include "../transports/vm.h"
#include "../vmfs/vmfs.h"
#include "../vsphere/cbt.h"
#include "../vsphere/vsphere.h"

/* -D vmdkfs.datapath=1: each read, write and extents request;
 * -D vmdkfs.verbose=1: vmdkfs's info and debug lines (warnings and
 * errors are always shown). */
NBDKIT_DLL_PUBLIC int vmdkfs_debug_datapath;
NBDKIT_DLL_PUBLIC int vmdkfs_debug_verbose;

static struct config cfg;
static char *file;     /* file=: a datastore path, or a local VMDK */
static char *wildcard; /* export=: the export names clients may ask for */
static char *password; /* password=, read by nbdkit_read_password */
static bool remote;    /* any of vddk's remote keys given */
static bool single_link; /* single-link=true: a local file's own link */
static struct vm_access *vma;
/* lun=: the VMFS volume file= is on, and its opener. */
static struct vmfs *vol;
static struct source_opener vol_opener;
static char *vol_desc;

/* nfc_links=N: the NFC links one read-only disk may have, one per
 * connection as connections come (the Nth and later share them in turn).
 * A client with several connections reads a region of its own on each
 * (nbdcopy), so each link sees a stream and reads ahead; one link taking
 * every connection's requests in turn would see none (measured: four
 * connections over four links shared request by request read at half
 * the rate of one link). */
#define LINKS_MAX 16
static unsigned nfc_links = 1;

/* The disks served: file='s, or those of export= asked for so far. */
struct export {
	char *name;
	struct disk *disk; /* link[0] (or its changed_since= view) */
	struct disk *base; /* under the view, or NULL */
	/* The links (lock): over nbd/nbdssl up to max, else just disk. */
	pthread_mutex_t lock;
	struct disk *link[LINKS_MAX];
	unsigned nlinks, max;
	unsigned conns; /* connections so far, for the next one's link */
	/* For another link: the snapshot (NULL: current) and the disk. */
	char *snap;
	struct vs_disk vd;
	struct export *next;
};
static struct export *exports;
static pthread_mutex_t exports_lock = PTHREAD_MUTEX_INITIALIZER;

/* Requests in the plugin now: nbdkit may unload while a connection's
 * requests still run (a client gone with requests in flight, then a
 * signal), and the disks must outlive them. */
static unsigned inflight;
#define ENTER() __atomic_add_fetch(&inflight, 1, __ATOMIC_SEQ_CST)
#define LEAVE() __atomic_sub_fetch(&inflight, 1, __ATOMIC_SEQ_CST)

static void plugin_load(void)
{
	config_init(&cfg);
}

static void to_nbdkit(int level, const char *msg)
{
	if (level <= LOG_WARN)
		nbdkit_error("%s%s", level == LOG_WARN ? "warning: " : "", msg);
	else
		nbdkit_debug("%s", msg);
}

/* A literal password would sit in the process list: refused, as on the
 * mount.  "-" (asked on the terminal), "+FILE" and "-FD" are nbdkit's. */
static int take_password(const char *value)
{
	bool fd = value[0] == '-' && value[1] &&
		  strspn(value + 1, "0123456789") == strlen(value + 1);
	struct stat st;

	if (strcmp(value, "-") != 0 && value[0] != '+' && !fd) {
		nbdkit_error("password: a password on the command line is "
			     "seen by every user of the machine; give "
			     "password=+FILE (mode 600), password=- or "
			     "password=-FD");
		return -1;
	}
	if (value[0] == '+' && stat(value + 1, &st) < 0) {
		nbdkit_error("password=%s: %m", value);
		return -1;
	}
	if (value[0] == '+' && (st.st_mode & 077)) {
		nbdkit_error("password=%s: readable by group or others; "
			     "refusing it (chmod 600)",
			     value);
		return -1;
	}
	free(password);
	password = NULL;
	return nbdkit_read_password(value, &password);
}

static int set(const char *key, const char *value)
{
	int r = config_set(&cfg, key, value, "nbdkit");

	if (r < 0) {
		nbdkit_error("%s", vmdkfs_errmsg());
		return -1;
	}
	if (r > 0) {
		nbdkit_error("unknown parameter %s (see nbdkit vmdkfs --help "
			     "and vmdkfs(1))",
			     key);
		return -1;
	}
	return 0;
}

/* vddk's keys that make a connection remote (vddk_config_complete). */
static bool remote_key(const char *key)
{
	static const char *const keys[] = {"vm",	 "server", "user",
					   "password",	 "cookie", "thumbprint",
					   "port",	 "nfchostport", NULL};

	for (const char *const *k = keys; *k; k++)
		if (strcmp(key, *k) == 0)
			return true;
	return false;
}

static int plugin_config(const char *key, const char *value)
{
	remote = remote || remote_key(key);
	if (strcmp(key, "file") == 0 || strcmp(key, "export") == 0) {
		char **to = key[0] == 'f' ? &file : &wildcard;

		free(*to);
		*to = strdup(value);
		return *to ? 0 : -1;
	}
	if (strcmp(key, "server") == 0) {
		/* host:port, as CDI gives a URL's host: the port apart */
		const char *c = strchr(value, ':');

		if (c && !strchr(c + 1, ':') && c[1] &&
		    strspn(c + 1, "0123456789") == strlen(c + 1)) {
			char host[256];

			snprintf(host, sizeof(host), "%.*s",
				 (int)(c - value), value);
			return set("server", host) || set("port", c + 1) ? -1
									 : 0;
		}
		return set("server", value);
	}
	/* Kept by the vddk plugin for old command lines; meaningless here. */
	if (strcmp(key, "vimapiver") == 0 || strcmp(key, "noreexec") == 0 ||
	    strcmp(key, "reexeced_") == 0) {
		nbdkit_debug("%s=%s: ignored", key, value);
		return 0;
	}
	if (strncmp(key, "create", 6) == 0) {
		nbdkit_error("%s: creating disks is not supported (serve an "
			     "existing VMDK)",
			     key);
		return -1;
	}
	if (strcmp(key, "password") == 0)
		return take_password(value);
	if (strcmp(key, "vm") == 0 && strncmp(value, "moref=", 6) == 0) {
		/* vddk's spelling of vmdkfs's vm=moid= */
		char moid[256];

		snprintf(moid, sizeof(moid), "moid=%s", value + 6);
		return set("vm", moid);
	}
	if (strcmp(key, "config") == 0) {
		if (config_load(&cfg, value) < 0) {
			nbdkit_error("%s", vmdkfs_errmsg());
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "libdir") == 0) {
		nbdkit_debug("libdir=%s: ignored (no VDDK is loaded)", value);
		return 0;
	}
	if (strcmp(key, "compression") == 0) {
		if (strcasecmp(value, "none") == 0)
			return 0;
		nbdkit_error("compression=%s: not supported (NFC reads are "
			     "uncompressed; give compression=none or leave "
			     "it out)",
			     value);
		return -1;
	}
	if (strcmp(key, "unbuffered") == 0) {
		int b = nbdkit_parse_bool(value);

		if (b < 0)
			return -1;
		if (b)
			cfg.enable_cache = false; /* no cache of our own */
		return 0;
	}
	if (strcmp(key, "nfc_links") == 0) {
		unsigned n;

		if (nbdkit_parse_unsigned("nfc_links", value, &n) < 0)
			return -1;
		if (n < 1 || n > LINKS_MAX) {
			nbdkit_error("nfc_links=%s: 1 to %d", value, LINKS_MAX);
			return -1;
		}
		nfc_links = n;
		return 0;
	}
	if (strcmp(key, "rw") == 0 || strcmp(key, "ro") == 0) {
		/* the mount's bare words, as booleans: rw=true */
		int b = nbdkit_parse_bool(value);

		if (b < 0)
			return -1;
		return set((key[1] == 'w') == (b != 0) ? "rw" : "ro", NULL);
	}
	if (strcmp(key, "single-link") == 0) {
		int b = nbdkit_parse_bool(value);

		if (b < 0)
			return -1;
		single_link = b;
		return 0;
	}
	return set(key, value);
}

static int plugin_config_complete(void)
{
	if (cfg.scratch) {
		nbdkit_error("scratch: a mount option (NBD clients have "
			     "nbdkit's cow filter)");
		return -1;
	}
	if ((cfg.changed_since || cfg.nchanged_since_keys) && !cfg.server) {
		nbdkit_error("changed_since: only with server= (changed block "
			     "tracking is vCenter's)");
		return -1;
	}
	if (cfg.lun && (remote || cfg.snapshot || wildcard || !file ||
			file[0] != '/')) {
		nbdkit_error("lun=%s: give file=/PATH.vmdk, the disk's path on "
			     "the volume (and no server=)",
			     cfg.lun);
		return -1;
	}
	if (file && wildcard) {
		nbdkit_error("file and export parameters cannot be used "
			     "together");
		return -1;
	}
	if (!file && !wildcard) {
		nbdkit_error("give file= (a local VMDK, or with server= the "
			     "disk's datastore path \"[datastore] vm/disk.vmdk\"), "
			     "or with server= export=WILDCARD");
		return -1;
	}
	if (single_link && (remote || cfg.snapshot)) {
		nbdkit_error("single-link=true: only for a local VMDK (the ESXi "
			     "host reads a VM's disk whole)");
		return -1;
	}
	if (remote || cfg.snapshot) {
		const char *missing = !cfg.server ? "server"
				      : !cfg.vm	  ? "vm"
				      : !cfg.user && !cfg.cookie ? "user"
								 : NULL;

		if (missing) {
			nbdkit_error("remote connection requested, missing "
				     "parameter: %s%s",
				     missing,
				     !strcmp(missing, "vm")
					 ? " (vm=moref=ID, or a name, moid=, "
					   "uuid=, path=)"
					 : "");
			return -1;
		}
	} else if (wildcard) {
		nbdkit_error("export=: only with server= (a VM's disks)");
		return -1;
	} else if (!cfg.lun) {
		/* A local file: its absolute path now, before nbdkit leaves
		 * the current folder (daemonised, it changes to /). */
		char *abs = nbdkit_realpath(file);

		if (!abs)
			return -1;
		free(file);
		file = abs;
	}
	if (cfg.transports && transport_check_modes(cfg.transports) < 0) {
		nbdkit_error("%s", vmdkfs_errmsg());
		return -1;
	}
	return 0;
}

/* The disk of the VM (snapshot SNAP, NULL: current) that NAME names:
 * its own path at SNAP, or the path of the current disk of the same
 * device (as virt-v2v gives it, with snapshot=: the snapshot's disk of
 * that device).  Its facts in *OUT (owned by DISKS). */
static int find_disk(struct vs_conn *c, const char *vm, const char *snap,
		     const char *name, struct vs_disk **disks, size_t *n,
		     const struct vs_disk **out)
{
	struct vs_disk *cur = NULL;
	size_t ncur = 0, i;
	int key = -1, r;

	r = vs_disks(c, vm, snap, disks, n);
	if (r < 0)
		return r;
	for (i = 0; i < *n; i++)
		if ((*disks)[i].file && strcmp((*disks)[i].file, name) == 0) {
			*out = &(*disks)[i];
			return 0;
		}
	if (snap && vs_disks(c, vm, NULL, &cur, &ncur) == 0) {
		for (i = 0; i < ncur; i++)
			if (cur[i].file && strcmp(cur[i].file, name) == 0)
				key = cur[i].key;
		vs_disks_free(cur, ncur);
	}
	for (i = 0; key >= 0 && i < *n; i++)
		if ((*disks)[i].key == key) {
			*out = &(*disks)[i];
			return 0;
		}
	vmdkfs_error("%s: the VM%s%s has no such disk (%zu disks%s%s)", name,
		     snap ? " at snapshot " : "", snap ? snap : "", *n,
		     *n ? ", the first: " : "", *n ? (*disks)[0].file : "");
	return -ENOENT;
}

/* The VM opened for access (after_fork): PrepareForAccess, snapshot=new,
 * held until unload. */
static int open_vm(void)
{
	if (cfg.snapshot && strcmp(cfg.snapshot, "all") == 0) {
		vmdkfs_error("snapshot=all: give the snapshot (its moref or "
			     "name, or new)");
		return -EINVAL;
	}
	return vm_open(&cfg, password, &vma);
}

/* changed_since=ID: *D (an areas disk) becomes the view of the areas
 * changed since ID: their bytes, zeros elsewhere, and the rest holes that
 * read as zeros, as a mount's DISK.changed.raw; D goes to E->base.  An
 * increment is never silently full or empty: any error fails the open. */
static int changed_view(const char *vm, const char *snap,
			const struct vs_disk *vd, const char *since,
			struct disk **d, struct export *e)
{
	struct vs_area *a = NULL;
	struct disk *view = NULL;
	uint64_t bytes = 0;
	size_t n = 0, i;
	int r;

	r = vs_cbt_check(vm_conn(vma), vm, snap, vd->key);
	if (r == 0)
		r = vs_changed_areas(vm_conn(vma), vm, snap, vd->key,
				     (*d)->size, since, &a, &n);
	/* struct vs_area and struct disk_area are both {off, len}. */
	if (r == 0)
		r = areas_share(*d, AREAS_MASK, (const struct disk_area *)a, n,
				&view);
	for (i = 0; i < n; i++)
		bytes += a[i].len;
	free(a);
	if (r < 0) {
		char *m = strdup(vmdkfs_errmsg());

		vmdkfs_error("%s: changed_since=%s: %s", vd->file, since,
			     m ? m : "?");
		free(m);
		return r; /* *D still the caller's */
	}
	nbdkit_debug("%s: %zu areas, %" PRIu64 " bytes changed since %s",
		     vd->file, n, bytes, since);
	e->base = *d;
	*d = view;
	return 0;
}

/* Disk NAME of the VM (a datastore path) in *D; its snapshot and facts
 * in E, for more links.  On failure *D is NULL, or a disk for the caller
 * to close. */
static int open_vm_disk(const char *name, struct disk **d, struct export *e)
{
	const struct vs_snapshot *snap = NULL;
	const struct vs_disk *vd = NULL;
	struct vs_disk *disks = NULL;
	const char *vm = vm_info(vma)->moref, *since;
	char *local = NULL;
	size_t n = 0;
	int r;

	r = vm_snapshot(vma, &snap);
	if (r == 0)
		r = find_disk(vm_conn(vma), vm, snap ? snap->moref : NULL, name,
			      &disks, &n, &vd);
	since = r == 0 ? config_changed_since(&cfg, vd->key) : NULL;
	if (r == 0)
		r = vm_disk_open(&cfg, vm_conn(vma), vm,
				 snap ? snap->moref : NULL, vd, !cfg.rw,
				 since != NULL, d, &local);
	if (r == 0 && since)
		r = changed_view(vm, snap ? snap->moref : NULL, vd, since, d,
				 e);
	if (r == 0) {
		e->snap = snap ? strdup(snap->moref) : NULL;
		e->vd.key = vd->key;
		e->vd.capacity = vd->capacity;
		e->vd.file = strdup(vd->file);
		e->vd.label = vd->label ? strdup(vd->label) : NULL;
		if (!e->vd.file || (snap && !e->snap)) {
			vmdkfs_error("%s: out of memory", name);
			r = -ENOMEM;
		}
	}
	if (r == 0)
		nbdkit_debug("%s (%s) of %s%s%s: %" PRIu64 " bytes over %s",
			     vd->file, vd->label ? vd->label : "disk",
			     vm_info(vma)->name, snap ? ", snapshot " : "",
			     snap ? snap->moref : "", (*d)->size,
			     (*d)->transport);
	free(local);
	vs_disks_free(disks, n);
	return r;
}

static int open_local_disk(const char *name, struct disk **d)
{
	struct disk_spec spec = {
	    .path = name, /* absolute (config_complete), or on lun='s volume */
	    .opener = vol ? &vol_opener : NULL,
	    .readonly = !cfg.rw,
	    .allow_parent_write = cfg.allow_parent_write,
	    .single_link = single_link,
	    .table_cache_bytes = cfg.table_cache,
	    .grain_cache_bytes = cfg.grain_cache,
	};
	int r;

	if (vol) { /* a disk on the VMFS volume, read by vmdkfs */
		r = vmdk_disk_open(&spec, "san", NULL, NULL, d);
		if (r == 0 && !((*d)->lun = strdup(vol_desc))) {
			disk_close(*d);
			r = -ENOMEM;
		}
		return r;
	}
	return transport_open(cfg.transports ? cfg.transports
					     : TRANSPORTS_LOCAL,
			      &spec, d);
}

static void export_free(struct export *e)
{
	unsigned i;

	for (i = 0; i < e->nlinks; i++)
		if (e->link[i])
			disk_close(e->link[i]);
	if (e->base)
		disk_close(e->base);
	pthread_mutex_destroy(&e->lock);
	free(e->snap);
	free(e->vd.file);
	free(e->vd.label);
	free(e->name);
	free(e);
}

/* The export NAME, opened if need be; NULL with the error given to
 * nbdkit. */
static struct export *export_get(const char *name)
{
	struct export *e;
	struct disk *d = NULL;
	int r = -ENOMEM;

	pthread_mutex_lock(&exports_lock);
	for (e = exports; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			goto out;
	vmdkfs_error_clear();
	e = calloc(1, sizeof(*e));
	if (e && (e->name = strdup(name))) {
		pthread_mutex_init(&e->lock, NULL);
		r = vma ? open_vm_disk(name, &d, e) : open_local_disk(name, &d);
	} else {
		vmdkfs_error("%s: out of memory", name);
	}
	if (r == 0 && cfg.enable_cache &&
	    disk_enable_cache(d, cfg.cache_size) < 0) {
		vmdkfs_error("%s: no memory for the read cache", name);
		r = -ENOMEM;
	}
	if (r < 0) {
		if (d)
			disk_close(d);
		if (e && e->name)
			export_free(e);
		else
			free(e);
		nbdkit_error("%s", vmdkfs_errmsg());
		nbdkit_set_error(-r);
		e = NULL;
		goto out;
	}
	e->disk = e->link[0] = d;
	e->nlinks = 1;
	/* More links: a read-only NFC disk (the others serve concurrent
	 * requests themselves, and a write goes over one link). */
	e->max = vma && d->readonly && !e->base &&
			 (!strcmp(d->transport, "nbd") ||
					!strcmp(d->transport, "nbdssl"))
		     ? nfc_links
		     : 1;
	e->next = exports;
	exports = e;
out:
	pthread_mutex_unlock(&exports_lock);
	return e;
}

/* The link of E for a new connection: the next one in turn, opened if it
 * is not yet (fewer than max); if the host refuses it, the links there
 * are serve from then on. */
static struct disk *link_for_conn(struct export *e)
{
	struct disk *d = NULL;
	char *local = NULL;
	unsigned k;
	int r;

	pthread_mutex_lock(&e->lock);
	k = e->conns++ % e->max;
	if (k == e->nlinks) {
		/* Opened with the lock held: connections come one by one. */
		r = vm_disk_open(&cfg, vm_conn(vma), vm_info(vma)->moref,
				 e->snap, &e->vd, true, false, &d, &local);
		free(local);
		if (r < 0) {
			nbdkit_debug("%s: link %u: %s; going on with %u",
				     e->name, k + 1, vmdkfs_errmsg(), e->nlinks);
			e->max = e->nlinks;
			k %= e->nlinks;
		} else {
			e->link[e->nlinks++] = d;
			nbdkit_debug("%s: link %u of at most %u opened",
				     e->name, k + 1, e->max);
		}
	}
	d = e->link[k % e->nlinks];
	pthread_mutex_unlock(&e->lock);
	return d;
}

/* Close the disks, then the VM (the temporary snapshot removed,
 * EndAccess, logout) and the volume. */
static void release(void)
{
	struct export *e, *next;

	/* At most 30 s: a request is bounded by the transport's timeouts,
	 * and a disk closed under a request would be worse than a wait. */
	for (int i = 0; __atomic_load_n(&inflight, __ATOMIC_SEQ_CST) && i < 300;
	     i++)
		usleep(100000);

	for (e = exports; e; e = next) {
		next = e->next;
		export_free(e);
	}
	exports = NULL;
	vm_close(vma);
	vma = NULL;
	if (vol)
		vmfs_close(vol);
	vol = NULL;
	free(vol_desc);
	vol_desc = NULL;
}

/* lun=DEV[:DEV...] (partition= of each): the VMFS volume. */
static int open_volume(void)
{
	int r = lun_open_vmfs_list(cfg.lun, (unsigned)cfg.partition, false,
				   &vol, &vol_desc);

	if (r == 0) {
		vmfs_opener_init(vol, &vol_opener);
		nbdkit_debug("lun=%s: %s", cfg.lun, vol_desc);
	}
	return r;
}

/* After nbdkit forked (the library starts threads and sockets): the VM
 * opened for access, and file='s disk, open until unload. */
static int plugin_after_fork(void)
{
	int r = 0;

	progress_quiet(true);
	vmdkfs_log_sink(to_nbdkit, vmdkfs_debug_verbose ? LOG_DEBUG
							 : LOG_WARN);
	if (vmdkfs_log_open(cfg.tmp_directory, cfg.log_file, cfg.log_level) <
	    0)
		nbdkit_debug("log: %s", vmdkfs_errmsg());
	if (cfg.server)
		r = open_vm();
	if (cfg.lun)
		r = open_volume();
	if (r < 0)
		nbdkit_error("%s", vmdkfs_errmsg());
	if (r == 0 && file && !export_get(file))
		r = -EIO;
	/* nbdkit exits with no unload: undo now (PrepareForAccess, the
	 * temporary snapshot). */
	if (r < 0)
		release();
	return r < 0 ? -1 : 0;
}

/* The disks, the temporary snapshot, EndAccess, the session. */
static void plugin_unload(void)
{
	release();
	vmdkfs_log_close();
	vmdkfs_log_sink(NULL, 0);
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	password = NULL;
	free(file);
	file = NULL;
	free(wildcard);
	wildcard = NULL;
	config_free(&cfg);
}

/* A connection: its disk and the link it reads through. */
struct conn {
	struct export *e;
	struct disk *link;
};

static struct conn *conn_new(struct export *e)
{
	struct conn *c;

	if (!e)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		nbdkit_error("out of memory");
		return NULL;
	}
	c->e = e;
	c->link = e->max > 1 ? link_for_conn(e) : e->disk;
	return c;
}

/* export=: the VM's disks whose current datastore paths (the names
 * virt-v2v asks for) match the wildcard, each described by its label and
 * size; otherwise the one default export. */
static int plugin_list_exports(int readonly, int is_tls,
			       struct nbdkit_exports *list)
{
	struct vs_disk *disks = NULL;
	size_t n = 0, i;
	int r = 0;

	(void)readonly, (void)is_tls;
	if (!wildcard || !vma)
		return nbdkit_use_default_export(list);
	if (vs_disks(vm_conn(vma), vm_info(vma)->moref, NULL, &disks, &n) <
	    0) {
		nbdkit_error("export=: listing the disks of %s: %s",
			     vm_info(vma)->name, vmdkfs_errmsg());
		return -1;
	}
	for (i = 0; i < n && r == 0; i++) {
		char desc[256];

		if (!disks[i].file || fnmatch(wildcard, disks[i].file, 0) != 0)
			continue;
		snprintf(desc, sizeof(desc), "%s, %" PRIu64 " bytes",
			 disks[i].label ? disks[i].label : "disk",
			 disks[i].capacity);
		r = nbdkit_add_export(list, disks[i].file, desc);
	}
	vs_disks_free(disks, n);
	return r;
}

/* file='s disk, or with export= the disk the client names; every
 * connection to a disk shares it (or, nfc_links=, one of its links). */
static void *plugin_open(int readonly)
{
	const char *name;

	(void)readonly; /* the disk is read-only unless rw=true */
	if (!wildcard)
		return conn_new(export_get(file));
	name = nbdkit_export_name();
	if (!name) {
		nbdkit_error("export=: the client gave no export name");
		return NULL;
	}
	if (fnmatch(wildcard, name, 0) != 0) {
		nbdkit_error("access denied: client requested \"%s\" which "
			     "does not match export=\"%s\"",
			     name, wildcard);
		nbdkit_set_error(EACCES);
		return NULL;
	}
	return conn_new(export_get(name));
}

static void plugin_close(void *h)
{
	free(h); /* the disk and its links stay, for the next connection */
}

#define DISK(h) (((struct conn *)(h))->link)

static int64_t plugin_get_size(void *h)
{
	return (int64_t)DISK(h)->size;
}

static int plugin_can_write(void *h)
{
	return !DISK(h)->readonly;
}

static int plugin_can_flush(void *h)
{
	return !DISK(h)->readonly;
}

/* One disk behind every connection: what one writes and flushes, every
 * other reads. */
static int plugin_can_multi_conn(void *h)
{
	(void)h;
	return 1;
}

static int plugin_can_extents(void *h)
{
	return DISK(h)->ops->block_status != NULL;
}

static int plugin_block_size(void *h, uint32_t *minimum, uint32_t *preferred,
			     uint32_t *maximum)
{
	struct disk *d = DISK(h);

	*minimum = 1;
	*preferred = d->sector_size > 4096 ? d->sector_size : 4096;
	*maximum = 0xffffffff;
	return 0;
}

static int fail(const char *what, uint32_t count, uint64_t off, ssize_t r)
{
	nbdkit_error("%s of %" PRIu32 " bytes at %" PRIu64 ": %s", what,
		     count, off, vmdkfs_errmsg()[0] ? vmdkfs_errmsg()
						    : strerror((int)-r));
	nbdkit_set_error(r == -ENOMEM || r == -ENOSPC || r == -EROFS
			     ? (int)-r
			     : EIO);
	return -1;
}

static int plugin_pread(void *h, void *buf, uint32_t count, uint64_t off,
			uint32_t flags)
{
	ssize_t r;

	(void)flags;
	if (vmdkfs_debug_datapath)
		nbdkit_debug("pread %" PRIu32 " bytes at %" PRIu64, count, off);
	vmdkfs_error_clear();
	ENTER();
	r = disk_pread(DISK(h), buf, count, off);
	LEAVE();
	if (r < 0)
		return fail("read", count, off, r);
	if ((size_t)r != count) { /* nbdkit checks bounds: cannot happen */
		vmdkfs_error("short read (%zd bytes)", r);
		return fail("read", count, off, -EIO);
	}
	return 0;
}

static int plugin_pwrite(void *h, const void *buf, uint32_t count,
			 uint64_t off, uint32_t flags)
{
	ssize_t r;

	if (vmdkfs_debug_datapath)
		nbdkit_debug("pwrite %" PRIu32 " bytes at %" PRIu64, count,
			     off);
	vmdkfs_error_clear();
	ENTER();
	r = disk_pwrite(DISK(h), buf, count, off);
	if (r >= 0 && (size_t)r != count) {
		vmdkfs_error("short write (%zd bytes)", r);
		r = -EIO;
	}
	if (r >= 0 && (flags & NBDKIT_FLAG_FUA))
		r = disk_flush(DISK(h));
	LEAVE();
	return r < 0 ? fail("write", count, off, r) : 0;
}

static int plugin_flush(void *h, uint32_t flags)
{
	int r;

	(void)flags;
	vmdkfs_error_clear();
	ENTER();
	r = disk_flush(DISK(h));
	LEAVE();
	return r < 0 ? fail("flush", 0, 0, r) : 0;
}

static int plugin_can_fua(void *h)
{
	return plugin_can_write(h) ? NBDKIT_FUA_EMULATE : NBDKIT_FUA_NONE;
}

/* Holes (unallocated grains, VMFS blocks never written, the areas out of
 * changed block tracking's "*") read as zeros: hole and zero, as nbdkit's
 * vddk plugin gives its unallocated blocks. */
static int plugin_extents(void *h, uint32_t count, uint64_t off,
			  uint32_t flags, struct nbdkit_extents *ext)
{
	struct disk *d = DISK(h);
	uint64_t end = off + count;

	if (vmdkfs_debug_datapath)
		nbdkit_debug("extents %" PRIu32 " bytes at %" PRIu64, count,
			     off);
	vmdkfs_error_clear();
	while (off < end) {
		uint64_t len;
		bool data;
		int r;

		ENTER();
		r = disk_block_status(d, off, &data, &len);
		LEAVE();

		if (r < 0)
			return fail("extents", count, off, r);
		if (len == 0 || len > d->size - off)
			len = d->size - off;
		/* A single link's holes are its parents' bytes: not zero
		 * (as the vddk plugin gives them). */
		if (nbdkit_add_extent(ext, off, len,
				      data	    ? 0
				      : single_link ? NBDKIT_EXTENT_HOLE
						    : NBDKIT_EXTENT_HOLE |
							  NBDKIT_EXTENT_ZERO) < 0)
			return -1;
		off += len;
		if (flags & NBDKIT_FLAG_REQ_ONE)
			break;
	}
	return 0;
}

static void plugin_dump(void)
{
	printf("vmdkfs_transports=%s\n", transport_list());
	printf("vddk_compatible=1\n");
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL


static struct nbdkit_plugin plugin = {
    .name = "vmdkfs",
    .longname = "vmdkfs: VMware virtual disks without VDDK",
    .version = "0.1",
    .description = "Serves a VMware virtual disk: a local VMDK of any "
		   "format, or a VM's disk through vCenter or ESXi over "
		   "the file, san, hotadd, nbdssl and nbd transports, with "
		   "nbdkit-vddk-plugin's parameters.",
    .load = plugin_load,
    .unload = plugin_unload,
    .config = plugin_config,
    .config_complete = plugin_config_complete,
    .config_help =
	"file=PATH             a local VMDK, or with server= the disk's\n"
	"                      datastore path \"[datastore] vm/disk.vmdk\"\n"
	"export=WILDCARD       with server=: the disks clients may name\n"
	"server=HOST           vCenter or ESXi\n"
	"user=USER password=+FILE|-|-FD  (a literal password is refused)\n"
	"thumbprint=SHA1       the server's certificate (or cafile=)\n"
	"cookie=COOKIE         a session instead of user and password\n"
	"vm=moref=ID           the VM (or a name, moid=, uuid=, path=)\n"
	"snapshot=MOREF|NAME|new  new: a temporary snapshot for the\n"
	"                      plugin's life\n"
	"transports=a:b:c      file:san:hotadd:nbdssl:nbd\n"
	"nfchostport=N port=N config=FILE (InitEx keys)\n"
	"single-link=true      a local delta's own grains only\n"
	"nfc_links=N           NFC links per read-only disk (1)\n"
	"Any vmdkfs option or InitEx key as KEY=VALUE: see vmdkfs(1).",
    .magic_config_key = "file",
    .after_fork = plugin_after_fork,
    .list_exports = plugin_list_exports,
    .open = plugin_open,
    .close = plugin_close,
    .get_size = plugin_get_size,
    .block_size = plugin_block_size,
    .can_write = plugin_can_write,
    .can_flush = plugin_can_flush,
    .can_fua = plugin_can_fua,
    .can_multi_conn = plugin_can_multi_conn,
    .can_extents = plugin_can_extents,
    .pread = plugin_pread,
    .pwrite = plugin_pwrite,
    .flush = plugin_flush,
    .extents = plugin_extents,
    .dump_plugin = plugin_dump,
    .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)

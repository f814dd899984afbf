/* A VM's disks through vCenter or ESXi (ConnectEx semantics),
 * PrepareForAccess/EndAccess, temporary snapshots, and vmdkfs cleanup
 * (VixDiskLib_Cleanup): see vm.h.  The front ends (fs/vsmount.c, the
 * FUSE tree; nbdkit/, the plugin) only place the disks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/progress.h"
#include "../common/sig.h"
#include "../vsphere/cbt.h"
#include "../vsphere/vsphere.h"
#include "areas.h"
#include "transport.h"
#include "vm.h"

#define SOURCE_ID "vmdkfs"
#define TEMP_PREFIX "vmdkfs-"

struct vm_access {
	const struct config *cfg;
	struct vs_conn *conn;
	struct vs_vm vm;
	char *temp_snap; /* moref of snapshot=new's snapshot */
	/* snapshot=new's name, once CreateSnapshot_Task went out, and its
	 * task once answered: a snapshot made though its answer was lost
	 * (or the wait for it interrupted) is found by them and removed. */
	char temp_name[64];
	char *temp_task;
	bool disabled; /* PrepareForAccess done (or maybe): EndAccess owed */
	char *moref;   /* the VM's, for the undoing even if vm is gone */
};

/* ---- Credentials ---- */

static int read_secret_file(const char *path, char **out)
{
	char buf[1024];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		vmdkfs_error("password_file %s: %m", path);
		return -errno;
	}
	if (fstat(fd, &st) < 0 || (st.st_mode & 077)) {
		vmdkfs_error("password_file %s: readable by group or others; "
			     "refusing it (chmod 600)",
			     path);
		close(fd);
		return -EPERM;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		vmdkfs_error("password_file %s: %m", path);
		return -errno;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0'; /* one line */
	*out = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return *out ? 0 : -ENOMEM;
}

int vm_connect(const struct config *cfg, const char *password,
	       struct vs_conn **conn)
{
	struct vs_config vc = {
	    .server = cfg->server,
	    .port = cfg->port,
	    .user = cfg->user,
	    .cookie = cfg->cookie ? cfg->cookie : getenv("VMDKFS_COOKIE"),
	    .verify = cfg->verify_certificates,
	    .cafile = cfg->cafile,
	    .thumbprint = cfg->thumbprint,
	    .timeout = cfg->soap_timeout,
	};
	char *own = NULL;
	int r;

	if (!vc.cookie) {
		if (!cfg->user) {
			vmdkfs_error(
			    "server=%s: give user= (with password_file= "
			    "or VMDKFS_PASSWORD) or a cookie",
			    cfg->server);
			return -EINVAL;
		}
		if (password) {
			vc.password = password;
		} else if (cfg->password_file) {
			r = read_secret_file(cfg->password_file, &own);
			if (r < 0)
				return r;
		} else if (getenv("VMDKFS_PASSWORD")) {
			if (!(own = strdup(getenv("VMDKFS_PASSWORD"))))
				return -ENOMEM;
		} else {
			vmdkfs_error("server=%s: no password: give "
				     "password_file= or set VMDKFS_PASSWORD",
				     cfg->server);
			return -EINVAL;
		}
		if (own)
			vc.password = own;
	}
	r = vs_connect(&vc, conn);
	if (own) {
		explicit_bzero(own, strlen(own));
		free(own);
	}
	return r;
}

/* ---- PrepareForAccess / EndAccess ---- */

static bool is_host_agent(const char *msg)
{
	return strstr(msg, "HostAgent is not a VirtualCenter") != NULL;
}

static bool already_disabled(const char *msg)
{
	return strcasestr(msg, "already disabled") != NULL;
}

void vm_identity(const struct config *cfg, char *out, size_t size)
{
	char host[64] = "";

	if (cfg->identity)
		snprintf(out, size, "%s", cfg->identity);
	else {
		gethostname(host, sizeof(host) - 1);
		snprintf(out, size, "vmdkfs@%s pid %d", host, (int)getpid());
	}
	if (strlen(out) > 50)
		out[50] = '\0';
}

static int prepare_access_wait(struct vm_access *a, struct progress *pr)
{
	const struct config *cfg = a->cfg;
	time_t until = time(NULL) + cfg->prepare_access_timeout;
	bool required = strcmp(cfg->prepare_access, "required") == 0;
	char who[64];
	int r;

	vm_identity(cfg, who, sizeof(who));
	if (strcmp(cfg->prepare_access, "off") == 0)
		return 0;
	if (!required && strcmp(cfg->prepare_access, "optional") != 0) {
		vmdkfs_error("prepare_access=%s: optional, required or off",
			     cfg->prepare_access);
		return -EINVAL;
	}
	for (;;) {
		if (sig_stop_requested())
			return sig_stop_error("PrepareForAccess");
		r = vs_disable_relocate(a->conn, a->vm.moref, SOURCE_ID, who);
		/* The answer lost: the methods may be disabled all the same,
		 * and EnableMethods of methods that are not is harmless. */
		if (r < 0 && vs_answer_lost(a->conn))
			a->disabled = true;
		if (r == -EINTR)
			return r;
		if (r == 0) {
			a->disabled = true;
			log_info("PrepareForAccess: RelocateVM_Task disabled "
				 "on %s",
				 a->vm.moref);
			return 0;
		}
		if (is_host_agent(vmdkfs_errmsg()) && required) {
			vmdkfs_error("PrepareForAccess: %s (a direct ESXi "
				     "connection, and prepare_access=required)",
				     vmdkfs_errmsg());
			return -EOPNOTSUPP;
		}
		if (is_host_agent(vmdkfs_errmsg())) {
			fprintf(stderr,
				"vmdkfs: warning: PrepareForAccess: %s (a "
				"direct ESXi connection); going on\n",
				vmdkfs_errmsg());
			return 0;
		}
		if (!already_disabled(vmdkfs_errmsg()))
			break;
		if (time(NULL) >= until) {
			vmdkfs_error(
			    "PrepareForAccess: RelocateVM_Task on %s is "
			    "still disabled by someone else after %u "
			    "s (another backup, or a crashed vmdkfs: "
			    "see vmdkfs cleanup)",
			    a->vm.moref, cfg->prepare_access_timeout);
			return -EBUSY;
		}
		log_info("PrepareForAccess: methods already disabled on %s; "
			 "retrying",
			 a->vm.moref);
		progress_update(pr,
				"PrepareForAccess: %s is held by another "
				"program; retrying (%lds left)",
				a->vm.moref, (long)(until - time(NULL)));
		for (int i = 0; i < 20 && !sig_stop_requested(); i++)
			usleep(100000);
	}
	if (required)
		return r;
	fprintf(stderr,
		"vmdkfs: warning: PrepareForAccess refused (%s); going on "
		"(prepare_access=required makes this an error)\n",
		vmdkfs_errmsg());
	return 0;
}

/* PrepareForAccess, retried while another program holds the methods
 * (a progress line meanwhile). */
static int prepare_access(struct vm_access *a)
{
	struct progress pr = {0};
	int r = prepare_access_wait(a, &pr);

	progress_end(&pr);
	return r;
}

static void end_access(struct vm_access *a)
{
	if (!a->disabled)
		return;
	if (vs_enable_relocate(a->conn, a->moref, SOURCE_ID) < 0)
		vmdkfs_log(LOG_WARN, "EndAccess: %s (run vmdkfs cleanup)",
			   vmdkfs_errmsg());
	a->disabled = false;
}

/* ---- Which snapshot ---- */

static int pick_snapshot(const struct vm_access *a, const char *want,
			 const struct vs_snapshot **out)
{
	const struct vs_snapshot *hit = NULL;
	size_t i, n = 0;

	for (i = 0; i < a->vm.nsnaps; i++)
		if (a->vm.snaps[i].moref &&
		    strcmp(a->vm.snaps[i].moref, want) == 0) {
			*out = &a->vm.snaps[i];
			return 0;
		}
	for (i = 0; i < a->vm.nsnaps; i++)
		if (a->vm.snaps[i].name &&
		    strcmp(a->vm.snaps[i].name, want) == 0 && n++ == 0)
			hit = &a->vm.snaps[i];
	if (n == 1) {
		*out = hit;
		return 0;
	}
	if (n > 1)
		vmdkfs_error("VM %s has %zu snapshots named \"%s\"; give its "
			     "moref (snapshot=%s, ...)",
			     a->vm.name, n, want, hit->moref);
	else
		vmdkfs_error("VM %s has no snapshot \"%s\" (%zu snapshots)",
			     a->vm.name, want, a->vm.nsnaps);
	return n > 1 ? -EINVAL : -ENOENT;
}

int vm_snapshot(const struct vm_access *a, const struct vs_snapshot **out)
{
	const char *want = a->cfg->snapshot;

	*out = NULL;
	if (a->temp_snap)
		want = a->temp_snap;
	else if (!want || strcmp(want, "all") == 0)
		return 0;
	return pick_snapshot(a, want, out);
}

int vm_local_path(const struct config *cfg, const char *ds_path, char **out)
{
	const char *close = strchr(ds_path, ']');
	const char *folder, *rel;
	char name[256];

	*out = NULL;
	if (ds_path[0] != '[' || !close || (size_t)(close - ds_path) > 255) {
		vmdkfs_error("disk file \"%s\" is not a datastore path",
			     ds_path);
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(close - ds_path - 1),
		 ds_path + 1);
	folder = config_datastore(cfg, name);
	if (!folder)
		return 0;
	rel = close + 1;
	while (*rel == ' ')
		rel++;
	return asprintf(out, "%s/%s", folder, rel) < 0 ? -ENOMEM : 0;
}

/* ---- Opening ---- */

/* The snapshot of snapshot=new's name, if the VM has one: its moref
 * (malloc'd) in *SNAP, else NULL.  0 or -errno. */
static int find_temp_snapshot(struct vm_access *a, char **snap)
{
	struct vs_vm vm;
	size_t i;
	int r = vs_vm_info(a->conn, a->moref, &vm);

	*snap = NULL;
	if (r < 0)
		return r;
	for (i = 0; i < vm.nsnaps && !*snap; i++)
		if (vm.snaps[i].name && vm.snaps[i].moref &&
		    strcmp(vm.snaps[i].name, a->temp_name) == 0 &&
		    !(*snap = strdup(vm.snaps[i].moref)))
			r = -ENOMEM;
	vs_vm_free(&vm);
	return r;
}

/* CreateSnapshot_Task's answer was lost: the server may have made the
 * snapshot all the same.  If one of our name appears within a few
 * seconds, it is the mount's; else the error stands (and the close
 * looks once more). */
static int adopt_lost_snapshot(struct vm_access *a)
{
	char why[1024];
	int i;

	snprintf(why, sizeof(why), "%s", vmdkfs_errmsg());
	for (i = 0; i < 3 && !sig_stop_requested(); i++) {
		sleep(1);
		if (find_temp_snapshot(a, &a->temp_snap) == 0 && a->temp_snap) {
			log_warn("CreateSnapshot_Task: %s; the snapshot %s (%s) "
				 "was made all the same: using it",
				 why, a->temp_name, a->temp_snap);
			return 0;
		}
	}
	vmdkfs_error("%s (and no snapshot %s appeared)", why, a->temp_name);
	return -EIO;
}

/* What the configuration may do with this VM. */
static int check_use(const struct vm_access *a)
{
	const struct config *cfg = a->cfg;
	bool powered_on = strcmp(a->vm.power_state, "poweredOff") != 0;

	if (cfg->rw && cfg->snapshot) {
		vmdkfs_error(
		    "rw: vmdkfs writes only the current disks of a "
		    "powered-off VM (a restore); a snapshot's links are "
		    "read by the links made after it, so mount it "
		    "read-only");
		return -EROFS;
	}
	if (cfg->rw && powered_on) {
		vmdkfs_error("rw: VM %s is %s; vmdkfs writes only the disks of "
			     "a powered-off VM",
			     a->vm.name, a->vm.power_state);
		return -EROFS;
	}
	if (!cfg->snapshot && powered_on) {
		vmdkfs_error(
		    "VM %s is %s: its disks change while it runs; give "
		    "snapshot=NAME or snapshot=new",
		    a->vm.name, a->vm.power_state);
		return -EBUSY;
	}
	return 0;
}

/* snapshot=new: a snapshot named vmdkfs-TIME, then the VM read again. */
static int make_temp_snapshot(struct vm_access *a)
{
	struct tm tm;
	time_t now = time(NULL);
	int r;

	gmtime_r(&now, &tm);
	strftime(a->temp_name, sizeof(a->temp_name),
		 TEMP_PREFIX "%Y%m%dT%H%M%SZ", &tm);
	r = vs_create_snapshot(a->conn, a->vm.moref, a->temp_name,
			       a->cfg->quiesce, &a->temp_snap, &a->temp_task);
	if (r < 0 && !a->temp_task && vs_answer_lost(a->conn))
		r = adopt_lost_snapshot(a);
	if (r < 0)
		return r;
	log_info("temporary snapshot %s (%s) of %s", a->temp_name,
		 a->temp_snap, a->vm.moref);
	/* Read the VM again: its snapshot tree has the new one. */
	vs_vm_free(&a->vm);
	return vs_vm_info(a->conn, a->moref, &a->vm);
}

int vm_open(const struct config *cfg, const char *password,
	    struct vm_access **out)
{
	struct vm_access *a = calloc(1, sizeof(*a));
	int r;

	*out = a;
	if (!a)
		return -ENOMEM;
	a->cfg = cfg;
	if (!cfg->vm) {
		vmdkfs_error("server=%s: give vm=", cfg->server);
		return -EINVAL;
	}
	r = vm_connect(cfg, password, &a->conn);
	if (r == 0)
		r = vs_find_vm(a->conn, cfg->vm, &a->moref);
	if (r == 0)
		r = vs_vm_info(a->conn, a->moref, &a->vm);
	if (r == 0)
		r = check_use(a);
	if (r == 0)
		r = prepare_access(a);
	if (r == 0 && cfg->snapshot && strcmp(cfg->snapshot, "new") == 0)
		r = make_temp_snapshot(a);
	if (r == 0 && cfg->snapshot && strcmp(cfg->snapshot, "all") == 0 &&
	    a->vm.nsnaps == 0) {
		vmdkfs_error("VM %s has no snapshots", a->vm.name);
		r = -ENOENT;
	}
	return r;
}

struct vs_conn *vm_conn(const struct vm_access *a)
{
	return a->conn;
}

const struct vs_vm *vm_info(const struct vm_access *a)
{
	return &a->vm;
}

/* ---- Disks ---- */

void vm_disk_spec(const struct config *cfg, struct disk_spec *spec,
		  struct vs_conn *conn, const char *vm, const char *snap,
		  const struct vs_disk *vd)
{
	*spec = (struct disk_spec){
	    .readonly = true,
	    .table_cache_bytes = cfg->table_cache,
	    .grain_cache_bytes = cfg->grain_cache,
	    .vs = conn,
	    .vm = vm,
	    .disk_key = vd->key,
	    .nfc_port = cfg->nfc_host_port,
	    .nfc_timeout_ms = {cfg->nfc_accept_timeout_ms,
			       cfg->nfc_request_timeout_ms,
			       cfg->nfc_read_timeout_ms,
			       cfg->nfc_write_timeout_ms,
			       cfg->nfc_fssrvr_timeout_ms,
			       cfg->nfc_fssrvr_write_timeout_ms},
	    .nfc_log_level = cfg->nfc_log_level,
	    .nfc_buf_size = cfg->nfc_aio_buf_size_64k * 65536u,
	    .nfc_buf_count = cfg->nfc_aio_buf_count,
	    .nfc_max_io = (uint32_t)cfg->nfc_max_io,
	    .nfc_close_file = cfg->nfc_close_file,
	    .nfc_close_session = cfg->nfc_close_session,
	    .san_devices = cfg->san_devices,
	    .san_allow = cfg->san_allow_list,
	    .san_deny = cfg->san_deny_list,
	    /* hotadd (transports/hotadd.c) */
	    .snapshot = snap,
	    .capacity = vd->capacity,
	    .proxy_vm = cfg->proxy_vm,
	    .hotadd_sysfs = cfg->hotadd_sysfs,
	    .hotadd_dev = cfg->hotadd_dev,
	    .hotadd_timeout = (unsigned)cfg->hotadd_timeout,
	};
}

static bool lan_transport(const char *t)
{
	return t && (!strcmp(t, "nbd") || !strcmp(t, "nbdssl") ||
		     !strcmp(t, "hotadd"));
}

static bool cbt_on(const struct config *cfg)
{
	const char *v = cfg->cbt ? cfg->cbt : "on";

	return strcasecmp(v, "off") != 0 && strcmp(v, "0") != 0 &&
	       strcasecmp(v, "no") != 0 && strcasecmp(v, "false") != 0;
}

static const char *disk_name(const struct vs_disk *vd)
{
	return vd->label ? vd->label : vd->file;
}

/* What "*" promises: VMware documents it as the areas of the disk in use
 * (VixDiskLib_QueryAllocatedBlocks' counterpart): on VMFS the rest are
 * file holes or lazy-zeroed blocks, which read as zeros.  It does not
 * promise zeros everywhere else on every storage, so the holes are a hint
 * for sparse copies, and the disk still reads its true bytes everywhere
 * (nothing is masked). */
int vm_cbt_wrap(const struct config *cfg, struct vs_conn *c, const char *vm,
		const char *snap, const struct vs_disk *vd, bool want_areas,
		struct disk **d)
{
	bool map = cbt_on(cfg) && (*d)->readonly &&
		   lan_transport((*d)->transport);
	struct vs_area *a = NULL;
	struct disk *w = NULL;
	size_t n = 0;
	int r;

	if (cfg->cbt && strcasecmp(cfg->cbt, "on") &&
	    strcasecmp(cfg->cbt, "off")) {
		vmdkfs_error("cbt=%s: on or off", cfg->cbt);
		return -EINVAL;
	}
	if (!map && !want_areas)
		return 0;
	if (map) {
		r = vs_cbt_check(c, vm, snap, vd->key);
		if (r == 0)
			r = vs_changed_areas(c, vm, snap, vd->key, (*d)->size,
					     "*", &a, &n);
		if (r < 0) {
			log_warn("%s (%s): no holes over %s: %s", vd->file,
				 disk_name(vd), (*d)->transport,
				 vmdkfs_errmsg());
			map = false;
		} else {
			log_info("%s (%s): %zu areas in use (changed block "
				 "tracking \"*\"), the rest holes",
				 vd->file, disk_name(vd), n);
		}
	}
	/* struct vs_area and struct disk_area are both {off, len}. */
	r = areas_disk_new(*d, map ? AREAS_MAP : AREAS_PASS,
			   (const struct disk_area *)a, n, &w);
	free(a);
	if (r < 0)
		return r;
	*d = w;
	return 0;
}

int vm_disk_open(const struct config *cfg, struct vs_conn *conn,
		 const char *vm, const char *snap, const struct vs_disk *vd,
		 bool readonly, bool want_areas, struct disk **out,
		 char **local)
{
	struct disk_spec spec;
	struct disk *d;
	int r;

	vm_disk_spec(cfg, &spec, conn, vm, snap, vd);
	spec.readonly = readonly;
	r = vm_local_path(cfg, vd->file, local);
	if (r < 0)
		return r;
	spec.path = *local;
	spec.ds_path = vd->file;
	r = transport_open(cfg->transports ? cfg->transports
					   : TRANSPORTS_VSPHERE,
			   &spec, &d);
	if (r < 0) {
		const char *m = vmdkfs_errmsg();
		size_t n0 = strlen(vd->file);

		/* The path once: "PATH (LABEL): why". */
		if (strncmp(m, vd->file, n0) == 0 &&
		    strncmp(m + n0, ": ", 2) == 0)
			m += n0 + 2;
		vmdkfs_error("%s (%s): %s", vd->file, disk_name(vd), m);
		free(*local);
		*local = NULL;
		return r;
	}
	/* A snapshot read from the datastore's own files: watched for its
	 * removal by another client (transports/guard.c). */
	if (snap && (!strcmp(d->transport, "san") ||
		     !strcmp(d->transport, "file"))) {
		struct disk *g;

		r = guard_disk_new(d, conn, snap, &g);
		if (r < 0) {
			disk_close(d);
			free(*local);
			*local = NULL;
			return r;
		}
		d = g;
	}
	/* Changed block tracking: holes from "*". */
	r = vm_cbt_wrap(cfg, conn, vm, snap, vd, want_areas, &d);
	if (r < 0) {
		disk_close(d);
		free(*local);
		*local = NULL;
		return r;
	}
	*out = d;
	return 0;
}

/* ---- Closing ---- */

/* Remove SNAP, again while it fails: a removal whose answer (or whose
 * task's end) was lost may have been done, or may still run, and a host
 * may refuse it for a moment (a disk just detached from a proxy VM still
 * locked: seen in tests/test-kill.sh's cleanup after a hotadd kill). */
static int remove_snapshot(struct vs_conn *conn, const char *snap)
{
	int r = -EIO, tries;

	for (tries = 0; tries < 4; tries++) {
		if (tries > 0) {
			log_info("removing snapshot %s: %s; checking", snap,
				 vmdkfs_errmsg());
			sleep((unsigned)tries);
			if (vs_snapshot_exists(conn, snap) == 0)
				return 0;
		}
		r = vs_remove_snapshot(conn, snap);
		if (r == 0 || r == -ENOENT) /* ManagedObjectNotFound: gone */
			return 0;
	}
	return r;
}

/* snapshot=new's CreateSnapshot_Task went out but no snapshot came back
 * (the answer lost, the wait for the task broken or interrupted): wait
 * for the task where it is known, else look for a snapshot of that name;
 * what is found is removed as the mount's own. */
static void find_lost_snapshot(struct vm_access *a)
{
	char *snap = NULL;

	if (a->temp_task &&
	    vs_wait_task(a->conn, a->temp_task, false, &snap) == 0 && snap) {
		a->temp_snap = snap;
		return;
	}
	free(snap);
	if (find_temp_snapshot(a, &a->temp_snap) < 0)
		log_warn("looking for the temporary snapshot %s: %s (run "
			 "vmdkfs cleanup)",
			 a->temp_name, vmdkfs_errmsg());
	else if (a->temp_snap)
		log_warn("temporary snapshot %s (%s) was made though its "
			 "answer was lost: removing it",
			 a->temp_name, a->temp_snap);
}

void vm_close(struct vm_access *a)
{
	if (!a)
		return;
	if (a->conn && a->temp_name[0] && !a->temp_snap)
		find_lost_snapshot(a);
	if (a->conn && a->temp_snap) {
		/* At unmount stderr is gone (a daemon): the log keeps it. */
		if (remove_snapshot(a->conn, a->temp_snap) < 0)
			vmdkfs_log(LOG_WARN,
				   "removing the temporary snapshot %s: %s "
				   "(run vmdkfs cleanup)",
				   a->temp_snap, vmdkfs_errmsg());
		else
			log_info("temporary snapshot %s removed",
				 a->temp_snap);
	}
	if (a->conn)
		end_access(a);
	free(a->temp_snap);
	free(a->temp_task);
	free(a->moref);
	vs_vm_free(&a->vm);
	vs_disconnect(a->conn);
	free(a);
}

/* ---- vmdkfs cleanup ---- */

static void cleanup_vm(struct vs_conn *conn, const struct vs_vmref *ref,
		       int *cleaned, int *remaining)
{
	struct vs_vm vm;
	char **methods = NULL;
	size_t i, n = 0;

	if (vs_vm_info(conn, ref->moref, &vm) < 0) {
		(*remaining)++;
		return;
	}
	for (i = 0; i < vm.nsnaps; i++) {
		const char *name = vm.snaps[i].name;

		if (!name || strncmp(name, TEMP_PREFIX, strlen(TEMP_PREFIX)))
			continue;
		if (remove_snapshot(conn, vm.snaps[i].moref) == 0) {
			printf("removed snapshot %s (%s) of %s\n", name,
			       vm.snaps[i].moref, vm.name);
			(*cleaned)++;
		} else {
			printf("could not remove snapshot %s of %s: %s\n", name,
			       vm.name, vmdkfs_errmsg());
			(*remaining)++;
		}
	}
	if (vs_disabled_methods(conn, ref->moref, &methods, &n) == 0) {
		for (i = 0; i < n; i++) {
			if (!methods[i] ||
			    strcmp(methods[i], "RelocateVM_Task") != 0)
				continue;
			if (vs_enable_relocate(conn, ref->moref, SOURCE_ID) ==
			    0) {
				printf("re-enabled RelocateVM_Task on %s\n",
				       vm.name);
				(*cleaned)++;
			} else {
				printf("RelocateVM_Task on %s stays disabled: "
				       "%s\n",
				       vm.name, vmdkfs_errmsg());
				(*remaining)++;
			}
		}
	}
	for (i = 0; i < n; i++)
		free(methods[i]);
	free(methods);
	vs_vm_free(&vm);
}

int vm_cleanup(const struct config *cfg, const char *password)
{
	struct vs_conn *conn = NULL;
	struct vs_vmref *list = NULL, one;
	size_t n = 0, i;
	int r, cleaned = 0, remaining = 0;

	r = vm_connect(cfg, password, &conn);
	if (r < 0)
		goto fail;
	{
		/* Disks a killed hotadd mount left on the proxy VM, first:
		 * they hold the snapshots removed below. */
		struct disk_spec hs = {.vs = conn,
				       .proxy_vm = cfg->proxy_vm,
				       .hotadd_sysfs = cfg->hotadd_sysfs};

		hotadd_cleanup(&hs, &cleaned, &remaining);
	}
	if (cfg->vm) {
		one.name = cfg->vm;
		r = vs_find_vm(conn, cfg->vm, &one.moref);
		if (r < 0)
			goto fail;
		cleanup_vm(conn, &one, &cleaned, &remaining);
		free(one.moref);
	} else {
		r = vs_list_vms(conn, &list, &n);
		if (r < 0)
			goto fail;
		for (i = 0; i < n; i++)
			cleanup_vm(conn, &list[i], &cleaned, &remaining);
		vs_vmrefs_free(list, n);
	}
	printf("cleanup: %d cleaned, %d remaining\n", cleaned, remaining);
	vs_disconnect(conn);
	return remaining ? 1 : 0;
fail:
	fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
	vs_disconnect(conn);
	return 1;
}

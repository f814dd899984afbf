/* Mounting a VM's snapshot disks through vCenter or ESXi (ConnectEx
 * semantics), PrepareForAccess/EndAccess, temporary snapshots, and
 * `vmdkfs cleanup` (VixDiskLib_Cleanup).
 *
 * Data path in this build: the file transport, with each datastore mapped
 * to a local folder by datastore.NAME=/path (an NFS datastore mounted on
 * the proxy); vmdk/ then follows the snapshot's chain.
 */
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
#include "../transports/transport.h"
#include "../vsphere/vsphere.h"
#include "cbt.h"
#include "fs.h"

#define SOURCE_ID "vmdkfs"
#define TEMP_PREFIX "vmdkfs-"

static struct {
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
} vsm;

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

static int connect_server(struct vs_conn **conn)
{
	struct vs_config vc = {
	    .server = fs_cfg.server,
	    .port = fs_cfg.port,
	    .user = fs_cfg.user,
	    .cookie = fs_cfg.cookie ? fs_cfg.cookie : getenv("VMDKFS_COOKIE"),
	    .verify = fs_cfg.verify_certificates,
	    .cafile = fs_cfg.cafile,
	    .thumbprint = fs_cfg.thumbprint,
	    .timeout = fs_cfg.soap_timeout,
	};
	char *password = NULL;
	int r;

	if (!vc.cookie) {
		if (!fs_cfg.user) {
			vmdkfs_error(
			    "server=%s: give user= (with password_file= "
			    "or VMDKFS_PASSWORD) or a cookie",
			    fs_cfg.server);
			return -EINVAL;
		}
		if (fs_cfg.password_file) {
			r = read_secret_file(fs_cfg.password_file, &password);
			if (r < 0)
				return r;
		} else if (getenv("VMDKFS_PASSWORD")) {
			password = strdup(getenv("VMDKFS_PASSWORD"));
		} else {
			vmdkfs_error("server=%s: no password: give "
				     "password_file= or set VMDKFS_PASSWORD",
				     fs_cfg.server);
			return -EINVAL;
		}
		vc.password = password;
	}
	r = vs_connect(&vc, conn);
	if (password) {
		explicit_bzero(password, strlen(password));
		free(password);
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

/* Who is accessing: identity=, or vmdkfs@HOST pid N; at most 50
 * characters, as VDDK's PrepareForAccess allows. */
static void identity(char *out, size_t size)
{
	char host[64] = "";

	if (fs_cfg.identity)
		snprintf(out, size, "%s", fs_cfg.identity);
	else {
		gethostname(host, sizeof(host) - 1);
		snprintf(out, size, "vmdkfs@%s pid %d", host, (int)getpid());
	}
	if (strlen(out) > 50)
		out[50] = '\0';
}

static int prepare_access_wait(struct progress *pr)
{
	time_t until = time(NULL) + fs_cfg.prepare_access_timeout;
	bool required = strcmp(fs_cfg.prepare_access, "required") == 0;
	char who[64];
	int r;

	identity(who, sizeof(who));
	if (strcmp(fs_cfg.prepare_access, "off") == 0)
		return 0;
	if (!required && strcmp(fs_cfg.prepare_access, "optional") != 0) {
		vmdkfs_error("prepare_access=%s: optional, required or off",
			     fs_cfg.prepare_access);
		return -EINVAL;
	}
	for (;;) {
		if (sig_stop_requested())
			return sig_stop_error("PrepareForAccess");
		r = vs_disable_relocate(vsm.conn, vsm.vm.moref, SOURCE_ID, who);
		/* The answer lost: the methods may be disabled all the same,
		 * and EnableMethods of methods that are not is harmless. */
		if (r < 0 && vs_answer_lost(vsm.conn))
			vsm.disabled = true;
		if (r == -EINTR)
			return r;
		if (r == 0) {
			vsm.disabled = true;
			log_info(
			    "PrepareForAccess: RelocateVM_Task disabled on "
			    "%s",
			    vsm.vm.moref);
			return 0;
		}
		if (is_host_agent(vmdkfs_errmsg()) && required) {
			vmdkfs_error("PrepareForAccess: %s (a direct ESXi "
				     "connection, and prepare_access=required)",
				     vmdkfs_errmsg());
			return -EOPNOTSUPP;
		}
		if (is_host_agent(vmdkfs_errmsg())) {
			fprintf(
			    stderr,
			    "vmdkfs: warning: PrepareForAccess: %s (a direct "
			    "ESXi connection); going on\n",
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
			    vsm.vm.moref, fs_cfg.prepare_access_timeout);
			return -EBUSY;
		}
		log_info("PrepareForAccess: methods already disabled on %s; "
			 "retrying",
			 vsm.vm.moref);
		progress_update(pr,
				"PrepareForAccess: %s is held by another "
				"program; retrying (%lds left)",
				vsm.vm.moref, (long)(until - time(NULL)));
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
static int prepare_access(void)
{
	struct progress pr = {0};
	int r = prepare_access_wait(&pr);

	progress_end(&pr);
	return r;
}

static void end_access(void)
{
	if (!vsm.disabled)
		return;
	if (vs_enable_relocate(vsm.conn, vsm.moref, SOURCE_ID) < 0)
		vmdkfs_log(LOG_WARN, "EndAccess: %s (run vmdkfs cleanup)",
			   vmdkfs_errmsg());
	vsm.disabled = false;
}

/* ---- Which snapshot ---- */

static int pick_snapshot(const char *want, const struct vs_snapshot **out)
{
	const struct vs_snapshot *hit = NULL;
	size_t i, n = 0;

	for (i = 0; i < vsm.vm.nsnaps; i++)
		if (vsm.vm.snaps[i].moref &&
		    strcmp(vsm.vm.snaps[i].moref, want) == 0) {
			*out = &vsm.vm.snaps[i];
			return 0;
		}
	for (i = 0; i < vsm.vm.nsnaps; i++)
		if (vsm.vm.snaps[i].name &&
		    strcmp(vsm.vm.snaps[i].name, want) == 0 && n++ == 0)
			hit = &vsm.vm.snaps[i];
	if (n == 1) {
		*out = hit;
		return 0;
	}
	if (n > 1)
		vmdkfs_error("VM %s has %zu snapshots named \"%s\"; give its "
			     "moref (snapshot=%s, ...)",
			     vsm.vm.name, n, want, hit->moref);
	else
		vmdkfs_error("VM %s has no snapshot \"%s\" (%zu snapshots)",
			     vsm.vm.name, want, vsm.vm.nsnaps);
	return n > 1 ? -EINVAL : -ENOENT;
}

/* "[datastore] folder/file.vmdk" -> local path through datastore.NAME,
 * or NULL in *OUT when that datastore is not mapped. */
static int local_path(const char *ds_path, char **out)
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
	folder = config_datastore(&fs_cfg, name);
	if (!folder)
		return 0;
	rel = close + 1;
	while (*rel == ' ')
		rel++;
	return asprintf(out, "%s/%s", folder, rel) < 0 ? -ENOMEM : 0;
}

/* A folder name for NAME not used yet. */
static void unique_dir(const char *name, char *out, size_t size)
{
	char base[200];
	int k;

	fs_dir_name(name, base, sizeof(base));
	snprintf(out, size, "%s", base);
	for (k = 2; fs_dir_exists(out); k++)
		snprintf(out, size, "%s-%d", base, k);
}

/* Open the disks of snapshot SNAP (NULL: the VM's current disks) into
 * folder DIR. */
static int add_disks(const char *snap, const char *snap_name, const char *dir)
{
	struct vs_disk *disks;
	size_t n, i;
	int r;

	r = vs_disks(vsm.conn, vsm.vm.moref, snap, &disks, &n);
	if (r < 0)
		return r;
	for (i = 0; i < n && r == 0; i++) {
		struct disk_spec spec;
		struct fs_file *f;
		struct disk *d;
		char *path = NULL;

		fs_vs_spec(&spec, vsm.conn, vsm.vm.moref, snap, &disks[i]);
		spec.readonly = !fs_cfg.rw;
		r = local_path(disks[i].file, &path);
		if (r < 0)
			break;
		spec.path = path;
		spec.ds_path = disks[i].file;
		r = transport_open(fs_cfg.transports ? fs_cfg.transports
						     : TRANSPORTS_VSPHERE,
				   &spec, &d);
		if (r < 0) {
			const char *m = vmdkfs_errmsg();
			size_t n0 = strlen(disks[i].file);

			/* The path once: "PATH (LABEL): why". */
			if (strncmp(m, disks[i].file, n0) == 0 &&
			    strncmp(m + n0, ": ", 2) == 0)
				m += n0 + 2;
			vmdkfs_error("%s (%s): %s", disks[i].file,
				     disks[i].label ? disks[i].label : "disk",
				     m);
			free(path);
			break;
		}
		/* Changed block tracking: holes from "*" (fs/cbt.c). */
		r = fs_cbt_open(vsm.conn, vsm.vm.moref, snap, &disks[i], &d);
		if (r < 0) {
			disk_close(d);
			free(path);
			break;
		}
		/* The source: the local descriptor, or the datastore path
		 * when the disk is reached over the network. */
		if (!path && !(path = strdup(disks[i].file))) {
			disk_close(d);
			r = -ENOMEM;
			break;
		}
		f = fs_add(dir, disks[i].label ? disks[i].label : path, d,
			   path);
		if (!f) {
			disk_close(d);
			free(path);
			r = -ENOMEM;
			break;
		}
		f->ds_path = strdup(disks[i].file);
		f->change_id =
		    disks[i].change_id ? strdup(disks[i].change_id) : NULL;
		f->device_key = disks[i].key;
		f->vm = strdup(vsm.vm.moref);
		f->snapshot = snap ? strdup(snap) : NULL;
		(void)snap_name;
		/* changed_since=: DISK.changed.json/.raw (fs/cbt.c). */
		r = fs_cbt_views(vsm.conn, vsm.vm.moref, snap, dir, f,
				 &disks[i]);
	}
	vs_disks_free(disks, n);
	return r;
}

/* The snapshot of snapshot=new's name, if the VM has one: its moref
 * (malloc'd) in *SNAP, else NULL.  0 or -errno. */
static int find_temp_snapshot(char **snap)
{
	struct vs_vm vm;
	size_t i;
	int r = vs_vm_info(vsm.conn, vsm.moref, &vm);

	*snap = NULL;
	if (r < 0)
		return r;
	for (i = 0; i < vm.nsnaps && !*snap; i++)
		if (vm.snaps[i].name && vm.snaps[i].moref &&
		    strcmp(vm.snaps[i].name, vsm.temp_name) == 0 &&
		    !(*snap = strdup(vm.snaps[i].moref)))
			r = -ENOMEM;
	vs_vm_free(&vm);
	return r;
}

/* CreateSnapshot_Task's answer was lost: the server may have made the
 * snapshot all the same.  If one of our name appears within a few
 * seconds, it is the mount's; else the error stands (and the close
 * looks once more). */
static int adopt_lost_snapshot(void)
{
	char why[1024];
	int i;

	snprintf(why, sizeof(why), "%s", vmdkfs_errmsg());
	for (i = 0; i < 3 && !sig_stop_requested(); i++) {
		sleep(1);
		if (find_temp_snapshot(&vsm.temp_snap) == 0 && vsm.temp_snap) {
			log_warn("CreateSnapshot_Task: %s; the snapshot %s (%s) "
				 "was made all the same: using it",
				 why, vsm.temp_name, vsm.temp_snap);
			return 0;
		}
	}
	vmdkfs_error("%s (and no snapshot %s appeared)", why, vsm.temp_name);
	return -EIO;
}

int fs_vsphere_open(void)
{
	const struct vs_snapshot *snap = NULL;
	char *moref = NULL, dir[256];
	bool powered_on;
	int r;

	if (!fs_cfg.vm) {
		fprintf(stderr, "vmdkfs: server=%s: give vm=\n", fs_cfg.server);
		return -EINVAL;
	}
	r = connect_server(&vsm.conn);
	if (r == 0)
		r = vs_find_vm(vsm.conn, fs_cfg.vm, &moref);
	if (r == 0)
		r = vs_vm_info(vsm.conn, moref, &vsm.vm);
	vsm.moref = moref;
	moref = NULL;
	if (r < 0)
		goto fail;
	powered_on = strcmp(vsm.vm.power_state, "poweredOff") != 0;
	if (fs_cfg.rw && fs_cfg.snapshot) {
		vmdkfs_error(
		    "rw: vmdkfs writes only the current disks of a "
		    "powered-off VM (a restore); a snapshot's links are "
		    "read by the links made after it, so mount it "
		    "read-only");
		r = -EROFS;
		goto fail;
	}
	if (fs_cfg.rw && powered_on) {
		vmdkfs_error("rw: VM %s is %s; vmdkfs writes only the disks of "
			     "a powered-off VM",
			     vsm.vm.name, vsm.vm.power_state);
		r = -EROFS;
		goto fail;
	}
	if (!fs_cfg.snapshot && powered_on) {
		vmdkfs_error(
		    "VM %s is %s: its disks change while it runs; give "
		    "snapshot=NAME or snapshot=new",
		    vsm.vm.name, vsm.vm.power_state);
		r = -EBUSY;
		goto fail;
	}
	r = prepare_access();
	if (r < 0)
		goto fail;
	if (fs_cfg.snapshot && strcmp(fs_cfg.snapshot, "new") == 0) {
		char name[64];
		struct tm tm;
		time_t now = time(NULL);

		gmtime_r(&now, &tm);
		strftime(name, sizeof(name), TEMP_PREFIX "%Y%m%dT%H%M%SZ", &tm);
		snprintf(vsm.temp_name, sizeof(vsm.temp_name), "%s", name);
		r = vs_create_snapshot(vsm.conn, vsm.vm.moref, name,
				       fs_cfg.quiesce, &vsm.temp_snap,
				       &vsm.temp_task);
		if (r < 0 && !vsm.temp_task && vs_answer_lost(vsm.conn))
			r = adopt_lost_snapshot();
		if (r < 0)
			goto fail;
		log_info("temporary snapshot %s (%s) of %s", name,
			 vsm.temp_snap, vsm.vm.moref);
		/* Read the VM again: its snapshot tree has the new one. */
		vs_vm_free(&vsm.vm);
		r = vs_vm_info(vsm.conn, vsm.moref, &vsm.vm);
	}
	if (r < 0)
		goto fail;
	if (fs_cfg.snapshot && strcmp(fs_cfg.snapshot, "all") == 0) {
		size_t i;

		if (vsm.vm.nsnaps == 0) {
			vmdkfs_error("VM %s has no snapshots", vsm.vm.name);
			r = -ENOENT;
			goto fail;
		}
		/* Every snapshot, a folder each (names made unique). */
		for (i = 0; i < vsm.vm.nsnaps && r == 0; i++) {
			snap = &vsm.vm.snaps[i];
			unique_dir(snap->name ? snap->name : snap->moref, dir,
				   sizeof(dir));
			r = add_disks(snap->moref, snap->name, dir);
		}
	} else if (fs_cfg.snapshot) {
		r = pick_snapshot(
		    vsm.temp_snap ? vsm.temp_snap : fs_cfg.snapshot, &snap);
		if (r < 0)
			goto fail;
		fs_dir_name(snap->name ? snap->name : snap->moref, dir,
			    sizeof(dir));
		r = add_disks(snap->moref, snap->name, dir);
	} else {
		r = add_disks(NULL, NULL, "current");
	}
	if (r == 0)
		return 0;
fail:
	fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
	return r;
}

/* Remove SNAP, again while it fails: a removal whose answer (or whose
 * task's end) was lost may have been done, or may still run, and a host
 * may refuse it for a moment (a disk just detached from a proxy VM still
 * locked: seen in tests/test-kill.sh's cleanup after a hotadd kill). */
static int remove_snapshot(const char *snap)
{
	int r = -EIO, tries;

	for (tries = 0; tries < 4; tries++) {
		if (tries > 0) {
			log_info("removing snapshot %s: %s; checking",
				 snap, vmdkfs_errmsg());
			sleep((unsigned)tries);
			if (vs_snapshot_exists(vsm.conn, snap) == 0)
				return 0;
		}
		r = vs_remove_snapshot(vsm.conn, snap);
		if (r == 0 || r == -ENOENT) /* ManagedObjectNotFound: gone */
			return 0;
	}
	return r;
}

/* snapshot=new's CreateSnapshot_Task went out but no snapshot came back
 * (the answer lost, the wait for the task broken or interrupted): wait
 * for the task where it is known, else look for a snapshot of that name;
 * what is found is removed as the mount's own. */
static void find_lost_snapshot(void)
{
	char *snap = NULL;

	if (vsm.temp_task &&
	    vs_wait_task(vsm.conn, vsm.temp_task, false, &snap) == 0 && snap) {
		vsm.temp_snap = snap;
		return;
	}
	free(snap);
	if (find_temp_snapshot(&vsm.temp_snap) < 0)
		log_warn("looking for the temporary snapshot %s: %s (run "
			 "vmdkfs cleanup)",
			 vsm.temp_name, vmdkfs_errmsg());
	else if (vsm.temp_snap)
		log_warn("temporary snapshot %s (%s) was made though its "
			 "answer was lost: removing it",
			 vsm.temp_name, vsm.temp_snap);
}

void fs_vsphere_close(void)
{
	if (!vsm.conn)
		return;
	if (vsm.temp_name[0] && !vsm.temp_snap)
		find_lost_snapshot();
	if (vsm.temp_snap) {
		/* At unmount stderr is gone (a daemon): the log keeps it. */
		if (remove_snapshot(vsm.temp_snap) < 0)
			vmdkfs_log(LOG_WARN,
				   "removing the temporary snapshot %s: %s "
				   "(run vmdkfs cleanup)",
				   vsm.temp_snap, vmdkfs_errmsg());
		else
			log_info("temporary snapshot %s removed",
				 vsm.temp_snap);
		free(vsm.temp_snap);
		vsm.temp_snap = NULL;
	}
	free(vsm.temp_task);
	vsm.temp_task = NULL;
	vsm.temp_name[0] = '\0';
	end_access();
	free(vsm.moref);
	vsm.moref = NULL;
	vs_vm_free(&vsm.vm);
	vs_disconnect(vsm.conn);
	vsm.conn = NULL;
}

/* ---- vmdkfs cleanup ---- */

static void cleanup_vm(const struct vs_vmref *ref, int *cleaned, int *remaining)
{
	struct vs_vm vm;
	char **methods = NULL;
	size_t i, n = 0;

	if (vs_vm_info(vsm.conn, ref->moref, &vm) < 0) {
		(*remaining)++;
		return;
	}
	for (i = 0; i < vm.nsnaps; i++) {
		const char *name = vm.snaps[i].name;

		if (!name || strncmp(name, TEMP_PREFIX, strlen(TEMP_PREFIX)))
			continue;
		if (remove_snapshot(vm.snaps[i].moref) == 0) {
			printf("removed snapshot %s (%s) of %s\n", name,
			       vm.snaps[i].moref, vm.name);
			(*cleaned)++;
		} else {
			printf("could not remove snapshot %s of %s: %s\n", name,
			       vm.name, vmdkfs_errmsg());
			(*remaining)++;
		}
	}
	if (vs_disabled_methods(vsm.conn, ref->moref, &methods, &n) == 0) {
		for (i = 0; i < n; i++) {
			if (!methods[i] ||
			    strcmp(methods[i], "RelocateVM_Task") != 0)
				continue;
			if (vs_enable_relocate(vsm.conn, ref->moref,
					       SOURCE_ID) == 0) {
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

int fs_vsphere_cleanup(void)
{
	struct vs_vmref *list = NULL, one;
	size_t n = 0, i;
	int r, cleaned = 0, remaining = 0;

	r = connect_server(&vsm.conn);
	if (r < 0)
		goto fail;
	{
		/* Disks a killed hotadd mount left on the proxy VM, first:
		 * they hold the snapshots removed below. */
		struct disk_spec hs = {.vs = vsm.conn,
				       .proxy_vm = fs_cfg.proxy_vm,
				       .hotadd_sysfs = fs_cfg.hotadd_sysfs};

		hotadd_cleanup(&hs, &cleaned, &remaining);
	}
	if (fs_cfg.vm) {
		one.name = fs_cfg.vm;
		r = vs_find_vm(vsm.conn, fs_cfg.vm, &one.moref);
		if (r < 0)
			goto fail;
		cleanup_vm(&one, &cleaned, &remaining);
		free(one.moref);
	} else {
		r = vs_list_vms(vsm.conn, &list, &n);
		if (r < 0)
			goto fail;
		for (i = 0; i < n; i++)
			cleanup_vm(&list[i], &cleaned, &remaining);
		vs_vmrefs_free(list, n);
	}
	printf("cleanup: %d cleaned, %d remaining\n", cleaned, remaining);
	vs_disconnect(vsm.conn);
	vsm.conn = NULL;
	return remaining ? 1 : 0;
fail:
	fprintf(stderr, "vmdkfs: %s\n", vmdkfs_errmsg());
	vs_disconnect(vsm.conn);
	vsm.conn = NULL;
	return 1;
}

/* ---- Browsing hooks (fs/browse.c): the same connection, datastore
 * mapping and PrepareForAccess identity as a single-VM mount ---- */

int fs_vs_connect(struct vs_conn **conn)
{
	return connect_server(conn);
}

void fs_vs_spec(struct disk_spec *spec, struct vs_conn *conn, const char *vm,
		const char *snap, const struct vs_disk *vd)
{
	*spec = (struct disk_spec){
	    .readonly = true,
	    .table_cache_bytes = fs_cfg.table_cache,
	    .grain_cache_bytes = fs_cfg.grain_cache,
	    .vs = conn,
	    .vm = vm,
	    .disk_key = vd->key,
	    .nfc_port = fs_cfg.nfc_host_port,
	    .nfc_timeout_ms = {fs_cfg.nfc_accept_timeout_ms,
			       fs_cfg.nfc_request_timeout_ms,
			       fs_cfg.nfc_read_timeout_ms,
			       fs_cfg.nfc_write_timeout_ms,
			       fs_cfg.nfc_fssrvr_timeout_ms,
			       fs_cfg.nfc_fssrvr_write_timeout_ms},
	    .nfc_log_level = fs_cfg.nfc_log_level,
	    .nfc_buf_size = fs_cfg.nfc_aio_buf_size_64k * 65536u,
	    .nfc_buf_count = fs_cfg.nfc_aio_buf_count,
	    .nfc_max_io = (uint32_t)fs_cfg.nfc_max_io,
	    .nfc_close_file = fs_cfg.nfc_close_file,
	    .nfc_close_session = fs_cfg.nfc_close_session,
	    .san_devices = fs_cfg.san_devices,
	    .san_allow = fs_cfg.san_allow_list,
	    .san_deny = fs_cfg.san_deny_list,
	    /* hotadd (transports/hotadd.c) */
	    .snapshot = snap,
	    .capacity = vd->capacity,
	    .proxy_vm = fs_cfg.proxy_vm,
	    .hotadd_sysfs = fs_cfg.hotadd_sysfs,
	    .hotadd_dev = fs_cfg.hotadd_dev,
	    .hotadd_timeout = (unsigned)fs_cfg.hotadd_timeout,
	};
}

int fs_vs_local_path(const char *ds_path, char **out)
{
	return local_path(ds_path, out);
}

void fs_vs_identity(char *out, size_t size)
{
	identity(out, size);
}

/* The hotadd transport: vmdkfs runs in a VM (the proxy), attaches the
 * snapshot's disk file to that VM with ReconfigVM_Task, and reads it as a
 * local SCSI disk; the ESXi host resolves the disk's chain.  See
 * notes/vddk-semantics.md, "HotAdd".
 *
 * 1. The proxy: -o proxy_vm=, else this machine's DMI product UUID
 *    (SYSFS/class/dmi/id/product_uuid, sys_vendor VMware) through
 *    SearchIndex.FindByUuid, as read and with its first three fields
 *    byte-swapped (SMBIOS before 2.6 and after disagree on their order).
 * 2. Attach: a VirtualDisk whose backing is the disk's file, no
 *    fileOperation, a label "vmdkfs hotadd ..." naming the VM and the
 *    snapshot, on the proxy's first SCSI controller with a free unit
 *    (never 7, the controller's own); independent_nonpersistent to read,
 *    persistent for a rw restore.
 * 3. The device: "- - -" into the scan file of every SCSI host
 *    (SYSFS/class/scsi_host/hostN/scan),
 *    then SYSFS/bus/scsi/devices/H:0:U:0/block/NAME, U the unit, H the
 *    Linux host of the controller: the one whose PCI device is the
 *    controller's slotInfo.pciSlotNumber (below).  Among several
 *    candidates only one that appeared after the attach and whose size is
 *    the disk's capacity is taken; never the newest disk.  DEV/NAME is
 *    opened with O_DIRECT through the LUN code (lun.c) and the alignment
 *    layer.
 * 4. Release (at close, and on any failure after the attach): the fd
 *    closed, "1" into .../H:0:U:0/delete, then ReconfigVM_Task remove
 *    without fileOperation.  The caller removes a temporary snapshot and
 *    ends access only after its disks are closed (fs/vsmount.c).
 *
 * PCI slot numbers (VMware virtual hardware 7 and later): a device on bus
 * 0 has the slot of its device number (16: 0000:00:10.0); a device behind
 * PCIe root port pciBridge4..7 (0000:00:15.F .. 0000:00:18.F, each with
 * functions 0-7) has 160 + 32 * (port - 4) + 1024 * F + its device number:
 * 160 is 0000:00:15.0's bus, 192 0000:00:16.0's, 1184 0000:00:15.1's.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/sig.h"
#include "../vsphere/vsphere.h"
#include "lun.h"
#include "transport.h"

#define HOTADD_LABEL "vmdkfs hotadd"
#define MAX_UNIT 15
#define CTL_UNIT 7 /* the SCSI controller's own unit */
#define MAX_SEEN 256

/* Read-ahead of a read-only disk: a sequential reader's next windows are
 * read by a worker thread (one O_DIRECT read of RA_BYTES each) while FUSE
 * copies out the current one, so the device's latency and FUSE's overlap.
 * The kernel's own read-ahead of the mount comes in requests of at most
 * 1 MiB, each a synchronous round trip to the device otherwise. */
#define RA_BYTES (4u << 20)
#define RA_SLOTS 6
#define RA_DEPTH 2 /* windows kept queued ahead of the reader */

enum { RA_EMPTY, RA_QUEUED, RA_FILLING, RA_READY, RA_FAILED };

struct ra_slot {
	uint64_t start, count; /* sectors */
	int state;
	uint64_t used; /* last use, for replacement */
	void *buf;
};

struct hotadd {
	struct disk d;
	struct lun *l;
	struct vs_conn *vs;
	char *proxy;
	int key, ctl_key, unit;
	char *scsi_dir; /* SYSFS/bus/scsi/devices/H:0:U:0, once found */
	/* read-ahead (read-only disks), guarded by lock */
	bool ra_on, ra_stop;
	bool ra_started; /* the worker runs (started at the first read: the
			    mount forks into a daemon after the open) */
	pthread_t ra_thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ra_slot ra[RA_SLOTS];
	uint64_t next;	/* sector after the last read */
	uint64_t clock; /* use counter */
};

static pthread_mutex_t attach_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *sysfs_of(const struct disk_spec *spec)
{
	return spec->hotadd_sysfs && *spec->hotadd_sysfs ? spec->hotadd_sysfs
							 : "/sys";
}

/* The first line of PATH into BUF, without its newline. */
static int read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	int e;

	if (!f)
		return -errno;
	if (!fgets(buf, (int)size, f)) {
		e = ferror(f) ? -EIO : -ENODATA;
		fclose(f);
		return e;
	}
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int e;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	e = n < 0 ? -errno : 0;
	close(fd);
	return e;
}

/* ---- The proxy VM ---- */

/* "00112233-4455-6677-..." -> "33221100-5544-7766-...". */
static void swap_uuid(const char *in, char *out, size_t size)
{
	static const int order[] = {6, 4, 2, 0, -1, 11, 9, -1, 16, 14};
	size_t i, o = 0;

	snprintf(out, size, "%.40s", in);
	if (strlen(in) != 36 || size < 37)
		return;
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (order[i] < 0) {
			out[o++] = '-';
			continue;
		}
		out[o++] = in[order[i]];
		out[o++] = in[order[i] + 1];
	}
}

/* This machine as a VM: *MOREF of the proxy.  false with WHY when this
 * machine is not one vSphere knows. */
static int find_proxy(const struct disk_spec *spec, char **moref, char *why,
		      size_t size)
{
	const char *sys = sysfs_of(spec);
	char path[PATH_MAX], vendor[256], uuid[128], swapped[64], q[160];
	int r;

	*moref = NULL;
	if (spec->proxy_vm && *spec->proxy_vm) {
		r = vs_find_vm(spec->vs, spec->proxy_vm, moref);
		if (r < 0)
			snprintf(why, size, "proxy_vm=%s: %s", spec->proxy_vm,
				 vmdkfs_errmsg());
		return r;
	}
	snprintf(path, sizeof(path), "%s/class/dmi/id/sys_vendor", sys);
	r = read_line(path, vendor, sizeof(vendor));
	if (r < 0) {
		snprintf(why, size,
			 "this machine is not a VM vmdkfs can find: %.300s: %s "
			 "(give proxy_vm=)",
			 path, strerror(-r));
		return -ENODEV;
	}
	if (!strcasestr(vendor, "vmware")) {
		snprintf(
		    why, size,
		    "this machine is not a VMware VM (%.300s says \"%.100s\"): "
		    "hotadd needs vmdkfs to run in a VM of the vSphere "
		    "it reads",
		    path, vendor);
		return -ENODEV;
	}
	snprintf(path, sizeof(path), "%s/class/dmi/id/product_uuid", sys);
	r = read_line(path, uuid, sizeof(uuid));
	if (r < 0) {
		snprintf(why, size,
			 "%.300s: %s (root only on Linux; or give "
			 "proxy_vm=)",
			 path, strerror(-r));
		return -ENODEV;
	}
	for (char *c = uuid; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	snprintf(q, sizeof(q), "uuid=%s", uuid);
	r = vs_find_vm(spec->vs, q, moref);
	if (r == -ENOENT) {
		swap_uuid(uuid, swapped, sizeof(swapped));
		snprintf(q, sizeof(q), "uuid=%s", swapped);
		r = vs_find_vm(spec->vs, q, moref);
	}
	if (r == -ENOENT)
		snprintf(why, size,
			 "no VM of this vCenter has this machine's BIOS UUID "
			 "%s (nor %s byte-swapped): is vmdkfs running in a VM "
			 "it manages? (or give proxy_vm=)",
			 uuid, swapped);
	else if (r < 0)
		snprintf(why, size, "finding the proxy VM: %s",
			 vmdkfs_errmsg());
	return r;
}

/* ---- sysfs: SCSI hosts and devices ---- */

/* "DDDD:BB:DD.F" -> bus, device, function. */
static bool pci_addr(const char *s, size_t len, unsigned *bus, unsigned *dev,
		     unsigned *fn)
{
	unsigned dom;
	char one[16], tail;

	if (len != 12)
		return false;
	memcpy(one, s, len);
	one[len] = '\0';
	return sscanf(one, "%4x:%2x:%2x.%1x%c", &dom, bus, dev, fn, &tail) == 4;
}

/* The VMware pciSlotNumber of the PCI device under which sysfs path REAL
 * (a scsi_host's) lies, or -1 (see the top of this file). */
static int vmware_slot(const char *real)
{
	const char *p = strstr(real, "/devices/pci");
	unsigned bus[4], dev[4], fn[4];
	int n = 0;

	if (!p)
		return -1;
	p = strchr(p + 9, '/');
	while (p && *p == '/' && n < 4) {
		size_t len = strcspn(p + 1, "/");

		if (!pci_addr(p + 1, len, &bus[n], &dev[n], &fn[n]))
			break;
		n++;
		p += 1 + len;
	}
	if (n == 1 && bus[0] == 0)
		return (int)dev[0];
	if (n == 2 && bus[0] == 0 && dev[0] >= 0x15 && dev[0] <= 0x18)
		return 160 + 32 * (int)(dev[0] - 0x15) + 1024 * (int)fn[0] +
		       (int)dev[1];
	return -1;
}

/* The Linux host numbers (hostN) of every SCSI host whose PCI slot is
 * SLOT into HOSTS (at most MAX); how many.  Writes the scan of each host
 * when SCAN. */
static int scsi_hosts(const char *sys, int slot, bool scan, int *hosts, int max)
{
	char dir[PATH_MAX], p[PATH_MAX + 300], real[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/class/scsi_host", sys);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		int h;
		char tail;

		if (sscanf(de->d_name, "host%d%c", &h, &tail) != 1)
			continue;
		if (scan) {
			snprintf(p, sizeof(p), "%s/%s/scan", dir, de->d_name);
			if (write_text(p, "- - -") < 0)
				log_info("hotadd: %s: %m", p);
		}
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (slot >= 0 && realpath(p, real) &&
		    vmware_slot(real) == slot && n < max)
			hosts[n++] = h;
	}
	if (d)
		closedir(d);
	return n;
}

static void copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* The names in SYSFS/bus/scsi/devices (H:C:T:L). */
static int scsi_devices(const char *sys, char (*names)[32], int max)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/bus/scsi/devices", sys);
	d = opendir(dir);
	while (d && (de = readdir(d)) && n < max) {
		if (de->d_name[0] == '.' || strlen(de->d_name) >= 32)
			continue;
		snprintf(names[n++], 32, "%.31s", de->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

/* The block device name under SCSI device DIR, and its size in 512-byte
 * sectors. */
static bool block_of(const char *dir, char *name, size_t size,
		     uint64_t *sectors)
{
	char p[PATH_MAX + 300], line[64];
	struct dirent *de;
	DIR *d;
	bool found = false;

	snprintf(p, sizeof(p), "%s/block", dir);
	d = opendir(p);
	while (d && (de = readdir(d)) && !found) {
		if (de->d_name[0] == '.')
			continue;
		copy(name, size, de->d_name);
		found = true;
	}
	if (d)
		closedir(d);
	if (!found)
		return false;
	snprintf(p, sizeof(p), "%s/block/%s/size", dir, name);
	if (read_line(p, line, sizeof(line)) < 0)
		return false;
	*sectors = strtoull(line, NULL, 10);
	return true;
}

static bool seen_before(char (*seen)[32], int nseen, const char *name)
{
	int i;

	for (i = 0; i < nseen; i++)
		if (!strcmp(seen[i], name))
			return true;
	return false;
}

/* One pass over SYSFS/bus/scsi/devices: the devices H:0:UNIT:0 with H
 * one of HOSTS (any host when NHOSTS is 0), not in SEEN, SECTORS long.
 * 1 and *DIR, *NAME when exactly one, 0 when none yet, -EEXIST (WHY)
 * when several. */
static int pick_device(const char *sys, const int *hosts, int nhosts, int unit,
		       char (*seen)[32], int nseen, uint64_t sectors, char *dir,
		       size_t dsize, char *name, size_t nsize, char *why,
		       size_t wsize)
{
	char now[MAX_SEEN][32];
	int n = scsi_devices(sys, now, MAX_SEEN), i, k, hits = 0;
	char list[512] = "";

	for (i = 0; i < n; i++) {
		int h, c, t, l;
		char tail, p[PATH_MAX + 64], nm[64];
		uint64_t sz;
		bool host_ok = nhosts == 0;

		if (sscanf(now[i], "%d:%d:%d:%d%c", &h, &c, &t, &l, &tail) !=
			4 ||
		    c != 0 || t != unit || l != 0)
			continue;
		for (k = 0; k < nhosts; k++)
			host_ok |= hosts[k] == h;
		if (!host_ok || seen_before(seen, nseen, now[i]))
			continue;
		snprintf(p, sizeof(p), "%.3900s/bus/scsi/devices/%.31s", sys,
			 now[i]);
		if (!block_of(p, nm, sizeof(nm), &sz) || sz != sectors)
			continue;
		if (hits++ == 0) {
			copy(dir, dsize, p);
			copy(name, nsize, nm);
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 "%s%.31s (%.31s)", hits > 1 ? ", " : "", now[i], nm);
	}
	if (hits > 1) {
		snprintf(why, wsize,
			 "%d new SCSI devices at unit %d of the size of the "
			 "disk: %s; vmdkfs cannot tell which is the disk it "
			 "attached",
			 hits, unit, list);
		return -EEXIST;
	}
	return hits;
}

/* ---- Attach and release ---- */

/* Delete the SCSI device, then detach the disk; the detach's result. */
static int release_now(struct hotadd *h);

/* Runs to its end even on a stop signal: it is the undoing. */
static int release(struct hotadd *h)
{
	int r;

	sig_hold(true);
	r = release_now(h);
	sig_hold(false);
	return r;
}

static int release_now(struct hotadd *h)
{
	char p[PATH_MAX + 16];
	int i, r, ret = 0;

	if (h->scsi_dir) {
		/* The kernel lets go of the device before the host does. */
		snprintf(p, sizeof(p), "%s/delete", h->scsi_dir);
		r = write_text(p, "1");
		if (r < 0)
			vmdkfs_log(LOG_WARN, "hotadd: %s: %s", p, strerror(-r));
		for (i = 0; i < 50 && access(h->scsi_dir, F_OK) == 0; i++)
			usleep(100000);
		log_info("hotadd: SCSI device %s deleted", h->scsi_dir);
	}
	if (h->key) {
		r = vs_detach_disk(h->vs, h->proxy, h->key, h->ctl_key,
				   h->unit);
		ret = r;
		if (r < 0)
			vmdkfs_log(
			    LOG_WARN,
			    "hotadd: detaching disk %d from proxy VM %s: "
			    "%s (run vmdkfs cleanup)",
			    h->key, h->proxy, vmdkfs_errmsg());
		else
			log_info("hotadd: disk %d detached from proxy VM %s",
				 h->key, h->proxy);
	}
	free(h->scsi_dir);
	free(h->proxy);
	free(h->d.path);
	free(h->d.lun);
	free(h);
	return ret;
}

static void *ra_worker(void *arg)
{
	struct hotadd *h = arg;
	struct disk *ld = lun_disk(h->l);

	pthread_mutex_lock(&h->lock);
	while (!h->ra_stop) {
		struct ra_slot *s = NULL;
		int i, r;

		for (i = 0; i < RA_SLOTS && !s; i++)
			if (h->ra[i].state == RA_QUEUED)
				s = &h->ra[i];
		if (!s) {
			pthread_cond_wait(&h->cond, &h->lock);
			continue;
		}
		s->state = RA_FILLING;
		pthread_mutex_unlock(&h->lock);
		r = ld->ops->pread(ld, s->buf, s->start, s->count);
		pthread_mutex_lock(&h->lock);
		s->state = r < 0 ? RA_FAILED : RA_READY;
		pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* Queue window W (sectors W * per ...; per = RA_BYTES / sector size)
 * unless a slot holds it already (then it counts as used now).  Called
 * with h->lock held. */
static void ra_queue(struct hotadd *h, uint64_t w)
{
	uint64_t total = h->d.size / h->d.sector_size;
	uint64_t per = RA_BYTES / h->d.sector_size, start = w * per;
	struct ra_slot *victim = NULL;
	int i;

	/* d.ahead_data (areas.c) is not followed: it saves network reads of
	 * holes, and a local device reads them as fast as data. */
	if (start >= total)
		return;
	for (i = 0; i < RA_SLOTS; i++) {
		struct ra_slot *s = &h->ra[i];

		if (s->state != RA_EMPTY && s->state != RA_FAILED &&
		    s->start == start) {
			s->used = ++h->clock;
			return;
		}
		if (s->state == RA_QUEUED || s->state == RA_FILLING)
			continue;
		if (!victim || s->state == RA_EMPTY ||
		    (victim->state != RA_EMPTY && s->used < victim->used))
			victim = s;
	}
	if (!victim)
		return;
	victim->start = start;
	victim->count = total - start < per ? total - start : per;
	victim->state = RA_QUEUED;
	victim->used = ++h->clock;
	pthread_cond_broadcast(&h->cond);
}

/* Copy [SECTOR, SECTOR+COUNT) from the window holding all of it, waiting
 * while it is read.  true when done; false when no window holds it or
 * its read failed (the caller reads the device itself). */
static bool ra_hit(struct hotadd *h, void *buf, uint64_t sector, uint64_t count)
{
	for (;;) {
		struct ra_slot *s = NULL;
		int i;

		for (i = 0; i < RA_SLOTS && !s; i++) {
			struct ra_slot *t = &h->ra[i];

			if (t->state != RA_EMPTY && t->state != RA_FAILED &&
			    t->start <= sector &&
			    sector + count <= t->start + t->count)
				s = t;
		}
		if (!s)
			return false;
		if (s->state != RA_READY) {
			pthread_cond_wait(&h->cond, &h->lock);
			continue;
		}
		memcpy(buf,
		       (char *)s->buf + (sector - s->start) * h->d.sector_size,
		       count * h->d.sector_size);
		s->used = ++h->clock;
		return true;
	}
}

static int hotadd_pread(struct disk *d, void *buf, uint64_t sector,
			uint64_t count)
{
	struct hotadd *h = (struct hotadd *)d;
	struct disk *ld = lun_disk(h->l);
	uint64_t per = RA_BYTES / d->sector_size, w = sector / per, gap;
	bool seq, one;
	int k;

	if (!h->ra_on)
		return ld->ops->pread(ld, buf, sector, count);
	pthread_mutex_lock(&h->lock);
	if (!h->ra_started && !h->ra_stop) {
		if (pthread_create(&h->ra_thread, NULL, ra_worker, h) == 0)
			h->ra_started = true;
		else
			h->ra_stop = true; /* no read-ahead then */
	}
	if (h->ra_stop) {
		pthread_mutex_unlock(&h->lock);
		return ld->ops->pread(ld, buf, sector, count);
	}
	/* Sequential: near where the last read ended (FUSE threads may
	 * deliver the kernel's read-ahead a little out of order). */
	gap = sector > h->next ? sector - h->next : h->next - sector;
	seq = gap < per;
	h->next = sector + count;
	one = (sector + count - 1) / per == w;
	if (one && seq) {
		for (k = 0; k <= RA_DEPTH; k++)
			ra_queue(h, w + (uint64_t)k);
	}
	if (one && ra_hit(h, buf, sector, count)) {
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	pthread_mutex_unlock(&h->lock);
	return ld->ops->pread(ld, buf, sector, count);
}

/* Start the read-ahead of H (read-only disks; without it reads go
 * straight to the device). */
static void ra_start(struct hotadd *h)
{
	int i;

	for (i = 0; i < RA_SLOTS; i++)
		if (posix_memalign(&h->ra[i].buf, 4096, RA_BYTES) != 0)
			goto undo;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	h->ra_on = true;
	return;
undo:
	for (i = 0; i < RA_SLOTS; i++) {
		free(h->ra[i].buf);
		h->ra[i].buf = NULL;
	}
}

static void ra_end(struct hotadd *h)
{
	int i;

	if (!h->ra_on)
		return;
	pthread_mutex_lock(&h->lock);
	h->ra_stop = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (h->ra_started)
		pthread_join(h->ra_thread, NULL);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	for (i = 0; i < RA_SLOTS; i++)
		free(h->ra[i].buf);
	h->ra_on = false;
}

static int hotadd_pwrite(struct disk *d, const void *buf, uint64_t sector,
			 uint64_t count)
{
	struct disk *ld = lun_disk(((struct hotadd *)d)->l);

	return ld->ops->pwrite(ld, buf, sector, count);
}

static int hotadd_flush(struct disk *d)
{
	struct disk *ld = lun_disk(((struct hotadd *)d)->l);

	return ld->ops->flush(ld);
}

static void hotadd_close(struct disk *d)
{
	struct hotadd *h = (struct hotadd *)d;

	ra_end(h);
	lun_put(h->l);
	h->l = NULL;
	(void)release(h);
}

static const struct disk_ops hotadd_ops = {
    .pread = hotadd_pread,
    .pwrite = hotadd_pwrite,
    .flush = hotadd_flush,
    .close = hotadd_close,
};

/* Can SPEC's disk be hot-added at all?  Its controller and backing, in
 * the snapshot's configuration. */
static int check_source(const struct disk_spec *spec, char *why, size_t size)
{
	static const char *const kinds[] = {"SCSI", "IDE", "SATA", "NVMe"};
	struct vs_hw hw;
	const struct vs_ctl *ctl;
	size_t i;
	int r = vs_hardware(spec->vs, spec->vm, spec->snapshot, &hw);

	if (r < 0) {
		snprintf(why, size, "%s", vmdkfs_errmsg());
		return r;
	}
	for (i = 0; i < hw.ndisk && r == 0; i++) {
		if (hw.disk[i].key != spec->disk_key)
			continue;
		ctl = vs_hw_ctl(&hw, hw.disk[i].ctl_key);
		if (hw.disk[i].backing &&
		    strstr(hw.disk[i].backing, "RawDiskMapping")) {
			snprintf(why, size,
				 "disk %d is a raw device mapping (%s): RDMs "
				 "cannot be hot-added",
				 spec->disk_key, hw.disk[i].backing);
			r = -ENODEV;
		} else if (ctl && ctl->kind != VS_CTL_SCSI) {
			snprintf(why, size,
				 "disk %d is on an %s controller (%s): only "
				 "SCSI disks can be hot-added",
				 spec->disk_key, kinds[ctl->kind], ctl->type);
			r = -ENODEV;
		}
	}
	vs_hardware_free(&hw);
	return r;
}

/* A SCSI controller of the proxy with a free unit (never 7). */
static int pick_unit(const struct disk_spec *spec, const char *proxy,
		     const struct vs_hw *hw, const struct vs_ctl **ctl,
		     int *unit, char *why, size_t size)
{
	size_t i, k, nscsi = 0;
	int u;

	for (i = 0; i < hw->ndisk; i++) {
		if (hw->disk[i].file &&
		    !strcmp(hw->disk[i].file, spec->ds_path)) {
			snprintf(why, size,
				 "%s is already attached to the proxy VM %s "
				 "(disk %d, \"%s\"): a leftover of an earlier "
				 "mount? vmdkfs cleanup detaches it",
				 spec->ds_path, proxy, hw->disk[i].key,
				 hw->disk[i].label ? hw->disk[i].label : "");
			return -EBUSY;
		}
	}
	/* Controllers by bus number. */
	for (int bus = 0; bus < 4; bus++) {
		for (k = 0; k < hw->nctl; k++) {
			const struct vs_ctl *c = &hw->ctl[k];

			if (c->kind != VS_CTL_SCSI || c->bus != bus)
				continue;
			nscsi++;
			for (u = 0; u <= MAX_UNIT; u++) {
				bool used = u == CTL_UNIT;

				for (i = 0; i < hw->ndisk && !used; i++)
					used = hw->disk[i].ctl_key == c->key &&
					       hw->disk[i].unit == u;
				if (!used) {
					*ctl = c;
					*unit = u;
					return 0;
				}
			}
		}
	}
	if (nscsi == 0)
		snprintf(why, size, "the proxy VM %s has no SCSI controller",
			 proxy);
	else
		snprintf(why, size,
			 "no SCSI controller of the proxy VM %s has a free "
			 "unit (%zu controller%s, units 0-15 but 7 all taken)",
			 proxy, nscsi, nscsi > 1 ? "s" : "");
	return -ENOSPC;
}

/* Wait for the device of unit H->unit on controller CTL: *DEVNAME. */
static int find_device(const struct disk_spec *spec, struct hotadd *h,
		       const struct vs_ctl *ctl, char (*seen)[32], int nseen,
		       char *devname, size_t size, char *why, size_t wsize)
{
	const char *sys = sysfs_of(spec);
	unsigned timeout = spec->hotadd_timeout ? spec->hotadd_timeout : 30;
	time_t start = time(NULL), last_scan = 0;
	int hosts[16], nhosts = 0, r;
	char dir[PATH_MAX + 64] = "";
	uint64_t sectors = spec->capacity / 512;

	for (;;) {
		time_t now = time(NULL);
		bool scan = now - last_scan >= 5;

		if (scan)
			last_scan = now;
		nhosts = scsi_hosts(sys, ctl->pci_slot, scan, hosts, 16);
		r = pick_device(sys, hosts, nhosts, h->unit, seen, nseen,
				sectors, dir, sizeof(dir), devname, size, why,
				wsize);
		if (r < 0)
			return r;
		if (r == 1)
			break;
		if ((unsigned)(now - start) >= timeout) {
			snprintf(why, wsize,
				 "no SCSI device H:0:%d:0 of %llu sectors "
				 "appeared in %s/bus/scsi/devices within %u s "
				 "(controller %s bus %d, PCI slot %d: %s)",
				 h->unit, (unsigned long long)sectors, sys,
				 timeout, ctl->type, ctl->bus, ctl->pci_slot,
				 nhosts ? "its host found"
					: "no host of that "
					  "slot, any host "
					  "taken");
			return -ETIMEDOUT;
		}
		usleep(100000);
	}
	h->scsi_dir = strdup(dir);
	return h->scsi_dir ? 0 : -ENOMEM;
}

static bool hotadd_available(const struct disk_spec *spec, char *why,
			     size_t size)
{
	if (spec->vs && spec->vm && spec->ds_path && spec->capacity)
		return true;
	snprintf(why, size, "needs a vSphere mount");
	return false;
}

static int hotadd_open(const struct disk_spec *spec, struct disk **out)
{
	char seen[MAX_SEEN][32];
	const char *devdir =
	    spec->hotadd_dev && *spec->hotadd_dev ? spec->hotadd_dev : "/dev";
	struct hotadd *h = calloc(1, sizeof(*h));
	struct vs_hw hw = {0};
	const struct vs_ctl *ctl = NULL;
	struct vs_vm proxy = {0};
	struct disk *ld;
	char why[1024] = "", label[256], devname[64], node[PATH_MAX];
	int r, nseen;

	if (!h)
		return -ENOMEM;
	h->vs = spec->vs;
	r = find_proxy(spec, &h->proxy, why, sizeof(why));
	if (r == 0 && !strcmp(h->proxy, spec->vm)) {
		snprintf(why, sizeof(why),
			 "the proxy VM %s is the VM being read: a VM cannot "
			 "hot-add its own disks (run vmdkfs in another VM)",
			 h->proxy);
		r = -EINVAL;
	}
	if (r == 0)
		r = check_source(spec, why, sizeof(why));
	if (r == 0 && (r = vs_vm_info(spec->vs, h->proxy, &proxy)) < 0)
		snprintf(why, sizeof(why), "%s", vmdkfs_errmsg());
	if (r < 0)
		goto fail;
	/* One attach at a time (disks opened lazily by browsing may open
	 * together): a unit is free until the proxy's config says not. */
	pthread_mutex_lock(&attach_lock);
	if ((r = vs_hardware(spec->vs, h->proxy, NULL, &hw)) < 0)
		snprintf(why, sizeof(why), "%s", vmdkfs_errmsg());
	if (r == 0)
		r = pick_unit(spec, h->proxy, &hw, &ctl, &h->unit, why,
			      sizeof(why));
	if (r < 0) {
		pthread_mutex_unlock(&attach_lock);
		goto fail;
	}
	h->ctl_key = ctl->key;
	nseen = scsi_devices(sysfs_of(spec), seen, MAX_SEEN);
	snprintf(label, sizeof(label), HOTADD_LABEL " %s %s disk %d", spec->vm,
		 spec->snapshot ? spec->snapshot : "current", spec->disk_key);
	r = vs_attach_disk(spec->vs, h->proxy, spec->ds_path, spec->capacity,
			   ctl->key, h->unit, !spec->readonly, label, &h->key);
	pthread_mutex_unlock(&attach_lock);
	if (r < 0) {
		snprintf(why, sizeof(why),
			 "attaching %s to the proxy VM %s: %s", spec->ds_path,
			 h->proxy, vmdkfs_errmsg());
		goto fail;
	}
	log_info("hotadd: %s attached to proxy VM %s (%s) as disk %d, "
		 "controller %d (bus %d, PCI slot %d) unit %d, %s",
		 spec->ds_path, proxy.name, h->proxy, h->key, ctl->key,
		 ctl->bus, ctl->pci_slot, h->unit,
		 spec->readonly ? "independent_nonpersistent" : "persistent");
	/* Not ended by a stop signal: the disk is attached, and only its
	 * SCSI device found and deleted first lets it be detached cleanly
	 * (the stop is seen once the open is done, and all undone). */
	sig_hold(true);
	r = find_device(spec, h, ctl, seen, nseen, devname, sizeof(devname),
			why, sizeof(why));
	sig_hold(false);
	if (r < 0)
		goto fail;
	snprintf(node, sizeof(node), "%s/%s", devdir, devname);
	for (int i = 0; i < 50 && access(node, F_OK) != 0; i++)
		usleep(100000); /* udev makes the node */
	r = lun_open(node, !spec->readonly, &h->l);
	if (r < 0) {
		snprintf(why, sizeof(why), "%s", vmdkfs_errmsg());
		goto fail;
	}
	ld = lun_disk(h->l);
	if (ld->size != spec->capacity) {
		snprintf(why, sizeof(why),
			 "%.300s is %llu bytes, the disk %llu: not the disk "
			 "attached",
			 node, (unsigned long long)ld->size,
			 (unsigned long long)spec->capacity);
		r = -EIO;
		goto fail;
	}
	h->d = *ld;
	h->d.ops = &hotadd_ops;
	h->d.transport = "hotadd";
	h->d.cache = NULL;
	h->d.path = strdup(node);
	if (asprintf(&h->d.lun, "%s (SCSI %s) on proxy VM %s (%s)%s", node,
		     strrchr(h->scsi_dir, '/') + 1, proxy.name, h->proxy,
		     lun_direct(h->l) ? "" : ", buffered") < 0)
		h->d.lun = NULL;
	if (spec->readonly && lun_direct(h->l))
		ra_start(h);
	log_info("hotadd: %s is %s", spec->ds_path, h->d.lun);
	vs_hardware_free(&hw);
	vs_vm_free(&proxy);
	*out = &h->d;
	return 0;
fail:
	vs_hardware_free(&hw);
	vs_vm_free(&proxy);
	if (h->l)
		lun_put(h->l);
	h->l = NULL;
	(void)release(h);
	vmdkfs_error("%s", why);
	return r;
}

const struct transport hotadd_transport = {
    .name = "hotadd",
    .available = hotadd_available,
    .open_disk = hotadd_open,
};

/* ---- vmdkfs cleanup ---- */

/* Is FILE one of the files of a VM other than the proxy? */
static bool other_vms_file(struct vs_conn *c, const char *proxy,
			   const char *file)
{
	struct vs_vmref *list = NULL;
	size_t n = 0, i, k, nf;
	bool hit = false;

	if (vs_list_vms(c, &list, &n) < 0)
		return false;
	for (i = 0; i < n && !hit; i++) {
		char **files = NULL;

		if (!strcmp(list[i].moref, proxy) ||
		    vs_vm_files(c, list[i].moref, &files, &nf) < 0)
			continue;
		for (k = 0; k < nf; k++) {
			hit |= !strcmp(files[k], file);
			free(files[k]);
		}
		free(files);
	}
	vs_vmrefs_free(list, n);
	return hit;
}

int hotadd_cleanup(const struct disk_spec *spec, int *cleaned, int *remaining)
{
	const char *sys = sysfs_of(spec);
	struct vs_hw hw;
	char why[1024] = "", *proxy = NULL;
	size_t i;
	int r;

	r = find_proxy(spec, &proxy, why, sizeof(why));
	if (r < 0) {
		log_info("cleanup: no hotadd proxy: %s", why);
		return 0;
	}
	r = vs_hardware(spec->vs, proxy, NULL, &hw);
	if (r < 0) {
		printf("could not read the proxy VM %s: %s\n", proxy,
		       vmdkfs_errmsg());
		(*remaining)++;
		free(proxy);
		return r;
	}
	for (i = 0; i < hw.ndisk; i++) {
		struct vs_hwdisk *d = &hw.disk[i];
		const struct vs_ctl *ctl = vs_hw_ctl(&hw, d->ctl_key);
		struct hotadd *h;
		bool ours = d->label && !strncmp(d->label, HOTADD_LABEL,
						 strlen(HOTADD_LABEL));
		int hosts[16], nh = 0, k;

		if (!ours &&
		    !(d->file && other_vms_file(spec->vs, proxy, d->file)))
			continue;
		h = calloc(1, sizeof(*h));
		if (!h) {
			(*remaining)++;
			continue;
		}
		h->vs = spec->vs;
		h->proxy = strdup(proxy);
		h->key = d->key;
		h->ctl_key = d->ctl_key;
		h->unit = d->unit;
		/* Its SCSI device, if the killed mount left it. */
		if (ctl)
			nh = scsi_hosts(sys, ctl->pci_slot, false, hosts, 16);
		for (k = 0; k < nh && !h->scsi_dir; k++) {
			char p[PATH_MAX];

			snprintf(p, sizeof(p), "%s/bus/scsi/devices/%d:0:%d:0",
				 sys, hosts[k], d->unit);
			if (access(p, F_OK) == 0)
				h->scsi_dir = strdup(p);
		}
		/* The device first, then the disk (release). */
		r = release(h);
		if (r == 0) {
			printf("detached %s (\"%s\") from the proxy VM %s\n",
			       d->file ? d->file : "a disk",
			       d->label ? d->label : "", proxy);
			(*cleaned)++;
		} else {
			printf("could not detach %s from the proxy VM %s: %s\n",
			       d->file ? d->file : "a disk", proxy,
			       vmdkfs_errmsg());
			(*remaining)++;
		}
	}
	vs_hardware_free(&hw);
	free(proxy);
	return 0;
}

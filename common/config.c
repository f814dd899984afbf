#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "err.h"
#include "config.h"

enum kind { K_STR, K_INT, K_BOOL, K_MS, K_BYTES, K_RO, K_RW, K_PREFIX };

struct key {
	const char *name;
	enum kind kind;
	size_t off;
	long min, max;	 /* K_INT */
	const char *def; /* default, as text */
	const char *help;
};

#define F(m) offsetof(struct config, m)
#define MS_MAX 2147483647L

static const struct key keys[] = {
    {"tmpDirectory", K_STR, F(tmp_directory), 0, 0, "/tmp",
     "folder for log files (default: $TMPDIR or /tmp)"},
    {"quiet", K_BOOL, F(quiet), 0, 1, "0",
     "no progress lines on stderr during long waits (snapshot tasks, "
     "PrepareForAccess retries)"},
    {"log", K_STR, F(log_file), 0, 0, NULL,
     "log file (default: tmpDirectory/vmdkfs-PID.log, PID the daemon's); "
     "never removed by vmdkfs"},
    {"vixDiskLib.transport.LogLevel", K_INT, F(log_level), 0, 6, "3",
     "log level 0 (off) .. 6 (every request); log file "
     "tmpDirectory/vmdkfs-PID.log"},
    {"vixDiskLib.nfc.LogLevel", K_INT, F(nfc_log_level), 0, 4, "1",
     "NFC log level 0 none, 1 error, 2 warning, 3 info, 4 debug "
     "(nbd/nbdssl)"},
    {"vixDiskLib.nfc.AcceptTimeoutMs", K_MS, F(nfc_accept_timeout_ms), 0,
     MS_MAX, "180000",
     "NFC accept timeout: connect, authd's greeting and TLS, ms, 0 = none "
     "(nbd/nbdssl)"},
    {"vixDiskLib.nfc.RequestTimeoutMs", K_MS, F(nfc_request_timeout_ms), 0,
     MS_MAX, "180000",
     "NFC request timeout: each handshake request and its answer, ms, "
     "0 = none (nbd/nbdssl)"},
    {"vixDiskLib.nfc.ReadTimeoutMs", K_MS, F(nfc_read_timeout_ms), 0, MS_MAX,
     "60000", "NFC read timeout, ms, 0 = none (nbd/nbdssl)"},
    {"vixDiskLib.nfc.ReadTimeoutsMs", K_MS, F(nfc_read_timeout_ms), 0, MS_MAX,
     NULL, "newer spelling of ReadTimeoutMs"},
    {"vixDiskLib.nfc.WriteTimeoutMs", K_MS, F(nfc_write_timeout_ms), 0, MS_MAX,
     "600000", "NFC write timeout, ms, 0 = none (nbd/nbdssl)"},
    {"vixDiskLib.nfc.WriteTimeoutsMs", K_MS, F(nfc_write_timeout_ms), 0, MS_MAX,
     NULL, "newer spelling of WriteTimeoutMs"},
    {"vixDiskLib.nfcFssrvr.TimeoutMs", K_MS, F(nfc_fssrvr_timeout_ms), 0,
     MS_MAX, "0",
     "NFC file session idle timeout, ms, 0 = wait forever "
     "(nbd/nbdssl)"},
    {"vixDiskLib.nfcFssrvrWrite.TimeoutMs", K_MS,
     F(nfc_fssrvr_write_timeout_ms), 0, MS_MAX, "0",
     "NFC write timeout of read-write opens, ms, 0 = WriteTimeoutMs "
     "(nbd/nbdssl)"},
    {"vixDiskLib.disklib.EnableCache", K_BOOL, F(enable_cache), 0, 1, "0",
     "read cache of cache_size bytes: helps random and repeated reads, "
     "costs memory and a copy on sequential reads"},
    {"vixDiskLib.linuxSSL.verifyCertificates", K_BOOL, F(verify_certificates),
     0, 1, "1", "verify the server's TLS identity (the seed's default was 0)"},
    {"vixDiskLib.transport.san.allowList", K_STR, F(san_allow_list), 0, 0, "",
     "device paths the san transport may use even if denied, "
     "comma-separated, shell wildcards (VDDK 8.0.1); it wins over "
     "denyList"},
    {"vixDiskLib.transport.san.denyList", K_STR, F(san_deny_list), 0, 0, "",
     "device paths the san transport must not read, comma-separated, "
     "shell wildcards; \"all\": only those of allowList"},
    {"vixDiskLib.nfcAio.Session.BufSizeIn64KB", K_INT, F(nfc_aio_buf_size_64k),
     1, 16, "1",
     "NFC AIO buffer size, in 64 KiB units: the largest data fragment "
     "(nbd/nbdssl)"},
    {"vixDiskLib.nfcAio.Session.BufCount", K_INT, F(nfc_aio_buf_count), 1, 64,
     "4", "NFC AIO buffer count: requests in flight per disk (nbd/nbdssl)"},
    {"transports", K_STR, F(transports), 0, 0, NULL,
     "transport modes to try, in order, colon-separated; default file "
     "for local disks, file:san:hotadd:nbdssl:nbd for vSphere mounts "
     "(file where the datastore is mapped; hotadd where vmdkfs runs "
     "in a VM of that vSphere)"},
    {"cache_size", K_BYTES, F(cache_size), 0, 0, "64M",
     "bytes of the EnableCache read cache"},
    {"grain_cache", K_BYTES, F(grain_cache), 0, 0, "32M",
     "bytes of inflated streamOptimized grains kept per extent"},
    {"table_cache", K_BYTES, F(table_cache), 0, 0, "16M",
     "bytes of grain tables kept per disk"},
    {"readahead", K_INT, F(readahead_kb), 0, 65536, "1024",
     "kernel readahead of the mount in KiB (set through sysfs, root "
     "only; 0 keeps the kernel's 128 KiB)"},
    {"threads", K_INT, F(threads), 0, 64, "0",
     "FUSE worker threads; 0: one per disk of the mount, 1 to 8"},
    {"allow_parent_write", K_BOOL, F(allow_parent_write), 0, 1, "0",
     "with rw: write a disk even though another disk in its folder is "
     "its child (the child will no longer match it)"},
    {"lun", K_STR, F(lun), 0, 0, NULL,
     "a VMFS volume: its LUNs, partitions or images, colon-separated; "
     "mounts the whole volume read-only, a flat file beside each VMDK "
     "descriptor (no DISK arguments then)"},
    {"partition", K_INT, F(partition), 0, 256, "0",
     "with lun=: the partition of each device holding the volume (0: the "
     "one of VMFS type, GPT AA31E02A-... or MBR 0xFB, or the whole device "
     "when it is a bare VMFS partition)"},
    {"san_devices", K_STR, F(san_devices), 0, 0, "/dev/disk/by-id",
     "san: the folder where each datastore LUN is found by its id "
     "(wwn-0xNAA or scsi-3NAA for an extent naa.NAA)"},
    /* The hotadd transport (transports/hotadd.c) */
    {"proxy_vm", K_STR, F(proxy_vm), 0, 0, NULL,
     "hotadd: the VM vmdkfs runs in (moid=vm-N, uuid=BIOS-UUID, "
     "path=DC/vm/NAME, or a name); default: found by this machine's DMI "
     "product UUID"},
    {"hotadd_sysfs", K_STR, F(hotadd_sysfs), 0, 0, "/sys",
     "hotadd: the sysfs root (DMI UUID, SCSI hosts and devices)"},
    {"hotadd_dev", K_STR, F(hotadd_dev), 0, 0, "/dev",
     "hotadd: the folder of the block device nodes"},
    {"hotadd_timeout", K_INT, F(hotadd_timeout), 1, 3600, "30",
     "hotadd: seconds to wait for the attached disk's SCSI device"},
    {"server", K_STR, F(server), 0, 0, NULL,
     "vCenter or ESXi host: mount a VM's snapshot disks (no DISK "
     "arguments then)"},
    {"port", K_INT, F(port), 1, 65535, "443", "HTTPS port of server"},
    {"user", K_STR, F(user), 0, 0, NULL, "vSphere user name"},
    {"password_file", K_STR, F(password_file), 0, 0, NULL,
     "file holding the password (not readable by group or others); or "
     "set VMDKFS_PASSWORD"},
    {"cookie", K_STR, F(cookie), 0, 0, NULL,
     "an existing vmware_soap_session cookie instead of user/password "
     "(config file or VMDKFS_COOKIE only, never on the command line)"},
    {"nfchostport", K_INT, F(nfc_host_port), 0, 65535, "0",
     "authd port for nbd/nbdssl (0: the ticket's, usually 902)"},
    {"nfc_max_io", K_BYTES, F(nfc_max_io), 0, 0, "1M",
     "largest NFC request, bytes (sources differ: 1 MiB is safe; at most "
     "8M) (nbd/nbdssl)"},
    {"nfc_close_file", K_INT, F(nfc_close_file), 8, 16, "8",
     "payload bytes of NFC CLOSE_FILE: 8 (as VDDK) or 16 (another "
     "host's spelling) (nbd/nbdssl)"},
    {"nfc_close_session", K_INT, F(nfc_close_session), 4, 16, "4",
     "payload bytes of NFC CLOSE_SESSION: 4 (as VDDK) or 16 (another "
     "host's spelling) (nbd/nbdssl)"},
    {"thumbprint", K_STR, F(thumbprint), 0, 0, NULL,
     "the server certificate's SHA-1 or SHA-256 thumbprint (pinned)"},
    {"cafile", K_STR, F(cafile), 0, 0, NULL,
     "CA bundle to verify the server with (default: the system's)"},
    {"vm", K_STR, F(vm), 0, 0, NULL,
     "the VM: moid=vm-42, uuid=BIOS-UUID, path=DC/vm/NAME, or a name"},
    {"snapshot", K_STR, F(snapshot), 0, 0, NULL,
     "snapshot moref (snapshot-47) or name; \"new\" for a temporary "
     "one removed at unmount; \"all\" for every snapshot, a folder each"},
    {"quiesce", K_BOOL, F(quiesce), 0, 1, "0",
     "quiesce the guest for snapshot=new"},
    {"prepare_access", K_STR, F(prepare_access), 0, 0, "optional",
     "PrepareForAccess (disable Storage vMotion while mounted): "
     "optional (warn if refused), required, or off"},
    {"prepare_access_timeout", K_INT, F(prepare_access_timeout), 0, 86400,
     "600",
     "seconds to retry PrepareForAccess while the VM's "
     "methods are already disabled"},
    {"soap_timeout", K_INT, F(soap_timeout), 1, 86400, "600",
     "seconds a vSphere (SOAP) call may take before it fails; a task is "
     "polled with calls of its own"},
    {"identity", K_STR, F(identity), 0, 0, NULL,
     "who is accessing, for PrepareForAccess (at most 50 characters; "
     "default vmdkfs@HOST pid N)"},
    {"datastore.NAME", K_PREFIX, 0, 0, 0, NULL,
     "local folder of datastore NAME (an NFS mount of it): its disks are "
     "read with the file transport"},
    /* Partitions and the scratch layer (fs/partition.c, fs/scratch.c) */
    {"partitions", K_BOOL, F(partitions), 0, 1, "1",
     "a flat file DISK-pN.raw beside each disk for each partition of its "
     "MBR or GPT (read when the disk's folder is first listed); off: none"},
    {"scratch", K_STR, F(scratch), 0, 0, NULL,
     "read-only mounts: the flat files accept writes into a copy-on-write "
     "layer, discarded at unmount and never written to the disks (a dirty "
     "journal replayed); bare: in memory; scratch=DIR: a temporary file "
     "in DIR"},
    {"scratch_max", K_BYTES, F(scratch_max), 0, 0, "1G",
     "bytes the scratch layer may hold (writes past it fail with ENOSPC)"},
    /* Changed block tracking (fs/cbt.c) */
    {"cbt", K_STR, F(cbt), 0, 0, "on",
     "vSphere mounts: disks read over nbd, nbdssl or hotadd of a VM with "
     "changed block tracking show holes where QueryChangedDiskAreas \"*\" "
     "reports no area in use; off: no holes"},
    {"changed_since", K_STR, F(changed_since), 0, 0, NULL,
     "vSphere mounts: beside each DISK.raw, DISK.changed.json and "
     "DISK.changed.raw with the areas changed since this change id (\"*\": "
     "the areas in use); the mount fails if they are not known"},
    {"changed_since.KEY", K_PREFIX, 0, 0, 0, NULL,
     "the same for the disk with device key KEY only (wins over "
     "changed_since=)"},
    /* Browsing: server= without vm= (fs/browse.c) */
    {"vms", K_STR, F(vms), 0, 0, NULL,
     "browsing (server= without vm=): only the VMs whose names match this "
     "shell pattern (fnmatch); default: every VM"},
    {"inventory_ttl", K_INT, F(inventory_ttl), 0, 86400, "30",
     "browsing: seconds a folder's listing (VMs, snapshots, disks) is kept "
     "before the inventory is asked again"},
    {"idle_close", K_INT, F(idle_close), 0, 86400, "60",
     "browsing: seconds a disk stays open after its last file is closed"},
    {"max_open_disks", K_INT, F(max_open_disks), 1, 4096, "8",
     "browsing: the most disks open at once (idle ones are closed first to "
     "make room)"},
    {"open_wait", K_INT, F(open_wait), 0, 3600, "10",
     "browsing: seconds an open waits when max_open_disks disks are in use, "
     "then fails with EBUSY"},
    {"ro", K_RO, F(rw), 0, 0, NULL, "read-only mount (the default)"},
    {"rw", K_RW, F(rw), 0, 0, NULL, "read-write mount"},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int parse_bytes(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	}
	if (*end || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int apply(struct config *c, const struct key *k, const char *value,
		 const char *where)
{
	char *base = (char *)c + k->off;
	uint64_t bytes;
	long v;

	switch (k->kind) {
	case K_RO:
	case K_RW:
		if (value) {
			vmdkfs_error("%s: option \"%s\" takes no value", where,
				     k->name);
			return -EINVAL;
		}
		*(bool *)base = k->kind == K_RW;
		return 0;
	case K_STR: {
		char *s = strdup(value ? value : "");

		if (!s)
			return -ENOMEM;
		free(*(char **)base);
		*(char **)base = s;
		return 0;
	}
	case K_BYTES:
		if (!value || parse_bytes(value, &bytes) < 0) {
			vmdkfs_error("%s: %s=%s: expected a size in bytes "
				     "(suffix K, M or G allowed)",
				     where, k->name, value ? value : "");
			return -EINVAL;
		}
		*(uint64_t *)base = bytes;
		return 0;
	default:
		break;
	}
	if (!value && k->kind == K_BOOL)
		value = "1"; /* a bare word turns a switch on */
	if (value && k->kind == K_BOOL &&
	    (!strcasecmp(value, "on") || !strcasecmp(value, "yes") ||
	     !strcasecmp(value, "true")))
		value = "1";
	if (value && k->kind == K_BOOL &&
	    (!strcasecmp(value, "off") || !strcasecmp(value, "no") ||
	     !strcasecmp(value, "false")))
		value = "0";
	if (!value || parse_long(value, k->min, k->max, &v) < 0) {
		vmdkfs_error("%s: %s=%s: expected a whole number from %ld to "
			     "%ld",
			     where, k->name, value ? value : "", k->min,
			     k->max);
		return -EINVAL;
	}
	if (k->kind == K_BOOL)
		*(bool *)base = v != 0;
	else if (k->kind == K_MS)
		*(uint32_t *)base = (uint32_t)v;
	else if (k->off == F(nfc_aio_buf_size_64k) ||
		 k->off == F(nfc_aio_buf_count) || k->off == F(readahead_kb) ||
		 k->off == F(prepare_access_timeout) ||
		 k->off == F(soap_timeout))
		*(uint32_t *)base = (uint32_t)v;
	else
		*(int *)base = (int)v;
	return 0;
}

static int add_datastore(struct config *c, const char *key, const char *value,
			 const char *where)
{
	char **d, *s = NULL;

	if (!value || !*value || !key[10]) {
		vmdkfs_error("%s: %s: expected datastore.NAME=/local/folder",
			     where, key);
		return -EINVAL;
	}
	d = realloc(c->datastores, (c->ndatastores + 1) * sizeof(*d));
	if (!d || asprintf(&s, "%s=%s", key + 10, value) < 0)
		return -ENOMEM;
	c->datastores = d;
	d[c->ndatastores++] = s;
	return 0;
}

/* changed_since.KEY=ID (fs/cbt.c) */
static int add_changed_since(struct config *c, const char *key,
			     const char *value, const char *where)
{
	char **d, *s = NULL, *end;
	long k;

	errno = 0;
	k = strtol(key + 14, &end, 10);
	if (!value || !*value || !key[14] || *end || errno || k < 0) {
		vmdkfs_error("%s: %s: expected changed_since.DEVICEKEY=CHANGEID "
			     "(e.g. changed_since.2000=...)",
			     where, key);
		return -EINVAL;
	}
	d = realloc(c->changed_since_keys,
		    (c->nchanged_since_keys + 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	c->changed_since_keys = d;
	if (asprintf(&s, "%ld=%s", k, value) < 0)
		return -ENOMEM;
	d[c->nchanged_since_keys++] = s;
	return 0;
}

const char *config_changed_since(const struct config *c, int key)
{
	char pre[24];
	size_t i, n;

	n = (size_t)snprintf(pre, sizeof(pre), "%d=", key);
	for (i = c->nchanged_since_keys; i-- > 0;)
		if (strncmp(c->changed_since_keys[i], pre, n) == 0)
			return c->changed_since_keys[i] + n;
	return c->changed_since && *c->changed_since ? c->changed_since
						     : NULL;
}

const char *config_datastore(const struct config *c, const char *name)
{
	size_t i, n = strlen(name);

	for (i = c->ndatastores; i-- > 0;)
		if (strncmp(c->datastores[i], name, n) == 0 &&
		    c->datastores[i][n] == '=')
			return c->datastores[i] + n + 1;
	return NULL;
}

int config_set(struct config *c, const char *key, const char *value,
	       const char *where)
{
	size_t i;

	if (strncasecmp(key, "datastore.", 10) == 0)
		return add_datastore(c, key, value, where);
	if (strncasecmp(key, "changed_since.", 14) == 0)
		return add_changed_since(c, key, value, where);
	if (strcmp(where, "-o") == 0 && strcasecmp(key, "cookie") == 0) {
		vmdkfs_error(
		    "-o cookie=...: a session cookie on the command line "
		    "is visible to every user (ps); put it in the "
		    "config file (mode 600) or VMDKFS_COOKIE");
		return -EINVAL;
	}
	if (strcasecmp(key, "password") == 0) {
		vmdkfs_error("%s password=...: a password on the command line "
			     "or in a config file is visible to others (ps, "
			     "backups); use password_file= (mode 600) or "
			     "VMDKFS_PASSWORD",
			     where);
		return -EINVAL;
	}
	for (i = 0; i < NKEYS; i++)
		if (strcasecmp(keys[i].name, key) == 0)
			return apply(c, &keys[i], value, where);
	fprintf(stderr, "vmdkfs: warning: %s: unknown option \"%s\" ignored\n",
		where, key);
	return 1;
}

void config_init(struct config *c)
{
	const char *tmp = getenv("TMPDIR");
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NKEYS; i++)
		if (keys[i].def && keys[i].kind != K_RO &&
		    keys[i].kind != K_RW && keys[i].kind != K_PREFIX)
			apply(c, &keys[i], keys[i].def, "default");
	if (tmp && *tmp)
		apply(c, &keys[0], tmp, "TMPDIR");
}

void config_free(struct config *c)
{
	size_t i;

	for (i = 0; i < c->ndatastores; i++)
		free(c->datastores[i]);
	free(c->datastores);
	c->datastores = NULL;
	c->ndatastores = 0;
	for (i = 0; i < c->nchanged_since_keys; i++)
		free(c->changed_since_keys[i]);
	free(c->changed_since_keys);
	c->changed_since_keys = NULL;
	c->nchanged_since_keys = 0;
	if (c->cookie)
		explicit_bzero(c->cookie, strlen(c->cookie));

	for (i = 0; i < NKEYS; i++)
		if (keys[i].kind == K_STR) {
			free(*(char **)((char *)c + keys[i].off));
			*(char **)((char *)c + keys[i].off) = NULL;
		}
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = '\0';
	return s;
}

int config_load(struct config *c, const char *path)
{
	char line[4096], where[4200];
	struct stat st;
	unsigned lineno = 0;
	FILE *fp;
	int r = 0;

	fp = fopen(path, "re");
	if (!fp) {
		vmdkfs_error("%s: cannot open config file: %m", path);
		return -errno;
	}
	if (fstat(fileno(fp), &st) == 0 && !S_ISREG(st.st_mode)) {
		vmdkfs_error("%s: config file is not a regular file", path);
		fclose(fp);
		return -EINVAL;
	}
	if (fstat(fileno(fp), &st) == 0 && (st.st_mode & 022)) {
		vmdkfs_error("%s: config file is writable by group or others; "
			     "refusing it (chmod go-w)",
			     path);
		fclose(fp);
		return -EPERM;
	}
	bool had_cookie = c->cookie != NULL;

	while (fgets(line, sizeof(line), fp)) {
		char *t = trim(line), *eq, *key, *val;

		lineno++;
		if (!*t || *t == '#')
			continue;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		eq = strchr(t, '=');
		if (!eq) {
			vmdkfs_error("%s: expected name=value, got \"%.60s\"",
				     where, t);
			r = -EINVAL;
			break;
		}
		*eq = '\0';
		key = trim(t);
		val = trim(eq + 1);
		if (*val == '"' && strlen(val) >= 2 &&
		    val[strlen(val) - 1] == '"') {
			val[strlen(val) - 1] = '\0';
			val++;
		}
		if (strcasecmp(key, "config") == 0) {
			vmdkfs_error("%s: \"config\" cannot be nested", where);
			r = -EINVAL;
			break;
		}
		r = config_set(c, key, val, where);
		if (r < 0)
			break;
		r = 0;
	}
	fclose(fp);
	if (r == 0 && !had_cookie && c->cookie && (st.st_mode & 077)) {
		vmdkfs_error("%s: holds a session cookie but is readable by "
			     "group or others; refusing it (chmod 600)",
			     path);
		r = -EPERM;
	}
	return r;
}

void config_print_keys(void)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		printf("  %s%s%s\n      %s\n", keys[i].name,
		       keys[i].def ? "=" : "", keys[i].def ? keys[i].def : "",
		       keys[i].help);
}

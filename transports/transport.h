/* Transports: how a disk is reached.  One static struct per transport, a
 * registry, and a selector that tries a mode list in order, as VDDK does.
 */
#ifndef VMDKFS_TRANSPORT_H
#define VMDKFS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disk.h"

/* What to open and how. */
struct disk_spec {
	const char *path;    /* the .vmdk descriptor on a local path, or NULL
				when the disk's datastore is not mapped */
	const char *ds_path; /* vSphere: "[datastore] folder/disk.vmdk" */
	/* file: where PATH and its extents are opened (a VMFS volume);
	 * NULL: local files */
	const struct source_opener *opener;
	bool readonly;
	bool allow_parent_write;
	bool single_link; /* the named link alone (vmdk_options) */
	bool keep_descriptor; /* writes change data only (vmdk_options) */
	/* nbd/nbdssl: the vSphere session, the VM and the disk's key, and
	 * the NFC settings (vixDiskLib.nfc.*). */
	struct vs_conn *vs;
	const char *vm;
	int disk_key;
	int nfc_port;	      /* 0: the ticket's */
	/* ms, 0 = none: accept, request, read, write, file-session idle,
	 * file-system write (vixDiskLib.nfc*.Timeout*Ms) */
	uint32_t nfc_timeout_ms[6];
	int nfc_log_level;
	uint32_t nfc_buf_size, nfc_buf_count; /* bytes, count */
	uint32_t nfc_max_io;		      /* bytes per request, 0: 1 MiB */
	/* CLOSE_FILE (8 or 16) and CLOSE_SESSION (4 or 16) payload bytes;
	 * 0: 16 and 4 */
	int nfc_close_file, nfc_close_session;
	size_t table_cache_bytes, grain_cache_bytes;
	/* san: the folder of LUN device names (NULL: /dev/disk/by-id) and
	 * vixDiskLib.transport.san.allowList / denyList (NULL: none) */
	const char *san_devices, *san_allow, *san_deny;
	/* hotadd: the snapshot (moref; NULL: the VM's current disks) and the
	 * disk's capacity (bytes); proxy_vm= (NULL: found from DMI), the
	 * sysfs and device folders (NULL: /sys, /dev) and the wait for the
	 * device (s, 0: 30) */
	const char *snapshot;
	uint64_t capacity;
	const char *proxy_vm, *hotadd_sysfs, *hotadd_dev;
	unsigned hotadd_timeout;
};

struct transport {
	const char *name;
	/* Can this transport reach SPEC?  If not, WHY (SIZE bytes) says so.
	 * NULL: always. */
	bool (*available)(const struct disk_spec *spec, char *why,
			  size_t size);
	int (*open_disk)(const struct disk_spec *spec, struct disk **out);
};

extern const struct transport file_transport;
extern const struct transport san_transport;
extern const struct transport hotadd_transport;
extern const struct transport nbd_transport;
extern const struct transport nbdssl_transport;

/* vmdkfs cleanup: detach what killed hotadd mounts left on the proxy VM
 * (SPEC: vs, proxy_vm, hotadd_sysfs): disks labelled by vmdkfs, or whose
 * file belongs to another VM; the SCSI device deleted first.  Prints a
 * line per disk and counts them. */
/* A snapshot's disk read from the datastore's own files (san, file):
 * INNER behind a check, every few seconds before a read, that snapshot
 * SNAP is still there on VS (transports/guard.c); once it is gone, reads
 * fail with EIO.  The wrapper takes INNER; on -ENOMEM it stays the
 * caller's. */
struct vs_conn;
int guard_disk_new(struct disk *inner, struct vs_conn *vs, const char *snap,
		   struct disk **out);

int hotadd_cleanup(const struct disk_spec *spec, int *cleaned,
		   int *remaining);

/* The VMDK chain SPEC->path through vmdk/ (SPEC->opener, or local files),
 * shown as transport NAME; RELEASE(ARG), if given, runs after the chain
 * is closed (what the opener reads from may go then).  On failure
 * RELEASE is not called. */
int vmdk_disk_open(const struct disk_spec *spec, const char *name,
		   void (*release)(void *), void *arg, struct disk **out);

/* Colon-separated names of the transports this build supports. */
const char *transport_list(void);

/* Check that every name in MODES is a VDDK transport mode (file, san,
 * hotadd, nbd, nbdssl), whether or not this build has it.  0 or -EINVAL
 * with a message. */
int transport_check_modes(const char *modes);

/* The default mode list: "file" for local disks; for a vSphere mount the
 * network list san:hotadd:nbdssl:nbd, with file (a mapped datastore)
 * ahead of it. */
#define TRANSPORTS_LOCAL "file"
#define TRANSPORTS_VSPHERE "file:san:hotadd:nbdssl:nbd"

/* Open SPEC with the first transport of MODES (colon-separated) that
 * opens it.  On failure the message names each mode and why it failed. */
int transport_open(const char *modes, const struct disk_spec *spec,
		   struct disk **out);

#endif

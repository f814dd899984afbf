/* Configuration: one table of keys, shared by the InitEx-style config file
 * (-o config=FILE, "name=value" lines) and -o key=value options. */
#ifndef VMDKFS_CONFIG_H
#define VMDKFS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

struct config {
	/* VDDK InitEx keys */
	char *tmp_directory;
	char *log_file; /* log=, or NULL */
	char *lun;	/* lun=, or NULL */
	int partition;	/* partition=: of each lun= device, 0: by type */
	char *san_devices; /* san_devices=: folder of LUN names */
	int log_level;	   /* vixDiskLib.transport.LogLevel */
	int nfc_log_level; /* vixDiskLib.nfc.LogLevel */
	uint32_t nfc_accept_timeout_ms, nfc_request_timeout_ms;
	uint32_t nfc_read_timeout_ms, nfc_write_timeout_ms;
	uint32_t nfc_fssrvr_timeout_ms, nfc_fssrvr_write_timeout_ms;
	bool enable_cache;	  /* vixDiskLib.disklib.EnableCache */
	bool verify_certificates; /* vixDiskLib.linuxSSL.verifyCertificates */
	char *san_allow_list, *san_deny_list;
	uint32_t nfc_aio_buf_size_64k, nfc_aio_buf_count;
	/* vmdkfs keys */
	char *transports;
	uint64_t cache_size;  /* bytes, EnableCache's cache */
	uint64_t grain_cache; /* bytes, inflated grains */
	uint64_t table_cache; /* bytes, grain tables */
	uint32_t readahead_kb;
	int threads; /* FUSE worker threads */
	/* vSphere mounts */
	char *server, *user, *password_file, *cookie, *vm, *snapshot;
	char *thumbprint, *cafile, *prepare_access, *identity;
	int port;
	int nfc_host_port;   /* nfchostport: authd's port, 0: the ticket's */
	uint64_t nfc_max_io; /* bytes per NFC request */
	int nfc_close_file, nfc_close_session; /* payload bytes */
	uint32_t prepare_access_timeout; /* seconds */
	uint32_t soap_timeout;		 /* seconds per vSphere call */
	bool quiesce;
	bool quiet; /* no progress lines */
	char **datastores; /* "NAME=/local/path" */
	size_t ndatastores;
	bool secret_from_cmdline; /* set when -o gave a secret */
	bool rw;
	bool allow_parent_write;
	/* Changed block tracking (fs/cbt.c) */
	char *cbt;	     /* cbt=on|off: holes of LAN disks from "*" */
	char *changed_since; /* changed_since=ID: every disk's views */
	char **changed_since_keys; /* changed_since.KEY=ID: "KEY=ID" */
	size_t nchanged_since_keys;
	/* Partitions and the scratch layer (fs/partition.c, fs/scratch.c) */
	bool partitions;      /* partitions=: DISK-pN.raw beside each disk */
	char *scratch;	      /* scratch[=DIR]: NULL off, "" memory, or DIR */
	uint64_t scratch_max; /* bytes the scratch layer may hold */
	/* The hotadd transport (transports/hotadd.c) */
	char *proxy_vm;	    /* proxy_vm=: moid=, uuid=, path= or a name */
	char *hotadd_sysfs; /* hotadd_sysfs=: sysfs root (/sys) */
	char *hotadd_dev;   /* hotadd_dev=: device nodes (/dev) */
	int hotadd_timeout; /* seconds to wait for the SCSI device */
	/* Browsing: server= without vm= (fs/browse.c) */
	char *vms;	    /* vms=GLOB: the VMs shown (fnmatch on names) */
	int inventory_ttl;  /* seconds a listing is kept */
	int idle_close;	    /* seconds a disk stays open after its last close */
	int max_open_disks; /* disks open at once */
	int open_wait;	    /* seconds an open waits for a free slot */
};

void config_init(struct config *c);
void config_free(struct config *c);

/* Set KEY to VALUE (VALUE NULL for a bare word such as "ro").  WHERE names
 * the origin for messages ("-o" or "FILE:LINE").  Returns 0, 1 if the key
 * is unknown (a warning has been printed), or -EINVAL with a message. */
int config_set(struct config *c, const char *key, const char *value,
	       const char *where);

/* Read a config file: name=value lines, '#' comments.  Returns 0 or -errno
 * (message in vmdkfs_errmsg()).  Refuses group/world-writable files. */
int config_load(struct config *c, const char *path);

/* The local folder of datastore NAME (datastore.NAME=), or NULL. */
const char *config_datastore(const struct config *c, const char *name);

/* The change id of changed_since.KEY= for device KEY, else
 * changed_since=, else NULL (fs/cbt.c's views). */
const char *config_changed_since(const struct config *c, int key);

/* Print every key with its default, as vmdkfs.conf does. */
void config_print_keys(void);

#endif

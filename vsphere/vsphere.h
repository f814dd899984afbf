/* vsphere: the control plane.  A SOAP session with vCenter or ESXi over
 * libcurl + libxml2: login, property retrieval, tasks, snapshots,
 * PrepareForAccess/EndAccess.  Nothing here knows about FUSE.
 *
 * Functions return 0 or -errno; the message (with the SOAP fault's name and
 * text) is in vmdkfs_errmsg().
 */
#ifndef VMDKFS_VSPHERE_H
#define VMDKFS_VSPHERE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libxml/tree.h>

struct vs_conn;

struct vs_config {
	const char *server; /* host name or address */
	int port;	    /* 0: 443 */
	const char *user;
	const char *password;	/* or NULL with a cookie */
	const char *cookie;	/* an existing vmware_soap_session value */
	bool verify;		/* vixDiskLib.linuxSSL.verifyCertificates */
	const char *cafile;	/* CA bundle; NULL: the system's */
	const char *thumbprint; /* pinned SHA-1 or SHA-256, hex, ':' optional */
	const char *path;	/* URL path, default "/sdk" */
	unsigned timeout;	/* seconds per call; 0: 600 */
	/* Tests and fuzzing: answer each call here, with no network.  Sets
	 * *BODY (malloc'd) and *LEN, returns the HTTP status, or 0 for "the
	 * link broke". */
	int (*answer)(void *ctx, const char *method, const char *request,
		      char **body, size_t *len);
	void *answer_ctx;
};

/* Connect, fetch the service content and log in. */
int vs_connect(const struct vs_config *cfg, struct vs_conn **out);
/* Log out (unless the session came from a cookie) and free. */
void vs_disconnect(struct vs_conn *c);

/* The service content's morefs and facts. */
const char *vs_api_type(const struct vs_conn *c); /* "VirtualCenter"... */
const char *vs_moref(const struct vs_conn *c, const char *name);

/* Call METHOD on the object _this (TYPE:VALUE) with extra body XML (already
 * escaped).  On success *OUT is the parsed response (free with
 * xmlFreeDoc), whose body's first element is METHOD"Response". */
int vs_call(struct vs_conn *c, const char *method, const char *this_type,
	    const char *this_value, const char *body, xmlDocPtr *out);

/* The same in another namespace (e.g. "urn:internalvim25"). */
int vs_call_ns(struct vs_conn *c, const char *ns, const char *method,
	       const char *this_type, const char *this_value, const char *body,
	       xmlDocPtr *out);

/* The last call failed in a way that may have lost its answer (the link
 * broke or timed out after the request went out): the server may have
 * carried it out. */
bool vs_answer_lost(const struct vs_conn *c);

/* RetrievePropertiesEx of property PATH of object TYPE:MOREF: *DOC is the
 * answer (free with xmlFreeDoc), *VAL its <val> or NULL when the object
 * has no such property. */
int vs_prop(struct vs_conn *c, const char *type, const char *moref,
	    const char *path, xmlDocPtr *doc, xmlNodePtr *val);
/* Does snapshot SNAP (moref) still exist?  1, 0, or -errno. */
int vs_snapshot_exists(struct vs_conn *c, const char *snap);
/* The local part of N's xsi:type ("VirtualDisk"), malloc'd, or NULL. */
char *vs_xsi_type(xmlNodePtr n);

/* Escape S for XML text (malloc'd). */
char *vs_xml_escape(const char *s);

/* The first descendant element of N with local name NAME, or NULL. */
xmlNodePtr vs_find(xmlNodePtr n, const char *name);
/* Its text content (malloc'd), or NULL. */
char *vs_text(xmlNodePtr n, const char *name);

/* Wait for task TASK (moref value) to finish; progress on stderr if
 * PROGRESS.  The task's result moref (if any) in *RESULT (malloc'd). */
int vs_wait_task(struct vs_conn *c, const char *task, bool progress,
		 char **result);

/* The digest MD of CERT as a thumbprint: "AA:BB:..." (COLONS) or plain
 * lower-case hex. */
#include <openssl/evp.h>
#include <openssl/x509.h>
void vs_cert_digest(X509 *cert, const EVP_MD *md, char *out, size_t size,
		    bool colons);

/* SHA-1 / SHA-256 thumbprints of the server's certificate, as last seen
 * ("AA:BB:..."), or "". */
const char *vs_server_thumbprint(const struct vs_conn *c, bool sha256);

#endif

/* ---- Inventory, snapshots, access (inventory.c) ---- */

struct vs_disk {
	int key;	   /* device key */
	char *label;	   /* deviceInfo.label, e.g. "Hard disk 1" */
	char *file;	   /* backing fileName: "[datastore] dir/x.vmdk" */
	char *change_id;   /* backing changeId, or NULL */
	uint64_t capacity; /* bytes */
};

struct vs_snapshot {
	char *moref, *name;
};

struct vs_vm {
	char *moref, *name, *power_state;
	struct vs_snapshot *snaps; /* depth-first order of the tree */
	size_t nsnaps;
};

struct vs_vmref {
	char *moref, *name;
};

/* Every VM (a container view, pages joined). */
int vs_list_vms(struct vs_conn *c, struct vs_vmref **list, size_t *n);
void vs_vmrefs_free(struct vs_vmref *list, size_t n);

/* The VM's disabledMethod list (malloc'd strings). */
int vs_disabled_methods(struct vs_conn *c, const char *vm, char ***methods,
			size_t *n);

/* Find a VM: SPEC is "moid=vm-42", "uuid=<BIOS UUID>", "path=<inventory
 * path>" or "name=<name>" (a bare string is a name).  *MOREF malloc'd. */
int vs_find_vm(struct vs_conn *c, const char *spec, char **moref);
int vs_vm_info(struct vs_conn *c, const char *moref, struct vs_vm *vm);
void vs_vm_free(struct vs_vm *vm);

/* The virtual disks of snapshot SNAP (its config), or of the VM's current
 * configuration when SNAP is NULL and VM is given. */
int vs_disks(struct vs_conn *c, const char *vm, const char *snap,
	     struct vs_disk **disks, size_t *n);
void vs_disks_free(struct vs_disk *disks, size_t n);

/* Take a snapshot (no memory) of VM; its moref in *SNAP.  *TASK (when
 * not NULL) gets the task's moref once the server answered the call, also
 * when waiting for it then failed: the task may still make the snapshot. */
int vs_create_snapshot(struct vs_conn *c, const char *vm, const char *name,
		       bool quiesce, char **snap, char **task);
int vs_remove_snapshot(struct vs_conn *c, const char *snap);

/* PrepareForAccess / EndAccess: disable / enable RelocateVM_Task on VM
 * through AuthorizationManager.DisableMethods/EnableMethods with SOURCE
 * as the source id. */
int vs_disable_relocate(struct vs_conn *c, const char *vm, const char *source,
			const char *identity);
int vs_enable_relocate(struct vs_conn *c, const char *vm, const char *source);

/* ---- Datastores (the san transport's LUNs) ---- */

#define VS_MAX_EXTENTS 32

struct vs_datastore {
	char *moref, *name;
	char *type;	 /* summary.type: "VMFS", "NFS", "vsan", ... */
	char *vmfs_uuid; /* info.vmfs.uuid (VMFS only) */
	int vmfs_major;	 /* info.vmfs.majorVersion */
	struct {
		char *disk;    /* diskName: "naa.6000c29..." */
		int partition; /* 1.. */
	} ext[VS_MAX_EXTENTS];
	size_t next;
};

/* The datastore named NAME among those of VM (its "datastore" list). */
int vs_datastore(struct vs_conn *c, const char *vm, const char *name,
		 struct vs_datastore *ds);
void vs_datastore_free(struct vs_datastore *ds);

/* ---- NFC tickets (nfc.c's side of the control plane) ---- */

struct vs_ticket {
	char *host;	  /* NULL on a direct ESXi ticket: the server itself */
	int port;	  /* authd, usually 902 */
	char *thumbprint; /* SHA-1 of the authd certificate, "AA:BB:..." */
	char *service;	  /* "vpxa-nfc" (vCenter) or "nfc" (ESXi) */
	char *session;	  /* single use */
};

/* A ticket to open disk DISK_KEY of VM through the host's NFC service:
 * NfcRandomAccessOpenReadonly, or NfcRandomAccessOpenDisk when RW. */
int vs_nfc_ticket(struct vs_conn *c, const char *vm, int disk_key, bool rw,
		  struct vs_ticket *t);
void vs_ticket_free(struct vs_ticket *t);
/* The server's host name, as given. */
const char *vs_host(const struct vs_conn *c);

/* ---- HotAdd (hotadd.c) ---- */

enum { VS_CTL_SCSI, VS_CTL_IDE, VS_CTL_SATA, VS_CTL_NVME };

#define VS_MAX_CTL 16
#define VS_MAX_HWDISK 128

struct vs_ctl {
	int key, kind; /* kind: VS_CTL_* */
	int bus;       /* busNumber */
	int pci_slot;  /* slotInfo.pciSlotNumber, -1 when not given */
	char type[48]; /* "ParaVirtualSCSIController", ... */
};

struct vs_hwdisk {
	int key, ctl_key, unit; /* unit -1: none given */
	char *label, *file;	/* file: backing fileName, or NULL */
	char *mode;		/* backing diskMode */
	char *backing;		/* "VirtualDiskFlatVer2BackingInfo", ... */
	uint64_t capacity;	/* bytes */
};

struct vs_hw {
	struct vs_ctl ctl[VS_MAX_CTL];
	size_t nctl;
	struct vs_hwdisk disk[VS_MAX_HWDISK];
	size_t ndisk;
};

/* Storage controllers and disks of VM's current configuration, or of
 * snapshot SNAP's when SNAP is given. */
int vs_hardware(struct vs_conn *c, const char *vm, const char *snap,
		struct vs_hw *hw);
void vs_hardware_free(struct vs_hw *hw);
const struct vs_ctl *vs_hw_ctl(const struct vs_hw *hw, int key);

/* ReconfigVM_Task on PROXY: add the existing disk FILE (CAPACITY bytes)
 * at CTL_KEY/UNIT, without fileOperation, in mode persistent or
 * independent_nonpersistent, with LABEL; its device key in *KEY. */
int vs_attach_disk(struct vs_conn *c, const char *proxy, const char *file,
		   uint64_t capacity, int ctl_key, int unit, bool persistent,
		   const char *label, int *key);
/* ReconfigVM_Task on PROXY: remove disk KEY, without fileOperation (the
 * file stays). */
int vs_detach_disk(struct vs_conn *c, const char *proxy, int key,
		   int ctl_key, int unit);
/* The datastore paths of VM's files (layoutEx.file), malloc'd. */
int vs_vm_files(struct vs_conn *c, const char *vm, char ***files, size_t *n);

/* A VM's disks through vCenter or ESXi, as VDDK's ConnectEx and Open give
 * them to a backup program: the connection (credentials, TLS identity),
 * the VM and its snapshot (snapshot=new made and, at the end, removed),
 * PrepareForAccess and EndAccess, each disk opened through the mode list
 * with its holes from changed block tracking, and VixDiskLib_Cleanup's
 * counterpart (vmdkfs cleanup).  Every setting comes from a struct config
 * (the InitEx keys and vmdkfs's own); nothing here knows of FUSE or
 * nbdkit: fs/vsmount.c and nbdkit/ are its front ends. */
#ifndef VMDKFS_VM_H
#define VMDKFS_VM_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/config.h"
#include "disk.h"

struct vs_conn;
struct vs_vm;
struct vs_disk;
struct vs_snapshot;
struct disk_spec;

/* Connect to CFG's server: a cookie (cookie=, VMDKFS_COOKIE), or user=
 * with PASSWORD (NULL: password_file=, which must not be readable by
 * others, or VMDKFS_PASSWORD).  0 or -errno with a message. */
int vm_connect(const struct config *cfg, const char *password,
	       struct vs_conn **conn);

/* One VM opened for access. */
struct vm_access;

/* Open CFG's vm= for access (ConnectEx): checks what the mount may do
 * (rw only on a powered-off VM's current disks, a running VM only
 * through a snapshot), PrepareForAccess (prepare_access=), and with
 * snapshot=new a temporary snapshot.  0 or -errno with the message.
 * *OUT is set in either case (NULL only on ENOMEM): what was done is
 * undone by vm_close, which the caller calls after sig_cleanup_begin()
 * where signals stop it (a stop signal must not cut the undoing short).
 * CFG must outlive *OUT. */
int vm_open(const struct config *cfg, const char *password,
	    struct vm_access **out);
/* Remove the temporary snapshot (found even if its answer was lost),
 * EndAccess, log out; failures are logged with "run vmdkfs cleanup". */
void vm_close(struct vm_access *a);

struct vs_conn *vm_conn(const struct vm_access *a);
/* The VM's facts (name, moref, power state, snapshots). */
const struct vs_vm *vm_info(const struct vm_access *a);
/* The snapshot CFG's snapshot= names (snapshot=new: the one made), in
 * *OUT; NULL with snapshot= not given (the current disks) or "all".
 * 0 or -errno (no such snapshot, or several of that name). */
int vm_snapshot(const struct vm_access *a, const struct vs_snapshot **out);

/* Open disk VD of VM's snapshot SNAP (morefs; SNAP NULL: the current
 * disks) on CONN through the mode list (transports=, else
 * TRANSPORTS_VSPHERE), READONLY as given; with cbt=on a read-only disk
 * read over the LAN takes its holes from QueryChangedDiskAreas "*"; with
 * WANT_AREAS the disk is an areas disk in any case (transports/areas.h:
 * the changed_since= views share it).  The local descriptor's path in
 * *LOCAL (malloc'd; NULL when the datastore is not mapped by
 * datastore.NAME=).  0 or -errno with a message naming the disk. */
int vm_disk_open(const struct config *cfg, struct vs_conn *conn,
		 const char *vm, const char *snap, const struct vs_disk *vd,
		 bool readonly, bool want_areas, struct disk **out,
		 char **local);

/* The disk_spec of disk VD of VM (snapshot SNAP, NULL: current), every
 * field from CFG; read-only (the caller may change that, and sets path
 * and ds_path). */
void vm_disk_spec(const struct config *cfg, struct disk_spec *spec,
		  struct vs_conn *conn, const char *vm, const char *snap,
		  const struct vs_disk *vd);
/* "[datastore] folder/file.vmdk" as a local path through CFG's
 * datastore.NAME=, or NULL in *OUT when that datastore is not mapped. */
int vm_local_path(const struct config *cfg, const char *ds_path, char **out);
/* Who is accessing, for PrepareForAccess: identity=, or vmdkfs@HOST pid
 * N; at most 50 characters. */
void vm_identity(const struct config *cfg, char *out, size_t size);
/* The holes of a disk D read over the LAN from "*" (cbt=on, read-only),
 * or an areas disk passing everything through when WANT_AREAS; *D is
 * replaced by the wrapper.  0 (nothing to do, or done) or -errno (then
 * *D is unchanged and still the caller's). */
int vm_cbt_wrap(const struct config *cfg, struct vs_conn *c, const char *vm,
		const char *snap, const struct vs_disk *vd, bool want_areas,
		struct disk **d);

/* vmdkfs cleanup: disks a killed hotadd mount left on the proxy VM,
 * then every vmdkfs-* snapshot and RelocateVM_Task disabled by vmdkfs,
 * of CFG's vm= or of every VM; a line on stdout for each.  0 when
 * nothing remains, else 1. */
int vm_cleanup(const struct config *cfg, const char *password);

#endif

/* Changed Block Tracking (vsphere/cbt.c): QueryChangedDiskAreas, asked in
 * windows from offset 0 until the disk is covered, and the checks that make
 * its faults say what is wrong.  Functions return 0 or -errno, the message
 * in vmdkfs_errmsg().
 */
#ifndef VMDKFS_VSPHERE_CBT_H
#define VMDKFS_VSPHERE_CBT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vs_conn;

/* A changed (or, for "*", in-use) area of a disk, in bytes. */
struct vs_area {
	uint64_t off, len;
};

/* Can disk KEY of VM (in snapshot SNAP's config, or the VM's current one
 * when SNAP is NULL) be tracked?  -EOPNOTSUPP with a message when the VM
 * has config.changeTrackingEnabled false, or the disk is independent or a
 * raw device mapping; -ENOENT when there is no disk KEY. */
int vs_cbt_check(struct vs_conn *c, const char *vm, const char *snap, int key);

/* The areas of disk KEY (CAPACITY bytes) of VM at snapshot SNAP (NULL: the
 * VM's current disks, for a powered-off VM) changed since CHANGE_ID ("*":
 * the areas in use).  Calls QueryChangedDiskAreas from offset 0, advancing
 * by each answer's length; the areas come back sorted and merged, each
 * checked to lie inside the disk (an answer outside it is an error).  *OUT
 * malloc'd (NULL when nothing changed).  A refused change id is -ESTALE
 * with a message that says a full backup is needed. */
int vs_changed_areas(struct vs_conn *c, const char *vm, const char *snap,
		     int key, uint64_t capacity, const char *change_id,
		     struct vs_area **out, size_t *n);

/* Sort and merge N areas in place (overlapping or touching ones become
 * one); the new count in *N. */
void vs_areas_merge(struct vs_area *a, size_t *n);

#endif

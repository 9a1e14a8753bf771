/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Find the cgroup2 folders where the mesh programs of one bpffs dir are attached (no agent needed). */
#ifndef TD_MESH_SCAN_H
#define TD_MESH_SCAN_H

/*
 * Contract
 *  - Attachments made with bpf_prog_attach() are recorded nowhere but in the cgroups, so the
 *    cgroup2 mount is walked (folders only, at most TD_MESH_SCAN_DEPTH levels below the mount
 *    and TD_MESH_SCAN_MAX_DIRS folders): a folder is reported when a program named td_m_* that
 *    uses the td_m_cnt map pinned under bpffs is attached to it directly (connect4 or sockops
 *    hook). Programs of another bpffs dir (another td instance, a test) are not reported.
 *  - The walk is read-only; td_mesh_detach_everywhere() then calls td_mesh_detach() on each
 *    folder found.
 */
#include <stddef.h>

#define TD_MESH_SCAN_DEPTH    12
#define TD_MESH_SCAN_MAX_DIRS 65536

/* one folder found; called in walk order. Non-zero stops the walk (and is returned). */
typedef int (*td_mesh_scan_fn)(const char *cgroup, void *ctx);

/*
 * Call fn for every cgroup2 folder where td's mesh programs of bpffs are attached.
 * Returns the number of folders found, -ENOENT when no mesh is pinned under bpffs (nothing to
 * look for, not logged), or -errno (logged).
 */
int td_mesh_scan_attached(const char *bpffs, td_mesh_scan_fn fn, void *ctx);

/*
 * Detach td's mesh programs of bpffs from every folder where they are attached. Returns the
 * number of programs detached (0 also when no mesh is pinned) or -errno (logged).
 */
int td_mesh_detach_everywhere(const char *bpffs);

#endif

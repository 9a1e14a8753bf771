/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Find the cgroup2 folders where the mesh programs of one bpffs dir are attached (no agent needed). */
#include "cgprog.h"
#include "mesh.h"
#include "mesh_scan.h"

_Static_assert(TD_MESH_SCAN_DEPTH == TD_CGPROG_SCAN_DEPTH &&
	       TD_MESH_SCAN_MAX_DIRS == TD_CGPROG_SCAN_MAX_DIRS, "mesh_scan.h limits are cgprog's");

/*
 * What the walk needs (the program table stays in mesh.c, td_mesh_detach uses it): ours are
 * td_m_* programs using the td_m_cnt pinned under bpffs.
 */
static const struct td_cgprog_set td_mesh_scan_set = {
	.who = "mesh",
	.what = "mesh datapath",
	.name_prefix = "td_m_",
	.pin_prefix = TD_PIN_PROG_M_PREFIX,
	.cnt_map = TD_MAP_M_CNT,
	.log_detached = true,
};

int td_mesh_scan_attached(const char *bpffs, td_mesh_scan_fn fn, void *ctx)
{
	return td_cgprog_scan(&td_mesh_scan_set, bpffs, fn, ctx);
}

int td_mesh_detach_everywhere(const char *bpffs)
{
	return td_cgprog_detach_everywhere(&td_mesh_scan_set, bpffs, td_mesh_detach);
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Attach/detach a set of pinned cgroup programs and find the folders where they are attached. */
#ifndef TD_CGPROG_H
#define TD_CGPROG_H

/*
 * Contract (shared by the mesh and the transparent forward proxy)
 *  - A set is a table of programs pinned under one bpffs dir: entry {hook, type} is the program
 *    named <name_prefix><hook> in the kernel, pinned as bpffs/<pin_prefix><hook>, attached to a
 *    cgroup2 folder at type with BPF_F_ALLOW_MULTI (programs of others there keep running).
 *  - "Ours" (for one hook, or any hook of the set when hook is NULL): set->ours decides when
 *    given; otherwise a program is ours when it is named <name_prefix><hook> (any name starting
 *    with <name_prefix> for NULL) and uses the map pinned as bpffs/<cnt_map>, compared by map id,
 *    so the programs of another bpffs dir (another td instance, a test) are never ours.
 *  - Attach, per entry: the pinned program already attached is left alone; else one of ours is
 *    replaced atomically (BPF_F_REPLACE: no moment without a program); else it is added.
 *    Detach removes only ours. Both open bpffs/<cnt_map> first (when cnt_map is set), then the
 *    cgroup folder.
 *  - Scan: read-only walk of the cgroup2 mount (folders only, at most TD_CGPROG_SCAN_DEPTH levels
 *    below it and TD_CGPROG_SCAN_MAX_DIRS folders). A folder is reported when one of ours is
 *    attached to it directly at the connect4 or sockops hook: the two probes every set has
 *    (attach puts connect4 first, so a half-done attach is found too).
 *  - Functions return 0, a count, or -errno after logging one line that starts with set->who.
 */
#include <stdbool.h>
#include <stddef.h>
#include <bpf/bpf.h>

#define TD_CGPROG_SCAN_DEPTH    12
#define TD_CGPROG_SCAN_MAX_DIRS 65536

/* one program of a set */
struct td_cgprog {
	const char *hook;               /* "connect4": BPF name and pin name are prefix + hook */
	enum bpf_attach_type type;
};

/* Is the attached program prog_id ours for hook (NULL: for any hook of the set)? */
typedef bool (*td_cgprog_ours_fn)(__u32 prog_id, const char *hook, void *ctx);

struct td_cgprog_set {
	const char *who;                /* log prefix: "mesh", "fproxy" */
	const char *what;               /* hint "(<what> not loaded)" when a pin is missing */
	const char *name_prefix;        /* BPF program name prefix: "td_m_" */
	const char *pin_prefix;         /* pin name prefix under bpffs: "prog_m_" */
	const char *cnt_map;            /* map pinned under bpffs that ours use; NULL only with ours */
	const struct td_cgprog *progs;
	size_t n_progs;
	td_cgprog_ours_fn ours;         /* NULL: the name + cnt_map rule above */
	void *ours_ctx;
	bool log_detached;              /* td_cgprog_detach_everywhere: one info line per folder */
};

/* Attach every program of s pinned under bpffs to the folder cgroup (idempotent). 0 or -errno. */
int td_cgprog_attach(const struct td_cgprog_set *s, const char *bpffs, const char *cgroup);
/* Detach ours from cgroup. Returns the number detached or -errno. */
int td_cgprog_detach(const struct td_cgprog_set *s, const char *bpffs, const char *cgroup);

/* one folder found, in walk order; non-zero stops the walk and is returned */
typedef int (*td_cgprog_scan_fn)(const char *cgroup, void *ctx);
/*
 * Call fn (may be NULL: count only) for every cgroup2 folder where ours are attached. Returns
 * the number found, -ENOENT (not logged) when bpffs/<cnt_map> is not pinned, or -errno.
 */
int td_cgprog_scan(const struct td_cgprog_set *s, const char *bpffs, td_cgprog_scan_fn fn,
		   void *ctx);
/*
 * detach(bpffs, folder) on every folder td_cgprog_scan finds (detach NULL: td_cgprog_detach
 * with s). Returns the total detach returned, 0 also when bpffs/<cnt_map> is not pinned, or the
 * first -errno (the walk stops there).
 */
int td_cgprog_detach_everywhere(const struct td_cgprog_set *s, const char *bpffs,
				int (*detach)(const char *bpffs, const char *cgroup));

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Mesh lifecycle: load/pin sock_lb, attach it to a cgroup2 folder, apply mesh: config, read denials. */
#ifndef TD_MESH_LIB_H
#define TD_MESH_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include "td/mesh.h"
#include "config.h"

/* File descriptors of every pinned mesh map, -1 when not open. */
struct td_mesh_maps {
	int svc;
	int sel;
	int cg;
	int allow;
	int conf;
	int names;
	int cnt;
	int pair;
	int sk;
	int events;
	int socks;
	int join;
};

void td_mesh_maps_init(struct td_mesh_maps *m);
/* Open every mesh map pinned under bpffs. 0 or -errno (one line logged); nothing open on error. */
int td_mesh_maps_open(const char *bpffs, struct td_mesh_maps *m);
void td_mesh_maps_close(struct td_mesh_maps *m);

/* The cgroup2 mount point from /proc/mounts into buf. 0, -ENOENT (none mounted) or -errno. */
int td_mesh_cgroup2_mount(char *buf, size_t len);
/* root if not empty, else the cgroup2 mount. 0 or -errno (logged). */
int td_mesh_cgroup_root(const char *root, char *buf, size_t len);
/* The cgroup id (what bpf_get_current_cgroup_id() returns) of a cgroup2 folder. 0 or -errno. */
int td_mesh_cgroup_id(const char *path, __u64 *id);

/*
 * Open sock_lb with pin_root_path = bpffs (maps created and pinned by name, or adopted with
 * their entries), load it and pin its programs at bpffs/prog_m_<hook> (atomic replace).
 * *adopted tells whether td_m_svc was pinned before. 0 or -errno (logged).
 */
int td_mesh_load(const char *bpffs, bool *adopted);

/* load-time knobs of the mesh programs */
struct td_mesh_load_opts {
	__u32 redir_budget;   /* bound of semantic 4 in bytes (TD_MESH_REDIR_BUDGET); 0 = none */
};
/*
 * td_mesh_load with knobs (opts NULL: defaults). Loads sock_lb (the 8 cgroup socket-address
 * programs), sockops (SOCKHASH membership, pair bytes/RTT) and sk_msg (redirect), pins all of
 * them and attaches sk_msg to the pinned td_m_socks. Adopting pinned maps keeps every live
 * SOCKHASH entry (and so every redirected connection): a reload never removes one.
 */
int td_mesh_load_opts(const char *bpffs, const struct td_mesh_load_opts *opts, bool *adopted);

/*
 * Attach the 9 pinned mesh cgroup programs (8 socket-address hooks and sockops) to the
 * cgroup2 folder cgroup (BPF_F_ALLOW_MULTI: other
 * programs there keep running). A td mesh program of the same pinned maps already attached
 * there is replaced atomically (BPF_F_REPLACE); the same program is left alone.
 * 0 or -errno (logged).
 */
int td_mesh_attach(const char *bpffs, const char *cgroup);
/*
 * Detach from cgroup every td mesh program that uses the maps pinned under bpffs (also ones
 * left by an earlier agent). Returns the number detached or -errno (logged).
 */
int td_mesh_detach(const char *bpffs, const char *cgroup);
/*
 * Remove every mesh pin (maps and programs) under bpffs; the L4 pins stay. 0 or -errno.
 * Teardown only: once nothing else holds td_m_socks, the kernel empties it and unread
 * redirected data of live members is dropped (semantic 5). Never call it on restart/reload.
 */
int td_mesh_unpin(const char *bpffs);

/*
 * Fill a TD_MESH_SLOTS selection table from backends: every backend with weight > 0 gets one
 * slot, the remaining slots are shared in proportion to weight (largest remainder, ties to
 * the earlier backend), in config order (the datapath draws a slot at random). Returns the number of backends placed (0: nothing chosen, table all empty).
 */
size_t td_mesh_sel_fill(const struct td_backend_cfg *be, size_t n, struct td_mesh_be *slots);

/*
 * Swap in a new selection table for service id built from be[0..n) (the agent passes only the
 * healthy ones; weight 0 counts as absent). No backend: the table is removed and connect()
 * to the service fails with ECONNREFUSED. Existing connections are never touched.
 */
int td_mesh_set_backends(const struct td_mesh_maps *m, __u32 id, const struct td_backend_cfg *be,
			 size_t n);

/* service id of name from td_m_names: 0 and *id, or -ENOENT */
int td_mesh_id_by_name(const struct td_mesh_maps *m, const char *name, __u32 *id);
/* name of an identity ("unknown" for 0, "#N" when the id is free) */
const char *td_mesh_id_name(const struct td_mesh_maps *m, __u32 id, char *buf, size_t len);

/*
 * Write cfg into the maps: ids stay those of the same names (new names get the lowest free
 * id), each service's cgroup (cgroup_root + "/" + cgroup) must exist, or nothing is written
 * and -ENOENT is returned after logging "mesh: service 'X': cgroup PATH does not exist".
 * Order: names, selection tables, cgroups, allow rules, policy, VIPs; then what the config no
 * longer has is removed. gen is recorded in td_m_conf. 0 or -errno (logged).
 */
int td_mesh_apply(const struct td_mesh_maps *m, const struct td_mesh_cfg *cfg,
		  const char *cgroup_root, __u32 gen);

/* counter names for enum td_mesh_counter ("connect", "deny_policy", ...) */
const char *td_mesh_counter_name(unsigned int idx);
/* sum over CPUs of every counter into out[TD_M_CNT_MAX]. 0 or -errno */
int td_mesh_counters(const struct td_mesh_maps *m, __u64 *out);
/* sum over CPUs of the pair (src, dst); -ENOENT when never seen */
int td_mesh_pair_read(const struct td_mesh_maps *m, __u32 src, __u32 dst,
		      struct td_mesh_pair_stats *out);

/* callback of td_mesh_pairs_foreach: one (src, dst) pair, summed over CPUs */
typedef void (*td_mesh_pair_fn)(__u32 src, __u32 dst, const struct td_mesh_pair_stats *s,
				void *ctx);
/*
 * Call fn for every pair in td_m_pair (at most 256 per call): connections, datagrams,
 * denials, no_backend, bytes each way (TCP + redirected) and the last smoothed RTT.
 * 0 or -errno.
 */
int td_mesh_pairs_foreach(const struct td_mesh_maps *m, td_mesh_pair_fn fn, void *ctx);
/* number of sockets in the redirect SOCKHASH (live redirect members) */
int td_mesh_socks_count(const struct td_mesh_maps *m);

/* ---- denial events ------------------------------------------------------------------------- */
struct td_mesh_events;
typedef void (*td_mesh_event_fn)(const struct td_mesh_event *e, void *ctx);

/* A reader of td_m_events calling fn for each record. NULL + errno on error. */
struct td_mesh_events *td_mesh_events_new(const struct td_mesh_maps *m, td_mesh_event_fn fn,
					  void *ctx);
/* an fd for the agent's loop: readable when records wait */
int td_mesh_events_fd(const struct td_mesh_events *ev);
/* call fn for every waiting record; returns how many, or -errno */
int td_mesh_events_consume(struct td_mesh_events *ev);
void td_mesh_events_free(struct td_mesh_events *ev);

/*
 * One log line for an event: "mesh: denied frontend -> orders 10.96.0.10:80/tcp (connect) pid 42
 * comm curl cgroup 1234" (names from td_m_names). Returns buf.
 */
const char *td_mesh_event_format(const struct td_mesh_maps *m, const struct td_mesh_event *e,
				 char *buf, size_t len);

#endif

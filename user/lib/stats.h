/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Datapath statistics: read the service, backend and counter maps into one plain, CPU-summed snapshot. */
#ifndef TD_STATS_H
#define TD_STATS_H

/*
 * Contract
 *  - td_stats_read() reads td_svc_info, td_backends, td_svc_stats, td_be_stats and td_counters
 *    from the fds in struct td_maps (only those five are used; the rest may be -1), so it works
 *    on the pinned maps as well as on maps a test created with bpf_map_create().
 *  - Per-CPU values are summed over libbpf_num_possible_cpus().
 *  - Each map's type, key size and value size are checked first (-EINVAL, logged, on a
 *    mismatch: an agent built against another ABI must not report garbage). The number of
 *    entries comes from the map itself, capped at TD_MAX_SERVICES / TD_MAX_BACKENDS.
 *  - services: every td_svc_info slot with in_use, sorted by id.
 *    backends: every td_backends slot ever written (family != 0), sorted by id; removed
 *    backends keep their slot without TD_BE_F_ACTIVE and are reported with active = false.
 *    counters: every enum td_counter the map holds, in enum order, named by td_counter_name().
 *  - The snapshot is not atomic across maps (nothing in BPF is): each value is read once.
 *  - Everything in the snapshot is host byte order and owned by it; td_stats_free() releases it.
 */
#include <stdbool.h>
#include <stddef.h>
#include "td/abi.h"
#include "td/mesh.h"
#include "dp.h"

struct td_mesh_maps;

/* One service (a td_svc_info slot in use) with its traffic summed over CPUs. */
struct td_stats_service {
	__u32 id;                     /* service id (index of td_svc_info, td_svc_stats)       */
	char name[TD_NAME_LEN + 1];   /* NUL-terminated                                         */
	union td_addr vip;            /* be, as in the map                                      */
	__u8 family;                  /* enum td_family                                         */
	__u8 proto;                   /* enum td_proto                                          */
	__u8 mode;                    /* enum td_mode                                           */
	__u16 port;                   /* host order                                             */
	__u32 generation;             /* config generation that last wrote the service          */
	__u64 packets;
	__u64 bytes;                  /* L3 bytes as counted by the datapath                    */
	__u64 new_flows;
};

/* One backend slot (family != 0) with its traffic summed over CPUs. */
struct td_stats_backend {
	__u32 id;                     /* backend id (index of td_backends, td_be_stats)         */
	__u32 svc_id;                 /* owning service                                         */
	union td_addr addr;           /* be, as in the map                                      */
	__u8 family;                  /* enum td_family                                         */
	bool active;                  /* TD_BE_F_ACTIVE                                         */
	bool nexthop;                 /* TD_BE_F_NEXTHOP                                        */
	__u16 port;                   /* host order                                             */
	__u16 weight;
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
};

/* One td_counters entry summed over CPUs. */
struct td_stats_counter {
	__u32 id;                     /* enum td_counter                                        */
	const char *name;             /* td_counter_name(id): static storage                    */
	bool is_drop;                 /* td_counter_is_drop(id)                                 */
	__u64 value;
};

/* One (source service, destination service) pair of the mesh, summed over CPUs. */
struct td_stats_mesh_pair {
	__u32 src;                    /* identity (0 = unknown)                                 */
	__u32 dst;                    /* service id                                             */
	char src_name[TD_NAME_LEN + 8];   /* "unknown", the service name, or "#N" (id now free) */
	char dst_name[TD_NAME_LEN + 8];
	struct td_mesh_pair_stats s;  /* srtt_us: the last smoothed RTT seen (0 = none)         */
};

/* The mesh part of a snapshot (td_stats_mesh_read). */
struct td_stats_mesh {
	struct td_stats_mesh_pair *pairs;    /* n_pairs, sorted by (src name, dst name)         */
	size_t n_pairs;
	__u64 counters[TD_M_CNT_MAX];        /* enum td_mesh_counter, summed over CPUs           */
	size_t n_services;                   /* td_m_names entries in use                        */
};

/* Everything td_stats_read() found. */
struct td_stats_snapshot {
	struct td_stats_service *services;   /* n_services, sorted by id                       */
	size_t n_services;
	struct td_stats_backend *backends;   /* n_backends, sorted by id                       */
	size_t n_backends;
	struct td_stats_counter counters[TD_CNT_MAX];
	size_t n_counters;
	/* not filled by td_stats_read(): the caller points it at a td_stats_mesh_read() result
	 * (NULL: no mesh, its metric families have no samples) */
	const struct td_stats_mesh *mesh;
};

/*
 * Fill snap (overwritten, no need to initialise) from m->svc_info, m->backends, m->svc_stats,
 * m->be_stats and m->counters. Returns 0 or -errno (logged once); on failure snap is empty and
 * td_stats_free() is still safe.
 */
int td_stats_read(const struct td_maps *m, struct td_stats_snapshot *snap);
/* Release what td_stats_read() allocated and empty snap; safe on an empty or zeroed snapshot. */
void td_stats_free(struct td_stats_snapshot *snap);
/* The service with this id, or NULL (binary search: services are sorted by id). */
const struct td_stats_service *td_stats_service_find(const struct td_stats_snapshot *snap,
						     __u32 id);

/*
 * Read the mesh pair counters (td_m_pair, at most TD_MESH_MAX_PAIRS), the mesh counters
 * (td_m_cnt) and names (td_m_names) from the pinned mesh maps. 0 or -errno (logged); on
 * failure out is empty and td_stats_mesh_free() is still safe.
 */
int td_stats_mesh_read(const struct td_mesh_maps *m, struct td_stats_mesh *out);
void td_stats_mesh_free(struct td_stats_mesh *s);

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* State apply: make the pinned maps equal to a validated td_config as a diff, keeping ids stable. */
#ifndef TD_STATE_H
#define TD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include "td/abi.h"
#include "config.h"
#include "dp.h"

/* Result of the last apply: what the agent reports and refreshes next hops for. */
struct td_state {
	__u32 generation;      /* generation written into td_svc_info */
	size_t n_services;
	size_t n_backends;
	__u32 *be_ids;         /* n_backends backend ids, config order (service by service) */
	__u32 *svc_ids;        /* n_services service ids, config order */
	/* what the last apply changed */
	size_t svc_same;       /* services whose Maglev ring was left alone */
	size_t svc_changed;    /* services whose ring was rebuilt and swapped */
	size_t svc_added;      /* services new to the maps */
	size_t svc_removed;    /* services no longer configured (slots and conntrack cleared) */
	long ct_flushed;       /* td_ct + td_rnat entries deleted with removed services */
};

/*
 * Make the maps equal to cfg, as a diff (td_state_plan) of what is pinned now. Service ids are
 * kept when name, vip, port, proto and family are unchanged; backend ids when the service id
 * and address:port are unchanged (read back from td_svc_info/td_backends, so a restarted agent
 * adopts them). Only services whose ring inputs changed get a new Maglev ring, built off to the
 * side and swapped into td_maglev in one update; removed services lose their td_svc key first,
 * then their slots and conntrack entries; removed backends lose TD_BE_F_ACTIVE. td_backends.weight
 * is the weight the ring was built with. Returns 0 or -errno (logged); st is replaced only on
 * success.
 */
int td_state_apply(const struct td_maps *m, const struct td_config *cfg, struct td_state *st);
/*
 * The informational td_backends flags (abi.h): the ring already reflects them, the datapath
 * never reads them; they let tdctl say why a backend has weight 0 with the agent down.
 */
#define TD_STATE_BE_INFO_FLAGS (TD_BE_F_DRAINED | TD_BE_F_DOWN | TD_BE_F_OVERRIDE)
/*
 * td_state_apply, and each backend also gets be_flags[k] & TD_STATE_BE_INFO_FLAGS (one entry
 * per backend of cfg, flattened in config order, as td_state_runtime_flags() returns them;
 * NULL = none set). A change of these flags alone rewrites the td_backends entry, never a ring.
 */
int td_state_apply_flags(const struct td_maps *m, const struct td_config *cfg,
			 const __u8 *be_flags, struct td_state *st);
void td_state_free(struct td_state *st);

/* ---- pure parts, testable without a kernel ------------------------------------------------ */

/*
 * td_state_assign_ids: given the current td_svc_info (n_info slots) and td_backends (n_be
 * slots), pick an id for each configured service (svc_ids[cfg->n_services]) and backend
 * (be_ids[total backends], flattened in config order). -ENOSPC when ids run out.
 */
int td_state_assign_ids(const struct td_svc_info *info, size_t n_info,
			const struct td_backend *bes, size_t n_be, const struct td_config *cfg,
			__u32 *svc_ids, __u32 *be_ids);
/* td_ports content for cfg: ports[65536] of TD_PORT_F_* */
void td_state_ports(const struct td_config *cfg, __u8 *ports);
/* td_svc key of a configured service */
void td_state_vip_key(const struct td_service_cfg *s, struct td_vip_key *key);
/* total backends of cfg */
size_t td_state_n_backends(const struct td_config *cfg);

/* What is pinned now: the inputs of a diff, indexed by service id / backend id. */
struct td_state_view {
	const struct td_svc_info *info;   /* n_info td_svc_info slots                          */
	size_t n_info;
	const struct td_backend *bes;     /* n_be td_backends slots                             */
	size_t n_be;
	const struct td_svc *svc;         /* n_info: td_svc value under info[id].vip            */
	const bool *has_svc;              /* n_info: that td_svc key exists                      */
	const bool *has_ring;             /* n_info: td_maglev[id] holds a ring                  */
};

enum td_svc_change {
	TD_SVC_SAME = 0,      /* ring inputs identical: ring, td_svc and stats left alone        */
	TD_SVC_CHANGED,       /* same id, other backends/weights/mode/ring size: new ring swapped  */
	TD_SVC_NEW,           /* id not in use before                                            */
};

/* The diff of a config against a view. */
struct td_state_plan {
	__u32 generation;     /* highest generation in the view + 1                             */
	__u32 *svc_ids;       /* per configured service                                          */
	__u32 *be_ids;        /* per configured backend (flattened)                              */
	__u8 *change;         /* per configured service: enum td_svc_change                      */
	__u32 *gone;          /* ids of services in use that are no longer configured            */
	size_t n_gone, n_same, n_changed, n_new;
};

/*
 * The diff: ids (td_state_assign_ids) and, per service, whether its ring must be rebuilt. A
 * ring is kept only when the service keeps its id, td_svc has the same mode and ring size
 * (cfg->maglev_size), the ring exists, and the active backends of the id are exactly the
 * configured ones with the same weights (a Maglev ring depends on nothing else). 0 or -errno.
 */
int td_state_plan(const struct td_state_view *v, const struct td_config *cfg,
		  struct td_state_plan *p);
void td_state_plan_free(struct td_state_plan *p);

/* ---- runtime view: the file's config plus admin overrides and health ---------------------- */

/* td_override.op */
enum td_ovr_op { TD_OVR_DRAIN = 1, TD_OVR_ADD, TD_OVR_REMOVE };

/* One runtime change of a backend, made through the admin API (not in the file). */
struct td_override {
	__u8 op;                     /* enum td_ovr_op                                        */
	__u8 family;
	__u16 port;                  /* host order                                            */
	__u16 weight;                /* TD_OVR_ADD only                                       */
	union td_addr addr;          /* be                                                    */
	char service[TD_NAME_LEN];
};

/* A set of overrides: at most one per (service, backend). */
struct td_overrides {
	struct td_override *v;
	size_t n;
};

/*
 * Change ovr for the admin command op (TD_OVR_DRAIN / TD_OVR_ADD / TD_OVR_REMOVE, or 0 for
 * undrain) on backend addr:port of service, checked against file + ovr (the runtime view).
 * Returns 0 when the view changed, -EALREADY when it already was so (drain of a drained
 * backend, undrain of one that is not), -ENOENT (unknown service or backend), -EEXIST (add of a
 * backend the service has), -EINVAL (family differs from the VIP; dsr with another port; add of
 * more than TD_MAX_BACKENDS), -ENOMEM; every error writes one sentence into msg. On error ovr
 * is unchanged.
 */
int td_overrides_change(struct td_overrides *ovr, const struct td_config *file, int op,
			const char *service, const union td_addr *addr, __u8 family, __u16 port,
			__u16 weight, char *msg, size_t msglen);
/* the override of a backend, or NULL */
const struct td_override *td_overrides_find(const struct td_overrides *ovr, const char *service,
					    const union td_addr *addr, __u8 family, __u16 port);
void td_overrides_free(struct td_overrides *ovr);

/* Health of one backend for td_state_runtime: true when the backend is down. */
typedef bool (*td_be_down_fn)(void *arg, const struct td_service_cfg *s,
			      const struct td_backend_cfg *b);

/*
 * out := a deep copy of file's node and l4 parts with ovr applied (removed backends dropped,
 * added ones appended, drained ones at weight 0) and, when down is given, backends that are
 * down at weight 0 — except when that would leave a service with weight in the file's view and
 * none at all in the runtime view because of health alone: then health is ignored for that
 * service (fail open, docs/operations.md). *n_failopen (may be NULL) counts such services. Free out with
 * td_config_free. 0 or -ENOMEM.
 */
int td_state_runtime(const struct td_config *file, const struct td_overrides *ovr,
		     td_be_down_fn down, void *arg, struct td_config *out, size_t *n_failopen);
/*
 * td_state_runtime, and when be_flags is not NULL *be_flags receives a malloc'd array (free())
 * with one entry per backend of out, flattened in config order: TD_BE_F_DRAINED (drained by
 * the admin API), TD_BE_F_OVERRIDE (added or re-weighted by the admin API), TD_BE_F_DOWN (at
 * weight 0 because its health check fails; never set in a service that fails open). Only the
 * scalar node/l4 settings, interfaces and services are copied into out.
 */
int td_state_runtime_flags(const struct td_config *file, const struct td_overrides *ovr,
			   td_be_down_fn down, void *arg, struct td_config *out, __u8 **be_flags,
			   size_t *n_failopen);

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* State apply: make the pinned maps equal to a validated td_config, keeping ids stable. */
#ifndef TD_STATE_H
#define TD_STATE_H

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
};

/*
 * Make the maps equal to cfg. Service ids are kept when name, vip, port, proto and family are
 * unchanged; backend ids when the service id and address:port are unchanged (read back from
 * td_svc_info/td_backends, so a restarted agent adopts them). New Maglev rings are built off
 * to the side and swapped in; removed services lose their td_svc key first, then their slots
 * and conntrack entries; removed backends lose TD_BE_F_ACTIVE. Returns 0 or -errno (logged);
 * st is replaced only on success.
 */
int td_state_apply(const struct td_maps *m, const struct td_config *cfg, struct td_state *st);
void td_state_free(struct td_state *st);

/*
 * Pure parts, testable without a kernel.
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

#endif

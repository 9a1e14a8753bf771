/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Balancing decisions: VIP lookup, conntrack, Maglev backend choice, reverse-NAT entries. */
#ifndef TD_BPF_LB_H
#define TD_BPF_LB_H

#include "lib/common.h"
#include "lib/hash.h"
#include "lib/parse.h"

TD_INLINE __u8 td_port_flags(__u16 port_be)
{
	__u32 idx = bpf_ntohs(port_be);
	__u8 *f = bpf_map_lookup_elem(&td_ports, &idx);

	return f ? *f : 0;
}

/* Is addr (of family) the address of some VIP, whatever the port? */
TD_INLINE int td_is_vip_addr(const union td_addr *addr, __u8 family)
{
	struct td_vip_addr k = { .family = family };

	td_copy_addr(&k.addr, addr);
	return bpf_map_lookup_elem(&td_vips, &k) != NULL;
}

TD_INLINE struct td_svc *td_svc_lookup(const union td_addr *addr, __u16 port, __u8 proto,
				       __u8 family)
{
	struct td_vip_key k = { .port = port, .proto = proto, .family = family };

	td_copy_addr(&k.addr, addr);
	return bpf_map_lookup_elem(&td_svc, &k);
}

/* The backend a conntrack entry points to, if it is still valid for svc. */
TD_INLINE struct td_backend *td_ct_backend(const struct td_ct *ct, __u32 svc_id)
{
	__u32 id = ct->backend_id;
	struct td_backend *be = bpf_map_lookup_elem(&td_backends, &id);

	if (!be || !(be->flags & TD_BE_F_ACTIVE) || be->svc_id != svc_id)
		return NULL;
	return be;
}

/* Maglev: ring slot of this flow's hash. NULL when the service has no usable backend. */
TD_INLINE struct td_backend *td_maglev_pick(const struct td_svc *svc,
					    const struct td_flow_key *k, __u32 *be_id)
{
	__u32 svc_id = svc->id, slot, *id;
	struct td_backend *be;
	void *ring;

	if (!svc->ring_size)
		return NULL;
	ring = bpf_map_lookup_elem(&td_maglev, &svc_id);
	if (!ring)
		return NULL;
	slot = td_flow_hash(k) % svc->ring_size;
	id = bpf_map_lookup_elem(ring, &slot);
	if (!id || *id == TD_BACKEND_NONE)
		return NULL;
	*be_id = *id;
	be = bpf_map_lookup_elem(&td_backends, be_id);
	if (!be || !(be->flags & TD_BE_F_ACTIVE))
		return NULL;
	return be;
}

/* Client-side next hop of a new NAT flow, captured from its first frame. */
struct td_l2 {
	__u8 client_mac[6];   /* source MAC of the frame */
	__u8 our_mac[6];      /* destination MAC of the frame */
	__u32 ifindex;        /* ingress interface */
};

/*
 * Backend for a VIP packet: the conntrack entry's when it is still valid, else a Maglev
 * choice recorded in td_ct (and td_rnat for NAT). *new_flow is set when an entry was made.
 */
TD_INLINE struct td_backend *td_lb_select(const struct td_svc *svc, const struct td_flow_key *k,
					  const struct td_l2 *l2, __u32 *be_id, __u32 *new_flow)
{
	struct td_ct *ct = bpf_map_lookup_elem(&td_ct, k);
	struct td_backend *be;
	struct td_ct nct = {};

	if (ct) {
		be = td_ct_backend(ct, svc->id);
		if (be) {
			*be_id = ct->backend_id;
			return be;
		}
		td_count(TD_CNT_REHASH);
	}
	be = td_maglev_pick(svc, k, be_id);
	if (!be)
		return NULL;
	nct.backend_id = *be_id;
	nct.svc_id = svc->id;
	nct.last_seen_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&td_ct, k, &nct, BPF_ANY))
		td_count(TD_DROP_MAP);
	if (svc->mode == TD_MODE_NAT) {
		struct td_flow_key rk = {
			.sport = be->port,
			.dport = k->sport,
			.proto = k->proto,
			.family = k->family,
		};
		struct td_rnat rn = {
			.vport = k->dport,
			.ifindex = l2->ifindex,
			.svc_id = svc->id,
			.backend_id = *be_id,
		};

		td_copy_addr(&rk.src, &be->addr);
		td_copy_addr(&rk.dst, &k->src);
		td_copy_addr(&rn.vip, &k->dst);
		td_copy_mac(rn.dmac, l2->client_mac);
		td_copy_mac(rn.smac, l2->our_mac);
		if (bpf_map_update_elem(&td_rnat, &rk, &rn, BPF_ANY))
			td_count(TD_DROP_MAP);
	}
	td_count(TD_CNT_NEW_FLOW);
	*new_flow = 1;
	return be;
}

#endif

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

/*
 * A closed flow's entry is stale once its grace has passed, or at once for a new SYN (the
 * client reuses the port for a new connection). Only called when closed_ns is set.
 */
TD_INLINE int td_entry_stale(__u64 closed_ns, __u8 tcp_flags)
{
	if ((tcp_flags & (TD_TCP_SYN | TD_TCP_ACK)) == TD_TCP_SYN ||
	    bpf_ktime_get_ns() - closed_ns > td_close_grace_ns) {
		td_count(TD_CNT_STALE);
		return 1;
	}
	return 0;
}

TD_INLINE void td_mark_closed(__u64 *closed_ns)
{
	if (!*closed_ns) {
		*closed_ns = bpf_ktime_get_ns();
		td_count(TD_CNT_CLOSED);
	}
}

/* The td_rnat key of a NAT flow: backend -> client. */
TD_INLINE void td_rnat_key(struct td_flow_key *rk, const struct td_flow_key *k,
			   const struct td_backend *be)
{
	td_copy_addr(&rk->src, &be->addr);
	td_copy_addr(&rk->dst, &k->src);
	rk->sport = be->port;
	rk->dport = k->sport;
	rk->proto = k->proto;
	rk->family = k->family;
	rk->pad = 0;
}

/* A FIN or RST from the client: mark both entries of the flow closed. */
TD_INLINE void td_close_fwd(__u8 mode, const struct td_pkt *p, const struct td_backend *be)
{
	struct td_flow_key rk;
	struct td_rnat *rn;
	struct td_ct *ct;

	ct = bpf_map_lookup_elem(&td_ct, &p->k);
	if (ct)
		td_mark_closed(&ct->closed_ns);
	if (mode != TD_MODE_NAT)
		return;
	td_rnat_key(&rk, &p->k, be);
	rn = bpf_map_lookup_elem(&td_rnat, &rk);
	if (rn)
		td_mark_closed(&rn->closed_ns);
}

/*
 * A backend reply matched rn: 0 when the entry is stale (it is deleted and the packet is not
 * ours), 1 when it is to be translated. A FIN or RST marks both entries closed.
 */
TD_INLINE int td_rnat_check(struct td_rnat *rn, const struct td_pkt *p)
{
	struct td_flow_key ck;
	struct td_ct *ct;

	if (rn->closed_ns && td_entry_stale(rn->closed_ns, 0)) {
		bpf_map_delete_elem(&td_rnat, &p->k);
		return 0;
	}
	if (!(p->tcp_flags & (TD_TCP_FIN | TD_TCP_RST)))
		return 1;
	td_mark_closed(&rn->closed_ns);
	td_copy_addr(&ck.src, &p->k.dst);
	td_copy_addr(&ck.dst, &rn->vip);
	ck.sport = p->k.dport;
	ck.dport = rn->vport;
	ck.proto = p->k.proto;
	ck.family = p->k.family;
	ck.pad = 0;
	ct = bpf_map_lookup_elem(&td_ct, &ck);
	if (ct)
		td_mark_closed(&ct->closed_ns);
	return 1;
}

/* Client-side next hop of a new NAT flow, captured from its first frame. */
struct td_l2 {
	__u8 client_mac[6];   /* source MAC of the frame */
	__u8 our_mac[6];      /* destination MAC of the frame */
	__u32 ifindex;        /* ingress interface */
};

/* td_ct entry of this packet's flow, unless it is a stale (closed) one. */
TD_INLINE struct td_ct *td_ct_live(const struct td_pkt *p)
{
	struct td_ct *ct = bpf_map_lookup_elem(&td_ct, &p->k);

	if (ct && ct->closed_ns && td_entry_stale(ct->closed_ns, p->tcp_flags))
		return NULL;
	return ct;
}

/*
 * A new flow (or one whose backend went away): Maglev choice, recorded in td_ct (and td_rnat
 * for NAT). NULL when the service has no usable backend.
 */
TD_INLINE struct td_backend *td_lb_new_flow(const struct td_svc *svc, const struct td_pkt *p,
					    const struct td_l2 *l2, __u32 *be_id)
{
	const struct td_flow_key *k = &p->k;
	struct td_backend *be;
	struct td_ct nct = {};

	be = td_maglev_pick(svc, k, be_id);
	if (!be)
		return NULL;
	nct.backend_id = *be_id;
	nct.svc_id = svc->id;
	nct.mode = svc->mode;
	nct.created_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&td_ct, k, &nct, BPF_ANY))
		td_count(TD_DROP_MAP);
	if (svc->mode == TD_MODE_NAT) {
		struct td_flow_key rk;
		struct td_rnat rn = {
			.vport = k->dport,
			.ifindex = l2->ifindex,
			.svc_id = svc->id,
			.backend_id = *be_id,
		};

		td_rnat_key(&rk, k, be);
		td_copy_addr(&rn.vip, &k->dst);
		td_copy_mac(rn.dmac, l2->client_mac);
		td_copy_mac(rn.smac, l2->our_mac);
		if (bpf_map_update_elem(&td_rnat, &rk, &rn, BPF_ANY))
			td_count(TD_DROP_MAP);
	}
	td_count(TD_CNT_NEW_FLOW);
	return be;
}

#endif

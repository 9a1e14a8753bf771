// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP entry of the L4 load balancer: VIP lookup, backend choice, NAT/DSR rewrite, reverse NAT. */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/lb.h"
#include "lib/nat.h"
#include "lib/icmp.h"

/* Verdict for a packet we do not touch, with its reason counted. */
TD_INLINE int td_verdict(__u32 reason)
{
	td_count(reason);
	return reason >= TD_DROP_MALFORMED ? XDP_DROP : XDP_PASS;
}

/* Rewrite the Ethernet addresses and send out of ifindex (XDP_TX when it is where we came in). */
TD_INLINE int td_xmit(struct xdp_md *ctx, const __u8 *dmac, const __u8 *smac, __u32 ifindex)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return td_verdict(TD_DROP_MALFORMED);
	td_copy_mac(eth->h_dest, dmac);
	td_copy_mac(eth->h_source, smac);
	if (ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	if (bpf_redirect(ifindex, 0) != XDP_REDIRECT)
		return td_verdict(TD_DROP_REDIRECT);
	return XDP_REDIRECT;
}

/*
 * Send a packet to its backend: the agent's cached next hop, else the kernel FIB.
 * Without a next hop NAT hands the (rewritten) packet to the stack, DSR must drop it.
 */
TD_INLINE int td_to_backend(struct xdp_md *ctx, const struct td_backend *be, __u8 mode,
			    __u16 l3_len)
{
	struct bpf_fib_lookup fib = {};
	int rc;

	if (be->flags & TD_BE_F_NEXTHOP)
		return td_xmit(ctx, be->dmac, be->smac, be->ifindex);

	td_count(TD_CNT_FIB_LOOKUP);
	fib.ifindex = ctx->ingress_ifindex;
	fib.tot_len = l3_len;
	if (be->family == TD_AF_INET) {
		fib.family = AF_INET;
		fib.ipv4_dst = be->addr.v4;
	} else {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_dst, &be->addr, 16);
	}
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return td_xmit(ctx, fib.dmac, fib.smac, fib.ifindex);
	if (mode == TD_MODE_NAT)
		return td_verdict(TD_PASS_NO_NEIGH);
	return td_verdict(TD_DROP_NO_NEIGH);
}

/* Forward a VIP packet of service svc_id to backend be (NAT rewrite or DSR) and count it. */
TD_INLINE int td_forward(struct xdp_md *ctx, struct td_pkt *p, __u32 svc_id, __u8 mode,
			 const struct td_backend *be, __u32 be_id, __u32 new_flow)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	int rc;

	td_traffic(&td_svc_stats, svc_id, data_end - data, new_flow);
	td_traffic(&td_be_stats, be_id, data_end - data, new_flow);
	if (p->tcp_flags & (TD_TCP_FIN | TD_TCP_RST))
		td_close_fwd(mode, p, be);
	if (mode == TD_MODE_NAT) {
		rc = td_nat_rewrite(data, data_end, p, TD_NAT_DST, &be->addr, be->port);
		if (rc)
			return td_verdict(rc);
	}
	td_count(TD_CNT_FWD);
	return td_to_backend(ctx, be, mode, p->l3_len);
}

/*
 * A packet to a VIP port: an established flow goes by its conntrack entry alone; otherwise the
 * service decides (Maglev). Returns -1 when the packet is not for a VIP endpoint.
 */
TD_INLINE int td_vip(struct xdp_md *ctx, struct td_pkt *p)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct td_backend *be;
	struct td_svc *svc;
	struct td_ct *ct;
	struct td_l2 l2;
	__u32 be_id = 0;

	ct = td_ct_live(p);
	if (ct) {
		be = td_ct_backend(ct, ct->svc_id);
		if (be)
			return td_forward(ctx, p, ct->svc_id, ct->mode, be, ct->backend_id, 0);
	}
	svc = td_svc_lookup(&p->k.dst, p->k.dport, p->k.proto, p->k.family);
	if (!svc)
		return -1;
	if (ct)
		td_count(TD_CNT_REHASH);
	if ((void *)(eth + 1) > data_end)
		return td_verdict(TD_DROP_MALFORMED);
	td_copy_mac(l2.client_mac, eth->h_source);
	td_copy_mac(l2.our_mac, eth->h_dest);
	l2.ifindex = ctx->ingress_ifindex;
	be = td_lb_new_flow(svc, p, &l2, &be_id);
	if (!be)
		return td_verdict(TD_DROP_NO_BACKEND);
	return td_forward(ctx, p, svc->id, svc->mode, be, be_id, 1);
}

/* A backend's reply in a NAT flow: back to the client from the VIP. */
TD_INLINE int td_reverse(struct xdp_md *ctx, struct td_pkt *p, const struct td_rnat *rn)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	int rc;

	rc = td_nat_rewrite(data, data_end, p, TD_NAT_SRC, &rn->vip, rn->vport);
	if (rc)
		return td_verdict(rc);
	td_count(TD_CNT_RNAT);
	return td_xmit(ctx, rn->dmac, rn->smac, rn->ifindex);
}

/* ICMP/ICMPv6 to a VIP address. */
TD_INLINE int td_icmp(struct xdp_md *ctx, struct td_pkt *p)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	__u8 *type = data + (p->l4_off & TD_L4_OFF_MAX);
	struct td_quote q = {};
	struct td_flow_key ck = {};
	struct td_backend *be;
	struct td_svc *svc;
	struct td_ct *ct;
	int rc;

	if (!td_is_vip_addr(&p->k.dst, p->k.family))
		return td_verdict(TD_PASS_NOT_VIP);
	if ((void *)(type + 1) > data_end || p->l4_trunc)
		return td_verdict(TD_DROP_MALFORMED);
	if (!td_icmp_is_error(p, *type))
		return td_verdict(TD_PASS_ICMP);
	if (td_icmp_quote(data, data_end, p, &q))
		return td_verdict(TD_DROP_ICMP_NO_FLOW);
	svc = td_svc_lookup(&q.k.src, q.k.sport, q.k.proto, q.k.family);
	if (!svc)
		return td_verdict(TD_DROP_ICMP_NO_FLOW);
	/* the flow as the client sent it */
	td_copy_addr(&ck.src, &q.k.dst);
	td_copy_addr(&ck.dst, &q.k.src);
	ck.sport = q.k.dport;
	ck.dport = q.k.sport;
	ck.proto = q.k.proto;
	ck.family = q.k.family;
	ct = bpf_map_lookup_elem(&td_ct, &ck);
	if (!ct)
		return td_verdict(TD_DROP_ICMP_NO_FLOW);
	be = td_ct_backend(ct, svc->id);
	if (!be)
		return td_verdict(TD_DROP_ICMP_NO_FLOW);
	if (svc->mode == TD_MODE_NAT) {
		rc = td_icmp_nat(data, data_end, p, &q, be);
		if (rc)
			return td_verdict(rc);
	}
	td_count(TD_CNT_ICMP_FWD);
	return td_to_backend(ctx, be, svc->mode, p->l3_len);
}

SEC("xdp")
int td_xdp_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct td_pkt p = {};
	struct td_rnat *rn;
	int rc;

	td_count(TD_CNT_RX);
	rc = td_parse(data, data_end, &p);
	if (rc != TD_PARSE_OK)
		return td_verdict(rc);

	if (p.frag)
		return td_verdict(td_is_vip_addr(&p.k.dst, p.k.family) ? TD_DROP_FRAGMENT
								      : TD_PASS_FRAGMENT);
	if (p.k.proto == IPPROTO_ICMP || p.k.proto == IPPROTO_ICMPV6)
		return td_icmp(ctx, &p);
	if (p.l4_trunc)
		return td_verdict(td_is_vip_addr(&p.k.dst, p.k.family) ? TD_DROP_MALFORMED
								      : TD_PASS_MALFORMED);

	if (td_port_flags(p.k.dport) & TD_PORT_F_VIP) {
		rc = td_vip(ctx, &p);
		if (rc >= 0)
			return rc;
	}
	if (td_port_flags(p.k.sport) & TD_PORT_F_BACKEND) {
		rn = bpf_map_lookup_elem(&td_rnat, &p.k);
		if (rn && td_rnat_check(rn, &p))
			return td_reverse(ctx, &p, rn);
	}
	return td_verdict(TD_PASS_NOT_VIP);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

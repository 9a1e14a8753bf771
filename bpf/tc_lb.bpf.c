// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* TC egress entry of the L4 load balancer: reverse NAT of replies that the local stack emits. */
#include <linux/pkt_cls.h>
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/lb.h"
#include "lib/skb_nat.h"

SEC("tc")
int td_tc_lb(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *data_end = (void *)(long)skb->data_end;
	struct td_pkt p = {};
	struct td_rnat *rn;
	union td_addr vip;
	__u16 vport;

	td_count(TD_CNT_TC_RX);
	if (td_parse(data, data_end, &p) != TD_PARSE_OK || p.frag || p.l4_trunc)
		return TC_ACT_OK;
	if (p.k.proto != IPPROTO_TCP && p.k.proto != IPPROTO_UDP)
		return TC_ACT_OK;
	if (!(td_port_flags(p.k.sport) & TD_PORT_F_BACKEND))
		return TC_ACT_OK;
	rn = bpf_map_lookup_elem(&td_rnat, &p.k);
	if (!rn || !td_rnat_check(rn, &p))
		return TC_ACT_OK;
	td_copy_addr(&vip, &rn->vip);
	vport = rn->vport;
	if (td_skb_snat(skb, &p, &vip, vport)) {
		td_count(TD_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	td_count(TD_CNT_RNAT);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

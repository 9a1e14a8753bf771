/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Source NAT on an skb (TC) with the kernel's checksum helpers, which keep offloads correct. */
#ifndef TD_BPF_SKB_NAT_H
#define TD_BPF_SKB_NAT_H

#include <stddef.h>
#include "lib/parse.h"

/* Rewrite source address and port to addr/port. 0 or -1 (helper failure). */
TD_INLINE int td_skb_snat(struct __sk_buff *skb, const struct td_pkt *p,
			  const union td_addr *addr, __u16 port)
{
	__u32 l4 = p->l4_off & TD_L4_OFF_MAX;
	__u32 csum_off, mangled = 0;
	__u16 old_port = p->k.sport;

	if (p->k.proto == IPPROTO_TCP) {
		csum_off = l4 + offsetof(struct tcphdr, check);
	} else {
		csum_off = l4 + offsetof(struct udphdr, check);
		mangled = BPF_F_MARK_MANGLED_0;
	}

	if (p->k.family == TD_AF_INET) {
		__u32 old = p->k.src.v4, new = addr->v4;
		__u32 ip_off = sizeof(struct ethhdr);

		if (bpf_l4_csum_replace(skb, csum_off, old, new, BPF_F_PSEUDO_HDR | mangled | 4) ||
		    bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check), old, new, 4) ||
		    bpf_skb_store_bytes(skb, ip_off + offsetof(struct iphdr, saddr), &new, 4, 0))
			return -1;
	} else {
		__u32 off = sizeof(struct ethhdr) + offsetof(struct ipv6hdr, saddr);
		union td_addr old = p->k.src, new = *addr;
		__s64 diff = bpf_csum_diff(old.v6, 16, new.v6, 16, 0);

		if (diff < 0 ||
		    bpf_l4_csum_replace(skb, csum_off, 0, diff, BPF_F_PSEUDO_HDR | mangled) ||
		    bpf_skb_store_bytes(skb, off, new.v6, 16, 0))
			return -1;
	}
	if (bpf_l4_csum_replace(skb, csum_off, old_port, port, mangled | 2) ||
	    bpf_skb_store_bytes(skb, l4, &port, 2, 0))
		return -1;
	return 0;
}

#endif

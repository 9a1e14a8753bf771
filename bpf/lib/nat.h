/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* In-place NAT rewrites with direct packet access (XDP): address, port, TTL and checksums. */
#ifndef TD_BPF_NAT_H
#define TD_BPF_NAT_H

#include "lib/csum.h"
#include "lib/parse.h"

enum td_nat_dir { TD_NAT_DST = 0, TD_NAT_SRC = 1 };

/* Load/store a 16-byte address at an arbitrary (2-byte aligned) packet position. */
TD_INLINE void td_load_addr6(union td_addr *dst, const void *src)
{
	__builtin_memcpy(dst, src, 16);
}

/*
 * Rewrite the L4 port and the L4 checksum of a TCP/UDP packet whose address changed from
 * old to new (pseudo-header) and whose port at dir changes to port. Returns 0 or -1.
 */
TD_INLINE int td_nat_l4(void *data, void *data_end, const struct td_pkt *p, __u64 addr_sum,
			enum td_nat_dir dir, __u16 port)
{
	void *l4 = data + (p->l4_off & TD_L4_OFF_MAX);

	if (p->k.proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		__u16 *pp;
		__u64 s;

		if ((void *)(th + 1) > data_end)
			return -1;
		pp = dir == TD_NAT_DST ? &th->dest : &th->source;
		s = td_csum_start(th->check) + addr_sum;
		s = td_csum_add2(s, *pp, port);
		th->check = td_csum_finish(s);
		*pp = port;
		return 0;
	}
	if (p->k.proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		__u16 *pp;
		__u64 s;

		if ((void *)(uh + 1) > data_end)
			return -1;
		pp = dir == TD_NAT_DST ? &uh->dest : &uh->source;
		/* IPv4 UDP without checksum stays without; IPv6 always has one */
		if (uh->check || p->k.family == TD_AF_INET6) {
			s = td_csum_start(uh->check) + addr_sum;
			s = td_csum_add2(s, *pp, port);
			uh->check = td_csum_finish(s);
			if (!uh->check)
				uh->check = 0xffff;
		}
		*pp = port;
		return 0;
	}
	return -1;
}

/*
 * NAT one TCP/UDP packet: the address and port at dir become addr/port, TTL or hop limit
 * drops by one. Returns 0, TD_DROP_TTL, or TD_DROP_MALFORMED (cannot happen after parse).
 */
TD_INLINE int td_nat_rewrite(void *data, void *data_end, const struct td_pkt *p,
			     enum td_nat_dir dir, const union td_addr *addr, __u16 port)
{
	__u64 asum;

	if (p->k.family == TD_AF_INET) {
		struct iphdr *ip = data + sizeof(struct ethhdr);
		__u32 *ap;
		__u16 old_tw;
		__u64 s;

		if ((void *)(ip + 1) > data_end)
			return TD_DROP_MALFORMED;
		if (ip->ttl <= 1)
			return TD_DROP_TTL;
		ap = dir == TD_NAT_DST ? &ip->daddr : &ip->saddr;
		asum = td_csum_add4(0, *ap, addr->v4);
		old_tw = *(__u16 *)&ip->ttl;
		ip->ttl--;
		s = td_csum_start(ip->check) + asum;
		s = td_csum_add2(s, old_tw, *(__u16 *)&ip->ttl);
		ip->check = td_csum_finish(s);
		*ap = addr->v4;
	} else {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
		union td_addr old;
		void *ap;

		if ((void *)(ip6 + 1) > data_end)
			return TD_DROP_MALFORMED;
		if (ip6->hop_limit <= 1)
			return TD_DROP_TTL;
		ap = dir == TD_NAT_DST ? (void *)&ip6->daddr : (void *)&ip6->saddr;
		td_load_addr6(&old, ap);
		asum = td_csum_add16(0, &old, addr);
		ip6->hop_limit--;
		__builtin_memcpy(ap, addr, 16);
	}
	if (td_nat_l4(data, data_end, p, asum, dir, port))
		return TD_DROP_MALFORMED;
	return 0;
}

#endif

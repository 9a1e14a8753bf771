/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ICMP/ICMPv6 errors about balanced flows: find the flow from the quoted packet, steer to its backend. */
#ifndef TD_BPF_ICMP_H
#define TD_BPF_ICMP_H

#include "lib/lb.h"
#include "lib/nat.h"

/* The quoted (inner) packet of an ICMP error: a VIP -> client packet we sent. */
struct td_quote {
	struct td_flow_key k;  /* as quoted: src = VIP, dst = client */
	__u16 ip_off;          /* offset of the quoted IP header */
	__u16 l4_off;          /* offset of the quoted L4 header */
};

TD_INLINE int td_icmp_is_error(const struct td_pkt *p, __u8 type)
{
	if (p->k.family == TD_AF_INET)
		return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED;
	return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
	       type == ICMPV6_TIME_EXCEED;
}

/* Parse the quoted header + 8 bytes. 0 or -1 (unusable quote). */
TD_INLINE int td_icmp_quote(void *data, void *data_end, const struct td_pkt *p,
			    struct td_quote *q)
{
	__u32 off = (p->l4_off & TD_L4_OFF_MAX) + 8;
	__u16 *ports;

	q->k.family = p->k.family;
	if (p->k.family == TD_AF_INET) {
		struct iphdr *in = data + off;
		__u32 hlen;

		if ((void *)(in + 1) > data_end)
			return -1;
		hlen = in->ihl * 4;
		if (in->version != 4 || hlen < sizeof(*in) || hlen > 60)
			return -1;
		q->k.proto = in->protocol;
		q->k.src.v4 = in->saddr;
		q->k.dst.v4 = in->daddr;
		q->ip_off = off;
		q->l4_off = off + hlen;
	} else {
		struct ipv6hdr *in = data + off;

		if ((void *)(in + 1) > data_end)
			return -1;
		q->k.proto = in->nexthdr;
		td_load_addr6(&q->k.src, &in->saddr);
		td_load_addr6(&q->k.dst, &in->daddr);
		q->ip_off = off;
		q->l4_off = off + sizeof(*in);
	}
	if (q->k.proto != IPPROTO_TCP && q->k.proto != IPPROTO_UDP)
		return -1;
	ports = data + (q->l4_off & 0x3ff);
	if ((void *)ports + 8 > data_end)
		return -1;
	q->k.sport = ports[0];
	q->k.dport = ports[1];
	return 0;
}

/*
 * NAT mode: make the error look like it was about the backend's own packet: outer destination,
 * quoted source address and port become the backend's; every checksum follows. 0 or a counter.
 */
TD_INLINE int td_icmp_nat(void *data, void *data_end, const struct td_pkt *p,
			  const struct td_quote *q, const struct td_backend *be)
{
	__u32 icmp_off = p->l4_off & TD_L4_OFF_MAX;
	__u16 *csum = data + icmp_off + 2;
	__u16 *qport = data + (q->l4_off & 0x3ff);
	__u64 s;

	if ((void *)(csum + 1) > data_end || (void *)qport + 8 > data_end)
		return TD_DROP_MALFORMED;
	s = td_csum_start(*csum);
	s = td_csum_add2(s, qport[0], be->port);
	qport[0] = be->port;

	if (p->k.family == TD_AF_INET) {
		struct iphdr *ip = data + sizeof(struct ethhdr);
		struct iphdr *in = data + (q->ip_off & 0x3ff);
		__u16 old_tw, old_check;
		__u64 is;

		if ((void *)(ip + 1) > data_end || (void *)(in + 1) > data_end)
			return TD_DROP_MALFORMED;
		if (ip->ttl <= 1)
			return TD_DROP_TTL;
		/* quoted header: source address and its own checksum */
		old_check = in->check;
		is = td_csum_start(in->check);
		is = td_csum_add4(is, in->saddr, be->addr.v4);
		in->check = td_csum_finish(is);
		s = td_csum_add4(s, in->saddr, be->addr.v4);
		s = td_csum_add2(s, old_check, in->check);
		in->saddr = be->addr.v4;
		/* outer header: destination and TTL */
		old_tw = *(__u16 *)&ip->ttl;
		ip->ttl--;
		is = td_csum_start(ip->check);
		is = td_csum_add4(is, ip->daddr, be->addr.v4);
		is = td_csum_add2(is, old_tw, *(__u16 *)&ip->ttl);
		ip->check = td_csum_finish(is);
		ip->daddr = be->addr.v4;
	} else {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
		struct ipv6hdr *in = data + (q->ip_off & 0x3ff);
		union td_addr old;

		if ((void *)(ip6 + 1) > data_end || (void *)(in + 1) > data_end)
			return TD_DROP_MALFORMED;
		if (ip6->hop_limit <= 1)
			return TD_DROP_TTL;
		td_load_addr6(&old, &in->saddr);
		s = td_csum_add16(s, &old, &be->addr);
		__builtin_memcpy(&in->saddr, &be->addr, 16);
		/* outer destination is in the ICMPv6 pseudo-header */
		td_load_addr6(&old, &ip6->daddr);
		s = td_csum_add16(s, &old, &be->addr);
		__builtin_memcpy(&ip6->daddr, &be->addr, 16);
		ip6->hop_limit--;
	}
	*csum = td_csum_finish(s);
	return 0;
}

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Packet parsing for XDP and TC: Ethernet, IPv4 (with options), IPv6 (with extension headers), L4 ports. */
#ifndef TD_BPF_PARSE_H
#define TD_BPF_PARSE_H

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include "lib/common.h"

/*
 * Contract: td_parse() reads [data, data_end) and fills a td_pkt. It never writes the packet.
 * It returns TD_PARSE_OK, or a counter index (TD_PASS_* / TD_DROP_*) that says why the packet
 * is not for the balancer; the caller turns that into a verdict. Offsets are from data and are
 * bounded (TD_L4_OFF_MAX) so callers can re-derive pointers the verifier accepts.
 */
#define TD_PARSE_OK      (-1)
#define TD_L4_OFF_MAX    0x1ff   /* Ethernet + IPv6 + up to 4 small extension headers */
#define TD_IPV6_EXT_MAX  4
#define TD_TCP_FIN       0x01
#define TD_TCP_SYN       0x02
#define TD_TCP_RST       0x04
#define TD_TCP_ACK       0x10
#ifndef IP_MF
#define IP_MF            0x2000
#define IP_OFFSET        0x1fff
#endif

struct td_pkt {
	struct td_flow_key k;   /* src/dst/ports (be), proto, family; ports 0 when unknown */
	__u16 l4_off;           /* offset of the L4 header from data */
	__u16 l3_len;           /* IPv4 tot_len / IPv6 40 + payload_len */
	__u8  frag;             /* IPv4 MF/offset or IPv6 fragment header */
	__u8  l4_trunc;         /* L4 header shorter than needed */
	__u8  tcp_flags;        /* byte 13 of the TCP header (TD_TCP_*), 0 otherwise */
	__u8  pad;
};

TD_INLINE int td_parse_l4(void *data, void *data_end, struct td_pkt *p)
{
	void *l4 = data + (p->l4_off & TD_L4_OFF_MAX);

	switch (p->k.proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end) {
			p->l4_trunc = 1;
			return TD_PARSE_OK;
		}
		p->k.sport = th->source;
		p->k.dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		return TD_PARSE_OK;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end) {
			p->l4_trunc = 1;
			return TD_PARSE_OK;
		}
		p->k.sport = uh->source;
		p->k.dport = uh->dest;
		return TD_PARSE_OK;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (l4 + 8 > data_end)
			p->l4_trunc = 1;
		return TD_PARSE_OK;
	}
	return TD_PASS_NOT_VIP;
}

TD_INLINE int td_parse_v4(void *data, void *data_end, struct td_pkt *p)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u32 hlen, tot;

	if ((void *)(ip + 1) > data_end)
		return TD_PASS_MALFORMED;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (ip->version != 4 || hlen < sizeof(*ip) || tot < hlen ||
	    data + sizeof(struct ethhdr) + tot > data_end)
		return TD_PASS_MALFORMED;
	p->k.family = TD_AF_INET;
	p->k.proto = ip->protocol;
	p->k.src.v4 = ip->saddr;
	p->k.dst.v4 = ip->daddr;
	p->l3_len = tot;
	p->l4_off = sizeof(struct ethhdr) + hlen;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		p->frag = 1;
		return TD_PARSE_OK;
	}
	return td_parse_l4(data, data_end, p);
}

struct td_ipv6_opt {
	__u8 nexthdr;
	__u8 hdrlen;
};

TD_INLINE int td_parse_v6(void *data, void *data_end, struct td_pkt *p)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	__u32 off = sizeof(struct ethhdr) + sizeof(*ip6);
	__u8 nh;
	int i;

	if ((void *)(ip6 + 1) > data_end)
		return TD_PASS_MALFORMED;
	if (ip6->version != 6 ||
	    data + off + bpf_ntohs(ip6->payload_len) > data_end)
		return TD_PASS_MALFORMED;
	p->k.family = TD_AF_INET6;
	__builtin_memcpy(&p->k.src, &ip6->saddr, 16);
	__builtin_memcpy(&p->k.dst, &ip6->daddr, 16);
	p->l3_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	nh = ip6->nexthdr;

#pragma unroll
	for (i = 0; i < TD_IPV6_EXT_MAX; i++) {
		struct td_ipv6_opt *o;

		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS &&
		    nh != IPPROTO_FRAGMENT)
			break;
		o = data + (off & TD_L4_OFF_MAX);
		if ((void *)(o + 1) > data_end)
			return TD_PASS_MALFORMED;
		if (nh == IPPROTO_FRAGMENT) {
			p->frag = 1;
			p->k.proto = IPPROTO_FRAGMENT;
			p->l4_off = off;
			return TD_PARSE_OK;
		}
		nh = o->nexthdr;
		off += (o->hdrlen + 1) * 8;
		if (off > TD_L4_OFF_MAX)
			return TD_PASS_NOT_VIP;
	}
	p->k.proto = nh;
	p->l4_off = off;
	return td_parse_l4(data, data_end, p);
}

/* Returns TD_PARSE_OK or the counter saying why not; the Ethernet header is checked here. */
TD_INLINE int td_parse(void *data, void *data_end, struct td_pkt *p)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return TD_PASS_MALFORMED;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return td_parse_v4(data, data_end, p);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return td_parse_v6(data, data_end, p);
	return TD_PASS_NOT_IP;
}

#endif

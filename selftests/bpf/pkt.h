/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Test packet builder: Ethernet/IPv4/IPv6/TCP/UDP/ICMP frames with checksums from scratch, and a verifier. */
#ifndef TD_PKT_H
#define TD_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "td/abi.h"

#define TD_PKT_MAX      2048

#define TD_PKT_IP_DF    0x4000   /* IPv4 frag_off flags, host order */
#define TD_PKT_IP_MF    0x2000

#define TD_PKT_TH_FIN   0x01
#define TD_PKT_TH_SYN   0x02
#define TD_PKT_TH_RST   0x04
#define TD_PKT_TH_PSH   0x08
#define TD_PKT_TH_ACK   0x10

#define TD_PKT_MAX_EXT  4

/*
 * Description of one frame. Zero means "default" for every field except the addresses.
 * Lengths, checksums and the IPv6 next-header chain are always computed by the builder; the
 * malformation knobs at the end break exactly one thing on purpose.
 */
struct td_pkt_spec {
	const __u8 *dmac;          /* 6 bytes; NULL = 00:00:00:00:00:00 */
	const __u8 *smac;
	__u16 eth_type;            /* host order; 0 = from family (0x0800 / 0x86dd) */
	__u8  family;              /* TD_AF_INET / TD_AF_INET6; 0 = no IP: payload follows Ethernet */
	const union td_addr *src;  /* be; NULL = all zero */
	const union td_addr *dst;
	__u8  ttl;                 /* TTL / hop limit; 0 = 64 */
	__u8  tos;
	__u16 ip_id;               /* IPv4 id; IPv6 fragment id */
	__u16 frag_off;            /* IPv4: TD_PKT_IP_* flags | offset in 8-byte units */
	const __u8 *ip_opts;       /* IPv4 options, ip_opts_len a multiple of 4 (<= 40) */
	__u8  ip_opts_len;
	__u8  v6_ext[TD_PKT_MAX_EXT]; /* IPv6 extension headers in order: 0 hop-by-hop, 43 routing, 60 dst opts */
	__u8  n_v6_ext;
	bool  v6_frag;             /* add an IPv6 fragment header after v6_ext */
	__u16 v6_frag_off;         /* fragment offset in 8-byte units */
	bool  v6_frag_more;        /* M flag */
	__u8  proto;               /* IPPROTO_TCP/UDP/ICMP/ICMPV6 or anything else */
	bool  raw_l4;              /* no L4 header: payload follows the IP headers (later fragments) */
	__u16 sport, dport;        /* host order */
	__u32 seq, ack;
	__u8  tcp_flags;
	__u16 tcp_win;             /* 0 = 65535 */
	__u8  icmp_type, icmp_code;
	__u32 icmp_rest;           /* host order: id << 16 | seq, or the MTU of frag-needed / packet-too-big */
	const __u8 *payload;
	size_t payload_len;
	const struct td_pkt_spec *quote; /* ICMP error: built (without Ethernet) and appended as payload */
	size_t quote_len;          /* bytes of the quoted packet kept; 0 = all */
	const struct td_pkt_spec *l4_csum_of; /* take the L4 checksum from this spec instead of ours */
	bool  udp_csum_zero;       /* IPv4 UDP without checksum */
	bool  no_eth;              /* start at the IP header (quoted packets) */
	/* malformations */
	__u8  ihl;                 /* IPv4 IHL override (0 = computed) */
	int   ip_len;              /* IPv4 tot_len / IPv6 payload_len override (0 = computed) */
	int   l4_cut;              /* >0: keep only this many L4 bytes; IP lengths/checksum follow */
	int   cut;                 /* >0: keep only this many bytes of the frame; lengths unchanged */
};

/* Build s into buf. Returns the frame length or -errno (-ENOSPC, -EINVAL). */
int td_pkt_build(const struct td_pkt_spec *s, __u8 *buf, size_t cap);

/* One's complement sum of len bytes added to sum (not folded). */
__u32 td_csum_add(__u32 sum, const void *data, size_t len);
/* Fold a 32-bit sum and complement it: the checksum field value. */
__u16 td_csum_fold(__u32 sum);

/*
 * Parse a frame the way a receiver would and recompute every checksum from scratch: IPv4
 * header, TCP/UDP/ICMP/ICMPv6 (pseudo-header included), and the IPv4 header quoted by an ICMP
 * error. Fragments skip the L4 check. Returns 0, or -EBADMSG with a reason in err.
 */
int td_pkt_verify(const __u8 *frame, size_t len, char *err, size_t errlen);

/* "0000: xx xx ..." hex dump of a frame, 16 bytes a line, each line prefixed with prefix. */
void td_pkt_dump(const char *prefix, const __u8 *frame, size_t len);

#endif

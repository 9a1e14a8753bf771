/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Test packet builder and verifier: every length and checksum is computed from scratch here. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>

#include "pkt.h"

#define TD_ETH_HLEN   14
#define TD_IP4_HLEN   20
#define TD_IP6_HLEN   40

static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(__u8 *p, __u32 v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

static __u16 get16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

__u32 td_csum_add(__u32 sum, const void *data, size_t len)
{
	const __u8 *p = data;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (__u32)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (__u32)(p[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

__u16 td_csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* pseudo-header sum: v4 {src, dst, 0, proto, len}; v6 {src, dst, len32, 0, nh} */
static __u32 td_pseudo_sum(__u8 family, const __u8 *src, const __u8 *dst, __u8 proto, __u32 len)
{
	__u8 tail[8] = { 0 };
	__u32 sum = 0;
	int alen = family == TD_AF_INET ? 4 : 16;

	sum = td_csum_add(sum, src, alen);
	sum = td_csum_add(sum, dst, alen);
	if (family == TD_AF_INET) {
		tail[1] = proto;
		put16(tail + 2, (__u16)len);
		return td_csum_add(sum, tail, 4);
	}
	put32(tail, len);
	tail[7] = proto;
	return td_csum_add(sum, tail, 8);
}

static int td_l4_csum_off(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP: return 16;
	case IPPROTO_UDP: return 6;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: return 2;
	default: return -1;
	}
}

static int td_pkt_build_csum(const struct td_pkt_spec *s, __u8 *buf, size_t cap, __u16 *l4_csum)
{
	size_t off = 0, l3, l4, end, ext_len = 0, hlen;
	__u8 ihl = 5 + s->ip_opts_len / 4;
	__u8 nh;
	int csum_off, i;

	static const union td_addr zero;
	const union td_addr *src = s->src ? s->src : &zero, *dst = s->dst ? s->dst : &zero;

	if (s->ip_opts_len % 4 || s->ip_opts_len > 40 || s->n_v6_ext > TD_PKT_MAX_EXT)
		return -EINVAL;
	if (cap < TD_ETH_HLEN + 128)
		return -ENOSPC;
	memset(buf, 0, cap);

	if (!s->no_eth) {
		__u16 type = s->eth_type;

		if (!type)
			type = s->family == TD_AF_INET6 ? 0x86dd : 0x0800;
		if (s->dmac)
			memcpy(buf, s->dmac, 6);
		if (s->smac)
			memcpy(buf + 6, s->smac, 6);
		put16(buf + 12, type);
		off = TD_ETH_HLEN;
	}
	if (!s->family) {
		if (off + s->payload_len > cap)
			return -ENOSPC;
		memcpy(buf + off, s->payload, s->payload_len);
		end = off + s->payload_len;
		goto cut;
	}

	l3 = off;
	if (s->family == TD_AF_INET) {
		hlen = ihl * 4u;
		buf[l3] = 0x40 | (s->ihl ? s->ihl : ihl);
		buf[l3 + 1] = s->tos;
		put16(buf + l3 + 4, s->ip_id);
		put16(buf + l3 + 6, s->frag_off);
		buf[l3 + 8] = s->ttl ? s->ttl : 64;
		buf[l3 + 9] = s->proto;
		memcpy(buf + l3 + 12, src->bytes, 4);
		memcpy(buf + l3 + 16, dst->bytes, 4);
		if (s->ip_opts_len)
			memcpy(buf + l3 + 20, s->ip_opts, s->ip_opts_len);
		l4 = l3 + hlen;
	} else if (s->family == TD_AF_INET6) {
		__u8 *nhp;

		buf[l3] = 0x60 | (s->tos >> 4);
		buf[l3 + 1] = (__u8)(s->tos << 4);
		nhp = buf + l3 + 6;
		buf[l3 + 7] = s->ttl ? s->ttl : 64;
		memcpy(buf + l3 + 8, src->bytes, 16);
		memcpy(buf + l3 + 24, dst->bytes, 16);
		l4 = l3 + TD_IP6_HLEN;
		for (i = 0; i < s->n_v6_ext; i++) {
			__u8 *e = buf + l4;

			*nhp = s->v6_ext[i];
			nhp = e;
			e[1] = 0;               /* 8 bytes */
			if (s->v6_ext[i] == 43) {
				e[2] = 253;     /* experimental routing type, segments left 0 */
				e[3] = 0;
			} else {
				e[2] = 1;       /* PadN, 4 bytes of padding */
				e[3] = 4;
			}
			l4 += 8;
			ext_len += 8;
		}
		if (s->v6_frag) {
			__u8 *e = buf + l4;

			*nhp = 44;
			nhp = e;
			put16(e + 2, (__u16)(s->v6_frag_off << 3 | (s->v6_frag_more ? 1 : 0)));
			put32(e + 4, s->ip_id);
			l4 += 8;
			ext_len += 8;
		}
		*nhp = s->proto;
	} else {
		return -EINVAL;
	}

	/* L4 header and data */
	end = l4;
	nh = s->proto;
	if (!s->raw_l4 && nh == IPPROTO_TCP) {
		put16(buf + l4, s->sport);
		put16(buf + l4 + 2, s->dport);
		put32(buf + l4 + 4, s->seq);
		put32(buf + l4 + 8, s->ack);
		buf[l4 + 12] = 5 << 4;
		buf[l4 + 13] = s->tcp_flags;
		put16(buf + l4 + 14, s->tcp_win ? s->tcp_win : 65535);
		end += 20;
	} else if (!s->raw_l4 && nh == IPPROTO_UDP) {
		put16(buf + l4, s->sport);
		put16(buf + l4 + 2, s->dport);
		end += 8;
	} else if (!s->raw_l4 && (nh == IPPROTO_ICMP || nh == IPPROTO_ICMPV6)) {
		buf[l4] = s->icmp_type;
		buf[l4 + 1] = s->icmp_code;
		put32(buf + l4 + 4, s->icmp_rest);
		end += 8;
		if (s->quote) {
			__u8 q[TD_PKT_MAX];
			int qlen = td_pkt_build_csum(s->quote, q, sizeof(q), NULL);

			if (qlen < 0)
				return qlen;
			if (s->quote_len && s->quote_len < (size_t)qlen)
				qlen = (int)s->quote_len;
			if (end + qlen > cap)
				return -ENOSPC;
			memcpy(buf + end, q, qlen);
			end += qlen;
		}
	}
	if (end + s->payload_len > cap)
		return -ENOSPC;
	if (s->payload_len)
		memcpy(buf + end, s->payload, s->payload_len);
	end += s->payload_len;

	if (s->udp_csum_zero && nh != IPPROTO_UDP)
		return -EINVAL;
	if (!s->raw_l4 && nh == IPPROTO_UDP)
		put16(buf + l4 + 4, (__u16)(end - l4));

	/* L4 checksum over the whole L4 segment (before any cut) */
	csum_off = s->raw_l4 ? -1 : td_l4_csum_off(nh);
	if (csum_off >= 0) {
		__u32 sum = 0;
		__u16 c;

		if (nh != IPPROTO_ICMP)
			sum = td_pseudo_sum(s->family, src->bytes, dst->bytes, nh,
					    (__u32)(end - l4));
		sum = td_csum_add(sum, buf + l4, end - l4);
		c = td_csum_fold(sum);
		if (nh == IPPROTO_UDP && c == 0)
			c = 0xffff;
		if (s->udp_csum_zero)
			c = 0;
		if (s->l4_csum_of) {
			__u8 tmp[TD_PKT_MAX];
			int r = td_pkt_build_csum(s->l4_csum_of, tmp, sizeof(tmp), &c);

			if (r < 0)
				return r;
		}
		put16(buf + l4 + csum_off, c);
		if (l4_csum)
			*l4_csum = c;
	}

	if (s->l4_cut > 0 && l4 + (size_t)s->l4_cut < end)
		end = l4 + s->l4_cut;

	/* IP lengths and header checksum */
	if (s->family == TD_AF_INET) {
		size_t ck_len = (s->ihl ? s->ihl : ihl) * 4u;

		put16(buf + l3 + 2, s->ip_len ? (__u16)s->ip_len : (__u16)(end - l3));
		if (ck_len < TD_IP4_HLEN)
			ck_len = TD_IP4_HLEN;
		put16(buf + l3 + 10, 0);
		put16(buf + l3 + 10, td_csum_fold(td_csum_add(0, buf + l3, ck_len)));
	} else {
		put16(buf + l3 + 4, s->ip_len ? (__u16)s->ip_len : (__u16)(end - l3 - TD_IP6_HLEN));
		(void)ext_len;
	}

cut:
	if (s->cut > 0 && (size_t)s->cut < end)
		end = s->cut;
	return (int)end;
}

int td_pkt_build(const struct td_pkt_spec *s, __u8 *buf, size_t cap)
{
	return td_pkt_build_csum(s, buf, cap, NULL);
}

#define TD_BAD(...) do { snprintf(err, errlen, __VA_ARGS__); return -EBADMSG; } while (0)

static int td_verify_l4(__u8 family, const __u8 *src, const __u8 *dst, __u8 proto,
			const __u8 *l4, size_t l4_len, char *err, size_t errlen)
{
	__u32 sum = 0;
	__u16 got;

	switch (proto) {
	case IPPROTO_TCP:
		if (l4_len < 20)
			TD_BAD("TCP header truncated (%zu bytes)", l4_len);
		break;
	case IPPROTO_UDP:
		if (l4_len < 8)
			TD_BAD("UDP header truncated (%zu bytes)", l4_len);
		if (get16(l4 + 4) != l4_len)
			TD_BAD("UDP length %u != %zu", get16(l4 + 4), l4_len);
		if (get16(l4 + 6) == 0) {
			if (family == TD_AF_INET)
				return 0;
			TD_BAD("IPv6 UDP checksum 0");
		}
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (l4_len < 8)
			TD_BAD("ICMP header truncated (%zu bytes)", l4_len);
		break;
	default:
		return 0;
	}
	if (proto != IPPROTO_ICMP)
		sum = td_pseudo_sum(family, src, dst, proto, (__u32)l4_len);
	sum = td_csum_add(sum, l4, l4_len);
	got = get16(l4 + td_l4_csum_off(proto));
	if (td_csum_fold(sum) != 0)
		TD_BAD("%s checksum 0x%04x is wrong (sum folds to 0x%04x, not 0)",
		       proto == IPPROTO_TCP ? "TCP" : proto == IPPROTO_UDP ? "UDP" :
		       proto == IPPROTO_ICMP ? "ICMP" : "ICMPv6", got, td_csum_fold(sum));
	if (proto == IPPROTO_ICMP && (l4[0] == 3 || l4[0] == 11) && l4_len >= 8 + TD_IP4_HLEN) {
		const __u8 *q = l4 + 8;
		size_t qhl = (q[0] & 0xf) * 4u;

		if ((q[0] >> 4) != 4 || qhl < TD_IP4_HLEN || 8 + qhl > l4_len)
			TD_BAD("ICMP error quotes no valid IPv4 header");
		if (td_csum_fold(td_csum_add(0, q, qhl)) != 0)
			TD_BAD("quoted IPv4 header checksum 0x%04x is wrong", get16(q + 10));
	}
	return 0;
}

int td_pkt_verify(const __u8 *frame, size_t len, char *err, size_t errlen)
{
	const __u8 *ip;
	size_t iplen;
	__u16 type;

	if (len < TD_ETH_HLEN)
		TD_BAD("frame shorter than Ethernet (%zu)", len);
	type = get16(frame + 12);
	ip = frame + TD_ETH_HLEN;
	iplen = len - TD_ETH_HLEN;
	if (type == 0x0800) {
		size_t hl, tot;
		__u16 frag;

		if (iplen < TD_IP4_HLEN)
			TD_BAD("IPv4 header truncated");
		hl = (ip[0] & 0xf) * 4u;
		tot = get16(ip + 2);
		if ((ip[0] >> 4) != 4 || hl < TD_IP4_HLEN || hl > iplen)
			TD_BAD("bad IPv4 version/IHL 0x%02x", ip[0]);
		if (tot < hl || tot > iplen)
			TD_BAD("IPv4 tot_len %zu outside [%zu, %zu]", tot, hl, iplen);
		if (td_csum_fold(td_csum_add(0, ip, hl)) != 0)
			TD_BAD("IPv4 header checksum 0x%04x is wrong", get16(ip + 10));
		frag = get16(ip + 6);
		if (frag & 0x3fff)
			return 0;
		return td_verify_l4(TD_AF_INET, ip + 12, ip + 16, ip[9], ip + hl, tot - hl,
				    err, errlen);
	}
	if (type == 0x86dd) {
		size_t off = TD_IP6_HLEN, plen;
		__u8 nh;
		int i;

		if (iplen < TD_IP6_HLEN)
			TD_BAD("IPv6 header truncated");
		if ((ip[0] >> 4) != 6)
			TD_BAD("bad IPv6 version");
		plen = get16(ip + 4);
		if (TD_IP6_HLEN + plen > iplen)
			TD_BAD("IPv6 payload_len %zu past the frame", plen);
		nh = ip[6];
		for (i = 0; i < 8 && (nh == 0 || nh == 43 || nh == 60 || nh == 44); i++) {
			if (nh == 44)
				return 0;
			if (off + 8 > TD_IP6_HLEN + plen)
				TD_BAD("IPv6 extension header truncated");
			nh = ip[off];
			off += (ip[off + 1] + 1) * 8u;
		}
		if (off > TD_IP6_HLEN + plen)
			TD_BAD("IPv6 extension headers past payload");
		return td_verify_l4(TD_AF_INET6, ip + 8, ip + 24, nh, ip + off,
				    TD_IP6_HLEN + plen - off, err, errlen);
	}
	return 0;
}

void td_pkt_dump(const char *prefix, const __u8 *frame, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (i % 16 == 0)
			printf("%s%04zx:", prefix, i);
		printf(" %02x", frame[i]);
		if (i % 16 == 15 || i + 1 == len)
			printf("\n");
	}
}

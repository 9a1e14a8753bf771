/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* xdp_lb fixture table: one entry per docs/datapath.md rule, expected frames built independently. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>

#include "fixtures.h"

const __u8 td_fx_payload[16] = "td-fixture-data!";

#define A4(a, b, c, d)   { .bytes = { a, b, c, d } }
#define A6(g1, g2, last) { .bytes = { (g1) >> 8, (g1) & 0xff, (g2) >> 8, (g2) & 0xff, \
				      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last } }
const union td_addr td_fx_client4 = A4(10, 0, 0, 1), td_fx_client4b = A4(10, 0, 0, 2),
	td_fx_vip4n = A4(10, 100, 0, 1), td_fx_vip4d = A4(10, 100, 0, 2),
	td_fx_other4 = A4(10, 200, 0, 1), td_fx_router4 = A4(10, 9, 9, 9),
	td_fx_be4a = A4(10, 1, 0, 11), td_fx_be4b = A4(10, 1, 0, 12),
	td_fx_be4da = A4(10, 1, 0, 21), td_fx_be4db = A4(10, 1, 0, 22),
	td_fx_client6 = A6(0xfd00, 0, 1), td_fx_client6b = A6(0xfd00, 0, 2),
	td_fx_vip6n = A6(0xfd00, 0x100, 1), td_fx_vip6d = A6(0xfd00, 0x100, 2),
	td_fx_other6 = A6(0xfd00, 0x200, 1), td_fx_router6 = A6(0xfd00, 0x9, 0x09),
	td_fx_be6a = A6(0xfd00, 0x1, 0x11), td_fx_be6b = A6(0xfd00, 0x1, 0x12),
	td_fx_be6da = A6(0xfd00, 0x1, 0x21), td_fx_be6db = A6(0xfd00, 0x1, 0x22);
const __u8 td_fx_mac_client[6] = { 0x02, 0, 0, 0, 0, 0xc1 },
	td_fx_mac_lb[6] = { 0x02, 0, 0, 0, 0, 0x1b },
	td_fx_mac_lb_be[6] = { 0x02, 0, 0, 0, 0x1b, 0xbe },
	td_fx_mac_be_a[6] = { 0x02, 0, 0, 0, 0xbe, 0x0a },
	td_fx_mac_be_b[6] = { 0x02, 0, 0, 0, 0xbe, 0x0b },
	td_fx_mac_router[6] = { 0x02, 0, 0, 0, 0, 0x99 };

/* ---- standard services and backends --------------------------------------------------- */

static const struct td_fx_svc td_std_svc[SVC_STD_N] = {
	[SVC_N4T] = { SVC_N4T, V4, VIP4N, TCP_PORT, TCP, TD_MODE_NAT, RING_SIZE, BE_A(SVC_N4T) },
	[SVC_N4U] = { SVC_N4U, V4, VIP4N, UDP_PORT, UDP, TD_MODE_NAT, RING_SIZE, BE_A(SVC_N4U) },
	[SVC_N6T] = { SVC_N6T, V6, VIP6N, TCP_PORT, TCP, TD_MODE_NAT, RING_SIZE, BE_A(SVC_N6T) },
	[SVC_N6U] = { SVC_N6U, V6, VIP6N, UDP_PORT, UDP, TD_MODE_NAT, RING_SIZE, BE_A(SVC_N6U) },
	[SVC_D4T] = { SVC_D4T, V4, VIP4D, TCP_PORT, TCP, TD_MODE_DSR, RING_SIZE, BE_A(SVC_D4T) },
	[SVC_D4U] = { SVC_D4U, V4, VIP4D, UDP_PORT, UDP, TD_MODE_DSR, RING_SIZE, BE_A(SVC_D4U) },
	[SVC_D6T] = { SVC_D6T, V6, VIP6D, TCP_PORT, TCP, TD_MODE_DSR, RING_SIZE, BE_A(SVC_D6T) },
	[SVC_D6U] = { SVC_D6U, V6, VIP6D, UDP_PORT, UDP, TD_MODE_DSR, RING_SIZE, BE_A(SVC_D6U) },
};

#define BEF (TD_BE_F_ACTIVE | TD_BE_F_NEXTHOP)
#define BE(svc, fam, addr, port, mac, nat) \
	{ 0, svc, fam, addr, port, BEF, mac, MAC_LB_BE, 0, nat }

static const struct td_fx_backend td_std_be[SVC_STD_N][2] = {
	[SVC_N4T] = { BE(SVC_N4T, V4, BE4A, BE_TCP, MAC_BE_A, true),
		      BE(SVC_N4T, V4, BE4B, BE_TCP, MAC_BE_B, true) },
	[SVC_N4U] = { BE(SVC_N4U, V4, BE4A, BE_UDP, MAC_BE_A, true),
		      BE(SVC_N4U, V4, BE4B, BE_UDP, MAC_BE_B, true) },
	[SVC_N6T] = { BE(SVC_N6T, V6, BE6A, BE_TCP, MAC_BE_A, true),
		      BE(SVC_N6T, V6, BE6B, BE_TCP, MAC_BE_B, true) },
	[SVC_N6U] = { BE(SVC_N6U, V6, BE6A, BE_UDP, MAC_BE_A, true),
		      BE(SVC_N6U, V6, BE6B, BE_UDP, MAC_BE_B, true) },
	[SVC_D4T] = { BE(SVC_D4T, V4, BE4DA, TCP_PORT, MAC_BE_A, false),
		      BE(SVC_D4T, V4, BE4DB, TCP_PORT, MAC_BE_B, false) },
	[SVC_D4U] = { BE(SVC_D4U, V4, BE4DA, UDP_PORT, MAC_BE_A, false),
		      BE(SVC_D4U, V4, BE4DB, UDP_PORT, MAC_BE_B, false) },
	[SVC_D6T] = { BE(SVC_D6T, V6, BE6DA, TCP_PORT, MAC_BE_A, false),
		      BE(SVC_D6T, V6, BE6DB, TCP_PORT, MAC_BE_B, false) },
	[SVC_D6U] = { BE(SVC_D6U, V6, BE6DA, UDP_PORT, MAC_BE_A, false),
		      BE(SVC_D6U, V6, BE6DB, UDP_PORT, MAC_BE_B, false) },
};

/* All eight services, each ring full of its backend A; backends B exist (active) but get no slot. */
int td_fx_std_setup(struct td_env *env)
{
	int i, j, err;

	for (i = 0; i < SVC_STD_N; i++) {
		for (j = 0; j < 2; j++) {
			struct td_fx_backend b = td_std_be[i][j];

			b.id = j ? BE_B(i) : BE_A(i);
			err = td_env_add_backend(env, &b);
			if (err)
				return err;
		}
		err = td_env_add_svc(env, &td_std_svc[i]);
		if (err)
			return err;
	}
	return 0;
}

/* ---- pre hooks --------------------------------------------------------------------------- */

static int pre_ring_n4t_b(struct td_env *env)
{
	return td_env_set_ring(env, SVC_N4T, RING_SIZE, BE_B(SVC_N4T));
}

static int pre_ring_n4t_none(struct td_env *env)
{
	return td_env_set_ring(env, SVC_N4T, RING_SIZE, TD_BACKEND_NONE);
}

static int pre_ring_n6u_none(struct td_env *env)
{
	return td_env_set_ring(env, SVC_N6U, RING_SIZE, TD_BACKEND_NONE);
}

static int pre_n4t_a_inactive(struct td_env *env)
{
	return td_env_set_backend_flags(env, BE_A(SVC_N4T), TD_BE_F_NEXTHOP);
}

static int pre_n4t_a_redir(struct td_env *env)
{
	return td_env_set_backend_ifindex(env, BE_A(SVC_N4T), env->ifindex_redir);
}

/* a td_rnat entry of the n4t flow that was closed long ago (closed_ns = 1: far past the grace) */
static int pre_rnat_n4t_closed_long_ago(struct td_env *env)
{
	struct td_flow_key k = { 0 };
	struct td_rnat v = { 0 };

	k.src = *BE4A;
	k.dst = *CLIENT4;
	k.sport = htons(BE_TCP);
	k.dport = htons(CPORT);
	k.proto = IPPROTO_TCP;
	k.family = TD_AF_INET;
	v.vip = *VIP4N;
	v.vport = htons(TCP_PORT);
	memcpy(v.dmac, MAC_CLIENT, 6);
	memcpy(v.smac, MAC_LB, 6);
	v.ifindex = env->ifindex_lo;
	v.svc_id = SVC_N4T;
	v.backend_id = BE_A(SVC_N4T);
	v.closed_ns = 1;
	return td_env_add_rnat(env, &k, &v);
}

/* ---- post checks ------------------------------------------------------------------------- */

static void fx_key(struct td_flow_key *k, __u8 fam, union td_addr src, union td_addr dst,
		   __u16 sport, __u16 dport, __u8 proto)
{
	memset(k, 0, sizeof(*k));
	k->src = src;
	k->dst = dst;
	k->sport = htons(sport);
	k->dport = htons(dport);
	k->proto = proto;
	k->family = fam;
}

static int fx_expect_ct(struct td_env *env, const struct td_flow_key *k, __u32 be, __u32 svc,
			char *err, size_t errlen)
{
	struct td_ct ct;

	if (td_env_lookup_ct(env, k, &ct)) {
		snprintf(err, errlen, "no td_ct entry for the client flow");
		return -1;
	}
	if (ct.backend_id != be || ct.svc_id != svc) {
		snprintf(err, errlen, "td_ct entry {backend %u, svc %u}, expected {%u, %u}",
			 ct.backend_id, ct.svc_id, be, svc);
		return -1;
	}
	return 0;
}

/* rnat entry {backend -> client} must hold the VIP and the client side of the first frame */
static int fx_expect_rnat(struct td_env *env, const struct td_flow_key *k, union td_addr vip,
			  __u16 vport, __u32 svc, __u32 be, char *err, size_t errlen)
{
	struct td_rnat rn;

	if (bpf_map_lookup_elem(env->fd_rnat, k, &rn)) {
		snprintf(err, errlen, "no td_rnat entry for the backend->client direction");
		return -1;
	}
	if (memcmp(&rn.vip, &vip, sizeof(vip)) || rn.vport != htons(vport) ||
	    memcmp(rn.dmac, MAC_CLIENT, 6) || memcmp(rn.smac, MAC_LB, 6) ||
	    rn.ifindex != (__u32)env->ifindex_lo || rn.svc_id != svc || rn.backend_id != be) {
		snprintf(err, errlen, "td_rnat entry has wrong contents (vport %u ifindex %u svc %u "
			 "backend %u)", ntohs(rn.vport), rn.ifindex, rn.svc_id, rn.backend_id);
		return -1;
	}
	return 0;
}

/* td_svc_stats[svc] and td_be_stats[be] after exactly one packet of len bytes that made a flow */
static int fx_expect_stats(struct td_env *env, __u32 svc, __u32 be, __u64 len, char *err,
			   size_t errlen)
{
	struct td_traffic_stats st;
	int i;

	for (i = 0; i < 2; i++) {
		if (td_env_read_stats(env, i, i ? be : svc, &st)) {
			snprintf(err, errlen, "reading %s stats failed", i ? "backend" : "service");
			return -1;
		}
		if (st.packets != 1 || st.bytes != len || st.new_flows != 1) {
			snprintf(err, errlen, "%s stats {packets %llu, bytes %llu, new_flows %llu}, "
				 "expected {1, %llu, 1}", i ? "td_be_stats" : "td_svc_stats",
				 (unsigned long long)st.packets, (unsigned long long)st.bytes,
				 (unsigned long long)st.new_flows, (unsigned long long)len);
			return -1;
		}
	}
	return 0;
}

static int chk_n4t_state(struct td_env *env, char *err, size_t errlen)
{
	struct td_flow_key k;

	/* 14 Ethernet + 20 IPv4 + 20 TCP + 16 payload */
	if (fx_expect_stats(env, SVC_N4T, BE_A(SVC_N4T), 70, err, errlen))
		return -1;

	fx_key(&k, V4, *CLIENT4, *VIP4N, CPORT, TCP_PORT, TCP);
	if (fx_expect_ct(env, &k, BE_A(SVC_N4T), SVC_N4T, err, errlen))
		return -1;
	fx_key(&k, V4, *BE4A, *CLIENT4, BE_TCP, CPORT, TCP);
	return fx_expect_rnat(env, &k, *VIP4N, TCP_PORT, SVC_N4T, BE_A(SVC_N4T),
			      err, errlen);
}

static int chk_n6u_state(struct td_env *env, char *err, size_t errlen)
{
	struct td_flow_key k;

	fx_key(&k, V6, *CLIENT6, *VIP6N, CPORT, UDP_PORT, UDP);
	if (fx_expect_ct(env, &k, BE_A(SVC_N6U), SVC_N6U, err, errlen))
		return -1;
	fx_key(&k, V6, *BE6A, *CLIENT6, BE_UDP, CPORT, UDP);
	return fx_expect_rnat(env, &k, *VIP6N, UDP_PORT, SVC_N6U, BE_A(SVC_N6U),
			      err, errlen);
}

/* DSR creates conntrack but never a reverse entry */
static int chk_d4t_state(struct td_env *env, char *err, size_t errlen)
{
	struct td_flow_key k;
	struct td_rnat rn;

	fx_key(&k, V4, *CLIENT4, *VIP4D, CPORT, TCP_PORT, TCP);
	if (fx_expect_ct(env, &k, BE_A(SVC_D4T), SVC_D4T, err, errlen))
		return -1;
	fx_key(&k, V4, *BE4DA, *CLIENT4, TCP_PORT, CPORT, TCP);
	if (!bpf_map_lookup_elem(env->fd_rnat, &k, &rn)) {
		snprintf(err, errlen, "DSR flow created a td_rnat entry");
		return -1;
	}
	return 0;
}

static int chk_sticky_rehashed(struct td_env *env, char *err, size_t errlen)
{
	struct td_flow_key k;

	fx_key(&k, V4, *CLIENT4, *VIP4N, CPORT, TCP_PORT, TCP);
	return fx_expect_ct(env, &k, BE_B(SVC_N4T), SVC_N4T, err, errlen);
}

static int chk_no_ct(struct td_env *env, char *err, size_t errlen)
{
	struct td_flow_key k;
	struct td_ct ct;

	fx_key(&k, V4, *CLIENT4, *VIP4N, CPORT, TCP_PORT, TCP);
	if (!td_env_lookup_ct(env, &k, &ct)) {
		snprintf(err, errlen, "a dropped packet left a td_ct entry (backend %u)", ct.backend_id);
		return -1;
	}
	return 0;
}

/* A UDP payload whose NAT result has a computed checksum of 0 (must go out as 0xffff). */
static __u8 fx_ffff_payload[16];

/* self-check of the fixture: the expected frame really carries 0xffff */
static int chk_ffff_expected(struct td_env *env, char *err, size_t errlen)
{
	struct td_pkt_spec s = PKT(V4, MAC_BE_A, MAC_LB_BE, CLIENT4, BE4A, UDP, CPORT, BE_UDP, 63,
				   .payload = fx_ffff_payload);
	__u8 buf[TD_PKT_MAX];

	if (td_pkt_build(&s, buf, sizeof(buf)) < 0 || buf[14 + 20 + 6] != 0xff ||
	    buf[14 + 20 + 7] != 0xff) {
		snprintf(err, errlen, "fixture self-check: payload does not give checksum 0xffff");
		return -1;
	}
	return 0;
}

/* ---- packets ----------------------------------------------------------------------------- */

/* client -> VIP, and what the backend must receive */
#define C2V(fam, src, vip, pr, dp, ...) P(fam, MAC_LB, MAC_CLIENT, src, vip, pr, CPORT, dp, 64, __VA_ARGS__)
#define NAT_OUT(fam, src, be, pr, bp, ...) P(fam, MAC_BE_A, MAC_LB_BE, src, be, pr, CPORT, bp, 63, __VA_ARGS__)
#define NAT_OUT_B(fam, src, be, pr, bp, ...) P(fam, MAC_BE_B, MAC_LB_BE, src, be, pr, CPORT, bp, 63, __VA_ARGS__)
#define DSR_OUT(fam, src, vip, pr, dp, ...) P(fam, MAC_BE_A, MAC_LB_BE, src, vip, pr, CPORT, dp, 64, __VA_ARGS__)
/* backend -> client reply, and what the client must receive */
#define B2C(fam, be, cl, pr, bp, ...) P(fam, MAC_LB_BE, MAC_BE_A, be, cl, pr, bp, CPORT, 64, \
					.tcp_flags = TD_PKT_TH_SYN | TD_PKT_TH_ACK, __VA_ARGS__)
#define RNAT_OUT(fam, vip, cl, pr, vp, ...) P(fam, MAC_CLIENT, MAC_LB, vip, cl, pr, vp, CPORT, 63, \
					      .tcp_flags = TD_PKT_TH_SYN | TD_PKT_TH_ACK, __VA_ARGS__)

#define FWD_NEW { D(TD_CNT_FWD, 1), D(TD_CNT_NEW_FLOW, 1) }
#define FWD_OLD { D(TD_CNT_FWD, 1) }

static const __u8 opts_ra[8] = { 0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00 };

/* quoted VIP -> client packets of ICMP errors, as sent and as the backend sent them */
#define QUOTE(fam, s, d, pr, sp, ...) PKT(fam, MAC_NONE, MAC_NONE, s, d, pr, sp, CPORT, 60, \
					  .no_eth = true, .tcp_flags = TD_PKT_TH_SYN | TD_PKT_TH_ACK, __VA_ARGS__)
static const struct td_pkt_spec q4t = QUOTE(V4, VIP4N, CLIENT4, TCP, TCP_PORT);
static const struct td_pkt_spec q4t_nat = QUOTE(V4, BE4A, CLIENT4, TCP, BE_TCP, .l4_csum_of = &q4t);
static const struct td_pkt_spec q4u = QUOTE(V4, VIP4N, CLIENT4, UDP, UDP_PORT);
static const struct td_pkt_spec q4u_nat = QUOTE(V4, BE4A, CLIENT4, UDP, BE_UDP, .l4_csum_of = &q4u);
static const struct td_pkt_spec q4t_dsr = QUOTE(V4, VIP4D, CLIENT4, TCP, TCP_PORT);
static const struct td_pkt_spec q4t_other = QUOTE(V4, VIP4N, CLIENT4B, TCP, TCP_PORT);
static const struct td_pkt_spec q6t = QUOTE(V6, VIP6N, CLIENT6, TCP, TCP_PORT);
static const struct td_pkt_spec q6t_nat = QUOTE(V6, BE6A, CLIENT6, TCP, BE_TCP, .l4_csum_of = &q6t);
static const struct td_pkt_spec q6u_dsr = QUOTE(V6, VIP6D, CLIENT6, UDP, UDP_PORT);
static const struct td_pkt_spec q6t_other = QUOTE(V6, VIP6N, CLIENT6B, TCP, TCP_PORT);

#define ICMP4_ERR(dm, sm, d, ttl_, t, c, q) P(V4, dm, sm, ROUTER4, d, IPPROTO_ICMP, 0, 0, ttl_, \
	.icmp_type = t, .icmp_code = c, .icmp_rest = 1400, .quote = q, .quote_len = 28,          \
	.payload = NULL, .payload_len = 0)
#define ICMP6_ERR(dm, sm, d, ttl_, t, c, q) P(V6, dm, sm, ROUTER6, d, IPPROTO_ICMPV6, 0, 0, ttl_, \
	.icmp_type = t, .icmp_code = c, .icmp_rest = 1280, .quote = q,                             \
	.payload = NULL, .payload_len = 0)

#define XDP_STEP(...) { .prog = TD_FX_XDP, __VA_ARGS__ }

const struct td_fixture td_fixtures_xdp[] = {
	/* ---- VIP hits: {TCP, UDP} x {IPv4, IPv6} x {NAT, DSR} ---- */
	{ .name = "nat_v4_tcp", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP),
			 .verdict = XDP_TX, .deltas = FWD_NEW, .check = chk_n4t_state) } },
	{ .name = "nat_v4_udp", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, UDP, UDP_PORT),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, UDP, BE_UDP),
			 .verdict = XDP_TX, .deltas = FWD_NEW) } },
	{ .name = "nat_v6_tcp", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, TCP, TCP_PORT),
			 .out = NAT_OUT(V6, CLIENT6, BE6A, TCP, BE_TCP),
			 .verdict = XDP_TX, .deltas = FWD_NEW) } },
	{ .name = "nat_v6_udp", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, UDP, UDP_PORT),
			 .out = NAT_OUT(V6, CLIENT6, BE6A, UDP, BE_UDP),
			 .verdict = XDP_TX, .deltas = FWD_NEW, .check = chk_n6u_state) } },
	{ .name = "dsr_v4_tcp", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4D, TCP, TCP_PORT),
			 .out = DSR_OUT(V4, CLIENT4, VIP4D, TCP, TCP_PORT),
			 .verdict = XDP_TX, .deltas = FWD_NEW, .check = chk_d4t_state) } },
	{ .name = "dsr_v4_udp", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4D, UDP, UDP_PORT),
			 .out = DSR_OUT(V4, CLIENT4, VIP4D, UDP, UDP_PORT),
			 .verdict = XDP_TX, .deltas = FWD_NEW) } },
	{ .name = "dsr_v6_tcp", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6D, TCP, TCP_PORT),
			 .out = DSR_OUT(V6, CLIENT6, VIP6D, TCP, TCP_PORT),
			 .verdict = XDP_TX, .deltas = FWD_NEW) } },
	{ .name = "dsr_v6_udp", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6D, UDP, UDP_PORT),
			 .out = DSR_OUT(V6, CLIENT6, VIP6D, UDP, UDP_PORT),
			 .verdict = XDP_TX, .deltas = FWD_NEW) } },

	/* ---- rewrite details ---- */
	{ .name = "nat_v4_udp_csum0_stays_0", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, UDP, UDP_PORT, .udp_csum_zero = true),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, UDP, BE_UDP, .udp_csum_zero = true),
			 .verdict = XDP_TX, .deltas = FWD_NEW) } },
	{ .name = "nat_v4_udp_computed_csum0_sent_as_ffff", .setup = NULL, .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, UDP, UDP_PORT, .payload = fx_ffff_payload),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, UDP, BE_UDP, .payload = fx_ffff_payload),
			 .verdict = XDP_TX, .deltas = FWD_NEW, .check = chk_ffff_expected) } },
	{ .name = "nat_v4_tcp_ip_options", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .ip_opts = opts_ra, .ip_opts_len = 8),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP, .ip_opts = opts_ra, .ip_opts_len = 8),
			 .verdict = XDP_TX, .deltas = FWD_NEW) } },
	{ .name = "nat_v4_tcp_df_is_not_a_fragment", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .frag_off = TD_PKT_IP_DF, .tos = 0x10),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP, .frag_off = TD_PKT_IP_DF, .tos = 0x10),
			 .verdict = XDP_TX, .deltas = FWD_NEW) } },
	{ .name = "nat_v6_tcp_ext_headers", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, TCP, TCP_PORT, .v6_ext = { 0, 60 }, .n_v6_ext = 2),
			 .out = NAT_OUT(V6, CLIENT6, BE6A, TCP, BE_TCP, .v6_ext = { 0, 60 }, .n_v6_ext = 2),
			 .verdict = XDP_TX, .deltas = FWD_NEW) } },
	{ .name = "nat_v4_tcp_redirect_other_ifindex", .needs_redir = true, .steps = {
		XDP_STEP(.pre = pre_n4t_a_redir,
			 .in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP),
			 .verdict = XDP_REDIRECT, .deltas = FWD_NEW) } },
	{ .name = "nat_v4_ttl1_drop", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .ttl = 1),
			 .verdict = XDP_DROP,
			 .deltas = { D(TD_DROP_TTL, 1), D(TD_CNT_NEW_FLOW, TD_FX_ANY) }) } },
	{ .name = "nat_v6_hoplimit1_drop", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, UDP, UDP_PORT, .ttl = 1),
			 .verdict = XDP_DROP,
			 .deltas = { D(TD_DROP_TTL, 1), D(TD_CNT_NEW_FLOW, TD_FX_ANY) }) } },
	{ .name = "dsr_v4_ttl1_forwarded_unchanged", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4D, TCP, TCP_PORT, .ttl = 1),
			 .out = DSR_OUT(V4, CLIENT4, VIP4D, TCP, TCP_PORT, .ttl = 1),
			 .verdict = XDP_TX, .deltas = FWD_NEW) } },

	/* ---- not for us ---- */
	{ .name = "pass_not_vip_v4", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, OTHER4, TCP, TCP_PORT),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_NOT_VIP, 1) }) } },
	{ .name = "pass_not_vip_v4_vip_addr_other_port", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, 443),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_NOT_VIP, 1) }) } },
	{ .name = "pass_not_vip_v4_vip_port_other_proto", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, UDP, TCP_PORT),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_NOT_VIP, 1) }) } },
	{ .name = "pass_not_vip_v6_vip_addr_other_port", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, UDP, 5300),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_NOT_VIP, 1) }) } },
	{ .name = "pass_not_vip_v6", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, OTHER6, TCP, TCP_PORT),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_NOT_VIP, 1) }) } },
	{ .name = "pass_not_vip_v4_gre", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, 47, 0, .raw_l4 = true),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_NOT_VIP, 1) }) } },
	{ .name = "pass_not_vip_v6_no_next_header", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, 59, 0, .raw_l4 = true),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_NOT_VIP, 1) }) } },
	{ .name = "pass_not_ip_arp", .steps = {
		XDP_STEP(.in = P(0, MAC_LB, MAC_CLIENT, CLIENT4, VIP4N, 0, 0, 0, 0, .eth_type = 0x0806),
			 .verdict = XDP_PASS, .malformed = true, .deltas = { D(TD_PASS_NOT_IP, 1) }) } },
	{ .name = "pass_not_ip_vlan", .steps = {
		XDP_STEP(.in = P(0, MAC_LB, MAC_CLIENT, CLIENT4, VIP4N, 0, 0, 0, 0, .eth_type = 0x8100),
			 .verdict = XDP_PASS, .malformed = true, .deltas = { D(TD_PASS_NOT_IP, 1) }) } },
	{ .name = "pass_reply_without_rnat", .steps = {
		XDP_STEP(.in = B2C(V4, BE4A, CLIENT4, TCP, BE_TCP),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_NOT_VIP, 1) }) } },

	/* ---- reverse NAT of replies, after the client's first packet ---- */
	{ .name = "rnat_v4_tcp_reply", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = B2C(V4, BE4A, CLIENT4, TCP, BE_TCP),
			 .out = RNAT_OUT(V4, VIP4N, CLIENT4, TCP, TCP_PORT),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_RNAT, 1) }) } },
	{ .name = "rnat_v4_udp_reply", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, UDP, UDP_PORT),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, UDP, BE_UDP),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = B2C(V4, BE4A, CLIENT4, UDP, BE_UDP),
			 .out = RNAT_OUT(V4, VIP4N, CLIENT4, UDP, UDP_PORT),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_RNAT, 1) }) } },
	{ .name = "rnat_v4_udp_reply_csum0_stays_0", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, UDP, UDP_PORT),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, UDP, BE_UDP),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = B2C(V4, BE4A, CLIENT4, UDP, BE_UDP, .udp_csum_zero = true),
			 .out = RNAT_OUT(V4, VIP4N, CLIENT4, UDP, UDP_PORT, .udp_csum_zero = true),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_RNAT, 1) }) } },
	{ .name = "rnat_v6_tcp_reply", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, TCP, TCP_PORT),
			 .out = NAT_OUT(V6, CLIENT6, BE6A, TCP, BE_TCP),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = B2C(V6, BE6A, CLIENT6, TCP, BE_TCP),
			 .out = RNAT_OUT(V6, VIP6N, CLIENT6, TCP, TCP_PORT),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_RNAT, 1) }) } },
	{ .name = "rnat_v6_udp_reply", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, UDP, UDP_PORT),
			 .out = NAT_OUT(V6, CLIENT6, BE6A, UDP, BE_UDP),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = B2C(V6, BE6A, CLIENT6, UDP, BE_UDP),
			 .out = RNAT_OUT(V6, VIP6N, CLIENT6, UDP, UDP_PORT),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_RNAT, 1) }) } },
	{ .name = "rnat_v4_reply_redirect_to_client_ifindex", .needs_redir = true, .steps = {
		XDP_STEP(.ifindex = TD_FX_IF_REDIR,
			 .in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP),
			 .verdict = XDP_REDIRECT, .deltas = FWD_NEW),
		XDP_STEP(.in = B2C(V4, BE4A, CLIENT4, TCP, BE_TCP),
			 .out = RNAT_OUT(V4, VIP4N, CLIENT4, TCP, TCP_PORT),
			 .verdict = XDP_REDIRECT, .deltas = { D(TD_CNT_RNAT, 1) }) } },
	/* ---- TCP close tracking: FIN/RST mark both entries, stale entries stop translating ---- */
	{ .name = "tcp_fin_from_client_closes_flow_reply_still_translated", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .tcp_flags = TD_PKT_TH_FIN | TD_PKT_TH_ACK),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP, .tcp_flags = TD_PKT_TH_FIN | TD_PKT_TH_ACK),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_FWD, 1), D(TD_CNT_CLOSED, 2) }),
		XDP_STEP(.in = B2C(V4, BE4A, CLIENT4, TCP, BE_TCP, .tcp_flags = TD_PKT_TH_FIN | TD_PKT_TH_ACK),
			 .out = RNAT_OUT(V4, VIP4N, CLIENT4, TCP, TCP_PORT, .tcp_flags = TD_PKT_TH_FIN | TD_PKT_TH_ACK),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_RNAT, 1) }),
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .tcp_flags = TD_PKT_TH_ACK),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP, .tcp_flags = TD_PKT_TH_ACK),
			 .verdict = XDP_TX, .deltas = FWD_OLD),
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .tcp_flags = TD_PKT_TH_SYN),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP, .tcp_flags = TD_PKT_TH_SYN),
			 .verdict = XDP_TX,
			 .deltas = { D(TD_CNT_FWD, 1), D(TD_CNT_NEW_FLOW, 1), D(TD_CNT_STALE, 1) }) } },
	{ .name = "tcp_rst_from_backend_closes_flow", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, TCP, TCP_PORT),
			 .out = NAT_OUT(V6, CLIENT6, BE6A, TCP, BE_TCP),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = B2C(V6, BE6A, CLIENT6, TCP, BE_TCP, .tcp_flags = TD_PKT_TH_RST | TD_PKT_TH_ACK),
			 .out = RNAT_OUT(V6, VIP6N, CLIENT6, TCP, TCP_PORT, .tcp_flags = TD_PKT_TH_RST | TD_PKT_TH_ACK),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_RNAT, 1), D(TD_CNT_CLOSED, 2) }) } },
	{ .name = "rnat_closed_past_grace_is_stale_and_not_translated", .steps = {
		XDP_STEP(.pre = pre_rnat_n4t_closed_long_ago,
			 .in = B2C(V4, BE4A, CLIENT4, TCP, BE_TCP),
			 .verdict = XDP_PASS,
			 .deltas = { D(TD_CNT_STALE, 1), D(TD_PASS_NOT_VIP, 1) }),
		XDP_STEP(.in = B2C(V4, BE4A, CLIENT4, TCP, BE_TCP),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_NOT_VIP, 1) }) } },
	{ .name = "dsr_reply_not_translated", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4D, TCP, TCP_PORT),
			 .out = DSR_OUT(V4, CLIENT4, VIP4D, TCP, TCP_PORT),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = B2C(V4, VIP4D, CLIENT4, TCP, TCP_PORT),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_NOT_VIP, 1) }) } },

	/* ---- established flows stay; removed backends re-hash ---- */
	{ .name = "sticky_flow_survives_ring_change_then_rehash", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.pre = pre_ring_n4t_b,
			 .in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .tcp_flags = TD_PKT_TH_ACK, .seq = 1001),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP, .tcp_flags = TD_PKT_TH_ACK, .seq = 1001),
			 .verdict = XDP_TX, .deltas = FWD_OLD),
		XDP_STEP(.in = P(V4, MAC_LB, MAC_CLIENT, CLIENT4, VIP4N, TCP, CPORT + 1, TCP_PORT, 64),
			 .out = P(V4, MAC_BE_B, MAC_LB_BE, CLIENT4, BE4B, TCP, CPORT + 1, BE_TCP, 63),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.pre = pre_n4t_a_inactive,
			 .in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .tcp_flags = TD_PKT_TH_ACK, .seq = 1002),
			 .out = NAT_OUT_B(V4, CLIENT4, BE4B, TCP, BE_TCP, .tcp_flags = TD_PKT_TH_ACK, .seq = 1002),
			 .verdict = XDP_TX,
			 .deltas = { D(TD_CNT_FWD, 1), D(TD_CNT_NEW_FLOW, 1), D(TD_CNT_REHASH, 1) },
			 .check = chk_sticky_rehashed) } },
	{ .name = "drop_no_backend_ring_none", .steps = {
		XDP_STEP(.pre = pre_ring_n4t_none,
			 .in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT),
			 .verdict = XDP_DROP, .deltas = { D(TD_DROP_NO_BACKEND, 1) },
			 .check = chk_no_ct) } },
	{ .name = "drop_no_backend_v6_ring_none", .steps = {
		XDP_STEP(.pre = pre_ring_n6u_none,
			 .in = C2V(V6, CLIENT6, VIP6N, UDP, UDP_PORT),
			 .verdict = XDP_DROP, .deltas = { D(TD_DROP_NO_BACKEND, 1) }) } },
	{ .name = "drop_no_backend_inactive_backend", .steps = {
		XDP_STEP(.pre = pre_n4t_a_inactive,
			 .in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT),
			 .verdict = XDP_DROP, .deltas = { D(TD_DROP_NO_BACKEND, 1) },
			 .check = chk_no_ct) } },

	/* ---- malformed ---- */
	{ .name = "pass_malformed_ethernet_only", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .cut = 14),
			 .verdict = XDP_PASS, .malformed = true, .deltas = { D(TD_PASS_MALFORMED, 1) }) } },
	{ .name = "pass_malformed_ipv4_header_cut", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .cut = 14 + 10),
			 .verdict = XDP_PASS, .malformed = true, .deltas = { D(TD_PASS_MALFORMED, 1) }) } },
	{ .name = "pass_malformed_ipv4_ihl_4", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .ihl = 4),
			 .verdict = XDP_PASS, .malformed = true, .deltas = { D(TD_PASS_MALFORMED, 1) }) } },
	{ .name = "pass_malformed_ipv4_tot_len_past_frame", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .ip_len = 20 + 20 + 16 + 8),
			 .verdict = XDP_PASS, .malformed = true, .deltas = { D(TD_PASS_MALFORMED, 1) }) } },
	{ .name = "pass_malformed_ipv4_tot_len_below_ihl", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .ip_len = 16),
			 .verdict = XDP_PASS, .malformed = true, .deltas = { D(TD_PASS_MALFORMED, 1) }) } },
	{ .name = "pass_malformed_ipv6_header_cut", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, TCP, TCP_PORT, .cut = 14 + 30),
			 .verdict = XDP_PASS, .malformed = true, .deltas = { D(TD_PASS_MALFORMED, 1) }) } },
	{ .name = "pass_malformed_ipv6_payload_len_past_frame", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, TCP, TCP_PORT, .ip_len = 20 + 16 + 8),
			 .verdict = XDP_PASS, .malformed = true, .deltas = { D(TD_PASS_MALFORMED, 1) }) } },
	{ .name = "drop_malformed_tcp_cut_to_vip", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .l4_cut = 10),
			 .verdict = XDP_DROP, .malformed = true, .deltas = { D(TD_DROP_MALFORMED, 1) }) } },
	{ .name = "drop_malformed_tcp_cut_to_vip_addr_other_port", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, 443, .l4_cut = 12),
			 .verdict = XDP_DROP, .malformed = true, .deltas = { D(TD_DROP_MALFORMED, 1) }) } },
	{ .name = "drop_malformed_udp_cut_to_vip", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4D, UDP, UDP_PORT, .l4_cut = 6),
			 .verdict = XDP_DROP, .malformed = true, .deltas = { D(TD_DROP_MALFORMED, 1) }) } },
	{ .name = "drop_malformed_v6_tcp_cut_to_vip", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, TCP, TCP_PORT, .l4_cut = 19),
			 .verdict = XDP_DROP, .malformed = true, .deltas = { D(TD_DROP_MALFORMED, 1) }) } },
	{ .name = "pass_malformed_tcp_cut_to_non_vip", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, OTHER4, TCP, TCP_PORT, .l4_cut = 10),
			 .verdict = XDP_PASS, .malformed = true, .deltas = { D(TD_PASS_MALFORMED, 1) }) } },
	{ .name = "pass_malformed_v6_udp_cut_to_non_vip", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, OTHER6, UDP, UDP_PORT, .l4_cut = 4),
			 .verdict = XDP_PASS, .malformed = true, .deltas = { D(TD_PASS_MALFORMED, 1) }) } },

	/* ---- fragments ---- */
	{ .name = "drop_fragment_v4_first_to_vip", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT, .frag_off = TD_PKT_IP_MF),
			 .verdict = XDP_DROP, .deltas = { D(TD_DROP_FRAGMENT, 1) }) } },
	{ .name = "drop_fragment_v4_later_to_vip", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, UDP, UDP_PORT, .frag_off = 185, .raw_l4 = true),
			 .verdict = XDP_DROP, .deltas = { D(TD_DROP_FRAGMENT, 1) }) } },
	{ .name = "drop_fragment_v4_middle_to_vip_other_port", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4D, UDP, 9999, .frag_off = TD_PKT_IP_MF | 2, .raw_l4 = true),
			 .verdict = XDP_DROP, .deltas = { D(TD_DROP_FRAGMENT, 1) }) } },
	{ .name = "pass_fragment_v4_to_non_vip", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, OTHER4, TCP, TCP_PORT, .frag_off = TD_PKT_IP_MF),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_FRAGMENT, 1) }) } },
	{ .name = "drop_fragment_v6_first_to_vip", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, TCP, TCP_PORT, .v6_frag = true, .v6_frag_more = true),
			 .verdict = XDP_DROP, .deltas = { D(TD_DROP_FRAGMENT, 1) }) } },
	{ .name = "drop_fragment_v6_later_to_vip_after_ext", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6D, UDP, UDP_PORT, .v6_ext = { 0 }, .n_v6_ext = 1,
				   .v6_frag = true, .v6_frag_off = 185, .raw_l4 = true),
			 .verdict = XDP_DROP, .deltas = { D(TD_DROP_FRAGMENT, 1) }) } },
	{ .name = "pass_fragment_v6_to_non_vip", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, OTHER6, UDP, UDP_PORT, .v6_frag = true, .v6_frag_more = true),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_FRAGMENT, 1) }) } },

	/* ---- ICMP ---- */
	{ .name = "icmp4_frag_needed_nat_tcp_to_backend", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = ICMP4_ERR(MAC_LB, MAC_ROUTER, VIP4N, 64, 3, 4, &q4t),
			 .out = ICMP4_ERR(MAC_BE_A, MAC_LB_BE, BE4A, 63, 3, 4, &q4t_nat),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_ICMP_FWD, 1) }) } },
	{ .name = "icmp4_frag_needed_nat_udp_quoted_csum_kept", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, UDP, UDP_PORT),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, UDP, BE_UDP),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = ICMP4_ERR(MAC_LB, MAC_ROUTER, VIP4N, 64, 3, 4, &q4u),
			 .out = ICMP4_ERR(MAC_BE_A, MAC_LB_BE, BE4A, 63, 3, 4, &q4u_nat),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_ICMP_FWD, 1) }) } },
	{ .name = "icmp4_time_exceeded_nat_tcp_to_backend", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = ICMP4_ERR(MAC_LB, MAC_ROUTER, VIP4N, 64, 11, 0, &q4t),
			 .out = ICMP4_ERR(MAC_BE_A, MAC_LB_BE, BE4A, 63, 11, 0, &q4t_nat),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_ICMP_FWD, 1) }) } },
	{ .name = "icmp6_packet_too_big_nat_tcp_to_backend", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6N, TCP, TCP_PORT),
			 .out = NAT_OUT(V6, CLIENT6, BE6A, TCP, BE_TCP),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = ICMP6_ERR(MAC_LB, MAC_ROUTER, VIP6N, 64, 2, 0, &q6t),
			 .out = ICMP6_ERR(MAC_BE_A, MAC_LB_BE, BE6A, 63, 2, 0, &q6t_nat),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_ICMP_FWD, 1) }) } },
	{ .name = "icmp4_frag_needed_dsr_macs_only", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4D, TCP, TCP_PORT),
			 .out = DSR_OUT(V4, CLIENT4, VIP4D, TCP, TCP_PORT),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = ICMP4_ERR(MAC_LB, MAC_ROUTER, VIP4D, 64, 3, 4, &q4t_dsr),
			 .out = ICMP4_ERR(MAC_BE_A, MAC_LB_BE, VIP4D, 64, 3, 4, &q4t_dsr),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_ICMP_FWD, 1) }) } },
	{ .name = "icmp6_packet_too_big_dsr_udp_macs_only", .steps = {
		XDP_STEP(.in = C2V(V6, CLIENT6, VIP6D, UDP, UDP_PORT),
			 .out = DSR_OUT(V6, CLIENT6, VIP6D, UDP, UDP_PORT),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = ICMP6_ERR(MAC_LB, MAC_ROUTER, VIP6D, 64, 2, 0, &q6u_dsr),
			 .out = ICMP6_ERR(MAC_BE_A, MAC_LB_BE, VIP6D, 64, 2, 0, &q6u_dsr),
			 .verdict = XDP_TX, .deltas = { D(TD_CNT_ICMP_FWD, 1) }) } },
	{ .name = "icmp4_error_unknown_flow_drop", .steps = {
		XDP_STEP(.in = C2V(V4, CLIENT4, VIP4N, TCP, TCP_PORT),
			 .out = NAT_OUT(V4, CLIENT4, BE4A, TCP, BE_TCP),
			 .verdict = XDP_TX, .deltas = FWD_NEW),
		XDP_STEP(.in = ICMP4_ERR(MAC_LB, MAC_ROUTER, VIP4N, 64, 3, 4, &q4t_other),
			 .verdict = XDP_DROP, .deltas = { D(TD_DROP_ICMP_NO_FLOW, 1) }) } },
	{ .name = "icmp6_error_unknown_flow_drop", .steps = {
		XDP_STEP(.in = ICMP6_ERR(MAC_LB, MAC_ROUTER, VIP6N, 64, 2, 0, &q6t_other),
			 .verdict = XDP_DROP, .deltas = { D(TD_DROP_ICMP_NO_FLOW, 1) }) } },
	{ .name = "icmp4_echo_to_vip_pass", .steps = {
		XDP_STEP(.in = P(V4, MAC_LB, MAC_CLIENT, CLIENT4, VIP4N, IPPROTO_ICMP, 0, 0, 64,
				 .icmp_type = 8, .icmp_rest = 0x00010001),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_ICMP, 1) }) } },
	{ .name = "icmp6_echo_to_vip_pass", .steps = {
		XDP_STEP(.in = P(V6, MAC_LB, MAC_CLIENT, CLIENT6, VIP6D, IPPROTO_ICMPV6, 0, 0, 64,
				 .icmp_type = 128, .icmp_rest = 0x00010001),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_ICMP, 1) }) } },
	{ .name = "icmp4_echo_to_non_vip_pass_not_vip", .steps = {
		XDP_STEP(.in = P(V4, MAC_LB, MAC_CLIENT, CLIENT4, OTHER4, IPPROTO_ICMP, 0, 0, 64,
				 .icmp_type = 8, .icmp_rest = 0x00010001),
			 .verdict = XDP_PASS, .deltas = { D(TD_PASS_NOT_VIP, 1) }) } },
};
const size_t td_n_fixtures_xdp = sizeof(td_fixtures_xdp) / sizeof(td_fixtures_xdp[0]);

/*
 * fx_ffff_payload: choose the first payload word so that the NAT'ed UDP segment sums to
 * 0xffff, i.e. its computed checksum is 0, which must go on the wire as 0xffff. Computed here
 * from the expected packet's own checksum, independently of the program.
 */
static void __attribute__((constructor)) fx_init_ffff_payload(void)
{
	struct td_pkt_spec s = PKT(V4, MAC_BE_A, MAC_LB_BE, CLIENT4, BE4A, UDP, CPORT, BE_UDP, 63,
				   .payload = fx_ffff_payload);
	__u8 buf[TD_PKT_MAX];
	__u16 c;

	memset(fx_ffff_payload, 0, sizeof(fx_ffff_payload));
	memcpy(fx_ffff_payload + 2, "ffff-case!", 10);
	if (td_pkt_build(&s, buf, sizeof(buf)) < 0)
		return;
	c = (__u16)(buf[14 + 20 + 6] << 8 | buf[14 + 20 + 7]);
	fx_ffff_payload[0] = c >> 8;
	fx_ffff_payload[1] = c & 0xff;
}

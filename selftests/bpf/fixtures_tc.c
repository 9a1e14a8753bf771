/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tc_lb fixture table: replies emitted by the local stack get the VIP as source when td_rnat knows them. */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include "fixtures.h"

/* td_rnat entry for backend:port -> client:CPORT, as xdp_lb would have written it */
static int fx_rnat(struct td_env *env, __u8 fam, union td_addr be, __u16 bport, union td_addr cl,
		   __u8 proto, union td_addr vip, __u16 vport, __u32 svc)
{
	struct td_flow_key k = { 0 };
	struct td_rnat v = { 0 };

	k.src = be;
	k.dst = cl;
	k.sport = htons(bport);
	k.dport = htons(CPORT);
	k.proto = proto;
	k.family = fam;
	v.vip = vip;
	v.vport = htons(vport);
	memcpy(v.dmac, MAC_CLIENT, 6);
	memcpy(v.smac, MAC_LB, 6);
	v.ifindex = env->ifindex_lo;
	v.svc_id = svc;
	v.backend_id = BE_A(svc);
	return td_env_add_rnat(env, &k, &v);
}

static int pre_rnat_n4t(struct td_env *env)
{
	return fx_rnat(env, V4, *BE4A, BE_TCP, *CLIENT4, TCP,
		       *VIP4N, TCP_PORT, SVC_N4T);
}

static int pre_rnat_n4u(struct td_env *env)
{
	return fx_rnat(env, V4, *BE4A, BE_UDP, *CLIENT4, UDP,
		       *VIP4N, UDP_PORT, SVC_N4U);
}

static int pre_rnat_n6t(struct td_env *env)
{
	return fx_rnat(env, V6, *BE6A, BE_TCP, *CLIENT6, TCP,
		       *VIP6N, TCP_PORT, SVC_N6T);
}

static int pre_rnat_n6u(struct td_env *env)
{
	return fx_rnat(env, V6, *BE6A, BE_UDP, *CLIENT6, UDP,
		       *VIP6N, UDP_PORT, SVC_N6U);
}

/* a reply as the local stack emits it (its own MACs), and the same with the VIP as source */
#define L2C(fam, be, cl, pr, bp, ...) P(fam, MAC_CLIENT, MAC_LB, be, cl, pr, bp, CPORT, 64, \
					.tcp_flags = TD_PKT_TH_SYN | TD_PKT_TH_ACK, __VA_ARGS__)
#define TC_OUT(fam, vip, cl, pr, vp, ...) P(fam, MAC_CLIENT, MAC_LB, vip, cl, pr, vp, CPORT, 64, \
					    .tcp_flags = TD_PKT_TH_SYN | TD_PKT_TH_ACK, __VA_ARGS__)
#define TC_STEP(...) { .prog = TD_FX_TC, __VA_ARGS__ }
#define RNAT1 { D(TD_CNT_RNAT, 1) }

const struct td_fixture td_fixtures_tc[] = {
	{ .name = "tc_rnat_v4_tcp", .steps = {
		TC_STEP(.pre = pre_rnat_n4t,
			.in = L2C(V4, BE4A, CLIENT4, TCP, BE_TCP),
			.out = TC_OUT(V4, VIP4N, CLIENT4, TCP, TCP_PORT),
			.verdict = TC_ACT_OK, .deltas = RNAT1) } },
	{ .name = "tc_rnat_v4_udp", .steps = {
		TC_STEP(.pre = pre_rnat_n4u,
			.in = L2C(V4, BE4A, CLIENT4, UDP, BE_UDP),
			.out = TC_OUT(V4, VIP4N, CLIENT4, UDP, UDP_PORT),
			.verdict = TC_ACT_OK, .deltas = RNAT1) } },
	{ .name = "tc_rnat_v6_tcp", .steps = {
		TC_STEP(.pre = pre_rnat_n6t,
			.in = L2C(V6, BE6A, CLIENT6, TCP, BE_TCP),
			.out = TC_OUT(V6, VIP6N, CLIENT6, TCP, TCP_PORT),
			.verdict = TC_ACT_OK, .deltas = RNAT1) } },
	{ .name = "tc_rnat_v6_udp", .steps = {
		TC_STEP(.pre = pre_rnat_n6u,
			.in = L2C(V6, BE6A, CLIENT6, UDP, BE_UDP),
			.out = TC_OUT(V6, VIP6N, CLIENT6, UDP, UDP_PORT),
			.verdict = TC_ACT_OK, .deltas = RNAT1) } },
	{ .name = "tc_rnat_v4_tcp_ip_options", .steps = {
		TC_STEP(.pre = pre_rnat_n4t,
			.in = L2C(V4, BE4A, CLIENT4, TCP, BE_TCP,
				  .ip_opts = (const __u8[]){ 0x01, 0x01, 0x01, 0x00 }, .ip_opts_len = 4),
			.out = TC_OUT(V4, VIP4N, CLIENT4, TCP, TCP_PORT,
				      .ip_opts = (const __u8[]){ 0x01, 0x01, 0x01, 0x00 }, .ip_opts_len = 4),
			.verdict = TC_ACT_OK, .deltas = RNAT1) } },
	{ .name = "tc_no_rnat_v4_unchanged", .steps = {
		TC_STEP(.in = L2C(V4, BE4A, CLIENT4, TCP, BE_TCP), .verdict = TC_ACT_OK) } },
	{ .name = "tc_no_rnat_v6_unchanged", .steps = {
		TC_STEP(.in = L2C(V6, BE6A, CLIENT6, UDP, BE_UDP), .verdict = TC_ACT_OK) } },
	{ .name = "tc_rnat_other_client_port_unchanged", .steps = {
		TC_STEP(.pre = pre_rnat_n4t,
			.in = P(V4, MAC_CLIENT, MAC_LB, BE4A, CLIENT4, TCP, BE_TCP, CPORT + 1, 64),
			.verdict = TC_ACT_OK) } },
	{ .name = "tc_not_ip_unchanged", .steps = {
		TC_STEP(.in = P(0, MAC_CLIENT, MAC_LB, CLIENT4, VIP4N, 0, 0, 0, 0, .eth_type = 0x0806),
			.verdict = TC_ACT_OK, .malformed = true) } },
	{ .name = "tc_later_fragment_unchanged", .steps = {
		TC_STEP(.pre = pre_rnat_n4t,
			.in = L2C(V4, BE4A, CLIENT4, TCP, BE_TCP, .frag_off = 185, .raw_l4 = true),
			.verdict = TC_ACT_OK) } },
	{ .name = "tc_rnat_after_xdp_client_packet", .steps = {
		{ .prog = TD_FX_XDP,
		  .in = P(V4, MAC_LB, MAC_CLIENT, CLIENT4, VIP4N, TCP, CPORT, TCP_PORT, 64),
		  .out = P(V4, MAC_BE_A, MAC_LB_BE, CLIENT4, BE4A, TCP, CPORT, BE_TCP, 63),
		  .verdict = XDP_TX, .deltas = { D(TD_CNT_FWD, 1), D(TD_CNT_NEW_FLOW, 1) } },
		TC_STEP(.in = L2C(V4, BE4A, CLIENT4, TCP, BE_TCP),
			.out = TC_OUT(V4, VIP4N, CLIENT4, TCP, TCP_PORT),
			.verdict = TC_ACT_OK, .deltas = RNAT1) } },
};
const size_t td_n_fixtures_tc = sizeof(td_fixtures_tc) / sizeof(td_fixtures_tc[0]);

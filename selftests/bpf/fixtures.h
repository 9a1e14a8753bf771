/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Addresses, MACs and packet shorthands shared by the fixture tables and the bench. */
#ifndef TD_FIXTURES_H
#define TD_FIXTURES_H

#include <netinet/in.h>
#include "fixture.h"

/* designated-initializer defaults are overridden on purpose in the packet shorthands */
#pragma GCC diagnostic ignored "-Woverride-init"

/* Addresses and MACs are objects (fixtures_xdp.c) so the shorthands below pass pointers. */
#define TD_FX_ADDRS(X) \
	X(client4) X(client4b) X(vip4n) X(vip4d) X(other4) X(router4) \
	X(be4a) X(be4b) X(be4da) X(be4db) \
	X(client6) X(client6b) X(vip6n) X(vip6d) X(other6) X(router6) \
	X(be6a) X(be6b) X(be6da) X(be6db)
#define TD_FX_DECL_ADDR(n) extern const union td_addr td_fx_##n;
TD_FX_ADDRS(TD_FX_DECL_ADDR)

#define CLIENT4   (&td_fx_client4)     /* 10.0.0.1 */
#define CLIENT4B  (&td_fx_client4b)    /* 10.0.0.2 */
#define VIP4N     (&td_fx_vip4n)       /* 10.100.0.1: NAT services */
#define VIP4D     (&td_fx_vip4d)       /* 10.100.0.2: DSR services */
#define OTHER4    (&td_fx_other4)      /* 10.200.0.1: not a VIP */
#define ROUTER4   (&td_fx_router4)     /* 10.9.9.9 */
#define BE4A      (&td_fx_be4a)        /* 10.1.0.11 */
#define BE4B      (&td_fx_be4b)        /* 10.1.0.12 */
#define BE4DA     (&td_fx_be4da)       /* 10.1.0.21 */
#define BE4DB     (&td_fx_be4db)       /* 10.1.0.22 */
#define CLIENT6   (&td_fx_client6)     /* fd00::1 */
#define CLIENT6B  (&td_fx_client6b)    /* fd00::2 */
#define VIP6N     (&td_fx_vip6n)       /* fd00:100::1 */
#define VIP6D     (&td_fx_vip6d)       /* fd00:100::2 */
#define OTHER6    (&td_fx_other6)      /* fd00:200::1 */
#define ROUTER6   (&td_fx_router6)     /* fd00:9::9 */
#define BE6A      (&td_fx_be6a)        /* fd00:1::11 */
#define BE6B      (&td_fx_be6b)        /* fd00:1::12 */
#define BE6DA     (&td_fx_be6da)       /* fd00:1::21 */
#define BE6DB     (&td_fx_be6db)       /* fd00:1::22 */

extern const __u8 td_fx_mac_client[6], td_fx_mac_lb[6], td_fx_mac_lb_be[6], td_fx_mac_be_a[6],
	td_fx_mac_be_b[6], td_fx_mac_router[6];
#define MAC_CLIENT td_fx_mac_client    /* client-side next hop 02:00:00:00:00:c1 */
#define MAC_LB     td_fx_mac_lb        /* our MAC on the client side 02:00:00:00:00:1b */
#define MAC_LB_BE  td_fx_mac_lb_be     /* our MAC towards the backends 02:00:00:00:1b:be */
#define MAC_BE_A   td_fx_mac_be_a      /* 02:00:00:00:be:0a */
#define MAC_BE_B   td_fx_mac_be_b      /* 02:00:00:00:be:0b */
#define MAC_ROUTER td_fx_mac_router    /* 02:00:00:00:00:99 */
#define MAC_NONE   NULL

#define CPORT      40000                  /* client source port */
#define TCP_PORT   80
#define UDP_PORT   53
#define BE_TCP     8080                   /* NAT backend ports */
#define BE_UDP     5353

/* standard services (td_fx_std_setup): ids, and backends A (in the ring) and B (spare) */
enum {
	SVC_N4T = 0, SVC_N4U, SVC_N6T, SVC_N6U, SVC_D4T, SVC_D4U, SVC_D6T, SVC_D6U, SVC_STD_N
};
#define BE_A(svc)  (1 + 2 * (svc))
#define BE_B(svc)  (2 + 2 * (svc))
#define RING_SIZE  13

extern const __u8 td_fx_payload[16];

/* One frame: family, MACs, addresses, L4 protocol and ports, TTL; the rest via extra fields. */
#define PKT(fam, dm, sm, s, d, pr, sp, dp, ttl_, ...)                                  \
	{ .dmac = dm, .smac = sm, .family = fam, .src = s, .dst = d, .proto = pr,     \
	  .sport = sp, .dport = dp, .ttl = ttl_, .ip_id = 0x1234, .seq = 1000,         \
	  .tcp_flags = TD_PKT_TH_SYN, .payload = td_fx_payload,                        \
	  .payload_len = sizeof(td_fx_payload), __VA_ARGS__ }
#define P(...) (&(const struct td_pkt_spec)PKT(__VA_ARGS__))

#define V4 TD_AF_INET
#define V6 TD_AF_INET6
#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP

#define D(c, n) { (c), (n) }

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* td ABI: every struct, enum, limit and name shared by the BPF programs and userspace. */
#ifndef TD_ABI_H
#define TD_ABI_H

/*
 * Conventions:
 *  - fixed-width types only, explicit padding, no implicit holes (hash keys are compared bytewise);
 *  - "be" in a comment means network byte order, everything else is host order;
 *  - addresses are always 16 bytes: IPv4 lives in the first 4 bytes (addr.v4), the rest is zero;
 *  - each struct carries a _Static_assert on its size so both sides fail to build on a mismatch.
 * This header is included by BPF code (linux/types.h via vmlinux-free uapi) and by userspace.
 */
#include <linux/types.h>

#ifndef __cplusplus
#define TD_STATIC_ASSERT(c, m) _Static_assert(c, m)
#else
#define TD_STATIC_ASSERT(c, m) static_assert(c, m)
#endif

/* ---- pin layout ------------------------------------------------------------------------ */
#define TD_BPFFS_DEFAULT   "/sys/fs/bpf/td"     /* node.bpffs, --bpffs, env TD_BPFFS */
#define TD_BPFFS_ENV       "TD_BPFFS"
/* maps are pinned as <bpffs>/<map name>; programs as <bpffs>/<prog pin name> */
#define TD_PIN_PROG_XDP_LB "prog_xdp_lb"
#define TD_PIN_PROG_TC_LB  "prog_tc_lb"

/* map names (also their pin names; BPF object names are limited to 15 characters) */
#define TD_MAP_SVC         "td_svc"        /* HASH   td_vip_key -> td_svc              */
#define TD_MAP_SVC_INFO    "td_svc_info"   /* ARRAY  svc id -> td_svc_info (names, for tdctl) */
#define TD_MAP_BACKENDS    "td_backends"   /* ARRAY  backend id -> td_backend          */
#define TD_MAP_MAGLEV      "td_maglev"     /* ARRAY_OF_MAPS svc id -> ARRAY(ring) of backend ids */
#define TD_MAP_CT          "td_ct"         /* LRU_HASH td_flow_key (client->VIP) -> td_ct   */
#define TD_MAP_RNAT        "td_rnat"       /* LRU_HASH td_flow_key (backend->client) -> td_rnat */
#define TD_MAP_VIPS       "td_vips"      /* HASH   td_vip_addr -> u32 services on it (fragments, ICMP) */
#define TD_MAP_PORTS       "td_ports"      /* ARRAY  port (host order) -> u8 TD_PORT_F_*  */
#define TD_MAP_SVC_STATS   "td_svc_stats"  /* PERCPU_ARRAY svc id -> td_traffic_stats   */
#define TD_MAP_BE_STATS    "td_be_stats"   /* PERCPU_ARRAY backend id -> td_traffic_stats */
#define TD_MAP_COUNTERS    "td_counters"   /* PERCPU_ARRAY enum td_counter -> u64        */
#define TD_MAP_IFACES      "td_ifaces"     /* HASH   ifindex -> td_iface (what tdctl attached) */

/* ---- limits ------------------------------------------------------------------------------- */
#define TD_MAX_SERVICES      1024          /* service ids 0..TD_MAX_SERVICES-1            */
#define TD_MAX_BACKENDS      16384         /* backend ids, global over all services       */
#define TD_MAX_IFACES        64
#define TD_MAGLEV_DEFAULT    65537         /* prime; l4.maglev_size overrides (must be prime) */
#define TD_MAGLEV_MAX        1048573       /* largest prime ring size accepted            */
#define TD_CT_DEFAULT        262144        /* l4.conntrack_size overrides                */
#define TD_NAME_LEN          32            /* service names incl. NUL                     */
#define TD_IFNAME_LEN        16
#define TD_BACKEND_NONE      0xffffffffu   /* ring slot with no backend (all weights 0)   */
#define TD_CLOSE_GRACE_NS    2000000000ull /* closed TCP flows keep their entries this long */

/* ---- enums -------------------------------------------------------------------------------- */
enum td_family { TD_AF_INET = 4, TD_AF_INET6 = 6 };

/* IP protocol numbers used in keys (same values as IPPROTO_*) */
enum td_proto { TD_PROTO_TCP = 6, TD_PROTO_UDP = 17 };

enum td_mode { TD_MODE_NAT = 0, TD_MODE_DSR = 1 };

/* td_ports values: which ports may need a lookup at all (cheap pre-filter) */
#define TD_PORT_F_VIP      0x1   /* some service listens on this port (dst port)         */
#define TD_PORT_F_BACKEND  0x2   /* some NAT backend uses this port (src port of replies) */

/* td_backend.flags */
#define TD_BE_F_ACTIVE     0x1   /* exists; conntrack entries pointing to it stay valid   */
#define TD_BE_F_NEXTHOP    0x2   /* dmac/smac/ifindex are resolved (from the neighbour table) */
/* informational (the ring already reflects them; the datapath does not read these): */
#define TD_BE_F_DRAINED    0x4   /* drained at runtime: weight 0 for new flows            */
#define TD_BE_F_DOWN       0x8   /* failing its health check: out of the ring             */
#define TD_BE_F_OVERRIDE   0x10  /* added or re-weighted at runtime, not from the file     */

/* td_iface.flags */
#define TD_IF_F_XDP        0x1
#define TD_IF_F_TC         0x2
#define TD_IF_F_TC_HOOK    0x4   /* td created the clsact qdisc and removes it on detach */

enum td_xdp_mode { TD_XDP_NATIVE = 0, TD_XDP_GENERIC = 1 };

/*
 * Per-CPU counters (td_counters). Names for tdctl/metrics live in td_counter_names().
 * TD_DROP_* are drops (the packet is gone), TD_PASS_* are packets handed to the stack
 * untouched for a stated reason, the rest are plain events.
 */
enum td_counter {
	TD_CNT_RX = 0,               /* packets seen by xdp_lb                                */
	TD_CNT_TC_RX,                /* packets seen by tc_lb                                 */
	TD_CNT_FWD,                  /* VIP packets sent to a backend                         */
	TD_CNT_RNAT,                 /* replies translated back to the VIP                    */
	TD_CNT_ICMP_FWD,             /* ICMP errors about a balanced flow sent to its backend  */
	TD_CNT_NEW_FLOW,             /* conntrack entries created                             */
	TD_CNT_REHASH,               /* flow whose backend was removed got a new backend      */
	TD_CNT_FIB_LOOKUP,           /* next hop came from bpf_fib_lookup (not the cache)     */
	TD_CNT_CLOSED,               /* TCP flow marked closed (first FIN/RST)                */
	TD_CNT_STALE,                /* closed entry past its grace ignored (and replaced)     */
	TD_PASS_NOT_IP,              /* not IPv4/IPv6                                         */
	TD_PASS_NOT_VIP,             /* IP but not for a VIP and not a reply                  */
	TD_PASS_MALFORMED,           /* truncated/invalid headers, not known to be VIP traffic */
	TD_PASS_FRAGMENT,            /* non-VIP fragment                                      */
	TD_PASS_ICMP,                /* ICMP not about a balanced flow (echo to VIP etc.)      */
	TD_PASS_NO_NEIGH,            /* NAT: rewritten, next hop unknown: kernel stack forwards */
	TD_DROP_MALFORMED,           /* VIP traffic with invalid/truncated headers            */
	TD_DROP_FRAGMENT,            /* fragment of VIP traffic (policy: not balanced)        */
	TD_DROP_IP_OPTIONS,          /* reserved: IPv4 options are parsed, this stays 0       */
	TD_DROP_NO_BACKEND,          /* service has no (healthy) backend                      */
	TD_DROP_NO_NEIGH,            /* DSR: backend MAC unknown                              */
	TD_DROP_TTL,                 /* TTL/hop limit would expire                            */
	TD_DROP_REDIRECT,            /* bpf_redirect failed                                   */
	TD_DROP_MAP,                 /* internal: map lookup/update failed                    */
	TD_DROP_ICMP_NO_FLOW,        /* ICMP error to a VIP about no known flow               */
	TD_CNT_MAX
};

/* ---- map keys and values ------------------------------------------------------------------ */

/* 16-byte address: v4 in the first 4 bytes (be), rest zero; v6 as is (be). */
union td_addr {
	__u32 v4;
	__u32 v6[4];
	__u8  bytes[16];
};

/* td_svc key: a VIP endpoint. */
struct td_vip_key {
	union td_addr addr;   /* be */
	__u16 port;           /* be */
	__u8  proto;          /* enum td_proto */
	__u8  family;         /* enum td_family */
};
TD_STATIC_ASSERT(sizeof(struct td_vip_key) == 20, "td_vip_key size");

/* td_vips key: a VIP address without port (decides the fate of fragments and ICMP errors). */
struct td_vip_addr {
	union td_addr addr;   /* be */
	__u8  family;         /* enum td_family */
	__u8  pad[3];         /* must be zero */
};
TD_STATIC_ASSERT(sizeof(struct td_vip_addr) == 20, "td_vip_addr size");

/* td_svc value */
struct td_svc {
	__u32 id;             /* index into td_maglev, td_svc_info, td_svc_stats */
	__u8  mode;           /* enum td_mode */
	__u8  pad[3];
	__u32 ring_size;      /* entries of this service's Maglev ring (prime) */
	__u32 flags;          /* reserved, 0 */
};
TD_STATIC_ASSERT(sizeof(struct td_svc) == 16, "td_svc size");

/* td_svc_info value: what tdctl needs to name a service when the agent is down. */
struct td_svc_info {
	char  name[TD_NAME_LEN];
	struct td_vip_key vip;
	__u8  mode;           /* enum td_mode */
	__u8  in_use;         /* 1 when the id is allocated */
	__u16 n_backends;     /* backends configured (incl. weight 0) */
	__u32 generation;     /* config generation that last wrote this service */
};
TD_STATIC_ASSERT(sizeof(struct td_svc_info) == 60, "td_svc_info size");

/* td_backends value */
struct td_backend {
	union td_addr addr;   /* be */
	__u16 port;           /* be; NAT rewrites the destination port to this */
	__u8  family;         /* enum td_family */
	__u8  flags;          /* TD_BE_F_* */
	__u32 svc_id;         /* owning service */
	__u8  dmac[6];        /* next hop MAC (backend itself when on-link), valid with NEXTHOP */
	__u8  smac[6];        /* our MAC on ifindex */
	__u32 ifindex;        /* egress interface towards the backend, valid with NEXTHOP */
	__u16 weight;         /* configured weight (informational; the ring carries it) */
	__u16 pad;
};
TD_STATIC_ASSERT(sizeof(struct td_backend) == 44, "td_backend size");

/* td_ct / td_rnat key: a directed 5-tuple. */
struct td_flow_key {
	union td_addr src;    /* be */
	union td_addr dst;    /* be */
	__u16 sport;          /* be */
	__u16 dport;          /* be */
	__u8  proto;
	__u8  family;
	__u16 pad;            /* must be zero */
};
TD_STATIC_ASSERT(sizeof(struct td_flow_key) == 40, "td_flow_key size");

/*
 * td_ct value: client->VIP flow to its backend. TCP flows are marked closed at the first FIN or
 * RST seen in either direction; a closed entry still serves the closing handshake for
 * close_grace (load-time knob, default 2 s), after which it is ignored and replaced, and a SYN
 * on a closed entry starts a new flow at once.
 */
struct td_ct {
	__u32 backend_id;
	__u32 svc_id;
	__u8  mode;           /* enum td_mode of the service when the flow began: an established
			       * flow is forwarded from this entry alone (one hash lookup) */
	__u8  pad[7];
	__u64 created_ns;     /* bpf_ktime_get_ns() of creation or re-hash (not per packet) */
	__u64 closed_ns;      /* 0 while open */
};
TD_STATIC_ASSERT(sizeof(struct td_ct) == 32, "td_ct size");

/* td_rnat value: how to turn a backend reply into a VIP reply and send it to the client. */
struct td_rnat {
	union td_addr vip;    /* be */
	__u16 vport;          /* be */
	__u8  dmac[6];        /* client side next hop: src MAC of the client's first packet */
	__u8  smac[6];        /* our MAC on the client side: its dst MAC */
	__u16 pad;
	__u32 ifindex;        /* interface the client's first packet came in on */
	__u32 svc_id;
	__u32 backend_id;
	__u32 pad2;
	__u64 closed_ns;      /* as td_ct.closed_ns: a closed entry past the grace is ignored */
};
TD_STATIC_ASSERT(sizeof(struct td_rnat) == 56, "td_rnat size");

/* td_svc_stats / td_be_stats value (per CPU) */
struct td_traffic_stats {
	__u64 packets;
	__u64 bytes;
	__u64 new_flows;
};
TD_STATIC_ASSERT(sizeof(struct td_traffic_stats) == 24, "td_traffic_stats size");

/* td_ifaces value: written by tdctl/tdagent on attach, read by status and detach. */
struct td_iface {
	char  name[TD_IFNAME_LEN];
	__u32 flags;          /* TD_IF_F_* */
	__u32 xdp_mode;       /* enum td_xdp_mode */
};
TD_STATIC_ASSERT(sizeof(struct td_iface) == 24, "td_iface size");

#endif /* TD_ABI_H */

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* td mesh ABI: maps, keys, values, counters and events shared by sock_lb and userspace (one copy). */
#ifndef TD_MESH_H
#define TD_MESH_H

/*
 * Conventions are those of abi.h (fixed-width types, explicit padding, be = network byte order,
 * 16-byte addresses with IPv4 in the first 4 bytes, a size assert on every struct).
 *
 * Identities: every mesh service has an id 1..TD_MESH_MAX_SERVICES-1; it is both the service's
 * identity as a source (the cgroup its workloads run in) and as a destination (its VIP).
 * Id 0 is the identity "unknown": a socket whose cgroup (and none of its ancestors) belongs to a
 * service.
 */
#include "td/abi.h"

/* ---- map names (also pin names; <= 15 characters) ------------------------------------------- */
#define TD_MAP_M_SVC     "td_m_svc"     /* HASH  td_vip_key (VIP endpoint) -> td_mesh_svc       */
#define TD_MAP_M_SEL     "td_m_sel"     /* ARRAY_OF_MAPS svc id -> ARRAY[TD_MESH_SLOTS] td_mesh_be */
#define TD_MAP_M_CG      "td_m_cg"      /* HASH  u64 cgroup id -> u32 identity (svc id)         */
#define TD_MAP_M_ALLOW   "td_m_allow"   /* HASH  td_mesh_allow_key -> u32 (1 = allow)           */
#define TD_MAP_M_CONF    "td_m_conf"    /* ARRAY [0] -> td_mesh_conf (default policy)           */
#define TD_MAP_M_NAMES   "td_m_names"   /* ARRAY svc id -> td_mesh_name (for tdctl/logs)         */
#define TD_MAP_M_CNT     "td_m_cnt"     /* PERCPU_ARRAY enum td_mesh_counter -> u64              */
#define TD_MAP_M_PAIR    "td_m_pair"    /* PERCPU_HASH td_mesh_pair_key -> td_mesh_pair_stats    */
#define TD_MAP_M_SK      "td_m_sk"      /* SK_STORAGE socket -> td_mesh_sk (VIPs to restore)     */
#define TD_MAP_M_EVENTS  "td_m_events"  /* RINGBUF td_mesh_event (denials)                       */
#define TD_MAP_M_SOCKS   "td_m_socks"   /* SOCKHASH td_mesh_sock_key -> socket (redirect members)  */
#define TD_MAP_M_JOIN    "td_m_join"    /* LRU_HASH td_mesh_sock_key -> td_mesh_join (pending)    */

/* program pin names under the bpffs folder, and the program (function) names */
#define TD_PIN_PROG_M_PREFIX "prog_m_"  /* prog_m_connect4 ... prog_m_getpeer6, prog_m_sockops, prog_m_msg */

/* ---- limits ------------------------------------------------------------------------------- */
#define TD_MESH_MAX_SERVICES  256        /* ids 1..255; 0 = unknown                         */
#define TD_MESH_MAX_BACKENDS  256        /* per service                                     */
#define TD_MESH_SLOTS         1024       /* selection table slots per service (power of 2)  */
#define TD_MESH_MAX_CGROUPS   4096       /* cgroup -> identity entries                      */
#define TD_MESH_MAX_RULES     16384      /* allow rules (one per port)                      */
#define TD_MESH_MAX_PAIRS     16384      /* (src, dst) counter entries                      */
#define TD_MESH_CG_DEPTH      16         /* cgroup ancestors searched for an identity       */
#define TD_MESH_SK_VIPS       4          /* (backend -> VIP) pairs remembered per socket    */
#define TD_MESH_EVENTS_SIZE   (256 * 1024)   /* ring buffer bytes                           */
#define TD_MESH_ID_UNKNOWN    0u
#define TD_MESH_MAX_SOCKS     65536      /* sockets in the redirect SOCKHASH                */
/*
 * Default bound for semantic 4 (no backpressure on redirected data): a socket stops redirecting
 * (its messages take the TCP path) while its peer holds more than this many redirected bytes
 * unread. Load-time knob of sk_msg (0 = unbounded, for tests that document the kernel).
 */
#define TD_MESH_REDIR_BUDGET  (4u << 20)

TD_STATIC_ASSERT((TD_MESH_SLOTS & (TD_MESH_SLOTS - 1)) == 0, "slots must be a power of 2");
TD_STATIC_ASSERT(TD_MESH_MAX_BACKENDS <= TD_MESH_SLOTS, "every backend needs a slot");

/* ---- enums -------------------------------------------------------------------------------- */
enum td_mesh_policy { TD_MESH_POLICY_DENY = 0, TD_MESH_POLICY_ALLOW = 1 };

/* td_mesh_svc.flags */
#define TD_MESH_SVC_F_SOCKMAP  0x1      /* opted in to socket-to-socket redirect              */

/*
 * Per-CPU counters (td_m_cnt). TD_M_DENY_* are connect()/sendmsg() calls refused (the caller
 * gets an error), TD_M_ERR_* are internal failures that did not change the verdict.
 */
enum td_mesh_counter {
	TD_M_CNT_CONNECT = 0,      /* connect() to a VIP translated to a backend                */
	TD_M_CNT_SENDMSG,          /* unconnected UDP datagram to a VIP translated              */
	TD_M_CNT_RESTORE_PEER,     /* getpeername() answered with the VIP                       */
	TD_M_CNT_RESTORE_RECV,     /* recvmsg() source rewritten to the VIP                     */
	TD_M_CNT_ALLOW_RULE,       /* permitted by an allow rule                                */
	TD_M_CNT_ALLOW_DEFAULT,    /* permitted by default_policy: allow                        */
	TD_M_DENY_POLICY,          /* no allow rule and default deny                            */
	TD_M_DENY_NO_BACKEND,      /* service has no healthy backend (ECONNREFUSED)             */
	TD_M_ERR_EVENT,            /* ring buffer full: denial counted but not reported         */
	TD_M_ERR_SK_STORAGE,       /* socket storage unavailable: VIP will not be restored      */
	TD_M_ERR_PAIR,             /* pair counter entry could not be created                   */
	/* sockops: SOCKHASH membership, decided once at establishment */
	TD_M_SOCK_JOIN_ACTIVE,     /* connecting socket joined td_m_socks (both services opted in) */
	TD_M_SOCK_JOIN_PASSIVE,    /* accepted socket joined: its connecting peer is a member     */
	TD_M_SOCK_SKIP_OPTOUT,     /* meshed connection, a service did not opt in: plain TCP      */
	TD_M_ERR_SOCK_UPDATE,      /* bpf_sock_hash_update failed: the socket stays plain TCP     */
	/* sk_msg: one verdict per sendmsg chunk of a member socket */
	TD_M_MSG_REDIRECT,         /* message redirected to the peer socket                       */
	TD_M_MSG_REDIRECT_BYTES,   /* bytes of those messages                                     */
	TD_M_MSG_PASS_NO_PEER,     /* peer not a member (remote, outside the mesh, closed): TCP   */
	TD_M_MSG_PASS_BUDGET,      /* switch to the TCP path: peer holds >= budget unread bytes   */
	TD_M_MSG_PASS_TCP,         /* message on the TCP path (after no_peer/budget/err_psock)    */
	TD_M_MSG_REARM,            /* back to redirect: TCP bytes all read, peer under budget     */
	TD_M_MSG_PASS_FOREIGN,     /* socket in td_m_socks without td's join mark: TCP            */
	TD_M_ERR_REDIRECT,         /* reserved: bpf_msg_redirect_hash refused (counted no_peer)   */
	TD_M_ERR_PSOCK,            /* peer's unread bytes not readable: switch to the TCP path    */
	TD_M_CNT_MAX
};

/* ---- map keys and values ------------------------------------------------------------------ */

/* td_m_svc value (key: struct td_vip_key from abi.h with proto TCP or UDP) */
struct td_mesh_svc {
	__u32 id;             /* identity, index into td_m_sel and td_m_names */
	__u32 flags;          /* TD_MESH_SVC_F_* */
};
TD_STATIC_ASSERT(sizeof(struct td_mesh_svc) == 8, "td_mesh_svc size");

/* one slot of a selection table: a healthy backend with weight > 0 */
struct td_mesh_be {
	union td_addr addr;   /* be */
	__u16 port;           /* be */
	__u8  family;         /* enum td_family */
	__u8  pad;
	__u32 index;          /* position of the backend in the service's config (counters, logs) */
};
TD_STATIC_ASSERT(sizeof(struct td_mesh_be) == 24, "td_mesh_be size");

/* td_m_allow key; port 0 = any port of dst */
struct td_mesh_allow_key {
	__u32 src;            /* identity (0 = unknown) */
	__u32 dst;            /* service id */
	__u16 port;           /* host order; 0 = any */
	__u16 pad;            /* must be zero */
};
TD_STATIC_ASSERT(sizeof(struct td_mesh_allow_key) == 12, "td_mesh_allow_key size");

/* td_m_conf[0] */
struct td_mesh_conf {
	__u32 default_policy; /* enum td_mesh_policy; the zeroed map denies */
	__u32 generation;     /* config generation that last wrote the mesh maps */
};
TD_STATIC_ASSERT(sizeof(struct td_mesh_conf) == 8, "td_mesh_conf size");

/* td_m_names value */
struct td_mesh_name {
	char  name[TD_NAME_LEN];  /* "" when the id is free */
	struct td_vip_key vip;
	__u32 flags;              /* TD_MESH_SVC_F_* */
};
TD_STATIC_ASSERT(sizeof(struct td_mesh_name) == 56, "td_mesh_name size");

/* td_m_pair key and value (per CPU: sum over CPUs) */
struct td_mesh_pair_key {
	__u32 src;            /* identity (0 = unknown) */
	__u32 dst;            /* service id */
};
TD_STATIC_ASSERT(sizeof(struct td_mesh_pair_key) == 8, "td_mesh_pair_key size");

struct td_mesh_pair_stats {
	__u64 connections;    /* connect() translated (TCP and connected UDP) */
	__u64 datagrams;      /* unconnected UDP datagrams translated */
	__u64 denials;        /* connect()/sendmsg() refused by policy */
	__u64 no_backend;     /* refused: no healthy backend */
	__u64 bytes_tx;       /* src -> dst payload: TCP bytes acked (sockops) + redirected (sk_msg) */
	__u64 bytes_rx;       /* dst -> src payload: TCP bytes received + redirected by the peer */
	__u64 srtt_us;        /* smoothed RTT of the last RTT sample on this CPU (sockops) */
};
TD_STATIC_ASSERT(sizeof(struct td_mesh_pair_stats) == 56, "td_mesh_pair_stats size");

/* one (backend -> VIP) translation remembered by a socket */
struct td_mesh_sk_vip {
	union td_addr backend;    /* be */
	union td_addr vip;        /* be */
	__u16 backend_port;       /* be */
	__u16 vip_port;           /* be */
	__u8  family;             /* enum td_family of both (v4-mapped sockets: TD_AF_INET) */
	__u8  pad[3];
};
TD_STATIC_ASSERT(sizeof(struct td_mesh_sk_vip) == 40, "td_mesh_sk_vip size");

/* td_mesh_sk.sm: redirect state of a socket (written by sockops and sk_msg only) */
#define TD_MESH_SM_JOINED   0x1   /* added to td_m_socks by sockops at establishment        */
#define TD_MESH_SM_PASSIVE  0x2   /* the accepted side (src/dst copied from the peer)        */
#define TD_MESH_SM_TCP      0x4   /* messages take the TCP path until the peer has read all  */
#define TD_MESH_SM_COUNT    0x8   /* connecting side of a meshed TCP connection: counts bytes */

/* td_m_sk value: per socket */
struct td_mesh_sk {
	struct td_mesh_sk_vip vips[TD_MESH_SK_VIPS];  /* [0]: the connect(); others: sendmsg */
	__u32 next;               /* round-robin slot for the next sendmsg translation */
	__u32 src;                /* identity of the connecting/sending cgroup */
	__u32 dst;                /* service id of the last translation */
	__u32 flags;              /* TD_MESH_SVC_F_* of that service */
	__u32 sm;                 /* TD_MESH_SM_* */
	__u32 pad;
	__u64 redir_bytes;        /* payload this socket redirected to its peer */
	__u64 peer_sk;            /* kernel address of the peer (last redirect target), 0 none */
	__u64 tcp_tx_seen;        /* bytes_acked already added to the pair's bytes_tx */
	__u64 tcp_rx_seen;        /* bytes_received already added to the pair's bytes_rx */
};
TD_STATIC_ASSERT(sizeof(struct td_mesh_sk) == 216, "td_mesh_sk size");

/*
 * td_m_socks key: a socket's own TCP 4-tuple. A v4-mapped IPv6 socket uses the IPv4 form so
 * that it meets an IPv4 peer. The peer of a socket is found under the reversed tuple.
 */
struct td_mesh_sock_key {
	union td_addr local;      /* be */
	union td_addr remote;     /* be */
	__u16 local_port;         /* host order */
	__u16 remote_port;        /* host order */
	__u8  family;             /* enum td_family */
	__u8  pad[3];             /* must be zero */
};
TD_STATIC_ASSERT(sizeof(struct td_mesh_sock_key) == 40, "td_mesh_sock_key size");

/*
 * td_m_join value, under the connecting member's own key: written when it joins, read (and
 * deleted) by the accepted side's PASSIVE_ESTABLISHED, which joins only when it finds one;
 * deleted when the connecting socket closes. sockops cannot hold a socket from td_m_socks.
 */
struct td_mesh_join {
	__u32 src;            /* identity of the connecting side */
	__u32 dst;            /* service id it connected to */
};
TD_STATIC_ASSERT(sizeof(struct td_mesh_join) == 8, "td_mesh_join size");

/* td_m_events record */
enum td_mesh_event_type { TD_MESH_EV_DENY = 1, TD_MESH_EV_NO_BACKEND = 2 };

struct td_mesh_event {
	__u64 ts_ns;          /* bpf_ktime_get_ns() */
	__u64 cgroup_id;      /* cgroup of the calling task */
	union td_addr vip;    /* be */
	__u32 pid;            /* tgid of the calling task */
	__u32 src;            /* identity (0 = unknown) */
	__u32 dst;            /* service id */
	__u16 port;           /* be: VIP port */
	__u8  family;         /* enum td_family */
	__u8  proto;          /* enum td_proto */
	__u8  type;           /* enum td_mesh_event_type */
	__u8  hook;           /* 0 connect, 1 sendmsg */
	__u8  pad[6];
	char  comm[16];       /* task command name */
};
TD_STATIC_ASSERT(sizeof(struct td_mesh_event) == 72, "td_mesh_event size");

#endif /* TD_MESH_H */

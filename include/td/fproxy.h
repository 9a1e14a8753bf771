/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* td transparent forward-proxy ABI: redirect table, original destinations, counters (one copy). */
#ifndef TD_FPROXY_H
#define TD_FPROXY_H

/*
 * Conventions are those of abi.h (fixed-width types, explicit padding, be = network byte order,
 * 16-byte addresses with IPv4 in the first 4 bytes and the rest zero, a size assert on every
 * struct). Every port in this header is be, so a sockaddr's sin_port/sin6_port is copied as is.
 *
 * Flow (bpf/fp_redir.bpf.c, attached with BPF_F_ALLOW_MULTI to each forward_proxy.transparent
 * cgroup):
 *  1. connect4/connect6 of a TCP socket: the caller's cgroup (or its deepest ancestor found)
 *     and the destination port are looked up in td_fp_redir; a hit rewrites the destination to
 *     the proxy's transparent listener and remembers the original one in the socket's storage
 *     (td_fp_sk). Never redirected: loopback destinations (so never the listener itself), UDP,
 *     a listener of the other family (IPv4 listener, native IPv6 destination).
 *  2. sockops TCP_CONNECT_CB (local port known, SYN not sent yet): the entry is published in
 *     td_fp_origdst under the client's own (local address, local port) and the listener port,
 *     which is exactly what the proxy sees on the accepted connection (peer, local port).
 *  3. sockops STATE_CB to TCP_CLOSE: the td_fp_origdst entry is deleted (LRU ages out the rest).
 *  4. getpeername4/6 of the client socket shows the original destination again.
 *
 * A v4-mapped IPv6 socket (::ffff:a.b.c.d) is handled as IPv4 everywhere: the keys and values
 * hold TD_AF_INET and the 4-byte address, as an AF_INET listener sees that peer.
 */
#include "td/abi.h"

/* ---- map names (also pin names under the bpffs folder; <= 15 characters) ------------------ */
#define TD_MAP_FP_REDIR    "td_fp_redir"   /* HASH td_fp_redir_key -> td_fp_target (userspace)  */
#define TD_MAP_FP_ORIGDST  "td_fp_origdst" /* LRU_HASH td_fp_peer_key -> td_fp_origdst (BPF)   */
#define TD_MAP_FP_SK       "td_fp_sk"      /* SK_STORAGE socket -> td_fp_sk (client side)       */
#define TD_MAP_FP_CNT      "td_fp_cnt"     /* PERCPU_ARRAY enum td_fp_counter -> u64            */

/* program pin names: prog_fp_connect4, prog_fp_connect6, prog_fp_getpeer4, prog_fp_getpeer6,
 * prog_fp_sockops; the BPF program (function) names are td_fp_<hook> */
#define TD_PIN_PROG_FP_PREFIX "prog_fp_"

/* ---- limits ------------------------------------------------------------------------------- */
#define TD_FP_REDIR_MAX     4096        /* cgroups x ports (64 x 64)                          */
#define TD_FP_ORIGDST_MAX   65536       /* live redirected connections remembered (LRU)       */
#define TD_FP_CG_DEPTH      16          /* cgroup ancestors searched (as the mesh)            */

/* td_fp_target.kind: which transparent listener (and so which protocol the proxy expects) */
enum td_fp_kind {
	TD_FP_KIND_HTTP = 1,            /* transparent.listen: plain HTTP (port 80 and the like)   */
	TD_FP_KIND_TLS = 2,             /* transparent.tls_listen: TLS, SNI read (443-like ports) */
};

/*
 * Per-CPU counters (td_fp_cnt): one per decision of the connect hook, then sockops/getpeername.
 * TD_FP_ERR_* are internal failures: the connection then goes where it asked, unproxied, or
 * (origdst) reaches the proxy without an entry and is closed by it.
 */
enum td_fp_counter {
	TD_FP_CNT_REDIRECT = 0,         /* connect() rewritten to a transparent listener          */
	TD_FP_PASS_NOT_TCP,             /* UDP (or other) socket: never redirected                */
	TD_FP_PASS_NO_RULE,             /* cgroup x port not in td_fp_redir                       */
	TD_FP_PASS_LOOPBACK,            /* destination is loopback (incl. the listener itself)    */
	TD_FP_PASS_FAMILY,              /* listener of another family than the destination        */
	TD_FP_CNT_PUBLISH,              /* TCP_CONNECT_CB: entry written to td_fp_origdst          */
	TD_FP_CNT_UNPUBLISH,            /* STATE_CB to CLOSE: entry deleted from td_fp_origdst    */
	TD_FP_CNT_RESTORE_PEER,         /* getpeername() answered with the original destination   */
	TD_FP_ERR_SK_STORAGE,           /* no socket storage: connect() left unredirected         */
	TD_FP_ERR_ORIGDST,              /* td_fp_origdst update failed: proxy will not find it    */
	TD_FP_CNT_MAX
};

/* ---- map keys and values ------------------------------------------------------------------ */

/* td_fp_redir key: one configured (cgroup, destination port) */
struct td_fp_redir_key {
	__u64 cgroup_id;      /* kernfs id of the cgroup2 folder (bpf_get_current_cgroup_id) */
	__u16 port;           /* be: destination port asked for at connect() */
	__u16 pad[3];         /* must be zero */
};
TD_STATIC_ASSERT(sizeof(struct td_fp_redir_key) == 16, "td_fp_redir_key size");

/* td_fp_redir value: where such connections go (a loopback listener of the proxy) */
struct td_fp_target {
	union td_addr addr;   /* be; never the any-address (userspace writes 127.0.0.1 / ::1) */
	__u16 port;           /* be */
	__u8  family;         /* enum td_family */
	__u8  kind;           /* enum td_fp_kind */
};
TD_STATIC_ASSERT(sizeof(struct td_fp_target) == 20, "td_fp_target size");

/*
 * td_fp_origdst key: the client socket's own address and port, i.e. the peer address of the
 * connection the proxy accepted (accept()/getpeername() on the proxy's side), and the
 * listener's port (getsockname() on the accepted socket). The listener port is part of the key
 * because the kernel lets two connecting sockets share a local port when their destinations
 * differ (one to the HTTP listener, one to the TLS listener).
 */
struct td_fp_peer_key {
	union td_addr addr;   /* be: client address = peer address of the accepted connection */
	__u16 port;           /* be: client port = peer port of the accepted connection */
	__u16 listen_port;    /* be: proxy listener port = local port of the accepted connection */
	__u8  family;         /* enum td_family (TD_AF_INET for v4-mapped) */
	__u8  pad[3];         /* must be zero */
};
TD_STATIC_ASSERT(sizeof(struct td_fp_peer_key) == 24, "td_fp_peer_key size");

/* td_fp_origdst value: the destination the client asked for before the redirect */
struct td_fp_origdst {
	union td_addr addr;   /* be */
	__u16 port;           /* be */
	__u8  family;         /* enum td_family (TD_AF_INET for v4-mapped) */
	__u8  kind;           /* enum td_fp_kind of the listener it was sent to */
	__u32 pid;            /* tgid that called connect() (logs) */
	__u64 cgroup_id;      /* cgroup of that task (logs, per-cgroup policy) */
};
TD_STATIC_ASSERT(sizeof(struct td_fp_origdst) == 32, "td_fp_origdst size");

/* td_fp_sk value (client socket storage; BPF only, userspace never reads it) */
#define TD_FP_SK_F_PUBLISHED 0x1       /* td_fp_origdst holds the entry under .self          */
struct td_fp_sk {
	struct td_fp_origdst dst;       /* original destination */
	struct td_fp_target to;         /* the listener it was sent to (getpeername match) */
	__u32 flags;                    /* TD_FP_SK_F_* */
	struct td_fp_peer_key self;     /* key used in td_fp_origdst once published */
};
TD_STATIC_ASSERT(sizeof(struct td_fp_sk) == 80, "td_fp_sk size");

#endif /* TD_FPROXY_H */

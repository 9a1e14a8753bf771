// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* cgroup hooks of the transparent forward proxy: TCP connect() to listed ports -> the proxy. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/fp_redir.h"

/*
 * A separate object from the mesh (sock_lb/sockops), attached with BPF_F_ALLOW_MULTI to each
 * forward_proxy.transparent cgroup, so the mesh's programs and maps are untouched and either
 * feature runs without the other. The kernel runs a child cgroup's programs before its
 * parent's: for a socket in a transparent cgroup below mesh.cgroup_root, the redirect is
 * decided first and the mesh then sees the loopback listener (not a VIP) and passes.
 * See include/td/fproxy.h for the flow and docs/transparent-proxy.md for the contract.
 */

/* ---- connect ------------------------------------------------------------------------------- */

SEC("cgroup/connect4")
int td_fp_connect4(struct bpf_sock_addr *ctx)
{
	union td_addr dst = {};
	struct td_fp_target *t;
	__u16 port;
	__u64 cgid;

	if (ctx->protocol != TD_PROTO_TCP) {
		td_fp_count(TD_FP_PASS_NOT_TCP);
		return 1;
	}
	dst.v4 = ctx->user_ip4;
	port = (__u16)ctx->user_port;
	t = td_fp_match(ctx->sk, &dst, port, TD_AF_INET, &cgid);
	if (!t || !td_fp_remember(ctx->sk, &dst, port, TD_AF_INET, t, cgid))
		return 1;
	ctx->user_ip4 = t->addr.v4;
	ctx->user_port = t->port;
	return 1;
}

SEC("cgroup/connect6")
int td_fp_connect6(struct bpf_sock_addr *ctx)
{
	union td_addr dst = {};
	struct td_fp_target *t;
	__u8 family;
	__u32 a[4];
	__u16 port;
	__u64 cgid;

	if (ctx->protocol != TD_PROTO_TCP) {
		td_fp_count(TD_FP_PASS_NOT_TCP);
		return 1;
	}
	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
	if (td_fp_v4mapped(a)) {
		dst.v4 = a[3];
		family = TD_AF_INET;
	} else {
		dst.v6[0] = a[0];
		dst.v6[1] = a[1];
		dst.v6[2] = a[2];
		dst.v6[3] = a[3];
		family = TD_AF_INET6;
	}
	port = (__u16)ctx->user_port;
	t = td_fp_match(ctx->sk, &dst, port, family, &cgid);
	if (!t || !td_fp_remember(ctx->sk, &dst, port, family, t, cgid))
		return 1;
	if (family == TD_AF_INET) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = TD_FP_V4MAPPED_W2;
		ctx->user_ip6[3] = t->addr.v4;
	} else {
		ctx->user_ip6[0] = t->addr.v6[0];
		ctx->user_ip6[1] = t->addr.v6[1];
		ctx->user_ip6[2] = t->addr.v6[2];
		ctx->user_ip6[3] = t->addr.v6[3];
	}
	ctx->user_port = t->port;
	return 1;
}

/* ---- getpeername: the client sees where it connected to, not the proxy ---------------------- */

SEC("cgroup/getpeername4")
int td_fp_getpeer4(struct bpf_sock_addr *ctx)
{
	struct td_fp_origdst o;
	union td_addr peer = {};

	peer.v4 = ctx->user_ip4;
	if (!td_fp_recall(ctx->sk, &peer, (__u16)ctx->user_port, TD_AF_INET, &o))
		return 1;
	ctx->user_ip4 = o.addr.v4;
	ctx->user_port = o.port;
	td_fp_count(TD_FP_CNT_RESTORE_PEER);
	return 1;
}

SEC("cgroup/getpeername6")
int td_fp_getpeer6(struct bpf_sock_addr *ctx)
{
	struct td_fp_origdst o;
	union td_addr peer = {};
	__u8 family;
	__u32 a[4];

	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
	if (td_fp_v4mapped(a)) {
		peer.v4 = a[3];
		family = TD_AF_INET;
	} else {
		peer.v6[0] = a[0];
		peer.v6[1] = a[1];
		peer.v6[2] = a[2];
		peer.v6[3] = a[3];
		family = TD_AF_INET6;
	}
	if (!td_fp_recall(ctx->sk, &peer, (__u16)ctx->user_port, family, &o))
		return 1;
	if (family == TD_AF_INET) {
		ctx->user_ip6[3] = o.addr.v4;
	} else {
		ctx->user_ip6[0] = o.addr.v6[0];
		ctx->user_ip6[1] = o.addr.v6[1];
		ctx->user_ip6[2] = o.addr.v6[2];
		ctx->user_ip6[3] = o.addr.v6[3];
	}
	ctx->user_port = o.port;
	td_fp_count(TD_FP_CNT_RESTORE_PEER);
	return 1;
}

/* ---- sockops: publish under the local port, unpublish at close ------------------------------ */

/* the socket's own address and port, normalised like the proxy's accept() sees them */
TD_INLINE void td_fp_self_key(const struct bpf_sock_ops *ops, const struct td_fp_sk *st,
			      struct td_fp_peer_key *k)
{
	__u32 a[4];

	__builtin_memset(k, 0, sizeof(*k));
	k->port = bpf_htons((__u16)ops->local_port);
	k->listen_port = st->to.port;
	if (ops->family == 2 /* AF_INET */) {
		k->addr.v4 = ops->local_ip4;
		k->family = TD_AF_INET;
		return;
	}
	a[0] = ops->local_ip6[0];
	a[1] = ops->local_ip6[1];
	a[2] = ops->local_ip6[2];
	a[3] = ops->local_ip6[3];
	if (td_fp_v4mapped(a)) {
		k->addr.v4 = a[3];
		k->family = TD_AF_INET;
	} else {
		k->addr.v6[0] = a[0];
		k->addr.v6[1] = a[1];
		k->addr.v6[2] = a[2];
		k->addr.v6[3] = a[3];
		k->family = TD_AF_INET6;
	}
}

TD_INLINE void td_fp_publish(struct bpf_sock_ops *ops)
{
	struct bpf_sock *sk = ops->sk;
	struct td_fp_sk *st;

	if (!sk)
		return;
	st = bpf_sk_storage_get(&td_fp_sk, sk, 0, 0);
	if (!st || !st->dst.family)
		return;            /* not redirected at connect() */
	td_fp_self_key(ops, st, &st->self);
	if (bpf_map_update_elem(&td_fp_origdst, &st->self, &st->dst, BPF_ANY)) {
		td_fp_count(TD_FP_ERR_ORIGDST);
		return;
	}
	st->flags |= TD_FP_SK_F_PUBLISHED;
	td_fp_count(TD_FP_CNT_PUBLISH);
	bpf_sock_ops_cb_flags_set(ops, ops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

TD_INLINE void td_fp_unpublish(struct bpf_sock_ops *ops)
{
	struct bpf_sock *sk = ops->sk;
	struct td_fp_sk *st;

	if (!sk)
		return;
	st = bpf_sk_storage_get(&td_fp_sk, sk, 0, 0);
	if (!st || !(st->flags & TD_FP_SK_F_PUBLISHED))
		return;
	st->flags &= ~TD_FP_SK_F_PUBLISHED;
	bpf_map_delete_elem(&td_fp_origdst, &st->self);
	td_fp_count(TD_FP_CNT_UNPUBLISH);
}

SEC("sockops")
int td_fp_sockops(struct bpf_sock_ops *ops)
{
	switch (ops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		td_fp_publish(ops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (ops->args[1] == BPF_TCP_CLOSE)
			td_fp_unpublish(ops);
		break;
	default:
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

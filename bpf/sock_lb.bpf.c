// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* cgroup socket hooks of the mesh: VIP -> backend at connect()/sendmsg(), policy, VIP restored. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/mesh.h"

/*
 * Per hook: connect4/6 (TCP and connected UDP) and sendmsg4/6 (unconnected UDP) translate a
 * mesh VIP to a backend or refuse; getpeername4/6 and recvmsg4/6 show the VIP again where the
 * socket remembers having been translated. A v4-mapped IPv6 destination (::ffff:a.b.c.d) is
 * looked up as the IPv4 VIP. Nothing happens to addresses that are not mesh VIPs.
 */

#define TD_V4MAPPED_W2 bpf_htonl(0x0000ffff)

TD_INLINE bool td_is_v4mapped(const __u32 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == TD_V4MAPPED_W2;
}

/* ---- IPv4 ---------------------------------------------------------------------------------- */

TD_INLINE int td_mesh_out4(struct bpf_sock_addr *ctx, __u8 proto, __u8 hook)
{
	struct td_vip_key key = {};
	struct td_mesh_svc svc;
	struct td_mesh_be be;
	__u32 src;
	int v;

	key.addr.v4 = ctx->user_ip4;
	key.port = (__u16)ctx->user_port;
	key.proto = proto;
	key.family = TD_AF_INET;
	v = td_mesh_decide(&key, hook, &be, &svc, &src);
	if (v == TD_MESH_PASS)
		return 1;
	if (v == TD_MESH_REFUSE)
		return 0;
	if (be.family != TD_AF_INET)
		return 1;     /* config validation prevents this; leave the VIP alone */
	ctx->user_ip4 = be.addr.v4;
	ctx->user_port = be.port;
	td_mesh_remember(ctx->sk, &key, &be, &svc, src, hook);
	return 1;
}

SEC("cgroup/connect4")
int td_m_connect4(struct bpf_sock_addr *ctx)
{
	__u32 proto = ctx->protocol;

	if (proto != TD_PROTO_TCP && proto != TD_PROTO_UDP)
		return 1;
	return td_mesh_out4(ctx, (__u8)proto, TD_MESH_HOOK_CONNECT);
}

SEC("cgroup/sendmsg4")
int td_m_sendmsg4(struct bpf_sock_addr *ctx)
{
	return td_mesh_out4(ctx, TD_PROTO_UDP, TD_MESH_HOOK_SENDMSG);
}

TD_INLINE void td_mesh_in4(struct bpf_sock_addr *ctx, __u32 counter)
{
	union td_addr peer = {}, vip;
	__u16 vport;

	peer.v4 = ctx->user_ip4;
	if (!td_mesh_recall(ctx->sk, &peer, (__u16)ctx->user_port, TD_AF_INET, &vip, &vport))
		return;
	ctx->user_ip4 = vip.v4;
	ctx->user_port = vport;
	td_mesh_count(counter);
}

SEC("cgroup/recvmsg4")
int td_m_recvmsg4(struct bpf_sock_addr *ctx)
{
	td_mesh_in4(ctx, TD_M_CNT_RESTORE_RECV);
	return 1;
}

SEC("cgroup/getpeername4")
int td_m_getpeer4(struct bpf_sock_addr *ctx)
{
	td_mesh_in4(ctx, TD_M_CNT_RESTORE_PEER);
	return 1;
}

/* ---- IPv6 (and v4-mapped) ------------------------------------------------------------------ */

TD_INLINE int td_mesh_out6(struct bpf_sock_addr *ctx, __u8 proto, __u8 hook)
{
	struct td_vip_key key = {};
	struct td_mesh_svc svc;
	struct td_mesh_be be;
	__u32 a[4], src;
	int v;

	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
	if (td_is_v4mapped(a)) {
		key.addr.v4 = a[3];
		key.family = TD_AF_INET;
	} else {
		key.addr.v6[0] = a[0];
		key.addr.v6[1] = a[1];
		key.addr.v6[2] = a[2];
		key.addr.v6[3] = a[3];
		key.family = TD_AF_INET6;
	}
	key.port = (__u16)ctx->user_port;
	key.proto = proto;
	v = td_mesh_decide(&key, hook, &be, &svc, &src);
	if (v == TD_MESH_PASS)
		return 1;
	if (v == TD_MESH_REFUSE)
		return 0;
	if (be.family != key.family)
		return 1;
	if (be.family == TD_AF_INET) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = TD_V4MAPPED_W2;
		ctx->user_ip6[3] = be.addr.v4;
	} else {
		ctx->user_ip6[0] = be.addr.v6[0];
		ctx->user_ip6[1] = be.addr.v6[1];
		ctx->user_ip6[2] = be.addr.v6[2];
		ctx->user_ip6[3] = be.addr.v6[3];
	}
	ctx->user_port = be.port;
	td_mesh_remember(ctx->sk, &key, &be, &svc, src, hook);
	return 1;
}

SEC("cgroup/connect6")
int td_m_connect6(struct bpf_sock_addr *ctx)
{
	__u32 proto = ctx->protocol;

	if (proto != TD_PROTO_TCP && proto != TD_PROTO_UDP)
		return 1;
	return td_mesh_out6(ctx, (__u8)proto, TD_MESH_HOOK_CONNECT);
}

SEC("cgroup/sendmsg6")
int td_m_sendmsg6(struct bpf_sock_addr *ctx)
{
	return td_mesh_out6(ctx, TD_PROTO_UDP, TD_MESH_HOOK_SENDMSG);
}

TD_INLINE void td_mesh_in6(struct bpf_sock_addr *ctx, __u32 counter)
{
	union td_addr peer = {}, vip;
	__u32 a[4];
	__u16 vport;

	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
	if (td_is_v4mapped(a)) {
		peer.v4 = a[3];
		if (!td_mesh_recall(ctx->sk, &peer, (__u16)ctx->user_port, TD_AF_INET, &vip,
				    &vport))
			return;
		ctx->user_ip6[3] = vip.v4;
	} else {
		peer.v6[0] = a[0];
		peer.v6[1] = a[1];
		peer.v6[2] = a[2];
		peer.v6[3] = a[3];
		if (!td_mesh_recall(ctx->sk, &peer, (__u16)ctx->user_port, TD_AF_INET6, &vip,
				    &vport))
			return;
		ctx->user_ip6[0] = vip.v6[0];
		ctx->user_ip6[1] = vip.v6[1];
		ctx->user_ip6[2] = vip.v6[2];
		ctx->user_ip6[3] = vip.v6[3];
	}
	ctx->user_port = vport;
	td_mesh_count(counter);
}

SEC("cgroup/recvmsg6")
int td_m_recvmsg6(struct bpf_sock_addr *ctx)
{
	td_mesh_in6(ctx, TD_M_CNT_RESTORE_RECV);
	return 1;
}

SEC("cgroup/getpeername6")
int td_m_getpeer6(struct bpf_sock_addr *ctx)
{
	td_mesh_in6(ctx, TD_M_CNT_RESTORE_PEER);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

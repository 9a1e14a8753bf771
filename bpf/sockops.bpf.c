// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* cgroup sockops of the mesh: SOCKHASH membership at establishment, pair bytes and smoothed RTT. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/sockmap.h"

/*
 * Attached to mesh.cgroup_root (BPF_F_ALLOW_MULTI), so it runs for TCP sockets of processes
 * in the mesh only. A socket translated at connect() (td_m_sk slot 0) is "meshed":
 *  - ACTIVE_ESTABLISHED: RTT and state callbacks are enabled for the pair counters; when the
 *    destination service and the caller's service both have sockmap: true, the socket joins
 *    td_m_socks (before connect() returns, so before any payload).
 *  - PASSIVE_ESTABLISHED (the accepted socket, before its first payload is queued): it joins
 *    when its connecting peer announced itself in td_m_join, which proves both ends are local
 *    mesh sockets of opted-in services.
 *  - RTT: srtt and the TCP bytes each way since the last sample go to td_m_pair[src, dst];
 *    STATE (to CLOSE): the last bytes.
 * No callback ever removes an entry: the kernel does when the socket closes. A later config
 * (sockmap: false) only changes what new connections do.
 */

TD_INLINE void td_sm_self_key(const struct bpf_sock_ops *ops, struct td_mesh_sock_key *k)
{
	__u32 l6[4], r6[4];

	l6[0] = ops->local_ip6[0];
	l6[1] = ops->local_ip6[1];
	l6[2] = ops->local_ip6[2];
	l6[3] = ops->local_ip6[3];
	r6[0] = ops->remote_ip6[0];
	r6[1] = ops->remote_ip6[1];
	r6[2] = ops->remote_ip6[2];
	r6[3] = ops->remote_ip6[3];
	td_sm_key_set(k, ops->family, l6, r6, ops->local_ip4, ops->remote_ip4,
		      (__u16)ops->local_port, (__u16)bpf_ntohl(ops->remote_port));
}

TD_INLINE bool td_sm_src_opted_in(__u32 src)
{
	struct td_mesh_name *nm;

	if (src == TD_MESH_ID_UNKNOWN)
		return false;
	nm = bpf_map_lookup_elem(&td_m_names, &src);
	return nm && (nm->flags & TD_MESH_SVC_F_SOCKMAP);
}

TD_INLINE bool td_sm_join(struct bpf_sock_ops *ops, struct td_mesh_sk *st,
			  const struct td_mesh_sock_key *k, __u32 counter)
{
	if (bpf_sock_hash_update(ops, &td_m_socks, (void *)k, BPF_NOEXIST)) {
		td_mesh_count(TD_M_ERR_SOCK_UPDATE);
		return false;
	}
	st->sm |= TD_MESH_SM_JOINED;
	td_mesh_count(counter);
	return true;
}

TD_INLINE void td_sm_active(struct bpf_sock_ops *ops)
{
	struct bpf_sock *sk = ops->sk;
	struct td_mesh_sock_key k;
	struct td_mesh_join j;
	struct td_mesh_sk *st;

	if (!sk)
		return;
	st = bpf_sk_storage_get(&td_m_sk, sk, 0, 0);
	if (!st || !st->vips[0].family)
		return;            /* not a connect() to a mesh VIP */
	st->sm |= TD_MESH_SM_COUNT;
	bpf_sock_ops_cb_flags_set(ops, ops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_RTT_CB_FLAG |
					       BPF_SOCK_OPS_STATE_CB_FLAG);
	if (!(st->flags & TD_MESH_SVC_F_SOCKMAP) || !td_sm_src_opted_in(st->src)) {
		td_mesh_count(TD_M_SOCK_SKIP_OPTOUT);
		return;
	}
	td_sm_self_key(ops, &k);
	/* announce first: the accepted side may establish as soon as our ACK leaves */
	j.src = st->src;
	j.dst = st->dst;
	bpf_map_update_elem(&td_m_join, &k, &j, BPF_ANY);
	if (!td_sm_join(ops, st, &k, TD_M_SOCK_JOIN_ACTIVE))
		bpf_map_delete_elem(&td_m_join, &k);
}

TD_INLINE void td_sm_passive(struct bpf_sock_ops *ops)
{
	struct td_mesh_sock_key k, pk;
	struct bpf_sock *sk = ops->sk;
	struct td_mesh_join *j;
	struct td_mesh_sk *st;
	__u32 src, dst;

	if (!sk)
		return;
	td_sm_self_key(ops, &k);
	td_sm_key_reverse(&k, &pk);
	j = bpf_map_lookup_elem(&td_m_join, &pk);
	if (!j)
		return;            /* the connecting side is not a member: plain TCP */
	src = j->src;
	dst = j->dst;
	bpf_map_delete_elem(&td_m_join, &pk);
	st = bpf_sk_storage_get(&td_m_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		td_mesh_count(TD_M_ERR_SK_STORAGE);
		return;
	}
	st->src = src;
	st->dst = dst;
	st->sm |= TD_MESH_SM_PASSIVE;
	td_sm_join(ops, st, &k, TD_M_SOCK_JOIN_PASSIVE);
}

/* TCP payload since the last call, and the RTT, into the pair counters (connecting side) */
TD_INLINE void td_sm_account(struct bpf_sock_ops *ops, bool rtt)
{
	struct td_mesh_pair_stats *ps;
	struct bpf_sock *sk = ops->sk;
	struct td_mesh_sk *st;
	__u64 acked, rcvd;

	if (!sk)
		return;
	st = bpf_sk_storage_get(&td_m_sk, sk, 0, 0);
	if (!st || !(st->sm & TD_MESH_SM_COUNT))
		return;
	ps = td_mesh_pair(st->src, st->dst);
	if (!ps)
		return;
	acked = ops->bytes_acked;
	rcvd = ops->bytes_received;
	if (acked > st->tcp_tx_seen) {
		ps->bytes_tx += acked - st->tcp_tx_seen;
		st->tcp_tx_seen = acked;
	}
	if (rcvd > st->tcp_rx_seen) {
		ps->bytes_rx += rcvd - st->tcp_rx_seen;
		st->tcp_rx_seen = rcvd;
	}
	if (rtt && ops->srtt_us)
		ps->srtt_us = ops->srtt_us >> 3;
}

SEC("sockops")
int td_m_sockops(struct bpf_sock_ops *ops)
{
	switch (ops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		td_sm_active(ops);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		td_sm_passive(ops);
		break;
	case BPF_SOCK_OPS_RTT_CB:
		td_sm_account(ops, true);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (ops->args[1] == BPF_TCP_CLOSE || ops->args[1] == BPF_TCP_CLOSE_WAIT ||
		    ops->args[1] == BPF_TCP_FIN_WAIT1)
			td_sm_account(ops, false);
		if (ops->args[1] == BPF_TCP_CLOSE) {
			struct td_mesh_sock_key k;

			td_sm_self_key(ops, &k);
			bpf_map_delete_elem(&td_m_join, &k);
		}
		break;
	default:
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

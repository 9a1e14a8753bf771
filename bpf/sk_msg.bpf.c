// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sk_msg of the mesh SOCKHASH: redirect a member's payload into its local peer's receive queue. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/sockmap.h"

/*
 * Runs for every sendmsg chunk of a socket in td_m_socks (sk_msg verdicts come before the data
 * is queued anywhere). A socket that joined at establishment redirects to the member under
 * the reversed 4-tuple (BPF_F_INGRESS); no such member: SK_PASS, the TCP path. After each
 * redirect the peer's unread redirected bytes are read; at td_redir_budget or more the socket
 * switches to the TCP path (which has backpressure) from its next message on. It comes back
 * to redirect only when every TCP byte it sent is acknowledged and read by the peer
 * (td_sm_tcp_drained), so bytes are always read in the order they were written, and the peer's
 * unread redirected bytes are below the budget again.
 */

/* bound of semantic 4: max redirected bytes unread by the peer (0 = unbounded, tests only) */
const volatile __u32 td_redir_budget = TD_MESH_REDIR_BUDGET;

TD_INLINE void td_sm_msg_key(const struct sk_msg_md *msg, struct td_mesh_sock_key *k)
{
	__u32 l6[4], r6[4];

	l6[0] = msg->local_ip6[0];
	l6[1] = msg->local_ip6[1];
	l6[2] = msg->local_ip6[2];
	l6[3] = msg->local_ip6[3];
	r6[0] = msg->remote_ip6[0];
	r6[1] = msg->remote_ip6[1];
	r6[2] = msg->remote_ip6[2];
	r6[3] = msg->remote_ip6[3];
	td_sm_key_set(k, msg->family, l6, r6, msg->local_ip4, msg->remote_ip4,
		      (__u16)msg->local_port, (__u16)bpf_ntohl(msg->remote_port));
}

TD_INLINE void td_sm_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&td_m_cnt, &idx);

	if (v)
		*v += n;
}

TD_INLINE void td_sm_bytes(const struct td_mesh_sk *st, __u32 size)
{
	struct td_mesh_pair_stats *ps = td_mesh_pair(st->src, st->dst);

	if (!ps)
		return;
	if (st->sm & TD_MESH_SM_PASSIVE)
		ps->bytes_rx += size;
	else
		ps->bytes_tx += size;
}

/*
 * Back from the TCP path to redirect: the peer has read every TCP byte (order) and holds less
 * than the budget of redirected bytes unread (the bound).
 */
TD_INLINE bool td_sm_may_rearm(struct sk_msg_md *msg, const struct td_mesh_sk *st, __u32 size)
{
	__u32 unread = 0;

	if (!td_sm_tcp_drained(msg->sk, st->peer_sk))
		return false;
	if (!td_redir_budget)
		return true;
	if (!td_sm_peer_unread(st->peer_sk, &unread))
		return false;
	return (__u64)unread + size < td_redir_budget;
}

SEC("sk_msg")
int td_m_msg(struct sk_msg_md *msg)
{
	struct td_mesh_sock_key self, peer_key;
	__u32 size = msg->size, unread = 0;
	struct td_mesh_sk *st;
	__u64 peer;

	st = bpf_sk_storage_get(&td_m_sk, msg->sk, 0, 0);
	if (!st || !(st->sm & TD_MESH_SM_JOINED)) {
		td_mesh_count(TD_M_MSG_PASS_FOREIGN);
		return SK_PASS;
	}
	if ((st->sm & TD_MESH_SM_TCP) && !td_sm_may_rearm(msg, st, size)) {
		td_mesh_count(TD_M_MSG_PASS_TCP);
		return SK_PASS;
	}
	td_sm_msg_key(msg, &self);
	td_sm_key_reverse(&self, &peer_key);
	if (bpf_msg_redirect_hash(msg, &td_m_socks, &peer_key, BPF_F_INGRESS) != SK_PASS) {
		/* peer not a member (remote, outside the mesh, closing) */
		st->sm |= TD_MESH_SM_TCP;
		td_mesh_count(TD_M_MSG_PASS_NO_PEER);
		return SK_PASS;
	}
	/* committed: this message is redirected */
	if (st->sm & TD_MESH_SM_TCP) {
		st->sm &= ~TD_MESH_SM_TCP;
		td_mesh_count(TD_M_MSG_REARM);
	}
	td_mesh_count(TD_M_MSG_REDIRECT);
	td_sm_add(TD_M_MSG_REDIRECT_BYTES, size);
	st->redir_bytes += size;
	td_sm_bytes(st, size);
	peer = td_sm_redir_target(msg);
	st->peer_sk = peer;
	if (!td_redir_budget)
		return SK_PASS;
	if (!peer || !td_sm_peer_unread(peer, &unread)) {
		st->sm |= TD_MESH_SM_TCP;          /* cannot see the bound: stop redirecting */
		td_mesh_count(TD_M_ERR_PSOCK);
		return SK_PASS;
	}
	if ((__u64)unread + size >= td_redir_budget) {
		st->sm |= TD_MESH_SM_TCP;
		td_mesh_count(TD_M_MSG_PASS_BUDGET);
	}
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

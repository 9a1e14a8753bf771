/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Mesh socket-to-socket redirect: the SOCKHASH, its family-aware keys, the peer's unread bytes. */
#ifndef TD_BPF_SOCKMAP_H
#define TD_BPF_SOCKMAP_H

/*
 * Contract (docs/mesh.md, "Socket-to-socket redirect"): sockops adds a socket to td_m_socks
 * only in its ESTABLISHED callback, before any payload, and nothing in td ever deletes an entry:
 * the kernel removes a socket when it closes. sk_msg redirects a member's message to the member
 * found under the reversed 4-tuple, or lets it take the TCP path; a socket goes back from the
 * TCP path to redirect only when every TCP byte it sent has been read by the peer, so the peer
 * always reads bytes in the order they were written.
 */
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "lib/mesh.h"

/* members: 4-tuple -> socket */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, TD_MESH_MAX_SOCKS);
	__type(key, struct td_mesh_sock_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_m_socks SEC(".maps");

/* connecting members waiting for their accepted peer (see struct td_mesh_join) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TD_MESH_MAX_SOCKS);
	__type(key, struct td_mesh_sock_key);
	__type(value, struct td_mesh_join);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_m_join SEC(".maps");

#define TD_SM_V4MAPPED_W2 bpf_htonl(0x0000ffff)

/*
 * The few kernel fields read (CO-RE: offsets come from the running kernel's BTF). sk_msg cannot
 * hold a socket looked up in a SOCKHASH (no bpf_sk_release for it), so the peer is known from
 * the kernel's own redirect target (sk_msg.sk_redir, set by bpf_msg_redirect_hash) and read
 * with bpf_probe_read_kernel (needs CAP_PERFMON at load; a stale address reads harmlessly).
 */
struct sk_msg___td {
	struct sock *sk_redir;
} __attribute__((preserve_access_index));

struct sock___td {
	void *sk_user_data;
} __attribute__((preserve_access_index));

struct sk_psock___td {
	__u32 msg_tot_len;
} __attribute__((preserve_access_index));

struct tcp_sock___td {
	__u32 rcv_nxt;
	__u32 copied_seq;
	__u32 snd_una;
	__u32 write_seq;
} __attribute__((preserve_access_index));

/* sk_user_data low bits (include/net/sock.h): the pointer is a psock when bit 2 is set */
#define TD_SK_USER_DATA_PSOCK    4ul
#define TD_SK_USER_DATA_PTRMASK  (~7ul)

TD_INLINE void td_sm_key_set(struct td_mesh_sock_key *k, __u32 family, const __u32 *l6,
			     const __u32 *r6, __u32 l4, __u32 r4, __u16 lport, __u16 rport)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->local_port = lport;
	k->remote_port = rport;
	if (family == 2 /* AF_INET */) {
		k->family = TD_AF_INET;
		k->local.v4 = l4;
		k->remote.v4 = r4;
		return;
	}
	if (l6[0] == 0 && l6[1] == 0 && l6[2] == TD_SM_V4MAPPED_W2 && r6[0] == 0 && r6[1] == 0 &&
	    r6[2] == TD_SM_V4MAPPED_W2) {
		k->family = TD_AF_INET;
		k->local.v4 = l6[3];
		k->remote.v4 = r6[3];
		return;
	}
	k->family = TD_AF_INET6;
	k->local.v6[0] = l6[0];
	k->local.v6[1] = l6[1];
	k->local.v6[2] = l6[2];
	k->local.v6[3] = l6[3];
	k->remote.v6[0] = r6[0];
	k->remote.v6[1] = r6[1];
	k->remote.v6[2] = r6[2];
	k->remote.v6[3] = r6[3];
}

/* the key of the other end of the connection whose own key is k */
TD_INLINE void td_sm_key_reverse(const struct td_mesh_sock_key *k, struct td_mesh_sock_key *r)
{
	__builtin_memset(r, 0, sizeof(*r));
	r->local = k->remote;
	r->remote = k->local;
	r->local_port = k->remote_port;
	r->remote_port = k->local_port;
	r->family = k->family;
}

/* the socket bpf_msg_redirect_hash chose for msg (kernel address, 0 if unreadable) */
TD_INLINE __u64 td_sm_redir_target(struct sk_msg_md *msg)
{
	__u64 base = (__u64)(unsigned long)msg, peer = 0;

	if (bpf_probe_read_kernel(&peer, sizeof(peer),
				  (void *)(unsigned long)(base +
					  bpf_core_field_offset(struct sk_msg___td, sk_redir))))
		return 0;
	return peer;
}

/*
 * Redirected bytes the peer (kernel address) has not read yet: its psock ingress queue, what
 * FIONREAD shows. false when they cannot be read.
 */
TD_INLINE bool td_sm_peer_unread(__u64 peer, __u32 *unread)
{
	struct sock___td *sk = (struct sock___td *)(unsigned long)peer;
	unsigned long ud = 0;
	__u32 v = 0;

	if (bpf_core_read(&ud, sizeof(ud), &sk->sk_user_data))
		return false;
	if (!(ud & TD_SK_USER_DATA_PSOCK))
		return false;
	ud &= TD_SK_USER_DATA_PTRMASK;
	if (bpf_core_read(&v, sizeof(v), &((struct sk_psock___td *)ud)->msg_tot_len))
		return false;
	*unread = v;
	return true;
}

/*
 * Every TCP byte sk sent has been acknowledged (so it sits in the peer's receive queue or was
 * read) and the peer has copied every byte it received to its reader: nothing sent on the TCP
 * path is still unread, so a redirected byte cannot overtake one. sk holds its socket lock
 * (sendmsg), so it sends nothing meanwhile; the peer's fields only move forward.
 */
TD_INLINE bool td_sm_tcp_drained(struct bpf_sock *sk, __u64 peer)
{
	struct tcp_sock___td *me = (struct tcp_sock___td *)bpf_skc_to_tcp_sock(sk);
	struct tcp_sock___td *pe = (struct tcp_sock___td *)(unsigned long)peer;
	__u32 rcv_nxt = 0, copied = 1;

	if (!me || !peer)
		return false;
	if (me->write_seq != me->snd_una)
		return false;
	if (bpf_core_read(&rcv_nxt, sizeof(rcv_nxt), &pe->rcv_nxt) ||
	    bpf_core_read(&copied, sizeof(copied), &pe->copied_seq))
		return false;
	return rcv_nxt == copied;
}

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Transparent forward-proxy logic for the cgroup hooks: match, redirect, restore, count. */
#ifndef TD_BPF_FP_REDIR_H
#define TD_BPF_FP_REDIR_H

/*
 * Contract: td_fp_match() is called by connect4/6 with the destination asked for, normalised
 * (v4-mapped -> TD_AF_INET). It returns the listener to use, or NULL after counting why the
 * connection goes where it asked. The caller rewrites the address and calls td_fp_remember().
 * The rule of a task is that of its own cgroup, else of its deepest ancestor that has one for
 * that port (same walk as the mesh's identity). Every decision is counted once in td_fp_cnt.
 */
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/fp_maps.h"

#ifndef TD_INLINE
#define TD_INLINE static __always_inline
#endif

#define TD_FP_V4MAPPED_W2 bpf_htonl(0x0000ffff)

TD_INLINE void td_fp_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&td_fp_cnt, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

TD_INLINE bool td_fp_v4mapped(const __u32 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == TD_FP_V4MAPPED_W2;
}

TD_INLINE bool td_fp_addr_eq(const union td_addr *a, const union td_addr *b)
{
	return a->v6[0] == b->v6[0] && a->v6[1] == b->v6[1] && a->v6[2] == b->v6[2] &&
	       a->v6[3] == b->v6[3];
}

/* 127/8, 0.0.0.0, ::1, :: : the host itself (its own services, and the listeners) */
TD_INLINE bool td_fp_local(const union td_addr *a, __u8 family)
{
	if (family == TD_AF_INET)
		return (a->v4 & bpf_htonl(0xff000000)) == bpf_htonl(0x7f000000) || a->v4 == 0;
	return a->v6[0] == 0 && a->v6[1] == 0 && a->v6[2] == 0 &&
	       (a->v6[3] == 0 || a->v6[3] == bpf_htonl(1));
}

/*
 * td_fp_redir entry of the calling task's cgroup (or deepest ancestor) for port. *cgid is the
 * task's own cgroup (reported to the proxy), not the one the rule names.
 */
TD_INLINE struct td_fp_target *td_fp_rule(__u16 port_be, __u64 *cgid)
{
	struct td_fp_redir_key k = { .port = port_be };
	struct td_fp_target *t, *found = NULL;
	__u64 cg = bpf_get_current_cgroup_id();
	int level;

	*cgid = cg;
	k.cgroup_id = cg;
	t = bpf_map_lookup_elem(&td_fp_redir, &k);
	if (t)
		return t;
	for (level = 1; level < TD_FP_CG_DEPTH; level++) {
		__u64 anc = bpf_get_current_ancestor_cgroup_id(level);

		if (!anc || anc == cg)
			break;
		k.cgroup_id = anc;
		t = bpf_map_lookup_elem(&td_fp_redir, &k);
		if (t)
			found = t;   /* deeper ancestors win */
	}
	return found;
}

/* forget an earlier redirect of a socket that connects again somewhere else */
TD_INLINE void td_fp_forget(struct bpf_sock *sk)
{
	struct td_fp_sk *st = bpf_sk_storage_get(&td_fp_sk, sk, 0, 0);

	if (st && !(st->flags & TD_FP_SK_F_PUBLISHED))
		st->dst.family = 0;
}

/*
 * The listener for a TCP connect() of the calling task to (dst, port_be) of family, or NULL.
 * *cgid receives the task's cgroup id.
 */
TD_INLINE struct td_fp_target *td_fp_match(struct bpf_sock *sk, const union td_addr *dst,
					   __u16 port_be, __u8 family, __u64 *cgid)
{
	struct td_fp_target *t;

	t = td_fp_rule(port_be, cgid);
	if (!t) {
		td_fp_count(TD_FP_PASS_NO_RULE);
		td_fp_forget(sk);
		return NULL;
	}
	if (td_fp_local(dst, family) ||
	    (t->family == family && t->port == port_be && td_fp_addr_eq(&t->addr, dst))) {
		td_fp_count(TD_FP_PASS_LOOPBACK);
		td_fp_forget(sk);
		return NULL;
	}
	if (t->family != family) {
		td_fp_count(TD_FP_PASS_FAMILY);
		td_fp_forget(sk);
		return NULL;
	}
	return t;
}

/*
 * Remember on sk what it asked for; false (counted) when there is no storage, and then the
 * caller leaves the destination alone: a redirect the proxy cannot resolve is worse than none.
 */
TD_INLINE bool td_fp_remember(struct bpf_sock *sk, const union td_addr *dst, __u16 port_be,
			      __u8 family, const struct td_fp_target *t, __u64 cgid)
{
	struct td_fp_sk *st;

	st = bpf_sk_storage_get(&td_fp_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		td_fp_count(TD_FP_ERR_SK_STORAGE);
		return false;
	}
	__builtin_memset(st, 0, sizeof(*st));
	st->dst.addr = *dst;
	st->dst.port = port_be;
	st->dst.family = family;
	st->dst.kind = t->kind;
	st->dst.pid = bpf_get_current_pid_tgid() >> 32;
	st->dst.cgroup_id = cgid;
	st->to = *t;
	td_fp_count(TD_FP_CNT_REDIRECT);
	return true;
}

/*
 * The original destination of sk if it was redirected and peer (port be) is its listener:
 * *orig receives it. family is that of the normalised peer.
 */
TD_INLINE bool td_fp_recall(struct bpf_sock *sk, const union td_addr *peer, __u16 port_be,
			    __u8 family, struct td_fp_origdst *orig)
{
	struct td_fp_sk *st = bpf_sk_storage_get(&td_fp_sk, sk, 0, 0);

	if (!st || !st->dst.family)
		return false;
	if (st->to.family != family || st->to.port != port_be || !td_fp_addr_eq(&st->to.addr, peer))
		return false;
	*orig = st->dst;
	return true;
}

#endif

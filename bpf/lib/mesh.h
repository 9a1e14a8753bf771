/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Mesh logic for the cgroup socket hooks: identity, policy, backend choice, VIP memory, counters. */
#ifndef TD_BPF_MESH_H
#define TD_BPF_MESH_H

/*
 * Contract: td_mesh_decide() is called with the destination a socket asked for (a td_vip_key).
 * Not a mesh VIP: TD_MESH_PASS, nothing is touched. A mesh VIP: the caller's identity is the
 * service of the deepest cgroup (of the calling task) found in td_m_cg, else 0 (unknown); the
 * pair is checked against td_m_allow (exact port, then port 0) and td_m_conf's default policy;
 * then a backend is drawn from the service's selection table. Refusals are counted by reason,
 * in the pair counters, and reported on td_m_events.
 */
#include <linux/bpf.h>
#include <linux/errno.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/mesh_maps.h"

#ifndef TD_INLINE
#define TD_INLINE static __always_inline
#endif

enum td_mesh_verdict { TD_MESH_PASS = 0, TD_MESH_GO, TD_MESH_REFUSE };
enum td_mesh_hook { TD_MESH_HOOK_CONNECT = 0, TD_MESH_HOOK_SENDMSG = 1 };

TD_INLINE void td_mesh_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&td_m_cnt, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* pair counters of (src, dst), created on first use */
TD_INLINE struct td_mesh_pair_stats *td_mesh_pair(__u32 src, __u32 dst)
{
	struct td_mesh_pair_key k = { .src = src, .dst = dst };
	struct td_mesh_pair_stats zero = {}, *s;

	s = bpf_map_lookup_elem(&td_m_pair, &k);
	if (s)
		return s;
	bpf_map_update_elem(&td_m_pair, &k, &zero, BPF_NOEXIST);
	s = bpf_map_lookup_elem(&td_m_pair, &k);
	if (!s)
		td_mesh_count(TD_M_ERR_PAIR);
	return s;
}

/* identity of the calling task: its cgroup or the deepest ancestor with one, else unknown */
TD_INLINE __u32 td_mesh_identity(__u64 *cgid)
{
	__u64 cg = bpf_get_current_cgroup_id();
	__u32 *id, found = TD_MESH_ID_UNKNOWN;
	int level;

	*cgid = cg;
	id = bpf_map_lookup_elem(&td_m_cg, &cg);
	if (id)
		return *id;
	for (level = 1; level < TD_MESH_CG_DEPTH; level++) {
		__u64 anc = bpf_get_current_ancestor_cgroup_id(level);

		if (!anc || anc == cg)
			break;
		id = bpf_map_lookup_elem(&td_m_cg, &anc);
		if (id)
			found = *id;
	}
	return found;
}

TD_INLINE bool td_mesh_allowed(__u32 src, __u32 dst, __u16 port_be)
{
	struct td_mesh_allow_key k = { .src = src, .dst = dst, .port = bpf_ntohs(port_be) };
	struct td_mesh_conf *conf;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(&td_m_allow, &k)) {
		td_mesh_count(TD_M_CNT_ALLOW_RULE);
		return true;
	}
	k.port = 0;
	if (bpf_map_lookup_elem(&td_m_allow, &k)) {
		td_mesh_count(TD_M_CNT_ALLOW_RULE);
		return true;
	}
	conf = bpf_map_lookup_elem(&td_m_conf, &zero);
	if (conf && conf->default_policy == TD_MESH_POLICY_ALLOW) {
		td_mesh_count(TD_M_CNT_ALLOW_DEFAULT);
		return true;
	}
	return false;
}

TD_INLINE void td_mesh_report(const struct td_vip_key *key, __u32 src, __u32 dst, __u64 cgid,
			      __u8 type, __u8 hook)
{
	struct td_mesh_event *e;

	e = bpf_ringbuf_reserve(&td_m_events, sizeof(*e), 0);
	if (!e) {
		td_mesh_count(TD_M_ERR_EVENT);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = cgid;
	e->vip = key->addr;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->src = src;
	e->dst = dst;
	e->port = key->port;
	e->family = key->family;
	e->proto = key->proto;
	e->type = type;
	e->hook = hook;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

/* a backend drawn at random from the service's selection table (NULL: none healthy) */
TD_INLINE struct td_mesh_be *td_mesh_pick(__u32 svc_id)
{
	struct td_mesh_be *be;
	__u32 slot;
	void *tbl;

	tbl = bpf_map_lookup_elem(&td_m_sel, &svc_id);
	if (!tbl)
		return NULL;
	slot = bpf_get_prandom_u32() & (TD_MESH_SLOTS - 1);
	be = bpf_map_lookup_elem(tbl, &slot);
	if (!be || !be->family)
		return NULL;
	return be;
}

/*
 * Decide for a socket asking for key. GO: *out is the backend, *svc_out and *src_out describe the
 * pair. REFUSE: the caller returns 0 (the syscall fails: EPERM for policy, ECONNREFUSED when no
 * backend is healthy). PASS: not a mesh VIP.
 */
TD_INLINE int td_mesh_decide(const struct td_vip_key *key, __u8 hook, struct td_mesh_be *out,
			     struct td_mesh_svc *svc_out, __u32 *src_out)
{
	struct td_mesh_pair_stats *ps;
	struct td_mesh_svc *svc;
	struct td_mesh_be *be;
	__u64 cgid;
	__u32 src;

	svc = bpf_map_lookup_elem(&td_m_svc, key);
	if (!svc)
		return TD_MESH_PASS;
	*svc_out = *svc;
	src = td_mesh_identity(&cgid);
	*src_out = src;
	ps = td_mesh_pair(src, svc_out->id);
	if (!td_mesh_allowed(src, svc_out->id, key->port)) {
		td_mesh_count(TD_M_DENY_POLICY);
		if (ps)
			__sync_fetch_and_add(&ps->denials, 1);
		td_mesh_report(key, src, svc_out->id, cgid, TD_MESH_EV_DENY, hook);
		return TD_MESH_REFUSE;
	}
	be = td_mesh_pick(svc_out->id);
	if (!be) {
		td_mesh_count(TD_M_DENY_NO_BACKEND);
		if (ps)
			__sync_fetch_and_add(&ps->no_backend, 1);
		td_mesh_report(key, src, svc_out->id, cgid, TD_MESH_EV_NO_BACKEND, hook);
		bpf_set_retval(-ECONNREFUSED);
		return TD_MESH_REFUSE;
	}
	*out = *be;
	if (hook == TD_MESH_HOOK_CONNECT) {
		td_mesh_count(TD_M_CNT_CONNECT);
		if (ps)
			__sync_fetch_and_add(&ps->connections, 1);
	} else {
		td_mesh_count(TD_M_CNT_SENDMSG);
		if (ps)
			__sync_fetch_and_add(&ps->datagrams, 1);
	}
	return TD_MESH_GO;
}

TD_INLINE bool td_mesh_addr_eq(const union td_addr *a, const union td_addr *b)
{
	return a->v6[0] == b->v6[0] && a->v6[1] == b->v6[1] && a->v6[2] == b->v6[2] &&
	       a->v6[3] == b->v6[3];
}

/*
 * Remember that sk reached be when it asked for key. connect: slot 0 (a reconnect replaces it);
 * sendmsg: one of the other slots, round robin, unless the pair is already remembered.
 */
TD_INLINE void td_mesh_remember(struct bpf_sock *sk, const struct td_vip_key *key,
				const struct td_mesh_be *be, const struct td_mesh_svc *svc,
				__u32 src, __u8 hook)
{
	struct td_mesh_sk_vip *v;
	struct td_mesh_sk *st;
	__u32 slot = 0;
	int i;

	st = bpf_sk_storage_get(&td_m_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		td_mesh_count(TD_M_ERR_SK_STORAGE);
		return;
	}
	if (hook == TD_MESH_HOOK_SENDMSG) {
#pragma unroll
		for (i = 1; i < TD_MESH_SK_VIPS; i++) {
			v = &st->vips[i];
			if (v->family == key->family && v->backend_port == be->port &&
			    v->vip_port == key->port && td_mesh_addr_eq(&v->backend, &be->addr) &&
			    td_mesh_addr_eq(&v->vip, &key->addr))
				return;
		}
		slot = st->next;
		if (slot >= TD_MESH_SK_VIPS - 1)
			slot = 0;
		st->next = slot + 1;
		slot += 1;
	}
	if (slot >= TD_MESH_SK_VIPS)
		return;
	v = &st->vips[slot];
	v->backend = be->addr;
	v->vip = key->addr;
	v->backend_port = be->port;
	v->vip_port = key->port;
	v->family = key->family;
	st->src = src;
	st->dst = svc->id;
	st->flags = svc->flags;
}

/*
 * The VIP that sk reached peer (address, port be) through, if any: *vip and *vport receive it.
 * family is that of the remembered translation (TD_AF_INET for v4-mapped sockets).
 */
TD_INLINE bool td_mesh_recall(struct bpf_sock *sk, const union td_addr *peer, __u16 port,
			      __u8 family, union td_addr *vip, __u16 *vport)
{
	struct td_mesh_sk_vip *v;
	struct td_mesh_sk *st;
	int i;

	st = bpf_sk_storage_get(&td_m_sk, sk, 0, 0);
	if (!st)
		return false;
#pragma unroll
	for (i = 0; i < TD_MESH_SK_VIPS; i++) {
		v = &st->vips[i];
		if (v->family == family && v->backend_port == port &&
		    td_mesh_addr_eq(&v->backend, peer)) {
			*vip = v->vip;
			*vport = v->vip_port;
			return true;
		}
	}
	return false;
}

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* State apply: make the pinned maps equal to a validated td_config as a diff, keeping ids stable. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "addr.h"
#include "log.h"
#include "maglev.h"
#include "state.h"

#define TD_PORTS_N 65536

void td_state_vip_key(const struct td_service_cfg *s, struct td_vip_key *key)
{
	memset(key, 0, sizeof(*key));
	key->addr = s->vip;
	key->port = htons(s->port);
	key->proto = s->proto;
	key->family = s->family;
}

size_t td_state_n_backends(const struct td_config *cfg)
{
	size_t i, n = 0;

	for (i = 0; i < cfg->n_services; i++)
		n += cfg->services[i].n_backends;
	return n;
}

static bool td_be_same_endpoint(const struct td_backend *be, const struct td_backend_cfg *b)
{
	return be->family == b->family && be->port == htons(b->port) &&
	       td_addr_equal(&be->addr, &b->addr);
}

int td_state_assign_ids(const struct td_svc_info *info, size_t n_info,
			const struct td_backend *bes, size_t n_be, const struct td_config *cfg,
			__u32 *svc_ids, __u32 *be_ids)
{
	bool *svc_taken = NULL, *be_taken = NULL;
	size_t i, j, id, k, pass;
	int err = 0;

	svc_taken = calloc(n_info ? n_info : 1, sizeof(*svc_taken));
	be_taken = calloc(n_be ? n_be : 1, sizeof(*be_taken));
	if (!svc_taken || !be_taken) {
		err = -ENOMEM;
		goto cleanup;
	}
	/* services: keep the id of an identical service, else the lowest id never in use */
	for (i = 0; i < cfg->n_services; i++) {
		const struct td_service_cfg *s = &cfg->services[i];
		struct td_vip_key key;

		td_state_vip_key(s, &key);
		svc_ids[i] = TD_BACKEND_NONE;
		for (id = 0; id < n_info; id++) {
			if (!info[id].in_use || svc_taken[id] ||
			    strncmp(info[id].name, s->name, TD_NAME_LEN) ||
			    memcmp(&info[id].vip, &key, sizeof(key)))
				continue;
			svc_ids[i] = id;
			svc_taken[id] = true;
			break;
		}
	}
	for (i = 0; i < cfg->n_services; i++) {
		if (svc_ids[i] != TD_BACKEND_NONE)
			continue;
		for (id = 0; id < n_info; id++)
			if (!info[id].in_use && !svc_taken[id])
				break;
		if (id == n_info) {
			err = -ENOSPC;
			goto cleanup;
		}
		svc_ids[i] = id;
		svc_taken[id] = true;
	}
	/* backends: same service + endpoint keeps its id; else never used ids, then inactive */
	for (i = 0, k = 0; i < cfg->n_services; i++) {
		for (j = 0; j < cfg->services[i].n_backends; j++, k++) {
			be_ids[k] = TD_BACKEND_NONE;
			for (id = 0; id < n_be; id++) {
				if (be_taken[id] || !bes[id].family || bes[id].svc_id != svc_ids[i] ||
				    !td_be_same_endpoint(&bes[id], &cfg->services[i].backends[j]))
					continue;
				be_ids[k] = id;
				be_taken[id] = true;
				break;
			}
		}
	}
	for (k = 0; k < td_state_n_backends(cfg); k++) {
		if (be_ids[k] != TD_BACKEND_NONE)
			continue;
		for (pass = 0; pass < 2 && be_ids[k] == TD_BACKEND_NONE; pass++) {
			for (id = 0; id < n_be; id++) {
				if (be_taken[id])
					continue;
				if (pass == 0 ? bes[id].family != 0 : (bes[id].flags & TD_BE_F_ACTIVE))
					continue;
				be_ids[k] = id;
				be_taken[id] = true;
				break;
			}
		}
		if (be_ids[k] == TD_BACKEND_NONE) {
			err = -ENOSPC;
			goto cleanup;
		}
	}
cleanup:
	free(be_taken);
	free(svc_taken);
	return err;
}

void td_state_ports(const struct td_config *cfg, __u8 *ports)
{
	size_t i, j;

	memset(ports, 0, TD_PORTS_N);
	for (i = 0; i < cfg->n_services; i++) {
		const struct td_service_cfg *s = &cfg->services[i];

		ports[s->port] |= TD_PORT_F_VIP;
		if (s->mode != TD_MODE_NAT)
			continue;
		for (j = 0; j < s->n_backends; j++)
			ports[s->backends[j].port] |= TD_PORT_F_BACKEND;
	}
}

void td_state_free(struct td_state *st)
{
	free(st->be_ids);
	free(st->svc_ids);
	memset(st, 0, sizeof(*st));
}

/* zero one slot of a per-CPU stats map (a new owner must not inherit counters) */
static void td_stats_zero(int fd, __u32 id)
{
	int ncpus = libbpf_num_possible_cpus();
	void *zero;

	if (ncpus <= 0)
		return;
	zero = calloc(ncpus, sizeof(struct td_traffic_stats));
	if (!zero)
		return;
	bpf_map_update_elem(fd, &id, zero, BPF_ANY);
	free(zero);
}

/* Build a service's ring into a new inner map; returns its fd or -errno. */
static int td_ring_create(const struct td_service_cfg *s, const __u32 *ids, __u32 m)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_INNER_MAP);
	LIBBPF_OPTS(bpf_map_batch_opts, bo, .elem_flags = 0, .flags = 0);
	struct td_maglev_backend *mb = NULL;
	char (*keys)[TD_ENDPOINTSTRLEN] = NULL;
	__u32 *ring = NULL, *idx = NULL, count, i;
	int fd = -1, err = 0;

	mb = calloc(s->n_backends ? s->n_backends : 1, sizeof(*mb));
	keys = calloc(s->n_backends ? s->n_backends : 1, sizeof(*keys));
	ring = calloc(m, sizeof(*ring));
	idx = calloc(m, sizeof(*idx));
	if (!mb || !keys || !ring || !idx) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < s->n_backends; i++) {
		td_endpoint_format(&s->backends[i].addr, s->backends[i].family, s->backends[i].port,
				   keys[i], sizeof(keys[i]));
		mb[i].key = keys[i];
		mb[i].id = ids[i];
		mb[i].weight = s->backends[i].weight;
	}
	err = td_maglev_build(mb, s->n_backends, ring, m);
	if (err)
		goto cleanup;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "td_ring", sizeof(__u32), sizeof(__u32), m, &mo);
	if (fd < 0) {
		err = -errno;
		goto cleanup;
	}
	for (i = 0; i < m; i++)
		idx[i] = i;
	count = m;
	if (bpf_map_update_batch(fd, idx, ring, &count, &bo)) {
		for (i = 0; i < m; i++) {
			if (bpf_map_update_elem(fd, &i, &ring[i], BPF_ANY)) {
				err = -errno;
				goto cleanup;
			}
		}
	}
cleanup:
	if (err && fd >= 0) {
		close(fd);
		fd = -1;
	}
	free(idx);
	free(ring);
	free(keys);
	free(mb);
	return err ? err : fd;
}

/* Delete every td_ct/td_rnat entry of the services flagged in gone[]; returns the count. */
static long td_ct_purge(const struct td_maps *m, const bool *gone)
{
	struct td_flow_key key, next, *keys = NULL;
	size_t n = 0, cap = 0, i;
	int fds[2] = { m->ct, m->rnat };
	long total = 0;
	int f;

	for (f = 0; f < 2; f++) {
		void *prev = NULL;

		n = 0;
		while (bpf_map_get_next_key(fds[f], prev, &next) == 0) {
			__u32 svc_id;
			bool hit;

			if (f == 0) {
				struct td_ct v;

				hit = !bpf_map_lookup_elem(fds[f], &next, &v);
				svc_id = v.svc_id;
			} else {
				struct td_rnat v;

				hit = !bpf_map_lookup_elem(fds[f], &next, &v);
				svc_id = v.svc_id;
			}
			if (hit && svc_id < TD_MAX_SERVICES && gone[svc_id]) {
				if (n == cap) {
					size_t ncap = cap ? cap * 2 : 256;
					struct td_flow_key *nk = realloc(keys, ncap * sizeof(*nk));

					if (!nk)
						break;
					keys = nk;
					cap = ncap;
				}
				keys[n++] = next;
			}
			key = next;
			prev = &key;
		}
		for (i = 0; i < n; i++)
			if (!bpf_map_delete_elem(fds[f], &keys[i]))
				total++;
	}
	free(keys);
	return total;
}

void td_state_plan_free(struct td_state_plan *p)
{
	free(p->svc_ids);
	free(p->be_ids);
	free(p->change);
	free(p->gone);
	memset(p, 0, sizeof(*p));
}

int td_state_plan(const struct td_state_view *v, const struct td_config *cfg,
		  struct td_state_plan *p)
{
	size_t n_be = td_state_n_backends(cfg), i, j, k;
	__u32 *n_active = NULL;
	bool *kept = NULL;
	__u32 id;
	int err = 0;

	memset(p, 0, sizeof(*p));
	p->svc_ids = calloc(cfg->n_services + 1, sizeof(*p->svc_ids));
	p->be_ids = calloc(n_be + 1, sizeof(*p->be_ids));
	p->change = calloc(cfg->n_services + 1, sizeof(*p->change));
	p->gone = calloc(v->n_info + 1, sizeof(*p->gone));
	n_active = calloc(v->n_info + 1, sizeof(*n_active));
	kept = calloc(v->n_info + 1, sizeof(*kept));
	if (!p->svc_ids || !p->be_ids || !p->change || !p->gone || !n_active || !kept) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (id = 0; id < v->n_info; id++)
		if (v->info[id].in_use && v->info[id].generation > p->generation)
			p->generation = v->info[id].generation;
	p->generation++;
	for (id = 0; id < v->n_be; id++)
		if ((v->bes[id].flags & TD_BE_F_ACTIVE) && v->bes[id].svc_id < v->n_info)
			n_active[v->bes[id].svc_id]++;
	err = td_state_assign_ids(v->info, v->n_info, v->bes, v->n_be, cfg, p->svc_ids, p->be_ids);
	if (err)
		goto cleanup;

	for (i = 0, k = 0; i < cfg->n_services; i++) {
		const struct td_service_cfg *s = &cfg->services[i];
		__u32 sid = p->svc_ids[i];
		bool same;

		kept[sid] = true;
		if (!v->info[sid].in_use) {
			p->change[i] = TD_SVC_NEW;
			p->n_new++;
			k += s->n_backends;
			continue;
		}
		same = v->has_svc[sid] && v->has_ring[sid] && v->svc[sid].id == sid &&
		       v->svc[sid].ring_size == cfg->maglev_size && v->svc[sid].mode == s->mode &&
		       n_active[sid] == s->n_backends;
		for (j = 0; j < s->n_backends; j++, k++) {
			const struct td_backend *old = &v->bes[p->be_ids[k]];
			const struct td_backend_cfg *b = &s->backends[j];

			if (!(old->flags & TD_BE_F_ACTIVE) || old->svc_id != sid ||
			    !td_be_same_endpoint(old, b) || old->weight != b->weight)
				same = false;
		}
		p->change[i] = same ? TD_SVC_SAME : TD_SVC_CHANGED;
		if (same)
			p->n_same++;
		else
			p->n_changed++;
	}
	for (id = 0; id < v->n_info; id++)
		if (v->info[id].in_use && !kept[id])
			p->gone[p->n_gone++] = id;
cleanup:
	free(kept);
	free(n_active);
	if (err)
		td_state_plan_free(p);
	return err;
}

/* Read back what is pinned: the view of a diff. Arrays are owned by the caller's buffers. */
struct td_state_read {
	struct td_svc_info *info;
	struct td_backend *bes;
	struct td_svc *svc;
	bool *has_svc;
	bool *has_ring;
	__u8 *ports;
};

static void td_state_read_free(struct td_state_read *r)
{
	free(r->info);
	free(r->bes);
	free(r->svc);
	free(r->has_svc);
	free(r->has_ring);
	free(r->ports);
	memset(r, 0, sizeof(*r));
}

static int td_state_read(const struct td_maps *m, struct td_state_read *r, struct td_state_view *v)
{
	__u32 id, inner;

	memset(r, 0, sizeof(*r));
	r->info = calloc(TD_MAX_SERVICES, sizeof(*r->info));
	r->bes = calloc(TD_MAX_BACKENDS, sizeof(*r->bes));
	r->svc = calloc(TD_MAX_SERVICES, sizeof(*r->svc));
	r->has_svc = calloc(TD_MAX_SERVICES, sizeof(*r->has_svc));
	r->has_ring = calloc(TD_MAX_SERVICES, sizeof(*r->has_ring));
	r->ports = calloc(TD_PORTS_N, 1);
	if (!r->info || !r->bes || !r->svc || !r->has_svc || !r->has_ring || !r->ports) {
		td_state_read_free(r);
		return -ENOMEM;
	}
	for (id = 0; id < TD_MAX_SERVICES; id++) {
		if (bpf_map_lookup_elem(m->svc_info, &id, &r->info[id]))
			memset(&r->info[id], 0, sizeof(r->info[id]));
		if (!r->info[id].in_use)
			continue;
		r->has_svc[id] = !bpf_map_lookup_elem(m->svc, &r->info[id].vip, &r->svc[id]);
		r->has_ring[id] = !bpf_map_lookup_elem(m->maglev, &id, &inner);
	}
	for (id = 0; id < TD_MAX_BACKENDS; id++)
		if (bpf_map_lookup_elem(m->backends, &id, &r->bes[id]))
			memset(&r->bes[id], 0, sizeof(r->bes[id]));
	for (id = 0; id < TD_PORTS_N; id++)
		if (bpf_map_lookup_elem(m->ports, &id, &r->ports[id]))
			r->ports[id] = 0;
	v->info = r->info;
	v->n_info = TD_MAX_SERVICES;
	v->bes = r->bes;
	v->n_be = TD_MAX_BACKENDS;
	v->svc = r->svc;
	v->has_svc = r->has_svc;
	v->has_ring = r->has_ring;
	return 0;
}

int td_state_apply(const struct td_maps *m, const struct td_config *cfg, struct td_state *st)
{
	return td_state_apply_flags(m, cfg, NULL, st);
}

int td_state_apply_flags(const struct td_maps *m, const struct td_config *cfg,
			 const __u8 *be_flags, struct td_state *st)
{
	struct td_state_read r = {};
	struct td_state_view v = {};
	struct td_state_plan p = {};
	__u8 *new_ports = NULL;
	bool *svc_gone = NULL, *be_keep = NULL;
	size_t n_be_cfg = td_state_n_backends(cfg), i, j, k;
	struct td_vip_addr va, va_next;
	void *prev = NULL;
	long purged = 0;
	__u32 id;
	int err, fd;

	err = td_state_read(m, &r, &v);
	if (err) {
		td_err("state apply: out of memory");
		goto cleanup;
	}
	err = td_state_plan(&v, cfg, &p);
	if (err) {
		td_err("state apply: %s", err == -ENOSPC ? "out of service or backend ids" :
			strerror(-err));
		goto cleanup;
	}
	new_ports = calloc(TD_PORTS_N, 1);
	svc_gone = calloc(TD_MAX_SERVICES, sizeof(bool));
	be_keep = calloc(TD_MAX_BACKENDS, sizeof(bool));
	if (!new_ports || !svc_gone || !be_keep) {
		err = -ENOMEM;
		td_err("state apply: out of memory");
		goto cleanup;
	}
	for (k = 0; k < n_be_cfg; k++)
		be_keep[p.be_ids[k]] = true;
	for (i = 0; i < p.n_gone; i++)
		svc_gone[p.gone[i]] = true;

	/* 1. ports: add the new bits first (a new VIP must pass the pre-filter) */
	td_state_ports(cfg, new_ports);
	for (i = 0; i < TD_PORTS_N; i++) {
		__u32 port = i;
		__u8 val = r.ports[i] | new_ports[i];

		if (val != r.ports[i])
			bpf_map_update_elem(m->ports, &port, &val, BPF_ANY);
	}

	/* 2. removed services stop matching first (unless their key is reused right away) */
	for (i = 0; i < p.n_gone; i++) {
		bool reused = false;

		id = p.gone[i];
		for (j = 0; j < cfg->n_services && !reused; j++) {
			struct td_vip_key key;

			td_state_vip_key(&cfg->services[j], &key);
			reused = !memcmp(&key, &r.info[id].vip, sizeof(key));
		}
		if (!reused)
			bpf_map_delete_elem(m->svc, &r.info[id].vip);
	}

	/* 3. vips: counts per address */
	for (i = 0; i < cfg->n_services; i++) {
		__u32 cnt = 0, old = 0;

		memset(&va, 0, sizeof(va));
		va.addr = cfg->services[i].vip;
		va.family = cfg->services[i].family;
		for (j = 0; j < cfg->n_services; j++)
			if (cfg->services[j].family == va.family &&
			    td_addr_equal(&cfg->services[j].vip, &va.addr))
				cnt++;
		if (bpf_map_lookup_elem(m->vips, &va, &old) || old != cnt) {
			if (bpf_map_update_elem(m->vips, &va, &cnt, BPF_ANY)) {
				err = -errno;
				td_err("state apply: cannot update td_vips: %s", strerror(-err));
				goto cleanup;
			}
		}
	}

	/* 4. backends and rings, service by service; unchanged services only get their info */
	for (i = 0, k = 0; i < cfg->n_services; i++) {
		const struct td_service_cfg *s = &cfg->services[i];
		struct td_svc sv = { .id = p.svc_ids[i], .mode = s->mode,
				     .ring_size = cfg->maglev_size };
		struct td_svc_info si = {};
		struct td_vip_key key;
		__u32 sid = p.svc_ids[i];

		td_state_vip_key(s, &key);
		if (p.change[i] == TD_SVC_NEW)
			td_stats_zero(m->svc_stats, sid);
		for (j = 0; j < s->n_backends; j++, k++) {
			const struct td_backend_cfg *b = &s->backends[j];
			struct td_backend *old = &r.bes[p.be_ids[k]];
			struct td_backend nb = {};
			bool kept = old->family && old->svc_id == sid && td_be_same_endpoint(old, b);

			nb.addr = b->addr;
			nb.port = htons(b->port);
			nb.family = b->family;
			nb.svc_id = sid;
			nb.weight = b->weight;
			nb.flags = TD_BE_F_ACTIVE;
			if (be_flags)
				nb.flags |= be_flags[k] & TD_STATE_BE_INFO_FLAGS;
			if (kept && (old->flags & TD_BE_F_NEXTHOP)) {
				nb.flags |= TD_BE_F_NEXTHOP;
				memcpy(nb.dmac, old->dmac, sizeof(nb.dmac));
				memcpy(nb.smac, old->smac, sizeof(nb.smac));
				nb.ifindex = old->ifindex;
			}
			if (!kept)
				td_stats_zero(m->be_stats, p.be_ids[k]);
			if (memcmp(&nb, old, sizeof(nb)) &&
			    bpf_map_update_elem(m->backends, &p.be_ids[k], &nb, BPF_ANY)) {
				err = -errno;
				td_err("state apply: cannot write backend %u: %s", p.be_ids[k],
				       strerror(-err));
				goto cleanup;
			}
			*old = nb;
		}
		if (p.change[i] != TD_SVC_SAME) {
			fd = td_ring_create(s, &p.be_ids[k - s->n_backends], cfg->maglev_size);
			if (fd < 0) {
				err = fd;
				td_err("state apply: cannot build Maglev ring of %s: %s", s->name,
				       strerror(-err));
				goto cleanup;
			}
			/* one update: packets see the old ring or the new one, never a mix */
			err = bpf_map_update_elem(m->maglev, &sid, &fd, BPF_ANY) ? -errno : 0;
			close(fd);
			if (err) {
				td_err("state apply: cannot swap Maglev ring of %s: %s", s->name,
				       strerror(-err));
				goto cleanup;
			}
			if (bpf_map_update_elem(m->svc, &key, &sv, BPF_ANY)) {
				err = -errno;
				td_err("state apply: cannot write service %s: %s", s->name,
				       strerror(-err));
				goto cleanup;
			}
		}
		snprintf(si.name, sizeof(si.name), "%s", s->name);
		si.vip = key;
		si.mode = s->mode;
		si.in_use = 1;
		si.n_backends = s->n_backends;
		si.generation = p.generation;
		if (bpf_map_update_elem(m->svc_info, &sid, &si, BPF_ANY)) {
			err = -errno;
			td_err("state apply: cannot write td_svc_info: %s", strerror(-err));
			goto cleanup;
		}
	}

	/* 5. removed backends: inactive, so their flows re-hash */
	for (id = 0; id < TD_MAX_BACKENDS; id++) {
		if (be_keep[id] || !(r.bes[id].flags & TD_BE_F_ACTIVE))
			continue;
		r.bes[id].flags &= ~(TD_BE_F_ACTIVE | TD_BE_F_NEXTHOP | TD_STATE_BE_INFO_FLAGS);
		bpf_map_update_elem(m->backends, &id, &r.bes[id], BPF_ANY);
	}

	/* 6. removed services: slots and conntrack */
	for (i = 0; i < p.n_gone; i++) {
		struct td_svc_info zero = {};

		id = p.gone[i];
		bpf_map_delete_elem(m->maglev, &id);
		bpf_map_update_elem(m->svc_info, &id, &zero, BPF_ANY);
	}
	if (p.n_gone)
		purged = td_ct_purge(m, svc_gone);

	/* 7. vips no longer used, then the final port bits */
	while (bpf_map_get_next_key(m->vips, prev, &va_next) == 0) {
		bool used = false;

		for (i = 0; i < cfg->n_services && !used; i++)
			used = cfg->services[i].family == va_next.family &&
			       td_addr_equal(&cfg->services[i].vip, &va_next.addr);
		if (!used && !bpf_map_delete_elem(m->vips, &va_next)) {
			prev = NULL;   /* restart: the deleted key cannot be a cursor */
			continue;
		}
		va = va_next;
		prev = &va;
	}
	for (i = 0; i < TD_PORTS_N; i++) {
		__u32 port = i;

		/* the slot now holds old | new; only bits of removed services must go */
		if ((__u8)(r.ports[i] | new_ports[i]) != new_ports[i])
			bpf_map_update_elem(m->ports, &port, &new_ports[i], BPF_ANY);
	}

	td_debug("state apply: generation %u, %zu services (%zu same, %zu rebuilt, %zu new, "
		 "%zu removed), %zu backends", p.generation, cfg->n_services, p.n_same,
		 p.n_changed, p.n_new, p.n_gone, n_be_cfg);
	td_state_free(st);
	st->generation = p.generation;
	st->n_services = cfg->n_services;
	st->n_backends = n_be_cfg;
	st->be_ids = p.be_ids;
	st->svc_ids = p.svc_ids;
	p.be_ids = NULL;
	p.svc_ids = NULL;
	st->svc_same = p.n_same;
	st->svc_changed = p.n_changed;
	st->svc_added = p.n_new;
	st->svc_removed = p.n_gone;
	st->ct_flushed = purged;
cleanup:
	free(be_keep);
	free(svc_gone);
	free(new_ports);
	td_state_plan_free(&p);
	td_state_read_free(&r);
	return err;
}

/* ---- runtime view ------------------------------------------------------------------------ */

static const struct td_service_cfg *td_cfg_service(const struct td_config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->n_services; i++)
		if (!strncmp(cfg->services[i].name, name, TD_NAME_LEN))
			return &cfg->services[i];
	return NULL;
}

static bool td_be_cfg_is(const struct td_backend_cfg *b, const union td_addr *addr, __u8 family,
			 __u16 port)
{
	return b->family == family && b->port == port && td_addr_equal(&b->addr, addr);
}

static const struct td_backend_cfg *td_cfg_backend(const struct td_service_cfg *s,
						   const union td_addr *addr, __u8 family,
						   __u16 port)
{
	size_t j;

	for (j = 0; j < s->n_backends; j++)
		if (td_be_cfg_is(&s->backends[j], addr, family, port))
			return &s->backends[j];
	return NULL;
}

static struct td_override *td_ovr_find(const struct td_overrides *ovr, const char *service,
				       const union td_addr *addr, __u8 family, __u16 port)
{
	size_t i;

	for (i = 0; i < ovr->n; i++) {
		struct td_override *o = &ovr->v[i];

		if (!strncmp(o->service, service, TD_NAME_LEN) && o->family == family &&
		    o->port == port && td_addr_equal(&o->addr, addr))
			return o;
	}
	return NULL;
}

const struct td_override *td_overrides_find(const struct td_overrides *ovr, const char *service,
					    const union td_addr *addr, __u8 family, __u16 port)
{
	return td_ovr_find(ovr, service, addr, family, port);
}

void td_overrides_free(struct td_overrides *ovr)
{
	free(ovr->v);
	ovr->v = NULL;
	ovr->n = 0;
}

static void td_ovr_del(struct td_overrides *ovr, struct td_override *o)
{
	size_t i = (size_t)(o - ovr->v);

	memmove(&ovr->v[i], &ovr->v[i + 1], (ovr->n - i - 1) * sizeof(*o));
	ovr->n--;
}

static size_t td_ovr_n_added(const struct td_overrides *ovr)
{
	size_t i, n = 0;

	for (i = 0; i < ovr->n; i++)
		n += ovr->v[i].op == TD_OVR_ADD;
	return n;
}

int td_overrides_change(struct td_overrides *ovr, const struct td_config *file, int op,
			const char *service, const union td_addr *addr, __u8 family, __u16 port,
			__u16 weight, char *msg, size_t msglen)
{
	const struct td_service_cfg *s = td_cfg_service(file, service);
	const struct td_backend_cfg *fb;
	struct td_override *o, *nv;
	char ep[TD_ENDPOINTSTRLEN];
	bool in_view;

	td_endpoint_format(addr, family, port, ep, sizeof(ep));
	msg[0] = '\0';
	if (!s) {
		snprintf(msg, msglen, "unknown service '%.*s'", TD_NAME_LEN, service);
		return -ENOENT;
	}
	fb = td_cfg_backend(s, addr, family, port);
	o = td_ovr_find(ovr, s->name, addr, family, port);
	/* in the runtime view: in the file and not removed, or added at runtime */
	in_view = (fb && !(o && o->op == TD_OVR_REMOVE)) || (o && o->op == TD_OVR_ADD);

	if (op != TD_OVR_ADD && !in_view) {
		snprintf(msg, msglen, "service '%s' has no backend %s", s->name, ep);
		return -ENOENT;
	}
	switch (op) {
	case 0: /* undrain */
		if (!o || o->op != TD_OVR_DRAIN) {
			snprintf(msg, msglen, "backend %s of service '%s' is not drained", ep,
				 s->name);
			return -EALREADY;
		}
		td_ovr_del(ovr, o);
		return 0;
	case TD_OVR_DRAIN:
		if (o && o->op == TD_OVR_DRAIN) {
			snprintf(msg, msglen, "backend %s of service '%s' is already drained", ep,
				 s->name);
			return -EALREADY;
		}
		if (o && o->op == TD_OVR_ADD) {
			/* a runtime-added backend is drained by giving it weight 0 */
			if (!o->weight) {
				snprintf(msg, msglen, "backend %s of service '%s' already has weight 0",
					 ep, s->name);
				return -EALREADY;
			}
			o->weight = 0;
			return 0;
		}
		break;
	case TD_OVR_REMOVE:
		if (o && o->op == TD_OVR_ADD) {
			td_ovr_del(ovr, o);
			return 0;
		}
		if (o) {   /* drained file backend: the removal replaces the drain */
			o->op = TD_OVR_REMOVE;
			return 0;
		}
		break;
	case TD_OVR_ADD:
		if (in_view) {
			snprintf(msg, msglen, "service '%s' already has backend %s", s->name, ep);
			return -EEXIST;
		}
		if (family != s->family) {
			snprintf(msg, msglen, "backend %s is IPv%u but the VIP of service '%s' is IPv%u",
				 ep, family, s->name, s->family);
			return -EINVAL;
		}
		if (s->mode == TD_MODE_DSR && port != s->port) {
			snprintf(msg, msglen, "mode dsr cannot change the port: backend port %u "
				 "differs from service port %u", port, s->port);
			return -EINVAL;
		}
		if (o) {   /* removed file backend comes back, with the weight given now */
			if (fb->weight == weight) {
				td_ovr_del(ovr, o);
			} else {
				o->op = TD_OVR_ADD;   /* the file entry is dropped, this one added */
				o->weight = weight;
			}
			return 0;
		}
		if (td_state_n_backends(file) + td_ovr_n_added(ovr) >= TD_MAX_BACKENDS) {
			snprintf(msg, msglen, "too many backends (more than %d in total)",
				 TD_MAX_BACKENDS);
			return -EINVAL;
		}
		break;
	default:
		snprintf(msg, msglen, "unknown override operation %d", op);
		return -EINVAL;
	}
	nv = realloc(ovr->v, (ovr->n + 1) * sizeof(*nv));
	if (!nv) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	ovr->v = nv;
	o = &ovr->v[ovr->n++];
	memset(o, 0, sizeof(*o));
	o->op = op;
	o->family = family;
	o->port = port;
	o->weight = weight;
	o->addr = *addr;
	snprintf(o->service, sizeof(o->service), "%s", s->name);
	return 0;
}

int td_state_runtime(const struct td_config *file, const struct td_overrides *ovr,
		     td_be_down_fn down, void *arg, struct td_config *out, size_t *n_failopen)
{
	return td_state_runtime_flags(file, ovr, down, arg, out, NULL, n_failopen);
}

int td_state_runtime_flags(const struct td_config *file, const struct td_overrides *ovr,
			   td_be_down_fn down, void *arg, struct td_config *out, __u8 **be_flags,
			   size_t *n_failopen)
{
	struct td_config c = {};
	__u8 *flags = NULL, *fl;
	size_t i, j, k, n, nf = 0, failopen = 0;
	int err = 0;

	/* scalars only: the runtime view has no interfaces' or other sections' pointers shared
	 * with file (td_config_free of the view must never free what file owns) */
	memcpy(c.path, file->path, sizeof(c.path));
	memcpy(c.bpffs, file->bpffs, sizeof(c.bpffs));
	memcpy(c.admin_socket, file->admin_socket, sizeof(c.admin_socket));
	memcpy(c.metrics_listen, file->metrics_listen, sizeof(c.metrics_listen));
	c.maglev_size = file->maglev_size;
	c.conntrack_size = file->conntrack_size;
	if (file->n_ifaces) {
		c.ifaces = calloc(file->n_ifaces, sizeof(*c.ifaces));
		if (!c.ifaces) {
			err = -ENOMEM;
			goto cleanup;
		}
		memcpy(c.ifaces, file->ifaces, file->n_ifaces * sizeof(*c.ifaces));
		c.n_ifaces = file->n_ifaces;
	}
	c.services = calloc(file->n_services + 1, sizeof(*c.services));
	if (be_flags)
		flags = calloc(td_state_n_backends(file) + ovr->n + 1, sizeof(*flags));
	if (!c.services || (be_flags && !flags)) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < file->n_services; i++) {
		const struct td_service_cfg *fs = &file->services[i];
		struct td_service_cfg *s = &c.services[i];
		__u64 w_view = 0, w_health = 0;

		*s = *fs;
		s->backends = calloc(fs->n_backends + ovr->n + 1, sizeof(*s->backends));
		s->n_backends = 0;
		c.n_services = i + 1;
		if (!s->backends) {
			err = -ENOMEM;
			goto cleanup;
		}
		fl = flags ? flags + nf : NULL;
		for (j = 0; j < fs->n_backends; j++) {
			const struct td_backend_cfg *b = &fs->backends[j];
			const struct td_override *o = td_ovr_find(ovr, fs->name, &b->addr,
								  b->family, b->port);

			if (o && (o->op == TD_OVR_REMOVE || o->op == TD_OVR_ADD))
				continue;   /* removed (or replaced by the added entry below) */
			s->backends[s->n_backends] = *b;
			if (o && o->op == TD_OVR_DRAIN) {
				s->backends[s->n_backends].weight = 0;
				if (fl)
					fl[s->n_backends] |= TD_BE_F_DRAINED;
			}
			s->n_backends++;
		}
		for (k = 0; k < ovr->n; k++) {
			const struct td_override *o = &ovr->v[k];
			struct td_backend_cfg *b;

			if (o->op != TD_OVR_ADD || strncmp(o->service, fs->name, TD_NAME_LEN))
				continue;
			if (fl)   /* added at runtime, or a file backend re-weighted */
				fl[s->n_backends] |= TD_BE_F_OVERRIDE;
			b = &s->backends[s->n_backends++];
			memset(b, 0, sizeof(*b));
			b->addr = o->addr;
			b->family = o->family;
			b->port = o->port;
			b->weight = o->weight;
		}
		nf += s->n_backends;
		/* health: down backends get weight 0, unless that empties the service */
		n = s->n_backends;
		for (j = 0; j < n; j++) {
			w_view += s->backends[j].weight;
			if (!down || !down(arg, s, &s->backends[j]))
				w_health += s->backends[j].weight;
		}
		if (down && w_view && !w_health) {
			failopen++;
			continue;
		}
		for (j = 0; down && j < n; j++) {
			if (down(arg, s, &s->backends[j])) {
				s->backends[j].weight = 0;
				if (fl)
					fl[j] |= TD_BE_F_DOWN;
			}
		}
	}
	if (n_failopen)
		*n_failopen = failopen;
	if (be_flags) {
		*be_flags = flags;
		flags = NULL;
	}
	*out = c;
	memset(&c, 0, sizeof(c));
cleanup:
	free(flags);
	td_config_free(&c);
	return err;
}

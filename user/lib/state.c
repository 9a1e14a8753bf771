/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* State apply: make the pinned maps equal to a validated td_config, keeping ids stable. */
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

static size_t td_cfg_n_backends(const struct td_config *cfg)
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
	for (k = 0; k < td_cfg_n_backends(cfg); k++) {
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

int td_state_apply(const struct td_maps *m, const struct td_config *cfg, struct td_state *st)
{
	struct td_svc_info *info = NULL;
	struct td_backend *bes = NULL;
	__u32 *svc_ids = NULL, *be_ids = NULL, *old_active = NULL;
	__u8 *old_ports = NULL, *new_ports = NULL;
	bool *svc_keep = NULL, *svc_gone = NULL, *be_keep = NULL;
	size_t n_be_cfg = td_cfg_n_backends(cfg), i, j, k;
	__u32 id, gen = 0, rings = 0, n_gone = 0;
	struct td_vip_addr va, va_next;
	void *prev = NULL;
	int err = 0, fd;

	info = calloc(TD_MAX_SERVICES, sizeof(*info));
	bes = calloc(TD_MAX_BACKENDS, sizeof(*bes));
	svc_ids = calloc(cfg->n_services + 1, sizeof(*svc_ids));
	be_ids = calloc(n_be_cfg + 1, sizeof(*be_ids));
	old_active = calloc(TD_MAX_SERVICES, sizeof(*old_active));
	old_ports = calloc(TD_PORTS_N, 1);
	new_ports = calloc(TD_PORTS_N, 1);
	svc_keep = calloc(TD_MAX_SERVICES, sizeof(bool));
	svc_gone = calloc(TD_MAX_SERVICES, sizeof(bool));
	be_keep = calloc(TD_MAX_BACKENDS, sizeof(bool));
	if (!info || !bes || !svc_ids || !be_ids || !old_active || !old_ports || !new_ports ||
	    !svc_keep || !svc_gone || !be_keep) {
		err = -ENOMEM;
		td_err("state apply: out of memory");
		goto cleanup;
	}

	/* 1. read back what is there (a restarted agent adopts it) */
	for (id = 0; id < TD_MAX_SERVICES; id++) {
		if (bpf_map_lookup_elem(m->svc_info, &id, &info[id]))
			memset(&info[id], 0, sizeof(info[id]));
		if (info[id].in_use && info[id].generation > gen)
			gen = info[id].generation;
	}
	for (id = 0; id < TD_MAX_BACKENDS; id++) {
		if (bpf_map_lookup_elem(m->backends, &id, &bes[id]))
			memset(&bes[id], 0, sizeof(bes[id]));
		if ((bes[id].flags & TD_BE_F_ACTIVE) && bes[id].svc_id < TD_MAX_SERVICES)
			old_active[bes[id].svc_id]++;
	}
	for (i = 0; i < TD_PORTS_N; i++) {
		__u32 port = i;

		if (bpf_map_lookup_elem(m->ports, &port, &old_ports[i]))
			old_ports[i] = 0;
	}
	gen++;

	err = td_state_assign_ids(info, TD_MAX_SERVICES, bes, TD_MAX_BACKENDS, cfg, svc_ids,
				  be_ids);
	if (err) {
		td_err("state apply: out of %s ids", err == -ENOSPC ? "service or backend" : "");
		goto cleanup;
	}
	for (i = 0; i < cfg->n_services; i++)
		svc_keep[svc_ids[i]] = true;
	for (k = 0; k < n_be_cfg; k++)
		be_keep[be_ids[k]] = true;
	for (id = 0; id < TD_MAX_SERVICES; id++)
		if (info[id].in_use && !svc_keep[id]) {
			svc_gone[id] = true;
			n_gone++;
		}

	/* 2. ports: add the new bits first (a new VIP must pass the pre-filter) */
	td_state_ports(cfg, new_ports);
	for (i = 0; i < TD_PORTS_N; i++) {
		__u32 port = i;
		__u8 v = old_ports[i] | new_ports[i];

		if (v != old_ports[i])
			bpf_map_update_elem(m->ports, &port, &v, BPF_ANY);
	}

	/* 3. removed services stop matching first (unless their key is reused right away) */
	for (id = 0; id < TD_MAX_SERVICES; id++) {
		bool reused = false;

		if (!svc_gone[id])
			continue;
		for (i = 0; i < cfg->n_services && !reused; i++) {
			struct td_vip_key key;

			td_state_vip_key(&cfg->services[i], &key);
			reused = !memcmp(&key, &info[id].vip, sizeof(key));
		}
		if (!reused)
			bpf_map_delete_elem(m->svc, &info[id].vip);
	}

	/* 4. vips: counts per address */
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

	/* 5. backends and rings, service by service */
	for (i = 0, k = 0; i < cfg->n_services; i++) {
		const struct td_service_cfg *s = &cfg->services[i];
		struct td_svc sv = { .id = svc_ids[i], .mode = s->mode, .ring_size = cfg->maglev_size };
		struct td_svc old_sv;
		struct td_svc_info si = {};
		struct td_vip_key key;
		bool same = info[svc_ids[i]].in_use && old_active[svc_ids[i]] == s->n_backends;
		__u32 inner_id, sid = svc_ids[i];

		td_state_vip_key(s, &key);
		if (!info[sid].in_use) {
			td_stats_zero(m->svc_stats, sid);
			same = false;
		}
		for (j = 0; j < s->n_backends; j++, k++) {
			const struct td_backend_cfg *b = &s->backends[j];
			struct td_backend *old = &bes[be_ids[k]];
			struct td_backend nb = {};
			bool kept = old->family && old->svc_id == sid && td_be_same_endpoint(old, b);

			nb.addr = b->addr;
			nb.port = htons(b->port);
			nb.family = b->family;
			nb.svc_id = sid;
			nb.weight = b->weight;
			nb.flags = TD_BE_F_ACTIVE;
			if (kept && (old->flags & TD_BE_F_NEXTHOP)) {
				nb.flags |= TD_BE_F_NEXTHOP;
				memcpy(nb.dmac, old->dmac, sizeof(nb.dmac));
				memcpy(nb.smac, old->smac, sizeof(nb.smac));
				nb.ifindex = old->ifindex;
			}
			if (!kept)
				td_stats_zero(m->be_stats, be_ids[k]);
			if (!kept || !(old->flags & TD_BE_F_ACTIVE) || old->weight != b->weight)
				same = false;
			if (memcmp(&nb, old, sizeof(nb)) &&
			    bpf_map_update_elem(m->backends, &be_ids[k], &nb, BPF_ANY)) {
				err = -errno;
				td_err("state apply: cannot write backend %u: %s", be_ids[k],
				       strerror(-err));
				goto cleanup;
			}
			bes[be_ids[k]] = nb;
		}
		if (bpf_map_lookup_elem(m->svc, &key, &old_sv) || old_sv.id != sid ||
		    old_sv.ring_size != cfg->maglev_size || old_sv.mode != s->mode)
			same = false;
		if (bpf_map_lookup_elem(m->maglev, &sid, &inner_id))
			same = false;
		if (!same) {
			fd = td_ring_create(s, &be_ids[k - s->n_backends], cfg->maglev_size);
			if (fd < 0) {
				err = fd;
				td_err("state apply: cannot build Maglev ring of %s: %s", s->name,
				       strerror(-err));
				goto cleanup;
			}
			err = bpf_map_update_elem(m->maglev, &sid, &fd, BPF_ANY) ? -errno : 0;
			close(fd);
			if (err) {
				td_err("state apply: cannot swap Maglev ring of %s: %s", s->name,
				       strerror(-err));
				goto cleanup;
			}
			rings++;
		}
		if (bpf_map_update_elem(m->svc, &key, &sv, BPF_ANY)) {
			err = -errno;
			td_err("state apply: cannot write service %s: %s", s->name, strerror(-err));
			goto cleanup;
		}
		snprintf(si.name, sizeof(si.name), "%s", s->name);
		si.vip = key;
		si.mode = s->mode;
		si.in_use = 1;
		si.n_backends = s->n_backends;
		si.generation = gen;
		if (bpf_map_update_elem(m->svc_info, &sid, &si, BPF_ANY)) {
			err = -errno;
			td_err("state apply: cannot write td_svc_info: %s", strerror(-err));
			goto cleanup;
		}
	}

	/* 6. removed backends: inactive, so their flows re-hash */
	for (id = 0; id < TD_MAX_BACKENDS; id++) {
		if (be_keep[id] || !(bes[id].flags & TD_BE_F_ACTIVE))
			continue;
		bes[id].flags &= ~(TD_BE_F_ACTIVE | TD_BE_F_NEXTHOP);
		bpf_map_update_elem(m->backends, &id, &bes[id], BPF_ANY);
	}

	/* 7. removed services: slots and conntrack */
	for (id = 0; id < TD_MAX_SERVICES; id++) {
		struct td_svc_info zero = {};

		if (!svc_gone[id])
			continue;
		bpf_map_delete_elem(m->maglev, &id);
		bpf_map_update_elem(m->svc_info, &id, &zero, BPF_ANY);
	}
	if (n_gone) {
		long purged = td_ct_purge(m, svc_gone);

		td_info("removed %u service(s), %ld conntrack entries", n_gone, purged);
	}

	/* 8. vips no longer used, then the final port bits */
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
		if ((__u8)(old_ports[i] | new_ports[i]) != new_ports[i])
			bpf_map_update_elem(m->ports, &port, &new_ports[i], BPF_ANY);
	}

	td_debug("state apply: generation %u, %zu services, %zu backends, %u rings rebuilt", gen,
		 cfg->n_services, n_be_cfg, rings);
	td_state_free(st);
	st->generation = gen;
	st->n_services = cfg->n_services;
	st->n_backends = n_be_cfg;
	st->be_ids = be_ids;
	be_ids = NULL;
cleanup:
	free(be_keep);
	free(svc_gone);
	free(svc_keep);
	free(new_ports);
	free(old_ports);
	free(old_active);
	free(be_ids);
	free(svc_ids);
	free(bes);
	free(info);
	return err;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Datapath statistics: read the service, backend and counter maps into one plain, CPU-summed snapshot. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "mesh.h"
#include "names.h"
#include "stats.h"

/* Check that fd is a map of the expected shape; returns its max_entries (capped) or -errno. */
static long td_stats_map_check(int fd, const char *name, __u32 type, __u32 value_size,
			       __u32 cap)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int err;

	memset(&info, 0, sizeof(info));
	if (fd < 0) {
		td_err("stats: map %s is not open", name);
		return -EBADF;
	}
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err) {
		err = -errno;
		td_err("stats: map %s: %s", name, strerror(-err));
		return err;
	}
	if (info.type != type || info.key_size != sizeof(__u32) || info.value_size != value_size) {
		td_err("stats: map %s has type %u key %u value %u, expected type %u key 4 value %u "
		       "(datapath built from another ABI?)", name, info.type, info.key_size,
		       info.value_size, type, value_size);
		return -EINVAL;
	}
	return info.max_entries < cap ? (long)info.max_entries : (long)cap;
}

/*
 * Read entries 0..n-1 of an ARRAY map into vals (n * vsize bytes): one batch lookup when the
 * kernel supports it for the map, else one lookup per entry. Missing entries stay zero.
 */
static int td_stats_read_array(int fd, void *vals, size_t vsize, __u32 n)
{
	__u32 *keys = NULL, out_batch = 0, count = n, i;
	char *tmp = NULL;
	int err = 0;

	memset(vals, 0, (size_t)n * vsize);
	if (!n)
		return 0;
	keys = calloc(n, sizeof(*keys));
	tmp = calloc(n, vsize);
	if (!keys || !tmp) {
		err = -ENOMEM;
		goto cleanup;
	}
	err = bpf_map_lookup_batch(fd, NULL, &out_batch, keys, tmp, &count, NULL);
	if ((!err || err == -ENOENT) && count <= n) {
		for (i = 0; i < count; i++)
			if (keys[i] < n)
				memcpy((char *)vals + (size_t)keys[i] * vsize,
				       tmp + (size_t)i * vsize, vsize);
		if (count == n || err == -ENOENT) {
			err = 0;
			goto cleanup;
		}
	}
	/* no batch support (or a short batch): one entry at a time */
	err = 0;
	for (i = 0; i < n; i++)
		if (bpf_map_lookup_elem(fd, &i, (char *)vals + (size_t)i * vsize))
			memset((char *)vals + (size_t)i * vsize, 0, vsize);
cleanup:
	free(tmp);
	free(keys);
	return err;
}

/* Sum one td_traffic_stats entry over CPUs (pc: ncpus entries of scratch). 0 when missing. */
static void td_stats_sum_traffic(int fd, __u32 id, struct td_traffic_stats *pc, int ncpus,
				 __u64 *packets, __u64 *bytes, __u64 *new_flows)
{
	int c;

	*packets = *bytes = *new_flows = 0;
	if (bpf_map_lookup_elem(fd, &id, pc))
		return;
	for (c = 0; c < ncpus; c++) {
		*packets += pc[c].packets;
		*bytes += pc[c].bytes;
		*new_flows += pc[c].new_flows;
	}
}

void td_stats_free(struct td_stats_snapshot *snap)
{
	if (!snap)
		return;
	free(snap->services);
	free(snap->backends);
	memset(snap, 0, sizeof(*snap));
}

int td_stats_read(const struct td_maps *m, struct td_stats_snapshot *snap)
{
	struct td_traffic_stats *pc = NULL;
	struct td_svc_info *info = NULL;
	struct td_backend *bes = NULL;
	long n_info, n_be, n_cnt, n;
	__u64 *cpc = NULL;
	int ncpus, err;
	__u32 id;

	memset(snap, 0, sizeof(*snap));
	n_info = td_stats_map_check(m->svc_info, TD_MAP_SVC_INFO, BPF_MAP_TYPE_ARRAY,
				    sizeof(struct td_svc_info), TD_MAX_SERVICES);
	n_be = td_stats_map_check(m->backends, TD_MAP_BACKENDS, BPF_MAP_TYPE_ARRAY,
				  sizeof(struct td_backend), TD_MAX_BACKENDS);
	n_cnt = td_stats_map_check(m->counters, TD_MAP_COUNTERS, BPF_MAP_TYPE_PERCPU_ARRAY,
				   sizeof(__u64), TD_CNT_MAX);
	n = n_info < 0 ? n_info : n_be < 0 ? n_be : n_cnt;
	if (n >= 0)
		n = td_stats_map_check(m->svc_stats, TD_MAP_SVC_STATS, BPF_MAP_TYPE_PERCPU_ARRAY,
				       sizeof(struct td_traffic_stats), TD_MAX_SERVICES);
	if (n >= 0)
		n = td_stats_map_check(m->be_stats, TD_MAP_BE_STATS, BPF_MAP_TYPE_PERCPU_ARRAY,
				       sizeof(struct td_traffic_stats), TD_MAX_BACKENDS);
	if (n < 0) {
		err = (int)n;
		goto cleanup;
	}

	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		err = ncpus < 0 ? ncpus : -EINVAL;
		td_err("stats: cannot count possible CPUs: %s", strerror(-err));
		goto cleanup;
	}
	info = calloc(n_info ? (size_t)n_info : 1, sizeof(*info));
	bes = calloc(n_be ? (size_t)n_be : 1, sizeof(*bes));
	pc = calloc((size_t)ncpus, sizeof(*pc));
	cpc = calloc((size_t)ncpus, sizeof(*cpc));
	err = (!info || !bes || !pc || !cpc) ? -ENOMEM : 0;
	if (!err)
		err = td_stats_read_array(m->svc_info, info, sizeof(*info), (__u32)n_info);
	if (!err)
		err = td_stats_read_array(m->backends, bes, sizeof(*bes), (__u32)n_be);
	if (err) {
		td_err("stats: out of memory");
		goto cleanup;
	}

	for (id = 0; id < (__u32)n_info; id++)
		snap->n_services += info[id].in_use ? 1 : 0;
	for (id = 0; id < (__u32)n_be; id++)
		snap->n_backends += bes[id].family ? 1 : 0;
	snap->services = calloc(snap->n_services ? snap->n_services : 1, sizeof(*snap->services));
	snap->backends = calloc(snap->n_backends ? snap->n_backends : 1, sizeof(*snap->backends));
	if (!snap->services || !snap->backends) {
		err = -ENOMEM;
		td_err("stats: out of memory");
		goto cleanup;
	}

	snap->n_services = 0;
	for (id = 0; id < (__u32)n_info; id++) {
		const struct td_svc_info *si = &info[id];
		struct td_stats_service *s;

		if (!si->in_use)
			continue;
		s = &snap->services[snap->n_services++];
		s->id = id;
		memcpy(s->name, si->name, TD_NAME_LEN);
		s->name[TD_NAME_LEN] = '\0';
		s->vip = si->vip.addr;
		s->family = si->vip.family;
		s->proto = si->vip.proto;
		s->port = ntohs(si->vip.port);
		s->mode = si->mode;
		s->generation = si->generation;
		td_stats_sum_traffic(m->svc_stats, id, pc, ncpus, &s->packets, &s->bytes,
				     &s->new_flows);
	}

	snap->n_backends = 0;
	for (id = 0; id < (__u32)n_be; id++) {
		const struct td_backend *x = &bes[id];
		struct td_stats_backend *b;

		if (!x->family)
			continue;
		b = &snap->backends[snap->n_backends++];
		b->id = id;
		b->svc_id = x->svc_id;
		b->addr = x->addr;
		b->family = x->family;
		b->port = ntohs(x->port);
		b->weight = x->weight;
		b->active = !!(x->flags & TD_BE_F_ACTIVE);
		b->nexthop = !!(x->flags & TD_BE_F_NEXTHOP);
		td_stats_sum_traffic(m->be_stats, id, pc, ncpus, &b->packets, &b->bytes,
				     &b->new_flows);
	}

	for (id = 0; id < (__u32)n_cnt; id++) {
		struct td_stats_counter *c;
		const char *name = td_counter_name(id);
		int cpu;

		if (!name)
			continue;
		c = &snap->counters[snap->n_counters++];
		c->id = id;
		c->name = name;
		c->is_drop = td_counter_is_drop(id) != 0;
		if (bpf_map_lookup_elem(m->counters, &id, cpc))
			continue;
		for (cpu = 0; cpu < ncpus; cpu++)
			c->value += cpc[cpu];
	}
cleanup:
	if (err)
		td_stats_free(snap);
	free(cpc);
	free(pc);
	free(bes);
	free(info);
	return err;
}

const struct td_stats_service *td_stats_service_find(const struct td_stats_snapshot *snap,
						     __u32 id)
{
	size_t lo = 0, hi = snap->n_services;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (snap->services[mid].id == id)
			return &snap->services[mid];
		if (snap->services[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- mesh ---------------------------------------------------------------------------------- */

static int td_stats_mesh_pair_cmp(const void *a, const void *b)
{
	const struct td_stats_mesh_pair *x = a, *y = b;
	int c = strcmp(x->src_name, y->src_name);

	if (c)
		return c;
	c = strcmp(x->dst_name, y->dst_name);
	if (c)
		return c;
	return x->src != y->src ? (x->src < y->src ? -1 : 1) :
	       x->dst < y->dst ? -1 : x->dst > y->dst;
}

void td_stats_mesh_free(struct td_stats_mesh *s)
{
	if (!s)
		return;
	free(s->pairs);
	memset(s, 0, sizeof(*s));
}

int td_stats_mesh_read(const struct td_mesh_maps *m, struct td_stats_mesh *out)
{
	struct td_mesh_pair_key *keys = NULL, *cur = NULL;
	struct td_mesh_name nm;
	size_t n = 0, i;
	__u32 id;
	int err;

	memset(out, 0, sizeof(*out));
	if (m->pair < 0 || m->names < 0 || m->cnt < 0) {
		err = -EBADF;
		td_err("stats: mesh maps are not open");
		goto cleanup;
	}
	err = td_mesh_counters(m, out->counters);
	if (err) {
		td_err("stats: mesh counters: %s", strerror(-err));
		goto cleanup;
	}
	for (id = 1; id < TD_MESH_MAX_SERVICES; id++)
		if (!bpf_map_lookup_elem(m->names, &id, &nm) && nm.name[0])
			out->n_services++;
	keys = calloc(TD_MESH_MAX_PAIRS, sizeof(*keys));
	if (!keys) {
		err = -ENOMEM;
		td_err("stats: out of memory");
		goto cleanup;
	}
	/* keys first (bounded), then values: a pair created meanwhile does not restart the walk */
	while (n < TD_MESH_MAX_PAIRS && !bpf_map_get_next_key(m->pair, cur, &keys[n])) {
		cur = &keys[n];
		n++;
	}
	out->pairs = calloc(n ? n : 1, sizeof(*out->pairs));
	if (!out->pairs) {
		err = -ENOMEM;
		td_err("stats: out of memory");
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		struct td_stats_mesh_pair *p = &out->pairs[out->n_pairs];

		err = td_mesh_pair_read(m, keys[i].src, keys[i].dst, &p->s);
		if (err == -ENOENT)
			continue;        /* removed meanwhile */
		if (err) {
			td_err("stats: mesh pair %u -> %u: %s", keys[i].src, keys[i].dst,
			       strerror(-err));
			goto cleanup;
		}
		p->src = keys[i].src;
		p->dst = keys[i].dst;
		td_mesh_id_name(m, p->src, p->src_name, sizeof(p->src_name));
		td_mesh_id_name(m, p->dst, p->dst_name, sizeof(p->dst_name));
		out->n_pairs++;
	}
	err = 0;
	qsort(out->pairs, out->n_pairs, sizeof(*out->pairs), td_stats_mesh_pair_cmp);
cleanup:
	if (err)
		td_stats_mesh_free(out);
	free(keys);
	return err;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* td_bpf_fixtures: loads xdp_lb/tc_lb with shared unpinned maps and runs the fixture tables or the bench. */
#include <errno.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "xdp_lb.skel.h"
#include "tc_lb.skel.h"
#include "xdp_pass.skel.h"
#include "fixture.h"
#include "names.h"

static bool td_verbose;

static int td_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !td_verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* Clear LIBBPF_PIN_BY_NAME on every map: the fixtures never see or leave pinned state. */
static int td_obj_unpin(struct bpf_object *obj)
{
	struct bpf_map *m;
	int err;

	bpf_object__for_each_map(m, obj) {
		err = bpf_map__set_pin_path(m, NULL);
		if (err)
			return err;
	}
	return 0;
}

int td_env_open(struct td_env *env, __u32 ct_entries)
{
	struct bpf_map *m;
	int err;

	memset(env, 0, sizeof(*env));
	env->ifindex_lo = 1;
	env->ifindex_redir = (int)if_nametoindex("tdt-d0");
	env->ncpus = libbpf_num_possible_cpus();
	if (env->ncpus <= 0)
		return -EINVAL;

	env->xdp = xdp_lb__open();
	if (!env->xdp) {
		err = -errno;
		fprintf(stderr, "xdp_lb__open: %s\n", strerror(-err));
		goto fail;
	}
	err = td_obj_unpin(env->xdp->obj);
	if (!err && ct_entries)
		err = bpf_map__set_max_entries(env->xdp->maps.td_ct, ct_entries);
	if (!err && ct_entries)
		err = bpf_map__set_max_entries(env->xdp->maps.td_rnat, ct_entries);
	if (!err)
		err = xdp_lb__load(env->xdp);
	if (err) {
		fprintf(stderr, "xdp_lb load: %s\n", strerror(-err));
		goto fail;
	}

	env->tc = tc_lb__open();
	if (!env->tc) {
		err = -errno;
		fprintf(stderr, "tc_lb__open: %s\n", strerror(-err));
		goto fail;
	}
	err = td_obj_unpin(env->tc->obj);
	if (err)
		goto fail;
	bpf_object__for_each_map(m, env->tc->obj) {
		struct bpf_map *src;

		if (bpf_map__is_internal(m))
			continue;
		src = bpf_object__find_map_by_name(env->xdp->obj, bpf_map__name(m));
		if (!src) {
			fprintf(stderr, "tc_lb map %s has no xdp_lb twin\n", bpf_map__name(m));
			err = -ENOENT;
			goto fail;
		}
		err = bpf_map__reuse_fd(m, bpf_map__fd(src));
		if (err) {
			fprintf(stderr, "reuse_fd %s: %s\n", bpf_map__name(m), strerror(-err));
			goto fail;
		}
	}
	err = tc_lb__load(env->tc);
	if (err) {
		fprintf(stderr, "tc_lb load: %s\n", strerror(-err));
		goto fail;
	}

	env->pass = xdp_pass__open_and_load();
	if (!env->pass) {
		err = -errno;
		fprintf(stderr, "xdp_pass load: %s\n", strerror(-err));
		goto fail;
	}

	env->fd_svc = bpf_map__fd(env->xdp->maps.td_svc);
	env->fd_vips = bpf_map__fd(env->xdp->maps.td_vips);
	env->fd_backends = bpf_map__fd(env->xdp->maps.td_backends);
	env->fd_maglev = bpf_map__fd(env->xdp->maps.td_maglev);
	env->fd_ct = bpf_map__fd(env->xdp->maps.td_ct);
	env->fd_rnat = bpf_map__fd(env->xdp->maps.td_rnat);
	env->fd_ports = bpf_map__fd(env->xdp->maps.td_ports);
	env->fd_counters = bpf_map__fd(env->xdp->maps.td_counters);
	return 0;
fail:
	td_env_close(env);
	return err ? err : -EINVAL;
}

void td_env_close(struct td_env *env)
{
	xdp_pass__destroy(env->pass);
	tc_lb__destroy(env->tc);
	xdp_lb__destroy(env->xdp);
	env->pass = NULL;
	env->tc = NULL;
	env->xdp = NULL;
}

/* Delete every key of a hash map: batched lookup-and-delete, else walk all keys then delete. */
static int td_map_clear_hash(int fd, size_t key_size, size_t value_size)
{
	const __u32 chunk = 4096;
	LIBBPF_OPTS(bpf_map_batch_opts, bopts);
	__u8 *keys = NULL, *vals = NULL, *k;
	size_t n = 0, cap = 0, i;
	__u32 batch = 0, count;
	bool first = true;
	int err = 0;

	keys = malloc(chunk * key_size);
	vals = malloc(chunk * value_size);
	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		count = chunk;
		if (!bpf_map_lookup_and_delete_batch(fd, first ? NULL : &batch, &batch, keys, vals,
						     &count, &bopts)) {
			first = false;
			continue;
		}
		if (errno == ENOENT)
			goto out;
		break;   /* not supported: fall back */
	}
	free(keys);
	keys = NULL;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			k = realloc(keys, cap * key_size);
			if (!k) {
				err = -ENOMEM;
				goto out;
			}
			keys = k;
		}
		if (bpf_map_get_next_key(fd, n ? keys + (n - 1) * key_size : NULL,
					 keys + n * key_size)) {
			if (errno != ENOENT)
				err = -errno;
			break;
		}
		n++;
	}
	for (i = 0; !err && i < n; i++)
		if (bpf_map_delete_elem(fd, keys + i * key_size) && errno != ENOENT)
			err = -errno;
out:
	free(keys);
	free(vals);
	return err;
}

int td_env_clear_flows(struct td_env *env)
{
	int err = td_map_clear_hash(env->fd_ct, sizeof(struct td_flow_key), sizeof(struct td_ct));

	return err ? err : td_map_clear_hash(env->fd_rnat, sizeof(struct td_flow_key),
					     sizeof(struct td_rnat));
}

static int td_env_zero_stats(struct td_env *env, int fd, __u32 idx)
{
	struct td_traffic_stats *v = calloc(env->ncpus, sizeof(*v));
	int err = 0;

	if (!v)
		return -ENOMEM;
	if (bpf_map_update_elem(fd, &idx, v, BPF_ANY))
		err = -errno;
	free(v);
	return err;
}

/* td_svc_stats / td_be_stats summed over CPUs */
int td_env_read_stats(struct td_env *env, bool backend, __u32 idx, struct td_traffic_stats *out)
{
	int fd = bpf_map__fd(backend ? env->xdp->maps.td_be_stats : env->xdp->maps.td_svc_stats);
	struct td_traffic_stats *v = calloc(env->ncpus, sizeof(*v));
	int c, err = 0;

	if (!v)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(fd, &idx, v)) {
		err = -errno;
	} else {
		for (c = 0; c < env->ncpus; c++) {
			out->packets += v[c].packets;
			out->bytes += v[c].bytes;
			out->new_flows += v[c].new_flows;
		}
	}
	free(v);
	return err;
}

int td_env_reset(struct td_env *env)
{
	struct td_backend zbe = { 0 };
	__u8 zport = 0;
	int i, err;

	err = td_map_clear_hash(env->fd_svc, sizeof(struct td_vip_key), sizeof(struct td_svc));
	if (!err)
		err = td_map_clear_hash(env->fd_vips, sizeof(struct td_vip_addr), sizeof(__u32));
	if (!err)
		err = td_env_clear_flows(env);
	for (i = 0; !err && i < env->n_used_svc; i++) {
		if (bpf_map_delete_elem(env->fd_maglev, &env->used_svc[i]) && errno != ENOENT)
			err = -errno;
	}
	for (i = 0; !err && i < env->n_used_be; i++) {
		if (bpf_map_update_elem(env->fd_backends, &env->used_be[i], &zbe, BPF_ANY))
			err = -errno;
	}
	for (i = 0; !err && i < env->n_used_ports; i++) {
		__u32 k = env->used_ports[i];

		if (bpf_map_update_elem(env->fd_ports, &k, &zport, BPF_ANY))
			err = -errno;
	}
	for (i = 0; !err && i < env->n_used_svc; i++)
		err = td_env_zero_stats(env, bpf_map__fd(env->xdp->maps.td_svc_stats), env->used_svc[i]);
	for (i = 0; !err && i < env->n_used_be; i++)
		err = td_env_zero_stats(env, bpf_map__fd(env->xdp->maps.td_be_stats), env->used_be[i]);
	env->n_used_svc = env->n_used_be = env->n_used_ports = 0;
	return err;
}

static int td_port_or(struct td_env *env, __u16 port, __u8 flag)
{
	__u32 k = port;
	__u8 v = 0;
	int i;

	if (bpf_map_lookup_elem(env->fd_ports, &k, &v))
		return -errno;
	v |= flag;
	if (bpf_map_update_elem(env->fd_ports, &k, &v, BPF_ANY))
		return -errno;
	for (i = 0; i < env->n_used_ports; i++)
		if (env->used_ports[i] == port)
			return 0;
	if (env->n_used_ports >= (int)(sizeof(env->used_ports) / sizeof(env->used_ports[0])))
		return -ENOSPC;
	env->used_ports[env->n_used_ports++] = port;
	return 0;
}

/* A fresh BPF_F_INNER_MAP ring with every slot = backend_id, swapped into td_maglev[svc_id]. */
int td_env_set_ring(struct td_env *env, __u32 svc_id, __u32 ring_size, __u32 backend_id)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_INNER_MAP);
	__u32 *vals = NULL, *keys = NULL, i, count = ring_size;
	int fd, err = 0, j;

	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, 4, ring_size, &opts);
	if (fd < 0)
		return -errno;
	vals = calloc(ring_size, sizeof(*vals));
	keys = calloc(ring_size, sizeof(*keys));
	if (!vals || !keys) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < ring_size; i++) {
		keys[i] = i;
		vals[i] = backend_id;
	}
	if (bpf_map_update_batch(fd, keys, vals, &count, NULL)) {
		for (i = 0; i < ring_size; i++) {
			if (bpf_map_update_elem(fd, &i, &backend_id, BPF_ANY)) {
				err = -errno;
				goto out;
			}
		}
	}
	if (bpf_map_update_elem(env->fd_maglev, &svc_id, &fd, BPF_ANY)) {
		err = -errno;
		goto out;
	}
	for (j = 0; j < env->n_used_svc; j++)
		if (env->used_svc[j] == svc_id)
			goto out;
	if (env->n_used_svc < TD_FX_MAX_SVC)
		env->used_svc[env->n_used_svc++] = svc_id;
	else
		err = -ENOSPC;
out:
	free(vals);
	free(keys);
	close(fd);
	return err;
}

int td_env_add_svc(struct td_env *env, const struct td_fx_svc *s)
{
	struct td_vip_key key = { 0 };
	struct td_vip_addr va = { 0 };
	struct td_svc val = { 0 };
	__u32 n = 0;
	int err;

	key.addr = *s->vip;
	key.port = htons(s->port);
	key.proto = s->proto;
	key.family = s->family;
	val.id = s->id;
	val.mode = s->mode;
	val.ring_size = s->ring_size;
	if (bpf_map_update_elem(env->fd_svc, &key, &val, BPF_ANY))
		return -errno;
	va.addr = *s->vip;
	va.family = s->family;
	if (bpf_map_lookup_elem(env->fd_vips, &va, &n))
		n = 0;
	n++;
	if (bpf_map_update_elem(env->fd_vips, &va, &n, BPF_ANY))
		return -errno;
	err = td_port_or(env, s->port, TD_PORT_F_VIP);
	if (err)
		return err;
	return td_env_set_ring(env, s->id, s->ring_size, s->ring_backend);
}

int td_env_add_backend(struct td_env *env, const struct td_fx_backend *b)
{
	struct td_backend val = { 0 };
	int i;

	val.addr = *b->addr;
	val.port = htons(b->port);
	val.family = b->family;
	val.flags = b->flags;
	val.svc_id = b->svc_id;
	memcpy(val.dmac, b->dmac, 6);
	memcpy(val.smac, b->smac, 6);
	val.ifindex = b->ifindex ? b->ifindex : (__u32)env->ifindex_lo;
	val.weight = 1;
	if (bpf_map_update_elem(env->fd_backends, &b->id, &val, BPF_ANY))
		return -errno;
	for (i = 0; i < env->n_used_be; i++)
		if (env->used_be[i] == b->id)
			break;
	if (i == env->n_used_be) {
		if (env->n_used_be >= TD_FX_MAX_BE)
			return -ENOSPC;
		env->used_be[env->n_used_be++] = b->id;
	}
	return b->nat ? td_port_or(env, b->port, TD_PORT_F_BACKEND) : 0;
}

int td_env_set_backend_flags(struct td_env *env, __u32 id, __u8 flags)
{
	struct td_backend val;

	if (bpf_map_lookup_elem(env->fd_backends, &id, &val))
		return -errno;
	val.flags = flags;
	return bpf_map_update_elem(env->fd_backends, &id, &val, BPF_ANY) ? -errno : 0;
}

int td_env_set_backend_ifindex(struct td_env *env, __u32 id, __u32 ifindex)
{
	struct td_backend val;

	if (bpf_map_lookup_elem(env->fd_backends, &id, &val))
		return -errno;
	val.ifindex = ifindex;
	return bpf_map_update_elem(env->fd_backends, &id, &val, BPF_ANY) ? -errno : 0;
}

int td_env_add_rnat(struct td_env *env, const struct td_flow_key *key, const struct td_rnat *val)
{
	return bpf_map_update_elem(env->fd_rnat, key, val, BPF_ANY) ? -errno : 0;
}

int td_env_lookup_ct(struct td_env *env, const struct td_flow_key *key, struct td_ct *val)
{
	return bpf_map_lookup_elem(env->fd_ct, key, val) ? -errno : 0;
}

int td_env_read_counters(struct td_env *env, __u64 out[TD_CNT_MAX])
{
	__u64 *vals;
	__u32 k;
	int c;

	vals = calloc(env->ncpus, sizeof(__u64));
	if (!vals)
		return -ENOMEM;
	for (k = 0; k < TD_CNT_MAX; k++) {
		out[k] = 0;
		if (bpf_map_lookup_elem(env->fd_counters, &k, vals)) {
			free(vals);
			return -errno;
		}
		for (c = 0; c < env->ncpus; c++)
			out[k] += vals[c];
	}
	free(vals);
	return 0;
}

int td_run_xdp(int prog_fd, const __u8 *in, size_t len, int ifindex, __u32 repeat,
	       __u8 *out, __u32 *out_len, __u32 *verdict, __u32 *duration)
{
	struct xdp_md ctx = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		    .data_in = in,
		    .data_size_in = (__u32)len,
		    .data_out = out,
		    .data_size_out = TD_PKT_MAX,
		    .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx),
		    .repeat = repeat);

	ctx.data_end = (__u32)len;
	ctx.ingress_ifindex = ifindex;
	if (bpf_prog_test_run_opts(prog_fd, &opts))
		return -errno;
	*out_len = opts.data_size_out;
	*verdict = opts.retval;
	if (duration)
		*duration = opts.duration;
	return 0;
}

int td_run_tc(int prog_fd, const __u8 *in, size_t len, __u32 repeat,
	      __u8 *out, __u32 *out_len, __u32 *verdict, __u32 *duration)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		    .data_in = in,
		    .data_size_in = (__u32)len,
		    .data_out = out,
		    .data_size_out = TD_PKT_MAX,
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(prog_fd, &opts))
		return -errno;
	*out_len = opts.data_size_out;
	*verdict = opts.retval;
	if (duration)
		*duration = opts.duration;
	return 0;
}

static const char *td_verdict_name(enum td_fx_prog prog, __u32 v)
{
	static char buf[16];

	if (prog == TD_FX_XDP) {
		switch (v) {
		case XDP_ABORTED: return "XDP_ABORTED";
		case XDP_DROP: return "XDP_DROP";
		case XDP_PASS: return "XDP_PASS";
		case XDP_TX: return "XDP_TX";
		case XDP_REDIRECT: return "XDP_REDIRECT";
		}
	} else {
		switch ((int)v) {
		case TC_ACT_OK: return "TC_ACT_OK";
		case TC_ACT_SHOT: return "TC_ACT_SHOT";
		case TC_ACT_REDIRECT: return "TC_ACT_REDIRECT";
		case TC_ACT_UNSPEC: return "TC_ACT_UNSPEC";
		}
	}
	snprintf(buf, sizeof(buf), "%d", (int)v);
	return buf;
}

/* Run one step; on failure write the reason to err and (for byte mismatches) dump both frames. */
static int td_fx_run_step(struct td_env *env, const struct td_fx_step *st, int idx,
			  char *err, size_t errlen)
{
	__u8 in[TD_PKT_MAX], exp[TD_PKT_MAX], got[TD_PKT_MAX];
	__u64 before[TD_CNT_MAX], after[TD_CNT_MAX];
	__s64 want[TD_CNT_MAX];
	__u32 got_len = 0, verdict = 0;
	int in_len, exp_len, r, i, prog_fd, ifindex;
	char why[160];

	if (st->pre && (r = st->pre(env))) {
		snprintf(err, errlen, "step %d: setup failed: %s", idx, strerror(-r));
		return -1;
	}
	in_len = td_pkt_build(st->in, in, sizeof(in));
	if (in_len < 0) {
		snprintf(err, errlen, "step %d: input build failed: %s", idx, strerror(-in_len));
		return -1;
	}
	if (st->out) {
		exp_len = td_pkt_build(st->out, exp, sizeof(exp));
		if (exp_len < 0) {
			snprintf(err, errlen, "step %d: expected build failed", idx);
			return -1;
		}
	} else {
		memcpy(exp, in, in_len);
		exp_len = in_len;
	}
	/* the builder itself must produce valid packets, or the comparison proves nothing */
	if (!st->malformed && td_pkt_verify(exp, exp_len, why, sizeof(why))) {
		snprintf(err, errlen, "step %d: builder produced a bad expected packet: %s", idx, why);
		return -1;
	}
	if (td_env_read_counters(env, before)) {
		snprintf(err, errlen, "step %d: reading td_counters failed", idx);
		return -1;
	}
	ifindex = st->ifindex == TD_FX_IF_REDIR ? env->ifindex_redir : env->ifindex_lo;
	if (st->prog == TD_FX_XDP) {
		prog_fd = bpf_program__fd(env->xdp->progs.td_xdp_lb);
		r = td_run_xdp(prog_fd, in, in_len, ifindex, 1, got, &got_len, &verdict, NULL);
	} else {
		prog_fd = bpf_program__fd(env->tc->progs.td_tc_lb);
		r = td_run_tc(prog_fd, in, in_len, 1, got, &got_len, &verdict, NULL);
	}
	if (r) {
		snprintf(err, errlen, "step %d: prog test run failed: %s", idx, strerror(-r));
		return -1;
	}
	if ((int)verdict != st->verdict) {
		snprintf(err, errlen, "step %d: verdict %s, expected %s", idx,
			 td_verdict_name(st->prog, verdict), td_verdict_name(st->prog, st->verdict));
		return -1;
	}
	/* the frame of a dropped packet is irrelevant */
	if (!(st->prog == TD_FX_XDP && st->verdict == XDP_DROP) &&
	    !(st->prog == TD_FX_TC && st->verdict == TC_ACT_SHOT)) {
		if ((int)got_len != exp_len || memcmp(got, exp, exp_len)) {
			int off = 0;

			while (off < exp_len && off < (int)got_len && got[off] == exp[off])
				off++;
			snprintf(err, errlen, "step %d: output differs at byte %d (len %u, expected %d)",
				 idx, off, got_len, exp_len);
			printf("# %s\n# expected:\n", err);
			td_pkt_dump("#   ", exp, exp_len);
			printf("# got:\n");
			td_pkt_dump("#   ", got, got_len);
			return -1;
		}
		if (!st->malformed && td_pkt_verify(got, got_len, why, sizeof(why))) {
			snprintf(err, errlen, "step %d: output checksum/verify: %s", idx, why);
			return -1;
		}
	}
	if (td_env_read_counters(env, after)) {
		snprintf(err, errlen, "step %d: reading td_counters failed", idx);
		return -1;
	}
	for (i = 0; i < TD_CNT_MAX; i++)
		want[i] = 0;
	want[st->prog == TD_FX_XDP ? TD_CNT_RX : TD_CNT_TC_RX] = 1;
	for (i = 0; i < TD_FX_MAX_DELTAS && st->deltas[i].counter; i++)
		want[st->deltas[i].counter] = st->deltas[i].delta;
	for (i = 0; i < TD_CNT_MAX; i++) {
		__s64 d = (__s64)(after[i] - before[i]);

		if (want[i] == TD_FX_ANY || d == want[i])
			continue;
		snprintf(err, errlen, "step %d: counter %s moved by %lld, expected %lld", idx,
			 td_counter_name(i), (long long)d, (long long)want[i]);
		return -1;
	}
	if (st->check && st->check(env, why, sizeof(why))) {
		snprintf(err, errlen, "step %d: %s", idx, why);
		return -1;
	}
	return 0;
}

static int td_fx_run(struct td_env *env, const struct td_fixture *fx, char *err, size_t errlen)
{
	int r, i;

	r = td_env_reset(env);
	if (r) {
		snprintf(err, errlen, "map reset failed: %s", strerror(-r));
		return -1;
	}
	r = fx->setup ? fx->setup(env) : td_fx_std_setup(env);
	if (r) {
		snprintf(err, errlen, "setup failed: %s", strerror(-r));
		return -1;
	}
	for (i = 0; i < TD_FX_MAX_STEPS && fx->steps[i].in; i++) {
		if (td_fx_run_step(env, &fx->steps[i], i + 1, err, errlen))
			return -1;
	}
	return 0;
}

static void td_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-v] [-f NAME-SUBSTRING] [--bench [--calls N] [--rounds R]]\n"
		"Runs the xdp_lb/tc_lb prog-test-run fixtures (or the per-packet bench).\n"
		"Run it in a fresh network namespace (selftests/bpf/run.sh).\n", prog);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "bench", no_argument, NULL, 'b' },
		{ "calls", required_argument, NULL, 'c' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "filter", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct { const struct td_fixture *t; size_t n; } tables[] = {
		{ td_fixtures_xdp, td_n_fixtures_xdp },
		{ td_fixtures_tc, td_n_fixtures_tc },
	};
	const char *filter = NULL;
	bool bench = false;
	long calls = 1000000, rounds = 5;
	struct td_env env;
	int passed = 0, failed = 0, n = 0, opt, err;
	size_t t, i;

	while ((opt = getopt_long(argc, argv, "bc:r:f:vh", lopts, NULL)) != -1) {
		switch (opt) {
		case 'b': bench = true; break;
		case 'c': calls = strtol(optarg, NULL, 0); break;
		case 'r': rounds = strtol(optarg, NULL, 0); break;
		case 'f': filter = optarg; break;
		case 'v': td_verbose = true; break;
		case 'h': td_usage(argv[0]); return 0;
		default: td_usage(argv[0]); return 2;
		}
	}
	if (calls <= 0 || rounds <= 0) {
		td_usage(argv[0]);
		return 2;
	}
	libbpf_set_print(td_libbpf_print);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (bench) {
		/* new-flow calls create one td_ct and one td_rnat entry each */
		err = td_env_open(&env, (__u32)calls + 1024);
		if (err)
			return 1;
		err = td_bench_run(&env, (__u32)calls, (int)rounds);
		td_env_close(&env);
		return err ? 1 : 0;
	}

	err = td_env_open(&env, 0);
	if (err) {
		printf("not ok 1 load: %s\n0 passed, 1 failed\n", strerror(-err));
		return 1;
	}
	for (t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		for (i = 0; i < tables[t].n; i++) {
			const struct td_fixture *fx = &tables[t].t[i];
			char why[512];

			if (filter && !strstr(fx->name, filter))
				continue;
			n++;
			if (fx->needs_redir && !env.ifindex_redir) {
				printf("ok %d %s # SKIP no tdt-d0 device\n", n, fx->name);
				passed++;
				continue;
			}
			why[0] = 0;
			if (td_fx_run(&env, fx, why, sizeof(why))) {
				printf("not ok %d %s: %s\n", n, fx->name, why);
				failed++;
			} else {
				printf("ok %d %s\n", n, fx->name);
				passed++;
			}
		}
	}
	td_env_close(&env);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

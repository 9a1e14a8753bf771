/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tdctl status / services / stats / conntrack: read the pinned maps and print tables or JSON. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "addr.h"
#include "dp.h"
#include "log.h"
#include "names.h"
#include "tdctl.h"

/* Everything a view needs, read once. */
struct tdctl_view {
	struct td_maps m;
	struct td_svc_info *info;      /* TD_MAX_SERVICES */
	struct td_backend *bes;        /* TD_MAX_BACKENDS */
	int ncpus;
};

static void tdctl_view_close(struct tdctl_view *v)
{
	free(v->bes);
	free(v->info);
	td_maps_close(&v->m);
}

static int tdctl_view_open(const struct tdctl *ctl, struct tdctl_view *v)
{
	__u32 id;
	int err;

	memset(v, 0, sizeof(*v));
	err = td_maps_open(ctl->bpffs, &v->m);
	if (err)
		goto cleanup;
	v->info = calloc(TD_MAX_SERVICES, sizeof(*v->info));
	v->bes = calloc(TD_MAX_BACKENDS, sizeof(*v->bes));
	v->ncpus = libbpf_num_possible_cpus();
	if (!v->info || !v->bes || v->ncpus <= 0) {
		err = -ENOMEM;
		td_err("out of memory");
		goto cleanup;
	}
	for (id = 0; id < TD_MAX_SERVICES; id++)
		if (bpf_map_lookup_elem(v->m.svc_info, &id, &v->info[id]))
			memset(&v->info[id], 0, sizeof(v->info[id]));
	for (id = 0; id < TD_MAX_BACKENDS; id++)
		if (bpf_map_lookup_elem(v->m.backends, &id, &v->bes[id]))
			memset(&v->bes[id], 0, sizeof(v->bes[id]));
cleanup:
	if (err)
		tdctl_view_close(v);
	return err;
}

static bool tdctl_be_of(const struct tdctl_view *v, __u32 be, __u32 svc)
{
	return (v->bes[be].flags & TD_BE_F_ACTIVE) && v->bes[be].svc_id == svc;
}

static void tdctl_svc_name(const struct tdctl_view *v, __u32 id, char *buf, size_t len)
{
	if (id < TD_MAX_SERVICES && v->info[id].in_use)
		snprintf(buf, len, "%.*s", TD_NAME_LEN, v->info[id].name);
	else
		snprintf(buf, len, "?");
}

/* per-CPU td_traffic_stats summed over CPUs */
static void tdctl_stats_sum(const struct tdctl_view *v, int fd, __u32 id,
			    struct td_traffic_stats *out)
{
	struct td_traffic_stats *pc = calloc(v->ncpus, sizeof(*pc));
	int c;

	memset(out, 0, sizeof(*out));
	if (!pc)
		return;
	if (!bpf_map_lookup_elem(fd, &id, pc)) {
		for (c = 0; c < v->ncpus; c++) {
			out->packets += pc[c].packets;
			out->bytes += pc[c].bytes;
			out->new_flows += pc[c].new_flows;
		}
	}
	free(pc);
}

static long tdctl_count_keys(int fd, size_t key_size)
{
	char key[64], next[64];
	void *prev = NULL;
	long n = 0;

	if (key_size > sizeof(key))
		return -EINVAL;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		n++;
	}
	return n;
}

static int tdctl_no_args(const struct tdctl_cmd *cmd, int argc, char **argv)
{
	if (argc > 1)
		return tdctl_usage_error(cmd, "%s '%s'",
					 argv[1][0] == '-' ? "unknown option" : "unexpected argument",
					 argv[1]);
	return 0;
}

/* ---- what the agent adds (admin socket), when it answers ----------------------------------- */

static struct json_object *tdctl_jget(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!o || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

static long long tdctl_jint(struct json_object *o, const char *key)
{
	struct json_object *v = tdctl_jget(o, key);

	return v ? (long long)json_object_get_int64(v) : 0;
}

static const char *tdctl_jstr(struct json_object *o, const char *key)
{
	struct json_object *v = tdctl_jget(o, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

static const char *tdctl_jtext(struct json_object *o)
{
	return o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						  JSON_C_TO_STRING_NOSLASHESCAPE) : "null";
}

/* agent backend objects indexed by backend id (borrowed from status) */
static struct json_object **tdctl_agent_backends(struct json_object *status)
{
	struct json_object **by_id, *svcs = tdctl_jget(status, "services"), *bes;
	size_t i, j;

	by_id = calloc(TD_MAX_BACKENDS, sizeof(*by_id));
	if (!by_id || !svcs || !json_object_is_type(svcs, json_type_array))
		return by_id;
	for (i = 0; i < json_object_array_length(svcs); i++) {
		bes = tdctl_jget(json_object_array_get_idx(svcs, i), "backends");
		if (!bes || !json_object_is_type(bes, json_type_array))
			continue;
		for (j = 0; j < json_object_array_length(bes); j++) {
			struct json_object *b = json_object_array_get_idx(bes, j);
			long long id = tdctl_jint(b, "id");

			if (id >= 0 && id < TD_MAX_BACKENDS)
				by_id[id] = b;
		}
	}
	return by_id;
}

/*
 * State of one backend: from the agent when it answers (ab), else from the informational
 * td_backends flags the agent left behind (TD_BE_F_DRAINED/DOWN/OVERRIDE). Without the agent
 * nothing checks health, so a backend not marked down is "unknown".
 */
struct tdctl_be_state {
	const char *health;   /* "up" | "down" | "unknown" */
	bool drained;
	bool override;        /* added or re-weighted at runtime */
};

static void tdctl_be_state(const struct td_backend *x, struct json_object *ab,
			   struct tdctl_be_state *st)
{
	const char *h;

	st->drained = x->flags & TD_BE_F_DRAINED;
	st->override = x->flags & TD_BE_F_OVERRIDE;
	st->health = (x->flags & TD_BE_F_DOWN) ? "down" : "unknown";
	if (!ab)
		return;
	h = tdctl_jstr(ab, "health");
	st->drained = json_object_get_boolean(tdctl_jget(ab, "drained"));
	st->override = !strcmp(tdctl_jstr(ab, "source"), "runtime") || st->override;
	st->health = !strcmp(h, "up") ? "up" : !strcmp(h, "down") ? "down" : "unknown";
}

/* the STATE word: drained wins over health */
static const char *tdctl_state_word(const struct tdctl_be_state *st)
{
	return st->drained ? "drained" : st->health;
}

/* ---- status ----------------------------------------------------------------------------- */

/* what the agent says about its mesh: section (health of mesh backends) */
static void tdctl_status_agent_mesh(struct json_object *m)
{
	struct json_object *svcs = tdctl_jget(m, "services");
	size_t i, j, n = svcs ? json_object_array_length(svcs) : 0;
	int down = 0, total = 0;

	if (!m)
		return;
	if (!json_object_get_boolean(tdctl_jget(m, "configured"))) {
		printf("mesh       agent: no mesh: section (programs detached)\n");
		return;
	}
	for (i = 0; i < n; i++) {
		struct json_object *bes = tdctl_jget(json_object_array_get_idx(svcs, i), "backends");

		for (j = 0; bes && j < json_object_array_length(bes); j++, total++)
			down += !strcmp(tdctl_jstr(json_object_array_get_idx(bes, j), "health"),
					"down");
	}
	printf("mesh       agent: %zu service(s) on cgroup %s, default %s, %lld allow rule(s), "
	       "%d/%d backend(s) down, %lld denial event(s) logged\n", n,
	       tdctl_jstr(m, "cgroup_root"), tdctl_jstr(m, "default_policy"),
	       tdctl_jint(m, "allow_rules"), down, total, tdctl_jint(m, "denial_events"));
	for (i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(svcs, i);
		struct json_object *bes = tdctl_jget(s, "backends");

		for (j = 0; bes && j < json_object_array_length(bes); j++) {
			struct json_object *b = json_object_array_get_idx(bes, j);

			if (!strcmp(tdctl_jstr(b, "health"), "down"))
				printf("           down: %s %s\n", tdctl_jstr(s, "name"),
				       tdctl_jstr(b, "backend"));
		}
	}
}

/* what the agent says about its gateway: section (listeners, upstreams, backends out) */
static void tdctl_status_agent_gw(struct json_object *g)
{
	struct json_object *ls = tdctl_jget(g, "listeners"), *us = tdctl_jget(g, "upstreams");
	size_t i, j, nl = ls ? json_object_array_length(ls) : 0;
	size_t nu = us ? json_object_array_length(us) : 0;
	int out = 0, total = 0;

	if (!g || json_object_get_type(g) != json_type_object) {
		printf("gateway    off (no gateway: section)\n");
		return;
	}
	for (i = 0; i < nu; i++) {
		struct json_object *bes = tdctl_jget(json_object_array_get_idx(us, i), "backends");

		for (j = 0; bes && j < json_object_array_length(bes); j++, total++) {
			struct json_object *b = json_object_array_get_idx(bes, j);

			out += !json_object_get_boolean(tdctl_jget(b, "healthy")) ||
			       json_object_get_boolean(tdctl_jget(b, "ejected"));
		}
	}
	printf("gateway    generation %lld, %lld worker(s), %lld route(s), %zu upstream(s), "
	       "%d/%d backend(s) down or ejected; listening on", tdctl_jint(g, "generation"),
	       tdctl_jint(g, "workers"), tdctl_jint(g, "routes"), nu, out, total);
	for (i = 0; i < nl; i++) {
		struct json_object *l = json_object_array_get_idx(ls, i);

		printf(" %s%s", tdctl_jstr(l, "address"),
		       json_object_get_boolean(tdctl_jget(l, "tls")) ? " (tls)" : "");
	}
	printf("\n");
	for (i = 0; i < nu; i++) {
		struct json_object *u = json_object_array_get_idx(us, i);
		struct json_object *bes = tdctl_jget(u, "backends");

		for (j = 0; bes && j < json_object_array_length(bes); j++) {
			struct json_object *b = json_object_array_get_idx(bes, j);
			bool down = !json_object_get_boolean(tdctl_jget(b, "healthy"));
			bool ej = json_object_get_boolean(tdctl_jget(b, "ejected"));

			if (down || ej)
				printf("           %s: %s %s\n", down ? "down" : "ejected",
				       tdctl_jstr(u, "name"), tdctl_jstr(b, "address"));
		}
	}
}

/* what the agent says about its forward_proxy: section (listeners, cache, tunnels) */
static void tdctl_status_agent_fp(struct json_object *f)
{
	struct json_object *ls = tdctl_jget(f, "listeners"), *c = tdctl_jget(f, "cache");
	size_t i, nl = ls ? json_object_array_length(ls) : 0;

	if (!f || json_object_get_type(f) != json_type_object) {
		printf("proxy      off (no forward_proxy: section)\n");
		return;
	}
	printf("proxy      generation %lld, %lld worker(s), %lld connection(s), %lld tunnel(s) open",
	       tdctl_jint(f, "generation"), tdctl_jint(f, "workers"),
	       tdctl_jint(f, "connections_open"), tdctl_jint(f, "tunnels_open"));
	if (c)
		printf(", cache %lld object(s) %lld/%lld bytes", tdctl_jint(c, "objects"),
		       tdctl_jint(c, "bytes"), tdctl_jint(c, "memory"));
	printf("; listening on");
	for (i = 0; i < nl; i++) {
		struct json_object *l = json_object_array_get_idx(ls, i);

		printf(" %s (%s)", tdctl_jstr(l, "address"), tdctl_jstr(l, "kind"));
	}
	printf("\n");
}

static void tdctl_status_agent(const struct tdctl *ctl, struct json_object *ag)
{
	struct json_object *a = tdctl_jget(ag, "agent"), *lr = tdctl_jget(ag, "last_reload");
	struct json_object *ovr = tdctl_jget(ag, "overrides");
	size_t i, n = ovr ? json_object_array_length(ovr) : 0;
	char when[64] = "";
	time_t t;

	if (!ag) {
		printf("agent      not answering on %s: read from the pinned maps only\n",
		       ctl->socket);
		return;
	}
	printf("agent      running (pid %lld, version %s), generation %lld, config %s\n",
	       tdctl_jint(a, "pid"), tdctl_jstr(a, "version"), tdctl_jint(ag, "generation"),
	       tdctl_jstr(a, "config"));
	if (strcmp(tdctl_jstr(a, "metrics_listen"), "off") && tdctl_jstr(a, "metrics_listen")[0])
		printf("metrics    http://%s/metrics\n", tdctl_jstr(a, "metrics_listen"));
	else
		printf("metrics    off\n");
	if (tdctl_jint(ag, "health_failopen_services"))
		printf("health     %lld service(s) with every backend down: failing open\n",
		       tdctl_jint(ag, "health_failopen_services"));
	if (lr) {
		t = (time_t)tdctl_jint(lr, "time");
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
		if (json_object_get_boolean(tdctl_jget(lr, "ok")))
			printf("reload     last ok at %s (generation %lld)\n", when,
			       tdctl_jint(lr, "generation"));
		else
			printf("reload     last REJECTED at %s (%zu error(s); running generation %lld)\n",
			       when, json_object_array_length(tdctl_jget(lr, "errors")),
			       tdctl_jint(lr, "generation"));
	}
	tdctl_status_agent_mesh(tdctl_jget(ag, "mesh"));
	tdctl_status_agent_gw(tdctl_jget(ag, "gateway"));
	tdctl_status_agent_fp(tdctl_jget(ag, "forward_proxy"));
	if (!n) {
		printf("overrides  none (running state = config file)\n");
		return;
	}
	printf("overrides  %zu runtime override(s) in effect: a reload restores the file's view\n", n);
	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(ovr, i);

		printf("           %-7s %s %s\n", tdctl_jstr(o, "op"), tdctl_jstr(o, "service"),
		       tdctl_jstr(o, "backend"));
	}
}

int tdctl_cmd_status(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv)
{
	struct json_object *ag = NULL, **abe = NULL;
	struct tdctl_be_state bst;
	struct tdctl_view v;
	__u32 xdp_id, tc_id, key, next, id;
	void *prev = NULL;
	long flows;
	int n_svc = 0, n_be = 0, n_if = 0, rc;
	int n_up = 0, n_down = 0, n_drained = 0, n_unknown = 0;

	if (tdctl_want_help(cmd, argc, argv))
		return 0;
	rc = tdctl_no_args(cmd, argc, argv);
	if (rc)
		return rc;
	if (tdctl_view_open(ctl, &v))
		return TDCTL_EXIT_FAIL;
	ag = tdctl_agent_status(ctl);
	td_dp_prog_ids(ctl->bpffs, &xdp_id, &tc_id);
	for (id = 0; id < TD_MAX_SERVICES; id++)
		n_svc += v.info[id].in_use ? 1 : 0;
	abe = tdctl_agent_backends(ag);
	for (id = 0; id < TD_MAX_BACKENDS; id++) {
		const char *w;

		if (!(v.bes[id].flags & TD_BE_F_ACTIVE) || v.bes[id].svc_id >= TD_MAX_SERVICES ||
		    !v.info[v.bes[id].svc_id].in_use)
			continue;
		n_be++;
		tdctl_be_state(&v.bes[id], abe ? abe[id] : NULL, &bst);
		w = tdctl_state_word(&bst);
		if (!strcmp(w, "drained"))
			n_drained++;
		else if (!strcmp(w, "up"))
			n_up++;
		else if (!strcmp(w, "down"))
			n_down++;
		else
			n_unknown++;
	}
	flows = tdctl_count_keys(v.m.ct, sizeof(struct td_flow_key));

	if (ctl->json) {
		printf("{\"bpffs\":");
		tdctl_json_str(stdout, ctl->bpffs);
		printf(",\"pinned\":true,\"programs\":{\"xdp_lb\":%u,\"tc_lb\":%u},\"interfaces\":[",
		       xdp_id, tc_id);
	} else {
		printf("bpffs      %s (pinned)\n", ctl->bpffs);
		printf("programs   xdp_lb id %u, tc_lb id %u\n", xdp_id, tc_id);
	}
	while (bpf_map_get_next_key(v.m.ifaces, prev, &next) == 0) {
		struct td_attach_state st;
		struct td_iface ent;
		char name[TD_IFNAME_LEN + 1];
		int mode;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(v.m.ifaces, &key, &ent))
			continue;
		if (td_dp_attach_state((int)key, &st))
			memset(&st, 0, sizeof(st));
		snprintf(name, sizeof(name), "%.*s", TD_IFNAME_LEN, ent.name);
		mode = st.xdp_prog_id ? st.xdp_mode : (int)ent.xdp_mode;
		if (ctl->json) {
			printf("%s{\"name\":", n_if ? "," : "");
			tdctl_json_str(stdout, name);
			printf(",\"ifindex\":%u,\"xdp\":%s,\"xdp_mode\":\"%s\",\"tc\":%s}", key,
			       st.xdp_prog_id ? "true" : "false", td_xdp_mode_name(mode),
			       st.tc_prog_id ? "true" : "false");
		} else {
			if (!n_if)
				printf("\n%-16s %7s  %-4s %-8s %-4s\n", "INTERFACE", "IFINDEX", "XDP",
				       "MODE", "TC");
			printf("%-16s %7u  %-4s %-8s %-4s\n", name, key,
			       st.xdp_prog_id ? "yes" : "no", td_xdp_mode_name(mode),
			       st.tc_prog_id ? "yes" : "no");
		}
		n_if++;
	}
	if (ctl->json) {
		printf("],\"services\":%d,\"backends\":%d,\"backend_states\":{\"up\":%d,"
		       "\"down\":%d,\"drained\":%d,\"unknown\":%d},\"flows\":%ld", n_svc, n_be,
		       n_up, n_down, n_drained, n_unknown, flows);
		printf(",\"agent\":%s", tdctl_jtext(tdctl_jget(ag, "agent")));
		if (ag)
			printf(",\"generation\":%lld,\"last_reload\":%s,\"overrides_in_effect\":%s,"
			       "\"overrides\":%s", tdctl_jint(ag, "generation"),
			       tdctl_jtext(tdctl_jget(ag, "last_reload")),
			       tdctl_jtext(tdctl_jget(ag, "overrides_in_effect")),
			       tdctl_jtext(tdctl_jget(ag, "overrides")));
		tdctl_mesh_status(ctl);
		if (ag && tdctl_jget(ag, "mesh"))
			printf(",\"agent_mesh\":%s", tdctl_jtext(tdctl_jget(ag, "mesh")));
		if (ag && tdctl_jget(ag, "gateway"))
			printf(",\"gateway\":%s", tdctl_jtext(tdctl_jget(ag, "gateway")));
		if (ag && tdctl_jget(ag, "forward_proxy"))
			printf(",\"forward_proxy\":%s", tdctl_jtext(tdctl_jget(ag, "forward_proxy")));
		printf("}\n");
	} else {
		printf("%s\nservices   %d\nbackends   %d (up %d, down %d, drained %d, unknown %d)\n"
		       "flows      %ld\n", n_if ? "" : "interfaces (none attached)\n", n_svc, n_be,
		       n_up, n_down, n_drained, n_unknown, flows);
		tdctl_mesh_status(ctl);
		tdctl_status_agent(ctl, ag);
	}
	free(abe);
	json_object_put(ag);
	tdctl_view_close(&v);
	return 0;
}

/* ---- services --------------------------------------------------------------------------- */

int tdctl_cmd_services(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc,
		       char **argv)
{
	char vip[TD_ADDRSTRLEN], be[TD_ADDRSTRLEN], ep[TD_ENDPOINTSTRLEN];
	char name[TD_NAME_LEN + 1];
	struct json_object *ag = NULL, **abe = NULL;
	struct tdctl_view v;
	__u32 id, b;
	int n = 0, nb, rc;
	bool ovr;

	if (tdctl_want_help(cmd, argc, argv))
		return 0;
	rc = tdctl_no_args(cmd, argc, argv);
	if (rc)
		return rc;
	if (tdctl_view_open(ctl, &v))
		return TDCTL_EXIT_FAIL;
	ag = tdctl_agent_status(ctl);
	abe = tdctl_agent_backends(ag);
	ovr = ag && json_object_get_boolean(tdctl_jget(ag, "overrides_in_effect"));
	if (ctl->json) {
		printf("{\"agent\":%s,\"overrides_in_effect\":%s,\"services\":[",
		       ag ? "true" : "false", ovr ? "true" : "false");
	} else {
		if (!ag)
			printf("(tdagent not answering on %s: pinned maps only)\n", ctl->socket);
		else if (ovr)
			printf("(runtime overrides in effect: a reload restores the file's view; "
			       "see tdctl status)\n");
		printf("%-4s %-20s %-30s %-5s %-4s %s\n", "ID", "NAME", "VIP", "PROTO", "MODE",
		       "BACKENDS");
	}
	for (id = 0; id < TD_MAX_SERVICES; id++) {
		const struct td_svc_info *si = &v.info[id];

		if (!si->in_use)
			continue;
		tdctl_svc_name(&v, id, name, sizeof(name));
		td_addr_format(&si->vip.addr, si->vip.family, vip, sizeof(vip));
		if (ctl->json) {
			printf("%s{\"id\":%u,\"name\":", n ? "," : "", id);
			tdctl_json_str(stdout, name);
			printf(",\"vip\":\"%s\",\"port\":%u,\"proto\":\"%s\",\"mode\":\"%s\","
			       "\"backends\":[", vip, ntohs(si->vip.port),
			       td_proto_name(si->vip.proto), td_mode_name(si->mode));
		} else {
			td_endpoint_format(&si->vip.addr, si->vip.family, ntohs(si->vip.port), ep,
					   sizeof(ep));
			printf("%-4u %-20s %-30s %-5s %-4s %u\n", id, name, ep,
			       td_proto_name(si->vip.proto), td_mode_name(si->mode), si->n_backends);
		}
		for (b = 0, nb = 0; b < TD_MAX_BACKENDS; b++) {
			const struct td_backend *x = &v.bes[b];

			if (!tdctl_be_of(&v, b, id))
				continue;
			struct json_object *ab = abe ? abe[b] : NULL;
			struct tdctl_be_state bst;

			td_addr_format(&x->addr, x->family, be, sizeof(be));
			tdctl_be_state(x, ab, &bst);
			if (ctl->json) {
				printf("%s{\"id\":%u,\"address\":\"%s\",\"port\":%u,\"weight\":%u,"
				       "\"active\":%s,\"nexthop\":%s,\"health\":\"%s\","
				       "\"drained\":%s,\"override\":%s", nb ? "," : "", b, be,
				       ntohs(x->port), x->weight,
				       (x->flags & TD_BE_F_ACTIVE) ? "true" : "false",
				       (x->flags & TD_BE_F_NEXTHOP) ? "true" : "false", bst.health,
				       bst.drained ? "true" : "false",
				       bst.override ? "true" : "false");
				if (ab)
					printf(",\"configured_weight\":%lld,\"source\":\"%s\"",
					       tdctl_jint(ab, "weight"), tdctl_jstr(ab, "source"));
				printf("}");
			} else {
				char state[48];

				td_endpoint_format(&x->addr, x->family, ntohs(x->port), ep,
						   sizeof(ep));
				snprintf(state, sizeof(state), "%s%s", tdctl_state_word(&bst),
					 bst.override ? " (runtime)" : "");
				if (!nb)
					printf("     %-6s %-40s %6s %-6s %-7s %s\n", "BE", "ADDRESS",
					       "WEIGHT", "ACTIVE", "NEXTHOP", "STATE");
				printf("     %-6u %-40s %6u %-6s %-7s %s\n", b, ep, x->weight,
				       (x->flags & TD_BE_F_ACTIVE) ? "yes" : "no",
				       (x->flags & TD_BE_F_NEXTHOP) ? "yes" : "no", state);
			}
			nb++;
		}
		if (ctl->json)
			printf("]}");
		n++;
	}
	if (ctl->json)
		printf("]}\n");
	else if (!n)
		printf("(no services)\n");
	free(abe);
	json_object_put(ag);
	tdctl_view_close(&v);
	return 0;
}

/* ---- stats ------------------------------------------------------------------------------ */

int tdctl_cmd_stats(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc, char **argv)
{
	char name[TD_NAME_LEN + 1], ep[TD_ENDPOINTSTRLEN], addr[TD_ADDRSTRLEN];
	struct td_traffic_stats s;
	struct tdctl_view v;
	__u64 *pc = NULL, sum;
	__u32 id, b, c;
	int n = 0, nb, rc = 0, k, pass;

	if (tdctl_want_help(cmd, argc, argv))
		return 0;
	rc = tdctl_no_args(cmd, argc, argv);
	if (rc)
		return rc;
	if (tdctl_view_open(ctl, &v))
		return TDCTL_EXIT_FAIL;
	pc = calloc(v.ncpus, sizeof(*pc));
	if (!pc) {
		td_err("out of memory");
		rc = TDCTL_EXIT_FAIL;
		goto cleanup;
	}
	if (ctl->json)
		printf("{\"services\":[");
	else
		printf("%-4s %-20s %-40s %12s %14s %10s\n", "ID", "SERVICE/BACKEND", "ENDPOINT",
		       "PACKETS", "BYTES", "NEW_FLOWS");
	for (id = 0; id < TD_MAX_SERVICES; id++) {
		if (!v.info[id].in_use)
			continue;
		tdctl_svc_name(&v, id, name, sizeof(name));
		tdctl_stats_sum(&v, v.m.svc_stats, id, &s);
		if (ctl->json) {
			printf("%s{\"id\":%u,\"name\":", n ? "," : "", id);
			tdctl_json_str(stdout, name);
			printf(",\"packets\":%llu,\"bytes\":%llu,\"new_flows\":%llu,\"backends\":[",
			       (unsigned long long)s.packets, (unsigned long long)s.bytes,
			       (unsigned long long)s.new_flows);
		} else {
			td_endpoint_format(&v.info[id].vip.addr, v.info[id].vip.family,
					   ntohs(v.info[id].vip.port), ep, sizeof(ep));
			printf("%-4u %-20s %-40s %12llu %14llu %10llu\n", id, name, ep,
			       (unsigned long long)s.packets, (unsigned long long)s.bytes,
			       (unsigned long long)s.new_flows);
		}
		for (b = 0, nb = 0; b < TD_MAX_BACKENDS; b++) {
			const struct td_backend *x = &v.bes[b];

			if (!tdctl_be_of(&v, b, id))
				continue;
			tdctl_stats_sum(&v, v.m.be_stats, b, &s);
			if (ctl->json) {
				td_addr_format(&x->addr, x->family, addr, sizeof(addr));
				printf("%s{\"id\":%u,\"address\":\"%s\",\"port\":%u,\"packets\":%llu,"
				       "\"bytes\":%llu,\"new_flows\":%llu}", nb ? "," : "", b, addr,
				       ntohs(x->port), (unsigned long long)s.packets,
				       (unsigned long long)s.bytes, (unsigned long long)s.new_flows);
			} else {
				td_endpoint_format(&x->addr, x->family, ntohs(x->port), ep,
						   sizeof(ep));
				printf("  %-4u %-18s %-40s %12llu %14llu %10llu\n", b, "", ep,
				       (unsigned long long)s.packets, (unsigned long long)s.bytes,
				       (unsigned long long)s.new_flows);
			}
			nb++;
		}
		if (ctl->json)
			printf("]}");
		n++;
	}
	if (ctl->json)
		printf("]");
	/* pass 0: events and passes, pass 1: drops */
	for (pass = 0; pass < 2; pass++) {
		if (ctl->json)
			printf(",\"%s\":{", pass ? "drops" : "counters");
		else
			printf("\n%-24s %14s\n", pass ? "DROP" : "COUNTER", "VALUE");
		for (c = 0, k = 0; c < TD_CNT_MAX; c++) {
			const char *cn = td_counter_name(c);

			if (!cn || !!td_counter_is_drop(c) != pass)
				continue;
			sum = 0;
			if (!bpf_map_lookup_elem(v.m.counters, &c, pc))
				for (int cpu = 0; cpu < v.ncpus; cpu++)
					sum += pc[cpu];
			if (ctl->json)
				printf("%s\"%s\":%llu", k ? "," : "", cn, (unsigned long long)sum);
			else
				printf("%-24s %14llu\n", cn, (unsigned long long)sum);
			k++;
		}
		if (ctl->json)
			printf("}");
	}
	if (ctl->json)
		printf("}\n");
cleanup:
	free(pc);
	tdctl_view_close(&v);
	return rc;
}

/* ---- conntrack -------------------------------------------------------------------------- */

static long tdctl_flush(int fd, size_t key_size)
{
	char key[64];
	long n = 0;

	/* always take the first key: deleting invalidates any cursor */
	while (bpf_map_get_next_key(fd, NULL, key) == 0) {
		if (bpf_map_delete_elem(fd, key))
			break;
		n++;
	}
	return n;
}

int tdctl_cmd_conntrack(const struct tdctl *ctl, const struct tdctl_cmd *cmd, int argc,
			char **argv)
{
	char cl[TD_ADDRSTRLEN], vip[TD_ADDRSTRLEN], be[TD_ADDRSTRLEN], name[TD_NAME_LEN + 1];
	struct td_flow_key key, next;
	struct tdctl_view v;
	bool flush = false;
	void *prev = NULL;
	long n = 0, nr;
	int i;

	if (tdctl_want_help(cmd, argc, argv))
		return 0;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--flush"))
			flush = true;
		else
			return tdctl_usage_error(cmd, "%s '%s'",
						 argv[i][0] == '-' ? "unknown option" :
						 "unexpected argument", argv[i]);
	}
	if (tdctl_view_open(ctl, &v))
		return TDCTL_EXIT_FAIL;
	if (flush) {
		n = tdctl_flush(v.m.ct, sizeof(struct td_flow_key));
		nr = tdctl_flush(v.m.rnat, sizeof(struct td_flow_key));
		if (ctl->json)
			printf("{\"flushed\":%ld,\"rnat_flushed\":%ld}\n", n, nr);
		else
			printf("flushed %ld conntrack entries and %ld reverse-NAT entries\n", n, nr);
		tdctl_view_close(&v);
		return 0;
	}
	if (ctl->json)
		printf("{\"flows\":[");
	else
		printf("%-5s %-40s %-40s %-40s %s\n", "PROTO", "CLIENT", "VIP", "BACKEND",
		       "SERVICE");
	while (bpf_map_get_next_key(v.m.ct, prev, &next) == 0) {
		struct td_ct ct;
		const struct td_backend *x;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(v.m.ct, &key, &ct))
			continue;
		x = ct.backend_id < TD_MAX_BACKENDS ? &v.bes[ct.backend_id] : NULL;
		td_addr_format(&key.src, key.family, cl, sizeof(cl));
		td_addr_format(&key.dst, key.family, vip, sizeof(vip));
		if (x && x->family)
			td_addr_format(&x->addr, x->family, be, sizeof(be));
		else
			snprintf(be, sizeof(be), "?");
		tdctl_svc_name(&v, ct.svc_id, name, sizeof(name));
		if (ctl->json) {
			printf("%s{\"client\":\"%s\",\"client_port\":%u,\"vip\":\"%s\","
			       "\"vip_port\":%u,\"proto\":\"%s\",\"backend\":\"%s\","
			       "\"backend_port\":%u,\"service\":", n ? "," : "", cl,
			       ntohs(key.sport), vip, ntohs(key.dport), td_proto_name(key.proto), be,
			       x ? ntohs(x->port) : 0);
			tdctl_json_str(stdout, name);
			printf("}");
		} else {
			char c_ep[TD_ENDPOINTSTRLEN], v_ep[TD_ENDPOINTSTRLEN], b_ep[TD_ENDPOINTSTRLEN];

			td_endpoint_format(&key.src, key.family, ntohs(key.sport), c_ep, sizeof(c_ep));
			td_endpoint_format(&key.dst, key.family, ntohs(key.dport), v_ep, sizeof(v_ep));
			if (x && x->family)
				td_endpoint_format(&x->addr, x->family, ntohs(x->port), b_ep,
						   sizeof(b_ep));
			else
				snprintf(b_ep, sizeof(b_ep), "?");
			printf("%-5s %-40s %-40s %-40s %s\n", td_proto_name(key.proto), c_ep, v_ep,
			       b_ep, name);
		}
		n++;
	}
	if (ctl->json)
		printf("]}\n");
	else if (!n)
		printf("(no flows)\n");
	tdctl_view_close(&v);
	return 0;
}

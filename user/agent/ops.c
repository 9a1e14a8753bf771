/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tdagent operations: reload as a diff, runtime overrides, health-driven rings, admin requests. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "addr.h"
#include "admin.h"
#include "gateway.h"
#include "agent.h"
#include "log.h"
#include "names.h"

/* ---- health --------------------------------------------------------------------------- */

static const char *td_be_key(char *buf, size_t len, const struct td_service_cfg *s,
			     const struct td_backend_cfg *b)
{
	return td_health_key_format(buf, len, s->name, &b->addr, b->family, b->port);
}

/* td_be_down_fn: a checked backend whose checker says DOWN */
static bool td_agent_be_down(void *arg, const struct td_service_cfg *s,
			     const struct td_backend_cfg *b)
{
	struct td_agent *a = arg;
	struct td_hc_status hs;
	char key[TD_HC_KEYSTRLEN];

	if (!a->health || s->health.type == TD_HC_NONE)
		return false;
	if (td_health_get(a->health, td_be_key(key, sizeof(key), s, b), &hs))
		return false;
	return !hs.healthy;
}

void td_agent_health_sync(struct td_agent *a)
{
	struct td_config view = {};
	struct td_hc_target *t = NULL, *gt = NULL;
	int ng = 0;
	char (*keys)[TD_AGENT_HC_KEYLEN] = NULL;
	size_t i, j, n = 0, cap;
	int err;

	if (!a->health)
		return;
	/* the runtime view without health: every backend that may carry traffic is checked */
	if (td_state_runtime(&a->cfg, &a->ovr, NULL, NULL, &view, NULL)) {
		td_warn("health: out of memory, checks not updated");
		return;
	}
	cap = td_state_n_backends(&view) + td_agent_mesh_n_backends(&a->cfg) + 1;
	t = calloc(cap, sizeof(*t));
	keys = calloc(cap, sizeof(*keys));
	if (!t || !keys) {
		td_warn("health: out of memory, checks not updated");
		goto cleanup;
	}
	for (i = 0; i < view.n_services; i++) {
		const struct td_service_cfg *s = &view.services[i];
		const struct td_health_cfg *h = &s->health;

		if (h->type == TD_HC_NONE)
			continue;
		for (j = 0; j < s->n_backends; j++, n++) {
			const struct td_backend_cfg *b = &s->backends[j];

			t[n].key = td_be_key(keys[n], sizeof(keys[n]), s, b);
			t[n].addr = b->addr;
			t[n].family = b->family;
			t[n].type = h->type;
			t[n].port = h->port ? h->port : b->port;
			t[n].path = h->type == TD_HC_HTTP && h->path[0] ? h->path : NULL;
			t[n].interval_ms = h->interval_ms;
			t[n].timeout_ms = h->timeout_ms;
			t[n].rise = h->rise;
			t[n].fall = h->fall;
		}
	}
	/* mesh services: a TCP check of every backend (no health: key for them) */
	n += td_agent_mesh_targets(a, t + n, keys + n, cap - n);
	/* the gateway's upstreams (keys "gw:UPSTREAM/ADDR:PORT", owned by gt) */
	ng = td_agent_gw_targets(a, &gt);
	if (ng > 0) {
		struct td_hc_target *all = realloc(t, (n + (size_t)ng) * sizeof(*t));

		if (!all) {
			td_warn("health: out of memory, checks not updated");
			goto cleanup;
		}
		t = all;
		memcpy(t + n, gt, (size_t)ng * sizeof(*t));
		n += (size_t)ng;
	}
	err = td_health_set(a->health, t, n);
	if (err)
		td_warn("health: cannot set %zu checks: %s", n, strerror(-err));
	else if (n)
		td_debug("health: %zu backends checked", n);
	td_agent_health_arm(a);
cleanup:
	if (gt)
		td_gw_health_targets_free(gt, (size_t)ng);
	free(keys);
	free(t);
	td_config_free(&view);
}

void td_agent_health_arm(struct td_agent *a)
{
	uint64_t dl, now;
	double after = 0;

	if (!a->health || !a->loop)
		return;
	ev_timer_stop(a->loop, &a->health_timer);
	dl = td_health_next_deadline_ms(a->health);
	if (dl == UINT64_MAX)
		return;
	now = td_health_now_ms();
	if (dl > now)
		after = (double)(dl - now) / 1000.0;
	ev_timer_set(&a->health_timer, after, 0.);
	ev_timer_start(a->loop, &a->health_timer);
}

/* ---- apply ---------------------------------------------------------------------------- */

int td_agent_apply(struct td_agent *a, const struct td_config *file,
		   const struct td_overrides *ovr)
{
	struct td_config eff = {};
	size_t failopen = 0;
	__u8 *flags = NULL;
	int err;

	err = td_state_runtime_flags(file, ovr, td_agent_be_down, a, &eff, &flags, &failopen);
	if (err) {
		td_err("apply: out of memory");
		return err;
	}
	/* drained / down / override flags go into td_backends so tdctl can tell without us */
	err = td_state_apply_flags(&a->m, &eff, flags, &a->st);
	free(flags);
	if (err) {
		td_config_free(&eff);
		return err;
	}
	if (failopen && failopen != a->n_failopen)
		td_warn("health: every backend of %zu service(s) is down: balancing over all of them "
			"(fail open) until one recovers", failopen);
	a->n_failopen = failopen;
	td_config_free(&a->eff);
	a->eff = eff;
	if (a->nl)
		td_nl_refresh(a->nl, a->m.backends, a->st.be_ids, a->st.n_backends);
	return 0;
}

static void td_reload_record(struct td_agent *a, bool ok, struct td_errors *errs)
{
	td_errors_free(&a->last_reload.errors);
	a->last_reload.done = true;
	a->last_reload.ok = ok;
	a->last_reload.time = time(NULL);
	a->last_reload.generation = a->st.generation;
	if (errs) {
		a->last_reload.errors = *errs;
		memset(errs, 0, sizeof(*errs));
	}
}

static bool td_cfg_iface(const struct td_config *cfg, const char *name, __u8 *mode)
{
	size_t i;

	for (i = 0; i < cfg->n_ifaces; i++) {
		if (!strcmp(cfg->ifaces[i].name, name)) {
			if (mode)
				*mode = cfg->ifaces[i].xdp_mode;
			return true;
		}
	}
	return false;
}

/* A reload refused before anything changed: log the errors, record them, free ncfg. */
static int td_reload_reject(struct td_agent *a, struct td_config *ncfg, struct td_errors *errs,
			    int mfd)
{
	for (size_t i = 0; i < errs->n; i++)
		td_err("%s", errs->msgs[i]);
	td_err("reload: rejected; running state unchanged (generation %u)", a->st.generation);
	td_reload_record(a, false, errs);
	td_config_free(ncfg);
	if (mfd >= 0)
		close(mfd);
	return -EINVAL;
}

int td_agent_reload(struct td_agent *a, const char *why)
{
	struct td_config ncfg = {};
	struct td_errors errs = {};
	size_t i, n_ovr = a->ovr.n;
	__u8 mode;
	int err, mfd = -1;

	td_info("%s: reloading %s", why, a->config_path);
	err = td_config_load(a->config_path, &ncfg, &errs);
	if (err) {
		if (!errs.n)
			td_errors_add(&errs, a->config_path, 0, "%s", strerror(-err));
		for (i = 0; i < errs.n; i++)
			td_err("%s", errs.msgs[i]);
		td_err("reload: %s is invalid (%zu error(s)); running state unchanged (generation %u)",
		       a->config_path, errs.n, a->st.generation);
		td_reload_record(a, false, &errs);
		return -EINVAL;
	}
	/* interfaces must exist before anything changes */
	for (i = 0; i < ncfg.n_ifaces; i++) {
		if (!if_nametoindex(ncfg.ifaces[i].name)) {
			td_errors_add(&errs, a->config_path, ncfg.ifaces[i].line,
				      "node.interfaces: unknown interface %s", ncfg.ifaces[i].name);
		}
	}
	/* the mesh's cgroup folders too */
	td_agent_mesh_check(a, &ncfg, &errs);
	if (errs.n)
		return td_reload_reject(a, &ncfg, &errs, -1);
	if (ncfg.conntrack_size != a->cfg.conntrack_size)
		td_warn("reload: l4.conntrack_size change needs a restart with --cleanup; ignored");
	if (strcmp(ncfg.bpffs, a->cfg.bpffs))
		td_warn("reload: node.bpffs change needs a restart; ignored");
	if (strcmp(ncfg.admin_socket, a->cfg.admin_socket))
		td_warn("reload: node.admin_socket change needs a restart; still serving %s",
			a->admin_path);
	/* a changed node.metrics_listen re-binds: the new listener first, or nothing changes */
	if (strcmp(ncfg.metrics_listen, a->metrics_addr) && ncfg.metrics_listen[0]) {
		mfd = td_agent_metrics_open(ncfg.metrics_listen);
		if (mfd < 0) {
			td_errors_add(&errs, a->config_path, 0, "node.metrics_listen: cannot listen "
				      "on %s: %s", ncfg.metrics_listen,
				      mfd == -EACCES ? "not a loopback address" : strerror(-mfd));
			td_err("reload: rejected; running state unchanged (generation %u), metrics "
			       "still on %s", a->st.generation,
			       a->metrics_addr[0] ? a->metrics_addr : "off");
			td_reload_record(a, false, &errs);
			td_config_free(&ncfg);
			return -EINVAL;
		}
	}
	/* the gateway and the forward proxy each switch as one step (new listeners bound first) or
	 * not at all; the proxy's section is checked before the gateway switches, so only a proxy
	 * listener that cannot be bound can still refuse the reload after that (logged) */
	if (td_agent_fp_check(&ncfg, &errs) || td_agent_gw_reload(a, &ncfg, &errs))
		return td_reload_reject(a, &ncfg, &errs, mfd);
	if (td_agent_fp_reload(a, &ncfg, &errs)) {
		if (a->gw)
			td_warn("reload: the gateway already runs the new configuration");
		return td_reload_reject(a, &ncfg, &errs, mfd);
	}
	for (i = 0; i < ncfg.n_ifaces; i++) {
		if (td_cfg_iface(&a->cfg, ncfg.ifaces[i].name, &mode) &&
		    mode == ncfg.ifaces[i].xdp_mode)
			continue;
		err = td_dp_attach(a->bpffs, ncfg.ifaces[i].name, ncfg.ifaces[i].xdp_mode);
		if (err) {
			td_errors_add(&errs, a->config_path, ncfg.ifaces[i].line,
				      "node.interfaces: cannot attach to %s: %s", ncfg.ifaces[i].name,
				      strerror(-err));
			td_err("reload: rejected; services unchanged (generation %u)",
			       a->st.generation);
			td_reload_record(a, false, &errs);
			td_config_free(&ncfg);
			if (mfd >= 0)
				close(mfd);
			return err;
		}
	}
	{
		struct td_overrides none = {};

		err = td_agent_apply(a, &ncfg, &none);
	}
	if (err) {
		td_errors_add(&errs, a->config_path, 0, "apply failed: %s", strerror(-err));
		td_err("reload: apply failed (%s); maps may be partly updated, the next reload "
		       "retries", strerror(-err));
		td_reload_record(a, false, &errs);
		td_config_free(&ncfg);
		if (mfd >= 0)
			close(mfd);
		return err;
	}
	err = td_agent_mesh_sync(a, &ncfg, false);
	if (err) {
		td_errors_add(&errs, a->config_path, 0, "mesh apply failed: %s", strerror(-err));
		td_err("reload: mesh apply failed (%s); the next reload retries", strerror(-err));
		td_reload_record(a, false, &errs);
		td_config_free(&ncfg);
		if (mfd >= 0)
			close(mfd);
		return err;
	}
	if (strcmp(ncfg.metrics_listen, a->metrics_addr)) {
		td_info("reload: node.metrics_listen %s -> %s",
			a->metrics_addr[0] ? a->metrics_addr : "off",
			ncfg.metrics_listen[0] ? ncfg.metrics_listen : "off");
		if (td_agent_metrics_start(a, mfd, ncfg.metrics_listen))
			td_err("reload: metrics endpoint off until the next reload or restart");
	}
	for (i = 0; i < a->cfg.n_ifaces; i++)
		if (!td_cfg_iface(&ncfg, a->cfg.ifaces[i].name, NULL))
			td_dp_detach(a->bpffs, a->cfg.ifaces[i].name);
	td_agent_gw_commit(a, &ncfg);
	td_agent_fp_commit(a, &ncfg);
	td_config_free(&a->cfg);
	a->cfg = ncfg;
	td_overrides_free(&a->ovr);
	td_agent_health_sync(a);
	td_reload_record(a, true, NULL);
	td_info("reloaded %s: generation %u, %zu services (%zu unchanged, %zu rebuilt, %zu added, "
		"%zu removed, %ld conntrack entries flushed), %zu backends%s", a->config_path,
		a->st.generation, a->st.n_services, a->st.svc_same, a->st.svc_changed,
		a->st.svc_added, a->st.svc_removed, a->st.ct_flushed, a->st.n_backends,
		n_ovr ? "; runtime overrides discarded: the file's view is restored" : "");
	return 0;
}

/* ---- admin requests ------------------------------------------------------------------- */

static char *td_json_line(struct json_object *o)
{
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return s;
}

static char *td_resp_error(const char *msg, const struct td_errors *errs)
{
	struct json_object *o = json_object_new_object(), *arr;
	size_t i;

	if (!o)
		return NULL;
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	if (errs) {
		arr = json_object_new_array();
		for (i = 0; i < errs->n; i++)
			json_object_array_add(arr, json_object_new_string(errs->msgs[i]));
		json_object_object_add(o, "errors", arr);
	}
	return td_json_line(o);
}

static const char *td_ovr_name(int op)
{
	switch (op) {
	case TD_OVR_DRAIN: return "drain";
	case TD_OVR_ADD: return "add";
	case TD_OVR_REMOVE: return "remove";
	default: return "undrain";
	}
}

static struct json_object *td_overrides_json(const struct td_overrides *ovr)
{
	struct json_object *arr = json_object_new_array(), *o;
	char ep[TD_ENDPOINTSTRLEN];
	size_t i;

	for (i = 0; i < ovr->n; i++) {
		const struct td_override *v = &ovr->v[i];

		o = json_object_new_object();
		json_object_object_add(o, "op", json_object_new_string(td_ovr_name(v->op)));
		json_object_object_add(o, "service", json_object_new_string(v->service));
		td_endpoint_format(&v->addr, v->family, v->port, ep, sizeof(ep));
		json_object_object_add(o, "backend", json_object_new_string(ep));
		if (v->op == TD_OVR_ADD)
			json_object_object_add(o, "weight", json_object_new_int(v->weight));
		json_object_array_add(arr, o);
	}
	return arr;
}

static const struct td_backend_cfg *td_file_backend(const struct td_config *cfg, const char *svc,
						    const struct td_backend_cfg *b)
{
	size_t i, j;

	for (i = 0; i < cfg->n_services; i++) {
		if (strncmp(cfg->services[i].name, svc, TD_NAME_LEN))
			continue;
		for (j = 0; j < cfg->services[i].n_backends; j++) {
			const struct td_backend_cfg *f = &cfg->services[i].backends[j];

			if (f->family == b->family && f->port == b->port &&
			    td_addr_equal(&f->addr, &b->addr))
				return f;
		}
	}
	return NULL;
}

static struct json_object *td_reload_json(const struct td_reload_result *r)
{
	struct json_object *o, *arr;
	size_t i;

	if (!r->done)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(r->ok));
	json_object_object_add(o, "time", json_object_new_int64((int64_t)r->time));
	json_object_object_add(o, "generation", json_object_new_int64(r->generation));
	arr = json_object_new_array();
	for (i = 0; i < r->errors.n; i++)
		json_object_array_add(arr, json_object_new_string(r->errors.msgs[i]));
	json_object_object_add(o, "errors", arr);
	return o;
}

static char *td_resp_status(struct td_agent *a)
{
	struct json_object *o = json_object_new_object(), *ag, *svcs, *so, *bes, *bo;
	char ep[TD_ENDPOINTSTRLEN], addr[TD_ADDRSTRLEN], key[TD_HC_KEYSTRLEN];
	size_t i, j, k;

	if (!o)
		return NULL;
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	ag = json_object_new_object();
	json_object_object_add(ag, "version", json_object_new_string(TD_VERSION));
	json_object_object_add(ag, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(ag, "config", json_object_new_string(a->config_path));
	json_object_object_add(ag, "bpffs", json_object_new_string(a->bpffs));
	json_object_object_add(ag, "admin_socket", json_object_new_string(a->admin_path));
	json_object_object_add(ag, "metrics_listen", json_object_new_string(
		a->metrics_addr[0] ? a->metrics_addr : "off"));
	json_object_object_add(ag, "started", json_object_new_int64((int64_t)a->started));
	json_object_object_add(ag, "uptime_s",
			       json_object_new_int64((int64_t)(time(NULL) - a->started)));
	json_object_object_add(o, "agent", ag);
	json_object_object_add(o, "generation", json_object_new_int64(a->st.generation));
	json_object_object_add(o, "last_reload", td_reload_json(&a->last_reload));
	json_object_object_add(o, "overrides_in_effect", json_object_new_boolean(a->ovr.n > 0));
	json_object_object_add(o, "overrides", td_overrides_json(&a->ovr));
	json_object_object_add(o, "health_failopen_services", json_object_new_int64(a->n_failopen));
	svcs = json_object_new_array();
	for (i = 0, k = 0; i < a->eff.n_services; i++) {
		const struct td_service_cfg *s = &a->eff.services[i];

		so = json_object_new_object();
		json_object_object_add(so, "id", json_object_new_int64(a->st.svc_ids[i]));
		json_object_object_add(so, "name", json_object_new_string(s->name));
		json_object_object_add(so, "health_check",
				       json_object_new_string(td_hc_type_name(s->health.type)));
		bes = json_object_new_array();
		for (j = 0; j < s->n_backends; j++, k++) {
			const struct td_backend_cfg *b = &s->backends[j];
			const struct td_backend_cfg *f = td_file_backend(&a->cfg, s->name, b);
			const struct td_override *ov = td_overrides_find(&a->ovr, s->name, &b->addr,
									  b->family, b->port);
			struct td_hc_status hs;
			const char *health = "none";

			if (s->health.type != TD_HC_NONE) {
				health = "unknown";
				if (a->health &&
				    !td_health_get(a->health, td_be_key(key, sizeof(key), s, b), &hs))
					health = hs.healthy ? "up" : "down";
			}
			bo = json_object_new_object();
			json_object_object_add(bo, "id", json_object_new_int64(a->st.be_ids[k]));
			td_endpoint_format(&b->addr, b->family, b->port, ep, sizeof(ep));
			td_addr_format(&b->addr, b->family, addr, sizeof(addr));
			json_object_object_add(bo, "backend", json_object_new_string(ep));
			json_object_object_add(bo, "address", json_object_new_string(addr));
			json_object_object_add(bo, "port", json_object_new_int(b->port));
			json_object_object_add(bo, "weight", json_object_new_int(
				ov && ov->op == TD_OVR_ADD ? ov->weight : f ? f->weight : b->weight));
			json_object_object_add(bo, "ring_weight", json_object_new_int(b->weight));
			json_object_object_add(bo, "source", json_object_new_string(
				ov && ov->op == TD_OVR_ADD ? "runtime" : "file"));
			json_object_object_add(bo, "drained", json_object_new_boolean(
				ov && ov->op == TD_OVR_DRAIN));
			json_object_object_add(bo, "health", json_object_new_string(health));
			json_object_array_add(bes, bo);
		}
		json_object_object_add(so, "backends", bes);
		json_object_array_add(svcs, so);
	}
	json_object_object_add(o, "services", svcs);
	json_object_object_add(o, "mesh", td_agent_mesh_json(a));
	json_object_object_add(o, "gateway", td_agent_gw_json(a));
	json_object_object_add(o, "forward_proxy", td_agent_fp_json(a));
	return td_json_line(o);
}

static char *td_resp_reload(struct td_agent *a)
{
	struct json_object *o;
	size_t n_ovr = a->ovr.n;
	int err;

	err = td_agent_reload(a, "admin request");
	if (err)
		return td_resp_error(err == -EINVAL ? "invalid configuration: running state unchanged" :
				     "reload failed", &a->last_reload.errors);
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "generation", json_object_new_int64(a->st.generation));
	json_object_object_add(o, "services", json_object_new_int64(a->st.n_services));
	json_object_object_add(o, "unchanged", json_object_new_int64(a->st.svc_same));
	json_object_object_add(o, "rebuilt", json_object_new_int64(a->st.svc_changed));
	json_object_object_add(o, "added", json_object_new_int64(a->st.svc_added));
	json_object_object_add(o, "removed", json_object_new_int64(a->st.svc_removed));
	json_object_object_add(o, "conntrack_flushed", json_object_new_int64(a->st.ct_flushed));
	json_object_object_add(o, "overrides_discarded", json_object_new_int64(n_ovr));
	if (a->gw) {
		struct json_object *g = td_agent_gw_json(a), *gen;

		if (g && json_object_object_get_ex(g, "generation", &gen))
			json_object_object_add(o, "gateway_generation", json_object_get(gen));
		json_object_put(g);
	}
	return td_json_line(o);
}

static char *td_resp_override(struct td_agent *a, const struct td_admin_req *req)
{
	struct td_overrides next = {};
	struct json_object *o;
	char msg[TD_ADMIN_ERR_LEN], ep[TD_ENDPOINTSTRLEN], *resp = NULL;
	int op, err;

	switch (req->cmd) {
	case TD_ADM_DRAIN: op = TD_OVR_DRAIN; break;
	case TD_ADM_UNDRAIN: op = 0; break;
	case TD_ADM_BACKEND_ADD: op = TD_OVR_ADD; break;
	default: op = TD_OVR_REMOVE; break;
	}
	td_endpoint_format(&req->addr, req->family, req->port, ep, sizeof(ep));
	if (a->ovr.n) {
		next.v = malloc(a->ovr.n * sizeof(*next.v));
		if (!next.v)
			return td_resp_error("out of memory", NULL);
		memcpy(next.v, a->ovr.v, a->ovr.n * sizeof(*next.v));
		next.n = a->ovr.n;
	}
	err = td_overrides_change(&next, &a->cfg, op, req->service, &req->addr, req->family,
				  req->port, req->weight, msg, sizeof(msg));
	if (err == -EALREADY) {
		o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_object_object_add(o, "changed", json_object_new_boolean(0));
		json_object_object_add(o, "message", json_object_new_string(msg));
		json_object_object_add(o, "generation", json_object_new_int64(a->st.generation));
		resp = td_json_line(o);
		goto cleanup;
	}
	if (err) {
		td_warn("admin: %s %s %s refused: %s", td_admin_cmd_name(req->cmd), req->service, ep,
			msg);
		resp = td_resp_error(msg, NULL);
		goto cleanup;
	}
	err = td_agent_apply(a, &a->cfg, &next);
	if (err) {
		snprintf(msg, sizeof(msg), "apply failed: %s", strerror(-err));
		resp = td_resp_error(msg, NULL);
		goto cleanup;
	}
	td_overrides_free(&a->ovr);
	a->ovr = next;
	memset(&next, 0, sizeof(next));
	if (req->cmd == TD_ADM_BACKEND_ADD || req->cmd == TD_ADM_BACKEND_REMOVE)
		td_agent_health_sync(a);
	td_info("runtime override: %s %s %s%s (generation %u, %zu override(s) in effect; a reload "
		"restores the file's view)", td_admin_cmd_name(req->cmd), req->service, ep,
		req->cmd == TD_ADM_BACKEND_ADD ? (req->weight ? "" : " weight 0") : "",
		a->st.generation, a->ovr.n);
	o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "changed", json_object_new_boolean(1));
	json_object_object_add(o, "generation", json_object_new_int64(a->st.generation));
	json_object_object_add(o, "overrides_in_effect", json_object_new_boolean(a->ovr.n > 0));
	resp = td_json_line(o);
cleanup:
	td_overrides_free(&next);
	return resp;
}

char *td_agent_handle(void *arg, const char *line, size_t len)
{
	struct td_agent *a = arg;
	struct td_admin_req req;
	char err[TD_ADMIN_ERR_LEN];

	if (td_admin_req_parse(line, len, &req, err, sizeof(err))) {
		td_debug("admin: bad request: %s", err);
		return td_resp_error(err, NULL);
	}
	td_debug("admin: %s", td_admin_cmd_name(req.cmd));
	switch (req.cmd) {
	case TD_ADM_STATUS:
		return td_resp_status(a);
	case TD_ADM_RELOAD:
		return td_resp_reload(a);
	default:
		return td_resp_override(a, &req);
	}
}

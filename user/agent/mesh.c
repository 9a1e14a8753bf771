/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tdagent and the mesh: section: load/attach the cgroup programs, apply as a diff, health, denial log. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <json-c/json.h>

#include "addr.h"
#include "agent.h"
#include "log.h"
#include "mesh_scan.h"
#include "names.h"

void td_agent_mesh_init(struct td_agent *a)
{
	memset(&a->mesh, 0, sizeof(a->mesh));
	td_mesh_maps_init(&a->mesh.maps);
}

static const char *td_mesh_hc_key(char *buf, size_t len, const struct td_mesh_service_cfg *s,
				  const struct td_backend_cfg *b)
{
	char svc[TD_NAME_LEN + 8];

	snprintf(svc, sizeof(svc), "%s%s", TD_AGENT_MESH_HC_PREFIX, s->name);
	return td_health_key_format(buf, len, svc, &b->addr, b->family, b->port);
}

/* the checker says DOWN (unknown keys are up: "healthy until proven otherwise") */
static bool td_mesh_be_down(const struct td_agent *a, const struct td_mesh_service_cfg *s,
			    const struct td_backend_cfg *b)
{
	char key[TD_AGENT_HC_KEYLEN];
	struct td_hc_status hs;

	if (!a->health || td_health_get(a->health, td_mesh_hc_key(key, sizeof(key), s, b), &hs))
		return false;
	return !hs.healthy;
}

/* cgroup_root of cfg resolved into buf (the cgroup2 mount when empty); 0 or -errno */
static int td_mesh_root(const struct td_config *cfg, char *buf, size_t len)
{
	return td_mesh_cgroup_root(cfg->mesh.cgroup_root, buf, len);
}

int td_agent_mesh_check(const struct td_agent *a, const struct td_config *cfg,
			struct td_errors *errs)
{
	char root[PATH_MAX], path[PATH_MAX * 2];
	struct statfs sfs;
	struct stat st;
	size_t i, n = errs->n;

	if (!cfg->mesh.present)
		return 0;
	if (td_mesh_root(cfg, root, sizeof(root))) {
		td_errors_add(errs, a->config_path, 0,
			      "mesh.cgroup_root: not set and no cgroup2 filesystem is mounted");
		return -EINVAL;
	}
	if (statfs(root, &sfs) || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		td_errors_add(errs, a->config_path, 0, "mesh.cgroup_root: %s is not a cgroup2 folder%s",
			      root, errno == ENOENT ? " (it does not exist)" : "");
		return -EINVAL;
	}
	for (i = 0; i < cfg->mesh.n_services; i++) {
		const struct td_mesh_service_cfg *s = &cfg->mesh.services[i];

		if (!s->cgroup[0])
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, s->cgroup);
		if (stat(path, &st) || !S_ISDIR(st.st_mode))
			td_errors_add(errs, a->config_path, s->cgroup_line ? s->cgroup_line : s->line,
				      "mesh.services[%zu].cgroup: service '%s': cgroup %s does not "
				      "exist (create it before starting the workload)", i, s->name,
				      path);
	}
	return errs->n > n ? -EINVAL : 0;
}

size_t td_agent_mesh_n_backends(const struct td_config *cfg)
{
	size_t i, n = 0;

	for (i = 0; cfg->mesh.present && i < cfg->mesh.n_services; i++)
		n += cfg->mesh.services[i].n_backends;
	return n;
}

/*
 * A copy of cfg's mesh section whose down backends have weight 0 (never chosen), so one
 * td_mesh_apply() installs tables that already leave them out. Free with td_mesh_view_free.
 */
static int td_mesh_view(const struct td_agent *a, const struct td_mesh_cfg *in,
			struct td_mesh_cfg *out, size_t *n_down)
{
	size_t i, j;

	*out = *in;
	*n_down = 0;
	out->services = calloc(in->n_services ? in->n_services : 1, sizeof(*out->services));
	if (!out->services)
		return -ENOMEM;
	for (i = 0; i < in->n_services; i++) {
		struct td_mesh_service_cfg *s = &out->services[i];

		*s = in->services[i];
		s->backends = calloc(s->n_backends ? s->n_backends : 1, sizeof(*s->backends));
		if (!s->backends) {
			for (j = 0; j < i; j++)
				free(out->services[j].backends);
			free(out->services);
			out->services = NULL;
			return -ENOMEM;
		}
		memcpy(s->backends, in->services[i].backends, s->n_backends * sizeof(*s->backends));
		for (j = 0; j < s->n_backends; j++) {
			if (td_mesh_be_down(a, s, &s->backends[j])) {
				s->backends[j].weight = 0;
				(*n_down)++;
			}
		}
	}
	return 0;
}

static void td_mesh_view_free(struct td_mesh_cfg *v)
{
	size_t i;

	for (i = 0; v->services && i < v->n_services; i++)
		free(v->services[i].backends);
	free(v->services);
	v->services = NULL;
}

/* ---- denial events ------------------------------------------------------------------------ */

static void td_mesh_log_suppressed(struct td_agent *a)
{
	if (a->mesh.suppressed)
		td_warn("mesh: %llu more denial(s) in the last second not logged (at most %d lines "
			"per second; the counters have them all: tdctl mesh)",
			(unsigned long long)a->mesh.suppressed, TD_AGENT_MESH_LOG_PER_S);
	a->mesh.suppressed = 0;
}

static void td_on_mesh_event(const struct td_mesh_event *e, void *ctx)
{
	struct td_agent *a = ctx;
	char line[256];
	double now = ev_now(a->loop);

	a->mesh.events_seen++;
	if (now - a->mesh.win_start >= 1.0) {
		td_mesh_log_suppressed(a);
		a->mesh.win_start = now;
		a->mesh.win_lines = 0;
	}
	if (a->mesh.win_lines >= TD_AGENT_MESH_LOG_PER_S) {
		if (!a->mesh.suppressed++) {
			/* report the count when the window ends, even if no event follows */
			ev_timer_stop(a->loop, &a->mesh.log_timer);
			ev_timer_set(&a->mesh.log_timer, a->mesh.win_start + 1.0 - now + 0.001, 0.);
			ev_timer_start(a->loop, &a->mesh.log_timer);
		}
		return;
	}
	a->mesh.win_lines++;
	td_warn("%s", td_mesh_event_format(&a->mesh.maps, e, line, sizeof(line)));
}

static void td_on_mesh_log_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct td_agent *a = w->data;

	td_mesh_log_suppressed(a);
	a->mesh.win_start = ev_now(loop);
	a->mesh.win_lines = 0;
}

static void td_on_mesh_events(struct ev_loop *loop, ev_io *w, int revents)
{
	struct td_agent *a = w->data;
	int n;

	n = td_mesh_events_consume(a->mesh.events);
	if (n < 0 && n != -EINTR)
		td_warn("mesh: reading denial events: %s", strerror(-n));
}

static int td_mesh_events_start(struct td_agent *a)
{
	if (a->mesh.events)
		return 0;
	a->mesh.events = td_mesh_events_new(&a->mesh.maps, td_on_mesh_event, a);
	if (!a->mesh.events) {
		int err = -errno;

		td_err("mesh: cannot read denial events: %s", strerror(-err));
		return err;
	}
	ev_io_init(&a->mesh.events_io, td_on_mesh_events, td_mesh_events_fd(a->mesh.events),
		   EV_READ);
	ev_init(&a->mesh.log_timer, td_on_mesh_log_timer);
	a->mesh.events_io.data = a->mesh.log_timer.data = a;
	if (a->loop)
		ev_io_start(a->loop, &a->mesh.events_io);
	return 0;
}

static void td_mesh_events_stop(struct td_agent *a)
{
	if (!a->mesh.events)
		return;
	if (a->loop) {
		ev_io_stop(a->loop, &a->mesh.events_io);
		ev_timer_stop(a->loop, &a->mesh.log_timer);
	}
	td_mesh_log_suppressed(a);
	td_mesh_events_free(a->mesh.events);
	a->mesh.events = NULL;
}

/* ---- load, apply, attach ------------------------------------------------------------------ */

static int td_mesh_open(struct td_agent *a)
{
	bool adopted = false;
	int err;

	if (a->mesh.open)
		return 0;
	err = td_mesh_load(a->bpffs, &adopted);
	if (err)
		return err;
	err = td_mesh_maps_open(a->bpffs, &a->mesh.maps);
	if (err)
		return err;
	a->mesh.open = true;
	td_info("mesh: programs %s at %s", adopted ?
		"adopted (pinned maps reused: live connections keep their state)" :
		"loaded and pinned", a->bpffs);
	return 0;
}

/* without a mesh: section: the pinned maps (if any) stay readable for metrics and status */
static void td_mesh_open_existing(struct td_agent *a)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/%s", a->bpffs, TD_MAP_M_CNT);
	if (a->mesh.open || access(path, F_OK))
		return;
	if (!td_mesh_maps_open(a->bpffs, &a->mesh.maps))
		a->mesh.open = true;
}

/* the same folder, also under another spelling (trailing '/', symlink); true when unsure */
static bool td_mesh_same_dir(const char *x, const char *y)
{
	struct stat a, b;

	if (!strcmp(x, y) || stat(x, &a) || stat(y, &b))
		return true;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* td_mesh_scan_fn: detach from a folder that is not the configured root (an earlier agent's) */
struct td_mesh_stale {
	const char *bpffs;
	const char *root;
};

static int td_mesh_detach_stale(const char *cgroup, void *ctx)
{
	const struct td_mesh_stale *st = ctx;
	int n;

	if (td_mesh_same_dir(cgroup, st->root))
		return 0;
	n = td_mesh_detach(st->bpffs, cgroup);
	if (n > 0)
		td_info("mesh: %d program(s) an earlier agent attached to %s detached (the root is "
			"now %s)", n, cgroup, st->root);
	return 0;
}

int td_agent_mesh_sync(struct td_agent *a, const struct td_config *cfg, bool start)
{
	struct td_mesh_cfg view = {};
	char root[PATH_MAX];
	size_t n_down = 0;
	int err, n;

	if (!cfg->mesh.present) {
		if (a->mesh.attached) {
			n = td_mesh_detach(a->bpffs, a->mesh.root);
			if (n < 0)
				return n;
			td_info("mesh: section removed: %d program(s) detached from %s; pinned maps "
				"and live sockets' state kept", n, a->mesh.root);
			a->mesh.attached = false;
		} else if (start) {
			n = td_mesh_detach_everywhere(a->bpffs);
			if (n > 0)
				td_info("mesh: no mesh: section: %d program(s) an earlier agent "
					"attached were detached", n);
		}
		td_mesh_events_stop(a);
		td_mesh_open_existing(a);
		return 0;
	}
	err = td_mesh_root(cfg, root, sizeof(root));
	if (err)
		return err;
	err = td_mesh_open(a);
	if (err)
		return err;
	err = td_mesh_view(a, &cfg->mesh, &view, &n_down);
	if (err) {
		td_err("mesh: out of memory");
		return err;
	}
	err = td_mesh_apply(&a->mesh.maps, &view, root, a->st.generation);
	td_mesh_view_free(&view);
	if (err)
		return err;
	err = td_mesh_attach(a->bpffs, root);
	if (err)
		return err;
	if (a->mesh.attached && !td_mesh_same_dir(a->mesh.root, root)) {
		n = td_mesh_detach(a->bpffs, a->mesh.root);
		td_info("mesh: cgroup root %s -> %s (%d program(s) detached from the old one)",
			a->mesh.root, root, n < 0 ? 0 : n);
	}
	if (start) {
		struct td_mesh_stale st = { .bpffs = a->bpffs, .root = root };

		td_mesh_scan_attached(a->bpffs, td_mesh_detach_stale, &st);
	}
	snprintf(a->mesh.root, sizeof(a->mesh.root), "%s", root);
	a->mesh.attached = true;
	td_mesh_events_start(a);   /* without it denials are still counted: not fatal */
	td_info("mesh: %zu service(s), %zu allow rule(s), default %s, attached to %s%s",
		cfg->mesh.n_services, cfg->mesh.n_allow,
		cfg->mesh.default_policy == TD_MESH_POLICY_ALLOW ? "allow" : "deny", root,
		n_down ? " (down backends left out)" : "");
	return 0;
}

/* ---- health ------------------------------------------------------------------------------- */

size_t td_agent_mesh_targets(const struct td_agent *a, struct td_hc_target *t,
			     char (*keys)[TD_AGENT_HC_KEYLEN], size_t cap)
{
	const struct td_mesh_cfg *m = &a->cfg.mesh;
	size_t i, j, n = 0;

	if (!m->present || !a->mesh.attached)
		return 0;
	for (i = 0; i < m->n_services; i++) {
		const struct td_mesh_service_cfg *s = &m->services[i];

		/* a TCP connect says nothing about a UDP-only backend: UDP services are not
		 * checked (their backends always count as healthy; see docs/mesh.md) */
		if (s->proto != TD_PROTO_TCP)
			continue;
		for (j = 0; j < s->n_backends && n < cap; j++, n++) {
			const struct td_backend_cfg *b = &s->backends[j];

			memset(&t[n], 0, sizeof(t[n]));
			t[n].key = td_mesh_hc_key(keys[n], sizeof(keys[n]), s, b);
			t[n].addr = b->addr;
			t[n].family = b->family;
			t[n].type = TD_HC_TCP;
			t[n].port = b->port;
			t[n].interval_ms = TD_AGENT_MESH_HC_INTERVAL_MS;
			t[n].timeout_ms = TD_AGENT_MESH_HC_TIMEOUT_MS;
			t[n].rise = TD_AGENT_MESH_HC_RISE;
			t[n].fall = TD_AGENT_MESH_HC_FALL;
		}
	}
	return n;
}

void td_agent_mesh_health(struct td_agent *a)
{
	const struct td_mesh_cfg *m = &a->cfg.mesh;
	struct td_backend_cfg *healthy = NULL;
	size_t i, j, n;
	__u32 id;
	int err;

	a->mesh.dirty = false;
	if (!m->present || !a->mesh.attached)
		return;
	for (i = 0; i < m->n_services; i++) {
		const struct td_mesh_service_cfg *s = &m->services[i];

		free(healthy);
		healthy = calloc(s->n_backends ? s->n_backends : 1, sizeof(*healthy));
		if (!healthy) {
			td_err("mesh: health: out of memory; tables unchanged");
			return;
		}
		for (j = 0, n = 0; j < s->n_backends; j++)
			if (!td_mesh_be_down(a, s, &s->backends[j]))
				healthy[n++] = s->backends[j];
		err = td_mesh_id_by_name(&a->mesh.maps, s->name, &id);
		if (!err)
			err = td_mesh_set_backends(&a->mesh.maps, id, healthy, n);
		if (err)
			td_err("mesh: service '%s': cannot update its selection table: %s", s->name,
			       strerror(-err));
		else if (!n && s->n_backends)
			td_warn("mesh: service '%s' has no healthy backend: connect() to it fails "
				"with ECONNREFUSED until one recovers", s->name);
	}
	free(healthy);
}

/* ---- status ------------------------------------------------------------------------------- */

struct json_object *td_agent_mesh_json(const struct td_agent *a)
{
	const struct td_mesh_cfg *m = &a->cfg.mesh;
	struct json_object *o, *svcs, *so, *bes, *bo;
	char ep[TD_ENDPOINTSTRLEN], key[TD_AGENT_HC_KEYLEN];
	size_t i, j;
	__u32 id;

	if (!m->present && !a->mesh.open)
		return NULL;
	o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "configured", json_object_new_boolean(m->present));
	json_object_object_add(o, "attached", json_object_new_boolean(a->mesh.attached));
	json_object_object_add(o, "cgroup_root", json_object_new_string(
		a->mesh.attached ? a->mesh.root : ""));
	json_object_object_add(o, "default_policy", json_object_new_string(
		m->default_policy == TD_MESH_POLICY_ALLOW ? "allow" : "deny"));
	json_object_object_add(o, "allow_rules", json_object_new_int64((int64_t)m->n_allow));
	json_object_object_add(o, "denial_events", json_object_new_int64(
		(int64_t)a->mesh.events_seen));
	svcs = json_object_new_array();
	for (i = 0; m->present && i < m->n_services; i++) {
		const struct td_mesh_service_cfg *s = &m->services[i];
		char vip[TD_ADDRSTRLEN];

		so = json_object_new_object();
		json_object_object_add(so, "name", json_object_new_string(s->name));
		if (a->mesh.open && !td_mesh_id_by_name(&a->mesh.maps, s->name, &id))
			json_object_object_add(so, "id", json_object_new_int64(id));
		td_addr_format(&s->vip, s->family, vip, sizeof(vip));
		json_object_object_add(so, "vip", json_object_new_string(vip));
		json_object_object_add(so, "port", json_object_new_int(s->port));
		json_object_object_add(so, "proto", json_object_new_string(td_proto_name(s->proto)));
		json_object_object_add(so, "cgroup", json_object_new_string(s->cgroup));
		json_object_object_add(so, "sockmap", json_object_new_boolean(s->sockmap));
		bes = json_object_new_array();
		for (j = 0; j < s->n_backends; j++) {
			const struct td_backend_cfg *b = &s->backends[j];
			struct td_hc_status hs;
			const char *h = "unknown";

			if (a->health && !td_health_get(a->health, td_mesh_hc_key(key, sizeof(key), s, b),
							&hs))
				h = hs.healthy ? "up" : "down";
			bo = json_object_new_object();
			td_endpoint_format(&b->addr, b->family, b->port, ep, sizeof(ep));
			json_object_object_add(bo, "backend", json_object_new_string(ep));
			json_object_object_add(bo, "weight", json_object_new_int(b->weight));
			json_object_object_add(bo, "health", json_object_new_string(h));
			json_object_array_add(bes, bo);
		}
		json_object_object_add(so, "backends", bes);
		json_object_array_add(svcs, so);
	}
	json_object_object_add(o, "services", svcs);
	return o;
}

void td_agent_mesh_stop(struct td_agent *a)
{
	td_mesh_events_stop(a);
	td_mesh_maps_close(&a->mesh.maps);
	a->mesh.open = false;
}

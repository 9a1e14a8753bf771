/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tdagent: load and pin the datapath, apply the config, then serve signals, timers and the admin socket. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "admin.h"
#include "agent.h"
#include "fp_redirect.h"
#include "config.h"
#include "dp.h"
#include "kfeatures.h"
#include "log.h"
#include "mesh_scan.h"
#include "names.h"
#include "nl.h"
#include "state.h"

#define TD_EXIT_FAIL  1
#define TD_EXIT_USAGE 2

struct td_agent_opts {
	const char *config;
	const char *bpffs;      /* --bpffs */
	const char *admin;      /* --admin-socket */
	bool verbose;
	bool check;
	bool cleanup;
};

static int td_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	if (td_log_get_level() < TD_LOG_DEBUG)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n)
		td_debug("%s", buf);
	return 0;
}

static void td_usage(FILE *f)
{
	fprintf(f,
		"usage: tdagent -c FILE [--bpffs DIR] [--admin-socket PATH] [-v] [--check] [--cleanup]\n"
		"  -c, --config FILE  configuration (YAML)\n"
		"      --bpffs DIR    pin directory (overrides node.bpffs, $TD_BPFFS, %s)\n"
		"      --admin-socket PATH  admin API socket (overrides node.admin_socket, $%s, %s)\n"
		"  -v, --verbose      debug logging (incl. libbpf)\n"
		"      --check        validate FILE only: errors as FILE:LINE: message, exit 2 if invalid\n"
		"      --cleanup      detach every interface and the mesh's cgroup programs, unpin\n"
		"                     everything under the bpffs dir\n",
		TD_BPFFS_DEFAULT, TD_ADMIN_SOCKET_ENV, TD_ADMIN_SOCKET_DEFAULT);
}

/* 0, or TD_EXIT_USAGE after one line on stderr */
static int td_parse_args(int argc, char **argv, struct td_agent_opts *o)
{
	enum { OPT_BPFFS = 256, OPT_CHECK, OPT_CLEANUP, OPT_ADMIN };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "bpffs", required_argument, NULL, OPT_BPFFS },
		{ "admin-socket", required_argument, NULL, OPT_ADMIN },
		{ "verbose", no_argument, NULL, 'v' },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "cleanup", no_argument, NULL, OPT_CLEANUP },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case OPT_BPFFS: o->bpffs = optarg; break;
		case OPT_ADMIN: o->admin = optarg; break;
		case 'v': o->verbose = true; break;
		case OPT_CHECK: o->check = true; break;
		case OPT_CLEANUP: o->cleanup = true; break;
		case 'h': td_usage(stdout); exit(0);
		case ':':
			fprintf(stderr, "tdagent: option %s needs an argument\n", argv[optind - 1]);
			return TD_EXIT_USAGE;
		default:
			fprintf(stderr, "tdagent: unknown option %s (see --help)\n", argv[optind - 1]);
			return TD_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tdagent: unexpected argument '%s' (see --help)\n", argv[optind]);
		return TD_EXIT_USAGE;
	}
	if (o->check && o->cleanup) {
		fprintf(stderr, "tdagent: --check and --cleanup exclude each other\n");
		return TD_EXIT_USAGE;
	}
	if (!o->config && !o->cleanup) {
		fprintf(stderr, "tdagent: missing -c FILE (see --help)\n");
		return TD_EXIT_USAGE;
	}
	if (o->admin && o->admin[0] != '/') {
		fprintf(stderr, "tdagent: --admin-socket must be an absolute path, got '%s'\n",
			o->admin);
		return TD_EXIT_USAGE;
	}
	if (o->bpffs && o->bpffs[0] != '/') {
		fprintf(stderr, "tdagent: --bpffs must be an absolute path, got '%s'\n", o->bpffs);
		return TD_EXIT_USAGE;
	}
	return 0;
}

/* Load FILE; on failure print every error as FILE:LINE: message. */
static int td_load_config(const char *path, struct td_config *cfg, bool to_log)
{
	struct td_errors errs = {};
	size_t i;
	int err;

	err = td_config_load(path, cfg, &errs);
	if (err) {
		for (i = 0; i < errs.n; i++) {
			if (to_log)
				td_err("%s", errs.msgs[i]);
			else
				fprintf(stderr, "%s\n", errs.msgs[i]);
		}
		if (!errs.n) {
			if (to_log)
				td_err("%s: %s", path, strerror(-err));
			else
				fprintf(stderr, "%s: %s\n", path, strerror(-err));
		}
	}
	td_errors_free(&errs);
	return err;
}

/* --bpffs > node.bpffs > $TD_BPFFS > default */
static const char *td_pick_bpffs(const struct td_agent_opts *o, const struct td_config *cfg)
{
	const char *env = getenv(TD_BPFFS_ENV);

	if (o->bpffs)
		return o->bpffs;
	if (cfg && cfg->bpffs[0] && strcmp(cfg->bpffs, TD_BPFFS_DEFAULT))
		return cfg->bpffs;
	if (env && env[0] == '/')
		return env;
	return TD_BPFFS_DEFAULT;
}

/* --admin-socket > node.admin_socket (when not the default) > $TD_ADMIN_SOCKET > default */
static const char *td_pick_admin(const struct td_agent_opts *o, const struct td_config *cfg)
{
	const char *env = getenv(TD_ADMIN_SOCKET_ENV);

	if (o->admin)
		return o->admin;
	if (cfg && cfg->admin_socket[0] && strcmp(cfg->admin_socket, TD_ADMIN_SOCKET_DEFAULT))
		return cfg->admin_socket;
	if (env && env[0] == '/')
		return env;
	return TD_ADMIN_SOCKET_DEFAULT;
}

static size_t td_cfg_backends(const struct td_config *cfg)
{
	size_t i, n = 0;

	for (i = 0; i < cfg->n_services; i++)
		n += cfg->services[i].n_backends;
	return n;
}

static bool td_cfg_has_iface(const struct td_config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->n_ifaces; i++)
		if (!strcmp(cfg->ifaces[i].name, name))
			return true;
	return false;
}

static int td_attach_config(const char *bpffs, const struct td_config *cfg)
{
	size_t i;
	int err;

	for (i = 0; i < cfg->n_ifaces; i++) {
		err = td_dp_attach(bpffs, cfg->ifaces[i].name, cfg->ifaces[i].xdp_mode);
		if (err)
			return err;
	}
	return 0;
}

/* After an upgrade: interfaces attached earlier (tdctl) move to the newly pinned programs. */
static void td_reattach_recorded(const char *bpffs, const struct td_maps *m,
				 const struct td_config *cfg)
{
	__u32 key, next;
	struct td_iface ent;
	void *prev = NULL;
	char name[TD_IFNAME_LEN + 1];

	while (bpf_map_get_next_key(m->ifaces, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(m->ifaces, &key, &ent))
			continue;
		snprintf(name, sizeof(name), "%.*s", TD_IFNAME_LEN, ent.name);
		if (td_cfg_has_iface(cfg, name))
			continue;
		if (td_dp_attach(bpffs, name, ent.xdp_mode))
			td_warn("interface %s (recorded in td_ifaces) keeps its previous program",
				name);
	}
}

/* Resolve next hops; at start give pending neighbours a moment before reporting ready. */
static void td_nexthops(struct td_agent *a, int tries)
{
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	int i, n;

	for (i = 0; i < tries; i++) {
		n = td_nl_refresh(a->nl, a->m.backends, a->st.be_ids, a->st.n_backends);
		if (n < 0 || (size_t)n == a->st.n_backends)
			break;
		if (i + 1 < tries)
			nanosleep(&ts, NULL);
	}
}

/* ---- watchers ------------------------------------------------------------------------- */

static void td_on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct td_agent *a = w->data;

	a->stop_sig = w->signum;
	ev_break(loop, EVBREAK_ALL);
}

static void td_on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	td_agent_reload(w->data, "SIGHUP");
}

static void td_on_refresh(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct td_agent *a = w->data;

	td_nl_refresh(a->nl, a->m.backends, a->st.be_ids, a->st.n_backends);
}

static void td_health_run(struct td_agent *a)
{
	int err;

	a->health_dirty = false;
	err = td_health_process(a->health, td_health_now_ms());
	if (err && err != -EBUSY)
		td_warn("health: %s", strerror(-err));
	if (a->health_dirty && td_agent_apply(a, &a->cfg, &a->ovr))
		td_err("health: cannot apply the new backend set; retrying at the next change");
	if (a->mesh.dirty)
		td_agent_mesh_health(a);
	td_agent_health_arm(a);
}

static void td_on_health_io(struct ev_loop *loop, ev_io *w, int revents)
{
	td_health_run(w->data);
}

static void td_on_health_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	td_health_run(w->data);
}

/* SIGUSR1: reopen the gateway's access log (logrotate) */
static void td_on_usr1(struct ev_loop *loop, ev_signal *w, int revents)
{
	int err = td_agent_gw_reopen_log(w->data);

	if (!err)
		err = td_agent_fp_reopen_log(w->data);

	if (err)
		td_err("gateway: cannot reopen the access log: %s", strerror(-err));
	else
		td_info("SIGUSR1: access log reopened");
}

/* health checker: a backend went UP or DOWN (called from td_health_process) */
static void td_on_health_change(void *arg, const char *key, bool healthy)
{
	struct td_agent *a = arg;

	if (td_agent_gw_health(a, key, healthy))
		return;
	if (!strncmp(key, TD_AGENT_MESH_HC_PREFIX, strlen(TD_AGENT_MESH_HC_PREFIX))) {
		td_info("health: %s is %s", key, healthy ?
			"up: back in the mesh selection table" :
			"down: out of the mesh selection table for new connections");
		a->mesh.dirty = true;
		return;
	}
	td_info("health: %s is %s", key, healthy ? "up: back in the Maglev ring" :
		"down: out of the Maglev ring for new flows");
	a->health_dirty = true;
}

static int td_run(const struct td_agent_opts *o, struct td_config *cfg)
{
	struct td_agent a = {};
	char msg[256];
	bool adopted = false;
	int err, lfd;

	a.cfg = *cfg;            /* owned by the agent from here on */
	memset(cfg, 0, sizeof(*cfg));
	a.config_path = o->config;
	snprintf(a.bpffs, sizeof(a.bpffs), "%s", td_pick_bpffs(o, &a.cfg));
	snprintf(a.admin_path, sizeof(a.admin_path), "%s", td_pick_admin(o, &a.cfg));
	a.started = time(NULL);
	a.fp_origdst_fd = -1;
	td_maps_init(&a.m);
	td_agent_mesh_init(&a);
	signal(SIGPIPE, SIG_IGN);

	a.loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_SIGNALFD);
	if (!a.loop) {
		err = -ENOMEM;
		td_err("cannot create the event loop");
		goto cleanup;
	}
	/* signals first: a SIGTERM or SIGHUP during start-up is handled once the loop runs */
	ev_signal_init(&a.sig_term, td_on_stop, SIGTERM);
	ev_signal_init(&a.sig_int, td_on_stop, SIGINT);
	ev_signal_init(&a.sig_hup, td_on_hup, SIGHUP);
	a.sig_term.data = a.sig_int.data = a.sig_hup.data = &a;
	ev_signal_start(a.loop, &a.sig_term);
	ev_signal_start(a.loop, &a.sig_int);
	ev_signal_start(a.loop, &a.sig_hup);
	ev_signal_init(&a.sig_usr1, td_on_usr1, SIGUSR1);
	a.sig_usr1.data = &a;
	ev_signal_start(a.loop, &a.sig_usr1);
	/* the admin socket next: a second agent must stop before touching the datapath */
	a.admin = td_admin_srv_new(a.loop, a.admin_path, td_agent_handle, &a);
	if (!a.admin) {
		err = -errno;
		goto cleanup;
	}
	/* the metrics listener too: a port in use or a public address stops the start here */
	if (a.cfg.metrics_listen[0]) {
		lfd = td_agent_metrics_open(a.cfg.metrics_listen);
		if (lfd < 0) {
			err = lfd;
			goto cleanup;
		}
		err = td_agent_metrics_start(&a, lfd, a.cfg.metrics_listen);
		if (err)
			goto cleanup;
	}
	err = td_features_probe(msg, sizeof(msg));
	if (err) {
		td_err("%s", msg);
		goto cleanup;
	}
	err = td_dp_load(a.bpffs, a.cfg.conntrack_size, &adopted);
	if (err)
		goto cleanup;
	td_info("datapath %s at %s", adopted ? "adopted (pinned maps reused)" : "loaded and pinned",
		a.bpffs);
	err = td_maps_open(a.bpffs, &a.m);
	if (err)
		goto cleanup;
	a.health = td_health_new(td_on_health_change, &a);
	if (!a.health) {
		err = -errno;
		td_err("health checker: %s", strerror(-err));
		goto cleanup;
	}
	err = td_agent_apply(&a, &a.cfg, &a.ovr);
	if (err)
		goto cleanup;
	err = td_attach_config(a.bpffs, &a.cfg);
	if (err)
		goto cleanup;
	if (adopted)
		td_reattach_recorded(a.bpffs, &a.m, &a.cfg);
	if (a.cfg.mesh.present) {
		struct td_errors errs = {};

		err = td_agent_mesh_check(&a, &a.cfg, &errs);
		for (size_t i = 0; i < errs.n; i++)
			td_err("%s", errs.msgs[i]);
		td_errors_free(&errs);
		if (err)
			goto cleanup;
	}
	err = td_agent_mesh_sync(&a, &a.cfg, true);
	if (err)
		goto cleanup;
	err = td_agent_gw_start(&a);
	if (err)
		goto cleanup;
	err = td_agent_fp_start(&a);
	if (err)
		goto cleanup;
	a.nl = td_nl_open();
	if (!a.nl) {
		err = -errno;
		goto cleanup;
	}
	td_nexthops(&a, 5);

	/* watchers: next-hop timer, health checker; signals and the admin socket are already on */
	ev_timer_init(&a.refresh, td_on_refresh, TD_AGENT_REFRESH_S, TD_AGENT_REFRESH_S);
	ev_io_init(&a.health_io, td_on_health_io, td_health_fd(a.health), EV_READ);
	ev_init(&a.health_timer, td_on_health_timer);
	a.refresh.data = a.health_io.data = a.health_timer.data = &a;
	ev_timer_start(a.loop, &a.refresh);
	ev_io_start(a.loop, &a.health_io);
	td_agent_health_sync(&a);
	td_info("ready: %zu services, %zu backends, %zu interfaces, %zu mesh service(s)%s%s, "
		"admin socket %s, metrics %s", a.st.n_services, a.st.n_backends, a.cfg.n_ifaces,
		a.mesh.attached ? a.cfg.mesh.n_services : 0,
		a.mesh.attached ? " on cgroup " : " (mesh off)", a.mesh.attached ? a.mesh.root : "",
		a.admin_path, a.metrics ? a.metrics_addr : "off");

	ev_run(a.loop, 0);

	td_info("stopping on %s: datapath stays attached and pinned at %s",
		a.stop_sig == SIGINT ? "SIGINT" : "SIGTERM", a.bpffs);
cleanup:
	if (a.loop) {
		ev_signal_stop(a.loop, &a.sig_term);
		ev_signal_stop(a.loop, &a.sig_int);
		ev_signal_stop(a.loop, &a.sig_hup);
		ev_signal_stop(a.loop, &a.sig_usr1);
		ev_timer_stop(a.loop, &a.refresh);
		ev_io_stop(a.loop, &a.health_io);
		ev_timer_stop(a.loop, &a.health_timer);
	}
	td_agent_fp_close(&a);
	td_agent_gw_stop(&a);
	if (a.loop)
		td_agent_metrics_stop(&a);
	td_agent_mesh_stop(&a);
	td_admin_srv_free(a.admin);
	td_health_free(a.health);
	td_nl_close(a.nl);
	td_state_free(&a.st);
	td_maps_close(&a.m);
	td_overrides_free(&a.ovr);
	td_config_free(&a.eff);
	td_config_free(&a.cfg);
	td_errors_free(&a.last_reload.errors);
	if (a.loop)
		ev_loop_destroy(a.loop);
	return err;
}

int main(int argc, char **argv)
{
	struct td_agent_opts o = {};
	struct td_config cfg = {};
	bool have_cfg = false;
	int rc;

	rc = td_parse_args(argc, argv, &o);
	if (rc)
		return rc;
	td_log_init("tdagent", o.verbose ? TD_LOG_DEBUG : TD_LOG_INFO);
	libbpf_set_print(td_libbpf_print);

	if (o.config) {
		if (td_load_config(o.config, &cfg, false)) {
			rc = TD_EXIT_USAGE;
			goto cleanup;
		}
		have_cfg = true;
	}
	if (o.check) {
		struct td_errors gerrs = {};

		if (td_agent_gw_check(&cfg, &gerrs) | td_agent_fp_check(&cfg, &gerrs)) {
			for (size_t i = 0; i < gerrs.n; i++)
				fprintf(stderr, "%s\n", gerrs.msgs[i]);
			td_errors_free(&gerrs);
			rc = TD_EXIT_USAGE;
			goto cleanup;
		}
		td_errors_free(&gerrs);
		if (cfg.gateway.on)
			printf("%s: gateway: %zu listener(s), %zu TLS listener(s), %zu upstream(s), "
			       "%zu route(s)\n", o.config, cfg.gateway.n_listen,
			       cfg.gateway.n_tls_listen, cfg.gateway.n_upstreams, cfg.gateway.n_routes);
		if (cfg.forward_proxy.on)
			printf("%s: forward_proxy: %zu listener(s)%s%s\n", o.config,
			       cfg.forward_proxy.n_listen, cfg.forward_proxy.cache_on ? ", cache" : "",
			       cfg.forward_proxy.transparent_on ? ", transparent" : "");
		printf("%s: valid (%zu services, %zu backends, %zu interfaces, %zu mesh services)\n",
		       o.config, cfg.n_services, td_cfg_backends(&cfg), cfg.n_ifaces,
		       cfg.mesh.present ? cfg.mesh.n_services : 0);
		rc = 0;
		goto cleanup;
	}
	if (geteuid() != 0) {
		td_err("permission denied: tdagent must run as root");
		rc = TD_EXIT_FAIL;
		goto cleanup;
	}
	if (o.cleanup) {
		const char *bpffs = td_pick_bpffs(&o, have_cfg ? &cfg : NULL);

		/* the cgroup programs first (mesh, transparent proxy): found through the pins */
		if (td_mesh_detach_everywhere(bpffs) < 0 ||
		    td_fp_redirect_detach_everywhere(bpffs) < 0 || td_fp_redirect_unpin(bpffs) < 0) {
			rc = TD_EXIT_FAIL;
			goto cleanup;
		}
		rc = td_dp_cleanup(bpffs) ? TD_EXIT_FAIL : 0;
		goto cleanup;
	}
	rc = td_run(&o, &cfg) ? TD_EXIT_FAIL : 0;
cleanup:
	if (have_cfg)
		td_config_free(&cfg);
	return rc;
}

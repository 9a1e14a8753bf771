/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tdagent: load and pin the datapath, attach interfaces, apply the config, keep next hops fresh. */
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

#include "config.h"
#include "dp.h"
#include "kfeatures.h"
#include "log.h"
#include "names.h"
#include "nl.h"
#include "state.h"

#define TD_EXIT_FAIL  1
#define TD_EXIT_USAGE 2

struct td_agent_opts {
	const char *config;
	const char *bpffs;      /* --bpffs */
	bool verbose;
	bool check;
	bool cleanup;
};

static volatile sig_atomic_t td_stop_sig;
static volatile sig_atomic_t td_reload;

static void td_on_signal(int sig)
{
	if (sig == SIGHUP)
		td_reload = 1;
	else
		td_stop_sig = sig;
}

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
		"usage: tdagent -c FILE [--bpffs DIR] [-v] [--check] [--cleanup]\n"
		"  -c, --config FILE  configuration (YAML)\n"
		"      --bpffs DIR    pin directory (overrides node.bpffs, $TD_BPFFS, %s)\n"
		"  -v, --verbose      debug logging (incl. libbpf)\n"
		"      --check        validate FILE only: errors as FILE:LINE: message, exit 2 if invalid\n"
		"      --cleanup      detach every interface, unpin everything under the bpffs dir\n",
		TD_BPFFS_DEFAULT);
}

/* 0, or TD_EXIT_USAGE after one line on stderr */
static int td_parse_args(int argc, char **argv, struct td_agent_opts *o)
{
	enum { OPT_BPFFS = 256, OPT_CHECK, OPT_CLEANUP };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "bpffs", required_argument, NULL, OPT_BPFFS },
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
static void td_nexthops(struct td_nl *nl, const struct td_maps *m, const struct td_state *st,
			int tries)
{
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	int i, n;

	for (i = 0; i < tries; i++) {
		n = td_nl_refresh(nl, m->backends, st->be_ids, st->n_backends);
		if (n < 0 || (size_t)n == st->n_backends || td_stop_sig)
			break;
		if (i + 1 < tries)
			nanosleep(&ts, NULL);
	}
}

static void td_do_reload(const char *path, const char *bpffs, const struct td_maps *m,
			 struct td_config *cfg, struct td_state *st)
{
	struct td_config ncfg = {};
	size_t i;

	td_info("SIGHUP: reloading %s", path);
	if (td_load_config(path, &ncfg, true)) {
		td_err("reload: %s is invalid, keeping the running configuration (generation %u)",
		       path, st->generation);
		return;
	}
	if (ncfg.conntrack_size != cfg->conntrack_size)
		td_warn("reload: l4.conntrack_size change needs a restart with --cleanup; ignored");
	if (strcmp(ncfg.bpffs, cfg->bpffs))
		td_warn("reload: node.bpffs change needs a restart; ignored");
	if (td_attach_config(bpffs, &ncfg)) {
		td_err("reload: interfaces could not be attached, keeping the running configuration");
		td_config_free(&ncfg);
		return;
	}
	for (i = 0; i < cfg->n_ifaces; i++)
		if (!td_cfg_has_iface(&ncfg, cfg->ifaces[i].name))
			td_dp_detach(bpffs, cfg->ifaces[i].name);
	if (td_state_apply(m, &ncfg, st)) {
		td_err("reload: apply failed; maps may be partly updated, next SIGHUP retries");
		td_config_free(&ncfg);
		return;
	}
	td_config_free(cfg);
	*cfg = ncfg;
	td_info("reloaded: generation %u, %zu services, %zu backends, %zu interfaces",
		st->generation, st->n_services, st->n_backends, cfg->n_ifaces);
}

static int td_run(const struct td_agent_opts *o, struct td_config *cfg)
{
	const char *bpffs = td_pick_bpffs(o, cfg);
	struct td_state st = {};
	struct td_maps m;
	struct td_nl *nl = NULL;
	struct sigaction sa = {};
	char msg[256];
	bool adopted = false;
	int err;

	td_maps_init(&m);
	sa.sa_handler = td_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	err = td_features_probe(msg, sizeof(msg));
	if (err) {
		td_err("%s", msg);
		goto cleanup;
	}
	err = td_dp_load(bpffs, cfg->conntrack_size, &adopted);
	if (err)
		goto cleanup;
	td_info("datapath %s at %s", adopted ? "adopted (pinned maps reused)" : "loaded and pinned",
		bpffs);
	err = td_maps_open(bpffs, &m);
	if (err)
		goto cleanup;
	err = td_state_apply(&m, cfg, &st);
	if (err)
		goto cleanup;
	err = td_attach_config(bpffs, cfg);
	if (err)
		goto cleanup;
	if (adopted)
		td_reattach_recorded(bpffs, &m, cfg);
	nl = td_nl_open();
	if (!nl) {
		err = -errno;
		goto cleanup;
	}
	td_nexthops(nl, &m, &st, 5);
	td_info("ready: %zu services, %zu backends, %zu interfaces", st.n_services, st.n_backends,
		cfg->n_ifaces);

	while (!td_stop_sig) {
		struct timespec ts = { 1, 0 };

		nanosleep(&ts, NULL);
		if (td_stop_sig)
			break;
		if (td_reload) {
			td_reload = 0;
			td_do_reload(o->config, bpffs, &m, cfg, &st);
		}
		td_nl_refresh(nl, m.backends, st.be_ids, st.n_backends);
	}
	td_info("stopping on %s: datapath stays attached and pinned at %s",
		td_stop_sig == SIGINT ? "SIGINT" : "SIGTERM", bpffs);
cleanup:
	td_nl_close(nl);
	td_state_free(&st);
	td_maps_close(&m);
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
		printf("%s: valid (%zu services, %zu backends, %zu interfaces)\n", o.config,
		       cfg.n_services, td_cfg_backends(&cfg), cfg.n_ifaces);
		rc = 0;
		goto cleanup;
	}
	if (geteuid() != 0) {
		td_err("permission denied: tdagent must run as root");
		rc = TD_EXIT_FAIL;
		goto cleanup;
	}
	if (o.cleanup) {
		rc = td_dp_cleanup(td_pick_bpffs(&o, have_cfg ? &cfg : NULL)) ? TD_EXIT_FAIL : 0;
		goto cleanup;
	}
	rc = td_run(&o, &cfg) ? TD_EXIT_FAIL : 0;
cleanup:
	if (have_cfg)
		td_config_free(&cfg);
	return rc;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tdagent's forward_proxy: section: start, reload as one step, metrics, status, stop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent.h"
#include "fp_redirect.h"
#include "fproxy.h"
#include "log.h"

int td_agent_fp_check(const struct td_config *cfg, struct td_errors *errs)
{
	return cfg->forward_proxy.on ? td_fp_check(cfg, errs) : 0;
}

/* start the proxy of cfg; errors go to errs (with a line when the proxy gave none) */
static struct td_fp *td_agent_fp_open(const struct td_config *cfg, struct td_errors *errs)
{
	size_t before = errs->n;
	struct td_fp *fp = td_fp_new(cfg, errs);

	if (!fp && errs->n == before)
		td_errors_add(errs, cfg->path, cfg->forward_proxy.line,
			      "forward_proxy: cannot start: %s", strerror(errno ? errno : EINVAL));
	return fp;
}

/*
 * Transparent mode: the cgroup connect() redirect (fp_redirect.c) follows cfg: rules and
 * attachments when forward_proxy.transparent is set, nothing attached otherwise; the proxy
 * gets the map of original destinations when the redirect is set up (not on every reload:
 * td_fp_set_origdst_fd() does not close the descriptor it replaces, and a worker may be
 * using it). 0 or -errno (logged by fp_redirect.c).
 */
static int td_agent_fp_transparent(struct td_agent *a, const struct td_config *cfg)
{
	bool had = a->fp_redirect && a->fp_has_map;
	int err, fd;

	if (!cfg->forward_proxy.on || !cfg->forward_proxy.transparent_on) {
		if (a->fp_redirect) {
			td_fp_redirect_detach_everywhere(a->bpffs);
			a->fp_redirect = false;
		}
		return 0;
	}
	if (!a->fp_redirect) {
		err = td_fp_redirect_load(a->bpffs, NULL);
		if (err)
			return err;
	}
	err = td_fp_redirect_apply(a->bpffs, &cfg->forward_proxy, cfg->mesh.cgroup_root);
	if (err)
		return err;
	a->fp_redirect = true;
	if (had)
		return 0;      /* the proxy holds the map since the redirect was set up */
	/* one descriptor for the agent's life (closed in td_agent_fp_close), whatever proxy runs */
	if (a->fp_origdst_fd < 0) {
		fd = td_fp_origdst_fd(a->bpffs);
		if (fd < 0)
			return fd;
		a->fp_origdst_fd = fd;
	}
	td_fp_set_origdst_fd(a->fp, a->fp_origdst_fd);
	a->fp_has_map = true;
	return 0;
}

int td_agent_fp_start(struct td_agent *a)
{
	struct td_errors errs = {};
	int err = 0;

	if (!a->cfg.forward_proxy.on)
		return 0;
	a->fp = td_agent_fp_open(&a->cfg, &errs);
	if (!a->fp) {
		err = -EINVAL;
		for (size_t i = 0; i < errs.n; i++)
			td_err("%s", errs.msgs[i]);
		goto cleanup;
	}
	err = td_agent_fp_transparent(a, &a->cfg);
	if (err) {
		td_err("forward proxy: transparent mode: %s", strerror(-err));
		goto cleanup;
	}
	td_info("forward proxy: %zu listener(s)%s%s", a->cfg.forward_proxy.n_listen,
		a->cfg.forward_proxy.cache_on ? ", cache on" : "",
		a->cfg.forward_proxy.transparent_on ? ", transparent mode" : "");
cleanup:
	td_errors_free(&errs);
	return err;
}

int td_agent_fp_reload(struct td_agent *a, const struct td_config *ncfg, struct td_errors *errs)
{
	size_t before = errs->n;
	int err;

	if (!ncfg->forward_proxy.on)
		return 0;       /* removed: stopped by td_agent_fp_commit() */
	if (!a->fp) {
		a->fp = td_agent_fp_open(ncfg, errs);
		if (!a->fp)
			return -EINVAL;
		td_info("reload: forward proxy started");
		err = td_agent_fp_transparent(a, ncfg);
		if (err)
			td_errors_add(errs, ncfg->path, ncfg->forward_proxy.transparent_line,
				      "forward_proxy.transparent: %s", strerror(-err));
		return err;
	}
	err = td_fp_reload(a->fp, ncfg, errs);
	if (err && errs->n == before)
		td_errors_add(errs, ncfg->path, ncfg->forward_proxy.line, "forward_proxy: %s",
			      strerror(-err));
	if (!err) {
		err = td_agent_fp_transparent(a, ncfg);
		if (err)
			td_errors_add(errs, ncfg->path, ncfg->forward_proxy.transparent_line,
				      "forward_proxy.transparent: %s (the proxy itself switched)",
				      strerror(-err));
	}
	return err;
}

void td_agent_fp_commit(struct td_agent *a, const struct td_config *ncfg)
{
	if (a->fp && !ncfg->forward_proxy.on) {
		td_info("reload: forward_proxy section removed: stopping the forward proxy");
		td_agent_fp_stop(a);
	}
}

void td_agent_fp_close(struct td_agent *a)
{
	td_agent_fp_stop(a);
	if (a->fp_origdst_fd >= 0)
		close(a->fp_origdst_fd);
	a->fp_origdst_fd = -1;
}

void td_agent_fp_stop(struct td_agent *a)
{
	/* nothing may keep redirecting connections to a proxy that is gone */
	if (a->fp_redirect) {
		td_fp_redirect_detach_everywhere(a->bpffs);
		a->fp_redirect = false;
	}
	td_fp_free(a->fp, TD_AGENT_GW_DRAIN_MS);
	a->fp = NULL;
	a->fp_has_map = false;     /* a new proxy is given the map again */
}

int td_agent_fp_metrics(struct td_agent *a, struct td_metrics_buf *out)
{
	return a->fp ? td_fp_metrics(a->fp, out) : 0;
}

struct json_object *td_agent_fp_json(struct td_agent *a)
{
	struct json_object *o;
	char *s;

	if (!a->fp)
		return json_object_new_boolean(0);
	s = td_fp_status_json(a->fp);
	if (!s)
		return NULL;
	o = json_tokener_parse(s);
	free(s);
	return o;
}

int td_agent_fp_reopen_log(struct td_agent *a)
{
	return a->fp ? td_fp_reopen_log(a->fp) : 0;
}

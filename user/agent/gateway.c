/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* tdagent's gateway: section: start, reload as one step, health checks, metrics, status, stop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "agent.h"
#include "gateway.h"
#include "log.h"

static void td_gw_log_errors(const struct td_errors *errs, size_t from)
{
	for (size_t i = from; i < errs->n; i++)
		td_err("%s", errs->msgs[i]);
}

int td_agent_gw_check(const struct td_config *cfg, struct td_errors *errs)
{
	if (!cfg->gateway.on)
		return 0;
	return td_gw_check(cfg, errs);
}

int td_agent_gw_start(struct td_agent *a)
{
	struct td_errors errs = {};
	int err = 0;

	if (!a->cfg.gateway.on)
		return 0;
	a->gw = td_gw_new(&a->cfg, &errs);
	if (!a->gw) {
		err = errno ? -errno : -EINVAL;
		td_gw_log_errors(&errs, 0);
		td_err("gateway: cannot start: %s", strerror(-err));
		goto cleanup;
	}
	td_info("gateway: %zu listener(s), %zu TLS listener(s), %zu upstream(s), %zu route(s)",
		a->cfg.gateway.n_listen, a->cfg.gateway.n_tls_listen, a->cfg.gateway.n_upstreams,
		a->cfg.gateway.n_routes);
cleanup:
	td_errors_free(&errs);
	return err;
}

int td_agent_gw_reload(struct td_agent *a, const struct td_config *ncfg, struct td_errors *errs)
{
	size_t before = errs->n;
	int err;

	if (!ncfg->gateway.on) {
		/* the section is gone: stop after the rest of the reload succeeded */
		return 0;
	}
	if (!a->gw) {
		a->gw = td_gw_new(ncfg, errs);
		if (!a->gw) {
			err = errno ? -errno : -EINVAL;
			if (errs->n == before)
				td_errors_add(errs, ncfg->path, ncfg->gateway.line,
					      "gateway: cannot start: %s", strerror(-err));
			return err;
		}
		td_info("reload: gateway started");
		return 0;
	}
	err = td_gw_reload(a->gw, ncfg, errs);
	if (err && errs->n == before)
		td_errors_add(errs, ncfg->path, ncfg->gateway.line, "gateway: %s", strerror(-err));
	return err;
}

void td_agent_gw_commit(struct td_agent *a, const struct td_config *ncfg)
{
	if (a->gw && !ncfg->gateway.on) {
		td_info("reload: gateway section removed: stopping the gateway");
		td_gw_free(a->gw, TD_AGENT_GW_DRAIN_MS);
		a->gw = NULL;
	}
}

void td_agent_gw_stop(struct td_agent *a)
{
	if (!a->gw)
		return;
	td_gw_free(a->gw, TD_AGENT_GW_DRAIN_MS);
	a->gw = NULL;
}

int td_agent_gw_targets(struct td_agent *a, struct td_hc_target **out)
{
	*out = NULL;
	if (!a->gw)
		return 0;
	return td_gw_health_targets(a->gw, out);
}

bool td_agent_gw_health(struct td_agent *a, const char *key, bool healthy)
{
	if (strncmp(key, TD_GW_HEALTH_PREFIX, strlen(TD_GW_HEALTH_PREFIX)))
		return false;
	td_info("health: %s is %s", key, healthy ? "up: back in the gateway's selection" :
		"down: out of the gateway's selection");
	if (a->gw)
		td_gw_health_set(a->gw, key, healthy);
	return true;
}

int td_agent_gw_metrics(struct td_agent *a, struct td_metrics_buf *out)
{
	return a->gw ? td_gw_metrics(a->gw, out) : 0;
}

struct json_object *td_agent_gw_json(struct td_agent *a)
{
	struct json_object *o;
	char *s;

	if (!a->gw)
		return json_object_new_boolean(0);
	s = td_gw_status_json(a->gw);
	if (!s)
		return NULL;
	o = json_tokener_parse(s);
	free(s);
	return o;
}

int td_agent_gw_reopen_log(struct td_agent *a)
{
	return a->gw ? td_gw_reopen_log(a->gw) : 0;
}

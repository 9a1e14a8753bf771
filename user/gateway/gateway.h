/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The API gateway runtime: config generations (routes, auth, limits, upstreams) on the HTTP engine. */
#ifndef TD_GW_GATEWAY_H
#define TD_GW_GATEWAY_H

/*
 * Contract (the agent's side)
 *  - td_gw_check() builds a generation from a parsed config (opens key, users and certificate
 *    files, compiles the route table) and throws it away: FILE:LINE errors for --check and for
 *    a reload before anything changes.
 *  - td_gw_new() builds the first generation, binds every listener and starts the workers.
 *  - td_gw_reload() builds the next generation; only when that succeeded (and every new
 *    listener could be bound) it is published with one atomic pointer store. Requests in flight
 *    keep the generation they started with (refcounted); established connections stay open;
 *    listeners that are gone are closed, new ones bound. Backend state (passive ejection,
 *    health, in-flight counts) carries over for backends that keep their upstream name and
 *    address. On error nothing changes.
 *  - Health: td_gw_health_targets() lists the active checks of the current generation (keys
 *    "gw:UPSTREAM/ADDR:PORT"); the agent runs them in its td_health and reports transitions
 *    with td_gw_health_set(). A backend is used when it is healthy and not ejected; when every
 *    backend of an upstream is out, all are used (fail open, logged once).
 *  - Metrics: td_gw_metrics() appends Prometheus text (td_gw_* families, docs/metrics.md).
 *  - Thread safety: all of these run on the agent's main thread; the engine's workers only
 *    read generations and update atomic counters.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "health.h"
#include "metrics.h"

#define TD_GW_HEALTH_PREFIX	"gw:"

struct td_gw;

/* build and drop a generation of cfg->gateway; 0 or -EINVAL with errors in errs */
int td_gw_check(const struct td_config *cfg, struct td_errors *errs);
/* start the gateway of cfg (cfg->gateway.on must be true); NULL + errno, errors in errs */
struct td_gw *td_gw_new(const struct td_config *cfg, struct td_errors *errs);
/* switch to cfg's gateway section; 0 or -errno (nothing changed), errors in errs */
int td_gw_reload(struct td_gw *gw, const struct td_config *cfg, struct td_errors *errs);
/* stop accepting, drain requests in flight for up to drain_ms, free. NULL is ignored */
void td_gw_free(struct td_gw *gw, uint32_t drain_ms);

/*
 * The active health checks of the current generation: *out is a malloc'd array the caller
 * frees with td_gw_health_targets_free(); returns the count or -errno.
 */
int td_gw_health_targets(struct td_gw *gw, struct td_hc_target **out);
void td_gw_health_targets_free(struct td_hc_target *t, size_t n);
/* key (with TD_GW_HEALTH_PREFIX) changed health */
void td_gw_health_set(struct td_gw *gw, const char *key, bool healthy);

/* Prometheus text of the gateway (requests, latency, upstream errors, limits, ejections) */
int td_gw_metrics(struct td_gw *gw, struct td_metrics_buf *out);

/* one line per listener, upstream and backend for `tdctl status` (JSON object, malloc'd) */
char *td_gw_status_json(struct td_gw *gw);

/* reopen the access log file (SIGUSR1 / logrotate); 0 or -errno */
int td_gw_reopen_log(struct td_gw *gw);

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The forward proxy runtime: ACLs, DNS, CONNECT tunnels, RFC 9111 cache, on the HTTP engine. */
#ifndef TD_FP_FPROXY_H
#define TD_FP_FPROXY_H

/*
 * Contract (the agent's side; the same shape as the gateway's, user/gateway/gateway.h)
 *  - td_fp_check() builds a generation from cfg->forward_proxy (opens the users and domain
 *    files, compiles the rules) and throws it away: FILE:LINE errors for --check and reload.
 *  - td_fp_new() builds the first generation, binds every listener (listen[], and the
 *    transparent listeners) and starts the workers (a td_hs of its own).
 *  - td_fp_reload() builds the next generation; published with one atomic pointer store only
 *    when it and every new listener succeeded; requests and tunnels in flight keep theirs; the
 *    cache survives a reload (its size changes apply by eviction) unless it is turned off.
 *  - Metrics: td_fp_metrics() appends td_fp_* families (docs/metrics.md, docs/forward-proxy.md).
 *  - Transparent mode: the agent attaches the redirect (cgroup connect hook) and passes the map
 *    of original destinations with td_fp_set_origdst_fd(); the proxy looks up each accepted
 *    connection of a transparent listener by the client's address and port.
 *  - Thread safety: these run on the agent's main thread; workers read generations and update
 *    atomic counters.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"

struct td_fp;

/* build and drop a generation of cfg->forward_proxy; 0 or -EINVAL with errors in errs */
int td_fp_check(const struct td_config *cfg, struct td_errors *errs);
/* start the forward proxy of cfg (cfg->forward_proxy.on must be true); NULL + errno */
struct td_fp *td_fp_new(const struct td_config *cfg, struct td_errors *errs);
/* switch to cfg's forward_proxy section; 0 or -errno (nothing changed), errors in errs */
int td_fp_reload(struct td_fp *fp, const struct td_config *cfg, struct td_errors *errs);
/* stop accepting, drain requests in flight for up to drain_ms, free. NULL is ignored */
void td_fp_free(struct td_fp *fp, uint32_t drain_ms);

/* Prometheus text: requests by method and status class, cache hits/misses/bytes, denials by
 * rule, tunnels, DNS failures, engine counters */
int td_fp_metrics(struct td_fp *fp, struct td_metrics_buf *out);
/* JSON object for `tdctl status` (malloc'd) */
char *td_fp_status_json(struct td_fp *fp);
/* reopen the access log file (SIGUSR1); 0 or -errno */
int td_fp_reopen_log(struct td_fp *fp);
/* the pinned map of original destinations of redirected connections (transparent mode), -1:
 * none; the descriptor stays the caller's (the agent opens it once and closes it at exit) */
void td_fp_set_origdst_fd(struct td_fp *fp, int map_fd);

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Gateway metrics: Prometheus text of the td_gw_* families of one generation. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_internal.h"

#define LD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)

static void td_gw_fam(struct td_metrics_buf *o, const char *name, const char *type,
		      const char *help)
{
	td_metrics_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* NAME{k1="v1"[,k2="v2"] */
static void td_gw_labels(struct td_metrics_buf *o, const char *name, const char *k1,
			 const char *v1, const char *k2, const char *v2)
{
	td_metrics_buf_printf(o, "%s{%s=\"", name, k1);
	td_metrics_buf_label_value(o, v1);
	td_metrics_buf_append(o, "\"", 1);
	if (k2) {
		td_metrics_buf_printf(o, ",%s=\"", k2);
		td_metrics_buf_label_value(o, v2);
		td_metrics_buf_append(o, "\"", 1);
	}
}

static const char *const td_gw_classes[TD_GW_NCLASS] = { "1xx", "2xx", "3xx", "4xx", "5xx" };

static void td_gw_by_class(struct td_metrics_buf *o, const char *name, const char *k,
			   const char *v, const struct td_gw_wstat *s)
{
	for (unsigned int c = 0; c < TD_GW_NCLASS; c++) {
		td_gw_labels(o, name, k, v, "class", td_gw_classes[c]);
		td_metrics_buf_printf(o, "} %llu\n", (unsigned long long)s->cls[c]);
	}
}

static void td_gw_histogram(struct td_metrics_buf *o, const char *route,
			    const struct td_gw_wstat *s)
{
	static const char *const le[TD_GW_NBUCKETS] = {
		"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
		"1", "2.5", "5", "10",
	};
	uint64_t cum = 0;

	for (unsigned int b = 0; b <= TD_GW_NBUCKETS; b++) {
		cum += s->lat[b];
		td_gw_labels(o, "td_gw_request_duration_seconds_bucket", "route", route, "le",
			     b < TD_GW_NBUCKETS ? le[b] : "+Inf");
		td_metrics_buf_printf(o, "} %llu\n", (unsigned long long)cum);
	}
	td_gw_labels(o, "td_gw_request_duration_seconds_sum", "route", route, NULL, NULL);
	td_metrics_buf_printf(o, "} %llu.%06llu\n", (unsigned long long)(s->lat_sum_us / 1000000u),
			      (unsigned long long)(s->lat_sum_us % 1000000u));
	td_gw_labels(o, "td_gw_request_duration_seconds_count", "route", route, NULL, NULL);
	td_metrics_buf_printf(o, "} %llu\n", (unsigned long long)cum);
}

int td_gw_metrics_render(const struct td_gw_gen *g, struct td_metrics_buf *o)
{
	size_t nr = g ? g->n_routes : 0, nu = g ? g->n_ups : 0;
	struct td_gw_wstat *rs = calloc(nr + nu + 1, sizeof(*rs)), *us = rs + nr, un;
	struct timespec ts;
	uint64_t now;

	if (!rs)
		return -ENOMEM;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	for (size_t i = 0; i < nr; i++)
		td_gw_stat_sum(g->routes[i].stat, &rs[i]);
	for (size_t i = 0; i < nu; i++)
		td_gw_stat_sum(g->ups[i].stat, &us[i]);

	td_gw_fam(o, "td_gw_generation", "gauge", "Gateway configuration generation in force.");
	if (g)
		td_metrics_buf_printf(o, "td_gw_generation %llu\n", (unsigned long long)g->number);

	td_gw_fam(o, "td_gw_requests_total", "counter",
		  "Gateway requests by route and response status class.");
	for (size_t i = 0; i < nr; i++)
		td_gw_by_class(o, "td_gw_requests_total", "route", g->routes[i].name, &rs[i]);

	td_gw_fam(o, "td_gw_request_duration_seconds", "histogram",
		  "Gateway request duration by route, head received to response sent.");
	for (size_t i = 0; i < nr; i++)
		td_gw_histogram(o, g->routes[i].name, &rs[i]);

	td_gw_fam(o, "td_gw_unrouted_total", "counter",
		  "Gateway requests that matched no route (answered 404).");
	if (g) {
		td_gw_stat_sum(g->unrouted, &un);
		td_metrics_buf_printf(o, "td_gw_unrouted_total %llu\n",
				      (unsigned long long)(un.cls[0] + un.cls[1] + un.cls[2] +
							   un.cls[3] + un.cls[4]));
	}

	td_gw_fam(o, "td_gw_auth_failures_total", "counter",
		  "Gateway requests refused with 401 by route.");
	for (size_t i = 0; i < nr; i++) {
		td_gw_labels(o, "td_gw_auth_failures_total", "route", g->routes[i].name, NULL, NULL);
		td_metrics_buf_printf(o, "} %llu\n", (unsigned long long)rs[i].auth_failed);
	}

	td_gw_fam(o, "td_gw_rate_limited_total", "counter",
		  "Gateway requests refused with 429 by route.");
	for (size_t i = 0; i < nr; i++) {
		td_gw_labels(o, "td_gw_rate_limited_total", "route", g->routes[i].name, NULL, NULL);
		td_metrics_buf_printf(o, "} %llu\n", (unsigned long long)rs[i].rate_limited);
	}

	td_gw_fam(o, "td_gw_upstream_requests_total", "counter",
		  "Gateway requests sent to an upstream by final response status class.");
	for (size_t i = 0; i < nu; i++)
		td_gw_by_class(o, "td_gw_upstream_requests_total", "upstream", g->ups[i].name,
			       &us[i]);

	td_gw_fam(o, "td_gw_upstream_errors_total", "counter",
		  "Failed upstream attempts by kind (refused, connect_timeout, timeout, reset, "
		  "protocol, status, other).");
	for (size_t i = 0; i < nu; i++)
		for (unsigned int k = 0; k < TD_GW_E_MAX; k++) {
			td_gw_labels(o, "td_gw_upstream_errors_total", "upstream", g->ups[i].name,
				     "kind", td_gw_err_kind_name(k));
			td_metrics_buf_printf(o, "} %llu\n", (unsigned long long)us[i].err[k]);
		}

	td_gw_fam(o, "td_gw_upstream_retries_total", "counter",
		  "Upstream attempts retried on another backend.");
	for (size_t i = 0; i < nu; i++) {
		td_gw_labels(o, "td_gw_upstream_retries_total", "upstream", g->ups[i].name, NULL,
			     NULL);
		td_metrics_buf_printf(o, "} %llu\n", (unsigned long long)us[i].retries);
	}

	/* per backend: gauges and the ejection counter read straight from the shared state */
	static const char *const bfam[][3] = {
		{ "td_gw_backend_up", "gauge",
		  "1 when the backend is healthy (active checks) and not ejected." },
		{ "td_gw_backend_ejected", "gauge", "1 while the backend is ejected (outlier)." },
		{ "td_gw_backend_in_flight", "gauge", "Requests in flight to the backend." },
		{ "td_gw_backend_ejections_total", "counter",
		  "Outlier ejections of the backend (consecutive failures)." },
	};
	for (unsigned int f = 0; f < 4; f++) {
		td_gw_fam(o, bfam[f][0], bfam[f][1], bfam[f][2]);
		for (size_t i = 0; i < nu; i++)
			for (size_t j = 0; j < g->ups[i].n; j++) {
				const struct td_gw_backend *be = &g->ups[i].be[j];
				long long v;

				if (f == 0)
					v = td_gw_bstate_usable(be->st, now);
				else if (f == 1)
					v = td_gw_bstate_ejected(be->st, now);
				else if (f == 2)
					v = (long long)LD(&be->st->in_flight);
				else
					v = (long long)LD(&be->st->ejections);
				td_gw_labels(o, bfam[f][0], "upstream", g->ups[i].name, "backend",
					     be->addr);
				td_metrics_buf_printf(o, "} %lld\n", v);
			}
	}
	free(rs);
	return o->err;
}

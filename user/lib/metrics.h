/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Prometheus text exposition (format 0.0.4) of a stats snapshot plus the agent's own state. */
#ifndef TD_METRICS_H
#define TD_METRICS_H

/*
 * Contract
 *  - td_metrics_render() appends one complete exposition to a growable buffer: for every family
 *    of td_metrics_families(), in table order, "# HELP", "# TYPE" and then its samples (a family
 *    with no samples still has its HELP and TYPE lines). Names use the td_ prefix, counters end
 *    in _total, sizes are bytes and times seconds. Values are integers (but td_mesh_rtt_seconds).
 *  - Label values are escaped as the format requires (\\ for backslash, \" for a quote, \n for a
 *    newline); any other control byte and any byte that is not part of valid UTF-8 becomes '?'.
 *  - Services are rendered in id order with labels {service, vip, port, proto}; backends grouped
 *    by service (then id) with labels {service, backend="ADDR:PORT" or "[ADDR6]:PORT"}. Backends
 *    without TD_BE_F_ACTIVE, or whose service is not in the snapshot, are not rendered.
 *  - td_backend_up is 1 (up) or 0 (down) as the caller's health callback says; a backend whose
 *    health is unknown (no health check, no callback) has no td_backend_up sample.
 *  - td_datapath_events_total{event} carries the non-drop counters under their td_counter_name()
 *    ("rx", "pass_not_vip", ...); td_datapath_drops_total{reason} the TD_DROP_* counters with
 *    the "drop_" prefix removed ("no_backend", "ttl", ...).
 *  - Mesh families (td_mesh_*) come last, from snap->mesh: pairs in the order of the snapshot
 *    with labels {src, dst} (identity names; "unknown", "#N" for an id no longer configured),
 *    td_mesh_bytes_total also {direction="tx"|"rx"}; td_mesh_rtt_seconds (the only non-integer
 *    value, microsecond precision) only for pairs with an RTT sample; td_mesh_events_total{event}
 *    carries every enum td_mesh_counter under td_mesh_counter_name(). snap->mesh == NULL: the
 *    mesh families have no samples.
 *  - Without agent info (agent == NULL, e.g. a reader of the pinned maps) the agent families
 *    (td_agent_info, td_config_*) are present with HELP/TYPE and no samples. Without a snapshot
 *    (snap == NULL: the datapath could not be read) the datapath families have no samples.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include "td/abi.h"
#include "stats.h"

/* Growable output buffer. data is NUL-terminated whenever it is not NULL. */
struct td_metrics_buf {
	char *data;
	size_t len;              /* bytes used, without the NUL                                */
	size_t cap;              /* bytes allocated                                            */
	int err;                 /* first error (-ENOMEM); sticky until td_metrics_buf_reset() */
};

void td_metrics_buf_init(struct td_metrics_buf *b);
/* Empty the buffer (keeps the allocation) and clear err. */
void td_metrics_buf_reset(struct td_metrics_buf *b);
void td_metrics_buf_free(struct td_metrics_buf *b);
/* Append n bytes / formatted text. 0 or -ENOMEM (then b->err is set and later appends fail). */
int td_metrics_buf_append(struct td_metrics_buf *b, const char *s, size_t n);
int td_metrics_buf_printf(struct td_metrics_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Append s as an escaped label value (without the surrounding quotes). 0 or -ENOMEM. */
int td_metrics_buf_label_value(struct td_metrics_buf *b, const char *s);

/* Health of one backend as the agent knows it. */
enum td_metrics_health {
	TD_METRICS_HEALTH_UNKNOWN = 0,   /* no check configured or no checker: no td_backend_up */
	TD_METRICS_HEALTH_UP,
	TD_METRICS_HEALTH_DOWN,
};

/* Called once per rendered backend; must not keep the pointers. */
typedef enum td_metrics_health (*td_metrics_health_fn)(void *arg,
							const struct td_stats_service *svc,
							const struct td_stats_backend *be);

/* What only the agent knows. Strings are copied into the output, not kept. */
struct td_metrics_agent {
	const char *version;              /* td_agent_info{version}; NULL renders "unknown"      */
	__u64 generation;                 /* td_config_generation: config now in force          */
	bool reload_attempted;            /* false: no td_config_last_reload_* samples yet      */
	bool last_reload_ok;              /* result of the last load/reload (initial load too)  */
	__s64 last_reload_time;           /* its unix time, seconds                              */
	td_metrics_health_fn health;      /* NULL: every backend is UNKNOWN                      */
	void *health_arg;
};

/* One metric family as rendered; the table is static and in rendering order. */
struct td_metrics_family {
	const char *name;                 /* full name, e.g. "td_service_packets_total"          */
	const char *type;                 /* "counter" | "gauge"                                 */
	const char *labels;               /* comma-separated label names, "" when none           */
	const char *help;                 /* the # HELP text                                     */
};

/* The table of every family td_metrics_render() can emit; returns its length. */
size_t td_metrics_families(const struct td_metrics_family **families);

/* Append the exposition of snap (may be NULL) and agent (may be NULL) to out. 0 or -ENOMEM. */
int td_metrics_render(struct td_metrics_buf *out, const struct td_stats_snapshot *snap,
		      const struct td_metrics_agent *agent);

/*
 * Convenience for a scrape: td_stats_read(m) then td_metrics_render(). When the maps cannot be
 * read the datapath families are rendered empty (the error is logged by td_stats_read) and the
 * agent families are still rendered. 0 or -ENOMEM.
 */
int td_metrics_collect(struct td_metrics_buf *out, const struct td_maps *m,
		       const struct td_metrics_agent *agent);

struct td_mesh_maps;
/* td_metrics_collect plus the mesh families from the pinned mesh maps (mesh NULL: none). */
int td_metrics_collect_mesh(struct td_metrics_buf *out, const struct td_maps *m,
			    const struct td_mesh_maps *mesh, const struct td_metrics_agent *agent);

/* Content-Type of the exposition. */
#define TD_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif

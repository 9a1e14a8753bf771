/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The Prometheus endpoint on tdagent's loop: td_metrics_http driven by an ev_io and an ev_timer. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"

/* td_metrics_health_fn: what the checker says; unknown for a service without health: */
static enum td_metrics_health td_agent_metrics_health(void *arg,
						      const struct td_stats_service *svc,
						      const struct td_stats_backend *be)
{
	const struct td_agent *a = arg;
	char key[TD_HC_KEYSTRLEN];
	struct td_hc_status hs;
	size_t i;

	if (!a->health)
		return TD_METRICS_HEALTH_UNKNOWN;
	for (i = 0; i < a->eff.n_services; i++)
		if (!strncmp(a->eff.services[i].name, svc->name, TD_NAME_LEN))
			break;
	if (i == a->eff.n_services || a->eff.services[i].health.type == TD_HC_NONE)
		return TD_METRICS_HEALTH_UNKNOWN;
	td_health_key_format(key, sizeof(key), svc->name, &be->addr, be->family, be->port);
	if (td_health_get(a->health, key, &hs))
		return TD_METRICS_HEALTH_UNKNOWN;
	return hs.healthy ? TD_METRICS_HEALTH_UP : TD_METRICS_HEALTH_DOWN;
}

/* td_metrics_render_fn: one scrape reads the pinned maps afresh */
static int td_agent_metrics_render(void *arg, struct td_metrics_buf *out)
{
	struct td_agent *a = arg;
	struct td_metrics_agent info = {
		.version = TD_VERSION,
		.generation = a->st.generation,
		/* the initial load counts as an attempt: it succeeded, or the agent would not run */
		.reload_attempted = true,
		.last_reload_ok = a->last_reload.done ? a->last_reload.ok : true,
		.last_reload_time = a->last_reload.done ? (__s64)a->last_reload.time :
				    (__s64)a->started,
		.health = td_agent_metrics_health,
		.health_arg = a,
	};

	int err;

	err = td_metrics_collect_mesh(out, &a->m, a->mesh.open ? &a->mesh.maps : NULL, &info);
	if (err)
		return err;
	err = td_agent_gw_metrics(a, out);
	if (err)
		return err;
	return td_agent_fp_metrics(a, out);
}

static void td_agent_metrics_run(struct td_agent *a)
{
	uint64_t dl, now;
	int err;

	if (!a->metrics)
		return;
	err = td_metrics_http_process(a->metrics, td_metrics_http_now_ms());
	if (err)
		td_warn("metrics: %s", strerror(-err));
	ev_timer_stop(a->loop, &a->metrics_timer);
	dl = td_metrics_http_next_deadline_ms(a->metrics);
	if (dl == UINT64_MAX)
		return;
	now = td_metrics_http_now_ms();
	ev_timer_set(&a->metrics_timer, dl > now ? (double)(dl - now) / 1000.0 : 0., 0.);
	ev_timer_start(a->loop, &a->metrics_timer);
}

static void td_on_metrics_io(struct ev_loop *loop, ev_io *w, int revents)
{
	td_agent_metrics_run(w->data);
}

static void td_on_metrics_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	td_agent_metrics_run(w->data);
}

int td_agent_metrics_open(const char *addr)
{
	if (!addr[0])
		return -ENOENT;
	/* never public by default: td_metrics_http_listen() refuses non-loopback (logged) */
	return td_metrics_http_listen(addr, false);
}

int td_agent_metrics_start(struct td_agent *a, int lfd, const char *addr)
{
	struct td_metrics_http *h;

	td_agent_metrics_stop(a);
	if (lfd < 0)
		return 0;
	h = td_metrics_http_new(lfd, td_agent_metrics_render, a, NULL);
	if (!h) {
		int err = -errno;

		td_err("metrics: cannot serve %s: %s", addr, strerror(-err));
		return err;
	}
	a->metrics = h;
	snprintf(a->metrics_addr, sizeof(a->metrics_addr), "%s", addr);
	ev_io_init(&a->metrics_io, td_on_metrics_io, td_metrics_http_fd(h), EV_READ);
	ev_init(&a->metrics_timer, td_on_metrics_timer);
	a->metrics_io.data = a->metrics_timer.data = a;
	ev_io_start(a->loop, &a->metrics_io);
	td_info("metrics: serving http://%s/metrics", addr);
	return 0;
}

void td_agent_metrics_stop(struct td_agent *a)
{
	if (!a->metrics)
		return;
	ev_io_stop(a->loop, &a->metrics_io);
	ev_timer_stop(a->loop, &a->metrics_timer);
	td_metrics_http_free(a->metrics);
	a->metrics = NULL;
	a->metrics_addr[0] = '\0';
}

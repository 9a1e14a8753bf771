/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Prometheus text exposition (format 0.0.4) of a stats snapshot plus the agent's own state. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "mesh.h"
#include "metrics.h"
#include "names.h"

/* ---- buffer ------------------------------------------------------------------------------- */

void td_metrics_buf_init(struct td_metrics_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void td_metrics_buf_reset(struct td_metrics_buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->data)
		b->data[0] = '\0';
}

void td_metrics_buf_free(struct td_metrics_buf *b)
{
	free(b->data);
	td_metrics_buf_init(b);
}

/* make room for n more bytes plus the NUL */
static int td_metrics_buf_reserve(struct td_metrics_buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (b->err)
		return b->err;
	if (n > SIZE_MAX / 2 - b->len - 1) {
		b->err = -ENOMEM;
		return b->err;
	}
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int td_metrics_buf_append(struct td_metrics_buf *b, const char *s, size_t n)
{
	int err = td_metrics_buf_reserve(b, n);

	if (err)
		return err;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int td_metrics_buf_printf(struct td_metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, err;

	if (b->err)
		return b->err;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = -EINVAL;
		return b->err;
	}
	err = td_metrics_buf_reserve(b, (size_t)n);
	if (err)
		return err;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

/* length of the valid UTF-8 sequence at s (1..4), or 0 when s does not start one */
static size_t td_utf8_len(const unsigned char *s)
{
	size_t n, i;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int td_metrics_buf_label_value(struct td_metrics_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	while (*p) {
		n = 1;
		if (*p == '\\')
			td_metrics_buf_append(b, "\\\\", 2);
		else if (*p == '"')
			td_metrics_buf_append(b, "\\\"", 2);
		else if (*p == '\n')
			td_metrics_buf_append(b, "\\n", 2);
		else if (*p >= 0x20 && *p != 0x7f && (n = td_utf8_len(p)) > 0)
			td_metrics_buf_append(b, (const char *)p, n);
		else {
			td_metrics_buf_append(b, "?", 1);
			n = 1;
		}
		p += n;
	}
	return b->err;
}

/* ---- families ----------------------------------------------------------------------------- */

enum td_mfam {
	TD_MF_AGENT_INFO,
	TD_MF_CONFIG_GENERATION,
	TD_MF_RELOAD_SUCCESS,
	TD_MF_RELOAD_TIME,
	TD_MF_SVC_PACKETS,
	TD_MF_SVC_BYTES,
	TD_MF_SVC_NEW_FLOWS,
	TD_MF_BE_PACKETS,
	TD_MF_BE_BYTES,
	TD_MF_BE_NEW_FLOWS,
	TD_MF_BE_UP,
	TD_MF_BE_WEIGHT,
	TD_MF_DP_EVENTS,
	TD_MF_DP_DROPS,
	TD_MF_MESH_CONNECTIONS,
	TD_MF_MESH_DATAGRAMS,
	TD_MF_MESH_DENIALS,
	TD_MF_MESH_NO_BACKEND,
	TD_MF_MESH_BYTES,
	TD_MF_MESH_RTT,
	TD_MF_MESH_EVENTS,
	TD_MF_MAX
};

static const struct td_metrics_family td_mfams[TD_MF_MAX] = {
	[TD_MF_AGENT_INFO] = { "td_agent_info", "gauge", "version",
		"Information about the running tdagent; the value is always 1." },
	[TD_MF_CONFIG_GENERATION] = { "td_config_generation", "gauge", "",
		"Generation of the configuration in force (increases with every applied change)." },
	[TD_MF_RELOAD_SUCCESS] = { "td_config_last_reload_success", "gauge", "",
		"1 if the last configuration load or reload succeeded, 0 if it was rejected." },
	[TD_MF_RELOAD_TIME] = { "td_config_last_reload_timestamp_seconds", "gauge", "",
		"Unix time of the last configuration load or reload attempt." },
	[TD_MF_SVC_PACKETS] = { "td_service_packets_total", "counter", "service,vip,port,proto",
		"Client packets to the service VIP that were assigned a backend." },
	[TD_MF_SVC_BYTES] = { "td_service_bytes_total", "counter", "service,vip,port,proto",
		"Bytes of client packets to the service VIP that were assigned a backend "
		"(whole frames, Ethernet header included)." },
	[TD_MF_SVC_NEW_FLOWS] = { "td_service_new_flows_total", "counter", "service,vip,port,proto",
		"Flows to the service VIP that were assigned a backend (conntrack entries created)." },
	[TD_MF_BE_PACKETS] = { "td_backend_packets_total", "counter", "service,backend",
		"Client packets assigned to the backend." },
	[TD_MF_BE_BYTES] = { "td_backend_bytes_total", "counter", "service,backend",
		"Bytes of client packets assigned to the backend "
		"(whole frames, Ethernet header included)." },
	[TD_MF_BE_NEW_FLOWS] = { "td_backend_new_flows_total", "counter", "service,backend",
		"Flows assigned to the backend." },
	[TD_MF_BE_UP] = { "td_backend_up", "gauge", "service,backend",
		"Health check state of the backend: 1 up, 0 down; absent when not checked." },
	[TD_MF_BE_WEIGHT] = { "td_backend_weight", "gauge", "service,backend",
		"Weight of the backend in its Maglev table (0: drained, no new flows)." },
	[TD_MF_DP_EVENTS] = { "td_datapath_events_total", "counter", "event",
		"Datapath events and packets passed to the kernel stack, by event." },
	[TD_MF_DP_DROPS] = { "td_datapath_drops_total", "counter", "reason",
		"Packets dropped by the datapath, by reason." },
	[TD_MF_MESH_CONNECTIONS] = { "td_mesh_connections_total", "counter", "src,dst",
		"Mesh connect() calls to a service VIP translated to a backend, by source identity "
		"and destination service." },
	[TD_MF_MESH_DATAGRAMS] = { "td_mesh_datagrams_total", "counter", "src,dst",
		"Unconnected UDP datagrams to a mesh service VIP translated to a backend." },
	[TD_MF_MESH_DENIALS] = { "td_mesh_denials_total", "counter", "src,dst",
		"Mesh connect()/sendmsg() calls refused by the identity policy (EPERM)." },
	[TD_MF_MESH_NO_BACKEND] = { "td_mesh_no_backend_total", "counter", "src,dst",
		"Mesh connect()/sendmsg() calls refused because the service had no healthy backend "
		"(ECONNREFUSED)." },
	[TD_MF_MESH_BYTES] = { "td_mesh_bytes_total", "counter", "src,dst,direction",
		"Mesh TCP payload bytes between the pair: direction tx is src to dst, rx dst to src "
		"(TCP path and socket redirect)." },
	[TD_MF_MESH_RTT] = { "td_mesh_rtt_seconds", "gauge", "src,dst",
		"Last smoothed TCP round-trip time seen for the pair (absent before a sample)." },
	[TD_MF_MESH_EVENTS] = { "td_mesh_events_total", "counter", "event",
		"Mesh datapath events by event (translations, policy verdicts, redirect, errors)." },
};

size_t td_metrics_families(const struct td_metrics_family **families)
{
	*families = td_mfams;
	return TD_MF_MAX;
}

static void td_metrics_header(struct td_metrics_buf *b, enum td_mfam f)
{
	td_metrics_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", td_mfams[f].name,
			      td_mfams[f].help, td_mfams[f].name, td_mfams[f].type);
}

/* ---- render ------------------------------------------------------------------------------- */

/* a backend to render, with its service */
struct td_mbe {
	const struct td_stats_service *svc;
	const struct td_stats_backend *be;
	char ep[TD_ENDPOINTSTRLEN];
	enum td_metrics_health health;
};

static int td_mbe_cmp(const void *a, const void *b)
{
	const struct td_mbe *x = a, *y = b;

	if (x->svc->id != y->svc->id)
		return x->svc->id < y->svc->id ? -1 : 1;
	return x->be->id < y->be->id ? -1 : x->be->id > y->be->id;
}

static void td_metrics_svc_labels(struct td_metrics_buf *b, const struct td_stats_service *s)
{
	char vip[TD_ADDRSTRLEN];

	td_addr_format(&s->vip, s->family, vip, sizeof(vip));
	td_metrics_buf_append(b, "{service=\"", 10);
	td_metrics_buf_label_value(b, s->name);
	td_metrics_buf_printf(b, "\",vip=\"%s\",port=\"%u\",proto=\"%s\"}", vip, s->port,
			      td_proto_name(s->proto));
}

static void td_metrics_be_labels(struct td_metrics_buf *b, const struct td_mbe *x)
{
	td_metrics_buf_append(b, "{service=\"", 10);
	td_metrics_buf_label_value(b, x->svc->name);
	td_metrics_buf_append(b, "\",backend=\"", 11);
	td_metrics_buf_label_value(b, x->ep);
	td_metrics_buf_append(b, "\"}", 2);
}

static void td_metrics_render_services(struct td_metrics_buf *b,
				       const struct td_stats_snapshot *snap)
{
	enum td_mfam f;
	size_t i;

	for (f = TD_MF_SVC_PACKETS; f <= TD_MF_SVC_NEW_FLOWS; f++) {
		td_metrics_header(b, f);
		for (i = 0; snap && i < snap->n_services; i++) {
			const struct td_stats_service *s = &snap->services[i];
			__u64 v = f == TD_MF_SVC_PACKETS ? s->packets :
				  f == TD_MF_SVC_BYTES ? s->bytes : s->new_flows;

			td_metrics_buf_append(b, td_mfams[f].name, strlen(td_mfams[f].name));
			td_metrics_svc_labels(b, s);
			td_metrics_buf_printf(b, " %llu\n", (unsigned long long)v);
		}
	}
}

static void td_metrics_render_backends(struct td_metrics_buf *b, const struct td_mbe *bes,
				       size_t n)
{
	enum td_mfam f;
	size_t i;

	for (f = TD_MF_BE_PACKETS; f <= TD_MF_BE_WEIGHT; f++) {
		td_metrics_header(b, f);
		for (i = 0; i < n; i++) {
			const struct td_stats_backend *be = bes[i].be;
			__u64 v;

			switch (f) {
			case TD_MF_BE_PACKETS: v = be->packets; break;
			case TD_MF_BE_BYTES: v = be->bytes; break;
			case TD_MF_BE_NEW_FLOWS: v = be->new_flows; break;
			case TD_MF_BE_WEIGHT: v = be->weight; break;
			default:
				if (bes[i].health == TD_METRICS_HEALTH_UNKNOWN)
					continue;
				v = bes[i].health == TD_METRICS_HEALTH_UP;
				break;
			}
			td_metrics_buf_append(b, td_mfams[f].name, strlen(td_mfams[f].name));
			td_metrics_be_labels(b, &bes[i]);
			td_metrics_buf_printf(b, " %llu\n", (unsigned long long)v);
		}
	}
}

static void td_metrics_render_counters(struct td_metrics_buf *b,
				       const struct td_stats_snapshot *snap)
{
	int drops;
	size_t i;

	for (drops = 0; drops < 2; drops++) {
		enum td_mfam f = drops ? TD_MF_DP_DROPS : TD_MF_DP_EVENTS;

		td_metrics_header(b, f);
		for (i = 0; snap && i < snap->n_counters; i++) {
			const struct td_stats_counter *c = &snap->counters[i];
			const char *label = c->name;

			if (!c->name || c->is_drop != !!drops)
				continue;
			if (drops && !strncmp(label, "drop_", 5))
				label += 5;
			td_metrics_buf_printf(b, "%s{%s=\"", td_mfams[f].name,
					      drops ? "reason" : "event");
			td_metrics_buf_label_value(b, label);
			td_metrics_buf_printf(b, "\"} %llu\n", (unsigned long long)c->value);
		}
	}
}

static void td_metrics_mesh_labels(struct td_metrics_buf *b, const struct td_stats_mesh_pair *p)
{
	td_metrics_buf_append(b, "{src=\"", 6);
	td_metrics_buf_label_value(b, p->src_name);
	td_metrics_buf_append(b, "\",dst=\"", 7);
	td_metrics_buf_label_value(b, p->dst_name);
	td_metrics_buf_append(b, "\"", 1);
}

static void td_metrics_render_mesh(struct td_metrics_buf *b, const struct td_stats_mesh *mesh)
{
	size_t i, n = mesh ? mesh->n_pairs : 0;
	enum td_mfam f;
	unsigned int c;

	for (f = TD_MF_MESH_CONNECTIONS; f <= TD_MF_MESH_RTT; f++) {
		td_metrics_header(b, f);
		for (i = 0; i < n; i++) {
			const struct td_stats_mesh_pair *p = &mesh->pairs[i];
			const char *name = td_mfams[f].name;
			__u64 v;

			switch (f) {
			case TD_MF_MESH_CONNECTIONS: v = p->s.connections; break;
			case TD_MF_MESH_DATAGRAMS: v = p->s.datagrams; break;
			case TD_MF_MESH_DENIALS: v = p->s.denials; break;
			case TD_MF_MESH_NO_BACKEND: v = p->s.no_backend; break;
			case TD_MF_MESH_BYTES:
				td_metrics_buf_append(b, name, strlen(name));
				td_metrics_mesh_labels(b, p);
				td_metrics_buf_printf(b, ",direction=\"tx\"} %llu\n",
						      (unsigned long long)p->s.bytes_tx);
				td_metrics_buf_append(b, name, strlen(name));
				td_metrics_mesh_labels(b, p);
				td_metrics_buf_printf(b, ",direction=\"rx\"} %llu\n",
						      (unsigned long long)p->s.bytes_rx);
				continue;
			default:
				if (!p->s.srtt_us)
					continue;
				td_metrics_buf_append(b, name, strlen(name));
				td_metrics_mesh_labels(b, p);
				td_metrics_buf_printf(b, "} %llu.%06llu\n",
						      (unsigned long long)(p->s.srtt_us / 1000000),
						      (unsigned long long)(p->s.srtt_us % 1000000));
				continue;
			}
			td_metrics_buf_append(b, name, strlen(name));
			td_metrics_mesh_labels(b, p);
			td_metrics_buf_printf(b, "} %llu\n", (unsigned long long)v);
		}
	}
	td_metrics_header(b, TD_MF_MESH_EVENTS);
	for (c = 0; mesh && c < TD_M_CNT_MAX; c++) {
		const char *cn = td_mesh_counter_name(c);

		if (!cn)
			continue;
		td_metrics_buf_printf(b, "%s{event=\"", td_mfams[TD_MF_MESH_EVENTS].name);
		td_metrics_buf_label_value(b, cn);
		td_metrics_buf_printf(b, "\"} %llu\n", (unsigned long long)mesh->counters[c]);
	}
}

static void td_metrics_render_agent(struct td_metrics_buf *b, const struct td_metrics_agent *a)
{
	td_metrics_header(b, TD_MF_AGENT_INFO);
	if (a) {
		td_metrics_buf_printf(b, "%s{version=\"", td_mfams[TD_MF_AGENT_INFO].name);
		td_metrics_buf_label_value(b, a->version ? a->version : "unknown");
		td_metrics_buf_append(b, "\"} 1\n", 5);
	}
	td_metrics_header(b, TD_MF_CONFIG_GENERATION);
	if (a)
		td_metrics_buf_printf(b, "%s %llu\n", td_mfams[TD_MF_CONFIG_GENERATION].name,
				      (unsigned long long)a->generation);
	td_metrics_header(b, TD_MF_RELOAD_SUCCESS);
	if (a && a->reload_attempted)
		td_metrics_buf_printf(b, "%s %d\n", td_mfams[TD_MF_RELOAD_SUCCESS].name,
				      a->last_reload_ok ? 1 : 0);
	td_metrics_header(b, TD_MF_RELOAD_TIME);
	if (a && a->reload_attempted)
		td_metrics_buf_printf(b, "%s %lld\n", td_mfams[TD_MF_RELOAD_TIME].name,
				      (long long)a->last_reload_time);
}

int td_metrics_render(struct td_metrics_buf *out, const struct td_stats_snapshot *snap,
		      const struct td_metrics_agent *agent)
{
	struct td_mbe *bes = NULL;
	size_t i, n = 0;
	int err;

	if (snap && snap->n_backends) {
		bes = calloc(snap->n_backends, sizeof(*bes));
		if (!bes) {
			err = -ENOMEM;
			goto cleanup;
		}
		for (i = 0; i < snap->n_backends; i++) {
			const struct td_stats_backend *be = &snap->backends[i];
			const struct td_stats_service *svc = td_stats_service_find(snap, be->svc_id);
			struct td_mbe *x = &bes[n];

			if (!be->active || !svc)
				continue;
			x->svc = svc;
			x->be = be;
			td_endpoint_format(&be->addr, be->family, be->port, x->ep, sizeof(x->ep));
			x->health = agent && agent->health ?
				    agent->health(agent->health_arg, svc, be) :
				    TD_METRICS_HEALTH_UNKNOWN;
			n++;
		}
		qsort(bes, n, sizeof(*bes), td_mbe_cmp);
	}
	td_metrics_render_agent(out, agent);
	td_metrics_render_services(out, snap);
	td_metrics_render_backends(out, bes, n);
	td_metrics_render_counters(out, snap);
	td_metrics_render_mesh(out, snap ? snap->mesh : NULL);
	err = out->err;
cleanup:
	free(bes);
	return err;
}

int td_metrics_collect(struct td_metrics_buf *out, const struct td_maps *m,
		       const struct td_metrics_agent *agent)
{
	return td_metrics_collect_mesh(out, m, NULL, agent);
}

int td_metrics_collect_mesh(struct td_metrics_buf *out, const struct td_maps *m,
			    const struct td_mesh_maps *mesh, const struct td_metrics_agent *agent)
{
	struct td_stats_snapshot snap;
	struct td_stats_mesh ms;
	bool have_mesh = false;
	int err;

	memset(&ms, 0, sizeof(ms));
	if (mesh)
		have_mesh = td_stats_mesh_read(mesh, &ms) == 0;
	err = td_stats_read(m, &snap);
	if (!err)
		snap.mesh = have_mesh ? &ms : NULL;
	err = td_metrics_render(out, err ? NULL : &snap, agent);
	td_stats_free(&snap);
	td_stats_mesh_free(&ms);
	return err;
}

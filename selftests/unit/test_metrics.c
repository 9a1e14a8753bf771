/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for stats snapshots, the Prometheus exposition and the /metrics HTTP responder. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <CUnit/CUnit.h>

#include "addr.h"
#include "dp.h"
#include "metrics.h"
#include "metrics_http.h"
#include "names.h"
#include "stats.h"
#include "unit.h"

/* ---- fixture -------------------------------------------------------------------------------
 * Two services (v4 tcp, v6 udp); backends 4, 5 (web: up, down), 2 (dns6: health unknown),
 * 6 (web, removed: not rendered) and 9 (service 7 does not exist: not rendered). Backends are
 * listed by id, so rendering has to group them by service.
 */
static struct td_stats_service mt_svcs[2];
static struct td_stats_backend mt_bes[5];

static void mt_fixture(struct td_stats_snapshot *snap)
{
	static const struct { __u32 id; const char *name; const char *vip; __u16 port;
			      __u8 proto, mode; __u64 p, b, f; } sv[] = {
		{ 1, "web", "10.0.0.10", 80, TD_PROTO_TCP, TD_MODE_NAT, 1000, 64000, 10 },
		{ 3, "dns6", "fd00::53", 53, TD_PROTO_UDP, TD_MODE_DSR, 5, 400, 5 },
	};
	static const struct { __u32 id, svc; const char *addr; __u16 port, weight; bool active;
			      __u64 p, b, f; } bv[] = {
		{ 2, 3, "fd00::a", 53, 1, true, 5, 400, 5 },
		{ 4, 1, "10.0.1.11", 8080, 100, true, 600, 38400, 6 },
		{ 5, 1, "10.0.1.12", 8080, 0, true, 400, 25600, 4 },
		{ 6, 1, "10.0.1.13", 8080, 50, false, 9, 9, 9 },
		{ 9, 7, "10.0.9.9", 9, 1, true, 9, 9, 9 },
	};
	size_t i;

	memset(snap, 0, sizeof(*snap));
	memset(mt_svcs, 0, sizeof(mt_svcs));
	memset(mt_bes, 0, sizeof(mt_bes));
	for (i = 0; i < 2; i++) {
		struct td_stats_service *s = &mt_svcs[i];

		s->id = sv[i].id;
		snprintf(s->name, sizeof(s->name), "%s", sv[i].name);
		td_addr_parse(sv[i].vip, &s->vip, &s->family);
		s->port = sv[i].port;
		s->proto = sv[i].proto;
		s->mode = sv[i].mode;
		s->packets = sv[i].p;
		s->bytes = sv[i].b;
		s->new_flows = sv[i].f;
	}
	for (i = 0; i < 5; i++) {
		struct td_stats_backend *b = &mt_bes[i];

		b->id = bv[i].id;
		b->svc_id = bv[i].svc;
		td_addr_parse(bv[i].addr, &b->addr, &b->family);
		b->port = bv[i].port;
		b->weight = bv[i].weight;
		b->active = bv[i].active;
		b->nexthop = true;
		b->packets = bv[i].p;
		b->bytes = bv[i].b;
		b->new_flows = bv[i].f;
	}
	snap->services = mt_svcs;
	snap->n_services = 2;
	snap->backends = mt_bes;
	snap->n_backends = 5;
	snap->counters[0] = (struct td_stats_counter){ TD_CNT_RX, "rx", false, 1234 };
	snap->counters[1] = (struct td_stats_counter){ TD_PASS_NOT_VIP, "pass_not_vip", false, 7 };
	snap->counters[2] = (struct td_stats_counter){ TD_DROP_NO_BACKEND, "drop_no_backend", true, 3 };
	snap->counters[3] = (struct td_stats_counter){ TD_DROP_TTL, "drop_ttl", true, 0 };
	snap->n_counters = 4;
}

static enum td_metrics_health mt_health(void *arg, const struct td_stats_service *svc,
					const struct td_stats_backend *be)
{
	int *calls = arg;

	if (calls)
		(*calls)++;
	if (!svc || svc->id != be->svc_id)
		return TD_METRICS_HEALTH_DOWN;      /* wrong service passed: shows up as a diff */
	return be->id == 4 ? TD_METRICS_HEALTH_UP :
	       be->id == 5 ? TD_METRICS_HEALTH_DOWN : TD_METRICS_HEALTH_UNKNOWN;
}

static const struct td_metrics_agent mt_agent = {
	.version = "0.1.0",
	.generation = 7,
	.reload_attempted = true,
	.last_reload_ok = false,
	.last_reload_time = 1700000000,
	.health = mt_health,
};

/* samples in mt_expected: agent 4, services 3 x 2, backends 3 x 3 + 2 up + 3 weights, counters 4 */
#define MT_FIXTURE_SAMPLES 28

static const char mt_expected[] =
	"# HELP td_agent_info Information about the running tdagent; the value is always 1.\n"
	"# TYPE td_agent_info gauge\n"
	"td_agent_info{version=\"0.1.0\"} 1\n"
	"# HELP td_config_generation Generation of the configuration in force (increases with every applied change).\n"
	"# TYPE td_config_generation gauge\n"
	"td_config_generation 7\n"
	"# HELP td_config_last_reload_success 1 if the last configuration load or reload succeeded, 0 if it was rejected.\n"
	"# TYPE td_config_last_reload_success gauge\n"
	"td_config_last_reload_success 0\n"
	"# HELP td_config_last_reload_timestamp_seconds Unix time of the last configuration load or reload attempt.\n"
	"# TYPE td_config_last_reload_timestamp_seconds gauge\n"
	"td_config_last_reload_timestamp_seconds 1700000000\n"
	"# HELP td_service_packets_total Client packets to the service VIP that were assigned a backend.\n"
	"# TYPE td_service_packets_total counter\n"
	"td_service_packets_total{service=\"web\",vip=\"10.0.0.10\",port=\"80\",proto=\"tcp\"} 1000\n"
	"td_service_packets_total{service=\"dns6\",vip=\"fd00::53\",port=\"53\",proto=\"udp\"} 5\n"
	"# HELP td_service_bytes_total Bytes of client packets to the service VIP that were assigned a backend (whole frames, Ethernet header included).\n"
	"# TYPE td_service_bytes_total counter\n"
	"td_service_bytes_total{service=\"web\",vip=\"10.0.0.10\",port=\"80\",proto=\"tcp\"} 64000\n"
	"td_service_bytes_total{service=\"dns6\",vip=\"fd00::53\",port=\"53\",proto=\"udp\"} 400\n"
	"# HELP td_service_new_flows_total Flows to the service VIP that were assigned a backend (conntrack entries created).\n"
	"# TYPE td_service_new_flows_total counter\n"
	"td_service_new_flows_total{service=\"web\",vip=\"10.0.0.10\",port=\"80\",proto=\"tcp\"} 10\n"
	"td_service_new_flows_total{service=\"dns6\",vip=\"fd00::53\",port=\"53\",proto=\"udp\"} 5\n"
	"# HELP td_backend_packets_total Client packets assigned to the backend.\n"
	"# TYPE td_backend_packets_total counter\n"
	"td_backend_packets_total{service=\"web\",backend=\"10.0.1.11:8080\"} 600\n"
	"td_backend_packets_total{service=\"web\",backend=\"10.0.1.12:8080\"} 400\n"
	"td_backend_packets_total{service=\"dns6\",backend=\"[fd00::a]:53\"} 5\n"
	"# HELP td_backend_bytes_total Bytes of client packets assigned to the backend (whole frames, Ethernet header included).\n"
	"# TYPE td_backend_bytes_total counter\n"
	"td_backend_bytes_total{service=\"web\",backend=\"10.0.1.11:8080\"} 38400\n"
	"td_backend_bytes_total{service=\"web\",backend=\"10.0.1.12:8080\"} 25600\n"
	"td_backend_bytes_total{service=\"dns6\",backend=\"[fd00::a]:53\"} 400\n"
	"# HELP td_backend_new_flows_total Flows assigned to the backend.\n"
	"# TYPE td_backend_new_flows_total counter\n"
	"td_backend_new_flows_total{service=\"web\",backend=\"10.0.1.11:8080\"} 6\n"
	"td_backend_new_flows_total{service=\"web\",backend=\"10.0.1.12:8080\"} 4\n"
	"td_backend_new_flows_total{service=\"dns6\",backend=\"[fd00::a]:53\"} 5\n"
	"# HELP td_backend_up Health check state of the backend: 1 up, 0 down; absent when not checked.\n"
	"# TYPE td_backend_up gauge\n"
	"td_backend_up{service=\"web\",backend=\"10.0.1.11:8080\"} 1\n"
	"td_backend_up{service=\"web\",backend=\"10.0.1.12:8080\"} 0\n"
	"# HELP td_backend_weight Weight of the backend in its Maglev table (0: drained, no new flows).\n"
	"# TYPE td_backend_weight gauge\n"
	"td_backend_weight{service=\"web\",backend=\"10.0.1.11:8080\"} 100\n"
	"td_backend_weight{service=\"web\",backend=\"10.0.1.12:8080\"} 0\n"
	"td_backend_weight{service=\"dns6\",backend=\"[fd00::a]:53\"} 1\n"
	"# HELP td_datapath_events_total Datapath events and packets passed to the kernel stack, by event.\n"
	"# TYPE td_datapath_events_total counter\n"
	"td_datapath_events_total{event=\"rx\"} 1234\n"
	"td_datapath_events_total{event=\"pass_not_vip\"} 7\n"
	"# HELP td_datapath_drops_total Packets dropped by the datapath, by reason.\n"
	"# TYPE td_datapath_drops_total counter\n"
	"td_datapath_drops_total{reason=\"no_backend\"} 3\n"
	"td_datapath_drops_total{reason=\"ttl\"} 0\n"
	/* no snap->mesh in the fixture: the mesh families have HELP and TYPE only */
	"# HELP td_mesh_connections_total Mesh connect() calls to a service VIP translated to a backend, by source identity and destination service.\n"
	"# TYPE td_mesh_connections_total counter\n"
	"# HELP td_mesh_datagrams_total Unconnected UDP datagrams to a mesh service VIP translated to a backend.\n"
	"# TYPE td_mesh_datagrams_total counter\n"
	"# HELP td_mesh_denials_total Mesh connect()/sendmsg() calls refused by the identity policy (EPERM).\n"
	"# TYPE td_mesh_denials_total counter\n"
	"# HELP td_mesh_no_backend_total Mesh connect()/sendmsg() calls refused because the service had no healthy backend (ECONNREFUSED).\n"
	"# TYPE td_mesh_no_backend_total counter\n"
	"# HELP td_mesh_bytes_total Mesh TCP payload bytes between the pair: direction tx is src to dst, rx dst to src (TCP path and socket redirect).\n"
	"# TYPE td_mesh_bytes_total counter\n"
	"# HELP td_mesh_rtt_seconds Last smoothed TCP round-trip time seen for the pair (absent before a sample).\n"
	"# TYPE td_mesh_rtt_seconds gauge\n"
	"# HELP td_mesh_events_total Mesh datapath events by event (translations, policy verdicts, redirect, errors).\n"
	"# TYPE td_mesh_events_total counter\n";

/* mesh part: two pairs (one with an RTT sample), every mesh counter = its index */
static struct td_stats_mesh_pair mt_pairs[2];
static struct td_stats_mesh mt_mesh;

static const struct td_stats_mesh *mt_mesh_fixture(void)
{
	unsigned int c;

	memset(mt_pairs, 0, sizeof(mt_pairs));
	memset(&mt_mesh, 0, sizeof(mt_mesh));
	mt_pairs[0].src = 2;
	mt_pairs[0].dst = 1;
	snprintf(mt_pairs[0].src_name, sizeof(mt_pairs[0].src_name), "frontend");
	snprintf(mt_pairs[0].dst_name, sizeof(mt_pairs[0].dst_name), "orders");
	mt_pairs[0].s.connections = 300;
	mt_pairs[0].s.datagrams = 4;
	mt_pairs[0].s.bytes_tx = 600;
	mt_pairs[0].s.bytes_rx = 1196;
	mt_pairs[0].s.srtt_us = 1234567;
	mt_pairs[1].src = 0;
	mt_pairs[1].dst = 1;
	snprintf(mt_pairs[1].src_name, sizeof(mt_pairs[1].src_name), "unknown");
	snprintf(mt_pairs[1].dst_name, sizeof(mt_pairs[1].dst_name), "orders");
	mt_pairs[1].s.denials = 201;
	mt_pairs[1].s.no_backend = 2;
	mt_mesh.pairs = mt_pairs;
	mt_mesh.n_pairs = 2;
	mt_mesh.n_services = 2;
	for (c = 0; c < TD_M_CNT_MAX; c++)
		mt_mesh.counters[c] = c;
	return &mt_mesh;
}

/*
 * Print the fixture exposition with every datapath counter (td_unit --metrics-sample), so
 * scripts/check-metrics.sh sees every family and every event/reason label value.
 */
int td_metrics_sample_print(void)
{
	struct td_stats_snapshot snap;
	struct td_metrics_buf b;
	unsigned int i;
	int err;

	mt_fixture(&snap);
	snap.n_counters = 0;
	for (i = 0; i < TD_CNT_MAX; i++) {
		if (!td_counter_name(i))
			continue;
		snap.counters[snap.n_counters++] = (struct td_stats_counter){
			i, td_counter_name(i), td_counter_is_drop(i) != 0, i };
	}
	snap.mesh = mt_mesh_fixture();
	td_metrics_buf_init(&b);
	err = td_metrics_render(&b, &snap, &mt_agent);
	if (!err)
		fputs(b.data, stdout);
	td_metrics_buf_free(&b);
	return err ? 1 : 0;
}

/* ---- exposition validator ------------------------------------------------------------------
 * Text format 0.0.4: "# HELP name text", "# TYPE name type", other "#" comments, samples
 * "name[{l="v",...}] value [timestamp]". Also checks what Prometheus rejects or what a reader
 * would trip on: TYPE once per family and before its samples, samples of a family contiguous
 * and named after it (counters and gauges), no duplicate series, no empty line, final newline,
 * escapes in label values only \\ \" \n. Returns the number of samples, or -1 with why in err.
 */
#define MT_MAX_FAMILIES 64
#define MT_MAX_SERIES   256

struct mt_check {
	regex_t name_re, label_re;
	char families[MT_MAX_FAMILIES][128];
	char types[MT_MAX_FAMILIES][16];
	size_t n_families;
	char *series[MT_MAX_SERIES];
	size_t n_series;
};

static int mt_fail(char *err, size_t len, int line, const char *why, const char *text, size_t n)
{
	snprintf(err, len, "line %d: %s: '%.*s'", line, why, (int)(n > 120 ? 120 : n), text);
	return -1;
}

static bool mt_re(const regex_t *re, const char *s, size_t n)
{
	char tmp[256];

	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return regexec(re, tmp, 0, NULL, 0) == 0;
}

static bool mt_value_ok(const char *s, size_t n)
{
	char tmp[64], *end;

	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (!strcmp(tmp, "+Inf") || !strcmp(tmp, "-Inf") || !strcmp(tmp, "NaN"))
		return true;
	errno = 0;
	strtod(tmp, &end);
	return *end == '\0' && !errno && (tmp[0] == '-' || tmp[0] == '+' || tmp[0] == '.' ||
					  (tmp[0] >= '0' && tmp[0] <= '9'));
}

static int mt_validate(const char *text, char *err, size_t errlen)
{
	struct mt_check *c = calloc(1, sizeof(*c));
	const char *p = text, *cur_family = NULL;
	int line = 0, samples = 0, rc = -1;
	size_t i;

	snprintf(err, errlen, "ok");
	if (!c)
		return mt_fail(err, errlen, 0, "out of memory", "", 0);
	regcomp(&c->name_re, "^[a-zA-Z_:][a-zA-Z0-9_:]*$", REG_EXTENDED | REG_NOSUB);
	regcomp(&c->label_re, "^[a-zA-Z_][a-zA-Z0-9_]*$", REG_EXTENDED | REG_NOSUB);
	if (!*text || text[strlen(text) - 1] != '\n') {
		mt_fail(err, errlen, 0, "empty or no final newline", "", 0);
		goto cleanup;
	}
	while (*p) {
		const char *eol = strchr(p, '\n'), *q, *name_end;
		size_t n = (size_t)(eol - p);

		line++;
		if (n == 0) {
			mt_fail(err, errlen, line, "empty line", p, n);
			goto cleanup;
		}
		if (p[0] == '#') {
			bool help = n > 7 && !strncmp(p, "# HELP ", 7);
			bool type = n > 7 && !strncmp(p, "# TYPE ", 7);

			if (help || type) {
				const char *nm = p + 7, *sp = memchr(nm, ' ', (size_t)(eol - nm));

				if (!sp || !mt_re(&c->name_re, nm, (size_t)(sp - nm))) {
					mt_fail(err, errlen, line, "bad metric name", p, n);
					goto cleanup;
				}
				for (q = sp + 1; help && q < eol; q++)
					if (*q == '\\' && (q + 1 >= eol || (q[1] != '\\' && q[1] != 'n'))) {
						mt_fail(err, errlen, line, "bad escape in HELP", p, n);
						goto cleanup;
					} else if (*q == '\\') {
						q++;
					}
				if (type) {
					size_t tl = (size_t)(eol - sp - 1);
					static const char *const types[] = { "counter", "gauge",
						"histogram", "summary", "untyped" };
					bool ok = false;

					for (i = 0; i < 5; i++)
						ok |= tl == strlen(types[i]) && !strncmp(sp + 1, types[i], tl);
					if (!ok) {
						mt_fail(err, errlen, line, "bad TYPE", p, n);
						goto cleanup;
					}
					for (i = 0; i < c->n_families; i++)
						if (strlen(c->families[i]) == (size_t)(sp - nm) &&
						    !strncmp(c->families[i], nm, (size_t)(sp - nm))) {
							mt_fail(err, errlen, line, "second TYPE", p, n);
							goto cleanup;
						}
					if (c->n_families == MT_MAX_FAMILIES ||
					    (size_t)(sp - nm) >= sizeof(c->families[0])) {
						mt_fail(err, errlen, line, "too many families", p, n);
						goto cleanup;
					}
					snprintf(c->families[c->n_families], sizeof(c->families[0]), "%.*s",
						 (int)(sp - nm), nm);
					snprintf(c->types[c->n_families], sizeof(c->types[0]), "%.*s",
						 (int)tl, sp + 1);
					cur_family = c->families[c->n_families++];
				}
			}
			p = eol + 1;
			continue;
		}
		/* sample */
		for (q = p; q < eol && *q != '{' && *q != ' '; q++)
			;
		name_end = q;
		if (!mt_re(&c->name_re, p, (size_t)(name_end - p))) {
			mt_fail(err, errlen, line, "bad metric name", p, n);
			goto cleanup;
		}
		if (!cur_family || strlen(cur_family) != (size_t)(name_end - p) ||
		    strncmp(cur_family, p, (size_t)(name_end - p))) {
			mt_fail(err, errlen, line, "sample outside its family (no TYPE before it)", p, n);
			goto cleanup;
		}
		if (*q == '{') {
			q++;
			while (q < eol && *q != '}') {
				const char *ln = q;

				while (q < eol && *q != '=')
					q++;
				if (q >= eol || !mt_re(&c->label_re, ln, (size_t)(q - ln)) ||
				    q[1] != '"') {
					mt_fail(err, errlen, line, "bad label name", p, n);
					goto cleanup;
				}
				for (q += 2; q < eol && *q != '"'; q++) {
					if (*q != '\\')
						continue;
					if (q + 1 >= eol || (q[1] != '\\' && q[1] != '"' && q[1] != 'n')) {
						mt_fail(err, errlen, line, "bad escape in label value", p, n);
						goto cleanup;
					}
					q++;
				}
				if (q >= eol) {
					mt_fail(err, errlen, line, "unterminated label value", p, n);
					goto cleanup;
				}
				q++;
				if (*q == ',')
					q++;
				else if (*q != '}') {
					mt_fail(err, errlen, line, "expected , or }", p, n);
					goto cleanup;
				}
			}
			if (q >= eol) {
				mt_fail(err, errlen, line, "unterminated labels", p, n);
				goto cleanup;
			}
			q++;
		}
		if (*q != ' ') {
			mt_fail(err, errlen, line, "no space before the value", p, n);
			goto cleanup;
		}
		{
			const char *v = q + 1, *sp = memchr(v, ' ', (size_t)(eol - v));
			const char *vend = sp ? sp : eol;
			char *key;

			if (!mt_value_ok(v, (size_t)(vend - v))) {
				mt_fail(err, errlen, line, "bad value", p, n);
				goto cleanup;
			}
			if (sp) {   /* optional timestamp: an integer */
				for (q = sp + 1; q < eol && ((*q >= '0' && *q <= '9') || *q == '-'); q++)
					;
				if (q != eol || sp + 1 == eol) {
					mt_fail(err, errlen, line, "bad timestamp", p, n);
					goto cleanup;
				}
			}
			for (i = 0; i < c->n_series; i++)
				if (strlen(c->series[i]) == (size_t)(v - 1 - p) &&
				    !strncmp(c->series[i], p, (size_t)(v - 1 - p))) {
					mt_fail(err, errlen, line, "duplicate series", p, n);
					goto cleanup;
				}
			key = strndup(p, (size_t)(v - 1 - p));
			if (!key || c->n_series == MT_MAX_SERIES) {
				free(key);
				mt_fail(err, errlen, line, "too many series", p, n);
				goto cleanup;
			}
			c->series[c->n_series++] = key;
		}
		samples++;
		p = eol + 1;
	}
	rc = samples;
cleanup:
	for (i = 0; i < c->n_series; i++)
		free(c->series[i]);
	regfree(&c->name_re);
	regfree(&c->label_re);
	free(c);
	return rc;
}

/* ---- exposition tests --------------------------------------------------------------------- */

/* first differing line of two texts, for a readable failure */
static void mt_print_diff(const char *got, const char *want)
{
	int line = 1;

	while (*got && *got == *want) {
		if (*got == '\n')
			line++;
		got++;
		want++;
	}
	fprintf(stderr, "\n  exposition differs at line %d:\n    got:  %.*s\n    want: %.*s\n", line,
		(int)strcspn(got, "\n"), got, (int)strcspn(want, "\n"), want);
}

static void test_render_exact(void)
{
	struct td_stats_snapshot snap;
	struct td_metrics_agent agent = mt_agent;
	struct td_metrics_buf b;
	int calls = 0;
	char err[256];

	mt_fixture(&snap);
	agent.health_arg = &calls;
	td_metrics_buf_init(&b);
	CU_ASSERT_EQUAL_FATAL(td_metrics_render(&b, &snap, &agent), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b.data);
	if (strcmp(b.data, mt_expected))
		mt_print_diff(b.data, mt_expected);
	CU_ASSERT_STRING_EQUAL(b.data, mt_expected);
	CU_ASSERT_EQUAL(b.len, strlen(mt_expected));
	CU_ASSERT_EQUAL(calls, 3);               /* once per rendered backend */
	CU_ASSERT_EQUAL(mt_validate(b.data, err, sizeof(err)), MT_FIXTURE_SAMPLES);
	/* appending: a second render goes after the first */
	CU_ASSERT_EQUAL(td_metrics_render(&b, &snap, &agent), 0);
	CU_ASSERT_EQUAL(b.len, 2 * strlen(mt_expected));
	td_metrics_buf_free(&b);
}

static void test_render_partial(void)
{
	struct td_stats_snapshot snap;
	struct td_metrics_agent agent = mt_agent;
	struct td_metrics_buf b;
	char err[256];
	int n;

	mt_fixture(&snap);
	td_metrics_buf_init(&b);
	/* no agent: no agent samples, no td_backend_up samples, datapath intact */
	CU_ASSERT_EQUAL(td_metrics_render(&b, &snap, NULL), 0);
	n = mt_validate(b.data, err, sizeof(err));
	if (n < 0)
		fprintf(stderr, "\n  %s\n", err);
	CU_ASSERT_EQUAL(n, MT_FIXTURE_SAMPLES - 4 - 2);   /* agent, td_backend_up */
	CU_ASSERT_PTR_NULL(strstr(b.data, "\ntd_agent_info{"));
	CU_ASSERT_PTR_NULL(strstr(b.data, "\ntd_backend_up{"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "# TYPE td_agent_info gauge\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "\ntd_backend_weight{service=\"web\",backend=\"10.0.1.11:8080\"} 100\n"));
	/* no snapshot: agent samples only, every family still declared */
	td_metrics_buf_reset(&b);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_EQUAL(td_metrics_render(&b, NULL, &agent), 0);
	CU_ASSERT_EQUAL(mt_validate(b.data, err, sizeof(err)), 4);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "# TYPE td_datapath_drops_total counter\n"));
	/* no reload yet: no last_reload samples */
	agent.reload_attempted = false;
	agent.version = NULL;
	td_metrics_buf_reset(&b);
	CU_ASSERT_EQUAL(td_metrics_render(&b, NULL, &agent), 0);
	CU_ASSERT_EQUAL(mt_validate(b.data, err, sizeof(err)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "\ntd_agent_info{version=\"unknown\"} 1\n"));
	CU_ASSERT_PTR_NULL(strstr(b.data, "\ntd_config_last_reload_success "));
	td_metrics_buf_free(&b);
}

static void test_label_escaping(void)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "plain", "plain" },
		{ "a\\b", "a\\\\b" },
		{ "say \"hi\"", "say \\\"hi\\\"" },
		{ "two\nlines", "two\\nlines" },
		{ "\\\"\n", "\\\\\\\"\\n" },
		{ "tab\there\r", "tab?here?" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" },                 /* valid UTF-8 kept           */
		{ "bad\xff\xc3", "bad??" },                       /* invalid bytes replaced     */
		{ "\xe2\x82\xac\xf0\x9f\x98\x80", "\xe2\x82\xac\xf0\x9f\x98\x80" },
		{ "\xc0\xaf\xed\xa0\x80", "?????" },              /* overlong, surrogate        */
		{ "", "" },
	};
	struct td_stats_snapshot snap;
	struct td_metrics_agent agent = mt_agent;
	struct td_metrics_buf b;
	char err[256];
	size_t i;

	td_metrics_buf_init(&b);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		td_metrics_buf_reset(&b);
		CU_ASSERT_EQUAL(td_metrics_buf_label_value(&b, cases[i].in), 0);
		CU_ASSERT_STRING_EQUAL(b.data ? b.data : "", cases[i].out);
	}
	/* hostile names and version through a whole render stay valid exposition */
	mt_fixture(&snap);
	snprintf(mt_svcs[0].name, sizeof(mt_svcs[0].name), "we\"b\\\n}x");
	agent.version = "1.0\"} 2\n# evil";
	td_metrics_buf_reset(&b);
	CU_ASSERT_EQUAL(td_metrics_render(&b, &snap, &agent), 0);
	CU_ASSERT_EQUAL(mt_validate(b.data, err, sizeof(err)), MT_FIXTURE_SAMPLES);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data,
		"\ntd_service_packets_total{service=\"we\\\"b\\\\\\n}x\",vip=\"10.0.0.10\",port=\"80\",proto=\"tcp\"} 1000\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "\ntd_agent_info{version=\"1.0\\\"} 2\\n# evil\"} 1\n"));
	td_metrics_buf_free(&b);
}

static void test_validator(void)
{
	static const char *const bad[] = {
		"",                                                  /* empty                  */
		"# TYPE a counter\na 1",                             /* no final newline       */
		"# TYPE 1a counter\n1a 1\n",                         /* bad name               */
		"# TYPE a counter\na{1l=\"x\"} 1\n",                 /* bad label name         */
		"# TYPE a counter\na{l=\"x} 1\n",                    /* unterminated value     */
		"# TYPE a counter\na{l=\"x\\t\"} 1\n",               /* bad escape             */
		"# TYPE a counter\na{l=x} 1\n",                      /* unquoted value         */
		"# TYPE a counter\na 1x\n",                          /* bad value              */
		"# TYPE a counter\na\n",                             /* no value               */
		"b 1\n",                                             /* no TYPE                */
		"# TYPE a counter\na 1\n# TYPE a counter\n",         /* second TYPE            */
		"# TYPE a counter\na 1\na 2\n",                      /* duplicate series       */
		"# TYPE a counter\na 1\n\n",                         /* empty line             */
		"# TYPE a countr\na 1\n",                            /* bad type               */
		"# HELP a bad \\q escape\n# TYPE a counter\na 1\n",  /* bad HELP escape        */
		"# TYPE a counter\na 1 12x\n",                       /* bad timestamp          */
	};
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = mt_validate(bad[i], err, sizeof(err));

		if (rc != -1)
			fprintf(stderr, "\n  validator accepted bad input %zu\n", i);
		CU_ASSERT_EQUAL(rc, -1);
	}
	CU_ASSERT_EQUAL(mt_validate("# HELP a x \\\\ \\n\n# TYPE a gauge\na{l=\"\\\"\",m=\"\"} -1.5e3 123\n"
				    "# some comment\n# TYPE b_total counter\nb_total +Inf\n",
				    err, sizeof(err)), 2);
}

/* Mesh families: {src, dst} labels, both byte directions, RTT only with a sample, every event. */
static void test_render_mesh(void)
{
	static const char *const want[] = {
		"td_mesh_connections_total{src=\"frontend\",dst=\"orders\"} 300\n",
		"td_mesh_connections_total{src=\"unknown\",dst=\"orders\"} 0\n",
		"td_mesh_datagrams_total{src=\"frontend\",dst=\"orders\"} 4\n",
		"td_mesh_denials_total{src=\"unknown\",dst=\"orders\"} 201\n",
		"td_mesh_no_backend_total{src=\"unknown\",dst=\"orders\"} 2\n",
		"td_mesh_bytes_total{src=\"frontend\",dst=\"orders\",direction=\"tx\"} 600\n",
		"td_mesh_bytes_total{src=\"frontend\",dst=\"orders\",direction=\"rx\"} 1196\n",
		"td_mesh_rtt_seconds{src=\"frontend\",dst=\"orders\"} 1.234567\n",
		"td_mesh_events_total{event=\"connect\"} 0\n",
		"td_mesh_events_total{event=\"deny_policy\"} 6\n",
	};
	struct td_stats_snapshot snap;
	struct td_metrics_buf b;
	char err[256];
	size_t i;
	int n;

	mt_fixture(&snap);
	snap.mesh = mt_mesh_fixture();
	td_metrics_buf_init(&b);
	CU_ASSERT_EQUAL_FATAL(td_metrics_render(&b, &snap, &mt_agent), 0);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!strstr(b.data, want[i]))
			fprintf(stderr, "\n    missing: %s", want[i]);
		CU_ASSERT_PTR_NOT_NULL(strstr(b.data, want[i]));
	}
	CU_ASSERT_PTR_NULL(strstr(b.data, "td_mesh_rtt_seconds{src=\"unknown\""));
	CU_ASSERT_EQUAL(TD_M_DENY_POLICY, 6);
	n = mt_validate(b.data, err, sizeof(err));
	if (n < 0)
		fprintf(stderr, "\n    %s\n", err);
	/* 2 pairs x (4 counters + 2 byte directions) + 1 RTT + every named mesh counter */
	CU_ASSERT(n > MT_FIXTURE_SAMPLES + 13);
	/* no embedded NUL: the text is exactly len bytes */
	CU_ASSERT_EQUAL(strlen(b.data), b.len);
	td_metrics_buf_free(&b);
}

/* The family table is what the code renders: same names, order and types, valid, documented. */
static void test_family_table(void)
{
	const struct td_metrics_family *fam;
	struct td_stats_snapshot snap;
	struct td_metrics_buf b;
	regex_t re;
	size_t n, i;
	const char *p;

	n = td_metrics_families(&fam);
	CU_ASSERT_EQUAL_FATAL(n, 21);
	mt_fixture(&snap);
	td_metrics_buf_init(&b);
	CU_ASSERT_EQUAL_FATAL(td_metrics_render(&b, &snap, &mt_agent), 0);
	CU_ASSERT_EQUAL_FATAL(regcomp(&re, "^td_[a-z0-9_]*[a-z0-9]$", REG_EXTENDED | REG_NOSUB), 0);
	p = b.data;
	for (i = 0; i < n; i++) {
		char want[160];
		size_t nl = strlen(fam[i].name);
		bool counter = !strcmp(fam[i].type, "counter");

		CU_ASSERT_EQUAL(regexec(&re, fam[i].name, 0, NULL, 0), 0);
		CU_ASSERT(counter || !strcmp(fam[i].type, "gauge"));
		CU_ASSERT_EQUAL(counter, nl > 6 && !strcmp(fam[i].name + nl - 6, "_total"));
		CU_ASSERT(strlen(fam[i].help) > 10);
		snprintf(want, sizeof(want), "# TYPE %s %s\n", fam[i].name, fam[i].type);
		p = strstr(p, want);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		/* every sample of the family carries exactly the table's labels, in order */
		{
			char sample[160];
			const char *s = strstr(p, "\n");

			snprintf(sample, sizeof(sample), "\n%s%s", fam[i].name,
				 fam[i].labels[0] ? "{" : " ");
			CU_ASSERT_PTR_NOT_NULL(s);
			if (s && !strncmp(s, sample, strlen(sample)) && fam[i].labels[0]) {
				char labels[128] = "";
				const char *q = s + strlen(sample);

				while (*q && *q != '}') {
					size_t ln = strcspn(q, "=");

					snprintf(labels + strlen(labels), sizeof(labels) - strlen(labels),
						 "%s%.*s", labels[0] ? "," : "", (int)ln, q);
					q += ln + 2;
					while (*q && *q != '"')
						q += *q == '\\' ? 2 : 1;
					q += *q == '"';
					q += *q == ',';
				}
				CU_ASSERT_STRING_EQUAL(labels, fam[i].labels);
			}
		}
	}
	regfree(&re);
	td_metrics_buf_free(&b);
}

static void test_buf(void)
{
	struct td_metrics_buf b;
	size_t i;

	td_metrics_buf_init(&b);
	CU_ASSERT_PTR_NULL(b.data);
	for (i = 0; i < 10000; i++)
		CU_ASSERT_EQUAL_FATAL(td_metrics_buf_printf(&b, "%05zu\n", i), 0);
	CU_ASSERT_EQUAL(b.len, 60000);
	CU_ASSERT(b.cap > b.len);
	CU_ASSERT_EQUAL(b.data[b.len], '\0');
	CU_ASSERT_NSTRING_EQUAL(b.data + 6 * 9999, "09999\n", 6);
	CU_ASSERT_EQUAL(td_metrics_buf_append(&b, "xy", 2), 0);
	CU_ASSERT_STRING_EQUAL(b.data + 60000, "xy");
	td_metrics_buf_free(&b);
	CU_ASSERT_PTR_NULL(b.data);
	CU_ASSERT_EQUAL(b.len, 0);
}

/* ---- stats from real maps (root) ---------------------------------------------------------- */

static bool mt_root(void)
{
	if (geteuid() == 0)
		return true;
	printf("skipped (not root) ");
	return false;
}

static void test_stats_read(void)
{
	struct td_stats_snapshot snap = { 0 };
	struct td_traffic_stats *pc = NULL;
	struct td_metrics_buf b;
	struct td_maps m;
	__u64 *cpc = NULL, tri;
	int ncpus, c, badfd = -1;
	char err[256];
	__u32 id;

	td_maps_init(&m);
	td_metrics_buf_init(&b);
	if (!mt_root())
		return;
	ncpus = libbpf_num_possible_cpus();
	CU_ASSERT_FATAL(ncpus > 0);
	tri = (__u64)ncpus * (__u64)(ncpus + 1) / 2;
	m.svc_info = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_svc_info", 4, sizeof(struct td_svc_info), 8, NULL);
	m.backends = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_backends", 4, sizeof(struct td_backend), 16, NULL);
	m.svc_stats = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "t_svc_stats", 4,
				     sizeof(struct td_traffic_stats), 8, NULL);
	m.be_stats = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "t_be_stats", 4,
				    sizeof(struct td_traffic_stats), 16, NULL);
	m.counters = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "t_counters", 4, sizeof(__u64),
				    TD_CNT_MAX, NULL);
	CU_ASSERT_FATAL(m.svc_info >= 0 && m.backends >= 0 && m.svc_stats >= 0 &&
			m.be_stats >= 0 && m.counters >= 0);
	pc = calloc((size_t)ncpus, sizeof(*pc));
	cpc = calloc((size_t)ncpus, sizeof(*cpc));
	CU_ASSERT_FATAL(pc && cpc);

	/* services 2 (web, v4 tcp) and 5 (dns6, v6 udp dsr); slot 3 written but not in use */
	{
		struct td_svc_info si = { .in_use = 1, .mode = TD_MODE_NAT, .generation = 4 };

		memcpy(si.name, "web-exactly-thirty-two-chars-xyz", TD_NAME_LEN);  /* no NUL */
		td_addr_parse("10.0.0.10", &si.vip.addr, &si.vip.family);
		si.vip.port = htons(80);
		si.vip.proto = TD_PROTO_TCP;
		id = 2;
		CU_ASSERT_EQUAL(bpf_map_update_elem(m.svc_info, &id, &si, BPF_ANY), 0);
		memset(&si, 0, sizeof(si));
		snprintf(si.name, sizeof(si.name), "dns6");
		si.in_use = 1;
		si.mode = TD_MODE_DSR;
		td_addr_parse("fd00::53", &si.vip.addr, &si.vip.family);
		si.vip.port = htons(53);
		si.vip.proto = TD_PROTO_UDP;
		id = 5;
		CU_ASSERT_EQUAL(bpf_map_update_elem(m.svc_info, &id, &si, BPF_ANY), 0);
		si.in_use = 0;
		snprintf(si.name, sizeof(si.name), "gone");
		id = 3;
		CU_ASSERT_EQUAL(bpf_map_update_elem(m.svc_info, &id, &si, BPF_ANY), 0);
	}
	/* backends 3 (svc 2, active + nexthop), 7 (svc 2, removed), 15 (svc 5, active) */
	{
		struct td_backend be = { .svc_id = 2, .weight = 100,
					 .flags = TD_BE_F_ACTIVE | TD_BE_F_NEXTHOP };

		td_addr_parse("10.0.1.11", &be.addr, &be.family);
		be.port = htons(8080);
		id = 3;
		CU_ASSERT_EQUAL(bpf_map_update_elem(m.backends, &id, &be, BPF_ANY), 0);
		be.flags = 0;
		td_addr_parse("10.0.1.12", &be.addr, &be.family);
		id = 7;
		CU_ASSERT_EQUAL(bpf_map_update_elem(m.backends, &id, &be, BPF_ANY), 0);
		memset(&be, 0, sizeof(be));
		be.svc_id = 5;
		be.weight = 1;
		be.flags = TD_BE_F_ACTIVE;
		td_addr_parse("fd00::a", &be.addr, &be.family);
		be.port = htons(53);
		id = 15;
		CU_ASSERT_EQUAL(bpf_map_update_elem(m.backends, &id, &be, BPF_ANY), 0);
	}
	/* per-CPU traffic: cpu c counts c+1 packets, 100*(c+1) bytes, 1 new flow */
	for (c = 0; c < ncpus; c++)
		pc[c] = (struct td_traffic_stats){ (__u64)c + 1, 100 * ((__u64)c + 1), 1 };
	id = 2;
	CU_ASSERT_EQUAL(bpf_map_update_elem(m.svc_stats, &id, pc, BPF_ANY), 0);
	id = 3;
	CU_ASSERT_EQUAL(bpf_map_update_elem(m.be_stats, &id, pc, BPF_ANY), 0);
	for (c = 0; c < ncpus; c++)
		cpc[c] = 10 * ((__u64)c + 1);
	id = TD_CNT_RX;
	CU_ASSERT_EQUAL(bpf_map_update_elem(m.counters, &id, cpc, BPF_ANY), 0);
	for (c = 0; c < ncpus; c++)
		cpc[c] = 1;
	id = TD_DROP_TTL;
	CU_ASSERT_EQUAL(bpf_map_update_elem(m.counters, &id, cpc, BPF_ANY), 0);

	CU_ASSERT_EQUAL_FATAL(td_stats_read(&m, &snap), 0);
	CU_ASSERT_EQUAL_FATAL(snap.n_services, 2);
	CU_ASSERT_EQUAL(snap.services[0].id, 2);
	CU_ASSERT_STRING_EQUAL(snap.services[0].name, "web-exactly-thirty-two-chars-xyz");
	CU_ASSERT_EQUAL(snap.services[0].port, 80);
	CU_ASSERT_EQUAL(snap.services[0].proto, TD_PROTO_TCP);
	CU_ASSERT_EQUAL(snap.services[0].family, TD_AF_INET);
	CU_ASSERT_EQUAL(snap.services[0].mode, TD_MODE_NAT);
	CU_ASSERT_EQUAL(snap.services[0].generation, 4);
	CU_ASSERT_EQUAL(snap.services[0].packets, tri);
	CU_ASSERT_EQUAL(snap.services[0].bytes, 100 * tri);
	CU_ASSERT_EQUAL(snap.services[0].new_flows, (__u64)ncpus);
	CU_ASSERT_EQUAL(snap.services[1].id, 5);
	CU_ASSERT_STRING_EQUAL(snap.services[1].name, "dns6");
	CU_ASSERT_EQUAL(snap.services[1].family, TD_AF_INET6);
	CU_ASSERT_EQUAL(snap.services[1].mode, TD_MODE_DSR);
	CU_ASSERT_EQUAL(snap.services[1].packets, 0);
	CU_ASSERT_PTR_EQUAL(td_stats_service_find(&snap, 5), &snap.services[1]);
	CU_ASSERT_PTR_EQUAL(td_stats_service_find(&snap, 2), &snap.services[0]);
	CU_ASSERT_PTR_NULL(td_stats_service_find(&snap, 3));
	CU_ASSERT_PTR_NULL(td_stats_service_find(&snap, 0));
	CU_ASSERT_PTR_NULL(td_stats_service_find(&snap, 6));

	CU_ASSERT_EQUAL_FATAL(snap.n_backends, 3);
	CU_ASSERT_EQUAL(snap.backends[0].id, 3);
	CU_ASSERT_EQUAL(snap.backends[0].svc_id, 2);
	CU_ASSERT_EQUAL(snap.backends[0].port, 8080);
	CU_ASSERT_EQUAL(snap.backends[0].weight, 100);
	CU_ASSERT(snap.backends[0].active && snap.backends[0].nexthop);
	CU_ASSERT_EQUAL(snap.backends[0].packets, tri);
	CU_ASSERT_EQUAL(snap.backends[0].bytes, 100 * tri);
	CU_ASSERT_EQUAL(snap.backends[0].new_flows, (__u64)ncpus);
	CU_ASSERT_EQUAL(snap.backends[1].id, 7);
	CU_ASSERT(!snap.backends[1].active && !snap.backends[1].nexthop);
	CU_ASSERT_EQUAL(snap.backends[2].id, 15);
	CU_ASSERT_EQUAL(snap.backends[2].family, TD_AF_INET6);
	CU_ASSERT(snap.backends[2].active && !snap.backends[2].nexthop);

	CU_ASSERT_EQUAL_FATAL(snap.n_counters, TD_CNT_MAX);
	CU_ASSERT_STRING_EQUAL(snap.counters[TD_CNT_RX].name, "rx");
	CU_ASSERT_EQUAL(snap.counters[TD_CNT_RX].value, 10 * tri);
	CU_ASSERT(!snap.counters[TD_CNT_RX].is_drop);
	CU_ASSERT_STRING_EQUAL(snap.counters[TD_DROP_TTL].name, "drop_ttl");
	CU_ASSERT_EQUAL(snap.counters[TD_DROP_TTL].value, (__u64)ncpus);
	CU_ASSERT(snap.counters[TD_DROP_TTL].is_drop);
	CU_ASSERT_EQUAL(snap.counters[TD_PASS_NOT_VIP].value, 0);

	/* the whole chain: maps -> exposition */
	CU_ASSERT_EQUAL(td_metrics_collect(&b, &m, &mt_agent), 0);
	CU_ASSERT_EQUAL(mt_validate(b.data, err, sizeof(err)), 4 + 3 * 2 + 4 * 2 + TD_CNT_MAX);
	{
		char want[200];

		snprintf(want, sizeof(want), "\ntd_backend_bytes_total{service=\"web-exactly-thirty-two"
			 "-chars-xyz\",backend=\"10.0.1.11:8080\"} %llu\n",
			 (unsigned long long)(100 * tri));
		CU_ASSERT_PTR_NOT_NULL(strstr(b.data, want));
		snprintf(want, sizeof(want), "\ntd_datapath_drops_total{reason=\"ttl\"} %d\n", ncpus);
		CU_ASSERT_PTR_NOT_NULL(strstr(b.data, want));
		CU_ASSERT_PTR_NULL(strstr(b.data, "10.0.1.12"));       /* removed backend */
	}
	td_stats_free(&snap);
	CU_ASSERT_PTR_NULL(snap.services);

	/* a map of the wrong shape is refused, and collect still renders the agent families */
	badfd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_bad", 4, 8, 16, NULL);
	CU_ASSERT_FATAL(badfd >= 0);
	c = m.backends;
	m.backends = badfd;
	CU_ASSERT_EQUAL(td_stats_read(&m, &snap), -EINVAL);
	CU_ASSERT_EQUAL(snap.n_services, 0);
	CU_ASSERT_PTR_NULL(snap.services);
	td_stats_free(&snap);
	td_metrics_buf_reset(&b);
	CU_ASSERT_EQUAL(td_metrics_collect(&b, &m, &mt_agent), 0);
	CU_ASSERT_EQUAL(mt_validate(b.data, err, sizeof(err)), 4);
	m.backends = -1;
	CU_ASSERT_EQUAL(td_stats_read(&m, &snap), -EBADF);
	m.backends = c;
	close(badfd);

	td_metrics_buf_free(&b);
	free(pc);
	free(cpc);
	td_maps_close(&m);
}

/* ---- HTTP --------------------------------------------------------------------------------- */

struct mt_srv {
	struct td_metrics_http *h;
	pthread_t th;
	atomic_bool stop;
	atomic_int renders;
	int mode;                        /* 0 fixture, 1 fail, 2 large body */
	int family;
	unsigned int port;
};

#define MT_LARGE_LINES 100000         /* ~4.9 MB: needs many partial writes */

static int mt_render(void *arg, struct td_metrics_buf *out)
{
	struct mt_srv *s = arg;
	struct td_stats_snapshot snap;
	int i;

	atomic_fetch_add(&s->renders, 1);
	if (s->mode == 1)
		return -EIO;
	if (s->mode == 2) {
		for (i = 0; i < MT_LARGE_LINES; i++)
			td_metrics_buf_printf(out, "# filler line %08d .........................\n", i);
		return out->err;
	}
	mt_fixture(&snap);
	return td_metrics_render(out, &snap, &mt_agent);
}

static void *mt_srv_main(void *arg)
{
	struct mt_srv *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd pfd = { .fd = td_metrics_http_fd(s->h), .events = POLLIN };
		uint64_t now = td_metrics_http_now_ms(), dl = td_metrics_http_next_deadline_ms(s->h);
		int timeout = 20;

		if (dl != UINT64_MAX && dl <= now)
			timeout = 0;
		else if (dl != UINT64_MAX && dl - now < 20)
			timeout = (int)(dl - now);
		poll(&pfd, 1, timeout);
		if (td_metrics_http_process(s->h, td_metrics_http_now_ms()))
			break;
	}
	return NULL;
}

static bool mt_srv_start(struct mt_srv *s, const char *listen, int mode,
			 const struct td_metrics_http_opts *opts)
{
	int lfd;

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	lfd = td_metrics_http_listen(listen, false);
	if (lfd < 0)
		return false;
	s->h = td_metrics_http_new(lfd, mt_render, s, opts);
	if (!s->h)
		return false;
	s->port = td_metrics_http_port(s->h);
	s->family = listen[0] == '[' ? AF_INET6 : AF_INET;
	if (!s->port || pthread_create(&s->th, NULL, mt_srv_main, s)) {
		td_metrics_http_free(s->h);
		return false;
	}
	return true;
}

static void mt_srv_stop(struct mt_srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	td_metrics_http_free(s->h);
}

static uint64_t mt_now(void)
{
	return td_metrics_http_now_ms();
}

/* connected client socket with a 5 s receive timeout, or -1 */
static int mt_connect(const struct mt_srv *s)
{
	struct sockaddr_storage ss = { 0 };
	struct timeval tv = { .tv_sec = 5 };
	socklen_t len;
	int fd = socket(s->family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (s->family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((__u16)s->port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((__u16)s->port);
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

struct mt_resp {
	int status;
	char *raw;                   /* whole response, NUL-terminated */
	size_t len;
	const char *body;            /* after the blank line */
	size_t body_len;
};

static void mt_resp_free(struct mt_resp *r)
{
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

/* read until EOF; 0 when a response was parsed, -1 on timeout/garbage */
static int mt_read_resp(int fd, struct mt_resp *r)
{
	size_t cap = 65536;
	char *end;

	memset(r, 0, sizeof(*r));
	r->raw = malloc(cap);
	if (!r->raw)
		return -1;
	for (;;) {
		ssize_t n;

		if (r->len + 1 >= cap) {
			char *p = realloc(r->raw, cap * 2);

			if (!p)
				return -1;
			r->raw = p;
			cap *= 2;
		}
		n = recv(fd, r->raw + r->len, cap - r->len - 1, 0);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		r->len += (size_t)n;
	}
	r->raw[r->len] = '\0';
	if (sscanf(r->raw, "HTTP/1.1 %d ", &r->status) != 1)
		return -1;
	end = strstr(r->raw, "\r\n\r\n");
	if (!end)
		return -1;
	r->body = end + 4;
	r->body_len = r->len - (size_t)(r->body - r->raw);
	return 0;
}

/* value of header name in r (case-sensitive, as td sends it), into buf; false when absent */
static bool mt_header(const struct mt_resp *r, const char *name, char *buf, size_t len)
{
	char key[64];
	const char *p, *e;

	snprintf(key, sizeof(key), "\r\n%s: ", name);
	p = strstr(r->raw, key);
	if (!p || p > r->body)
		return false;
	p += strlen(key);
	e = strstr(p, "\r\n");
	snprintf(buf, len, "%.*s", (int)(e - p), p);
	return true;
}

/* send req (in pieces of chunk bytes when chunk > 0) and read the response */
static int mt_fetch(const struct mt_srv *s, const char *req, size_t req_len, size_t chunk,
		    struct mt_resp *r)
{
	int fd = mt_connect(s), rc = -1;
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return -1;
	while (off < req_len) {
		size_t n = chunk && chunk < req_len - off ? chunk : req_len - off;

		if (send(fd, req + off, n, MSG_NOSIGNAL) != (ssize_t)n)
			goto cleanup;
		off += n;
		if (chunk)
			usleep(2000);
	}
	rc = mt_read_resp(fd, r);
cleanup:
	close(fd);
	return rc;
}

static int mt_get(const struct mt_srv *s, const char *req, struct mt_resp *r)
{
	return mt_fetch(s, req, strlen(req), 0, r);
}

static void mt_check_status(const struct mt_srv *s, const char *req, int status)
{
	struct mt_resp r;
	char v[128];

	if (mt_get(s, req, &r)) {
		fprintf(stderr, "\n  no response to '%s'\n", req);
		CU_FAIL("no response");
		mt_resp_free(&r);
		return;
	}
	if (r.status != status)
		fprintf(stderr, "\n  '%s' -> %d, expected %d\n", req, r.status, status);
	CU_ASSERT_EQUAL(r.status, status);
	CU_ASSERT(mt_header(&r, "Connection", v, sizeof(v)) && !strcmp(v, "close"));
	CU_ASSERT(mt_header(&r, "Content-Length", v, sizeof(v)) &&
		  strtoul(v, NULL, 10) == r.body_len);
	mt_resp_free(&r);
}

static void test_http_get(void)
{
	struct mt_srv s;
	struct mt_resp r;
	char v[128];

	CU_ASSERT_FATAL(mt_srv_start(&s, "127.0.0.1:0", 0, NULL));
	CU_ASSERT_EQUAL_FATAL(mt_get(&s, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				     "User-Agent: td_unit\r\nAccept: */*\r\n\r\n", &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(!strncmp(r.raw, "HTTP/1.1 200 OK\r\n", 17));
	CU_ASSERT(mt_header(&r, "Content-Type", v, sizeof(v)) &&
		  !strcmp(v, "text/plain; version=0.0.4; charset=utf-8"));
	CU_ASSERT(mt_header(&r, "Content-Length", v, sizeof(v)) &&
		  strtoul(v, NULL, 10) == strlen(mt_expected));
	CU_ASSERT(mt_header(&r, "Connection", v, sizeof(v)) && !strcmp(v, "close"));
	CU_ASSERT(mt_header(&r, "Date", v, sizeof(v)) && strlen(v) == 29 &&
		  !strcmp(v + 25, " GMT"));
	CU_ASSERT_EQUAL(r.body_len, strlen(mt_expected));
	CU_ASSERT_STRING_EQUAL(r.body, mt_expected);
	mt_resp_free(&r);

	/* HTTP/1.0 without Host, query string, bare LF line ends */
	mt_check_status(&s, "GET /metrics HTTP/1.0\r\n\r\n", 200);
	mt_check_status(&s, "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", 200);
	mt_check_status(&s, "GET /metrics HTTP/1.1\nHost: a\n\n", 200);

	/* HEAD: headers of the GET, no body */
	CU_ASSERT_EQUAL_FATAL(mt_get(&s, "HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, 0);
	CU_ASSERT(mt_header(&r, "Content-Length", v, sizeof(v)) &&
		  strtoul(v, NULL, 10) == strlen(mt_expected));
	mt_resp_free(&r);

	/* the request arriving one byte at a time */
	{
		static const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

		CU_ASSERT_EQUAL(mt_fetch(&s, req, sizeof(req) - 1, 1, &r), 0);
		CU_ASSERT_EQUAL(r.status, 200);
		CU_ASSERT_EQUAL(r.body_len, strlen(mt_expected));
		mt_resp_free(&r);
	}
	mt_srv_stop(&s);
}

static void test_http_errors(void)
{
	struct mt_srv s;
	struct mt_resp r;
	char v[128], big[TD_METRICS_HTTP_MAX_REQUEST + 64];
	int fd;

	CU_ASSERT_FATAL(mt_srv_start(&s, "127.0.0.1:0", 0, NULL));
	mt_check_status(&s, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 404);
	mt_check_status(&s, "GET /metricsx HTTP/1.1\r\nHost: a\r\n\r\n", 404);
	mt_check_status(&s, "GET /metrics/ HTTP/1.1\r\nHost: a\r\n\r\n", 404);
	mt_check_status(&s, "GET /favicon.ico HTTP/1.0\r\n\r\n", 404);
	mt_check_status(&s, "POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", 405);
	CU_ASSERT_EQUAL_FATAL(mt_get(&s, "DELETE /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &r), 0);
	CU_ASSERT_EQUAL(r.status, 405);
	CU_ASSERT(mt_header(&r, "Allow", v, sizeof(v)) && !strcmp(v, "GET, HEAD"));
	mt_resp_free(&r);

	mt_check_status(&s, "HELLO\r\n\r\n", 400);
	mt_check_status(&s, "\r\n\r\n", 400);
	mt_check_status(&s, "GET /metrics\r\n\r\n", 400);
	mt_check_status(&s, "GET  /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400);
	mt_check_status(&s, "GET /metrics HTTP/1.1 x\r\nHost: a\r\n\r\n", 400);
	mt_check_status(&s, "GET /metrics HTTP/1.1\r\n\r\n", 400);                  /* no Host */
	mt_check_status(&s, "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
	mt_check_status(&s, "GET /metrics HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400);
	mt_check_status(&s, "GET /metrics HTTP/1.1\r\nHost : a\r\n\r\n", 400);
	mt_check_status(&s, "GET /metrics HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400);
	mt_check_status(&s, "GET /metrics HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400);
	mt_check_status(&s, "G@T /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400);
	/* EOF before the end of the head */
	fd = mt_connect(&s);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(send(fd, "GET /metrics HTTP/1.1\r", 22, MSG_NOSIGNAL), 22);
	shutdown(fd, SHUT_WR);
	CU_ASSERT_EQUAL(mt_read_resp(fd, &r), 0);
	CU_ASSERT_EQUAL(r.status, 400);
	mt_resp_free(&r);
	close(fd);
	mt_check_status(&s, "GET /metrics HTTP/2.0\r\nHost: a\r\n\r\n", 505);
	mt_check_status(&s, "GET /metrics HTTP/1.2\r\nHost: a\r\n\r\n", 505);
	/* NUL inside the head */
	CU_ASSERT_EQUAL(mt_fetch(&s, "GET /metrics HTTP/1.0\r\nX: a\0b\r\n\r\n", 33, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 400);
	mt_resp_free(&r);
	/* a head that never ends within the limit */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
	CU_ASSERT_EQUAL(mt_fetch(&s, big, sizeof(big), 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 431);
	mt_resp_free(&r);
	/* a client that connects and closes sends nothing and gets nothing */
	fd = mt_connect(&s);
	CU_ASSERT_FATAL(fd >= 0);
	shutdown(fd, SHUT_WR);
	CU_ASSERT_EQUAL(recv(fd, v, sizeof(v), 0), 0);
	close(fd);
	/* still serving afterwards */
	mt_check_status(&s, "GET /metrics HTTP/1.0\r\n\r\n", 200);
	mt_srv_stop(&s);

	/* render failure -> 500 */
	CU_ASSERT_FATAL(mt_srv_start(&s, "127.0.0.1:0", 1, NULL));
	mt_check_status(&s, "GET /metrics HTTP/1.0\r\n\r\n", 500);
	CU_ASSERT_EQUAL(atomic_load(&s.renders), 1);
	mt_check_status(&s, "GET /nope HTTP/1.0\r\n\r\n", 404);
	CU_ASSERT_EQUAL(atomic_load(&s.renders), 1);           /* only /metrics renders */
	mt_srv_stop(&s);
}

/* A silent client neither blocks others nor stays forever; a full server evicts the oldest. */
static void test_http_idle(void)
{
	struct td_metrics_http_opts o = { .max_conns = 3, .request_timeout_ms = 1000 };
	struct mt_srv s;
	struct mt_resp r;
	uint64_t t0, dt;
	int idle[3], i;
	char c;

	CU_ASSERT_FATAL(mt_srv_start(&s, "127.0.0.1:0", 0, &o));
	idle[0] = mt_connect(&s);
	CU_ASSERT_FATAL(idle[0] >= 0);
	t0 = mt_now();
	CU_ASSERT_EQUAL(mt_get(&s, "GET /metrics HTTP/1.0\r\n\r\n", &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	mt_resp_free(&r);
	/* served while the silent one is still open (a blocking server would have waited it out) */
	CU_ASSERT_EQUAL(recv(idle[0], &c, 1, MSG_DONTWAIT), -1);
	CU_ASSERT_EQUAL(errno, EAGAIN);
	CU_ASSERT(mt_now() - t0 < 900);
	/* the silent client is closed at its deadline, not before */
	CU_ASSERT_EQUAL(recv(idle[0], &c, 1, 0), 0);
	dt = mt_now() - t0;
	CU_ASSERT(dt >= 900 && dt < 3000);
	close(idle[0]);

	/* fill every slot with silent clients; a scrape evicts the oldest and is answered */
	for (i = 0; i < 3; i++) {
		idle[i] = mt_connect(&s);
		CU_ASSERT_FATAL(idle[i] >= 0);
		usleep(30000);        /* accepted in order */
	}
	t0 = mt_now();
	CU_ASSERT_EQUAL(mt_get(&s, "GET /metrics HTTP/1.0\r\n\r\n", &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(mt_now() - t0 < 900);
	mt_resp_free(&r);
	{
		struct timeval tv = { .tv_usec = 100000 };

		setsockopt(idle[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		CU_ASSERT_EQUAL(recv(idle[0], &c, 1, 0), 0);   /* evicted: EOF right away */
		setsockopt(idle[2], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		CU_ASSERT_EQUAL(recv(idle[2], &c, 1, 0), -1);  /* the newest is still waiting */
	}
	for (i = 0; i < 3; i++)
		close(idle[i]);
	mt_srv_stop(&s);
}

/* A body much larger than the socket buffers goes out in many non-blocking writes. */
static void test_http_large(void)
{
	struct mt_srv s;
	struct mt_resp r;
	char v[64], line[64];
	size_t ll;

	CU_ASSERT_FATAL(mt_srv_start(&s, "127.0.0.1:0", 2, NULL));
	snprintf(line, sizeof(line), "# filler line %08d .........................\n",
		 MT_LARGE_LINES - 1);
	ll = strlen(line);
	CU_ASSERT_EQUAL_FATAL(mt_get(&s, "GET /metrics HTTP/1.0\r\n\r\n", &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, (size_t)MT_LARGE_LINES * ll);
	CU_ASSERT(mt_header(&r, "Content-Length", v, sizeof(v)) &&
		  strtoul(v, NULL, 10) == r.body_len);
	CU_ASSERT(r.body_len >= ll && !strcmp(r.body + r.body_len - ll, line));
	mt_resp_free(&r);
	mt_srv_stop(&s);
}

static void test_http_ipv6(void)
{
	struct mt_srv s;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		printf("skipped (no IPv6 loopback) ");
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	CU_ASSERT_FATAL(mt_srv_start(&s, "[::1]:0", 0, NULL));
	CU_ASSERT_EQUAL(s.family, AF_INET6);
	mt_check_status(&s, "GET /metrics HTTP/1.1\r\nHost: [::1]\r\n\r\n", 200);
	mt_check_status(&s, "GET /x HTTP/1.1\r\nHost: [::1]\r\n\r\n", 404);
	mt_srv_stop(&s);
}

static void test_http_listen(void)
{
	static const struct { const char *s; int rc; bool lo; } parse[] = {
		{ "127.0.0.1:9469", 0, true },
		{ "127.1.2.3:1", 0, true },
		{ "[::1]:9469", 0, true },
		{ "[::ffff:127.0.0.1]:80", 0, true },
		{ "0.0.0.0:9469", 0, false },
		{ "192.0.2.1:9469", 0, false },
		{ "[::]:9469", 0, false },
		{ "[fd00::1]:0", 0, false },
		{ "127.0.0.1", -EINVAL, false },
		{ "127.0.0.1:", -EINVAL, false },
		{ "127.0.0.1:65536", -EINVAL, false },
		{ "127.0.0.1:-1", -EINVAL, false },
		{ "127.0.0.1:80x", -EINVAL, false },
		{ "::1:9469", -EINVAL, false },
		{ "[::1]9469", -EINVAL, false },
		{ "[::1]:", -EINVAL, false },
		{ "localhost:9469", -EINVAL, false },
		{ ":9469", -EINVAL, false },
		{ "", -EINVAL, false },
	};
	struct sockaddr_storage ss;
	socklen_t len;
	bool lo;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(parse) / sizeof(parse[0]); i++) {
		int rc;

		lo = !parse[i].lo;
		rc = td_metrics_listen_parse(parse[i].s, &ss, &len, &lo);
		if (rc != parse[i].rc)
			fprintf(stderr, "\n  parse '%s' -> %d\n", parse[i].s, rc);
		CU_ASSERT_EQUAL(rc, parse[i].rc);
		if (!rc)
			CU_ASSERT_EQUAL(lo, parse[i].lo);
	}
	CU_ASSERT_EQUAL(td_metrics_listen_parse("127.0.0.1:9469", &ss, &len, &lo), 0);
	CU_ASSERT_EQUAL(ss.ss_family, AF_INET);
	CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9469);
	CU_ASSERT_EQUAL(len, sizeof(struct sockaddr_in));
	/* public addresses are refused before anything is bound */
	CU_ASSERT_EQUAL(td_metrics_http_listen("0.0.0.0:0", false), -EACCES);
	CU_ASSERT_EQUAL(td_metrics_http_listen("[::]:0", false), -EACCES);
	CU_ASSERT_EQUAL(td_metrics_http_listen("192.0.2.1:0", false), -EACCES);
	CU_ASSERT_EQUAL(td_metrics_http_listen("nonsense", false), -EINVAL);
	CU_ASSERT_EQUAL(td_metrics_http_listen(NULL, false), -EINVAL);
	/* allow_public does not change loopback handling */
	fd = td_metrics_http_listen("127.0.0.1:0", true);
	CU_ASSERT(fd >= 0);
	if (fd >= 0)
		close(fd);
	/* new() validates and owns its fd even on failure */
	errno = 0;
	CU_ASSERT_PTR_NULL(td_metrics_http_new(-1, mt_render, NULL, NULL));
	CU_ASSERT_EQUAL(errno, EINVAL);
}

int td_suite_metrics(void)
{
	CU_pSuite s = CU_add_suite("metrics", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "render fixed snapshot exactly", test_render_exact) ||
	    !CU_add_test(s, "render without agent or snapshot", test_render_partial) ||
	    !CU_add_test(s, "label escaping", test_label_escaping) ||
	    !CU_add_test(s, "exposition validator rejects bad input", test_validator) ||
	    !CU_add_test(s, "family table matches output", test_family_table) ||
	    !CU_add_test(s, "mesh families", test_render_mesh) ||
	    !CU_add_test(s, "growable buffer", test_buf) ||
	    !CU_add_test(s, "stats from per-CPU maps (root)", test_stats_read) ||
	    !CU_add_test(s, "http GET/HEAD /metrics", test_http_get) ||
	    !CU_add_test(s, "http 404/405/400/431/505/500", test_http_errors) ||
	    !CU_add_test(s, "http idle client and eviction", test_http_idle) ||
	    !CU_add_test(s, "http large body", test_http_large) ||
	    !CU_add_test(s, "http on [::1]", test_http_ipv6) ||
	    !CU_add_test(s, "listen address policy", test_http_listen))
		return CU_get_error();
	return 0;
}

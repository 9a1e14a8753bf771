/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for the gateway runtime: LB, ejection, forwarding, aggregation, log, metrics. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <CUnit/CUnit.h>

#include <json-c/json.h>

#include "config.h"
#include "gateway.h"
#include "gw_internal.h"
#include "parser.h"
#include "unit.h"

#define MS 1000000ull
#define NBE 5

/* ---- helpers ------------------------------------------------------------------------------ */

static void td_tg_ep(struct td_gw_endpoint *ep, const char *ip, uint16_t port, int line)
{
	memset(ep, 0, sizeof(*ep));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ep->ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
		ep->sslen = sizeof(*s6);
		snprintf(ep->text, sizeof(ep->text), "[%s]:%u", ip, port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ep->ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, ip, &s4->sin_addr);
		ep->sslen = sizeof(*s4);
		snprintf(ep->text, sizeof(ep->text), "%s:%u", ip, port);
	}
	ep->line = line;
}

/*
 * A config with one upstream "api" of n backends 10.0.0.1..n:80 (lb as given) and one route
 * "r1" with path_prefix /api to it; the caller may edit it before building.
 */
static struct td_config *td_tg_cfg(size_t n, uint8_t lb)
{
	struct td_config *cfg = calloc(1, sizeof(*cfg));
	struct td_gw_cfg *g = &cfg->gateway;
	char ip[32];

	snprintf(cfg->path, sizeof(cfg->path), "test.yaml");
	g->on = true;
	g->line = 10;
	snprintf(g->request_id_header, sizeof(g->request_id_header), "X-Request-Id");
	snprintf(g->access_log, sizeof(g->access_log), "off");
	g->upstreams = calloc(1, sizeof(*g->upstreams));
	g->n_upstreams = 1;
	snprintf(g->upstreams[0].name, sizeof(g->upstreams[0].name), "api");
	g->upstreams[0].line = 20;
	g->upstreams[0].lb = lb;
	g->upstreams[0].retries = 1;
	g->upstreams[0].outlier_failures = 5;
	g->upstreams[0].outlier_ejection_ms = 30000;
	g->upstreams[0].backends = calloc(n, sizeof(struct td_gw_endpoint));
	g->upstreams[0].n_backends = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(ip, sizeof(ip), "10.0.0.%zu", i + 1);
		td_tg_ep(&g->upstreams[0].backends[i], ip, 80, 21 + (int)i);
	}
	g->routes = calloc(1, sizeof(*g->routes));
	g->n_routes = 1;
	snprintf(g->routes[0].name, sizeof(g->routes[0].name), "r1");
	snprintf(g->routes[0].path_prefix, sizeof(g->routes[0].path_prefix), "/api");
	snprintf(g->routes[0].upstream, sizeof(g->routes[0].upstream), "api");
	g->routes[0].line = 40;
	g->routes[0].upstream_idx = 0;
	return cfg;
}

static void td_tg_cfg_free(struct td_config *cfg)
{
	struct td_gw_cfg *g = &cfg->gateway;

	for (size_t i = 0; i < g->n_upstreams; i++)
		free(g->upstreams[i].backends);
	free(g->upstreams);
	for (size_t i = 0; i < g->n_routes; i++) {
		free(g->routes[i].aggregate);
		free(g->routes[i].auth.keys);
	}
	free(g->routes);
	free(cfg);
}

static struct td_gw_gen *td_tg_gen(const struct td_config *cfg, const struct td_gw_gen *prev)
{
	struct td_errors errs = { 0 };
	struct td_gw_gen *g = td_gw_gen_build(cfg, prev, 1, 1, true, &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "  build: %s\n", errs.msgs[i]);
	td_errors_free(&errs);
	return g;
}

static int td_tg_pick(struct td_gw_upstream *u, uint64_t now, uint64_t tried, uint64_t hash,
		      bool *fail_open)
{
	static uint64_t rng = 12345;
	struct td_gw_pick p = { .now_ns = now, .tried = tried, .hash = hash, .rng = &rng };
	int i = td_gw_pick_backend(u, &p);

	if (fail_open)
		*fail_open = p.fail_open;
	return i;
}

/* ---- backend selection -------------------------------------------------------------------- */

static void test_lb_round_robin(void)
{
	struct td_config *cfg = td_tg_cfg(4, TD_GW_LB_ROUND_ROBIN);
	struct td_gw_gen *g = td_tg_gen(cfg, NULL);
	unsigned int cnt[4] = { 0 };

	CU_ASSERT_FATAL(g != NULL);
	for (int k = 0; k < 4000; k++) {
		int i = td_tg_pick(&g->ups[0], 1, 0, 0, NULL);

		CU_ASSERT_FATAL(i >= 0 && i < 4);
		cnt[i]++;
	}
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(cnt[i], 1000);
	/* consecutive picks rotate */
	CU_ASSERT_NOT_EQUAL(td_tg_pick(&g->ups[0], 1, 0, 0, NULL),
			    td_tg_pick(&g->ups[0], 1, 0, 0, NULL));
	/* a retry avoids the backend tried already */
	for (int k = 0; k < 100; k++)
		CU_ASSERT_NOT_EQUAL(td_tg_pick(&g->ups[0], 1, 1u << 2, 0, NULL), 2);
	td_gw_gen_unref(g);
	td_tg_cfg_free(cfg);
}

static void test_lb_random_two(void)
{
	struct td_config *cfg = td_tg_cfg(4, TD_GW_LB_RANDOM_TWO);
	struct td_gw_gen *g = td_tg_gen(cfg, NULL);
	unsigned int cnt[4] = { 0 };

	CU_ASSERT_FATAL(g != NULL);
	/* idle backends: about uniform */
	for (int k = 0; k < 40000; k++)
		cnt[td_tg_pick(&g->ups[0], 1, 0, 0, NULL)]++;
	for (int i = 0; i < 4; i++)
		CU_ASSERT(cnt[i] > 8500 && cnt[i] < 11500);
	/* a loaded backend only wins when both draws hit it: it gets far less than 1/4 */
	memset(cnt, 0, sizeof(cnt));
	g->ups[0].be[0].st->in_flight = 100;
	for (int k = 0; k < 40000; k++)
		cnt[td_tg_pick(&g->ups[0], 1, 0, 0, NULL)]++;
	CU_ASSERT(cnt[0] < 1000);
	g->ups[0].be[0].st->in_flight = 0;
	td_gw_gen_unref(g);
	td_tg_cfg_free(cfg);
}

static void test_lb_least_conn(void)
{
	struct td_config *cfg = td_tg_cfg(4, TD_GW_LB_LEAST_CONN);
	struct td_gw_gen *g = td_tg_gen(cfg, NULL);
	int64_t load[4] = { 5, 2, 7, 2 };
	unsigned int cnt[4] = { 0 };

	CU_ASSERT_FATAL(g != NULL);
	for (int i = 0; i < 4; i++)
		g->ups[0].be[i].st->in_flight = load[i];
	for (int k = 0; k < 100; k++)
		cnt[td_tg_pick(&g->ups[0], 1, 0, 0, NULL)]++;
	/* only the least loaded, ties shared by rotation */
	CU_ASSERT_EQUAL(cnt[0] + cnt[2], 0);
	CU_ASSERT_EQUAL(cnt[1], 50);
	CU_ASSERT_EQUAL(cnt[3], 50);
	g->ups[0].be[3].st->in_flight = 1;
	CU_ASSERT_EQUAL(td_tg_pick(&g->ups[0], 1, 0, 0, NULL), 3);
	/* ejected: skipped even when least loaded */
	g->ups[0].be[3].st->ejected_until_ns = 1000;
	CU_ASSERT_EQUAL(td_tg_pick(&g->ups[0], 1, 0, 0, NULL), 1);
	for (int i = 0; i < 4; i++)
		g->ups[0].be[i].st->in_flight = 0;
	td_gw_gen_unref(g);
	td_tg_cfg_free(cfg);
}

static void test_lb_hash(void)
{
	struct td_config *cfg = td_tg_cfg(NBE, TD_GW_LB_HASH);
	struct td_gw_gen *g = td_tg_gen(cfg, NULL), *g2;
	static int map[10000];
	unsigned int cnt[NBE] = { 0 }, moved = 0;

	CU_ASSERT_FATAL(g != NULL);
	for (uint32_t k = 0; k < 10000; k++) {
		uint64_t h = td_gw_hash(&k, sizeof(k));

		map[k] = td_tg_pick(&g->ups[0], 1, 0, h, NULL);
		cnt[map[k]]++;
		/* stable */
		CU_ASSERT_EQUAL(td_tg_pick(&g->ups[0], 1, 0, h, NULL), map[k]);
	}
	for (int i = 0; i < NBE; i++)
		CU_ASSERT(cnt[i] > 1600 && cnt[i] < 2400);

	/* backend 3 (10.0.0.3) down: only its keys move */
	g->ups[0].be[2].st->healthy = false;
	for (uint32_t k = 0; k < 10000; k++) {
		int i = td_tg_pick(&g->ups[0], 1, 0, td_gw_hash(&k, sizeof(k)), NULL);

		CU_ASSERT_NOT_EQUAL(i, 2);
		if (map[k] != 2 && i != map[k])
			moved++;
	}
	CU_ASSERT_EQUAL(moved, 0);
	g->ups[0].be[2].st->healthy = true;

	/* removed from the config (another order too): same mapping for the others */
	memmove(&cfg->gateway.upstreams[0].backends[2], &cfg->gateway.upstreams[0].backends[3],
		2 * sizeof(struct td_gw_endpoint));
	cfg->gateway.upstreams[0].n_backends = NBE - 1;
	{
		struct td_gw_endpoint t = cfg->gateway.upstreams[0].backends[0];

		cfg->gateway.upstreams[0].backends[0] = cfg->gateway.upstreams[0].backends[3];
		cfg->gateway.upstreams[0].backends[3] = t;
	}
	g2 = td_tg_gen(cfg, g);
	CU_ASSERT_FATAL(g2 != NULL);
	moved = 0;
	for (uint32_t k = 0; k < 10000; k++) {
		int i = td_tg_pick(&g2->ups[0], 1, 0, td_gw_hash(&k, sizeof(k)), NULL);

		if (map[k] != 2 &&
		    strcmp(g2->ups[0].be[i].addr, g->ups[0].be[map[k]].addr))
			moved++;
	}
	CU_ASSERT_EQUAL(moved, 0);
	td_gw_gen_unref(g2);
	td_gw_gen_unref(g);
	td_tg_cfg_free(cfg);
}

static void test_lb_skip_and_fail_open(void)
{
	static const uint8_t lbs[] = {
		TD_GW_LB_ROUND_ROBIN, TD_GW_LB_LEAST_CONN, TD_GW_LB_RANDOM_TWO, TD_GW_LB_HASH,
	};

	for (size_t l = 0; l < sizeof(lbs); l++) {
		struct td_config *cfg = td_tg_cfg(4, lbs[l]);
		struct td_gw_gen *g = td_tg_gen(cfg, NULL);
		struct td_gw_upstream *u;
		bool fo = true;

		CU_ASSERT_FATAL(g != NULL);
		u = &g->ups[0];
		u->be[0].st->healthy = false;
		u->be[2].st->ejected_until_ns = 5000 * MS;
		for (uint64_t k = 0; k < 200; k++) {
			int i = td_tg_pick(u, 1000 * MS, 0, td_gw_mix64(k), &fo);

			CU_ASSERT(i == 1 || i == 3);
			CU_ASSERT(!fo);
		}
		/* the ejection ends: back in rotation */
		{
			bool seen2 = false;

			for (uint64_t k = 0; k < 200; k++)
				seen2 |= td_tg_pick(u, 6000 * MS, 0, td_gw_mix64(k), &fo) == 2;
			CU_ASSERT(seen2);
		}
		/* everything out: fail open over all of them */
		for (int i = 0; i < 4; i++)
			u->be[i].st->healthy = false;
		for (uint64_t k = 0; k < 50; k++) {
			int i = td_tg_pick(u, 1000 * MS, 0, td_gw_mix64(k), &fo);

			CU_ASSERT(i >= 0 && i < 4);
			CU_ASSERT(fo);
		}
		td_gw_gen_unref(g);
		td_tg_cfg_free(cfg);
	}
}

/* ---- outlier ejection --------------------------------------------------------------------- */

static void test_outlier_timeline(void)
{
	struct td_gw_bstate *b = td_gw_bstate_new("api/10.0.0.1:80");
	uint64_t t = 1000 * MS;

	CU_ASSERT_FATAL(b != NULL);
	/* two failures, a success: the count starts over */
	CU_ASSERT(!td_gw_outcome(b, 3, 30000, true, t));
	CU_ASSERT(!td_gw_outcome(b, 3, 30000, true, t + 1 * MS));
	CU_ASSERT(!td_gw_outcome(b, 3, 30000, false, t + 2 * MS));
	CU_ASSERT(!td_gw_outcome(b, 3, 30000, true, t + 3 * MS));
	CU_ASSERT(!td_gw_outcome(b, 3, 30000, true, t + 4 * MS));
	CU_ASSERT(td_gw_bstate_usable(b, t + 4 * MS));
	/* the third consecutive failure ejects for 30 s */
	CU_ASSERT(td_gw_outcome(b, 3, 30000, true, t + 5 * MS));
	CU_ASSERT_EQUAL(b->ejections, 1);
	CU_ASSERT(!td_gw_bstate_usable(b, t + 6 * MS));
	CU_ASSERT(td_gw_bstate_ejected(b, t + 29000 * MS));
	/* late failures of attempts started before do not extend it */
	CU_ASSERT(!td_gw_outcome(b, 3, 30000, true, t + 10 * MS));
	CU_ASSERT_EQUAL(b->ejected_until_ns, t + 5 * MS + 30000 * MS);
	/* probation: usable again; one failure ejects at once */
	t += 5 * MS + 30000 * MS;
	CU_ASSERT(td_gw_bstate_usable(b, t));
	CU_ASSERT(!td_gw_bstate_ejected(b, t));
	CU_ASSERT(td_gw_outcome(b, 3, 30000, true, t + 1 * MS));
	CU_ASSERT_EQUAL(b->ejections, 2);
	CU_ASSERT(!td_gw_bstate_usable(b, t + 2 * MS));
	/* probation again; one success clears it for good */
	t += 1 * MS + 30000 * MS;
	CU_ASSERT(td_gw_bstate_usable(b, t));
	CU_ASSERT(!td_gw_outcome(b, 3, 30000, false, t));
	CU_ASSERT_EQUAL(b->ejected_until_ns, 0);
	CU_ASSERT(!td_gw_outcome(b, 3, 30000, true, t + 1 * MS));
	CU_ASSERT(!td_gw_outcome(b, 3, 30000, true, t + 2 * MS));
	CU_ASSERT(td_gw_bstate_usable(b, t + 2 * MS));
	/* threshold 0: never ejected */
	CU_ASSERT(!td_gw_outcome(b, 0, 30000, true, t + 3 * MS));
	CU_ASSERT(!td_gw_outcome(b, 0, 30000, true, t + 4 * MS));
	CU_ASSERT(td_gw_bstate_usable(b, t + 4 * MS));
	/* failure kinds */
	CU_ASSERT_EQUAL(td_gw_err_kind(0, 200), -1);
	CU_ASSERT_EQUAL(td_gw_err_kind(0, 500), -1);
	CU_ASSERT_EQUAL(td_gw_err_kind(0, 503), TD_GW_E_STATUS);
	CU_ASSERT_EQUAL(td_gw_err_kind(-ECONNREFUSED, 0), TD_GW_E_REFUSED);
	CU_ASSERT_EQUAL(td_gw_err_kind(-ETIMEDOUT, 0), TD_GW_E_CONNECT_TIMEOUT);
	CU_ASSERT_EQUAL(td_gw_err_kind(-ETIME, 0), TD_GW_E_TIMEOUT);
	td_gw_bstate_unref(b);
}

/* ---- forwarded headers -------------------------------------------------------------------- */

struct td_tg_req {
	struct td_http_parser p;
	char buf[2048];
};

static int td_tg_parse(struct td_tg_req *q, const char *head)
{
	size_t used;

	snprintf(q->buf, sizeof(q->buf), "%s", head);
	td_http_parser_init(&q->p, TD_HTTP_REQUEST, NULL);
	return td_http_parse(&q->p, q->buf, strlen(q->buf), &used) == TD_HTTP_DONE ? 0 : -1;
}

static int td_tg_fwd(const char *head, const char *peer, bool tls, const struct td_gw_cidr *tr,
		     size_t ntr, struct td_gw_fwd_out *out)
{
	static struct td_tg_req q;
	struct td_gw_endpoint ep;
	struct td_gw_fwd_in in;

	if (td_tg_parse(&q, head))
		return -EBADMSG;
	td_tg_ep(&ep, peer, 40000, 0);
	in = (struct td_gw_fwd_in){
		.peer = (const struct sockaddr *)&ep.ss, .tls = tls, .msg = &q.p.msg, .buf = q.buf,
		.trusted = tr, .n_trusted = ntr, .rid_header = "X-Request-Id",
	};
	return td_gw_forwarded(&in, out);
}

static bool td_tg_hex32(const char *s)
{
	if (strlen(s) != 32)
		return false;
	for (size_t i = 0; i < 32; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return false;
	return true;
}

static void test_forwarded(void)
{
	struct td_gw_cidr tr[2] = {
		{ .family = AF_INET, .prefix = 8, .addr = { 10 } },
		{ .family = AF_INET6, .prefix = 32, .addr = { 0x20, 0x01, 0x0d, 0xb8 } },
	};
	static struct td_gw_fwd_out o;
	const char *h1 = "GET /a HTTP/1.1\r\nHost: api.example:8080\r\n"
			 "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n"
			 "X-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\n"
			 "Forwarded: for=1.2.3.4\r\nX-Request-Id: abc-DEF_1.2\r\n\r\n";
	char big[400], head[700];

	/* untrusted peer: everything the client said is replaced */
	CU_ASSERT_EQUAL_FATAL(td_tg_fwd(h1, "192.0.2.7", false, tr, 2, &o), 0);
	CU_ASSERT(!o.trusted);
	CU_ASSERT_STRING_EQUAL(o.client, "192.0.2.7");
	CU_ASSERT_STRING_EQUAL(o.xff, "192.0.2.7");
	CU_ASSERT_STRING_EQUAL(o.proto, "http");
	CU_ASSERT_STRING_EQUAL(o.xfh, "api.example:8080");
	CU_ASSERT_STRING_EQUAL(o.fwd, "for=192.0.2.7;proto=http;host=\"api.example:8080\"");
	CU_ASSERT_STRING_EQUAL(o.rid, "abc-DEF_1.2");
	CU_ASSERT(!o.rid_generated);

	/* trusted proxy: its list is kept and the peer appended */
	CU_ASSERT_EQUAL_FATAL(td_tg_fwd(h1, "10.1.2.3", true, tr, 2, &o), 0);
	CU_ASSERT(o.trusted);
	CU_ASSERT_STRING_EQUAL(o.xff, "1.2.3.4, 5.6.7.8, 10.1.2.3");
	CU_ASSERT_STRING_EQUAL(o.proto, "https");
	CU_ASSERT_STRING_EQUAL(o.xfh, "public.example");
	CU_ASSERT_STRING_EQUAL(o.fwd,
			       "for=1.2.3.4, for=10.1.2.3;proto=https;host=\"api.example:8080\"");

	/* IPv6 peer: quoted "[v6]" node; host without port is a token */
	CU_ASSERT_EQUAL_FATAL(td_tg_fwd("GET / HTTP/1.1\r\nHost: api.example\r\n\r\n",
					"2001:db9::1", false, tr, 2, &o), 0);
	CU_ASSERT(!o.trusted);
	CU_ASSERT_STRING_EQUAL(o.xff, "2001:db9::1");
	CU_ASSERT_STRING_EQUAL(o.fwd, "for=\"[2001:db9::1]\";proto=http;host=api.example");
	CU_ASSERT(o.rid_generated);
	CU_ASSERT(td_tg_hex32(o.rid));
	CU_ASSERT_EQUAL_FATAL(td_tg_fwd("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 9.9.9.9\r\n\r\n",
					"2001:db8::5", false, tr, 2, &o), 0);
	CU_ASSERT(o.trusted);
	CU_ASSERT_STRING_EQUAL(o.xff, "9.9.9.9, 2001:db8::5");
	/* IPv4-mapped IPv6 peer (dual-stack listener) is an IPv4 client */
	CU_ASSERT_EQUAL_FATAL(td_tg_fwd("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "::ffff:10.9.8.7",
					false, tr, 2, &o), 0);
	CU_ASSERT_STRING_EQUAL(o.client, "10.9.8.7");
	CU_ASSERT(o.trusted);
	CU_ASSERT_STRING_EQUAL(o.fwd, "for=10.9.8.7;proto=http;host=a");

	/* request ids: only a single sane one is kept */
	CU_ASSERT(td_gw_rid_sane("a", 1));
	CU_ASSERT(!td_gw_rid_sane("", 0));
	CU_ASSERT(!td_gw_rid_sane("a b", 3));
	CU_ASSERT(!td_gw_rid_sane("a\"b", 3));
	memset(big, 'a', 128);
	CU_ASSERT(td_gw_rid_sane(big, 128));
	CU_ASSERT(!td_gw_rid_sane(big, 129));
	CU_ASSERT_EQUAL_FATAL(td_tg_fwd("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: bad/id\r\n\r\n",
					"192.0.2.1", false, NULL, 0, &o), 0);
	CU_ASSERT(o.rid_generated && td_tg_hex32(o.rid));
	CU_ASSERT_EQUAL_FATAL(td_tg_fwd("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: a\r\n"
					"X-Request-Id: b\r\n\r\n", "192.0.2.1", false, NULL, 0, &o), 0);
	CU_ASSERT(o.rid_generated);
	big[129] = '\0';
	memset(big, 'x', 129);
	snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: %s\r\n\r\n", big);
	CU_ASSERT_EQUAL_FATAL(td_tg_fwd(head, "192.0.2.1", false, NULL, 0, &o), 0);
	CU_ASSERT(o.rid_generated);
	big[128] = '\0';
	snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: %s\r\n\r\n", big);
	CU_ASSERT_EQUAL_FATAL(td_tg_fwd(head, "192.0.2.1", true, NULL, 0, &o), 0);
	CU_ASSERT_STRING_EQUAL(o.rid, big);
	CU_ASSERT_STRING_EQUAL(o.proto, "https");
	/* two generated ids differ */
	{
		char a[33], b[33];

		td_gw_rid_generate(a);
		td_gw_rid_generate(b);
		CU_ASSERT(strcmp(a, b) != 0);
	}
}

/* ---- aggregation -------------------------------------------------------------------------- */

static void td_tg_agg(const struct td_gw_agg_member *m, size_t n, const char *want,
		      const char *want_failed, unsigned int want_status)
{
	struct td_metrics_buf body, failed;
	unsigned int status = 0;

	td_metrics_buf_init(&body);
	td_metrics_buf_init(&failed);
	CU_ASSERT_EQUAL(td_gw_agg_build(m, n, &body, &failed, &status), 0);
	CU_ASSERT_STRING_EQUAL(body.data, want);
	CU_ASSERT_STRING_EQUAL(failed.data ? failed.data : "", want_failed);
	CU_ASSERT_EQUAL(status, want_status);
	/* always one valid JSON object */
	CU_ASSERT(td_gw_json_valid(body.data, body.len));
	td_metrics_buf_free(&body);
	td_metrics_buf_free(&failed);
}

static void test_aggregate(void)
{
	const char *b1 = "{\"users\": [1, 2]}\n", *b2 = "[\"x\", {\"y\": null}]";
	struct td_gw_agg_member m[3] = {
		{ "service1", 0, 200, b1, strlen(b1) },
		{ "service2", 0, 200, b2, strlen(b2) },
		{ "service3", 0, 201, "42", 2 },
	};

	td_tg_agg(m, 3, "{\"service1\": {\"users\": [1, 2]}, \"service2\": [\"x\", {\"y\": null}], "
		  "\"service3\": 42}", "", 200);
	/* one timed out */
	m[1].err = -ETIME;
	td_tg_agg(m, 3, "{\"service1\": {\"users\": [1, 2]}, "
		  "\"service2\": {\"error\": \"timeout\", \"status\": 504}, \"service3\": 42}",
		  "service2", 200);
	/* not JSON, and a non-2xx answer */
	m[1].err = 0;
	m[1].body = "<html>oops</html>";
	m[1].body_len = strlen(m[1].body);
	m[2].status = 404;
	td_tg_agg(m, 3, "{\"service1\": {\"users\": [1, 2]}, "
		  "\"service2\": {\"error\": \"invalid_json\", \"status\": 502}, "
		  "\"service3\": {\"error\": \"status\", \"status\": 404}}", "service2,service3", 200);
	/* all failed: 502 with the same shape */
	m[0].err = -ECONNREFUSED;
	td_tg_agg(m, 3, "{\"service1\": {\"error\": \"connect\", \"status\": 502}, "
		  "\"service2\": {\"error\": \"invalid_json\", \"status\": 502}, "
		  "\"service3\": {\"error\": \"status\", \"status\": 404}}",
		  "service1,service2,service3", 502);

	/* strict JSON validation */
	CU_ASSERT(td_gw_json_valid("123", 3));
	CU_ASSERT(td_gw_json_valid(" true ", 6));
	CU_ASSERT(td_gw_json_valid("\"s\"", 3));
	CU_ASSERT(td_gw_json_valid("{}", 2));
	CU_ASSERT(!td_gw_json_valid("", 0));
	CU_ASSERT(!td_gw_json_valid("   ", 3));
	CU_ASSERT(!td_gw_json_valid("{\"a\":1} x", 9));
	CU_ASSERT(!td_gw_json_valid("{\"a\":1}{}", 9));
	CU_ASSERT(!td_gw_json_valid("{'a':1}", 7));
	CU_ASSERT(!td_gw_json_valid("{\"a\":1", 6));
	CU_ASSERT(!td_gw_json_valid("[1,]", 4));
	CU_ASSERT(!td_gw_json_valid("12a", 3));
	CU_ASSERT(!td_gw_json_valid("{\"a\":1}\0", 8));
}

/* ---- access log --------------------------------------------------------------------------- */

static void test_access_log(void)
{
	char line[1024];
	struct td_gw_log_rec r = {
		.client = "192.0.2.7", .identity = "alice", .time = 1700000000,
		.method = "GET", .method_len = 3, .target = "/api/x?q=\"1\"", .target_len = 12,
		.version = 11, .status = 200, .bytes = 1234,
		.referer = NULL, .ua = "curl/8 \"q\"\x01\n", .ua_len = 12,
		.rt_ns = 12345678, .upstream = "10.0.0.1:80", .route = "r1", .rid = "abc",
	};
	struct json_object *o, *v;
	size_t n;

	setenv("TZ", "UTC", 1);
	tzset();
	n = td_gw_log_format(TD_GW_LOG_COMBINED, &r, line, sizeof(line));
	CU_ASSERT_EQUAL(n, strlen(line));
	CU_ASSERT_STRING_EQUAL(line, "192.0.2.7 - alice [14/Nov/2023:22:13:20 +0000] "
			       "\"GET /api/x?q=\\x221\\x22 HTTP/1.1\" 200 1234 \"-\" "
			       "\"curl/8 \\x22q\\x22\\x01\\x0a\" rt=0.012 upstream=10.0.0.1:80 route=r1 "
			       "rid=abc\n");
	r.identity = NULL;
	r.upstream = NULL;
	r.version = 10;
	n = td_gw_log_format(TD_GW_LOG_COMBINED, &r, line, sizeof(line));
	CU_ASSERT(strstr(line, "192.0.2.7 - - [") == line);
	CU_ASSERT(strstr(line, " HTTP/1.0\" ") != NULL);
	CU_ASSERT(strstr(line, " upstream=- ") != NULL);
	/* too small: the length needed, NUL-terminated truncation */
	CU_ASSERT_EQUAL(td_gw_log_format(TD_GW_LOG_COMBINED, &r, line, 10), n);
	CU_ASSERT_EQUAL(strlen(line), 9);

	r.identity = "bob\\";
	r.rt_ns = 2500 * MS;
	n = td_gw_log_format(TD_GW_LOG_JSON, &r, line, sizeof(line));
	CU_ASSERT_EQUAL(n, strlen(line));
	CU_ASSERT(line[n - 1] == '\n');
	CU_ASSERT(strstr(line, "\"user_agent\":\"curl/8 \\\"q\\\"\\u0001\\n\"") != NULL);
	CU_ASSERT(strstr(line, "\"time\":\"2023-11-14T22:13:20+00:00\"") != NULL);
	o = json_tokener_parse(line);
	CU_ASSERT_FATAL(o != NULL);
	CU_ASSERT(json_object_object_get_ex(o, "target", &v) &&
		  !strcmp(json_object_get_string(v), "/api/x?q=\"1\""));
	CU_ASSERT(json_object_object_get_ex(o, "identity", &v) &&
		  !strcmp(json_object_get_string(v), "bob\\"));
	CU_ASSERT(json_object_object_get_ex(o, "upstream", &v) && v == NULL);
	CU_ASSERT(json_object_object_get_ex(o, "referer", &v) && v == NULL);
	CU_ASSERT(json_object_object_get_ex(o, "status", &v) && json_object_get_int(v) == 200);
	CU_ASSERT(json_object_object_get_ex(o, "rt", &v) && json_object_get_double(v) == 2.5);
	CU_ASSERT(json_object_object_get_ex(o, "protocol", &v) &&
		  !strcmp(json_object_get_string(v), "HTTP/1.0"));
	json_object_put(o);
	/* a non-ASCII byte stays valid JSON */
	r.ua = "\xc3\xa9";
	r.ua_len = 2;
	td_gw_log_format(TD_GW_LOG_JSON, &r, line, sizeof(line));
	o = json_tokener_parse(line);
	CU_ASSERT(o != NULL);
	json_object_put(o);
}

/* ---- metrics ------------------------------------------------------------------------------ */

static void test_metrics(void)
{
	struct td_config *cfg = td_tg_cfg(2, TD_GW_LB_ROUND_ROBIN);
	struct td_metrics_buf b;
	struct td_gw_gen *g;

	snprintf(cfg->gateway.routes[0].name, sizeof(cfg->gateway.routes[0].name), "r\"1");
	g = td_tg_gen(cfg, NULL);
	CU_ASSERT_FATAL(g != NULL);
	td_gw_stat_request(g->routes[0].stat, 0, 200, 2 * MS);
	td_gw_stat_request(g->routes[0].stat, 0, 204, 20 * MS);
	td_gw_stat_request(g->routes[0].stat, 0, 503, 20000 * MS);
	td_gw_inc(&g->routes[0].stat->w[0].rate_limited, 3);
	td_gw_inc(&g->ups[0].stat->w[0].err[TD_GW_E_TIMEOUT], 2);
	td_gw_stat_request(g->unrouted, 0, 404, MS);
	g->ups[0].be[1].st->in_flight = 7;
	g->ups[0].be[1].st->ejections = 1;
	td_metrics_buf_init(&b);
	CU_ASSERT_EQUAL(td_gw_metrics_render(g, &b), 0);
	CU_ASSERT_FATAL(b.data != NULL);
	CU_ASSERT(strstr(b.data, "# TYPE td_gw_requests_total counter\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_requests_total{route=\"r\\\"1\",class=\"2xx\"} 2\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_requests_total{route=\"r\\\"1\",class=\"5xx\"} 1\n") != NULL);
	CU_ASSERT(strstr(b.data, "# TYPE td_gw_request_duration_seconds histogram\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_request_duration_seconds_bucket{route=\"r\\\"1\","
			 "le=\"0.001\"} 0\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_request_duration_seconds_bucket{route=\"r\\\"1\","
			 "le=\"0.0025\"} 1\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_request_duration_seconds_bucket{route=\"r\\\"1\","
			 "le=\"0.025\"} 2\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_request_duration_seconds_bucket{route=\"r\\\"1\","
			 "le=\"10\"} 2\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_request_duration_seconds_bucket{route=\"r\\\"1\","
			 "le=\"+Inf\"} 3\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_request_duration_seconds_sum{route=\"r\\\"1\"} "
			 "20.022000\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_request_duration_seconds_count{route=\"r\\\"1\"} "
			 "3\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_unrouted_total 1\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_rate_limited_total{route=\"r\\\"1\"} 3\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_upstream_errors_total{upstream=\"api\","
			 "kind=\"timeout\"} 2\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_backend_in_flight{upstream=\"api\",backend=\"10.0.0.2:80\"} "
			 "7\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_backend_ejections_total{upstream=\"api\","
			 "backend=\"10.0.0.2:80\"} 1\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_backend_up{upstream=\"api\",backend=\"10.0.0.1:80\"} "
			 "1\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_generation 1\n") != NULL);
	/* every sample line belongs to a family with HELP and TYPE */
	{
		char *save = NULL, *copy = strdup(b.data), *l;
		char fam[128] = "";

		for (l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			if (!strncmp(l, "# TYPE ", 7)) {
				sscanf(l + 7, "%127s", fam);
				continue;
			}
			if (l[0] == '#')
				continue;
			CU_ASSERT(!strncmp(l, fam, strlen(fam)));
		}
		free(copy);
	}
	g->ups[0].be[1].st->in_flight = 0;
	td_metrics_buf_free(&b);
	td_gw_gen_unref(g);
	/* without a generation: HELP/TYPE only */
	td_metrics_buf_init(&b);
	CU_ASSERT_EQUAL(td_gw_metrics_render(NULL, &b), 0);
	CU_ASSERT(strstr(b.data, "# TYPE td_gw_backend_up gauge\n") != NULL);
	CU_ASSERT(strstr(b.data, "td_gw_generation ") == NULL ||
		  strstr(b.data, "td_gw_generation ") == strstr(b.data, "td_gw_generation Gateway"));
	td_metrics_buf_free(&b);
	td_tg_cfg_free(cfg);
}

/* ---- generation build --------------------------------------------------------------------- */

static bool td_tg_has(const struct td_errors *e, const char *s)
{
	for (size_t i = 0; i < e->n; i++)
		if (strstr(e->msgs[i], s))
			return true;
	return false;
}

static void test_gen_build(void)
{
	struct td_config *cfg = td_tg_cfg(3, TD_GW_LB_ROUND_ROBIN);
	struct td_gw_route_cfg *r = &cfg->gateway.routes[0];
	struct td_errors errs = { 0 };
	struct td_gw_gen *g1, *g2;
	struct td_gw_bstate *kept;

	/* missing JWT secret file: FILE:LINE of the route's auth */
	r->auth.kind = TD_GW_AUTH_JWT;
	r->auth.line = 44;
	r->auth.jwt_alg = TD_JWT_HS256;
	snprintf(r->auth.secret_file, sizeof(r->auth.secret_file), "/nonexistent/td/hs.key");
	CU_ASSERT_EQUAL(td_gw_check(cfg, &errs), -EINVAL);
	CU_ASSERT(td_tg_has(&errs, "test.yaml:44: route r1: auth: jwt secret_file "
			    "/nonexistent/td/hs.key: No such file or directory"));
	td_errors_free(&errs);
	memset(&errs, 0, sizeof(errs));

	/* an unknown upstream and a rate limit keyed by a missing auth */
	memset(&r->auth, 0, sizeof(r->auth));
	r->upstream_idx = 7;
	r->rate_limit = (struct td_gw_ratelimit_cfg){ .on = true, .line = 47, .rate = 10,
						      .key = TD_RL_KEY_JWT_SUB };
	CU_ASSERT_EQUAL(td_gw_check(cfg, &errs), -EINVAL);
	CU_ASSERT(td_tg_has(&errs, "test.yaml:40: route r1: unknown upstream"));
	CU_ASSERT(td_tg_has(&errs, "test.yaml:47: route r1: rate_limit: key jwt_sub needs auth"));
	td_errors_free(&errs);
	memset(&errs, 0, sizeof(errs));

	/* a good one: API keys, a limiter, header edits */
	r->upstream_idx = 0;
	r->rate_limit.key = TD_RL_KEY_API_KEY;
	r->auth.kind = TD_GW_AUTH_API_KEYS;
	r->auth.line = 44;
	r->auth.keys = calloc(1, sizeof(*r->auth.keys));
	r->auth.n_keys = 1;
	snprintf(r->auth.keys[0].name, sizeof(r->auth.keys[0].name), "ci");
	snprintf(r->auth.keys[0].sha256, sizeof(r->auth.keys[0].sha256), "%s",
		 "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae");
	snprintf(r->auth.identity_header, sizeof(r->auth.identity_header), "X-Auth-Subject");
	snprintf(r->request_headers.remove[0], TD_GW_HDR_NAME_LEN, "Cookie");
	r->request_headers.n_remove = 1;
	snprintf(r->request_headers.add[0].name, TD_GW_HDR_NAME_LEN, "X-Env");
	snprintf(r->request_headers.add[0].value, TD_GW_HDR_VALUE_LEN, "prod");
	r->request_headers.n_add = 1;
	CU_ASSERT_EQUAL(td_gw_check(cfg, &errs), 0);
	CU_ASSERT_EQUAL(errs.n, 0);
	g1 = td_tg_gen(cfg, NULL);
	CU_ASSERT_FATAL(g1 != NULL);
	CU_ASSERT(g1->routes[0].auth != NULL && g1->routes[0].rl != NULL);
	CU_ASSERT_EQUAL(g1->routes[0].n_req_add, 1);
	/* removals: Cookie, X-Env (replaced), the 4 forwarded ones, request id, identity */
	CU_ASSERT_EQUAL(g1->routes[0].n_req_rm, 8);
	CU_ASSERT_STRING_EQUAL(g1->routes[0].req_rm[7], "X-Auth-Subject");
	CU_ASSERT_EQUAL(td_route_lookup(g1->rt, &(struct td_route_req){
		.target = "/api/x", .target_len = 6, .method = TD_HTTP_M_GET }), 0);
	CU_ASSERT_PTR_EQUAL(td_route_data(g1->rt, 0), &g1->routes[0]);

	/* reload: state carried by key, new backends start fresh, counters kept */
	kept = g1->ups[0].be[1].st;
	kept->ejected_until_ns = 123;
	td_gw_stat_request(g1->routes[0].stat, 0, 200, MS);
	td_tg_ep(&cfg->gateway.upstreams[0].backends[0], "10.0.0.9", 80, 21);
	g2 = td_tg_gen(cfg, g1);
	CU_ASSERT_FATAL(g2 != NULL);
	CU_ASSERT_PTR_EQUAL(g2->ups[0].be[1].st, kept);
	CU_ASSERT_EQUAL(g2->ups[0].be[1].st->ejected_until_ns, 123);
	CU_ASSERT_PTR_NOT_EQUAL(g2->ups[0].be[0].st, g1->ups[0].be[0].st);
	CU_ASSERT_STRING_EQUAL(g2->ups[0].be[0].st->key, "api/10.0.0.9:80");
	CU_ASSERT_PTR_EQUAL(g2->routes[0].stat, g1->routes[0].stat);
	CU_ASSERT_PTR_EQUAL(td_gw_gen_backend_by_key(g2, "gw:api/10.0.0.2:80"), &g2->ups[0].be[1]);
	CU_ASSERT_PTR_NULL(td_gw_gen_backend_by_key(g2, "api/10.0.0.2:80"));
	td_gw_gen_unref(g1);
	CU_ASSERT_EQUAL(kept->refs, 1);
	td_gw_gen_unref(g2);
	td_tg_cfg_free(cfg);
}

static void test_basic_cache(void)
{
	struct td_gw_basic_cache *c = calloc(1, sizeof(*c));
	uint8_t k1[32] = { 1, 2, 3 }, k2[32] = { 1, 2, 4 };
	char user[64];

	CU_ASSERT_FATAL(c != NULL);
	pthread_mutex_init(&c->mu, NULL);
	CU_ASSERT_EQUAL(td_gw_basic_cache_get(c, k1, 100, user, sizeof(user)), -ENOENT);
	td_gw_basic_cache_put(c, k1, 100, "alice");
	CU_ASSERT_EQUAL(td_gw_basic_cache_get(c, k1, 159, user, sizeof(user)), 0);
	CU_ASSERT_STRING_EQUAL(user, "alice");
	/* another credential in the same slot is a miss, expiry after the TTL */
	CU_ASSERT_EQUAL(td_gw_basic_cache_get(c, k2, 101, user, sizeof(user)), -ENOENT);
	CU_ASSERT_EQUAL(td_gw_basic_cache_get(c, k1, 100 + TD_GW_BASIC_TTL_S, user, sizeof(user)),
			-ENOENT);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

int td_suite_gateway(void)
{
	CU_pSuite s = CU_add_suite("gateway runtime", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "lb round_robin", test_lb_round_robin) ||
	    !CU_add_test(s, "lb random_two", test_lb_random_two) ||
	    !CU_add_test(s, "lb least_conn", test_lb_least_conn) ||
	    !CU_add_test(s, "lb hash (rendezvous) stability", test_lb_hash) ||
	    !CU_add_test(s, "lb skips unhealthy/ejected, fails open", test_lb_skip_and_fail_open) ||
	    !CU_add_test(s, "outlier ejection timeline", test_outlier_timeline) ||
	    !CU_add_test(s, "forwarded headers and request ids", test_forwarded) ||
	    !CU_add_test(s, "aggregation body", test_aggregate) ||
	    !CU_add_test(s, "access log formats", test_access_log) ||
	    !CU_add_test(s, "metrics text", test_metrics) ||
	    !CU_add_test(s, "generation build, errors, carry-over", test_gen_build) ||
	    !CU_add_test(s, "basic auth cache", test_basic_cache))
		return CU_get_error();
	return 0;
}

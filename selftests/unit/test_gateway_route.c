/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suites for the gateway router (match order, rewrite, bench) and the token-bucket rate limiter. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <CUnit/CUnit.h>

#include "parser.h"
#include "ratelimit.h"
#include "route.h"
#include "unit.h"

#define NS 1000000000ull

/* route a raw request head through the real parser; -EBADMSG if it does not parse */
static int td_rt_raw(const struct td_route_table *t, const char *head)
{
	static struct td_http_parser p;
	struct td_route_req req;
	size_t used;

	td_http_parser_init(&p, TD_HTTP_REQUEST, NULL);
	if (td_http_parse(&p, head, strlen(head), &used) != TD_HTTP_DONE)
		return -EBADMSG;
	if (td_route_req_from_msg(&req, &p.msg, head))
		return -EINVAL;
	return td_route_lookup(t, &req);
}

/* route method/host/target without headers */
static int td_rt(const struct td_route_table *t, int m, const char *host, const char *target)
{
	struct td_route_req req = {
		.host = host, .host_len = host ? strlen(host) : 0,
		.target = target, .target_len = strlen(target), .method = (uint8_t)m,
	};

	return td_route_lookup(t, &req);
}

static void test_route_basic(void)
{
	static const struct td_route_hdr canary[] = { { "X-Canary", "yes" } };
	const struct td_route_spec s[] = {
		{ .name = "users", .host = "API.example", .path_prefix = "/users",
		  .methods = TD_ROUTE_M(TD_HTTP_M_GET) | TD_ROUTE_M(TD_HTTP_M_POST) },
		{ .name = "data", .path = "/api/data" },
		{ .name = "canary", .host = "api.example", .path_prefix = "/users",
		  .headers = canary, .nheaders = 1 },
		{ .name = "slash", .path_prefix = "/v2/" },
	};
	struct td_route_table *t = td_route_table_build(s, 4, NULL, 0);

	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT_EQUAL(td_route_count(t), 4);
	CU_ASSERT_STRING_EQUAL(td_route_name(t, 0), "users");
	CU_ASSERT_PTR_NULL(td_route_name(t, 4));
	/* host: case-insensitive, port ignored */
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "api.example", "/users"), 0);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "Api.Example:8000", "/users/1"), 0);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "other.example", "/users"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/users"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "api.example.", "/users"), -ENOENT);	/* literal */
	/* prefix is segment-aware */
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "api.example", "/usersx"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "api.example", "/users/"), 0);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "api.example", "/user"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "api.example", "/"), -ENOENT);
	/* a prefix ending in '/' needs that slash */
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/v2/a"), 3);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/v2/"), 3);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/v2"), -ENOENT);
	/* methods: route 0 is GET/POST; PUT falls to nothing (canary needs its header) */
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_POST, "api.example", "/users"), 0);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_PUT, "api.example", "/users"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_HEAD, "api.example", "/users"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_OTHER, "api.example", "/users"), -ENOENT);
	/* exact path, any host, any method; the query is not part of the path */
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_DELETE, "x", "/api/data"), 1);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/api/data?a=1&b=/x"), 1);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/api/data/"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/api/dat"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/API/data"), -ENOENT);	/* paths are case-sensitive */
	/* header equality through the real parser: name case-insensitive, value exact */
	/* methods and one header are one matcher each: a tie, config order decides */
	CU_ASSERT_EQUAL(td_rt_raw(t, "GET /users/7 HTTP/1.1\r\nHost: api.example\r\nx-canary: yes\r\n\r\n"), 0);
	CU_ASSERT_EQUAL(td_rt_raw(t, "PUT /users HTTP/1.1\r\nHost: api.example\r\nX-Canary: yes\r\n\r\n"), 2);
	CU_ASSERT_EQUAL(td_rt_raw(t, "PUT /users HTTP/1.1\r\nHost: api.example\r\nX-Canary: Yes\r\n\r\n"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt_raw(t, "PUT /users HTTP/1.1\r\nHost: api.example\r\nX-Canary: yes, no\r\n\r\n"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt_raw(t, "PUT /users HTTP/1.1\r\nHost: api.example\r\nX-Canary: no\r\nX-Canary: yes\r\n\r\n"), 2);
	CU_ASSERT_EQUAL(td_rt_raw(t, "GET /users HTTP/1.1\r\nHost: api.example\r\nX-Canary: no\r\n\r\n"), 0);
	/* absolute-form: its authority replaces Host */
	CU_ASSERT_EQUAL(td_rt_raw(t, "GET http://api.example:80/users?q HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	CU_ASSERT_EQUAL(td_rt_raw(t, "GET http://x/api/data HTTP/1.1\r\nHost: api.example\r\n\r\n"), 1);
	CU_ASSERT_EQUAL(td_rt_raw(t, "OPTIONS * HTTP/1.1\r\nHost: api.example\r\n\r\n"), -EINVAL);
	td_route_table_unref(t);

	/* an empty table matches nothing */
	t = td_route_table_build(NULL, 0, NULL, 0);
	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "a", "/"), -ENOENT);
	td_route_table_unref(t);
}

static void test_route_wildcard(void)
{
	const struct td_route_spec s[] = {
		{ .name = "wide", .host = "*.example" },
		{ .name = "narrow", .host = "*.api.example" },
		{ .name = "exact", .host = "v1.api.example" },
		{ .name = "ipv6", .host = "[::1]" },
	};
	struct td_route_table *t = td_route_table_build(s, 4, NULL, 0);

	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "a.example", "/"), 0);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "A.B.EXAMPLE:443", "/"), 0);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "example", "/"), -ENOENT);	/* not the apex */
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "aexample", "/"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, ".example", "/"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "x.api.example", "/"), 1);	/* longer suffix */
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "api.example", "/"), 0);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "v1.api.example", "/"), 2);	/* exact wins */
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "V1.api.example:1", "/"), 2);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "[::1]:8000", "/"), 3);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, "[::1]", "/"), 3);
	td_route_table_unref(t);
}

/*
 * Exhaustive order: every ordered pair of route shapes (4 hosts x 4 paths x 3 matcher counts),
 * all matching one request, built as [a, b]; the winner must be the higher rank of an independent
 * reference (host, then path, then matchers), and config order on a tie.
 */
#define TD_NH 4		/* exact, *.api.example, *.example, any */
#define TD_NP 4		/* exact /users/1, prefix /users, prefix /, any */
#define TD_NM 3		/* no matcher, methods, methods + header */
static const struct td_route_hdr td_hdr_x[] = { { "X-A", "1" } };

static void td_shape(int sh, struct td_route_spec *s)
{
	static const char *const hosts[TD_NH] = { "v1.api.example", "*.api.example", "*.example", NULL };
	int h = sh / (TD_NP * TD_NM), p = sh / TD_NM % TD_NP, m = sh % TD_NM;

	memset(s, 0, sizeof(*s));
	s->host = hosts[h];
	if (p == 0)
		s->path = "/users/1";
	else if (p == 1)
		s->path_prefix = "/users";
	else if (p == 2)
		s->path_prefix = "/";
	if (m >= 1)
		s->methods = TD_ROUTE_M(TD_HTTP_M_GET) | TD_ROUTE_M(TD_HTTP_M_PUT);
	if (m >= 2) {
		s->headers = td_hdr_x;
		s->nheaders = 1;
	}
}

/* lower is more specific: the shape index is (host, path, 2 - matchers) */
static int td_shape_rank(int sh)
{
	int h = sh / (TD_NP * TD_NM), p = sh / TD_NM % TD_NP, m = sh % TD_NM;

	return (h * TD_NP + p) * TD_NM + (TD_NM - 1 - m);
}

static void test_route_order_exhaustive(void)
{
	const char *req = "GET /users/1?x=2 HTTP/1.1\r\nHost: V1.api.example:8000\r\nX-A: 1\r\n\r\n";
	int nsh = TD_NH * TD_NP * TD_NM, bad = 0, pairs = 0;

	for (int a = 0; a < nsh; a++) {
		for (int b = 0; b < nsh; b++) {
			struct td_route_spec s[2];
			struct td_route_table *t;
			int want, got;

			td_shape(a, &s[0]);
			td_shape(b, &s[1]);
			t = td_route_table_build(s, 2, NULL, 0);
			CU_ASSERT_FATAL(t != NULL);
			want = td_shape_rank(a) <= td_shape_rank(b) ? 0 : 1;
			got = td_rt_raw(t, req);
			if (got != want && bad++ < 5)
				fprintf(stderr, "order: shapes %d,%d: got %d want %d\n", a, b, got, want);
			pairs++;
			td_route_table_unref(t);
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(pairs, 48 * 48);

	/* the 48 shapes in one table, reversed config order: removing each winner yields rank order */
	{
		struct td_route_spec s[TD_NH * TD_NP * TD_NM];
		bool gone[TD_NH * TD_NP * TD_NM] = { false };

		for (int i = 0; i < nsh; i++)
			td_shape(nsh - 1 - i, &s[i]);
		for (int k = 0; k < nsh; k++) {
			struct td_route_spec live[TD_NH * TD_NP * TD_NM];
			int map[TD_NH * TD_NP * TD_NM], n = 0, got;
			struct td_route_table *t;

			for (int i = 0; i < nsh; i++)
				if (!gone[i]) {
					map[n] = i;
					live[n++] = s[i];
				}
			t = td_route_table_build(live, (size_t)n, NULL, 0);
			CU_ASSERT_FATAL(t != NULL);
			got = td_rt_raw(t, req);
			CU_ASSERT_FATAL(got >= 0);
			/* config index i holds shape nsh - 1 - i: the k-th winner has rank k */
			CU_ASSERT_EQUAL(td_shape_rank(nsh - 1 - map[got]), k);
			gone[map[got]] = true;
			td_route_table_unref(t);
		}
	}
}

static void test_route_tiebreaks(void)
{
	static const struct td_route_hdr h2[] = { { "X-A", "1" }, { "X-B", "2" } };
	const struct td_route_spec s[] = {
		{ .name = "first", .path_prefix = "/a" },
		{ .name = "second", .path_prefix = "/a" },
		{ .name = "one-header", .path_prefix = "/a", .headers = h2, .nheaders = 1 },
		{ .name = "two-headers", .path_prefix = "/a", .headers = h2, .nheaders = 2 },
		{ .name = "longer", .path_prefix = "/a/b" },
	};
	struct td_route_table *t = td_route_table_build(s, 5, NULL, 0);

	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT_EQUAL(td_rt_raw(t, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
	CU_ASSERT_EQUAL(td_rt_raw(t, "GET /a HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n"), 2);
	CU_ASSERT_EQUAL(td_rt_raw(t, "GET /a HTTP/1.1\r\nHost: h\r\nX-B: 2\r\nX-A: 1\r\n\r\n"), 3);
	/* a longer prefix beats more matchers */
	CU_ASSERT_EQUAL(td_rt_raw(t, "GET /a/b/c HTTP/1.1\r\nHost: h\r\nX-B: 2\r\nX-A: 1\r\n\r\n"), 4);
	td_route_table_unref(t);
}

static void test_route_literal_paths(void)
{
	const struct td_route_spec s[] = {
		{ .name = "users", .path_prefix = "/users" },
		{ .name = "encoded", .path = "/a%2Fb" },
	};
	struct td_route_table *t = td_route_table_build(s, 2, NULL, 0);

	CU_ASSERT_FATAL(t != NULL);
	/* no percent-decoding, no case folding of escapes, no dot-segment removal */
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/%75sers"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/users%2F1"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/users/%2e%2e/x"), 0);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/a%2Fb"), 1);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/a%2fb"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/a/b"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/users?next=/admin"), 0);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/admin?next=/users"), -ENOENT);
	CU_ASSERT_EQUAL(td_rt(t, TD_HTTP_M_GET, NULL, "/users?"), 0);
	td_route_table_unref(t);
}

static void test_route_strip_prefix(void)
{
	static const struct { int route; const char *in, *out; } rows[] = {
		{ 0, "/users", "/" },
		{ 0, "/users/", "/" },
		{ 0, "/users/42", "/42" },
		{ 0, "/users?x=1", "/?x=1" },
		{ 0, "/users/42?x=/users", "/42?x=/users" },
		{ 0, "/usersx", "/usersx" },		/* not a segment prefix: unchanged */
		{ 0, "/other", "/other" },
		{ 1, "/api/v1/a", "/a" },		/* "/api/v1/" leaves "a" -> "/a" */
		{ 1, "/api/v1/", "/" },
		{ 1, "/api/v1", "/api/v1" },		/* the slash is part of the prefix */
		{ 2, "/x?y", "/x?y" },			/* no strip_prefix */
		{ 3, "/", "/" },			/* strip "/" */
		{ 3, "/a/b", "/a/b" },
	};
	const struct td_route_spec s[] = {
		{ .path_prefix = "/users", .strip_prefix = "/users" },
		{ .path_prefix = "/api/v1/", .strip_prefix = "/api/v1/" },
		{ .path_prefix = "/x" },
		{ .strip_prefix = "/" },
	};
	struct td_route_table *t = td_route_table_build(s, 4, NULL, 0);
	char out[64], tiny[4];

	CU_ASSERT_FATAL(t != NULL);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int n = td_route_rewrite(t, rows[i].route, rows[i].in, strlen(rows[i].in), out, sizeof(out));

		CU_ASSERT_EQUAL(n, (int)strlen(rows[i].out));
		CU_ASSERT_STRING_EQUAL(out, rows[i].out);
		if (n < 0 || strcmp(out, rows[i].out))
			fprintf(stderr, "strip row %zu: %s -> %s (%d)\n", i, rows[i].in, out, n);
	}
	/* target_len + 2 always suffices; less may not */
	CU_ASSERT_EQUAL(td_route_rewrite(t, 2, "/abcd", 5, tiny, sizeof(tiny)), -ENOSPC);
	CU_ASSERT_EQUAL(td_route_rewrite(t, 0, "/users", 6, tiny, 2), 1);
	CU_ASSERT_EQUAL(td_route_rewrite(t, 9, "/", 1, out, sizeof(out)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(td_route_name(t, 3), "route3");
	td_route_table_unref(t);
}

static void test_route_build_errors(void)
{
	static const struct td_route_hdr bad_name[] = { { "X A", "1" } };
	static const struct td_route_hdr many[9] = {
		{ "a", "1" }, { "b", "1" }, { "c", "1" }, { "d", "1" }, { "e", "1" },
		{ "f", "1" }, { "g", "1" }, { "h", "1" }, { "i", "1" },
	};
	const struct td_route_spec bad[] = {
		{ .path = "users" },
		{ .path = "/a", .path_prefix = "/a" },
		{ .path_prefix = "/a?b" },
		{ .path = "/a b" },
		{ .host = "a.*.example" },
		{ .host = "*" },
		{ .host = "" },
		{ .headers = bad_name, .nheaders = 1 },
		{ .headers = many, .nheaders = 9 },
		{ .methods = TD_ROUTE_M(TD_HTTP_M_OTHER) },
		{ .strip_prefix = "x" },
	};
	char err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct td_route_spec two[2] = { { .path = "/ok" }, bad[i] };

		errno = 0;
		CU_ASSERT_PTR_NULL(td_route_table_build(two, 2, err, sizeof(err)));
		CU_ASSERT_EQUAL(errno, EINVAL);
		CU_ASSERT_EQUAL(strncmp(err, "route 1: ", 9), 0);
	}
	CU_ASSERT_EQUAL(td_route_method_parse("GET"), TD_HTTP_M_GET);
	CU_ASSERT_EQUAL(td_route_method_parse("PATCH"), TD_HTTP_M_PATCH);
	CU_ASSERT_EQUAL(td_route_method_parse("get"), -EINVAL);
	CU_ASSERT_EQUAL(td_route_method_parse("OTHER"), -EINVAL);
}

/* a reload builds a new table; the old one stays valid for in-flight users until its last unref */
static void test_route_reload_refs(void)
{
	const struct td_route_spec g1 = { .name = "old", .path = "/x" };
	const struct td_route_spec g2 = { .name = "new", .path = "/y" };
	struct td_route_table *cur = td_route_table_build(&g1, 1, NULL, 0), *inflight, *next;

	CU_ASSERT_FATAL(cur != NULL);
	inflight = td_route_table_ref(cur);
	next = td_route_table_build(&g2, 1, NULL, 0);
	CU_ASSERT_FATAL(next != NULL);
	__atomic_store_n(&cur, next, __ATOMIC_RELEASE);
	td_route_table_unref(inflight);		/* the publisher's reference */
	CU_ASSERT_EQUAL(td_rt(inflight, TD_HTTP_M_GET, NULL, "/x"), 0);
	CU_ASSERT_STRING_EQUAL(td_route_name(inflight, 0), "old");
	CU_ASSERT_EQUAL(td_rt(cur, TD_HTTP_M_GET, NULL, "/x"), -ENOENT);
	td_route_table_unref(inflight);		/* the request's: frees it (ASan checks) */
	td_route_table_unref(cur);
}

static double td_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ns per lookup of the worst request (matches the last route scanned) in n routes */
static double td_route_bench(const struct td_route_spec *s, size_t n, int m, const char *host,
			     const char *target, int want)
{
	struct td_route_table *t = td_route_table_build(s, n, NULL, 0);
	const int iters = 20000;
	double t0, best = 1e9;
	int got = 0;

	if (!t)
		return -1;
	for (int rep = 0; rep < 5; rep++) {
		t0 = td_now_s();
		for (int i = 0; i < iters; i++)
			got |= td_rt(t, m, host, target) ^ want;
		t0 = (td_now_s() - t0) * 1e9 / iters;
		if (t0 < best)
			best = t0;
	}
	td_route_table_unref(t);
	return got ? -1 : best;
}

static void test_route_bench(void)
{
	enum { N = 1000 };
	static struct td_route_spec s[N];
	static char paths[N][32], hosts[N][32];
	double any, hosted;

	/* worst case for the scan: 1000 host-less prefixes, the request matches the least specific */
	for (int i = 0; i < N; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/svc%04d/items", i);
		s[i] = (struct td_route_spec){ .path_prefix = paths[i], .methods = TD_ROUTE_M(TD_HTTP_M_GET) };
	}
	s[N - 1].path_prefix = "/";
	any = td_route_bench(s, N, TD_HTTP_M_GET, "h.example", "/nomatch/x?q=1", N - 1);
	/* 1000 routes over 1000 hosts: the host index goes straight to one group */
	for (int i = 0; i < N; i++) {
		snprintf(hosts[i], sizeof(hosts[i]), "svc%04d.example", i);
		s[i].host = hosts[i];
		s[i].path_prefix = "/items";
	}
	hosted = td_route_bench(s, N, TD_HTTP_M_GET, "SVC0999.example:443", "/items/1?q=1", N - 1);
	printf("\n    bench: route lookup, 1000 routes: full scan %.0f ns/lookup, host-indexed %.0f ns/lookup ",
	       any, hosted);
	CU_ASSERT(any > 0 && any < 50000.0);	/* loose: 2 shared cores, -O0 or ASan builds */
	CU_ASSERT(hosted > 0 && hosted < 5000.0);
	CU_ASSERT(hosted < any);
}

/* ---- rate limiter ---- */

static int td_take(struct td_rl *rl, const char *key, uint64_t now)
{
	return td_rl_take(rl, key, strlen(key), now);
}

static void test_rl_burst_then_limited(void)
{
	struct td_rl_conf c = { .rate = 10, .burst = 5, .max_keys = 16 };
	struct td_rl *rl = td_rl_new(&c);
	struct td_rl_stats st;
	uint64_t t0 = 123 * NS;

	CU_ASSERT_FATAL(rl != NULL);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(td_take(rl, "10.0.0.1", t0), 0);
	CU_ASSERT_EQUAL(td_take(rl, "10.0.0.1", t0), 1);
	CU_ASSERT_EQUAL(td_take(rl, "10.0.0.1", t0), 1);	/* a refused request costs nothing... */
	CU_ASSERT_EQUAL(td_take(rl, "10.0.0.1", t0 + NS / 10), 0);	/* ...so 100 ms give one */
	CU_ASSERT_EQUAL(td_take(rl, "10.0.0.1", t0 + NS / 10), 1);
	td_rl_stats_get(rl, &st);
	CU_ASSERT_EQUAL(st.allowed, 6);
	CU_ASSERT_EQUAL(st.limited, 3);
	CU_ASSERT_EQUAL(st.keys, 1);
	CU_ASSERT_EQUAL(st.evicted, 0);
	CU_ASSERT_EQUAL(st.max_keys, 16);
	td_rl_free(rl);
}

static void test_rl_refill(void)
{
	struct td_rl_conf c = { .rate = 3, .burst = 3 };
	struct td_rl *rl = td_rl_new(&c);
	uint64_t t = 5 * NS;

	CU_ASSERT_FATAL(rl != NULL);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(td_take(rl, "k", t), 0);
	CU_ASSERT_EQUAL(td_take(rl, "k", t), 1);
	/* exact integer refill: one token after 1/3 s, i.e. 333333334 ns but not 333333333 */
	CU_ASSERT_EQUAL(td_take(rl, "k", t + 333333333), 1);
	CU_ASSERT_EQUAL(td_take(rl, "k", t + 333333334), 0);
	CU_ASSERT_EQUAL(td_take(rl, "k", t + 333333334), 1);
	/* a long pause refills to burst, never more */
	t += 3600 * NS;
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(td_take(rl, "k", t), 0);
	CU_ASSERT_EQUAL(td_take(rl, "k", t), 1);
	/* a clock going backwards refills nothing */
	CU_ASSERT_EQUAL(td_take(rl, "k", t - 10 * NS), 1);
	CU_ASSERT_EQUAL(td_take(rl, "k", t + NS / 3 + 1), 0);
	td_rl_free(rl);
}

static void test_rl_retry_after(void)
{
	/* 1 request per minute, burst 2 */
	struct td_rl_conf c = { .rate = 1, .burst = 2, .period_ms = 60000 };
	struct td_rl *rl = td_rl_new(&c);
	uint64_t t = 1000 * NS;

	CU_ASSERT_FATAL(rl != NULL);
	CU_ASSERT_EQUAL(td_take(rl, "sub", t), 0);
	CU_ASSERT_EQUAL(td_take(rl, "sub", t), 0);
	CU_ASSERT_EQUAL(td_take(rl, "sub", t), 60);
	CU_ASSERT_EQUAL(td_take(rl, "sub", t + 30 * NS), 30);
	CU_ASSERT_EQUAL(td_take(rl, "sub", t + 30 * NS + 1), 30);	/* ceil: 29.999... -> 30 */
	CU_ASSERT_EQUAL(td_take(rl, "sub", t + 59 * NS + NS / 2), 1);	/* 0.5 s -> 1 */
	CU_ASSERT_EQUAL(td_take(rl, "sub", t + 60 * NS - 1), 1);
	CU_ASSERT_EQUAL(td_take(rl, "sub", t + 60 * NS), 0);
	CU_ASSERT_EQUAL(td_take(rl, "sub", t + 60 * NS), 60);
	td_rl_free(rl);

	/* 100/s: Retry-After is never 0 */
	c = (struct td_rl_conf){ .rate = 100, .burst = 1 };
	rl = td_rl_new(&c);
	CU_ASSERT_FATAL(rl != NULL);
	CU_ASSERT_EQUAL(td_take(rl, "ip", 0), 0);
	CU_ASSERT_EQUAL(td_take(rl, "ip", 0), 1);
	CU_ASSERT_EQUAL(td_take(rl, "ip", NS / 100), 0);
	td_rl_free(rl);
}

static void test_rl_independent_keys(void)
{
	struct td_rl_conf c = { .rate = 1, .burst = 1 };
	struct td_rl *rl = td_rl_new(&c);
	const uint8_t v4[4] = { 10, 0, 0, 1 }, v4b[4] = { 10, 0, 0, 2 };
	char long_key[TD_RL_KEY_MAX + 1];

	CU_ASSERT_FATAL(rl != NULL);
	CU_ASSERT_EQUAL(td_rl_take(rl, v4, 4, 0), 0);
	CU_ASSERT_EQUAL(td_rl_take(rl, v4, 4, 0), 1);
	CU_ASSERT_EQUAL(td_rl_take(rl, v4b, 4, 0), 0);
	/* keys are bytes: a prefix or a longer key is another key */
	CU_ASSERT_EQUAL(td_rl_take(rl, v4, 3, 0), 0);
	CU_ASSERT_EQUAL(td_rl_take(rl, "ab", 2, 0), 0);
	CU_ASSERT_EQUAL(td_rl_take(rl, "ab", 3, 0), 0);
	CU_ASSERT_EQUAL(td_rl_take(rl, "ab", 2, 0), 1);
	memset(long_key, 'k', sizeof(long_key));
	CU_ASSERT_EQUAL(td_rl_take(rl, long_key, TD_RL_KEY_MAX, 0), 0);
	CU_ASSERT_EQUAL(td_rl_take(rl, long_key, TD_RL_KEY_MAX, 0), 1);
	CU_ASSERT_EQUAL(td_rl_take(rl, long_key, TD_RL_KEY_MAX + 1, 0), -E2BIG);
	CU_ASSERT_EQUAL(td_rl_take(rl, long_key, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(td_rl_take(rl, NULL, 1, 0), -EINVAL);
	td_rl_free(rl);

	errno = 0;
	CU_ASSERT_PTR_NULL(td_rl_new(&(struct td_rl_conf){ .rate = 0, .burst = 1 }));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_PTR_NULL(td_rl_new(&(struct td_rl_conf){ .rate = 1, .burst = 0 }));
	CU_ASSERT_PTR_NULL(td_rl_new(&(struct td_rl_conf){ .rate = 1, .burst = 1, .max_keys = TD_RL_MAX_KEYS + 1 }));
	CU_ASSERT_PTR_NULL(td_rl_new(&(struct td_rl_conf){ .rate = 1, .burst = 1, .period_ms = TD_RL_MAX_PERIOD_MS + 1 }));
	CU_ASSERT_PTR_NULL(td_rl_new(&(struct td_rl_conf){ .rate = 1, .burst = UINT32_MAX, .period_ms = TD_RL_MAX_PERIOD_MS }));
	CU_ASSERT_EQUAL(td_rl_key_kind_parse("client_ip"), TD_RL_KEY_CLIENT_IP);
	CU_ASSERT_EQUAL(td_rl_key_kind_parse("api_key"), TD_RL_KEY_API_KEY);
	CU_ASSERT_EQUAL(td_rl_key_kind_parse("jwt_sub"), TD_RL_KEY_JWT_SUB);
	CU_ASSERT_EQUAL(td_rl_key_kind_parse("ip"), -EINVAL);
}

static void test_rl_eviction(void)
{
	struct td_rl_conf c = { .rate = 1, .burst = 1, .max_keys = 4, .period_ms = 60000 };
	struct td_rl *rl = td_rl_new(&c);
	struct td_rl_stats st;
	char key[16];
	int over = 0;

	CU_ASSERT_FATAL(rl != NULL);
	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CU_ASSERT_EQUAL(td_take(rl, key, 0), 0);
	}
	CU_ASSERT_EQUAL(td_take(rl, "k0", 0), 60);	/* touch k0: k1 is now the LRU */
	CU_ASSERT_EQUAL(td_take(rl, "k4", 0), 0);	/* evicts k1 */
	CU_ASSERT_EQUAL(td_take(rl, "k0", 0), 60);	/* kept, still limited */
	CU_ASSERT_EQUAL(td_take(rl, "k1", 0), 0);	/* forgotten: a full bucket again; evicts k2 */
	CU_ASSERT_EQUAL(td_take(rl, "k3", 0), 60);	/* kept */
	CU_ASSERT_EQUAL(td_take(rl, "k2", 0), 0);	/* evicted by k1 */
	td_rl_stats_get(rl, &st);
	CU_ASSERT_EQUAL(st.keys, 4);
	CU_ASSERT_EQUAL(st.evicted, 3);
	td_rl_free(rl);

	/* many keys through a fixed table: memory stays bounded, every key is tracked once */
	c = (struct td_rl_conf){ .rate = 1, .burst = 2, .max_keys = 1000 };
	rl = td_rl_new(&c);
	CU_ASSERT_FATAL(rl != NULL);
	for (uint32_t i = 0; i < 20000; i++)
		over |= td_rl_take(rl, &i, sizeof(i), 0);
	/* the last 1000 are still tracked with one token left each */
	for (uint32_t i = 19000; i < 20000; i++)
		over |= td_rl_take(rl, &i, sizeof(i), 0);
	for (uint32_t i = 19000; i < 20000; i++)
		over |= td_rl_take(rl, &i, sizeof(i), 0) != 1;
	CU_ASSERT_EQUAL(over, 0);
	td_rl_stats_get(rl, &st);
	CU_ASSERT_EQUAL(st.keys, 1000);
	CU_ASSERT_EQUAL(st.evicted, 19000);
	CU_ASSERT_EQUAL(st.allowed, 21000);
	CU_ASSERT_EQUAL(st.limited, 1000);
	td_rl_free(rl);
}

int td_suite_gateway_route(void)
{
	CU_pSuite s = CU_add_suite("gateway routing", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "host, path, prefix, method, header", test_route_basic) ||
	    !CU_add_test(s, "wildcard hosts", test_route_wildcard) ||
	    !CU_add_test(s, "specificity order, exhaustive", test_route_order_exhaustive) ||
	    !CU_add_test(s, "tie-breaks: matchers, prefix length, config order", test_route_tiebreaks) ||
	    !CU_add_test(s, "literal paths and query strings", test_route_literal_paths) ||
	    !CU_add_test(s, "strip_prefix", test_route_strip_prefix) ||
	    !CU_add_test(s, "invalid specs", test_route_build_errors) ||
	    !CU_add_test(s, "reload: reference counted tables", test_route_reload_refs) ||
	    !CU_add_test(s, "bench: 1000 routes", test_route_bench))
		return CU_get_error();
	s = CU_add_suite("gateway rate limit", NULL, NULL);
	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "burst then limited", test_rl_burst_then_limited) ||
	    !CU_add_test(s, "refill with a fake clock", test_rl_refill) ||
	    !CU_add_test(s, "Retry-After", test_rl_retry_after) ||
	    !CU_add_test(s, "independent keys, invalid input", test_rl_independent_keys) ||
	    !CU_add_test(s, "LRU eviction, many keys", test_rl_eviction))
		return CU_get_error();
	return 0;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for the proxy cache: RFC 9111 policy tables (cache_policy.c) and the LRU store (cache_store.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <CUnit/CUnit.h>

#include "cache_policy.h"
#include "cache_store.h"
#include "parser.h"
#include "unit.h"

#define T0	784111777LL	/* Sun, 06 Nov 1994 08:49:37 GMT */
#define D0	"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
#define GET	"GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n"
#define R200	"HTTP/1.1 200 OK\r\n"

/* compare and name the row on failure */
#define TD_ROW_EQ(row, got, want) do {							\
	long long g_ = (long long)(got), w_ = (long long)(want);			\
	if (g_ != w_)									\
		fprintf(stderr, "\n  row '%s': %s = %lld, want %lld\n", (row), #got, g_, w_); \
	CU_ASSERT_EQUAL(g_, w_);							\
} while (0)

#define TD_ROW_STR(row, got, want) do {							\
	if (strcmp((got), (want)))							\
		fprintf(stderr, "\n  row '%s': got '%s', want '%s'\n", (row), (got), (want)); \
	CU_ASSERT_STRING_EQUAL((got), (want));						\
} while (0)

/* parse a complete head into p (responses answer a request of method m) */
static const struct td_http_msg *td_tparse(struct td_http_parser *p, enum td_http_kind kind,
					   const char *s, enum td_http_method m)
{
	size_t used;

	if (td_http_parser_init(p, kind, NULL))
		return NULL;
	if (kind == TD_HTTP_RESPONSE)
		td_http_parser_set_req_method(p, m);
	if (td_http_parse(p, s, strlen(s), &used) != TD_HTTP_DONE) {
		fprintf(stderr, "\n  cannot parse: %s (%s)\n", s, p->why ? p->why : "");
		return NULL;
	}
	return &p->msg;
}

static struct td_http_parser td_pq, td_pr, td_p3;

#define REQ(s)	td_tparse(&td_pq, TD_HTTP_REQUEST, (s), 0)
#define RESP(s)	td_tparse(&td_pr, TD_HTTP_RESPONSE, (s), TD_HTTP_M_GET)

/* ---- HTTP-date (RFC 9110 5.6.7) ---- */
static void test_dates(void)
{
	static const struct { const char *in; int rc; long long t; } rows[] = {
		{ "Sun, 06 Nov 1994 08:49:37 GMT", 0, T0 },		/* IMF-fixdate */
		{ "Sunday, 06-Nov-94 08:49:37 GMT", 0, T0 },		/* RFC 850 */
		{ "Sun Nov  6 08:49:37 1994", 0, T0 },			/* asctime */
		{ "Thu, 01 Jan 1970 00:00:00 GMT", 0, 0 },
		{ "Sun, 06 Nov 1994 08:49:37 UTC", -EINVAL, 0 },	/* must be GMT */
		{ "Sun, 06 Nov 1994 08:49:37 GMT junk", -EINVAL, 0 },
		{ "0", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "yesterday", -EINVAL, 0 },
	};
	char out[40];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int64_t t = -1;
		int rc = td_cache_date_parse(rows[i].in, strlen(rows[i].in), &t);

		TD_ROW_EQ(rows[i].in, rc, rows[i].rc);
		if (!rows[i].rc)
			TD_ROW_EQ(rows[i].in, t, rows[i].t);
	}
	TD_ROW_EQ("format", td_cache_date_format(T0, out, sizeof(out)), 29);
	TD_ROW_STR("format", out, "Sun, 06 Nov 1994 08:49:37 GMT");
	TD_ROW_EQ("format small", td_cache_date_format(T0, out, 10), -ENOSPC);
}

/* ---- storable (RFC 9111 3, 3.5) ---- */
static void test_storable(void)
{
	static const struct { const char *name, *req, *resp; int want; } rows[] = {
		{ "200 no directives (heuristic)", GET "\r\n", R200 "\r\n", TD_CACHE_STORABLE },
		{ "200 max-age", GET "\r\n", R200 "Cache-Control: max-age=60\r\n\r\n", TD_CACHE_STORABLE },
		{ "HEAD", "HEAD http://a.example/x HTTP/1.1\r\nHost: a\r\n\r\n", R200 "\r\n", TD_CACHE_STORABLE },
		{ "POST", "POST http://a.example/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		  R200 "Cache-Control: max-age=60\r\n\r\n", TD_CACHE_NS_METHOD },
		{ "206 not stored", GET "\r\n", "HTTP/1.1 206 Partial\r\nCache-Control: max-age=60\r\n\r\n",
		  TD_CACHE_NS_STATUS },
		{ "304 not stored", GET "\r\n", "HTTP/1.1 304 Not Modified\r\n\r\n", TD_CACHE_NS_STATUS },
		{ "unknown status 299", GET "\r\n", "HTTP/1.1 299 X\r\nCache-Control: max-age=6\r\n\r\n",
		  TD_CACHE_NS_STATUS },
		{ "302 without freshness", GET "\r\n", "HTTP/1.1 302 Found\r\n\r\n", TD_CACHE_NS_NOT_CACHEABLE },
		{ "302 with max-age", GET "\r\n", "HTTP/1.1 302 Found\r\nCache-Control: max-age=5\r\n\r\n",
		  TD_CACHE_STORABLE },
		{ "302 with Expires", GET "\r\n", "HTTP/1.1 302 Found\r\n" D0 "Expires: 0\r\n\r\n",
		  TD_CACHE_STORABLE },
		{ "500 with public", GET "\r\n", "HTTP/1.1 500 E\r\nCache-Control: public\r\n\r\n",
		  TD_CACHE_STORABLE },
		{ "404 heuristic", GET "\r\n", "HTTP/1.1 404 NF\r\n\r\n", TD_CACHE_STORABLE },
		{ "request no-store", GET "Cache-Control: no-store\r\n\r\n", R200 "Cache-Control: max-age=60\r\n\r\n",
		  TD_CACHE_NS_REQ_NO_STORE },
		{ "response no-store", GET "\r\n", R200 "Cache-Control: max-age=60, no-store\r\n\r\n",
		  TD_CACHE_NS_NO_STORE },
		{ "no-store in second field", GET "\r\n", R200 "Cache-Control: max-age=60\r\nCache-Control: NO-STORE\r\n\r\n",
		  TD_CACHE_NS_NO_STORE },
		{ "private", GET "\r\n", R200 "Cache-Control: private, max-age=60\r\n\r\n", TD_CACHE_NS_PRIVATE },
		{ "private qualified", GET "\r\n", R200 "Cache-Control: private=\"set-cookie, x\"\r\n\r\n",
		  TD_CACHE_NS_PRIVATE },
		{ "no-cache is storable", GET "\r\n", R200 "Cache-Control: no-cache\r\n\r\n", TD_CACHE_STORABLE },
		{ "Authorization alone", GET "Authorization: Basic eDp5\r\n\r\n", R200 "Cache-Control: max-age=60\r\n\r\n",
		  TD_CACHE_NS_AUTHORIZATION },
		{ "Authorization + public", GET "Authorization: Basic eDp5\r\n\r\n", R200 "Cache-Control: public\r\n\r\n",
		  TD_CACHE_STORABLE },
		{ "Authorization + s-maxage", GET "Authorization: Basic eDp5\r\n\r\n", R200 "Cache-Control: s-maxage=5\r\n\r\n",
		  TD_CACHE_STORABLE },
		{ "Authorization + must-revalidate", GET "Authorization: Basic eDp5\r\n\r\n",
		  R200 "Cache-Control: must-revalidate\r\n\r\n", TD_CACHE_STORABLE },
		{ "Vary: *", GET "\r\n", R200 "Cache-Control: max-age=60\r\nVary: Accept, *\r\n\r\n", TD_CACHE_NS_VARY_STAR },
		{ "Vary: Accept", GET "\r\n", R200 "Cache-Control: max-age=60\r\nVary: Accept\r\n\r\n", TD_CACHE_STORABLE },
		{ "unknown directive ignored", GET "\r\n", R200 "Cache-Control: foo=\"a,no-store\", bar\r\n\r\n",
		  TD_CACHE_STORABLE },
		{ "quoted no-store inside value", GET "\r\n",
		  "HTTP/1.1 302 F\r\nCache-Control: ext=\"no-store\"\r\n\r\n", TD_CACHE_NS_NOT_CACHEABLE },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct td_http_msg *q = REQ(rows[i].req), *r = RESP(rows[i].resp);

		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		TD_ROW_EQ(rows[i].name, td_cache_storable(q, rows[i].req, r, rows[i].resp), rows[i].want);
	}
	CU_ASSERT_STRING_EQUAL(td_cache_nostore_name(TD_CACHE_NS_PRIVATE), "private");
	CU_ASSERT_STRING_EQUAL(td_cache_nostore_name(99), "unknown");
}

/* ---- freshness lifetime (RFC 9111 4.2.1, 4.2.2) ---- */
static void test_freshness(void)
{
	static const struct { const char *name, *resp; long long lifetime; int heuristic; } rows[] = {
		{ "s-maxage wins", R200 "Cache-Control: max-age=60, s-maxage=30\r\n" D0
		  "Expires: Sun, 06 Nov 1994 09:49:37 GMT\r\n\r\n", 30, 0 },
		{ "max-age over Expires", R200 "Cache-Control: max-age=60\r\n" D0
		  "Expires: Sun, 06 Nov 1994 09:49:37 GMT\r\n\r\n", 60, 0 },
		{ "quoted max-age", R200 "Cache-Control: max-age=\"42\"\r\n\r\n", 42, 0 },
		{ "Expires - Date", R200 D0 "Expires: Sun, 06 Nov 1994 08:50:37 GMT\r\n\r\n", 60, 0 },
		{ "Expires RFC 850", R200 D0 "Expires: Sunday, 06-Nov-94 08:50:37 GMT\r\n\r\n", 60, 0 },
		{ "Expires in the past", R200 D0 "Expires: Sun, 06 Nov 1994 08:00:00 GMT\r\n\r\n", 0, 0 },
		{ "Expires invalid (0)", R200 D0 "Expires: 0\r\nLast-Modified: Sun, 06 Nov 1994 08:32:57 GMT\r\n\r\n", 0, 0 },
		{ "Expires without Date uses response_time", R200 "Expires: Sun, 06 Nov 1994 08:51:37 GMT\r\n\r\n", 120, 0 },
		{ "max-age=0", R200 "Cache-Control: max-age=0\r\n\r\n", 0, 0 },
		{ "max-age huge capped", R200 "Cache-Control: max-age=99999999999999999999\r\n\r\n",
		  TD_CACHE_DELTA_MAX, 0 },
		{ "duplicate max-age: stale", R200 "Cache-Control: max-age=60, max-age=120\r\n\r\n", 0, 0 },
		{ "invalid max-age: stale", R200 "Cache-Control: max-age=abc\r\n" D0
		  "Last-Modified: Sun, 06 Nov 1994 08:32:57 GMT\r\n\r\n", 0, 0 },
		{ "heuristic 10% of Date - Last-Modified", R200 D0
		  "Last-Modified: Sun, 06 Nov 1994 08:32:57 GMT\r\n\r\n", 100, 1 },
		{ "heuristic capped at 1 day", R200 D0 "Last-Modified: Mon, 17 Oct 1994 08:49:37 GMT\r\n\r\n",
		  TD_CACHE_HEURISTIC_MAX, 1 },
		{ "heuristic for 404", "HTTP/1.1 404 NF\r\n" D0
		  "Last-Modified: Sun, 06 Nov 1994 08:32:57 GMT\r\n\r\n", 100, 1 },
		{ "no heuristic for 302", "HTTP/1.1 302 F\r\n" D0
		  "Last-Modified: Sun, 06 Nov 1994 08:32:57 GMT\r\n\r\n", 0, 0 },
		{ "heuristic for 500 with public", "HTTP/1.1 500 E\r\nCache-Control: public\r\n" D0
		  "Last-Modified: Sun, 06 Nov 1994 08:32:57 GMT\r\n\r\n", 100, 1 },
		{ "no heuristic without Last-Modified", R200 D0 "\r\n", 0, 0 },
		{ "no heuristic with explicit Expires", R200 D0 "Expires: Sun, 06 Nov 1994 08:49:47 GMT\r\n"
		  "Last-Modified: Sun, 06 Nov 1994 08:32:57 GMT\r\n\r\n", 10, 0 },
		{ "Last-Modified in the future", R200 D0 "Last-Modified: Sun, 06 Nov 1994 09:00:00 GMT\r\n\r\n", 0, 0 },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct td_http_msg *r = RESP(rows[i].resp);
		struct td_cache_meta m;

		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		TD_ROW_EQ(rows[i].name, td_cache_meta_init(&m, r, rows[i].resp, T0 - 1, T0), 0);
		TD_ROW_EQ(rows[i].name, m.lifetime, rows[i].lifetime);
		TD_ROW_EQ(rows[i].name, m.heuristic, rows[i].heuristic);
	}
}

/* ---- age (RFC 9111 4.2.3) and the Age field to send ---- */
static void test_age(void)
{
	/* request sent at T0 - 2, response received at T0 (response_delay 2) */
	static const struct { const char *name, *resp; long long now, age; } rows[] = {
		{ "no Date, no Age: delay + resident", R200 "\r\n", T0 + 10, 12 },
		{ "Date = response_time", R200 D0 "\r\n", T0, 2 },
		{ "apparent age wins", R200 "Date: Sun, 06 Nov 1994 08:49:27 GMT\r\n\r\n", T0, 10 },
		{ "corrected Age wins", R200 D0 "Age: 100\r\n\r\n", T0 + 5, 107 },
		{ "Age plus apparent: max of both", R200 "Date: Sun, 06 Nov 1994 08:48:37 GMT\r\nAge: 30\r\n\r\n",
		  T0 + 1, 61 },
		{ "Date in the future: apparent 0", R200 "Date: Sun, 06 Nov 1994 09:49:37 GMT\r\n\r\n", T0, 2 },
		{ "invalid Age ignored", R200 D0 "Age: -5\r\n\r\n", T0, 2 },
		{ "Age list: first member", R200 D0 "Age: 7, 100\r\n\r\n", T0, 9 },
		{ "Age capped at 2^31", R200 D0 "Age: 9999999999999\r\n\r\n", T0, TD_CACHE_DELTA_MAX },
	};
	char v[24];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct td_http_msg *r = RESP(rows[i].resp);
		struct td_cache_meta m;

		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		CU_ASSERT_EQUAL_FATAL(td_cache_meta_init(&m, r, rows[i].resp, T0 - 2, T0), 0);
		TD_ROW_EQ(rows[i].name, td_cache_current_age(&m, rows[i].now), rows[i].age);
	}
	{
		const char *s = R200 D0 "Age: 100\r\n\r\n";
		struct td_cache_meta m;

		CU_ASSERT_EQUAL_FATAL(td_cache_meta_init(&m, RESP(s), s, T0 - 2, T0), 0);
		TD_ROW_EQ("Age value", td_cache_age_value(&m, T0 + 5, v, sizeof(v)), 3);
		TD_ROW_STR("Age value", v, "107");
		TD_ROW_EQ("Age value small", td_cache_age_value(&m, T0 + 5, v, 3), -ENOSPC);
		TD_ROW_EQ("response before request", td_cache_meta_init(&m, RESP(s), s, T0, T0 - 1), -EINVAL);
	}
}

/* ---- serve or revalidate (RFC 9111 4.2.4, 5.2.1, 5.2.2) ---- */
static void test_use(void)
{
	static const struct {
		const char *name, *resp, *req;
		long long now;
		int use, fwd;
	} rows[] = {
		{ "fresh", R200 D0 "Cache-Control: max-age=60\r\n\r\n", GET "\r\n", T0 + 30,
		  TD_CACHE_USE_FRESH, TD_CACHE_FWD_NONE },
		{ "stale at lifetime", R200 D0 "Cache-Control: max-age=60\r\n\r\n", GET "\r\n", T0 + 60,
		  TD_CACHE_USE_REVALIDATE, TD_CACHE_FWD_STALE },
		{ "request no-cache", R200 D0 "Cache-Control: max-age=60\r\n\r\n",
		  GET "Cache-Control: no-cache\r\n\r\n", T0 + 1, TD_CACHE_USE_REVALIDATE, TD_CACHE_FWD_REQUEST },
		{ "request max-age=0", R200 D0 "Cache-Control: max-age=60\r\n\r\n",
		  GET "Cache-Control: max-age=0\r\n\r\n", T0, TD_CACHE_USE_REVALIDATE, TD_CACHE_FWD_REQUEST },
		{ "request max-age older", R200 D0 "Cache-Control: max-age=60\r\n\r\n",
		  GET "Cache-Control: max-age=10\r\n\r\n", T0 + 11, TD_CACHE_USE_REVALIDATE, TD_CACHE_FWD_REQUEST },
		{ "request max-age young enough", R200 D0 "Cache-Control: max-age=60\r\n\r\n",
		  GET "Cache-Control: max-age=10\r\n\r\n", T0 + 10, TD_CACHE_USE_FRESH, TD_CACHE_FWD_NONE },
		{ "Pragma: no-cache", R200 D0 "Cache-Control: max-age=60\r\n\r\n",
		  GET "Pragma: no-cache\r\n\r\n", T0, TD_CACHE_USE_REVALIDATE, TD_CACHE_FWD_REQUEST },
		{ "Pragma ignored with Cache-Control", R200 D0 "Cache-Control: max-age=60\r\n\r\n",
		  GET "Pragma: no-cache\r\nCache-Control: max-stale\r\n\r\n", T0, TD_CACHE_USE_FRESH, TD_CACHE_FWD_NONE },
		{ "min-fresh not met", R200 D0 "Cache-Control: max-age=60\r\n\r\n",
		  GET "Cache-Control: min-fresh=40\r\n\r\n", T0 + 30, TD_CACHE_USE_REVALIDATE, TD_CACHE_FWD_REQUEST },
		{ "response no-cache", R200 D0 "Cache-Control: max-age=60, no-cache\r\n\r\n", GET "\r\n", T0 + 1,
		  TD_CACHE_USE_REVALIDATE, TD_CACHE_FWD_STALE },
		{ "max-stale serves stale", R200 D0 "Cache-Control: max-age=60\r\n\r\n",
		  GET "Cache-Control: max-stale=30\r\n\r\n", T0 + 80, TD_CACHE_USE_STALE, TD_CACHE_FWD_NONE },
		{ "max-stale too small", R200 D0 "Cache-Control: max-age=60\r\n\r\n",
		  GET "Cache-Control: max-stale=10\r\n\r\n", T0 + 80, TD_CACHE_USE_REVALIDATE, TD_CACHE_FWD_STALE },
		{ "max-stale any", R200 D0 "Cache-Control: max-age=60\r\n\r\n",
		  GET "Cache-Control: max-stale\r\n\r\n", T0 + 8000, TD_CACHE_USE_STALE, TD_CACHE_FWD_NONE },
		{ "must-revalidate beats max-stale", R200 D0 "Cache-Control: max-age=60, must-revalidate\r\n\r\n",
		  GET "Cache-Control: max-stale\r\n\r\n", T0 + 80, TD_CACHE_USE_REVALIDATE, TD_CACHE_FWD_STALE },
		{ "proxy-revalidate beats max-stale", R200 D0 "Cache-Control: max-age=60, proxy-revalidate\r\n\r\n",
		  GET "Cache-Control: max-stale\r\n\r\n", T0 + 80, TD_CACHE_USE_REVALIDATE, TD_CACHE_FWD_STALE },
		{ "s-maxage implies proxy-revalidate", R200 D0 "Cache-Control: s-maxage=60\r\n\r\n",
		  GET "Cache-Control: max-stale\r\n\r\n", T0 + 80, TD_CACHE_USE_REVALIDATE, TD_CACHE_FWD_STALE },
		{ "must-revalidate while fresh", R200 D0 "Cache-Control: max-age=60, must-revalidate\r\n\r\n",
		  GET "\r\n", T0 + 59, TD_CACHE_USE_FRESH, TD_CACHE_FWD_NONE },
		{ "only-if-cached fresh", R200 D0 "Cache-Control: max-age=60\r\n\r\n",
		  GET "Cache-Control: only-if-cached\r\n\r\n", T0 + 1, TD_CACHE_USE_FRESH, TD_CACHE_FWD_NONE },
		{ "only-if-cached stale: 504", R200 D0 "Cache-Control: max-age=60\r\n\r\n",
		  GET "Cache-Control: only-if-cached\r\n\r\n", T0 + 61, TD_CACHE_USE_GATEWAY_TIMEOUT, TD_CACHE_FWD_STALE },
		{ "heuristic fresh", R200 D0 "Last-Modified: Sun, 06 Nov 1994 08:32:57 GMT\r\n\r\n", GET "\r\n",
		  T0 + 99, TD_CACHE_USE_FRESH, TD_CACHE_FWD_NONE },
		{ "heuristic stale", R200 D0 "Last-Modified: Sun, 06 Nov 1994 08:32:57 GMT\r\n\r\n", GET "\r\n",
		  T0 + 100, TD_CACHE_USE_REVALIDATE, TD_CACHE_FWD_STALE },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct td_http_msg *r = RESP(rows[i].resp), *q = REQ(rows[i].req);
		struct td_cache_decision d;
		struct td_cache_meta m;

		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		CU_ASSERT_EQUAL_FATAL(td_cache_meta_init(&m, r, rows[i].resp, T0, T0), 0);
		TD_ROW_EQ(rows[i].name, td_cache_use(&m, q, rows[i].req, rows[i].now, &d), 0);
		TD_ROW_EQ(rows[i].name, d.use, rows[i].use);
		TD_ROW_EQ(rows[i].name, d.fwd, rows[i].fwd);
		TD_ROW_EQ(rows[i].name, d.age, rows[i].now - T0);
	}
}

/* ---- conditional request (RFC 9111 4.3.1) ---- */
static void test_conditional(void)
{
	static const struct { const char *name, *stored; int rc; const char *want; } rows[] = {
		{ "ETag", R200 "ETag: \"v1\"\r\n\r\n", 21, "If-None-Match: \"v1\"\r\n" },
		{ "weak ETag", R200 "ETag: W/\"v1\"\r\n\r\n", 23, "If-None-Match: W/\"v1\"\r\n" },
		{ "Last-Modified", R200 "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n", 50,
		  "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n" },
		{ "both", R200 "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nETag: \"a\"\r\n\r\n", 70,
		  "If-None-Match: \"a\"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n" },
		{ "no validator", R200 D0 "\r\n", -ENOENT, "" },
	};
	char out[256];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct td_http_msg *s = RESP(rows[i].stored);

		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		TD_ROW_EQ(rows[i].name, td_cache_conditional(s, rows[i].stored, out, sizeof(out)), rows[i].rc);
		TD_ROW_STR(rows[i].name, out, rows[i].want);
	}
	TD_ROW_EQ("too small", td_cache_conditional(RESP(rows[0].stored), rows[0].stored, out, 10), -ENOSPC);
}

/* ---- 304 merge (RFC 9111 3.2, 4.3.4) ---- */
static void test_merge_304(void)
{
	static const char stored[] = R200 "Date: Sun, 06 Nov 1994 08:00:00 GMT\r\nETag: \"v1\"\r\n"
				     "Content-Length: 5\r\nCache-Control: max-age=10\r\nX-A: 1\r\n\r\n";
	static const struct { const char *name, *nm; int ok; const char *want; } rows[] = {
		{ "strong match updates", "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n" D0
		  "Cache-Control: max-age=60\r\nConnection: close\r\nContent-Length: 0\r\nX-B: 2\r\n\r\n", 1,
		  R200 "Content-Length: 5\r\nX-A: 1\r\nETag: \"v1\"\r\n" D0 "Cache-Control: max-age=60\r\nX-B: 2\r\n\r\n" },
		{ "weak 304 ETag matches", "HTTP/1.1 304 NM\r\nETag: W/\"v1\"\r\n" D0 "\r\n", 1,
		  R200 "Content-Length: 5\r\nCache-Control: max-age=10\r\nX-A: 1\r\nETag: W/\"v1\"\r\n" D0 "\r\n" },
		{ "no validator: the conditional we sent", "HTTP/1.1 304 NM\r\n" D0 "\r\n", 1,
		  R200 "ETag: \"v1\"\r\nContent-Length: 5\r\nCache-Control: max-age=10\r\nX-A: 1\r\n" D0 "\r\n" },
		{ "other strong ETag: not selected", "HTTP/1.1 304 NM\r\nETag: \"v2\"\r\n\r\n", 0, "" },
		{ "Last-Modified mismatch: not selected",
		  "HTTP/1.1 304 NM\r\nLast-Modified: Sun, 06 Nov 1994 08:00:00 GMT\r\n\r\n", 0, "" },
	};
	char out[512];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct td_http_msg *s = RESP(stored);
		const struct td_http_msg *n = td_tparse(&td_p3, TD_HTTP_RESPONSE, rows[i].nm, TD_HTTP_M_GET);
		int rc;

		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		CU_ASSERT_PTR_NOT_NULL_FATAL(n);
		out[0] = '\0';
		rc = td_cache_merge_304(s, stored, n, rows[i].nm, out, sizeof(out));
		if (!rows[i].ok) {
			TD_ROW_EQ(rows[i].name, rc, -ESTALE);
			continue;
		}
		TD_ROW_EQ(rows[i].name, rc, (long long)strlen(rows[i].want));
		TD_ROW_STR(rows[i].name, out, rows[i].want);
		/* the merged head parses and its freshness comes from the 304 */
		CU_ASSERT_PTR_NOT_NULL(RESP(out));
	}
	{
		const char *nm = "HTTP/1.1 304 NM\r\n\r\n";
		const struct td_http_msg *n = td_tparse(&td_p3, TD_HTTP_RESPONSE, nm, TD_HTTP_M_GET);

		TD_ROW_EQ("out too small", td_cache_merge_304(RESP(stored), stored, n, nm, out, 20), -ENOSPC);
		TD_ROW_EQ("not a 304", td_cache_merge_304(RESP(stored), stored, RESP(stored), stored, out,
							  sizeof(out)), -EINVAL);
	}
}

/* ---- secondary key from Vary (RFC 9111 4.1) ---- */
static void test_vary(void)
{
	static const struct { const char *name, *resp, *req; int rc; const char *want; } rows[] = {
		{ "no Vary", R200 "\r\n", GET "Accept: a\r\n\r\n", 0, "" },
		{ "one field", R200 "Vary: Accept-Encoding\r\n\r\n", GET "Accept-Encoding: gzip\r\n\r\n", 0,
		  "accept-encoding:gzip\n" },
		{ "absent differs from empty", R200 "Vary: X-Y\r\n\r\n", GET "\r\n", 0, "x-y\n" },
		{ "empty value", R200 "Vary: X-Y\r\n\r\n", GET "X-Y:\r\n\r\n", 0, "x-y:\n" },
		{ "lines combined, OWS dropped, case folded", R200 "Vary: accept-encoding\r\n\r\n",
		  GET "Accept-Encoding: GZIP ,br\r\nAccept-Encoding:  deflate\r\n\r\n", 0,
		  "accept-encoding:gzip, br, deflate\n" },
		{ "case kept for other fields", R200 "Vary: X-A\r\n\r\n", GET "X-A: AbC\r\n\r\n", 0, "x-a:AbC\n" },
		{ "names sorted and once", R200 "Vary: X-B, x-a\r\nVary: X-B\r\n\r\n", GET "X-A: 1\r\nX-B: 2\r\n\r\n", 0,
		  "x-a:1\nx-b:2\n" },
		{ "Vary: *", R200 "Vary: Accept, *\r\n\r\n", GET "\r\n", -ENOENT, "" },
	};
	char out[256];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct td_http_msg *r = RESP(rows[i].resp), *q = REQ(rows[i].req);
		int rc;

		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		rc = td_cache_vary_key(r, rows[i].resp, q, rows[i].req, out, sizeof(out));
		TD_ROW_EQ(rows[i].name, rc, rows[i].rc ? rows[i].rc : (long long)strlen(rows[i].want));
		if (!rows[i].rc)
			TD_ROW_STR(rows[i].name, out, rows[i].want);
	}
	{	/* two requests that differ only in whitespace and case share a key */
		const char *r = R200 "Vary: Accept-Language\r\n\r\n";
		const char *q1 = GET "Accept-Language: en, FR\r\n\r\n", *q2 = GET "Accept-Language: EN,fr\r\n\r\n";
		char k2[64];

		CU_ASSERT(td_cache_vary_key(RESP(r), r, REQ(q1), q1, out, sizeof(out)) > 0);
		CU_ASSERT(td_cache_vary_key(RESP(r), r, REQ(q2), q2, k2, sizeof(k2)) > 0);
		CU_ASSERT_STRING_EQUAL(out, k2);
		TD_ROW_EQ("vary small", td_cache_vary_key(RESP(r), r, REQ(q1), q1, out, 8), -ENOSPC);
	}
}

/* ---- URI normalisation and primary key ---- */
static void test_uri(void)
{
	static const struct { const char *in; int rc; const char *want; } rows[] = {
		{ "http://a.example/x", 0, "http://a.example/x" },
		{ "HTTP://A.Example:80/X?q=%2f#frag", 0, "http://a.example/X?q=%2F" },
		{ "https://a.example:443", 0, "https://a.example/" },
		{ "https://a.example:8443/", 0, "https://a.example:8443/" },
		{ "http://a.example?q", 0, "http://a.example/?q" },
		{ "http://[::1]:80/", 0, "http://[::1]/" },
		{ "http://[::1]/", 0, "http://[::1]/" },
		{ "ftp://a.example/", -EINVAL, "" },
		{ "/relative", -EINVAL, "" },
		{ "http://u@a.example/", -EINVAL, "" },
		{ "http:///x", -EINVAL, "" },
	};
	char out[128];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int rc = td_cache_uri_normalize(rows[i].in, strlen(rows[i].in), out, sizeof(out));

		TD_ROW_EQ(rows[i].in, rc, rows[i].rc ? rows[i].rc : (long long)strlen(rows[i].want));
		if (!rows[i].rc)
			TD_ROW_STR(rows[i].in, out, rows[i].want);
	}
	TD_ROW_EQ("key GET", td_cache_key(TD_HTTP_M_GET, "http://A/x", 10, out, sizeof(out)), 14);
	TD_ROW_STR("key GET", out, "GET http://a/x");
	TD_ROW_EQ("key HEAD", td_cache_key(TD_HTTP_M_HEAD, "http://a", 8, out, sizeof(out)), 14);
	TD_ROW_STR("key HEAD", out, "HEAD http://a/");
	TD_ROW_EQ("key POST", td_cache_key(TD_HTTP_M_POST, "http://a", 8, out, sizeof(out)), -EINVAL);
	TD_ROW_EQ("key small", td_cache_key(TD_HTTP_M_GET, "http://a/xyz", 12, out, 8), -ENOSPC);
}

/* ---- invalidation after unsafe methods (RFC 9111 4.4) ---- */
static void test_invalidation(void)
{
#define POST	"POST http://a.example/d/x HTTP/1.1\r\nHost: a.example\r\nContent-Length: 0\r\n\r\n"
	static const struct {
		const char *name, *req, *resp;
		int n;
		const char *u[3];
	} rows[] = {
		{ "GET invalidates nothing", GET "\r\n", R200 "\r\n", 0, { NULL } },
		{ "POST 200: target", POST, R200 "\r\n", 1, { "http://a.example/d/x" } },
		{ "POST 500: nothing", POST, "HTTP/1.1 500 E\r\n\r\n", 0, { NULL } },
		{ "POST 404: nothing", POST, "HTTP/1.1 404 E\r\n\r\n", 0, { NULL } },
		{ "PUT 201 + Location absolute-path", "PUT http://a.example/d/x HTTP/1.1\r\nHost: a\r\n"
		  "Content-Length: 0\r\n\r\n", "HTTP/1.1 201 C\r\nLocation: /new\r\n\r\n", 2,
		  { "http://a.example/d/x", "http://a.example/new" } },
		{ "DELETE + relative Content-Location", "DELETE http://a.example/d/x HTTP/1.1\r\nHost: a\r\n\r\n",
		  "HTTP/1.1 204 N\r\nContent-Location: y?z\r\n\r\n", 2,
		  { "http://a.example/d/x", "http://a.example/d/y?z" } },
		{ "PATCH + both, other origin dropped", "PATCH http://a.example/d/x HTTP/1.1\r\nHost: a\r\n"
		  "Content-Length: 0\r\n\r\n", "HTTP/1.1 303 S\r\nLocation: http://evil.example/x\r\n"
		  "Content-Location: HTTP://A.EXAMPLE:80/c\r\n\r\n", 2,
		  { "http://a.example/d/x", "http://a.example/c" } },
		{ "other port is another origin", POST, "HTTP/1.1 302 F\r\nLocation: http://a.example:8080/x\r\n\r\n",
		  1, { "http://a.example/d/x" } },
		{ "network-path reference", POST, "HTTP/1.1 302 F\r\nLocation: //a.example/n\r\n\r\n",
		  2, { "http://a.example/d/x", "http://a.example/n" } },
		{ "Location = target counted once", POST, "HTTP/1.1 302 F\r\nLocation: /d/x\r\n\r\n",
		  1, { "http://a.example/d/x" } },
		{ "unknown method is unsafe", "PURGE http://a.example/d/x HTTP/1.1\r\nHost: a\r\n\r\n", R200 "\r\n",
		  1, { "http://a.example/d/x" } },
	};
#undef POST
	char out[3][TD_CACHE_URI_MAX];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct td_http_msg *q = REQ(rows[i].req), *r = RESP(rows[i].resp);
		int n;

		CU_ASSERT_PTR_NOT_NULL_FATAL(q);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		n = td_cache_invalidations(q, "http://a.example/d/x", r, rows[i].resp, out, 3);
		TD_ROW_EQ(rows[i].name, n, rows[i].n);
		for (int k = 0; k < n && k < rows[i].n; k++)
			TD_ROW_STR(rows[i].name, out[k], rows[i].u[k]);
	}
}

/* ---- Cache-Status (RFC 9211) ---- */
static void test_cache_status(void)
{
	static const struct { struct td_cache_status s; int rc; const char *want; } rows[] = {
		{ { .hit = true }, 0, "td; hit" },
		{ { .hit = true, .has_ttl = true, .ttl = 30 }, 0, "td; hit; ttl=30" },
		{ { .hit = true, .has_ttl = true, .ttl = -5 }, 0, "td; hit; ttl=-5" },
		{ { .fwd = TD_CACHE_FWD_MISS, .stored = true }, 0, "td; fwd=miss; stored" },
		{ { .fwd = TD_CACHE_FWD_URI_MISS, .fwd_status = 200, .stored = true, .collapsed = true }, 0,
		  "td; fwd=uri-miss; fwd-status=200; stored; collapsed" },
		{ { .fwd = TD_CACHE_FWD_STALE, .fwd_status = 304 }, 0, "td; fwd=stale; fwd-status=304" },
		{ { .fwd = TD_CACHE_FWD_REQUEST, .fwd_status = 200, .stored = true }, 0,
		  "td; fwd=request; fwd-status=200; stored" },
		{ { .fwd = TD_CACHE_FWD_VARY_MISS }, 0, "td; fwd=vary-miss" },
		{ { .fwd = TD_CACHE_FWD_METHOD }, 0, "td; fwd=method" },
		{ { .fwd = TD_CACHE_FWD_BYPASS, .detail = "no-store" }, 0, "td; fwd=bypass; detail=\"no-store\"" },
		{ { .fwd = TD_CACHE_FWD_BYPASS, .detail = "a\"b\\" }, 0, "td; fwd=bypass; detail=\"a\\\"b\\\\\"" },
		{ { .hit = true, .fwd = TD_CACHE_FWD_MISS }, -EINVAL, "" },
		{ { .fwd = TD_CACHE_FWD_BYPASS, .detail = "bad\n" }, -EINVAL, "" },
	};
	char out[128];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int rc = td_cache_status_format("td", &rows[i].s, out, sizeof(out));

		TD_ROW_EQ(rows[i].want, rc, rows[i].rc ? rows[i].rc : (long long)strlen(rows[i].want));
		if (!rows[i].rc)
			TD_ROW_STR(rows[i].want, out, rows[i].want);
	}
	TD_ROW_EQ("small", td_cache_status_format("td", &rows[3].s, out, 12), -ENOSPC);
}

/* ---- store: LRU within a budget, max object, refcounts, variants ---- */
static struct td_cache_meta td_tmeta = { .request_time = T0, .response_time = T0, .lifetime = 60 };

static int td_tput(struct td_cache_store *s, const char *key, const char *vkey, size_t body_len,
		   struct td_cache_obj **out)
{
	static const char body[4096];

	if (body_len > sizeof(body))
		return -E2BIG;

	return td_cache_store_put(s, key, vkey, &td_tmeta, R200 "\r\n", sizeof(R200 "\r\n") - 1,
				  body, body_len, out);
}

static bool td_tpresent(struct td_cache_store *s, const char *key)
{
	struct td_cache_obj *o = td_cache_store_get(s, key, "");

	td_cache_obj_put(o);
	return o != NULL;
}

static void test_store_lru(void)
{
	struct td_cache_store_stats st;
	struct td_cache_store *s;
	struct td_cache_obj *o;
	size_t charge;

	/* measure one object's charge, then allow exactly three */
	s = td_cache_store_new(1 << 20, 1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(td_tput(s, "k1", "", 100, &o), 0);
	charge = o->charge;
	CU_ASSERT(charge >= 100 + sizeof(R200 "\r\n") - 1);
	td_cache_obj_put(o);
	td_cache_store_free(s);

	s = td_cache_store_new(3 * charge, 1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(td_tput(s, "k1", "", 100, NULL), 0);
	CU_ASSERT_EQUAL(td_tput(s, "k2", "", 100, NULL), 0);
	CU_ASSERT_EQUAL(td_tput(s, "k3", "", 100, NULL), 0);
	td_cache_store_stats(s, &st);
	CU_ASSERT_EQUAL(st.objects, 3);
	CU_ASSERT_EQUAL(st.bytes, 3 * charge);
	CU_ASSERT(td_tpresent(s, "k1"));		/* k1 is now the most recent: k2 is the LRU */
	CU_ASSERT_EQUAL(td_tput(s, "k4", "", 100, NULL), 0);
	CU_ASSERT_FALSE(td_tpresent(s, "k2"));
	CU_ASSERT(td_tpresent(s, "k1"));
	CU_ASSERT(td_tpresent(s, "k3"));
	CU_ASSERT(td_tpresent(s, "k4"));
	td_cache_store_stats(s, &st);
	CU_ASSERT_EQUAL(st.evictions, 1);
	CU_ASSERT_EQUAL(st.objects, 3);
	/* order now k1 k3 k4 (LRU first): a double-size object evicts k1 and k3 */
	CU_ASSERT_EQUAL(td_tput(s, "k5", "", 100 + charge, NULL), 0);
	CU_ASSERT_FALSE(td_tpresent(s, "k1"));
	CU_ASSERT_FALSE(td_tpresent(s, "k3"));
	CU_ASSERT(td_tpresent(s, "k4"));
	CU_ASSERT(td_tpresent(s, "k5"));
	td_cache_store_stats(s, &st);
	CU_ASSERT_EQUAL(st.evictions, 3);
	CU_ASSERT(st.bytes <= 3 * charge);
	/* larger than the whole budget: refused, nothing evicted */
	CU_ASSERT_EQUAL(td_tput(s, "big", "", 200 + 2 * charge, NULL), -EFBIG);
	CU_ASSERT(td_tpresent(s, "k4"));
	td_cache_store_free(s);

	/* many keys: the index grows and every object stays reachable */
	s = td_cache_store_new(1 << 24, 1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (int i = 0; i < 1000; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		CU_ASSERT_EQUAL(td_tput(s, k, "", 1, NULL), 0);
	}
	for (int i = 0; i < 1000; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		CU_ASSERT(td_tpresent(s, k));
	}
	td_cache_store_free(s);
}

static void test_store_max_object(void)
{
	struct td_cache_store *s = td_cache_store_new(1 << 20, 100);
	size_t head = sizeof(R200 "\r\n") - 1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(td_tput(s, "ok", "", 100 - head, NULL), 0);
	CU_ASSERT_EQUAL(td_tput(s, "big", "", 101 - head, NULL), -EFBIG);
	CU_ASSERT(td_tpresent(s, "ok"));
	CU_ASSERT_FALSE(td_tpresent(s, "big"));
	CU_ASSERT_EQUAL(td_cache_store_put(s, NULL, "", &td_tmeta, "x", 1, NULL, 0, NULL), -EINVAL);
	td_cache_store_free(s);
	CU_ASSERT_PTR_NULL(td_cache_store_new(0, 1));
	CU_ASSERT_EQUAL(errno, EINVAL);
}

static void test_store_refcount(void)
{
	struct td_cache_store *s = td_cache_store_new(1 << 20, 1 << 20);
	struct td_cache_obj *a, *b, *c;
	struct td_cache_store_stats st;
	size_t head = sizeof(R200 "\r\n") - 1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(td_tput(s, "a", "", 10, &a), 0);
	/* a client streams a; a budget squeeze evicts it: the bytes stay valid for the client */
	CU_ASSERT_EQUAL(a->refs, 2);
	td_cache_store_free(s);
	s = td_cache_store_new(a->charge + 1, 1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_FALSE(a->linked);		/* the old store is gone, a lives on */
	CU_ASSERT_EQUAL(a->refs, 1);
	CU_ASSERT_NSTRING_EQUAL(a->data, R200, sizeof(R200) - 1);
	td_cache_obj_put(a);

	CU_ASSERT_EQUAL_FATAL(td_tput(s, "a", "", 10, &a), 0);
	CU_ASSERT_EQUAL_FATAL(td_tput(s, "b", "", 10, NULL), 0);	/* evicts a */
	CU_ASSERT_FALSE(a->linked);
	CU_ASSERT_FALSE(td_tpresent(s, "a"));
	CU_ASSERT_EQUAL(a->body_len, 10);
	CU_ASSERT_NSTRING_EQUAL(a->data, R200, sizeof(R200) - 1);
	td_cache_store_stats(s, &st);
	CU_ASSERT_EQUAL(st.objects, 1);
	td_cache_obj_put(a);			/* freed here (ASan checks the rest) */

	/* replacement and removal keep referenced objects alive too */
	td_cache_store_free(s);
	s = td_cache_store_new(1 << 20, 1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(td_tput(s, "b", "", 10, NULL), 0);
	b = td_cache_store_get(s, "b", "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL_FATAL(td_tput(s, "b", "", 12, &c), 0);
	CU_ASSERT_FALSE(b->linked);
	CU_ASSERT_EQUAL(b->body_len, 10);
	CU_ASSERT(c->linked);
	CU_ASSERT_EQUAL(c->head_len + c->body_len, head + 12);
	CU_ASSERT_EQUAL(td_cache_store_remove(s, "b"), 1);
	CU_ASSERT_FALSE(c->linked);
	CU_ASSERT_EQUAL(c->refs, 1);
	td_cache_obj_put(b);
	td_cache_obj_put(c);
	td_cache_obj_put(NULL);
	td_cache_store_stats(s, &st);
	CU_ASSERT_EQUAL(st.objects, 0);
	CU_ASSERT_EQUAL(st.bytes, 0);
	td_cache_store_free(s);
}

static bool td_match_vkey(const struct td_cache_obj *o, void *arg)
{
	return !strcmp(o->vkey, arg);
}

static void test_store_variants(void)
{
	struct td_cache_store *s = td_cache_store_new(1 << 20, 1 << 20);
	struct td_cache_obj *o;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(td_tput(s, "GET http://a/", "accept-encoding:gzip\n", 1, NULL), 0);
	CU_ASSERT_EQUAL(td_tput(s, "GET http://a/", "accept-encoding:br\n", 2, NULL), 0);
	CU_ASSERT_EQUAL(td_tput(s, "GET http://b/", "", 3, NULL), 0);
	o = td_cache_store_get(s, "GET http://a/", "accept-encoding:br\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_EQUAL(o->body_len, 2);
	td_cache_obj_put(o);
	CU_ASSERT_PTR_NULL(td_cache_store_get(s, "GET http://a/", ""));
	CU_ASSERT_EQUAL(errno, ENOENT);
	o = td_cache_store_find(s, "GET http://a/", td_match_vkey, "accept-encoding:gzip\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_EQUAL(o->body_len, 1);
	td_cache_obj_put(o);
	CU_ASSERT_PTR_NULL(td_cache_store_find(s, "GET http://a/", td_match_vkey, "x"));
	CU_ASSERT_EQUAL(td_cache_store_remove(s, "GET http://a/"), 2);
	CU_ASSERT_EQUAL(td_cache_store_remove(s, "GET http://a/"), 0);
	CU_ASSERT(td_tpresent(s, "GET http://b/"));
	/* without a match function: the most recently received variant */
	{
		struct td_cache_meta newer = td_tmeta;

		newer.response_time = T0 + 5;
		CU_ASSERT_EQUAL(td_tput(s, "GET http://c/", "v1", 1, NULL), 0);
		CU_ASSERT_EQUAL(td_cache_store_put(s, "GET http://c/", "v2", &newer, "h", 1, NULL, 0, NULL), 0);
		CU_ASSERT_EQUAL(td_tput(s, "GET http://c/", "v3", 1, NULL), 0);
		o = td_cache_store_find(s, "GET http://c/", NULL, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(o);
		CU_ASSERT_STRING_EQUAL(o->vkey, "v2");
		td_cache_obj_put(o);
	}
	td_cache_store_free(s);
}

/* ---- collapse: one filler per key, waiters called back in order ---- */
struct td_twait {
	struct td_cache_waiter w;
	int calls;
	int err;
	struct td_cache_obj *obj;	/* referenced when kept */
	int order;
};

static int td_torder;

static void td_twait_cb(void *arg, struct td_cache_obj *obj, int err)
{
	struct td_twait *t = arg;

	t->calls++;
	t->err = err;
	t->obj = obj ? td_cache_obj_get(obj) : NULL;
	t->order = ++td_torder;
}

static struct td_cache_store *td_rejoin_store;
static struct td_twait td_rejoin;

/* a waiter that joins again from its callback (e.g. its variant did not match) */
static void td_rejoin_cb(void *arg, struct td_cache_obj *obj, int err)
{
	struct td_twait *t = arg;

	t->calls++;
	t->err = td_cache_collapse_join(td_rejoin_store, "k", &td_rejoin.w);
}

static void test_collapse(void)
{
	struct td_cache_store *s = td_cache_store_new(1 << 20, 1 << 20);
	struct td_twait w[100], again = { 0 };
	struct td_cache_store_stats st;
	struct td_cache_obj *o;
	int called;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memset(w, 0, sizeof(w));
	td_torder = 0;
	/* 100 concurrent misses: the first fills, 99 wait */
	for (int i = 0; i < 100; i++) {
		w[i].w.cb = td_twait_cb;
		w[i].w.arg = &w[i];
		CU_ASSERT_EQUAL(td_cache_collapse_join(s, "k", &w[i].w), i == 0 ? 1 : 0);
	}
	td_cache_store_stats(s, &st);
	CU_ASSERT_EQUAL(st.pending, 1);
	CU_ASSERT_EQUAL(td_cache_collapse_join(s, "other", &again.w), -EINVAL);	/* no callback */
	CU_ASSERT_EQUAL(td_cache_collapse_cancel(s, "k", &w[50].w), 0);	/* client went away */
	CU_ASSERT_EQUAL(td_cache_collapse_cancel(s, "k", &w[50].w), -ENOENT);
	CU_ASSERT_EQUAL(td_cache_collapse_cancel(s, "k", &w[99].w), 0);		/* the tail */
	again.w.cb = td_twait_cb;
	again.w.arg = &again;
	CU_ASSERT_EQUAL(td_cache_collapse_join(s, "k", &again.w), 0);		/* after the new tail */
	CU_ASSERT_EQUAL_FATAL(td_tput(s, "k", "", 5, &o), 0);
	called = td_cache_collapse_done(s, "k", o, 0);
	CU_ASSERT_EQUAL(called, 98);
	CU_ASSERT_EQUAL(again.calls, 1);
	CU_ASSERT_EQUAL(again.order, 98);
	td_cache_obj_put(again.obj);
	memset(&again, 0, sizeof(again));
	for (int i = 1; i < 100; i++) {
		bool cancelled = i == 50 || i == 99;

		CU_ASSERT_EQUAL(w[i].calls, cancelled ? 0 : 1);
		if (cancelled)
			continue;
		CU_ASSERT_PTR_EQUAL(w[i].obj, o);
		CU_ASSERT_EQUAL(w[i].err, 0);
		CU_ASSERT_EQUAL(w[i].order, i < 50 ? i : i - 1);
		td_cache_obj_put(w[i].obj);
	}
	CU_ASSERT_EQUAL(o->refs, 2);		/* the store's and ours: every waiter dropped its own */
	td_cache_obj_put(o);
	CU_ASSERT_EQUAL(td_cache_collapse_done(s, "k", NULL, -EIO), -ENOENT);
	td_cache_store_stats(s, &st);
	CU_ASSERT_EQUAL(st.pending, 0);

	/* the filler got nothing storable: waiters learn the error and fetch themselves */
	memset(w, 0, sizeof(w));
	w[0].w.cb = td_twait_cb;
	w[0].w.arg = &w[0];
	CU_ASSERT_EQUAL(td_cache_collapse_join(s, "n", &w[0].w), 1);
	CU_ASSERT_EQUAL(td_cache_collapse_join(s, "n", &w[0].w), 0);
	CU_ASSERT_EQUAL(td_cache_collapse_done(s, "n", NULL, -EIO), 1);
	CU_ASSERT_EQUAL(w[0].err, -EIO);
	CU_ASSERT_PTR_NULL(w[0].obj);

	/* a callback may join the same key again: it becomes the next filler */
	td_rejoin_store = s;
	memset(&td_rejoin, 0, sizeof(td_rejoin));
	td_rejoin.w.cb = td_rejoin_cb;
	td_rejoin.w.arg = &td_rejoin;
	CU_ASSERT_EQUAL(td_cache_collapse_join(s, "k", &again.w), -EINVAL);
	again.w.cb = td_twait_cb;
	again.w.arg = &again;
	CU_ASSERT_EQUAL(td_cache_collapse_join(s, "k", &again.w), 1);
	CU_ASSERT_EQUAL(td_cache_collapse_join(s, "k", &td_rejoin.w), 0);
	CU_ASSERT_EQUAL(td_cache_collapse_done(s, "k", NULL, -EAGAIN), 1);
	CU_ASSERT_EQUAL(td_rejoin.calls, 1);
	CU_ASSERT_EQUAL(td_rejoin.err, 1);
	td_cache_store_stats(s, &st);
	CU_ASSERT_EQUAL(st.pending, 1);
	td_cache_store_free(s);		/* frees the pending fill too */
}

int td_suite_cache(void)
{
	CU_pSuite s = CU_add_suite("proxy cache", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "HTTP-date formats", test_dates) ||
	    !CU_add_test(s, "storable table", test_storable) ||
	    !CU_add_test(s, "freshness lifetime table", test_freshness) ||
	    !CU_add_test(s, "age table", test_age) ||
	    !CU_add_test(s, "serve or revalidate table", test_use) ||
	    !CU_add_test(s, "conditional request", test_conditional) ||
	    !CU_add_test(s, "304 merge", test_merge_304) ||
	    !CU_add_test(s, "Vary secondary key", test_vary) ||
	    !CU_add_test(s, "URI normalisation and key", test_uri) ||
	    !CU_add_test(s, "invalidation after unsafe methods", test_invalidation) ||
	    !CU_add_test(s, "Cache-Status", test_cache_status) ||
	    !CU_add_test(s, "store: LRU eviction within the budget", test_store_lru) ||
	    !CU_add_test(s, "store: max object", test_store_max_object) ||
	    !CU_add_test(s, "store: references survive eviction", test_store_refcount) ||
	    !CU_add_test(s, "store: Vary variants, find, remove", test_store_variants) ||
	    !CU_add_test(s, "store: collapsed misses", test_collapse))
		return CU_get_error();
	return 0;
}

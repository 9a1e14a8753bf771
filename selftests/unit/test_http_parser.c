/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for the strict HTTP/1.1 parser and chunked decoder: one table row per rule. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/CUnit.h>

#include "chunked.h"
#include "parser.h"
#include "unit.h"

#define KA_ANY (-1)

/* one head: input, expected rc, status to answer, body kind, Content-Length, keep-alive */
struct td_hrow {
	const char *name;
	const char *in;
	int rc;
	int code;
	int body;
	unsigned long long cl;
	int ka;
	int req_method;		/* responses: the request's method */
};

#define OK(n, i, b, c, k)	{ n, i, TD_HTTP_DONE, 0, b, c, k, TD_HTTP_M_GET }
#define BAD(n, i, code)		{ n, i, TD_HTTP_ERROR, code, 0, 0, KA_ANY, TD_HTTP_M_GET }
#define RESP(n, m, i, b, c, k)	{ n, i, TD_HTTP_DONE, 0, b, c, k, m }

#define H "Host: a\r\n"
static const struct td_hrow td_req_rows[] = {
	OK("simple GET", "GET / HTTP/1.1\r\n" H "\r\n", TD_HTTP_BODY_NONE, 0, 1),
	OK("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", TD_HTTP_BODY_NONE, 0, 0),
	OK("HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", TD_HTTP_BODY_NONE, 0, 1),
	OK("HTTP/1.1 Connection: close", "GET / HTTP/1.1\r\n" H "Connection: x, close\r\n\r\n", TD_HTTP_BODY_NONE, 0, 0),
	OK("Content-Length", "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\n", TD_HTTP_BODY_LENGTH, 5, 1),
	OK("Content-Length 0", "POST / HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n", TD_HTTP_BODY_NONE, 0, 1),
	OK("Content-Length leading zeros", "POST / HTTP/1.1\r\n" H "Content-Length: 007\r\n\r\n", TD_HTTP_BODY_LENGTH, 7, 1),
	OK("Content-Length at body limit", "POST / HTTP/1.1\r\n" H "Content-Length: 1048576\r\n\r\n", TD_HTTP_BODY_LENGTH, 1048576, 1),
	OK("chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n\r\n", TD_HTTP_BODY_CHUNKED, 0, 1),
	OK("chunked any case, OWS", "POST / HTTP/1.1\r\n" H "Transfer-Encoding:  ChunKed \t\r\n\r\n", TD_HTTP_BODY_CHUNKED, 0, 1),
	OK("obs-text in value", "GET / HTTP/1.1\r\n" H "X: caf\xc3\xa9\r\n\r\n", TD_HTTP_BODY_NONE, 0, 1),
	OK("HTAB in value", "GET / HTTP/1.1\r\n" H "X: a\tb\r\n\r\n", TD_HTTP_BODY_NONE, 0, 1),
	OK("empty value", "GET / HTTP/1.1\r\n" H "X:\r\n\r\n", TD_HTTP_BODY_NONE, 0, 1),
	OK("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", TD_HTTP_BODY_NONE, 0, 1),
	OK("unknown method", "PURGE /x HTTP/1.1\r\n" H "\r\n", TD_HTTP_BODY_NONE, 0, 1),
	OK("OPTIONS *", "OPTIONS * HTTP/1.1\r\n" H "\r\n", TD_HTTP_BODY_NONE, 0, 1),
	OK("absolute-form", "GET http://a.example:8080/x?y HTTP/1.1\r\n" H "\r\n", TD_HTTP_BODY_NONE, 0, 1),
	OK("CONNECT authority-form", "CONNECT a.example:443 HTTP/1.1\r\n" H "\r\n", TD_HTTP_BODY_NONE, 0, 1),
	OK("CONNECT IPv6", "CONNECT [::1]:443 HTTP/1.1\r\n" H "\r\n", TD_HTTP_BODY_NONE, 0, 1),
	OK("leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", TD_HTTP_BODY_NONE, 0, 1),
	/* request line */
	BAD("five leading empty lines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("invalid method char", "G(T / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("empty method", " / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("two spaces", "GET  / HTTP/1.1\r\n" H "\r\n", 400),
	BAD("HTAB separator", "GET\t/ HTTP/1.1\r\n" H "\r\n", 400),
	BAD("no version", "GET /\r\n" H "\r\n", 400),
	BAD("trailing space after version", "GET / HTTP/1.1 \r\n" H "\r\n", 400),
	BAD("lower-case version", "GET / http/1.1\r\n" H "\r\n", 400),
	BAD("HTTP/1.2", "GET / HTTP/1.2\r\n" H "\r\n", 505),
	BAD("HTTP/2.0", "GET / HTTP/2.0\r\n" H "\r\n", 505),
	BAD("HTTP/0.9", "GET / HTTP/0.9\r\n" H "\r\n", 505),
	BAD("HTTP/1.10", "GET / HTTP/1.10\r\n" H "\r\n", 400),
	BAD("control char in target", "GET /\x01 HTTP/1.1\r\n" H "\r\n", 400),
	BAD("non-ASCII in target", "GET /\xc3\xa9 HTTP/1.1\r\n" H "\r\n", 400),
	BAD("fragment in target", "GET /a#b HTTP/1.1\r\n" H "\r\n", 400),
	BAD("asterisk outside OPTIONS", "GET * HTTP/1.1\r\n" H "\r\n", 400),
	BAD("CONNECT origin-form", "CONNECT /x HTTP/1.1\r\n" H "\r\n", 400),
	BAD("CONNECT without port", "CONNECT a.example HTTP/1.1\r\n" H "\r\n", 400),
	BAD("CONNECT port too big", "CONNECT a:65536 HTTP/1.1\r\n" H "\r\n", 400),
	BAD("relative target", "GET a/b HTTP/1.1\r\n" H "\r\n", 400),
	BAD("absolute without authority", "GET http:/x HTTP/1.1\r\n" H "\r\n", 400),
	/* line endings */
	BAD("bare LF after request line", "GET / HTTP/1.1\n" H "\r\n", 400),
	BAD("bare LF after field", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
	BAD("bare LF as final line", "GET / HTTP/1.1\r\n" H "\n", 400),
	BAD("bare CR in request line", "GET /\r HTTP/1.1\r\n" H "\r\n", 400),
	BAD("bare CR in value", "GET / HTTP/1.1\r\n" H "X: a\rb\r\n\r\n", 400),
	BAD("CR CR LF", "GET / HTTP/1.1\r\r\n" H "\r\n", 400),
	/* field lines */
	BAD("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
	BAD("HTAB before colon", "GET / HTTP/1.1\r\n" H "X\t: a\r\n\r\n", 400),
	BAD("obs-fold", "GET / HTTP/1.1\r\n" H "X: a\r\n b\r\n\r\n", 400),
	BAD("obs-fold HTAB", "GET / HTTP/1.1\r\n" H "X: a\r\n\tb\r\n\r\n", 400),
	BAD("first field starts with SP", "GET / HTTP/1.1\r\n X: a\r\n" H "\r\n", 400),
	BAD("invalid char in name", "GET / HTTP/1.1\r\n" H "X@Y: a\r\n\r\n", 400),
	BAD("non-ASCII in name", "GET / HTTP/1.1\r\n" H "X\xc3\xa9: a\r\n\r\n", 400),
	BAD("empty name", "GET / HTTP/1.1\r\n" H ": a\r\n\r\n", 400),
	BAD("no colon", "GET / HTTP/1.1\r\n" H "Xa\r\n\r\n", 400),
	BAD("NUL in value", "GET / HTTP/1.1\r\n" H "X: a\0b\r\n\r\n", 400),
	BAD("control char in value", "GET / HTTP/1.1\r\n" H "X: a\x01" "b\r\n\r\n", 400),
	BAD("DEL in value", "GET / HTTP/1.1\r\n" H "X: a\x7f\r\n\r\n", 400),
	/* Host */
	BAD("HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: a\r\n\r\n", 400),
	BAD("two Host", "GET / HTTP/1.1\r\n" H "host: b\r\n\r\n", 400),
	BAD("two Host in HTTP/1.0", "GET / HTTP/1.0\r\n" H H "\r\n", 400),
	/* Content-Length */
	BAD("CL and TE", "POST / HTTP/1.1\r\n" H "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	BAD("TE and CL", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
	BAD("duplicate CL same value", "POST / HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 3\r\n\r\n", 400),
	BAD("duplicate CL differing", "POST / HTTP/1.1\r\n" H "Content-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
	BAD("CL list 1, 1", "POST / HTTP/1.1\r\n" H "Content-Length: 1, 1\r\n\r\n", 400),
	BAD("CL empty", "POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", 400),
	BAD("CL negative", "POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n", 400),
	BAD("CL plus sign", "POST / HTTP/1.1\r\n" H "Content-Length: +1\r\n\r\n", 400),
	BAD("CL hex", "POST / HTTP/1.1\r\n" H "Content-Length: 0x10\r\n\r\n", 400),
	BAD("CL inner space", "POST / HTTP/1.1\r\n" H "Content-Length: 1 2\r\n\r\n", 400),
	BAD("CL 19 digits", "POST / HTTP/1.1\r\n" H "Content-Length: 1000000000000000000\r\n\r\n", 400),
	BAD("CL over body limit", "POST / HTTP/1.1\r\n" H "Content-Length: 1048577\r\n\r\n", 413),
	/* Transfer-Encoding */
	BAD("TE gzip only", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", 400),
	BAD("TE chunked not final", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
	BAD("TE gzip, chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
	BAD("TE unknown then chunked over two lines", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: foo\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
	BAD("TE chunked twice", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n\r\n", 400),
	BAD("TE chunked twice, two lines", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	BAD("TE identity", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\n\r\n", 400),
	BAD("TE empty", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: ,\r\n\r\n", 400),
	BAD("TE with parameter", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;q=1\r\n\r\n", 400),
	BAD("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	/* Connection */
	BAD("Connection with invalid token", "GET / HTTP/1.1\r\n" H "Connection: close;x\r\n\r\n", 400),
};

static const struct td_hrow td_resp_rows[] = {
	RESP("200 with CL", TD_HTTP_M_GET, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", TD_HTTP_BODY_LENGTH, 2, 1),
	RESP("200 without length: until close", TD_HTTP_M_GET, "HTTP/1.1 200 OK\r\n\r\n", TD_HTTP_BODY_CLOSE, 0, 0),
	RESP("200 chunked", TD_HTTP_M_GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", TD_HTTP_BODY_CHUNKED, 0, 1),
	RESP("200 gzip, chunked", TD_HTTP_M_GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", TD_HTTP_BODY_CHUNKED, 0, 1),
	RESP("200 TE not chunked: until close", TD_HTTP_M_GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", TD_HTTP_BODY_CLOSE, 0, 0),
	RESP("204 ignores CL", TD_HTTP_M_GET, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", TD_HTTP_BODY_NONE, 5, 1),
	RESP("304 no body", TD_HTTP_M_GET, "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", TD_HTTP_BODY_NONE, 5, 1),
	RESP("100 no body", TD_HTTP_M_GET, "HTTP/1.1 100 Continue\r\n\r\n", TD_HTTP_BODY_NONE, 0, 1),
	RESP("103 no body", TD_HTTP_M_GET, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", TD_HTTP_BODY_NONE, 0, 1),
	RESP("101 tunnel", TD_HTTP_M_GET, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", TD_HTTP_BODY_TUNNEL, 0, 1),
	RESP("HEAD: no body despite CL", TD_HTTP_M_HEAD, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", TD_HTTP_BODY_NONE, 99, 1),
	RESP("HEAD: no body despite chunked", TD_HTTP_M_HEAD, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", TD_HTTP_BODY_NONE, 0, 1),
	RESP("CONNECT 200: tunnel", TD_HTTP_M_CONNECT, "HTTP/1.1 200 Connection established\r\n\r\n", TD_HTTP_BODY_TUNNEL, 0, 1),
	RESP("CONNECT 407: body", TD_HTTP_M_CONNECT, "HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n", TD_HTTP_BODY_LENGTH, 3, 1),
	RESP("HTTP/1.0 CL", TD_HTTP_M_GET, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", TD_HTTP_BODY_LENGTH, 2, 0),
	RESP("HTTP/1.0 keep-alive", TD_HTTP_M_GET, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", TD_HTTP_BODY_LENGTH, 2, 1),
	RESP("no reason phrase", TD_HTTP_M_GET, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", TD_HTTP_BODY_NONE, 0, 1),
	RESP("empty reason phrase", TD_HTTP_M_GET, "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", TD_HTTP_BODY_NONE, 0, 1),
	RESP("large CL has no body limit", TD_HTTP_M_GET, "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", TD_HTTP_BODY_LENGTH, 99999999999ull, 1),
	BAD("2-digit status", "HTTP/1.1 20 OK\r\n\r\n", 502),
	BAD("status 600", "HTTP/1.1 600 X\r\n\r\n", 502),
	BAD("status 099", "HTTP/1.1 099 X\r\n\r\n", 502),
	BAD("HTTP/2 status line", "HTTP/2 200 OK\r\n\r\n", 502),
	BAD("HTTP/1.2 response", "HTTP/1.2 200 OK\r\n\r\n", 502),
	BAD("control char in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", 502),
	BAD("response CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 502),
	BAD("response duplicate CL", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 502),
	BAD("response obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 502),
	BAD("response space before colon", "HTTP/1.1 200 OK\r\nX : a\r\n\r\n", 502),
	BAD("response bare LF", "HTTP/1.1 200 OK\nX: a\r\n\r\n", 502),
	BAD("response leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", 502),
};

/* parse in fed steps of step bytes (0: whole); each call sees a fresh exact-size copy */
static int td_parse_fed(struct td_http_parser *p, enum td_http_kind kind, int m, const char *in,
			size_t n, size_t step, size_t *consumed)
{
	size_t have = step ? 0 : n;
	int rc;

	CU_ASSERT_FATAL(td_http_parser_init(p, kind, NULL) == 0);
	td_http_parser_set_req_method(p, m);
	for (;;) {
		char *b;

		if (step)
			have = have + step > n ? n : have + step;
		b = malloc(have ? have : 1);
		CU_ASSERT_FATAL(b != NULL);
		memcpy(b, in, have);
		rc = td_http_parse(p, b, have, consumed);
		free(b);
		if (rc != TD_HTTP_AGAIN || have == n)
			return rc;
	}
}

static void td_run_rows(const struct td_hrow *rows, size_t n, enum td_http_kind kind)
{
	static struct td_http_parser p, q;

	for (size_t i = 0; i < n; i++) {
		const struct td_hrow *r = &rows[i];
		size_t len = strlen(r->in), c1, c2;
		int rc, rc2;

		/* "NUL in value" carries an embedded NUL: its length ends at the second CRLFCRLF */
		if (strstr(r->name, "NUL"))
			len = strlen(r->in) + 1 + strlen(r->in + strlen(r->in) + 1);
		rc = td_parse_fed(&p, kind, r->req_method, r->in, len, 0, &c1);
		rc2 = td_parse_fed(&q, kind, r->req_method, r->in, len, 1, &c2);
		if (rc != r->rc || (r->rc == TD_HTTP_ERROR && p.error != r->code) ||
		    (r->rc == TD_HTTP_DONE && (p.msg.body != r->body || p.msg.content_length != r->cl ||
					       (r->ka != KA_ANY && p.msg.keep_alive != r->ka))))
			fprintf(stderr, "\n  row \"%s\": rc %d error %u (%s) body %u cl %llu ka %d\n", r->name,
				rc, p.error, p.why ? p.why : "-", p.msg.body,
				(unsigned long long)p.msg.content_length, p.msg.keep_alive);
		CU_ASSERT_EQUAL(rc, r->rc);
		/* byte by byte gives the same result as one buffer */
		CU_ASSERT_EQUAL(rc2, rc);
		CU_ASSERT_EQUAL(c2, c1);
		CU_ASSERT_EQUAL(q.error, p.error);
		if (r->rc == TD_HTTP_ERROR) {
			CU_ASSERT_EQUAL(p.error, r->code);
			CU_ASSERT_PTR_NOT_NULL(p.why);
			continue;
		}
		CU_ASSERT_EQUAL(c1, len);
		CU_ASSERT_EQUAL(p.msg.body, r->body);
		CU_ASSERT_EQUAL(p.msg.content_length, r->cl);
		if (r->ka != KA_ANY)
			CU_ASSERT_EQUAL(p.msg.keep_alive, r->ka);
		CU_ASSERT_EQUAL(q.msg.nhdr, p.msg.nhdr);
		CU_ASSERT(!memcmp(q.msg.hdr, p.msg.hdr, p.msg.nhdr * sizeof(p.msg.hdr[0])));
	}
}

static void test_request_rows(void)
{
	td_run_rows(td_req_rows, sizeof(td_req_rows) / sizeof(td_req_rows[0]), TD_HTTP_REQUEST);
}

static void test_response_rows(void)
{
	td_run_rows(td_resp_rows, sizeof(td_resp_rows) / sizeof(td_resp_rows[0]), TD_HTTP_RESPONSE);
}

static int td_slice_is(const char *buf, struct td_http_slice s, const char *want)
{
	return s.len == strlen(want) && !memcmp(buf + s.off, want, s.len);
}

static void test_request_fields(void)
{
	static struct td_http_parser p;
	static const char in[] = "GET http://a.example/x?y=1 HTTP/1.1\r\nHost:  a.example \r\n"
		"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-Keep: 2\r\nKeep-Alive: 5\r\nTE: trailers\r\n"
		"Upgrade: h2c\r\nProxy-Authorization: x\r\nProxy-Connection: y\r\nTrailer: z\r\n\r\nBODY";
	size_t c;
	int k;

	CU_ASSERT_EQUAL_FATAL(td_parse_fed(&p, TD_HTTP_REQUEST, 0, in, sizeof(in) - 1, 0, &c), TD_HTTP_DONE);
	CU_ASSERT_EQUAL(c, sizeof(in) - 1 - 4);
	CU_ASSERT_EQUAL(p.msg.method, TD_HTTP_M_GET);
	CU_ASSERT(td_slice_is(in, p.msg.method_s, "GET"));
	CU_ASSERT(td_slice_is(in, p.msg.target, "http://a.example/x?y=1"));
	CU_ASSERT_EQUAL(p.msg.target_form, TD_HTTP_T_ABSOLUTE);
	CU_ASSERT_EQUAL(p.msg.version, 11);
	CU_ASSERT_EQUAL(p.msg.nhdr, 10);
	CU_ASSERT_EQUAL_FATAL(p.msg.host, 0);
	CU_ASSERT(td_slice_is(in, p.msg.hdr[0].name, "Host"));
	CU_ASSERT(td_slice_is(in, p.msg.hdr[0].value, "a.example"));	/* OWS trimmed */
	CU_ASSERT_EQUAL(p.msg.hdr[0].id, TD_HTTP_H_HOST);
	/* hop-by-hop: Connection, X-Hop (named), Keep-Alive, TE, Upgrade, Proxy-*, Trailer */
	CU_ASSERT_EQUAL(p.msg.nhop, 8);
	CU_ASSERT_FALSE(p.msg.upgrade);		/* Upgrade not named by Connection */
	k = td_http_header_find(&p.msg, in, "x-hop", 0);
	CU_ASSERT_EQUAL_FATAL(k, 2);
	CU_ASSERT(p.msg.hdr[k].flags & TD_HTTP_HF_HOP);
	k = td_http_header_find(&p.msg, in, "X-KEEP", 0);
	CU_ASSERT_EQUAL_FATAL(k, 3);
	CU_ASSERT_FALSE(p.msg.hdr[k].flags & TD_HTTP_HF_HOP);
	CU_ASSERT_EQUAL(td_http_header_find(&p.msg, in, "x-hop", 3), -ENOENT);
	CU_ASSERT_FALSE(p.msg.hdr[0].flags & TD_HTTP_HF_HOP);
	CU_ASSERT_STRING_EQUAL(td_http_method_name(TD_HTTP_M_CONNECT), "CONNECT");
	CU_ASSERT_STRING_EQUAL(td_http_method_name(TD_HTTP_M_OTHER), "OTHER");
}

static void test_connection_cannot_drop_host(void)
{
	static struct td_http_parser p;
	static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
		"Connection: host, content-length, upgrade\r\nUpgrade: websocket\r\n\r\n";
	size_t c;

	CU_ASSERT_EQUAL_FATAL(td_parse_fed(&p, TD_HTTP_REQUEST, 0, in, sizeof(in) - 1, 0, &c), TD_HTTP_DONE);
	CU_ASSERT_FALSE(p.msg.hdr[0].flags & TD_HTTP_HF_HOP);
	CU_ASSERT_FALSE(p.msg.hdr[1].flags & TD_HTTP_HF_HOP);
	CU_ASSERT(p.msg.hdr[2].flags & TD_HTTP_HF_HOP);
	CU_ASSERT(p.msg.hdr[3].flags & TD_HTTP_HF_HOP);
	CU_ASSERT(p.msg.upgrade);
	CU_ASSERT_EQUAL(p.msg.nhop, 2);
}

static void test_pipeline(void)
{
	static struct td_http_parser p;
	static const char in[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
		"GET /c HTTP/1.0\r\n\r\n"
		"GET /d HTTP/1.1\r\nHo";
	static const char *const targets[] = { "/a", "/b", "/c" };
	size_t off = 0, len = sizeof(in) - 1, c;

	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL_FATAL(td_http_parser_init(&p, TD_HTTP_REQUEST, NULL), 0);
		CU_ASSERT_EQUAL_FATAL(td_http_parse(&p, in + off, len - off, &c), TD_HTTP_DONE);
		CU_ASSERT(td_slice_is(in + off, p.msg.target, targets[i]));
		off += c;
		if (p.msg.body == TD_HTTP_BODY_LENGTH) {
			CU_ASSERT(!memcmp(in + off, "hello", 5));
			off += p.msg.content_length;
		}
	}
	CU_ASSERT_FALSE(p.msg.keep_alive);
	CU_ASSERT_EQUAL_FATAL(td_http_parser_init(&p, TD_HTTP_REQUEST, NULL), 0);
	CU_ASSERT_EQUAL(td_http_parse(&p, in + off, len - off, &c), TD_HTTP_AGAIN);
	CU_ASSERT_EQUAL(c, 0);
	/* DONE is sticky: a second call answers the same */
	CU_ASSERT_EQUAL_FATAL(td_http_parser_init(&p, TD_HTTP_REQUEST, NULL), 0);
	CU_ASSERT_EQUAL(td_http_parse(&p, in, len, &c), TD_HTTP_DONE);
	CU_ASSERT_EQUAL(td_http_parse(&p, in, len, &c), TD_HTTP_DONE);
	CU_ASSERT_EQUAL(c, 28);
}

/* a request whose request line is rl bytes (incl. CRLF) and header block hb bytes, nh fields */
static char *td_build(size_t rl, size_t nh, size_t hb, size_t *len)
{
	size_t cap = rl + hb + 64, o;
	char *b = malloc(cap);
	size_t fill;

	if (!b)
		return NULL;
	/* "GET /aaaa HTTP/1.1\r\n": 16 fixed bytes + target */
	memcpy(b, "GET /", 5);
	o = 5;
	memset(b + o, 'a', rl - 16);
	o += rl - 16;
	memcpy(b + o, " HTTP/1.1\r\n", 11);
	o += 11;
	/* nh fields: "Host: a\r\n" (9) then "X: v...\r\n"; the last absorbs what hb leaves */
	memcpy(b + o, "Host: a\r\n", 9);
	o += 9;
	fill = hb - 2 - 9;
	for (size_t i = 1; i < nh; i++) {
		size_t l = i == nh - 1 ? fill : 6;

		memcpy(b + o, "X: ", 3);
		memset(b + o + 3, 'v', l - 5);
		memcpy(b + o + l - 2, "\r\n", 2);
		o += l;
		fill -= l;
	}
	memcpy(b + o, "\r\n", 2);
	o += 2;
	*len = o;
	return b;
}

static void test_limits(void)
{
	static struct td_http_parser p;
	struct td_http_limits l;
	size_t len, c;
	char *b;

	/* request line: 8192 bytes incl. CRLF pass, 8193 are 414 */
	b = td_build(8192, 2, 100, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(td_parse_fed(&p, TD_HTTP_REQUEST, 0, b, len, 0, &c), TD_HTTP_DONE);
	CU_ASSERT_EQUAL(c, len);
	free(b);
	b = td_build(8193, 2, 100, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(td_parse_fed(&p, TD_HTTP_REQUEST, 0, b, len, 0, &c), TD_HTTP_ERROR);
	CU_ASSERT_EQUAL(p.error, 414);
	/* found before the CRLF arrives: 8191 bytes of line without an end already are 414 */
	CU_ASSERT_EQUAL(td_parse_fed(&p, TD_HTTP_REQUEST, 0, b, 8191, 0, &c), TD_HTTP_ERROR);
	CU_ASSERT_EQUAL(p.error, 414);
	CU_ASSERT_EQUAL(td_parse_fed(&p, TD_HTTP_REQUEST, 0, b, 8190, 0, &c), TD_HTTP_AGAIN);
	free(b);

	/* header block: 32768 bytes incl. the final CRLF pass, 32769 are 431 */
	b = td_build(64, 3, 32768, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(td_parse_fed(&p, TD_HTTP_REQUEST, 0, b, len, 0, &c), TD_HTTP_DONE);
	free(b);
	b = td_build(64, 3, 32769, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(td_parse_fed(&p, TD_HTTP_REQUEST, 0, b, len, 0, &c), TD_HTTP_ERROR);
	CU_ASSERT_EQUAL(p.error, 431);
	free(b);

	/* header count: 100 pass, 101 are 431 */
	b = td_build(64, 100, 1000, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(td_parse_fed(&p, TD_HTTP_REQUEST, 0, b, len, 0, &c), TD_HTTP_DONE);
	CU_ASSERT_EQUAL(p.msg.nhdr, 100);
	free(b);
	b = td_build(64, 101, 1000, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(td_parse_fed(&p, TD_HTTP_REQUEST, 0, b, len, 0, &c), TD_HTTP_ERROR);
	CU_ASSERT_EQUAL(p.error, 431);
	free(b);

	/* configured limits, the same rule at their boundaries; bad limits refused */
	td_http_limits_default(&l);
	l.max_start_line = 32;
	l.max_headers = 2;
	l.max_body = 10;
	CU_ASSERT_EQUAL(td_http_parser_init(&p, TD_HTTP_REQUEST, &l), 0);
	b = td_build(32, 2, 40, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(td_http_parse(&p, b, len, &c), TD_HTTP_DONE);
	free(b);
	CU_ASSERT_EQUAL(td_http_parser_init(&p, TD_HTTP_REQUEST, &l), 0);
	b = td_build(33, 2, 40, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(td_http_parse(&p, b, len, &c), TD_HTTP_ERROR);
	CU_ASSERT_EQUAL(p.error, 414);
	free(b);
	CU_ASSERT_EQUAL(td_http_parser_init(&p, TD_HTTP_REQUEST, &l), 0);
	b = td_build(32, 3, 40, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(td_http_parse(&p, b, len, &c), TD_HTTP_ERROR);
	CU_ASSERT_EQUAL(p.error, 431);
	free(b);
	l.max_headers = TD_HTTP_MAX_HEADERS + 1;
	CU_ASSERT_EQUAL(td_http_parser_init(&p, TD_HTTP_REQUEST, &l), -EINVAL);
	td_http_limits_default(&l);
	l.max_start_line = 4;
	CU_ASSERT_EQUAL(td_http_parser_init(&p, TD_HTTP_REQUEST, &l), -EINVAL);
	CU_ASSERT_EQUAL(td_http_parser_init(&p, (enum td_http_kind)7, NULL), -EINVAL);
}

/* chunked rows: input, expected rc and status, decoded body, bytes consumed at DONE */
struct td_crow {
	const char *name;
	const char *in;
	int rc;
	int code;
	const char *body;
	int used;		/* -1: all of in */
};

static const struct td_crow td_chunk_rows[] = {
	{ "one chunk", "5\r\nhello\r\n0\r\n\r\n", TD_HTTP_DONE, 0, "hello", -1 },
	{ "two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", TD_HTTP_DONE, 0, "hello world", -1 },
	{ "0-size only", "0\r\n\r\n", TD_HTTP_DONE, 0, "", -1 },
	{ "stops after the body", "1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n", TD_HTTP_DONE, 0, "a", 11 },
	{ "upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n", TD_HTTP_DONE, 0, "0123456789", -1 },
	{ "leading zeros", "0005\r\nhello\r\n000\r\n\r\n", TD_HTTP_DONE, 0, "hello", -1 },
	{ "16 digits", "0000000000000001\r\nx\r\n0\r\n\r\n", TD_HTTP_DONE, 0, "x", -1 },
	{ "extension", "5;a=b\r\nhello\r\n0;last\r\n\r\n", TD_HTTP_DONE, 0, "hello", -1 },
	{ "extension with BWS, quoted", "5 ;a=\"x y\"\r\nhello\r\n0\r\n\r\n", TD_HTTP_DONE, 0, "hello", -1 },
	{ "trailers", "1\r\nz\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n", TD_HTTP_DONE, 0, "z", -1 },
	{ "incomplete trailer", "0\r\nX: 1\r\n", TD_HTTP_AGAIN, 0, "", 0 },
	{ "incomplete data", "5\r\nhel", TD_HTTP_AGAIN, 0, "hel", 0 },
	{ "empty size", "\r\nhello\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "leading space", " 5\r\nhello\r\n0\r\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "plus sign", "+5\r\nhello\r\n0\r\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "minus sign", "-5\r\nhello\r\n0\r\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "non-hex", "5g\r\nhello\r\n0\r\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "trailing space without extension", "5 \r\nhello\r\n0\r\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "17 digits (overflow)", "10000000000000000\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "huge size over body limit", "ffffffffffffffff\r\n", TD_HTTP_ERROR, 413, "", 0 },
	{ "bare LF after size", "5\nhello\r\n0\r\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "bare CR after size", "5\rhello\r\n0\r\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", TD_HTTP_ERROR, 400, "hello", 0 },
	{ "bare LF after data", "5\r\nhello\n0\r\n\r\n", TD_HTTP_ERROR, 400, "hello", 0 },
	{ "control char in extension", "5;a\x01\r\nhello\r\n0\r\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "LF in extension", "5;a\nb\r\nhello\r\n0\r\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "trailer space before colon", "0\r\nX : 1\r\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "trailer obs-fold", "0\r\nX: 1\r\n 2\r\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "trailer bare LF", "0\r\nX: 1\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "trailer control char", "0\r\nX: \x02\r\n\r\n", TD_HTTP_ERROR, 400, "", 0 },
	{ "missing final CRLF is bare LF", "0\r\n\n", TD_HTTP_ERROR, 400, "", 0 },
};

/*
 * Stream in through the decoder step bytes at a time (0: all at once), keeping only the
 * unconsumed bytes like a server does. Returns the rc; body and total consumed out.
 */
static int td_chunk_feed(struct td_http_chunked *c, const char *in, size_t n, size_t step,
			 char *body, size_t *blen, size_t *used)
{
	char pend[4096];
	size_t plen = 0, fed = 0;
	int rc = TD_HTTP_AGAIN;

	*blen = 0;
	*used = 0;
	while (fed < n || plen) {
		size_t add = step ? step : n;
		size_t off = 0;

		if (add > n - fed)
			add = n - fed;
		CU_ASSERT_FATAL(plen + add <= sizeof(pend));
		memcpy(pend + plen, in + fed, add);
		plen += add;
		fed += add;
		for (;;) {
			struct td_http_slice d;
			size_t k;

			rc = td_http_chunked_decode(c, pend + off, plen - off, &k, &d);
			CU_ASSERT_FATAL(k <= plen - off);
			if (rc == TD_HTTP_DATA) {
				memcpy(body + *blen, pend + off + d.off, d.len);
				*blen += d.len;
			}
			off += k;
			*used += k;
			if (rc != TD_HTTP_DATA)
				break;
		}
		memmove(pend, pend + off, plen - off);
		plen -= off;
		if (rc != TD_HTTP_AGAIN || fed == n)
			break;
	}
	return rc;
}

static void test_chunked_rows(void)
{
	for (size_t i = 0; i < sizeof(td_chunk_rows) / sizeof(td_chunk_rows[0]); i++) {
		const struct td_crow *r = &td_chunk_rows[i];
		size_t n = strlen(r->in);

		for (size_t step = 0; step <= 1; step++) {
			struct td_http_chunked c;
			char body[256];
			size_t blen, used;
			int rc;

			CU_ASSERT_EQUAL_FATAL(td_http_chunked_init(&c, TD_HTTP_REQUEST, NULL), 0);
			rc = td_chunk_feed(&c, r->in, n, step, body, &blen, &used);
			if (rc != r->rc || (rc == TD_HTTP_ERROR && c.error != r->code))
				fprintf(stderr, "\n  chunked row \"%s\" step %zu: rc %d error %u (%s)\n",
					r->name, step, rc, c.error, c.why ? c.why : "-");
			CU_ASSERT_EQUAL(rc, r->rc);
			if (rc == TD_HTTP_ERROR) {
				CU_ASSERT_EQUAL(c.error, r->code);
				continue;
			}
			CU_ASSERT_EQUAL(blen, strlen(r->body));
			CU_ASSERT(!memcmp(body, r->body, blen));
			if (rc == TD_HTTP_DONE)
				CU_ASSERT_EQUAL(used, r->used < 0 ? n : (size_t)r->used);
		}
	}
}

static void test_chunked_limits(void)
{
	struct td_http_limits l;
	struct td_http_chunked c;
	char body[256], in[2048];
	size_t blen, used, n;

	/* body limit over two chunks: 10 allowed, 6 + 5 are 413 */
	td_http_limits_default(&l);
	l.max_body = 10;
	CU_ASSERT_EQUAL_FATAL(td_http_chunked_init(&c, TD_HTTP_REQUEST, &l), 0);
	CU_ASSERT_EQUAL(td_chunk_feed(&c, "6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n", 25, 0, body, &blen, &used),
			TD_HTTP_DONE);
	CU_ASSERT_EQUAL(blen, 10);
	CU_ASSERT_EQUAL_FATAL(td_http_chunked_init(&c, TD_HTTP_REQUEST, &l), 0);
	CU_ASSERT_EQUAL(td_chunk_feed(&c, "6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n", 26, 0, body, &blen, &used),
			TD_HTTP_ERROR);
	CU_ASSERT_EQUAL(c.error, 413);
	CU_ASSERT_EQUAL(blen, 6);

	/* responses: no body limit by default, every error is 502 */
	CU_ASSERT_EQUAL_FATAL(td_http_chunked_init(&c, TD_HTTP_RESPONSE, NULL), 0);
	CU_ASSERT_EQUAL(td_chunk_feed(&c, "ffffffffffffffff\r\nab", 20, 0, body, &blen, &used), TD_HTTP_AGAIN);
	CU_ASSERT_EQUAL(blen, 2);
	CU_ASSERT_EQUAL_FATAL(td_http_chunked_init(&c, TD_HTTP_RESPONSE, NULL), 0);
	CU_ASSERT_EQUAL(td_chunk_feed(&c, "5;\x01\r\n", 6, 0, body, &blen, &used), TD_HTTP_ERROR);
	CU_ASSERT_EQUAL(c.error, 502);

	/* extensions: 1024 bytes after the size pass, 1025 are 400 */
	for (size_t ext = 1024; ext <= 1025; ext++) {
		n = 0;
		in[n++] = '1';
		in[n++] = ';';
		memset(in + n, 'e', ext - 1);
		n += ext - 1;
		memcpy(in + n, "\r\nx\r\n0\r\n\r\n", 10);
		n += 10;
		CU_ASSERT_EQUAL_FATAL(td_http_chunked_init(&c, TD_HTTP_REQUEST, NULL), 0);
		CU_ASSERT_EQUAL(td_chunk_feed(&c, in, n, 1, body, &blen, &used),
				ext == 1024 ? TD_HTTP_DONE : TD_HTTP_ERROR);
		if (ext == 1025)
			CU_ASSERT_EQUAL(c.error, 400);
	}

	/* trailer section: bounded by max_header_block (431) and max_headers */
	td_http_limits_default(&l);
	l.max_header_block = 16;
	l.max_headers = 1;
	CU_ASSERT_EQUAL_FATAL(td_http_chunked_init(&c, TD_HTTP_REQUEST, &l), 0);
	CU_ASSERT_EQUAL(td_chunk_feed(&c, "0\r\nX: 123456789\r\n\r\n", 20, 1, body, &blen, &used), TD_HTTP_DONE);
	CU_ASSERT_EQUAL_FATAL(td_http_chunked_init(&c, TD_HTTP_REQUEST, &l), 0);
	CU_ASSERT_EQUAL(td_chunk_feed(&c, "0\r\nX: 1234567890\r\n\r\n", 21, 1, body, &blen, &used), TD_HTTP_ERROR);
	CU_ASSERT_EQUAL(c.error, 431);
	CU_ASSERT_EQUAL_FATAL(td_http_chunked_init(&c, TD_HTTP_REQUEST, &l), 0);
	CU_ASSERT_EQUAL(td_chunk_feed(&c, "0\r\nX: 1\r\nY: 2\r\n\r\n", 17, 0, body, &blen, &used), TD_HTTP_ERROR);
	CU_ASSERT_EQUAL(c.error, 431);
}

int td_suite_http_parser(void)
{
	CU_pSuite s = CU_add_suite("http parser", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "request strictness table", test_request_rows) ||
	    !CU_add_test(s, "response table and body length", test_response_rows) ||
	    !CU_add_test(s, "request fields and hop-by-hop", test_request_fields) ||
	    !CU_add_test(s, "Connection cannot drop Host", test_connection_cannot_drop_host) ||
	    !CU_add_test(s, "pipelined requests", test_pipeline) ||
	    !CU_add_test(s, "limits at the boundary", test_limits) ||
	    !CU_add_test(s, "chunked table", test_chunked_rows) ||
	    !CU_add_test(s, "chunked limits", test_chunked_limits))
		return CU_get_error();
	return 0;
}

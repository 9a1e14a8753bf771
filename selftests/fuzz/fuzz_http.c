/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* libFuzzer harness for the HTTP/1.1 request and response parsers and the chunked decoder. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunked.h"
#include "parser.h"

/*
 * Input: byte 0 picks the mode (bits 0-1: 0 request, 1 response, 2 chunked, 3 request then
 * chunked body; bits 2-3: the request method a response answers: GET, HEAD, CONNECT, POST),
 * bytes 1-2 the split point (modulo the payload length), the rest is the payload. Every run
 * copies its input into a buffer of exactly its size, so ASan catches any read past the end.
 * Invariants: consumed <= len, slices inside the head, the same result whole, split in two and
 * byte by byte, the same body bytes whole and split for chunked.
 */

#define TD_FZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

static const enum td_http_method td_fz_methods[] = {
	TD_HTTP_M_GET, TD_HTTP_M_HEAD, TD_HTTP_M_CONNECT, TD_HTTP_M_POST,
};

static char *td_fz_dup(const uint8_t *d, size_t n)
{
	char *b = malloc(n ? n : 1);

	TD_FZ_CHECK(b);
	if (n)
		memcpy(b, d, n);
	return b;
}

static void td_fz_small_limits(struct td_http_limits *l)
{
	td_http_limits_default(l);
	l->max_start_line = 64;
	l->max_header_block = 256;
	l->max_headers = 8;
	l->max_body = 4096;
}

/* one head parse of d[0..n) fed as given by the step; returns rc, fills p and *consumed */
static enum td_http_rc td_fz_head(struct td_http_parser *p, enum td_http_kind kind,
				  const struct td_http_limits *lim, enum td_http_method m,
				  const uint8_t *d, size_t n, size_t step, size_t *consumed)
{
	enum td_http_rc rc = TD_HTTP_AGAIN;
	size_t have = step ? 0 : n;

	TD_FZ_CHECK(td_http_parser_init(p, kind, lim) == 0);
	td_http_parser_set_req_method(p, m);
	for (;;) {
		char *b;

		if (step)
			have = have + step > n ? n : have + step;
		b = td_fz_dup(d, have);
		rc = td_http_parse(p, b, have, consumed);
		free(b);
		TD_FZ_CHECK(*consumed <= have);
		if (rc != TD_HTTP_AGAIN || have == n)
			break;
	}
	return rc;
}

static void td_fz_same_msg(const struct td_http_parser *a, const struct td_http_parser *b)
{
	const struct td_http_msg *x = &a->msg, *y = &b->msg;

	TD_FZ_CHECK(x->method == y->method && x->version == y->version && x->status == y->status);
	TD_FZ_CHECK(x->body == y->body && x->content_length == y->content_length);
	TD_FZ_CHECK(x->keep_alive == y->keep_alive && x->nhdr == y->nhdr && x->nhop == y->nhop);
	TD_FZ_CHECK(x->host == y->host && x->target.off == y->target.off && x->target.len == y->target.len);
	TD_FZ_CHECK(!memcmp(x->hdr, y->hdr, x->nhdr * sizeof(x->hdr[0])));
}

static void td_fz_slice_in(struct td_http_slice s, size_t end)
{
	TD_FZ_CHECK(s.off <= end && s.len <= end - s.off);
}

static void td_fz_heads(enum td_http_kind kind, const struct td_http_limits *lim,
			enum td_http_method m, const uint8_t *d, size_t n, size_t split)
{
	static struct td_http_parser whole, part, bytes;
	size_t c1, c2, c3;
	enum td_http_rc r1, r2, r3;

	r1 = td_fz_head(&whole, kind, lim, m, d, n, 0, &c1);
	r2 = td_fz_head(&part, kind, lim, m, d, n, split ? split : 1, &c2);
	TD_FZ_CHECK(r1 == r2 && c1 == c2 && whole.error == part.error);
	if (n <= 256) {
		r3 = td_fz_head(&bytes, kind, lim, m, d, n, 1, &c3);
		TD_FZ_CHECK(r1 == r3 && c1 == c3 && whole.error == bytes.error);
	}
	if (r1 == TD_HTTP_ERROR) {
		TD_FZ_CHECK(whole.error >= 400 && whole.error <= 505 && whole.why);
		return;
	}
	if (r1 != TD_HTTP_DONE)
		return;
	td_fz_same_msg(&whole, &part);
	TD_FZ_CHECK(whole.msg.nhdr <= whole.lim.max_headers);
	for (uint32_t k = 0; k < whole.msg.nhdr; k++) {
		td_fz_slice_in(whole.msg.hdr[k].name, c1);
		td_fz_slice_in(whole.msg.hdr[k].value, c1);
		TD_FZ_CHECK(whole.msg.hdr[k].name.len > 0);
	}
	td_fz_slice_in(whole.msg.target, c1);
	td_fz_slice_in(whole.msg.reason, c1);
	if (kind == TD_HTTP_REQUEST)
		TD_FZ_CHECK(whole.msg.version == 10 || whole.msg.host >= 0);
}

/* decode d[0..n) in pieces cut at split (0: whole); body bytes into out, returns rc */
static enum td_http_rc td_fz_chunked(const uint8_t *d, size_t n, size_t split, char *out,
				     size_t *outlen, size_t *used, uint16_t *err)
{
	struct td_http_chunked c;
	size_t pos = 0, end = split ? split : n;
	enum td_http_rc rc = TD_HTTP_AGAIN;

	*outlen = 0;
	TD_FZ_CHECK(td_http_chunked_init(&c, TD_HTTP_REQUEST, NULL) == 0);
	c.max_body = 1u << 20;
	for (;;) {
		char *b = td_fz_dup(d + pos, end - pos);
		size_t off = 0;

		for (;;) {
			struct td_http_slice s;
			size_t k;

			rc = td_http_chunked_decode(&c, b + off, end - pos - off, &k, &s);
			TD_FZ_CHECK(k <= end - pos - off);
			if (rc == TD_HTTP_DATA) {
				TD_FZ_CHECK(s.len > 0 && s.off + s.len <= k);
				memcpy(out + *outlen, b + off + s.off, s.len);
				*outlen += s.len;
			}
			off += k;
			if (rc != TD_HTTP_DATA)
				break;
		}
		free(b);
		pos += off;
		if (rc != TD_HTTP_AGAIN || end == n)
			break;
		end = n;
	}
	TD_FZ_CHECK(*outlen <= n && c.total == *outlen);
	*used = pos;
	*err = c.error;
	return rc;
}

static void td_fz_chunked_both(const uint8_t *d, size_t n, size_t split)
{
	char *o1 = malloc(n + 1), *o2 = malloc(n + 1);
	size_t l1, l2, u1, u2;
	uint16_t e1, e2;
	enum td_http_rc r1, r2;

	TD_FZ_CHECK(o1 && o2);
	r1 = td_fz_chunked(d, n, 0, o1, &l1, &u1, &e1);
	r2 = td_fz_chunked(d, n, split, o2, &l2, &u2, &e2);
	TD_FZ_CHECK(r1 == r2 && e1 == e2);
	if (r1 != TD_HTTP_ERROR) {
		TD_FZ_CHECK(l1 == l2 && !memcmp(o1, o2, l1));
		if (r1 == TD_HTTP_DONE)
			TD_FZ_CHECK(u1 == u2);
	}
	free(o1);
	free(o2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct td_http_limits small;
	enum td_http_method m;
	size_t n, split;
	const uint8_t *d;

	if (size < 3)
		return 0;
	m = td_fz_methods[(data[0] >> 2) & 3];
	d = data + 3;
	n = size - 3;
	split = n ? ((size_t)data[1] << 8 | data[2]) % (n + 1) : 0;
	td_fz_small_limits(&small);

	switch (data[0] & 3) {
	case 0:
	case 1: {
		enum td_http_kind kind = (data[0] & 3) ? TD_HTTP_RESPONSE : TD_HTTP_REQUEST;

		td_fz_heads(kind, NULL, m, d, n, split);
		td_fz_heads(kind, &small, m, d, n, split);
		break;
	}
	case 2:
		td_fz_chunked_both(d, n, split);
		break;
	default: {
		/* a request head then its chunked body, as a server reads them */
		static struct td_http_parser p;
		size_t c;

		if (td_fz_head(&p, TD_HTTP_REQUEST, NULL, m, d, n, 0, &c) == TD_HTTP_DONE &&
		    p.msg.body == TD_HTTP_BODY_CHUNKED)
			td_fz_chunked_both(d + c, n - c, split > c ? split - c : 0);
		break;
	}
	}
	return 0;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Strict, incremental, zero-copy HTTP/1.1 request and response header parser (RFC 9110/9112). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "parser.h"

enum {
	TD_HTTP_S_START = 0,	/* request line or status line */
	TD_HTTP_S_HEADERS,	/* field lines up to the empty line */
	TD_HTTP_S_DONE,
	TD_HTTP_S_ERROR,
};

/* parser flags collected while reading field lines */
#define TD_HTTP_PF_CL		0x01u	/* Content-Length seen */
#define TD_HTTP_PF_TE		0x02u	/* Transfer-Encoding seen */
#define TD_HTTP_PF_TE_CHUNKED	0x04u	/* chunked among the codings */
#define TD_HTTP_PF_TE_LAST	0x08u	/* chunked is the last coding so far */
#define TD_HTTP_PF_TE_OTHER	0x10u	/* a coding other than chunked */
#define TD_HTTP_PF_CLOSE	0x20u	/* Connection: close */
#define TD_HTTP_PF_KEEPALIVE	0x40u	/* Connection: keep-alive */
#define TD_HTTP_PF_UPGRADE	0x80u	/* Connection: upgrade */
#define TD_HTTP_PF_CONN		0x100u	/* a Connection field seen */

/* no head is longer than this (init bounds the limits below it): the scan never overflows u32 */
#define TD_HTTP_SCAN_MAX	(1u << 30)

/* character classes, table driven: bit 0 tchar, bit 1 field-vchar (VCHAR / obs-text), bit 2 hex */
#define TD_C_TCHAR	0x1u
#define TD_C_FVCHAR	0x2u
#define TD_C_HEX	0x4u

static uint8_t td_http_ctype[256];
static int td_http_ctype_ready;

static void td_http_ctype_init(void)
{
	static const char tspecial[] = "!#$%&'*+-.^_`|~";

	if (__atomic_load_n(&td_http_ctype_ready, __ATOMIC_ACQUIRE))
		return;
	for (unsigned int c = 0; c < 256; c++) {
		uint8_t v = 0;

		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c && strchr(tspecial, (int)c)))
			v |= TD_C_TCHAR;
		if ((c > 0x20 && c < 0x7f) || c >= 0x80)
			v |= TD_C_FVCHAR;
		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
			v |= TD_C_HEX;
		td_http_ctype[c] = v;
	}
	__atomic_store_n(&td_http_ctype_ready, 1, __ATOMIC_RELEASE);
}

bool td_http_is_tchar(unsigned char c)
{
	td_http_ctype_init();
	return td_http_ctype[c] & TD_C_TCHAR;
}

/* a byte allowed inside a field value or reason phrase: VCHAR, obs-text, SP, HTAB */
static inline bool td_http_is_fchar(unsigned char c)
{
	return (td_http_ctype[c] & TD_C_FVCHAR) || c == ' ' || c == '\t';
}

static inline bool td_http_is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static const struct {
	const char *name;
	uint8_t len;
	uint8_t id;
} td_http_methods[] = {
	{ "GET", 3, TD_HTTP_M_GET },		{ "HEAD", 4, TD_HTTP_M_HEAD },
	{ "POST", 4, TD_HTTP_M_POST },		{ "PUT", 3, TD_HTTP_M_PUT },
	{ "DELETE", 6, TD_HTTP_M_DELETE },	{ "CONNECT", 7, TD_HTTP_M_CONNECT },
	{ "OPTIONS", 7, TD_HTTP_M_OPTIONS },	{ "TRACE", 5, TD_HTTP_M_TRACE },
	{ "PATCH", 5, TD_HTTP_M_PATCH },
};

/* known fields; hop-by-hop ones (RFC 9110 7.6.1 plus the Proxy-* of common practice) flagged */
static const struct {
	const char *name;
	uint8_t len;
	uint8_t id;
	uint8_t flags;
} td_http_known[] = {
	{ "host", 4, TD_HTTP_H_HOST, 0 },
	{ "content-length", 14, TD_HTTP_H_CONTENT_LENGTH, 0 },
	{ "transfer-encoding", 17, TD_HTTP_H_TRANSFER_ENCODING, TD_HTTP_HF_HOP },
	{ "connection", 10, TD_HTTP_H_CONNECTION, TD_HTTP_HF_HOP },
	{ "keep-alive", 10, TD_HTTP_H_KEEP_ALIVE, TD_HTTP_HF_HOP },
	{ "te", 2, TD_HTTP_H_TE, TD_HTTP_HF_HOP },
	{ "trailer", 7, TD_HTTP_H_TRAILER, TD_HTTP_HF_HOP },
	{ "upgrade", 7, TD_HTTP_H_UPGRADE, TD_HTTP_HF_HOP },
	{ "proxy-connection", 16, TD_HTTP_H_PROXY_CONNECTION, TD_HTTP_HF_HOP },
	{ "proxy-authorization", 19, TD_HTTP_H_PROXY_AUTHORIZATION, TD_HTTP_HF_HOP },
	{ "proxy-authenticate", 18, TD_HTTP_H_PROXY_AUTHENTICATE, TD_HTTP_HF_HOP },
};

static uint16_t td_http_known_flags(unsigned int id)
{
	for (size_t i = 0; i < sizeof(td_http_known) / sizeof(td_http_known[0]); i++)
		if (td_http_known[i].id == id)
			return td_http_known[i].flags;
	return 0;
}

const char *td_http_method_name(enum td_http_method m)
{
	for (size_t i = 0; i < sizeof(td_http_methods) / sizeof(td_http_methods[0]); i++)
		if (td_http_methods[i].id == m)
			return td_http_methods[i].name;
	return "OTHER";
}

void td_http_limits_default(struct td_http_limits *l)
{
	l->max_start_line = TD_HTTP_DEF_START_LINE;
	l->max_header_block = TD_HTTP_DEF_HEADER_BLOCK;
	l->max_headers = TD_HTTP_DEF_HEADERS;
	l->max_body = TD_HTTP_DEF_MAX_BODY;
}

int td_http_parser_init(struct td_http_parser *p, enum td_http_kind kind,
			const struct td_http_limits *lim)
{
	struct td_http_limits def;

	td_http_ctype_init();
	if (!lim) {
		td_http_limits_default(&def);
		lim = &def;
	}
	if (kind != TD_HTTP_REQUEST && kind != TD_HTTP_RESPONSE)
		return -EINVAL;
	/* room for the shortest line; the scan must stay below TD_HTTP_SCAN_MAX */
	if (lim->max_start_line < 16 || lim->max_header_block < 2 || lim->max_headers > TD_HTTP_MAX_HEADERS ||
	    lim->max_start_line > TD_HTTP_SCAN_MAX / 4 || lim->max_header_block > TD_HTTP_SCAN_MAX / 4)
		return -EINVAL;
	memset(p, 0, offsetof(struct td_http_parser, msg));
	memset(&p->msg, 0, offsetof(struct td_http_msg, hdr));
	p->lim = *lim;
	p->kind = kind;
	p->req_method = TD_HTTP_M_GET;
	p->msg.kind = kind;
	p->msg.host = -1;
	return 0;
}

void td_http_parser_set_req_method(struct td_http_parser *p, enum td_http_method m)
{
	p->req_method = m;
}

static enum td_http_rc td_http_fail(struct td_http_parser *p, uint16_t code, const char *why)
{
	p->state = TD_HTTP_S_ERROR;
	p->error = p->kind == TD_HTTP_RESPONSE ? 502 : code;
	p->why = why;
	return TD_HTTP_ERROR;
}

/* "HTTP/1.0" or "HTTP/1.1" -> 10/11; other "HTTP/d.d" -> 0 (505); anything else -> -1 (400) */
static int td_http_version(const char *v, size_t len)
{
	if (len != 8 || memcmp(v, "HTTP/", 5) || v[6] != '.' ||
	    v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
		return -1;
	if (v[5] == '1' && (v[7] == '0' || v[7] == '1'))
		return 10 + (v[7] - '0');
	return 0;
}

/* authority-form of CONNECT: host ":" port, host a name, IPv4 or [IPv6], port 0..65535 */
static bool td_http_authority_ok(const char *t, size_t len)
{
	size_t colon, i;
	unsigned int port = 0;

	if (t[0] == '[') {
		const char *rb = memchr(t, ']', len);

		if (!rb || (size_t)(rb - t) < 2)
			return false;
		colon = (size_t)(rb - t) + 1;
		if (colon >= len || t[colon] != ':')
			return false;
	} else {
		const char *c = memchr(t, ':', len);

		if (!c || c == t)
			return false;
		colon = (size_t)(c - t);
		for (i = 0; i < colon; i++)
			if (!td_http_is_tchar((unsigned char)t[i]) || t[i] == '#')
				return false;
	}
	if (len - colon - 1 < 1 || len - colon - 1 > 5)
		return false;
	for (i = colon + 1; i < len; i++) {
		if (t[i] < '0' || t[i] > '9')
			return false;
		port = port * 10 + (unsigned int)(t[i] - '0');
	}
	return port <= 65535;
}

/* absolute-form: scheme "://" non-empty authority [ path-abempty [ "?" query ] ] */
static bool td_http_absolute_ok(const char *t, size_t len)
{
	size_t i = 0;

	if (!((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z')))
		return false;
	while (i < len && ((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
			   (t[i] >= '0' && t[i] <= '9') || t[i] == '+' || t[i] == '-' || t[i] == '.'))
		i++;
	if (len - i < 4 || memcmp(t + i, "://", 3))
		return false;
	return t[i + 3] != '/' && t[i + 3] != '?';
}

static enum td_http_rc td_http_request_line(struct td_http_parser *p, const char *buf, size_t s, size_t e)
{
	struct td_http_msg *m = &p->msg;
	size_t i = s, t;
	int v;

	while (i < e && (td_http_ctype[(unsigned char)buf[i]] & TD_C_TCHAR))
		i++;
	if (i == s || i == e || buf[i] != ' ')
		return td_http_fail(p, 400, "invalid method");
	m->method_s.off = (uint32_t)s;
	m->method_s.len = (uint32_t)(i - s);
	m->method = TD_HTTP_M_OTHER;
	for (size_t k = 0; k < sizeof(td_http_methods) / sizeof(td_http_methods[0]); k++)
		if (td_http_methods[k].len == i - s && !memcmp(buf + s, td_http_methods[k].name, i - s))
			m->method = td_http_methods[k].id;

	t = ++i;
	while (i < e && buf[i] != ' ') {
		unsigned char c = (unsigned char)buf[i];

		if (c <= 0x20 || c >= 0x7f)
			return td_http_fail(p, 400, "invalid character in request-target");
		if (c == '#')
			return td_http_fail(p, 400, "fragment in request-target");
		i++;
	}
	if (i == t || i == e)
		return td_http_fail(p, 400, "invalid request-target");
	m->target.off = (uint32_t)t;
	m->target.len = (uint32_t)(i - t);

	v = td_http_version(buf + i + 1, e - i - 1);
	if (v < 0)
		return td_http_fail(p, 400, "invalid HTTP version");
	if (v == 0)
		return td_http_fail(p, 505, "unsupported HTTP version");
	m->version = (uint8_t)v;

	if (m->method == TD_HTTP_M_CONNECT) {
		if (!td_http_authority_ok(buf + t, i - t))
			return td_http_fail(p, 400, "CONNECT needs host:port");
		m->target_form = TD_HTTP_T_AUTHORITY;
	} else if (i - t == 1 && buf[t] == '*') {
		if (m->method != TD_HTTP_M_OPTIONS)
			return td_http_fail(p, 400, "asterisk-form outside OPTIONS");
		m->target_form = TD_HTTP_T_ASTERISK;
	} else if (buf[t] == '/') {
		m->target_form = TD_HTTP_T_ORIGIN;
	} else if (td_http_absolute_ok(buf + t, i - t)) {
		m->target_form = TD_HTTP_T_ABSOLUTE;
	} else {
		return td_http_fail(p, 400, "invalid request-target");
	}
	return TD_HTTP_AGAIN;
}

static enum td_http_rc td_http_status_line(struct td_http_parser *p, const char *buf, size_t s, size_t e)
{
	struct td_http_msg *m = &p->msg;
	const char *l = buf + s;
	int v;

	if (e - s < 12 || l[8] != ' ')
		return td_http_fail(p, 502, "invalid status line");
	v = td_http_version(l, 8);
	if (v <= 0)
		return td_http_fail(p, 502, "unsupported HTTP version");
	m->version = (uint8_t)v;
	for (int k = 9; k < 12; k++)
		if (l[k] < '0' || l[k] > '9')
			return td_http_fail(p, 502, "invalid status code");
	m->status = (uint16_t)((l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0'));
	if (m->status < 100 || m->status > 599)
		return td_http_fail(p, 502, "invalid status code");
	m->reason.off = (uint32_t)(s + 12);
	if (e - s == 12)
		return TD_HTTP_AGAIN;	/* no reason phrase and no SP: tolerated */
	if (l[12] != ' ')
		return td_http_fail(p, 502, "invalid status line");
	for (size_t k = s + 13; k < e; k++)
		if (!td_http_is_fchar((unsigned char)buf[k]))
			return td_http_fail(p, 502, "control character in reason phrase");
	m->reason.off = (uint32_t)(s + 13);
	m->reason.len = (uint32_t)(e - s - 13);
	return TD_HTTP_AGAIN;
}

int td_http_field_line_parse(const char *line, size_t len, uint32_t base, struct td_http_header *h,
			     const char **why)
{
	size_t n = 0, vs, ve;
	const char *w;

	td_http_ctype_init();
	if (len && td_http_is_ows((unsigned char)line[0])) {
		w = "obs-fold or whitespace before a field name";
		goto bad;
	}
	while (n < len && (td_http_ctype[(unsigned char)line[n]] & TD_C_TCHAR))
		n++;
	if (n == len) {
		w = "field line without colon";
		goto bad;
	}
	if (line[n] != ':') {
		w = td_http_is_ows((unsigned char)line[n]) ? "whitespace before colon" :
		    "invalid character in field name";
		goto bad;
	}
	if (n == 0) {
		w = "empty field name";
		goto bad;
	}
	vs = n + 1;
	while (vs < len && td_http_is_ows((unsigned char)line[vs]))
		vs++;
	ve = len;
	while (ve > vs && td_http_is_ows((unsigned char)line[ve - 1]))
		ve--;
	for (size_t k = vs; k < ve; k++) {
		if (!td_http_is_fchar((unsigned char)line[k])) {
			w = "control character in field value";
			goto bad;
		}
	}
	h->name.off = base;
	h->name.len = (uint32_t)n;
	h->value.off = base + (uint32_t)vs;
	h->value.len = (uint32_t)(ve - vs);
	h->id = TD_HTTP_H_OTHER;
	h->flags = 0;
	for (size_t k = 0; k < sizeof(td_http_known) / sizeof(td_http_known[0]); k++) {
		if (td_http_known[k].len == n && !strncasecmp(line, td_http_known[k].name, n)) {
			h->id = td_http_known[k].id;
			break;
		}
	}
	return 0;
bad:
	if (why)
		*why = w;
	return -EBADMSG;
}

/*
 * Walk the comma-separated list v[0..len): cb(arg, elem, elen) per non-empty element (OWS
 * trimmed). Stops at the first non-zero return of cb and returns it.
 */
static int td_http_list_walk(const char *v, size_t len, int (*cb)(void *, const char *, size_t), void *arg)
{
	size_t i = 0;

	while (i < len) {
		size_t s, e;
		int rc;

		while (i < len && (td_http_is_ows((unsigned char)v[i]) || v[i] == ','))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && td_http_is_ows((unsigned char)v[e - 1]))
			e--;
		if (e > s && (rc = cb(arg, v + s, e - s)))
			return rc;
	}
	return 0;
}

static bool td_http_is_token(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!(td_http_ctype[(unsigned char)s[i]] & TD_C_TCHAR))
			return false;
	return len > 0;
}

static int td_http_te_elem(void *arg, const char *s, size_t len)
{
	struct td_http_parser *p = arg;

	if (len == 7 && !strncasecmp(s, "chunked", 7)) {
		if (p->flags & TD_HTTP_PF_TE_CHUNKED)
			return -1;	/* chunked twice */
		p->flags |= TD_HTTP_PF_TE_CHUNKED | TD_HTTP_PF_TE_LAST;
		return 0;
	}
	/* any other coding, with or without parameters */
	p->flags |= TD_HTTP_PF_TE_OTHER;
	p->flags &= ~TD_HTTP_PF_TE_LAST;
	return 0;
}

static int td_http_conn_elem(void *arg, const char *s, size_t len)
{
	struct td_http_parser *p = arg;

	if (!td_http_is_token(s, len))
		return -1;
	if (len == 5 && !strncasecmp(s, "close", 5))
		p->flags |= TD_HTTP_PF_CLOSE;
	else if (len == 10 && !strncasecmp(s, "keep-alive", 10))
		p->flags |= TD_HTTP_PF_KEEPALIVE;
	else if (len == 7 && !strncasecmp(s, "upgrade", 7))
		p->flags |= TD_HTTP_PF_UPGRADE;
	return 0;
}

/* marks every field named by one Connection option as hop-by-hop */
struct td_http_hop_ctx {
	struct td_http_msg *m;
	const char *buf;
};

static int td_http_hop_elem(void *arg, const char *s, size_t len)
{
	struct td_http_hop_ctx *c = arg;

	for (uint32_t k = 0; k < c->m->nhdr; k++) {
		struct td_http_header *h = &c->m->hdr[k];

		/* Host and Content-Length are end-to-end whatever Connection says */
		if (h->id == TD_HTTP_H_HOST || h->id == TD_HTTP_H_CONTENT_LENGTH)
			continue;
		if (h->name.len == len && !strncasecmp(c->buf + h->name.off, s, len))
			h->flags |= TD_HTTP_HF_HOP;
	}
	return 0;
}

static enum td_http_rc td_http_field(struct td_http_parser *p, const char *buf, size_t s, size_t e)
{
	struct td_http_msg *m = &p->msg;
	struct td_http_header *h;
	const char *why = NULL;
	const char *v;

	if (m->nhdr >= p->lim.max_headers)
		return td_http_fail(p, 431, "too many header fields");
	h = &m->hdr[m->nhdr];
	if (td_http_field_line_parse(buf + s, e - s, (uint32_t)s, h, &why))
		return td_http_fail(p, 400, why);
	h->flags = td_http_known_flags(h->id);
	v = buf + h->value.off;

	switch (h->id) {
	case TD_HTTP_H_HOST:
		if (p->kind == TD_HTTP_REQUEST) {
			if (m->host >= 0)
				return td_http_fail(p, 400, "duplicate Host");
			m->host = (int)m->nhdr;
		}
		break;
	case TD_HTTP_H_CONTENT_LENGTH: {
		uint64_t cl = 0;

		if (p->flags & TD_HTTP_PF_CL)
			return td_http_fail(p, 400, "duplicate Content-Length");
		p->flags |= TD_HTTP_PF_CL;
		if (!h->value.len || h->value.len > 18)
			return td_http_fail(p, 400, "invalid Content-Length");
		for (uint32_t k = 0; k < h->value.len; k++) {
			if (v[k] < '0' || v[k] > '9')
				return td_http_fail(p, 400, "invalid Content-Length");
			cl = cl * 10 + (uint64_t)(v[k] - '0');
		}
		m->content_length = cl;
		break;
	}
	case TD_HTTP_H_TRANSFER_ENCODING:
		p->flags |= TD_HTTP_PF_TE;
		if (td_http_list_walk(v, h->value.len, td_http_te_elem, p))
			return td_http_fail(p, 400, "chunked applied twice");
		if (!(p->flags & (TD_HTTP_PF_TE_CHUNKED | TD_HTTP_PF_TE_OTHER)))
			return td_http_fail(p, 400, "empty Transfer-Encoding");
		break;
	case TD_HTTP_H_CONNECTION:
		p->flags |= TD_HTTP_PF_CONN;
		if (td_http_list_walk(v, h->value.len, td_http_conn_elem, p))
			return td_http_fail(p, 400, "invalid Connection option");
		break;
	default:
		break;
	}
	m->nhdr++;
	return TD_HTTP_AGAIN;
}

/* after the empty line: framing, Host, keep-alive, hop-by-hop set */
static enum td_http_rc td_http_finish(struct td_http_parser *p, const char *buf)
{
	struct td_http_msg *m = &p->msg;
	bool req = p->kind == TD_HTTP_REQUEST;

	if ((p->flags & TD_HTTP_PF_TE) && (p->flags & TD_HTTP_PF_CL))
		return td_http_fail(p, 400, "Content-Length with Transfer-Encoding");
	if ((p->flags & TD_HTTP_PF_TE) && m->version == 10)
		return td_http_fail(p, 400, "Transfer-Encoding in HTTP/1.0");

	if (p->flags & TD_HTTP_PF_CONN) {
		struct td_http_hop_ctx c = { .m = m, .buf = buf };

		for (uint32_t k = 0; k < m->nhdr; k++)
			if (m->hdr[k].id == TD_HTTP_H_CONNECTION)
				td_http_list_walk(buf + m->hdr[k].value.off, m->hdr[k].value.len,
						  td_http_hop_elem, &c);
	}
	for (uint32_t k = 0; k < m->nhdr; k++) {
		if (m->hdr[k].flags & TD_HTTP_HF_HOP)
			m->nhop++;
		if (m->hdr[k].id == TD_HTTP_H_UPGRADE && (p->flags & TD_HTTP_PF_UPGRADE))
			m->upgrade = true;
	}
	m->keep_alive = m->version == 11 ? !(p->flags & TD_HTTP_PF_CLOSE) :
		(p->flags & TD_HTTP_PF_KEEPALIVE) && !(p->flags & TD_HTTP_PF_CLOSE);

	if (req) {
		if (m->version == 11 && m->host < 0)
			return td_http_fail(p, 400, "HTTP/1.1 request without Host");
		if (p->flags & TD_HTTP_PF_TE) {
			if (!(p->flags & TD_HTTP_PF_TE_LAST))
				return td_http_fail(p, 400, "chunked is not the final transfer coding");
			if (p->flags & TD_HTTP_PF_TE_OTHER)
				return td_http_fail(p, 501, "unsupported transfer coding");
			m->body = TD_HTTP_BODY_CHUNKED;
		} else if (p->flags & TD_HTTP_PF_CL) {
			if (p->lim.max_body && m->content_length > p->lim.max_body)
				return td_http_fail(p, 413, "Content-Length over the body limit");
			m->body = m->content_length ? TD_HTTP_BODY_LENGTH : TD_HTTP_BODY_NONE;
		} else {
			m->body = TD_HTTP_BODY_NONE;
		}
		return TD_HTTP_DONE;
	}

	/* response, RFC 9112 6.3 in order */
	if (m->status == 101 || (p->req_method == TD_HTTP_M_CONNECT && m->status / 100 == 2))
		m->body = TD_HTTP_BODY_TUNNEL;
	else if (p->req_method == TD_HTTP_M_HEAD || m->status / 100 == 1 || m->status == 204 ||
		 m->status == 304)
		m->body = TD_HTTP_BODY_NONE;
	else if (p->flags & TD_HTTP_PF_TE)
		m->body = (p->flags & TD_HTTP_PF_TE_LAST) ? TD_HTTP_BODY_CHUNKED : TD_HTTP_BODY_CLOSE;
	else if (p->flags & TD_HTTP_PF_CL)
		m->body = m->content_length ? TD_HTTP_BODY_LENGTH : TD_HTTP_BODY_NONE;
	else
		m->body = TD_HTTP_BODY_CLOSE;
	if (m->body == TD_HTTP_BODY_CLOSE)
		m->keep_alive = false;
	return TD_HTTP_DONE;
}

enum td_http_rc td_http_parse(struct td_http_parser *p, const char *buf, size_t len, size_t *consumed)
{
	enum td_http_rc rc;
	size_t i;

	*consumed = 0;
	if (p->state == TD_HTTP_S_ERROR)
		return TD_HTTP_ERROR;
	if (p->state == TD_HTTP_S_DONE) {
		*consumed = p->pos;
		return TD_HTTP_DONE;
	}
	if (len > TD_HTTP_SCAN_MAX)
		len = TD_HTTP_SCAN_MAX;	/* the limits stop the scan long before */

	for (;;) {
		bool start = p->state == TD_HTTP_S_START;
		size_t e;

		/* find the CRLF ending the current line, checking each new byte once */
		for (i = p->pos + p->scan; i < len; i++) {
			unsigned char c = (unsigned char)buf[i];

			if (c == '\r') {
				if (i + 1 >= len)
					break;
				if (buf[i + 1] != '\n')
					return td_http_fail(p, 400, "bare CR");
				goto line;
			}
			if (c == '\n')
				return td_http_fail(p, 400, "bare LF");
			if (start && i - p->pos + 3 > p->lim.max_start_line)
				return td_http_fail(p, 414, "request line too long");
			if (!start && i - p->hdr_start + 5 > p->lim.max_header_block)
				return td_http_fail(p, 431, "header block too large");
		}
		p->scan = (uint32_t)(i - p->pos);
		return TD_HTTP_AGAIN;
line:
		e = i;
		p->scan = 0;
		if (start) {
			if (e == p->pos) {
				/* RFC 9112 2.2: empty lines before a request line, a few */
				if (p->kind == TD_HTTP_RESPONSE || ++p->empty_lines > TD_HTTP_MAX_EMPTY_LINES)
					return td_http_fail(p, 400, "empty start line");
				p->pos = (uint32_t)(e + 2);
				continue;
			}
			rc = p->kind == TD_HTTP_REQUEST ? td_http_request_line(p, buf, p->pos, e) :
							  td_http_status_line(p, buf, p->pos, e);
			if (rc != TD_HTTP_AGAIN)
				return rc;
			p->state = TD_HTTP_S_HEADERS;
			p->pos = p->hdr_start = (uint32_t)(e + 2);
			continue;
		}
		if (e == p->pos) {
			p->pos = (uint32_t)(e + 2);
			rc = td_http_finish(p, buf);
			if (rc != TD_HTTP_DONE)
				return rc;
			p->state = TD_HTTP_S_DONE;
			*consumed = p->pos;
			return TD_HTTP_DONE;
		}
		rc = td_http_field(p, buf, p->pos, e);
		if (rc != TD_HTTP_AGAIN)
			return rc;
		p->pos = (uint32_t)(e + 2);
	}
}

int td_http_header_find(const struct td_http_msg *m, const char *buf, const char *name,
			unsigned int from)
{
	size_t n = strlen(name);

	for (unsigned int k = from; k < m->nhdr; k++)
		if (m->hdr[k].name.len == n && !strncasecmp(buf + m->hdr[k].name.off, name, n))
			return (int)k;
	return -ENOENT;
}

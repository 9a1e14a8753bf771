/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared-cache decisions of RFC 9111 over parsed HTTP messages: pure, no clock, no I/O. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cache_policy.h"

/* a piece of a field value */
struct td_tok {
	const char *p;
	size_t len;
};

static bool td_tok_is(struct td_tok t, const char *s)
{
	return strlen(s) == t.len && !strncasecmp(t.p, s, t.len);
}

static bool td_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* value of the first field named name, false when absent */
static bool td_hval(const struct td_http_msg *m, const char *buf, const char *name,
		    struct td_tok *v)
{
	int i = td_http_header_find(m, buf, name, 0);

	if (i < 0)
		return false;
	v->p = td_http_ptr(buf, m->hdr[i].value);
	v->len = m->hdr[i].value.len;
	return true;
}

/*
 * Next element of a comma list starting at *pos: name (token, up to '=' ',' OWS) and an optional
 * value (token or quoted-string without its quotes; escapes kept). false at the end.
 */
static bool td_list_next(const char *s, size_t len, size_t *pos, struct td_tok *name,
			 struct td_tok *val)
{
	size_t i = *pos;

	while (i < len && (td_ows(s[i]) || s[i] == ','))
		i++;
	if (i >= len)
		return false;
	name->p = s + i;
	while (i < len && s[i] != '=' && s[i] != ',' && !td_ows(s[i]))
		i++;
	name->len = (size_t)(s + i - name->p);
	val->p = NULL;
	val->len = 0;
	while (i < len && td_ows(s[i]))
		i++;
	if (i < len && s[i] == '=') {
		i++;
		while (i < len && td_ows(s[i]))
			i++;
		if (i < len && s[i] == '"') {
			val->p = s + ++i;
			while (i < len && s[i] != '"')
				i += (s[i] == '\\' && i + 1 < len) ? 2 : 1;
			val->len = (size_t)(s + (i < len ? i : len) - val->p);
			if (i < len)
				i++;
		} else {
			val->p = s + i;
			while (i < len && s[i] != ',' && !td_ows(s[i]))
				i++;
			val->len = (size_t)(s + i - val->p);
		}
	}
	while (i < len && s[i] != ',')	/* ignore junk up to the next element */
		i++;
	*pos = i;
	return true;
}

/* delta-seconds (RFC 9111 1.2.2), capped at 2^31: 0 or -EINVAL */
static int td_delta(struct td_tok v, int64_t *out)
{
	int64_t n = 0;

	if (!v.p || !v.len)
		return -EINVAL;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -EINVAL;
		if (n < TD_CACHE_DELTA_MAX)
			n = n * 10 + (v.p[i] - '0');
	}
	*out = n < TD_CACHE_DELTA_MAX ? n : TD_CACHE_DELTA_MAX;
	return 0;
}

/* a delta-seconds directive; a second occurrence or a bad value marks the message invalid */
static void td_cc_delta(struct td_cache_cc *cc, int64_t *field, struct td_tok v, bool strict)
{
	int64_t n;

	if (td_delta(v, &n)) {
		if (strict)
			cc->flags |= TD_CACHE_CC_INVALID;
		return;
	}
	if (*field >= 0 && *field != n && strict)
		cc->flags |= TD_CACHE_CC_INVALID;
	*field = n;
}

int td_cache_cc_parse(const struct td_http_msg *m, const char *buf, struct td_cache_cc *cc)
{
	bool resp = m->kind == TD_HTTP_RESPONSE, seen = false;
	struct td_tok n, v;

	memset(cc, 0, sizeof(*cc));
	cc->max_age = cc->s_maxage = cc->max_stale = cc->min_fresh = -1;
	for (int i = 0; (i = td_http_header_find(m, buf, "cache-control", (unsigned int)i)) >= 0; i++) {
		const char *s = td_http_ptr(buf, m->hdr[i].value);
		size_t len = m->hdr[i].value.len, pos = 0;

		seen = true;
		while (td_list_next(s, len, &pos, &n, &v)) {
			if (td_tok_is(n, "no-store"))
				cc->flags |= TD_CACHE_CC_NO_STORE;
			else if (td_tok_is(n, "no-cache"))	/* qualified form: as unqualified */
				cc->flags |= TD_CACHE_CC_NO_CACHE;
			else if (td_tok_is(n, "private"))	/* qualified form: as unqualified */
				cc->flags |= TD_CACHE_CC_PRIVATE;
			else if (td_tok_is(n, "public"))
				cc->flags |= TD_CACHE_CC_PUBLIC;
			else if (td_tok_is(n, "must-revalidate"))
				cc->flags |= TD_CACHE_CC_MUST_REVALIDATE;
			else if (td_tok_is(n, "proxy-revalidate"))
				cc->flags |= TD_CACHE_CC_PROXY_REVALIDATE;
			else if (td_tok_is(n, "only-if-cached"))
				cc->flags |= TD_CACHE_CC_ONLY_IF_CACHED;
			else if (td_tok_is(n, "no-transform"))
				cc->flags |= TD_CACHE_CC_NO_TRANSFORM;
			else if (td_tok_is(n, "max-age"))
				td_cc_delta(cc, &cc->max_age, v, resp);
			else if (resp && td_tok_is(n, "s-maxage"))
				td_cc_delta(cc, &cc->s_maxage, v, true);
			else if (!resp && td_tok_is(n, "max-stale") && v.p)
				td_cc_delta(cc, &cc->max_stale, v, false);
			else if (!resp && td_tok_is(n, "max-stale"))
				cc->max_stale = TD_CACHE_DELTA_MAX;
			else if (!resp && td_tok_is(n, "min-fresh"))
				td_cc_delta(cc, &cc->min_fresh, v, false);
		}
	}
	if (!resp && !seen) {	/* RFC 9111 5.4: Pragma only without Cache-Control */
		for (int i = 0; (i = td_http_header_find(m, buf, "pragma", (unsigned int)i)) >= 0; i++) {
			const char *s = td_http_ptr(buf, m->hdr[i].value);
			size_t len = m->hdr[i].value.len, pos = 0;

			while (td_list_next(s, len, &pos, &n, &v))
				if (td_tok_is(n, "no-cache"))
					cc->flags |= TD_CACHE_CC_NO_CACHE;
		}
	}
	return 0;
}

int td_cache_date_parse(const char *s, size_t len, int64_t *t)
{
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT",	/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
		"%A, %d-%b-%y %H:%M:%S GMT",	/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
		"%a %b %e %H:%M:%S %Y",		/* asctime: Sun Nov  6 08:49:37 1994 */
	};
	char tmp[64];

	if (!s || len == 0 || len >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		struct tm tm;
		const char *end;
		time_t v;

		memset(&tm, 0, sizeof(tm));
		end = strptime(tmp, fmts[i], &tm);
		if (!end || *end)
			continue;
		v = timegm(&tm);
		if (v == (time_t)-1)
			continue;
		*t = (int64_t)v;
		return 0;
	}
	return -EINVAL;
}

int td_cache_date_format(int64_t t, char *out, size_t size)
{
	time_t v = (time_t)t;
	struct tm tm;
	size_t n;

	if (!gmtime_r(&v, &tm))
		return -EINVAL;
	n = strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return n ? (int)n : -ENOSPC;
}

/* status codes this cache understands (RFC 9110 15) and may store; 206 and 304 are not stored */
static bool td_status_understood(unsigned int st)
{
	static const uint16_t ok[] = {
		200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 307, 308, 400, 401, 403, 404, 405,
		406, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426, 500, 501,
		502, 503, 504, 505,
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (ok[i] == st)
			return true;
	return false;
}

/* heuristically cacheable by default (RFC 9110 15.1) */
static bool td_status_heuristic(unsigned int st)
{
	switch (st) {
	case 200: case 203: case 204: case 300: case 301: case 308:
	case 404: case 405: case 410: case 414: case 501:
		return true;
	default:
		return false;
	}
}

static bool td_vary_star(const struct td_http_msg *m, const char *buf)
{
	struct td_tok n, v;

	for (int i = 0; (i = td_http_header_find(m, buf, "vary", (unsigned int)i)) >= 0; i++) {
		size_t pos = 0;

		while (td_list_next(td_http_ptr(buf, m->hdr[i].value), m->hdr[i].value.len, &pos, &n, &v))
			if (n.len == 1 && n.p[0] == '*')
				return true;
	}
	return false;
}

int td_cache_storable(const struct td_http_msg *req, const char *qbuf,
		      const struct td_http_msg *resp, const char *rbuf)
{
	struct td_cache_cc qc, rc;
	struct td_tok v;

	if (req->method != TD_HTTP_M_GET && req->method != TD_HTTP_M_HEAD)
		return TD_CACHE_NS_METHOD;
	if (!td_status_understood(resp->status))
		return TD_CACHE_NS_STATUS;
	td_cache_cc_parse(req, qbuf, &qc);
	td_cache_cc_parse(resp, rbuf, &rc);
	if (qc.flags & TD_CACHE_CC_NO_STORE)
		return TD_CACHE_NS_REQ_NO_STORE;
	if (rc.flags & TD_CACHE_CC_NO_STORE)
		return TD_CACHE_NS_NO_STORE;
	if (rc.flags & TD_CACHE_CC_PRIVATE)
		return TD_CACHE_NS_PRIVATE;
	if (td_http_header_find(req, qbuf, "authorization", 0) >= 0 &&
	    !(rc.flags & (TD_CACHE_CC_PUBLIC | TD_CACHE_CC_MUST_REVALIDATE)) && rc.s_maxage < 0)
		return TD_CACHE_NS_AUTHORIZATION;
	if (td_vary_star(resp, rbuf))
		return TD_CACHE_NS_VARY_STAR;
	if (!(rc.flags & TD_CACHE_CC_PUBLIC) && rc.max_age < 0 && rc.s_maxage < 0 &&
	    !td_hval(resp, rbuf, "expires", &v) && !td_status_heuristic(resp->status))
		return TD_CACHE_NS_NOT_CACHEABLE;
	return TD_CACHE_STORABLE;
}

const char *td_cache_nostore_name(int why)
{
	static const char *const names[] = {
		[TD_CACHE_STORABLE] = "storable",
		[TD_CACHE_NS_METHOD] = "method",
		[TD_CACHE_NS_STATUS] = "status",
		[TD_CACHE_NS_REQ_NO_STORE] = "request no-store",
		[TD_CACHE_NS_NO_STORE] = "no-store",
		[TD_CACHE_NS_PRIVATE] = "private",
		[TD_CACHE_NS_AUTHORIZATION] = "authorization",
		[TD_CACHE_NS_VARY_STAR] = "vary *",
		[TD_CACHE_NS_NOT_CACHEABLE] = "not cacheable",
	};

	if (why < 0 || (size_t)why >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[why];
}

/* a date field: 0 and *t, -ENOENT (absent) or -EINVAL */
static int td_hdate(const struct td_http_msg *m, const char *buf, const char *name, int64_t *t)
{
	struct td_tok v;

	if (!td_hval(m, buf, name, &v))
		return -ENOENT;
	return td_cache_date_parse(v.p, v.len, t);
}

int td_cache_meta_init(struct td_cache_meta *meta, const struct td_http_msg *resp, const char *rbuf,
		       int64_t request_time, int64_t response_time)
{
	struct td_cache_cc *cc = &meta->cc;
	int64_t expires, lm;
	struct td_tok v;

	if (resp->kind != TD_HTTP_RESPONSE || response_time < request_time)
		return -EINVAL;
	memset(meta, 0, sizeof(*meta));
	meta->request_time = request_time;
	meta->response_time = response_time;
	if (td_hdate(resp, rbuf, "date", &meta->date_value))
		meta->date_value = response_time;
	if (td_hval(resp, rbuf, "age", &v)) {	/* first member of a list (RFC 9111 5.1) */
		struct td_tok first = v;
		const char *c = memchr(v.p, ',', v.len);

		if (c)
			first.len = (size_t)(c - v.p);
		while (first.len && td_ows(first.p[first.len - 1]))
			first.len--;
		if (td_delta(first, &meta->age_value))
			meta->age_value = 0;
	}
	meta->has_validator = td_http_header_find(resp, rbuf, "etag", 0) >= 0 ||
			      td_http_header_find(resp, rbuf, "last-modified", 0) >= 0;
	td_cache_cc_parse(resp, rbuf, cc);

	/* RFC 9111 4.2.1: s-maxage, max-age, Expires - Date; then 4.2.2 heuristic */
	if (cc->flags & TD_CACHE_CC_INVALID)
		meta->lifetime = 0;
	else if (cc->s_maxage >= 0)
		meta->lifetime = cc->s_maxage;
	else if (cc->max_age >= 0)
		meta->lifetime = cc->max_age;
	else if (td_hval(resp, rbuf, "expires", &v))
		meta->lifetime = td_cache_date_parse(v.p, v.len, &expires) ? 0 :
				 (expires > meta->date_value ? expires - meta->date_value : 0);
	else if (((cc->flags & TD_CACHE_CC_PUBLIC) || td_status_heuristic(resp->status)) &&
		 !td_hdate(resp, rbuf, "last-modified", &lm) && lm < meta->date_value) {
		meta->lifetime = (meta->date_value - lm) / 10;
		if (meta->lifetime > TD_CACHE_HEURISTIC_MAX)
			meta->lifetime = TD_CACHE_HEURISTIC_MAX;
		meta->heuristic = true;
	}
	return 0;
}

int64_t td_cache_current_age(const struct td_cache_meta *meta, int64_t now)
{
	int64_t apparent = meta->response_time - meta->date_value;
	int64_t delay = meta->response_time - meta->request_time;
	int64_t corrected = meta->age_value + delay;
	int64_t initial, resident = now - meta->response_time, age;

	if (apparent < 0)
		apparent = 0;
	if (resident < 0)
		resident = 0;
	initial = apparent > corrected ? apparent : corrected;
	age = initial + resident;
	return age < TD_CACHE_DELTA_MAX ? age : TD_CACHE_DELTA_MAX;
}

int td_cache_age_value(const struct td_cache_meta *meta, int64_t now, char *out, size_t size)
{
	int n = snprintf(out, size, "%lld", (long long)td_cache_current_age(meta, now));

	return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

int td_cache_use(const struct td_cache_meta *meta, const struct td_http_msg *req, const char *qbuf,
		 int64_t now, struct td_cache_decision *d)
{
	uint32_t rf = meta->cc.flags;
	struct td_cache_cc qc;
	bool must;

	td_cache_cc_parse(req, qbuf, &qc);
	d->age = td_cache_current_age(meta, now);
	d->ttl = meta->lifetime - d->age;
	d->fwd = TD_CACHE_FWD_NONE;
	d->use = TD_CACHE_USE_FRESH;

	/* the client asks for an end-to-end check (RFC 9111 5.2.1.1, 5.2.1.3, 5.2.1.4, 5.4) */
	if ((qc.flags & TD_CACHE_CC_NO_CACHE) ||
	    (qc.max_age >= 0 && (qc.max_age == 0 || d->age > qc.max_age)) ||
	    (qc.min_fresh >= 0 && d->ttl < qc.min_fresh)) {
		d->use = TD_CACHE_USE_REVALIDATE;
		d->fwd = TD_CACHE_FWD_REQUEST;
	} else if (rf & TD_CACHE_CC_NO_CACHE) {		/* RFC 9111 5.2.2.4 */
		d->use = TD_CACHE_USE_REVALIDATE;
		d->fwd = TD_CACHE_FWD_STALE;
	} else if (d->ttl <= 0) {			/* stale (RFC 9111 4.2.4) */
		/* 5.2.2.2, 5.2.2.8, and s-maxage implies proxy-revalidate (5.2.2.10) */
		must = (rf & (TD_CACHE_CC_MUST_REVALIDATE | TD_CACHE_CC_PROXY_REVALIDATE)) ||
		       meta->cc.s_maxage >= 0;
		if (!must && qc.max_stale >= 0 && -d->ttl <= qc.max_stale) {
			d->use = TD_CACHE_USE_STALE;
		} else {
			d->use = TD_CACHE_USE_REVALIDATE;
			d->fwd = TD_CACHE_FWD_STALE;
		}
	}
	if (d->use == TD_CACHE_USE_REVALIDATE && (qc.flags & TD_CACHE_CC_ONLY_IF_CACHED))
		d->use = TD_CACHE_USE_GATEWAY_TIMEOUT;	/* RFC 9111 5.2.1.7 */
	return 0;
}

/* append len bytes of p at out + *n, keep out NUL-terminated: 0 or -ENOSPC */
static int td_put(char *out, size_t size, size_t *n, const char *p, size_t len)
{
	if (*n + len + 1 > size)
		return -ENOSPC;
	memcpy(out + *n, p, len);
	*n += len;
	out[*n] = '\0';
	return 0;
}

static int td_puts(char *out, size_t size, size_t *n, const char *s)
{
	return td_put(out, size, n, s, strlen(s));
}

int td_cache_conditional(const struct td_http_msg *stored, const char *sbuf, char *out, size_t size)
{
	struct td_tok v;
	size_t n = 0;
	bool any = false;
	int err = 0;

	if (!out || !size)
		return -EINVAL;
	out[0] = '\0';
	if (td_hval(stored, sbuf, "etag", &v)) {
		any = true;
		err = td_puts(out, size, &n, "If-None-Match: ") ?: td_put(out, size, &n, v.p, v.len) ?:
		      td_puts(out, size, &n, "\r\n");
		if (err)
			goto cleanup;
	}
	if (td_hval(stored, sbuf, "last-modified", &v)) {
		any = true;
		err = td_puts(out, size, &n, "If-Modified-Since: ") ?:
		      td_put(out, size, &n, v.p, v.len) ?: td_puts(out, size, &n, "\r\n");
		if (err)
			goto cleanup;
	}
	if (!any)
		err = -ENOENT;
cleanup:
	return err ? err : (int)n;
}

/* entity-tag comparison (RFC 9110 8.8.3.2): strong needs both strong; weak ignores W/ */
static bool td_etag_match(struct td_tok a, struct td_tok b, bool strong)
{
	bool wa = a.len >= 2 && !strncmp(a.p, "W/", 2), wb = b.len >= 2 && !strncmp(b.p, "W/", 2);

	if (strong && (wa || wb))
		return false;
	if (wa) {
		a.p += 2;
		a.len -= 2;
	}
	if (wb) {
		b.p += 2;
		b.len -= 2;
	}
	return a.len == b.len && !memcmp(a.p, b.p, a.len);
}

/* RFC 9111 4.3.4: does the 304 select the stored response (cache-generated conditional)? */
static bool td_304_selects(const struct td_http_msg *stored, const char *sbuf,
			   const struct td_http_msg *nm, const char *nbuf)
{
	struct td_tok ne, se, nl, sl;

	if (td_hval(nm, nbuf, "etag", &ne)) {
		bool weak = ne.len >= 2 && !strncmp(ne.p, "W/", 2);

		return td_hval(stored, sbuf, "etag", &se) && td_etag_match(ne, se, !weak);
	}
	if (td_hval(nm, nbuf, "last-modified", &nl))
		return td_hval(stored, sbuf, "last-modified", &sl) && nl.len == sl.len &&
		       !memcmp(nl.p, sl.p, nl.len);
	return true;	/* no validator: it answers the conditional we built from stored */
}

/* field lines of a 304 that do not update the stored response (RFC 9111 3.1, 3.2) */
static bool td_304_skip(const struct td_http_msg *nm, const char *nbuf, unsigned int i)
{
	const char *name = td_http_ptr(nbuf, nm->hdr[i].name);
	size_t len = nm->hdr[i].name.len;

	return (nm->hdr[i].flags & TD_HTTP_HF_HOP) ||
	       (len == 14 && !strncasecmp(name, "content-length", len));
}

static bool td_name_eq(const struct td_http_msg *a, const char *abuf, unsigned int i,
		       const struct td_http_msg *b, const char *bbuf, unsigned int j)
{
	return a->hdr[i].name.len == b->hdr[j].name.len &&
	       !strncasecmp(td_http_ptr(abuf, a->hdr[i].name), td_http_ptr(bbuf, b->hdr[j].name),
			    a->hdr[i].name.len);
}

static int td_put_field(char *out, size_t size, size_t *n, const struct td_http_msg *m,
			const char *buf, unsigned int i)
{
	return td_put(out, size, n, td_http_ptr(buf, m->hdr[i].name), m->hdr[i].name.len) ?:
	       td_puts(out, size, n, ": ") ?:
	       td_put(out, size, n, td_http_ptr(buf, m->hdr[i].value), m->hdr[i].value.len) ?:
	       td_puts(out, size, n, "\r\n");
}

int td_cache_merge_304(const struct td_http_msg *stored, const char *sbuf,
		       const struct td_http_msg *nm, const char *nbuf, char *out, size_t size)
{
	char line[32];
	size_t n = 0;
	int err;

	if (stored->kind != TD_HTTP_RESPONSE || nm->kind != TD_HTTP_RESPONSE || nm->status != 304 ||
	    !out || !size)
		return -EINVAL;
	if (!td_304_selects(stored, sbuf, nm, nbuf))
		return -ESTALE;
	snprintf(line, sizeof(line), "HTTP/1.1 %03u ", stored->status);
	err = td_puts(out, size, &n, line) ?:
	      td_put(out, size, &n, td_http_ptr(sbuf, stored->reason), stored->reason.len) ?:
	      td_puts(out, size, &n, "\r\n");
	if (err)
		goto cleanup;
	/* stored fields that the 304 does not replace, in their order */
	for (unsigned int i = 0; i < stored->nhdr; i++) {
		bool replaced = false;

		for (unsigned int j = 0; j < nm->nhdr && !replaced; j++)
			replaced = !td_304_skip(nm, nbuf, j) && td_name_eq(stored, sbuf, i, nm, nbuf, j);
		if (replaced)
			continue;
		err = td_put_field(out, size, &n, stored, sbuf, i);
		if (err)
			goto cleanup;
	}
	/* then every updating field of the 304 */
	for (unsigned int j = 0; j < nm->nhdr; j++) {
		if (td_304_skip(nm, nbuf, j))
			continue;
		err = td_put_field(out, size, &n, nm, nbuf, j);
		if (err)
			goto cleanup;
	}
	err = td_puts(out, size, &n, "\r\n");
cleanup:
	return err ? err : (int)n;
}

/* fields whose values are case-insensitive lists (RFC 9110 12.5) */
static bool td_vary_ci(const char *name)
{
	return !strcmp(name, "accept-encoding") || !strcmp(name, "accept-charset") ||
	       !strcmp(name, "accept-language");
}

#define TD_VARY_MAX_NAMES	16u
#define TD_VARY_NAME_MAX	64u

static int td_name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

int td_cache_vary_key(const struct td_http_msg *resp, const char *rbuf,
		      const struct td_http_msg *req, const char *qbuf, char *out, size_t size)
{
	char names[TD_VARY_MAX_NAMES][TD_VARY_NAME_MAX];
	unsigned int nn = 0;
	struct td_tok n, v;
	size_t len = 0;
	int err = 0;

	if (!out || !size)
		return -EINVAL;
	out[0] = '\0';
	for (int i = 0; (i = td_http_header_find(resp, rbuf, "vary", (unsigned int)i)) >= 0; i++) {
		size_t pos = 0;

		while (td_list_next(td_http_ptr(rbuf, resp->hdr[i].value), resp->hdr[i].value.len,
				    &pos, &n, &v)) {
			bool dup = false;

			if (n.len == 1 && n.p[0] == '*')
				return -ENOENT;
			if (!n.len || n.len >= TD_VARY_NAME_MAX || nn == TD_VARY_MAX_NAMES)
				return -ENOSPC;
			for (size_t k = 0; k < n.len; k++)
				names[nn][k] = (char)tolower((unsigned char)n.p[k]);
			names[nn][n.len] = '\0';
			for (unsigned int k = 0; k < nn && !dup; k++)
				dup = !strcmp(names[k], names[nn]);
			if (!dup)
				nn++;
		}
	}
	qsort(names, nn, sizeof(names[0]), td_name_cmp);
	for (unsigned int k = 0; k < nn; k++) {
		bool first = true, ci = td_vary_ci(names[k]);

		err = td_puts(out, size, &len, names[k]);
		if (err)
			goto cleanup;
		/* combine every field line, one ", " between members, OWS dropped */
		for (int i = 0; (i = td_http_header_find(req, qbuf, names[k], (unsigned int)i)) >= 0; i++) {
			const char *s = td_http_ptr(qbuf, req->hdr[i].value);
			size_t vlen = req->hdr[i].value.len, p = 0;

			if (first)
				err = td_puts(out, size, &len, ":");
			while (!err && p < vlen) {
				size_t e = p;

				while (e < vlen && s[e] != ',')
					e++;
				size_t b = p, t = e;

				while (b < t && td_ows(s[b]))
					b++;
				while (t > b && td_ows(s[t - 1]))
					t--;
				if (t > b) {
					if (!first)
						err = td_puts(out, size, &len, ", ");
					first = false;
					if (!err)
						err = td_put(out, size, &len, s + b, t - b);
					if (!err && ci)
						for (size_t c = len - (t - b); c < len; c++)
							out[c] = (char)tolower((unsigned char)out[c]);
				}
				p = e + 1;
			}
			if (err)
				goto cleanup;
			if (first)
				first = false;	/* present but empty */
		}
		err = td_puts(out, size, &len, "\n");
		if (err)
			goto cleanup;
	}
cleanup:
	return err ? err : (int)len;
}

static int td_hexval(char c)
{
	return isdigit((unsigned char)c) ? c - '0' :
	       isxdigit((unsigned char)c) ? tolower((unsigned char)c) - 'a' + 10 : -1;
}

int td_cache_uri_normalize(const char *uri, size_t len, char *out, size_t size)
{
	const char *p = uri, *end = uri + len, *auth, *aend, *host_end;
	const char *dport;
	size_t n = 0;
	int err = 0;

	if (!uri || !out || !size)
		return -EINVAL;
	if (len >= 7 && !strncasecmp(uri, "http://", 7)) {
		dport = "80";
		err = td_puts(out, size, &n, "http://");
		p += 7;
	} else if (len >= 8 && !strncasecmp(uri, "https://", 8)) {
		dport = "443";
		err = td_puts(out, size, &n, "https://");
		p += 8;
	} else {
		return -EINVAL;
	}
	if (err)
		goto cleanup;
	auth = p;
	while (p < end && *p != '/' && *p != '?' && *p != '#')
		p++;
	aend = p;
	if (memchr(auth, '@', (size_t)(aend - auth)))	/* no userinfo in a cache key */
		return -EINVAL;
	host_end = aend;
	for (const char *c = aend; c > auth; c--) {	/* ":port" after the last ']' */
		if (c[-1] == ']')
			break;
		if (c[-1] == ':') {
			host_end = c - 1;
			break;
		}
	}
	if (host_end == auth)
		return -EINVAL;
	for (const char *c = auth; c < host_end; c++) {
		char l = (char)tolower((unsigned char)*c);

		err = td_put(out, size, &n, &l, 1);
		if (err)
			goto cleanup;
	}
	if (host_end < aend) {
		const char *port = host_end + 1;
		size_t plen = (size_t)(aend - port);

		while (plen > 1 && *port == '0') {
			port++;
			plen--;
		}
		if (plen && !(plen == strlen(dport) && !memcmp(port, dport, plen)))
			err = td_puts(out, size, &n, ":") ?: td_put(out, size, &n, port, plen);
		if (err)
			goto cleanup;
	}
	if (p == end || *p != '/')
		err = td_puts(out, size, &n, "/");
	for (; !err && p < end && *p != '#'; p++) {
		if (*p == '%' && end - p >= 3 && td_hexval(p[1]) >= 0 && td_hexval(p[2]) >= 0) {
			char h[3] = { '%', (char)toupper((unsigned char)p[1]),
				      (char)toupper((unsigned char)p[2]) };

			err = td_put(out, size, &n, h, 3);
			p += 2;
		} else {
			err = td_put(out, size, &n, p, 1);
		}
	}
cleanup:
	return err ? err : (int)n;
}

int td_cache_key(enum td_http_method method, const char *uri, size_t len, char *out, size_t size)
{
	const char *m = method == TD_HTTP_M_GET ? "GET " : method == TD_HTTP_M_HEAD ? "HEAD " : NULL;
	size_t ml;
	int n;

	if (!m || !out)
		return -EINVAL;
	ml = strlen(m);
	if (size <= ml)
		return -ENOSPC;
	memcpy(out, m, ml);
	n = td_cache_uri_normalize(uri, len, out + ml, size - ml);
	return n < 0 ? n : (int)ml + n;
}

/* length of "scheme://authority" of a normalised URI */
static size_t td_origin_len(const char *u)
{
	const char *s = strstr(u, "://");
	const char *p = s ? strchr(s + 3, '/') : NULL;

	return p ? (size_t)(p - u) : strlen(u);
}

/* resolve ref against base (normalised) into out, normalised: length or -errno */
static int td_resolve(const char *base, struct td_tok ref, char *out, size_t size)
{
	char tmp[TD_CACHE_URI_MAX];
	size_t olen = td_origin_len(base), n = 0;
	const char *colon = memchr(ref.p, ':', ref.len), *slash = memchr(ref.p, '/', ref.len);
	int err;

	if (colon && (!slash || colon < slash))		/* absolute URI */
		return td_cache_uri_normalize(ref.p, ref.len, out, size);
	if (ref.len >= 2 && ref.p[0] == '/' && ref.p[1] == '/') {	/* network-path */
		const char *s = strstr(base, "://");

		err = td_put(tmp, sizeof(tmp), &n, base, (size_t)(s - base) + 1);
	} else if (ref.len && ref.p[0] == '/') {	/* absolute-path */
		err = td_put(tmp, sizeof(tmp), &n, base, olen);
	} else {					/* relative-path: merge (RFC 3986 5.2.3) */
		const char *q = strchr(base + olen, '?');
		size_t plen = q ? (size_t)(q - base) : strlen(base);
		const char *ls = base + plen;

		while (ls > base + olen && ls[-1] != '/')
			ls--;
		err = td_put(tmp, sizeof(tmp), &n, base, (size_t)(ls - base));
	}
	if (!err)
		err = td_put(tmp, sizeof(tmp), &n, ref.p, ref.len);
	if (err)
		return err;
	return td_cache_uri_normalize(tmp, n, out, size);
}

int td_cache_invalidations(const struct td_http_msg *req, const char *target,
			   const struct td_http_msg *resp, const char *rbuf,
			   char (*out)[TD_CACHE_URI_MAX], int max)
{
	static const char *const fields[] = { "location", "content-location" };
	char base[TD_CACHE_URI_MAX];
	int cnt = 0, err;
	size_t olen;

	if (!req || !target || !resp || !out || max < 1)
		return -EINVAL;
	switch (req->method) {	/* safe methods (RFC 9110 9.2.1) */
	case TD_HTTP_M_GET: case TD_HTTP_M_HEAD: case TD_HTTP_M_OPTIONS: case TD_HTTP_M_TRACE:
		return 0;
	default:
		break;
	}
	if (resp->status < 200 || resp->status > 399)
		return 0;
	err = td_cache_uri_normalize(target, strlen(target), base, sizeof(base));
	if (err < 0)
		return err;
	memcpy(out[cnt++], base, (size_t)err + 1);
	olen = td_origin_len(base);
	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]) && cnt < max; f++) {
		struct td_tok v;

		if (!td_hval(resp, rbuf, fields[f], &v) || !v.len)
			continue;
		if (td_resolve(base, v, out[cnt], TD_CACHE_URI_MAX) < 0)
			continue;
		/* same origin only, and once */
		if (td_origin_len(out[cnt]) != olen || strncmp(out[cnt], base, olen))
			continue;
		bool dup = false;

		for (int k = 0; k < cnt && !dup; k++)
			dup = !strcmp(out[k], out[cnt]);
		if (!dup)
			cnt++;
	}
	return cnt;
}

int td_cache_status_format(const char *name, const struct td_cache_status *s, char *out,
			   size_t size)
{
	static const char *const fwd[] = {
		[TD_CACHE_FWD_BYPASS] = "bypass", [TD_CACHE_FWD_METHOD] = "method",
		[TD_CACHE_FWD_URI_MISS] = "uri-miss", [TD_CACHE_FWD_VARY_MISS] = "vary-miss",
		[TD_CACHE_FWD_MISS] = "miss", [TD_CACHE_FWD_REQUEST] = "request",
		[TD_CACHE_FWD_STALE] = "stale",
	};
	char num[48];
	size_t n = 0;
	int err;

	if (!name || !*name || !s || !out || !size || (unsigned int)s->fwd > TD_CACHE_FWD_STALE ||
	    (s->hit && s->fwd != TD_CACHE_FWD_NONE))
		return -EINVAL;
	err = td_puts(out, size, &n, name);
	if (!err && s->hit)
		err = td_puts(out, size, &n, "; hit");
	if (!err && s->fwd != TD_CACHE_FWD_NONE)
		err = td_puts(out, size, &n, "; fwd=") ?: td_puts(out, size, &n, fwd[s->fwd]);
	if (!err && s->fwd != TD_CACHE_FWD_NONE && s->fwd_status) {
		snprintf(num, sizeof(num), "; fwd-status=%u", s->fwd_status);
		err = td_puts(out, size, &n, num);
	}
	if (!err && s->has_ttl) {
		snprintf(num, sizeof(num), "; ttl=%lld", (long long)s->ttl);
		err = td_puts(out, size, &n, num);
	}
	if (!err && s->stored)
		err = td_puts(out, size, &n, "; stored");
	if (!err && s->collapsed)
		err = td_puts(out, size, &n, "; collapsed");
	if (!err && s->detail) {
		err = td_puts(out, size, &n, "; detail=\"");
		for (const char *c = s->detail; !err && *c; c++) {
			if (*c < 0x20 || *c > 0x7e) {
				err = -EINVAL;
				break;
			}
			if (*c == '"' || *c == '\\')
				err = td_put(out, size, &n, "\\", 1);
			if (!err)
				err = td_put(out, size, &n, c, 1);
		}
		if (!err)
			err = td_puts(out, size, &n, "\"");
	}
	return err ? err : (int)n;
}

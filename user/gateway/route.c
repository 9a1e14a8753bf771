/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Gateway router: compiles route specs into a sorted, grouped, immutable table and matches requests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "route.h"

enum { TD_RT_HOST_ANY = 0, TD_RT_HOST_WILD = 1, TD_RT_HOST_EXACT = 2 };
enum { TD_RT_PATH_ANY = 0, TD_RT_PATH_PREFIX = 1, TD_RT_PATH_EXACT = 2 };

/* a compiled header matcher; strings point into the table's string pool */
struct td_rt_hdr {
	const char *name;
	const char *value;
	uint32_t name_len;
	uint32_t value_len;
};

/* a compiled route */
struct td_rt_ent {
	uint32_t idx;			/* config index */
	uint8_t host_kind;		/* TD_RT_HOST_* */
	uint8_t path_kind;		/* TD_RT_PATH_* */
	uint16_t nmatch;		/* (methods != 0) + nhdr */
	uint32_t methods;
	const char *host;		/* lower case; wildcard: the suffix with its dot (".example") */
	uint32_t host_len;
	const char *path;
	uint32_t path_len;
	const char *strip;
	uint32_t strip_len;
	uint32_t nhdr;
	const struct td_rt_hdr *hdr;
	const char *name;
	void *data;
};

/* a run of sorted entries sharing one host (exact or wildcard suffix) */
struct td_rt_grp {
	const char *host;
	uint32_t host_len;
	uint32_t start;
	uint32_t end;
};

struct td_route_table {
	int refs;
	uint32_t n;
	struct td_rt_ent *ent;		/* sorted in match order */
	uint32_t *by_idx;		/* config index -> position in ent */
	struct td_rt_grp *exact;	/* sorted by (len, bytes) for bsearch */
	uint32_t nexact;
	struct td_rt_grp *wild;		/* in match order: longer suffix first */
	uint32_t nwild;
	uint32_t any_start;		/* ent[any_start..n) have no host matcher */
	struct td_rt_hdr *hdrs;
	char *pool;
};

static int td_rt_strcmp(const char *a, uint32_t al, const char *b, uint32_t bl)
{
	if (al != bl)
		return al < bl ? -1 : 1;
	return memcmp(a, b, al);
}

/* total order of sorted entries: host group, then specificity, then config order */
static int td_rt_ent_cmp(const void *pa, const void *pb)
{
	const struct td_rt_ent *a = pa, *b = pb;
	int c;

	if (a->host_kind != b->host_kind)
		return a->host_kind > b->host_kind ? -1 : 1;
	if (a->host_kind == TD_RT_HOST_WILD && a->host_len != b->host_len)
		return a->host_len > b->host_len ? -1 : 1;	/* longer suffix is more specific */
	if (a->host_kind != TD_RT_HOST_ANY) {
		c = td_rt_strcmp(a->host, a->host_len, b->host, b->host_len);
		if (c)
			return c;				/* groups, not specificity */
	}
	if (a->path_kind != b->path_kind)
		return a->path_kind > b->path_kind ? -1 : 1;
	if (a->path_len != b->path_len)
		return a->path_len > b->path_len ? -1 : 1;
	if (a->nmatch != b->nmatch)
		return a->nmatch > b->nmatch ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int td_rt_grp_cmp(const void *pa, const void *pb)
{
	const struct td_rt_grp *a = pa, *b = pb;

	return td_rt_strcmp(a->host, a->host_len, b->host, b->host_len);
}

static bool td_rt_host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == ':' || c == '[' || c == ']';
}

static const char *td_rt_check_path(const char *p)
{
	if (p[0] != '/')
		return "must start with '/'";
	for (const unsigned char *s = (const unsigned char *)p; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f || *s == '?' || *s == '#')
			return "must be visible ASCII without '?' or '#'";
	return NULL;
}

static const char *td_rt_check(const struct td_route_spec *s)
{
	const char *why;

	if (s->host) {
		const char *h = s->host;
		size_t len = strlen(h);

		if (!strncmp(h, "*.", 2)) {
			h += 2;
			len -= 2;
		}
		if (!len || len > TD_ROUTE_MAX_HOST)
			return "host: empty or longer than 253 bytes";
		for (size_t i = 0; i < len; i++)
			if (!td_rt_host_char((unsigned char)h[i]))
				return "host: invalid character ('*' only as a leading \"*.\")";
	}
	if (s->path && s->path_prefix)
		return "path and path_prefix are exclusive";
	if (s->path && (why = td_rt_check_path(s->path)))
		return why;
	if (s->path_prefix && (why = td_rt_check_path(s->path_prefix)))
		return why;
	if (s->strip_prefix && (why = td_rt_check_path(s->strip_prefix)))
		return why;
	if (s->methods & ~(((TD_ROUTE_M(TD_HTTP_M_PATCH) << 1) - 1) & ~TD_ROUTE_M(TD_HTTP_M_OTHER)))
		return "methods: unknown method bit";
	if (s->nheaders > TD_ROUTE_MAX_HEADERS)
		return "more than 8 header matchers";
	if (s->nheaders && !s->headers)
		return "headers missing";
	for (size_t i = 0; i < s->nheaders; i++) {
		const char *nm = s->headers[i].name, *v = s->headers[i].value;

		if (!nm || !*nm || !v)
			return "header matcher without name or value";
		for (; *nm; nm++)
			if (!td_http_is_tchar((unsigned char)*nm))
				return "header name is not a token";
		for (; *v; v++)
			if ((unsigned char)*v < 0x20 && *v != '\t')
				return "header value has a control character";
	}
	return NULL;
}

static char *td_rt_pool_put(char **pool, const char *s, size_t len, bool lower)
{
	char *d = *pool;

	for (size_t i = 0; i < len; i++)
		d[i] = lower && s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
	d[len] = '\0';
	*pool += len + 1;
	return d;
}

struct td_route_table *td_route_table_build(const struct td_route_spec *specs, size_t n,
					    char *err, size_t errlen)
{
	struct td_route_table *t = NULL;
	size_t pool_len = 0, nhdr = 0;
	char *pool;
	int rc = 0;

	if (err && errlen)
		err[0] = '\0';
	if (n > TD_ROUTE_MAX_ROUTES) {
		rc = -E2BIG;
		goto cleanup;
	}
	if (n && !specs) {
		rc = -EINVAL;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		const struct td_route_spec *s = &specs[i];
		const char *why = td_rt_check(s);

		if (why) {
			if (err && errlen)
				snprintf(err, errlen, "route %zu: %s", i, why);
			rc = -EINVAL;
			goto cleanup;
		}
		pool_len += (s->name ? strlen(s->name) : 16) + 1;
		pool_len += (s->host ? strlen(s->host) : 0) + 1;
		pool_len += (s->path ? strlen(s->path) : s->path_prefix ? strlen(s->path_prefix) : 0) + 1;
		pool_len += (s->strip_prefix ? strlen(s->strip_prefix) : 0) + 1;
		for (size_t h = 0; h < s->nheaders; h++)
			pool_len += strlen(s->headers[h].name) + strlen(s->headers[h].value) + 2;
		nhdr += s->nheaders;
	}

	t = calloc(1, sizeof(*t));
	if (!t) {
		rc = -ENOMEM;
		goto cleanup;
	}
	t->refs = 1;
	t->n = (uint32_t)n;
	t->ent = calloc(n ? n : 1, sizeof(*t->ent));
	t->by_idx = calloc(n ? n : 1, sizeof(*t->by_idx));
	t->exact = calloc(n ? n : 1, sizeof(*t->exact));
	t->wild = calloc(n ? n : 1, sizeof(*t->wild));
	t->hdrs = calloc(nhdr ? nhdr : 1, sizeof(*t->hdrs));
	t->pool = malloc(pool_len ? pool_len : 1);
	if (!t->ent || !t->by_idx || !t->exact || !t->wild || !t->hdrs || !t->pool) {
		rc = -ENOMEM;
		goto cleanup;
	}

	pool = t->pool;
	nhdr = 0;
	for (size_t i = 0; i < n; i++) {
		const struct td_route_spec *s = &specs[i];
		struct td_rt_ent *e = &t->ent[i];
		const char *p = s->path ? s->path : s->path_prefix;
		char nbuf[32];

		e->idx = (uint32_t)i;
		e->data = s->data;
		if (!s->name)
			snprintf(nbuf, sizeof(nbuf), "route%u", (unsigned int)i);
		e->name = td_rt_pool_put(&pool, s->name ? s->name : nbuf,
					 strlen(s->name ? s->name : nbuf), false);
		if (!s->host) {
			e->host_kind = TD_RT_HOST_ANY;
			e->host = td_rt_pool_put(&pool, "", 0, false);
		} else if (!strncmp(s->host, "*.", 2)) {
			e->host_kind = TD_RT_HOST_WILD;
			e->host_len = (uint32_t)strlen(s->host) - 1;
			e->host = td_rt_pool_put(&pool, s->host + 1, e->host_len, true);
		} else {
			e->host_kind = TD_RT_HOST_EXACT;
			e->host_len = (uint32_t)strlen(s->host);
			e->host = td_rt_pool_put(&pool, s->host, e->host_len, true);
		}
		e->path_kind = s->path ? TD_RT_PATH_EXACT : s->path_prefix ? TD_RT_PATH_PREFIX : TD_RT_PATH_ANY;
		e->path_len = p ? (uint32_t)strlen(p) : 0;
		e->path = td_rt_pool_put(&pool, p ? p : "", e->path_len, false);
		e->strip_len = s->strip_prefix ? (uint32_t)strlen(s->strip_prefix) : 0;
		e->strip = td_rt_pool_put(&pool, s->strip_prefix ? s->strip_prefix : "", e->strip_len, false);
		e->methods = s->methods;
		e->nhdr = (uint32_t)s->nheaders;
		e->hdr = &t->hdrs[nhdr];
		for (size_t h = 0; h < s->nheaders; h++) {
			struct td_rt_hdr *d = &t->hdrs[nhdr++];

			d->name_len = (uint32_t)strlen(s->headers[h].name);
			d->name = td_rt_pool_put(&pool, s->headers[h].name, d->name_len, true);
			d->value_len = (uint32_t)strlen(s->headers[h].value);
			d->value = td_rt_pool_put(&pool, s->headers[h].value, d->value_len, false);
		}
		e->nmatch = (uint16_t)((s->methods != 0) + s->nheaders);
	}

	qsort(t->ent, n, sizeof(*t->ent), td_rt_ent_cmp);

	t->any_start = t->n;
	for (uint32_t i = 0; i < t->n; i++) {
		struct td_rt_ent *e = &t->ent[i];
		struct td_rt_grp *g;

		t->by_idx[e->idx] = i;
		if (e->host_kind == TD_RT_HOST_ANY) {
			if (t->any_start == t->n)
				t->any_start = i;
			continue;
		}
		if (e->host_kind == TD_RT_HOST_EXACT)
			g = t->nexact ? &t->exact[t->nexact - 1] : NULL;
		else
			g = t->nwild ? &t->wild[t->nwild - 1] : NULL;
		if (!g || td_rt_strcmp(g->host, g->host_len, e->host, e->host_len)) {
			g = e->host_kind == TD_RT_HOST_EXACT ? &t->exact[t->nexact++] : &t->wild[t->nwild++];
			g->host = e->host;
			g->host_len = e->host_len;
			g->start = i;
		}
		g->end = i + 1;
	}
	/* exact groups come out sorted by (len, bytes) already; keep the bsearch contract explicit */
	qsort(t->exact, t->nexact, sizeof(*t->exact), td_rt_grp_cmp);

cleanup:
	if (rc) {
		td_route_table_unref(t);
		errno = -rc;
		return NULL;
	}
	return t;
}

struct td_route_table *td_route_table_ref(struct td_route_table *t)
{
	__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
	return t;
}

void td_route_table_unref(struct td_route_table *t)
{
	if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	free(t->ent);
	free(t->by_idx);
	free(t->exact);
	free(t->wild);
	free(t->hdrs);
	free(t->pool);
	free(t);
}

size_t td_route_count(const struct td_route_table *t)
{
	return t->n;
}

/* prefix p (plen) matches path segment-aware: equal, or followed by '/', or p ends with '/' */
static bool td_rt_prefix(const char *path, size_t len, const char *p, size_t plen)
{
	if (len < plen || memcmp(path, p, plen))
		return false;
	return len == plen || p[plen - 1] == '/' || path[plen] == '/';
}

static bool td_rt_headers(const struct td_rt_ent *e, const struct td_route_req *req)
{
	if (!e->nhdr)
		return true;
	if (!req->msg || !req->buf)
		return false;
	for (uint32_t i = 0; i < e->nhdr; i++) {
		const struct td_rt_hdr *h = &e->hdr[i];
		bool found = false;

		for (uint32_t j = 0; j < req->msg->nhdr && !found; j++) {
			const struct td_http_header *f = &req->msg->hdr[j];

			found = f->name.len == h->name_len && f->value.len == h->value_len &&
				!strncasecmp(td_http_ptr(req->buf, f->name), h->name, h->name_len) &&
				!memcmp(td_http_ptr(req->buf, f->value), h->value, h->value_len);
		}
		if (!found)
			return false;
	}
	return true;
}

/* first entry of ent[start..end) matching path and the matchers; -ENOENT if none */
static int td_rt_scan(const struct td_route_table *t, uint32_t start, uint32_t end,
		      const struct td_route_req *req, const char *path, size_t plen)
{
	for (uint32_t i = start; i < end; i++) {
		const struct td_rt_ent *e = &t->ent[i];

		if (e->path_kind == TD_RT_PATH_EXACT) {
			if (plen != e->path_len || memcmp(path, e->path, plen))
				continue;
		} else if (e->path_kind == TD_RT_PATH_PREFIX) {
			if (!td_rt_prefix(path, plen, e->path, e->path_len))
				continue;
		}
		if (e->methods && (req->method >= 32 || !(e->methods & TD_ROUTE_M(req->method))))
			continue;
		if (!td_rt_headers(e, req))
			continue;
		return (int)e->idx;
	}
	return -ENOENT;
}

int td_route_lookup(const struct td_route_table *t, const struct td_route_req *req)
{
	char host[TD_ROUTE_MAX_HOST + 1];
	const char *path = req->target ? req->target : "";
	size_t plen = req->target ? req->target_len : 0, hlen = 0;
	const char *q = memchr(path, '?', plen);
	int idx;

	if (q)
		plen = (size_t)(q - path);
	if (req->host) {
		size_t n = req->host_len;

		/* drop ":port" (an IPv6 literal keeps its brackets) */
		for (size_t i = n; i > 0; i--) {
			if (req->host[i - 1] == ':') {
				n = i - 1;
				break;
			}
			if (req->host[i - 1] == ']' || req->host[i - 1] == '.')
				break;
		}
		if (n <= TD_ROUTE_MAX_HOST) {
			for (size_t i = 0; i < n; i++) {
				char c = req->host[i];

				host[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
			}
			hlen = n;
		}
	}
	if (hlen) {
		struct td_rt_grp key = { .host = host, .host_len = (uint32_t)hlen };
		const struct td_rt_grp *g = bsearch(&key, t->exact, t->nexact, sizeof(*g), td_rt_grp_cmp);

		if (g && (idx = td_rt_scan(t, g->start, g->end, req, path, plen)) >= 0)
			return idx;
		for (uint32_t i = 0; i < t->nwild; i++) {
			g = &t->wild[i];
			/* ".example" matches "a.example", never "example" itself */
			if (g->host_len >= hlen || memcmp(host + hlen - g->host_len, g->host, g->host_len))
				continue;
			if ((idx = td_rt_scan(t, g->start, g->end, req, path, plen)) >= 0)
				return idx;
		}
	}
	return td_rt_scan(t, t->any_start, t->n, req, path, plen);
}

int td_route_req_from_msg(struct td_route_req *req, const struct td_http_msg *msg, const char *buf)
{
	const char *tg = td_http_ptr(buf, msg->target);
	size_t len = msg->target.len;

	memset(req, 0, sizeof(*req));
	req->method = msg->method;
	req->msg = msg;
	req->buf = buf;
	if (msg->host >= 0) {
		req->host = td_http_ptr(buf, msg->hdr[msg->host].value);
		req->host_len = msg->hdr[msg->host].value.len;
	}
	if (msg->target_form == TD_HTTP_T_ORIGIN) {
		req->target = tg;
		req->target_len = len;
		return 0;
	}
	if (msg->target_form == TD_HTTP_T_ABSOLUTE) {
		/* RFC 9112 3.2.2: the authority of an absolute-form target replaces Host */
		const char *a = memmem(tg, len, "://", 3), *end = tg + len, *p;

		if (!a)
			return -EINVAL;
		a += 3;
		for (p = a; p < end && *p != '/' && *p != '?'; p++)
			;
		if (memchr(a, '@', (size_t)(p - a)))
			return -EINVAL;		/* userinfo: never routed on */
		req->host = a;
		req->host_len = (size_t)(p - a);
		req->target = p < end && *p == '/' ? p : "/";
		req->target_len = p < end && *p == '/' ? (size_t)(end - p) : 1;
		return 0;
	}
	return -EINVAL;
}

const char *td_route_name(const struct td_route_table *t, int idx)
{
	if (idx < 0 || (uint32_t)idx >= t->n)
		return NULL;
	return t->ent[t->by_idx[idx]].name;
}

void *td_route_data(const struct td_route_table *t, int idx)
{
	if (idx < 0 || (uint32_t)idx >= t->n)
		return NULL;
	return t->ent[t->by_idx[idx]].data;
}

int td_route_rewrite(const struct td_route_table *t, int idx, const char *target,
		     size_t target_len, char *out, size_t outlen)
{
	const struct td_rt_ent *e;
	const char *q, *rest = target;
	size_t plen, rlen, need;

	if (idx < 0 || (uint32_t)idx >= t->n || !target || !out)
		return -EINVAL;
	e = &t->ent[t->by_idx[idx]];
	q = memchr(target, '?', target_len);
	plen = q ? (size_t)(q - target) : target_len;
	if (e->strip_len && td_rt_prefix(target, plen, e->strip, e->strip_len))
		rest = target + e->strip_len;
	rlen = target_len - (size_t)(rest - target);
	/* the path part of rest must start with '/': "" -> "/", "?q" -> "/?q", "x" -> "/x" */
	need = rlen + (rlen == 0 || rest[0] != '/') + 1;
	if (need > outlen || need > INT32_MAX)
		return -ENOSPC;
	need = 0;
	if (rlen == 0 || rest[0] != '/')
		out[need++] = '/';
	memcpy(out + need, rest, rlen);
	need += rlen;
	out[need] = '\0';
	return (int)need;
}

int td_route_method_parse(const char *name)
{
	for (int m = TD_HTTP_M_GET; m <= TD_HTTP_M_PATCH; m++)
		if (!strcmp(name, td_http_method_name(m)))
			return m;
	return -EINVAL;
}

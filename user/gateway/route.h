/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Gateway router: an immutable, compiled route table matching host, path, method and headers. */
#ifndef TD_GW_ROUTE_H
#define TD_GW_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parser.h"

/*
 * Contract: td_route_table_build() compiles a whole configuration generation into one table that
 * is never modified afterwards (every other function takes it const), so lookups need no lock.
 * A reload builds a new table and the caller publishes it atomically (e.g. __atomic_store_n of
 * the pointer, each worker taking a reference at a safe point) and drops the old one with
 * td_route_table_unref() once no request uses it. Lookups never allocate. The match order is in
 * docs/gateway-routing.md and td_route_table_build()'s comment.
 */

#define TD_ROUTE_MAX_ROUTES	65536u	/* routes per table */
#define TD_ROUTE_MAX_HEADERS	8u	/* header matchers per route */
#define TD_ROUTE_MAX_HOST	253u	/* bytes of a configured host (a DNS name) */

/* methods bit of enum td_http_method m (TD_HTTP_M_GET ... TD_HTTP_M_PATCH) */
#define TD_ROUTE_M(m)		(1u << (m))

/* one header matcher: a field named name (case-insensitive) whose value is exactly value */
struct td_route_hdr {
	const char *name;
	const char *value;
};

/* one configured route; the strings are copied by td_route_table_build() */
struct td_route_spec {
	const char *name;		/* for logs and metrics; NULL: "route<index>" */
	const char *host;		/* NULL: any; "api.example" exact; "*.example" any subdomain */
	const char *path;		/* exact path ("/users"), NULL: none; not with path_prefix */
	const char *path_prefix;	/* segment-aware prefix ("/users"), NULL: none */
	uint32_t methods;		/* TD_ROUTE_M() bits, 0: any method */
	const struct td_route_hdr *headers;
	size_t nheaders;		/* <= TD_ROUTE_MAX_HEADERS */
	const char *strip_prefix;	/* removed from the path by td_route_rewrite(), NULL: none */
	void *data;			/* the caller's (upstream, limiter...), returned as is */
};

/* one request to route; headers are looked up in msg (slices of buf), msg may be NULL */
struct td_route_req {
	const char *host;		/* Host value, port allowed ("a.example:8000"), NULL: none */
	size_t host_len;
	const char *target;		/* origin-form target: path and optional "?query" */
	size_t target_len;
	uint8_t method;			/* enum td_http_method */
	const struct td_http_msg *msg;
	const char *buf;
};

struct td_route_table;

/*
 * Compile n routes (config order = index) into a new table with one reference. Match order, the
 * first difference decides: host (exact > wildcard, longer suffix first > any), then path (exact >
 * prefix, longer first > any), then the number of method and header matchers (methods count as
 * one, each header as one; more first), then config order. NULL + errno: EINVAL (bad spec; when
 * err is not NULL it holds "route N: why"), E2BIG (too many routes), ENOMEM.
 */
struct td_route_table *td_route_table_build(const struct td_route_spec *specs, size_t n,
					    char *err, size_t errlen);

/* take one more reference (atomic); returns t */
struct td_route_table *td_route_table_ref(struct td_route_table *t);

/* drop one reference (atomic); the last one frees the table. NULL is ignored */
void td_route_table_unref(struct td_route_table *t);

/* number of routes */
size_t td_route_count(const struct td_route_table *t);

/* the most specific route matching req: its config index, or -ENOENT (answer 404) */
int td_route_lookup(const struct td_route_table *t, const struct td_route_req *req);

/* fill req from a parsed request head (Host field, or the authority of an absolute-form target) */
int td_route_req_from_msg(struct td_route_req *req, const struct td_http_msg *msg, const char *buf);

/* name and data of route idx (NULL if idx is out of range) */
const char *td_route_name(const struct td_route_table *t, int idx);
void *td_route_data(const struct td_route_table *t, int idx);

/*
 * The upstream target of route idx for an origin-form target: strip_prefix removed from the path
 * when it is a segment-aware prefix of it, the query kept, an empty path becoming "/". Writes a
 * NUL-terminated string to out; returns its length, -ENOSPC (outlen < target_len + 2 always
 * suffices) or -EINVAL.
 */
int td_route_rewrite(const struct td_route_table *t, int idx, const char *target,
		     size_t target_len, char *out, size_t outlen);

/* enum td_http_method of a method name (exact, upper case), -EINVAL for an unknown one */
int td_route_method_parse(const char *name);

#endif

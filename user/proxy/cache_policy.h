/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared-cache decisions of RFC 9111: store, freshness, age, reuse, validation, Vary, invalidation. */
#ifndef TD_PROXY_CACHE_POLICY_H
#define TD_PROXY_CACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parser.h"

/*
 * Contract: pure functions over messages parsed by td_http_parse() (a struct td_http_msg and the
 * buffer its slices point into); times are Unix seconds supplied by the caller (no clock is read
 * here). Nothing is allocated. Int functions return >= 0 or -errno; text goes to caller buffers.
 */

#define TD_CACHE_DELTA_MAX	2147483648LL	/* 2^31: cap of delta-seconds (RFC 9111 1.2.2) */
#define TD_CACHE_HEURISTIC_MAX	86400LL		/* cap of the heuristic lifetime (1 day) */
#define TD_CACHE_URI_MAX	2048u		/* normalised URI buffer size */

/* Cache-Control directives understood (TD_CACHE_CC_*), unknown ones are ignored (RFC 9111 5.2.3) */
#define TD_CACHE_CC_NO_STORE		0x001u
#define TD_CACHE_CC_NO_CACHE		0x002u	/* also request Pragma: no-cache (RFC 9111 5.4) */
#define TD_CACHE_CC_PRIVATE		0x004u
#define TD_CACHE_CC_PUBLIC		0x008u
#define TD_CACHE_CC_MUST_REVALIDATE	0x010u
#define TD_CACHE_CC_PROXY_REVALIDATE	0x020u
#define TD_CACHE_CC_ONLY_IF_CACHED	0x040u
#define TD_CACHE_CC_NO_TRANSFORM	0x080u
#define TD_CACHE_CC_INVALID		0x100u	/* duplicate or invalid max-age/s-maxage: stale */

/* parsed Cache-Control of one message; -1: directive absent */
struct td_cache_cc {
	uint32_t flags;		/* TD_CACHE_CC_* */
	int64_t max_age;
	int64_t s_maxage;	/* responses */
	int64_t max_stale;	/* requests; TD_CACHE_DELTA_MAX for "max-stale" without a value */
	int64_t min_fresh;	/* requests */
};

/* why a response is not stored (td_cache_storable), TD_CACHE_STORABLE when it is */
enum td_cache_nostore {
	TD_CACHE_STORABLE = 0,
	TD_CACHE_NS_METHOD,		/* not GET or HEAD */
	TD_CACHE_NS_STATUS,		/* not final, 206, 304, or not understood */
	TD_CACHE_NS_REQ_NO_STORE,	/* request no-store */
	TD_CACHE_NS_NO_STORE,		/* response no-store */
	TD_CACHE_NS_PRIVATE,		/* response private (shared cache) */
	TD_CACHE_NS_AUTHORIZATION,	/* request Authorization without public/s-maxage/must-revalidate */
	TD_CACHE_NS_VARY_STAR,		/* Vary: * never matches */
	TD_CACHE_NS_NOT_CACHEABLE,	/* no explicit freshness, not public, status not heuristic */
};

/* what a stored response is for a request (td_cache_use) */
enum td_cache_use {
	TD_CACHE_USE_FRESH = 0,		/* serve it (hit) */
	TD_CACHE_USE_STALE,		/* serve it stale: the request's max-stale allows it */
	TD_CACHE_USE_REVALIDATE,	/* send a conditional request first */
	TD_CACHE_USE_GATEWAY_TIMEOUT,	/* only-if-cached and not usable: answer 504 */
};

/* RFC 9211 fwd parameter values */
enum td_cache_fwd {
	TD_CACHE_FWD_NONE = 0,		/* not forwarded (hit) */
	TD_CACHE_FWD_BYPASS, TD_CACHE_FWD_METHOD, TD_CACHE_FWD_URI_MISS, TD_CACHE_FWD_VARY_MISS,
	TD_CACHE_FWD_MISS, TD_CACHE_FWD_REQUEST, TD_CACHE_FWD_STALE,
};

/* what td_cache_meta_init() learnt from a response, kept with the stored response */
struct td_cache_meta {
	int64_t request_time;	/* when the request was sent */
	int64_t response_time;	/* when the response was received */
	int64_t date_value;	/* Date, response_time when absent or invalid (RFC 9110 6.6.1) */
	int64_t age_value;	/* Age, 0 when absent or invalid */
	int64_t lifetime;	/* freshness lifetime, seconds */
	bool heuristic;		/* lifetime is heuristic (RFC 9111 4.2.2) */
	bool has_validator;	/* ETag or Last-Modified present */
	struct td_cache_cc cc;	/* response directives */
};

/* outcome of td_cache_use() */
struct td_cache_decision {
	enum td_cache_use use;
	enum td_cache_fwd fwd;	/* TD_CACHE_FWD_NONE, _REQUEST (client forced) or _STALE */
	int64_t age;		/* current age */
	int64_t ttl;		/* lifetime - age (negative when stale) */
};

/* one Cache-Status entry (RFC 9211 2) */
struct td_cache_status {
	bool hit;
	enum td_cache_fwd fwd;
	uint16_t fwd_status;	/* 0: omitted */
	bool stored;
	bool collapsed;
	bool has_ttl;
	int64_t ttl;
	const char *detail;	/* NULL: omitted; sent as an sf-string */
};

/* HTTP-date (IMF-fixdate, RFC 850, asctime; RFC 9110 5.6.7) to Unix time: 0 or -EINVAL */
int td_cache_date_parse(const char *s, size_t len, int64_t *t);

/* IMF-fixdate of t into out (>= 30 bytes): length or -ENOSPC / -EINVAL */
int td_cache_date_format(int64_t t, char *out, size_t size);

/* every Cache-Control field of m (requests: Pragma: no-cache when there is none): 0 */
int td_cache_cc_parse(const struct td_http_msg *m, const char *buf, struct td_cache_cc *cc);

/* RFC 9111 3 for a shared cache: TD_CACHE_STORABLE or the reason (enum td_cache_nostore) */
int td_cache_storable(const struct td_http_msg *req, const char *qbuf,
		      const struct td_http_msg *resp, const char *rbuf);

/* short name of an enum td_cache_nostore value */
const char *td_cache_nostore_name(int why);

/* fill meta from a response and its exchange times (RFC 9111 4.2.1-4.2.3): 0 or -EINVAL */
int td_cache_meta_init(struct td_cache_meta *meta, const struct td_http_msg *resp, const char *rbuf,
		       int64_t request_time, int64_t response_time);

/* current_age of RFC 9111 4.2.3 at now, capped at TD_CACHE_DELTA_MAX */
int64_t td_cache_current_age(const struct td_cache_meta *meta, int64_t now);

/* value of the Age field to send at now: length or -ENOSPC */
int td_cache_age_value(const struct td_cache_meta *meta, int64_t now, char *out, size_t size);

/* may the stored response (meta) answer req at now (RFC 9111 4.2.4, 5.2.1, 5.2.2): 0, fills d */
int td_cache_use(const struct td_cache_meta *meta, const struct td_http_msg *req, const char *qbuf,
		 int64_t now, struct td_cache_decision *d);

/*
 * Conditional header lines for revalidating stored (RFC 9111 4.3.1): "If-None-Match: <ETag>\r\n"
 * and/or "If-Modified-Since: <Last-Modified>\r\n" into out. Length, -ENOENT (no validator) or
 * -ENOSPC.
 */
int td_cache_conditional(const struct td_http_msg *stored, const char *sbuf, char *out, size_t size);

/*
 * Update a stored response with a 304 (RFC 9111 3.2, 4.3.4): writes the new head (status line of
 * stored, its fields replaced by those of nm except hop-by-hop fields and Content-Length, blank
 * line) into out. Length, -ESTALE when nm's validators do not select stored, -ENOSPC, -EINVAL.
 */
int td_cache_merge_304(const struct td_http_msg *stored, const char *sbuf,
		       const struct td_http_msg *nm, const char *nbuf, char *out, size_t size);

/*
 * Secondary key (RFC 9111 4.1): for each field named by resp's Vary (lower-cased, sorted, once)
 * "name:value\n" with req's values combined and normalised, "name\n" when absent. Length (0: no
 * Vary), -ENOENT for Vary: * (matches nothing), -ENOSPC.
 */
int td_cache_vary_key(const struct td_http_msg *resp, const char *rbuf,
		      const struct td_http_msg *req, const char *qbuf, char *out, size_t size);

/*
 * Normalise an absolute http(s) URI (RFC 3986 6.2.2, RFC 9110 4.2.3): scheme and host lower-case,
 * default port dropped, empty path "/", %xx upper-case, fragment dropped. Length, -EINVAL, -ENOSPC.
 */
int td_cache_uri_normalize(const char *uri, size_t len, char *out, size_t size);

/*
 * Primary key "GET <uri>" / "HEAD <uri>" from the method and the normalised URI: length,
 * -EINVAL (method other than GET/HEAD or bad URI) or -ENOSPC.
 */
int td_cache_key(enum td_http_method method, const char *uri, size_t len, char *out, size_t size);

/*
 * URIs to invalidate after req (target: its absolute URI) got resp (RFC 9111 4.4): none unless
 * the method is unsafe and the status 2xx/3xx; then the target and the Location and
 * Content-Location URIs of the same origin, normalised, into out[0..max). Count or -EINVAL.
 */
int td_cache_invalidations(const struct td_http_msg *req, const char *target,
			   const struct td_http_msg *resp, const char *rbuf,
			   char (*out)[TD_CACHE_URI_MAX], int max);

/* Cache-Status field value "<name>; hit; ..." (RFC 9211): length, -EINVAL or -ENOSPC */
int td_cache_status_format(const char *name, const struct td_cache_status *s, char *out,
			   size_t size);

#endif

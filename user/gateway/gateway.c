/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The API gateway runtime on the HTTP engine: request path, reloads, listeners, health, status. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "gateway.h"
#include "gw_internal.h"
#include "log.h"
#include "server.h"
#include "tls.h"

#define LD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define TD_GW_FREE_MAX	256u	/* request contexts kept per worker */

/* one request's state, from ops->request to ops->done */
struct td_gw_rctx {
	struct td_gw_rctx *next;	/* worker free list */
	struct td_gw_gen *gen;		/* referenced */
	struct td_gw_route *route;	/* NULL: answered locally before routing */
	int ridx;
	struct td_gw_backend *be;	/* attempt in flight (counted in its in_flight) */
	struct td_gw_backend *last;	/* last backend tried (log, upstream counters) */
	struct td_gw_agg *agg;
	uint64_t tried;
	uint64_t hash;
	uint32_t retries_left;
	unsigned int worker;
	bool has_identity;
	char *target;			/* rewritten target, NULL: the client's */
	char tbuf[256];
	char client[TD_ADDRSTRLEN];
	char rid[TD_GW_RID_MAX + 1];
	char identity[TD_AUTH_IDENTITY_MAX];
};

struct td_gw_worker {
	struct td_gw_gen *gen;		/* cached reference to the published generation */
	struct td_gw_rctx *free;
	unsigned int nfree;
	uint64_t rng;
} __attribute__((aligned(64)));

struct td_gw_lis {
	struct td_gw_endpoint ep;
	bool tls;
	bool keep;			/* reload: still configured */
	int id;
	struct td_tls *t;		/* referenced while bound */
};

struct td_gw {
	struct td_hs *hs;
	struct td_gw_gen *gen;		/* published: workers load it atomically */
	pthread_mutex_t gen_mu;		/* a worker's cache refresh vs. the swap (reloads only) */
	unsigned int nworkers;
	struct td_gw_worker *w;
	struct td_gw_lis *lis;
	size_t n_lis;
	uint64_t gen_no;
	uint32_t cfg_workers;
};

/* aggregation of one request */
struct td_gw_agg_slot {
	struct td_gw_agg *a;
	int err;
	unsigned int status;
	char *body;
	size_t len;
	char *head;
};

struct td_gw_agg {
	struct td_hs_req *r;
	struct td_gw_rctx *c;
	size_t n, pending;
	struct td_gw_agg_slot s[];
};

static uint64_t td_gw_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- generations on the workers ----------------------------------------------------------- */

static struct td_gw_gen *td_gw_worker_gen(struct td_gw *gw, struct td_gw_worker *w)
{
	struct td_gw_gen *g = __atomic_load_n(&gw->gen, __ATOMIC_ACQUIRE), *old;

	if (g == w->gen)
		return g;
	/* after a reload: the lock makes load + ref atomic against the swap and its unref */
	pthread_mutex_lock(&gw->gen_mu);
	g = td_gw_gen_ref(gw->gen);
	pthread_mutex_unlock(&gw->gen_mu);
	old = w->gen;
	w->gen = g;
	td_gw_gen_unref(old);
	return g;
}

static struct td_gw_rctx *td_gw_ctx_get(struct td_gw_worker *w)
{
	struct td_gw_rctx *c = w->free;

	if (c) {
		w->free = c->next;
		w->nfree--;
	} else if (!(c = malloc(sizeof(*c)))) {
		return NULL;
	}
	c->route = NULL;
	c->ridx = -1;
	c->be = c->last = NULL;
	c->agg = NULL;
	c->tried = 0;
	c->hash = 0;
	c->retries_left = 0;
	c->has_identity = false;
	c->target = NULL;
	c->client[0] = c->rid[0] = c->identity[0] = '\0';
	return c;
}

static void td_gw_ctx_put(struct td_gw_worker *w, struct td_gw_rctx *c)
{
	if (c->target && c->target != c->tbuf)
		free(c->target);
	if (w->nfree >= TD_GW_FREE_MAX) {
		free(c);
		return;
	}
	c->next = w->free;
	w->free = c;
	w->nfree++;
}

/* ---- local answers ------------------------------------------------------------------------ */

static void td_gw_reply(struct td_hs_req *r, struct td_gw_rctx *c, unsigned int status,
			const struct td_hs_hdr *extra, size_t nextra, const char *body)
{
	struct td_hs_hdr h[4];
	size_t n = 0;

	h[n++] = (struct td_hs_hdr){ "Content-Type", "application/json" };
	if (c->rid[0])
		h[n++] = (struct td_hs_hdr){ c->gen->rid_header, c->rid };
	for (size_t i = 0; i < nextra && n < 4; i++)
		h[n++] = extra[i];
	td_hs_respond(r, status, h, n, body, strlen(body), false);
}

/* ---- auth --------------------------------------------------------------------------------- */

/* Basic: a cached verification of the same Authorization value skips crypt (see docs) */
static enum td_auth_reason td_gw_basic(struct td_gw_route *rt, const struct td_http_msg *m,
				       const char *buf, struct td_auth_result *res)
{
	unsigned char sha[32];
	unsigned int shalen = 0;
	struct timespec ts;
	int i;

	i = td_http_header_find(m, buf, "Authorization", 0);
	if (i < 0 || td_http_header_find(m, buf, "Authorization", (unsigned int)i + 1) >= 0)
		return td_auth_check(rt->auth, m, buf, time(NULL), res);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (!EVP_Digest(buf + m->hdr[i].value.off, m->hdr[i].value.len, sha, &shalen,
			EVP_sha256(), NULL))
		return td_auth_check(rt->auth, m, buf, time(NULL), res);
	memset(res, 0, sizeof(*res));
	if (!td_gw_basic_cache_get(rt->basic, sha, (uint64_t)ts.tv_sec, res->identity,
				   sizeof(res->identity)))
		return TD_AUTH_OK;
	td_auth_check_value(rt->auth, buf + m->hdr[i].value.off, m->hdr[i].value.len,
			    time(NULL), res);
	if (res->reason == TD_AUTH_OK)
		td_gw_basic_cache_put(rt->basic, sha, (uint64_t)ts.tv_sec, res->identity);
	return res->reason;
}

/* 0: go on; 1: answered */
static int td_gw_auth(struct td_hs_req *r, struct td_gw_rctx *c, const struct td_http_msg *m,
		      const char *buf)
{
	struct td_gw_route *rt = c->route;
	struct td_auth_result res;
	char chal[512];
	struct td_hs_hdr h;

	if (rt->basic)
		td_gw_basic(rt, m, buf, &res);
	else
		td_auth_check(rt->auth, m, buf, time(NULL), &res);
	if (res.reason == TD_AUTH_OK) {
		snprintf(c->identity, sizeof(c->identity), "%s", res.identity);
		c->has_identity = true;
		return 0;
	}
	td_gw_inc(&rt->stat->w[c->worker].auth_failed, 1);
	if (td_auth_challenge(rt->auth, &res, chal, sizeof(chal)) < 0)
		snprintf(chal, sizeof(chal), "Bearer");
	h = (struct td_hs_hdr){ "WWW-Authenticate", chal };
	td_gw_reply(r, c, res.reason == TD_AUTH_INTERNAL ? 500 : 401, &h, 1,
		    res.reason == TD_AUTH_INTERNAL ? "{\"error\": \"internal error\"}" :
		    "{\"error\": \"unauthorized\"}");
	return 1;
}

/* 0: go on; 1: answered 429 */
static int td_gw_limit(struct td_hs_req *r, struct td_gw_rctx *c, const struct td_gw_fwd_out *fo)
{
	struct td_gw_route *rt = c->route;
	unsigned char sha[32];
	unsigned int shalen;
	const void *key = fo->addr.bytes;
	size_t klen = fo->family == TD_AF_INET6 ? 16 : 4;
	char ra[24], body[96];
	struct td_hs_hdr h;
	int rc;

	if (rt->rl_key != TD_RL_KEY_CLIENT_IP && c->has_identity && c->identity[0]) {
		key = c->identity;
		klen = strlen(c->identity);
		if (klen > TD_RL_KEY_MAX && EVP_Digest(c->identity, klen, sha, &shalen,
							 EVP_sha256(), NULL)) {
			key = sha;
			klen = shalen;
		}
	}
	rc = td_rl_take(rt->rl, key, klen, td_hs_req_start_ns(r));
	if (rc <= 0)
		return 0;
	td_gw_inc(&rt->stat->w[c->worker].rate_limited, 1);
	snprintf(ra, sizeof(ra), "%d", rc);
	snprintf(body, sizeof(body), "{\"error\": \"rate limited\", \"retry_after\": %d}", rc);
	h = (struct td_hs_hdr){ "Retry-After", ra };
	td_gw_reply(r, c, 429, &h, 1, body);
	return 1;
}

/* ---- forwarding --------------------------------------------------------------------------- */

static bool td_gw_idempotent(uint8_t m)
{
	return m == TD_HTTP_M_GET || m == TD_HTTP_M_HEAD || m == TD_HTTP_M_OPTIONS ||
	       m == TD_HTTP_M_PUT || m == TD_HTTP_M_DELETE || m == TD_HTTP_M_TRACE;
}

/* the path of an absolute-form target ("http://h/p?q" -> "/p?q"), else the target itself */
static const char *td_gw_origin(const struct td_http_msg *m, const char *buf, size_t *len)
{
	const char *t = buf + m->target.off, *e = t + m->target.len, *p;

	*len = m->target.len;
	if (m->target_form != TD_HTTP_T_ABSOLUTE)
		return t;
	p = memmem(t, *len, "://", 3);
	p = p ? p + 3 : t;
	while (p < e && *p != '/' && *p != '?')
		p++;
	*len = (size_t)(e - p);
	return p;
}

static int td_gw_send(struct td_hs_req *r, struct td_gw_rctx *c, const struct td_gw_fwd_out *fo)
{
	struct td_gw_route *rt = c->route;
	struct td_gw_upstream *u = rt->up;
	struct td_hs_hdr add[TD_GW_MAX_HDR_EDITS + 8], radd[TD_GW_MAX_HDR_EDITS + 2];
	const char *rrm[TD_GW_MAX_HDR_EDITS * 2 + 1];
	size_t na = 0, nr = 0, nrrm = 0;
	struct td_gw_pick p = {
		.now_ns = td_gw_now_ns(), .tried = c->tried, .hash = c->hash,
		.worker = c->worker,
	};
	struct td_gw *gw = td_hs_arg(td_hs_req_hs(r));
	struct td_hs_upstream up;
	struct td_hs_edit ed;
	struct td_gw_backend *be;
	int i, rc;

	p.rng = &gw->w[c->worker].rng;
	i = td_gw_pick_backend(u, &p);
	if (i < 0)
		return i;
	if (p.fail_open && !__atomic_exchange_n(&u->fail_open_logged, 1, __ATOMIC_RELAXED))
		td_warn("gateway: upstream %s: every backend is unhealthy or ejected, using all of "
			"them (fail open)", u->name);
	be = &u->be[i];
	for (size_t k = 0; k < rt->n_req_add; k++)
		add[na++] = (struct td_hs_hdr){ rt->req_add[k].name, rt->req_add[k].value };
	add[na++] = (struct td_hs_hdr){ "X-Forwarded-For", fo->xff };
	add[na++] = (struct td_hs_hdr){ "X-Forwarded-Proto", fo->proto };
	if (fo->xfh[0])
		add[na++] = (struct td_hs_hdr){ "X-Forwarded-Host", fo->xfh };
	add[na++] = (struct td_hs_hdr){ "Forwarded", fo->fwd };
	add[na++] = (struct td_hs_hdr){ c->gen->rid_header, c->rid };
	if (rt->identity_header[0] && c->has_identity)
		add[na++] = (struct td_hs_hdr){ rt->identity_header, c->identity };
	for (size_t k = 0; k < rt->n_resp_add; k++)
		radd[nr++] = (struct td_hs_hdr){ rt->resp_add[k].name, rt->resp_add[k].value };
	radd[nr++] = (struct td_hs_hdr){ c->gen->rid_header, c->rid };
	for (size_t k = 0; k < rt->n_resp_rm; k++)
		rrm[nrrm++] = rt->resp_rm[k];
	rrm[nrrm++] = c->gen->rid_header;
	ed = (struct td_hs_edit){
		.target = c->target,
		.remove = rt->req_rm, .nremove = rt->n_req_rm,
		.add = add, .nadd = na,
		.resp_add = radd, .nresp_add = nr,
		.resp_remove = rrm, .nresp_remove = nrrm,
	};
	up = (struct td_hs_upstream){
		.addr = (const struct sockaddr *)&be->ss, .addrlen = be->sslen,
		.connect_timeout_ms = u->connect_timeout_ms,
		.response_timeout_ms = u->response_timeout_ms,
		.max_idle = u->max_idle, .tag = be,
	};
	__atomic_add_fetch(&be->st->in_flight, 1, __ATOMIC_RELAXED);
	c->be = c->last = be;
	c->tried |= 1ULL << (be->idx & 63);
	rc = td_hs_forward(r, &up, &ed);
	if (rc) {
		__atomic_sub_fetch(&be->st->in_flight, 1, __ATOMIC_RELAXED);
		c->be = NULL;
	}
	return rc;
}

static void td_gw_fwd(struct td_hs_req *r, struct td_gw_rctx *c, struct td_gw_fwd_out *fo)
{
	const struct td_http_msg *m = td_hs_req_msg(r);
	struct td_gw_fwd_in in = {
		.peer = td_hs_req_peer(r, NULL), .tls = td_hs_req_tls(r), .msg = m,
		.buf = td_hs_req_buf(r), .trusted = c->gen->trusted, .n_trusted = c->gen->n_trusted,
		.rid_header = c->gen->rid_header, .rid = c->rid[0] ? c->rid : NULL,
	};

	if (td_gw_forwarded(&in, fo)) {
		/* not an IP peer (never for TCP listeners): no forwarded values but an id */
		memset(fo, 0, sizeof(*fo));
		snprintf(fo->client, sizeof(fo->client), "-");
		if (c->rid[0])
			snprintf(fo->rid, sizeof(fo->rid), "%s", c->rid);
		else
			td_gw_rid_generate(fo->rid);
	}
}

static int td_gw_on_upstream(struct td_hs_req *r, void *tag, int err, unsigned int status,
			     bool may_retry)
{
	struct td_gw_rctx *c = td_hs_req_data(r);
	struct td_gw_backend *be = tag;
	struct td_gw_upstream *u = be->up;
	int kind = td_gw_err_kind(err, status);
	struct td_gw_fwd_out fo;
	bool retry;

	if (!c)
		return 0;
	if (kind >= 0)
		td_gw_inc(&u->stat->w[c->worker].err[kind], 1);
	if (td_gw_outcome(be->st, u->outlier_failures, u->outlier_ejection_ms, kind >= 0,
			  td_gw_now_ns()))
		td_warn("gateway: upstream %s: backend %s ejected for %u ms (%s)", u->name,
			be->addr, u->outlier_ejection_ms, td_gw_err_kind_name((unsigned int)kind));
	retry = may_retry && c->retries_left && td_gw_idempotent(td_hs_req_msg(r)->method) &&
		(kind == TD_GW_E_REFUSED || kind == TD_GW_E_CONNECT_TIMEOUT ||
		 kind == TD_GW_E_RESET || (kind == TD_GW_E_STATUS && status != 504));
	if (!retry)
		return 0;
	c->retries_left--;
	td_gw_inc(&u->stat->w[c->worker].retries, 1);
	__atomic_sub_fetch(&be->st->in_flight, 1, __ATOMIC_RELAXED);
	c->be = NULL;
	td_gw_fwd(r, c, &fo);
	if (td_gw_send(r, c, &fo)) {
		c->last = be;
		return 0;	/* the engine answers for the failed attempt */
	}
	return 1;
}

/* ---- aggregation -------------------------------------------------------------------------- */

static void td_gw_agg_free(struct td_gw_agg *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++) {
		free(a->s[i].body);
		free(a->s[i].head);
	}
	free(a);
}

static void td_gw_agg_finish(struct td_gw_agg *a)
{
	struct td_gw_agg_member m[TD_GW_MAX_AGGREGATE];
	struct td_metrics_buf body, failed;
	struct td_gw_rctx *c = a->c;
	struct td_hs_hdr h[3];
	unsigned int status = 502;
	char xa[TD_GW_MAX_AGGREGATE * TD_GW_NAME_LEN + 32];
	size_t nh = 0;

	td_metrics_buf_init(&body);
	td_metrics_buf_init(&failed);
	for (size_t i = 0; i < a->n; i++)
		m[i] = (struct td_gw_agg_member){
			.name = c->route->agg[i].name, .err = a->s[i].err,
			.status = a->s[i].status, .body = a->s[i].body, .body_len = a->s[i].len,
		};
	if (td_gw_agg_build(m, a->n, &body, &failed, &status)) {
		td_gw_reply(a->r, c, 500, NULL, 0, "{\"error\": \"out of memory\"}");
		goto cleanup;
	}
	h[nh++] = (struct td_hs_hdr){ "Content-Type", "application/json" };
	h[nh++] = (struct td_hs_hdr){ c->gen->rid_header, c->rid };
	if (failed.len) {
		snprintf(xa, sizeof(xa), "incomplete; failed=%s", failed.data);
		h[nh++] = (struct td_hs_hdr){ TD_GW_AGG_HEADER, xa };
	}
	td_hs_respond(a->r, status, h, nh, body.data, body.len, false);
cleanup:
	td_metrics_buf_free(&body);
	td_metrics_buf_free(&failed);
}

static void td_gw_agg_cb(struct td_hs_req *r, void *arg, const struct td_hs_fetch_res *res)
{
	struct td_gw_agg_slot *s = arg;
	struct td_gw_agg *a = s->a;

	s->err = res->err;
	s->status = res->status;
	if (!res->err && res->status >= 200 && res->status <= 299) {
		s->body = malloc(res->body_len + 1);
		if (s->body) {
			memcpy(s->body, res->body, res->body_len);
			s->len = res->body_len;
		} else {
			s->err = -ENOMEM;
		}
	}
	if (--a->pending == 0)
		td_gw_agg_finish(a);
}

static void td_gw_aggregate(struct td_hs_req *r, struct td_gw_rctx *c,
			    const struct td_gw_fwd_out *fo)
{
	struct td_gw_route *rt = c->route;
	struct td_metrics_buf sfx;
	struct td_gw_agg *a;

	a = calloc(1, sizeof(*a) + rt->n_agg * sizeof(a->s[0]));
	if (!a) {
		td_gw_reply(r, c, 500, NULL, 0, "{\"error\": \"out of memory\"}");
		return;
	}
	c->agg = a;
	a->r = r;
	a->c = c;
	a->n = rt->n_agg;
	a->pending = a->n + 1;	/* +1: a callback run at once cannot finish before the loop */
	td_metrics_buf_init(&sfx);
	td_metrics_buf_printf(&sfx, "Accept: application/json\r\n%s: %s\r\n"
			      "X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\nForwarded: %s\r\n",
			      c->gen->rid_header, c->rid, fo->xff, fo->proto, fo->fwd);
	if (fo->xfh[0])
		td_metrics_buf_printf(&sfx, "X-Forwarded-Host: %s\r\n", fo->xfh);
	if (rt->identity_header[0] && c->has_identity)
		td_metrics_buf_printf(&sfx, "%s: %s\r\n", rt->identity_header, c->identity);
	for (size_t k = 0; k < rt->n_req_add; k++)
		td_metrics_buf_printf(&sfx, "%s: %s\r\n", rt->req_add[k].name, rt->req_add[k].value);
	for (size_t i = 0; i < a->n; i++) {
		const struct td_gw_agg_cfg *m = &rt->agg[i];
		struct td_gw_agg_slot *s = &a->s[i];
		int n, rc = -ENOMEM;

		s->a = a;
		n = sfx.err ? -1 : asprintf(&s->head, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n",
					    m->path[0] ? m->path : "/", m->host, sfx.data);
		if (n > 0)
			rc = td_hs_fetch(r, (const struct sockaddr *)&m->ep.ss, m->ep.sslen, s->head,
					 (size_t)n, m->timeout_ms ? m->timeout_ms : 2000,
					 c->gen->agg_max_body, td_gw_agg_cb, s);
		else
			s->head = NULL;
		if (rc) {
			s->err = rc;
			a->pending--;
		}
	}
	td_metrics_buf_free(&sfx);
	if (--a->pending == 0)
		td_gw_agg_finish(a);
}

/* ---- ops ---------------------------------------------------------------------------------- */

static void td_gw_on_request(struct td_hs_req *r)
{
	struct td_gw *gw = td_hs_arg(td_hs_req_hs(r));
	unsigned int wi = td_hs_req_worker(r);
	struct td_gw_worker *w = &gw->w[wi < gw->nworkers ? wi : 0];
	const struct td_http_msg *m = td_hs_req_msg(r);
	const char *buf = td_hs_req_buf(r);
	struct td_gw_gen *g = td_gw_worker_gen(gw, w);
	struct td_gw_fwd_out fo;
	struct td_route_req rq;
	struct td_gw_rctx *c;
	struct td_gw_route *rt;
	const char *t;
	size_t tlen;
	int idx, n;

	c = td_gw_ctx_get(w);
	if (!c) {
		td_hs_respond(r, 503, NULL, 0, NULL, 0, true);
		return;
	}
	c->gen = td_gw_gen_ref(g);
	c->worker = wi < gw->nworkers ? wi : 0;
	td_hs_req_set_data(r, c);
	td_gw_fwd(r, c, &fo);
	memcpy(c->rid, fo.rid, sizeof(c->rid));
	memcpy(c->client, fo.client, sizeof(c->client));

	idx = td_route_req_from_msg(&rq, m, buf) ? -ENOENT : td_route_lookup(g->rt, &rq);
	if (idx < 0) {
		td_gw_reply(r, c, 404, NULL, 0, "{\"error\": \"no route\"}");
		return;
	}
	rt = td_route_data(g->rt, idx);
	c->route = rt;
	c->ridx = idx;
	if (rt->auth && td_gw_auth(r, c, m, buf))
		return;
	if (rt->rl && td_gw_limit(r, c, &fo))
		return;
	if (rt->n_agg) {
		td_gw_aggregate(r, c, &fo);
		return;
	}

	/* upstream target: origin-form, strip_prefix applied */
	t = td_gw_origin(m, buf, &tlen);
	if (rt->strip || m->target_form == TD_HTTP_T_ABSOLUTE) {
		c->target = tlen + 2 <= sizeof(c->tbuf) ? c->tbuf : malloc(tlen + 2);
		if (!c->target) {
			td_gw_reply(r, c, 500, NULL, 0, "{\"error\": \"out of memory\"}");
			return;
		}
		if (rt->strip) {
			n = td_route_rewrite(g->rt, idx, t, tlen, c->target, tlen + 2);
		} else {
			memcpy(c->target, t, tlen);
			c->target[tlen] = '\0';
			n = (int)tlen;
		}
		if (n < 0 || !c->target[0]) {
			td_gw_reply(r, c, 400, NULL, 0, "{\"error\": \"bad request target\"}");
			return;
		}
	}
	/* lb hash key: a header's value or the client address */
	if (rt->up->lb == TD_GW_LB_HASH) {
		int h = rt->up->hash_key == TD_GW_HASH_HEADER ?
			td_http_header_find(m, buf, rt->up->hash_header, 0) : -1;

		c->hash = h >= 0 ? td_gw_hash(buf + m->hdr[h].value.off, m->hdr[h].value.len) :
			  td_gw_hash(fo.addr.bytes, fo.family == TD_AF_INET6 ? 16 : 4);
	}
	c->retries_left = rt->up->retries;
	if (td_gw_send(r, c, &fo))
		td_gw_reply(r, c, 502, NULL, 0, "{\"error\": \"no upstream\"}");
}

static void td_gw_on_done(struct td_hs_req *r)
{
	struct td_gw *gw = td_hs_arg(td_hs_req_hs(r));
	struct td_gw_rctx *c = td_hs_req_data(r);
	const struct td_http_msg *m = td_hs_req_msg(r);
	const char *buf = td_hs_req_buf(r);
	unsigned int status = td_hs_req_status(r);
	uint64_t dur = td_gw_now_ns() - td_hs_req_start_ns(r);
	struct td_gw_gen *g;

	if (!c)
		return;
	g = c->gen;
	if (c->be)
		__atomic_sub_fetch(&c->be->st->in_flight, 1, __ATOMIC_RELAXED);
	td_gw_stat_request(c->route ? c->route->stat : g->unrouted, c->worker, status, dur);
	if (c->last && status >= 100 && status < 600)
		td_gw_inc(&c->last->up->stat->w[c->worker].cls[status / 100 - 1], 1);
	if (g->log && g->log->f) {
		int ref = td_http_header_find(m, buf, "Referer", 0);
		int ua = td_http_header_find(m, buf, "User-Agent", 0);
		struct td_gw_log_rec rec = {
			.client = c->client, .identity = c->has_identity ? c->identity : NULL,
			.time = time(NULL),
			.method = buf + m->method_s.off, .method_len = m->method_s.len,
			.target = buf + m->target.off, .target_len = m->target.len,
			.version = m->version, .status = status,
			.bytes = td_hs_req_bytes_out(r),
			.referer = ref >= 0 ? buf + m->hdr[ref].value.off : NULL,
			.referer_len = ref >= 0 ? m->hdr[ref].value.len : 0,
			.ua = ua >= 0 ? buf + m->hdr[ua].value.off : NULL,
			.ua_len = ua >= 0 ? m->hdr[ua].value.len : 0,
			.rt_ns = dur, .upstream = c->last ? c->last->addr : NULL,
			.route = c->route ? c->route->name : NULL, .rid = c->rid,
		};

		td_gw_log_write(g->log, &rec);
	}
	td_gw_agg_free(c->agg);
	td_hs_req_set_data(r, NULL);
	td_gw_ctx_put(&gw->w[c->worker], c);
	td_gw_gen_unref(g);
}

static const struct td_hs_ops td_gw_ops = {
	.request = td_gw_on_request,
	.upstream = td_gw_on_upstream,
	.done = td_gw_on_done,
};

/* ---- listeners ---------------------------------------------------------------------------- */

static void td_gw_limits(const struct td_gw_cfg *gc, struct td_hs_limits *l)
{
	td_hs_limits_default(l);
	if (gc->max_request_line)
		l->http.max_start_line = gc->max_request_line;
	if (gc->max_header_size)
		l->http.max_header_block = gc->max_header_size;
	if (gc->max_headers)
		l->http.max_headers = gc->max_headers;
	l->http.max_body = gc->max_body_size;
	if (gc->header_timeout_ms)
		l->header_timeout_ms = gc->header_timeout_ms;
	if (gc->idle_timeout_ms)
		l->idle_timeout_ms = gc->idle_timeout_ms;
	if (gc->body_timeout_ms)
		l->body_timeout_ms = gc->body_timeout_ms;
	if (gc->max_conns)
		l->max_conns = gc->max_conns;
}

static bool td_gw_ep_equal(const struct td_gw_endpoint *a, const struct td_gw_endpoint *b)
{
	union td_addr x, y;
	uint8_t fx, fy;

	if (a->ss.ss_family != b->ss.ss_family || td_gw_peer_addr((const void *)&a->ss, &x, &fx) ||
	    td_gw_peer_addr((const void *)&b->ss, &y, &fy) || fx != fy || !td_addr_equal(&x, &y))
		return false;
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_port ==
		       ((const struct sockaddr_in *)&b->ss)->sin_port;
	return ((const struct sockaddr_in6 *)&a->ss)->sin6_port ==
	       ((const struct sockaddr_in6 *)&b->ss)->sin6_port;
}

static void td_gw_lis_drop(struct td_gw *gw, struct td_gw_lis *l)
{
	if (l->id >= 0)
		td_hs_unlisten(gw->hs, l->id);
	td_tls_unref(l->t);
	l->id = -1;
	l->t = NULL;
}

/*
 * The listener set of cfg: plain listeners already bound keep their socket, new ones are bound;
 * TLS listeners are always bound anew with g's certificates (SO_REUSEPORT lets the new socket
 * join the old one's port before the old one closes). On failure every socket bound here is
 * closed again and nothing changed.
 */
static int td_gw_listen_set(struct td_gw *gw, const struct td_config *cfg, struct td_gw_gen *g,
			    struct td_gw_lis **out, size_t *nout, struct td_errors *errs)
{
	const struct td_gw_cfg *gc = &cfg->gateway;
	size_t n = gc->n_listen + gc->n_tls_listen, k = 0;
	struct td_gw_lis *nl = calloc(n ? n : 1, sizeof(*nl));
	int rc = 0;

	if (!nl)
		return -ENOMEM;
	for (size_t i = 0; i < gw->n_lis; i++)
		gw->lis[i].keep = false;
	for (size_t i = 0; i < n; i++) {
		bool tls = i >= gc->n_listen;
		const struct td_gw_endpoint *ep = tls ? &gc->tls_listen[i - gc->n_listen] :
						  &gc->listen[i];
		struct td_gw_lis *l = &nl[k];
		struct td_hs_listener hl;
		struct td_gw_lis *old = NULL;

		for (size_t j = 0; !tls && j < gw->n_lis && !old; j++)
			if (!gw->lis[j].tls && !gw->lis[j].keep && td_gw_ep_equal(&gw->lis[j].ep, ep))
				old = &gw->lis[j];
		l->ep = *ep;
		l->tls = tls;
		l->id = -1;
		if (old) {
			old->keep = true;
			l->id = old->id;
			l->keep = true;	/* not ours to close on failure */
			k++;
			continue;
		}
		if (tls && !g->tls) {
			td_errors_add(errs, cfg->path, ep->line, "gateway.tls.listen %s: no certificate",
				      ep->text);
			rc = -EINVAL;
			break;
		}
		memset(&hl, 0, sizeof(hl));
		memcpy(&hl.ss, &ep->ss, sizeof(hl.ss));
		hl.sslen = ep->sslen;
		hl.tls = tls ? g->tls : NULL;
		rc = td_hs_listen(gw->hs, &hl);
		if (rc < 0) {
			td_errors_add(errs, cfg->path, ep->line, "gateway: cannot listen on %s: %s",
				      ep->text, strerror(-rc));
			break;
		}
		l->id = rc;
		l->t = tls ? td_tls_ref(g->tls) : NULL;
		rc = 0;
		k++;
	}
	if (rc < 0) {
		for (size_t i = 0; i < k; i++)
			if (!nl[i].keep)
				td_gw_lis_drop(gw, &nl[i]);
		for (size_t i = 0; i < gw->n_lis; i++)
			gw->lis[i].keep = false;
		free(nl);
		return rc;
	}
	*out = nl;
	*nout = k;
	return 0;
}

/* adopt the new set: close the old listeners that are not in it */
static void td_gw_listen_commit(struct td_gw *gw, struct td_gw_lis *nl, size_t n)
{
	for (size_t i = 0; i < gw->n_lis; i++)
		if (!gw->lis[i].keep)
			td_gw_lis_drop(gw, &gw->lis[i]);
	free(gw->lis);
	for (size_t i = 0; i < n; i++)
		nl[i].keep = false;
	gw->lis = nl;
	gw->n_lis = n;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

struct td_gw *td_gw_new(const struct td_config *cfg, struct td_errors *errs)
{
	const struct td_gw_cfg *gc = &cfg->gateway;
	struct td_hs_conf conf;
	struct td_gw_lis *nl = NULL;
	struct td_gw *gw;
	size_t nn = 0;
	int rc;

	if (!gc->on) {
		errno = EINVAL;
		return NULL;
	}
	gw = calloc(1, sizeof(*gw));
	if (!gw)
		return NULL;
	pthread_mutex_init(&gw->gen_mu, NULL);
	gw->cfg_workers = gc->workers;
	memset(&conf, 0, sizeof(conf));
	conf.workers = gc->workers;
	td_gw_limits(gc, &conf.lim);
	conf.ops = &td_gw_ops;
	conf.arg = gw;
	conf.name = "gw";
	gw->hs = td_hs_new(&conf);
	if (!gw->hs) {
		rc = -errno;
		td_errors_add(errs, cfg->path, gc->line, "gateway: cannot start the HTTP engine: %s",
			      strerror(-rc));
		goto fail;
	}
	gw->nworkers = td_hs_workers(gw->hs);
	if (!gw->nworkers)
		gw->nworkers = 1;
	gw->w = aligned_alloc(64, gw->nworkers * sizeof(*gw->w));
	if (!gw->w) {
		rc = -ENOMEM;
		goto fail;
	}
	memset(gw->w, 0, gw->nworkers * sizeof(*gw->w));
	for (unsigned int i = 0; i < gw->nworkers; i++)
		if (getrandom(&gw->w[i].rng, sizeof(gw->w[i].rng), 0) != sizeof(gw->w[i].rng))
			gw->w[i].rng = td_gw_now_ns() + i;
	gw->gen = td_gw_gen_build(cfg, NULL, gw->nworkers, ++gw->gen_no, false, errs);
	if (!gw->gen) {
		rc = -errno;
		goto fail;
	}
	rc = td_gw_listen_set(gw, cfg, gw->gen, &nl, &nn, errs);
	if (rc)
		goto fail;
	td_gw_listen_commit(gw, nl, nn);
	rc = td_hs_start(gw->hs);
	if (rc) {
		td_errors_add(errs, cfg->path, gc->line, "gateway: cannot start workers: %s",
			      strerror(-rc));
		goto fail;
	}
	td_info("gateway: generation %llu: %zu routes, %zu upstreams, %zu listeners, %u workers",
		(unsigned long long)gw->gen->number, gw->gen->n_routes, gw->gen->n_ups, gw->n_lis,
		gw->nworkers);
	return gw;
fail:
	td_gw_free(gw, 0);
	errno = rc < 0 ? -rc : EINVAL;
	return NULL;
}

int td_gw_reload(struct td_gw *gw, const struct td_config *cfg, struct td_errors *errs)
{
	const struct td_gw_cfg *gc = &cfg->gateway;
	struct td_hs_limits lim;
	struct td_gw_gen *g, *old;
	struct td_gw_lis *nl = NULL;
	size_t nn = 0;
	int rc;

	if (!gc->on) {
		td_errors_add(errs, cfg->path, 0, "gateway: the gateway section cannot be removed "
			      "by a reload (restart the agent)");
		return -EINVAL;
	}
	g = td_gw_gen_build(cfg, gw->gen, gw->nworkers, gw->gen_no + 1, false, errs);
	if (!g)
		return -EINVAL;
	rc = td_gw_listen_set(gw, cfg, g, &nl, &nn, errs);
	if (rc) {
		td_gw_gen_unref(g);
		return rc;
	}
	if (gc->workers != gw->cfg_workers)
		td_warn("gateway: workers changed to %u: takes effect after a restart", gc->workers);
	pthread_mutex_lock(&gw->gen_mu);
	old = gw->gen;
	__atomic_store_n(&gw->gen, g, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&gw->gen_mu);
	gw->gen_no++;
	td_gw_listen_commit(gw, nl, nn);
	td_gw_limits(gc, &lim);
	td_hs_set_limits(gw->hs, &lim);
	td_gw_gen_unref(old);
	td_info("gateway: generation %llu: %zu routes, %zu upstreams, %zu listeners",
		(unsigned long long)g->number, g->n_routes, g->n_ups, gw->n_lis);
	return 0;
}

void td_gw_free(struct td_gw *gw, uint32_t drain_ms)
{
	if (!gw)
		return;
	/* joins the workers: every ops->done has run afterwards */
	td_hs_free(gw->hs, drain_ms);
	for (size_t i = 0; i < gw->n_lis; i++)
		td_tls_unref(gw->lis[i].t);
	free(gw->lis);
	for (unsigned int i = 0; gw->w && i < gw->nworkers; i++) {
		struct td_gw_rctx *c, *next;

		td_gw_gen_unref(gw->w[i].gen);
		for (c = gw->w[i].free; c; c = next) {
			next = c->next;
			free(c);
		}
	}
	free(gw->w);
	td_gw_gen_unref(gw->gen);
	pthread_mutex_destroy(&gw->gen_mu);
	free(gw);
}

/* ---- health ------------------------------------------------------------------------------- */

int td_gw_health_targets(struct td_gw *gw, struct td_hc_target **out)
{
	const struct td_gw_gen *g = gw->gen;
	struct td_hc_target *t;
	size_t n = 0, k = 0;

	*out = NULL;
	for (size_t i = 0; i < g->n_ups; i++)
		if (g->ups[i].health.type != TD_HC_NONE)
			n += g->ups[i].n;
	if (!n)
		return 0;
	t = calloc(n, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < g->n_ups; i++) {
		const struct td_gw_upstream *u = &g->ups[i];
		const struct td_health_cfg *h = &u->health;

		if (h->type == TD_HC_NONE)
			continue;
		for (size_t j = 0; j < u->n; j++, k++) {
			const struct td_gw_backend *be = &u->be[j];
			uint16_t port = ntohs(be->ss.ss_family == AF_INET ?
					      ((const struct sockaddr_in *)&be->ss)->sin_port :
					      ((const struct sockaddr_in6 *)&be->ss)->sin6_port);
			char *key = NULL;

			if (asprintf(&key, "%s%s", TD_GW_HEALTH_PREFIX, be->st->key) < 0)
				key = NULL;
			t[k].key = key;
			td_gw_peer_addr((const struct sockaddr *)&be->ss, &t[k].addr, &t[k].family);
			t[k].type = h->type;
			t[k].port = h->port ? h->port : port;
			t[k].path = h->type == TD_HC_HTTP ? strdup(h->path[0] ? h->path : "/") : NULL;
			t[k].interval_ms = h->interval_ms ? h->interval_ms : 1000;
			t[k].timeout_ms = h->timeout_ms ? h->timeout_ms :
					  (t[k].interval_ms < 500 ? t[k].interval_ms : 500);
			t[k].rise = h->rise ? h->rise : 2;
			t[k].fall = h->fall ? h->fall : 3;
			if (!key || (h->type == TD_HC_HTTP && !t[k].path)) {
				td_gw_health_targets_free(t, k + 1);
				return -ENOMEM;
			}
		}
	}
	*out = t;
	return (int)n;
}

void td_gw_health_targets_free(struct td_hc_target *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++) {
		free((char *)t[i].key);
		free((char *)t[i].path);
	}
	free(t);
}

void td_gw_health_set(struct td_gw *gw, const char *key, bool healthy)
{
	struct td_gw_backend *be = td_gw_gen_backend_by_key(gw->gen, key);

	if (!be)
		return;
	__atomic_store_n(&be->st->healthy, healthy, __ATOMIC_RELAXED);
	td_info("gateway: upstream %s: backend %s is %s", be->up->name, be->addr,
		healthy ? "up" : "down");
}

/* ---- metrics, status, log ----------------------------------------------------------------- */

int td_gw_metrics(struct td_gw *gw, struct td_metrics_buf *out)
{
	static const char *const fam[][3] = {
		{ "td_gw_connections_accepted_total", "counter", "Downstream connections accepted." },
		{ "td_gw_connections_rejected_total", "counter",
		  "Downstream connections closed at once (over max_conns)." },
		{ "td_gw_connections_open", "gauge", "Downstream connections open." },
		{ "td_gw_parse_errors_total", "counter",
		  "Requests answered 400/413/414/431/501/505 by the HTTP parser." },
		{ "td_gw_header_timeouts_total", "counter", "Request heads not complete in time (408)." },
		{ "td_gw_upstream_connections_open", "gauge", "Upstream connections open (pooled too)." },
		{ "td_gw_upstream_reused_total", "counter",
		  "Requests sent on a pooled upstream connection." },
		{ "td_gw_tls_handshake_errors_total", "counter", "Failed TLS handshakes." },
	};
	struct td_hs_stats st;
	uint64_t v[8];
	int rc;

	rc = td_gw_metrics_render(gw->gen, out);
	if (rc)
		return rc;
	td_hs_stats_get(gw->hs, &st);
	v[0] = st.conns_accepted;
	v[1] = st.conns_rejected;
	v[2] = st.conns_open;
	v[3] = st.parse_errors;
	v[4] = st.header_timeouts;
	v[5] = st.upstream_conns_open;
	v[6] = st.upstream_reused;
	v[7] = st.tls_handshake_errors;
	for (size_t i = 0; i < 8; i++)
		td_metrics_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", fam[i][0],
				      fam[i][2], fam[i][0], fam[i][1], fam[i][0],
				      (unsigned long long)v[i]);
	return out->err;
}

static const char *td_gw_lb_name(uint8_t lb)
{
	switch (lb) {
	case TD_GW_LB_LEAST_CONN: return "least_conn";
	case TD_GW_LB_RANDOM_TWO: return "random_two";
	case TD_GW_LB_HASH: return "hash";
	}
	return "round_robin";
}

char *td_gw_status_json(struct td_gw *gw)
{
	const struct td_gw_gen *g = gw->gen;
	struct json_object *o = json_object_new_object(), *ls, *us;
	uint64_t now = td_gw_now_ns();
	char *res = NULL;

	if (!o)
		return NULL;
	json_object_object_add(o, "generation", json_object_new_uint64(g->number));
	json_object_object_add(o, "workers", json_object_new_int((int)gw->nworkers));
	json_object_object_add(o, "routes", json_object_new_int64((int64_t)g->n_routes));
	ls = json_object_new_array();
	for (size_t i = 0; i < gw->n_lis; i++) {
		struct json_object *l = json_object_new_object();

		json_object_object_add(l, "address", json_object_new_string(gw->lis[i].ep.text));
		json_object_object_add(l, "tls", json_object_new_boolean(gw->lis[i].tls));
		json_object_array_add(ls, l);
	}
	json_object_object_add(o, "listeners", ls);
	us = json_object_new_array();
	for (size_t i = 0; i < g->n_ups; i++) {
		const struct td_gw_upstream *u = &g->ups[i];
		struct json_object *uo = json_object_new_object(), *bs = json_object_new_array();

		json_object_object_add(uo, "name", json_object_new_string(u->name));
		json_object_object_add(uo, "lb", json_object_new_string(td_gw_lb_name(u->lb)));
		for (size_t j = 0; j < u->n; j++) {
			const struct td_gw_bstate *st = u->be[j].st;
			struct json_object *b = json_object_new_object();

			json_object_object_add(b, "address", json_object_new_string(u->be[j].addr));
			json_object_object_add(b, "healthy", json_object_new_boolean(LD(&st->healthy)));
			json_object_object_add(b, "ejected",
					       json_object_new_boolean(td_gw_bstate_ejected(st, now)));
			json_object_object_add(b, "in_flight",
					       json_object_new_int64(LD(&st->in_flight)));
			json_object_object_add(b, "consecutive_failures",
					       json_object_new_int64(LD(&st->consec_fail)));
			json_object_object_add(b, "ejections",
					       json_object_new_uint64(LD(&st->ejections)));
			json_object_array_add(bs, b);
		}
		json_object_object_add(uo, "backends", bs);
		json_object_array_add(us, uo);
	}
	json_object_object_add(o, "upstreams", us);
	res = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return res;
}

int td_gw_reopen_log(struct td_gw *gw)
{
	return td_gw_log_reopen(gw->gen ? gw->gen->log : NULL);
}

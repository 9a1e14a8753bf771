/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The forward proxy runtime on the HTTP engine: ACLs, DNS, CONNECT, transparent mode, cache glue. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "fproxy.h"
#include "fp_internal.h"
#include "log.h"
#include "server.h"

#define LD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define TD_FP_FREE_MAX	256u	/* request contexts kept per worker */
#define TD_FP_DNS_THREADS 4u
#define TD_FP_MAX_IDLE	16u	/* pooled upstream connections per origin per worker */
#define TD_FP_NHDR_MAX	(TD_HTTP_MAX_HEADERS + 4u)
#define TD_FP_MERGE_MAX	65536u	/* a stored head merged with a 304 */
#define TD_FP_URL_MAX	2048u

enum td_fp_next { TD_FP_N_FORWARD = 0, TD_FP_N_TUNNEL };

/* one request's (or raw connection's) state, from ops->request / ops->raw to ops->done */
struct td_fp_rctx {
	struct td_fp_rctx *next;	/* worker free list */
	struct td_fp *fp;
	struct td_fp_gen *gen;		/* referenced */
	struct td_hs_req *r;
	unsigned int worker;
	uint8_t kind;			/* enum td_fp_lis_kind */
	uint8_t code;			/* enum td_fp_code for the log */
	uint8_t next_step;		/* enum td_fp_next once the destination is known */
	bool raw_seen;
	struct td_fp_uri uri;
	char *target;			/* origin-form target to send, NUL-terminated */
	char tbuf[256];
	struct sockaddr_storage dst;
	socklen_t dstlen;
	char dsttext[TD_ENDPOINTSTRLEN];
	char client[TD_ADDRSTRLEN];
	char ident[TD_AUTH_IDENTITY_MAX];
	char ctype[96];
	char url[TD_FP_URL_MAX];	/* logged URL */
	/* DNS */
	struct td_fp_dns_job *job;
	ev_timer dtm;
	bool dtm_on;
	/* cache */
	struct td_fp_cache *cache;	/* gen's (NULL: not cacheable) */
	char key[TD_CACHE_URI_MAX + 8];
	bool filler;			/* collapsing: this request fetches for others */
	bool waiting;			/* queued behind a filler (cache mutex) */
	struct td_cache_waiter waiter;
	struct td_fp_wake cwk;		/* the filler's result, delivered on our worker */
	struct td_cache_obj *cobj;	/* that result (referenced) */
	struct td_cache_obj *stale;	/* stored response being revalidated (referenced) */
	char cstatus[160];		/* Cache-Status of a forwarded response */
	uint8_t reval_fwd;		/* revalidation: TD_CACHE_FWD_REQUEST (client) or _STALE */
	char cond[1024];		/* conditional field lines, split in place */
	bool storing;
	int64_t req_time;
	char *head;
	size_t head_len;
	char *body;
	size_t body_len, body_cap;
	struct td_cache_meta meta;
	char vkey[1024];
};

struct td_fp_worker {
	struct td_fp_gen *gen;		/* cached reference to the published generation */
	struct td_fp_rctx *free;
	unsigned int nfree;
	struct td_fp_mbox *mbox;
} __attribute__((aligned(64)));

struct td_fp_lis {
	struct td_gw_endpoint ep;
	uint8_t kind;
	bool keep;
	int id;
};

struct td_fp {
	struct td_hs *hs;
	struct td_fp_gen *gen;		/* published */
	pthread_mutex_t gen_mu;
	unsigned int nworkers;
	struct td_fp_worker *w;
	struct td_fp_wstat *ws;		/* [nworkers] */
	struct td_fp_dns *dns;
	struct td_fp_lis *lis;
	size_t n_lis;
	uint64_t gen_no;
	uint32_t cfg_workers;
	int origdst_fd;			/* atomic */
};

static uint64_t td_fp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct ev_loop *td_fp_loop(struct td_hs_req *r)
{
	return td_hs_req_loop(r);
}

/* ---- generations and contexts ------------------------------------------------------------- */

static struct td_fp_gen *td_fp_worker_gen(struct td_fp *fp, struct td_fp_worker *w)
{
	struct td_fp_gen *g = __atomic_load_n(&fp->gen, __ATOMIC_ACQUIRE), *old;

	if (g == w->gen)
		return g;
	pthread_mutex_lock(&fp->gen_mu);
	g = td_fp_gen_ref(fp->gen);
	pthread_mutex_unlock(&fp->gen_mu);
	old = w->gen;
	w->gen = g;
	td_fp_gen_unref(old);
	return g;
}

static struct td_fp_rctx *td_fp_ctx_new(struct td_fp *fp, struct td_hs_req *r)
{
	unsigned int wi = td_hs_req_worker(r);
	struct td_fp_worker *w = &fp->w[wi];
	struct td_fp_rctx *c = w->free;

	if (c) {
		w->free = c->next;
		w->nfree--;
	} else if (!(c = malloc(sizeof(*c)))) {
		return NULL;
	}
	/* the fields before url are reset; the big buffers are written before they are read */
	memset(c, 0, offsetof(struct td_fp_rctx, url));
	c->url[0] = '\0';
	c->job = NULL;
	c->dtm_on = false;
	c->cache = NULL;
	c->key[0] = '\0';
	c->filler = c->waiting = c->storing = false;
	c->cwk.posted = false;
	c->cobj = c->stale = NULL;
	c->cstatus[0] = '\0';
	c->head = c->body = NULL;
	c->head_len = c->body_len = c->body_cap = 0;
	c->fp = fp;
	c->r = r;
	c->worker = wi;
	c->code = TD_FP_C_MISS;
	c->gen = td_fp_gen_ref(td_fp_worker_gen(fp, w));
	if (!td_fp_mbox_started(w->mbox))
		td_fp_mbox_start(w->mbox, td_fp_loop(r));
	td_hs_req_set_data(r, c);
	return c;
}

static void td_fp_ctx_put(struct td_fp_rctx *c)
{
	struct td_fp_worker *w = &c->fp->w[c->worker];

	if (c->target && c->target != c->tbuf)
		free(c->target);
	free(c->head);
	free(c->body);
	td_fp_gen_unref(c->gen);
	if (w->nfree >= TD_FP_FREE_MAX) {
		free(c);
		return;
	}
	c->next = w->free;
	w->free = c;
	w->nfree++;
}

static struct td_fp_wstat *td_fp_ws(struct td_fp_rctx *c)
{
	return &c->fp->ws[c->worker];
}

/* ---- local answers ------------------------------------------------------------------------ */

static void td_fp_text(struct td_fp_rctx *c, unsigned int status, const struct td_hs_hdr *extra,
		       size_t nextra, bool close_after, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void td_fp_text(struct td_fp_rctx *c, unsigned int status, const struct td_hs_hdr *extra,
		       size_t nextra, bool close_after, const char *fmt, ...)
{
	struct td_hs_hdr h[4];
	char body[512];
	size_t n = 0;
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(body, sizeof(body) - 1, fmt, ap);
	va_end(ap);
	if (len < 0)
		len = 0;
	if ((size_t)len > sizeof(body) - 2)
		len = (int)sizeof(body) - 2;
	body[len++] = '\n';
	body[len] = '\0';
	h[n++] = (struct td_hs_hdr){ "Content-Type", "text/plain; charset=utf-8" };
	for (size_t i = 0; i < nextra && n < 4; i++)
		h[n++] = extra[i];
	snprintf(c->ctype, sizeof(c->ctype), "text/plain");
	td_hs_respond(c->r, status, h, n, body, (size_t)len, close_after);
}

static void td_fp_deny(struct td_fp_rctx *c, unsigned int rule, unsigned int status,
		       const char *text)
{
	td_gw_inc(&td_fp_ws(c)->denied[rule], 1);
	c->code = TD_FP_C_DENIED;
	td_fp_text(c, status, NULL, 0, rule == TD_FP_R_CLIENT, "%s", text);
}

/* ---- auth --------------------------------------------------------------------------------- */

/* 0: go on; 1: answered 407 */
static int td_fp_auth(struct td_fp_rctx *c, const struct td_http_msg *m, const char *buf)
{
	struct td_fp_gen *g = c->gen;
	struct td_auth_result res;
	unsigned char sha[32];
	unsigned int shalen = 0;
	struct timespec ts;
	struct td_hs_hdr h;
	int i;

	i = td_http_header_find(m, buf, "Proxy-Authorization", 0);
	if (i < 0 || td_http_header_find(m, buf, "Proxy-Authorization", (unsigned int)i + 1) >= 0)
		goto deny;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* a cached verification of the same value skips crypt (as the gateway's Basic cache) */
	if (EVP_Digest(buf + m->hdr[i].value.off, m->hdr[i].value.len, sha, &shalen, EVP_sha256(),
		       NULL) &&
	    !td_gw_basic_cache_get(g->basic, sha, (uint64_t)ts.tv_sec, c->ident, sizeof(c->ident)))
		return 0;
	td_auth_check_value(g->auth, buf + m->hdr[i].value.off, m->hdr[i].value.len, time(NULL),
			    &res);
	if (res.reason == TD_AUTH_OK) {
		if (shalen == 32)
			td_gw_basic_cache_put(g->basic, sha, (uint64_t)ts.tv_sec, res.identity);
		snprintf(c->ident, sizeof(c->ident), "%s", res.identity);
		return 0;
	}
deny:
	td_gw_inc(&td_fp_ws(c)->denied[TD_FP_R_AUTH], 1);
	c->code = TD_FP_C_DENIED;
	h = (struct td_hs_hdr){ "Proxy-Authenticate", g->challenge };
	td_fp_text(c, 407, &h, 1, false, "proxy authentication required");
	return 1;
}

/* ---- destinations ------------------------------------------------------------------------- */

static void td_fp_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static socklen_t td_fp_sslen(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static void td_fp_addr_text(const struct sockaddr_storage *ss, char *out, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	const void *p = ss->ss_family == AF_INET ?
			(const void *)&((const struct sockaddr_in *)ss)->sin_addr :
			(const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

	if (!inet_ntop(ss->ss_family, p, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(out, size, "%s", a);
}

static void td_fp_go(struct td_fp_rctx *c);

/* choose among the answers (port set): 0, or answered (403 private, 502) */
static int td_fp_pick(struct td_fp_rctx *c, const struct td_fp_addrs *res)
{
	const struct sockaddr_storage *first_denied = NULL;
	char a[INET6_ADDRSTRLEN], text[TD_FP_HOST_MAX + 128];

	for (size_t i = 0; i < res->n; i++) {
		if (c->gen->cfg.deny_private_destinations &&
		    td_fp_private_addr((const struct sockaddr *)&res->a[i])) {
			if (!first_denied)
				first_denied = &res->a[i];
			continue;
		}
		c->dst = res->a[i];
		td_fp_set_port(&c->dst, c->uri.port);
		c->dstlen = td_fp_sslen(&c->dst);
		td_fp_addr_text(&c->dst, c->dsttext, sizeof(c->dsttext));
		return 0;
	}
	if (first_denied) {
		td_fp_addr_text(first_denied, a, sizeof(a));
		snprintf(text, sizeof(text), "denied by deny_private_destinations: %s is %s", c->uri.host, a);
		td_fp_deny(c, TD_FP_R_PRIVATE, 403, text);
		return -EPERM;
	}
	c->code = TD_FP_C_NONE;
	td_fp_text(c, 502, NULL, 0, false, "DNS lookup of %s failed: no address", c->uri.host);
	return -ENOENT;
}

static void td_fp_dns_stop_timer(struct td_fp_rctx *c)
{
	if (c->dtm_on) {
		ev_timer_stop(td_fp_loop(c->r), &c->dtm);
		c->dtm_on = false;
	}
}

static void td_fp_dns_answer(struct td_fp_wake *wk)
{
	struct td_fp_dns_job *j = (struct td_fp_dns_job *)((char *)wk -
							   offsetof(struct td_fp_dns_job, wk));
	struct td_fp_rctx *c = j->arg;

	td_fp_dns_stop_timer(c);
	c->job = NULL;
	if (j->res.err) {
		td_gw_inc(&td_fp_ws(c)->dns_failures, 1);
		c->code = TD_FP_C_NONE;
		td_fp_text(c, 502, NULL, 0, false, "DNS lookup of %s failed: %s", j->name,
			   gai_strerror(j->res.err));
	} else if (!td_fp_pick(c, &j->res)) {
		td_fp_go(c);
	}
	free(j);
}

static void td_fp_dns_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct td_fp_rctx *c = t->data;

	c->dtm_on = false;
	if (c->job) {
		td_fp_dns_cancel(c->fp->dns, c->job);
		c->job = NULL;
	}
	td_gw_inc(&td_fp_ws(c)->dns_timeouts, 1);
	c->code = TD_FP_C_NONE;
	td_fp_text(c, 504, NULL, 0, false, "DNS lookup of %s timed out", c->uri.host);
}

/* find the destination of c->uri (literal, cache, resolver), then td_fp_go() */
static void td_fp_resolve(struct td_fp_rctx *c)
{
	struct td_fp_addrs res;
	struct td_fp_dns_job *j;
	uint32_t tmo;

	memset(&res, 0, sizeof(res));
	if (c->uri.ip) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&res.a[0];
		struct sockaddr_in *s4 = (struct sockaddr_in *)&res.a[0];

		if (inet_pton(AF_INET, c->uri.host, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
		} else {
			inet_pton(AF_INET6, c->uri.host, &s6->sin6_addr);
			s6->sin6_family = AF_INET6;
		}
		res.n = 1;
		if (!td_fp_pick(c, &res))
			td_fp_go(c);
		return;
	}
	if (c->gen->cfg.dns_cache_ttl_ms && !td_fp_dns_cached(c->fp->dns, c->uri.host, &res)) {
		td_gw_inc(&td_fp_ws(c)->dns_cache_hits, 1);
		if (!td_fp_pick(c, &res))
			td_fp_go(c);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		td_fp_text(c, 500, NULL, 0, false, "out of memory");
		return;
	}
	snprintf(j->name, sizeof(j->name), "%s", c->uri.host);
	j->wk.fn = td_fp_dns_answer;
	j->mbox = c->fp->w[c->worker].mbox;
	j->arg = c;
	j->ttl_ms = c->gen->cfg.dns_cache_ttl_ms;
	c->job = j;
	td_gw_inc(&td_fp_ws(c)->dns_lookups, 1);
	tmo = c->gen->cfg.dns_timeout_ms ? c->gen->cfg.dns_timeout_ms : 5000;
	ev_timer_init(&c->dtm, td_fp_dns_timeout, tmo / 1000.0, 0.);
	c->dtm.data = c;
	ev_timer_start(td_fp_loop(c->r), &c->dtm);
	c->dtm_on = true;
	td_fp_dns_submit(c->fp->dns, j);
}

/* ---- cache -------------------------------------------------------------------------------- */

static int64_t td_fp_wall(void)
{
	return (int64_t)time(NULL);
}

struct td_fp_vmatch {
	const struct td_http_msg *req;
	const char *qbuf;
};

/* a stored variant answers the request when its Vary key equals the request's one */
static bool td_fp_vary_match(const struct td_cache_obj *o, void *arg)
{
	struct td_fp_vmatch *vm = arg;
	struct td_http_parser p;
	char vk[1024];
	size_t used;
	int n;

	if (!o->vkey[0])
		return true;
	td_http_parser_init(&p, TD_HTTP_RESPONSE, NULL);
	if (td_http_parse(&p, o->data, o->head_len, &used) != TD_HTTP_DONE)
		return false;
	n = td_cache_vary_key(&p.msg, o->data, vm->req, vm->qbuf, vk, sizeof(vk));
	return n >= 0 && !strcmp(vk, o->vkey);
}

/* send a stored object: its own Date and fields, Age and Cache-Status added */
/*
 * The client's own conditional GET/HEAD against the stored response (RFC 9110 13.1.2,
 * 13.1.3, 13.2.2): If-None-Match (weak comparison, "*" matches) decides when present,
 * otherwise If-Modified-Since against the stored Last-Modified. True: answer 304.
 */
static bool td_fp_not_modified(const struct td_http_msg *q, const char *qbuf,
			       const struct td_http_msg *m, const char *sbuf)
{
	int inm, ims, et, lm;
	int64_t t_ims, t_lm;

	if (q->method != TD_HTTP_M_GET && q->method != TD_HTTP_M_HEAD)
		return false;
	inm = td_http_header_find(q, qbuf, "If-None-Match", 0);
	if (inm >= 0) {
		const char *v = qbuf + q->hdr[inm].value.off, *end = v + q->hdr[inm].value.len;
		const char *tag;
		size_t tlen;

		et = td_http_header_find(m, sbuf, "ETag", 0);
		if (et < 0)
			return false;
		tag = sbuf + m->hdr[et].value.off;
		tlen = m->hdr[et].value.len;
		if (tlen > 2 && !strncmp(tag, "W/", 2)) {
			tag += 2;
			tlen -= 2;
		}
		while (v < end) {
			const char *e;

			while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
				v++;
			if (v < end && *v == '*')
				return true;
			if (end - v > 2 && !strncmp(v, "W/", 2))
				v += 2;
			for (e = v; e < end && *e != ','; e++)
				;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if ((size_t)(e - v) == tlen && !memcmp(v, tag, tlen))
				return true;
			for (v = e; v < end && *v != ','; v++)
				;
		}
		return false;
	}
	ims = td_http_header_find(q, qbuf, "If-Modified-Since", 0);
	lm = td_http_header_find(m, sbuf, "Last-Modified", 0);
	if (ims < 0 || lm < 0 ||
	    td_cache_date_parse(qbuf + q->hdr[ims].value.off, q->hdr[ims].value.len, &t_ims) ||
	    td_cache_date_parse(sbuf + m->hdr[lm].value.off, m->hdr[lm].value.len, &t_lm))
		return false;
	return t_lm <= t_ims;
}

static int td_fp_serve(struct td_fp_rctx *c, struct td_cache_obj *o, const char *cstatus)
{
	struct td_http_parser p;
	struct td_hs_hdr h[TD_FP_NHDR_MAX];
	struct td_hs_resp_opts opts = { .no_date = true };
	char age[32], *s;
	size_t used, n = 0;
	int rc;

	td_http_parser_init(&p, TD_HTTP_RESPONSE, NULL);
	if (td_http_parse(&p, o->data, o->head_len, &used) != TD_HTTP_DONE)
		return -EINVAL;
	s = malloc(o->head_len + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, o->data, o->head_len);
	for (uint32_t i = 0; i < p.msg.nhdr && n < TD_FP_NHDR_MAX - 3; i++) {
		const struct td_http_header *hd = &p.msg.hdr[i];
		char *name = s + hd->name.off, *val = s + hd->value.off;

		if ((hd->flags & TD_HTTP_HF_HOP) || hd->id == TD_HTTP_H_CONTENT_LENGTH)
			continue;
		name[hd->name.len] = '\0';
		val[hd->value.len] = '\0';
		if (!strcasecmp(name, "Age") || !strcasecmp(name, "Cache-Status"))
			continue;
		h[n++] = (struct td_hs_hdr){ name, val };
	}
	if (td_cache_age_value(&o->meta, td_fp_wall(), age, sizeof(age)) > 0)
		h[n++] = (struct td_hs_hdr){ "Age", age };
	h[n++] = (struct td_hs_hdr){ "Cache-Status", cstatus };
	if (!c->gen->cfg.anonymize)     /* RFC 9110 7.6.3: every intermediary adds itself */
		h[n++] = (struct td_hs_hdr){ "Via", TD_FP_VIA };
	rc = td_http_header_find(&p.msg, o->data, "Content-Type", 0);
	if (rc >= 0)
		snprintf(c->ctype, sizeof(c->ctype), "%.*s", (int)p.msg.hdr[rc].value.len,
			 o->data + p.msg.hdr[rc].value.off);
	if (p.msg.status == 200 &&
	    td_fp_not_modified(td_hs_req_msg(c->r), td_hs_req_buf(c->r), &p.msg, o->data)) {
		/* the client's copy is current: 304 with the stored fields, no body */
		rc = td_hs_respond_ex(c->r, 304, h, n, NULL, 0, &opts);
		free(s);
		return rc;
	}
	rc = td_hs_respond_ex(c->r, p.msg.status, h, n, o->data + o->head_len, o->body_len, &opts);
	free(s);
	if (!rc)
		td_gw_inc(&td_fp_ws(c)->cache_bytes, o->body_len);
	return rc;
}

static void td_fp_obj_put(struct td_fp_cache *fc, struct td_cache_obj *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&fc->mu);
	td_cache_obj_put(o);
	pthread_mutex_unlock(&fc->mu);
}

static void td_fp_hit(struct td_fp_rctx *c, struct td_cache_obj *o, const struct td_cache_decision *d,
		      bool collapsed)
{
	struct td_cache_status st = { .hit = true, .has_ttl = true, .ttl = d->ttl,
				      .collapsed = collapsed };
	char cs[160];

	if (td_cache_status_format("td", &st, cs, sizeof(cs)) < 0)
		snprintf(cs, sizeof(cs), "td; hit");
	c->code = TD_FP_C_HIT;
	td_gw_inc(&td_fp_ws(c)->cache_hits, 1);
	if (td_fp_serve(c, o, cs))
		td_fp_text(c, 500, NULL, 0, false, "cannot serve the stored response");
}

static void td_fp_set_cstatus(struct td_fp_rctx *c, enum td_cache_fwd fwd)
{
	struct td_cache_status st = { .fwd = fwd };

	if (td_cache_status_format("td", &st, c->cstatus, sizeof(c->cstatus)) < 0)
		c->cstatus[0] = '\0';
}

/* the filler's result for a waiter, on the waiter's worker */
static void td_fp_collapse_wake(struct td_fp_wake *wk)
{
	struct td_fp_rctx *c = (struct td_fp_rctx *)((char *)wk - offsetof(struct td_fp_rctx, cwk));
	const struct td_http_msg *m = td_hs_req_msg(c->r);
	struct td_cache_obj *o = c->cobj;
	struct td_fp_vmatch vm = { m, td_hs_req_buf(c->r) };
	struct td_cache_decision d;

	c->cobj = NULL;
	if (o && td_fp_vary_match(o, &vm) &&
	    !td_cache_use(&o->meta, m, vm.qbuf, td_fp_wall(), &d) && d.use == TD_CACHE_USE_FRESH) {
		td_gw_inc(&td_fp_ws(c)->cache_collapsed, 1);
		td_fp_hit(c, o, &d, true);
		td_fp_obj_put(c->cache, o);
		return;
	}
	td_fp_obj_put(c->cache, o);
	/* nothing usable came of it: fetch ourselves (no new collapsing round) */
	td_gw_inc(&td_fp_ws(c)->cache_misses, 1);
	td_fp_set_cstatus(c, TD_CACHE_FWD_MISS);
	td_fp_resolve(c);
}

/* runs on the filler's thread with the cache mutex held */
static void td_fp_collapse_cb(void *arg, struct td_cache_obj *obj, int err)
{
	struct td_fp_rctx *c = arg;

	c->waiting = false;
	c->cobj = obj ? td_cache_obj_get(obj) : NULL;
	td_fp_mbox_post(c->fp->w[c->worker].mbox, &c->cwk);
}

/* the filler is done (stored obj or NULL): wake the waiters; cache mutex held */
static void td_fp_fill_done(struct td_fp_rctx *c, struct td_cache_obj *obj, int err)
{
	if (!c->filler)
		return;
	c->filler = false;
	td_cache_collapse_done(c->cache->s, c->key, obj, err);
}

/*
 * Cacheable request (GET/HEAD of an http URI with the cache on): serve a usable stored
 * response, or forward (as the filler of collapsed misses, or as a revalidation).
 * Returns 1 when answered or queued, 0 to forward.
 */
static int td_fp_cache_lookup(struct td_fp_rctx *c, const struct td_http_msg *m, const char *buf)
{
	struct td_fp_cache *fc = c->cache;
	struct td_fp_vmatch vm = { m, buf };
	struct td_cache_decision d;
	struct td_cache_obj *o;
	int rc;

	if (td_cache_key(TD_HTTP_M_GET, buf + m->target.off, m->target.len, c->key,
			 sizeof(c->key)) < 0) {
		c->cache = NULL;	/* not a URI the cache can key: plain forward */
		return 0;
	}
	pthread_mutex_lock(&fc->mu);
	o = td_cache_store_find(fc->s, c->key, td_fp_vary_match, &vm);
	pthread_mutex_unlock(&fc->mu);
	if (o) {
		td_cache_use(&o->meta, m, buf, td_fp_wall(), &d);
		if (d.use == TD_CACHE_USE_FRESH || d.use == TD_CACHE_USE_STALE) {
			td_fp_hit(c, o, &d, false);
			td_fp_obj_put(fc, o);
			return 1;
		}
		if (d.use == TD_CACHE_USE_GATEWAY_TIMEOUT) {
			td_fp_obj_put(fc, o);
			c->code = TD_FP_C_NONE;
			td_fp_text(c, 504, NULL, 0, false, "only-if-cached: no fresh stored response");
			return 1;
		}
		/* revalidate: conditional request built from the stored response */
		{
			struct td_http_parser p;
			size_t used;

			td_http_parser_init(&p, TD_HTTP_RESPONSE, NULL);
			rc = -EINVAL;
			if (td_http_parse(&p, o->data, o->head_len, &used) == TD_HTTP_DONE)
				rc = td_cache_conditional(&p.msg, o->data, c->cond, sizeof(c->cond));
		}
		if (rc > 0) {
			c->stale = o;
			c->reval_fwd = d.fwd == TD_CACHE_FWD_REQUEST ? TD_CACHE_FWD_REQUEST :
				       TD_CACHE_FWD_STALE;
			td_gw_inc(&td_fp_ws(c)->cache_revalidated, 1);
			td_fp_set_cstatus(c, c->reval_fwd);
			return 0;
		}
		td_fp_obj_put(fc, o);
		c->cond[0] = '\0';
		td_gw_inc(&td_fp_ws(c)->cache_misses, 1);
		td_fp_set_cstatus(c, TD_CACHE_FWD_STALE);
		return 0;
	}
	if (td_http_header_find(m, buf, "Cache-Control", 0) >= 0) {
		struct td_cache_cc cc;

		td_cache_cc_parse(m, buf, &cc);
		if (cc.flags & TD_CACHE_CC_ONLY_IF_CACHED) {
			c->code = TD_FP_C_NONE;
			td_fp_text(c, 504, NULL, 0, false, "only-if-cached: not in the cache");
			return 1;
		}
	}
	td_gw_inc(&td_fp_ws(c)->cache_misses, 1);
	td_fp_set_cstatus(c, TD_CACHE_FWD_MISS);
	if (m->method != TD_HTTP_M_GET)
		return 0;	/* HEAD misses are forwarded, never stored: no collapsing */
	c->waiter = (struct td_cache_waiter){ .cb = td_fp_collapse_cb, .arg = c };
	c->cwk.fn = td_fp_collapse_wake;
	pthread_mutex_lock(&fc->mu);
	rc = td_cache_collapse_join(fc->s, c->key, &c->waiter);
	if (rc == 0)
		c->waiting = true;
	else if (rc == 1)
		c->filler = true;
	pthread_mutex_unlock(&fc->mu);
	return rc == 0 ? 1 : 0;
}

/* ---- forwarding --------------------------------------------------------------------------- */

static const char *const td_fp_anon_rm[] = {
	"Via", "X-Forwarded-For", "Forwarded", "X-Real-IP", "Client-IP", "From",
};

static void td_fp_forward(struct td_fp_rctx *c)
{
	struct td_hs_hdr add[12], radd[2];
	const char *rm[24];
	size_t na = 0, nr = 0, nradd = 0;
	struct td_hs_upstream u;
	struct td_hs_edit ed;
	char *p;

	rm[nr++] = "Proxy-Connection";
	rm[nr++] = "Proxy-Authorization";
	if (c->kind == TD_FP_LIS_PROXY) {
		rm[nr++] = "Host";
		add[na++] = (struct td_hs_hdr){ "Host", c->uri.authority };
	}
	if (c->gen->cfg.anonymize) {
		for (size_t i = 0; i < sizeof(td_fp_anon_rm) / sizeof(td_fp_anon_rm[0]); i++)
			rm[nr++] = td_fp_anon_rm[i];
	} else {
		add[na++] = (struct td_hs_hdr){ "Via", TD_FP_VIA };
	}
	if (c->stale) {
		/* our validators replace the client's: a 304 is then ours to turn into a 200 */
		rm[nr++] = "If-None-Match";
		rm[nr++] = "If-Modified-Since";
		rm[nr++] = "If-Match";
		rm[nr++] = "If-Unmodified-Since";
		rm[nr++] = "If-Range";
		for (p = c->cond; *p && na < 10;) {
			char *colon = strchr(p, ':'), *eol = strstr(p, "\r\n");

			if (!colon || !eol || colon > eol)
				break;
			*colon = '\0';
			*eol = '\0';
			add[na++] = (struct td_hs_hdr){ p, colon + 1 + (colon[1] == ' ') };
			p = eol + 2;
		}
	}
	if (c->cache && c->cstatus[0])
		radd[nradd++] = (struct td_hs_hdr){ "Cache-Status", c->cstatus };
	if (!c->gen->cfg.anonymize)     /* the response names us too (RFC 9110 7.6.3) */
		radd[nradd++] = (struct td_hs_hdr){ "Via", TD_FP_VIA };
	ed = (struct td_hs_edit){
		.target = c->target, .remove = rm, .nremove = nr, .add = add, .nadd = na,
		.resp_add = radd, .nresp_add = nradd,
	};
	u = (struct td_hs_upstream){
		.addr = (const struct sockaddr *)&c->dst, .addrlen = c->dstlen,
		.connect_timeout_ms = c->gen->cfg.connect_timeout_ms,
		.response_timeout_ms = c->gen->cfg.response_timeout_ms,
		.max_idle = TD_FP_MAX_IDLE, .tag = c,
	};
	c->req_time = td_fp_wall();
	if (td_hs_forward(c->r, &u, &ed))
		td_fp_text(c, 500, NULL, 0, false, "cannot forward the request");
}

static void td_fp_tunnel(struct td_fp_rctx *c)
{
	struct td_hs_upstream u = {
		.addr = (const struct sockaddr *)&c->dst, .addrlen = c->dstlen,
		.connect_timeout_ms = c->gen->cfg.connect_timeout_ms, .tag = c,
	};

	c->code = TD_FP_C_TUNNEL;
	td_gw_inc(&td_fp_ws(c)->tunnels, 1);
	if (td_hs_tunnel(c->r, &u, c->gen->cfg.tunnel_idle_timeout_ms ?
			 c->gen->cfg.tunnel_idle_timeout_ms : 300000))
		td_fp_text(c, 500, NULL, 0, true, "cannot open the tunnel");
}

static void td_fp_go(struct td_fp_rctx *c)
{
	if (c->next_step == TD_FP_N_TUNNEL)
		td_fp_tunnel(c);
	else
		td_fp_forward(c);
}

/* the target to send: the path of the absolute URI, NUL-terminated */
static int td_fp_set_target(struct td_fp_rctx *c, const char *t, size_t len)
{
	c->target = len < sizeof(c->tbuf) ? c->tbuf : malloc(len + 1);
	if (!c->target)
		return -ENOMEM;
	memcpy(c->target, t, len);
	c->target[len] = '\0';
	return 0;
}

/* ---- request handlers --------------------------------------------------------------------- */

static bool td_fp_check_domain(struct td_fp_rctx *c, const char *host, bool ip)
{
	char text[TD_FP_HOST_MAX + 64];

	if (!td_fp_domain_check(c->gen, host, ip, text, sizeof(text)))
		return true;
	td_fp_deny(c, TD_FP_R_DOMAIN, 403, text);
	return false;
}

static void td_fp_connect(struct td_fp_rctx *c, const struct td_http_msg *m, const char *buf)
{
	char text[96];

	snprintf(c->url, sizeof(c->url), "%.*s", (int)m->target.len, buf + m->target.off);
	if (td_fp_authority_parse(buf + m->target.off, m->target.len, &c->uri)) {
		c->code = TD_FP_C_NONE;
		td_fp_text(c, 400, NULL, 0, true, "CONNECT needs host:port");
		return;
	}
	if (!td_fp_port_allowed(c->gen, c->uri.port)) {
		snprintf(text, sizeof(text), "denied by connect_ports: port %u", c->uri.port);
		td_fp_deny(c, TD_FP_R_PORT, 403, text);
		return;
	}
	if (!td_fp_check_domain(c, c->uri.host, c->uri.ip))
		return;
	c->next_step = TD_FP_N_TUNNEL;
	td_fp_resolve(c);
}

static void td_fp_absolute(struct td_fp_rctx *c, const struct td_http_msg *m, const char *buf)
{
	int rc;

	snprintf(c->url, sizeof(c->url), "%.*s", (int)m->target.len, buf + m->target.off);
	rc = td_fp_uri_parse(buf + m->target.off, m->target.len, &c->uri);
	if (rc == -EPROTONOSUPPORT) {
		td_fp_deny(c, TD_FP_R_SCHEME, 400, "denied: only http:// URLs are proxied "
			   "(use CONNECT for https)");
		return;
	}
	if (rc || td_fp_set_target(c, c->uri.path, c->uri.path_len)) {
		c->code = TD_FP_C_NONE;
		td_fp_text(c, 400, NULL, 0, false, "invalid URL");
		return;
	}
	if (!td_fp_check_domain(c, c->uri.host, c->uri.ip))
		return;
	c->next_step = TD_FP_N_FORWARD;
	c->cache = (m->method == TD_HTTP_M_GET || m->method == TD_HTTP_M_HEAD) ? c->gen->cache : NULL;
	if (c->cache && td_fp_cache_lookup(c, m, buf))
		return;
	td_fp_resolve(c);
}

/* transparent.listen: origin-form; destination from the redirect map, Host only names it */
static void td_fp_transparent(struct td_fp_rctx *c, const struct td_http_msg *m, const char *buf)
{
	const struct sockaddr *peer = td_hs_req_peer(c->r, NULL);
	const struct sockaddr *local = td_hs_req_local(c->r, NULL);
	char text[160];
	int rc;

	if (m->host >= 0)
		snprintf(c->url, sizeof(c->url), "http://%.*s%.*s", (int)m->hdr[m->host].value.len,
			 buf + m->hdr[m->host].value.off, (int)m->target.len, buf + m->target.off);
	else
		snprintf(c->url, sizeof(c->url), "%.*s", (int)m->target.len, buf + m->target.off);
	if (m->target_form != TD_HTTP_T_ORIGIN || m->host < 0 ||
	    td_fp_authority_parse(buf + m->hdr[m->host].value.off, m->hdr[m->host].value.len,
				  &c->uri) == -EINVAL) {
		/* Host without a port: parse it as a URI authority with port 80 */
		struct td_fp_uri u;
		char tmp[TD_FP_HOST_MAX + 16];

		if (m->target_form != TD_HTTP_T_ORIGIN || m->host < 0 ||
		    snprintf(tmp, sizeof(tmp), "http://%.*s/", (int)m->hdr[m->host].value.len,
			     buf + m->hdr[m->host].value.off) >= (int)sizeof(tmp) ||
		    td_fp_uri_parse(tmp, strlen(tmp), &u)) {
			c->code = TD_FP_C_NONE;
			td_fp_text(c, 400, NULL, 0, false, "a Host field is required");
			return;
		}
		c->uri = u;
	}
	if (!td_fp_check_domain(c, c->uri.host, c->uri.ip))
		return;
	rc = td_fp_origdst_lookup(LD(&c->fp->origdst_fd), peer, local, &c->dst, NULL);
	if (rc) {
		c->code = TD_FP_C_NONE;
		td_fp_text(c, 502, NULL, 0, true, "original destination unknown: %s", strerror(-rc));
		return;
	}
	c->dstlen = td_fp_sslen(&c->dst);
	td_fp_addr_text(&c->dst, c->dsttext, sizeof(c->dsttext));
	if (c->gen->cfg.deny_private_destinations &&
	    td_fp_private_addr((const struct sockaddr *)&c->dst)) {
		snprintf(text, sizeof(text), "denied by deny_private_destinations: %s", c->dsttext);
		td_fp_deny(c, TD_FP_R_PRIVATE, 403, text);
		return;
	}
	c->next_step = TD_FP_N_FORWARD;
	td_fp_forward(c);
}

static void td_fp_on_request(struct td_hs_req *r)
{
	struct td_fp *fp = td_hs_arg(td_hs_req_hs(r));
	const struct td_http_msg *m = td_hs_req_msg(r);
	const char *buf = td_hs_req_buf(r);
	const struct sockaddr *peer = td_hs_req_peer(r, NULL);
	struct td_fp_rctx *c = td_fp_ctx_new(fp, r);
	union td_addr a;
	uint8_t fam;

	if (!c) {
		td_hs_respond(r, 503, NULL, 0, "out of memory\n", 14, true);
		return;
	}
	c->kind = (uint8_t)td_hs_req_listener_tag(r);
	if (!td_gw_peer_addr(peer, &a, &fam))
		td_addr_format(&a, fam, c->client, sizeof(c->client));
	snprintf(c->url, sizeof(c->url), "%.*s", (int)m->target.len, buf + m->target.off);
	/* allow_clients first: nothing else is looked at for strangers */
	if (!td_fp_client_allowed(c->gen, peer)) {
		td_fp_deny(c, TD_FP_R_CLIENT, 403, "denied by allow_clients");
		return;
	}
	if (c->kind == TD_FP_LIS_TRANSPARENT) {
		td_fp_transparent(c, m, buf);
		return;
	}
	if (c->gen->auth && td_fp_auth(c, m, buf))
		return;
	if (m->method == TD_HTTP_M_CONNECT) {
		td_fp_connect(c, m, buf);
		return;
	}
	if (m->target_form != TD_HTTP_T_ABSOLUTE) {
		td_fp_deny(c, TD_FP_R_SCHEME, 400, "not a proxy request: the target must be an "
			   "absolute http:// URL");
		return;
	}
	td_fp_absolute(c, m, buf);
}

/* transparent.tls_listen: the SNI of the ClientHello, then a tunnel to the original destination */
static int td_fp_on_raw(struct td_hs_req *r, const char *data, size_t len)
{
	struct td_fp *fp = td_hs_arg(td_hs_req_hs(r));
	struct td_fp_rctx *c = td_hs_req_data(r);
	const struct sockaddr *peer = td_hs_req_peer(r, NULL);
	char sni[TD_FP_HOST_MAX], text[TD_FP_HOST_MAX + 64];
	union td_addr a;
	uint8_t fam;
	int rc;

	if (!c) {
		c = td_fp_ctx_new(fp, r);
		if (!c) {
			td_hs_respond(r, 503, NULL, 0, NULL, 0, true);
			return 0;
		}
		c->kind = TD_FP_LIS_TRANSPARENT_TLS;
		if (!td_gw_peer_addr(peer, &a, &fam))
			td_addr_format(&a, fam, c->client, sizeof(c->client));
		if (!td_fp_client_allowed(c->gen, peer)) {
			td_fp_deny(c, TD_FP_R_CLIENT, 403, "denied by allow_clients");
			return 0;
		}
	}
	rc = td_fp_sni_parse((const uint8_t *)data, len, sni, sizeof(sni));
	if (rc == -EAGAIN)
		return -EAGAIN;
	rc = rc < 0 ? rc : td_fp_origdst_lookup(LD(&fp->origdst_fd), peer,
						td_hs_req_local(r, NULL), &c->dst, NULL) ?: rc;
	if (rc < 0) {
		c->code = TD_FP_C_NONE;
		td_hs_respond(r, 400, NULL, 0, NULL, 0, true);
		return 0;
	}
	c->dstlen = td_fp_sslen(&c->dst);
	td_fp_addr_text(&c->dst, c->dsttext, sizeof(c->dsttext));
	snprintf(c->url, sizeof(c->url), "%s:%u", rc == 1 ? sni : c->dsttext,
		 ntohs(c->dst.ss_family == AF_INET ? ((struct sockaddr_in *)&c->dst)->sin_port :
		       ((struct sockaddr_in6 *)&c->dst)->sin6_port));
	if (rc == 0 && (c->gen->deny.n || c->gen->allow_set)) {
		/* without a name the domain rules cannot be applied: refuse (safe default) */
		td_gw_inc(&td_fp_ws(c)->denied[TD_FP_R_DOMAIN], 1);
		c->code = TD_FP_C_DENIED;
		c->dsttext[0] = '\0';	/* nothing was contacted: HIER_NONE in the log */
		td_hs_respond(r, 403, NULL, 0, NULL, 0, true);
		return 0;
	}
	if ((rc == 1 && td_fp_domain_check(c->gen, sni, false, text, sizeof(text))) ||
	    (c->gen->cfg.deny_private_destinations &&
	     td_fp_private_addr((const struct sockaddr *)&c->dst))) {
		unsigned int rule = rc == 1 && td_fp_domain_check(c->gen, sni, false, text,
								   sizeof(text)) ?
				    TD_FP_R_DOMAIN : TD_FP_R_PRIVATE;

		td_gw_inc(&td_fp_ws(c)->denied[rule], 1);
		c->code = TD_FP_C_DENIED;
		c->dsttext[0] = '\0';	/* nothing was contacted: HIER_NONE in the log */
		td_hs_respond(r, 403, NULL, 0, NULL, 0, true);
		return 0;
	}
	td_fp_tunnel(c);
	return 0;
}

static int td_fp_on_upstream(struct td_hs_req *r, void *tag, int err, unsigned int status,
			     bool may_retry)
{
	struct td_fp_rctx *c = td_hs_req_data(r);
	struct td_cache_obj *o, *nobj = NULL;
	struct td_cache_status st = { .fwd = TD_CACHE_FWD_STALE, .fwd_status = 304 };
	struct td_cache_meta meta;
	const char *head;
	char cs[160], *merged = NULL;
	size_t head_len;

	if (!c || !c->stale || err)
		return 0;
	st.fwd = c->reval_fwd;      /* fwd=request when the client asked for it (no-cache) */
	if (status != 304) {
		c->code = TD_FP_C_REFRESH_MODIFIED;
		return 0;
	}
	/*
	 * 304 to our conditional request: the stored response is still good. Its fields are
	 * updated with the 304's (RFC 9111 4.3.4: td_cache_merge_304), the freshness recomputed
	 * from the merged head, and the refreshed copy replaces the stored one. When the 304 does
	 * not select the stored response (-ESTALE) or cannot be merged, the stored fields stay.
	 */
	o = c->stale;
	meta = o->meta;
	head = o->data;
	head_len = o->head_len;
	{
		const char *nbuf = NULL;
		const struct td_http_msg *nm = td_hs_req_upstream_head(r, &nbuf);
		struct td_http_parser sp, mp;
		size_t used;
		int n;

		td_http_parser_init(&sp, TD_HTTP_RESPONSE, NULL);
		merged = nm ? malloc(TD_FP_MERGE_MAX) : NULL;
		if (merged && td_http_parse(&sp, o->data, o->head_len, &used) == TD_HTTP_DONE &&
		    (n = td_cache_merge_304(&sp.msg, o->data, nm, nbuf, merged,
					    TD_FP_MERGE_MAX)) > 0) {
			td_http_parser_init(&mp, TD_HTTP_RESPONSE, NULL);
			if (td_http_parse(&mp, merged, (size_t)n, &used) == TD_HTTP_DONE &&
			    !td_cache_meta_init(&meta, &mp.msg, merged, c->req_time,
						td_fp_wall())) {
				head = merged;
				head_len = (size_t)n;
			} else {
				meta = o->meta;
			}
		}
	}
	if (head == o->data) {
		meta.request_time = c->req_time;
		meta.response_time = meta.date_value = td_fp_wall();
		meta.age_value = 0;
	}
	pthread_mutex_lock(&c->cache->mu);
	if (td_cache_store_put(c->cache->s, o->key, o->vkey, &meta, head, head_len,
			       o->data + o->head_len, o->body_len, &nobj))
		nobj = NULL;
	pthread_mutex_unlock(&c->cache->mu);
	free(merged);
	if (td_cache_status_format("td", &st, cs, sizeof(cs)) < 0)
		snprintf(cs, sizeof(cs), "td; fwd=%s; fwd-status=304",
			 c->reval_fwd == TD_CACHE_FWD_REQUEST ? "request" : "stale");
	c->code = TD_FP_C_REFRESH_UNMODIFIED;
	td_gw_inc(&td_fp_ws(c)->cache_refreshed, 1);
	if (td_fp_serve(c, nobj ? nobj : o, cs))
		td_fp_text(c, 500, NULL, 0, false, "cannot serve the stored response");
	td_fp_obj_put(c->cache, nobj);
	return 1;
}

/* build the stored head: status line and the end-to-end fields, framing dropped */
static int td_fp_store_head(struct td_fp_rctx *c, const struct td_http_msg *m, const char *buf)
{
	size_t cap = 64 + m->reason.len, len;
	char *h;

	for (uint32_t i = 0; i < m->nhdr; i++)
		cap += m->hdr[i].name.len + m->hdr[i].value.len + 4;
	h = malloc(cap);
	if (!h)
		return -ENOMEM;
	len = (size_t)snprintf(h, cap, "HTTP/1.1 %u %.*s\r\n", m->status, (int)m->reason.len,
			       buf + m->reason.off);
	for (uint32_t i = 0; i < m->nhdr; i++) {
		const struct td_http_header *hd = &m->hdr[i];

		if ((hd->flags & TD_HTTP_HF_HOP) || hd->id == TD_HTTP_H_CONTENT_LENGTH)
			continue;
		memcpy(h + len, buf + hd->name.off, hd->name.len);
		len += hd->name.len;
		memcpy(h + len, ": ", 2);
		len += 2;
		memcpy(h + len, buf + hd->value.off, hd->value.len);
		len += hd->value.len;
		memcpy(h + len, "\r\n", 2);
		len += 2;
	}
	memcpy(h + len, "\r\n", 2);
	c->head = h;
	c->head_len = len + 2;
	return 0;
}

static bool td_fp_on_response(struct td_hs_req *r, const struct td_http_msg *m, const char *buf)
{
	struct td_fp_rctx *c = td_hs_req_data(r);
	const struct td_http_msg *q = td_hs_req_msg(r);
	const char *qbuf = td_hs_req_buf(r);
	struct td_fp_cache *fc;
	int i;

	if (!c)
		return false;
	i = td_http_header_find(m, buf, "Content-Type", 0);
	if (i >= 0)
		snprintf(c->ctype, sizeof(c->ctype), "%.*s", (int)m->hdr[i].value.len,
			 buf + m->hdr[i].value.off);
	fc = c->cache ? c->cache : c->kind == TD_FP_LIS_PROXY ? c->gen->cache : NULL;
	if (!fc)
		return false;
	if (!c->cache) {
		/* an unsafe method through the cache: invalidate the URIs it changed (RFC 9111 4.4) */
		char inv[4][TD_CACHE_URI_MAX], key[TD_CACHE_URI_MAX + 8];
		int n = td_cache_invalidations(q, c->url, m, buf, inv, 4);

		for (int k = 0; k < n; k++) {
			if (td_cache_key(TD_HTTP_M_GET, inv[k], strlen(inv[k]), key, sizeof(key)) < 0)
				continue;
			pthread_mutex_lock(&fc->mu);
			td_cache_store_remove(fc->s, key);
			pthread_mutex_unlock(&fc->mu);
		}
		return false;
	}
	if (q->method != TD_HTTP_M_GET || td_cache_storable(q, qbuf, m, buf) != TD_CACHE_STORABLE ||
	    (m->body == TD_HTTP_BODY_LENGTH && m->content_length > fc->max_object) ||
	    td_cache_vary_key(m, buf, q, qbuf, c->vkey, sizeof(c->vkey)) < 0 ||
	    td_cache_meta_init(&c->meta, m, buf, c->req_time, td_fp_wall()) ||
	    td_fp_store_head(c, m, buf)) {
		/* not stored: the waiters need not wait for this body, they forward themselves */
		pthread_mutex_lock(&fc->mu);
		td_fp_fill_done(c, NULL, -ENODATA);
		pthread_mutex_unlock(&fc->mu);
		return false;
	}
	c->storing = true;
	return true;
}

static void td_fp_on_body(struct td_hs_req *r, const char *data, size_t len)
{
	struct td_fp_rctx *c = td_hs_req_data(r);

	if (!c || !c->storing)
		return;
	if (c->body_len + len > c->cache->max_object) {
		c->storing = false;	/* too big: relayed, not stored */
		return;
	}
	if (c->body_len + len > c->body_cap) {
		size_t cap = c->body_cap ? c->body_cap * 2 : 16384;
		char *b;

		while (cap < c->body_len + len)
			cap *= 2;
		if (cap > c->cache->max_object)
			cap = c->cache->max_object;
		b = realloc(c->body, cap);
		if (!b) {
			c->storing = false;
			return;
		}
		c->body = b;
		c->body_cap = cap;
	}
	memcpy(c->body + c->body_len, data, len);
	c->body_len += len;
}

static void td_fp_on_response_end(struct td_hs_req *r, bool complete)
{
	struct td_fp_rctx *c = td_hs_req_data(r);
	struct td_cache_obj *obj = NULL;
	int rc = -ENODATA;

	if (!c || !c->cache)
		return;
	pthread_mutex_lock(&c->cache->mu);
	if (c->storing && complete) {
		rc = td_cache_store_put(c->cache->s, c->key, c->vkey, &c->meta, c->head, c->head_len,
					c->body, c->body_len, &obj);
		if (!rc)
			td_gw_inc(&td_fp_ws(c)->cache_stored, 1);
	}
	td_fp_fill_done(c, rc ? NULL : obj, rc);
	if (obj)
		td_cache_obj_put(obj);
	pthread_mutex_unlock(&c->cache->mu);
	c->storing = false;
}

static void td_fp_on_done(struct td_hs_req *r)
{
	struct td_fp_rctx *c = td_hs_req_data(r);
	struct td_fp_gen *g;
	unsigned int status;
	uint64_t dur;
	struct td_fp_wstat *ws;

	if (!c)
		return;
	g = c->gen;
	ws = td_fp_ws(c);
	td_fp_dns_stop_timer(c);
	if (c->job) {
		td_fp_dns_cancel(c->fp->dns, c->job);
		c->job = NULL;
	}
	if (c->cache) {
		pthread_mutex_lock(&c->cache->mu);
		if (c->waiting) {
			td_cache_collapse_cancel(c->cache->s, c->key, &c->waiter);
			c->waiting = false;
		}
		td_fp_fill_done(c, NULL, -EIO);
		pthread_mutex_unlock(&c->cache->mu);
		td_fp_mbox_cancel(c->fp->w[c->worker].mbox, &c->cwk);
		td_fp_obj_put(c->cache, c->cobj);
		td_fp_obj_put(c->cache, c->stale);
		c->cobj = c->stale = NULL;
	}
	status = td_hs_req_status(r);
	if (c->kind == TD_FP_LIS_TRANSPARENT_TLS && !status)
		/* a raw TLS connection has no HTTP status: log and count what happened like a
		 * CONNECT would have been answered (Squid does the same) */
		status = c->code == TD_FP_C_TUNNEL ? 200 : c->code == TD_FP_C_DENIED ? 403 : 400;
	dur = td_fp_now_ns() - td_hs_req_start_ns(r);
	{
		const struct td_http_msg *m = td_hs_req_msg(r);
		unsigned int mi = c->kind == TD_FP_LIS_TRANSPARENT_TLS ? TD_FP_M_CONNECT :
				  td_fp_meth_idx(m->method);

		if (status >= 100 && status < 600)
			td_gw_inc(&ws->req[mi][status / 100 - 1], 1);
		else if (c->code == TD_FP_C_TUNNEL)
			td_gw_inc(&ws->req[mi][1], 1);
	}
	if (c->code == TD_FP_C_TUNNEL)
		td_gw_inc(&ws->tunnel_bytes, td_hs_req_bytes_in(r) + td_hs_req_bytes_out(r));
	if (g->log && g->log->f) {
		const struct td_http_msg *m = td_hs_req_msg(r);
		const char *buf = td_hs_req_buf(r);
		bool raw = c->kind == TD_FP_LIS_TRANSPARENT_TLS;
		int ref = raw ? -1 : td_http_header_find(m, buf, "Referer", 0);
		int ua = raw ? -1 : td_http_header_find(m, buf, "User-Agent", 0);
		struct timespec ts;
		struct td_fp_log_rec rec;
		char line[4096], *p = line;
		size_t n;

		clock_gettime(CLOCK_REALTIME, &ts);
		rec = (struct td_fp_log_rec){
			.time_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u,
			.elapsed_ms = dur / 1000000u, .client = c->client, .code = c->code,
			.status = status, .bytes = td_hs_req_bytes_out(r),
			.method = raw ? "CONNECT" : buf + m->method_s.off,
			.method_len = raw ? 7 : m->method_s.len,
			.url = c->url, .url_len = strlen(c->url),
			.ident = c->ident[0] ? c->ident : NULL,
			.peer = c->dsttext[0] ? c->dsttext : NULL,
			.ctype = c->ctype[0] ? c->ctype : NULL, .ctype_len = strlen(c->ctype),
			.version = raw ? 11 : m->version,
			.referer = ref >= 0 ? buf + m->hdr[ref].value.off : NULL,
			.referer_len = ref >= 0 ? m->hdr[ref].value.len : 0,
			.ua = ua >= 0 ? buf + m->hdr[ua].value.off : NULL,
			.ua_len = ua >= 0 ? m->hdr[ua].value.len : 0,
		};
		n = td_fp_log_format(g->log->format, &rec, line, sizeof(line));
		if (n >= sizeof(line) && (p = malloc(n + 1)))
			td_fp_log_format(g->log->format, &rec, p, n + 1);
		if (p) {
			td_fp_log_line(g->log, p, n);
			if (p != line)
				free(p);
		}
	}
	td_hs_req_set_data(r, NULL);
	td_fp_ctx_put(c);
}

static const struct td_hs_ops td_fp_ops = {
	.request = td_fp_on_request,
	.upstream = td_fp_on_upstream,
	.done = td_fp_on_done,
	.raw = td_fp_on_raw,
	.response = td_fp_on_response,
	.response_body = td_fp_on_body,
	.response_end = td_fp_on_response_end,
};

/* ---- listeners ---------------------------------------------------------------------------- */

static void td_fp_limits(const struct td_fp_cfg *fc, struct td_hs_limits *l)
{
	td_hs_limits_default(l);
	l->http.max_body = fc->max_body_size;
	if (fc->header_timeout_ms)
		l->header_timeout_ms = fc->header_timeout_ms;
	if (fc->idle_timeout_ms)
		l->idle_timeout_ms = fc->idle_timeout_ms;
	if (fc->max_conns)
		l->max_conns = fc->max_conns;
}

static bool td_fp_ep_equal(const struct td_gw_endpoint *a, const struct td_gw_endpoint *b)
{
	return a->sslen == b->sslen && !memcmp(&a->ss, &b->ss, a->sslen);
}

/* the wanted listeners of fc: (endpoint, kind) pairs */
static size_t td_fp_wanted(const struct td_fp_cfg *fc, struct td_gw_endpoint *eps, uint8_t *kinds)
{
	size_t n = 0;

	for (size_t i = 0; i < fc->n_listen; i++) {
		eps[n] = fc->listen[i];
		kinds[n++] = TD_FP_LIS_PROXY;
	}
	if (fc->transparent_on && fc->transparent_listen.sslen) {
		eps[n] = fc->transparent_listen;
		kinds[n++] = TD_FP_LIS_TRANSPARENT;
	}
	if (fc->transparent_on && fc->transparent_tls_listen.sslen) {
		eps[n] = fc->transparent_tls_listen;
		kinds[n++] = TD_FP_LIS_TRANSPARENT_TLS;
	}
	return n;
}

/* bind the listeners of cfg that are not bound yet; on failure nothing changed */
static int td_fp_listen_set(struct td_fp *fp, const struct td_config *cfg, struct td_fp_lis **out,
			    size_t *nout, struct td_errors *errs)
{
	struct td_gw_endpoint eps[TD_FP_MAX_LISTEN + 2];
	uint8_t kinds[TD_FP_MAX_LISTEN + 2];
	size_t n = td_fp_wanted(&cfg->forward_proxy, eps, kinds), k = 0;
	struct td_fp_lis *nl = calloc(n ? n : 1, sizeof(*nl));
	int rc = 0;

	if (!nl)
		return -ENOMEM;
	for (size_t i = 0; i < fp->n_lis; i++)
		fp->lis[i].keep = false;
	for (size_t i = 0; i < n; i++) {
		struct td_fp_lis *l = &nl[k], *old = NULL;
		struct td_hs_listener hl;

		for (size_t j = 0; j < fp->n_lis && !old; j++)
			if (!fp->lis[j].keep && fp->lis[j].kind == kinds[i] &&
			    td_fp_ep_equal(&fp->lis[j].ep, &eps[i]))
				old = &fp->lis[j];
		l->ep = eps[i];
		l->kind = kinds[i];
		if (old) {
			old->keep = true;
			l->id = old->id;
			l->keep = true;
			k++;
			continue;
		}
		memset(&hl, 0, sizeof(hl));
		memcpy(&hl.ss, &eps[i].ss, sizeof(hl.ss));
		hl.sslen = eps[i].sslen;
		hl.mode = kinds[i] == TD_FP_LIS_TRANSPARENT_TLS ? TD_HS_LISTEN_RAW : TD_HS_LISTEN_HTTP;
		hl.tag = kinds[i];
		rc = td_hs_listen(fp->hs, &hl);
		if (rc < 0) {
			td_errors_add(errs, cfg->path, eps[i].line,
				      "forward_proxy: cannot listen on %s: %s", eps[i].text,
				      strerror(-rc));
			break;
		}
		l->id = rc;
		rc = 0;
		k++;
	}
	if (rc < 0) {
		for (size_t i = 0; i < k; i++)
			if (!nl[i].keep)
				td_hs_unlisten(fp->hs, nl[i].id);
		for (size_t i = 0; i < fp->n_lis; i++)
			fp->lis[i].keep = false;
		free(nl);
		return rc;
	}
	*out = nl;
	*nout = k;
	return 0;
}

static void td_fp_listen_commit(struct td_fp *fp, struct td_fp_lis *nl, size_t n)
{
	for (size_t i = 0; i < fp->n_lis; i++)
		if (!fp->lis[i].keep)
			td_hs_unlisten(fp->hs, fp->lis[i].id);
	free(fp->lis);
	for (size_t i = 0; i < n; i++)
		nl[i].keep = false;
	fp->lis = nl;
	fp->n_lis = n;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int td_fp_check(const struct td_config *cfg, struct td_errors *errs)
{
	struct td_fp_gen *g = td_fp_gen_build(cfg, NULL, 0, true, errs);

	if (!g)
		return -EINVAL;
	td_fp_gen_unref(g);
	return 0;
}

struct td_fp *td_fp_new(const struct td_config *cfg, struct td_errors *errs)
{
	const struct td_fp_cfg *fc = &cfg->forward_proxy;
	struct td_fp_lis *nl = NULL;
	struct td_hs_conf conf;
	struct td_fp *fp;
	size_t nn = 0;
	int rc;

	if (!fc->on) {
		errno = EINVAL;
		return NULL;
	}
	fp = calloc(1, sizeof(*fp));
	if (!fp)
		return NULL;
	pthread_mutex_init(&fp->gen_mu, NULL);
	fp->origdst_fd = -1;
	fp->cfg_workers = fc->workers;
	memset(&conf, 0, sizeof(conf));
	conf.workers = fc->workers;
	td_fp_limits(fc, &conf.lim);
	conf.ops = &td_fp_ops;
	conf.arg = fp;
	conf.name = "fp";
	fp->hs = td_hs_new(&conf);
	if (!fp->hs) {
		rc = -errno;
		td_errors_add(errs, cfg->path, fc->line,
			      "forward_proxy: cannot start the HTTP engine: %s", strerror(-rc));
		goto fail;
	}
	fp->nworkers = td_hs_workers(fp->hs);
	if (!fp->nworkers)
		fp->nworkers = 1;
	fp->w = aligned_alloc(64, fp->nworkers * sizeof(*fp->w));
	fp->ws = aligned_alloc(64, fp->nworkers * sizeof(*fp->ws));
	if (!fp->w || !fp->ws) {
		rc = -ENOMEM;
		goto fail;
	}
	memset(fp->w, 0, fp->nworkers * sizeof(*fp->w));
	memset(fp->ws, 0, fp->nworkers * sizeof(*fp->ws));
	for (unsigned int i = 0; i < fp->nworkers; i++)
		if (!(fp->w[i].mbox = td_fp_mbox_new())) {
			rc = -ENOMEM;
			goto fail;
		}
	fp->dns = td_fp_dns_new(TD_FP_DNS_THREADS);
	if (!fp->dns) {
		rc = -errno;
		goto fail;
	}
	fp->gen = td_fp_gen_build(cfg, NULL, ++fp->gen_no, false, errs);
	if (!fp->gen) {
		rc = -errno;
		goto fail;
	}
	rc = td_fp_listen_set(fp, cfg, &nl, &nn, errs);
	if (rc)
		goto fail;
	td_fp_listen_commit(fp, nl, nn);
	rc = td_hs_start(fp->hs);
	if (rc) {
		td_errors_add(errs, cfg->path, fc->line, "forward_proxy: cannot start workers: %s",
			      strerror(-rc));
		goto fail;
	}
	td_info("forward proxy: generation %llu: %zu listeners, %u workers, cache %s",
		(unsigned long long)fp->gen->number, fp->n_lis, fp->nworkers,
		fp->gen->cache ? "on" : "off");
	return fp;
fail:
	td_fp_free(fp, 0);
	errno = rc < 0 ? -rc : EINVAL;
	return NULL;
}

int td_fp_reload(struct td_fp *fp, const struct td_config *cfg, struct td_errors *errs)
{
	const struct td_fp_cfg *fc = &cfg->forward_proxy;
	struct td_fp_gen *g, *old;
	struct td_fp_lis *nl = NULL;
	struct td_hs_limits lim;
	size_t nn = 0;
	int rc;

	if (!fc->on) {
		td_errors_add(errs, cfg->path, 0, "forward_proxy: the section cannot be removed by "
			      "a reload (restart the agent)");
		return -EINVAL;
	}
	g = td_fp_gen_build(cfg, fp->gen, fp->gen_no + 1, false, errs);
	if (!g)
		return -EINVAL;
	rc = td_fp_listen_set(fp, cfg, &nl, &nn, errs);
	if (rc) {
		td_fp_gen_unref(g);
		return rc;
	}
	if (fc->workers != fp->cfg_workers)
		td_warn("forward proxy: workers changed to %u: takes effect after a restart",
			fc->workers);
	pthread_mutex_lock(&fp->gen_mu);
	old = fp->gen;
	__atomic_store_n(&fp->gen, g, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&fp->gen_mu);
	fp->gen_no++;
	td_fp_listen_commit(fp, nl, nn);
	td_fp_limits(fc, &lim);
	td_hs_set_limits(fp->hs, &lim);
	td_fp_gen_unref(old);
	td_info("forward proxy: generation %llu: %zu listeners, cache %s",
		(unsigned long long)g->number, fp->n_lis, g->cache ? "on" : "off");
	return 0;
}

void td_fp_free(struct td_fp *fp, uint32_t drain_ms)
{
	if (!fp)
		return;
	/* joins the workers: every ops->done has run (and cancelled its DNS job) afterwards */
	td_hs_free(fp->hs, drain_ms);
	td_fp_dns_free(fp->dns);
	free(fp->lis);
	for (unsigned int i = 0; fp->w && i < fp->nworkers; i++) {
		struct td_fp_rctx *c, *next;

		td_fp_gen_unref(fp->w[i].gen);
		for (c = fp->w[i].free; c; c = next) {
			next = c->next;
			free(c);
		}
		td_fp_mbox_free(fp->w[i].mbox);
	}
	free(fp->w);
	free(fp->ws);
	td_fp_gen_unref(fp->gen);
	pthread_mutex_destroy(&fp->gen_mu);
	free(fp);
}

/* ---- metrics, status, log ----------------------------------------------------------------- */

int td_fp_metrics(struct td_fp *fp, struct td_metrics_buf *out)
{
	struct td_cache_store_stats cs;
	struct td_fp_cache *fc = fp->gen->cache;
	struct td_hs_stats st;

	td_hs_stats_get(fp->hs, &st);
	memset(&cs, 0, sizeof(cs));
	if (fc) {
		pthread_mutex_lock(&fc->mu);
		td_cache_store_stats(fc->s, &cs);
		pthread_mutex_unlock(&fc->mu);
	}
	return td_fp_metrics_render(fp->ws, fp->nworkers, &st, fc ? &cs : NULL, out);
}

char *td_fp_status_json(struct td_fp *fp)
{
	static const char *const kind[] = { "proxy", "transparent", "transparent_tls" };
	const struct td_fp_gen *g = fp->gen;
	struct json_object *o = json_object_new_object(), *ls;
	struct td_hs_stats st;
	char *res;

	if (!o)
		return NULL;
	td_hs_stats_get(fp->hs, &st);
	json_object_object_add(o, "generation", json_object_new_uint64(g->number));
	json_object_object_add(o, "workers", json_object_new_int((int)fp->nworkers));
	ls = json_object_new_array();
	for (size_t i = 0; i < fp->n_lis; i++) {
		struct json_object *l = json_object_new_object();

		json_object_object_add(l, "address", json_object_new_string(fp->lis[i].ep.text));
		json_object_object_add(l, "kind", json_object_new_string(kind[fp->lis[i].kind % 3]));
		json_object_array_add(ls, l);
	}
	json_object_object_add(o, "listeners", ls);
	json_object_object_add(o, "connections_open", json_object_new_uint64(st.conns_open));
	json_object_object_add(o, "tunnels_open", json_object_new_uint64(st.tunnels_open));
	json_object_object_add(o, "dns_cache_entries",
			       json_object_new_uint64(td_fp_dns_cache_size(fp->dns)));
	json_object_object_add(o, "auth", json_object_new_boolean(g->auth != NULL));
	json_object_object_add(o, "transparent_map", json_object_new_boolean(LD(&fp->origdst_fd) >= 0));
	if (g->cache) {
		struct td_cache_store_stats cs;
		struct json_object *co = json_object_new_object();

		pthread_mutex_lock(&g->cache->mu);
		td_cache_store_stats(g->cache->s, &cs);
		pthread_mutex_unlock(&g->cache->mu);
		json_object_object_add(co, "memory", json_object_new_uint64(g->cache->memory));
		json_object_object_add(co, "max_object", json_object_new_uint64(g->cache->max_object));
		json_object_object_add(co, "bytes", json_object_new_uint64(cs.bytes));
		json_object_object_add(co, "objects", json_object_new_uint64(cs.objects));
		json_object_object_add(co, "evictions", json_object_new_uint64(cs.evictions));
		json_object_object_add(o, "cache", co);
	}
	res = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return res;
}

int td_fp_reopen_log(struct td_fp *fp)
{
	return td_gw_log_reopen(fp->gen ? fp->gen->log : NULL);
}

void td_fp_set_origdst_fd(struct td_fp *fp, int map_fd)
{
	__atomic_store_n(&fp->origdst_fd, map_fd, __ATOMIC_RELAXED);
}

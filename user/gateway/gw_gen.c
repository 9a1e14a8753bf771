/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Gateway generations: the immutable runtime objects of one config, state carried over reloads. */
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway.h"
#include "gw_internal.h"
#include "log.h"
#include "tls.h"

#define LD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)

/* ---- Basic auth cache --------------------------------------------------------------------- */

static size_t td_gw_basic_slot(const uint8_t sha[32])
{
	return ((size_t)sha[0] << 8 | sha[1]) % TD_GW_BASIC_CACHE;
}

int td_gw_basic_cache_get(struct td_gw_basic_cache *c, const uint8_t sha[32], uint64_t now_s,
			  char *user, size_t usersz)
{
	struct td_gw_basic_entry *e = &c->e[td_gw_basic_slot(sha)];
	int rc = -ENOENT;

	pthread_mutex_lock(&c->mu);
	if (e->expires_s > now_s && !memcmp(e->sha, sha, 32)) {
		snprintf(user, usersz, "%s", e->user);
		rc = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void td_gw_basic_cache_put(struct td_gw_basic_cache *c, const uint8_t sha[32], uint64_t now_s,
			   const char *user)
{
	struct td_gw_basic_entry *e = &c->e[td_gw_basic_slot(sha)];

	pthread_mutex_lock(&c->mu);
	memcpy(e->sha, sha, 32);
	e->expires_s = now_s + TD_GW_BASIC_TTL_S;
	snprintf(e->user, sizeof(e->user), "%s", user);
	pthread_mutex_unlock(&c->mu);
}

/* ---- free --------------------------------------------------------------------------------- */

static void td_gw_route_fini(struct td_gw_route *r)
{
	td_auth_free(r->auth);
	if (r->basic) {
		pthread_mutex_destroy(&r->basic->mu);
		free(r->basic);
	}
	td_rl_free(r->rl);
	free(r->req_rm);
	free(r->req_add);
	free(r->resp_rm);
	free(r->resp_add);
	free(r->strings);
	free(r->agg);
	td_gw_stat_unref(r->stat);
}

static void td_gw_gen_free(struct td_gw_gen *g)
{
	for (size_t i = 0; i < g->n_routes; i++)
		td_gw_route_fini(&g->routes[i]);
	free(g->routes);
	for (size_t i = 0; i < g->n_ups; i++) {
		struct td_gw_upstream *u = &g->ups[i];

		for (size_t j = 0; j < u->n; j++)
			td_gw_bstate_unref(u->be[j].st);
		free(u->be);
		free(u->rr);
		td_gw_stat_unref(u->stat);
	}
	free(g->ups);
	td_route_table_unref(g->rt);
	td_tls_unref(g->tls);
	td_gw_log_unref(g->log);
	td_gw_stat_unref(g->unrouted);
	free(g);
}

struct td_gw_gen *td_gw_gen_ref(struct td_gw_gen *g)
{
	__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
	return g;
}

void td_gw_gen_unref(struct td_gw_gen *g)
{
	if (g && __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0)
		td_gw_gen_free(g);
}

struct td_gw_upstream *td_gw_gen_upstream(const struct td_gw_gen *g, const char *name)
{
	for (size_t i = 0; g && i < g->n_ups; i++)
		if (!strcmp(g->ups[i].name, name))
			return &g->ups[i];
	return NULL;
}

struct td_gw_backend *td_gw_gen_backend_by_key(const struct td_gw_gen *g, const char *key)
{
	size_t pl = strlen(TD_GW_HEALTH_PREFIX);

	if (!g || strncmp(key, TD_GW_HEALTH_PREFIX, pl))
		return NULL;
	for (size_t i = 0; i < g->n_ups; i++)
		for (size_t j = 0; j < g->ups[i].n; j++)
			if (!strcmp(g->ups[i].be[j].st->key, key + pl))
				return &g->ups[i].be[j];
	return NULL;
}

/* ---- build -------------------------------------------------------------------------------- */

struct td_gw_build {
	const struct td_config *cfg;
	const struct td_gw_gen *prev;
	struct td_errors *errs;
	char dir[TD_GW_FILE_LEN];
	int nerr;
};

#define td_gw_err(b, line, ...) do {					\
	td_errors_add((b)->errs, (b)->cfg->path, (line), __VA_ARGS__);	\
	(b)->nerr++;							\
} while (0)

/* a config file name: relative ones are relative to the config's folder */
static const char *td_gw_file(struct td_gw_build *b, const char *f, char *out, size_t size)
{
	if (!f || !*f)
		return NULL;
	if (f[0] == '/' || !b->dir[0])
		snprintf(out, size, "%s", f);
	else if (snprintf(out, size, "%s/%s", b->dir, f) >= (int)size)
		return f;	/* too long: let the open fail with the name as written */
	return out;
}

static struct td_gw_stat *td_gw_stat_carry(struct td_gw_stat *old, const char *name,
					   unsigned int nworkers)
{
	if (old && old->nworkers == nworkers) {
		__atomic_add_fetch(&old->refs, 1, __ATOMIC_RELAXED);
		return old;
	}
	return td_gw_stat_new(name, nworkers);
}

static int td_gw_build_upstream(struct td_gw_build *b, struct td_gw_gen *g, size_t i)
{
	const struct td_gw_upstream_cfg *c = &b->cfg->gateway.upstreams[i];
	struct td_gw_upstream *u = &g->ups[i];
	const struct td_gw_upstream *pu = td_gw_gen_upstream(b->prev, c->name);
	char key[TD_GW_KEY_LEN];

	snprintf(u->name, sizeof(u->name), "%s", c->name);
	u->lb = c->lb;
	u->hash_key = c->hash_key;
	snprintf(u->hash_header, sizeof(u->hash_header), "%s", c->hash_header);
	u->retries = c->retries;
	u->connect_timeout_ms = c->connect_timeout_ms;
	u->response_timeout_ms = c->response_timeout_ms;
	u->outlier_failures = c->outlier_failures;
	u->outlier_ejection_ms = c->outlier_ejection_ms;
	u->max_idle = c->max_idle;
	u->health = c->health;
	u->be = calloc(c->n_backends ? c->n_backends : 1, sizeof(*u->be));
	u->rr = aligned_alloc(64, (size_t)g->nworkers * sizeof(*u->rr));
	u->stat = td_gw_stat_carry(pu ? pu->stat : NULL, c->name, g->nworkers);
	if (!u->be || !u->rr || !u->stat)
		return -ENOMEM;
	memset(u->rr, 0, (size_t)g->nworkers * sizeof(*u->rr));
	for (size_t j = 0; j < c->n_backends; j++) {
		const struct td_gw_endpoint *ep = &c->backends[j];
		struct td_gw_backend *be = &u->be[u->n];
		union td_addr a;
		uint8_t fam;
		uint16_t port;

		if (td_gw_peer_addr((const struct sockaddr *)&ep->ss, &a, &fam)) {
			td_gw_err(b, ep->line, "upstream %s: backend %s: not an IP address",
				  c->name, ep->text);
			continue;
		}
		port = ntohs(ep->ss.ss_family == AF_INET ?
			     ((const struct sockaddr_in *)&ep->ss)->sin_port :
			     ((const struct sockaddr_in6 *)&ep->ss)->sin6_port);
		td_endpoint_format(&a, fam, port, be->addr, sizeof(be->addr));
		memcpy(&be->ss, &ep->ss, sizeof(be->ss));
		be->sslen = ep->sslen;
		be->up = u;
		be->idx = (uint32_t)u->n;
		be->seed = td_gw_hash(be->addr, strlen(be->addr));
		snprintf(key, sizeof(key), "%s/%s", c->name, be->addr);
		for (size_t k = 0; pu && k < pu->n && !be->st; k++)
			if (!strcmp(pu->be[k].st->key, key)) {
				be->st = pu->be[k].st;
				__atomic_add_fetch(&be->st->refs, 1, __ATOMIC_RELAXED);
			}
		if (!be->st && !(be->st = td_gw_bstate_new(key)))
			return -ENOMEM;
		/* without active checks nothing would ever mark it up again */
		if (c->health.type == TD_HC_NONE)
			__atomic_store_n(&be->st->healthy, true, __ATOMIC_RELAXED);
		u->n++;
	}
	return 0;
}

/* a packed copy of every string of a route's edit lists */
struct td_gw_pack {
	char *p;
	size_t len, cap;
};

static const char *td_gw_pack(struct td_gw_pack *k, const char *s)
{
	size_t n = strlen(s) + 1;
	char *r = k->p + k->len;

	/* cap was computed from the same strings: never overflows */
	memcpy(r, s, n);
	k->len += n;
	return r;
}

static const char *const td_gw_fwd_names[] = {
	"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded",
};

static int td_gw_build_edits(struct td_gw_build *b, struct td_gw_gen *g, struct td_gw_route *r,
			     const struct td_gw_route_cfg *c)
{
	const struct td_gw_hdr_edit_cfg *q = &c->request_headers, *s = &c->response_headers;
	size_t nfwd = sizeof(td_gw_fwd_names) / sizeof(td_gw_fwd_names[0]);
	struct td_gw_pack k = { 0 };

	k.cap = strlen(g->rid_header) + 1 + strlen(c->auth.identity_header) + 1;
	for (size_t i = 0; i < nfwd; i++)
		k.cap += strlen(td_gw_fwd_names[i]) + 1;
	for (size_t i = 0; i < q->n_remove; i++)
		k.cap += strlen(q->remove[i]) + 1;
	for (size_t i = 0; i < q->n_add; i++)
		k.cap += strlen(q->add[i].name) + strlen(q->add[i].value) + 2;
	for (size_t i = 0; i < s->n_remove; i++)
		k.cap += strlen(s->remove[i]) + 1;
	for (size_t i = 0; i < s->n_add; i++)
		k.cap += strlen(s->add[i].name) + strlen(s->add[i].value) + 2;
	r->strings = k.p = malloc(k.cap);
	r->req_rm = calloc(q->n_remove + q->n_add + nfwd + 2, sizeof(*r->req_rm));
	r->req_add = calloc(q->n_add + 1, sizeof(*r->req_add));
	r->resp_rm = calloc(s->n_remove + s->n_add + 1, sizeof(*r->resp_rm));
	r->resp_add = calloc(s->n_add + 1, sizeof(*r->resp_add));
	if (!k.p || !r->req_rm || !r->req_add || !r->resp_rm || !r->resp_add)
		return -ENOMEM;

	/* request: the client's fields we set are always dropped first (replace semantics) */
	for (size_t i = 0; i < q->n_remove; i++)
		r->req_rm[r->n_req_rm++] = td_gw_pack(&k, q->remove[i]);
	for (size_t i = 0; i < q->n_add; i++) {
		r->req_add[i].name = r->req_rm[r->n_req_rm++] = td_gw_pack(&k, q->add[i].name);
		r->req_add[i].value = td_gw_pack(&k, q->add[i].value);
	}
	r->n_req_add = q->n_add;
	for (size_t i = 0; i < nfwd; i++)
		r->req_rm[r->n_req_rm++] = td_gw_pack(&k, td_gw_fwd_names[i]);
	r->req_rm[r->n_req_rm++] = td_gw_pack(&k, g->rid_header);
	if (c->auth.identity_header[0])
		r->req_rm[r->n_req_rm++] = td_gw_pack(&k, c->auth.identity_header);

	/* response: the request id header is ours (echoed) */
	for (size_t i = 0; i < s->n_remove; i++)
		r->resp_rm[r->n_resp_rm++] = td_gw_pack(&k, s->remove[i]);
	for (size_t i = 0; i < s->n_add; i++) {
		r->resp_add[i].name = r->resp_rm[r->n_resp_rm++] = td_gw_pack(&k, s->add[i].name);
		r->resp_add[i].value = td_gw_pack(&k, s->add[i].value);
	}
	r->n_resp_add = s->n_add;
	return 0;
}

static int td_gw_file_check(struct td_gw_build *b, const struct td_gw_route_cfg *c,
			    const char *what, const char *f)
{
	if (f && access(f, R_OK)) {
		td_gw_err(b, c->auth.line, "route %s: auth: %s %s: %s", c->name, what, f,
			  strerror(errno));
		return -1;
	}
	return 0;
}

static int td_gw_build_auth(struct td_gw_build *b, struct td_gw_route *r,
			    const struct td_gw_route_cfg *c)
{
	const struct td_gw_auth_cfg *a = &c->auth;
	char f1[TD_GW_FILE_LEN], f2[TD_GW_FILE_LEN], f3[TD_GW_FILE_LEN];
	struct td_auth_api_key *keys = NULL;
	struct td_auth_config ac;
	int bad = 0;

	memset(&ac, 0, sizeof(ac));
	r->auth_kind = a->kind;
	snprintf(r->identity_header, sizeof(r->identity_header), "%s", a->identity_header);
	switch (a->kind) {
	case TD_GW_AUTH_NONE:
		return 0;
	case TD_GW_AUTH_JWT:
		ac.kind = TD_AUTH_JWT;
		td_jwt_config_default(&ac.jwt, a->jwt_alg);
		ac.jwt.secret_file = td_gw_file(b, a->secret_file, f1, sizeof(f1));
		ac.jwt.key_file = td_gw_file(b, a->key_file, f2, sizeof(f2));
		ac.jwt.jwks_file = td_gw_file(b, a->jwks_file, f3, sizeof(f3));
		ac.jwt.issuer = a->issuer[0] ? a->issuer : NULL;
		ac.jwt.audience = a->audience[0] ? a->audience : NULL;
		ac.jwt.leeway = a->leeway_s;
		bad |= td_gw_file_check(b, c, "jwt secret_file", ac.jwt.secret_file);
		bad |= td_gw_file_check(b, c, "jwt key_file", ac.jwt.key_file);
		bad |= td_gw_file_check(b, c, "jwt jwks_file", ac.jwt.jwks_file);
		break;
	case TD_GW_AUTH_API_KEYS:
		ac.kind = TD_AUTH_API_KEY;
		ac.key_header = a->key_header[0] ? a->key_header : NULL;
		ac.keys_file = td_gw_file(b, a->keys_file, f1, sizeof(f1));
		if (a->n_keys) {
			keys = calloc(a->n_keys, sizeof(*keys));
			if (!keys)
				return -ENOMEM;
			for (size_t i = 0; i < a->n_keys; i++) {
				keys[i].name = a->keys[i].name;
				keys[i].sha256 = a->keys[i].sha256;
			}
		}
		ac.keys = keys;
		ac.nkeys = a->n_keys;
		bad |= td_gw_file_check(b, c, "api_keys keys_file", ac.keys_file);
		break;
	case TD_GW_AUTH_BASIC:
		ac.kind = TD_AUTH_BASIC;
		ac.users_file = td_gw_file(b, a->users_file, f1, sizeof(f1));
		bad |= td_gw_file_check(b, c, "basic users_file", ac.users_file);
		r->basic = calloc(1, sizeof(*r->basic));
		if (!r->basic)
			return -ENOMEM;
		pthread_mutex_init(&r->basic->mu, NULL);
		break;
	default:
		td_gw_err(b, a->line, "route %s: auth: unknown kind %u", c->name, a->kind);
		return 0;
	}
	ac.realm = a->realm[0] ? a->realm : NULL;
	if (!bad) {
		r->auth = td_auth_new(&ac);
		if (!r->auth)
			td_gw_err(b, a->line, "route %s: auth: cannot load the %s configuration: %s",
				  c->name, a->kind == TD_GW_AUTH_JWT ? "jwt" :
				  a->kind == TD_GW_AUTH_BASIC ? "basic" : "api_keys",
				  errno == EINVAL ? "invalid key, secret or file contents" :
				  strerror(errno));
	}
	free(keys);
	return 0;
}

static int td_gw_build_route(struct td_gw_build *b, struct td_gw_gen *g, size_t i)
{
	const struct td_gw_route_cfg *c = &b->cfg->gateway.routes[i];
	struct td_gw_route *r = &g->routes[i];
	const struct td_gw_route *pr = NULL;
	int rc;

	snprintf(r->name, sizeof(r->name), "%s", c->name[0] ? c->name : "route");
	if (!c->name[0])
		snprintf(r->name, sizeof(r->name), "route%zu", i);
	r->line = c->line;
	for (size_t k = 0; b->prev && k < b->prev->n_routes && !pr; k++)
		if (!strcmp(b->prev->routes[k].name, r->name))
			pr = &b->prev->routes[k];
	r->stat = td_gw_stat_carry(pr ? pr->stat : NULL, r->name, g->nworkers);
	if (!r->stat)
		return -ENOMEM;
	if (c->n_aggregate) {
		r->agg = calloc(c->n_aggregate, sizeof(*r->agg));
		if (!r->agg)
			return -ENOMEM;
		memcpy(r->agg, c->aggregate, c->n_aggregate * sizeof(*r->agg));
		r->n_agg = c->n_aggregate;
	} else if (c->upstream_idx >= 0 && (size_t)c->upstream_idx < g->n_ups) {
		r->up = &g->ups[c->upstream_idx];
	} else {
		td_gw_err(b, c->line, "route %s: unknown upstream '%s'", r->name, c->upstream);
	}
	r->strip = c->strip_prefix[0] != '\0';
	rc = td_gw_build_edits(b, g, r, c);
	if (!rc)
		rc = td_gw_build_auth(b, r, c);
	if (rc)
		return rc;
	if (c->rate_limit.on) {
		struct td_rl_conf rc2 = {
			.rate = c->rate_limit.rate,
			.burst = c->rate_limit.burst ? c->rate_limit.burst : c->rate_limit.rate,
			.period_ms = c->rate_limit.period_ms,
		};

		r->rl_key = c->rate_limit.key;
		if ((r->rl_key == TD_RL_KEY_API_KEY && c->auth.kind != TD_GW_AUTH_API_KEYS) ||
		    (r->rl_key == TD_RL_KEY_JWT_SUB && c->auth.kind != TD_GW_AUTH_JWT))
			td_gw_err(b, c->rate_limit.line, "route %s: rate_limit: key %s needs auth %s",
				  r->name, r->rl_key == TD_RL_KEY_API_KEY ? "api_key" : "jwt_sub",
				  r->rl_key == TD_RL_KEY_API_KEY ? "api_keys" : "jwt");
		r->rl = td_rl_new(&rc2);
		if (!r->rl)
			td_gw_err(b, c->rate_limit.line, "route %s: rate_limit: %s", r->name,
				  strerror(errno));
	}
	return 0;
}

static void td_gw_build_table(struct td_gw_build *b, struct td_gw_gen *g)
{
	const struct td_gw_cfg *gc = &b->cfg->gateway;
	struct td_route_spec *specs = calloc(gc->n_routes ? gc->n_routes : 1, sizeof(*specs));
	struct td_route_hdr *hdrs = calloc(gc->n_routes * TD_GW_MAX_HDR_MATCH + 1, sizeof(*hdrs));
	char err[256] = "";
	size_t idx;

	if (!specs || !hdrs) {
		td_gw_err(b, gc->line, "gateway: out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < gc->n_routes; i++) {
		const struct td_gw_route_cfg *c = &gc->routes[i];
		struct td_route_spec *s = &specs[i];

		s->name = g->routes[i].name;
		s->host = c->host[0] ? c->host : NULL;
		s->path = c->path[0] ? c->path : NULL;
		s->path_prefix = c->path_prefix[0] ? c->path_prefix : NULL;
		s->methods = c->methods;
		s->headers = &hdrs[i * TD_GW_MAX_HDR_MATCH];
		s->nheaders = c->n_match_headers;
		for (size_t h = 0; h < c->n_match_headers && h < TD_GW_MAX_HDR_MATCH; h++) {
			hdrs[i * TD_GW_MAX_HDR_MATCH + h].name = c->match_headers[h].name;
			hdrs[i * TD_GW_MAX_HDR_MATCH + h].value = c->match_headers[h].value;
		}
		s->strip_prefix = c->strip_prefix[0] ? c->strip_prefix : NULL;
		s->data = &g->routes[i];
	}
	g->rt = td_route_table_build(specs, gc->n_routes, err, sizeof(err));
	if (!g->rt) {
		int line = gc->line;

		if (sscanf(err, "route %zu", &idx) == 1 && idx < gc->n_routes)
			line = gc->routes[idx].line;
		td_gw_err(b, line, "gateway.routes: %s", err[0] ? err : strerror(errno));
	}
cleanup:
	free(specs);
	free(hdrs);
}

static void td_gw_build_tls(struct td_gw_build *b, struct td_gw_gen *g)
{
	const struct td_gw_cfg *gc = &b->cfg->gateway;
	struct td_tls_cert *certs;
	char (*paths)[2][TD_GW_FILE_LEN];
	char err[512] = "";
	size_t idx;

	if (!gc->n_tls_certs) {
		if (gc->n_tls_listen)
			td_gw_err(b, gc->tls_listen[0].line, "gateway.tls: listen without certs");
		return;
	}
	certs = calloc(gc->n_tls_certs, sizeof(*certs));
	paths = calloc(gc->n_tls_certs, sizeof(*paths));
	if (certs && paths) {
		for (size_t i = 0; i < gc->n_tls_certs; i++) {
			certs[i].cert = td_gw_file(b, gc->tls_certs[i].cert, paths[i][0],
						   sizeof(paths[i][0]));
			certs[i].key = td_gw_file(b, gc->tls_certs[i].key, paths[i][1],
						  sizeof(paths[i][1]));
		}
		g->tls = td_tls_new(certs, gc->n_tls_certs, err, sizeof(err));
		if (!g->tls) {
			int line = gc->tls_certs[0].line;

			if (sscanf(err, "cert %zu", &idx) == 1 && idx < gc->n_tls_certs)
				line = gc->tls_certs[idx].line;
			td_gw_err(b, line, "gateway.tls: %s", err[0] ? err : strerror(errno));
		}
	} else {
		td_gw_err(b, gc->line, "gateway.tls: out of memory");
	}
	free(certs);
	free(paths);
}

struct td_gw_gen *td_gw_gen_build(const struct td_config *cfg, const struct td_gw_gen *prev,
				  unsigned int nworkers, uint64_t number, bool check,
				  struct td_errors *errs)
{
	const struct td_gw_cfg *gc = &cfg->gateway;
	struct td_gw_build b = { .cfg = cfg, .prev = prev, .errs = errs };
	struct td_gw_gen *g;
	char tmp[PATH_MAX];
	int rc = 0;

	if (!nworkers)
		nworkers = 1;
	snprintf(tmp, sizeof(tmp), "%s", cfg->path);
	if (cfg->path[0] && strchr(cfg->path, '/'))
		snprintf(b.dir, sizeof(b.dir), "%s", dirname(tmp));
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->refs = 1;
	g->number = number;
	g->nworkers = nworkers;
	memcpy(g->trusted, gc->trusted_proxies, sizeof(g->trusted));
	g->n_trusted = gc->n_trusted < TD_GW_MAX_TRUSTED ? gc->n_trusted : TD_GW_MAX_TRUSTED;
	snprintf(g->rid_header, sizeof(g->rid_header), "%s",
		 gc->request_id_header[0] ? gc->request_id_header : "X-Request-Id");
	g->agg_max_body = gc->max_body_size ? gc->max_body_size : (1u << 20);
	g->unrouted = td_gw_stat_carry(prev ? prev->unrouted : NULL, "", nworkers);
	g->ups = calloc(gc->n_upstreams ? gc->n_upstreams : 1, sizeof(*g->ups));
	g->routes = calloc(gc->n_routes ? gc->n_routes : 1, sizeof(*g->routes));
	if (!g->unrouted || !g->ups || !g->routes) {
		rc = -ENOMEM;
		goto cleanup;
	}
	g->n_ups = gc->n_upstreams;
	for (size_t i = 0; i < gc->n_upstreams && !rc; i++)
		rc = td_gw_build_upstream(&b, g, i);
	g->n_routes = gc->n_routes;
	for (size_t i = 0; i < gc->n_routes && !rc; i++)
		rc = td_gw_build_route(&b, g, i);
	if (rc)
		goto cleanup;
	td_gw_build_table(&b, g);
	td_gw_build_tls(&b, g);
	if (!check && !b.nerr) {
		const struct td_gw_log *pl = prev ? prev->log : NULL;
		const char *path = gc->access_log[0] ? gc->access_log : "stdout";

		if (pl && !strcmp(pl->path, path) && pl->format == gc->access_log_format)
			g->log = td_gw_log_ref((struct td_gw_log *)pl);
		else if (!(g->log = td_gw_log_open(path, gc->access_log_format)))
			td_gw_err(&b, gc->line, "gateway.access_log: %s: %s", path,
				  strerror(errno));
	}
cleanup:
	if (rc) {
		td_gw_err(&b, gc->line, "gateway: %s", strerror(-rc));
		td_gw_gen_unref(g);
		errno = -rc;
		return NULL;
	}
	if (b.nerr) {
		td_gw_gen_unref(g);
		errno = EINVAL;
		return NULL;
	}
	return g;
}

int td_gw_check(const struct td_config *cfg, struct td_errors *errs)
{
	struct td_gw_gen *g;

	if (!cfg->gateway.on)
		return 0;
	g = td_gw_gen_build(cfg, NULL, 1, 0, true, errs);
	if (!g)
		return -EINVAL;
	td_gw_gen_unref(g);
	return 0;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forward proxy generations and rules: URIs, domain sets, private ranges, client ACL, ports. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_internal.h"
#include "log.h"

/* ---- names -------------------------------------------------------------------------------- */

const char *td_fp_rule_name(unsigned int rule)
{
	static const char *const n[TD_FP_R_MAX] = {
		"client", "auth", "port", "domain", "private", "scheme",
	};

	return rule < TD_FP_R_MAX ? n[rule] : "other";
}

unsigned int td_fp_meth_idx(uint8_t method)
{
	switch (method) {
	case TD_HTTP_M_GET: return TD_FP_M_GET;
	case TD_HTTP_M_HEAD: return TD_FP_M_HEAD;
	case TD_HTTP_M_POST: return TD_FP_M_POST;
	case TD_HTTP_M_PUT: return TD_FP_M_PUT;
	case TD_HTTP_M_DELETE: return TD_FP_M_DELETE;
	case TD_HTTP_M_CONNECT: return TD_FP_M_CONNECT;
	case TD_HTTP_M_OPTIONS: return TD_FP_M_OPTIONS;
	case TD_HTTP_M_PATCH: return TD_FP_M_PATCH;
	}
	return TD_FP_M_OTHER;
}

const char *td_fp_meth_name(unsigned int idx)
{
	static const char *const n[TD_FP_M_MAX] = {
		"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "PATCH", "other",
	};

	return idx < TD_FP_M_MAX ? n[idx] : "other";
}

/* ---- URIs --------------------------------------------------------------------------------- */

int td_fp_host_norm(const char *s, size_t len, char *out, size_t size, bool *ip)
{
	struct in6_addr a6;
	struct in_addr a4;
	size_t i;

	if (len && s[len - 1] == '.')
		len--;
	if (!len || len >= size)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		/* reg-name bytes we accept: letters, digits, '-', '.', '_' (seen in the wild), ':'
		 * only for IPv6 literals */
		if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_' && ch != ':')
			return -EINVAL;
		out[i] = (char)tolower(ch);
	}
	out[len] = '\0';
	*ip = false;
	if (strchr(out, ':')) {
		if (inet_pton(AF_INET6, out, &a6) != 1)
			return -EINVAL;
		*ip = true;
	} else if (inet_pton(AF_INET, out, &a4) == 1) {
		*ip = true;
	} else if (out[0] == '.' || strstr(out, "..")) {
		return -EINVAL;
	}
	return 0;
}

/* host[:port] or [v6][:port] at s..e into u (host, ip, port or def_port, authority) */
static int td_fp_hostport(const char *s, const char *e, uint16_t def_port, bool need_port,
			  struct td_fp_uri *u)
{
	const char *hs = s, *he, *colon = NULL;
	unsigned long port = def_port;
	bool v6 = false;
	int rc;

	if (s >= e)
		return -EINVAL;
	if (*s == '[') {
		he = memchr(s, ']', (size_t)(e - s));
		if (!he)
			return -EINVAL;
		hs = s + 1;
		v6 = true;
		if (he + 1 < e) {
			if (he[1] != ':')
				return -EINVAL;
			colon = he + 1;
		}
	} else {
		colon = memchr(s, ':', (size_t)(e - s));
		he = colon ? colon : e;
	}
	if (colon) {
		const char *p = colon + 1;

		if (p == e)
			return -EINVAL;
		port = 0;
		for (; p < e; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			port = port * 10 + (unsigned long)(*p - '0');
			if (port > 65535)
				return -EINVAL;
		}
		if (!port)
			return -EINVAL;
	} else if (need_port) {
		return -EINVAL;
	}
	rc = td_fp_host_norm(hs, (size_t)(he - hs), u->host, sizeof(u->host), &u->ip);
	if (rc)
		return rc;
	if (v6 != !!strchr(u->host, ':'))
		return -EINVAL;
	u->port = (uint16_t)port;
	if (port == def_port && !need_port)
		snprintf(u->authority, sizeof(u->authority), v6 ? "[%s]" : "%s", u->host);
	else
		snprintf(u->authority, sizeof(u->authority), v6 ? "[%s]:%lu" : "%s:%lu", u->host,
			 port);
	return 0;
}

int td_fp_uri_parse(const char *s, size_t len, struct td_fp_uri *u)
{
	const char *e = s + len, *p, *a, *ae;

	memset(u, 0, sizeof(*u));
	p = memmem(s, len, "://", 3);
	if (!p || p == s)
		return -EINVAL;
	if ((size_t)(p - s) != 4 || strncasecmp(s, "http", 4))
		return -EPROTONOSUPPORT;
	a = p + 3;
	for (ae = a; ae < e && *ae != '/' && *ae != '?' && *ae != '#'; ae++)
		if (*ae == '@')
			return -EINVAL;	/* userinfo: refused (RFC 9110 4.2.4 deprecates it) */
	if (td_fp_hostport(a, ae, 80, false, u))
		return -EINVAL;
	p = memchr(ae, '#', (size_t)(e - ae));
	if (p)
		e = p;
	if (ae == e || *ae != '/') {
		if (ae == e) {
			u->path = "/";
			u->path_len = 1;
			return 0;
		}
		if (*ae == '?')
			return -EINVAL;	/* "http://h?q": the origin-form would lack its '/' */
	}
	u->path = ae;
	u->path_len = (size_t)(e - ae);
	return 0;
}

int td_fp_authority_parse(const char *s, size_t len, struct td_fp_uri *u)
{
	memset(u, 0, sizeof(*u));
	if (memchr(s, '/', len) || memchr(s, '@', len))
		return -EINVAL;
	return td_fp_hostport(s, s + len, 0, true, u);
}

/* ---- domain sets -------------------------------------------------------------------------- */

static size_t td_fp_domset_pos(const struct td_fp_domset *s, const char *key, size_t klen,
			       bool wild)
{
	size_t i = (size_t)(td_gw_hash(key, klen) ^ (wild ? 0x9e3779b97f4a7c15ull : 0)) &
		   (s->cap - 1);

	for (;; i = (i + 1) & (s->cap - 1)) {
		const char *k;

		if (!s->slot[i])
			return i;
		k = s->slot[i] + (s->wild[i] ? 2 : 0);
		if (!!s->wild[i] == wild && strlen(k) == klen && !memcmp(k, key, klen))
			return i;
	}
}

static int td_fp_domset_grow(struct td_fp_domset *s)
{
	struct td_fp_domset n = { .cap = s->cap ? s->cap * 2 : 64 };

	n.slot = calloc(n.cap, sizeof(*n.slot));
	n.wild = calloc(n.cap, 1);
	if (!n.slot || !n.wild) {
		free(n.slot);
		free(n.wild);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->cap; i++) {
		const char *k;
		size_t j;

		if (!s->slot[i])
			continue;
		k = s->slot[i] + (s->wild[i] ? 2 : 0);
		j = td_fp_domset_pos(&n, k, strlen(k), s->wild[i]);
		n.slot[j] = s->slot[i];
		n.wild[j] = s->wild[i];
		n.n++;
	}
	free(s->slot);
	free(s->wild);
	*s = n;
	return 0;
}

int td_fp_domset_add(struct td_fp_domset *s, const char *pattern)
{
	bool wild = !strncmp(pattern, "*.", 2), ip;
	char norm[TD_FP_HOST_MAX + 2];
	const char *k;
	size_t i;

	if (td_fp_host_norm(pattern + (wild ? 2 : 0), strlen(pattern) - (wild ? 2 : 0),
			    norm + 2, sizeof(norm) - 2, &ip) || (wild && ip))
		return -EINVAL;
	norm[0] = '*';
	norm[1] = '.';
	if ((s->n + 1) * 2 > s->cap && td_fp_domset_grow(s))
		return -ENOMEM;
	k = norm + 2;
	i = td_fp_domset_pos(s, k, strlen(k), wild);
	if (s->slot[i])
		return 0;	/* duplicate */
	s->slot[i] = strdup(wild ? norm : k);
	if (!s->slot[i])
		return -ENOMEM;
	s->wild[i] = wild;
	s->n++;
	return 0;
}

void td_fp_domset_free(struct td_fp_domset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
	free(s->wild);
	memset(s, 0, sizeof(*s));
}

const char *td_fp_domset_match(const struct td_fp_domset *s, const char *host, bool ip)
{
	size_t i, len = strlen(host);
	const char *p;

	if (!s->n)
		return NULL;
	i = td_fp_domset_pos(s, host, len, false);
	if (s->slot[i])
		return s->slot[i];
	if (ip)
		return NULL;
	/* "*.x" matches every proper subdomain of x: try each parent of host */
	for (p = strchr(host, '.'); p; p = strchr(p + 1, '.')) {
		i = td_fp_domset_pos(s, p + 1, strlen(p + 1), true);
		if (s->slot[i])
			return s->slot[i];
	}
	return NULL;
}

/* ---- destinations ------------------------------------------------------------------------- */

static bool td_fp_private_v4(const uint8_t *a)
{
	return a[0] == 0 || a[0] == 10 || a[0] == 127 ||
	       (a[0] == 100 && (a[1] & 0xc0) == 64) ||
	       (a[0] == 172 && (a[1] & 0xf0) == 16) ||
	       (a[0] == 192 && a[1] == 168) ||
	       (a[0] == 169 && a[1] == 254) ||
	       a[0] >= 224;	/* 224/4 multicast and 240/4 reserved (incl. broadcast) */
}

bool td_fp_private_addr(const struct sockaddr *sa)
{
	const uint8_t *a;
	static const uint8_t zero[16];

	if (sa->sa_family == AF_INET)
		return td_fp_private_v4((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
	if (sa->sa_family != AF_INET6)
		return true;
	a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	if (!memcmp(a, zero, 15) && (a[15] == 0 || a[15] == 1))
		return true;				/* :: and ::1 */
	if ((a[0] & 0xfe) == 0xfc)
		return true;				/* fc00::/7 unique local */
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return true;				/* fe80::/10 link local */
	if (a[0] == 0xff)
		return true;				/* ff00::/8 multicast */
	if (!memcmp(a, zero, 10) && a[10] == 0xff && a[11] == 0xff)
		return td_fp_private_v4(a + 12);	/* ::ffff:0:0/96 mapped */
	return false;
}

/* ---- the cache object ----------------------------------------------------------------------- */

struct td_fp_cache *td_fp_cache_new(uint64_t memory, uint64_t max_object)
{
	struct td_fp_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->s = td_cache_store_new((size_t)memory, (size_t)max_object);
	if (!c->s) {
		free(c);
		return NULL;
	}
	c->refs = 1;
	c->memory = memory;
	c->max_object = max_object;
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

struct td_fp_cache *td_fp_cache_ref(struct td_fp_cache *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void td_fp_cache_unref(struct td_fp_cache *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL))
		return;
	td_cache_store_free(c->s);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* ---- generation --------------------------------------------------------------------------- */

static void td_fp_gen_free(struct td_fp_gen *g)
{
	td_fp_domset_free(&g->deny);
	td_fp_domset_free(&g->allow);
	td_auth_free(g->auth);
	if (g->basic) {
		pthread_mutex_destroy(&g->basic->mu);
		free(g->basic);
	}
	td_gw_log_unref(g->log);
	td_fp_cache_unref(g->cache);
	free(g);
}

struct td_fp_gen *td_fp_gen_ref(struct td_fp_gen *g)
{
	__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
	return g;
}

void td_fp_gen_unref(struct td_fp_gen *g)
{
	if (g && !__atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL))
		td_fp_gen_free(g);
}

/* a config file name relative to the config's folder */
static void td_fp_path(const struct td_config *cfg, const char *f, char *out, size_t size)
{
	char dir[4096];
	int n;

	if (f[0] == '/' || !cfg->path[0]) {
		snprintf(out, size, "%s", f);
		return;
	}
	snprintf(dir, sizeof(dir), "%s", cfg->path);
	n = snprintf(out, size, "%s/", dirname(dir));
	if (n > 0 && (size_t)n < size)
		snprintf(out + n, size - (size_t)n, "%s", f);
}

static int td_fp_domains_load(const struct td_config *cfg, const char *what,
			      const struct td_fp_domain_cfg *list, size_t n, const char *file,
			      int file_line, struct td_fp_domset *s, struct td_errors *errs)
{
	char path[4096], line[1024];
	int rc = 0, ln = 0;
	FILE *f;

	for (size_t i = 0; i < n; i++) {
		if (td_fp_domset_add(s, list[i].pattern)) {
			td_errors_add(errs, cfg->path, list[i].line,
				      "forward_proxy.%s: invalid pattern \"%s\"", what, list[i].pattern);
			rc = -EINVAL;
		}
	}
	if (!file[0])
		return rc;
	td_fp_path(cfg, file, path, sizeof(path));
	f = fopen(path, "re");
	if (!f) {
		td_errors_add(errs, cfg->path, file_line, "forward_proxy.%s: cannot open %s: %s",
			      what, path, strerror(errno));
		return -EINVAL;
	}
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *e;

		ln++;
		if ((e = strchr(p, '#')))
			*e = '\0';
		while (isspace((unsigned char)*p))
			p++;
		for (e = p + strlen(p); e > p && isspace((unsigned char)e[-1]); e--)
			;
		*e = '\0';
		if (!*p)
			continue;
		if (td_fp_domset_add(s, p)) {
			/* the file's own FILE:LINE: that is where the user has to look */
			td_errors_add(errs, path, ln, "forward_proxy.%s: invalid pattern \"%s\"",
				      what, p);
			rc = -EINVAL;
		}
	}
	fclose(f);
	return rc;
}

struct td_fp_gen *td_fp_gen_build(const struct td_config *cfg, const struct td_fp_gen *prev,
				  uint64_t number, bool check, struct td_errors *errs)
{
	const struct td_fp_cfg *fc = &cfg->forward_proxy;
	struct td_fp_gen *g = calloc(1, sizeof(*g));
	int rc = 0;

	if (!g)
		return NULL;
	g->refs = 1;
	g->number = number;
	g->cfg = *fc;
	g->cfg.deny_domains = g->cfg.allow_domains = NULL;
	g->cfg.n_deny_domains = g->cfg.n_allow_domains = 0;
	if (!g->cfg.realm[0])
		snprintf(g->cfg.realm, sizeof(g->cfg.realm), "%s", TD_AUTH_DEF_REALM);
	if (!fc->n_allow_clients) {
		/* the safe default of config_fp.h, also for configs built by hand */
		g->cfg.allow_clients[0] = (struct td_gw_cidr){ .family = AF_INET, .prefix = 8,
							      .addr = { 127 } };
		g->cfg.allow_clients[1] = (struct td_gw_cidr){ .family = AF_INET6, .prefix = 128,
							      .addr = { [15] = 1 } };
		g->cfg.n_allow_clients = 2;
	}
	if (!fc->n_connect_ports) {
		g->cfg.connect_ports[0] = 443;
		g->cfg.n_connect_ports = 1;
	}
	if (td_fp_domains_load(cfg, "deny_domains", fc->deny_domains, fc->n_deny_domains,
			       fc->deny_domains_file, fc->deny_domains_line, &g->deny, errs))
		rc = -EINVAL;
	if (td_fp_domains_load(cfg, "allow_domains", fc->allow_domains, fc->n_allow_domains,
			       fc->allow_domains_file, fc->allow_domains_line, &g->allow, errs))
		rc = -EINVAL;
	g->allow_set = fc->n_allow_domains || fc->allow_domains_file[0];
	if (fc->auth_basic) {
		char path[4096];
		struct td_auth_config ac = {
			.kind = TD_AUTH_BASIC, .realm = g->cfg.realm, .users_file = path,
		};

		td_fp_path(cfg, fc->users_file, path, sizeof(path));
		g->auth = td_auth_new(&ac);
		if (!g->auth) {
			td_errors_add(errs, cfg->path, fc->auth_line,
				      "forward_proxy.auth: cannot load users file %s: %s", path,
				      strerror(errno));
			rc = -EINVAL;
		}
		g->basic = calloc(1, sizeof(*g->basic));
		if (!g->basic) {
			rc = -ENOMEM;
		} else {
			pthread_mutex_init(&g->basic->mu, NULL);
		}
		snprintf(g->challenge, sizeof(g->challenge), "Basic realm=\"%s\"", g->cfg.realm);
	}
	if (rc)
		goto fail;
	if (check)
		return g;
	/* the access log: shared with prev when path and format stay (reopen keeps working) */
	if (prev && prev->log && !strcmp(prev->log->path, fc->access_log[0] ? fc->access_log :
						  "stdout") &&
	    prev->log->format == fc->access_log_format) {
		g->log = td_gw_log_ref(prev->log);
	} else {
		g->log = td_gw_log_open(fc->access_log, fc->access_log_format);
		if (!g->log) {
			rc = -errno;
			td_errors_add(errs, cfg->path, fc->line,
				      "forward_proxy.access_log: cannot open %s: %s", fc->access_log,
				      strerror(-rc));
			goto fail;
		}
	}
	if (fc->cache_on) {
		uint64_t mem = fc->cache_memory ? fc->cache_memory : 64ull << 20;
		uint64_t mo = fc->cache_max_object ? fc->cache_max_object : 8ull << 20;

		if (mo > mem)
			mo = mem;
		if (prev && prev->cache && prev->cache->memory == mem &&
		    prev->cache->max_object == mo) {
			g->cache = td_fp_cache_ref(prev->cache);
		} else {
			/* a new size starts a new store (the old one lives while requests use it) */
			g->cache = td_fp_cache_new(mem, mo);
			if (!g->cache) {
				rc = -ENOMEM;
				td_errors_add(errs, cfg->path, fc->cache_line,
					      "forward_proxy.cache: cannot create the store: %s",
					      strerror(errno));
				goto fail;
			}
		}
	}
	return g;
fail:
	td_fp_gen_free(g);
	errno = rc < 0 ? -rc : EINVAL;
	return NULL;
}

const char *td_fp_domain_check(const struct td_fp_gen *g, const char *host, bool ip, char *out,
			       size_t size)
{
	const char *m = td_fp_domset_match(&g->deny, host, ip);

	if (m) {
		snprintf(out, size, "denied by deny_domains: %s", m);
		return out;
	}
	if (g->allow_set && !td_fp_domset_match(&g->allow, host, ip)) {
		snprintf(out, size, "denied by allow_domains: %s is not listed", host);
		return out;
	}
	return NULL;
}

bool td_fp_client_allowed(const struct td_fp_gen *g, const struct sockaddr *peer)
{
	union td_addr a;
	uint8_t fam;

	if (td_gw_peer_addr(peer, &a, &fam))
		return false;
	return td_gw_trusted(g->cfg.allow_clients, g->cfg.n_allow_clients, &a, fam);
}

bool td_fp_port_allowed(const struct td_fp_gen *g, uint16_t port)
{
	for (size_t i = 0; i < g->cfg.n_connect_ports; i++)
		if (g->cfg.connect_ports[i] == port)
			return true;
	return false;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The forward_proxy: section of the YAML config -> struct td_fp_cfg, every problem as FILE:LINE. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "config_yaml.h"

/*
 * Same parsing style as config_gw.c: every problem is reported with its line and parsing goes
 * on; td_config_load_buf() fails the whole load on any error and frees with td_fp_cfg_free().
 * Safe by default: an absent key never opens more than the defaults below (loopback clients,
 * CONNECT to 443, private destinations denied). Reference: docs/forward-proxy.md.
 */

#define TD_FP_P			256u	/* "forward_proxy.transparent.cgroups[63]" */

#define TD_KIB			1024ull
#define TD_MIB			(1024ull * TD_KIB)
#define TD_GIB			(1024ull * TD_MIB)
#define TD_TIB			(1024ull * TD_GIB)

#define TD_FP_WORKERS_MAX	256
#define TD_FP_DEF_CACHE_MEM	(64ull * TD_MIB)
#define TD_FP_DEF_CACHE_OBJ	(8ull * TD_MIB)
#define TD_FP_MIN_CACHE_MEM	TD_MIB
#define TD_FP_MAX_SIZE		TD_TIB		/* cache.memory, max_body_size */
#define TD_FP_DEF_MAX_CONNS	10000u
#define TD_FP_MAX_CONNS		1000000
#define TD_FP_HTTP_PORT		80u
#define TD_FP_TLS_PORT		443u

/* a duration key: name, default, bounds (ms) and where it goes */
struct td_fp_tmo {
	const char *key;
	uint32_t def, min, max;
	size_t off;
};

static const struct td_fp_tmo td_fp_tmos[] = {
	{ "connect_timeout", 10000, 1, 300000, offsetof(struct td_fp_cfg, connect_timeout_ms) },
	{ "response_timeout", 60000, 1, 3600000, offsetof(struct td_fp_cfg, response_timeout_ms) },
	{ "tunnel_idle_timeout", 300000, 1000, 86400000,
	  offsetof(struct td_fp_cfg, tunnel_idle_timeout_ms) },
	{ "idle_timeout", 60000, 100, 3600000, offsetof(struct td_fp_cfg, idle_timeout_ms) },
	{ "header_timeout", 10000, 100, 3600000, offsetof(struct td_fp_cfg, header_timeout_ms) },
	{ "dns_timeout", 5000, 1, 60000, offsetof(struct td_fp_cfg, dns_timeout_ms) },
	{ "dns_cache_ttl", 30000, 0, 86400000, offsetof(struct td_fp_cfg, dns_cache_ttl_ms) },
};
#define TD_FP_N_TMOS	(sizeof(td_fp_tmos) / sizeof(td_fp_tmos[0]))

static uint32_t *td_fp_tmo_field(struct td_fp_cfg *f, const struct td_fp_tmo *t)
{
	return (uint32_t *)((char *)f + t->off);
}

/* ---- sizes ---------------------------------------------------------------------------------- */

/* "1048576", "64MiB", "512KiB", "2GiB" into bytes; 0, -EINVAL or -ERANGE */
static int td_fp_size_parse(const char *s, uint64_t *out)
{
	static const struct { const char *sfx; uint64_t mul; } units[] = {
		{ "", 1 }, { "KiB", TD_KIB }, { "MiB", TD_MIB }, { "GiB", TD_GIB },
	};
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].sfx))
			continue;
		if (v > UINT64_MAX / units[i].mul)
			return -ERANGE;
		*out = v * units[i].mul;
		return 0;
	}
	return -EINVAL;
}

/* bytes as the shortest exact "64MiB" / "1000" */
static const char *td_fp_size_fmt(uint64_t v, char *buf, size_t len)
{
	if (v && v % TD_GIB == 0)
		snprintf(buf, len, "%lluGiB", (unsigned long long)(v / TD_GIB));
	else if (v && v % TD_MIB == 0)
		snprintf(buf, len, "%lluMiB", (unsigned long long)(v / TD_MIB));
	else if (v && v % TD_KIB == 0)
		snprintf(buf, len, "%lluKiB", (unsigned long long)(v / TD_KIB));
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

static bool td_fp_get_size(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, uint64_t min,
			   uint64_t max, uint64_t *out)
{
	char a[32], b[32];
	uint64_t v;
	int r;

	if (n->type != YAML_SCALAR_NODE) {
		td_cerr(c, n, "%s: expected a size, got %s", path, td_node_kind(n));
		return false;
	}
	r = td_fp_size_parse(td_scalar(n), &v);
	if (r == -ERANGE || (!r && (v < min || v > max))) {
		td_cerr(c, n, "%s: %s is out of range %s..%s", path, td_scalar(n),
			td_fp_size_fmt(min, a, sizeof(a)), td_fp_size_fmt(max, b, sizeof(b)));
		return false;
	}
	if (r) {
		td_cerr(c, n, "%s: invalid size '%s' (expected bytes or a number with a KiB, MiB or "
			"GiB suffix, e.g. 64MiB)", path, td_scalar(n));
		return false;
	}
	*out = v;
	return true;
}

/* ---- domain patterns ------------------------------------------------------------------------- */

int td_fp_domain_norm(const char *s, char out[TD_FP_DOMAIN_LEN], const char **why)
{
	const char *p = s;
	size_t len = strlen(s);

	if (!len) {
		*why = "empty pattern";
		return -EINVAL;
	}
	if (len >= TD_FP_DOMAIN_LEN) {
		*why = "too long (max 253 characters)";
		return -EINVAL;
	}
	if (s[len - 1] == '.') {
		*why = "no trailing dot (write example.com, not example.com.)";
		return -EINVAL;
	}
	if (!strncmp(s, "*.", 2)) {
		struct in_addr a4;

		p += 2;
		if (inet_pton(AF_INET, p, &a4) == 1) {
			*why = "'*.' needs a domain, not an IP address";
			return -EINVAL;
		}
	}
	for (;;) {
		size_t n = strcspn(p, ".");

		if (!n) {
			*why = "empty label (a leading dot or '..')";
			return -EINVAL;
		}
		if (n > 63) {
			*why = "a label is longer than 63 characters";
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)p[i];

			if (ch == '*') {
				*why = "'*' only as a whole first label, as in *.example.com";
				return -EINVAL;
			}
			if (ch == ':' || ch == '/') {
				*why = "a host name only (no scheme, port or path)";
				return -EINVAL;
			}
			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_')) {
				*why = "invalid character (labels are letters, digits, '-' and '_')";
				return -EINVAL;
			}
		}
		if (p[0] == '-' || p[n - 1] == '-') {
			*why = "a label must not start or end with '-'";
			return -EINVAL;
		}
		if (!p[n])
			break;
		p += n + 1;
	}
	for (size_t i = 0; i <= len; i++)
		out[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' : s[i]);
	return 0;
}

static int td_fp_dom_cmp(const void *a, const void *b)
{
	const struct td_fp_domain_cfg *x = *(const struct td_fp_domain_cfg *const *)a;
	const struct td_fp_domain_cfg *y = *(const struct td_fp_domain_cfg *const *)b;
	int r = strcmp(x->pattern, y->pattern);

	if (r)
		return r;
	return x->line < y->line ? -1 : (x->line > y->line);
}

/* the patterns sorted (ties by line); NULL when n == 0 or out of memory */
static const struct td_fp_domain_cfg **td_fp_dom_sorted(const struct td_fp_domain_cfg *d,
							size_t n)
{
	const struct td_fp_domain_cfg **v;

	if (!n)
		return NULL;
	v = calloc(n, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++)
		v[i] = &d[i];
	qsort(v, n, sizeof(*v), td_fp_dom_cmp);
	return v;
}

/*
 * deny_domains / allow_domains: a list of patterns or { file: PATH }. Duplicate patterns
 * (after lower-casing) are errors at the later line.
 */
static void td_fp_parse_domains(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				struct td_fp_domain_cfg **out, size_t *nout, char *file,
				int *line)
{
	const struct td_fp_domain_cfg **sorted;
	char sub[TD_FP_P];
	size_t len;

	*line = td_line(n);
	if (n->type == YAML_MAPPING_NODE) {
		static const char *const keys[] = { "file" };
		yaml_node_t *v;

		if (!td_map_get(c, n, path, keys, 1, &v))
			return;
		td_path_fmt(sub, sizeof(sub), "%s.file", path);
		if (!v)
			td_cerr(c, n, "%s: missing required key 'file' (one pattern a line)", path);
		else if (td_gw_get_file(c, v, sub, file))
			*line = td_line(v);
		return;
	}
	if (n->type != YAML_SEQUENCE_NODE && !td_is_null(n)) {
		td_cerr(c, n, "%s: expected a list of domain patterns or { file: PATH }, got %s",
			path, td_node_kind(n));
		return;
	}
	if (!td_seq_check(c, n, path, &len) || !len)
		return;
	*out = calloc(len, sizeof(**out));
	if (!*out) {
		td_cerr(c, n, "%s: out of memory", path);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = td_seq_item(c, n, i);
		struct td_fp_domain_cfg *d = &(*out)[*nout];
		const char *s, *why;

		td_path_fmt(sub, sizeof(sub), "%s[%zu]", path, i);
		if (!td_get_str(c, item, sub, &s))
			continue;
		if (strlen(s) != item->data.scalar.length ||
		    td_fp_domain_norm(s, d->pattern, &why)) {
			if (strlen(s) != item->data.scalar.length)
				why = "invalid character";
			td_cerr(c, item, "%s: invalid domain pattern '%.80s': %s (expected "
				"example.com or *.example.com)", sub, s, why);
			memset(d, 0, sizeof(*d));
			continue;
		}
		d->line = td_line(item);
		(*nout)++;
	}
	if (*nout < 2)
		return;
	sorted = td_fp_dom_sorted(*out, *nout);
	if (!sorted) {
		td_cerr(c, n, "%s: out of memory", path);
		return;
	}
	for (size_t i = 1; i < *nout; i++) {
		if (strcmp(sorted[i - 1]->pattern, sorted[i]->pattern))
			continue;
		c->nerr++;
		td_errors_add(c->errs, c->file, sorted[i]->line,
			      "%s: duplicate domain pattern '%s' (first at line %d)", path,
			      sorted[i]->pattern, sorted[i - 1]->line);
	}
	free(sorted);
}

/* the same pattern in both lists: deny is checked first, so the allow entry is dead */
static void td_fp_check_both_lists(struct td_cfg_ctx *c, const struct td_fp_cfg *f)
{
	const struct td_fp_domain_cfg **deny;

	if (!f->n_deny_domains || !f->n_allow_domains)
		return;
	deny = td_fp_dom_sorted(f->deny_domains, f->n_deny_domains);
	if (!deny) {
		td_cerr(c, NULL, "forward_proxy.allow_domains: out of memory");
		return;
	}
	for (size_t i = 0; i < f->n_allow_domains; i++) {
		const struct td_fp_domain_cfg *a = &f->allow_domains[i];
		const struct td_fp_domain_cfg **hit = NULL;
		size_t lo = 0, hi = f->n_deny_domains;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int r = strcmp(deny[mid]->pattern, a->pattern);

			if (!r) {
				hit = &deny[mid];
				break;
			}
			if (r < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (!hit)
			continue;
		c->nerr++;
		td_errors_add(c->errs, c->file, a->line, "forward_proxy.allow_domains: '%s' is "
			      "also in deny_domains (line %d), which wins", a->pattern,
			      (*hit)->line);
	}
	free(deny);
}

/* ---- ports, endpoints, cgroups ----------------------------------------------------------------- */

/* a list of ports 1..65535, each once, at most TD_FP_MAX_PORTS; false on any error */
static bool td_fp_parse_ports(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			      uint16_t *ports, size_t *nports)
{
	int lines[TD_FP_MAX_PORTS];
	char sub[TD_FP_P];
	bool ok = true;
	size_t len;

	*nports = 0;
	if (!td_seq_check(c, n, path, &len))
		return false;
	if (len > TD_FP_MAX_PORTS) {
		td_cerr(c, n, "%s: too many ports (%zu, max %u)", path, len, TD_FP_MAX_PORTS);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = td_seq_item(c, n, i);
		long long p;
		size_t j;

		td_path_fmt(sub, sizeof(sub), "%s[%zu]", path, i);
		if (!td_get_int(c, item, sub, 1, 65535, &p)) {
			ok = false;
			continue;
		}
		for (j = 0; j < *nports && ports[j] != p; j++)
			;
		if (j < *nports) {
			td_cerr(c, item, "%s: duplicate port %lld (first at line %d)", sub, p,
				lines[j]);
			ok = false;
			continue;
		}
		lines[*nports] = td_line(item);
		ports[(*nports)++] = (uint16_t)p;
	}
	return ok;
}

static bool td_fp_loopback(const struct td_gw_endpoint *ep)
{
	if (ep->ss.ss_family == AF_INET)
		return ((const uint8_t *)&((const struct sockaddr_in *)&ep->ss)->sin_addr)[0] == 127;
	return ep->ss.ss_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&ep->ss)->sin6_addr);
}

/* one transparent endpoint: loopback (the redirect targets it), not used by anything else */
static bool td_fp_get_redirect_ep(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				  const struct td_fp_cfg *f, const struct td_gw_endpoint *other,
				  struct td_gw_endpoint *ep)
{
	if (!td_gw_get_endpoint(c, n, path, ep))
		return false;
	if (!td_fp_loopback(ep)) {
		td_cerr(c, n, "%s: %s must be a loopback address (127.0.0.0/8 or [::1]): the "
			"redirected connections are sent there", path, ep->text);
		return false;
	}
	for (size_t i = 0; i < f->n_listen; i++) {
		if (td_gw_endpoint_equal(&f->listen[i], ep)) {
			td_cerr(c, n, "%s: %s is already forward_proxy.listen[%zu] (line %d)", path,
				ep->text, i, f->listen[i].line);
			return false;
		}
	}
	if (other && other->sslen && td_gw_endpoint_equal(other, ep)) {
		td_cerr(c, n, "%s: %s is also transparent.listen (line %d)", path, ep->text,
			other->line);
		return false;
	}
	return true;
}

/* a cgroup folder relative to mesh.cgroup_root: "a/b"; no leading or trailing '/', no '', '.'
 * or '..' component, no control characters (the rule of mesh.services[].cgroup) */
static bool td_fp_cgroup_valid(const char *s)
{
	const char *p = s;

	if (!*s || *s == '/')
		return false;
	for (;;) {
		size_t n = strcspn(p, "/");

		if (!n || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < ' ' || p[i] == 0x7f)
				return false;
		if (!p[n])
			return true;
		p += n + 1;
		if (!*p)
			return false;
	}
}

static void td_fp_parse_cgroups(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				struct td_fp_cfg *f)
{
	int lines[TD_FP_MAX_CGROUPS];
	char sub[TD_FP_P];
	size_t len;

	if (!td_seq_check(c, n, path, &len))
		return;
	if (!len) {
		td_cerr(c, n, "%s: needs at least one cgroup (the workloads whose traffic is "
			"redirected)", path);
		return;
	}
	if (len > TD_FP_MAX_CGROUPS) {
		td_cerr(c, n, "%s: too many cgroups (%zu, max %u)", path, len, TD_FP_MAX_CGROUPS);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = td_seq_item(c, n, i);
		const char *s;
		size_t j;

		td_path_fmt(sub, sizeof(sub), "%s[%zu]", path, i);
		if (!td_get_str(c, item, sub, &s))
			continue;
		if (strlen(s) >= sizeof(f->transparent_cgroups[0])) {
			td_cerr(c, item, "%s: cgroup path is too long (max %zu characters)", sub,
				sizeof(f->transparent_cgroups[0]) - 1);
			continue;
		}
		if (strlen(s) != item->data.scalar.length || !td_fp_cgroup_valid(s)) {
			td_cerr(c, item, "%s: '%s' must be a folder relative to mesh.cgroup_root (no "
				"leading or trailing '/', no '.' or '..')", sub, s);
			continue;
		}
		for (j = 0; j < f->n_transparent_cgroups; j++)
			if (!strcmp(f->transparent_cgroups[j], s))
				break;
		if (j < f->n_transparent_cgroups) {
			td_cerr(c, item, "%s: duplicate cgroup '%s' (first at line %d)", sub, s,
				lines[j]);
			continue;
		}
		lines[f->n_transparent_cgroups] = td_line(item);
		snprintf(f->transparent_cgroups[f->n_transparent_cgroups++],
			 sizeof(f->transparent_cgroups[0]), "%s", s);
	}
}

/*
 * transparent: { listen, tls_listen, cgroups, ports }. Ports are 80-like (HTTP, to listen) or
 * 443-like (TLS, to tls_listen; td_fp_port_is_tls); each kind present needs its endpoint, and
 * an endpoint no port would use is an error (it would only hold a socket open).
 */
static void td_fp_parse_transparent(struct td_cfg_ctx *c, yaml_node_t *n, struct td_fp_cfg *f)
{
	enum { K_LISTEN, K_TLS, K_CGROUPS, K_PORTS, K_N };
	static const char *const keys[K_N] = { "listen", "tls_listen", "cgroups", "ports" };
	const char *const p = "forward_proxy.transparent";
	bool ports_ok = true, http = false, tls = false;
	yaml_node_t *v[K_N];

	f->transparent_on = true;
	f->transparent_line = td_line(n);
	f->transparent_ports[0] = TD_FP_HTTP_PORT;
	f->transparent_ports[1] = TD_FP_TLS_PORT;
	f->n_transparent_ports = 2;
	if (!td_map_get(c, n, p, keys, K_N, v))
		return;
	if (v[K_PORTS]) {
		ports_ok = td_fp_parse_ports(c, v[K_PORTS], "forward_proxy.transparent.ports",
					     f->transparent_ports, &f->n_transparent_ports);
		if (ports_ok && !f->n_transparent_ports) {
			td_cerr(c, v[K_PORTS], "%s.ports: needs at least one port", p);
			ports_ok = false;
		}
	}
	for (size_t i = 0; i < f->n_transparent_ports; i++) {
		if (td_fp_port_is_tls(f->transparent_ports[i]))
			tls = true;
		else
			http = true;
	}
	if (v[K_LISTEN] && td_fp_get_redirect_ep(c, v[K_LISTEN], "forward_proxy.transparent.listen",
						  f, NULL, &f->transparent_listen) &&
	    ports_ok && !http)
		td_cerr(c, v[K_LISTEN], "%s.listen: not used: ports has no 80-like (plain HTTP) "
			"port", p);
	if (v[K_TLS] && td_fp_get_redirect_ep(c, v[K_TLS], "forward_proxy.transparent.tls_listen",
					       f, &f->transparent_listen,
					       &f->transparent_tls_listen) &&
	    ports_ok && !tls)
		td_cerr(c, v[K_TLS], "%s.tls_listen: not used: ports has no 443-like (TLS: 443, "
			"8443) port", p);
	if (ports_ok && http && !v[K_LISTEN])
		td_cerr(c, n, "%s: missing required key 'listen' (where port-80-like HTTP traffic "
			"is redirected, e.g. \"127.0.0.1:3129\")", p);
	if (ports_ok && tls && !v[K_TLS])
		td_cerr(c, n, "%s: missing required key 'tls_listen' (where port-443-like TLS "
			"traffic is redirected, e.g. \"127.0.0.1:3130\")", p);
	if (!v[K_CGROUPS])
		td_cerr(c, n, "%s: missing required key 'cgroups' (folders relative to "
			"mesh.cgroup_root whose traffic is redirected)", p);
	else
		td_fp_parse_cgroups(c, v[K_CGROUPS], "forward_proxy.transparent.cgroups", f);
}

/* ---- auth, cache, access_log ------------------------------------------------------------------ */

static void td_fp_parse_auth(struct td_cfg_ctx *c, yaml_node_t *n, struct td_fp_cfg *f)
{
	static const char *const keys[] = { "basic" };
	static const char *const bkeys[] = { "users_file", "realm" };
	const char *const p = "forward_proxy.auth.basic";
	yaml_node_t *v, *bv[2];

	f->auth_line = td_line(n);
	if (!td_map_get(c, n, "forward_proxy.auth", keys, 1, &v))
		return;
	if (!v) {
		td_cerr(c, n, "forward_proxy.auth: expected basic: { users_file: FILE }");
		return;
	}
	f->auth_basic = true;
	if (!td_map_get(c, v, p, bkeys, 2, bv))
		return;
	if (!bv[0])
		td_cerr(c, v, "%s: missing required key 'users_file' (htpasswd user:hash lines)", p);
	else
		td_gw_get_file(c, bv[0], "forward_proxy.auth.basic.users_file", f->users_file);
	if (bv[1] && td_gw_get_text(c, bv[1], "forward_proxy.auth.basic.realm", f->realm,
				    sizeof(f->realm)) && !td_gw_quotable(f->realm)) {
		td_cerr(c, bv[1], "%s.realm: no control characters, '\"' or '\\' in a realm", p);
		snprintf(f->realm, sizeof(f->realm), "td");
	}
}

static void td_fp_parse_cache(struct td_cfg_ctx *c, yaml_node_t *n, struct td_fp_cfg *f)
{
	static const char *const keys[] = { "memory", "max_object" };
	bool mem_ok = true, obj_ok = true;
	char a[32], b[32];
	yaml_node_t *v[2];

	f->cache_on = true;
	f->cache_line = td_line(n);
	f->cache_memory = TD_FP_DEF_CACHE_MEM;
	f->cache_max_object = TD_FP_DEF_CACHE_OBJ;
	if (!td_map_get(c, n, "forward_proxy.cache", keys, 2, v))
		return;
	if (v[0])
		mem_ok = td_fp_get_size(c, v[0], "forward_proxy.cache.memory", TD_FP_MIN_CACHE_MEM,
					TD_FP_MAX_SIZE, &f->cache_memory);
	if (v[1])
		obj_ok = td_fp_get_size(c, v[1], "forward_proxy.cache.max_object", 1,
					TD_FP_MAX_SIZE, &f->cache_max_object);
	if (mem_ok && obj_ok && f->cache_max_object > f->cache_memory)
		td_cerr(c, v[1] ? v[1] : n, "forward_proxy.cache.max_object: %s is larger than "
			"cache.memory (%s)", td_fp_size_fmt(f->cache_max_object, a, sizeof(a)),
			td_fp_size_fmt(f->cache_memory, b, sizeof(b)));
}

/* "stdout" | "stderr" | "off" | FILE into f->access_log */
static void td_fp_log_path(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			   struct td_fp_cfg *f)
{
	const char *s;

	if (!td_get_str(c, n, path, &s))
		return;
	if (!strcmp(s, "stdout") || !strcmp(s, "stderr") || !strcmp(s, "off"))
		snprintf(f->access_log, sizeof(f->access_log), "%s", s);
	else
		td_gw_get_file(c, n, path, f->access_log);
}

static void td_fp_parse_access_log(struct td_cfg_ctx *c, yaml_node_t *n, struct td_fp_cfg *f)
{
	static const char *const keys[] = { "path", "format" };
	yaml_node_t *v[2];
	const char *s;

	if (n->type == YAML_SCALAR_NODE && !td_is_null(n)) {
		td_fp_log_path(c, n, "forward_proxy.access_log", f);
		return;
	}
	if (n->type != YAML_MAPPING_NODE && !td_is_null(n)) {
		td_cerr(c, n, "forward_proxy.access_log: expected a path (stdout, stderr, off or a "
			"file) or { path, format }, got %s", td_node_kind(n));
		return;
	}
	if (!td_map_get(c, n, "forward_proxy.access_log", keys, 2, v))
		return;
	if (v[0])
		td_fp_log_path(c, v[0], "forward_proxy.access_log.path", f);
	if (v[1] && td_get_str(c, v[1], "forward_proxy.access_log.format", &s)) {
		if (!strcmp(s, "squid"))
			f->access_log_format = TD_FP_LOG_SQUID;
		else if (!strcmp(s, "combined"))
			f->access_log_format = TD_FP_LOG_COMBINED;
		else
			td_cerr(c, v[1], "forward_proxy.access_log.format: invalid format '%s' "
				"(expected squid or combined)", s);
	}
}

/* ---- entry points ----------------------------------------------------------------------------- */

static void td_fp_parse_clients(struct td_cfg_ctx *c, yaml_node_t *n, struct td_fp_cfg *f)
{
	const char *const p = "forward_proxy.allow_clients";
	size_t len;

	if (!td_seq_check(c, n, p, &len))
		return;
	if (!len) {
		td_cerr(c, n, "%s: must not be empty (no client could use the proxy; the default "
			"is loopback only, [ 0.0.0.0/0, \"::/0\" ] allows every client)", p);
		return;
	}
	if (len > TD_FP_MAX_CIDRS) {
		td_cerr(c, n, "%s: too many entries (%zu, max %u)", p, len, TD_FP_MAX_CIDRS);
		return;
	}
	f->n_allow_clients = 0;
	for (size_t i = 0; i < len; i++) {
		char sub[TD_FP_P];

		td_path_fmt(sub, sizeof(sub), "%s[%zu]", p, i);
		td_gw_parse_cidr(c, td_seq_item(c, n, i), sub, f->allow_clients,
				 &f->n_allow_clients);
	}
}

static void td_fp_defaults(struct td_fp_cfg *f)
{
	struct td_gw_cidr *a = f->allow_clients;

	a[0].family = AF_INET;
	a[0].prefix = 8;
	a[0].addr[0] = 127;
	a[1].family = AF_INET6;
	a[1].prefix = 128;
	a[1].addr[15] = 1;
	f->n_allow_clients = 2;
	f->connect_ports[0] = TD_FP_TLS_PORT;
	f->n_connect_ports = 1;
	f->deny_private_destinations = true;
	f->anonymize = false;
	snprintf(f->realm, sizeof(f->realm), "td");
	snprintf(f->access_log, sizeof(f->access_log), "stdout");
	f->access_log_format = TD_FP_LOG_SQUID;
	f->max_body_size = 0;
	f->max_conns = TD_FP_DEF_MAX_CONNS;
	for (size_t i = 0; i < TD_FP_N_TMOS; i++)
		*td_fp_tmo_field(f, &td_fp_tmos[i]) = td_fp_tmos[i].def;
}

void td_parse_forward_proxy(struct td_cfg_ctx *c, yaml_node_t *n, struct td_config *cfg)
{
	enum { K_LISTEN, K_WORKERS, K_CLIENTS, K_PORTS, K_DENY, K_ALLOW, K_PRIVATE, K_ANON, K_AUTH,
	       K_CACHE, K_LOG, K_BODY, K_CONNS, K_TRANSPARENT, K_TMO0, K_N = K_TMO0 + TD_FP_N_TMOS };
	const char *keys[K_N] = { "listen", "workers", "allow_clients", "connect_ports",
				  "deny_domains", "allow_domains", "deny_private_destinations",
				  "anonymize", "auth", "cache", "access_log", "max_body_size",
				  "max_conns", "transparent" };
	struct td_fp_cfg *f = &cfg->forward_proxy;
	yaml_node_t *v[K_N];
	char sub[TD_FP_P];

	td_fp_cfg_free(f);
	f->on = true;
	f->line = td_line(n);
	td_fp_defaults(f);
	for (size_t i = 0; i < TD_FP_N_TMOS; i++)
		keys[K_TMO0 + i] = td_fp_tmos[i].key;
	if (!td_map_get(c, n, "forward_proxy", keys, K_N, v))
		return;

	if (!v[K_LISTEN])
		td_cerr(c, n, "forward_proxy: missing required key 'listen' (e.g. "
			"[ \"127.0.0.1:3128\" ])");
	else
		td_gw_parse_listen(c, v[K_LISTEN], "forward_proxy.listen", f->listen, &f->n_listen,
				   NULL, 0);
	if (v[K_WORKERS])
		td_gw_get_u32(c, v[K_WORKERS], "forward_proxy.workers", 0, TD_FP_WORKERS_MAX,
			      &f->workers);
	if (v[K_CLIENTS])
		td_fp_parse_clients(c, v[K_CLIENTS], f);
	/* an empty list is refused: n_connect_ports == 0 means the default [443] to the runtime */
	if (v[K_PORTS] && td_fp_parse_ports(c, v[K_PORTS], "forward_proxy.connect_ports",
					    f->connect_ports, &f->n_connect_ports) &&
	    !f->n_connect_ports)
		td_cerr(c, v[K_PORTS], "forward_proxy.connect_ports: must not be empty (the default "
			"is [ 443 ])");
	if (v[K_DENY])
		td_fp_parse_domains(c, v[K_DENY], "forward_proxy.deny_domains", &f->deny_domains,
				    &f->n_deny_domains, f->deny_domains_file,
				    &f->deny_domains_line);
	if (v[K_ALLOW])
		td_fp_parse_domains(c, v[K_ALLOW], "forward_proxy.allow_domains",
				    &f->allow_domains, &f->n_allow_domains,
				    f->allow_domains_file, &f->allow_domains_line);
	td_fp_check_both_lists(c, f);
	if (v[K_PRIVATE])
		td_get_bool(c, v[K_PRIVATE], "forward_proxy.deny_private_destinations",
			    &f->deny_private_destinations);
	if (v[K_ANON])
		td_get_bool(c, v[K_ANON], "forward_proxy.anonymize", &f->anonymize);
	if (v[K_AUTH])
		td_fp_parse_auth(c, v[K_AUTH], f);
	if (v[K_CACHE])
		td_fp_parse_cache(c, v[K_CACHE], f);
	if (v[K_LOG])
		td_fp_parse_access_log(c, v[K_LOG], f);
	if (v[K_BODY])
		td_fp_get_size(c, v[K_BODY], "forward_proxy.max_body_size", 0, TD_FP_MAX_SIZE,
			       &f->max_body_size);
	if (v[K_CONNS])
		td_gw_get_u32(c, v[K_CONNS], "forward_proxy.max_conns", 1, TD_FP_MAX_CONNS,
			      &f->max_conns);
	for (size_t i = 0; i < TD_FP_N_TMOS; i++) {
		const struct td_fp_tmo *t = &td_fp_tmos[i];

		if (!v[K_TMO0 + i])
			continue;
		td_path_fmt(sub, sizeof(sub), "forward_proxy.%s", t->key);
		td_gw_get_ms(c, v[K_TMO0 + i], sub, t->min, t->max, td_fp_tmo_field(f, t));
	}
	if (v[K_TRANSPARENT])
		td_fp_parse_transparent(c, v[K_TRANSPARENT], f);
}

void td_fp_cfg_free(struct td_fp_cfg *f)
{
	if (!f)
		return;
	free(f->deny_domains);
	free(f->allow_domains);
	memset(f, 0, sizeof(*f));
}

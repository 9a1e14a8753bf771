/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The gateway: section of the YAML config -> struct td_gw_cfg, every problem as FILE:LINE. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netinet/in.h>

#include "addr.h"
#include "config_yaml.h"
#include "jwt_verify.h"
#include "parser.h"
#include "ratelimit.h"
#include "route.h"

/*
 * Parsing style: like config.c, every problem is reported (td_cerr with the node's line) and
 * parsing goes on, so that one run lists them all; the caller (td_config_load_buf) fails the
 * whole load when any error was reported and frees what was parsed with td_gw_cfg_free().
 * Entries with errors are still counted in (upstreams, routes) so later references to them do
 * not cascade into "unknown upstream" noise; only fully valid entries take part in the
 * duplicate checks.
 */

#define TD_GW_P			256u	/* node paths: "gateway.routes[4095].request_headers..." */

/* gateway: defaults and bounds (docs/gateway.md) */
#define TD_GW_WORKERS_MAX	256
#define TD_GW_DEF_REQ_LINE	8192u
#define TD_GW_DEF_HDR_SIZE	32768u
#define TD_GW_DEF_HEADERS	100u
#define TD_GW_MAX_HEADERS	128	/* TD_HTTP_MAX_HEADERS */
#define TD_GW_DEF_BODY		(1024ull * 1024ull)
#define TD_GW_MAX_BODY		(1ull << 40)	/* 1 TiB; 0 = unlimited */
#define TD_GW_DEF_HDR_TMO	10000u
#define TD_GW_DEF_IDLE_TMO	60000u
#define TD_GW_DEF_BODY_TMO	30000u
#define TD_GW_TMO_MIN		100u
#define TD_GW_TMO_MAX		3600000u
#define TD_GW_DEF_MAX_CONNS	10000u
#define TD_GW_MAX_CONNS		1000000
/* upstreams */
#define TD_GW_DEF_RETRIES	1u
#define TD_GW_MAX_RETRIES	5
#define TD_GW_DEF_CONNECT_TMO	2000u
#define TD_GW_MAX_CONNECT_TMO	60000u
#define TD_GW_DEF_RESP_TMO	30000u
#define TD_GW_MAX_RESP_TMO	3600000u
#define TD_GW_DEF_OUTLIER	5u
#define TD_GW_MAX_OUTLIER	1000
#define TD_GW_DEF_EJECTION	30000u
#define TD_GW_MIN_EJECTION	1000u
#define TD_GW_MAX_EJECTION	3600000u
#define TD_GW_DEF_MAX_IDLE	32u
#define TD_GW_MAX_MAX_IDLE	10000
/* routes */
#define TD_GW_DEF_AGG_TMO	2000u
#define TD_GW_MAX_AGG_TMO	300000u
#define TD_GW_DEF_LEEWAY_S	30u
#define TD_GW_MAX_LEEWAY_MS	3600000u
#define TD_GW_DEF_RL_PERIOD	1000u
#define TD_GW_RL_BURST_PERIOD	(1ull << 42)	/* burst * period_ms bound of td_rl_new() */

/* ---- small validators ----------------------------------------------------------------------- */

/* an RFC 9110 token (header field name) */
static bool td_gw_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!td_http_is_tchar((unsigned char)*s))
			return false;
	return true;
}

/* a field value: visible ASCII, obs-text, SP and HTAB inside; no CR, LF, NUL or other controls */
static bool td_gw_field_value(const char *s)
{
	size_t len = strlen(s);

	if (len && (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t'))
		return false;
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return false;
	return true;
}

/* free text that ends up in a quoted header parameter or a JSON string: no '"', '\\', controls */
bool td_gw_quotable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"' || *s == '\\')
			return false;
	return true;
}

/* no control characters */
static bool td_gw_no_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* visible ASCII only (no spaces or controls) */
static bool td_gw_visible(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* fields the gateway itself manages (framing, hop-by-hop, Host): never added or removed */
static bool td_gw_managed_header(const char *name)
{
	static const char *const managed[] = {
		"Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "TE",
		"Trailer", "Upgrade", "Proxy-Connection",
	};

	for (size_t i = 0; i < sizeof(managed) / sizeof(managed[0]); i++)
		if (!strcasecmp(name, managed[i]))
			return true;
	return false;
}

/* p is a segment-aware prefix of s (the router's rule: "/a" of "/a", "/a/b", not "/ab") */
static bool td_gw_seg_prefix(const char *p, const char *s)
{
	size_t n = strlen(p);

	if (strncmp(p, s, n))
		return false;
	return !s[n] || s[n] == '/' || (n && p[n - 1] == '/');
}

/* ---- typed getters (false: error reported) ---------------------------------------------------- */

bool td_gw_get_u32(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, long long min,
		   long long max, uint32_t *out)
{
	long long x;

	if (!td_get_int(c, n, path, min, max, &x))
		return false;
	*out = (uint32_t)x;
	return true;
}

bool td_gw_get_ms(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, __u64 min,
		  __u64 max, uint32_t *out)
{
	__u64 ms;

	if (!td_get_duration(c, n, path, min, max, &ms))
		return false;
	*out = (uint32_t)ms;
	return true;
}

/* a string of at most len - 1 bytes into out */
bool td_gw_get_text(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, char *out,
		    size_t len)
{
	const char *s;

	if (!td_get_str(c, n, path, &s))
		return false;
	if (strlen(s) >= len) {
		td_cerr(c, n, "%s: '%.40s...' is too long (max %zu characters)", path, s, len - 1);
		return false;
	}
	snprintf(out, len, "%s", s);
	return true;
}

/* a header field name (RFC 9110 token) into out[TD_GW_HDR_NAME_LEN] */
static bool td_gw_check_hdr_name(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				 const char *s, char *out)
{
	if (!td_gw_token(s)) {
		td_cerr(c, n, "%s: invalid header name '%s' (expected an RFC 9110 token: letters, "
			"digits and !#$%%&'*+-.^_`|~)", path, s);
		return false;
	}
	if (strlen(s) >= TD_GW_HDR_NAME_LEN) {
		td_cerr(c, n, "%s: header name '%s' is too long (max %u characters)", path, s,
			TD_GW_HDR_NAME_LEN - 1);
		return false;
	}
	snprintf(out, TD_GW_HDR_NAME_LEN, "%s", s);
	return true;
}

static bool td_gw_get_hdr_name(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, char *out)
{
	const char *s;

	return td_get_str(c, n, path, &s) && td_gw_check_hdr_name(c, n, path, s, out);
}

/* a header field value into out[TD_GW_HDR_VALUE_LEN] (an empty value is allowed) */
static bool td_gw_get_hdr_value(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				char *out)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE) {
		td_cerr(c, n, "%s: expected a string, got %s", path, td_node_kind(n));
		return false;
	}
	s = td_is_null(n) ? "" : td_scalar(n);
	if (strlen(s) != n->data.scalar.length || !td_gw_field_value(s)) {
		td_cerr(c, n, "%s: invalid header value (no CR, LF, NUL or other control characters, "
			"no leading or trailing space)", path);
		return false;
	}
	if (strlen(s) >= TD_GW_HDR_VALUE_LEN) {
		td_cerr(c, n, "%s: header value is too long (max %u characters)", path,
			TD_GW_HDR_VALUE_LEN - 1);
		return false;
	}
	snprintf(out, TD_GW_HDR_VALUE_LEN, "%s", s);
	return true;
}

/* the folder of the config file as an absolute path ("" on failure), for relative file names */
static int td_gw_base_dir(const char *file, char *out, size_t len)
{
	const char *slash = file ? strrchr(file, '/') : NULL;
	char cwd[TD_GW_FILE_LEN];
	int r;

	if (slash && file[0] == '/') {
		size_t n = slash == file ? 1 : (size_t)(slash - file);

		if (n >= len)
			return -ENAMETOOLONG;
		memcpy(out, file, n);
		out[n] = '\0';
		return 0;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	if (slash)
		r = snprintf(out, len, "%s/%.*s", cwd, (int)(slash - file), file);
	else
		r = snprintf(out, len, "%s", cwd);
	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

/*
 * A file name into out[TD_GW_FILE_LEN]: absolute as written, or relative to the folder of the
 * config file (stored absolute, so a reload from another working directory finds the same file).
 * The file is not opened here (td_gw_check does that).
 */
bool td_gw_get_file(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, char *out)
{
	char dir[TD_GW_FILE_LEN];
	const char *s;
	int r;

	if (!td_get_str(c, n, path, &s))
		return false;
	if (strlen(s) != n->data.scalar.length || !td_gw_no_ctl(s) || s[strlen(s) - 1] == '/') {
		td_cerr(c, n, "%s: invalid file name '%s' (no control characters; a file, not a "
			"folder)", path, s);
		return false;
	}
	if (s[0] == '/') {
		r = snprintf(out, TD_GW_FILE_LEN, "%s", s);
	} else {
		r = td_gw_base_dir(c->file, dir, sizeof(dir));
		if (r) {
			td_cerr(c, n, "%s: cannot resolve '%s' against the config's folder: %s", path,
				s, strerror(-r));
			return false;
		}
		if (!strncmp(s, "./", 2))
			s += 2;
		r = snprintf(out, TD_GW_FILE_LEN, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", s);
	}
	if (r < 0 || r >= (int)TD_GW_FILE_LEN) {
		td_cerr(c, n, "%s: file name is too long (max %u characters once made absolute)", path,
			TD_GW_FILE_LEN - 1);
		out[0] = '\0';
		return false;
	}
	return true;
}

/* ---- endpoints -------------------------------------------------------------------------------- */

/* "a.b.c.d:port" / "[v6]:port" into ep; 0 or -EINVAL */
static int td_gw_endpoint_parse(const char *s, struct td_gw_endpoint *ep)
{
	union td_addr a;
	__u8 fam;
	__u16 port;

	if (strlen(s) >= sizeof(ep->text) || td_listen_parse(s, &a, &fam, &port))
		return -EINVAL;
	snprintf(ep->text, sizeof(ep->text), "%s", s);
	ep->sslen = td_sockaddr_from(&a, fam, port, &ep->ss);
	return 0;
}

bool td_gw_endpoint_equal(const struct td_gw_endpoint *a, const struct td_gw_endpoint *b)
{
	return a->sslen == b->sslen && !memcmp(&a->ss, &b->ss, a->sslen);
}

bool td_gw_get_endpoint(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			struct td_gw_endpoint *ep)
{
	const char *s;

	memset(ep, 0, sizeof(*ep));
	ep->line = td_line(n);
	if (!td_get_str(c, n, path, &s))
		return false;
	if (td_gw_endpoint_parse(s, ep)) {
		td_cerr(c, n, "%s: expected ADDRESS:PORT with a literal IP and a port 1..65535 "
			"(e.g. 127.0.0.1:8000 or [::1]:8000), got '%s'", path, s);
		return false;
	}
	return true;
}

/*
 * A listen value: one endpoint string or a list of them, appended to eps (max TD_GW_MAX_LISTEN).
 * Duplicates against everything already in all[0..nall) and within the list are errors.
 */
void td_gw_parse_listen(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			struct td_gw_endpoint *eps, size_t *neps,
			const struct td_gw_endpoint *other, size_t nother)
{
	char sub[TD_GW_P];
	size_t len = 1;
	bool list = n->type == YAML_SEQUENCE_NODE;

	if (!list && n->type != YAML_SCALAR_NODE) {
		td_cerr(c, n, "%s: expected an endpoint or a list of endpoints, got %s", path,
			td_node_kind(n));
		return;
	}
	if (list && !td_seq_check(c, n, path, &len))
		return;
	if (!len || (!list && td_is_null(n))) {
		td_cerr(c, n, "%s: must not be empty", path);
		return;
	}
	if (len > TD_GW_MAX_LISTEN) {
		td_cerr(c, n, "%s: too many endpoints (%zu, max %u)", path, len, TD_GW_MAX_LISTEN);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = list ? td_seq_item(c, n, i) : n;
		struct td_gw_endpoint ep;
		const struct td_gw_endpoint *dup = NULL;

		if (list)
			td_path_fmt(sub, sizeof(sub), "%s[%zu]", path, i);
		else
			td_path_fmt(sub, sizeof(sub), "%s", path);
		if (!td_gw_get_endpoint(c, item, sub, &ep))
			continue;
		for (size_t j = 0; j < *neps && !dup; j++)
			if (td_gw_endpoint_equal(&eps[j], &ep))
				dup = &eps[j];
		for (size_t j = 0; j < nother && !dup; j++)
			if (td_gw_endpoint_equal(&other[j], &ep))
				dup = &other[j];
		if (dup) {
			td_cerr(c, item, "%s: duplicate listen endpoint %s (first at line %d)", sub,
				ep.text, dup->line);
			continue;
		}
		eps[(*neps)++] = ep;
	}
}

/* ---- gateway-wide keys -------------------------------------------------------------------- */

static void td_gw_parse_tls(struct td_cfg_ctx *c, yaml_node_t *n, struct td_gw_cfg *g)
{
	enum { K_LISTEN, K_CERTS, K_N };
	static const char *const keys[K_N] = { "listen", "certs" };
	yaml_node_t *v[K_N];
	char sub[TD_GW_P];
	size_t len;

	if (!td_map_get(c, n, "gateway.tls", keys, K_N, v))
		return;
	if (!v[K_LISTEN])
		td_cerr(c, n, "gateway.tls: missing required key 'listen'");
	else
		td_gw_parse_listen(c, v[K_LISTEN], "gateway.tls.listen", g->tls_listen,
				   &g->n_tls_listen, g->listen, g->n_listen);
	if (!v[K_CERTS]) {
		td_cerr(c, n, "gateway.tls: missing required key 'certs' (at least one "
			"{ cert, key } pair)");
		return;
	}
	if (!td_seq_check(c, v[K_CERTS], "gateway.tls.certs", &len))
		return;
	if (!len) {
		td_cerr(c, v[K_CERTS], "gateway.tls.certs: needs at least one { cert, key } pair");
		return;
	}
	if (len > TD_GW_MAX_CERTS) {
		td_cerr(c, v[K_CERTS], "gateway.tls.certs: too many certificates (%zu, max %u)", len,
			TD_GW_MAX_CERTS);
		return;
	}
	g->tls_certs = calloc(len, sizeof(*g->tls_certs));
	if (!g->tls_certs) {
		td_cerr(c, v[K_CERTS], "gateway.tls.certs: out of memory");
		return;
	}
	for (size_t i = 0; i < len; i++) {
		static const char *const ckeys[] = { "cert", "key" };
		struct td_gw_tls_cert_cfg *tc = &g->tls_certs[g->n_tls_certs];
		yaml_node_t *item = td_seq_item(c, v[K_CERTS], i), *cv[2];
		char path[TD_GW_P];
		bool ok = true;

		td_path_fmt(path, sizeof(path), "gateway.tls.certs[%zu]", i);
		tc->line = td_line(item);
		if (!td_map_get(c, item, path, ckeys, 2, cv))
			continue;
		for (size_t k = 0; k < 2; k++) {
			char *out = k ? tc->key : tc->cert;

			td_path_fmt(sub, sizeof(sub), "%s.%s", path, ckeys[k]);
			if (!cv[k]) {
				td_cerr(c, item, "%s: missing required key '%s'", path, ckeys[k]);
				ok = false;
			} else {
				ok &= td_gw_get_file(c, cv[k], sub, out);
			}
		}
		if (ok)
			g->n_tls_certs++;
		else
			memset(tc, 0, sizeof(*tc));
	}
}

static void td_gw_parse_limits(struct td_cfg_ctx *c, yaml_node_t *n, struct td_gw_cfg *g)
{
	enum { K_LINE, K_HSIZE, K_NHDR, K_BODY, K_HTMO, K_ITMO, K_BTMO, K_CONNS, K_N };
	static const char *const keys[K_N] = { "max_request_line", "max_header_size",
						"max_headers", "max_body_size", "header_timeout",
						"idle_timeout", "body_timeout", "max_conns" };
	yaml_node_t *v[K_N];
	long long x;

	if (!td_map_get(c, n, "gateway.limits", keys, K_N, v))
		return;
	if (v[K_LINE])
		td_gw_get_u32(c, v[K_LINE], "gateway.limits.max_request_line", 64, 65536,
			      &g->max_request_line);
	if (v[K_HSIZE])
		td_gw_get_u32(c, v[K_HSIZE], "gateway.limits.max_header_size", 1024, 1048576,
			      &g->max_header_size);
	if (v[K_NHDR])
		td_gw_get_u32(c, v[K_NHDR], "gateway.limits.max_headers", 1, TD_GW_MAX_HEADERS,
			      &g->max_headers);
	if (v[K_BODY] && td_get_int(c, v[K_BODY], "gateway.limits.max_body_size", 0,
				    (long long)TD_GW_MAX_BODY, &x))
		g->max_body_size = (uint64_t)x;
	if (v[K_HTMO])
		td_gw_get_ms(c, v[K_HTMO], "gateway.limits.header_timeout", TD_GW_TMO_MIN,
			     TD_GW_TMO_MAX, &g->header_timeout_ms);
	if (v[K_ITMO])
		td_gw_get_ms(c, v[K_ITMO], "gateway.limits.idle_timeout", TD_GW_TMO_MIN,
			     TD_GW_TMO_MAX, &g->idle_timeout_ms);
	if (v[K_BTMO])
		td_gw_get_ms(c, v[K_BTMO], "gateway.limits.body_timeout", TD_GW_TMO_MIN,
			     TD_GW_TMO_MAX, &g->body_timeout_ms);
	if (v[K_CONNS])
		td_gw_get_u32(c, v[K_CONNS], "gateway.limits.max_conns", 1, TD_GW_MAX_CONNS,
			      &g->max_conns);
}

/*
 * "10.0.0.0/8", "fd00::/8", or an address alone (/32, /128); host bits must be zero. Appended
 * to list[*nlist] (the caller bounds *nlist); the same CIDR as one already there is an error.
 */
void td_gw_parse_cidr(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
		      struct td_gw_cidr *list, size_t *nlist)
{
	struct td_gw_cidr *r = &list[*nlist];
	char host[TD_ADDRSTRLEN], abuf[TD_ADDRSTRLEN];
	const char *s, *slash;
	union td_addr a;
	unsigned long pfx;
	unsigned int bits;
	__u8 fam;
	char *end;
	size_t hlen;

	if (!td_get_str(c, n, path, &s))
		return;
	slash = strchr(s, '/');
	hlen = slash ? (size_t)(slash - s) : strlen(s);
	if (!hlen || hlen >= sizeof(host))
		goto bad;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (td_addr_parse(host, &a, &fam))
		goto bad;
	bits = fam == TD_AF_INET ? 32 : 128;
	pfx = bits;
	if (slash) {
		errno = 0;
		pfx = strtoul(slash + 1, &end, 10);
		if (errno || *end || end == slash + 1 || slash[1] < '0' || slash[1] > '9' ||
		    pfx > bits)
			goto bad;
	}
	memset(r, 0, sizeof(*r));
	r->family = fam == TD_AF_INET ? AF_INET : AF_INET6;
	r->prefix = (uint8_t)pfx;
	r->line = td_line(n);
	memcpy(r->addr, a.bytes, bits / 8);
	for (unsigned int i = 0; i < bits / 8; i++) {
		unsigned int keep = pfx >= (i + 1) * 8 ? 8 : pfx > i * 8 ? pfx - i * 8 : 0;
		uint8_t mask = (uint8_t)(0xff00u >> keep);

		r->addr[i] &= mask;
	}
	if (memcmp(r->addr, a.bytes, bits / 8)) {
		union td_addr m = { 0 };

		memcpy(m.bytes, r->addr, 16);
		td_cerr(c, n, "%s: '%s' has host bits set (did you mean %s/%lu?)", path, s,
			td_addr_format(&m, fam, abuf, sizeof(abuf)), pfx);
		return;
	}
	for (size_t i = 0; i < *nlist; i++) {
		const struct td_gw_cidr *o = &list[i];

		if (o->family == r->family && o->prefix == r->prefix &&
		    !memcmp(o->addr, r->addr, sizeof(r->addr))) {
			td_cerr(c, n, "%s: duplicate CIDR '%s' (first at line %d)", path, s, o->line);
			return;
		}
	}
	(*nlist)++;
	return;
bad:
	td_cerr(c, n, "%s: expected an IP address or CIDR such as 10.0.0.0/8 or fd00::/8, got '%s'",
		path, s);
}

static void td_gw_parse_access_log(struct td_cfg_ctx *c, yaml_node_t *n, struct td_gw_cfg *g)
{
	static const char *const keys[] = { "path", "format" };
	yaml_node_t *v[2];
	const char *s;

	if (!td_map_get(c, n, "gateway.access_log", keys, 2, v))
		return;
	if (v[0] && td_get_str(c, v[0], "gateway.access_log.path", &s)) {
		if (!strcmp(s, "stdout") || !strcmp(s, "stderr") || !strcmp(s, "off"))
			snprintf(g->access_log, sizeof(g->access_log), "%s", s);
		else
			td_gw_get_file(c, v[0], "gateway.access_log.path", g->access_log);
	}
	if (v[1] && td_get_str(c, v[1], "gateway.access_log.format", &s)) {
		if (!strcmp(s, "combined"))
			g->access_log_format = TD_GW_LOG_COMBINED;
		else if (!strcmp(s, "json"))
			g->access_log_format = TD_GW_LOG_JSON;
		else
			td_cerr(c, v[1], "gateway.access_log.format: invalid format '%s' (expected "
				"combined or json)", s);
	}
}

/* ---- upstreams -------------------------------------------------------------------------------- */

/* "client_ip" | "header:NAME"; 0, -EINVAL (syntax) or -ENAMETOOLONG */
static int td_gw_hash_key_parse(const char *s, size_t len, uint8_t *key, char *hdr)
{
	if (len == 9 && !strncmp(s, "client_ip", 9)) {
		*key = TD_GW_HASH_CLIENT_IP;
		hdr[0] = '\0';
		return 0;
	}
	if (len > 7 && !strncmp(s, "header:", 7)) {
		s += 7;
		len -= 7;
		for (size_t i = 0; i < len; i++)
			if (!td_http_is_tchar((unsigned char)s[i]))
				return -EINVAL;
		if (len >= TD_GW_HDR_NAME_LEN)
			return -ENAMETOOLONG;
		memcpy(hdr, s, len);
		hdr[len] = '\0';
		*key = TD_GW_HASH_HEADER;
		return 0;
	}
	return -EINVAL;
}

static bool td_gw_hash_key_get(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			       const char *s, size_t len, struct td_gw_upstream_cfg *u)
{
	int r = td_gw_hash_key_parse(s, len, &u->hash_key, u->hash_header);

	if (r == -ENAMETOOLONG)
		td_cerr(c, n, "%s: header name in '%s' is too long (max %u characters)", path,
			td_scalar(n), TD_GW_HDR_NAME_LEN - 1);
	else if (r)
		td_cerr(c, n, "%s: invalid hash key '%.*s' (expected client_ip or header:NAME)",
			path, (int)len, s);
	return !r;
}

static void td_gw_parse_lb(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			   struct td_gw_upstream_cfg *u, bool *key_given)
{
	const char *s;
	size_t len;

	if (!td_get_str(c, n, path, &s))
		return;
	len = strlen(s);
	if (!strcmp(s, "round_robin")) {
		u->lb = TD_GW_LB_ROUND_ROBIN;
	} else if (!strcmp(s, "least_conn")) {
		u->lb = TD_GW_LB_LEAST_CONN;
	} else if (!strcmp(s, "random_two")) {
		u->lb = TD_GW_LB_RANDOM_TWO;
	} else if (!strcmp(s, "hash")) {
		u->lb = TD_GW_LB_HASH;
	} else if (len > 6 && !strncmp(s, "hash(", 5) && s[len - 1] == ')') {
		u->lb = TD_GW_LB_HASH;
		*key_given = td_gw_hash_key_get(c, n, path, s + 5, len - 6, u);
	} else {
		td_cerr(c, n, "%s: invalid lb '%s' (expected round_robin, least_conn, random_two, "
			"hash, hash(client_ip) or hash(header:NAME))", path, s);
	}
}

static int td_gw_ep_cmp(const void *a, const void *b)
{
	const struct td_gw_endpoint *x = *(const struct td_gw_endpoint *const *)a;
	const struct td_gw_endpoint *y = *(const struct td_gw_endpoint *const *)b;
	int r;

	if (x->sslen != y->sslen)
		return x->sslen < y->sslen ? -1 : 1;
	r = memcmp(&x->ss, &y->ss, x->sslen);
	if (r)
		return r;
	return x->line < y->line ? -1 : (x->line > y->line);
}

static void td_gw_parse_backends(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				 struct td_gw_upstream_cfg *u)
{
	struct td_gw_endpoint **sorted;
	char sub[TD_GW_P];
	size_t len;

	if (!td_seq_check(c, n, path, &len))
		return;
	if (!len) {
		td_cerr(c, n, "%s: needs at least one backend", path);
		return;
	}
	if (len > TD_GW_MAX_BACKENDS) {
		td_cerr(c, n, "%s: too many backends (%zu, max %u)", path, len, TD_GW_MAX_BACKENDS);
		return;
	}
	u->backends = calloc(len, sizeof(*u->backends));
	if (!u->backends) {
		td_cerr(c, n, "%s: out of memory", path);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		td_path_fmt(sub, sizeof(sub), "%s[%zu]", path, i);
		if (td_gw_get_endpoint(c, td_seq_item(c, n, i), sub, &u->backends[u->n_backends]))
			u->n_backends++;
	}
	if (u->n_backends < 2)
		return;
	sorted = calloc(u->n_backends, sizeof(*sorted));
	if (!sorted) {
		td_cerr(c, n, "%s: out of memory", path);
		return;
	}
	for (size_t i = 0; i < u->n_backends; i++)
		sorted[i] = &u->backends[i];
	qsort(sorted, u->n_backends, sizeof(*sorted), td_gw_ep_cmp);
	for (size_t i = 1; i < u->n_backends; i++) {
		const struct td_gw_endpoint *a = sorted[i - 1], *b = sorted[i];

		if (td_gw_endpoint_equal(a, b)) {
			c->nerr++;
			td_errors_add(c->errs, c->file, b->line,
				      "%s: duplicate backend %s (first at line %d)", path, b->text,
				      a->line);
		}
	}
	free(sorted);
}

static void td_gw_parse_outlier(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				struct td_gw_upstream_cfg *u)
{
	static const char *const keys[] = { "consecutive_failures", "ejection" };
	yaml_node_t *v[2];
	char sub[TD_GW_P];

	if (!td_map_get(c, n, path, keys, 2, v))
		return;
	if (v[0]) {
		td_path_fmt(sub, sizeof(sub), "%s.consecutive_failures", path);
		td_gw_get_u32(c, v[0], sub, 0, TD_GW_MAX_OUTLIER, &u->outlier_failures);
	}
	if (v[1]) {
		td_path_fmt(sub, sizeof(sub), "%s.ejection", path);
		td_gw_get_ms(c, v[1], sub, TD_GW_MIN_EJECTION, TD_GW_MAX_EJECTION,
			     &u->outlier_ejection_ms);
	}
}

static void td_gw_parse_upstream(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				 struct td_gw_upstream_cfg *u)
{
	enum { K_LB, K_HASH, K_BACKENDS, K_HEALTH, K_RETRIES, K_CTMO, K_RTMO, K_OUTLIER,
	       K_IDLE, K_N };
	static const char *const keys[K_N] = { "lb", "hash_key", "backends", "health", "retries",
						"connect_timeout", "response_timeout", "outlier",
						"max_idle" };
	yaml_node_t *v[K_N];
	char sub[TD_GW_P];
	bool key_in_lb = false;
	const char *s;

	u->lb = TD_GW_LB_ROUND_ROBIN;
	u->hash_key = TD_GW_HASH_CLIENT_IP;
	u->retries = TD_GW_DEF_RETRIES;
	u->connect_timeout_ms = TD_GW_DEF_CONNECT_TMO;
	u->response_timeout_ms = TD_GW_DEF_RESP_TMO;
	u->outlier_failures = TD_GW_DEF_OUTLIER;
	u->outlier_ejection_ms = TD_GW_DEF_EJECTION;
	u->max_idle = TD_GW_DEF_MAX_IDLE;
	if (!td_map_get(c, n, path, keys, K_N, v))
		return;

	if (v[K_LB]) {
		td_path_fmt(sub, sizeof(sub), "%s.lb", path);
		td_gw_parse_lb(c, v[K_LB], sub, u, &key_in_lb);
	}
	if (v[K_HASH]) {
		td_path_fmt(sub, sizeof(sub), "%s.hash_key", path);
		if (!v[K_LB] || u->lb != TD_GW_LB_HASH)
			td_cerr(c, v[K_HASH], "%s: only valid with lb: hash", sub);
		else if (key_in_lb || (v[K_LB] && strchr(td_scalar(v[K_LB]), '(')))
			td_cerr(c, v[K_HASH], "%s: the key is already given in lb: %s", sub,
				td_scalar(v[K_LB]));
		else if (td_get_str(c, v[K_HASH], sub, &s))
			td_gw_hash_key_get(c, v[K_HASH], sub, s, strlen(s), u);
	}
	td_path_fmt(sub, sizeof(sub), "%s.backends", path);
	if (!v[K_BACKENDS])
		td_cerr(c, n, "%s: missing required key 'backends'", path);
	else
		td_gw_parse_backends(c, v[K_BACKENDS], sub, u);
	if (v[K_HEALTH]) {
		td_path_fmt(sub, sizeof(sub), "%s.health", path);
		td_parse_health(c, v[K_HEALTH], sub, &u->health);
	}
	if (v[K_RETRIES]) {
		td_path_fmt(sub, sizeof(sub), "%s.retries", path);
		td_gw_get_u32(c, v[K_RETRIES], sub, 0, TD_GW_MAX_RETRIES, &u->retries);
	}
	if (v[K_CTMO]) {
		td_path_fmt(sub, sizeof(sub), "%s.connect_timeout", path);
		td_gw_get_ms(c, v[K_CTMO], sub, 1, TD_GW_MAX_CONNECT_TMO, &u->connect_timeout_ms);
	}
	if (v[K_RTMO]) {
		td_path_fmt(sub, sizeof(sub), "%s.response_timeout", path);
		td_gw_get_ms(c, v[K_RTMO], sub, 1, TD_GW_MAX_RESP_TMO, &u->response_timeout_ms);
	}
	if (v[K_OUTLIER]) {
		td_path_fmt(sub, sizeof(sub), "%s.outlier", path);
		td_gw_parse_outlier(c, v[K_OUTLIER], sub, u);
	}
	if (v[K_IDLE]) {
		td_path_fmt(sub, sizeof(sub), "%s.max_idle", path);
		td_gw_get_u32(c, v[K_IDLE], sub, 1, TD_GW_MAX_MAX_IDLE, &u->max_idle);
	}
}

static void td_gw_parse_upstreams(struct td_cfg_ctx *c, yaml_node_t *n, struct td_gw_cfg *g)
{
	yaml_node_pair_t *p;
	size_t len;

	if (td_is_null(n))
		return;
	if (n->type != YAML_MAPPING_NODE) {
		td_cerr(c, n, "gateway.upstreams: expected a mapping of upstream names, got %s",
			td_node_kind(n));
		return;
	}
	len = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	if (!len)
		return;
	if (len > TD_GW_MAX_UPSTREAMS) {
		td_cerr(c, n, "gateway.upstreams: too many upstreams (%zu, max %u)", len,
			TD_GW_MAX_UPSTREAMS);
		return;
	}
	g->upstreams = calloc(len, sizeof(*g->upstreams));
	if (!g->upstreams) {
		td_cerr(c, n, "gateway.upstreams: out of memory");
		return;
	}
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = td_node(c, p->key), *v = td_node(c, p->value);
		struct td_gw_upstream_cfg *u = &g->upstreams[g->n_upstreams];
		char path[TD_GW_P];
		const char *name;

		if (!k || !v)
			continue;
		if (k->type != YAML_SCALAR_NODE || !*td_scalar(k)) {
			td_cerr(c, k, "gateway.upstreams: upstream names must be non-empty strings");
			continue;
		}
		name = td_scalar(k);
		td_path_fmt(path, sizeof(path), "gateway.upstreams.%s", name);
		if (strlen(name) >= TD_GW_NAME_LEN) {
			td_cerr(c, k, "%s: upstream name is too long (max %u characters)", path,
				TD_GW_NAME_LEN - 1);
			continue;
		}
		if (!td_name_valid(name)) {
			td_cerr(c, k, "gateway.upstreams: invalid character in upstream name '%s' "
				"(allowed: A-Z a-z 0-9 _ . -)", name);
			continue;
		}
		for (size_t i = 0; i < g->n_upstreams; i++) {
			if (!strcmp(g->upstreams[i].name, name)) {
				td_cerr(c, k, "%s: duplicate upstream '%s' (first at line %d)", path,
					name, g->upstreams[i].line);
				name = NULL;
				break;
			}
		}
		if (!name)
			continue;
		snprintf(u->name, sizeof(u->name), "%s", name);
		u->line = td_line(k);
		td_gw_parse_upstream(c, v, path, u);
		g->n_upstreams++;
	}
}

/* ---- routes: match ------------------------------------------------------------------------ */

/* "api.example", "*.example" or "[v6]": DNS-name characters, no port, no empty labels */
static const char *td_gw_host_check(const char *h)
{
	size_t len = strlen(h);

	if (len > TD_ROUTE_MAX_HOST)
		return "is longer than 253 characters";
	if (h[0] == '[') {
		char a[TD_ADDRSTRLEN];
		union td_addr x;
		__u8 fam;

		if (h[len - 1] != ']' || len - 2 >= sizeof(a))
			return "is not a valid [IPv6] literal";
		memcpy(a, h + 1, len - 2);
		a[len - 2] = '\0';
		if (td_addr_parse(a, &x, &fam) || fam != TD_AF_INET6)
			return "is not a valid [IPv6] literal";
		return NULL;
	}
	if (!strncmp(h, "*.", 2))
		h += 2;
	if (!*h)
		return "has no name after '*.'";
	if (strchr(h, ':'))
		return "must not have a port (the request's port is ignored when matching)";
	for (const char *p = h; *p; p++) {
		if (*p == '*')
			return "may use '*' only as a leading \"*.\"";
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_'))
			return "has an invalid character (allowed: A-Z a-z 0-9 - _ . and a leading *.)";
		if (*p == '.' && (p == h || p[1] == '.' || !p[1]))
			return "has an empty label";
	}
	return NULL;
}

/* a path matcher or strip_prefix: '/', visible ASCII, no '?' or '#' (the router's rule) */
static bool td_gw_get_path(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, char *out)
{
	const char *s;

	if (!td_get_str(c, n, path, &s))
		return false;
	if (s[0] != '/') {
		td_cerr(c, n, "%s: must start with '/', got '%s'", path, s);
		return false;
	}
	if (!td_gw_visible(s) || strpbrk(s, "?#")) {
		td_cerr(c, n, "%s: invalid character in '%s' (visible ASCII without spaces, '?' or "
			"'#'; the query is never part of the path)", path, s);
		return false;
	}
	if (strlen(s) >= TD_GW_PATH_LEN) {
		td_cerr(c, n, "%s: path is too long (max %u characters)", path, TD_GW_PATH_LEN - 1);
		return false;
	}
	snprintf(out, TD_GW_PATH_LEN, "%s", s);
	return true;
}

static bool td_gw_parse_methods(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				uint32_t *methods)
{
	char sub[TD_GW_P];
	bool ok = true;
	size_t len;

	if (!td_seq_check(c, n, path, &len))
		return false;
	if (!len) {
		td_cerr(c, n, "%s: must not be empty (leave it out for any method)", path);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = td_seq_item(c, n, i);
		const char *s;
		int m;

		td_path_fmt(sub, sizeof(sub), "%s[%zu]", path, i);
		if (!td_get_str(c, item, sub, &s)) {
			ok = false;
			continue;
		}
		m = td_route_method_parse(s);
		if (m < 0) {
			td_cerr(c, item, "%s: unknown method '%s' (expected upper-case GET, HEAD, POST, "
				"PUT, DELETE, CONNECT, OPTIONS, TRACE or PATCH)", sub, s);
			ok = false;
		} else if (*methods & TD_ROUTE_M(m)) {
			td_cerr(c, item, "%s: method %s is listed twice", sub, s);
			ok = false;
		} else {
			*methods |= TD_ROUTE_M(m);
		}
	}
	return ok;
}

/*
 * A mapping NAME: VALUE into hdrs (at most max, names unique case-insensitively).
 * managed: refuse the fields the gateway manages (for header edits).
 */
static bool td_gw_parse_hdr_map(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				struct td_gw_hdr_cfg *hdrs, size_t *nhdrs, size_t max,
				bool managed)
{
	yaml_node_pair_t *p;
	char sub[TD_GW_P];
	bool ok = true;
	size_t len;

	if (td_is_null(n))
		return true;
	if (n->type != YAML_MAPPING_NODE) {
		td_cerr(c, n, "%s: expected a mapping of header names to values, got %s", path,
			td_node_kind(n));
		return false;
	}
	len = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	if (len > max) {
		td_cerr(c, n, "%s: too many headers (%zu, max %zu)", path, len, max);
		return false;
	}
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = td_node(c, p->key), *v = td_node(c, p->value);
		struct td_gw_hdr_cfg *h = &hdrs[*nhdrs];
		bool dup = false;

		if (!k || !v)
			continue;
		if (k->type != YAML_SCALAR_NODE) {
			td_cerr(c, k, "%s: header names must be strings, got %s", path,
				td_node_kind(k));
			ok = false;
			continue;
		}
		if (!td_gw_check_hdr_name(c, k, path, td_scalar(k), h->name)) {
			ok = false;
			continue;
		}
		td_path_fmt(sub, sizeof(sub), "%s.%s", path, h->name);
		if (managed && td_gw_managed_header(h->name)) {
			td_cerr(c, k, "%s: header '%s' is managed by the gateway and cannot be set",
				sub, h->name);
			ok = false;
			continue;
		}
		for (size_t i = 0; i < *nhdrs && !dup; i++) {
			if (!strcasecmp(hdrs[i].name, h->name)) {
				td_cerr(c, k, "%s: duplicate header '%s' (first at line %d)", sub,
					h->name, hdrs[i].line);
				dup = true;
			}
		}
		if (dup || !td_gw_get_hdr_value(c, v, sub, h->value)) {
			ok = false;
			continue;
		}
		h->line = td_line(k);
		(*nhdrs)++;
	}
	return ok;
}

/* match: { host, path | path_prefix, methods, headers }; false if any part is invalid */
static bool td_gw_parse_match(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			      struct td_gw_route_cfg *r)
{
	enum { K_HOST, K_PATH, K_PREFIX, K_METHODS, K_HEADERS, K_N };
	static const char *const keys[K_N] = { "host", "path", "path_prefix", "methods",
						"headers" };
	yaml_node_t *v[K_N];
	char sub[TD_GW_P];
	bool ok = true;
	const char *s, *why;

	if (!td_map_get(c, n, path, keys, K_N, v))
		return false;
	if (v[K_HOST]) {
		td_path_fmt(sub, sizeof(sub), "%s.host", path);
		if (!td_get_str(c, v[K_HOST], sub, &s)) {
			ok = false;
		} else if ((why = td_gw_host_check(s))) {
			td_cerr(c, v[K_HOST], "%s: host '%s' %s", sub, s, why);
			ok = false;
		} else {
			snprintf(r->host, sizeof(r->host), "%s", s);
		}
	}
	if (v[K_PATH] && v[K_PREFIX]) {
		td_cerr(c, v[K_PREFIX], "%s: path and path_prefix are exclusive (path matches "
			"exactly, path_prefix a subtree)", path);
		ok = false;
	}
	if (v[K_PATH]) {
		td_path_fmt(sub, sizeof(sub), "%s.path", path);
		ok &= td_gw_get_path(c, v[K_PATH], sub, r->path);
	}
	if (v[K_PREFIX]) {
		td_path_fmt(sub, sizeof(sub), "%s.path_prefix", path);
		ok &= td_gw_get_path(c, v[K_PREFIX], sub, r->path_prefix);
	}
	if (v[K_METHODS]) {
		td_path_fmt(sub, sizeof(sub), "%s.methods", path);
		ok &= td_gw_parse_methods(c, v[K_METHODS], sub, &r->methods);
	}
	if (v[K_HEADERS]) {
		td_path_fmt(sub, sizeof(sub), "%s.headers", path);
		ok &= td_gw_parse_hdr_map(c, v[K_HEADERS], sub, r->match_headers,
					  &r->n_match_headers, TD_GW_MAX_HDR_MATCH, false);
	}
	return ok;
}

/* ---- routes: auth, rate limit, header edits ------------------------------------------------ */

static void td_gw_parse_jwt(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			    struct td_gw_auth_cfg *a)
{
	enum { K_ALG, K_SECRET, K_KEY, K_JWKS, K_ISS, K_AUD, K_LEEWAY, K_N };
	static const char *const keys[K_N] = { "alg", "secret_file", "key_file", "jwks_file",
						"issuer", "audience", "leeway" };
	yaml_node_t *v[K_N];
	char sub[TD_GW_P];
	const char *s;
	__u64 ms;

	if (!td_map_get(c, n, path, keys, K_N, v))
		return;
	td_path_fmt(sub, sizeof(sub), "%s.alg", path);
	if (!v[K_ALG]) {
		td_cerr(c, n, "%s: missing required key 'alg' (HS256, RS256 or ES256)", path);
	} else if (td_get_str(c, v[K_ALG], sub, &s)) {
		a->jwt_alg = (uint8_t)td_jwt_alg_parse(s);
		if (a->jwt_alg == TD_JWT_ALG_NONE && !strcasecmp(s, "none"))
			td_cerr(c, v[K_ALG], "%s: alg none is never accepted (unsigned tokens); "
				"expected HS256, RS256 or ES256", sub);
		else if (a->jwt_alg == TD_JWT_ALG_NONE)
			td_cerr(c, v[K_ALG], "%s: unsupported alg '%s' (expected HS256, RS256 or "
				"ES256)", sub, s);
	}
	for (int k = K_SECRET; k <= K_JWKS; k++) {
		char *out = k == K_SECRET ? a->secret_file : k == K_KEY ? a->key_file : a->jwks_file;

		if (!v[k])
			continue;
		td_path_fmt(sub, sizeof(sub), "%s.%s", path, keys[k]);
		td_gw_get_file(c, v[k], sub, out);
	}
	if (a->jwt_alg == TD_JWT_HS256) {
		if (!v[K_SECRET])
			td_cerr(c, n, "%s: alg HS256 needs secret_file (the shared secret)", path);
		for (int k = K_KEY; k <= K_JWKS; k++)
			if (v[k])
				td_cerr(c, v[k], "%s.%s: not used with HS256 (it takes secret_file)",
					path, keys[k]);
	} else if (a->jwt_alg == TD_JWT_RS256 || a->jwt_alg == TD_JWT_ES256) {
		const char *alg = a->jwt_alg == TD_JWT_RS256 ? "RS256" : "ES256";

		if (v[K_SECRET])
			td_cerr(c, v[K_SECRET], "%s.secret_file: not used with %s (it takes key_file "
				"or jwks_file)", path, alg);
		if (!v[K_KEY] && !v[K_JWKS])
			td_cerr(c, n, "%s: alg %s needs key_file (a PEM public key) or jwks_file",
				path, alg);
		else if (v[K_KEY] && v[K_JWKS])
			td_cerr(c, v[K_JWKS], "%s: key_file and jwks_file are exclusive", path);
	}
	if (v[K_ISS]) {
		td_path_fmt(sub, sizeof(sub), "%s.issuer", path);
		if (td_gw_get_text(c, v[K_ISS], sub, a->issuer, sizeof(a->issuer)) &&
		    !td_gw_quotable(a->issuer))
			td_cerr(c, v[K_ISS], "%s: control characters, '\"' or '\\' in issuer", sub);
	}
	if (v[K_AUD]) {
		td_path_fmt(sub, sizeof(sub), "%s.audience", path);
		if (td_gw_get_text(c, v[K_AUD], sub, a->audience, sizeof(a->audience)) &&
		    !td_gw_quotable(a->audience))
			td_cerr(c, v[K_AUD], "%s: control characters, '\"' or '\\' in audience", sub);
	}
	if (v[K_LEEWAY]) {
		td_path_fmt(sub, sizeof(sub), "%s.leeway", path);
		if (td_get_duration(c, v[K_LEEWAY], sub, 0, TD_GW_MAX_LEEWAY_MS, &ms)) {
			if (ms % 1000)
				td_cerr(c, v[K_LEEWAY], "%s: must be whole seconds, got '%s'", sub,
					td_scalar(v[K_LEEWAY]));
			else
				a->leeway_s = (uint32_t)(ms / 1000);
		}
	}
}

static bool td_gw_sha256_hex(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
		      (*s >= 'A' && *s <= 'F')))
			return false;
	return true;
}

static void td_gw_parse_api_key(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				struct td_gw_auth_cfg *a)
{
	static const char *const keys[] = { "name", "sha256" };
	struct td_gw_api_key_cfg *k = &a->keys[a->n_keys];
	yaml_node_t *v[2];
	char sub[TD_GW_P];
	const char *s;
	bool ok = true;

	memset(k, 0, sizeof(*k));
	k->line = td_line(n);
	if (!td_map_get(c, n, path, keys, 2, v))
		return;
	td_path_fmt(sub, sizeof(sub), "%s.name", path);
	if (!v[0]) {
		td_cerr(c, n, "%s: missing required key 'name' (the identity sent upstream)", path);
		ok = false;
	} else if (!td_get_str(c, v[0], sub, &s)) {
		ok = false;
	} else if (strlen(s) >= TD_GW_NAME_LEN || !td_name_valid(s)) {
		td_cerr(c, v[0], "%s: invalid key name '%s' (1..%u of A-Z a-z 0-9 _ . -)", sub, s,
			TD_GW_NAME_LEN - 1);
		ok = false;
	} else {
		snprintf(k->name, sizeof(k->name), "%s", s);
	}
	td_path_fmt(sub, sizeof(sub), "%s.sha256", path);
	if (!v[1]) {
		td_cerr(c, n, "%s: missing required key 'sha256' (hex SHA-256 of the key)", path);
		ok = false;
	} else if (!td_get_str(c, v[1], sub, &s)) {
		ok = false;
	} else if (!td_gw_sha256_hex(s)) {
		td_cerr(c, v[1], "%s: expected 64 hex characters (printf %%s \"$KEY\" | sha256sum), "
			"got %zu characters '%.70s'", sub, strlen(s), s);
		ok = false;
	} else {
		for (size_t i = 0; i < 64; i++)
			k->sha256[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
		for (size_t i = 0; i < a->n_keys; i++) {
			if (!strcmp(a->keys[i].sha256, k->sha256)) {
				td_cerr(c, v[1], "%s: the same key hash as key '%s' (line %d)", sub,
					a->keys[i].name, a->keys[i].line);
				ok = false;
				break;
			}
		}
	}
	if (ok)
		a->n_keys++;
}

static void td_gw_parse_api_keys(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				 struct td_gw_auth_cfg *a)
{
	enum { K_HEADER, K_KEYS, K_FILE, K_N };
	static const char *const keys[K_N] = { "header", "keys", "keys_file" };
	yaml_node_t *v[K_N];
	char sub[TD_GW_P];
	size_t len = 0;

	if (!td_map_get(c, n, path, keys, K_N, v))
		return;
	if (v[K_HEADER]) {
		td_path_fmt(sub, sizeof(sub), "%s.header", path);
		if (td_gw_get_hdr_name(c, v[K_HEADER], sub, a->key_header) &&
		    td_gw_managed_header(a->key_header))
			td_cerr(c, v[K_HEADER], "%s: '%s' cannot carry an API key", sub,
				a->key_header);
	}
	if (v[K_FILE]) {
		td_path_fmt(sub, sizeof(sub), "%s.keys_file", path);
		td_gw_get_file(c, v[K_FILE], sub, a->keys_file);
	}
	td_path_fmt(sub, sizeof(sub), "%s.keys", path);
	if (v[K_KEYS] && td_seq_check(c, v[K_KEYS], sub, &len)) {
		if (!len && !v[K_FILE]) {
			td_cerr(c, v[K_KEYS], "%s: must not be empty", sub);
		} else if (len > TD_GW_MAX_API_KEYS) {
			td_cerr(c, v[K_KEYS], "%s: too many keys (%zu, max %u; use keys_file)", sub,
				len, TD_GW_MAX_API_KEYS);
		} else if (len && !(a->keys = calloc(len, sizeof(*a->keys)))) {
			td_cerr(c, v[K_KEYS], "%s: out of memory", sub);
		} else {
			for (size_t i = 0; i < len; i++) {
				char kpath[TD_GW_P];

				td_path_fmt(kpath, sizeof(kpath), "%s[%zu]", sub, i);
				td_gw_parse_api_key(c, td_seq_item(c, v[K_KEYS], i), kpath, a);
			}
		}
	}
	if (!v[K_KEYS] && !v[K_FILE])
		td_cerr(c, n, "%s: needs keys (a list of { name, sha256 }) or keys_file", path);
}

static void td_gw_parse_basic(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			      struct td_gw_auth_cfg *a)
{
	static const char *const keys[] = { "users_file", "realm" };
	yaml_node_t *v[2];
	char sub[TD_GW_P];

	if (!td_map_get(c, n, path, keys, 2, v))
		return;
	td_path_fmt(sub, sizeof(sub), "%s.users_file", path);
	if (!v[0])
		td_cerr(c, n, "%s: missing required key 'users_file' (htpasswd user:hash lines)",
			path);
	else
		td_gw_get_file(c, v[0], sub, a->users_file);
	if (v[1]) {
		td_path_fmt(sub, sizeof(sub), "%s.realm", path);
		if (td_gw_get_text(c, v[1], sub, a->realm, sizeof(a->realm)) &&
		    !td_gw_quotable(a->realm)) {
			td_cerr(c, v[1], "%s: no control characters, '\"' or '\\' in a realm", sub);
			snprintf(a->realm, sizeof(a->realm), "td");
		}
	}
}

static void td_gw_parse_auth(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			     struct td_gw_auth_cfg *a)
{
	enum { K_JWT, K_API, K_BASIC, K_IDENT, K_N };
	static const char *const keys[K_N] = { "jwt", "api_keys", "basic", "identity_header" };
	yaml_node_t *v[K_N];
	char sub[TD_GW_P];
	int kinds = 0;

	a->line = td_line(n);
	a->leeway_s = TD_GW_DEF_LEEWAY_S;
	snprintf(a->key_header, sizeof(a->key_header), "X-API-Key");
	snprintf(a->realm, sizeof(a->realm), "td");
	if (!td_map_get(c, n, path, keys, K_N, v))
		return;
	for (int k = K_JWT; k <= K_BASIC; k++)
		kinds += !!v[k];
	if (!kinds) {
		td_cerr(c, n, "%s: expected one of jwt, api_keys or basic", path);
		return;
	}
	if (kinds > 1) {
		td_cerr(c, n, "%s: only one of jwt, api_keys and basic per route (found %s%s%s)",
			path, v[K_JWT] ? "jwt " : "", v[K_API] ? "api_keys " : "",
			v[K_BASIC] ? "basic " : "");
		return;
	}
	if (v[K_JWT]) {
		a->kind = TD_GW_AUTH_JWT;
		td_path_fmt(sub, sizeof(sub), "%s.jwt", path);
		td_gw_parse_jwt(c, v[K_JWT], sub, a);
	} else if (v[K_API]) {
		a->kind = TD_GW_AUTH_API_KEYS;
		td_path_fmt(sub, sizeof(sub), "%s.api_keys", path);
		td_gw_parse_api_keys(c, v[K_API], sub, a);
	} else {
		a->kind = TD_GW_AUTH_BASIC;
		td_path_fmt(sub, sizeof(sub), "%s.basic", path);
		td_gw_parse_basic(c, v[K_BASIC], sub, a);
	}
	if (v[K_IDENT]) {
		td_path_fmt(sub, sizeof(sub), "%s.identity_header", path);
		if (td_gw_get_hdr_name(c, v[K_IDENT], sub, a->identity_header) &&
		    td_gw_managed_header(a->identity_header))
			td_cerr(c, v[K_IDENT], "%s: header '%s' is managed by the gateway", sub,
				a->identity_header);
	}
}

static void td_gw_parse_rate_limit(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				   struct td_gw_route_cfg *r)
{
	enum { K_RATE, K_BURST, K_PERIOD, K_KEY, K_N };
	static const char *const keys[K_N] = { "rate", "burst", "period", "key" };
	struct td_gw_ratelimit_cfg *rl = &r->rate_limit;
	yaml_node_t *v[K_N];
	char sub[TD_GW_P];
	const char *s;

	rl->line = td_line(n);
	rl->period_ms = TD_GW_DEF_RL_PERIOD;
	rl->key = TD_RL_KEY_CLIENT_IP;
	if (!td_map_get(c, n, path, keys, K_N, v))
		return;
	rl->on = true;
	td_path_fmt(sub, sizeof(sub), "%s.rate", path);
	if (!v[K_RATE])
		td_cerr(c, n, "%s: missing required key 'rate' (requests per period)", path);
	else
		td_gw_get_u32(c, v[K_RATE], sub, 1, TD_RL_MAX_RATE, &rl->rate);
	rl->burst = rl->rate;
	if (v[K_BURST]) {
		td_path_fmt(sub, sizeof(sub), "%s.burst", path);
		td_gw_get_u32(c, v[K_BURST], sub, 1, TD_RL_MAX_RATE, &rl->burst);
	}
	if (v[K_PERIOD]) {
		td_path_fmt(sub, sizeof(sub), "%s.period", path);
		td_gw_get_ms(c, v[K_PERIOD], sub, 1, TD_RL_MAX_PERIOD_MS, &rl->period_ms);
	}
	if ((uint64_t)rl->burst * rl->period_ms > TD_GW_RL_BURST_PERIOD)
		td_cerr(c, v[K_BURST] ? v[K_BURST] : n, "%s: burst %u times period %ums is too "
			"large (max %llu)", path, rl->burst, rl->period_ms,
			(unsigned long long)TD_GW_RL_BURST_PERIOD);
	if (v[K_KEY]) {
		int k;

		td_path_fmt(sub, sizeof(sub), "%s.key", path);
		if (!td_get_str(c, v[K_KEY], sub, &s))
			return;
		k = td_rl_key_kind_parse(s);
		if (k < 0) {
			td_cerr(c, v[K_KEY], "%s: invalid key '%s' (expected client_ip, api_key or "
				"jwt_sub)", sub, s);
			return;
		}
		rl->key = (uint8_t)k;
		if (k == TD_RL_KEY_API_KEY && r->auth.kind != TD_GW_AUTH_API_KEYS)
			td_cerr(c, v[K_KEY], "%s: key api_key needs auth: { api_keys: ... } on this "
				"route", sub);
		else if (k == TD_RL_KEY_JWT_SUB && r->auth.kind != TD_GW_AUTH_JWT)
			td_cerr(c, v[K_KEY], "%s: key jwt_sub needs auth: { jwt: ... } on this route",
				sub);
	}
}

static void td_gw_parse_hdr_edit(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				 struct td_gw_hdr_edit_cfg *e)
{
	static const char *const keys[] = { "add", "remove" };
	yaml_node_t *v[2];
	char sub[TD_GW_P];
	size_t len;

	e->line = td_line(n);
	if (!td_map_get(c, n, path, keys, 2, v))
		return;
	if (v[0]) {
		td_path_fmt(sub, sizeof(sub), "%s.add", path);
		td_gw_parse_hdr_map(c, v[0], sub, e->add, &e->n_add, TD_GW_MAX_HDR_EDITS, true);
	}
	td_path_fmt(sub, sizeof(sub), "%s.remove", path);
	if (!v[1] || !td_seq_check(c, v[1], sub, &len))
		return;
	if (e->n_add + len > TD_GW_MAX_HDR_EDITS) {
		td_cerr(c, v[1], "%s: too many header edits (%zu added + %zu removed, max %u)", path,
			e->n_add, len, TD_GW_MAX_HDR_EDITS);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = td_seq_item(c, v[1], i);
		char *name = e->remove[e->n_remove], ipath[TD_GW_P];
		bool dup = false;

		td_path_fmt(ipath, sizeof(ipath), "%s[%zu]", sub, i);
		if (!td_gw_get_hdr_name(c, item, ipath, name))
			continue;
		if (td_gw_managed_header(name)) {
			td_cerr(c, item, "%s: header '%s' is managed by the gateway and cannot be "
				"removed", ipath, name);
			continue;
		}
		for (size_t j = 0; j < e->n_remove && !dup; j++)
			dup = !strcasecmp(e->remove[j], name);
		if (dup) {
			td_cerr(c, item, "%s: header '%s' is listed twice", ipath, name);
			continue;
		}
		e->n_remove++;
	}
}

/* ---- routes: aggregate ---------------------------------------------------------------------- */

/*
 * "http://IP[:PORT][/path[?query]]" into m (ep, host, path); NULL or why it is invalid.
 * Literal IPs only (no DNS on the request path), IPv6 in brackets, no userinfo, no fragment.
 */
static const char *td_gw_url_parse(const char *url, struct td_gw_agg_cfg *m)
{
	char host[TD_ADDRSTRLEN];
	const char *auth, *end, *hs, *he, *ps = NULL;
	union td_addr a;
	unsigned long port = 80;
	__u8 fam;

	if (!strncasecmp(url, "https://", 8))
		return "https is not supported for aggregate members (use http:// to a local "
		       "address)";
	if (strncasecmp(url, "http://", 7))
		return "expected http://IP:PORT/path";
	if (!td_gw_visible(url))
		return "spaces and control characters are not allowed";
	if (strchr(url, '#'))
		return "a fragment ('#') is not allowed";
	auth = url + 7;
	end = auth + strcspn(auth, "/?");
	if (memchr(auth, '@', (size_t)(end - auth)))
		return "userinfo ('user@') is not allowed";
	if (end == auth)
		return "no host: expected http://IP:PORT/path";
	if (auth[0] == '[') {
		hs = auth + 1;
		he = memchr(hs, ']', (size_t)(end - hs));
		if (!he)
			return "unterminated '[' in the IPv6 address";
		if (he + 1 < end)
			ps = he + 1;
	} else {
		hs = auth;
		he = memchr(auth, ':', (size_t)(end - auth));
		if (he && memchr(he + 1, ':', (size_t)(end - he - 1)))
			return "IPv6 addresses must be in brackets: http://[::1]:PORT/path";
		if (he)
			ps = he;
		else
			he = end;
	}
	if (ps) {
		char *pe;

		if (*ps != ':' || ps + 1 == end)
			return "expected ':PORT' after the address";
		errno = 0;
		port = strtoul(ps + 1, &pe, 10);
		if (errno || pe != end || ps[1] < '0' || ps[1] > '9' || !port || port > 65535)
			return "the port must be 1..65535";
	}
	if (he == hs || (size_t)(he - hs) >= sizeof(host))
		return "expected a literal IP address (no host names)";
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (td_addr_parse(host, &a, &fam))
		return "expected a literal IP address (no host names)";
	if (fam == TD_AF_INET6 && auth[0] != '[')
		return "IPv6 addresses must be in brackets: http://[::1]:PORT/path";
	if (fam == TD_AF_INET && auth[0] == '[')
		return "only IPv6 addresses go in brackets";
	if ((size_t)(end - auth) >= sizeof(m->host))
		return "the address is too long";
	memcpy(m->host, auth, (size_t)(end - auth));
	m->host[end - auth] = '\0';
	m->ep.sslen = td_sockaddr_from(&a, fam, (__u16)port, &m->ep.ss);
	td_endpoint_format(&a, fam, (__u16)port, m->ep.text, sizeof(m->ep.text));
	snprintf(m->path, sizeof(m->path), "%s%s", *end == '/' ? "" : "/", end);
	return NULL;
}

static void td_gw_parse_aggregate(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				  struct td_gw_route_cfg *r)
{
	/* names of every member so far, valid or not, so one bad url does not hide a duplicate */
	struct { char name[TD_GW_NAME_LEN]; int line; } seen[TD_GW_MAX_AGGREGATE];
	size_t nseen = 0, len;
	char sub[TD_GW_P];

	if (!td_seq_check(c, n, path, &len))
		return;
	if (!len) {
		td_cerr(c, n, "%s: needs at least one member { name, url }", path);
		return;
	}
	if (len > TD_GW_MAX_AGGREGATE) {
		td_cerr(c, n, "%s: too many members (%zu, max %u)", path, len, TD_GW_MAX_AGGREGATE);
		return;
	}
	r->aggregate = calloc(len, sizeof(*r->aggregate));
	if (!r->aggregate) {
		td_cerr(c, n, "%s: out of memory", path);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		enum { K_NAME, K_URL, K_TMO, K_N };
		static const char *const keys[K_N] = { "name", "url", "timeout" };
		struct td_gw_agg_cfg *m = &r->aggregate[r->n_aggregate];
		yaml_node_t *item = td_seq_item(c, n, i), *v[K_N];
		char mpath[TD_GW_P];
		const char *s, *why;
		bool ok = true;

		td_path_fmt(mpath, sizeof(mpath), "%s[%zu]", path, i);
		m->line = td_line(item);
		m->timeout_ms = r->aggregate_timeout_ms;
		if (!td_map_get(c, item, mpath, keys, K_N, v))
			continue;
		td_path_fmt(sub, sizeof(sub), "%s.name", mpath);
		if (!v[K_NAME]) {
			td_cerr(c, item, "%s: missing required key 'name'", mpath);
			ok = false;
		} else if (!td_get_str(c, v[K_NAME], sub, &s)) {
			ok = false;
		} else if (strlen(s) >= TD_GW_NAME_LEN || !td_gw_quotable(s)) {
			td_cerr(c, v[K_NAME], "%s: invalid member name '%s' (a JSON member name of at "
				"most %u characters without '\"', '\\' or control characters)", sub,
				s, TD_GW_NAME_LEN - 1);
			ok = false;
		} else {
			for (size_t j = 0; j < nseen && ok; j++) {
				if (!strcmp(seen[j].name, s)) {
					td_cerr(c, v[K_NAME], "%s: duplicate member name '%s' (first "
						"at line %d)", sub, s, seen[j].line);
					ok = false;
				}
			}
			snprintf(m->name, sizeof(m->name), "%s", s);
			if (ok) {
				snprintf(seen[nseen].name, sizeof(seen[nseen].name), "%s", s);
				seen[nseen++].line = m->line;
			}
		}
		td_path_fmt(sub, sizeof(sub), "%s.url", mpath);
		if (!v[K_URL]) {
			td_cerr(c, item, "%s: missing required key 'url'", mpath);
			ok = false;
		} else if (!td_get_str(c, v[K_URL], sub, &s)) {
			ok = false;
		} else if (strlen(s) >= TD_GW_PATH_LEN) {
			td_cerr(c, v[K_URL], "%s: url is too long (max %u characters)", sub,
				TD_GW_PATH_LEN - 1);
			ok = false;
		} else if ((why = td_gw_url_parse(s, m))) {
			td_cerr(c, v[K_URL], "%s: invalid url '%s': %s", sub, s, why);
			ok = false;
		} else {
			snprintf(m->url, sizeof(m->url), "%s", s);
			m->ep.line = td_line(v[K_URL]);
		}
		if (v[K_TMO]) {
			td_path_fmt(sub, sizeof(sub), "%s.timeout", mpath);
			ok &= td_gw_get_ms(c, v[K_TMO], sub, 1, TD_GW_MAX_AGG_TMO, &m->timeout_ms);
		}
		if (ok)
			r->n_aggregate++;
		else
			memset(m, 0, sizeof(*m));
	}
}

/* ---- routes ------------------------------------------------------------------------------- */

static bool td_gw_hdrs_equal(const struct td_gw_route_cfg *a, const struct td_gw_route_cfg *b)
{
	if (a->n_match_headers != b->n_match_headers)
		return false;
	for (size_t i = 0; i < a->n_match_headers; i++) {
		bool found = false;

		for (size_t j = 0; j < b->n_match_headers && !found; j++)
			found = !strcasecmp(a->match_headers[i].name, b->match_headers[j].name) &&
				!strcmp(a->match_headers[i].value, b->match_headers[j].value);
		if (!found)
			return false;
	}
	return true;
}

/* the same match: the router could never choose the later route */
static bool td_gw_match_equal(const struct td_gw_route_cfg *a, const struct td_gw_route_cfg *b)
{
	return a->methods == b->methods && !strcmp(a->path, b->path) &&
	       !strcmp(a->path_prefix, b->path_prefix) && !strcasecmp(a->host, b->host) &&
	       td_gw_hdrs_equal(a, b);
}

static void td_gw_parse_route(struct td_cfg_ctx *c, yaml_node_t *n, size_t idx,
			      struct td_gw_cfg *g, bool *match_ok)
{
	enum { K_NAME, K_MATCH, K_UPSTREAM, K_STRIP, K_AUTH, K_RL, K_REQH, K_RESPH, K_AGG,
	       K_AGG_TMO, K_N };
	static const char *const keys[K_N] = { "name", "match", "upstream", "strip_prefix",
						"auth", "rate_limit", "request_headers",
						"response_headers", "aggregate", "aggregate_timeout" };
	struct td_gw_route_cfg *r = &g->routes[idx];
	yaml_node_t *v[K_N];
	char path[TD_GW_P], sub[TD_GW_P];
	const char *s;

	td_path_fmt(path, sizeof(path), "gateway.routes[%zu]", idx);
	r->line = td_line(n);
	r->upstream_idx = -1;
	r->aggregate_timeout_ms = TD_GW_DEF_AGG_TMO;
	snprintf(r->name, sizeof(r->name), "route%zu", idx);
	*match_ok = false;
	if (!td_map_get(c, n, path, keys, K_N, v))
		return;

	if (v[K_NAME]) {
		td_path_fmt(sub, sizeof(sub), "%s.name", path);
		if (!td_get_str(c, v[K_NAME], sub, &s)) {
			/* reported */
		} else if (strlen(s) >= TD_GW_NAME_LEN || !td_name_valid(s)) {
			td_cerr(c, v[K_NAME], "%s: invalid route name '%s' (1..%u of A-Z a-z 0-9 _ . -)",
				sub, s, TD_GW_NAME_LEN - 1);
		} else {
			snprintf(r->name, sizeof(r->name), "%s", s);
		}
	}
	for (size_t i = 0; i < idx; i++) {
		if (!strcmp(g->routes[i].name, r->name)) {
			td_cerr(c, v[K_NAME] ? v[K_NAME] : n, "%s: duplicate route name '%s' (route "
				"%zu, line %d)", path, r->name, i, g->routes[i].line);
			break;
		}
	}

	td_path_fmt(sub, sizeof(sub), "%s.match", path);
	*match_ok = v[K_MATCH] ? td_gw_parse_match(c, v[K_MATCH], sub, r) : true;

	if (v[K_UPSTREAM] && v[K_AGG]) {
		td_cerr(c, v[K_AGG], "%s: upstream and aggregate are exclusive (a route either "
			"proxies to one upstream or merges several calls)", path);
	} else if (!v[K_UPSTREAM] && !v[K_AGG]) {
		td_cerr(c, n, "%s: needs upstream (a key of gateway.upstreams) or aggregate", path);
	} else if (v[K_UPSTREAM]) {
		td_path_fmt(sub, sizeof(sub), "%s.upstream", path);
		if (td_gw_get_text(c, v[K_UPSTREAM], sub, r->upstream, sizeof(r->upstream))) {
			for (size_t i = 0; i < g->n_upstreams && r->upstream_idx < 0; i++)
				if (!strcmp(g->upstreams[i].name, r->upstream))
					r->upstream_idx = (int)i;
			if (r->upstream_idx < 0)
				td_cerr(c, v[K_UPSTREAM], "%s: unknown upstream '%s' (not a key of "
					"gateway.upstreams)", sub, r->upstream);
		}
	}
	if (v[K_AGG_TMO]) {
		td_path_fmt(sub, sizeof(sub), "%s.aggregate_timeout", path);
		if (!v[K_AGG])
			td_cerr(c, v[K_AGG_TMO], "%s: only valid with aggregate", sub);
		else
			td_gw_get_ms(c, v[K_AGG_TMO], sub, 1, TD_GW_MAX_AGG_TMO,
				     &r->aggregate_timeout_ms);
	}
	if (v[K_AGG] && !v[K_UPSTREAM]) {
		td_path_fmt(sub, sizeof(sub), "%s.aggregate", path);
		td_gw_parse_aggregate(c, v[K_AGG], sub, r);
	}

	if (v[K_STRIP]) {
		td_path_fmt(sub, sizeof(sub), "%s.strip_prefix", path);
		if (v[K_AGG])
			td_cerr(c, v[K_STRIP], "%s: only valid with upstream (aggregate members "
				"have their own urls)", sub);
		else if (td_gw_get_path(c, v[K_STRIP], sub, r->strip_prefix) && r->path_prefix[0] &&
			 !td_gw_seg_prefix(r->strip_prefix, r->path_prefix))
			td_cerr(c, v[K_STRIP], "%s: '%s' is not a prefix of match.path_prefix '%s', "
				"so it would never be stripped", sub, r->strip_prefix,
				r->path_prefix);
		else if (r->path[0] && !td_gw_seg_prefix(r->strip_prefix, r->path))
			td_cerr(c, v[K_STRIP], "%s: '%s' is not a prefix of match.path '%s', so it "
				"would never be stripped", sub, r->strip_prefix, r->path);
	}
	if (v[K_AUTH]) {
		td_path_fmt(sub, sizeof(sub), "%s.auth", path);
		td_gw_parse_auth(c, v[K_AUTH], sub, &r->auth);
	}
	if (v[K_RL]) {
		td_path_fmt(sub, sizeof(sub), "%s.rate_limit", path);
		td_gw_parse_rate_limit(c, v[K_RL], sub, r);
	}
	if (v[K_REQH]) {
		td_path_fmt(sub, sizeof(sub), "%s.request_headers", path);
		td_gw_parse_hdr_edit(c, v[K_REQH], sub, &r->request_headers);
	}
	if (v[K_RESPH]) {
		td_path_fmt(sub, sizeof(sub), "%s.response_headers", path);
		td_gw_parse_hdr_edit(c, v[K_RESPH], sub, &r->response_headers);
	}
}

static void td_gw_parse_routes(struct td_cfg_ctx *c, yaml_node_t *n, struct td_gw_cfg *g)
{
	bool *match_ok;
	size_t len;

	if (!td_seq_check(c, n, "gateway.routes", &len))
		return;
	if (!len) {
		td_cerr(c, n, "gateway.routes: needs at least one route");
		return;
	}
	if (len > TD_GW_MAX_ROUTES) {
		td_cerr(c, n, "gateway.routes: too many routes (%zu, max %u)", len,
			TD_GW_MAX_ROUTES);
		return;
	}
	g->routes = calloc(len, sizeof(*g->routes));
	match_ok = calloc(len, sizeof(*match_ok));
	if (!g->routes || !match_ok) {
		td_cerr(c, n, "gateway.routes: out of memory");
		free(match_ok);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = td_seq_item(c, n, i);

		td_gw_parse_route(c, item, i, g, &match_ok[i]);
		g->n_routes++;
		for (size_t j = 0; match_ok[i] && j < i; j++) {
			if (match_ok[j] && td_gw_match_equal(&g->routes[j], &g->routes[i])) {
				td_cerr(c, item, "gateway.routes[%zu]: route %zu duplicates route %zu "
					"(line %d): the same match, so it could never be chosen", i,
					i, j, g->routes[j].line);
				match_ok[i] = false;
			}
		}
	}
	free(match_ok);
}

/* ---- entry points ------------------------------------------------------------------------- */

void td_parse_gateway(struct td_cfg_ctx *c, yaml_node_t *n, struct td_config *cfg)
{
	enum { K_LISTEN, K_TLS, K_WORKERS, K_LIMITS, K_TRUSTED, K_REQID, K_LOG, K_UPSTREAMS,
	       K_ROUTES, K_N };
	static const char *const keys[K_N] = { "listen", "tls", "workers", "limits",
						"trusted_proxies", "request_id_header", "access_log",
						"upstreams", "routes" };
	struct td_gw_cfg *g = &cfg->gateway;
	yaml_node_t *v[K_N];
	size_t len;

	memset(g, 0, sizeof(*g));
	g->on = true;
	g->line = td_line(n);
	g->max_request_line = TD_GW_DEF_REQ_LINE;
	g->max_header_size = TD_GW_DEF_HDR_SIZE;
	g->max_headers = TD_GW_DEF_HEADERS;
	g->max_body_size = TD_GW_DEF_BODY;
	g->header_timeout_ms = TD_GW_DEF_HDR_TMO;
	g->idle_timeout_ms = TD_GW_DEF_IDLE_TMO;
	g->body_timeout_ms = TD_GW_DEF_BODY_TMO;
	g->max_conns = TD_GW_DEF_MAX_CONNS;
	snprintf(g->request_id_header, sizeof(g->request_id_header), "X-Request-Id");
	snprintf(g->access_log, sizeof(g->access_log), "stdout");
	g->access_log_format = TD_GW_LOG_COMBINED;
	if (!td_map_get(c, n, "gateway", keys, K_N, v))
		return;

	if (v[K_LISTEN])
		td_gw_parse_listen(c, v[K_LISTEN], "gateway.listen", g->listen, &g->n_listen, NULL,
				   0);
	if (v[K_TLS])
		td_gw_parse_tls(c, v[K_TLS], g);
	if (!v[K_LISTEN] && !v[K_TLS])
		td_cerr(c, n, "gateway: needs listen (e.g. [ \"127.0.0.1:8000\" ]) or tls.listen");
	if (v[K_WORKERS])
		td_gw_get_u32(c, v[K_WORKERS], "gateway.workers", 0, TD_GW_WORKERS_MAX,
			      &g->workers);
	if (v[K_LIMITS])
		td_gw_parse_limits(c, v[K_LIMITS], g);
	if (v[K_TRUSTED] && td_seq_check(c, v[K_TRUSTED], "gateway.trusted_proxies", &len)) {
		if (len > TD_GW_MAX_TRUSTED) {
			td_cerr(c, v[K_TRUSTED], "gateway.trusted_proxies: too many entries (%zu, "
				"max %u)", len, TD_GW_MAX_TRUSTED);
			len = 0;
		}
		for (size_t i = 0; i < len; i++) {
			char path[TD_GW_P];

			td_path_fmt(path, sizeof(path), "gateway.trusted_proxies[%zu]", i);
			td_gw_parse_cidr(c, td_seq_item(c, v[K_TRUSTED], i), path,
					 g->trusted_proxies, &g->n_trusted);
		}
	}
	if (v[K_REQID]) {
		const char *p = "gateway.request_id_header";

		if (td_gw_get_hdr_name(c, v[K_REQID], p, g->request_id_header) &&
		    td_gw_managed_header(g->request_id_header))
			td_cerr(c, v[K_REQID], "%s: header '%s' is managed by the gateway", p,
				g->request_id_header);
	}
	if (v[K_LOG])
		td_gw_parse_access_log(c, v[K_LOG], g);
	/* upstreams first: routes refer to them whatever the order in the file */
	if (v[K_UPSTREAMS])
		td_gw_parse_upstreams(c, v[K_UPSTREAMS], g);
	if (!v[K_ROUTES])
		td_cerr(c, n, "gateway: missing required key 'routes'");
	else
		td_gw_parse_routes(c, v[K_ROUTES], g);
}

void td_gw_cfg_free(struct td_gw_cfg *g)
{
	if (!g)
		return;
	free(g->tls_certs);
	for (size_t i = 0; i < g->n_upstreams; i++)
		free(g->upstreams[i].backends);
	free(g->upstreams);
	for (size_t i = 0; i < g->n_routes; i++) {
		free(g->routes[i].auth.keys);
		free(g->routes[i].aggregate);
	}
	free(g->routes);
	memset(g, 0, sizeof(*g));
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* YAML configuration loader: libyaml document -> strictly validated td_config, errors as FILE:LINE. */
#include <errno.h>
#include <sys/un.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "addr.h"
#include "config.h"
#include "config_yaml.h"
#include "maglev.h"
#include "names.h"

#define TD_CT_MIN       1024u
#define TD_CT_MAX       16777216u
#define TD_MAGLEV_MIN   7u
#define TD_PATH_LEN     96      /* "l4.services[1023].backends[16383].address" fits */
#define TD_HC_INTERVAL_MIN   100u        /* health.interval bounds, ms */
#define TD_HC_INTERVAL_MAX   3600000u
#define TD_HC_INTERVAL_DEF   1000u
#define TD_HC_TIMEOUT_MIN    10u         /* ..interval */
#define TD_HC_TIMEOUT_DEF    500u        /* capped at interval */
#define TD_HC_COUNT_MAX      100         /* rise, fall: 1..100 */
#define TD_HC_RISE_DEF       2u
#define TD_HC_FALL_DEF       3u

/* ---- error list ---------------------------------------------------------------------------- */

static void td_errors_vadd(struct td_errors *e, const char *file, int line, const char *fmt,
			   va_list ap)
{
	char *msg = NULL, *full = NULL, **msgs;

	if (!e)
		return;
	if (vasprintf(&msg, fmt, ap) < 0)
		return;
	if (line > 0) {
		if (asprintf(&full, "%s:%d: %s", file ? file : "<config>", line, msg) < 0)
			full = NULL;
	} else {
		if (asprintf(&full, "%s: %s", file ? file : "<config>", msg) < 0)
			full = NULL;
	}
	free(msg);
	if (!full)
		return;
	msgs = realloc(e->msgs, (e->n + 1) * sizeof(*msgs));
	if (!msgs) {
		free(full);
		return;
	}
	msgs[e->n++] = full;
	e->msgs = msgs;
}

void td_errors_add(struct td_errors *e, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	td_errors_vadd(e, file, line, fmt, ap);
	va_end(ap);
}

void td_errors_free(struct td_errors *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	e->msgs = NULL;
	e->n = 0;
}

/* ---- parser context and node helpers ------------------------------------------------------ */

int td_line(const yaml_node_t *n)
{
	return n ? (int)n->start_mark.line + 1 : 0;
}

void td_cerr(struct td_cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	c->nerr++;
	va_start(ap, fmt);
	td_errors_vadd(c->errs, c->file, td_line(n), fmt, ap);
	va_end(ap);
}

const char *td_node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE: return "a mapping";
	case YAML_SEQUENCE_NODE: return "a list";
	case YAML_SCALAR_NODE: return "a scalar";
	default: return "nothing";
	}
}

const char *td_scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* plain "", "~" or "null": an absent value */
bool td_is_null(const yaml_node_t *n)
{
	const char *v;

	if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = td_scalar(n);
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

yaml_node_t *td_node(struct td_cfg_ctx *c, int idx)
{
	return yaml_document_get_node(c->doc, idx);
}

/*
 * Check that n is a mapping (a null value counts as an empty one) whose keys are all in
 * keys[0..nkeys-1], each at most once; vals[i] receives the value of keys[i] or NULL.
 * Returns false (error reported) when n is not a mapping at all.
 */
bool td_map_get(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
		       const char *const *keys, size_t nkeys, yaml_node_t **vals)
{
	yaml_node_pair_t *p;

	for (size_t i = 0; i < nkeys; i++)
		vals[i] = NULL;
	if (td_is_null(n))
		return true;
	if (n->type != YAML_MAPPING_NODE) {
		td_cerr(c, n, "%s: expected a mapping, got %s", path, td_node_kind(n));
		return false;
	}
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = td_node(c, p->key), *v = td_node(c, p->value);
		size_t i;

		if (!k || !v)
			continue;
		if (k->type != YAML_SCALAR_NODE) {
			td_cerr(c, k, "%s: keys must be strings, got %s", path, td_node_kind(k));
			continue;
		}
		for (i = 0; i < nkeys; i++)
			if (!strcmp(td_scalar(k), keys[i]))
				break;
		if (i == nkeys) {
			td_cerr(c, k, "%s: unknown key '%s'", path, td_scalar(k));
			continue;
		}
		if (vals[i]) {
			td_cerr(c, k, "%s: duplicate key '%s'", path, keys[i]);
			continue;
		}
		vals[i] = v;
	}
	return true;
}

/* A list (a null value counts as empty); returns false (error reported) otherwise. */
bool td_seq_check(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, size_t *len)
{
	*len = 0;
	if (td_is_null(n))
		return true;
	if (n->type != YAML_SEQUENCE_NODE) {
		td_cerr(c, n, "%s: expected a list, got %s", path, td_node_kind(n));
		return false;
	}
	*len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	return true;
}

yaml_node_t *td_seq_item(struct td_cfg_ctx *c, yaml_node_t *n, size_t i)
{
	return td_node(c, n->data.sequence.items.start[i]);
}

/* A non-empty string scalar. */
bool td_get_str(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, const char **out)
{
	if (n->type != YAML_SCALAR_NODE) {
		td_cerr(c, n, "%s: expected a string, got %s", path, td_node_kind(n));
		return false;
	}
	if (td_is_null(n) || !*td_scalar(n)) {
		td_cerr(c, n, "%s: value must not be empty", path);
		return false;
	}
	*out = td_scalar(n);
	return true;
}

/* A plain decimal integer in min..max. */
bool td_get_int(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, long long min,
		       long long max, long long *out)
{
	const char *s;
	char *end;
	long long v;

	if (n->type != YAML_SCALAR_NODE) {
		td_cerr(c, n, "%s: expected an integer, got %s", path, td_node_kind(n));
		return false;
	}
	s = td_scalar(n);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !*s || *end ||
	    !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) || errno == ERANGE) {
		td_cerr(c, n, "%s: expected an integer, got '%s'", path, s);
		return false;
	}
	if (v < min || v > max) {
		td_cerr(c, n, "%s: %lld is out of range %lld..%lld", path, v, min, max);
		return false;
	}
	*out = v;
	return true;
}

bool td_name_valid(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

static bool td_ifname_valid(const char *s)
{
	if (!strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

/* Build a node path such as "l4.services[2].port" (truncation is harmless: messages only). */
void td_path_fmt(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, len, fmt, ap);
	va_end(ap);
}

/* ---- durations ---------------------------------------------------------------------------- */

int td_duration_parse_ms(const char *s, __u64 *ms)
{
	static const struct { const char *name; __u64 ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
	};
	__u64 ip = 0, frac = 0, scale = 1, unit = 0;
	const char *p = s;
	int ndig = 0;

	if (!s || !ms)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++, ndig++) {
		if (ip > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		ip = ip * 10 + (__u64)(*p - '0');
	}
	if (!ndig)
		return -EINVAL;
	if (*p == '.') {
		int nfrac = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, nfrac++) {
			if (nfrac >= 9)
				return -EINVAL;   /* finer than any unit allows in whole ms */
			frac = frac * 10 + (__u64)(*p - '0');
			scale *= 10;
		}
		if (!nfrac)
			return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(p, units[i].name))
			unit = units[i].ms;
	if (!unit)
		return -EINVAL;
	if (ip > UINT64_MAX / unit / 2)
		return -ERANGE;
	if ((frac * unit) % scale)
		return -EINVAL;           /* "1.5ms", "0.0001s": not a whole number of ms */
	*ms = ip * unit + frac * unit / scale;
	return 0;
}

/* "1s", "2.5s" (not "2500ms"), "500ms", "1h": for messages. */
const char *td_ms_fmt(__u64 ms, char *buf, size_t len)
{
	if (ms && ms % 3600000 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms && ms % 60000 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms && ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	return buf;
}

/* A duration scalar in min..max milliseconds. */
bool td_get_duration(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, __u64 min,
			    __u64 max, __u64 *out)
{
	char a[24], b[24];
	const char *s;
	__u64 ms;
	int r;

	if (n->type != YAML_SCALAR_NODE) {
		td_cerr(c, n, "%s: expected a duration, got %s", path, td_node_kind(n));
		return false;
	}
	s = td_scalar(n);
	r = td_duration_parse_ms(s, &ms);
	if (r == -ERANGE || (!r && (ms < min || ms > max))) {
		td_cerr(c, n, "%s: %s is out of range %s..%s", path, s, td_ms_fmt(min, a, sizeof(a)),
			td_ms_fmt(max, b, sizeof(b)));
		return false;
	}
	if (r) {
		td_cerr(c, n,
			"%s: invalid duration '%s' (expected a whole number of milliseconds written as 500ms, 1s, 2.5s, 1m or 1h)",
			path, s);
		return false;
	}
	*out = ms;
	return true;
}

/* ---- sections ----------------------------------------------------------------------------- */

static void td_parse_iface(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			   struct td_config *cfg)
{
	static const char *const keys[] = { "name", "xdp_mode" };
	struct td_iface_cfg *ifc = &cfg->ifaces[cfg->n_ifaces];
	yaml_node_t *v[2];
	char sub[TD_PATH_LEN];
	const char *s;
	bool ok = true;

	memset(ifc, 0, sizeof(*ifc));
	ifc->line = td_line(n);
	ifc->xdp_mode = TD_XDP_NATIVE;
	if (!td_map_get(c, n, path, keys, 2, v))
		return;

	td_path_fmt(sub, sizeof(sub), "%s.name", path);
	if (!v[0]) {
		td_cerr(c, n, "%s: missing required key 'name'", path);
		ok = false;
	} else if (td_get_str(c, v[0], sub, &s)) {
		if (strlen(s) >= TD_IFNAME_LEN) {
			td_cerr(c, v[0], "%s: interface name '%s' is too long (max %d characters)",
				sub, s, TD_IFNAME_LEN - 1);
			ok = false;
		} else if (!td_ifname_valid(s)) {
			td_cerr(c, v[0], "%s: invalid interface name '%s'", sub, s);
			ok = false;
		} else {
			for (size_t i = 0; i < cfg->n_ifaces; i++) {
				if (!strcmp(cfg->ifaces[i].name, s)) {
					td_cerr(c, v[0],
						"%s: duplicate interface '%s' (first at line %d)",
						sub, s, cfg->ifaces[i].line);
					ok = false;
					break;
				}
			}
			if (ok)
				snprintf(ifc->name, sizeof(ifc->name), "%s", s);
		}
	} else {
		ok = false;
	}

	if (v[1]) {
		td_path_fmt(sub, sizeof(sub), "%s.xdp_mode", path);
		if (td_get_str(c, v[1], sub, &s)) {
			int m = td_xdp_mode_parse(s);

			if (m < 0)
				td_cerr(c, v[1], "%s: invalid xdp_mode '%s' (expected native or generic)",
					sub, s);
			else
				ifc->xdp_mode = (__u8)m;
		}
	}
	if (ok)
		cfg->n_ifaces++;
}

int td_listen_parse(const char *s, union td_addr *addr, __u8 *family, __u16 *port)
{
	char host[TD_ADDRSTRLEN];
	const char *colon, *h = s;
	size_t hlen;
	char *end;
	unsigned long p;

	if (!s)
		return -EINVAL;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		h = s + 1;
		hlen = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon)
			return -EINVAL;
		hlen = (size_t)(colon - s);
	}
	if (!hlen || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p < 1 || p > 65535)
		return -EINVAL;
	if (td_addr_parse(host, addr, family))
		return -EINVAL;
	if (s[0] == '[' && *family != TD_AF_INET6)
		return -EINVAL;
	*port = (__u16)p;
	return 0;
}

static void td_parse_node(struct td_cfg_ctx *c, yaml_node_t *n, struct td_config *cfg)
{
	static const char *const keys[] = { "bpffs", "interfaces", "admin_socket",
					    "metrics_listen" };
	yaml_node_t *v[4];
	const char *s;
	size_t len;

	if (!td_map_get(c, n, "node", keys, 4, v))
		return;
	if (v[2] && td_get_str(c, v[2], "node.admin_socket", &s)) {
		if (s[0] != '/')
			td_cerr(c, v[2], "node.admin_socket: must be an absolute path, got '%s'", s);
		else if (strlen(s) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			td_cerr(c, v[2], "node.admin_socket: path is too long for a unix socket");
		else
			snprintf(cfg->admin_socket, sizeof(cfg->admin_socket), "%s", s);
	}
	if (v[3] && td_get_str(c, v[3], "node.metrics_listen", &s)) {
		union td_addr a;
		__u8 fam;
		__u16 port;

		if (!s[0] || !strcmp(s, "off"))
			cfg->metrics_listen[0] = '\0';
		else if (strlen(s) >= sizeof(cfg->metrics_listen) ||
			 td_listen_parse(s, &a, &fam, &port))
			td_cerr(c, v[3], "node.metrics_listen: expected ADDRESS:PORT "
				"(e.g. 127.0.0.1:9469 or [::1]:9469) or off, got '%s'", s);
		else
			snprintf(cfg->metrics_listen, sizeof(cfg->metrics_listen), "%s", s);
	}
	if (v[0] && td_get_str(c, v[0], "node.bpffs", &s)) {
		if (s[0] != '/')
			td_cerr(c, v[0], "node.bpffs: must be an absolute path, got '%s'", s);
		else if (strlen(s) >= sizeof(cfg->bpffs))
			td_cerr(c, v[0], "node.bpffs: path is too long");
		else
			snprintf(cfg->bpffs, sizeof(cfg->bpffs), "%s", s);
	}
	if (v[1] && td_seq_check(c, v[1], "node.interfaces", &len) && len) {
		if (len > TD_MAX_IFACES) {
			td_cerr(c, v[1], "node.interfaces: too many interfaces (%zu, max %d)", len,
				TD_MAX_IFACES);
			return;
		}
		cfg->ifaces = calloc(len, sizeof(*cfg->ifaces));
		if (!cfg->ifaces) {
			td_cerr(c, v[1], "node.interfaces: out of memory");
			return;
		}
		for (size_t i = 0; i < len; i++) {
			char path[TD_PATH_LEN];

			td_path_fmt(path, sizeof(path), "node.interfaces[%zu]", i);
			td_parse_iface(c, td_seq_item(c, v[1], i), path, cfg);
		}
	}
}

static int td_be_cmp(const void *a, const void *b)
{
	const struct td_backend_cfg *x = *(const struct td_backend_cfg *const *)a;
	const struct td_backend_cfg *y = *(const struct td_backend_cfg *const *)b;
	int r = memcmp(x->addr.bytes, y->addr.bytes, sizeof(x->addr.bytes));

	if (r)
		return r;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return x->line < y->line ? -1 : (x->line > y->line);
}

/* Parse one backend into svc->backends[svc->n_backends]; vip_ok/port_ok: service fields valid. */
static void td_parse_backend(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			     struct td_service_cfg *svc, bool vip_ok, bool port_ok)
{
	static const char *const keys[] = { "address", "port", "weight" };
	struct td_backend_cfg *be = &svc->backends[svc->n_backends];
	char sub[TD_PATH_LEN], abuf[TD_ADDRSTRLEN];
	yaml_node_t *v[3];
	const char *s;
	long long x;
	bool ok = true;

	memset(be, 0, sizeof(*be));
	be->line = td_line(n);
	be->weight = 1;
	be->port = svc->port;
	if (!td_map_get(c, n, path, keys, 3, v))
		return;

	td_path_fmt(sub, sizeof(sub), "%s.address", path);
	if (!v[0]) {
		td_cerr(c, n, "%s: missing required key 'address'", path);
		ok = false;
	} else if (td_get_str(c, v[0], sub, &s)) {
		if (td_addr_parse(s, &be->addr, &be->family)) {
			td_cerr(c, v[0], "%s: invalid IP address '%s'", sub, s);
			ok = false;
		} else if (vip_ok && be->family != svc->family) {
			td_cerr(c, v[0], "%s: backend %s is IPv%u but the VIP of service '%s' is IPv%u",
				sub, td_addr_format(&be->addr, be->family, abuf, sizeof(abuf)),
				be->family, svc->name, svc->family);
			ok = false;
		}
	} else {
		ok = false;
	}

	if (v[1]) {
		td_path_fmt(sub, sizeof(sub), "%s.port", path);
		if (td_get_int(c, v[1], sub, 1, 65535, &x)) {
			be->port = (__u16)x;
			if (port_ok && svc->mode == TD_MODE_DSR && be->port != svc->port) {
				td_cerr(c, v[1],
					"%s: mode dsr cannot change the port: backend port %u differs from service port %u",
					sub, be->port, svc->port);
				ok = false;
			}
		} else {
			ok = false;
		}
	}
	if (v[2]) {
		td_path_fmt(sub, sizeof(sub), "%s.weight", path);
		if (td_get_int(c, v[2], sub, 0, 65535, &x))
			be->weight = (__u16)x;
		else
			ok = false;
	}
	if (ok && (port_ok || v[1]))
		svc->n_backends++;
}

static void td_check_dup_backends(struct td_cfg_ctx *c, struct td_service_cfg *svc,
				  const char *path)
{
	struct td_backend_cfg **v;
	char ep[TD_ENDPOINTSTRLEN];

	if (svc->n_backends < 2)
		return;
	v = calloc(svc->n_backends, sizeof(*v));
	if (!v) {
		c->nerr++;
		td_errors_add(c->errs, c->file, svc->line, "%s: out of memory", path);
		return;
	}
	for (size_t i = 0; i < svc->n_backends; i++)
		v[i] = &svc->backends[i];
	qsort(v, svc->n_backends, sizeof(*v), td_be_cmp);
	for (size_t i = 1; i < svc->n_backends; i++) {
		struct td_backend_cfg *a = v[i - 1], *b = v[i];

		if (a->family != b->family || a->port != b->port ||
		    !td_addr_equal(&a->addr, &b->addr))
			continue;
		c->nerr++;
		td_errors_add(c->errs, c->file, b->line,
			      "%s.backends: duplicate backend %s (first at line %d)", path,
			      td_endpoint_format(&b->addr, b->family, b->port, ep, sizeof(ep)),
			      a->line);
	}
	free(v);
}

/* l4.services[].health into hc (zeroed = absent by the caller); errors are reported only. */
void td_parse_health(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
		     struct td_health_cfg *hc)
{
	enum { H_TYPE, H_PATH, H_INTERVAL, H_TIMEOUT, H_RISE, H_FALL, H_PORT, H_N };
	static const char *const keys[H_N] = { "type", "path", "interval", "timeout", "rise",
						"fall", "port" };
	yaml_node_t *v[H_N];
	char sub[TD_PATH_LEN], a[24];
	bool interval_ok = true;
	const char *s;
	long long x;
	__u64 ms;

	hc->line = td_line(n);
	hc->interval_ms = TD_HC_INTERVAL_DEF;
	hc->rise = TD_HC_RISE_DEF;
	hc->fall = TD_HC_FALL_DEF;
	if (!td_map_get(c, n, path, keys, H_N, v))
		return;

	td_path_fmt(sub, sizeof(sub), "%s.type", path);
	if (!v[H_TYPE]) {
		td_cerr(c, n, "%s: missing required key 'type'", path);
	} else if (td_get_str(c, v[H_TYPE], sub, &s)) {
		if (!strcmp(s, "tcp"))
			hc->type = TD_HC_TCP;
		else if (!strcmp(s, "http"))
			hc->type = TD_HC_HTTP;
		else
			td_cerr(c, v[H_TYPE], "%s: invalid health check type '%s' (expected tcp or http)",
				sub, s);
	}

	td_path_fmt(sub, sizeof(sub), "%s.path", path);
	if (v[H_PATH] && td_get_str(c, v[H_PATH], sub, &s)) {
		bool clean = true;

		for (const char *p = s; *p; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f)
				clean = false;
		if (hc->type == TD_HC_TCP)
			td_cerr(c, v[H_PATH], "%s: only valid with type http", sub);
		else if (s[0] != '/')
			td_cerr(c, v[H_PATH], "%s: must start with '/', got '%s'", sub, s);
		else if (strlen(s) >= sizeof(hc->path))
			td_cerr(c, v[H_PATH], "%s: path is too long (max %zu characters)", sub,
				sizeof(hc->path) - 1);
		else if (!clean)
			td_cerr(c, v[H_PATH],
				"%s: invalid character in '%s' (no spaces or control characters)",
				sub, s);
		else
			snprintf(hc->path, sizeof(hc->path), "%s", s);
	}
	if (hc->type == TD_HC_HTTP && !hc->path[0])
		snprintf(hc->path, sizeof(hc->path), "/");

	if (v[H_INTERVAL]) {
		td_path_fmt(sub, sizeof(sub), "%s.interval", path);
		interval_ok = td_get_duration(c, v[H_INTERVAL], sub, TD_HC_INTERVAL_MIN,
					      TD_HC_INTERVAL_MAX, &ms);
		if (interval_ok)
			hc->interval_ms = (__u32)ms;
	}
	hc->timeout_ms = hc->interval_ms < TD_HC_TIMEOUT_DEF ? hc->interval_ms : TD_HC_TIMEOUT_DEF;
	if (v[H_TIMEOUT]) {
		td_path_fmt(sub, sizeof(sub), "%s.timeout", path);
		if (td_get_duration(c, v[H_TIMEOUT], sub, TD_HC_TIMEOUT_MIN, TD_HC_INTERVAL_MAX,
				    &ms)) {
			if (interval_ok && ms > hc->interval_ms)
				td_cerr(c, v[H_TIMEOUT], "%s: %s must not exceed the interval (%s)", sub,
					td_scalar(v[H_TIMEOUT]),
					td_ms_fmt(hc->interval_ms, a, sizeof(a)));
			else
				hc->timeout_ms = (__u32)ms;
		}
	}
	if (v[H_RISE]) {
		td_path_fmt(sub, sizeof(sub), "%s.rise", path);
		if (td_get_int(c, v[H_RISE], sub, 1, TD_HC_COUNT_MAX, &x))
			hc->rise = (__u32)x;
	}
	if (v[H_FALL]) {
		td_path_fmt(sub, sizeof(sub), "%s.fall", path);
		if (td_get_int(c, v[H_FALL], sub, 1, TD_HC_COUNT_MAX, &x))
			hc->fall = (__u32)x;
	}
	if (v[H_PORT]) {
		td_path_fmt(sub, sizeof(sub), "%s.port", path);
		if (td_get_int(c, v[H_PORT], sub, 1, 65535, &x))
			hc->port = (__u16)x;
	}
}

/* A required service name (1..TD_NAME_LEN-1 of [A-Za-z0-9_.-]) into out. */
static bool td_get_name(struct td_cfg_ctx *c, yaml_node_t *parent, yaml_node_t *v,
			const char *path, char out[TD_NAME_LEN])
{
	char sub[TD_PATH_LEN];
	const char *s;

	td_path_fmt(sub, sizeof(sub), "%s.name", path);
	if (!v) {
		td_cerr(c, parent, "%s: missing required key 'name'", path);
		return false;
	}
	if (!td_get_str(c, v, sub, &s))
		return false;
	if (strlen(s) >= TD_NAME_LEN) {
		td_cerr(c, v, "%s: name '%s' is too long (max %d characters)", sub, s,
			TD_NAME_LEN - 1);
		return false;
	}
	if (!td_name_valid(s)) {
		td_cerr(c, v, "%s: invalid character in name '%s' (allowed: A-Z a-z 0-9 _ . -)",
			sub, s);
		return false;
	}
	snprintf(out, TD_NAME_LEN, "%s", s);
	return true;
}

/*
 * A service endpoint: required vip and port, optional proto (left as is when absent).
 * *vip_ok / *port_ok say which parts are usable (backends are checked against them).
 * Returns false when any part is invalid.
 */
static bool td_get_endpoint(struct td_cfg_ctx *c, yaml_node_t *parent, const char *path,
			    yaml_node_t *vvip, yaml_node_t *vport, yaml_node_t *vproto,
			    union td_addr *vip, __u8 *family, __u16 *port, __u8 *proto,
			    bool *vip_ok, bool *port_ok)
{
	char sub[TD_PATH_LEN];
	bool ok = true;
	const char *s;
	long long x;

	*vip_ok = *port_ok = false;
	td_path_fmt(sub, sizeof(sub), "%s.vip", path);
	if (!vvip) {
		td_cerr(c, parent, "%s: missing required key 'vip'", path);
	} else if (td_get_str(c, vvip, sub, &s)) {
		if (td_addr_parse(s, vip, family))
			td_cerr(c, vvip, "%s: invalid IP address '%s'", sub, s);
		else
			*vip_ok = true;
	}
	td_path_fmt(sub, sizeof(sub), "%s.port", path);
	if (!vport) {
		td_cerr(c, parent, "%s: missing required key 'port'", path);
	} else if (td_get_int(c, vport, sub, 1, 65535, &x)) {
		*port = (__u16)x;
		*port_ok = true;
	}
	ok = *vip_ok && *port_ok;
	if (vproto) {
		td_path_fmt(sub, sizeof(sub), "%s.proto", path);
		if (td_get_str(c, vproto, sub, &s)) {
			int pr = td_proto_parse(s);

			if (pr < 0) {
				td_cerr(c, vproto, "%s: invalid proto '%s' (expected tcp or udp)",
					sub, s);
				ok = false;
			} else {
				*proto = (__u8)pr;
			}
		} else {
			ok = false;
		}
	}
	return ok;
}

static void td_parse_service(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			     struct td_config *cfg)
{
	enum { K_NAME, K_VIP, K_PORT, K_PROTO, K_MODE, K_BACKENDS, K_HEALTH, K_N };
	static const char *const keys[K_N] = { "name", "vip", "port", "proto", "mode", "backends",
						"health" };
	struct td_service_cfg *svc = &cfg->services[cfg->n_services];
	bool ok = true, vip_ok = false, port_ok = false, name_ok = false;
	char sub[TD_PATH_LEN], ep[TD_ENDPOINTSTRLEN];
	yaml_node_t *v[K_N];
	const char *s;
	size_t nbe = 0;

	memset(svc, 0, sizeof(*svc));
	svc->line = td_line(n);
	svc->proto = TD_PROTO_TCP;
	svc->mode = TD_MODE_NAT;
	if (!td_map_get(c, n, path, keys, K_N, v))
		return;

	name_ok = td_get_name(c, n, v[K_NAME], path, svc->name);
	for (size_t i = 0; name_ok && i < cfg->n_services; i++) {
		if (!strcmp(cfg->services[i].name, svc->name)) {
			td_cerr(c, v[K_NAME], "%s.name: duplicate service name '%s' (first at line %d)",
				path, svc->name, cfg->services[i].line);
			name_ok = false;
		}
	}
	ok &= name_ok;
	ok &= td_get_endpoint(c, n, path, v[K_VIP], v[K_PORT], v[K_PROTO], &svc->vip,
			      &svc->family, &svc->port, &svc->proto, &vip_ok, &port_ok);
	if (v[K_MODE]) {
		td_path_fmt(sub, sizeof(sub), "%s.mode", path);
		if (td_get_str(c, v[K_MODE], sub, &s)) {
			int m = td_mode_parse(s);

			if (m < 0) {
				td_cerr(c, v[K_MODE], "%s: invalid mode '%s' (expected nat or dsr)",
					sub, s);
				ok = false;
			} else {
				svc->mode = (__u8)m;
			}
		} else {
			ok = false;
		}
	}

	/* (vip, port, proto) must be unique; only meaningful when all three are valid */
	if (ok) {
		for (size_t i = 0; i < cfg->n_services; i++) {
			const struct td_service_cfg *o = &cfg->services[i];

			if (o->family == svc->family && o->port == svc->port &&
			    o->proto == svc->proto && td_addr_equal(&o->vip, &svc->vip)) {
				td_cerr(c, n,
					"%s: duplicate endpoint %s/%s: already used by service '%s' (line %d)",
					path,
					td_endpoint_format(&svc->vip, svc->family, svc->port, ep,
							   sizeof(ep)),
					td_proto_name(svc->proto), o->name, o->line);
				ok = false;
				break;
			}
		}
	}

	td_path_fmt(sub, sizeof(sub), "%s.backends", path);
	if (v[K_BACKENDS] && td_seq_check(c, v[K_BACKENDS], sub, &nbe) && nbe) {
		svc->backends = calloc(nbe, sizeof(*svc->backends));
		if (!svc->backends) {
			td_cerr(c, v[K_BACKENDS], "%s: out of memory", sub);
			nbe = 0;
			ok = false;
		}
		for (size_t i = 0; i < nbe; i++) {
			yaml_node_t *item = td_seq_item(c, v[K_BACKENDS], i);
			size_t before = svc->n_backends;
			char bpath[TD_PATH_LEN];

			if (c->too_many_backends)
				break;
			if (++c->total_backends > TD_MAX_BACKENDS) {
				td_cerr(c, item, "%s[%zu]: too many backends (more than %d in total)",
					sub, i, TD_MAX_BACKENDS);
				c->too_many_backends = true;
				break;
			}
			td_path_fmt(bpath, sizeof(bpath), "%s[%zu]", sub, i);
			td_parse_backend(c, item, bpath, svc, vip_ok, port_ok);
			if (svc->n_backends == before)
				ok = false;
		}
		td_check_dup_backends(c, svc, path);
	}
	if (v[K_HEALTH]) {
		td_path_fmt(sub, sizeof(sub), "%s.health", path);
		td_parse_health(c, v[K_HEALTH], sub, &svc->health);
	}
	/* keep a failed entry out of later duplicate checks; the whole load fails anyway */
	if (ok) {
		cfg->n_services++;
	} else {
		free(svc->backends);
		memset(svc, 0, sizeof(*svc));
	}
}

static void td_parse_l4(struct td_cfg_ctx *c, yaml_node_t *n, struct td_config *cfg)
{
	static const char *const keys[] = { "maglev_size", "conntrack_size", "services" };
	yaml_node_t *v[3];
	long long x;
	size_t len;

	if (!td_map_get(c, n, "l4", keys, 3, v))
		return;
	if (v[0] && td_get_int(c, v[0], "l4.maglev_size", TD_MAGLEV_MIN, TD_MAGLEV_MAX, &x)) {
		if (!td_is_prime((__u32)x))
			td_cerr(c, v[0], "l4.maglev_size: %lld is not a prime number", x);
		else
			cfg->maglev_size = (__u32)x;
	}
	if (v[1] && td_get_int(c, v[1], "l4.conntrack_size", TD_CT_MIN, TD_CT_MAX, &x))
		cfg->conntrack_size = (__u32)x;
	if (v[2] && td_seq_check(c, v[2], "l4.services", &len) && len) {
		size_t n_alloc = len > TD_MAX_SERVICES ? TD_MAX_SERVICES : len;

		cfg->services = calloc(n_alloc, sizeof(*cfg->services));
		if (!cfg->services) {
			td_cerr(c, v[2], "l4.services: out of memory");
			return;
		}
		for (size_t i = 0; i < len; i++) {
			char path[TD_PATH_LEN];

			if (i >= TD_MAX_SERVICES) {
				td_cerr(c, td_seq_item(c, v[2], i),
					"l4.services[%zu]: too many services (max %d)", i,
					TD_MAX_SERVICES);
				break;
			}
			td_path_fmt(path, sizeof(path), "l4.services[%zu]", i);
			td_parse_service(c, td_seq_item(c, v[2], i), path, cfg);
		}
	}
}

/* ---- mesh --------------------------------------------------------------------------------- */

/* true or false (YAML plain scalars only). */
bool td_get_bool(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, bool *out)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
		td_cerr(c, n, "%s: expected true or false, got %s", path,
			n->type == YAML_SCALAR_NODE ? "a quoted string" : td_node_kind(n));
		return false;
	}
	s = td_scalar(n);
	if (!strcmp(s, "true")) {
		*out = true;
	} else if (!strcmp(s, "false")) {
		*out = false;
	} else {
		td_cerr(c, n, "%s: expected true or false, got '%s'", path, s);
		return false;
	}
	return true;
}

/* A cgroup folder relative to mesh.cgroup_root: "a/b", no "", ".", ".." components. */
static bool td_cgroup_rel_valid(const char *s)
{
	const char *p = s;

	if (!*s || *s == '/')
		return false;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (!n || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < ' ' || p[i] == 0x7f)
				return false;
		if (!e)
			break;
		p = e + 1;
		if (!*p)
			return false;   /* trailing slash */
	}
	return true;
}

static struct td_mesh_service_cfg *td_mesh_find(struct td_mesh_cfg *m, const char *name)
{
	for (size_t i = 0; i < m->n_services; i++)
		if (!strcmp(m->services[i].name, name))
			return &m->services[i];
	return NULL;
}

static void td_parse_mesh_service(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				  struct td_mesh_cfg *m)
{
	enum { K_NAME, K_CGROUP, K_VIP, K_PORT, K_PROTO, K_SOCKMAP, K_BACKENDS, K_N };
	static const char *const keys[K_N] = { "name", "cgroup", "vip", "port", "proto",
						"sockmap", "backends" };
	struct td_mesh_service_cfg *svc = &m->services[m->n_services];
	char sub[TD_PATH_LEN], ep[TD_ENDPOINTSTRLEN];
	bool ok = true, vip_ok = false, port_ok = false;
	yaml_node_t *v[K_N];
	const char *s;
	size_t nbe = 0;

	memset(svc, 0, sizeof(*svc));
	svc->line = td_line(n);
	svc->proto = TD_PROTO_TCP;
	svc->sockmap = m->sockmap;
	if (!td_map_get(c, n, path, keys, K_N, v))
		return;

	ok = td_get_name(c, n, v[K_NAME], path, svc->name);
	if (ok && !strcmp(svc->name, TD_MESH_UNKNOWN_NAME)) {
		td_cerr(c, v[K_NAME], "%s.name: '%s' is reserved for cgroups of no service", path,
			svc->name);
		ok = false;
	} else if (ok) {
		const struct td_mesh_service_cfg *o = td_mesh_find(m, svc->name);

		if (o) {
			td_cerr(c, v[K_NAME], "%s.name: duplicate service name '%s' (first at line %d)",
				path, svc->name, o->line);
			ok = false;
		}
	}
	if (!ok)
		svc->name[0] = '\0';

	if (v[K_CGROUP]) {
		td_path_fmt(sub, sizeof(sub), "%s.cgroup", path);
		svc->cgroup_line = td_line(v[K_CGROUP]);
		if (!td_get_str(c, v[K_CGROUP], sub, &s)) {
			ok = false;
		} else if (strlen(s) >= sizeof(svc->cgroup)) {
			td_cerr(c, v[K_CGROUP], "%s: path is too long (max %zu characters)", sub,
				sizeof(svc->cgroup) - 1);
			ok = false;
		} else if (!td_cgroup_rel_valid(s)) {
			td_cerr(c, v[K_CGROUP],
				"%s: '%s' must be a folder relative to mesh.cgroup_root (no leading or trailing '/', no '.' or '..')",
				sub, s);
			ok = false;
		} else {
			for (size_t i = 0; i < m->n_services; i++) {
				if (!strcmp(m->services[i].cgroup, s)) {
					td_cerr(c, v[K_CGROUP],
						"%s: cgroup '%s' already belongs to service '%s' (line %d)",
						sub, s, m->services[i].name, m->services[i].cgroup_line);
					ok = false;
					break;
				}
			}
			snprintf(svc->cgroup, sizeof(svc->cgroup), "%s", s);
		}
	}

	ok &= td_get_endpoint(c, n, path, v[K_VIP], v[K_PORT], v[K_PROTO], &svc->vip,
			      &svc->family, &svc->port, &svc->proto, &vip_ok, &port_ok);
	if (v[K_SOCKMAP]) {
		td_path_fmt(sub, sizeof(sub), "%s.sockmap", path);
		ok &= td_get_bool(c, v[K_SOCKMAP], sub, &svc->sockmap);
	}

	if (ok) {
		for (size_t i = 0; i < m->n_services; i++) {
			const struct td_mesh_service_cfg *o = &m->services[i];

			if (o->family == svc->family && o->port == svc->port &&
			    o->proto == svc->proto && td_addr_equal(&o->vip, &svc->vip)) {
				td_cerr(c, n,
					"%s: duplicate endpoint %s/%s: already used by service '%s' (line %d)",
					path,
					td_endpoint_format(&svc->vip, svc->family, svc->port, ep,
							   sizeof(ep)),
					td_proto_name(svc->proto), o->name, o->line);
				ok = false;
				break;
			}
		}
	}

	td_path_fmt(sub, sizeof(sub), "%s.backends", path);
	if (v[K_BACKENDS] && td_seq_check(c, v[K_BACKENDS], sub, &nbe) && nbe) {
		/* the L4 backend parser, on a service view of this mesh service */
		struct td_service_cfg view = { .family = svc->family, .port = svc->port,
					       .proto = svc->proto, .mode = TD_MODE_NAT,
					       .line = svc->line };

		snprintf(view.name, sizeof(view.name), "%s", svc->name);
		if (nbe > TD_MESH_MAX_BACKENDS) {
			td_cerr(c, v[K_BACKENDS], "%s: too many backends (%zu, max %d)", sub, nbe,
				TD_MESH_MAX_BACKENDS);
			ok = false;
			nbe = 0;
		}
		view.backends = nbe ? calloc(nbe, sizeof(*view.backends)) : NULL;
		if (nbe && !view.backends) {
			td_cerr(c, v[K_BACKENDS], "%s: out of memory", sub);
			ok = false;
			nbe = 0;
		}
		for (size_t i = 0; i < nbe; i++) {
			char bpath[TD_PATH_LEN];
			size_t before = view.n_backends;

			td_path_fmt(bpath, sizeof(bpath), "%s[%zu]", sub, i);
			td_parse_backend(c, td_seq_item(c, v[K_BACKENDS], i), bpath, &view, vip_ok,
					 port_ok);
			if (view.n_backends == before)
				ok = false;
		}
		td_check_dup_backends(c, &view, path);
		svc->backends = view.backends;
		svc->n_backends = view.n_backends;
	}
	if (ok) {
		m->n_services++;
	} else {
		free(svc->backends);
		memset(svc, 0, sizeof(*svc));
	}
}

static void td_parse_mesh_allow(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
				struct td_mesh_cfg *m)
{
	enum { K_FROM, K_TO, K_PORTS, K_N };
	static const char *const keys[K_N] = { "from", "to", "ports" };
	struct td_mesh_allow_cfg *r = &m->allow[m->n_allow];
	const struct td_mesh_service_cfg *to = NULL;
	char sub[TD_PATH_LEN];
	yaml_node_t *v[K_N];
	bool ok = true;
	const char *s;
	size_t np = 0;

	memset(r, 0, sizeof(*r));
	r->line = td_line(n);
	if (!td_map_get(c, n, path, keys, K_N, v))
		return;

	td_path_fmt(sub, sizeof(sub), "%s.from", path);
	if (!v[K_FROM]) {
		td_cerr(c, n, "%s: missing required key 'from'", path);
		ok = false;
	} else if (!td_get_str(c, v[K_FROM], sub, &s)) {
		ok = false;
	} else if (strcmp(s, TD_MESH_UNKNOWN_NAME) && !td_mesh_find(m, s)) {
		td_cerr(c, v[K_FROM], "%s: '%s' is not a mesh service (nor '%s')", sub, s,
			TD_MESH_UNKNOWN_NAME);
		ok = false;
	} else {
		snprintf(r->from, sizeof(r->from), "%s", s);
	}

	td_path_fmt(sub, sizeof(sub), "%s.to", path);
	if (!v[K_TO]) {
		td_cerr(c, n, "%s: missing required key 'to'", path);
		ok = false;
	} else if (!td_get_str(c, v[K_TO], sub, &s)) {
		ok = false;
	} else if (!(to = td_mesh_find(m, s))) {
		td_cerr(c, v[K_TO], "%s: '%s' is not a mesh service", sub, s);
		ok = false;
	} else {
		snprintf(r->to, sizeof(r->to), "%s", s);
	}

	td_path_fmt(sub, sizeof(sub), "%s.ports", path);
	if (v[K_PORTS] && td_seq_check(c, v[K_PORTS], sub, &np)) {
		if (!np) {
			td_cerr(c, v[K_PORTS], "%s: must not be empty (leave it out for any port)",
				sub);
			ok = false;
		} else {
			r->ports = calloc(np, sizeof(*r->ports));
			if (!r->ports) {
				td_cerr(c, v[K_PORTS], "%s: out of memory", sub);
				ok = false;
				np = 0;
			}
		}
		for (size_t i = 0; i < np && r->ports; i++) {
			yaml_node_t *item = td_seq_item(c, v[K_PORTS], i);
			char ppath[TD_PATH_LEN];
			long long x;

			td_path_fmt(ppath, sizeof(ppath), "%s[%zu]", sub, i);
			if (!td_get_int(c, item, ppath, 1, 65535, &x)) {
				ok = false;
				continue;
			}
			if (to && x != to->port) {
				td_cerr(c, item, "%s: port %lld is not the port of service '%s' (%u)",
					ppath, x, to->name, to->port);
				ok = false;
				continue;
			}
			r->ports[r->n_ports++] = (__u16)x;
		}
	}

	/* the same (from, to, port) twice is a mistake worth a line number */
	for (size_t i = 0; ok && i < m->n_allow; i++) {
		const struct td_mesh_allow_cfg *o = &m->allow[i];

		if (strcmp(o->from, r->from) || strcmp(o->to, r->to))
			continue;
		if (!o->n_ports || !r->n_ports) {
			td_cerr(c, n, "%s: rule from '%s' to '%s' overlaps the rule at line %d", path,
				r->from, r->to, o->line);
			ok = false;
			break;
		}
		for (size_t a = 0; ok && a < o->n_ports; a++)
			for (size_t b = 0; ok && b < r->n_ports; b++)
				if (o->ports[a] == r->ports[b]) {
					td_cerr(c, n,
						"%s: rule from '%s' to '%s' port %u overlaps the rule at line %d",
						path, r->from, r->to, r->ports[b], o->line);
					ok = false;
				}
	}
	if (ok) {
		m->n_allow++;
	} else {
		free(r->ports);
		memset(r, 0, sizeof(*r));
	}
}

static void td_parse_mesh(struct td_cfg_ctx *c, yaml_node_t *n, struct td_config *cfg)
{
	enum { K_ROOT, K_SOCKMAP, K_POLICY, K_SERVICES, K_ALLOW, K_N };
	static const char *const keys[K_N] = { "cgroup_root", "sockmap", "default_policy",
						"services", "allow" };
	struct td_mesh_cfg *m = &cfg->mesh;
	yaml_node_t *v[K_N];
	const char *s;
	size_t len;

	m->present = true;
	if (!td_map_get(c, n, "mesh", keys, K_N, v))
		return;
	if (v[K_ROOT] && td_get_str(c, v[K_ROOT], "mesh.cgroup_root", &s)) {
		if (s[0] != '/')
			td_cerr(c, v[K_ROOT], "mesh.cgroup_root: must be an absolute path, got '%s'", s);
		else if (strlen(s) >= sizeof(m->cgroup_root))
			td_cerr(c, v[K_ROOT], "mesh.cgroup_root: path is too long");
		else
			snprintf(m->cgroup_root, sizeof(m->cgroup_root), "%s", s);
	}
	if (v[K_SOCKMAP])
		td_get_bool(c, v[K_SOCKMAP], "mesh.sockmap", &m->sockmap);
	if (v[K_POLICY] && td_get_str(c, v[K_POLICY], "mesh.default_policy", &s)) {
		if (!strcmp(s, "deny"))
			m->default_policy = TD_MESH_POLICY_DENY;
		else if (!strcmp(s, "allow"))
			m->default_policy = TD_MESH_POLICY_ALLOW;
		else
			td_cerr(c, v[K_POLICY],
				"mesh.default_policy: invalid policy '%s' (expected deny or allow)", s);
	}
	if (v[K_SERVICES] && td_seq_check(c, v[K_SERVICES], "mesh.services", &len) && len) {
		size_t max = TD_MESH_MAX_SERVICES - 1;

		m->services = calloc(len > max ? max : len, sizeof(*m->services));
		if (!m->services) {
			td_cerr(c, v[K_SERVICES], "mesh.services: out of memory");
			return;
		}
		for (size_t i = 0; i < len; i++) {
			char path[TD_PATH_LEN];

			if (i >= max) {
				td_cerr(c, td_seq_item(c, v[K_SERVICES], i),
					"mesh.services[%zu]: too many services (max %zu)", i, max);
				break;
			}
			td_path_fmt(path, sizeof(path), "mesh.services[%zu]", i);
			td_parse_mesh_service(c, td_seq_item(c, v[K_SERVICES], i), path, m);
		}
	}
	if (v[K_ALLOW] && td_seq_check(c, v[K_ALLOW], "mesh.allow", &len) && len) {
		if (len > TD_MESH_MAX_RULES) {
			td_cerr(c, v[K_ALLOW], "mesh.allow: too many rules (%zu, max %d)", len,
				TD_MESH_MAX_RULES);
			return;
		}
		m->allow = calloc(len, sizeof(*m->allow));
		if (!m->allow) {
			td_cerr(c, v[K_ALLOW], "mesh.allow: out of memory");
			return;
		}
		for (size_t i = 0; i < len; i++) {
			char path[TD_PATH_LEN];

			td_path_fmt(path, sizeof(path), "mesh.allow[%zu]", i);
			td_parse_mesh_allow(c, td_seq_item(c, v[K_ALLOW], i), path, m);
		}
	}
}

static void td_parse_root(struct td_cfg_ctx *c, yaml_node_t *root, struct td_config *cfg)
{
	static const char *const keys[] = { "node", "l4", "mesh", "gateway", "forward_proxy" };
	yaml_node_t *v[5];

	if (!td_map_get(c, root, "top level", keys, 5, v))
		return;
	if (v[0])
		td_parse_node(c, v[0], cfg);
	if (v[1])
		td_parse_l4(c, v[1], cfg);
	if (v[2])
		td_parse_mesh(c, v[2], cfg);
	if (v[3])
		td_parse_gateway(c, v[3], cfg);
	if (v[4])
		td_parse_forward_proxy(c, v[4], cfg);
}

struct td_err_ent {
	long line;
	size_t idx;
	char *msg;
};

static int td_err_ent_cmp(const void *a, const void *b)
{
	const struct td_err_ent *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Order messages [from, e->n) by line (stable), so output follows the file. */
static void td_errors_sort(struct td_errors *e, size_t from, const char *file)
{
	size_t n, flen = strlen(file);
	struct td_err_ent *v;

	if (!e || e->n <= from + 1)
		return;
	n = e->n - from;
	v = calloc(n, sizeof(*v));
	if (!v)
		return;   /* unsorted is still correct */
	for (size_t i = 0; i < n; i++) {
		char *m = e->msgs[from + i];

		v[i].idx = i;
		v[i].msg = m;
		v[i].line = 0;
		if (!strncmp(m, file, flen) && m[flen] == ':')
			v[i].line = strtol(m + flen + 1, NULL, 10);
	}
	qsort(v, n, sizeof(*v), td_err_ent_cmp);
	for (size_t i = 0; i < n; i++)
		e->msgs[from + i] = v[i].msg;
	free(v);
}

/* ---- entry points ------------------------------------------------------------------------- */

void td_config_free(struct td_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_services; i++)
		free(cfg->services[i].backends);
	free(cfg->services);
	free(cfg->ifaces);
	for (size_t i = 0; i < cfg->mesh.n_services; i++)
		free(cfg->mesh.services[i].backends);
	free(cfg->mesh.services);
	for (size_t i = 0; i < cfg->mesh.n_allow; i++)
		free(cfg->mesh.allow[i].ports);
	free(cfg->mesh.allow);
	td_gw_cfg_free(&cfg->gateway);
	td_fp_cfg_free(&cfg->forward_proxy);
	memset(cfg, 0, sizeof(*cfg));
}

/* Line (1-based) of byte offset off in buf, for reader errors that carry only an offset. */
static int td_offset_line(const char *buf, size_t len, size_t off)
{
	int line = 1;

	for (size_t i = 0; i < off && i < len; i++)
		if (buf[i] == '\n')
			line++;
	return line;
}

static void td_yaml_error(struct td_cfg_ctx *c, yaml_parser_t *p, const char *buf, size_t len)
{
	int line;

	c->nerr++;
	if (p->error == YAML_READER_ERROR)
		line = td_offset_line(buf, len, p->problem_offset);
	else if (p->error == YAML_MEMORY_ERROR)
		line = 0;
	else
		line = (int)p->problem_mark.line + 1;
	if (p->context)
		td_errors_add(c->errs, c->file, line, "YAML syntax error: %s %s",
			      p->problem ? p->problem : "invalid YAML", p->context);
	else
		td_errors_add(c->errs, c->file, line, "YAML syntax error: %s",
			      p->problem ? p->problem : "invalid YAML");
}

int td_config_load_buf(const char *name, const char *buf, size_t len, struct td_config *cfg,
		       struct td_errors *errs)
{
	struct td_config tmp;
	struct td_cfg_ctx c = { .file = name ? name : "<config>", .errs = errs };
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	bool parser_ok = false, doc_ok = false;
	yaml_node_t *root;
	size_t errs_from = errs ? errs->n : 0;
	int err = 0;

	if (!cfg || (!buf && len))
		return -EINVAL;
	memset(cfg, 0, sizeof(*cfg));
	memset(&tmp, 0, sizeof(tmp));
	snprintf(tmp.bpffs, sizeof(tmp.bpffs), "%s", TD_BPFFS_DEFAULT);
	snprintf(tmp.admin_socket, sizeof(tmp.admin_socket), "%s", TD_ADMIN_SOCKET_DEFAULT);
	snprintf(tmp.metrics_listen, sizeof(tmp.metrics_listen), "%s", TD_METRICS_LISTEN_DEFAULT);
	tmp.maglev_size = TD_MAGLEV_DEFAULT;
	tmp.conntrack_size = TD_CT_DEFAULT;

	if (!yaml_parser_initialize(&parser)) {
		err = -ENOMEM;
		goto cleanup;
	}
	parser_ok = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)(buf ? buf : ""), len);
	if (!yaml_parser_load(&parser, &doc)) {
		td_yaml_error(&c, &parser, buf, len);
		err = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
		goto cleanup;
	}
	doc_ok = true;
	c.doc = &doc;

	root = yaml_document_get_root_node(&doc);
	if (root) {
		/* a second document is almost certainly a mistake (a stray "---") */
		if (!yaml_parser_load(&parser, &extra)) {
			td_yaml_error(&c, &parser, buf, len);
		} else {
			yaml_node_t *r2 = yaml_document_get_root_node(&extra);

			if (r2)
				td_cerr(&c, r2, "only one YAML document is allowed");
			yaml_document_delete(&extra);
		}
		td_parse_root(&c, root, &tmp);
	}
	if (c.nerr)
		err = -EINVAL;
	td_errors_sort(errs, errs_from, c.file);

cleanup:
	if (doc_ok)
		yaml_document_delete(&doc);
	if (parser_ok)
		yaml_parser_delete(&parser);
	if (err) {
		td_config_free(&tmp);
		return err;
	}
	*cfg = tmp;
	return 0;
}

int td_config_load(const char *path, struct td_config *cfg, struct td_errors *errs)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	FILE *f = NULL;
	int err = 0;

	if (!path || !cfg)
		return -EINVAL;
	memset(cfg, 0, sizeof(*cfg));
	if (strlen(path) >= sizeof(cfg->path)) {
		td_errors_add(errs, path, 0, "path is too long");
		err = -ENAMETOOLONG;
		goto cleanup;
	}
	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		td_errors_add(errs, path, 0, "cannot open: %s", strerror(-err));
		goto cleanup;
	}
	for (;;) {
		size_t got;

		if (len == cap) {
			char *nb;

			cap = cap ? cap * 2 : 16384;
			nb = realloc(buf, cap);
			if (!nb) {
				err = -ENOMEM;
				td_errors_add(errs, path, 0, "out of memory");
				goto cleanup;
			}
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f)) {
				err = -EIO;
				td_errors_add(errs, path, 0, "read error");
				goto cleanup;
			}
			break;
		}
	}
	err = td_config_load_buf(path, buf, len, cfg, errs);
	if (!err)
		snprintf(cfg->path, sizeof(cfg->path), "%s", path);

cleanup:
	if (f)
		fclose(f);
	free(buf);
	return err;
}

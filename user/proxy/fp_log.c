/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forward proxy access log lines (Squid native, combined) and the td_fp_* metrics families. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fp_internal.h"
#include "server.h"

#define LD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)

const char *td_fp_code_name(unsigned int code)
{
	static const char *const n[] = {
		"TCP_MISS", "TCP_HIT", "TCP_REFRESH_UNMODIFIED", "TCP_REFRESH_MODIFIED",
		"TCP_DENIED", "TCP_TUNNEL", "NONE",
	};

	return code <= TD_FP_C_NONE ? n[code] : "NONE";
}

/* bounded appender, len counts past size */
struct td_fp_out {
	char *p;
	size_t size, len;
};

static void td_fp_put(struct td_fp_out *o, const char *s, size_t n)
{
	if (o->len + 1 < o->size) {
		size_t room = o->size - o->len - 1;

		memcpy(o->p + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

/* a field without spaces or controls (Squid logs URLs raw; we escape what would split a line) */
static void td_fp_field(struct td_fp_out *o, const char *s, size_t n, bool quoted)
{
	static const char hex[] = "0123456789ABCDEF";

	if (!s || !n) {
		td_fp_put(o, "-", 1);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (c < 0x21 || c >= 0x7f || c == '"' || c == '\\' || (c == ' ' && !quoted))
			td_fp_put(o, e, 3);
		else
			td_fp_put(o, s + i, 1);
	}
}

static void td_fp_num(struct td_fp_out *o, const char *fmt, unsigned long long v)
{
	char t[32];
	int n = snprintf(t, sizeof(t), fmt, v);

	td_fp_put(o, t, (size_t)n);
}

size_t td_fp_log_format(uint8_t format, const struct td_fp_log_rec *r, char *out, size_t size)
{
	struct td_fp_out o = { out, size, 0 };
	char t[64];

	if (format == TD_FP_LOG_COMBINED) {
		time_t s = (time_t)(r->time_ms / 1000);
		struct tm tm;

		localtime_r(&s, &tm);
		strftime(t, sizeof(t), "[%d/%b/%Y:%H:%M:%S %z]", &tm);
		td_fp_field(&o, r->client, r->client ? strlen(r->client) : 0, false);
		td_fp_put(&o, " - ", 3);
		td_fp_field(&o, r->ident, r->ident ? strlen(r->ident) : 0, false);
		td_fp_put(&o, " ", 1);
		td_fp_put(&o, t, strlen(t));
		td_fp_put(&o, " \"", 2);
		td_fp_field(&o, r->method, r->method_len, false);
		td_fp_put(&o, " ", 1);
		td_fp_field(&o, r->url, r->url_len, false);
		td_fp_put(&o, r->version == 10 ? " HTTP/1.0\" " : " HTTP/1.1\" ", 11);
		td_fp_num(&o, "%llu ", r->status);
		td_fp_num(&o, "%llu \"", (unsigned long long)r->bytes);
		td_fp_field(&o, r->referer, r->referer_len, true);
		td_fp_put(&o, "\" \"", 3);
		td_fp_field(&o, r->ua, r->ua_len, true);
		td_fp_put(&o, "\"\n", 2);
	} else {
		/* Squid native: time.ms elapsed client code/status bytes method URL ident hier type */
		snprintf(t, sizeof(t), "%llu.%03llu %6llu ", (unsigned long long)(r->time_ms / 1000),
			 (unsigned long long)(r->time_ms % 1000), (unsigned long long)r->elapsed_ms);
		td_fp_put(&o, t, strlen(t));
		td_fp_field(&o, r->client, r->client ? strlen(r->client) : 0, false);
		td_fp_put(&o, " ", 1);
		td_fp_put(&o, td_fp_code_name(r->code), strlen(td_fp_code_name(r->code)));
		td_fp_num(&o, "/%03llu ", r->status);
		td_fp_num(&o, "%llu ", (unsigned long long)r->bytes);
		td_fp_field(&o, r->method, r->method_len, false);
		td_fp_put(&o, " ", 1);
		td_fp_field(&o, r->url, r->url_len, false);
		td_fp_put(&o, " ", 1);
		td_fp_field(&o, r->ident, r->ident ? strlen(r->ident) : 0, false);
		if (r->peer) {
			td_fp_put(&o, " HIER_DIRECT/", 13);
			td_fp_field(&o, r->peer, strlen(r->peer), false);
		} else {
			td_fp_put(&o, " HIER_NONE/-", 12);
		}
		td_fp_put(&o, " ", 1);
		td_fp_field(&o, r->ctype, r->ctype_len, false);
		td_fp_put(&o, "\n", 1);
	}
	if (size)
		out[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}

void td_fp_log_line(struct td_gw_log *l, const char *line, size_t len)
{
	/* the gateway's writer: one mutex, one fwrite per line, flushed for stdout/stderr */
	if (!l || !l->f)
		return;
	pthread_mutex_lock(&l->mu);
	if (l->f) {
		fwrite(line, 1, len, l->f);
		if (!l->own)
			fflush(l->f);
	}
	pthread_mutex_unlock(&l->mu);
}

/* ---- metrics ------------------------------------------------------------------------------ */

static void td_fp_fam(struct td_metrics_buf *o, const char *name, const char *type,
		      const char *help)
{
	td_metrics_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void td_fp_one(struct td_metrics_buf *o, const char *name, const char *type,
		      const char *help, uint64_t v)
{
	td_fp_fam(o, name, type, help);
	td_metrics_buf_printf(o, "%s %llu\n", name, (unsigned long long)v);
}

int td_fp_metrics_render(const struct td_fp_wstat *w, unsigned int nw,
			 const struct td_hs_stats *st, const struct td_cache_store_stats *cs,
			 struct td_metrics_buf *o)
{
	static const char *const cls[TD_GW_NCLASS] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
	struct td_fp_wstat s;

	memset(&s, 0, sizeof(s));
	for (unsigned int i = 0; i < nw; i++) {
		const uint64_t *a = (const uint64_t *)&w[i];
		uint64_t *b = (uint64_t *)&s;

		for (size_t k = 0; k < sizeof(s) / sizeof(uint64_t); k++)
			b[k] += LD(&a[k]);
	}
	td_fp_fam(o, "td_fp_requests_total", "counter",
		  "Requests handled by the forward proxy by method and status class.");
	for (unsigned int m = 0; m < TD_FP_M_MAX; m++)
		for (unsigned int c = 0; c < TD_GW_NCLASS; c++)
			if (s.req[m][c] || (m == TD_FP_M_GET && c == 1))
				td_metrics_buf_printf(o, "td_fp_requests_total{method=\"%s\","
						      "class=\"%s\"} %llu\n", td_fp_meth_name(m),
						      cls[c], (unsigned long long)s.req[m][c]);
	td_fp_fam(o, "td_fp_denied_total", "counter", "Requests denied by rule.");
	for (unsigned int r = 0; r < TD_FP_R_MAX; r++)
		td_metrics_buf_printf(o, "td_fp_denied_total{rule=\"%s\"} %llu\n",
				      td_fp_rule_name(r), (unsigned long long)s.denied[r]);
	td_fp_one(o, "td_fp_cache_hits_total", "counter", "Responses served from the cache.",
		  s.cache_hits);
	td_fp_one(o, "td_fp_cache_misses_total", "counter",
		  "Cacheable requests forwarded without a usable stored response.", s.cache_misses);
	td_fp_one(o, "td_fp_cache_revalidations_total", "counter",
		  "Stored responses revalidated with the origin.", s.cache_revalidated);
	td_fp_one(o, "td_fp_cache_revalidated_unmodified_total", "counter",
		  "Revalidations answered 304 (served from the cache).", s.cache_refreshed);
	td_fp_one(o, "td_fp_cache_stored_total", "counter", "Responses stored.", s.cache_stored);
	td_fp_one(o, "td_fp_cache_collapsed_total", "counter",
		  "Requests that waited for another request's origin fetch.", s.cache_collapsed);
	td_fp_one(o, "td_fp_cache_served_bytes_total", "counter",
		  "Body bytes served from the cache.", s.cache_bytes);
	td_fp_one(o, "td_fp_cache_bytes", "gauge", "Bytes held by the cache.",
		  cs ? cs->bytes : 0);
	td_fp_one(o, "td_fp_cache_objects", "gauge", "Objects held by the cache.",
		  cs ? cs->objects : 0);
	td_fp_one(o, "td_fp_cache_evictions_total", "counter", "Objects evicted for space.",
		  cs ? cs->evictions : 0);
	td_fp_one(o, "td_fp_tunnels_total", "counter", "CONNECT and transparent TLS tunnels.",
		  s.tunnels);
	td_fp_one(o, "td_fp_tunnels_open", "gauge", "Tunnels open.", st ? st->tunnels_open : 0);
	td_fp_one(o, "td_fp_tunnel_bytes_total", "counter", "Bytes relayed by tunnels (both ways).",
		  s.tunnel_bytes);
	td_fp_one(o, "td_fp_dns_lookups_total", "counter", "DNS lookups sent to the resolver.",
		  s.dns_lookups);
	td_fp_one(o, "td_fp_dns_cache_hits_total", "counter", "DNS answers from the cache.",
		  s.dns_cache_hits);
	td_fp_one(o, "td_fp_dns_failures_total", "counter", "DNS lookups that failed (502).",
		  s.dns_failures);
	td_fp_one(o, "td_fp_dns_timeouts_total", "counter", "DNS lookups that timed out (504).",
		  s.dns_timeouts);
	if (st) {
		td_fp_one(o, "td_fp_connections_accepted_total", "counter",
			  "Downstream connections accepted.", st->conns_accepted);
		td_fp_one(o, "td_fp_connections_rejected_total", "counter",
			  "Downstream connections closed at once (over max_conns).",
			  st->conns_rejected);
		td_fp_one(o, "td_fp_connections_open", "gauge", "Downstream connections open.",
			  st->conns_open);
		td_fp_one(o, "td_fp_parse_errors_total", "counter",
			  "Requests answered 400/413/414/431/501/505 by the HTTP parser.",
			  st->parse_errors);
		td_fp_one(o, "td_fp_header_timeouts_total", "counter",
			  "Request heads not complete in time (408).", st->header_timeouts);
		td_fp_one(o, "td_fp_upstream_connections_open", "gauge",
			  "Upstream connections open (pooled too).", st->upstream_conns_open);
		td_fp_one(o, "td_fp_upstream_reused_total", "counter",
			  "Requests sent on a pooled upstream connection.", st->upstream_reused);
		td_fp_one(o, "td_fp_upstream_errors_total", "counter",
			  "Failed upstream attempts.", st->upstream_errors);
	}
	return o->err;
}

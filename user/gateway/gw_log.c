/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Gateway access log: NCSA combined (+ rt, upstream, route, rid) or JSON lines, one shared file. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"
#include "log.h"

/* a bounded appender: len keeps counting past size so callers learn the length needed */
struct td_gw_out {
	char *p;
	size_t size;
	size_t len;
};

static void td_gw_putc(struct td_gw_out *o, char c)
{
	if (o->len + 1 < o->size)
		o->p[o->len] = c;
	o->len++;
}

static void td_gw_puts(struct td_gw_out *o, const char *s, size_t n)
{
	if (o->len + 1 < o->size) {
		size_t room = o->size - o->len - 1;

		memcpy(o->p + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static void td_gw_printf(struct td_gw_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void td_gw_printf(struct td_gw_out *o, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		td_gw_puts(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static const char td_gw_hex[] = "0123456789abcdef";

/* NGINX style: '"', '\\', controls and bytes >= 0x7f become \xHH */
static void td_gw_esc_combined(struct td_gw_out *o, const char *s, size_t n)
{
	if (!s) {
		td_gw_putc(o, '-');
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
			char e[4] = { '\\', 'x', td_gw_hex[c >> 4], td_gw_hex[c & 15] };

			td_gw_puts(o, e, 4);
		} else {
			td_gw_putc(o, (char)c);
		}
	}
}

/* a JSON string (with quotes); bytes >= 0x7f as \u00HH so every line stays valid JSON */
static void td_gw_esc_json(struct td_gw_out *o, const char *s, size_t n)
{
	if (!s) {
		td_gw_puts(o, "null", 4);
		return;
	}
	td_gw_putc(o, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			td_gw_putc(o, '\\');
			td_gw_putc(o, (char)c);
		} else if (c == '\n') {
			td_gw_puts(o, "\\n", 2);
		} else if (c == '\r') {
			td_gw_puts(o, "\\r", 2);
		} else if (c == '\t') {
			td_gw_puts(o, "\\t", 2);
		} else if (c < 0x20 || c >= 0x7f) {
			char e[6] = { '\\', 'u', '0', '0', td_gw_hex[c >> 4], td_gw_hex[c & 15] };

			td_gw_puts(o, e, 6);
		} else {
			td_gw_putc(o, (char)c);
		}
	}
	td_gw_putc(o, '"');
}

static size_t td_gw_sl(const char *s)
{
	return s ? strlen(s) : 0;
}

/* the formatted time of one second, cached per thread (localtime_r takes a lock) */
static const char *td_gw_log_time(uint8_t format, time_t t)
{
	static __thread time_t cached_t[2] = { -1, -1 };
	static __thread char cached[2][40];
	unsigned int k = format == TD_GW_LOG_JSON;
	struct tm tm;

	if (cached_t[k] != t) {
		localtime_r(&t, &tm);
		if (k) {
			char z[8];

			strftime(cached[k], sizeof(cached[k]), "%Y-%m-%dT%H:%M:%S", &tm);
			strftime(z, sizeof(z), "%z", &tm);	/* +hhmm -> +hh:mm */
			snprintf(cached[k] + strlen(cached[k]), sizeof(cached[k]) - strlen(cached[k]),
				 "%.3s:%.2s", z, z + 3);
		} else {
			strftime(cached[k], sizeof(cached[k]), "%d/%b/%Y:%H:%M:%S %z", &tm);
		}
		cached_t[k] = t;
	}
	return cached[k];
}

size_t td_gw_log_format(uint8_t format, const struct td_gw_log_rec *r, char *out, size_t size)
{
	struct td_gw_out o = { out, size, 0 };
	const char *ts = td_gw_log_time(format, r->time);
	unsigned long long ms = r->rt_ns / 1000000u;

	if (format == TD_GW_LOG_JSON) {
		td_gw_puts(&o, "{\"remote_addr\":", 15);
		td_gw_esc_json(&o, r->client, td_gw_sl(r->client));
		td_gw_puts(&o, ",\"identity\":", 12);
		td_gw_esc_json(&o, r->identity, td_gw_sl(r->identity));
		td_gw_printf(&o, ",\"time\":\"%s\",\"method\":", ts);
		td_gw_esc_json(&o, r->method, r->method_len);
		td_gw_puts(&o, ",\"target\":", 10);
		td_gw_esc_json(&o, r->target, r->target_len);
		td_gw_printf(&o, ",\"protocol\":\"HTTP/1.%u\",\"status\":%u,\"bytes\":%llu,"
			     "\"referer\":", r->version == 10 ? 0u : 1u, r->status,
			     (unsigned long long)r->bytes);
		td_gw_esc_json(&o, r->referer, r->referer_len);
		td_gw_puts(&o, ",\"user_agent\":", 14);
		td_gw_esc_json(&o, r->ua, r->ua_len);
		td_gw_printf(&o, ",\"rt\":%llu.%03llu,\"upstream\":", ms / 1000, ms % 1000);
		td_gw_esc_json(&o, r->upstream, td_gw_sl(r->upstream));
		td_gw_puts(&o, ",\"route\":", 9);
		td_gw_esc_json(&o, r->route, td_gw_sl(r->route));
		td_gw_puts(&o, ",\"rid\":", 7);
		td_gw_esc_json(&o, r->rid, td_gw_sl(r->rid));
		td_gw_puts(&o, "}\n", 2);
	} else {
		td_gw_esc_combined(&o, r->client, td_gw_sl(r->client));
		td_gw_puts(&o, " - ", 3);
		td_gw_esc_combined(&o, r->identity, td_gw_sl(r->identity));
		td_gw_printf(&o, " [%s] \"", ts);
		td_gw_esc_combined(&o, r->method, r->method_len);
		td_gw_putc(&o, ' ');
		td_gw_esc_combined(&o, r->target, r->target_len);
		td_gw_printf(&o, " HTTP/1.%u\" %u %llu \"", r->version == 10 ? 0u : 1u, r->status,
			     (unsigned long long)r->bytes);
		td_gw_esc_combined(&o, r->referer, r->referer_len);
		td_gw_puts(&o, "\" \"", 3);
		td_gw_esc_combined(&o, r->ua, r->ua_len);
		td_gw_printf(&o, "\" rt=%llu.%03llu upstream=", ms / 1000, ms % 1000);
		td_gw_esc_combined(&o, r->upstream, td_gw_sl(r->upstream));
		td_gw_puts(&o, " route=", 7);
		td_gw_esc_combined(&o, r->route, td_gw_sl(r->route));
		td_gw_puts(&o, " rid=", 5);
		td_gw_esc_combined(&o, r->rid, td_gw_sl(r->rid));
		td_gw_putc(&o, '\n');
	}
	if (size)
		out[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}

/* ---- the file ----------------------------------------------------------------------------- */

static int td_gw_log_openf(struct td_gw_log *l, FILE **f)
{
	if (!strcmp(l->path, "off")) {
		*f = NULL;
		return 0;
	}
	if (!strcmp(l->path, "stdout") || !strcmp(l->path, "stderr")) {
		*f = !strcmp(l->path, "stdout") ? stdout : stderr;
		return 0;
	}
	*f = fopen(l->path, "ae");
	if (!*f)
		return -errno;
	/* one write(2) per line: lines are never split between writers or left in a buffer */
	setvbuf(*f, NULL, _IOLBF, 0);
	return 0;
}

struct td_gw_log *td_gw_log_open(const char *path, uint8_t format)
{
	struct td_gw_log *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return NULL;
	l->refs = 1;
	l->format = format;
	snprintf(l->path, sizeof(l->path), "%s", path && *path ? path : "stdout");
	l->own = strcmp(l->path, "off") && strcmp(l->path, "stdout") && strcmp(l->path, "stderr");
	rc = td_gw_log_openf(l, &l->f);
	if (rc) {
		free(l);
		errno = -rc;
		return NULL;
	}
	pthread_mutex_init(&l->mu, NULL);
	return l;
}

struct td_gw_log *td_gw_log_ref(struct td_gw_log *l)
{
	__atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
	return l;
}

void td_gw_log_unref(struct td_gw_log *l)
{
	if (!l || __atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL))
		return;
	if (l->own && l->f)
		fclose(l->f);
	else if (l->f)
		fflush(l->f);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

void td_gw_log_write(struct td_gw_log *l, const struct td_gw_log_rec *r)
{
	char line[2048], *p = line;
	size_t n;

	if (!l || !l->f)
		return;
	n = td_gw_log_format(l->format, r, line, sizeof(line));
	if (n >= sizeof(line)) {
		p = malloc(n + 1);
		if (!p)
			return;
		td_gw_log_format(l->format, r, p, n + 1);
	}
	pthread_mutex_lock(&l->mu);
	if (l->f) {
		fwrite(p, 1, n, l->f);
		/* stdout may be a pipe (fully buffered by default): flush each line */
		if (!l->own)
			fflush(l->f);
	}
	pthread_mutex_unlock(&l->mu);
	if (p != line)
		free(p);
}

int td_gw_log_reopen(struct td_gw_log *l)
{
	FILE *f = NULL;
	int rc;

	if (!l || !l->own)
		return 0;
	rc = td_gw_log_openf(l, &f);
	if (rc) {
		td_warn("gateway: access log %s: cannot reopen: %s", l->path, strerror(-rc));
		return rc;
	}
	pthread_mutex_lock(&l->mu);
	if (l->f)
		fclose(l->f);
	l->f = f;
	pthread_mutex_unlock(&l->mu);
	return 0;
}

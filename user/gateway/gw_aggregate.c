/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Gateway aggregation: validate member bodies as JSON and assemble {"name": body, ...}. */
#include <errno.h>
#include <string.h>

#include <json-c/json.h>

#include "gw_internal.h"

#define TD_GW_JSON_DEPTH	128

static bool td_gw_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* trim JSON whitespace around s[0..*len) */
static const char *td_gw_trim(const char *s, size_t *len)
{
	size_t n = *len;

	while (n && td_gw_ws(*s)) {
		s++;
		n--;
	}
	while (n && td_gw_ws(s[n - 1]))
		n--;
	*len = n;
	return s;
}

bool td_gw_json_valid(const char *s, size_t len)
{
	struct json_tokener *tok;
	struct json_object *o;
	bool ok = false;

	s = td_gw_trim(s, &len);
	if (!len || len > INT32_MAX || memchr(s, '\0', len))
		return false;
	/* json-c 0.16 accepts 'single-quoted' member names even in strict mode */
	for (size_t i = 0, in = 0; i < len; i++) {
		if (in && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			in = !in;
		else if (!in && s[i] == '\'')
			return false;
	}
	tok = json_tokener_new_ex(TD_GW_JSON_DEPTH);
	if (!tok)
		return false;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (o || json_tokener_get_error(tok) == json_tokener_success) {
		/* exactly one value: nothing but whitespace after it */
		ok = json_tokener_get_error(tok) == json_tokener_success &&
		     json_tokener_get_parse_end(tok) == len;
	} else if (json_tokener_get_error(tok) == json_tokener_continue) {
		/* a bare number at the very end is only complete with a terminator */
		o = json_tokener_parse_ex(tok, "", 1);
		ok = json_tokener_get_error(tok) == json_tokener_success;
	}
	json_object_put(o);
	json_tokener_free(tok);
	return ok;
}

const char *td_gw_agg_classify(const struct td_gw_agg_member *m, unsigned int *status)
{
	switch (m->err) {
	case 0:
		break;
	case -ETIME: case -ETIMEDOUT:
		*status = 504;
		return "timeout";
	case -ECONNREFUSED: case -EHOSTUNREACH: case -ENETUNREACH:
		*status = 502;
		return "connect";
	case -EFBIG:
		*status = 502;
		return "too_large";
	case -EPROTO: case -EBADMSG:
		*status = 502;
		return "protocol";
	case -ECONNRESET: case -EPIPE:
		*status = 502;
		return "reset";
	default:
		*status = 502;
		return "unavailable";
	}
	if (m->status < 200 || m->status > 299) {
		*status = m->status;
		return "status";
	}
	if (!td_gw_json_valid(m->body, m->body_len)) {
		*status = 502;
		return "invalid_json";
	}
	*status = m->status;
	return NULL;
}

int td_gw_agg_build(const struct td_gw_agg_member *m, size_t n, struct td_metrics_buf *body,
		    struct td_metrics_buf *failed, unsigned int *status)
{
	size_t nfail = 0;

	td_metrics_buf_append(body, "{", 1);
	td_metrics_buf_append(failed, "", 0);
	for (size_t i = 0; i < n; i++) {
		unsigned int st = 0;
		const char *why = td_gw_agg_classify(&m[i], &st);
		size_t len = m[i].body_len;
		const char *b;

		/* names are validated by the config: no quote, backslash or control byte */
		td_metrics_buf_printf(body, "%s\"%s\": ", i ? ", " : "", m[i].name);
		if (!why) {
			b = td_gw_trim(m[i].body, &len);
			td_metrics_buf_append(body, b, len);
			continue;
		}
		td_metrics_buf_printf(body, "{\"error\": \"%s\", \"status\": %u}", why, st);
		td_metrics_buf_printf(failed, "%s%s", nfail ? "," : "", m[i].name);
		nfail++;
	}
	td_metrics_buf_append(body, "}", 1);
	*status = n && nfail == n ? 502 : 200;
	return body->err ? body->err : failed->err;
}

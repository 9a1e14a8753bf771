/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Strict, incremental, zero-copy decoder of the chunked transfer coding (RFC 9112 7.1). */
#include <errno.h>
#include <string.h>

#include "chunked.h"

enum {
	TD_CH_SIZE0 = 0,	/* first hex digit of a chunk size */
	TD_CH_SIZE,		/* more hex digits, ';', BWS or CR */
	TD_CH_BWS,		/* BWS after the size: only ';' may follow */
	TD_CH_EXT,		/* chunk extensions up to CR, bounded */
	TD_CH_SIZE_LF,		/* LF ending the size line */
	TD_CH_DATA,		/* chunk data */
	TD_CH_DATA_CR,		/* CRLF after the data */
	TD_CH_DATA_LF,
	TD_CH_TRAILER,		/* trailer section, kept unconsumed until complete */
	TD_CH_DONE,
	TD_CH_ERROR,
};

#define TD_CH_MAX_DIGITS 16	/* hex digits of a size, leading zeros included: no overflow */

int td_http_chunked_init(struct td_http_chunked *c, enum td_http_kind kind,
			 const struct td_http_limits *lim)
{
	struct td_http_limits def;

	if (kind != TD_HTTP_REQUEST && kind != TD_HTTP_RESPONSE)
		return -EINVAL;
	if (!lim) {
		td_http_limits_default(&def);
		if (kind == TD_HTTP_RESPONSE)
			def.max_body = 0;
		lim = &def;
	}
	if (lim->max_header_block < 2 || lim->max_header_block > (1u << 28))
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	c->err_base = kind == TD_HTTP_RESPONSE ? 502 : 400;
	c->max_trailer = lim->max_header_block;
	c->max_trailers = lim->max_headers;
	c->max_body = lim->max_body;
	return 0;
}

static enum td_http_rc td_ch_fail(struct td_http_chunked *c, uint16_t code, const char *why)
{
	c->state = TD_CH_ERROR;
	c->error = c->err_base == 502 ? 502 : code;
	c->why = why;
	return TD_HTTP_ERROR;
}

static inline int td_ch_hex(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* the size is complete: check it against the body limit and the counter's range */
static enum td_http_rc td_ch_size_end(struct td_http_chunked *c)
{
	if (c->max_body && (c->size > c->max_body || c->total > c->max_body - c->size))
		return td_ch_fail(c, 413, "chunked body over the body limit");
	if (c->size > UINT64_MAX - c->total)
		return td_ch_fail(c, 400, "chunked body length overflows");
	return TD_HTTP_AGAIN;
}

/* the trailer section at t[0..len): TD_HTTP_DONE (*end set), TD_HTTP_AGAIN or an error */
static enum td_http_rc td_ch_trailer(struct td_http_chunked *c, const char *t, size_t len, size_t *end)
{
	for (;;) {
		size_t i;

		for (i = c->tpos + c->tscan; i < len; i++) {
			unsigned char ch = (unsigned char)t[i];

			if (ch == '\r') {
				if (i + 1 >= len)
					break;
				if (t[i + 1] != '\n')
					return td_ch_fail(c, 400, "bare CR in trailer");
				goto line;
			}
			if (ch == '\n')
				return td_ch_fail(c, 400, "bare LF in trailer");
			if (i + 5 > c->max_trailer)
				return td_ch_fail(c, 431, "trailer section too large");
		}
		c->tscan = (uint32_t)(i - c->tpos);
		return TD_HTTP_AGAIN;
line:
		c->tscan = 0;
		if (i == c->tpos) {
			*end = i + 2;
			return TD_HTTP_DONE;
		} else {
			struct td_http_header h;
			const char *why = NULL;

			if (td_http_field_line_parse(t + c->tpos, i - c->tpos, c->tpos, &h, &why))
				return td_ch_fail(c, 400, why);
			if (++c->ntrailers > c->max_trailers)
				return td_ch_fail(c, 431, "too many trailer fields");
		}
		c->tpos = (uint32_t)(i + 2);
	}
}

enum td_http_rc td_http_chunked_decode(struct td_http_chunked *c, const char *buf, size_t len,
				       size_t *consumed, struct td_http_slice *data)
{
	enum td_http_rc rc;
	size_t i = 0;

	*consumed = 0;
	data->off = 0;
	data->len = 0;
	if (c->state == TD_CH_ERROR)
		return TD_HTTP_ERROR;
	if (c->state == TD_CH_DONE)
		return TD_HTTP_DONE;
	if (len > (1u << 30))
		len = 1u << 30;	/* slices are 32-bit; the caller comes back for the rest */

	while (i < len) {
		unsigned char ch = (unsigned char)buf[i];
		int d;

		switch (c->state) {
		case TD_CH_SIZE0:
		case TD_CH_SIZE:
			d = td_ch_hex(ch);
			if (d >= 0) {
				if (++c->ndigits > TD_CH_MAX_DIGITS)
					return td_ch_fail(c, 400, "chunk size too long");
				c->size = (c->size << 4) | (uint64_t)d;
				c->state = TD_CH_SIZE;
				break;
			}
			if (c->state == TD_CH_SIZE0)
				return td_ch_fail(c, 400, "invalid chunk size");
			if ((rc = td_ch_size_end(c)) != TD_HTTP_AGAIN)
				return rc;
			if (ch == '\r') {
				c->state = TD_CH_SIZE_LF;
				break;
			}
			if (ch == ';')
				c->state = TD_CH_EXT;
			else if (ch == ' ' || ch == '\t')
				c->state = TD_CH_BWS;
			else
				return td_ch_fail(c, 400, "invalid chunk size");
			c->ext_len = 1;	/* everything after the size counts against the bound */
			break;
		case TD_CH_BWS:
			if (ch == ';')
				c->state = TD_CH_EXT;
			else if (ch != ' ' && ch != '\t')
				return td_ch_fail(c, 400, "invalid chunk size line");
			if (++c->ext_len > TD_HTTP_CHUNK_EXT_MAX)
				return td_ch_fail(c, 400, "chunk extension too long");
			break;
		case TD_CH_EXT:
			if (ch == '\r') {
				c->state = TD_CH_SIZE_LF;
				break;
			}
			if (ch < 0x20 ? ch != '\t' : ch == 0x7f)
				return td_ch_fail(c, 400, "control character in chunk extension");
			if (++c->ext_len > TD_HTTP_CHUNK_EXT_MAX)
				return td_ch_fail(c, 400, "chunk extension too long");
			break;
		case TD_CH_SIZE_LF:
			if (ch != '\n')
				return td_ch_fail(c, 400, "bare CR after chunk size");
			c->ndigits = 0;
			c->ext_len = 0;
			if (c->size == 0) {
				c->state = TD_CH_TRAILER;
				c->tpos = c->tscan = 0;
			} else {
				c->state = TD_CH_DATA;
			}
			break;
		case TD_CH_DATA: {
			size_t n = len - i;

			if (n > c->size)
				n = (size_t)c->size;
			data->off = (uint32_t)i;
			data->len = (uint32_t)n;
			c->size -= n;
			c->total += n;
			if (!c->size)
				c->state = TD_CH_DATA_CR;
			*consumed = i + n;
			return TD_HTTP_DATA;
		}
		case TD_CH_DATA_CR:
			if (ch != '\r')
				return td_ch_fail(c, 400, "missing CRLF after chunk data");
			c->state = TD_CH_DATA_LF;
			break;
		case TD_CH_DATA_LF:
			if (ch != '\n')
				return td_ch_fail(c, 400, "missing CRLF after chunk data");
			c->state = TD_CH_SIZE0;
			break;
		case TD_CH_TRAILER: {
			size_t end = 0;

			*consumed = i;	/* the trailer stays in the caller's buffer until complete */
			rc = td_ch_trailer(c, buf + i, len - i, &end);
			if (rc == TD_HTTP_DONE) {
				c->state = TD_CH_DONE;
				*consumed = i + end;
			}
			return rc;
		}
		default:
			return td_ch_fail(c, 400, "internal state");
		}
		i++;
	}
	*consumed = i;
	return TD_HTTP_AGAIN;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Strict, incremental, zero-copy decoder of the chunked transfer coding (RFC 9112 7.1). */
#ifndef TD_HTTP_CHUNKED_H
#define TD_HTTP_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "parser.h"

#define TD_HTTP_CHUNK_EXT_MAX	1024u	/* bytes of chunk extensions on one size line -> 400 */

/*
 * Decoder state. Unlike the head parser this one streams: every call gets the bytes not yet
 * consumed (buf = first unconsumed byte) and the caller may drop what was consumed. The only
 * exception is the trailer section, kept unconsumed until its empty line has arrived (it is
 * bounded by max_trailer, so the caller never buffers more than that).
 */
struct td_http_chunked {
	uint8_t state;		/* internal */
	uint8_t ndigits;	/* significant hex digits of the current size */
	uint16_t error;		/* HTTP status after TD_HTTP_ERROR: 400, 413 (requests), 502 (responses) */
	uint16_t err_base;	/* 400 for requests, 502 for responses */
	const char *why;	/* static text for logs after TD_HTTP_ERROR */
	uint32_t ext_len;	/* extension bytes on the current size line */
	uint32_t max_trailer;	/* bytes of the trailer section incl. the final CRLF (431 / 502) */
	uint32_t max_trailers;	/* trailer field lines */
	uint32_t tpos;		/* trailer: start of the current line, from the trailer start */
	uint32_t tscan;		/* trailer: bytes of the current line scanned */
	uint32_t ntrailers;	/* trailer field lines seen (validated, then dropped) */
	uint64_t size;		/* the chunk being read: bytes left */
	uint64_t total;		/* data bytes so far */
	uint64_t max_body;	/* data bytes allowed, 0: unlimited (413) */
};

/*
 * Reset c. kind selects the error statuses (TD_HTTP_RESPONSE: everything is 502); lim NULL:
 * defaults (max_body, and max_header_block / max_headers for the trailers). Responses have no
 * body limit unless lim says so. 0 or -EINVAL.
 */
int td_http_chunked_init(struct td_http_chunked *c, enum td_http_kind kind,
			 const struct td_http_limits *lim);

/*
 * Decode from buf[0..len). *consumed: bytes the caller may drop (always <= len).
 * TD_HTTP_DATA: *data is a slice of buf with body bytes (len > 0); call again at buf + *consumed.
 * TD_HTTP_AGAIN: everything useful consumed, need more bytes.
 * TD_HTTP_DONE: last chunk and trailers read; the next message starts at buf + *consumed.
 * TD_HTTP_ERROR: c->error, c->why; close the connection.
 */
enum td_http_rc td_http_chunked_decode(struct td_http_chunked *c, const char *buf, size_t len,
				       size_t *consumed, struct td_http_slice *data);

#endif

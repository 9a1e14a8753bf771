/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Strict, incremental, zero-copy HTTP/1.1 request and response header parser (RFC 9110/9112). */
#ifndef TD_HTTP_PARSER_H
#define TD_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Contract: the caller keeps the bytes of one message head in one buffer starting at the first
 * byte of the message and calls td_http_parse() again with the same start and a larger length
 * whenever more bytes arrive (the buffer may move between calls: every result is an offset).
 * Only the new bytes are scanned. Nothing is allocated; nothing past buf[len - 1] is read.
 */

/* return codes of td_http_parse() and td_http_chunked_decode() */
enum td_http_rc {
	TD_HTTP_ERROR = -1,	/* malformed or over a limit: answer p->error (or chunked c->error), close */
	TD_HTTP_AGAIN = 0,	/* need more bytes */
	TD_HTTP_DONE  = 1,	/* complete: *consumed is the length of the head (or of the chunked body) */
	TD_HTTP_DATA  = 2,	/* chunked only: *data holds body bytes */
};

enum td_http_kind {
	TD_HTTP_REQUEST = 0,
	TD_HTTP_RESPONSE,
};

enum td_http_method {
	TD_HTTP_M_OTHER = 0,	/* any other token: valid, passed through */
	TD_HTTP_M_GET, TD_HTTP_M_HEAD, TD_HTTP_M_POST, TD_HTTP_M_PUT, TD_HTTP_M_DELETE,
	TD_HTTP_M_CONNECT, TD_HTTP_M_OPTIONS, TD_HTTP_M_TRACE, TD_HTTP_M_PATCH,
};

/* request-target forms of RFC 9112 3.2 */
enum td_http_target_form {
	TD_HTTP_T_ORIGIN = 0,	/* /path?query */
	TD_HTTP_T_ABSOLUTE,	/* scheme://authority/path (proxies) */
	TD_HTTP_T_AUTHORITY,	/* host:port, CONNECT only */
	TD_HTTP_T_ASTERISK,	/* "*", OPTIONS only */
};

/* how the body that follows the head is delimited (RFC 9112 6.3) */
enum td_http_body {
	TD_HTTP_BODY_NONE = 0,	/* no body (or Content-Length: 0) */
	TD_HTTP_BODY_LENGTH,	/* content_length bytes */
	TD_HTTP_BODY_CHUNKED,	/* chunked: feed td_http_chunked_decode() */
	TD_HTTP_BODY_CLOSE,	/* response: read until the server closes */
	TD_HTTP_BODY_TUNNEL,	/* response: 2xx to CONNECT or 101: raw bytes both ways */
};

/* known header fields (matched case-insensitively), TD_HTTP_H_OTHER for the rest */
enum td_http_hdr_id {
	TD_HTTP_H_OTHER = 0,
	TD_HTTP_H_HOST, TD_HTTP_H_CONTENT_LENGTH, TD_HTTP_H_TRANSFER_ENCODING, TD_HTTP_H_CONNECTION,
	TD_HTTP_H_KEEP_ALIVE, TD_HTTP_H_TE, TD_HTTP_H_TRAILER, TD_HTTP_H_UPGRADE,
	TD_HTTP_H_PROXY_CONNECTION, TD_HTTP_H_PROXY_AUTHORIZATION, TD_HTTP_H_PROXY_AUTHENTICATE,
};

#define TD_HTTP_HF_HOP	0x1u	/* hop-by-hop: a proxy must not forward this field */

/* default limits (td_http_limits_default) and the compile-time header array size */
#define TD_HTTP_DEF_START_LINE		8192u		/* request line incl. CRLF -> 414 */
#define TD_HTTP_DEF_HEADER_BLOCK	32768u		/* field lines + final CRLF -> 431 */
#define TD_HTTP_DEF_HEADERS		100u		/* field lines -> 431 */
#define TD_HTTP_DEF_MAX_BODY		(1024u * 1024u)	/* request body bytes -> 413 */
#define TD_HTTP_MAX_HEADERS		128u		/* upper bound of max_headers */
#define TD_HTTP_MAX_EMPTY_LINES		4u		/* CRLFs tolerated before a request line */

/* a byte range of the caller's buffer: buf + off, len bytes */
struct td_http_slice {
	uint32_t off;
	uint32_t len;
};

/* one field line: name and value (OWS trimmed), known id, TD_HTTP_HF_* flags */
struct td_http_header {
	struct td_http_slice name;
	struct td_http_slice value;
	uint16_t id;
	uint16_t flags;
};

/* limits of one parser; td_http_limits_default() fills the TD_HTTP_DEF_* values */
struct td_http_limits {
	uint32_t max_start_line;	/* request/status line incl. CRLF (414 / 502) */
	uint32_t max_header_block;	/* field lines + empty line incl. CRLFs (431 / 502) */
	uint32_t max_headers;		/* field lines, <= TD_HTTP_MAX_HEADERS (431 / 502) */
	uint64_t max_body;		/* request body (Content-Length or chunked) bytes, 0: none (413) */
};

/* the parsed head; every slice is relative to the start of the message buffer */
struct td_http_msg {
	uint8_t kind;			/* enum td_http_kind */
	uint8_t method;			/* enum td_http_method (request) */
	uint8_t target_form;		/* enum td_http_target_form (request) */
	uint8_t body;			/* enum td_http_body */
	uint8_t version;		/* 10 or 11 */
	bool keep_alive;		/* connection may carry another message after this one */
	bool upgrade;			/* Upgrade field named by Connection */
	uint16_t status;		/* response status code */
	struct td_http_slice method_s;	/* request method token */
	struct td_http_slice target;	/* request-target */
	struct td_http_slice reason;	/* response reason phrase (may be empty) */
	uint64_t content_length;	/* TD_HTTP_BODY_LENGTH */
	int host;			/* index of Host in hdr, -1 if none */
	uint32_t nhdr;			/* number of field lines */
	uint32_t nhop;			/* of which hop-by-hop (TD_HTTP_HF_HOP) */
	struct td_http_header hdr[TD_HTTP_MAX_HEADERS];
};

/* parser state; msg is valid once td_http_parse() returned TD_HTTP_DONE */
struct td_http_parser {
	struct td_http_limits lim;
	uint8_t kind;			/* enum td_http_kind */
	uint8_t state;			/* internal */
	uint8_t req_method;		/* response: method of the request it answers */
	uint8_t empty_lines;		/* CRLFs skipped before the request line */
	uint16_t error;			/* HTTP status to answer after TD_HTTP_ERROR */
	const char *why;		/* static text for logs after TD_HTTP_ERROR */
	uint32_t pos;			/* start of the current line */
	uint32_t scan;			/* bytes of the current line already scanned */
	uint32_t hdr_start;		/* start of the first field line */
	uint32_t flags;			/* internal TD_HTTP_PF_* */
	struct td_http_msg msg;
};

/* fill l with the TD_HTTP_DEF_* defaults */
void td_http_limits_default(struct td_http_limits *l);

/* reset p for a new message of this kind; lim NULL: defaults. 0 or -EINVAL (bad limits) */
int td_http_parser_init(struct td_http_parser *p, enum td_http_kind kind,
			const struct td_http_limits *lim);

/* response parser: the method of the request being answered (HEAD, CONNECT change the body) */
void td_http_parser_set_req_method(struct td_http_parser *p, enum td_http_method m);

/*
 * Parse buf[0..len) (the message so far). TD_HTTP_DONE: p->msg is complete and *consumed is the
 * head length (the body starts at buf + *consumed). TD_HTTP_AGAIN: call again with more bytes.
 * TD_HTTP_ERROR: p->error is the status to answer (400, 413, 414, 431, 501, 505; 502 for any
 * response error) and p->why says why; the connection must be closed. Lengths over 4 GiB: error.
 */
enum td_http_rc td_http_parse(struct td_http_parser *p, const char *buf, size_t len, size_t *consumed);

/* index of the first header named name (case-insensitive) at index >= from, or -ENOENT */
int td_http_header_find(const struct td_http_msg *m, const char *buf, const char *name,
			unsigned int from);

/* name of a method, "OTHER" for TD_HTTP_M_OTHER */
const char *td_http_method_name(enum td_http_method m);

/*
 * Shared field-line rules (also used for chunked trailers): line is one field line without its
 * CRLF, at offset base of the message buffer. Fills h (id, no flags). 0 or -EBADMSG with
 * *why (if why is not NULL) set to a static text.
 */
int td_http_field_line_parse(const char *line, size_t len, uint32_t base, struct td_http_header *h,
			     const char **why);

/* tchar of RFC 9110 5.6.2 */
bool td_http_is_tchar(unsigned char c);

/* pointer to a slice of buf */
static inline const char *td_http_ptr(const char *buf, struct td_http_slice s)
{
	return buf + s.off;
}

#endif

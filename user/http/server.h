/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The HTTP/1.1 engine: worker threads with a libev loop each, keep-alive, streaming, upstream pool. */
#ifndef TD_HTTP_SERVER_H
#define TD_HTTP_SERVER_H

/*
 * Contract
 *  - One struct td_hs serves a set of listeners with `workers` threads. Each worker has its own
 *    libev loop and its own SO_REUSEPORT socket per listener (the kernel spreads connections),
 *    its own upstream connection pool, and runs every callback of the connections it accepted.
 *    Nothing blocks a worker: sockets are non-blocking, TLS handshakes are driven by the loop.
 *  - A downstream connection reads one request head at a time (td_http_parse with the
 *    configured limits). Pipelined requests wait in the input buffer, so responses go out in
 *    order. Errors of the parser are answered with p->error (400, 413, 414, 431, 501, 505) and
 *    the connection is closed. A request head must be complete within header_timeout_ms of its
 *    first byte (slowloris: 408 and close); a new connection that sends nothing is closed
 *    after header_timeout_ms, an idle keep-alive one after idle_timeout_ms (both silently);
 *    every wait on a body (client or upstream, reading or writing) lasts at most
 *    body_timeout_ms.
 *  - For each complete head ops->request(r) runs. The handler then (at once or later, always on
 *    the same worker thread, e.g. from a td_hs_fetch callback) calls exactly one of
 *    td_hs_respond() or td_hs_forward(). ops->done(r) runs exactly once when the request ends
 *    (response sent, or the client or the engine aborted it); after it returns r is gone.
 *  - Forwarding: the engine writes the request head built from the client's one (hop-by-hop
 *    fields, the ones Connection names, Content-Length, Transfer-Encoding and an Expect:
 *    100-continue it answers itself dropped; Host added when the client sent none; the edit's
 *    removals and additions applied; framing added: Content-Length, or chunked re-encoded after
 *    validation) to a pooled keep-alive upstream connection, streams the request body, reads the
 *    response head (strict, 502 on any error), calls ops->upstream(), then streams the response
 *    to the client with hop-by-hop fields dropped and its own framing (Content-Length kept,
 *    chunked re-encoded, close-delimited turned into chunked for HTTP/1.1 clients). Neither
 *    body is ever buffered whole: reading one side stops while the other side's output buffer
 *    is full (TD_HS_BUF bytes). Upstream connections go back to the pool after a complete,
 *    keep-alive response; the pool keeps at most max_idle per backend per worker (0: the
 *    default), each for TD_HS_DEF_UPSTREAM_IDLE at most.
 *  - Memory: an idle keep-alive downstream connection holds no buffer and no parser, only its
 *    192-byte struct (~220-270 B of RSS measured); buffers come from a per-worker free list
 *    while a request is active.
 *  - Reload: handlers load their own configuration generation atomically per request.
 *    td_hs_listen() adds and td_hs_unlisten() removes listeners while running, and
 *    td_hs_set_limits() changes limits; established connections are never closed by them.
 *    These three wait until every worker applied the change: call them from a thread that is
 *    not a worker.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "parser.h"

#define TD_HS_BUF		16384u	/* one I/O buffer (input or output of one side) */
#define TD_HS_MAX_WORKERS	256u
#define TD_HS_DEF_HEADER_TIMEOUT	10000u
#define TD_HS_DEF_IDLE_TIMEOUT		60000u
#define TD_HS_DEF_BODY_TIMEOUT		30000u
#define TD_HS_DEF_CONNECT_TIMEOUT	2000u
#define TD_HS_DEF_RESPONSE_TIMEOUT	30000u
#define TD_HS_DEF_UPSTREAM_IDLE		60000u	/* pooled upstream connection lifetime when unused */
#define TD_HS_DEF_MAX_CONNS		10000u
#define TD_HS_DEF_MAX_IDLE		32u

struct td_hs;
struct td_hs_req;
struct td_tls;			/* tls.h: a server TLS context (certificates, SNI) */
struct ev_loop;			/* libev */

struct td_hs_limits {
	struct td_http_limits http;	/* request line, header block, headers, body */
	uint32_t header_timeout_ms;	/* first byte of a head to its end (408) */
	uint32_t idle_timeout_ms;	/* keep-alive connection without a request */
	uint32_t body_timeout_ms;	/* longest gap while reading a request or response body */
	uint32_t max_conns;		/* downstream connections (over: accept, close); 0: no limit */
};

/* fill with the defaults above and td_http_limits_default() */
void td_hs_limits_default(struct td_hs_limits *l);

struct td_hs_ops {
	/* a request head is complete: call td_hs_respond() or td_hs_forward() now or later */
	void (*request)(struct td_hs_req *r);
	/*
	 * optional: one upstream attempt of td_hs_forward() ended. err 0: the response head arrived
	 * with this status (1xx already dropped); err < 0: -ECONNREFUSED, -ETIMEDOUT (connect, or
	 * the upstream took no request bytes for body_timeout_ms), -ETIME (response timeout),
	 * -EPROTO (invalid response, 101, 2xx to CONNECT), -ECONNRESET ... before a response head.
	 * tag is td_hs_forward()'s. The handler may call td_hs_respond() from here, or, when
	 * may_retry (nothing was sent to the client yet and the request has no body),
	 * td_hs_forward() again; the attempt (and its response) is then discarded, and by
	 * convention it returns 1. Otherwise it returns 0: the response is relayed (err 0) or the
	 * engine answers 502 (504 for -ETIMEDOUT / -ETIME). The engine looks at what the handler
	 * called, not at the return value.
	 */
	int (*upstream)(struct td_hs_req *r, void *tag, int err, unsigned int status, bool may_retry);
	/* the request ended (see td_hs_req_status() and friends); free what set_data holds */
	void (*done)(struct td_hs_req *r);
	/*
	 * optional (RAW listeners): the first bytes of a connection arrived: data[0..len) (at most
	 * TD_HS_BUF, at least 1 byte; more may follow). Return 0 when they are enough and call
	 * td_hs_tunnel() (now or later; the bytes are sent to the destination first) or
	 * td_hs_respond() (answered as nothing: the connection is closed); return -EAGAIN to be
	 * called again with more bytes (same start, larger len; after header_timeout_ms: closed).
	 * Any other negative return, or -EAGAIN at TD_HS_BUF bytes, closes the connection.
	 * ops->done() runs once the first call was made.
	 */
	int (*raw)(struct td_hs_req *r, const char *data, size_t len);
	/*
	 * optional (td_hs_forward responses, after ops->upstream returned 0 with err 0): the
	 * response head as received (m, slices into buf, valid during the call) before it is relayed.
	 * Return true to receive the body: response_body() gets the decoded body bytes as they
	 * are relayed (chunked framing removed), then response_end() once, complete or not.
	 */
	bool (*response)(struct td_hs_req *r, const struct td_http_msg *m, const char *buf);
	void (*response_body)(struct td_hs_req *r, const char *data, size_t len);
	void (*response_end)(struct td_hs_req *r, bool complete);
};

enum td_hs_listen_mode {
	TD_HS_LISTEN_HTTP = 0,		/* HTTP/1.1 requests (origin-form or absolute-form) */
	TD_HS_LISTEN_RAW,		/* not HTTP: ops->raw() gets the first bytes (e.g. a TLS
					   ClientHello), then td_hs_tunnel() or td_hs_respond() (close) */
};

struct td_hs_listener {
	struct sockaddr_storage ss;	/* port in network order */
	socklen_t sslen;
	struct td_tls *tls;		/* NULL: plain HTTP; not owned; must be NULL for RAW */
	uint8_t mode;			/* enum td_hs_listen_mode */
	uint32_t tag;			/* td_hs_req_listener_tag(): which listener accepted the request */
};

struct td_hs_conf {
	unsigned int workers;		/* 0: one per online CPU */
	struct td_hs_limits lim;
	const struct td_hs_ops *ops;
	void *arg;			/* td_hs_arg() */
	const char *name;		/* thread names "td-<name>-N", logs */
};

/* create the engine, its workers (not running yet); NULL + errno */
struct td_hs *td_hs_new(const struct td_hs_conf *conf);
/*
 * Bind a listener (SO_REUSEPORT, one socket per worker, backlog 1024) and start accepting on
 * every worker. Returns an id >= 0 for td_hs_unlisten(), or -errno (-EADDRINUSE ...).
 */
int td_hs_listen(struct td_hs *hs, const struct td_hs_listener *l);
/* stop accepting on listener id and close its sockets; its connections go on */
int td_hs_unlisten(struct td_hs *hs, int id);
/* start the worker threads; 0 or -errno */
int td_hs_start(struct td_hs *hs);
/*
 * Stop: close listeners and idle connections (and those still reading a head), let requests
 * in flight finish for up to drain_ms with Connection: close, abort the rest (done() still
 * runs), join the threads, free everything. NULL is ignored.
 */
void td_hs_free(struct td_hs *hs, uint32_t drain_ms);
void *td_hs_arg(const struct td_hs *hs);
unsigned int td_hs_workers(const struct td_hs *hs);
/*
 * Change limits (reload) on every worker: they apply to the next request head of every
 * connection (open keep-alive ones included), to each timeout the next time it is armed and to
 * max_conns at the next accept. Invalid http limits are ignored. Unlike td_hs_new(), zero
 * timeouts are taken as given: start from td_hs_limits_default(). Waits for the workers.
 */
void td_hs_set_limits(struct td_hs *hs, const struct td_hs_limits *lim);

/* engine counters (sum over workers, relaxed reads) */
struct td_hs_stats {
	uint64_t conns_accepted;
	uint64_t conns_rejected;	/* over max_conns (or draining) */
	uint64_t conns_open;
	uint64_t requests;
	uint64_t parse_errors;		/* 400/413/414/431/501/505 sent */
	uint64_t header_timeouts;	/* 408 (slowloris) */
	uint64_t idle_closed;		/* idle_timeout, or header_timeout before any byte */
	uint64_t upstream_conns_open;
	uint64_t upstream_reused;	/* requests sent on a pooled connection */
	uint64_t upstream_errors;	/* failed attempts and fetches (not keep-alive retries) */
	uint64_t tls_handshake_errors;
	uint64_t tunnels;		/* td_hs_tunnel() tunnels established */
	uint64_t tunnels_open;
};
void td_hs_stats_get(const struct td_hs *hs, struct td_hs_stats *st);

/* ---- one request --------------------------------------------------------------------------- */

/* the parsed head; slices into td_hs_req_buf(); both valid until done() returns */
const struct td_http_msg *td_hs_req_msg(const struct td_hs_req *r);
const char *td_hs_req_buf(const struct td_hs_req *r);
/* the client's address and the local one */
const struct sockaddr *td_hs_req_peer(const struct td_hs_req *r, socklen_t *len);
const struct sockaddr *td_hs_req_local(const struct td_hs_req *r, socklen_t *len);
bool td_hs_req_tls(const struct td_hs_req *r);
/* TLS server name sent by the client, NULL if none or plain */
const char *td_hs_req_sni(const struct td_hs_req *r);
/* worker index 0..workers-1 (for per-worker state), and the engine */
unsigned int td_hs_req_worker(const struct td_hs_req *r);
struct td_hs *td_hs_req_hs(const struct td_hs_req *r);
/* the accepting listener's td_hs_listener.tag; its mode */
uint32_t td_hs_req_listener_tag(const struct td_hs_req *r);
/*
 * During ops->upstream with err 0 only: the upstream response head (slices into *buf), e.g. a
 * 304 whose fields a cache merges into its stored response; NULL at any other time.
 */
const struct td_http_msg *td_hs_req_upstream_head(const struct td_hs_req *r, const char **buf);
/* the libev loop of r's worker (for the handler's own watchers: timers, ev_async mailboxes) */
struct ev_loop *td_hs_req_loop(const struct td_hs_req *r);
/* CLOCK_MONOTONIC ns when the head was complete */
uint64_t td_hs_req_start_ns(const struct td_hs_req *r);
/* the handler's pointer */
void td_hs_req_set_data(struct td_hs_req *r, void *data);
void *td_hs_req_data(const struct td_hs_req *r);

/* after done(): status sent (0 if none), body bytes, why it failed (static text or NULL) */
unsigned int td_hs_req_status(const struct td_hs_req *r);
uint64_t td_hs_req_bytes_in(const struct td_hs_req *r);	/* request body bytes */
uint64_t td_hs_req_bytes_out(const struct td_hs_req *r);	/* response bytes incl. head */
const char *td_hs_req_error(const struct td_hs_req *r);
bool td_hs_req_aborted(const struct td_hs_req *r);	/* the response was not sent completely */

/* a header "Name: value" (both NUL-terminated, validated by the caller) */
struct td_hs_hdr {
	const char *name;
	const char *value;
};

/*
 * Answer locally: status, extra headers (Date, Content-Length unless 1xx/204/304, and
 * Connection when closing or for HTTP/1.0 keep-alive are added), body. A request body not read
 * yet is read and discarded (up to max_body, else the connection is closed after the
 * response); a client waiting for 100 Continue is not asked for its body: the connection is
 * closed after the response. close_after forces Connection: close. 0 or -errno (-EALREADY if
 * r was answered). HEAD requests get the head only.
 */
int td_hs_respond(struct td_hs_req *r, unsigned int status, const struct td_hs_hdr *hdrs,
		  size_t nhdrs, const void *body, size_t body_len, bool close_after);

/* td_hs_respond_ex() options */
struct td_hs_resp_opts {
	const char *reason;		/* reason phrase, NULL: the standard one */
	bool no_date;			/* hdrs carry their own Date (e.g. a cached response) */
	bool close_after;		/* Connection: close */
};

/*
 * td_hs_respond() with options: used by caches to send a stored response (its own Date, Age,
 * ETag... in hdrs; Content-Length, Connection always from the engine; hdrs must not carry
 * them nor Transfer-Encoding). HEAD requests get the head only; 304 and 204 no body.
 */
int td_hs_respond_ex(struct td_hs_req *r, unsigned int status, const struct td_hs_hdr *hdrs,
		     size_t nhdrs, const void *body, size_t body_len,
		     const struct td_hs_resp_opts *opts);

/* how the forwarded request differs from the client's */
struct td_hs_edit {
	/*
	 * new request-target (NUL-terminated), NULL: the client's (absolute-form included). A Host
	 * always goes out: the client's unless removed, else the one in add, else the backend's
	 * address (absolute-form: remove "Host", add the URI's authority).
	 */
	const char *target;
	const char *const *remove;	/* field names dropped (case-insensitive), besides hop-by-hop */
	size_t nremove;
	const struct td_hs_hdr *add;	/* fields appended to the request */
	size_t nadd;
	const struct td_hs_hdr *resp_add;	/* fields appended to the response to the client */
	size_t nresp_add;
	const char *const *resp_remove;	/* response field names dropped */
	size_t nresp_remove;
};

struct td_hs_upstream {
	const struct sockaddr *addr;	/* the backend */
	socklen_t addrlen;
	uint32_t connect_timeout_ms;	/* 0: TD_HS_DEF_CONNECT_TIMEOUT */
	uint32_t response_timeout_ms;	/* request sent to response head; 0: default */
	uint32_t max_idle;		/* pool size for this backend on this worker, 0: 32 */
	void *tag;			/* passed to ops->upstream() */
};

/*
 * Send r to u with edit applied (the edit's strings are copied before return). 0 or -errno
 * (-EALREADY if r was answered, -EINVAL). Connection failures are reported to ops->upstream.
 */
int td_hs_forward(struct td_hs_req *r, const struct td_hs_upstream *u, const struct td_hs_edit *edit);

/* ---- tunnels (CONNECT, raw listeners) -------------------------------------------------------- */

/*
 * Connect to u (connect_timeout_ms), then relay bytes both ways until both sides have closed
 * (a FIN is passed on as shutdown(SHUT_WR)), either side resets, or idle_ms pass without a byte
 * either way (0: the engine's idle timeout). For a CONNECT request the client gets
 * "HTTP/1.1 200 Connection established" once connected (502 / 504 on failure, counted by
 * ops->upstream with may_retry false); for a RAW listener the bytes already given to ops->raw()
 * are sent first and failures just close. Bytes both ways are counted in bytes_in / bytes_out;
 * ops->done() runs when the tunnel ends. Backpressure as for bodies. 0 or -errno (-EALREADY,
 * -EINVAL: not a CONNECT request nor a RAW connection, or a CONNECT with a body).
 * Also: ops->upstream gets err 0, status 200 once connected (the handler cannot re-answer
 * then); from its failure call the handler may td_hs_tunnel() elsewhere or answer. Bytes the
 * client sent after the CONNECT head go first. The tunnel is never pooled nor kept alive. A
 * CONNECT on a TLS listener tunnels inside that TLS session; td_tls has no half-close, so
 * there an upstream FIN ends the tunnel (close_notify) once its bytes are flushed.
 */
int td_hs_tunnel(struct td_hs_req *r, const struct td_hs_upstream *u, uint32_t idle_ms);

/* ---- subrequests (aggregation) ------------------------------------------------------------- */

struct td_hs_fetch_res {
	int err;			/* 0, or -ETIME (timeout), -ECONNREFUSED, -EPROTO, -EFBIG ... */
	unsigned int status;		/* when err == 0 */
	const char *body;		/* decoded body (chunked removed), valid during the callback */
	size_t body_len;
	const char *content_type;	/* NUL-terminated value or NULL */
};

typedef void (*td_hs_fetch_cb)(struct td_hs_req *r, void *arg, const struct td_hs_fetch_res *res);

/*
 * On r's worker, send the complete request head (request line, Host and other fields, final
 * CRLF; no body) to addr over a pooled connection and collect the whole response (at most
 * max_body bytes, else -EFBIG) within timeout_ms (0: TD_HS_DEF_RESPONSE_TIMEOUT, else -ETIME;
 * a reused connection closed under us is retried once). cb runs once on the same worker,
 * unless r ends first: then the fetch is cancelled and cb never runs. 0 or -errno.
 */
int td_hs_fetch(struct td_hs_req *r, const struct sockaddr *addr, socklen_t addrlen,
		const char *head, size_t head_len, uint32_t timeout_ms, size_t max_body,
		td_hs_fetch_cb cb, void *arg);

#endif

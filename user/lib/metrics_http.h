/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Tiny non-blocking HTTP/1.1 responder for GET /metrics, driven by the caller's event loop. */
#ifndef TD_METRICS_HTTP_H
#define TD_METRICS_HTTP_H

/*
 * Contract
 *  - td_metrics_http_listen() opens a non-blocking TCP listener on "127.0.0.1:9469" or
 *    "[::1]:9469" (numeric only; port 0 = ephemeral). An address outside 127.0.0.0/8 and ::1 is
 *    refused with -EACCES unless allow_public is true: metrics never go public by default.
 *  - td_metrics_http_new() takes the listener and serves it without threads and without ever
 *    blocking, in the same style as td_health: the caller polls td_metrics_http_fd() (an epoll
 *    fd holding the listener and every connection) for POLLIN, wakes up no later than
 *    td_metrics_http_next_deadline_ms(), and calls td_metrics_http_process(now). Each connection
 *    is a small state machine (read request -> write response -> lingering close), so a client
 *    that connects and sends nothing, or never reads, costs one slot until its deadline and
 *    never stalls the loop. Times are CLOCK_MONOTONIC milliseconds (td_metrics_http_now_ms(),
 *    the same clock as td_health_now_ms()).
 *  - One request per connection, always answered with "Connection: close":
 *      GET or HEAD /metrics[?query]  200, Content-Type TD_METRICS_CONTENT_TYPE, body from render()
 *      another method on /metrics    405 (Allow: GET, HEAD)
 *      any other path                404
 *      malformed request line or headers, HTTP/1.1 without exactly one Host, a close before the
 *      end of the headers                                                    400
 *      headers longer than TD_METRICS_HTTP_MAX_REQUEST bytes                 431
 *      HTTP version other than 1.0 / 1.1                                     505
 *      render() failed                                                       500
 *    A request body is never read (GET has none); the socket is shut down for writing after the
 *    response and drained briefly, so unread bytes cannot turn the close into a reset that
 *    destroys the response in flight.
 *  - render(arg, out) is called synchronously from td_metrics_http_process(), once per 200
 *    response; it appends the exposition to out (empty on entry) and returns 0 or -errno.
 *  - Limits: at most max_conns connections; when full, a new connection evicts the oldest one
 *    still waiting for its request (slow or idle clients cannot lock scrapes out); the request
 *    must be complete within request_timeout_ms of the accept, the response read by the client
 *    within response_timeout_ms.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "metrics.h"

#define TD_METRICS_LISTEN_DEFAULT   "127.0.0.1:9469"
#define TD_METRICS_HTTP_MAX_REQUEST 8192

/* Tunables; a zero field takes its default. */
struct td_metrics_http_opts {
	unsigned int max_conns;            /* default 16                                         */
	unsigned int request_timeout_ms;   /* default 2000: accept -> end of request headers      */
	unsigned int response_timeout_ms;  /* default 10000: response fully written and drained   */
};

/* Appends the body of GET /metrics to out; 0 or -errno (answered with 500). */
typedef int (*td_metrics_render_fn)(void *arg, struct td_metrics_buf *out);

/*
 * Parse "A.B.C.D:PORT" or "[IPV6]:PORT" into ss/len; *loopback tells whether the address is
 * 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104. 0 or -EINVAL. For config validation and listen().
 */
int td_metrics_listen_parse(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
			    bool *loopback);
/*
 * Listening socket (non-blocking, close-on-exec, SO_REUSEADDR, IPV6_V6ONLY for v6) on addr.
 * Returns the fd or -EINVAL (bad address), -EACCES (not loopback and !allow_public), -errno of
 * socket/bind/listen. Every failure logs one line.
 */
int td_metrics_http_listen(const char *addr, bool allow_public);

/*
 * Serve lfd (ownership passes to the server, also on failure). opts may be NULL.
 * NULL + errno on failure.
 */
struct td_metrics_http *td_metrics_http_new(int lfd, td_metrics_render_fn render, void *arg,
					    const struct td_metrics_http_opts *opts);
/* Close the listener and every connection; NULL is a no-op. */
void td_metrics_http_free(struct td_metrics_http *h);
/* The epoll fd to poll for POLLIN; owned by h. */
int td_metrics_http_fd(const struct td_metrics_http *h);
/* Accept, read, answer, write and expire connections; never blocks. 0 or -errno (epoll failed). */
int td_metrics_http_process(struct td_metrics_http *h, uint64_t now_ms);
/* Earliest connection deadline; UINT64_MAX when there is no connection. */
uint64_t td_metrics_http_next_deadline_ms(const struct td_metrics_http *h);
/* Local port of the listener (host order), 0 on error: for logs and for tests on port 0. */
unsigned int td_metrics_http_port(const struct td_metrics_http *h);
/* Open connections. */
size_t td_metrics_http_conns(const struct td_metrics_http *h);
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t td_metrics_http_now_ms(void);

#endif

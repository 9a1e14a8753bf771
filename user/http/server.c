/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* HTTP/1.1 engine: workers, listeners, downstream connections, local responses (see server.h). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hs_int.h"
#include "log.h"
#include "tls.h"

#define HS_LINGER_S	2.0	/* reading what a client still sends after our close */
#define HS_ACCEPT_BATCH	64

void hs_conn_run(struct hs_conn *c);
static void hs_conn_close(struct hs_conn *c);

/* ---- small helpers ------------------------------------------------------------------------ */

void td_hs_limits_default(struct td_hs_limits *l)
{
	memset(l, 0, sizeof(*l));
	td_http_limits_default(&l->http);
	l->header_timeout_ms = TD_HS_DEF_HEADER_TIMEOUT;
	l->idle_timeout_ms = TD_HS_DEF_IDLE_TIMEOUT;
	l->body_timeout_ms = TD_HS_DEF_BODY_TIMEOUT;
	l->max_conns = TD_HS_DEF_MAX_CONNS;
}

/*
 * Timers: setting a later deadline is a store; the timer fires at the old time and re-arms
 * itself. Only an earlier deadline touches the libev heap.
 */
void hs_tmr_set(struct hs_worker *w, struct hs_tmr *t, double deadline)
{
	double now;

	t->deadline = deadline;
	if (deadline == 0 || (ev_is_active(&t->t) && t->armed <= deadline))
		return;
	now = hs_mono();
	ev_timer_stop(w->loop, &t->t);
	ev_timer_set(&t->t, deadline > now ? deadline - now : 0., 0.);
	ev_timer_start(w->loop, &t->t);
	t->armed = deadline;
}

/* timer callback prologue: true when the deadline really passed (else re-armed or none) */
static bool hs_tmr_expired(struct hs_worker *w, struct hs_tmr *t)
{
	double now = hs_mono();

	if (t->deadline == 0)
		return false;
	if (now + 0.005 < t->deadline) {
		ev_timer_set(&t->t, t->deadline - now, 0.);
		ev_timer_start(w->loop, &t->t);
		t->armed = t->deadline;
		return false;
	}
	t->deadline = 0;
	return true;
}

/* a buffer of at least need bytes (TD_HS_BUF ones from the free list) */
int hs_buf_get(struct hs_worker *w, struct hs_buf *b, uint32_t need)
{
	b->pos = b->len = 0;
	if (need <= TD_HS_BUF) {
		if (w->free_bufs) {
			b->p = w->free_bufs;
			w->free_bufs = *(void **)b->p;
			w->nfree_bufs--;
		} else if (!(b->p = malloc(TD_HS_BUF))) {
			return -ENOMEM;
		}
		b->cap = TD_HS_BUF;
		return 0;
	}
	if (!(b->p = malloc(need)))
		return -ENOMEM;
	b->cap = need;
	return 0;
}

void hs_buf_put(struct hs_worker *w, struct hs_buf *b)
{
	if (!b->p)
		return;
	if (b->cap == TD_HS_BUF && w->nfree_bufs < HS_FREE_BUFS) {
		*(void **)b->p = w->free_bufs;
		w->free_bufs = b->p;
		w->nfree_bufs++;
	} else {
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}

/* room for extra more bytes at b->len (allocates or grows; the content is kept) */
int hs_buf_reserve(struct hs_worker *w, struct hs_buf *b, uint32_t extra)
{
	struct hs_buf nb;

	if (!b->p)
		return hs_buf_get(w, b, extra);
	if (b->cap - b->len >= extra)
		return 0;
	if (b->pos && b->cap - (b->len - b->pos) >= extra) {
		memmove(b->p, b->p + b->pos, b->len - b->pos);
		b->len -= b->pos;
		b->pos = 0;
		return 0;
	}
	if (hs_buf_get(w, &nb, b->len - b->pos + extra) < 0)
		return -ENOMEM;
	memcpy(nb.p, b->p + b->pos, b->len - b->pos);
	nb.len = b->len - b->pos;
	hs_buf_put(w, b);
	*b = nb;
	return 0;
}

bool hs_out_empty(const struct hs_out *o)
{
	return o->b.len == o->b.pos && !o->slen && o->tpos == o->tlen;
}

/* account n written bytes of o */
void hs_out_advance(struct hs_out *o, size_t n)
{
	uint32_t k = o->b.len - o->b.pos;

	if (k) {
		k = n < k ? (uint32_t)n : k;
		o->b.pos += k;
		n -= k;
	}
	if (o->slen && n) {
		k = n < o->slen ? (uint32_t)n : o->slen;
		o->slice += k;
		o->slen -= k;
		n -= k;
	}
	if (n)
		o->tpos += (uint8_t)n;
	if (o->b.pos == o->b.len)
		o->b.pos = o->b.len = 0;
	if (!o->slen)
		o->slice = NULL;
	if (o->tpos == o->tlen)
		o->tpos = o->tlen = 0;
}

int hs_out_iov(const struct hs_out *o, struct iovec *iov)
{
	int n = 0;

	if (o->b.len > o->b.pos)
		iov[n++] = (struct iovec){ o->b.p + o->b.pos, o->b.len - o->b.pos };
	if (o->slen)
		iov[n++] = (struct iovec){ (void *)o->slice, o->slen };
	if (o->tlen > o->tpos)
		iov[n++] = (struct iovec){ (void *)(o->tail + o->tpos), (size_t)(o->tlen - o->tpos) };
	return n;
}

/* write o to a plain socket: bytes written (>= 0) or -errno; *blocked when the socket is full */
int hs_out_flush_fd(struct hs_out *o, int fd, bool *blocked)
{
	struct iovec iov[3];
	struct msghdr mh = { .msg_iov = iov };
	size_t total = 0, want;
	ssize_t n;

	*blocked = false;
	while ((mh.msg_iovlen = hs_out_iov(o, iov))) {
		want = 0;
		for (size_t i = 0; i < mh.msg_iovlen; i++)
			want += iov[i].iov_len;
		n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				*blocked = true;
				break;
			}
			return -errno;
		}
		hs_out_advance(o, (size_t)n);
		total += (size_t)n;
		if ((size_t)n < want) {
			*blocked = true;
			break;
		}
	}
	return (int)(total > INT32_MAX ? INT32_MAX : total);
}

/* ---- request queue (work requested by handler calls, run before the loop polls) ------------- */

void hs_req_queue(struct td_hs_req *r)
{
	struct hs_worker *w = r->w;

	if (r->queued)
		return;
	r->queued = true;
	r->qprev = NULL;
	r->qnext = w->ready;
	if (w->ready)
		w->ready->qprev = r;
	w->ready = r;
}

static void hs_req_unqueue(struct td_hs_req *r)
{
	if (!r->queued)
		return;
	if (r->qprev)
		r->qprev->qnext = r->qnext;
	else
		r->w->ready = r->qnext;
	if (r->qnext)
		r->qnext->qprev = r->qprev;
	r->queued = false;
	r->qprev = r->qnext = NULL;
}

static void hs_prep_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct hs_worker *w = p->data;
	struct td_hs_req *r;

	for (;;) {
		while ((r = w->ready)) {
			hs_req_unqueue(r);
			hs_conn_run(r->c);
		}
		if (!w->nwq)
			break;
		/* the writes of this iteration; their requests are queued again */
		hs_wq_submit(w);
	}
}

void hs_req_run(struct td_hs_req *r)
{
	hs_conn_run(r->c);
}

/* ---- request contexts ---------------------------------------------------------------------- */

/* the fields of one request (the context may serve the next pipelined one) */
static void hs_req_reset(struct td_hs_req *r)
{
	struct hs_worker *w = r->w;

	r->phase = HS_P_HEAD;
	r->handler = r->answered = r->in_upcall = r->upcall_retry = r->keep_alive = false;
	r->close_after = r->aborted = r->continue_sent = r->expect_continue = false;
	r->hoff = r->hlen = 0;
	memset(&r->bmode, 0, offsetof(struct td_hs_req, scratch) - offsetof(struct td_hs_req, bmode));
	r->radd_len = r->rrm_len = r->nrrm = 0;
	r->fetches = NULL;
	r->status = 0;
	r->bytes_in = r->bytes_out = 0;
	r->error = NULL;
	r->data = NULL;
	r->locallen = 0;
	td_http_parser_init(&r->p, TD_HTTP_REQUEST, &w->lim.http);
}

static struct td_hs_req *hs_req_get(struct hs_conn *c)
{
	struct hs_worker *w = c->w;
	struct td_hs_req *r = w->free_reqs;
	char *scratch = NULL;
	uint32_t scap = 0;

	if (r) {
		w->free_reqs = r->next_free;
		w->nfree_reqs--;
		scratch = r->scratch;
		scap = r->scratch_cap;
	} else if (!(r = malloc(sizeof(*r)))) {
		return NULL;
	}
	/* everything before the parser; the parser inits itself, the rest is reset below */
	memset(r, 0, offsetof(struct td_hs_req, p));
	r->c = c;
	r->w = w;
	r->scratch = scratch;
	r->scratch_cap = scap;
	if (hs_buf_get(w, &r->in, TD_HS_BUF) < 0) {
		free(r->scratch);
		free(r);
		return NULL;
	}
	hs_req_reset(r);
	return r;
}

static void hs_req_put(struct td_hs_req *r)
{
	struct hs_worker *w = r->w;

	hs_req_unqueue(r);
	hs_wq_drop(r);
	hs_buf_put(w, &r->in);
	hs_buf_put(w, &r->out.b);
	hs_buf_put(w, &r->uout.b);
	hs_buf_put(w, &r->uin);
	if (r->c)
		r->c->req = NULL;
	if (w->nfree_reqs < HS_FREE_REQS) {
		r->next_free = w->free_reqs;
		w->free_reqs = r;
		w->nfree_reqs++;
	} else {
		free(r->scratch);
		free(r);
	}
}

/* ---- downstream I/O ------------------------------------------------------------------------ */

static ssize_t hs_conn_read(struct hs_conn *c, char *p, size_t len)
{
	ssize_t n;

	if (c->tls) {
		n = td_tls_read(c->tls, p, len);
		c->tls_rd_w = 0;
		if (n == -EAGAIN) {
			c->tls_rd_w = td_tls_want(c->tls) == TD_TLS_WANT_WRITE;
			c->rd_ready = 0;
		} else if (n < 0 && !td_tls_established(c->tls)) {
			HS_INC(c->w, tls_handshake_errors);
		}
		return n;
	}
	do
		n = recv(c->fd, p, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	/* a short read drained the socket: wait for the next event instead of an EAGAIN read */
	if ((size_t)n < len)
		c->rd_ready = 0;
	return n;
}

/* read-ahead into r->in while there is room: >0 bytes, 0 nothing, -1 EOF or error (c->eof) */
static int hs_client_read(struct td_hs_req *r)
{
	struct hs_conn *c = r->c;
	ssize_t n;
	int got = 0;

	/* consumed body bytes: the space after the head is free again unless uout points there */
	if (r->phase != HS_P_HEAD && !r->uout.slen) {
		uint32_t start = r->hoff + r->hlen;

		if (r->in.pos == r->in.len) {
			r->in.pos = r->in.len = start;
		} else if (r->in.len == r->in.cap && r->in.pos > start) {
			memmove(r->in.p + start, r->in.p + r->in.pos, r->in.len - r->in.pos);
			r->in.len -= r->in.pos - start;
			r->in.pos = start;
		}
	}
	while (c->rd_ready && !c->eof && r->in.len < r->in.cap) {
		n = hs_conn_read(c, r->in.p + r->in.len, r->in.cap - r->in.len);
		if (n > 0) {
			r->in.len += (uint32_t)n;
			got = 1;
			continue;
		}
		if (n == -EAGAIN) {
			c->rd_ready = 0;
			break;
		}
		c->eof = 1;
		c->rd_ready = 0;
		return got ? got : -1;
	}
	return got;
}

/* write r->out to the client: >0 progress, 0 nothing (blocked or empty), -errno */
static int hs_client_flush(struct td_hs_req *r)
{
	struct hs_conn *c = r->c;
	struct iovec iov[3];
	size_t total = 0;
	int n, rc;
	bool blocked;

	if (r->wq_cerr) {
		rc = r->wq_cerr;
		r->wq_cerr = 0;
		return rc;
	}
	if (hs_out_empty(&r->out) || c->wr_blocked)
		return 0;
	if (!c->tls) {
		/* batched: written from the prepare watcher, which runs the request again */
		if (!hs_wq_add(r, HS_WQ_CLIENT))
			return 0;
		rc = hs_out_flush_fd(&r->out, c->fd, &blocked);
		if (rc < 0)
			return rc;
		c->wr_blocked = blocked;
		r->bytes_out += (uint64_t)rc;
		return rc > 0;
	}
	while ((n = hs_out_iov(&r->out, iov)) > 0) {
		ssize_t k = td_tls_write(c->tls, iov[0].iov_base, iov[0].iov_len);

		if (k == -EAGAIN) {
			c->wr_blocked = 1;
			c->tls_wr_r = td_tls_want(c->tls) == TD_TLS_WANT_READ;
			break;
		}
		if (k < 0)
			return (int)k;
		c->tls_wr_r = 0;
		hs_out_advance(&r->out, (size_t)k);
		total += (size_t)k;
	}
	r->bytes_out += total;
	return total > 0;
}

static void hs_io_set(struct ev_loop *loop, ev_io *io, int events)
{
	if ((io->events & (EV_READ | EV_WRITE)) == events && ev_is_active(io) == !!events)
		return;
	ev_io_stop(loop, io);
	if (!events)
		return;
	ev_io_modify(io, events);
	ev_io_start(loop, io);
}

/* ---- the request state machine ------------------------------------------------------------- */

const char *hs_reason(unsigned int s)
{
	switch (s) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return s < 200 ? "Info" : s < 300 ? "OK" : s < 400 ? "Redirect" : s < 500 ?
		"Client Error" : "Server Error";
	}
}

static const char *hs_date(struct hs_worker *w)
{
	time_t t = (time_t)ev_now(w->loop);
	struct tm tm;

	if (t != w->date_t) {
		gmtime_r(&t, &tm);
		strftime(w->date, sizeof(w->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		w->date_t = t;
	}
	return w->date;
}

/* bytes of the request body already in the buffer (after the head) */
static bool hs_body_started(const struct td_hs_req *r)
{
	return r->in.len > r->hoff + r->hlen || r->bytes_in;
}

/* does the client keep the connection after this response (before body checks) */
static bool hs_ka(const struct td_hs_req *r)
{
	return r->keep_alive && !r->close_after && !r->w->draining && !r->c->eof;
}

static int hs_respond_int(struct td_hs_req *r, unsigned int status, const struct td_hs_hdr *hdrs,
			  size_t nhdrs, const void *body, size_t body_len, bool close_after,
			  const char *reason, bool no_date)
{
	struct hs_worker *w = r->w;
	const struct td_http_msg *m = &r->p.msg;
	size_t need = 256 + body_len;
	struct hs_buf *b;
	bool ka, head = m->method == TD_HTTP_M_HEAD && r->handler;
	int n;

	if (status < 100 || status > 999)
		return -EINVAL;
	if (r->c->raw) {
		/* not HTTP: nothing to answer with, the connection is closed */
		r->status = 0;
		r->close_after = true;
		r->bdone = true;
		r->answered = true;
		r->agen++;
		r->phase = HS_P_RESPOND;
		hs_req_queue(r);
		return 0;
	}
	if (!reason)
		reason = hs_reason(status);
	if (strpbrk(reason, "\r\n"))
		return -EINVAL;
	need += strlen(reason);
	for (size_t i = 0; i < nhdrs; i++)
		need += strlen(hdrs[i].name) + strlen(hdrs[i].value) + 4;
	if (close_after)
		r->close_after = true;
	/* the client waits for 100 Continue we will not send: do not wait for its body */
	if (r->expect_continue && !r->continue_sent && !r->bdone && !hs_body_started(r))
		r->close_after = true;
	/* a body we cannot discard within limits: close after the response */
	if (!r->bdone && r->bmode == HS_B_LENGTH &&
	    r->bleft > (w->lim.http.max_body ? w->lim.http.max_body : TD_HTTP_DEF_MAX_BODY))
		r->close_after = true;
	ka = hs_ka(r);
	if (need > UINT32_MAX / 2 || hs_buf_reserve(w, &r->out.b, (uint32_t)need) < 0)
		return -ENOMEM;
	b = &r->out.b;
	n = snprintf(b->p + b->len, b->cap - b->len, "HTTP/1.1 %u %s\r\n%s", status, reason,
		     no_date ? "" : hs_date(w));
	b->len += (uint32_t)n;
	for (size_t i = 0; i < nhdrs; i++) {
		size_t nl = strlen(hdrs[i].name), vl = strlen(hdrs[i].value);

		memcpy(b->p + b->len, hdrs[i].name, nl);
		b->len += (uint32_t)nl;
		memcpy(b->p + b->len, ": ", 2);
		b->len += 2;
		memcpy(b->p + b->len, hdrs[i].value, vl);
		b->len += (uint32_t)vl;
		memcpy(b->p + b->len, "\r\n", 2);
		b->len += 2;
	}
	if (status >= 200 && status != 204 && status != 304) {
		n = snprintf(b->p + b->len, b->cap - b->len, "Content-Length: %zu\r\n", body_len);
		b->len += (uint32_t)n;
	}
	if (!ka) {
		memcpy(b->p + b->len, "Connection: close\r\n", 19);
		b->len += 19;
		r->close_after = true;
	} else if (m->version == 10) {
		memcpy(b->p + b->len, "Connection: keep-alive\r\n", 24);
		b->len += 24;
	}
	memcpy(b->p + b->len, "\r\n", 2);
	b->len += 2;
	if (body_len && !head && status != 204 && status != 304) {
		memcpy(b->p + b->len, body, body_len);
		b->len += (uint32_t)body_len;
	}
	r->status = status;
	r->answered = true;
	r->agen++;
	r->phase = HS_P_RESPOND;
	hs_req_queue(r);
	return 0;
}

int td_hs_respond(struct td_hs_req *r, unsigned int status, const struct td_hs_hdr *hdrs,
		  size_t nhdrs, const void *body, size_t body_len, bool close_after)
{
	if (!r || (nhdrs && !hdrs) || (body_len && !body))
		return -EINVAL;
	if (r->answered && !r->in_upcall)
		return -EALREADY;
	r->in_upcall = false;
	return hs_respond_int(r, status, hdrs, nhdrs, body, body_len, close_after, NULL, false);
}

int td_hs_respond_ex(struct td_hs_req *r, unsigned int status, const struct td_hs_hdr *hdrs,
		     size_t nhdrs, const void *body, size_t body_len,
		     const struct td_hs_resp_opts *opts)
{
	static const struct td_hs_resp_opts none;

	if (!r || (nhdrs && !hdrs) || (body_len && !body))
		return -EINVAL;
	if (r->answered && !r->in_upcall)
		return -EALREADY;
	if (!opts)
		opts = &none;
	r->in_upcall = false;
	return hs_respond_int(r, status, hdrs, nhdrs, body, body_len, opts->close_after,
			      opts->reason, opts->no_date);
}

/* an engine error answer: small text body; "why" goes to td_hs_req_error() */
int hs_respond_status(struct td_hs_req *r, unsigned int status, const char *why)
{
	static const struct td_hs_hdr ct = { "Content-Type", "text/plain" };
	char body[80];
	int n = snprintf(body, sizeof(body), "%u %s\n", status, hs_reason(status));

	if (why && !r->error)
		r->error = why;
	return hs_respond_int(r, status, &ct, 1, body, (size_t)n, !r->handler, NULL, false);
}

/* run ops->done once, release the forward side */
static void hs_req_finish(struct td_hs_req *r)
{
	hs_req_unqueue(r);
	hs_fwd_release(r);
	if (r->handler) {
		r->handler = false;
		if (r->w->hs->ops->done)
			r->w->hs->ops->done(r);
	}
}

/* end the connection after the response: read what the client still sends, then close */
static void hs_conn_linger(struct hs_conn *c)
{
	if (c->tls || c->eof) {
		hs_conn_close(c);
		return;
	}
	shutdown(c->fd, SHUT_WR);
	c->closing = 1;
	hs_io_set(c->w->loop, &c->io, EV_READ);
	hs_tmr_set(c->w, &c->tm, hs_mono() + HS_LINGER_S);
}

/*
 * The request is over (answered and flushed, or aborted): done(), then the next pipelined
 * request, idle, or close. Returns 1 (go on with c) or -1 (c is closed or lingering).
 */
static int hs_req_end(struct td_hs_req *r)
{
	struct hs_conn *c = r->c;
	struct hs_worker *w = r->w;
	bool ka = !r->aborted && hs_ka(r) && r->bdone;

	hs_req_finish(r);
	c->served = 1;
	if (!ka) {
		bool hard = r->aborted;

		hs_req_put(r);
		if (hard)
			hs_conn_close(c);
		else
			hs_conn_linger(c);
		return -1;
	}
	hs_buf_put(w, &r->out.b);
	hs_buf_put(w, &r->uout.b);
	hs_buf_put(w, &r->uin);
	if (r->in.pos < r->in.len) {
		/* pipelined: the next head is already here */
		hs_req_reset(r);
		return 1;
	}
	hs_req_put(r);
	hs_tmr_set(w, &c->tm, hs_mono() + w->lim.idle_timeout_ms / 1000.0);
	return 1;
}

static int hs_req_abort(struct td_hs_req *r, const char *why)
{
	r->aborted = true;
	if (!r->error)
		r->error = why;
	return hs_req_end(r);
}

/* the head is complete: body framing, 100-continue, then the handler */
static int hs_head_done(struct td_hs_req *r, size_t consumed)
{
	struct hs_worker *w = r->w;
	const struct td_http_msg *m = &r->p.msg;
	struct timespec ts;
	int k;

	r->hoff = r->in.pos;
	r->hlen = (uint32_t)consumed;
	r->in.pos += (uint32_t)consumed;
	switch (m->body) {
	case TD_HTTP_BODY_LENGTH:
		r->bmode = HS_B_LENGTH;
		r->bleft = m->content_length;
		break;
	case TD_HTTP_BODY_CHUNKED:
		r->bmode = HS_B_CHUNKED;
		td_http_chunked_init(&r->ch, TD_HTTP_REQUEST, &w->lim.http);
		break;
	default:
		r->bmode = HS_B_NONE;
		r->bdone = true;
	}
	if (r->bmode != HS_B_NONE) {
		/* keep room for the body after a big head (the head never moves once handed out) */
		if (r->in.cap - r->in.pos < TD_HS_BUF / 4 && r->hoff) {
			memmove(r->in.p, r->in.p + r->hoff, r->in.len - r->hoff);
			r->in.len -= r->hoff;
			r->in.pos -= r->hoff;
			r->hoff = 0;
		}
		if (r->in.cap - r->in.pos < TD_HS_BUF / 4 &&
		    hs_buf_reserve(w, &r->in, TD_HS_BUF) < 0)
			return hs_req_abort(r, "out of memory");
		if (m->version == 11) {
			k = td_http_header_find(m, r->in.p + r->hoff, "expect", 0);
			if (k >= 0 && m->hdr[k].value.len == 12 &&
			    !strncasecmp(r->in.p + r->hoff + m->hdr[k].value.off, "100-continue", 12))
				r->expect_continue = true;
		}
	}
	r->keep_alive = m->keep_alive && !w->draining;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	r->start_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	HS_INC(w, requests);
	r->phase = HS_P_HANDLER;
	r->handler = true;
	w->hs->ops->request(r);
	return 1;
}

/*
 * RAW connection: offer the bytes so far to ops->raw (r->hlen: the length offered last time).
 * 1 go on (answered, or the handler decides later), 0 more bytes wanted.
 */
static int hs_raw_offer(struct td_hs_req *r)
{
	struct hs_worker *w = r->w;
	uint32_t len = r->in.len - r->in.pos;
	struct timespec ts;
	int rc;

	if (!r->handler) {
		r->handler = true;
		r->bdone = true;
		r->keep_alive = false;
		r->hoff = r->in.pos;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		r->start_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		HS_INC(w, requests);
	}
	r->hlen = len;
	r->phase = HS_P_HANDLER;
	rc = w->hs->ops->raw(r, r->in.p + r->in.pos, len);
	if (r->answered || rc != -EAGAIN) {
		r->hlen = 0;	/* the bytes are not a head: a tunnel relays them from hoff */
		if (!r->answered && rc < 0)
			hs_respond_status(r, 400, "raw handler refused");
		return 1;
	}
	r->phase = HS_P_HEAD;
	if (len >= TD_HS_BUF) {
		r->hlen = 0;
		hs_respond_status(r, 400, "raw handler wants more than TD_HS_BUF bytes");
		return 1;
	}
	return 0;
}

/* reading and parsing a head: 1 go on, 0 wait, -1 gone */
static int hs_head_step(struct td_hs_req *r)
{
	struct hs_conn *c = r->c;
	struct hs_worker *w = r->w;
	enum td_http_rc rc;
	size_t consumed;
	ssize_t n;

	for (;;) {
		if (c->raw) {
			if (r->in.len > r->in.pos + r->hlen && hs_raw_offer(r))
				return 1;
		} else if (r->in.len > r->in.pos) {
			rc = td_http_parse(&r->p, r->in.p + r->in.pos, r->in.len - r->in.pos, &consumed);
			if (rc == TD_HTTP_DONE)
				return hs_head_done(r, consumed);
			if (rc == TD_HTTP_ERROR) {
				HS_INC(w, parse_errors);
				r->bdone = true;
				r->hoff = r->in.pos;
				hs_respond_status(r, r->p.error, r->p.why);
				return 1;
			}
		}
		if (c->eof) {
			if (!r->handler)
				hs_req_put(r);	/* else ops->done runs from the close */
			hs_conn_close(c);
			return -1;
		}
		if (!c->rd_ready) {
			if (r->in.len == r->in.pos) {
				/* nothing arrived: stay idle without a context */
				hs_req_put(r);
				return 1;
			}
			if (!r->hlen) {
				/* first bytes of this head: the header timeout starts */
				r->hlen = 1;
				hs_tmr_set(w, &c->tm, hs_mono() + w->lim.header_timeout_ms / 1000.0);
			}
			return 0;
		}
		if (r->in.len == r->in.cap) {
			if (r->in.pos) {
				memmove(r->in.p, r->in.p + r->in.pos, r->in.len - r->in.pos);
				r->in.len -= r->in.pos;
				r->in.pos = 0;
			} else if (hs_buf_reserve(w, &r->in, w->lim.http.max_start_line +
						  w->lim.http.max_header_block + 64 - r->in.cap) < 0) {
				hs_req_put(r);
				hs_conn_close(c);
				return -1;
			}
		}
		n = hs_conn_read(c, r->in.p + r->in.len, r->in.cap - r->in.len);
		if (n > 0)
			r->in.len += (uint32_t)n;
		else if (n == -EAGAIN)
			c->rd_ready = 0;
		else
			c->eof = 1;
	}
}

/* consume request body bytes from r->in without forwarding them */
static int hs_body_discard(struct td_hs_req *r)
{
	struct td_http_slice d;
	size_t consumed;
	enum td_http_rc rc;
	int progress = 0;

	while (!r->bdone && r->in.len > r->in.pos) {
		uint32_t avail = r->in.len - r->in.pos;

		progress = 1;
		if (r->bmode == HS_B_LENGTH) {
			uint32_t k = r->bleft < avail ? (uint32_t)r->bleft : avail;

			r->in.pos += k;
			r->bleft -= k;
			r->bytes_in += k;
			r->bdone = !r->bleft;
			continue;
		}
		rc = td_http_chunked_decode(&r->ch, r->in.p + r->in.pos, avail, &consumed, &d);
		r->in.pos += (uint32_t)consumed;
		if (rc == TD_HTTP_DATA)
			r->bytes_in += d.len;
		else if (rc == TD_HTTP_DONE)
			r->bdone = true;
		else if (rc == TD_HTTP_ERROR) {
			r->close_after = true;
			return -1;
		} else
			break;
	}
	return progress;
}

/* a local response: flush it, discard the rest of the request body */
static int hs_respond_step(struct td_hs_req *r)
{
	struct hs_conn *c = r->c;
	int rc;

	for (;;) {
		int p = 0;

		rc = hs_client_flush(r);
		if (rc < 0)
			return hs_req_abort(r, "client write failed");
		p |= rc;
		if (!r->close_after && !r->bdone) {
			rc = hs_body_discard(r);
			if (rc < 0 && hs_out_empty(&r->out))
				return hs_req_end(r);
			p |= rc > 0;
			rc = hs_client_read(r);
			p |= rc > 0;
			if (rc < 0 && !r->bdone)
				r->close_after = true;
		}
		if (hs_out_empty(&r->out) && (r->bdone || r->close_after || c->eof))
			return hs_req_end(r);
		if (!p)
			return 0;
	}
}

/* the handler has not answered yet: read ahead (bounded), notice a closed client */
static int hs_handler_step(struct td_hs_req *r)
{
	hs_client_read(r);
	return 0;
}

/* the events the client watcher needs now */
static void hs_conn_watch(struct hs_conn *c)
{
	struct td_hs_req *r = c->req;
	struct hs_worker *w = c->w;
	int ev = 0;
	bool rd;

	if (c->closing)
		return;
	if (!r)
		rd = !c->eof;
	else if (r->phase == HS_P_HEAD)
		rd = !c->eof;
	else if (r->phase == HS_P_TUNNEL)
		/* client bytes go to uout.b once the ones read ahead in r->in were relayed */
		rd = !c->eof && r->tun == HS_T_OPEN && r->in.pos == r->in.len &&
		     (!r->uout.b.p || r->uout.b.len < r->uout.b.cap);
	else
		rd = !c->eof && r->in.len < r->in.cap;
	if (rd)
		ev |= c->tls_rd_w ? EV_WRITE : EV_READ;
	if (r && !hs_out_empty(&r->out) && c->wr_blocked)
		ev |= c->tls_wr_r ? EV_READ : EV_WRITE;
	hs_io_set(w->loop, &c->io, ev);
	if (r && r->phase >= HS_P_RESPOND && r->phase != HS_P_TUNNEL) {
		bool wait_w = !hs_out_empty(&r->out) && c->wr_blocked;
		bool wait_r = !r->bdone && r->in.len == r->in.pos && !c->eof &&
			      (r->phase == HS_P_RESPOND || hs_fwd_wants_client_read(r));

		hs_tmr_set(w, &c->tm, wait_w || wait_r ?
			   hs_mono() + w->lim.body_timeout_ms / 1000.0 : 0);
	}
}

void hs_conn_run(struct hs_conn *c)
{
	struct td_hs_req *r;
	int rc;

	for (;;) {
		if (c->closing)
			return;
		r = c->req;
		if (!r) {
			if (c->eof) {
				hs_conn_close(c);
				return;
			}
			if (!c->rd_ready)
				break;
			if (!(r = hs_req_get(c))) {
				hs_conn_close(c);
				return;
			}
			c->req = r;
		}
		hs_req_unqueue(r);	/* running it now covers what was queued */
		switch (r->phase) {
		case HS_P_HEAD:
			rc = hs_head_step(r);
			break;
		case HS_P_HANDLER:
			rc = hs_handler_step(r);
			break;
		case HS_P_RESPOND:
			rc = hs_respond_step(r);
			break;
		case HS_P_TUNNEL:
			rc = hs_tun_step(r);
			break;
		default:
			rc = hs_fwd_step(r);
			break;
		}
		if (rc < 0)
			return;
		if (rc == 0)
			break;
	}
	hs_conn_watch(c);
}

/* forward side helpers exported to hs_fwd.c */
int hs_req_client_read(struct td_hs_req *r)
{
	return hs_client_read(r);
}

int hs_req_client_flush(struct td_hs_req *r)
{
	return hs_client_flush(r);
}

ssize_t hs_conn_read_ext(struct hs_conn *c, char *p, size_t len)
{
	return hs_conn_read(c, p, len);
}

int hs_req_end_ext(struct td_hs_req *r)
{
	return hs_req_end(r);
}

int hs_req_abort_ext(struct td_hs_req *r, const char *why)
{
	return hs_req_abort(r, why);
}

/* ---- connections --------------------------------------------------------------------------- */

static void hs_conn_close(struct hs_conn *c)
{
	struct hs_worker *w = c->w;

	if (c->req) {
		struct td_hs_req *r = c->req;

		if (r->phase != HS_P_HEAD || r->handler) {
			r->aborted = true;
			if (!r->error)
				r->error = "connection closed";
		}
		hs_req_finish(r);
		hs_req_put(r);
	}
	ev_io_stop(w->loop, &c->io);
	ev_timer_stop(w->loop, &c->tm.t);
	if (c->tls)
		td_tls_conn_free(c->tls);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	atomic_fetch_sub_explicit(&w->hs->nconns, 1, memory_order_relaxed);
	HS_DEC(w, conns_open);
	free(c);
	if (w->draining && !w->nconns)
		ev_break(w->loop, EVBREAK_ALL);
}

static void hs_conn_linger_read(struct hs_conn *c)
{
	char buf[4096];
	ssize_t n;

	for (int i = 0; i < 16; i++) {
		n = read(c->fd, buf, sizeof(buf));
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		break;
	}
	if (n > 0)
		return;
	hs_conn_close(c);
}

static void hs_conn_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct hs_conn *c = (struct hs_conn *)io;

	if (c->closing) {
		hs_conn_linger_read(c);
		return;
	}
	if (revents & EV_READ) {
		if (c->tls_wr_r)
			c->wr_blocked = 0;
		c->rd_ready = 1;
	}
	if (revents & EV_WRITE) {
		if (c->tls_rd_w)
			c->rd_ready = 1;
		c->wr_blocked = 0;
	}
	hs_conn_run(c);
}

static void hs_conn_tm_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct hs_conn *c = (struct hs_conn *)((char *)t - offsetof(struct hs_conn, tm.t));
	struct hs_worker *w = c->w;
	struct td_hs_req *r = c->req;

	if (!hs_tmr_expired(w, &c->tm))
		return;
	if (c->closing) {
		hs_conn_close(c);
		return;
	}
	if (!r) {
		HS_INC(w, idle_closed);
		hs_conn_close(c);
		return;
	}
	switch (r->phase) {
	case HS_P_HEAD:
		/* slowloris: the head did not complete in time */
		HS_INC(w, header_timeouts);
		r->bdone = true;
		hs_respond_status(r, 408, "header timeout");
		hs_conn_run(c);
		return;
	case HS_P_HANDLER:
		return;
	case HS_P_TUNNEL:
		if (hs_tun_timeout(r) > 0)
			hs_conn_run(c);
		return;
	default:
		if (!r->resp_started && r->phase == HS_P_FORWARD && !r->bdone) {
			/* the request body stalled before any response: tell the client */
			hs_fwd_release(r);
			r->close_after = true;
			hs_respond_status(r, 408, "request body timeout");
			hs_conn_run(c);
			return;
		}
		hs_req_abort(r, "client timeout");
	}
}

static void hs_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct hs_lsock *ls = (struct hs_lsock *)io;
	struct hs_worker *w = io->data;
	struct td_hs *hs = w->hs;
	union hs_addr peer;
	socklen_t plen;
	struct hs_conn *c;
	unsigned long n;
	int fd, one = 1;

	for (int i = 0; i < HS_ACCEPT_BATCH; i++) {
		plen = sizeof(peer);
		fd = accept4(io->fd, &peer.sa, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				td_warn("http %s: accept: %s", hs->name, strerror(errno));
			return;
		}
		n = atomic_fetch_add_explicit(&hs->nconns, 1, memory_order_relaxed) + 1;
		if (w->draining || (w->lim.max_conns && n > w->lim.max_conns)) {
			atomic_fetch_sub_explicit(&hs->nconns, 1, memory_order_relaxed);
			HS_INC(w, conns_rejected);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (c && ls->tls && !(c->tls = td_tls_conn_new(ls->tls, fd))) {
			free(c);
			c = NULL;
		}
		if (!c) {
			atomic_fetch_sub_explicit(&hs->nconns, 1, memory_order_relaxed);
			close(fd);
			continue;
		}
		c->w = w;
		c->fd = fd;
		c->raw = ls->mode == TD_HS_LISTEN_RAW;
		c->ltag = ls->tag;
		c->peerlen = plen <= sizeof(c->peer) ? plen : sizeof(c->peer);
		memcpy(&c->peer, &peer, c->peerlen);
		ev_io_init(&c->io, hs_conn_io_cb, fd, EV_READ);
		ev_io_start(loop, &c->io);
		ev_init(&c->tm.t, hs_conn_tm_cb);
		/* a connection that never sends a request is closed after header_timeout */
		hs_tmr_set(w, &c->tm, hs_mono() + w->lim.header_timeout_ms / 1000.0);
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		w->nconns++;
		HS_INC(w, conns_accepted);
		HS_INC(w, conns_open);
	}
}

/* ---- request accessors --------------------------------------------------------------------- */

const struct td_http_msg *td_hs_req_msg(const struct td_hs_req *r)
{
	return &r->p.msg;
}

const char *td_hs_req_buf(const struct td_hs_req *r)
{
	return r->in.p + r->hoff;
}

const struct sockaddr *td_hs_req_peer(const struct td_hs_req *r, socklen_t *len)
{
	if (len)
		*len = r->c->peerlen;
	return &r->c->peer.sa;
}

const struct sockaddr *td_hs_req_local(const struct td_hs_req *r, socklen_t *len)
{
	struct td_hs_req *m = (struct td_hs_req *)r;

	if (!m->locallen) {
		m->locallen = sizeof(m->local);
		if (getsockname(r->c->fd, &m->local.sa, &m->locallen) < 0)
			m->locallen = 0;
	}
	if (len)
		*len = m->locallen;
	return &m->local.sa;
}

bool td_hs_req_tls(const struct td_hs_req *r)
{
	return r->c->tls != NULL;
}

const char *td_hs_req_sni(const struct td_hs_req *r)
{
	return r->c->tls ? td_tls_sni(r->c->tls) : NULL;
}

unsigned int td_hs_req_worker(const struct td_hs_req *r)
{
	return r->w->idx;
}

const struct td_http_msg *td_hs_req_upstream_head(const struct td_hs_req *r, const char **buf)
{
	if (!r->up_head)
		return NULL;
	*buf = r->up_head;
	return &r->rp.msg;
}

struct ev_loop *td_hs_req_loop(const struct td_hs_req *r)
{
	return r->w->loop;
}

struct td_hs *td_hs_req_hs(const struct td_hs_req *r)
{
	return r->w->hs;
}

uint32_t td_hs_req_listener_tag(const struct td_hs_req *r)
{
	return r->c->ltag;
}

uint64_t td_hs_req_start_ns(const struct td_hs_req *r)
{
	return r->start_ns;
}

void td_hs_req_set_data(struct td_hs_req *r, void *data)
{
	r->data = data;
}

void *td_hs_req_data(const struct td_hs_req *r)
{
	return r->data;
}

unsigned int td_hs_req_status(const struct td_hs_req *r)
{
	return r->status;
}

uint64_t td_hs_req_bytes_in(const struct td_hs_req *r)
{
	return r->bytes_in;
}

uint64_t td_hs_req_bytes_out(const struct td_hs_req *r)
{
	return r->bytes_out;
}

const char *td_hs_req_error(const struct td_hs_req *r)
{
	return r->error;
}

bool td_hs_req_aborted(const struct td_hs_req *r)
{
	return r->aborted;
}

/* ---- workers and commands ------------------------------------------------------------------ */

static void hs_lsock_close(struct hs_worker *w, struct hs_lsock *ls)
{
	ev_io_stop(w->loop, &ls->io);
	close(ls->io.fd);
	free(ls);
}

static void hs_drain_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct hs_worker *w = t->data;
	struct hs_conn *c, *next;

	for (c = w->conns; c; c = next) {
		next = c->next;
		if (c->req && c->req->phase != HS_P_HEAD)
			hs_req_abort(c->req, "shutdown");
		else
			hs_conn_close(c);
	}
	ev_break(loop, EVBREAK_ALL);
}

static void hs_cmd_apply(struct hs_worker *w, struct hs_cmd *cmd)
{
	struct hs_lsock *ls, **pp;
	struct hs_conn *c, *next;

	switch (cmd->type) {
	case HS_CMD_LISTEN:
		ls = calloc(1, sizeof(*ls));
		if (!ls) {
			close(cmd->fd);
			break;
		}
		ls->id = cmd->id;
		ls->tls = cmd->tls;
		ls->mode = cmd->mode;
		ls->tag = cmd->tag;
		ev_io_init(&ls->io, hs_accept_cb, cmd->fd, EV_READ);
		ls->io.data = w;
		ev_io_start(w->loop, &ls->io);
		ls->next = w->lsocks;
		w->lsocks = ls;
		break;
	case HS_CMD_UNLISTEN:
		for (pp = &w->lsocks; (ls = *pp);) {
			if (ls->id == cmd->id) {
				*pp = ls->next;
				hs_lsock_close(w, ls);
			} else {
				pp = &ls->next;
			}
		}
		break;
	case HS_CMD_LIMITS:
		w->lim = cmd->lim;
		break;
	case HS_CMD_STOP:
		while ((ls = w->lsocks)) {
			w->lsocks = ls->next;
			hs_lsock_close(w, ls);
		}
		w->draining = true;
		for (c = w->conns; c; c = next) {
			next = c->next;
			if (!c->req || (c->req->phase == HS_P_HEAD && !c->req->handler))
				hs_conn_close(c);
			else
				c->req->keep_alive = false;
		}
		if (!w->nconns) {
			ev_break(w->loop, EVBREAK_ALL);
			break;
		}
		ev_timer_init(&w->drain_tm, hs_drain_cb, cmd->drain_ms / 1000.0, 0.);
		w->drain_tm.data = w;
		ev_timer_start(w->loop, &w->drain_tm);
		break;
	}
}

static void hs_async_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct hs_worker *w = a->data;
	struct td_hs *hs = w->hs;
	struct hs_cmd *cmd;

	for (;;) {
		pthread_mutex_lock(&w->mtx);
		cmd = w->cmds;
		if (cmd)
			w->cmds = cmd->next;
		pthread_mutex_unlock(&w->mtx);
		if (!cmd)
			break;
		hs_cmd_apply(w, cmd);
		pthread_mutex_lock(&hs->mtx);
		cmd->done = true;
		pthread_cond_broadcast(&hs->cond);
		pthread_mutex_unlock(&hs->mtx);
	}
}

/* run cmd on worker w: directly before start, else through its loop, waiting when wait */
static void hs_cmd_post(struct td_hs *hs, struct hs_worker *w, struct hs_cmd *cmd, bool wait)
{
	struct hs_cmd **pp;

	cmd->done = false;
	cmd->next = NULL;
	if (!w->started) {
		hs_cmd_apply(w, cmd);
		return;
	}
	pthread_mutex_lock(&w->mtx);
	for (pp = &w->cmds; *pp; pp = &(*pp)->next)
		;
	*pp = cmd;
	pthread_mutex_unlock(&w->mtx);
	ev_async_send(w->loop, &w->async);
	if (!wait)
		return;
	pthread_mutex_lock(&hs->mtx);
	while (!cmd->done)
		pthread_cond_wait(&hs->cond, &hs->mtx);
	pthread_mutex_unlock(&hs->mtx);
}

static void *hs_worker_main(void *arg)
{
	struct hs_worker *w = arg;
	char name[16];

	snprintf(name, sizeof(name), "td-%.6s-%u", w->hs->name, w->idx % 1000);
	pthread_setname_np(pthread_self(), name);
	hs_ring_init(w);
	ev_run(w->loop, 0);
	return NULL;
}

struct td_hs *td_hs_new(const struct td_hs_conf *conf)
{
	struct td_hs *hs;
	long ncpu;
	unsigned int n;
	int err = ENOMEM;

	if (!conf || !conf->ops || !conf->ops->request) {
		errno = EINVAL;
		return NULL;
	}
	n = conf->workers;
	if (!n) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		n = ncpu > 0 ? (unsigned int)ncpu : 1;
	}
	if (n > TD_HS_MAX_WORKERS)
		n = TD_HS_MAX_WORKERS;
	hs = calloc(1, sizeof(*hs));
	if (!hs)
		goto fail;
	hs->nworkers = n;
	hs->ops = conf->ops;
	hs->arg = conf->arg;
	snprintf(hs->name, sizeof(hs->name), "%s", conf->name ? conf->name : "http");
	hs->lim = conf->lim;
	if (!hs->lim.http.max_start_line)
		td_hs_limits_default(&hs->lim);
	if (!hs->lim.header_timeout_ms)
		hs->lim.header_timeout_ms = TD_HS_DEF_HEADER_TIMEOUT;
	if (!hs->lim.idle_timeout_ms)
		hs->lim.idle_timeout_ms = TD_HS_DEF_IDLE_TIMEOUT;
	if (!hs->lim.body_timeout_ms)
		hs->lim.body_timeout_ms = TD_HS_DEF_BODY_TIMEOUT;
	pthread_mutex_init(&hs->mtx, NULL);
	pthread_cond_init(&hs->cond, NULL);
	atomic_init(&hs->nconns, 0);
	if (posix_memalign((void **)&hs->w, 64, n * sizeof(*hs->w)))
		goto fail;
	memset(hs->w, 0, n * sizeof(*hs->w));
	for (unsigned int i = 0; i < n; i++) {
		struct hs_worker *w = &hs->w[i];

		w->hs = hs;
		w->idx = i;
		w->lim = hs->lim;
		pthread_mutex_init(&w->mtx, NULL);
		w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
		if (!w->loop) {
			hs->nworkers = i;
			goto fail;
		}
		ev_async_init(&w->async, hs_async_cb);
		w->async.data = w;
		ev_async_start(w->loop, &w->async);
		ev_prepare_init(&w->prep, hs_prep_cb);
		w->prep.data = w;
		ev_prepare_start(w->loop, &w->prep);
	}
	/* validate the limits once: a parser refuses bad ones */
	{
		struct td_http_parser p;

		if (td_http_parser_init(&p, TD_HTTP_REQUEST, &hs->lim.http) < 0) {
			err = EINVAL;
			goto fail;
		}
	}
	return hs;
fail:
	td_hs_free(hs, 0);
	errno = err;
	return NULL;
}

static int hs_listen_sock(const struct td_hs_listener *l)
{
	int fd, one = 1;

	fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    (l->ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)&l->ss, l->sslen) < 0 || listen(fd, 1024) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int td_hs_listen(struct td_hs *hs, const struct td_hs_listener *l)
{
	int fds[TD_HS_MAX_WORKERS];
	struct hs_cmd cmd;
	int id, rc = 0;
	unsigned int i;
	bool *nu;

	if (!hs || !l || (l->ss.ss_family != AF_INET && l->ss.ss_family != AF_INET6))
		return -EINVAL;
	if (l->mode > TD_HS_LISTEN_RAW ||
	    (l->mode == TD_HS_LISTEN_RAW && (l->tls || !hs->ops->raw)))
		return -EINVAL;
	pthread_mutex_lock(&hs->mtx);
	for (id = 0; id < hs->nlis && hs->lis_used[id]; id++)
		;
	if (id == hs->nlis) {
		nu = realloc(hs->lis_used, (size_t)(hs->nlis + 1) * sizeof(*nu));
		if (!nu) {
			pthread_mutex_unlock(&hs->mtx);
			return -ENOMEM;
		}
		hs->lis_used = nu;
		hs->nlis++;
	}
	hs->lis_used[id] = true;
	pthread_mutex_unlock(&hs->mtx);

	for (i = 0; i < hs->nworkers; i++) {
		fds[i] = hs_listen_sock(l);
		if (fds[i] < 0) {
			rc = fds[i];
			while (i--)
				close(fds[i]);
			pthread_mutex_lock(&hs->mtx);
			hs->lis_used[id] = false;
			pthread_mutex_unlock(&hs->mtx);
			return rc;
		}
	}
	for (i = 0; i < hs->nworkers; i++) {
		memset(&cmd, 0, sizeof(cmd));
		cmd.type = HS_CMD_LISTEN;
		cmd.id = id;
		cmd.fd = fds[i];
		cmd.tls = l->tls;
		cmd.mode = l->mode;
		cmd.tag = l->tag;
		hs_cmd_post(hs, &hs->w[i], &cmd, true);
	}
	return id;
}

int td_hs_unlisten(struct td_hs *hs, int id)
{
	struct hs_cmd cmd;

	if (!hs || id < 0)
		return -EINVAL;
	pthread_mutex_lock(&hs->mtx);
	if (id >= hs->nlis || !hs->lis_used[id]) {
		pthread_mutex_unlock(&hs->mtx);
		return -ENOENT;
	}
	pthread_mutex_unlock(&hs->mtx);
	for (unsigned int i = 0; i < hs->nworkers; i++) {
		memset(&cmd, 0, sizeof(cmd));
		cmd.type = HS_CMD_UNLISTEN;
		cmd.id = id;
		hs_cmd_post(hs, &hs->w[i], &cmd, true);
	}
	pthread_mutex_lock(&hs->mtx);
	hs->lis_used[id] = false;
	pthread_mutex_unlock(&hs->mtx);
	return 0;
}

int td_hs_start(struct td_hs *hs)
{
	sigset_t all, old;
	unsigned int i;
	int rc = 0;

	if (!hs)
		return -EINVAL;
	if (hs->started)
		return -EALREADY;
	/* workers take no signals: the agent's main thread handles them */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < hs->nworkers; i++) {
		rc = -pthread_create(&hs->w[i].th, NULL, hs_worker_main, &hs->w[i]);
		if (rc)
			break;
		hs->w[i].started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	hs->started = true;	/* the threads that run own their loops from now on */
	return rc;
}

void td_hs_free(struct td_hs *hs, uint32_t drain_ms)
{
	struct hs_cmd cmds[TD_HS_MAX_WORKERS];
	unsigned int i;

	if (!hs)
		return;
	if (hs->started) {
		for (i = 0; i < hs->nworkers; i++) {
			if (!hs->w[i].started)
				continue;
			memset(&cmds[i], 0, sizeof(cmds[i]));
			cmds[i].type = HS_CMD_STOP;
			cmds[i].drain_ms = drain_ms;
			hs_cmd_post(hs, &hs->w[i], &cmds[i], false);
		}
		for (i = 0; i < hs->nworkers; i++)
			if (hs->w[i].started)
				pthread_join(hs->w[i].th, NULL);
	}
	for (i = 0; hs->w && i < hs->nworkers; i++) {
		struct hs_worker *w = &hs->w[i];
		struct hs_lsock *ls;
		struct td_hs_req *r;
		void *b;

		if (!w->loop)
			continue;
		w->draining = true;
		while ((ls = w->lsocks)) {
			w->lsocks = ls->next;
			hs_lsock_close(w, ls);
		}
		while (w->conns) {
			if (w->conns->req && w->conns->req->phase != HS_P_HEAD)
				hs_req_abort(w->conns->req, "shutdown");
			else
				hs_conn_close(w->conns);
		}
		hs_pools_free(w);
		hs_ring_free(w);
		while ((r = w->free_reqs)) {
			w->free_reqs = r->next_free;
			free(r->scratch);
			free(r);
		}
		while ((b = w->free_bufs)) {
			w->free_bufs = *(void **)b;
			free(b);
		}
		ev_async_stop(w->loop, &w->async);
		ev_prepare_stop(w->loop, &w->prep);
		ev_timer_stop(w->loop, &w->drain_tm);
		ev_loop_destroy(w->loop);
		pthread_mutex_destroy(&w->mtx);
	}
	free(hs->w);
	free(hs->lis_used);
	pthread_mutex_destroy(&hs->mtx);
	pthread_cond_destroy(&hs->cond);
	free(hs);
}

void *td_hs_arg(const struct td_hs *hs)
{
	return hs ? hs->arg : NULL;
}

unsigned int td_hs_workers(const struct td_hs *hs)
{
	return hs ? hs->nworkers : 0;
}

void td_hs_set_limits(struct td_hs *hs, const struct td_hs_limits *lim)
{
	struct hs_cmd cmd;
	struct td_http_parser p;

	if (!hs || !lim || td_http_parser_init(&p, TD_HTTP_REQUEST, &lim->http) < 0)
		return;
	pthread_mutex_lock(&hs->mtx);
	hs->lim = *lim;
	pthread_mutex_unlock(&hs->mtx);
	for (unsigned int i = 0; i < hs->nworkers; i++) {
		memset(&cmd, 0, sizeof(cmd));
		cmd.type = HS_CMD_LIMITS;
		cmd.lim = *lim;
		hs_cmd_post(hs, &hs->w[i], &cmd, true);
	}
}

void td_hs_stats_get(const struct td_hs *hs, struct td_hs_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!hs)
		return;
	for (unsigned int i = 0; i < hs->nworkers; i++) {
		const struct hs_counters *c = &hs->w[i].st;

#define HS_SUM(f) st->f += __atomic_load_n(&c->f, __ATOMIC_RELAXED)
		HS_SUM(conns_accepted);
		HS_SUM(conns_rejected);
		HS_SUM(conns_open);
		HS_SUM(requests);
		HS_SUM(parse_errors);
		HS_SUM(header_timeouts);
		HS_SUM(idle_closed);
		HS_SUM(upstream_conns_open);
		HS_SUM(upstream_reused);
		HS_SUM(upstream_errors);
		HS_SUM(tls_handshake_errors);
		HS_SUM(tunnels);
		HS_SUM(tunnels_open);
#undef HS_SUM
	}
}

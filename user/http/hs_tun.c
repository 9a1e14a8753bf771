/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* HTTP engine, tunnels: CONNECT requests and RAW listeners relayed to an upstream. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hs_int.h"

/*
 * Buffers of a tunnel:
 *  - client to upstream: first the bytes already read into r->in after the CONNECT head (or
 *    the ones given to ops->raw), then r->uout.b, refilled from the client only when empty.
 *    r->in is never written again, so the head (td_hs_req_buf) stays valid until done().
 *  - upstream to client: r->uin, read only when no slice of it is pending in r->out; the whole
 *    read becomes the slice (after "200 Connection established" in r->out.b, if not sent yet).
 * Either side stops reading while the other side's buffer is full (TCP backpressure).
 * Half-close: a client FIN becomes shutdown(SHUT_WR) of the upstream once everything before it
 * was written; an upstream FIN becomes shutdown(SHUT_WR) of a plain client. TLS has no
 * half-close in td_tls: an upstream FIN ends a TLS client's tunnel (close_notify) once flushed.
 * The tunnel ends normally when both directions are shut, aborted on a reset, a write error
 * or idle_ms without a byte either way.
 */

static const char hs_tun_200[] = "HTTP/1.1 200 Connection established\r\n\r\n";

int td_hs_tunnel(struct td_hs_req *r, const struct td_hs_upstream *u, uint32_t idle_ms)
{
	if (!r || !u || !u->addr || u->addrlen > sizeof(union hs_addr) ||
	    (u->addr->sa_family != AF_INET && u->addr->sa_family != AF_INET6))
		return -EINVAL;
	if (r->answered && !r->in_upcall)
		return -EALREADY;
	if (!r->handler || (!r->c->raw && (r->p.msg.method != TD_HTTP_M_CONNECT ||
					   r->bmode != HS_B_NONE)))
		return -EINVAL;
	memcpy(&r->uaddr, u->addr, u->addrlen);
	r->uaddrlen = u->addrlen;
	r->connect_ms = u->connect_timeout_ms ? u->connect_timeout_ms : TD_HS_DEF_CONNECT_TIMEOUT;
	r->tag = u->tag;
	r->tun_idle_ms = idle_ms ? idle_ms : r->w->lim.idle_timeout_ms;
	r->tun = HS_T_NONE;
	r->keep_alive = false;
	r->in_upcall = false;
	r->answered = true;
	r->agen++;
	r->phase = HS_P_TUNNEL;
	hs_req_queue(r);
	return 0;
}

void hs_tun_release(struct td_hs_req *r)
{
	if (r->tun == HS_T_OPEN)
		HS_DEC(r->w, tunnels_open);
	r->tun = HS_T_NONE;
}

static void hs_tun_close_up(struct td_hs_req *r)
{
	if (r->up) {
		r->up->r = NULL;
		hs_up_close(r->up);
		r->up = NULL;
	}
}

/* the connect failed: ops->upstream (may answer, or tunnel elsewhere), else 502/504 or close */
static int hs_tun_fail(struct td_hs_req *r, int err)
{
	const struct td_hs_ops *ops = r->w->hs->ops;
	uint32_t gen;

	HS_INC(r->w, upstream_errors);
	hs_tun_close_up(r);
	r->tun = HS_T_NONE;
	if (ops->upstream) {
		gen = r->agen;
		r->in_upcall = true;
		r->upcall_retry = false;
		ops->upstream(r, r->tag, err, 0, false);
		r->in_upcall = false;
		if (r->agen != gen)
			return 1;
	}
	if (r->c->raw)
		return hs_req_abort_ext(r, hs_err_text(err));
	/* bytes the client sent after CONNECT are not HTTP: no other request on this connection */
	r->close_after = true;
	hs_respond_status(r, err == -ETIMEDOUT ? 504 : 502, hs_err_text(err));
	return 1;
}

static int hs_tun_connect(struct td_hs_req *r)
{
	struct hs_up *u;
	int err = 0;

	u = hs_up_new(r->w, &r->uaddr, r->uaddrlen, &err);
	if (!u)
		return hs_tun_fail(r, err);
	r->up = u;
	u->r = r;
	u->f = NULL;
	r->up_eof = false;
	r->up_err = 0;
	r->tun = HS_T_CONNECTING;
	hs_tmr_set(r->w, &r->c->tm, hs_mono() + r->connect_ms / 1000.0);
	return 0;
}

static int hs_tun_open(struct td_hs_req *r)
{
	const struct td_hs_ops *ops = r->w->hs->ops;

	r->tun = HS_T_OPEN;
	HS_INC(r->w, tunnels);
	HS_INC(r->w, tunnels_open);
	if (!r->c->raw) {
		if (hs_buf_reserve(r->w, &r->out.b, sizeof(hs_tun_200)) < 0)
			return -ENOMEM;
		memcpy(r->out.b.p + r->out.b.len, hs_tun_200, sizeof(hs_tun_200) - 1);
		r->out.b.len += sizeof(hs_tun_200) - 1;
		r->status = 200;
	}
	r->resp_started = true;
	/* the attempt succeeded: reported like a response head (no re-answer possible here) */
	if (ops->upstream)
		ops->upstream(r, r->tag, 0, 200, false);
	return 0;
}

/* client bytes to the upstream: 1 progress, 0 none, -errno write error */
static int hs_tun_to_up(struct td_hs_req *r)
{
	struct hs_up *u = r->up;
	struct hs_buf *b = r->in.pos < r->in.len ? &r->in : &r->uout.b;
	int p = 0;
	ssize_t n;

	while (b->len > b->pos && !u->wr_blocked) {
		size_t want = b->len - b->pos;

		n = send(u->fd, b->p + b->pos, want, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				u->wr_blocked = 1;
				break;
			}
			return -errno;
		}
		b->pos += (uint32_t)n;
		r->bytes_in += (uint64_t)n;
		p = 1;
		if ((size_t)n < want)
			u->wr_blocked = 1;
		if (b->pos == b->len && b == &r->in)
			b = &r->uout.b;		/* read-ahead relayed: go on with the live bytes */
	}
	if (r->uout.b.p && r->uout.b.pos == r->uout.b.len)
		r->uout.b.pos = r->uout.b.len = 0;
	return p;
}

/* read the client into uout.b (only once r->in is relayed): 1 progress, 0 none, <0 ENOMEM */
static int hs_tun_from_client(struct td_hs_req *r)
{
	struct hs_conn *c = r->c;
	struct hs_buf *b = &r->uout.b;
	int got = 0;
	ssize_t n;

	if (r->in.pos < r->in.len || c->eof || !c->rd_ready)
		return 0;
	if (!b->p && hs_buf_get(r->w, b, TD_HS_BUF) < 0)
		return -ENOMEM;
	while (c->rd_ready && !c->eof && b->len < b->cap) {
		n = hs_conn_read_ext(c, b->p + b->len, b->cap - b->len);
		if (n > 0) {
			b->len += (uint32_t)n;
			got = 1;
			continue;
		}
		if (n == -EAGAIN) {
			c->rd_ready = 0;
			break;
		}
		/* FIN, close_notify or a reset: all the same to a tunnel (the write side tells) */
		c->eof = 1;
		c->rd_ready = 0;
		got = 1;
	}
	return got;
}

/* upstream bytes into uin, queued as a slice of r->out: 1 progress, 0 none, <0 reset/ENOMEM */
static int hs_tun_from_up(struct td_hs_req *r)
{
	struct hs_up *u = r->up;
	struct hs_buf *b = &r->uin;
	ssize_t n;

	if (r->up_eof || !u->rd_ready || r->out.slen)
		return 0;
	if (!b->p && hs_buf_get(r->w, b, TD_HS_BUF) < 0)
		return -ENOMEM;
	for (;;) {
		n = recv(u->fd, b->p, b->cap, 0);
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	if (n > 0) {
		b->pos = 0;
		b->len = (uint32_t)n;
		r->out.slice = b->p;
		r->out.slen = (uint32_t)n;
		if ((size_t)n < b->cap)
			u->rd_ready = 0;
		return 1;
	}
	u->rd_ready = 0;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0)
		return -errno;
	r->up_eof = true;
	return 1;
}

static void hs_tun_watch(struct td_hs_req *r)
{
	struct hs_up *u = r->up;
	int ev = 0;

	if (!u)
		return;
	if (r->tun == HS_T_CONNECTING) {
		hs_up_watch(u, EV_WRITE);
		return;
	}
	if (!r->up_eof && !r->out.slen)
		ev |= EV_READ;
	if (u->wr_blocked && !r->tun_up_shut &&
	    (r->in.pos < r->in.len || r->uout.b.len > r->uout.b.pos))
		ev |= EV_WRITE;
	hs_up_watch(u, ev);
}

int hs_tun_step(struct td_hs_req *r)
{
	struct hs_conn *c = r->c;
	struct hs_worker *w = r->w;
	bool any = false;
	int rc, p;

	if (r->tun == HS_T_NONE) {
		rc = hs_tun_connect(r);
		if (rc)
			return rc;
	}
	if (r->tun == HS_T_CONNECTING) {
		if (r->up->wr_blocked) {
			hs_tun_watch(r);
			return 0;
		}
		rc = hs_up_connected(r->up);
		if (rc < 0)
			return hs_tun_fail(r, rc);
		if (hs_tun_open(r) < 0)
			return hs_req_abort_ext(r, "out of memory");
		any = true;
	}
	for (;;) {
		p = 0;
		/* client -> upstream */
		rc = hs_tun_from_client(r);
		if (rc < 0)
			return hs_req_abort_ext(r, "out of memory");
		p |= rc;
		if (!r->tun_up_shut) {
			rc = hs_tun_to_up(r);
			if (rc < 0)
				return hs_req_abort_ext(r, "tunnel: upstream write failed");
			p |= rc;
			if (c->eof && r->in.pos == r->in.len && r->uout.b.pos == r->uout.b.len) {
				shutdown(r->up->fd, SHUT_WR);
				r->tun_up_shut = true;
				p = 1;
			}
		} else if (r->uout.b.len > r->uout.b.pos) {
			/* bytes after the FIN: cannot happen on TCP, dropped */
			r->uout.b.pos = r->uout.b.len = 0;
		}
		/* upstream -> client */
		rc = hs_tun_from_up(r);
		if (rc < 0)
			return hs_req_abort_ext(r, rc == -ENOMEM ? "out of memory" :
						"tunnel: upstream reset");
		p |= rc;
		rc = hs_req_client_flush(r);
		if (rc < 0)
			return hs_req_abort_ext(r, "tunnel: client write failed");
		p |= rc;
		if (r->up_eof && !r->tun_cl_shut && hs_out_empty(&r->out)) {
			if (c->tls)
				return hs_req_end_ext(r);	/* no TLS half-close: close_notify */
			shutdown(c->fd, SHUT_WR);
			r->tun_cl_shut = true;
			p = 1;
		}
		if (r->tun_up_shut && r->tun_cl_shut)
			return hs_req_end_ext(r);
		if (!p)
			break;
		any = true;
	}
	if (any)
		hs_tmr_set(w, &c->tm, hs_mono() + r->tun_idle_ms / 1000.0);
	hs_tun_watch(r);
	return 0;
}

int hs_tun_timeout(struct td_hs_req *r)
{
	if (r->tun == HS_T_CONNECTING)
		return hs_tun_fail(r, -ETIMEDOUT);
	if (r->tun == HS_T_NONE)
		return 0;
	return hs_req_abort_ext(r, "tunnel idle timeout");
}

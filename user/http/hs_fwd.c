/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* HTTP engine, upstream side: forwarding with streaming both ways, the connection pool, fetch. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hs_int.h"
#include "log.h"

/* response heads must fit one buffer; trailers of a chunked response too */
static const struct td_http_limits hs_resp_lim = {
	.max_start_line = 4096,
	.max_header_block = TD_HS_BUF - 4096 - 64,
	.max_headers = TD_HTTP_MAX_HEADERS,
	.max_body = 0,
};

struct hs_fetch {
	struct hs_fetch *prev, *next;	/* r->fetches */
	struct td_hs_req *r;
	struct hs_worker *w;
	struct hs_up *up;
	ev_timer tm;
	union hs_addr addr;
	socklen_t addrlen;
	int err;			/* pending failure, reported from the timer */
	bool reused, retried, any, eof, head_done;
	uint8_t mode;			/* HS_B_* */
	uint64_t left;
	char *head;
	size_t head_len, head_pos;
	struct hs_buf in;
	char *body;
	size_t blen, bcap, max_body;
	char *ctype;
	td_hs_fetch_cb cb;
	void *arg;
	struct td_http_chunked ch;
	struct td_http_parser p;
};

static void hs_up_io_cb(struct ev_loop *loop, ev_io *io, int revents);
static void hs_up_tm_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void hs_fetch_run(struct hs_fetch *f);

/* ---- output pieces ------------------------------------------------------------------------- */

bool hs_out_room(struct hs_worker *w, struct hs_out *o)
{
	if (o->slen)
		return false;
	if (o->b.p && o->b.cap - o->b.len >= HS_SLICE_MIN + 32)
		return true;
	if (o->b.p && o->b.pos == o->b.len) {
		o->b.pos = o->b.len = 0;
		return o->b.cap >= HS_SLICE_MIN + 32;
	}
	if (o->b.p && o->b.pos) {
		memmove(o->b.p, o->b.p + o->b.pos, o->b.len - o->b.pos);
		o->b.len -= o->b.pos;
		o->b.pos = 0;
		return o->b.cap - o->b.len >= HS_SLICE_MIN + 32;
	}
	if (!o->b.p)
		return hs_buf_get(w, &o->b, TD_HS_BUF) == 0;
	return false;
}

void hs_out_piece(struct hs_out *o, const char *d, uint32_t len, bool chunked)
{
	struct hs_buf *b = &o->b;

	if (chunked)
		b->len += (uint32_t)snprintf(b->p + b->len, 20, "%x\r\n", len);
	if (len < HS_SLICE_MIN) {
		memcpy(b->p + b->len, d, len);
		b->len += len;
		if (chunked) {
			memcpy(b->p + b->len, "\r\n", 2);
			b->len += 2;
		}
		return;
	}
	o->slice = d;
	o->slen = len;
	if (chunked) {
		memcpy(o->tail, "\r\n", 2);
		o->tpos = 0;
		o->tlen = 2;
	}
}

static void hs_out_str(struct hs_out *o, const char *s, uint32_t len)
{
	memcpy(o->b.p + o->b.len, s, len);
	o->b.len += len;
}

/* "Content-Length: N\r\n" at p; returns its length (no printf on the hot path) */
static uint32_t hs_put_cl(char *p, uint64_t v)
{
	char d[24];
	uint32_t n = 0, k = 0;

	memcpy(p, "Content-Length: ", 16);
	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		p[16 + k++] = d[--n];
	p[16 + k] = '\r';
	p[17 + k] = '\n';
	return 18 + k;
}

/* ---- pool ---------------------------------------------------------------------------------- */

static unsigned int hs_addr_hash(const union hs_addr *a)
{
	const unsigned char *p;
	size_t n;
	unsigned int h = 2166136261u;

	if (a->sa.sa_family == AF_INET) {
		p = (const unsigned char *)&a->sin.sin_addr;
		n = 4;
		h = (h ^ a->sin.sin_port) * 16777619u;
	} else {
		p = (const unsigned char *)&a->sin6.sin6_addr;
		n = 16;
		h = (h ^ a->sin6.sin6_port) * 16777619u;
	}
	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h % HS_POOL_BUCKETS;
}

static bool hs_addr_eq(const union hs_addr *a, const union hs_addr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->sin.sin_port == b->sin.sin_port &&
		       a->sin.sin_addr.s_addr == b->sin.sin_addr.s_addr;
	return a->sin6.sin6_port == b->sin6.sin6_port &&
	       !memcmp(&a->sin6.sin6_addr, &b->sin6.sin6_addr, 16) &&
	       a->sin6.sin6_scope_id == b->sin6.sin6_scope_id;
}

static struct hs_pool *hs_pool_get(struct hs_worker *w, const union hs_addr *a, socklen_t len)
{
	unsigned int h = hs_addr_hash(a);
	struct hs_pool *p;

	for (p = w->pools[h]; p; p = p->next)
		if (hs_addr_eq(&p->addr, a))
			return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->addr = *a;
	p->addrlen = len;
	p->next = w->pools[h];
	w->pools[h] = p;
	return p;
}

static void hs_up_unlink_idle(struct hs_up *u)
{
	struct hs_pool *p = u->pool;

	if (u->prev)
		u->prev->next = u->next;
	else
		p->idle = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->prev = u->next = NULL;
	p->nidle--;
}

void hs_up_close(struct hs_up *u)
{
	struct hs_worker *w = u->w;

	if (u->state == HS_UC_IDLE)
		hs_up_unlink_idle(u);
	ev_io_stop(w->loop, &u->io);
	ev_timer_stop(w->loop, &u->tm.t);
	close(u->fd);
	HS_DEC(w, upstream_conns_open);
	free(u);
}

static void hs_up_put(struct hs_up *u, uint32_t max_idle)
{
	struct hs_worker *w = u->w;
	struct hs_pool *p = u->pool;
	double now;

	u->r = NULL;
	u->f = NULL;
	if (w->draining || p->nidle >= (max_idle ? max_idle : TD_HS_DEF_MAX_IDLE)) {
		hs_up_close(u);
		return;
	}
	u->state = HS_UC_IDLE;
	u->rd_ready = u->wr_blocked = 0;
	u->prev = NULL;
	u->next = p->idle;
	if (p->idle)
		p->idle->prev = u;
	p->idle = u;
	p->nidle++;
	hs_up_watch(u, EV_READ);
	/*
	 * Armed 1 s ahead, re-armed from the callback up to the idle lifetime: a response
	 * timeout set when the connection is reused is then later than the armed time and
	 * costs no timer operation on the hot path.
	 */
	now = hs_mono();
	if (!ev_is_active(&u->tm.t) || u->tm.armed > now + 1.0) {
		ev_timer_stop(w->loop, &u->tm.t);
		ev_timer_set(&u->tm.t, 1.0, 0.);
		ev_timer_start(w->loop, &u->tm.t);
		u->tm.armed = now + 1.0;
	}
	u->tm.deadline = now + TD_HS_DEF_UPSTREAM_IDLE / 1000.0;
}

/* a pooled connection (most recently used first) or a new one being connected */
static struct hs_up *hs_up_acquire(struct hs_worker *w, const union hs_addr *a, socklen_t len,
				   bool *reused, int *err)
{
	struct hs_pool *p = hs_pool_get(w, a, len);
	struct hs_up *u;

	*reused = false;
	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	if ((u = p->idle)) {
		hs_up_unlink_idle(u);
		u->state = HS_UC_BUSY;
		u->tm.deadline = 0;
		*reused = true;
		HS_INC(w, upstream_reused);
		return u;
	}
	u = hs_up_new(w, a, len, err);
	if (u)
		u->pool = p;
	return u;
}

/* tunnels use these too: a pooled keep-alive connection must never carry a tunnel */
struct hs_up *hs_up_new(struct hs_worker *w, const union hs_addr *a, socklen_t len, int *err)
{
	struct hs_up *u;
	int fd, one = 1, rc;

	fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	do
		rc = connect(fd, &a->sa, len);
	while (rc < 0 && errno == EINTR);
	if (rc < 0 && errno != EINPROGRESS) {
		*err = -errno;
		close(fd);
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	u->w = w;
	u->fd = fd;
	u->state = rc < 0 ? HS_UC_CONNECTING : HS_UC_BUSY;
	u->wr_blocked = rc < 0;
	ev_io_init(&u->io, hs_up_io_cb, fd, EV_WRITE);
	ev_io_start(w->loop, &u->io);
	ev_init(&u->tm.t, hs_up_tm_cb);
	HS_INC(w, upstream_conns_open);
	return u;
}

/* connect finished: 0 or -errno */
int hs_up_connected(struct hs_up *u)
{
	int err = 0;
	socklen_t l = sizeof(err);

	if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
		return -errno;
	if (err)
		return -err;
	u->state = HS_UC_BUSY;
	return 0;
}

void hs_up_watch(struct hs_up *u, int ev)
{
	struct ev_loop *loop = u->w->loop;

	if ((u->io.events & (EV_READ | EV_WRITE)) == ev && ev_is_active(&u->io) == !!ev)
		return;
	ev_io_stop(loop, &u->io);
	if (!ev)
		return;
	ev_io_modify(&u->io, ev);
	ev_io_start(loop, &u->io);
}

void hs_pools_free(struct hs_worker *w)
{
	for (unsigned int i = 0; i < HS_POOL_BUCKETS; i++) {
		struct hs_pool *p;

		while ((p = w->pools[i])) {
			w->pools[i] = p->next;
			while (p->idle)
				hs_up_close(p->idle);
			free(p);
		}
	}
}

/* ---- building heads ------------------------------------------------------------------------ */

static bool hs_name_in(const char *name, uint32_t len, const char *list, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		size_t l = strlen(list);

		if (l == len && !strncasecmp(name, list, len))
			return true;
		list += l + 1;
	}
	return false;
}

static bool hs_name_in_arr(const char *name, uint32_t len, const char *const *arr, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (arr[i] && strlen(arr[i]) == len && !strncasecmp(name, arr[i], len))
			return true;
	return false;
}

/* end of field line k (start of the next line or of the final CRLF) */
static uint32_t hs_line_end(const struct td_http_msg *m, uint32_t k, uint32_t head_len)
{
	return k + 1 < m->nhdr ? m->hdr[k + 1].name.off : head_len - 2;
}

static int hs_scratch_add(struct td_hs_req *r, const char *s, size_t len)
{
	if (r->radd_len + r->rrm_len + len > r->scratch_cap) {
		size_t cap = (r->radd_len + r->rrm_len + len) * 2 + 64;
		char *n = realloc(r->scratch, cap);

		if (!n)
			return -ENOMEM;
		r->scratch = n;
		r->scratch_cap = (uint32_t)cap;
	}
	memcpy(r->scratch + r->radd_len + r->rrm_len, s, len);
	return 0;
}

int td_hs_forward(struct td_hs_req *r, const struct td_hs_upstream *u, const struct td_hs_edit *e)
{
	static const struct td_hs_edit none;
	struct hs_worker *w;
	const struct td_http_msg *m;
	const char *buf;
	struct hs_buf *b;
	size_t need, tl;
	const char *target;
	uint32_t k, run;
	bool host_kept;

	if (!r || !u || !u->addr || u->addrlen > sizeof(union hs_addr) ||
	    (u->addr->sa_family != AF_INET && u->addr->sa_family != AF_INET6))
		return -EINVAL;
	if (r->answered && !(r->in_upcall && r->upcall_retry))
		return -EALREADY;
	if (!e)
		e = &none;
	w = r->w;
	m = &r->p.msg;
	buf = r->in.p + r->hoff;
	target = e->target ? e->target : NULL;
	tl = target ? strlen(target) : m->target.len;
	need = r->hlen + tl + 256;	/* + Host, framing, final CRLF */
	for (size_t i = 0; i < e->nadd; i++)
		need += strlen(e->add[i].name) + strlen(e->add[i].value) + 4;
	if (need > UINT32_MAX / 2)
		return -E2BIG;

	/* response edits outlive the caller's strings */
	r->radd_len = r->rrm_len = r->nrrm = 0;
	for (size_t i = 0; i < e->nresp_add; i++) {
		const struct td_hs_hdr *h = &e->resp_add[i];

		if (hs_scratch_add(r, h->name, strlen(h->name)) < 0)
			return -ENOMEM;
		r->radd_len += (uint32_t)strlen(h->name);
		if (hs_scratch_add(r, ": ", 2) < 0)
			return -ENOMEM;
		r->radd_len += 2;
		if (hs_scratch_add(r, h->value, strlen(h->value)) < 0)
			return -ENOMEM;
		r->radd_len += (uint32_t)strlen(h->value);
		if (hs_scratch_add(r, "\r\n", 2) < 0)
			return -ENOMEM;
		r->radd_len += 2;
	}
	for (size_t i = 0; i < e->nresp_remove; i++) {
		size_t l = strlen(e->resp_remove[i]) + 1;

		if (hs_scratch_add(r, e->resp_remove[i], l) < 0)
			return -ENOMEM;
		r->rrm_len += (uint32_t)l;
		r->nrrm++;
	}

	/* the upstream head */
	hs_buf_put(w, &r->uout.b);
	memset(&r->uout, 0, sizeof(r->uout));
	if (hs_buf_get(w, &r->uout.b, (uint32_t)need) < 0)
		return -ENOMEM;
	b = &r->uout.b;
	memcpy(b->p, buf + m->method_s.off, m->method_s.len);
	b->len = m->method_s.len;
	b->p[b->len++] = ' ';
	memcpy(b->p + b->len, target ? target : buf + m->target.off, tl);
	b->len += (uint32_t)tl;
	memcpy(b->p + b->len, " HTTP/1.1\r\n", 11);
	b->len += 11;
	/* kept field lines are copied in runs, as the client wrote them */
	run = 0;
	host_kept = false;
	for (k = 0; k <= m->nhdr; k++) {
		const struct td_http_header *h = k < m->nhdr ? &m->hdr[k] : NULL;
		bool drop = !h || (h->flags & TD_HTTP_HF_HOP) ||
			    h->id == TD_HTTP_H_CONTENT_LENGTH || h->id == TD_HTTP_H_TRANSFER_ENCODING ||
			    (r->expect_continue && h->name.len == 6 &&
			     !strncasecmp(buf + h->name.off, "expect", 6)) ||
			    hs_name_in_arr(buf + h->name.off, h->name.len, e->remove, e->nremove);

		if (h && !drop && h->id == TD_HTTP_H_HOST)
			host_kept = true;
		if (drop) {
			if (run < k) {
				uint32_t s = m->hdr[run].name.off, end = hs_line_end(m, k - 1, r->hlen);

				memcpy(b->p + b->len, buf + s, end - s);
				b->len += end - s;
			}
			run = k + 1;
		}
	}
	/* a Host always goes out: the client's, the handler's (absolute-form), or the backend's */
	if (!host_kept) {
		bool has = false;

		for (size_t i = 0; i < e->nadd; i++)
			has |= !strcasecmp(e->add[i].name, "host");
		if (!has) {
			char a[INET6_ADDRSTRLEN + 16];

			if (u->addr->sa_family == AF_INET) {
				const struct sockaddr_in *s = (const void *)u->addr;

				inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
				b->len += (uint32_t)snprintf(b->p + b->len, b->cap - b->len,
							     "Host: %s:%u\r\n", a, ntohs(s->sin_port));
			} else {
				const struct sockaddr_in6 *s = (const void *)u->addr;

				inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
				b->len += (uint32_t)snprintf(b->p + b->len, b->cap - b->len,
							     "Host: [%s]:%u\r\n", a, ntohs(s->sin6_port));
			}
		}
	}
	for (size_t i = 0; i < e->nadd; i++) {
		size_t nl = strlen(e->add[i].name), vl = strlen(e->add[i].value);

		memcpy(b->p + b->len, e->add[i].name, nl);
		b->len += (uint32_t)nl;
		memcpy(b->p + b->len, ": ", 2);
		b->len += 2;
		memcpy(b->p + b->len, e->add[i].value, vl);
		b->len += (uint32_t)vl;
		memcpy(b->p + b->len, "\r\n", 2);
		b->len += 2;
	}
	if (r->bmode == HS_B_LENGTH)
		b->len += hs_put_cl(b->p + b->len, m->content_length);
	else if (r->bmode == HS_B_CHUNKED)
		hs_out_str(&r->uout, "Transfer-Encoding: chunked\r\n", 28);
	else if (td_http_header_find(m, buf, "content-length", 0) >= 0)
		hs_out_str(&r->uout, "Content-Length: 0\r\n", 19);
	hs_out_str(&r->uout, "\r\n", 2);
	r->uhead = b->len;

	memcpy(&r->uaddr, u->addr, u->addrlen);
	r->uaddrlen = u->addrlen;
	r->connect_ms = u->connect_timeout_ms ? u->connect_timeout_ms : TD_HS_DEF_CONNECT_TIMEOUT;
	r->response_ms = u->response_timeout_ms ? u->response_timeout_ms :
			 TD_HS_DEF_RESPONSE_TIMEOUT;
	r->max_idle = u->max_idle;
	r->tag = u->tag;
	r->ust = HS_U_NONE;
	r->retried = false;

	/* we answer Expect: 100-continue ourselves once the body is wanted */
	if (r->expect_continue && !r->continue_sent && !r->bdone && !r->bytes_in &&
	    r->in.len == r->in.pos && hs_buf_reserve(w, &r->out.b, 32) == 0) {
		hs_out_str(&r->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		r->continue_sent = true;
	}
	r->in_upcall = false;
	r->answered = true;
	r->agen++;
	r->phase = HS_P_FORWARD;
	hs_req_queue(r);
	return 0;
}

/* the client's response head from the upstream's; sets cmode and keep-alive */
static int hs_client_head(struct td_hs_req *r, const char *buf, uint32_t head_len)
{
	struct hs_worker *w = r->w;
	const struct td_http_msg *m = &r->rp.msg;
	struct hs_buf *b;
	uint32_t run, k;
	bool ka;

	if (hs_buf_reserve(w, &r->out.b, head_len + r->radd_len + 128) < 0)
		return -ENOMEM;
	b = &r->out.b;
	memcpy(b->p + b->len, "HTTP/1.1 ", 9);
	b->p[b->len + 9] = (char)('0' + m->status / 100 % 10);
	b->p[b->len + 10] = (char)('0' + m->status / 10 % 10);
	b->p[b->len + 11] = (char)('0' + m->status % 10);
	b->p[b->len + 12] = ' ';
	b->len += 13;
	memcpy(b->p + b->len, buf + m->reason.off, m->reason.len);
	b->len += m->reason.len;
	memcpy(b->p + b->len, "\r\n", 2);
	b->len += 2;
	run = 0;
	for (k = 0; k <= m->nhdr; k++) {
		const struct td_http_header *h = k < m->nhdr ? &m->hdr[k] : NULL;
		bool drop = !h || (h->flags & TD_HTTP_HF_HOP) ||
			    h->id == TD_HTTP_H_CONTENT_LENGTH || h->id == TD_HTTP_H_TRANSFER_ENCODING ||
			    (r->nrrm && hs_name_in(buf + h->name.off, h->name.len,
						   r->scratch + r->radd_len, r->nrrm));

		if (drop) {
			if (run < k) {
				uint32_t s = m->hdr[run].name.off, end = hs_line_end(m, k - 1, head_len);

				memcpy(b->p + b->len, buf + s, end - s);
				b->len += end - s;
			}
			run = k + 1;
		}
	}
	if (r->radd_len) {
		memcpy(b->p + b->len, r->scratch, r->radd_len);
		b->len += r->radd_len;
	}
	switch (m->body) {
	case TD_HTTP_BODY_LENGTH:
		r->rmode = r->cmode = HS_B_LENGTH;
		r->rleft = m->content_length;
		b->len += hs_put_cl(b->p + b->len, m->content_length);
		break;
	case TD_HTTP_BODY_CHUNKED:
	case TD_HTTP_BODY_CLOSE:
		r->rmode = m->body == TD_HTTP_BODY_CHUNKED ? HS_B_CHUNKED : HS_B_CLOSE;
		if (r->rmode == HS_B_CHUNKED)
			td_http_chunked_init(&r->rch, TD_HTTP_RESPONSE, &hs_resp_lim);
		if (r->p.msg.version == 11) {
			r->cmode = HS_B_CHUNKED;
			memcpy(b->p + b->len, "Transfer-Encoding: chunked\r\n", 28);
			b->len += 28;
		} else {
			r->cmode = HS_B_CLOSE;
			r->keep_alive = false;
		}
		break;
	default:
		r->rmode = r->cmode = HS_B_NONE;
		/* HEAD and 304 keep the length they announce */
		if (td_http_header_find(m, buf, "content-length", 0) >= 0)
			b->len += hs_put_cl(b->p + b->len, m->content_length);
	}
	ka = r->keep_alive && !r->close_after && !w->draining && !r->c->eof;
	if (!ka) {
		r->close_after = true;
		memcpy(b->p + b->len, "Connection: close\r\n", 19);
		b->len += 19;
	} else if (r->p.msg.version == 10) {
		memcpy(b->p + b->len, "Connection: keep-alive\r\n", 24);
		b->len += 24;
	}
	memcpy(b->p + b->len, "\r\n", 2);
	b->len += 2;
	return 0;
}

/* ---- forwarding ---------------------------------------------------------------------------- */

/* response body bytes (decoded) to ops->response_body when the handler asked for them */
static void hs_tee(struct td_hs_req *r, const char *d, uint32_t len)
{
	const struct td_hs_ops *ops = r->w->hs->ops;

	if (r->tee && len && ops->response_body)
		ops->response_body(r, d, len);
}

static void hs_tee_end(struct td_hs_req *r, bool complete)
{
	const struct td_hs_ops *ops = r->w->hs->ops;

	r->tee = false;
	if (ops->response_end)
		ops->response_end(r, complete);
}

bool hs_fwd_wants_client_read(const struct td_hs_req *r)
{
	return !r->bdone && !r->uout.slen;
}

static void hs_fwd_detach(struct td_hs_req *r)
{
	if (r->up) {
		r->up->r = NULL;
		hs_up_close(r->up);
		r->up = NULL;
	}
	r->wq &= (uint8_t)~HS_WQ_UP;
	r->wq_uerr = 0;
	hs_buf_put(r->w, &r->uin);
	r->up_eof = r->up_any = r->sent_all = false;
	r->up_err = 0;
	r->ust = HS_U_NONE;
}

/* the engine answers instead of the upstream (nothing sent to the client yet) */
static int hs_fwd_answer(struct td_hs_req *r, unsigned int status, const char *why)
{
	hs_fwd_detach(r);
	hs_buf_put(r->w, &r->uout.b);
	memset(&r->uout, 0, sizeof(r->uout));
	hs_respond_status(r, status, why);
	return 1;
}

const char *hs_err_text(int err)
{
	switch (err) {
	case -ECONNREFUSED: return "upstream refused the connection";
	case -ETIMEDOUT: return "upstream connect timeout";
	case -ETIME: return "upstream response timeout";
	case -EPROTO: return "invalid upstream response";
	case -ECONNRESET: return "upstream closed the connection";
	default: return "upstream error";
	}
}

/* one attempt failed before a response head: transparent retry, ops->upstream, or 502/504 */
static int hs_fwd_fail(struct td_hs_req *r, int err)
{
	struct hs_worker *w = r->w;
	const struct td_hs_ops *ops = w->hs->ops;
	bool may_retry = !r->resp_started && r->bmode == HS_B_NONE;
	uint32_t gen;

	if (r->up_reused && !r->up_any && may_retry && !r->retried && err != -ETIME) {
		/* the classic keep-alive race: the pooled connection was closed under us */
		hs_fwd_detach(r);
		r->retried = true;
		r->uout.b.pos = 0;
		r->uout.b.len = r->uhead;
		return 1;
	}
	HS_INC(w, upstream_errors);
	hs_fwd_detach(r);
	if (r->resp_started)
		return hs_req_abort_ext(r, hs_err_text(err));
	if (ops->upstream) {
		gen = r->agen;
		r->in_upcall = true;
		r->upcall_retry = may_retry;
		ops->upstream(r, r->tag, err, 0, may_retry);
		r->in_upcall = r->upcall_retry = false;
		if (r->agen != gen)
			return 1;
	}
	return hs_fwd_answer(r, err == -ETIMEDOUT || err == -ETIME ? 504 : 502, hs_err_text(err));
}

/* request body bytes from r->in to r->uout: 1 progress, 0 none, -1 body error (r answered) */
static int hs_fwd_produce_req(struct td_hs_req *r)
{
	struct td_http_slice d;
	size_t consumed;
	enum td_http_rc rc;
	int p = 0;

	while (!r->bdone && !r->bdrop && r->in.len > r->in.pos && hs_out_room(r->w, &r->uout)) {
		uint32_t avail = r->in.len - r->in.pos;
		const char *base = r->in.p + r->in.pos;

		if (r->bmode == HS_B_LENGTH) {
			uint32_t n = r->bleft < avail ? (uint32_t)r->bleft : avail;

			r->uout.slice = base;
			r->uout.slen = n;
			r->in.pos += n;
			r->bleft -= n;
			r->bytes_in += n;
			r->bdone = !r->bleft;
			return 1;
		}
		rc = td_http_chunked_decode(&r->ch, base, avail, &consumed, &d);
		r->in.pos += (uint32_t)consumed;
		p |= consumed > 0;
		if (rc == TD_HTTP_DATA) {
			hs_out_piece(&r->uout, base + d.off, d.len, true);
			r->bytes_in += d.len;
		} else if (rc == TD_HTTP_DONE) {
			hs_out_str(&r->uout, "0\r\n\r\n", 5);
			r->bdone = true;
		} else if (rc == TD_HTTP_ERROR) {
			r->close_after = true;
			if (r->resp_started)
				return hs_req_abort_ext(r, r->ch.why), -1;
			hs_fwd_answer(r, r->ch.error, r->ch.why);
			return -1;
		} else {
			break;
		}
	}
	return p;
}

static int hs_fwd_read_up(struct td_hs_req *r)
{
	struct hs_up *u = r->up;
	struct hs_buf *b = &r->uin;
	int got = 0;
	ssize_t n;

	if (!b->p && hs_buf_get(r->w, b, TD_HS_BUF) < 0)
		return -ENOMEM;
	if (!r->out.slen) {
		if (b->pos == b->len) {
			b->pos = b->len = 0;
		} else if (b->len == b->cap && b->pos) {
			memmove(b->p, b->p + b->pos, b->len - b->pos);
			b->len -= b->pos;
			b->pos = 0;
		}
	}
	while (u->rd_ready && !r->up_eof && b->len < b->cap) {
		size_t room = b->cap - b->len;

		n = recv(u->fd, b->p + b->len, room, 0);
		if (n > 0) {
			b->len += (uint32_t)n;
			r->up_any = true;
			got = 1;
			if ((size_t)n < room)
				u->rd_ready = 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		u->rd_ready = 0;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		r->up_err = n < 0 ? -errno : 0;
		r->up_eof = true;
		got = 1;
	}
	return got;
}

/* parse the response head in uin: 1 progress, 0 need more, or the result of a fail/answer (+2) */
static int hs_fwd_resp_head(struct td_hs_req *r, int *out)
{
	const struct td_hs_ops *ops = r->w->hs->ops;
	struct hs_buf *b = &r->uin;
	const struct td_http_msg *m = &r->rp.msg;
	enum td_http_rc rc;
	size_t consumed;
	uint32_t gen;

	for (;;) {
		if (b->len == b->pos) {
			if (r->up_eof) {
				*out = hs_fwd_fail(r, r->up_err ? r->up_err :
						   r->up_any ? -EPROTO : -ECONNRESET);
				return 2;
			}
			return 0;
		}
		rc = td_http_parse(&r->rp, b->p + b->pos, b->len - b->pos, &consumed);
		if (rc == TD_HTTP_AGAIN) {
			if (r->up_eof || (b->len == b->cap && !b->pos)) {
				*out = hs_fwd_fail(r, -EPROTO);
				return 2;
			}
			return 0;
		}
		if (rc == TD_HTTP_ERROR) {
			*out = hs_fwd_fail(r, -EPROTO);
			return 2;
		}
		if (m->status < 200 && m->status != 101) {
			/* interim responses: our own 100 Continue already went out, drop them */
			b->pos += (uint32_t)consumed;
			td_http_parser_init(&r->rp, TD_HTTP_RESPONSE, &hs_resp_lim);
			td_http_parser_set_req_method(&r->rp, r->p.msg.method);
			continue;
		}
		if (m->body == TD_HTTP_BODY_TUNNEL) {
			*out = hs_fwd_fail(r, -EPROTO);
			return 2;
		}
		break;
	}
	if (ops->upstream) {
		gen = r->agen;
		r->in_upcall = true;
		r->upcall_retry = r->bmode == HS_B_NONE;
		r->up_head = b->p + b->pos;
		ops->upstream(r, r->tag, 0, m->status, r->bmode == HS_B_NONE);
		r->up_head = NULL;
		r->in_upcall = r->upcall_retry = false;
		if (r->agen != gen) {
			/* the handler took another way: this response is dropped */
			if (r->phase == HS_P_FORWARD) {
				struct hs_buf keep = r->uout.b;

				r->uout.b = (struct hs_buf){ 0 };
				hs_fwd_detach(r);
				r->uout.b = keep;
			} else {
				hs_fwd_detach(r);
			}
			*out = 1;
			return 2;
		}
	}
	if (ops->response)
		r->tee = ops->response(r, m, b->p + b->pos);
	if (hs_client_head(r, b->p + b->pos, (uint32_t)consumed) < 0) {
		*out = hs_req_abort_ext(r, "out of memory");
		return 2;
	}
	r->status = m->status;
	b->pos += (uint32_t)consumed;
	r->resp_started = true;
	r->ust = r->rmode == HS_B_NONE ? HS_U_DONE : HS_U_BODY;
	return 1;
}

/* response body from uin to out: 1 progress, 0 none, -1 error (aborted, gone) */
static int hs_fwd_produce_resp(struct td_hs_req *r)
{
	struct hs_buf *b = &r->uin;
	struct td_http_slice d;
	size_t consumed;
	enum td_http_rc rc;
	bool chunked = r->cmode == HS_B_CHUNKED;
	int p = 0;

	while (r->ust == HS_U_BODY && hs_out_room(r->w, &r->out)) {
		uint32_t avail = b->len - b->pos;
		const char *base = b->p + b->pos;

		if (r->rmode == HS_B_LENGTH) {
			uint32_t n = r->rleft < avail ? (uint32_t)r->rleft : avail;

			if (!n) {
				if (r->up_eof)
					return hs_req_abort_ext(r, "upstream closed in the body"), -1;
				break;
			}
			r->out.slice = base;
			r->out.slen = n;
			hs_tee(r, base, n);
			b->pos += n;
			r->rleft -= n;
			if (!r->rleft)
				r->ust = HS_U_DONE;
			return 1;
		}
		if (r->rmode == HS_B_CLOSE) {
			if (avail) {
				hs_out_piece(&r->out, base, avail, chunked);
				hs_tee(r, base, avail);
				b->pos += avail;
				p = 1;
				continue;
			}
			if (!r->up_eof)
				break;
			if (r->up_err)
				return hs_req_abort_ext(r, "upstream reset in the body"), -1;
			if (chunked)
				hs_out_str(&r->out, "0\r\n\r\n", 5);
			r->ust = HS_U_DONE;
			return 1;
		}
		rc = td_http_chunked_decode(&r->rch, base, avail, &consumed, &d);
		b->pos += (uint32_t)consumed;
		p |= consumed > 0;
		if (rc == TD_HTTP_DATA) {
			hs_out_piece(&r->out, base + d.off, d.len, chunked);
			hs_tee(r, base + d.off, d.len);
		} else if (rc == TD_HTTP_DONE) {
			if (chunked)
				hs_out_str(&r->out, "0\r\n\r\n", 5);
			r->ust = HS_U_DONE;
			return 1;
		} else if (rc == TD_HTTP_ERROR) {
			return hs_req_abort_ext(r, r->rch.why), -1;
		} else {
			if (r->up_eof)
				return hs_req_abort_ext(r, "upstream closed in the body"), -1;
			break;
		}
	}
	return p;
}

/* start an attempt: 0 going, or the result of hs_fwd_fail */
static int hs_fwd_start(struct td_hs_req *r)
{
	struct hs_worker *w = r->w;
	struct hs_up *u;
	bool reused;
	int err = 0;

	u = hs_up_acquire(w, &r->uaddr, r->uaddrlen, &reused, &err);
	if (!u) {
		r->up_reused = false;
		return hs_fwd_fail(r, err);
	}
	r->up = u;
	u->r = r;
	u->f = NULL;
	r->up_reused = reused;
	r->up_any = r->up_eof = r->sent_all = false;
	r->up_err = 0;
	td_http_parser_init(&r->rp, TD_HTTP_RESPONSE, &hs_resp_lim);
	td_http_parser_set_req_method(&r->rp, r->p.msg.method);
	if (u->state == HS_UC_CONNECTING) {
		r->ust = HS_U_CONNECTING;
		hs_tmr_set(w, &u->tm, hs_mono() + r->connect_ms / 1000.0);
	} else {
		r->ust = HS_U_SENT;
	}
	return 0;
}

static void hs_fwd_watch(struct td_hs_req *r)
{
	struct hs_up *u = r->up;
	struct hs_worker *w = r->w;
	int ev = 0;

	if (!u)
		return;
	if (r->ust == HS_U_CONNECTING) {
		hs_up_watch(u, EV_WRITE);
		return;
	}
	if ((r->ust == HS_U_SENT || r->ust == HS_U_BODY) && !r->up_eof &&
	    (!r->uin.p || r->uin.len < r->uin.cap || (!r->out.slen && r->uin.pos)))
		ev |= EV_READ;
	if (!hs_out_empty(&r->uout) && u->wr_blocked)
		ev |= EV_WRITE;
	hs_up_watch(u, ev);
	if (r->ust == HS_U_SENT && !r->sent_all)
		hs_tmr_set(w, &u->tm, u->wr_blocked ? hs_mono() + w->lim.body_timeout_ms / 1000.0 : 0);
	else if (r->ust == HS_U_BODY)
		hs_tmr_set(w, &u->tm, hs_out_empty(&r->out) ?
			   hs_mono() + w->lim.body_timeout_ms / 1000.0 : 0);
	else if (r->ust == HS_U_DONE)
		u->tm.deadline = 0;
}

/* the response is complete and flushed: pool the upstream connection, end the request */
static int hs_fwd_complete(struct td_hs_req *r)
{
	struct hs_up *u = r->up;

	if (u) {
		r->up = NULL;
		u->r = NULL;
		r->wq &= (uint8_t)~HS_WQ_UP;
		r->wq_uerr = 0;
		if (r->rp.msg.keep_alive && r->bdone && hs_out_empty(&r->uout) && r->sent_all &&
		    !r->up_eof && r->uin.pos == r->uin.len)
			hs_up_put(u, r->max_idle);
		else
			hs_up_close(u);
	}
	return hs_req_end_ext(r);
}

int hs_fwd_step(struct td_hs_req *r)
{
	struct hs_worker *w = r->w;
	bool blocked;
	int rc, out;

	for (;;) {
		int p = 0;

		rc = hs_req_client_read(r);
		p |= rc > 0;
		rc = hs_fwd_produce_req(r);
		if (rc < 0)
			return r->phase == HS_P_RESPOND ? 1 : -1;
		p |= rc;
		if (r->c->eof && !r->bdone && !r->bdrop && r->in.len == r->in.pos)
			return hs_req_abort_ext(r, "client closed during the request body");

		if (r->ust == HS_U_NONE) {
			rc = hs_fwd_start(r);
			if (rc)
				return rc;
			p = 1;
		}
		if (r->ust == HS_U_CONNECTING) {
			if (r->up->wr_blocked)
				break;
			rc = hs_up_connected(r->up);
			if (rc < 0)
				return hs_fwd_fail(r, rc);
			r->ust = HS_U_SENT;
			p = 1;
		}
		if (r->wq_uerr || (!hs_out_empty(&r->uout) && !r->up->wr_blocked)) {
			blocked = false;
			if (r->wq_uerr) {
				/* a batched write failed (hs_uring.c) */
				rc = r->wq_uerr;
				r->wq_uerr = 0;
			} else if (!hs_wq_add(r, HS_WQ_UP)) {
				rc = 0;		/* batched: the prepare watcher runs r again */
			} else {
				rc = hs_out_flush_fd(&r->uout, r->up->fd, &blocked);
			}
			if (rc < 0) {
				if (r->ust == HS_U_SENT)
					return hs_fwd_fail(r, rc == -EPIPE ? -ECONNRESET : rc);
				/* the response is under way: the rest of the body is not wanted */
				r->close_after = true;
				r->bdrop = true;
				hs_buf_put(w, &r->uout.b);
				memset(&r->uout, 0, sizeof(r->uout));
				r->bdone = false;
			} else {
				r->up->wr_blocked = blocked;
				p |= rc > 0;
			}
		}
		if (r->ust == HS_U_SENT && !r->sent_all && r->bdone && hs_out_empty(&r->uout)) {
			r->sent_all = true;
			hs_tmr_set(w, &r->up->tm, hs_mono() + r->response_ms / 1000.0);
		}
		if ((r->ust == HS_U_SENT || r->ust == HS_U_BODY) && r->up->rd_ready && !r->up_eof) {
			rc = hs_fwd_read_up(r);
			if (rc < 0)
				return hs_req_abort_ext(r, "out of memory");
			p |= rc;
		}
		if (r->ust == HS_U_SENT && (r->uin.len > r->uin.pos || r->up_eof)) {
			rc = hs_fwd_resp_head(r, &out);
			if (rc == 2)
				return out;
			p |= rc;
		}
		if (r->ust == HS_U_BODY) {
			rc = hs_fwd_produce_resp(r);
			if (rc < 0)
				return -1;
			p |= rc;
		}
		if (r->ust == HS_U_DONE && r->tee)
			hs_tee_end(r, true);
		rc = hs_req_client_flush(r);
		if (rc < 0)
			return hs_req_abort_ext(r, "client write failed");
		p |= rc;
		if (r->ust == HS_U_DONE && hs_out_empty(&r->out))
			return hs_fwd_complete(r);
		if (!p)
			break;
	}
	hs_fwd_watch(r);
	return 0;
}

static void hs_fetch_cancel(struct hs_fetch *f);

void hs_fwd_release(struct td_hs_req *r)
{
	if (r->tee)
		hs_tee_end(r, false);
	hs_tun_release(r);
	if (r->up)
		hs_fwd_detach(r);
	while (r->fetches)
		hs_fetch_cancel(r->fetches);
}

/* ---- upstream events ----------------------------------------------------------------------- */

static void hs_up_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct hs_up *u = (struct hs_up *)io;

	if (revents & EV_READ)
		u->rd_ready = 1;
	if (revents & EV_WRITE)
		u->wr_blocked = 0;
	if (u->state == HS_UC_IDLE) {
		/* an idle pooled connection is readable: the server closed it (or misbehaves) */
		hs_up_close(u);
		return;
	}
	if (u->r)
		hs_conn_run(u->r->c);
	else if (u->f)
		hs_fetch_run(u->f);
	else
		hs_up_close(u);
}

static void hs_up_tm_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct hs_up *u = (struct hs_up *)((char *)t - offsetof(struct hs_up, tm.t));
	struct hs_worker *w = u->w;
	struct td_hs_req *r = u->r;
	struct hs_conn *c;
	double now;
	int rc;

	now = hs_mono();
	if (u->tm.deadline == 0)
		return;
	if (now + 0.005 < u->tm.deadline) {
		ev_timer_set(&u->tm.t, u->tm.deadline - now, 0.);
		ev_timer_start(loop, &u->tm.t);
		u->tm.armed = u->tm.deadline;
		return;
	}
	u->tm.deadline = 0;
	if (u->state == HS_UC_IDLE || (!r && !u->f)) {
		hs_up_close(u);
		return;
	}
	if (!r)
		return;		/* fetches have their own timer */
	c = r->c;
	if (r->ust == HS_U_CONNECTING)
		rc = hs_fwd_fail(r, -ETIMEDOUT);
	else if (r->ust == HS_U_SENT)
		rc = hs_fwd_fail(r, r->sent_all ? -ETIME : -ETIMEDOUT);
	else
		rc = hs_req_abort_ext(r, "upstream body timeout");
	if (rc > 0)
		hs_conn_run(c);
	(void)w;
}

/* ---- fetch --------------------------------------------------------------------------------- */

static void hs_fetch_free(struct hs_fetch *f)
{
	struct hs_worker *w = f->w;

	if (f->r) {
		if (f->prev)
			f->prev->next = f->next;
		else
			f->r->fetches = f->next;
		if (f->next)
			f->next->prev = f->prev;
		f->r = NULL;
	}
	if (f->up) {
		f->up->f = NULL;
		hs_up_close(f->up);
	}
	ev_timer_stop(w->loop, &f->tm);
	hs_buf_put(w, &f->in);
	free(f->head);
	free(f->body);
	free(f->ctype);
	free(f);
}

static void hs_fetch_cancel(struct hs_fetch *f)
{
	hs_fetch_free(f);
}

/* deliver the result: the connection goes back to the pool when clean */
static void hs_fetch_finish(struct hs_fetch *f, int err)
{
	struct td_hs_fetch_res res = { .err = err };
	struct td_hs_req *r = f->r;

	if (err)
		HS_INC(f->w, upstream_errors);
	if (f->up && !err && f->p.msg.keep_alive && !f->eof && f->in.pos == f->in.len &&
	    f->head_pos == f->head_len) {
		f->up->f = NULL;
		hs_up_put(f->up, TD_HS_DEF_MAX_IDLE);
		f->up = NULL;
	}
	if (!err) {
		res.status = f->p.msg.status;
		res.body = f->body ? f->body : "";
		res.body_len = f->blen;
		res.content_type = f->ctype;
	}
	/* unlink first: the callback may start other fetches or answer r */
	if (f->prev)
		f->prev->next = f->next;
	else
		r->fetches = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->r = NULL;
	f->cb(r, f->arg, &res);
	hs_fetch_free(f);
}

static int hs_fetch_body_add(struct hs_fetch *f, const char *d, size_t len)
{
	if (f->blen + len > f->max_body)
		return -EFBIG;
	if (f->blen + len > f->bcap) {
		size_t cap = f->bcap ? f->bcap * 2 : 4096;
		char *n;

		while (cap < f->blen + len)
			cap *= 2;
		if (cap > f->max_body)
			cap = f->max_body;
		n = realloc(f->body, cap);
		if (!n)
			return -ENOMEM;
		f->body = n;
		f->bcap = cap;
	}
	memcpy(f->body + f->blen, d, len);
	f->blen += len;
	return 0;
}

/* consume the response in f->in: 1 complete, 0 more needed, <0 error */
static int hs_fetch_parse(struct hs_fetch *f)
{
	struct hs_buf *b = &f->in;
	const struct td_http_msg *m = &f->p.msg;
	struct td_http_slice d;
	enum td_http_rc rc;
	size_t consumed;
	int k;

	while (!f->head_done) {
		if (b->len == b->pos)
			return 0;
		rc = td_http_parse(&f->p, b->p + b->pos, b->len - b->pos, &consumed);
		if (rc == TD_HTTP_AGAIN)
			return b->len == b->cap && !b->pos ? -EPROTO : 0;
		if (rc == TD_HTTP_ERROR || m->body == TD_HTTP_BODY_TUNNEL)
			return -EPROTO;
		if (m->status < 200) {
			b->pos += (uint32_t)consumed;
			td_http_parser_init(&f->p, TD_HTTP_RESPONSE, &hs_resp_lim);
			continue;
		}
		k = td_http_header_find(m, b->p + b->pos, "content-type", 0);
		if (k >= 0) {
			f->ctype = strndup(b->p + b->pos + m->hdr[k].value.off, m->hdr[k].value.len);
			if (!f->ctype)
				return -ENOMEM;
		}
		b->pos += (uint32_t)consumed;
		f->head_done = true;
		f->mode = m->body == TD_HTTP_BODY_LENGTH ? HS_B_LENGTH :
			  m->body == TD_HTTP_BODY_CHUNKED ? HS_B_CHUNKED :
			  m->body == TD_HTTP_BODY_CLOSE ? HS_B_CLOSE : HS_B_NONE;
		f->left = m->content_length;
		if (f->mode == HS_B_LENGTH && f->left > f->max_body)
			return -EFBIG;
		if (f->mode == HS_B_CHUNKED)
			td_http_chunked_init(&f->ch, TD_HTTP_RESPONSE, &hs_resp_lim);
	}
	for (;;) {
		uint32_t avail = b->len - b->pos;
		const char *base = b->p + b->pos;
		int e;

		switch (f->mode) {
		case HS_B_NONE:
			return 1;
		case HS_B_LENGTH: {
			uint32_t n = f->left < avail ? (uint32_t)f->left : avail;

			if ((e = hs_fetch_body_add(f, base, n)) < 0)
				return e;
			b->pos += n;
			f->left -= n;
			if (!f->left)
				return 1;
			return f->eof ? -EPROTO : 0;
		}
		case HS_B_CLOSE:
			if ((e = hs_fetch_body_add(f, base, avail)) < 0)
				return e;
			b->pos += avail;
			return f->eof ? 1 : 0;
		default:
			rc = td_http_chunked_decode(&f->ch, base, avail, &consumed, &d);
			b->pos += (uint32_t)consumed;
			if (rc == TD_HTTP_DATA) {
				if ((e = hs_fetch_body_add(f, base + d.off, d.len)) < 0)
					return e;
				continue;
			}
			if (rc == TD_HTTP_DONE)
				return 1;
			if (rc == TD_HTTP_ERROR)
				return -EPROTO;
			return f->eof ? -EPROTO : 0;
		}
	}
}

static void hs_fetch_run(struct hs_fetch *f)
{
	struct hs_worker *w = f->w;
	struct hs_up *u;
	int rc, ev;
	ssize_t n;

	for (;;) {
		if (f->err)
			goto fail;
		if (!f->up) {
			f->up = hs_up_acquire(w, &f->addr, f->addrlen, &f->reused, &rc);
			if (!f->up) {
				f->err = rc;
				goto fail;
			}
			f->up->f = f;
			f->up->r = NULL;
			f->head_pos = 0;
			f->any = f->eof = false;
		}
		u = f->up;
		if (u->state == HS_UC_CONNECTING) {
			if (u->wr_blocked)
				break;
			if ((rc = hs_up_connected(u)) < 0) {
				f->err = rc;
				goto fail;
			}
		}
		while (f->head_pos < f->head_len && !u->wr_blocked) {
			n = send(u->fd, f->head + f->head_pos, f->head_len - f->head_pos,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					u->wr_blocked = 1;
					break;
				}
				f->err = errno == EPIPE ? -ECONNRESET : -errno;
				goto fail;
			}
			f->head_pos += (size_t)n;
		}
		if (!u->rd_ready || f->eof)
			break;
		if (!f->in.p && hs_buf_get(w, &f->in, TD_HS_BUF) < 0) {
			f->err = -ENOMEM;
			goto fail;
		}
		if (f->in.pos == f->in.len) {
			f->in.pos = f->in.len = 0;
		} else if (f->in.len == f->in.cap && f->in.pos) {
			memmove(f->in.p, f->in.p + f->in.pos, f->in.len - f->in.pos);
			f->in.len -= f->in.pos;
			f->in.pos = 0;
		}
		n = recv(u->fd, f->in.p + f->in.len, f->in.cap - f->in.len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			u->rd_ready = 0;
			break;
		}
		if (n > 0) {
			f->in.len += (uint32_t)n;
			f->any = true;
		} else {
			f->eof = true;
			u->rd_ready = 0;
			if (n < 0 || !f->any) {
				f->err = n < 0 ? -errno : -ECONNRESET;
				goto fail;
			}
		}
		rc = hs_fetch_parse(f);
		if (rc < 0) {
			f->err = rc;
			goto fail;
		}
		if (rc > 0) {
			hs_fetch_finish(f, 0);
			return;
		}
	}
	u = f->up;
	ev = u->state == HS_UC_CONNECTING ? EV_WRITE :
	     (f->eof ? 0 : EV_READ) | (u->wr_blocked && f->head_pos < f->head_len ? EV_WRITE : 0);
	hs_up_watch(u, ev);
	return;
fail:
	if (f->up && f->reused && !f->any && !f->retried && f->err != -ETIME &&
	    f->err != -EFBIG && f->err != -EPROTO) {
		/* keep-alive race on a pooled connection: once more on a new one */
		f->up->f = NULL;
		hs_up_close(f->up);
		f->up = NULL;
		f->retried = true;
		f->err = 0;
		f->in.pos = f->in.len = 0;
		td_http_parser_init(&f->p, TD_HTTP_RESPONSE, &hs_resp_lim);
		hs_fetch_run(f);
		return;
	}
	hs_fetch_finish(f, f->err);
}

static void hs_fetch_tm_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct hs_fetch *f = t->data;

	if (!f->err)
		f->err = -ETIME;
	f->retried = true;
	hs_fetch_run(f);
}

int td_hs_fetch(struct td_hs_req *r, const struct sockaddr *addr, socklen_t addrlen,
		const char *head, size_t head_len, uint32_t timeout_ms, size_t max_body,
		td_hs_fetch_cb cb, void *arg)
{
	struct hs_fetch *f;

	if (!r || !addr || addrlen > sizeof(union hs_addr) || !head || !head_len || !cb ||
	    (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->head = malloc(head_len);
	if (!f->head) {
		free(f);
		return -ENOMEM;
	}
	memcpy(f->head, head, head_len);
	f->head_len = head_len;
	f->w = r->w;
	f->r = r;
	memcpy(&f->addr, addr, addrlen);
	f->addrlen = addrlen;
	f->max_body = max_body;
	f->cb = cb;
	f->arg = arg;
	td_http_parser_init(&f->p, TD_HTTP_RESPONSE, &hs_resp_lim);
	if (head_len > 5 && !memcmp(head, "HEAD ", 5))
		td_http_parser_set_req_method(&f->p, TD_HTTP_M_HEAD);
	f->next = r->fetches;
	if (r->fetches)
		r->fetches->prev = f;
	r->fetches = f;
	ev_timer_init(&f->tm, hs_fetch_tm_cb, (timeout_ms ? timeout_ms : TD_HS_DEF_RESPONSE_TIMEOUT) /
		      1000.0, 0.);
	f->tm.data = f;
	ev_timer_start(f->w->loop, &f->tm);
	/* the connection starts from the loop: the callback never runs inside this call */
	f->up = NULL;
	{
		bool reused;
		int err = 0;

		f->up = hs_up_acquire(f->w, &f->addr, f->addrlen, &reused, &err);
		f->reused = reused;
		if (!f->up) {
			/* report from the loop, right away */
			f->err = err;
			ev_timer_stop(f->w->loop, &f->tm);
			ev_timer_set(&f->tm, 0., 0.);
			ev_timer_start(f->w->loop, &f->tm);
			return 0;
		}
		f->up->f = f;
		if (f->up->state == HS_UC_CONNECTING) {
			hs_up_watch(f->up, EV_WRITE);
		} else {
			/* pooled: write now, the response comes through the loop */
			hs_up_watch(f->up, EV_READ | EV_WRITE);
			f->up->wr_blocked = 0;
		}
	}
	return 0;
}

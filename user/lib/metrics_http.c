/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Tiny non-blocking HTTP/1.1 responder for GET /metrics, driven by the caller's event loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics_http.h"

#define TD_MH_MAX_CONNS_DEFAULT  16
#define TD_MH_REQ_TIMEOUT_MS     2000
#define TD_MH_RESP_TIMEOUT_MS    10000
#define TD_MH_LINGER_MS          500      /* drain after our response, then close        */
#define TD_MH_ACCEPT_BACKOFF_MS  100      /* out of fds: stop accepting for this long    */
#define TD_MH_ACCEPT_BATCH       16       /* connections accepted per readiness event    */
#define TD_MH_EVENTS             32
#define TD_MH_LISTENER           UINT64_MAX   /* epoll data of the listening socket       */

enum td_mh_state {
	TD_MH_FREE = 0,
	TD_MH_READ,            /* waiting for the request headers (EPOLLIN)            */
	TD_MH_WRITE,           /* response partly written (EPOLLOUT)                   */
	TD_MH_LINGER,          /* response written, SHUT_WR done, draining (EPOLLIN)   */
};

/* One client connection. */
struct td_mh_conn {
	int fd;
	enum td_mh_state state;
	__u32 gen;                        /* bumped per use of the slot: stale events are ignored */
	uint64_t accepted_ms;
	uint64_t deadline_ms;
	size_t rlen;
	char req[TD_METRICS_HTTP_MAX_REQUEST];
	struct td_metrics_buf out;        /* status line, headers and body                      */
	size_t off;                       /* bytes of out already sent                           */
};

struct td_metrics_http {
	int lfd;
	int epfd;
	td_metrics_render_fn render;
	void *arg;
	struct td_metrics_http_opts o;
	struct td_mh_conn *conns;         /* o.max_conns slots                                    */
	size_t nconns;                    /* slots in use                                        */
	__u32 gen;
	uint64_t accept_paused_until;     /* 0: the listener is in the epoll set                 */
	struct td_metrics_buf body;       /* scratch for render()                                */
};

uint64_t td_metrics_http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- listening ---------------------------------------------------------------------------- */

static int td_mh_parse_port(const char *s, __u16 *port)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*port = (__u16)v;
	return 0;
}

int td_metrics_listen_parse(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
			    bool *loopback)
{
	char host[64];
	const char *port_s;
	size_t hl;
	__u16 port;

	if (!addr)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (addr[0] == '[') {
		const char *end = strstr(addr, "]:");
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (!end)
			return -EINVAL;
		hl = (size_t)(end - addr - 1);
		port_s = end + 2;
		if (hl == 0 || hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr + 1, hl);
		host[hl] = '\0';
		if (td_mh_parse_port(port_s, &port) || inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		*loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
			    (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && s6->sin6_addr.s6_addr[12] == 127);
	} else {
		const char *colon = strrchr(addr, ':');
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - addr);
		port_s = colon + 1;
		if (hl == 0 || hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr, hl);
		host[hl] = '\0';
		if (td_mh_parse_port(port_s, &port) || inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		*loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	return 0;
}

int td_metrics_http_listen(const char *addr, bool allow_public)
{
	struct sockaddr_storage ss;
	bool loopback = false;
	socklen_t len = 0;
	int fd = -1, one = 1, err;

	err = td_metrics_listen_parse(addr, &ss, &len, &loopback);
	if (err) {
		td_err("metrics: invalid listen address '%s' (expected A.B.C.D:PORT or [IPV6]:PORT)",
		       addr ? addr : "(null)");
		goto cleanup;
	}
	if (!loopback && !allow_public) {
		err = -EACCES;
		td_err("metrics: refusing to listen on non-loopback address %s "
		       "(metrics are served on loopback only unless explicitly allowed)", addr);
		goto cleanup;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		td_err("metrics: socket: %s", strerror(-err));
		goto cleanup;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)))) {
		err = -errno;
		td_err("metrics: setsockopt on %s: %s", addr, strerror(-err));
		goto cleanup;
	}
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 64)) {
		err = -errno;
		td_err("metrics: cannot listen on %s: %s", addr, strerror(-err));
		goto cleanup;
	}
	err = 0;
cleanup:
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	return fd;
}

/* ---- connections -------------------------------------------------------------------------- */

static uint64_t td_mh_data(const struct td_metrics_http *h, const struct td_mh_conn *c)
{
	return ((uint64_t)c->gen << 32) | (uint64_t)(c - h->conns);
}

static void td_mh_close(struct td_metrics_http *h, struct td_mh_conn *c)
{
	if (c->state == TD_MH_FREE)
		return;
	epoll_ctl(h->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->state = TD_MH_FREE;
	td_metrics_buf_free(&c->out);
	h->nconns--;
}

static int td_mh_watch(struct td_metrics_http *h, struct td_mh_conn *c, int op, __u32 events)
{
	struct epoll_event ev = { .events = events, .data.u64 = td_mh_data(h, c) };

	return epoll_ctl(h->epfd, op, c->fd, &ev) ? -errno : 0;
}

/* Send what is left of c->out; then shut down writing and linger. */
static void td_mh_write(struct td_metrics_http *h, struct td_mh_conn *c, uint64_t now)
{
	while (c->off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->off, c->out.len - c->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (c->state != TD_MH_WRITE) {
				c->state = TD_MH_WRITE;
				if (td_mh_watch(h, c, EPOLL_CTL_MOD, EPOLLOUT))
					td_mh_close(h, c);
			}
			return;
		}
		if (n <= 0) {
			td_debug("metrics: client went away: %s", n ? strerror(errno) : "closed");
			td_mh_close(h, c);
			return;
		}
		c->off += (size_t)n;
	}
	td_metrics_buf_free(&c->out);
	shutdown(c->fd, SHUT_WR);
	c->state = TD_MH_LINGER;
	if (c->deadline_ms > now + TD_MH_LINGER_MS)
		c->deadline_ms = now + TD_MH_LINGER_MS;
	if (td_mh_watch(h, c, EPOLL_CTL_MOD, EPOLLIN))
		td_mh_close(h, c);
}

static const char *td_mh_reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* RFC 9110 IMF-fixdate, independent of the locale */
static void td_mh_date(char *buf, size_t len)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
					  "Sep", "Oct", "Nov", "Dec" };
	time_t t = time(NULL);
	struct tm tm;

	if (!gmtime_r(&t, &tm)) {
		snprintf(buf, len, "Thu, 01 Jan 1970 00:00:00 GMT");
		return;
	}
	snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday % 7], tm.tm_mday,
		 mo[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Build the response for code into c->out and start writing it. */
static void td_mh_respond(struct td_metrics_http *h, struct td_mh_conn *c, int code, bool head,
			  uint64_t now)
{
	const char *ctype = "text/plain; charset=utf-8";
	char date[40], err_body[64];
	const char *body;
	size_t blen;

	if (code == 200) {
		int err;

		td_metrics_buf_reset(&h->body);
		err = h->render(h->arg, &h->body);
		if (!err)
			err = h->body.err;
		if (err) {
			td_warn("metrics: rendering failed: %s", strerror(-err));
			code = 500;
		}
	}
	if (code == 200) {
		ctype = TD_METRICS_CONTENT_TYPE;
		body = h->body.data ? h->body.data : "";
		blen = h->body.len;
	} else {
		snprintf(err_body, sizeof(err_body), "%d %s\n", code, td_mh_reason(code));
		body = err_body;
		blen = strlen(err_body);
	}
	td_mh_date(date, sizeof(date));
	td_metrics_buf_reset(&c->out);
	td_metrics_buf_printf(&c->out,
			      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			      "Date: %s\r\n%sConnection: close\r\n\r\n", code, td_mh_reason(code),
			      ctype, blen, date, code == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head)
		td_metrics_buf_append(&c->out, body, blen);
	if (code == 200 && h->body.cap > (1u << 20) && h->body.len < h->body.cap / 4)
		td_metrics_buf_free(&h->body);          /* do not keep a huge scratch forever */
	if (c->out.err) {
		td_warn("metrics: out of memory answering a request");
		td_mh_close(h, c);
		return;
	}
	td_debug("metrics: %d %s", code, td_mh_reason(code));
	c->off = 0;
	c->deadline_ms = c->accepted_ms + h->o.response_timeout_ms;
	if (c->deadline_ms < now + 1)
		c->deadline_ms = now + 1;
	td_mh_write(h, c, now);
}

static bool td_mh_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool td_mh_token(const char *s, size_t n)
{
	size_t i;

	if (!n)
		return false;
	for (i = 0; i < n; i++)
		if (!td_mh_tchar((unsigned char)s[i]))
			return false;
	return true;
}

/*
 * Parse the request head req[0..len) (up to and including the blank line) and route it.
 * Returns the status code; *head for HEAD.
 */
static int td_mh_parse(const char *req, size_t len, bool *head)
{
	const char *p = req, *end = req + len, *eol, *sp1, *sp2, *colon;
	size_t ll, i, path_len;
	int hosts = 0, minor;

	*head = false;
	if (memchr(req, '\0', len))
		return 400;
	/* request line */
	eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol)
		return 400;
	ll = (size_t)(eol - p);
	if (ll && p[ll - 1] == '\r')
		ll--;
	sp1 = memchr(p, ' ', ll);
	sp2 = sp1 ? memchr(sp1 + 1, ' ', ll - (size_t)(sp1 + 1 - p)) : NULL;
	if (!sp1 || !sp2 || memchr(sp2 + 1, ' ', ll - (size_t)(sp2 + 1 - p)))
		return 400;
	if (!td_mh_token(p, (size_t)(sp1 - p)) || sp2 == sp1 + 1)
		return 400;
	for (i = 1; sp1 + i < sp2; i++)
		if ((unsigned char)sp1[i] <= 0x20 || (unsigned char)sp1[i] >= 0x7f)
			return 400;
	if ((size_t)(p + ll - (sp2 + 1)) != 8 || memcmp(sp2 + 1, "HTTP/", 5) ||
	    sp2[6] < '0' || sp2[6] > '9' || sp2[7] != '.' || sp2[8] < '0' || sp2[8] > '9')
		return 400;
	if (sp2[6] != '1' || (sp2[8] != '0' && sp2[8] != '1'))
		return 505;
	minor = sp2[8] - '0';
	/* header fields */
	for (const char *q = eol + 1; q < end; q = eol + 1) {
		eol = memchr(q, '\n', (size_t)(end - q));
		if (!eol)
			return 400;
		ll = (size_t)(eol - q);
		if (ll && q[ll - 1] == '\r')
			ll--;
		if (!ll)
			break;
		colon = memchr(q, ':', ll);
		if (!colon || !td_mh_token(q, (size_t)(colon - q)))
			return 400;      /* also catches obsolete line folding and "Name :" */
		for (i = 0; i < ll; i++) {
			unsigned char ch = (unsigned char)q[i];

			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return 400;
		}
		if (colon - q == 4 && !strncasecmp(q, "host", 4))
			hosts++;
	}
	if (hosts > 1 || (minor == 1 && hosts != 1))
		return 400;
	/* route */
	path_len = (size_t)(sp2 - sp1 - 1);
	colon = memchr(sp1 + 1, '?', path_len);
	if (colon)
		path_len = (size_t)(colon - sp1 - 1);
	if (path_len != 8 || memcmp(sp1 + 1, "/metrics", 8))
		return 404;
	if (sp1 - p == 3 && !memcmp(p, "GET", 3))
		return 200;
	if (sp1 - p == 4 && !memcmp(p, "HEAD", 4)) {
		*head = true;
		return 200;
	}
	return 405;
}

/* end of the request head (index after the blank line) or 0 when not complete */
static size_t td_mh_head_end(const char *buf, size_t from, size_t len)
{
	size_t i;

	for (i = from; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static void td_mh_read(struct td_metrics_http *h, struct td_mh_conn *c, uint64_t now)
{
	size_t end;
	bool head;

	for (;;) {
		ssize_t n = recv(c->fd, c->req + c->rlen, sizeof(c->req) - c->rlen, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			td_mh_close(h, c);
			return;
		}
		if (n == 0) {
			/* half-closed before the end of the head: answer if anything came */
			if (c->rlen)
				td_mh_respond(h, c, 400, false, now);
			else
				td_mh_close(h, c);
			return;
		}
		/* the blank line may straddle two reads: rescan the last 2 old bytes too */
		end = td_mh_head_end(c->req, c->rlen > 2 ? c->rlen - 2 : 0, c->rlen + (size_t)n);
		c->rlen += (size_t)n;
		if (end) {
			int code = td_mh_parse(c->req, end, &head);

			td_mh_respond(h, c, code, head, now);
			return;
		}
		if (c->rlen == sizeof(c->req)) {
			td_mh_respond(h, c, 431, false, now);
			return;
		}
	}
}

static void td_mh_drain(struct td_metrics_http *h, struct td_mh_conn *c)
{
	char sink[1024];

	for (;;) {
		ssize_t n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		td_mh_close(h, c);     /* EOF or error: the client has everything it will get */
		return;
	}
}

/* Room for a new connection: a free slot, or the oldest one still waiting for its request. */
static struct td_mh_conn *td_mh_slot(struct td_metrics_http *h)
{
	struct td_mh_conn *oldest = NULL;
	size_t i;

	for (i = 0; i < h->o.max_conns; i++) {
		struct td_mh_conn *c = &h->conns[i];

		if (c->state == TD_MH_FREE)
			return c;
		if (c->state == TD_MH_READ && (!oldest || c->accepted_ms < oldest->accepted_ms))
			oldest = c;
	}
	if (oldest) {
		td_debug("metrics: %u connections open, closing the oldest idle one",
			 h->o.max_conns);
		td_mh_close(h, oldest);
	}
	return oldest;
}

static void td_mh_pause_accept(struct td_metrics_http *h, uint64_t now)
{
	if (h->accept_paused_until)
		return;
	epoll_ctl(h->epfd, EPOLL_CTL_DEL, h->lfd, NULL);
	h->accept_paused_until = now + TD_MH_ACCEPT_BACKOFF_MS;
}

static void td_mh_accept(struct td_metrics_http *h, uint64_t now)
{
	int i;

	for (i = 0; i < TD_MH_ACCEPT_BATCH; i++) {
		struct td_mh_conn *c;
		int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				td_warn("metrics: accept: %s; pausing for %d ms", strerror(errno),
					TD_MH_ACCEPT_BACKOFF_MS);
				td_mh_pause_accept(h, now);
			}
			return;
		}
		c = td_mh_slot(h);
		if (!c) {
			close(fd);      /* every slot is busy answering: the client retries */
			continue;
		}
		c->fd = fd;
		c->state = TD_MH_READ;
		c->gen = ++h->gen;
		c->accepted_ms = now;
		c->deadline_ms = now + h->o.request_timeout_ms;
		c->rlen = 0;
		c->off = 0;
		td_metrics_buf_init(&c->out);
		h->nconns++;
		if (td_mh_watch(h, c, EPOLL_CTL_ADD, EPOLLIN))
			td_mh_close(h, c);
	}
}

/* ---- server ------------------------------------------------------------------------------- */

struct td_metrics_http *td_metrics_http_new(int lfd, td_metrics_render_fn render, void *arg,
					    const struct td_metrics_http_opts *opts)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TD_MH_LISTENER };
	struct td_metrics_http *h = NULL;
	size_t i;
	int err = 0;

	if (lfd < 0 || !render) {
		err = -EINVAL;
		goto cleanup;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		err = -ENOMEM;
		goto cleanup;
	}
	h->lfd = lfd;
	h->epfd = -1;
	h->render = render;
	h->arg = arg;
	if (opts)
		h->o = *opts;
	if (!h->o.max_conns)
		h->o.max_conns = TD_MH_MAX_CONNS_DEFAULT;
	if (!h->o.request_timeout_ms)
		h->o.request_timeout_ms = TD_MH_REQ_TIMEOUT_MS;
	if (!h->o.response_timeout_ms)
		h->o.response_timeout_ms = TD_MH_RESP_TIMEOUT_MS;
	h->conns = calloc(h->o.max_conns, sizeof(*h->conns));
	if (!h->conns) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < h->o.max_conns; i++)
		h->conns[i].fd = -1;
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h->epfd < 0 || epoll_ctl(h->epfd, EPOLL_CTL_ADD, lfd, &ev)) {
		err = -errno;
		td_err("metrics: epoll: %s", strerror(-err));
		goto cleanup;
	}
cleanup:
	if (err) {
		if (h) {
			td_metrics_http_free(h);
		} else if (lfd >= 0) {
			close(lfd);
		}
		errno = -err;
		return NULL;
	}
	return h;
}

void td_metrics_http_free(struct td_metrics_http *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; h->conns && i < h->o.max_conns; i++)
		td_mh_close(h, &h->conns[i]);
	if (h->epfd >= 0)
		close(h->epfd);
	if (h->lfd >= 0)
		close(h->lfd);
	td_metrics_buf_free(&h->body);
	free(h->conns);
	free(h);
}

int td_metrics_http_fd(const struct td_metrics_http *h)
{
	return h->epfd;
}

int td_metrics_http_process(struct td_metrics_http *h, uint64_t now_ms)
{
	struct epoll_event ev[TD_MH_EVENTS];
	int round, n, i;
	size_t k;

	if (h->accept_paused_until && now_ms >= h->accept_paused_until) {
		struct epoll_event le = { .events = EPOLLIN, .data.u64 = TD_MH_LISTENER };

		if (!epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->lfd, &le) || errno == EEXIST)
			h->accept_paused_until = 0;
	}
	/* bounded: a flood of events is finished on the next call, the loop stays responsive */
	for (round = 0; round < 4; round++) {
		n = epoll_wait(h->epfd, ev, TD_MH_EVENTS, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (i = 0; i < n; i++) {
			uint64_t d = ev[i].data.u64;
			struct td_mh_conn *c;

			if (d == TD_MH_LISTENER) {
				td_mh_accept(h, now_ms);
				continue;
			}
			if ((d & 0xffffffffu) >= h->o.max_conns)
				continue;
			c = &h->conns[d & 0xffffffffu];
			if (c->state == TD_MH_FREE || c->gen != (__u32)(d >> 32))
				continue;   /* closed (and maybe reused) earlier in this batch */
			if (c->state == TD_MH_READ)
				td_mh_read(h, c, now_ms);
			else if (c->state == TD_MH_WRITE)
				td_mh_write(h, c, now_ms);
			else
				td_mh_drain(h, c);
		}
		if (n < TD_MH_EVENTS)
			break;
	}
	for (k = 0; k < h->o.max_conns; k++) {
		struct td_mh_conn *c = &h->conns[k];

		if (c->state != TD_MH_FREE && now_ms >= c->deadline_ms) {
			td_debug("metrics: closing a connection that timed out (%s)",
				 c->state == TD_MH_READ ? "no complete request" :
				 c->state == TD_MH_WRITE ? "response not read" : "lingering");
			td_mh_close(h, c);
		}
	}
	return 0;
}

uint64_t td_metrics_http_next_deadline_ms(const struct td_metrics_http *h)
{
	uint64_t next = h->accept_paused_until ? h->accept_paused_until : UINT64_MAX;
	size_t k;

	for (k = 0; k < h->o.max_conns; k++)
		if (h->conns[k].state != TD_MH_FREE && h->conns[k].deadline_ms < next)
			next = h->conns[k].deadline_ms;
	return next;
}

unsigned int td_metrics_http_port(const struct td_metrics_http *h)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(h->lfd, (struct sockaddr *)&ss, &len))
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

size_t td_metrics_http_conns(const struct td_metrics_http *h)
{
	return h->nconns;
}

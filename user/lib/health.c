/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Health checker: non-blocking TCP/HTTP probes on one epoll fd, rise/fall state per target key. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "health.h"
#include "log.h"

#define TD_HC_RBUF      256   /* enough for any sane status line                         */
#define TD_HC_EVENTS    256   /* epoll events per epoll_wait                              */
#define TD_HC_ROUNDS    64    /* epoll_wait rounds per process() (bounded work per call) */
#define TD_HC_MAX_LIMIT 1000000u

enum td_hc_phase {
	TD_HC_IDLE = 0,
	TD_HC_CONNECTING,      /* waiting for EPOLLOUT of a non-blocking connect */
	TD_HC_SENDING,         /* http: request not fully written yet            */
	TD_HC_READING,         /* http: waiting for the status line              */
};

/* One target: its probe, its check in flight and its state. Stable address while in the set. */
struct td_hc {
	char *key;
	char *path;                  /* http path (own copy), NULL for tcp                 */
	char *req;                   /* http request bytes, NULL for tcp                   */
	size_t req_len;
	union td_addr addr;
	__u8 family, type;
	__u16 port;
	__u32 interval_ms, timeout_ms, rise, fall;
	bool initially_down;

	int fd;                      /* -1 when idle                                       */
	enum td_hc_phase phase;
	size_t sent;
	size_t rlen;
	char rbuf[TD_HC_RBUF];
	uint64_t started_ms, deadline_ms, next_ms;

	struct td_hc_status st;
};

struct td_health {
	int efd;
	struct td_hc **t;            /* sorted by key                                      */
	size_t n;
	td_health_cb cb;
	void *cb_arg;
	uint64_t now_ms;             /* last now seen by process()                         */
	bool busy;                   /* inside process(): set() and free() are refused     */
};

uint64_t td_health_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *td_hc_type_name(unsigned int type)
{
	switch (type) {
	case TD_HC_NONE: return "none";
	case TD_HC_TCP: return "tcp";
	case TD_HC_HTTP: return "http";
	default: return "?";
	}
}

const char *td_health_key_format(char *buf, size_t len, const char *service,
				 const union td_addr *addr, __u8 family, __u16 port)
{
	char ep[TD_ENDPOINTSTRLEN];

	snprintf(buf, len, "%s/%s", service ? service : "",
		 td_endpoint_format(addr, family, port, ep, sizeof(ep)));
	return buf;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

struct td_health *td_health_new(td_health_cb on_change, void *arg)
{
	struct td_health *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return NULL;
	h->efd = epoll_create1(EPOLL_CLOEXEC);
	if (h->efd < 0) {
		err = errno;
		free(h);
		errno = err;
		return NULL;
	}
	h->cb = on_change;
	h->cb_arg = arg;
	return h;
}

static void td_hc_close(struct td_health *h, struct td_hc *t)
{
	if (t->fd >= 0) {
		/* explicit: a forked child holding the fd would otherwise keep it registered */
		epoll_ctl(h->efd, EPOLL_CTL_DEL, t->fd, NULL);
		close(t->fd);
	}
	t->fd = -1;
	t->phase = TD_HC_IDLE;
	t->sent = 0;
	t->rlen = 0;
}

static void td_hc_destroy(struct td_hc *t)
{
	if (!t)
		return;
	free(t->key);
	free(t->path);
	free(t->req);
	free(t);
}

void td_health_free(struct td_health *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++) {
		td_hc_close(h, h->t[i]);
		td_hc_destroy(h->t[i]);
	}
	free(h->t);
	close(h->efd);
	free(h);
}

int td_health_fd(const struct td_health *h)
{
	return h ? h->efd : -EINVAL;
}

size_t td_health_count(const struct td_health *h)
{
	return h ? h->n : 0;
}

/* ---- target set ---------------------------------------------------------------------------- */

static bool td_hc_path_valid(const char *p)
{
	if (!p || p[0] != '/' || strlen(p) >= TD_HC_PATH_LEN)
		return false;
	for (; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static bool td_hc_target_valid(const struct td_hc_target *t)
{
	if (!t->key || !*t->key)
		return false;
	if (t->family != TD_AF_INET && t->family != TD_AF_INET6)
		return false;
	if (t->type != TD_HC_TCP && t->type != TD_HC_HTTP)
		return false;
	if (!t->port || !t->interval_ms || !t->timeout_ms || t->timeout_ms > t->interval_ms)
		return false;
	if (!t->rise || !t->fall || t->rise > TD_HC_MAX_LIMIT || t->fall > TD_HC_MAX_LIMIT)
		return false;
	if (t->type == TD_HC_HTTP && t->path && !td_hc_path_valid(t->path))
		return false;
	if (t->type == TD_HC_TCP && t->path)
		return false;
	return true;
}

/* A fresh, unlinked copy of target t (idle, initial state). NULL on ENOMEM. */
static struct td_hc *td_hc_create(const struct td_hc_target *t, uint64_t now_ms)
{
	char host[TD_ENDPOINTSTRLEN], abuf[TD_ADDRSTRLEN];
	struct td_hc *c = calloc(1, sizeof(*c));
	bool ok = false;
	int len;

	if (!c)
		return NULL;
	c->fd = -1;
	c->key = strdup(t->key);
	if (!c->key)
		goto cleanup;
	c->addr = t->addr;
	c->family = t->family;
	c->type = t->type;
	c->port = t->port;
	c->interval_ms = t->interval_ms;
	c->timeout_ms = t->timeout_ms;
	c->rise = t->rise;
	c->fall = t->fall;
	c->initially_down = t->initially_down;
	c->st.healthy = !t->initially_down;
	c->st.changed_ms = now_ms;
	if (t->type == TD_HC_HTTP) {
		c->path = strdup(t->path ? t->path : "/");
		if (!c->path)
			goto cleanup;
		/* Host: the address, with the port unless it is 80 (RFC 9110 7.2) */
		if (t->port == 80)
			snprintf(host, sizeof(host), t->family == TD_AF_INET6 ? "[%s]" : "%s",
				 td_addr_format(&t->addr, t->family, abuf, sizeof(abuf)));
		else
			td_endpoint_format(&t->addr, t->family, t->port, host, sizeof(host));
		len = asprintf(&c->req,
			       "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
			       "User-Agent: td-health\r\n\r\n", c->path, host);
		if (len < 0) {
			c->req = NULL;
			goto cleanup;
		}
		c->req_len = (size_t)len;
	}
	ok = true;
cleanup:
	if (!ok) {
		td_hc_destroy(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

static bool td_hc_same_probe(const struct td_hc *a, const struct td_hc *b)
{
	return a->family == b->family && a->type == b->type && a->port == b->port &&
	       td_addr_equal(&a->addr, &b->addr) &&
	       ((!a->path && !b->path) || (a->path && b->path && !strcmp(a->path, b->path)));
}

static int td_hc_cmp(const void *a, const void *b)
{
	return strcmp((*(struct td_hc *const *)a)->key, (*(struct td_hc *const *)b)->key);
}

/* Move the probe and its parameters of fresh into old (which keeps its state); frees fresh. */
static void td_hc_adopt(struct td_health *h, struct td_hc *old, struct td_hc *fresh)
{
	char *s;

	if (!td_hc_same_probe(old, fresh)) {
		/* another endpoint behind the same key: old results say nothing about it */
		td_hc_close(h, old);
		memset(&old->st, 0, sizeof(old->st));
		old->st.healthy = !fresh->initially_down;
		old->st.changed_ms = h->now_ms;
		old->next_ms = 0;
		old->addr = fresh->addr;
		old->family = fresh->family;
		old->type = fresh->type;
		old->port = fresh->port;
		s = old->path, old->path = fresh->path, fresh->path = s;
		s = old->req, old->req = fresh->req, fresh->req = s;
		old->req_len = fresh->req_len;
	}
	/* a new interval applies from the next check: reschedule from the last start */
	if (old->interval_ms != fresh->interval_ms && old->next_ms)
		old->next_ms = old->started_ms + fresh->interval_ms;
	old->interval_ms = fresh->interval_ms;
	old->timeout_ms = fresh->timeout_ms;
	old->rise = fresh->rise;
	old->fall = fresh->fall;
	old->initially_down = fresh->initially_down;
	td_hc_destroy(fresh);
}

int td_health_set(struct td_health *h, const struct td_hc_target *targets, size_t n)
{
	struct td_hc **nt = NULL;
	size_t i, j;
	int err = 0;

	if (!h || (n && !targets))
		return -EINVAL;
	if (h->busy)
		return -EBUSY;
	for (i = 0; i < n; i++) {
		if (!td_hc_target_valid(&targets[i])) {
			td_debug("health: invalid target %zu ('%s')", i,
				 targets[i].key ? targets[i].key : "(null)");
			return -EINVAL;
		}
	}
	if (n) {
		nt = calloc(n, sizeof(*nt));
		if (!nt)
			return -ENOMEM;
	}
	/* phase 1, may fail: build every target fresh; nothing running is touched yet */
	for (i = 0; i < n; i++) {
		nt[i] = td_hc_create(&targets[i], h->now_ms);
		if (!nt[i]) {
			err = -ENOMEM;
			goto cleanup;
		}
	}
	if (n > 1)
		qsort(nt, n, sizeof(*nt), td_hc_cmp);
	for (i = 1; i < n; i++) {
		if (!strcmp(nt[i - 1]->key, nt[i]->key)) {
			td_debug("health: duplicate target key '%s'", nt[i]->key);
			err = -EINVAL;
			goto cleanup;
		}
	}
	/* phase 2, cannot fail: merge the two sorted lists */
	for (i = 0, j = 0; i < n || j < h->n;) {
		int c = i == n ? 1 : j == h->n ? -1 : strcmp(nt[i]->key, h->t[j]->key);

		if (c < 0) {                   /* new key */
			i++;
		} else if (c > 0) {            /* dropped key */
			td_hc_close(h, h->t[j]);
			td_hc_destroy(h->t[j]);
			j++;
		} else {                       /* kept key */
			td_hc_adopt(h, h->t[j], nt[i]);
			nt[i++] = h->t[j++];
		}
	}
	free(h->t);
	h->t = nt;
	h->n = n;
	nt = NULL;

cleanup:
	if (nt) {
		for (i = 0; i < n; i++)
			td_hc_destroy(nt[i]);
		free(nt);
	}
	return err;
}

static struct td_hc *td_hc_find(const struct td_health *h, const char *key)
{
	struct td_hc k = { .key = (char *)key }, *kp = &k, **r;

	if (!h->n)
		return NULL;
	r = bsearch(&kp, h->t, h->n, sizeof(*h->t), td_hc_cmp);
	return r ? *r : NULL;
}

int td_health_get(const struct td_health *h, const char *key, struct td_hc_status *st)
{
	const struct td_hc *t;

	if (!h || !key || !st)
		return -EINVAL;
	t = td_hc_find(h, key);
	if (!t)
		return -ENOENT;
	*st = t->st;
	st->in_flight = t->fd >= 0;
	return 0;
}

uint64_t td_health_next_deadline_ms(const struct td_health *h)
{
	uint64_t d = UINT64_MAX;

	if (!h)
		return d;
	for (size_t i = 0; i < h->n; i++) {
		const struct td_hc *t = h->t[i];
		uint64_t x = t->fd >= 0 ? t->deadline_ms : t->next_ms;

		if (x < d)
			d = x;
	}
	return d;
}

/* ---- one check ------------------------------------------------------------------------------ */

/* End the check in flight (if any) with a result and run the rise/fall state machine. */
static void td_hc_finish(struct td_health *h, struct td_hc *t, bool ok, const char *why,
			 uint64_t now_ms)
{
	bool was = t->st.healthy;

	td_hc_close(h, t);
	t->st.checks++;
	t->st.last_ok = ok;
	t->st.last_ms = now_ms > t->started_ms ? (__u32)(now_ms - t->started_ms) : 0;
	if (ok) {
		t->st.last_error[0] = '\0';
		t->st.fails = 0;
		if (t->st.passes < UINT32_MAX)
			t->st.passes++;
		if (!t->st.healthy && t->st.passes >= t->rise)
			t->st.healthy = true;
	} else {
		snprintf(t->st.last_error, sizeof(t->st.last_error), "%s", why);
		t->st.failures++;
		t->st.passes = 0;
		if (t->st.fails < UINT32_MAX)
			t->st.fails++;
		if (t->st.healthy && t->st.fails >= t->fall)
			t->st.healthy = false;
	}
	td_debug("health: %s: %s %s in %u ms (%u passes, %u failures in a row)", t->key,
		 td_hc_type_name(t->type), ok ? "pass" : why, t->st.last_ms, t->st.passes,
		 t->st.fails);
	if (was != t->st.healthy) {
		t->st.changed_ms = now_ms;
		td_debug("health: %s is %s", t->key, t->st.healthy ? "UP" : "DOWN");
		if (h->cb)
			h->cb(h->cb_arg, t->key, t->st.healthy);
	}
}

static void td_hc_fail_errno(struct td_health *h, struct td_hc *t, int e, uint64_t now_ms)
{
	char why[TD_HC_ERR_LEN];

	switch (e) {
	case ECONNREFUSED: snprintf(why, sizeof(why), "connection refused"); break;
	case ECONNRESET:
	case EPIPE: snprintf(why, sizeof(why), "connection reset"); break;
	case ETIMEDOUT: snprintf(why, sizeof(why), "timeout"); break;
	default: snprintf(why, sizeof(why), "%s", strerror(e)); break;
	}
	td_hc_finish(h, t, false, why, now_ms);
}

/* The check could not even start for a local reason: no verdict on the backend. */
static void td_hc_local_error(struct td_health *h, struct td_hc *t, int e)
{
	td_hc_close(h, t);
	t->st.local_errors++;
	snprintf(t->st.last_error, sizeof(t->st.last_error), "local error: %s", strerror(e));
	td_debug("health: %s: check not started: %s", t->key, strerror(e));
}

static bool td_hc_errno_is_local(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM || e == EADDRNOTAVAIL ||
	       e == EAGAIN || e == ENOSPC;
}

/* Parse "HTTP/d.d NNN" + (SP|CR|LF) at the start of buf; the status code or -1. */
static int td_hc_status_code(const char *b, size_t len)
{
	if (len < 13 || memcmp(b, "HTTP/", 5) || b[5] < '0' || b[5] > '9' || b[6] != '.' ||
	    b[7] < '0' || b[7] > '9' || b[8] != ' ')
		return -1;
	for (int i = 9; i < 12; i++)
		if (b[i] < '0' || b[i] > '9')
			return -1;
	if (b[12] != ' ' && b[12] != '\r' && b[12] != '\n')
		return -1;
	if (b[9] < '1' || b[9] > '5')
		return -1;
	return (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
}

static void td_hc_http_verdict(struct td_health *h, struct td_hc *t, uint64_t now_ms)
{
	char why[TD_HC_ERR_LEN];
	int code = td_hc_status_code(t->rbuf, t->rlen);

	if (code < 0) {
		td_hc_finish(h, t, false, "invalid HTTP status line", now_ms);
	} else if (code >= 200 && code < 400) {
		td_hc_finish(h, t, true, NULL, now_ms);
	} else {
		snprintf(why, sizeof(why), "HTTP %d", code);
		td_hc_finish(h, t, false, why, now_ms);
	}
}

static void td_hc_read(struct td_health *h, struct td_hc *t, uint64_t now_ms)
{
	for (;;) {
		size_t room = sizeof(t->rbuf) - 1 - t->rlen;
		ssize_t r;

		if (!room) {
			td_hc_finish(h, t, false, "invalid HTTP status line", now_ms);
			return;
		}
		r = recv(t->fd, t->rbuf + t->rlen, room, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			td_hc_fail_errno(h, t, errno, now_ms);
			return;
		}
		if (r == 0) {
			td_hc_finish(h, t, false,
				     t->rlen ? "connection closed in the status line"
					     : "connection closed without a response", now_ms);
			return;
		}
		t->rlen += (size_t)r;
		t->rbuf[t->rlen] = '\0';
		/* garbage is garbage from its first bytes: do not wait for a timeout */
		if (memcmp(t->rbuf, "HTTP/", t->rlen < 5 ? t->rlen : 5)) {
			td_hc_finish(h, t, false, "invalid HTTP status line", now_ms);
			return;
		}
		if (memchr(t->rbuf, '\n', t->rlen)) {
			td_hc_http_verdict(h, t, now_ms);
			return;
		}
	}
}

static void td_hc_send(struct td_health *h, struct td_hc *t, uint64_t now_ms)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = t };

	while (t->sent < t->req_len) {
		ssize_t w = send(t->fd, t->req + t->sent, t->req_len - t->sent,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;     /* still registered for EPOLLOUT */
			td_hc_fail_errno(h, t, errno, now_ms);
			return;
		}
		t->sent += (size_t)w;
	}
	t->phase = TD_HC_READING;
	if (epoll_ctl(h->efd, EPOLL_CTL_MOD, t->fd, &ev)) {
		td_hc_local_error(h, t, errno);
		return;
	}
	/* the answer may be there already (edge: no further event would tell us) */
	td_hc_read(h, t, now_ms);
}

/* The non-blocking connect completed (or failed): SO_ERROR tells which. */
static void td_hc_connected(struct td_health *h, struct td_hc *t, uint64_t now_ms)
{
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
		soerr = errno;
	if (soerr) {
		td_hc_fail_errno(h, t, soerr, now_ms);
		return;
	}
	if (t->type == TD_HC_TCP) {
		td_hc_finish(h, t, true, NULL, now_ms);
		return;
	}
	t->phase = TD_HC_SENDING;
	td_hc_send(h, t, now_ms);
}

static void td_hc_start(struct td_health *h, struct td_hc *t, uint64_t now_ms)
{
	struct sockaddr_storage ss;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = t };
	socklen_t slen;
	int one = 1;

	t->started_ms = now_ms;
	t->deadline_ms = now_ms + t->timeout_ms;
	t->next_ms = now_ms + t->interval_ms;
	t->sent = 0;
	t->rlen = 0;

	slen = td_sockaddr_from(&t->addr, t->family, t->port, &ss);
	t->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (t->fd < 0) {
		td_hc_local_error(h, t, errno);
		return;
	}
	/* RST on close: no TIME_WAIT per check; a probe needs no graceful shutdown */
	setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t->phase = TD_HC_CONNECTING;
	if (connect(t->fd, (struct sockaddr *)&ss, slen) == 0) {
		if (t->type == TD_HC_HTTP) {
			ev.events = EPOLLOUT;
			if (epoll_ctl(h->efd, EPOLL_CTL_ADD, t->fd, &ev)) {
				td_hc_local_error(h, t, errno);
				return;
			}
		}
		td_hc_connected(h, t, now_ms);
		return;
	}
	if (errno != EINPROGRESS) {
		if (td_hc_errno_is_local(errno))
			td_hc_local_error(h, t, errno);
		else
			td_hc_fail_errno(h, t, errno, now_ms);
		return;
	}
	if (epoll_ctl(h->efd, EPOLL_CTL_ADD, t->fd, &ev))
		td_hc_local_error(h, t, errno);
}

static void td_hc_event(struct td_health *h, struct td_hc *t, uint32_t events, uint64_t now_ms)
{
	if (t->fd < 0)
		return;
	switch (t->phase) {
	case TD_HC_CONNECTING:
		td_hc_connected(h, t, now_ms);
		break;
	case TD_HC_SENDING:
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			td_hc_send(h, t, now_ms);
		break;
	case TD_HC_READING:
		td_hc_read(h, t, now_ms);
		break;
	default:
		break;
	}
}

int td_health_process(struct td_health *h, uint64_t now_ms)
{
	struct epoll_event ev[TD_HC_EVENTS];
	int n, err = 0;

	if (!h)
		return -EINVAL;
	if (h->busy)
		return -EBUSY;
	h->busy = true;
	h->now_ms = now_ms;
	/* results first, so an answer that arrived just before its deadline counts */
	for (int round = 0; round < TD_HC_ROUNDS; round++) {
		n = epoll_wait(h->efd, ev, TD_HC_EVENTS, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto cleanup;
		}
		for (int i = 0; i < n; i++)
			td_hc_event(h, ev[i].data.ptr, ev[i].events, now_ms);
		if (n < TD_HC_EVENTS)
			break;
	}
	for (size_t i = 0; i < h->n; i++) {
		struct td_hc *t = h->t[i];

		if (t->fd >= 0 && now_ms >= t->deadline_ms)
			td_hc_finish(h, t, false,
				     t->phase == TD_HC_CONNECTING ? "connect timeout"
								  : "timeout waiting for the response",
				     now_ms);
		if (t->fd < 0 && now_ms >= t->next_ms)
			td_hc_start(h, t, now_ms);
	}
cleanup:
	h->busy = false;
	return err;
}

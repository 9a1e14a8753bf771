/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for the health checker against real TCP/HTTP servers on 127.0.0.1 and ::1 in threads. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <CUnit/CUnit.h>

#include "addr.h"
#include "health.h"
#include "unit.h"

int td_suite_health(void);

/* ---- test server ----------------------------------------------------------------------------
 * One thread, one poll loop, any number of connections. Reads a request up to the blank line,
 * checks it is exactly what td-health must send, then acts on the path:
 *   /status/NNN  reply NNN            /slow/MS   reply 200 after MS ms
 *   /garbage     non-HTTP line        /trunc     "HTTP/1.1 20" then close
 *   /close       close, no reply      /reset     RST, no reply
 *   /silent      never reply          other      reply srv.status (changeable at run time)
 * A TCP check (connect, then RST) is just a connection that goes away.
 */
#define SRV_MAX_CONNS 1024
#define SRV_BUF       1024

struct srv_conn {
	int fd;
	bool handled;             /* request seen and acted on */
	size_t len;
	uint64_t reply_at;        /* pending delayed 200, 0 = none */
	char buf[SRV_BUF];
};

struct srv {
	int lfd;
	__u8 family;
	__u16 port;
	char host[64];            /* expected Host header */
	pthread_t th;
	bool running;
	atomic_bool stop;
	atomic_int status;
	atomic_int accepted, requests, bad_requests, cur_conns, max_conns;
	pthread_mutex_t lock;
	char bad[256];            /* first malformed request, for the failure message */
	size_t nconns;
	struct srv_conn conns[SRV_MAX_CONNS];
};

static void srv_close_conn(struct srv *s, struct srv_conn *c, bool rst)
{
	if (rst) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c->fd);
	c->fd = -1;
	atomic_fetch_sub(&s->cur_conns, 1);
}

static void srv_reply(struct srv *s, struct srv_conn *c, int code)
{
	char out[128];
	int n = snprintf(out, sizeof(out),
			 "HTTP/1.1 %d Test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", code);

	(void)!send(c->fd, out, (size_t)n, MSG_NOSIGNAL);   /* the client may be gone */
	srv_close_conn(s, c, false);
}

static void srv_send_close(struct srv *s, struct srv_conn *c, const char *bytes)
{
	(void)!send(c->fd, bytes, strlen(bytes), MSG_NOSIGNAL);
	srv_close_conn(s, c, false);
}

static void srv_request(struct srv *s, struct srv_conn *c, uint64_t now)
{
	char path[256], want[512];
	const char *sp;
	size_t plen;

	c->handled = true;
	sp = memchr(c->buf + 4, ' ', c->len - 4);
	plen = sp ? (size_t)(sp - (c->buf + 4)) : 0;
	if (strncmp(c->buf, "GET /", 5) || !sp || plen >= sizeof(path))
		goto bad;
	memcpy(path, c->buf + 4, plen);
	path[plen] = '\0';
	snprintf(want, sizeof(want),
		 "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: td-health\r\n\r\n",
		 path, s->host);
	if (c->len != strlen(want) || memcmp(c->buf, want, c->len))
		goto bad;
	atomic_fetch_add(&s->requests, 1);

	if (!strncmp(path, "/status/", 8))
		srv_reply(s, c, atoi(path + 8));
	else if (!strncmp(path, "/slow/", 6))
		c->reply_at = now + (uint64_t)atoi(path + 6);
	else if (!strcmp(path, "/garbage"))
		srv_send_close(s, c, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
	else if (!strcmp(path, "/trunc"))
		srv_send_close(s, c, "HTTP/1.1 20");
	else if (!strcmp(path, "/close"))
		srv_close_conn(s, c, false);
	else if (!strcmp(path, "/reset"))
		srv_close_conn(s, c, true);
	else if (strcmp(path, "/silent"))
		srv_reply(s, c, atomic_load(&s->status));
	return;
bad:
	atomic_fetch_add(&s->bad_requests, 1);
	pthread_mutex_lock(&s->lock);
	if (!s->bad[0])
		snprintf(s->bad, sizeof(s->bad), "%.*s", (int)c->len, c->buf);
	pthread_mutex_unlock(&s->lock);
	srv_close_conn(s, c, false);
}

static void srv_read(struct srv *s, struct srv_conn *c, uint64_t now)
{
	ssize_t r;

	if (c->len >= SRV_BUF - 1) {
		srv_close_conn(s, c, false);
		return;
	}
	r = recv(c->fd, c->buf + c->len, SRV_BUF - 1 - c->len, MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {              /* the checker closed (RST after a TCP check, or timeout) */
		srv_close_conn(s, c, false);
		return;
	}
	c->len += (size_t)r;
	c->buf[c->len] = '\0';
	if (!c->handled && strstr(c->buf, "\r\n\r\n"))
		srv_request(s, c, now);
}

static void srv_accept(struct srv *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), cur;
		struct srv_conn *c;

		if (fd < 0)
			return;
		atomic_fetch_add(&s->accepted, 1);
		if (s->nconns == SRV_MAX_CONNS) {
			close(fd);
			continue;
		}
		c = &s->conns[s->nconns++];
		memset(c, 0, sizeof(*c) - sizeof(c->buf));
		c->fd = fd;
		cur = atomic_fetch_add(&s->cur_conns, 1) + 1;
		if (cur > atomic_load(&s->max_conns))
			atomic_store(&s->max_conns, cur);
	}
}

static void *srv_main(void *arg)
{
	static __thread struct pollfd pfd[SRV_MAX_CONNS + 1];
	struct srv *s = arg;

	while (!atomic_load(&s->stop)) {
		size_t n = s->nconns, k = 0;
		uint64_t now;

		pfd[0] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
		for (size_t i = 0; i < n; i++)
			pfd[i + 1] = (struct pollfd){ .fd = s->conns[i].fd, .events = POLLIN };
		if (poll(pfd, n + 1, 2) < 0 && errno != EINTR)
			break;
		now = td_health_now_ms();
		for (size_t i = 0; i < n; i++)
			if (pfd[i + 1].revents && s->conns[i].fd >= 0)
				srv_read(s, &s->conns[i], now);
		for (size_t i = 0; i < n; i++) {
			struct srv_conn *c = &s->conns[i];

			if (c->fd >= 0 && c->reply_at && now >= c->reply_at) {
				c->reply_at = 0;
				srv_reply(s, c, 200);
			}
		}
		/* drop closed connections (order does not matter) */
		for (size_t i = 0; i < n; i++) {
			if (s->conns[i].fd < 0)
				continue;
			if (k != i)
				memcpy(&s->conns[k], &s->conns[i], sizeof(s->conns[i]));
			k++;
		}
		s->nconns = k;
		if (pfd[0].revents & POLLIN)
			srv_accept(s);
	}
	return NULL;
}

/* Loopback socket of family with an ephemeral port: listening when listen_backlog >= 0. */
static int lo_socket(__u8 family, int listen_backlog, __u16 *port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int fd, one = 1;

	if (family == TD_AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		sl = sizeof(*a);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (family == TD_AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) ||
	    (listen_backlog >= 0 && listen(fd, listen_backlog)) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		close(fd);
		return -1;
	}
	*port = ntohs(family == TD_AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					   : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static struct srv *srv_start(__u8 family, int status)
{
	struct srv *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	atomic_store(&s->status, status);
	s->family = family;
	s->lfd = lo_socket(family, 1024, &s->port);
	if (s->lfd < 0)
		goto fail;
	snprintf(s->host, sizeof(s->host), family == TD_AF_INET ? "127.0.0.1:%u" : "[::1]:%u",
		 s->port);
	if (pthread_create(&s->th, NULL, srv_main, s))
		goto fail;
	s->running = true;
	return s;
fail:
	if (s->lfd >= 0)
		close(s->lfd);
	free(s);
	return NULL;
}

static void srv_stop(struct srv *s)
{
	if (!s)
		return;
	if (atomic_load(&s->bad_requests))
		printf("\n    server got a malformed request: '%s'", s->bad);
	atomic_store(&s->stop, true);
	if (s->running)
		pthread_join(s->th, NULL);
	for (size_t i = 0; i < s->nconns; i++)
		close(s->conns[i].fd);
	close(s->lfd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- driver ---------------------------------------------------------------------------------- */

#define LOG_MAX 2048

struct ev_log {
	size_t n;
	uint64_t t0;
	struct {
		char key[TD_HC_KEYSTRLEN];
		bool healthy;
		uint64_t at;          /* ms after t0 */
	} e[LOG_MAX];
	/* for the re-entrancy test */
	struct td_health *h;
	int reenter_rc;
};

static void log_cb(void *arg, const char *key, bool healthy)
{
	struct ev_log *l = arg;

	if (l->h)
		l->reenter_rc = td_health_set(l->h, NULL, 0);
	if (l->n == LOG_MAX)
		return;
	snprintf(l->e[l->n].key, sizeof(l->e[l->n].key), "%s", key);
	l->e[l->n].healthy = healthy;
	l->e[l->n].at = td_health_now_ms() - l->t0;
	l->n++;
}

static size_t log_count(const struct ev_log *l, const char *key)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++)
		if (!key || !strcmp(l->e[i].key, key))
			n++;
	return n;
}

/* index of the k-th event of key, or -1 */
static long log_find(const struct ev_log *l, const char *key, size_t k)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->e[i].key, key) && !k--)
			return (long)i;
	return -1;
}

/*
 * Run the checker the way the agent will: poll its fd until its next deadline, then process.
 * Stops after max_ms or once the log holds want events. Returns the elapsed ms.
 */
static uint64_t drive(struct td_health *h, struct ev_log *l, size_t want, uint64_t max_ms)
{
	uint64_t start = td_health_now_ms(), now = start;
	struct pollfd pfd = { .fd = td_health_fd(h), .events = POLLIN };

	while (now - start < max_ms && (!l || l->n < want)) {
		uint64_t dl, wait;
		int rc = td_health_process(h, now);

		CU_ASSERT_EQUAL(rc, 0);
		if (rc || (l && l->n >= want))
			break;
		dl = td_health_next_deadline_ms(h);
		wait = dl <= now ? 0 : dl - now;
		if (wait > max_ms - (now - start))
			wait = max_ms - (now - start);
		poll(&pfd, 1, (int)wait);
		now = td_health_now_ms();
	}
	return now - start;
}

static struct td_hc_target tgt(const char *key, __u8 family, __u16 port, __u8 type,
			       const char *path, __u32 interval, __u32 timeout, __u32 rise,
			       __u32 fall, bool initially_down)
{
	struct td_hc_target t = {
		.key = key, .family = family, .type = type, .port = port, .path = path,
		.interval_ms = interval, .timeout_ms = timeout, .rise = rise, .fall = fall,
		.initially_down = initially_down,
	};
	__u8 f;

	td_addr_parse(family == TD_AF_INET ? "127.0.0.1" : "::1", &t.addr, &f);
	return t;
}

static struct ev_log *log_new(void)
{
	struct ev_log *l = calloc(1, sizeof(*l));

	if (l)
		l->t0 = td_health_now_ms();
	return l;
}

static void print_log(const struct ev_log *l)
{
	for (size_t i = 0; i < l->n; i++)
		printf("\n      +%llums %s %s", (unsigned long long)l->e[i].at, l->e[i].key,
		       l->e[i].healthy ? "UP" : "DOWN");
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_tcp_up(void)
{
	struct srv *s4 = srv_start(TD_AF_INET, 200), *s6 = srv_start(TD_AF_INET6, 200);
	struct ev_log *l = log_new();
	struct td_health *h = td_health_new(log_cb, l);
	struct td_hc_target t[3];
	struct td_hc_status st;
	long i4, i6;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s6);
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	t[0] = tgt("up4", TD_AF_INET, s4->port, TD_HC_TCP, NULL, 50, 40, 2, 2, false);
	t[1] = tgt("new4", TD_AF_INET, s4->port, TD_HC_TCP, NULL, 50, 40, 2, 2, true);
	t[2] = tgt("new6", TD_AF_INET6, s6->port, TD_HC_TCP, NULL, 50, 40, 2, 2, true);
	CU_ASSERT_EQUAL_FATAL(td_health_set(h, t, 3), 0);
	CU_ASSERT_EQUAL(td_health_count(h), 3);
	CU_ASSERT_EQUAL(td_health_get(h, "new4", &st), 0);
	CU_ASSERT_FALSE(st.healthy);
	CU_ASSERT_EQUAL(td_health_next_deadline_ms(h), 0);   /* new targets are due at once */

	l->t0 = td_health_now_ms();
	drive(h, l, 2, 1000);
	drive(h, NULL, 0, 120);                              /* a few more rounds */
	i4 = log_find(l, "new4", 0);
	i6 = log_find(l, "new6", 0);
	CU_ASSERT(i4 >= 0 && l->e[i4].healthy);
	CU_ASSERT(i6 >= 0 && l->e[i6].healthy);
	/* rise 2: the first check at once, the second one interval later */
	if (i4 >= 0)
		CU_ASSERT(l->e[i4].at >= 40 && l->e[i4].at <= 300);
	CU_ASSERT_EQUAL(log_count(l, "up4"), 0);             /* initial state: no callback */
	CU_ASSERT_EQUAL(log_count(l, NULL), 2);

	CU_ASSERT_EQUAL(td_health_get(h, "up4", &st), 0);
	CU_ASSERT_TRUE(st.healthy);
	CU_ASSERT(st.checks >= 3);
	CU_ASSERT_EQUAL(st.failures, 0);
	CU_ASSERT_EQUAL(st.fails, 0);
	CU_ASSERT(st.passes >= 3);
	CU_ASSERT_TRUE(st.last_ok);
	CU_ASSERT_STRING_EQUAL(st.last_error, "");
	CU_ASSERT_EQUAL(td_health_get(h, "new6", &st), 0);
	CU_ASSERT_TRUE(st.healthy);
	CU_ASSERT(atomic_load(&s6->accepted) >= 2);
	CU_ASSERT_EQUAL(td_health_get(h, "nope", &st), -ENOENT);
	if (log_count(l, NULL) != 2)
		print_log(l);

	td_health_free(h);
	srv_stop(s4);
	srv_stop(s6);
	free(l);
}

static void test_tcp_refused(void)
{
	struct ev_log *l = log_new();
	struct td_health *h = td_health_new(log_cb, l);
	struct td_hc_target t[2];
	struct td_hc_status st;
	__u16 p4, p6;
	/* bound but not listening: the port stays ours and every connect is refused */
	int f4 = lo_socket(TD_AF_INET, -1, &p4), f6 = lo_socket(TD_AF_INET6, -1, &p6);
	long i;

	CU_ASSERT_FATAL(f4 >= 0 && f6 >= 0 && l && h);
	t[0] = tgt("r4", TD_AF_INET, p4, TD_HC_TCP, NULL, 50, 40, 2, 3, false);
	t[1] = tgt("r6", TD_AF_INET6, p6, TD_HC_HTTP, "/healthz", 50, 40, 2, 3, false);
	CU_ASSERT_EQUAL_FATAL(td_health_set(h, t, 2), 0);
	l->t0 = td_health_now_ms();
	drive(h, l, 2, 1000);
	drive(h, NULL, 0, 100);
	CU_ASSERT_EQUAL(log_count(l, NULL), 2);
	for (int k = 0; k < 2; k++) {
		i = log_find(l, t[k].key, 0);
		CU_ASSERT(i >= 0);
		if (i < 0)
			continue;
		CU_ASSERT_FALSE(l->e[i].healthy);
		/* fall 3: checks at 0, 50, 100 ms; not earlier, and not much later */
		CU_ASSERT(l->e[i].at >= 90 && l->e[i].at <= 400);
		CU_ASSERT_EQUAL(td_health_get(h, t[k].key, &st), 0);
		CU_ASSERT_FALSE(st.healthy);
		CU_ASSERT(st.fails >= 3);
		CU_ASSERT_EQUAL(st.passes, 0);
		CU_ASSERT_FALSE(st.last_ok);
		CU_ASSERT_STRING_EQUAL(st.last_error, "connection refused");
	}
	if (log_count(l, NULL) != 2)
		print_log(l);
	td_health_free(h);
	close(f4);
	close(f6);
	free(l);
}

struct code_case {
	const char *path;
	bool pass;
	const char *why;
};

static void test_http_codes(void)
{
	static const struct code_case cases[] = {
		{ "/status/200", true, "" },   { "/status/204", true, "" },
		{ "/status/301", true, "" },   { "/status/302", true, "" },
		{ "/status/399", true, "" },   { "/status/101", false, "HTTP 101" },
		{ "/status/404", false, "HTTP 404" }, { "/status/500", false, "HTTP 500" },
		{ "/status/503", false, "HTTP 503" }, { "/status/999", false, "invalid HTTP status line" },
	};
	enum { N = sizeof(cases) / sizeof(cases[0]) };
	struct srv *s4 = srv_start(TD_AF_INET, 200), *s6 = srv_start(TD_AF_INET6, 200);
	struct ev_log *l = log_new();
	struct td_health *h = td_health_new(log_cb, l);
	struct td_hc_target t[2 * N];
	char keys[2 * N][32];

	CU_ASSERT_FATAL(s4 && s6 && l && h);
	for (size_t i = 0; i < 2 * N; i++) {
		bool v6 = i >= N;
		const struct code_case *c = &cases[i % N];

		snprintf(keys[i], sizeof(keys[i]), "%s%s", v6 ? "6" : "4", c->path);
		/* passes must go up (start down, rise 2), failures must go down (fall 2) */
		t[i] = tgt(keys[i], v6 ? TD_AF_INET6 : TD_AF_INET, v6 ? s6->port : s4->port,
			   TD_HC_HTTP, c->path, 50, 40, 2, 2, c->pass);
	}
	CU_ASSERT_EQUAL_FATAL(td_health_set(h, t, 2 * N), 0);
	l->t0 = td_health_now_ms();
	drive(h, l, 2 * N, 1000);
	drive(h, NULL, 0, 60);
	CU_ASSERT_EQUAL(log_count(l, NULL), 2 * N);
	for (size_t i = 0; i < 2 * N; i++) {
		const struct code_case *c = &cases[i % N];
		struct td_hc_status st;
		long k = log_find(l, keys[i], 0);

		CU_ASSERT_EQUAL(td_health_get(h, keys[i], &st), 0);
		if (k < 0 || l->e[k].healthy != c->pass || st.healthy != c->pass ||
		    strcmp(st.last_error, c->why))
			printf("\n    %s: event %ld, healthy %d, last_error '%s' (want %d '%s')",
			       keys[i], k, st.healthy, st.last_error, c->pass, c->why);
		CU_ASSERT(k >= 0 && l->e[k].healthy == c->pass);
		CU_ASSERT_EQUAL(st.healthy, c->pass);
		CU_ASSERT_STRING_EQUAL(st.last_error, c->why);
		CU_ASSERT_EQUAL(log_count(l, keys[i]), 1);
	}
	CU_ASSERT(atomic_load(&s4->requests) >= 2 * N);
	CU_ASSERT_EQUAL(atomic_load(&s4->bad_requests), 0);
	CU_ASSERT_EQUAL(atomic_load(&s6->bad_requests), 0);
	td_health_free(h);
	srv_stop(s4);
	srv_stop(s6);
	free(l);
}

/* Every way a reply can be broken: each must fail with its own reason. */
static void test_http_broken(void)
{
	static const struct code_case cases[] = {
		{ "/silent", false, "timeout waiting for the response" },
		{ "/garbage", false, "invalid HTTP status line" },
		{ "/trunc", false, "connection closed in the status line" },
		{ "/close", false, "connection closed without a response" },
		{ "/reset", false, "connection reset" },
	};
	enum { N = sizeof(cases) / sizeof(cases[0]) };
	struct srv *s = srv_start(TD_AF_INET, 200);
	struct ev_log *l = log_new();
	struct td_health *h = td_health_new(log_cb, l);
	struct td_hc_target t[N];

	CU_ASSERT_FATAL(s && l && h);
	for (size_t i = 0; i < N; i++)
		t[i] = tgt(cases[i].path, TD_AF_INET, s->port, TD_HC_HTTP, cases[i].path, 80, 40, 1,
			   2, false);
	CU_ASSERT_EQUAL_FATAL(td_health_set(h, t, N), 0);
	l->t0 = td_health_now_ms();
	drive(h, l, N, 1000);
	CU_ASSERT_EQUAL(log_count(l, NULL), N);
	for (size_t i = 0; i < N; i++) {
		struct td_hc_status st;
		long k = log_find(l, cases[i].path, 0);

		CU_ASSERT_EQUAL(td_health_get(h, cases[i].path, &st), 0);
		if (k < 0 || strcmp(st.last_error, cases[i].why))
			printf("\n    %s: event %ld, last_error '%s' (want '%s')", cases[i].path, k,
			       st.last_error, cases[i].why);
		CU_ASSERT(k >= 0 && !l->e[k].healthy);
		CU_ASSERT_FALSE(st.healthy);
		CU_ASSERT_STRING_EQUAL(st.last_error, cases[i].why);
	}
	CU_ASSERT_EQUAL(atomic_load(&s->bad_requests), 0);
	td_health_free(h);
	srv_stop(s);
	free(l);
}

/* A server that never answers: down by timeouts, and one target never has two checks open. */
static void test_timeout_no_overlap(void)
{
	struct srv *s = srv_start(TD_AF_INET6, 200);
	struct ev_log *l = log_new();
	struct td_health *h = td_health_new(log_cb, l);
	struct td_hc_target t;
	struct td_hc_status st;
	uint64_t ms;
	long k;

	CU_ASSERT_FATAL(s && l && h);
	t = tgt("silent", TD_AF_INET6, s->port, TD_HC_HTTP, "/silent", 60, 45, 2, 3, false);
	CU_ASSERT_EQUAL_FATAL(td_health_set(h, &t, 1), 0);
	l->t0 = td_health_now_ms();
	ms = drive(h, l, 1, 1000);
	drive(h, NULL, 0, 130);
	k = log_find(l, "silent", 0);
	CU_ASSERT(k >= 0 && !l->e[k].healthy);
	/* third timeout: 2 * 60 + 45 = 165 ms */
	CU_ASSERT(ms >= 150 && ms <= 500);
	CU_ASSERT_EQUAL(td_health_get(h, "silent", &st), 0);
	CU_ASSERT_STRING_EQUAL(st.last_error, "timeout waiting for the response");
	CU_ASSERT(st.last_ms >= 45 && st.last_ms < 100);
	CU_ASSERT(st.fails >= 4);
	CU_ASSERT(atomic_load(&s->accepted) >= 4);
	CU_ASSERT_EQUAL(atomic_load(&s->max_conns), 1);
	CU_ASSERT_EQUAL(log_count(l, NULL), 1);
	td_health_free(h);
	srv_stop(s);
	free(l);
}

/* SYNs to a listener whose accept queue is full are dropped: the connect itself times out. */
static void test_connect_timeout(void)
{
	struct ev_log *l = log_new();
	struct td_health *h = td_health_new(log_cb, l);
	struct td_hc_target t;
	struct td_hc_status st;
	__u16 port;
	int lfd = lo_socket(TD_AF_INET, 0, &port), fill[4];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	CU_ASSERT_FATAL(lfd >= 0 && l && h);
	for (int i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fill[i] >= 0 && connect(fill[i], (struct sockaddr *)&sa, sizeof(sa)) &&
		    errno != EINPROGRESS)
			CU_FAIL("filler connect");
	}
	usleep(20000);
	t = tgt("full", TD_AF_INET, port, TD_HC_TCP, NULL, 60, 30, 1, 2, false);
	CU_ASSERT_EQUAL_FATAL(td_health_set(h, &t, 1), 0);
	drive(h, l, 1, 1000);
	CU_ASSERT_EQUAL(log_count(l, "full"), 1);
	CU_ASSERT_EQUAL(td_health_get(h, "full", &st), 0);
	CU_ASSERT_FALSE(st.healthy);
	CU_ASSERT_STRING_EQUAL(st.last_error, "connect timeout");
	td_health_free(h);
	for (int i = 0; i < 4; i++)
		if (fill[i] >= 0)
			close(fill[i]);
	close(lfd);
	free(l);
}

/* 500 -> down after fall; switch the server to 200 -> up after rise passes. */
static void test_recovery(void)
{
	struct srv *s = srv_start(TD_AF_INET, 500);
	struct ev_log *l = log_new();
	struct td_health *h = td_health_new(log_cb, l);
	struct td_hc_target t;
	struct td_hc_status st;
	uint64_t switched, up_ms;
	long k;

	CU_ASSERT_FATAL(s && l && h);
	t = tgt("web", TD_AF_INET, s->port, TD_HC_HTTP, "/healthz", 50, 40, 3, 2, false);
	CU_ASSERT_EQUAL_FATAL(td_health_set(h, &t, 1), 0);
	l->t0 = td_health_now_ms();
	drive(h, l, 1, 1000);
	k = log_find(l, "web", 0);
	CU_ASSERT_FATAL(k == 0);
	CU_ASSERT_FALSE(l->e[0].healthy);
	CU_ASSERT_EQUAL(td_health_get(h, "web", &st), 0);
	CU_ASSERT_STRING_EQUAL(st.last_error, "HTTP 500");

	atomic_store(&s->status, 200);
	switched = td_health_now_ms() - l->t0;
	drive(h, l, 2, 1000);
	CU_ASSERT_EQUAL_FATAL(log_count(l, "web"), 2);
	CU_ASSERT_TRUE(l->e[1].healthy);
	/* rise 3: three passes, the first within one interval of the switch */
	up_ms = l->e[1].at - switched;
	CU_ASSERT(up_ms >= 95 && up_ms <= 300);
	CU_ASSERT_EQUAL(td_health_get(h, "web", &st), 0);
	CU_ASSERT_TRUE(st.healthy);
	CU_ASSERT_EQUAL(st.passes, 3);
	CU_ASSERT_STRING_EQUAL(st.last_error, "");
	/* stays up, no further callbacks */
	drive(h, NULL, 0, 120);
	CU_ASSERT_EQUAL(log_count(l, NULL), 2);
	CU_ASSERT_EQUAL(atomic_load(&s->bad_requests), 0);
	if (log_count(l, NULL) != 2)
		print_log(l);
	td_health_free(h);
	srv_stop(s);
	free(l);
}

/* td_health_set(): kept keys keep their state, others are added, dropped or reset. */
static void test_set_keeps_state(void)
{
	struct srv *s = srv_start(TD_AF_INET, 200);
	struct ev_log *l = log_new();
	struct td_health *h = td_health_new(log_cb, l);
	struct td_hc_target t[3], bad;
	struct td_hc_status a0, st;

	CU_ASSERT_FATAL(s && l && h);
	t[0] = tgt("a", TD_AF_INET, s->port, TD_HC_HTTP, "/status/500", 50, 40, 2, 1, false);
	t[1] = tgt("b", TD_AF_INET, s->port, TD_HC_HTTP, "/status/200", 50, 40, 2, 1, false);
	CU_ASSERT_EQUAL_FATAL(td_health_set(h, t, 2), 0);
	drive(h, l, 1, 1000);
	drive(h, NULL, 0, 80);
	CU_ASSERT_EQUAL(td_health_get(h, "a", &a0), 0);
	CU_ASSERT_FALSE(a0.healthy);
	CU_ASSERT(a0.checks >= 2);

	/* a unchanged (new interval and rise only), b dropped, c new */
	t[0].interval_ms = 60;
	t[0].rise = 5;
	t[2] = tgt("c", TD_AF_INET, s->port, TD_HC_TCP, NULL, 50, 40, 2, 2, false);
	memmove(&t[1], &t[2], sizeof(t[1]));
	CU_ASSERT_EQUAL_FATAL(td_health_set(h, t, 2), 0);
	CU_ASSERT_EQUAL(td_health_count(h), 2);
	CU_ASSERT_EQUAL(td_health_get(h, "b", &st), -ENOENT);
	CU_ASSERT_EQUAL(td_health_get(h, "a", &st), 0);
	CU_ASSERT_FALSE(st.healthy);
	CU_ASSERT(st.checks >= a0.checks);
	CU_ASSERT(st.fails >= a0.fails);
	CU_ASSERT_EQUAL(td_health_get(h, "c", &st), 0);
	CU_ASSERT_TRUE(st.healthy);
	CU_ASSERT_EQUAL(st.checks, 0);
	drive(h, NULL, 0, 130);
	CU_ASSERT_EQUAL(td_health_get(h, "a", &st), 0);
	CU_ASSERT_FALSE(st.healthy);
	CU_ASSERT(st.fails > a0.fails);
	CU_ASSERT_EQUAL(log_count(l, NULL), 1);              /* only a's first DOWN */

	/* rejected sets change nothing: duplicate key, then invalid targets */
	t[1] = t[0];
	CU_ASSERT_EQUAL(td_health_set(h, t, 2), -EINVAL);
	CU_ASSERT_EQUAL(td_health_count(h), 2);
	CU_ASSERT_EQUAL(td_health_get(h, "c", &st), 0);
	{
		struct td_hc_target b0 = tgt("x", TD_AF_INET, s->port, TD_HC_HTTP, "/", 50, 40, 1, 1,
					     false);

		for (int i = 0; i < 13; i++) {
			int rc;

			bad = b0;
			switch (i) {
			case 0: bad.timeout_ms = 51; break;          /* > interval */
			case 1: bad.timeout_ms = 0; break;
			case 2: bad.path = "healthz"; break;
			case 3: bad.path = "/a b"; break;
			case 4: bad.path = "/a\r\nX: y"; break;     /* header injection */
			case 5: bad.type = TD_HC_TCP; break;         /* tcp with a path */
			case 6: bad.type = TD_HC_NONE; break;
			case 7: bad.port = 0; break;
			case 8: bad.family = 5; break;
			case 9: bad.key = ""; break;
			case 10: bad.key = NULL; break;
			case 11: bad.rise = 0; break;
			default: bad.fall = 0; break;
			}
			rc = td_health_set(h, &bad, 1);
			if (rc != -EINVAL)
				printf("\n    bad target %d accepted (%d)", i, rc);
			CU_ASSERT_EQUAL(rc, -EINVAL);
			CU_ASSERT_EQUAL(td_health_count(h), 2);
		}
		CU_ASSERT_EQUAL(td_health_set(h, &b0, 1), 0);   /* the base is fine */
		CU_ASSERT_EQUAL(td_health_count(h), 1);
		CU_ASSERT_EQUAL(td_health_set(h, t, 1), 0);     /* a is new again now */
		CU_ASSERT_EQUAL(td_health_get(h, "a", &st), 0);
		CU_ASSERT_TRUE(st.healthy);
		CU_ASSERT_EQUAL(st.checks, 0);
	}

	/* same key, another probe: starts over in its initial state */
	drive(h, l, 2, 1000);
	CU_ASSERT_EQUAL(td_health_get(h, "a", &st), 0);
	CU_ASSERT_FALSE(st.healthy);
	t[0].path = "/status/204";
	t[0].initially_down = true;
	CU_ASSERT_EQUAL(td_health_set(h, t, 1), 0);
	CU_ASSERT_EQUAL(td_health_get(h, "a", &st), 0);
	CU_ASSERT_FALSE(st.healthy);
	CU_ASSERT_EQUAL(st.checks, 0);
	CU_ASSERT_EQUAL(st.fails, 0);
	CU_ASSERT_FALSE(st.in_flight);
	drive(h, l, 3, 1000);                                /* rise 5 at 60 ms */
	CU_ASSERT_EQUAL(td_health_get(h, "a", &st), 0);
	CU_ASSERT_TRUE(st.healthy);
	CU_ASSERT_EQUAL(st.passes, 5);

	/* on_change must not reconfigure: -EBUSY, and the set is intact */
	t[0].path = "/status/500";
	t[0].initially_down = false;
	t[0].fall = 1;
	CU_ASSERT_EQUAL(td_health_set(h, t, 1), 0);
	l->h = h;
	l->reenter_rc = 1;
	drive(h, l, 4, 1000);
	CU_ASSERT_EQUAL(l->reenter_rc, -EBUSY);
	CU_ASSERT_EQUAL(td_health_count(h), 1);
	CU_ASSERT_EQUAL(td_health_process(h, td_health_now_ms()), 0);

	CU_ASSERT_EQUAL(td_health_set(h, NULL, 0), 0);
	CU_ASSERT_EQUAL(td_health_count(h), 0);
	CU_ASSERT_EQUAL(td_health_next_deadline_ms(h), UINT64_MAX);
	td_health_free(h);
	srv_stop(s);
	free(l);
}

/* 400 targets at once (200 slow passes, 200 silent): all settle within interval + timeout. */
static void test_concurrent(void)
{
	enum { N = 200 };
	struct srv *s = srv_start(TD_AF_INET, 200);
	struct ev_log *l = log_new();
	struct td_health *h = td_health_new(log_cb, l);
	struct td_hc_target *t = calloc(2 * N, sizeof(*t));
	char (*keys)[16] = calloc(2 * N, sizeof(*keys));
	size_t up = 0, down = 0;
	uint64_t ms;

	CU_ASSERT_FATAL(s && l && h && t && keys);
	for (size_t i = 0; i < 2 * N; i++) {
		bool slow = i < N;

		snprintf(keys[i], sizeof(keys[i]), "%s%zu", slow ? "slow" : "silent", i);
		/* one at a time this would take 200 * 40 ms + 200 * 150 ms = 38 s */
		t[i] = tgt(keys[i], TD_AF_INET, s->port, TD_HC_HTTP, slow ? "/slow/40" : "/silent",
			   300, 150, 1, 1, slow);
	}
	CU_ASSERT_EQUAL_FATAL(td_health_set(h, t, 2 * N), 0);
	l->t0 = td_health_now_ms();
	ms = drive(h, l, 2 * N, 2000);
	for (size_t i = 0; i < l->n; i++) {
		if (l->e[i].healthy)
			up += !strncmp(l->e[i].key, "slow", 4);
		else
			down += !strncmp(l->e[i].key, "silent", 6);
	}
	printf(" (%zu up, %zu down in %llu ms, %d connections at once) ", up, down,
	       (unsigned long long)ms, atomic_load(&s->max_conns));
	CU_ASSERT_EQUAL(up, N);
	CU_ASSERT_EQUAL(down, N);
	CU_ASSERT(ms <= 300 + 150 + 50);
	CU_ASSERT(atomic_load(&s->max_conns) >= N);
	CU_ASSERT_EQUAL(atomic_load(&s->bad_requests), 0);
	td_health_free(h);
	srv_stop(s);
	free(keys);
	free(t);
	free(l);
}

static void test_key_format(void)
{
	char buf[TD_HC_KEYSTRLEN];
	union td_addr a;
	__u8 f;

	CU_ASSERT_EQUAL_FATAL(td_addr_parse("10.0.1.11", &a, &f), 0);
	CU_ASSERT_STRING_EQUAL(td_health_key_format(buf, sizeof(buf), "web", &a, f, 8080),
			       "web/10.0.1.11:8080");
	CU_ASSERT_EQUAL_FATAL(td_addr_parse("fd00::1", &a, &f), 0);
	CU_ASSERT_STRING_EQUAL(td_health_key_format(buf, sizeof(buf), "dns6", &a, f, 53),
			       "dns6/[fd00::1]:53");
	CU_ASSERT_STRING_EQUAL(td_hc_type_name(TD_HC_HTTP), "http");
	CU_ASSERT_STRING_EQUAL(td_hc_type_name(TD_HC_TCP), "tcp");
	CU_ASSERT_EQUAL(td_health_process(NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(td_health_set(NULL, NULL, 0), -EINVAL);
	td_health_free(NULL);
}

int td_suite_health(void)
{
	CU_pSuite s = CU_add_suite("health", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "key format and NULL arguments", test_key_format) ||
	    !CU_add_test(s, "tcp up (v4, v6), initial states", test_tcp_up) ||
	    !CU_add_test(s, "tcp and http refused -> down after fall", test_tcp_refused) ||
	    !CU_add_test(s, "http status codes (v4, v6)", test_http_codes) ||
	    !CU_add_test(s, "http garbage, truncated, close, reset, silent", test_http_broken) ||
	    !CU_add_test(s, "timeout -> down, checks never overlap", test_timeout_no_overlap) ||
	    !CU_add_test(s, "connect timeout (full accept queue)", test_connect_timeout) ||
	    !CU_add_test(s, "recovery after rise passes", test_recovery) ||
	    !CU_add_test(s, "set keeps state, resets, rejects", test_set_keeps_state) ||
	    !CU_add_test(s, "400 concurrent targets", test_concurrent))
		return CU_get_error();
	return 0;
}

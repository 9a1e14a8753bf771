/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* td_mesh_ctl bench-server/bench-rr/bench-bulk: request/response latency and bulk throughput probes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "addr.h"
#include "bench_mesh.h"

/*
 * Protocol: the client's first byte picks the mode. 'e' (echo): the server sends back every
 * byte it reads (request/response). 's' (sink): the server reads and discards as fast as it
 * can; at the client's half-close it answers the byte count (8 bytes, host order) and closes.
 * Every socket is non-blocking and every read retries EAGAIN (poll/epoll, then recv), so the
 * probes meet the sockmap opt-in contract of docs/mesh.md: no MSG_WAITALL, splice or
 * SO_RCVLOWAT, readers that keep reading.
 */
#define TD_BM_BUF        (256 * 1024)
#define TD_BM_MAX_WRITE  (1024 * 1024)
#define TD_BM_IO_TIMEOUT 5000 /* ms without progress before a probe gives up */
#define TD_BM_ECHO       'e'
#define TD_BM_SINK       's'

/* one accepted connection of bench-server */
struct td_bm_conn {
	int fd;
	char mode;     /* 0 until the first byte, then TD_BM_ECHO or TD_BM_SINK */
	__u64 total;   /* sink: payload bytes read */
};

static __u64 td_bm_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

static int td_bm_sockaddr(const char *host, const char *port, struct sockaddr_storage *ss,
			  socklen_t *sl)
{
	unsigned long p = strtoul(port, NULL, 10);
	union td_addr a;
	__u8 fam;

	if (td_addr_parse(host, &a, &fam) || p == 0 || p > 65535)
		return -EINVAL;
	*sl = td_sockaddr_from(&a, fam, (__u16)p, ss);
	return 0;
}

/* wait for EVENTS on FD: 0, or -ETIMEDOUT / -errno */
static int td_bm_wait(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	do {
		r = poll(&p, 1, TD_BM_IO_TIMEOUT);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r ? 0 : -ETIMEDOUT;
}

/* write all LEN bytes on a non-blocking socket */
static int td_bm_send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			int err;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			err = td_bm_wait(fd, POLLOUT);
			if (err)
				return err;
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* read exactly LEN bytes on a non-blocking socket: poll, then recv, EAGAIN retried */
static int td_bm_recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n;
		int err;

		err = td_bm_wait(fd, POLLIN);
		if (err)
			return err;
		n = recv(fd, p, len, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* a connected non-blocking client socket, or -errno */
static int td_bm_connect(const char *host, const char *port, int nodelay)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, err;

	err = td_bm_sockaddr(host, port, &ss, &sl);
	if (err)
		return err;
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, sl) ||
	    (nodelay && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int))) ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* one connection's readable event: 1 when it is finished (closed), 0 otherwise */
static int td_bm_serve(struct td_bm_conn *c, char *buf)
{
	for (;;) {
		ssize_t n = recv(c->fd, buf, TD_BM_BUF, 0);
		size_t off = 0;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : 1;
		}
		if (n == 0) {
			if (c->mode == TD_BM_SINK)
				td_bm_send_all(c->fd, &c->total, sizeof(c->total));
			return 1;
		}
		if (!c->mode) {
			c->mode = buf[0];
			off = 1;
			if (c->mode != TD_BM_ECHO && c->mode != TD_BM_SINK)
				return 1;
		}
		if (c->mode == TD_BM_SINK)
			c->total += (__u64)n - off;
		else if ((size_t)n > off && td_bm_send_all(c->fd, buf + off, (size_t)n - off))
			return 1;
	}
}

/* bench-server ADDR PORT TIMEOUT_S: echo and sink connections, one epoll loop */
static int td_bm_server(int argc, char **argv)
{
	struct epoll_event evs[16], ev = { .events = EPOLLIN };
	struct sockaddr_storage ss;
	int lfd = -1, ep = -1, err;
	char *buf = NULL;
	socklen_t sl;
	__u64 end;

	if (argc != 5)
		return -EINVAL;
	err = td_bm_sockaddr(argv[2], argv[3], &ss, &sl);
	if (err)
		return err;
	end = td_bm_ns() + strtoull(argv[4], NULL, 10) * 1000000000ull;
	buf = malloc(TD_BM_BUF);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ep = epoll_create1(0);
	if (lfd < 0 || ep < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int)) ||
	    bind(lfd, (struct sockaddr *)&ss, sl) || listen(lfd, 64) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev)) {
		err = -errno;
		goto cleanup;
	}
	printf("ready\n");
	fflush(stdout);
	while (td_bm_ns() < end) {
		int k = epoll_wait(ep, evs, 16, 200);

		for (int e = 0; e < k; e++) {
			struct td_bm_conn *c = evs[e].data.ptr;
			int fd;

			if (!c) {
				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					c = calloc(1, sizeof(*c));
					if (!c) {
						close(fd);
						continue;
					}
					c->fd = fd;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
						close(fd);
						free(c);
					}
				}
				continue;
			}
			if (td_bm_serve(c, buf)) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				free(c);
			}
		}
	}
cleanup:
	if (ep >= 0)
		close(ep);
	if (lfd >= 0)
		close(lfd);
	free(buf);
	return err;
}

static int td_bm_cmp(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

/* nearest-rank percentile P of N sorted samples, in microseconds */
static double td_bm_pct(const __u64 *s, size_t n, unsigned int p)
{
	size_t i = (n * p + 99) / 100;

	return (double)s[i ? i - 1 : 0] / 1000.0;
}

/* bench-rr HOST PORT SIZE COUNT WARMUP: SIZE-byte request, SIZE-byte echo, COUNT timed */
static int td_bm_rr(int argc, char **argv)
{
	char *req = NULL, *rsp = NULL;
	__u64 *lat = NULL, sum = 0;
	long size, count, warm;
	int fd = -1, err;

	if (argc != 7)
		return -EINVAL;
	size = atol(argv[4]);
	count = atol(argv[5]);
	warm = atol(argv[6]);
	if (size <= 0 || size > TD_BM_MAX_WRITE || count <= 0 || warm < 0)
		return -EINVAL;
	req = malloc((size_t)size);
	rsp = malloc((size_t)size);
	lat = calloc((size_t)count, sizeof(*lat));
	if (!req || !rsp || !lat) {
		err = -ENOMEM;
		goto cleanup;
	}
	fd = td_bm_connect(argv[2], argv[3], 1);
	if (fd < 0) {
		err = fd;
		goto cleanup;
	}
	err = td_bm_send_all(fd, &(char){ TD_BM_ECHO }, 1);
	for (long i = 0; !err && i < warm + count; i++) {
		__u64 t0;

		memset(req, 'a' + (int)(i % 26), (size_t)size);
		t0 = td_bm_ns();
		err = td_bm_send_all(fd, req, (size_t)size);
		if (!err)
			err = td_bm_recv_all(fd, rsp, (size_t)size);
		if (!err && memcmp(req, rsp, (size_t)size))
			err = -EBADMSG;
		if (!err && i >= warm) {
			lat[i - warm] = td_bm_ns() - t0;
			sum += lat[i - warm];
		}
	}
	if (err)
		goto cleanup;
	qsort(lat, (size_t)count, sizeof(*lat), td_bm_cmp);
	printf("rr size=%ld n=%ld p50_us=%.1f p99_us=%.1f mean_us=%.1f payload=%llu\n", size, count,
	       td_bm_pct(lat, (size_t)count, 50), td_bm_pct(lat, (size_t)count, 99),
	       (double)sum / (double)count / 1000.0,
	       (unsigned long long)(2 * (warm + count) * size + 1));
cleanup:
	if (fd >= 0)
		close(fd);
	free(req);
	free(rsp);
	free(lat);
	return err;
}

/*
 * bench-bulk HOST PORT WRITE SECONDS: write WRITE-byte chunks for SECONDS, half-close, wait for
 * the sink's count: throughput is what the reader got over the time until it had all of it.
 */
static int td_bm_bulk(int argc, char **argv)
{
	__u64 sent = 0, got = 0, t0, end, t1;
	char *buf = NULL;
	long wsize;
	double secs;
	int fd = -1, err;

	if (argc != 6)
		return -EINVAL;
	wsize = atol(argv[4]);
	secs = atof(argv[5]);
	if (wsize <= 0 || wsize > TD_BM_MAX_WRITE || secs <= 0 || secs > 60)
		return -EINVAL;
	buf = malloc((size_t)wsize);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	memset(buf, 'x', (size_t)wsize);
	fd = td_bm_connect(argv[2], argv[3], 0);
	if (fd < 0) {
		err = fd;
		goto cleanup;
	}
	err = td_bm_send_all(fd, &(char){ TD_BM_SINK }, 1);
	t0 = td_bm_ns();
	end = t0 + (__u64)(secs * 1e9);
	while (!err && td_bm_ns() < end) {
		err = td_bm_send_all(fd, buf, (size_t)wsize);
		sent += (__u64)wsize;
	}
	if (!err && shutdown(fd, SHUT_WR))
		err = -errno;
	if (!err)
		err = td_bm_recv_all(fd, &got, sizeof(got));
	if (err)
		goto cleanup;
	t1 = td_bm_ns();
	if (got != sent) {
		fprintf(stderr, "bench-bulk: sent %llu bytes, the reader got %llu\n",
			(unsigned long long)sent, (unsigned long long)got);
		err = -EBADMSG;
		goto cleanup;
	}
	printf("bulk write=%ld bytes=%llu ms=%.1f MBps=%.1f payload=%llu\n", wsize,
	       (unsigned long long)got, (double)(t1 - t0) / 1e6,
	       (double)got * 1000.0 / (double)(t1 - t0), (unsigned long long)(got + 1 + 8));
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	return err;
}

int td_bench_main(int argc, char **argv, bool *handled)
{
	*handled = true;
	if (!strcmp(argv[1], "bench-server"))
		return td_bm_server(argc, argv);
	if (!strcmp(argv[1], "bench-rr"))
		return td_bm_rr(argc, argv);
	if (!strcmp(argv[1], "bench-bulk"))
		return td_bm_bulk(argc, argv);
	*handled = false;
	return 0;
}

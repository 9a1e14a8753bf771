/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* td_mesh_ctl stress-server/stress-client/reorder: verified epoll TCP streams for the redirect tests. */
#include <errno.h>
#include <fcntl.h>
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
#include <bpf/bpf.h>

#include "addr.h"
#include "mesh.h"
#include "sockmap_io.h"

/*
 * Streams: every connection carries a header {id, mode, c2s_len, s2c_len} then c2s_len bytes
 * client -> server; the server answers s2c_len bytes. Byte k of a stream is a function of
 * (seed, id, direction, k), so each side checks every byte it receives at its offset.
 * Mode 0: both sides write everything, half-close (shutdown SHUT_WR) and read to EOF; the
 * received length must be exact. Mode 1: the client writes half of c2s and resets (SO_LINGER
 * 0); the server checks that what it got is a correct prefix.
 */
#define TD_IO_MAX_CONNS 4096
#define TD_IO_BUF (256 * 1024)

struct td_io_hdr {
	__u32 id;
	__u32 mode;
	__u32 c2s_len;
	__u32 s2c_len;
};

struct td_io_conn {
	int fd;
	struct td_io_hdr h;
	__u32 hdr_got;        /* server: header bytes read; client: header bytes sent */
	__u64 sent, rcvd;
	__u32 tx_len, rx_len; /* lengths of the stream this side writes / reads */
	__u32 tx_dir, rx_dir;
	int wr_done, rd_done, bad, reset;
};

static __u64 td_io_seed;
static __u64 td_io_rng = 88172645463325252ull;

static __u64 td_io_mix(__u64 x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static __u64 td_io_rand(void)
{
	td_io_rng ^= td_io_rng << 13;
	td_io_rng ^= td_io_rng >> 7;
	td_io_rng ^= td_io_rng << 17;
	return td_io_rng;
}

/* 1 .. max, log-uniform: many small writes and some large ones */
static size_t td_io_size(size_t max)
{
	size_t s = (size_t)1 << (td_io_rand() % 19);

	s += td_io_rand() % s;
	return s > max ? max : s;
}

static void td_io_fill(__u8 *buf, __u32 id, __u32 dir, __u64 off, size_t len)
{
	__u64 stream = td_io_mix(td_io_seed * 1000003ull + id * 2ull + dir);

	for (size_t i = 0; i < len; i++) {
		__u64 k = off + i;

		buf[i] = (__u8)(td_io_mix(stream ^ (k >> 3)) >> ((k & 7) * 8));
	}
}

static int td_io_check(const __u8 *buf, __u32 id, __u32 dir, __u64 off, size_t len)
{
	static __u8 want[TD_IO_BUF];

	td_io_fill(want, id, dir, off, len);
	return memcmp(want, buf, len) ? -1 : 0;
}

static long long td_io_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* read what is there; verify; 1 at EOF/reset, 0 more to come, -1 verification failure */
static int td_io_read(struct td_io_conn *c, __u8 *buf)
{
	for (int round = 0; round < 16; round++) {
		size_t want = td_io_size(TD_IO_BUF);
		ssize_t n = recv(c->fd, buf, want, 0);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			c->reset = 1;
			return 1;
		}
		if (n == 0)
			return 1;
		if (c->rcvd + (size_t)n > c->rx_len ||
		    td_io_check(buf, c->h.id, c->rx_dir, c->rcvd, (size_t)n)) {
			c->bad = 1;
			return -1;
		}
		c->rcvd += (size_t)n;
	}
	return 0;
}

/* write a few random-size chunks; 1 when everything is written */
static int td_io_write(struct td_io_conn *c, __u8 *buf, __u64 limit)
{
	for (int round = 0; round < 16 && c->sent < limit; round++) {
		size_t len = td_io_size(TD_IO_BUF);
		ssize_t n;

		if (len > limit - c->sent)
			len = (size_t)(limit - c->sent);
		td_io_fill(buf, c->h.id, c->tx_dir, c->sent, len);
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			c->reset = 1;
			return 1;
		}
		c->sent += (size_t)n;
	}
	return c->sent >= limit;
}

static void td_io_close(int ep, struct td_io_conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
}

/* stress-server ADDR PORT CONNS TIMEOUT_S SEED */
static int td_io_server(int argc, char **argv)
{
	struct td_io_conn *conns = NULL;
	struct epoll_event evs[64], ev;
	int lfd = -1, ep = -1, err = 0, nconn, ok = 0, bad = 0, resets = 0, done = 0, n = 0;
	union td_addr a;
	__u8 fam, *buf = NULL;
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	long long end;
	__u64 bytes = 0;

	if (argc != 7)
		return -EINVAL;
	nconn = atoi(argv[4]);
	end = td_io_ms() + atoll(argv[5]) * 1000;
	td_io_seed = strtoull(argv[6], NULL, 10);
	if (td_addr_parse(argv[2], &a, &fam) || nconn <= 0 || nconn > TD_IO_MAX_CONNS)
		return -EINVAL;
	conns = calloc((size_t)nconn, sizeof(*conns));
	buf = malloc(TD_IO_BUF);
	if (!conns || !buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	sl = td_sockaddr_from(&a, fam, (__u16)atoi(argv[3]), &ss);
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int)) ||
	    bind(lfd, (struct sockaddr *)&ss, sl) || listen(lfd, 1024)) {
		err = -errno;
		goto cleanup;
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.u64 = ~0ull;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	printf("ready\n");
	fflush(stdout);
	while (done < nconn && td_io_ms() < end) {
		int k = epoll_wait(ep, evs, 64, 200);

		for (int e = 0; e < k; e++) {
			struct td_io_conn *c;
			int r;

			if (evs[e].data.u64 == ~0ull) {
				int fd;

				while (n < nconn && (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					c = &conns[n];
					c->fd = fd;
					c->tx_dir = 1;
					c->rx_dir = 0;
					ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
					ev.data.u64 = (__u64)n++;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			c = &conns[evs[e].data.u64];
			if (c->fd < 0)
				continue;
			if (c->hdr_got < sizeof(c->h)) {
				ssize_t g = recv(c->fd, (char *)&c->h + c->hdr_got,
						 sizeof(c->h) - c->hdr_got, 0);

				if (g <= 0) {
					if (g < 0 && (errno == EAGAIN || errno == EINTR))
						continue;
					c->bad = 1;  /* closed before the header */
					c->rd_done = c->wr_done = 1;
				} else {
					c->hdr_got += (__u32)g;
					if (c->hdr_got < sizeof(c->h))
						continue;
					c->rx_len = c->h.c2s_len;
					c->tx_len = c->h.s2c_len;
				}
			}
			if (!c->rd_done) {
				r = td_io_read(c, buf);
				if (r)
					c->rd_done = 1;
			}
			if (!c->wr_done && !c->bad) {
				r = td_io_write(c, buf, c->tx_len);
				if (r) {
					shutdown(c->fd, SHUT_WR);
					c->wr_done = 1;
				}
			}
			if (c->rd_done && (c->wr_done || c->reset || c->bad)) {
				bytes += c->rcvd;
				if (c->h.mode == 1) {
					resets += c->reset;
					if (c->bad)
						bad++;
					else
						ok++;
				} else if (c->bad || c->reset || c->rcvd != c->rx_len) {
					bad++;
					fprintf(stderr, "server: conn %u bad=%d reset=%d rcvd %llu of %u\n",
						c->h.id, c->bad, c->reset, (unsigned long long)c->rcvd,
						c->rx_len);
				} else {
					ok++;
				}
				td_io_close(ep, c);
				done++;
			}
		}
	}
	printf("{\"done\": %d, \"ok\": %d, \"bad\": %d, \"resets_seen\": %d, \"bytes_rx\": %llu, "
	       "\"accepted\": %d}\n", done, ok, bad, resets, (unsigned long long)bytes, n);
cleanup:
	for (int i = 0; conns && i < n; i++)
		if (conns[i].fd >= 0)
			close(conns[i].fd);
	if (ep >= 0)
		close(ep);
	if (lfd >= 0)
		close(lfd);
	free(conns);
	free(buf);
	return err;
}

/*
 * stress-client HOST PORT CONNS TOTAL_BYTES TIMEOUT_S SEED RESET_PERMILLE [PACE_MS]: with
 * PACE_MS the client->server streams are spread over that many milliseconds (long-lived
 * streams for tests that change things under traffic).
 */
static int td_io_client(int argc, char **argv)
{
	struct td_io_conn *conns = NULL;
	struct epoll_event evs[64], ev;
	int ep = -1, err = 0, nconn, ok = 0, bad = 0, resets = 0, done = 0, reset_pm;
	struct sockaddr_storage ss = { 0 };
	union td_addr a;
	__u8 fam, *buf = NULL;
	socklen_t sl;
	long long t0 = td_io_ms(), end, pace_ms;
	__u64 total, per, bytes = 0;

	if (argc != 9 && argc != 10)
		return -EINVAL;
	pace_ms = argc == 10 ? atoll(argv[9]) : 0;
	nconn = atoi(argv[4]);
	total = strtoull(argv[5], NULL, 10);
	end = t0 + atoll(argv[6]) * 1000;
	td_io_seed = strtoull(argv[7], NULL, 10);
	td_io_rng ^= td_io_mix(td_io_seed);
	reset_pm = atoi(argv[8]);
	if (td_addr_parse(argv[2], &a, &fam) || nconn <= 0 || nconn > TD_IO_MAX_CONNS)
		return -EINVAL;
	per = total / (__u64)nconn;
	if (per > 0xffffffffull)
		return -E2BIG;
	conns = calloc((size_t)nconn, sizeof(*conns));
	buf = malloc(TD_IO_BUF);
	if (!conns || !buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	sl = td_sockaddr_from(&a, fam, (__u16)atoi(argv[3]), &ss);
	ep = epoll_create1(0);
	for (int i = 0; i < nconn; i++) {
		struct td_io_conn *c = &conns[i];
		__u32 split = (__u32)(td_io_rand() % 1001);

		c->h.id = (__u32)i;
		c->h.mode = (td_io_rand() % 1000) < (__u64)reset_pm;
		c->h.c2s_len = (__u32)(per * split / 1000);
		c->h.s2c_len = (__u32)(per - c->h.c2s_len);
		c->tx_len = c->h.mode ? c->h.c2s_len / 2 : c->h.c2s_len;
		c->rx_len = c->h.s2c_len;
		c->tx_dir = 0;
		c->rx_dir = 1;
		c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (c->fd < 0 || (connect(c->fd, (struct sockaddr *)&ss, sl) && errno != EINPROGRESS)) {
			fprintf(stderr, "client: connect %d: %s\n", i, strerror(errno));
			c->bad = 1;
			if (c->fd >= 0)
				close(c->fd);
			c->fd = -1;
			done++;
			bad++;
			continue;
		}
		ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
		ev.data.u64 = (__u64)i;
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	}
	while (done < nconn && td_io_ms() < end) {
		int k = epoll_wait(ep, evs, 64, 200);
		long long el = td_io_ms() - t0;

		if (pace_ms)
			usleep(2000);
		for (int e = 0; e < k; e++) {
			struct td_io_conn *c = &conns[evs[e].data.u64];
			__u64 limit = c->tx_len;

			if (c->fd < 0)
				continue;
			if (c->hdr_got < sizeof(c->h)) {
				ssize_t g = send(c->fd, (char *)&c->h + c->hdr_got,
						 sizeof(c->h) - c->hdr_got, MSG_NOSIGNAL);

				if (g < 0) {
					if (errno == EAGAIN || errno == EINTR || errno == ENOTCONN)
						continue;
					c->bad = 1;
					c->rd_done = c->wr_done = 1;
				} else {
					c->hdr_got += (__u32)g;
					if (c->hdr_got < sizeof(c->h))
						continue;
				}
			}
			if (pace_ms && el < pace_ms)
				limit = c->tx_len * (__u64)el / (__u64)pace_ms;
			if (!c->wr_done && td_io_write(c, buf, limit) && limit == c->tx_len) {
				c->wr_done = 1;
				if (c->h.mode == 1) {
					struct linger l = { .l_onoff = 1, .l_linger = 0 };

					setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
					resets++;
					ok++;
					done++;
					td_io_close(ep, c);
					continue;
				}
				shutdown(c->fd, SHUT_WR);
			}
			if (!c->rd_done && td_io_read(c, buf))
				c->rd_done = 1;
			if (c->rd_done && c->wr_done) {
				bytes += c->rcvd + c->sent;
				if (c->bad || c->reset || c->rcvd != c->rx_len) {
					bad++;
					fprintf(stderr, "client: conn %u bad=%d reset=%d rcvd %llu of %u\n",
						c->h.id, c->bad, c->reset, (unsigned long long)c->rcvd,
						c->rx_len);
				} else {
					ok++;
				}
				td_io_close(ep, c);
				done++;
			}
		}
	}
	for (int i = 0; i < nconn; i++) {
		if (conns[i].fd < 0)
			continue;
		if (conns[i].h.mode != 1)
			bytes += conns[i].sent + conns[i].rcvd;
		close(conns[i].fd);
		conns[i].fd = -1;
	}
	printf("{\"conns\": %d, \"done\": %d, \"ok\": %d, \"bad\": %d, \"resets\": %d, "
	       "\"unfinished\": %d, \"bytes\": %llu, \"ms\": %lld}\n", nconn, done, ok, bad, resets,
	       nconn - done, (unsigned long long)bytes, td_io_ms() - t0);
cleanup:
	if (ep >= 0)
		close(ep);
	free(conns);
	free(buf);
	return err;
}

/* key of fd's own 4-tuple (IPv4 sockets only: the reorder test uses 127.0.0.1) */
static int td_io_key(int fd, struct td_mesh_sock_key *k)
{
	struct sockaddr_in l, r;
	socklen_t ll = sizeof(l), rl = sizeof(r);

	if (getsockname(fd, (struct sockaddr *)&l, &ll) || getpeername(fd, (struct sockaddr *)&r, &rl))
		return -errno;
	memset(k, 0, sizeof(*k));
	k->family = TD_AF_INET;
	k->local.v4 = l.sin_addr.s_addr;
	k->remote.v4 = r.sin_addr.s_addr;
	k->local_port = ntohs(l.sin_port);
	k->remote_port = ntohs(r.sin_port);
	return 0;
}

/*
 * reorder BPFFS PORT MARK: semantic 6. A connection on 127.0.0.1:PORT sends "first" on plain
 * TCP (unread), then both sockets are put into td_m_socks from userspace (what td never does:
 * it adds sockets only at establishment); with MARK 1 they are also marked joined in td_m_sk,
 * so td's sk_msg redirects. Then "second" is sent and the reader reads what comes first.
 */
static int td_io_reorder(int argc, char **argv)
{
	struct td_mesh_maps m;
	struct td_mesh_sock_key ka, kb;
	int l = -1, a = -1, b = -1, err, mark;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	__u64 fa, fb;
	char got[64] = { 0 };
	ssize_t n;

	if (argc != 5)
		return -EINVAL;
	mark = atoi(argv[4]);
	err = td_mesh_maps_open(argv[2], &m);
	if (err)
		return err;
	sa.sin_port = htons((__u16)atoi(argv[3]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int)) ||
	    bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 4)) {
		err = -errno;
		goto cleanup;
	}
	a = socket(AF_INET, SOCK_STREAM, 0);
	if (a < 0 || connect(a, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		goto cleanup;
	}
	b = accept(l, NULL, NULL);
	if (b < 0 || send(a, "first.", 6, 0) != 6) {
		err = -errno;
		goto cleanup;
	}
	usleep(100000);
	err = td_io_key(a, &ka);
	if (!err)
		err = td_io_key(b, &kb);
	if (err)
		goto cleanup;
	fa = (__u64)a;
	fb = (__u64)b;
	if (bpf_map_update_elem(m.socks, &ka, &fa, BPF_NOEXIST) ||
	    bpf_map_update_elem(m.socks, &kb, &fb, BPF_NOEXIST)) {
		err = -errno;
		goto cleanup;
	}
	if (mark) {
		struct td_mesh_sk st = { .sm = TD_MESH_SM_JOINED };

		if (bpf_map_update_elem(m.sk, &a, &st, BPF_ANY) ||
		    bpf_map_update_elem(m.sk, &b, &st, BPF_ANY)) {
			err = -errno;
			goto cleanup;
		}
	}
	if (send(a, "second.", 7, 0) != 7) {
		err = -errno;
		goto cleanup;
	}
	usleep(100000);
	n = recv(b, got, sizeof(got) - 1, MSG_DONTWAIT);
	if (n > 0) {
		ssize_t more = recv(b, got + n, sizeof(got) - 1 - (size_t)n, MSG_DONTWAIT);

		if (more > 0)
			n += more;
	}
	printf("%s\n", n > 0 ? got : "(nothing)");
cleanup:
	/* closing the sockets removes their entries (the kernel's job, as for any member) */
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
	if (l >= 0)
		close(l);
	td_mesh_maps_close(&m);
	return err;
}

/* sockdel BPFFS LADDR LPORT RADDR RPORT: delete one td_m_socks entry (semantic 5 test only) */
static int td_io_sockdel(int argc, char **argv)
{
	struct td_mesh_sock_key k = { 0 };
	struct td_mesh_maps m;
	__u8 f1, f2;
	int err;

	if (argc != 7)
		return -EINVAL;
	if (td_addr_parse(argv[3], &k.local, &f1) || td_addr_parse(argv[5], &k.remote, &f2) ||
	    f1 != f2)
		return -EINVAL;
	k.family = f1;
	k.local_port = (__u16)atoi(argv[4]);
	k.remote_port = (__u16)atoi(argv[6]);
	err = td_mesh_maps_open(argv[2], &m);
	if (err)
		return err;
	if (bpf_map_delete_elem(m.socks, &k))
		err = -errno;
	td_mesh_maps_close(&m);
	return err;
}

int td_io_main(int argc, char **argv, bool *handled)
{
	*handled = true;
	if (!strcmp(argv[1], "stress-server"))
		return td_io_server(argc, argv);
	if (!strcmp(argv[1], "stress-client"))
		return td_io_client(argc, argv);
	if (!strcmp(argv[1], "reorder"))
		return td_io_reorder(argc, argv);
	if (!strcmp(argv[1], "sockdel"))
		return td_io_sockdel(argc, argv);
	*handled = false;
	return 0;
}

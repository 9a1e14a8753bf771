/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for user/http/tls.c: real OpenSSL clients against td_tls on non-blocking sockets. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <CUnit/CUnit.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "unit.h"

/*
 * Certificates come from selftests/gw/mkcerts.sh (root -> intermediate -> leaves), generated
 * once per run into a temporary directory. Clients verify the chain against ca.pem and the
 * host name with SSL_set1_host(), so a wrong certificate fails the handshake, and the tests
 * also read the CN of the certificate the client got.
 */

static char tdt_dir[64];		/* generated certificates; empty: generation failed */
static SSL_CTX *tdt_cctx;		/* TLS 1.2+ client trusting ca.pem */

static const char *tdt_path(char *buf, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", tdt_dir, name);
	return buf;
}

/* selftests/gw/mkcerts.sh from the working directory, else relative to build/bin/td_unit */
static int tdt_script(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n;
	char *p;

	snprintf(buf, len, "selftests/gw/mkcerts.sh");
	if (!access(buf, X_OK))
		return 0;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -ENOENT;
	exe[n] = 0;
	for (int up = 0; up < 3; up++) {	/* strip td_unit, bin, build */
		p = strrchr(exe, '/');
		if (!p)
			return -ENOENT;
		*p = 0;
	}
	if (snprintf(buf, len, "%s/selftests/gw/mkcerts.sh", exe) >= (int)len)
		return -ENAMETOOLONG;
	return access(buf, X_OK) ? -ENOENT : 0;
}

static int tdt_init(void)
{
	char script[PATH_MAX], cmd[2 * PATH_MAX + 32], ca[PATH_MAX];

	signal(SIGPIPE, SIG_IGN);	/* like tdagent: the socket BIO writes with write(2) */
	snprintf(tdt_dir, sizeof(tdt_dir), "/tmp/td_unit_tls.XXXXXX");
	if (!mkdtemp(tdt_dir) || tdt_script(script, sizeof(script))) {
		fprintf(stderr, "\n  tls: no temp dir or no selftests/gw/mkcerts.sh\n");
		tdt_dir[0] = 0;
		return 0;	/* the tests fail one by one, with a reason */
	}
	snprintf(cmd, sizeof(cmd), "'%s' '%s'", script, tdt_dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "\n  tls: %s failed\n", cmd);
		return 0;
	}
	tdt_cctx = SSL_CTX_new(TLS_client_method());
	if (!tdt_cctx)
		return 0;
	SSL_CTX_set_min_proto_version(tdt_cctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(tdt_cctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(tdt_cctx, tdt_path(ca, "ca.pem"), NULL) != 1) {
		SSL_CTX_free(tdt_cctx);
		tdt_cctx = NULL;
	}
	return 0;
}

static int tdt_cleanup(void)
{
	char cmd[PATH_MAX + 16];

	SSL_CTX_free(tdt_cctx);
	tdt_cctx = NULL;
	if (tdt_dir[0] && strncmp(tdt_dir, "/tmp/td_unit_tls.", 17) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdt_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "\n  tls: cannot remove %s\n", tdt_dir);
	}
	return 0;
}

/* the standard set: default (first), api, wild, ec, cn */
static struct td_tls *tdt_tls(void)
{
	static char p[10][PATH_MAX];
	static const char *const names[] = { "default", "api", "wild", "ec", "cn" };
	struct td_tls_cert c[5];
	char err[256] = "";
	struct td_tls *t;

	for (int i = 0; i < 5; i++) {
		snprintf(p[2 * i], PATH_MAX, "%s/%s.pem", tdt_dir, names[i]);
		snprintf(p[2 * i + 1], PATH_MAX, "%s/%s.key", tdt_dir, names[i]);
		c[i].cert = p[2 * i];
		c[i].key = p[2 * i + 1];
	}
	t = td_tls_new(c, 5, err, sizeof(err));
	if (!t)
		fprintf(stderr, "\n  td_tls_new: %s\n", err);
	return t;
}

/* ---- a client/server pair over non-blocking sockets ---- */

struct tdt_pair {
	int cfd, sfd;
	SSL *cl;			/* real OpenSSL client */
	struct td_tls_conn *sc;		/* the server side under test */
};

static void tdt_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* loopback TCP pair (tcp != 0) or AF_UNIX socketpair; 0 or -1 */
static int tdt_socks(int *cfd, int *sfd, int tcp)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int sv[2], l;

	if (!tcp) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
			return -1;
		*cfd = sv[0];
		*sfd = sv[1];
		goto done;
	}
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0)
		return -1;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al)) {
		close(l);
		return -1;
	}
	*cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (*cfd < 0 || connect(*cfd, (struct sockaddr *)&a, sizeof(a))) {
		close(l);
		return -1;
	}
	*sfd = accept(l, NULL, NULL);
	close(l);
	if (*sfd < 0)
		return -1;
done:
	tdt_nonblock(*cfd);
	tdt_nonblock(*sfd);
	return 0;
}

/* client for sni (NULL: none) expecting host (NULL: no name check); cctx NULL: tdt_cctx */
static int tdt_pair_open(struct tdt_pair *p, struct td_tls *t, SSL_CTX *cctx, const char *sni,
			 const char *host, int tcp)
{
	memset(p, 0, sizeof(*p));
	p->cfd = p->sfd = -1;
	if (!t || !tdt_cctx || tdt_socks(&p->cfd, &p->sfd, tcp))
		return -1;
	p->cl = SSL_new(cctx ? cctx : tdt_cctx);
	if (!p->cl || !SSL_set_fd(p->cl, p->cfd))
		return -1;
	SSL_set_connect_state(p->cl);
	if (sni && !SSL_set_tlsext_host_name(p->cl, sni))
		return -1;
	if (host && !SSL_set1_host(p->cl, host))
		return -1;
	p->sc = td_tls_conn_new(t, p->sfd);
	return p->sc ? 0 : -1;
}

static void tdt_pair_close(struct tdt_pair *p)
{
	td_tls_conn_free(p->sc);
	/* a client freed without close_notify marks its session not resumable */
	if (p->cl && SSL_is_init_finished(p->cl))
		SSL_shutdown(p->cl);
	SSL_free(p->cl);
	if (p->cfd >= 0)
		close(p->cfd);
	if (p->sfd >= 0)
		close(p->sfd);
	memset(p, 0, sizeof(*p));
	p->cfd = p->sfd = -1;
}

static short tdt_ev_ssl(int e)
{
	return e == SSL_ERROR_WANT_WRITE ? POLLOUT : e == SSL_ERROR_WANT_READ ? POLLIN : 0;
}

static short tdt_ev_td(int w)
{
	return w == TD_TLS_WANT_WRITE ? POLLOUT : w == TD_TLS_WANT_READ ? POLLIN : 0;
}

/* 0 when something is ready, -1 after 2 s of nothing (a stuck exchange) */
static int tdt_wait(int cfd, short cev, int sfd, short sev)
{
	struct pollfd pf[2] = { { .fd = cfd, .events = cev }, { .fd = sfd, .events = sev } };

	if (!cev && !sev)
		return 0;
	return poll(pf, 2, 2000) > 0 ? 0 : -1;
}

/*
 * Both handshakes. *cerr: 0 when the client finished, else its SSL_get_error(). Returns the
 * server's result: 0 established, its error code, or -ETIMEDOUT when it got stuck.
 */
static ssize_t tdt_handshake(struct tdt_pair *p, int *cerr)
{
	int cdone = 0, sdone = 0, ce = 0, sw = 0;
	ssize_t sr = -ETIMEDOUT;
	char b;

	*cerr = -1;
	for (int i = 0; i < 1000 && !(cdone && sdone); i++) {
		if (!cdone) {
			int r = SSL_do_handshake(p->cl);

			ce = r == 1 ? 0 : SSL_get_error(p->cl, r);
			if (r == 1 || !tdt_ev_ssl(ce)) {
				cdone = 1;
				*cerr = ce;
				ce = 0;
			}
		}
		if (!sdone) {
			sr = td_tls_read(p->sc, &b, 1);
			if (sr == -EAGAIN && td_tls_established(p->sc)) {
				sdone = 1;
				sr = 0;
			} else if (sr != -EAGAIN) {
				sdone = 1;
				if (sr > 0)	/* no application data in these tests */
					sr = -EBADMSG;
			}
			sw = sdone ? 0 : td_tls_want(p->sc);
			if (!sdone && !sw)
				return -EINVAL;	/* -EAGAIN without a want */
		}
		if (cdone && sdone)
			break;
		if (tdt_wait(p->cfd, tdt_ev_ssl(ce), p->sfd, tdt_ev_td(sw)))
			return sdone ? sr : -ETIMEDOUT;
	}
	return sdone ? sr : -ETIMEDOUT;
}

/* CN of the certificate the client received, "" if none */
static const char *tdt_peer_cn(SSL *cl, char *buf, size_t len)
{
	X509 *x = SSL_get0_peer_certificate(cl);

	buf[0] = 0;
	if (x && X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf,
					   (int)len) < 0)
		buf[0] = 0;
	return buf;
}

/* handshake with sni, expecting the certificate whose CN is want_cn (and host name want_host) */
static void tdt_expect(struct td_tls *t, const char *sni, const char *want_host,
		       const char *want_cn, int tcp)
{
	struct tdt_pair p;
	char cn[256];
	int cerr;
	ssize_t sr;

	if (tdt_pair_open(&p, t, NULL, sni, want_host, tcp)) {
		CU_FAIL("pair");
		tdt_pair_close(&p);
		return;
	}
	sr = tdt_handshake(&p, &cerr);
	if (sr || cerr)
		fprintf(stderr, "\n  sni '%s': server %zd (%s), client %d, verify %ld\n",
			sni ? sni : "(none)", sr, td_tls_error(p.sc), cerr,
			SSL_get_verify_result(p.cl));
	CU_ASSERT_EQUAL(sr, 0);
	CU_ASSERT_EQUAL(cerr, 0);
	CU_ASSERT_EQUAL(SSL_get_verify_result(p.cl), X509_V_OK);
	CU_ASSERT_TRUE(td_tls_established(p.sc));
	tdt_peer_cn(p.cl, cn, sizeof(cn));
	if (strcmp(cn, want_cn))
		fprintf(stderr, "\n  sni '%s': got CN '%s', want '%s'\n", sni ? sni : "(none)", cn,
			want_cn);
	CU_ASSERT_STRING_EQUAL(cn, want_cn);
	if (sni)
		CU_ASSERT_PTR_NOT_NULL(td_tls_sni(p.sc));
	if (sni && td_tls_sni(p.sc))
		CU_ASSERT_STRING_EQUAL(td_tls_sni(p.sc), sni);
	if (!sni)
		CU_ASSERT_PTR_NULL(td_tls_sni(p.sc));
	tdt_pair_close(&p);
}

/* ---- tests ---- */

static void test_sni(void)
{
	struct td_tls *t = tdt_tls();

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	tdt_expect(t, "api.example", "api.example", "api.example", 0);
	tdt_expect(t, "API.Example", "api.example", "api.example", 0);	/* case-insensitive */
	tdt_expect(t, "api.example.", "api.example", "api.example", 0);	/* absolute form */
	tdt_expect(t, "foo.wild.example", "foo.wild.example", "*.wild.example", 0);
	tdt_expect(t, "BAR.Wild.Example", "bar.wild.example", "*.wild.example", 1);
	tdt_expect(t, "ec.example", "ec.example", "ec.example", 1);	/* EC P-256 key */
	tdt_expect(t, "cn.example", NULL, "cn.example", 0);	/* CN fallback (no SAN) */
	/* a wildcard covers one label only; unknown names and no SNI get the first certificate */
	tdt_expect(t, "a.b.wild.example", "default.example", "default.example", 0);
	tdt_expect(t, "wild.example", "default.example", "default.example", 0);
	tdt_expect(t, "unknown.example", "default.example", "default.example", 1);
	tdt_expect(t, NULL, "default.example", "default.example", 1);
	td_tls_unref(t);
}

/* duplicate names: the earlier certificate wins; a single certificate serves every name */
static void test_first_wins(void)
{
	char a[PATH_MAX], ak[PATH_MAX], b[PATH_MAX], bk[PATH_MAX], err[256];
	struct td_tls_cert c[3] = {
		{ tdt_path(a, "api.pem"), tdt_path(ak, "api.key") },
		{ tdt_path(b, "wild.pem"), tdt_path(bk, "wild.key") },
		{ a, ak },
	};
	struct td_tls *t = td_tls_new(c + 1, 2, err, sizeof(err));

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	tdt_expect(t, "api.example", "api.example", "api.example", 0);
	tdt_expect(t, "x.wild.example", "x.wild.example", "*.wild.example", 0);
	tdt_expect(t, "other.example", NULL, "*.wild.example", 0);
	td_tls_unref(t);
	t = td_tls_new(c, 1, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	tdt_expect(t, "x.wild.example", NULL, "api.example", 0);
	td_tls_unref(t);
}

/* td_tls_new must fail with errno EINVAL and err containing each of the needles */
static void tdt_bad(const struct td_tls_cert *c, size_t n, const char *n1, const char *n2)
{
	char err[512] = "";
	struct td_tls *t;

	errno = 0;
	t = td_tls_new(c, n, err, sizeof(err));
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT_EQUAL(errno, EINVAL);
	if ((n1 && !strstr(err, n1)) || (n2 && !strstr(err, n2)))
		fprintf(stderr, "\n  err '%s' lacks '%s' / '%s'\n", err, n1, n2 ? n2 : "");
	CU_ASSERT_PTR_NOT_NULL(n1 ? strstr(err, n1) : err);
	CU_ASSERT_PTR_NOT_NULL(n2 ? strstr(err, n2) : err);
	td_tls_unref(t);
}

static void test_bad_files(void)
{
	char a[PATH_MAX], ak[PATH_MAX], wk[PATH_MAX], ek[PATH_MAX], g[PATH_MAX], m[PATH_MAX];
	char want[PATH_MAX + 16];
	FILE *f;

	tdt_path(a, "api.pem");
	tdt_path(ak, "api.key");
	tdt_path(wk, "wild.key");
	tdt_path(ek, "ec.key");
	tdt_path(g, "garbage.pem");
	tdt_path(m, "missing.pem");
	f = fopen(g, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
	      "hello\n", f);
	fclose(f);

	{	/* another RSA key, in second position */
		struct td_tls_cert c[2] = { { a, ak }, { a, wk } };

		snprintf(want, sizeof(want), "cert 1 (%s): ", a);
		tdt_bad(c, 2, want, "does not match");
	}
	{	/* an EC key for an RSA certificate */
		struct td_tls_cert c[1] = { { a, ek } };

		snprintf(want, sizeof(want), "cert 0 (%s): ", a);
		tdt_bad(c, 1, want, "does not match");
	}
	{
		struct td_tls_cert c[1] = { { m, ak } };

		snprintf(want, sizeof(want), "cert 0 (%s): ", m);
		tdt_bad(c, 1, want, "No such file");
	}
	{
		struct td_tls_cert c[1] = { { a, m } };

		tdt_bad(c, 1, "cert 0 (", "No such file");
	}
	{
		struct td_tls_cert c[1] = { { g, ak } };

		snprintf(want, sizeof(want), "cert 0 (%s): ", g);
		tdt_bad(c, 1, want, "certificate");
	}
	{	/* a certificate where the key should be */
		struct td_tls_cert c[1] = { { a, a } };

		tdt_bad(c, 1, "cert 0 (", "key");
	}
	{
		struct td_tls_cert c[1] = { { a, NULL } };

		tdt_bad(c, 1, "cert 0 (", NULL);
	}
	tdt_bad(NULL, 0, "no certificate", NULL);
}

/* client -> server and server -> client at once; the server writes through a small send buffer */
static void tdt_transfer(struct tdt_pair *p, size_t total, size_t chunk, int *partials, int *moves)
{
	unsigned char *s1 = malloc(total), *s2 = malloc(total), *c1 = malloc(total);
	unsigned char *srecv = malloc(total), *crecv = malloc(total);
	size_t sw = 0, sr = 0, cw = 0, cr = 0;
	int flip = 0, ok = 1;

	CU_ASSERT_FATAL(s1 && s2 && c1 && srecv && crecv);
	for (size_t i = 0; i < total; i++) {
		s1[i] = s2[i] = (unsigned char)(i * 7 + (i >> 11));
		c1[i] = (unsigned char)(i * 13 + (i >> 9) + 1);
	}
	*partials = *moves = 0;
	for (int iter = 0; ok && (sw < total || sr < total || cw < total || cr < total); iter++) {
		size_t before = sw + sr + cw + cr, n;
		short cev = 0, sev = 0;
		ssize_t r;
		int e;

		/* server: write until -EAGAIN like an engine, then retry from the other buffer */
		while (sw < total) {
			size_t want = total - sw < chunk ? total - sw : chunk;

			r = td_tls_write(p->sc, (flip ? s2 : s1) + sw, want);
			if (r > 0) {
				*partials += (size_t)r < want;
				sw += (size_t)r;
				continue;
			}
			if (r == -EAGAIN) {
				flip ^= 1;
				*moves += 1;
				sev |= tdt_ev_td(td_tls_want(p->sc));
			} else {
				fprintf(stderr, "\n  server write %zd: %s\n", r, td_tls_error(p->sc));
				ok = 0;
			}
			break;
		}
		if (sr < total) {
			r = td_tls_read(p->sc, srecv + sr, total - sr);
			if (r > 0) {
				sr += (size_t)r;
			} else if (r == -EAGAIN) {
				sev |= tdt_ev_td(td_tls_want(p->sc));
			} else {
				fprintf(stderr, "\n  server read %zd: %s\n", r, td_tls_error(p->sc));
				ok = 0;
			}
		}
		if (cw < total) {
			n = 0;
			if (SSL_write_ex(p->cl, c1 + cw, total - cw < 50000 ? total - cw : 50000, &n)) {
				cw += n;
			} else {
				e = SSL_get_error(p->cl, 0);
				cev |= tdt_ev_ssl(e);
				ok &= tdt_ev_ssl(e) != 0;
			}
		}
		if (cr < total) {
			n = 0;
			/* the client reads slowly so that the server meets a full socket */
			if (SSL_read_ex(p->cl, crecv + cr, total - cr < 16384 ? total - cr : 16384,
					&n)) {
				cr += n;
			} else {
				e = SSL_get_error(p->cl, 0);
				cev |= tdt_ev_ssl(e);
				ok &= tdt_ev_ssl(e) != 0;
			}
		}
		/* wait only when no side moved: poll flags are not kept between rounds */
		if (ok && sw + sr + cw + cr == before && tdt_wait(p->cfd, cev, p->sfd, sev)) {
			fprintf(stderr, "\n  transfer stuck: sw %zu sr %zu cw %zu cr %zu cev %x sev %x\n",
				sw, sr, cw, cr, cev, sev);
			ok = 0;
		}
	}
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_EQUAL(sr, total);
	CU_ASSERT_EQUAL(cr, total);
	CU_ASSERT_TRUE(sr == total && !memcmp(srecv, c1, total));
	CU_ASSERT_TRUE(cr == total && !memcmp(crecv, s1, total));
	free(s1);
	free(s2);
	free(c1);
	free(srecv);
	free(crecv);
}

static void test_data(void)
{
	struct td_tls *t = tdt_tls();
	struct tdt_pair p;
	int cerr, partials, moves, sz = 32768;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int tcp = 0; tcp < 2; tcp++) {
		CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&p, t, NULL, "api.example", "api.example", tcp),
				      0);
		/* a small send buffer: 256 KiB writes can only go out in part */
		setsockopt(p.sfd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		CU_ASSERT_EQUAL(tdt_handshake(&p, &cerr), 0);
		CU_ASSERT_EQUAL(cerr, 0);
		tdt_transfer(&p, 1 << 20, 256 << 10, &partials, &moves);
		if (!partials || !moves)
			fprintf(stderr, "\n  partial writes %d, -EAGAIN %d\n", partials, moves);
		CU_ASSERT_TRUE(partials > 0);
		CU_ASSERT_TRUE(moves > 0);	/* and each retry used the other buffer */
		tdt_pair_close(&p);
	}
	td_tls_unref(t);
}

/* the server side until it returns something else than -EAGAIN */
static ssize_t tdt_server_read(struct tdt_pair *p, void *buf, size_t len)
{
	ssize_t r;

	for (int i = 0; i < 100; i++) {
		r = td_tls_read(p->sc, buf, len);
		if (r != -EAGAIN)
			return r;
		if (tdt_wait(-1, 0, p->sfd, tdt_ev_td(td_tls_want(p->sc))))
			break;
	}
	return -ETIMEDOUT;
}

static void test_close(void)
{
	struct td_tls *t = tdt_tls();
	struct tdt_pair p;
	char buf[64];
	size_t n;
	ssize_t r;
	int cerr;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	/* close_notify: 0, then td_tls_conn_free sends ours */
	CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&p, t, NULL, "api.example", NULL, 0), 0);
	CU_ASSERT_EQUAL(tdt_handshake(&p, &cerr), 0);
	CU_ASSERT_EQUAL(SSL_write_ex(p.cl, "hi", 2, &n), 1);
	CU_ASSERT_EQUAL(tdt_server_read(&p, buf, sizeof(buf)), 2);
	CU_ASSERT_EQUAL(SSL_shutdown(p.cl), 0);		/* sent, the peer's not seen yet */
	CU_ASSERT_EQUAL(tdt_server_read(&p, buf, sizeof(buf)), 0);
	td_tls_conn_free(p.sc);
	p.sc = NULL;
	CU_ASSERT_EQUAL(SSL_shutdown(p.cl), 1);		/* our close_notify arrived */
	tdt_pair_close(&p);

	/* FIN without close_notify after the handshake: 0 as well (see tls.c) */
	CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&p, t, NULL, "api.example", NULL, 1), 0);
	CU_ASSERT_EQUAL(tdt_handshake(&p, &cerr), 0);
	shutdown(p.cfd, SHUT_WR);
	CU_ASSERT_EQUAL(tdt_server_read(&p, buf, sizeof(buf)), 0);
	tdt_pair_close(&p);

	/* FIN in the middle of the handshake: reset */
	CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&p, t, NULL, "api.example", NULL, 1), 0);
	CU_ASSERT_EQUAL(SSL_do_handshake(p.cl), -1);	/* ClientHello sent */
	shutdown(p.cfd, SHUT_WR);
	r = tdt_server_read(&p, buf, sizeof(buf));
	if (r != -ECONNRESET)
		fprintf(stderr, "\n  FIN in handshake: %zd %s\n", r, td_tls_error(p.sc));
	CU_ASSERT_EQUAL(r, -ECONNRESET);
	CU_ASSERT_FALSE(td_tls_established(p.sc));
	tdt_pair_close(&p);

	/* the peer is gone: write fails with -EPIPE (or a reset) */
	CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&p, t, NULL, "api.example", NULL, 1), 0);
	CU_ASSERT_EQUAL(tdt_handshake(&p, &cerr), 0);
	SSL_free(p.cl);
	p.cl = NULL;
	close(p.cfd);
	p.cfd = -1;
	memset(buf, 'x', sizeof(buf));
	r = 0;
	for (int i = 0; i < 100 && r >= 0; i++)	/* the first write may still go out */
		r = td_tls_write(p.sc, buf, sizeof(buf));
	CU_ASSERT_EQUAL(r, -EPIPE);
	CU_ASSERT_EQUAL(td_tls_write(p.sc, buf, sizeof(buf)), -EPROTO);	/* stays failed */
	tdt_pair_close(&p);
	td_tls_unref(t);
}

static void test_garbage(void)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: api.example\r\n\r\n";
	struct td_tls *t = tdt_tls();
	struct tdt_pair p;
	char buf[64];

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&p, t, NULL, NULL, NULL, 0), 0);
	CU_ASSERT_EQUAL(write(p.cfd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	CU_ASSERT_EQUAL(tdt_server_read(&p, buf, sizeof(buf)), -EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(td_tls_error(p.sc), "http request"));
	CU_ASSERT_EQUAL(td_tls_read(p.sc, buf, sizeof(buf)), -EPROTO);
	tdt_pair_close(&p);

	CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&p, t, NULL, NULL, NULL, 1), 0);
	memset(buf, 0x16, sizeof(buf));		/* a handshake record header, then nonsense */
	CU_ASSERT_EQUAL(write(p.cfd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	CU_ASSERT_EQUAL(tdt_server_read(&p, buf, sizeof(buf)), -EPROTO);
	CU_ASSERT_TRUE(strlen(td_tls_error(p.sc)) > 0);
	tdt_pair_close(&p);
	td_tls_unref(t);
}

/* ALPN selected by the client offering protos (wire format), "" if none */
static void tdt_alpn(struct td_tls *t, const char *protos, size_t len, const char *want)
{
	const unsigned char *sel = NULL;
	unsigned int sl = 0;
	struct tdt_pair p;
	int cerr;

	CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&p, t, NULL, "api.example", NULL, 0), 0);
	CU_ASSERT_EQUAL(SSL_set_alpn_protos(p.cl, (const unsigned char *)protos, (unsigned)len), 0);
	CU_ASSERT_EQUAL(tdt_handshake(&p, &cerr), 0);
	CU_ASSERT_EQUAL(cerr, 0);
	SSL_get0_alpn_selected(p.cl, &sel, &sl);
	CU_ASSERT_EQUAL(sl, strlen(want));
	CU_ASSERT_TRUE(sl == strlen(want) && (!sl || !memcmp(sel, want, sl)));
	tdt_pair_close(&p);
}

static void test_alpn(void)
{
	struct td_tls *t = tdt_tls();

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	tdt_alpn(t, "\x02h2\x08http/1.1", 12, "http/1.1");
	tdt_alpn(t, "\x08http/1.1\x02h2", 12, "http/1.1");
	tdt_alpn(t, "\x02h2", 3, "");			/* no h2, and no failure either */
	tdt_alpn(t, "\x08http/1.0\x02h3", 12, "");
	td_tls_unref(t);
}

static void test_versions(void)
{
	struct td_tls *t = tdt_tls();
	SSL_CTX *old = SSL_CTX_new(TLS_client_method());
	struct tdt_pair p;
	int cerr;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(old);
	/* a TLS 1.1 client (allowed on its side by security level 0) */
	SSL_CTX_set_min_proto_version(old, TLS1_VERSION);
	SSL_CTX_set_max_proto_version(old, TLS1_1_VERSION);
	CU_ASSERT_EQUAL(SSL_CTX_set_cipher_list(old, "DEFAULT:@SECLEVEL=0"), 1);
	CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&p, t, old, "api.example", NULL, 0), 0);
	CU_ASSERT_EQUAL(tdt_handshake(&p, &cerr), -EPROTO);
	CU_ASSERT_NOT_EQUAL(cerr, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(td_tls_error(p.sc), "unsupported protocol"));
	tdt_pair_close(&p);

	/* TLS 1.2 and 1.3 both work */
	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		SSL_CTX_set_min_proto_version(old, v);
		SSL_CTX_set_max_proto_version(old, v);
		SSL_CTX_set_verify(old, SSL_VERIFY_NONE, NULL);
		CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&p, t, old, "ec.example", NULL, v & 1), 0);
		CU_ASSERT_EQUAL(tdt_handshake(&p, &cerr), 0);
		CU_ASSERT_EQUAL(cerr, 0);
		CU_ASSERT_EQUAL(SSL_version(p.cl), v);
		tdt_pair_close(&p);
	}
	SSL_CTX_free(old);
	td_tls_unref(t);
}

/* one byte server -> client so a TLS 1.3 client processes the session tickets */
static void tdt_ping(struct tdt_pair *p)
{
	char b;
	size_t n = 0;

	CU_ASSERT_EQUAL(td_tls_write(p->sc, "!", 1), 1);
	for (int i = 0; i < 100 && !SSL_read_ex(p->cl, &b, 1, &n); i++)
		if (tdt_wait(p->cfd, POLLIN, -1, 0))
			break;
	CU_ASSERT_EQUAL(n, 1);
}

/* sessions resume, also on a certificate chosen by SNI; TLS 1.2 (cache) and 1.3 (tickets) */
static void test_resume(void)
{
	struct td_tls *t = tdt_tls();
	SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
	struct tdt_pair p;
	SSL_SESSION *s;
	int cerr;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cc);
	SSL_CTX_set_verify(cc, SSL_VERIFY_NONE, NULL);
	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		for (int tickets = 0; tickets < 2; tickets++) {
			const char *sni = tickets ? "x.wild.example" : "api.example";

			SSL_CTX_set_min_proto_version(cc, v);
			SSL_CTX_set_max_proto_version(cc, v);
			if (tickets)
				SSL_CTX_clear_options(cc, SSL_OP_NO_TICKET);
			else
				SSL_CTX_set_options(cc, SSL_OP_NO_TICKET);
			CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&p, t, cc, sni, NULL, 0), 0);
			CU_ASSERT_EQUAL(tdt_handshake(&p, &cerr), 0);
			tdt_ping(&p);
			CU_ASSERT_FALSE(SSL_session_reused(p.cl));
			s = SSL_get1_session(p.cl);
			tdt_pair_close(&p);
			CU_ASSERT_PTR_NOT_NULL_FATAL(s);

			CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&p, t, cc, sni, NULL, 0), 0);
			CU_ASSERT_EQUAL(SSL_set_session(p.cl, s), 1);
			CU_ASSERT_EQUAL(tdt_handshake(&p, &cerr), 0);
			if (!SSL_session_reused(p.cl))
				fprintf(stderr, "\n  version %x tickets %d: not resumed\n", v, tickets);
			CU_ASSERT_TRUE(SSL_session_reused(p.cl));
			tdt_ping(&p);
			tdt_pair_close(&p);
			SSL_SESSION_free(s);
		}
	}
	SSL_CTX_free(cc);
	td_tls_unref(t);
}

/* the creator drops its reference while a connection is open: the connection goes on */
static void test_refcount(void)
{
	struct td_tls *t = tdt_tls();
	struct tdt_pair p, q;
	int cerr, partials, moves;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_PTR_EQUAL(td_tls_ref(t), t);
	td_tls_unref(t);
	td_tls_unref(NULL);
	CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&p, t, NULL, "foo.wild.example", "foo.wild.example", 0),
			      0);
	CU_ASSERT_EQUAL_FATAL(tdt_pair_open(&q, t, NULL, "api.example", "api.example", 1), 0);
	CU_ASSERT_EQUAL(tdt_handshake(&q, &cerr), 0);
	td_tls_unref(t);	/* the last reference outside the connections */
	t = NULL;
	/* p's handshake (SNI switch included) and both transfers run after it */
	CU_ASSERT_EQUAL(tdt_handshake(&p, &cerr), 0);
	CU_ASSERT_EQUAL(cerr, 0);
	CU_ASSERT_EQUAL(SSL_get_verify_result(p.cl), X509_V_OK);
	tdt_transfer(&p, 100000, 16384, &partials, &moves);
	tdt_pair_close(&p);
	tdt_transfer(&q, 100000, 16384, &partials, &moves);
	tdt_pair_close(&q);	/* frees the td_tls; valgrind/ASan see any misuse */
}

struct tdt_thr {
	struct td_tls *t;
	int ok;
};

static void *tdt_thread(void *arg)
{
	static const char *const sni[] = { "api.example", "a.wild.example", "ec.example", NULL };
	struct tdt_thr *a = arg;
	struct tdt_pair p;
	int cerr, partials, moves;

	a->ok = 0;
	for (int i = 0; i < 12; i++) {
		if (tdt_pair_open(&p, a->t, NULL, sni[i % 4], NULL, i & 1))
			goto out;
		if (tdt_handshake(&p, &cerr) || cerr) {
			tdt_pair_close(&p);
			goto out;
		}
		tdt_transfer(&p, 20000, 4096, &partials, &moves);
		tdt_pair_close(&p);
	}
	a->ok = 1;
out:
	td_tls_unref(a->t);
	return NULL;
}

/* one td_tls, connections on several threads; each thread drops its reference at the end */
static void test_threads(void)
{
	struct tdt_thr a[4];
	pthread_t th[4];
	struct td_tls *t = tdt_tls();

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (int i = 0; i < 4; i++) {
		a[i].t = td_tls_ref(t);
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, tdt_thread, &a[i]), 0);
	}
	td_tls_unref(t);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_TRUE(a[i].ok);
	}
}

int td_suite_tls(void)
{
	CU_pSuite s = CU_add_suite("http tls", tdt_init, tdt_cleanup);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "certificate by SNI: exact, wildcard, CN, default", test_sni) ||
	    !CU_add_test(s, "duplicate names: first wins; one certificate", test_first_wins) ||
	    !CU_add_test(s, "bad files and mismatched keys", test_bad_files) ||
	    !CU_add_test(s, "1 MiB both ways, partial writes, moving buffer", test_data) ||
	    !CU_add_test(s, "close_notify, FIN, reset, write after close", test_close) ||
	    !CU_add_test(s, "not TLS: -EPROTO", test_garbage) ||
	    !CU_add_test(s, "ALPN http/1.1, never h2", test_alpn) ||
	    !CU_add_test(s, "TLS 1.1 refused, 1.2 and 1.3 accepted", test_versions) ||
	    !CU_add_test(s, "session resumption: cache and tickets", test_resume) ||
	    !CU_add_test(s, "connections outlive the creator's reference", test_refcount) ||
	    !CU_add_test(s, "connections on 4 threads", test_threads))
		return CU_get_error();
	return 0;
}

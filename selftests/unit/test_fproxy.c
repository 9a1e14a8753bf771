/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for the forward proxy runtime: URIs, rules, SNI, log lines, generations, live proxy. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <CUnit/CUnit.h>

#include <openssl/ssl.h>

#include "config.h"
#include "fp_internal.h"
#include "fproxy.h"
#include "unit.h"

/* ---- URIs --------------------------------------------------------------------------------- */

static void test_uri(void)
{
	static const struct {
		const char *in;
		int rc;
		const char *host, *path, *auth;
		uint16_t port;
		bool ip;
	} t[] = {
		{ "http://Example.COM/a?b=1", 0, "example.com", "/a?b=1", "example.com", 80, false },
		{ "HTTP://example.com", 0, "example.com", "/", "example.com", 80, false },
		{ "http://example.com:8080/x#frag", 0, "example.com", "/x", "example.com:8080", 8080,
		  false },
		{ "http://example.com:80/", 0, "example.com", "/", "example.com", 80, false },
		{ "http://example.com./", 0, "example.com", "/", "example.com", 80, false },
		{ "http://10.1.2.3:81/", 0, "10.1.2.3", "/", "10.1.2.3:81", 81, true },
		{ "http://[2001:DB8::1]/p", 0, "2001:db8::1", "/p", "[2001:db8::1]", 80, true },
		{ "http://[2001:db8::1]:8000/", 0, "2001:db8::1", "/", "[2001:db8::1]:8000", 8000,
		  true },
		{ "https://example.com/", -EPROTONOSUPPORT, NULL, NULL, NULL, 0, false },
		{ "ftp://example.com/", -EPROTONOSUPPORT, NULL, NULL, NULL, 0, false },
		{ "http://user:pw@example.com/", -EINVAL, NULL, NULL, NULL, 0, false },
		{ "http://example.com:0/", -EINVAL, NULL, NULL, NULL, 0, false },
		{ "http://example.com:65536/", -EINVAL, NULL, NULL, NULL, 0, false },
		{ "http://example.com:/", -EINVAL, NULL, NULL, NULL, 0, false },
		{ "http:///path", -EINVAL, NULL, NULL, NULL, 0, false },
		{ "http://exa mple.com/", -EINVAL, NULL, NULL, NULL, 0, false },
		{ "http://[2001:db8::1/", -EINVAL, NULL, NULL, NULL, 0, false },
		{ "http://2001:db8::1/", -EINVAL, NULL, NULL, NULL, 0, false },
		{ "http://a..b/", -EINVAL, NULL, NULL, NULL, 0, false },
		{ "/origin/form", -EINVAL, NULL, NULL, NULL, 0, false },
	};
	struct td_fp_uri u;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int rc = td_fp_uri_parse(t[i].in, strlen(t[i].in), &u);

		CU_ASSERT_EQUAL(rc, t[i].rc);
		if (rc != t[i].rc)
			fprintf(stderr, "uri %s: %d\n", t[i].in, rc);
		if (rc || t[i].rc)
			continue;
		CU_ASSERT_STRING_EQUAL(u.host, t[i].host);
		CU_ASSERT_EQUAL(u.path_len, strlen(t[i].path));
		CU_ASSERT(!strncmp(u.path, t[i].path, u.path_len));
		CU_ASSERT_STRING_EQUAL(u.authority, t[i].auth);
		CU_ASSERT_EQUAL(u.port, t[i].port);
		CU_ASSERT_EQUAL(u.ip, t[i].ip);
	}
	CU_ASSERT_EQUAL(td_fp_authority_parse("example.com:443", 15, &u), 0);
	CU_ASSERT_STRING_EQUAL(u.host, "example.com");
	CU_ASSERT_EQUAL(u.port, 443);
	CU_ASSERT_EQUAL(td_fp_authority_parse("[::1]:22", 8, &u), 0);
	CU_ASSERT_STRING_EQUAL(u.host, "::1");
	CU_ASSERT(u.ip);
	CU_ASSERT_EQUAL(td_fp_authority_parse("example.com", 11, &u), -EINVAL);
	CU_ASSERT_EQUAL(td_fp_authority_parse("a@example.com:443", 17, &u), -EINVAL);
}

/* ---- domain rules ------------------------------------------------------------------------- */

static void test_domains(void)
{
	struct td_fp_domset s = { 0 };
	char name[32];

	CU_ASSERT_EQUAL(td_fp_domset_add(&s, "example.com"), 0);
	CU_ASSERT_EQUAL(td_fp_domset_add(&s, "*.ads.example"), 0);
	CU_ASSERT_EQUAL(td_fp_domset_add(&s, "10.0.0.1"), 0);
	CU_ASSERT_EQUAL(td_fp_domset_add(&s, "*.10.0.0.1"), -EINVAL);
	CU_ASSERT_EQUAL(td_fp_domset_add(&s, "bad name"), -EINVAL);
	CU_ASSERT_EQUAL(td_fp_domset_add(&s, "Example.COM"), 0);	/* duplicate */
	CU_ASSERT_EQUAL(s.n, 3);
	CU_ASSERT_STRING_EQUAL(td_fp_domset_match(&s, "example.com", false), "example.com");
	CU_ASSERT_PTR_NULL(td_fp_domset_match(&s, "www.example.com", false));	/* exact only */
	CU_ASSERT_PTR_NULL(td_fp_domset_match(&s, "ads.example", false));	/* not the apex */
	CU_ASSERT_STRING_EQUAL(td_fp_domset_match(&s, "x.ads.example", false), "*.ads.example");
	CU_ASSERT_STRING_EQUAL(td_fp_domset_match(&s, "a.b.ads.example", false), "*.ads.example");
	CU_ASSERT_PTR_NULL(td_fp_domset_match(&s, "x.ads.example.org", false));
	CU_ASSERT_PTR_NULL(td_fp_domset_match(&s, "xads.example", false));
	CU_ASSERT_STRING_EQUAL(td_fp_domset_match(&s, "10.0.0.1", true), "10.0.0.1");
	CU_ASSERT_PTR_NULL(td_fp_domset_match(&s, "10.0.0.2", true));
	/* grows past its first table */
	for (int i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "h%d.example.net", i);
		CU_ASSERT_EQUAL(td_fp_domset_add(&s, name), 0);
	}
	CU_ASSERT_STRING_EQUAL(td_fp_domset_match(&s, "h499.example.net", false), "h499.example.net");
	CU_ASSERT_STRING_EQUAL(td_fp_domset_match(&s, "q.ads.example", false), "*.ads.example");
	td_fp_domset_free(&s);
}

/* ---- private destinations ----------------------------------------------------------------- */

static bool td_tf_private(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		ss.ss_family = AF_INET6;
		inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr);
	} else {
		ss.ss_family = AF_INET;
		inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr);
	}
	return td_fp_private_addr((struct sockaddr *)&ss);
}

static void test_private(void)
{
	static const char *const priv[] = {
		"0.0.0.0", "0.1.2.3", "127.0.0.1", "10.9.8.7", "100.64.0.1", "100.127.255.255",
		"172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "224.0.0.1",
		"239.255.255.250", "240.0.0.1", "255.255.255.255", "::", "::1", "fc00::1",
		"fd12:3456::1", "fe80::1", "febf::1", "ff02::1", "::ffff:127.0.0.1",
		"::ffff:10.0.0.1", "::ffff:169.254.169.254",
	};
	static const char *const pub[] = {
		"1.1.1.1", "8.8.8.8", "100.63.255.255", "100.128.0.0", "172.15.255.255",
		"172.32.0.0", "192.167.1.1", "169.253.1.1", "223.255.255.255", "2001:db8::1",
		"2606:4700::1111", "fec0::1", "::ffff:8.8.8.8", "::2",
	};

	for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++) {
		CU_ASSERT(td_tf_private(priv[i]));
		if (!td_tf_private(priv[i]))
			fprintf(stderr, "not private: %s\n", priv[i]);
	}
	for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++) {
		CU_ASSERT(!td_tf_private(pub[i]));
		if (td_tf_private(pub[i]))
			fprintf(stderr, "private: %s\n", pub[i]);
	}
}

/* ---- generation: rules, ACL order, errors --------------------------------------------------- */

static char td_tf_dir[64];

static void td_tf_write(const char *name, const char *text, char *path, size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/%s", td_tf_dir, name);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static struct td_config *td_tf_cfg(void)
{
	struct td_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	snprintf(cfg->path, sizeof(cfg->path), "%s/td.yaml", td_tf_dir);
	cfg->forward_proxy.on = true;
	cfg->forward_proxy.line = 3;
	cfg->forward_proxy.deny_private_destinations = true;
	snprintf(cfg->forward_proxy.access_log, sizeof(cfg->forward_proxy.access_log), "off");
	return cfg;
}

static void td_tf_sa(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, ip, &s4->sin_addr);
	}
}

static void test_gen_rules(void)
{
	struct td_config *cfg = td_tf_cfg();
	struct td_fp_domain_cfg deny[1] = { { "*.ads.example", 10 } };
	struct td_fp_domain_cfg allow[2] = { { "*.example", 12 }, { "example.org", 13 } };
	struct td_errors errs = { 0 };
	struct sockaddr_storage ss;
	struct td_fp_gen *g;
	char text[256], path[128];

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	/* defaults: loopback clients only, port 443 only, no domain rule */
	g = td_fp_gen_build(cfg, NULL, 1, true, &errs);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g);
	td_tf_sa(&ss, "127.0.0.1", 1);
	CU_ASSERT(td_fp_client_allowed(g, (struct sockaddr *)&ss));
	td_tf_sa(&ss, "::1", 1);
	CU_ASSERT(td_fp_client_allowed(g, (struct sockaddr *)&ss));
	td_tf_sa(&ss, "::ffff:127.0.0.5", 1);
	CU_ASSERT(td_fp_client_allowed(g, (struct sockaddr *)&ss));
	td_tf_sa(&ss, "192.0.2.1", 1);
	CU_ASSERT(!td_fp_client_allowed(g, (struct sockaddr *)&ss));
	CU_ASSERT(td_fp_port_allowed(g, 443));
	CU_ASSERT(!td_fp_port_allowed(g, 22));
	CU_ASSERT_PTR_NULL(td_fp_domain_check(g, "anything.example", false, text, sizeof(text)));
	td_fp_gen_unref(g);

	/* deny wins over allow; allow_domains set denies the rest; file patterns too */
	cfg->forward_proxy.deny_domains = deny;
	cfg->forward_proxy.n_deny_domains = 1;
	cfg->forward_proxy.allow_domains = allow;
	cfg->forward_proxy.n_allow_domains = 2;
	td_tf_write("deny.txt", "# ads\ntracker.example\n\n  *.evil.example  # comment\n", path,
		    sizeof(path));
	snprintf(cfg->forward_proxy.deny_domains_file, sizeof(cfg->forward_proxy.deny_domains_file),
		 "deny.txt");	/* relative to the config's folder */
	cfg->forward_proxy.n_allow_clients = 1;
	cfg->forward_proxy.allow_clients[0] = (struct td_gw_cidr){ .family = AF_INET, .prefix = 24,
								   .addr = { 192, 0, 2 } };
	cfg->forward_proxy.connect_ports[0] = 8443;
	cfg->forward_proxy.n_connect_ports = 1;
	g = td_fp_gen_build(cfg, NULL, 2, true, &errs);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g);
	CU_ASSERT_EQUAL(errs.n, 0);
	CU_ASSERT_STRING_EQUAL(td_fp_domain_check(g, "x.ads.example", false, text, sizeof(text)),
			       "denied by deny_domains: *.ads.example");
	CU_ASSERT_STRING_EQUAL(td_fp_domain_check(g, "tracker.example", false, text, sizeof(text)),
			       "denied by deny_domains: tracker.example");
	CU_ASSERT_STRING_EQUAL(td_fp_domain_check(g, "a.evil.example", false, text, sizeof(text)),
			       "denied by deny_domains: *.evil.example");
	CU_ASSERT_PTR_NULL(td_fp_domain_check(g, "www.example", false, text, sizeof(text)));
	CU_ASSERT_PTR_NULL(td_fp_domain_check(g, "example.org", false, text, sizeof(text)));
	CU_ASSERT_STRING_EQUAL(td_fp_domain_check(g, "example.net", false, text, sizeof(text)),
			       "denied by allow_domains: example.net is not listed");
	CU_ASSERT_PTR_NOT_NULL(td_fp_domain_check(g, "1.2.3.4", true, text, sizeof(text)));
	td_tf_sa(&ss, "192.0.2.77", 1);
	CU_ASSERT(td_fp_client_allowed(g, (struct sockaddr *)&ss));
	td_tf_sa(&ss, "127.0.0.1", 1);
	CU_ASSERT(!td_fp_client_allowed(g, (struct sockaddr *)&ss));
	CU_ASSERT(td_fp_port_allowed(g, 8443));
	CU_ASSERT(!td_fp_port_allowed(g, 443));
	td_fp_gen_unref(g);
	td_errors_free(&errs);
	free(cfg);
}

static void test_gen_errors(void)
{
	struct td_config *cfg = td_tf_cfg();
	struct td_fp_domain_cfg deny[1] = { { "bad pattern!", 7 } };
	struct td_errors errs = { 0 };
	char path[128], want[256];
	struct td_fp_gen *g;
	bool file_err = false, list_err = false, users_err = false;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	td_tf_write("allow.txt", "good.example\n# fine\nnot valid\n", path, sizeof(path));
	snprintf(cfg->forward_proxy.allow_domains_file, sizeof(cfg->forward_proxy.allow_domains_file),
		 "%s", path);
	cfg->forward_proxy.allow_domains_line = 9;
	cfg->forward_proxy.deny_domains = deny;
	cfg->forward_proxy.n_deny_domains = 1;
	cfg->forward_proxy.auth_basic = true;
	cfg->forward_proxy.auth_line = 11;
	snprintf(cfg->forward_proxy.users_file, sizeof(cfg->forward_proxy.users_file),
		 "missing-users");
	g = td_fp_gen_build(cfg, NULL, 1, true, &errs);
	CU_ASSERT_PTR_NULL(g);
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT(errs.n >= 3);
	snprintf(want, sizeof(want), "%s:3:", path);
	for (size_t i = 0; i < errs.n; i++) {
		file_err |= !strncmp(errs.msgs[i], want, strlen(want)) &&
			    strstr(errs.msgs[i], "\"not valid\"");
		list_err |= strstr(errs.msgs[i], "td.yaml:7:") && strstr(errs.msgs[i], "bad pattern");
		users_err |= strstr(errs.msgs[i], "td.yaml:11:") && strstr(errs.msgs[i], "users");
	}
	CU_ASSERT(file_err);
	CU_ASSERT(list_err);
	CU_ASSERT(users_err);
	td_errors_free(&errs);

	/* a missing domain file is reported at the config line that names it */
	memset(&errs, 0, sizeof(errs));
	cfg->forward_proxy.n_deny_domains = 0;
	cfg->forward_proxy.auth_basic = false;
	snprintf(cfg->forward_proxy.allow_domains_file, sizeof(cfg->forward_proxy.allow_domains_file),
		 "nope.txt");
	CU_ASSERT_EQUAL(td_fp_check(cfg, &errs), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(errs.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(errs.msgs[0], "td.yaml:9:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(errs.msgs[0], "nope.txt"));
	td_errors_free(&errs);
	free(cfg);
}

/* ---- SNI ------------------------------------------------------------------------------------ */

/* the first flight of a real OpenSSL client: SSL_connect on memory BIOs */
static size_t td_tf_client_hello(const char *sni, uint8_t *out, size_t size)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	int n = 0;

	if (!ssl || !rb || !wb) {
		BIO_free(rb);
		BIO_free(wb);
		goto out;
	}
	SSL_set_bio(ssl, rb, wb);
	if (sni)
		SSL_set_tlsext_host_name(ssl, sni);
	SSL_set_connect_state(ssl);
	SSL_do_handshake(ssl);	/* wants to read: the hello is in wb */
	n = BIO_read(wb, out, (int)size);
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return n > 0 ? (size_t)n : 0;
}

static void test_sni(void)
{
	uint8_t hello[4096], split[4200];
	char name[256];
	size_t n, hlen;

	n = td_tf_client_hello("WWW.Example.org", hello, sizeof(hello));
	CU_ASSERT_FATAL(n > 100);
	CU_ASSERT_EQUAL(td_fp_sni_parse(hello, n, name, sizeof(name)), 1);
	CU_ASSERT_STRING_EQUAL(name, "www.example.org");
	/* every shorter prefix asks for more bytes */
	for (size_t k = 0; k < n; k += 7)
		CU_ASSERT_EQUAL(td_fp_sni_parse(hello, k, name, sizeof(name)), -EAGAIN);
	/* the same hello split over two handshake records */
	hlen = n - 5;
	memcpy(split, hello, 5);
	split[3] = 0;
	split[4] = 40;
	memcpy(split + 5, hello + 5, 40);
	memcpy(split + 45, hello, 5);
	split[48] = (uint8_t)((hlen - 40) >> 8);
	split[49] = (uint8_t)((hlen - 40) & 0xff);
	memcpy(split + 50, hello + 45, hlen - 40);
	CU_ASSERT_EQUAL(td_fp_sni_parse(split, n + 5, name, sizeof(name)), 1);
	CU_ASSERT_STRING_EQUAL(name, "www.example.org");
	/* no SNI */
	n = td_tf_client_hello(NULL, hello, sizeof(hello));
	CU_ASSERT_FATAL(n > 100);
	CU_ASSERT_EQUAL(td_fp_sni_parse(hello, n, name, sizeof(name)), 0);
	/* not TLS */
	CU_ASSERT_EQUAL(td_fp_sni_parse((const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, name,
					sizeof(name)), -EINVAL);
	/* a corrupt length inside the hello */
	n = td_tf_client_hello("a.example", hello, sizeof(hello));
	hello[5 + 4 + 2 + 32] = 0xff;	/* session id length past the end */
	CU_ASSERT_EQUAL(td_fp_sni_parse(hello, n, name, sizeof(name)), -EINVAL);
}

/* ---- access log, Cache-Status, metrics ---------------------------------------------------------- */

static void test_log_lines(void)
{
	struct td_fp_log_rec r = {
		.time_ms = 1700000000123ull, .elapsed_ms = 45, .client = "127.0.0.1",
		.code = TD_FP_C_MISS, .status = 200, .bytes = 1234, .method = "GET", .method_len = 3,
		.url = "http://example.com/a b", .url_len = 22, .peer = "93.184.216.34",
		.ctype = "text/html", .ctype_len = 9, .version = 11,
	};
	char line[512];
	size_t n;

	n = td_fp_log_format(TD_FP_LOG_SQUID, &r, line, sizeof(line));
	CU_ASSERT_EQUAL(n, strlen(line));
	CU_ASSERT_STRING_EQUAL(line, "1700000000.123     45 127.0.0.1 TCP_MISS/200 1234 GET "
			       "http://example.com/a%20b - HIER_DIRECT/93.184.216.34 text/html\n");
	r.code = TD_FP_C_DENIED;
	r.status = 403;
	r.peer = NULL;
	r.ctype = NULL;
	r.ident = "alice";
	td_fp_log_format(TD_FP_LOG_SQUID, &r, line, sizeof(line));
	CU_ASSERT_STRING_EQUAL(line, "1700000000.123     45 127.0.0.1 TCP_DENIED/403 1234 GET "
			       "http://example.com/a%20b alice HIER_NONE/- -\n");
	r.code = TD_FP_C_TUNNEL;
	r.status = 200;
	r.method = "CONNECT";
	r.method_len = 7;
	r.url = "example.com:443";
	r.url_len = 15;
	r.ident = NULL;
	r.peer = "2001:db8::1";
	td_fp_log_format(TD_FP_LOG_SQUID, &r, line, sizeof(line));
	CU_ASSERT_STRING_EQUAL(line, "1700000000.123     45 127.0.0.1 TCP_TUNNEL/200 1234 CONNECT "
			       "example.com:443 - HIER_DIRECT/2001:db8::1 -\n");
	CU_ASSERT_STRING_EQUAL(td_fp_code_name(TD_FP_C_REFRESH_UNMODIFIED),
			       "TCP_REFRESH_UNMODIFIED");
	CU_ASSERT_STRING_EQUAL(td_fp_code_name(TD_FP_C_HIT), "TCP_HIT");
	/* combined */
	r.ua = "curl/8";
	r.ua_len = 6;
	n = td_fp_log_format(TD_FP_LOG_COMBINED, &r, line, sizeof(line));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "127.0.0.1 - - ["));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "] \"CONNECT example.com:443 HTTP/1.1\" 200 1234 \"-\" "
				      "\"curl/8\"\n"));
	/* truncation reports the length needed */
	CU_ASSERT(td_fp_log_format(TD_FP_LOG_SQUID, &r, line, 10) > 10);
	CU_ASSERT_EQUAL(strlen(line), 9);
}

static void test_cache_status(void)
{
	struct td_cache_status hit = { .hit = true, .has_ttl = true, .ttl = 42 };
	struct td_cache_status miss = { .fwd = TD_CACHE_FWD_MISS };
	struct td_cache_status reval = { .fwd = TD_CACHE_FWD_STALE, .fwd_status = 304 };
	struct td_cache_status coll = { .hit = true, .has_ttl = true, .ttl = 5, .collapsed = true };
	char out[128];

	CU_ASSERT(td_cache_status_format("td", &hit, out, sizeof(out)) > 0);
	CU_ASSERT_STRING_EQUAL(out, "td; hit; ttl=42");
	CU_ASSERT(td_cache_status_format("td", &miss, out, sizeof(out)) > 0);
	CU_ASSERT_STRING_EQUAL(out, "td; fwd=miss");
	CU_ASSERT(td_cache_status_format("td", &reval, out, sizeof(out)) > 0);
	CU_ASSERT_STRING_EQUAL(out, "td; fwd=stale; fwd-status=304");
	CU_ASSERT(td_cache_status_format("td", &coll, out, sizeof(out)) > 0);
	CU_ASSERT_STRING_EQUAL(out, "td; hit; ttl=5; collapsed");
}

static void test_metrics_text(void)
{
	struct td_fp_wstat *w = aligned_alloc(64, 2 * sizeof(*w));
	struct td_metrics_buf b;

	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	memset(w, 0, 2 * sizeof(*w));
	w[0].req[TD_FP_M_GET][1] = 3;
	w[1].req[TD_FP_M_GET][1] = 4;
	w[1].denied[TD_FP_R_PRIVATE] = 2;
	w[0].cache_hits = 9;
	td_metrics_buf_init(&b);
	CU_ASSERT_EQUAL(td_fp_metrics_render(w, 2, NULL, NULL, &b), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "td_fp_requests_total{method=\"GET\",class=\"2xx\"} 7\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "td_fp_denied_total{rule=\"private\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "td_fp_cache_hits_total 9\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "# TYPE td_fp_tunnels_open gauge\n"));
	td_metrics_buf_free(&b);
	free(w);
}

/* ---- live: the proxy on loopback against an origin thread ---------------------------------- */

struct td_tf_origin {
	int lfd;
	uint16_t port;
	pthread_mutex_t mu;
	int hits;		/* requests served */
	int conns;		/* connection threads running (atomic) */
	char last[4096];	/* last request head */
	volatile bool stop;
	pthread_t th;
};

struct td_tf_oconn {
	struct td_tf_origin *o;
	int fd;
};

/* one keep-alive connection of the origin (the proxy pools them: one thread each) */
static void *td_tf_origin_conn(void *arg)
{
	struct td_tf_oconn *oc = arg;
	struct td_tf_origin *o = oc->o;
	char buf[4096], resp[512];
	size_t len = 0;
	int fd = oc->fd, n;

	free(oc);
	for (;;) {
		while (!memmem(buf, len, "\r\n\r\n", 4) && len < sizeof(buf) - 1) {
			n = (int)read(fd, buf + len, sizeof(buf) - 1 - len);
			if (n <= 0)
				goto closed;
			len += (size_t)n;
		}
		buf[len] = '\0';
		pthread_mutex_lock(&o->mu);
		snprintf(o->last, sizeof(o->last), "%s", buf);
		o->hits++;
		pthread_mutex_unlock(&o->mu);
		if (strstr(buf, "If-None-Match: \"v1\""))
			n = snprintf(resp, sizeof(resp), "HTTP/1.1 304 Not Modified\r\n"
				     "ETag: \"v1\"\r\nCache-Control: max-age=0\r\n\r\n");
		else if (strstr(buf, "GET /nocache"))
			n = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nCache-Control: "
				     "no-store\r\nContent-Length: 2\r\n\r\nns");
		else if (strstr(buf, "GET /stale"))
			n = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\n"
				     "Cache-Control: max-age=0\r\nContent-Type: text/plain\r\n"
				     "Content-Length: 5\r\n\r\nstale");
		else
			n = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nCache-Control: "
				     "max-age=60\r\nContent-Type: text/plain\r\n"
				     "Content-Length: 5\r\n\r\nhello");
		if (write(fd, resp, (size_t)n) != n)
			break;
		len = 0;
	}
closed:
	close(fd);
	__atomic_sub_fetch(&o->conns, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void *td_tf_origin_run(void *arg)
{
	struct td_tf_origin *o = arg;

	while (!o->stop) {
		struct pollfd p = { .fd = o->lfd, .events = POLLIN };
		struct timeval tv = { .tv_sec = 1 };
		struct td_tf_oconn *oc;
		pthread_t th;
		int fd;

		if (poll(&p, 1, 100) <= 0)
			continue;
		fd = accept(o->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		oc = malloc(sizeof(*oc));
		if (!oc) {
			close(fd);
			continue;
		}
		*oc = (struct td_tf_oconn){ o, fd };
		__atomic_add_fetch(&o->conns, 1, __ATOMIC_RELAXED);
		if (pthread_create(&th, NULL, td_tf_origin_conn, oc)) {
			__atomic_sub_fetch(&o->conns, 1, __ATOMIC_RELAXED);
			close(fd);
			free(oc);
			continue;
		}
		pthread_detach(th);
	}
	return NULL;
}

static int td_tf_origin_start(struct td_tf_origin *o)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->mu, NULL);
	o->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (o->lfd < 0 || bind(o->lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(o->lfd, 16) || getsockname(o->lfd, (struct sockaddr *)&a, &al))
		return -errno;
	o->port = ntohs(a.sin_port);
	return pthread_create(&o->th, NULL, td_tf_origin_run, o) ? -EAGAIN : 0;
}

static void td_tf_origin_stop(struct td_tf_origin *o)
{
	o->stop = true;
	pthread_join(o->th, NULL);
	/* connection threads end within their 1 s read timeout at most */
	while (__atomic_load_n(&o->conns, __ATOMIC_RELAXED))
		usleep(10000);
	close(o->lfd);
}

/* one request over a new connection: the whole response (until close) into out */
static int td_tf_req(uint16_t port, const char *req, char *out, size_t size)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 5 };
	size_t len = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), n;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return -errno;
	}
	while (len < size - 1 && (n = (int)read(fd, out + len, size - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(fd);
	return (int)len;
}

/* CONNECT head, wait for its answer, then the tunneled bytes; everything read into out */
static int td_tf_tunnel(uint16_t port, const char *head, const char *inner, char *out,
			size_t size)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 5 };
	size_t len = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), n;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    write(fd, head, strlen(head)) != (ssize_t)strlen(head)) {
		close(fd);
		return -errno;
	}
	while (!memmem(out, len, "\r\n\r\n", 4) && len < size - 1 &&
	       (n = (int)read(fd, out + len, size - 1 - len)) > 0)
		len += (size_t)n;
	if (write(fd, inner, strlen(inner)) != (ssize_t)strlen(inner)) {
		close(fd);
		return -errno;
	}
	while (len < size - 1 && (n = (int)read(fd, out + len, size - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(fd);
	return (int)len;
}

static uint16_t td_tf_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t p = 0;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &al))
		p = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return p;
}

static void test_live(void)
{
	struct td_config *cfg = td_tf_cfg();
	struct td_errors errs = { 0 };
	struct td_tf_origin o;
	struct td_metrics_buf mb;
	char req[512], resp[8192], logp[128];
	struct td_fp *fp;
	uint16_t pport = td_tf_free_port();
	FILE *lf;
	char *st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(td_tf_origin_start(&o), 0);
	snprintf(cfg->forward_proxy.listen[0].text, sizeof(cfg->forward_proxy.listen[0].text),
		 "127.0.0.1:%u", pport);
	td_tf_sa(&cfg->forward_proxy.listen[0].ss, "127.0.0.1", pport);
	cfg->forward_proxy.listen[0].sslen = sizeof(struct sockaddr_in);
	cfg->forward_proxy.n_listen = 1;
	cfg->forward_proxy.workers = 2;
	cfg->forward_proxy.deny_private_destinations = false;	/* the origin is on loopback */
	cfg->forward_proxy.cache_on = true;
	cfg->forward_proxy.dns_timeout_ms = 2000;
	cfg->forward_proxy.dns_cache_ttl_ms = 1000;
	cfg->forward_proxy.connect_ports[0] = o.port;
	cfg->forward_proxy.n_connect_ports = 1;
	snprintf(logp, sizeof(logp), "%s/access.log", td_tf_dir);
	snprintf(cfg->forward_proxy.access_log, sizeof(cfg->forward_proxy.access_log), "%s", logp);
	static struct td_fp_domain_cfg deny[1] = { { "*.ads.example", 4 } };
	cfg->forward_proxy.deny_domains = deny;
	cfg->forward_proxy.n_deny_domains = 1;
	fp = td_fp_new(cfg, &errs);
	CU_ASSERT_PTR_NOT_NULL(fp);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	if (!fp)
		goto out;

	/* a miss: forwarded with an origin-form target, Host rewritten, Via added, stored */
	snprintf(req, sizeof(req), "GET http://127.0.0.1:%u/a HTTP/1.1\r\nHost: wrong\r\n"
		 "Proxy-Connection: keep-alive\r\nConnection: close\r\n\r\n", o.port);
	CU_ASSERT(td_tf_req(pport, req, resp, sizeof(resp)) > 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "HTTP/1.1 200"));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "hello"));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "Cache-Status: td; fwd=miss"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.last, "GET /a HTTP/1.1\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.last, "Via: 1.1 td\r\n"));
	CU_ASSERT_PTR_NULL(strstr(o.last, "Host: wrong"));
	CU_ASSERT_PTR_NULL(strcasestr(o.last, "Proxy-Connection"));
	snprintf(req, sizeof(req), "Host: 127.0.0.1:%u\r\n", o.port);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.last, req));
	CU_ASSERT_EQUAL(o.hits, 1);
	/* a hit: served from the store, Age and Cache-Status hit */
	snprintf(req, sizeof(req), "GET http://127.0.0.1:%u/a HTTP/1.1\r\nHost: x\r\n"
		 "Connection: close\r\n\r\n", o.port);
	CU_ASSERT(td_tf_req(pport, req, resp, sizeof(resp)) > 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "HTTP/1.1 200"));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "Cache-Status: td; hit"));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "Age: "));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "hello"));
	CU_ASSERT_EQUAL(o.hits, 1);
	/* no-store: never a hit */
	snprintf(req, sizeof(req), "GET http://127.0.0.1:%u/nocache HTTP/1.1\r\nHost: x\r\n"
		 "Connection: close\r\n\r\n", o.port);
	td_tf_req(pport, req, resp, sizeof(resp));
	td_tf_req(pport, req, resp, sizeof(resp));
	CU_ASSERT_EQUAL(o.hits, 3);
	if (o.hits != 3)
		fprintf(stderr, "hits %d resp %s\n", o.hits, resp);
	/* revalidation: stored with max-age=0 and an ETag, the 304 becomes a 200 from the store */
	snprintf(req, sizeof(req), "GET http://127.0.0.1:%u/stale HTTP/1.1\r\nHost: x\r\n"
		 "Connection: close\r\n\r\n", o.port);
	td_tf_req(pport, req, resp, sizeof(resp));
	CU_ASSERT_EQUAL(td_tf_req(pport, req, resp, sizeof(resp)) > 0, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "HTTP/1.1 200"));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "fwd=stale; fwd-status=304"));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "stale"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.last, "If-None-Match: \"v1\""));
	if (!strstr(o.last, "If-None-Match: \"v1\""))
		fprintf(stderr, "last %s\nresp %s\n", o.last, resp);
	CU_ASSERT_EQUAL(o.hits, 5);
	/* denials */
	td_tf_req(pport, "GET http://x.ads.example/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		  resp, sizeof(resp));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "HTTP/1.1 403"));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "denied by deny_domains: *.ads.example"));
	td_tf_req(pport, "GET /origin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", resp,
		  sizeof(resp));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "HTTP/1.1 400"));
	td_tf_req(pport, "GET ftp://x.example/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		  resp, sizeof(resp));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "HTTP/1.1 400"));
	td_tf_req(pport, "CONNECT example.com:22 HTTP/1.1\r\nHost: example.com:22\r\n\r\n", resp,
		  sizeof(resp));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "HTTP/1.1 403"));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "denied by connect_ports: port 22"));
	td_tf_req(pport, "GET http://no-such-host.invalid/ HTTP/1.1\r\nHost: x\r\n"
		  "Connection: close\r\n\r\n", resp, sizeof(resp));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "HTTP/1.1 502"));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "DNS lookup of no-such-host.invalid failed"));
	/* CONNECT to an allowed port: a tunnel to the origin carrying a request */
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: x\r\n\r\n", o.port);
	CU_ASSERT(td_tf_tunnel(pport, req, "GET /t HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
			       resp, sizeof(resp)) > 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "HTTP/1.1 200 Connection established"));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "hello"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.last, "GET /t HTTP/1.1"));

	td_metrics_buf_init(&mb);
	CU_ASSERT_EQUAL(td_fp_metrics(fp, &mb), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(mb.data, "td_fp_cache_hits_total 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb.data, "td_fp_denied_total{rule=\"domain\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb.data, "td_fp_denied_total{rule=\"port\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb.data, "td_fp_tunnels_total 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(mb.data, "td_fp_dns_failures_total 1\n"));
	td_metrics_buf_free(&mb);
	st = td_fp_status_json(fp);
	CU_ASSERT_PTR_NOT_NULL(st && strstr(st, "\"objects\":"));
	free(st);
	/* a reload keeps the cache: still a hit */
	CU_ASSERT_EQUAL(td_fp_reload(fp, cfg, &errs), 0);
	snprintf(req, sizeof(req), "GET http://127.0.0.1:%u/a HTTP/1.1\r\nHost: x\r\n"
		 "Connection: close\r\n\r\n", o.port);
	td_tf_req(pport, req, resp, sizeof(resp));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "Cache-Status: td; hit"));
	td_fp_free(fp, 100);
	/* the access log, Squid format */
	lf = fopen(logp, "r");
	CU_ASSERT_PTR_NOT_NULL(lf);
	if (lf) {
		char line[1024];
		bool miss = false, hit = false, denied = false, tunnel = false;

		while (fgets(line, sizeof(line), lf)) {
			miss |= strstr(line, " TCP_MISS/200 ") && strstr(line, "HIER_DIRECT/127.0.0.1");
			hit |= strstr(line, " TCP_HIT/200 ") && strstr(line, " text/plain\n");
			denied |= !!strstr(line, " TCP_DENIED/403 ");
			tunnel |= strstr(line, " TCP_TUNNEL/200 ") && strstr(line, " CONNECT ");
		}
		fclose(lf);
		CU_ASSERT(miss);
		CU_ASSERT(hit);
		CU_ASSERT(denied);
		CU_ASSERT(tunnel);
	}
out:
	td_tf_origin_stop(&o);
	td_errors_free(&errs);
	free(cfg);
}

static int td_tf_init(void)
{
	snprintf(td_tf_dir, sizeof(td_tf_dir), "/tmp/td_fp_unit.XXXXXX");
	return mkdtemp(td_tf_dir) ? 0 : -1;
}

static int td_tf_clean(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", td_tf_dir);
	return system(cmd) == 0 ? 0 : -1;
}

int td_suite_fproxy(void)
{
	CU_pSuite s = CU_add_suite("forward proxy", td_tf_init, td_tf_clean);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "absolute-form and CONNECT targets", test_uri) ||
	    !CU_add_test(s, "domain patterns", test_domains) ||
	    !CU_add_test(s, "private destinations (v4, v6, mapped)", test_private) ||
	    !CU_add_test(s, "generation rules and ACL order", test_gen_rules) ||
	    !CU_add_test(s, "generation errors with FILE:LINE", test_gen_errors) ||
	    !CU_add_test(s, "SNI of a real ClientHello", test_sni) ||
	    !CU_add_test(s, "access log lines", test_log_lines) ||
	    !CU_add_test(s, "Cache-Status values", test_cache_status) ||
	    !CU_add_test(s, "metrics text", test_metrics_text) ||
	    !CU_add_test(s, "live proxy on loopback", test_live))
		return CU_get_error();
	return 0;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for the forward_proxy: config section: full example, defaults, bad configs. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/CUnit.h>

#include "config.h"
#include "unit.h"

/* every key; line numbers are checked below */
static const char fp_full[] =
	"forward_proxy:\n"                                                            /* 1 */
	"  listen: [ \"127.0.0.1:3128\", \"[::1]:3128\" ]\n"                          /* 2 */
	"  workers: 2\n"                                                              /* 3 */
	"  allow_clients: [ 127.0.0.0/8, \"::1/128\", 10.0.0.0/8, 192.0.2.7 ]\n"      /* 4 */
	"  connect_ports: [ 443, 8443, 563 ]\n"                                       /* 5 */
	"  deny_domains: [ blocked.example, \"*.ADS.example\", my_host.corp ]\n"      /* 6 */
	"  allow_domains: { file: lists/allow.txt }\n"                                /* 7 */
	"  deny_private_destinations: false\n"                                        /* 8 */
	"  anonymize: true\n"                                                         /* 9 */
	"  auth: { basic: { users_file: users.htpasswd, realm: office } }\n"         /* 10 */
	"  cache: { memory: 128MiB, max_object: 512KiB }\n"                           /* 11 */
	"  access_log: { path: /var/log/td/proxy.log, format: combined }\n"          /* 12 */
	"  connect_timeout: 5s\n"                                                     /* 13 */
	"  response_timeout: 30s\n"                                                   /* 14 */
	"  tunnel_idle_timeout: 1h\n"                                                 /* 15 */
	"  idle_timeout: 30s\n"                                                       /* 16 */
	"  header_timeout: 2500ms\n"                                                  /* 17 */
	"  dns_timeout: 2s\n"                                                         /* 18 */
	"  dns_cache_ttl: 0s\n"                                                       /* 19 */
	"  max_body_size: 10MiB\n"                                                    /* 20 */
	"  max_conns: 500\n"                                                          /* 21 */
	"  transparent:\n"                                                            /* 22 */
	"    listen: \"127.0.0.1:3129\"\n"                                            /* 23 */
	"    tls_listen: \"[::1]:3130\"\n"                                            /* 24 */
	"    cgroups: [ apps/web, \"system.slice/x.service\" ]\n"                     /* 25 */
	"    ports: [ 80, 443, 8080, 8443 ]\n";                                       /* 26 */

/* the issue's example as written */
static const char fp_issue[] =
	"forward_proxy:\n"
	"  listen: [ \"127.0.0.1:3128\" ]\n"
	"  allow_clients: [ 127.0.0.0/8, \"::1/128\" ]     # default: loopback only\n"
	"  connect_ports: [ 443 ]                         # default: 443 only\n"
	"  deny_domains: [ blocked.example, \"*.ads.example\" ]   # or a file\n"
	"  allow_domains: []                              # when set, everything else is denied\n"
	"  deny_private_destinations: true\n"
	"  anonymize: true\n"
	"  auth: { basic: { users_file: users.htpasswd } }   # Proxy-Authorization, 407\n"
	"  cache: { memory: 64MiB, max_object: 8MiB }\n"
	"  access_log: /var/log/td/proxy.log              # Squid native format by default\n";

static void fp_print(const struct td_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		printf("\n    unexpected: %s", errs->msgs[i]);
}

static const char *fp_cwd(void)
{
	static char cwd[PATH_MAX];

	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), "?");
	return cwd;
}

static bool fp_cidr_is(const struct td_gw_cidr *c, int family, const char *addr, int prefix)
{
	uint8_t want[16] = { 0 };

	if (inet_pton(family, addr, want) != 1)
		return false;
	return c->family == family && c->prefix == prefix && !memcmp(c->addr, want, 16);
}

static void test_fp_full(void)
{
	struct td_errors errs = { 0 };
	struct td_config cfg;
	const struct td_fp_cfg *f = &cfg.forward_proxy;
	const struct sockaddr_in *s4;
	const struct sockaddr_in6 *s6;
	char want[PATH_MAX + 64];
	int err;

	err = td_config_load_buf("/etc/td/td.yaml", fp_full, strlen(fp_full), &cfg, &errs);
	fp_print(&errs);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	CU_ASSERT_TRUE(f->on);
	CU_ASSERT_EQUAL(f->line, 2);   /* the mapping starts at its first key */

	CU_ASSERT_EQUAL_FATAL(f->n_listen, 2);
	CU_ASSERT_STRING_EQUAL(f->listen[0].text, "127.0.0.1:3128");
	s4 = (const struct sockaddr_in *)&f->listen[0].ss;
	CU_ASSERT_EQUAL(s4->sin_family, AF_INET);
	CU_ASSERT_EQUAL(s4->sin_port, htons(3128));
	CU_ASSERT_EQUAL(s4->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	CU_ASSERT_EQUAL(f->listen[0].line, 2);
	s6 = (const struct sockaddr_in6 *)&f->listen[1].ss;
	CU_ASSERT_EQUAL(s6->sin6_family, AF_INET6);
	CU_ASSERT_TRUE(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
	CU_ASSERT_EQUAL(f->workers, 2);

	CU_ASSERT_EQUAL_FATAL(f->n_allow_clients, 4);
	CU_ASSERT_TRUE(fp_cidr_is(&f->allow_clients[0], AF_INET, "127.0.0.0", 8));
	CU_ASSERT_TRUE(fp_cidr_is(&f->allow_clients[1], AF_INET6, "::1", 128));
	CU_ASSERT_TRUE(fp_cidr_is(&f->allow_clients[2], AF_INET, "10.0.0.0", 8));
	CU_ASSERT_TRUE(fp_cidr_is(&f->allow_clients[3], AF_INET, "192.0.2.7", 32));
	CU_ASSERT_EQUAL(f->allow_clients[3].line, 4);

	CU_ASSERT_EQUAL_FATAL(f->n_connect_ports, 3);
	CU_ASSERT_EQUAL(f->connect_ports[0], 443);
	CU_ASSERT_EQUAL(f->connect_ports[1], 8443);
	CU_ASSERT_EQUAL(f->connect_ports[2], 563);

	CU_ASSERT_EQUAL_FATAL(f->n_deny_domains, 3);
	CU_ASSERT_STRING_EQUAL(f->deny_domains[0].pattern, "blocked.example");
	CU_ASSERT_STRING_EQUAL(f->deny_domains[1].pattern, "*.ads.example");   /* lower-cased */
	CU_ASSERT_STRING_EQUAL(f->deny_domains[2].pattern, "my_host.corp");
	CU_ASSERT_EQUAL(f->deny_domains[1].line, 6);
	CU_ASSERT_STRING_EQUAL(f->deny_domains_file, "");
	CU_ASSERT_EQUAL(f->deny_domains_line, 6);
	CU_ASSERT_EQUAL(f->n_allow_domains, 0);
	CU_ASSERT_PTR_NULL(f->allow_domains);
	CU_ASSERT_STRING_EQUAL(f->allow_domains_file, "/etc/td/lists/allow.txt");
	CU_ASSERT_EQUAL(f->allow_domains_line, 7);

	CU_ASSERT_FALSE(f->deny_private_destinations);
	CU_ASSERT_TRUE(f->anonymize);
	CU_ASSERT_TRUE(f->auth_basic);
	CU_ASSERT_STRING_EQUAL(f->users_file, "/etc/td/users.htpasswd");
	CU_ASSERT_STRING_EQUAL(f->realm, "office");
	CU_ASSERT_EQUAL(f->auth_line, 10);
	CU_ASSERT_TRUE(f->cache_on);
	CU_ASSERT_EQUAL(f->cache_memory, 128ull << 20);
	CU_ASSERT_EQUAL(f->cache_max_object, 512ull << 10);
	CU_ASSERT_EQUAL(f->cache_line, 11);
	CU_ASSERT_STRING_EQUAL(f->access_log, "/var/log/td/proxy.log");
	CU_ASSERT_EQUAL(f->access_log_format, TD_FP_LOG_COMBINED);

	CU_ASSERT_EQUAL(f->connect_timeout_ms, 5000);
	CU_ASSERT_EQUAL(f->response_timeout_ms, 30000);
	CU_ASSERT_EQUAL(f->tunnel_idle_timeout_ms, 3600000);
	CU_ASSERT_EQUAL(f->idle_timeout_ms, 30000);
	CU_ASSERT_EQUAL(f->header_timeout_ms, 2500);
	CU_ASSERT_EQUAL(f->dns_timeout_ms, 2000);
	CU_ASSERT_EQUAL(f->dns_cache_ttl_ms, 0);
	CU_ASSERT_EQUAL(f->max_body_size, 10ull << 20);
	CU_ASSERT_EQUAL(f->max_conns, 500);

	CU_ASSERT_TRUE(f->transparent_on);
	CU_ASSERT_EQUAL(f->transparent_line, 23);
	CU_ASSERT_STRING_EQUAL(f->transparent_listen.text, "127.0.0.1:3129");
	CU_ASSERT_EQUAL(f->transparent_listen.line, 23);
	CU_ASSERT_STRING_EQUAL(f->transparent_tls_listen.text, "[::1]:3130");
	CU_ASSERT_EQUAL(f->transparent_tls_listen.sslen, sizeof(struct sockaddr_in6));
	CU_ASSERT_EQUAL_FATAL(f->n_transparent_cgroups, 2);
	CU_ASSERT_STRING_EQUAL(f->transparent_cgroups[0], "apps/web");
	CU_ASSERT_STRING_EQUAL(f->transparent_cgroups[1], "system.slice/x.service");
	CU_ASSERT_EQUAL_FATAL(f->n_transparent_ports, 4);
	CU_ASSERT_EQUAL(f->transparent_ports[2], 8080);
	CU_ASSERT_FALSE(td_fp_port_is_tls(8080));
	CU_ASSERT_TRUE(td_fp_port_is_tls(f->transparent_ports[3]));

	td_config_free(&cfg);
	CU_ASSERT_FALSE(cfg.forward_proxy.on);
	CU_ASSERT_PTR_NULL(cfg.forward_proxy.deny_domains);

	/* relative config path: files made absolute against cwd/dir */
	err = td_config_load_buf("conf/td.yaml", fp_full, strlen(fp_full), &cfg, &errs);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	snprintf(want, sizeof(want), "%s/conf/users.htpasswd", fp_cwd());
	CU_ASSERT_STRING_EQUAL(f->users_file, want);
	snprintf(want, sizeof(want), "%s/conf/lists/allow.txt", fp_cwd());
	CU_ASSERT_STRING_EQUAL(f->allow_domains_file, want);
	td_config_free(&cfg);

	/* the issue's example */
	err = td_config_load_buf("/etc/td/td.yaml", fp_issue, strlen(fp_issue), &cfg, &errs);
	fp_print(&errs);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	CU_ASSERT_EQUAL(f->n_listen, 1);
	CU_ASSERT_EQUAL(f->n_allow_clients, 2);
	CU_ASSERT_EQUAL(f->n_connect_ports, 1);
	CU_ASSERT_EQUAL(f->n_deny_domains, 2);
	CU_ASSERT_EQUAL(f->n_allow_domains, 0);   /* [] = not set: nothing else denied */
	CU_ASSERT_STRING_EQUAL(f->allow_domains_file, "");
	CU_ASSERT_TRUE(f->deny_private_destinations);
	CU_ASSERT_TRUE(f->anonymize);
	CU_ASSERT_TRUE(f->auth_basic);
	CU_ASSERT_STRING_EQUAL(f->users_file, "/etc/td/users.htpasswd");
	CU_ASSERT_STRING_EQUAL(f->realm, "td");
	CU_ASSERT_EQUAL(f->cache_memory, 64ull << 20);
	CU_ASSERT_EQUAL(f->cache_max_object, 8ull << 20);
	CU_ASSERT_STRING_EQUAL(f->access_log, "/var/log/td/proxy.log");
	CU_ASSERT_EQUAL(f->access_log_format, TD_FP_LOG_SQUID);
	CU_ASSERT_FALSE(f->transparent_on);
	td_config_free(&cfg);
	CU_ASSERT_EQUAL(errs.n, 0);
	td_errors_free(&errs);
}

static void test_fp_defaults(void)
{
	static const char none[] = "node:\n  bpffs: /sys/fs/bpf/x\n";
	static const char min[] = "forward_proxy:\n  listen: \"0.0.0.0:3128\"\n";
	static const char more[] =
		"forward_proxy:\n"
		"  listen: \"127.0.0.1:3128\"\n"
		"  deny_domains: ~\n"
		"  auth: { basic: { users_file: /etc/td/u } }\n"
		"  cache: {}\n"
		"  access_log: { format: combined }\n"
		"  transparent: { tls_listen: \"127.0.0.2:3130\", cgroups: [ a ],\n"
		"                 ports: [ 443, 8443 ] }\n";
	static const char http_only[] =
		"forward_proxy:\n"
		"  listen: \"127.0.0.1:3128\"\n"
		"  access_log: \"off\"\n"
		"  transparent: { listen: \"127.0.0.1:3129\", cgroups: [ a/b/c ],\n"
		"                 ports: [ 80, 8080 ] }\n";
	static const char both[] =
		"forward_proxy:\n"
		"  listen: \"127.0.0.1:3128\"\n"
		"  transparent:\n"
		"    listen: \"127.0.0.1:3129\"\n"
		"    tls_listen: \"127.0.0.1:3130\"\n"
		"    cgroups: [ web ]\n";
	struct td_errors errs = { 0 };
	struct td_config cfg;
	const struct td_fp_cfg *f = &cfg.forward_proxy;

	CU_ASSERT_EQUAL_FATAL(td_config_load_buf("n.yaml", none, strlen(none), &cfg, &errs), 0);
	CU_ASSERT_FALSE(f->on);
	CU_ASSERT_EQUAL(f->n_listen, 0);
	td_config_free(&cfg);

	CU_ASSERT_EQUAL_FATAL(td_config_load_buf("m.yaml", min, strlen(min), &cfg, &errs), 0);
	CU_ASSERT_TRUE(f->on);
	CU_ASSERT_EQUAL(f->n_listen, 1);
	CU_ASSERT_EQUAL(f->workers, 0);
	CU_ASSERT_EQUAL_FATAL(f->n_allow_clients, 2);
	CU_ASSERT_TRUE(fp_cidr_is(&f->allow_clients[0], AF_INET, "127.0.0.0", 8));
	CU_ASSERT_TRUE(fp_cidr_is(&f->allow_clients[1], AF_INET6, "::1", 128));
	CU_ASSERT_EQUAL_FATAL(f->n_connect_ports, 1);
	CU_ASSERT_EQUAL(f->connect_ports[0], 443);
	CU_ASSERT_EQUAL(f->n_deny_domains, 0);
	CU_ASSERT_EQUAL(f->n_allow_domains, 0);
	CU_ASSERT_STRING_EQUAL(f->deny_domains_file, "");
	CU_ASSERT_STRING_EQUAL(f->allow_domains_file, "");
	CU_ASSERT_TRUE(f->deny_private_destinations);
	CU_ASSERT_FALSE(f->anonymize);
	CU_ASSERT_FALSE(f->auth_basic);
	CU_ASSERT_FALSE(f->cache_on);
	CU_ASSERT_STRING_EQUAL(f->access_log, "stdout");
	CU_ASSERT_EQUAL(f->access_log_format, TD_FP_LOG_SQUID);
	CU_ASSERT_EQUAL(f->connect_timeout_ms, 10000);
	CU_ASSERT_EQUAL(f->response_timeout_ms, 60000);
	CU_ASSERT_EQUAL(f->tunnel_idle_timeout_ms, 300000);
	CU_ASSERT_EQUAL(f->idle_timeout_ms, 60000);
	CU_ASSERT_EQUAL(f->header_timeout_ms, 10000);
	CU_ASSERT_EQUAL(f->dns_timeout_ms, 5000);
	CU_ASSERT_EQUAL(f->dns_cache_ttl_ms, 30000);
	CU_ASSERT_EQUAL(f->max_body_size, 0);
	CU_ASSERT_EQUAL(f->max_conns, 10000);
	CU_ASSERT_FALSE(f->transparent_on);
	td_config_free(&cfg);

	CU_ASSERT_EQUAL_FATAL(td_config_load_buf("m.yaml", more, strlen(more), &cfg, &errs), 0);
	CU_ASSERT_EQUAL(f->n_deny_domains, 0);
	CU_ASSERT_TRUE(f->auth_basic);
	CU_ASSERT_STRING_EQUAL(f->realm, "td");
	CU_ASSERT_TRUE(f->cache_on);
	CU_ASSERT_EQUAL(f->cache_memory, 64ull << 20);
	CU_ASSERT_EQUAL(f->cache_max_object, 8ull << 20);
	CU_ASSERT_STRING_EQUAL(f->access_log, "stdout");
	CU_ASSERT_EQUAL(f->access_log_format, TD_FP_LOG_COMBINED);
	CU_ASSERT_TRUE(f->transparent_on);
	CU_ASSERT_EQUAL(f->transparent_listen.sslen, 0);   /* TLS ports only: not needed */
	CU_ASSERT_STRING_EQUAL(f->transparent_tls_listen.text, "127.0.0.2:3130");
	td_config_free(&cfg);

	CU_ASSERT_EQUAL_FATAL(td_config_load_buf("m.yaml", http_only, strlen(http_only), &cfg,
						 &errs), 0);
	CU_ASSERT_STRING_EQUAL(f->access_log, "off");
	CU_ASSERT_EQUAL(f->transparent_tls_listen.sslen, 0);
	CU_ASSERT_STRING_EQUAL(f->transparent_cgroups[0], "a/b/c");
	CU_ASSERT_EQUAL(f->n_transparent_ports, 2);
	td_config_free(&cfg);

	CU_ASSERT_EQUAL_FATAL(td_config_load_buf("m.yaml", both, strlen(both), &cfg, &errs), 0);
	CU_ASSERT_EQUAL_FATAL(f->n_transparent_ports, 2);   /* default [80, 443] */
	CU_ASSERT_EQUAL(f->transparent_ports[0], 80);
	CU_ASSERT_EQUAL(f->transparent_ports[1], 443);
	CU_ASSERT_EQUAL(f->transparent_line, 4);
	td_config_free(&cfg);
	fp_print(&errs);
	CU_ASSERT_EQUAL(errs.n, 0);
	td_errors_free(&errs);
}

static void test_fp_domain_norm(void)
{
	static const struct { const char *in, *out, *why; } cases[] = {
		{ "Example.COM", "example.com", NULL },
		{ "*.Ads.example", "*.ads.example", NULL },
		{ "localhost", "localhost", NULL },
		{ "a-b_c.x1", "a-b_c.x1", NULL },
		{ "10.0.0.1", "10.0.0.1", NULL },
		{ "", NULL, "empty" },
		{ "example.com.", NULL, "trailing dot" },
		{ ".example.com", NULL, "empty label" },
		{ "a..b", NULL, "empty label" },
		{ "*", NULL, "'*' only" },
		{ "*.", NULL, "trailing dot" },
		{ "*.*.a", NULL, "'*' only" },
		{ "a.*.b", NULL, "'*' only" },
		{ "*a.b", NULL, "'*' only" },
		{ "-a.b", NULL, "start or end with '-'" },
		{ "a-.b", NULL, "start or end with '-'" },
		{ "a b.c", NULL, "invalid character" },
		{ "a.b:443", NULL, "no scheme, port or path" },
		{ "http://a.b", NULL, "no scheme, port or path" },
		{ "[::1]", NULL, "invalid character" },
		{ "*.10.0.0.1", NULL, "not an IP address" },
		{ "*.10.0.0", "*.10.0.0", NULL },
	};
	char out[TD_FP_DOMAIN_LEN], big[300];
	const char *why;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r;

		why = NULL;
		r = td_fp_domain_norm(cases[i].in, out, &why);
		if (cases[i].out) {
			CU_ASSERT_EQUAL(r, 0);
			if (!r)
				CU_ASSERT_STRING_EQUAL(out, cases[i].out);
		} else {
			CU_ASSERT_EQUAL(r, -EINVAL);
			CU_ASSERT_TRUE(why && strstr(why, cases[i].why));
			if (!why || !strstr(why, cases[i].why))
				printf("\n    '%s': %s", cases[i].in, why ? why : "(none)");
		}
	}
	/* labels of 63 pass, 64 fail; 253 characters in all pass, 254 fail */
	memset(big, 'a', 63);
	snprintf(big + 63, sizeof(big) - 63, ".b");
	CU_ASSERT_EQUAL(td_fp_domain_norm(big, out, &why), 0);
	memset(big, 'a', 64);
	snprintf(big + 64, sizeof(big) - 64, ".b");
	CU_ASSERT_EQUAL(td_fp_domain_norm(big, out, &why), -EINVAL);
	for (size_t i = 0; i < 253; i++)
		big[i] = i % 2 ? '.' : 'a';
	big[253] = '\0';
	CU_ASSERT_EQUAL(td_fp_domain_norm(big, out, &why), 0);
	CU_ASSERT_EQUAL(strlen(out), 253);
	snprintf(big + 253, sizeof(big) - 253, "a");
	big[252] = 'a';   /* "...a.aa": 254 characters */
	CU_ASSERT_EQUAL(td_fp_domain_norm(big, out, &why), -EINVAL);
}

/* lines 1..2 of most cases; the key under test is on line 3 */
#define FP_HEAD "forward_proxy:\n  listen: [ \"127.0.0.1:3128\" ]\n"
#define FP_TR(x) FP_HEAD "  transparent: { " x " }\n"
#define L63 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const struct td_bad_cfg fp_bad_cases[] = {
	/* section, listen, workers */
	{ "forward_proxy: [ 1 ]\n", 1, "bad.yaml:1: forward_proxy: expected a mapping", "a list" },
	{ "forward_proxy:\n  workers: 1\n", 1,
	  "bad.yaml:2: forward_proxy: missing required key 'listen'", "127.0.0.1:3128" },
	{ FP_HEAD "  colour: red\n", 1, "bad.yaml:3: forward_proxy: unknown key 'colour'", "" },
	{ FP_HEAD "  listen: [ \"127.0.0.1:1\" ]\n", 1,
	  "bad.yaml:3: forward_proxy: duplicate key 'listen'", "" },
	{ "forward_proxy:\n  listen: [ \"127.0.0.1\" ]\n", 1,
	  "bad.yaml:2: forward_proxy.listen[0]: expected ADDRESS:PORT", "" },
	{ "forward_proxy:\n  listen: [ \"proxy.example:3128\" ]\n", 1,
	  "bad.yaml:2: forward_proxy.listen[0]: expected ADDRESS:PORT", "literal IP" },
	{ "forward_proxy:\n  listen: [ \"127.0.0.1:3128\", \"127.0.0.1:3128\" ]\n", 1,
	  "bad.yaml:2: forward_proxy.listen[1]: duplicate listen endpoint 127.0.0.1:3128", "" },
	{ "forward_proxy:\n  listen: []\n", 1, "bad.yaml:2: forward_proxy.listen: must not be empty",
	  "" },
	{ FP_HEAD "  workers: 300\n", 1,
	  "bad.yaml:3: forward_proxy.workers: 300 is out of range 0..256", "" },
	/* allow_clients */
	{ FP_HEAD "  allow_clients: [ 10.1.2.3/8 ]\n", 1,
	  "bad.yaml:3: forward_proxy.allow_clients[0]: '10.1.2.3/8' has host bits set",
	  "10.0.0.0/8" },
	{ FP_HEAD "  allow_clients: [ \"fd00::1/8\" ]\n", 1,
	  "bad.yaml:3: forward_proxy.allow_clients[0]: 'fd00::1/8' has host bits set", "fd00::/8" },
	{ FP_HEAD "  allow_clients: []\n", 1,
	  "bad.yaml:3: forward_proxy.allow_clients: must not be empty", "0.0.0.0/0" },
	{ FP_HEAD "  allow_clients: [ localhost ]\n", 1,
	  "bad.yaml:3: forward_proxy.allow_clients[0]: expected an IP address or CIDR", "" },
	{ FP_HEAD "  allow_clients: [ 10.0.0.0/33 ]\n", 1,
	  "bad.yaml:3: forward_proxy.allow_clients[0]: expected an IP address or CIDR", "" },
	{ FP_HEAD "  allow_clients:\n    - 127.0.0.0/8\n    - 127.0.0.0/8\n", 1,
	  "bad.yaml:5: forward_proxy.allow_clients[1]: duplicate CIDR '127.0.0.0/8' (first at line 4)",
	  "" },
	{ FP_HEAD "  allow_clients: 127.0.0.0/8\n", 1,
	  "bad.yaml:3: forward_proxy.allow_clients: expected a list", "" },
	/* connect_ports */
	{ FP_HEAD "  connect_ports: [ 0 ]\n", 1,
	  "bad.yaml:3: forward_proxy.connect_ports[0]: 0 is out of range 1..65535", "" },
	{ FP_HEAD "  connect_ports: [ 65536 ]\n", 1,
	  "bad.yaml:3: forward_proxy.connect_ports[0]: 65536 is out of range 1..65535", "" },
	{ FP_HEAD "  connect_ports: [ 443, 443 ]\n", 1,
	  "bad.yaml:3: forward_proxy.connect_ports[1]: duplicate port 443 (first at line 3)", "" },
	{ FP_HEAD "  connect_ports: [ \"443\" ]\n", 1,
	  "bad.yaml:3: forward_proxy.connect_ports[0]: expected an integer", "" },
	{ FP_HEAD "  connect_ports: []\n", 1,
	  "bad.yaml:3: forward_proxy.connect_ports: must not be empty", "[ 443 ]" },
	{ FP_HEAD "  connect_ports: 443\n", 1,
	  "bad.yaml:3: forward_proxy.connect_ports: expected a list", "" },
	/* domains */
	{ FP_HEAD "  deny_domains: [ \"example.com.\" ]\n", 1,
	  "bad.yaml:3: forward_proxy.deny_domains[0]: invalid domain pattern 'example.com.'",
	  "no trailing dot" },
	{ FP_HEAD "  deny_domains: [ \"a.*.example\" ]\n", 1,
	  "bad.yaml:3: forward_proxy.deny_domains[0]: invalid domain pattern", "'*' only as" },
	{ FP_HEAD "  allow_domains: [ \"*example.com\" ]\n", 1,
	  "bad.yaml:3: forward_proxy.allow_domains[0]: invalid domain pattern", "'*' only as" },
	{ FP_HEAD "  deny_domains: [ \"-a.example\" ]\n", 1,
	  "bad.yaml:3: forward_proxy.deny_domains[0]: invalid domain pattern", "'-'" },
	{ FP_HEAD "  deny_domains: [ \"a..example\" ]\n", 1,
	  "bad.yaml:3: forward_proxy.deny_domains[0]: invalid domain pattern", "empty label" },
	{ FP_HEAD "  deny_domains: [ \"example.com:443\" ]\n", 1,
	  "bad.yaml:3: forward_proxy.deny_domains[0]: invalid domain pattern", "no scheme, port" },
	{ FP_HEAD "  deny_domains: [ " L63 "a.example ]\n", 1,
	  "bad.yaml:3: forward_proxy.deny_domains[0]: invalid domain pattern", "63 characters" },
	{ FP_HEAD "  deny_domains: [ \"a\\0b.example\" ]\n", 1,
	  "bad.yaml:3: forward_proxy.deny_domains[0]: invalid domain pattern", "invalid character" },
	{ FP_HEAD "  deny_domains: [ [ a.example ] ]\n", 1,
	  "bad.yaml:3: forward_proxy.deny_domains[0]: expected a string, got a list", "" },
	{ FP_HEAD "  deny_domains:\n    - a.example\n    - A.Example\n", 1,
	  "bad.yaml:5: forward_proxy.deny_domains: duplicate domain pattern 'a.example' "
	  "(first at line 4)", "" },
	{ FP_HEAD "  deny_domains: blocked.txt\n", 1,
	  "bad.yaml:3: forward_proxy.deny_domains: expected a list of domain patterns or "
	  "{ file: PATH }, got a scalar", "" },
	{ FP_HEAD "  deny_domains: { path: x }\n", 2,
	  "bad.yaml:3: forward_proxy.deny_domains: unknown key 'path'", "" },
	{ FP_HEAD "  allow_domains: {}\n", 1,
	  "bad.yaml:3: forward_proxy.allow_domains: missing required key 'file'", "" },
	{ FP_HEAD "  deny_domains: { file: \"lists/\" }\n", 1,
	  "bad.yaml:3: forward_proxy.deny_domains.file: invalid file name 'lists/'", "" },
	{ FP_HEAD "  deny_domains: [ x.example ]\n  allow_domains: [ y.example, X.example ]\n", 1,
	  "bad.yaml:4: forward_proxy.allow_domains: 'x.example' is also in deny_domains (line 3)",
	  "" },
	/* booleans */
	{ FP_HEAD "  deny_private_destinations: yes\n", 1,
	  "bad.yaml:3: forward_proxy.deny_private_destinations: expected true or false, got 'yes'",
	  "" },
	{ FP_HEAD "  anonymize: \"true\"\n", 1,
	  "bad.yaml:3: forward_proxy.anonymize: expected true or false, got a quoted string", "" },
	/* auth */
	{ FP_HEAD "  auth: { jwt: { alg: HS256 } }\n", 2,
	  "bad.yaml:3: forward_proxy.auth: unknown key 'jwt'", "" },
	{ FP_HEAD "  auth: {}\n", 1, "bad.yaml:3: forward_proxy.auth: expected basic", "users_file" },
	{ FP_HEAD "  auth: { basic: { realm: x } }\n", 1,
	  "bad.yaml:3: forward_proxy.auth.basic: missing required key 'users_file'", "" },
	{ FP_HEAD "  auth: { basic: { users_file: u, realm: \"a\\\"b\" } }\n", 1,
	  "bad.yaml:3: forward_proxy.auth.basic.realm: no control characters", "" },
	{ FP_HEAD "  auth: { basic: { users_file: \"\" } }\n", 1,
	  "bad.yaml:3: forward_proxy.auth.basic.users_file: value must not be empty", "" },
	/* cache */
	{ FP_HEAD "  cache: { memory: 64MB }\n", 1,
	  "bad.yaml:3: forward_proxy.cache.memory: invalid size '64MB'", "64MiB" },
	{ FP_HEAD "  cache: { memory: -1 }\n", 1,
	  "bad.yaml:3: forward_proxy.cache.memory: invalid size '-1'", "" },
	{ FP_HEAD "  cache: { memory: 512KiB }\n", 1,
	  "bad.yaml:3: forward_proxy.cache.memory: 512KiB is out of range 1MiB..1024GiB", "" },
	{ FP_HEAD "  cache: { memory: 99999999999999999999GiB }\n", 1,
	  "bad.yaml:3: forward_proxy.cache.memory: 99999999999999999999GiB is out of range", "" },
	{ FP_HEAD "  cache: { max_object: 128MiB }\n", 1,
	  "bad.yaml:3: forward_proxy.cache.max_object: 128MiB is larger than cache.memory (64MiB)",
	  "" },
	{ FP_HEAD "  cache:\n    memory: 1MiB\n    max_object: 1048577\n", 1,
	  "bad.yaml:5: forward_proxy.cache.max_object: 1048577 is larger than cache.memory (1MiB)",
	  "" },
	{ FP_HEAD "  cache: { max_object: 0 }\n", 1,
	  "bad.yaml:3: forward_proxy.cache.max_object: 0 is out of range 1..1024GiB", "" },
	{ FP_HEAD "  cache: 64MiB\n", 1, "bad.yaml:3: forward_proxy.cache: expected a mapping", "" },
	/* access_log */
	{ FP_HEAD "  access_log: { format: json }\n", 1,
	  "bad.yaml:3: forward_proxy.access_log.format: invalid format 'json'", "squid or combined" },
	{ FP_HEAD "  access_log: [ a ]\n", 1,
	  "bad.yaml:3: forward_proxy.access_log: expected a path", "got a list" },
	{ FP_HEAD "  access_log: { path: \"\" }\n", 1,
	  "bad.yaml:3: forward_proxy.access_log.path: value must not be empty", "" },
	{ FP_HEAD "  access_log: \"logs/\"\n", 1,
	  "bad.yaml:3: forward_proxy.access_log: invalid file name 'logs/'", "" },
	/* timeouts and limits */
	{ FP_HEAD "  connect_timeout: 0ms\n", 1,
	  "bad.yaml:3: forward_proxy.connect_timeout: 0ms is out of range 1ms..5m", "" },
	{ FP_HEAD "  tunnel_idle_timeout: 10\n", 1,
	  "bad.yaml:3: forward_proxy.tunnel_idle_timeout: invalid duration '10'", "" },
	{ FP_HEAD "  tunnel_idle_timeout: 999ms\n", 1,
	  "bad.yaml:3: forward_proxy.tunnel_idle_timeout: 999ms is out of range 1s..24h", "" },
	{ FP_HEAD "  response_timeout: 2h\n", 1,
	  "bad.yaml:3: forward_proxy.response_timeout: 2h is out of range 1ms..1h", "" },
	{ FP_HEAD "  idle_timeout: 50ms\n", 1,
	  "bad.yaml:3: forward_proxy.idle_timeout: 50ms is out of range 100ms..1h", "" },
	{ FP_HEAD "  header_timeout: 61m\n", 1,
	  "bad.yaml:3: forward_proxy.header_timeout: 61m is out of range 100ms..1h", "" },
	{ FP_HEAD "  dns_timeout: 2m\n", 1,
	  "bad.yaml:3: forward_proxy.dns_timeout: 2m is out of range 1ms..1m", "" },
	{ FP_HEAD "  dns_cache_ttl: 25h\n", 1,
	  "bad.yaml:3: forward_proxy.dns_cache_ttl: 25h is out of range 0ms..24h", "" },
	{ FP_HEAD "  max_body_size: 1025GiB\n", 1,
	  "bad.yaml:3: forward_proxy.max_body_size: 1025GiB is out of range 0..1024GiB", "" },
	{ FP_HEAD "  max_body_size: 1TiB\n", 1,
	  "bad.yaml:3: forward_proxy.max_body_size: invalid size '1TiB'", "" },
	{ FP_HEAD "  max_conns: 0\n", 1,
	  "bad.yaml:3: forward_proxy.max_conns: 0 is out of range 1..1000000", "" },
	/* transparent */
	{ FP_TR("cgroups: [ a ]"), 2,
	  "bad.yaml:3: forward_proxy.transparent: missing required key 'listen'", "80" },
	{ FP_TR("listen: \"127.0.0.1:3129\", cgroups: [ a ]"), 1,
	  "bad.yaml:3: forward_proxy.transparent: missing required key 'tls_listen'", "443" },
	{ FP_TR("tls_listen: \"127.0.0.1:3130\", cgroups: [ a ], ports: [ 443, 8080 ]"), 1,
	  "bad.yaml:3: forward_proxy.transparent: missing required key 'listen'", "" },
	{ FP_TR("listen: \"127.0.0.1:3129\", tls_listen: \"127.0.0.1:3130\", cgroups: [ a ], "
		"ports: [ 80 ]"), 1,
	  "bad.yaml:3: forward_proxy.transparent.tls_listen: not used", "443-like" },
	{ FP_TR("listen: \"127.0.0.1:3129\", tls_listen: \"127.0.0.1:3130\", cgroups: [ a ], "
		"ports: [ 443 ]"), 1,
	  "bad.yaml:3: forward_proxy.transparent.listen: not used", "80-like" },
	{ FP_TR("listen: \"10.0.0.1:3129\", tls_listen: \"127.0.0.1:3130\", cgroups: [ a ]"), 1,
	  "bad.yaml:3: forward_proxy.transparent.listen: 10.0.0.1:3129 must be a loopback address",
	  "" },
	{ FP_TR("listen: \"127.0.0.1:3129\", tls_listen: \"[::]:3130\", cgroups: [ a ]"), 1,
	  "bad.yaml:3: forward_proxy.transparent.tls_listen: [::]:3130 must be a loopback address",
	  "" },
	{ FP_TR("listen: \"127.0.0.1:3128\", tls_listen: \"127.0.0.1:3130\", cgroups: [ a ]"), 1,
	  "bad.yaml:3: forward_proxy.transparent.listen: 127.0.0.1:3128 is already "
	  "forward_proxy.listen[0] (line 2)", "" },
	{ FP_TR("listen: \"127.0.0.1:3129\", tls_listen: \"127.0.0.1:3129\", cgroups: [ a ]"), 1,
	  "bad.yaml:3: forward_proxy.transparent.tls_listen: 127.0.0.1:3129 is also "
	  "transparent.listen (line 3)", "" },
	{ FP_TR("listen: [ \"127.0.0.1:3129\" ], tls_listen: \"127.0.0.1:3130\", cgroups: [ a ]"), 1,
	  "bad.yaml:3: forward_proxy.transparent.listen: expected a string, got a list", "" },
	{ FP_TR("listen: \"127.0.0.1:3129\", tls_listen: \"127.0.0.1:3130\""), 1,
	  "bad.yaml:3: forward_proxy.transparent: missing required key 'cgroups'", "" },
	{ FP_TR("listen: \"127.0.0.1:3129\", tls_listen: \"127.0.0.1:3130\", cgroups: []"), 1,
	  "bad.yaml:3: forward_proxy.transparent.cgroups: needs at least one cgroup", "" },
	{ FP_TR("listen: \"127.0.0.1:3129\", tls_listen: \"127.0.0.1:3130\", cgroups: [ /a ]"), 1,
	  "bad.yaml:3: forward_proxy.transparent.cgroups[0]: '/a' must be a folder relative to "
	  "mesh.cgroup_root", "" },
	{ FP_TR("listen: \"127.0.0.1:3129\", tls_listen: \"127.0.0.1:3130\", cgroups: [ a/../b ]"),
	  1, "bad.yaml:3: forward_proxy.transparent.cgroups[0]: 'a/../b' must be a folder", "" },
	{ FP_TR("listen: \"127.0.0.1:3129\", tls_listen: \"127.0.0.1:3130\", cgroups: [ a/ ]"), 1,
	  "bad.yaml:3: forward_proxy.transparent.cgroups[0]: 'a/' must be a folder", "" },
	{ FP_TR("listen: \"127.0.0.1:3129\", tls_listen: \"127.0.0.1:3130\", cgroups: [ ./a ]"), 1,
	  "bad.yaml:3: forward_proxy.transparent.cgroups[0]: './a' must be a folder", "" },
	{ FP_TR("listen: \"127.0.0.1:3129\", tls_listen: \"127.0.0.1:3130\", cgroups: [ a, b, a ]"),
	  1, "bad.yaml:3: forward_proxy.transparent.cgroups[2]: duplicate cgroup 'a' (first at "
	  "line 3)", "" },
	{ FP_TR("listen: \"127.0.0.1:3129\", cgroups: [ a ], ports: []"), 1,
	  "bad.yaml:3: forward_proxy.transparent.ports: needs at least one port", "" },
	{ FP_TR("listen: \"127.0.0.1:3129\", cgroups: [ a ], ports: [ 80, 80 ]"), 1,
	  "bad.yaml:3: forward_proxy.transparent.ports[1]: duplicate port 80", "" },
	{ FP_TR("cgroups: [ a ], mode: redirect"), 3,   /* + listen and tls_listen missing */
	  "bad.yaml:3: forward_proxy.transparent: unknown key 'mode'", "" },
};

static void test_fp_bad_table(void)
{
	for (size_t i = 0; i < sizeof(fp_bad_cases) / sizeof(fp_bad_cases[0]); i++) {
		struct td_config cfg;

		CU_ASSERT_TRUE(td_bad_cfg_check(i, &fp_bad_cases[i], &cfg));
		CU_ASSERT_FALSE(cfg.forward_proxy.on);   /* cfg left empty on error */
		CU_ASSERT_PTR_NULL(cfg.forward_proxy.deny_domains);
	}
}

/* one run reports every problem, each with its own line, in file order */
static void test_fp_multiple_errors(void)
{
	static const char yaml[] =
		"forward_proxy:\n"                                         /* 1 */
		"  listen: [ \"127.0.0.1:3128\", \"3128\" ]\n"             /* 2 */
		"  allow_clients: [ 127.0.0.1/8, \"::1/128\" ]\n"          /* 3 */
		"  connect_ports: [ 443, 0 ]\n"                            /* 4 */
		"  deny_domains: [ ok.example, \"bad..example\" ]\n"       /* 5 */
		"  anonymize: maybe\n"                                     /* 6 */
		"  cache: { memory: 1MiB, max_object: 2MiB }\n"            /* 7 */
		"  access_log: { format: squid, path: \"\" }\n"            /* 8 */
		"  dns_timeout: soon\n"                                    /* 9 */
		"  transparent:\n"                                         /* 10 */
		"    listen: \"192.0.2.1:3129\"\n"                         /* 11 */
		"    cgroups: [ \"/sys/fs/cgroup/x\" ]\n"                  /* 12 */
		"    ports: [ 80 ]\n";                                     /* 13 */
	static const char *const want[] = {
		"m.yaml:2: forward_proxy.listen[1]: expected ADDRESS:PORT",
		"m.yaml:3: forward_proxy.allow_clients[0]: '127.0.0.1/8' has host bits set",
		"m.yaml:4: forward_proxy.connect_ports[1]: 0 is out of range",
		"m.yaml:5: forward_proxy.deny_domains[1]: invalid domain pattern 'bad..example'",
		"m.yaml:6: forward_proxy.anonymize: expected true or false, got 'maybe'",
		"m.yaml:7: forward_proxy.cache.max_object: 2MiB is larger than cache.memory (1MiB)",
		"m.yaml:8: forward_proxy.access_log.path: value must not be empty",
		"m.yaml:9: forward_proxy.dns_timeout: invalid duration 'soon'",
		"m.yaml:11: forward_proxy.transparent.listen: 192.0.2.1:3129 must be a loopback",
		"m.yaml:12: forward_proxy.transparent.cgroups[0]: '/sys/fs/cgroup/x' must be a folder",
	};
	size_t nwant = sizeof(want) / sizeof(want[0]);
	struct td_errors errs = { 0 };
	struct td_config cfg;

	CU_ASSERT_EQUAL(td_config_load_buf("m.yaml", yaml, strlen(yaml), &cfg, &errs), -EINVAL);
	CU_ASSERT_EQUAL(errs.n, nwant);
	for (size_t i = 0; i < errs.n; i++) {
		bool ok = i < nwant && !strncmp(errs.msgs[i], want[i], strlen(want[i]));

		if (!ok)
			printf("\n    got '%s'\n    want '%s'", errs.msgs[i], i < nwant ? want[i] : "-");
		CU_ASSERT_TRUE(ok);
	}
	td_errors_free(&errs);
}

/* the list bounds: at the bound passes, one over fails; a long inline domain list */
static void test_fp_limits(void)
{
	struct td_errors errs = { 0 };
	struct td_config cfg;
	size_t len, cap = 1 << 20;
	char *y = malloc(cap);
	int err;

	CU_ASSERT_PTR_NOT_NULL_FATAL(y);
	for (unsigned int extra = 0; extra < 2; extra++) {
		len = (size_t)snprintf(y, cap, FP_HEAD "  allow_clients:\n");
		for (unsigned int i = 0; i < TD_FP_MAX_CIDRS + extra; i++)
			len += (size_t)snprintf(y + len, cap - len, "    - 10.%u.%u.0/24\n", i / 256,
						i % 256);
		len += (size_t)snprintf(y + len, cap - len, "  connect_ports:\n");
		for (unsigned int i = 0; i < TD_FP_MAX_PORTS + extra; i++)
			len += (size_t)snprintf(y + len, cap - len, "    - %u\n", 1000 + i);
		err = td_config_load_buf("l.yaml", y, len, &cfg, &errs);
		if (!extra) {
			fp_print(&errs);
			CU_ASSERT_EQUAL(err, 0);
			CU_ASSERT_EQUAL(cfg.forward_proxy.n_allow_clients, TD_FP_MAX_CIDRS);
			CU_ASSERT_EQUAL(cfg.forward_proxy.n_connect_ports, TD_FP_MAX_PORTS);
		} else {
			CU_ASSERT_EQUAL(err, -EINVAL);
			CU_ASSERT_EQUAL(errs.n, 2);
			if (errs.n == 2) {
				CU_ASSERT_PTR_NOT_NULL(strstr(errs.msgs[0],
							      "too many entries (257, max 256)"));
				CU_ASSERT_PTR_NOT_NULL(strstr(errs.msgs[1],
							      "too many ports (65, max 64)"));
			}
		}
		td_config_free(&cfg);
		td_errors_free(&errs);
	}
	/* 20000 inline patterns with one duplicate at the end (sorted check, not quadratic) */
	len = (size_t)snprintf(y, cap, FP_HEAD "  deny_domains:\n");
	for (unsigned int i = 0; i < 20000; i++)
		len += (size_t)snprintf(y + len, cap - len, "    - h%u.example\n", i);
	len += (size_t)snprintf(y + len, cap - len, "    - H7.EXAMPLE\n");
	err = td_config_load_buf("l.yaml", y, len, &cfg, &errs);
	CU_ASSERT_EQUAL(err, -EINVAL);
	CU_ASSERT_EQUAL(errs.n, 1);
	if (errs.n)
		CU_ASSERT_STRING_EQUAL(errs.msgs[0], "l.yaml:20004: forward_proxy.deny_domains: "
				       "duplicate domain pattern 'h7.example' (first at line 11)");
	td_errors_free(&errs);
	len -= strlen("    - H7.EXAMPLE\n");
	err = td_config_load_buf("l.yaml", y, len, &cfg, &errs);
	fp_print(&errs);
	CU_ASSERT_EQUAL(err, 0);
	CU_ASSERT_EQUAL(cfg.forward_proxy.n_deny_domains, 20000);
	td_config_free(&cfg);
	td_errors_free(&errs);
	free(y);
}

int td_suite_config_fp(void)
{
	CU_pSuite s = CU_add_suite("config forward_proxy", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "full example", test_fp_full) ||
	    !CU_add_test(s, "absent section and defaults", test_fp_defaults) ||
	    !CU_add_test(s, "domain patterns", test_fp_domain_norm) ||
	    !CU_add_test(s, "bad configs table", test_fp_bad_table) ||
	    !CU_add_test(s, "multiple errors together", test_fp_multiple_errors) ||
	    !CU_add_test(s, "limits", test_fp_limits))
		return CU_get_error();
	return 0;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for the gateway: config section: full example, defaults, a table of bad configs. */
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
#include "jwt_verify.h"
#include "ratelimit.h"
#include "route.h"
#include "unit.h"

/* the example plus every extra key; line numbers are checked below */
static const char gw_full[] =
	"gateway:\n"                                                                  /* 1 */
	"  listen: [ \"127.0.0.1:8000\", \"[::1]:8000\" ]\n"                          /* 2 */
	"  tls: { listen: \"127.0.0.1:8443\", certs: [ { cert: a.pem, key: a.key },\n" /* 3 */
	"         { cert: /etc/td/b.pem, key: /etc/td/b.key } ] }\n"                  /* 4 */
	"  workers: 4\n"                                                              /* 5 */
	"  limits: { max_request_line: 4096, max_header_size: 16384, max_headers: 50,\n" /* 6 */
	"            max_body_size: 0, header_timeout: 5s, idle_timeout: 2m,\n"       /* 7 */
	"            body_timeout: 500ms, max_conns: 100 }\n"                         /* 8 */
	"  trusted_proxies: [ 10.0.0.0/8, \"fd00::/8\", 192.0.2.7 ]\n"                /* 9 */
	"  request_id_header: X-Trace\n"                                              /* 10 */
	"  access_log: { path: logs/access.log, format: json }\n"                     /* 11 */
	"  upstreams:\n"                                                              /* 12 */
	"    users:\n"                                                                /* 13 */
	"      lb: round_robin\n"                                                     /* 14 */
	"      backends: [ \"127.0.0.1:9001\", \"127.0.0.1:9002\" ]\n"                /* 15 */
	"      health: { type: http, path: /healthz, interval: 1s }\n"                /* 16 */
	"      retries: 2\n"                                                          /* 17 */
	"    sticky:\n"                                                               /* 18 */
	"      lb: \"hash(header:X-User)\"\n"                                         /* 19 */
	"      backends: [ \"[::1]:9003\" ]\n"                                        /* 20 */
	"      connect_timeout: 250ms\n"                                              /* 21 */
	"      response_timeout: 5s\n"                                                /* 22 */
	"      outlier: { consecutive_failures: 0, ejection: 10s }\n"                 /* 23 */
	"      max_idle: 1\n"                                                         /* 24 */
	"    ip: { lb: hash, hash_key: client_ip, backends: [ \"127.0.0.1:9004\" ] }\n" /* 25 */
	"    lc: { lb: least_conn, backends: [ \"127.0.0.1:9005\" ] }\n"              /* 26 */
	"    r2: { lb: random_two, backends: [ \"127.0.0.1:9006\" ] }\n"              /* 27 */
	"  routes:\n"                                                                 /* 28 */
	"    - match: { host: api.example, path_prefix: /users, methods: [GET, POST] }\n" /* 29 */
	"      upstream: users\n"                                                     /* 30 */
	"      strip_prefix: /users\n"                                                /* 31 */
	"      auth: { jwt: { alg: HS256, secret_file: jwt.key, audience: api } }\n"  /* 32 */
	"      rate_limit: { rate: 100, burst: 200, key: client_ip }\n"               /* 33 */
	"      request_headers: { add: { X-Env: prod }, remove: [ X-Debug ] }\n"      /* 34 */
	"    - match: { path: /api/data }\n"                                          /* 35 */
	"      aggregate:\n"                                                          /* 36 */
	"        - { name: service1, url: \"http://127.0.0.1:9101/data\" }\n"         /* 37 */
	"        - { name: service2, url: \"http://127.0.0.1:9102/data\" }\n"         /* 38 */
	"    - name: keys\n"                                                          /* 39 */
	"      match:\n"                                                              /* 40 */
	"        host: \"*.example\"\n"                                               /* 41 */
	"        path: /k\n"                                                          /* 42 */
	"        headers: { X-Canary: \"yes\", X-Team: a b }\n"                       /* 43 */
	"      upstream: sticky\n"                                                    /* 44 */
	"      auth:\n"                                                               /* 45 */
	"        identity_header: X-Auth-Subject\n"                                   /* 46 */
	"        api_keys:\n"                                                         /* 47 */
	"          header: X-Key\n"                                                   /* 48 */
	"          keys: [ { name: ci, sha256: "
	"\"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\" } ]\n"  /* 49 */
	"          keys_file: /etc/td/keys.txt\n"                                     /* 50 */
	"      rate_limit: { rate: 5, period: 1m, key: api_key }\n"                   /* 51 */
	"      response_headers: { add: { Cache-Control: no-store } }\n"             /* 52 */
	"    - match: { path_prefix: /rs }\n"                                         /* 53 */
	"      upstream: ip\n"                                                        /* 54 */
	"      auth: { jwt: { alg: RS256, jwks_file: jwks.json, issuer: \"https://idp\",\n" /* 55 */
	"                     leeway: 1m } }\n"                                       /* 56 */
	"      rate_limit: { rate: 1, key: jwt_sub }\n"                               /* 57 */
	"    - match: { path_prefix: /basic }\n"                                      /* 58 */
	"      upstream: lc\n"                                                        /* 59 */
	"      auth: { basic: { users_file: users.htpasswd, realm: staff } }\n"      /* 60 */
	"    - match: { path: /agg6 }\n"                                              /* 61 */
	"      aggregate_timeout: 750ms\n"                                            /* 62 */
	"      aggregate:\n"                                                          /* 63 */
	"        - { name: \"a b\", url: \"http://[::1]:9201\", timeout: 3s }\n"      /* 64 */
	"        - { name: x, url: \"HTTP://10.1.2.3/p?q=1\" }\n"                     /* 65 */
	"    - upstream: r2\n";                                                       /* 66 */

static void gw_print(const struct td_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		printf("\n    unexpected: %s", errs->msgs[i]);
}

static const char *gw_cwd(void)
{
	static char cwd[PATH_MAX];

	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), "?");
	return cwd;
}

static void test_gw_full(void)
{
	struct td_errors errs = { 0 };
	struct td_config cfg;
	const struct td_gw_cfg *g;
	const struct td_gw_upstream_cfg *u;
	const struct td_gw_route_cfg *r;
	const struct sockaddr_in *s4;
	const struct sockaddr_in6 *s6;
	char want[PATH_MAX + 64];
	int err;

	err = td_config_load_buf("/etc/td/td.yaml", gw_full, strlen(gw_full), &cfg, &errs);
	gw_print(&errs);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	g = &cfg.gateway;
	CU_ASSERT_TRUE(g->on);
	CU_ASSERT_EQUAL(g->line, 2);   /* the mapping starts at its first key */

	CU_ASSERT_EQUAL_FATAL(g->n_listen, 2);
	CU_ASSERT_STRING_EQUAL(g->listen[0].text, "127.0.0.1:8000");
	s4 = (const struct sockaddr_in *)&g->listen[0].ss;
	CU_ASSERT_EQUAL(s4->sin_family, AF_INET);
	CU_ASSERT_EQUAL(s4->sin_port, htons(8000));
	CU_ASSERT_EQUAL(s4->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	CU_ASSERT_EQUAL(g->listen[0].sslen, sizeof(struct sockaddr_in));
	CU_ASSERT_EQUAL(g->listen[0].line, 2);
	s6 = (const struct sockaddr_in6 *)&g->listen[1].ss;
	CU_ASSERT_EQUAL(s6->sin6_family, AF_INET6);
	CU_ASSERT_EQUAL(s6->sin6_port, htons(8000));
	CU_ASSERT_TRUE(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
	CU_ASSERT_EQUAL(g->listen[1].sslen, sizeof(struct sockaddr_in6));

	CU_ASSERT_EQUAL_FATAL(g->n_tls_listen, 1);
	CU_ASSERT_STRING_EQUAL(g->tls_listen[0].text, "127.0.0.1:8443");
	CU_ASSERT_EQUAL_FATAL(g->n_tls_certs, 2);
	CU_ASSERT_STRING_EQUAL(g->tls_certs[0].cert, "/etc/td/a.pem");   /* relative: config dir */
	CU_ASSERT_STRING_EQUAL(g->tls_certs[0].key, "/etc/td/a.key");
	CU_ASSERT_STRING_EQUAL(g->tls_certs[1].cert, "/etc/td/b.pem");
	CU_ASSERT_EQUAL(g->tls_certs[1].line, 4);

	CU_ASSERT_EQUAL(g->workers, 4);
	CU_ASSERT_EQUAL(g->max_request_line, 4096);
	CU_ASSERT_EQUAL(g->max_header_size, 16384);
	CU_ASSERT_EQUAL(g->max_headers, 50);
	CU_ASSERT_EQUAL(g->max_body_size, 0);
	CU_ASSERT_EQUAL(g->header_timeout_ms, 5000);
	CU_ASSERT_EQUAL(g->idle_timeout_ms, 120000);
	CU_ASSERT_EQUAL(g->body_timeout_ms, 500);
	CU_ASSERT_EQUAL(g->max_conns, 100);

	CU_ASSERT_EQUAL_FATAL(g->n_trusted, 3);
	CU_ASSERT_EQUAL(g->trusted_proxies[0].family, AF_INET);
	CU_ASSERT_EQUAL(g->trusted_proxies[0].prefix, 8);
	CU_ASSERT_EQUAL(g->trusted_proxies[0].addr[0], 10);
	CU_ASSERT_EQUAL(g->trusted_proxies[1].family, AF_INET6);
	CU_ASSERT_EQUAL(g->trusted_proxies[1].prefix, 8);
	CU_ASSERT_EQUAL(g->trusted_proxies[1].addr[0], 0xfd);
	CU_ASSERT_EQUAL(g->trusted_proxies[2].prefix, 32);
	CU_ASSERT_EQUAL(g->trusted_proxies[2].addr[3], 7);
	CU_ASSERT_STRING_EQUAL(g->request_id_header, "X-Trace");
	CU_ASSERT_STRING_EQUAL(g->access_log, "/etc/td/logs/access.log");
	CU_ASSERT_EQUAL(g->access_log_format, TD_GW_LOG_JSON);

	CU_ASSERT_EQUAL_FATAL(g->n_upstreams, 5);
	u = &g->upstreams[0];
	CU_ASSERT_STRING_EQUAL(u->name, "users");
	CU_ASSERT_EQUAL(u->line, 13);
	CU_ASSERT_EQUAL(u->lb, TD_GW_LB_ROUND_ROBIN);
	CU_ASSERT_EQUAL_FATAL(u->n_backends, 2);
	CU_ASSERT_STRING_EQUAL(u->backends[1].text, "127.0.0.1:9002");
	CU_ASSERT_EQUAL(((const struct sockaddr_in *)&u->backends[1].ss)->sin_port, htons(9002));
	CU_ASSERT_EQUAL(u->health.type, TD_HC_HTTP);
	CU_ASSERT_STRING_EQUAL(u->health.path, "/healthz");
	CU_ASSERT_EQUAL(u->health.interval_ms, 1000);
	CU_ASSERT_EQUAL(u->retries, 2);
	CU_ASSERT_EQUAL(u->connect_timeout_ms, 2000);    /* defaults */
	CU_ASSERT_EQUAL(u->response_timeout_ms, 30000);
	CU_ASSERT_EQUAL(u->outlier_failures, 5);
	CU_ASSERT_EQUAL(u->outlier_ejection_ms, 30000);
	CU_ASSERT_EQUAL(u->max_idle, 32);
	u = &g->upstreams[1];
	CU_ASSERT_STRING_EQUAL(u->name, "sticky");
	CU_ASSERT_EQUAL(u->lb, TD_GW_LB_HASH);
	CU_ASSERT_EQUAL(u->hash_key, TD_GW_HASH_HEADER);
	CU_ASSERT_STRING_EQUAL(u->hash_header, "X-User");
	CU_ASSERT_EQUAL(u->health.type, TD_HC_NONE);
	CU_ASSERT_EQUAL(u->retries, 1);
	CU_ASSERT_EQUAL(u->connect_timeout_ms, 250);
	CU_ASSERT_EQUAL(u->response_timeout_ms, 5000);
	CU_ASSERT_EQUAL(u->outlier_failures, 0);
	CU_ASSERT_EQUAL(u->outlier_ejection_ms, 10000);
	CU_ASSERT_EQUAL(u->max_idle, 1);
	CU_ASSERT_EQUAL(g->upstreams[2].lb, TD_GW_LB_HASH);
	CU_ASSERT_EQUAL(g->upstreams[2].hash_key, TD_GW_HASH_CLIENT_IP);
	CU_ASSERT_EQUAL(g->upstreams[3].lb, TD_GW_LB_LEAST_CONN);
	CU_ASSERT_EQUAL(g->upstreams[4].lb, TD_GW_LB_RANDOM_TWO);

	CU_ASSERT_EQUAL_FATAL(g->n_routes, 7);
	r = &g->routes[0];
	CU_ASSERT_STRING_EQUAL(r->name, "route0");
	CU_ASSERT_EQUAL(r->line, 29);
	CU_ASSERT_STRING_EQUAL(r->host, "api.example");
	CU_ASSERT_STRING_EQUAL(r->path_prefix, "/users");
	CU_ASSERT_STRING_EQUAL(r->path, "");
	CU_ASSERT_EQUAL(r->methods, TD_ROUTE_M(TD_HTTP_M_GET) | TD_ROUTE_M(TD_HTTP_M_POST));
	CU_ASSERT_STRING_EQUAL(r->upstream, "users");
	CU_ASSERT_EQUAL(r->upstream_idx, 0);
	CU_ASSERT_STRING_EQUAL(r->strip_prefix, "/users");
	CU_ASSERT_EQUAL(r->auth.kind, TD_GW_AUTH_JWT);
	CU_ASSERT_EQUAL(r->auth.jwt_alg, TD_JWT_HS256);
	CU_ASSERT_STRING_EQUAL(r->auth.secret_file, "/etc/td/jwt.key");
	CU_ASSERT_STRING_EQUAL(r->auth.audience, "api");
	CU_ASSERT_STRING_EQUAL(r->auth.issuer, "");
	CU_ASSERT_EQUAL(r->auth.leeway_s, 30);
	CU_ASSERT_EQUAL(r->auth.line, 32);
	CU_ASSERT_TRUE(r->rate_limit.on);
	CU_ASSERT_EQUAL(r->rate_limit.rate, 100);
	CU_ASSERT_EQUAL(r->rate_limit.burst, 200);
	CU_ASSERT_EQUAL(r->rate_limit.period_ms, 1000);
	CU_ASSERT_EQUAL(r->rate_limit.key, TD_RL_KEY_CLIENT_IP);
	CU_ASSERT_EQUAL_FATAL(r->request_headers.n_add, 1);
	CU_ASSERT_STRING_EQUAL(r->request_headers.add[0].name, "X-Env");
	CU_ASSERT_STRING_EQUAL(r->request_headers.add[0].value, "prod");
	CU_ASSERT_EQUAL_FATAL(r->request_headers.n_remove, 1);
	CU_ASSERT_STRING_EQUAL(r->request_headers.remove[0], "X-Debug");
	CU_ASSERT_EQUAL(r->response_headers.n_add + r->response_headers.n_remove, 0);
	CU_ASSERT_EQUAL(r->n_aggregate, 0);

	r = &g->routes[1];
	CU_ASSERT_STRING_EQUAL(r->path, "/api/data");
	CU_ASSERT_EQUAL(r->upstream_idx, -1);
	CU_ASSERT_STRING_EQUAL(r->upstream, "");
	CU_ASSERT_EQUAL(r->auth.kind, TD_GW_AUTH_NONE);
	CU_ASSERT_FALSE(r->rate_limit.on);
	CU_ASSERT_EQUAL(r->aggregate_timeout_ms, 2000);
	CU_ASSERT_EQUAL_FATAL(r->n_aggregate, 2);
	CU_ASSERT_STRING_EQUAL(r->aggregate[0].name, "service1");
	CU_ASSERT_STRING_EQUAL(r->aggregate[0].url, "http://127.0.0.1:9101/data");
	CU_ASSERT_STRING_EQUAL(r->aggregate[0].host, "127.0.0.1:9101");
	CU_ASSERT_STRING_EQUAL(r->aggregate[0].path, "/data");
	CU_ASSERT_STRING_EQUAL(r->aggregate[0].ep.text, "127.0.0.1:9101");
	CU_ASSERT_EQUAL(((const struct sockaddr_in *)&r->aggregate[1].ep.ss)->sin_port,
			htons(9102));
	CU_ASSERT_EQUAL(r->aggregate[1].timeout_ms, 2000);
	CU_ASSERT_EQUAL(r->aggregate[1].line, 38);

	r = &g->routes[2];
	CU_ASSERT_STRING_EQUAL(r->name, "keys");
	CU_ASSERT_STRING_EQUAL(r->host, "*.example");
	CU_ASSERT_STRING_EQUAL(r->path, "/k");
	CU_ASSERT_EQUAL(r->methods, 0);
	CU_ASSERT_EQUAL_FATAL(r->n_match_headers, 2);
	CU_ASSERT_STRING_EQUAL(r->match_headers[0].name, "X-Canary");
	CU_ASSERT_STRING_EQUAL(r->match_headers[0].value, "yes");   /* a string, not a bool */
	CU_ASSERT_STRING_EQUAL(r->match_headers[1].value, "a b");
	CU_ASSERT_EQUAL(r->upstream_idx, 1);
	CU_ASSERT_EQUAL(r->auth.kind, TD_GW_AUTH_API_KEYS);
	CU_ASSERT_STRING_EQUAL(r->auth.identity_header, "X-Auth-Subject");
	CU_ASSERT_STRING_EQUAL(r->auth.key_header, "X-Key");
	CU_ASSERT_EQUAL_FATAL(r->auth.n_keys, 1);
	CU_ASSERT_STRING_EQUAL(r->auth.keys[0].name, "ci");
	CU_ASSERT_STRING_EQUAL(r->auth.keys[0].sha256,
			       "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
	CU_ASSERT_EQUAL(r->auth.keys[0].line, 49);
	CU_ASSERT_STRING_EQUAL(r->auth.keys_file, "/etc/td/keys.txt");
	CU_ASSERT_EQUAL(r->rate_limit.rate, 5);
	CU_ASSERT_EQUAL(r->rate_limit.burst, 5);   /* default: rate */
	CU_ASSERT_EQUAL(r->rate_limit.period_ms, 60000);
	CU_ASSERT_EQUAL(r->rate_limit.key, TD_RL_KEY_API_KEY);
	CU_ASSERT_EQUAL_FATAL(r->response_headers.n_add, 1);
	CU_ASSERT_STRING_EQUAL(r->response_headers.add[0].value, "no-store");

	r = &g->routes[3];
	CU_ASSERT_EQUAL(r->auth.jwt_alg, TD_JWT_RS256);
	CU_ASSERT_STRING_EQUAL(r->auth.jwks_file, "/etc/td/jwks.json");
	CU_ASSERT_STRING_EQUAL(r->auth.key_file, "");
	CU_ASSERT_STRING_EQUAL(r->auth.issuer, "https://idp");
	CU_ASSERT_EQUAL(r->auth.leeway_s, 60);
	CU_ASSERT_EQUAL(r->rate_limit.key, TD_RL_KEY_JWT_SUB);
	CU_ASSERT_EQUAL(r->upstream_idx, 2);

	r = &g->routes[4];
	CU_ASSERT_EQUAL(r->auth.kind, TD_GW_AUTH_BASIC);
	CU_ASSERT_STRING_EQUAL(r->auth.users_file, "/etc/td/users.htpasswd");
	CU_ASSERT_STRING_EQUAL(r->auth.realm, "staff");

	r = &g->routes[5];
	CU_ASSERT_EQUAL(r->aggregate_timeout_ms, 750);
	CU_ASSERT_EQUAL_FATAL(r->n_aggregate, 2);
	CU_ASSERT_STRING_EQUAL(r->aggregate[0].name, "a b");
	CU_ASSERT_STRING_EQUAL(r->aggregate[0].host, "[::1]:9201");
	CU_ASSERT_STRING_EQUAL(r->aggregate[0].path, "/");
	CU_ASSERT_STRING_EQUAL(r->aggregate[0].ep.text, "[::1]:9201");
	CU_ASSERT_EQUAL(r->aggregate[0].ep.sslen, sizeof(struct sockaddr_in6));
	CU_ASSERT_EQUAL(r->aggregate[0].timeout_ms, 3000);
	CU_ASSERT_STRING_EQUAL(r->aggregate[1].host, "10.1.2.3");
	CU_ASSERT_STRING_EQUAL(r->aggregate[1].path, "/p?q=1");
	CU_ASSERT_STRING_EQUAL(r->aggregate[1].ep.text, "10.1.2.3:80");   /* default port */
	CU_ASSERT_EQUAL(r->aggregate[1].timeout_ms, 750);   /* the route's aggregate_timeout */

	r = &g->routes[6];   /* no match: a catch-all */
	CU_ASSERT_STRING_EQUAL(r->name, "route6");
	CU_ASSERT_STRING_EQUAL(r->host, "");
	CU_ASSERT_EQUAL(r->upstream_idx, 4);

	td_config_free(&cfg);
	CU_ASSERT_FALSE(cfg.gateway.on);
	CU_ASSERT_PTR_NULL(cfg.gateway.routes);
	td_errors_free(&errs);

	/* a relative config path: files are made absolute against cwd/dir */
	err = td_config_load_buf("conf/td.yaml", gw_full, strlen(gw_full), &cfg, &errs);
	gw_print(&errs);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	snprintf(want, sizeof(want), "%s/conf/a.pem", gw_cwd());
	CU_ASSERT_STRING_EQUAL(cfg.gateway.tls_certs[0].cert, want);
	CU_ASSERT_STRING_EQUAL(cfg.gateway.tls_certs[1].cert, "/etc/td/b.pem");
	td_config_free(&cfg);
	/* no folder in the name: the working directory */
	err = td_config_load_buf("td.yaml", gw_full, strlen(gw_full), &cfg, &errs);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	snprintf(want, sizeof(want), "%s/users.htpasswd", gw_cwd());
	CU_ASSERT_STRING_EQUAL(cfg.gateway.routes[4].auth.users_file, want);
	td_config_free(&cfg);
	/* a config in / */
	err = td_config_load_buf("/td.yaml", gw_full, strlen(gw_full), &cfg, &errs);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	CU_ASSERT_STRING_EQUAL(cfg.gateway.routes[0].auth.secret_file, "/jwt.key");
	td_config_free(&cfg);
	CU_ASSERT_EQUAL(errs.n, 0);
	td_errors_free(&errs);
}

static void test_gw_absent_and_defaults(void)
{
	static const char none[] = "node:\n  bpffs: /sys/fs/bpf/x\n";
	static const char min[] =
		"gateway:\n"
		"  listen: \"0.0.0.0:8080\"\n"
		"  upstreams: { u: { backends: [ \"127.0.0.1:1\" ] } }\n"
		"  routes: [ { upstream: u } ]\n";
	static const char tls_only[] =
		"gateway:\n"
		"  tls: { listen: [ \"[::]:8443\", \"0.0.0.0:8443\" ], certs: [ { cert: /c, key: /k } ] }\n"
		"  upstreams: { u: { lb: \"hash(client_ip)\", backends: [ \"127.0.0.1:1\" ] } }\n"
		"  routes: [ { upstream: u } ]\n";
	struct td_errors errs = { 0 };
	struct td_config cfg;
	const struct td_gw_cfg *g = &cfg.gateway;

	CU_ASSERT_EQUAL_FATAL(td_config_load_buf("n.yaml", none, strlen(none), &cfg, &errs), 0);
	CU_ASSERT_FALSE(g->on);
	CU_ASSERT_EQUAL(g->n_routes, 0);
	td_config_free(&cfg);

	CU_ASSERT_EQUAL_FATAL(td_config_load_buf("m.yaml", min, strlen(min), &cfg, &errs), 0);
	CU_ASSERT_TRUE(g->on);
	CU_ASSERT_EQUAL(g->n_listen, 1);
	CU_ASSERT_EQUAL(g->n_tls_listen, 0);
	CU_ASSERT_EQUAL(g->n_tls_certs, 0);
	CU_ASSERT_EQUAL(g->workers, 0);
	CU_ASSERT_EQUAL(g->max_request_line, 8192);
	CU_ASSERT_EQUAL(g->max_header_size, 32768);
	CU_ASSERT_EQUAL(g->max_headers, 100);
	CU_ASSERT_EQUAL(g->max_body_size, 1024 * 1024);
	CU_ASSERT_EQUAL(g->header_timeout_ms, 10000);
	CU_ASSERT_EQUAL(g->idle_timeout_ms, 60000);
	CU_ASSERT_EQUAL(g->body_timeout_ms, 30000);
	CU_ASSERT_EQUAL(g->max_conns, 10000);
	CU_ASSERT_EQUAL(g->n_trusted, 0);
	CU_ASSERT_STRING_EQUAL(g->request_id_header, "X-Request-Id");
	CU_ASSERT_STRING_EQUAL(g->access_log, "stdout");
	CU_ASSERT_EQUAL(g->access_log_format, TD_GW_LOG_COMBINED);
	CU_ASSERT_EQUAL_FATAL(g->n_routes, 1);
	CU_ASSERT_STRING_EQUAL(g->routes[0].name, "route0");
	CU_ASSERT_EQUAL(g->routes[0].upstream_idx, 0);
	CU_ASSERT_EQUAL(g->routes[0].auth.kind, TD_GW_AUTH_NONE);
	td_config_free(&cfg);

	CU_ASSERT_EQUAL_FATAL(td_config_load_buf("t.yaml", tls_only, strlen(tls_only), &cfg,
						 &errs), 0);
	CU_ASSERT_EQUAL(g->n_listen, 0);
	CU_ASSERT_EQUAL(g->n_tls_listen, 2);   /* [::] and 0.0.0.0 are different sockets */
	CU_ASSERT_EQUAL(g->upstreams[0].lb, TD_GW_LB_HASH);
	CU_ASSERT_EQUAL(g->upstreams[0].hash_key, TD_GW_HASH_CLIENT_IP);
	td_config_free(&cfg);
	gw_print(&errs);
	CU_ASSERT_EQUAL(errs.n, 0);
	td_errors_free(&errs);
}

/* lines 1..5 of every route case; routes start at line 6 */
#define GW_HEAD                                                              \
	"gateway:\n"                                                          \
	"  listen: [ \"127.0.0.1:8000\" ]\n"                                   \
	"  upstreams:\n"                                                      \
	"    u: { backends: [ \"127.0.0.1:9001\" ] }\n"                         \
	"  routes:\n"
#define GW_TAIL                                                              \
	"  upstreams:\n"                                                      \
	"    u: { backends: [ \"127.0.0.1:9001\" ] }\n"                         \
	"  routes: [ { upstream: u } ]\n"
#define KEY64 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static const struct td_bad_cfg gw_bad_cases[] = {
	/* gateway-wide */
	{ "gateway: [ 1 ]\n", 1, "bad.yaml:1: gateway: expected a mapping", "a list" },
	{ "gateway:\n  colour: blue\n" GW_TAIL, 2, "bad.yaml:2: gateway: unknown key 'colour'", "" },
	{ "gateway:\n  workers: 1\n" GW_TAIL, 1, "bad.yaml:2: gateway: needs listen", "tls.listen" },
	{ "gateway:\n  listen: [ \"127.0.0.1:8000\" ]\n", 1, "bad.yaml:2: gateway: missing required "
	  "key 'routes'", "" },
	{ "gateway:\n  listen: [ \"localhost:8000\" ]\n" GW_TAIL, 1,
	  "bad.yaml:2: gateway.listen[0]: expected ADDRESS:PORT", "'localhost:8000'" },
	{ "gateway:\n  listen: [ \"127.0.0.1:0\" ]\n" GW_TAIL, 1, "bad.yaml:2: gateway.listen[0]:",
	  "port 1..65535" },
	{ "gateway:\n  listen: [ \"127.0.0.1:65536\" ]\n" GW_TAIL, 1, "bad.yaml:2: gateway.listen[0]:",
	  "got '127.0.0.1:65536'" },
	{ "gateway:\n  listen: [ \"::1:80\" ]\n" GW_TAIL, 1, "bad.yaml:2: gateway.listen[0]:",
	  "[::1]:8000" },
	{ "gateway:\n  listen: [ \"[127.0.0.1]:80\" ]\n" GW_TAIL, 1, "bad.yaml:2: gateway.listen[0]:",
	  "expected ADDRESS:PORT" },
	{ "gateway:\n  listen: []\n" GW_TAIL, 1, "bad.yaml:2: gateway.listen: must not be empty", "" },
	{ "gateway:\n  listen: { a: 1 }\n" GW_TAIL, 1, "bad.yaml:2: gateway.listen: expected an "
	  "endpoint or a list", "" },
	{ "gateway:\n  listen:\n    - \"127.0.0.1:8000\"\n    - \"127.0.0.1:8000\"\n" GW_TAIL, 1,
	  "bad.yaml:4: gateway.listen[1]: duplicate listen endpoint 127.0.0.1:8000", "line 3" },
	{ "gateway:\n  listen: [ \"[::1]:8000\" ]\n  tls: { listen: \"[0:0::1]:8000\", certs: "
	  "[ { cert: /c, key: /k } ] }\n" GW_TAIL, 1,
	  "bad.yaml:3: gateway.tls.listen: duplicate listen endpoint", "(first at line 2)" },
	{ "gateway:\n  tls: { listen: \"127.0.0.1:8443\" }\n" GW_TAIL, 1,
	  "bad.yaml:2: gateway.tls: missing required key 'certs'", "" },
	{ "gateway:\n  tls: { listen: \"127.0.0.1:8443\", certs: [] }\n" GW_TAIL, 1,
	  "bad.yaml:2: gateway.tls.certs: needs at least one", "" },
	{ "gateway:\n  tls: { listen: \"127.0.0.1:8443\", certs: [ { cert: a.pem } ] }\n" GW_TAIL, 1,
	  "bad.yaml:2: gateway.tls.certs[0]: missing required key 'key'", "" },
	{ "gateway:\n  tls: { certs: [ { cert: a.pem, key: a.key } ] }\n" GW_TAIL, 1,
	  "bad.yaml:2: gateway.tls: missing required key 'listen'", "" },
	{ "gateway:\n  tls: { listen: \"127.0.0.1:8443\", certs: [ { cert: \"a\\tb\", key: k } ] }\n"
	  GW_TAIL, 1, "bad.yaml:2: gateway.tls.certs[0].cert: invalid file name", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  workers: 257\n" GW_TAIL, 1,
	  "bad.yaml:3: gateway.workers: 257 is out of range 0..256", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  limits: { max_headers: 129 }\n" GW_TAIL, 1,
	  "bad.yaml:3: gateway.limits.max_headers: 129 is out of range 1..128", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  limits: { max_header_size: 100 }\n" GW_TAIL, 1,
	  "bad.yaml:3: gateway.limits.max_header_size: 100 is out of range", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  limits: { header_timeout: 10ms }\n" GW_TAIL, 1,
	  "bad.yaml:3: gateway.limits.header_timeout: 10ms is out of range 100ms..1h", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  limits: { max_body_size: -1 }\n" GW_TAIL, 1,
	  "bad.yaml:3: gateway.limits.max_body_size: -1 is out of range", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  limits: { max_conns: 0, idle: 1s }\n" GW_TAIL, 2,
	  "bad.yaml:3: gateway.limits", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  trusted_proxies: [ 10.1.2.3/8 ]\n" GW_TAIL, 1,
	  "bad.yaml:3: gateway.trusted_proxies[0]: '10.1.2.3/8' has host bits set",
	  "did you mean 10.0.0.0/8?" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  trusted_proxies: [ \"fd00::1/120\" ]\n" GW_TAIL, 1,
	  "bad.yaml:3: gateway.trusted_proxies[0]:", "fd00::/120" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  trusted_proxies: [ 10.0.0.0/33 ]\n" GW_TAIL, 1,
	  "bad.yaml:3: gateway.trusted_proxies[0]: expected an IP address or CIDR", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  trusted_proxies: [ 10.0.0.0/ ]\n" GW_TAIL, 1,
	  "bad.yaml:3: gateway.trusted_proxies[0]: expected an IP address or CIDR", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  trusted_proxies: [ proxy.local ]\n" GW_TAIL, 1,
	  "bad.yaml:3: gateway.trusted_proxies[0]: expected an IP address", "'proxy.local'" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  trusted_proxies: [ 10.0.0.0/8, 10.0.0.0/8 ]\n"
	  GW_TAIL, 1, "bad.yaml:3: gateway.trusted_proxies[1]: duplicate CIDR", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  request_id_header: \"X Id\"\n" GW_TAIL, 1,
	  "bad.yaml:3: gateway.request_id_header: invalid header name 'X Id'", "token" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  access_log: { format: xml }\n" GW_TAIL, 1,
	  "bad.yaml:3: gateway.access_log.format: invalid format 'xml'", "combined or json" },

	/* upstreams */
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams: [ u ]\n  routes: [ { upstream: u } ]\n",
	  2, "bad.yaml:3: gateway.upstreams: expected a mapping of upstream names", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    \"a/b\": { backends: "
	  "[ \"127.0.0.1:1\" ] }\n  routes: [ { upstream: a/b } ]\n", 2,
	  "bad.yaml:4: gateway.upstreams: invalid character in upstream name 'a/b'", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n"
	  "    u: { backends: [ \"127.0.0.1:1\" ] }\n    u: { backends: [ \"127.0.0.1:2\" ] }\n"
	  "  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:5: gateway.upstreams.u: duplicate upstream 'u' (first at line 4)", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { lb: fastest, backends: "
	  "[ \"127.0.0.1:1\" ] }\n  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u.lb: invalid lb 'fastest'", "round_robin, least_conn" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { lb: \"hash(cookie)\", "
	  "backends: [ \"127.0.0.1:1\" ] }\n  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u.lb: invalid hash key 'cookie'", "header:NAME" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { lb: \"hash(header:X Y)\", "
	  "backends: [ \"127.0.0.1:1\" ] }\n  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u.lb: invalid hash key 'header:X Y'", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { lb: round_robin, hash_key: "
	  "client_ip, backends: [ \"127.0.0.1:1\" ] }\n  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u.hash_key: only valid with lb: hash", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { lb: \"hash(client_ip)\", "
	  "hash_key: client_ip, backends: [ \"127.0.0.1:1\" ] }\n  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u.hash_key: the key is already given", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { lb: hash, hash_key: \"header:\", "
	  "backends: [ \"127.0.0.1:1\" ] }\n  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u.hash_key: invalid hash key 'header:'", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { lb: round_robin }\n"
	  "  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u: missing required key 'backends'", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { backends: [] }\n"
	  "  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u.backends: needs at least one backend", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u:\n      backends:\n"
	  "        - \"127.0.0.1:9001\"\n        - \"10.0.0.1:80\"\n        - \"127.0.0.1:9001\"\n"
	  "  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:8: gateway.upstreams.u.backends: duplicate backend 127.0.0.1:9001",
	  "(first at line 6)" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { backends: [ \"example.com:80\" ]"
	  " }\n  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u.backends[0]: expected ADDRESS:PORT", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { retries: 6, backends: "
	  "[ \"127.0.0.1:1\" ] }\n  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u.retries: 6 is out of range 0..5", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { connect_timeout: 2m, backends: "
	  "[ \"127.0.0.1:1\" ] }\n  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u.connect_timeout: 2m is out of range 1ms..1m", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { outlier: { ejection: 10ms }, "
	  "backends: [ \"127.0.0.1:1\" ] }\n  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u.outlier.ejection: 10ms is out of range 1s..1h", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { max_idle: 10001, backends: "
	  "[ \"127.0.0.1:1\" ] }\n  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u.max_idle: 10001 is out of range 1..10000", "" },
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n    u: { health: { type: udp }, "
	  "backends: [ \"127.0.0.1:1\" ] }\n  routes: [ { upstream: u } ]\n", 1,
	  "bad.yaml:4: gateway.upstreams.u.health.type: invalid health check type 'udp'", "" },

	/* routes */
	{ "gateway:\n  listen: \"127.0.0.1:1\"\n  routes: []\n", 1,
	  "bad.yaml:3: gateway.routes: needs at least one route", "" },
	{ GW_HEAD "    - match: { path: /a }\n", 1,
	  "bad.yaml:6: gateway.routes[0]: needs upstream", "or aggregate" },
	{ GW_HEAD "    - upstream: nope\n", 1,
	  "bad.yaml:6: gateway.routes[0].upstream: unknown upstream 'nope'", "" },
	{ GW_HEAD "    - upstream: u\n      aggregate: [ { name: a, url: \"http://127.0.0.1:1/\" } ]\n",
	  1, "bad.yaml:7: gateway.routes[0]: upstream and aggregate are exclusive", "" },
	{ GW_HEAD "    - { upstream: u, color: red }\n", 1,
	  "bad.yaml:6: gateway.routes[0]: unknown key 'color'", "" },
	{ GW_HEAD "    - { upstream: u, name: \"a b\" }\n", 1,
	  "bad.yaml:6: gateway.routes[0].name: invalid route name 'a b'", "" },
	{ GW_HEAD "    - { upstream: u, name: x, match: { path: /a } }\n"
	  "    - { upstream: u, name: x, match: { path: /b } }\n", 1,
	  "bad.yaml:7: gateway.routes[1]: duplicate route name 'x'", "line 6" },
	{ GW_HEAD "    - { upstream: u, match: { path: a } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match.path: must start with '/', got 'a'", "" },
	{ GW_HEAD "    - { upstream: u, match: { path_prefix: \"/a?b\" } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match.path_prefix: invalid character", "query" },
	{ GW_HEAD "    - { upstream: u, match: { path: /a, path_prefix: /a } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match: path and path_prefix are exclusive", "" },
	{ GW_HEAD "    - { upstream: u, match: { host: \"a.*.example\" } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match.host: host 'a.*.example'", "leading" },
	{ GW_HEAD "    - { upstream: u, match: { host: \"api.example:8000\" } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match.host:", "must not have a port" },
	{ GW_HEAD "    - { upstream: u, match: { host: \"a..example\" } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match.host:", "empty label" },
	{ GW_HEAD "    - { upstream: u, match: { methods: [ get ] } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match.methods[0]: unknown method 'get'", "upper-case" },
	{ GW_HEAD "    - { upstream: u, match: { methods: [ GET, GET ] } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match.methods[1]: method GET is listed twice", "" },
	{ GW_HEAD "    - { upstream: u, match: { methods: [] } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match.methods: must not be empty", "" },
	{ GW_HEAD "    - { upstream: u, match: { headers: { \"X:Y\": a } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match.headers: invalid header name 'X:Y'", "RFC 9110" },
	{ GW_HEAD "    - { upstream: u, match: { headers: { X-A: \"a\\r\\nX-B: b\" } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match.headers.X-A: invalid header value", "CR, LF" },
	{ GW_HEAD "    - { upstream: u, match: { headers: { X-A: \"a\\0b\" } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match.headers.X-A: invalid header value", "NUL" },
	{ GW_HEAD "    - { upstream: u, match: { headers: { X-A: a, x-a: b } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match.headers.x-a: duplicate header 'x-a'", "" },
	{ GW_HEAD "    - { upstream: u, match: { headers: { A: 1, B: 1, C: 1, D: 1, E: 1, F: 1, G: 1,"
	  " H: 1, I: 1 } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].match.headers: too many headers (9, max 8)", "" },
	{ GW_HEAD "    - { upstream: u, strip_prefix: api }\n", 1,
	  "bad.yaml:6: gateway.routes[0].strip_prefix: must start with '/'", "" },
	{ GW_HEAD "    - { upstream: u, strip_prefix: /v1, match: { path_prefix: /users } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].strip_prefix: '/v1' is not a prefix of match.path_prefix "
	  "'/users'", "" },
	{ GW_HEAD "    - { upstream: u, strip_prefix: /us, match: { path_prefix: /users } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].strip_prefix: '/us' is not a prefix", "" },
	{ GW_HEAD "    - { upstream: u, strip_prefix: /a/, match: { path_prefix: /a } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].strip_prefix: '/a/' is not a prefix", "" },
	{ GW_HEAD "    - { upstream: u, match: { path: /a, methods: [GET] } }\n"
	  "    - { upstream: u, match: { methods: [GET], path: /a } }\n", 1,
	  "bad.yaml:7: gateway.routes[1]: route 1 duplicates route 0 (line 6)", "" },
	{ GW_HEAD "    - { upstream: u, match: { host: A.example, headers: { X-A: \"1\", X-B: \"2\" } } }\n"
	  "    - { upstream: u, match: { host: a.EXAMPLE, headers: { x-b: \"2\", X-A: \"1\" } } }\n",
	  1, "bad.yaml:7: gateway.routes[1]: route 1 duplicates route 0", "" },
	{ GW_HEAD "    - { upstream: u }\n    - { upstream: u }\n", 1,
	  "bad.yaml:7: gateway.routes[1]: route 1 duplicates route 0", "" },

	/* auth */
	{ GW_HEAD "    - { upstream: u, auth: {} }\n", 1,
	  "bad.yaml:6: gateway.routes[0].auth: expected one of jwt, api_keys or basic", "" },
	{ GW_HEAD "    - upstream: u\n      auth: { jwt: { alg: HS256, secret_file: s },"
	  " basic: { users_file: f } }\n", 1,
	  "bad.yaml:7: gateway.routes[0].auth: only one of jwt, api_keys and basic", "jwt basic" },
	{ GW_HEAD "    - { upstream: u, auth: { jwt: { alg: none, secret_file: s } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].auth.jwt.alg: alg none is never accepted", "" },
	{ GW_HEAD "    - { upstream: u, auth: { jwt: { alg: HS512, secret_file: s } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].auth.jwt.alg: unsupported alg 'HS512'", "" },
	{ GW_HEAD "    - { upstream: u, auth: { jwt: { secret_file: s } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].auth.jwt: missing required key 'alg'", "" },
	{ GW_HEAD "    - { upstream: u, auth: { jwt: { alg: HS256, key_file: k.pem } } }\n", 2,
	  "bad.yaml:6: gateway.routes[0].auth.jwt", "" },
	{ GW_HEAD "    - { upstream: u, auth: { jwt: { alg: RS256, secret_file: s } } }\n", 2,
	  "bad.yaml:6: gateway.routes[0].auth.jwt", "" },
	{ GW_HEAD "    - { upstream: u, auth: { jwt: { alg: ES256 } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].auth.jwt: alg ES256 needs key_file", "jwks_file" },
	{ GW_HEAD "    - { upstream: u, auth: { jwt: { alg: ES256, key_file: a, jwks_file: b } } }\n",
	  1, "bad.yaml:6: gateway.routes[0].auth.jwt: key_file and jwks_file are exclusive", "" },
	{ GW_HEAD "    - { upstream: u, auth: { jwt: { alg: HS256, secret_file: s, leeway: 1.5s } } }\n",
	  1, "bad.yaml:6: gateway.routes[0].auth.jwt.leeway: must be whole seconds", "" },
	{ GW_HEAD "    - { upstream: u, auth: { api_keys: { header: X-Key } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].auth.api_keys: needs keys", "keys_file" },
	{ GW_HEAD "    - { upstream: u, auth: { api_keys: { keys: [ { name: ci, sha256: abc } ] } } }\n",
	  1, "bad.yaml:6: gateway.routes[0].auth.api_keys.keys[0].sha256: expected 64 hex characters",
	  "got 3 characters" },
	{ GW_HEAD "    - { upstream: u, auth: { api_keys: { keys: [ { name: ci, sha256: "
	  "\"" KEY64 "0\" } ] } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].auth.api_keys.keys[0].sha256: expected 64 hex", "65" },
	{ GW_HEAD "    - { upstream: u, auth: { api_keys: { keys: [ { name: ci, sha256: "
	  "\"" "g" KEY64 "\" } ] } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].auth.api_keys.keys[0].sha256: expected 64 hex", "" },
	{ GW_HEAD "    - upstream: u\n      auth:\n        api_keys:\n          keys:\n"
	  "            - { name: a, sha256: " KEY64 " }\n            - { name: b, sha256: " KEY64
	  " }\n", 1, "bad.yaml:11: gateway.routes[0].auth.api_keys.keys[1].sha256: the same key hash "
	  "as key 'a' (line 10)", "" },
	{ GW_HEAD "    - { upstream: u, auth: { api_keys: { keys: [ { sha256: " KEY64 " } ] } } }\n",
	  1, "bad.yaml:6: gateway.routes[0].auth.api_keys.keys[0]: missing required key 'name'", "" },
	{ GW_HEAD "    - { upstream: u, auth: { basic: { realm: x } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].auth.basic: missing required key 'users_file'", "" },
	{ GW_HEAD "    - { upstream: u, auth: { basic: { users_file: f, realm: \"a\\\"b\" } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].auth.basic.realm: no control characters", "" },
	{ GW_HEAD "    - { upstream: u, auth: { identity_header: \"X Sub\", basic: { users_file: f } } }\n",
	  1, "bad.yaml:6: gateway.routes[0].auth.identity_header: invalid header name", "" },

	/* rate limits */
	{ GW_HEAD "    - { upstream: u, rate_limit: { rate: 0 } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].rate_limit.rate: 0 is out of range 1..1000000000", "" },
	{ GW_HEAD "    - { upstream: u, rate_limit: { burst: 5 } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].rate_limit: missing required key 'rate'", "" },
	{ GW_HEAD "    - { upstream: u, rate_limit: { rate: 1, burst: 0 } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].rate_limit.burst: 0 is out of range", "" },
	{ GW_HEAD "    - { upstream: u, rate_limit: { rate: 1, key: user } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].rate_limit.key: invalid key 'user'", "jwt_sub" },
	{ GW_HEAD "    - { upstream: u, rate_limit: { rate: 1, key: api_key } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].rate_limit.key: key api_key needs auth: { api_keys", "" },
	{ GW_HEAD "    - upstream: u\n      auth: { basic: { users_file: f } }\n"
	  "      rate_limit: { rate: 1, key: jwt_sub }\n", 1,
	  "bad.yaml:8: gateway.routes[0].rate_limit.key: key jwt_sub needs auth: { jwt", "" },
	{ GW_HEAD "    - { upstream: u, rate_limit: { rate: 1, burst: 1000000000, period: 1d } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].rate_limit.period: invalid duration '1d'", "" },
	{ GW_HEAD "    - { upstream: u, rate_limit: { rate: 1, burst: 1000000000, period: 24h } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].rate_limit: burst 1000000000 times period", "too large" },

	/* header edits */
	{ GW_HEAD "    - { upstream: u, request_headers: { add: { Content-Length: \"5\" } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].request_headers.add.Content-Length: header "
	  "'Content-Length' is managed by the gateway", "" },
	{ GW_HEAD "    - { upstream: u, response_headers: { remove: [ transfer-encoding ] } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].response_headers.remove[0]: header 'transfer-encoding' is "
	  "managed", "" },
	{ GW_HEAD "    - { upstream: u, request_headers: { remove: [ X-A, x-a ] } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].request_headers.remove[1]: header 'x-a' is listed twice", "" },
	{ GW_HEAD "    - { upstream: u, request_headers: { add: { X-A: \"a\\nb\" } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].request_headers.add.X-A: invalid header value", "" },
	{ GW_HEAD "    - { upstream: u, request_headers: { set: { X-A: a } } }\n", 1,
	  "bad.yaml:6: gateway.routes[0].request_headers: unknown key 'set'", "" },

	/* aggregate */
	{ GW_HEAD "    - { aggregate: [] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate: needs at least one member", "" },
	{ GW_HEAD "    - { aggregate: [ { name: a, url: \"https://127.0.0.1:1/x\" } ] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate[0].url: invalid url", "not supported for aggregate "
	  "members" },
	{ GW_HEAD "    - { aggregate: [ { name: a, url: \"http://localhost:1/x\" } ] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate[0].url: invalid url", "literal IP" },
	{ GW_HEAD "    - { aggregate: [ { name: a, url: \"http://u:p@127.0.0.1:1/x\" } ] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate[0].url:", "userinfo" },
	{ GW_HEAD "    - { aggregate: [ { name: a, url: \"http://127.0.0.1:1/x#f\" } ] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate[0].url:", "fragment" },
	{ GW_HEAD "    - { aggregate: [ { name: a, url: \"http://::1:80/x\" } ] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate[0].url:", "must be in brackets" },
	{ GW_HEAD "    - { aggregate: [ { name: a, url: \"http://[::1/x\" } ] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate[0].url:", "unterminated" },
	{ GW_HEAD "    - { aggregate: [ { name: a, url: \"http://[127.0.0.1]:80/x\" } ] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate[0].url:", "only IPv6 addresses go in brackets" },
	{ GW_HEAD "    - { aggregate: [ { name: a, url: \"http://[::1]x/\" } ] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate[0].url:", ":PORT" },
	{ GW_HEAD "    - { aggregate: [ { name: a, url: \"http://127.0.0.1:0/x\" } ] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate[0].url:", "1..65535" },
	{ GW_HEAD "    - { aggregate: [ { name: a, url: \"http://127.0.0.1:/x\" } ] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate[0].url:", ":PORT" },
	{ GW_HEAD "    - { aggregate: [ { name: a, url: \"ftp://127.0.0.1/x\" } ] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate[0].url:", "http://IP:PORT/path" },
	{ GW_HEAD "    - aggregate:\n        - { name: a, url: \"http://127.0.0.1:1/\" }\n"
	  "        - { name: a, url: \"http://127.0.0.1:2/\" }\n", 1,
	  "bad.yaml:8: gateway.routes[0].aggregate[1].name: duplicate member name 'a' "
	  "(first at line 7)", "" },
	{ GW_HEAD "    - { aggregate: [ { name: \"a\\\"b\", url: \"http://127.0.0.1:1/\" } ] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate[0].name: invalid member name", "JSON" },
	{ GW_HEAD "    - { aggregate: [ { url: \"http://127.0.0.1:1/\" } ] }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate[0]: missing required key 'name'", "" },
	{ GW_HEAD "    - { aggregate: [ { name: a, url: \"http://127.0.0.1:1/\", timeout: 0ms } ] }\n",
	  1, "bad.yaml:6: gateway.routes[0].aggregate[0].timeout: 0ms is out of range", "" },
	{ GW_HEAD "    - { upstream: u, aggregate_timeout: 1s }\n", 1,
	  "bad.yaml:6: gateway.routes[0].aggregate_timeout: only valid with aggregate", "" },
	{ GW_HEAD "    - { aggregate: [ { name: a, url: \"http://127.0.0.1:1/\" } ], strip_prefix: /a }\n",
	  1, "bad.yaml:6: gateway.routes[0].strip_prefix: only valid with upstream", "" },
};

static void test_gw_bad_table(void)
{
	for (size_t i = 0; i < sizeof(gw_bad_cases) / sizeof(gw_bad_cases[0]); i++) {
		struct td_config cfg;

		CU_ASSERT_TRUE(td_bad_cfg_check(i, &gw_bad_cases[i], &cfg));
		CU_ASSERT_FALSE(cfg.gateway.on);   /* cfg left empty on error */
		CU_ASSERT_PTR_NULL(cfg.gateway.routes);
	}
}

/* one run reports every problem, each with its own line, in file order */
static void test_gw_multiple_errors(void)
{
	static const char yaml[] =
		"gateway:\n"                                           /* 1 */
		"  listen: [ \"127.0.0.1:80\", \"1.2.3.4\" ]\n"        /* 2 */
		"  workers: many\n"                                    /* 3 */
		"  upstreams:\n"                                       /* 4 */
		"    u:\n"                                             /* 5 */
		"      backends: [ \"127.0.0.1:1\" ]\n"                /* 6 */
		"      lb: best\n"                                     /* 7 */
		"  routes:\n"                                          /* 8 */
		"    - upstream: v\n"                                  /* 9 */
		"      match: { path: x }\n"                           /* 10 */
		"    - upstream: u\n"                                  /* 11 */
		"      auth: { jwt: { alg: none } }\n"                 /* 12 */
		"      rate_limit: { rate: 1, key: api_key }\n";       /* 13 */
	static const char *const want[] = {
		"m.yaml:2: gateway.listen[1]: expected ADDRESS:PORT",
		"m.yaml:3: gateway.workers: expected an integer, got 'many'",
		"m.yaml:7: gateway.upstreams.u.lb: invalid lb 'best'",
		"m.yaml:9: gateway.routes[0].upstream: unknown upstream 'v'",
		"m.yaml:10: gateway.routes[0].match.path: must start with '/'",
		"m.yaml:12: gateway.routes[1].auth.jwt.alg: alg none is never accepted",
		"m.yaml:13: gateway.routes[1].rate_limit.key: key api_key needs auth",
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

/* the limits: at the bound passes, one over fails */
static void test_gw_limits(void)
{
	struct td_errors errs = { 0 };
	struct td_config cfg;
	size_t len = 0, cap = 1 << 20;
	char *y = malloc(cap);
	int err;

	CU_ASSERT_PTR_NOT_NULL_FATAL(y);
	/* TD_GW_MAX_AGGREGATE members pass, one more fails */
	for (unsigned int extra = 0; extra < 2; extra++) {
		len = (size_t)snprintf(y, cap, "gateway:\n  listen: \"127.0.0.1:1\"\n  routes:\n"
				       "    - aggregate:\n");
		for (unsigned int i = 0; i < TD_GW_MAX_AGGREGATE + extra; i++)
			len += (size_t)snprintf(y + len, cap - len,
						"        - { name: m%u, url: \"http://127.0.0.1:%u/\" }\n",
						i, 1000 + i);
		err = td_config_load_buf("l.yaml", y, len, &cfg, &errs);
		if (!extra) {
			gw_print(&errs);
			CU_ASSERT_EQUAL(err, 0);
			CU_ASSERT_EQUAL(cfg.gateway.routes[0].n_aggregate, TD_GW_MAX_AGGREGATE);
		} else {
			CU_ASSERT_EQUAL(err, -EINVAL);
			CU_ASSERT_EQUAL(errs.n, 1);
			if (errs.n)
				CU_ASSERT_PTR_NOT_NULL(strstr(errs.msgs[0], "too many members (33, max 32)"));
		}
		td_config_free(&cfg);
		td_errors_free(&errs);
	}
	/* TD_GW_MAX_BACKENDS backends, 1000 routes with distinct matches */
	len = (size_t)snprintf(y, cap, "gateway:\n  listen: \"127.0.0.1:1\"\n  upstreams:\n"
			       "    u:\n      backends:\n");
	for (unsigned int i = 0; i < TD_GW_MAX_BACKENDS; i++)
		len += (size_t)snprintf(y + len, cap - len, "        - \"10.0.%u.%u:80\"\n", i / 256,
					i % 256);
	len += (size_t)snprintf(y + len, cap - len, "  routes:\n");
	for (unsigned int i = 0; i < 1000; i++)
		len += (size_t)snprintf(y + len, cap - len,
					"    - { upstream: u, match: { path_prefix: /p%u } }\n", i);
	err = td_config_load_buf("l.yaml", y, len, &cfg, &errs);
	gw_print(&errs);
	CU_ASSERT_EQUAL(err, 0);
	CU_ASSERT_EQUAL(cfg.gateway.upstreams[0].n_backends, TD_GW_MAX_BACKENDS);
	CU_ASSERT_EQUAL(cfg.gateway.n_routes, 1000);
	td_config_free(&cfg);
	td_errors_free(&errs);
	free(y);
}

int td_suite_config_gw(void)
{
	CU_pSuite s = CU_add_suite("config gateway", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "full example", test_gw_full) ||
	    !CU_add_test(s, "absent section and defaults", test_gw_absent_and_defaults) ||
	    !CU_add_test(s, "bad configs table", test_gw_bad_table) ||
	    !CU_add_test(s, "multiple errors together", test_gw_multiple_errors) ||
	    !CU_add_test(s, "limits", test_gw_limits))
		return CU_get_error();
	return 0;
}

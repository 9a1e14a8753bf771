/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for the YAML config loader: full example, defaults, and a table of bad configs. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/CUnit.h>

#include "addr.h"
#include "config.h"
#include "unit.h"

static const char full_example[] =
	"# full example\n"                                          /* 1 */
	"node:\n"                                                   /* 2 */
	"  bpffs: /sys/fs/bpf/td-test\n"                            /* 3 */
	"  interfaces:\n"                                           /* 4 */
	"    - { name: eth0, xdp_mode: native }\n"                  /* 5 */
	"    - name: veth-lb1\n"                                    /* 6 */
	"      xdp_mode: generic\n"                                 /* 7 */
	"    - name: eth2\n"                                        /* 8 */
	"l4:\n"                                                     /* 9 */
	"  maglev_size: 251\n"                                      /* 10 */
	"  conntrack_size: 4096\n"                                  /* 11 */
	"  services:\n"                                             /* 12 */
	"    - name: web\n"                                         /* 13 */
	"      vip: 10.200.0.100\n"                                 /* 14 */
	"      port: 80\n"                                          /* 15 */
	"      proto: tcp\n"                                        /* 16 */
	"      mode: nat\n"                                         /* 17 */
	"      backends:\n"                                         /* 18 */
	"        - { address: 10.0.1.11, port: 8080, weight: 1 }\n" /* 19 */
	"        - { address: 10.0.1.12, port: 8080, weight: 3 }\n" /* 20 */
	"        - { address: 10.0.1.13 }\n"                        /* 21 */
	"        - { address: 10.0.1.11, port: 8081, weight: 0 }\n" /* 22 */
	"    - name: dns6\n"                                        /* 23 */
	"      vip: fd00::53\n"                                     /* 24 */
	"      port: 53\n"                                          /* 25 */
	"      proto: udp\n"                                        /* 26 */
	"      mode: dsr\n"                                         /* 27 */
	"      backends:\n"                                         /* 28 */
	"        - address: fd00:1::1\n"                            /* 29 */
	"          port: 53\n"                                      /* 30 */
	"          weight: 65535\n"                                 /* 31 */
	"    - name: web.udp_2-x\n"                                 /* 32 */
	"      vip: 10.200.0.100\n"                                 /* 33 */
	"      port: 80\n"                                          /* 34 */
	"      proto: udp\n";                                       /* 35 */

static void assert_addr(const union td_addr *a, __u8 fam, const char *want)
{
	char buf[TD_ADDRSTRLEN];

	CU_ASSERT_STRING_EQUAL(td_addr_format(a, fam, buf, sizeof(buf)), want);
}

static void test_full_example(void)
{
	struct td_errors errs = { 0 };
	struct td_config cfg;
	const struct td_service_cfg *s;
	const struct td_backend_cfg *b;
	int err;

	err = td_config_load_buf("full.yaml", full_example, strlen(full_example), &cfg, &errs);
	for (size_t i = 0; i < errs.n; i++)
		printf("\n    unexpected: %s", errs.msgs[i]);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	CU_ASSERT_EQUAL(errs.n, 0);

	CU_ASSERT_STRING_EQUAL(cfg.bpffs, "/sys/fs/bpf/td-test");
	CU_ASSERT_EQUAL(cfg.maglev_size, 251);
	CU_ASSERT_EQUAL(cfg.conntrack_size, 4096);

	CU_ASSERT_EQUAL_FATAL(cfg.n_ifaces, 3);
	CU_ASSERT_STRING_EQUAL(cfg.ifaces[0].name, "eth0");
	CU_ASSERT_EQUAL(cfg.ifaces[0].xdp_mode, TD_XDP_NATIVE);
	CU_ASSERT_EQUAL(cfg.ifaces[0].line, 5);
	CU_ASSERT_STRING_EQUAL(cfg.ifaces[1].name, "veth-lb1");
	CU_ASSERT_EQUAL(cfg.ifaces[1].xdp_mode, TD_XDP_GENERIC);
	CU_ASSERT_EQUAL(cfg.ifaces[1].line, 6);
	CU_ASSERT_STRING_EQUAL(cfg.ifaces[2].name, "eth2");
	CU_ASSERT_EQUAL(cfg.ifaces[2].xdp_mode, TD_XDP_NATIVE);   /* default */

	CU_ASSERT_EQUAL_FATAL(cfg.n_services, 3);
	s = &cfg.services[0];
	CU_ASSERT_STRING_EQUAL(s->name, "web");
	CU_ASSERT_EQUAL(s->family, TD_AF_INET);
	CU_ASSERT_EQUAL(s->vip.v4, htonl(0x0ac80064));   /* 10.200.0.100, network order */
	CU_ASSERT_EQUAL(s->vip.v6[1] | s->vip.v6[2] | s->vip.v6[3], 0);
	CU_ASSERT_EQUAL(s->port, 80);
	CU_ASSERT_EQUAL(s->proto, TD_PROTO_TCP);
	CU_ASSERT_EQUAL(s->mode, TD_MODE_NAT);
	CU_ASSERT_EQUAL(s->line, 13);
	CU_ASSERT_EQUAL_FATAL(s->n_backends, 4);
	b = s->backends;
	CU_ASSERT_EQUAL(b[0].addr.v4, htonl(0x0a00010b));
	CU_ASSERT_EQUAL(b[0].family, TD_AF_INET);
	CU_ASSERT_EQUAL(b[0].port, 8080);
	CU_ASSERT_EQUAL(b[0].weight, 1);
	CU_ASSERT_EQUAL(b[0].line, 19);
	CU_ASSERT_EQUAL(b[1].addr.v4, htonl(0x0a00010c));
	CU_ASSERT_EQUAL(b[1].port, 8080);
	CU_ASSERT_EQUAL(b[1].weight, 3);
	CU_ASSERT_EQUAL(b[1].line, 20);
	CU_ASSERT_EQUAL(b[2].addr.v4, htonl(0x0a00010d));
	CU_ASSERT_EQUAL(b[2].port, 80);     /* default: service port */
	CU_ASSERT_EQUAL(b[2].weight, 1);    /* default */
	CU_ASSERT_EQUAL(b[3].addr.v4, htonl(0x0a00010b));
	CU_ASSERT_EQUAL(b[3].port, 8081);
	CU_ASSERT_EQUAL(b[3].weight, 0);

	s = &cfg.services[1];
	CU_ASSERT_STRING_EQUAL(s->name, "dns6");
	CU_ASSERT_EQUAL(s->family, TD_AF_INET6);
	CU_ASSERT_EQUAL(s->vip.bytes[0], 0xfd);
	CU_ASSERT_EQUAL(s->vip.bytes[15], 0x53);
	assert_addr(&s->vip, s->family, "fd00::53");
	CU_ASSERT_EQUAL(s->port, 53);
	CU_ASSERT_EQUAL(s->proto, TD_PROTO_UDP);
	CU_ASSERT_EQUAL(s->mode, TD_MODE_DSR);
	CU_ASSERT_EQUAL(s->line, 23);
	CU_ASSERT_EQUAL_FATAL(s->n_backends, 1);
	assert_addr(&s->backends[0].addr, s->backends[0].family, "fd00:1::1");
	CU_ASSERT_EQUAL(s->backends[0].family, TD_AF_INET6);
	CU_ASSERT_EQUAL(s->backends[0].port, 53);
	CU_ASSERT_EQUAL(s->backends[0].weight, 65535);
	CU_ASSERT_EQUAL(s->backends[0].line, 29);

	s = &cfg.services[2];
	CU_ASSERT_STRING_EQUAL(s->name, "web.udp_2-x");
	CU_ASSERT_EQUAL(s->vip.v4, htonl(0x0ac80064));
	CU_ASSERT_EQUAL(s->proto, TD_PROTO_UDP);   /* same vip:port as web, other proto: fine */
	CU_ASSERT_EQUAL(s->mode, TD_MODE_NAT);     /* default */
	CU_ASSERT_EQUAL(s->n_backends, 0);
	CU_ASSERT_PTR_NULL(s->backends);

	td_config_free(&cfg);
	CU_ASSERT_EQUAL(cfg.n_services, 0);
	CU_ASSERT_PTR_NULL(cfg.services);
	td_errors_free(&errs);
}

static void expect_ok(const char *yaml, size_t n_services)
{
	struct td_errors errs = { 0 };
	struct td_config cfg;
	int err = td_config_load_buf("ok.yaml", yaml, strlen(yaml), &cfg, &errs);

	for (size_t i = 0; i < errs.n; i++)
		printf("\n    unexpected: %s", errs.msgs[i]);
	CU_ASSERT_EQUAL(err, 0);
	CU_ASSERT_EQUAL(errs.n, 0);
	CU_ASSERT_EQUAL(cfg.n_services, n_services);
	CU_ASSERT_STRING_EQUAL(cfg.bpffs, TD_BPFFS_DEFAULT);
	CU_ASSERT_STRING_EQUAL(cfg.admin_socket, TD_ADMIN_SOCKET_DEFAULT);
	CU_ASSERT_STRING_EQUAL(cfg.metrics_listen, TD_METRICS_LISTEN_DEFAULT);
	CU_ASSERT_EQUAL(cfg.maglev_size, TD_MAGLEV_DEFAULT);
	CU_ASSERT_EQUAL(cfg.conntrack_size, TD_CT_DEFAULT);
	td_config_free(&cfg);
	td_errors_free(&errs);
}

/* node.admin_socket and node.metrics_listen values, and td_listen_parse */
static void test_node_endpoints(void)
{
	static const char yaml[] = "node:\n  admin_socket: /run/tdt/a.sock\n"
				   "  metrics_listen: \"[::1]:9470\"\n";
	static const char off[] = "node:\n  metrics_listen: off\n";
	struct td_errors errs = { 0 };
	struct td_config cfg;
	union td_addr a;
	__u8 fam;
	__u16 port;

	CU_ASSERT_EQUAL(td_config_load_buf("ok.yaml", yaml, strlen(yaml), &cfg, &errs), 0);
	CU_ASSERT_STRING_EQUAL(cfg.admin_socket, "/run/tdt/a.sock");
	CU_ASSERT_STRING_EQUAL(cfg.metrics_listen, "[::1]:9470");
	td_config_free(&cfg);
	CU_ASSERT_EQUAL(td_config_load_buf("ok.yaml", off, strlen(off), &cfg, &errs), 0);
	CU_ASSERT_STRING_EQUAL(cfg.metrics_listen, "");
	td_config_free(&cfg);
	CU_ASSERT_EQUAL(errs.n, 0);
	td_errors_free(&errs);

	CU_ASSERT_EQUAL(td_listen_parse("127.0.0.1:9469", &a, &fam, &port), 0);
	CU_ASSERT_EQUAL(fam, TD_AF_INET);
	CU_ASSERT_EQUAL(port, 9469);
	CU_ASSERT_EQUAL(a.v4, htonl(0x7f000001));
	CU_ASSERT_EQUAL(td_listen_parse("[::1]:1", &a, &fam, &port), 0);
	CU_ASSERT_EQUAL(fam, TD_AF_INET6);
	CU_ASSERT_EQUAL(td_listen_parse("[127.0.0.1]:80", &a, &fam, &port), -EINVAL);
	CU_ASSERT_EQUAL(td_listen_parse("1.2.3.4:65536", &a, &fam, &port), -EINVAL);
	CU_ASSERT_EQUAL(td_listen_parse("1.2.3.4:", &a, &fam, &port), -EINVAL);
	CU_ASSERT_EQUAL(td_listen_parse(":80", &a, &fam, &port), -EINVAL);
}

static void test_minimal(void)
{
	expect_ok("", 0);
	expect_ok("# only a comment\n", 0);
	expect_ok("---\n", 0);
	expect_ok("node:\n", 0);
	expect_ok("node:\nl4:\n", 0);
	expect_ok("l4:\n  services: []\n", 0);
	expect_ok("l4:\n  services:\n    - { name: a, vip: 10.0.0.1, port: 1 }\n", 1);
	/* total weight 0 is allowed: the service drops */
	expect_ok("l4:\n  services:\n    - name: a\n      vip: 10.0.0.1\n      port: 65535\n"
		  "      backends: [ { address: 10.0.0.2, weight: 0 } ]\n", 1);
}

struct bad_case {
	const char *desc;
	const char *yaml;
	const char *prefix;     /* exact start of the first message */
	const char *substr;     /* must appear in the first message */
	size_t n_errs;          /* exact number of messages */
};

#define SVC "l4:\n  services:\n    - name: web\n      vip: 10.0.0.1\n      port: 80\n"
/* lines:  1    2             3                 4                  5 */

static const struct bad_case bad_cases[] = {
	{ "syntax error (unclosed flow)", "l4:\n  services: [ { name: a }\n  x: 1\n",
	  "bad.yaml:3:", "YAML syntax error", 1 },
	{ "syntax error (tab indent)", "node:\n\tbpffs: /x\n", "bad.yaml:2:", "YAML syntax error",
	  1 },
	{ "unknown top-level key", "node:\n  bpffs: /a\nmeshes: {}\n", "bad.yaml:3:",
	  "unknown key 'meshes'", 1 },
	{ "unknown key in service", SVC "      prot: udp\n", "bad.yaml:6:",
	  "l4.services[0]: unknown key 'prot'", 1 },
	{ "unknown key in backend", SVC "      backends:\n        - { address: 10.0.0.2, wieght: 2 }\n",
	  "bad.yaml:7:", "l4.services[0].backends[0]: unknown key 'wieght'", 1 },
	{ "port 0", "l4:\n  services:\n    - name: web\n      vip: 10.0.0.1\n      port: 0\n",
	  "bad.yaml:5:", "l4.services[0].port: 0 is out of range 1..65535", 1 },
	{ "port 70000", "l4:\n  services:\n    - name: web\n      vip: 10.0.0.1\n      port: 70000\n",
	  "bad.yaml:5:", "70000 is out of range 1..65535", 1 },
	{ "port not a number", "l4:\n  services:\n    - name: web\n      vip: 10.0.0.1\n      port: http\n",
	  "bad.yaml:5:", "expected an integer, got 'http'", 1 },
	{ "quoted port", "l4:\n  services:\n    - name: web\n      vip: 10.0.0.1\n      port: \"80\"\n",
	  "bad.yaml:5:", "expected an integer", 1 },
	{ "bad vip", "l4:\n  services:\n    - name: web\n      vip: 10.0.0.300\n      port: 80\n",
	  "bad.yaml:4:", "l4.services[0].vip: invalid IP address '10.0.0.300'", 1 },
	{ "vip with port", "l4:\n  services:\n    - name: web\n      vip: \"10.0.0.1:80\"\n      port: 80\n",
	  "bad.yaml:4:", "invalid IP address", 1 },
	{ "bad proto", SVC "      proto: sctp\n", "bad.yaml:6:",
	  "invalid proto 'sctp' (expected tcp or udp)", 1 },
	{ "bad mode", SVC "      mode: tunnel\n", "bad.yaml:6:",
	  "invalid mode 'tunnel' (expected nat or dsr)", 1 },
	{ "missing vip", "l4:\n  services:\n    - name: web\n      port: 80\n", "bad.yaml:3:",
	  "l4.services[0]: missing required key 'vip'", 1 },
	{ "missing name", "l4:\n  services:\n    - vip: 10.0.0.1\n      port: 80\n", "bad.yaml:3:",
	  "missing required key 'name'", 1 },
	{ "missing port", "l4:\n  services:\n    - name: a\n      vip: 10.0.0.1\n", "bad.yaml:3:",
	  "missing required key 'port'", 1 },
	{ "missing backend address", SVC "      backends:\n        - { port: 81 }\n", "bad.yaml:7:",
	  "l4.services[0].backends[0]: missing required key 'address'", 1 },
	{ "duplicate service names", SVC "    - name: web\n      vip: 10.0.0.2\n      port: 80\n",
	  "bad.yaml:6:", "duplicate service name 'web' (first at line 3)", 1 },
	{ "duplicate vip:port:proto", SVC "    - name: web2\n      vip: 10.0.0.1\n      port: 80\n"
	  "      proto: tcp\n", "bad.yaml:6:",
	  "duplicate endpoint 10.0.0.1:80/tcp: already used by service 'web' (line 3)", 1 },
	{ "duplicate v6 endpoint", "l4:\n  services:\n    - { name: a, vip: 'fd00::1', port: 53 }\n"
	  "    - { name: b, vip: 'fd00:0::1', port: 53 }\n", "bad.yaml:4:",
	  "duplicate endpoint [fd00::1]:53/tcp", 1 },
	{ "family mismatch", SVC "      backends:\n        - address: fd00::2\n", "bad.yaml:7:",
	  "backend fd00::2 is IPv6 but the VIP of service 'web' is IPv4", 1 },
	{ "dsr port mismatch", SVC "      mode: dsr\n      backends:\n        - { address: 10.0.0.2, port: 8080 }\n",
	  "bad.yaml:8:", "mode dsr cannot change the port: backend port 8080 differs from service port 80", 1 },
	{ "duplicate backend", SVC "      backends:\n        - { address: 10.0.0.2, port: 81 }\n"
	  "        - { address: 10.0.0.3 }\n        - { address: 10.0.0.2, port: 81, weight: 5 }\n",
	  "bad.yaml:9:", "duplicate backend 10.0.0.2:81 (first at line 7)", 1 },
	{ "duplicate backend via default port", SVC "      backends:\n        - { address: 10.0.0.2 }\n"
	  "        - { address: 10.0.0.2, port: 80 }\n",
	  "bad.yaml:8:", "duplicate backend 10.0.0.2:80", 1 },
	{ "weight 70000", SVC "      backends:\n        - { address: 10.0.0.2, weight: 70000 }\n",
	  "bad.yaml:7:", "weight: 70000 is out of range 0..65535", 1 },
	{ "weight negative", SVC "      backends:\n        - { address: 10.0.0.2, weight: -1 }\n",
	  "bad.yaml:7:", "-1 is out of range 0..65535", 1 },
	{ "non-prime maglev_size", "l4:\n  maglev_size: 65536\n", "bad.yaml:2:",
	  "l4.maglev_size: 65536 is not a prime number", 1 },
	{ "maglev_size too small", "l4:\n  maglev_size: 5\n", "bad.yaml:2:",
	  "5 is out of range 7..1048573", 1 },
	{ "maglev_size too big", "l4:\n  maglev_size: 1048583\n", "bad.yaml:2:",
	  "out of range 7..1048573", 1 },
	{ "conntrack_size too small", "l4:\n  conntrack_size: 100\n", "bad.yaml:2:",
	  "l4.conntrack_size: 100 is out of range 1024..16777216", 1 },
	{ "relative bpffs", "node:\n  bpffs: sys/fs/bpf/td\n", "bad.yaml:2:",
	  "node.bpffs: must be an absolute path, got 'sys/fs/bpf/td'", 1 },
	{ "relative admin_socket", "node:\n  admin_socket: run/td.sock\n", "bad.yaml:2:",
	  "node.admin_socket: must be an absolute path", 1 },
	{ "metrics_listen without port", "node:\n  metrics_listen: 127.0.0.1\n", "bad.yaml:2:",
	  "node.metrics_listen: expected ADDRESS:PORT", 1 },
	{ "metrics_listen v6 without brackets", "node:\n  metrics_listen: \"::1:9469\"\n",
	  "bad.yaml:2:", "node.metrics_listen: expected ADDRESS:PORT", 1 },
	{ "metrics_listen port 0", "node:\n  metrics_listen: 127.0.0.1:0\n", "bad.yaml:2:",
	  "node.metrics_listen: expected ADDRESS:PORT", 1 },
	{ "metrics_listen hostname", "node:\n  metrics_listen: localhost:9469\n", "bad.yaml:2:",
	  "node.metrics_listen: expected ADDRESS:PORT", 1 },
	{ "bad xdp_mode", "node:\n  interfaces:\n    - name: eth0\n      xdp_mode: offload\n",
	  "bad.yaml:4:", "invalid xdp_mode 'offload' (expected native or generic)", 1 },
	{ "too-long service name", "l4:\n  services:\n"
	  "    - { name: abcdefghijklmnopqrstuvwxyz012345, vip: 10.0.0.1, port: 80 }\n",
	  "bad.yaml:3:", "is too long (max 31 characters)", 1 },
	{ "bad characters in name", "l4:\n  services:\n    - { name: 'my web', vip: 10.0.0.1, port: 80 }\n",
	  "bad.yaml:3:", "invalid character in name 'my web'", 1 },
	{ "too-long interface name", "node:\n  interfaces:\n    - name: abcdefghijklmnop\n",
	  "bad.yaml:3:", "interface name 'abcdefghijklmnop' is too long (max 15 characters)", 1 },
	{ "duplicate interface", "node:\n  interfaces:\n    - name: eth0\n    - name: eth0\n",
	  "bad.yaml:4:", "duplicate interface 'eth0' (first at line 3)", 1 },
	{ "list where map expected", "l4:\n  - services\n", "bad.yaml:2:",
	  "l4: expected a mapping, got a list", 1 },
	{ "map where list expected", "l4:\n  services:\n    name: web\n", "bad.yaml:3:",
	  "l4.services: expected a list, got a mapping", 1 },
	{ "map where string expected", SVC "      proto: { a: 1 }\n", "bad.yaml:6:",
	  "l4.services[0].proto: expected a string, got a mapping", 1 },
	{ "scalar top level", "hello\n", "bad.yaml:1:", "top level: expected a mapping, got a scalar", 1 },
	{ "duplicate key", "node:\n  bpffs: /a\n  bpffs: /b\n", "bad.yaml:3:",
	  "node: duplicate key 'bpffs'", 1 },
	{ "two documents", "node:\n---\nl4:\n", "bad.yaml:3:", "only one YAML document is allowed", 1 },
	{ "empty name", "l4:\n  services:\n    - { name: '', vip: 10.0.0.1, port: 80 }\n",
	  "bad.yaml:3:", "l4.services[0].name: value must not be empty", 1 },
	/* health: SVC ends at line 5, "health:" is line 6 */
	{ "health unknown key", SVC "      health: { type: tcp, intervall: 1s }\n", "bad.yaml:6:",
	  "l4.services[0].health: unknown key 'intervall'", 1 },
	{ "health missing type", SVC "      health: { interval: 1s }\n", "bad.yaml:6:",
	  "l4.services[0].health: missing required key 'type'", 1 },
	{ "health empty value", SVC "      health:\n", "bad.yaml:6:",
	  "l4.services[0].health: missing required key 'type'", 1 },
	{ "health as a list", SVC "      health: [ tcp ]\n", "bad.yaml:6:",
	  "l4.services[0].health: expected a mapping, got a list", 1 },
	{ "health bad type", SVC "      health: { type: udp }\n", "bad.yaml:6:",
	  "l4.services[0].health.type: invalid health check type 'udp' (expected tcp or http)", 1 },
	{ "health path with tcp", SVC "      health: { type: tcp, path: /healthz }\n", "bad.yaml:6:",
	  "l4.services[0].health.path: only valid with type http", 1 },
	{ "health relative path", SVC "      health:\n        type: http\n        path: healthz\n",
	  "bad.yaml:8:", "l4.services[0].health.path: must start with '/', got 'healthz'", 1 },
	{ "health path with a space", SVC "      health: { type: http, path: '/a b' }\n",
	  "bad.yaml:6:", "health.path: invalid character in '/a b' (no spaces or control characters)",
	  1 },
	{ "health interval too short", SVC "      health:\n        type: tcp\n        interval: 50ms\n",
	  "bad.yaml:8:", "l4.services[0].health.interval: 50ms is out of range 100ms..1h", 1 },
	{ "health interval too long", SVC "      health: { type: tcp, interval: 61m }\n",
	  "bad.yaml:6:", "health.interval: 61m is out of range 100ms..1h", 1 },
	{ "health interval without unit", SVC "      health: { type: tcp, interval: 1 }\n",
	  "bad.yaml:6:", "health.interval: invalid duration '1' (expected a whole number of "
	  "milliseconds written as 500ms, 1s, 2.5s, 1m or 1h)", 1 },
	{ "health interval fraction of ms", SVC "      health: { type: tcp, interval: 100.5ms }\n",
	  "bad.yaml:6:", "invalid duration '100.5ms'", 1 },
	{ "health interval negative", SVC "      health: { type: tcp, interval: -1s }\n",
	  "bad.yaml:6:", "invalid duration '-1s'", 1 },
	{ "health interval with space", SVC "      health: { type: tcp, interval: 1 s }\n",
	  "bad.yaml:6:", "invalid duration '1 s'", 1 },
	{ "health interval as a map", SVC "      health: { type: tcp, interval: { s: 1 } }\n",
	  "bad.yaml:6:", "health.interval: expected a duration, got a mapping", 1 },
	{ "health timeout too short", SVC "      health: { type: tcp, timeout: 5ms }\n",
	  "bad.yaml:6:", "health.timeout: 5ms is out of range 10ms..1h", 1 },
	{ "health timeout over interval", SVC "      health: { type: tcp, interval: 1s, timeout: 1.5s }\n",
	  "bad.yaml:6:", "health.timeout: 1.5s must not exceed the interval (1s)", 1 },
	{ "health timeout over default interval", SVC "      health: { type: tcp, timeout: 2s }\n",
	  "bad.yaml:6:", "health.timeout: 2s must not exceed the interval (1s)", 1 },
	{ "health rise 0", SVC "      health: { type: tcp, rise: 0 }\n", "bad.yaml:6:",
	  "l4.services[0].health.rise: 0 is out of range 1..100", 1 },
	{ "health fall 101", SVC "      health: { type: tcp, fall: 101 }\n", "bad.yaml:6:",
	  "l4.services[0].health.fall: 101 is out of range 1..100", 1 },
	{ "health port 0", SVC "      health: { type: tcp, port: 0 }\n", "bad.yaml:6:",
	  "l4.services[0].health.port: 0 is out of range 1..65535", 1 },
	{ "health duplicate key", SVC "      health:\n        type: tcp\n        type: http\n",
	  "bad.yaml:8:", "l4.services[0].health: duplicate key 'type'", 1 },
};

static void test_bad_table(void)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct td_errors errs = { 0 };
		struct td_config cfg;
		bool ok;
		int err;

		memset(&cfg, 0x5a, sizeof(cfg));
		err = td_config_load_buf("bad.yaml", c->yaml, strlen(c->yaml), &cfg, &errs);
		ok = err == -EINVAL && errs.n == c->n_errs &&
		     !strncmp(errs.msgs[0], c->prefix, strlen(c->prefix)) &&
		     strstr(errs.msgs[0], c->substr);
		if (!ok) {
			printf("\n    case '%s': err %d, %zu messages (want %zu, '%s' ... '%s')", c->desc,
			       err, errs.n, c->n_errs, c->prefix, c->substr);
			for (size_t j = 0; j < errs.n; j++)
				printf("\n      %s", errs.msgs[j]);
		}
		CU_ASSERT_TRUE(ok);
		/* nothing changed: cfg left empty */
		CU_ASSERT_EQUAL(cfg.n_services, 0);
		CU_ASSERT_PTR_NULL(cfg.services);
		CU_ASSERT_EQUAL(cfg.n_ifaces, 0);
		CU_ASSERT_PTR_NULL(cfg.ifaces);
		CU_ASSERT_EQUAL(cfg.bpffs[0], '\0');
		CU_ASSERT_EQUAL(cfg.maglev_size, 0);
		td_errors_free(&errs);
	}
}

static void test_multiple_errors(void)
{
	static const char yaml[] =
		"node:\n"                                     /* 1 */
		"  bpffs: relative\n"                         /* 2 */
		"  colour: blue\n"                            /* 3 */
		"l4:\n"                                       /* 4 */
		"  services:\n"                               /* 5 */
		"    - name: web\n"                           /* 6 */
		"      vip: 10.0.0.1\n"                       /* 7 */
		"      port: 0\n"                             /* 8 */
		"      backends:\n"                           /* 9 */
		"        - { address: fd00::1 }\n"            /* 10 */
		"    - name: web\n"                           /* 11 */
		"      vip: 10.0.0.2\n"                       /* 12 */
		"      port: 80\n"                            /* 13 */
		"      mode: dsr\n"                           /* 14 */
		"      backends:\n"                           /* 15 */
		"        - { address: 10.0.0.3, port: 81 }\n" /* 16 */
		"        - { address: nowhere }\n";           /* 17 */
	static const char *const want[] = {
		"m.yaml:2: node.bpffs: must be an absolute path",
		"m.yaml:3: node: unknown key 'colour'",
		"m.yaml:8: l4.services[0].port: 0 is out of range",
		"m.yaml:10: l4.services[0].backends[0].address: backend fd00::1 is IPv6",
		"m.yaml:16: l4.services[1].backends[0].port: mode dsr cannot change the port",
		"m.yaml:17: l4.services[1].backends[1].address: invalid IP address 'nowhere'",
	};
	struct td_errors errs = { 0 };
	struct td_config cfg;
	size_t nwant = sizeof(want) / sizeof(want[0]);
	int err;

	err = td_config_load_buf("m.yaml", yaml, strlen(yaml), &cfg, &errs);
	CU_ASSERT_EQUAL(err, -EINVAL);
	/* the second 'web' is a duplicate name only if the first one was valid: it was not */
	CU_ASSERT_EQUAL(errs.n, nwant);
	for (size_t i = 0; i < errs.n && i < nwant; i++) {
		if (strncmp(errs.msgs[i], want[i], strlen(want[i])))
			printf("\n    got '%s'\n    want '%s'", errs.msgs[i], want[i]);
		CU_ASSERT_EQUAL(strncmp(errs.msgs[i], want[i], strlen(want[i])), 0);
	}
	CU_ASSERT_EQUAL(cfg.n_services, 0);
	td_errors_free(&errs);
	CU_ASSERT_EQUAL(errs.n, 0);
	CU_ASSERT_PTR_NULL(errs.msgs);
}

/* n services "sN" on 10.0.0.1:N (each with b backends): for the limit tests */
static char *gen_services(size_t n, size_t b)
{
	size_t cap = 256 + n * (80 + b * 48), len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	len += snprintf(buf + len, cap - len, "l4:\n  services:\n");
	for (size_t i = 0; i < n; i++) {
		len += snprintf(buf + len, cap - len,
				"    - name: s%zu\n      vip: 10.0.0.1\n      port: %zu\n", i, i + 1);
		if (b)
			len += snprintf(buf + len, cap - len, "      backends:\n");
		for (size_t j = 0; j < b; j++)
			len += snprintf(buf + len, cap - len,
					"        - { address: 10.%zu.%zu.%zu }\n", j / 65536,
					(j / 256) % 256, j % 256);
	}
	return buf;
}

static void test_limits(void)
{
	struct td_errors errs = { 0 };
	struct td_config cfg;
	char *buf;
	int err;

	/* exactly TD_MAX_SERVICES is fine, one more is not (at the 1025th item: line 2+3*1024+1) */
	buf = gen_services(TD_MAX_SERVICES, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	CU_ASSERT_EQUAL(td_config_load_buf("lim.yaml", buf, strlen(buf), &cfg, &errs), 0);
	CU_ASSERT_EQUAL(cfg.n_services, TD_MAX_SERVICES);
	td_config_free(&cfg);
	free(buf);

	buf = gen_services(TD_MAX_SERVICES + 1, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	err = td_config_load_buf("lim.yaml", buf, strlen(buf), &cfg, &errs);
	CU_ASSERT_EQUAL(err, -EINVAL);
	CU_ASSERT_EQUAL_FATAL(errs.n, 1);
	CU_ASSERT_STRING_EQUAL(errs.msgs[0],
			       "lim.yaml:3075: l4.services[1024]: too many services (max 1024)");
	td_errors_free(&errs);
	free(buf);

	/* TD_MAX_BACKENDS in total over two services is fine, one more is not */
	buf = gen_services(2, TD_MAX_BACKENDS / 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	err = td_config_load_buf("lim.yaml", buf, strlen(buf), &cfg, &errs);
	CU_ASSERT_EQUAL(err, 0);
	CU_ASSERT_EQUAL(cfg.n_services, 2);
	if (cfg.n_services == 2)
		CU_ASSERT_EQUAL(cfg.services[0].n_backends + cfg.services[1].n_backends,
				TD_MAX_BACKENDS);
	td_config_free(&cfg);
	free(buf);

	buf = gen_services(2, TD_MAX_BACKENDS / 2 + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	err = td_config_load_buf("lim.yaml", buf, strlen(buf), &cfg, &errs);
	CU_ASSERT_EQUAL(err, -EINVAL);
	CU_ASSERT_EQUAL_FATAL(errs.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(errs.msgs[0], "l4.services[1].backends[8191]: too many "
						   "backends (more than 16384 in total)"));
	td_errors_free(&errs);
	free(buf);
}

static void test_load_file(void)
{
	char path[] = "/tmp/td_unit_cfg.XXXXXX";
	struct td_errors errs = { 0 };
	struct td_config cfg;
	int fd = mkstemp(path), err;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, full_example, strlen(full_example)) ==
			(ssize_t)strlen(full_example));
	close(fd);

	err = td_config_load(path, &cfg, &errs);
	CU_ASSERT_EQUAL(err, 0);
	CU_ASSERT_EQUAL(errs.n, 0);
	CU_ASSERT_STRING_EQUAL(cfg.path, path);
	CU_ASSERT_EQUAL(cfg.n_services, 3);
	CU_ASSERT_EQUAL(cfg.maglev_size, 251);
	td_config_free(&cfg);

	/* an error names the real file */
	fd = open(path, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, "l4:\n  bogus: 1\n", 15) == 15);
	close(fd);
	err = td_config_load(path, &cfg, &errs);
	CU_ASSERT_EQUAL(err, -EINVAL);
	CU_ASSERT_EQUAL_FATAL(errs.n, 1);
	CU_ASSERT_EQUAL(strncmp(errs.msgs[0], path, strlen(path)), 0);
	CU_ASSERT_STRING_EQUAL(errs.msgs[0] + strlen(path), ":2: l4: unknown key 'bogus'");
	CU_ASSERT_EQUAL(cfg.path[0], '\0');
	td_errors_free(&errs);
	unlink(path);

	/* missing file: -ENOENT and a message */
	err = td_config_load(path, &cfg, &errs);
	CU_ASSERT_EQUAL(err, -ENOENT);
	CU_ASSERT_EQUAL_FATAL(errs.n, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(errs.msgs[0], "cannot open"));
	td_errors_free(&errs);
}

static const char health_example[] =
	"l4:\n"                                                      /* 1 */
	"  services:\n"                                              /* 2 */
	"    - name: web\n"                                          /* 3 */
	"      vip: 10.200.0.100\n"                                  /* 4 */
	"      port: 80\n"                                           /* 5 */
	"      backends: [ { address: 10.0.1.11, port: 8080 } ]\n"   /* 6 */
	"      health:\n"                                            /* 7 */
	"        type: http\n"                                       /* 8 */
	"        path: /healthz?full=1\n"                            /* 9 */
	"        interval: 2.5s\n"                                   /* 10 */
	"        timeout: 750ms\n"                                   /* 11 */
	"        rise: 1\n"                                          /* 12 */
	"        fall: 100\n"                                        /* 13 */
	"        port: 8081\n"                                       /* 14 */
	"    - { name: tcp, vip: 10.200.0.101, port: 80, health: { type: tcp } }\n"       /* 15 */
	"    - { name: http, vip: 'fd00::1', port: 80, health: { type: http, interval: 200ms } }\n"
	"    - { name: none, vip: 10.200.0.102, port: 80 }\n"       /* 17 */
	"    - { name: max, vip: 10.200.0.103, port: 80, health: { type: tcp, interval: 1h, timeout: 1m } }\n"
	"    - { name: min, vip: 10.200.0.104, port: 80, health: { type: tcp, interval: 100ms, timeout: 10ms } }\n";

static void test_health_cfg(void)
{
	struct td_errors errs = { 0 };
	struct td_config cfg;
	const struct td_health_cfg *h;
	int err;

	err = td_config_load_buf("h.yaml", health_example, strlen(health_example), &cfg, &errs);
	for (size_t i = 0; i < errs.n; i++)
		printf("\n    unexpected: %s", errs.msgs[i]);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	CU_ASSERT_EQUAL_FATAL(cfg.n_services, 6);

	h = &cfg.services[0].health;
	CU_ASSERT_EQUAL(h->type, TD_HC_HTTP);
	CU_ASSERT_STRING_EQUAL(h->path, "/healthz?full=1");
	CU_ASSERT_EQUAL(h->interval_ms, 2500);
	CU_ASSERT_EQUAL(h->timeout_ms, 750);
	CU_ASSERT_EQUAL(h->rise, 1);
	CU_ASSERT_EQUAL(h->fall, 100);
	CU_ASSERT_EQUAL(h->port, 8081);
	CU_ASSERT_EQUAL(h->line, 8);       /* the mapping starts at its first key */
	CU_ASSERT_EQUAL(cfg.services[0].n_backends, 1);

	/* defaults */
	h = &cfg.services[1].health;
	CU_ASSERT_EQUAL(h->type, TD_HC_TCP);
	CU_ASSERT_STRING_EQUAL(h->path, "");
	CU_ASSERT_EQUAL(h->interval_ms, 1000);
	CU_ASSERT_EQUAL(h->timeout_ms, 500);
	CU_ASSERT_EQUAL(h->rise, 2);
	CU_ASSERT_EQUAL(h->fall, 3);
	CU_ASSERT_EQUAL(h->port, 0);
	CU_ASSERT_EQUAL(h->line, 15);
	/* http without a path checks "/"; the default timeout is capped at the interval */
	h = &cfg.services[2].health;
	CU_ASSERT_EQUAL(h->type, TD_HC_HTTP);
	CU_ASSERT_STRING_EQUAL(h->path, "/");
	CU_ASSERT_EQUAL(h->interval_ms, 200);
	CU_ASSERT_EQUAL(h->timeout_ms, 200);
	/* no health key: no checks */
	h = &cfg.services[3].health;
	CU_ASSERT_EQUAL(h->type, TD_HC_NONE);
	CU_ASSERT_EQUAL(h->line, 0);
	CU_ASSERT_EQUAL(cfg.services[4].health.interval_ms, 3600000);
	CU_ASSERT_EQUAL(cfg.services[4].health.timeout_ms, 60000);
	CU_ASSERT_EQUAL(cfg.services[5].health.interval_ms, 100);
	CU_ASSERT_EQUAL(cfg.services[5].health.timeout_ms, 10);
	td_config_free(&cfg);
	td_errors_free(&errs);
}

static void test_health_cfg_errors(void)
{
	static const char yaml[] =
		"l4:\n"                                       /* 1 */
		"  services:\n"                               /* 2 */
		"    - name: web\n"                           /* 3 */
		"      vip: 10.0.0.1\n"                       /* 4 */
		"      port: 80\n"                            /* 5 */
		"      health:\n"                             /* 6 */
		"        type: http\n"                        /* 7 */
		"        path: healthz\n"                     /* 8 */
		"        interval: 50ms\n"                    /* 9 */
		"        timeout: 1x\n"                       /* 10 */
		"        rise: many\n"                        /* 11 */
		"        color: red\n";                       /* 12 */
	static const char *const want[] = {
		"e.yaml:8: l4.services[0].health.path: must start with '/', got 'healthz'",
		"e.yaml:9: l4.services[0].health.interval: 50ms is out of range 100ms..1h",
		"e.yaml:10: l4.services[0].health.timeout: invalid duration '1x'",
		"e.yaml:11: l4.services[0].health.rise: expected an integer, got 'many'",
		"e.yaml:12: l4.services[0].health: unknown key 'color'",
	};
	struct td_errors errs = { 0 };
	struct td_config cfg;
	size_t nwant = sizeof(want) / sizeof(want[0]);

	CU_ASSERT_EQUAL(td_config_load_buf("e.yaml", yaml, strlen(yaml), &cfg, &errs), -EINVAL);
	CU_ASSERT_EQUAL(errs.n, nwant);
	for (size_t i = 0; i < errs.n && i < nwant; i++) {
		if (strncmp(errs.msgs[i], want[i], strlen(want[i])))
			printf("\n    got '%s'\n    want '%s'", errs.msgs[i], want[i]);
		CU_ASSERT_EQUAL(strncmp(errs.msgs[i], want[i], strlen(want[i])), 0);
	}
	CU_ASSERT_EQUAL(cfg.n_services, 0);
	td_errors_free(&errs);
}

static void test_duration(void)
{
	static const struct { const char *s; int rc; __u64 ms; } cases[] = {
		{ "500ms", 0, 500 }, { "1s", 0, 1000 }, { "2.5s", 0, 2500 }, { "1m", 0, 60000 },
		{ "1h", 0, 3600000 }, { "0.5s", 0, 500 }, { "1.25m", 0, 75000 }, { "0ms", 0, 0 },
		{ "0.001s", 0, 1 }, { "10.000s", 0, 10000 },
		{ "", -EINVAL, 0 }, { "1", -EINVAL, 0 }, { "s", -EINVAL, 0 }, { ".5s", -EINVAL, 0 },
		{ "1.s", -EINVAL, 0 }, { "1.5ms", -EINVAL, 0 }, { "0.0001s", -EINVAL, 0 },
		{ "1 s", -EINVAL, 0 }, { " 1s", -EINVAL, 0 }, { "-1s", -EINVAL, 0 },
		{ "+1s", -EINVAL, 0 }, { "1S", -EINVAL, 0 }, { "1sec", -EINVAL, 0 },
		{ "1d", -EINVAL, 0 }, { "1e3ms", -EINVAL, 0 }, { "0x10s", -EINVAL, 0 },
		{ "99999999999999999999999ms", -ERANGE, 0 }, { "9999999999999999h", -ERANGE, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		__u64 ms = 12345;
		int rc = td_duration_parse_ms(cases[i].s, &ms);

		if (rc != cases[i].rc || (!rc && ms != cases[i].ms))
			printf("\n    '%s': rc %d ms %llu (want %d %llu)", cases[i].s, rc,
			       (unsigned long long)ms, cases[i].rc, (unsigned long long)cases[i].ms);
		CU_ASSERT_EQUAL(rc, cases[i].rc);
		if (!rc)
			CU_ASSERT_EQUAL(ms, cases[i].ms);
	}
	CU_ASSERT_EQUAL(td_duration_parse_ms(NULL, NULL), -EINVAL);
}

int td_suite_config(void)
{
	CU_pSuite s = CU_add_suite("config", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "full example", test_full_example) ||
	    !CU_add_test(s, "minimal and empty files", test_minimal) ||
	    !CU_add_test(s, "node admin_socket and metrics_listen", test_node_endpoints) ||
	    !CU_add_test(s, "bad configs table", test_bad_table) ||
	    !CU_add_test(s, "multiple errors together", test_multiple_errors) ||
	    !CU_add_test(s, "service and backend limits", test_limits) ||
	    !CU_add_test(s, "load from file", test_load_file) ||
	    !CU_add_test(s, "health: good", test_health_cfg) ||
	    !CU_add_test(s, "health: errors with lines", test_health_cfg_errors) ||
	    !CU_add_test(s, "durations", test_duration))
		return CU_get_error();
	return 0;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for the mesh: config section (example, defaults, bad configs) and selection tables. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <CUnit/CUnit.h>

#include "addr.h"
#include "config.h"
#include "mesh.h"
#include "unit.h"

/* the example of issue 4, plus what td adds (proto, an IPv6 service, allow from unknown) */
static const char mesh_example[] =
	"mesh:\n"                                                      /* 1 */
	"  cgroup_root: /sys/fs/cgroup\n"                              /* 2 */
	"  sockmap: false\n"                                           /* 3 */
	"  default_policy: deny\n"                                     /* 4 */
	"  services:\n"                                                /* 5 */
	"    - name: orders\n"                                         /* 6 */
	"      cgroup: td/orders\n"                                    /* 7 */
	"      vip: 10.96.0.10\n"                                      /* 8 */
	"      port: 80\n"                                             /* 9 */
	"      sockmap: true\n"                                        /* 10 */
	"      backends:\n"                                            /* 11 */
	"        - { address: 127.0.0.1, port: 9001 }\n"               /* 12 */
	"        - { address: 127.0.0.1, port: 9002, weight: 3 }\n"    /* 13 */
	"    - name: frontend\n"                                       /* 14 */
	"      cgroup: td/frontend\n"                                  /* 15 */
	"      vip: fd00:96::20\n"                                     /* 16 */
	"      port: 8080\n"                                           /* 17 */
	"    - name: dns\n"                                            /* 18 */
	"      vip: 10.96.0.53\n"                                      /* 19 */
	"      port: 53\n"                                             /* 20 */
	"      proto: udp\n"                                           /* 21 */
	"  allow:\n"                                                   /* 22 */
	"    - { from: frontend, to: orders, ports: [80] }\n"          /* 23 */
	"    - { from: unknown, to: dns }\n";                          /* 24 */

static void test_mesh_example(void)
{
	struct td_errors errs = { 0 };
	const struct td_mesh_service_cfg *s;
	struct td_config cfg;
	char buf[TD_ADDRSTRLEN];
	int err;

	err = td_config_load_buf("mesh.yaml", mesh_example, strlen(mesh_example), &cfg, &errs);
	for (size_t i = 0; i < errs.n; i++)
		printf("\n    unexpected: %s", errs.msgs[i]);
	CU_ASSERT_EQUAL_FATAL(err, 0);
	CU_ASSERT_TRUE(cfg.mesh.present);
	CU_ASSERT_STRING_EQUAL(cfg.mesh.cgroup_root, "/sys/fs/cgroup");
	CU_ASSERT_FALSE(cfg.mesh.sockmap);
	CU_ASSERT_EQUAL(cfg.mesh.default_policy, TD_MESH_POLICY_DENY);
	CU_ASSERT_EQUAL_FATAL(cfg.mesh.n_services, 3);
	s = &cfg.mesh.services[0];
	CU_ASSERT_STRING_EQUAL(s->name, "orders");
	CU_ASSERT_STRING_EQUAL(s->cgroup, "td/orders");
	CU_ASSERT_STRING_EQUAL(td_addr_format(&s->vip, s->family, buf, sizeof(buf)), "10.96.0.10");
	CU_ASSERT_EQUAL(s->port, 80);
	CU_ASSERT_EQUAL(s->proto, TD_PROTO_TCP);
	CU_ASSERT_TRUE(s->sockmap);
	CU_ASSERT_EQUAL(s->line, 6);
	CU_ASSERT_EQUAL(s->cgroup_line, 7);
	CU_ASSERT_EQUAL_FATAL(s->n_backends, 2);
	CU_ASSERT_EQUAL(s->backends[0].port, 9001);
	CU_ASSERT_EQUAL(s->backends[0].weight, 1);
	CU_ASSERT_EQUAL(s->backends[1].weight, 3);
	s = &cfg.mesh.services[1];
	CU_ASSERT_EQUAL(s->family, TD_AF_INET6);
	CU_ASSERT_FALSE(s->sockmap);          /* mesh.sockmap: false */
	CU_ASSERT_EQUAL(s->n_backends, 0);
	s = &cfg.mesh.services[2];
	CU_ASSERT_EQUAL(s->proto, TD_PROTO_UDP);
	CU_ASSERT_STRING_EQUAL(s->cgroup, "");
	CU_ASSERT_EQUAL_FATAL(cfg.mesh.n_allow, 2);
	CU_ASSERT_STRING_EQUAL(cfg.mesh.allow[0].from, "frontend");
	CU_ASSERT_STRING_EQUAL(cfg.mesh.allow[0].to, "orders");
	CU_ASSERT_EQUAL_FATAL(cfg.mesh.allow[0].n_ports, 1);
	CU_ASSERT_EQUAL(cfg.mesh.allow[0].ports[0], 80);
	CU_ASSERT_STRING_EQUAL(cfg.mesh.allow[1].from, "unknown");
	CU_ASSERT_EQUAL(cfg.mesh.allow[1].n_ports, 0);
	CU_ASSERT_EQUAL(cfg.mesh.allow[1].line, 24);
	td_config_free(&cfg);
	td_errors_free(&errs);
}

static void test_mesh_defaults(void)
{
	static const char yaml[] =
		"mesh:\n"
		"  sockmap: true\n"
		"  services:\n"
		"    - { name: a, vip: 10.0.0.1, port: 1 }\n"
		"    - { name: b, vip: 10.0.0.1, port: 1, proto: udp, sockmap: false }\n";
	struct td_errors errs = { 0 };
	struct td_config cfg;

	CU_ASSERT_EQUAL_FATAL(td_config_load_buf("d.yaml", "", 0, &cfg, &errs), 0);
	CU_ASSERT_FALSE(cfg.mesh.present);
	CU_ASSERT_EQUAL(cfg.mesh.n_services, 0);
	td_config_free(&cfg);

	CU_ASSERT_EQUAL_FATAL(td_config_load_buf("d.yaml", "mesh:\n", 6, &cfg, &errs), 0);
	CU_ASSERT_TRUE(cfg.mesh.present);
	CU_ASSERT_STRING_EQUAL(cfg.mesh.cgroup_root, "");   /* resolved from /proc/mounts later */
	CU_ASSERT_FALSE(cfg.mesh.sockmap);
	CU_ASSERT_EQUAL(cfg.mesh.default_policy, TD_MESH_POLICY_DENY);
	td_config_free(&cfg);

	CU_ASSERT_EQUAL_FATAL(td_config_load_buf("d.yaml", yaml, strlen(yaml), &cfg, &errs), 0);
	CU_ASSERT_EQUAL_FATAL(cfg.mesh.n_services, 2);
	CU_ASSERT_TRUE(cfg.mesh.services[0].sockmap);        /* inherits mesh.sockmap */
	CU_ASSERT_FALSE(cfg.mesh.services[1].sockmap);
	CU_ASSERT_EQUAL(errs.n, 0);
	td_config_free(&cfg);
	td_errors_free(&errs);
}

struct mesh_bad {
	const char *desc;
	const char *yaml;
	const char *prefix;   /* "bad.yaml:LINE: " of the first message */
	const char *substr;
};

#define SVC_A "  services:\n    - { name: a, cgroup: x, vip: 10.0.0.1, port: 80 }\n"
#define SVC_B "    - { name: b, cgroup: y, vip: 10.0.0.2, port: 80 }\n"

static const struct mesh_bad mesh_bad[] = {
	{ "unknown mesh key", "mesh:\n  sockmaps: true\n", "bad.yaml:2: ",
	  "mesh: unknown key 'sockmaps'" },
	{ "policy", "mesh:\n  default_policy: maybe\n", "bad.yaml:2: ",
	  "invalid policy 'maybe' (expected deny or allow)" },
	{ "sockmap not a bool", "mesh:\n  sockmap: yes\n", "bad.yaml:2: ",
	  "mesh.sockmap: expected true or false, got 'yes'" },
	{ "relative root", "mesh:\n  cgroup_root: sys/fs/cgroup\n", "bad.yaml:2: ",
	  "mesh.cgroup_root: must be an absolute path" },
	{ "absolute cgroup",
	  "mesh:\n  services:\n    - { name: a, cgroup: /x, vip: 10.0.0.1, port: 80 }\n",
	  "bad.yaml:3: ", "mesh.services[0].cgroup: '/x' must be a folder relative to" },
	{ "dotdot cgroup",
	  "mesh:\n  services:\n    - { name: a, cgroup: a/../b, vip: 10.0.0.1, port: 80 }\n",
	  "bad.yaml:3: ", "'a/../b' must be a folder relative" },
	{ "trailing slash",
	  "mesh:\n  services:\n    - { name: a, cgroup: a/, vip: 10.0.0.1, port: 80 }\n",
	  "bad.yaml:3: ", "'a/' must be a folder relative" },
	{ "reserved name",
	  "mesh:\n  services:\n    - { name: unknown, vip: 10.0.0.1, port: 80 }\n",
	  "bad.yaml:3: ", "'unknown' is reserved" },
	{ "duplicate name",
	  "mesh:\n" SVC_A "    - { name: a, vip: 10.0.0.2, port: 80 }\n", "bad.yaml:4: ",
	  "duplicate service name 'a' (first at line 3)" },
	{ "duplicate cgroup",
	  "mesh:\n" SVC_A "    - { name: b, cgroup: x, vip: 10.0.0.2, port: 80 }\n",
	  "bad.yaml:4: ", "cgroup 'x' already belongs to service 'a' (line 3)" },
	{ "duplicate endpoint",
	  "mesh:\n" SVC_A "    - { name: b, vip: 10.0.0.1, port: 80 }\n", "bad.yaml:4: ",
	  "duplicate endpoint 10.0.0.1:80/tcp: already used by service 'a'" },
	{ "missing vip", "mesh:\n  services:\n    - { name: a, port: 80 }\n", "bad.yaml:3: ",
	  "mesh.services[0]: missing required key 'vip'" },
	{ "backend family",
	  "mesh:\n  services:\n    - name: a\n      vip: 10.0.0.1\n      port: 80\n"
	  "      backends:\n        - { address: fd00::1 }\n",
	  "bad.yaml:7: ", "backend fd00::1 is IPv6 but the VIP of service 'a' is IPv4" },
	{ "backend weight",
	  "mesh:\n  services:\n    - name: a\n      vip: 10.0.0.1\n      port: 80\n"
	  "      backends:\n        - { address: 10.0.0.9, weight: -1 }\n",
	  "bad.yaml:7: ", "mesh.services[0].backends[0].weight: -1 is out of range" },
	{ "allow from nobody",
	  "mesh:\n" SVC_A "  allow:\n    - { from: ghost, to: a }\n", "bad.yaml:5: ",
	  "mesh.allow[0].from: 'ghost' is not a mesh service (nor 'unknown')" },
	{ "allow to unknown",
	  "mesh:\n" SVC_A "  allow:\n    - { from: a, to: unknown }\n", "bad.yaml:5: ",
	  "mesh.allow[0].to: 'unknown' is not a mesh service" },
	{ "allow wrong port",
	  "mesh:\n" SVC_A SVC_B "  allow:\n    - { from: a, to: b, ports: [81] }\n",
	  "bad.yaml:6: ", "mesh.allow[0].ports[0]: port 81 is not the port of service 'b' (80)" },
	{ "allow empty ports",
	  "mesh:\n" SVC_A SVC_B "  allow:\n    - { from: a, to: b, ports: [] }\n",
	  "bad.yaml:6: ", "mesh.allow[0].ports: must not be empty" },
	{ "allow overlap",
	  "mesh:\n" SVC_A SVC_B "  allow:\n    - { from: a, to: b, ports: [80] }\n"
	  "    - { from: a, to: b }\n",
	  "bad.yaml:7: ", "rule from 'a' to 'b' overlaps the rule at line 6" },
	{ "allow missing to", "mesh:\n" SVC_A "  allow:\n    - { from: a }\n", "bad.yaml:5: ",
	  "mesh.allow[0]: missing required key 'to'" },
	{ "services not a list", "mesh:\n  services: 3\n", "bad.yaml:2: ",
	  "mesh.services: expected a list" },
};

static void test_mesh_bad(void)
{
	for (size_t i = 0; i < sizeof(mesh_bad) / sizeof(mesh_bad[0]); i++) {
		const struct mesh_bad *c = &mesh_bad[i];
		struct td_errors errs = { 0 };
		struct td_config cfg;
		bool ok;
		int err;

		err = td_config_load_buf("bad.yaml", c->yaml, strlen(c->yaml), &cfg, &errs);
		ok = err == -EINVAL && errs.n >= 1 &&
		     !strncmp(errs.msgs[0], c->prefix, strlen(c->prefix)) &&
		     strstr(errs.msgs[0], c->substr);
		if (!ok) {
			printf("\n    case '%s': err %d, want '%s' ... '%s', got:", c->desc, err,
			       c->prefix, c->substr);
			for (size_t j = 0; j < errs.n; j++)
				printf("\n      %s", errs.msgs[j]);
		}
		CU_ASSERT_TRUE(ok);
		CU_ASSERT_EQUAL(cfg.mesh.n_services, 0);
		CU_ASSERT_PTR_NULL(cfg.mesh.services);
		CU_ASSERT_PTR_NULL(cfg.mesh.allow);
		td_errors_free(&errs);
	}
}

static size_t count_index(const struct td_mesh_be *slots, __u32 idx)
{
	size_t n = 0;

	for (size_t i = 0; i < TD_MESH_SLOTS; i++)
		if (slots[i].family && slots[i].index == idx)
			n++;
	return n;
}

static void test_mesh_sel_fill(void)
{
	struct td_backend_cfg be[TD_MESH_MAX_BACKENDS];
	struct td_mesh_be *slots = calloc(TD_MESH_SLOTS, sizeof(*slots));
	size_t empty = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(slots);
	memset(be, 0, sizeof(be));
	for (size_t i = 0; i < TD_MESH_MAX_BACKENDS; i++) {
		CU_ASSERT_EQUAL(td_addr_parse("127.0.0.1", &be[i].addr, &be[i].family), 0);
		be[i].port = (__u16)(9000 + i);
		be[i].weight = 1;
	}
	/* 1:3:0 -> every live backend one slot, the rest by largest remainder */
	be[1].weight = 3;
	be[2].weight = 0;
	CU_ASSERT_EQUAL(td_mesh_sel_fill(be, 3, slots), 2);
	CU_ASSERT_EQUAL(count_index(slots, 0), 257);
	CU_ASSERT_EQUAL(count_index(slots, 1), 767);
	CU_ASSERT_EQUAL(count_index(slots, 2), 0);
	CU_ASSERT_EQUAL(slots[0].port, htons(9000));
	CU_ASSERT_EQUAL(slots[TD_MESH_SLOTS - 1].port, htons(9001));
	/* nothing with weight: empty table */
	be[0].weight = 0;
	be[1].weight = 0;
	CU_ASSERT_EQUAL(td_mesh_sel_fill(be, 3, slots), 0);
	for (size_t i = 0; i < TD_MESH_SLOTS; i++)
		empty += !slots[i].family;
	CU_ASSERT_EQUAL(empty, TD_MESH_SLOTS);
	/* a tiny weight next to a huge one still gets a slot */
	be[0].weight = 1;
	be[1].weight = 65535;
	CU_ASSERT_EQUAL(td_mesh_sel_fill(be, 2, slots), 2);
	CU_ASSERT_EQUAL(count_index(slots, 0), 1);
	CU_ASSERT_EQUAL(count_index(slots, 1), TD_MESH_SLOTS - 1);
	/* the most backends, equal weights: an equal share each, every slot used */
	be[0].weight = 1;
	be[1].weight = 1;
	be[2].weight = 1;
	CU_ASSERT_EQUAL(td_mesh_sel_fill(be, TD_MESH_MAX_BACKENDS, slots), TD_MESH_MAX_BACKENDS);
	for (__u32 i = 0; i < TD_MESH_MAX_BACKENDS; i++)
		CU_ASSERT_EQUAL(count_index(slots, i), TD_MESH_SLOTS / TD_MESH_MAX_BACKENDS);
	free(slots);
}

int td_suite_mesh_config(void)
{
	CU_pSuite s = CU_add_suite("mesh config", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "issue 4 example", test_mesh_example) ||
	    !CU_add_test(s, "defaults and inheritance", test_mesh_defaults) ||
	    !CU_add_test(s, "bad configs with FILE:LINE", test_mesh_bad) ||
	    !CU_add_test(s, "selection table by weight", test_mesh_sel_fill))
		return CU_get_error();
	return 0;
}

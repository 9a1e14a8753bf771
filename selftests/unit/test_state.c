/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for the kernel-free parts of state apply: stable id assignment and td_ports. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/CUnit.h>

#include "td/abi.h"
#include "addr.h"
#include "config.h"
#include "state.h"

int td_suite_state(void);

static const char td_st_yaml[] =
	"l4:\n"
	"  services:\n"
	"    - name: web\n"
	"      vip: 10.200.0.100\n"
	"      port: 80\n"
	"      proto: tcp\n"
	"      mode: nat\n"
	"      backends:\n"
	"        - { address: 10.0.1.11, port: 8080 }\n"
	"        - { address: 10.0.1.12, port: 8080, weight: 2 }\n"
	"    - name: dns\n"
	"      vip: 10.200.0.100\n"
	"      port: 53\n"
	"      proto: udp\n"
	"      mode: dsr\n"
	"      backends:\n"
	"        - { address: 10.0.1.11, port: 53 }\n";

#define N_INFO 16
#define N_BE   16

static int td_st_load(struct td_config *cfg)
{
	struct td_errors errs = {};
	int err = td_config_load_buf("state.yaml", td_st_yaml, strlen(td_st_yaml), cfg, &errs);

	td_errors_free(&errs);
	return err;
}

/* backend slot as the agent would have written it */
static void td_st_be(struct td_backend *be, const char *addr, __u16 port, __u32 svc, __u8 flags)
{
	memset(be, 0, sizeof(*be));
	td_addr_parse(addr, &be->addr, &be->family);
	be->port = htons(port);
	be->svc_id = svc;
	be->flags = flags;
}

static void test_state_fresh_ids(void)
{
	struct td_svc_info info[N_INFO] = {};
	struct td_backend bes[N_BE] = {};
	struct td_config cfg = {};
	__u32 svc[2], be[3];

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	CU_ASSERT_EQUAL(td_state_assign_ids(info, N_INFO, bes, N_BE, &cfg, svc, be), 0);
	CU_ASSERT_EQUAL(svc[0], 0);
	CU_ASSERT_EQUAL(svc[1], 1);
	CU_ASSERT_EQUAL(be[0], 0);
	CU_ASSERT_EQUAL(be[1], 1);
	CU_ASSERT_EQUAL(be[2], 2);
	td_config_free(&cfg);
}

static void test_state_adopts_ids(void)
{
	struct td_svc_info info[N_INFO] = {};
	struct td_backend bes[N_BE] = {};
	struct td_config cfg = {};
	__u32 svc[2], be[3];

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	/* web was id 5 with 10.0.1.12:8080 as backend 7; backend 0 was used once (inactive) */
	snprintf(info[5].name, sizeof(info[5].name), "web");
	td_state_vip_key(&cfg.services[0], &info[5].vip);
	info[5].in_use = 1;
	td_st_be(&bes[7], "10.0.1.12", 8080, 5, TD_BE_F_ACTIVE | TD_BE_F_NEXTHOP);
	td_st_be(&bes[0], "10.9.9.9", 1, 3, 0);
	CU_ASSERT_EQUAL(td_state_assign_ids(info, N_INFO, bes, N_BE, &cfg, svc, be), 0);
	CU_ASSERT_EQUAL(svc[0], 5);
	CU_ASSERT_EQUAL(svc[1], 0);
	CU_ASSERT_EQUAL(be[1], 7);          /* same service, same endpoint: same id */
	CU_ASSERT_EQUAL(be[0], 1);          /* never used ids first, 0 was used */
	CU_ASSERT_EQUAL(be[2], 2);
	td_config_free(&cfg);
}

static void test_state_changed_service_new_id(void)
{
	struct td_svc_info info[N_INFO] = {};
	struct td_backend bes[N_BE] = {};
	struct td_config cfg = {};
	__u32 svc[2], be[3];

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	/* id 0 holds "web" on port 81: a different service, its id must not be reused now */
	snprintf(info[0].name, sizeof(info[0].name), "web");
	td_state_vip_key(&cfg.services[0], &info[0].vip);
	info[0].vip.port = htons(81);
	info[0].in_use = 1;
	CU_ASSERT_EQUAL(td_state_assign_ids(info, N_INFO, bes, N_BE, &cfg, svc, be), 0);
	CU_ASSERT_EQUAL(svc[0], 1);
	CU_ASSERT_EQUAL(svc[1], 2);
	td_config_free(&cfg);
}

static void test_state_out_of_ids(void)
{
	struct td_svc_info info[N_INFO] = {};
	struct td_backend bes[2] = {};
	struct td_config cfg = {};
	__u32 svc[2], be[3];

	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	CU_ASSERT_EQUAL(td_state_assign_ids(info, N_INFO, bes, 2, &cfg, svc, be), -ENOSPC);
	CU_ASSERT_EQUAL(td_state_assign_ids(info, 1, bes, N_BE, &cfg, svc, be), -ENOSPC);
	td_config_free(&cfg);
}

static void test_state_ports(void)
{
	struct td_config cfg = {};
	__u8 *ports = calloc(65536, 1);
	size_t i, set = 0;

	CU_ASSERT_FATAL(ports != NULL);
	CU_ASSERT_FATAL(td_st_load(&cfg) == 0);
	td_state_ports(&cfg, ports);
	CU_ASSERT_EQUAL(ports[80], TD_PORT_F_VIP);
	CU_ASSERT_EQUAL(ports[53], TD_PORT_F_VIP);     /* dsr backend port 53 is not a NAT port */
	CU_ASSERT_EQUAL(ports[8080], TD_PORT_F_BACKEND);
	for (i = 0; i < 65536; i++)
		set += ports[i] != 0;
	CU_ASSERT_EQUAL(set, 3);
	td_config_free(&cfg);
	free(ports);
}

int td_suite_state(void)
{
	CU_pSuite s = CU_add_suite("state", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "fresh ids", test_state_fresh_ids) ||
	    !CU_add_test(s, "adopts ids", test_state_adopts_ids) ||
	    !CU_add_test(s, "changed service gets a new id", test_state_changed_service_new_id) ||
	    !CU_add_test(s, "out of ids", test_state_out_of_ids) ||
	    !CU_add_test(s, "td_ports", test_state_ports))
		return CU_get_error();
	return 0;
}

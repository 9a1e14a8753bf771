/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for the names of ABI enums and their parsers. */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <CUnit/CUnit.h>

#include "names.h"
#include "unit.h"

static void test_counter_names(void)
{
	CU_ASSERT_STRING_EQUAL(td_counter_name(TD_CNT_RX), "rx");
	CU_ASSERT_STRING_EQUAL(td_counter_name(TD_CNT_NEW_FLOW), "new_flow");
	CU_ASSERT_STRING_EQUAL(td_counter_name(TD_PASS_NOT_VIP), "pass_not_vip");
	CU_ASSERT_STRING_EQUAL(td_counter_name(TD_DROP_MALFORMED), "drop_malformed");
	CU_ASSERT_STRING_EQUAL(td_counter_name(TD_DROP_ICMP_NO_FLOW), "drop_icmp_no_flow");
	CU_ASSERT_PTR_NULL(td_counter_name(TD_CNT_MAX));
	CU_ASSERT_PTR_NULL(td_counter_name(~0u));
	/* every name set, lower case, unique */
	for (unsigned int i = 0; i < TD_CNT_MAX; i++) {
		const char *n = td_counter_name(i);

		CU_ASSERT_PTR_NOT_NULL_FATAL(n);
		CU_ASSERT(*n != '\0');
		for (const char *p = n; *p; p++)
			CU_ASSERT(islower((unsigned char)*p) || *p == '_');
		for (unsigned int j = 0; j < i; j++)
			CU_ASSERT(strcmp(n, td_counter_name(j)) != 0);
		CU_ASSERT_EQUAL(td_counter_is_drop(i), strncmp(n, "drop_", 5) == 0);
	}
	CU_ASSERT_EQUAL(td_counter_is_drop(TD_CNT_MAX), 0);
}

static void test_enum_names(void)
{
	CU_ASSERT_STRING_EQUAL(td_mode_name(TD_MODE_NAT), "nat");
	CU_ASSERT_STRING_EQUAL(td_mode_name(TD_MODE_DSR), "dsr");
	CU_ASSERT_STRING_EQUAL(td_mode_name(9), "?");
	CU_ASSERT_STRING_EQUAL(td_proto_name(TD_PROTO_TCP), "tcp");
	CU_ASSERT_STRING_EQUAL(td_proto_name(TD_PROTO_UDP), "udp");
	CU_ASSERT_STRING_EQUAL(td_proto_name(1), "?");
	CU_ASSERT_STRING_EQUAL(td_xdp_mode_name(TD_XDP_NATIVE), "native");
	CU_ASSERT_STRING_EQUAL(td_xdp_mode_name(TD_XDP_GENERIC), "generic");
	CU_ASSERT_STRING_EQUAL(td_xdp_mode_name(2), "?");
}

static void test_parsers(void)
{
	CU_ASSERT_EQUAL(td_mode_parse("nat"), TD_MODE_NAT);
	CU_ASSERT_EQUAL(td_mode_parse("dsr"), TD_MODE_DSR);
	CU_ASSERT_EQUAL(td_mode_parse("NAT"), -EINVAL);
	CU_ASSERT_EQUAL(td_mode_parse(NULL), -EINVAL);
	CU_ASSERT_EQUAL(td_proto_parse("tcp"), TD_PROTO_TCP);
	CU_ASSERT_EQUAL(td_proto_parse("udp"), TD_PROTO_UDP);
	CU_ASSERT_EQUAL(td_proto_parse("sctp"), -EINVAL);
	CU_ASSERT_EQUAL(td_xdp_mode_parse("native"), TD_XDP_NATIVE);
	CU_ASSERT_EQUAL(td_xdp_mode_parse("generic"), TD_XDP_GENERIC);
	CU_ASSERT_EQUAL(td_xdp_mode_parse("offload"), -EINVAL);
}

int td_suite_names(void)
{
	CU_pSuite s = CU_add_suite("names", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "counter names", test_counter_names) ||
	    !CU_add_test(s, "enum names", test_enum_names) ||
	    !CU_add_test(s, "parsers", test_parsers))
		return CU_get_error();
	return 0;
}

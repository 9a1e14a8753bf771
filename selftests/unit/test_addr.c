/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CUnit suite for address parsing and formatting into td_addr. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <CUnit/CUnit.h>

#include "addr.h"
#include "unit.h"

static void test_parse_v4(void)
{
	union td_addr a;
	__u8 fam = 0;

	memset(&a, 0xaa, sizeof(a));
	CU_ASSERT_EQUAL_FATAL(td_addr_parse("10.200.0.100", &a, &fam), 0);
	CU_ASSERT_EQUAL(fam, TD_AF_INET);
	CU_ASSERT_EQUAL(a.v4, htonl(0x0ac80064));
	CU_ASSERT_EQUAL(a.bytes[0], 10);
	CU_ASSERT_EQUAL(a.bytes[3], 100);
	for (int i = 4; i < 16; i++)
		CU_ASSERT_EQUAL(a.bytes[i], 0);   /* rest zeroed */
}

static void test_parse_v6(void)
{
	union td_addr a;
	__u8 fam = 0;

	CU_ASSERT_EQUAL_FATAL(td_addr_parse("fd00::1", &a, &fam), 0);
	CU_ASSERT_EQUAL(fam, TD_AF_INET6);
	CU_ASSERT_EQUAL(a.bytes[0], 0xfd);
	CU_ASSERT_EQUAL(a.bytes[15], 1);
	for (int i = 1; i < 15; i++)
		CU_ASSERT_EQUAL(a.bytes[i], 0);
	CU_ASSERT_EQUAL(td_addr_parse("::ffff:10.0.0.1", &a, &fam), 0);
	CU_ASSERT_EQUAL(fam, TD_AF_INET6);
}

static void test_parse_bad(void)
{
	static const char *const bad[] = {
		"", "10.0.0", "10.0.0.256", "10.0.0.1:80", "[fd00::1]", "fd00::1::2", "host",
		" 10.0.0.1", "10.0.0.1 ", "010.0.0.1", "fd00::1/64", "1.2.3.4.5", "0x0a000001",
	};
	union td_addr a;
	__u8 fam = 0x77;

	memset(&a, 0x55, sizeof(a));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(td_addr_parse(bad[i], &a, &fam), -EINVAL);
	CU_ASSERT_EQUAL(fam, 0x77);          /* untouched on error */
	CU_ASSERT_EQUAL(a.bytes[0], 0x55);
	CU_ASSERT_EQUAL(td_addr_parse(NULL, &a, &fam), -EINVAL);
}

static void test_format(void)
{
	char buf[TD_ENDPOINTSTRLEN];
	union td_addr a;
	__u8 fam;

	CU_ASSERT_EQUAL_FATAL(td_addr_parse("10.0.1.11", &a, &fam), 0);
	CU_ASSERT_STRING_EQUAL(td_addr_format(&a, fam, buf, sizeof(buf)), "10.0.1.11");
	CU_ASSERT_STRING_EQUAL(td_endpoint_format(&a, fam, 8080, buf, sizeof(buf)),
			       "10.0.1.11:8080");
	CU_ASSERT_EQUAL_FATAL(td_addr_parse("FD00:0:0::0001", &a, &fam), 0);
	CU_ASSERT_STRING_EQUAL(td_addr_format(&a, fam, buf, sizeof(buf)), "fd00::1");
	CU_ASSERT_STRING_EQUAL(td_endpoint_format(&a, fam, 443, buf, sizeof(buf)), "[fd00::1]:443");
	CU_ASSERT_STRING_EQUAL(td_addr_format(&a, 5, buf, sizeof(buf)), "?");
}

static void test_equal(void)
{
	union td_addr a, b;
	__u8 fa, fb;

	CU_ASSERT_EQUAL_FATAL(td_addr_parse("fd00::1", &a, &fa), 0);
	CU_ASSERT_EQUAL_FATAL(td_addr_parse("fd00:0::1", &b, &fb), 0);
	CU_ASSERT_TRUE(td_addr_equal(&a, &b));
	CU_ASSERT_EQUAL_FATAL(td_addr_parse("fd00::2", &b, &fb), 0);
	CU_ASSERT_FALSE(td_addr_equal(&a, &b));
}

int td_suite_addr(void)
{
	CU_pSuite s = CU_add_suite("addr", NULL, NULL);

	if (!s)
		return CU_get_error();
	if (!CU_add_test(s, "parse IPv4", test_parse_v4) ||
	    !CU_add_test(s, "parse IPv6", test_parse_v6) ||
	    !CU_add_test(s, "reject bad literals", test_parse_bad) ||
	    !CU_add_test(s, "format", test_format) ||
	    !CU_add_test(s, "equal", test_equal))
		return CU_get_error();
	return 0;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* td_unit: runs every CUnit suite of libtd (verbose), or with --bench the Maglev rebuild benchmark. */
#include <stdio.h>
#include <string.h>
#include <CUnit/Basic.h>

#include "unit.h"

int td_suite_health(void);   /* test_health.c */

#define TD_BENCH_M    65537u
#define TD_BENCH_REPS 20

static int td_run_bench(void)
{
	static const size_t sizes[] = { 1000, 100 };
	int rc = 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct td_mg_set s;
		double ms;

		if (td_mg_set_init(&s, sizes[i], 1)) {
			fprintf(stderr, "td_unit: out of memory\n");
			return 1;
		}
		ms = td_mg_bench(&s, TD_BENCH_M, TD_BENCH_REPS);
		td_mg_set_free(&s);
		if (ms < 0) {
			fprintf(stderr, "td_unit: maglev build failed: %s\n", strerror((int)-ms));
			rc = 1;
			continue;
		}
		printf("bench: maglev_rebuild backends=%zu m=%u ms=%.3f\n", sizes[i], TD_BENCH_M, ms);
	}
	return rc;
}

static void td_usage(FILE *f)
{
	fprintf(f, "usage: td_unit [--bench | --metrics-sample]\n"
		   "  (no option)  run all CUnit suites\n"
		   "  --bench      median Maglev rebuild time, 1000 and 100 backends, M=65537\n"
		   "  --metrics-sample  print a /metrics exposition with every family (check-metrics.sh)\n");
}

int main(int argc, char **argv)
{
	int (*const suites[])(void) = {
		td_suite_addr, td_suite_names, td_suite_log, td_suite_maglev, td_suite_config, td_suite_state, td_suite_admin,
		td_suite_health, td_suite_metrics, td_suite_mesh_config, td_suite_http_parser,
		td_suite_cache,
		td_suite_gateway_route,
		td_suite_gateway_auth,
		td_suite_gateway,
		td_suite_config_gw,
		td_suite_config_fp,
		td_suite_tls,
		td_suite_fproxy,
	};
	unsigned int failed;

	if (argc == 2 && !strcmp(argv[1], "--bench"))
		return td_run_bench();
	if (argc == 2 && !strcmp(argv[1], "--metrics-sample"))
		return td_metrics_sample_print();
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		td_usage(stdout);
		return 0;
	}
	if (argc > 1) {
		td_usage(stderr);
		return 2;
	}

	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "td_unit: %s\n", CU_get_error_msg());
		return 1;
	}
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (suites[i]()) {
			fprintf(stderr, "td_unit: cannot register suite: %s\n", CU_get_error_msg());
			CU_cleanup_registry();
			return 1;
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed() +
		 CU_get_number_of_tests_failed();
	if (CU_get_error() != CUE_SUCCESS)
		failed++;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Suite registration and shared helpers of the td_unit CUnit runner. */
#ifndef TD_UNIT_H
#define TD_UNIT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "config.h"
#include "maglev.h"

/* each returns 0 or a CUnit error code */
int td_suite_addr(void);
int td_suite_names(void);
int td_suite_log(void);
int td_suite_maglev(void);
int td_suite_config(void);
int td_suite_mesh_config(void);      /* test_mesh_config.c */
int td_suite_state(void);
int td_suite_admin(void);
int td_suite_metrics(void);           /* test_metrics.c; td_metrics_sample_print: --metrics-sample */
int td_suite_http_parser(void);       /* test_http_parser.c */
int td_suite_cache(void);             /* test_cache.c */
int td_suite_gateway_route(void);     /* test_gateway_route.c: routing and rate limit */
int td_suite_gateway_auth(void);      /* test_gateway_auth.c: JWT, API keys, Basic */
int td_suite_gateway(void);           /* test_gateway.c: gateway runtime */
int td_suite_config_gw(void);          /* test_config_gw.c: the gateway: config section */
int td_suite_config_fp(void);          /* test_config_fp.c: the forward_proxy: config section */
int td_suite_fproxy(void);            /* test_fproxy.c: forward proxy runtime */
int td_suite_tls(void);               /* test_tls.c: server TLS, SNI, non-blocking I/O */
int td_metrics_sample_print(void);

/* one invalid configuration and the first error it must give (the config suites' tables) */
struct td_bad_cfg {
	const char *yaml;
	size_t n_errs;        /* errors reported */
	const char *prefix;   /* "bad.yaml:LINE: path..." of the first message */
	const char *substr;   /* in the first message */
};
/* load case i of a table as "bad.yaml" into cfg: true when it failed exactly as b says (else
 * the messages are printed) */
bool td_bad_cfg_check(size_t i, const struct td_bad_cfg *b, struct td_config *cfg);

/* n backends keyed "10.<i/256>.<i%256>.1:80" (key storage owned by the caller), ids 0..n-1 */
struct td_mg_set {
	struct td_maglev_backend *be;
	char (*keys)[32];
	size_t n;
};
int td_mg_set_init(struct td_mg_set *s, size_t n, __u32 weight);
void td_mg_set_free(struct td_mg_set *s);

/* median wall time in ms of reps builds of s into a ring of size m; negative -errno on error */
double td_mg_bench(const struct td_mg_set *s, __u32 m, int reps);

#endif

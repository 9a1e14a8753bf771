/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The table runner shared by the config suites: one invalid YAML, the errors it must give. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"

bool td_bad_cfg_check(size_t i, const struct td_bad_cfg *b, struct td_config *cfg)
{
	struct td_errors errs = { 0 };
	bool ok;
	int err;

	memset(cfg, 0x5a, sizeof(*cfg));
	err = td_config_load_buf("bad.yaml", b->yaml, strlen(b->yaml), cfg, &errs);
	ok = err == -EINVAL && errs.n == b->n_errs && errs.n &&
	     !strncmp(errs.msgs[0], b->prefix, strlen(b->prefix)) && strstr(errs.msgs[0], b->substr);
	if (!ok) {
		printf("\n    case %zu: err %d, %zu messages (want %zu, '%s' ... '%s')", i, err,
		       errs.n, b->n_errs, b->prefix, b->substr);
		for (size_t j = 0; j < errs.n; j++)
			printf("\n      %s", errs.msgs[j]);
	}
	td_errors_free(&errs);
	return ok;
}

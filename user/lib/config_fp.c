/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The forward_proxy: section of the YAML config -> struct td_fp_cfg (placeholder, being written). */
#include <stdlib.h>
#include <string.h>

#include "config_yaml.h"

void td_parse_forward_proxy(struct td_cfg_ctx *c, yaml_node_t *n, struct td_config *cfg)
{
	td_cerr(c, n, "forward_proxy: not supported yet");
}

void td_fp_cfg_free(struct td_fp_cfg *f)
{
	if (!f)
		return;
	free(f->deny_domains);
	free(f->allow_domains);
	memset(f, 0, sizeof(*f));
}

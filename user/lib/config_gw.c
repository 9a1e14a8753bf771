/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The gateway: section of the YAML config -> struct td_gw_cfg (placeholder, being written). */
#include <stdlib.h>
#include <string.h>

#include "config_yaml.h"

void td_parse_gateway(struct td_cfg_ctx *c, yaml_node_t *n, struct td_config *cfg)
{
	td_cerr(c, n, "gateway: not supported yet");
}

void td_gw_cfg_free(struct td_gw_cfg *g)
{
	if (!g)
		return;
	free(g->tls_certs);
	for (size_t i = 0; i < g->n_upstreams; i++)
		free(g->upstreams[i].backends);
	free(g->upstreams);
	for (size_t i = 0; i < g->n_routes; i++) {
		free(g->routes[i].auth.keys);
		free(g->routes[i].aggregate);
	}
	free(g->routes);
	memset(g, 0, sizeof(*g));
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Internal to the config loader: the libyaml node helpers shared by config.c and its section files. */
#ifndef TD_CONFIG_YAML_H
#define TD_CONFIG_YAML_H

/*
 * Every helper reports problems with td_cerr() as "FILE:LINE: path: message" and returns false
 * (or NULL); the caller goes on parsing so that one run reports every problem. Paths such as
 * "gateway.routes[2].match.host" are built with td_path_fmt().
 */

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>
#include <linux/types.h>

#include "config.h"

struct td_cfg_ctx {
	const char *file;
	yaml_document_t *doc;
	struct td_errors *errs;
	unsigned int nerr;          /* counted even when errs is NULL or out of memory */
	size_t total_backends;
	bool too_many_backends;     /* reported once; further backends are not parsed */
};

/* 1-based line of n, 0 for NULL */
int td_line(const yaml_node_t *n);
/* one error at n's line */
void td_cerr(struct td_cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "a mapping", "a sequence", "a string" ... for messages */
const char *td_node_kind(const yaml_node_t *n);
/* the scalar's text (NUL-terminated) or "" */
const char *td_scalar(const yaml_node_t *n);
/* null / ~ / empty plain scalar */
bool td_is_null(const yaml_node_t *n);
yaml_node_t *td_node(struct td_cfg_ctx *c, int idx);
/*
 * n must be a mapping whose keys are all in keys[0..nkeys) (unknown and duplicate keys are
 * errors); vals[i] receives the value node of keys[i] or NULL. false on any error.
 */
bool td_map_get(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
		const char *const *keys, size_t nkeys, yaml_node_t **vals);
/* n must be a sequence; *len its length */
bool td_seq_check(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, size_t *len);
yaml_node_t *td_seq_item(struct td_cfg_ctx *c, yaml_node_t *n, size_t i);
/* a scalar (any style); *out points into the document */
bool td_get_str(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, const char **out);
/* a decimal integer in [min, max] */
bool td_get_int(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, long long min,
		long long max, long long *out);
/* true / false plain scalars */
bool td_get_bool(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, bool *out);
/* a duration ("500ms", "2s", "1m") in [min, max] ms */
bool td_get_duration(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, __u64 min,
		     __u64 max, __u64 *out);
const char *td_ms_fmt(__u64 ms, char *buf, size_t len);
/* a service-style name: [A-Za-z0-9_.-], 1..TD_NAME_LEN-1 bytes */
bool td_name_valid(const char *s);
void td_path_fmt(char *out, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* the L4 health mapping (type tcp|http, path, port, interval, timeout, rise, fall) */
void td_parse_health(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
		     struct td_health_cfg *hc);

/* config_gw.c: the gateway: section into cfg->gateway */
void td_parse_gateway(struct td_cfg_ctx *c, yaml_node_t *n, struct td_config *cfg);
/* config_gw.c: free what td_parse_gateway allocated (safe on a zeroed struct) */
void td_gw_cfg_free(struct td_gw_cfg *g);
/*
 * config_gw.c helpers shared with the other section parsers (same messages everywhere):
 * a u32 integer / a duration in ms into a uint32_t; a string of at most len - 1 bytes; a file
 * name made absolute against the config's folder (into out[TD_GW_FILE_LEN], not opened); text
 * without '"', '\\' or controls; one "ADDR:PORT" endpoint; an endpoint or a list of them
 * appended to eps (max TD_GW_MAX_LISTEN; duplicates within, and against other, are errors);
 * one CIDR appended to list[*nlist] (host bits must be zero, no duplicates).
 */
bool td_gw_get_u32(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, long long min,
		   long long max, uint32_t *out);
bool td_gw_get_ms(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, __u64 min,
		  __u64 max, uint32_t *out);
bool td_gw_get_text(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, char *out,
		    size_t len);
bool td_gw_get_file(struct td_cfg_ctx *c, yaml_node_t *n, const char *path, char *out);
bool td_gw_quotable(const char *s);
bool td_gw_endpoint_equal(const struct td_gw_endpoint *a, const struct td_gw_endpoint *b);
bool td_gw_get_endpoint(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			struct td_gw_endpoint *ep);
void td_gw_parse_listen(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
			struct td_gw_endpoint *eps, size_t *neps,
			const struct td_gw_endpoint *other, size_t nother);
void td_gw_parse_cidr(struct td_cfg_ctx *c, yaml_node_t *n, const char *path,
		      struct td_gw_cidr *list, size_t *nlist);

/* config_fp.c: the forward_proxy: section into cfg->forward_proxy */
void td_parse_forward_proxy(struct td_cfg_ctx *c, yaml_node_t *n, struct td_config *cfg);
/* config_fp.c: free what td_parse_forward_proxy allocated (safe on a zeroed struct) */
void td_fp_cfg_free(struct td_fp_cfg *f);

#endif

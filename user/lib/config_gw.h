/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The gateway: section of the config as plain data (parsed and validated by config_gw.c). */
#ifndef TD_CONFIG_GW_H
#define TD_CONFIG_GW_H

/*
 * Everything here is syntax-checked by the loader (td_config_load) with FILE:LINE errors.
 * Files named by the config (JWT keys, API key and users files, TLS certificates) are only
 * opened when the gateway builds a generation from it (td_gw_check / td_gw_reload in
 * user/gateway/gateway.h), which reports problems with the line stored in each struct.
 * Every `line` is the 1-based line of the YAML node it came from (0: not in the file).
 * Reference: docs/gateway.md.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "health.h"

#define TD_GW_NAME_LEN		64u	/* upstream, route, aggregate member names incl. NUL */
#define TD_GW_HDR_NAME_LEN	64u	/* header field names incl. NUL */
#define TD_GW_HDR_VALUE_LEN	512u	/* configured header values incl. NUL */
#define TD_GW_HOST_LEN		254u	/* host names incl. NUL */
#define TD_GW_PATH_LEN		1024u	/* configured paths incl. NUL */
#define TD_GW_FILE_LEN		4096u	/* file paths incl. NUL (relative: to the config's dir) */
#define TD_GW_MAX_LISTEN	16u
#define TD_GW_MAX_CERTS		64u
#define TD_GW_MAX_UPSTREAMS	1024u
#define TD_GW_MAX_BACKENDS	1024u	/* per upstream */
#define TD_GW_MAX_ROUTES	4096u
#define TD_GW_MAX_HDR_MATCH	8u	/* match.headers per route */
#define TD_GW_MAX_HDR_EDITS	32u	/* add + remove entries per headers block */
#define TD_GW_MAX_AGGREGATE	32u	/* members of one aggregate route */
#define TD_GW_MAX_API_KEYS	1024u	/* inline api keys per route */
#define TD_GW_MAX_TRUSTED	64u	/* trusted_proxies CIDRs */

/* one "ADDR:PORT" / "[V6]:PORT" endpoint as written and resolved */
struct td_gw_endpoint {
	char text[64];			/* as written, e.g. "127.0.0.1:9001" */
	struct sockaddr_storage ss;	/* port in network order */
	socklen_t sslen;
	int line;
};

/* a CIDR of gateway.trusted_proxies */
struct td_gw_cidr {
	uint8_t family;			/* AF_INET or AF_INET6 */
	uint8_t prefix;			/* 0..32 / 0..128 */
	uint8_t addr[16];		/* network order, host bits zero */
	int line;
};

enum td_gw_lb {
	TD_GW_LB_ROUND_ROBIN = 0,	/* "round_robin" (default), weighted by backend order only */
	TD_GW_LB_LEAST_CONN,		/* "least_conn": fewest requests in flight, ties round robin */
	TD_GW_LB_RANDOM_TWO,		/* "random_two": power of two random choices on in-flight */
	TD_GW_LB_HASH,			/* "hash": consistent hash of hash_key (see hash_header) */
};

enum td_gw_hash_key {
	TD_GW_HASH_CLIENT_IP = 0,	/* hash_key: client_ip (default for lb: hash) */
	TD_GW_HASH_HEADER,		/* hash_key: "header:NAME" -> hash_header */
};

struct td_gw_upstream_cfg {
	char name[TD_GW_NAME_LEN];	/* the key under gateway.upstreams */
	int line;
	uint8_t lb;			/* enum td_gw_lb; "lb: hash" or "lb: hash(client_ip)" / "lb: hash(header:X-User)" */
	uint8_t hash_key;		/* enum td_gw_hash_key */
	char hash_header[TD_GW_HDR_NAME_LEN];
	struct td_gw_endpoint *backends;	/* "backends": non-empty, no duplicates */
	size_t n_backends;
	struct td_health_cfg health;	/* "health": as in l4 (type http|tcp, path, interval...);
					   type TD_HC_NONE when absent */
	uint32_t retries;		/* "retries": 0..5, default 1 */
	uint32_t connect_timeout_ms;	/* "connect_timeout": default 2s, 1ms..60s */
	uint32_t response_timeout_ms;	/* "response_timeout": to the response head, default 30s, 1ms..1h */
	uint32_t outlier_failures;	/* "outlier": { consecutive_failures: 5 } 0 = off, default 5 */
	uint32_t outlier_ejection_ms;	/* "outlier": { ejection: 30s } default 30s, 1s..1h */
	uint32_t max_idle;		/* "max_idle": pooled idle connections per worker and backend, default 32, 1..10000 */
};

/* a header "NAME: VALUE" pair (match.headers, request_headers.add, response_headers.add) */
struct td_gw_hdr_cfg {
	char name[TD_GW_HDR_NAME_LEN];	/* an RFC 9110 token */
	char value[TD_GW_HDR_VALUE_LEN];	/* no CR, LF or NUL */
	int line;
};

/* request_headers / response_headers: { add: {NAME: VALUE...}, remove: [NAME...] } */
struct td_gw_hdr_edit_cfg {
	struct td_gw_hdr_cfg add[TD_GW_MAX_HDR_EDITS];
	size_t n_add;
	char remove[TD_GW_MAX_HDR_EDITS][TD_GW_HDR_NAME_LEN];
	size_t n_remove;
	int line;
};

enum td_gw_auth_kind {
	TD_GW_AUTH_NONE = 0,
	TD_GW_AUTH_JWT,			/* auth: { jwt: {...} } */
	TD_GW_AUTH_API_KEYS,		/* auth: { api_keys: {...} } */
	TD_GW_AUTH_BASIC,		/* auth: { basic: {...} } */
};

struct td_gw_api_key_cfg {
	char name[TD_GW_NAME_LEN];	/* identity passed upstream */
	char sha256[65];		/* lower-case hex SHA-256 of the key */
	int line;
};

/*
 * auth: exactly one of
 *   jwt:      { alg: HS256|RS256|ES256, secret_file | key_file | jwks_file, issuer, audience,
 *               leeway: 30s }
 *   api_keys: { header: X-API-Key, keys: [ { name: ci, sha256: HEX } ], keys_file: FILE }
 *   basic:    { users_file: FILE (htpasswd: user:crypt-hash), realm: td }
 * and optionally identity_header: X-Auth-Subject (the verified subject / key name / user is
 * sent upstream in this header; a client-sent one is always removed first).
 */
struct td_gw_auth_cfg {
	uint8_t kind;			/* enum td_gw_auth_kind */
	int line;
	/* jwt */
	uint8_t jwt_alg;		/* enum td_jwt_alg (jwt_verify.h) */
	char secret_file[TD_GW_FILE_LEN];
	char key_file[TD_GW_FILE_LEN];
	char jwks_file[TD_GW_FILE_LEN];
	char issuer[TD_GW_HDR_VALUE_LEN];	/* "" = not checked */
	char audience[TD_GW_HDR_VALUE_LEN];	/* "" = not checked */
	uint32_t leeway_s;		/* default 30 */
	/* api_keys */
	char key_header[TD_GW_HDR_NAME_LEN];	/* default X-API-Key */
	struct td_gw_api_key_cfg *keys;
	size_t n_keys;
	char keys_file[TD_GW_FILE_LEN];
	/* basic */
	char users_file[TD_GW_FILE_LEN];
	char realm[TD_GW_NAME_LEN];	/* default "td" */
	/* all */
	char identity_header[TD_GW_HDR_NAME_LEN];	/* "" = not sent */
};

/* rate_limit: { rate: 100, burst: 200, period: 1s, key: client_ip|api_key|jwt_sub } */
struct td_gw_ratelimit_cfg {
	bool on;
	int line;
	uint32_t rate;			/* 1..1e9 */
	uint32_t burst;			/* default = rate */
	uint32_t period_ms;		/* default 1000 */
	uint8_t key;			/* enum td_rl_key_kind (ratelimit.h); api_key/jwt_sub need auth */
};

/* one aggregate member: { name: service1, url: "http://127.0.0.1:9101/data", timeout: 2s } */
struct td_gw_agg_cfg {
	char name[TD_GW_NAME_LEN];	/* a JSON member name: no '"', '\\' or controls; unique */
	char url[TD_GW_PATH_LEN];	/* as written; http:// only, literal IP (v6 in []), port */
	struct td_gw_endpoint ep;	/* from the url's authority */
	char host[TD_GW_HOST_LEN];	/* Host header to send: the url's authority */
	char path[TD_GW_PATH_LEN];	/* origin-form target from the url, "/" when empty */
	uint32_t timeout_ms;		/* default: the route's aggregate_timeout (2s) */
	int line;
};

struct td_gw_route_cfg {
	char name[TD_GW_NAME_LEN];	/* "name:", default "route<index>" */
	int line;
	/* match: { host, path | path_prefix, methods: [..], headers: { NAME: VALUE } } */
	char host[TD_GW_HOST_LEN];	/* "" any, "api.example", "*.example" */
	char path[TD_GW_PATH_LEN];	/* exact, "" none */
	char path_prefix[TD_GW_PATH_LEN];	/* "" none */
	uint32_t methods;		/* TD_ROUTE_M() bits (route.h), 0 any */
	struct td_gw_hdr_cfg match_headers[TD_GW_MAX_HDR_MATCH];
	size_t n_match_headers;
	/* exactly one of upstream / aggregate */
	char upstream[TD_GW_NAME_LEN];	/* a key of gateway.upstreams */
	int upstream_idx;		/* resolved index into td_gw_cfg.upstreams, -1 for aggregate */
	char strip_prefix[TD_GW_PATH_LEN];	/* "" none; must start with '/' */
	struct td_gw_auth_cfg auth;
	struct td_gw_ratelimit_cfg rate_limit;
	struct td_gw_hdr_edit_cfg request_headers;
	struct td_gw_hdr_edit_cfg response_headers;
	struct td_gw_agg_cfg *aggregate;
	size_t n_aggregate;
	uint32_t aggregate_timeout_ms;	/* "aggregate_timeout": default 2s */
};

enum td_gw_log_format {
	TD_GW_LOG_COMBINED = 0,		/* NCSA combined + request time and upstream */
	TD_GW_LOG_JSON,			/* one JSON object per line */
};

struct td_gw_tls_cert_cfg {
	char cert[TD_GW_FILE_LEN];	/* PEM chain; SNI picks by its SAN/CN names */
	char key[TD_GW_FILE_LEN];
	int line;
};

struct td_gw_cfg {
	bool on;			/* a gateway: section is present */
	int line;
	struct td_gw_endpoint listen[TD_GW_MAX_LISTEN];	/* "listen": [ "127.0.0.1:8000" ] */
	size_t n_listen;
	/* tls: { listen: "127.0.0.1:8443" (or a list), certs: [ { cert, key } ] } */
	struct td_gw_endpoint tls_listen[TD_GW_MAX_LISTEN];
	size_t n_tls_listen;
	struct td_gw_tls_cert_cfg *tls_certs;	/* malloc'd; the first is the default */
	size_t n_tls_certs;
	uint32_t workers;		/* "workers": 0 = one per online CPU (default), 1..256 */
	/* limits: { max_header_size: 32768, max_headers: 100, max_body_size: 1048576,
	 *           header_timeout: 10s, idle_timeout: 60s, body_timeout: 30s, max_conns: 10000 } */
	uint32_t max_request_line;	/* default 8192 */
	uint32_t max_header_size;	/* default 32768 */
	uint32_t max_headers;		/* default 100, <= 128 */
	uint64_t max_body_size;		/* default 1 MiB, 0 = unlimited */
	uint32_t header_timeout_ms;	/* default 10s */
	uint32_t idle_timeout_ms;	/* default 60s */
	uint32_t body_timeout_ms;	/* default 30s: max gap while reading a body */
	uint32_t max_conns;		/* default 10000 per gateway */
	/* headers */
	struct td_gw_cidr trusted_proxies[TD_GW_MAX_TRUSTED];	/* peers whose X-Forwarded-* is kept */
	size_t n_trusted;
	char request_id_header[TD_GW_HDR_NAME_LEN];	/* default X-Request-Id */
	/* access_log: { path: stdout | stderr | off | FILE, format: combined | json } */
	char access_log[TD_GW_FILE_LEN];	/* default "stdout" */
	uint8_t access_log_format;	/* enum td_gw_log_format */
	struct td_gw_upstream_cfg *upstreams;
	size_t n_upstreams;
	struct td_gw_route_cfg *routes;
	size_t n_routes;
};

#endif

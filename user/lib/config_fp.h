/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The forward_proxy: section of the config as plain data (parsed and validated by config_fp.c). */
#ifndef TD_CONFIG_FP_H
#define TD_CONFIG_FP_H

/*
 * Included by config.h (uses struct td_gw_endpoint and struct td_gw_cidr of config_gw.h).
 * Safe by default (unlike Squid/Tinyproxy/Privoxy): loopback clients only, CONNECT to 443 only,
 * private destinations denied. Files (users, domain lists) are resolved against the config's
 * folder and opened when the proxy builds a generation (td_fp_check / td_fp_reload), which
 * reports problems with the line stored here. Reference: docs/forward-proxy.md.
 */

#include <stdbool.h>
#include <stdint.h>

#define TD_FP_MAX_LISTEN	16u
#define TD_FP_MAX_CIDRS		256u	/* allow_clients */
#define TD_FP_MAX_PORTS		64u	/* connect_ports, transparent.ports */
#define TD_FP_DOMAIN_LEN	254u	/* a pattern incl. NUL: "example.com", "*.ads.example" */
#define TD_FP_MAX_CGROUPS	64u	/* transparent.cgroups */

enum td_fp_log_format {
	TD_FP_LOG_SQUID = 0,		/* Squid native: time.ms elapsed client code/status bytes method URL ident hier/peer type */
	TD_FP_LOG_COMBINED,
};

/* a domain pattern: exact "example.com" (and only it) or "*.example.com" (any subdomain, not the apex) */
struct td_fp_domain_cfg {
	char pattern[TD_FP_DOMAIN_LEN];	/* lower case, no trailing dot */
	int line;
};

struct td_fp_cfg {
	bool on;			/* a forward_proxy: section is present */
	int line;
	struct td_gw_endpoint listen[TD_FP_MAX_LISTEN];	/* "listen": [ "127.0.0.1:3128" ] */
	size_t n_listen;
	uint32_t workers;		/* 0 = one per online CPU */
	/* allow_clients: CIDRs; default [127.0.0.0/8, ::1/128] */
	struct td_gw_cidr allow_clients[TD_FP_MAX_CIDRS];
	size_t n_allow_clients;
	uint16_t connect_ports[TD_FP_MAX_PORTS];	/* default [443] */
	size_t n_connect_ports;
	/* deny_domains / allow_domains: a list of patterns, or { file: PATH } (one pattern a line,
	 * '#' comments); allow_domains set (non-empty list or a file) = everything else denied */
	struct td_fp_domain_cfg *deny_domains;
	size_t n_deny_domains;
	char deny_domains_file[4096];	/* "" none */
	int deny_domains_line;
	struct td_fp_domain_cfg *allow_domains;
	size_t n_allow_domains;
	char allow_domains_file[4096];
	int allow_domains_line;
	bool deny_private_destinations;	/* default true: 0/8 127/8 10/8 100.64/10 172.16/12
					   192.168/16 169.254/16 224/4 240/4, ::, ::1, fc00::/7,
					   fe80::/10, ff00::/8, ::ffff:0:0/96 of those; checked after DNS */
	bool anonymize;			/* default false; true: no Via added, and Via, X-Forwarded-For,
					   Forwarded, X-Real-IP, Client-IP, From removed (list in docs) */
	/* auth: { basic: { users_file: FILE, realm: td } } -> Proxy-Authorization, 407 */
	bool auth_basic;
	char users_file[4096];
	char realm[64];			/* default "td" */
	int auth_line;
	/* cache: { memory: 64MiB, max_object: 8MiB } (sizes: bytes or KiB/MiB/GiB suffixes) */
	bool cache_on;
	uint64_t cache_memory;		/* default 64 MiB when the cache block is present */
	uint64_t cache_max_object;	/* default 8 MiB, <= memory */
	int cache_line;
	/* access_log: PATH | stdout | stderr | off, or { path: ..., format: squid | combined } */
	char access_log[4096];		/* default "stdout" */
	uint8_t access_log_format;	/* enum td_fp_log_format, default squid */
	/* timeouts and limits */
	uint32_t connect_timeout_ms;	/* "connect_timeout", default 10s */
	uint32_t response_timeout_ms;	/* "response_timeout", default 60s */
	uint32_t tunnel_idle_timeout_ms;	/* "tunnel_idle_timeout", default 5m */
	uint32_t idle_timeout_ms;	/* "idle_timeout" (client keep-alive), default 60s */
	uint32_t header_timeout_ms;	/* "header_timeout", default 10s */
	uint64_t max_body_size;		/* "max_body_size", default 0 = unlimited */
	uint32_t max_conns;		/* "max_conns", default 10000 */
	uint32_t dns_timeout_ms;	/* "dns_timeout", default 5s */
	uint32_t dns_cache_ttl_ms;	/* "dns_cache_ttl", default 30s; 0 = off */
	/* transparent: { listen: "127.0.0.1:3129", tls_listen: "127.0.0.1:3130",
	 *                cgroups: [ "apps/web" ], ports: [80, 443] } */
	bool transparent_on;
	int transparent_line;
	struct td_gw_endpoint transparent_listen;	/* port-80 (HTTP) traffic lands here */
	struct td_gw_endpoint transparent_tls_listen;	/* port-443 (TLS, SNI checked) lands here */
	char transparent_cgroups[TD_FP_MAX_CGROUPS][256];	/* relative to mesh.cgroup_root */
	size_t n_transparent_cgroups;
	uint16_t transparent_ports[TD_FP_MAX_PORTS];	/* default [80, 443]; 443-like = TLS */
	size_t n_transparent_ports;
};

/* transparent.ports: 443 and 8443 are "443-like" (TLS, SNI checked, to tls_listen); every other
 * port is "80-like" (plain HTTP, Host checked, to listen) */
static inline bool td_fp_port_is_tls(uint16_t port)
{
	return port == 443 || port == 8443;
}

/*
 * One domain pattern as written ("Example.COM", "*.ads.example") checked and lower-cased into
 * out: DNS labels of 1..63 of [A-Za-z0-9_-] (no leading or trailing '-'), at most 253
 * characters, no trailing dot, '*' only as a whole first label "*.". 0, or -EINVAL with *why
 * set to the reason (for messages). The loader uses it for inline lists; td_fp_check must use
 * it for the lines of deny_domains.file / allow_domains.file so both accept the same patterns.
 */
int td_fp_domain_norm(const char *s, char out[TD_FP_DOMAIN_LEN], const char **why);

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* YAML configuration: parse into typed structs and validate; every error carries FILE:LINE. */
#ifndef TD_CONFIG_H
#define TD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include "td/abi.h"
#include "td/mesh.h"
#include "health.h"

struct td_errors {
	char **msgs;       /* "FILE:LINE: message" each */
	size_t n;
};
void td_errors_add(struct td_errors *e, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void td_errors_free(struct td_errors *e);

#define TD_ADMIN_SOCKET_DEFAULT   "/run/td/admin.sock"
#define TD_METRICS_LISTEN_DEFAULT "127.0.0.1:9469"

/*
 * Split "10.0.0.1:9469" or "[::1]:9469" into address and port (host order).
 * 0 or -EINVAL.
 */
int td_listen_parse(const char *s, union td_addr *addr, __u8 *family, __u16 *port);

struct td_iface_cfg {
	char name[TD_IFNAME_LEN];
	__u8 xdp_mode;                 /* enum td_xdp_mode, default native */
	int line;
};

struct td_backend_cfg {
	union td_addr addr;            /* be */
	__u8 family;                   /* enum td_family */
	__u16 port;                    /* host order */
	__u16 weight;                  /* 0..65535, default 1 */
	int line;
};

/* l4.services[].health: active check of every backend of the service (docs/configuration.md). */
struct td_health_cfg {
	__u8 type;                     /* enum td_hc_type; TD_HC_NONE: no key, always healthy */
	__u16 port;                    /* host order; 0 = each backend's own port */
	__u32 interval_ms;             /* 100..3600000, default 1000 */
	__u32 timeout_ms;              /* 10..interval_ms, default min(500, interval_ms) */
	__u32 rise;                    /* 1..100, default 2 */
	__u32 fall;                    /* 1..100, default 3 */
	char path[TD_HC_PATH_LEN];     /* http only, default "/"; "" for tcp */
	int line;                      /* of the health mapping; 0 when absent */
};

struct td_service_cfg {
	char name[TD_NAME_LEN];
	union td_addr vip;             /* be */
	__u8 family;
	__u16 port;                    /* host order */
	__u8 proto;                    /* enum td_proto */
	__u8 mode;                     /* enum td_mode, default nat */
	struct td_backend_cfg *backends;
	size_t n_backends;
	int line;
	struct td_health_cfg health;   /* type TD_HC_NONE when the service has no health key */
};

/* mesh: (docs/mesh.md). Identities are service names; "unknown" names the cgroups of none. */
#define TD_MESH_UNKNOWN_NAME "unknown"
#define TD_MESH_CGROUP_LEN   256

struct td_mesh_service_cfg {
	char name[TD_NAME_LEN];
	char cgroup[TD_MESH_CGROUP_LEN];   /* relative to mesh.cgroup_root; "" = no workloads here */
	union td_addr vip;                 /* be */
	__u8 family;                       /* enum td_family */
	__u8 proto;                        /* enum td_proto, default tcp */
	__u16 port;                        /* host order */
	bool sockmap;                      /* default mesh.sockmap */
	struct td_backend_cfg *backends;   /* weight 0 = configured but never chosen */
	size_t n_backends;
	int line;
	int cgroup_line;                   /* of the cgroup value, 0 when absent */
};

struct td_mesh_allow_cfg {
	char from[TD_NAME_LEN];            /* a mesh service or "unknown" */
	char to[TD_NAME_LEN];              /* a mesh service */
	__u16 *ports;                      /* host order; none = any port of "to" */
	size_t n_ports;
	int line;
};

struct td_mesh_cfg {
	bool present;                      /* the file has a mesh: key */
	char cgroup_root[PATH_MAX];        /* "" = the cgroup2 mount (resolved by td_mesh_*) */
	bool sockmap;                      /* default for services, false */
	__u8 default_policy;               /* enum td_mesh_policy, default deny */
	struct td_mesh_service_cfg *services;
	size_t n_services;
	struct td_mesh_allow_cfg *allow;
	size_t n_allow;
};

#include "config_gw.h"
#include "config_fp.h"

struct td_config {
	char path[PATH_MAX];
	char bpffs[PATH_MAX];          /* node.bpffs, default TD_BPFFS_DEFAULT */
	char admin_socket[PATH_MAX];   /* node.admin_socket, default TD_ADMIN_SOCKET_DEFAULT */
	char metrics_listen[64];       /* node.metrics_listen "ADDR:PORT" / "[V6]:PORT", or "" = off */
	struct td_iface_cfg *ifaces;   /* node.interfaces */
	size_t n_ifaces;
	__u32 maglev_size;             /* l4.maglev_size, default TD_MAGLEV_DEFAULT, prime */
	__u32 conntrack_size;          /* l4.conntrack_size, default TD_CT_DEFAULT */
	struct td_service_cfg *services;  /* l4.services */
	size_t n_services;
	struct td_mesh_cfg mesh;           /* mesh */
	struct td_gw_cfg gateway;          /* gateway (config_gw.h) */
	struct td_fp_cfg forward_proxy;    /* forward_proxy (config_fp.h) */
};

/*
 * Parse and validate path. On success returns 0 and fills cfg (free with td_config_free).
 * On any error returns -EINVAL (or -errno for I/O), leaves cfg empty and appends one
 * "FILE:LINE: message" per problem to errs (all problems found, not only the first).
 */
int td_config_load(const char *path, struct td_config *cfg, struct td_errors *errs);
/* Same from a buffer; name is used in messages in place of the file name. */
int td_config_load_buf(const char *name, const char *buf, size_t len, struct td_config *cfg,
		       struct td_errors *errs);
void td_config_free(struct td_config *cfg);

/*
 * Duration "500ms", "1s", "2.5s", "1m", "1h" (decimal number, then ms, s, m or h; no sign,
 * no spaces) into milliseconds. 0, -EINVAL (syntax, or not a whole number of ms), -ERANGE.
 */
int td_duration_parse_ms(const char *s, __u64 *ms);

#endif

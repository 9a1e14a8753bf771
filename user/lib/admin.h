/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Admin API: the unix socket and its line-delimited JSON protocol (docs/admin-api.md), both ends. */
#ifndef TD_ADMIN_H
#define TD_ADMIN_H

/*
 * Contract
 *  - Transport: a unix stream socket, root only (directory 0700, socket 0600, and the server
 *    checks SO_PEERCRED uid 0). One JSON object per line each way; a connection may carry
 *    several requests, answered in order. A request line longer than TD_ADMIN_MAX_REQUEST
 *    bytes is refused and the connection closed.
 *  - Requests: {"cmd":"status"} {"cmd":"reload"} {"cmd":"drain"|"undrain"|"backend_remove",
 *    "service":S,"backend":"ADDR:PORT"} {"cmd":"backend_add","service":S,"backend":"ADDR:PORT",
 *    "weight":N}. Unknown keys are refused (a typo must not silently do something else).
 *  - Responses: {"ok":true,...} or {"ok":false,"error":"one sentence"[,"errors":[...]]}.
 *  - This file parses and builds messages and owns the socket plumbing that needs no event
 *    loop (listen, peer credentials, a blocking client call). The agent's server loop lives in
 *    user/agent/admin_srv.c.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "td/abi.h"

#ifndef TD_ADMIN_SOCKET_DEFAULT
#define TD_ADMIN_SOCKET_DEFAULT "/run/td/admin.sock"   /* node.admin_socket default (config.h) */
#endif
#define TD_ADMIN_SOCKET_ENV     "TD_ADMIN_SOCKET"      /* tdctl and tdagent override  */
#define TD_ADMIN_MAX_REQUEST    (64 * 1024)            /* bytes per request line      */
#define TD_ADMIN_ERR_LEN        256

enum td_admin_cmd {
	TD_ADM_NONE = 0,
	TD_ADM_STATUS,
	TD_ADM_RELOAD,
	TD_ADM_DRAIN,
	TD_ADM_UNDRAIN,
	TD_ADM_BACKEND_ADD,
	TD_ADM_BACKEND_REMOVE,
};

/* A parsed, validated request. */
struct td_admin_req {
	enum td_admin_cmd cmd;
	char service[TD_NAME_LEN];   /* drain/undrain/backend_*                           */
	union td_addr addr;          /* be                                                */
	__u8 family;
	__u16 port;                  /* host order                                        */
	__u16 weight;                /* backend_add, default 1                            */
};

/* "status" ... ; NULL when out of range */
const char *td_admin_cmd_name(enum td_admin_cmd cmd);

/*
 * Parse one request line (without the newline; need not be NUL-terminated). 0, or -EINVAL with
 * one sentence in err: not JSON, not an object, no/unknown "cmd", missing or extra keys, a
 * service name that is empty or too long, a backend that is not ADDR:PORT, weight not 0..65535.
 */
int td_admin_req_parse(const char *line, size_t len, struct td_admin_req *req, char *err,
		       size_t errlen);

/*
 * Request line for req (no newline), malloc'd; NULL + errno. Used by tdctl and the tests, so
 * both ends share one spelling of the protocol.
 */
char *td_admin_req_format(const struct td_admin_req *req);

/* "10.0.1.11:8080" or "[fd00::1]:8080" (port 1..65535). 0 or -EINVAL. */
int td_endpoint_parse(const char *s, union td_addr *addr, __u8 *family, __u16 *port);

/*
 * Server side: create the parent directory (0700) when missing, refuse (-EADDRINUSE, logged)
 * when another process answers on path, remove a stale socket, bind, chmod 0600, listen.
 * Returns a non-blocking, close-on-exec listening fd or -errno (one line logged).
 */
int td_admin_listen(const char *path);
/* uid of the peer of a connected unix socket (SO_PEERCRED). 0 or -errno. */
int td_admin_peer_uid(int fd, uid_t *uid);

/*
 * Client side: connect to path, send line + "\n", read one response line within timeout_ms.
 * *resp is the line without its newline (malloc'd). Returns 0; -ENOENT / -ECONNREFUSED when
 * no agent listens; -ETIMEDOUT; -EPROTO when the peer closed without a full line; -errno.
 * Logs nothing (the caller decides whether "agent down" is an error).
 */
int td_admin_call(const char *path, const char *line, int timeout_ms, char **resp);

#endif

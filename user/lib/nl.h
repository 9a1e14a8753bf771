/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Next hops of backends from the kernel's routes and neighbour table (libnl-route-3). */
#ifndef TD_NL_H
#define TD_NL_H

#include <stddef.h>
#include "td/abi.h"

struct td_nl;

/* A resolved next hop: where a frame for the backend leaves and with which MACs. */
struct td_nexthop {
	__u32 ifindex;
	__u8 dmac[6];     /* the backend's MAC (on-link) or its gateway's */
	__u8 smac[6];     /* our MAC on ifindex */
};

/* Open a NETLINK_ROUTE socket and link/route/neighbour caches (current netns). NULL + errno. */
struct td_nl *td_nl_open(void);
void td_nl_close(struct td_nl *nl);

/* Re-read links, routes and neighbours from the kernel (once per refresh). 0 or -errno. */
int td_nl_update(struct td_nl *nl);

/*
 * Next hop of addr (be) from the cached tables: longest-prefix route in the main table, then
 * the neighbour of the backend (on-link) or of the gateway. Returns 0 when resolved;
 * -EAGAIN when unknown/incomplete (resolution was requested from the kernel: neighbour with
 * NTF_USE, or an empty UDP datagram to port 9 when NTF_USE fails); -EHOSTUNREACH when the
 * neighbour is FAILED; -ENETUNREACH without a route; -EADDRINUSE when addr is local.
 */
int td_nl_resolve(struct td_nl *nl, const union td_addr *addr, __u8 family, struct td_nexthop *nh);

/*
 * For each backend id: resolve its next hop and update td_backends (dmac, smac, ifindex,
 * TD_BE_F_NEXTHOP) only when it changed; inactive backends are skipped. Logs changes.
 * Returns the number of backends with a next hop, or -errno.
 */
int td_nl_refresh(struct td_nl *nl, int backends_fd, const __u32 *ids, size_t n);

#endif

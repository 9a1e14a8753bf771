/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4/IPv6 address parsing and formatting into the ABI's 16-byte td_addr. */
#ifndef TD_ADDR_H
#define TD_ADDR_H

#include <stddef.h>
#include <stdbool.h>
#include <sys/socket.h>
#include "td/abi.h"

#define TD_ADDRSTRLEN 46   /* INET6_ADDRSTRLEN */
#define TD_ENDPOINTSTRLEN (TD_ADDRSTRLEN + 8)  /* "[v6]:port" */

/* Parse "10.0.0.1" or "fd00::1" (no brackets, no port). 0 or -EINVAL. Zeroes unused bytes. */
int td_addr_parse(const char *s, union td_addr *addr, __u8 *family);
/* Format into buf (>= TD_ADDRSTRLEN). Returns buf. */
const char *td_addr_format(const union td_addr *addr, __u8 family, char *buf, size_t len);
/* "10.0.0.1:80" or "[fd00::1]:80"; port in host order. Returns buf. */
const char *td_endpoint_format(const union td_addr *addr, __u8 family, __u16 port,
			       char *buf, size_t len);
bool td_addr_equal(const union td_addr *a, const union td_addr *b);
/* Fill ss with a sockaddr_in/_in6 for addr:port (port in host order); returns its length. */
socklen_t td_sockaddr_from(const union td_addr *addr, __u8 family, __u16 port,
			   struct sockaddr_storage *ss);

#endif

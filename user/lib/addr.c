/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4/IPv6 literal parsing and formatting into the ABI's 16-byte td_addr. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

int td_addr_parse(const char *s, union td_addr *addr, __u8 *family)
{
	union td_addr tmp;

	if (!s || !addr || !family)
		return -EINVAL;
	memset(&tmp, 0, sizeof(tmp));
	/* inet_pton(AF_INET) only accepts dotted quads: no "10.1", no octal, no spaces */
	if (inet_pton(AF_INET, s, &tmp.v4) == 1) {
		*addr = tmp;
		*family = TD_AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, tmp.bytes) == 1) {
		*addr = tmp;
		*family = TD_AF_INET6;
		return 0;
	}
	return -EINVAL;
}

const char *td_addr_format(const union td_addr *addr, __u8 family, char *buf, size_t len)
{
	if (!buf || !len)
		return buf;
	buf[0] = '\0';
	if (family == TD_AF_INET) {
		if (!inet_ntop(AF_INET, &addr->v4, buf, len))
			snprintf(buf, len, "?");
	} else if (family == TD_AF_INET6) {
		if (!inet_ntop(AF_INET6, addr->bytes, buf, len))
			snprintf(buf, len, "?");
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

const char *td_endpoint_format(const union td_addr *addr, __u8 family, __u16 port,
			       char *buf, size_t len)
{
	char a[TD_ADDRSTRLEN];

	if (!buf || !len)
		return buf;
	td_addr_format(addr, family, a, sizeof(a));
	if (family == TD_AF_INET6)
		snprintf(buf, len, "[%s]:%u", a, (unsigned int)port);
	else
		snprintf(buf, len, "%s:%u", a, (unsigned int)port);
	return buf;
}

bool td_addr_equal(const union td_addr *a, const union td_addr *b)
{
	return memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

socklen_t td_sockaddr_from(const union td_addr *addr, __u8 family, __u16 port,
			   struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == TD_AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, &addr->v4, 4);
		return sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, addr->bytes, 16);
		return sizeof(*s6);
	}
}

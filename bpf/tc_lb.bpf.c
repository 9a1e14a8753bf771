// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* TC egress entry of the L4 load balancer: reverse NAT of replies that the local stack emits. */
#include "lib/maps.h"
#include <linux/pkt_cls.h>

SEC("tc")
int td_tc_lb(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Trivial XDP_PASS: attached to veth peers so redirected frames are delivered, and the bench floor. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int td_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

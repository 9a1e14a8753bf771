/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Common BPF definitions: inline marker, byte order, counters. */
#ifndef TD_BPF_COMMON_H
#define TD_BPF_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/maps.h"

#define TD_INLINE static __always_inline

/* Load-time knobs (rodata, set by the loader before load). */
const volatile __u64 td_close_grace_ns = TD_CLOSE_GRACE_NS;

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* Count one event in td_counters (per CPU, so no atomics). */
TD_INLINE void td_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&td_counters, &idx);

	if (v)
		*v += 1;
}

/* Per-service / per-backend traffic counters. */
TD_INLINE void td_traffic(void *map, __u32 idx, __u64 bytes, __u32 new_flow)
{
	struct td_traffic_stats *s = bpf_map_lookup_elem(map, &idx);

	if (!s)
		return;
	s->packets += 1;
	s->bytes += bytes;
	s->new_flows += new_flow;
}

TD_INLINE void td_copy_addr(union td_addr *dst, const union td_addr *src)
{
	dst->v6[0] = src->v6[0];
	dst->v6[1] = src->v6[1];
	dst->v6[2] = src->v6[2];
	dst->v6[3] = src->v6[3];
}

TD_INLINE void td_copy_mac(__u8 *dst, const __u8 *src)
{
	__builtin_memcpy(dst, src, 6);
}

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Incremental Internet checksum updates (RFC 1624) on values as stored in the packet. */
#ifndef TD_BPF_CSUM_H
#define TD_BPF_CSUM_H

#include "lib/common.h"

/*
 * The ones' complement sum does not depend on byte order as long as every operand is taken
 * the same way, so fields are used exactly as loaded from the packet (network order).
 */
TD_INLINE __u16 td_csum_fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* Start an update of a checksum field: returns the running sum ~HC. */
TD_INLINE __u64 td_csum_start(__u16 check)
{
	return (__u16)~check;
}

/* Account for a 32-bit word changing from -> to. */
TD_INLINE __u64 td_csum_add4(__u64 s, __u32 from, __u32 to)
{
	return s + (__u32)~from + to;
}

TD_INLINE __u64 td_csum_add2(__u64 s, __u16 from, __u16 to)
{
	return s + (__u16)~from + to;
}

TD_INLINE __u64 td_csum_add16(__u64 s, const union td_addr *from, const union td_addr *to)
{
	s = td_csum_add4(s, from->v6[0], to->v6[0]);
	s = td_csum_add4(s, from->v6[1], to->v6[1]);
	s = td_csum_add4(s, from->v6[2], to->v6[2]);
	s = td_csum_add4(s, from->v6[3], to->v6[3]);
	return s;
}

/* Finish: the new checksum field value. */
TD_INLINE __u16 td_csum_finish(__u64 s)
{
	return (__u16)~td_csum_fold(s);
}

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow hash for Maglev slot choice: Bob Jenkins' lookup3 (jhash) over the 5-tuple, seed 0. */
#ifndef TD_BPF_HASH_H
#define TD_BPF_HASH_H

#include "lib/common.h"

#define TD_ROL32(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

#define TD_JHASH_MIX(a, b, c)                          \
	do {                                           \
		a -= c; a ^= TD_ROL32(c, 4);  c += b;  \
		b -= a; b ^= TD_ROL32(a, 6);  a += c;  \
		c -= b; c ^= TD_ROL32(b, 8);  b += a;  \
		a -= c; a ^= TD_ROL32(c, 16); c += b;  \
		b -= a; b ^= TD_ROL32(a, 19); a += c;  \
		c -= b; c ^= TD_ROL32(b, 4);  b += a;  \
	} while (0)

#define TD_JHASH_FINAL(a, b, c)                 \
	do {                                    \
		c ^= b; c -= TD_ROL32(b, 14);   \
		a ^= c; a -= TD_ROL32(c, 11);   \
		b ^= a; b -= TD_ROL32(a, 25);   \
		c ^= b; c -= TD_ROL32(b, 16);   \
		a ^= c; a -= TD_ROL32(c, 4);    \
		b ^= a; b -= TD_ROL32(a, 14);   \
		c ^= b; c -= TD_ROL32(b, 24);   \
	} while (0)

#define TD_JHASH_INIT 0xdeadbeef

/* Hash of the 10 words of a td_flow_key (src, dst, ports, proto/family). */
TD_INLINE __u32 td_flow_hash(const struct td_flow_key *k)
{
	const __u32 *w = (const __u32 *)k;
	__u32 a, b, c;

	a = b = c = TD_JHASH_INIT + (10 << 2);
	a += w[0]; b += w[1]; c += w[2];
	TD_JHASH_MIX(a, b, c);
	a += w[3]; b += w[4]; c += w[5];
	TD_JHASH_MIX(a, b, c);
	a += w[6]; b += w[7]; c += w[8];
	TD_JHASH_MIX(a, b, c);
	a += w[9];
	TD_JHASH_FINAL(a, b, c);
	return c;
}

#endif

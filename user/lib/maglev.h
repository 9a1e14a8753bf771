/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Weighted Maglev consistent-hash table builder (Eisenbud et al., NSDI'16, with weights). */
#ifndef TD_MAGLEV_H
#define TD_MAGLEV_H

#include <stddef.h>
#include <stdbool.h>
#include <linux/types.h>

struct td_maglev_backend {
	const char *key;   /* stable identity, e.g. "10.0.1.11:8080": decides the permutation */
	__u32 id;          /* value written into the ring (backend id in td_backends) */
	__u32 weight;      /* 0 = present but receives no new flows */
};

bool td_is_prime(__u32 n);

/*
 * The preference list of key in a ring of prime size m: slot j of the list is
 * (offset + j * skip) % m with offset = h1(key) % m, skip = h2(key) % (m - 1) + 1 (two
 * independent 64-bit hashes). Exposed for tests and tools. 0 or -EINVAL.
 */
int td_maglev_permutation(const char *key, __u32 m, __u32 *offset, __u32 *skip);

/*
 * Fill ring[0..m-1] with backend ids so each backend owns about weight/sum(weights) of the slots.
 * m must be prime (-EINVAL otherwise). With no backend of weight > 0 every slot is
 * TD_BACKEND_NONE. The result depends only on the set of (key, weight) pairs, not on their
 * order in the array. Returns 0 or -errno (-ENOMEM).
 */
int td_maglev_build(const struct td_maglev_backend *backends, size_t n, __u32 *ring, __u32 m);

#endif

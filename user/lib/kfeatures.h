/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Kernel feature probe: refuse to load the datapath, naming the first missing BPF feature. */
#ifndef TD_KFEATURES_H
#define TD_KFEATURES_H

#include <stddef.h>

/*
 * Probe every program type, map type and helper the datapath needs (XDP, SCHED_CLS, HASH,
 * LRU_HASH, ARRAY, ARRAY_OF_MAPS, PERCPU_ARRAY, bpf_redirect, bpf_fib_lookup, ...).
 * Returns 0 when all are present; otherwise -EOPNOTSUPP (or -errno of the probe, e.g. -EPERM)
 * and writes one line naming the missing feature into msg.
 */
int td_features_probe(char *msg, size_t len);

#endif

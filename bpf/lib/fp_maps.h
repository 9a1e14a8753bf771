/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Transparent forward-proxy maps (td_fp_*), pinned by name under the bpffs folder. */
#ifndef TD_BPF_FP_MAPS_H
#define TD_BPF_FP_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "td/fproxy.h"

/* (cgroup id, destination port) -> transparent listener; written by userspace only */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TD_FP_REDIR_MAX);
	__type(key, struct td_fp_redir_key);
	__type(value, struct td_fp_target);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_fp_redir SEC(".maps");

/* (client address, client port, listener port) -> original destination; read by the proxy */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TD_FP_ORIGDST_MAX);
	__type(key, struct td_fp_peer_key);
	__type(value, struct td_fp_origdst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_fp_origdst SEC(".maps");

/* per client socket: what connect() asked for and where it was sent (freed with the socket) */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct td_fp_sk);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_fp_sk SEC(".maps");

/* decisions by reason (enum td_fp_counter) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TD_FP_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_fp_cnt SEC(".maps");

#endif

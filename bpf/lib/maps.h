/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map definitions shared by xdp_lb and tc_lb; pinned by name so both objects use one copy. */
#ifndef TD_BPF_MAPS_H
#define TD_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "td/abi.h"

/* VIP endpoint -> service */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TD_MAX_SERVICES);
	__type(key, struct td_vip_key);
	__type(value, struct td_svc);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_svc SEC(".maps");

/* VIP address -> number of services on it */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TD_MAX_SERVICES);
	__type(key, struct td_vip_addr);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_vips SEC(".maps");

/* service id -> names for tdctl (not read by the datapath) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TD_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct td_svc_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_svc_info SEC(".maps");

/* backend id -> backend */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TD_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct td_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_backends SEC(".maps");

/* One Maglev ring per service; userspace builds a new inner map and swaps the slot. */
struct td_maglev_ring {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TD_MAGLEV_DEFAULT);
	__uint(map_flags, BPF_F_INNER_MAP);  /* rings of any (prime) size may be swapped in */
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, TD_MAX_SERVICES);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct td_maglev_ring);
} td_maglev SEC(".maps");

/* client->VIP 5-tuple -> backend */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TD_CT_DEFAULT);
	__type(key, struct td_flow_key);
	__type(value, struct td_ct);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_ct SEC(".maps");

/* backend->client 5-tuple -> VIP (NAT mode replies) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TD_CT_DEFAULT);
	__type(key, struct td_flow_key);
	__type(value, struct td_rnat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_rnat SEC(".maps");

/* port (host order) -> TD_PORT_F_*: skips both hash lookups for unrelated traffic */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TD_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct td_traffic_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TD_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct td_traffic_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_be_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TD_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_counters SEC(".maps");

/* attached interfaces (userspace bookkeeping, here so it is pinned with BTF) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TD_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct td_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_ifaces SEC(".maps");

#endif /* TD_BPF_MAPS_H */

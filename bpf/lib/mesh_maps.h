/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Mesh map definitions (td_m_*), pinned by name under the bpffs folder like the L4 maps. */
#ifndef TD_BPF_MESH_MAPS_H
#define TD_BPF_MESH_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "td/mesh.h"

/* VIP endpoint (address, port, proto, family) -> mesh service */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TD_MESH_MAX_SERVICES);
	__type(key, struct td_vip_key);
	__type(value, struct td_mesh_svc);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_m_svc SEC(".maps");

/*
 * Selection table of one service: TD_MESH_SLOTS slots, each a healthy backend with weight > 0,
 * backends appearing in proportion to their weights. Userspace builds a new table and swaps it
 * into td_m_sel in one update; a service without healthy backends has no table.
 */
struct td_mesh_sel_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TD_MESH_SLOTS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct td_mesh_be));  /* no BTF: tables are built by userspace */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, TD_MESH_MAX_SERVICES);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct td_mesh_sel_table);
} td_m_sel SEC(".maps");

/* cgroup id (kernfs id of a cgroup2 folder) -> identity */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TD_MESH_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_m_cg SEC(".maps");

/* (src identity, dst service, port) -> 1: allowed */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TD_MESH_MAX_RULES);
	__type(key, struct td_mesh_allow_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_m_allow SEC(".maps");

/* [0]: default policy and generation */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct td_mesh_conf);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_m_conf SEC(".maps");

/* service id -> name and VIP (userspace bookkeeping, here so it is pinned with BTF) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TD_MESH_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct td_mesh_name);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_m_names SEC(".maps");

/* counters by reason (enum td_mesh_counter) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TD_M_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_m_cnt SEC(".maps");

/* (src identity, dst service) -> counters */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TD_MESH_MAX_PAIRS);
	__type(key, struct td_mesh_pair_key);
	__type(value, struct td_mesh_pair_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_m_pair SEC(".maps");

/* per socket: the VIPs it was translated from, so getpeername/recvmsg can show them */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct td_mesh_sk);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_m_sk SEC(".maps");

/* denials for the agent's log */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TD_MESH_EVENTS_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} td_m_events SEC(".maps");

#endif

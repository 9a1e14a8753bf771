/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Datapath lifecycle: load and pin the BPF objects, adopt pinned maps, attach and detach interfaces. */
#ifndef TD_DP_H
#define TD_DP_H

#include <stdbool.h>
#include <stddef.h>
#include "td/abi.h"

/*
 * TC egress filter identity: td owns exactly this {handle, priority} on clsact egress and never
 * touches any other filter. 0x7d ("td") in both halves keeps it clear of tc's defaults.
 */
#define TD_TC_HANDLE   0x7d01
#define TD_TC_PRIORITY 0x7d01

/* BPF program names (bpf_prog_info.name), how td recognises its own attachments. */
#define TD_PROG_NAME_XDP_LB "td_xdp_lb"
#define TD_PROG_NAME_TC_LB  "td_tc_lb"

/* File descriptors of every pinned map, -1 when not open. */
struct td_maps {
	int svc;
	int vips;
	int svc_info;
	int backends;
	int maglev;
	int ct;
	int rnat;
	int ports;
	int svc_stats;
	int be_stats;
	int counters;
	int ifaces;
};

void td_maps_init(struct td_maps *m);
/*
 * Open every map pinned under bpffs. Returns 0, -ENOENT when nothing is pinned (after logging
 * "no td datapath pinned at DIR: start tdagent first"), -EPERM when not root, or -errno;
 * every failure logs one line. On failure nothing stays open.
 */
int td_maps_open(const char *bpffs, struct td_maps *m);
void td_maps_close(struct td_maps *m);

/* Make sure bpffs is a directory (0700) on a bpf filesystem, mounting /sys/fs/bpf if needed. */
int td_bpffs_prepare(const char *bpffs);
/* true when bpffs holds the td maps and program pins */
bool td_dp_is_pinned(const char *bpffs);
/* Pin fd at bpffs/name, replacing an existing pin atomically (temp pin + rename). 0 or -errno. */
int td_pin_replace(int fd, const char *bpffs, const char *name);

/*
 * Open xdp_lb and tc_lb with pin_root_path = bpffs: maps are created and pinned by name, or
 * adopted when already pinned (entries survive). td_ct/td_rnat get conntrack_size entries
 * unless already pinned with another size (kept, with a warning: resizing needs --cleanup).
 * Programs are (re)pinned atomically at bpffs/prog_xdp_lb and bpffs/prog_tc_lb.
 * *adopted is set when the maps existed before. Returns 0 or -errno (logged).
 */
int td_dp_load(const char *bpffs, __u32 conntrack_size, bool *adopted);

/* Resolve an interface name in the current network namespace; -ENODEV (logged) if unknown. */
int td_ifindex(const char *ifname, int *ifindex);

/*
 * Attach prog_xdp_lb (XDP, mode) and prog_tc_lb (clsact egress) to ifname and record it in
 * td_ifaces. Re-attaching over td's own programs replaces them atomically; a foreign XDP
 * program or TC filter at td's handle is refused. Returns 0 or -errno (one line logged).
 */
int td_dp_attach(const char *bpffs, const char *ifname, enum td_xdp_mode mode);
/* Remove exactly what td attached to ifname and its td_ifaces entry. 0 or -errno (logged). */
int td_dp_detach(const char *bpffs, const char *ifname);
/* detach every interface listed in td_ifaces; returns the number detached or -errno */
int td_dp_detach_all(const char *bpffs);

/* Detach everything, unpin every map and program under bpffs and remove the directory. */
int td_dp_cleanup(const char *bpffs);

/* ids of the pinned programs (0 when not pinned) */
int td_dp_prog_ids(const char *bpffs, __u32 *xdp_id, __u32 *tc_id);

/* State of td's attachments on an interface, read from the kernel. */
struct td_attach_state {
	__u32 xdp_prog_id;     /* td's XDP program attached (0: none) */
	int xdp_mode;          /* enum td_xdp_mode of that attachment, -1 when none */
	__u32 tc_prog_id;      /* td's TC filter attached (0: none) */
};
int td_dp_attach_state(int ifindex, struct td_attach_state *st);

#endif

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Transparent forward proxy in the kernel: load/pin/attach fp_redir, fill td_fp_redir, origdst. */
#ifndef TD_FP_REDIRECT_H
#define TD_FP_REDIRECT_H

/*
 * Contract
 *  - fp_redir is its own BPF object (bpf/fp_redir.bpf.c): maps td_fp_* and programs pinned as
 *    bpffs/prog_fp_<hook>; attached with BPF_F_ALLOW_MULTI to each forward_proxy.transparent
 *    cgroup (5 programs: connect4/6, getpeername4/6, sockops). The mesh is not touched.
 *  - A program is "ours" when it is named td_fp_<hook> and uses the td_fp_cnt map pinned under
 *    the same bpffs: attach replaces ours atomically, detach removes only ours, so another td
 *    instance (another bpffs) or a test keeps its programs.
 *  - The agent (tdagent) is not in those cgroups, so the proxy's own connections to origins
 *    are never redirected; a connect() to a loopback address is never redirected either.
 *  - Order at start/reload: td_fp_redirect_load, td_fp_redirect_apply (rules first, then
 *    attach, then detach from cgroups no longer listed). Shutdown: td_fp_redirect_detach_everywhere
 *    then (teardown only) td_fp_redirect_unpin. A restart that adopts the pins keeps every live
 *    td_fp_origdst entry.
 * Functions return 0 (or a count) / -errno, after logging one line.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "td/fproxy.h"

struct td_fp_cfg;

/* one (cgroup folder, destination port) -> listener rule */
struct td_fp_rule {
	const char *cgroup;             /* absolute path of the cgroup2 folder (must exist) */
	uint16_t port;                  /* host order: destination port asked for at connect() */
	uint8_t kind;                   /* enum td_fp_kind */
	const struct sockaddr *target;  /* the listener: AF_INET or AF_INET6, loopback */
};

/*
 * Open fp_redir with pin_root_path = bpffs (maps created and pinned by name, or adopted with
 * their entries), load it and pin the programs at bpffs/prog_fp_<hook> (atomic replace).
 * *adopted (may be NULL) tells whether td_fp_redir was pinned before.
 */
int td_fp_redirect_load(const char *bpffs, bool *adopted);

/* Attach the 5 pinned programs to the cgroup2 folder cgroup (idempotent). */
int td_fp_redirect_attach(const char *bpffs, const char *cgroup);
/* Detach our programs from cgroup. Returns the number detached or -errno. */
int td_fp_redirect_detach(const char *bpffs, const char *cgroup);

/*
 * Replace the whole td_fp_redir table with rules[0..n): entries are written first, then the
 * ones not in rules are deleted (a connect() sees the old rule or the new one). Every cgroup
 * must exist, or nothing is written (-ENOENT, logged with the path).
 */
int td_fp_redirect_set_rules(const char *bpffs, const struct td_fp_rule *rules, size_t n);

/*
 * The agent's entry point: rules from cfg->transparent_* (cgroups relative to cgroup_root, ""
 * = the cgroup2 mount; 443-like ports to transparent_tls_listen, the others to
 * transparent_listen), then attach to each cgroup, then detach from every other folder where
 * ours are attached. cfg->transparent_on false: the table is emptied and ours are detached
 * everywhere (the pins stay). Returns 0 or -errno.
 */
int td_fp_redirect_apply(const char *bpffs, const struct td_fp_cfg *cfg, const char *cgroup_root);

/*
 * Call fn for every cgroup2 folder where our programs are attached (walk of the cgroup2
 * mount, read-only). Returns how many were found, -ENOENT when nothing is pinned under bpffs.
 */
typedef int (*td_fp_scan_fn)(const char *cgroup, void *ctx);
int td_fp_redirect_scan(const char *bpffs, td_fp_scan_fn fn, void *ctx);
/* Detach ours from every folder. Returns the number detached (0 when nothing is pinned). */
int td_fp_redirect_detach_everywhere(const char *bpffs);
/* Remove the td_fp_* map pins and prog_fp_* pins (teardown only; L4 and mesh pins stay). */
int td_fp_redirect_unpin(const char *bpffs);

/* ---- for the proxy -------------------------------------------------------------------------- */

/* The pinned td_fp_origdst map, opened read-only (O_CLOEXEC). fd or -errno. */
int td_fp_origdst_fd(const char *bpffs);

/*
 * Key of an accepted connection: peer = accept()/getpeername() address (the client),
 * local = getsockname() of the accepted socket (the listener's port). v4-mapped IPv6 peers
 * are folded to IPv4. 0 or -EAFNOSUPPORT.
 */
int td_fp_peer_key_make(const struct sockaddr *peer, const struct sockaddr *local,
			struct td_fp_peer_key *key);

/*
 * Original destination of an accepted connection: *dst (sockaddr_in or sockaddr_in6, the
 * family the client asked for) and, if info is not NULL, the raw entry (kind, pid, cgroup).
 * 0, -ENOENT (not a redirected connection, or it closed already) or -errno.
 */
int td_fp_origdst_lookup(int fd, const struct sockaddr *peer, const struct sockaddr *local,
			 struct sockaddr_storage *dst, struct td_fp_origdst *info);

/* ---- counters ------------------------------------------------------------------------------- */

/* name of enum td_fp_counter ("redirect", "pass_no_rule", ...) */
const char *td_fp_counter_name(unsigned int idx);
/* sum over CPUs of every counter of the td_fp_cnt pinned under bpffs into out[TD_FP_CNT_MAX] */
int td_fp_redirect_counters(const char *bpffs, uint64_t *out);

#endif

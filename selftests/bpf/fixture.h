/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Fixture runner API: loaded programs with shared unpinned maps, map setup helpers, fixture tables. */
#ifndef TD_FIXTURE_H
#define TD_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "td/abi.h"
#include "pkt.h"

struct xdp_lb;
struct tc_lb;
struct xdp_pass;

#define TD_FX_MAX_SVC     16
#define TD_FX_MAX_BE      64
#define TD_FX_MAX_STEPS   6
#define TD_FX_MAX_DELTAS  6
#define TD_FX_ANY         (-1)   /* counter delta not checked */

/* Everything a fixture may touch: both skeletons share one set of maps (those of xdp_lb). */
struct td_env {
	struct xdp_lb *xdp;
	struct tc_lb *tc;
	struct xdp_pass *pass;
	int ifindex_lo;            /* 1 in the fresh netns */
	int ifindex_redir;         /* tdt-d0 (dummy), 0 when absent */
	int ncpus;                 /* possible CPUs (per-CPU map values) */
	int fd_svc, fd_vips, fd_backends, fd_maglev, fd_ct, fd_rnat, fd_ports, fd_counters;
	/* what the helpers wrote, so td_env_reset() can undo it */
	__u32 used_svc[TD_FX_MAX_SVC];
	int n_used_svc;
	__u32 used_be[TD_FX_MAX_BE];
	int n_used_be;
	__u16 used_ports[TD_FX_MAX_SVC * 2];
	int n_used_ports;
};

/* A service with its backends as the fixtures describe them (host-order ports). */
struct td_fx_svc {
	__u32 id;
	__u8 family;
	const union td_addr *vip;
	__u16 port;
	__u8 proto;
	__u8 mode;
	__u32 ring_size;           /* prime */
	__u32 ring_backend;        /* every slot of the ring; TD_BACKEND_NONE for none */
};

struct td_fx_backend {
	__u32 id;
	__u32 svc_id;
	__u8 family;
	const union td_addr *addr;
	__u16 port;                /* host order */
	__u8 flags;                /* TD_BE_F_* */
	const __u8 *dmac;
	const __u8 *smac;
	__u32 ifindex;             /* 0 = lo */
	bool nat;                  /* mark port TD_PORT_F_BACKEND */
};

/* env lifetime */
int td_env_open(struct td_env *env, __u32 ct_entries);
void td_env_close(struct td_env *env);
int td_env_reset(struct td_env *env);
/* empty td_ct and td_rnat */
int td_env_clear_flows(struct td_env *env);

/* map setup helpers, 0 or -errno */
int td_env_add_svc(struct td_env *env, const struct td_fx_svc *svc);
int td_env_set_ring(struct td_env *env, __u32 svc_id, __u32 ring_size, __u32 backend_id);
int td_env_add_backend(struct td_env *env, const struct td_fx_backend *be);
int td_env_set_backend_flags(struct td_env *env, __u32 id, __u8 flags);
int td_env_set_backend_ifindex(struct td_env *env, __u32 id, __u32 ifindex);
int td_env_add_rnat(struct td_env *env, const struct td_flow_key *key, const struct td_rnat *val);
int td_env_lookup_ct(struct td_env *env, const struct td_flow_key *key, struct td_ct *val);
int td_env_read_counters(struct td_env *env, __u64 out[TD_CNT_MAX]);
int td_env_read_stats(struct td_env *env, bool backend, __u32 idx, struct td_traffic_stats *out);

/* prog-test-run wrappers: *verdict, *out_len filled; duration in ns per run */
int td_run_xdp(int prog_fd, const __u8 *in, size_t len, int ifindex, __u32 repeat,
	       __u8 *out, __u32 *out_len, __u32 *verdict, __u32 *duration);
int td_run_tc(int prog_fd, const __u8 *in, size_t len, __u32 repeat,
	      __u8 *out, __u32 *out_len, __u32 *verdict, __u32 *duration);

/* ---- fixture tables ---------------------------------------------------------------------- */

enum td_fx_prog { TD_FX_XDP = 0, TD_FX_TC, TD_FX_XDP_PASS /* bench only */ };
enum td_fx_if { TD_FX_IF_LO = 0, TD_FX_IF_REDIR };

struct td_fx_delta {
	int counter;               /* enum td_counter; a zero-filled entry ends the list */
	int delta;                 /* or TD_FX_ANY */
};

/*
 * One packet through one program. Counters not listed must not move, except rx (+1 per XDP
 * step) and tc_rx (+1 per TC step), which are implied.
 */
struct td_fx_step {
	int (*pre)(struct td_env *env);           /* map changes before this packet, or NULL */
	enum td_fx_prog prog;
	enum td_fx_if ifindex;                    /* XDP ingress interface */
	const struct td_pkt_spec *in;
	const struct td_pkt_spec *out;            /* expected frame; NULL = the input unchanged */
	int verdict;                              /* XDP_* / TC_ACT_* */
	bool malformed;                           /* output is not a parseable packet: skip verify */
	struct td_fx_delta deltas[TD_FX_MAX_DELTAS];
	int (*check)(struct td_env *env, char *err, size_t errlen); /* extra assertions, or NULL */
};

struct td_fixture {
	const char *name;
	int (*setup)(struct td_env *env);         /* NULL = td_fx_std_setup */
	bool needs_redir;                         /* skipped without tdt-d0 */
	struct td_fx_step steps[TD_FX_MAX_STEPS]; /* ends at the first step with in == NULL */
};

extern const struct td_fixture td_fixtures_xdp[];
extern const size_t td_n_fixtures_xdp;
extern const struct td_fixture td_fixtures_tc[];
extern const size_t td_n_fixtures_tc;

/* the standard services/backends of the fixture tables (fixtures_xdp.c) */
int td_fx_std_setup(struct td_env *env);

/* bench (bench.c) */
int td_bench_run(struct td_env *env, __u32 calls, int rounds);

#endif
